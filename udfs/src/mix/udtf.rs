//! SQL glue for `samplemix_weights(scored, centroids, alpha, tau, budget_tokens [, seed [, mode
//! [, separation]]])`: docs/METHOD.md "Weights and counts" as a view over ordinary DataFusion
//! operators (a `ViewTable` over a `LogicalPlan`), so it streams, runs in parallel, respects
//! the memory pool and serialises like any plan.
//!
//! The plan reads `scored` three times and never sorts or windows it:
//! 1. per-cluster aggregate: rows, tokens, Σ distance (→ compactness), min/max quality;
//!    joined with the centroids' separation; global statistics (N, T_src, min/max quality,
//!    min/max diversity, max weight) are window functions over those k rows only (the
//!    largest weight is the largest per-cluster α·d_norm + (1−α)·q_norm(max quality));
//! 2. Z = Σ exp((w − w_max)/τ) (and Σ exp(...)·tokens for 'tokens' mode) as an exact,
//!    order-independent sum;
//! 3. the output projection.
//!
//! Every float sum uses `samplemix_exact_sum`, so outputs are bit-identical for any
//! partitioning, thread count or input order.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_datafusion_err, plan_err, JoinType, TableReference};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions::expr_fn::{coalesce, exp, floor};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    cast, col, lit, when, AggregateUDF, Expr, LogicalPlanBuilder, ScalarUDF,
};
use futures::FutureExt;

use super::udaf::exact_sum_udaf;
use super::udf::{assert_udf, distance_udf, uniform_udf};
use super::weights::{Mode, Separation};
use crate::args::{choice_arg, literal_f64, literal_i64, table_name};
use crate::cluster::vectors::check_type;

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
}

