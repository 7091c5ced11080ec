//! samplemix on Apache Ballista (feature `ballista`): the in-process standalone cluster, and a
//! real cluster of processes (samplemix-scheduler + 2 samplemix-executor on 127.0.0.1) reading
//! and writing a moto S3 bucket, each compared with the local run bit for bit.
#![cfg(feature = "ballista")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{aws_env, free_port, pipeline_args, samplemix, text, Moto, SECRET};
use datafusion::execution::context::SessionConfig;

/// One cluster at a time: the tests share the two cores, and their ports come from the same
/// loopback range.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pipeline's statements with its placeholders filled in (what `--var` does in the shell).
fn pipeline(input: &str, work: &str, budget: &str) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/pipeline.sql");
    let text = std::fs::read_to_string(path).unwrap();
    let vars: Vec<(String, String)> = [("input", input), ("work", work), ("budget", budget)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body: String = samplemix::script::substitute(&text, &vars)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!body.contains("${"), "a placeholder is left: {body}");
    body.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// What the comparisons read back from a pipeline run's `work` folder: the weights (every
/// column that defines the mix, floats printed exactly) and the mixed rows with their shard.
const WEIGHTS: &str =
    "SELECT id, count, expected_count, weight, diversity FROM weights ORDER BY id";
const MIXED: &str =
    "SELECT id, copy, shard, domain, length(text) AS chars FROM mixed ORDER BY id, copy";

fn read_back(work: &str) -> Vec<String> {
    vec![
        format!("CREATE EXTERNAL TABLE weights STORED AS PARQUET LOCATION '{work}weights/'"),
        format!("CREATE EXTERNAL TABLE mixed STORED AS PARQUET LOCATION '{work}mixed/'"),
        WEIGHTS.to_string(),
        MIXED.to_string(),
    ]
}

async fn run_all(ctx: &datafusion::prelude::SessionContext, statements: &[String]) -> String {
    let mut out = String::new();
    for s in statements {
        let batches = common::sql(ctx, &[s.as_str()]).await;
        out.push_str(
            &datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string(),
        );
    }
    out
}

/// The scalable pipeline on Ballista's in-process cluster (`standalone_with_state`) gives the
/// local run's weights and mixed dataset exactly.
#[test]
fn standalone_cluster_equals_local() {
    let _serial = serial();
    // Ballista's scheduler recurses deeply over plans; its own binary runs on 32 MB stacks.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(32 * 1024 * 1024)
        .enable_all()
        .build()
        .unwrap()
        .block_on(standalone_cluster());
}

async fn standalone_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample.parquet");
    let budget = "640000";

    let local = common::context(2).await;
    run_all(&local, &pipeline(input, &format!("{d}/local/"), budget)).await;
    let expected = run_all(
        &common::context(2).await,
        &read_back(&format!("{d}/local/")),
    )
    .await;

    let cluster = samplemix::cluster::standalone_context(SessionConfig::new())
        .await
        .unwrap();
    run_all(&cluster, &pipeline(input, &format!("{d}/cluster/"), budget)).await;
    let got = run_all(
        &common::context(2).await,
        &read_back(&format!("{d}/cluster/")),
    )
    .await;
    assert!(expected.lines().count() > 800, "{expected}");
    assert!(got == expected, "cluster run differs from the local run");

    // A function computing on the executor gives the local value bit for bit.
    let q = "SELECT sum(quality_score(text)) AS q, sum(token_count(text)) AS t, \
             sum(array_sum(embed(text, 8))) AS e FROM 'data/sample.parquet'";
    let q = q.replace("data/sample.parquet", input);
    assert_eq!(
        run_all(&cluster, std::slice::from_ref(&q)).await,
        run_all(&local, &[q]).await
    );
}

