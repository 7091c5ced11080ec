//! `samplemix_uniform(id, seed)` and `samplemix_round(expected_count, id, seed)`: u(x), the
//! deterministic uniform of the paper's rounding, over ids of any type. One dispatch over the
//! id's type ([`id_uniforms`]) serves both functions and the systematic rounding window.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::result;
use crate::args::{check_arity, pass_through};
use crate::hash::{splitmix64, uniform_premixed, uniforms_premixed, view_uniforms_premixed};
use crate::mix::counts::integer_count;

/// Portable hash of (id, seed) to [0, 1).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Uniform {
    pub(super) signature: Signature,
}

const UNIFORM: &str = "samplemix_uniform";

static UNIFORM_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Deterministic u(x) in [0, 1) for stochastic rounding: h = FNV-1a-64 of the id's canonical \
         bytes (strings: UTF-8; binary: the bytes; other types: their Arrow string form, e.g. 42 → \"42\"), \
         m = SplitMix64(h XOR SplitMix64(seed)), u = (m >> 11) / 2^53. Same value on every machine \
         and version; independent of partitioning. The seed is any integer of -2^63 .. 2^64 - 1, \
         taken modulo 2^64 (so -1 and 18446744073709551615 are the same seed). NULL id or seed gives NULL.",
        "samplemix_uniform(id, seed)",
    )
    .with_sql_example("SELECT samplemix_uniform('doc-1', 0);")
    .with_argument("id", "Document id of any type.")
    .with_argument("seed", "Integer seed.")
    .build()
});

/// Seeds as the 64-bit patterns the hash uses: signed values as two's complement, unsigned as
/// they are.
pub(crate) fn seeds(array: &ArrayRef) -> Result<Vec<Option<i64>>> {
    Ok(match array.data_type() {
        DataType::UInt64 => array
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map(|v| v as i64))
            .collect(),
        _ => cast(array, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .iter()
            .collect(),
    })
}

impl ScalarUDFImpl for Uniform {
    fn name(&self) -> &str {
        UNIFORM
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(UNIFORM, arg_types.len(), 2..=2, "id, seed")?;
        if !(arg_types[1].is_integer() || arg_types[1].is_null()) {
            return plan_err!(
                "{UNIFORM}: argument 'seed' must be an integer, got {}",
                arg_types[1]
            );
        }
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [id, seed] = take_function_args(UNIFORM, &args.args)?;
        let (out, scalar) = uniforms(id, seed, args.number_rows)?;
        result(Arc::new(out), scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&UNIFORM_DOC)
    }
}

/// The seeds of a call, mixed once (`SplitMix64(seed)`): one for all rows, or one per row.
enum Mixed {
    One(u64),
    PerRow(Vec<Option<u64>>),
}

/// u(id, seed) for every row, and whether both arguments were scalars (then one value).
fn uniforms(id: &ColumnarValue, seed: &ColumnarValue, rows: usize) -> Result<(Float64Array, bool)> {
    let scalar = matches!(
        (id, seed),
        (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
    );
    let rows = if scalar { 1 } else { rows };
    let ids = id.to_array(rows)?;
    let mixed = match seed {
        // The common call has one seed: it is mixed once, not per row.
        ColumnarValue::Scalar(s) => match seeds(&s.to_array()?)?.first() {
            Some(Some(seed)) => Mixed::One(splitmix64(*seed as u64)),
            _ => return Ok((Float64Array::new_null(rows), scalar)),
        },
        ColumnarValue::Array(a) => Mixed::PerRow(
            seeds(a)?
                .into_iter()
                .map(|s| s.map(|s| splitmix64(s as u64)))
                .collect(),
        ),
    };
    Ok((by_id(&ids, &mixed)?, scalar))
}

/// u(id) of every row for one seed, given as `SplitMix64(seed)`; NULL ids give NULL.
pub(crate) fn id_uniforms(id: &ArrayRef, mixed: u64) -> Result<Float64Array> {
    by_id(id, &Mixed::One(mixed))
}

/// The one dispatch over id types: strings as UTF-8 bytes, binaries as their bytes, every
/// other type as its Arrow string form (42 → "42"). A string column without NULLs and one
/// seed takes the batched hash (several ids at a time, AVX-512 where the CPU has it).
fn by_id(id: &ArrayRef, mixed: &Mixed) -> Result<Float64Array> {
    if let Mixed::One(m) = mixed {
        if let Some(u) = string_uniforms(id, *m) {
            return Ok(Float64Array::from(u));
        }
    }
    let seed = |i: usize| match mixed {
        Mixed::One(m) => Some(*m),
        Mixed::PerRow(all) => all[i],
    };
    let hash = |i: usize, bytes: Option<&[u8]>| Some(uniform_premixed(bytes?, seed(i)?));
    Ok(match id.data_type() {
        DataType::Utf8 => each(id.as_string::<i32>().iter(), |i, s| {
            hash(i, s.map(str::as_bytes))
        }),
        DataType::LargeUtf8 => each(id.as_string::<i64>().iter(), |i, s| {
            hash(i, s.map(str::as_bytes))
        }),
        DataType::Utf8View => each(id.as_string_view().iter(), |i, s| {
            hash(i, s.map(str::as_bytes))
        }),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let bin = cast(id, &DataType::LargeBinary)?;
            each(bin.as_binary::<i64>().iter(), hash)
        }
        _ => {
            let text = cast(id, &DataType::Utf8)?;
            each(text.as_string::<i32>().iter(), |i, s| {
                hash(i, s.map(str::as_bytes))
            })
        }
    })
}

