//! What a scalar function reads once per query from a name in its arguments: `diversity_cluster`'s
//! centroids, `quality_predict`'s model table, `fasttext_predict`'s model file.
//!
//! A query is recognised by the return field DataFusion builds when it plans the call (one `Arc`
//! per planned query, shared by all its partitions); a new query checks whether the table (its
//! identity) or the files (their listing: paths, sizes, modification times) changed before
//! reusing what it cached, so a replaced table or file is never served stale and a query never
//! pays more than one check.
//!
//! Where things are read from is a [`Source`]: the session that registered the function (table
//! names and every object store of that session), or a bare runtime (paths and URLs only): the
//! form every process of a Ballista cluster can build from the function's name.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use parking_lot::RwLock;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::{exec_datafusion_err, exec_err};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::object_store::ObjectStoreExt;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::TryStreamExt;

use crate::args::block_on_helper;
use crate::io::is_location;

/// Where a function reads the tables and files its arguments name.
#[derive(Clone)]
#[non_exhaustive]
pub enum Source {
    /// The session that registered the function: registered tables, and paths or URLs through
    /// that session's object stores (what `register_all` uses).
    Session(Weak<RwLock<SessionState>>),
    /// A runtime without a session: paths or URLs through its object stores only. This is what
    /// a process that only knows the function's name can build (Ballista schedulers and
    /// executors, `all_udfs()`).
    Runtime(Arc<RuntimeEnv>),
}

impl Source {
    /// The source reading through `ctx`.
    pub fn session(ctx: &SessionContext) -> Self {
        Source::Session(ctx.state_weak_ref())
    }

    /// A source with a default runtime (local files; the object stores a default runtime has).
    pub fn runtime() -> Self {
        Source::Runtime(Arc::new(RuntimeEnv::default()))
    }

    fn context(&self, function: &str) -> Result<SessionContext> {
        match self {
            Source::Session(weak) => {
                let state = weak.upgrade().ok_or_else(|| {
                    exec_datafusion_err!(
                        "{function}: the session that registered this function is gone"
                    )
                })?;
                let state = state.read().clone();
                Ok(SessionContext::new_with_state(state))
            }
            Source::Runtime(rt) => Ok(SessionContext::new_with_config_rt(
                SessionConfig::new(),
                Arc::clone(rt),
            )),
        }
    }

    /// Identity of the source, for the `PartialEq`/`Hash` of the functions holding one.
    pub(crate) fn key(&self) -> usize {
        match self {
            Source::Session(w) => w.as_ptr() as *const u8 as usize,
            Source::Runtime(rt) => Arc::as_ptr(rt) as *const u8 as usize,
        }
    }
}

/// `Debug`, `PartialEq`, `Eq` and `Hash` of a scalar function holding a [`Loaded`] in field
/// `$field`: two instances are the same function when they read through the same source.
macro_rules! source_identity {
    ($ty:ident, $name:expr, $field:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.$field.source().key() == other.$field.source().key()
            }
        }
        impl Eq for $ty {}
        impl std::hash::Hash for $ty {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                $name.hash(state);
                self.$field.source().key().hash(state);
            }
        }
    };
}
pub(crate) use source_identity;

/// How a folder's files `(name, [(relative name, bytes)])` become a `T`.
pub(crate) type DirParse<T> = fn(&str, Vec<(String, Vec<u8>)>) -> Result<T>;

/// How a named thing becomes a `T`.
pub(crate) enum Parse<T> {
    /// A table (registered, or Parquet at a path/URL): `(name, batches)`.
    Table(fn(&str, &[RecordBatch]) -> Result<T>),
    /// One file's bytes at a path/URL (table names are refused): `(name, bytes)`. The bytes
    /// are handed over, so a large model can keep them instead of copying them.
    File(fn(&str, Vec<u8>) -> Result<T>),
    /// Some files of a folder at a path/URL, by name relative to it (those of the list that
    /// exist): `(name, files)`.
    Dir(&'static [&'static str], DirParse<T>),
}

// Manual impls: a derive would ask `T: Copy`, and these are only function pointers.
impl<T> Clone for Parse<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Parse<T> {}

