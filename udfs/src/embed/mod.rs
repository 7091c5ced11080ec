//! Embeddings for diversity (docs/METHOD.md, "Diversity").

pub mod hashed;
#[cfg(feature = "models")]
pub mod model;
pub mod udf;
