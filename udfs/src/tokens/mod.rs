//! Token counting with OpenAI's BPE vocabularies (tiktoken-rs embeds them: works offline).

use tiktoken_rs::CoreBPE;

use crate::args::{choice_traits, Choice};

pub mod udf;

/// A BPE vocabulary `token_count` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// GPT-4o / o-series vocabulary (the default).
    #[default]
    O200kBase,
    /// GPT-4 / GPT-3.5 vocabulary.
    Cl100kBase,
}

impl Choice for Encoding {
    const WHAT: &'static str = "encoding";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("o200k_base", Encoding::O200kBase),
        ("cl100k_base", Encoding::Cl100kBase),
    ];
}
choice_traits!(Encoding);

impl Encoding {
    fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }
}

/// Number of tokens in `text`. Special-token strings such as `<|endoftext|>` count as ordinary
/// text, because corpus documents are data, not prompts (same as Python's `encode_ordinary`).
pub fn count_tokens(text: &str, encoding: Encoding) -> usize {
    encoding.bpe().encode_ordinary(text).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_tiktoken_reference_values() {
        // Reference values from Python tiktoken 0.12 `encode_ordinary`.
        assert_eq!(count_tokens("hello world", Encoding::O200kBase), 2);
        assert_eq!(count_tokens("hello world", Encoding::Cl100kBase), 2);
        assert_eq!(count_tokens("", Encoding::O200kBase), 0);
        assert_eq!(count_tokens("<|endoftext|>", Encoding::Cl100kBase), 7);
    }

    #[test]
    fn encoding_names_round_trip_and_unknown_is_listed() {
        for (name, _) in Encoding::NAMES {
            assert_eq!(name.parse::<Encoding>().unwrap().to_string(), *name);
        }
        let err = "gpt2".parse::<Encoding>().unwrap_err().to_string();
        assert!(
            err.contains("o200k_base") && err.contains("cl100k_base"),
            "{err}"
        );
    }
}
