//! SQL glue for `samplemix_exact_sum(x)`: an order-independent float sum, so aggregates give
//! bit-identical results whatever the partitioning, thread count or file order.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{exec_err, plan_err, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator,
    Signature, TypeSignature, Volatility,
};

use super::exact_sum::ExactSum;
use crate::args::{check_arity, pass_through, signature};

const NAME: &str = "samplemix_exact_sum";
const STATE: DataType = DataType::Binary;

/// `samplemix_exact_sum(x)` (one shared instance).
pub fn exact_sum_udaf() -> Arc<AggregateUDF> {
    static INSTANCE: LazyLock<Arc<AggregateUDF>> = LazyLock::new(|| {
        Arc::new(AggregateUDF::new_from_impl(ExactSumUdaf {
            signature: signature(
                vec![TypeSignature::Exact(vec![DataType::Float64])],
                Volatility::Immutable,
            ),
        }))
    });
    Arc::clone(&INSTANCE)
}

/// Exact sum of f64 values (so independent of their order), rounded to f64 once.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExactSumUdaf {
    signature: Signature,
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Sum of numbers that does not depend on their order: the values are added exactly (a \
         fixed-point accumulator over the whole Float64 range) and the sum is rounded to \
         Float64 once, so results are bit-identical for any partitioning or thread count. \
         NaN and infinite values are errors; NULLs are skipped; no values gives NULL.",
        "samplemix_exact_sum(x)",
    )
    .with_sql_example(
        "SELECT cluster, samplemix_exact_sum(distance) / count(*) FROM scored GROUP BY cluster;",
    )
    .with_argument("x", "Numeric expression (cast to Float64).")
    .build()
});

fn add_all(values: &ArrayRef, mut each: impl FnMut(usize, f64) -> Result<()>) -> Result<()> {
    let v = cast(values, &DataType::Float64)?;
    let v = v.as_primitive::<Float64Type>();
    for i in 0..v.len() {
        if v.is_valid(i) {
            each(i, v.value(i))?;
        }
    }
    Ok(())
}

fn err<T>(e: crate::Error) -> Result<T> {
    exec_err!("{NAME}: {e}")
}

fn decode(bytes: &[u8]) -> Result<ExactSum> {
    ExactSum::from_bytes(bytes).or_else(err)
}

fn encode(sums: &[ExactSum], seen: &[bool]) -> Result<ArrayRef> {
    let states = sums
        .iter()
        .zip(seen)
        .map(|(s, ok)| ok.then(|| s.to_bytes()).transpose())
        .collect::<std::result::Result<BinaryArray, _>>()
        .or_else(err)?;
    Ok(Arc::new(states))
}

impl AggregateUDFImpl for ExactSumUdaf {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(NAME, arg_types.len(), 1..=1, "x")?;
        if !(arg_types[0].is_numeric() || arg_types[0] == DataType::Null) {
            return plan_err!("{NAME}: argument 'x' must be numeric, got {}", arg_types[0]);
        }
        Ok(DataType::Float64)
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Single::default()))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[sum]", args.name),
            STATE,
            true,
        ))])
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::default()))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug, Default)]
struct Single {
    sum: ExactSum,
    seen: bool,
}

impl Accumulator for Single {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        add_all(&values[0], |_, x| {
            self.seen = true;
            self.sum.add(x).or_else(err)
        })
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.seen.then(|| self.sum.value())))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sum.heap_size()
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let state = self.seen.then(|| self.sum.to_bytes()).transpose();
        Ok(vec![ScalarValue::Binary(state.or_else(err)?)])
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let s = states[0].as_binary::<i32>();
        for i in 0..s.len() {
            if s.is_valid(i) {
                self.seen = true;
                self.sum.merge(&decode(s.value(i))?).or_else(err)?;
            }
        }
        Ok(())
    }
}

