//! SQL glue for `embed(text [, dim])`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{FixedSizeListArray, Float32Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::hashed::{embed_into, DEFAULT_DIM, MAX_DIM};
use crate::args::{
    check_arity, check_text, map_text_arg, pass_through, scalar_i64, signature, udf_singleton,
};

const NAME: &str = "embed";

udf_singleton!(
    /// `embed(text [, dim])`.
    embed_udf,
    Embed::default()
);

/// Built-in hashed n-gram embedding.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Embed {
    signature: Signature,
}

impl Default for Embed {
    fn default() -> Self {
        Self {
            signature: signature(
                vec![
                    TypeSignature::String(1),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

/// The item field of embedding lists (nullable, as Arrow's default list field).
pub fn item_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float32, true))
}

fn dim_of(value: Option<&ScalarValue>) -> Result<usize> {
    let dim = scalar_i64(value, NAME, "dim")?;
    if dim < 1 || dim > MAX_DIM as i64 {
        return plan_err!("{NAME}: argument 'dim' must be between 1 and {MAX_DIM}, got {dim}");
    }
    Ok(dim as usize)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Model-free, deterministic text embedding: lower-cased word unigrams and bigrams hashed \
         (FNV-1a + SplitMix64, fixed seed) into dim signed coordinates (a sparse signed random \
         projection), sublinear weights sign(v)·ln(1+|v|), L2-normalised. Same text, same vector \
         on every machine. Text with no word embeds to the constant unit vector 1/√dim; NULL gives NULL.",
        "embed(text [, dim])",
    )
    .with_sql_example("SELECT id, embed(text) AS emb FROM docs;  -- FixedSizeList<Float32, 256>")
    .with_argument("text", "Document text (Utf8, LargeUtf8 or Utf8View).")
    .with_argument("dim", "Constant dimension, 1..8192 (default 256).")
    .with_related_udf("kmeans_fit")
    .with_related_udf("diversity_cluster")
    .build()
});

impl ScalarUDFImpl for Embed {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::FixedSizeList(item_field(), DEFAULT_DIM as i32))
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_arity(NAME, args.arg_fields.len(), 1..=2, "text [, dim]")?;
        check_text(NAME, "text", args.arg_fields[0].data_type())?;
        let dim = match args.arg_fields.len() {
            1 => DEFAULT_DIM,
            _ => dim_of(args.scalar_arguments[1])?,
        };
        Ok(Arc::new(Field::new(
            NAME,
            DataType::FixedSizeList(item_field(), dim as i32),
            true,
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let dim = match args.return_field.data_type() {
            DataType::FixedSizeList(_, d) => *d as usize,
            other => return exec_err!("{NAME}: unexpected return type {other}"),
        };
        map_text_arg(
            &args,
            NAME,
            |text| {
                let mut v = vec![0.0f32; dim];
                embed_into(text, &mut v);
                v
            },
            |vectors| {
                let nulls =
                    NullBuffer::from(vectors.iter().map(Option::is_some).collect::<Vec<_>>());
                let mut values = Vec::with_capacity(vectors.len() * dim);
                for v in &vectors {
                    match v {
                        Some(v) => values.extend_from_slice(v),
                        None => values.resize(values.len() + dim, 0.0),
                    }
                }
                Ok(Arc::new(FixedSizeListArray::try_new(
                    item_field(),
                    dim as i32,
                    Arc::new(Float32Array::from(values)),
                    Some(nulls),
                )?))
            },
        )
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
