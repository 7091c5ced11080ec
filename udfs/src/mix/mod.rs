//! Weights and counts (docs/METHOD.md, "Weights and counts"): `samplemix_weights` and its
//! helpers. The pure math is one file per piece (`counts`, `separation`, `exact_sum`,
//! `systematic`, `exp`, `lookup`); the SQL functions are `udf` (scalar), `udaf`
//! (`samplemix_exact_sum`), `udwf` (`samplemix_systematic_round`), `figures` (internal to the
//! weights plan) and `plan` (the `samplemix_weights` table function).

pub mod counts;
pub mod exact_sum;
pub mod exp;
pub mod figures;
pub mod lookup;
pub mod plan;
pub mod separation;
pub mod systematic;
pub mod udaf;
pub mod udf;
pub mod udwf;
