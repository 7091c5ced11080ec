//! samplemix on an Apache Ballista cluster (feature `ballista`).
//!
//! Plans travel between the client, the scheduler and the executors as datafusion-proto, where
//! a scalar or aggregate function is carried by its **name** and looked up in the receiving
//! process's own registry. So every role registers the same functions, built from nothing but
//! their names:
//!
//! - scalar, aggregate and window functions: [`samplemix_udfs::all_udfs`] / [`all_udafs`] /
//!   [`all_udwfs`]; the `diversity_cluster` among them reads centroids from Parquet paths or URLs (`s3://` with
//!   the process's `AWS_*` environment), since a table that lives in the client's session does
//!   not exist on an executor;
//! - table functions never travel: they are expanded on the client while planning
//!   (`kmeans_fit` and `samplemix_weights` return views over plain logical plans, which
//!   serialise like any query).
//!
//! [`cluster_state`] is what the scheduler and executor binaries and the in-process
//! standalone cluster build their sessions from; [`remote_context`] is the client side.

use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use ballista_core::object_store::{
    runtime_env_with_s3_support, session_config_with_s3_support, CustomObjectStoreRegistry,
    S3Options,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::{SessionConfig, SessionState};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{FunctionRegistry, SessionStateBuilder};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
use samplemix_udfs::{all_udafs, all_udwfs};

/// How long the client waits for the scheduler's port before giving up.
pub const SCHEDULER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The scalar functions every cluster process registers: [`crate::udfs_reading_through`]
/// Ballista's object store registry, which builds S3 stores from the process environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`) as Ballista's own executor does for table scans.
pub fn cluster_udfs() -> Vec<Arc<ScalarUDF>> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(CustomObjectStoreRegistry::new(
            S3Options::default(),
        )))
        .build_arc()
        .unwrap_or_else(|_| Arc::new(RuntimeEnv::default()));
    crate::udfs_reading_through(runtime)
}

/// The session of a scheduler or executor: DataFusion's defaults, S3 stores configured by
/// `SET s3.*` in the client's session or else by the process's `AWS_*` environment, and every
/// samplemix function. (The functions are registered one by one after the defaults: a
/// builder given a function list replaces DataFusion's built-ins, and a plan using `round`
/// would no longer deserialise.)
pub fn cluster_state(config: SessionConfig) -> Result<SessionState> {
    let config = with_s3_options(config);
    let runtime = runtime_env_with_s3_support(&config)?;
    let mut state = SessionStateBuilder::new()
        .with_runtime_env(runtime)
        .with_config(config)
        .with_default_features()
        .build();
    for udf in cluster_udfs() {
        state.register_udf(udf)?;
    }
    for udaf in all_udafs() {
        state.register_udaf(udaf)?;
    }
    for udwf in all_udwfs() {
        state.register_udwf(udwf)?;
    }
    Ok(state)
}

/// `config` with Ballista's `s3.*` settings (`SET s3.region = ...`), unless it has them already.
fn with_s3_options(config: SessionConfig) -> SessionConfig {
    if config.options().extensions.get::<S3Options>().is_some() {
        config
    } else {
        config.with_option_extension(S3Options::default())
    }
}

/// The session config a cluster process starts from (Ballista's, with `s3.*` settings).
pub fn cluster_config() -> SessionConfig {
    session_config_with_s3_support()
}

/// A client session that plans here and executes on the Ballista scheduler at `url`
/// (`df://HOST:PORT`), with `config` and `runtime` (the client's own object stores: it reads
/// file metadata while planning). The scheduler must answer on its port within
/// [`SCHEDULER_CONNECT_TIMEOUT`]. The caller adds the client-side functions
/// ([`crate::new_context`] does it for the shell).
pub async fn remote_session(
    url: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionContext> {
    let (host, port) = scheduler_address(url)?;
    check_reachable(url, &host, port).await?;
    let config = with_s3_options(config);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    SessionContext::remote_with_state(url, state).await
}

/// Host and port of a `df://HOST:PORT` URL (port 50050 when left out, as in Ballista).
pub fn scheduler_address(url: &str) -> Result<(String, u16)> {
    let bad = |why: &str| {
        DataFusionError::Configuration(format!(
            "--remote '{url}': {why}; expected df://HOST:PORT, e.g. df://127.0.0.1:50050"
        ))
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "df" {
        return Err(bad(&format!("scheme '{}' is not df", parsed.scheme())));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    Ok((host.to_string(), parsed.port().unwrap_or(50050)))
}

async fn check_reachable(url: &str, host: &str, port: u16) -> Result<()> {
    let attempt = tokio::time::timeout(
        SCHEDULER_CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await;
    let why = match attempt {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} s", SCHEDULER_CONNECT_TIMEOUT.as_secs()),
    };
    Err(DataFusionError::Configuration(format!(
        "cannot reach the Ballista scheduler at {url} ({why}); start samplemix-scheduler there, or check the host and port given to --remote"
    )))
}

/// An in-process Ballista cluster (a scheduler and an executor on loopback ports, Ballista's
/// `standalone_with_state`) with every samplemix function on all roles, and a client session
/// on it with the client-side functions registered. For tests and trying things out.
pub async fn standalone_context(config: SessionConfig) -> Result<SessionContext> {
    let state = cluster_state(config)?;
    let ctx = SessionContext::standalone_with_state(state).await?;
    // The returned client does not carry the state's functions.
    crate::configure(ctx).await
}

/// Logging of the scheduler and executor binaries, as Ballista's own binaries do it: `RUST_LOG`
/// or else `default_filter`, to stdout, or to files rotated by `rotation` under `log_dir`.
pub fn init_logging(
    default_filter: &str,
    log_dir: Option<&str>,
    file_prefix: &str,
    rotation: ballista_core::config::LogRotationPolicy,
    thread_info: bool,
) {
    use ballista_core::config::LogRotationPolicy;
    use tracing_subscriber::EnvFilter;

    let filter = EnvFilter::new(
        std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| default_filter.to_string()),
    );
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_thread_names(thread_info)
        .with_thread_ids(thread_info)
        .with_env_filter(filter);
    match log_dir {
        Some(dir) => {
            let appender = match rotation {
                LogRotationPolicy::Minutely => {
                    tracing_appender::rolling::minutely(dir, file_prefix)
                }
                LogRotationPolicy::Hourly => tracing_appender::rolling::hourly(dir, file_prefix),
                LogRotationPolicy::Daily => tracing_appender::rolling::daily(dir, file_prefix),
                LogRotationPolicy::Never => tracing_appender::rolling::never(dir, file_prefix),
            };
            builder.with_writer(appender).init();
        }
        None => builder.with_writer(std::io::stdout).init(),
    }
}
