//! The portable hashes every deterministic choice of samplemix rests on: FNV-1a 64 and the
//! SplitMix64 finaliser.
//!
//! Their outputs are part of the public contract: `samplemix_uniform` (and so every count),
//! `embed`, `minhash` and the k-means sample are defined through them, so a result computed today
//! is reproduced on any machine and by any later version. The tests below pin their values;
//! changing either function is a breaking change of every output.

/// FNV-1a 64 offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
pub const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// One FNV-1a step: fold one byte (or one wider word) into `h`.
#[inline]
pub const fn fnv1a_step(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(FNV_PRIME)
}

/// FNV-1a 64 of `bytes`.
#[inline]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, b| fnv1a_step(h, u64::from(*b)))
}

/// [`fnv1a64`] of four byte strings at once (the same values): one FNV chain waits on its
/// multiply's latency for every byte, four interleaved chains keep the multiplier busy.
#[inline]
pub fn fnv1a64_x4(s: [&[u8]; 4]) -> [u64; 4] {
    let common = s.iter().map(|b| b.len()).min().unwrap_or(0);
    let mut h = [FNV_OFFSET; 4];
    let lanes = s[0][..common]
        .iter()
        .zip(&s[1][..common])
        .zip(&s[2][..common])
        .zip(&s[3][..common]);
    for (((a, b), c), d) in lanes {
        h[0] = fnv1a_step(h[0], u64::from(*a));
        h[1] = fnv1a_step(h[1], u64::from(*b));
        h[2] = fnv1a_step(h[2], u64::from(*c));
        h[3] = fnv1a_step(h[3], u64::from(*d));
    }
    for (h, s) in h.iter_mut().zip(s) {
        *h = s[common..]
            .iter()
            .fold(*h, |h, b| fnv1a_step(h, u64::from(*b)));
    }
    h
}

/// [`uniform_premixed`] of `n` ids (`id(i)` gives the i-th one's bytes), four at a time with
/// [`fnv1a64_x4`].
pub fn uniforms_premixed<'a>(
    n: usize,
    id: impl Fn(usize) -> &'a [u8],
    mixed_seed: u64,
) -> Vec<f64> {
    let finish = |h: u64| unit_interval(splitmix64(h ^ mixed_seed));
    let mut out = Vec::with_capacity(n);
    let whole = n - n % 4;
    for i in (0..whole).step_by(4) {
        let h = fnv1a64_x4([id(i), id(i + 1), id(i + 2), id(i + 3)]);
        out.extend(h.map(finish));
    }
    out.extend((whole..n).map(|i| finish(fnv1a64(id(i)))));
    out
}

#[cfg(target_arch = "x86_64")]
mod avx512;

/// [`uniforms_premixed`] of the ids of an Arrow string-view column without NULLs (`views` its
/// views, `id(i)` the i-th id's bytes): 32 ids at a time with AVX-512 where the CPU has
/// it and a block's 32 are all stored inline in their views, four at a time otherwise. The same
/// values either way.
#[allow(unsafe_code)]
pub fn view_uniforms_premixed<'a>(
    views: &[u128],
    id: impl Fn(usize) -> &'a [u8],
    mixed_seed: u64,
) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        const N: usize = avx512::BLOCK;
        // Filled block by block (not zeroed first: 8 bytes a row of memset otherwise).
        let mut out = Vec::with_capacity(views.len());
        let (blocks, rest) = views.as_chunks::<N>();
        for (k, v) in blocks.iter().enumerate() {
            let longest = v.iter().map(|v| *v as u32).max().unwrap_or(0);
            if longest <= avx512::INLINE_LEN {
                let mut block = [0.0; N];
                // SAFETY: `available` checked AVX-512F and DQ, and `longest` every length.
                unsafe { avx512::block(v, longest, mixed_seed, &mut block) };
                out.extend_from_slice(&block);
            } else {
                let at = N * k;
                out.extend(uniforms_premixed(N, |i| id(at + i), mixed_seed));
            }
        }
        let at = views.len() - rest.len();
        out.extend(uniforms_premixed(rest.len(), |i| id(at + i), mixed_seed));
        return out;
    }
    uniforms_premixed(views.len(), id, mixed_seed)
}

