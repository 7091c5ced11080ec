//! Use samplemix's SQL functions in your own DataFusion application.
//!
//! Run from the repository root: `cargo run --example register`

use datafusion::error::Result;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

#[tokio::main]
async fn main() -> Result<()> {
    let ctx = SessionContext::new();
    // The one call a Rust user needs.
    samplemix_udfs::register_all(&ctx)?;

    ctx.register_parquet("docs", "data/sample.parquet", ParquetReadOptions::default())
        .await?;
    ctx.sql(
        "SELECT domain, count(*) AS docs, sum(token_count(text)) AS tokens \
         FROM docs GROUP BY domain ORDER BY tokens DESC",
    )
    .await?
    .show()
    .await?;
    Ok(())
}
