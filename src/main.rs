//! The `samplemix` shell: datafusion-cli's REPL, `-c` and `-f`, with every samplemix function.
//!
//! PORTED from datafusion-cli 55.2.0 `src/main.rs` (diff these against it on every DataFusion
//! upgrade): the `Args` options shared with datafusion-cli, the runtime set-up in `main_inner`
//! (memory pool, disk manager, instrumented object stores), the mimalloc global allocator,
//! `session_config` (explain format, NULL display) and the `parse_*` / `extract_*` argument
//! parsers. Ours: the S3 options and
//! store registry, `exec_file` (stops at the first error), `register_fit_progress`.

use std::num::NonZeroUsize;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionConfig;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryPool, TrackConsumersPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::ExplainFormat;
use datafusion_cli::exec;
use datafusion_cli::object_storage::instrumented::{
    InstrumentedObjectStoreMode, InstrumentedObjectStoreRegistry,
};
use datafusion_cli::pool_type::PoolType;
use datafusion_cli::print_format::PrintFormat;
use mimalloc::MiMalloc;

// As datafusion-cli and datafusion-python: with glibc's allocator every large tensor of a
// transformer `embed` went back to the kernel and page faults cost a quarter of its speed
// (BENCHMARKS.md "Semantic embeddings").
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;
use datafusion_cli::print_options::{MaxRows, PrintOptions};
use samplemix::script::{exec_file, parse_var, run_statement, substitute};
use samplemix::{S3Settings, SamplemixContext, SamplemixStoreRegistry};

#[derive(Debug, Parser)]
#[clap(
    name = "samplemix",
    version,
    about = "SampleMix per-sample pre-training data mixing as SQL (DataFusion shell with samplemix functions)",
    long_about = None
)]
struct Args {
    #[clap(
        short = 'p',
        long,
        help = "Path to your data, default to current directory",
        value_parser(parse_valid_data_dir)
    )]
    data_path: Option<String>,

    #[clap(
        short = 'b',
        long,
        help = "The batch size of each query, or use DataFusion default",
        value_parser(parse_batch_size)
    )]
    batch_size: Option<usize>,

    #[clap(short = 'c', long, num_args = 0.., help = "Execute the given SQL string(s), then exit. Repeatable.", value_parser(parse_command))]
    command: Vec<String>,

    #[clap(
        short = 'm',
        long,
        help = "The memory pool limitation (e.g. '10g'); default: 3/4 of the memory this machine (or its cgroup) has, in a fair spill pool",
        value_parser(extract_memory_pool_size)
    )]
    memory_limit: Option<usize>,

    #[clap(short, long, num_args = 0.., help = "Execute SQL from file(s), then exit. Stops at the first failing statement.", value_parser(parse_valid_file))]
    file: Vec<String>,

    #[clap(short = 'r', long, num_args = 0.., help = "Run the provided files on startup instead of ~/.samplemixrc", value_parser(parse_valid_file), conflicts_with = "file")]
    rc: Option<Vec<String>>,

    #[clap(long, value_enum, default_value_t = PrintFormat::Automatic)]
    format: PrintFormat,

    #[clap(
        short,
        long,
        help = "Reduce printing other than the results and work quietly"
    )]
    quiet: bool,

    #[clap(
        long,
        help = "Specify the memory pool type 'greedy' or 'fair' (default: fair)"
    )]
    mem_pool_type: Option<PoolType>,

    #[clap(
        long,
        help = "The number of top memory consumers to display when query fails due to memory exhaustion. To disable memory consumer tracking, set this value to 0",
        default_value = "3"
    )]
    top_memory_consumers: usize,

    #[clap(
        long,
        help = "The max number of rows to display for 'Table' format\n[possible values: numbers(0/10/...), inf(no limit)]",
        default_value = "40"
    )]
    maxrows: MaxRows,

    #[clap(long, help = "Enables console syntax highlighting")]
    color: bool,

    #[clap(
        short = 'd',
        long,
        help = "Available disk space for spilling queries (e.g. '10g'), default to None (uses DataFusion's default value of '100g')",
        value_parser(extract_disk_limit)
    )]
    disk_limit: Option<usize>,

    #[clap(long, help = "Specify the default object_store_profiling mode, defaults to 'disabled'.\n[possible values: disabled, summary, trace]", default_value_t = InstrumentedObjectStoreMode::Disabled)]
    object_store_profiling: InstrumentedObjectStoreMode,

    #[clap(long, help = "Retries of a failed S3 request", default_value_t = S3Settings::default().max_retries)]
    s3_max_retries: usize,

    #[clap(long, help = "Seconds after the first attempt of an S3 request after which no retry starts", default_value_t = S3Settings::default().retry_timeout.as_secs_f64())]
    s3_retry_timeout: f64,

    #[clap(long, help = "Seconds allowed to connect to an S3 endpoint", default_value_t = S3Settings::default().connect_timeout.as_secs_f64())]
    s3_connect_timeout: f64,

    #[clap(long, help = "Seconds from an S3 request to the first byte of its answer; a silent request is tried again (--s3-max-retries)", default_value_t = S3Settings::default().first_byte_timeout.as_secs_f64())]
    s3_first_byte_timeout: f64,

    #[clap(long, help = "Seconds an S3 read may receive no byte before it resumes where it stopped", default_value_t = S3Settings::default().idle_timeout.as_secs_f64())]
    s3_idle_timeout: f64,

    #[clap(long, help = "Seconds one S3 HTTP request may take, connection to last byte (bounds uploads; longer reads resume)", default_value_t = S3Settings::default().request_timeout.as_secs_f64())]
    s3_request_timeout: f64,

    #[clap(
        long,
        value_name = "df://HOST:PORT",
        help = "Plan here and execute on the Ballista scheduler at this URL (needs a build with --features ballista)"
    )]
    remote: Option<String>,

    #[clap(
        long,
        value_name = "SECONDS",
        help = "Give up on a statement of -c or -f that runs longer than this (default: no limit). With --remote the client stops waiting; the scheduler may still run the job."
    )]
    query_timeout: Option<f64>,

    #[clap(
        long = "var",
        value_name = "NAME=VALUE",
        num_args = 1,
        help = "Replace ${NAME} by VALUE in the SQL of -f files and -c commands. Repeatable.",
        value_parser(parse_var)
    )]
    vars: Vec<(String, String)>,

    #[clap(subcommand)]
    subcommand: Option<Subcommand>,
}

