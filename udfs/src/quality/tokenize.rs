//! Word and sentence splitting close to what datatrove uses for English (spaCy 3's blank
//! English tokenizer plus its `sentencizer`), without a Python dependency.
//!
//! spaCy splits each whitespace-separated chunk by peeling prefixes (opening punctuation,
//! quotes, currency), suffixes (closing punctuation, `'s`, `n't`, a period after a lowercase
//! letter or digit) and infixes (hyphens between letters, `...`, `lower.Upper`, `a,b`, `a/b`).
//! We follow those rules; spaCy's tokenizer exception table (abbreviations such as `e.g.`)
//! is approximated by "a period after an uppercase letter or inside a word stays". The
//! agreement script (`benches/quality_agreement.py`) measures the resulting pass/fail agreement.

use std::sync::LazyLock;

use super::charsets::SENTENCE_END;

mod masks;

/// A set of chars with an ASCII fast path.
pub(crate) struct CharSet {
    ascii: [bool; 128],
    other: Vec<char>,
}

impl CharSet {
    pub(crate) fn new(chars: &str) -> Self {
        let mut ascii = [false; 128];
        let mut other = Vec::new();
        for c in chars.chars() {
            if c.is_ascii() {
                ascii[c as usize] = true;
            } else {
                other.push(c);
            }
        }
        other.sort_unstable();
        other.dedup();
        Self { ascii, other }
    }

    #[inline]
    pub(crate) fn contains(&self, c: char) -> bool {
        if c.is_ascii() {
            self.ascii[c as usize]
        } else {
            self.other.binary_search(&c).is_ok()
        }
    }
}

// spaCy's LIST_PUNCT + LIST_QUOTES + LIST_CURRENCY (single characters), used as prefixes and
// suffixes; '.' is handled separately because it only splits in some contexts.
const AFFIX_CHARS: &str =
    "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉〈〉⟦⟧";
// Currency: a prefix anywhere, a suffix only after a digit ("5$", not "a$").
const CURRENCY_CHARS: &str = "$£€¥฿₽﷼₴₠₡₢₣₤₥₦₧₨₩₪₫₭₮₯₰₱₲₳₵₶₷₸₹₺₻₼₾₿";
const PREFIX_ONLY: &str = "§%=—–+";
const SUFFIX_ONLY: &str = "—–%";
pub(crate) const PUNCT_CHARS: &str = "!\"#%&'()*,-./:;?@[\\]_{}¡§«·»¿‐‑‒–—―‖‘’‚‛“”„‟†‡•…‰′″‹›※‼‽⁇⁈⁉、。〈〉《》「」『』【】〔〕〜・！＂＃％＆＇（）＊，－．／：；？＠［＼］＿｛｝｡､";

static AFFIX: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(AFFIX_CHARS));
static PREFIX: LazyLock<CharSet> =
    LazyLock::new(|| CharSet::new(&format!("{PREFIX_ONLY}{CURRENCY_CHARS}")));
static CURRENCY: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(CURRENCY_CHARS));
static SUFFIX: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(SUFFIX_ONLY));
static PUNCT: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(PUNCT_CHARS));
static SENT_END: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(SENTENCE_END));

/// Which ASCII chars `chars` holds (its other chars are ignored), at compile time.
pub(crate) const fn ascii_members(chars: &str) -> [bool; 128] {
    let bytes = chars.as_bytes();
    let mut out = [false; 128];
    let mut i = 0;
    while i < bytes.len() {
        // A byte below 128 in UTF-8 is an ASCII char, never part of another char.
        if bytes[i] < 128 {
            out[bytes[i] as usize] = true;
        }
        i += 1;
    }
    out
}

/// `table` with `flag` added for each ASCII char of `chars`, at compile time: per-byte class
/// tables built from the same strings as the char sets.
pub(crate) const fn mark<const N: usize>(mut table: [u8; N], chars: &str, flag: u8) -> [u8; N] {
    let members = ascii_members(chars);
    let mut c = 0;
    while c < 128 {
        if members[c] {
            table[c] |= flag;
        }
        c += 1;
    }
    table
}

/// True when every char of `token` is punctuation (spaCy's `is_punct`).
pub(crate) fn is_punct(token: &str) -> bool {
    !token.is_empty() && token.chars().all(|c| PUNCT.contains(c))
}

