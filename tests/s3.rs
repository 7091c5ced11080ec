//! S3 end to end against a real S3 server (moto on 127.0.0.1): COPY the sample corpus to a
//! bucket as several Parquet files, read it back through CREATE EXTERNAL TABLE ... OPTIONS and
//! through AWS_* environment variables with a URL table, and check the failure modes.

mod common;

use std::time::{Duration, Instant};

use common::{
    aws_env as env, free_port, pipeline_args, samplemix, text, Moto, Throttle, KEY_ID, SECRET,
};

fn options(endpoint: &str) -> String {
    format!(
        "OPTIONS ('aws.endpoint' '{endpoint}', 'aws.allow_http' 'true', 'aws.region' 'us-east-1', \
         'aws.access_key_id' '{KEY_ID}', 'aws.secret_access_key' '{SECRET}')"
    )
}

fn run(args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = samplemix(args, &env);
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

const TOTALS: &str = "SELECT count(*) AS docs, sum(token_count(text)) AS tokens FROM";

fn csv_row(stdout: &str) -> String {
    stdout.lines().last().unwrap_or_default().to_string()
}

#[test]
fn corpus_round_trips_through_s3() {
    let moto = Moto::start();
    moto.create_bucket("corpus-bucket");
    let ep = moto.endpoint();
    let opts = options(&ep);

    let (ok, local, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            &format!("{TOTALS} 'data/sample.parquet'"),
        ],
        &[],
    );
    assert!(ok, "{err}");
    let local = csv_row(&local);
    assert!(local.starts_with("860,"), "{local}");

    // Three shards, written by COPY with OPTIONS.
    let shards = [
        "domain IN ('ArXiv')",
        "domain IN ('StackExchange', 'Reviews')",
        "domain NOT IN ('ArXiv', 'StackExchange', 'Reviews')",
    ];
    let mut args = vec!["-q".to_string(), "--format".into(), "csv".into()];
    for (i, filter) in shards.iter().enumerate() {
        args.push("-c".into());
        args.push(format!(
            "COPY (SELECT * FROM 'data/sample.parquet' WHERE {filter}) \
             TO 's3://corpus-bucket/corpus/part-{i}.parquet' STORED AS PARQUET {opts}"
        ));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out, err) = run(&argv, &[]);
    assert!(ok, "COPY to S3 failed: {err}\n{out}");

    // Read back with CREATE EXTERNAL TABLE ... OPTIONS.
    let (ok, out, err) = run(
        &[
            "-q", "--format", "csv",
            "-c", &format!("CREATE EXTERNAL TABLE s3docs STORED AS PARQUET LOCATION 's3://corpus-bucket/corpus/' {opts}"),
            "-c", &format!("{TOTALS} s3docs"),
            "-c", "SELECT count(DISTINCT domain) FROM s3docs",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(&local.as_str()),
        "S3 totals differ from local {local}: {out}"
    );
    assert_eq!(lines.last(), Some(&"7"), "{out}");

    // Read back with AWS_* environment variables and a URL table; also list the shards.
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            &format!("{TOTALS} 's3://corpus-bucket/corpus/'"),
        ],
        &env(&ep),
    );
    assert!(ok, "{err}");
    assert_eq!(csv_row(&out), local, "{out}");
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) FROM 's3://corpus-bucket/corpus/part-1.parquet'",
        ],
        &env(&ep),
    );
    assert!(ok, "{err}");
    assert_eq!(csv_row(&out), "350", "{out}");

    // COPY with environment variables only.
    let (ok, _, err) = run(
        &["-q", "-c", "COPY (SELECT id FROM 'data/sample.parquet') TO 's3://corpus-bucket/ids/ids.parquet' STORED AS PARQUET"],
        &env(&ep),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) FROM 's3://corpus-bucket/ids/ids.parquet'",
        ],
        &env(&ep),
    );
    assert!(ok, "{err}");
    assert_eq!(csv_row(&out), "860");
}

