//! Text -> heuristic quality signals (Gopher quality and repetition, C4, FineWeb, language).
//!
//! Definitions follow datatrove 0.10.1's filters so that pass/fail agrees with the reference
//! implementation; every deliberate difference is listed in the README ("quality_signals").
//! All steps are linear in the text length: words and n-grams are hashed once, n-gram
//! identity is a 61-bit polynomial hash of the word sequence.

use std::cell::RefCell;
use std::sync::LazyLock;

use super::charsets::{SENTENCE_END, SYMBOL_CHARS, TERMINAL_PUNCTUATION};
use super::lines::{split_newline_runs, Pieces};
use super::ngrams::{self, ngram_fracs, token_hash};
use super::thresholds::*;
use super::tokenize::{self, CharSet};

static SYMBOLS: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(SYMBOL_CHARS));
/// Per byte, what it says about the token it is in: [`BYTE_WORD`] for an ASCII char outside
/// [`SYMBOL_CHARS`], [`BYTE_ALPHA`] for an ASCII letter, [`BYTE_PUNCT`] and [`BYTE_END`] for
/// ASCII chars of spaCy's punctuation and sentence-final sets, [`BYTE_OTHER`] for a byte of a
/// non-ASCII char. A constant: no lazy initialisation to check per token.
const BYTE_CLASS: [u8; 256] = {
    let symbols = tokenize::ascii_members(SYMBOL_CHARS);
    let mut table = [BYTE_OTHER; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = if symbols[b] { 0 } else { BYTE_WORD };
        if (b as u8).is_ascii_alphabetic() {
            table[b] |= BYTE_ALPHA;
        }
        b += 1;
    }
    let table = tokenize::mark(table, tokenize::PUNCT_CHARS, BYTE_PUNCT);
    tokenize::mark(table, SENTENCE_END, BYTE_END)
};
const BYTE_WORD: u8 = 1;
const BYTE_ALPHA: u8 = 2;
const BYTE_OTHER: u8 = 4;
const BYTE_PUNCT: u8 = 8;
const BYTE_END: u8 = 16;
static TERMINAL: LazyLock<CharSet> = LazyLock::new(|| CharSet::new(TERMINAL_PUNCTUATION));

const POLICY: [&str; 6] = [
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];
/// Characters of text given to language identification (enough for whatlang to be sure).
const LANGUAGE_PREFIX_CHARS: usize = 600;

/// Every raw signal of one document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// Characters (Unicode scalar values) in the text.
    pub chars: u64,
    /// Non-blank lines.
    pub lines: u64,
    /// Gopher: words with at least one non-punctuation character.
    pub words: u64,
    /// All word tokens, punctuation tokens included (denominator of Gopher's ratios).
    pub tokens: u64,
    /// Gopher: mean length in characters of the words counted in `words`.
    pub mean_word_length: f64,
    /// Gopher: `#` characters per token.
    pub hash_ratio: f64,
    /// Gopher: `...` and `…` per token.
    pub ellipsis_ratio: f64,
    /// Gopher: fraction of lines starting with `•`, `-` or `*`.
    pub bullet_lines_ratio: f64,
    /// Gopher: fraction of lines ending with `...` or `…`.
    pub ellipsis_lines_ratio: f64,
    /// Gopher: fraction of tokens with an alphabetic character.
    pub alpha_words_ratio: f64,
    /// Gopher: how many distinct stop words {the, be, to, of, and, that, have, with} occur.
    pub stop_words: u64,
    /// Gopher repetition: duplicate lines / lines.
    pub dup_line_frac: f64,
    /// Gopher repetition: duplicate paragraphs / paragraphs.
    pub dup_para_frac: f64,
    /// Gopher repetition: characters in duplicate lines / characters.
    pub dup_line_char_frac: f64,
    /// Gopher repetition: characters in duplicate paragraphs / characters.
    pub dup_para_char_frac: f64,
    /// Gopher repetition: characters covered by the most frequent 2-, 3-, 4-gram / characters.
    pub top_ngram_char_frac: [f64; 3],
    /// Gopher repetition: characters in duplicated 5..10-grams / characters.
    pub dup_ngram_char_frac: [f64; 6],
    /// C4: fraction of non-empty lines ending in `.`, `?`, `!`, `"` or `'` (not `...`).
    pub terminal_punct_lines_ratio: f64,
    /// C4: sentences in the lines C4 keeps.
    pub sentences: u64,
    /// C4: a kept line contains "lorem ipsum".
    pub lorem_ipsum: bool,
    /// C4: a kept line contains `{`.
    pub curly_bracket: bool,
    /// C4: lines mentioning "javascript".
    pub javascript_lines: u64,
    /// C4: lines with cookie / privacy / terms-of-use phrases.
    pub policy_lines: u64,
    /// FineWeb: fraction of non-blank lines ending in terminal punctuation (many scripts).
    pub line_punct_ratio: f64,
    /// FineWeb: fraction of non-blank lines of at most 30 characters.
    pub short_line_ratio: f64,
    /// FineWeb: characters in duplicate lines / non-newline characters.
    pub dup_line_char_ratio: f64,
    /// FineWeb: newlines per token.
    pub newline_ratio: f64,
    /// Boilerplate: characters in prose lines / characters in lines (lines: FineWeb's, stripped).
    /// A prose line ends in sentence punctuation (`.!?…。！？`, closing quotes or brackets
    /// after it allowed) and has at least 8 words. Not used by the score: hard-wrapped text
    /// (books, e-mails) has few prose lines although it is prose.
    pub prose_line_char_frac: f64,
    /// Boilerplate: lines in navigation runs / lines. A navigation line has at most 4 words,
    /// starts with an upper-case letter (so scripts without case, e.g. Chinese, have none),
    /// does not end in sentence punctuation or `,:;-`, and has none of `{}();=<>\$[]|_@#*` (so
    /// code and markup are not menus); a run is 3 or more navigation lines in a row: menus,
    /// button rows, tag and link lists, footers. A heading before its paragraph, or two empty
    /// sections' headings, are not runs.
    pub nav_run_line_frac: f64,
    /// Boilerplate: characters in navigation runs / characters in lines.
    pub nav_run_char_frac: f64,
    /// Boilerplate: characters in navigation runs (an amount, so any added menu raises it).
    pub nav_run_chars: u64,
    /// ISO 639-3 code of the first 600 characters: "eng" when at least 15% of its words (20 or
    /// more) are common English function words, else whatlang's; None when undetected.
    pub language: Option<&'static str>,
    /// 1 for the function-word English check, else whatlang's confidence; 0 when undetected.
    pub language_confidence: f64,
}