fn is_url(s: &str) -> bool {
    // A byte loop: `str::contains` builds a substring searcher per call, which costs more than
    // the search on a chunk of a few bytes.
    s.starts_with("www.") || s.as_bytes().windows(3).any(|w| w == b"://")
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '–' | '—' | '~')
}

/// Append the spaCy-like tokens of `text` to `out`.
pub(crate) fn words<'a>(text: &'a str, out: &mut Vec<&'a str>) {
    chunks_while(text, |chunk, classes| {
        if classes & NOT_ALPHANUMERIC == 0 {
            // Nothing to peel or split: the chunk is one token.
            out.push(chunk);
        } else {
            split_chunk(chunk, out);
        }
        true
    });
}

/// [`words`], with what the scan learnt on the way: for each token its [`TokenKind`] in
/// `kinds`, and the byte offset of each whitespace-separated chunk in `chunk_starts` (the
/// chunks of `text.split_whitespace()`).
pub(crate) fn words_marked<'a>(
    text: &'a str,
    out: &mut Vec<&'a str>,
    kinds: &mut Vec<TokenKind>,
    chunk_starts: &mut Vec<usize>,
) {
    let base = text.as_ptr() as usize;
    chunks_while(text, |chunk, classes| {
        chunk_starts.push(chunk.as_ptr() as usize - base);
        if classes & NOT_ALPHANUMERIC == 0 {
            out.push(chunk);
            kinds.push(if classes & LETTER != 0 {
                TokenKind::Alphanumeric
            } else {
                TokenKind::Digits
            });
        } else {
            let before = out.len();
            split_chunk(chunk, out);
            kinds.resize(out.len().max(before), TokenKind::Other);
        }
        true
    });
}

/// What [`words_marked`] knows of a token without looking at it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// ASCII letters and digits, at least one letter.
    Alphanumeric,
    /// ASCII digits only.
    Digits,
    /// Anything else (not looked at).
    Other,
}

/// [`chunks_while`] for every chunk.
#[cfg(test)]
fn for_each_chunk<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    chunks_while(text, |chunk, _| {
        f(chunk);
        true
    });
}

/// Classes of a chunk, from [`chunks_while`]: some byte is not an ASCII letter or digit; some
/// byte is an ASCII letter.
const NOT_ALPHANUMERIC: u8 = 2;
const LETTER: u8 = 4;

/// Calls `f` with each chunk `text.split_whitespace()` yields, in order, and the union of its
/// bytes' classes ([`NOT_ALPHANUMERIC`], [`LETTER`]), until `f` returns false. Found
/// on the bytes' [`masks::BlockMasks`]: the UTF-8 encoding of every Unicode whitespace char
/// starts with an ASCII whitespace byte or with one of 0xC2, 0xE1, 0xE2, 0xE3, so only those
/// bytes can end a chunk, and only the last four need decoding.
#[inline(always)]
fn chunks_while<'a>(text: &'a str, mut f: impl FnMut(&'a str, u8) -> bool) {
    let b = text.as_bytes();
    let n = b.len();
    let mut masks = masks::BlockMasks::new(b);
    let lead_at = |m: &masks::Masks, i: usize| m.lead >> (i & 63) & 1 == 1;
    let mut i = 0usize;
    loop {
        // Whitespace before the chunk: skip ASCII whitespace a block at a time; a lead byte
        // is whitespace only when its char is.
        loop {
            let Some((at, m)) = first_outside_space(&mut masks, i, n) else {
                return;
            };
            i = at;
            let space = if lead_at(&m, i) {
                whitespace_len(&b[i..])
            } else {
                0
            };
            if space == 0 {
                break;
            }
            i += space;
        }
        let start = i;
        // The chunk: up to the next ASCII whitespace or lead byte of a whitespace char, with
        // the classes of the bytes on the way.
        let mut classes = 0u8;
        loop {
            let m;
            (i, m) = next_boundary(&mut masks, i, n, &mut classes);
            if i >= n || !lead_at(&m, i) || whitespace_len(&b[i..]) != 0 {
                break;
            }
            // A lead byte of a non-ASCII char that is not whitespace.
            classes |= NOT_ALPHANUMERIC;
            i += 1;
        }
        // Both ends are char boundaries: whitespace chars start and end on one.
        if !f(&text[start..i], classes) {
            return;
        }
    }
}

