//! SQL glue for `diversity_cluster(embedding, centroids)`.
//!
//! The centroids (a registered table, or a Parquet file/folder path
//! or URL with the `kmeans_fit` schema) are read once per query and reused for every batch of
//! it. A query is recognised by the return field DataFusion builds when it plans the call (one
//! `Arc` per planned query, shared by all its partitions); a new query checks whether the table
//! (its identity) or the files (their listing) changed before reusing the cached centroids, so
//! a replaced table is never served stale and a query never pays more than one check.
//!
//! Where the centroids are read from is a [`CentroidSource`]: the session that registered the
//! function (table names and every object store of that session), or a bare runtime (paths and
//! URLs only): the form every process of a Ballista cluster can build from the function's name.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use parking_lot::RwLock;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_datafusion_err, exec_err, plan_err};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};
use datafusion::object_store::ObjectStoreExt;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::TryStreamExt;

use super::assign::{assign, Centroids};
use super::centroids::read_centroids;
use super::vectors::{check_finite, check_type, vectors};
use crate::args::{
    block_on_helper, check_arity, check_text, literal_string, pass_through, scalar_string,
    signature,
};
use crate::io::is_location;

const NAME: &str = "diversity_cluster";

/// Where `diversity_cluster` reads its centroids.
#[derive(Clone)]
#[non_exhaustive]
pub enum CentroidSource {
    /// The session that registered the function: registered tables, and paths or URLs through
    /// that session's object stores (what `register_all` uses).
    Session(Weak<RwLock<SessionState>>),
    /// A runtime without a session: Parquet paths or URLs through its object stores only.
    /// This is what a process that only knows the function's name can build (Ballista
    /// schedulers and executors, `all_udfs()`).
    Runtime(Arc<RuntimeEnv>),
}

impl CentroidSource {
    /// The source reading through `ctx`.
    pub fn session(ctx: &SessionContext) -> Self {
        CentroidSource::Session(ctx.state_weak_ref())
    }

    fn context(&self) -> Result<SessionContext> {
        match self {
            CentroidSource::Session(weak) => {
                let state = weak.upgrade().ok_or_else(|| {
                    exec_datafusion_err!(
                        "{NAME}: the session that registered this function is gone"
                    )
                })?;
                let state = state.read().clone();
                Ok(SessionContext::new_with_state(state))
            }
            CentroidSource::Runtime(rt) => Ok(SessionContext::new_with_config_rt(
                SessionConfig::new(),
                Arc::clone(rt),
            )),
        }
    }

    fn key(&self) -> usize {
        match self {
            CentroidSource::Session(w) => w.as_ptr() as *const u8 as usize,
            CentroidSource::Runtime(rt) => Arc::as_ptr(rt) as *const u8 as usize,
        }
    }
}

/// `diversity_cluster(embedding, centroids)` reading centroids from `source`.
pub fn diversity_cluster_udf(source: CentroidSource) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(DiversityCluster::new(source)))
}

/// Output struct fields: `cluster` Int32, `distance` Float64.
pub fn output_fields() -> Fields {
    Fields::from(vec![
        Field::new("cluster", DataType::Int32, true),
        Field::new("distance", DataType::Float64, true),
    ])
}

/// The centroids of one name, the version they were read at, and the query that last used them.
struct Cached {
    name: String,
    version: String,
    query: Weak<Field>,
    centroids: Arc<Centroids>,
}

/// Nearest centroid of each embedding and the distance to it.
pub struct DiversityCluster {
    signature: Signature,
    source: CentroidSource,
    cache: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for DiversityCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiversityCluster").finish_non_exhaustive()
    }
}
impl PartialEq for DiversityCluster {
    fn eq(&self, other: &Self) -> bool {
        self.source.key() == other.source.key()
    }
}
impl Eq for DiversityCluster {}
impl Hash for DiversityCluster {
    fn hash<H: Hasher>(&self, state: &mut H) {
        NAME.hash(state);
        self.source.key().hash(state);
    }
}

impl DiversityCluster {
    fn new(source: CentroidSource) -> Self {
        Self {
            signature: signature(
                vec![TypeSignature::Exact(vec![
                    DataType::new_list(DataType::Float32, true),
                    DataType::Utf8,
                ])],
                Volatility::Stable,
            ),
            source,
            cache: Mutex::new(None),
        }
    }

