//! Near-duplicate groups computed by the engine, with nothing in the client that grows with the
//! documents or the pairs: every step is a query whose result is written as Parquet under a
//! work folder and read back by the next, so on a Ballista cluster the executors do all of it
//! and the client only counts rounds.
//!
//! 1. signatures: `(id, minhash(text))` of every row with an id and a text, written once (the
//!    MinHash is the costly part; the later steps read it);
//! 2. edges: the LSH buckets (`minhash_bands`, unnested), each bucket's smallest id as its
//!    root, the candidate pairs `(id, root)`, kept when `minhash_similarity ≥ threshold`;
//! 3. components by min-label propagation with pointer jumping: every document of an edge
//!    starts with the smallest id among itself and its roots, and each round takes the
//!    smallest label among its own, its neighbours' and its label's label, until no label
//!    changes. A component's label ends as its smallest id, which is `group_id`.
//!
//! The edges join each document to its buckets' smallest ids, so components are shallow stars
//! and few rounds suffice (see BENCHMARKS.md for the counts on real data); the number is bounded
//! by [`MAX_ROUNDS`] all the same.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::common::{plan_err, JoinType};
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::error::Result;
use datafusion::execution::options::ParquetReadOptions;
use datafusion::functions_aggregate::expr_fn::{count, min};
use datafusion::logical_expr::{col, lit, Expr};
use datafusion::prelude::SessionContext;

use super::udf::{minhash_bands_udf, minhash_similarity_udf, minhash_udf};

/// Rounds of propagation before giving up (pointer jumping halves the remaining depth of a
/// component each round, so this allows components of any practical size).
pub const MAX_ROUNDS: usize = 64;

const ID: &str = "__nd_id";
const SIG: &str = "__nd_sig";
const KEY: &str = "__nd_key";
const ROOT: &str = "__nd_root";
const A: &str = "__nd_a";
const B: &str = "__nd_b";
const V: &str = "__nd_v";
const LABEL: &str = "__nd_label";

/// Where one call writes its steps: a fresh folder under the work location.
pub(crate) struct Work {
    base: String,
}

/// Calls of this process so far (with the process id and the time, a unique folder name).
static CALLS: AtomicU64 = AtomicU64::new(0);

impl Work {
    /// A fresh folder under `location` (a path or URL ending in `/`), or, with none, under
    /// the process's temporary folder (see [`local_work_root`]).
    pub(crate) fn new(location: Option<&str>) -> Result<Work> {
        let unique = format!(
            "near_duplicates-{}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            CALLS.fetch_add(1, Ordering::Relaxed)
        );
        let base = match location {
            Some(l) => format!("{}/{unique}/", l.trim_end_matches('/')),
            None => {
                let root = local_work_root()?;
                format!("{}/{unique}/", root.display())
            }
        };
        Ok(Work { base })
    }

    fn step(&self, name: &str) -> String {
        format!("{}{name}/", self.base)
    }

    /// Remove the steps `names` (best effort: they are never read again).
    async fn remove(&self, ctx: &SessionContext, names: &[String]) {
        use datafusion::datasource::listing::ListingTableUrl;
        use datafusion::object_store::ObjectStoreExt;
        use futures::TryStreamExt;
        for name in names {
            let Ok(url) = ListingTableUrl::parse(self.step(name)) else {
                continue;
            };
            let Ok(store) = ctx.runtime_env().object_store(&url) else {
                continue;
            };
            if let Ok(files) = store.list(Some(url.prefix())).try_collect::<Vec<_>>().await {
                for meta in files {
                    let _ = store.delete(&meta.location).await;
                }
            }
            if url.scheme() == "file" {
                let _ =
                    std::fs::remove_dir_all(std::path::Path::new("/").join(url.prefix().as_ref()));
            }
        }
    }
}

