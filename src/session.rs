//! The shell's session: a [`SessionContext`] whose statements the shell routes through samplemix
//! before DataFusion runs them:
//!
//! - `CREATE EXTERNAL TABLE` / `COPY ... TO 's3://...'`: the S3 store is rebuilt from the
//!   statement's `aws.*` OPTIONS with bounded retries ([`crate::S3Settings`]);
//! - `COPY`: written by [`crate::copy`] (never loses data, one writer per target);
//! - `CREATE TABLE ... AS`: the rows are counted against the memory pool (`-m`) for as long as
//!   the table exists (DataFusion keeps them outside the pool);
//! - with `--remote`, a query that reads a table held in this process's memory is refused
//!   before it is sent (executors cannot read it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::{provider_as_source, MemTable};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{CreateMemoryTable, DdlStatement, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use datafusion_cli::cli_context::CliSessionContext;
use datafusion_cli::object_storage::{get_s3_object_store_builder, AwsOptions};
use futures::StreamExt;
use object_store::ObjectStore;
use samplemix_udfs::StatementDeadline;
use url::Url;

use crate::s3::{
    check_aws_options, check_credentials, check_endpoint, check_env_credentials,
    check_env_endpoint, check_s3_location, S3Settings,
};

/// The shell's session (see the module documentation).
pub struct SamplemixContext {
    ctx: SessionContext,
    s3: S3Settings,
    remote: bool,
    /// The memory each `CREATE TABLE ... AS` table holds, by table name.
    tables: Mutex<HashMap<String, MemoryReservation>>,
}

impl SamplemixContext {
    /// Wrap a context built by [`crate::new_context`].
    pub fn new(ctx: SessionContext, s3: S3Settings) -> Self {
        Self {
            ctx,
            s3,
            remote: false,
            tables: Mutex::new(HashMap::new()),
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

    /// The time limit of the statement now running ([`crate::session_config`] installs it):
    /// table functions that work while planning and COPY obey it.
    pub fn deadline(&self) -> Arc<StatementDeadline> {
        StatementDeadline::of(&self.ctx.state())
    }

    async fn rebuild_s3_store(
        &self,
        location: &str,
        options: &HashMap<String, String>,
    ) -> Result<()> {
        check_s3_location(location)?;
        let table_url = ListingTableUrl::parse(location)?;
        if table_url.scheme() != "s3" {
            return Ok(());
        }
        check_aws_options(options)?;
        for (key, value) in options {
            if key.eq_ignore_ascii_case("aws.endpoint") {
                check_endpoint(&format!("OPTIONS '{key}'"), value)?;
            }
        }
        check_env_endpoint()?;
        let mut table_options = self.ctx.state().default_table_options();
        // Only the store's own options: format options need a format set first.
        let aws: HashMap<String, String> = options
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
        check_credentials(
            aws.access_key_id.is_some(),
            aws.secret_access_key.is_some(),
            "OPTIONS 'aws.access_key_id' / 'aws.secret_access_key'",
        )?;
        if aws.access_key_id.is_none() && aws.secret_access_key.is_none() {
            check_env_credentials()?;
        }
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

    /// `CREATE TABLE ... AS`: the rows are collected here, each batch reserved from the memory
    /// pool (an error naming the table when the pool cannot hold them), then handed to
    /// DataFusion as a table over those same batches. The reservation lives as long as the
    /// table.
    async fn create_memory_table(&self, cmd: &CreateMemoryTable) -> Result<DataFrame> {
        let name = cmd.name.to_string();
        let exists = self.ctx.table_exist(cmd.name.clone())?;
        if exists && (cmd.if_not_exists || !cmd.or_replace) {
            // Nothing to compute: DataFusion answers (an empty result or its error).
            return self
                .ctx
                .execute_logical_plan(LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(
                    cmd.clone(),
                )))
                .await;
        }
        let reservation = MemoryConsumer::new(format!("CREATE TABLE {name}"))
            .register(&self.ctx.runtime_env().memory_pool);
        let df = DataFrame::new(self.ctx.state(), cmd.input.as_ref().clone());
        let schema = Arc::clone(df.schema().inner());
        // All partitions at once, as DataFusion's collect does: a repartitioned plan feeds its
        // partitions together and stalls when one is read to the end before the next.
        let (held_memory, table_name) = (&reservation, &name);
        let partitions = futures::future::try_join_all(
            df.execute_stream_partitioned()
                .await?
                .into_iter()
                .map(|mut stream| async move {
                    let mut batches = Vec::new();
                    while let Some(batch) = stream.next().await {
                        let batch = batch?;
                        held_memory
                            .try_grow(batch.get_array_memory_size())
                            .map_err(|e| {
                                DataFusionError::ResourcesExhausted(format!(
                                    "CREATE TABLE {table_name} ... AS: the table's rows need more memory than the session's memory pool allows ({}); write them to Parquet with COPY ... TO and CREATE EXTERNAL TABLE, or raise the limit (samplemix -m)",
                                    e.strip_backtrace()
                                ))
                            })?;
                        batches.push(batch);
                    }
                    Ok::<_, DataFusionError>(batches)
                }),
        )
        .await?;
        let held = Arc::new(MemTable::try_new(Arc::clone(&schema), partitions)?);
        let input =
            LogicalPlanBuilder::scan(name.clone(), provider_as_source(held), None)?.build()?;
        let create = CreateMemoryTable {
            input: Arc::new(input),
            ..cmd.clone()
        };
        let result = self
            .ctx
            .execute_logical_plan(LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)))
            .await?;
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, reservation);
        Ok(result)
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
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) if !self.remote => {
                return self.create_memory_table(cmd).await;
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) => {
                let (name, reference) = (cmd.name.to_string(), cmd.name.clone());
                let result = self.ctx.execute_logical_plan(plan).await;
                if result.is_ok() && !self.ctx.table_exist(reference).unwrap_or(true) {
                    self.tables
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&name);
                }
                return result;
            }
            LogicalPlan::Copy(copy) => {
                self.rebuild_s3_store(&copy.output_url, &copy.options)
                    .await?;
                let deadline = self.deadline().get();
                let batches =
                    crate::copy::atomic_copy(&self.ctx, copy, deadline, self.remote).await?;
                return self.values(batches);
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
    use datafusion::datasource::{source_as_provider, ViewTable};

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
fn has_custom_endpoint(options: &HashMap<String, String>) -> bool {
    options
        .keys()
        .any(|k| k.eq_ignore_ascii_case("aws.endpoint"))
        || std::env::var_os("AWS_ENDPOINT").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some()
}
