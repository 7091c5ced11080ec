//! `samplemix_cluster_figures(cluster, names, table)`: an internal function of the plans
//! `samplemix_weights` builds (registered so that every process of a Ballista cluster can read
//! those plans; not meant to be called by hand, and not listed by `samplemix_help()`).
//!
//! It gives each row the per-cluster figures of its cluster (diversity, normalised diversity,
//! softmax factor, ...) as one struct, from a constant table that travels inside the plan as
//! one base64 string. Why a string: DataFusion's planner formats list constants item by item
//! each time it names or checks an expression (dozens of times per query), which took 10-17 ms
//! of serial planning for k = 1,024 clusters; a string is copied, not formatted. Why one
//! struct: the key is looked up once per row, not once per figure.
//!
//! The table: base64 (unpadded) of little-endian 8-byte words: k, then k Int64 cluster ids,
//! then k rows of as many Float64 figures as `names` has comma-separated names.

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::lookup::KeyIndex;
use crate::args::{pass_through, signature, udf_singleton};

/// The function's name.
pub const NAME: &str = "samplemix_cluster_figures";

udf_singleton!(
    /// `samplemix_cluster_figures(cluster, names, table)` (internal, see the module docs).
    figures_udf,
    Figures {
        signature: signature(vec![], Volatility::Immutable),
    }
);

/// See the module documentation.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Figures {
    signature: Signature,
}

/// The accessor's name.
pub const FIGURE_NAME: &str = "samplemix_cluster_figure";

udf_singleton!(
    /// `samplemix_cluster_figure(figures, name)` (internal): one figure of the struct.
    figure_udf,
    Figure {
        signature: signature(vec![], Volatility::Immutable),
    }
);

/// One Float64 figure of a [`Figures`] struct. Why not `get_field`: DataFusion pushes field
/// accesses towards the scan, copying the struct's call into each of them, so the lookup would
/// run once per figure; this accessor stays where it is (the struct is computed once), and when
/// it reads the only figure a plan uses it asks the lookup for that figure alone
/// ([`ScalarUDFImpl::simplify`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Figure {
    signature: Signature,
}

/// A figure of the struct `figures`.
pub fn figure(figures: Expr, name: &str) -> Expr {
    figure_udf().call(vec![
        figures,
        Expr::Literal(ScalarValue::Utf8(Some(name.to_string())), None),
    ])
}

impl ScalarUDFImpl for Figure {
    fn name(&self) -> &str {
        FIGURE_NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn simplify(
        &self,
        args: Vec<Expr>,
        _info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        use datafusion::logical_expr::expr::ScalarFunction;
        use datafusion::logical_expr::simplify::ExprSimplifyResult;
        let (
            Some(Expr::ScalarFunction(call)),
            Some(Expr::Literal(ScalarValue::Utf8(Some(name)), _)),
        ) = (args.first(), args.get(1))
        else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        if call.func.name() != NAME || call.args.len() != 3 {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let mut inner = call.args.clone();
        inner.push(Expr::Literal(ScalarValue::Utf8(Some(name.clone())), None));
        let narrowed = Expr::ScalarFunction(ScalarFunction::new_udf(figures_udf(), inner));
        Ok(ExprSimplifyResult::Simplified(figure(narrowed, name)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [figures, name] = take_function_args(FIGURE_NAME, &args.args)?;
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))) = name else {
            return exec_err!("{FIGURE_NAME}: 'name' must be a constant string");
        };
        let scalar = matches!(figures, ColumnarValue::Scalar(_));
        let array = figures.to_array(if scalar { 1 } else { args.number_rows })?;
        let Some(column) = array.as_struct_opt().and_then(|s| s.column_by_name(name)) else {
            return exec_err!("{FIGURE_NAME}: no figure named '{name}'");
        };
        let column = Arc::clone(column);
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&column, 0)?)
        } else {
            ColumnarValue::Array(column)
        })
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Internal to samplemix_weights' plans: the per-cluster figures of each row's cluster as \
         a struct, from a constant packed table. Not meant to be called by hand.",
        "samplemix_cluster_figures(cluster, names, table)",
    )
    .build()
});

/// base64 that takes its padding or leaves it out.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A decoded table: the key index and the figures column by column.
#[derive(Debug)]
pub(crate) struct Table {
    index: KeyIndex,
    width: usize,
    clusters: usize,
    columns: Vec<f64>,
}

