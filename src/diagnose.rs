//! Finding the bad shard behind a Parquet error.
//!
//! DataFusion and the parquet crate report a corrupt footer or page without the file's path
//! ("Parquet error: Invalid Parquet file. Corrupt footer"), and a malformed footer can even
//! panic inside the parquet crate. In a folder or an S3 prefix of thousands of shards that
//! leaves the user nothing to act on. After a statement failed that way, the shell reads the
//! footer of every Parquet file the statement could have read (its quoted paths and URLs, and
//! the registered tables' locations) and names the first that does not open; when every
//! footer opens, it decodes every page of those files. This costs one footer read per file
//! (and, for a corrupt page, a read of the files), and only after a failure.

use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use datafusion::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

/// What to do about a parse error that is DataFusion 55's generic SQL dialect taking the comma
/// before `cluster` in a SELECT list for a trailing one (CLUSTER is reserved there, for Hive's
/// CLUSTER BY): `SELECT id, cluster FROM scored`. `cluster` is a column of every scored table,
/// so the bare parse error would leave many users guessing.
pub fn parser_hint(e: &DataFusionError) -> Option<&'static str> {
    let parse_error = match e.find_root() {
        DataFusionError::SQL(parse, _) => parse.to_string(),
        _ => return None,
    };
    parse_error
        .to_ascii_lowercase()
        .contains("found: cluster")
        .then_some(
        "`cluster` after a comma in a SELECT list is read as the keyword CLUSTER (the default SQL \
         dialect allows a trailing comma there): write it with its table's alias (s.cluster) or \
         quoted (\"cluster\"), or SET datafusion.sql_parser.dialect = 'postgres'",
    )
}

/// What to do about a subquery given where a table function takes a table: DataFusion plans
/// each argument of a table function as a scalar expression, so `kmeans_fit((SELECT ...), ...)`
/// fails with a message about scalar subqueries.
pub fn subquery_hint(message: &str) -> Option<&'static str> {
    message
        .contains("The subquery should only return one column")
        .then_some(
            "a table function (kmeans_fit, near_duplicates, samplemix_weights, ...) takes a table \
             name, a view or a path, not a subquery: CREATE VIEW v AS SELECT ... and pass v",
        )
}

/// The first quoted `s3://` location of `sql` with a bucket name S3 cannot have, explained
/// (a URL table's store is built before samplemix sees the statement, and the URL parser
/// only says "invalid domain character").
pub fn bad_s3_location(sql: &str) -> Option<String> {
    sql.split('\'')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("s3://"))
        .find_map(|s| crate::check_s3_location(s).err())
        .map(|e| e.strip_backtrace())
}

/// Whether `e`, or an error it wraps, is a failure of the Parquet reader (a footer, a page, a
/// decompression of either), told by the errors' types.
pub fn is_parquet_failure(e: &DataFusionError) -> bool {
    use datafusion::arrow::error::ArrowError;
    use datafusion::parquet::errors::ParquetError;

    let arrow = |a: &ArrowError| match a {
        ArrowError::ParquetError(_) => true,
        ArrowError::ExternalError(inner) => inner.downcast_ref::<ParquetError>().is_some(),
        _ => false,
    };
    match e {
        DataFusionError::ParquetError(_) => true,
        DataFusionError::ArrowError(a, _) => arrow(a),
        DataFusionError::Context(_, inner) => is_parquet_failure(inner),
        DataFusionError::Shared(inner) => is_parquet_failure(inner),
        DataFusionError::External(inner) => {
            inner.downcast_ref::<ParquetError>().is_some()
                || inner.downcast_ref::<ArrowError>().is_some_and(arrow)
                || inner
                    .downcast_ref::<DataFusionError>()
                    .is_some_and(is_parquet_failure)
        }
        _ => false,
    }
}

