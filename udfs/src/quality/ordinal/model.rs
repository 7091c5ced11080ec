//! The ordinal quality model (Niu et al. 2016, as SampleMix's quality evaluator): K−1 binary
//! heads "label > k" on one linear score s(x), P(y > k) = σ(s(x) + b_k), with the biases
//! non-increasing so the heads never contradict each other (rank-consistent, as CORAL). The
//! predicted quality is the expected label, Σₖ P(y > k), on the label scale 0..K−1.
//!
//! The model travels as one table row (see [`columns`]), so `COPY ... TO 'm.parquet'` persists
//! it and `quality_predict` reads it back from a table, a path or a URL.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema};
use datafusion::common::exec_datafusion_err;
use datafusion::error::Result;

use super::features::{dense, dense_len, tf, Scratch};

/// The value of the `model` column: names the format, so a table of another shape is refused.
pub const FORMAT: &str = "samplemix-ordinal-1";

/// A fitted ordinal model.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdinalModel {
    /// Label levels K (labels 0..K−1).
    pub levels: usize,
    /// Hash buckets of the word 1-2-grams.
    pub buckets: u32,
    /// Whether the `quality_signals` fields are dense features.
    pub signals: bool,
    /// Training rows.
    pub rows: u64,
    /// The options it was fitted with, canonical `key=value` text.
    pub options: String,
    /// b_k of the K−1 heads, non-increasing.
    pub thresholds: Vec<f64>,
    /// Per-feature mean and scale that standardise the dense features.
    pub dense_mean: Vec<f64>,
    /// See `dense_mean`.
    pub dense_scale: Vec<f64>,
    /// Weights of the standardised dense features.
    pub dense_weights: Vec<f64>,
    /// Inverse document frequency per bucket.
    pub idf: Vec<f32>,
    /// Weight per bucket.
    pub weights: Vec<f32>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Σₖ σ(s + b_k): the expected label.
pub(crate) fn expected(s: f64, thresholds: &[f64]) -> f64 {
    thresholds.iter().map(|b| sigmoid(s + b)).sum()
}

impl OrdinalModel {
    /// The linear score s(x) of a text, with the caller's scratch buffers.
    pub(crate) fn score_with(&self, text: &str, scratch: &mut Scratch, buf: &mut Vec<f64>) -> f64 {
        scratch.count(text, self.buckets);
        let (mut dot, mut norm) = (0f32, 0f32);
        for &(b, c) in &scratch.counts {
            let x = tf(c) * self.idf[b as usize];
            norm += x * x;
            dot += x * self.weights[b as usize];
        }
        let mut s = if norm > 0.0 {
            f64::from(dot / norm.sqrt())
        } else {
            0.0
        };
        dense(text, scratch, self.signals, buf);
        for (d, v) in buf.iter().enumerate() {
            s += (v - self.dense_mean[d]) / self.dense_scale[d] * self.dense_weights[d];
        }
        s
    }

    /// The expected label of `text`, in [0, K−1].
    pub fn predict(&self, text: &str) -> f64 {
        self.predict_with(text, &mut Scratch::default(), &mut Vec::new())
    }

    pub(crate) fn predict_with(
        &self,
        text: &str,
        scratch: &mut Scratch,
        buf: &mut Vec<f64>,
    ) -> f64 {
        expected(self.score_with(text, scratch, buf), &self.thresholds)
    }
}

/// The model table's columns, in order.
pub fn columns() -> Vec<Field> {
    let list = |t: DataType| DataType::new_list(t, true);
    vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("levels", DataType::Int32, false),
        Field::new("buckets", DataType::Int64, false),
        Field::new("signals", DataType::Boolean, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("options", DataType::Utf8, false),
        Field::new("thresholds", list(DataType::Float64), false),
        Field::new("dense_mean", list(DataType::Float64), false),
        Field::new("dense_scale", list(DataType::Float64), false),
        Field::new("dense_weights", list(DataType::Float64), false),
        Field::new("idf", list(DataType::Float32), false),
        Field::new("weights", list(DataType::Float32), false),
    ]
}

fn list_of(values: ArrayRef) -> ArrayRef {
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    Arc::new(ListArray::new(
        field,
        datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
        values,
        None,
    ))
}

/// The model as its one-row table.
pub fn to_batch(m: &OrdinalModel) -> Result<RecordBatch> {
    let f64s = |v: &[f64]| list_of(Arc::new(Float64Array::from(v.to_vec())));
    let f32s = |v: &[f32]| list_of(Arc::new(Float32Array::from(v.to_vec())));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(columns())),
        vec![
            Arc::new(StringArray::from(vec![FORMAT])),
            Arc::new(Int32Array::from(vec![m.levels as i32])),
            Arc::new(Int64Array::from(vec![i64::from(m.buckets)])),
            Arc::new(BooleanArray::from(vec![m.signals])),
            Arc::new(Int64Array::from(vec![m.rows as i64])),
            Arc::new(StringArray::from(vec![m.options.as_str()])),
            f64s(&m.thresholds),
            f64s(&m.dense_mean),
            f64s(&m.dense_scale),
            f64s(&m.dense_weights),
            f32s(&m.idf),
            f32s(&m.weights),
        ],
    )?)
}

