//! What the learned quality model sees of a text.
//!
//! - **Sparse:** hashed word 1- and 2-grams (words as `embed` and `minhash` split them), each
//!   bucket weighted by sublinear tf-idf, `(1 + ln count) · idf`, and the vector L2-normalised:
//!   the features a tf-idf logistic regression uses, in a fixed number of buckets so a model
//!   is a few MB whatever the corpus.
//! - **Dense:** eight shape figures from one byte pass (length, words, word length, case,
//!   digits, punctuation, line breaks, distinct words), and with `signals=true` every numeric
//!   `quality_signals` field; standardised with the training sample's mean and deviation.

use crate::hash::splitmix64;
use crate::quality::udf::signal_values;
use crate::words::for_each_word;

/// Dense shape figures, always present.
pub(crate) const SHAPE: usize = 8;

const UNIGRAM: u64 = 0x756E_6967_7261_6D31; // "unigram1"
const BIGRAM: u64 = 0x6269_6772_616D_3231; // "bigram21"

/// Number of dense features of a model with or without the `quality_signals` features.
pub(crate) fn dense_len(signals: bool) -> usize {
    SHAPE
        + if signals {
            signal_values(&Default::default()).len()
        } else {
            0
        }
}

/// A 64-bit hash into `0..buckets` (Lemire's multiply-shift on the top 32 bits).
#[inline]
fn bucket(h: u64, buckets: u32) -> u32 {
    (((h >> 32) * u64::from(buckets)) >> 32) as u32
}

/// Reused buffers of one featuriser thread.
#[derive(Default)]
pub(crate) struct Scratch {
    ids: Vec<u32>,
    /// Distinct buckets of the last text, ascending, with their counts.
    pub counts: Vec<(u32, u32)>,
    /// Words of the last text.
    pub words: usize,
    /// Distinct unigram buckets of the last text.
    pub distinct: usize,
}

impl Scratch {
    /// Count the n-gram buckets of `text` into `self.counts`.
    pub fn count(&mut self, text: &str, buckets: u32) {
        self.ids.clear();
        let mut prev: Option<u64> = None;
        let mut words = 0usize;
        for_each_word(text, |h| {
            words += 1;
            self.ids.push(bucket(splitmix64(h ^ UNIGRAM), buckets) << 1);
            if let Some(p) = prev {
                let b = splitmix64(p.rotate_left(29) ^ h ^ BIGRAM);
                // The low bit marks bigrams only while sorting (for the distinct-word count).
                self.ids.push((bucket(b, buckets) << 1) | 1);
            }
            prev = Some(h);
        });
        self.words = words;
        self.ids.sort_unstable();
        self.counts.clear();
        self.distinct = 0;
        let mut last = u32::MAX;
        for &id in &self.ids {
            if id != last && id & 1 == 0 {
                self.distinct += 1;
            }
            last = id;
        }
        // Sorted ids shifted back stay sorted: unigram and bigram ids of one bucket are adjacent.
        for id in self.ids.iter().map(|id| id >> 1) {
            match self.counts.last_mut() {
                Some((b, c)) if *b == id => *c += 1,
                _ => self.counts.push((id, 1)),
            }
        }
    }
}

/// Sublinear term frequency of a count.
#[inline]
pub(crate) fn tf(count: u32) -> f32 {
    1.0 + (count as f32).ln()
}

/// The dense features of `text` (unstandardised), given the word counts `scratch` holds for it.
pub(crate) fn dense(text: &str, scratch: &Scratch, signals: bool, out: &mut Vec<f64>) {
    out.clear();
    let bytes = text.as_bytes();
    let (mut upper, mut lower, mut digit, mut punct, mut newline) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for &b in bytes {
        match b {
            b'A'..=b'Z' => upper += 1,
            b'a'..=b'z' => lower += 1,
            b'0'..=b'9' => digit += 1,
            b'\n' => newline += 1,
            b'!'..=b'/' | b':'..=b'@' | b'['..=b'`' | b'{'..=b'~' => punct += 1,
            _ => {}
        }
    }
    let n = bytes.len() as f64;
    let per_byte = |x: u64| if n > 0.0 { x as f64 / n } else { 0.0 };
    let words = scratch.words as f64;
    out.push((1.0 + n).ln());
    out.push((1.0 + words).ln());
    out.push(if words > 0.0 {
        ((upper + lower + digit) as f64 / words).min(40.0)
    } else {
        0.0
    });
    out.push(upper as f64 / (upper + lower + 1) as f64);
    out.push(per_byte(digit));
    out.push(per_byte(punct));
    out.push(per_byte(newline) * 100.0);
    out.push(if words > 0.0 {
        scratch.distinct as f64 / words
    } else {
        0.0
    });
    if signals {
        out.extend(signal_values(&crate::quality::signals(text)));
    }
    for v in out.iter_mut() {
        if !v.is_finite() {
            *v = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_repeats_and_mark_distinct_words() {
        let mut s = Scratch::default();
        s.count("the cat the cat the", 1 << 20);
        assert_eq!(s.words, 5);
        assert_eq!(s.distinct, 2);
        // "the", "cat", "the cat", "cat the": four buckets, nine occurrences.
        assert_eq!(s.counts.len(), 4);
        assert_eq!(s.counts.iter().map(|c| c.1).sum::<u32>(), 9);
        assert!(s.counts.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn dense_has_its_declared_length() {
        let mut s = Scratch::default();
        let mut out = Vec::new();
        for signals in [false, true] {
            s.count("Hello, world.\nSecond line 42.", 64);
            dense("Hello, world.\nSecond line 42.", &s, signals, &mut out);
            assert_eq!(out.len(), dense_len(signals));
            assert!(out.iter().all(|v| v.is_finite()));
        }
        s.count("", 64);
        dense("", &s, false, &mut out);
        assert!(out.iter().all(|v| v.is_finite()));
    }
}
