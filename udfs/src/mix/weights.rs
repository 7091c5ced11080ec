//! The pure math behind `samplemix_weights` (see docs/METHOD.md, "Weights and counts"): the
//! integer count, cluster separation and an order-independent (exact fixed-point) sum. The
//! other steps (min-max normalisation, weight, stable softmax, expected count) are plain
//! expressions of the plan in `udtf.rs`; `tests/mix.rs` checks the plan against these functions
//! and against an independent computation.

use crate::args::{choice_traits, Choice};
use crate::cluster::assign::Centroids;
use crate::cluster::metric::{distance_f64, CosineColumns, CosinePrepared, Metric};
use crate::Error;

/// How expected counts are scaled to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Σ c(x) · tokens(x) = budget: the mix holds the budget's tokens in expectation.
    Tokens,
    /// The paper's document-count form: N_tgt = N · budget / T_src, c(x) = N_tgt · p(x).
    Documents,
}

impl Choice for Mode {
    const WHAT: &'static str = "mode";
    const NAMES: &'static [(&'static str, Self)] =
        &[("tokens", Mode::Tokens), ("documents", Mode::Documents)];
}
choice_traits!(Mode);

/// How a cluster's separation from the other centroids is summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separation {
    /// Mean distance to the other centroids (default).
    Mean,
    /// Distance to the nearest other centroid.
    Min,
}

impl Choice for Separation {
    const WHAT: &'static str = "separation";
    const NAMES: &'static [(&'static str, Self)] =
        &[("mean", Separation::Mean), ("min", Separation::Min)];
}
choice_traits!(Separation);

/// n(x) = ⌊c⌋ + 1[u < c − ⌊c⌋]: the paper's independent stochastic rounding, for
/// 0 ≤ c < 2^63 (callers check the range).
#[inline]
pub fn integer_count(expected: f64, u: f64) -> i64 {
    // For c ≥ 0 truncation is ⌊c⌋, and one conversion instruction, where `floor` is a libm
    // call on x86-64's baseline target (no SSE4.1): it was a tenth of the output pass.
    let whole = expected as i64;
    whole + i64::from(u < expected - whole as f64)
}

/// Separation of each centroid from the others: the mean (exact, order-independent sum) or
/// the minimum of its distances to the other centroids, in f64 (`samplemix_distance`'s
/// formula); 0 with a single centroid. The k²/2 distances are shared among the machine's
/// cores: exact sums and minima give the same result however they are split.
pub fn separation(centroids: &Centroids, mode: Separation) -> Vec<f64> {
    // Below a few hundred centroids a thread costs more than it saves.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(centroids.k() / 128)
        .max(1);
    separation_on(centroids, mode, threads)
}

/// [`separation`] on `threads` threads.
fn separation_on(centroids: &Centroids, mode: Separation, threads: usize) -> Vec<f64> {
    let k = centroids.k();
    if k < 2 {
        return vec![0.0; k];
    }
    let rows: Vec<Vec<f64>> = (0..k)
        .map(|j| centroids.row(j).iter().map(|v| f64::from(*v)).collect())
        .collect();
    let prepared: Vec<CosinePrepared> = match centroids.metric() {
        Metric::Cosine => rows.iter().map(|r| CosinePrepared::new(r)).collect(),
        Metric::L2 => Vec::new(),
    };
    let columns = CosineColumns::new(&prepared);
    // Distances from centroid i to every j > i.
    let distances_from = |i: usize, out: &mut [f64]| match centroids.metric() {
        Metric::Cosine => columns.distances(&prepared[i], i + 1, out),
        Metric::L2 => {
            for (j, d) in (i + 1..k).zip(out.iter_mut()) {
                *d = distance_f64(Metric::L2, &rows[i], &rows[j]);
            }
        }
    };
    let parts: Vec<Partial> = if threads == 1 {
        vec![Partial::of(0..k, k, mode, &distances_from)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = balanced_rows(k, threads)
                .into_iter()
                .map(|range| scope.spawn(|| Partial::of(range, k, mode, &distances_from)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("separation worker panicked"))
                .collect()
        })
    };
    let mut parts = parts.into_iter();
    let mut all = parts.next().expect("at least one part");
    for part in parts {
        all.merge(&part);
    }
    match mode {
        Separation::Mean => all
            .sums
            .into_iter()
            .map(|s| s.value() / (k - 1) as f64)
            .collect(),
        Separation::Min => all.mins,
    }
}

