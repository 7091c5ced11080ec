//! Near-duplicate detection: MinHash signatures, LSH banding and connected components
//! (docs/METHOD.md "Near-duplicates").

pub mod components;
pub mod minhash;
pub mod udf;
pub mod udtf;
