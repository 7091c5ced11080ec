//! S3 stores with bounded retries, for both ways the shell meets S3: URL tables read with the
//! standard `AWS_*` environment variables, and `CREATE EXTERNAL TABLE` / `COPY` with
//! `aws.*` OPTIONS.
//!
//! object_store retries connection errors up to 10 times within 3 minutes by default, and
//! datafusion-cli exposes no setting for it; an unreachable endpoint would hang a query for
//! minutes. We rebuild every S3 store the shell uses with [`S3Settings`] applied.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::dml::CopyTo;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion_cli::cli_context::CliSessionContext;
use datafusion_cli::object_storage::{get_s3_object_store_builder, AwsOptions};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

/// Retry and timeout bounds applied to every S3 store the shell builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Settings {
    /// Retries of a failed request (object_store's default is 10).
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt (object_store's default: 3 min).
    pub retry_timeout: Duration,
    /// Time allowed to open a TCP connection (object_store's default: 5 s).
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, connection to last byte (object_store's default:
    /// 30 s). An endpoint that accepts connections but never answers fails after this (times
    /// the retries).
    pub request_timeout: Duration,
}

impl Default for S3Settings {
    /// Worst case for a dead endpoint about two connect timeouts (~6 s), under the 10 s a user
    /// waits before suspecting a hang; a slow but live store still gets 3 retries.
    fn default() -> Self {
        Self {
            max_retries: 3,
            retry_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl S3Settings {
    /// Apply these bounds to an S3 builder (keeps every other option the builder has).
    pub fn apply(&self, builder: AmazonS3Builder) -> AmazonS3Builder {
        builder
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: self.max_retries,
                retry_timeout: self.retry_timeout,
            })
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                format!("{}ms", self.connect_timeout.as_millis()),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                format!("{}ms", self.request_timeout.as_millis()),
            )
    }

    /// An S3 store for `url` from the standard `AWS_*` environment variables, when they carry
    /// static credentials (or ask to skip signing). `None` leaves the store to datafusion-cli,
    /// which also consults the AWS SDK's profile / SSO / instance credential chain.
    fn store_from_env(&self, url: &Url) -> Option<Result<Arc<dyn ObjectStore>>> {
        let has_static_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
            && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some();
        let skip_signature = std::env::var("AWS_SKIP_SIGNATURE")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        if url.scheme() != "s3" || !(has_static_keys || skip_signature) {
            return None;
        }
        let bucket = url.host_str()?;
        if let Err(e) = check_env_endpoint() {
            return Some(Err(e));
        }
        let builder = self.apply(AmazonS3Builder::from_env().with_bucket_name(bucket));
        Some(
            builder
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| DataFusionError::ObjectStore(Box::new(e))),
        )
    }
}

/// Object store registry that builds bounded-retry S3 stores from `AWS_*` environment
/// variables on first use of an `s3://` URL, and otherwise delegates to `inner`.
#[derive(Debug)]
pub struct SamplemixStoreRegistry {
    inner: Arc<dyn ObjectStoreRegistry>,
    s3: S3Settings,
}

impl SamplemixStoreRegistry {
    /// Wrap `inner` (e.g. datafusion-cli's instrumented registry).
    pub fn new(inner: Arc<dyn ObjectStoreRegistry>, s3: S3Settings) -> Self {
        Self { inner, s3 }
    }
}

impl ObjectStoreRegistry for SamplemixStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match self.inner.get_store(url) {
            Ok(store) => Ok(store),
            Err(missing) => match self.s3.store_from_env(url) {
                Some(built) => {
                    self.inner.register_store(url, built?);
                    self.inner.get_store(url)
                }
                None => Err(missing),
            },
        }
    }
}

/// The shell's session: a [`SessionContext`] whose S3 stores for `CREATE EXTERNAL TABLE` and
/// `COPY ... TO 's3://...'` are rebuilt from the statement's `aws.*` OPTIONS with
/// [`S3Settings`] applied, before the statement runs.
pub struct SamplemixContext {
    ctx: SessionContext,
    s3: S3Settings,
    remote: bool,
}

impl SamplemixContext {
    /// Wrap a context built by [`crate::new_context`].
    pub fn new(ctx: SessionContext, s3: S3Settings) -> Self {
        Self {
            ctx,
            s3,
            remote: false,
        }
    }