/// Ranges of rows i of the pairs (i, j > i) with about the same number of pairs each.
fn balanced_rows(k: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let total = k * (k - 1) / 2;
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut done) = (0, 0);
    for i in 0..k {
        done += k - i - 1;
        if done * parts >= total * (out.len() + 1) && out.len() + 1 < parts {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    out.push(start..k);
    out
}

/// Per-centroid sums or minima over the pairs of some rows.
struct Partial {
    sums: Vec<ExactSum>,
    mins: Vec<f64>,
}

impl Partial {
    fn of(
        rows: std::ops::Range<usize>,
        k: usize,
        mode: Separation,
        distances_from: &(dyn Fn(usize, &mut [f64]) + Sync),
    ) -> Self {
        let mut part = Partial {
            sums: vec![ExactSum::default(); if mode == Separation::Mean { k } else { 0 }],
            mins: vec![f64::INFINITY; if mode == Separation::Min { k } else { 0 }],
        };
        let mut out = vec![0.0; k];
        // The distance is symmetric bit for bit (products commute, sums run in index order),
        // so each pair is computed once and counted for both ends.
        for i in rows {
            let row = &mut out[..k - i - 1];
            distances_from(i, row);
            for (j, d) in (i + 1..k).zip(row.iter()) {
                match mode {
                    Separation::Mean => {
                        // Distances between finite f32 vectors are finite and far below 4.6e18.
                        part.sums[i].add(*d).unwrap_or_default();
                        part.sums[j].add(*d).unwrap_or_default();
                    }
                    Separation::Min => {
                        part.mins[i] = part.mins[i].min(*d);
                        part.mins[j] = part.mins[j].min(*d);
                    }
                }
            }
        }
        part
    }

    fn merge(&mut self, other: &Partial) {
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            a.merge(b).unwrap_or_default();
        }
        for (a, b) in self.mins.iter_mut().zip(&other.mins) {
            *a = a.min(*b);
        }
    }
}

/// Fixed-point units per copy in systematic rounding (fractions are counted in 2^-32 steps).
pub const SYSTEMATIC_UNIT: i64 = 1 << 32;

/// The offset of systematic rounding, in [`SYSTEMATIC_UNIT`]s: uniform from the seed over the
/// offsets for which the extra copies add up to exactly `round(total / UNIT)`. `total` is the
/// exact sum of all fractional parts in units; it differs from a multiple of the unit by the
/// rounding of the fractions (`discrepancy`), and offsets below it (or above unit + it) would
/// add one copy too many (too few).
pub fn systematic_offset(total: i64, seed: i64) -> i64 {
    let target = (total + SYSTEMATIC_UNIT / 2).div_euclid(SYSTEMATIC_UNIT);
    let discrepancy = total - target * SYSTEMATIC_UNIT;
    let (lo, hi) = (discrepancy.max(0), SYSTEMATIC_UNIT + discrepancy.min(0));
    let u = crate::hash::uniform(b"samplemix systematic rounding", seed);
    (lo + (u * (hi - lo) as f64) as i64).min(hi - 1)
}

/// Extra copies (0 or more) a document gets in systematic rounding: the comb points
/// `offset + j·UNIT` in [before, after), where `before` and `after` are the cumulative fraction
/// units up to and including it.
pub fn systematic_extra(before: i64, after: i64, offset: i64) -> i64 {
    let comb = |f: i64| (f - offset + SYSTEMATIC_UNIT - 1).div_euclid(SYSTEMATIC_UNIT);
    comb(after) - comb(before)
}

/// Work the token-balancing phase of [`systematic_counts`] may do: rows visited per input row
/// (plus [`BALANCE_WORK_MIN`]). A long document among short ones needs a pool of many rows; the
/// budget lets the longest documents (decided first) have them while bounding the phase to
/// linear time however the fractions are spread. Rows left when it runs out go to the comb.
pub const BALANCE_WORK_PER_ROW: usize = 64;
/// See [`BALANCE_WORK_PER_ROW`].
pub const BALANCE_WORK_MIN: usize = 1 << 20;

