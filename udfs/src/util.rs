//! Small shared helpers for the SQL glue: string arrays of every flavour, literal arguments.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

/// Apply `f` to every non-null string of a Utf8, LargeUtf8 or Utf8View array.
pub(crate) fn map_strings<T>(
    array: &ArrayRef,
    function: &str,
    mut f: impl FnMut(&str) -> T,
) -> Result<Vec<Option<T>>> {
    Ok(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().map(|s| s.map(&mut f)).collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().map(|s| s.map(&mut f)).collect(),
        DataType::Utf8View => array.as_string_view().iter().map(|s| s.map(&mut f)).collect(),
        DataType::Null => (0..array.len()).map(|_| None).collect(),
        other => {
            return exec_err!("{function}: expected a string (Utf8, LargeUtf8 or Utf8View) text argument, got {other}")
        }
    })
}

/// The string value of a literal planning-time argument: `Ok(None)` for a NULL literal,
/// an error naming the function and argument when it is not a constant string.
pub(crate) fn literal_string(
    value: Option<&ScalarValue>,
    function: &str,
    argument: &str,
) -> Result<Option<String>> {
    match value {
        Some(ScalarValue::Utf8(s))
        | Some(ScalarValue::LargeUtf8(s))
        | Some(ScalarValue::Utf8View(s)) => Ok(s.clone()),
        Some(ScalarValue::Null) => Ok(None),
        Some(other) => plan_err!(
            "{function}: argument '{argument}' must be a constant string, got {}",
            other.data_type()
        ),
        None => plan_err!("{function}: argument '{argument}' must be a constant string literal, not a column or expression"),
    }
}

/// The scalar string behind a runtime argument that planning already checked is a literal.
pub(crate) fn scalar_string(
    value: &ColumnarValue,
    function: &str,
    argument: &str,
) -> Result<Option<String>> {
    match value {
        ColumnarValue::Scalar(s) => literal_string(Some(s), function, argument),
        ColumnarValue::Array(_) => exec_err!(
            "{function}: argument '{argument}' must be a constant string literal, not a column"
        ),
    }
}

/// Map the first (text) argument of a scalar function through `f`, which builds the output
/// array for the texts; a scalar argument gives a scalar result.
pub(crate) fn map_text_arg<T>(
    args: &ScalarFunctionArgs,
    function: &str,
    per_text: impl FnMut(&str) -> T,
    build: impl FnOnce(Vec<Option<T>>) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let is_scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
    let text = args.args[0].to_array(if is_scalar { 1 } else { args.number_rows })?;
    let array = build(map_strings(&text, function, per_text)?)?;
    Ok(if is_scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
    } else {
        ColumnarValue::Array(array)
    })
}
