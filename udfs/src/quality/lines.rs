//! The line splits of the rule sets, found from one scan for '\n': Python's `splitlines`
//! (Gopher quality, C4), `re.split(r"\n+")` (Gopher repetition's lines), `re.split(r"\n{2,}")`
//! (its paragraphs) and `split("\n")` (FineWeb).

/// A text and the pieces between its '\n's (`text.split('\n')`), found with memchr.
pub(super) struct Pieces<'a> {
    pub text: &'a str,
    /// `text.split('\n')`: one more piece than newlines.
    pub pieces: Vec<&'a str>,
}

impl<'a> Pieces<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut pieces = Vec::with_capacity(text.len() / 32 + 1);
        let mut start = 0;
        for at in memchr::memchr_iter(b'\n', text.as_bytes()) {
            pieces.push(&text[start..at]);
            start = at + 1;
        }
        pieces.push(&text[start..]);
        Self { text, pieces }
    }

    /// Newlines in the text.
    pub fn newlines(&self) -> usize {
        self.pieces.len() - 1
    }

    /// Python's `str.splitlines()`: the pieces (without a last empty one) when '\n' is the
    /// text's only line break, [`py_splitlines`] otherwise.
    pub fn py_lines(&self) -> Vec<&'a str> {
        if has_other_line_breaks(self.text) {
            return py_splitlines(self.text);
        }
        let mut lines = self.pieces.clone();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }

    /// `re.split(r"\n+", text)`: the first and last pieces, and the non-empty ones between.
    pub fn newline_run_lines(&self) -> impl Iterator<Item = &'a str> + '_ {
        let last = self.pieces.len() - 1;
        self.pieces
            .iter()
            .enumerate()
            .filter(move |(i, p)| *i == 0 || *i == last || !p.is_empty())
            .map(|(_, p)| *p)
    }
}

/// True when `text` has a line break of `splitlines` other than '\n': \r, \x0b, \x0c,
/// \x1c-\x1e, U+0085, U+2028 or U+2029, by memchr and substring search (vectorised).
fn has_other_line_breaks(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr3(b'\r', 0x0b, 0x0c, b).is_some()
        || memchr::memchr3(0x1c, 0x1d, 0x1e, b).is_some()
        || BREAK_FINDERS.iter().any(|f| f.find(b).is_some())
}

/// Searchers for U+0085, U+2028 and U+2029, built once (not per document).
static BREAK_FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 3]> =
    std::sync::LazyLock::new(|| {
        ["\u{85}", "\u{2028}", "\u{2029}"].map(memchr::memmem::Finder::new)
    });

/// Python's `str.splitlines()` (no keepends), found on the bytes: every line break is ASCII
/// (\n, \r, \x0b, \x0c, \x1c-\x1e) or U+0085 (0xC2 0x85), U+2028 / U+2029 (0xE2 0x80 0xA8/0xA9),
/// so no char needs decoding.
pub(super) fn py_splitlines(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        let len = match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => 2,
            b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1e => 1,
            0xc2 if b.get(i + 1) == Some(&0x85) => 2,
            0xe2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xa8 | 0xa9)) => 3,
            _ => 0,
        };
        if len == 0 {
            i += 1;
            continue;
        }
        lines.push(&text[start..i]);
        i += len;
        start = i;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// `str.splitlines()` char by char: the reference [`py_splitlines`] is tested against.
#[cfg(test)]
pub(super) fn py_splitlines_chars(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            lines.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = iter.peek() {
                    iter.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Split on runs of at least `min_run` newlines: `re.split(r"\n{min_run,}", text)`.
pub(super) fn split_newline_runs(text: &str, min_run: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        // The next newline by memchr (`str::find` of an ASCII char), not byte by byte.
        let Some(at) = text[i..].find('\n') else {
            break;
        };
        i += at;
        let mut j = i;
        while j < bytes.len() && bytes[j] == b'\n' {
            j += 1;
        }
        if j - i >= min_run {
            out.push(&text[start..i]);
            start = j;
        }
        i = j;
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_on_bytes_are_splitlines_breaks() {
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let text = format!("a{c}b");
            assert_eq!(py_splitlines(&text), py_splitlines_chars(&text), "{c:?}");
            assert_eq!(
                Pieces::new(&text).py_lines(),
                py_splitlines_chars(&text),
                "{c:?}"
            );
        }
    }

    proptest::proptest! {
        /// Lines found on bytes, or from the pieces, are the char-by-char splitlines' lines.
        #[test]
        fn lines_are_splitlines(text in "[a \r\n\x0b\x0c\x1c-\x1f\u{85}\u{a0}\u{2027}-\u{202a}é]{0,24}") {
            proptest::prop_assert_eq!(py_splitlines(&text), py_splitlines_chars(&text));
            proptest::prop_assert_eq!(Pieces::new(&text).py_lines(), py_splitlines_chars(&text));
        }

        /// The lines between newline runs from the pieces are `re.split(r"\n+")`'s.
        #[test]
        fn run_lines_are_newline_runs(text in "[ab \n]{0,24}") {
            let pieces = Pieces::new(&text);
            let lines: Vec<&str> = pieces.newline_run_lines().collect();
            proptest::prop_assert_eq!(lines, split_newline_runs(&text, 1));
        }
    }

    #[test]
    fn python_line_splitting() {
        assert_eq!(py_splitlines("a\r\nb\rc\n"), vec!["a", "b", "c"]);
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert_eq!(Pieces::new("").py_lines(), Vec::<&str>::new());
        assert_eq!(Pieces::new("a\n\nb\n").py_lines(), vec!["a", "", "b"]);
        assert_eq!(split_newline_runs("\na\n\nb\n", 1), vec!["", "a", "b", ""]);
        assert_eq!(split_newline_runs("a\n\n\nb\nc", 2), vec!["a", "b\nc"]);
    }
}