/// Systematic rounding of expected counts given in the comb's order (ascending tokens, then
/// u(id), then id). Each row gets ⌊c⌋ plus the comb points `offset + j·UNIT` that fall in its
/// slice of the cumulative fractional parts (fixed point, [`SYSTEMATIC_UNIT`]s per copy), so
/// E[count] = c for every row.
///
/// `whole_total` ('documents' mode): the offset is [`systematic_offset`]'s, and Σ count is
/// exactly round(Σ c).
///
/// `balance` ('tokens' mode, `tokens` the rows' token counts): before the comb, rows are
/// decided from the longest down, one at a time, each against as many of the next shorter
/// undecided rows (its pool) as it takes, within [`BALANCE_WORK_PER_ROW`] (the cube method of
/// Deville and Tillé with one balancing variable, tokens). When H = Σ_pool t_j·π_j(1 − π_j)
/// ≥ t·max(π, 1 − π), one step decides the row: with probability π (its fractional part:
/// `decide[i]` < π) it takes the extra copy and the pool's fractions shrink by κ·π_j(1 − π_j)
/// with κ = t(1 − π)/H, otherwise it does not and they grow by κ'·π_j(1 − π_j) with κ' = t·π/H
/// (every fraction stays in [0, 1]). With a smaller pool the step goes as far as the first
/// fraction that reaches 0 or 1, and repeats. Every step keeps Σ t·π and every row's E[π]
/// unchanged, so the long
/// documents, whose all-or-nothing copies would otherwise move the realised tokens by their
/// whole length, are paid for by shorter ones, and the comb that decides the rest errs by
/// about one short document. `decide` (uniforms in [0, 1)) must be drawn independently of the
/// order's u(id) and of the comb's offset (another hash).
pub fn systematic_counts(
    expected: &[f64],
    tokens: &[f64],
    decide: &[f64],
    balance: bool,
    whole_total: bool,
    seed: i64,
) -> Vec<i64> {
    let mut pi: Vec<f64> = expected.iter().map(|c| c - c.floor()).collect();
    if balance {
        balance_tokens(&mut pi, tokens, decide);
    }
    let unit = SYSTEMATIC_UNIT;
    let units: Vec<i64> = pi
        .iter()
        .map(|p| (p * unit as f64 + 0.5).floor() as i64)
        .collect();
    let total: i64 = units.iter().sum();
    let offset = if whole_total {
        systematic_offset(total, seed)
    } else {
        let u = crate::hash::uniform(b"samplemix systematic rounding", seed);
        ((u * unit as f64).floor() as i64).min(unit - 1)
    };
    let mut before = 0i64;
    expected
        .iter()
        .zip(&units)
        .map(|(c, u)| {
            let after = before + u;
            let n = c.floor() as i64 + systematic_extra(before, after, offset);
            before = after;
            n
        })
        .collect()
}

/// The token-balancing phase of [`systematic_counts`]: rows from the last (longest) to the
/// first, each decided against the rows before it that it needs, within the work budget.
fn balance_tokens(pi: &mut [f64], tokens: &[f64], decide: &[f64]) {
    let mut work = BALANCE_WORK_PER_ROW
        .saturating_mul(pi.len())
        .saturating_add(BALANCE_WORK_MIN);
    for i in (0..pi.len()).rev() {
        let mut start = i;
        let mut step = 0u64;
        while open(pi[i]) && work > 0 {
            start = balance_step(pi, tokens, i, start, draw(decide[i], step), &mut work);
            step += 1;
            if start == i {
                break;
            }
        }
    }
}

/// A fraction still to be decided.
fn open(p: f64) -> bool {
    p > 0.0 && p < 1.0
}

/// The k-th uniform of a row's decisions: its own draw first (a row decided in one step is
/// decided by it), then fresh hashes of it.
fn draw(first: f64, k: u64) -> f64 {
    if k == 0 {
        first
    } else {
        crate::hash::unit_interval(crate::hash::splitmix64(
            first.to_bits() ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ))
    }
}

/// Relative slack under which a fraction that reaches its bound is set to it exactly.
const SNAP: f64 = 1e-9;

