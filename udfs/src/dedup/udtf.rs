//! SQL glue for `near_duplicates(table, id_column, text_column [, threshold [, num_hashes
//! [, bands]]])`.
//!
//! How it runs (docs/METHOD.md "Near-duplicates"):
//! 1. while planning, one query over `table` through ordinary DataFusion operators: a signature
//!    per row (`minhash`), its band keys (`minhash_bands`) unnested to one row per band, a
//!    window partitioned by key and ordered by id that gives each row its bucket's smallest id
//!    (the root) and the root's signature (a sort, which spills to disk under memory pressure),
//!    then the verified candidate pairs: `(id, root)` with `id ≠ root` and
//!    `minhash_similarity(sig, root_sig) ≥ threshold`, distinct;
//! 2. connected components of those pairs (union-find, in memory: one entry per document that
//!    has a verified near-duplicate, nothing for the others); a component's `group_id` is its
//!    smallest id;
//! 3. the result is a plan: `table` left-joined with a `VALUES` list of (id, group_id) of the
//!    grouped documents, so it serialises like any query and reads `table` again for the ids.
//!
//! Every step is a set operation on the rows, so the output does not depend on partitioning,
//! file order or thread count.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, JoinType, ScalarValue};
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions::expr_fn::coalesce;
use datafusion::functions_window::expr_fn::first_value;
use datafusion::logical_expr::{col, lit, Expr, ExprFunctionExt, LogicalPlan};
use datafusion::prelude::{DataFrame, SessionContext};

use super::minhash::{default_bands, DEFAULT_NUM_HASHES, MAX_NUM_HASHES};
use super::udf::{check_bands, minhash_bands_udf, minhash_similarity_udf, minhash_udf};
use crate::args::{is_string, literal_f64, literal_i64, literal_str, table_name};
use crate::io::{no_such_column, open_table};
use crate::planning::Planning;
use crate::plans::named_values;

const NAME: &str = "near_duplicates";

/// Default similarity threshold.
pub const DEFAULT_THRESHOLD: f64 = 0.8;

/// `near_duplicates` table function: one row per input row, `id`, `group_id` (the smallest id
/// of its near-duplicate group) and `keep` (true for exactly one row per group).
#[derive(Debug, Default)]
pub struct NearDuplicates;

#[derive(Debug, Clone)]
struct Params {
    table: String,
    id: String,
    text: String,
    threshold: f64,
    num_hashes: usize,
    bands: usize,
}

fn parse(exprs: &[Expr]) -> Result<Params> {
    if !(3..=6).contains(&exprs.len()) {
        return plan_err!(
            "{NAME}: expected 3 to 6 arguments (table, id_column, text_column [, threshold [, num_hashes [, bands]]]), got {}",
            exprs.len()
        );
    }
    let threshold = exprs
        .get(3)
        .map_or(Ok(DEFAULT_THRESHOLD), |e| literal_f64(e, NAME, "threshold"))?;
    if !(threshold > 0.0 && threshold <= 1.0) {
        return plan_err!(
            "{NAME}: argument 'threshold' (estimated Jaccard similarity) must be in (0, 1], got {threshold}"
        );
    }
    let num_hashes = exprs.get(4).map_or(Ok(DEFAULT_NUM_HASHES as i64), |e| {
        literal_i64(e, NAME, "num_hashes")
    })?;
    if num_hashes < 1 || num_hashes > MAX_NUM_HASHES as i64 {
        return plan_err!(
            "{NAME}: argument 'num_hashes' must be between 1 and {MAX_NUM_HASHES}, got {num_hashes}"
        );
    }
    let num_hashes = num_hashes as usize;
    let bands = match exprs.get(5) {
        Some(e) => {
            let b = literal_i64(e, NAME, "bands")?;
            check_bands(NAME, num_hashes, b)?;
            b as usize
        }
        None => default_bands(num_hashes, threshold),
    };
    Ok(Params {
        table: table_name(&exprs[0], NAME, "table")?,
        id: literal_str(&exprs[1], NAME, "id_column")?,
        text: literal_str(&exprs[2], NAME, "text_column")?,
        threshold,
        num_hashes,
        bands,
    })
}

/// Open `table` and check its two columns.
async fn open(ctx: &SessionContext, p: &Params) -> Result<DataFrame> {
    let df = open_table(ctx, &p.table, NAME, "table").await?;
    for (argument, column) in [("id_column", &p.id), ("text_column", &p.text)] {
        let Ok(field) = df.schema().field_with_unqualified_name(column) else {
            return Err(no_such_column(&df, &p.table, column, NAME, argument));
        };
        if argument == "id_column" && field.data_type().is_floating() {
            return plan_err!(
                "{NAME}: argument 'id_column': column '{column}' of '{}' is {}; ids must compare exactly (integers, strings, dates ...): a float id is ambiguous (0.0 = -0.0, NaN <> NaN)",
                p.table,
                field.data_type()
            );
        }
        if argument == "text_column" && !is_string(field.data_type()) {
            return plan_err!(
                "{NAME}: argument 'text_column': column '{column}' of '{}' must be a string (Utf8, LargeUtf8 or Utf8View), got {}",
                p.table,
                field.data_type()
            );
        }
    }
    Ok(df)
}