#[test]
fn missing_bucket_is_a_clear_error_without_secrets() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let (ok, out, err) = run(
        &[
            "-q",
            "-c",
            &format!(
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://no-such-bucket/x/' {}",
                options(&ep)
            ),
        ],
        &[],
    );
    assert!(!ok, "expected failure: {out}");
    assert!(
        err.contains("NoSuchBucket") || err.contains("bucket does not exist"),
        "{err}"
    );
    assert!(
        !err.contains(SECRET) && !out.contains(SECRET),
        "secret leaked: {err}{out}"
    );

    let (ok, out, err) = run(
        &["-q", "-c", "SELECT count(*) FROM 's3://no-such-bucket/x/'"],
        &env(&ep),
    );
    assert!(!ok, "expected failure: {out}");
    assert!(
        err.contains("NoSuchBucket")
            || err.contains("bucket does not exist")
            || err.contains("not found"),
        "{err}"
    );
    assert!(
        !err.contains(SECRET) && !out.contains(SECRET),
        "secret leaked: {err}{out}"
    );
}

/// A dead endpoint must fail on its own, quickly, with an error naming the endpoint problem.
/// The bound comes from the retry count (3 retries, backoff from 100 ms), not from a timer, so
/// this is not timing-sensitive: the 10 s deadline only catches object_store's default of
/// 10 retries within 3 minutes coming back.
#[test]
fn unreachable_endpoint_fails_fast_without_secrets() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    for (args, env) in [
        (
            vec![
                "-q".to_string(),
                "-c".into(),
                format!(
                    "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://b/x/' {}",
                    options(&dead)
                ),
            ],
            vec![],
        ),
        (
            vec![
                "-q".to_string(),
                "-c".into(),
                "SELECT * FROM 's3://b/x/data.parquet'".into(),
            ],
            env(&dead),
        ),
    ] {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let (ok, out, err) = run(&argv, &env);
        let took = started.elapsed();
        assert!(!ok, "expected failure: {out}");
        assert!(
            took < Duration::from_secs(10),
            "took {took:?} to fail: {err}"
        );
        assert!(
            err.to_lowercase().contains("connect")
                || err.contains("error sending request")
                || err.contains("retries"),
            "unclear error: {err}"
        );
        assert!(
            !err.contains(SECRET) && !out.contains(SECRET),
            "secret leaked: {err}{out}"
        );
    }
}

