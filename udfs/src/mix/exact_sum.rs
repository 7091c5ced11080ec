//! An exact, order-independent sum of f64 values: what makes every float sum of
//! `samplemix_weights` bit-identical for any partitioning, thread count or input order.

use crate::Error;

/// Bits per limb of [`ExactSum`]: limb i counts units of 2^(32·i − 1074).
const LIMB_BITS: usize = 32;

/// Bit position (in `Wide`'s numbering, value = 2^(position − 1074)) of the fast part's unit:
/// 2^-64.
const FAST_POSITION: usize = 1010;
/// Values of the fast part stay below 2^30 (shift ≤ 41 over 53 mantissa bits: 94 bits), so
/// an i128 adds 2^33 of them before it could overflow.
const FAST_MAX_SHIFT: usize = 41;

/// An exact sum of f64 values, so its result does not depend on their order, rounded to f64
/// once by [`ExactSum::value`]. Values that are whole multiples of 2^-64 below 2^30 (most
/// values a mix sums: distances, softmax terms, token counts) are added to one i128 of 2^-64
/// units; the others, and the fast part if it would overflow, go to a superaccumulator over
/// the whole f64 range, allocated only when needed. Both parts are exact, so which part a value
/// takes does not change the result.
#[derive(Debug, Clone, Default)]
pub struct ExactSum {
    fast: i128,
    wide: Option<Box<Wide>>,
}

impl PartialEq for ExactSum {
    fn eq(&self, other: &Self) -> bool {
        self.value().to_bits() == other.value().to_bits()
    }
}

/// x = ±mantissa · 2^(position − 1074), subnormals included (position 0, no hidden bit);
/// None for NaN and infinity.
#[inline(always)]
fn parts(x: f64) -> Option<(bool, u64, usize)> {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as usize;
    let fraction = bits & ((1 << 52) - 1);
    let negative = bits >> 63 == 1;
    match biased {
        0x7ff => None,
        0 => Some((negative, fraction, 0)),
        _ => Some((negative, fraction | 1 << 52, biased - 1)),
    }
}

impl ExactSum {
    /// Add one value; Err for NaN or infinity.
    #[inline]
    pub fn add(&mut self, x: f64) -> Result<(), Error> {
        if let Some(units) = Self::fast_units(x) {
            if let Some(sum) = self.fast.checked_add(units) {
                self.fast = sum;
                return Ok(());
            }
        }
        self.add_wide(x)
    }

    /// x as a whole number of the fast part's units (2^-64), when it is one and below 2^30;
    /// None when it needs the superaccumulator or is NaN or infinite ([`ExactSum::add`] then
    /// takes the slow path, which refuses those). A plain Option: a Result with [`Error`]
    /// would be returned through memory on every call. Lets a grouped sum keep just the i128s
    /// of its groups together ([`ExactSum::from_units`]) and touch the full accumulator only
    /// for the rare other values.
    #[inline(always)]
    pub fn fast_units(x: f64) -> Option<i128> {
        // Most values a mix sums are positive and in [2^-12, 2^30): biased exponents
        // 1011..=1052, so x·2^64 is the mantissa shifted left by 0..=41 bits, built from two
        // u64 shifts (an i128 shift by a variable amount costs a branch-free but long sequence
        // for the shift counts of 64 and more that cannot occur here). The sign bit makes the
        // exponent field of a negative value 2048 or more, so negatives take the general path.
        let bits = x.to_bits();
        let shift = (bits >> 52).wrapping_sub(1011);
        if shift <= 41 {
            let mantissa = (bits & ((1 << 52) - 1)) | 1 << 52;
            let low = mantissa << shift;
            let high = (mantissa >> 1) >> (63 - shift);
            return Some(((u128::from(high) << 64) | u128::from(low)) as i128);
        }
        Self::fast_units_general(x)
    }

    /// [`ExactSum::fast_units`] for any value.
    #[inline]
    fn fast_units_general(x: f64) -> Option<i128> {
        let (negative, mantissa, position) = parts(x)?;
        if mantissa == 0 {
            return Some(0);
        }
        let units = if position >= FAST_POSITION {
            let shift = position - FAST_POSITION;
            (shift <= FAST_MAX_SHIFT).then(|| i128::from(mantissa) << shift)
        } else {
            let shift = FAST_POSITION - position;
            (shift < 64 && mantissa.trailing_zeros() as usize >= shift)
                .then(|| i128::from(mantissa >> shift))
        };
        units.map(|u| if negative { -u } else { u })
    }

    /// An exact sum of `units` · 2^-64 (see [`ExactSum::fast_units`]).
    pub fn from_units(units: i128) -> Self {
        Self {
            fast: units,
            wide: None,
        }
    }

