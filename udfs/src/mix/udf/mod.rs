//! SQL glue for the scalar helpers of the mix, one file each: `samplemix_uniform` and
//! `samplemix_round` (`uniform.rs`, one id → u(x) dispatch for both and for the systematic
//! rounding window), `samplemix_exp`, `samplemix_lookup`, `samplemix_distance` and
//! `samplemix_assert`.

mod assert;
mod distance;
mod exp;
mod lookup;
mod uniform;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, TypeSignature, Volatility};

pub use assert::Assert;
pub use distance::Distance;
pub use exp::Exp;
pub use lookup::Lookup;
pub(crate) use uniform::{id_uniforms, seeds, MAX_EXPECTED};
pub use uniform::{Round, Uniform};

use crate::args::{signature, udf_singleton};

udf_singleton!(
    /// `samplemix_uniform(id, seed)`.
    uniform_udf,
    Uniform {
        signature: signature(
            vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Int64])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_round(expected_count, id, seed)`.
    round_udf,
    Round {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::Float64,
                DataType::Utf8,
                DataType::Int64,
            ])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_exp(x)`.
    exp_udf,
    Exp {
        signature: signature(
            vec![TypeSignature::Exact(vec![DataType::Float64])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_lookup(key, keys, values)`.
    lookup_udf,
    Lookup {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::Int64,
                DataType::new_list(DataType::Int64, true),
                DataType::new_list(DataType::Float64, true),
            ])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_distance(a, b, metric)`.
    distance_udf,
    Distance {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::new_list(DataType::Float32, true),
                DataType::new_list(DataType::Float32, true),
                DataType::Utf8,
            ])],
            Volatility::Immutable,
        ),
    }
);
udf_singleton!(
    /// `samplemix_assert(value, ok, message, detail)`.
    assert_udf,
    Assert {
        signature: signature(
            vec![TypeSignature::Exact(vec![
                DataType::Float64,
                DataType::Boolean,
                DataType::Utf8,
                DataType::Utf8,
            ])],
            Volatility::Volatile,
        ),
    }
);

/// The arrays of all arguments, and whether they were all scalars (then the result is one).
fn arrays(args: &ScalarFunctionArgs) -> Result<(Vec<ArrayRef>, bool)> {
    let scalar = args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let rows = if scalar { 1 } else { args.number_rows };
    let arrays = ColumnarValue::values_to_arrays(&args.args)?;
    // values_to_arrays sizes scalars to the longest array; all-scalar calls give length 1.
    debug_assert!(arrays.iter().all(|a| a.len() == rows));
    Ok((arrays, scalar))
}

fn result(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
    } else {
        ColumnarValue::Array(array)
    })
}