/// The whole pipeline with the corpus as shards in a bucket and the mixed dataset written back
/// to the bucket gives the same counts as a local run on the single sample file.
#[test]
fn full_pipeline_on_s3_equals_local() {
    let moto = Moto::start();
    moto.create_bucket("mix-bucket");
    let ep = moto.endpoint();
    let env = env(&ep);
    let root = env!("CARGO_MANIFEST_DIR");
    let quickstart = std::fs::read_to_string(format!("{root}/sql/quickstart.sql")).unwrap();
    let mix = std::fs::read_to_string(format!("{root}/sql/mix.sql")).unwrap();
    assert!(
        quickstart.contains("LOCATION 'data/sample.parquet'")
            && mix.contains("TO 'out/mixed.parquet'")
    );
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let local_out = dir.path().join("mixed").to_string_lossy().into_owned();
    let local_q = write("local_q.sql", quickstart.clone());
    let local_m = write(
        "local_m.sql",
        mix.replace("'out/mixed.parquet'", &format!("'{local_out}.parquet'")),
    );
    let s3_q = write(
        "s3_q.sql",
        quickstart.replace(
            "LOCATION 'data/sample.parquet'",
            "LOCATION 's3://mix-bucket/corpus/'",
        ),
    );
    let s3_m = write(
        "s3_m.sql",
        mix.replace("'out/mixed.parquet'", "'s3://mix-bucket/mixed.parquet'"),
    );

    // Shard the corpus into the bucket.
    let mut args = vec!["-q".to_string()];
    for (i, filter) in [
        "domain < 'C'",
        "domain >= 'C' AND domain < 'S'",
        "domain >= 'S'",
    ]
    .iter()
    .enumerate()
    {
        args.push("-c".into());
        args.push(format!("COPY (SELECT * FROM 'data/sample.parquet' WHERE {filter}) TO 's3://mix-bucket/corpus/shard-{i}.parquet' STORED AS PARQUET"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = run(&argv, &env);
    assert!(ok, "{err}");

    let digest = "SELECT sum(count) AS copies, samplemix_exact_sum(expected_count * samplemix_uniform(id, 7)) AS digest FROM weights";
    let (ok, local, err) = run(
        &[
            "-q", "--format", "csv", "-f", &local_q, "-f", &local_m, "-c", digest,
        ],
        &[],
    );
    assert!(ok, "local run: {err}");
    let (ok, remote, err) = run(
        &[
            "-q", "--format", "csv", "-f", &s3_q, "-f", &s3_m, "-c", digest,
        ],
        &env,
    );
    assert!(ok, "S3 run: {err}");
    let (local_digest, remote_digest) = (csv_row(&local), csv_row(&remote));
    assert_eq!(
        local_digest, remote_digest,
        "S3 pipeline differs from the local one"
    );
    let copies: u64 = local_digest.split(',').next().unwrap().parse().unwrap();

    // The mixed dataset in the bucket: one row per copy, same rows as the local output.
    let count_rows = |location: &str, env: &[(&str, String)]| -> String {
        let (ok, out, err) = run(
            &[
                "-q",
                "--format",
                "csv",
                "-c",
                &format!("SELECT count(*), count(DISTINCT id), max(copy) FROM '{location}'"),
            ],
            env,
        );
        assert!(ok, "{err}");
        csv_row(&out)
    };
    let remote_rows = count_rows("s3://mix-bucket/mixed.parquet", &env);
    assert_eq!(
        remote_rows,
        count_rows(&format!("{local_out}.parquet"), &[])
    );
    assert!(
        remote_rows.starts_with(&format!("{copies},")),
        "{remote_rows} vs {copies} copies"
    );
}

/// On S3 too, a COPY that fails mid-stream leaves the previous object as it was and no
/// temporary object behind.
#[test]
fn failed_copy_to_s3_keeps_the_previous_object() {
    let moto = Moto::start();
    moto.create_bucket("atomic-bucket");
    let ep = moto.endpoint();
    let target = "s3://atomic-bucket/out/mixed.parquet";
    let (ok, _, err) = run(
        &[
            "-q",
            "-c",
            &format!("COPY (SELECT id FROM 'data/sample.parquet') TO '{target}' STORED AS PARQUET"),
        ],
        &env(&ep),
    );
    assert!(ok, "{err}");
    let bad = "(SELECT samplemix_assert(v, v < 150000, 'boom at ', v) AS v FROM (SELECT unnest(range(0, 300000)) AS v))";
    let (ok, _, err) = run(
        &[
            "-q",
            "-c",
            &format!("COPY {bad} TO '{target}' STORED AS PARQUET"),
        ],
        &env(&ep),
    );
    assert!(!ok);
    assert!(
        err.contains("any previous output there is unchanged"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "secret printed: {err}");
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            &format!("SELECT count(*) FROM '{target}'"),
        ],
        &env(&ep),
    );
    assert!(ok, "{err}");
    assert_eq!(csv_row(&out), "860", "{out}");
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) FROM 's3://atomic-bucket/out/'",
        ],
        &env(&ep),
    );
    assert!(ok, "{err}");
    assert_eq!(
        csv_row(&out),
        "860",
        "a temporary object is left in the prefix: {out}"
    );
}

