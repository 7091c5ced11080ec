//! COPY never loses data: it replaces only what samplemix wrote, never its own input, one writer
//! per target, no temporary output left behind; and the other shell-level limits of the
//! reliability round (memory tables under `-m`, empty Parquet shards).

mod common;

use std::path::Path;

use common::{samplemix, text};

fn sm(args: &[&str]) -> (bool, String, String) {
    let out = samplemix(args, &[]);
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn count(location: &str) -> String {
    let (ok, out, err) = sm(&[
        "-q",
        "--format",
        "csv",
        "-c",
        &format!("SELECT count(*) AS n FROM '{location}'"),
    ]);
    assert!(ok, "{err}");
    out.lines().last().unwrap_or_default().to_string()
}

const ROWS: &str = "(SELECT v FROM (SELECT unnest(range(0, 10)) AS v))";

#[test]
fn a_folder_with_foreign_files_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let m2 = dir.path().join("m2");
    std::fs::create_dir_all(m2.join(".git")).unwrap();
    std::fs::create_dir_all(m2.join("sub")).unwrap();
    std::fs::write(m2.join(".git/config"), "g").unwrap();
    std::fs::write(m2.join("sub/notes.txt"), "x").unwrap();
    let target = format!("{}/", m2.display());
    let (ok, _, err) = sm(&[
        "-q",
        "-c",
        &format!("COPY (SELECT 1 AS v) TO '{target}' STORED AS PARQUET"),
    ]);
    assert!(!ok);
    assert!(
        err.contains(
            "refused: the folder holds 2 file(s) that samplemix's COPY did not write there"
        ) && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(files(&m2), vec![".git/config", "sub/notes.txt"]);
    // Nothing beside the folder either: no lock, no temporary output.
    assert_eq!(
        files(dir.path()),
        vec!["m2/.git/config", "m2/sub/notes.txt"]
    );
}

#[test]
fn a_copy_may_not_overwrite_its_own_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::copy(
        "data/sample.parquet",
        dir.path().join("data/sample.parquet"),
    )
    .unwrap();
    for (query, target) in [
        (
            format!("SELECT count(*) FROM '{d}/data/'"),
            format!("{d}/data/"),
        ),
        (
            format!("SELECT * FROM '{d}/data/sample.parquet'"),
            format!("{d}/data/sample.parquet"),
        ),
        // The input inside the target folder, and through a relative spelling.
        (
            format!("SELECT * FROM '{d}/data/sample.parquet'"),
            format!("{d}/data/../data/"),
        ),
    ] {
        let (ok, _, err) = sm(&[
            "-q",
            "-c",
            &format!("COPY ({query}) TO '{target}' STORED AS PARQUET"),
        ]);
        assert!(!ok, "{target}");
        assert!(err.contains("which the COPY would overwrite"), "{err}");
    }
    assert_eq!(count(&format!("{d}/data/")), "860");
    assert_eq!(files(dir.path()), vec!["data/sample.parquet"]);
}

#[test]
fn copy_to_the_current_folder_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(cwd.join(".hidden")).unwrap();
    std::fs::write(cwd.join(".hidden/h"), "h").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_samplemix"))
        .args(["-q", "-c", "COPY (SELECT 1 AS v) TO './' STORED AS PARQUET"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    // The folder holds a file of the user's: refused (not "failed, unchanged" after
    // publishing elsewhere), and nothing written anywhere.
    assert!(err.contains("COPY to './': refused"), "{err}");
    assert_eq!(files(dir.path()), vec!["cwd/.hidden/h"]);
}

#[test]
fn reruns_replace_only_our_files_in_any_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = format!("{}/out/", dir.path().display());
    let partitioned = format!(
        "COPY (SELECT v, v % 2 AS p FROM {ROWS}) TO '{out}' STORED AS PARQUET PARTITIONED BY (p)"
    );
    let plain = format!("COPY {ROWS} TO '{out}' STORED AS PARQUET");
    for statement in [&plain, &partitioned, &partitioned, &plain] {
        let (ok, _, err) = sm(&["-q", "-c", statement]);
        assert!(ok, "{statement}: {err}");
        assert_eq!(count(&out), "10");
    }
    let left = files(dir.path());
    assert!(
        left.len() == 2
            && left[0] == ".samplemix-manifest-out"
            && left[1].starts_with("out/")
            && !left[1].contains("p="),
        "{left:?}"
    );
    // A file the user adds makes the next COPY refuse, and keeps everything.
    std::fs::write(dir.path().join("out/mine.txt"), "mine").unwrap();
    let (ok, _, err) = sm(&["-q", "-c", &plain]);
    assert!(!ok && err.contains("refused"), "{err}");
    assert_eq!(files(&dir.path().join("out")).len(), 2);
}

#[test]
fn copy_onto_a_symlink_writes_the_file_it_points_to() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.parquet");
    let link = dir.path().join("link.parquet");
    let (ok, _, err) = sm(&[
        "-q",
        "-c",
        &format!(
            "COPY (SELECT 1 AS v) TO '{}' STORED AS PARQUET",
            real.display()
        ),
    ]);
    assert!(ok, "{err}");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (ok, _, err) = sm(&[
        "-q",
        "-c",
        &format!("COPY {ROWS} TO '{}' STORED AS PARQUET", link.display()),
    ]);
    assert!(ok, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(count(&real.to_string_lossy()), "10");
    assert_eq!(count(&link.to_string_lossy()), "10");
}

