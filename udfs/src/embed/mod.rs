//! Embeddings for diversity (docs/METHOD.md, "Diversity").

pub mod hashed;
pub mod udf;
