//! Weights and counts (SAMPLEMIX.md §2 steps 3-4, §3): `samplemix_weights` and its helpers.

pub mod udaf;
pub mod udf;
pub mod udtf;
pub mod weights;
