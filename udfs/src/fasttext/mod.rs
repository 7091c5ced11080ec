//! fastText supervised classifiers (DCLM's and FineWeb's quality filters are ones) applied in
//! SQL: `fasttext_predict(text, model_path, label)`.

pub mod model;
pub mod udf;

pub use model::FastText;
