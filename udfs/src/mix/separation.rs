//! Separation of each centroid from the others (docs/METHOD.md §2.3), computed while
//! `samplemix_weights` is planned from the k centroids.

use super::counts::Separation;
use super::exact_sum::ExactSum;
use crate::cluster::assign::Centroids;
use crate::cluster::metric::{distance_f64, CosineColumns, CosinePrepared, Metric};
use crate::Error;

/// Separation of each centroid from the others: the mean (exact, order-independent sum) or
/// the minimum of its distances to the other centroids, in f64 (`samplemix_distance`'s
/// formula); 0 with a single centroid. The k²/2 distances are shared among the machine's
/// cores: exact sums and minima give the same result however they are split.
pub fn separation(centroids: &Centroids, mode: Separation) -> Result<Vec<f64>, Error> {
    // Below a few hundred centroids a thread costs more than it saves.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(centroids.k() / 128)
        .max(1);
    separation_on(centroids, mode, threads)
}

/// [`separation`] on `threads` threads.
fn separation_on(
    centroids: &Centroids,
    mode: Separation,
    threads: usize,
) -> Result<Vec<f64>, Error> {
    let k = centroids.k();
    if k < 2 {
        return Ok(vec![0.0; k]);
    }
    let rows: Vec<Vec<f64>> = (0..k)
        .map(|j| centroids.row(j).iter().map(|v| f64::from(*v)).collect())
        .collect();
    let prepared: Vec<CosinePrepared> = match centroids.metric() {
        Metric::Cosine => rows.iter().map(|r| CosinePrepared::new(r)).collect(),
        Metric::L2 => Vec::new(),
    };
    let columns = CosineColumns::new(&prepared);
    // Distances from centroid i to every j > i.
    let distances_from = |i: usize, out: &mut [f64]| match centroids.metric() {
        Metric::Cosine => columns.distances(&prepared[i], i + 1, out),
        Metric::L2 => {
            for (j, d) in (i + 1..k).zip(out.iter_mut()) {
                *d = distance_f64(Metric::L2, &rows[i], &rows[j]);
            }
        }
    };
    let parts: Vec<Result<Partial, Error>> = if threads == 1 {
        vec![Partial::of(0..k, k, mode, &distances_from)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = balanced_rows(k, threads)
                .into_iter()
                .map(|range| scope.spawn(|| Partial::of(range, k, mode, &distances_from)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::invalid(
                            "internal error: a separation worker panicked",
                        ))
                    })
                })
                .collect()
        })
    };
    let mut all = Partial::empty(k, mode);
    for part in parts {
        all.merge(&part?)?;
    }
    Ok(match mode {
        Separation::Mean => all
            .sums
            .into_iter()
            .map(|s| s.value() / (k - 1) as f64)
            .collect(),
        Separation::Min => all.mins,
    })
}

