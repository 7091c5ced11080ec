//! `samplemix report WORK`: the HTML page for the sample corpus's pipeline run, checked mark by
//! mark against independent counts of the work folder, and opened in headless Chromium.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::pipeline_args;

fn samplemix(args: &[&str]) -> Output {
    common::samplemix(args, &[])
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        common::text(&o.stdout),
        common::text(&o.stderr)
    );
    common::text(&o.stdout)
}

/// The pipeline on the sample corpus, written under `dir`; returns WORK (with its '/').
fn pipeline(dir: &Path) -> String {
    let work = format!("{}/", dir.join("work").display());
    let args = pipeline_args("data/sample.parquet", &work);
    ok(samplemix(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    work
}

/// One number from a query, by the shell (csv, no header).
fn number(sql: &str) -> usize {
    let out = ok(samplemix(&["-q", "--format", "csv", "-c", sql]));
    let line = out
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no result for {sql}: {out}"));
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{sql}: {line}"))
}

/// The `<figure id="...">` of one chart.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<figure class=\"chart\" id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let end = html[start..].find("</figure>").expect("figure closes") + start;
    &html[start..end]
}

fn marks(html: &str, id: &str) -> usize {
    let fig = figure(html, id);
    let counted = fig.matches("class=\"mark\"").count();
    let declared: usize = fig
        .split("data-marks=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .expect("data-marks");
    assert_eq!(counted, declared, "{id}: marks drawn vs declared");
    assert!(
        fig.contains("<figcaption>") && fig.contains("<desc id="),
        "{id}: caption and text alternative"
    );
    counted
}

fn chromium() -> String {
    let found = std::env::var("CHROMIUM").ok().or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find(|b| {
                Command::new(b)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .map(|b| b.to_string())
    });
    found.expect("headless Chromium is needed: scripts/test.sh installs Debian's chromium (or set CHROMIUM=/path/to/chrome)")
}

#[test]
fn sample_report_has_every_chart_and_opens_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let work = pipeline(dir.path());
    let printed = ok(samplemix(&["report", &work]));
    let expected_path = format!("{work}report.html");
    assert_eq!(
        printed.trim(),
        expected_path,
        "prints where the report went"
    );
    let html = std::fs::read_to_string(&expected_path).unwrap();

    // Self-contained: no script, no external resource.
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network reference"
    );
    assert!(
        !html.contains("NaN") && !html.contains("inf\""),
        "no broken numbers"
    );

    let q = |sql: &str| number(&sql.replace("WORK", &work));
    let domains = q("SELECT count(DISTINCT domain) FROM 'WORKdocs/'");
    let corpus_domains = number("SELECT count(DISTINCT domain) FROM 'data/sample.parquet'");
    let clusters = q("SELECT count(DISTINCT cluster) FROM 'WORKscored/'");
    let copy_values = q("SELECT count(DISTINCT count) FROM 'WORKweights/'");
    assert!(domains >= 2 && clusters >= 2 && copy_values >= 2);
    assert_eq!(
        marks(&html, "chart-domains"),
        2 * domains,
        "one bar per domain, source and mix"
    );
    assert_eq!(
        marks(&html, "chart-quality"),
        2 * 10 * domains,
        "ten bins per domain, source and mix"
    );
    assert_eq!(
        marks(&html, "chart-clusters"),
        clusters,
        "one bubble per cluster"
    );
    assert_eq!(
        marks(&html, "chart-copies"),
        copy_values,
        "one bar per number of copies"
    );
    assert_eq!(
        marks(&html, "chart-budget"),
        4,
        "budget, expected, realised, source"
    );
    assert_eq!(
        marks(&html, "chart-dedup"),
        corpus_domains,
        "one bar per corpus domain"
    );
    assert!(
        figure(&html, "chart-budget").contains("640,000"),
        "the run's budget is shown"
    );

    // The findings name the domain whose share changed most, as the per-domain table says.
    let top = ok(samplemix(&[
        "-q", "--format", "csv", "-c",
        &format!("SELECT domain FROM (SELECT d.domain, abs(CAST(sum(w.count * d.tokens) AS DOUBLE) / (SELECT sum(w2.count * d2.tokens) FROM '{work}weights/' w2 JOIN '{work}docs/' d2 ON w2.id = d2.id) - CAST(sum(d.tokens) AS DOUBLE) / (SELECT sum(tokens) FROM '{work}docs/')) AS change FROM '{work}docs/' d JOIN '{work}weights/' w ON w.id = d.id GROUP BY d.domain) ORDER BY change DESC LIMIT 1"),
    ]));
    let top = top.lines().nth(1).unwrap().trim().to_string();
    assert!(
        html.contains(&format!("Largest change of share: <strong>{top}</strong>")),
        "finding names {top}"
    );

    // Rerun: the same bytes (no timestamp), replacing our own report.
    ok(samplemix(&["report", &work]));
    assert_eq!(
        std::fs::read_to_string(&expected_path).unwrap(),
        html,
        "deterministic"
    );

    // A real browser renders it without console errors; the same check sees a broken page's.
    let shot = dir.path().join("report.png");
    let console = browser_console(&expected_path, &shot);
    assert!(console.is_empty(), "console messages: {console:?}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "a real screenshot ({} bytes)",
        png.len()
    );
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><svg><rect width=\"5\" height=\"-3\"/></svg>",
    )
    .unwrap();
    let seen = browser_console(broken.to_str().unwrap(), &dir.path().join("broken.png"));
    assert!(
        seen.iter().any(|l| l.contains("negative value")),
        "the console check works: {seen:?}"
    );
}

/// Render `page` in headless Chromium to a screenshot; the console messages it logged.
fn browser_console(page: &str, shot: &Path) -> Vec<String> {
    let browser = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1000,3000",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{page}"),
        ])
        .output()
        .expect("run chromium");
    let log = String::from_utf8_lossy(&browser.stderr).into_owned();
    assert!(browser.status.success(), "chromium failed: {log}");
    log.lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect()
}

#[test]
fn report_replaces_only_a_report_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let work = pipeline(dir.path());
    // -o onto a file that is not a report: refused, file unchanged.
    let notes = dir.path().join("notes.html");
    std::fs::write(&notes, "<p>my notes</p>").unwrap();
    let out = samplemix(&["report", &work, "-o", notes.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a samplemix report"), "{err}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "<p>my notes</p>");
    // -o into a new folder: created.
    let target = dir.path().join("reports/mix.html");
    let printed = ok(samplemix(&[
        "report",
        &work,
        "-o",
        target.to_str().unwrap(),
    ]));
    assert_eq!(printed.trim(), target.to_str().unwrap());
    assert!(std::fs::read_to_string(&target)
        .unwrap()
        .contains("chart-clusters"));
    // A folder that is not a pipeline's work folder: the missing output is named.
    let empty = dir.path().join("nothing/");
    std::fs::create_dir_all(&empty).unwrap();
    let out = samplemix(&["report", empty.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("summary.parquet' is missing") && err.contains("sql/pipeline.sql"),
        "{err}"
    );
    assert!(!empty.join("report.html").exists());
}
