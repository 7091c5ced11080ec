//! Property fuzzing of the shell's `--var` substitution and statement splitting: any script
//! text gives text or a clear error, never a panic, and the documented rules hold. A long run:
//! `PROPTEST_CASES=1000000 cargo test --release --test fuzz_vars`.

use proptest::prelude::*;
use samplemix::script::{split_statements, substitute};

/// Script-like text with placeholders, escapes, quotes and comments.
fn script() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("${a}".to_string()),
            Just("${b_1}".to_string()),
            Just("$${a}".to_string()),
            Just("${".to_string()),
            Just("$".to_string()),
            Just("'".to_string()),
            Just(";".to_string()),
            Just("--".to_string()),
            Just("\n".to_string()),
            "[a-z ]{0,6}",
            "\\PC{0,4}",
        ],
        0..30,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn substitution_never_panics_and_follows_its_rules(text in prop_oneof![script(), any::<String>()], value in "[a-z0-9/:.]{0,10}") {
        // Without --var the text is kept, but for the escape (and `${NAME:-DEFAULT}`, which
        // is always filled: tested in src/script.rs).
        let kept = substitute(&text, &[]).unwrap();
        if !text.contains(":-") {
            prop_assert_eq!(kept, text.replace("$${", "${"));
        }
        let vars = vec![("a".to_string(), value.clone()), ("b_1".to_string(), "B".to_string())];
        match substitute(&text, &vars) {
            Ok(out) => {
                // Every placeholder that --var sets is gone unless it came from an escape.
                let placeholder = "${a}";
                let escapes = text.matches("$${a}").count();
                let left = out.matches(placeholder).count();
                prop_assert!(left <= escapes, "{left} placeholders left, {escapes} escaped: {out}");
            }
            Err(e) => prop_assert!(e.to_string().contains("which no --var"), "{e}"),
        }
        for statement in split_statements(&text) {
            prop_assert!(!statement.trim().is_empty());
        }
    }
}
