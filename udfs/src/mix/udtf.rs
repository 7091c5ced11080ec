//! SQL glue for `samplemix_weights(scored, centroids, alpha, tau, budget_tokens [, seed [, mode
//! [, separation [, options]]]])`: docs/METHOD.md "Weights and counts" as a view over ordinary DataFusion
//! operators (a `ViewTable` over a `LogicalPlan`), so it streams, runs in parallel, respects
//! the memory pool and serialises like any plan.
//!
//! With the default options `scored` is read twice, once while planning:
//! 0. the global quality range: a min/max aggregate, which DataFusion answers from Parquet
//!    statistics when the files have them (no scan);
//! 1. the statistics pass, per cluster: rows, tokens, Σ distance (→ compactness), top quality
//!    and S(j) = Σ b(x)·m(x), the cluster's part of the softmax denominator ([`Softmax`]: the
//!    numerator factors into a per-cluster and a per-row part, and the per-row part needs only
//!    the quality range). It checks every value and does not read `id`. The k rows it returns
//!    give the diversities, w_max, each cluster's factor a(j) and Z = Σ a(j)·S(j); they enter
//!    the plan as constant packed tables that `samplemix_lookup` reads by cluster id (or, for
//!    sparse ids, as a `VALUES` list joined to the rows) and literals, with κ·a(j) (κ = scale / Z)
//!    premultiplied, so a row's expected count is one product;
//! 2. the output projection: the only pass the returned plan makes.
//!
//! Every e^x is `samplemix_exp` (`super::exp`), the same bits on every CPU.
//!
//! The centroids' separation is computed while planning from the k centroids. With
//! (1 − α)/τ > 700 one more pass computes S(j) with each cluster's own top quality as the
//! reference; `rounding=systematic` adds one window over all rows; `max_copies` adds the few
//! aggregates of [`water_fill`].
//!
//! Every float sum uses `samplemix_exact_sum` (or its [`ExactSum`]), so outputs are
//! bit-identical for any partitioning, thread count or input order.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::{
    plan_datafusion_err, plan_err, DataFusionError, JoinType, TableReference,
};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::functions_aggregate::median::median_udaf;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    cast, col, lit, when, AggregateUDF, Expr, LogicalPlanBuilder, ScalarUDF,
};
use futures::FutureExt;

use super::exp::exp as portable_exp;
use super::lookup::KeyIndex;
use super::udaf::exact_sum_udaf;
use super::udf::{assert_udf, exp_udf, lookup_packed, lookup_udf, round_udf};
use super::udwf::systematic_round_udwf;
use super::weights::{separation, ExactSum, Mode, Separation};
use crate::args::{
    block_on_helper, choice_arg, choice_of, choice_traits, literal_f64, literal_str, table_name,
    Choice,
};
use crate::cluster::assign::Centroids;
use crate::cluster::centroids::read_centroids;
use crate::cluster::vectors::check_type;
use crate::plans::named_values;

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
    /// Systematic rounding (`samplemix_systematic_round`, [`super::weights::systematic_counts`]):
    /// E[n] = c still holds for every document; in 'documents' mode Σ n = round(Σ c) exactly,
    /// in 'tokens' mode long documents are balanced against shorter ones first, so realised
    /// tokens miss the budget by about one short document.
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

const OPTION_KEYS: [&str; 3] = ["rounding", "max_copies", "min_cluster_size"];

