//! k-means quality against known structure and against linfa-clustering (the reference).

use linfa::traits::{Fit, Predict};
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;
use samplemix_udfs::kernels::{
    assign_labels, greedy_kmeans_pp, kmeans_fit, seed_centroids, Centroids, KmeansOptions, Metric,
};

/// Standard normal draws (Box-Muller), so the test needs no extra crate.
fn normal(rng: &mut Xoshiro256Plus) -> f32 {
    let (u1, u2): (f64, f64) = (rng.gen::<f64>().max(1e-300), rng.gen());
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `n` points around `k` centres ~ N(0, spread²·I) in `d` dimensions, unit noise.
fn blobs(n: usize, d: usize, k: usize, spread: f32, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let centres: Vec<f32> = (0..k * d).map(|_| spread * normal(&mut rng)).collect();
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        let c = i % k;
        for j in 0..d {
            x.push(centres[c * d + j] + normal(&mut rng));
        }
    }
    (x, centres)
}

fn opts(k: usize, max_iter: usize, seed: u64) -> KmeansOptions {
    KmeansOptions {
        k,
        max_iter,
        seed,
        metric: Metric::L2,
        threads: 2,
    }
}

fn dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn inertia(x: &[f32], c: &[f32], d: usize) -> f64 {
    let k = c.len() / d;
    let cents = Centroids::new(c.to_vec(), d, Metric::L2, (0..k as i32).collect()).unwrap();
    let labels = assign_labels(x, &cents, 1);
    let sum: f64 = labels
        .iter()
        .enumerate()
        .map(|(i, l)| f64::from(dist(&x[i * d..(i + 1) * d], cents.row(*l))).powi(2))
        .sum();
    sum / labels.len() as f64
}

/// 16 well-separated blobs (centres ~ N(0, 16·I) in 64 dimensions, unit noise, 20,000 points):
/// every seed must find all 16 (each true centre has exactly one fitted centroid near it).
#[test]
fn sixteen_blobs_are_recovered_for_every_seed() {
    let (d, k) = (64, 16);
    let (x, centres) = blobs(20_000, d, k, 4.0, 7);
    for seed in 0..10 {
        let fitted = kmeans_fit(x.clone(), d, opts(k, 50, seed), |_| {}).unwrap();
        let mut hits = vec![0; k];
        for c in fitted.centroids.chunks(d) {
            let (best, gap) = (0..k)
                .map(|t| (t, dist(c, &centres[t * d..(t + 1) * d])))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            // The mean of 1,250 unit-noise points is ~0.23 from its centre in 64 dimensions;
            // blob centres are ~45 apart.
            assert!(
                gap < 1.0,
                "seed {seed}: a centroid is {gap} from every centre"
            );
            hits[best] += 1;
        }
        assert!(
            hits.iter().all(|h| *h == 1),
            "seed {seed}: centres found {hits:?} times (merged or split blobs)"
        );
    }
}

/// From the same seeding, our Lloyd iterations end no worse than linfa-clustering's.
#[test]
fn inertia_is_never_worse_than_linfa_from_the_same_seeding() {
    let (d, k) = (16, 24);
    // Overlapping blobs, more of them than k: a fit with real local optima.
    let (x, _) = blobs(6_000, d, 40, 1.5, 11);
    for seed in 0..3 {
        let ours = kmeans_fit(x.clone(), d, opts(k, 100, seed), |_| {}).unwrap();
        let init = seed_centroids(&x, d, k, seed, 1);
        let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
            .n_runs(1)
            .max_n_iterations(100)
            .tolerance(1e-4)
            .init_method(KMeansInit::Precomputed(
                Array2::from_shape_vec((k, d), init).unwrap(),
            ))
            .fit(&DatasetBase::from(
                Array2::from_shape_vec((x.len() / d, d), x.clone()).unwrap(),
            ))
            .unwrap();
        let theirs: Vec<f32> = model.centroids().iter().copied().collect();
        let (a, b) = (inertia(&x, &ours.centroids, d), inertia(&x, &theirs, d));
        assert!(a <= b * (1.0 + 1e-6), "seed {seed}: ours {a} > linfa {b}");
    }
}

/// One Lloyd step from the same centroids gives linfa's labels and centroids.
#[test]
fn one_lloyd_step_matches_linfa() {
    let (d, k) = (8, 12);
    let (x, _) = blobs(3_000, d, 20, 1.0, 3);
    let n = x.len() / d;
    let init = seed_centroids(&x, d, k, 5, 1);
    let cents = Centroids::new(init.clone(), d, Metric::L2, (0..k as i32).collect()).unwrap();
    let records = Array2::from_shape_vec((n, d), x.clone()).unwrap();
    assert_eq!(greedy_kmeans_pp(&x, d, k, 5, 1).len(), k * d);
    let params = |iters: u64, init: &[f32]| {
        KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(0))
            .n_runs(1)
            .max_n_iterations(iters)
            .init_method(KMeansInit::Precomputed(
                Array2::from_shape_vec((k, d), init.to_vec()).unwrap(),
            ))
    };

    // Labels: linfa's predict with exactly these centroids (fitted on the centroids themselves,
    // so the iteration leaves them unchanged).
    let fixed = params(1, &init)
        .fit(&DatasetBase::from(
            Array2::from_shape_vec((k, d), init.clone()).unwrap(),
        ))
        .unwrap();
    let theirs = fixed.predict(&records);
    let ours = assign_labels(&x, &cents, 2);
    assert_eq!(ours, theirs.to_vec());

    // One Lloyd step of our fit from the same seeding: the plain means of those labels (linfa's
    // own update is m_k-means, which counts the old centroid as one more member, so its
    // centroids are not the reference here; its labels are).
    let ours_step = kmeans_fit(x.clone(), d, opts(k, 1, 5), |_| {}).unwrap();
    assert_eq!(seed_centroids(&x, d, k, 5, 1), init);
    let mut sums = vec![0.0f64; k * d];
    let mut counts = vec![0usize; k];
    for (i, l) in theirs.iter().enumerate() {
        counts[*l] += 1;
        for j in 0..d {
            sums[l * d + j] += f64::from(x[i * d + j]);
        }
    }
    for (j, c) in ours_step.centroids.chunks(d).enumerate() {
        for (t, v) in c.iter().enumerate() {
            let mean = sums[j * d + t] / counts[j] as f64;
            assert!(
                (f64::from(*v) - mean).abs() < 1e-5,
                "centroid {j}[{t}]: {v} vs {mean}"
            );
        }
    }
}

/// The fit does not depend on the thread count.
#[test]
fn fit_is_identical_for_any_thread_count() {
    let (x, _) = blobs(5_000, 32, 10, 2.0, 9);
    let mut o = opts(10, 30, 1);
    o.threads = 1;
    let one = kmeans_fit(x.clone(), 32, o, |_| {}).unwrap();
    o.threads = 3;
    let three = kmeans_fit(x, 32, o, |_| {}).unwrap();
    assert_eq!(one, three);
}
