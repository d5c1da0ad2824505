//! KernelML's "machine learning" half: a linear-regression surrogate of the loss, fitted on the
//! search's recent records (parameter vectors and their losses), whose coefficients rank the
//! parameters (which to move) and give each a direction (where the loss falls).
//!
//! KernelML (v2.556, `_optimizer_`) fits sklearn's `LinearRegression` (with an intercept) of the
//! losses on the parameter history and updates the `percent_of_params_updated` parameters with
//! the largest |coefficient|. Here the columns are standardised first (so the ranking does not
//! depend on the parameters' units: β_i is the loss change per standard deviation of parameter
//! i over the records, the expected gain of moving it by its spread), and a tiny ridge term
//! keeps the fit defined when there are fewer records than parameters (then the fit is solved
//! in its dual form, (ZZᵀ + λI)⁻¹, the smaller system).

use crate::error::Result;

/// What the surrogate says about one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficient {
    /// The standardised coefficient β_i (loss change per standard deviation of the parameter
    /// over the records), or None when the parameter did not vary over the records (unknown).
    pub standardized: Option<f64>,
    /// The parameter's standard deviation over the records (0 when it did not vary).
    pub sd: f64,
}

/// Fits loss ~ intercept + Σ c_i x_i on `rows` records (row-major, `p` values each) with their
/// finite `losses`, over the parameters where `free[i]`; returns one coefficient per parameter
/// (None for fixed or constant ones). Fewer than 3 records: every coefficient is unknown.
pub fn fit(params: &[f64], losses: &[f64], p: usize, free: &[bool]) -> Result<Vec<Coefficient>> {
    let n = losses.len();
    debug_assert_eq!(params.len(), n * p);
    let mut out = vec![Coefficient { standardized: None, sd: 0.0 }; p];
    if n < 3 {
        return Ok(out);
    }
    let nf = n as f64;
    // Column means and standard deviations; the columns that vary enter the fit.
    let mut mean = vec![0.0; p];
    for r in 0..n {
        for (m, v) in mean.iter_mut().zip(&params[r * p..(r + 1) * p]) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= nf);
    let mut var = vec![0.0; p];
    for r in 0..n {
        for ((s, v), m) in var.iter_mut().zip(&params[r * p..(r + 1) * p]).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    let cols: Vec<usize> = (0..p)
        .filter(|&i| {
            let sd = (var[i] / nf).sqrt();
            out[i].sd = sd;
            free[i] && sd > 1e-300 && sd > 1e-14 * mean[i].abs()
        })
        .collect();
    let q = cols.len();
    if q == 0 {
        return Ok(out);
    }
    let ly = losses.iter().sum::<f64>() / nf;
    let y: Vec<f64> = losses.iter().map(|l| l - ly).collect();
    let ys = (y.iter().map(|v| v * v).sum::<f64>() / nf).sqrt();
    if !(ys.is_finite() && ys > 0.0) {
        // A flat loss over the records: every varying parameter has coefficient 0.
        for &i in &cols {
            out[i].standardized = Some(0.0);
        }
        return Ok(out);
    }
    // Z: n x q standardised design (columns mean 0, sd 1); y scaled to sd 1 for conditioning.
    let mut z = crate::error::try_zeros(crate::tensor::checked_len(n, q)?)?;
    for r in 0..n {
        for (j, &i) in cols.iter().enumerate() {
            z[r * q + j] = (params[r * p + i] - mean[i]) / out[i].sd;
        }
    }
    let yv: Vec<f64> = y.iter().map(|v| v / ys).collect();
    // Ridge λ relative to the trace (n per column): small enough to leave a well-posed fit
    // unchanged, large enough to define an under-determined one (the minimum-norm solution).
    let lambda = 1e-6 * nf;
    let beta = if n >= q {
        // (ZᵀZ + λI) β = Zᵀy
        let mut g = vec![0.0; q * q];
        let mut b = vec![0.0; q];
        for r in 0..n {
            let row = &z[r * q..(r + 1) * q];
            for a in 0..q {
                let za = row[a];
                b[a] += za * yv[r];
                for c in 0..=a {
                    g[a * q + c] += za * row[c];
                }
            }
        }
        for a in 0..q {
            g[a * q + a] += lambda;
            for c in 0..a {
                g[c * q + a] = g[a * q + c];
            }
        }
        super::interval::solve_spd(&mut g, q, &b)
    } else {
        // β = Zᵀ (ZZᵀ + λI)⁻¹ y
        let mut g = vec![0.0; n * n];
        for a in 0..n {
            for c in 0..=a {
                let v: f64 = z[a * q..(a + 1) * q].iter().zip(&z[c * q..(c + 1) * q]).map(|(u, w)| u * w).sum();
                g[a * n + c] = v;
                g[c * n + a] = v;
            }
            g[a * n + a] += lambda;
        }
        super::interval::solve_spd(&mut g, n, &yv).map(|alpha| {
            let mut beta = vec![0.0; q];
            for r in 0..n {
                for (bj, zj) in beta.iter_mut().zip(&z[r * q..(r + 1) * q]) {
                    *bj += zj * alpha[r];
                }
            }
            beta
        })
    };
    if let Some(beta) = beta {
        for (j, &i) in cols.iter().enumerate() {
            let v = beta[j] * ys;
            out[i].standardized = Some(if v.is_finite() { v } else { 0.0 });
        }
    }
    Ok(out)
}

/// The `k` parameters to update, best first: those the records never varied (unknown, the
/// longest unselected first) before those with the largest |β_i|; ties go to the lower index.
pub fn top(coef: &[Coefficient], free: &[bool], last_selected: &[u64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..coef.len()).filter(|&i| free[i]).collect();
    idx.sort_by(|&a, &b| {
        let key = |i: usize| coef[i].standardized.map(f64::abs);
        match (key(a), key(b)) {
            (None, None) => last_selected[a].cmp(&last_selected[b]).then(a.cmp(&b)),
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => y.total_cmp(&x).then(a.cmp(&b)),
        }
    });
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_loss_and_ranks_by_standardised_effect() {
        // loss = 3 + 2 x0 - 5 x1 + 0 x2, x1 varying 10x less than x0: β0 = 2 sd0, β1 = -5 sd1.
        let mut rng = crate::rng::Rng::new(1, 0);
        let (n, p) = (50, 4);
        let mut params = Vec::new();
        let mut losses = Vec::new();
        for _ in 0..n {
            let x = [rng.uniform_f64() * 2.0, rng.uniform_f64() * 0.2, rng.uniform_f64(), 7.0];
            losses.push(3.0 + 2.0 * x[0] - 5.0 * x[1]);
            params.extend_from_slice(&x);
        }
        let free = [true; 4];
        let c = fit(&params, &losses, p, &free).unwrap();
        assert!((c[0].standardized.unwrap() / c[0].sd - 2.0).abs() < 1e-4, "{c:?}");
        assert!((c[1].standardized.unwrap() / c[1].sd + 5.0).abs() < 1e-3, "{c:?}");
        assert!(c[2].standardized.unwrap().abs() < 1e-6);
        assert_eq!(c[3].standardized, None, "a constant parameter is unknown");
        // x0's effect per sd (2 * 0.58) beats x1's (5 * 0.058): ranked first; the unknown x3 first of all.
        assert_eq!(top(&c, &free, &[0; 4], 3), vec![3, 0, 1]);
        // Fewer records than parameters: the dual (minimum-norm) fit still ranks x0 first.
        let c = fit(&params[..3 * p], &losses[..3], p, &free).unwrap();
        assert!(c[0].standardized.is_some());
    }
}