#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Write one self-contained HTML page (charts and tables) about the mix whose Parquet
    /// outputs sql/pipeline.sql wrote under WORK, and print its path.
    Report {
        /// The work folder that sql/pipeline.sql wrote (--var work=...): a local path or an s3:// prefix
        work: String,
        /// Where to write the page (default: WORK/report.html); an existing file there is replaced only if it is a samplemix report
        #[clap(short = 'o', long = "output", value_name = "FILE")]
        output: Option<String>,
    },
    /// Distil a sentence-transformers model (local folder) into a static model in Model2Vec's
    /// format that `embed(text, 'OUT_DIR')` and the model2vec Python package load.
    #[cfg(feature = "models")]
    Distill {
        /// Folder of a sentence-transformers BERT-family model (config.json, tokenizer.json, model.safetensors)
        model_dir: String,
        /// Folder to write config.json, tokenizer.json and model.safetensors into (must not hold them already)
        out_dir: String,
        /// Dimension of the static vectors (PCA), at most the model's hidden size
        #[clap(long, default_value_t = 256)]
        dim: usize,
        /// Store the vectors as f16 (half the size) instead of f32
        #[clap(long)]
        f16: bool,
    },
}

/// Re-register `kmeans_fit` so that it draws a progress bar on stderr while it fits (an
/// interactive terminal only: scripts and pipes get clean output). The library reports
/// progress through a callback and never draws anything itself.
fn register_fit_progress(ctx: &datafusion::prelude::SessionContext) {
    use std::io::IsTerminal;
    use std::sync::{Mutex, PoisonError};

    use indicatif::{ProgressBar, ProgressStyle};
    use samplemix_udfs::functions::{FitEvent, FitProgress, KmeansFit};

    if !std::io::stderr().is_terminal() {
        return;
    }
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    let progress: FitProgress = Arc::new(move |event| {
        let mut slot = bar.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            FitEvent::Started { k, rows, max_iter } => {
                let pb = ProgressBar::new(max_iter as u64)
                    .with_message(format!("kmeans_fit: k={k} on {rows} sampled rows"));
                if let Ok(style) =
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} iterations")
                {
                    pb.set_style(style);
                }
                *slot = Some(pb);
            }
            FitEvent::Iteration(i) => {
                if let Some(pb) = slot.as_ref() {
                    pb.set_position(i as u64);
                }
            }
            FitEvent::Finished => {
                if let Some(pb) = slot.take() {
                    pb.finish_and_clear();
                }
            }
            _ => {}
        }
    });
    ctx.register_udtf("kmeans_fit", Arc::new(KmeansFit::with_progress(progress)));
}