/// One cached value: its name, the version it was read at, and the query that last used it.
struct Cached<T> {
    name: String,
    version: String,
    query: Weak<Field>,
    value: Arc<T>,
}

/// A per-function cache of the value read from the name in argument `argument`.
pub(crate) struct Loaded<T> {
    function: &'static str,
    argument: &'static str,
    source: Source,
    parse: Parse<T>,
    /// The last few names read (a query may use two models or centroid tables at once).
    cache: Mutex<Vec<Cached<T>>>,
}

/// Names a function keeps read at once; the least recently used one is dropped beyond.
const CACHED_NAMES: usize = 4;

impl<T: Send + Sync + 'static> Loaded<T> {
    pub(crate) fn new(
        function: &'static str,
        argument: &'static str,
        source: Source,
        parse: Parse<T>,
    ) -> Self {
        Self {
            function,
            argument,
            source,
            parse,
            cache: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// The value named `name` for the query identified by `query`. The I/O (a version check,
    /// and a read when the version changed) runs on a helper runtime: scalar functions are
    /// synchronous, and DataFusion 55's async scalar functions cannot carry documentation or
    /// custom type checks.
    pub(crate) fn get(&self, name: &str, query: &FieldRef) -> Result<Arc<T>> {
        let known = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            match cache.iter().find(|c| c.name == name) {
                Some(c) if Weak::ptr_eq(&c.query, &Arc::downgrade(query)) => {
                    return Ok(Arc::clone(&c.value))
                }
                Some(c) => Some(c.version.clone()),
                None => None,
            }
        };
        let (source, owned) = (self.source.clone(), name.to_string());
        let (function, argument, parse) = (self.function, self.argument, self.parse);
        let (version, fresh) = block_on_helper(function, async move {
            load(function, argument, source, parse, owned, known).await
        })?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let at = cache.iter().position(|c| c.name == name);
        let value = match (fresh, at.map(|i| &mut cache[i])) {
            (None, Some(c)) if c.version == version => {
                c.query = Arc::downgrade(query);
                let value = Arc::clone(&c.value);
                // Most recently used last.
                let entry = cache.remove(at.unwrap_or_default());
                cache.push(entry);
                return Ok(value);
            }
            (Some(v), _) => Arc::new(v),
            (None, _) => {
                return Err(crate::error::internal(
                    function,
                    format!("'{name}' vanished from the cache"),
                ))
            }
        };
        cache.retain(|c| c.name != name);
        if cache.len() >= CACHED_NAMES {
            cache.remove(0);
        }
        cache.push(Cached {
            name: name.to_string(),
            version,
            query: Arc::downgrade(query),
            value: Arc::clone(&value),
        });
        Ok(value)
    }
}

/// The version of `name`, and its parsed value unless that version is `known` (cached).
async fn load<T>(
    function: &str,
    argument: &str,
    source: Source,
    parse: Parse<T>,
    name: String,
    known: Option<String>,
) -> Result<(String, Option<T>)> {
    let ctx = source.context(function)?;
    let table = matches!(parse, Parse::Table(_));
    let version = if is_location(&name) || !table {
        file_version(&ctx, &name, function, argument).await?
    } else {
        if matches!(source, Source::Runtime(_)) {
            return exec_err!(
                "{function}: argument '{argument}': '{name}' is a table name, but this instance of the function has no session to look tables up in (it is a Ballista scheduler or executor, or comes from all_udfs()); pass a Parquet file or folder path or URL, e.g. COPY the table TO 's3://bucket/{name}.parquet' first"
            );
        }
        match ctx.table_provider(name.as_str()).await {
            Ok(provider) => format!("table@{:p}", Arc::as_ptr(&provider)),
            Err(e) => return exec_err!("{function}: argument '{argument}': no table '{name}' ({e}); pass a table name or a Parquet path/URL"),
        }
    };
    if known.as_deref() == Some(version.as_str()) {
        return Ok((version, None));
    }
    let value = match parse {
        Parse::Table(parse) => {
            let df = if is_location(&name) {
                ctx.read_parquet(name.as_str(), ParquetReadOptions::default())
                    .await
                    .map_err(|e| {
                        exec_datafusion_err!(
                            "{function}: argument '{argument}': cannot read '{name}': {e}"
                        )
                    })?
            } else {
                ctx.table(name.as_str()).await?
            };
            parse(&name, &df.collect().await?)?
        }
        Parse::File(parse) => parse(&name, read_file(&ctx, &name, function, argument).await?)?,
        Parse::Dir(wanted, parse) => parse(
            &name,
            read_dir(&ctx, &name, wanted, function, argument).await?,
        )?,
    };
    Ok((version, Some(value)))
}

