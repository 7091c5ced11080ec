//! Hostile but fair inputs, each with its exact outcome: the value, or an error whose text
//! names the function, argument or thing at fault. Never a panic, a hang or a silent wrong
//! value. (More hostile cases live in sql/*.slt: weights.slt, embed_cluster.slt, ...; the S3
//! and shell cases in tests/shell.rs and tests/s3.rs.)

mod common;

use common::context;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

/// What a statement must give: the first value of the first row, or an error containing text.
enum Want {
    Value(&'static str),
    Error(&'static str),
}
use Want::{Error, Value};

async fn outcome(ctx: &SessionContext, sql: &str) -> Result<String, String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok("<no rows>".to_string());
    };
    let options = FormatOptions::default().with_null("NULL");
    let f =
        ArrayFormatter::try_new(batch.column(0).as_ref(), &options).map_err(|e| e.to_string())?;
    Ok(f.value(0).to_string())
}

const CASES: &[(&str, Want)] = &[
    // token_count
    ("SELECT token_count(NULL)", Value("NULL")),
    ("SELECT token_count('')", Value("0")),
    ("SELECT token_count('hello', 'CL100K_BASE')", Value("1")),
    ("SELECT token_count(repeat('ab ', 50000)) > 0", Value("true")),
    ("SELECT token_count(42)", Error("token_count: argument 'text' must be a string")),
    ("SELECT token_count()", Error("token_count: expected 1 to 2 arguments")),
    ("SELECT token_count('a', 'p50k')", Error("token_count: argument 'encoding': unknown encoding 'p50k'; accepted: o200k_base, cl100k_base")),
    // quality_score / quality_signals
    ("SELECT quality_score(NULL)", Value("NULL")),
    ("SELECT quality_score('') BETWEEN 0 AND 10", Value("true")),
    ("SELECT quality_score(chr(0)) BETWEEN 0 AND 10", Value("true")),
    ("SELECT quality_score(arrow_cast('some text.', 'LargeUtf8')) = quality_score('some text.')", Value("true")),
    ("SELECT quality_score(arrow_cast('some text.', 'Dictionary(Int32, Utf8)')) = quality_score('some text.')", Value("true")),
    ("SELECT quality_score(repeat('spam ', 100000)) < 5", Value("true")),
    ("SELECT quality_signals(1)", Error("quality_signals: argument 'text' must be a string")),
    ("SELECT quality_score('a', 'b')", Error("quality_score: expected 1 argument (text), got 2")),
    // embed
    ("SELECT embed('x', 0)", Error("embed: argument 'dim' must be between 1 and 8192, got 0")),
    ("SELECT embed('x', 8193)", Error("embed: argument 'dim' must be between 1 and 8192, got 8193")),
    ("SELECT embed('x', -1)", Error("embed: argument 'dim' must be between 1 and 8192, got -1")),
    ("SELECT embed('x', 2.5)", Error("embed: argument 'dim'")),
    ("SELECT embed(1)", Error("embed: argument 'text' must be a string")),
    ("SELECT embed(NULL, 4) IS NULL", Value("true")),
    ("SELECT array_length(embed('', 3))", Value("3")),
    // kmeans_fit
    ("SELECT * FROM kmeans_fit(docs_e, 'emb', 0)", Error("kmeans_fit: argument 'k' must be at least 1, got 0")),
    ("SELECT * FROM kmeans_fit(docs_e, 'emb', 51)", Error("kmeans_fit: argument 'k' (51) exceeds the 50 non-NULL rows of 'docs_e'")),
    ("SELECT * FROM kmeans_fit(docs_e, 'emb', 3, 100, 0, 10, 'dot')", Error("kmeans_fit: argument 'metric': unknown metric 'dot'")),
    ("SELECT * FROM kmeans_fit('nope/missing.parquet', 'emb', 3)", Error("no file at 'nope/missing.parquet'")),
    ("SELECT * FROM kmeans_fit(docs_e, 'emb')", Error("kmeans_fit: expected")),
    ("SELECT * FROM kmeans_fit(docs, 'text', 3)", Error("kmeans_fit: argument 'column' must be a List or FixedSizeList of Float32 or Float64")),
    ("SELECT * FROM kmeans_fit(nulls, 'emb', 1)", Error("kmeans_fit: argument 'table': 'nulls' has no non-NULL 'emb' rows to fit")),
    ("SELECT * FROM kmeans_fit(huge, 'column1', 1)", Error("kmeans_fit: argument 'column'")),
    ("SELECT count(*) FROM kmeans_fit(docs_e, 'emb', 3, 100, 0, 10, 'L2')", Value("3")),
    // diversity_cluster
    ("SELECT count(diversity_cluster(emb, 'c')) FROM docs_e", Value("50")),
    ("SELECT diversity_cluster(emb, NULL) FROM docs_e", Error("diversity_cluster: argument 'centroids' must not be NULL")),
    ("SELECT diversity_cluster(emb, id) FROM docs_e", Error("diversity_cluster: argument 'centroids'")),
    ("SELECT diversity_cluster(embed('x', 4), 'c')", Error("diversity_cluster: embedding dimension 4 does not match the dimension 8 of centroids 'c'")),
    ("SELECT diversity_cluster([1.0, 'NaN'::double, 0, 0, 0, 0, 0, 0], 'c')", Error("diversity_cluster: argument 'embedding' contains NaN or infinite values")),
    ("SELECT diversity_cluster(emb, 'c_dup') FROM docs_e", Error("diversity_cluster: argument 'centroids': 'c_dup' has cluster id 0 more than once")),
    ("SELECT diversity_cluster(emb, 'c_empty') FROM docs_e", Error("diversity_cluster: argument 'centroids': 'c_empty' has no rows")),
    ("SELECT diversity_cluster(arrow_cast(NULL, 'List(Float32)'), 'c') IS NULL", Value("true")),
    // samplemix_uniform / samplemix_distance / samplemix_exact_sum
    ("SELECT samplemix_uniform('x', NULL) IS NULL", Value("true")),
    ("SELECT samplemix_uniform('x', 18446744073709551615) = samplemix_uniform('x', -1)", Value("true")),
    ("SELECT samplemix_distance([1e300, 0.0], [0.0, 0.0], 'l2')", Value("1e300")),
    ("SELECT samplemix_distance([1.0], [1.0, 2.0], 'l2')", Error("samplemix_distance")),
    ("SELECT samplemix_distance([1.0], [2.0], 'manhattan')", Error("samplemix_distance: argument 'metric': unknown metric 'manhattan'")),
    ("SELECT samplemix_distance([1.0, 'NaN'::double], [1.0, 1.0], 'l2')", Error("samplemix_distance")),
    ("SELECT samplemix_exact_sum(x) FROM (VALUES ('inf'::double)) t(x)", Error("samplemix_exact_sum")),
    // The exact sum spans the whole f64 range: huge values sum (and cancel) exactly.
    ("SELECT samplemix_exact_sum(x) FROM (VALUES (5e18)) t(x)", Value("5e18")),
    ("SELECT samplemix_exact_sum(x) FROM (VALUES (1e308), (1e308), (-1e308)) t(x)", Value("1e308")),
    ("SELECT samplemix_round(x, 'a', 0) FROM (VALUES ('NaN'::double)) t(x)", Error("samplemix_round: argument 'expected_count'")),
    ("SELECT samplemix_round(1e19, 'a', 0)", Error("samplemix_round: argument 'expected_count'")),
    ("SELECT samplemix_exact_sum(x) FROM (VALUES (1.0)) t(x) WHERE false", Value("NULL")),
    // samplemix_weights arguments
    ("SELECT * FROM samplemix_weights(s, c3, NULL, 0.2, 100)", Error("samplemix_weights: argument 'alpha'")),
    ("SELECT * FROM samplemix_weights(s, c3, 0.5, 0.2, 'abc')", Error("samplemix_weights: argument 'budget_tokens'")),
    ("SELECT * FROM samplemix_weights(s, c3, 0.5, 0.2, 100, 0, 'tokens', 'mean', '', 1)", Error("samplemix_weights: expected 5 to 9 arguments")),
    ("SELECT * FROM samplemix_weights(s, c3, 0.5, 0.2, 100, 0, 'tokens', 'mean', 'rounding')", Error("samplemix_weights: argument 'options': 'rounding' is not key=value")),
    ("SELECT count(*) FROM samplemix_weights(s, c3, 0.5, 0.2, 100, 0, 'tokens', 'mean', '')", Value("5")),
    ("SELECT * FROM samplemix_weights(s, c3, 0.5, 0.2, 100, 1.5)", Error("samplemix_weights: argument 'seed' must be an integer")),
    ("SELECT * FROM samplemix_weights(s, c_nocentroid, 0.5, 0.2, 100)", Error("samplemix_weights: argument 'centroids': table 'c_nocentroid' has no column 'centroid'")),
    ("SELECT * FROM samplemix_weights(s, c3, 0.5, 0.2, 1e300)", Error("samplemix_weights: an expected count is not a number below 9.2e18")),
    ("SELECT sum(count) FROM samplemix_weights(s, c3, 0.5, 0.2, 0.001)", Value("0")),
    // Σ tokens = 2.5e19 > 2^63: the sums do not wrap (N·budget/T_src = 5·1e19/2.5e19 = 2).
    ("SELECT round(sum(expected_count), 9) FROM samplemix_weights(s_big, c3, 0.5, 0.2, 1e19, 0, 'documents')", Value("2.0")),
    ("SELECT round(sum(expected_count), 9) FROM samplemix_weights(s_big, c3, 0.5, 0.2, 1e19, 0, 'documents', 'mean', 'max_copies=3')", Value("2.0")),
    ("SELECT embed('x', NULL)", Error("embed: argument 'dim'")),
    // Round 3: messages, seeds, options.
    ("SELECT samplemix_assert(1, false, NULL, NULL)", Error("samplemix_assert: 'ok' is false")),
    ("SELECT samplemix_assert(1, NULL, NULL, 'row 7')", Error("samplemix_assert: 'ok' is NULL (detail: row 7)")),
    ("SELECT samplemix_assert(1, false, 'bad: ', NULL)", Error("bad: ")),
    ("SELECT (SELECT sum(count * length(id)) FROM samplemix_weights(s, c3, 0.5, 0.2, 100, 18446744073709551615)) = (SELECT sum(count * length(id)) FROM samplemix_weights(s, c3, 0.5, 0.2, 100, -1))", Value("true")),
    ("SELECT count(*) FROM kmeans_fit(docs_e, 'emb', 3, 100, 18446744073709551615)", Value("3")),
    ("SELECT * FROM kmeans_fit(docs_e, 'emb', 3, 100, 0, 9223372036854775808)", Error("kmeans_fit: argument 'max_iter' must be an integer from -9223372036854775808 to 9223372036854775807, got 9223372036854775808")),
    ("SELECT * FROM samplemix_weights(s, c3, 0.5, 0.2, 100, 0, 'tokens', 'mean', 'max_copies=3, max_copies=4')", Error("samplemix_weights: argument 'options': key 'max_copies' is given twice")),
    ("SELECT * FROM samplemix_weights(s, c3, 0.5, 0.2, 1e300)", Error("(largest expected count: 1.")),
    ("SELECT * FROM near_duplicates(fids, 'id', 't')", Error("near_duplicates: argument 'id_column': column 'id' of 'fids' is Float64; ids must compare exactly")),
    // Tables and files
    ("SELECT * FROM 'no/such/file.parquet'", Error("cannot read 'no/such/file.parquet': no file at 'no/such/file.parquet'")),
    ("SELECT * FROM 'no/such/folder/'", Error("no file at 'no/such/folder/'")),
    ("SELECT * FROM kmeans_fit('__CORRUPT__', 'emb', 1)", Error("kmeans_fit: argument 'table'")),
];

