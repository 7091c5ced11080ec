//! `samplemix_distance(a, b, metric)`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::exec_err;
use datafusion::common::utils::take_function_args;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::{arrays, result};
use crate::args::{check_arity, check_text, choice_of, pass_through};
use crate::cluster::metric::{distance_f64, Metric};
use crate::cluster::vectors::{check_type, f64_rows};

/// Distance between two embeddings under a metric.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Distance {
    pub(super) signature: Signature,
}

const DISTANCE: &str = "samplemix_distance";

static DISTANCE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Distance between two embeddings: 'cosine' (1 − cos; 1 when either is the zero vector) or \
         'l2' (Euclidean), computed in f64 over the whole Float64 range (no narrowing to f32). \
         samplemix_weights uses it for the separation between centroids. NULL in, NULL out; \
         differing lengths and NaN or infinite values are errors.",
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
        DISTANCE
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(DISTANCE, arg_types.len(), 3..=3, "a, b, metric")?;
        check_type(&arg_types[0], DISTANCE, "a")?;
        check_type(&arg_types[1], DISTANCE, "b")?;
        check_text(DISTANCE, "metric", &arg_types[2])?;
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args)?;
        let [a, b, metric] = take_function_args(DISTANCE, a)?;
        let (x, y) = (f64_rows(&a, DISTANCE, "a")?, f64_rows(&b, DISTANCE, "b")?);
        let metrics = cast(&metric, &DataType::Utf8)?;
        let metrics = metrics.as_string::<i32>();
        let mut out = Vec::with_capacity(x.len());
        for (i, m) in metrics.iter().enumerate() {
            let (Some(p), Some(q), Some(m)) = (x.row(i), y.row(i), m) else {
                out.push(None);
                continue;
            };
            if p.len() != q.len() {
                return exec_err!(
                    "{DISTANCE}: arguments 'a' and 'b' differ in length ({} and {})",
                    p.len(),
                    q.len()
                );
            }
            if p.iter().chain(q).any(|v| !v.is_finite()) {
                return exec_err!("{DISTANCE}: arguments 'a' and 'b' must be finite (NaN or infinite value in row {i})");
            }
            let m: Metric = choice_of(m, DISTANCE, "metric")?;
            out.push(Some(distance_f64(m, p, q)));
        }
        result(Arc::new(Float64Array::from(out)), scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DISTANCE_DOC)
    }
}
