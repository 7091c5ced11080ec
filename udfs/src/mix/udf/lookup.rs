//! `samplemix_lookup(key, keys, values)`: the value paired with a key in constant lists.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::result;
use crate::args::{check_arity, pass_through};
use crate::mix::lookup::KeyIndex;

/// The value of a key in a constant table.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Lookup {
    pub(super) signature: Signature,
}

const LOOKUP: &str = "samplemix_lookup";

static LOOKUP_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "The value paired with an integer key in a constant table: values[i] where \
         keys[i] = key, NULL when the key is NULL or not among the keys (or its value is NULL). \
         For a small table (per-cluster figures, say) it replaces a join: each row's key is \
         looked up directly, and no other column is copied. keys and values are constant \
         lists of the same length; the keys are distinct integers.",
        "samplemix_lookup(key, keys, values)",
    )
    .with_sql_example("SELECT samplemix_lookup(cluster, [0, 1, 2], [0.5, 1.25, 2.0]) FROM scored;")
    .with_argument("key", "Integer expression.")
    .with_argument("keys", "Constant list of distinct integers.")
    .with_argument(
        "values",
        "Constant list of numbers, as long as keys, taken as Float64.",
    )
    .build()
});

/// A constant list argument of `samplemix_lookup` as the array of its elements.
fn lookup_list(value: &ScalarValue, argument: &str, item: &DataType) -> Result<ArrayRef> {
    let list = match value {
        ScalarValue::List(a) if a.len() == 1 && a.is_valid(0) => a.value(0),
        ScalarValue::LargeList(a) if a.len() == 1 && a.is_valid(0) => a.value(0),
        ScalarValue::FixedSizeList(a) if a.len() == 1 && a.is_valid(0) => a.value(0),
        v if v.is_null() => return exec_err!("{LOOKUP}: argument '{argument}' must not be NULL"),
        v => {
            return exec_err!(
                "{LOOKUP}: argument '{argument}' must be a constant list, got {}",
                v.data_type()
            )
        }
    };
    Ok(cast(&list, item)?)
}

/// The table of a `samplemix_lookup` call: its key index and values, checked (lists, equal
/// lengths, no NULL or repeated key).
fn lookup_table(keys: &ScalarValue, values: &ScalarValue) -> Result<(KeyIndex, Float64Array)> {
    let k = lookup_list(keys, "keys", &DataType::Int64)?;
    let v = lookup_list(values, "values", &DataType::Float64)?;
    if k.len() != v.len() {
        return exec_err!(
            "{LOOKUP}: 'keys' and 'values' must have the same length, got {} and {}",
            k.len(),
            v.len()
        );
    }
    if k.null_count() > 0 {
        return exec_err!("{LOOKUP}: argument 'keys' must not contain NULL");
    }
    let index = KeyIndex::new(k.as_primitive::<Int64Type>().values()).or_else(|key| {
        exec_err!("{LOOKUP}: argument 'keys' must hold distinct keys, {key} appears twice")
    })?;
    Ok((index, v.as_primitive::<Float64Type>().clone()))
}

/// Whether `t` is a list type whose items satisfy `item`.
fn is_table_of(t: &DataType, item: impl Fn(&DataType) -> bool) -> bool {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            item(f.data_type())
        }
        _ => false,
    }
}

impl ScalarUDFImpl for Lookup {
    fn name(&self) -> &str {
        LOOKUP
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
        check_arity(LOOKUP, args.arg_fields.len(), 3..=3, "key, keys, values")?;
        let types: Vec<&DataType> = args.arg_fields.iter().map(|f| f.data_type()).collect();
        if !(types[0].is_integer() || *types[0] == DataType::Null) {
            return plan_err!(
                "{LOOKUP}: argument 'key' must be an integer, got {}",
                types[0]
            );
        }
        for (t, argument, items, item) in [
            (
                types[1],
                "keys",
                "integers",
                DataType::is_integer as fn(&DataType) -> bool,
            ),
            (types[2], "values", "numbers", DataType::is_numeric),
        ] {
            if !is_table_of(t, |t| item(t) || *t == DataType::Null) {
                return plan_err!(
                    "{LOOKUP}: argument '{argument}' must be a list of {items}, got {t}"
                );
            }
        }
        // A list written in SQL (`[0, 1]`) is still a function call here, folded into a
        // constant later: the lists themselves are checked when the function runs.
        Ok(Arc::new(Field::new(LOOKUP, DataType::Float64, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [key, keys, values] = take_function_args(LOOKUP, &args.args)?;
        let (ColumnarValue::Scalar(keys), ColumnarValue::Scalar(values)) = (keys, values) else {
            return exec_err!(
                "{LOOKUP}: arguments 'keys' and 'values' must be constant lists, not columns"
            );
        };
        let (index, values) = lookup_table(keys, values)?;
        let (index, values) = (&index, &values);
        let scalar = matches!(key, ColumnarValue::Scalar(_));
        let key = key.to_array(if scalar { 1 } else { args.number_rows })?;
        let key = cast(&key, &DataType::Int64)?;
        let key = key.as_primitive::<Int64Type>();
        // NULL keys hold some value too; the null buffer masks their results.
        let mut out = vec![0.0; key.len()];
        let found_all = index.gather(key.values(), values.values(), &mut out);
        let nulls = if found_all && values.null_count() == 0 {
            key.nulls().cloned()
        } else {
            let valid = key.values().iter().enumerate().map(|(i, k)| {
                key.is_valid(i) && index.position(*k).is_some_and(|p| values.is_valid(p))
            });
            Some(NullBuffer::from_iter(valid))
        };
        result(Arc::new(Float64Array::new(out.into(), nulls)), scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&LOOKUP_DOC)
    }
}
