//! Distance metrics shared by fitting, assignment and separation.

use std::fmt;
use std::str::FromStr;

/// How distances between embeddings and centroids are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Metric {
    /// Cosine distance 1 − cos(x, c); fitting L2-normalises the embeddings first.
    #[default]
    Cosine,
    /// Euclidean distance.
    L2,
}

impl Metric {
    /// Names accepted in SQL.
    pub const NAMES: [&'static str; 2] = ["cosine", "l2"];

    /// Distance between two vectors under this metric (f64 accumulation).
    pub fn distance(self, a: &[f32], b: &[f32]) -> f64 {
        match self {
            Metric::L2 => a
                .iter()
                .zip(b)
                .map(|(x, y)| {
                    let d = f64::from(*x) - f64::from(*y);
                    d * d
                })
                .sum::<f64>()
                .sqrt(),
            Metric::Cosine => {
                let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
                for (x, y) in a.iter().zip(b) {
                    let (x, y) = (f64::from(*x), f64::from(*y));
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                if na == 0.0 || nb == 0.0 {
                    // A zero vector has no direction: treat it as orthogonal to everything.
                    1.0
                } else {
                    (1.0 - dot / (na.sqrt() * nb.sqrt())).max(0.0)
                }
            }
        }
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cosine" => Ok(Metric::Cosine),
            "l2" | "euclidean" => Ok(Metric::L2),
            _ => Err(format!("unknown metric '{s}'; accepted: cosine, l2")),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
        })
    }
}

/// L2-normalise each row of a row-major matrix in place (zero rows stay zero).
pub fn normalize_rows(data: &mut [f32], dim: usize) {
    for row in data.chunks_exact_mut(dim) {
        let norm = row
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for x in row.iter_mut() {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
    }
}
