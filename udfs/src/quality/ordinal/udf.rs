//! SQL glue for `quality_predict(text, model)`: the model (a registered table, or Parquet at a
//! path or URL, as `quality_model_fit` returns it) is read once per query (`crate::source`).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Float64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};

use super::features::Scratch;
use super::model::{from_batches, OrdinalModel};
use crate::args::{
    check_arity, check_text, literal_string, map_text_arg, pass_through, scalar_string, signature,
};
use crate::source::{Loaded, Parse, Source};

const NAME: &str = "quality_predict";

/// `quality_predict(text, model)` reading models through `source`.
pub fn quality_predict_udf(source: Source) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(QualityPredict::new(source)))
}

/// The expected ordinal quality of a text under a fitted model.
pub struct QualityPredict {
    signature: Signature,
    model: Loaded<OrdinalModel>,
}

crate::source::source_identity!(QualityPredict, NAME, model);

fn parse_model(name: &str, batches: &[RecordBatch]) -> Result<OrdinalModel> {
    from_batches(NAME, name, batches)
}

impl QualityPredict {
    fn new(source: Source) -> Self {
        Self {
            signature: signature(
                vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8])],
                Volatility::Stable,
            ),
            model: Loaded::new(NAME, "model", source, Parse::Table(parse_model)),
        }
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Learned quality of a text: the expected label Σₖ P(y > k) of the ordinal model that \
         quality_model_fit fitted, on the label scale 0..K−1 (Float64). model names a registered \
         table or a Parquet file path or URL (local or s3://) holding the model's one row; it is \
         read once per query and re-read when it changes. On a Ballista cluster only paths and \
         URLs work. NULL text gives NULL.",
        "quality_predict(text, model)",
    )
    .with_sql_example(
        "CREATE TABLE m AS SELECT * FROM quality_model_fit(labelled, 'text', 'label');\nSELECT id, quality_predict(text, 'm') AS q FROM docs;",
    )
    .with_argument("text", "String column.")
    .with_argument("model", "Constant string: table name, or Parquet file path or URL.")
    .with_related_udf("quality_model_fit")
    .with_related_udf("quality_score")
    .build()
});

impl ScalarUDFImpl for QualityPredict {
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
        check_arity(NAME, args.arg_fields.len(), 2..=2, "text, model")?;
        check_text(NAME, "text", args.arg_fields[0].data_type())?;
        match args.scalar_arguments.get(1) {
            Some(Some(v)) => {
                if literal_string(Some(v), NAME, "model")?.is_none() {
                    return plan_err!("{NAME}: argument 'model' must not be NULL");
                }
            }
            _ => check_text(NAME, "model", args.arg_fields[1].data_type())?,
        }
        Ok(Arc::new(Field::new(NAME, DataType::Float64, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [_, model] = take_function_args(NAME, &args.args)?;
        let Some(name) = scalar_string(model, NAME, "model")? else {
            return exec_err!("{NAME}: argument 'model' must not be NULL");
        };
        let model = self.model.get(&name, &args.return_field)?;
        let (mut scratch, mut buf) = (Scratch::default(), Vec::new());
        map_text_arg(
            &args,
            NAME,
            |t| model.predict_with(t, &mut scratch, &mut buf),
            |v| Ok(Arc::new(Float64Array::from(v))),
        )
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
