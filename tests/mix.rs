//! samplemix_weights against an independent f64 computation, its invariants, determinism
//! across partitionings and input orders, and the plain-SQL form.

mod common;

use common::{context, f64s, sql, strings};
use datafusion::prelude::SessionContext;

/// (id, quality, cluster, distance, tokens)
type Row = (String, f64, i64, f64, i64);

/// The numeric output columns of `samplemix_weights`, `count` last.
const OUTPUT_COLUMNS: [&str; 6] = [
    "quality_norm",
    "diversity",
    "diversity_norm",
    "weight",
    "expected_count",
    "count",
];

/// Generated scored rows: uneven clusters (1, 3, 10, 50, 136 rows), one cluster of identical
/// points (compactness 0), tied qualities.
fn generated() -> (Vec<Row>, Vec<[f64; 4]>) {
    let sizes = [1usize, 3, 10, 50, 136];
    let mut rows = Vec::new();
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for (cl, n) in sizes.iter().enumerate() {
        for i in 0..*n {
            let quality = (next() * 20.0).floor() / 2.0; // ties on purpose
            let distance = if cl == 1 { 0.0 } else { 0.1 + next() };
            let tokens = 10 + (next() * 990.0) as i64;
            rows.push((
                format!("doc-{cl}-{i}"),
                quality,
                cl as i64,
                distance,
                tokens,
            ));
        }
    }
    let centroids = vec![
        [0.0, 0.0, 0.0, 1.0],
        [1.0, 2.0, 0.0, 0.0],
        [3.0, 0.0, 1.0, 1.0],
        [0.0, 5.0, 5.0, 0.0],
        [2.0, 2.0, 2.0, 2.0],
    ];
    (rows, centroids)
}

async fn register(
    ctx: &SessionContext,
    rows: &[(String, f64, i64, f64, i64)],
    centroids: &[[f64; 4]],
) {
    let values: Vec<String> = rows
        .iter()
        .map(|(id, q, c, d, t)| format!("('{id}', {q:?}, {c}, {d:?}, {t})"))
        .collect();
    let cents: Vec<String> = centroids
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "({i}, 1, [{:?}, {:?}, {:?}, {:?}], 'l2')",
                c[0], c[1], c[2], c[3]
            )
        })
        .collect();
    sql(ctx, &[
        &format!("CREATE TABLE raw AS VALUES {}", values.join(", ")),
        "CREATE TABLE scored AS SELECT column1 AS id, column2 AS quality, column3 AS cluster, column4 AS distance, column5 AS tokens FROM raw",
        &format!("CREATE TABLE craw AS VALUES {}", cents.join(", ")),
        "CREATE TABLE centroids AS SELECT column1 AS cluster, column2 AS size, column3 AS centroid, column4 AS metric FROM craw",
    ])
    .await;
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

#[tokio::test]
async fn formulas_match_an_independent_computation() {
    // The paper's range; a sharp softmax (ratios up to e^50); and one so sharp that the
    // plan takes each cluster's own top quality as the reference ((1 − α)/τ = 1400).
    for (alpha, tau) in [(0.7, 0.25), (0.0, 0.02), (0.3, 0.0005)] {
        formulas_match(alpha, tau).await;
    }
}

