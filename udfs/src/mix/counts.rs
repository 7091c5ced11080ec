//! Modes of the budget and the integer count (see docs/METHOD.md, "Weights and counts").

use crate::args::{choice_traits, Choice};

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

/// n(x) = ⌊c⌋ + 1[u < c − ⌊c⌋]: the paper's independent stochastic rounding, for
/// 0 ≤ c < 2^63 (callers check the range).
#[inline]
pub fn integer_count(expected: f64, u: f64) -> i64 {
    // For c ≥ 0 truncation is ⌊c⌋, and one conversion instruction, where `floor` is a libm
    // call on x86-64's baseline target (no SSE4.1): it was a tenth of the output pass.
    let whole = expected as i64;
    whole + i64::from(u < expected - whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_count_rounds_stochastically() {
        assert_eq!(integer_count(2.0, 0.0), 2);
        assert_eq!(integer_count(2.25, 0.2), 3);
        assert_eq!(integer_count(2.25, 0.25), 2);
        assert_eq!(integer_count(0.0, 0.0), 0);
    }
}
