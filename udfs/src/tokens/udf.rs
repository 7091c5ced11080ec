//! SQL glue for `token_count(text [, encoding])`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

use super::{count_tokens, Encoding};
use crate::args::{
    check_arity, check_text, choice_of, literal_string, map_text_arg, pass_through, scalar_string,
    signature, udf_singleton,
};

const NAME: &str = "token_count";

udf_singleton!(
    /// `token_count(text [, encoding])`.
    token_count_udf,
    TokenCount::default()
);

/// Number of BPE tokens of a text (tiktoken vocabularies, embedded: no download).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TokenCount {
    signature: Signature,
}

impl Default for TokenCount {
    fn default() -> Self {
        Self {
            signature: signature(
                vec![TypeSignature::String(1), TypeSignature::String(2)],
                Volatility::Immutable,
            ),
        }
    }
}

fn parse_encoding(name: Option<String>) -> Result<Encoding> {
    match name {
        None => plan_err!(
            "{NAME}: argument 'encoding' must not be NULL; accepted: {}",
            <Encoding as crate::args::Choice>::accepted()
        ),
        Some(name) => choice_of(&name, NAME, "encoding"),
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Number of BPE tokens in a text, counted with OpenAI's tiktoken vocabularies \
         (embedded, no download). Special-token strings count as ordinary text. NULL text gives NULL.",
        "token_count(text [, encoding])",
    )
    .with_sql_example("SELECT token_count('hello world');  -- 2\nSELECT token_count(text, 'cl100k_base') FROM docs;")
    .with_argument("text", "Text column or literal (Utf8, LargeUtf8 or Utf8View).")
    .with_argument(
        "encoding",
        "Constant vocabulary name: 'o200k_base' (default, GPT-4o) or 'cl100k_base' (GPT-4).",
    )
    .build()
});

impl ScalarUDFImpl for TokenCount {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_arity(NAME, args.arg_fields.len(), 1..=2, "text [, encoding]")?;
        check_text(NAME, "text", args.arg_fields[0].data_type())?;
        if let Some(encoding) = args.arg_fields.get(1) {
            check_text(NAME, "encoding", encoding.data_type())?;
        }
        // A literal is checked here so a typo fails at planning, before any data is read.
        // (Before constant folding an argument may still be a cast of a literal: then the
        // same check runs on the first batch.)
        if let Some(Some(value)) = args.scalar_arguments.get(1) {
            parse_encoding(literal_string(Some(value), NAME, "encoding")?)?;
        }
        Ok(Arc::new(Field::new(NAME, DataType::Int64, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let encoding = match args.args.get(1) {
            Some(arg) => parse_encoding(scalar_string(arg, NAME, "encoding")?)?,
            None => Encoding::default(),
        };
        map_text_arg(
            &args,
            NAME,
            |s| count_tokens(s, encoding) as i64,
            |counts| Ok(Arc::new(Int64Array::from(counts))),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
