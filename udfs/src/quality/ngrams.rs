//! Gopher repetition's n-gram signals (datatrove's `find_top_duplicate` and
//! `find_all_duplicate`) over per-token hashes: the character fraction of the most frequent
//! 2-, 3- and 4-gram and of the duplicated 5- to 10-grams.
//!
//! An n-gram is identified by a 64-bit polynomial hash of its tokens' hashes,
//! K(i, len) = K(i, len − 1)·B + h(i + len − 1) (mod 2^64), extended one token per length, so
//! each length costs one multiply-add per position still in play. An n-gram that occurs twice
//! starts with an (n − 1)-gram that occurs twice, so each length only counts the positions
//! whose shorter n-gram repeated: most positions of real text drop out after the 2-grams.
//! Counts go into one open-addressing table reused for every length and document.

/// Odd multiplier of the polynomial n-gram hash.
const B: u64 = 0xa076_1d64_78bd_642f;
/// Fibonacci hashing: a key's slot is the top bits of key·PHI.
const PHI: u64 = 0x9e37_79b9_7f4a_7c15;

/// 64-bit hash of the token `text[start..start + len]`: injective on tokens of at most 7
/// bytes (their bytes, with the length in the top byte), a multiply-rotate mix of 8-byte words
/// otherwise, then murmur3's finaliser so that every bit of the n-gram polynomial is mixed.
/// Words are read from `text` 8 bytes at a time and masked to the token, so a short token
/// costs one load (not a copy of its bytes) wherever 8 bytes of text follow its start.
#[inline]
pub(super) fn token_hash(text: &[u8], start: usize, len: usize) -> u64 {
    // The bytes text[at..at + n] (n <= 8) as a little-endian word.
    let word = |at: usize, n: usize| -> u64 {
        match text.get(at..at + 8) {
            Some(eight) => {
                let w = u64::from_le_bytes(eight.try_into().unwrap_or([0; 8]));
                if n >= 8 {
                    w
                } else {
                    w & ((1u64 << (8 * n)) - 1)
                }
            }
            None => {
                let mut buf = [0u8; 8];
                buf[..n].copy_from_slice(&text[at..at + n]);
                u64::from_le_bytes(buf)
            }
        }
    };
    let h = if len < 8 {
        word(start, len) | ((len as u64) << 56)
    } else {
        let mut h = (len as u64).wrapping_mul(PHI);
        let mut at = start;
        let end = start + len;
        while at + 8 <= end {
            h = (h ^ word(at, 8)).wrapping_mul(B).rotate_left(31);
            at += 8;
        }
        if at < end {
            h = (h ^ word(at, end - at)).wrapping_mul(B).rotate_left(31);
        }
        h
    };
    fmix64(h)
}

/// murmur3's 64-bit finaliser (a bijection).
#[inline]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// One slot of the count table: `count` 0 marks an empty slot.
#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    count: u32,
    first: u32,
}

/// Buffers reused from one document to the next.
#[derive(Default)]
pub(super) struct Scratch {
    keys: Vec<u64>,
    candidates: Vec<u32>,
    repeats: Vec<bool>,
    char_prefix: Vec<u64>,
    table: Vec<Slot>,
}

/// Looks `key` up in a table of 2^bits slots (linear probing): its slot if it is there,
/// otherwise `None` after storing it with count 1, first seen at `first`.
#[inline]
fn insert(table: &mut [Slot], bits: u32, key: u64, first: u32) -> Option<&mut Slot> {
    let mask = table.len() - 1;
    let mut at = (key.wrapping_mul(PHI) >> (64 - bits)) as usize;
    while table[at].count != 0 {
        if table[at].key == key {
            return Some(&mut table[at]);
        }
        at = (at + 1) & mask;
    }
    table[at] = Slot {
        key,
        count: 1,
        first,
    };
    None
}

