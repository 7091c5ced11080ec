//! SQL glue for `quality_model_fit(table, text_column, label_column [, options])`.
//!
//! Like `kmeans_fit`, the fit runs when the query is planned and the model becomes a one-row
//! `VALUES` plan, so it serialises like any query (Ballista included) and persists with
//! `COPY (SELECT * FROM quality_model_fit(...)) TO 'm.parquet'`.

use std::collections::BinaryHeap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_datafusion_err, plan_err};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::fit::{fit, Example, FitOptions};
use super::model::{to_batch, OrdinalModel};
use crate::args::{is_string, literal_str, parse_options, table_name};
use crate::hash::{fnv1a64, splitmix64};
use crate::io::{no_such_column, open_table};
use crate::planning::{Planning, StopFlag};
use crate::plans::batches_as_values;

const NAME: &str = "quality_model_fit";
const KEYS: [&str; 7] = [
    "epochs",
    "l2",
    "lr",
    "seed",
    "buckets",
    "signals",
    "sample_rows",
];
/// Default cap on the training sample.
pub const DEFAULT_SAMPLE_ROWS: usize = 1_000_000;
/// The most label levels a model may have.
const MAX_LEVELS: usize = 1_000;

/// `quality_model_fit`: fit the ordinal quality model to labelled texts; one output row, the
/// model (see `quality_predict`).
#[derive(Debug, Default, Clone)]
pub struct QualityModelFit;

struct Params {
    table: String,
    text: String,
    label: String,
    sample_rows: usize,
    fit: FitOptions,
}

fn number<T: std::str::FromStr>(key: &str, value: &str, expect: &str) -> Result<T> {
    value.parse().map_err(|_| {
        plan_datafusion_err!("{NAME}: argument 'options': {key}={value} is not {expect}")
    })
}

fn parse(exprs: &[Expr]) -> Result<Params> {
    if !(3..=4).contains(&exprs.len()) {
        return plan_err!(
            "{NAME}: expected 3 or 4 arguments (table, text_column, label_column [, options]), got {}",
            exprs.len()
        );
    }
    let mut o = FitOptions::default();
    let mut sample_rows = DEFAULT_SAMPLE_ROWS;
    let text = match exprs.get(3) {
        Some(e) => literal_str(e, NAME, "options")?,
        None => String::new(),
    };
    for (key, value) in parse_options(NAME, &text, &KEYS)? {
        let v = value.as_str();
        match key.as_str() {
            "epochs" => o.epochs = number(&key, v, "an integer from 1 to 1000")?,
            "l2" => o.l2 = number(&key, v, "a number")?,
            "lr" => o.lr = number(&key, v, "a number")?,
            "seed" => o.seed = number::<i64>(&key, v, "an integer")? as u64,
            "buckets" => o.buckets = number(&key, v, "an integer from 1 to 2^32−1")?,
            "sample_rows" => sample_rows = number(&key, v, "a positive integer")?,
            "signals" => o.signals = number(&key, v, "true or false")?,
            _ => unreachable!("parse_options admits only KEYS"),
        }
    }
    if !(1..=1000).contains(&o.epochs) {
        return plan_err!(
            "{NAME}: argument 'options': epochs must be 1 to 1000, got {}",
            o.epochs
        );
    }
    if !(o.l2.is_finite() && o.l2 >= 0.0) {
        return plan_err!(
            "{NAME}: argument 'options': l2 must be a finite number ≥ 0, got {}",
            o.l2
        );
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return plan_err!(
            "{NAME}: argument 'options': lr must be a finite number > 0, got {}",
            o.lr
        );
    }
    if !(1..=1 << 26).contains(&o.buckets) {
        return plan_err!(
            "{NAME}: argument 'options': buckets must be 1 to 67108864 (2^26), got {}",
            o.buckets
        );
    }
    if sample_rows == 0 {
        return plan_err!("{NAME}: argument 'options': sample_rows must be at least 1");
    }
    Ok(Params {
        table: table_name(&exprs[0], NAME, "table")?,
        text: literal_str(&exprs[1], NAME, "text_column")?,
        label: literal_str(&exprs[2], NAME, "label_column")?,
        sample_rows,
        fit: o,
    })
}

/// A sampled document; the heap keeps the `sample_rows` smallest (key, label, text).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Kept(u64, u32, String);

fn reserve(reservation: &mut MemoryReservation, bytes: usize, p: &Params) -> Result<()> {
    reservation.try_grow(bytes).map_err(|e| {
        plan_datafusion_err!(
            "{NAME}: the training sample of up to {} rows and its model need more memory than the session's memory pool allows ({}); lower 'sample_rows' or 'buckets' in the options, or raise the limit (samplemix -m)",
            p.sample_rows,
            e.strip_backtrace()
        )
    })
}

/// The label of row `i` as a level, or the error naming the argument.
fn level(labels: &dyn Array, i: usize) -> Result<u32> {
    if labels.is_null(i) {
        return plan_err!(
            "{NAME}: argument 'label_column': labels must not be NULL (row {i} of a batch has none); filter them out or label them"
        );
    }
    let v = labels.as_primitive::<Float64Type>().value(i);
    if v.fract() != 0.0 || !v.is_finite() {
        return plan_err!(
            "{NAME}: argument 'label_column': labels must be integers 0..K−1, got {v}"
        );
    }
    if v < 0.0 {
        return plan_err!("{NAME}: argument 'label_column': labels must be integers 0..K−1, got the negative label {v}");
    }
    if v >= MAX_LEVELS as f64 {
        return plan_err!(
            "{NAME}: argument 'label_column': labels must be below {MAX_LEVELS}, got {v}"
        );
    }
    Ok(v as u32)
}