/// A process started by a test, killed when dropped (also when the test fails).
struct Proc {
    name: String,
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    fn start(
        bin: &str,
        args: &[String],
        env: &[(&'static str, String)],
        log: std::path::PathBuf,
    ) -> Proc {
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {bin}: {e}"));
        Proc {
            name: bin.rsplit('/').next().unwrap_or(bin).to_string(),
            child,
            log,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET path` on 127.0.0.1:port answers 200.
fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 32];
    matches!(s.read(&mut buf), Ok(n) if n > 12 && buf[..n].starts_with(b"HTTP/1.1 200"))
}

/// A scheduler and `executors` executors on 127.0.0.1 with the S3 environment of `moto`.
struct Cluster {
    scheduler: Proc,
    executors: Vec<Proc>,
    port: u16,
    _logs: tempfile::TempDir,
}

impl Cluster {
    fn start(executors: usize, env: &[(&'static str, String)]) -> Cluster {
        let logs = tempfile::tempdir().unwrap();
        let port = free_port();
        let scheduler = Proc::start(
            env!("CARGO_BIN_EXE_samplemix-scheduler"),
            &[
                "--bind-host".into(),
                "127.0.0.1".into(),
                "--external-host".into(),
                "127.0.0.1".into(),
                "--bind-port".into(),
                port.to_string(),
                // A killed executor is declared dead after 6 s (default 180 s).
                "--executor-timeout-seconds".into(),
                "6".into(),
                "--expire-dead-executor-interval-seconds".into(),
                "1".into(),
            ],
            env,
            logs.path().join("scheduler.log"),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "scheduler did not listen: {}",
                scheduler.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut cluster = Cluster {
            scheduler,
            executors: vec![],
            port,
            _logs: logs,
        };
        for i in 0..executors {
            let health = free_port();
            let work = cluster._logs.path().join(format!("executor-{i}"));
            std::fs::create_dir_all(&work).unwrap();
            let exec = Proc::start(
                env!("CARGO_BIN_EXE_samplemix-executor"),
                &[
                    "--scheduler-host".into(),
                    "127.0.0.1".into(),
                    "--scheduler-port".into(),
                    port.to_string(),
                    "--bind-host".into(),
                    "127.0.0.1".into(),
                    "--external-host".into(),
                    "127.0.0.1".into(),
                    "--bind-port".into(),
                    free_port().to_string(),
                    "--bind-grpc-port".into(),
                    free_port().to_string(),
                    "--bind-health-port".into(),
                    health.to_string(),
                    "--concurrent-tasks".into(),
                    "1".into(),
                    "--executor-heartbeat-interval-seconds".into(),
                    "1".into(),
                    "--work-dir".into(),
                    work.to_string_lossy().into_owned(),
                ],
                env,
                cluster._logs.path().join(format!("executor-{i}.log")),
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            while !http_ok(health, "/readyz") {
                assert!(
                    Instant::now() < deadline,
                    "executor {i} not ready: {}",
                    exec.log()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            cluster.executors.push(exec);
        }
        cluster
    }

    fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    fn logs(&self) -> String {
        let mut all = format!("--- {}\n{}", self.scheduler.name, self.scheduler.log());
        for e in &self.executors {
            all.push_str(&format!("--- {}\n{}", e.name, e.log()));
        }
        // The end is what explains a failure.
        let start = all.len().saturating_sub(6000);
        all[all.floor_char_boundary(start)..].to_string()
    }
}

fn shell(args: &[&str], env: &[(&'static str, String)]) -> (bool, String, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = samplemix(args, &env);
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The sample corpus as 4 shards in `bucket` (by a hash of id), written by the local shell.
fn upload_shards(bucket: &str, env: &[(&'static str, String)]) {
    let mut args = vec!["-q".to_string()];
    for i in 0..4 {
        args.push("-c".into());
        args.push(format!(
            "COPY (SELECT * FROM 'data/sample.parquet' \
             WHERE CAST(floor(samplemix_uniform(id, 42) * 4) AS INT) = {i}) \
             TO 's3://{bucket}/corpus/part-{i}.parquet' STORED AS PARQUET"
        ));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = shell(&argv, env);
    assert!(ok, "upload failed: {err}\n{out}");
}

fn read_back_csv(work: &str, env: &[(&'static str, String)]) -> String {
    let statements = read_back(work);
    let mut args = vec!["-q".to_string(), "--format".into(), "csv".into()];
    for s in &statements {
        args.push("-c".into());
        args.push(s.clone());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = shell(&argv, env);
    assert!(ok, "read back {work}: {err}");
    out
}

/// The scalable pipeline on a cluster of processes, S3 in and out, for 1 and 2 executors:
/// weights and mixed shards equal the local run's; a failed distributed COPY keeps the
/// previous output; a query survives a killed executor or fails clearly, in bounded time.
#[test]
fn process_cluster_on_s3_equals_local() {
    let _serial = serial();
    let moto = Moto::start();
    moto.create_bucket("mix");
    let env = aws_env(&moto.endpoint());
    upload_shards("mix", &env);
    let input = "s3://mix/corpus/";

    // The local run, reading the same shards.
    let args = pipeline_args(input, "s3://mix/local/");
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = shell(&argv, &env);
    assert!(ok, "local pipeline: {err}\n{out}");
    let expected = read_back_csv("s3://mix/local/", &env);
    assert!(expected.lines().count() > 800, "{expected}");

    for executors in [2, 1] {
        let cluster = Cluster::start(executors, &env);
        let url = cluster.url();
        let work = format!("s3://mix/cluster-{executors}/");
        let mut args = vec!["--remote".to_string(), url.clone()];
        args.extend(pipeline_args(input, &work));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = shell(&argv, &env);
        assert!(
            ok,
            "pipeline on {executors} executor(s): {err}\n{out}\n{}",
            cluster.logs()
        );
        assert!(!err.contains(SECRET) && !out.contains(SECRET));
        let got = read_back_csv(&work, &env);
        assert!(
            got == expected,
            "{executors} executor(s): the cluster's mix differs from the local run"
        );

        if executors == 2 {
            learned_quality_on_the_cluster_equals_local(&url, &env);
            report_on_the_cluster_equals_local(&url, &work, &env);
            failed_remote_copy_keeps_previous_output(&moto, &url, &env);
            memory_tables_are_refused_with_a_hint(&url, &env);
            killed_executor(cluster, &env);
        }
    }
}

/// The learned quality model: fitted through the cluster (its one row travels in the plan) it
/// equals the local fit, and `quality_predict` on the executors, reading the model by URL,
/// gives the local scores bit for bit.
fn learned_quality_on_the_cluster_equals_local(url: &str, env: &[(&'static str, String)]) {
    let view = "CREATE EXTERNAL TABLE corpus STORED AS PARQUET LOCATION 's3://mix/corpus/'; \
                CREATE VIEW l AS SELECT text, CASE WHEN domain IN ('Wikipedia', 'Book', 'ArXiv') THEN 1 ELSE 0 END AS label FROM corpus";
    let fit = |target: &str| {
        format!("COPY (SELECT * FROM quality_model_fit(l, 'text', 'label')) TO '{target}'")
    };
    let predict = "SELECT id, quality_predict(text, 's3://mix/qmodel-local.parquet') AS q FROM corpus ORDER BY id";
    let (ok, _, err) = shell(
        &[
            "-q",
            "-c",
            view,
            "-c",
            &fit("s3://mix/qmodel-local.parquet"),
        ],
        env,
    );
    assert!(ok, "local fit: {err}");
    let (ok, local, err) = shell(&["-q", "--format", "csv", "-c", view, "-c", predict], env);
    assert!(ok, "local predict: {err}");
    assert!(local.lines().count() > 800, "{local}");
    let (ok, out, err) = shell(
        &[
            "--remote",
            url,
            "-q",
            "-c",
            view,
            "-c",
            &fit("s3://mix/qmodel-remote.parquet"),
        ],
        env,
    );
    assert!(ok, "fit through the cluster: {err}\n{out}");
    let same = "SELECT a.weights = b.weights AND a.thresholds = b.thresholds AND a.dense_weights = b.dense_weights \
                FROM 's3://mix/qmodel-local.parquet' a, 's3://mix/qmodel-remote.parquet' b";
    let (ok, out, err) = shell(&["-q", "--format", "csv", "-c", same], env);
    assert!(
        ok && out.trim().ends_with("true"),
        "models differ: {err}\n{out}"
    );
    let (ok, remote, err) = shell(
        &[
            "--remote", url, "-q", "--format", "csv", "-c", view, "-c", predict,
        ],
        env,
    );
    assert!(ok, "predict on the cluster: {err}");
    assert!(
        remote == local,
        "quality_predict on the cluster differs from local"
    );
}

/// `samplemix --remote ... report` of the cluster's work folder gives the local run's page
/// (but for the folder's name): the executors aggregate, the client draws.
fn report_on_the_cluster_equals_local(url: &str, work: &str, env: &[(&'static str, String)]) {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.html");
    let remote = dir.path().join("remote.html");
    let (ok, _, err) = shell(
        &["report", "s3://mix/local/", "-o", local.to_str().unwrap()],
        env,
    );
    assert!(ok, "local report: {err}");
    let (ok, out, err) = shell(
        &[
            "--remote",
            url,
            "report",
            work,
            "-o",
            remote.to_str().unwrap(),
        ],
        env,
    );
    assert!(ok, "report on the cluster: {err}");
    assert_eq!(out.trim(), remote.to_str().unwrap());
    let local = std::fs::read_to_string(local).unwrap();
    let remote = std::fs::read_to_string(remote).unwrap();
    assert!(local.contains("chart-clusters"));
    assert_eq!(remote.replace(work, "s3://mix/local/"), local);
}

fn failed_remote_copy_keeps_previous_output(
    moto: &Moto,
    url: &str,
    env: &[(&'static str, String)],
) {
    let target = "s3://mix/atomic/";
    let good = "(SELECT v FROM (SELECT unnest(range(0, 10)) AS v))";
    let bad = "(SELECT samplemix_assert(v, v < 150000, 'boom at ', v) AS v FROM (SELECT unnest(range(0, 300000)) AS v))";
    let copy = |query: &str| {
        shell(
            &[
                "-q",
                "--remote",
                url,
                "-c",
                &format!("COPY {query} TO '{target}' STORED AS PARQUET"),
            ],
            env,
        )
    };
    let count = || {
        let (ok, out, err) = shell(
            &[
                "-q",
                "--format",
                "csv",
                "-c",
                &format!("SELECT count(*) AS n FROM '{target}'"),
            ],
            env,
        );
        assert!(ok, "{err}");
        out
    };
    // Twice: the rerun replaces the folder's files.
    for _ in 0..2 {
        let (ok, _, err) = copy(good);
        assert!(ok, "{err}");
    }
    assert_eq!(count(), "n\n10\n");
    let (ok, _, err) = copy(bad);
    assert!(!ok);
    assert!(
        err.contains("any previous output there is unchanged") && err.contains("boom at"),
        "{err}"
    );
    assert_eq!(count(), "n\n10\n", "the failed COPY changed the target");
    // Whatever the failed job's tasks wrote after it failed sits in a hidden sibling, never in
    // the target; the next COPY to the target removes it.
    let (ok, _, err) = copy(good);
    assert!(ok, "{err}");
    assert_eq!(count(), "n\n10\n");
    let keys = moto.keys("mix");
    assert!(
        keys.iter().all(|k| !k.contains(".samplemix-tmp-")),
        "temporary output left behind: {keys:?}"
    );
}

fn memory_tables_are_refused_with_a_hint(url: &str, env: &[(&'static str, String)]) {
    let (ok, _, err) = shell(
        &[
            "-q",
            "--remote",
            url,
            "-c",
            "CREATE TABLE t AS SELECT 1 AS x",
            "-c",
            "SELECT sum(x) FROM t",
        ],
        env,
    );
    assert!(!ok);
    assert!(
        err.contains("'t' is a table in this client's memory") && err.contains("COPY"),
        "{err}"
    );
    // The help table is a view: it works from a client.
    let (ok, out, err) = shell(
        &[
            "-q",
            "--remote",
            url,
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM samplemix_help()",
        ],
        env,
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("n\n"), "{out}");
}

/// Kill one of two executors while a query runs on both: the query completes with the right
/// answer (Ballista reruns the lost tasks on the other one), fails with an error, or (Ballista
/// 55's adaptive scheduler can leave a job waiting forever after an executor loss) is
/// abandoned by `--query-timeout`: in every case the client is done within a bounded time.
fn killed_executor(mut cluster: Cluster, env: &[(&'static str, String)]) {
    let query =
        "SELECT count(*) AS n, sum(quality_score(c.text || CAST(r.v AS VARCHAR))) > 0 AS ok \
                 FROM 's3://mix/corpus/' c CROSS JOIN (SELECT unnest(range(0, 16)) AS v) r";
    let tasks = |c: &Cluster| c.executors[0].log().matches("Execute task").count();
    let before = tasks(&cluster);
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_samplemix"));
    cmd.args([
        "-q",
        "--format",
        "csv",
        "--query-timeout",
        "90",
        "--remote",
        &cluster.url(),
        "-c",
        query,
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let client = cmd.spawn().unwrap();
    // Kill it once it is running a task of this query.
    let deadline = Instant::now() + Duration::from_secs(60);
    while tasks(&cluster) == before {
        assert!(
            Instant::now() < deadline,
            "executor 0 got no task: {}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    cluster.executors[0].kill();
    // A backstop, so that a client that ignores its own limit fails the test instead of
    // hanging it.
    let mut client = client;
    let deadline = Instant::now() + Duration::from_secs(150);
    while client.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = client.kill();
            panic!("the client ignored --query-timeout: {}", cluster.logs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = client.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(120),
        "the query took {elapsed:?} after an executor was killed"
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if out.status.success() {
        assert_eq!(stdout, "n,ok\n13760,true\n", "{stderr}");
    } else {
        assert!(
            stderr.contains("--query-timeout 90 s") || stderr.contains("Job failed"),
            "failed without a clear error: {stderr}\n{}",
            cluster.logs()
        );
    }
    eprintln!(
        "killed executor: {} after {elapsed:?}",
        if out.status.success() {
            "completed"
        } else if stderr.contains("--query-timeout") {
            "abandoned by --query-timeout"
        } else {
            "failed"
        }
    );
}

/// An unreachable scheduler is a clear error within 10 seconds.
#[test]
fn unreachable_scheduler_is_a_clear_error() {
    let url = format!("df://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let (ok, _, err) = shell(&["-q", "--remote", &url, "-c", "SELECT 1"], &[]);
    assert!(!ok);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains(&format!("cannot reach the Ballista scheduler at {url}")),
        "{err}"
    );
    let (ok, _, err) = shell(&["-q", "--remote", "http://x:1", "-c", "SELECT 1"], &[]);
    assert!(!ok);
    assert!(err.contains("expected df://HOST:PORT"), "{err}");
}
