//! SQL glue for `samplemix_weights(scored, centroids, alpha, tau, budget_tokens [, seed [, mode
//! [, separation [, options]]]])`: docs/METHOD.md "Weights and counts" as a view over ordinary DataFusion
//! operators (a `ViewTable` over a `LogicalPlan`), so it streams, runs in parallel, respects
//! the memory pool and serialises like any plan.
//!
//! With the default options `scored` is read three times, twice while planning:
//! 1. per-cluster aggregate: rows, tokens, Σ distance (→ compactness), min/max quality;
//!    joined with the centroids' separation (computed from the k centroids while planning); global statistics (N, T_src, min/max quality,
//!    min/max diversity, max weight) are window functions over those k rows only (the
//!    largest weight is the largest per-cluster α·d_norm + (1−α)·q_norm(max quality)). This
//!    k-row table is computed while planning and enters the plan as a `VALUES` list, so later
//!    passes join k literal rows (a broadcast) instead of re-aggregating `scored`;
//! 2. Z = Σ exp((w − w_max)/τ) (Σ exp(...)·tokens in 'tokens' mode) as an exact,
//!    order-independent sum, also while planning; it enters the plan as a literal;
//! 3. the output projection: the only pass the returned plan makes.
//!
//! `rounding=systematic` adds one window over all rows; `max_copies` replaces pass 2 by the few
//! aggregates of [`water_fill`].
//!
//! Every float sum uses `samplemix_exact_sum`, so outputs are bit-identical for any
//! partitioning, thread count or input order.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Float64Type;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::{plan_datafusion_err, plan_err, JoinType, TableReference};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions::expr_fn::{coalesce, exp, floor};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::functions_aggregate::median::median_udaf;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    cast, col, lit, when, AggregateUDF, Expr, ExprFunctionExt, LogicalPlanBuilder, ScalarUDF,
    WindowFrame, WindowFrameBound, WindowFrameUnits,
};
use futures::FutureExt;

use super::udaf::exact_sum_udaf;
use super::udf::{assert_udf, uniform_udf};
use super::weights::{separation, Mode, Separation, SYSTEMATIC_UNIT};
use crate::args::{
    block_on_helper, choice_arg, choice_of, choice_traits, literal_f64, literal_i64, literal_str,
    table_name, Choice,
};
use crate::cluster::assign::Centroids;
use crate::cluster::centroids::read_centroids;
use crate::cluster::vectors::check_type;
use crate::hash::uniform;
use crate::plans::{batches_as_values, named_values};

const NAME: &str = "samplemix_weights";

/// `samplemix_weights` table function.
#[derive(Debug, Default)]
pub struct SamplemixWeights;

struct Params {
    scored: String,
    centroids: String,
    alpha: f64,
    tau: f64,
    budget: f64,
    seed: i64,
    mode: Mode,
    separation: Separation,
    options: Options,
}

/// How expected counts become integer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// n = ⌊c⌋ + 1[u(x) < c − ⌊c⌋], each document on its own (the paper's).
    Independent,
    /// Systematic rounding: one comb of evenly spaced points over the cumulative fractional
    /// parts in (tokens, u(x), id) order, offset drawn from the seed. E[n] = c still holds for
    /// every document; Σ n = round(Σ c) exactly, and realised tokens track the budget closely
    /// because neighbours in the order have similar lengths.
    Systematic,
}

impl Choice for Rounding {
    const WHAT: &'static str = "rounding";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("independent", Rounding::Independent),
        ("systematic", Rounding::Systematic),
    ];
}
choice_traits!(Rounding);

/// The options of the 9th argument, `'key=value, ...'`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Options {
    rounding: Rounding,
    max_copies: Option<i64>,
    min_cluster_size: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rounding: Rounding::Independent,
            max_copies: None,
            min_cluster_size: 1,
        }
    }
}

const OPTION_KEYS: &str = "rounding, max_copies, min_cluster_size";

