//! Stage 3: the statistics pass over the rows, one row per cluster (rows, tokens, Σ distance
//! → compactness, top quality and S(j)); with the separation, the diversity (separation /
//! compactness, with the small-cluster guard) and its normalisation over the clusters. The
//! rest (w_max, a(j), Z) is arithmetic on those k rows, and [`ClusterTable::attach`] gives
//! each scored row its cluster's figures.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::plan_datafusion_err;
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::functions_aggregate::median::median_udaf;
use datafusion::functions_aggregate::min_max::{max_udaf, min_udaf};
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{cast, col, lit, when, AggregateUDF, Expr};

use super::budget::mass;
use super::checks::offending_row;
use super::columns::*;
use super::inputs::Inputs;
use super::params::Params;
use super::softmax::Softmax;
use super::NAME;
use crate::mix::exact_sum::ExactSum;
use crate::mix::exp::exp as portable_exp;
use crate::mix::figures;
use crate::mix::separation::separation;
use crate::mix::udaf::exact_sum_udaf;
use crate::mix::udf::assert_udf;

/// One row of the statistics pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClusterStats {
    pub id: i64,
    pub diversity: f64,
    pub diversity_norm: f64,
    pub top_quality: f64,
    pub rows: i64,
    pub tokens: i128,
    /// S(j) when it came with the statistics pass (0 otherwise).
    pub row_factor_sum: f64,
}

/// What every row needs from its cluster, and the global figures.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClusterTable {
    pub ids: Vec<i64>,
    /// Per cluster: [`FIGURE_NAMES`] but the last (κ·a(j), added by [`ClusterTable::attach`]).
    pub figures: Vec<[f64; 5]>,
    /// N and T_src: rows and tokens of `scored`.
    pub rows: i64,
    pub tokens: f64,
    /// Z = Σ_j a(j)·S(j), summed exactly.
    pub z: f64,
}

fn over_all(udaf: Arc<AggregateUDF>, arg: Expr) -> Expr {
    Expr::from(WindowFunction::new(udaf, vec![arg]))
}

fn f64c(e: Expr) -> Expr {
    cast(e, DataType::Float64)
}

/// The statistics pass as a query: one row per cluster, [`K_CLUSTER`] to
/// [`ROW_FACTOR_SUM`] (the last only with a global reference).
fn per_cluster(
    inputs: &Inputs,
    softmax: &Softmax,
    int64_tokens: bool,
    p: &Params,
) -> Result<DataFrame> {
    let mut aggregates = vec![
        count(lit(1)).alias(ROWS),
        // An Int64 sum wraps silently past 2^63: Decimal128(38, 0) unless the checks showed
        // no sum can get there (the Decimal sum costs a cast and a check per row).
        if int64_tokens {
            sum(col(TOKENS))
        } else {
            sum(cast(col(TOKENS), DataType::Decimal128(38, 0)))
        }
        .alias(TOKEN_SUM),
        exact_sum_udaf()
            .call(vec![col(DISTANCE)])
            .alias(DISTANCE_SUM),
        max(col(QUALITY)).alias(TOP_QUALITY),
    ];
    if !softmax.per_cluster {
        aggregates.push(
            exact_sum_udaf()
                .call(vec![softmax.row_factor(softmax.reference()) * mass(p.mode)])
                .alias(ROW_FACTOR_SUM),
        );
    }
    inputs
        .rows()?
        .aggregate(vec![col(CLUSTER).alias(K_CLUSTER)], aggregates)
}

/// Separation (from the k centroids, as a figure looked up by cluster), compactness and
/// diversity of each cluster.
fn with_diversity(clusters: DataFrame, inputs: &Inputs, p: &Params) -> Result<DataFrame> {
    let ids = inputs.centroids.ids();
    let separations = separation(&inputs.centroids, p.separation)
        .map_err(|e| plan_datafusion_err!("{NAME}: separation: {e}"))?;
    let ids: Vec<i64> = ids.iter().map(|id| i64::from(*id)).collect();
    let rows: Vec<Vec<f64>> = separations.iter().map(|s| vec![*s]).collect();
    let separation = get_field(
        figures::call(col(K_CLUSTER), &[SEPARATION], &ids, &rows),
        SEPARATION,
    );
    let absent = format!(
        "{NAME}: a cluster of 'scored' is absent from 'centroids' ('{}'): cluster ",
        p.centroids
    );
    let clusters = clusters
        .with_column(SEPARATION, separation)?
        .with_column(
            K_CLUSTER,
            assert_udf().call(vec![
                col(K_CLUSTER),
                col(SEPARATION).is_not_null(),
                lit(absent),
                col(K_CLUSTER),
            ]),
        )?
        .with_column(COMPACTNESS, col(DISTANCE_SUM) / f64c(col(ROWS)))?
        .window(vec![over_all(
            min_udaf(),
            when(col(COMPACTNESS).gt(lit(0.0)), col(COMPACTNESS)).end()?,
        )
        .alias(MIN_COMPACTNESS)])?;
    // A zero compactness takes the smallest positive one (1 when none is positive).
    let compactness = when(col(COMPACTNESS).gt(lit(0.0)), col(COMPACTNESS))
        .otherwise(coalesce(vec![col(MIN_COMPACTNESS), lit(1.0)]))?;
    let clusters = clusters.with_column(DIVERSITY, col(SEPARATION) / compactness)?;
    small_cluster_guard(clusters, p.options.min_cluster_size)
}

