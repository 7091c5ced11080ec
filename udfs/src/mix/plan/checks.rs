//! The checks of `scored`'s values (stage 2a): one aggregate of counts and extremes, which
//! DataFusion answers from Parquet statistics when the files have them (no scan), so the
//! passes over the rows carry no per-row checks. NaN (absent from Parquet statistics) still
//! fails the statistics pass, whose exact sums refuse it. After a failure, one more query per
//! rule finds an offending row to name.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::plan_datafusion_err;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{count, max, min};
use datafusion::logical_expr::{cast, col, lit, Expr};

use super::NAME;

/// What the checks found out: the quality range, and whether token sums fit Int64.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Checked {
    pub qmin: f64,
    pub qmax: f64,
    pub int64_tokens: bool,
}

/// The rule a `scored` column must follow: (ok, what breaks it). `value` is the column
/// already cast to its type.
fn value_rule(column: &str, value: Expr) -> (Expr, &'static str) {
    let finite = |v: Expr| v.between(lit(f64::MIN), lit(f64::MAX));
    match column {
        "id" => (
            value.is_not_null(),
            "NULL values (every row needs an id: it seeds the rounding)",
        ),
        "quality" => (finite(value), "NULL, NaN or infinite values"),
        "distance" => (
            finite(value.clone()).and(value.gt_eq(lit(0.0))),
            "NULL, NaN, infinite or negative values (distances are >= 0)",
        ),
        "tokens" => (
            value.gt_eq(lit(0i64)),
            "NULL or negative values (token counts are >= 0)",
        ),
        _ => (value.is_not_null(), "NULL values"),
    }
}

/// The columns of `scored` and the types the plan reads them as, in the order their rules
/// are reported.
const SCORED_COLUMNS: [(&str, DataType); 5] = [
    ("id", DataType::Utf8),
    ("quality", DataType::Float64),
    ("cluster", DataType::Int64),
    ("distance", DataType::Float64),
    ("tokens", DataType::Int64),
];

/// The checks, and the global quality range.
pub(crate) async fn checked(scored: &DataFrame) -> Result<Checked> {
    let c = |name: &str| count(col(name));
    let v = super::query(scored.clone().aggregate(
        vec![],
        vec![
            // An Int64 literal: DataFusion answers count(Int64(1)) from statistics, not
            // count(Int32(1)).
            count(lit(1i64)),
            c("id"),
            c("quality"),
            c("cluster"),
            c("distance"),
            c("tokens"),
            min(col("quality")),
            max(col("quality")),
            min(col("distance")),
            max(col("distance")),
            min(col("tokens")),
            max(col("tokens")),
        ],
    )?)
    .await?;
    let n = v[0];
    if n == 0.0 {
        return Ok(Checked::default());
    }
    let all_counted = v[1..6].iter().all(|c| *c == n);
    let (qmin, qmax, dmin, dmax, tmin) = (v[6], v[7], v[8], v[9], v[10]);
    let finite = qmin.is_finite() && qmax.is_finite() && dmin.is_finite() && dmax.is_finite();
    if all_counted && finite && dmin >= 0.0 && tmin >= 0.0 {
        return Ok(Checked {
            qmin,
            qmax,
            // No sum of `tokens` can pass 2^63 when rows × max does not (with a margin for the
            // f64 figures): then per-cluster sums can be Int64, not Decimal128.
            int64_tokens: n * v[11] < 9.0e18,
        });
    }
    Err(offending_row(
        scored,
        plan_datafusion_err!(
            "{NAME}: 'scored' has NULL, NaN, infinite or negative values in id, quality, cluster, distance or tokens"
        ),
    )
    .await)
}

/// After a failed check or statistics pass: the first rule some row of `scored` breaks, with
/// the id of one such row; `error` itself when no row breaks one (it failed for another
/// reason).
pub(crate) async fn offending_row(scored: &DataFrame, error: DataFusionError) -> DataFusionError {
    for (column, as_type) in SCORED_COLUMNS {
        let (ok, rule) = value_rule(column, cast(col(column), as_type));
        let found = scored
            .clone()
            .filter(!coalesce(vec![ok, lit(false)]))
            .and_then(|df| df.select(vec![cast(col("id"), DataType::Utf8).alias("id")]))
            .and_then(|df| df.limit(0, Some(1)));
        let Ok(df) = found else { continue };
        let Ok(batches) = df.collect().await else {
            continue;
        };
        if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
            if column == "id" {
                return plan_datafusion_err!("{NAME}: column 'id' of 'scored' has {rule}");
            }
            let ids = batch.column(0).as_string::<i32>();
            return plan_datafusion_err!(
                "{NAME}: column '{column}' of 'scored' has {rule}; filter those rows first; id of one: {}",
                ids.value(0)
            );
        }
    }
    error
}
