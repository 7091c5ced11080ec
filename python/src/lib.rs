//! `samplemix._samplemix`: the native half of the Python package (`python/samplemix/`).
//!
//! - Scalar, aggregate and window functions cross into a datafusion-python 55 `SessionContext`
//!   through datafusion-ffi 55: one Python object per function with the capsule getter
//!   datafusion-python looks for (`udf(obj)`, `udaf(obj)`, `udwf(obj)`).
//! - Table functions cannot cross that way (ours need DataFusion's own `SessionState` to read
//!   their input tables, and a foreign session is not one): [`run_sql`] runs a table function in
//!   a samplemix session of its own over Arrow data the Python side read from the caller's
//!   context, and returns Arrow data. The GIL is released while it runs.

use std::sync::Arc;

use arrow::pyarrow::PyArrowType;
use datafusion::arrow::array::{make_comparator, new_empty_array, Array, ArrayRef};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::execution::context::SessionConfig;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, WindowUDF,
};
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udwf::FFI_WindowUDF;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

create_exception!(
    _samplemix,
    SamplemixError,
    PyException,
    "An error of a samplemix function: the same message the samplemix shell prints."
);

/// A samplemix scalar function as datafusion-ffi calls it.
///
/// The FFI layer hands every argument over as an array of the batch's length, literals
/// included, while our functions read their constant arguments (a model path, an encoding,
/// a band count) as scalars and refuse columns there. An array whose rows all hold one value
/// is turned back into that scalar here; a column that happens to hold one value within a batch
/// is then read as that value, which gives the row-by-row result, and a column whose rows
/// differ still meets the function's own error. Results go back as arrays, as FFI expects.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AcrossFfi(Arc<ScalarUDF>);

/// The one value every row of `array` holds, if it is one.
fn repeated(array: &ArrayRef) -> Result<Option<ScalarValue>> {
    if array.is_empty() {
        return Ok(None);
    }
    if array.len() > 1 {
        let same = make_comparator(array.as_ref(), array.as_ref(), SortOptions::default())?;
        if (1..array.len()).any(|i| same(0, i) != std::cmp::Ordering::Equal) {
            return Ok(None);
        }
    }
    Ok(Some(ScalarValue::try_from_array(array, 0)?))
}

impl ScalarUDFImpl for AcrossFfi {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn aliases(&self) -> &[String] {
        self.0.aliases()
    }
    fn signature(&self) -> &Signature {
        self.0.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.0.inner().return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.0.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.0.coerce_types(arg_types)
    }
    fn short_circuits(&self) -> bool {
        self.0.short_circuits()
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.0.documentation()
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        if rows == 0 {
            // No row to read a constant argument from, and nothing to compute.
            return Ok(ColumnarValue::Array(new_empty_array(
                args.return_field.data_type(),
            )));
        }
        for arg in args.args.iter_mut() {
            if let ColumnarValue::Array(array) = arg {
                if let Some(value) = repeated(array)? {
                    *arg = ColumnarValue::Scalar(value);
                }
            }
        }
        Ok(ColumnarValue::Array(
            self.0.invoke_with_args(args)?.into_array(rows)?,
        ))
    }
}

/// A samplemix scalar function, for `datafusion.udf(...)`.
#[pyclass(module = "samplemix._samplemix", frozen)]
struct ScalarFunction(Arc<ScalarUDF>);

#[pymethods]
impl ScalarFunction {
    /// The function's SQL name.
    #[getter]
    fn name(&self) -> String {
        self.0.name().to_string()
    }
    fn __datafusion_scalar_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let ffi = FFI_ScalarUDF::from(Arc::clone(&self.0));
        PyCapsule::new_with_value(py, ffi, c"datafusion_scalar_udf")
    }
}

/// A samplemix aggregate function, for `datafusion.udaf(...)`.
#[pyclass(module = "samplemix._samplemix", frozen)]
struct AggregateFunction(Arc<AggregateUDF>);

#[pymethods]
impl AggregateFunction {
    /// The function's SQL name.
    #[getter]
    fn name(&self) -> String {
        self.0.name().to_string()
    }
    fn __datafusion_aggregate_udf__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let ffi = FFI_AggregateUDF::from(Arc::clone(&self.0));
        PyCapsule::new_with_value(py, ffi, c"datafusion_aggregate_udf")
    }
}

