//! Nearest-centroid assignment as a matrix product instead of a scalar distance loop.
//!
//! For L2, ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖², so the nearest centroid maximises x·c − ‖c‖²/2; for
//! cosine it maximises x·c/‖c‖. Both are "score = x·ĉ + bias" over prepared centroids ĉ, so
//! a block of rows needs one matrix product with the centroid matrix:
//!
//! - on CPUs with AVX-512, a fused kernel (`simd.rs`) computes 6 rows × 64 centroids at a time in
//!   registers and folds the scores straight into each row's running top two, never writing
//!   the product matrix;
//! - elsewhere, `matrixmultiply::sgemm` fills a tile of products and a scalar pass keeps the
//!   top two.
//!
//! The two best candidates of each row are then re-checked exactly (L2: the squared distance
//! summed in f32 in the same order as linfa's `predict`; cosine: the f64 distance), so float
//! error in the expansion never changes a label (ties go to the lower index, as in linfa), and
//! the label does not depend on which kernel ran. The reported distance is recomputed in f64
//! for the chosen centroid.

use super::metric::Metric;
use super::simd::{self, LaneTop2, LANES, MR, NR};
use crate::Error;

/// Rows per tile of the portable path: a tile's products (ROWS × k floats) stay in cache.
const ROWS: usize = 256;
/// Rows a worker thread takes at a time (fixed, so results never depend on the thread count).
pub(crate) const CHUNK: usize = 4096;

/// Centroids prepared for repeated assignment. Fields are private so the sizes the kernels
/// rely on (`values.len() == k·dim`) can only be set by [`Centroids::new`], which checks them.
#[derive(Debug, Clone)]
pub struct Centroids {
    values: Vec<f32>,
    dim: usize,
    metric: Metric,
    ids: Vec<i32>,
    /// Dimension-major panels of `LANES` prepared centroids (padded to a multiple of
    /// `NR·LANES` centroids), for the fused kernel.
    panels: Vec<f32>,
    /// Score bias per (padded) centroid: −‖c‖²/2 for L2, 0 for cosine, −∞ for padding.
    bias: Vec<f32>,
    /// Prepared centroids row-major (c for L2, c/‖c‖ for cosine), for the portable path.
    prepared: Vec<f32>,
}

