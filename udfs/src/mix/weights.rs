//! The pure math behind `samplemix_weights` (see docs/METHOD.md, "Weights and counts"): the
//! integer count, cluster separation and an order-independent (exact fixed-point) sum. The
//! other steps (min-max normalisation, weight, stable softmax, expected count) are plain
//! expressions of the plan in `udtf.rs`; `tests/mix.rs` checks the plan against these functions
//! and against an independent computation.

use crate::args::{choice_traits, Choice};
use crate::cluster::assign::Centroids;
use crate::cluster::metric::{cosine_prepared, distance_f64, CosinePrepared, Metric};
use crate::Error;

/// How expected counts are scaled to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Σ c(x) · tokens(x) = budget: the mix holds the budget's tokens in expectation.
    Tokens,
    /// The paper's document-count form: N_tgt = N · budget / T_src, c(x) = N_tgt · p(x).
    Documents,
}

impl Choice for Mode {
    const WHAT: &'static str = "mode";
    const NAMES: &'static [(&'static str, Self)] =
        &[("tokens", Mode::Tokens), ("documents", Mode::Documents)];
}
choice_traits!(Mode);

/// How a cluster's separation from the other centroids is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separation {
    /// Mean distance to the other centroids (default).
    Mean,
    /// Distance to the nearest other centroid.
    Min,
}

impl Choice for Separation {
    const WHAT: &'static str = "separation";
    const NAMES: &'static [(&'static str, Self)] =
        &[("mean", Separation::Mean), ("min", Separation::Min)];
}
choice_traits!(Separation);

/// n(x) = ⌊c⌋ + 1[u < c − ⌊c⌋]: the paper's independent stochastic rounding.
pub fn integer_count(expected: f64, u: f64) -> i64 {
    let whole = expected.floor();
    whole as i64 + i64::from(u < expected - whole)
}

/// Separation of each centroid from the others: the mean (exact, order-independent sum) or
/// the minimum of its distances to the other centroids, in f64 (`samplemix_distance`'s
/// formula); 0 with a single centroid.
pub fn separation(centroids: &Centroids, mode: Separation) -> Vec<f64> {
    let k = centroids.k();
    if k < 2 {
        return vec![0.0; k];
    }
    let rows: Vec<Vec<f64>> = (0..k)
        .map(|j| centroids.row(j).iter().map(|v| f64::from(*v)).collect())
        .collect();
    let prepared: Vec<CosinePrepared> = match centroids.metric() {
        Metric::Cosine => rows.iter().map(|r| CosinePrepared::new(r)).collect(),
        Metric::L2 => Vec::new(),
    };
    let distance = |i: usize, j: usize| match centroids.metric() {
        Metric::Cosine => cosine_prepared(&prepared[i], &prepared[j]),
        Metric::L2 => distance_f64(Metric::L2, &rows[i], &rows[j]),
    };
    // The distance is symmetric bit for bit (products commute, sums run in index order), so
    // each pair is computed once and counted for both ends; exact sums and minima do not
    // depend on the order they see the values in.
    let mut sums = vec![ExactSum::default(); k];
    let mut mins = vec![f64::INFINITY; k];
    for i in 0..k {
        for j in i + 1..k {
            let d = distance(i, j);
            match mode {
                Separation::Mean => {
                    // Distances between finite f32 vectors are finite and far below 4.6e18.
                    sums[i].add(d).unwrap_or_default();
                    sums[j].add(d).unwrap_or_default();
                }
                Separation::Min => {
                    mins[i] = mins[i].min(d);
                    mins[j] = mins[j].min(d);
                }
            }
        }
    }
    match mode {
        Separation::Mean => sums
            .into_iter()
            .map(|s| s.value() / (k - 1) as f64)
            .collect(),
        Separation::Min => mins,
    }
}

/// Fixed-point units per copy in systematic rounding (fractions are counted in 2^-32 steps).
pub const SYSTEMATIC_UNIT: i64 = 1 << 32;

/// The offset of systematic rounding, in [`SYSTEMATIC_UNIT`]s: uniform from the seed over the
/// offsets for which the extra copies add up to exactly `round(total / UNIT)`. `total` is the
/// exact sum of all fractional parts in units; it differs from a multiple of the unit by the
/// rounding of the fractions (`discrepancy`), and offsets below it (or above unit + it) would
/// add one copy too many (too few).
pub fn systematic_offset(total: i64, seed: i64) -> i64 {
    let target = (total + SYSTEMATIC_UNIT / 2).div_euclid(SYSTEMATIC_UNIT);
    let discrepancy = total - target * SYSTEMATIC_UNIT;
    let (lo, hi) = (discrepancy.max(0), SYSTEMATIC_UNIT + discrepancy.min(0));
    let u = crate::hash::uniform(b"samplemix systematic rounding", seed);
    (lo + (u * (hi - lo) as f64) as i64).min(hi - 1)
}