fn parse_options(text: &str) -> Result<Options> {
    let mut o = Options::default();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return plan_err!(
                "{NAME}: argument 'options': '{item}' is not key=value (keys: {OPTION_KEYS})"
            );
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        let positive = |what: &str| -> Result<i64> {
            match value.parse::<i64>() {
                Ok(v) if v >= 1 => Ok(v),
                _ => plan_err!(
                    "{NAME}: argument 'options': {what} must be a positive integer, got '{value}'"
                ),
            }
        };
        match key.as_str() {
            "rounding" => o.rounding = choice_of(value, NAME, "options: rounding")?,
            "max_copies" => o.max_copies = Some(positive("max_copies")?),
            "min_cluster_size" => o.min_cluster_size = positive("min_cluster_size")?,
            other => {
                return plan_err!(
                    "{NAME}: argument 'options': unknown key '{other}' (keys: {OPTION_KEYS})"
                )
            }
        }
    }
    Ok(o)
}

fn parse(exprs: &[Expr]) -> Result<Params> {
    if !(5..=9).contains(&exprs.len()) {
        return plan_err!(
            "{NAME}: expected 5 to 9 arguments (scored, centroids, alpha, tau, budget_tokens [, seed [, mode [, separation [, options]]]]), got {}",
            exprs.len()
        );
    }
    let alpha = literal_f64(&exprs[2], NAME, "alpha")?;
    if !(0.0..=1.0).contains(&alpha) {
        return plan_err!(
            "{NAME}: argument 'alpha' must be in [0, 1] (the weight of diversity), got {alpha}"
        );
    }
    let tau = literal_f64(&exprs[3], NAME, "tau")?;
    if !(tau > 0.0 && tau.is_finite()) {
        return plan_err!(
            "{NAME}: argument 'tau' (softmax temperature) must be a positive number, got {tau}"
        );
    }
    let budget = literal_f64(&exprs[4], NAME, "budget_tokens")?;
    if !(budget > 0.0 && budget.is_finite()) {
        return plan_err!(
            "{NAME}: argument 'budget_tokens' must be a positive number of tokens, got {budget}"
        );
    }
    let seed = exprs
        .get(5)
        .map_or(Ok(0), |e| literal_i64(e, NAME, "seed"))?;
    let mode = choice_arg(exprs.get(6), Mode::Tokens, NAME, "mode")?;
    let separation = choice_arg(exprs.get(7), Separation::Mean, NAME, "separation")?;
    let options = match exprs.get(8) {
        Some(e) => parse_options(&literal_str(e, NAME, "options")?)?,
        None => Options::default(),
    };
    Ok(Params {
        scored: table_name(&exprs[0], NAME, "scored")?,
        centroids: table_name(&exprs[1], NAME, "centroids")?,
        alpha,
        tau,
        budget,
        seed,
        mode,
        separation,
        options,
    })
}

/// Resolve a registered table without blocking: planning is synchronous.
fn resolve(
    state: &SessionState,
    name: &str,
    argument: &str,
) -> Result<(TableReference, Arc<dyn TableProvider>)> {
    let reference = TableReference::from(name);
    let schema = state
        .schema_for_ref(reference.clone())
        .map_err(|e| plan_datafusion_err!("{NAME}: argument '{argument}': {e}"))?;
    match schema.table(reference.table()).now_or_never() {
        Some(Ok(Some(provider))) => Ok((reference, provider)),
        Some(Err(e)) => plan_err!("{NAME}: argument '{argument}': cannot open table '{name}': {e}"),
        // A name that is not registered may still resolve asynchronously (a URL table still
        // being inferred): both cases get the same answer, so the error does not depend on timing.
        Some(Ok(None)) | None => plan_err!(
            "{NAME}: argument '{argument}': table '{name}' not found; register it first (CREATE TABLE / CREATE EXTERNAL TABLE / CREATE VIEW)"
        ),
    }
}

fn require_column(
    provider: &Arc<dyn TableProvider>,
    table: &str,
    argument: &str,
    column: &str,
    ok: fn(&DataType) -> bool,
    expected: &str,
) -> Result<()> {
    let schema = provider.schema();
    let Ok(field) = schema.field_with_name(column) else {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return plan_err!(
            "{NAME}: argument '{argument}': table '{table}' has no column '{column}' (columns: {})",
            names.join(", ")
        );
    };
    if !ok(field.data_type()) {
        return plan_err!(
            "{NAME}: argument '{argument}': column '{column}' of '{table}' must be {expected}, got {}",
            field.data_type()
        );
    }
    Ok(())
}

fn call(udf: &ScalarUDF, args: Vec<Expr>) -> Expr {
    udf.call(args)
}

