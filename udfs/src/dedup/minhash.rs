//! MinHash signatures (Broder 1997) and LSH banding (Leskovec, Rajaraman and Ullman, *Mining
//! of Massive Datasets*, ch. 3), with portable integer hashes only, so a signature is the same
//! on every machine and in every later version.
//!
//! - Words are those of [`crate::words`] (lower-cased alphanumeric runs; punctuation, case and
//!   whitespace do not matter). A shingle is `shingle_words` consecutive words, hashed to 64 bits
//!   by folding the words' FNV-1a hashes through SplitMix64. A text with at least one word but
//!   fewer than `shingle_words` words has one shingle: all its words. A text with no word
//!   (empty, only punctuation or whitespace) has no shingle and its signature is all `u32::MAX`
//!   (so all such texts are duplicates of each other, as their normalised texts are equal).
//! - Hash function i is multiply-add-shift on the 64-bit shingle hash,
//!   `h_i(x) = (a_i·x + b_i mod 2^64) >> 32` with `a_i` odd and `a_i, b_i` drawn from
//!   SplitMix64 of the seed; `signature[i] = min over shingles h_i(x)`. The share of equal
//!   positions of two signatures estimates the Jaccard similarity of their shingle sets.
//! - LSH: `bands × rows = num_hashes`; band j's key is SplitMix64 folded over j and its rows;
//!   two texts are candidates when any band key agrees, with probability `1 − (1 − s^rows)^bands`
//!   at Jaccard similarity s (the S-curve). [`default_bands`] picks the split for a threshold.

use crate::hash::splitmix64;
use crate::words::for_each_word;

/// Default signature length (datatrove's default: 14 bands of 8).
pub const DEFAULT_NUM_HASHES: usize = 112;
/// Default words per shingle.
pub const DEFAULT_SHINGLE_WORDS: usize = 5;
/// Largest accepted signature length.
pub const MAX_NUM_HASHES: usize = 4096;
/// Largest accepted shingle length in words.
pub const MAX_SHINGLE_WORDS: usize = 64;

const SHINGLE_SEED: u64 = 0x4D49_4E48_4153_4853; // "MINHASHS"
const BAND_SEED: u64 = 0x4C53_4842_414E_4453; // "LSHBANDS"

/// The hash functions of one `(num_hashes, shingle_words, seed)` setting.
#[derive(Debug, Clone)]
pub struct MinHasher {
    a: Vec<u64>,
    b: Vec<u64>,
    shingle_words: usize,
    words: Vec<u64>,
}

impl MinHasher {
    /// Hash functions for signatures of `num_hashes` values over `shingle_words`-word shingles.
    pub fn new(num_hashes: usize, shingle_words: usize, seed: i64) -> Self {
        let base = splitmix64(seed as u64 ^ SHINGLE_SEED);
        let draw = |j: u64| splitmix64(base ^ splitmix64(j));
        Self {
            a: (0..num_hashes as u64).map(|i| draw(2 * i) | 1).collect(),
            b: (0..num_hashes as u64).map(|i| draw(2 * i + 1)).collect(),
            shingle_words: shingle_words.max(1),
            words: Vec::new(),
        }
    }

    /// Signature length.
    pub fn num_hashes(&self) -> usize {
        self.a.len()
    }

    /// Write the signature of `text` into `out` (`num_hashes` long).
    pub fn signature_into(&mut self, text: &str, out: &mut [u32]) {
        debug_assert_eq!(out.len(), self.a.len());
        out.fill(u32::MAX);
        let words = &mut self.words;
        words.clear();
        for_each_word(text, |h| words.push(h));
        if words.is_empty() {
            return;
        }
        let k = self.shingle_words.min(words.len());
        for window in words.windows(k) {
            let x = window
                .iter()
                .fold(SHINGLE_SEED, |s, w| splitmix64(s.rotate_left(23) ^ w));
            // The hot loop: branch-free and over equal-length slices, so it vectorises.
            for ((o, a), b) in out.iter_mut().zip(&self.a).zip(&self.b) {
                let v = (a.wrapping_mul(x).wrapping_add(*b) >> 32) as u32;
                *o = (*o).min(v);
            }
        }
    }

    /// The signature of `text` as a new vector.
    pub fn signature(&mut self, text: &str) -> Vec<u32> {
        let mut out = vec![0; self.a.len()];
        self.signature_into(text, &mut out);
        out
    }
}

/// Estimated Jaccard similarity: the share of positions where two signatures agree.
pub fn similarity(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len() as f64
}

/// The LSH key of every band of `signature` (`bands` must divide its length); band j's key
/// mixes in j, so equal keys of different bands never meet.
pub fn band_keys(signature: &[u32], bands: usize, out: &mut Vec<u64>) {
    out.clear();
    let rows = signature.len() / bands.max(1);
    for (j, band) in signature.chunks(rows.max(1)).take(bands).enumerate() {
        let key = band.iter().fold(splitmix64(BAND_SEED ^ j as u64), |s, v| {
            splitmix64(s ^ u64::from(*v))
        });
        out.push(key);
    }
}