/// A cluster with fewer than `m` rows takes the median diversity of the clusters that have
/// enough (of all clusters when none has): a handful of members gives a noisy compactness.
fn small_cluster_guard(clusters: DataFrame, m: i64) -> Result<DataFrame> {
    if m <= 1 {
        return Ok(clusters);
    }
    clusters
        .window(vec![
            over_all(
                median_udaf(),
                when(col(ROWS).gt_eq(lit(m)), col(DIVERSITY)).end()?,
            )
            .alias(MEDIAN_BIG),
            over_all(median_udaf(), col(DIVERSITY)).alias(MEDIAN_ALL),
        ])?
        .with_column(
            DIVERSITY,
            when(
                col(ROWS).lt(lit(m)),
                coalesce(vec![col(MEDIAN_BIG), col(MEDIAN_ALL)]),
            )
            .otherwise(col(DIVERSITY))?,
        )
}

/// The k rows of the statistics pass, with the normalised diversity.
pub(crate) async fn statistics(
    inputs: &Inputs,
    softmax: &Softmax,
    int64_tokens: bool,
    p: &Params,
) -> Result<Vec<ClusterStats>> {
    let clusters = with_diversity(per_cluster(inputs, softmax, int64_tokens, p)?, inputs, p)?;
    let norm = when(
        col(DIVERSITY_MAX).gt(col(DIVERSITY_MIN)),
        (col(DIVERSITY) - col(DIVERSITY_MIN)) / (col(DIVERSITY_MAX) - col(DIVERSITY_MIN)),
    )
    .otherwise(lit(0.0))?;
    let mut keep = vec![
        col(K_CLUSTER),
        col(DIVERSITY),
        norm.alias(DIVERSITY_NORM),
        f64c(col(TOP_QUALITY)).alias(TOP_QUALITY),
        cast(col(ROWS), DataType::Int64).alias(ROWS),
        cast(col(TOKEN_SUM), DataType::Decimal128(38, 0)).alias(TOKEN_SUM),
    ];
    if !softmax.per_cluster {
        keep.push(col(ROW_FACTOR_SUM));
    }
    let table = clusters
        .window(vec![
            over_all(min_udaf(), col(DIVERSITY)).alias(DIVERSITY_MIN),
            over_all(max_udaf(), col(DIVERSITY)).alias(DIVERSITY_MAX),
        ])?
        .select(keep)?;
    match table.collect().await {
        Ok(batches) => read_stats(&batches),
        Err(e) => Err(offending_row(&inputs.scored, e).await),
    }
}

/// The collected statistics, read by column name.
fn read_stats(batches: &[RecordBatch]) -> Result<Vec<ClusterStats>> {
    let mut out = Vec::new();
    for b in batches {
        let column = |name: &str| {
            b.column_by_name(name).ok_or_else(|| {
                crate::error::internal(NAME, format!("no column {name} in the statistics"))
            })
        };
        let f = |name: &str| column(name).map(|c| c.as_primitive::<Float64Type>().clone());
        let (id, rows) = (column(K_CLUSTER)?, column(ROWS)?);
        let (id, rows) = (
            id.as_primitive::<Int64Type>(),
            rows.as_primitive::<Int64Type>(),
        );
        let tokens = column(TOKEN_SUM)?.as_primitive::<Decimal128Type>().clone();
        let (div, dn, top) = (f(DIVERSITY)?, f(DIVERSITY_NORM)?, f(TOP_QUALITY)?);
        let s = b
            .column_by_name(ROW_FACTOR_SUM)
            .map(|c| c.as_primitive::<Float64Type>().clone());
        for i in 0..b.num_rows() {
            out.push(ClusterStats {
                id: id.value(i),
                diversity: div.value(i),
                diversity_norm: dn.value(i),
                top_quality: top.value(i),
                rows: rows.value(i),
                tokens: tokens.value(i),
                row_factor_sum: s.as_ref().map_or(0.0, |s| s.value(i)),
            });
        }
    }
    Ok(out)
}