    /// Mark the context as a Ballista client: queries that read tables held in this process's
    /// memory are refused before they are sent (executors cannot read them).
    pub fn with_remote(mut self, remote: bool) -> Self {
        self.remote = remote;
        self
    }

    /// The wrapped DataFusion context.
    pub fn inner(&self) -> &SessionContext {
        &self.ctx
    }

    async fn rebuild_s3_store(
        &self,
        location: &str,
        options: &std::collections::HashMap<String, String>,
    ) -> Result<()> {
        let table_url = ListingTableUrl::parse(location)?;
        if table_url.scheme() != "s3" {
            return Ok(());
        }
        for (key, value) in options {
            if key.eq_ignore_ascii_case("aws.endpoint") {
                check_endpoint(&format!("OPTIONS '{key}'"), value)?;
            }
        }
        check_env_endpoint()?;
        let mut table_options = self.ctx.state().default_table_options();
        // Only the store's own options: format options need a format set first.
        let aws: std::collections::HashMap<String, String> = options
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("aws."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        table_options.alter_with_string_hash_map(&aws)?;
        let aws = table_options
            .extensions
            .get::<AwsOptions>()
            .cloned()
            .unwrap_or_default();
        let builder = get_s3_object_store_builder(table_url.as_ref(), &aws, false).await?;
        let store = self
            .s3
            .apply(builder)
            .build()
            .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
        self.ctx
            .register_object_store(table_url.as_ref(), Arc::new(store));
        Ok(())
    }
}

impl SamplemixContext {
    /// `COPY ... TO target` that never leaves a partial result: the rows are written to a
    /// hidden sibling of the target (same store, same extension, so DataFusion writes the same
    /// file-or-folder layout), and published only after the write succeeded: a file by one
    /// rename (atomic on a local disk; copy then delete on S3, so readers see the old or the
    /// new object), a folder file by file. On failure the temporary output is removed and the
    /// previous output stays as it was.
    async fn atomic_copy(&self, copy: &CopyTo) -> Result<DataFrame> {
        let target = copy.output_url.clone();
        let temp = temp_sibling(&target);
        let plan = LogicalPlan::Copy(CopyTo {
            output_url: temp.clone(),
            ..copy.clone()
        });
        let final_url = ListingTableUrl::parse(&target)?;
        let temp_url = ListingTableUrl::parse(&temp)?;
        let store = self.ctx.runtime_env().object_store(&final_url)?;
        remove_stale_temps(&store, &final_url).await;
        let written = match self.ctx.execute_logical_plan(plan).await {
            Ok(df) => df.collect().await,
            Err(e) => Err(e),
        };
        let published = match written {
            Ok(batches) => publish(&store, &temp_url, &final_url)
                .await
                .map(|_| batches),
            Err(e) => Err(e),
        };
        match published {
            Ok(batches) => self.values(batches),
            Err(e) => {
                remove_all(&store, &temp_url).await;
                if self.remote {
                    // Tasks of a failed distributed job that were already running may still
                    // finish their files: sweep again once they had time to (the next COPY to
                    // this target removes anything later still).
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    remove_all(&store, &temp_url).await;
                }
                Err(DataFusionError::Context(
                    format!("COPY to '{target}' failed; any previous output there is unchanged"),
                    Box::new(e),
                ))
            }
        }
    }
}

impl SamplemixContext {
    /// A query answering `batches` (the small result of a COPY) as a VALUES plan: unlike an
    /// in-memory table it serialises, so a Ballista client can run it too.
    fn values(&self, batches: Vec<RecordBatch>) -> Result<DataFrame> {
        if batches.is_empty() {
            return self.ctx.read_empty();
        }
        match samplemix_udfs::plans::batches_as_values(&batches)? {
            Some(plan) => Ok(DataFrame::new(self.ctx.state(), plan)),
            // Only a schema to answer with: no VALUES, and no rows to carry anyway.
            None => self.ctx.read_batches(batches),
        }
    }
}

/// A hidden, unique sibling of a COPY target with the same extension and trailing slash.
fn temp_sibling(target: &str) -> String {
    let folder = target.ends_with('/');
    let trimmed = target.trim_end_matches('/');
    let (parent, name) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    format!(
        "{parent}.samplemix-tmp-{unique}-{name}{}",
        if folder { "/" } else { "" }
    )
}

/// Move what a COPY wrote at `temp` to `target`: one object, or every object under a prefix.
/// A folder target's previous files are deleted once the new ones are in place, so a rerun
/// replaces the output instead of adding to it (a reader listing the folder during those
/// moves can see old and new files together; afterwards only the new ones).
async fn publish(
    store: &Arc<dyn ObjectStore>,
    temp: &ListingTableUrl,
    target: &ListingTableUrl,
) -> Result<()> {
    if store.head(temp.prefix()).await.is_ok() {
        store.rename(temp.prefix(), target.prefix()).await?;
        return Ok(());
    }
    let previous: Vec<_> = match store.list(Some(target.prefix())).try_collect().await {
        Ok(files) => files,
        // A target that does not exist yet has nothing to replace.
        Err(object_store::Error::NotFound { .. }) => vec![],
        Err(e) => return Err(e.into()),
    };
    let files: Vec<_> = store.list(Some(temp.prefix())).try_collect().await?;
    let from = temp.prefix().as_ref().to_string();
    let to = target.prefix().as_ref().trim_end_matches('/').to_string();
    let mut written = std::collections::HashSet::new();
    for meta in files {
        let rest = meta.location.as_ref()[from.len()..].trim_start_matches('/');
        let dest = object_store::path::Path::from(format!("{to}/{rest}"));
        store.rename(&meta.location, &dest).await?;
        written.insert(dest);
    }
    for old in previous {
        if !written.contains(&old.location) {
            store.delete(&old.location).await?;
        }
    }
    if temp.scheme() == "file" {
        // Empty local folders left by the moves.
        let _ = std::fs::remove_dir_all(std::path::Path::new("/").join(from));
    }
    Ok(())
}

/// Remove what earlier failed COPYs to `target` left in their hidden temporary siblings
/// (`.samplemix-tmp-<pid>-<nanos>-<name>`): a distributed COPY's tasks can outlive its failure.
/// Two COPYs to one target at the same time are not supported (they would also race on the
/// target itself).
async fn remove_stale_temps(store: &Arc<dyn ObjectStore>, target: &ListingTableUrl) {
    let path = target.prefix().as_ref().trim_end_matches('/');
    let (parent, name) = match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    let parent = object_store::path::Path::from(parent);
    let Ok(listing) = store.list_with_delimiter(Some(&parent)).await else {
        return;
    };
    let stale = |p: &object_store::path::Path| {
        p.filename()
            .is_some_and(|f| f.starts_with(".samplemix-tmp-") && f.ends_with(&format!("-{name}")))
    };
    for meta in listing.objects.iter().filter(|m| stale(&m.location)) {
        let _ = store.delete(&meta.location).await;
    }
    for folder in listing.common_prefixes.iter().filter(|p| stale(p)) {
        remove_prefix(store, folder, target.scheme() == "file").await;
    }
}

/// Best-effort removal of a failed COPY's temporary output.
async fn remove_all(store: &Arc<dyn ObjectStore>, temp: &ListingTableUrl) {
    remove_prefix(store, temp.prefix(), temp.scheme() == "file").await;
}

/// Best-effort removal of one object or every object under a prefix (and, on a local disk,
/// the folders left empty).
async fn remove_prefix(
    store: &Arc<dyn ObjectStore>,
    prefix: &object_store::path::Path,
    local: bool,
) {
    // One object: S3 answers a DELETE of a missing key with success, so ask first.
    if store.head(prefix).await.is_ok() && store.delete(prefix).await.is_ok() && !local {
        return;
    }
    if let Ok(files) = store.list(Some(prefix)).try_collect::<Vec<_>>().await {
        for meta in files {
            let _ = store.delete(&meta.location).await;
        }
    }
    if local {
        let _ = std::fs::remove_dir_all(std::path::Path::new("/").join(prefix.as_ref()));
    }
}

#[async_trait]
impl CliSessionContext for SamplemixContext {
    fn task_ctx(&self) -> Arc<TaskContext> {
        self.ctx.task_ctx()
    }

