//! k-means fit (SAMPLEMIX.md §2 step 2) with linfa-clustering on an order-independent sample.
//!
//! - Sample: bottom-k by a seeded hash of each embedding's bits, processed in hash order, so
//!   the sample and its order do not depend on partitioning, file order or thread count.
//! - Init: k-means++ (D² sampling) with a seeded Xoshiro256+ generator, computed here in
//!   O(k·n·d) by keeping each point's distance to its nearest chosen centre (linfa's own
//!   k-means++ recomputes all distances for every new centre).
//! - Lloyd iterations: linfa's `KMeans` (n_runs 1), one iteration per call so progress can be
//!   reported and convergence is linfa's rule (centroid shift < tolerance).
//! - Cosine: rows are L2-normalised before fitting and centroids re-normalised after.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;

use super::assign::{assign_parallel, Centroids};
use super::metric::{normalize_rows, Metric};

/// Convergence threshold on the centroids' shift between iterations (linfa's default).
pub const TOLERANCE: f32 = 1e-4;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seeded hash of an embedding's values (their exact bits).
pub fn row_hash(row: &[f32], seed: u64) -> u64 {
    let mut h = mix(seed ^ 0x6B6D_6561_6E73); // "kmeans"
    for v in row {
        h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

struct Entry {
    hash: u64,
    row: Vec<f32>,
}

impl Entry {
    fn key_cmp(&self, other: &Self) -> Ordering {
        self.hash.cmp(&other.hash).then_with(|| {
            // Equal hashes: order by the values' bits so the choice is still order-free.
            let a = self.row.iter().map(|v| v.to_bits());
            let b = other.row.iter().map(|v| v.to_bits());
            a.cmp(b)
        })
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key_cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key_cmp(other)
    }
}

/// Keeps the `capacity` rows with the smallest seeded hash (bounded memory).
pub struct BottomK {
    capacity: usize,
    seed: u64,
    heap: BinaryHeap<Entry>,
    /// Rows offered (non-NULL).
    pub seen: u64,
}

impl BottomK {
    /// An empty sampler.
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self {
            capacity,
            seed,
            heap: BinaryHeap::new(),
            seen: 0,
        }
    }

    /// Offer one row.
    pub fn push(&mut self, row: &[f32]) {
        self.seen += 1;
        let hash = row_hash(row, self.seed);
        if self.heap.len() < self.capacity {
            self.heap.push(Entry {
                hash,
                row: row.to_vec(),
            });
        } else if let Some(top) = self.heap.peek() {
            if hash < top.hash {
                let mut top = self.heap.peek_mut().unwrap();
                top.hash = hash;
                top.row.clear();
                top.row.extend_from_slice(row);
            }
        }
    }

    /// The kept rows, row-major, in hash order.
    pub fn into_rows(self) -> Vec<Vec<f32>> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| e.row)
            .collect()
    }
}

/// A fitted model.
#[derive(Debug, Clone)]
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

/// k-means++ seeding: first centre uniform, then each next centre with probability ∝ D².
pub fn kmeans_pp(data: &[f32], dim: usize, k: usize, seed: u64) -> Vec<f32> {
    let n = data.len() / dim;
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let sq = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x - y) * f64::from(x - y))
            .sum()
    };
    let mut centres = Vec::with_capacity(k * dim);
    let first = rng.gen_range(0..n);
    centres.extend_from_slice(row(first));
    let mut d2: Vec<f64> = (0..n).map(|i| sq(row(i), row(first))).collect();
    for _ in 1..k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let target = rng.gen::<f64>() * total;
            let mut acc = 0.0;
            let mut chosen = n - 1;
            for (i, v) in d2.iter().enumerate() {
                acc += v;
                if acc > target {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            // Fewer distinct points than k: repeat a point (its cluster stays empty).
            rng.gen_range(0..n)
        };
        let c = row(pick).to_vec();
        for (i, v) in d2.iter_mut().enumerate() {
            let d = sq(row(i), &c);
            if d < *v {
                *v = d;
            }
        }
        centres.extend_from_slice(&c);
    }
    centres
}

