//! Quality q(x) (docs/METHOD.md, "Quality"): heuristic signals (Gopher, C4, FineWeb) and a calibrated
//! 0-10 score built from them, needing no model.

mod charsets;
mod lines;
mod ngrams;
pub mod ordinal;
pub mod score;
pub mod signals;
mod thresholds;
mod tokenize;
pub mod udf;

pub use score::score;
pub use signals::{compute as signals, Signals};

/// Quality score in [0, 10] of a text (signals, then [`score::score`]); the same number as
/// `score(&signals(text))`, without detecting the language where it cannot change the score.
pub fn quality_score(text: &str) -> f64 {
    score(&signals::compute_for_score(text))
}
