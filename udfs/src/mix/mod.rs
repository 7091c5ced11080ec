//! Weights and counts (docs/METHOD.md, "Weights and counts"): `samplemix_weights` and its helpers.

pub mod exp;
pub mod lookup;
pub mod udaf;
pub mod udf;
pub mod udtf;
pub mod udwf;
pub mod weights;
