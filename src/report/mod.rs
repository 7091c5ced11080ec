//! `samplemix report WORK [-o FILE]`: one self-contained HTML page (inline SVG and CSS, no
//! script, no network) that shows a mix at a glance, from the Parquet outputs that
//! `sql/pipeline.sql` writes under WORK.
//!
//! Data flows one way: [`load`] runs aggregate queries (the client receives per-domain,
//! per-bin and per-cluster rows, never documents) into a [`Mix`]; [`page::render`] turns it
//! into HTML, a pure function; [`write`] publishes the file, replacing only a report that
//! samplemix wrote.

mod load;
mod page;
mod pca;
mod svg;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use object_store::{ObjectStoreExt, PutPayload};

pub use load::{load, ClusterRow, DedupRow, DomainRow, Mix, QualityRow, Totals, QUALITY_BINS};
pub use page::{heavy_clusters, render, GENERATOR, MANY_COPIES};
pub use pca::project_2d;

/// Write the report of the mix under `work` to `out` (default `WORK/report.html`); returns
/// where it went.
pub async fn report(ctx: &SessionContext, work: &str, out: Option<&str>) -> Result<String> {
    let mix = load(ctx, work).await?;
    let target = match out {
        Some(out) => out.to_string(),
        None => format!("{}report.html", mix.work),
    };
    write(ctx, &target, render(&mix)).await?;
    Ok(target)
}

/// Publish `html` at `target` (a local path or a URL) in one put (atomic on a local disk and
/// on S3). An existing file there is replaced only when it is a samplemix report (its
/// `generator` meta says so); anything else is left alone and the call fails.
pub async fn write(ctx: &SessionContext, target: &str, html: String) -> Result<()> {
    if target.ends_with('/') {
        return Err(DataFusionError::Plan(format!(
            "samplemix report: -o '{target}' is a folder; give a file name such as {target}report.html"
        )));
    }
    if !target.contains("://") {
        if let Some(parent) = std::path::Path::new(target)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                DataFusionError::Execution(format!(
                    "samplemix report: cannot create '{}': {e}",
                    parent.display()
                ))
            })?;
        }
    }
    let url = ListingTableUrl::parse(target)?;
    let store = ctx.runtime_env().object_store(&url)?;
    let path = url.prefix();
    match store.get(path).await {
        Ok(existing) => {
            let bytes = existing.bytes().await?;
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
            if !head.contains(&format!(
                "<meta name=\"generator\" content=\"{GENERATOR}\">"
            )) {
                return Err(DataFusionError::Plan(format!(
                    "samplemix report: '{target}' exists and is not a samplemix report; it is left as it is (choose another -o FILE)"
                )));
            }
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(DataFusionError::ObjectStore(Box::new(e))),
    }
    store.put(path, PutPayload::from(html.into_bytes())).await?;
    Ok(())
}