fn parse_options(text: &str) -> Result<Options> {
    let mut o = Options::default();
    for (key, value) in crate::args::parse_options(NAME, text, &OPTION_KEYS)? {
        let positive = |what: &str| -> Result<i64> {
            match value.parse::<i64>() {
                Ok(v) if v >= 1 => Ok(v),
                _ => plan_err!(
                    "{NAME}: argument 'options': {what} must be a positive integer, got '{value}'"
                ),
            }
        };
        match key.as_str() {
            "rounding" => o.rounding = choice_of(&value, NAME, "options: rounding")?,
            "max_copies" => o.max_copies = Some(positive("max_copies")?),
            _ => o.min_cluster_size = positive("min_cluster_size")?,
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
            "{NAME}: argument 'budget_tokens' must be a positive number of tokens, got {}",
            crate::args::show(budget)
        );
    }
    let seed = exprs
        .get(5)
        .map_or(Ok(0), |e| crate::args::literal_seed(e, NAME, "seed"))?;
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

/// The rule a `scored` column must follow: (ok, what breaks it). `value` is the column
/// already cast to its type.
fn value_rule(column: &str, value: Expr) -> (Expr, &'static str) {
    let finite = |v: Expr| v.between(lit(f64::MIN), lit(f64::MAX));
    match column {
        "id" => (
            value.is_not_null(),
            "NULL values (every row needs an id: it seeds the rounding)",
        ),
        "quality" => (finite(value), "NULL, NaN or infinite values"),
        "distance" => (
            finite(value.clone()).and(value.gt_eq(lit(0.0))),
            "NULL, NaN, infinite or negative values (distances are >= 0)",
        ),
        "tokens" => (
            value.gt_eq(lit(0i64)),
            "NULL or negative values (token counts are >= 0)",
        ),
        _ => (value.is_not_null(), "NULL values"),
    }
}

/// The columns of `scored` and the types the plan reads them as, in the order their rules
/// are reported.
const SCORED_COLUMNS: [(&str, DataType); 5] = [
    ("id", DataType::Utf8),
    ("quality", DataType::Float64),
    ("cluster", DataType::Int64),
    ("distance", DataType::Float64),
    ("tokens", DataType::Int64),
];

/// Stage 2a, the checks: one aggregate of counts and extremes (`count(quality) = count(*)`,
/// finite min/max quality, min distance >= 0, min tokens >= 0, ...), which DataFusion answers
/// from Parquet statistics when the files have them, so the passes over the rows carry no
/// per-row checks. NaN (absent from Parquet statistics) still fails the statistics pass,
/// whose exact sums refuse it. Returns the global quality range.
fn checked_quality_range(scan: &dyn Fn() -> Result<DataFrame>) -> Result<Checked> {
    let c = |name: &str| count(col(name));
    let v = query(scan()?.aggregate(
        vec![],
        vec![
            // An Int64 literal: DataFusion answers count(Int64(1)) from statistics, not
            // count(Int32(1)).
            count(lit(1i64)),
            c("id"),
            c("quality"),
            c("cluster"),
            c("distance"),
            c("tokens"),
            min(col("quality")),
            max(col("quality")),
            min(col("distance")),
            max(col("distance")),
            min(col("tokens")),
            max(col("tokens")),
        ],
    )?)?;
    let n = v[0];
    if n == 0.0 {
        return Ok(Checked::default());
    }
    let all_counted = v[1..6].iter().all(|c| *c == n);
    let (qmin, qmax, dmin, dmax, tmin) = (v[6], v[7], v[8], v[9], v[10]);
    let finite = qmin.is_finite() && qmax.is_finite() && dmin.is_finite() && dmax.is_finite();
    if all_counted && finite && dmin >= 0.0 && tmin >= 0.0 {
        return Ok(Checked {
            qmin,
            qmax,
            // No sum of `tokens` can pass 2^63 when rows × max does not (with a margin for the
            // f64 figures): then per-cluster sums can be Int64, not Decimal128.
            int64_tokens: n * v[11] < 9.0e18,
        });
    }
    Err(offending_row(
        &scan()?,
        plan_datafusion_err!(
            "{NAME}: 'scored' has NULL, NaN, infinite or negative values in id, quality, cluster, distance or tokens"
        ),
    ))
}

/// What the checks found out: the quality range, and whether token sums fit Int64.
#[derive(Default)]
struct Checked {
    qmin: f64,
    qmax: f64,
    int64_tokens: bool,
}

/// After a failed check or statistics pass: the first rule some row of `scored` breaks, with
/// the id of one such row; `error` itself when no row breaks one (it failed for another
/// reason).
fn offending_row(scan: &DataFrame, error: DataFusionError) -> DataFusionError {
    for (column, as_type) in SCORED_COLUMNS {
        let (ok, rule) = value_rule(column, cast(col(column), as_type));
        let found = scan
            .clone()
            .filter(!coalesce(vec![ok, lit(false)]))
            .and_then(|df| df.select(vec![cast(col("id"), DataType::Utf8).alias("id")]))
            .and_then(|df| df.limit(0, Some(1)));
        let Ok(df) = found else { continue };
        let Ok(batches) = block_on_helper(NAME, async move { df.collect().await }) else {
            continue;
        };
        if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
            if column == "id" {
                return plan_datafusion_err!("{NAME}: column 'id' of 'scored' has {rule}");
            }
            let ids = batch.column(0).as_string::<i32>();
            return plan_datafusion_err!(
                "{NAME}: column '{column}' of 'scored' has {rule}; filter those rows first; id of one: {}",
                ids.value(0)
            );
        }
    }
    error
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

/// Stage 1: each centroid's separation from the other centroids (mean or min of
/// `samplemix_distance`; 0 with a single centroid), computed here from the k centroids already
/// read for validation ([`separation`], the same f64 distances and exact sum the SQL form uses)
/// and given to the per-cluster rows as a `samplemix_lookup` of their cluster in a packed
/// table: a k × k join in the plan took longer than a pass over ten million scored rows, and a
/// `VALUES` list of k rows cost the planner ~2k expressions to check and simplify. NULL for a
/// cluster absent from the centroids.
fn separation_lookup(centroids: &Centroids, p: &Params, cluster: Expr) -> Expr {
    let ids = centroids.ids();
    let keys = lookup_packed(ids.iter().map(|id| i64::from(*id) as u64));
    let values = lookup_packed(
        separation(centroids, p.separation)
            .into_iter()
            .map(f64::to_bits),
    );
    call(&lookup_udf(), vec![cluster, lit(keys), lit(values)])
}

/// Columns that cross stage boundaries. The scored rows (stage 2): `id` and these four.
const QUALITY: &str = "__quality";
const CLUSTER: &str = "__cluster";
const DISTANCE: &str = "__distance";
const TOKENS: &str = "__tokens";
/// The cluster table (stage 3), one row per cluster: its id, diversity, normalised diversity,
/// softmax factor a(j) and the reference quality of b(x) (when it is per cluster).
const K_CLUSTER: &str = "__kcl";
const DIVERSITY: &str = "__div";
const DIVERSITY_NORM: &str = "__dn";
const FACTOR: &str = "__a";
const REFERENCE: &str = "__ref";
const COUNT_FACTOR: &str = "__ka";
/// Per row (stage 4): normalised quality, weight, softmax numerator, expected count.
const QUALITY_NORM: &str = "__qn";
const WEIGHT: &str = "__w";
const NUMERATOR: &str = "__e";
const EXPECTED: &str = "__c";

/// Above this (1 − α)/τ, b(x) relative to the global top quality could underflow f64
/// (e^-708), so each cluster's own top quality is the reference (one more pass).
const GLOBAL_REFERENCE_LIMIT: f64 = 700.0;

/// The softmax numerator, split: e(x) = exp((w(x) − w_max)/τ) = a(j)·b(x) with
/// b(x) = exp(γ·(q(x) − r)), γ = (1 − α)/(τ·Δq), and the cluster factor
/// a(j) = exp((α·d_norm(j) + (1 − α)·q_norm(r) − w_max)/τ). The per-cluster sums
/// S(j) = Σ_{x∈j} b(x)·m(x) need only the global quality range, not the diversities, so they
/// are taken in the same pass as the other per-cluster statistics, and
/// Z = Σ_j a(j)·S(j) needs no pass of its own.
struct Softmax {
    /// Global quality range [min, max] (from a min/max aggregate, often answered by Parquet
    /// statistics without a scan).
    qmin: f64,
    qmax: f64,
    gamma: f64,
    /// The reference r: the global top quality (b(x) ≤ 1, ≥ e^-(1−α)/τ), or, above
    /// [`GLOBAL_REFERENCE_LIMIT`], each cluster's own top quality (both factors ≤ 1).
    per_cluster: bool,
}

impl Softmax {
    fn new(qmin: f64, qmax: f64, p: &Params) -> Self {
        // A NaN or infinite quality reaches here only through a min/max the statistics pass
        // will reject with its own message; until then any finite range will do.
        let (qmin, qmax) = if qmin.is_finite() && qmax.is_finite() {
            (qmin, qmax)
        } else {
            (0.0, 0.0)
        };
        let gamma = if qmax > qmin {
            (1.0 - p.alpha) / (p.tau * (qmax - qmin))
        } else {
            0.0
        };
        Self {
            qmin,
            qmax,
            gamma,
            per_cluster: (1.0 - p.alpha) / p.tau > GLOBAL_REFERENCE_LIMIT,
        }
    }

    /// q_norm = (q − q_min)/(q_max − q_min), 0 when all qualities are equal.
    fn norm(&self, q: Expr) -> Expr {
        if self.qmax > self.qmin {
            (q - lit(self.qmin)) / lit(self.qmax - self.qmin)
        } else {
            lit(0.0)
        }
    }

    fn norm_f64(&self, q: f64) -> f64 {
        if self.qmax > self.qmin {
            (q - self.qmin) / (self.qmax - self.qmin)
        } else {
            0.0
        }
    }

    /// The reference r of b(x): a literal, or the cluster table's column.
    fn reference(&self) -> Expr {
        if self.per_cluster {
            col(REFERENCE)
        } else {
            lit(self.qmax)
        }
    }

    /// b(x); the same expression in the statistics and the output pass, so S(j) sums exactly
    /// the values the rows use.
    fn row_factor(&self, reference: Expr) -> Expr {
        call(
            &exp_udf(),
            vec![(col(QUALITY) - reference) * lit(self.gamma)],
        )
    }

    /// m(x): what a copy costs in the budget's unit.
    fn mass(p: &Params) -> Expr {
        match p.mode {
            Mode::Documents => lit(1.0),
            Mode::Tokens => f64c(col(TOKENS)),
        }
    }
}

/// The plan: schema and centroid checks (stage 0), separation (1), scored rows (2), the
/// quality range and the cluster table with the softmax denominator, both computed while
/// planning (3), per-row weights and expected counts (4), counts and output (5).
fn build(state: &SessionState, p: &Params) -> Result<DataFrame> {
    let (scored_ref, scored) = resolve(state, &p.scored, "scored")?;
    let (cent_ref, centroids) = resolve(state, &p.centroids, "centroids")?;
    check_schemas(&scored, &centroids, p)?;
    let fitted = validate_centroids(state, &cent_ref, &centroids, &p.centroids)?;
    let scan = || -> Result<DataFrame> {
        Ok(DataFrame::new(
            state.clone(),
            LogicalPlanBuilder::scan(
                scored_ref.clone(),
                provider_as_source(Arc::clone(&scored)),
                None,
            )?
            .build()?,
        ))
    };
    let separation = separation_lookup(&fitted, p, col("__k_cl"));
    let checked = checked_quality_range(&scan)?;
    let softmax = Softmax::new(checked.qmin, checked.qmax, p);
    let clusters = cluster_table(state, &scan, separation, &softmax, checked.int64_tokens, p)?;
    let kappa = count_scale(&clusters, p)?;
    let weighted = || -> Result<DataFrame> {
        with_weights(clusters.attach(state, scan()?, kappa)?, &softmax, p)
    };
    let (rows_out, expected, capped) = expected_counts(&weighted, &softmax, p)?;
    output(rows_out, expected, capped, p)
}

/// Stage 2b: the scored rows, typed: `id`, [`QUALITY`], [`CLUSTER`], [`DISTANCE`],
/// [`TOKENS`] (checked beforehand by [`checked_quality_range`]).
fn scored_rows(scan: DataFrame) -> Result<DataFrame> {
    scan.select(vec![
        col("id"),
        cast(col("quality"), DataType::Float64).alias(QUALITY),
        cast(col("cluster"), DataType::Int64).alias(CLUSTER),
        cast(col("distance"), DataType::Float64).alias(DISTANCE),
        cast(col("tokens"), DataType::Int64).alias(TOKENS),
    ])
}

/// The cluster table, computed while planning: one row per cluster (`table`), which
/// [`Clusters::attach`] gives to each row (constant lists, or a `VALUES` list it joins); the
/// global statistics are plain numbers.
struct Clusters {
    /// Per cluster: its id, and its diversity, normalised diversity, a(j) and the reference
    /// quality r of b(x).
    table: Vec<(i64, [f64; 4])>,
    /// N and T_src: rows and tokens of `scored`.
    rows: i64,
    tokens: f64,
    /// Z = Σ_j a(j)·S(j), summed exactly.
    z: f64,
}

/// Stage 3, the statistics pass over the rows: per cluster rows, tokens, Σ distance
/// (→ compactness), top quality and S(j) ([`Softmax`]); with the separation, then
/// diversity (separation / compactness, with the small-cluster guard) and its normalisation
/// over those k rows. The rest (w_max, a(j), Z) is arithmetic on the k collected rows.
fn cluster_table(
    state: &SessionState,
    scan: &dyn Fn() -> Result<DataFrame>,
    separation: Expr,
    softmax: &Softmax,
    int64_tokens: bool,
    p: &Params,
) -> Result<Clusters> {
    let (assert, exact) = (assert_udf(), exact_sum_udaf());
    let mut aggregates = vec![
        count(lit(1)).alias("__n"),
        // An Int64 sum wraps silently past 2^63: Decimal128(38, 0) unless the checks showed
        // no sum can get there (the Decimal sum costs a cast and a check per row).
        if int64_tokens {
            sum(col(TOKENS))
        } else {
            sum(cast(col(TOKENS), DataType::Decimal128(38, 0)))
        }
        .alias("__t"),
        exact.call(vec![col(DISTANCE)]).alias("__dsum"),
        max(col(QUALITY)).alias("__qmax_j"),
    ];
    if !softmax.per_cluster {
        aggregates.push(
            exact
                .call(vec![
                    softmax.row_factor(softmax.reference()) * Softmax::mass(p),
                ])
                .alias("__s"),
        );
    }
    let per_cluster =
        scored_rows(scan()?)?.aggregate(vec![col(CLUSTER).alias("__k_cl")], aggregates)?;
    let clusters = per_cluster
        .with_column("__sep", separation)?
        .with_column(
            K_CLUSTER,
            call(
                &assert,
                vec![
                    col("__k_cl"),
                    col("__sep").is_not_null(),
                    lit(format!(
                        "{NAME}: a cluster of 'scored' is absent from 'centroids' ('{}'): cluster ",
                        p.centroids
                    )),
                    col("__k_cl"),
                ],
            ),
        )?
        .with_column("__comp", col("__dsum") / f64c(col("__n")))?
        .window(vec![over_all(
            min_udaf(),
            when(col("__comp").gt(lit(0.0)), col("__comp")).end()?,
        )
        .alias("__gcmin")])?;
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
    let mut keep = vec![
        col(K_CLUSTER),
        col(DIVERSITY),
        norm(col(DIVERSITY), "__gdmin", "__gdmax")?.alias(DIVERSITY_NORM),
        f64c(col("__qmax_j")).alias("__qmax_j"),
        cast(col("__n"), DataType::Int64).alias("__n"),
        cast(col("__t"), DataType::Decimal128(38, 0)).alias("__t"),
    ];
    if !softmax.per_cluster {
        keep.push(col("__s"));
    }
    let table = clusters
        .window(vec![
            over_all(min_udaf(), col(DIVERSITY)).alias("__gdmin"),
            over_all(max_udaf(), col(DIVERSITY)).alias("__gdmax"),
        ])?
        .select(keep)?;
    let batches = match block_on_helper(NAME, async move { table.collect().await }) {
        Ok(b) => b,
        Err(e) => return Err(offending_row(&scan()?, e)),
    };
    let rows = read_cluster_rows(&batches);

    // w_max is the largest per-cluster α·d_norm + (1−α)·q_norm(top quality).
    let w_max = rows
        .iter()
        .map(|r| p.alpha * r.dn + (1.0 - p.alpha) * softmax.norm_f64(r.qmax))
        .fold(f64::NEG_INFINITY, f64::max);
    let reference = |r: &ClusterRow| {
        if softmax.per_cluster {
            r.qmax
        } else {
            softmax.qmax
        }
    };
    let factor = |r: &ClusterRow| {
        portable_exp(
            (p.alpha * r.dn + (1.0 - p.alpha) * softmax.norm_f64(reference(r)) - w_max) / p.tau,
        )
    };
    let sums = if softmax.per_cluster {
        per_cluster_sums(state, scan, &rows, softmax, p)?
    } else {
        rows.iter().map(|r| (r.id, r.s)).collect()
    };
    let mut z = ExactSum::default();
    let mut table = Vec::with_capacity(rows.len());
    for r in &rows {
        let a = factor(r);
        let s = sums.get(&r.id).copied().unwrap_or(0.0);
        z.add(a * s)
            .map_err(|e| plan_datafusion_err!("{NAME}: softmax denominator: {e}"))?;
        table.push((r.id, [r.div, r.dn, a, reference(r)]));
    }
    Ok(Clusters {
        table,
        rows: rows.iter().map(|r| r.n).sum(),
        tokens: rows.iter().map(|r| r.t).sum::<i128>() as f64,
        z: z.value(),
    })
}

impl Clusters {
    /// The scored rows with their cluster's columns ([`K_CLUSTER`] aside): each looked up by
    /// `samplemix_lookup` in constant packed tables when the cluster ids are dense (as
    /// `kmeans_fit` numbers them), which reads only the cluster column; otherwise by a hash
    /// join with [`Clusters::plan`].
    fn attach(&self, state: &SessionState, scan: DataFrame, kappa: f64) -> Result<DataFrame> {
        let rows = scored_rows(scan)?;
        let ids: Vec<i64> = self.table.iter().map(|(id, _)| *id).collect();
        if !matches!(KeyIndex::new(&ids), Ok(KeyIndex::Dense { .. })) {
            // The small side first: it is the build side of the hash join.
            return self.plan(state, kappa)?.join(
                rows,
                JoinType::Inner,
                &[K_CLUSTER],
                &[CLUSTER],
                None,
            );
        }
        // Packed tables (strings), not lists: the planner formats a list constant item by item
        // each time it names or checks an expression, dozens of times per query.
        let keys = lit(lookup_packed(ids.into_iter().map(|id| id as u64)));
        let column = |f: &dyn Fn(&[f64; 4]) -> f64| {
            let values = lookup_packed(self.table.iter().map(|(_, v)| f(v).to_bits()));
            call(&lookup_udf(), vec![col(CLUSTER), keys.clone(), lit(values)])
        };
        rows.with_column(DIVERSITY, column(&|v| v[0]))?
            .with_column(DIVERSITY_NORM, column(&|v| v[1]))?
            .with_column(FACTOR, column(&|v| v[2]))?
            .with_column(REFERENCE, column(&|v| v[3]))?
            .with_column(COUNT_FACTOR, column(&|v| kappa * v[2]))
    }

    /// The cluster table as a `VALUES` plan: [`K_CLUSTER`], [`DIVERSITY`], [`DIVERSITY_NORM`],
    /// [`FACTOR`], [`REFERENCE`] and [`COUNT_FACTOR`] = κ·a(j), so that the output pass
    /// multiplies each row's b(x) by one number (κ = scale / Z; without a cap).
    fn plan(&self, state: &SessionState, kappa: f64) -> Result<DataFrame> {
        let mut rows: Vec<Vec<Expr>> = self
            .table
            .iter()
            .map(|(id, [div, dn, a, reference])| {
                vec![
                    lit(*id),
                    lit(*div),
                    lit(*dn),
                    lit(*a),
                    lit(*reference),
                    lit(kappa * a),
                ]
            })
            .collect();
        if rows.is_empty() {
            // No rows in `scored`: one row that joins nothing keeps the plan's types.
            let mut row = vec![lit(ScalarValue::Int64(None))];
            row.extend((0..5).map(|_| lit(0.0)));
            rows.push(row);
        }
        let plan = named_values(
            rows,
            &[
                K_CLUSTER,
                DIVERSITY,
                DIVERSITY_NORM,
                FACTOR,
                REFERENCE,
                COUNT_FACTOR,
            ],
        )?;
        Ok(DataFrame::new(state.clone(), plan))
    }
}

/// One collected row of the cluster table.
struct ClusterRow {
    id: i64,
    div: f64,
    dn: f64,
    qmax: f64,
    n: i64,
    t: i128,
    /// S(j) when it came with the statistics pass.
    s: f64,
}

/// The collected cluster table: columns in the order `cluster_table` selects them.
fn read_cluster_rows(batches: &[RecordBatch]) -> Vec<ClusterRow> {
    let mut out = Vec::new();
    for b in batches {
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>();
        let g = |i: usize| b.column(i).as_primitive::<Int64Type>();
        let (id, div, dn, qmax, n) = (g(0), f(1), f(2), f(3), g(4));
        let t = b.column(5).as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            out.push(ClusterRow {
                id: id.value(i),
                div: div.value(i),
                dn: dn.value(i),
                qmax: qmax.value(i),
                n: n.value(i),
                t: t.value(i),
                s: if b.num_columns() > 6 {
                    f(6).value(i)
                } else {
                    0.0
                },
            });
        }
    }
    out
}

