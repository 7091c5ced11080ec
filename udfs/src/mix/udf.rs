//! SQL glue for the scalar helpers of the mix: `samplemix_uniform`, `samplemix_round`,
//! `samplemix_exp`, `samplemix_lookup`, `samplemix_distance` and `samplemix_assert`.

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, Int64Builder};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, UInt64Type};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};

use super::lookup::KeyIndex;
use super::weights::integer_count;
use crate::args::{check_arity, check_text, choice_of, pass_through, signature, udf_singleton};
use crate::cluster::metric::{distance_f64, Metric};
use crate::cluster::vectors::{check_type, f64_rows};
use crate::hash::uniform;

udf_singleton!(
    /// `samplemix_uniform(id, seed)`.
    uniform_udf,
    Uniform {
        signature: signature(
            vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_round(expected_count, id, seed)`.
    round_udf,
    Round {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::Float64,
                DataType::Utf8,
                DataType::Int64,
            ])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_exp(x)`.
    exp_udf,
    Exp {
        signature: signature(
            vec![TypeSignature::Exact(vec![DataType::Float64])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_lookup(key, keys, values)`.
    lookup_udf,
    Lookup {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::Int64,
                DataType::new_list(DataType::Int64, true),
                DataType::new_list(DataType::Float64, true),
            ])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_distance(a, b, metric)`.
    distance_udf,
    Distance {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::new_list(DataType::Float32, true),
                DataType::new_list(DataType::Float32, true),
                DataType::Utf8,
            ])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_assert(value, ok, message, detail)`.
    assert_udf,
    Assert {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::Float64,
                DataType::Boolean,
                DataType::Utf8,
                DataType::Utf8,
            ])],
            Volatility::Volatile,
        ),
    }
);

/// The arrays of all arguments, and whether they were all scalars (then the result is one).
fn arrays(args: &ScalarFunctionArgs) -> Result<(Vec<ArrayRef>, bool)> {
    let scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if scalar { 1 } else { args.number_rows };
    let arrays = ColumnarValue::values_to_arrays(&args.args)?;
    // values_to_arrays sizes scalars to the longest array; all-scalar calls give length 1.
    debug_assert!(arrays.iter().all(|a| a.len() == rows));
    Ok((arrays, scalar))
}

fn result(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
    } else {
        ColumnarValue::Array(array)
    })
}

/// Portable hash of (id, seed) to [0, 1).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Uniform {
    signature: Signature,
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

/// u(id, seed) for every row, and whether both arguments were scalars (then one value).
fn uniforms(id: &ColumnarValue, seed: &ColumnarValue, rows: usize) -> Result<(Float64Array, bool)> {
    // The common call has one seed: it is mixed once, not per row.
    if let (ColumnarValue::Array(id), ColumnarValue::Scalar(seed)) = (id, seed) {
        if let Some(Some(seed)) = seeds(&seed.to_array()?)?.first() {
            return Ok((
                id_uniforms(id, crate::hash::splitmix64(*seed as u64))?,
                false,
            ));
        }
    }
    let scalar = matches!(
        (id, seed),
        (ColumnarValue::Scalar(_), ColumnarValue::Scalar(_))
    );
    let rows = if scalar { 1 } else { rows };
    let (id, seed) = (id.to_array(rows)?, seed.to_array(rows)?);
    let seeds = seeds(&seed)?;
    let out: Float64Array = match id.data_type() {
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let bin = cast(&id, &DataType::LargeBinary)?;
            let bin = bin.as_binary::<i64>();
            bin.iter()
                .zip(&seeds)
                .map(|(b, s)| Some(uniform(b?, (*s)?)))
                .collect()
        }
        DataType::Utf8 => hash_strings(id.as_string::<i32>().iter(), &seeds),
        DataType::LargeUtf8 => hash_strings(id.as_string::<i64>().iter(), &seeds),
        DataType::Utf8View => hash_strings(id.as_string_view().iter(), &seeds),
        _ => {
            let s = cast(&id, &DataType::Utf8)?;
            hash_strings(s.as_string::<i32>().iter(), &seeds)
        }
    };
    Ok((out, scalar))
}

fn hash_strings<'a>(
    ids: impl Iterator<Item = Option<&'a str>>,
    seeds: &[Option<i64>],
) -> Float64Array {
    ids.zip(seeds)
        .map(|(id, s)| Some(uniform(id?.as_bytes(), (*s)?)))
        .collect()
}

/// u(id) of every row for one seed, given as `SplitMix64(seed)` (mixed once, not per row);
/// NULL ids give NULL.
pub(crate) fn id_uniforms(id: &ArrayRef, mixed: u64) -> Result<Float64Array> {
    fn strings<'a>(ids: impl Iterator<Item = Option<&'a str>>, mixed: u64) -> Float64Array {
        ids.map(|id| Some(crate::hash::uniform_premixed(id?.as_bytes(), mixed)))
            .collect()
    }
    if let Some(u) = string_uniforms(id, mixed) {
        return Ok(Float64Array::from(u));
    }
    Ok(match id.data_type() {
        DataType::Utf8 => strings(id.as_string::<i32>().iter(), mixed),
        DataType::LargeUtf8 => strings(id.as_string::<i64>().iter(), mixed),
        DataType::Utf8View => strings(id.as_string_view().iter(), mixed),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let bin = cast(id, &DataType::LargeBinary)?;
            bin.as_binary::<i64>()
                .iter()
                .map(|b| Some(crate::hash::uniform_premixed(b?, mixed)))
                .collect()
        }
        _ => strings(cast(id, &DataType::Utf8)?.as_string::<i32>().iter(), mixed),
    })
}

/// u(id) of a string column without NULLs, four ids at a time (None: another type, or NULLs).
fn string_uniforms(id: &ArrayRef, mixed: u64) -> Option<Vec<f64>> {
    use crate::hash::uniforms_premixed;
    if id.null_count() > 0 {
        return None;
    }
    let n = id.len();
    Some(match id.data_type() {
        DataType::Utf8View => {
            let ids = id.as_string_view();
            crate::hash::view_uniforms_premixed(ids.views(), |i| ids.value(i).as_bytes(), mixed)
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
    signature: Signature,
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
        if let Some(out) = round_fast(expected, id, seed)? {
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
        let (u, scalar) = uniforms(id, seed, args.number_rows)?;
        let all_scalar = scalar && matches!(expected, ColumnarValue::Scalar(_));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let expected = cast(&expected.to_array(rows)?, &DataType::Float64)?;
        let expected = expected.as_primitive::<Float64Type>();
        let mut out = Int64Builder::with_capacity(rows);
        for i in 0..rows {
            let j = if u.len() == 1 { 0 } else { i };
            if expected.is_null(i) || u.is_null(j) {
                out.append_null();
                continue;
            }
            out.append_value(rounded(expected.value(i), u.value(j))?);
        }
        result(Arc::new(out.finish()), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&ROUND_DOC)
    }
}

/// [`integer_count`] of one expected count, which must fit the Int64 count.
#[inline]
fn rounded(c: f64, u: f64) -> Result<i64> {
    if !(0.0..MAX_EXPECTED).contains(&c) {
        return out_of_range(c);
    }
    Ok(integer_count(c, u))
}

#[cold]
fn out_of_range(c: f64) -> Result<i64> {
    exec_err!(
        "{ROUND}: argument 'expected_count' must be a number in [0, 9.2e18) (counts are Int64), got {c}"
    )
}

/// The common call of [`Round`], `samplemix_round(expected, id, 42)` over string ids with no
/// NULLs, in one loop (None: take the general path).
fn round_fast(
    expected: &ColumnarValue,
    id: &ColumnarValue,
    seed: &ColumnarValue,
) -> Result<Option<Int64Array>> {
    let (ColumnarValue::Array(expected), ColumnarValue::Array(id), ColumnarValue::Scalar(seed)) =
        (expected, id, seed)
    else {
        return Ok(None);
    };
    let Some(Some(seed)) = seeds(&seed.to_array()?)?.first().copied() else {
        return Ok(None);
    };
    if expected.data_type() != &DataType::Float64
        || expected.null_count() > 0
        || id.null_count() > 0
    {
        return Ok(None);
    }
    let expected = expected.as_primitive::<Float64Type>().values();
    let Some(u) = string_uniforms(id, crate::hash::splitmix64(seed as u64)) else {
        return Ok(None);
    };
    // The range check over the whole column first: then the rounding loop has no exit and
    // vectorises (collecting Results row by row was a third of this function's time).
    let outside = |c: &f64| !(0.0..MAX_EXPECTED).contains(c);
    if expected.iter().fold(false, |any, c| any | outside(c)) {
        if let Some(c) = expected.iter().find(|c| outside(c)) {
            return out_of_range(*c).map(|_| None);
        }
    }
    let out: Vec<i64> = expected
        .iter()
        .zip(u)
        .map(|(c, u)| integer_count(*c, u))
        .collect();
    Ok(Some(Int64Array::from(out)))
}

/// e^x with the same bits on every machine ([`super::exp`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Exp {
    signature: Signature,
}

const EXP: &str = "samplemix_exp";

static EXP_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "e^x, the same bits on every machine: built from +, −, ×, ÷ only (fdlibm's method, error \
         below 1 ulp), where exp() follows the C library, which picks its code by CPU and may \
         round a rare value differently elsewhere. samplemix_weights computes its softmax terms \
         with it. Vectorised: over a column it costs about 60% of exp(). Integers are taken as \
         Float64; NaN gives NaN, overflow +inf, underflow 0; NULL gives NULL.",
        "samplemix_exp(x)",
    )
    .with_sql_example("SELECT samplemix_exp(1.0);  -- 2.7182818284590455 (exp(1.0): ...045)")
    .with_argument("x", "Numeric (taken as Float64).")
    .build()
});

impl ScalarUDFImpl for Exp {
    fn name(&self) -> &str {
        EXP
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types)
            .into_iter()
            .map(|t| if t.is_numeric() { DataType::Float64 } else { t })
            .collect())
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(EXP, arg_types.len(), 1..=1, "x")?;
        match &arg_types[0] {
            DataType::Float64 | DataType::Null => Ok(DataType::Float64),
            t => plan_err!("{EXP}: argument 'x' must be numeric, got {t}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args)?;
        let [x] = take_function_args(EXP, a)?;
        let x = cast(&x, &DataType::Float64)?;
        let x = x.as_primitive::<Float64Type>();
        // NULL slots hold some value too; their results are masked by the same null buffer.
        let mut out = vec![0.0; x.len()];
        super::exp::exp_into(x.values(), &mut out);
        result(
            Arc::new(Float64Array::new(out.into(), x.nulls().cloned())),
            scalar,
        )
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&EXP_DOC)
    }
}

/// The value of a key in a constant table.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Lookup {
    signature: Signature,
}

const LOOKUP: &str = "samplemix_lookup";

static LOOKUP_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "The value paired with an integer key in a constant table: values[i] where \
         keys[i] = key, NULL when the key is NULL or not among the keys (or its value is NULL). \
         For a small table (per-cluster figures, say) it replaces a join: each row's key is \
         looked up directly, and no other column is copied. samplemix_weights gives each row \
         its cluster's figures this way. keys and values are constant lists of the same \
         length; the keys are distinct integers. Either may also be a constant string: the \
         base64 of little-endian 8-byte items (Int64 keys, Float64 values), as \
         encode(bytes, 'base64') writes it. samplemix_weights writes its per-cluster tables \
         so: DataFusion copies a string when it plans, but formats a list item by item, \
         dozens of times per query.",
        "samplemix_lookup(key, keys, values)",
    )
    .with_sql_example("SELECT samplemix_lookup(cluster, [0, 1, 2], [0.5, 1.25, 2.0]) FROM scored;")
    .with_argument("key", "Integer expression.")
    .with_argument(
        "keys",
        "Constant list of distinct integers (or base64 of little-endian Int64s).",
    )
    .with_argument(
        "values",
        "Constant list of numbers, as long as keys, taken as Float64 (or base64 of \
         little-endian Float64s).",
    )
    .build()
});

/// A constant list (or packed string) argument of `samplemix_lookup` as the array of its elements.
fn lookup_list(value: &ScalarValue, argument: &str, item: &DataType) -> Result<ArrayRef> {
    if let Some(Some(text)) = value.try_as_str() {
        return packed_items(text, argument, item);
    }
    let list = match value {
        ScalarValue::List(a) if a.len() == 1 && a.is_valid(0) => a.value(0),
        ScalarValue::LargeList(a) if a.len() == 1 && a.is_valid(0) => a.value(0),
        ScalarValue::FixedSizeList(a) if a.len() == 1 && a.is_valid(0) => a.value(0),
        v if v.is_null() => return exec_err!("{LOOKUP}: argument '{argument}' must not be NULL"),
        v => {
            return exec_err!(
                "{LOOKUP}: argument '{argument}' must be a constant list, got {}",
                v.data_type()
            )
        }
    };
    Ok(cast(&list, item)?)
}

/// base64 that takes its padding or leaves it out (`encode(x, 'base64')` leaves it out).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The items of a packed table argument: base64 of little-endian 8-byte items, Int64 keys or
/// Float64 values.
fn packed_items(text: &str, argument: &str, item: &DataType) -> Result<ArrayRef> {
    let bytes = match BASE64.decode(text) {
        Ok(b) if b.len() % 8 == 0 => b,
        Ok(b) => {
            return exec_err!(
                "{LOOKUP}: argument '{argument}' as a string must be base64 of 8-byte items, got {} bytes",
                b.len()
            )
        }
        Err(e) => {
            return exec_err!(
                "{LOOKUP}: argument '{argument}' as a string must be base64 of 8-byte items: {e}"
            )
        }
    };
    let words = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
    Ok(if *item == DataType::Int64 {
        Arc::new(Int64Array::from_iter_values(words.map(|w| w as i64)))
    } else {
        Arc::new(Float64Array::from_iter_values(words.map(f64::from_bits)))
    })
}

/// A packed table argument of `samplemix_lookup` (see [`packed_items`]): the 8-byte `words`.
pub fn lookup_packed(words: impl IntoIterator<Item = u64>) -> ScalarValue {
    let bytes: Vec<u8> = words.into_iter().flat_map(u64::to_le_bytes).collect();
    ScalarValue::Utf8(Some(BASE64.encode(bytes)))
}

/// The table of a `samplemix_lookup` call: its key index and values, checked (lists, equal
/// lengths, no NULL or repeated key).
fn lookup_table(keys: &ScalarValue, values: &ScalarValue) -> Result<(KeyIndex, Float64Array)> {
    let k = lookup_list(keys, "keys", &DataType::Int64)?;
    let v = lookup_list(values, "values", &DataType::Float64)?;
    if k.len() != v.len() {
        return exec_err!(
            "{LOOKUP}: 'keys' and 'values' must have the same length, got {} and {}",
            k.len(),
            v.len()
        );
    }
    if k.null_count() > 0 {
        return exec_err!("{LOOKUP}: argument 'keys' must not contain NULL");
    }
    let index = KeyIndex::new(k.as_primitive::<Int64Type>().values()).or_else(|key| {
        exec_err!("{LOOKUP}: argument 'keys' must hold distinct keys, {key} appears twice")
    })?;
    Ok((index, v.as_primitive::<Float64Type>().clone()))
}

/// Constant tables up to this long keep their items in `samplemix_lookup`'s column name.
const NAMED_ITEMS: usize = 16;

/// The number of items of a constant list or packed table (None when `v` is neither).
fn table_length(v: &ScalarValue) -> Option<usize> {
    match v {
        ScalarValue::List(a) if a.len() == 1 => Some(a.value_length(0) as usize),
        ScalarValue::LargeList(a) if a.len() == 1 => Some(a.value_length(0) as usize),
        ScalarValue::FixedSizeList(a) if a.len() == 1 => Some(a.value_length() as usize),
        // Four base64 characters per three bytes.
        v => v.try_as_str().flatten().map(|t| t.len() * 3 / 4 / 8),
    }
}

/// A long constant table in a column name: its length and a hash of its items, so that two
/// lookups with different tables still name different columns.
fn long_table_name(v: &ScalarValue) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    v.hash(&mut hasher);
    let n = table_length(v).unwrap_or(0);
    format!("{}[{n} items #{:016x}]", v.data_type(), hasher.finish())
}

/// A checked table: its key index and values.
type Table = Arc<(KeyIndex, Float64Array)>;

/// Packed tables kept decoded per thread (the few a plan's lookups use).
const CACHED_TABLES: usize = 8;

thread_local! {
    /// Packed tables this thread decoded, with their two texts: a plan hands the same strings
    /// to every batch, and decoding them (and indexing the keys) for each would cost more
    /// than comparing them.
    static PACKED_TABLES: RefCell<Vec<(String, String, Table)>> = const { RefCell::new(Vec::new()) };
}

/// The table of `keys` and `values`: from the thread's cache when both are packed strings.
fn table_of(keys: &ScalarValue, values: &ScalarValue) -> Result<Table> {
    let (Some(Some(k)), Some(Some(v))) = (keys.try_as_str(), values.try_as_str()) else {
        return Ok(Arc::new(lookup_table(keys, values)?));
    };
    PACKED_TABLES.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some((_, _, t)) = cache.iter().find(|(ck, cv, _)| ck == k && cv == v) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(lookup_table(keys, values)?);
        if cache.len() == CACHED_TABLES {
            cache.remove(0);
        }
        cache.push((k.to_owned(), v.to_owned(), Arc::clone(&t)));
        Ok(t)
    })
}

/// Whether `t` is a list type whose items satisfy `item`, or a string (a packed table).
fn is_table_of(t: &DataType, item: impl Fn(&DataType) -> bool) -> bool {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            item(f.data_type())
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        _ => false,
    }
}

impl ScalarUDFImpl for Lookup {
    fn name(&self) -> &str {
        LOOKUP
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_arity(LOOKUP, args.arg_fields.len(), 3..=3, "key, keys, values")?;
        let types: Vec<&DataType> = args.arg_fields.iter().map(|f| f.data_type()).collect();
        if !(types[0].is_integer() || *types[0] == DataType::Null) {
            return plan_err!(
                "{LOOKUP}: argument 'key' must be an integer, got {}",
                types[0]
            );
        }
        for (t, argument, items, item) in [
            (
                types[1],
                "keys",
                "integers",
                DataType::is_integer as fn(&DataType) -> bool,
            ),
            (types[2], "values", "numbers", DataType::is_numeric),
        ] {
            if !is_table_of(t, |t| item(t) || *t == DataType::Null) {
                return plan_err!(
                    "{LOOKUP}: argument '{argument}' must be a list of {items} (or a packed string), got {t}"
                );
            }
        }
        // A list written in SQL (`[0, 1]`) is still a function call here, folded into a
        // constant later: the lists themselves are checked when the function runs.
        Ok(Arc::new(Field::new(LOOKUP, DataType::Float64, true)))
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        // The planner names a column each time it rebuilds a projection, dozens of times per
        // query: with lists of k = 1,024 items, formatting them each time took 10-17 ms of
        // serial planning per samplemix_weights call (and made an unreadable column name).
        let names = args
            .iter()
            .map(|a| match a {
                Expr::Literal(v, _) if table_length(v).is_some_and(|n| n > NAMED_ITEMS) => {
                    Ok(long_table_name(v))
                }
                a => Ok(a.schema_name().to_string()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(format!("{LOOKUP}({})", names.join(",")))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [key, keys, values] = take_function_args(LOOKUP, &args.args)?;
        let (ColumnarValue::Scalar(keys), ColumnarValue::Scalar(values)) = (keys, values) else {
            return exec_err!(
                "{LOOKUP}: arguments 'keys' and 'values' must be constant lists, not columns"
            );
        };
        let table = table_of(keys, values)?;
        let (index, values) = (&table.0, &table.1);
        let scalar = matches!(key, ColumnarValue::Scalar(_));
        let key = key.to_array(if scalar { 1 } else { args.number_rows })?;
        let key = cast(&key, &DataType::Int64)?;
        let key = key.as_primitive::<Int64Type>();
        // NULL keys hold some value too; the null buffer masks their results.
        let mut out = vec![0.0; key.len()];
        let found_all = index.gather(key.values(), values.values(), &mut out);
        let nulls = if found_all && values.null_count() == 0 {
            key.nulls().cloned()
        } else {
            let valid = key.values().iter().enumerate().map(|(i, k)| {
                key.is_valid(i) && index.position(*k).is_some_and(|p| values.is_valid(p))
            });
            Some(NullBuffer::from_iter(valid))
        };
        result(Arc::new(Float64Array::new(out.into(), nulls)), scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&LOOKUP_DOC)
    }
}

/// Distance between two embeddings under a metric.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Distance {
    signature: Signature,
}

const DISTANCE: &str = "samplemix_distance";

static DISTANCE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Distance between two embeddings: 'cosine' (1 − cos; 1 when either is the zero vector) or \
         'l2' (Euclidean), computed in f64 over the whole Float64 range (no narrowing to f32). \
         samplemix_weights uses it for the separation between centroids. NULL in, NULL out; \
         differing lengths and NaN or infinite values are errors.",
        "samplemix_distance(a, b, metric)",
    )
    .with_sql_example("SELECT samplemix_distance([1.0, 0.0], [0.0, 1.0], 'cosine');  -- 1.0")
    .with_argument("a", "List or FixedSizeList of Float32/Float64.")
    .with_argument("b", "List or FixedSizeList of Float32/Float64.")
    .with_argument("metric", "'cosine' or 'l2'.")
    .build()
});

impl ScalarUDFImpl for Distance {
    fn name(&self) -> &str {
        DISTANCE
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(DISTANCE, arg_types.len(), 3..=3, "a, b, metric")?;
        check_type(&arg_types[0], DISTANCE, "a")?;
        check_type(&arg_types[1], DISTANCE, "b")?;
        check_text(DISTANCE, "metric", &arg_types[2])?;
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args)?;
        let [a, b, metric] = take_function_args(DISTANCE, a)?;
        let (x, y) = (f64_rows(&a, DISTANCE, "a")?, f64_rows(&b, DISTANCE, "b")?);
        let metrics = cast(&metric, &DataType::Utf8)?;
        let metrics = metrics.as_string::<i32>();
        let mut out = Vec::with_capacity(x.len());
        for (i, m) in metrics.iter().enumerate() {
            let (Some(p), Some(q), Some(m)) = (x.row(i), y.row(i), m) else {
                out.push(None);
                continue;
            };
            if p.len() != q.len() {
                return exec_err!(
                    "{DISTANCE}: arguments 'a' and 'b' differ in length ({} and {})",
                    p.len(),
                    q.len()
                );
            }
            if p.iter().chain(q).any(|v| !v.is_finite()) {
                return exec_err!("{DISTANCE}: arguments 'a' and 'b' must be finite (NaN or infinite value in row {i})");
            }
            let m: Metric = choice_of(m, DISTANCE, "metric")?;
            out.push(Some(distance_f64(m, p, q)));
        }
        result(Arc::new(Float64Array::from(out)), scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DISTANCE_DOC)
    }
}

/// Pass `value` through, failing the query with `message` when `ok` is not true.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Assert {
    signature: Signature,
}

const ASSERT: &str = "samplemix_assert";

static ASSERT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Returns value unchanged; fails the query with message followed by the row's detail when \
         ok is false or NULL (a NULL message or detail is left out). samplemix_weights uses it to reject invalid inputs (NULLs, unknown \
         clusters, negative tokens) while streaming, without an extra pass.",
        "samplemix_assert(value, ok, message, detail)",
    )
    .with_argument("value", "Any value, returned as is.")
    .with_argument("ok", "Boolean condition that must hold.")
    .with_argument("message", "Error message.")
    .with_argument(
        "detail",
        "Value appended to the message (e.g. the offending key).",
    )
    .build()
});

impl ScalarUDFImpl for Assert {
    fn name(&self) -> &str {
        ASSERT
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(ASSERT, arg_types.len(), 4..=4, "value, ok, message, detail")?;
        if !matches!(arg_types[1], DataType::Boolean | DataType::Null) {
            return plan_err!(
                "{ASSERT}: argument 'ok' must be a Boolean, got {}",
                arg_types[1]
            );
        }
        Ok(arg_types[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, ok, message, detail] = take_function_args(ASSERT, &args.args)?;
        let ok = ok.to_array(args.number_rows)?;
        let ok = cast(&ok, &DataType::Boolean)?;
        let ok = ok.as_boolean();
        let failed = match ok.nulls() {
            None if ok.true_count() == ok.len() => None,
            _ => (0..ok.len()).find(|i| ok.is_null(*i) || !ok.value(*i)),
        };
        if let Some(i) = failed {
            let text = |v: &ColumnarValue| -> Result<Option<String>> {
                let array = cast(&v.to_array(args.number_rows)?, &DataType::Utf8)?;
                let array = array.as_string::<i32>();
                Ok(array.is_valid(i).then(|| array.value(i).to_string()))
            };
            let why = if ok.is_null(i) { "NULL" } else { "false" };
            return match (text(message)?, text(detail)?) {
                (Some(m), Some(d)) => exec_err!("{m}{d}"),
                (Some(m), None) => exec_err!("{m}"),
                (None, Some(d)) => exec_err!("{ASSERT}: 'ok' is {why} (detail: {d})"),
                (None, None) => exec_err!("{ASSERT}: 'ok' is {why}"),
            };
        }
        Ok(value.clone())
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&ASSERT_DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_tables_round_trip_every_bit_pattern() {
        let keys = [0i64, -1, i64::MIN, i64::MAX, 1 << 40];
        let values = [
            0.5f64,
            -0.0,
            f64::MIN_POSITIVE / 4.0,
            f64::INFINITY,
            f64::NAN,
        ];
        let text = |v: ScalarValue| match v {
            ScalarValue::Utf8(Some(t)) => t,
            v => panic!("not a packed string: {v:?}"),
        };
        let k = text(lookup_packed(keys.iter().map(|k| *k as u64)));
        let v = text(lookup_packed(values.iter().map(|v| v.to_bits())));
        let k = packed_items(&k, "keys", &DataType::Int64).unwrap();
        let v = packed_items(&v, "values", &DataType::Float64).unwrap();
        assert_eq!(k.as_primitive::<Int64Type>().values(), &keys);
        let bits: Vec<u64> = v
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(bits, values.map(f64::to_bits));
        // Padding or none, the same items; the table's length is read off the text.
        let padded = "AAAAAAAA8D8AAAAAAAAAQA==";
        let bare = padded.trim_end_matches('=');
        for t in [padded, bare] {
            let v = packed_items(t, "values", &DataType::Float64).unwrap();
            assert_eq!(v.as_primitive::<Float64Type>().values(), &[1.0, 2.0]);
            assert_eq!(table_length(&ScalarValue::from(t)), Some(2));
        }
    }
}