fn over_all(udaf: Arc<AggregateUDF>, arg: Expr) -> Expr {
    Expr::from(WindowFunction::new(udaf, vec![arg]))
}

fn f64c(e: Expr) -> Expr {
    cast(e, DataType::Float64)
}

/// Fail the query on a bad value in a `scored` column, naming the column, the rule and the id
/// of an offending row (the checks run while streaming, inside the one scan that reads it).
fn checked(assert: &ScalarUDF, column: &str, as_type: DataType) -> Expr {
    let value = cast(col(column), as_type);
    let finite = |v: Expr| v.between(lit(f64::MIN), lit(f64::MAX));
    let (ok, rule) = match column {
        "quality" => (finite(value.clone()), "NULL, NaN or infinite values"),
        "distance" => (
            finite(value.clone()).and(value.clone().gt_eq(lit(0.0))),
            "NULL, NaN, infinite or negative values (distances are >= 0)",
        ),
        "tokens" => (
            value.clone().gt_eq(lit(0i64)),
            "NULL or negative values (token counts are >= 0)",
        ),
        _ => (value.clone().is_not_null(), "NULL values"),
    };
    call(
        assert,
        vec![
            value,
            // A NULL check result (NULL value) fails too.
            coalesce(vec![ok, lit(false)]),
            lit(format!(
                "{NAME}: column '{column}' of 'scored' has {rule}; filter those rows first; id of one: "
            )),
            // Cast only on failure, inside samplemix_assert: not per row here.
            col("id"),
        ],
    )
    .alias(format!("__{column}"))
}

/// Read and validate the centroids table while planning (k rows): the same validation as
/// `diversity_cluster` (unique non-NULL integer ids, finite non-NULL centroids of one
/// dimension, one non-NULL metric), so a table one function rejects is never used by the other.
fn validate_centroids(
    state: &SessionState,
    reference: &TableReference,
    provider: &Arc<dyn TableProvider>,
    name: &str,
) -> Result<Centroids> {
    let df = DataFrame::new(
        state.clone(),
        LogicalPlanBuilder::scan(
            reference.clone(),
            provider_as_source(Arc::clone(provider)),
            None,
        )?
        .build()?,
    );
    let batches = block_on_helper(NAME, async move { df.collect().await })?;
    read_centroids(NAME, name, &batches)
}

/// Stage 0: the columns `scored` and `centroids` must have, with their types.
fn check_schemas(
    scored: &Arc<dyn TableProvider>,
    centroids: &Arc<dyn TableProvider>,
    p: &Params,
) -> Result<()> {
    let any = |_: &DataType| true;
    let numeric = |t: &DataType| t.is_numeric();
    let integer = |t: &DataType| t.is_integer();
    require_column(scored, &p.scored, "scored", "id", any, "any type")?;
    require_column(scored, &p.scored, "scored", "quality", numeric, "numeric")?;
    require_column(
        scored,
        &p.scored,
        "scored",
        "cluster",
        integer,
        "an integer",
    )?;
    require_column(scored, &p.scored, "scored", "distance", numeric, "numeric")?;
    require_column(scored, &p.scored, "scored", "tokens", integer, "an integer")?;
    require_column(
        centroids,
        &p.centroids,
        "centroids",
        "cluster",
        integer,
        "an integer",
    )?;
    require_column(
        centroids,
        &p.centroids,
        "centroids",
        "centroid",
        |t| check_type(t, NAME, "centroids").is_ok(),
        "a List or FixedSizeList of Float32/Float64",
    )?;
    require_column(
        centroids,
        &p.centroids,
        "centroids",
        "metric",
        |t| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
        "a string ('cosine' or 'l2')",
    )?;

    Ok(())
}

/// Stage 1: `__c_cl` (every centroid's cluster id) and `__sep`, its separation from the
/// other centroids (mean or min of `samplemix_distance`; 0 with a single centroid), computed
/// here from the k centroids already read for validation ([`separation`], the same f64
/// distances and exact sum the SQL form uses) and entered as a `VALUES` list: a k × k join in
/// the plan took longer than a pass over ten million scored rows.
fn separation_plan(state: &SessionState, centroids: &Centroids, p: &Params) -> Result<DataFrame> {
    let rows: Vec<Vec<Expr>> = centroids
        .ids()
        .iter()
        .zip(separation(centroids, p.separation))
        .map(|(id, sep)| vec![lit(i64::from(*id)), lit(sep)])
        .collect();
    let plan = named_values(rows, &["__c_cl", "__sep"])?;
    Ok(DataFrame::new(state.clone(), plan))
}

