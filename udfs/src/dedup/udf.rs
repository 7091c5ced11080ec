//! SQL glue for `minhash(text [, num_hashes [, shingle_words [, seed]]])`,
//! `minhash_similarity(a, b)` and `minhash_bands(signature, bands)`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float64Array, ListArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::minhash::{
    band_keys, similarity, MinHasher, DEFAULT_NUM_HASHES, DEFAULT_SHINGLE_WORDS, MAX_NUM_HASHES,
    MAX_SHINGLE_WORDS,
};
use crate::args::{
    check_arity, check_text, map_text_arg, pass_through, scalar_i64, signature, udf_singleton,
};

udf_singleton!(
    /// `minhash(text [, num_hashes [, shingle_words [, seed]]])`.
    minhash_udf,
    MinHash::default()
);
udf_singleton!(
    /// `minhash_similarity(a, b)`.
    minhash_similarity_udf,
    MinHashSimilarity::default()
);
udf_singleton!(
    /// `minhash_bands(signature, bands)`.
    minhash_bands_udf,
    MinHashBands::default()
);

/// The item field of signature lists.
fn item_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::UInt32, true))
}

/// The signature type for `n` hashes.
pub fn signature_type(n: usize) -> DataType {
    DataType::FixedSizeList(item_field(), n as i32)
}

/// MinHash signature of a text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinHash {
    signature: Signature,
}