/// A samplemix window function, for `datafusion.udwf(...)`.
#[pyclass(module = "samplemix._samplemix", frozen)]
struct WindowFunction(Arc<WindowUDF>);

#[pymethods]
impl WindowFunction {
    /// The function's SQL name.
    #[getter]
    fn name(&self) -> String {
        self.0.name().to_string()
    }
    fn __datafusion_window_udf__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let ffi = FFI_WindowUDF::from(Arc::clone(&self.0));
        PyCapsule::new_with_value(py, ffi, c"datafusion_window_udf")
    }
}

/// Every samplemix scalar function. Those that read files (`diversity_cluster`'s centroids,
/// `quality_predict`'s model, `fasttext_predict`'s model) read paths and URLs, with S3 set by
/// the `AWS_*` environment variables, as on a Ballista executor: a foreign session has no
/// tables they could look up.
#[pyfunction]
fn scalar_functions() -> Vec<ScalarFunction> {
    samplemix::standalone_udfs()
        .into_iter()
        .map(|f| ScalarFunction(Arc::new(ScalarUDF::new_from_impl(AcrossFfi(f)))))
        .collect()
}

/// Every samplemix aggregate function.
#[pyfunction]
fn aggregate_functions() -> Vec<AggregateFunction> {
    samplemix::all_udafs()
        .into_iter()
        .map(AggregateFunction)
        .collect()
}

/// Every samplemix window function.
#[pyfunction]
fn window_functions() -> Vec<WindowFunction> {
    samplemix::all_udwfs()
        .into_iter()
        .map(WindowFunction)
        .collect()
}

/// The names of samplemix's table functions.
#[pyfunction]
fn table_function_names() -> Vec<String> {
    samplemix::all_udtfs()
        .iter()
        .map(|f| f.name().to_string())
        .collect()
}

type Batches = (PyArrowType<Schema>, Vec<PyArrowType<RecordBatch>>);

fn error(e: impl std::fmt::Display) -> PyErr {
    SamplemixError::new_err(e.to_string())
}

async fn run(
    tables: Vec<(String, Schema, Vec<RecordBatch>)>,
    sql: String,
) -> PyResult<(Schema, Vec<RecordBatch>)> {
    let config = samplemix::session_config(SessionConfig::new());
    let ctx = samplemix::new_context(config, Arc::new(RuntimeEnv::default()))
        .await
        .map_err(error)?;
    for (name, schema, batches) in tables {
        let table = MemTable::try_new(Arc::new(schema), vec![batches]).map_err(error)?;
        ctx.register_table(name.as_str(), Arc::new(table))
            .map_err(error)?;
    }
    let df = ctx
        .sql(&sql)
        .await
        .map_err(|e| error(e.strip_backtrace()))?;
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(|e| error(e.strip_backtrace()))?;
    Ok((schema, batches))
}

/// Run `sql` (a samplemix table function call) in a samplemix session holding `tables`
/// ((name, schema, batches) each); returns the result's schema and batches. The GIL is
/// released meanwhile, so other Python threads run.
#[pyfunction]
fn run_sql(
    py: Python<'_>,
    tables: Vec<(String, PyArrowType<Schema>, Vec<PyArrowType<RecordBatch>>)>,
    sql: String,
) -> PyResult<Batches> {
    let tables: Vec<(String, Schema, Vec<RecordBatch>)> = tables
        .into_iter()
        .map(|(n, s, b)| (n, s.0, b.into_iter().map(|b| b.0).collect()))
        .collect();
    let (schema, batches) = py.detach(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(error)?;
        rt.block_on(run(tables, sql))
    })?;
    Ok((
        PyArrowType(schema),
        batches.into_iter().map(PyArrowType).collect(),
    ))
}

#[pymodule]
fn _samplemix(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ScalarFunction>()?;
    m.add_class::<AggregateFunction>()?;
    m.add_class::<WindowFunction>()?;
    m.add_function(wrap_pyfunction!(scalar_functions, m)?)?;
    m.add_function(wrap_pyfunction!(aggregate_functions, m)?)?;
    m.add_function(wrap_pyfunction!(window_functions, m)?)?;
    m.add_function(wrap_pyfunction!(table_function_names, m)?)?;
    m.add_function(wrap_pyfunction!(run_sql, m)?)?;
    m.add("SamplemixError", m.py().get_type::<SamplemixError>())?;
    Ok(())
}
