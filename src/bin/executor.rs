//! `samplemix-executor`: Apache Ballista's executor with every samplemix function registered.
//!
//! Ballista's own flags and defaults (`--scheduler-host`, `--scheduler-port`, `--bind-port`,
//! `--bind-grpc-port`, `--bind-health-port`, `--concurrent-tasks`, ...; see `--help`). S3 is
//! read and written with the client's `SET s3.*` settings where given, else with this
//! process's `AWS_*` environment; `diversity_cluster` reads centroid files with the
//! environment.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::error::BallistaError;
use ballista_core::object_store::runtime_env_with_s3_support;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::config::Config;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_executor::health::spawn_health_server;
use clap::Parser;
use samplemix::cluster::{cluster_config, cluster_state, init_logging};

fn main() -> ballista_core::error::Result<()> {
    // 32 MB stacks like Ballista's scheduler: plan (de)serialisation and execution recurse
    // over deep plans (the weights view), which outgrow the 2 MB default in debug builds.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .map_err(|e| BallistaError::General(format!("cannot start the tokio runtime: {e}")))?
        .block_on(run())
}

async fn run() -> ballista_core::error::Result<()> {
    let opt = Config::parse();
    let health_addr: SocketAddr = format!("{}:{}", opt.bind_host, opt.bind_health_port)
        .parse()
        .map_err(|e| BallistaError::General(format!("invalid --bind-health-port address: {e}")))?;

    let mut config: ExecutorProcessConfig = opt.try_into()?;
    let state = cluster_state(cluster_config())
        .map_err(|e| BallistaError::General(format!("cannot build the function registry: {e}")))?;
    config.override_function_registry = Some(Arc::new(BallistaFunctionRegistry::from(&state)));
    config.override_config_producer = Some(Arc::new(cluster_config));
    config.override_runtime_producer = Some(Arc::new(runtime_env_with_s3_support));
    init_logging(
        &config.special_mod_log_level,
        config.log_dir.as_deref(),
        &config.log_file_name_prefix(),
        config.log_rotation_policy,
        config.print_thread_info,
    );

    // Liveness (/healthz) and readiness (/readyz) probes, as Ballista's executor binary serves.
    let (stop_health, health_stopped) = tokio::sync::oneshot::channel();
    let health = spawn_health_server(health_addr, config.health.clone(), health_stopped);
    let result = start_executor_process(Arc::new(config)).await;
    let _ = stop_health.send(());
    if let Err(e) = health.await {
        eprintln!("samplemix-executor: health server task: {e}");
    }
    result
}