/// S(j) with each cluster's own top quality as the reference: one more aggregate pass (only
/// when (1 − α)/τ is above the global-reference limit).
pub(crate) async fn per_cluster_sums(
    inputs: &Inputs,
    stats: &mut [ClusterStats],
    softmax: &Softmax,
    p: &Params,
) -> Result<()> {
    if stats.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = stats.iter().map(|s| s.id).collect();
    let tops: Vec<Vec<f64>> = stats.iter().map(|s| vec![s.top_quality]).collect();
    let reference = get_field(
        figures::call(col(CLUSTER), &[REFERENCE], &ids, &tops),
        REFERENCE,
    );
    let df = inputs.rows()?.aggregate(
        vec![col(CLUSTER)],
        vec![exact_sum_udaf()
            .call(vec![softmax.row_factor(reference) * mass(p.mode)])
            .alias(ROW_FACTOR_SUM)],
    )?;
    for b in df.collect().await? {
        let (id, s) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_primitive::<Float64Type>(),
        );
        for i in 0..b.num_rows() {
            if let Some(st) = stats.iter_mut().find(|st| st.id == id.value(i)) {
                st.row_factor_sum = s.value(i);
            }
        }
    }
    Ok(())
}

impl ClusterTable {
    /// w_max, each cluster's a(j) and Z from the statistics.
    pub(crate) fn new(stats: &[ClusterStats], softmax: &Softmax, p: &Params) -> Result<Self> {
        let w_max = stats
            .iter()
            .map(|s| softmax.top_weight(p, s.diversity_norm, s.top_quality))
            .fold(f64::NEG_INFINITY, f64::max);
        let mut z = ExactSum::default();
        let mut figures = Vec::with_capacity(stats.len());
        for s in stats {
            let log_a = softmax.log_factor(p, s.diversity_norm, s.top_quality, w_max);
            let a = portable_exp(log_a);
            z.add(a * s.row_factor_sum)
                .map_err(|e| plan_datafusion_err!("{NAME}: softmax denominator: {e}"))?;
            let reference = softmax.reference_f64(s.top_quality);
            figures.push([s.diversity, s.diversity_norm, a, log_a, reference]);
        }
        Ok(Self {
            ids: stats.iter().map(|s| s.id).collect(),
            figures,
            rows: stats.iter().map(|s| s.rows).sum(),
            tokens: stats.iter().map(|s| s.tokens).sum::<i128>() as f64,
            z: z.value(),
        })
    }

    /// The scored rows with their cluster's figures ([`FIGURE_NAMES`], κ·a(j) for the last):
    /// one lookup per row of a constant table (no join with the k cluster rows: a join copies
    /// every column of the big side into new batches).
    pub(crate) fn attach(&self, inputs: &Inputs, kappa: f64) -> Result<DataFrame> {
        let rows: Vec<Vec<f64>> = self
            .figures
            .iter()
            .map(|f| {
                let mut row = f.to_vec();
                row.push(kappa * f[2]);
                row
            })
            .collect();
        let mut df = inputs.rows()?.with_column(
            FIGURES,
            figures::call(col(CLUSTER), &FIGURE_NAMES, &self.ids, &rows),
        )?;
        for name in FIGURE_NAMES {
            df = df.with_column(name, figures::figure(col(FIGURES), name))?;
        }
        Ok(df)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::plan::params::parse;

    #[test]
    fn the_cluster_table_follows_the_softmax_factorisation() {
        let p = parse(&[col("s"), col("c"), lit(0.5), lit(0.2), lit(100)]).unwrap();
        let softmax = Softmax::new(0.0, 10.0, &p);
        let stat = |id, dn, top, s| ClusterStats {
            id,
            diversity: dn,
            diversity_norm: dn,
            top_quality: top,
            rows: 2,
            tokens: 100,
            row_factor_sum: s,
        };
        let t = ClusterTable::new(
            &[stat(0, 1.0, 8.0, 1.5), stat(4, 0.0, 10.0, 2.0)],
            &softmax,
            &p,
        )
        .unwrap();
        // w_max = max(0.5 + 0.4, 0 + 0.5) = 0.9; a(j) = exp((0.5·dn + 0.5 − 0.9)/0.2).
        let a0 = portable_exp((0.5 + 0.5 - 0.9) / 0.2);
        let a4 = portable_exp((0.0 + 0.5 - 0.9) / 0.2);
        assert_eq!(t.figures[0][2].to_bits(), a0.to_bits());
        assert_eq!(t.figures[1][2].to_bits(), a4.to_bits());
        assert_eq!(portable_exp(t.figures[0][3]).to_bits(), a0.to_bits());
        assert!((t.z - (a0 * 1.5 + a4 * 2.0)).abs() < 1e-15);
        assert_eq!((t.rows, t.tokens, t.ids.clone()), (4, 200.0, vec![0, 4]));
    }
}