/// This process's folder for near_duplicates' steps when no work location is given:
/// `<temp>/samplemix-<pid>/`. Folders of processes that no longer run are removed here (on
/// Linux, where that can be told), so a killed shell's steps do not pile up.
pub fn local_work_root() -> Result<PathBuf> {
    let temp = std::env::temp_dir();
    let mine = temp.join(format!("samplemix-{}", std::process::id()));
    std::fs::create_dir_all(&mine)?;
    if std::path::Path::new("/proc/self").exists() {
        for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("samplemix-") else {
                continue;
            };
            if pid
                .parse::<u32>()
                .is_ok_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(mine)
}

/// Remove this process's local work folder (the shell calls it when it exits).
pub fn remove_local_work() {
    let mine = std::env::temp_dir().join(format!("samplemix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(mine);
}

/// Write `df` as Parquet into the work folder's step `name` and read it back (a step with no
/// rows writes no file: then an empty relation of its schema).
async fn persist(
    ctx: &SessionContext,
    work: &Work,
    name: &str,
    df: DataFrame,
) -> Result<DataFrame> {
    use datafusion::arrow::array::{AsArray, RecordBatch};
    use datafusion::arrow::datatypes::UInt64Type;
    use datafusion::logical_expr::{EmptyRelation, LogicalPlan};

    let path = work.step(name);
    let schema = df.schema().clone();
    let written = df
        .write_parquet(&path, DataFrameWriteOptions::new(), None)
        .await?;
    let rows: u64 = written
        .iter()
        .filter_map(|b: &RecordBatch| b.column(0).as_primitive_opt::<UInt64Type>())
        .flat_map(|c| c.values().iter().copied())
        .sum();
    if rows == 0 {
        let empty = LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: false,
            schema: std::sync::Arc::new(schema),
        });
        return Ok(DataFrame::new(ctx.state(), empty));
    }
    ctx.read_parquet(path, ParquetReadOptions::default()).await
}

/// The parameters of the grouping.
pub(crate) struct Grouping<'a> {
    pub id: &'a str,
    pub text: &'a str,
    pub threshold: f64,
    pub num_hashes: usize,
    pub bands: usize,
}

/// Steps 1 and 2: the verified edges `(A, B)`, B the smaller id.
async fn edges(
    ctx: &SessionContext,
    work: &Work,
    table: DataFrame,
    g: &Grouping<'_>,
) -> Result<DataFrame> {
    let (id, text) = (col(g.id), col(g.text));
    let sigs = table
        .filter(id.clone().is_not_null().and(text.clone().is_not_null()))?
        .select(vec![
            id.alias(ID),
            minhash_udf()
                .call(vec![text, lit(g.num_hashes as i64)])
                .alias(SIG),
        ])?;
    let sigs = persist(ctx, work, "signatures", sigs).await?;
    let bands = sigs
        .clone()
        .select(vec![
            col(ID),
            minhash_bands_udf()
                .call(vec![col(SIG), lit(g.bands as i64)])
                .alias(KEY),
        ])?
        .unnest_columns(&[KEY])?;
    let roots = bands
        .clone()
        .aggregate(
            vec![col(KEY)],
            vec![min(col(ID)).alias(ROOT), count(lit(1)).alias("__nd_n")],
        )?
        .filter(col("__nd_n").gt(lit(1i64)))?
        .select(vec![col(KEY).alias("__nd_rkey"), col(ROOT)])?;
    let pairs = bands
        .join(roots, JoinType::Inner, &[KEY], &["__nd_rkey"], None)?
        .filter(col(ID).not_eq(col(ROOT)))?
        .select(vec![col(ID).alias(A), col(ROOT).alias(B)])?
        .distinct()?;
    let side = |df: &DataFrame, id: &str, sig: &str| {
        df.clone()
            .select(vec![col(ID).alias(id), col(SIG).alias(sig)])
    };
    let verified = pairs
        .join(
            side(&sigs, "__nd_ia", "__nd_sa")?,
            JoinType::Inner,
            &[A],
            &["__nd_ia"],
            None,
        )?
        .join(
            side(&sigs, "__nd_ib", "__nd_sb")?,
            JoinType::Inner,
            &[B],
            &["__nd_ib"],
            None,
        )?
        .filter(
            minhash_similarity_udf()
                .call(vec![col("__nd_sa"), col("__nd_sb")])
                .gt_eq(lit(g.threshold)),
        )?
        .select(vec![col(A), col(B)])?;
    persist(ctx, work, "edges", verified).await
}

