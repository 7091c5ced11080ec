//! A static model in Model2Vec's format: `model.safetensors` holds `embeddings` (one row per
//! token, or per `mapping` entry), optional per-token `weights`; a text's vector is the mean of
//! its tokens' rows. The steps follow the `model2vec` package's `encode` so that its vectors
//! and ours agree: the text is cut to `max_length` × the median token length characters,
//! tokenised without special tokens, truncated to `max_length` tokens, unknown tokens dropped.

use candle_core::safetensors::SliceSafetensors;
use candle_core::{DType, Device, Tensor};

use super::wordpiece::FastWordPiece;
use super::{normalise, tokenizer, ModelFiles};

/// Model2Vec's default `max_length` (tokens) when the config does not set one.
const DEFAULT_MAX_LENGTH: usize = 512;

/// A loaded static model.
pub struct StaticModel {
    tokenizer: tokenizers::Tokenizer,
    vectors: Vec<f32>,
    dim: usize,
    rows: usize,
    weights: Option<Vec<f32>>,
    mapping: Option<Vec<usize>>,
    unknown: Option<u32>,
    max_chars: Option<usize>,
    max_tokens: usize,
    fast: Option<FastWordPiece>,
}

/// Whether `weights` (safetensors bytes) hold an `embeddings` tensor.
pub(super) fn has_embeddings_tensor(weights: &[u8]) -> bool {
    SliceSafetensors::new(weights).is_ok_and(|st| st.get("embeddings").is_ok())
}

fn tensor(weights: &[u8], name: &str) -> Result<Option<Tensor>, String> {
    let st = SliceSafetensors::new(weights)
        .map_err(|e| format!("model.safetensors cannot be read: {e}"))?;
    if st.get(name).is_err() {
        return Ok(None);
    }
    st.load(name, &Device::Cpu)
        .map(Some)
        .map_err(|e| format!("model.safetensors: tensor '{name}': {e}"))
}

/// A tensor's values as f32, flattened.
fn floats(t: &Tensor, name: &str) -> Result<Vec<f32>, String> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| format!("model.safetensors: '{name}': {e}"))
}

