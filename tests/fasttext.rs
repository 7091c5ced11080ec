//! `fasttext_predict` gives fastText's own probabilities: tiny models trained here by the
//! fastText wheel (`tests/fasttext_golden.py`: every loss, word n-grams 2 and 3, character
//! n-grams, one quantised `.ftz` with a pruned dictionary) on the sample corpus, and every
//! label's probability for real texts, an empty one, non-Latin scripts and a text holding a
//! label token, equal to the wheel's within 1e-5.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use common::{context, f64s, sql, strings};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;

/// Whitespace runs as one space: a fastText training line and a `predict` text are one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Golden {
    dir: tempfile::TempDir,
    texts: Vec<String>,
    /// (model, line) -> label -> probability.
    expected: HashMap<(String, usize), HashMap<String, f64>>,
}

async fn golden() -> Golden {
    let ctx = context(2).await;
    let rows = sql(
        &ctx,
        &["SELECT domain, text FROM 'data/sample.parquet' ORDER BY id"],
    )
    .await;
    let (domains, docs) = (strings(&rows, "domain"), strings(&rows, "text"));
    let dir = tempfile::tempdir().unwrap();
    let train: String = domains
        .iter()
        .zip(&docs)
        .map(|(d, t)| format!("__label__{d} {}\n", one_line(t)))
        .collect();
    let mut texts: Vec<String> = docs
        .iter()
        .step_by(37)
        .map(|t| one_line(t).chars().take(4000).collect())
        .collect();
    texts.extend(
        [
            "",
            "日本語のテキストです 中文的句子 Ελληνικά κείμενο русский текст",
            "__label__GitHub def main ( ) : return 0",
            "tabs\tand\u{b}vertical\u{c}feeds\rand carriage returns",
        ]
        .map(String::from),
    );
    std::fs::write(dir.path().join("train.txt"), train).unwrap();
    std::fs::write(dir.path().join("texts.txt"), texts.join("\n") + "\n").unwrap();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fasttext_golden.py"
        ))
        .arg(dir.path().join("train.txt"))
        .arg(dir.path().join("texts.txt"))
        .arg(dir.path())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "tests/fasttext_golden.py failed (scripts/test.sh installs its fasttext-numpy2-wheel): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected: HashMap<(String, usize), HashMap<String, f64>> = HashMap::new();
    for line in std::fs::read_to_string(dir.path().join("expected.tsv"))
        .unwrap()
        .lines()
    {
        let f: Vec<&str> = line.split('\t').collect();
        expected
            .entry((f[0].to_string(), f[1].parse().unwrap()))
            .or_default()
            .insert(f[2].to_string(), f[3].parse().unwrap());
    }
    Golden {
        dir,
        texts,
        expected,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn probabilities_equal_the_fasttext_wheel() {
    let g = golden().await;
    let ctx = context(3).await;
    let n = g.texts.len();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, false),
            Field::new("text", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
            Arc::new(StringArray::from(g.texts.clone())),
        ],
    )
    .unwrap();
    ctx.register_table(
        "texts",
        Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap()),
    )
    .unwrap();
    let models = [
        "softmax_ng2.bin",
        "hs_ng2.bin",
        "ova_ng2.bin",
        "ns_ng2.bin",
        "subwords_ng3.bin",
        "quantised_ng2.ftz",
    ];
    let mut checked = 0;
    for model in models {
        let path = g.dir.path().join(model);
        let labels = &g.expected[&(model.to_string(), 0)];
        assert_eq!(labels.len(), 7, "{model}: the wheel reports all 7 labels");
        for label in labels.keys() {
            let q = format!(
                "SELECT i, fasttext_predict(text, '{}', '{label}') AS p FROM texts ORDER BY i",
                path.display()
            );
            let got = f64s(&sql(&ctx, &[&q]).await, "p");
            assert_eq!(got.len(), n);
            for (i, p) in got.iter().enumerate() {
                let want = g.expected[&(model.to_string(), i)][label];
                assert!(
                    (p - want).abs() <= 1e-5,
                    "{model}, text {i} ({:?}), {label}: ours {p}, fastText {want}",
                    g.texts[i].chars().take(60).collect::<String>()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, models.len() * 7 * n);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_models_and_labels_are_named_errors() {
    let g = golden().await;
    let ctx = context(1).await;
    let err = |q: String| {
        let ctx = ctx.clone();
        async move {
            match ctx.sql(&q).await {
                Ok(df) => df.collect().await.err().map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            }
            .unwrap_or_else(|| panic!("{q}: expected an error"))
        }
    };
    let model = g.dir.path().join("softmax_ng2.bin");
    let e = err(format!(
        "SELECT fasttext_predict('hello', '{}', '__label__nope')",
        model.display()
    ))
    .await;
    assert!(
        e.contains("argument 'label'")
            && e.contains("no label '__label__nope'")
            && e.contains("__label__ArXiv"),
        "{e}"
    );

    // Truncated and corrupt files.
    let bytes = std::fs::read(&model).unwrap();
    let cut = g.dir.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(format!(
        "SELECT fasttext_predict('x', '{}', '__label__ArXiv')",
        cut.display()
    ))
    .await;
    assert!(
        e.contains("argument 'model_path'") && e.contains("truncated"),
        "{e}"
    );
    let junk = g.dir.path().join("junk.bin");
    std::fs::write(&junk, b"this is not a model at all, just text").unwrap();
    let e = err(format!(
        "SELECT fasttext_predict('x', '{}', '__label__ArXiv')",
        junk.display()
    ))
    .await;
    assert!(e.contains("not a fastText model"), "{e}");

    // A future file format version and an unsupervised model.
    let mut future = bytes.clone();
    future[4..8].copy_from_slice(&13i32.to_le_bytes());
    let fut = g.dir.path().join("future.bin");
    std::fs::write(&fut, &future).unwrap();
    let e = err(format!(
        "SELECT fasttext_predict('x', '{}', '__label__ArXiv')",
        fut.display()
    ))
    .await;
    assert!(e.contains("version 13 is not supported"), "{e}");
    let mut unsup = bytes.clone();
    // Arguments follow the 8-byte header: dim, ws, epoch, minCount, neg, wordNgrams, loss, model.
    unsup[8 + 7 * 4..8 + 8 * 4].copy_from_slice(&2i32.to_le_bytes());
    let sg = g.dir.path().join("skipgram.bin");
    std::fs::write(&sg, &unsup).unwrap();
    let e = err(format!(
        "SELECT fasttext_predict('x', '{}', '__label__ArXiv')",
        sg.display()
    ))
    .await;
    assert!(
        e.contains("skipgram") && e.contains("not a supervised classifier"),
        "{e}"
    );
    let mut bad_loss = bytes.clone();
    bad_loss[8 + 6 * 4..8 + 7 * 4].copy_from_slice(&9i32.to_le_bytes());
    let bl = g.dir.path().join("badloss.bin");
    std::fs::write(&bl, &bad_loss).unwrap();
    let e = err(format!(
        "SELECT fasttext_predict('x', '{}', '__label__ArXiv')",
        bl.display()
    ))
    .await;
    assert!(
        e.contains("its loss (code 9) is not one fastText defines"),
        "{e}"
    );
    let e = err("SELECT fasttext_predict('x', '/nonexistent/m.bin', '__label__a')".into()).await;
    assert!(e.contains("argument 'model_path'"), "{e}");

    // A replaced model file is read again (no stale cache in a long-lived session).
    let swap = g.dir.path().join("swap.bin");
    std::fs::copy(g.dir.path().join("softmax_ng2.bin"), &swap).unwrap();
    let q = format!(
        "SELECT fasttext_predict('{}', '{}', '__label__ArXiv') AS p",
        g.texts[0].replace('\'', "''"),
        swap.display()
    );
    let before = f64s(&sql(&ctx, &[&q]).await, "p")[0];
    std::fs::copy(g.dir.path().join("hs_ng2.bin"), &swap).unwrap();
    let after = f64s(&sql(&ctx, &[&q]).await, "p")[0];
    let want = g.expected[&("hs_ng2.bin".to_string(), 0)]["__label__ArXiv"];
    assert!(
        before != after && (after - want).abs() <= 1e-5,
        "{before} {after} {want}"
    );
}
