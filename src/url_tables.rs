//! URL tables (`SELECT * FROM 's3://bucket/shard.parquet'`) that explain why a URL could not
//! be read. DataFusion's factory turns every failure into "table not found", which hides an
//! unreachable endpoint, a missing bucket or a missing file behind a misleading message.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{DynamicFileCatalog, TableProvider, UrlTableFactory};
use datafusion::datasource::dynamic_file::DynamicListTableFactory;
use datafusion::datasource::listing::{ListingTableConfig, ListingTableConfigExt, ListingTableUrl};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;

#[derive(Debug)]
struct ExplainingUrlTables {
    inner: Arc<DynamicListTableFactory>,
}

#[async_trait]
impl UrlTableFactory for ExplainingUrlTables {
    async fn try_new(&self, url: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        crate::check_s3_location(url)?;
        let found = self.inner.try_new(url).await?;
        if found.is_some() || !samplemix_udfs::is_location(url) {
            return Ok(found);
        }
        // Repeat the inference DataFusion did, keeping its error this time.
        let state = self
            .inner
            .session_store()
            .get_session()
            .upgrade()
            .and_then(|s| s.read().as_any().downcast_ref::<SessionState>().cloned());
        let (Some(state), Ok(table_url)) = (state, ListingTableUrl::parse(url)) else {
            return Ok(None);
        };
        match ListingTableConfig::new(table_url)
            .infer_options(&state)
            .await
        {
            Ok(_) => Ok(None),
            // DataFusion reports a path with no files as an internal error (a bug report
            // request); it is an ordinary mistake.
            Err(e) if e.to_string().contains("No files for table") => {
                Err(DataFusionError::Plan(format!(
                    "cannot read '{url}': no file at '{url}' (a missing path, an empty folder or an empty S3 prefix)"
                )))
            }
            Err(e) => Err(DataFusionError::Context(
                format!("cannot read '{url}'"),
                Box::new(e),
            )),
        }
    }
}

/// Like [`SessionContext::enable_url_table`], with errors that say why a URL failed.
pub(crate) fn enable_url_tables(ctx: SessionContext) -> SessionContext {
    let state = ctx.state();
    let inner = Arc::new(DynamicListTableFactory::new(Default::default()));
    let catalog_list = Arc::new(DynamicFileCatalog::new(
        Arc::clone(state.catalog_list()),
        Arc::new(ExplainingUrlTables {
            inner: Arc::clone(&inner),
        }),
    ));
    let ctx: SessionContext = SessionStateBuilder::new_from_existing(state)
        .with_catalog_list(catalog_list)
        .build()
        .into();
    inner.session_store().with_state(ctx.state_weak_ref());
    ctx
}