/// S(j) with each cluster's own top quality as the reference: one more aggregate pass, joined
/// with those k references (only when (1 − α)/τ is above [`GLOBAL_REFERENCE_LIMIT`]).
fn per_cluster_sums(
    state: &SessionState,
    scan: &dyn Fn() -> Result<DataFrame>,
    rows: &[ClusterRow],
    softmax: &Softmax,
    p: &Params,
) -> Result<HashMap<i64, f64>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let references = DataFrame::new(
        state.clone(),
        named_values(
            rows.iter().map(|r| vec![lit(r.id), lit(r.qmax)]).collect(),
            &[K_CLUSTER, REFERENCE],
        )?,
    );
    let df = references
        .join(
            scored_rows(scan()?)?,
            JoinType::Inner,
            &[K_CLUSTER],
            &[CLUSTER],
            None,
        )?
        .aggregate(
            vec![col(K_CLUSTER)],
            vec![exact_sum_udaf()
                .call(vec![softmax.row_factor(col(REFERENCE)) * Softmax::mass(p)])
                .alias("__s")],
        )?;
    let batches = block_on_helper(NAME, async move { df.collect().await })?;
    let mut out = HashMap::new();
    for b in &batches {
        let (id, s) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_primitive::<Float64Type>(),
        );
        for i in 0..b.num_rows() {
            out.insert(id.value(i), s.value(i));
        }
    }
    Ok(out)
}