impl Signals {
    /// Gopher quality rules with datatrove's default thresholds.
    pub fn passes_gopher_quality(&self) -> bool {
        (MIN_WORDS..=MAX_WORDS).contains(&self.words)
            && (MIN_MEAN_WORD_LENGTH..=MAX_MEAN_WORD_LENGTH).contains(&self.mean_word_length)
            && self.hash_ratio <= MAX_HASH_RATIO
            && self.ellipsis_ratio <= MAX_ELLIPSIS_RATIO
            && self.bullet_lines_ratio <= MAX_BULLET_LINES_RATIO
            && self.ellipsis_lines_ratio <= MAX_ELLIPSIS_LINES_RATIO
            && self.alpha_words_ratio >= MIN_ALPHA_WORDS_RATIO
            && self.stop_words >= MIN_STOP_WORDS
    }

    /// Gopher repetition rules with datatrove's default thresholds.
    pub fn passes_gopher_repetition(&self) -> bool {
        self.chars > 0
            && self.dup_para_frac <= MAX_DUP_PARA_FRAC
            && self.dup_para_char_frac <= MAX_DUP_PARA_CHAR_FRAC
            && self.dup_line_frac <= MAX_DUP_LINE_FRAC
            && self.dup_line_char_frac <= MAX_DUP_LINE_CHAR_FRAC
            && self
                .top_ngram_char_frac
                .iter()
                .zip(MAX_TOP_NGRAM_CHAR_FRAC)
                .all(|(v, t)| *v <= t)
            && self
                .dup_ngram_char_frac
                .iter()
                .zip(MAX_DUP_NGRAM_CHAR_FRAC)
                .all(|(v, t)| *v <= t)
    }

    /// C4 rules: at least 5 sentences in kept lines, no "lorem ipsum", no `{`.
    pub fn passes_c4(&self) -> bool {
        self.sentences >= MIN_C4_SENTENCES && !self.lorem_ipsum && !self.curly_bracket
    }

    /// FineWeb rules with datatrove's default thresholds.
    pub fn passes_fineweb(&self) -> bool {
        self.line_punct_ratio >= MIN_LINE_PUNCT_RATIO
            && self.short_line_ratio <= MAX_SHORT_LINE_RATIO
            && self.dup_line_char_ratio <= MAX_DUP_LINE_CHAR_RATIO
            && self.newline_ratio <= MAX_NEWLINE_RATIO
    }
}

