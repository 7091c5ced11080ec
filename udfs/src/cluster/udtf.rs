//! SQL glue for `kmeans_fit(table, column, k [, sample_rows [, seed [, max_iter [, metric]]]])`.
//!
//! The fit runs when the query is planned, for two reasons: a `List` column's dimension (and so
//! the output schema) is only known from the data, and the result, k rows of literals, becomes
//! a plain `VALUES` plan that serialises like any query (it runs unchanged on Ballista, where a
//! table provider holding the fitted rows in memory could not travel). The cost is that
//! `EXPLAIN` also fits; persist a fit with `CREATE TABLE c AS SELECT * FROM kmeans_fit(...)` or
//! `COPY (SELECT * FROM kmeans_fit(...)) TO 'c.parquet'` and reuse it.

use std::sync::Arc;

use datafusion::arrow::array::{FixedSizeListArray, Float32Array};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_datafusion_err, plan_err, ScalarValue};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{col, lit, Expr, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::kmeans::{fit_until, Fitted, Options};
use super::metric::Metric;
use super::sample::BottomK;
use super::vectors::{check_finite, check_type, vectors};
use crate::args::{choice_arg, literal_i64, literal_str, table_name};
use crate::embed::udf::item_field;
use crate::io::{no_such_column, open_table};
use crate::planning::{Planning, StopFlag};

const NAME: &str = "kmeans_fit";

/// Default sample size.
pub const DEFAULT_SAMPLE_ROWS: i64 = 100_000;
/// Default iteration cap.
pub const DEFAULT_MAX_ITER: i64 = 100;

/// What a fit reports while it runs (the shell draws a progress bar from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FitEvent {
    /// The sample is drawn and the fit starts.
    Started {
        /// Clusters.
        k: usize,
        /// Sampled rows.
        rows: usize,
        /// Iteration cap.
        max_iter: usize,
    },
    /// A Lloyd iteration finished (1-based).
    Iteration(usize),
    /// The fit is done.
    Finished,
}

/// A callback for [`FitEvent`]s.
pub type FitProgress = Arc<dyn Fn(FitEvent) + Send + Sync>;

/// `kmeans_fit`: fit k centroids to an embedding column on a seeded, order-independent sample.
/// One output row per cluster: `cluster` Int32, `size` Int64 (members in the fitted sample),
/// `centroid` FixedSizeList<Float32, d>, `metric` Utf8.
#[derive(Default, Clone)]
pub struct KmeansFit {
    progress: Option<FitProgress>,
}

impl std::fmt::Debug for KmeansFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmeansFit").finish_non_exhaustive()
    }
}

impl KmeansFit {
    /// A `kmeans_fit` that reports its progress to `progress`.
    pub fn with_progress(progress: FitProgress) -> Self {
        Self {
            progress: Some(progress),
        }
    }
}

struct Params {
    table: String,
    column: String,
    k: usize,
    sample_rows: usize,
    seed: u64,
    max_iter: usize,
    metric: Metric,
}

fn parse(exprs: &[Expr]) -> Result<Params> {
    if !(3..=7).contains(&exprs.len()) {
        return plan_err!(
            "{NAME}: expected 3 to 7 arguments (table, column, k [, sample_rows [, seed [, max_iter [, metric]]]]), got {}",
            exprs.len()
        );
    }
    let k = literal_i64(&exprs[2], NAME, "k")?;
    if k < 1 {
        return plan_err!("{NAME}: argument 'k' must be at least 1, got {k}");
    }
    if k > i64::from(i32::MAX) {
        return plan_err!("{NAME}: argument 'k' must fit the Int32 cluster ids, got {k}");
    }
    let sample_rows = exprs.get(3).map_or(Ok(DEFAULT_SAMPLE_ROWS), |e| {
        literal_i64(e, NAME, "sample_rows")
    })?;
    if sample_rows < k {
        return plan_err!(
            "{NAME}: argument 'sample_rows' ({sample_rows}) must be at least k ({k})"
        );
    }
    let seed = exprs
        .get(4)
        .map_or(Ok(0), |e| crate::args::literal_seed(e, NAME, "seed"))?;
    let max_iter = exprs
        .get(5)
        .map_or(Ok(DEFAULT_MAX_ITER), |e| literal_i64(e, NAME, "max_iter"))?;
    if max_iter < 1 {
        return plan_err!("{NAME}: argument 'max_iter' must be at least 1, got {max_iter}");
    }
    Ok(Params {
        table: table_name(&exprs[0], NAME, "table")?,
        column: literal_str(&exprs[1], NAME, "column")?,
        k: k as usize,
        sample_rows: usize::try_from(sample_rows).map_err(|_| {
            plan_datafusion_err!("{NAME}: argument 'sample_rows' is too large: {sample_rows}")
        })?,
        seed: seed as u64,
        max_iter: max_iter as usize,
        metric: choice_arg(exprs.get(6), Metric::default(), NAME, "metric")?,
    })
}

/// Grow `reservation` by `bytes`, or fail naming the sample and the way out.
fn reserve(reservation: &mut MemoryReservation, bytes: usize, p: &Params) -> Result<()> {
    reservation.try_grow(bytes).map_err(|e| {
        plan_datafusion_err!(
            "{NAME}: the sample of up to {} rows needs more memory than the session's memory pool allows ({}); lower 'sample_rows' or raise the limit (samplemix -m)",
            p.sample_rows,
            e.strip_backtrace()
        )
    })
}