/// The first byte at or after `i` that is not ASCII whitespace, with its block's masks; `None`
/// when there is none before `n`.
#[inline(always)]
fn first_outside_space(
    masks: &mut masks::BlockMasks,
    mut i: usize,
    n: usize,
) -> Option<(usize, masks::Masks)> {
    while i < n {
        let m = masks.get(i / 64);
        let rest = !m.space >> (i & 63);
        if rest != 0 {
            let at = i + rest.trailing_zeros() as usize;
            // The padding after the text's end is spaces: `at` is inside the text.
            return Some((at, m));
        }
        i = (i / 64 + 1) * 64;
    }
    None
}

/// The first byte at or after `i` that is ASCII whitespace or a whitespace lead byte (`n` when
/// none is before the end), with its block's masks; the classes of the bytes from `i` up to it
/// are added to `classes`.
#[inline(always)]
fn next_boundary(
    masks: &mut masks::BlockMasks,
    mut i: usize,
    n: usize,
    classes: &mut u8,
) -> (usize, masks::Masks) {
    loop {
        let m = masks.get(i / 64);
        let off = i & 63;
        let ends = (m.space | m.lead) >> off;
        // Bytes of this block before the boundary (to the block's end when there is none).
        let len = if ends != 0 {
            ends.trailing_zeros()
        } else {
            64 - off as u32
        };
        let range = u64::MAX.checked_shr(64 - len).unwrap_or(0);
        if (m.not_alphanumeric >> off) & range != 0 {
            *classes |= NOT_ALPHANUMERIC;
        }
        if (m.letter >> off) & range != 0 {
            *classes |= LETTER;
        }
        i += len as usize;
        if ends != 0 || i >= n {
            // The padding after the end is spaces: a boundary at `n` at the latest.
            return (i.min(n), m);
        }
    }
}

/// `text.split_whitespace().take(limit).count()`, on the bytes ([`for_each_chunk`]'s chunks),
/// stopping at the `limit`-th.
pub(crate) fn count_words_upto(text: &str, limit: usize) -> usize {
    let mut n = 0;
    if limit > 0 {
        chunks_while(text, |_, _| {
            n += 1;
            n < limit
        });
    }
    n
}

/// Byte length of the non-ASCII whitespace char `b` starts with (U+0085, U+00A0, U+1680,
/// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), 0 if it starts with none.
#[inline]
fn whitespace_len(b: &[u8]) -> usize {
    match b {
        [0xc2, 0x85 | 0xa0, ..] => 2,
        [0xe1, 0x9a, 0x80, ..]
        | [0xe2, 0x80, 0x80..=0x8a | 0xa8 | 0xa9 | 0xaf, ..]
        | [0xe2, 0x81, 0x9f, ..]
        | [0xe3, 0x80, 0x80, ..] => 3,
        _ => 0,
    }
}

fn split_chunk<'a>(chunk: &'a str, out: &mut Vec<&'a str>) {
    if split_plain_chunk(chunk, out) {
        return;
    }
    if chunk.is_ascii() {
        split_chunk_ascii(chunk, out);
    } else {
        split_chunk_general(chunk, out);
    }
}

/// Per ASCII char: [`ASCII_AFFIX`], [`ASCII_PREFIX`], [`ASCII_SUFFIX`], [`ASCII_CURRENCY`] when
/// [`AFFIX`], [`PREFIX`], [`SUFFIX`], [`CURRENCY`] hold it (the ASCII part of those sets, from
/// the same strings).
const ASCII_AFFIXES: [u8; 128] = {
    let table = mark([0; 128], AFFIX_CHARS, ASCII_AFFIX);
    let table = mark(table, PREFIX_ONLY, ASCII_PREFIX);
    let table = mark(table, SUFFIX_ONLY, ASCII_SUFFIX);
    mark(table, CURRENCY_CHARS, ASCII_PREFIX | ASCII_CURRENCY)
};
const ASCII_AFFIX: u8 = 1;
const ASCII_PREFIX: u8 = 2;
const ASCII_SUFFIX: u8 = 4;
const ASCII_CURRENCY: u8 = 8;

