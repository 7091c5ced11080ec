//! What the report shows, read from the small Parquet outputs of `sql/pipeline.sql` under a
//! work folder: `summary.parquet` (documents, tokens and quality per domain, cluster, quality
//! bin and number of copies: the pipeline joined and grouped the documents), the centroids,
//! and, when present, `dedup_domains.parquet` and `run.parquet`. No document is read, so the
//! report's memory is O(summary rows + k x dim) whatever the corpus size.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::ObjectStoreExt;

/// One domain: the documents kept after near-duplicate removal (source) and the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainRow {
    pub domain: String,
    pub src_docs: f64,
    pub src_tokens: f64,
    pub mix_docs: f64,
    pub mix_tokens: f64,
    pub mean_quality: f64,
    pub dropped_frac: f64,
    pub max_repeats: f64,
}

/// Near-duplicate removal in one domain (from `dedup_domains.parquet`).
#[derive(Debug, Clone, PartialEq)]
pub struct DedupRow {
    pub domain: String,
    pub docs: f64,
    pub removed: f64,
}

/// Documents of one domain whose quality falls in `[bin, bin + 1)` (bin 9 holds 10 too).
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRow {
    pub domain: String,
    pub bin: usize,
    pub src_docs: f64,
    pub mix_docs: f64,
}

/// One k-means cluster, with its centroid's position on the report's 2-D map.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub cluster: i64,
    pub src_docs: f64,
    pub diversity: f64,
    pub mean_quality: f64,
    pub mix_docs: f64,
    pub max_repeats: f64,
    pub domains: String,
    pub xy: [f64; 2],
}

/// Totals of the run; `budget_tokens` is None when the work folder has no `run.parquet`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub src_docs: f64,
    pub src_tokens: f64,
    pub expected_docs: f64,
    pub expected_tokens: f64,
    pub mix_docs: f64,
    pub mix_tokens: f64,
    pub budget_tokens: Option<f64>,
}

/// Everything the report draws. Built by [`load`], or by hand in tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mix {
    pub work: String,
    pub domains: Vec<DomainRow>,
    /// None when the work folder predates `dedup_domains.parquet`.
    pub dedup: Option<Vec<DedupRow>>,
    pub quality: Vec<QualityRow>,
    pub clusters: Vec<ClusterRow>,
    /// (copies of a document, documents with that many copies), by copies.
    pub copies: Vec<(i64, f64)>,
    pub totals: Totals,
}

/// Number of quality bins: [0, 1), ..., [9, 10].
pub const QUALITY_BINS: usize = 10;

const DOMAINS: &str = "
SELECT CAST(domain AS VARCHAR) AS domain, sum(docs) AS src_docs, sum(tokens) AS src_tokens,
       sum(docs * copies) AS mix_docs, sum(tokens * copies) AS mix_tokens,
       sum(quality_sum) / sum(quality_docs) AS mean_quality,
       CAST(sum(CASE WHEN copies = 0 THEN docs ELSE 0 END) AS DOUBLE) / sum(docs) AS dropped_frac,
       max(copies) AS max_repeats
FROM __report_summary GROUP BY 1 ORDER BY 1";

const QUALITY: &str = "
SELECT CAST(domain AS VARCHAR) AS domain, quality_bin AS bin,
       sum(docs) AS src_docs, sum(docs * copies) AS mix_docs
FROM __report_summary WHERE quality_bin IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2";

const CLUSTERS: &str = "
SELECT cluster, sum(docs) AS src_docs, max(diversity) AS diversity,
       sum(quality_sum) / sum(quality_docs) AS mean_quality, sum(docs * copies) AS mix_docs,
       max(copies) AS max_repeats,
       string_agg(DISTINCT CAST(domain AS VARCHAR), ', ' ORDER BY CAST(domain AS VARCHAR)) AS domains
FROM __report_summary GROUP BY 1 ORDER BY 1";

const COPIES: &str = "SELECT copies, sum(docs) AS docs FROM __report_summary GROUP BY 1 ORDER BY 1";

const TOTALS: &str = "
SELECT sum(docs) AS src_docs, sum(tokens) AS src_tokens,
       sum(expected_docs) AS expected_docs, sum(expected_tokens) AS expected_tokens,
       sum(docs * copies) AS mix_docs, sum(tokens * copies) AS mix_tokens
