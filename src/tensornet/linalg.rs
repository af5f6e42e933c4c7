//! Dense SVD by one-sided Jacobi rotations (Hestenes), f64, for MPS compression.

use crate::error::{Error, Result};

/// A thin SVD `A = U diag(s) Vᵀ` of an `m × n` matrix, `k = min(m, n)`.
#[derive(Clone, Debug)]
pub struct Svd {
    /// `m × k`, row-major, orthonormal columns (a column is zero where `s` is zero).
    pub u: Vec<f64>,
    /// `k` singular values, descending.
    pub s: Vec<f64>,
    /// `k × n`, row-major, orthonormal rows.
    pub vt: Vec<f64>,
    /// `min(m, n)`.
    pub k: usize,
}

/// Thin SVD of the row-major `m × n` matrix `a` by one-sided Jacobi sweeps.
pub fn svd(a: &[f64], m: usize, n: usize) -> Result<Svd> {
    if m == 0 || n == 0 || a.len() != m * n {
        return Err(Error::Shape(format!(
            "svd of a {m}×{n} matrix given {} entries",
            a.len()
        )));
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite("svd input".into()));
    }
    if m < n {
        // A = U S Vᵀ  ⇔  Aᵀ = V S Uᵀ.
        let mut at = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                at[j * m + i] = a[i * n + j];
            }
        }
        let f = svd(&at, n, m)?;
        // f.u is n × k (= V), f.vt is k × m (= Uᵀ).
        let k = f.k;
        let mut u = vec![0.0; m * k];
        for j in 0..k {
            for i in 0..m {
                u[i * k + j] = f.vt[j * m + i];
            }
        }
        let mut vt = vec![0.0; k * n];
        for j in 0..k {
            for i in 0..n {
                vt[j * n + i] = f.u[i * k + j];
            }
        }
        return Ok(Svd { u, s: f.s, vt, k });
    }
    // m ≥ n: orthogonalise the columns of A.
    let mut cols: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..m).map(|i| a[i * n + j]).collect())
        .collect();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..n).map(|i| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let eps = 1e-15;
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (alpha, beta, gamma) = {
                    let (cp, cq) = (&cols[p], &cols[q]);
                    let mut al = 0.0;
                    let mut be = 0.0;
                    let mut ga = 0.0;
                    for (x, y) in cp.iter().zip(cq) {
                        al += x * x;
                        be += y * y;
                        ga += x * y;
                    }
                    (al, be, ga)
                };
                if gamma == 0.0 || gamma.abs() <= eps * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let (lo, hi) = cols.split_at_mut(q);
                for (x, y) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                    let (xp, yq) = (*x, *y);
                    *x = c * xp - s * yq;
                    *y = s * xp + c * yq;
                }
                let (lo, hi) = v.split_at_mut(q);
                for (x, y) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                    let (xp, yq) = (*x, *y);
                    *x = c * xp - s * yq;
                    *y = s * xp + c * yq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut sv: Vec<(f64, usize)> = cols
        .iter()
        .enumerate()
        .map(|(j, c)| (c.iter().map(|x| x * x).sum::<f64>().sqrt(), j))
        .collect();
    sv.sort_by(|a, b| b.0.total_cmp(&a.0));
    let k = n;
    let mut u = vec![0.0; m * k];
    let mut s = vec![0.0; k];
    let mut vt = vec![0.0; k * n];
    for (jj, &(sig, j)) in sv.iter().enumerate() {
        s[jj] = sig;
        if sig > 0.0 {
            for i in 0..m {
                u[i * k + jj] = cols[j][i] / sig;
            }
        }
        for i in 0..n {
            vt[jj * n + i] = v[j][i];
        }
    }
    Ok(Svd { u, s, vt, k })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconstructs_random_matrices() {
        let mut g = crate::rng::Rng::from_state(7);
        for &(m, n) in &[(5usize, 3usize), (3, 5), (6, 6), (1, 4), (4, 1)] {
            let a: Vec<f64> = (0..m * n).map(|_| g.uniform() - 0.5).collect();
            let f = svd(&a, m, n).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let r: f64 = (0..f.k)
                        .map(|t| f.u[i * f.k + t] * f.s[t] * f.vt[t * n + j])
                        .sum();
                    assert!((r - a[i * n + j]).abs() < 1e-12);
                }
            }
            assert!(f.s.windows(2).all(|w| w[0] >= w[1]));
        }
    }
}
