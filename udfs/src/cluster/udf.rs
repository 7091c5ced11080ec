//! SQL glue for `diversity_cluster(embedding, centroids)`.
//!
//! The centroids (a registered table, or a Parquet file/folder path or URL with the `kmeans_fit`
//! schema) are read once per query and reused for every batch of it; `crate::source` says how a
//! query is recognised and how a replaced table or file is noticed.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TypeSignature, Volatility,
};

use super::assign::{assign, Centroids};
use super::centroids::read_centroids;
use super::vectors::{check_finite, check_type, vectors};
use crate::args::{
    check_arity, check_text, literal_string, pass_through, scalar_string, signature,
};
use crate::source::{Loaded, Parse};

const NAME: &str = "diversity_cluster";

/// Where `diversity_cluster` reads its centroids (the name it has always had).
pub type CentroidSource = crate::source::Source;

/// `diversity_cluster(embedding, centroids)` reading centroids from `source`.
pub fn diversity_cluster_udf(source: CentroidSource) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(DiversityCluster::new(source)))
}

/// Output struct fields: `cluster` Int32, `distance` Float64.
pub fn output_fields() -> Fields {
    Fields::from(vec![
        Field::new("cluster", DataType::Int32, true),
        Field::new("distance", DataType::Float64, true),
    ])
}

/// Nearest centroid of each embedding and the distance to it.
pub struct DiversityCluster {
    signature: Signature,
    centroids: Loaded<Centroids>,
}

crate::source::source_identity!(DiversityCluster, NAME, centroids);

impl DiversityCluster {
    fn new(source: CentroidSource) -> Self {
        Self {
            signature: signature(
                vec![TypeSignature::Exact(vec![
                    DataType::new_list(DataType::Float32, true),
                    DataType::Utf8,
                ])],
                Volatility::Stable,
            ),
            centroids: Loaded::new(NAME, "centroids", source, Parse::Table(parse_centroids)),
        }
    }
}

fn parse_centroids(name: &str, batches: &[RecordBatch]) -> Result<Centroids> {
    read_centroids(NAME, name, batches)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Nearest centroid of an embedding and the distance to it, under the centroids' metric \
         ('cosine': 1 − cos; 'l2': Euclidean). centroids names a registered table or a Parquet \
         file/folder path or URL (local or s3://) with the kmeans_fit schema (cluster ids unique, \
         centroids finite, one metric); it is read once per query. On a Ballista cluster only \
         paths and URLs work (executors have no session tables). Returns Struct{cluster Int32, \
         distance Float64}; NULL embedding gives NULL.",
        "diversity_cluster(embedding, centroids)",
    )
    .with_sql_example(
        "CREATE TABLE c AS SELECT * FROM kmeans_fit(docs, 'emb', 64);\nSELECT id, diversity_cluster(emb, 'c') AS dc FROM docs;",
    )
    .with_argument("embedding", "List or FixedSizeList of Float32 or Float64.")
    .with_argument("centroids", "Constant string: table name, or Parquet file/folder path or URL.")
    .with_related_udf("kmeans_fit")
    .with_related_udf("embed")
    .build()
});

impl ScalarUDFImpl for DiversityCluster {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(output_fields()))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        check_arity(NAME, args.arg_fields.len(), 2..=2, "embedding, centroids")?;
        check_type(args.arg_fields[0].data_type(), NAME, "embedding")?;
        match args.scalar_arguments.get(1) {
            Some(Some(v)) => {
                if literal_string(Some(v), NAME, "centroids")?.is_none() {
                    return plan_err!("{NAME}: argument 'centroids' must not be NULL");
                }
            }
            _ => check_text(NAME, "centroids", args.arg_fields[1].data_type())?,
        }
        Ok(Arc::new(Field::new(
            NAME,
            DataType::Struct(output_fields()),
            true,
        )))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [embedding, centroids] = take_function_args(NAME, &args.args)?;
        let Some(name) = scalar_string(centroids, NAME, "centroids")? else {
            return exec_err!("{NAME}: argument 'centroids' must not be NULL");
        };
        let centroids = self.centroids.get(&name, &args.return_field)?;
        let array = embedding.to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(assign_array(
            &array, &centroids, &name,
        )?))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Assign every row of an embedding array.
fn assign_array(array: &ArrayRef, c: &Centroids, name: &str) -> Result<ArrayRef> {
    let rows = vectors(array, NAME, "embedding")?;
    let n = rows.len();
    let mut valid = Vec::with_capacity(n);
    let mut packed: Vec<f32> = Vec::new();
    let contiguous = rows.contiguous(0, n);
    for i in 0..n {
        match rows.row(i) {
            Some(row) => {
                if row.len() != c.dim() {
                    return exec_err!(
                        "{NAME}: embedding dimension {} does not match the dimension {} of centroids '{name}'",
                        row.len(),
                        c.dim()
                    );
                }
                check_finite(row, NAME, "embedding")?;
                if contiguous.is_none() {
                    packed.extend_from_slice(row);
                }
                valid.push(true);
            }
            None => valid.push(false),
        }
    }
    let x = contiguous.unwrap_or(&packed);
    // DataFusion already runs one partition per core: one thread here.
    let (labels, distances) = assign(x, c, 1);
    let mut cluster = Vec::with_capacity(n);
    let mut distance = Vec::with_capacity(n);
    let mut next = 0;
    for v in &valid {
        if *v {
            cluster.push(c.ids()[labels[next]]);
            distance.push(distances[next]);
            next += 1;
        } else {
            cluster.push(0);
            distance.push(0.0);
        }
    }
    let nulls = NullBuffer::from(valid);
    Ok(Arc::new(StructArray::try_new(
        output_fields(),
        vec![
            Arc::new(Int32Array::new(cluster.into(), Some(nulls.clone()))),
            Arc::new(Float64Array::new(distance.into(), Some(nulls.clone()))),
        ],
        Some(nulls),
    )?))
}
