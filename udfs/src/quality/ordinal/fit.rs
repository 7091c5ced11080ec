//! Fitting the ordinal model: AdaGrad on the summed binary cross-entropy of the K−1 heads,
//! with L2 on the weights.
//!
//! Deterministic by construction: the caller hands the sample in a fixed order (by a seeded
//! hash of each text), features are computed per document (in parallel, each document alone),
//! standardisation sums run in sample order, and every epoch visits the documents in an order
//! drawn from the seed and the epoch alone. The same sample and options give the same model
//! bit for bit, whatever the threads.

use super::features::{dense, dense_len, tf, Scratch};
use super::model::OrdinalModel;
use crate::hash::splitmix64;

/// Fitting options (the `quality_model_fit` options string).
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Passes over the sample.
    pub epochs: usize,
    /// L2 penalty per weight and step.
    pub l2: f64,
    /// AdaGrad's base learning rate.
    pub lr: f64,
    /// Seed of the sample and of the epoch orders.
    pub seed: u64,
    /// Hash buckets of the word 1-2-grams.
    pub buckets: u32,
    /// Whether `quality_signals` are dense features.
    pub signals: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            epochs: 5,
            l2: 1e-6,
            lr: 0.2,
            seed: 0,
            buckets: 1 << 20,
            signals: false,
        }
    }
}

/// One document of the sample: its sort key (a seeded hash of its text), label and text.
pub struct Example {
    /// Seeded hash of the text; the sample's order.
    pub key: u64,
    /// Label in 0..K−1.
    pub label: u32,
    /// The text.
    pub text: String,
}

/// Sparse and dense features of the whole sample.
struct Features {
    /// Row i's buckets are `ids[offsets[i]..offsets[i+1]]`, its values likewise in `vals`.
    offsets: Vec<usize>,
    ids: Vec<u32>,
    vals: Vec<f32>,
    dense: Vec<f64>,
}

/// Per document its (bucket, count) pairs, and all documents' dense figures row after row.
type Counted = (Vec<Vec<(u32, u32)>>, Vec<f64>);