/// Ranges of rows i of the pairs (i, j > i) with about the same number of pairs each.
fn balanced_rows(k: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let total = k * (k - 1) / 2;
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut done) = (0, 0);
    for i in 0..k {
        done += k - i - 1;
        if done * parts >= total * (out.len() + 1) && out.len() + 1 < parts {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    out.push(start..k);
    out
}

/// Per-centroid sums or minima over the pairs of some rows.
struct Partial {
    sums: Vec<ExactSum>,
    mins: Vec<f64>,
}

impl Partial {
    fn of(
        rows: std::ops::Range<usize>,
        k: usize,
        mode: Separation,
        distances_from: &(dyn Fn(usize, &mut [f64]) + Sync),
    ) -> Result<Self, Error> {
        let mut part = Partial::empty(k, mode);
        let mut out = vec![0.0; k];
        // The distance is symmetric bit for bit (products commute, sums run in index order),
        // so each pair is computed once and counted for both ends.
        for i in rows {
            let row = &mut out[..k - i - 1];
            distances_from(i, row);
            for (j, d) in (i + 1..k).zip(row.iter()) {
                match mode {
                    Separation::Mean => {
                        part.sums[i].add(*d)?;
                        part.sums[j].add(*d)?;
                    }
                    Separation::Min => {
                        part.mins[i] = part.mins[i].min(*d);
                        part.mins[j] = part.mins[j].min(*d);
                    }
                }
            }
        }
        Ok(part)
    }

    /// Nothing summed yet (the identity of [`Partial::merge`]).
    fn empty(k: usize, mode: Separation) -> Self {
        Partial {
            sums: vec![ExactSum::default(); if mode == Separation::Mean { k } else { 0 }],
            mins: vec![f64::INFINITY; if mode == Separation::Min { k } else { 0 }],
        }
    }

    fn merge(&mut self, other: &Partial) -> Result<(), Error> {
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            a.merge(b)?;
        }
        for (a, b) in self.mins.iter_mut().zip(&other.mins) {
            *a = a.min(*b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::metric::Metric;

    #[test]
    fn separation_equals_the_pairwise_formula_bit_for_bit() {
        let mut state = 7u64;
        let mut next = || {
            state = crate::hash::splitmix64(state);
            (crate::hash::unit_interval(state) as f32 - 0.5) * 1e3
        };
        // More centroids than one AVX-512 block of dot products (64), and a tail.
        let (k, dim) = (70, 24);
        let mut values: Vec<f32> = (0..k * dim).map(|_| next()).collect();
        values[..dim].fill(0.0); // a zero centroid: cosine distance 1 to everything
        for metric in [Metric::Cosine, Metric::L2] {
            let c = Centroids::new(values.clone(), dim, metric, (0..k as i32).collect()).unwrap();
            let rows: Vec<Vec<f64>> = (0..k)
                .map(|j| c.row(j).iter().map(|v| f64::from(*v)).collect())
                .collect();
            let naive = |mode: Separation| -> Vec<u64> {
                (0..k)
                    .map(|i| {
                        let d = (0..k)
                            .filter(|j| *j != i)
                            .map(|j| distance_f64(metric, &rows[i], &rows[j]));
                        match mode {
                            Separation::Mean => {
                                let mut s = ExactSum::default();
                                d.for_each(|x| s.add(x).unwrap());
                                (s.value() / (k - 1) as f64).to_bits()
                            }
                            Separation::Min => d.fold(f64::INFINITY, f64::min).to_bits(),
                        }
                    })
                    .collect()
            };
            for mode in [Separation::Mean, Separation::Min] {
                let fast: Vec<u64> = separation(&c, mode)
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(fast, naive(mode), "{metric:?} {mode:?}");
                for threads in [2, 3, 8, 64] {
                    let split: Vec<u64> = separation_on(&c, mode, threads)
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect();
                    assert_eq!(split, fast, "{metric:?} {mode:?} on {threads} threads");
                }
            }
        }
    }

    #[test]
    fn balanced_rows_cover_every_row_once() {
        for (k, parts) in [(2, 1), (2, 2), (40, 3), (1024, 2), (5, 9)] {
            let ranges = balanced_rows(k, parts);
            assert!(ranges.len() <= parts.max(1) + 1, "{k} {parts}");
            let rows: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(rows, (0..k).collect::<Vec<_>>(), "{k} {parts}");
        }
        // Two parts of 1024 rows: the first takes ~29% of the rows, half of the pairs.
        let pairs = |r: &std::ops::Range<usize>| r.clone().map(|i| 1023 - i).sum::<usize>();
        let halves = balanced_rows(1024, 2);
        assert_eq!(halves.len(), 2);
        assert!(pairs(&halves[0]).abs_diff(pairs(&halves[1])) < 1024);
    }

    #[test]
    fn separation_mean_and_min() {
        let c = Centroids::new(
            vec![0.0, 0.0, 3.0, 4.0, 6.0, 8.0],
            2,
            Metric::L2,
            vec![0, 1, 2],
        )
        .unwrap();
        assert_eq!(
            separation(&c, Separation::Mean).unwrap(),
            vec![7.5, 5.0, 7.5]
        );
        assert_eq!(
            separation(&c, Separation::Min).unwrap(),
            vec![5.0, 5.0, 5.0]
        );
        let one = Centroids::new(vec![1.0, 2.0], 2, Metric::L2, vec![4]).unwrap();
        assert_eq!(separation(&one, Separation::Mean).unwrap(), vec![0.0]);
    }
}