impl Default for MinHash {
    fn default() -> Self {
        Self {
            signature: signature(
                vec![
                    TypeSignature::String(1),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64, DataType::Int64]),
                    TypeSignature::Exact(vec![
                        DataType::Utf8,
                        DataType::Int64,
                        DataType::Int64,
                        DataType::Int64,
                    ]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

const MINHASH: &str = "minhash";

fn in_range(value: i64, argument: &str, max: usize) -> Result<usize> {
    if value < 1 || value > max as i64 {
        return plan_err!(
            "{MINHASH}: argument '{argument}' must be between 1 and {max}, got {value}"
        );
    }
    Ok(value as usize)
}

/// `(num_hashes, shingle_words, seed)` from the constant arguments.
fn settings(args: &[Option<&ScalarValue>]) -> Result<(usize, usize, i64)> {
    let num_hashes = match args.get(1) {
        Some(v) => in_range(
            scalar_i64(*v, MINHASH, "num_hashes")?,
            "num_hashes",
            MAX_NUM_HASHES,
        )?,
        None => DEFAULT_NUM_HASHES,
    };
    let shingle_words = match args.get(2) {
        Some(v) => in_range(
            scalar_i64(*v, MINHASH, "shingle_words")?,
            "shingle_words",
            MAX_SHINGLE_WORDS,
        )?,
        None => DEFAULT_SHINGLE_WORDS,
    };
    let seed = match args.get(3) {
        Some(v) => scalar_i64(*v, MINHASH, "seed")?,
        None => 0,
    };
    Ok((num_hashes, shingle_words, seed))
}

static MINHASH_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "MinHash signature of a text's word shingles: words are lower-cased alphanumeric runs \
         (punctuation, case and whitespace ignored), a shingle is shingle_words consecutive words, \
         hash i is (a_i·x + b_i mod 2^64) >> 32 on the shingle's 64-bit hash with a_i, b_i from \
         SplitMix64 of the seed; portable, same on every machine. A text with fewer words than a \
         shingle has one shingle of all its words; a text with no word gets all 4294967295. \
         NULL gives NULL. The share of equal positions of two signatures estimates the Jaccard \
         similarity of their shingle sets (minhash_similarity).",
        "minhash(text [, num_hashes [, shingle_words [, seed]]])",
    )
    .with_sql_example("SELECT id, minhash(text) AS sig FROM docs;  -- FixedSizeList<UInt32, 112>")
    .with_argument("text", "Document text (Utf8, LargeUtf8 or Utf8View).")
    .with_argument(
        "num_hashes",
        "Constant signature length, 1..4096 (default 112).",
    )
    .with_argument(
        "shingle_words",
        "Constant words per shingle, 1..64 (default 5).",
    )
    .with_argument(
        "seed",
        "Constant integer seed of the hash functions (default 0).",
    )
    .with_related_udf("minhash_similarity")
    .with_related_udf("near_duplicates")
    .build()
});

impl ScalarUDFImpl for MinHash {
    fn name(&self) -> &str {
        MINHASH
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(signature_type(DEFAULT_NUM_HASHES))
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_arity(
            MINHASH,
            args.arg_fields.len(),
            1..=4,
            "text [, num_hashes [, shingle_words [, seed]]]",
        )?;
        check_text(MINHASH, "text", args.arg_fields[0].data_type())?;
        let (n, _, _) = settings(args.scalar_arguments)?;
        Ok(Arc::new(Field::new(MINHASH, signature_type(n), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalars: Vec<Option<&ScalarValue>> = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let (n, shingle_words, seed) = settings(&scalars)?;
        let mut hasher = MinHasher::new(n, shingle_words, seed);
        map_text_arg(
            &args,
            MINHASH,
            |text| hasher.signature(text),
            |rows| {
                let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<_>>());
                let mut values = Vec::with_capacity(rows.len() * n);
                for row in &rows {
                    match row {
                        Some(sig) => values.extend_from_slice(sig),
                        None => values.resize(values.len() + n, 0),
                    }
                }
                Ok(Arc::new(FixedSizeListArray::try_new(
                    item_field(),
                    n as i32,
                    Arc::new(UInt32Array::from(values)),
                    Some(nulls),
                )?) as ArrayRef)
            },
        )
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&MINHASH_DOC)
    }
}

/// The signature length of a `FixedSizeList<UInt32, n>` argument, or a planning error.
fn signature_len(function: &str, argument: &str, t: &DataType) -> Result<usize> {
    match t {
        DataType::FixedSizeList(item, n) if item.data_type() == &DataType::UInt32 && *n > 0 => {
            Ok(*n as usize)
        }
        other => plan_err!(
            "{function}: argument '{argument}' must be a minhash signature (FixedSizeList<UInt32, n>), got {other}"
        ),
    }
}

/// Rows of a signature argument: the flat values and validity.
fn signature_rows(value: &ColumnarValue, rows: usize) -> Result<(Arc<FixedSizeListArray>, usize)> {
    let array = value.to_array(rows)?;
    let list = array.as_fixed_size_list_opt().cloned();
    match list {
        Some(l) => {
            let n = l.value_length() as usize;
            Ok((Arc::new(l), n))
        }
        None => exec_err!("expected a minhash signature, got {}", array.data_type()),
    }
}

fn flat_values(list: &FixedSizeListArray) -> Result<&[u32]> {
    let Some(values) = list.values().as_primitive_opt::<UInt32Type>() else {
        return exec_err!("a minhash signature must hold UInt32 values");
    };
    // NULL items may only sit under NULL rows (a NULL signature scalar expands that way).
    if values.null_count() > 0 {
        let n = list.value_length() as usize;
        for i in (0..list.len()).filter(|i| list.is_valid(*i)) {
            if (i * n..(i + 1) * n).any(|j| values.is_null(j)) {
                return exec_err!("a minhash signature must not hold NULL values");
            }
        }
    }
    Ok(values.values())
}

/// Estimated Jaccard similarity of two signatures.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinHashSimilarity {
    signature: Signature,
}

impl Default for MinHashSimilarity {
    fn default() -> Self {
        let sig = signature_type(DEFAULT_NUM_HASHES);
        Self {
            signature: signature(
                vec![TypeSignature::Exact(vec![sig.clone(), sig])],
                Volatility::Immutable,
            ),
        }
    }
}

const SIMILARITY: &str = "minhash_similarity";

static SIMILARITY_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Estimated Jaccard similarity of two minhash signatures of the same length: the share of \
         positions where they agree, in [0, 1]. NULL if either is NULL.",
        "minhash_similarity(a, b)",
    )
    .with_sql_example("SELECT minhash_similarity(minhash('a b c d e f'), minhash('a b c d e g'));")
    .with_argument("a", "A minhash signature (FixedSizeList<UInt32, n>).")
    .with_argument("b", "A minhash signature of the same length.")
    .with_related_udf("minhash")
    .build()
});

