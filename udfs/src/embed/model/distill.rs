//! `samplemix distill`: a static model (Model2Vec's format) from a sentence-transformers model,
//! by Model2Vec's recipe: every vocabulary token through the transformer as
//! `[CLS] token [SEP]`, mean-pooled; PCA to the asked dimension; each row scaled by a SIF
//! weight from its Zipf frequency estimate (token ids are in frequency order in BERT-family
//! vocabularies). Deterministic: same model, same dimension, same bytes.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::transformer::{Pooling, Transformer};
use super::{pca, ModelFiles};

/// Model2Vec's default SIF coefficient.
pub const SIF_COEFFICIENT: f64 = 1e-4;

/// A distilled static model, ready to write.
pub struct Distilled {
    /// Row-major `rows` x `dim` token vectors.
    pub embeddings: Vec<f32>,
    /// Vocabulary size.
    pub rows: usize,
    /// Vector length.
    pub dim: usize,
    /// Share of the token vectors' variance the PCA kept.
    pub kept_variance: f64,
    config: serde_json::Value,
    tokenizer: serde_json::Value,
}

/// The ids a tokenizer puts before and after a text's own tokens ([CLS] and [SEP] for BERT).
fn special_affixes(t: &Transformer) -> Result<(Vec<u32>, Vec<u32>), String> {
    let probe = "samplemix";
    let enc = |special| {
        t.tokenizer()
            .encode_fast(probe, special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("tokenizer: {e}"))
    };
    let (with, without) = (enc(true)?, enc(false)?);
    let at = with
        .windows(without.len().max(1))
        .position(|w| w == without.as_slice())
        .ok_or("tokenizer: cannot tell its special tokens apart")?;
    Ok((with[..at].to_vec(), with[at + without.len()..].to_vec()))
}

/// Distil `transformer` (loaded from `files`, named `source` in the config) to `dim`
/// dimensions.
pub fn distill(
    transformer: &Transformer,
    files: &ModelFiles,
    source: &str,
    dim: usize,
) -> Result<Distilled, String> {
    let hidden = transformer.dim();
    if dim == 0 || dim > hidden {
        return Err(format!(
            "--dim must be between 1 and the model's hidden size {hidden}, got {dim}"
        ));
    }
    let vocab = transformer.tokenizer().get_vocab(true);
    let rows = vocab.len();
    let mut ids: Vec<u32> = vocab.values().copied().collect();
    ids.sort_unstable();
    if ids.iter().enumerate().any(|(i, &id)| id as usize != i) {
        return Err("the tokenizer's token ids are not 0..n without gaps".into());
    }
    if rows <= dim {
        return Err(format!(
            "--dim {dim} must be below the vocabulary size {rows}"
        ));
    }
    let (prefix, suffix) = special_affixes(transformer)?;
    let sequences: Vec<Option<Vec<u32>>> = ids
        .iter()
        .map(|&id| Some(prefix.iter().chain([&id]).chain(&suffix).copied().collect()))
        .collect();
    let pooled = transformer.pooled_with(&sequences, Pooling::Mean)?;
    let mut flat = Vec::with_capacity(rows * hidden);
    for v in pooled.into_iter().flatten() {
        flat.extend(v.into_iter().map(|x| if x.is_finite() { x } else { 0.0 }));
    }
    let (mut embeddings, kept_variance) = pca::project(&flat, rows, hidden, dim)?;
    let inv_rank_sum: f64 = (0..rows).map(|i| 1.0 / (i as f64 + 2.0)).sum();
    for (i, row) in embeddings.chunks_exact_mut(dim).enumerate() {
        let p = (1.0 / (i as f64 + 2.0)) / inv_rank_sum;
        let w = SIF_COEFFICIENT / (SIF_COEFFICIENT + p);
        row.iter_mut().for_each(|x| *x = (f64::from(*x) * w) as f32);
    }
    let mut tokenizer: serde_json::Value = serde_json::from_slice(files.require("tokenizer.json")?)
        .map_err(|e| format!("tokenizer.json is not valid JSON: {e}"))?;
    // Model2Vec tokenises without padding or a fixed window; the window is its max_length.
    if let Some(t) = tokenizer.as_object_mut() {
        t.insert("padding".into(), serde_json::Value::Null);
        t.insert("truncation".into(), serde_json::Value::Null);
    }
    let config = serde_json::json!({
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": source,
        "apply_pca": dim,
        "sif_coefficient": SIF_COEFFICIENT,
        "hidden_dim": dim,
        "seq_length": 1_000_000,
        "normalize": true,
        "pooling": "mean",
    });
    Ok(Distilled {
        embeddings,
        rows,
        dim,
        kept_variance,
        config,
        tokenizer,
    })
}

impl Distilled {
    /// Write `config.json`, `tokenizer.json` and `model.safetensors` (`embeddings`, f32 or
    /// f16) into `dir`, creating it. Refuses a folder that already holds any of them: nothing
    /// that is there is replaced.
    pub fn write(&self, dir: &Path, f16: bool) -> Result<(), String> {
        let names = ["config.json", "tokenizer.json", "model.safetensors"];
        if let Some(existing) = names.iter().find(|n| dir.join(n).exists()) {
            return Err(format!(
                "{} already exists: distill writes only into a folder without config.json, tokenizer.json or model.safetensors",
                dir.join(existing).display()
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
        let write = |name: &str, bytes: &[u8]| {
            std::fs::write(dir.join(name), bytes)
                .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
        };
        let tensor = Tensor::from_slice(&self.embeddings, (self.rows, self.dim), &Device::Cpu)
            .and_then(|t| t.to_dtype(if f16 { DType::F16 } else { DType::F32 }))
            .map_err(|e| format!("embeddings: {e}"))?;
        let tensors = HashMap::from([("embeddings".to_string(), tensor)]);
        candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))
            .map_err(|e| format!("cannot write model.safetensors: {e}"))?;
        write("tokenizer.json", &pretty(&self.tokenizer))?;
        // The config last: a folder with a config.json is a complete model.
        write("config.json", &pretty(&self.config))?;
        Ok(())
    }
}
