//! Embedding columns (List / LargeList / FixedSizeList of Float32 or Float64) as row slices,
//! reading the Arrow values buffer without copying when it already holds the wanted type.

use std::borrow::Cow;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;

/// Rows of an embedding column, as slices of `T`.
pub struct Rows<'a, T: Clone> {
    data: Cow<'a, [T]>,
    /// Start and end of each row in `data`; None for a NULL row.
    rows: Vec<Option<(usize, usize)>>,
}

/// Rows of f32 (the type k-means and assignment compute in).
pub type Vectors<'a> = Rows<'a, f32>;

impl<T: Clone> Rows<'_, T> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Values of row `i`; None when the row is NULL.
    pub fn row(&self, i: usize) -> Option<&[T]> {
        self.rows[i].map(|(s, e)| &self.data[s..e])
    }

    /// The values of rows `from..to` when they are all non-NULL, of one length and contiguous.
    pub fn contiguous(&self, from: usize, to: usize) -> Option<&[T]> {
        let first = self.rows.get(from).copied().flatten()?;
        let len = first.1 - first.0;
        let mut end = first.0;
        for r in &self.rows[from..to] {
            let (s, e) = (*r)?;
            if s != end || e - s != len {
                return None;
            }
            end = e;
        }
        Some(&self.data[first.0..end])
    }
}

/// Whether `t` is an accepted embedding type.
pub fn check_type(t: &DataType, function: &str, argument: &str) -> Result<()> {
    let item = match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type(),
        DataType::Null => return Ok(()),
        other => {
            return plan_err!(
                "{function}: argument '{argument}' must be a List or FixedSizeList of Float32 or Float64 (an embedding), got {other}"
            )
        }
    };
    if !matches!(item, DataType::Float32 | DataType::Float64) {
        return plan_err!(
            "{function}: argument '{argument}' must be a list of Float32 or Float64, got a list of {item}"
        );
    }
    Ok(())
}

/// A row's [start, end) in the child values; None for a NULL row.
type RowBounds = Option<(usize, usize)>;

/// The child values and each row's bounds of a list array; rows with NULLs inside are errors.
fn layout<'a>(
    array: &'a ArrayRef,
    function: &str,
    argument: &str,
) -> Result<Option<(&'a ArrayRef, Vec<RowBounds>)>> {
    check_type(array.data_type(), function, argument)?;
    let n = array.len();
    let (child, bounds): (&ArrayRef, Vec<(usize, usize)>) = match array.data_type() {
        DataType::Null => return Ok(None),
        DataType::FixedSizeList(_, d) => {
            let l = array.as_fixed_size_list();
            let d = *d as usize;
            (
                l.values(),
                (0..n)
                    .map(|i| (l.value_offset(i) as usize, l.value_offset(i) as usize + d))
                    .collect(),
            )
        }
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let o = l.value_offsets();
            (
                l.values(),
                (0..n).map(|i| (o[i] as usize, o[i + 1] as usize)).collect(),
            )
        }
        _ => {
            let l = array.as_list::<i64>();
            let o = l.value_offsets();
            (
                l.values(),
                (0..n).map(|i| (o[i] as usize, o[i + 1] as usize)).collect(),
            )
        }
    };
    let mut rows = Vec::with_capacity(n);
    for (i, (s, e)) in bounds.into_iter().enumerate() {
        if array.is_null(i) {
            rows.push(None);
            continue;
        }
        if child.null_count() > 0 && (s..e).any(|j| child.is_null(j)) {
            return exec_err!("{function}: argument '{argument}': row {i} contains NULL values inside the embedding");
        }
        rows.push(Some((s, e)));
    }
    Ok(Some((child, rows)))
}

/// View an embedding array as rows of f32. Float64 values are narrowed; a finite value beyond
/// the Float32 range is an error (it would become infinite), never a silent change.
pub fn vectors<'a>(array: &'a ArrayRef, function: &str, argument: &str) -> Result<Vectors<'a>> {
    let Some((child, rows)) = layout(array, function, argument)? else {
        return Ok(Rows {
            data: Cow::Owned(Vec::new()),
            rows: vec![None; array.len()],
        });
    };
    let data: Cow<'a, [f32]> = match child.data_type() {
        DataType::Float32 => Cow::Borrowed(child.as_primitive::<Float32Type>().values()),
        _ => {
            let values = child.as_primitive::<Float64Type>().values();
            if let Some(v) = values
                .iter()
                .find(|v| v.is_finite() && v.abs() > f64::from(f32::MAX))
            {
                return exec_err!(
                    "{function}: argument '{argument}': value {v:e} is beyond the Float32 range (±3.4e38) that clustering computes in; rescale the embeddings"
                );
            }
            Cow::Owned(values.iter().map(|v| *v as f32).collect())
        }
    };
    Ok(Rows { data, rows })
}

/// View an embedding array as rows of f64 (exact for either item type).
pub fn f64_rows<'a>(array: &'a ArrayRef, function: &str, argument: &str) -> Result<Rows<'a, f64>> {
    let Some((child, rows)) = layout(array, function, argument)? else {
        return Ok(Rows {
            data: Cow::Owned(Vec::new()),
            rows: vec![None; array.len()],
        });
    };
    let data: Cow<'a, [f64]> = match child.data_type() {
        DataType::Float64 => Cow::Borrowed(child.as_primitive::<Float64Type>().values()),
        _ => Cow::Owned(
            child
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|v| f64::from(*v))
                .collect(),
        ),
    };
    Ok(Rows { data, rows })
}

/// Check a row is finite, naming the function and argument otherwise.
pub fn check_finite(row: &[f32], function: &str, argument: &str) -> Result<()> {
    if row.iter().any(|v| !v.is_finite()) {
        return exec_err!("{function}: argument '{argument}' contains NaN or infinite values; embeddings must be finite");
    }
    Ok(())
}
