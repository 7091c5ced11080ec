//! `samplemix_help()`: one row per samplemix SQL function (name, kind, syntax, description).
//!
//! DataFusion 55's `SHOW FUNCTIONS` lists scalar, aggregate and window functions with their
//! documentation, but not table functions (they carry none); this table lists all of ours in
//! one place, the other rows taken from the same `Documentation` that `SHOW FUNCTIONS` shows,
//! so the two cannot drift.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::logical_expr::Documentation;
use datafusion::prelude::lit;

use crate::plans::named_values;

/// Table functions, which have no `Documentation` in DataFusion 55: (name, syntax, description).
const TABLE_FUNCTIONS: &[(&str, &str, &str)] = &[
    (
        "kmeans_fit",
        "kmeans_fit(table, column, k [, sample_rows [, seed [, max_iter [, metric]]]])",
        "Fits k centroids (k-means++ seeding, Lloyd iterations) to an embedding column on a seeded, order-independent sample of at most sample_rows rows (default 100000; seed 0; max_iter 100; metric 'cosine' or 'l2'). One row per cluster: cluster Int32, size Int64, centroid FixedSizeList<Float32>, metric Utf8. table is a registered table, a Parquet path or a URL.",
    ),
    (
        "samplemix_weights",
        "samplemix_weights(scored, centroids, alpha, tau, budget_tokens [, seed [, mode [, separation [, options]]]])",
        "SampleMix weights and counts: per row of scored (id, quality, cluster, distance, tokens) returns id, quality_norm, diversity, diversity_norm, weight = alpha*diversity_norm + (1-alpha)*quality_norm, expected_count (softmax over weight/tau scaled to the budget: mode 'tokens' (default: sum of expected_count*tokens = budget_tokens) or 'documents' (the paper's document count N*budget/T_src)) and count (stochastic rounding seeded by seed). separation is 'mean' (default) or 'min'. options: 'rounding=independent|systematic (systematic: dependent rounding that pins the total, see samplemix_systematic_round; over 2^16 rows in parallel buckets of bounded memory), systematic_buckets=B, max_copies=M, min_cluster_size=S' (a capped column is added with max_copies). Outputs are bit-identical for any partitioning.",
    ),
    (
        "near_duplicates",
        "near_duplicates(table, id_column, text_column [, threshold [, num_hashes [, bands [, options]]]])",
        "Near-duplicate groups by MinHash LSH: one row per row of table with id (the input id's type), group_id (the smallest id of its group) and keep (true for exactly one row per group, id = group_id). Groups are connected components of candidate pairs (any of bands LSH bands of minhash(text, num_hashes) agree) whose estimated Jaccard similarity of 5-word shingles is at least threshold (default 0.8; num_hashes 112; bands chosen from the threshold, 14 for 0.8). Exact duplicates always share a group; NULL texts and NULL ids are never grouped. table is a registered table, a Parquet path or a URL. options: 'work=<folder or URL>', where the steps are written (the engine computes the groups; default: a temporary folder; required on a cluster).",
    ),
    (
        "quality_model_fit",
        "quality_model_fit(table, text_column, label_column [, options])",
        "Fits the ordinal quality model (K−1 logistic heads 'label > k' on one linear score of hashed word 1-2-grams (sublinear tf-idf) and text-shape figures; the paper's evaluator, as a linear model) to labelled texts. Labels are integers 0..K−1 (K = max label + 1, at least 2 levels; NULL, negative or fractional labels are errors); rows with NULL text are skipped. options: 'epochs=5, lr=0.2, l2=1e-6, seed=0, buckets=1048576, signals=false (true adds every quality_signals field as a feature), sample_rows=1000000' (the sample is the sample_rows texts with the smallest seeded hash, so the model is bit-identical for any partitioning, file order or rerun; its memory is reserved from the session's pool). Returns the model as one row (model, levels, buckets, signals, rows, options, thresholds, dense_mean, dense_scale, dense_weights, idf, weights): persist it with CREATE TABLE m AS ... or COPY (...) TO 'm.parquet', apply it with quality_predict(text, 'm').",
    ),
    (
        "samplemix_help",
        "samplemix_help()",
        "This list: every samplemix SQL function with its kind, syntax and description.",
    ),
];

/// (name, kind, syntax, description).
type Row = (String, &'static str, String, String);

/// The `samplemix_help()` table function.
#[derive(Debug, Default, Clone, Copy)]
pub struct SamplemixHelp;

impl TableFunctionImpl for SamplemixHelp {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!(
                "samplemix_help: takes no arguments, got {}",
                args.exprs().len()
            );
        }
        let documented = |name: &str, kind: &'static str, doc: Option<&Documentation>| {
            doc.map(|d| {
                (
                    name.to_string(),
                    kind,
                    d.syntax_example.clone(),
                    d.description.clone(),
                )
            })
        };
        let mut rows: Vec<Row> = Vec::new();
        rows.extend(
            crate::all_udfs()
                .iter()
                // Internal to samplemix_weights' plans (registered so that they travel).
                .filter(|f| {
                    ![crate::mix::figures::NAME, crate::mix::figures::FIGURE_NAME]
                        .contains(&f.name())
                })
                .filter_map(|f| documented(f.name(), "scalar", f.documentation())),
        );
        rows.extend(
            crate::all_udafs()
                .iter()
                .filter_map(|f| documented(f.name(), "aggregate", f.documentation())),
        );
        rows.extend(
            crate::all_udwfs()
                .iter()
                .filter(|f| f.name() != crate::mix::udwf::PART_NAME)
                .filter_map(|f| documented(f.name(), "window", f.documentation())),
        );
        for (name, syntax, description) in TABLE_FUNCTIONS {
            rows.push((
                (*name).to_string(),
                "table",
                (*syntax).to_string(),
                (*description).to_string(),
            ));
        }
        rows.sort();
        // A view over VALUES rather than an in-memory table: it serialises like any query, so
        // the help also works from a Ballista client.
        let values = rows
            .iter()
            .map(|(name, kind, syntax, description)| {
                vec![
                    lit(name.as_str()),
                    lit(*kind),
                    lit(syntax.as_str()),
                    lit(description.as_str()),
                ]
            })
            .collect::<Vec<_>>();
        let plan = named_values(values, &["name", "kind", "syntax", "description"])?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}
