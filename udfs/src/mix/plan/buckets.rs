//! Systematic rounding over many rows, partition-parallel: the rows are split into buckets by
//! u(id) (their position on [0, 1) under the seed), one comb is laid over the buckets end to
//! end, and each bucket is rounded by its own window (`OVER (PARTITION BY bucket)`), so no
//! window holds more than a bucket and the buckets run on all partitions (and executors).
//!
//! Where each bucket's slices start on the comb is decided while planning, by one aggregate:
//! the bucket's Σ of its rows' fractional parts in fixed-point units (exact integers, so the
//! same for any partitioning). In 'documents' mode this keeps Σ count = round(Σ expected)
//! exactly, as one window does. In 'tokens' mode each bucket balances its own long documents
//! against its shorter ones before the comb, so the realised tokens miss the budget by about
//! one short document per bucket boundary the comb straddles rather than one in all; with one
//! bucket (up to [`ROWS_PER_BUCKET`] rows, the default) nothing changes.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use datafusion::arrow;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::functions::math::expr_fn::floor;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::{cast, col, lit, Expr, LogicalPlanBuilder};

use super::columns::*;
use super::params::Params;
use crate::args::Choice;
use crate::mix::systematic::SYSTEMATIC_UNIT;
use crate::mix::udf::uniform_udf;
use crate::mix::udwf::systematic_round_part_udwf;

/// Rows per bucket when `systematic_buckets` is not given: a bucket's window holds its rows
/// (about 40 bytes each), and up to this many rows the counts are those of one window.
/// Small because DataFusion's bounded window operator appends each incoming batch to the
/// bucket by copying it (quadratic in the bucket's rows): 10M rows took 8.2 s in buckets of
/// 2^20 rows and 3.4 s in buckets of 2^16 (BENCHMARKS.md, issue 36.2). At 2^16 rows and at
/// most [`MAX_BUCKETS`] buckets the plan still holds 4·10^9 rows before buckets grow.
pub(crate) const ROWS_PER_BUCKET: i64 = 1 << 16;
/// The most buckets an option may ask for (the planning aggregate returns one row each).
pub(crate) const MAX_BUCKETS: i64 = 1 << 16;

/// Where the buckets' slices start on the comb, and the comb's total, in units.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    pub count: i64,
    pub before: Vec<i64>,
    pub total: i64,
}

/// The number of buckets for `rows` rows.
pub(crate) fn bucket_count(rows: i64, p: &Params) -> i64 {
    p.options
        .systematic_buckets
        .unwrap_or_else(|| ((rows + ROWS_PER_BUCKET - 1) / ROWS_PER_BUCKET).clamp(1, MAX_BUCKETS))
}

/// A row's bucket: ⌊u(id)·B⌋ (u(id) orders the comb within a bucket too).
fn bucket_of(count: i64, p: &Params) -> Expr {
    let u = uniform_udf().call(vec![col("id"), lit(p.seed)]);
    let b = cast(floor(u * lit(count as f64)), DataType::Int64);
    // (1 − 2^-53)·B can round up to B.
    datafusion::functions::core::expr_fn::coalesce(vec![datafusion::functions::expr_fn::least(
        vec![b, lit(count - 1)],
    )])
}

/// The unbalanced fraction of a row's expected count in units, as
/// [`crate::mix::systematic::fraction_unit`] computes it (the same float operations).
fn unit_of_expected() -> Expr {
    let fraction = col(EXPECTED) - floor(col(EXPECTED));
    cast(
        floor(fraction * lit(SYSTEMATIC_UNIT as f64) + lit(0.5)),
        DataType::Int64,
    )
}

/// The buckets of `with_c` (rows with their expected count), by one aggregate; None with one
/// bucket.
pub(crate) async fn layout(with_c: &DataFrame, rows: i64, p: &Params) -> Result<Option<Buckets>> {
    let count = bucket_count(rows, p);
    if count == 1 {
        return Ok(None);
    }
    let counted = col(EXPECTED)
        .is_not_null()
        .and(col(TOKENS).is_not_null())
        .and(col("id").is_not_null());
    let sums = with_c
        .clone()
        .filter(counted)?
        .aggregate(
            vec![bucket_of(count, p).alias(BUCKET)],
            vec![sum(unit_of_expected()).alias(BUCKET_UNITS)],
        )?
        .collect()
        .await?;
    let mut units: BTreeMap<i64, i64> = BTreeMap::new();
    for batch in &sums {
        let (b, u) = (
            batch.column(0).as_primitive::<Int64Type>(),
            batch.column(1).as_primitive::<Int64Type>(),
        );
        for i in 0..batch.num_rows() {
            if b.is_valid(i) && u.is_valid(i) {
                units.insert(b.value(i), u.value(i));
            }
        }
    }
    let mut before = Vec::with_capacity(count as usize);
    let mut total = 0i64;
    for b in 0..count {
        before.push(total);
        total += units.get(&b).copied().unwrap_or(0);
    }
    Ok(Some(Buckets {
        count,
        before,
        total,
    }))
}

/// The counts of systematic rounding over the buckets: `with_c` joined to the buckets'
/// starts, one window per bucket. Returns the rows with [`SYSTEMATIC_COUNT`].
pub(crate) fn rounded(with_c: DataFrame, buckets: &Buckets, p: &Params) -> Result<DataFrame> {
    let starts: Vec<Vec<Expr>> = buckets
        .before
        .iter()
        .enumerate()
        .map(|(b, start)| vec![lit(b as i64), lit(*start)])
        .collect();
    let starts = LogicalPlanBuilder::values(starts)?
        .project(vec![
            col("column1").alias(BUCKET_KEY),
            col("column2").alias(BUCKET_BEFORE),
        ])?
        .build()?;
    let (state, plan) = with_c
        .with_column(BUCKET, bucket_of(buckets.count, p))?
        .into_parts();
    let joined = LogicalPlanBuilder::from(plan)
        .join(
            starts,
            JoinType::Inner,
            (vec![BUCKET], vec![BUCKET_KEY]),
            None,
        )?
        .build()?;
    let window = Expr::from(WindowFunction {
        fun: systematic_round_part_udwf().into(),
        params: WindowFunctionParams {
            args: vec![
                col(EXPECTED),
                col(TOKENS),
                col("id"),
                lit(p.seed),
                lit(p.mode.name()),
                col(BUCKET_BEFORE),
                lit(buckets.total),
            ],
            partition_by: vec![col(BUCKET)],
            order_by: vec![],
            window_frame: datafusion::logical_expr::WindowFrame::new(None),
            filter: None,
            null_treatment: None,
            distinct: false,
        },
    });
    DataFrame::new(state, joined).window(vec![window.alias(SYSTEMATIC_COUNT)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::plan::params::{parse, parse_options};

    #[test]
    fn one_bucket_per_65536_rows_unless_asked() {
        let mut p = parse(&[col("s"), col("c"), lit(0.8), lit(0.2), lit(100)]).unwrap();
        assert_eq!(bucket_count(0, &p), 1);
        assert_eq!(bucket_count(ROWS_PER_BUCKET, &p), 1);
        assert_eq!(bucket_count(ROWS_PER_BUCKET + 1, &p), 2);
        assert_eq!(bucket_count(100_000_000, &p), 1526);
        assert_eq!(bucket_count(i64::MAX / 2, &p), MAX_BUCKETS);
        p.options = parse_options("systematic_buckets=7").unwrap();
        assert_eq!(bucket_count(10, &p), 7);
    }
}