async fn formulas_match(alpha: f64, tau: f64) {
    let (rows, centroids) = generated();
    let budget = 30_000.0;
    let ctx = context(4).await;
    register(&ctx, &rows, &centroids).await;
    let out = sql(&ctx, &[&format!(
        "SELECT * FROM samplemix_weights(scored, centroids, {alpha}, {tau}, {budget}, 3, 'documents') ORDER BY id"
    )])
    .await;

    // Independent f64 computation of docs/METHOD.md §2.4 and §3 ('documents' mode).
    let k = centroids.len();
    let dist = |a: &[f64; 4], b: &[f64; 4]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    };
    let sep: Vec<f64> = (0..k)
        .map(|i| {
            (0..k)
                .filter(|j| *j != i)
                .map(|j| dist(&centroids[i], &centroids[j]))
                .sum::<f64>()
                / (k - 1) as f64
        })
        .collect();
    let comp: Vec<f64> = (0..k)
        .map(|c| {
            let ds: Vec<f64> = rows
                .iter()
                .filter(|r| r.2 == c as i64)
                .map(|r| r.3)
                .collect();
            ds.iter().sum::<f64>() / ds.len() as f64
        })
        .collect();
    let min_pos = comp
        .iter()
        .copied()
        .filter(|c| *c > 0.0)
        .fold(f64::INFINITY, f64::min);
    let div: Vec<f64> = (0..k)
        .map(|c| sep[c] / if comp[c] > 0.0 { comp[c] } else { min_pos })
        .collect();
    let (dmin, dmax) = div
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), d| {
            (a.min(*d), b.max(*d))
        });
    let (qmin, qmax) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
            (a.min(r.1), b.max(r.1))
        });
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let w: Vec<f64> = sorted
        .iter()
        .map(|r| {
            alpha * (div[r.2 as usize] - dmin) / (dmax - dmin)
                + (1.0 - alpha) * (r.1 - qmin) / (qmax - qmin)
        })
        .collect();
    let wmax = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = w.iter().map(|x| ((x - wmax) / tau).exp()).sum();
    let n = rows.len() as f64;
    let t_src: f64 = rows.iter().map(|r| r.4 as f64).sum();
    let n_tgt = n * budget / t_src;

    assert_eq!(
        strings(&out, "id"),
        sorted.iter().map(|r| r.0.clone()).collect::<Vec<_>>()
    );
    let (qn, d, dn, weight, c, count) = (
        f64s(&out, "quality_norm"),
        f64s(&out, "diversity"),
        f64s(&out, "diversity_norm"),
        f64s(&out, "weight"),
        f64s(&out, "expected_count"),
        f64s(&out, "count"),
    );
    let u = f64s(
        &sql(
            &ctx,
            &["SELECT samplemix_uniform(id, 3) AS u FROM scored ORDER BY id"],
        )
        .await,
        "u",
    );
    for (i, r) in sorted.iter().enumerate() {
        let cl = r.2 as usize;
        assert!(
            close(qn[i], (r.1 - qmin) / (qmax - qmin)),
            "quality_norm row {i}"
        );
        assert!(
            close(d[i], div[cl]),
            "diversity row {i}: {} vs {}",
            d[i],
            div[cl]
        );
        assert!(
            close(dn[i], (div[cl] - dmin) / (dmax - dmin)),
            "diversity_norm row {i}"
        );
        assert!(close(weight[i], w[i]), "weight row {i}");
        let expected = n_tgt * ((w[i] - wmax) / tau).exp() / z;
        assert!(
            close(c[i], expected),
            "alpha {alpha} tau {tau}: expected_count row {i}: {} vs {expected}",
            c[i]
        );
        let want = expected.floor()
            + if u[i] < expected - expected.floor() {
                1.0
            } else {
                0.0
            };
        assert_eq!(count[i], want, "count row {i}");
    }
    let total: f64 = c.iter().sum();
    assert!(
        (total - n_tgt).abs() <= 1e-9 * n_tgt,
        "sum {total} vs N_tgt {n_tgt}"
    );
}

#[tokio::test]
async fn alpha_zero_ranks_by_quality_and_huge_tau_is_uniform() {
    let (rows, centroids) = generated();
    let ctx = context(3).await;
    register(&ctx, &rows, &centroids).await;
    let out = sql(&ctx, &["SELECT w.expected_count AS c, s.quality AS q FROM samplemix_weights(scored, centroids, 0.0, 0.2, 20000) w JOIN scored s ON w.id = s.id ORDER BY q, c"]).await;
    let (c, q) = (f64s(&out, "c"), f64s(&out, "q"));
    for i in 1..c.len() {
        assert!(c[i] >= c[i - 1], "not monotone in quality at {i}");
        if q[i] == q[i - 1] {
            assert_eq!(c[i], c[i - 1], "equal quality must give equal counts");
        }
    }
    let out = sql(
        &ctx,
        &["SELECT expected_count AS c FROM samplemix_weights(scored, centroids, 0.8, 1e9, 20000)"],
    )
    .await;
    let c = f64s(&out, "c");
    let mean = c.iter().sum::<f64>() / c.len() as f64;
    assert!(
        c.iter().all(|x| (x - mean).abs() < 1e-6 * mean),
        "huge tau is not uniform"
    );
}

