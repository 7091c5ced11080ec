//! Learned quality (docs/METHOD.md, "Learned quality"): the paper's ordinal evaluator as a
//! linear model on hashed word n-grams and text-shape figures, fitted in SQL from labelled
//! documents (`quality_model_fit`) and applied per document (`quality_predict`).

pub mod features;
pub mod fit;
pub mod model;
pub mod udf;
pub mod udtf;

pub use fit::{fit, Example, FitOptions};
pub use model::OrdinalModel;
