//! Diversity d(x) (SAMPLEMIX.md §2): k-means fit, fast nearest-centroid assignment, and the
//! SQL functions `kmeans_fit` and `diversity_cluster`.

pub mod assign;
pub mod kmeans;
pub mod metric;
pub mod udf;
pub mod udtf;
pub mod vectors;

pub use metric::Metric;
