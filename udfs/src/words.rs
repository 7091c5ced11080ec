//! The word splitter `embed` and `minhash` share: a word is a run of alphanumeric characters,
//! lower-cased; every CJK ideograph or kana is a word on its own (those scripts do not separate
//! words with spaces); everything else (punctuation, symbols, whitespace) only separates words.
//! Each word is reported as the FNV-1a 64 hash of its lower-cased UTF-8 bytes, so callers never
//! allocate a string per word and the values are the same on every machine.

use crate::hash::{fnv1a_step, FNV_OFFSET};

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

fn fold_char(mut h: u64, c: char) -> u64 {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        h = fnv1a_step(h, u64::from(b));
    }
    h
}

/// Call `emit` with the hash of every word of `text`, in order.
pub fn for_each_word(text: &str, mut emit: impl FnMut(u64)) {
    let mut h = FNV_OFFSET;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_ascii() {
            // ASCII fast path: most text of most corpora.
            if c.is_ascii_alphanumeric() {
                in_word = true;
                h = fnv1a_step(h, u64::from(c.to_ascii_lowercase() as u8));
                continue;
            }
        } else if is_cjk(c) {
            if in_word {
                emit(h);
                h = FNV_OFFSET;
                in_word = false;
            }
            emit(fold_char(FNV_OFFSET, c));
            continue;
        } else if c.is_alphanumeric() {
            in_word = true;
            for lc in c.to_lowercase() {
                h = fold_char(h, lc);
            }
            continue;
        }
        if in_word {
            emit(h);
            h = FNV_OFFSET;
            in_word = false;
        }
    }
    if in_word {
        emit(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::fnv1a64;

    fn words(text: &str) -> Vec<u64> {
        let mut v = Vec::new();
        for_each_word(text, |h| v.push(h));
        v
    }

    #[test]
    fn words_are_lower_cased_alphanumeric_runs() {
        assert_eq!(
            words("Hello, WORLD! x2"),
            vec![fnv1a64(b"hello"), fnv1a64(b"world"), fnv1a64(b"x2")]
        );
        assert_eq!(words("Größe"), vec![fnv1a64("größe".as_bytes())]);
        assert_eq!(
            words("日本x"),
            vec![
                fnv1a64("日".as_bytes()),
                fnv1a64("本".as_bytes()),
                fnv1a64(b"x")
            ]
        );
        assert!(words(" ... !!! ").is_empty());
        assert!(words("").is_empty());
    }
}
