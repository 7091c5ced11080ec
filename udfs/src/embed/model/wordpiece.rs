//! A fast path for BERT-style tokenizers (`BertNormalizer` lower-casing, `BertPreTokenizer`,
//! `WordPiece`), for the static model: Hugging Face `tokenizers` keeps per-byte alignments
//! the static model never uses, and spends most of a static embedding's time there.
//!
//! Only whitespace-separated chunks of printable ASCII are handled here (lower-casing and
//! accent stripping are the identity or trivial on them, and every non-alphanumeric printable
//! ASCII character is a BERT punctuation token); any other chunk, and any chunk that could hold
//! an added token, goes to `tokenizers` itself. Tokens never cross whitespace under these
//! rules, so the ids are the same as `tokenizers`' for the whole text (tests compare them on
//! every document of the sample corpus).

use std::collections::HashMap;

/// The ids of a WordPiece vocabulary and its settings.
pub struct FastWordPiece {
    vocab: HashMap<String, u32>,
    unknown: u32,
    prefix: String,
    max_chars: usize,
    /// First characters of the tokenizer's added tokens (lower-cased): a chunk holding one
    /// is left to `tokenizers`.
    added_starts: Vec<u8>,
}

impl FastWordPiece {
    /// The fast path for a tokenizer, when its `tokenizer.json` is a lower-casing BERT
    /// WordPiece one; `None` otherwise.
    pub fn from_json(json: &serde_json::Value) -> Option<Self> {
        let normalizer = json.get("normalizer")?;
        let flag = |k: &str| normalizer.get(k).and_then(|v| v.as_bool());
        let bert_normalizer = normalizer.get("type")?.as_str()? == "BertNormalizer"
            && flag("clean_text") == Some(true)
            && flag("handle_chinese_chars") == Some(true)
            && flag("lowercase") == Some(true)
            && flag("strip_accents") != Some(false);
        let pre = json.get("pre_tokenizer")?.get("type")?.as_str()? == "BertPreTokenizer";
        let model = json.get("model")?;
        if !bert_normalizer || !pre || model.get("type")?.as_str()? != "WordPiece" {
            return None;
        }
        let vocab: HashMap<String, u32> = model
            .get("vocab")?
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
            .collect::<Option<_>>()?;
        let unknown = *vocab.get(model.get("unk_token")?.as_str()?)?;
        let mut added_starts: Vec<u8> = json
            .get("added_tokens")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.get("content")?.as_str()?.bytes().next())
                    .map(|b| b.to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        added_starts.sort_unstable();
        added_starts.dedup();
        Some(Self {
            vocab,
            unknown,
            prefix: model
                .get("continuing_subword_prefix")
                .and_then(|p| p.as_str())
                .unwrap_or("##")
                .to_string(),
            max_chars: model
                .get("max_input_chars_per_word")
                .and_then(|m| m.as_u64())
                .unwrap_or(100) as usize,
            added_starts,
        })
    }

    /// Append the ids of `text` (no special tokens) to `ids`, calling `slow` for the chunks
    /// this path does not handle; stops after `limit` ids.
    pub fn tokenize(
        &self,
        text: &str,
        limit: usize,
        ids: &mut Vec<u32>,
        mut slow: impl FnMut(&str, &mut Vec<u32>),
    ) {
        let mut word = String::new();
        let mut piece = String::new();
        for chunk in text.split([' ', '\t', '\n', '\r']) {
            if ids.len() >= limit {
                break;
            }
            if chunk.is_empty() {
                continue;
            }
            let bytes = chunk.as_bytes();
            let plain = bytes.iter().all(|b| (0x21..=0x7e).contains(b))
                && !bytes
                    .iter()
                    .any(|b| self.added_starts.contains(&b.to_ascii_lowercase()));
            if !plain {
                slow(chunk, ids);
                continue;
            }
            let mut start = 0;
            for (i, &b) in bytes.iter().enumerate() {
                if !b.is_ascii_alphanumeric() {
                    if start < i {
                        self.word(&chunk[start..i], &mut word, &mut piece, ids);
                    }
                    self.word(&chunk[i..i + 1], &mut word, &mut piece, ids);
                    start = i + 1;
                }
            }
            if start < bytes.len() {
                self.word(&chunk[start..], &mut word, &mut piece, ids);
            }
        }
        ids.truncate(limit);
    }

    /// WordPiece's greedy longest-match-first split of one (ASCII) word.
    fn word(&self, raw: &str, word: &mut String, piece: &mut String, ids: &mut Vec<u32>) {
        if raw.len() > self.max_chars {
            ids.push(self.unknown);
            return;
        }
        word.clear();
        word.extend(raw.chars().map(|c| c.to_ascii_lowercase()));
        let before = ids.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(piece.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(before);
                    ids.push(self.unknown);
                    return;
                }
            }
        }
    }
}
