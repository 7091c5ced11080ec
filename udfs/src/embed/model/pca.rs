//! Principal components of a matrix's rows (a covariance eigendecomposition), for distillation.

use linfa_linalg::eigh::Eigh;
use ndarray::Array2;

/// Project the rows of `x` (`n` rows of `d` values) onto their first `k` principal components,
/// as numpy's `cov`/`eigh` PCA that Model2Vec uses: rows centred, covariance / (n − 1),
/// components by decreasing eigenvalue. Each component's sign makes its largest coordinate
/// positive, so the result is one answer, not one of 2^k. Returns `n` rows of `k` values and
/// the share of variance kept.
pub fn project(x: &[f32], n: usize, d: usize, k: usize) -> Result<(Vec<f32>, f64), String> {
    if n < 2 || d == 0 || k == 0 || k > d || x.len() != n * d {
        return Err(format!(
            "PCA of {n} rows x {d} to {k} dimensions is not possible"
        ));
    }
    let mut mean = vec![0.0f64; d];
    for row in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += f64::from(*v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred = Array2::from_shape_fn((n, d), |(i, j)| f64::from(x[i * d + j]) - mean[j]);
    let cov = centred.t().dot(&centred) / (n as f64 - 1.0);
    let (values, vectors) = cov
        .eigh()
        .map_err(|e| format!("PCA eigendecomposition: {e}"))?;
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let kept: f64 = order[..k].iter().map(|&i| values[i].max(0.0)).sum();
    let mut basis = Array2::<f64>::zeros((d, k));
    for (c, &i) in order[..k].iter().enumerate() {
        let column = vectors.column(i);
        let largest = column
            .iter()
            .copied()
            .fold(0.0f64, |a, v| if v.abs() > a.abs() { v } else { a });
        let sign = if largest < 0.0 { -1.0 } else { 1.0 };
        for j in 0..d {
            basis[(j, c)] = sign * column[j];
        }
    }
    let projected = centred.dot(&basis);
    Ok((
        projected.iter().map(|v| *v as f32).collect(),
        if total > 0.0 { kept / total } else { 0.0 },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_component_follows_the_long_axis() {
        // Points along (1, 2)/√5 with a little spread across it.
        let mut x = Vec::new();
        for i in 0..50 {
            let t = i as f32 - 25.0;
            let e = if i % 2 == 0 { 0.1 } else { -0.1 };
            x.extend_from_slice(&[t - 2.0 * e, 2.0 * t + e]);
        }
        let (p, kept) = project(&x, 50, 2, 1).unwrap();
        assert!(kept > 0.99, "{kept}");
        // Projection of row i is ±√5·t: positive sign convention makes it increase with t.
        assert!(p[49] > p[0]);
        assert!(
            (p[49] - p[0] - 49.0 * 5f32.sqrt()).abs() < 0.05,
            "{}",
            p[49] - p[0]
        );
        assert!(project(&x, 50, 2, 3).is_err());
    }
}
