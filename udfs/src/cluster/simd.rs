//! The two places samplemix calls into `unsafe` code for the nearest-centroid kernels:
//! `matrixmultiply::sgemm` (raw pointers) and an AVX-512 micro-kernel (intrinsics under a
//! run-time feature check). The crate's only other `unsafe` code, under the same kind of check:
//! the calls of the AVX-512 copies of two safe loops (`mix::exp::exp_into`, the dot products of `cluster::metric::CosineColumns`), the AVX-512 id hashes
//! of `hash/avx512.rs`, and the AVX-512 byte masks of `quality/tokenize/masks.rs`. This module checks every size a pointer relies on before the `unsafe`
//! block that uses it.
#![allow(unsafe_code)]

/// Centroids per SIMD panel (one AVX-512 register of f32).
pub const LANES: usize = 16;
/// Rows per micro-kernel call.
pub const MR: usize = 6;
/// Panels per micro-kernel call (MR × NR accumulators: 24 of the 32 AVX-512 registers).
pub const NR: usize = 4;

/// Running best and second-best score of one row, per lane (so per centroid of a panel).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub struct LaneTop2 {
    /// Best score seen in each lane.
    pub best: [f32; LANES],
    /// Centroid index of `best`.
    pub best_idx: [u32; LANES],
    /// Second-best score in each lane.
    pub second: [f32; LANES],
    /// Centroid index of `second`.
    pub second_idx: [u32; LANES],
}

impl Default for LaneTop2 {
    fn default() -> Self {
        Self {
            best: [f32::NEG_INFINITY; LANES],
            best_idx: [u32::MAX; LANES],
            second: [f32::NEG_INFINITY; LANES],
            second_idx: [u32::MAX; LANES],
        }
    }
}

/// `out[i·k + j] = x_i · c_j` for the `m` rows of `x` (row-major, `d` wide) and the `k` rows of
/// `c` (row-major, `d` wide), with matrixmultiply's sgemm (AVX2/FMA dispatch at run time).
pub fn dot_products(x: &[f32], c: &[f32], d: usize, out: &mut [f32]) {
    let (m, k) = (x.len() / d.max(1), c.len() / d.max(1));
    assert!(
        d > 0 && x.len() == m * d && c.len() == k * d && out.len() >= m * k,
        "dot_products: inconsistent sizes"
    );
    // SAFETY: sgemm reads m·d values of x with row stride d, k·d values of c read as the d × k
    // matrix cᵀ (row stride 1, column stride d), and writes m·k values of out with row stride k;
    // the assert above checks every one of those extents against the slices' lengths.
    unsafe {
        matrixmultiply::sgemm(
            m,
            d,
            k,
            1.0,
            x.as_ptr(),
            d as isize,
            1,
            c.as_ptr(),
            1,
            d as isize,
            0.0,
            out.as_mut_ptr(),
            k as isize,
            1,
        );
    }
}

/// Whether this CPU runs the AVX-512 kernel.
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One micro-kernel step: the scores of `MR` rows against `NR` panels of packed centroids,
/// folded into each row's per-lane top two.
///
/// - `x`: `MR` rows of `d` values, row-major (`x.len() == MR·d`);
/// - `panels`: `NR` panels, each `d × LANES` values, dimension-major (`panels.len() == NR·d·LANES`);
/// - `bias`: `NR·LANES` values added to the dot products (score = x·c + bias);
/// - `first`: the centroid index of lane 0 of the first panel.
///
/// Returns false (and does nothing) when this CPU has no AVX-512; the caller then uses the
/// portable path.
pub fn top2_block(
    x: &[f32],
    panels: &[f32],
    bias: &[f32],
    d: usize,
    first: u32,
    state: &mut [LaneTop2; MR],
) -> bool {
    assert!(
        x.len() == MR * d && panels.len() == NR * d * LANES && bias.len() == NR * LANES,
        "top2_block: inconsistent sizes"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            // SAFETY: the CPU supports AVX-512F (checked just above), and the assert checked
            // the lengths of x, panels and bias that the kernel indexes (MR·d, NR·d·LANES and
            // NR·LANES values).
            unsafe { avx512::top2_block(x, panels, bias, d, first, state) };
            return true;
        }
    }
    let _ = (first, state);
    false
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{LaneTop2, LANES, MR, NR};

    /// See [`super::top2_block`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F, `x` must hold `MR·d` values, `panels` `NR·d·LANES` and
    /// `bias` `NR·LANES`: every pointer offset below stays inside those lengths (p < d, j < NR,
    /// r < MR), and `LaneTop2`'s arrays are 64-byte aligned for the aligned loads and stores.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn top2_block(
        x: &[f32],
        panels: &[f32],
        bias: &[f32],
        d: usize,
        first: u32,
        state: &mut [LaneTop2; MR],
    ) {
        let xp = x.as_ptr();
        let cp = panels.as_ptr();
        let panel = d * LANES;
        let mut acc = [[_mm512_setzero_ps(); NR]; MR];
        let mut c = [_mm512_setzero_ps(); NR];
        for p in 0..d {
            for (j, cj) in c.iter_mut().enumerate() {
                *cj = _mm512_loadu_ps(cp.add(j * panel + p * LANES));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let v = _mm512_set1_ps(*xp.add(r * d + p));
                for (a, cj) in row.iter_mut().zip(&c) {
                    *a = _mm512_fmadd_ps(v, *cj, *a);
                }
            }
        }
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (row, top) in acc.iter().zip(state.iter_mut()) {
            let mut b = _mm512_load_ps(top.best.as_ptr());
            let mut bi = _mm512_load_si512(top.best_idx.as_ptr().cast());
            let mut s = _mm512_load_ps(top.second.as_ptr());
            let mut si = _mm512_load_si512(top.second_idx.as_ptr().cast());
            for (j, a) in row.iter().enumerate() {
                let score = _mm512_add_ps(*a, _mm512_loadu_ps(bias.as_ptr().add(j * LANES)));
                let idx =
                    _mm512_add_epi32(lane, _mm512_set1_epi32((first as usize + j * LANES) as i32));
                let above_best = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(score, b);
                let above_second = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(score, s);
                s = _mm512_mask_blend_ps(
                    above_best,
                    _mm512_mask_blend_ps(above_second, s, score),
                    b,
                );
                si = _mm512_mask_blend_epi32(
                    above_best,
                    _mm512_mask_blend_epi32(above_second, si, idx),
                    bi,
                );
                b = _mm512_mask_blend_ps(above_best, b, score);
                bi = _mm512_mask_blend_epi32(above_best, bi, idx);
            }
            _mm512_store_ps(top.best.as_mut_ptr(), b);
            _mm512_store_si512(top.best_idx.as_mut_ptr().cast(), bi);
            _mm512_store_ps(top.second.as_mut_ptr(), s);
            _mm512_store_si512(top.second_idx.as_mut_ptr().cast(), si);
        }
    }
}