#[inline]
fn ascii_affixes(b: u8) -> u8 {
    ASCII_AFFIXES[usize::from(b & 0x7f)]
}

/// [`split_chunk_general`] for an ASCII chunk, on its bytes: the same peeling with table
/// lookups instead of char decoding and set searches.
fn split_chunk_ascii<'a>(chunk: &'a str, out: &mut Vec<&'a str>) {
    let prefix = |s: &str| {
        let b = s.as_bytes();
        if b.starts_with(b"...") {
            return Some(b.iter().take_while(|c| **c == b'.').count());
        }
        let plus_digit = b[0] == b'+' && b.get(1).is_some_and(u8::is_ascii_digit);
        let peels = ascii_affixes(b[0]) & (ASCII_AFFIX | ASCII_PREFIX) != 0;
        (peels && !plus_digit && b.len() > 1).then_some(1)
    };
    peel(chunk, out, prefix, |s| suffix_len_ascii(s.as_bytes()));
}

/// [`suffix_len`] of an ASCII chunk, on its bytes (the curly-apostrophe clitics cannot occur).
fn suffix_len_ascii(b: &[u8]) -> Option<usize> {
    if b.ends_with(b"...") {
        return Some(b.iter().rev().take_while(|c| **c == b'.').count());
    }
    let n = b.len();
    let &last = b.last()?;
    let lower_end =
        |suffix: &[u8]| n > suffix.len() && b[n - suffix.len()..].eq_ignore_ascii_case(suffix);
    if matches!(
        last.to_ascii_lowercase(),
        b't' | b's' | b'e' | b'l' | b'd' | b'm'
    ) {
        for clitic in [&b"n't"[..], b"'s", b"'re", b"'ve", b"'ll", b"'d", b"'m"] {
            if lower_end(clitic) {
                return Some(clitic.len());
            }
        }
    }
    if last == b'.' {
        if n < 2 {
            return None;
        }
        let prev = b[n - 2];
        let splits = prev.is_ascii_lowercase()
            || prev.is_ascii_digit()
            || matches!(prev, b'%' | b'-' | b'+')
            || ascii_affixes(prev) & ASCII_AFFIX != 0
            || (prev.is_ascii_uppercase() && n >= 3 && b[n - 3].is_ascii_uppercase());
        let body = &b[..n - 1];
        let abbreviation = (body.contains(&b'.')
            && body.last() != Some(&b'.')
            && body.iter().all(|c| c.is_ascii_alphabetic() || *c == b'.'))
            || (body.len() == 1 && prev.is_ascii_alphabetic());
        return (splits && !abbreviation).then_some(1);
    }
    let class = ascii_affixes(last);
    if class & (ASCII_AFFIX | ASCII_SUFFIX) != 0 {
        return Some(1);
    }
    if class & ASCII_CURRENCY != 0 && n >= 2 && b[n - 2].is_ascii_digit() {
        return Some(1);
    }
    None
}

/// Most chunks of prose: an ASCII word, alone or with one closing mark (`,;:!?)` or a period),
/// split here as [`split_chunk_general`] splits them, without its char-by-char peeling.
/// False (and nothing pushed) for any other chunk.
#[inline]
fn split_plain_chunk<'a>(chunk: &'a str, out: &mut Vec<&'a str>) -> bool {
    let b = chunk.as_bytes();
    let Some((&last, body)) = b.split_last() else {
        return false;
    };
    if last.is_ascii_alphanumeric() {
        if body.iter().all(u8::is_ascii_alphanumeric) {
            out.push(chunk);
            return true;
        }
        return false;
    }
    if body.is_empty() || !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    match last {
        // An affix: the word has no prefix, suffix or infix of its own.
        b',' | b';' | b':' | b'!' | b'?' | b')' => {}
        // A period splits after a lower-case letter, a digit or two capitals ("AB."), except
        // after a lone letter ("x.", an abbreviation); otherwise the chunk stays whole.
        b'.' => {
            let n = body.len();
            let prev = body[n - 1];
            let splits = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && n >= 2 && body[n - 2].is_ascii_uppercase());
            let abbreviation = n == 1 && prev.is_ascii_alphabetic();
            if !splits || abbreviation {
                out.push(chunk);
                return true;
            }
        }
        _ => return false,
    }
    out.push(&chunk[..body.len()]);
    out.push(&chunk[body.len()..]);
    true
}

