//! One validation of a centroids table (the `kmeans_fit` schema: `cluster`, `size`, `centroid`,
//! `metric`), shared by `diversity_cluster` and `samplemix_weights`, so both accept and reject
//! exactly the same tables.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_datafusion_err, exec_err};
use datafusion::error::Result;

use super::assign::Centroids;
use super::metric::Metric;
use super::vectors::vectors;
use crate::args::{choice_of, is_string};

/// Read and check centroids: `cluster` integer ids (non-NULL, unique, within Int32), `centroid`
/// embeddings (non-NULL, finite, one dimension), and `metric` (optional column; when present
/// non-NULL and the same on every row; 'cosine' when absent). `function` and `name` (the table
/// or path) go into every error.
pub fn read_centroids(function: &str, name: &str, batches: &[RecordBatch]) -> Result<Centroids> {
    let mut values = Vec::new();
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    let mut dim: Option<usize> = None;
    let mut metric: Option<Metric> = None;
    let has_metric = batches
        .first()
        .is_some_and(|b| b.schema().index_of("metric").is_ok());
    for batch in batches {
        let schema = batch.schema();
        let column = |c: &str| {
            schema.index_of(c).map(|i| batch.column(i)).map_err(|_| {
                exec_datafusion_err!(
                    "{function}: argument 'centroids': '{name}' has no '{c}' column (expected the kmeans_fit schema: cluster, size, centroid, metric)"
                )
            })
        };
        let cluster = column("cluster")?;
        if !cluster.data_type().is_integer() {
            return exec_err!(
                "{function}: argument 'centroids': column 'cluster' of '{name}' must be an integer, got {}",
                cluster.data_type()
            );
        }
        let cluster = cast(cluster, &DataType::Int64)?;
        let cluster = cluster.as_primitive::<Int64Type>();
        let rows = vectors(column("centroid")?, function, "centroids")?;
        let metrics = if has_metric {
            let m = column("metric")?;
            if !(is_string(m.data_type()) || m.data_type().is_null()) {
                return exec_err!(
                    "{function}: argument 'centroids': column 'metric' of '{name}' must be a string, got {}",
                    m.data_type()
                );
            }
            Some(cast(m, &DataType::Utf8)?)
        } else {
            None
        };
        for i in 0..batch.num_rows() {
            if cluster.is_null(i) {
                return exec_err!(
                    "{function}: argument 'centroids': '{name}' has a NULL cluster id"
                );
            }
            let id = cluster.value(i);
            let Ok(id32) = i32::try_from(id) else {
                return exec_err!(
                    "{function}: argument 'centroids': cluster id {id} of '{name}' is outside the Int32 range"
                );
            };
            if !seen.insert(id32) {
                return exec_err!(
                    "{function}: argument 'centroids': '{name}' has cluster id {id} more than once; cluster ids must be unique"
                );
            }
            let Some(row) = rows.row(i) else {
                return exec_err!(
                    "{function}: argument 'centroids': '{name}' has a NULL centroid (cluster {id})"
                );
            };
            if row.iter().any(|v| !v.is_finite()) {
                return exec_err!(
                    "{function}: argument 'centroids': the centroid of cluster {id} in '{name}' has NaN or infinite values"
                );
            }
            match dim {
                None if row.is_empty() => {
                    return exec_err!("{function}: argument 'centroids': '{name}' has empty centroids")
                }
                None => dim = Some(row.len()),
                Some(d) if d != row.len() => {
                    return exec_err!(
                        "{function}: argument 'centroids': '{name}' mixes dimensions {d} and {} (cluster {id})",
                        row.len()
                    )
                }
                _ => {}
            }
            let m = match &metrics {
                None => Metric::default(),
                Some(m) if m.is_null(i) => {
                    return exec_err!(
                        "{function}: argument 'centroids': '{name}' has a NULL metric (cluster {id}); expected 'cosine' or 'l2'"
                    )
                }
                Some(m) => choice_of(m.as_string::<i32>().value(i), function, "centroids")?,
            };
            if let Some(first) = metric.filter(|x| *x != m) {
                return exec_err!(
                    "{function}: argument 'centroids': '{name}' mixes metrics ({first} and {m}); all centroids must share one"
                );
            }
            metric = Some(m);
            values.extend_from_slice(row);
            ids.push(id32);
        }
    }
    let (Some(dim), Some(metric)) = (dim, metric) else {
        return exec_err!("{function}: argument 'centroids': '{name}' has no rows");
    };
    Centroids::new(values, dim, metric, ids)
        .map_err(|e| exec_datafusion_err!("{function}: argument 'centroids': '{name}': {e}"))
}