/// Extra copies (0 or more) a document gets in systematic rounding: the comb points
/// `offset + j·UNIT` in [before, after), where `before` and `after` are the cumulative fraction
/// units up to and including it.
pub fn systematic_extra(before: i64, after: i64, offset: i64) -> i64 {
    let comb = |f: i64| (f - offset + SYSTEMATIC_UNIT - 1).div_euclid(SYSTEMATIC_UNIT);
    comb(after) - comb(before)
}

/// Fixed-point scale of [`ExactSum`]: 2^64 units per 1.0.
const SCALE: f64 = 18_446_744_073_709_551_616.0;

/// A sum of f64 values that does not depend on their order: each value is rounded to a
/// multiple of 2^-64 and added exactly in an i128. Values must be finite with |x| < 2^62.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactSum(pub i128);

impl ExactSum {
    /// Add one value; Err names the problem.
    pub fn add(&mut self, x: f64) -> Result<(), Error> {
        if !x.is_finite() || x.abs() >= 4.6e18 {
            return Err(Error::NotSummable(x));
        }
        let fixed = (x * SCALE).round() as i128;
        self.merge(ExactSum(fixed))
    }

    /// Add another partial sum.
    pub fn merge(&mut self, other: ExactSum) -> Result<(), Error> {
        self.0 = self.0.checked_add(other.0).ok_or(Error::SumOverflow)?;
        Ok(())
    }

    /// The sum as f64.
    pub fn value(self) -> f64 {
        self.0 as f64 / SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::metric::Metric;

    #[test]
    fn integer_count_rounds_stochastically() {
        assert_eq!(integer_count(2.0, 0.0), 2);
        assert_eq!(integer_count(2.25, 0.2), 3);
        assert_eq!(integer_count(2.25, 0.25), 2);
        assert_eq!(integer_count(0.0, 0.0), 0);
    }

    #[test]
    fn separation_equals_the_pairwise_formula_bit_for_bit() {
        let mut state = 7u64;
        let mut next = || {
            state = crate::hash::splitmix64(state);
            (crate::hash::unit_interval(state) as f32 - 0.5) * 1e3
        };
        let (k, dim) = (40, 24);
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
                let fast: Vec<u64> = separation(&c, mode).iter().map(|v| v.to_bits()).collect();
                assert_eq!(fast, naive(mode), "{metric:?} {mode:?}");
            }
        }
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
        assert_eq!(separation(&c, Separation::Mean), vec![7.5, 5.0, 7.5]);
        assert_eq!(separation(&c, Separation::Min), vec![5.0, 5.0, 5.0]);
        let one = Centroids::new(vec![1.0, 2.0], 2, Metric::L2, vec![4]).unwrap();
        assert_eq!(separation(&one, Separation::Mean), vec![0.0]);
    }

    #[test]
    fn systematic_rounding_adds_exactly_the_rounded_total() {
        // Fractions 0.3 + 0.45 + 0.8 + 0.2 + 0.75 = 2.5 -> 3 (rounded half up), for every seed.
        let fracs = [0.3, 0.45, 0.8, 0.2, 0.75];
        let units: Vec<i64> = fracs
            .iter()
            .map(|f| (f * SYSTEMATIC_UNIT as f64) as i64)
            .collect();
        let total: i64 = units.iter().sum();
        for seed in 0..200 {
            let offset = systematic_offset(total, seed);
            let mut before = 0;
            let mut extra = 0;
            for u in &units {
                let e = systematic_extra(before, before + u, offset);
                assert!((0..=1).contains(&e));
                extra += e;
                before += u;
            }
            assert_eq!(
                extra,
                (total as f64 / SYSTEMATIC_UNIT as f64).round() as i64,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn exact_sum_is_order_independent() {
        let values: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f64 / 997.0 + 1e-9 * i as f64)
            .collect();
        let mut a = ExactSum::default();
        values.iter().for_each(|v| a.add(*v).unwrap());
        let mut b = ExactSum::default();
        values.iter().rev().for_each(|v| b.add(*v).unwrap());
        assert_eq!(a, b);
        let naive: f64 = values.iter().sum();
        assert!((a.value() - naive).abs() < 1e-9 * naive);
        assert!(ExactSum::default().add(f64::NAN).is_err());
    }
}
