//! SQL glue for `samplemix_systematic_round`, the window function behind
//! `rounding=systematic` ([`super::systematic::systematic_counts`]).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::make_comparator;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::{cast, SortOptions};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::utils::take_function_args;
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Documentation, LimitEffect, PartitionEvaluator, Signature, TypeSignature, Volatility,
    WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::PhysicalExpr;

use super::counts::Mode;
use super::systematic::{comb_counts, comb_offset, fraction_units, systematic_counts};
use super::udf::{id_uniforms, seeds, MAX_EXPECTED};
use crate::args::{check_arity, choice_of, is_string, pass_through, signature};
use crate::hash::splitmix64;

const NAME: &str = "samplemix_systematic_round";
/// The internal form `samplemix_weights` uses for one bucket of a comb laid over many
/// (`OVER (PARTITION BY bucket)`, two more arguments: the units before the bucket and the
/// total). Registered so that every process of a Ballista cluster can read those plans; not
/// listed by `samplemix_help()`.
pub const PART_NAME: &str = "samplemix_systematic_round_part";

/// Mixed into the seed for the token-balancing decisions, so that they are another hash of the
/// id than the u(id) that orders the comb.
const DECIDE_SALT: u64 = 0x6a09_e667_f3bc_c908;

/// `samplemix_systematic_round(expected_count, tokens, id, seed, mode) OVER ()`.
pub fn systematic_round_udwf() -> Arc<WindowUDF> {
    static INSTANCE: LazyLock<Arc<WindowUDF>> = LazyLock::new(|| {
        Arc::new(WindowUDF::new_from_impl(SystematicRound {
            part: false,
            signature: signature(
                vec![TypeSignature::Exact(vec![
                    DataType::Float64,
                    DataType::Int64,
                    DataType::Utf8,
                    DataType::Int64,
                    DataType::Utf8,
                ])],
                Volatility::Immutable,
            ),
        }))
    });
    Arc::clone(&INSTANCE)
}

/// `samplemix_systematic_round_part(expected_count, tokens, id, seed, mode, before, total)
/// OVER (PARTITION BY bucket)`: the counts of one bucket, its slices laid after `before`
/// units of the buckets before it, the comb's offset from `total` (see [`PART_NAME`]).
pub fn systematic_round_part_udwf() -> Arc<WindowUDF> {
    static INSTANCE: LazyLock<Arc<WindowUDF>> = LazyLock::new(|| {
        Arc::new(WindowUDF::new_from_impl(SystematicRound {
            part: true,
            signature: signature(vec![], Volatility::Immutable),
        }))
    });
    Arc::clone(&INSTANCE)
}

/// Systematic rounding of a whole window of expected counts (or, `part`, of one bucket).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SystematicRound {
    part: bool,
    signature: Signature,
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Integer copies from expected counts by systematic rounding over all rows of the window \
         (use OVER ()): every row keeps E[count] = expected_count, but the counts are dependent, \
         so their total is pinned. Rows are put in (tokens, samplemix_uniform(id, seed), id) \
         order and one comb of evenly spaced points, offset by the seed, is laid over the \
         cumulative fractional parts. 'documents': Σ count = round(Σ expected_count) exactly. \
         'tokens': first, from the longest document down, each document's extra copy is decided \
         against the next shorter ones, whose fractions absorb the difference, so Σ count·tokens \
         stays within about one short document of Σ expected_count·tokens. The result does not \
         depend on the row order or partitioning. samplemix_weights' rounding=systematic is \
         this function. NULL expected_count, tokens or id gives NULL (the row takes no part).",
        "samplemix_systematic_round(expected_count, tokens, id, seed, mode) OVER ()",
    )
    .with_sql_example(
        "SELECT w.id, samplemix_systematic_round(w.expected_count, s.tokens, w.id, 7, 'tokens') OVER () AS count\nFROM weights w JOIN scored s ON w.id = s.id;",
    )
    .with_argument("expected_count", "Expected copies (numeric, finite, in [0, 9.2e18)).")
    .with_argument("tokens", "The document's tokens (numeric, >= 0): the order, and in 'tokens' mode the balanced mass.")
    .with_argument("id", "Document id of any type (hashed as samplemix_uniform does).")
    .with_argument("seed", "Integer seed, the same for every row.")
    .with_argument("mode", "'tokens' (balance Σ count·tokens) or 'documents' (Σ count exact).")
    .build()
});

static PART_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Internal to samplemix_weights' plans (rounding=systematic over many buckets). Not \
         meant to be called by hand.",
        "samplemix_systematic_round_part(expected_count, tokens, id, seed, mode, before, total) OVER (PARTITION BY bucket)",
    )
    .build()
});

