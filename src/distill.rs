//! `samplemix distill MODEL_DIR OUT_DIR`: a static model (Model2Vec's format) from a local
//! sentence-transformers model directory (`samplemix_udfs::kernels::distill` does the work).

use std::path::Path;
use std::time::Instant;

use datafusion::error::{DataFusionError, Result};
use samplemix_udfs::kernels::{distill as distil_model, EmbeddingModel, ModelFiles};

fn failed(message: String) -> DataFusionError {
    DataFusionError::Execution(format!("distill: {message}"))
}

/// Distil the model in `model_dir` to `dim` dimensions into `out_dir` (f16 vectors when
/// `f16`); returns a one-line summary.
pub fn distill(model_dir: &str, out_dir: &str, dim: usize, f16: bool) -> Result<String> {
    let start = Instant::now();
    let dir = Path::new(model_dir);
    if !dir.is_dir() {
        return Err(failed(format!(
            "MODEL_DIR '{model_dir}' is not a folder (a local sentence-transformers model directory)"
        )));
    }
    let files = ModelFiles::read_dir(dir).map_err(|e| failed(format!("MODEL_DIR: {e}")))?;
    let model = EmbeddingModel::load(&files)
        .map_err(|e| failed(format!("MODEL_DIR '{model_dir}': {e}")))?;
    let EmbeddingModel::Transformer(transformer) = model else {
        return Err(failed(format!(
            "MODEL_DIR '{model_dir}' is already a static model; distill reads a transformer"
        )));
    };
    let source = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| model_dir.to_string());
    let distilled = distil_model(&transformer, &files, &source, dim).map_err(failed)?;
    distilled
        .write(Path::new(out_dir), f16)
        .map_err(|e| failed(format!("OUT_DIR: {e}")))?;
    Ok(format!(
        "{out_dir}: {} tokens x {} dimensions ({}), PCA kept {:.1}% of the variance, {:.1} s",
        distilled.rows,
        distilled.dim,
        if f16 { "f16" } else { "f32" },
        100.0 * distilled.kept_variance,
        start.elapsed().as_secs_f64()
    ))
}