    fn cached(&self, name: &str, query: &FieldRef) -> Option<Arc<Centroids>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .as_ref()
            .filter(|c| c.name == name && Weak::ptr_eq(&c.query, &Arc::downgrade(query)))
            .map(|c| Arc::clone(&c.centroids))
    }

    /// The centroids named `name` for the query identified by `query`. The I/O (a version
    /// check, and a read when the version changed) runs on a helper runtime: scalar functions
    /// are synchronous, and DataFusion 55's async scalar functions cannot carry documentation
    /// or custom type checks.
    fn centroids(&self, name: &str, query: &FieldRef) -> Result<Arc<Centroids>> {
        if let Some(c) = self.cached(name, query) {
            return Ok(c);
        }
        let known = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache
                .as_ref()
                .filter(|c| c.name == name)
                .map(|c| c.version.clone())
        };
        let (source, owned) = (self.source.clone(), name.to_string());
        let (version, fresh) =
            block_on_helper(NAME, async move { load(source, owned, known).await })?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let centroids = match (fresh, cache.as_mut()) {
            (None, Some(c)) if c.name == name && c.version == version => {
                c.query = Arc::downgrade(query);
                return Ok(Arc::clone(&c.centroids));
            }
            (Some(c), _) => Arc::new(c),
            (None, _) => {
                return Err(crate::error::internal(
                    NAME,
                    format!("centroids '{name}' vanished from the cache"),
                ))
            }
        };
        *cache = Some(Cached {
            name: name.to_string(),
            version,
            query: Arc::downgrade(query),
            centroids: Arc::clone(&centroids),
        });
        Ok(centroids)
    }
}

/// The version of centroids `name`, and the centroids themselves unless that version is
/// `known` (already cached).
async fn load(
    source: CentroidSource,
    name: String,
    known: Option<String>,
) -> Result<(String, Option<Centroids>)> {
    let ctx = source.context()?;
    let version = if is_location(&name) {
        file_version(&ctx, &name).await?
    } else {
        if matches!(source, CentroidSource::Runtime(_)) {
            return exec_err!(
                "{NAME}: argument 'centroids': '{name}' is a table name, but this instance of the function has no session to look tables up in (it is a Ballista scheduler or executor, or comes from all_udfs()); pass the centroids as a Parquet file or folder path or URL, e.g. COPY the kmeans_fit result TO 's3://bucket/centroids.parquet' first"
            );
        }
        match ctx.table_provider(name.as_str()).await {
            Ok(provider) => format!("table@{:p}", Arc::as_ptr(&provider)),
            Err(e) => return exec_err!("{NAME}: argument 'centroids': no table '{name}' ({e}); pass a table name or a Parquet path/URL"),
        }
    };
    if known.as_deref() == Some(version.as_str()) {
        return Ok((version, None));
    }
    let df = if is_location(&name) {
        ctx.read_parquet(name.as_str(), ParquetReadOptions::default())
            .await
            .map_err(|e| {
                exec_datafusion_err!("{NAME}: argument 'centroids': cannot read '{name}': {e}")
            })?
    } else {
        ctx.table(name.as_str()).await?
    };
    let batches = df.collect().await?;
    Ok((version, Some(read_centroids(NAME, &name, &batches)?)))
}

/// Identity of a centroids file or folder: its listing (paths, sizes, modification times).
async fn file_version(ctx: &SessionContext, name: &str) -> Result<String> {
    let url = ListingTableUrl::parse(name).map_err(|e| {
        exec_datafusion_err!(
            "{NAME}: argument 'centroids': '{name}' is not a valid path or URL: {e}"
        )
    })?;
    let store = ctx.runtime_env().object_store(&url).map_err(|e| {
        exec_datafusion_err!("{NAME}: argument 'centroids': cannot open '{name}': {e}")
    })?;
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

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Nearest centroid of an embedding and the distance to it, under the centroids' metric \
         ('cosine': 1 − cos; 'l2': Euclidean). centroids names a registered table or a Parquet \
         file/folder path or URL (local or s3://) with the kmeans_fit schema (cluster ids unique, \
         centroids finite, one metric); it is read once per query. On a Ballista cluster only \
         paths and URLs work (executors have no session tables). Returns Struct{cluster Int32, \
         distance Float64}; NULL embedding gives NULL.",
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
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(output_fields()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_arity(NAME, args.arg_fields.len(), 2..=2, "embedding, centroids")?;
        check_type(args.arg_fields[0].data_type(), NAME, "embedding")?;
        match args.scalar_arguments.get(1) {
            Some(Some(v)) => {
                if literal_string(Some(v), NAME, "centroids")?.is_none() {
                    return plan_err!("{NAME}: argument 'centroids' must not be NULL");
                }
            }
            _ => check_text(NAME, "centroids", args.arg_fields[1].data_type())?,
        }
        Ok(Arc::new(Field::new(
            NAME,
            DataType::Struct(output_fields()),
            true,
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [embedding, centroids] = take_function_args(NAME, &args.args)?;
        let Some(name) = scalar_string(centroids, NAME, "centroids")? else {
            return exec_err!("{NAME}: argument 'centroids' must not be NULL");
        };
        let centroids = self.centroids(&name, &args.return_field)?;
        let array = embedding.to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(assign_array(
            &array, &centroids, &name,
        )?))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
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
                if row.len() != c.dim() {
                    return exec_err!(
                        "{NAME}: embedding dimension {} does not match the dimension {} of centroids '{name}'",
                        row.len(),
                        c.dim()
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
    // DataFusion already runs one partition per core: one thread here.
    let (labels, distances) = assign(x, c, 1);
    let mut cluster = Vec::with_capacity(n);
    let mut distance = Vec::with_capacity(n);
    let mut next = 0;
    for v in &valid {
        if *v {
            cluster.push(c.ids()[labels[next]]);
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
