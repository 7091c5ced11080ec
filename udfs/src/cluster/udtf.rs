//! SQL glue for the `kmeans_fit(table, column, k [, sample_rows [, seed [, max_iter [, metric]]]])`
//! table function.

use std::sync::Arc;

use datafusion::arrow::array::{
    FixedSizeListArray, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{exec_err, plan_datafusion_err, plan_err};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::kmeans::{fit, BottomK};
use super::metric::Metric;
use super::vectors::{check_finite, check_type, vectors};
use crate::embed::udf::item_field;
use crate::util::{block_on_helper, literal_i64, literal_str, table_name};

const NAME: &str = "kmeans_fit";

/// Default sample size.
pub const DEFAULT_SAMPLE_ROWS: i64 = 100_000;
/// Default iteration cap.
pub const DEFAULT_MAX_ITER: i64 = 100;

/// `kmeans_fit`: fit k centroids (linfa-clustering) to an embedding column on a seeded,
/// order-independent sample. One output row per cluster: `cluster` Int32, `size` Int64
/// (members in the fitted sample), `centroid` FixedSizeList<Float32, d>, `metric` Utf8.
/// The fit runs when the query is planned (its output schema depends on the data).
#[derive(Debug, Default)]
pub struct KmeansFit;

/// Output schema of `kmeans_fit` for embeddings of dimension `dim`.
pub fn centroids_schema(dim: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cluster", DataType::Int32, false),
        Field::new("size", DataType::Int64, false),
        Field::new(
            "centroid",
            DataType::FixedSizeList(item_field(), dim as i32),
            false,
        ),
        Field::new("metric", DataType::Utf8, false),
    ]))
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

fn parse(exprs: &[datafusion::logical_expr::Expr]) -> Result<Params> {
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
    let sample_rows = exprs.get(3).map_or(Ok(DEFAULT_SAMPLE_ROWS), |e| {
        literal_i64(e, NAME, "sample_rows")
    })?;
    if sample_rows < 1 {
        return plan_err!("{NAME}: argument 'sample_rows' must be at least 1, got {sample_rows}");
    }
    if sample_rows < k {
        return plan_err!(
            "{NAME}: argument 'sample_rows' ({sample_rows}) must be at least k ({k})"
        );
    }
    let seed = exprs
        .get(4)
        .map_or(Ok(0), |e| literal_i64(e, NAME, "seed"))?;
    let max_iter = exprs
        .get(5)
        .map_or(Ok(DEFAULT_MAX_ITER), |e| literal_i64(e, NAME, "max_iter"))?;
    if max_iter < 1 {
        return plan_err!("{NAME}: argument 'max_iter' must be at least 1, got {max_iter}");
    }
    let metric = match exprs.get(6) {
        None => Metric::default(),
        Some(e) => literal_str(e, NAME, "metric")?
            .parse::<Metric>()
            .map_err(|e| plan_datafusion_err!("{NAME}: argument 'metric': {e}"))?,
    };
    Ok(Params {
        table: table_name(&exprs[0], NAME, "table")?,
        column: literal_str(&exprs[1], NAME, "column")?,
        k: k as usize,
        sample_rows: sample_rows as usize,
        seed: seed as u64,
        max_iter: max_iter as usize,
        metric,
    })
}

async fn run(state: SessionState, p: Params) -> Result<RecordBatch> {
    let ctx = SessionContext::new_with_state(state);
    let df = ctx.table(p.table.as_str()).await.map_err(|e| {
        plan_datafusion_err!("{NAME}: argument 'table': cannot read '{}': {e}", p.table)
    })?;
    let Ok(field) = df.schema().field_with_unqualified_name(&p.column) else {
        let names: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        return plan_err!(
            "{NAME}: argument 'column': table '{}' has no column '{}' (columns: {})",
            p.table,
            p.column,
            names.join(", ")
        );
    };
    check_type(field.data_type(), NAME, "column")?;
    let mut stream = df
        .select_columns(&[p.column.as_str()])?
        .execute_stream()
        .await?;
    let mut sampler = BottomK::new(p.sample_rows, p.seed);
    let mut dim: Option<usize> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let array = batch.column(0);
        let rows = vectors(array, NAME, "column")?;
        for i in 0..rows.len() {
            let Some(row) = rows.row(i) else { continue };
            match dim {
                None if row.is_empty() => {
                    return exec_err!("{NAME}: argument 'column': embeddings must not be empty lists")
                }
                None => dim = Some(row.len()),
                Some(d) if d != row.len() => {
                    return exec_err!(
                        "{NAME}: argument 'column': rows have differing dimensions ({d} and {}); every embedding must have the same length",
                        row.len()
                    )
                }
                _ => {}
            }
            check_finite(row, NAME, "column")?;
            sampler.push(row);
        }
    }
    let Some(dim) = dim else {
        return plan_err!(
            "{NAME}: argument 'table': '{}' has no non-NULL '{}' rows to fit",
            p.table,
            p.column
        );
    };
    if p.k as u64 > sampler.seen {
        return plan_err!(
            "{NAME}: argument 'k' ({}) exceeds the {} non-NULL rows of '{}'",
            p.k,
            sampler.seen,
            p.table
        );
    }
    let rows = sampler.into_rows();
    let bar = ProgressBar::new(p.max_iter as u64).with_message(format!(
        "kmeans_fit k={} on {} rows",
        p.k,
        rows.len()
    ));
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} iterations {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let fitted = tokio::task::spawn_blocking(move || {
        fit(rows, dim, p.k, p.max_iter, p.seed, p.metric, |i| {
            bar.set_position(i as u64)
        })
        .inspect(|_| bar.finish_and_clear())
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))?
    .map_err(|e| plan_datafusion_err!("{NAME}: {e}"))?;

    let k = fitted.sizes.len();
    RecordBatch::try_new(
        centroids_schema(dim),
        vec![
            Arc::new(Int32Array::from_iter_values(0..k as i32)),
            Arc::new(Int64Array::from_iter_values(
                fitted.sizes.iter().map(|s| *s as i64),
            )),
            Arc::new(FixedSizeListArray::try_new(
                item_field(),
                dim as i32,
                Arc::new(Float32Array::from(fitted.centroids)),
                None,
            )?),
            Arc::new(StringArray::from(vec![p.metric.to_string(); k])),
        ],
    )
    .map_err(Into::into)
}

impl TableFunctionImpl for KmeansFit {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let params = parse(args.exprs())?;
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{NAME}: needs a DataFusion SessionState to read its input table");
        };
        let state = state.clone();
        let batch = block_on_helper(NAME, run(state, params))?;
        Ok(Arc::new(MemTable::try_new(
            batch.schema(),
            vec![vec![batch]],
        )?))
    }
}