FROM __report_summary";

const CENTROIDS: &str = "SELECT cluster, centroid FROM __report_centroids ORDER BY cluster";

const DEDUP: &str = "
SELECT CAST(domain AS VARCHAR) AS domain, sum(docs) AS docs, sum(removed) AS removed
FROM __report_dedup GROUP BY 1 ORDER BY 1";

const BUDGET: &str = "SELECT max(budget_tokens) AS budget FROM __report_run";

/// The work folder's outputs the report reads, all small whatever the corpus size:
/// (table name, location under WORK, required).
const INPUTS: [(&str, &str, bool); 4] = [
    ("__report_summary", "summary.parquet", true),
    ("__report_centroids", "centroids.parquet", true),
    ("__report_dedup", "dedup_domains.parquet", false),
    ("__report_run", "run.parquet", false),
];

/// Read the aggregates of the mix under `work` (a local folder or an `s3://` prefix).
pub async fn load(ctx: &SessionContext, work: &str) -> Result<Mix> {
    let base = if work.ends_with('/') {
        work.to_string()
    } else {
        format!("{work}/")
    };
    let [_, _, has_dedup, has_run] = register(ctx, &base).await?;
    let domains = rows(ctx, DOMAINS).await?.iter().map(domain_row).collect();
    let quality = rows(ctx, QUALITY).await?.iter().map(quality_row).collect();
    let centroids = centroids(ctx).await?;
    let points: Vec<Vec<f64>> = centroids.iter().map(|c| c.1.clone()).collect();
    let xy = super::pca::project_2d(&points);
    let clusters = rows(ctx, CLUSTERS)
        .await?
        .iter()
        .map(|r| {
            let at = centroids.iter().position(|(c, _)| *c == r.num(0) as i64);
            cluster_row(r, at.map_or([0.0, 0.0], |i| xy[i]))
        })
        .collect();
    let copies = rows(ctx, COPIES)
        .await?
        .iter()
        .filter(|r| r.num(0).is_finite())
        .map(|r| (r.num(0) as i64, r.num(1)))
        .collect();
    let mut totals = totals(rows(ctx, TOTALS).await?.first());
    let dedup = match has_dedup {
        true => Some(rows(ctx, DEDUP).await?.iter().map(dedup_row).collect()),
        false => None,
    };
    if has_run {
        let budget = rows(ctx, BUDGET).await?.first().map(|r| r.num(0));
        totals.budget_tokens = budget.filter(|v| v.is_finite());
    }
    for (table, _, _) in INPUTS {
        ctx.deregister_table(table)?;
    }
    Ok(Mix {
        work: base,
        domains,
        dedup,
        quality,
        clusters,
        copies,
        totals,
    })
}

/// Register the work folder's [`INPUTS`] as tables; which of them exist. A missing required
/// one is an error naming it.
async fn register(ctx: &SessionContext, base: &str) -> Result<[bool; 4]> {
    let mut present = [false; 4];
    for (i, (table, rel, required)) in INPUTS.into_iter().enumerate() {
        let location = format!("{base}{rel}");
        present[i] = has_files(ctx, &location).await?;
        if !present[i] && required {
            return Err(DataFusionError::Plan(format!(
                "samplemix report: '{location}' is missing; WORK must be the folder that sql/pipeline.sql wrote (--var work=...)"
            )));
        }
        if present[i] {
            ctx.deregister_table(table)?;
            let sql = format!(
                "CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION '{}'",
                location.replace('\'', "''")
            );
            ctx.sql(&sql).await?.collect().await?;
        }
    }
    Ok(present)
}

fn domain_row(r: &Row) -> DomainRow {
    DomainRow {
        domain: r.text(0),
        src_docs: r.num(1),
        src_tokens: r.num(2),
        mix_docs: r.num(3),
        mix_tokens: r.num(4),
        mean_quality: r.num(5),
        dropped_frac: r.num(6),
        max_repeats: r.num(7),
    }
}

fn quality_row(r: &Row) -> QualityRow {
    QualityRow {
        domain: r.text(0),
        bin: r.num(1).clamp(0.0, (QUALITY_BINS - 1) as f64) as usize,
        src_docs: r.num(2),
        mix_docs: r.num(3),
    }
}

