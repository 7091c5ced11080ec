//! k-means fit (docs/METHOD.md, "Diversity"): greedy k-means++ seeding and Lloyd iterations,
//! both on the matrix-product kernels of `assign.rs`, deterministic for a given sample and seed.
//!
//! - Seeding: scikit-learn's greedy k-means++: the first centre uniformly at random, then for
//!   each next centre `2 + ⌊ln k⌋` candidates drawn with probability ∝ D² (squared distance to
//!   the nearest centre so far), keeping the candidate that lowers the potential Σ D² the most.
//!   Candidate distances are one matrix product per step (rows × candidates). On samples larger
//!   than [`SEEDING_ROWS`] the seeding runs on the first [`SEEDING_ROWS`] rows of the sample
//!   (which is in hash order, so they are a uniform subsample): the seeding then costs a
//!   bounded fraction of the fit, at a small cost in inertia that the Lloyd iterations recover.
//! - Lloyd: assignment with the fused kernel (the exact top-two re-check keeps labels equal to
//!   a brute-force search), then the update: members gathered by label in row order and summed
//!   in f64 per cluster, clusters spread over threads, so the result is bit-identical for any
//!   thread count. Stops when the centroids move less than [`TOLERANCE`] in total (linfa's rule)
//!   or after `max_iter` iterations.
//! - Empty clusters are re-seeded deterministically with the rows farthest from their centroid
//!   (largest distance first, lower row index on ties), as scikit-learn does.
//! - Cosine: rows are L2-normalised before fitting and centroids re-normalised at the end.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;

use super::assign::{assign_labels, par_ranges, Centroids, CHUNK};
use super::metric::{normalize_rows, Metric};
use super::simd::dot_products;
use crate::Error;

/// Convergence threshold on the centroids' total shift between iterations (linfa's default).
pub const TOLERANCE: f32 = 1e-4;
/// Sample rows the seeding looks at (at least 4·k). Each of the k steps multiplies these rows
/// by only 2 + ⌊ln k⌋ candidates, a thin product that runs far below the machine's peak, so
/// the seeding, not Lloyd, dominated large fits (31 s of 40 for 200k × 256, k = 256, with
/// 100,000 rows); 20,000 rows is still ~80 per centroid at k = 256.
pub const SEEDING_ROWS: usize = 20_000;

/// What to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Number of clusters.
    pub k: usize,
    /// Most Lloyd iterations.
    pub max_iter: usize,
    /// Seed of the k-means++ draws.
    pub seed: u64,
    /// Metric the centroids are for.
    pub metric: Metric,
    /// Worker threads (the result does not depend on it).
    pub threads: usize,
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Row-major k × dim centroids.
    pub centroids: Vec<f32>,
    /// Sample members nearest to each final centroid.
    pub sizes: Vec<u64>,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Mean squared Euclidean distance of the (normalised, for cosine) sample to its centroid.
    pub inertia: f64,
}