/// Count each document's buckets and dense figures, `threads` documents at a time; the result
/// does not depend on `threads`.
fn featurise(
    examples: &[Example],
    o: &FitOptions,
    threads: usize,
) -> (Vec<Vec<(u32, u32)>>, Vec<f64>) {
    let width = dense_len(o.signals);
    let chunk = examples.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Counted> = std::thread::scope(|scope| {
        let handles: Vec<_> = examples
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut scratch = Scratch::default();
                    let mut buf = Vec::with_capacity(width);
                    let mut counts = Vec::with_capacity(part.len());
                    let mut dense_rows = Vec::with_capacity(part.len() * width);
                    for e in part {
                        scratch.count(&e.text, o.buckets);
                        dense(&e.text, &scratch, o.signals, &mut buf);
                        counts.push(scratch.counts.clone());
                        dense_rows.extend_from_slice(&buf);
                    }
                    (counts, dense_rows)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut counts = Vec::with_capacity(examples.len());
    let mut dense_rows = Vec::with_capacity(examples.len() * width);
    for (c, d) in parts {
        counts.extend(c);
        dense_rows.extend(d);
    }
    (counts, dense_rows)
}

/// Smoothed idf per bucket, as scikit-learn's `TfidfVectorizer(smooth_idf=True)`.
fn idf(counts: &[Vec<(u32, u32)>], buckets: u32) -> Vec<f32> {
    let mut df = vec![0u32; buckets as usize];
    for row in counts {
        for &(b, _) in row {
            df[b as usize] += 1;
        }
    }
    let n = counts.len() as f64;
    df.iter()
        .map(|&d| (((1.0 + n) / (1.0 + f64::from(d))).ln() + 1.0) as f32)
        .collect()
}

fn build(counts: Vec<Vec<(u32, u32)>>, dense: Vec<f64>, idf: &[f32]) -> Features {
    let mut f = Features {
        offsets: Vec::with_capacity(counts.len() + 1),
        ids: Vec::new(),
        vals: Vec::new(),
        dense,
    };
    f.offsets.push(0);
    for row in counts {
        let start = f.vals.len();
        let mut norm = 0f32;
        for (b, c) in row {
            let x = tf(c) * idf[b as usize];
            norm += x * x;
            f.ids.push(b);
            f.vals.push(x);
        }
        if norm > 0.0 {
            let inv = 1.0 / norm.sqrt();
            f.vals[start..].iter_mut().for_each(|v| *v *= inv);
        }
        f.offsets.push(f.vals.len());
    }
    f
}

/// Mean and deviation (1 where a feature is constant) per dense column, summed in sample order.
fn standardise(dense: &mut [f64], width: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = (dense.len() / width.max(1)).max(1) as f64;
    let mut mean = vec![0.0; width];
    for row in dense.chunks(width) {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= rows);
    let mut var = vec![0.0; width];
    for row in dense.chunks(width) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let scale: Vec<f64> = var
        .iter()
        .map(|s| {
            let sd = (s / rows).sqrt();
            if sd > 1e-12 {
                sd
            } else {
                1.0
            }
        })
        .collect();
    for row in dense.chunks_mut(width) {
        for ((v, m), s) in row.iter_mut().zip(&mean).zip(&scale) {
            *v = (*v - m) / s;
        }
    }
    (mean, scale)
}

/// Fit the model on `examples` (already in their sample order) with `levels` levels.
pub fn fit(examples: &[Example], levels: usize, o: &FitOptions, threads: usize) -> OrdinalModel {
    let width = dense_len(o.signals);
    let (counts, mut dense_rows) = featurise(examples, o, threads);
    let idf = idf(&counts, o.buckets);
    let (dense_mean, dense_scale) = standardise(&mut dense_rows, width);
    let f = build(counts, dense_rows, &idf);
    let n = examples.len();

    // Biases start at the log-odds of "label > k" in the sample (clamped: a level nobody has).
    let mut thresholds: Vec<f64> = (0..levels - 1)
        .map(|k| {
            let above = examples.iter().filter(|e| e.label as usize > k).count() as f64;
            let p = ((above + 0.5) / (n as f64 + 1.0)).clamp(1e-4, 1.0 - 1e-4);
            (p / (1.0 - p)).ln()
        })
        .collect();
    let mut weights = vec![0f32; o.buckets as usize];
    let mut g_weights = vec![0f32; o.buckets as usize];
    let mut dense_weights = vec![0f64; width];
    let mut g_dense = vec![0f64; width];
    let mut g_thresholds = vec![0f64; levels - 1];
    let (lr, l2) = (o.lr, o.l2);
    const EPS: f64 = 1e-8;

    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 0..o.epochs {
        let salt = splitmix64(o.seed ^ splitmix64(epoch as u64 + 1));
        order.sort_unstable_by_key(|&i| (splitmix64(examples[i].key ^ salt), i));
        for &i in &order {
            let (ids, vals) = (
                &f.ids[f.offsets[i]..f.offsets[i + 1]],
                &f.vals[f.offsets[i]..f.offsets[i + 1]],
            );
            let z = &f.dense[i * width..(i + 1) * width];
            let mut s = 0f64;
            for (&b, &x) in ids.iter().zip(vals) {
                s += f64::from(weights[b as usize] * x);
            }
            for (w, x) in dense_weights.iter().zip(z) {
                s += w * x;
            }
            let label = examples[i].label as usize;
            let mut g_s = 0f64;
            for (k, b) in thresholds.iter_mut().enumerate() {
                let p = 1.0 / (1.0 + (-(s + *b)).exp());
                let g = p - if label > k { 1.0 } else { 0.0 };
                g_s += g;
                g_thresholds[k] += g * g;
                *b -= lr * g / (g_thresholds[k].sqrt() + EPS);
            }
            for (&b, &x) in ids.iter().zip(vals) {
                let w = &mut weights[b as usize];
                let g = g_s * f64::from(x) + l2 * f64::from(*w);
                let acc = &mut g_weights[b as usize];
                *acc += (g * g) as f32;
                *w -= (lr * g / (f64::from(*acc).sqrt() + EPS)) as f32;
            }
            for ((w, acc), x) in dense_weights.iter_mut().zip(&mut g_dense).zip(z) {
                let g = g_s * x + l2 * *w;
                *acc += g * g;
                *w -= lr * g / (acc.sqrt() + EPS);
            }
        }
    }
    // Rank consistency: a later head never claims more than an earlier one.
    for k in 1..thresholds.len() {
        thresholds[k] = thresholds[k].min(thresholds[k - 1]);
    }
    OrdinalModel {
        levels,
        buckets: o.buckets,
        signals: o.signals,
        rows: n as u64,
        options: format!(
            "epochs={}, l2={}, lr={}, seed={}, buckets={}, signals={}",
            o.epochs, o.l2, o.lr, o.seed, o.buckets, o.signals
        ),
        thresholds,
        dense_mean,
        dense_scale,
        dense_weights,
        idf,
        weights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::fnv1a64;

    fn examples() -> Vec<Example> {
        let good = "The committee reviewed the evidence carefully and published a clear, well argued report on the findings.";
        let bad = "click here buy now cheap cheap cheap best price click click";
        let mut v: Vec<Example> = (0..60)
            .map(|i| {
                let (label, text) = match i % 3 {
                    0 => (0, format!("{bad} {i}")),
                    1 => (1, format!("{bad} {good} {i}")),
                    _ => (2, format!("{good} {i}")),
                };
                Example {
                    key: fnv1a64(text.as_bytes()),
                    label,
                    text,
                }
            })
            .collect();
        v.sort_by_key(|e| (e.key, e.label));
        v
    }

    #[test]
    fn learns_an_ordering_and_is_thread_independent() {
        let ex = examples();
        let o = FitOptions {
            buckets: 1 << 12,
            ..FitOptions::default()
        };
        let m1 = fit(&ex, 3, &o, 1);
        let m3 = fit(&ex, 3, &o, 3);
        assert_eq!(m1, m3);
        let p = |t: &str| m1.predict(t);
        let lo = p("click here buy now cheap cheap cheap best price click click 7");
        let hi = p("The committee reviewed the evidence carefully and published a clear, well argued report on the findings. 7");
        assert!(lo < 1.0 && hi > 1.0, "lo {lo} hi {hi}");
        assert!(m1.thresholds.windows(2).all(|w| w[0] >= w[1]));
    }
}
