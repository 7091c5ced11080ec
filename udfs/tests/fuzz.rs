//! Property fuzzing of the kernels every SQL function feeds user data to: arbitrary text
//! (any Unicode, control characters, huge repetition) and arbitrary numbers (NaN, infinities,
//! subnormals, wrong lengths) must give a value or an error, never a panic or an out-of-range
//! result.
//!
//! CI runs the default number of cases; a long run is
//! `PROPTEST_CASES=200000 cargo test --release -p samplemix-udfs --test fuzz`.

use proptest::prelude::*;
use samplemix_udfs::kernels::{
    assign, count_tokens, embed, kmeans_fit, quality_score, signals, Centroids, Encoding,
    KmeansOptions, Metric,
};

/// Text that stresses tokenisers: mixed scripts, punctuation runs, control characters, long
/// repeated lines.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z .,;!?\n\t-]{0,400}",
        "(\\PC{0,20}\n){0,30}",
        ("[a-z]{1,8}", 1usize..200).prop_map(|(w, n)| format!("{w} ").repeat(n)),
        prop::collection::vec(
            prop_oneof![
                Just("•"),
                Just("…"),
                Just("{"),
                Just("漢字"),
                Just("\u{0}"),
                Just("\r\n")
            ],
            0..100
        )
        .prop_map(|v| v.concat()),
    ]
}

fn float() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>(),
        -10.0f32..10.0,
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::MIN_POSITIVE / 2.0),
        Just(0.0f32),
    ]
}

proptest! {
    #[test]
    fn text_kernels_never_panic_and_stay_in_range(t in text()) {
        let q = quality_score(&t);
        prop_assert!((0.0..=10.0).contains(&q), "score {q}");
        let s = signals(&t);
        prop_assert!(s.words as usize <= t.len() + 1);
        let e = embed(&t, 16);
        let norm: f32 = e.iter().map(|v| v * v).sum::<f32>().sqrt();
        prop_assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        let tokens = count_tokens(&t, Encoding::O200kBase);
        prop_assert!(tokens <= t.len() + 1);
    }

    #[test]
    fn centroid_validation_rejects_instead_of_panicking(
        values in prop::collection::vec(float(), 0..40),
        dim in 0usize..6,
        ids in prop::collection::vec(-3i32..5, 0..8),
    ) {
        if let Ok(c) = Centroids::new(values.clone(), dim, Metric::L2, ids.clone()) {
            // Accepted only when consistent and finite.
            prop_assert!(dim > 0 && values.len() == dim * ids.len());
            prop_assert!(values.iter().all(|v| v.is_finite()));
            // Rows of ordinary values, and one of huge ones (its products overflow f32).
            let mut x: Vec<f32> = (0..dim * 2).map(|i| i as f32 * 0.5).collect();
            x.extend(std::iter::repeat_n(3e30f32, dim));
            let (labels, d) = assign(&x, &c, 1);
            prop_assert_eq!(labels.len(), 3);
            prop_assert!(d.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
    }

    #[test]
    fn kmeans_fits_or_errors(
        values in prop::collection::vec(-1e6f32..1e6, 0..120),
        dim in 1usize..5,
        k in 0usize..8,
        seed in any::<u64>(),
    ) {
        let n = values.len() / dim;
        let data = values[..n * dim].to_vec();
        let opts = KmeansOptions { k, max_iter: 5, seed, metric: Metric::L2, threads: 1 };
        match kmeans_fit(data, dim, opts, |_| {}) {
            Ok(f) => {
                prop_assert!(k >= 1 && k <= n);
                prop_assert_eq!(f.centroids.len(), k * dim);
                prop_assert!(f.centroids.iter().all(|v| v.is_finite()));
            }
            Err(_) => prop_assert!(k == 0 || k > n),
        }
    }
}

// The parsers of strings users (or plans) hand to the functions: options strings and the
// packed per-cluster tables. Any text gives a value or an error, never a panic; valid inputs
// round-trip.
mod parsing {
    use proptest::prelude::*;
    use samplemix_udfs::fuzzing::{figures_table, options, pack_figures, weights_options};

    /// Option-like text: keys, values, separators and noise.
    fn option_text() -> impl Strategy<Value = String> {
        let item = prop_oneof![
            Just("rounding".to_string()),
            Just("max_copies".to_string()),
            Just("min_cluster_size".to_string()),
            "[a-zA-Z_ ]{0,12}",
        ];
        let value = prop_oneof![
            "-?[0-9]{0,20}",
            Just("systematic".to_string()),
            Just("independent".to_string()),
            "\\PC{0,8}",
        ];
        prop::collection::vec(
            (
                item,
                prop_oneof![Just("="), Just("=="), Just(""), Just(" = ")],
                value,
            ),
            0..6,
        )
        .prop_map(|items| {
            items
                .into_iter()
                .map(|(k, eq, v)| format!("{k}{eq}{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    proptest! {
        #[test]
        fn options_strings_parse_or_err(text in prop_oneof![option_text(), any::<String>()]) {
            match weights_options(&text) {
                Ok(_) => {}
                Err(e) => prop_assert!(e.to_string().contains("samplemix_weights: argument 'options"), "{e}"),
            }
            let keys = ["a", "b"];
            if let Ok(items) = options(&text, &keys) {
                for (i, (k, _)) in items.iter().enumerate() {
                    prop_assert!(keys.contains(&k.as_str()));
                    prop_assert!(items[..i].iter().all(|(j, _)| j != k), "repeated key {k}");
                }
            }
        }

        #[test]
        fn valid_options_round_trip(a in proptest::option::of("[0-9a-z]{1,6}"), b in proptest::option::of("[0-9a-z]{1,6}")) {
            let mut items = Vec::new();
            if let Some(a) = &a { items.push(format!(" A = {a} ")); }
            if let Some(b) = &b { items.push(format!("b={b}")); }
            let parsed = options(&items.join(","), &["a", "b"]).unwrap();
            let want: Vec<(String, String)> = a.map(|v| ("a".to_string(), v)).into_iter()
                .chain(b.map(|v| ("b".to_string(), v))).collect();
            prop_assert_eq!(parsed, want);
        }

        #[test]
        fn packed_tables_unpack_or_err(text in prop_oneof!["[A-Za-z0-9+/=]{0,200}", any::<String>()], width in 0usize..8) {
            let _ = figures_table(&text, width);
        }

        #[test]
        fn packed_tables_round_trip(rows in prop::collection::vec(prop::collection::vec(any::<f64>(), 3), 0..40)) {
            let ids: Vec<i64> = (0..rows.len() as i64).map(|i| i * 7 - 100).collect();
            let text = pack_figures(&ids, &rows);
            prop_assert_eq!(figures_table(&text, 3), Ok(rows.len()));
            prop_assert!(figures_table(&text, 2).is_err() || rows.is_empty());
        }
    }
}
