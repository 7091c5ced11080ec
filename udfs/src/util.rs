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

/// Run `fut` to completion on a helper thread with its own Tokio runtime.
///
/// Table functions are planned synchronously, but `kmeans_fit` must read its input table
/// (possibly from S3) before it knows its output. Blocking the caller's runtime would panic
/// on a current-thread runtime, so the work runs on a fresh runtime on a fresh thread.
pub(crate) fn block_on_helper<T: Send + 'static>(
    function: &str,
    fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let handle = std::thread::Builder::new()
        .name(format!("samplemix-{function}"))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?;
            rt.block_on(fut)
        })?;
    match handle.join() {
        Ok(result) => result,
        Err(_) => exec_err!("{function}: internal error: the worker thread panicked"),
    }
}

/// A constant integer argument of a table function (`-3` arrives as a negation).
pub(crate) fn literal_i64(
    expr: &datafusion::logical_expr::Expr,
    function: &str,
    argument: &str,
) -> Result<i64> {
    use datafusion::logical_expr::Expr;
    match expr {
        Expr::Literal(v, _) if v.data_type().is_integer() && !v.is_null() => {
            match v.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(i)) => Ok(i),
                _ => plan_err!("{function}: argument '{argument}' must be an integer"),
            }
        }
        Expr::Negative(inner) => Ok(-literal_i64(inner, function, argument)?),
        Expr::Literal(v, _) => plan_err!(
            "{function}: argument '{argument}' must be an integer, got {} {v}",
            v.data_type()
        ),
        other => {
            plan_err!("{function}: argument '{argument}' must be a constant integer, got {other}")
        }
    }
}

/// A constant float argument of a table function (integers accepted).
pub(crate) fn literal_f64(
    expr: &datafusion::logical_expr::Expr,
    function: &str,
    argument: &str,
) -> Result<f64> {
    use datafusion::logical_expr::Expr;
    match expr {
        Expr::Literal(v, _) if (v.data_type().is_numeric()) && !v.is_null() => {
            match v.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(f)) => Ok(f),
                _ => plan_err!("{function}: argument '{argument}' must be a number"),
            }
        }
        Expr::Negative(inner) => Ok(-literal_f64(inner, function, argument)?),
        other => {
            plan_err!("{function}: argument '{argument}' must be a constant number, got {other}")
        }
    }
}

/// A constant string argument of a table function.
pub(crate) fn literal_str(
    expr: &datafusion::logical_expr::Expr,
    function: &str,
    argument: &str,
) -> Result<String> {
    use datafusion::logical_expr::Expr;
    match expr {
        Expr::Literal(v, _) => match literal_string(Some(v), function, argument)? {
            Some(s) => Ok(s),
            None => plan_err!("{function}: argument '{argument}' must not be NULL"),
        },
        other => {
            plan_err!("{function}: argument '{argument}' must be a constant string, got {other}")
        }
    }
}

/// A table argument: a bare identifier (`docs`, `s.docs`) or a string (`'docs'`, a path).
pub(crate) fn table_name(
    expr: &datafusion::logical_expr::Expr,
    function: &str,
    argument: &str,
) -> Result<String> {
    use datafusion::logical_expr::Expr;
    match expr {
        Expr::Column(c) => Ok(c.flat_name()),
        Expr::Literal(..) => literal_str(expr, function, argument),
        other => plan_err!(
            "{function}: argument '{argument}' must be a table name (identifier or string), got {other}"
        ),
    }
}