fn parse(exprs: &[Expr]) -> Result<Params> {
    if !(5..=8).contains(&exprs.len()) {
        return plan_err!(
            "{NAME}: expected 5 to 8 arguments (scored, centroids, alpha, tau, budget_tokens [, seed [, mode [, separation]]]), got {}",
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
    let mode = choice_arg(exprs.get(6), Mode::Documents, NAME, "mode")?;
    let separation = choice_arg(exprs.get(7), Separation::Mean, NAME, "separation")?;
    Ok(Params {
        scored: table_name(&exprs[0], NAME, "scored")?,
        centroids: table_name(&exprs[1], NAME, "centroids")?,
        alpha,
        tau,
        budget,
        seed,
        mode,
        separation,
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

/// Fail the query on NULLs in a `scored` column, naming it.
fn non_null(assert: &ScalarUDF, column: &str, as_type: DataType) -> Expr {
    call(
        assert,
        vec![
            cast(col(column), as_type),
            col(column).is_not_null(),
            lit(format!(
                "{NAME}: column '{column}' of 'scored' has NULL values (policy: NULL quality, cluster, distance or tokens is an error; filter those rows first); id of the first: "
            )),
            // Cast only on failure, inside samplemix_assert: not per row here.
            col("id"),
        ],
    )
    .alias(format!("__{column}"))
}

fn build(state: &SessionState, p: &Params) -> Result<DataFrame> {
    let (scored_ref, scored) = resolve(state, &p.scored, "scored")?;
    let (cent_ref, centroids) = resolve(state, &p.centroids, "centroids")?;
    let any = |_: &DataType| true;
    let numeric = |t: &DataType| t.is_numeric();
    let integer = |t: &DataType| t.is_integer();
    require_column(&scored, &p.scored, "scored", "id", any, "any type")?;
    require_column(&scored, &p.scored, "scored", "quality", numeric, "numeric")?;
    require_column(
        &scored,
        &p.scored,
        "scored",
        "cluster",
        integer,
        "an integer",
    )?;
    require_column(&scored, &p.scored, "scored", "distance", numeric, "numeric")?;
    require_column(
        &scored,
        &p.scored,
        "scored",
        "tokens",
        integer,
        "an integer",
    )?;
    require_column(
        &centroids,
        &p.centroids,
        "centroids",
        "cluster",
        integer,
        "an integer",
    )?;
    require_column(
        &centroids,
        &p.centroids,
        "centroids",
        "centroid",
        |t| check_type(t, NAME, "centroids").is_ok(),
        "a List or FixedSizeList of Float32/Float64",
    )?;
    require_column(
        &centroids,
        &p.centroids,
        "centroids",
        "metric",
        |t| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
        "a string ('cosine' or 'l2')",
    )?;

    let (assert, distance, uniform, exact) = (
        assert_udf(),
        distance_udf(),
        uniform_udf(),
        exact_sum_udaf(),
    );
    let scan = |r: &TableReference, t: &Arc<dyn TableProvider>| -> Result<DataFrame> {
        Ok(DataFrame::new(
            state.clone(),
            LogicalPlanBuilder::scan(r.clone(), provider_as_source(Arc::clone(t)), None)?
                .build()?,
        ))
    };
    // Scored rows, typed and NULL-checked: __q, __cl, __dist, __tok (+ id).
    let rows = || -> Result<DataFrame> {
        scan(&scored_ref, &scored)?.select(vec![
            col("id"),
            non_null(&assert, "quality", DataType::Float64),
            non_null(&assert, "cluster", DataType::Int64),
            non_null(&assert, "distance", DataType::Float64),
            non_null(&assert, "tokens", DataType::Int64),
        ])
    };

    // Separation of each centroid from the others (0 with a single centroid).
    let a = scan(&cent_ref, &centroids)?.select(vec![
        cast(col("cluster"), DataType::Int64).alias("__a_cl"),
        col("centroid").alias("__a_v"),
        col("metric").alias("__a_m"),
    ])?;
    let b = scan(&cent_ref, &centroids)?.select(vec![
        cast(col("cluster"), DataType::Int64).alias("__b_cl"),
        col("centroid").alias("__b_v"),
    ])?;
    let pair_distance = call(&distance, vec![col("__a_v"), col("__b_v"), col("__a_m")]);
    let sep_agg = match p.separation {
        Separation::Mean => exact.call(vec![pair_distance]) / f64c(count(lit(1))),
        Separation::Min => min(pair_distance),
    };
    let sep = a
        .join_on(
            b,
            JoinType::Inner,
            vec![col("__a_cl").not_eq(col("__b_cl"))],
        )?
        .aggregate(vec![col("__a_cl")], vec![sep_agg.alias("__sep")])?;
    let known = scan(&cent_ref, &centroids)?
        .select(vec![cast(col("cluster"), DataType::Int64).alias("__c_cl")])?
        .join(sep, JoinType::Left, &["__c_cl"], &["__a_cl"], None)?
        .select(vec![
            col("__c_cl"),
            coalesce(vec![col("__sep"), lit(0.0)]).alias("__sep"),
        ])?;

    // Pass 1: per-cluster statistics, then the global ones over those k rows.
    let per_cluster = rows()?.aggregate(
        vec![col("__cluster").alias("__k_cl")],
        vec![
            count(lit(1)).alias("__n"),
            sum(col("__tokens")).alias("__t"),
            exact.call(vec![col("__distance")]).alias("__dsum"),
            min(col("__quality")).alias("__qmin_j"),
            max(col("__quality")).alias("__qmax_j"),
        ],
    )?;
    let clusters = known
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
            .alias("__kcl"),
            col("__n"),
            col("__t"),
            col("__qmin_j"),
            col("__qmax_j"),
            col("__sep"),
            (col("__dsum") / f64c(col("__n"))).alias("__comp"),
        ])?
        .window(vec![
            over_all(sum_udaf(), col("__n")).alias("__gn"),
            over_all(sum_udaf(), col("__t")).alias("__gt"),
            over_all(min_udaf(), col("__qmin_j")).alias("__gqmin"),
            over_all(max_udaf(), col("__qmax_j")).alias("__gqmax"),
            over_all(
                min_udaf(),
                when(col("__comp").gt(lit(0.0)), col("__comp")).end()?,
            )
            .alias("__gcmin"),
        ])?;
    // A zero compactness takes the smallest positive one (1 when none is positive).
    let compactness = when(col("__comp").gt(lit(0.0)), col("__comp"))
        .otherwise(coalesce(vec![col("__gcmin"), lit(1.0)]))?;
    let clusters = clusters
        .with_column("__div", col("__sep") / compactness)?
        .window(vec![
            over_all(min_udaf(), col("__div")).alias("__gdmin"),
            over_all(max_udaf(), col("__div")).alias("__gdmax"),
        ])?;
    let norm = |x: Expr, lo: &str, hi: &str| -> Result<Expr> {
        when(col(hi).gt(col(lo)), (x - col(lo)) / (col(hi) - col(lo))).otherwise(lit(0.0))
    };
    let alpha = lit(p.alpha);
    let clusters = clusters
        .with_column("__dn", norm(col("__div"), "__gdmin", "__gdmax")?)?
        .with_column(
            "__wtop",
            alpha.clone() * col("__dn")
                + lit(1.0 - p.alpha) * norm(col("__qmax_j"), "__gqmin", "__gqmax")?,
        )?
        .window(vec![over_all(max_udaf(), col("__wtop")).alias("__gwmax")])?
        .select(vec![
            col("__kcl"),
            col("__div"),
            col("__dn"),
            col("__gqmin"),
            col("__gqmax"),
            col("__gwmax"),
            col("__gn"),
            col("__gt"),
        ])?;

    // Per row: q_norm, weight and the stable softmax numerator e = exp((w − w_max)/τ).
    let with_weights = |df: DataFrame| -> Result<DataFrame> {
        let qn = norm(col("__quality"), "__gqmin", "__gqmax")?;
        df.with_column("__qn", qn)?
            .with_column(
                "__w",
                alpha.clone() * col("__dn") + lit(1.0 - p.alpha) * col("__qn"),
            )?
            .with_column("__e", exp((col("__w") - col("__gwmax")) / lit(p.tau)))
    };
    // The small side first: it is the build side of the hash join.
    let joined = || {
        clusters
            .clone()
            .join(rows()?, JoinType::Inner, &["__kcl"], &["__cluster"], None)
    };

    // Pass 2: the softmax denominators.
    let z = with_weights(joined()?)?.aggregate(
        vec![],
        vec![
            exact.call(vec![col("__e")]).alias("__gz"),
            exact
                .call(vec![col("__e") * f64c(col("__tokens"))])
                .alias("__gzt"),
        ],
    )?;

    // Pass 3: the rows out.
    let expected = match p.mode {
        Mode::Documents => {
            f64c(col("__gn")) * lit(p.budget) / f64c(col("__gt")) * col("__e") / col("__gz")
        }
        Mode::Tokens => lit(p.budget) * col("__e") / col("__gzt"),
    };
    let u = call(&uniform, vec![col("id"), lit(p.seed)]);
    z.join(with_weights(joined()?)?, JoinType::Inner, &[], &[], None)?
        .with_column("__c", expected)?
        .select(vec![
            col("id"),
            col("__qn").alias("quality_norm"),
            col("__div").alias("diversity"),
            col("__dn").alias("diversity_norm"),
            col("__w").alias("weight"),
            col("__c").alias("expected_count"),
            (cast(floor(col("__c")), DataType::Int64)
                + when(u.lt(col("__c") - floor(col("__c"))), lit(1i64)).otherwise(lit(0i64))?)
            .alias("count"),
        ])
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
