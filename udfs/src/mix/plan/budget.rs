//! Stage 4: how the softmax becomes expected counts under the budget. The one place of the
//! mass and document-target formulas.
//!
//! - Without a cap, c(x) = κ·a(j)·b(x) with κ = scale / Z: every a(j)·b(x) ≤ 1, so no
//!   expected count exceeds κ, which is checked here, not per row.
//! - With `max_copies`, water-filling: c = min(cap, λ·e) with Σ c·mass = target. Documents
//!   whose λ·e reaches the cap are fixed at it and λ is rescaled over the others until that set
//!   stops growing; each round is one aggregate over the weighted rows while planning, every
//!   sum exact, so λ is the same for any partitioning. When the softmax underflows (a small τ:
//!   e(x) = 0 in f64 for documents far below the top) the uncapped documents left may all have
//!   e = 0 while the budget is not met; then the same filling runs on ln e, where nothing
//!   underflows: c = min(cap, exp(ℓ + ln e)).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_err;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::logical_expr::{cast, col, lit, when, Expr};

use super::clusters::ClusterTable;
use super::columns::{LOG_NUMERATOR, NUMERATOR, TOKENS};
use super::params::{Params, Rounding};
use super::{query, NAME};
use crate::args::show;
use crate::mix::counts::Mode;
use crate::mix::udaf::exact_sum_udaf;
use crate::mix::udf::exp_udf;

/// The most rounds of water-filling: each round fixes at least one more document at the cap,
/// and in practice a handful suffice.
const MAX_ROUNDS: usize = 200;

/// m(x): what a copy costs in the budget's unit.
pub(crate) fn mass(mode: Mode) -> Expr {
    match mode {
        Mode::Documents => lit(1.0),
        Mode::Tokens => cast(col(TOKENS), DataType::Float64),
    }
}

/// The budget in the mode's unit: tokens, or the document target N·budget/T_src (rounded to
/// a whole number under systematic rounding, so that Σ expected is a whole number and Σ count
/// can equal it exactly without biasing any document's count).
pub(crate) fn target(p: &Params, rows: f64, tokens: f64) -> f64 {
    match p.mode {
        Mode::Tokens => p.budget,
        Mode::Documents => {
            let target = rows * p.budget / tokens;
            match p.options.rounding {
                Rounding::Independent => target,
                Rounding::Systematic => (target + 0.5).floor(),
            }
        }
    }
}

/// κ of the uncapped expected counts (see the module documentation).
pub(crate) fn count_scale(clusters: &ClusterTable, p: &Params) -> Result<f64> {
    let most = target(p, clusters.rows as f64, clusters.tokens) / clusters.z;
    if clusters.rows > 0 && !(0.0..9.2e18).contains(&most) {
        return plan_err!(
            "{NAME}: an expected count is not a number below 9.2e18 (counts are Int64): in 'tokens' mode every row of 'scored' has 0 tokens, or budget_tokens is too large (largest expected count: {})",
            show(most)
        );
    }
    Ok(most)
}

/// How capped expected counts are scaled: λ·e(x), or exp(ℓ + ln e(x)) when e underflows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CapScale {
    Linear(f64),
    Log(f64),
}

impl CapScale {
    /// The uncapped expected count of a row.
    pub(crate) fn scaled(self) -> Expr {
        match self {
            CapScale::Linear(lambda) => lit(lambda) * col(NUMERATOR),
            CapScale::Log(l) => exp_udf().call(vec![lit(l) + col(LOG_NUMERATOR)]),
        }
    }
}

/// The weighted rows' totals: rows, tokens and Σ e·mass.
async fn totals(weighted: &DataFrame, p: &Params) -> Result<(f64, f64, f64)> {
    let t = query(weighted.clone().aggregate(
        vec![],
        vec![
            cast(count(lit(1)), DataType::Float64),
            cast(
                sum(cast(col(TOKENS), DataType::Decimal128(38, 0))),
                DataType::Float64,
            ),
            exact_sum_udaf().call(vec![col(NUMERATOR) * mass(p.mode)]),
        ],
    )?)
    .await?;
    Ok((t[0], t[1], t[2]))
}