#[tokio::test]
async fn outputs_are_bit_identical_across_partitionings_and_orders() {
    let (rows, centroids) = generated();
    let mut results = Vec::new();
    for (partitions, reverse) in [(1, false), (2, false), (8, false), (8, true), (2, true)] {
        let ctx = context(partitions).await;
        let mut ordered = rows.clone();
        if reverse {
            ordered.reverse();
            ordered.rotate_left(37);
        }
        register(&ctx, &ordered, &centroids).await;
        // Spread the input over several partitions.
        sql(&ctx, &["CREATE TABLE scored_p AS SELECT * FROM scored"]).await;
        for options in [
            "",
            ", 'tokens', 'mean', 'rounding=systematic, max_copies=2, min_cluster_size=40'",
        ] {
            let out = sql(&ctx, &[&format!("SELECT id, quality_norm, diversity, diversity_norm, weight, expected_count, count FROM samplemix_weights(scored_p, centroids, 0.8, 0.05, 50000, 9{options}) ORDER BY id")]).await;
            let cols: Vec<Vec<u64>> = OUTPUT_COLUMNS
                .iter()
                .map(|c| f64s(&out, c).iter().map(|v| v.to_bits()).collect())
                .collect();
            results.push((options, strings(&out, "id"), cols));
        }
    }
    for r in &results[2..] {
        let first = if r.0.is_empty() {
            &results[0]
        } else {
            &results[1]
        };
        assert_eq!(
            r, first,
            "output differs between partitionings or input orders"
        );
    }
}

/// Cluster ids far apart take the join path of the output pass, ids 0..k the lookup path
/// (`samplemix_lookup`): the same weights and counts, bit for bit.
#[tokio::test]
async fn sparse_cluster_ids_give_the_same_output_as_dense_ones() {
    let (rows, centroids) = generated();
    let ctx = context(2).await;
    register(&ctx, &rows, &centroids).await;
    sql(&ctx, &[
        "CREATE TABLE scored_sparse AS SELECT id, quality, s.cluster * 100000007 AS \"cluster\", distance, tokens FROM scored s",
        "CREATE TABLE centroids_sparse AS SELECT cluster * 100000007 AS \"cluster\", size, centroid, metric FROM centroids",
    ])
    .await;
    for options in [
        "",
        ", 'tokens', 'mean', 'rounding=systematic, max_copies=2, min_cluster_size=40'",
    ] {
        let run = |scored: &str, centroids: &str| {
            format!("SELECT * FROM samplemix_weights({scored}, {centroids}, 0.8, 0.05, 50000, 9{options}) ORDER BY id")
        };
        let dense = sql(&ctx, &[&run("scored", "centroids")]).await;
        let sparse = sql(&ctx, &[&run("scored_sparse", "centroids_sparse")]).await;
        assert_eq!(strings(&dense, "id"), strings(&sparse, "id"));
        for col in OUTPUT_COLUMNS {
            let bits = |b: &[datafusion::arrow::array::RecordBatch]| -> Vec<u64> {
                f64s(b, col).iter().map(|v| v.to_bits()).collect()
            };
            assert_eq!(
                bits(&dense),
                bits(&sparse),
                "{col} with options '{options}'"
            );
        }
    }
}

#[tokio::test]
async fn plain_sql_form_equals_the_table_function() {
    let (rows, centroids) = generated();
    let ctx = context(4).await;
    register(&ctx, &rows, &centroids).await;
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sql/samplemix_weights.sql"
    ))
    .unwrap();
    sql(&ctx, &["CREATE TABLE mix_params AS SELECT 0.8 AS alpha, 0.2 AS tau, 40000.0 AS budget_tokens, CAST(5 AS BIGINT) AS seed", &file]).await;
    let a = sql(&ctx, &["SELECT * FROM samplemix_weights_sql ORDER BY id"]).await;
    let b = sql(
        &ctx,
        &["SELECT * FROM samplemix_weights(scored, centroids, 0.8, 0.2, 40000, 5) ORDER BY id"],
    )
    .await;
    assert_eq!(strings(&a, "id"), strings(&b, "id"));
    // The floats (`count` is compared exactly below).
    for col in &OUTPUT_COLUMNS[..5] {
        for (x, y) in f64s(&a, col).iter().zip(f64s(&b, col)) {
            assert!(close(*x, y), "{col}: {x} vs {y}");
        }
    }
    assert_eq!(f64s(&a, "count"), f64s(&b, "count"));
}