impl StaticModel {
    /// Load from a model directory's files and its parsed `config.json`.
    pub fn load(files: &ModelFiles, config: &serde_json::Value) -> Result<Self, String> {
        let weights_file = files.require("model.safetensors")?;
        let embeddings = tensor(weights_file, "embeddings")?.ok_or(
            "model.safetensors has no 'embeddings' tensor (a Model2Vec static model has one)",
        )?;
        let (rows, dim) = embeddings.dims2().map_err(|_| {
            format!(
                "model.safetensors: 'embeddings' must be a matrix (tokens x dim), has shape {:?}",
                embeddings.dims()
            )
        })?;
        if rows == 0 || dim == 0 {
            return Err("model.safetensors: 'embeddings' is empty".into());
        }
        let vectors = floats(&embeddings, "embeddings")?;
        let weights = tensor(weights_file, "weights")?
            .map(|w| floats(&w, "weights"))
            .transpose()?;
        let mapping = match tensor(weights_file, "mapping")? {
            None => None,
            Some(m) => Some(
                m.to_dtype(DType::I64)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<i64>())
                    .map_err(|e| format!("model.safetensors: 'mapping': {e}"))?
                    .into_iter()
                    .map(|i| usize::try_from(i).ok().filter(|&i| i < rows))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or("model.safetensors: 'mapping' points outside 'embeddings'")?,
            ),
        };
        let mut tokenizer = tokenizer(files)?;
        let vocab = tokenizer.get_vocab(true);
        let tokens = vocab.len();
        let covered = mapping.as_ref().map_or(rows, Vec::len);
        if tokens != covered {
            return Err(format!(
                "tokenizer.json does not match model.safetensors: the tokenizer has {tokens} tokens, the model {covered} vectors"
            ));
        }
        if let Some(w) = &weights {
            if w.len() != covered {
                return Err(format!(
                    "model.safetensors: 'weights' has {} entries for {covered} tokens",
                    w.len()
                ));
            }
        }
        let max_length = match config.get("max_length") {
            None => Some(DEFAULT_MAX_LENGTH),
            Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|&n| n > 0)
                    .ok_or("config.json: max_length must be a positive integer or null")?
                    as usize,
            ),
        };
        let mut lengths: Vec<usize> = vocab.keys().map(|t| t.chars().count()).collect();
        lengths.sort_unstable();
        // numpy's median (mean of the middle two), then int(): what model2vec cuts texts by.
        let median = if lengths.len() % 2 == 1 {
            lengths[lengths.len() / 2]
        } else {
            (lengths[lengths.len() / 2 - 1] + lengths[lengths.len() / 2]) / 2
        };
        if let Some(max_length) = max_length {
            tokenizer
                .with_truncation(Some(tokenizers::TruncationParams {
                    max_length,
                    ..Default::default()
                }))
                .map_err(|e| format!("tokenizer.json: {e}"))?;
        }
        let unknown = unknown_id(&tokenizer);
        let fast = serde_json::from_slice(files.require("tokenizer.json")?)
            .ok()
            .and_then(|json| FastWordPiece::from_json(&json));
        Ok(Self {
            tokenizer,
            vectors,
            dim,
            rows,
            weights,
            mapping,
            unknown,
            max_chars: max_length.map(|m| m * median),
            max_tokens: max_length.unwrap_or(usize::MAX),
            fast,
        })
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows of the embedding matrix.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The L2-normalised mean of the text's token vectors (1/√d for a text without tokens).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        let ids = self.tokenize(text)?;
        let mut sum = vec![0.0f32; self.dim];
        for &id in &ids {
            if Some(id) == self.unknown {
                continue;
            }
            let id = id as usize;
            let row = match &self.mapping {
                Some(m) => m[id],
                None => id,
            };
            let w = self.weights.as_ref().map_or(1.0, |w| w[id]);
            let v = &self.vectors[row * self.dim..(row + 1) * self.dim];
            for (s, x) in sum.iter_mut().zip(v) {
                *s += w * x;
            }
        }
        normalise(&mut sum);
        Ok(sum)
    }
}

impl StaticModel {
    /// The token ids of `text` (cut and truncated as `embed` does), before unknown tokens are
    /// dropped: the BERT fast path when the tokenizer allows it, else `tokenizers`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, String> {
        let text = self.cut(text);
        let Some(fast) = &self.fast else {
            return self.slow(text);
        };
        let mut ids = Vec::new();
        let mut failed = None;
        fast.tokenize(text, self.max_tokens, &mut ids, |chunk, ids| {
            match self.slow(chunk) {
                Ok(more) => ids.extend(more),
                Err(e) => failed = Some(e),
            }
        });
        failed.map_or(Ok(ids), Err)
    }

    /// `tokenizers`' ids of `text`.
    pub fn tokenize_reference(&self, text: &str) -> Result<Vec<u32>, String> {
        self.slow(self.cut(text))
    }

    /// Model2Vec's cut: at most `max_length` × the median token length characters.
    fn cut<'a>(&self, text: &'a str) -> &'a str {
        match self.max_chars {
            Some(m) => text.char_indices().nth(m).map_or(text, |(i, _)| &text[..i]),
            None => text,
        }
    }

    fn slow(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("tokenizer: {e}"))
    }
}

/// The id of the tokenizer model's unknown token, if it has one.
fn unknown_id(tokenizer: &tokenizers::Tokenizer) -> Option<u32> {
    let model = serde_json::to_value(tokenizer.get_model()).ok()?;
    let token = model.get("unk_token").and_then(|t| t.as_str());
    match token {
        Some(t) => tokenizer.token_to_id(t),
        None => model
            .get("unk_id")
            .and_then(|i| i.as_u64())
            .and_then(|i| u32::try_from(i).ok()),
    }
}