#[tokio::test]
async fn hostile_inputs_give_their_exact_outcome() {
    let ctx = context(2).await;
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.parquet");
    // A parquet frame around garbage metadata. (A footer length beyond the file start makes
    // parquet 59.3.2 subtract past zero: a panic in debug builds, upstream.)
    let mut bytes = b"PAR1".to_vec();
    bytes.extend_from_slice(&[b'x'; 100]);
    bytes.extend_from_slice(&10u32.to_le_bytes());
    bytes.extend_from_slice(b"PAR1");
    std::fs::write(&corrupt, bytes).unwrap();
    let corrupt = corrupt.to_string_lossy().into_owned();
    for setup in [
        "CREATE TABLE docs AS SELECT * FROM 'data/sample.parquet' ORDER BY id LIMIT 50",
        "CREATE TABLE docs_e AS SELECT id, embed(text, 8) AS emb FROM docs",
        "CREATE TABLE nulls AS SELECT arrow_cast(NULL, 'List(Float32)') AS emb",
        "CREATE TABLE huge AS VALUES ([1e300, 1.0])",
        "CREATE TABLE c AS SELECT * FROM kmeans_fit(docs_e, 'emb', 3)",
        "CREATE TABLE c_dup AS SELECT * FROM c UNION ALL SELECT * FROM c",
        "CREATE TABLE c_empty AS SELECT * FROM c WHERE false",
        "CREATE TABLE c3 AS SELECT column1 AS \"cluster\", column2 AS size, column3 AS centroid, column4 AS metric FROM (VALUES (0, 2, [0.0, 0.0], 'l2'), (1, 2, [3.0, 4.0], 'l2'))",
        "CREATE TABLE c_nocentroid AS SELECT \"cluster\", size, metric FROM c3",
        "CREATE TABLE s AS SELECT column1 AS id, column2 AS quality, column3 AS \"cluster\", column4 AS distance, column5 AS tokens FROM (VALUES ('a', 9.0, 0, 1.0, 100), ('b', 5.0, 0, 3.0, 200), ('c', 7.0, 1, 2.0, 50), ('d', 1.0, 1, 2.0, 50), ('e', 3.0, 1, 0.5, 10))",
        "CREATE TABLE fids AS SELECT column1 AS id, column2 AS t FROM (VALUES (0.0, 'same text here'), (-0.0, 'same text here'))",
        "CREATE TABLE s_big AS SELECT id, quality, \"cluster\", distance, CAST(5000000000000000000 AS BIGINT) AS tokens FROM s",
    ] {
        ctx.sql(setup).await.unwrap_or_else(|e| panic!("{setup}: {e}")).collect().await.unwrap_or_else(|e| panic!("{setup}: {e}"));
    }
    let mut failures = Vec::new();
    for (sql, want) in CASES {
        let sql = sql.replace("__CORRUPT__", &corrupt);
        let got = outcome(&ctx, &sql).await;
        let ok = match (want, &got) {
            (Value(v), Ok(g)) => g == v,
            (Error(e), Err(g)) => {
                let e = e.replace("__CORRUPT__", &corrupt);
                g.contains(&e) && !g.contains("Internal error") && !g.contains("panicked")
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{sql}\n    got:  {got:?}"));
        }
    }
    assert!(CASES.len() >= 60, "only {} cases", CASES.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
