//! Opening `scored` and `centroids`: the columns they must have (stage 0), the centroids read
//! and validated as `diversity_cluster` validates them, and the typed scored rows.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_datafusion_err, plan_err};
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::logical_expr::{cast, col};
use datafusion::prelude::SessionContext;

use super::columns::{CLUSTER, DISTANCE, QUALITY, TOKENS};
use super::params::Params;
use super::NAME;
use crate::args::is_string;
use crate::cluster::assign::Centroids;
use crate::cluster::centroids::read_centroids;
use crate::cluster::vectors::check_type;
use crate::io::{is_location, no_such_column, open_table};

/// The two inputs of a call.
pub(crate) struct Inputs {
    /// `scored`, as a query (each use of it reads it again).
    pub scored: DataFrame,
    /// The validated centroids.
    pub centroids: Centroids,
}

/// A column `table` must have, with the types it may have.
struct Required {
    argument: &'static str,
    column: &'static str,
    ok: fn(&DataType) -> bool,
    expected: &'static str,
}

const REQUIRED: [Required; 8] = [
    Required {
        argument: "scored",
        column: "id",
        ok: |_| true,
        expected: "any type",
    },
    Required {
        argument: "scored",
        column: "quality",
        ok: DataType::is_numeric,
        expected: "numeric",
    },
    Required {
        argument: "scored",
        column: "cluster",
        ok: DataType::is_integer,
        expected: "an integer",
    },
    Required {
        argument: "scored",
        column: "distance",
        ok: DataType::is_numeric,
        expected: "numeric",
    },
    Required {
        argument: "scored",
        column: "tokens",
        ok: DataType::is_integer,
        expected: "an integer",
    },
    Required {
        argument: "centroids",
        column: "cluster",
        ok: DataType::is_integer,
        expected: "an integer",
    },
    Required {
        argument: "centroids",
        column: "centroid",
        ok: |t| check_type(t, NAME, "centroids").is_ok(),
        expected: "a List or FixedSizeList of Float32/Float64",
    },
    Required {
        argument: "centroids",
        column: "metric",
        ok: is_string,
        expected: "a string ('cosine' or 'l2')",
    },
];

impl Inputs {
    /// Open both tables, check their columns, read the centroids.
    pub(crate) async fn open(ctx: &SessionContext, p: &Params) -> Result<Inputs> {
        let scored = open(ctx, &p.scored, "scored").await?;
        let centroids = open(ctx, &p.centroids, "centroids").await?;
        for r in &REQUIRED {
            let (df, table) = if r.argument == "scored" {
                (&scored, &p.scored)
            } else {
                (&centroids, &p.centroids)
            };
            let Ok(field) = df.schema().field_with_unqualified_name(r.column) else {
                return Err(no_such_column(df, table, r.column, NAME, r.argument));
            };
            if !(r.ok)(field.data_type()) {
                return plan_err!(
                    "{NAME}: argument '{}': column '{}' of '{table}' must be {}, got {}",
                    r.argument,
                    r.column,
                    r.expected,
                    field.data_type()
                );
            }
        }
        let batches = centroids.collect().await?;
        let centroids = read_centroids(NAME, &p.centroids, &batches)?;
        Ok(Inputs { scored, centroids })
    }

    /// The scored rows, typed: `id`, [`QUALITY`], [`CLUSTER`], [`DISTANCE`], [`TOKENS`].
    pub(crate) fn rows(&self) -> Result<DataFrame> {
        self.scored.clone().select(vec![
            col("id"),
            cast(col("quality"), DataType::Float64).alias(QUALITY),
            cast(col("cluster"), DataType::Int64).alias(CLUSTER),
            cast(col("distance"), DataType::Float64).alias(DISTANCE),
            cast(col("tokens"), DataType::Int64).alias(TOKENS),
        ])
    }
}

/// A registered table (its name) or a file, folder or URL.
async fn open(ctx: &SessionContext, name: &str, argument: &str) -> Result<DataFrame> {
    if is_location(name) {
        return open_table(ctx, name, NAME, argument).await;
    }
    ctx.table(name).await.map_err(|_| {
        plan_datafusion_err!(
            "{NAME}: argument '{argument}': table '{name}' not found; register it first (CREATE TABLE / CREATE EXTERNAL TABLE / CREATE VIEW) or give a path"
        )
    })
}
