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
//! The public surface is small on purpose:
//! - [`register_all`], [`all_udfs`], [`all_udafs`], [`all_udwfs`], [`all_udtfs`]: what a DataFusion user
//!   registers;
//! - [`functions`]: the function implementations themselves, for users who pick some or build
//!   them with options (a progress callback for `kmeans_fit`, a centroid source for
//!   `diversity_cluster`);
//! - [`kernels`]: the pure algorithms (hashes, tokens, quality, embedding, k-means, weights)
//!   for benchmarks and Rust callers that do not need SQL.
//!
//! Near-duplicate removal (`minhash`, `near_duplicates`) runs before the paper's steps.
//!
//! Inside, each paper step is a pure function in its own module and the SQL function that
//! exposes it is a thin `udf.rs` beside it (see `docs/METHOD.md` for the method and which
//! function implements which formula). Data flows one way: text -> tokens / signals -> score,
//! text -> embedding -> cluster -> diversity, then scores -> weights -> counts.
#![warn(missing_docs)]

use std::sync::Arc;

use datafusion::catalog::TableFunction;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

mod args;
mod cluster;
mod dedup;
mod embed;
mod error;
mod fasttext;
mod hash;
mod help;
mod io;
mod mix;
mod planning;
pub mod plans;
mod quality;
mod source;
mod tokens;
mod words;

pub use dedup::components::remove_local_work;
pub use error::Error;
pub use io::is_location;
pub use planning::StatementDeadline;

/// The SQL functions, for users who register a selection or configure one.
pub mod functions {
    pub use crate::cluster::udf::{diversity_cluster_udf, CentroidSource};
    pub use crate::cluster::udtf::{FitEvent, FitProgress, KmeansFit};
    pub use crate::dedup::udf::{minhash_bands_udf, minhash_similarity_udf, minhash_udf};
    pub use crate::dedup::udtf::NearDuplicates;
    pub use crate::embed::udf::embed_udf;
    pub use crate::fasttext::udf::fasttext_predict_udf;
    pub use crate::help::SamplemixHelp;
    pub use crate::mix::plan::SamplemixWeights;
    pub use crate::mix::udaf::exact_sum_udaf;
    pub use crate::mix::udf::{
        assert_udf, distance_udf, exp_udf, lookup_udf, round_udf, uniform_udf,
    };
    pub use crate::mix::udwf::systematic_round_udwf;
    pub use crate::quality::ordinal::udf::quality_predict_udf;
    pub use crate::quality::ordinal::udtf::QualityModelFit;
    pub use crate::quality::udf::{quality_score_udf, quality_signals_udf};
    pub use crate::source::Source;
    pub use crate::tokens::udf::token_count_udf;
}

/// The pure algorithms behind the SQL functions that benchmarks, tests and Rust callers use
/// without SQL: token counts, quality, the hashed embedding, MinHash, k-means and assignment.
pub mod kernels {
    pub use crate::cluster::assign::{assign, assign_labels, Centroids};
    pub use crate::cluster::kmeans::{
        fit as kmeans_fit, greedy_kmeans_pp, seed_centroids, Fitted, Options as KmeansOptions,
    };
    pub use crate::cluster::metric::Metric;
    pub use crate::dedup::minhash::MinHasher;
    pub use crate::embed::hashed::{embed, embed_into};
    #[cfg(feature = "models")]
    pub use crate::embed::model::{
        distill::{distill, Distilled},
        EmbeddingModel, ModelFiles, Pooling, StaticModel, Transformer,
    };
    pub use crate::fasttext::FastText;
    pub use crate::quality::ordinal::{
        fit as quality_model_fit, Example, FitOptions, OrdinalModel,
    };
    pub use crate::quality::{quality_score, score, signals, Signals};
    pub use crate::tokens::{count_tokens, Encoding};
}

/// The parsers of user-given strings, exposed for the fuzz tests (`udfs/tests/fuzz.rs`); not a
/// stable API.
#[doc(hidden)]
pub mod fuzzing {
    use datafusion::error::Result;

    /// `samplemix_weights`' options string, parsed: `Ok` with the canonical
    /// `key=value` items, or the planning error.
    pub fn weights_options(text: &str) -> Result<String> {
        crate::mix::plan::params::parse_options(text).map(|o| format!("{o:?}"))
    }

    /// The generic `'key=value, ...'` splitter with the given keys.
    pub fn options(text: &str, keys: &[&str]) -> Result<Vec<(String, String)>> {
        crate::args::parse_options("f", text, keys)
    }