/// One round of propagation: each vertex's smallest label among its own, its neighbours' and
/// its label's label.
fn next_labels(edges: &DataFrame, labels: &DataFrame) -> Result<DataFrame> {
    let l = |v: &str, label: &str| {
        labels
            .clone()
            .select(vec![col(V).alias(v), col(LABEL).alias(label)])
    };
    let own = l(V, LABEL)?;
    let from_b = edges
        .clone()
        .join(
            l("__nd_lv", "__nd_ll")?,
            JoinType::Inner,
            &[B],
            &["__nd_lv"],
            None,
        )?
        .select(vec![col(A).alias(V), col("__nd_ll").alias(LABEL)])?;
    let from_a = edges
        .clone()
        .join(
            l("__nd_lv", "__nd_ll")?,
            JoinType::Inner,
            &[A],
            &["__nd_lv"],
            None,
        )?
        .select(vec![col(B).alias(V), col("__nd_ll").alias(LABEL)])?;
    let jump = own
        .clone()
        .join(
            l("__nd_lv", "__nd_ll")?,
            JoinType::Inner,
            &[LABEL],
            &["__nd_lv"],
            None,
        )?
        .select(vec![col(V), col("__nd_ll").alias(LABEL)])?;
    own.union(from_b)?
        .union(from_a)?
        .union(jump)?
        .aggregate(vec![col(V)], vec![min(col(LABEL)).alias(LABEL)])
}

/// How many vertices' labels differ between two rounds.
async fn changed(before: &DataFrame, after: &DataFrame) -> Result<i64> {
    let after = after
        .clone()
        .select(vec![col(V).alias("__nd_v2"), col(LABEL).alias("__nd_l2")])?;
    let n = before
        .clone()
        .join(after, JoinType::Inner, &[V], &["__nd_v2"], None)?
        .filter(col(LABEL).not_eq(col("__nd_l2")))?
        .count()
        .await?;
    Ok(n as i64)
}

/// The components of the edges: `(V, LABEL)`, LABEL the smallest id of V's component, for
/// every vertex of an edge; and the rounds it took.
pub(crate) async fn components(
    ctx: &SessionContext,
    work: &Work,
    table: DataFrame,
    g: &Grouping<'_>,
) -> Result<(DataFrame, usize)> {
    let edges = edges(ctx, work, table, g).await?;
    let start = edges
        .clone()
        .select(vec![col(A).alias(V), col(B).alias(LABEL)])?
        .union(
            edges
                .clone()
                .select(vec![col(B).alias(V), col(B).alias(LABEL)])?,
        )?
        .aggregate(vec![col(V)], vec![min(col(LABEL)).alias(LABEL)])?;
    let mut labels = persist(ctx, work, "labels-0", start).await?;
    let mut done = vec!["signatures".to_string()];
    for round in 1..=MAX_ROUNDS {
        let next = persist(
            ctx,
            work,
            &format!("labels-{round}"),
            next_labels(&edges, &labels)?,
        )
        .await?;
        let moved = changed(&labels, &next).await?;
        labels = next;
        done.push(format!("labels-{}", round - 1));
        if moved == 0 {
            // The result reads only the last labels.
            done.push("edges".to_string());
            work.remove(ctx, &done).await;
            return Ok((labels, round));
        }
    }
    plan_err!(
        "near_duplicates: the groups did not settle within {MAX_ROUNDS} rounds of label propagation"
    )
}

/// The output: one row per row of `table`, `id`, `group_id` (of the id's type), `keep`.
pub(crate) fn output(
    table: DataFrame,
    labels: DataFrame,
    id: &str,
    id_type: &datafusion::arrow::datatypes::DataType,
) -> Result<DataFrame> {
    let idc = col(id);
    let labels = labels.select(vec![col(V).alias("__nd_v"), col(LABEL).alias("__nd_group")])?;
    let group: Expr = col("__nd_group");
    table
        .join(labels, JoinType::Left, &[id], &["__nd_v"], None)?
        .select(vec![
            idc.clone().alias("id"),
            datafusion::logical_expr::cast(
                datafusion::functions::expr_fn::coalesce(vec![group.clone(), idc.clone()]),
                id_type.clone(),
            )
            .alias("group_id"),
            group.clone().is_null().or(group.eq(idc)).alias("keep"),
        ])
}