/// spaCy's peeling of prefixes, suffixes and infixes, for any chunk.
fn split_chunk_general<'a>(chunk: &'a str, out: &mut Vec<&'a str>) {
    let prefix = |s: &str| {
        if s.starts_with("...") {
            return Some(s.len() - s.trim_start_matches('.').len());
        }
        let first = s.chars().next()?;
        let plus_digit = first == '+' && s[1..].starts_with(|c: char| c.is_ascii_digit());
        let peels = AFFIX.contains(first) || PREFIX.contains(first);
        (peels && !plus_digit && s.len() > first.len_utf8()).then_some(first.len_utf8())
    };
    peel(chunk, out, prefix, suffix_len);
}

/// The peeling loop of both paths: `prefix` and `suffix` give the byte length of the prefix
/// or suffix spaCy would split off a non-empty string, if any; what remains is a URL or is
/// split at infixes; the suffixes follow it, innermost first.
#[inline(always)]
fn peel<'a>(
    chunk: &'a str,
    out: &mut Vec<&'a str>,
    prefix: impl Fn(&str) -> Option<usize>,
    suffix: impl Fn(&str) -> Option<usize>,
) {
    let mut s = chunk;
    // Suffixes peeled so far, outermost first: eight inline (no allocation for a chunk's few
    // closing marks), the rest in `spill`.
    let mut suffixes: [&'a str; 8] = [""; 8];
    let mut n_suffixes = 0usize;
    let mut spill: Vec<&'a str> = Vec::new();
    while !s.is_empty() {
        if let Some(n) = prefix(s) {
            out.push(&s[..n]);
            s = &s[n..];
            continue;
        }
        match suffix(s) {
            Some(n) if n < s.len() => {
                let peeled = &s[s.len() - n..];
                if n_suffixes < suffixes.len() {
                    suffixes[n_suffixes] = peeled;
                    n_suffixes += 1;
                } else {
                    spill.push(peeled);
                }
                s = &s[..s.len() - n];
            }
            _ => break,
        }
    }
    if !s.is_empty() {
        if is_url(s) {
            out.push(s);
        } else {
            split_infixes(s, out);
        }
    }
    out.extend(spill.into_iter().rev());
    out.extend(suffixes[..n_suffixes].iter().rev());
}

/// Byte length of a suffix spaCy would split off `s`, if any.
fn suffix_len(s: &str) -> Option<usize> {
    if s.ends_with("...") {
        let n = s.len() - s.trim_end_matches('.').len();
        return Some(n);
    }
    let lower_end = |suffix: &str| {
        s.len() > suffix.len()
            && s.is_char_boundary(s.len() - suffix.len())
            && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    // Every contraction and clitic ends in one of these letters: most chunks skip the 14 tests.
    let last_byte = s.as_bytes().last()?.to_ascii_lowercase();
    if matches!(last_byte, b't' | b's' | b'e' | b'l' | b'd' | b'm') {
        for contraction in ["n't", "n’t"] {
            if lower_end(contraction) {
                return Some(contraction.len());
            }
        }
        for clitic in [
            "'s", "’s", "'re", "’re", "'ve", "’ve", "'ll", "’ll", "'d", "’d", "'m", "’m",
        ] {
            if lower_end(clitic) {
                return Some(clitic.len());
            }
        }
    }
    let mut rev = s.chars().rev();
    let last = rev.next()?;
    if last == '.' {
        let prev = rev.next()?;
        let prev2 = rev.next();
        let splits = prev.is_lowercase()
            || prev.is_ascii_digit()
            || matches!(prev, '%' | '²' | '-' | '+')
            || AFFIX.contains(prev)
            || (prev.is_uppercase() && prev2.is_some_and(|c| c.is_uppercase()));
        // A lone lowercase letter with a period ("e.g.", "p.") is an abbreviation.
        let body = &s[..s.len() - 1];
        // spaCy's exception table keeps "x." (one letter) and dotted abbreviations ("e.g.").
        let abbreviation = (body.contains('.')
            && !body.ends_with('.')
            && body.chars().all(|c| c.is_alphabetic() || c == '.'))
            || (body.chars().count() == 1 && prev.is_alphabetic());
        return (splits && !abbreviation).then_some(1);
    }
    if AFFIX.contains(last) || SUFFIX.contains(last) {
        return Some(last.len_utf8());
    }
    if CURRENCY.contains(last) && rev.next().is_some_and(|c| c.is_ascii_digit()) {
        return Some(last.len_utf8());
    }
    None
}

/// Whether an infix can start at `c`: every rule of [`split_infixes_at`] starts at one of these.
#[inline]
fn may_start_infix(c: char) -> bool {
    matches!(
        c,
        '.' | '…' | '+' | '-' | '*' | '^' | ',' | '–' | '—' | '~' | ':' | '<' | '>' | '=' | '/'
    )
}

fn split_infixes<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let may_split = if s.is_ascii() {
        s.bytes().skip(1).any(|b| may_start_infix(char::from(b)))
    } else {
        s.chars().skip(1).any(may_start_infix)
    };
    if !may_split {
        out.push(s);
        return;
    }
    if s.is_ascii() {
        // Every char is one byte: index the bytes, no list of chars to build.
        let bytes = s.as_bytes();
        split_infixes_at(s, bytes.len(), |i| (i, char::from(bytes[i])), out);
    } else {
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        split_infixes_at(s, chars.len(), |i| chars[i], out);
    }
}

/// [`split_infixes`] over the `len` chars of `s`, `char_at(i)` giving the i-th char and its
/// byte offset.
#[inline]
fn split_infixes_at<'a>(
    s: &'a str,
    len: usize,
    char_at: impl Fn(usize) -> (usize, char),
    out: &mut Vec<&'a str>,
) {
    let mut start = 0usize;
    let mut i = 0usize;
    while i < len {
        let (pos, c) = char_at(i);
        // Most chars are letters, at which no rule below can start: skip them before looking
        // at their neighbours.
        if !may_start_infix(c) {
            i += 1;
            continue;
        }
        let prev = if i > 0 { Some(char_at(i - 1).1) } else { None };
        let next = (i + 1 < len).then(|| char_at(i + 1).1);
        // Length in chars of an infix starting at i, if one does.
        let infix = if c == '.' && next == Some('.') {
            let mut j = i;
            while j < len && char_at(j).1 == '.' {
                j += 1;
            }
            Some(j - i)
        } else if c == '…' {
            Some(1)
        } else {
            match (prev, next) {
                (Some(p), Some(n)) => {
                    let alpha_next = n.is_alphabetic();
                    let mut j = i;
                    while is_hyphen(c) && j < len && is_hyphen(char_at(j).1) {
                        j += 1;
                    }
                    if is_hyphen(c)
                        && p.is_alphanumeric()
                        && j < len
                        && char_at(j).1.is_alphabetic()
                    {
                        // "-", "--" and "---" before a letter are one infix.
                        Some(j - i)
                    } else {
                        let hit = (p.is_ascii_digit()
                            && matches!(c, '+' | '-' | '*' | '^')
                            && (n.is_ascii_digit() || n == '-'))
                            || (c == '.' && p.is_lowercase() && n.is_uppercase())
                            || (c == ',' && p.is_alphabetic() && alpha_next)
                            || (matches!(c, ':' | '<' | '>' | '=' | '/')
                                && p.is_alphanumeric()
                                && alpha_next);
                        hit.then_some(1)
                    }
                }
                _ => None,
            }
        };
        match infix {
            Some(n) if i > 0 => {
                let end = if i + n < len {
                    char_at(i + n).0
                } else {
                    s.len()
                };
                if pos > start {
                    out.push(&s[start..pos]);
                }
                out.push(&s[pos..end]);
                start = end;
                i += n;
            }
            _ => i += 1,
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
}

/// [`sentence_role`] of a token that ends sentences (one char of spaCy's sentence-final set).
pub(crate) const SENTENCE_END_ROLE: u8 = 1;
/// [`sentence_role`] of a token made only of punctuation (spaCy's `is_punct`).
pub(crate) const PUNCT_ROLE: u8 = 2;

/// What the sentencizer sees in a token: [`SENTENCE_END_ROLE`] and / or [`PUNCT_ROLE`], or 0.
#[inline]
pub(crate) fn sentence_role(token: &str) -> u8 {
    // A one-char token that ends sentences (no count of its chars: most tokens are words).
    let mut chars = token.chars();
    let end = match (chars.next(), chars.next()) {
        (Some(c), None) => SENT_END.contains(c),
        _ => false,
    };
    let mut role = if end { SENTENCE_END_ROLE } else { 0 };
    if is_punct(token) {
        role |= PUNCT_ROLE;
    }
    role
}

/// Number of sentences spaCy's `sentencizer` finds in `tokens`: a new sentence starts at the
/// first non-punctuation token after a sentence-final character.
pub(crate) fn sentence_count(tokens: &[&str]) -> usize {
    let roles: Vec<u8> = tokens.iter().map(|t| sentence_role(t)).collect();
    sentence_count_of_roles(&roles)
}

/// [`sentence_count`] of tokens given by their [`sentence_role`]s.
pub(crate) fn sentence_count_of_roles(roles: &[u8]) -> usize {
    if roles.is_empty() {
        return 0;
    }
    let mut sentences = 1;
    let mut seen_end = false;
    for &role in roles {
        let is_end = role & SENTENCE_END_ROLE != 0;
        if seen_end && role & PUNCT_ROLE == 0 && !is_end {
            sentences += 1;
            seen_end = false;
        } else if is_end {
            seen_end = true;
        }
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<&str> {
        let mut v = Vec::new();
        words(s, &mut v);
        v
    }

    #[test]
    fn splits_like_spacy_on_reference_sentences() {
        // Expected tokens printed by spaCy 3 `spacy.blank("en")`.
        assert_eq!(
            toks("Hello, world! It's a well-known fact that 3.5% of https://x.com/a-b users don't... agree?!"),
            vec!["Hello", ",", "world", "!", "It", "'s", "a", "well", "-", "known", "fact", "that", "3.5", "%", "of", "https://x.com/a-b", "users", "do", "n't", "...", "agree", "?", "!"]
        );
        assert_eq!(
            toks("foo/bar a:b x=y #tag @user $5 5.0. end."),
            vec![
                "foo", "/", "bar", "a", ":", "b", "x", "=", "y", "#", "tag", "@user", "$", "5",
                "5.0", ".", "end", "."
            ]
        );
        assert_eq!(
            toks("This is the end.It continues."),
            vec!["This", "is", "the", "end", ".", "It", "continues", "."]
        );
        assert_eq!(
            toks("(e.g. U.S. data)"),
            vec!["(", "e.g.", "U.S.", "data", ")"]
        );
        assert_eq!(
            toks("a--b c...d e…f"),
            vec!["a", "--", "b", "c", "...", "d", "e", "…", "f"]
        );
    }

    #[test]
    fn matches_spacy_on_edge_cases() {
        // (input, spaCy 3 blank English tokens joined by spaces)
        let cases = [
            ("$[0,1]$,", "$ [ 0,1]$ ,"),
            ("0,1", "0,1"),
            ("a,b", "a , b"),
            ("3/2^{-}$", "3/2^{-}$"),
            ("x)", "x )"),
            ("5$", "5 $"),
            ("a$", "a$"),
            ("etc.", "etc ."),
            ("x.", "x."),
            ("A.", "A."),
            ("AB.", "AB ."),
            ("1.", "1 ."),
            ("e.g.,", "e.g. ,"),
            ("2-3", "2 - 3"),
            ("a-1", "a-1"),
            ("1-a", "1 - a"),
            ("[1]", "[ 1 ]"),
            ("can't", "ca n't"),
            ("I'm", "I 'm"),
            ("'90s", "' 90s"),
            ("x:y", "x : y"),
            ("12:30", "12:30"),
            ("&amp;", "& amp ;"),
            ("100%", "100 %"),
            ("a~b", "a ~ b"),
            ("O(n)", "O(n )"),
            ("!!", "! !"),
        ];
        for (input, expected) in cases {
            assert_eq!(toks(input).join(" "), expected, "input {input:?}");
        }
    }

    proptest::proptest! {
        /// The ASCII peeling splits exactly as the general one does.
        #[test]
        fn ascii_chunks_split_as_the_general_path(chunk in r#"[aZ9eEgGnstTlLdm.,;:!?()'"$%+\-*^~<>=/#@&_\[\]{}`\\|]{1,10}"#) {
            let (mut ascii, mut general) = (Vec::new(), Vec::new());
            split_chunk_ascii(&chunk, &mut ascii);
            split_chunk_general(&chunk, &mut general);
            proptest::prop_assert_eq!(ascii, general);
        }

        /// The plain-chunk fast path splits exactly as the general peeling does.
        #[test]
        fn plain_chunks_split_as_the_general_path(chunk in "[aZ9w]{0,4}[aZ9w.,;:!?()'\"$%-]{1,2}") {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            if split_plain_chunk(&chunk, &mut fast) {
                split_chunk_general(&chunk, &mut general);
                proptest::prop_assert_eq!(fast, general);
            }
        }
    }

    #[test]
    fn whitespace_bytes_are_exactly_the_whitespace_chars() {
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let mut buf = [0u8; 4];
            let text = c.encode_utf8(&mut buf);
            let mut chunks = 0;
            for_each_chunk(text, |_| chunks += 1);
            assert_eq!(
                chunks == 0,
                c.is_whitespace(),
                "{c:?} {:x?}",
                text.as_bytes()
            );
        }
    }

    /// Text of letters and every kind of whitespace (and \x1c, which is none).
    const SPACED: &str = "[a \t\n\x0b\x0c\r\x1c\u{85}\u{a0}\u{1680}\u{2000}-\u{200b}\u{2028}\u{202f}\u{205f}\u{3000}é日]{0,24}";

    proptest::proptest! {
        /// Chunks found on bytes are split_whitespace's.
        #[test]
        fn chunks_are_split_whitespaces(text in SPACED) {
            let mut chunks = Vec::new();
            for_each_chunk(&text, |x| chunks.push(x));
            proptest::prop_assert_eq!(chunks, text.split_whitespace().collect::<Vec<_>>());
        }

        /// Across 64-byte blocks too: the chunks are split_whitespace's, each with the classes
        /// of its bytes.
        #[test]
        fn long_chunks_and_classes_are_the_bytes(text in "([a-z0-9]{0,70}|[ \t\n\u{a0}\u{2009}\u{3000}]{1,70}|[A-Z.,é’日]{1,5}){0,12}") {
            let mut found = Vec::new();
            chunks_while(&text, |chunk, classes| {
                found.push((chunk, classes));
                true
            });
            let expected: Vec<(&str, u8)> = text
                .split_whitespace()
                .map(|w| {
                    let b = w.as_bytes();
                    let mut classes = 0;
                    if !b.iter().all(u8::is_ascii_alphanumeric) {
                        classes |= NOT_ALPHANUMERIC;
                    }
                    if b.iter().any(u8::is_ascii_alphabetic) {
                        classes |= LETTER;
                    }
                    (w, classes)
                })
                .collect();
            proptest::prop_assert_eq!(found, expected);
        }

        /// The bounded word count is split_whitespace's, for every bound.
        #[test]
        fn bounded_counts_are_split_whitespaces(text in SPACED, limit in 0usize..12) {
            proptest::prop_assert_eq!(count_words_upto(&text, limit), text.split_whitespace().take(limit).count());
        }
    }

    #[test]
    fn many_suffixes_keep_their_order() {
        let chunk = "word)))))))))),.";
        let mut out = Vec::new();
        split_chunk_general(chunk, &mut out);
        // Twelve suffixes: eight kept inline, four spilled, all in text order.
        let mut expected = vec!["word"];
        expected.extend([")"; 10]);
        expected.extend([",", "."]);
        assert_eq!(out, expected);
    }

    #[test]
    fn sentences_follow_the_sentencizer() {
        let t = toks("Hello, world! It's here. \"Yes\" he said... ok");
        assert_eq!(sentence_count(&t), 3);
        assert_eq!(sentence_count(&toks("No end here")), 1);
        assert_eq!(sentence_count(&[]), 0);
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "",
            ".",
            "...",
            "'",
            "n't",
            "’s",
            "a.",
            "+1",
            "—",
            "日本語。テスト",
            "\u{200f}שלום",
            "🎉🎉",
        ] {
            let _ = toks(s);
        }
    }
}