impl Table {
    /// The number of clusters.
    pub(crate) fn len(&self) -> usize {
        self.clusters
    }

    /// Figure `f` of every cluster.
    fn column(&self, f: usize) -> &[f64] {
        let n = self.clusters;
        &self.columns[f * n..(f + 1) * n]
    }

    /// Figure `f` of the cluster at `position`.
    #[cfg(test)]
    fn figure(&self, position: usize, f: usize) -> f64 {
        self.column(f)[position]
    }
}

/// The packed text of a table of `ids` and their rows of figures (each row `width` long).
pub fn pack(ids: &[i64], rows: &[Vec<f64>]) -> String {
    let mut words: Vec<u64> = Vec::with_capacity(1 + ids.len() * 2);
    words.push(ids.len() as u64);
    words.extend(ids.iter().map(|id| *id as u64));
    words.extend(rows.iter().flatten().map(|v| v.to_bits()));
    let bytes: Vec<u8> = words.into_iter().flat_map(u64::to_le_bytes).collect();
    BASE64.encode(bytes)
}

/// Decode a packed table of rows `width` figures wide; an error says what is wrong with it.
pub(crate) fn unpack(text: &str, width: usize) -> std::result::Result<Table, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("not base64: {e}"))?;
    if bytes.len() % 8 != 0 || bytes.is_empty() {
        return Err(format!(
            "{} bytes is not a whole number of 8-byte words",
            bytes.len()
        ));
    }
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect();
    let k = usize::try_from(words[0])
        .ok()
        .filter(|k| *k < u32::MAX as usize)
        .ok_or_else(|| "too many clusters".to_string())?;
    let expected = k
        .checked_mul(width + 1)
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| "too many clusters".to_string())?;
    if words.len() != expected {
        return Err(format!(
            "{} words for {k} clusters of {width} figures (expected {expected})",
            words.len()
        ));
    }
    let ids: Vec<i64> = words[1..=k].iter().map(|w| *w as i64).collect();
    let index = KeyIndex::new(&ids).map_err(|id| format!("cluster {id} appears twice"))?;
    let rows = &words[k + 1..];
    let mut columns = Vec::with_capacity(width * k);
    for f in 0..width {
        columns.extend((0..k).map(|p| f64::from_bits(rows[p * width + f])));
    }
    Ok(Table {
        index,
        width,
        clusters: k,
        columns,
    })
}

/// Tables kept decoded per thread (a plan hands the same string to every batch).
const CACHED_TABLES: usize = 4;

thread_local! {
    static TABLES: RefCell<Vec<(String, Arc<Table>)>> = const { RefCell::new(Vec::new()) };
}

fn table(text: &str, width: usize) -> Result<Arc<Table>> {
    TABLES.with(|cell| {
        let mut cache = cell.borrow_mut();
        if let Some((_, t)) = cache.iter().find(|(k, t)| k == text && t.width == width) {
            return Ok(Arc::clone(t));
        }
        let t = match unpack(text, width) {
            Ok(t) => Arc::new(t),
            Err(why) => return exec_err!("{NAME}: argument 'table': {why}"),
        };
        if cache.len() == CACHED_TABLES {
            cache.remove(0);
        }
        cache.push((text.to_owned(), Arc::clone(&t)));
        Ok(t)
    })
}

/// The struct fields named by the constant `names` argument.
fn fields(names: &str) -> Fields {
    names
        .split(',')
        .map(|n| Field::new(n.trim(), DataType::Float64, true))
        .collect()
}

/// The call that gives a row the figures of its `cluster`: a struct of Float64 fields `names`.
pub fn call(cluster: Expr, names: &[&str], ids: &[i64], rows: &[Vec<f64>]) -> Expr {
    figures_udf().call(vec![
        cluster,
        Expr::Literal(ScalarValue::Utf8(Some(names.join(","))), None),
        Expr::Literal(ScalarValue::Utf8(Some(pack(ids, rows))), None),
    ])
}

