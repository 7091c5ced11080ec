//! SQL glue for `embed(text [, dim])` (hashed) and `embed(text, model)` (a model directory,
//! read once per query through `crate::source` and re-read when its files change).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{FixedSizeListArray, Float32Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};

use super::hashed::{embed_into, DEFAULT_DIM, MAX_DIM};
use crate::args::{
    check_arity, check_text, is_string, map_text_arg, pass_through, scalar_i64, signature,
};
use crate::source::Source;

const NAME: &str = "embed";

/// `embed(text [, dim])` and `embed(text, model)`, reading model directories through `source`.
pub fn embed_udf(source: Source) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(Embed::new(source)))
}

/// Text embedding: the built-in hashed n-gram embedding, or a model's.
pub struct Embed {
    signature: Signature,
    #[cfg(feature = "models")]
    model: crate::source::Loaded<super::model::EmbeddingModel>,
    #[cfg(not(feature = "models"))]
    source: Source,
}

#[cfg(feature = "models")]
crate::source::source_identity!(Embed, NAME, model);

// Without models the function reads nothing; it keeps the source so the API is one.
#[cfg(not(feature = "models"))]
impl std::fmt::Debug for Embed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embed").finish_non_exhaustive()
    }
}
#[cfg(not(feature = "models"))]
impl PartialEq for Embed {
    fn eq(&self, other: &Self) -> bool {
        self.source.key() == other.source.key()
    }
}
#[cfg(not(feature = "models"))]
impl Eq for Embed {}
#[cfg(not(feature = "models"))]
impl std::hash::Hash for Embed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        NAME.hash(state);
        self.source.key().hash(state);
    }
}

#[cfg(feature = "models")]
fn parse_model(name: &str, files: Vec<(String, Vec<u8>)>) -> Result<super::model::EmbeddingModel> {
    let files = super::model::ModelFiles(files.into_iter().collect());
    super::model::EmbeddingModel::load(&files).map_err(|e| {
        datafusion::common::exec_datafusion_err!(
            "{NAME}: argument 'model': cannot load the model at '{name}': {e}"
        )
    })
}

impl Embed {
    fn new(source: Source) -> Self {
        Self {
            signature: signature(
                vec![
                    TypeSignature::String(1),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
                ],
                Volatility::Stable,
            ),
            #[cfg(feature = "models")]
            model: crate::source::Loaded::new(
                NAME,
                "model",
                source,
                crate::source::Parse::Dir(super::model::MODEL_FILES, parse_model),
            ),
            #[cfg(not(feature = "models"))]
            source,
        }
    }

    /// The model named by a constant `model` argument (loaded, or served from the cache).
    #[cfg(feature = "models")]
    fn model(&self, name: &str, query: &FieldRef) -> Result<Arc<super::model::EmbeddingModel>> {
        self.model.get(name, query)
    }
}

/// The `model` argument's constant value, as planning sees it.
fn model_name(value: Option<&ScalarValue>) -> Result<String> {
    match crate::args::literal_string(value, NAME, "model")? {
        Some(m) if !m.is_empty() => Ok(m),
        Some(_) => {
            plan_err!("{NAME}: argument 'model' must be a model directory path or URL, got ''")
        }
        None => plan_err!("{NAME}: argument 'model' must not be NULL"),
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
        "Text embedding, L2-normalised, FixedSizeList<Float32, d>. embed(text [, dim]): model-free \
         and deterministic: lower-cased word unigrams and bigrams hashed (FNV-1a + SplitMix64, \
         fixed seed) into dim signed coordinates, sublinear weights sign(v)·ln(1+|v|); a text with \
         no word embeds to the constant unit vector 1/√dim. embed(text, model): the model \
         directory at a local path or URL (s3:// too), read once per query and re-read when its \
         files change: a sentence-transformers BERT-family model (config.json, tokenizer.json, \
         model.safetensors, optional 1_Pooling/config.json: mean or CLS pooling; texts truncated \
         to max_seq_length tokens, else the model's position limit) or a Model2Vec static model \
         (an embeddings tensor: the mean of the text's token vectors; texts cut to max_length \
         tokens, 512 by default). d is the model's. NULL gives NULL.",
        "embed(text [, dim | model])",
    )
    .with_sql_example(
        "SELECT id, embed(text) AS emb FROM docs;  -- FixedSizeList<Float32, 256>\n\
         SELECT id, embed(text, 'models/minilm-static') AS emb FROM docs;  -- the model's d",
    )
    .with_argument("text", "Document text (Utf8, LargeUtf8 or Utf8View).")
    .with_argument("dim", "Constant dimension of the hashed embedding, 1..8192 (default 256).")
    .with_argument(
        "model",
        "Constant string: path or URL of a model directory (samplemix distill writes static ones).",
    )
    .with_related_udf("kmeans_fit")
    .with_related_udf("diversity_cluster")
    .build()
});

