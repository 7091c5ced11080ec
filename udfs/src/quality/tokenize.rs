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
const PUNCT_CHARS: &str = "!\"#%&'()*,-./:;?@[\\]_{}¡§«·»¿‐‑‒–—―‖‘’‚‛“”„‟†‡•…‰′″‹›※‼‽⁇⁈⁉、。〈〉《》「」『』【】〔〕〜・！＂＃％＆＇（）＊，－．／：；？＠［＼］＿｛｝｡､";

static AFFIX: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(AFFIX_CHARS));
static PREFIX: LazyLock<CharSet> =
    LazyLock::new(|| CharSet::new(&format!("{PREFIX_ONLY}{CURRENCY_CHARS}")));
static CURRENCY: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(CURRENCY_CHARS));
static SUFFIX: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(SUFFIX_ONLY));
static PUNCT: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(PUNCT_CHARS));
static SENT_END: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(SENTENCE_END));

/// True when every char of `token` is punctuation (spaCy's `is_punct`).
pub(crate) fn is_punct(token: &str) -> bool {
    !token.is_empty() && token.chars().all(|c| PUNCT.contains(c))
}

fn is_url(s: &str) -> bool {
    s.contains("://") || s.starts_with("www.")
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '–' | '—' | '~')
}

/// Append the spaCy-like tokens of `text` to `out`.
pub(crate) fn words<'a>(text: &'a str, out: &mut Vec<&'a str>) {
    for_each_chunk(text, |chunk| split_chunk(chunk, out));
}

/// Calls `f` with each chunk `text.split_whitespace()` yields, in order, found on the bytes:
/// the UTF-8 encoding of every Unicode whitespace char starts with an ASCII byte or with one of
/// 0xC2, 0xE1, 0xE2, 0xE3, so other bytes need no decoding.
fn for_each_chunk<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    chunks_while(text, |chunk| {
        f(chunk);
        true
    });
}

/// [`for_each_chunk`] until `f` returns false.
#[inline(always)]
fn chunks_while<'a>(text: &'a str, mut f: impl FnMut(&'a str) -> bool) {
    let b = text.as_bytes();
    let (mut i, mut start) = (0usize, None);
    while i < b.len() {
        let space = space_at(b, i);
        if space == 0 {
            start.get_or_insert(i);
            i += 1;
            continue;
        }
        if let Some(s) = start.take() {
            if !f(&text[s..i]) {
                return;
            }
        }
        i += space;
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

/// Byte length of the whitespace char at `b[i]` (0 when it starts no whitespace char).
#[inline(always)]
fn space_at(b: &[u8], i: usize) -> usize {
    match b[i] {
        b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => 1,
        0x00..=0x7f => 0,
        _ => whitespace_len(&b[i..]),
    }
}

/// `text.split_whitespace().take(limit).count()`, on the bytes ([`for_each_chunk`]'s chunks),
/// stopping at the `limit`-th.
pub(crate) fn count_words_upto(text: &str, limit: usize) -> usize {
    let mut n = 0;
    if limit > 0 {
        chunks_while(text, |_| {
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
    if !split_plain_chunk(chunk, out) {
        split_chunk_general(chunk, out);
    }
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
    let mut s = chunk;
    // Suffixes peeled so far, outermost first: eight inline (no allocation for a chunk's few
    // closing marks), the rest in `spill`.
    let mut suffixes: [&'a str; 8] = [""; 8];
    let mut n_suffixes = 0usize;
    let mut spill: Vec<&'a str> = Vec::new();
    loop {
        if s.is_empty() {
            break;
        }
        // Prefix.
        let first = s.chars().next().unwrap();
        if s.starts_with("...") {
            let n = s.len() - s.trim_start_matches('.').len();
            out.push(&s[..n]);
            s = &s[n..];
            continue;
        }
        let plus_digit = first == '+' && s[1..].starts_with(|c: char| c.is_ascii_digit());
        if (AFFIX.contains(first) || PREFIX.contains(first))
            && !plus_digit
            && s.len() > first.len_utf8()
        {
            out.push(&s[..first.len_utf8()]);
            s = &s[first.len_utf8()..];
            continue;
        }
        // Suffix.
        if let Some(n) = suffix_len(s) {
            if n < s.len() {
                let suffix = &s[s.len() - n..];
                if n_suffixes < suffixes.len() {
                    suffixes[n_suffixes] = suffix;
                    n_suffixes += 1;
                } else {
                    spill.push(suffix);
                }
                s = &s[..s.len() - n];
                continue;
            }
        }
        break;
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

fn split_infixes<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    let may_split = |c: char| {
        matches!(
            c,
            '.' | '…' | '+' | '-' | '*' | '^' | ',' | '–' | '—' | '~' | ':' | '<' | '>' | '=' | '/'
        )
    };
    if !s.chars().skip(1).any(may_split) {
        out.push(s);
        return;
    }
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut start = 0usize;
    let mut i = 0usize;
    while i < chars.len() {
        let (pos, c) = chars[i];
        let prev = if i > 0 { Some(chars[i - 1].1) } else { None };
        let next = chars.get(i + 1).map(|x| x.1);
        // Length in chars of an infix starting at i, if one does.
        let infix = if c == '.' && next == Some('.') {
            let mut j = i;
            while j < chars.len() && chars[j].1 == '.' {
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
                    while is_hyphen(c) && j < chars.len() && is_hyphen(chars[j].1) {
                        j += 1;
                    }
                    if is_hyphen(c)
                        && p.is_alphanumeric()
                        && chars.get(j).is_some_and(|x| x.1.is_alphabetic())
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
                let end = chars.get(i + n).map_or(s.len(), |x| x.0);
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

/// Number of sentences spaCy's `sentencizer` finds in `tokens`: a new sentence starts at the
/// first non-punctuation token after a sentence-final character.
pub(crate) fn sentence_count(tokens: &[&str]) -> usize {
    if tokens.is_empty() {
        return 0;
    }
    let mut sentences = 1;
    let mut seen_end = false;
    for t in tokens {
        // A one-char token that ends sentences (no count of its chars: most tokens are words).
        let mut chars = t.chars();
        let is_end = match (chars.next(), chars.next()) {
            (Some(c), None) => SENT_END.contains(c),
            _ => false,
        };
        if seen_end && !is_punct(t) && !is_end {
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