/// Columns that cross stage boundaries. The scored rows (stage 2): `id` and these four.
const QUALITY: &str = "__quality";
const CLUSTER: &str = "__cluster";
const DISTANCE: &str = "__distance";
const TOKENS: &str = "__tokens";
/// The cluster table (stage 3), one row per cluster: its id, diversity and normalised
/// diversity, and the global statistics every row needs.
const K_CLUSTER: &str = "__kcl";
const DIVERSITY: &str = "__div";
const DIVERSITY_NORM: &str = "__dn";
const G_QMIN: &str = "__gqmin";
const G_QMAX: &str = "__gqmax";
const G_WMAX: &str = "__gwmax";
const G_ROWS: &str = "__gn";
const G_TOKENS: &str = "__gt";
/// Per row (stage 4): normalised quality, weight, softmax numerator, expected count.
const QUALITY_NORM: &str = "__qn";
const WEIGHT: &str = "__w";
const NUMERATOR: &str = "__e";
const EXPECTED: &str = "__c";

/// The plan: schema and centroid checks (stage 0), separation (1), scored rows (2), the
/// cluster table (3), per-row weights and expected counts (4), counts and output (5).
fn build(state: &SessionState, p: &Params) -> Result<DataFrame> {
    let (scored_ref, scored) = resolve(state, &p.scored, "scored")?;
    let (cent_ref, centroids) = resolve(state, &p.centroids, "centroids")?;
    check_schemas(&scored, &centroids, p)?;
    let fitted = validate_centroids(state, &cent_ref, &centroids, &p.centroids)?;
    let scan = |r: &TableReference, t: &Arc<dyn TableProvider>| -> Result<DataFrame> {
        Ok(DataFrame::new(
            state.clone(),
            LogicalPlanBuilder::scan(r.clone(), provider_as_source(Arc::clone(t)), None)?
                .build()?,
        ))
    };
    let separation = separation_plan(state, &fitted, p)?;
    let rows = |with_checks: bool| scored_rows(scan(&scored_ref, &scored)?, with_checks);
    // The k-row cluster table is computed now and travels as literals: every later pass joins
    // a small VALUES list instead of re-running the per-cluster aggregate over `scored`.
    let clusters = materialise(state, cluster_table(rows(true)?, separation, p)?)?;
    // The small side first: it is the build side of the hash join.
    let weighted = || -> Result<DataFrame> {
        with_weights(
            clusters.clone().join(
                rows(false)?,
                JoinType::Inner,
                &[K_CLUSTER],
                &[CLUSTER],
                None,
            )?,
            p,
        )
    };
    let (rows_out, expected, capped) = expected_counts(&weighted, p)?;
    output(rows_out, expected, capped, p)
}

/// Stage 2: the scored rows, typed: `id`, [`QUALITY`], [`CLUSTER`], [`DISTANCE`], [`TOKENS`].
/// `with_checks` adds the checks of the value columns (finite quality, known cluster, ...); the
/// first pass, which runs while planning and reads every row, has them, the later passes need not.
fn scored_rows(scan: DataFrame, with_checks: bool) -> Result<DataFrame> {
    let assert = assert_udf();
    // The id check stays in every pass: a pass that does not read `id` drops it, so the first
    // pass (a per-cluster aggregate) never runs it and the output pass must.
    let id = call(
        &assert,
        vec![
            col("id"),
            col("id").is_not_null(),
            lit(format!(
                "{NAME}: column 'id' of 'scored' has NULL values (every row needs an id: it seeds the rounding)"
            )),
            lit("NULL"),
        ],
    )
    .alias("id");
    if !with_checks {
        return scan.select(vec![
            id,
            cast(col("quality"), DataType::Float64).alias(QUALITY),
            cast(col("cluster"), DataType::Int64).alias(CLUSTER),
            cast(col("distance"), DataType::Float64).alias(DISTANCE),
            cast(col("tokens"), DataType::Int64).alias(TOKENS),
        ]);
    }
    scan.select(vec![
        id,
        checked(&assert, "quality", DataType::Float64),
        checked(&assert, "cluster", DataType::Int64),
        checked(&assert, "distance", DataType::Float64),
        checked(&assert, "tokens", DataType::Int64),
    ])
}