    /// Add x to the superaccumulator; Err for NaN or infinity.
    #[cold]
    fn add_wide(&mut self, x: f64) -> Result<(), Error> {
        let (negative, mantissa, position) = parts(x).ok_or(Error::NotSummable(x))?;
        self.wide_mut().add_bits(negative, mantissa, position)
    }

    #[cold]
    fn wide_mut(&mut self) -> &mut Wide {
        self.wide.get_or_insert_with(Box::default)
    }

    /// Everything in one superaccumulator.
    fn combined(&self) -> Result<Wide, Error> {
        let mut w = self.wide.as_deref().cloned().unwrap_or_default();
        w.add_fixed(self.fast)?;
        Ok(w)
    }

    /// Add another partial sum.
    pub fn merge(&mut self, other: &ExactSum) -> Result<(), Error> {
        match self.fast.checked_add(other.fast) {
            Some(sum) => self.fast = sum,
            None => self.wide_mut().add_fixed(other.fast)?,
        }
        if let Some(w) = &other.wide {
            self.wide_mut().merge(w)?;
        }
        Ok(())
    }

    /// The sum, rounded to f64 (±inf beyond f64's range). Depends only on the exact sum.
    pub fn value(&self) -> f64 {
        match &self.wide {
            None => Wide::from_fixed(self.fast).value(),
            Some(_) => self.combined().map_or(f64::NAN, |w| w.value()),
        }
    }

    /// The accumulator as bytes (the aggregate's state): the first limb's index (u16, little
    /// endian), then the limbs (i128, little endian) of the combined superaccumulator.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(self.combined()?.to_bytes())
    }

    /// The inverse of [`ExactSum::to_bytes`]; Err on bytes it did not write.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            fast: 0,
            wide: Some(Box::new(Wide::from_bytes(bytes)?)),
        })
    }

    /// Heap bytes held.
    pub fn heap_size(&self) -> usize {
        self.wide.as_ref().map_or(0, |w| w.heap_size())
    }
}

impl Wide {
    /// A fast part alone: its three 50-bit pieces land in limbs 31, 33 and 34 (at bit 18, 4
    /// and 22 of them), each far inside an i128, so no checked addition is needed.
    fn from_fixed(units: i128) -> Self {
        let lo = FAST_POSITION / LIMB_BITS;
        let mut w = Wide {
            lo,
            len: INLINE,
            ..Wide::default()
        };
        let mask = (1i128 << 50) - 1;
        for (j, piece) in [units & mask, (units >> 50) & mask, units >> 100]
            .into_iter()
            .enumerate()
        {
            let position = FAST_POSITION + 50 * j;
            w.inline[position / LIMB_BITS - lo] += piece << (position % LIMB_BITS);
        }
        w
    }
}

/// Limbs held inline: a group's values usually span one or two limbs, and inline limbs keep
/// a grouped sum's accumulators in one contiguous array (no pointer to chase per value).
const INLINE: usize = 4;

/// A long fixed-point accumulator over the whole f64 exponent range (a "superaccumulator"),
/// split into 32-bit limbs held in i128s (room for 2^42 additions per limb before any carry),
/// of which only the range the values touch is held (inline up to 4 limbs).
#[derive(Debug, Clone, Default)]
struct Wide {
    /// Limb index of the first limb held.
    lo: usize,
    /// Limbs held (from `lo`): in `inline` up to [`INLINE`], else all in `heap`.
    len: usize,
    inline: [i128; INLINE],
    heap: Vec<i128>,
}