/// Per group: the i128 fast part of its exact sum in one dense array (16 bytes a group, so a
/// thousand groups stay in L1 cache), and a full [`ExactSum`] for the rare values the fast part
/// cannot take; they are combined when the group is emitted.
#[derive(Debug, Default)]
struct Groups {
    fast: Vec<i128>,
    sums: Vec<ExactSum>,
    seen: Vec<bool>,
    /// Values added to the fast parts since they were last moved into `sums`: each is below
    /// 2^94 in magnitude, so while this stays at most [`FAST_ADDS`] no fast part can overflow
    /// and the column loop adds without checking.
    added: u64,
}

/// 2^32 values below 2^94 sum to below 2^126: an i128 holds them with room to spare.
const FAST_ADDS: u64 = 1 << 32;

impl Groups {
    fn grow(&mut self, n: usize) {
        self.fast.resize(n, 0);
        self.sums.resize(n, ExactSum::default());
        self.seen.resize(n, false);
    }
    fn take(&mut self, emit_to: EmitTo) -> Result<(Vec<ExactSum>, Vec<bool>)> {
        let fast = emit_to.take_needed(&mut self.fast);
        let mut sums = emit_to.take_needed(&mut self.sums);
        for (s, f) in sums.iter_mut().zip(fast) {
            s.merge(&ExactSum::from_units(f)).or_else(err)?;
        }
        Ok((sums, emit_to.take_needed(&mut self.seen)))
    }
    /// Add x to group g. The fast part inline; the rest (values it cannot take, an i128 that
    /// would overflow, NaN) out of line, so the hot loop carries no error plumbing.
    #[inline(always)]
    fn add(&mut self, g: usize, x: f64) -> Result<()> {
        self.seen[g] = true;
        match ExactSum::fast_units(x).and_then(|u| self.fast[g].checked_add(u)) {
            Some(sum) => {
                self.fast[g] = sum;
                Ok(())
            }
            None => self.add_slow(g, x),
        }
    }
    #[cold]
    #[inline(never)]
    fn add_slow(&mut self, g: usize, x: f64) -> Result<()> {
        self.sums[g].add(x).or_else(err)
    }
    /// Count `n` more values towards the fast parts' bound, first moving the fast parts into
    /// the full sums when the bound would be passed (once per 2^32 values).
    fn reserve_fast_adds(&mut self, n: usize) -> Result<()> {
        if self.added + n as u64 > FAST_ADDS {
            for (s, f) in self.sums.iter_mut().zip(self.fast.iter_mut()) {
                s.merge(&ExactSum::from_units(std::mem::take(f)))
                    .or_else(err)?;
            }
            self.added = 0;
        }
        self.added += n as u64;
        Ok(())
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        self.reserve_fast_adds(group_indices.len())?;
        let v = cast(&values[0], &DataType::Float64)?;
        let v = v.as_primitive::<Float64Type>();
        if v.null_count() == 0 && opt_filter.is_none() {
            // The common case, without per-value validity and filter tests, and (the fast
            // parts cannot overflow, see `added`) without a check or an early exit per value
            // but for the rare value the fast part cannot take.
            // Slices, not the vectors: a store through a slice cannot change a vector's
            // pointer, so the loops keep it in a register instead of reloading it per value.
            let seen = self.seen.as_mut_slice();
            for g in group_indices {
                seen[*g] = true;
            }
            let (fast, sums) = (self.fast.as_mut_slice(), self.sums.as_mut_slice());
            for (x, g) in v.values().iter().zip(group_indices) {
                match ExactSum::fast_units(*x) {
                    Some(units) => fast[*g] = fast[*g].wrapping_add(units),
                    None => sums[*g].add(*x).or_else(err)?,
                }
            }
            return Ok(());
        }
        add_all(&values[0], |i, x| {
            if opt_filter.is_some_and(|f| !f.is_valid(i) || !f.value(i)) {
                return Ok(());
            }
            self.add(group_indices[i], x)
        })
    }
    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (sums, seen) = self.take(emit_to)?;
        Ok(Arc::new(
            sums.iter()
                .zip(seen)
                .map(|(s, ok)| ok.then(|| s.value()))
                .collect::<Float64Array>(),
        ))
    }
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (sums, seen) = self.take(emit_to)?;
        Ok(vec![encode(&sums, &seen)?])
    }
    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.grow(total_num_groups);
        let s = values[0].as_binary::<i32>();
        for (i, g) in group_indices.iter().enumerate() {
            if s.is_valid(i) {
                self.seen[*g] = true;
                self.sums[*g].merge(&decode(s.value(i))?).or_else(err)?;
            }
        }
        Ok(())
    }
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let v = cast(&values[0], &DataType::Float64)?;
        let v = v.as_primitive::<Float64Type>();
        let mut sums = Vec::with_capacity(v.len());
        let mut seen = Vec::with_capacity(v.len());
        for i in 0..v.len() {
            let filtered = opt_filter.is_some_and(|f| !f.is_valid(i) || !f.value(i));
            let mut s = ExactSum::default();
            if !(v.is_null(i) || filtered) {
                s.add(v.value(i)).or_else(err)?;
            }
            sums.push(s);
            seen.push(!(v.is_null(i) || filtered));
        }
        Ok(vec![encode(&sums, &seen)?])
    }
    fn size(&self) -> usize {
        // Limbs beyond the inline ones are rare (values spanning more than 2^128 in one
        // group); summing every group's heap bytes on each call would cost O(groups) per batch.
        self.fast.capacity() * 16
            + self.sums.capacity() * std::mem::size_of::<ExactSum>()
            + self.seen.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grouped(acc: &mut Groups, xs: &[f64], groups: &[usize], k: usize) -> Vec<Option<f64>> {
        let values: ArrayRef = Arc::new(Float64Array::from(xs.to_vec()));
        acc.update_batch(&[values], groups, None, k).unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        let out = out.as_primitive::<Float64Type>();
        (0..out.len())
            .map(|i| out.is_valid(i).then(|| out.value(i)))
            .collect()
    }

    #[test]
    fn fast_parts_move_into_the_full_sums_before_they_could_overflow() {
        let mut acc = Groups {
            added: FAST_ADDS - 1,
            ..Default::default()
        };
        // Values at the top of the fast part's range, in the group that takes them all.
        let big = (1u64 << 30) as f64 - 1.0;
        // A fast part as full as it can get (far fuller than 2^32 values could make it), so
        // that adding without moving it first would wrap around.
        acc.grow(2);
        acc.fast[0] = i128::MAX - 10;
        let out = grouped(&mut acc, &[big, 0.25, big], &[0, 1, 0], 2);
        let mut expected = ExactSum::from_units(i128::MAX - 10);
        expected.add(big).unwrap();
        expected.add(big).unwrap();
        assert_eq!(out, vec![Some(expected.value()), Some(0.25)]);
    }

    proptest! {
        #[test]
        fn grouped_sums_equal_one_sum_per_group(
            rows in proptest::collection::vec((0usize..4, -1e6f64..1e6, 0u8..4), 1..300),
        ) {
            // Mix in values the fast part cannot take (tiny, huge).
            let xs: Vec<f64> = rows.iter().map(|(_, x, kind)| match kind {
                0 => x * 1e-30,
                1 => x * 1e200,
                _ => *x,
            }).collect();
            let groups: Vec<usize> = rows.iter().map(|r| r.0).collect();
            let mut acc = Groups::default();
            let out = grouped(&mut acc, &xs, &groups, 4);
            for (g, got) in out.iter().enumerate() {
                let mut one = ExactSum::default();
                let mut any = false;
                for (x, _) in xs.iter().zip(&groups).filter(|(_, h)| **h == g) {
                    one.add(*x).unwrap();
                    any = true;
                }
                prop_assert_eq!(*got, any.then(|| one.value()));
            }
        }
    }
}