/// A corrupt shard under an S3 prefix is an error naming the object.
#[test]
fn corrupt_s3_shard_is_named() {
    let moto = Moto::start();
    moto.create_bucket("shards");
    let good = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample.parquet")).unwrap();
    moto.put_object("shards", "corpus/part-0.parquet", &good);
    moto.put_object("shards", "corpus/part-1.parquet", &good[..5000]);
    let (ok, out, err) = run(
        &["-q", "-c", "SELECT count(*) FROM 's3://shards/corpus/'"],
        &env(&moto.endpoint()),
    );
    assert!(!ok, "expected failure: {out}");
    assert!(
        err.contains("the bad Parquet file is s3://shards/corpus/part-1.parquet"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "secret leaked: {err}");
}

/// A 0-byte shard in a bucket is an error naming it, not 0 silently missing rows.
#[test]
fn empty_s3_shard_is_named() {
    let moto = Moto::start();
    moto.create_bucket("shards");
    let good = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample.parquet")).unwrap();
    moto.put_object("shards", "corpus/part-0.parquet", &good);
    moto.put_object("shards", "corpus/part-1.parquet", b"");
    for sql in [
        "SELECT count(*) FROM 's3://shards/corpus/'",
        "SELECT count(*) FROM near_duplicates('s3://shards/corpus/', 'id', 'text')",
    ] {
        let (ok, out, err) = run(&["-q", "-c", sql], &env(&moto.endpoint()));
        assert!(!ok, "expected failure: {out}");
        assert!(
            err.contains("'s3://shards/corpus/part-1.parquet' is an empty file (0 bytes)"),
            "{sql}: {err}"
        );
    }
}

/// Two COPYs to one S3 folder at once: one writes, the other fails at once naming the lock,
/// and the folder holds exactly one complete output.
#[test]
fn concurrent_copies_to_one_s3_folder_let_one_writer_in() {
    let moto = Moto::start();
    moto.create_bucket("conc");
    let ep = moto.endpoint();
    let copy = "COPY (SELECT value AS v, repeat('x', 100) AS s FROM generate_series(1, 300000)) TO 's3://conc/out/' STORED AS PARQUET";
    let envs = env(&ep);
    let results: Vec<(bool, String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| run(&["-q", "-c", copy], &envs)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<&String> = results.iter().filter(|r| !r.0).map(|r| &r.2).collect();
    // Either the second started while the first held the lock (it fails, naming it), or it
    // started after the first had finished (then both succeed, one after the other).
    for err in &failed {
        assert!(
            err.contains("another COPY to the same target is running")
                && err.contains(".samplemix-lock-out"),
            "{err}"
        );
    }
    assert!(failed.len() < 2, "{results:?}");
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM 's3://conc/out/'",
        ],
        &envs,
    );
    assert!(ok, "{err}");
    assert!(out.ends_with("n\n300000\n"), "{out}");
    let keys = moto.keys("conc");
    assert!(
        keys.iter()
            .all(|k| !k.contains(".samplemix-lock") && !k.contains(".samplemix-tmp")),
        "{keys:?}"
    );
    // The lock is an object created only where none exists (If-None-Match): one held by a
    // running process (this test) stops a COPY before it writes anything.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let holder = format!(
        "pid={}\nhost={}\nsince=1\n",
        std::process::id(),
        host.trim()
    );
    moto.put_object("conc", ".samplemix-lock-out", holder.as_bytes());
    let (ok, _, err) = run(&["-q", "-c", copy], &envs);
    assert!(
        !ok && err.contains("another COPY to the same target is running"),
        "{err}"
    );
    assert_eq!(moto.keys("conc").len(), keys.len() + 1);
}

/// A read through a slow but live link (a throttling proxy in front of moto) is not cut off:
/// each HTTP request may last at most --s3-request-timeout, and the read resumes where it
/// stopped until the object is read.
#[test]
fn slow_link_reads_resume_until_done() {
    let moto = Moto::start();
    moto.create_bucket("slow");
    let ep = moto.endpoint();
    let (ok, _, err) = run(
        &[
            "-q",
            "-c",
            "COPY (SELECT value AS v, md5(CAST(value AS VARCHAR)) AS s FROM generate_series(1, 150000)) TO 's3://slow/big.parquet' STORED AS PARQUET OPTIONS ('format.compression' 'uncompressed', 'format.dictionary_enabled' 'false')",
        ],
        &env(&ep),
    );
    assert!(ok, "{err}");
    // About 6 MB through 1 MB/s, each request cut after 2 s: several resumed reads.
    let proxy = Throttle::start(moto.port, 1 << 20);
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "--s3-request-timeout",
            "2",
            "-c",
            "SELECT count(*) AS n, count(DISTINCT s) AS d FROM 's3://slow/big.parquet'",
        ],
        &env(&proxy.endpoint()),
    );
    assert!(ok, "{err}");
    assert!(out.ends_with("n,d\n150000,150000\n"), "{out}");
}

/// `samplemix report` on a work folder in a bucket: the pipeline writes it there, the report
/// reads only the aggregates back and writes `report.html` beside them (or to `-o`), and the
/// page equals the one of a local run but for the work folder's name.
#[test]
fn report_of_a_pipeline_on_s3_equals_local() {
    let moto = Moto::start();
    moto.create_bucket("mix-bucket");
    let env = env(&moto.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let local_work = format!("{}/", dir.path().join("work").display());
    for work in ["s3://mix-bucket/run/", local_work.as_str()] {
        let args = pipeline_args("data/sample.parquet", work);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = run(&argv, &env);
        assert!(ok, "pipeline to {work}: {err}");
    }
    let (ok, out, err) = run(&["report", "s3://mix-bucket/run/"], &env);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "s3://mix-bucket/run/report.html");
    assert!(moto
        .keys("mix-bucket")
        .contains(&"run/report.html".to_string()));
    let from_s3 = dir.path().join("from-s3.html");
    let (ok, _, err) = run(
        &[
            "report",
            "s3://mix-bucket/run/",
            "-o",
            from_s3.to_str().unwrap(),
        ],
        &env,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["report", &local_work], &env);
    assert!(ok, "{err}");
    let local = std::fs::read_to_string(format!("{local_work}report.html")).unwrap();
    let remote = std::fs::read_to_string(&from_s3).unwrap();
    assert!(remote.contains("chart-clusters") && remote.contains("640,000"));
    assert_eq!(remote.replace("s3://mix-bucket/run/", &local_work), local);
}

