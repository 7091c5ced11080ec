//! `samplemix-scheduler`: Apache Ballista's scheduler with every samplemix function registered.
//!
//! Ballista's own flags and defaults (`--bind-port 50050`, `--bind-host`, `--executor-timeout-seconds`,
//! ...; see `--help`). Plans arrive from `samplemix --remote df://HOST:PORT` clients; the
//! sessions built for them have the samplemix functions (so plans that call them deserialise
//! and plan here) and S3 stores configured by the client's `SET s3.*` or else by this
//! process's `AWS_*` environment.

use std::sync::Arc;

use ballista_core::error::BallistaError;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{Config, SchedulerConfig};
use ballista_scheduler::scheduler_process::start_server;
use clap::Parser;
use samplemix::cluster::{cluster_config, cluster_state, init_logging};

fn main() -> ballista_core::error::Result<()> {
    // Ballista's scheduler runs deep plan recursions: its binary uses 32 MB thread stacks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .map_err(|e| BallistaError::General(format!("cannot start the tokio runtime: {e}")))?;
    runtime.block_on(run())
}

async fn run() -> ballista_core::error::Result<()> {
    let opt = Config::parse();
    init_logging(
        &opt.log_level_setting,
        opt.log_dir.as_deref(),
        &format!(
            "scheduler_{}_{}_{}",
            opt.namespace, opt.external_host, opt.bind_port
        ),
        opt.log_rotation_policy,
        opt.print_thread_info,
    );
    let addr = format!("{}:{}", opt.bind_host, opt.bind_port)
        .parse()
        .map_err(|e: std::net::AddrParseError| BallistaError::Configuration(e.to_string()))?;
    let config: SchedulerConfig = opt.try_into()?;
    let config = config
        .with_override_config_producer(Arc::new(cluster_config))
        .with_override_session_builder(Arc::new(cluster_state));
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, addr, Arc::new(config)).await
}