/// One round's figures at a scale: capped rows, their mass, and Σ mass·e over the others
/// (`uncapped`, relative to `shift` in the log form).
async fn round(
    weighted: &DataFrame,
    scale: CapScale,
    cap: f64,
    p: &Params,
    rest: Expr,
) -> Result<(f64, f64, f64)> {
    let is_capped = scale.scaled().gt_eq(lit(cap));
    let r = query(weighted.clone().aggregate(
        vec![],
        vec![
            cast(
                sum(when(is_capped.clone(), lit(1i64)).otherwise(lit(0i64))?),
                DataType::Float64,
            ),
            exact_sum_udaf().call(vec![
                when(is_capped.clone(), mass(p.mode)).otherwise(lit(0.0))?,
            ]),
            exact_sum_udaf().call(vec![when(is_capped, lit(0.0)).otherwise(rest)?]),
        ],
    )?)
    .await?;
    Ok((r[0], r[1], r[2]))
}

/// The scale of the capped expected counts (see the module documentation); an unreachable
/// target is an error giving the most the cap allows.
pub(crate) async fn water_fill(weighted: &DataFrame, p: &Params, cap: f64) -> Result<CapScale> {
    let (n, tokens, weight) = totals(weighted, p).await?;
    if n == 0.0 {
        return Ok(CapScale::Linear(0.0));
    }
    let target = target(p, n, tokens);
    let (most, unit) = match p.mode {
        Mode::Tokens => (cap * tokens, "tokens"),
        Mode::Documents => (cap * n, "documents"),
    };
    if most < target {
        return plan_err!(
            "{NAME}: max_copies={cap} cannot meet the budget: at most {} {unit} (every document {cap} times), the budget needs {}; raise max_copies or lower budget_tokens",
            show(most),
            show(target)
        );
    }
    let mut lambda = target / weight;
    let mut capped_rows = -1.0;
    for _ in 0..MAX_ROUNDS {
        let rest = col(NUMERATOR) * mass(p.mode);
        let (rows, capped_mass, rest) =
            round(weighted, CapScale::Linear(lambda), cap, p, rest).await?;
        if rest == 0.0 && target - cap * capped_mass > 0.0 {
            // Every uncapped document left has e = 0 in f64, and the budget is not met.
            return log_fill(weighted, p, cap, target).await;
        }
        if rows == capped_rows || rest == 0.0 {
            break;
        }
        capped_rows = rows;
        lambda = (target - cap * capped_mass) / rest;
    }
    Ok(CapScale::Linear(lambda))
}

/// Water-filling on ln e(x) (see the module documentation): ℓ such that
/// Σ min(cap, exp(ℓ + ln e))·mass = target, each round
/// ℓ = ln(target − cap·M_capped) − s − ln Σ_uncapped exp(ln e − s)·mass, with s the largest
/// ln e among the uncapped documents (so the sum cannot underflow).
async fn log_fill(weighted: &DataFrame, p: &Params, cap: f64, target: f64) -> Result<CapScale> {
    let mut l = f64::NEG_INFINITY;
    let mut capped_rows = -1.0;
    for _ in 0..MAX_ROUNDS {
        let capped = CapScale::Log(l).scaled().gt_eq(lit(cap));
        let top = query(weighted.clone().aggregate(
            vec![],
            vec![max(
                when(capped.clone().or(mass(p.mode).lt_eq(lit(0.0))), lit(f64::NEG_INFINITY))
                    .otherwise(col(LOG_NUMERATOR))?,
            )],
        )?)
        .await?[0];
        if !top.is_finite() {
            break;
        }
        let rest = exp_udf().call(vec![col(LOG_NUMERATOR) - lit(top)]) * mass(p.mode);
        let (rows, capped_mass, rest) = round(weighted, CapScale::Log(l), cap, p, rest).await?;
        if rows == capped_rows && l.is_finite() {
            break;
        }
        capped_rows = rows;
        l = (target - cap * capped_mass).ln() - top - rest.ln();
    }
    Ok(CapScale::Log(l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::plan::params::{parse, parse_options};
    use datafusion::logical_expr::col as c;

    #[test]
    fn targets_in_each_mode() {
        let mut p = parse(&[c("s"), c("c"), lit(0.8), lit(0.2), lit(1000)]).unwrap();
        assert_eq!(target(&p, 10.0, 5000.0), 1000.0);
        p.mode = Mode::Documents;
        assert_eq!(target(&p, 10.0, 4000.0), 2.5);
        p.options = parse_options("rounding=systematic").unwrap();
        assert_eq!(target(&p, 10.0, 4000.0), 3.0);
    }
}