/// N-gram character fractions of a token sequence.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct NgramFracs {
    /// Characters covered by the most frequent 2-, 3-, 4-gram (words joined by one space, as
    /// `" ".join`), times its count, / `chars`.
    pub top: [f64; 3],
    /// Characters in duplicated 5..10-grams (greedy, left to right, as datatrove) / `chars`.
    pub dup: [f64; 6],
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The n-gram fractions of tokens with hashes `hashes` and lengths `token_chars` (in
/// characters) in a text of `chars` characters.
pub(super) fn ngram_fracs(
    hashes: &[u64],
    token_chars: &[u32],
    chars: f64,
    scratch: &mut Scratch,
) -> NgramFracs {
    let mut out = NgramFracs::default();
    let n = hashes.len();
    let Scratch {
        keys,
        candidates,
        repeats,
        char_prefix,
        table,
    } = scratch;
    char_prefix.clear();
    char_prefix.push(0);
    let mut total = 0u64;
    char_prefix.extend(token_chars.iter().map(|c| {
        total += u64::from(*c);
        total
    }));
    let span_chars = |i: usize, len: usize| char_prefix[i + len] - char_prefix[i];
    keys.clear();
    keys.extend_from_slice(hashes);
    candidates.clear();
    candidates.extend(0..n as u32);
    repeats.clear();
    repeats.resize(n, false);

    for len in 2..=5 {
        if n < len {
            return out;
        }
        // Candidates are in order: those too close to the end are the last few.
        let last = (n - len) as u32;
        candidates.truncate(candidates.partition_point(|&i| i <= last));
        let bits = reset_table(table, candidates.len());
        // The most frequent repeated n-gram, earliest on ties (Python's Counter.most_common(1)),
        // tracked while counting: counts only grow, so the best of all updates is the best of
        // the final counts. A first occurrence never beats (1, 0).
        let mut top = (1u32, 0u32);
        for &i in candidates.iter() {
            let key = keys[i as usize]
                .wrapping_mul(B)
                .wrapping_add(hashes[i as usize + len - 1]);
            keys[i as usize] = key;
            let Some(slot) = insert(table, bits, key, i) else {
                continue;
            };
            slot.count += 1;
            repeats[slot.first as usize] = true;
            repeats[i as usize] = true;
            if slot.count > top.0 || (slot.count == top.0 && slot.first < top.1) {
                top = (slot.count, slot.first);
            }
        }
        if len <= 4 {
            // With no repeat, the text's first n-gram.
            let (count, first) = top;
            let top_chars = span_chars(first as usize, len) + (len as u64 - 1);
            out.top[len - 2] = ratio((top_chars * u64::from(count)) as f64, chars);
        }
        keep_repeated(candidates, repeats);
        if candidates.is_empty() {
            // No repeated n-gram of this length: none longer either (top fractions of the
            // remaining lengths are their first n-gram's, duplicated fractions stay 0).
            for later in len + 1..=4 {
                if n >= later {
                    let top_chars = span_chars(0, later) + (later as u64 - 1);
                    out.top[later - 2] = ratio(top_chars as f64, chars);
                }
            }
            return out;
        }
    }

    // `candidates` now holds, in order, the positions whose 5-gram occurs more than once: only
    // there can a duplicated n-gram (n >= 5) start, and only there can one be found again.
    for (slot_index, len) in (5..=10).enumerate() {
        if n < len {
            break;
        }
        let last = (n - len) as u32;
        candidates.truncate(candidates.partition_point(|&i| i <= last));
        if len > 5 {
            for &i in candidates.iter() {
                let i = i as usize;
                keys[i] = keys[i].wrapping_mul(B).wrapping_add(hashes[i + len - 1]);
            }
        }
        let bits = reset_table(table, candidates.len());
        let (mut dup_chars, mut next) = (0u64, 0u32);
        for &i in candidates.iter() {
            if i < next {
                continue;
            }
            if insert(table, bits, keys[i as usize], i).is_some() {
                dup_chars += span_chars(i as usize, len);
                next = i + len as u32;
            }
        }
        out.dup[slot_index] = ratio(dup_chars as f64, chars);
    }
    out
}

/// Keeps the candidates marked in `repeats`, in order, and clears their marks. Without a
/// branch per candidate (`Vec::retain` has one): whether a position repeats is close to a coin
/// toss in real text, so that branch was mispredicted about half the time.
fn keep_repeated(candidates: &mut Vec<u32>, repeats: &mut [bool]) {
    let mut kept = 0usize;
    for read in 0..candidates.len() {
        let i = candidates[read];
        candidates[kept] = i;
        kept += usize::from(std::mem::take(&mut repeats[i as usize]));
    }
    candidates.truncate(kept);
}

/// Empty `table` with room for `items` keys at a load of at most 3/4; returns log2 of its size.
fn reset_table(table: &mut Vec<Slot>, items: usize) -> u32 {
    let bits = (items + items / 3 + 1)
        .next_power_of_two()
        .trailing_zeros()
        .max(4);
    table.clear();
    table.resize(1 << bits, Slot::default());
    bits
}