/// Squared norms of the rows.
fn sq_norms(data: &[f32], dim: usize) -> Vec<f32> {
    data.chunks_exact(dim)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// Squared distances of every row to each of `cands` (row-major candidates), one column per
/// candidate: `out[c][i]`. Computed as ‖x‖² + ‖c‖² − 2·x·c (clamped at 0) with one product
/// per chunk of rows.
fn sq_dists_to(
    data: &[f32],
    norms: &[f32],
    dim: usize,
    cands: &[f32],
    threads: usize,
) -> Vec<Vec<f32>> {
    let t = cands.len() / dim;
    let cnorms = sq_norms(cands, dim);
    let flat: Vec<f32> = par_ranges(norms.len(), CHUNK, threads, |rows| {
        let mut prod = vec![0.0f32; rows.len() * t];
        dot_products(
            &data[rows.start * dim..rows.end * dim],
            cands,
            dim,
            &mut prod,
        );
        for (i, r) in rows.enumerate() {
            for c in 0..t {
                let v = &mut prod[i * t + c];
                *v = (norms[r] + cnorms[c] - 2.0 * *v).max(0.0);
            }
        }
        prod
    });
    (0..t)
        .map(|c| flat.iter().skip(c).step_by(t).copied().collect())
        .collect()
}

/// Index of the first prefix sum above `target` (the last row when none is, by rounding).
fn draw(d2: &[f32], total: f64, rng: &mut Xoshiro256Plus) -> usize {
    let target = rng.gen::<f64>() * total;
    let mut acc = 0.0f64;
    for (i, v) in d2.iter().enumerate() {
        acc += f64::from(*v);
        if acc > target {
            return i;
        }
    }
    d2.len() - 1
}

/// Independent greedy k-means++ seedings [`seed_centroids`] draws; the one with the lowest
/// potential is kept.
pub const SEEDINGS: u64 = 3;

/// The seeding of a fit: the best (lowest potential Σ min‖x − c‖²) of [`SEEDINGS`] greedy
/// k-means++ seedings, the i-th drawn with seed `splitmix64(seed + i)` (the first with `seed`).
///
/// One greedy seeding still puts two centres in one cluster and none in another now and then
/// (when a cluster's own spread carries as much D² mass as a missed cluster, e.g. 2 seeds of 10
/// on 16 separated blobs in 64 dimensions), and Lloyd iterations cannot undo that. A missed
/// cluster shows as a much higher potential, so keeping the best of three seedings makes it
/// rare at three times the seeding cost, still far below one Lloyd run on the full sample.
pub fn seed_centroids(data: &[f32], dim: usize, k: usize, seed: u64, threads: usize) -> Vec<f32> {
    seed_centroids_until(data, dim, k, seed, threads, &|| false)
}

/// [`seed_centroids`], giving up (an empty result) once `stop()` is true.
fn seed_centroids_until(
    data: &[f32],
    dim: usize,
    k: usize,
    seed: u64,
    threads: usize,
    stop: &dyn Fn() -> bool,
) -> Vec<f32> {
    (0..SEEDINGS)
        .map(|i| {
            let s = if i == 0 {
                seed
            } else {
                crate::hash::splitmix64(seed.wrapping_add(i))
            };
            greedy_seeding(data, dim, k, s, threads, stop)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
        .unwrap_or_default()
}

/// Greedy k-means++ seeding on `data` (row-major, all finite): k centres, row-major (one
/// seeding; [`seed_centroids`] is what the fit uses).
pub fn greedy_kmeans_pp(data: &[f32], dim: usize, k: usize, seed: u64, threads: usize) -> Vec<f32> {
    greedy_seeding(data, dim, k, seed, threads, &|| false).0
}

/// One greedy k-means++ seeding and its potential.
fn greedy_seeding(
    data: &[f32],
    dim: usize,
    k: usize,
    seed: u64,
    threads: usize,
    stop: &dyn Fn() -> bool,
) -> (Vec<f32>, f64) {
    let n = data.len() / dim;
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let norms = sq_norms(data, dim);
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centres = Vec::with_capacity(k * dim);
    let first = rng.gen_range(0..n);
    centres.extend_from_slice(row(first));
    let mut closest = sq_dists_to(data, &norms, dim, row(first), threads).swap_remove(0);
    let potential = |d: &[f32]| d.iter().map(|v| f64::from(*v)).sum::<f64>();
    let mut current = potential(&closest);
    for _ in 1..k {
        if stop() {
            return (centres, current);
        }
        let picks: Vec<usize> = if current > 0.0 {
            (0..trials)
                .map(|_| draw(&closest, current, &mut rng))
                .collect()
        } else {
            // Fewer distinct rows than k: repeat a row (its cluster stays empty until re-seeded).
            vec![rng.gen_range(0..n)]
        };
        let cands: Vec<f32> = picks.iter().flat_map(|i| row(*i).iter().copied()).collect();
        let mut best: Option<(f64, usize, Vec<f32>)> = None;
        for (c, mut d) in sq_dists_to(data, &norms, dim, &cands, threads)
            .into_iter()
            .enumerate()
        {
            d.iter_mut()
                .zip(&closest)
                .for_each(|(v, old)| *v = v.min(*old));
            let pot = potential(&d);
            if best.as_ref().is_none_or(|(p, _, _)| pot < *p) {
                best = Some((pot, c, d));
            }
        }
        if let Some((pot, c, d)) = best {
            current = pot;
            closest = d;
            centres.extend_from_slice(row(picks[c]));
        }
    }
    (centres, current)
}

/// One Lloyd update: the mean of each cluster's members (in f64, members in row order);
/// clusters without members keep `previous`. Returns the new centroids and the member counts.
fn update(
    data: &[f32],
    dim: usize,
    labels: &[usize],
    previous: &[f32],
    threads: usize,
) -> (Vec<f32>, Vec<u64>) {
    let k = previous.len() / dim;
    // Counting sort of the rows by label: members of cluster j in row order.
    let mut counts = vec![0usize; k + 1];
    for l in labels {
        counts[l + 1] += 1;
    }
    for j in 0..k {
        counts[j + 1] += counts[j];
    }
    let mut members = vec![0usize; labels.len()];
    let mut fill = counts.clone();
    for (i, l) in labels.iter().enumerate() {
        members[fill[*l]] = i;
        fill[*l] += 1;
    }
    // Clusters (not rows) are spread over the threads: each sum runs in row order on one thread.
    let means: Vec<f32> = par_ranges(k, 8, threads, |clusters| {
        let mut out = Vec::with_capacity(clusters.len() * dim);
        let mut sum = vec![0.0f64; dim];
        for j in clusters {
            let mine = &members[counts[j]..counts[j + 1]];
            if mine.is_empty() {
                out.extend_from_slice(&previous[j * dim..(j + 1) * dim]);
                continue;
            }
            sum.fill(0.0);
            for i in mine {
                for (s, v) in sum.iter_mut().zip(&data[i * dim..(i + 1) * dim]) {
                    *s += f64::from(*v);
                }
            }
            let n = mine.len() as f64;
            out.extend(sum.iter().map(|s| (s / n) as f32));
        }
        out
    });
    let sizes = (0..k).map(|j| (counts[j + 1] - counts[j]) as u64).collect();
    (means, sizes)
}

/// Move the centroids of empty clusters onto the rows farthest from their own centroid.
fn reseed_empty(data: &[f32], dim: usize, centroids: &mut [f32], sizes: &[u64], labels: &[usize]) {
    let empty: Vec<usize> = (0..sizes.len()).filter(|j| sizes[*j] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let mut far: Vec<(f32, usize)> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let row = &data[i * dim..(i + 1) * dim];
            let c = &centroids[l * dim..(l + 1) * dim];
            (
                row.iter()
                    .zip(c)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>(),
                i,
            )
        })
        .collect();
    far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (j, (_, i)) in empty.iter().zip(far) {
        centroids[j * dim..(j + 1) * dim].copy_from_slice(&data[i * dim..(i + 1) * dim]);
    }
}

/// L2 prepared centroids for labels during the fit.
fn prepared(values: &[f32], dim: usize) -> Result<Centroids, Error> {
    let k = values.len() / dim;
    Centroids::new(values.to_vec(), dim, Metric::L2, (0..k as i32).collect())
}

/// Fit `opts.k` centroids to `data` (row-major rows of `dim` finite values). `progress(i)` is
/// called after each Lloyd iteration.
pub fn fit(
    data: Vec<f32>,
    dim: usize,
    opts: Options,
    progress: impl FnMut(usize),
) -> Result<Fitted, Error> {
    fit_until(data, dim, opts, progress, &|| false)
}

/// [`fit`] that gives up with [`Error::Stopped`] once `stop()` is true (checked between
/// seeding steps and iterations): a fit under a statement's time limit.
pub fn fit_until(
    mut data: Vec<f32>,
    dim: usize,
    opts: Options,
    mut progress: impl FnMut(usize),
    stop: &dyn Fn() -> bool,
) -> Result<Fitted, Error> {
    let n = data.len().checked_div(dim).unwrap_or(0);
    if opts.k == 0 || opts.k > n {
        return Err(Error::invalid(format!(
            "k = {} must be between 1 and the {n} sampled rows",
            opts.k
        )));
    }
    if opts.metric == Metric::Cosine {
        normalize_rows(&mut data, dim);
    }
    let seeding = &data[..n.min(SEEDING_ROWS.max(4 * opts.k)) * dim];
    let mut centroids = seed_centroids_until(seeding, dim, opts.k, opts.seed, opts.threads, stop);
    if stop() {
        return Err(Error::Stopped);
    }
    let mut labels = assign_labels(&data, &prepared(&centroids, dim)?, opts.threads);
    let mut iterations = 0;
    while iterations < opts.max_iter {
        if stop() {
            return Err(Error::Stopped);
        }
        let (mut next, sizes) = update(&data, dim, &labels, &centroids, opts.threads);
        reseed_empty(&data, dim, &mut next, &sizes, &labels);
        let shift = next
            .iter()
            .zip(&centroids)
            .map(|(a, b)| f64::from(a - b) * f64::from(a - b))
            .sum::<f64>()
            .sqrt();
        centroids = next;
        labels = assign_labels(&data, &prepared(&centroids, dim)?, opts.threads);
        iterations += 1;
        progress(iterations);
        if shift < f64::from(TOLERANCE) {
            break;
        }
    }
    if opts.metric == Metric::Cosine {
        normalize_rows(&mut centroids, dim);
    }
    let final_c = prepared(&centroids, dim)?;
    let labels = assign_labels(&data, &final_c, opts.threads);
    let mut sizes = vec![0u64; opts.k];
    let mut inertia = 0.0f64;
    for (i, l) in labels.iter().enumerate() {
        sizes[*l] += 1;
        let d = Metric::L2.distance(&data[i * dim..(i + 1) * dim], final_c.row(*l));
        inertia += d * d;
    }
    Ok(Fitted {
        centroids,
        sizes,
        iterations,
        inertia: inertia / n as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Gaussian-ish blobs around well separated centres.
    fn blobs(centres: &[[f32; 3]], per: usize, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let mut rows = Vec::new();
        for c in centres {
            for _ in 0..per {
                for v in c {
                    let noise = (0..6).map(|_| rng.gen_range(-0.5f32..0.5)).sum::<f32>() * 0.3;
                    rows.push(v + noise);
                }
            }
        }
        rows
    }

    fn opts(k: usize, threads: usize) -> Options {
        Options {
            k,
            max_iter: 100,
            seed: 0,
            metric: Metric::L2,
            threads,
        }
    }

    #[test]
    fn recovers_blob_centres() {
        let centres = [
            [0.0, 0.0, 0.0],
            [10.0, 0.0, 0.0],
            [0.0, 10.0, 0.0],
            [0.0, 0.0, 10.0],
        ];
        let fitted = fit(blobs(&centres, 300, 7), 3, opts(4, 2), |_| {}).unwrap();
        for c in centres {
            let nearest = fitted
                .centroids
                .chunks(3)
                .map(|f| Metric::L2.distance(f, &c))
                .fold(f64::INFINITY, f64::min);
            assert!(
                nearest < 0.3,
                "centre {c:?} not recovered: {:?}",
                fitted.centroids
            );
        }
        assert_eq!(fitted.sizes.iter().sum::<u64>(), 1200);
    }

    #[test]
    fn same_result_for_any_thread_count() {
        let data = blobs(
            &[[0.0, 1.0, 2.0], [5.0, 5.0, 5.0], [9.0, 0.0, 1.0]],
            3000,
            3,
        );
        let one = fit(data.clone(), 3, opts(7, 1), |_| {}).unwrap();
        for t in [2, 5] {
            assert_eq!(fit(data.clone(), 3, opts(7, t), |_| {}).unwrap(), one);
        }
    }

    #[test]
    fn k_larger_than_rows_is_an_error() {
        assert!(fit(vec![1.0, 2.0], 2, opts(2, 1), |_| {}).is_err());
    }

    #[test]
    fn duplicate_rows_leave_no_cluster_empty_when_avoidable() {
        // 5 distinct points, k = 5, many copies: every cluster gets its own point.
        let mut data = Vec::new();
        for i in 0..500 {
            data.extend_from_slice(&[(i % 5) as f32 * 10.0, 0.0]);
        }
        let f = fit(data, 2, opts(5, 1), |_| {}).unwrap();
        assert!(f.sizes.iter().all(|s| *s == 100), "{:?}", f.sizes);
    }
}