/// x scaled from [lo, hi] to [0, 1] (0 when the range is empty).
fn norm(x: Expr, lo: &str, hi: &str) -> Result<Expr> {
    when(col(hi).gt(col(lo)), (x - col(lo)) / (col(hi) - col(lo))).otherwise(lit(0.0))
}

/// Stage 4, per row: q_norm, weight and the softmax numerator e = a(j)·b(x).
fn with_weights(df: DataFrame, softmax: &Softmax, p: &Params) -> Result<DataFrame> {
    df.with_column(QUALITY_NORM, softmax.norm(col(QUALITY)))?
        .with_column(
            WEIGHT,
            lit(p.alpha) * col(DIVERSITY_NORM) + lit(1.0 - p.alpha) * col(QUALITY_NORM),
        )?
        .with_column(
            NUMERATOR,
            col(FACTOR) * softmax.row_factor(softmax.reference()),
        )
}

/// κ = scale / Z of the expected counts c(x) = κ·a(j)·b(x) without a cap (with one,
/// [`water_fill`] finds the scale and this is 1, unused). Every a(j)·b(x) = exp((w − w_max)/τ)
/// is at most 1, so no expected count exceeds κ: checked here, not per row. An infinite one
/// (all-zero tokens, a budget beyond f64) would otherwise surface as a failed Int64 cast.
fn count_scale(clusters: &Clusters, p: &Params) -> Result<f64> {
    if p.options.max_copies.is_some() {
        return Ok(1.0);
    }
    let scale = match p.mode {
        Mode::Documents => doc_target(clusters.rows as f64 * p.budget / clusters.tokens, p),
        Mode::Tokens => p.budget,
    };
    let most = scale / clusters.z;
    if clusters.rows > 0 && !(0.0..9.2e18).contains(&most) {
        return plan_err!(
            "{NAME}: an expected count is not a number below 9.2e18 (counts are Int64): in 'tokens' mode every row of 'scored' has 0 tokens, or budget_tokens is too large (largest expected count: {})",
            crate::args::show(most)
        );
    }
    Ok(most)
}

