//! SQL glue for `fasttext_predict(text, model_path, label)`: the model file (local path or URL)
//! is read once per query and re-read when it changes (`crate::source`).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Float64Array;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_datafusion_err, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};

use super::model::{FastText, Scratch};
use crate::args::{
    check_arity, check_text, literal_string, map_text_arg, pass_through, scalar_string, signature,
};
use crate::source::{Loaded, Parse, Source};

const NAME: &str = "fasttext_predict";

/// `fasttext_predict(text, model_path, label)` reading model files through `source`.
pub fn fasttext_predict_udf(source: Source) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(FasttextPredict::new(source)))
}

/// Probability of a label under a fastText supervised model.
pub struct FasttextPredict {
    signature: Signature,
    model: Loaded<FastText>,
}

crate::source::source_identity!(FasttextPredict, NAME, model);

fn parse_model(name: &str, bytes: Vec<u8>) -> Result<FastText> {
    FastText::load(bytes).map_err(|e| {
        exec_datafusion_err!("{NAME}: argument 'model_path': cannot load '{name}': {e}")
    })
}

impl FasttextPredict {
    fn new(source: Source) -> Self {
        Self {
            signature: signature(
                vec![TypeSignature::Exact(vec![
                    DataType::Utf8,
                    DataType::Utf8,
                    DataType::Utf8,
                ])],
                Volatility::Stable,
            ),
            model: Loaded::new(NAME, "model_path", source, Parse::File(parse_model)),
        }
    }
}

static DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        crate::doc_section(),
        "Probability of label under a fastText supervised model (.bin, or .ftz quantised; \
         softmax, hierarchical softmax, one-vs-all and negative-sampling losses), the number \
         fastText 0.9's predict reports for it (its probabilities carry fastText's +1e-5 inside \
         each log). The text is one line: line breaks separate words like spaces. model_path is \
         a local path or URL (s3:// too), read once per query and re-read when it changes. NULL \
         text gives NULL, and so does a text with no word or n-gram the model knows (fastText \
         predicts nothing then).",
        "fasttext_predict(text, model_path, label)",
    )
    .with_sql_example(
        "SELECT id, fasttext_predict(text, 'models/dclm.bin', '__label__hq') AS p_hq FROM docs;",
    )
    .with_argument("text", "String column.")
    .with_argument("model_path", "Constant string: local path or URL of the model file.")
    .with_argument("label", "Constant string: a label of the model, e.g. '__label__hq'.")
    .with_related_udf("quality_predict")
    .build()
    });

impl ScalarUDFImpl for FasttextPredict {
    fn name(&self) -> &str {
        NAME
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
        check_arity(
            NAME,
            args.arg_fields.len(),
            3..=3,
            "text, model_path, label",
        )?;
        check_text(NAME, "text", args.arg_fields[0].data_type())?;
        for (i, arg) in [(1, "model_path"), (2, "label")] {
            match args.scalar_arguments.get(i) {
                Some(Some(v)) => {
                    if literal_string(Some(v), NAME, arg)?.is_none() {
                        return plan_err!("{NAME}: argument '{arg}' must not be NULL");
                    }
                }
                _ => check_text(NAME, arg, args.arg_fields[i].data_type())?,
            }
        }
        Ok(Arc::new(Field::new(NAME, DataType::Float64, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [_, path, label] = take_function_args(NAME, &args.args)?;
        let Some(path) = scalar_string(path, NAME, "model_path")? else {
            return exec_err!("{NAME}: argument 'model_path' must not be NULL");
        };
        let Some(label) = scalar_string(label, NAME, "label")? else {
            return exec_err!("{NAME}: argument 'label' must not be NULL");
        };
        let model = self.model.get(&path, &args.return_field)?;
        let Some(index) = model.label_index(&label) else {
            let known = model.labels();
            let shown: Vec<&str> = known.iter().take(10).map(String::as_str).collect();
            return exec_err!(
                "{NAME}: argument 'label': the model '{path}' has no label '{label}' (its {} labels: {}{})",
                known.len(),
                shown.join(", "),
                if known.len() > 10 { ", ..." } else { "" }
            );
        };
        let mut scratch = Scratch::default();
        map_text_arg(
            &args,
            NAME,
            |t| model.probability(t, index, &mut scratch),
            |v| {
                Ok(Arc::new(Float64Array::from(
                    v.into_iter().map(Option::flatten).collect::<Vec<_>>(),
                )))
            },
        )
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