impl WindowUDFImpl for SystematicRound {
    fn name(&self) -> &str {
        if self.part {
            PART_NAME
        } else {
            NAME
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(Evaluator {
            part: self.part,
            done: None,
        }))
    }
    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = field_args
            .input_fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        if self.part {
            check_arity(
                PART_NAME,
                types.len(),
                7..=7,
                "expected_count, tokens, id, seed, mode, before, total",
            )?;
            if !types[5..].iter().all(|t| t.is_integer()) {
                return plan_err!("{PART_NAME}: arguments 'before' and 'total' must be integers");
            }
        } else {
            check_arity(
                NAME,
                types.len(),
                5..=5,
                "expected_count, tokens, id, seed, mode",
            )?;
        }
        for (i, what) in [(0, "expected_count"), (1, "tokens")] {
            if !(types[i].is_numeric() || types[i].is_null()) {
                return plan_err!(
                    "{NAME}: argument '{what}' must be numeric, got {}",
                    types[i]
                );
            }
        }
        if !(types[3].is_integer() || types[3].is_null()) {
            return plan_err!(
                "{NAME}: argument 'seed' must be an integer, got {}",
                types[3]
            );
        }
        if !is_string(&types[4]) {
            return plan_err!(
                "{NAME}: argument 'mode' must be the string 'tokens' or 'documents', got {}",
                types[4]
            );
        }
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Int64,
            true,
        )))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(if self.part { &PART_DOC } else { &DOC })
    }
    fn limit_effect(&self, _args: &[Arc<dyn PhysicalExpr>]) -> LimitEffect {
        // Every row's count depends on all rows: a LIMIT above must not cut the input.
        LimitEffect::Unknown
    }
}

#[derive(Debug)]
struct Evaluator {
    part: bool,
    /// The bucket's counts once it is complete, and how many of them were handed out
    /// (bounded execution asks for them one row at a time).
    done: Option<(Int64Array, usize)>,
}

/// The bucket form runs in DataFusion's bounded window operator: over input sorted by bucket
/// it holds one bucket at a time and lets the buckets before it go, where the plain window
/// operator holds its whole input (all buckets of a partition) until the input ends. The
/// evaluator is not causal and its range is the whole bucket, so the operator waits for the
/// bucket's last row and then asks for each row's count; the first ask rounds the bucket.
impl PartitionEvaluator for Evaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        if self.part {
            part_window(values, num_rows)
        } else {
            rounded_window(values, num_rows, Comb::Whole)
        }
    }
    fn supports_bounded_execution(&self) -> bool {
        self.part
    }
    fn is_causal(&self) -> bool {
        false
    }
    fn get_range(&self, _idx: usize, n_rows: usize) -> Result<std::ops::Range<usize>> {
        Ok(0..n_rows)
    }
    fn evaluate(
        &mut self,
        values: &[ArrayRef],
        range: &std::ops::Range<usize>,
    ) -> Result<ScalarValue> {
        if self.done.is_none() {
            let counts = part_window(values, range.end)?;
            self.done = Some((counts.as_primitive::<Int64Type>().clone(), 0));
        }
        let Some((counts, next)) = self.done.as_mut() else {
            return exec_err!("{PART_NAME}: no counts");
        };
        if *next >= counts.len() {
            return exec_err!("{PART_NAME}: asked for more rows than the bucket has");
        }
        let n = ScalarValue::try_from_array(counts, *next)?;
        *next += 1;
        Ok(n)
    }
}

/// The counts of one bucket (the internal form's arguments).
fn part_window(values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
    let [e, t, id, seed, mode, before, total] = take_function_args(PART_NAME, values)?;
    let comb = Comb::Part {
        before: one_integer(before, "before")?,
        total: one_integer(total, "total")?,
    };
    let rest = [e, t, id, seed, mode].map(Arc::clone);
    rounded_window(&rest, num_rows, comb)
}

/// Where one window's slices lie on the comb.
#[derive(Debug, Clone, Copy)]
enum Comb {
    /// The window is the whole comb.
    Whole,
    /// The window is one bucket: its slices start after `before` units, and the comb's units
    /// (unbalanced) add up to `total`.
    Part { before: i64, total: i64 },
}

/// An integer argument that must be one value for the whole window (internal form only).
fn one_integer(array: &ArrayRef, what: &str) -> Result<i64> {
    let all = seeds(array)?;
    match all.first() {
        Some(Some(v)) if all.iter().all(|x| *x == Some(*v)) => Ok(*v),
        _ => exec_err!("{PART_NAME}: argument '{what}' must be one integer per window"),
    }
}