fn each<T>(
    values: impl Iterator<Item = Option<T>>,
    f: impl Fn(usize, Option<T>) -> Option<f64>,
) -> Float64Array {
    values.enumerate().map(|(i, v)| f(i, v)).collect()
}

/// u(id) of a string column without NULLs, several ids at a time (None: another type, or NULLs).
fn string_uniforms(id: &ArrayRef, mixed: u64) -> Option<Vec<f64>> {
    if id.null_count() > 0 {
        return None;
    }
    let n = id.len();
    Some(match id.data_type() {
        DataType::Utf8View => {
            let ids = id.as_string_view();
            view_uniforms_premixed(ids.views(), |i| ids.value(i).as_bytes(), mixed)
        }
        DataType::Utf8 => {
            let ids = id.as_string::<i32>();
            uniforms_premixed(n, |i| ids.value(i).as_bytes(), mixed)
        }
        DataType::LargeUtf8 => {
            let ids = id.as_string::<i64>();
            uniforms_premixed(n, |i| ids.value(i).as_bytes(), mixed)
        }
        _ => return None,
    })
}

/// The paper's stochastic rounding of an expected count, seeded by the id.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Round {
    pub(super) signature: Signature,
}

const ROUND: &str = "samplemix_round";

/// Counts are Int64: an expected count must be below this.
pub(crate) const MAX_EXPECTED: f64 = 9.2e18;

static ROUND_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Integer copies from an expected count, the paper's stochastic rounding: \
         floor(c) + 1 if samplemix_uniform(id, seed) < c - floor(c), else floor(c), so the \
         mean over seeds is c. samplemix_weights computes its independent-rounding `count` \
         this way; use it to re-round expected_count with another seed. expected_count must be \
         a finite number in [0, 9.2e18) (the count is Int64); NULL in any argument gives NULL.",
        "samplemix_round(expected_count, id, seed)",
    )
    .with_sql_example("SELECT id, samplemix_round(expected_count, id, 7) AS count FROM weights;")
    .with_argument("expected_count", "Expected copies (Float64, >= 0).")
    .with_argument(
        "id",
        "Document id of any type (hashed as samplemix_uniform does).",
    )
    .with_argument("seed", "Integer seed.")
    .build()
});

impl ScalarUDFImpl for Round {
    fn name(&self) -> &str {
        ROUND
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(ROUND, arg_types.len(), 3..=3, "expected_count, id, seed")?;
        if !(arg_types[0].is_numeric() || arg_types[0].is_null()) {
            return plan_err!(
                "{ROUND}: argument 'expected_count' must be numeric, got {}",
                arg_types[0]
            );
        }
        if !(arg_types[2].is_integer() || arg_types[2].is_null()) {
            return plan_err!(
                "{ROUND}: argument 'seed' must be an integer, got {}",
                arg_types[2]
            );
        }
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [expected, id, seed] = take_function_args(ROUND, &args.args)?;
        let (u, scalar) = uniforms(id, seed, args.number_rows)?;
        let all_scalar = scalar && matches!(expected, ColumnarValue::Scalar(_));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let expected = cast(&expected.to_array(rows)?, &DataType::Float64)?;
        let expected = expected.as_primitive::<Float64Type>();
        // u of a scalar id and seed applies to every row.
        let u_at = |i: usize| if u.len() == 1 { 0 } else { i };
        let values = expected.values();
        // The range check over the whole column first: then the rounding loop has no exit and
        // vectorises (collecting Results row by row was a third of this function's time).
        let outside = |c: &f64| !(0.0..MAX_EXPECTED).contains(c);
        let checked = (0..rows).filter(|i| expected.is_valid(*i));
        if let Some(i) = checked.clone().find(|i| outside(&values[*i])) {
            return out_of_range(values[i]);
        }
        let counts: Vec<i64> = if u.len() == rows {
            values
                .iter()
                .zip(u.values())
                .map(|(c, u)| integer_count(if outside(c) { 0.0 } else { *c }, *u))
                .collect()
        } else {
            (0..rows)
                .map(|i| {
                    integer_count(
                        if outside(&values[i]) { 0.0 } else { values[i] },
                        u.value(u_at(i)),
                    )
                })
                .collect()
        };
        let nulls = datafusion::arrow::buffer::NullBuffer::union(
            expected.nulls(),
            if u.len() == rows { u.nulls() } else { None },
        );
        let nulls = if u.len() != rows && u.is_null(0) {
            Some(datafusion::arrow::buffer::NullBuffer::new_null(rows))
        } else {
            nulls
        };
        result(Arc::new(Int64Array::new(counts.into(), nulls)), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&ROUND_DOC)
    }
}

#[cold]
fn out_of_range<T>(c: f64) -> Result<T> {
    exec_err!(
        "{ROUND}: argument 'expected_count' must be a number in [0, 9.2e18) (counts are Int64), got {c}"
    )
}