/// The first Parquet file among the locations `sql` names or the session's tables read from
/// that does not read, with the reason: first every footer (one small read per file), then,
/// when all footers open, every page of every file (a corrupt page inside a file with a valid
/// footer).
pub async fn find_corrupt_parquet(ctx: &SessionContext, sql: &str) -> Option<String> {
    let mut all = Vec::new();
    for location in candidate_locations(ctx, sql).await {
        let Ok(url) = ListingTableUrl::parse(&location) else {
            continue;
        };
        let Ok(store) = ctx.runtime_env().object_store(&url) else {
            continue;
        };
        let state = ctx.state();
        let Ok(files) = url.list_all_files(&state, store.as_ref(), "").await else {
            continue;
        };
        let Ok(mut files) = files.try_collect::<Vec<_>>().await else {
            continue;
        };
        files.sort_by(|a, b| a.location.cmp(&b.location));
        for meta in files {
            let why = match footer(store.as_ref(), &meta).await {
                Ok(bytes) => {
                    // A malformed footer can panic inside the parquet crate.
                    match std::panic::catch_unwind(|| {
                        ParquetMetaDataReader::decode_metadata(&bytes)
                    }) {
                        Ok(Ok(_)) => {
                            all.push((url.clone(), store.clone(), meta));
                            continue;
                        }
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => {
                            "its footer is malformed (the parquet reader panicked)".to_string()
                        }
                    }
                }
                Err(why) => why,
            };
            return Some(named(&url, &meta, &why));
        }
    }
    for (url, store, meta) in all {
        if let Err(why) = read_all_pages(store.as_ref(), &meta).await {
            return Some(named(&url, &meta, &why));
        }
    }
    None
}

fn named(url: &ListingTableUrl, meta: &ObjectMeta, why: &str) -> String {
    let path = &meta.location;
    let shown = if url.scheme() == "file" {
        format!("/{path}")
    } else {
        format!("{}{path}", url.object_store().as_str())
    };
    format!("the bad Parquet file is {shown}: {why}")
}

/// Decode every page of a Parquet file (after a failure only: it reads the whole file).
async fn read_all_pages(store: &dyn ObjectStore, meta: &ObjectMeta) -> Result<(), String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let bytes = store
        .get(&meta.location)
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let decode = move || -> Result<(), String> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        for batch in reader {
            batch.map_err(|e| format!("a page does not decode: {e}"))?;
        }
        Ok(())
    };
    tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(decode)
            .unwrap_or_else(|_| Err("a page is malformed (the parquet reader panicked)".into()))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The Parquet metadata bytes of a file (its footer), or why they cannot be read.
async fn footer(store: &dyn ObjectStore, meta: &ObjectMeta) -> Result<Vec<u8>, String> {
    let size = meta.size;
    if size < 12 {
        return Err(format!("it is {size} bytes, too short for Parquet"));
    }
    let tail = store
        .get_range(&meta.location, size - 8..size)
        .await
        .map_err(|e| e.to_string())?;
    let tail: [u8; 8] = tail
        .as_ref()
        .try_into()
        .map_err(|_| "short read".to_string())?;
    let tail = FooterTail::try_new(&tail).map_err(|e| e.to_string())?;
    let length = tail.metadata_length() as u64;
    if length + 8 > size {
        return Err(format!(
            "its footer claims {length} bytes of metadata in a {size}-byte file"
        ));
    }
    store
        .get_range(&meta.location, size - 8 - length..size - 8)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

/// Quoted strings of `sql` that look like Parquet paths or URLs, then every registered listing
/// table's locations.
async fn candidate_locations(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let mut out: Vec<String> = sql
        .split('\'')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains("://")
                || s.ends_with(".parquet")
                || s.ends_with('/')
                || std::path::Path::new(s).exists()
        })
        .map(String::from)
        .collect();
    for catalog in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog) else {
            continue;
        };
        for schema in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema) else {
                continue;
            };
            for name in schema.table_names() {
                if let Ok(Some(table)) = schema.table(&name).await {
                    if let Some(listing) = table.downcast_ref::<ListingTable>() {
                        out.extend(listing.table_paths().iter().map(|u| u.to_string()));
                    }
                }
            }
        }
    }
    out.dedup();
    out
}
