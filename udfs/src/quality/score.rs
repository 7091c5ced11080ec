//! Signals -> one continuous quality score in [0, 10].
//!
//! score = 10 · exp(−Σᵢ wᵢ · pᵢ), one penalty pᵢ ≥ 0 per signal:
//! - pᵢ = 0 while the signal is comfortably inside its rule (the "comfortable" anchor);
//! - pᵢ rises linearly to 0.5 at the rule's datatrove threshold and 1 as far past it again;
//! - beyond that pᵢ = 1 + ln(r), so far worse still ranks lower, without one signal swamping all.
//!
//! Boilerplate (navigation runs) has no rule and no comfortable zone: its penalties start at 0.
//!
//! Each pᵢ is non-decreasing in its signal's badness and the score is non-increasing in every
//! pᵢ, so the score is monotone in each signal. A document that clears every rule comfortably
//! and has no navigation run scores exactly 10; one that sits exactly on a single weight-1
//! threshold scores 10·e^−0.5 ≈ 6.1.
//!
//! English-only signals (stop words, C4 sentences ending in ASCII punctuation) are scaled by
//! how sure the language check is that the text is English, so other languages are not sunk by
//! them; mean word length is ignored for scripts written without spaces (Chinese, Japanese,
//! Thai, ...).

use super::signals::Signals;
use super::thresholds::*;

/// Boilerplate penalty = NAV_AMOUNT_WEIGHT · ln(1 + nav_run_chars / NAV_AMOUNT_SCALE) plus
/// NAV_SHARE_WEIGHT · nav_run_char_frac. The amount term grows with every added menu (a share
/// can fall when other text is added with it), the share term keeps a small menu around a long
/// article cheaper than the same menu around a short one. Weights chosen on the scrapinghub half
/// of `benches/quality_web.py`, checked on the readability half (BENCHMARKS.md).
const NAV_AMOUNT_WEIGHT: f64 = 3.0;
/// Characters of navigation runs at which the amount term reaches 3·ln 2 ≈ 2.1.
const NAV_AMOUNT_SCALE: f64 = 100.0;
/// Penalty per unit of `nav_run_char_frac` (a page that is 10% menus by characters loses e^-4
/// from it).
const NAV_SHARE_WEIGHT: f64 = 40.0;

/// A penalty for a "must be at most" rule.
fn above(x: f64, comfortable: f64, threshold: f64) -> f64 {
    ramp((x - comfortable) / (2.0 * (threshold - comfortable)))
}

/// A penalty for a "must be at least" rule.
fn below(x: f64, comfortable: f64, threshold: f64) -> f64 {
    ramp((comfortable - x) / (2.0 * (comfortable - threshold)))
}

fn ramp(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        0.0
    } else if r <= 1.0 {
        r
    } else {
        1.0 + r.ln()
    }
}

/// Weight of English-only signals: 1 for English or unknown language, else 1 − confidence.
fn english_weight(s: &Signals) -> f64 {
    match s.language {
        None | Some("eng") => 1.0,
        Some(_) => 1.0 - s.language_confidence,
    }
}

fn spaceless_script(s: &Signals) -> bool {
    matches!(
        s.language,
        Some("cmn" | "jpn" | "tha" | "khm" | "lao" | "mya")
    )
}

