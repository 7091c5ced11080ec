//! `samplemix_exp(x)`: e^x with the same bits on every machine.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::plan_err;
use datafusion::common::utils::take_function_args;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};

use super::{arrays, result};
use crate::args::{check_arity, pass_through};

/// e^x with the same bits on every machine ([`super::exp`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Exp {
    pub(super) signature: Signature,
}

const EXP: &str = "samplemix_exp";

static EXP_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "e^x, the same bits on every machine: built from +, −, ×, ÷ only (fdlibm's method, error \
         below 1 ulp), where exp() follows the C library, which picks its code by CPU and may \
         round a rare value differently elsewhere. samplemix_weights computes its softmax terms \
         with it. Vectorised: over a column it costs about 60% of exp(). Integers are taken as \
         Float64; NaN gives NaN, overflow +inf, underflow 0; NULL gives NULL.",
        "samplemix_exp(x)",
    )
    .with_sql_example("SELECT samplemix_exp(1.0);  -- 2.7182818284590455 (exp(1.0): ...045)")
    .with_argument("x", "Numeric (taken as Float64).")
    .build()
});

impl ScalarUDFImpl for Exp {
    fn name(&self) -> &str {
        EXP
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types)
            .into_iter()
            .map(|t| if t.is_numeric() { DataType::Float64 } else { t })
            .collect())
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(EXP, arg_types.len(), 1..=1, "x")?;
        match &arg_types[0] {
            DataType::Float64 | DataType::Null => Ok(DataType::Float64),
            t => plan_err!("{EXP}: argument 'x' must be numeric, got {t}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args)?;
        let [x] = take_function_args(EXP, a)?;
        let x = cast(&x, &DataType::Float64)?;
        let x = x.as_primitive::<Float64Type>();
        // NULL slots hold some value too; their results are masked by the same null buffer.
        let mut out = vec![0.0; x.len()];
        crate::mix::exp::exp_into(x.values(), &mut out);
        result(
            Arc::new(Float64Array::new(out.into(), x.nulls().cloned())),
            scalar,
        )
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&EXP_DOC)
    }
}
