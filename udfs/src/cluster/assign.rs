//! Nearest-centroid assignment: GEMM over row tiles (`matrixmultiply::sgemm`) instead of a
//! scalar distance loop.
//!
//! For L2, ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖², so the nearest centroid maximises x·c − ‖c‖²/2 and
//! a tile of rows needs one matrix product with the centroid matrix. The two best candidates
//! of each row are then re-checked with the exact squared distance, summed in the same order as
//! linfa's `predict`, so float error in the expansion never changes a label (ties go to the
//! lower index, as in linfa). Cosine uses the same product on the row's direction. The reported
//! distance is recomputed exactly (f64) for the chosen centroid.

use super::metric::Metric;

/// Rows per tile: a tile's products (ROWS × k floats) stay in cache.
const ROWS: usize = 128;

/// Centroids prepared for repeated assignment.
#[derive(Debug, Clone)]
pub struct Centroids {
    /// Row-major k × dim values.
    pub values: Vec<f32>,
    /// Embedding dimension.
    pub dim: usize,
    /// Metric the centroids were fitted with.
    pub metric: Metric,
    /// Cluster id of each row (the `cluster` column), in row order.
    pub ids: Vec<i32>,
    half_sq_norms: Vec<f32>,
    inv_norms: Vec<f32>,
}

impl Centroids {
    /// Build from row-major values; `ids` label the rows.
    pub fn new(values: Vec<f32>, dim: usize, metric: Metric, ids: Vec<i32>) -> Self {
        assert!(dim > 0 && values.len() == dim * ids.len());
        let sq: Vec<f32> = values
            .chunks_exact(dim)
            .map(|c| c.iter().map(|x| x * x).sum::<f32>())
            .collect();
        Self {
            half_sq_norms: sq.iter().map(|s| s / 2.0).collect(),
            inv_norms: sq
                .iter()
                .map(|s| if *s > 0.0 { 1.0 / s.sqrt() } else { 0.0 })
                .collect(),
            values,
            dim,
            metric,
            ids,
        }
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.ids.len()
    }

    fn row(&self, j: usize) -> &[f32] {
        &self.values[j * self.dim..(j + 1) * self.dim]
    }
}

#[inline]
fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Index (into the centroid rows) of the nearest centroid of each row of `x` (row-major,
/// `x.len() / dim` rows), and the exact distance under the centroids' metric.
pub fn assign(x: &[f32], c: &Centroids, labels: &mut Vec<usize>, distances: &mut Vec<f64>) {
    let (d, k) = (c.dim, c.k());
    let n = x.len() / d;
    labels.clear();
    distances.clear();
    labels.reserve(n);
    distances.reserve(n);
    let mut products = vec![0.0f32; ROWS * k];
    for tile in x.chunks(ROWS * d) {
        let m = tile.len() / d;
        // products[i, j] = x_i · c_j
        unsafe {
            matrixmultiply::sgemm(
                m,
                d,
                k,
                1.0,
                tile.as_ptr(),
                d as isize,
                1,
                c.values.as_ptr(),
                1,
                d as isize,
                0.0,
                products.as_mut_ptr(),
                k as isize,
                1,
            );
        }
        for i in 0..m {
            let row = &tile[i * d..(i + 1) * d];
            let p = &products[i * k..(i + 1) * k];
            // Score to maximise, best and runner-up.
            let score = |j: usize| match c.metric {
                Metric::L2 => p[j] - c.half_sq_norms[j],
                Metric::Cosine => p[j] * c.inv_norms[j],
            };
            let (mut best, mut second) = (0usize, usize::MAX);
            let mut best_score = score(0);
            let mut second_score = f32::NEG_INFINITY;
            for j in 1..k {
                let s = score(j);
                if s > best_score {
                    second = best;
                    second_score = best_score;
                    best = j;
                    best_score = s;
                } else if s > second_score {
                    second = j;
                    second_score = s;
                }
            }
            if second != usize::MAX && c.metric == Metric::L2 {
                // Exact tie-break between the two best, as linfa computes it.
                let (a, b) = (sq_dist(row, c.row(best)), sq_dist(row, c.row(second)));
                if b < a || (b == a && second < best) {
                    best = second;
                }
            }
            labels.push(best);
            distances.push(c.metric.distance(row, c.row(best)));
        }
    }
}

/// [`assign`] split over `threads` OS threads (contiguous row ranges; same result).
pub fn assign_parallel(x: &[f32], c: &Centroids, threads: usize) -> (Vec<usize>, Vec<f64>) {
    let d = c.dim;
    let n = x.len() / d;
    let threads = threads.max(1).min(n.max(1));
    let per = n.div_ceil(threads);
    let parts: Vec<(Vec<usize>, Vec<f64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = x
            .chunks(per.max(1) * d)
            .map(|part| {
                s.spawn(move || {
                    let (mut l, mut dist) = (Vec::new(), Vec::new());
                    assign(part, c, &mut l, &mut dist);
                    (l, dist)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("assign thread"))
            .collect()
    });
    let mut labels = Vec::with_capacity(n);
    let mut distances = Vec::with_capacity(n);
    for (l, dist) in parts {
        labels.extend(l);
        distances.extend(dist);
    }
    (labels, distances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::traits::Predict;
    use linfa::DatasetBase;
    use linfa_clustering::KMeans;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256Plus;

    fn random(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn labels_equal_linfa_predict() {
        let (n, d, k) = (3000, 24, 37);
        let x = random(n, d, 1);
        let cvals = random(k, d, 2);
        let c = Centroids::new(cvals.clone(), d, Metric::L2, (0..k as i32).collect());
        let (labels, dists) = assign_parallel(&x, &c, 2);

        // A linfa model with exactly these centroids: fit 0 iterations from a precomputed init.
        let init = Array2::from_shape_vec((k, d), cvals).unwrap();
        let data = DatasetBase::from(Array2::from_shape_vec((n, d), x.clone()).unwrap());
        let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(0))
            .init_method(linfa_clustering::KMeansInit::Precomputed(init.clone()))
            .max_n_iterations(1)
            .tolerance(f32::MAX)
            .fit(&data)
            .unwrap();
        // fit moved the centroids once; predict against the original ones via a second model
        // is not possible, so compare against a direct scalar nearest search instead, and
        // against linfa on the model's own centroids.
        let linfa_labels = model.predict(data.records());
        let moved = Centroids::new(
            model.centroids().iter().copied().collect(),
            d,
            Metric::L2,
            (0..k as i32).collect(),
        );
        let (ours_on_moved, _) = assign_parallel(&x, &moved, 1);
        assert_eq!(ours_on_moved, linfa_labels.to_vec());

        for i in 0..n {
            let row = &x[i * d..(i + 1) * d];
            let mut best = 0;
            for j in 1..k {
                if sq_dist(row, c.row(j)) < sq_dist(row, c.row(best)) {
                    best = j;
                }
            }
            assert_eq!(labels[i], best, "row {i}");
            assert!((dists[i] - Metric::L2.distance(row, c.row(best))).abs() < 1e-9);
        }
    }

    #[test]
    fn cosine_picks_the_most_similar_direction() {
        let c = Centroids::new(vec![1.0, 0.0, 0.0, 1.0], 2, Metric::Cosine, vec![7, 9]);
        let (labels, dists) = assign_parallel(&[3.0, 0.1, 0.2, 5.0, 0.0, 0.0], &c, 1);
        assert_eq!(labels, vec![0, 1, 0]);
        assert!(dists[0] < 0.01 && dists[1] < 0.01);
        assert_eq!(dists[2], 1.0);
    }

    use linfa::traits::Fit;
}
