//! Embedding columns (List / LargeList / FixedSizeList of Float32 or Float64) as row slices of
//! f32, reading the Arrow values buffer without copying when it already holds f32.

use std::borrow::Cow;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;

/// Rows of an embedding column.
pub struct Vectors<'a> {
    data: Cow<'a, [f32]>,
    /// Start and end of each row in `data`; None for a NULL row.
    rows: Vec<Option<(usize, usize)>>,
}

impl Vectors<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Values of row `i`; None when the row is NULL.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.rows[i].map(|(s, e)| &self.data[s..e])
    }

    /// The values of rows `from..to` when they are all non-NULL, of one length and contiguous.
    pub fn contiguous(&self, from: usize, to: usize) -> Option<&[f32]> {
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

/// View an embedding array as rows of f32.
pub fn vectors<'a>(array: &'a ArrayRef, function: &str, argument: &str) -> Result<Vectors<'a>> {
    check_type(array.data_type(), function, argument)?;
    let n = array.len();
    let (child, bounds): (&ArrayRef, Vec<(usize, usize)>) = match array.data_type() {
        DataType::Null => {
            return Ok(Vectors {
                data: Cow::Owned(Vec::new()),
                rows: vec![None; n],
            })
        }
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
    let data: Cow<'a, [f32]> = match child.data_type() {
        DataType::Float32 => Cow::Borrowed(child.as_primitive::<Float32Type>().values()),
        _ => Cow::Owned(
            child
                .as_primitive::<Float64Type>()
                .values()
                .iter()
                .map(|v| *v as f32)
                .collect(),
        ),
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
    Ok(Vectors { data, rows })
}

/// Check a row is finite, naming the function and argument otherwise.
pub fn check_finite(row: &[f32], function: &str, argument: &str) -> Result<()> {
    if row.iter().any(|v| !v.is_finite()) {
        return exec_err!("{function}: argument '{argument}' contains NaN or infinite values; embeddings must be finite");
    }
    Ok(())
}
