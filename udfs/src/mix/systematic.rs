//! Systematic rounding (`rounding=systematic`): counts whose sum is pinned, and in tokens
//! mode long documents balanced against shorter ones first (see docs/METHOD.md).

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
    let units = fraction_units(expected, tokens, decide, balance);
    let offset = comb_offset(units.iter().sum(), seed, whole_total);
    comb_counts(expected, &units, 0, offset)
}

/// A fraction in [0, 1] as [`SYSTEMATIC_UNIT`]s, rounded half up.
pub fn fraction_unit(fraction: f64) -> i64 {
    (fraction * SYSTEMATIC_UNIT as f64 + 0.5).floor() as i64
}

/// The fractional parts of the expected counts, token-balanced first when `balance`, as
/// [`SYSTEMATIC_UNIT`]s: the slices of the comb (see [`systematic_counts`]).
pub fn fraction_units(expected: &[f64], tokens: &[f64], decide: &[f64], balance: bool) -> Vec<i64> {
    let mut pi: Vec<f64> = expected.iter().map(|c| c - c.floor()).collect();
    if balance {
        balance_tokens(&mut pi, tokens, decide);
    }
    pi.into_iter().map(fraction_unit).collect()
}

/// The comb's offset: [`systematic_offset`]'s when the total is pinned (`whole_total`),
/// otherwise uniform in [0, UNIT) from the seed.
pub fn comb_offset(total: i64, seed: i64, whole_total: bool) -> i64 {
    if whole_total {
        systematic_offset(total, seed)
    } else {
        let u = crate::hash::uniform(b"samplemix systematic rounding", seed);
        ((u * SYSTEMATIC_UNIT as f64).floor() as i64).min(SYSTEMATIC_UNIT - 1)
    }
}

/// ⌊c⌋ plus the comb points each row's slice holds, the slices laid end to end from `start`
/// (the units of the rows before these in a longer comb).
pub fn comb_counts(expected: &[f64], units: &[i64], start: i64, offset: i64) -> Vec<i64> {
    let mut before = start;
    expected
        .iter()
        .zip(units)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// One comb over buckets laid end to end (each bucket rounded on its own, starting after
    /// the units of the buckets before it) pins the total like one window.
    #[test]
    fn a_comb_over_buckets_pins_the_document_total() {
        let (expected, tokens) = heavy_tailed(600);
        let decide = uniforms(600, 4);
        let total: f64 = expected.iter().sum();
        let buckets: Vec<std::ops::Range<usize>> =
            vec![0..150, 150..151, 151..151, 151..420, 420..600];
        let units = fraction_units(&expected, &tokens, &decide, false);
        let all: i64 = units.iter().sum();
        for seed in 0..50 {
            let offset = comb_offset(all, seed, true);
            let mut start = 0;
            let mut n = Vec::new();
            for b in &buckets {
                let part = fraction_units(
                    &expected[b.clone()],
                    &tokens[b.clone()],
                    &decide[b.clone()],
                    false,
                );
                n.extend(comb_counts(&expected[b.clone()], &part, start, offset));
                start += part.iter().sum::<i64>();
            }
            assert_eq!(n.iter().sum::<i64>(), total.round() as i64, "seed {seed}");
            assert_eq!(
                n,
                systematic_counts(&expected, &tokens, &decide, false, true, seed)
            );
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
}
