//! Shared helpers of the SQL glue: string arrays of every flavour, literal arguments of scalar
//! and table functions, named choices (`'cosine'`, `'tokens'`, ...), and the singleton macro
//! every scalar function is built with.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, Signature, TypeSignature, Volatility,
};

/// `pub fn $name() -> Arc<ScalarUDF>`: one shared instance of a scalar function, built on first
/// use (the pattern of DataFusion's `make_udf_function!`).
macro_rules! udf_singleton {
    ($(#[$doc:meta])* $name:ident, $make:expr) => {
        $(#[$doc])*
        pub fn $name() -> std::sync::Arc<datafusion::logical_expr::ScalarUDF> {
            static INSTANCE: std::sync::LazyLock<std::sync::Arc<datafusion::logical_expr::ScalarUDF>> =
                std::sync::LazyLock::new(|| {
                    std::sync::Arc::new(datafusion::logical_expr::ScalarUDF::new_from_impl($make))
                });
            std::sync::Arc::clone(&INSTANCE)
        }
    };
}
pub(crate) use udf_singleton;

/// Whether `t` is one of Arrow's string types.
pub(crate) fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The signature of every samplemix scalar and aggregate function: `examples` (typed forms that
/// `SHOW FUNCTIONS` and `information_schema` list), then a catch-all that accepts any argument
/// list (see [`pass_through`]) so that the function's own `return_field_from_args` /
/// `return_type` reports a wrong type or count as a planning error naming the argument, instead
/// of DataFusion's generic "No function matches" (which reads like an internal bug).
pub(crate) fn signature(examples: Vec<TypeSignature>, volatility: Volatility) -> Signature {
    let mut all = examples;
    all.push(TypeSignature::Nullary);
    all.push(TypeSignature::UserDefined);
    Signature::one_of(all, volatility)
}

/// The coercion of the catch-all signature member: dictionary-encoded arguments are decoded,
/// everything else is kept as it is for the function to check.
pub(crate) fn pass_through(arg_types: &[DataType]) -> Vec<DataType> {
    arg_types
        .iter()
        .map(|t| match t {
            DataType::Dictionary(_, value) => value.as_ref().clone(),
            other => other.clone(),
        })
        .collect()
}

/// A planning error unless `got` arguments are within `range`; `usage` shows the call form.
pub(crate) fn check_arity(
    function: &str,
    got: usize,
    range: std::ops::RangeInclusive<usize>,
    usage: &str,
) -> Result<()> {
    if range.contains(&got) {
        return Ok(());
    }
    let expected = if range.start() == range.end() {
        format!("{}", range.start())
    } else {
        format!("{} to {}", range.start(), range.end())
    };
    let plural = if *range.end() == 1 { "" } else { "s" };
    plan_err!("{function}: expected {expected} argument{plural} ({usage}), got {got}")
}

/// A planning error unless `t` is a string (or NULL).
pub(crate) fn check_text(function: &str, argument: &str, t: &DataType) -> Result<()> {
    if is_string(t) || t.is_null() {
        return Ok(());
    }
    plan_err!(
        "{function}: argument '{argument}' must be a string (Utf8, LargeUtf8 or Utf8View), got {t}"
    )
}

/// A fixed set of named values a function argument accepts (`'cosine'`, `'tokens'`, ...).
/// Names match case-insensitively, surrounding blanks ignored; the first name of a value is its
/// canonical spelling.
pub trait Choice: Copy + PartialEq + 'static {
    /// What the value is, for messages ("metric", "mode").
    const WHAT: &'static str;
    /// Accepted names and their values (a value may have several names).
    const NAMES: &'static [(&'static str, Self)];

    /// The value named `name`, or an error listing the accepted names.
    fn parse_choice(name: &str) -> Result<Self, crate::Error> {
        let wanted = name.trim();
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| *v)
            .ok_or_else(|| crate::Error::UnknownChoice {
                what: Self::WHAT,
                value: name.to_string(),
                accepted: Self::accepted(),
            })
    }

    /// The canonical name of this value.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(n, _)| n)
    }

    /// The canonical names, comma-separated.
    fn accepted() -> String {
        let mut names: Vec<&str> = Vec::new();
        for (n, v) in Self::NAMES {
            if !Self::NAMES.iter().any(|(m, w)| w == v && names.contains(m)) {
                names.push(n);
            }
        }
        names.join(", ")
    }
}

/// `Display` and `FromStr` for a [`Choice`] from its names.
macro_rules! choice_traits {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::args::Choice::name(*self))
            }
        }
        impl std::str::FromStr for $t {
            type Err = $crate::Error;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                <$t as $crate::args::Choice>::parse_choice(s)
            }
        }
    };
}
pub(crate) use choice_traits;

/// A planning error naming the function and argument of a bad choice.
pub(crate) fn choice_of<T: Choice>(value: &str, function: &str, argument: &str) -> Result<T> {
    T::parse_choice(value).or_else(|e| plan_err!("{function}: argument '{argument}': {e}"))
}

