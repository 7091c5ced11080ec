//! kmeans_fit and diversity_cluster: recovery of known centres, determinism, topical signal on
//! the real corpus.

mod common;

use common::{context, f64s, shared_corpus, sql, strings};

/// Adjusted Rand index of two labelings.
fn ari(a: &[i64], b: &[i64]) -> f64 {
    use std::collections::HashMap;
    let n = a.len() as f64;
    let mut pairs: HashMap<(i64, i64), f64> = HashMap::new();
    let mut ca: HashMap<i64, f64> = HashMap::new();
    let mut cb: HashMap<i64, f64> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *pairs.entry((*x, *y)).or_default() += 1.0;
        *ca.entry(*x).or_default() += 1.0;
        *cb.entry(*y).or_default() += 1.0;
    }
    let c2 = |v: f64| v * (v - 1.0) / 2.0;
    let index: f64 = pairs.values().map(|v| c2(*v)).sum();
    let sa: f64 = ca.values().map(|v| c2(*v)).sum();
    let sb: f64 = cb.values().map(|v| c2(*v)).sum();
    let expected = sa * sb / c2(n);
    (index - expected) / ((sa + sb) / 2.0 - expected)
}

/// Normalised mutual information (arithmetic mean normalisation).
fn nmi(a: &[String], b: &[i64]) -> f64 {
    use std::collections::HashMap;
    let n = a.len() as f64;
    let mut joint: HashMap<(&str, i64), f64> = HashMap::new();
    let mut pa: HashMap<&str, f64> = HashMap::new();
    let mut pb: HashMap<i64, f64> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *joint.entry((x.as_str(), *y)).or_default() += 1.0 / n;
        *pa.entry(x.as_str()).or_default() += 1.0 / n;
        *pb.entry(*y).or_default() += 1.0 / n;
    }
    let mi: f64 = joint
        .iter()
        .map(|((x, y), p)| p * (p / (pa[x] * pb[y])).ln())
        .sum();
    let entropy = |ps: Vec<f64>| -ps.iter().map(|p| p * p.ln()).sum::<f64>();
    let ha = entropy(pa.values().copied().collect());
    let hb = entropy(pb.values().copied().collect());
    2.0 * mi / (ha + hb)
}

/// 6 Gaussian-like blobs in 8 dimensions, 150 points each.
fn blob_values() -> (String, Vec<i64>) {
    let mut state = 99u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    for c in 0..6 {
        for i in 0..150 {
            let v: Vec<String> = (0..8)
                .map(|j| {
                    let centre = if j == c {
                        10.0
                    } else if j == (c + 3) % 8 {
                        -6.0
                    } else {
                        0.0
                    };
                    let noise: f64 = (0..4).map(|_| next() - 0.5).sum::<f64>() * 1.2;
                    format!("{:?}", centre + noise)
                })
                .collect();
            rows.push(format!("('p{c}-{i}', [{}])", v.join(", ")));
            truth.push(c as i64);
        }
    }
    (rows.join(", "), truth)
}

#[tokio::test]
async fn recovers_gaussian_blobs() {
    let (values, truth) = blob_values();
    let ctx = context(4).await;
    sql(
        &ctx,
        &[
            &format!("CREATE TABLE raw AS VALUES {values}"),
            "CREATE TABLE pts AS SELECT column1 AS id, column2 AS v FROM raw",
            "CREATE TABLE c AS SELECT * FROM kmeans_fit(pts, 'v', 6, 100000, 0, 100, 'l2')",
        ],
    )
    .await;
    let out = sql(
        &ctx,
        &["SELECT id, diversity_cluster(v, 'c')['cluster'] AS cl FROM pts ORDER BY id"],
    )
    .await;
    let ids = strings(&out, "id");
    let labels: Vec<i64> = f64s(&out, "cl").iter().map(|v| *v as i64).collect();
    let truth_by_id: std::collections::HashMap<String, i64> = {
        let mut order: Vec<(String, i64)> = Vec::new();
        for c in 0..6 {
            for i in 0..150 {
                order.push((format!("p{c}-{i}"), truth[c * 150 + i]));
            }
        }
        order.into_iter().collect()
    };
    let truth: Vec<i64> = ids.iter().map(|i| truth_by_id[i]).collect();
    let score = ari(&labels, &truth);
    assert!(score >= 0.95, "adjusted Rand index {score}");
    // Each true centre is matched by exactly one fitted centroid.
    let mut seen = std::collections::HashSet::new();
    for c in 0..6 {
        let members: Vec<i64> = labels
            .iter()
            .zip(&truth)
            .filter(|(_, t)| **t == c)
            .map(|(l, _)| *l)
            .collect();
        let mut counts = std::collections::HashMap::new();
        for m in members {
            *counts.entry(m).or_insert(0) += 1;
        }
        let (best, _) = counts.into_iter().max_by_key(|(_, n)| *n).unwrap();
        assert!(seen.insert(best), "two true centres map to centroid {best}");
    }
}

