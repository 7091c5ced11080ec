//! `samplemix_assert(value, ok, message, detail)`.

use std::sync::LazyLock;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use crate::args::{check_arity, pass_through};

/// Pass `value` through, failing the query with `message` when `ok` is not true.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Assert {
    pub(super) signature: Signature,
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