/// Stream the two columns once, keeping the bottom-`sample_rows` documents by a seeded hash
/// of their text; memory comes from the session's pool.
async fn sample(
    ctx: &SessionContext,
    p: &Params,
) -> Result<(Vec<Example>, u64, MemoryReservation)> {
    let df = open_table(ctx, &p.table, NAME, "table").await?;
    for (c, arg) in [(&p.text, "text_column"), (&p.label, "label_column")] {
        let Ok(field) = df.schema().field_with_unqualified_name(c) else {
            return Err(no_such_column(&df, &p.table, c, NAME, arg));
        };
        let t = field.data_type();
        let ok = if arg == "text_column" {
            is_string(t)
        } else {
            t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..))
        };
        if !ok {
            let want = if arg == "text_column" {
                "a string"
            } else {
                "an integer (labels 0..K−1)"
            };
            return plan_err!("{NAME}: argument '{arg}': column '{c}' is {t}, expected {want}");
        }
    }
    let mut reservation =
        MemoryConsumer::new(format!("{NAME} sample")).register(&ctx.runtime_env().memory_pool);
    let mut stream = df
        .select_columns(&[p.text.as_str(), p.label.as_str()])?
        .execute_stream()
        .await?;
    let seed = splitmix64(p.fit.seed ^ 0x0071_7561_6C69_7479); // "quality"
    let mut heap: BinaryHeap<Kept> = BinaryHeap::new();
    let mut null_texts = 0u64;
    let mut bytes = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let texts = cast(batch.column(0), &DataType::LargeUtf8)?;
        let texts = texts.as_string::<i64>();
        let labels = cast(batch.column(1), &DataType::Float64)?;
        for i in 0..batch.num_rows() {
            let label = level(labels.as_ref(), i)?;
            if texts.is_null(i) {
                null_texts += 1;
                continue;
            }
            let text = texts.value(i);
            let key = splitmix64(fnv1a64(text.as_bytes()) ^ seed);
            if heap.len() == p.sample_rows {
                match heap.peek() {
                    Some(top) if (key, label) < (top.0, top.1) => {}
                    _ => continue,
                }
            }
            heap.push(Kept(key, label, text.to_string()));
            bytes += text.len() + 48;
            if heap.len() > p.sample_rows {
                if let Some(out) = heap.pop() {
                    bytes -= out.2.len() + 48;
                }
            }
            let held = reservation.size();
            if bytes > held {
                reserve(&mut reservation, bytes - held + (1 << 20), p)?;
            }
        }
    }
    let mut examples: Vec<Example> = heap
        .into_sorted_vec()
        .into_iter()
        .map(|Kept(key, label, text)| Example { key, label, text })
        .collect();
    examples.shrink_to_fit();
    Ok((examples, null_texts, reservation))
}

async fn run(state: SessionState, p: Params, stop: StopFlag) -> Result<OrdinalModel> {
    let threads = state.config().target_partitions();
    let ctx = SessionContext::new_with_state(state);
    let (examples, _null_texts, mut reservation) = sample(&ctx, &p).await?;
    if examples.is_empty() {
        return plan_err!(
            "{NAME}: argument 'table': '{}' has no rows with a non-NULL '{}' to learn from",
            p.table,
            p.text
        );
    }
    let levels = examples.iter().map(|e| e.label).max().unwrap_or(0) as usize + 1;
    if examples.iter().all(|e| e.label == examples[0].label) {
        return plan_err!(
            "{NAME}: argument 'label_column': every sampled label is {}; an ordinal model needs at least 2 levels",
            examples[0].label
        );
    }
    // Features (~8 bytes per n-gram, ~2 per word) and the weights with their AdaGrad sums.
    let text_bytes: usize = examples.iter().map(|e| e.text.len()).sum();
    reserve(
        &mut reservation,
        text_bytes / 2 + p.fit.buckets as usize * 12,
        &p,
    )?;
    if stop.raised() {
        return Err(Planning::timed_out(NAME));
    }
    let o = p.fit.clone();
    let model = tokio::task::spawn_blocking(move || fit(&examples, levels, &o, threads))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    drop(reservation);
    Ok(model)
}

/// The model's one row as a `VALUES` plan with the model table's column names.
fn values_plan(m: &OrdinalModel) -> Result<ViewTable> {
    let plan = batches_as_values(&[to_batch(m)?])?
        .ok_or_else(|| crate::error::internal(NAME, "the model table has no row"))?;
    Ok(ViewTable::new(plan, None))
}

impl TableFunctionImpl for QualityModelFit {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let params = parse(args.exprs())?;
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{NAME}: needs a DataFusion SessionState to read its input table");
        };
        let planning = Planning::new(NAME, args.session());
        let model = planning.run(run(state.clone(), params, planning.stop_flag()))?;
        Ok(Arc::new(values_plan(&model)?))
    }
}