/// x scaled from [lo, hi] to [0, 1] (0 when the range is empty).
fn norm(x: Expr, lo: &str, hi: &str) -> Result<Expr> {
    when(col(hi).gt(col(lo)), (x - col(lo)) / (col(hi) - col(lo))).otherwise(lit(0.0))
}

/// Stage 3, the first pass over the rows: per-cluster statistics joined with the separation,
/// then diversity (separation / compactness, with the small-cluster guard), and the global
/// statistics as window functions over those k rows only.
fn cluster_table(rows: DataFrame, separation: DataFrame, p: &Params) -> Result<DataFrame> {
    let (assert, exact) = (assert_udf(), exact_sum_udaf());
    let per_cluster = rows.aggregate(
        vec![col(CLUSTER).alias("__k_cl")],
        vec![
            count(lit(1)).alias("__n"),
            // Σ tokens as Decimal128(38, 0): an Int64 sum wraps silently past 2^63.
            sum(cast(col(TOKENS), DataType::Decimal128(38, 0))).alias("__t"),
            exact.call(vec![col(DISTANCE)]).alias("__dsum"),
            min(col(QUALITY)).alias("__qmin_j"),
            max(col(QUALITY)).alias("__qmax_j"),
        ],
    )?;
    let clusters = separation
        .join(per_cluster, JoinType::Right, &["__c_cl"], &["__k_cl"], None)?
        .select(vec![
            call(
                &assert,
                vec![
                    col("__k_cl"),
                    col("__c_cl").is_not_null(),
                    lit(format!(
                        "{NAME}: a cluster of 'scored' is absent from 'centroids' ('{}'): cluster ",
                        p.centroids
                    )),
                    col("__k_cl"),
                ],
            )
            .alias(K_CLUSTER),
            col("__n"),
            col("__t"),
            col("__qmin_j"),
            col("__qmax_j"),
            col("__sep"),
            (col("__dsum") / f64c(col("__n"))).alias("__comp"),
        ])?
        .window(vec![
            over_all(sum_udaf(), col("__n")).alias(G_ROWS),
            over_all(sum_udaf(), col("__t")).alias(G_TOKENS),
            over_all(min_udaf(), col("__qmin_j")).alias(G_QMIN),
            over_all(max_udaf(), col("__qmax_j")).alias(G_QMAX),
            over_all(
                min_udaf(),
                when(col("__comp").gt(lit(0.0)), col("__comp")).end()?,
            )
            .alias("__gcmin"),
        ])?;
    // A zero compactness takes the smallest positive one (1 when none is positive).
    let compactness = when(col("__comp").gt(lit(0.0)), col("__comp"))
        .otherwise(coalesce(vec![col("__gcmin"), lit(1.0)]))?;
    let mut clusters = clusters.with_column(DIVERSITY, col("__sep") / compactness)?;
    let m = p.options.min_cluster_size;
    if m > 1 {
        // The small-cluster guard: a cluster with fewer than m rows takes the median diversity
        // of the clusters that have enough (of all clusters when none has).
        clusters = clusters
            .window(vec![
                over_all(
                    median_udaf(),
                    when(col("__n").gt_eq(lit(m)), col(DIVERSITY)).end()?,
                )
                .alias("__dmed_big"),
                over_all(median_udaf(), col(DIVERSITY)).alias("__dmed_all"),
            ])?
            .with_column(
                DIVERSITY,
                when(
                    col("__n").lt(lit(m)),
                    coalesce(vec![col("__dmed_big"), col("__dmed_all")]),
                )
                .otherwise(col(DIVERSITY))?,
            )?;
    }
    let clusters = clusters.window(vec![
        over_all(min_udaf(), col(DIVERSITY)).alias("__gdmin"),
        over_all(max_udaf(), col(DIVERSITY)).alias("__gdmax"),
    ])?;
    // The largest weight is the largest per-cluster α·d_norm + (1−α)·q_norm(max quality).
    clusters
        .with_column(DIVERSITY_NORM, norm(col(DIVERSITY), "__gdmin", "__gdmax")?)?
        .with_column(
            "__wtop",
            lit(p.alpha) * col(DIVERSITY_NORM)
                + lit(1.0 - p.alpha) * norm(col("__qmax_j"), G_QMIN, G_QMAX)?,
        )?
        .window(vec![over_all(max_udaf(), col("__wtop")).alias(G_WMAX)])?
        .select(vec![
            col(K_CLUSTER),
            col(DIVERSITY),
            col(DIVERSITY_NORM),
            col(G_QMIN),
            col(G_QMAX),
            col(G_WMAX),
            col(G_ROWS),
            col(G_TOKENS),
        ])
}

