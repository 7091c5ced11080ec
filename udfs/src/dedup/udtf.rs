//! SQL glue for `near_duplicates(table, id_column, text_column [, threshold [, num_hashes
//! [, bands [, options]]]])`; the grouping itself is [`super::components`], computed by the
//! engine (docs/METHOD.md "Near-duplicates").
//!
//! The groups are computed while the query is planned (the output's rows need them), on one
//! runtime per call under the statement's deadline ([`Planning`]); the result is a plan that
//! joins `table` with the labels written under the work folder, so it serialises like any
//! query, and neither the client nor the plan holds anything that grows with the documents.
//! Every step is a set operation on the rows, so the output does not depend on partitioning,
//! file order or thread count.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionContext};

use super::components::{components, output, Grouping, Work};

use super::minhash::{default_bands, DEFAULT_NUM_HASHES, MAX_NUM_HASHES};
use super::udf::check_bands;
use crate::args::{is_string, literal_f64, literal_i64, literal_str, table_name};
use crate::io::{no_such_column, open_table};
use crate::planning::Planning;

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
    /// Where the steps are written (`work=`); a folder of the process's temporary folder
    /// when absent.
    work: Option<String>,
}

const OPTION_KEYS: [&str; 1] = ["work"];

fn parse(exprs: &[Expr]) -> Result<Params> {
    if !(3..=7).contains(&exprs.len()) {
        return plan_err!(
            "{NAME}: expected 3 to 7 arguments (table, id_column, text_column [, threshold [, num_hashes [, bands [, options]]]]), got {}",
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
    let mut work = None;
    if let Some(e) = exprs.get(6) {
        for (_, value) in
            crate::args::parse_options(NAME, &literal_str(e, NAME, "options")?, &OPTION_KEYS)?
        {
            if value.is_empty() {
                return plan_err!("{NAME}: argument 'options': work must be a folder path or URL");
            }
            work = Some(value);
        }
    }
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
        work,
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

/// Whether the session plans for a Ballista cluster (its configuration has Ballista's
/// options): there the steps must go where every executor can write and read them.
fn is_remote(state: &SessionState) -> bool {
    state
        .config()
        .options()
        .entries()
        .iter()
        .any(|e| e.key.starts_with("ballista."))
}

impl TableFunctionImpl for NearDuplicates {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let p = parse(args.exprs())?;
        let Some(state) = args.session().as_any().downcast_ref::<SessionState>() else {
            return plan_err!("{NAME}: needs a DataFusion SessionState");
        };
        if p.work.is_none() && is_remote(state) {
            return plan_err!(
                "{NAME}: on a cluster it needs a work folder every executor can write and read: add the options argument 'work=s3://bucket/prefix/' (as sql/pipeline.sql does)"
            );
        }
        let mut state = state.clone();
        // DataFusion 55's hash joins cannot spill: the verification joins the signatures
        // (~0.5 KB a document) as a build side, and 4M documents under `-m 4G` failed with
        // "Resources exhausted: ... HashJoinInput". Sort-merge joins sort with spilling sorts:
        // the same groups, bounded by the pool (1M documents: 37 s and 1.9 GB instead of 33 s
        // and 3.5 GB; BENCHMARKS.md). Only these internal queries; the session keeps its choice.
        state.config_mut().options_mut().optimizer.prefer_hash_join = false;
        let plan = Planning::new(NAME, args.session()).run(async move {
            let ctx = SessionContext::new_with_state(state);
            // One open (a listing, on S3 a request) serves both reads of the table.
            let table = open(&ctx, &p).await?;
            let id_type = table
                .schema()
                .field_with_unqualified_name(&p.id)?
                .data_type()
                .clone();
            let work = Work::new(p.work.as_deref())?;
            let grouping = Grouping {
                id: &p.id,
                text: &p.text,
                threshold: p.threshold,
                num_hashes: p.num_hashes,
                bands: p.bands,
            };
            let (labels, rounds) = components(&ctx, &work, table.clone(), &grouping).await?;
            log::debug!("{NAME}: the groups settled after {rounds} rounds");
            output(table, labels, &p.id, &id_type).map(DataFrame::into_unoptimized_plan)
        })?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}
