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