fn main() -> ExitCode {
    samplemix::panics::install();
    // The statements run on this thread: a large stack, as Ballista's scheduler binary uses,
    // because planning recurses over plan and expression trees (the weights view, a remote
    // plan's encoding, an expression nested MAX_EXPRESSION_DEPTH deep) and outgrows the 8 MB
    // of a main thread. The memory is reserved, not used, until a deep plan needs it.
    let shell = std::thread::Builder::new()
        .name("samplemix".to_string())
        .stack_size(STACK_SIZE)
        .spawn(run_shell);
    match shell.map(|handle| handle.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => {
            eprintln!(
                "Error: the shell stopped on an internal error: {}",
                samplemix::panics::last_message()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("Error: cannot start the shell's thread: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Stack of the shell's thread and of the runtime's workers.
const STACK_SIZE: usize = 256 * 1024 * 1024;

fn run_shell() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(main_inner());
    // near_duplicates' steps in the temporary folder (results read from there are gone too).
    samplemix_udfs::remove_local_work();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn main_inner() -> Result<()> {
    // Logging as in datafusion-cli: RUST_LOG=info (or debug, ...) to stderr.
    env_logger::init();
    samplemix::check_env_endpoint()?;
    samplemix::check_env_credentials()?;
    let args = parse_args();
    if !args.quiet && args.subcommand.is_none() {
        println!(
            "samplemix v{} (DataFusion CLI v{})",
            samplemix::VERSION,
            datafusion_cli::DATAFUSION_CLI_VERSION
        );
    }
    #[cfg(feature = "models")]
    if let Some(Subcommand::Distill {
        model_dir,
        out_dir,
        dim,
        f16,
    }) = &args.subcommand
    {
        println!(
            "{}",
            samplemix::distill::distill(model_dir, out_dir, *dim, *f16)?
        );
        return Ok(());
    }
    if let Some(path) = &args.data_path {
        std::env::set_current_dir(path)
            .map_err(|e| DataFusionError::Execution(format!("--data-path '{path}': {e}")))?;
    }

    let mut s3 = S3Settings::default();
    s3.max_retries = args.s3_max_retries;
    s3.retry_timeout = seconds("--s3-retry-timeout", args.s3_retry_timeout)?;
    s3.connect_timeout = seconds("--s3-connect-timeout", args.s3_connect_timeout)?;
    s3.first_byte_timeout = seconds("--s3-first-byte-timeout", args.s3_first_byte_timeout)?;
    s3.idle_timeout = seconds("--s3-idle-timeout", args.s3_idle_timeout)?;
    s3.request_timeout = seconds("--s3-request-timeout", args.s3_request_timeout)?;

    let mut rt = RuntimeEnvBuilder::new();
    // Without -m, datafusion-cli's pool is unbounded: one large query could take all of a
    // laptop's memory. samplemix bounds it by default, and -m overrides. The pool is fair
    // with or without -m (datafusion-cli's is greedy with -m): under a greedy pool the first
    // operators to ask keep what they took, so a sort after a repartition found no memory
    // for its merge and failed where a fair pool spills (10M rows of systematic rounding
    // under -m 512M, BENCHMARKS.md).
    let limit = args.memory_limit.or_else(samplemix::default_memory_limit);
    let pool_type = args.mem_pool_type.clone().unwrap_or(PoolType::Fair);
    if let Some(limit) = limit {
        let consumers = NonZeroUsize::new(args.top_memory_consumers);
        let pool: Arc<dyn MemoryPool> = match (&pool_type, consumers) {
            (PoolType::Fair, None) => Arc::new(FairSpillPool::new(limit)),
            (PoolType::Fair, Some(n)) => {
                Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), n))
            }
            (PoolType::Greedy, None) => Arc::new(GreedyMemoryPool::new(limit)),
            (PoolType::Greedy, Some(n)) => {
                Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(limit), n))
            }
        };
        rt = rt.with_memory_pool(pool);
    }
    if let Some(limit) = args.disk_limit {
        rt = rt.with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::OsTmpDirectory)
                .with_max_temp_directory_size(limit as u64),
        );
    }
    let instrumented = Arc::new(
        InstrumentedObjectStoreRegistry::new().with_profile_mode(args.object_store_profiling),
    );
    rt = rt.with_object_store_registry(Arc::new(SamplemixStoreRegistry::new(
        instrumented.clone(),
        s3,
    )));

    let config = session_config(&args)?;
    let ctx = match &args.remote {
        None => samplemix::new_context(config, rt.build_arc()?).await?,
        Some(url) => remote_context(url, config, rt.build_arc()?).await?,
    };
    register_fit_progress(&ctx);
    let ctx = SamplemixContext::new(ctx, s3).with_remote(args.remote.is_some());

    if let Some(Subcommand::Report { work, output }) = &args.subcommand {
        let written = samplemix::report::report(ctx.inner(), work, output.as_deref()).await?;
        println!("{written}");
        return Ok(());
    }

    let mut print_options = PrintOptions {
        format: args.format,
        quiet: args.quiet,
        maxrows: args.maxrows,
        color: args.color,
        instrumented_registry: instrumented,
    };

    if args.command.is_empty() && args.file.is_empty() {
        let rc = args.rc.unwrap_or_else(|| {
            dirs::home_dir()
                .map(|home| home.join(".samplemixrc"))
                .filter(|p| p.exists())
                .map(|p| p.to_string_lossy().into_owned())
                .into_iter()
                .collect()
        });
        for file in &rc {
            exec_file(&ctx, file, &args.vars, None, &print_options).await?;
        }
        return exec::exec_from_repl(&ctx, &mut print_options)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)));
    }
    let limit = args
        .query_timeout
        .map(|s| seconds("--query-timeout", s))
        .transpose()?;
    for file in &args.file {
        exec_file(&ctx, file, &args.vars, limit, &print_options).await?;
    }
    for command in &args.command {
        let sql = substitute(command, &args.vars).map_err(|e| e.context("in -c"))?;
        run_statement(&ctx, &sql, limit, &print_options).await?;
    }
    Ok(())
}