    fn session_state(&self) -> SessionState {
        self.ctx.state()
    }

    fn register_object_store(
        &self,
        url: &Url,
        object_store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore + 'static>> {
        self.ctx.register_object_store(url, object_store)
    }

    fn register_table_options_extension_from_scheme(&self, scheme: &str) {
        CliSessionContext::register_table_options_extension_from_scheme(&self.ctx, scheme)
    }

    async fn execute_logical_plan(&self, plan: LogicalPlan) -> Result<DataFrame> {
        if self.remote {
            if let Some(table) = memory_table_in(&plan) {
                return Err(DataFusionError::Plan(format!(
                    "'{table}' is a table in this client's memory (CREATE TABLE ... AS, or a table function's in-memory result); in --remote mode the executors cannot read it. Write it to Parquet with COPY ... TO 's3://...' (or a path every executor sees) and CREATE EXTERNAL TABLE it, as sql/pipeline.sql does"
                )));
            }
        }
        let mut custom_endpoint_table = None;
        match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
                for location in &cmd.locations {
                    self.rebuild_s3_store(location, &cmd.options).await?;
                }
                if has_custom_endpoint(&cmd.options) {
                    custom_endpoint_table = cmd.locations.first().cloned();
                }
            }
            LogicalPlan::Copy(copy) => {
                self.rebuild_s3_store(&copy.output_url, &copy.options)
                    .await?;
                return self.atomic_copy(copy).await;
            }
            _ => {}
        }
        match (
            self.ctx.execute_logical_plan(plan).await,
            custom_endpoint_table,
        ) {
            // datafusion-cli answers any S3 error of CREATE EXTERNAL TABLE by asking AWS for the
            // bucket's region and retrying; with a custom endpoint (MinIO, moto, R2 ...) that
            // lookup is meaningless and hides the real error, so we keep the error as it is.
            (Err(e @ DataFusionError::ObjectStore(_)), Some(location)) => {
                Err(DataFusionError::Context(
                    format!("CREATE EXTERNAL TABLE at '{location}'"),
                    Box::new(e),
                ))
            }
            (result, _) => result,
        }
    }
}