fn list_field(dim: usize) -> FieldRef {
    Arc::new(Field::new(
        NAME,
        DataType::FixedSizeList(item_field(), dim as i32),
        true,
    ))
}

/// The embeddings as a FixedSizeList array (a NULL row for a NULL text).
fn build(vectors: Vec<Option<Vec<f32>>>, dim: usize) -> Result<datafusion::arrow::array::ArrayRef> {
    let nulls = NullBuffer::from(vectors.iter().map(Option::is_some).collect::<Vec<_>>());
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
}

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
        check_arity(NAME, args.arg_fields.len(), 1..=2, "text [, dim | model]")?;
        check_text(NAME, "text", args.arg_fields[0].data_type())?;
        if args.arg_fields.len() == 1 {
            return Ok(list_field(DEFAULT_DIM));
        }
        if !is_string(args.arg_fields[1].data_type()) {
            return Ok(list_field(dim_of(args.scalar_arguments[1])?));
        }
        let name = model_name(args.scalar_arguments[1])?;
        #[cfg(feature = "models")]
        {
            // Planning needs d, so the model is read now; the query's first batch reuses it.
            let planning = Arc::new(Field::new(NAME, DataType::Null, true));
            let model = self.model(&name, &planning)?;
            Ok(list_field(model.dim()))
        }
        #[cfg(not(feature = "models"))]
        plan_err!(
            "{NAME}: argument 'model' ('{name}'): this build has no model support (it was built without the Cargo feature 'models'); rebuild with default features"
        )
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let dim = match args.return_field.data_type() {
            DataType::FixedSizeList(_, d) => *d as usize,
            other => return exec_err!("{NAME}: unexpected return type {other}"),
        };
        if let Some(ColumnarValue::Scalar(model)) = args.args.get(1) {
            if is_string(&model.data_type()) {
                return self.invoke_model(&args, model, dim);
            }
        }
        map_text_arg(
            &args,
            NAME,
            |text| {
                let mut v = vec![0.0f32; dim];
                embed_into(text, &mut v);
                v
            },
            |vectors| build(vectors, dim),
        )
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

impl Embed {
    #[cfg(feature = "models")]
    fn invoke_model(
        &self,
        args: &ScalarFunctionArgs,
        model: &ScalarValue,
        dim: usize,
    ) -> Result<ColumnarValue> {
        let name = model_name(Some(model))?;
        let model = self.model(&name, &args.return_field)?;
        if model.dim() != dim {
            return exec_err!(
                "{NAME}: argument 'model': the model at '{name}' changed while the query ran (its vectors now have {} dimensions, the query was planned for {dim})",
                model.dim()
            );
        }
        let mut texts: Vec<Option<String>> = Vec::new();
        let mut owned = |t: &str| t.to_string();
        let is_scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let text = args.args[0].to_array(if is_scalar { 1 } else { args.number_rows })?;
        texts.extend(crate::args::map_strings(&text, NAME, &mut owned)?);
        let refs: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        let vectors = model
            .embed(&refs)
            .map_err(|e| datafusion::common::exec_datafusion_err!("{NAME}: model '{name}': {e}"))?;
        let array = build(vectors, dim)?;
        Ok(if is_scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }

    #[cfg(not(feature = "models"))]
    fn invoke_model(
        &self,
        _args: &ScalarFunctionArgs,
        _model: &ScalarValue,
        _dim: usize,
    ) -> Result<ColumnarValue> {
        exec_err!(
            "{NAME}: argument 'model': this build has no model support (Cargo feature 'models')"
        )
    }
}