/// SplitMix64's output function (Steele, Lea and Flood 2014): a bijective 64-bit mixer.
#[inline]
pub const fn splitmix64(z: u64) -> u64 {
    let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit hash as a uniform number in [0, 1): its top 53 bits over 2^53.
#[inline]
pub fn unit_interval(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// u(x) of the counts: `m = SplitMix64(FNV-1a-64(bytes) XOR SplitMix64(seed))`, `u = (m >> 11) / 2^53`.
#[inline]
pub fn uniform(bytes: &[u8], seed: i64) -> f64 {
    uniform_premixed(bytes, splitmix64(seed as u64))
}

/// [`uniform`] with `SplitMix64(seed)` already computed (once per batch, not per row).
#[inline]
pub fn uniform_premixed(bytes: &[u8], mixed_seed: u64) -> f64 {
    unit_interval(splitmix64(fnv1a64(bytes) ^ mixed_seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_lane_fnv_equals_fnv() {
        let ids: Vec<String> = (0..23)
            .map(|i| "x".repeat(i % 7) + &format!("doc-{}", i * 7919))
            .collect();
        let bytes = |i: usize| ids[i].as_bytes();
        for n in [0, 1, 3, 4, 5, 8, 23] {
            let got = uniforms_premixed(n, bytes, 42);
            let want: Vec<f64> = (0..n).map(|i| uniform_premixed(bytes(i), 42)).collect();
            assert_eq!(got, want);
        }
        assert_eq!(
            fnv1a64_x4([b"", b"a", b"ab", b""]),
            [fnv1a64(b""), fnv1a64(b"a"), fnv1a64(b"ab"), fnv1a64(b"")]
        );
    }

    #[test]
    fn simd_view_uniforms_equal_fnv() {
        use datafusion::arrow::array::{Array, StringViewArray};
        // Blocks of inline ids (0..=12 bytes, ASCII and not), a block with one longer id, a
        // block of longer ids, and a remainder.
        let inline = |i: usize| -> String {
            let s = format!("{i}-é{}", "x".repeat(i % 9));
            s.chars().take(i % 13).collect::<String>()
        };
        let ids: Vec<String> = (0..96)
            .map(inline)
            .chain((96..128).map(|i| {
                if i == 100 {
                    format!("doc-{i}-long-id")
                } else {
                    inline(i)
                }
            }))
            .chain((128..160).map(|i| format!("document-{i:08}")))
            .chain((160..171).map(inline))
            .collect();
        assert!(ids[..96].iter().all(|s| s.len() <= 12) && ids[100].len() > 12);
        let array = StringViewArray::from_iter_values(&ids);
        assert_eq!(array.len(), ids.len());
        for seed in [0, 42, u64::MAX] {
            let got = view_uniforms_premixed(array.views(), |i| array.value(i).as_bytes(), seed);
            let want: Vec<f64> = ids
                .iter()
                .map(|s| uniform_premixed(s.as_bytes(), seed))
                .collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn pinned_values_never_change() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // SplitMix64 from state 0: the first outputs of the reference generator.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6e78_9e6a_a1b9_65f4);
        // u(x): the values samplemix_uniform returns, so counts never drift between versions
        // (checked against an independent Python computation of the documented formula).
        assert_eq!(uniform(b"doc-1", 0).to_bits(), 0x3fd0_03fe_158c_fa06);
        assert_eq!(uniform(b"doc-1", 1).to_bits(), 0x3fe3_0810_edaf_6fa7);
    }

    #[test]
    fn uniform_is_in_range_and_flat() {
        let mut mean = 0.0;
        for i in 0..100_000 {
            let u = uniform(format!("id{i}").as_bytes(), 42);
            assert!((0.0..1.0).contains(&u));
            mean += u;
        }
        mean /= 100_000.0;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }
}
