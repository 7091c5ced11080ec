//! quality_score means something: generated junk ranks below real prose (ROC AUC), and odd
//! input never panics.

mod common;

use common::{context, f64s, sql};

/// Deterministic junk of six kinds.
fn junk(count: usize) -> Vec<String> {
    let mut state = 7u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    let words = [
        "home", "about", "contact", "login", "cart", "shop", "news", "blog", "faq", "help", "sale",
        "deals", "privacy", "terms", "sitemap",
    ];
    let spam = [
        "cheap", "watches", "buy", "best", "price", "discount", "replica", "online", "free",
        "shipping",
    ];
    let mut out = Vec::new();
    for i in 0..count {
        let doc = match i % 6 {
            // Navigation menus and link lists.
            0 => (0..40)
                .map(|_| {
                    format!(
                        "{} | {}",
                        words[next(words.len())],
                        words[next(words.len())]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            // Cookie banners and policy boilerplate.
            1 => (0..8)
                .map(|_| {
                    [
                        "This site uses cookies to improve your experience.",
                        "By continuing you accept our privacy policy and terms of use.",
                        "Accept all cookies",
                        "Manage cookie settings",
                        "Read our cookie policy",
                    ][next(5)]
                })
                .collect::<Vec<_>>()
                .join("\n"),
            // Keyword spam.
            2 => (0..150)
                .map(|_| spam[next(spam.len())])
                .collect::<Vec<_>>()
                .join(" "),
            // Repeated lines.
            3 => format!(
                "{}\n",
                [
                    "Click here to subscribe now!",
                    "Limited offer, act fast!",
                    "Best deals of the year!"
                ][next(3)]
            )
            .repeat(30),
            // Random characters.
            4 => (0..800)
                .map(|_| {
                    let c = b"abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*()_+=-"[next(50)] as char;
                    if next(9) == 0 {
                        ' '
                    } else {
                        c
                    }
                })
                .collect(),
            // Code-like noise.
            _ => (0..40)
                .map(|_| {
                    format!(
                        "var x{} = fn_{}({{ k{}: {} }}); // {}",
                        next(99),
                        next(99),
                        next(9),
                        next(999),
                        next(9999)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
        };
        out.push(doc);
    }
    out
}

fn auc(positive: &[f64], negative: &[f64]) -> f64 {
    let mut wins = 0.0;
    for p in positive {
        for n in negative {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (positive.len() * negative.len()) as f64
}

#[tokio::test]
async fn junk_ranks_below_real_prose() {
    let ctx = context(2).await;
    // Real prose: every non-code document of the shipped sample.
    let real = f64s(
        &sql(&ctx, &["SELECT quality_score(text) AS q FROM 'data/sample.parquet' WHERE domain <> 'GitHub'"]).await,
        "q",
    );
    let junk: Vec<f64> = junk(300)
        .iter()
        .map(|t| samplemix_udfs::kernels::quality_score(t))
        .collect();
    let score = auc(&real, &junk);
    println!(
        "ROC AUC real prose vs junk: {score:.4} ({} real, {} junk)",
        real.len(),
        junk.len()
    );
    assert!(score >= 0.95, "AUC {score}");
}

#[test]
fn odd_inputs_do_not_panic_and_stay_in_range() {
    let big = "The quick brown fox jumps over the lazy dog. ".repeat(10 * 1024 * 1024 / 45);
    let binaryish: String = (0..50_000u32)
        .map(|i| char::from_u32((i * 7919) % 0xD7FF).unwrap_or('?'))
        .collect();
    let cases = [
        big.as_str(),
        binaryish.as_str(),
        "🎉🔥😀🎉🔥😀🎉🔥😀 🎉🔥😀",
        "日本語のテキストは単語の間にスペースを入れません。これは二つ目の文です。",
        "שלום עולם, זהו טקסט בעברית שנכתב מימין לשמאל. مرحبا بالعالم",
        "\n\n\n\n\n\n\n\n",
        "\r\n\r\n\u{2028}\u{2029}\u{85}",
        "\0\0\0\u{1}\u{2}",
        "...",
        "",
    ];
    for text in cases {
        let s = samplemix_udfs::kernels::signals(text);
        let q = samplemix_udfs::kernels::score(&s);
        assert!(
            (0.0..=10.0).contains(&q),
            "score {q} for {:?}",
            &text[..text.len().min(40)]
        );
    }
}

mod properties {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn any_utf8_gives_finite_signals_and_a_score_in_range(text in "\\PC{0,400}") {
            let s = samplemix_udfs::kernels::signals(&text);
            let q = samplemix_udfs::kernels::score(&s);
            prop_assert!((0.0..=10.0).contains(&q));
            for v in [s.mean_word_length, s.hash_ratio, s.alpha_words_ratio, s.dup_line_frac, s.line_punct_ratio, s.newline_ratio] {
                prop_assert!(v.is_finite());
            }
        }

        #[test]
        fn any_bytes_lossily_decoded(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = String::from_utf8_lossy(&bytes);
            let q = samplemix_udfs::kernels::quality_score(&text);
            prop_assert!((0.0..=10.0).contains(&q));
            let e = samplemix_udfs::kernels::embed(&text, 32);
            prop_assert!(e.iter().all(|v| v.is_finite()));
        }
    }
}