/// A quality model written to S3 is read back by `quality_predict` from its URL with the same
/// predictions as from the session's table; `fasttext_predict` reads its model file from S3
/// (a file that is not a model is refused after it was read, naming the URL).
#[test]
fn learned_quality_models_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("models");
    let fit = "CREATE VIEW l AS SELECT text, CASE WHEN domain IN ('Wikipedia', 'Book', 'ArXiv') THEN 1 ELSE 0 END AS label FROM 'data/sample.parquet'; \
               CREATE TABLE m AS SELECT * FROM quality_model_fit(l, 'text', 'label', 'buckets=65536')";
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            fit,
            "-c",
            "COPY m TO 's3://models/q/m.parquet'",
            "-c",
            "SELECT sum(quality_predict(text, 'm')) = sum(quality_predict(text, 's3://models/q/m.parquet')) AS same, \
             count(quality_predict(text, 's3://models/q/m.parquet')) AS n FROM 'data/sample.parquet'",
        ],
        &env(&moto.endpoint()),
    );
    assert!(ok, "{err}");
    assert_eq!(csv_row(&out), "true,860", "{out}");

    moto.put_object("models", "ft/junk.bin", b"not a model");
    let (ok, out, err) = run(
        &[
            "-q",
            "-c",
            "SELECT fasttext_predict('hello', 's3://models/ft/junk.bin', '__label__hq')",
        ],
        &env(&moto.endpoint()),
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains("cannot load 's3://models/ft/junk.bin'")
            && err.contains("not a fastText model"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "secret leaked: {err}");
    let (ok, _, err) = run(
        &[
            "-q",
            "-c",
            "SELECT fasttext_predict('hello', 's3://models/ft/missing.bin', '__label__hq')",
        ],
        &env(&moto.endpoint()),
    );
    assert!(!ok && err.contains("argument 'model_path'"), "{err}");
}

/// `embed(text, model)` reads a model directory from S3 (the same vectors as from the local
/// copy); a prefix with no model is refused naming the argument and the missing file, and no
/// secret is printed.
#[test]
fn embedding_model_on_s3() {
    let moto = Moto::start();
    moto.create_bucket("models");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("tiny");
    common::write_static(
        &local,
        &["[UNK]", "hello", "world"],
        &[
            vec![0.0, 0.0, 0.0],
            vec![1.0, 2.0, 0.0],
            vec![0.0, 2.0, 1.0],
        ],
    );
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        moto.put_object(
            "models",
            &format!("tiny/{name}"),
            &std::fs::read(local.join(name)).unwrap(),
        );
    }
    let (ok, out, err) = run(
        &[
            "-q",
            "--format",
            "csv",
            "-c",
            &format!(
                "SELECT embed('Hello world', 's3://models/tiny') = embed('Hello world', '{}') AS same, \
                 array_length(embed('hello', 's3://models/tiny/')) AS d",
                local.display()
            ),
        ],
        &env(&moto.endpoint()),
    );
    assert!(ok, "{err}");
    assert_eq!(csv_row(&out), "true,3", "{out}");

    moto.put_object("models", "half/config.json", b"{\"model_type\": \"bert\"}");
    let (ok, _, err) = run(
        &["-q", "-c", "SELECT embed('x', 's3://models/half')"],
        &env(&moto.endpoint()),
    );
    assert!(!ok);
    assert!(
        err.contains("embed: argument 'model'")
            && err.contains("s3://models/half")
            && err.contains("tokenizer.json is missing"),
        "{err}"
    );
    let (ok, _, err) = run(
        &["-q", "-c", "SELECT embed('x', 's3://models/none')"],
        &env(&moto.endpoint()),
    );
    assert!(!ok && err.contains("embed: argument 'model'"), "{err}");
    assert!(!err.contains(SECRET), "secret leaked: {err}");
}
