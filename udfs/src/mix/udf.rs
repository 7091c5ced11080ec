//! SQL glue for the scalar helpers of the mix: `samplemix_uniform`, `samplemix_distance` and
//! `samplemix_assert`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::weights::uniform;
use crate::cluster::vectors::{check_type, vectors};
use crate::cluster::Metric;

/// `samplemix_uniform(id, seed)` as a [`ScalarUDF`].
pub fn uniform_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Uniform {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// `samplemix_distance(a, b, metric)` as a [`ScalarUDF`].
pub fn distance_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Distance {
        signature: Signature::any(3, Volatility::Immutable),
    })
}

/// `samplemix_assert(value, ok, message, detail)` as a [`ScalarUDF`].
pub fn assert_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Assert {
        signature: Signature::any(4, Volatility::Volatile),
    })
}

fn arrays(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    args.args
        .iter()
        .map(|a| a.to_array(args.number_rows))
        .collect()
}

fn result(args: &ScalarFunctionArgs, array: ArrayRef) -> Result<ColumnarValue> {
    if args
        .args
        .iter()
        .all(|a| matches!(a, ColumnarValue::Scalar(_)))
    {
        Ok(ColumnarValue::Scalar(
            datafusion::common::ScalarValue::try_from_array(&array, 0)?,
        ))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// Portable hash of (id, seed) to [0, 1).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Uniform {
    signature: Signature,
}

static UNIFORM_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Deterministic u(x) in [0, 1) for stochastic rounding: h = FNV-1a-64 of the id's canonical \
         bytes (strings: UTF-8; binary: the bytes; other types: their Arrow string form, e.g. 42 → \"42\"), \
         m = SplitMix64(h XOR SplitMix64(seed)), u = (m >> 11) / 2^53. Same value on every machine \
         and version; independent of partitioning. NULL id or seed gives NULL.",
        "samplemix_uniform(id, seed)",
    )
    .with_sql_example("SELECT samplemix_uniform('doc-1', 0);")
    .with_argument("id", "Document id of any type.")
    .with_argument("seed", "Integer seed.")
    .build()
});

impl ScalarUDFImpl for Uniform {
    fn name(&self) -> &str {
        "samplemix_uniform"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !(arg_types[1].is_integer() || arg_types[1] == DataType::Null) {
            return plan_err!(
                "samplemix_uniform: argument 'seed' must be an integer, got {}",
                arg_types[1]
            );
        }
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let seeds = cast(&a[1], &DataType::Int64)?;
        let seeds = seeds.as_primitive::<Int64Type>();
        let id = &a[0];
        let out: Float64Array = match id.data_type() {
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => {
                let bin = cast(id, &DataType::LargeBinary)?;
                let bin = bin.as_binary::<i64>();
                (0..id.len())
                    .map(|i| {
                        (!bin.is_null(i) && !seeds.is_null(i))
                            .then(|| uniform(bin.value(i), seeds.value(i)))
                    })
                    .collect()
            }
            _ => {
                let s = cast(id, &DataType::LargeUtf8)?;
                let s = s.as_string::<i64>();
                (0..id.len())
                    .map(|i| {
                        (!s.is_null(i) && !seeds.is_null(i))
                            .then(|| uniform(s.value(i).as_bytes(), seeds.value(i)))
                    })
                    .collect()
            }
        };
        result(&args, Arc::new(out))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&UNIFORM_DOC)
    }
}

/// Distance between two embeddings under a metric.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Distance {
    signature: Signature,
}

static DISTANCE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Distance between two embeddings: 'cosine' (1 − cos; 1 when either is the zero vector) or \
         'l2' (Euclidean), accumulated in f64. samplemix_weights uses it for the separation between \
         centroids. NULL in, NULL out; differing lengths are an error.",
        "samplemix_distance(a, b, metric)",
    )
    .with_sql_example("SELECT samplemix_distance([1.0, 0.0], [0.0, 1.0], 'cosine');  -- 1.0")
    .with_argument("a", "List or FixedSizeList of Float32/Float64.")
    .with_argument("b", "List or FixedSizeList of Float32/Float64.")
    .with_argument("metric", "'cosine' or 'l2'.")
    .build()
});

impl ScalarUDFImpl for Distance {
    fn name(&self) -> &str {
        "samplemix_distance"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_type(&arg_types[0], "samplemix_distance", "a")?;
        check_type(&arg_types[1], "samplemix_distance", "b")?;
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let (x, y) = (
            vectors(&a[0], "samplemix_distance", "a")?,
            vectors(&a[1], "samplemix_distance", "b")?,
        );
        let metrics = cast(&a[2], &DataType::Utf8)?;
        let metrics = metrics.as_string::<i32>();
        let mut out = Vec::with_capacity(x.len());
        for i in 0..x.len() {
            let (Some(p), Some(q), false) = (x.row(i), y.row(i), metrics.is_null(i)) else {
                out.push(None);
                continue;
            };
            if p.len() != q.len() {
                return exec_err!(
                    "samplemix_distance: arguments 'a' and 'b' differ in length ({} and {})",
                    p.len(),
                    q.len()
                );
            }
            let m: Metric = metrics.value(i).parse().map_err(|e| {
                DataFusionError::Execution(format!("samplemix_distance: argument 'metric': {e}"))
            })?;
            out.push(Some(m.distance(p, q)));
        }
        result(&args, Arc::new(Float64Array::from(out)))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DISTANCE_DOC)
    }
}

/// Pass `value` through, failing the query with `message` when `ok` is not true.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Assert {
    signature: Signature,
}

static ASSERT_DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        crate::doc_section(),
        "Returns value unchanged; fails the query with message followed by the row's detail when \
         ok is false or NULL. samplemix_weights uses it to reject NULL inputs and unknown clusters \
         while streaming, without an extra pass.",
        "samplemix_assert(value, ok, message, detail)",
    )
    .with_argument("value", "Any value, returned as is.")
    .with_argument("ok", "Boolean condition that must hold.")
    .with_argument("message", "Error message.")
    .with_argument("detail", "Value appended to the message (e.g. the offending key).")
    .build()
    });

impl ScalarUDFImpl for Assert {
    fn name(&self) -> &str {
        "samplemix_assert"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let ok = cast(&a[1], &DataType::Boolean)?;
        let ok = ok.as_boolean();
        if let Some(i) = (0..ok.len()).find(|i| ok.is_null(*i) || !ok.value(*i)) {
            let message = cast(&a[2], &DataType::Utf8)?;
            let message = message.as_string::<i32>();
            let detail = cast(&a[3], &DataType::Utf8)?;
            let detail = detail.as_string::<i32>();
            let d = if detail.is_null(i) {
                "NULL"
            } else {
                detail.value(i)
            };
            let m = if message.is_null(i) {
                "assertion failed"
            } else {
                message.value(i)
            };
            return exec_err!("{m}{d}");
        }
        Ok(args.args[0].clone())
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&ASSERT_DOC)
    }
}
