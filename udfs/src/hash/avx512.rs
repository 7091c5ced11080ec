//! [`super::uniform_premixed`] of 32 ids at once with AVX-512, for the ids of an Arrow
//! string-view column that are stored inline in their views (12 bytes or fewer, as most
//! document ids are): the FNV-1a chains run in the 64-bit lanes of four registers,
//! and the SplitMix64 finish and the conversion to [0, 1) too. Every lane computes exactly the
//! scalar formula (wrapping 64-bit multiplies, xors and shifts, an exact u64 → f64 conversion of
//! a 53-bit value and a multiply by 2^-53), so the values are the same bits.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{FNV_OFFSET, FNV_PRIME};

/// Longest id stored inline in an Arrow string view.
pub(super) const INLINE_LEN: u32 = 12;

/// Whether this CPU runs [`block`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
}

/// Ids per [`block`]: four registers of eight lanes, whose FNV chains interleave (one chain
/// waits ~15 cycles on each 64-bit multiply; four keep the multiplier busy).
pub(super) const BLOCK: usize = 32;

/// u(x) of the ids of [`BLOCK`] string views, the longest `longest` bytes (at most
/// [`INLINE_LEN`]: their bytes are then view bytes 4.. of the view), written to `out`.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512DQ ([`available`]), and no view's length (its low
/// 32 bits) may pass `longest` ≤ [`INLINE_LEN`]: the lanes read only view bytes 4..16.
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) unsafe fn block(
    views: &[u128; BLOCK],
    longest: u32,
    mixed: u64,
    out: &mut [f64; BLOCK],
) {
    let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    let odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    let mut lens = [_mm512_setzero_si512(); 4];
    // Per register: the id's bytes 0..4, 4..8 and 8..12, each in the low bytes of its lanes.
    let mut words = [[_mm512_setzero_si512(); 4]; 3];
    for g in 0..4 {
        // SAFETY: `views` is 512 bytes: unaligned 64-byte loads at offsets 128·g and 128·g + 64.
        let (a, b) = unsafe {
            (
                _mm512_loadu_si512(views.as_ptr().add(8 * g).cast()),
                _mm512_loadu_si512(views.as_ptr().add(8 * g + 4).cast()),
            )
        };
        // Lane i: the low and the high 8 bytes of view 8·g + i.
        let low = _mm512_permutex2var_epi64(a, even, b);
        let high = _mm512_permutex2var_epi64(a, odd, b);
        lens[g] = _mm512_and_si512(low, _mm512_set1_epi64(0xffff_ffff));
        words[0][g] = _mm512_srli_epi64::<32>(low);
        words[1][g] = high;
        words[2][g] = _mm512_srli_epi64::<32>(high);
    }
    let byte = _mm512_set1_epi64(0xff);
    let prime = _mm512_set1_epi64(FNV_PRIME as i64);
    let mut h = [_mm512_set1_epi64(FNV_OFFSET as i64); 4];
    for j in 0..longest.min(INLINE_LEN) {
        let (word, at) = (
            &words[j as usize / 4],
            _mm512_set1_epi64(8 * (j % 4) as i64),
        );
        let bound = _mm512_set1_epi64(j as i64);
        for g in 0..4 {
            let b = _mm512_and_si512(_mm512_srlv_epi64(word[g], at), byte);
            let next = _mm512_mullo_epi64(_mm512_xor_si512(h[g], b), prime);
            // Only the lanes whose id is longer than j take the byte.
            let longer = _mm512_cmpgt_epu64_mask(lens[g], bound);
            h[g] = _mm512_mask_mov_epi64(h[g], longer, next);
        }
    }
    for (g, h) in h.into_iter().enumerate() {
        let mut z = _mm512_xor_si512(h, _mm512_set1_epi64(mixed as i64));
        z = _mm512_add_epi64(z, _mm512_set1_epi64(0x9E37_79B9_7F4A_7C15_u64 as i64));
        z = _mm512_mullo_epi64(
            _mm512_xor_si512(z, _mm512_srli_epi64::<30>(z)),
            _mm512_set1_epi64(0xBF58_476D_1CE4_E5B9_u64 as i64),
        );
        z = _mm512_mullo_epi64(
            _mm512_xor_si512(z, _mm512_srli_epi64::<27>(z)),
            _mm512_set1_epi64(0x94D0_49BB_1331_11EB_u64 as i64),
        );
        z = _mm512_xor_si512(z, _mm512_srli_epi64::<31>(z));
        let u = _mm512_mul_pd(
            _mm512_cvtepu64_pd(_mm512_srli_epi64::<11>(z)),
            _mm512_set1_pd(1.0 / (1u64 << 53) as f64),
        );
        // SAFETY: `out` is 32 f64: an unaligned 64-byte store at offset 64·g.
        unsafe { _mm512_storeu_pd(out.as_mut_ptr().add(8 * g), u) };
    }
}