/// Stage 4, per row: q_norm, weight and the stable softmax numerator e = exp((w − w_max)/τ).
fn with_weights(df: DataFrame, p: &Params) -> Result<DataFrame> {
    df.with_column(QUALITY_NORM, norm(col(QUALITY), G_QMIN, G_QMAX)?)?
        .with_column(
            WEIGHT,
            lit(p.alpha) * col(DIVERSITY_NORM) + lit(1.0 - p.alpha) * col(QUALITY_NORM),
        )?
        .with_column(NUMERATOR, exp((col(WEIGHT) - col(G_WMAX)) / lit(p.tau)))
}

/// Stage 4, expected counts: the rows to finish and the expression of each row's expected
/// count (and, with `max_copies`, its uncapped value). Without a cap, the second pass sums the
/// softmax denominators and the third joins them back; with a cap, [`water_fill`] finds the
/// scale while planning and the rows need no second pass.
fn expected_counts(
    weighted: &dyn Fn() -> Result<DataFrame>,
    p: &Params,
) -> Result<(DataFrame, Expr, Option<Expr>)> {
    let exact = exact_sum_udaf();
    let (rows, expected, capped) = match p.options.max_copies {
        None => {
            // The softmax denominators, summed exactly while planning (one pass); the output
            // pass then divides by literals.
            // Only the mode's own sum: the other may not be summable (huge token counts).
            let numerator = match p.mode {
                Mode::Documents => col(NUMERATOR),
                Mode::Tokens => col(NUMERATOR) * f64c(col(TOKENS)),
            };
            let z = query(
                weighted()?.aggregate(vec![], vec![exact.call(vec![numerator]).alias("__z")])?,
            )?[0];
            let expected = match p.mode {
                Mode::Documents => {
                    doc_target(f64c(col(G_ROWS)) * lit(p.budget) / f64c(col(G_TOKENS)), p)
                        * col(NUMERATOR)
                        / lit(z)
                }
                Mode::Tokens => lit(p.budget) * col(NUMERATOR) / lit(z),
            };
            (weighted()?, expected, None)
        }
        Some(cap) => {
            let lambda = water_fill(&weighted()?, p, cap as f64, &exact)?;
            let scaled = lit(lambda) * col(NUMERATOR);
            let cap = lit(cap as f64);
            let expected =
                when(scaled.clone().gt_eq(cap.clone()), cap).otherwise(scaled.clone())?;
            (weighted()?, expected, Some(scaled))
        }
    };
    // An infinite expected count (all-zero tokens in 'tokens' mode, a budget beyond f64) would
    // otherwise surface as "Can't cast value inf to Int64".
    let expected = call(
        &assert_udf(),
        vec![
            expected.clone(),
            // Counts are Int64: an expected count must be a number below 2^63.
            coalesce(vec![expected.between(lit(0.0), lit(9.2e18)), lit(false)]),
            lit(format!(
                "{NAME}: an expected count is not a number below 9.2e18 (counts are Int64): in 'tokens' mode every row of 'scored' has 0 tokens, or budget_tokens is too large; id: "
            )),
            col("id"),
        ],
    );
    Ok((rows, expected, capped))
}