/// Step 1: the verified candidate pairs `(id, root)`.
async fn verified_pairs(df: DataFrame, p: &Params) -> Result<Vec<(ScalarValue, ScalarValue)>> {
    let (id, text) = (col(p.id.as_str()), col(p.text.as_str()));
    let by_key = |e: Expr| {
        first_value(e)
            .partition_by(vec![col("__key")])
            .order_by(vec![col("__id").sort(true, false)])
            .build()
    };
    let pairs = df
        .filter(id.clone().is_not_null().and(text.clone().is_not_null()))?
        .select(vec![
            id.alias("__id"),
            minhash_udf()
                .call(vec![text, lit(p.num_hashes as i64)])
                .alias("__sig"),
        ])?
        .select(vec![
            col("__id"),
            col("__sig"),
            minhash_bands_udf()
                .call(vec![col("__sig"), lit(p.bands as i64)])
                .alias("__key"),
        ])?
        .unnest_columns(&["__key"])?
        .select(vec![
            col("__id"),
            col("__sig"),
            by_key(col("__id"))?.alias("__root"),
            by_key(col("__sig"))?.alias("__root_sig"),
        ])?
        .filter(
            col("__id").not_eq(col("__root")).and(
                minhash_similarity_udf()
                    .call(vec![col("__sig"), col("__root_sig")])
                    .gt_eq(lit(p.threshold)),
            ),
        )?
        .select(vec![col("__id"), col("__root")])?
        .distinct()?;
    let mut out = Vec::new();
    for batch in pairs.collect().await? {
        let (ids, roots) = (batch.column(0), batch.column(1));
        for i in 0..batch.num_rows() {
            out.push((
                ScalarValue::try_from_array(ids, i)?,
                ScalarValue::try_from_array(roots, i)?,
            ));
        }
    }
    Ok(out)
}

/// Step 2: `(id, group_id)` of every document in a group of two or more, sorted by id.
fn components(pairs: Vec<(ScalarValue, ScalarValue)>) -> Vec<(ScalarValue, ScalarValue)> {
    let mut index: HashMap<ScalarValue, usize> = HashMap::new();
    let mut ids: Vec<ScalarValue> = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut slot = |v: ScalarValue, ids: &mut Vec<ScalarValue>, parent: &mut Vec<usize>| {
        *index.entry(v.clone()).or_insert_with(|| {
            ids.push(v);
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (a, b) in pairs {
        let (a, b) = (
            slot(a, &mut ids, &mut parent),
            slot(b, &mut ids, &mut parent),
        );
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    // The smallest id of each component (ids of one column share a type, so they compare).
    let mut smallest: HashMap<usize, usize> = HashMap::new();
    for i in 0..ids.len() {
        let r = find(&mut parent, i);
        let best = smallest.entry(r).or_insert(i);
        if ids[i].partial_cmp(&ids[*best]) == Some(std::cmp::Ordering::Less) {
            *best = i;
        }
    }
    let mut out: Vec<(ScalarValue, ScalarValue)> = (0..ids.len())
        .map(|i| {
            let r = find(&mut parent, i);
            (ids[i].clone(), ids[smallest[&r]].clone())
        })
        .collect();
    out.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    out
}

/// Step 3: the output plan.
fn output(
    ctx: &SessionContext,
    df: DataFrame,
    groups: Vec<(ScalarValue, ScalarValue)>,
    p: &Params,
) -> Result<LogicalPlan> {
    let id = col(p.id.as_str());
    if groups.is_empty() {
        return df
            .select(vec![
                id.clone().alias("id"),
                id.alias("group_id"),
                lit(true).alias("keep"),
            ])
            .map(DataFrame::into_unoptimized_plan);
    }
    let rows: Vec<Vec<Expr>> = groups
        .into_iter()
        .map(|(i, g)| vec![lit(i), lit(g)])
        .collect();
    let values = DataFrame::new(ctx.state(), named_values(rows, &["__nd_id", "__nd_group"])?);
    df.join(values, JoinType::Left, &[p.id.as_str()], &["__nd_id"], None)?
        .select(vec![
            id.clone().alias("id"),
            coalesce(vec![col("__nd_group"), id.clone()]).alias("group_id"),
            col("__nd_group")
                .is_null()
                .or(col("__nd_group").eq(id))
                .alias("keep"),
        ])
        .map(DataFrame::into_unoptimized_plan)
}

impl TableFunctionImpl for NearDuplicates {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let p = parse(args.exprs())?;
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{NAME}: needs a DataFusion SessionState");
        };
        let state = state.clone();
        let plan = Planning::new(NAME, args.session()).run(async move {
            let ctx = SessionContext::new_with_state(state);
            // One open (a listing, on S3 a request) serves both reads of the table.
            let table = open(&ctx, &p).await?;
            let groups = components(verified_pairs(table.clone(), &p).await?);
            output(&ctx, table, groups, &p)
        })?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: i64) -> ScalarValue {
        ScalarValue::Int64(Some(v))
    }

    #[test]
    fn components_take_the_smallest_id() {
        let pairs = vec![(s(9), s(4)), (s(7), s(4)), (s(3), s(2)), (s(9), s(2))];
        let groups = components(pairs);
        let got: Vec<(i64, i64)> = groups
            .iter()
            .map(|(a, b)| match (a, b) {
                (ScalarValue::Int64(Some(a)), ScalarValue::Int64(Some(b))) => (*a, *b),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(got, vec![(2, 2), (3, 2), (4, 2), (7, 2), (9, 2)]);
    }
}
