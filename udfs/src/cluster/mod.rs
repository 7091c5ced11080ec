//! Diversity d(x) (docs/METHOD.md, "Diversity"): k-means fit, fast nearest-centroid
//! assignment, and the SQL functions `kmeans_fit` and `diversity_cluster`.

pub mod assign;
pub mod centroids;
pub mod kmeans;
pub mod metric;
pub mod sample;
pub mod simd;
pub mod udf;
pub mod udtf;
pub mod vectors;
