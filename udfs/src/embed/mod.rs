//! Embeddings for diversity (SAMPLEMIX.md §2 step 1).

pub mod hashed;
pub mod udf;