/// Each signal's weighted penalty, named (for explanations and tests).
pub fn penalties(s: &Signals) -> Vec<(&'static str, f64)> {
    let en = english_weight(s);
    let ln = |x: u64| (x as f64 + 1.0).ln();
    let lines = s.lines.max(1) as f64;
    let mut p = vec![
        (
            "words_min",
            below(ln(s.words), 100f64.ln(), (MIN_WORDS as f64).ln()),
        ),
        (
            "words_max",
            above(ln(s.words), 50_000f64.ln(), (MAX_WORDS as f64).ln()),
        ),
        ("hash_ratio", above(s.hash_ratio, 0.02, MAX_HASH_RATIO)),
        (
            "ellipsis_ratio",
            above(s.ellipsis_ratio, 0.02, MAX_ELLIPSIS_RATIO),
        ),
        (
            "bullet_lines_ratio",
            above(s.bullet_lines_ratio, 0.5, MAX_BULLET_LINES_RATIO),
        ),
        (
            "ellipsis_lines_ratio",
            above(s.ellipsis_lines_ratio, 0.1, MAX_ELLIPSIS_LINES_RATIO),
        ),
        (
            "alpha_words_ratio",
            below(s.alpha_words_ratio, 0.84, MIN_ALPHA_WORDS_RATIO),
        ),
        (
            "stop_words",
            en * below(s.stop_words as f64, 4.0, MIN_STOP_WORDS as f64),
        ),
        (
            "dup_line_frac",
            above(s.dup_line_frac, 0.1, MAX_DUP_LINE_FRAC),
        ),
        (
            "dup_para_frac",
            above(s.dup_para_frac, 0.1, MAX_DUP_PARA_FRAC),
        ),
        (
            "dup_line_char_frac",
            above(s.dup_line_char_frac, 0.05, MAX_DUP_LINE_CHAR_FRAC),
        ),
        (
            "dup_para_char_frac",
            above(s.dup_para_char_frac, 0.05, MAX_DUP_PARA_CHAR_FRAC),
        ),
        (
            "c4_sentences",
            0.5 * en * below(ln(s.sentences), 10f64.ln(), (MIN_C4_SENTENCES as f64).ln()),
        ),
        ("c4_lorem_ipsum", if s.lorem_ipsum { 2.0 } else { 0.0 }),
        ("c4_curly_bracket", if s.curly_bracket { 0.5 } else { 0.0 }),
        (
            "c4_javascript_lines",
            0.5 * above(s.javascript_lines as f64 / lines, 0.0, 0.1),
        ),
        (
            "c4_policy_lines",
            above(s.policy_lines as f64 / lines, 0.0, 0.1),
        ),
        (
            "fineweb_line_punct_ratio",
            below(s.line_punct_ratio, 0.3, MIN_LINE_PUNCT_RATIO),
        ),
        (
            "fineweb_short_line_ratio",
            above(s.short_line_ratio, 0.4, MAX_SHORT_LINE_RATIO),
        ),
        // FineWeb drops at 1% duplicated-line characters; real code and forms repeat short
        // lines, so the score's anchors are softer than the pass/fail rule.
        (
            "fineweb_dup_line_char_ratio",
            0.5 * above(s.dup_line_char_ratio, MAX_DUP_LINE_CHAR_RATIO, 0.05),
        ),
        (
            "fineweb_newline_ratio",
            above(s.newline_ratio, 0.15, MAX_NEWLINE_RATIO),
        ),
        // Boilerplate has no rule to sit inside: penalties from 0, so pages that pass every rule
        // still rank by how much of them is menus, buttons and link lists.
        (
            "nav_run_chars",
            NAV_AMOUNT_WEIGHT * (s.nav_run_chars as f64 / NAV_AMOUNT_SCALE).ln_1p(),
        ),
        ("nav_run_char_frac", NAV_SHARE_WEIGHT * s.nav_run_char_frac),
    ];
    if !spaceless_script(s) {
        p.push((
            "mean_word_length_max",
            above(s.mean_word_length, 8.0, MAX_MEAN_WORD_LENGTH),
        ));
        p.push((
            "mean_word_length_min",
            below(s.mean_word_length, 3.5, MIN_MEAN_WORD_LENGTH),
        ));
    }
    const TOP_NAMES: [&str; 3] = ["top_2gram", "top_3gram", "top_4gram"];
    for ((v, t), name) in s
        .top_ngram_char_frac
        .iter()
        .zip(MAX_TOP_NGRAM_CHAR_FRAC)
        .zip(TOP_NAMES)
    {
        p.push((name, 0.5 * above(*v, t / 2.0, t)));
    }
    const DUP_NAMES: [&str; 6] = [
        "dup_5gram",
        "dup_6gram",
        "dup_7gram",
        "dup_8gram",
        "dup_9gram",
        "dup_10gram",
    ];
    for ((v, t), name) in s
        .dup_ngram_char_frac
        .iter()
        .zip(MAX_DUP_NGRAM_CHAR_FRAC)
        .zip(DUP_NAMES)
    {
        p.push((name, 0.3 * above(*v, t / 2.0, t)));
    }
    p
}