/// One step of the cube method for row `i` against the pool rows [start', i) with tokens and an
/// open fraction (`start'` ≤ `start`: the pool grows until H ≥ t·max(π, 1 − π), so the step
/// can decide row i, or until rows or work run out). Moves π_i by +λ (probability μ/(λ + μ))
/// or −μ, the largest steps that keep every fraction in [0, 1], and each pool fraction by the
/// opposite token amount spread as π_j(1 − π_j). Returns `start'`, or `i` when nothing can move
/// (no pool).
fn balance_step(
    pi: &mut [f64],
    tokens: &[f64],
    i: usize,
    start: usize,
    u: f64,
    work: &mut usize,
) -> usize {
    let (p, t) = (pi[i], tokens[i]);
    let member = |q: f64, t: f64| open(q) && t > 0.0;
    // H, and the largest π_j and 1 − π_j of the pool (they bound the step).
    let (mut h, mut most_q, mut most_r) = (0.0, 0.0f64, 0.0f64);
    let need = t * p.max(1.0 - p);
    let mut j = i;
    while j > 0 && (j > start || (h < need && *work > 0)) {
        j -= 1;
        if j < start {
            *work -= 1;
        }
        let (q, tj) = (pi[j], tokens[j]);
        if member(q, tj) {
            h += tj * q * (1.0 - q);
            most_q = most_q.max(q);
            most_r = most_r.max(1.0 - q);
        }
    }
    if t == 0.0 {
        // A row without tokens moves none: decided alone.
        pi[i] = if u < p { 1.0 } else { 0.0 };
        return j;
    }
    if h == 0.0 {
        return i;
    }
    let up = (1.0 - p).min(h / (t * most_r));
    let down = p.min(h / (t * most_q));
    let per_token = t / h;
    *work = work.saturating_sub(i - j);
    if u * (up + down) < down {
        pi[i] = if up >= (1.0 - p) * (1.0 - SNAP) {
            1.0
        } else {
            p + up
        };
        for k in j..i {
            let q = pi[k];
            if member(q, tokens[k]) {
                let r = up * per_token * (1.0 - q);
                pi[k] = if r >= 1.0 - SNAP { 0.0 } else { q * (1.0 - r) };
            }
        }
    } else {
        pi[i] = if down >= p * (1.0 - SNAP) {
            0.0
        } else {
            p - down
        };
        for k in j..i {
            let q = pi[k];
            if member(q, tokens[k]) {
                let r = down * per_token * q;
                pi[k] = if r >= 1.0 - SNAP {
                    1.0
                } else {
                    1.0 - (1.0 - q) * (1.0 - r)
                };
            }
        }
    }
    j
}

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
            None => Wide::default().with_fixed(self.fast).value(),
            Some(_) => self.combined().map_or(f64::NAN, |w| w.value()),
        }
    }

    /// The accumulator as bytes (the aggregate's state): the first limb's index (u16, little
    /// endian), then the limbs (i128, little endian) of the combined superaccumulator.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.combined().unwrap_or_default().to_bytes()
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
    fn with_fixed(mut self, units: i128) -> Self {
        // Three 50-bit pieces of an i128 fit their limbs: this cannot overflow.
        self.add_fixed(units).unwrap_or_default();
        self
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
    use crate::cluster::metric::Metric;

    #[test]
    fn integer_count_rounds_stochastically() {
        assert_eq!(integer_count(2.0, 0.0), 2);
        assert_eq!(integer_count(2.25, 0.2), 3);
        assert_eq!(integer_count(2.25, 0.25), 2);
        assert_eq!(integer_count(0.0, 0.0), 0);
    }

    #[test]
    fn separation_equals_the_pairwise_formula_bit_for_bit() {
        let mut state = 7u64;
        let mut next = || {
            state = crate::hash::splitmix64(state);
            (crate::hash::unit_interval(state) as f32 - 0.5) * 1e3
        };
        // More centroids than one AVX-512 block of dot products (64), and a tail.
        let (k, dim) = (70, 24);
        let mut values: Vec<f32> = (0..k * dim).map(|_| next()).collect();
        values[..dim].fill(0.0); // a zero centroid: cosine distance 1 to everything
        for metric in [Metric::Cosine, Metric::L2] {
            let c = Centroids::new(values.clone(), dim, metric, (0..k as i32).collect()).unwrap();
            let rows: Vec<Vec<f64>> = (0..k)
                .map(|j| c.row(j).iter().map(|v| f64::from(*v)).collect())
                .collect();
            let naive = |mode: Separation| -> Vec<u64> {
                (0..k)
                    .map(|i| {
                        let d = (0..k)
                            .filter(|j| *j != i)
                            .map(|j| distance_f64(metric, &rows[i], &rows[j]));
                        match mode {
                            Separation::Mean => {
                                let mut s = ExactSum::default();
                                d.for_each(|x| s.add(x).unwrap());
                                (s.value() / (k - 1) as f64).to_bits()
                            }
                            Separation::Min => d.fold(f64::INFINITY, f64::min).to_bits(),
                        }
                    })
                    .collect()
            };
            for mode in [Separation::Mean, Separation::Min] {
                let fast: Vec<u64> = separation(&c, mode).iter().map(|v| v.to_bits()).collect();
                assert_eq!(fast, naive(mode), "{metric:?} {mode:?}");
                for threads in [2, 3, 8, 64] {
                    let split: Vec<u64> = separation_on(&c, mode, threads)
                        .iter()
                        .map(|v| v.to_bits())
                        .collect();
                    assert_eq!(split, fast, "{metric:?} {mode:?} on {threads} threads");
                }
            }
        }
    }

    #[test]
    fn balanced_rows_cover_every_row_once() {
        for (k, parts) in [(2, 1), (2, 2), (40, 3), (1024, 2), (5, 9)] {
            let ranges = balanced_rows(k, parts);
            assert!(ranges.len() <= parts.max(1) + 1, "{k} {parts}");
            let rows: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(rows, (0..k).collect::<Vec<_>>(), "{k} {parts}");
        }
        // Two parts of 1024 rows: the first takes ~29% of the rows, half of the pairs.
        let pairs = |r: &std::ops::Range<usize>| r.clone().map(|i| 1023 - i).sum::<usize>();
        let halves = balanced_rows(1024, 2);
        assert_eq!(halves.len(), 2);
        assert!(pairs(&halves[0]).abs_diff(pairs(&halves[1])) < 1024);
    }

    #[test]
    fn separation_mean_and_min() {
        let c = Centroids::new(
            vec![0.0, 0.0, 3.0, 4.0, 6.0, 8.0],
            2,
            Metric::L2,
            vec![0, 1, 2],
        )
        .unwrap();
        assert_eq!(separation(&c, Separation::Mean), vec![7.5, 5.0, 7.5]);
        assert_eq!(separation(&c, Separation::Min), vec![5.0, 5.0, 5.0]);
        let one = Centroids::new(vec![1.0, 2.0], 2, Metric::L2, vec![4]).unwrap();
        assert_eq!(separation(&one, Separation::Mean), vec![0.0]);
    }

    #[test]
    fn systematic_rounding_adds_exactly_the_rounded_total() {
        // Fractions 0.3 + 0.45 + 0.8 + 0.2 + 0.75 = 2.5 -> 3 (rounded half up), for every seed.
        let fracs = [0.3, 0.45, 0.8, 0.2, 0.75];
        let units: Vec<i64> = fracs
            .iter()
            .map(|f| (f * SYSTEMATIC_UNIT as f64) as i64)
            .collect();
        let total: i64 = units.iter().sum();
        for seed in 0..200 {
            let offset = systematic_offset(total, seed);
            let mut before = 0;
            let mut extra = 0;
            for u in &units {
                let e = systematic_extra(before, before + u, offset);
                assert!((0..=1).contains(&e));
                extra += e;
                before += u;
            }
            assert_eq!(
                extra,
                (total as f64 / SYSTEMATIC_UNIT as f64).round() as i64,
                "seed {seed}"
            );
        }
    }

    /// Deterministic uniforms in [0, 1) for the tests.
    fn uniforms(n: usize, salt: u64) -> Vec<f64> {
        (0..n as u64)
            .map(|i| crate::hash::unit_interval(crate::hash::splitmix64(i ^ (salt << 32))))
            .collect()
    }

    /// Heavy-tailed token counts in ascending order (a few 30k-token books among short
    /// documents, like the sample corpus) and expected counts with fractional parts.
    fn heavy_tailed(n: usize) -> (Vec<f64>, Vec<f64>) {
        let u = uniforms(n, 1);
        let mut tokens: Vec<f64> = u
            .iter()
            .map(|x| (50.0 / (1.0 - x).powf(0.9)).min(30_000.0).floor())
            .collect();
        tokens.sort_by(f64::total_cmp);
        let expected = uniforms(n, 2).iter().map(|x| 3.0 * x * x).collect();
        (expected, tokens)
    }

    /// Every row's mean count over `runs` draws is within 5 standard errors of its expected
    /// count (`sums` are the rows' summed counts).
    fn assert_unbiased(sums: &[f64], expected: &[f64], runs: i64) {
        for (i, (s, c)) in sums.iter().zip(expected).enumerate() {
            let f = c - c.floor();
            let se = (f * (1.0 - f) / runs as f64).sqrt();
            let mean = s / runs as f64;
            assert!(
                (mean - c).abs() <= 5.0 * se + 1e-9,
                "row {i}: mean {mean} vs expected {c}"
            );
        }
    }

    #[test]
    fn systematic_counts_pin_the_document_total() {
        let (expected, tokens) = heavy_tailed(500);
        let decide = uniforms(500, 3);
        let total: f64 = expected.iter().sum();
        for seed in 0..50 {
            let n = systematic_counts(&expected, &tokens, &decide, false, true, seed);
            assert_eq!(n.iter().sum::<i64>(), total.round() as i64, "seed {seed}");
            for (c, k) in expected.iter().zip(&n) {
                assert!(*k == c.floor() as i64 || *k == c.floor() as i64 + 1);
            }
        }
    }

    #[test]
    fn balanced_systematic_counts_hold_the_tokens_and_stay_unbiased() {
        let rows = 400;
        let (expected, tokens) = heavy_tailed(rows);
        let target: f64 = expected.iter().zip(&tokens).map(|(c, t)| c * t).sum();
        let longest = tokens[rows - 1];
        let runs = 4000;
        let mut sums = vec![0.0; rows];
        let (mut worst, mut worst_plain) = (0.0f64, 0.0f64);
        for run in 0..runs {
            // The decisions are a hash of the id and the seed in SQL: here one fresh draw per run.
            let decide = uniforms(rows, 10 + run as u64);
            let realised =
                |n: &[i64]| -> f64 { n.iter().zip(&tokens).map(|(k, t)| *k as f64 * t).sum() };
            let n = systematic_counts(&expected, &tokens, &decide, true, false, run);
            let plain = systematic_counts(&expected, &tokens, &decide, false, false, run);
            worst = worst.max((realised(&n) - target).abs());
            worst_plain = worst_plain.max((realised(&plain) - target).abs());
            for (s, (k, c)) in sums.iter_mut().zip(n.iter().zip(&expected)) {
                assert!(*k == c.floor() as i64 || *k == c.floor() as i64 + 1);
                *s += *k as f64;
            }
        }
        println!(
            "worst miss: balanced {worst} tokens, comb alone {worst_plain} (longest {longest})"
        );
        // The comb alone misses by up to a whole book; balanced, by a fraction of one.
        assert!(worst_plain > longest / 4.0, "{worst_plain}");
        assert!(
            worst < 0.1 * longest,
            "balanced misses by {worst} tokens (longest {longest})"
        );
        assert_unbiased(&sums, &expected, runs);
    }

    /// Unbiased also when the pool cannot absorb a document (partial steps): one 20,000-token
    /// document among 100 short ones.
    #[test]
    fn partial_balancing_steps_stay_unbiased() {
        let rows = 101;
        let mut tokens: Vec<f64> = (0..100).map(|k| 50.0 + (k % 7) as f64 * 10.0).collect();
        tokens.sort_by(f64::total_cmp);
        tokens.push(20_000.0);
        let mut expected: Vec<f64> = uniforms(100, 5).iter().map(|x| 0.02 + 0.96 * x).collect();
        expected.push(1.3);
        let runs = 6000;
        let mut sums = vec![0.0; rows];
        for run in 0..runs {
            let decide = uniforms(rows, 20_000 + run as u64);
            let n = systematic_counts(&expected, &tokens, &decide, true, false, run);
            for (s, k) in sums.iter_mut().zip(&n) {
                *s += *k as f64;
            }
        }
        assert_unbiased(&sums, &expected, runs);
    }

    #[test]
    fn balancing_handles_rows_without_tokens_or_fractions() {
        let expected = [0.5, 2.0, 0.25, 0.0, 0.75, 1.5];
        let tokens = [0.0, 0.0, 10.0, 10.0, 10.0, 1000.0];
        for run in 0..100 {
            let decide = uniforms(6, 100 + run);
            let n = systematic_counts(&expected, &tokens, &decide, true, false, run as i64);
            assert_eq!(n[1], 2);
            assert_eq!(n[3], 0);
            for (c, k) in expected.iter().zip(&n) {
                assert!(
                    *k == c.floor() as i64 || *k == c.floor() as i64 + 1,
                    "{n:?}"
                );
            }
        }
    }

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
            let y = ExactSum::from_bytes(&y.to_bytes()).unwrap();
            x.merge(&y).unwrap();
            assert_eq!(x.value().to_bits(), whole.to_bits(), "split {split}");
        }
        assert!(ExactSum::from_bytes(&[1]).is_err());
        assert!(ExactSum::from_bytes(&[0, 0, 1]).is_err());
    }
}
