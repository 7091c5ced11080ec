//! Stages 4 and 5 over the rows: weights and softmax numerators, expected counts, integer
//! counts (independent or systematic rounding seeded by `id` and the seed) and the output
//! columns.

use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{col, lit, when, Expr};

use super::buckets::{rounded, Buckets};
use super::budget::CapScale;
use super::columns::*;
use super::params::{Params, Rounding};
use super::softmax::Softmax;
use crate::args::Choice;
use crate::mix::udf::round_udf;
use crate::mix::udwf::systematic_round_udwf;

/// Per row: q_norm, the weight, e = a(j)·b(x) and ln e.
pub(crate) fn with_weights(df: DataFrame, softmax: &Softmax, p: &Params) -> Result<DataFrame> {
    df.with_column(QUALITY_NORM, softmax.norm(col(QUALITY)))?
        .with_column(
            WEIGHT,
            lit(p.alpha) * col(DIVERSITY_NORM) + lit(1.0 - p.alpha) * col(QUALITY_NORM),
        )?
        .with_column(
            NUMERATOR,
            col(FACTOR) * softmax.row_factor(softmax.reference()),
        )?
        .with_column(
            LOG_NUMERATOR,
            col(LOG_FACTOR) + softmax.row_exponent(softmax.reference()),
        )
}

/// How each row's expected count is computed.
pub(crate) enum Expected {
    /// κ·a(j)·b(x): the row's [`COUNT_FACTOR`] times b(x).
    Uncapped,
    /// min(cap, scaled).
    Capped { scale: CapScale, cap: i64 },
}

/// The rows with their expected count, and with a cap the expression saying whether a row
/// was capped.
pub(crate) fn with_expected(
    rows: DataFrame,
    expected: Expected,
    softmax: &Softmax,
) -> Result<(DataFrame, Option<Expr>)> {
    let (expected, capped) = match expected {
        Expected::Uncapped => (
            col(COUNT_FACTOR) * softmax.row_factor(softmax.reference()),
            None,
        ),
        Expected::Capped { scale, cap } => {
            let (scaled, cap) = (scale.scaled(), lit(cap as f64));
            let capped = scaled.clone().gt_eq(cap.clone());
            (when(capped.clone(), cap).otherwise(scaled)?, Some(capped))
        }
    };
    Ok((rows.with_column(EXPECTED, expected)?, capped))
}

/// The output plan: `id`, `quality_norm`, `diversity`, `diversity_norm`, `weight`,
/// `expected_count`, `count` (+ `capped` with a cap).
pub(crate) fn output(
    with_c: DataFrame,
    capped: Option<Expr>,
    buckets: Option<&Buckets>,
    p: &Params,
) -> Result<DataFrame> {
    let (with_c, count) = match (p.options.rounding, buckets) {
        // ⌊c⌋ + 1[u < c − ⌊c⌋], in one function call per batch.
        (Rounding::Independent, _) => (
            with_c,
            round_udf().call(vec![col(EXPECTED), col("id"), lit(p.seed)]),
        ),
        (Rounding::Systematic, None) => (
            with_c.window(vec![systematic(p).alias(SYSTEMATIC_COUNT)])?,
            col(SYSTEMATIC_COUNT),
        ),
        (Rounding::Systematic, Some(buckets)) => {
            (rounded(with_c, buckets, p)?, col(SYSTEMATIC_COUNT))
        }
    };
    let mut out = vec![
        col("id"),
        col(QUALITY_NORM).alias("quality_norm"),
        col(DIVERSITY).alias("diversity"),
        col(DIVERSITY_NORM).alias("diversity_norm"),
        col(WEIGHT).alias("weight"),
        col(EXPECTED).alias("expected_count"),
        count.alias("count"),
    ];
    if let Some(capped) = capped {
        out.push(capped.alias("capped"));
    }
    with_c.select(out)
}

/// Systematic rounding: `samplemix_systematic_round` over all rows (one window, no order: the
/// function sorts the rows itself, so the counts do not depend on how they arrive).
fn systematic(p: &Params) -> Expr {
    Expr::from(WindowFunction::new(
        systematic_round_udwf(),
        vec![
            col(EXPECTED),
            col(TOKENS),
            col("id"),
            lit(p.seed),
            lit(p.mode.name()),
        ],
    ))
}