#[test]
fn leftovers_of_killed_copies_are_removed_and_a_live_lock_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = format!("{}/k.parquet", d.display());
    // What a killed COPY to k.parquet leaves: object_store's staging file, a temporary folder,
    // and its lock (a process of this host that no longer exists).
    std::fs::write(
        d.join(".samplemix-tmp-123-456-k.parquet#1"),
        vec![0u8; 1000],
    )
    .unwrap();
    std::fs::create_dir(d.join(".samplemix-tmp-123-457-k.parquet")).unwrap();
    std::fs::write(d.join(".samplemix-tmp-123-457-k.parquet/x"), "x").unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let lock = d.join(".samplemix-lock-k.parquet");
    std::fs::write(
        &lock,
        format!("pid={dead}\nhost={}\nsince=1\n", host.trim()),
    )
    .unwrap();
    // Another target's temporary file (its name ends like ours) is not ours to remove.
    std::fs::write(d.join(".samplemix-tmp-1-2-a-k.parquet"), "other").unwrap();
    let (ok, _, err) = sm(&[
        "-q",
        "-c",
        &format!("COPY {ROWS} TO '{target}' STORED AS PARQUET"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        files(d),
        vec![".samplemix-tmp-1-2-a-k.parquet", "k.parquet"]
    );
    // A lock held by a running process (this test) stops a second writer, with its holder named.
    std::fs::write(
        &lock,
        format!(
            "pid={}\nhost={}\nsince=1\n",
            std::process::id(),
            host.trim()
        ),
    )
    .unwrap();
    let (ok, _, err) = sm(&[
        "-q",
        "-c",
        &format!("COPY (SELECT 1 AS v) TO '{target}' STORED AS PARQUET"),
    ]);
    assert!(!ok);
    assert!(
        err.contains("another COPY to the same target is running")
            && err.contains(&format!("process {}", std::process::id()))
            && err.contains(".samplemix-lock-k.parquet"),
        "{err}"
    );
    assert_eq!(count(&target), "10");
}

#[test]
fn a_timed_out_copy_leaves_no_temporary_output() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("{}/t.parquet", dir.path().display());
    let (ok, _, err) = sm(&[
        "-q",
        "-c",
        &format!("COPY {ROWS} TO '{target}' STORED AS PARQUET"),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = sm(&[
        "-q",
        "--query-timeout",
        "1",
        "-c",
        &format!(
            "COPY (SELECT value AS v, repeat('x', 200) AS s FROM generate_series(0, 100000000000)) TO '{target}' STORED AS PARQUET"
        ),
    ]);
    assert!(!ok);
    assert!(
        err.contains("ran longer than --query-timeout")
            && err.contains("any previous output there is unchanged"),
        "{err}"
    );
    assert_eq!(files(dir.path()), vec!["t.parquet"]);
    assert_eq!(count(&target), "10");
}

#[test]
fn an_empty_parquet_shard_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    for (i, filter) in ["domain < 'M'", "domain >= 'M'"].iter().enumerate() {
        let (ok, _, err) = sm(&[
            "-q",
            "-c",
            &format!("COPY (SELECT * FROM 'data/sample.parquet' WHERE {filter}) TO '{d}/p{i}.parquet' STORED AS PARQUET"),
        ]);
        assert!(ok, "{err}");
    }
    assert_eq!(count(&format!("{d}/")), "860");
    std::fs::write(dir.path().join("p2.parquet"), b"").unwrap();
    for sql in [
        format!("SELECT count(*) FROM '{d}/'"),
        format!("SELECT count(*) FROM near_duplicates('{d}/', 'id', 'text')"),
        format!("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{d}/'"),
    ] {
        let (ok, _, err) = sm(&["-q", "-c", &sql]);
        assert!(!ok, "{sql}");
        assert!(
            err.contains(&format!(
                "'{d}/p2.parquet' is an empty file (0 bytes), not Parquet"
            )),
            "{sql}: {err}"
        );
    }
}

#[test]
fn memory_tables_count_against_the_memory_limit() {
    let big = "CREATE TABLE big AS SELECT v, repeat('x', 1000) AS s FROM (SELECT unnest(range(0, 200000)) AS v)";
    let (ok, _, err) = sm(&["-q", "-m", "64M", "-c", big]);
    assert!(!ok);
    assert!(
        err.contains("CREATE TABLE big ... AS: the table's rows need more memory than the session's memory pool allows"),
        "{err}"
    );
    // A table that fits is created, and the memory it holds is still counted afterwards: a
    // second one that only fits alone is refused, and fits again once the first is dropped.
    let small = |name: &str| {
        format!("CREATE TABLE {name} AS SELECT v, repeat('x', 1000) AS s FROM (SELECT unnest(range(0, 40000)) AS v)")
    };
    let (ok, out, err) = sm(&[
        "-q",
        "-m",
        "64M",
        "--format",
        "csv",
        "-c",
        &small("a"),
        "-c",
        "SELECT count(*) AS n FROM a",
    ]);
    assert!(ok, "{err}");
    assert!(out.ends_with("n\n40000\n"), "{out}");
    let (ok, _, err) = sm(&["-q", "-m", "64M", "-c", &small("a"), "-c", &small("b")]);
    assert!(!ok && err.contains("CREATE TABLE b ... AS"), "{err}");
    let (ok, _, err) = sm(&[
        "-q",
        "-m",
        "64M",
        "-c",
        &small("a"),
        "-c",
        "DROP TABLE a",
        "-c",
        &small("b"),
    ]);
    assert!(ok, "{err}");
}
