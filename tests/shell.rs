//! The `samplemix` binary as a user runs it: `-c`, `-f`, formats, exit codes, errors on stderr.

use std::io::Write;
use std::process::{Command, Output};

fn samplemix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_samplemix"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run samplemix")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn command_prints_token_count_as_csv() {
    let out = samplemix(&[
        "-q",
        "--format",
        "csv",
        "-c",
        "SELECT token_count('hello world')",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec!["\"token_count(Utf8(\"\"hello world\"\"))\"", "2"],
        "{text}"
    );
}

#[test]
fn repeated_commands_run_in_order() {
    let out = samplemix(&[
        "-q",
        "--format",
        "csv",
        "-c",
        "CREATE TABLE t AS VALUES (1), (2)",
        "-c",
        "SELECT sum(column1) AS s FROM t",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(stdout(&out).lines().any(|l| l == "3"), "{}", stdout(&out));
}

#[test]
fn failing_command_exits_non_zero_with_error_on_stderr() {
    let out = samplemix(&["-q", "-c", "SELECT token_count('x', 'gpt2')"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("token_count: argument 'encoding': unknown encoding 'gpt2'"),
        "{err}"
    );
    assert!(
        !stdout(&out).contains("gpt2"),
        "error went to stdout: {}",
        stdout(&out)
    );
}

#[test]
fn file_runs_statements_and_stops_at_the_first_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sql");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "-- a comment line\nSELECT 40 + 2 AS answer;\nSELECT * FROM no_such_table;\nSELECT 'never printed' AS x;").unwrap();
    let out = samplemix(&["-q", "--format", "csv", "-f", path.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a failing statement must fail the run"
    );
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "42"), "{text}");
    assert!(
        !text.contains("never printed"),
        "kept going after an error: {text}"
    );
    assert!(stderr(&out).contains("no_such_table"), "{}", stderr(&out));
}

#[test]
fn quickstart_file_prints_per_domain_table() {
    let out = samplemix(&["-q", "--format", "csv", "-f", "sql/quickstart.sql"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    for domain in [
        "ArXiv",
        "Book",
        "GitHub",
        "Reviews",
        "Speeches",
        "StackExchange",
        "Wikipedia",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{domain},"))),
            "{domain} missing: {text}"
        );
    }
}

/// The README's learned-quality route: the model orders held-out documents, and the mix table
/// has a row per domain with both q(x) columns.
#[test]
fn learned_quality_file_fits_checks_and_mixes() {
    let out = samplemix(&["-q", "--format", "csv", "-f", "sql/learned_quality.sql"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let auc_at = lines
        .iter()
        .position(|l| *l == "held_out_auc")
        .unwrap_or_else(|| panic!("no held_out_auc: {text}"));
    let auc: f64 = lines[auc_at + 1].parse().unwrap();
    assert!(auc > 0.9, "held-out AUC {auc}");
    assert!(
        lines[0].starts_with("levels,rows,options"),
        "first table: {}",
        lines[0]
    );
    for domain in [
        "ArXiv",
        "Book",
        "GitHub",
        "Reviews",
        "Speeches",
        "StackExchange",
        "Wikipedia",
    ] {
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("{domain},")))
            .unwrap_or_else(|| panic!("{domain} missing: {text}"));
        assert_eq!(row.split(',').count(), 6, "{row}");
    }
}

/// quality_model_fit takes its sample and model from the session's pool: under a small `-m` it
/// says so and how to fit, and fits with room.
#[test]
fn quality_model_fit_respects_the_memory_limit() {
    let view = "CREATE VIEW l AS SELECT text, CASE WHEN domain = 'ArXiv' THEN 1 ELSE 0 END AS label FROM 'data/sample.parquet'";
    let fit = "SELECT rows FROM quality_model_fit(l, 'text', 'label')";
    let out = samplemix(&["-q", "-m", "8M", "-c", view, "-c", fit]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("quality_model_fit: the training sample")
            && err.contains("lower 'sample_rows' or 'buckets'"),
        "{err}"
    );
    let out = samplemix(&["-q", "--format", "csv", "-m", "64M", "-c", view, "-c", fit]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("860"), "{}", stdout(&out));
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = samplemix(&["-q", "-f", "no/such/file.sql"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no/such/file.sql"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn show_functions_describes_ours() {
    let out = samplemix(&[
        "-q", "--format", "csv", "-c",
        "SELECT routine_name, description, syntax_example FROM information_schema.routines WHERE routine_name = 'token_count'",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("tiktoken") && text.contains("token_count(text [, encoding])"),
        "{text}"
    );
    let out = samplemix(&["-q", "-c", "SHOW FUNCTIONS LIKE 'token_count'"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).contains("Number of BPE tokens"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn formats_and_help() {
    let out = samplemix(&[
        "-q",
        "--format",
        "json",
        "-c",
        "SELECT token_count('hello world') AS n",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("\"n\":2"), "{}", stdout(&out));
    let out = samplemix(&["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for flag in [
        "--command",
        "--file",
        "--format",
        "--quiet",
        "--maxrows",
        "--memory-limit",
        "--mem-pool-type",
        "--disk-limit",
        "--s3-max-retries",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
}

#[test]
fn not_quiet_prints_banner() {
    let out = samplemix(&["--format", "csv", "-c", "SELECT 1 AS one"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("samplemix v"), "{}", stdout(&out));
}

fn samplemix_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_samplemix"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run samplemix")
}

/// A malformed endpoint made object_store panic (exit 101); now it is an error naming it.
#[test]
fn malformed_s3_endpoints_are_clear_errors_not_panics() {
    for endpoint in ["http://127.0.0.1:99999", "not a url"] {
        let sql = format!(
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://bucket/x.parquet' OPTIONS ('aws.endpoint' '{endpoint}', 'aws.access_key_id' 'k', 'aws.secret_access_key' 's', 'aws.region' 'us-east-1')"
        );
        let out = samplemix(&["-q", "-c", &sql]);
        assert_eq!(out.status.code(), Some(1), "{endpoint}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is not a valid endpoint URL"),
            "{endpoint}: {}",
            stderr(&out)
        );
        let out = samplemix_env(
            &["-q", "-c", "SELECT * FROM 's3://bucket/x.parquet'"],
            &[
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_ACCESS_KEY_ID", "k"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_REGION", "us-east-1"),
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{endpoint}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("AWS_ENDPOINT_URL"),
            "{endpoint}: {}",
            stderr(&out)
        );
    }
}

/// An endpoint that accepts connections and never answers: the first-byte timeout ends each
/// attempt, and the error says it timed out (the listener keeps every connection open).
#[test]
fn silent_s3_endpoint_fails_on_the_first_byte_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().take(8).flatten() {
            open.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = samplemix_env(
        &[
            "-q",
            "--s3-first-byte-timeout",
            "1",
            "--s3-max-retries",
            "1",
            "-c",
            "SELECT * FROM 's3://bucket/x.parquet'",
        ],
        &[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot read 's3://bucket/x.parquet'")
            && err.contains("request for 's3://bucket/x.parquet' timed out: no response")
            && err.contains("2 attempts without progress"),
        "{err}"
    );
    drop(held);
}

/// -f splits at real statement boundaries: `;` and `--` inside strings are part of them.
#[test]
fn file_statements_keep_semicolons_and_dashes_inside_strings() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(
        f,
        "SELECT 'a;\n-- kept\nb' AS s;\nSELECT length('x;y') AS n;"
    )
    .unwrap();
    let out = samplemix(&["-q", "--format", "csv", "-f", f.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "s\n\"a;\n-- kept\nb\"\nn\n3\n");
}

/// A COPY that fails mid-stream leaves the previous output as it was (file and folder), and no
/// temporary files behind.
#[test]
fn failed_copy_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let good = "(SELECT v FROM (SELECT unnest(range(0, 10)) AS v))";
    // Fails after many rows were produced (samplemix_assert stops the stream at v = 150000).
    let bad = "(SELECT samplemix_assert(v, v < 150000, 'boom at ', v) AS v FROM (SELECT unnest(range(0, 300000)) AS v))";
    for target in [format!("{d}/out.parquet"), format!("{d}/shards/")] {
        // Twice: a rerun replaces the output (a folder does not keep the first run's files).
        for _ in 0..2 {
            let out = samplemix(&[
                "-q",
                "-c",
                &format!("COPY {good} TO '{target}' STORED AS PARQUET"),
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let out = samplemix(&[
            "-q",
            "-c",
            &format!("COPY {bad} TO '{target}' STORED AS PARQUET"),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("any previous output there is unchanged")
                && stderr(&out).contains("boom at"),
            "{}",
            stderr(&out)
        );
        let out = samplemix(&[
            "-q",
            "--format",
            "csv",
            "-c",
            &format!("SELECT count(*) AS n FROM '{target}'"),
        ]);
        assert_eq!(stdout(&out), "n\n10\n", "{target}: {}", stderr(&out));
    }
    let left: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    // The folder's manifest beside it (what its next COPY may replace), nothing temporary.
    assert_eq!(
        left,
        vec![".samplemix-manifest-shards", "out.parquet", "shards"],
        "temporary output left behind"
    );
}

/// kmeans_fit's sample counts against -m: a pool too small for it is a clear error.
#[test]
fn kmeans_sample_respects_the_memory_limit() {
    let out = samplemix(&[
        "-q",
        "-m",
        "1M",
        "-c",
        "CREATE VIEW e AS SELECT embed(text, 1024) AS emb FROM 'data/sample.parquet'",
        "-c",
        "SELECT count(*) FROM kmeans_fit(e, 'emb', 4)",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("kmeans_fit: the sample of up to 100000 rows needs more memory than the session's memory pool allows"),
        "{}",
        stderr(&out)
    );
}

/// `--query-timeout` abandons a statement that runs too long, with an error saying so.
#[test]
fn query_timeout_abandons_a_long_statement() {
    let out = samplemix(&[
        "-q",
        "--query-timeout",
        "1",
        "-c",
        // 10^11 rows, streamed: hours on any machine.
        "SELECT sum(value) FROM generate_series(0, 100000000000)",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ran longer than --query-timeout 1 s"),
        "{}",
        stderr(&out)
    );
}

/// A corrupt shard in a folder (a malformed footer that makes the parquet crate panic, and a
/// truncated file) is an error naming that shard, not a crash.
#[test]
fn cluster_after_a_comma_gets_a_hint() {
    let table = "(SELECT 1 AS id, 2 AS cluster) s";
    let out = samplemix(&["-q", "-c", &format!("SELECT id, cluster FROM {table}")]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("found: cluster"), "{err}");
    assert!(
        err.contains("write it with its table's alias (s.cluster)"),
        "{err}"
    );
    // Both ways the hint gives work; other parse errors get no hint.
    for fixed in ["s.cluster", "\"cluster\""] {
        let out = samplemix(&[
            "-q",
            "--format",
            "csv",
            "-c",
            &format!("SELECT id, {fixed} FROM {table}"),
        ]);
        assert!(out.status.success(), "{fixed}: {}", stderr(&out));
        assert!(stdout(&out).ends_with("1,2\n"), "{}", stdout(&out));
    }
    let out = samplemix(&["-q", "-c", "SELECT 1 +"]);
    assert!(stderr(&out).contains("ParserError"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("s.cluster"), "{}", stderr(&out));
}

#[test]
fn corrupt_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let good = std::fs::read("data/sample.parquet").unwrap();
    std::fs::write(format!("{d}/part-0.parquet"), &good).unwrap();
    for (name, bytes) in [
        ("part-1.parquet", b"PAR1garbagegarbagePAR1".to_vec()),
        ("part-1.parquet", good[..5000].to_vec()),
    ] {
        std::fs::write(format!("{d}/{name}"), bytes).unwrap();
        for sql in [
            format!("SELECT count(*) FROM '{d}/'"),
            format!("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{d}/'"),
        ] {
            let out = samplemix(&["-q", "-c", &sql]);
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("the bad Parquet file is {d}/part-1.parquet")),
                "{sql}: {}",
                stderr(&out)
            );
        }
    }
}

/// `--query-timeout` also bounds the work table functions do while the query is planned.
#[test]
fn query_timeout_bounds_planning_time_work() {
    let view = "CREATE VIEW v AS SELECT value AS id, concat(repeat('lorem ipsum dolor ', 300), CAST(value AS VARCHAR)) AS text, embed(CAST(value AS VARCHAR), 64) AS emb FROM generate_series(1, 3000000)";
    for (function, sql) in [
        (
            "near_duplicates",
            "SELECT count(*) FROM near_duplicates(v, 'id', 'text')",
        ),
        (
            "kmeans_fit",
            "SELECT count(*) FROM kmeans_fit(v, 'emb', 64, 3000000)",
        ),
    ] {
        let out = samplemix(&["-q", "--query-timeout", "1", "-c", view, "-c", sql]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "{function}: the statement ran longer than its time limit (--query-timeout)"
            )),
            "{}",
            stderr(&out)
        );
    }
}

/// An expression nested too deep is a clear error, not a stack overflow (exit 134).
#[test]
fn deep_expressions_are_refused_not_a_crash() {
    let chain = format!("SELECT {}", vec!["1"; 8000].join(" + "));
    let out = samplemix(&["-q", "-c", &chain]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the statement nests expressions 8000 deep"),
        "{}",
        stderr(&out)
    );
    let chain = format!("SELECT {} AS n", vec!["1"; 300].join(" + "));
    let out = samplemix(&["-q", "--format", "csv", "-c", &chain]);
    assert!(stdout(&out).ends_with("n\n300\n"), "{}", stderr(&out));
}

/// `${NAME}` is replaced only when `--var` is given; `$${` writes `${`.
#[test]
fn placeholders_without_var_are_plain_text() {
    let out = samplemix(&[
        "-q",
        "--format",
        "csv",
        "-c",
        "SELECT '${HOME}' AS a, '$${x}' AS b",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a,b\n${HOME},${x}\n");
    let out = samplemix(&[
        "-q",
        "--format",
        "csv",
        "--var",
        "k=7",
        "-c",
        "SELECT ${k} AS a, '$${k}' AS b",
    ]);
    assert_eq!(stdout(&out), "a,b\n7,${k}\n", "{}", stderr(&out));
    let out = samplemix(&["-q", "--var", "k=7", "-c", "SELECT '${other}'"]);
    assert!(
        stderr(&out).contains("the SQL uses ${other}, which no --var other=VALUE sets"),
        "{}",
        stderr(&out)
    );
}

/// A bare file name is a table for the table functions, as it is for FROM.
#[test]
fn bare_file_names_are_tables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy("data/sample.parquet", dir.path().join("sample.parquet")).unwrap();
    let run = |sql: &str| {
        Command::new(env!("CARGO_BIN_EXE_samplemix"))
            .args(["-q", "--format", "csv", "-c", sql])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run("SELECT count(*) AS n FROM near_duplicates('sample.parquet', 'id', 'text')");
    assert_eq!(stdout(&out), "n\n860\n", "{}", stderr(&out));
    let out = run("COPY (SELECT embed(text, 8) AS emb FROM 'sample.parquet') TO 'e.parquet' STORED AS PARQUET");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run("SELECT count(*) AS n FROM kmeans_fit('e.parquet', 'emb', 3)");
    assert_eq!(stdout(&out), "n\n3\n", "{}", stderr(&out));
}

/// Messages of the reliability round that used to be unclear.
#[test]
fn unclear_messages_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let pp = dir.path().join("pp.parquet");
    std::fs::write(&pp, b"PAR1PAR1").unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://bucket/x/' OPTIONS ('aws.acess_key_id' 'k', 'aws.endpoint' 'http://127.0.0.1:1')".into(),
            "unknown S3 option 'aws.acess_key_id'",
        ),
        (
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://my bucket/x/' OPTIONS ('aws.endpoint' 'http://127.0.0.1:1')".into(),
            "'my bucket' is not a valid S3 bucket name",
        ),
        (
            "SELECT * FROM 's3://my bucket/x.parquet'".into(),
            "'my bucket' is not a valid S3 bucket name",
        ),
        (
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://bucket/x/' OPTIONS ('aws.access_key_id' 'k', 'aws.endpoint' 'http://127.0.0.1:1')".into(),
            "an access key id is given without its secret access key",
        ),
        (
            "SELECT count(*) FROM near_duplicates((SELECT * FROM 'data/sample.parquet'), 'id', 'text')".into(),
            "takes a table name, a view or a path, not a subquery",
        ),
        (
            format!("SELECT * FROM '{}'", pp.display()),
            "the bad Parquet file is",
        ),
    ];
    for (sql, want) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_samplemix"));
        cmd.args(["-q", "-c", &sql])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("RUST_BACKTRACE");
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{sql}: {err}");
        assert!(err.contains(want), "{sql}: {err}");
        assert!(!err.contains("panicked at"), "{sql}: {err}");
    }
    let out = samplemix_env(&["-q", "-c", "SELECT 1"], &[("AWS_ACCESS_KEY_ID", "k")]);
    assert!(
        stderr(&out).contains("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: an access key id is given without its secret"),
        "{}",
        stderr(&out)
    );
}

/// A corrupt page inside a file whose footer is valid is named too.
#[test]
fn corrupt_page_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let good = std::fs::read("data/sample.parquet").unwrap();
    std::fs::write(format!("{d}/a.parquet"), &good).unwrap();
    let mut bad = good.clone();
    let third = bad.len() / 3;
    for b in &mut bad[third..third + 2000] {
        *b ^= 0x5a;
    }
    std::fs::write(format!("{d}/b.parquet"), &bad).unwrap();
    let out = samplemix(&["-q", "-c", &format!("SELECT sum(length(text)) FROM '{d}/'")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("the bad Parquet file is {d}/b.parquet")),
        "{}",
        stderr(&out)
    );
}

/// near_duplicates writes its steps under the work folder and leaves only the last labels
/// there (what its result reads); without a work folder nothing is left once the shell exits.
#[test]
fn near_duplicates_leaves_only_its_result_in_the_work_folder() {
    let dir = tempfile::tempdir().unwrap();
    let work = format!("{}/w/", dir.path().display());
    let out = samplemix(&[
        "-q",
        "--format",
        "csv",
        "-c",
        &format!("SELECT count(*) AS n FROM near_duplicates('data/sample.parquet', 'id', 'text', 0.2, 112, 56, 'work={work}') WHERE NOT keep"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let left: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .flat_map(|call| std::fs::read_dir(call.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("labels-"), "{left:?}");
    // The default work folder is the shell process's temporary folder, removed at exit.
    let child = Command::new(env!("CARGO_BIN_EXE_samplemix"))
        .args([
            "-q",
            "-c",
            "SELECT count(*) FROM near_duplicates('data/sample.parquet', 'id', 'text', 0.2, 112, 56)",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = std::env::temp_dir().join(format!("samplemix-{pid}"));
    assert!(!folder.exists(), "left behind: {}", folder.display());
    let help = samplemix(&["--help"]);
    assert!(
        stdout(&help).contains("3/4 of the memory this machine (or its cgroup) has"),
        "{}",
        stdout(&help)
    );
}