fn store_of(
    ctx: &SessionContext,
    name: &str,
    function: &str,
    argument: &str,
) -> Result<(
    ListingTableUrl,
    Arc<dyn datafusion::object_store::ObjectStore>,
)> {
    let url = ListingTableUrl::parse(name).map_err(|e| {
        exec_datafusion_err!(
            "{function}: argument '{argument}': '{name}' is not a valid path or URL: {e}"
        )
    })?;
    let store = ctx.runtime_env().object_store(&url).map_err(|e| {
        exec_datafusion_err!(
            "{function}: argument '{argument}': cannot open '{name}': {}",
            e.strip_backtrace()
        )
    })?;
    Ok((url, store))
}

/// All bytes of the one file at `name`.
async fn read_file(
    ctx: &SessionContext,
    name: &str,
    function: &str,
    argument: &str,
) -> Result<Vec<u8>> {
    let (url, store) = store_of(ctx, name, function, argument)?;
    let bytes = async { store.get(url.prefix()).await?.bytes().await }
        .await
        .map_err(|e| {
            exec_datafusion_err!("{function}: argument '{argument}': cannot read '{name}': {e}")
        })?;
    // Without a copy when the store's buffer is not shared (a local file is read into one).
    Ok(Vec::from(bytes))
}

/// Every object under `url`'s prefix.
async fn list(
    store: &Arc<dyn datafusion::object_store::ObjectStore>,
    url: &ListingTableUrl,
    name: &str,
    function: &str,
    argument: &str,
) -> Result<Vec<datafusion::object_store::ObjectMeta>> {
    store
        .list(Some(url.prefix()))
        .try_collect()
        .await
        .map_err(|e| {
            exec_datafusion_err!("{function}: argument '{argument}': cannot list '{name}': {e}")
        })
}

/// The files of folder `name` whose names relative to it are in `wanted`.
async fn read_dir(
    ctx: &SessionContext,
    name: &str,
    wanted: &[&str],
    function: &str,
    argument: &str,
) -> Result<Vec<(String, Vec<u8>)>> {
    let (url, store) = store_of(ctx, name, function, argument)?;
    let prefix = url.prefix().as_ref().trim_end_matches('/').to_string();
    let files = list(&store, &url, name, function, argument).await?;
    let mut out = Vec::new();
    for meta in files {
        let relative = meta
            .location
            .as_ref()
            .strip_prefix(prefix.as_str())
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or_default();
        if !wanted.contains(&relative) {
            continue;
        }
        let bytes = async { store.get(&meta.location).await?.bytes().await }
            .await
            .map_err(|e| {
                exec_datafusion_err!(
                    "{function}: argument '{argument}': cannot read '{name}/{relative}': {e}"
                )
            })?;
        out.push((relative.to_string(), Vec::from(bytes)));
    }
    Ok(out)
}

/// Identity of a file or folder: its listing (paths, sizes, modification times).
async fn file_version(
    ctx: &SessionContext,
    name: &str,
    function: &str,
    argument: &str,
) -> Result<String> {
    let (url, store) = store_of(ctx, name, function, argument)?;
    // A single file answers HEAD; a folder is listed.
    if let Ok(meta) = store.head(url.prefix()).await {
        return Ok(format!(
            "{}:{}:{}",
            meta.location, meta.size, meta.last_modified
        ));
    }
    let files = list(&store, &url, name, function, argument).await?;
    if files.is_empty() {
        return exec_err!("{function}: argument '{argument}': no file at '{name}'");
    }
    Ok(files
        .iter()
        .map(|m| format!("{}:{}:{}", m.location, m.size, m.last_modified))
        .collect::<Vec<_>>()
        .join("|"))
}