/// Stream the column once, keeping the bottom-k sample; its memory is taken from the session's
/// pool as it grows.
async fn sample(ctx: &SessionContext, p: &Params) -> Result<(BottomK, MemoryReservation)> {
    let df = open_table(ctx, &p.table, NAME, "table").await?;
    let Ok(field) = df.schema().field_with_unqualified_name(&p.column) else {
        return Err(no_such_column(&df, &p.table, &p.column, NAME, "column"));
    };
    check_type(field.data_type(), NAME, "column")?;
    let mut reservation =
        MemoryConsumer::new(format!("{NAME} sample")).register(&ctx.runtime_env().memory_pool);
    let mut stream = df
        .select_columns(&[p.column.as_str()])?
        .execute_stream()
        .await?;
    let mut sampler: Option<BottomK> = None;
    let mut kept = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let rows = vectors(batch.column(0), NAME, "column")?;
        for i in 0..rows.len() {
            let Some(row) = rows.row(i) else { continue };
            let s = match &mut sampler {
                Some(s) => s,
                None if row.is_empty() => {
                    return plan_err!(
                        "{NAME}: argument 'column': embeddings must not be empty lists"
                    )
                }
                None => sampler.insert(BottomK::new(p.sample_rows, row.len(), p.seed)),
            };
            let dim = s.dim();
            if row.len() != dim {
                return plan_err!(
                    "{NAME}: argument 'column': rows have differing dimensions ({dim} and {}); every embedding must have the same length",
                    row.len()
                );
            }
            check_finite(row, NAME, "column")?;
            s.push(row);
            if s.len() > kept {
                reserve(&mut reservation, std::mem::size_of_val(row) + 24, p)?;
                kept = s.len();
            }
        }
    }
    let Some(sampler) = sampler else {
        return plan_err!(
            "{NAME}: argument 'table': '{}' has no non-NULL '{}' rows to fit",
            p.table,
            p.column
        );
    };
    Ok((sampler, reservation))
}

async fn run(
    state: SessionState,
    p: Params,
    progress: Option<FitProgress>,
    stop: StopFlag,
) -> Result<(Fitted, usize)> {
    let threads = state.config().target_partitions();
    let ctx = SessionContext::new_with_state(state);
    let (sampler, mut reservation) = sample(&ctx, &p).await?;
    if p.k as u64 > sampler.seen() {
        return plan_err!(
            "{NAME}: argument 'k' ({}) exceeds the {} non-NULL rows of '{}'",
            p.k,
            sampler.seen(),
            p.table
        );
    }
    let rows = sampler.len();
    // The fit's own working set: labels, norms and the seeding distances per row.
    reserve(&mut reservation, rows * 48, &p)?;
    let dim = sampler.dim();
    let data = sampler.into_rows();
    let report = move |e: FitEvent| {
        if let Some(f) = &progress {
            f(e)
        }
    };
    report(FitEvent::Started {
        k: p.k,
        rows,
        max_iter: p.max_iter,
    });
    let opts = Options {
        k: p.k,
        max_iter: p.max_iter,
        seed: p.seed,
        metric: p.metric,
        threads,
    };
    let fitted = tokio::task::spawn_blocking(move || {
        let out = fit_until(data, dim, opts, |i| report(FitEvent::Iteration(i)), &|| {
            stop.raised()
        });
        report(FitEvent::Finished);
        out
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))?
    .map_err(|e| match e {
        crate::Error::Stopped => Planning::timed_out(NAME),
        e => plan_datafusion_err!("{NAME}: {e}"),
    })?;
    drop(reservation);
    Ok((fitted, dim))
}

/// The fitted centroids as a `VALUES` plan with the kmeans_fit schema.
fn values_plan(fitted: &Fitted, dim: usize, metric: Metric) -> Result<ViewTable> {
    let rows = fitted
        .centroids
        .chunks(dim)
        .zip(&fitted.sizes)
        .enumerate()
        .map(|(j, (c, size))| -> Result<Vec<Expr>> {
            let list = FixedSizeListArray::try_new(
                item_field(),
                dim as i32,
                Arc::new(Float32Array::from(c.to_vec())),
                None,
            )?;
            Ok(vec![
                lit(ScalarValue::Int32(Some(j as i32))),
                lit(ScalarValue::Int64(Some(*size as i64))),
                lit(ScalarValue::FixedSizeList(Arc::new(list))),
                lit(metric.to_string()),
            ])
        })
        .collect::<Result<Vec<_>>>()?;
    let plan = LogicalPlanBuilder::values(rows)?
        .project(vec![
            col("column1").alias("cluster"),
            col("column2").alias("size"),
            col("column3").alias("centroid"),
            col("column4").alias("metric"),
        ])?
        .build()?;
    Ok(ViewTable::new(plan, None))
}

impl TableFunctionImpl for KmeansFit {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let params = parse(args.exprs())?;
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{NAME}: needs a DataFusion SessionState to read its input table");
        };
        let metric = params.metric;
        let planning = Planning::new(NAME, args.session());
        let (fitted, dim) = planning.run(run(
            state.clone(),
            params,
            self.progress.clone(),
            planning.stop_flag(),
        ))?;
        Ok(Arc::new(values_plan(&fitted, dim, metric)?))
    }
}