/// Read a model table back; every way it can be malformed is an error naming `name` and what
/// is wrong.
pub fn from_batches(function: &str, name: &str, batches: &[RecordBatch]) -> Result<OrdinalModel> {
    let bad = |what: String| {
        exec_datafusion_err!(
            "{function}: argument 'model': '{name}' is not a quality_model_fit model: {what}"
        )
    };
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(bad("it has no rows".into()));
    };
    if rows != 1 {
        return Err(bad(format!("it has {rows} rows, a model has exactly one")));
    }
    let column = |c: &str| {
        batch
            .column_by_name(c)
            .ok_or_else(|| bad(format!("no column '{c}'")))
    };
    let scalar_i64 = |c: &str| -> Result<i64> {
        let a = column(c)?;
        let v = match a.data_type() {
            DataType::Int32 => a
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .value(0)
                .into(),
            DataType::Int64 => a
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            t => return Err(bad(format!("column '{c}' is {t}, expected an integer"))),
        };
        if a.is_null(0) {
            return Err(bad(format!("column '{c}' is NULL")));
        }
        Ok(v)
    };
    let string = |c: &str| -> Result<String> {
        let a = column(c)?;
        // Parquet reads strings back as Utf8View.
        let a = datafusion::arrow::compute::cast(a, &DataType::Utf8)
            .map_err(|_| bad(format!("column '{c}' must be a string")))?;
        match a.as_string_opt::<i32>() {
            Some(s) if !s.is_null(0) => Ok(s.value(0).to_string()),
            _ => Err(bad(format!("column '{c}' must be a non-NULL Utf8"))),
        }
    };
    let values = |c: &str| -> Result<ArrayRef> {
        let a = column(c)?;
        let inner = match a.data_type() {
            DataType::List(_) if !a.is_null(0) => a.as_list::<i32>().value(0),
            DataType::LargeList(_) if !a.is_null(0) => a.as_list::<i64>().value(0),
            t => {
                return Err(bad(format!(
                    "column '{c}' is {t}, expected a non-NULL list"
                )))
            }
        };
        if inner.null_count() > 0 {
            return Err(bad(format!("column '{c}' holds NULL values")));
        }
        Ok(inner)
    };
    let f64s = |c: &str| -> Result<Vec<f64>> {
        let a = values(c)?;
        let v = a
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| bad(format!("column '{c}' must hold Float64 values")))?;
        Ok(v.values().to_vec())
    };
    let f32s = |c: &str| -> Result<Vec<f32>> {
        let a = values(c)?;
        let v = a
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| bad(format!("column '{c}' must hold Float32 values")))?;
        Ok(v.values().to_vec())
    };
    let format = string("model")?;
    if format != FORMAT {
        return Err(bad(format!(
            "its 'model' column says '{format}', expected '{FORMAT}'"
        )));
    }
    let signals = match column("signals")?.as_boolean_opt() {
        Some(b) if !b.is_null(0) => b.value(0),
        _ => return Err(bad("column 'signals' must be a non-NULL Boolean".into())),
    };
    let levels = scalar_i64("levels")?;
    let buckets = scalar_i64("buckets")?;
    if !(2..=1_000_000).contains(&levels) {
        return Err(bad(format!("levels is {levels}, expected 2 to 1,000,000")));
    }
    let Ok(buckets) = u32::try_from(buckets) else {
        return Err(bad(format!("buckets is {buckets}, expected 1 to 2^32−1")));
    };
    let m = OrdinalModel {
        levels: levels as usize,
        buckets,
        signals,
        rows: scalar_i64("rows")?.max(0) as u64,
        options: string("options")?,
        thresholds: f64s("thresholds")?,
        dense_mean: f64s("dense_mean")?,
        dense_scale: f64s("dense_scale")?,
        dense_weights: f64s("dense_weights")?,
        idf: f32s("idf")?,
        weights: f32s("weights")?,
    };
    let dense = dense_len(signals);
    let checks = [
        ("thresholds", m.thresholds.len(), m.levels - 1),
        ("dense_mean", m.dense_mean.len(), dense),
        ("dense_scale", m.dense_scale.len(), dense),
        ("dense_weights", m.dense_weights.len(), dense),
        ("idf", m.idf.len(), buckets as usize),
        ("weights", m.weights.len(), buckets as usize),
    ];
    for (c, got, want) in checks {
        if got != want {
            return Err(bad(format!(
                "column '{c}' holds {got} values, expected {want}"
            )));
        }
    }
    let finite = m
        .thresholds
        .iter()
        .chain(&m.dense_mean)
        .chain(&m.dense_weights)
        .all(|v| v.is_finite())
        && m.dense_scale.iter().all(|v| v.is_finite() && *v > 0.0)
        && m.idf.iter().chain(&m.weights).all(|v| v.is_finite());
    if buckets == 0 || !finite {
        return Err(bad(
            "it holds zero buckets, or a non-finite number or non-positive scale".into(),
        ));
    }
    Ok(m)
}