fn cluster_row(r: &Row, xy: [f64; 2]) -> ClusterRow {
    ClusterRow {
        cluster: r.num(0) as i64,
        src_docs: r.num(1),
        diversity: r.num(2),
        mean_quality: r.num(3),
        mix_docs: r.num(4),
        max_repeats: r.num(5),
        domains: r.text(6),
        xy,
    }
}

fn dedup_row(r: &Row) -> DedupRow {
    DedupRow {
        domain: r.text(0),
        docs: r.num(1),
        removed: r.num(2),
    }
}

/// The totals row (none, or NULL sums, for an empty summary: zeros).
fn totals(row: Option<&Row>) -> Totals {
    let get = |i: usize| {
        row.map(|r| r.num(i))
            .filter(|v| v.is_finite())
            .unwrap_or(0.0)
    };
    Totals {
        src_docs: get(0),
        src_tokens: get(1),
        expected_docs: get(2),
        expected_tokens: get(3),
        mix_docs: get(4),
        mix_tokens: get(5),
        budget_tokens: None,
    }
}

/// Whether `location` (a file or a folder, local or a URL) holds at least one file.
async fn has_files(ctx: &SessionContext, location: &str) -> Result<bool> {
    let url = ListingTableUrl::parse(location)?;
    let store = ctx.runtime_env().object_store(&url)?;
    // A file answers a HEAD; a folder (a prefix) answers a listing.
    if !location.ends_with('/') && store.head(url.prefix()).await.is_ok() {
        return Ok(true);
    }
    let mut listing = store.list(Some(url.prefix()));
    match listing.next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(object_store::Error::NotFound { .. })) => Ok(false),
        Some(Err(e)) => Err(DataFusionError::ObjectStore(Box::new(e))),
    }
}

/// (cluster, centroid) of every cluster, by cluster.
async fn centroids(ctx: &SessionContext) -> Result<Vec<(i64, Vec<f64>)>> {
    // Any list of numbers: kmeans_fit writes FixedSizeList<Float32>, other tools List.
    let as_list = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
    let mut out = Vec::new();
    for batch in ctx.sql(CENTROIDS).await?.collect().await? {
        let ids = cast(batch.column(0), &DataType::Int64)?;
        let ids = ids.as_primitive::<Int64Type>();
        let list = cast(batch.column(1), &as_list).map_err(|e| {
            DataFusionError::Plan(format!(
                "samplemix report: centroids.parquet's 'centroid' must be a list of numbers: {e}"
            ))
        })?;
        let list = list.as_list::<i32>();
        for i in 0..batch.num_rows() {
            if ids.is_null(i) || list.is_null(i) {
                continue;
            }
            let values = list.value(i);
            out.push((
                ids.value(i),
                values.as_primitive::<Float64Type>().values().to_vec(),
            ));
        }
    }
    Ok(out)
}

/// One result row, columns cast to text or Float64 (NULL reads as "" or NaN).
struct Row {
    texts: Vec<Option<String>>,
    nums: Vec<f64>,
}

impl Row {
    fn text(&self, i: usize) -> String {
        self.texts[i].clone().unwrap_or_default()
    }
    fn num(&self, i: usize) -> f64 {
        self.nums[i]
    }
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Row>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut out = Vec::new();
    for batch in &batches {
        out.extend(batch_rows(batch)?);
    }
    Ok(out)
}

fn batch_rows(batch: &RecordBatch) -> Result<Vec<Row>> {
    let mut texts = Vec::new();
    let mut nums = Vec::new();
    for column in batch.columns() {
        let is_text = matches!(
            column.data_type(),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        );
        texts.push(if is_text {
            Some(cast(column, &DataType::Utf8)?)
        } else {
            None
        });
        nums.push(if is_text {
            None
        } else {
            Some(cast(column, &DataType::Float64)?)
        });
    }
    Ok((0..batch.num_rows())
        .map(|i| Row {
            texts: texts
                .iter()
                .map(|c| {
                    c.as_ref()
                        .map(|c| c.as_string::<i32>())
                        .filter(|c| c.is_valid(i))
                        .map(|c| c.value(i).to_string())
                })
                .collect(),
            nums: nums
                .iter()
                .map(|c| {
                    c.as_ref()
                        .map(|c| c.as_primitive::<Float64Type>())
                        .filter(|c| c.is_valid(i))
                        .map_or(f64::NAN, |c| c.value(i))
                })
                .collect(),
        })
        .collect())
}
