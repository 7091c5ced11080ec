//! `samplemix_weights(scored, centroids, alpha, tau, budget_tokens [, seed [, mode [,
//! separation [, options]]]])`: docs/METHOD.md "Weights and counts" as a view over ordinary
//! DataFusion operators (a `ViewTable` over a `LogicalPlan`), so it streams, runs in parallel,
//! respects the memory pool and serialises like any plan.
//!
//! [`build`] runs while the query is planned, on one runtime per call ([`Planning`]), and
//! reads `scored` a few times before the plan it returns reads it once more:
//! 0. the columns of both tables, and the centroids, validated ([`inputs`]);
//! 1. the checks and the global quality range: one aggregate that DataFusion answers from
//!    Parquet statistics when the files have them ([`checks`]);
//! 2. the statistics pass, per cluster ([`clusters`]); the centroids' separation is computed
//!    here from the k centroids; with (1 − α)/τ > 700 one more pass computes S(j) per cluster
//!    ([`softmax`]);
//! 3. κ, or with `max_copies` the few aggregates of water-filling ([`budget`]);
//! 4. with `rounding=systematic` over more than a million rows, one aggregate places the
//!    buckets of the comb ([`buckets`]);
//! 5. the output plan: the only pass the returned plan makes, each row given its cluster's
//!    figures by one lookup in a constant table ([`output`]).
//!
//! Every e^x is `samplemix_exp`, the same bits on every CPU; every float sum is exact
//! (`samplemix_exact_sum`), so outputs are bit-identical for any partitioning, thread count or
//! input order.

mod buckets;
mod budget;
mod checks;
mod clusters;
mod columns;
mod inputs;
mod output;
pub(crate) mod params;
mod softmax;

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;

use crate::planning::Planning;
use budget::{count_scale, water_fill};
use clusters::{per_cluster_sums, statistics, ClusterTable};
use inputs::Inputs;
use output::{output, with_expected, with_weights, Expected};
use params::{parse, Params};
use softmax::Softmax;

const NAME: &str = "samplemix_weights";

/// `samplemix_weights` table function.
#[derive(Debug, Default)]
pub struct SamplemixWeights;

impl TableFunctionImpl for SamplemixWeights {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let params = parse(args.exprs())?;
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{NAME}: needs a DataFusion SessionState");
        };
        let plan = Planning::new(NAME, args.session()).run(build(state.clone(), params))?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// The plan of one call (see the module documentation).
async fn build(state: SessionState, p: Params) -> Result<LogicalPlan> {
    let ctx = SessionContext::new_with_state(state);
    let inputs = Inputs::open(&ctx, &p).await?;
    let checked = checks::checked(&inputs.scored).await?;
    let softmax = Softmax::new(checked.qmin, checked.qmax, &p);
    let mut stats = statistics(&inputs, &softmax, checked.int64_tokens, &p).await?;
    if softmax.per_cluster {
        per_cluster_sums(&inputs, &mut stats, &softmax, &p).await?;
    }
    let table = ClusterTable::new(&stats, &softmax, &p)?;
    let weighted = |kappa: f64| -> Result<DataFrame> {
        with_weights(table.attach(&inputs, kappa)?, &softmax, &p)
    };
    let (rows, expected) = match p.options.max_copies {
        None => {
            let kappa = count_scale(&table, &p)?;
            (weighted(kappa)?, Expected::Uncapped)
        }
        Some(cap) => {
            let scale = water_fill(&weighted(1.0)?, &p, cap as f64).await?;
            (weighted(1.0)?, Expected::Capped { scale, cap })
        }
    };
    let (with_c, capped) = with_expected(rows, expected, &softmax)?;
    let buckets = match p.options.rounding {
        params::Rounding::Systematic => buckets::layout(&with_c, table.rows, &p).await?,
        _ => None,
    };
    Ok(output(with_c, capped, buckets.as_ref(), &p)?.into_unoptimized_plan())
}

/// Run a one-row aggregate while planning and return its values as f64 (NULL → 0).
async fn query(df: DataFrame) -> Result<Vec<f64>> {
    let batches = df.collect().await?;
    let mut out = Vec::new();
    if let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) {
        for column in batch.columns() {
            let v = datafusion::arrow::compute::cast(column, &DataType::Float64)?;
            let v = v.as_primitive::<Float64Type>();
            out.push(if v.is_null(0) { 0.0 } else { v.value(0) });
        }
    }
    if out.is_empty() {
        return Err(crate::error::internal(
            NAME,
            "a planning aggregate returned no row",
        ));
    }
    Ok(out)
}