/// Stage 5: integer counts (independent or systematic rounding seeded by `id` and the seed)
/// and the output columns.
fn output(rows: DataFrame, expected: Expr, capped: Option<Expr>, p: &Params) -> Result<DataFrame> {
    let u = call(&uniform_udf(), vec![col("id"), lit(p.seed)]);
    let with_c = rows.with_column(EXPECTED, expected)?;
    let (with_c, count) = match p.options.rounding {
        Rounding::Independent => (
            with_c,
            cast(floor(col(EXPECTED)), DataType::Int64)
                + when(u.lt(col(EXPECTED) - floor(col(EXPECTED))), lit(1i64))
                    .otherwise(lit(0i64))?,
        ),
        Rounding::Systematic => systematic(with_c, u, p.seed, p.mode == Mode::Documents)?,
    };
    let mut out = vec![
        col("id"),
        col(QUALITY_NORM).alias("quality_norm"),
        col(DIVERSITY).alias("diversity"),
        col(DIVERSITY_NORM).alias("diversity_norm"),
        col(WEIGHT).alias("weight"),
        col(EXPECTED).alias("expected_count"),
        count.alias("count"),
    ];
    if let (Some(scaled), Some(cap)) = (capped, p.options.max_copies) {
        out.push(scaled.gt_eq(lit(cap as f64)).alias("capped"));
    }
    with_c.select(out)
}

/// The document target N·budget/T_src of 'documents' mode; with systematic rounding it is
/// rounded to a whole number first, so that Σ expected is a whole number and Σ count can
/// equal it exactly without biasing any document's count.
fn doc_target(target: Expr, p: &Params) -> Expr {
    match p.options.rounding {
        Rounding::Independent => target,
        Rounding::Systematic => floor(target + lit(0.5)),
    }
}

/// Systematic rounding in the plan: fractional parts in 2^-32 fixed point (Int64, so the
/// running sums are exact and order-independent), one running sum over the (tokens, u, id)
/// order, a comb offset drawn from the seed, and each row's extra copies = comb points in its
/// slice. With `whole_total` ('documents' mode, where Σ expected is a whole number up to the
/// fixed-point rounding) the offset avoids the sliver that rounding leaves, so Σ count is
/// exactly round(Σ expected) (`weights::systematic_offset`, the same formula); otherwise it is
/// uniform over the unit, and Σ count is ⌊Σ expected⌋ or ⌈Σ expected⌉.
fn systematic(df: DataFrame, u: Expr, seed: i64, whole_total: bool) -> Result<(DataFrame, Expr)> {
    let unit = SYSTEMATIC_UNIT;
    let whole = floor(col(EXPECTED));
    let fu = cast(
        floor((col(EXPECTED) - whole) * lit(unit as f64) + lit(0.5)),
        DataType::Int64,
    );
    let running = Expr::from(WindowFunction::new(sum_udaf(), vec![col("__fu")]))
        .order_by(vec![
            col(TOKENS).sort(true, false),
            col("__u").sort(true, false),
            col("id").sort(true, false),
        ])
        .window_frame(WindowFrame::new_bounds(
            WindowFrameUnits::Rows,
            WindowFrameBound::Preceding(ScalarValue::UInt64(None)),
            WindowFrameBound::CurrentRow,
        ))
        .build()?;
    let df = df
        .with_column("__fu", fu)?
        .with_column("__u", u)?
        // Two window nodes: one node's functions must share their ORDER BY.
        .window(vec![over_all(sum_udaf(), col("__fu")).alias("__total")])?
        .window(vec![running.alias("__after")])?;
    let target = (col("__total") + lit(unit / 2)) / lit(unit);
    let disc = col("__total") - target * lit(unit);
    let (lo, hi) = if whole_total {
        (
            when(disc.clone().gt(lit(0i64)), disc.clone()).otherwise(lit(0i64))?,
            lit(unit) + when(disc.clone().lt(lit(0i64)), disc).otherwise(lit(0i64))?,
        )
    } else {
        (lit(0i64), lit(unit))
    };
    let draw = uniform(b"samplemix systematic rounding", seed);
    let offset = lo.clone() + cast(floor(lit(draw) * f64c(hi.clone() - lo)), DataType::Int64);
    let df = df.with_column(
        "__off",
        when(offset.clone().gt_eq(hi.clone()), hi - lit(1i64)).otherwise(offset)?,
    )?;
    let comb = |f: Expr| (f - col("__off") + lit(unit - 1)) / lit(unit);
    let count = cast(floor(col(EXPECTED)), DataType::Int64) + comb(col("__after"))
        - comb(col("__after") - col("__fu"));
    Ok((df, count))
}

