//! Positions of the k-means centroids on a plane: their first two principal components.

/// Project `points` (one row per centroid, equal lengths) onto their first two principal
/// components, by power iteration on the centred points (never a dim x dim matrix, so
/// k x dim work per step). Deterministic: a fixed start vector and a fixed number of steps;
/// each component's sign is chosen so that its largest coordinate is positive. Fewer than
/// two distinct points (or a rank-1 set) give zeros where no direction exists.
pub fn project_2d(points: &[Vec<f64>]) -> Vec<[f64; 2]> {
    let n = points.len();
    let dim = points.first().map_or(0, Vec::len);
    if n == 0 || dim == 0 || points.iter().any(|p| p.len() != dim) {
        return vec![[0.0, 0.0]; n];
    }
    let mean: Vec<f64> = (0..dim)
        .map(|j| points.iter().map(|p| p[j]).sum::<f64>() / n as f64)
        .collect();
    let centred: Vec<Vec<f64>> = points
        .iter()
        .map(|p| p.iter().zip(&mean).map(|(x, m)| x - m).collect())
        .collect();
    let scale = centred
        .iter()
        .flat_map(|p| p.iter())
        .fold(0.0_f64, |a, &x| a.max(x.abs()));
    let mut components: Vec<Vec<f64>> = Vec::new();
    for _ in 0..2 {
        let component = leading_direction(&centred, &components, scale);
        components.push(component);
    }
    centred
        .iter()
        .map(|p| [dot(p, &components[0]), dot(p, &components[1])])
        .collect()
}

const STEPS: usize = 300;

/// The unit vector v orthogonal to `found` maximising |X v|, or zeros when X has no variance
/// left there (relative to `scale`, the largest centred coordinate).
fn leading_direction(x: &[Vec<f64>], found: &[Vec<f64>], scale: f64) -> Vec<f64> {
    let dim = x[0].len();
    // A start vector with no symmetry that would keep it orthogonal to a real component.
    let mut v: Vec<f64> = (0..dim)
        .map(|j| 1.0 + (j as f64 * 0.618_034).fract())
        .collect();
    for _ in 0..STEPS {
        orthogonalise(&mut v, found);
        if !normalise(&mut v) {
            return vec![0.0; dim];
        }
        let xv: Vec<f64> = x.iter().map(|p| dot(p, &v)).collect();
        let mut next = vec![0.0; dim];
        for (p, &w) in x.iter().zip(&xv) {
            for (acc, &pj) in next.iter_mut().zip(p) {
                *acc += w * pj;
            }
        }
        v = next;
    }
    orthogonalise(&mut v, found);
    // X^T X v has the norm of the variance along v: none left means no direction.
    let norm = dot(&v, &v).sqrt();
    if norm.is_nan() || norm <= 1e-12 * scale * scale || !normalise(&mut v) {
        return vec![0.0; dim];
    }
    let largest = v
        .iter()
        .copied()
        .fold(0.0_f64, |a, b| if b.abs() > a.abs() { b } else { a });
    if largest < 0.0 {
        v.iter_mut().for_each(|c| *c = -*c);
    }
    v
}

fn orthogonalise(v: &mut [f64], against: &[Vec<f64>]) {
    for u in against {
        let d = dot(v, u);
        v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
    }
}

fn normalise(v: &mut [f64]) -> bool {
    let norm = dot(v, v).sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return false;
    }
    v.iter_mut().for_each(|c| *c /= norm);
    true
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_on_a_plane_keep_their_distances() {
        // Four points on a tilted plane of a 5-dim space: the projection is an isometry.
        let u = [0.6, 0.8, 0.0, 0.0, 0.0];
        let w = [0.0, 0.0, 0.6, 0.0, 0.8];
        let coords = [(0.0, 0.0), (3.0, 0.0), (0.0, 1.0), (3.0, 1.0)];
        let points: Vec<Vec<f64>> = coords
            .iter()
            .map(|&(a, b)| (0..5).map(|j| 7.0 + a * u[j] + b * w[j]).collect())
            .collect();
        let xy = project_2d(&points);
        for i in 0..4 {
            for j in 0..4 {
                let d_in = ((coords[i].0 - coords[j].0).powi(2)
                    + (coords[i].1 - coords[j].1).powi(2))
                .sqrt();
                let d_out = ((xy[i][0] - xy[j][0]).powi(2) + (xy[i][1] - xy[j][1]).powi(2)).sqrt();
                assert!((d_in - d_out).abs() < 1e-9, "{i}-{j}: {d_in} vs {d_out}");
            }
        }
        // The first axis is the long one (spread 3), the second the short one (spread 1).
        let spread = |k: usize| {
            let vals: Vec<f64> = xy.iter().map(|p| p[k]).collect();
            vals.iter().cloned().fold(f64::MIN, f64::max)
                - vals.iter().cloned().fold(f64::MAX, f64::min)
        };
        assert!((spread(0) - 3.0).abs() < 1e-9 && (spread(1) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_sets_give_zeros_not_nan() {
        assert_eq!(project_2d(&[]), Vec::<[f64; 2]>::new());
        assert_eq!(project_2d(&[vec![1.0, 2.0]]), vec![[0.0, 0.0]]);
        // Two points: one axis, no second.
        let xy = project_2d(&[vec![0.0, 0.0], vec![2.0, 0.0]]);
        assert!((xy[0][0] + 1.0).abs() < 1e-9 && (xy[1][0] - 1.0).abs() < 1e-9);
        assert!(xy.iter().all(|p| p[1] == 0.0));
        // Ragged input is not a crash.
        assert_eq!(project_2d(&[vec![1.0], vec![1.0, 2.0]]).len(), 2);
    }

    #[test]
    fn it_is_deterministic() {
        let points: Vec<Vec<f64>> = (0..20)
            .map(|i| {
                (0..16)
                    .map(|j| ((i * 31 + j * 7) % 13) as f64 / 13.0)
                    .collect()
            })
            .collect();
        assert_eq!(project_2d(&points), project_2d(&points));
    }
}