/// Fit k centroids to `rows` (all of length `dim`, finite). `progress(iteration)` is called
/// after each Lloyd iteration.
pub fn fit(
    rows: Vec<Vec<f32>>,
    dim: usize,
    k: usize,
    max_iter: usize,
    seed: u64,
    metric: Metric,
    mut progress: impl FnMut(usize),
) -> Result<Fitted, String> {
    let n = rows.len();
    if k == 0 || k > n {
        return Err(format!(
            "k = {k} must be between 1 and the {n} sampled rows"
        ));
    }
    let mut data: Vec<f32> = rows.into_iter().flatten().collect();
    if metric == Metric::Cosine {
        normalize_rows(&mut data, dim);
    }
    let records = Array2::from_shape_vec((n, dim), data).map_err(|e| e.to_string())?;
    let mut centroids = Array2::from_shape_vec(
        (k, dim),
        kmeans_pp(records.as_slice().unwrap(), dim, k, seed),
    )
    .map_err(|e| e.to_string())?;
    let dataset = DatasetBase::from(records);
    let mut iterations = 0;
    while iterations < max_iter {
        let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
            .n_runs(1)
            .max_n_iterations(1)
            .tolerance(TOLERANCE)
            .init_method(KMeansInit::Precomputed(centroids.clone()))
            .fit(&dataset)
            .map_err(|e| format!("linfa k-means: {e}"))?;
        let next = model.centroids().clone();
        let shift = (&next - &centroids).mapv(|v| v * v).sum().sqrt();
        centroids = next;
        iterations += 1;
        progress(iterations);
        if shift < TOLERANCE {
            break;
        }
    }
    let mut values: Vec<f32> = centroids.iter().copied().collect();
    if metric == Metric::Cosine {
        normalize_rows(&mut values, dim);
    }
    let prepared = Centroids::new(values.clone(), dim, Metric::L2, (0..k as i32).collect());
    let (labels, distances) = assign_parallel(dataset.records().as_slice().unwrap(), &prepared, 1);
    let mut sizes = vec![0u64; k];
    for l in &labels {
        sizes[*l] += 1;
    }
    let inertia = distances.iter().map(|d| d * d).sum::<f64>() / n as f64;
    Ok(Fitted {
        centroids: values,
        sizes,
        iterations,
        inertia,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Gaussian-ish blobs around well separated centres.
    fn blobs(centres: &[[f32; 3]], per: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        for (ci, c) in centres.iter().enumerate() {
            for _ in 0..per {
                let noise = |rng: &mut Xoshiro256Plus| {
                    (0..6).map(|_| rng.gen_range(-0.5f32..0.5)).sum::<f32>() * 0.3
                };
                rows.push(c.iter().map(|v| v + noise(&mut rng)).collect());
                truth.push(ci);
            }
        }
        (rows, truth)
    }

    #[test]
    fn bottom_k_is_order_independent() {
        let (rows, _) = blobs(&[[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]], 200, 3);
        let mut a = BottomK::new(50, 9);
        rows.iter().for_each(|r| a.push(r));
        let mut b = BottomK::new(50, 9);
        rows.iter().rev().for_each(|r| b.push(r));
        assert_eq!(a.into_rows(), b.into_rows());
    }

    #[test]
    fn recovers_blob_centres() {
        let centres = [
            [0.0, 0.0, 0.0],
            [10.0, 0.0, 0.0],
            [0.0, 10.0, 0.0],
            [0.0, 0.0, 10.0],
        ];
        let (rows, _) = blobs(&centres, 300, 7);
        let fitted = fit(rows, 3, 4, 100, 0, Metric::L2, |_| {}).unwrap();
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
    fn k_larger_than_rows_is_an_error() {
        assert!(fit(vec![vec![1.0, 2.0]], 2, 2, 10, 0, Metric::L2, |_| {}).is_err());
    }
}
