//! Distance metrics shared by fitting, assignment and separation.

use crate::args::{choice_traits, Choice};

/// How distances between embeddings and centroids are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Metric {
    /// Cosine distance 1 − cos(x, c); fitting L2-normalises the embeddings first.
    #[default]
    Cosine,
    /// Euclidean distance.
    L2,
}

impl Choice for Metric {
    const WHAT: &'static str = "metric";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("cosine", Metric::Cosine),
        ("l2", Metric::L2),
        ("euclidean", Metric::L2),
    ];
}
choice_traits!(Metric);

impl Metric {
    /// Distance between two f32 vectors under this metric (accumulated in f64).
    pub fn distance(self, a: &[f32], b: &[f32]) -> f64 {
        match self {
            Metric::L2 => a
                .iter()
                .zip(b)
                .map(|(x, y)| {
                    let d = f64::from(*x) - f64::from(*y);
                    d * d
                })
                .sum::<f64>()
                .sqrt(),
            Metric::Cosine => {
                let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
                for (x, y) in a.iter().zip(b) {
                    let (x, y) = (f64::from(*x), f64::from(*y));
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                cosine_from(dot, na, nb)
            }
        }
    }
}

/// 1 − dot / (|a|·|b|), clamped at 0, from the dot product and the sums of squares `na`, `nb`;
/// 1 when either vector is zero (it has no direction, so it counts as orthogonal to everything).
fn cosine_from(dot: f64, na: f64, nb: f64) -> f64 {
    cosine_from_roots(dot, na.sqrt(), nb.sqrt())
}

/// [`cosine_from`] with the square roots |a|, |b| already taken (zero exactly when the sums of
/// squares are). Without a branch, so that a loop over it vectorises.
#[inline(always)]
fn cosine_from_roots(dot: f64, ra: f64, rb: f64) -> f64 {
    let d = (1.0 - dot / (ra * rb)).max(0.0);
    if ra == 0.0 || rb == 0.0 {
        1.0
    } else {
        d
    }
}

/// Distance between two finite f64 vectors, exact in f64 for any magnitude: components are
/// scaled by the largest one first, so 1e300-sized values neither overflow nor lose the result.
pub fn distance_f64(metric: Metric, a: &[f64], b: &[f64]) -> f64 {
    let max_abs = |v: &mut dyn Iterator<Item = f64>| v.fold(0.0f64, |m, x| m.max(x.abs()));
    match metric {
        Metric::L2 => {
            let scale = max_abs(&mut a.iter().zip(b).map(|(x, y)| x - y));
            if scale == 0.0 || !scale.is_finite() {
                // Equal vectors, or differences beyond f64 (only when both are near f64::MAX).
                return if scale == 0.0 { 0.0 } else { f64::INFINITY };
            }
            let s: f64 = a
                .iter()
                .zip(b)
                .map(|(x, y)| {
                    let d = (x - y) / scale;
                    d * d
                })
                .sum();
            scale * s.sqrt()
        }
        Metric::Cosine => {
            let (sa, sb) = (
                max_abs(&mut a.iter().copied()),
                max_abs(&mut b.iter().copied()),
            );
            if sa == 0.0 || sb == 0.0 {
                return 1.0;
            }
            let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
            for (x, y) in a.iter().zip(b) {
                let (x, y) = (x / sa, y / sb);
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
            cosine_from(dot, na, nb)
        }
    }
}

/// A vector prepared for many [`distance_f64`] cosine distances: its components scaled by the
/// largest magnitude and their sum of squares, computed once. [`cosine_prepared`] of two of
/// them is bit for bit `distance_f64(Metric::Cosine, a, b)` (the same operations in the same
/// order), without redoing the per-vector half of the work for every pair.
#[derive(Debug, Clone)]
pub struct CosinePrepared {
    scaled: Vec<f64>,
    norm: f64,
}

impl CosinePrepared {
    /// Prepare `a` (finite values).
    pub fn new(a: &[f64]) -> Self {
        let sa = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if sa == 0.0 {
            return Self {
                scaled: Vec::new(),
                norm: 0.0,
            };
        }
        let scaled: Vec<f64> = a.iter().map(|x| x / sa).collect();
        let mut norm = 0.0f64;
        for x in &scaled {
            norm += x * x;
        }
        Self { scaled, norm }
    }
}

/// Many prepared vectors of one length stored column by column, for the distances from one
/// vector to a run of them: [`CosineColumns::distances`] gives, bit for bit, what
/// [`cosine_prepared`] gives for each (each dot product still adds its products in component
/// order), but adds one component to many dot products at a time, which vectorises.
#[derive(Debug, Clone)]
pub struct CosineColumns {
    k: usize,
    /// Component d of vector j at `d·k + j` (0 for zero vectors, which are never read).
    columns: Vec<f64>,
    /// The square roots of the vectors' sums of squares, 0 for zero vectors (whose distance
    /// to any vector is 1).
    roots: Vec<f64>,
}

impl CosineColumns {
    /// The vectors `vs`, all of one length (or zero vectors).
    pub fn new(vs: &[CosinePrepared]) -> Self {
        let k = vs.len();
        let dim = vs.iter().map(|v| v.scaled.len()).max().unwrap_or(0);
        let mut columns = vec![0.0; dim * k];
        for (j, v) in vs.iter().enumerate() {
            for (d, x) in v.scaled.iter().enumerate() {
                columns[d * k + j] = *x;
            }
        }
        Self {
            k,
            columns,
            roots: vs
                .iter()
                .map(|v| {
                    if v.scaled.is_empty() {
                        0.0
                    } else {
                        v.norm.sqrt()
                    }
                })
                .collect(),
        }
    }

    /// `out[j − from] = cosine_prepared(a, vs[j])` for j in from..k (`out.len() = k − from`).
    pub fn distances(&self, a: &CosinePrepared, from: usize, out: &mut [f64]) {
        if a.scaled.is_empty() {
            out.fill(1.0);
            return;
        }
        cosines(self, &a.scaled, a.norm.sqrt(), from, out);
    }
}

/// `out[j − from]` = the cosine distance of `xs` (square root of its sum of squares: `root`)
/// to vector j of `c`: the dot product, its products added in component order, then
/// [`cosine_from`]'s formula.
///
/// On x86-64 a second copy, compiled for AVX-512 (8 lanes, not SSE2's 2, and wider blocks), is
/// picked at run time: the same IEEE operations in the same order, never fused, so the same
/// bits.
fn cosines(c: &CosineColumns, xs: &[f64], root: f64, from: usize, out: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, the only feature the function enables; the function
        // itself is safe code (slices, no pointers).
        return unsafe { cosines_avx512(c, xs, root, from, out) };
    }
    dots_blocked::<16>(&c.columns, c.k, xs, from, out);
    finish_cosines(out, root, &c.roots[from..]);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn cosines_avx512(c: &CosineColumns, xs: &[f64], root: f64, from: usize, out: &mut [f64]) {
    dots_blocked::<64>(&c.columns, c.k, xs, from, out);
    finish_cosines(out, root, &c.roots[from..]);
}

/// Dot products into distances, with the square roots taken once per vector.
#[inline(always)]
fn finish_cosines(out: &mut [f64], root: f64, roots: &[f64]) {
    for (o, rb) in out.iter_mut().zip(roots) {
        *o = cosine_from_roots(*o, root, *rb);
    }
}

/// The dot products of [`cosines`], in blocks of `B` that stay in registers while every
/// component is added to them (a loop over all of `out` per component would load and store
/// each one per component): `B` = 16 fills 8 SSE2 registers, 64 fills 8 AVX-512 ones.
#[inline(always)]
fn dots_blocked<const B: usize>(
    columns: &[f64],
    k: usize,
    xs: &[f64],
    from: usize,
    out: &mut [f64],
) {
    let (full, tail) = out.split_at_mut(out.len() / B * B);
    for (b, block) in full.chunks_exact_mut(B).enumerate() {
        let start = from + b * B;
        let mut acc = [0.0f64; B];
        for (d, x) in xs.iter().enumerate() {
            let column: &[f64; B] = columns[d * k + start..d * k + start + B]
                .try_into()
                .expect("a block of B columns");
            for (a, y) in acc.iter_mut().zip(column) {
                *a += x * y;
            }
        }
        block.copy_from_slice(&acc);
    }
    let start = from + full.len();
    tail.fill(0.0);
    for (d, x) in xs.iter().enumerate() {
        let column = &columns[d * k + start..d * k + start + tail.len()];
        for (a, y) in tail.iter_mut().zip(column) {
            *a += x * y;
        }
    }
}

/// `distance_f64(Metric::Cosine, a, b)` of two prepared vectors of one length (the pairwise
/// form [`CosineColumns`] must equal bit for bit).
#[cfg(test)]
pub fn cosine_prepared(a: &CosinePrepared, b: &CosinePrepared) -> f64 {
    if a.scaled.is_empty() || b.scaled.is_empty() {
        return 1.0;
    }
    let mut dot = 0.0f64;
    for (x, y) in a.scaled.iter().zip(&b.scaled) {
        dot += x * y;
    }
    cosine_from(dot, a.norm, b.norm)
}

/// L2-normalise each row of a row-major matrix in place (zero rows stay zero).
pub fn normalize_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for x in row.iter_mut() {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_distances_cover_the_whole_range() {
        assert_eq!(distance_f64(Metric::L2, &[0.0, 0.0], &[3.0, 4.0]), 5.0);
        let d = distance_f64(Metric::L2, &[0.0, 0.0], &[3e300, 4e300]);
        assert!((d / 5e300 - 1.0).abs() < 1e-15, "{d}");
        let c = distance_f64(Metric::Cosine, &[1e300, 0.0], &[0.0, 1e-300]);
        assert_eq!(c, 1.0);
        assert!(distance_f64(Metric::Cosine, &[2e300, 2e300], &[1.0, 1.0]) < 1e-15);
        assert_eq!(distance_f64(Metric::Cosine, &[0.0], &[1.0]), 1.0);
        // The f32 form agrees on ordinary values.
        let (a, b) = ([0.5f32, -1.0, 2.0], [1.5f32, 0.25, -2.0]);
        let (a64, b64): (Vec<f64>, Vec<f64>) = (
            a.iter().map(|v| f64::from(*v)).collect(),
            b.iter().map(|v| f64::from(*v)).collect(),
        );
        for m in [Metric::L2, Metric::Cosine] {
            assert!((m.distance(&a, &b) - distance_f64(m, &a64, &b64)).abs() < 1e-12);
        }
    }

    #[test]
    fn names_parse_case_insensitively_with_aliases() {
        assert_eq!(" COSINE ".parse::<Metric>().unwrap(), Metric::Cosine);
        assert_eq!("Euclidean".parse::<Metric>().unwrap(), Metric::L2);
        assert_eq!(Metric::L2.to_string(), "l2");
        let e = "manhattan".parse::<Metric>().unwrap_err().to_string();
        assert_eq!(e, "unknown metric 'manhattan'; accepted: cosine, l2");
    }

    #[test]
    fn cosine_columns_equal_the_pairwise_form_bit_for_bit() {
        let mut state = 3u64;
        // More vectors than one AVX-512 block (64) and a tail, and a zero vector.
        let vs: Vec<CosinePrepared> = (0..150)
            .map(|j| {
                let v: Vec<f64> = (0..19)
                    .map(|_| {
                        state = crate::hash::splitmix64(state);
                        (crate::hash::unit_interval(state) - 0.5) * 1e3
                    })
                    .collect();
                CosinePrepared::new(&if j == 5 { vec![0.0; 19] } else { v })
            })
            .collect();
        let columns = CosineColumns::new(&vs);
        for (i, a) in vs.iter().enumerate() {
            let mut out = vec![0.0; vs.len() - i];
            columns.distances(a, i, &mut out);
            for (j, d) in (i..vs.len()).zip(&out) {
                assert_eq!(d.to_bits(), cosine_prepared(a, &vs[j]).to_bits(), "{i} {j}");
            }
            // The portable blocks, whichever copy `distances` ran.
            if !a.scaled.is_empty() {
                let mut dots = vec![0.0; vs.len() - i];
                dots_blocked::<16>(&columns.columns, columns.k, &a.scaled, i, &mut dots);
                for (j, dot) in (i..vs.len()).zip(&dots) {
                    let mut one = 0.0f64;
                    for (x, y) in a.scaled.iter().zip(&vs[j].scaled) {
                        one += x * y;
                    }
                    if !vs[j].scaled.is_empty() {
                        assert_eq!(dot.to_bits(), one.to_bits(), "{i} {j}");
                    }
                }
            }
        }
    }
}