/// The counts of one window: the rows with an expected count, tokens and id are sorted into
/// the comb's order, rounded together, and the counts put back in the rows' own order.
fn rounded_window(values: &[ArrayRef], num_rows: usize, comb: Comb) -> Result<ArrayRef> {
    let [expected, tokens, id, seed, mode] = take_function_args(NAME, values)?;
    if num_rows == 0 {
        return Ok(Arc::new(Int64Array::from(Vec::<i64>::new())));
    }
    if num_rows > u32::MAX as usize {
        return exec_err!(
            "{NAME}: more than 2^32 rows in one window; round per PARTITION BY group"
        );
    }
    let seed = one_seed(seed)?;
    let mode = one_mode(mode)?;
    let expected = cast(expected, &DataType::Float64)?;
    let tokens = cast(tokens, &DataType::Float64)?;
    let (e, t) = (
        expected.as_primitive::<Float64Type>(),
        tokens.as_primitive::<Float64Type>(),
    );
    let mut rows: Vec<u32> = Vec::with_capacity(num_rows);
    for i in 0..num_rows {
        if e.is_null(i) || t.is_null(i) || id.is_null(i) {
            continue;
        }
        let (c, n) = (e.value(i), t.value(i));
        if !(0.0..MAX_EXPECTED).contains(&c) {
            return exec_err!(
                "{NAME}: argument 'expected_count' must be a number in [0, 9.2e18) (counts are Int64), got {c}"
            );
        }
        if !(n >= 0.0 && n.is_finite()) {
            return exec_err!("{NAME}: argument 'tokens' must be a finite number >= 0, got {n}");
        }
        rows.push(i as u32);
    }
    let mixed = splitmix64(seed as u64);
    let u = id_uniforms(id, mixed)?;
    let decide = id_uniforms(id, mixed ^ DECIDE_SALT)?;
    let (e, t) = (e.values(), t.values());
    let order = comb_order(rows, t, u.values(), id, e)?;
    let gather = |values: &[f64]| -> Vec<f64> { order.iter().map(|&i| values[i]).collect() };
    let (e, t, decide) = (gather(e), gather(t), gather(decide.values()));
    let (balance, whole_total) = (mode == Mode::Tokens, mode == Mode::Documents);
    let counts = match comb {
        Comb::Whole => systematic_counts(&e, &t, &decide, balance, whole_total, seed),
        Comb::Part { before, total } => {
            let units = fraction_units(&e, &t, &decide, balance);
            comb_counts(&e, &units, before, comb_offset(total, seed, whole_total))
        }
    };
    let mut out: Vec<Option<i64>> = vec![None; num_rows];
    for (i, n) in order.into_iter().zip(counts) {
        out[i] = Some(n);
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// The positions `rows` (of the window's rows) in the comb's order: (tokens, u, id, expected).
/// Sorting plain integer keys (the bits of non-negative floats order like the floats) is
/// several times faster than a general multi-column sort; id and expected only break ties of
/// (tokens, u), which need equal ids (or a 2^-53 hash collision).
fn comb_order(
    rows: Vec<u32>,
    tokens: &[f64],
    u: &[f64],
    id: &ArrayRef,
    expected: &[f64],
) -> Result<Vec<usize>> {
    let mut keys: Vec<(u64, u64, u32)> = rows
        .into_iter()
        // + 0.0 turns -0.0 into 0.0, whose bits sort first.
        .map(|i| {
            (
                (tokens[i as usize] + 0.0).to_bits(),
                u[i as usize].to_bits(),
                i,
            )
        })
        .collect();
    keys.sort_unstable();
    let ties = make_comparator(id, id, SortOptions::default())?;
    let mut start = 0;
    while start < keys.len() {
        let same = |k: &(u64, u64, u32)| (k.0, k.1) == (keys[start].0, keys[start].1);
        let end = start + keys[start..].iter().take_while(|k| same(k)).count();
        if end - start > 1 {
            keys[start..end].sort_by(|a, b| {
                let (a, b) = (a.2 as usize, b.2 as usize);
                ties(a, b).then(expected[a].total_cmp(&expected[b]))
            });
        }
        start = end;
    }
    Ok(keys.into_iter().map(|k| k.2 as usize).collect())
}

/// The seed, which must be one integer for the whole window.
fn one_seed(seed: &ArrayRef) -> Result<i64> {
    let all = seeds(seed)?;
    match all.first() {
        Some(Some(s)) if all.iter().all(|x| *x == Some(*s)) => Ok(*s),
        _ => exec_err!(
            "{NAME}: argument 'seed' must be one non-NULL integer for all rows (a literal)"
        ),
    }
}

/// The mode, which must be one of 'tokens' / 'documents' for the whole window.
fn one_mode(mode: &ArrayRef) -> Result<Mode> {
    let mode = cast(mode, &DataType::Utf8)?;
    let mode = mode.as_string::<i32>();
    let first = (!mode.is_null(0)).then(|| mode.value(0));
    match first {
        Some(m) if mode.iter().all(|x| x == Some(m)) => choice_of(m, NAME, "mode"),
        _ => exec_err!(
            "{NAME}: argument 'mode' must be one non-NULL string for all rows (a literal)"
        ),
    }
}
