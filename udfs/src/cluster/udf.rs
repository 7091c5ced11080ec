//! SQL glue for `diversity_cluster(embedding, centroids)`.
//!
//! An async scalar function: the centroids (a registered table or a Parquet path/URL with the
//! `kmeans_fit` schema) are read through the session, once, and kept while the table or files
//! are unchanged (checked per batch by the table's identity or the files' listing), so a query
//! loads them once and a replaced table is never served stale.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_datafusion_err, exec_err, plan_err};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::object_store::ObjectStoreExt;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::TryStreamExt;

use super::assign::{assign, Centroids};
use super::metric::Metric;
use super::vectors::{check_finite, check_type, vectors};
use crate::util::{literal_string, scalar_string};

const NAME: &str = "diversity_cluster";

/// Produces the current session state (the function reads centroid tables through it).
pub type SessionSource = Arc<dyn Fn() -> Option<SessionState> + Send + Sync>;

/// `diversity_cluster(embedding, centroids)` bound to a session, as a [`ScalarUDF`].
pub fn diversity_cluster_udf(session: SessionSource) -> ScalarUDF {
    AsyncScalarUDF::new(Arc::new(DiversityCluster::new(session))).into_scalar_udf()
}

/// Output struct fields: `cluster` Int32, `distance` Float64.
pub fn output_fields() -> Fields {
    Fields::from(vec![
        Field::new("cluster", DataType::Int32, true),
        Field::new("distance", DataType::Float64, true),
    ])
}

/// Nearest centroid of each embedding and the distance to it.
pub struct DiversityCluster {
    signature: Signature,
    session: SessionSource,
    cache: Mutex<Option<(String, String, Arc<Centroids>)>>,
}

impl std::fmt::Debug for DiversityCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiversityCluster").finish_non_exhaustive()
    }
}
impl PartialEq for DiversityCluster {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.session, &other.session)
    }
}
impl Eq for DiversityCluster {}
impl Hash for DiversityCluster {
    fn hash<H: Hasher>(&self, state: &mut H) {
        NAME.hash(state);
    }
}

impl DiversityCluster {
    fn new(session: SessionSource) -> Self {
        Self {
            signature: Signature::any(2, Volatility::Stable),
            session,
            cache: Mutex::new(None),
        }
    }

    /// The centroids named `name`, from the cache while their source is unchanged.
    async fn centroids(&self, name: &str) -> Result<Arc<Centroids>> {
        let state = (self.session)().ok_or_else(|| {
            exec_datafusion_err!("{NAME}: the session that registered this function is gone")
        })?;
        let ctx = SessionContext::new_with_state(state);
        let is_location = name.contains('/')
            || name.contains("://")
            || name.to_ascii_lowercase().ends_with(".parquet");
        let version = if is_location {
            file_version(&ctx, name).await?
        } else {
            match ctx.table_provider(name).await {
                Ok(provider) => format!("table@{:p}", Arc::as_ptr(&provider)),
                Err(e) => return exec_err!("{NAME}: argument 'centroids': no table '{name}' ({e}); pass a table name or a Parquet path/URL"),
            }
        };
        if let Some((n, v, c)) = self.cache.lock().unwrap().as_ref() {
            if n == name && *v == version {
                return Ok(Arc::clone(c));
            }
        }
        let df = if is_location {
            ctx.read_parquet(name, ParquetReadOptions::default())
                .await
                .map_err(|e| {
                    exec_datafusion_err!("{NAME}: argument 'centroids': cannot read '{name}': {e}")
                })?
        } else {
            ctx.table(name).await?
        };
        let batches = df.collect().await?;
        let centroids = Arc::new(parse_centroids(name, &batches)?);
        *self.cache.lock().unwrap() = Some((name.to_string(), version, Arc::clone(&centroids)));
        Ok(centroids)
    }
}

/// Identity of a centroids file or folder: its listing (paths, sizes, modification times).
async fn file_version(ctx: &SessionContext, name: &str) -> Result<String> {
    let url = ListingTableUrl::parse(name)?;
    let store = ctx.runtime_env().object_store(&url)?;
    // A single file answers HEAD; a folder is listed.
    if let Ok(meta) = store.head(url.prefix()).await {
        return Ok(format!(
            "{}:{}:{}",
            meta.location, meta.size, meta.last_modified
        ));
    }
    let files: Vec<_> = store
        .list(Some(url.prefix()))
        .try_collect()
        .await
        .map_err(|e| {
            exec_datafusion_err!("{NAME}: argument 'centroids': cannot list '{name}': {e}")
        })?;
    if files.is_empty() {
        return exec_err!("{NAME}: argument 'centroids': no file at '{name}'");
    }
    Ok(files
        .iter()
        .map(|m| format!("{}:{}:{}", m.location, m.size, m.last_modified))
        .collect::<Vec<_>>()
        .join("|"))
}