impl Wide {
    fn limbs(&self) -> &[i128] {
        if self.len <= INLINE {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    /// Add ±mantissa · 2^(position − 1074) (mantissa below 2^53).
    fn add_bits(&mut self, negative: bool, mantissa: u64, position: usize) -> Result<(), Error> {
        let v = i128::from(mantissa) << (position % LIMB_BITS);
        self.add_limb(position / LIMB_BITS, if negative { -v } else { v })
    }

    /// Add units · 2^(FAST_POSITION − 1074) (a [`ExactSum`] fast part), in pieces of 50 bits.
    fn add_fixed(&mut self, units: i128) -> Result<(), Error> {
        let mask = (1i128 << 50) - 1;
        for (j, piece) in [units & mask, (units >> 50) & mask, units >> 100]
            .into_iter()
            .enumerate()
        {
            if piece != 0 {
                let position = FAST_POSITION + 50 * j;
                self.add_limb(position / LIMB_BITS, piece << (position % LIMB_BITS))?;
            }
        }
        Ok(())
    }

    fn add_limb(&mut self, index: usize, v: i128) -> Result<(), Error> {
        let i = index.wrapping_sub(self.lo);
        if i < self.len {
            let slot = if self.len <= INLINE {
                &mut self.inline[i]
            } else {
                &mut self.heap[i]
            };
            *slot = slot.checked_add(v).ok_or(Error::SumOverflow)?;
            return Ok(());
        }
        self.grow_and_add(index, v)
    }

    /// [`Wide::add_limb`] for a limb outside the range held so far.
    #[cold]
    fn grow_and_add(&mut self, index: usize, v: i128) -> Result<(), Error> {
        let mut limbs = self.limbs().to_vec();
        if limbs.is_empty() {
            self.lo = index;
            limbs.push(0);
        } else if index < self.lo {
            limbs.splice(0..0, std::iter::repeat_n(0, self.lo - index));
            self.lo = index;
        } else {
            limbs.resize(index - self.lo + 1, 0);
        }
        let slot = &mut limbs[index - self.lo];
        *slot = slot.checked_add(v).ok_or(Error::SumOverflow)?;
        self.len = limbs.len();
        if self.len <= INLINE {
            self.inline[..self.len].copy_from_slice(&limbs);
        } else {
            self.heap = limbs;
        }
        Ok(())
    }

    fn merge(&mut self, other: &Wide) -> Result<(), Error> {
        for (i, v) in other.limbs().iter().enumerate() {
            if *v != 0 {
                self.add_limb(other.lo + i, *v)?;
            }
        }
        Ok(())
    }

    fn value(&self) -> f64 {
        // Carry-normalise a copy: every limb but the top one in [0, 2^32), the top one signed,
        // so the f64 sum from the top down rounds the exact value, not partial sums of it.
        let mut limbs = self.limbs().to_vec();
        limbs.extend([0; 4]);
        for i in 0..limbs.len() - 1 {
            let carry = limbs[i] >> LIMB_BITS;
            limbs[i] -= carry << LIMB_BITS;
            limbs[i + 1] = limbs[i + 1].saturating_add(carry);
        }
        let mut sum = 0.0;
        for (i, limb) in limbs.iter().enumerate().rev() {
            if *limb != 0 {
                sum += *limb as f64 * pow2(LIMB_BITS * (self.lo + i));
            }
        }
        sum
    }

    fn to_bytes(&self) -> Vec<u8> {
        let limbs = self.limbs();
        let mut out = Vec::with_capacity(2 + 16 * limbs.len());
        out.extend((self.lo as u16).to_le_bytes());
        for limb in limbs {
            out.extend(limb.to_le_bytes());
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bad = || Error::invalid("malformed exact-sum state");
        let (lo, rest) = bytes.split_first_chunk::<2>().ok_or_else(bad)?;
        if rest.len() % 16 != 0 {
            return Err(bad());
        }
        let limbs: Vec<i128> = rest
            .chunks_exact(16)
            .map(|c| i128::from_le_bytes(c.try_into().expect("16 bytes")))
            .collect();
        let mut sum = Self {
            lo: usize::from(u16::from_le_bytes(*lo)),
            len: limbs.len(),
            ..Self::default()
        };
        if sum.len <= INLINE {
            sum.inline[..sum.len].copy_from_slice(&limbs);
        } else {
            sum.heap = limbs;
        }
        Ok(sum)
    }

    fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>() + self.heap.capacity() * 16
    }
}

/// 2^(e − 1074) as f64, exactly (subnormal below 2^-1022, infinite from 2^1024).
fn pow2(e: usize) -> f64 {
    match e {
        0..52 => f64::from_bits(1 << e),
        52..2098 => f64::from_bits(((e - 51) as u64) << 52),
        _ => f64::INFINITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sum_is_order_independent() {
        let values: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f64 / 997.0 + 1e-9 * i as f64)
            .collect();
        let mut a = ExactSum::default();
        values.iter().for_each(|v| a.add(*v).unwrap());
        let mut b = ExactSum::default();
        values.iter().rev().for_each(|v| b.add(*v).unwrap());
        assert_eq!(a.value().to_bits(), b.value().to_bits());
        let naive: f64 = values.iter().sum();
        assert!((a.value() - naive).abs() < 1e-9 * naive);
        assert!(ExactSum::default().add(f64::NAN).is_err());
        assert!(ExactSum::default().add(f64::INFINITY).is_err());
    }

    fn sum_of(values: &[f64]) -> f64 {
        let mut s = ExactSum::default();
        values.iter().for_each(|v| s.add(*v).unwrap());
        s.value()
    }

    #[test]
    fn exact_sum_is_exact_over_the_whole_range() {
        // Cancellation that a float sum gets wrong in any order.
        assert_eq!(sum_of(&[1e300, 1.0, -1e300]), 1.0);
        assert_eq!(sum_of(&[1e-300, 1e300, -1e300]), 1e-300);
        // The three doubles sum to exactly 2^-55 (a float sum gives 5.55e-17 or 0).
        assert_eq!(sum_of(&[0.1, 0.2, -0.3]), 2f64.powi(-55));
        assert_eq!(sum_of(&[5e-324, 5e-324]), 1e-323);
        assert_eq!(
            sum_of(&[f64::MAX, -f64::MAX, f64::MIN_POSITIVE]),
            f64::MIN_POSITIVE
        );
        assert_eq!(sum_of(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(sum_of(&[-2.5, 0.5]), -2.0);
        assert_eq!(sum_of(&[-0.0, 0.0]), 0.0);
        assert_eq!(sum_of(&[]), 0.0);
        assert_eq!(sum_of(&[1e18, 5e18, -3.0]), 6e18 - 3.0);
        // Integers up to 2^53 sum exactly, in any order.
        let ints: Vec<f64> = (0..1000i64)
            .map(|i| (i * 9_007_199_254_739) as f64)
            .collect();
        let exact: i128 = (0..1000i128).map(|i| i * 9_007_199_254_739).sum();
        assert_eq!(sum_of(&ints), exact as f64);
    }

    /// The sum with every value in the superaccumulator (no fast part).
    fn wide_only(values: &[f64]) -> f64 {
        let mut w = Wide::default();
        for x in values {
            let bits = x.to_bits();
            let biased = ((bits >> 52) & 0x7ff) as usize;
            let fraction = bits & ((1 << 52) - 1);
            let (m, p) = if biased == 0 {
                (fraction, 0)
            } else {
                (fraction | 1 << 52, biased - 1)
            };
            if m != 0 {
                w.add_bits(bits >> 63 == 1, m, p).unwrap();
            }
        }
        w.value()
    }

    proptest::proptest! {
        #[test]
        fn fast_units_shortcut_is_the_general_conversion(bits: u64, shift in 1000u64..1060) {
            // Any bit pattern, and patterns with exponents around the shortcut's range.
            let near = f64::from_bits((bits & !(0xfff << 52)) | (shift << 52));
            for x in [f64::from_bits(bits), near, -near] {
                proptest::prop_assert_eq!(ExactSum::fast_units(x), ExactSum::fast_units_general(x));
            }
        }
    }

    #[test]
    fn fast_units_shortcut_edges() {
        for x in [
            2f64.powi(-12),
            2f64.powi(-12) * (1.0 - f64::EPSILON),
            1.0,
            2f64.powi(30),
            2f64.powi(30) * (1.0 - f64::EPSILON),
            0.0,
            -0.0,
            0.8,
            1e-300,
        ] {
            assert_eq!(
                ExactSum::fast_units(x),
                ExactSum::fast_units_general(x),
                "{x}"
            );
        }
        assert_eq!(ExactSum::fast_units(1.0), Some(1i128 << 64));
        assert_eq!(ExactSum::fast_units(0.75), Some(3i128 << 62));
    }

    #[test]
    fn fast_and_wide_parts_give_the_same_sum() {
        let mut state = 5u64;
        let values: Vec<f64> = (0..5000)
            .map(|i| {
                state = crate::hash::splitmix64(state);
                let u = crate::hash::unit_interval(state);
                // Fast-path values (multiples of 2^-64 below 2^30) and others, mixed.
                match i % 4 {
                    0 => u,
                    1 => -u * 1e9,
                    2 => u * 1e-12,
                    _ => u * 1e40,
                }
            })
            .collect();
        assert_eq!(sum_of(&values).to_bits(), wide_only(&values).to_bits());
        // A fast part that would overflow moves into the superaccumulator.
        let mut a = ExactSum {
            fast: i128::MAX - 5,
            wide: None,
        };
        a.merge(&ExactSum {
            fast: 10,
            wide: None,
        })
        .unwrap();
        let want = (i128::MAX as f64 + 5.0) * 2f64.powi(-64);
        assert_eq!(a.value(), want);
    }

    #[test]
    fn exact_sum_state_round_trips_and_merges_in_any_split() {
        let mut state = 11u64;
        let values: Vec<f64> = (0..2000)
            .map(|i| {
                state = crate::hash::splitmix64(state);
                let u = crate::hash::unit_interval(state);
                (u - 0.3) * 10f64.powi((i % 40) - 20)
            })
            .collect();
        let whole = sum_of(&values);
        for split in [1, 7, 999, 1999] {
            let (a, b) = values.split_at(split);
            let mut x = ExactSum::default();
            b.iter().rev().for_each(|v| x.add(*v).unwrap());
            let mut y = ExactSum::default();
            a.iter().for_each(|v| y.add(*v).unwrap());
            let y = ExactSum::from_bytes(&y.to_bytes().unwrap()).unwrap();
            x.merge(&y).unwrap();
            assert_eq!(x.value().to_bits(), whole.to_bits(), "split {split}");
        }
        assert!(ExactSum::from_bytes(&[1]).is_err());
        assert!(ExactSum::from_bytes(&[0, 0, 1]).is_err());
    }
}