/// The scale λ of the repeat cap (water-filling): c = min(cap, λ·e) with Σ c·mass = target
/// (mass = tokens in 'tokens' mode, 1 in 'documents' mode). Documents whose λ·e reaches the cap
/// are fixed at it and λ is rescaled over the others until that set stops growing. Runs small
/// aggregate queries over the weighted rows while planning; every sum is exact, so λ is the
/// same for any partitioning. An unreachable target is an error giving the most the cap allows.
fn water_fill(
    weighted: &DataFrame,
    p: &Params,
    cap: f64,
    exact: &Arc<AggregateUDF>,
) -> Result<f64> {
    let mass = match p.mode {
        Mode::Tokens => f64c(col(TOKENS)),
        Mode::Documents => lit(1.0),
    };
    let totals = query(weighted.clone().aggregate(
        vec![],
        vec![
            f64c(count(lit(1))),
            f64c(sum(cast(col(TOKENS), DataType::Decimal128(38, 0)))),
            exact.call(vec![col(NUMERATOR) * mass.clone()]),
        ],
    )?)?;
    let (n, tokens, weight) = (totals[0], totals[1], totals[2]);
    if n == 0.0 {
        return Ok(0.0);
    }
    let (target, most, unit) = match p.mode {
        Mode::Tokens => (p.budget, cap * tokens, "tokens"),
        Mode::Documents => {
            let target = n * p.budget / tokens;
            let target = match p.options.rounding {
                Rounding::Independent => target,
                Rounding::Systematic => (target + 0.5).floor(),
            };
            (target, cap * n, "documents")
        }
    };
    if most < target {
        return plan_err!(
            "{NAME}: max_copies={cap} cannot meet the budget: at most {most} {unit} (every document {cap} times), the budget needs {target}; raise max_copies or lower budget_tokens"
        );
    }
    let mut lambda = target / weight;
    let mut capped_rows = -1.0;
    for _ in 0..200 {
        let scaled = lit(lambda) * col(NUMERATOR);
        let is_capped = scaled.gt_eq(lit(cap));
        let r = query(weighted.clone().aggregate(
            vec![],
            vec![
                f64c(sum(
                    when(is_capped.clone(), lit(1i64)).otherwise(lit(0i64))?,
                )),
                exact.call(vec![
                    when(is_capped.clone(), mass.clone()).otherwise(lit(0.0))?,
                ]),
                exact.call(vec![
                    when(is_capped, lit(0.0)).otherwise(col(NUMERATOR) * mass.clone())?,
                ]),
            ],
        )?)?;
        let (rows, capped_mass, rest) = (r[0], r[1], r[2]);
        if rows == capped_rows || rest == 0.0 {
            break;
        }
        capped_rows = rows;
        lambda = (target - cap * capped_mass) / rest;
    }
    Ok(lambda)
}

/// Run a small plan now and return it as a `VALUES` plan with the same column names and types
/// (an empty result becomes the original plan filtered to nothing: `VALUES` needs a row).
fn materialise(state: &SessionState, df: DataFrame) -> Result<DataFrame> {
    let original = df.clone();
    let batches = block_on_helper(NAME, async move { df.collect().await })?;
    match batches_as_values(&batches)? {
        Some(plan) => Ok(DataFrame::new(state.clone(), plan)),
        None => original.filter(lit(false)),
    }
}

/// Run a one-row aggregate while planning and return its values as f64 (NULL → 0).
fn query(df: DataFrame) -> Result<Vec<f64>> {
    let batches = block_on_helper(NAME, async move { df.collect().await })?;
    let mut out = Vec::new();
    if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
        for column in batch.columns() {
            let v = datafusion::arrow::compute::cast(column, &DataType::Float64)?;
            let v = v.as_primitive::<Float64Type>();
            out.push(if v.is_null(0) { 0.0 } else { v.value(0) });
        }
    }
    if out.is_empty() {
        return plan_err!("{NAME}: internal error: a planning aggregate returned no row");
    }
    Ok(out)
}

impl TableFunctionImpl for SamplemixWeights {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let params = parse(args.exprs())?;
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{NAME}: needs a DataFusion SessionState");
        };
        let df = build(state, &params)?;
        Ok(Arc::new(ViewTable::new(df.into_unoptimized_plan(), None)))
    }
}