impl ScalarUDFImpl for MinHashSimilarity {
    fn name(&self) -> &str {
        SIMILARITY
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(SIMILARITY, arg_types.len(), 2..=2, "a, b")?;
        let a = signature_len(SIMILARITY, "a", &arg_types[0])?;
        let b = signature_len(SIMILARITY, "b", &arg_types[1])?;
        if a != b {
            return plan_err!(
                "{SIMILARITY}: arguments 'a' and 'b' must be signatures of the same length, got {a} and {b}"
            );
        }
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let (a, n) = signature_rows(&args.args[0], rows)?;
        let (b, _) = signature_rows(&args.args[1], rows)?;
        let (av, bv) = (flat_values(&a)?, flat_values(&b)?);
        let out: Float64Array = (0..rows)
            .map(|i| {
                (a.is_valid(i) && b.is_valid(i)).then(|| {
                    let (oa, ob) = (a.value_offset(i) as usize, b.value_offset(i) as usize);
                    similarity(&av[oa..oa + n], &bv[ob..ob + n])
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&SIMILARITY_DOC)
    }
}

/// LSH band keys of a signature.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinHashBands {
    signature: Signature,
}

impl Default for MinHashBands {
    fn default() -> Self {
        Self {
            signature: signature(
                vec![TypeSignature::Exact(vec![
                    signature_type(DEFAULT_NUM_HASHES),
                    DataType::Int64,
                ])],
                Volatility::Immutable,
            ),
        }
    }
}

const BANDS: &str = "minhash_bands";

static BANDS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "LSH band keys of a minhash signature: the signature cut into `bands` bands of n/bands \
         values, each hashed with its band index (SplitMix64) to one UInt64 key. Two signatures \
         are LSH candidates when any key agrees (probability 1 − (1 − s^rows)^bands at Jaccard s). \
         NULL gives NULL.",
        "minhash_bands(signature, bands)",
    )
    .with_sql_example("SELECT id, unnest(minhash_bands(minhash(text), 14)) AS key FROM docs;")
    .with_argument(
        "signature",
        "A minhash signature (FixedSizeList<UInt32, n>).",
    )
    .with_argument("bands", "Constant number of bands; must divide n.")
    .with_related_udf("near_duplicates")
    .build()
});

fn bands_of(args: &ReturnFieldArgs) -> Result<(usize, usize)> {
    check_arity(BANDS, args.arg_fields.len(), 2..=2, "signature, bands")?;
    let n = signature_len(BANDS, "signature", args.arg_fields[0].data_type())?;
    let bands = scalar_i64(args.scalar_arguments[1], BANDS, "bands")?;
    check_bands(BANDS, n, bands)?;
    Ok((n, bands as usize))
}

/// A planning error unless `bands` is a positive divisor of `num_hashes`.
pub fn check_bands(function: &str, num_hashes: usize, bands: i64) -> Result<()> {
    if bands < 1 || bands as u64 > num_hashes as u64 {
        return plan_err!(
            "{function}: argument 'bands' must be between 1 and num_hashes ({num_hashes}), got {bands}"
        );
    }
    if !num_hashes.is_multiple_of(bands as usize) {
        return plan_err!(
            "{function}: argument 'bands' ({bands}) must divide num_hashes ({num_hashes})"
        );
    }
    Ok(())
}

fn keys_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::UInt64, true)))
}

impl ScalarUDFImpl for MinHashBands {
    fn name(&self) -> &str {
        BANDS
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(keys_type())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        bands_of(&args)?;
        Ok(Arc::new(Field::new(BANDS, keys_type(), true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let bands = match &args.args[1] {
            ColumnarValue::Scalar(s) => scalar_i64(Some(s), BANDS, "bands")?,
            ColumnarValue::Array(_) => {
                return exec_err!("{BANDS}: argument 'bands' must be a constant")
            }
        };
        let (sigs, n) = signature_rows(&args.args[0], rows)?;
        check_bands(BANDS, n, bands)?;
        let bands = bands as usize;
        let values = flat_values(&sigs)?;
        let mut keys = Vec::with_capacity(rows * bands);
        let mut lengths = Vec::with_capacity(rows);
        let mut row_keys = Vec::with_capacity(bands);
        for i in 0..rows {
            if sigs.is_valid(i) {
                let o = sigs.value_offset(i) as usize;
                band_keys(&values[o..o + n], bands, &mut row_keys);
                keys.extend_from_slice(&row_keys);
                lengths.push(bands);
            } else {
                lengths.push(0);
            }
        }
        let list = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::UInt64, true)),
            OffsetBuffer::from_lengths(lengths),
            Arc::new(UInt64Array::from(keys)),
            sigs.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&BANDS_DOC)
    }
}