#[tokio::test]
async fn fit_is_identical_across_partitionings_and_orders() {
    let (values, _) = blob_values();
    let mut results = Vec::new();
    for (partitions, reverse) in [(1, false), (4, false), (4, true)] {
        let ctx = context(partitions).await;
        let order = if reverse { "DESC" } else { "ASC" };
        sql(&ctx, &[
            &format!("CREATE TABLE raw AS VALUES {values}"),
            &format!("CREATE TABLE pts AS SELECT column1 AS id, column2 AS v FROM raw ORDER BY id {order}"),
        ])
        .await;
        let out = sql(&ctx, &["SELECT cluster, size, arrow_cast(centroid, 'List(Float32)') AS c FROM kmeans_fit(pts, 'v', 5, 400, 3, 50, 'cosine') ORDER BY cluster"]).await;
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&out)
            .unwrap()
            .to_string();
        results.push(text);
    }
    assert_eq!(results[0], results[1], "target_partitions changed the fit");
    assert_eq!(results[0], results[2], "input order changed the fit");
}

#[tokio::test]
async fn clusters_of_real_documents_carry_topical_signal() {
    let Some(corpus) = shared_corpus() else {
        eprintln!("skipped: ../shared/data/corpus.parquet is absent");
        return;
    };
    let ctx = context(2).await;
    sql(
        &ctx,
        &[
            &format!("CREATE TABLE docs AS SELECT id, domain, embed(text) AS emb FROM '{corpus}'"),
            "CREATE TABLE c AS SELECT * FROM kmeans_fit(docs, 'emb', 32, 100000, 0, 50)",
        ],
    )
    .await;
    let out = sql(
        &ctx,
        &["SELECT domain, diversity_cluster(emb, 'c')['cluster'] AS cl FROM docs"],
    )
    .await;
    let domains = strings(&out, "domain");
    let labels: Vec<i64> = f64s(&out, "cl").iter().map(|v| *v as i64).collect();
    let score = nmi(&domains, &labels);
    println!(
        "NMI(domain, cluster) = {score:.3} over {} documents",
        domains.len()
    );
    assert!(score >= 0.3, "NMI {score}");
}

#[tokio::test]
async fn centroids_from_a_parquet_file() {
    let ctx = context(2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("centroids.parquet");
    let p = path.to_str().unwrap();
    sql(
        &ctx,
        &[
            "CREATE TABLE docs AS SELECT id, embed(text) AS emb FROM 'data/sample.parquet'",
            &format!("COPY (SELECT * FROM kmeans_fit(docs, 'emb', 4)) TO '{p}' STORED AS PARQUET"),
            "CREATE TABLE c AS SELECT * FROM kmeans_fit(docs, 'emb', 4)",
        ],
    )
    .await;
    let a = sql(
        &ctx,
        &[&format!(
            "SELECT id, diversity_cluster(emb, '{p}') AS dc FROM docs ORDER BY id"
        )],
    )
    .await;
    let b = sql(
        &ctx,
        &["SELECT id, diversity_cluster(emb, 'c') AS dc FROM docs ORDER BY id"],
    )
    .await;
    assert_eq!(a, b);
}
