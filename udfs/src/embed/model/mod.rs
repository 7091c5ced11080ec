//! Model embeddings read from a model directory: a sentence-transformers BERT-family model
//! (run with candle) or a static model in Model2Vec's format (a lookup and a mean). Both give
//! L2-normalised vectors; the kind is detected from the files.

use std::collections::BTreeMap;

pub mod distill;
mod pca;
mod static_model;
mod transformer;
mod wordpiece;

pub use static_model::StaticModel;
pub use transformer::{Pooling, Transformer};

/// The files of a model directory this module reads, by name relative to the directory.
pub const MODEL_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "modules.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
];

/// The bytes of a model directory's files (those of [`MODEL_FILES`] that exist).
#[derive(Debug, Default, Clone)]
pub struct ModelFiles(pub BTreeMap<String, Vec<u8>>);

impl ModelFiles {
    /// Read the files of [`MODEL_FILES`] present in a local directory.
    pub fn read_dir(dir: &std::path::Path) -> Result<Self, String> {
        let mut files = BTreeMap::new();
        for name in MODEL_FILES {
            let path = dir.join(name);
            if path.is_file() {
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                files.insert((*name).to_string(), bytes);
            }
        }
        Ok(Self(files))
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(Vec::as_slice)
    }

    fn require(&self, name: &str) -> Result<&[u8], String> {
        self.get(name).ok_or_else(|| {
            format!(
                "{name} is missing: a model directory holds config.json, tokenizer.json and model.safetensors (a sentence-transformers BERT-family model or a Model2Vec static model)"
            )
        })
    }

    fn json(&self, name: &str) -> Result<Option<serde_json::Value>, String> {
        self.get(name)
            .map(|b| {
                serde_json::from_slice(b).map_err(|e| format!("{name} is not valid JSON: {e}"))
            })
            .transpose()
    }
}

/// A model `embed(text, model)` runs.
pub enum EmbeddingModel {
    /// One vector per token, averaged (Model2Vec's format).
    Static(Box<StaticModel>),
    /// A BERT-family encoder with mean or CLS pooling (sentence-transformers' layout).
    Transformer(Box<Transformer>),
}

impl std::fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbeddingModel::Static(m) => write!(f, "StaticModel(dim={})", m.dim()),
            EmbeddingModel::Transformer(m) => write!(f, "Transformer(dim={})", m.dim()),
        }
    }
}

impl EmbeddingModel {
    /// Load a model from its directory's files, detecting its kind: Model2Vec's config
    /// (`model_type` "model2vec") or an `embeddings` tensor is a static model; `model_type`
    /// "bert" is a transformer; anything else is refused, naming what was found.
    pub fn load(files: &ModelFiles) -> Result<Self, String> {
        let config = files
            .json("config.json")?
            .ok_or_else(|| files.require("config.json").unwrap_err())?;
        files.require("tokenizer.json")?;
        let weights = files.require("model.safetensors")?;
        let model_type = config.get("model_type").and_then(|v| v.as_str());
        let architectures: Vec<&str> = config
            .get("architectures")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let is_static = model_type == Some("model2vec")
            || architectures.contains(&"StaticModel")
            || (model_type.is_none() && static_model::has_embeddings_tensor(weights));
        if is_static {
            return StaticModel::load(files, &config).map(|m| EmbeddingModel::Static(Box::new(m)));
        }
        match model_type {
            Some("bert") => Transformer::load(files, &config)
                .map(|t| EmbeddingModel::Transformer(Box::new(t))),
            other => Err(format!(
                "unsupported model architecture (config.json: model_type {}, architectures {:?}); supported: BERT-family sentence-transformers models (model_type \"bert\": all-MiniLM, BGE, E5, ...) and Model2Vec static models",
                other.map_or("missing".to_string(), |t| format!("\"{t}\"")),
                architectures
            )),
        }
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        match self {
            EmbeddingModel::Static(m) => m.dim(),
            EmbeddingModel::Transformer(m) => m.dim(),
        }
    }

    /// Embed `texts` (None stays None), each vector L2-normalised.
    pub fn embed(&self, texts: &[Option<&str>]) -> Result<Vec<Option<Vec<f32>>>, String> {
        match self {
            EmbeddingModel::Static(m) => texts
                .iter()
                .map(|t| t.map(|t| m.embed(t)).transpose())
                .collect(),
            EmbeddingModel::Transformer(m) => m.embed(texts),
        }
    }
}

/// Scale `v` to unit length; a zero vector becomes the constant unit vector 1/√d (the hashed
/// embedding's answer for a text with nothing to embed), so every output has length 1.
pub(crate) fn normalise(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    } else {
        let c = (1.0 / (v.len() as f64).sqrt()) as f32;
        v.iter_mut().for_each(|x| *x = c);
    }
}

/// A tokenizer from `tokenizer.json` with its padding removed (we never pad: texts are
/// batched by exact length) and no truncation (set by the caller).
fn tokenizer(files: &ModelFiles) -> Result<tokenizers::Tokenizer, String> {
    let mut tokenizer = tokenizers::Tokenizer::from_bytes(files.require("tokenizer.json")?)
        .map_err(|e| format!("tokenizer.json cannot be read: {e}"))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| format!("tokenizer.json: {e}"))?;
    Ok(tokenizer)
}
