//! samplemix: SampleMix (arXiv 2503.01506) per-sample data mixing as DataFusion SQL.
//!
//! This facade crate holds what the `samplemix` shell adds around `datafusion-cli`:
//! a session with all samplemix functions, `information_schema`, URL tables and S3 stores whose
//! retries and timeouts are bounded (so an unreachable endpoint fails in seconds, not minutes).
//! The SQL functions themselves live in [`samplemix_udfs`]; a plain DataFusion application only
//! needs [`register_all`].

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::context::SessionConfig;
use datafusion::execution::object_store::DefaultObjectStoreRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
use datafusion_cli::catalog::DynamicObjectStoreCatalog;
use datafusion_cli::functions::{
    ListFilesCacheFunc, MetadataCacheFunc, ParquetMetadataFunc, StatisticsCacheFunc,
};

pub use samplemix_udfs::{all_udafs, all_udfs, all_udtfs, all_udwfs, register_all};

#[cfg(feature = "ballista")]
pub mod cluster;
mod copy;
pub(crate) mod diagnose;
#[cfg(feature = "models")]
pub mod distill;
pub mod panics;
pub mod report;
pub(crate) mod s3;
pub mod script;
mod session;
mod store;
mod url_tables;
pub use diagnose::{find_corrupt_parquet, is_parquet_failure, parser_hint, subquery_hint};
pub use s3::{
    check_endpoint, check_env_credentials, check_env_endpoint, check_s3_location, S3Settings,
    SamplemixStoreRegistry,
};
pub use session::SamplemixContext;
pub use store::{GuardedStore, ReadTimeouts};

/// Version of the samplemix package.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The shell's memory pool size when `-m` is not given: 3/4 of the memory of this machine, or
/// of its cgroup when that is smaller (a container's limit); None when neither can be read.
pub fn default_memory_limit() -> Option<usize> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let total = read("/proc/meminfo").and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bytes = match (total, cgroup) {
        (Some(t), Some(c)) => t.min(c),
        (t, c) => t.or(c)?,
    };
    usize::try_from(bytes / 4 * 3).ok()
}

/// Session configuration the shell uses: `information_schema` on (so `SHOW FUNCTIONS` and
/// `information_schema.routines` describe our functions), NULL printed as `NULL` unless
/// `DATAFUSION_FORMAT_NULL` says otherwise (datafusion-cli's rule), and a
/// [`samplemix_udfs::StatementDeadline`] that `--query-timeout` sets for each statement.
pub fn session_config(mut config: SessionConfig) -> SessionConfig {
    if std::env::var_os("DATAFUSION_FORMAT_NULL").is_none() {
        config.options_mut().format.null = String::from("NULL");
    }
    config
        .with_information_schema(true)
        .with_extension(Arc::new(samplemix_udfs::StatementDeadline::default()))
}

/// A [`SessionContext`] with every samplemix function, URL tables (`SELECT * FROM 'file.parquet'`
/// or `'s3://bucket/key'`) and datafusion-cli's table functions `parquet_metadata()`,
/// `metadata_cache()`, `statistics_cache()` and `list_files_cache()`.
pub async fn new_context(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionContext> {
    configure(SessionContext::new_with_config_rt(config, runtime)).await
}

/// The scalar functions for a process that has no samplemix session to look tables up in (a
/// Ballista executor, a datafusion-python session across FFI): `embed`, `diversity_cluster`,
/// `quality_predict` and `fasttext_predict` read their model and centroid files by path or URL
/// through `runtime`'s object stores; every other function is [`all_udfs`]'s.
pub fn udfs_reading_through(runtime: Arc<RuntimeEnv>) -> Vec<Arc<ScalarUDF>> {
    use samplemix_udfs::functions::{
        diversity_cluster_udf, embed_udf, fasttext_predict_udf, quality_predict_udf, Source,
    };
    let bound = [
        embed_udf(Source::Runtime(Arc::clone(&runtime))),
        diversity_cluster_udf(Source::Runtime(Arc::clone(&runtime))),
        quality_predict_udf(Source::Runtime(Arc::clone(&runtime))),
        fasttext_predict_udf(Source::Runtime(runtime)),
    ];
    all_udfs()
        .into_iter()
        .map(|udf| {
            bound
                .iter()
                .find(|b| b.name() == udf.name())
                .map_or(udf, Arc::clone)
        })
        .collect()
}

/// [`udfs_reading_through`] a runtime whose S3 stores are built from the `AWS_*` environment
/// variables with the shell's bounded retries and timeouts ([`SamplemixStoreRegistry`]): what
/// the Python extension registers (it has no Ballista, and a foreign session's stores are not
/// reachable from our functions).
pub fn standalone_udfs() -> Vec<Arc<ScalarUDF>> {
    let registry = SamplemixStoreRegistry::new(
        Arc::new(DefaultObjectStoreRegistry::new()),
        S3Settings::default(),
    );
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(registry))
        .build_arc()
        .unwrap_or_else(|_| Arc::new(RuntimeEnv::default()));
    udfs_reading_through(runtime)
}

/// Add to `ctx` what [`new_context`] adds: the same for a local session and for a Ballista
/// client session (whose planning runs here).
pub async fn configure(ctx: SessionContext) -> Result<SessionContext> {
    let ctx = url_tables::enable_url_tables(ctx);
    ctx.refresh_catalogs().await?;
    // Registers object stores on first use of a URL table.
    ctx.register_catalog_list(Arc::new(DynamicObjectStoreCatalog::new(
        ctx.state().catalog_list().clone(),
        ctx.state_weak_ref(),
    )));
    // Ported from datafusion-cli 55.2 main.rs (keep in step on upgrades).
    ctx.register_udtf("parquet_metadata", Arc::new(ParquetMetadataFunc {}));
    let cache = ctx.task_ctx().runtime_env().cache_manager.clone();
    ctx.register_udtf(
        "metadata_cache",
        Arc::new(MetadataCacheFunc::new(Arc::clone(&cache))),
    );
    ctx.register_udtf(
        "statistics_cache",
        Arc::new(StatisticsCacheFunc::new(Arc::clone(&cache))),
    );
    ctx.register_udtf("list_files_cache", Arc::new(ListFilesCacheFunc::new(cache)));
    register_all(&ctx)?;
    Ok(ctx)
}
