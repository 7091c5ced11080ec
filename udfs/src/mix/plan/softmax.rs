//! The softmax numerator, split into a per-cluster and a per-row factor:
//! e(x) = exp((w(x) − w_max)/τ) = a(j)·b(x), with b(x) = exp(γ·(q(x) − r)),
//! γ = (1 − α)/(τ·Δq), and a(j) = exp((α·d_norm(j) + (1 − α)·q_norm(r) − w_max)/τ).
//! The per-cluster sums S(j) = Σ_{x∈j} b(x)·m(x) need only the global quality range, not the
//! diversities, so they are taken in the same pass as the other per-cluster statistics, and
//! Z = Σ_j a(j)·S(j) needs no pass of its own.

use datafusion::logical_expr::{col, lit, Expr};

use super::columns::{QUALITY, REFERENCE};
use super::params::Params;
use crate::mix::udf::exp_udf;

/// Above this (1 − α)/τ, b(x) relative to the global top quality could underflow f64
/// (e^-708), so each cluster's own top quality is the reference (one more pass).
pub(crate) const GLOBAL_REFERENCE_LIMIT: f64 = 700.0;

/// The quality range and what follows from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Softmax {
    /// Global quality range [min, max] (from a min/max aggregate, often answered by Parquet
    /// statistics without a scan).
    pub qmin: f64,
    pub qmax: f64,
    pub gamma: f64,
    /// The reference r: the global top quality (b(x) ≤ 1, ≥ e^-(1−α)/τ), or, above
    /// [`GLOBAL_REFERENCE_LIMIT`], each cluster's own top quality (both factors ≤ 1).
    pub per_cluster: bool,
}

impl Softmax {
    pub(crate) fn new(qmin: f64, qmax: f64, p: &Params) -> Self {
        // A NaN or infinite quality reaches here only through a min/max the statistics pass
        // will reject with its own message; until then any finite range will do.
        let (qmin, qmax) = if qmin.is_finite() && qmax.is_finite() {
            (qmin, qmax)
        } else {
            (0.0, 0.0)
        };
        let gamma = if qmax > qmin {
            (1.0 - p.alpha) / (p.tau * (qmax - qmin))
        } else {
            0.0
        };
        Self {
            qmin,
            qmax,
            gamma,
            per_cluster: (1.0 - p.alpha) / p.tau > GLOBAL_REFERENCE_LIMIT,
        }
    }

    /// q_norm = (q − q_min)/(q_max − q_min), 0 when all qualities are equal.
    pub(crate) fn norm(&self, q: Expr) -> Expr {
        if self.qmax > self.qmin {
            (q - lit(self.qmin)) / lit(self.qmax - self.qmin)
        } else {
            lit(0.0)
        }
    }

    /// [`Softmax::norm`] of a number.
    pub(crate) fn norm_f64(&self, q: f64) -> f64 {
        if self.qmax > self.qmin {
            (q - self.qmin) / (self.qmax - self.qmin)
        } else {
            0.0
        }
    }

    /// The reference r of b(x) for a cluster whose top quality is `top`.
    pub(crate) fn reference_f64(&self, top: f64) -> f64 {
        if self.per_cluster {
            top
        } else {
            self.qmax
        }
    }

    /// The reference r of b(x) in a row: a literal, or the row's cluster figure.
    pub(crate) fn reference(&self) -> Expr {
        if self.per_cluster {
            col(REFERENCE)
        } else {
            lit(self.qmax)
        }
    }

    /// The exponent of b(x), γ·(q − r).
    pub(crate) fn row_exponent(&self, reference: Expr) -> Expr {
        (col(QUALITY) - reference) * lit(self.gamma)
    }

    /// b(x); the same expression in the statistics and the output pass, so S(j) sums exactly
    /// the values the rows use.
    pub(crate) fn row_factor(&self, reference: Expr) -> Expr {
        exp_udf().call(vec![self.row_exponent(reference)])
    }

    /// ln a(j) of a cluster with normalised diversity `dn` and top quality `top`.
    pub(crate) fn log_factor(&self, p: &Params, dn: f64, top: f64, w_max: f64) -> f64 {
        (p.alpha * dn + (1.0 - p.alpha) * self.norm_f64(self.reference_f64(top)) - w_max) / p.tau
    }

    /// The cluster's part of the top weight, α·d_norm + (1 − α)·q_norm(top).
    pub(crate) fn top_weight(&self, p: &Params, dn: f64, top: f64) -> f64 {
        p.alpha * dn + (1.0 - p.alpha) * self.norm_f64(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::plan::params::parse;

    fn params(alpha: f64, tau: f64) -> Params {
        parse(&[col("s"), col("c"), lit(alpha), lit(tau), lit(100)]).unwrap()
    }

    #[test]
    fn factors_multiply_to_the_softmax_numerator() {
        let p = params(0.8, 0.2);
        let s = Softmax::new(2.0, 7.0, &p);
        assert!(!s.per_cluster);
        assert!((s.gamma - 0.2 / (0.2 * 5.0)).abs() < 1e-15);
        // A row of quality 5 in a cluster of normalised diversity 0.5 and top quality 6.
        let (dn, q, w_max) = (0.5, 5.0, s.top_weight(&p, 1.0, 7.0));
        let a = s.log_factor(&p, dn, 6.0, w_max).exp();
        let b = (s.gamma * (q - s.reference_f64(6.0))).exp();
        let w = p.alpha * dn + (1.0 - p.alpha) * s.norm_f64(q);
        assert!((a * b - ((w - w_max) / p.tau).exp()).abs() < 1e-12);
        assert_eq!(s.norm_f64(2.0), 0.0);
        assert_eq!(Softmax::new(3.0, 3.0, &p).norm_f64(3.0), 0.0);
        assert!(Softmax::new(0.0, 1.0, &params(0.0, 0.001)).per_cluster);
        assert_eq!(Softmax::new(f64::NAN, 1.0, &p).qmax, 0.0);
    }
}
