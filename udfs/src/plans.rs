//! Literal plans: small results that enter a query as `VALUES`, which (unlike an in-memory
//! table) serialise with the plan, so a Ballista client can send them to executors.

use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{col, lit, Expr, LogicalPlan, LogicalPlanBuilder};

/// `VALUES rows` with its columns named `names` (the rows must not be empty).
pub fn named_values<S: AsRef<str>>(rows: Vec<Vec<Expr>>, names: &[S]) -> Result<LogicalPlan> {
    let columns: Vec<Expr> = names
        .iter()
        .enumerate()
        .map(|(i, name)| col(format!("column{}", i + 1)).alias(name.as_ref()))
        .collect();
    LogicalPlanBuilder::values(rows)?.project(columns)?.build()
}

/// `batches` as a `VALUES` plan with their column names and types; `None` when they hold no
/// row (`VALUES` needs one).
pub fn batches_as_values(batches: &[RecordBatch]) -> Result<Option<LogicalPlan>> {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, i).map(lit))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    named_values(rows, &names).map(Some)
}