/// The first table `plan` reads (views and subqueries included) whose data lives in this
/// process's memory.
fn memory_table_in(plan: &LogicalPlan) -> Option<String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::{source_as_provider, MemTable, ViewTable};

    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Ok(provider) = source_as_provider(&scan.source) {
                if provider.downcast_ref::<MemTable>().is_some() {
                    found = Some(scan.table_name.to_string());
                } else if let Some(view) = provider.downcast_ref::<ViewTable>() {
                    found = memory_table_in(view.logical_plan());
                }
            }
        }
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Whether S3 requests go to an endpoint other than AWS's (OPTIONS or environment).
fn has_custom_endpoint(options: &std::collections::HashMap<String, String>) -> bool {
    options
        .keys()
        .any(|k| k.eq_ignore_ascii_case("aws.endpoint"))
        || std::env::var_os("AWS_ENDPOINT").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
}

/// A malformed endpoint would make object_store panic while it builds a request (an invalid
/// port or URI is unwrapped there): check it first, naming the setting.
pub fn check_endpoint(setting: &str, value: &str) -> Result<()> {
    let problem = match Url::parse(value.trim()) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            format!("the scheme must be http or https, got '{}'", url.scheme())
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => "it has no host".to_string(),
        Ok(_) => return Ok(()),
        Err(e) => e.to_string(),
    };
    Err(DataFusionError::Configuration(format!(
        "S3 endpoint {setting} = '{value}' is not a valid endpoint URL ({problem}); expected e.g. 'http://127.0.0.1:9000' or 'https://s3.example.com'"
    )))
}

/// [`check_endpoint`] for the `AWS_ENDPOINT_URL` / `AWS_ENDPOINT` environment variables (the
/// shell checks them at start-up: every path that builds an S3 store from the environment,
/// datafusion-cli's own included, is then safe).
pub fn check_env_endpoint() -> Result<()> {
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"] {
        if let Ok(value) = std::env::var(var) {
            check_endpoint(&format!("environment variable {var}"), &value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn malformed_endpoints_are_clear_errors() {
        for bad in [
            "http://127.0.0.1:99999",
            "not a url",
            "ftp://x:1",
            "http://",
        ] {
            let e = check_endpoint("OPTIONS 'aws.endpoint'", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a valid endpoint URL"), "{bad}: {e}");
            assert!(e.contains("aws.endpoint"), "{e}");
        }
        for good in [
            "http://127.0.0.1:9000",
            "https://s3.example.com",
            " http://localhost:5000/ ",
        ] {
            assert!(check_endpoint("x", good).is_ok(), "{good}");
        }
    }
}