/// Stage 4, expected counts: the rows to finish and the expression of each row's expected
/// count (and, with `max_copies`, its uncapped value). Without a cap it is κ·a(j) (the
/// cluster table's [`COUNT_FACTOR`]) times b(x); with a cap, [`water_fill`] finds the scale
/// while planning.
fn expected_counts(
    weighted: &dyn Fn() -> Result<DataFrame>,
    softmax: &Softmax,
    p: &Params,
) -> Result<(DataFrame, Expr, Option<Expr>)> {
    let exact = exact_sum_udaf();
    let (rows, expected, capped) = match p.options.max_copies {
        None => {
            let expected = col(COUNT_FACTOR) * softmax.row_factor(softmax.reference());
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
    Ok((rows, expected, capped))
}

/// Stage 5: integer counts (independent or systematic rounding seeded by `id` and the seed)
/// and the output columns.
fn output(rows: DataFrame, expected: Expr, capped: Option<Expr>, p: &Params) -> Result<DataFrame> {
    let with_c = rows.with_column(EXPECTED, expected)?;
    let (with_c, count) = match p.options.rounding {
        // ⌊c⌋ + 1[u < c − ⌊c⌋], in one function call per batch.
        Rounding::Independent => (
            with_c,
            call(&round_udf(), vec![col(EXPECTED), col("id"), lit(p.seed)]),
        ),
        Rounding::Systematic => systematic(with_c, p.seed, p.mode)?,
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
fn doc_target(target: f64, p: &Params) -> f64 {
    match p.options.rounding {
        Rounding::Independent => target,
        Rounding::Systematic => (target + 0.5).floor(),
    }
}

/// Systematic rounding: `samplemix_systematic_round` over all rows (one window, no order: the
/// function sorts the rows itself, so the counts do not depend on how they arrive).
fn systematic(df: DataFrame, seed: i64, mode: Mode) -> Result<(DataFrame, Expr)> {
    let counts = Expr::from(WindowFunction::new(
        systematic_round_udwf(),
        vec![
            col(EXPECTED),
            col(TOKENS),
            col("id"),
            lit(seed),
            lit(mode.name()),
        ],
    ));
    let df = df.window(vec![counts.alias("__count")])?;
    Ok((df, col("__count")))
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
            "{NAME}: max_copies={cap} cannot meet the budget: at most {} {unit} (every document {cap} times), the budget needs {}; raise max_copies or lower budget_tokens",
            crate::args::show(most),
            crate::args::show(target)
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
