//! datatrove 0.10.1's default thresholds: the one home of the numbers that both the pass/fail
//! rules (`Signals::passes_*`) and the score's penalties (`score::penalties`, where each is
//! the point at which a penalty reaches 0.5) are built on.

/// Gopher quality: words per document.
pub const MIN_WORDS: u64 = 50;
/// Gopher quality: words per document.
pub const MAX_WORDS: u64 = 100_000;
/// Gopher quality: mean word length in characters.
pub const MIN_MEAN_WORD_LENGTH: f64 = 3.0;
/// Gopher quality: mean word length in characters.
pub const MAX_MEAN_WORD_LENGTH: f64 = 10.0;
/// Gopher quality: `#` per word.
pub const MAX_HASH_RATIO: f64 = 0.1;
/// Gopher quality: ellipses per word.
pub const MAX_ELLIPSIS_RATIO: f64 = 0.1;
/// Gopher quality: fraction of lines starting with a bullet.
pub const MAX_BULLET_LINES_RATIO: f64 = 0.9;
/// Gopher quality: fraction of lines ending in an ellipsis.
pub const MAX_ELLIPSIS_LINES_RATIO: f64 = 0.3;
/// Gopher quality: fraction of words with a letter.
pub const MIN_ALPHA_WORDS_RATIO: f64 = 0.8;
/// Gopher quality: distinct stop words present.
pub const MIN_STOP_WORDS: u64 = 2;

/// Gopher repetition: fraction of duplicated paragraphs.
pub const MAX_DUP_PARA_FRAC: f64 = 0.3;
/// Gopher repetition: fraction of characters in duplicated paragraphs.
pub const MAX_DUP_PARA_CHAR_FRAC: f64 = 0.2;
/// Gopher repetition: fraction of duplicated lines.
pub const MAX_DUP_LINE_FRAC: f64 = 0.3;
/// Gopher repetition: fraction of characters in duplicated lines.
pub const MAX_DUP_LINE_CHAR_FRAC: f64 = 0.2;
/// Gopher repetition: character fraction of the most frequent 2-, 3- and 4-gram.
pub const MAX_TOP_NGRAM_CHAR_FRAC: [f64; 3] = [0.20, 0.18, 0.16];
/// Gopher repetition: character fraction of duplicated 5- to 10-grams.
pub const MAX_DUP_NGRAM_CHAR_FRAC: [f64; 6] = [0.15, 0.14, 0.13, 0.12, 0.11, 0.10];

/// C4: sentences in the kept lines.
pub const MIN_C4_SENTENCES: u64 = 5;

/// FineWeb: fraction of lines ending in terminal punctuation.
pub const MIN_LINE_PUNCT_RATIO: f64 = 0.12;
/// FineWeb: fraction of lines of at most 30 characters.
pub const MAX_SHORT_LINE_RATIO: f64 = 0.67;
/// FineWeb: fraction of characters in duplicated lines.
pub const MAX_DUP_LINE_CHAR_RATIO: f64 = 0.01;
/// FineWeb: newlines per word.
pub const MAX_NEWLINE_RATIO: f64 = 0.3;