/// An optional constant-string argument of a table function naming a [`Choice`]; `default`
/// when absent.
pub(crate) fn choice_arg<T: Choice>(
    expr: Option<&Expr>,
    default: T,
    function: &str,
    argument: &str,
) -> Result<T> {
    match expr {
        None => Ok(default),
        Some(e) => choice_of(&literal_str(e, function, argument)?, function, argument),
    }
}

/// A number for a message: plain where that is short, in scientific notation otherwise (1e300
/// is not printed as 301 digits).
pub(crate) fn show(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || !x.is_finite() || (1e-4..1e15).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// The items of an `options` argument (`'key=value, ...'`): `(key, value)` pairs in order, keys
/// lower-cased, both trimmed. An item that is not `key=value`, a key not in `keys` or a key
/// given twice is a planning error naming the function and the item.
pub fn parse_options(function: &str, text: &str, keys: &[&str]) -> Result<Vec<(String, String)>> {
    let listed = keys.join(", ");
    let mut out: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return plan_err!(
                "{function}: argument 'options': '{item}' is not key=value (keys: {listed})"
            );
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        if !keys.contains(&key.as_str()) {
            return plan_err!(
                "{function}: argument 'options': unknown key '{key}' (keys: {listed})"
            );
        }
        if out.iter().any(|(k, _)| *k == key) {
            return plan_err!("{function}: argument 'options': key '{key}' is given twice");
        }
        out.push((key, value.to_string()));
    }
    Ok(out)
}

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

/// A constant integer argument of a scalar function, as planning sees it
/// (`ReturnFieldArgs::scalar_arguments`): an error naming the argument when it is not an
/// integer literal or is NULL.
pub(crate) fn scalar_i64(
    value: Option<&ScalarValue>,
    function: &str,
    argument: &str,
) -> Result<i64> {
    match value {
        None => plan_err!("{function}: argument '{argument}' must be a constant integer literal"),
        Some(v) if v.is_null() => plan_err!("{function}: argument '{argument}' must not be NULL"),
        Some(v) => match v.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(i))) if v.data_type().is_integer() => Ok(i),
            _ => plan_err!(
                "{function}: argument '{argument}' must be an integer, got {}",
                v.data_type()
            ),
        },
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
        Err(_) => Err(crate::error::internal(
            function,
            "the worker thread panicked",
        )),
    }
}

/// A constant integer argument of a table function (`-3` arrives as a negation).
pub(crate) fn literal_i64(expr: &Expr, function: &str, argument: &str) -> Result<i64> {
    let wide = literal_i128(expr, function, argument)?;
    i64::try_from(wide).or_else(|_| {
        plan_err!(
            "{function}: argument '{argument}' must be an integer from -9223372036854775808 to 9223372036854775807, got {wide}"
        )
    })
}

/// A constant seed argument: any integer from -2^63 to 2^64 − 1; one above 2^63 − 1 means the
/// same 64 bits as its negative counterpart (2^64 − 1 is −1), as `samplemix_uniform` reads it.
pub(crate) fn literal_seed(expr: &Expr, function: &str, argument: &str) -> Result<i64> {
    let wide = literal_i128(expr, function, argument)?;
    match wide {
        w if (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(&w) => Ok(w as u64 as i64),
        w => plan_err!(
            "{function}: argument '{argument}' must be an integer from -9223372036854775808 to 18446744073709551615, got {w}"
        ),
    }
}

/// A constant integer argument, widened so that every Int64 and UInt64 (and their negation)
/// fits.
fn literal_i128(expr: &Expr, function: &str, argument: &str) -> Result<i128> {
    match expr {
        Expr::Literal(v, _) if v.data_type().is_integer() && !v.is_null() => {
            match v.cast_to(&DataType::Decimal128(38, 0))? {
                ScalarValue::Decimal128(Some(i), _, _) => Ok(i),
                _ => plan_err!("{function}: argument '{argument}' must be an integer"),
            }
        }
        Expr::Negative(inner) => Ok(-literal_i128(inner, function, argument)?),
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
pub(crate) fn literal_f64(expr: &Expr, function: &str, argument: &str) -> Result<f64> {
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
pub(crate) fn literal_str(expr: &Expr, function: &str, argument: &str) -> Result<String> {
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
pub(crate) fn table_name(expr: &Expr, function: &str, argument: &str) -> Result<String> {
    match expr {
        Expr::Column(c) => Ok(c.flat_name()),
        Expr::Literal(..) => literal_str(expr, function, argument),
        other => plan_err!(
            "{function}: argument '{argument}' must be a table name (identifier or string), got {other}"
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_in_messages_stay_short() {
        assert_eq!(super::show(1e300), "1e300");
        assert_eq!(super::show(640000.0), "640000");
        assert_eq!(super::show(2.5e-7), "2.5e-7");
        assert_eq!(super::show(f64::INFINITY), "inf");
    }
}
