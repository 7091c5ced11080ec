//! SampleMix (arXiv 2503.01506) as Apache DataFusion SQL functions.
//!
//! One call registers everything:
//!
//! ```no_run
//! # async fn demo() -> datafusion::error::Result<()> {
//! let ctx = datafusion::prelude::SessionContext::new();
//! samplemix_udfs::register_all(&ctx)?;
//! ctx.sql("SELECT token_count('hello world')").await?.show().await?;
//! # Ok(()) }
//! ```
//!
//! Each paper step is a pure function in its own module; the SQL function that exposes it is a
//! thin `udf.rs` beside it. Data flows one way: text -> tokens / signals -> score, and so on.

use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::error::Result;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

pub mod cluster;
pub mod embed;
pub mod mix;
pub mod quality;
pub mod tokens;
mod util;

/// The documentation section all samplemix functions appear under in `SHOW FUNCTIONS` docs.
pub(crate) fn doc_section() -> datafusion::logical_expr::DocSection {
    datafusion::logical_expr::DocSection {
        include: true,
        label: "SampleMix Functions",
        description: Some("Per-sample pre-training data mixing (SampleMix, arXiv 2503.01506)."),
    }
}

/// Every scalar function samplemix adds, ready for `SessionContext::register_udf`.
pub fn all_udfs() -> Vec<ScalarUDF> {
    vec![
        tokens::udf::token_count_udf(),
        quality::udf::quality_score_udf(),
        quality::udf::quality_signals_udf(),
        embed::udf::embed_udf(),
        mix::udf::uniform_udf(),
        mix::udf::distance_udf(),
        mix::udf::assert_udf(),
    ]
}

/// Every table function samplemix adds, as (SQL name, implementation).
pub fn all_udtfs() -> Vec<(&'static str, Arc<dyn TableFunctionImpl>)> {
    vec![
        ("kmeans_fit", Arc::new(cluster::udtf::KmeansFit)),
        ("samplemix_weights", Arc::new(mix::udtf::SamplemixWeights)),
    ]
}

/// Every aggregate function samplemix adds.
pub fn all_udafs() -> Vec<datafusion::logical_expr::AggregateUDF> {
    vec![mix::udaf::exact_sum_udaf()]
}

/// Scalar functions that read tables through a session (`diversity_cluster`): they need the
/// context they are registered in, so they are not part of [`all_udfs`].
pub fn session_udfs(ctx: &SessionContext) -> Vec<ScalarUDF> {
    let weak = ctx.state_weak_ref();
    let session: cluster::udf::SessionSource =
        Arc::new(move || weak.upgrade().map(|s| s.read().clone()));
    vec![cluster::udf::diversity_cluster_udf(session)]
}

/// Register all samplemix scalar and table functions in `ctx`.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    for udf in all_udfs().into_iter().chain(session_udfs(ctx)) {
        ctx.register_udf(udf);
    }
    for udaf in all_udafs() {
        ctx.register_udaf(udaf);
    }
    for (name, udtf) in all_udtfs() {
        ctx.register_udtf(name, udtf);
    }
    Ok(())
}