impl ScalarUDFImpl for Figures {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // The struct holds the wanted figures (4th argument), by default all of them.
        let at = if args.scalar_arguments.len() == 4 {
            3
        } else {
            1
        };
        let Some(Some(ScalarValue::Utf8(Some(names)))) = args.scalar_arguments.get(at) else {
            return plan_err!(
                "{NAME}: expected (cluster, names, table [, wanted]) with constant strings"
            );
        };
        Ok(Arc::new(Field::new(
            NAME,
            DataType::Struct(fields(names)),
            true,
        )))
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{NAME}: the return type comes from the 'names' argument")
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        // The table itself is kilobytes of text: a column name gets its length and a hash.
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        args.hash(&mut hasher);
        let cluster = args.first().map(|a| a.schema_name().to_string());
        Ok(format!(
            "{NAME}({}, #{:016x})",
            cluster.unwrap_or_default(),
            hasher.finish()
        ))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (cluster, names, packed, wanted) = match args.args.as_slice() {
            [c, n, t] => (c, n, t, n),
            [c, n, t, w] => (c, n, t, w),
            _ => return exec_err!("{NAME}: expected (cluster, names, table [, wanted])"),
        };
        let (
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(names))),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(packed))),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(wanted))),
        ) = (names, packed, wanted)
        else {
            return exec_err!("{NAME}: 'names', 'table' and 'wanted' must be constant strings");
        };
        let all = fields(names);
        let table = table(packed, all.len())?;
        let fields = fields(wanted);
        let mut picked = Vec::with_capacity(fields.len());
        for f in &fields {
            match all.iter().position(|a| a.name() == f.name()) {
                Some(i) => picked.push(i),
                None => return exec_err!("{NAME}: no figure named '{}'", f.name()),
            }
        }
        let scalar = matches!(cluster, ColumnarValue::Scalar(_));
        let key = cluster.to_array(if scalar { 1 } else { args.number_rows })?;
        let key = cast(&key, &DataType::Int64)?;
        let key = key.as_primitive::<Int64Type>();
        // One gather per wanted figure straight from the key column (the key index is a
        // small array: looking a key up again per figure is cheaper than keeping positions).
        let mut found = true;
        let columns: Vec<Vec<f64>> = picked
            .into_iter()
            .map(|f| {
                let mut out = vec![0.0; key.len()];
                found &= table.index.gather(key.values(), table.column(f), &mut out);
                out
            })
            .collect();
        let nulls = (!found || key.null_count() > 0).then(|| {
            NullBuffer::from_iter(
                key.iter()
                    .map(|c| c.and_then(|c| table.index.position(c)).is_some()),
            )
        });
        let columns: Vec<ArrayRef> = columns
            .into_iter()
            .map(|v| Arc::new(Float64Array::new(v.into(), nulls.clone())) as ArrayRef)
            .collect();
        let array: ArrayRef = Arc::new(StructArray::try_new(fields, columns, nulls)?);
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tables_round_trip_and_bad_text_is_an_error() {
        let ids = [3, 7, -2];
        let rows = vec![vec![1.5, f64::MIN], vec![-0.0, 2.0], vec![f64::NAN, 1e300]];
        let t = unpack(&pack(&ids, &rows), 2).unwrap();
        for (i, id) in ids.iter().enumerate() {
            let p = t.index.position(*id).unwrap();
            for (f, want) in rows[i].iter().enumerate() {
                assert_eq!(t.figure(p, f).to_bits(), want.to_bits());
            }
        }
        assert!(unpack("!!", 2).unwrap_err().contains("not base64"));
        assert!(unpack("", 2).is_err());
        assert!(unpack(&pack(&ids, &rows), 3)
            .unwrap_err()
            .contains("expected"));
        assert!(unpack(&pack(&[1, 1], &[vec![0.0], vec![1.0]]), 1)
            .unwrap_err()
            .contains("appears twice"));
    }

    proptest! {
        /// Any text decodes to a table or an error, never a panic.
        #[test]
        fn any_text_unpacks_or_errs(text in ".{0,64}", width in 0usize..6) {
            let _ = unpack(&text, width);
        }

        #[test]
        fn any_words_unpack_or_err(words in proptest::collection::vec(any::<u64>(), 0..20), width in 0usize..4) {
            let bytes: Vec<u8> = words.into_iter().flat_map(u64::to_le_bytes).collect();
            let _ = unpack(&BASE64.encode(bytes), width);
        }
    }
}