#[cfg(feature = "ballista")]
async fn remote_context(
    url: &str,
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<datafusion::prelude::SessionContext> {
    let ctx = samplemix::cluster::remote_session(url, config, runtime).await?;
    samplemix::configure(ctx).await
}

#[cfg(not(feature = "ballista"))]
async fn remote_context(
    url: &str,
    _config: SessionConfig,
    _runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<datafusion::prelude::SessionContext> {
    Err(DataFusionError::Configuration(format!(
        "--remote {url}: this samplemix was built without Ballista support; build it with cargo build --release --features ballista"
    )))
}

fn session_config(args: &Args) -> Result<SessionConfig> {
    let mut options = ConfigOptions::from_env()?;
    if let Some(batch_size) = args.batch_size {
        options.execution.batch_size =
            datafusion::common::config::ConfigNonZeroUsize::try_new(batch_size)?;
    }
    if std::env::var_os("DATAFUSION_EXPLAIN_FORMAT").is_none() {
        options.explain.format = ExplainFormat::Tree;
    }
    Ok(samplemix::session_config(SessionConfig::from(options)))
}

/// The arguments, with the default memory limit of this machine in `--help`.
fn parse_args() -> Args {
    use clap::{CommandFactory, FromArgMatches};
    let default = samplemix::default_memory_limit().map_or("unknown here".to_string(), |b| {
        format!("{:.1} GiB here", b as f64 / (1u64 << 30) as f64)
    });
    let command = Args::command().mut_arg("memory_limit", |a| {
        a.help(format!(
            "The memory pool limitation (e.g. '10g'); default: 3/4 of the memory this machine (or its cgroup) has ({default}), in a fair spill pool"
        ))
    });
    let matches = command.get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn seconds(flag: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        DataFusionError::Configuration(format!(
            "{flag} expects a non-negative number of seconds, got {value}"
        ))
    })
}

fn parse_valid_file(path: &str) -> std::result::Result<String, String> {
    if Path::new(path).is_file() {
        Ok(path.to_string())
    } else {
        Err(format!("Invalid file '{path}': no such file"))
    }
}

fn parse_valid_data_dir(dir: &str) -> std::result::Result<String, String> {
    if Path::new(dir).is_dir() {
        Ok(dir.to_string())
    } else {
        Err(format!("Invalid data directory '{dir}'"))
    }
}

fn parse_batch_size(size: &str) -> std::result::Result<usize, String> {
    match size.parse::<usize>() {
        Ok(size) if size > 0 => Ok(size),
        _ => Err(format!("Invalid batch size '{size}'")),
    }
}

fn parse_command(command: &str) -> std::result::Result<String, String> {
    if command.is_empty() {
        Err("-c flag expects only non empty commands".to_string())
    } else {
        Ok(command.to_string())
    }
}

fn parse_size(size: &str, label: &str) -> std::result::Result<usize, String> {
    let lower = size.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, suffix) = lower.split_at(split);
    let number: usize = digits
        .parse()
        .map_err(|_| format!("Invalid {label} '{size}'"))?;
    let shift = match suffix {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        "t" | "tb" => 40,
        _ => return Err(format!("Invalid {label} '{size}'")),
    };
    number
        .checked_mul(1usize << shift)
        .ok_or_else(|| format!("{label} '{size}' is too large"))
}

fn extract_memory_pool_size(size: &str) -> std::result::Result<usize, String> {
    parse_size(size, "memory pool size")
}

fn extract_disk_limit(size: &str) -> std::result::Result<usize, String> {
    parse_size(size, "disk limit")
}