/// The sample corpus scored as the quickstart does (k = 16): tables docs, centroids, scored.
async fn sample_corpus_scored() -> SessionContext {
    let ctx = context(4).await;
    sql(&ctx, &[
        "CREATE TABLE docs AS SELECT id, token_count(text) AS tokens, quality_score(text) AS quality, embed(text) AS emb FROM 'data/sample.parquet'",
        "CREATE TABLE centroids AS SELECT * FROM kmeans_fit(docs, 'emb', 16)",
        "CREATE TABLE scored AS SELECT id, quality, dc['cluster'] AS cluster, dc['distance'] AS distance, tokens FROM (SELECT id, quality, tokens, diversity_cluster(emb, 'centroids') AS dc FROM docs)",
    ])
    .await;
    ctx
}

#[tokio::test]
async fn sample_corpus_budget_invariants() {
    let ctx = sample_corpus_scored().await;
    // documents mode: Σ expected = N_tgt = N · budget / T_src.
    let out = sql(&ctx, &["SELECT sum(expected_count) AS c, (SELECT sum(tokens) FROM scored) AS t, count(*) AS n FROM samplemix_weights(scored, centroids, 0.8, 0.2, 500000, 0, 'documents')"]).await;
    let (c, t, n) = (f64s(&out, "c")[0], f64s(&out, "t")[0], f64s(&out, "n")[0]);
    let n_tgt = n * 500000.0 / t;
    assert!((c - n_tgt).abs() <= 1e-9 * n_tgt, "{c} vs {n_tgt}");
    // tokens mode: expected tokens equal the budget exactly; realised tokens scatter around it
    // because each document is rounded independently (count = ⌊c⌋ + 1[u < frac]). Their standard
    // deviation is sd = sqrt(Σ tokens² · f(1−f)); on this 860-document sample with 10k-token
    // books it is about 3% of the budget, so the check is the statistical one (4 sd) and the
    // deviation per seed is printed (see BENCHMARKS.md for the spread over seeds).
    for seed in 0..5 {
        let out = sql(&ctx, &[&format!(
            "SELECT sum(w.count * s.tokens) AS realised, sum(w.expected_count * s.tokens) AS expected, \
             sqrt(sum(s.tokens * s.tokens * (w.expected_count - floor(w.expected_count)) * (1 - (w.expected_count - floor(w.expected_count))))) AS sd \
             FROM samplemix_weights(scored, centroids, 0.8, 0.2, 600000, {seed}, 'tokens') w JOIN scored s ON w.id = s.id"
        )])
        .await;
        let (realised, expected, sd) = (
            f64s(&out, "realised")[0],
            f64s(&out, "expected")[0],
            f64s(&out, "sd")[0],
        );
        assert!((expected - 600000.0).abs() < 1e-6 * 600000.0, "{expected}");
        println!(
            "seed {seed}: realised {realised} tokens, {:+.2}% of the budget, sd {:.2}%",
            100.0 * (realised / 600000.0 - 1.0),
            100.0 * sd / 600000.0
        );
        assert!(
            (realised - 600000.0).abs() <= 4.0 * sd,
            "realised {realised} is more than 4 sd ({sd}) from the budget"
        );
    }
}

