//! A sentence-transformers BERT-family model run with candle on the CPU: tokenise with special
//! tokens, truncate to the model's window, encode, pool (mean over all tokens, or the CLS
//! token, as `1_Pooling/config.json` says), L2-normalise.
//!
//! Texts are batched only with texts of the same token count, so no batch is ever padded: a
//! text's vector does not depend on which other texts share its batch (bit-identical for any
//! partitioning), and no attention mask is needed.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::{normalise, tokenizer, ModelFiles};

/// Tokens per forward pass: many short sequences or a few long ones (distillation's
/// 3-token sequences would otherwise pay a pass each for little work).
const BATCH_TOKENS: usize = 4096;

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over every token, [CLS] and [SEP] included (sentence-transformers' mean pooling).
    Mean,
    /// The first token's vector.
    Cls,
}

/// A loaded transformer.
pub struct Transformer {
    model: BertModel,
    tokenizer: tokenizers::Tokenizer,
    pooling: Pooling,
    window: usize,
    dim: usize,
    vocab_size: usize,
    device: Device,
}

fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    Device::Cpu
}

impl Transformer {
    /// Load from a model directory's files and its parsed `config.json`.
    pub fn load(files: &ModelFiles, config: &serde_json::Value) -> Result<Self, String> {
        let config: Config = serde_json::from_value(config.clone())
            .map_err(|e| format!("config.json is not a BERT configuration: {e}"))?;
        let pooling = pooling(files)?;
        let mut tokenizer = tokenizer(files)?;
        let tokens = tokenizer.get_vocab_size(true);
        if tokens > config.vocab_size {
            return Err(format!(
                "tokenizer.json does not match the model: the tokenizer has {tokens} tokens, the model embeds {} (config.json vocab_size)",
                config.vocab_size
            ));
        }
        let window = window(files, &config)?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: window,
                ..Default::default()
            }))
            .map_err(|e| format!("tokenizer.json: {e}"))?;
        let device = device();
        let weights = files.require("model.safetensors")?.to_vec();
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| format!("model.safetensors cannot be read: {e}"))?;
        let model = BertModel::load(vb, &config).map_err(|e| {
            format!("model.safetensors does not hold the BERT weights config.json describes: {e}")
        })?;
        Ok(Self {
            model,
            tokenizer,
            pooling,
            window,
            dim: config.hidden_size,
            vocab_size: config.vocab_size,
            device,
        })
    }

    /// Length of the vectors (the hidden size).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tokens a text is truncated to, [CLS] and [SEP] included.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The pooling the model's configuration asks for.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The tokenizer (padding off, truncation at the window).
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text` with the special tokens, truncated to the window.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, String> {
        let encoding = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| format!("tokenizer: {e}"))?;
        let ids = encoding.get_ids().to_vec();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.vocab_size) {
            return Err(format!(
                "tokenizer.json does not match the model: token id {bad} is outside the model's vocabulary of {}",
                self.vocab_size
            ));
        }
        Ok(ids)
    }

    /// Embed texts: L2-normalised pooled vectors (None stays None).
    pub fn embed(&self, texts: &[Option<&str>]) -> Result<Vec<Option<Vec<f32>>>, String> {
        let ids: Vec<Option<Vec<u32>>> = texts
            .iter()
            .map(|t| t.map(|t| self.tokenize(t)).transpose())
            .collect::<Result<_, _>>()?;
        let pooled = self.pooled(&ids)?;
        Ok(pooled
            .into_iter()
            .map(|v| {
                v.map(|mut v| {
                    normalise(&mut v);
                    v
                })
            })
            .collect())
    }

    /// Pooled (not normalised) vectors of token-id sequences, batched by exact length.
    pub fn pooled(&self, ids: &[Option<Vec<u32>>]) -> Result<Vec<Option<Vec<f32>>>, String> {
        self.pooled_with(ids, self.pooling)
    }

    /// [`Self::pooled`] with the given pooling.
    pub fn pooled_with(
        &self,
        ids: &[Option<Vec<u32>>],
        pooling: Pooling,
    ) -> Result<Vec<Option<Vec<f32>>>, String> {
        let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, s) in ids.iter().enumerate() {
            if let Some(s) = s {
                by_length.entry(s.len()).or_default().push(i);
            }
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; ids.len()];
        for (length, rows) in by_length {
            for chunk in rows.chunks((BATCH_TOKENS / length.max(1)).max(1)) {
                let flat: Vec<u32> = chunk
                    .iter()
                    .flat_map(|&i| ids[i].as_deref().unwrap_or_default().iter().copied())
                    .collect();
                let vectors = self
                    .forward(&flat, chunk.len(), length, pooling)
                    .map_err(|e| format!("model forward pass: {e}"))?;
                for (&i, v) in chunk.iter().zip(vectors) {
                    out[i] = Some(v);
                }
            }
        }
        Ok(out)
    }

    fn forward(
        &self,
        flat: &[u32],
        batch: usize,
        length: usize,
        pooling: Pooling,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let input = Tensor::from_slice(flat, (batch, length), &self.device)?;
        let types = input.zeros_like()?;
        let hidden = self.model.forward(&input, &types, None)?;
        let pooled = match pooling {
            Pooling::Mean => hidden.mean(1)?,
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        };
        pooled.to_dtype(DType::F32)?.to_vec2::<f32>()
    }
}

/// Pooling from `1_Pooling/config.json` (mean when absent, as sentence-transformers does
/// for a bare transformer).
fn pooling(files: &ModelFiles) -> Result<Pooling, String> {
    let Some(config) = files.json("1_Pooling/config.json")? else {
        return Ok(Pooling::Mean);
    };
    let flag = |k: &str| config.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    match (
        flag("pooling_mode_mean_tokens"),
        flag("pooling_mode_cls_token"),
    ) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        _ => Err(
            "1_Pooling/config.json: only mean pooling or CLS pooling (exactly one) is supported"
                .into(),
        ),
    }
}

/// The token window: sentence-transformers' `max_seq_length` when given, else the model's
/// position limit.
fn window(files: &ModelFiles, config: &Config) -> Result<usize, String> {
    let limit = config.max_position_embeddings;
    let asked = match files.json("sentence_bert_config.json")? {
        Some(c) => c.get("max_seq_length").and_then(|v| v.as_u64()),
        None => None,
    };
    Ok(asked.map_or(limit, |a| (a as usize).clamp(2, limit)))
}
