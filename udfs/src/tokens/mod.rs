//! Token counting with OpenAI's BPE vocabularies (tiktoken-rs embeds them: works offline).

use std::fmt;
use std::str::FromStr;

use tiktoken_rs::CoreBPE;

pub mod udf;

/// A BPE vocabulary `token_count` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// GPT-4o / o-series vocabulary (the default).
    #[default]
    O200kBase,
    /// GPT-4 / GPT-3.5 vocabulary.
    Cl100kBase,
}

impl Encoding {
    /// Names accepted in SQL, in the order shown in error messages.
    pub const NAMES: [&'static str; 2] = ["o200k_base", "cl100k_base"];

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }
}

impl FromStr for Encoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "o200k_base" => Ok(Encoding::O200kBase),
            "cl100k_base" => Ok(Encoding::Cl100kBase),
            _ => Err(format!(
                "unknown encoding '{s}'; accepted: {}",
                Encoding::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        })
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
        for name in Encoding::NAMES {
            assert_eq!(name.parse::<Encoding>().unwrap().to_string(), name);
        }
        let err = "gpt2".parse::<Encoding>().unwrap_err();
        assert!(
            err.contains("o200k_base") && err.contains("cl100k_base"),
            "{err}"
        );
    }
}