/// Whether the language of `s` can change its score: it scales the English-only penalties
/// (stop words, C4 sentences) and drops the mean-word-length ones for scripts without spaces,
/// so it cannot while those penalties are 0 (then every language gives the same sum, bit for
/// bit: the terms it changes are 0 either way).
pub(super) fn language_matters(s: &Signals) -> bool {
    let undetected = Signals {
        language: None,
        language_confidence: 0.0,
        ..s.clone()
    };
    penalties(&undetected).iter().any(|(name, p)| {
        matches!(
            *name,
            "stop_words" | "c4_sentences" | "mean_word_length_max" | "mean_word_length_min"
        ) && *p != 0.0
    })
}

/// The 0-10 quality score of a document's signals.
pub fn score(s: &Signals) -> f64 {
    let total: f64 = penalties(s).iter().map(|(_, p)| p).sum();
    (10.0 * (-total).exp()).clamp(0.0, 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::signals::compute;

    #[test]
    fn ramp_is_monotone_and_continuous() {
        let mut last = 0.0;
        for i in 0..1000 {
            let x = i as f64 / 100.0;
            let v = above(x, 1.0, 2.0);
            assert!(v >= last);
            last = v;
        }
        assert_eq!(above(2.0, 1.0, 2.0), 0.5);
        assert!((below(0.8, 0.84, 0.8) - 0.5).abs() < 1e-9);
        assert!((above(3.0 + 1e-9, 1.0, 2.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn each_signal_worse_never_raises_the_score() {
        let base = compute(
            "The committee met on Tuesday to review the proposal and the plan. It was long.",
        );
        let s0 = score(&base);
        let mut worse = base.clone();
        worse.hash_ratio += 0.5;
        assert!(score(&worse) < s0);
        let mut worse = base.clone();
        worse.policy_lines += 3;
        assert!(score(&worse) < s0);
        let mut worse = base.clone();
        worse.dup_line_frac = 0.9;
        assert!(score(&worse) < s0);
        let mut worse = base.clone();
        worse.nav_run_chars += 1;
        assert!(score(&worse) < s0);
        let mut worse = base.clone();
        worse.nav_run_char_frac += 0.01;
        assert!(score(&worse) < s0);
    }

    #[test]
    fn skipping_the_language_when_it_cannot_matter_gives_the_same_score() {
        let german = "Der Ausschuss hat am Dienstag den Vorschlag geprüft und beschlossen, \
            dass der Plan vor der Abstimmung sorgfältig überarbeitet werden muss.";
        let texts = [
            "The committee met on Tuesday to review the proposal and the plan. It was long.",
            german,
            "fn main() { let x = 1; }",
            "日本語のテキストです。これは長い文章ではありません。",
            "",
        ];
        for text in texts {
            let full = compute(text);
            let lazy = crate::quality::signals::compute_for_score(text);
            assert_eq!(score(&full).to_bits(), score(&lazy).to_bits(), "{text:?}");
            if language_matters(&lazy) {
                assert_eq!(full, lazy, "{text:?}");
            }
        }
        // Short non-English text: the language matters and is detected.
        assert!(language_matters(&compute(german)));
    }

    #[test]
    fn empty_text_is_in_range() {
        let v = score(&compute(""));
        assert!((0.0..=10.0).contains(&v), "{v}");
    }

    /// The penalty `name` for default signals changed by `set` (English, so English-only
    /// penalties count fully).
    fn penalty(name: &str, set: impl Fn(&mut Signals)) -> f64 {
        let mut s = Signals {
            lines: 1,
            ..Signals::default()
        };
        set(&mut s);
        penalties(&s)
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no penalty {name}"))
            .1
    }

    /// README's table of anchors and weights, row by row, against the penalties themselves:
    /// each rule's penalty is 0 at the comfortable anchor and weight / 2 at the threshold.
    /// Changing either the code or the table without the other fails here.
    #[test]
    fn readme_weights_table_matches_the_penalties() {
        let readme = include_str!("../../../README.md");
        type Set = fn(&mut Signals, f64);
        type Check = (&'static str, Set, f64, f64, f64);
        // (README row, [(penalty, setter, comfortable, threshold, weight)])
        let rows: Vec<(&str, Vec<Check>)> = vec![
            (
                "| mean word length | 3.5 → 3 and 8 → 10 | 1 each |",
                vec![
                    (
                        "mean_word_length_min",
                        |s, x| s.mean_word_length = x,
                        3.5,
                        3.0,
                        1.0,
                    ),
                    (
                        "mean_word_length_max",
                        |s, x| s.mean_word_length = x,
                        8.0,
                        10.0,
                        1.0,
                    ),
                ],
            ),
            (
                "| `#` / `...` per word | 0.02 → 0.1 | 1 each |",
                vec![
                    ("hash_ratio", |s, x| s.hash_ratio = x, 0.02, 0.1, 1.0),
                    (
                        "ellipsis_ratio",
                        |s, x| s.ellipsis_ratio = x,
                        0.02,
                        0.1,
                        1.0,
                    ),
                ],
            ),
            (
                "| bullet lines / ellipsis lines | 0.5 → 0.9 / 0.1 → 0.3 | 1 each |",
                vec![
                    (
                        "bullet_lines_ratio",
                        |s, x| s.bullet_lines_ratio = x,
                        0.5,
                        0.9,
                        1.0,
                    ),
                    (
                        "ellipsis_lines_ratio",
                        |s, x| s.ellipsis_lines_ratio = x,
                        0.1,
                        0.3,
                        1.0,
                    ),
                ],
            ),
            (
                "| alphabetic words | 0.84 → 0.8 | 1 |",
                vec![(
                    "alpha_words_ratio",
                    |s, x| s.alpha_words_ratio = x,
                    0.84,
                    0.8,
                    1.0,
                )],
            ),
            (
                "| stop words | 4 → 2 | 1 × English-ness |",
                vec![("stop_words", |s, x| s.stop_words = x as u64, 4.0, 2.0, 1.0)],
            ),
            (
                "| duplicate lines / paragraphs (count) | 0.1 → 0.3 | 1 each |",
                vec![
                    ("dup_line_frac", |s, x| s.dup_line_frac = x, 0.1, 0.3, 1.0),
                    ("dup_para_frac", |s, x| s.dup_para_frac = x, 0.1, 0.3, 1.0),
                ],
            ),
            (
                "| duplicate lines / paragraphs (chars) | 0.05 → 0.2 | 1 each |",
                vec![
                    (
                        "dup_line_char_frac",
                        |s, x| s.dup_line_char_frac = x,
                        0.05,
                        0.2,
                        1.0,
                    ),
                    (
                        "dup_para_char_frac",
                        |s, x| s.dup_para_char_frac = x,
                        0.05,
                        0.2,
                        1.0,
                    ),
                ],
            ),
            (
                "| top 2/3/4-gram | half the threshold → 0.20/0.18/0.16 | 0.5 each |",
                vec![
                    (
                        "top_2gram",
                        |s, x| s.top_ngram_char_frac[0] = x,
                        0.10,
                        0.20,
                        0.5,
                    ),
                    (
                        "top_3gram",
                        |s, x| s.top_ngram_char_frac[1] = x,
                        0.09,
                        0.18,
                        0.5,
                    ),
                    (
                        "top_4gram",
                        |s, x| s.top_ngram_char_frac[2] = x,
                        0.08,
                        0.16,
                        0.5,
                    ),
                ],
            ),
            (
                "| duplicated 5..10-grams | half the threshold → 0.15 .. 0.10 | 0.3 each |",
                vec![
                    (
                        "dup_5gram",
                        |s, x| s.dup_ngram_char_frac[0] = x,
                        0.075,
                        0.15,
                        0.3,
                    ),
                    (
                        "dup_10gram",
                        |s, x| s.dup_ngram_char_frac[5] = x,
                        0.05,
                        0.10,
                        0.3,
                    ),
                ],
            ),
            (
                "| FineWeb line punctuation | 0.3 → 0.12 | 1 |",
                vec![(
                    "fineweb_line_punct_ratio",
                    |s, x| s.line_punct_ratio = x,
                    0.3,
                    0.12,
                    1.0,
                )],
            ),
            (
                "| FineWeb short lines | 0.4 → 0.67 | 1 |",
                vec![(
                    "fineweb_short_line_ratio",
                    |s, x| s.short_line_ratio = x,
                    0.4,
                    0.67,
                    1.0,
                )],
            ),
            (
                "| FineWeb duplicated-line chars | 0.01 → 0.05",
                vec![(
                    "fineweb_dup_line_char_ratio",
                    |s, x| s.dup_line_char_ratio = x,
                    0.01,
                    0.05,
                    0.5,
                )],
            ),
            (
                "| FineWeb newlines per word | 0.15 → 0.3 | 1 |",
                vec![(
                    "fineweb_newline_ratio",
                    |s, x| s.newline_ratio = x,
                    0.15,
                    0.3,
                    1.0,
                )],
            ),
        ];
        for (row, checks) in rows {
            assert!(readme.contains(row), "README's table has no row {row:?}");
            for (name, set, comfortable, threshold, weight) in checks {
                let at = |x: f64| penalty(name, |s| set(s, x));
                assert_eq!(at(comfortable), 0.0, "{name} at its comfortable anchor");
                // Linear in between: a quarter of the weight half way (pins the comfortable
                // anchor, which a check at the anchor alone would not).
                let mid = at((comfortable + threshold) / 2.0);
                assert!((mid - weight / 4.0).abs() < 1e-9, "{name} half way: {mid}");
                let p = at(threshold);
                assert!(
                    (p - weight / 2.0).abs() < 1e-12,
                    "{name} at its threshold: {p}, README says weight {weight}"
                );
            }
        }
        // The rows that are not ramps: log-scale anchors, fixed penalties, boilerplate.
        assert!(readme.contains("| words (log scale) | ≥ 100 → 50; ≤ 50,000 → 100,000 | 1; 1 |"));
        let words = |n: u64| penalty("words_min", |s| s.words = n);
        assert_eq!(words(100), 0.0);
        assert!(((penalty("words_min", |s| s.words = 49) - 0.5).abs()) < 1e-12);
        assert!(readme.contains("| C4 sentences (log scale) | 10 → 5 | 0.5 × English-ness |"));
        assert_eq!(penalty("c4_sentences", |s| s.sentences = 9), 0.0);
        assert!((penalty("c4_sentences", |s| s.sentences = 4) - 0.25).abs() < 1e-12);
        assert!(readme.contains("| lorem ipsum / `{` in a kept line | fixed penalty 2 / 0.5 | 1 |"));
        assert_eq!(penalty("c4_lorem_ipsum", |s| s.lorem_ipsum = true), 2.0);
        assert_eq!(penalty("c4_curly_bracket", |s| s.curly_bracket = true), 0.5);
        assert!(readme.contains("| javascript / policy lines per line | 0 → 0.1 | 0.5 / 1 |"));
        let per_line = |name: &str, set: fn(&mut Signals, u64)| {
            penalty(name, |s| {
                s.lines = 10;
                set(s, 1)
            })
        };
        assert!(
            (per_line("c4_javascript_lines", |s, n| s.javascript_lines = n) - 0.25).abs() < 1e-12
        );
        assert!((per_line("c4_policy_lines", |s, n| s.policy_lines = n) - 0.5).abs() < 1e-12);
        assert!(readme.contains("| none: 3·ln(1 + chars/100), 40·share | 1 |"));
        let nav = penalty("nav_run_chars", |s| s.nav_run_chars = 100);
        assert!((nav - 3.0 * 2f64.ln()).abs() < 1e-12);
        assert!((penalty("nav_run_char_frac", |s| s.nav_run_char_frac = 0.1) - 4.0).abs() < 1e-12);
    }
}