/// Read `cluster`, `centroid` and (optional, default cosine) `metric` columns.
fn parse_centroids(
    name: &str,
    batches: &[datafusion::arrow::array::RecordBatch],
) -> Result<Centroids> {
    let mut values = Vec::new();
    let mut ids = Vec::new();
    let mut dim: Option<usize> = None;
    let mut metric: Option<Metric> = None;
    for batch in batches {
        let schema = batch.schema();
        let col = |c: &str| -> Result<&ArrayRef> {
            schema
                .index_of(c)
                .map(|i| batch.column(i))
                .map_err(|_| exec_datafusion_err!("{NAME}: argument 'centroids': '{name}' has no '{c}' column (expected the kmeans_fit schema: cluster, size, centroid, metric)"))
        };
        let cluster = datafusion::arrow::compute::cast(col("cluster")?, &DataType::Int32)?;
        let cluster = cluster.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        let centroid = col("centroid")?;
        check_type(centroid.data_type(), NAME, "centroids")?;
        let rows = vectors(centroid, NAME, "centroids")?;
        let metrics = match schema.index_of("metric") {
            Ok(i) => Some(datafusion::arrow::compute::cast(
                batch.column(i),
                &DataType::Utf8,
            )?),
            Err(_) => None,
        };
        for i in 0..batch.num_rows() {
            let (Some(row), false) = (rows.row(i), cluster.is_null(i)) else {
                return exec_err!(
                    "{NAME}: argument 'centroids': '{name}' has a NULL cluster or centroid"
                );
            };
            check_finite(row, NAME, "centroids")?;
            match dim {
                None => dim = Some(row.len()),
                Some(d) if d != row.len() => {
                    return exec_err!(
                        "{NAME}: argument 'centroids': '{name}' mixes dimensions {d} and {}",
                        row.len()
                    )
                }
                _ => {}
            }
            let m = match &metrics {
                Some(m) if !m.is_null(i) => m
                    .as_string::<i32>()
                    .value(i)
                    .parse::<Metric>()
                    .map_err(|e| exec_datafusion_err!("{NAME}: argument 'centroids': {e}"))?,
                _ => Metric::default(),
            };
            if metric.is_some_and(|x| x != m) {
                return exec_err!("{NAME}: argument 'centroids': '{name}' mixes metrics");
            }
            metric = Some(m);
            values.extend_from_slice(row);
            ids.push(cluster.value(i));
        }
    }
    let (Some(dim), Some(metric)) = (dim, metric) else {
        return exec_err!("{NAME}: argument 'centroids': '{name}' has no rows");
    };
    if dim == 0 {
        return exec_err!("{NAME}: argument 'centroids': '{name}' has empty centroids");
    }
    Ok(Centroids::new(values, dim, metric, ids))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Nearest centroid of an embedding and the distance to it, under the centroids' metric \
         ('cosine': 1 − cos; 'l2': Euclidean). centroids names a registered table or a Parquet \
         path/URL (local or s3://) with the kmeans_fit schema; it is read once and reused while \
         unchanged. Returns Struct{cluster Int32, distance Float64}; NULL embedding gives NULL.",
        "diversity_cluster(embedding, centroids)",
    )
    .with_sql_example(
        "CREATE TABLE c AS SELECT * FROM kmeans_fit(docs, 'emb', 64);\nSELECT id, diversity_cluster(emb, 'c') AS dc FROM docs;",
    )
    .with_argument("embedding", "List or FixedSizeList of Float32 or Float64.")
    .with_argument("centroids", "Constant string: table name, or Parquet file/folder path or URL.")
    .with_related_udf("kmeans_fit")
    .with_related_udf("embed")
    .build()
});

impl ScalarUDFImpl for DiversityCluster {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(output_fields()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_type(args.arg_fields[0].data_type(), NAME, "embedding")?;
        if let Some(Some(v)) = args.scalar_arguments.get(1) {
            if literal_string(Some(v), NAME, "centroids")?.is_none() {
                return plan_err!("{NAME}: argument 'centroids' must not be NULL");
            }
        } else if !matches!(
            args.arg_fields[1].data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return plan_err!("{NAME}: argument 'centroids' must be a constant string (table name or Parquet path)");
        }
        Ok(Arc::new(Field::new(
            NAME,
            DataType::Struct(output_fields()),
            true,
        )))
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!("{NAME}: internal error: must be invoked asynchronously")
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for DiversityCluster {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(name) = scalar_string(&args.args[1], NAME, "centroids")? else {
            return exec_err!("{NAME}: argument 'centroids' must not be NULL");
        };
        let centroids = self.centroids(&name).await?;
        let array = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(assign_array(
            &array, &centroids, &name,
        )?))
    }
}

/// Assign every row of an embedding array.
fn assign_array(array: &ArrayRef, c: &Centroids, name: &str) -> Result<ArrayRef> {
    let rows = vectors(array, NAME, "embedding")?;
    let n = rows.len();
    let mut valid = Vec::with_capacity(n);
    let mut packed: Vec<f32> = Vec::new();
    let contiguous = rows.contiguous(0, n);
    for i in 0..n {
        match rows.row(i) {
            Some(row) => {
                if row.len() != c.dim {
                    return exec_err!(
                        "{NAME}: embedding dimension {} does not match the dimension {} of centroids '{name}'",
                        row.len(),
                        c.dim
                    );
                }
                check_finite(row, NAME, "embedding")?;
                if contiguous.is_none() {
                    packed.extend_from_slice(row);
                }
                valid.push(true);
            }
            None => valid.push(false),
        }
    }
    let x = contiguous.unwrap_or(&packed);
    let (mut labels, mut distances) = (Vec::new(), Vec::new());
    assign(x, c, &mut labels, &mut distances);
    let mut cluster = Vec::with_capacity(n);
    let mut distance = Vec::with_capacity(n);
    let mut next = 0;
    for v in &valid {
        if *v {
            cluster.push(c.ids[labels[next]]);
            distance.push(distances[next]);
            next += 1;
        } else {
            cluster.push(0);
            distance.push(0.0);
        }
    }
    let nulls = NullBuffer::from(valid);
    Ok(Arc::new(StructArray::try_new(
        output_fields(),
        vec![
            Arc::new(Int32Array::new(cluster.into(), Some(nulls.clone()))),
            Arc::new(Float64Array::new(distance.into(), Some(nulls.clone()))),
        ],
        Some(nulls),
    )?))
}