/// Probability that two texts of Jaccard similarity `s` share at least one band.
pub fn candidate_probability(s: f64, bands: usize, rows: usize) -> f64 {
    // Repeated products instead of powi: the same bits on every platform.
    let sr = (0..rows).fold(1.0, |p, _| p * s);
    let miss = (0..bands).fold(1.0, |p, _| p * (1.0 - sr));
    1.0 - miss
}

/// The band count for `num_hashes` and `threshold`: among the divisors of `num_hashes`, the one
/// minimising `0.2·FP + 0.8·FN`, where FP is the area under the S-curve below the threshold and
/// FN the area above it under 1 − S-curve. Missed pairs weigh more than extra candidates because
/// every candidate is verified on its signatures afterwards (datasketch weighs them equally).
/// 112 hashes at 0.8 give 14 bands of 8 rows.
pub fn default_bands(num_hashes: usize, threshold: f64) -> usize {
    const STEPS: usize = 400;
    let area = |from: f64, to: f64, f: &dyn Fn(f64) -> f64| {
        let h = (to - from) / STEPS as f64;
        (0..STEPS)
            .map(|i| f(from + (i as f64 + 0.5) * h))
            .sum::<f64>()
            * h
    };
    let mut best = (f64::INFINITY, 1);
    for bands in (1..=num_hashes).filter(|b| num_hashes.is_multiple_of(*b)) {
        let rows = num_hashes / bands;
        let fp = area(0.0, threshold, &|s| candidate_probability(s, bands, rows));
        let fn_ = area(threshold, 1.0, &|s| {
            1.0 - candidate_probability(s, bands, rows)
        });
        let cost = 0.2 * fp + 0.8 * fn_;
        if cost < best.0 {
            best = (cost, bands);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn shingles(text: &str, k: usize) -> HashSet<Vec<u64>> {
        let mut w = Vec::new();
        for_each_word(text, |h| w.push(h));
        let k = k.min(w.len()).max(1);
        w.windows(k).map(<[u64]>::to_vec).collect()
    }

    fn jaccard(a: &str, b: &str) -> f64 {
        let (x, y) = (shingles(a, 5), shingles(b, 5));
        x.intersection(&y).count() as f64 / x.union(&y).count() as f64
    }

    #[test]
    fn pinned_signature_never_changes() {
        let mut m = MinHasher::new(4, 5, 0);
        let s = m.signature("The quick brown fox jumps over the lazy dog");
        assert_eq!(
            s,
            m.signature("the QUICK brown fox -- jumps over the lazy dog!")
        );
        // Computed by an independent Python implementation of the formulas in the module doc.
        assert_eq!(s, vec![0x1516_5f32, 0x166c_3637, 0x5834_53a9, 0x350f_d1ff]);
        let mut other_seed = MinHasher::new(4, 5, 1);
        assert_ne!(
            s,
            other_seed.signature("The quick brown fox jumps over the lazy dog")
        );
    }

    #[test]
    fn short_and_empty_texts() {
        let mut m = MinHasher::new(16, 5, 0);
        assert_eq!(m.signature(""), vec![u32::MAX; 16]);
        assert_eq!(m.signature(" !! "), vec![u32::MAX; 16]);
        let one = m.signature("Hello");
        assert_ne!(one, vec![u32::MAX; 16]);
        assert_eq!(one, m.signature("hello!"));
        assert_ne!(one, m.signature("hello world"));
    }

    #[test]
    fn estimate_tracks_true_jaccard() {
        let base: Vec<String> = (0..400)
            .map(|i| format!("w{}", (i * 7919) % 1009))
            .collect();
        let mut m = MinHasher::new(256, 5, 7);
        for cut in [0usize, 20, 60, 120, 200] {
            let a = base.join(" ");
            let b = base[cut..].join(" ") + " tail words appended here";
            let (est, truth) = (
                similarity(&m.signature(&a), &m.signature(&b)),
                jaccard(&a, &b),
            );
            assert!(
                (est - truth).abs() < 0.1,
                "cut {cut}: est {est} true {truth}"
            );
        }
    }

    #[test]
    fn bands_and_s_curve() {
        assert_eq!(default_bands(112, 0.8), 14);
        assert_eq!(default_bands(128, 0.8), 16);
        assert_eq!(default_bands(112, 0.5), 28);
        assert!(candidate_probability(0.9, 14, 8) > 0.99);
        assert!(candidate_probability(0.3, 14, 8) < 0.001);
        let mut keys = Vec::new();
        band_keys(&[1, 2, 3, 4], 2, &mut keys);
        let mut swapped = Vec::new();
        band_keys(&[3, 4, 1, 2], 2, &mut swapped);
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], swapped[1], "the band index is part of the key");
    }
}