fn py_strip(s: &str) -> &str {
    // Most lines start and end with a printable ASCII char: nothing to strip.
    let printable = |b: Option<&u8>| b.is_some_and(|b| (0x21..0x7f).contains(b));
    if printable(s.as_bytes().first()) && printable(s.as_bytes().last()) {
        return s;
    }
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Count of duplicates and their characters, first occurrence not counted (datatrove's
/// `find_duplicates`).
fn find_duplicates<'a>(items: impl Iterator<Item = &'a str>) -> (usize, usize, usize) {
    // foldhash (DataFusion's hasher), not SipHash: these are the text's own lines, and which
    // hasher a set uses does not change what it holds. Room for every item up front (the
    // lines' iterator is a filter: its upper bound, the pieces, not its lower bound 0), so the
    // set never grows mid-document.
    let (low, high) = items.size_hint();
    let mut seen: datafusion::common::HashSet<&str> =
        datafusion::common::HashSet::with_capacity_and_hasher(
            high.unwrap_or(low),
            Default::default(),
        );
    let (mut n, mut dups, mut dup_chars) = (0, 0, 0);
    for item in items {
        n += 1;
        if !seen.insert(item) {
            dups += 1;
            dup_chars += char_len(item);
        }
    }
    (n, dups, dup_chars)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Characters (Unicode scalar values) of `s`: its bytes that do not continue a UTF-8
/// sequence. The same count as `s.chars().count()`, inline, without that function's call and
/// set-up, which cost more than the count on the many short lines and tokens.
#[inline]
fn char_len(s: &str) -> usize {
    s.bytes().filter(|b| (*b as i8) >= -0x40).count()
}

/// Remove Wikipedia-style citations: `[12]`, `[]`, `[edit]`, `[citation needed]`.
fn remove_citations(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('[') {
        return line.into();
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let skip = if after[digits..].starts_with(']') {
            Some(digits + 1)
        } else if after.starts_with("edit]") {
            Some(5)
        } else if after.starts_with("citation needed]") {
            Some(16)
        } else {
            None
        };
        match skip {
            Some(n) => rest = &after[n..],
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.into()
}

/// Compute every signal of `text`: the four rule sets of datatrove (Gopher quality, Gopher
/// repetition, C4, FineWeb) and the language.
pub fn compute(text: &str) -> Signals {
    let mut s = with_scratch(|scratch| compute_with(text, scratch));
    language(text, &mut s);
    s
}

/// The signals the score needs: [`compute`]'s, except that the language is left undetected
/// when [`super::score::language_matters`] says it cannot change the score (it only scales
/// English-only penalties and drops the mean-word-length ones, so when those are 0 it does not
/// matter): the score is the same number, bit for bit, and language detection, most of the
/// cost on some texts, is skipped.
pub(super) fn compute_for_score(text: &str) -> Signals {
    let mut s = with_scratch(|scratch| compute_with(text, scratch));
    if super::score::language_matters(&s) {
        language(text, &mut s);
    }
    s
}

fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Buffers reused from one document to the next on a thread (no allocation per document
/// once they have grown).
#[derive(Default)]
struct Scratch {
    /// The token list's allocation (empty between documents).
    tokens: Vec<&'static str>,
    /// Per token: length in characters, hash.
    token_chars: Vec<u32>,
    token_hashes: Vec<u64>,
    /// Per token: what the tokenizer knows of it.
    token_kinds: Vec<tokenize::TokenKind>,
    /// Byte offsets of the whitespace-separated chunks.
    chunk_starts: Vec<usize>,
    /// Per token: its [`tokenize::sentence_role`].
    token_roles: Vec<u8>,
    /// The text with ASCII letters lower-cased (C4's phrase search).
    lower: Vec<u8>,
    ngrams: ngrams::Scratch,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

fn compute_with(text: &str, scratch: &mut Scratch) -> Signals {
    let mut s = Signals {
        chars: char_len(text) as u64,
        ..Default::default()
    };
    let mut tokens = relabel(std::mem::take(&mut scratch.tokens));
    scratch.token_kinds.clear();
    scratch.chunk_starts.clear();
    tokenize::words_marked(
        text,
        &mut tokens,
        &mut scratch.token_kinds,
        &mut scratch.chunk_starts,
    );
    s.tokens = tokens.len() as u64;
    // \x1c-\x1f are not whitespace but splitlines breaks at \x1c-\x1e and py_strip strips
    // all four: without them every line's words are the whole text's chunks inside it.
    let b = text.as_bytes();
    let chunks_are_line_words =
        memchr::memchr3(0x1c, 0x1d, 0x1e, b).is_none() && memchr::memchr(0x1f, b).is_none();
    let pieces = Pieces::new(text);
    let lines = pieces.py_lines();
    gopher_quality(text, &tokens, &lines, scratch, &mut s);
    gopher_repetition(text, &pieces, scratch, &mut s);
    let words = chunks_are_line_words.then(|| LineWords::new(text, &scratch.chunk_starts));
    c4(
        text,
        &lines,
        &tokens,
        &scratch.token_roles,
        words.clone(),
        &mut scratch.lower,
        &mut s,
    );
    fineweb(&pieces, words, &mut s);
    // A huge document's list is not kept for the thread's lifetime.
    if tokens.capacity() <= MAX_KEPT_TOKENS {
        scratch.tokens = relabel(tokens);
    }
    s
}

/// Largest token list (in tokens, 16 bytes each) kept from one document for the next.
const MAX_KEPT_TOKENS: usize = 1 << 20;

/// `v` emptied, as a vector of slices of any lifetime, in its own allocation (std collects a
/// `vec::IntoIter` of an element of the same layout in place): the token list keeps its capacity
/// from one document to the next without borrowing the text it last held.
fn relabel<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

/// A token's length in chars, whether it has a char outside [`SYMBOLS`] (a word), whether it
/// has an alphabetic char, and its [`tokenize::sentence_role`]. One pass over the bytes; only
/// a token with a non-ASCII char takes a second pass over its chars.
#[inline]
fn token_class(t: &str) -> (usize, bool, bool, u8) {
    let (any, all) = t.bytes().fold((0, u8::MAX), |(any, all), b| {
        let class = BYTE_CLASS[usize::from(b)];
        (any | class, all & class)
    });
    if any & BYTE_OTHER != 0 {
        let (n, word, alpha) = token_class_chars(t);
        return (n, word, alpha, tokenize::sentence_role(t));
    }
    let mut role = 0;
    if t.len() == 1 && any & BYTE_END != 0 {
        role |= tokenize::SENTENCE_END_ROLE;
    }
    if !t.is_empty() && all & BYTE_PUNCT != 0 {
        role |= tokenize::PUNCT_ROLE;
    }
    (t.len(), any & BYTE_WORD != 0, any & BYTE_ALPHA != 0, role)
}

/// [`token_class`] char by char.
fn token_class_chars(t: &str) -> (usize, bool, bool) {
    let (mut n, mut word, mut alpha) = (0, false, false);
    for c in t.chars() {
        n += 1;
        word |= !SYMBOLS.contains(c);
        alpha |= c.is_alphabetic();
    }
    (n, word, alpha)
}

/// Gopher quality over word tokens and Python `splitlines` lines: words, mean word length,
/// stop words, alphabetic words, `#` and ellipsis ratios, bullet and ellipsis lines. Leaves
/// each token's length in characters and hash in `scratch` (the repetition rules use them).
fn gopher_quality(
    text: &str,
    tokens: &[&str],
    lines: &[&str],
    scratch: &mut Scratch,
    s: &mut Signals,
) {
    let n_tokens = tokens.len() as f64;
    let (mut words, mut word_chars, mut alpha_tokens) = (0usize, 0usize, 0usize);
    let mut stop = [false; 8];
    let n = tokens.len();
    let (token_chars, token_hashes, token_roles) = (
        &mut scratch.token_chars,
        &mut scratch.token_hashes,
        &mut scratch.token_roles,
    );
    // Sized once, then written by index: no capacity check per token.
    token_chars.clear();
    token_chars.resize(n, 0);
    token_hashes.clear();
    token_hashes.resize(n, 0);
    token_roles.clear();
    token_roles.resize(n, 0);
    let bytes = text.as_bytes();
    let base = text.as_ptr() as usize;
    for (i, (t, kind)) in tokens.iter().zip(&scratch.token_kinds).enumerate() {
        let (chars, word, alpha, role) = match kind {
            // Letters and digits only: a word of one char per byte, no punctuation.
            tokenize::TokenKind::Alphanumeric => (t.len(), true, true, 0),
            tokenize::TokenKind::Digits => (t.len(), true, false, 0),
            tokenize::TokenKind::Other => token_class(t),
        };
        token_chars[i] = chars as u32;
        token_hashes[i] = token_hash(bytes, t.as_ptr() as usize - base, t.len());
        token_roles[i] = role;
        if word {
            words += 1;
            word_chars += chars;
        }
        if alpha {
            alpha_tokens += 1;
            // A match on the bytes compiles to length + byte compares (no memcmp calls).
            let slot = match t.as_bytes() {
                b"the" => Some(0),
                b"be" => Some(1),
                b"to" => Some(2),
                b"of" => Some(3),
                b"and" => Some(4),
                b"that" => Some(5),
                b"have" => Some(6),
                b"with" => Some(7),
                _ => None,
            };
            if let Some(i) = slot {
                stop[i] = true;
            }
        }
    }
    s.words = words as u64;
    s.mean_word_length = ratio(word_chars as f64, s.words as f64);
    s.stop_words = stop.iter().filter(|x| **x).count() as u64;
    s.alpha_words_ratio = ratio(alpha_tokens as f64, n_tokens);
    let hashes = memchr::memchr_iter(b'#', bytes).count();
    s.hash_ratio = ratio(hashes as f64, n_tokens);
    let ellipses = count_dot_runs(bytes) + ELLIPSIS_FINDER.find_iter(bytes).count();
    s.ellipsis_ratio = ratio(ellipses as f64, n_tokens);

    line_starts_and_ends(lines, s);
}

/// The searcher for "…", built once (not per document).
static ELLIPSIS_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new("…"));

/// Non-overlapping occurrences of "..." (as `str::matches` counts them): from each '.', found
/// by memchr. A substring searcher would stop at every '.' of code or numbers anyway.
fn count_dot_runs(bytes: &[u8]) -> usize {
    let (mut n, mut i) = (0, 0);
    while let Some(at) = memchr::memchr(b'.', &bytes[i..]) {
        let at = i + at;
        if bytes.get(at + 1) == Some(&b'.') && bytes.get(at + 2) == Some(&b'.') {
            n += 1;
            i = at + 3;
        } else {
            i = at + 1;
        }
    }
    n
}

/// Gopher quality's bullet and ellipsis lines.
fn line_starts_and_ends(lines: &[&str], s: &mut Signals) {
    let n_lines = lines.len() as f64;
    let bullets = lines
        .iter()
        .filter(|l| l.trim_start().starts_with(['•', '-', '*']))
        .count();
    s.bullet_lines_ratio = ratio(bullets as f64, n_lines);
    let ellipsis_lines = lines
        .iter()
        .filter(|l| {
            let l = l.trim_end();
            l.ends_with("...") || l.ends_with('…')
        })
        .count();
    s.ellipsis_lines_ratio = ratio(ellipsis_lines as f64, n_lines);
}

/// Gopher repetition: duplicated paragraphs (split on 2+ newlines of the stripped text) and
/// lines (1+ newlines), top and duplicated n-grams.
fn gopher_repetition(text: &str, pieces: &Pieces, scratch: &mut Scratch, s: &mut Signals) {
    let chars = s.chars as f64;
    let stripped = py_strip(text);
    let paragraphs = split_newline_runs(stripped, 2);
    let (n_para, para_dups, para_dup_chars) = find_duplicates(paragraphs.iter().copied());
    s.dup_para_frac = ratio(para_dups as f64, n_para as f64);
    s.dup_para_char_frac = ratio(para_dup_chars as f64, chars);
    let (n_rep_lines, line_dups, line_dup_chars) = find_duplicates(pieces.newline_run_lines());
    s.dup_line_frac = ratio(line_dups as f64, n_rep_lines as f64);
    s.dup_line_char_frac = ratio(line_dup_chars as f64, chars);
    let fracs = ngram_fracs(
        &scratch.token_hashes,
        &scratch.token_chars,
        chars,
        &mut scratch.ngrams,
    );
    s.top_ngram_char_frac = fracs.top;
    s.dup_ngram_char_frac = fracs.dup;
}

/// Word counts of lines in text order from the whole text's chunk offsets: a line's words
/// (`split_whitespace`) are the text's chunks that start inside it, when every line break and
/// stripped char is whitespace (no \x1c-\x1f in the text).
#[derive(Clone)]
struct LineWords<'a> {
    base: usize,
    starts: &'a [usize],
    /// The first chunk not before the last line asked about.
    next: usize,
}

impl<'a> LineWords<'a> {
    fn new(text: &str, starts: &'a [usize]) -> Self {
        Self {
            base: text.as_ptr() as usize,
            starts,
            next: 0,
        }
    }

    /// `line.split_whitespace().take(limit).count()` for `line`, a slice of the text after
    /// (or at) the lines asked about before.
    fn count_upto(&mut self, line: &str, limit: usize) -> usize {
        let start = line.as_ptr() as usize - self.base;
        let end = start + line.len();
        while self.next < self.starts.len() && self.starts[self.next] < start {
            self.next += 1;
        }
        self.starts[self.next..]
            .iter()
            .take(limit)
            .take_while(|at| **at < end)
            .count()
    }
}

/// C4 over Python `splitlines` lines: sentences in kept lines, "lorem ipsum", `{`, javascript
/// and policy lines, lines ending in terminal punctuation. `tokens` are the whole text's and
/// `roles` their [`tokenize::sentence_role`]s.
fn c4(
    text: &str,
    lines: &[&str],
    tokens: &[&str],
    roles: &[u8],
    mut words: Option<LineWords>,
    lower: &mut Vec<u8>,
    s: &mut Signals,
) {
    let mut nonempty = 0usize;
    let mut terminal = 0usize;
    let mut line_lower = String::new();
    // A line's tokens are the whole text's tokens inside it when every line break is also a
    // word break: splitlines also breaks at \x1c-\x1e, which are not whitespace, and strips
    // \x1f. Without those bytes the whole text's tokens are reused (no second tokenizer pass
    // over the kept lines); with them each kept line is tokenized on its own.
    let reuse = words.is_some();
    let offset = |t: &str| t.as_ptr() as usize - text.as_ptr() as usize;
    // Where C4's phrases can be: a line holds one only if it holds one of their anchors,
    // found once in the whole lower-cased text (no phrase spans a line break).
    let anchors = phrase_anchors(text, lower);
    let mut next_anchor = 0usize;
    // Only a line with a '[' can hold a citation.
    let brackets: Vec<usize> = memchr::memchr_iter(b'[', text.as_bytes()).collect();
    let mut next_bracket = 0usize;
    // The first token not before the current line.
    let mut next_token = 0usize;
    for raw in lines {
        let (raw_start, raw_end) = (offset(raw), offset(raw) + raw.len());
        while next_anchor < anchors.len() && anchors[next_anchor].0 < raw_start {
            next_anchor += 1;
        }
        let has_anchor = anchors[next_anchor..]
            .iter()
            .take_while(|(at, _)| *at < raw_end)
            .any(|(at, len)| at + len <= raw_end);
        while next_bracket < brackets.len() && brackets[next_bracket] < raw_start {
            next_bracket += 1;
        }
        let has_bracket = brackets.get(next_bracket).is_some_and(|at| *at < raw_end);
        let stripped = py_strip(raw);
        // Only a line of over 1000 bytes can hold a word of over 1000 characters.
        if stripped.len() > 1000 && stripped.split_whitespace().any(|w| char_len(w) > 1000) {
            continue;
        }
        let line = if has_bracket {
            remove_citations(stripped)
        } else {
            std::borrow::Cow::Borrowed(stripped)
        };
        // Removing a citation can join a phrase ("java[1]script"): such lines are searched
        // on their own.
        let found = if has_anchor || matches!(line, std::borrow::Cow::Owned(_)) {
            c4_phrases(&line, &mut line_lower)
        } else {
            0
        };
        let (javascript, policy) = (found & JAVASCRIPT != 0, found & POLICY_PHRASE != 0);
        if javascript {
            s.javascript_lines += 1;
        }
        if policy {
            s.policy_lines += 1;
        }
        if line.is_empty() {
            continue;
        }
        nonempty += 1;
        let ends = line.ends_with(['.', '?', '!', '"', '\'']) && !line.ends_with("...");
        if !ends {
            continue;
        }
        terminal += 1;
        // Fewer than 3 words (of the line before citations are removed): only the first three
        // need finding.
        let line_words = match &mut words {
            Some(words) => words.count_upto(stripped, 3),
            None => tokenize::count_words_upto(stripped, 3),
        };
        if line_words < 3 {
            continue;
        }
        if found & LOREM_IPSUM != 0 {
            s.lorem_ipsum = true;
        }
        if javascript {
            continue;
        }
        if line.contains('{') {
            s.curly_bracket = true;
        }
        if policy {
            continue;
        }
        if let (true, std::borrow::Cow::Borrowed(kept)) = (reuse, &line) {
            let (start, end) = (offset(kept), offset(kept) + kept.len());
            while next_token < tokens.len() && offset(tokens[next_token]) < start {
                next_token += 1;
            }
            let first = next_token;
            while next_token < tokens.len() && offset(tokens[next_token]) < end {
                next_token += 1;
            }
            s.sentences += tokenize::sentence_count_of_roles(&roles[first..next_token]) as u64;
            continue;
        }
        // Tokens borrow `line`, which may be an owned copy: count inside this scope.
        let mut line_tokens: Vec<&str> = Vec::new();
        tokenize::words(&line, &mut line_tokens);
        s.sentences += tokenize::sentence_count(&line_tokens) as u64;
    }
    s.terminal_punct_lines_ratio = ratio(terminal as f64, nonempty as f64);
}

/// Substrings every C4 phrase contains: "javascript", "lorem ipsum", and the policy phrases'
/// "terms of use", "privacy policy", "cookie" (the other four all contain "cookie").
const PHRASE_ANCHORS: [&str; 5] = [
    "javascript",
    "lorem ipsum",
    "terms of use",
    "privacy policy",
    "cookie",
];

/// A searcher per [`PHRASE_ANCHORS`] entry, built once: building one per document cost as much
/// as searching a short document.
static ANCHOR_FINDERS: LazyLock<[memchr::memmem::Finder<'static>; 5]> =
    LazyLock::new(|| PHRASE_ANCHORS.map(memchr::memmem::Finder::new));

/// Every occurrence (byte offset, length) of a [`PHRASE_ANCHORS`] entry in `text` with ASCII
/// letters lower-cased (as [`c4_phrases`] compares), sorted by offset. `lower` is a buffer.
fn phrase_anchors(text: &str, lower: &mut Vec<u8>) -> Vec<(usize, usize)> {
    lower.clear();
    lower.extend_from_slice(text.as_bytes());
    lower.make_ascii_lowercase();
    let mut found = Vec::new();
    for finder in ANCHOR_FINDERS.iter() {
        let len = finder.needle().len();
        found.extend(finder.find_iter(lower).map(|at| (at, len)));
    }
    found.sort_unstable();
    found
}

/// Bits of [`c4_phrases`].
const JAVASCRIPT: u8 = 1;
const LOREM_IPSUM: u8 = 2;
const POLICY_PHRASE: u8 = 4;

/// Which of C4's phrases `line` contains, ignoring ASCII case as C4 does (it lower-cases the
/// line first): "javascript", "lorem ipsum", a policy phrase. Four of the six policy phrases
/// contain "cookie", so five searches of the lower-cased line replace the eight.
fn c4_phrases(line: &str, lower: &mut String) -> u8 {
    lower.clear();
    lower.push_str(line);
    lower.make_ascii_lowercase();
    let mut found = 0;
    if lower.contains("javascript") {
        found |= JAVASCRIPT;
    }
    if lower.contains("lorem ipsum") {
        found |= LOREM_IPSUM;
    }
    let policy = lower.contains("terms of use")
        || lower.contains("privacy policy")
        || (lower.contains("cookie") && POLICY.iter().any(|p| lower.contains(p)));
    if policy {
        found |= POLICY_PHRASE;
    }
    found
}

/// FineWeb over lines split on '\n', blank ones dropped: punctuated and short lines,
/// duplicated-line characters, newlines per token.
fn fineweb(pieces: &Pieces, words: Option<LineWords>, s: &mut Signals) {
    let chars = s.chars as f64;
    let n_tokens = s.tokens as f64;
    let fw_lines: Vec<&str> = pieces
        .pieces
        .iter()
        .copied()
        .filter(|l| !py_strip(l).is_empty())
        .collect();
    s.lines = fw_lines.len() as u64;
    let n_fw = fw_lines.len() as f64;
    let punct = fw_lines
        .iter()
        .filter(|l| l.chars().next_back().is_some_and(|c| TERMINAL.contains(c)))
        .count();
    s.line_punct_ratio = ratio(punct as f64, n_fw);
    // A char is 1 to 4 bytes: only lines of 31 to 120 bytes need their chars counted.
    let short = fw_lines
        .iter()
        .filter(|l| l.len() <= 30 || (l.len() <= 120 && char_len(l) <= 30))
        .count();
    s.short_line_ratio = ratio(short as f64, n_fw);
    let (_, _, fw_dup_chars) = find_duplicates(fw_lines.iter().copied());
    let newlines = pieces.newlines();
    s.dup_line_char_ratio = ratio(fw_dup_chars as f64, chars - newlines as f64);
    s.newline_ratio = ratio(newlines as f64, n_tokens);
    boilerplate(&fw_lines, words, s);
}

/// Characters a sentence may end with before closing quotes or brackets.
fn ends_sentence(line: &str) -> bool {
    let body = line.trim_end_matches(['"', '\'', '”', '’', '»', ')', ']']);
    body.ends_with(['.', '!', '?', '…', '。', '！', '？'])
}

/// A short line that reads as a menu item, button or link rather than text (see
/// [`Signals::nav_run_line_frac`]).
fn navigation_line(line: &str, words: usize) -> bool {
    const CODE: &[char] = &[
        '{', '}', '(', ')', ';', '=', '<', '>', '\\', '$', '[', ']', '|', '_', '@', '#', '*',
    ];
    words <= 4
        && line.chars().next().is_some_and(char::is_uppercase)
        && !ends_sentence(line)
        && !line.ends_with([',', ':', ';', '-'])
        && !line.contains(CODE)
}

/// Fewest navigation lines in a row that make a run. Two would also take a document's empty
/// sections ("References", "External links") and heading-subheading pairs; menus, share rows
/// and link lists have three or more.
const MIN_NAV_RUN: usize = 3;

/// Prose-line and navigation-run shares over the stripped non-blank lines.
fn boilerplate(lines: &[&str], mut words: Option<LineWords>, s: &mut Signals) {
    let (mut total, mut prose) = (0usize, 0usize);
    let (mut run_lines, mut run_chars) = (0usize, 0usize);
    // The current run of navigation lines: (lines, chars).
    let mut run = (0usize, 0usize);
    let mut close_run = |run: &mut (usize, usize)| {
        if run.0 >= MIN_NAV_RUN {
            run_lines += run.0;
            run_chars += run.1;
        }
        *run = (0, 0);
    };
    for raw in lines {
        let line = py_strip(raw);
        let chars = char_len(line);
        // Both tests only need to know up to 8 words (prose has at least 8, a navigation
        // line at most 4): the count stops there instead of walking the whole line.
        let words = match &mut words {
            Some(words) => words.count_upto(line, 8),
            None => tokenize::count_words_upto(line, 8),
        };
        total += chars;
        if words >= 8 && ends_sentence(line) {
            prose += chars;
        }
        if navigation_line(line, words) {
            run.0 += 1;
            run.1 += chars;
        } else {
            close_run(&mut run);
        }
    }
    close_run(&mut run);
    s.prose_line_char_frac = ratio(prose as f64, total as f64);
    s.nav_run_line_frac = ratio(run_lines as f64, lines.len() as f64);
    s.nav_run_char_frac = ratio(run_chars as f64, total as f64);
    s.nav_run_chars = run_chars as u64;
}

/// Common English function words, none of them a frequent word of another Latin-script
/// language (so no "a", "in", "an", "on", "is", "die", "was").
const ENGLISH_FUNCTION_WORDS: [&str; 32] = [
    "the", "of", "and", "to", "that", "for", "it", "with", "as", "his", "they", "be", "at", "this",
    "have", "from", "or", "had", "by", "but", "what", "were", "we", "when", "your", "which",
    "their", "would", "there", "been", "has", "are",
];
/// Share of function words above which a prefix is English without asking whatlang.
const ENGLISH_FUNCTION_SHARE: f64 = 0.15;
/// Fewest words in the prefix for the function-word check to decide.
const ENGLISH_CHECK_MIN_WORDS: usize = 20;

/// [`ascii_lower_key`] of each [`ENGLISH_FUNCTION_WORDS`] entry: a word is one of them
/// (ignoring ASCII case, as `eq_ignore_ascii_case`) when its key is in this list, one integer
/// compare per entry instead of a string compare.
const FUNCTION_WORD_KEYS: [u64; 32] = {
    let mut keys = [0u64; 32];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = match ascii_lower_key(ENGLISH_FUNCTION_WORDS[i].as_bytes()) {
            Some(key) => key,
            None => panic!("function words are ASCII and at most 8 bytes long"),
        };
        i += 1;
    }
    keys
};

/// The bytes of `w` lower-cased (ASCII) in one little-endian integer; `None` when `w` is longer
/// than 8 bytes or has a non-ASCII byte (it then equals no key of a short ASCII word).
const fn ascii_lower_key(w: &[u8]) -> Option<u64> {
    if w.len() > 8 {
        return None;
    }
    let mut key = 0u64;
    let mut i = 0;
    while i < w.len() {
        if !w[i].is_ascii() {
            return None;
        }
        key |= (w[i].to_ascii_lowercase() as u64) << (8 * i);
        i += 1;
    }
    Some(key)
}

/// True when at least [`ENGLISH_FUNCTION_SHARE`] of the prefix's words (alphabetic runs, at
/// least [`ENGLISH_CHECK_MIN_WORDS`] of them) are English function words. `ascii`: whether
/// the prefix is all ASCII (its caller knows it already).
fn plainly_english(prefix: &str, ascii: bool) -> bool {
    let (mut words, mut hits) = (0usize, 0usize);
    let mut count = |w: &[u8]| {
        if w.is_empty() {
            return;
        }
        words += 1;
        if w.len() <= 5 && ascii_lower_key(w).is_some_and(|k| FUNCTION_WORD_KEYS.contains(&k)) {
            hits += 1;
        }
    };
    if ascii {
        // The same words on the bytes: an ASCII char is alphabetic when it is a letter.
        prefix
            .as_bytes()
            .split(|b| !b.is_ascii_alphabetic())
            .for_each(&mut count);
    } else {
        prefix
            .split(|c: char| !c.is_alphabetic())
            .for_each(|w| count(w.as_bytes()));
    }
    words >= ENGLISH_CHECK_MIN_WORDS && hits as f64 >= ENGLISH_FUNCTION_SHARE * words as f64
}

/// Language of the first [`LANGUAGE_PREFIX_CHARS`] characters: English with confidence 1 when
/// the prefix is plainly English by its function words (most documents; whatlang's trigram
/// scoring was half of quality_score's time), whatlang's answer otherwise.
fn language(text: &str, s: &mut Signals) {
    let head = &text.as_bytes()[..text.len().min(LANGUAGE_PREFIX_CHARS)];
    // An ASCII head is the prefix itself (one char per byte): no char-by-char walk. Otherwise
    // the prefix holds the head's non-ASCII byte.
    let ascii = head.is_ascii();
    let prefix_end = if ascii {
        head.len()
    } else {
        text.char_indices()
            .nth(LANGUAGE_PREFIX_CHARS)
            .map_or(text.len(), |(i, _)| i)
    };
    let prefix = &text[..prefix_end];
    if plainly_english(prefix, ascii) {
        s.language = Some("eng");
        s.language_confidence = 1.0;
    } else if let Some(info) = whatlang::detect(prefix) {
        s.language = Some(info.lang().code());
        s.language_confidence = info.confidence();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROSE: &str =
        "The committee met on Tuesday to review the proposal. Members agreed that the \
        plan would have to be revised with care before the vote. Several of them noted that the \
        budget was too small for the work described, and that the schedule left little time for \
        testing. The chair asked the authors to return next month with a clearer estimate of the \
        costs and a list of the risks they expect. Everyone thanked the staff for their patience.";

    #[test]
    fn clean_prose_passes_every_rule_set() {
        let s = compute(PROSE);
        assert!(s.words >= 50, "{s:?}");
        assert!(s.passes_gopher_quality(), "{s:?}");
        assert!(s.passes_gopher_repetition(), "{s:?}");
        assert!(s.passes_c4(), "{s:?}");
        assert!(s.passes_fineweb(), "{s:?}");
        assert_eq!(s.language, Some("eng"));
        assert_eq!(s.stop_words, 8);
    }

    proptest::proptest! {
        /// Tokens classified on their bytes as char by char (ASCII symbols, letters, digits
        /// and non-ASCII letters and symbols mixed).
        #[test]
        fn token_classes_on_bytes_are_the_chars(t in "[a-zA-Z09#.,!\\-_()\u{1c}\u{7f}é日€…·]{0,8}") {
            let (n, word, alpha) = token_class_chars(&t);
            proptest::prop_assert_eq!(token_class(&t), (n, word, alpha, tokenize::sentence_role(&t)));
        }

    }

    #[test]
    fn c4_sentences_are_the_same_with_or_without_reused_tokens() {
        // \x1c breaks lines but not words: each kept line is then tokenized on its own, which
        // must count what the reuse of the whole text's tokens counts without it.
        let text = format!("{PROSE}\nA second line here. And more text [1] here.\n{PROSE}");
        let plain = compute(&text);
        let separated = compute(&text.replace('\n', "\n\x1c"));
        assert!(plain.sentences >= 10, "{plain:?}");
        assert_eq!(plain.sentences, separated.sentences);
    }

    #[test]
    fn repeated_lines_fail_repetition() {
        let text = "buy cheap watches now\n".repeat(40);
        let s = compute(&text);
        assert!(s.dup_line_frac > 0.9, "{s:?}");
        assert!(!s.passes_gopher_repetition());
        assert!(!s.passes_fineweb());
    }

    #[test]
    fn dot_runs_count_like_str_matches() {
        for text in [
            "",
            ".",
            "..",
            "...",
            "....",
            "......",
            "a...b.c..d....",
            ". .. ... ....",
        ] {
            assert_eq!(
                count_dot_runs(text.as_bytes()),
                text.matches("...").count(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn citations_are_removed() {
        assert_eq!(
            remove_citations("Fact.[12] More[edit] x[citation needed]"),
            "Fact. More x"
        );
        assert_eq!(remove_citations("a[b]"), "a[b]");
    }

    #[test]
    fn navigation_runs_and_prose_lines() {
        let page = format!("Home\nNews\nSport\n{PROSE}\nShare this\nFacebook\nEmail\n");
        let s = compute(&page);
        // 6 of 7 lines are in runs (3 + 3), the prose paragraph is the one prose line.
        assert!((s.nav_run_line_frac - 6.0 / 7.0).abs() < 1e-12, "{s:?}");
        let nav_chars = "HomeNewsSportShare thisFacebookEmail".chars().count() as f64;
        assert_eq!(s.nav_run_chars, nav_chars as u64);
        let all = nav_chars + PROSE.chars().count() as f64;
        assert!(
            (s.nav_run_char_frac - nav_chars / all).abs() < 1e-12,
            "{s:?}"
        );
        assert!((s.prose_line_char_frac - PROSE.chars().count() as f64 / all).abs() < 1e-12);
        // A lone heading is not a run, nor two headings of empty sections; neither are code,
        // LaTeX or lower-case lines.
        let s = compute(&format!("Introduction\n{PROSE}\nResults\n{PROSE}"));
        assert_eq!(s.nav_run_line_frac, 0.0, "{s:?}");
        let s = compute(&format!("{PROSE}\nReferences\nExternal links"));
        assert_eq!(s.nav_run_line_frac, 0.0, "{s:?}");
        let s =
            compute("fn main() {\n}\n\\section{Intro}\n\\label{x}\nelse\nend\nReturn x;\nItems:\n");
        assert_eq!(s.nav_run_line_frac, 0.0, "{s:?}");
        // Sentence-final punctuation (also before a closing quote) ends a navigation run.
        let s = compute("Got a tip?\nRead this\nSee it\nSee \"Below.\"\nOne\nTwo\nThree");
        assert!((s.nav_run_line_frac - 3.0 / 7.0).abs() < 1e-12, "{s:?}");
    }

    proptest::proptest! {
        /// A word's key is in the key list exactly when the word is a function word, ignoring
        /// ASCII case.
        #[test]
        fn function_word_keys_are_the_words(w in "(?i)(the|of|and|to|that|their|th|thé|[a-zé]{0,5})") {
            let by_key = ascii_lower_key(w.as_bytes()).is_some_and(|k| FUNCTION_WORD_KEYS.contains(&k));
            let by_name = ENGLISH_FUNCTION_WORDS.iter().any(|e| w.eq_ignore_ascii_case(e));
            proptest::prop_assert_eq!(by_key, by_name, "{}", w);
        }
    }

    proptest::proptest! {
        /// The byte path of an ASCII prefix counts the words and hits the char split does.
        #[test]
        fn plainly_english_on_bytes_is_the_char_split(
            words in proptest::collection::vec("(the|of|and|to|in|a|is|that|it|was|x9|Cat|é|日|[a-z]{1,7})", 0..40),
            sep in "[ ,.9\n-]{1,2}",
        ) {
            let text = words.join(&sep);
            let (mut n, mut hits) = (0usize, 0usize);
            for w in text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()) {
                n += 1;
                if w.len() <= 5
                    && ascii_lower_key(w.as_bytes()).is_some_and(|k| FUNCTION_WORD_KEYS.contains(&k))
                {
                    hits += 1;
                }
            }
            let expected =
                n >= ENGLISH_CHECK_MIN_WORDS && hits as f64 >= ENGLISH_FUNCTION_SHARE * n as f64;
            proptest::prop_assert_eq!(plainly_english(&text, text.is_ascii()), expected);
        }
    }

    #[test]
    fn plainly_english_needs_function_words_and_length() {
        assert!(plainly_english(PROSE, true));
        assert!(
            !plainly_english("The end of the story.", true),
            "too few words"
        );
        let german = "Der Ausschuss hat am Dienstag den Vorschlag geprüft und beschlossen, \
            dass der Plan vor der Abstimmung sorgfältig überarbeitet werden muss, weil das Budget \
            für die beschriebene Arbeit zu klein ist und der Zeitplan wenig Zeit lässt.";
        assert!(!plainly_english(german, german.is_ascii()));
        assert_eq!(compute(german).language, Some("deu"));
        let s = compute(PROSE);
        assert_eq!((s.language, s.language_confidence), (Some("eng"), 1.0));
    }

    #[test]
    fn ngram_pruning_matches_counting_every_position() {
        // Top n-grams and duplicated n-grams of texts with and without repeats, against a direct
        // count over all positions.
        let texts = [
            PROSE.to_string(),
            "a b c a b d a b c a b c x y z x y z x y z".to_string(),
            "one two three four five six seven one two three four five six seven".to_string(),
            "w1 w2 w3".to_string(),
            "solo".to_string(),
            format!("{PROSE} {PROSE} tail words here"),
        ];
        for text in &texts {
            let s = compute(text);
            let mut tokens = Vec::new();
            tokenize::words(text, &mut tokens);
            let chars = text.chars().count() as f64;
            for (slot, len) in (2..=4).enumerate() {
                if tokens.len() < len {
                    assert_eq!(s.top_ngram_char_frac[slot], 0.0);
                    continue;
                }
                let grams: Vec<&[&str]> = tokens.windows(len).collect();
                let mut best = (0usize, 0usize);
                for (i, g) in grams.iter().enumerate() {
                    let count = grams.iter().filter(|h| *h == g).count();
                    if count > best.0 {
                        best = (count, i);
                    }
                }
                let top_chars: usize = grams[best.1]
                    .iter()
                    .map(|w| w.chars().count())
                    .sum::<usize>()
                    + len
                    - 1;
                let expected = (top_chars * best.0) as f64 / chars;
                assert!(
                    (s.top_ngram_char_frac[slot] - expected).abs() < 1e-12,
                    "{text:?} len {len}: {} vs {expected}",
                    s.top_ngram_char_frac[slot]
                );
            }
        }
    }

    #[test]
    fn duplicated_ngrams_are_counted_greedily() {
        let text = "alpha beta gamma delta epsilon zeta alpha beta gamma delta epsilon zeta";
        let s = compute(text);
        // The second "alpha .. epsilon" repeats the first: 5 words, 26 characters of 71.
        assert!(
            (s.dup_ngram_char_frac[0] - 26.0 / 71.0).abs() < 1e-12,
            "{:?}",
            s.dup_ngram_char_frac
        );
    }
}