impl Centroids {
    /// Centroids from row-major `values` (`ids.len()` rows of `dim` values); `ids` are the
    /// cluster ids reported for each row. Errors when the sizes disagree or a value is not finite.
    pub fn new(values: Vec<f32>, dim: usize, metric: Metric, ids: Vec<i32>) -> Result<Self, Error> {
        if dim == 0 || ids.is_empty() {
            return Err(Error::invalid(
                "centroids must have at least one row and one dimension",
            ));
        }
        if values.len() != dim * ids.len() {
            return Err(Error::invalid(format!(
                "{} centroid values for {} centroids of dimension {dim}",
                values.len(),
                ids.len()
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("centroids contain NaN or infinite values"));
        }
        if values
            .chunks_exact(dim)
            .any(|r| !r.iter().map(|x| x * x).sum::<f32>().is_finite())
        {
            return Err(Error::invalid(
                "a centroid's squared norm overflows f32 (values beyond about 1e19)",
            ));
        }
        let k = ids.len();
        let mut prepared = values.clone();
        let mut bias = vec![f32::NEG_INFINITY; k.div_ceil(NR * LANES) * NR * LANES];
        for (j, row) in prepared.chunks_exact_mut(dim).enumerate() {
            let sq: f32 = row.iter().map(|x| x * x).sum();
            match metric {
                Metric::L2 => bias[j] = -sq / 2.0,
                Metric::Cosine => {
                    bias[j] = 0.0;
                    if sq > 0.0 {
                        let inv = 1.0 / sq.sqrt();
                        row.iter_mut().for_each(|x| *x *= inv);
                    }
                }
            }
        }
        let mut panels = vec![0.0f32; bias.len() * dim];
        for (j, row) in prepared.chunks_exact(dim).enumerate() {
            let (panel, lane) = (j / LANES, j % LANES);
            for (p, v) in row.iter().enumerate() {
                panels[panel * dim * LANES + p * LANES + lane] = *v;
            }
        }
        Ok(Self {
            values,
            dim,
            metric,
            ids,
            panels,
            bias,
            prepared,
        })
    }

    /// Number of centroids.
    pub fn k(&self) -> usize {
        self.ids.len()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Metric the centroids were fitted with.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Cluster id of each centroid, in row order.
    pub fn ids(&self) -> &[i32] {
        &self.ids
    }

    /// Row-major centroid values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Centroid `j`.
    pub fn row(&self, j: usize) -> &[f32] {
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

/// The exact winner of the two best candidates (lower index on ties).
fn recheck(row: &[f32], c: &Centroids, best: usize, second: usize) -> usize {
    // Values so large that f32 products overflow (|x| beyond ~1e19) leave the fast scores
    // infinite or NaN: such rows are assigned exactly, in f64, over all centroids.
    let sq: f32 = row.iter().map(|x| x * x).sum();
    if best >= c.k() || !sq.is_finite() {
        return (0..c.k())
            .map(|j| (c.metric.distance(row, c.row(j)), j))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map_or(0, |(_, j)| j);
    }
    if second >= c.k() {
        return best;
    }
    let (lo, hi) = (best.min(second), best.max(second));
    let closer_hi = match c.metric {
        Metric::L2 => sq_dist(row, c.row(hi)) < sq_dist(row, c.row(lo)),
        Metric::Cosine => {
            Metric::Cosine.distance(row, c.row(hi)) < Metric::Cosine.distance(row, c.row(lo))
        }
    };
    if closer_hi {
        hi
    } else {
        lo
    }
}

/// Top two (index) of a row's scores, earliest index on ties.
fn top2(scores: impl Iterator<Item = f32>) -> (usize, usize) {
    let (mut best, mut second) = (usize::MAX, usize::MAX);
    let (mut bs, mut ss) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for (j, s) in scores.enumerate() {
        if s > bs || best == usize::MAX {
            second = best;
            ss = bs;
            best = j;
            bs = s;
        } else if s > ss || second == usize::MAX {
            second = j;
            ss = s;
        }
    }
    (best, second)
}

/// The two best lanes of a row's per-lane top two, by (score, then lower index).
fn top2_of_lanes(t: &LaneTop2) -> (usize, usize) {
    let mut cands: Vec<(f32, u32)> = Vec::with_capacity(2 * LANES);
    for l in 0..LANES {
        if t.best_idx[l] != u32::MAX {
            cands.push((t.best[l], t.best_idx[l]));
        }
        if t.second_idx[l] != u32::MAX {
            cands.push((t.second[l], t.second_idx[l]));
        }
    }
    let better = |a: &(f32, u32), b: &(f32, u32)| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
    let mut best: Option<(f32, u32)> = None;
    let mut second: Option<(f32, u32)> = None;
    for c in cands {
        if best.is_none_or(|b| better(&c, &b)) {
            second = best;
            best = Some(c);
        } else if second.is_none_or(|s| better(&c, &s)) {
            second = Some(c);
        }
    }
    let idx = |o: Option<(f32, u32)>| o.map_or(usize::MAX, |(_, i)| i as usize);
    (idx(best), idx(second))
}

/// Labels (indices into the centroid rows) of the rows of `x` (row-major, `dim` wide) on this
/// thread, appended to `labels`.
fn assign_serial(x: &[f32], c: &Centroids, labels: &mut Vec<usize>) {
    let d = c.dim;
    if simd::has_avx512() {
        let group = NR * LANES;
        let groups = c.bias.len() / group;
        let mut block = vec![0.0f32; MR * d];
        for rows in x.chunks(MR * d) {
            let m = rows.len() / d;
            block[..rows.len()].copy_from_slice(rows);
            block[rows.len()..].fill(0.0);
            let mut state = [LaneTop2::default(); MR];
            for g in 0..groups {
                let panels = &c.panels[g * group * d..(g + 1) * group * d];
                let bias = &c.bias[g * group..(g + 1) * group];
                simd::top2_block(&block, panels, bias, d, (g * group) as u32, &mut state);
            }
            for (r, t) in state.iter().take(m).enumerate() {
                let (best, second) = top2_of_lanes(t);
                labels.push(recheck(&rows[r * d..(r + 1) * d], c, best, second));
            }
        }
        return;
    }
    let k = c.k();
    let mut products = vec![0.0f32; ROWS * k];
    for tile in x.chunks(ROWS * d) {
        let m = tile.len() / d;
        simd::dot_products(tile, &c.prepared, d, &mut products[..m * k]);
        for i in 0..m {
            let p = &products[i * k..(i + 1) * k];
            let (best, second) = top2(p.iter().zip(&c.bias).map(|(p, b)| p + b));
            labels.push(recheck(&tile[i * d..(i + 1) * d], c, best, second));
        }
    }
}

/// Apply `f` to the fixed ranges `0..chunk`, `chunk..2·chunk`, ... of `0..n` on up to
/// `threads` threads and concatenate the results in range order. Ranges, not threads, define
/// the work, so the output never depends on the thread count.
pub(crate) fn par_ranges<T: Send>(
    n: usize,
    chunk: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>) -> Vec<T> + Sync,
) -> Vec<T> {
    let chunk = chunk.max(1);
    let ranges: Vec<std::ops::Range<usize>> = (0..n.div_ceil(chunk))
        .map(|i| i * chunk..((i + 1) * chunk).min(n))
        .collect();
    let threads = threads.clamp(1, ranges.len().max(1));
    if threads == 1 {
        return ranges.into_iter().flat_map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, Vec<T>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(range) = ranges.get(i) else { break };
                        done.push((i, f(range.clone())));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all: Vec<(usize, Vec<T>)> = parts.iter_mut().flat_map(std::mem::take).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().flat_map(|(_, v)| v).collect()
}

/// Index of the nearest centroid of each row of `x` (row-major, `c.dim()` wide), on `threads`
/// threads (same result for any thread count).
pub fn assign_labels(x: &[f32], c: &Centroids, threads: usize) -> Vec<usize> {
    let d = c.dim;
    par_ranges(x.len() / d, CHUNK, threads, |rows| {
        let mut labels = Vec::with_capacity(rows.len());
        assign_serial(&x[rows.start * d..rows.end * d], c, &mut labels);
        labels
    })
}

/// Index of the nearest centroid of each row and the exact (f64) distance to it under the
/// centroids' metric, on `threads` threads (same result for any thread count).
pub fn assign(x: &[f32], c: &Centroids, threads: usize) -> (Vec<usize>, Vec<f64>) {
    let d = c.dim;
    par_ranges(x.len() / d, CHUNK, threads, |rows| {
        let part = &x[rows.start * d..rows.end * d];
        let mut labels = Vec::with_capacity(rows.len());
        assign_serial(part, c, &mut labels);
        labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l, c.metric.distance(&part[i * d..(i + 1) * d], c.row(l))))
            .collect()
    })
    .into_iter()
    .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256Plus;

    fn random(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    fn brute(x: &[f32], c: &Centroids) -> Vec<usize> {
        let d = c.dim();
        x.chunks(d)
            .map(|row| {
                let mut best = 0;
                for j in 1..c.k() {
                    let closer = match c.metric() {
                        Metric::L2 => sq_dist(row, c.row(j)) < sq_dist(row, c.row(best)),
                        Metric::Cosine => {
                            Metric::Cosine.distance(row, c.row(j))
                                < Metric::Cosine.distance(row, c.row(best))
                        }
                    };
                    if closer {
                        best = j;
                    }
                }
                best
            })
            .collect()
    }

    #[test]
    fn labels_equal_a_brute_force_search_for_odd_sizes() {
        for (n, d, k, metric) in [
            (3000, 24, 37, Metric::L2),
            (1001, 7, 1, Metric::L2),
            (517, 33, 70, Metric::Cosine),
            (64, 256, 256, Metric::L2),
        ] {
            let x = random(n, d, 1);
            let c = Centroids::new(random(k, d, 2), d, metric, (0..k as i32).collect()).unwrap();
            let (labels, dists) = assign(&x, &c, 3);
            assert_eq!(labels, brute(&x, &c), "n={n} d={d} k={k} {metric}");
            for (i, l) in labels.iter().enumerate() {
                assert_eq!(dists[i], metric.distance(&x[i * d..(i + 1) * d], c.row(*l)));
            }
            assert_eq!(assign_labels(&x, &c, 1), labels);
        }
    }

    #[test]
    fn cosine_picks_the_most_similar_direction() {
        let c = Centroids::new(vec![1.0, 0.0, 0.0, 1.0], 2, Metric::Cosine, vec![7, 9]).unwrap();
        let (labels, dists) = assign(&[3.0, 0.1, 0.2, 5.0, 0.0, 0.0], &c, 1);
        assert_eq!(labels, vec![0, 1, 0]);
        assert!(dists[0] < 0.01 && dists[1] < 0.01);
        assert_eq!(dists[2], 1.0);
    }

    #[test]
    fn sizes_are_checked_before_any_kernel_runs() {
        assert!(Centroids::new(vec![1.0; 5], 2, Metric::L2, vec![0, 1]).is_err());
        assert!(Centroids::new(vec![], 2, Metric::L2, vec![]).is_err());
        assert!(Centroids::new(vec![f32::NAN, 0.0], 2, Metric::L2, vec![0]).is_err());
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let (n, d, k) = (10_000, 16, 50);
        let x = random(n, d, 5);
        let c = Centroids::new(random(k, d, 6), d, Metric::L2, (0..k as i32).collect()).unwrap();
        let one = assign(&x, &c, 1);
        for t in [2, 3, 8] {
            assert_eq!(assign(&x, &c, t), one);
        }
    }
}