    /// A packed per-cluster table of `width` figures: its number of clusters, or why not.
    pub fn figures_table(text: &str, width: usize) -> std::result::Result<usize, String> {
        crate::mix::figures::unpack(text, width).map(|t| t.len())
    }

    /// The packed text of a table (the inverse of [`figures_table`]).
    pub fn pack_figures(ids: &[i64], rows: &[Vec<f64>]) -> String {
        crate::mix::figures::pack(ids, rows)
    }
}

/// The documentation section all samplemix functions appear under in `SHOW FUNCTIONS` docs.
pub(crate) fn doc_section() -> datafusion::logical_expr::DocSection {
    datafusion::logical_expr::DocSection {
        include: true,
        label: "SampleMix Functions",
        description: Some("Per-sample pre-training data mixing (SampleMix, arXiv 2503.01506)."),
    }
}

/// Every scalar function samplemix adds. `diversity_cluster` here reads centroids from
/// Parquet paths or URLs through a default runtime (the form a Ballista process can rebuild);
/// [`register_all`] registers one bound to its session instead, which also reads tables.
pub fn all_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![
        functions::token_count_udf(),
        functions::quality_score_udf(),
        functions::quality_signals_udf(),
        functions::embed_udf(functions::Source::Runtime(Arc::new(RuntimeEnv::default()))),
        functions::minhash_udf(),
        functions::minhash_similarity_udf(),
        functions::minhash_bands_udf(),
        functions::uniform_udf(),
        functions::round_udf(),
        functions::exp_udf(),
        functions::lookup_udf(),
        functions::distance_udf(),
        functions::assert_udf(),
        crate::mix::figures::figures_udf(),
        crate::mix::figures::figure_udf(),
        functions::diversity_cluster_udf(functions::CentroidSource::Runtime(Arc::new(
            RuntimeEnv::default(),
        ))),
        functions::quality_predict_udf(functions::Source::Runtime(Arc::new(RuntimeEnv::default()))),
        functions::fasttext_predict_udf(functions::Source::Runtime(
            Arc::new(RuntimeEnv::default()),
        )),
    ]
}

/// Every aggregate function samplemix adds (`samplemix_exact_sum`).
pub fn all_udafs() -> Vec<Arc<AggregateUDF>> {
    vec![functions::exact_sum_udaf()]
}

/// Every window function samplemix adds (`samplemix_systematic_round`).
pub fn all_udwfs() -> Vec<Arc<WindowUDF>> {
    vec![
        functions::systematic_round_udwf(),
        crate::mix::udwf::systematic_round_part_udwf(),
    ]
}

/// Every table function samplemix adds: `kmeans_fit`, `samplemix_weights`, `near_duplicates`,
/// `quality_model_fit`, `samplemix_help`.
pub fn all_udtfs() -> Vec<Arc<TableFunction>> {
    vec![
        Arc::new(TableFunction::new(
            "kmeans_fit".to_string(),
            Arc::new(functions::KmeansFit::default()),
        )),
        Arc::new(TableFunction::new(
            "samplemix_weights".to_string(),
            Arc::new(functions::SamplemixWeights),
        )),
        Arc::new(TableFunction::new(
            "near_duplicates".to_string(),
            Arc::new(functions::NearDuplicates),
        )),
        Arc::new(TableFunction::new(
            "quality_model_fit".to_string(),
            Arc::new(functions::QualityModelFit),
        )),
        Arc::new(TableFunction::new(
            "samplemix_help".to_string(),
            Arc::new(functions::SamplemixHelp),
        )),
    ]
}

/// Register every samplemix function in `ctx`; `diversity_cluster` is bound to `ctx`, so it
/// reads centroids from tables registered there as well as from paths and URLs.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    for udf in all_udfs() {
        ctx.register_udf(udf.as_ref().clone());
    }
    ctx.register_udf(
        functions::diversity_cluster_udf(functions::CentroidSource::session(ctx))
            .as_ref()
            .clone(),
    );
    for udf in [
        functions::embed_udf(functions::Source::session(ctx)),
        functions::quality_predict_udf(functions::Source::session(ctx)),
        functions::fasttext_predict_udf(functions::Source::session(ctx)),
    ] {
        ctx.register_udf(udf.as_ref().clone());
    }
    for udaf in all_udafs() {
        ctx.register_udaf(udaf.as_ref().clone());
    }
    for udwf in all_udwfs() {
        ctx.register_udwf(udwf.as_ref().clone());
    }
    for udtf in all_udtfs() {
        ctx.register_udtf(udtf.name(), Arc::clone(udtf.function()));
    }
    Ok(())
}
