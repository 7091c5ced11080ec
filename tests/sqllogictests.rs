//! Runs every `sql/*.slt` file with all samplemix functions registered.
//!
//! Regenerate expected results after an intended change with
//! `SAMPLEMIX_SLT_COMPLETE=1 cargo test --test sqllogictests`, then review the diff.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::context::SessionConfig;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion_sqllogictest::{df_value_validator, value_normalizer, DataFusion};
use indicatif::ProgressBar;
use sqllogictest::{default_column_validator, Runner};

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/ directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

fn runner(file: &Path) -> Runner<DataFusion, impl sqllogictest::MakeConnection<Conn = DataFusion>> {
    let name = PathBuf::from(file.file_name().unwrap());
    let mut runner = Runner::new(move || {
        let name = name.clone();
        async move {
            let config = samplemix::session_config(SessionConfig::new().with_target_partitions(4));
            let ctx = samplemix::new_context(config, Arc::new(RuntimeEnv::default())).await?;
            Ok(DataFusion::new(ctx, name, ProgressBar::hidden()))
        }
    });
    runner.with_validator(df_value_validator);
    runner.with_normalizer(value_normalizer);
    runner.with_column_validator(default_column_validator);
    runner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_files_pass() {
    // Paths inside the .slt files are relative to the repository root.
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let files = slt_files();
    assert!(!files.is_empty(), "no sql/*.slt files found");
    // Only an explicit "1" rewrites the files: an empty or stray value must not turn a test
    // run into a run that records whatever happens.
    let complete = std::env::var("SAMPLEMIX_SLT_COMPLETE").is_ok_and(|v| v == "1");
    if complete && std::env::var_os("CI").is_some() {
        panic!("SAMPLEMIX_SLT_COMPLETE=1 is set under CI: completion mode records results instead of checking them");
    }
    let mut failures = Vec::new();
    for file in &files {
        let mut runner = runner(file);
        let result = if complete {
            runner
                .update_test_file(
                    file,
                    " ",
                    df_value_validator,
                    value_normalizer,
                    default_column_validator,
                )
                .await
                .map_err(|e| e.to_string())
        } else {
            runner
                .run_file_async(file)
                .await
                .map_err(|e| e.display(true).to_string())
        };
        match result {
            Ok(()) => println!("ok   {}", file.display()),
            Err(e) => failures.push(format!("FAIL {}\n{e}", file.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