/// samplemix_weights v2 options on the sample corpus: exact budgets with systematic rounding,
/// the repeat cap, and the small-cluster guard.
#[tokio::test]
async fn options_on_the_sample_corpus() {
    let ctx = sample_corpus_scored().await;
    // 'tokens' mode, systematic rounding: realised tokens close to the budget, seeds 0-9 (what
    // we reach is printed and recorded in BENCHMARKS.md).
    let mut worst = 0.0f64;
    for seed in 0..10 {
        let out = sql(&ctx, &[&format!(
            "SELECT sum(w.count * s.tokens) AS realised FROM samplemix_weights(scored, centroids, 0.8, 0.2, 600000, {seed}, 'tokens', 'mean', 'rounding=systematic') w JOIN scored s ON w.id = s.id"
        )])
        .await;
        let realised = f64s(&out, "realised")[0];
        println!(
            "systematic, seed {seed}: {:+} tokens ({:+.4}%) off the budget",
            realised - 600000.0,
            100.0 * (realised / 600000.0 - 1.0)
        );
        worst = f64::max(worst, (realised / 600000.0 - 1.0).abs());
    }
    // The issue asks for 1%; balancing the long documents against shorter ones leaves about
    // one short document's tokens (independent rounding scatters by ~3.4% sd here).
    assert!(worst < 0.001, "worst deviation {worst}");
    // 'documents' mode, systematic rounding: Σ count = round(Σ expected) exactly.
    for (seed, budget) in [(0, 300000), (1, 600000), (2, 1234567), (3, 77777)] {
        // Expected counts add up to the whole document target round(N·budget/T_src).
        let out = sql(&ctx, &[&format!(
            "SELECT sum(count) AS n, sum(expected_count) AS c FROM samplemix_weights(scored, centroids, 0.8, 0.2, {budget}, {seed}, 'documents', 'mean', 'rounding=systematic')"
        )])
        .await;
        let (n, c) = (f64s(&out, "n")[0], f64s(&out, "c")[0]);
        assert!((c - c.round()).abs() < 1e-6, "{c} is not a whole number");
        assert_eq!(n, c.round(), "seed {seed}, budget {budget}");
    }
    // max_copies: no count above the cap; expected tokens still equal the budget.
    let out = sql(&ctx, &["SELECT max(w.count) AS most, sum(w.expected_count * s.tokens) AS expected, sum(CAST(w.capped AS INT)) AS capped FROM samplemix_weights(scored, centroids, 0.8, 0.1, 600000, 0, 'tokens', 'mean', 'max_copies=3') w JOIN scored s ON w.id = s.id"]).await;
    let (most, expected, capped) = (
        f64s(&out, "most")[0],
        f64s(&out, "expected")[0],
        f64s(&out, "capped")[0],
    );
    println!("max_copies=3: {capped} documents capped");
    assert!(most <= 3.0, "{most}");
    assert!(capped > 0.0, "the cap never binds: the test tests nothing");
    assert!((expected / 600000.0 - 1.0).abs() < 1e-9, "{expected}");
    // min_cluster_size: the largest diversity share of a small cluster before and after.
    for options in ["", ", 'tokens', 'mean', 'min_cluster_size=10'"] {
        let out = sql(&ctx, &[&format!(
            "SELECT max(diversity) / min(diversity) AS spread FROM samplemix_weights(scored, centroids, 0.8, 0.2, 600000, 0{options})"
        )])
        .await;
        println!("diversity max/min{options}: {:.2}", f64s(&out, "spread")[0]);
    }
}

/// E[n(x)] = c(x) for both roundings: averaged over many seeds on a small table, every
/// document's mean count is within 5 standard errors of its expected count.
#[tokio::test]
async fn counts_are_unbiased_for_both_roundings() {
    let (rows, centroids) = generated();
    let ctx = context(2).await;
    register(&ctx, &rows[..60], &centroids).await;
    for rounding in ["independent", "systematic"] {
        let seeds = 120;
        let mut sums: std::collections::HashMap<String, (f64, f64)> = Default::default();
        for seed in 0..seeds {
            let out = sql(&ctx, &[&format!(
                "SELECT id, count AS n, expected_count AS c FROM samplemix_weights(scored, centroids, 0.8, 0.2, 3000, {seed}, 'tokens', 'mean', 'rounding={rounding}')"
            )])
            .await;
            for ((id, n), c) in strings(&out, "id")
                .into_iter()
                .zip(f64s(&out, "n"))
                .zip(f64s(&out, "c"))
            {
                let e = sums.entry(id).or_insert((0.0, c));
                e.0 += n;
            }
        }
        for (id, (total, c)) in sums {
            let mean = total / seeds as f64;
            let f = c - c.floor();
            let se = (f * (1.0 - f) / seeds as f64).sqrt().max(1e-9);
            assert!(
                (mean - c).abs() <= 5.0 * se + 1e-9,
                "{rounding}: {id}: mean {mean} vs c {c}"
            );
        }
    }
}
