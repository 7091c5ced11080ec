//! Files and URLs named in function arguments: a missing path or an empty folder is reported
//! as a plain error naming it, before DataFusion would report it as an internal error ("No
//! files for table").

use datafusion::common::{exec_datafusion_err, plan_err};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::Result;
use datafusion::object_store::ObjectStoreExt;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

/// Whether a table name (a table function's argument, a `FROM '...'` name) means a file,
/// folder or URL rather than a registered table.
pub fn is_location(name: &str) -> bool {
    name.contains('/')
        || name.contains("://")
        || [".parquet", ".csv", ".json", ".arrow", ".avro"]
            .iter()
            .any(|ext| name.to_ascii_lowercase().ends_with(ext))
}

/// A planning error unless `location` is an existing file or a folder/prefix holding at least
/// one file.
pub(crate) async fn check_location(
    ctx: &SessionContext,
    location: &str,
    function: &str,
    argument: &str,
) -> Result<()> {
    let url = ListingTableUrl::parse(location).map_err(|e| {
        exec_datafusion_err!(
            "{function}: argument '{argument}': '{location}' is not a valid path or URL: {e}"
        )
    })?;
    let store = ctx.runtime_env().object_store(&url).map_err(|e| {
        exec_datafusion_err!(
            "{function}: argument '{argument}': cannot open '{location}': {}",
            e.strip_backtrace()
        )
    })?;
    if store.head(url.prefix()).await.is_ok() {
        return Ok(());
    }
    match store.list(Some(url.prefix())).next().await {
        Some(Ok(_)) => Ok(()),
        Some(Err(datafusion::object_store::Error::NotFound { .. })) | None => plan_err!(
            "{function}: argument '{argument}': no file at '{location}' (missing path, or an empty folder or prefix)"
        ),
        Some(Err(e)) => plan_err!("{function}: argument '{argument}': cannot list '{location}': {e}"),
    }
}

/// Open a table argument of a table function: a registered name, or a path/URL that must hold
/// files; errors name the function, the argument and the table.
pub(crate) async fn open_table(
    ctx: &SessionContext,
    table: &str,
    function: &str,
    argument: &str,
) -> Result<DataFrame> {
    // A location is one table name, as `FROM 'file.parquet'` reads it (a bare
    // `sample.parquet` would otherwise be schema `sample`, table `parquet`).
    let reference = if is_location(table) {
        check_location(ctx, table, function, argument).await?;
        datafusion::common::TableReference::bare(table)
    } else {
        datafusion::common::TableReference::from(table)
    };
    ctx.table(reference).await.map_err(|e| {
        datafusion::common::plan_datafusion_err!(
            "{function}: argument '{argument}': cannot read '{table}': {}",
            e.strip_backtrace()
        )
    })
}

/// The error for a column `table` does not have, listing the columns it has.
pub(crate) fn no_such_column(
    df: &DataFrame,
    table: &str,
    column: &str,
    function: &str,
    argument: &str,
) -> datafusion::error::DataFusionError {
    let names: Vec<&str> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    datafusion::common::plan_datafusion_err!(
        "{function}: argument '{argument}': table '{table}' has no column '{column}' (columns: {})",
        names.join(", ")
    )
}
