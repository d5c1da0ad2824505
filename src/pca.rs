//! Principal component analysis: the mean of the rows, the leading eigenvectors of their
//! covariance (the components), the variance along each, and the projection of rows onto them.
//!
//! The covariance C = (X - mean)^T (X - mean) / (n - 1) is accumulated in f64 and diagonalised
//! by the cyclic Jacobi method (Golub & Van Loan, "Matrix Computations", 4th ed., §8.5): plane
//! rotations that zero one off-diagonal entry at a time, sweep after sweep, until the
//! off-diagonal mass is below 1e-15 of the total (quadratic convergence; a handful of sweeps).
//! It is exact up to rounding for symmetric matrices of any spectrum, and small: meant for the
//! tens to hundreds of columns a pipeline reduces (KernelML's HIGGS notebook: 50 code columns
//! to 3), not for images of millions of pixels.
#![forbid(unsafe_code)]

use crate::error::{Error, Result, invalid, shape};
use crate::tensor::Matrix;

/// The most columns [`Pca::fit`] takes: the covariance is cols x cols in f64 and each Jacobi
/// sweep costs about 4 cols^3 operations.
pub const MAX_COLS: usize = 2048;

/// A fitted PCA.
#[derive(Clone, Debug, PartialEq)]
pub struct Pca {
    /// Mean of each column of the fitted rows.
    pub mean: Vec<f64>,
    /// k x cols, row-major: component i is row i, unit length, components orthogonal, in order
    /// of decreasing variance. The sign of each is fixed so that its entry of largest
    /// magnitude is positive (the first such entry on a tie within 1e-9 relative), so a fit
    /// is reproducible.
    pub components: Vec<f64>,
    /// Variance of the fitted rows along each component (the covariance's eigenvalues, with
    /// the n - 1 denominator, as numpy's and scikit-learn's `explained_variance_`).
    pub variance: Vec<f64>,
    /// The total variance (the covariance's trace): variance[i] / total_variance is the share
    /// explained by component i.
    pub total_variance: f64,
}

impl Pca {
    /// Fits `k` components (1 to cols) to the rows of `x` (at least 2, finite).
    pub fn fit(x: &Matrix, k: usize) -> Result<Pca> {
        let (n, c) = (x.rows(), x.cols());
        if c == 0 || c > MAX_COLS {
            return Err(invalid!("PCA takes 1 to {MAX_COLS} columns, not {c}"));
        }
        if n < 2 {
            return Err(invalid!("PCA needs at least 2 rows for a covariance, not {n}"));
        }
        if k == 0 || k > c {
            return Err(invalid!("k is {k}: it must be 1 to the number of columns, {c}"));
        }
        if let Some(i) = crate::tensor::first_non_finite(x.as_slice()) {
            return Err(Error::NonFinite(format!("x: row {}, column {} is {}", i / c, i % c, x.as_slice()[i])));
        }
        let mut mean = vec![0f64; c];
        for r in 0..n {
            for (m, &v) in mean.iter_mut().zip(x.row(r)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut a = crate::error::try_zeros::<f64>(c * c)?;
        let mut d = vec![0f64; c];
        for r in 0..n {
            for (di, (&v, &m)) in d.iter_mut().zip(x.row(r).iter().zip(&mean)) {
                *di = v as f64 - m;
            }
            for i in 0..c {
                let di = d[i];
                for j in i..c {
                    a[i * c + j] += di * d[j];
                }
            }
        }
        for i in 0..c {
            for j in i..c {
                let v = a[i * c + j] / (n - 1) as f64;
                a[i * c + j] = v;
                a[j * c + i] = v;
            }
        }
        let total_variance = (0..c).map(|i| a[i * c + i]).sum();
        let (values, vectors) = symmetric_eigen(&mut a, c);
        let mut order: Vec<usize> = (0..c).collect();
        order.sort_by(|&i, &j| values[j].total_cmp(&values[i]));
        let mut components = Vec::with_capacity(k * c);
        let mut variance = Vec::with_capacity(k);
        for &j in &order[..k] {
            // Column j of the eigenvector matrix, with its largest entry made positive.
            let mut v: Vec<f64> = (0..c).map(|i| vectors[i * c + j]).collect();
            // Ties within rounding (1e-9 relative) go to the first entry.
            let max = v.iter().fold(0f64, |m, x| m.max(x.abs()));
            let big = v.iter().position(|x| x.abs() >= max * (1.0 - 1e-9)).unwrap_or(0);
            if v[big] < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            components.extend(v);
            variance.push(values[j].max(0.0));
        }
        Ok(Pca { mean, components, variance, total_variance })
    }

    /// Number of components.
    pub fn k(&self) -> usize {
        self.variance.len()
    }

    /// Number of columns of the fitted rows.
    pub fn cols(&self) -> usize {
        self.mean.len()
    }

    /// The share of the total variance each component explains (0 for constant data).
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        let t = self.total_variance;
        self.variance.iter().map(|&v| if t > 0.0 { v / t } else { 0.0 }).collect()
    }

    /// The rows of `x` (cols as fitted) projected onto the components: (x - mean) W^T, rows x k.
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        let c = self.cols();
        if x.cols() != c {
            return Err(shape!("the rows have {} columns, the PCA was fitted on {c}", x.cols()));
        }
        project(x.as_slice(), x.rows(), &self.mean, &self.components, self.k())
    }
}

/// Rows (row-major, `mean.len()` columns) projected onto `k` components (k x cols, row-major)
/// after subtracting `mean`, in f64, as a rows x k matrix. What [`Pca::transform`] does, for
/// components stored elsewhere (the C API's caller buffers).
pub fn project(x: &[f32], rows: usize, mean: &[f64], components: &[f64], k: usize) -> Result<Matrix> {
    let c = mean.len();
    if c == 0 || x.len() != rows * c || components.len() != k * c {
        return Err(shape!(
            "{} values for {rows} rows of {c} columns, {} component values for k = {k}",
            x.len(),
            components.len()
        ));
    }
    if let Some(i) = crate::tensor::first_non_finite(x) {
        return Err(Error::NonFinite(format!("x: row {}, column {} is {}", i / c, i % c, x[i])));
    }
    if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("mean: entry {i} is {}", mean[i])));
    }
    if let Some(i) = components.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!(
            "components: component {}, column {} is {}",
            i / c,
            i % c,
            components[i]
        )));
    }
    let mut out = crate::error::try_zeros::<f32>(rows * k)?;
    let mut d = vec![0f64; c];
    for r in 0..rows {
        for (di, (&v, &m)) in d.iter_mut().zip(x[r * c..(r + 1) * c].iter().zip(mean)) {
            *di = v as f64 - m;
        }
        for j in 0..k {
            let w = &components[j * c..(j + 1) * c];
            out[r * k + j] = d.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() as f32;
        }
    }
    Matrix::from_vec(rows, k, out)
}

/// Eigenvalues and eigenvectors (columns of the returned c x c row-major matrix) of the
/// symmetric matrix `a` (c x c, row-major; destroyed), by cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &mut [f64], c: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; c * c];
    for i in 0..c {
        v[i * c + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..c)
            .flat_map(|i| (0..c).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * c + j].powi(2))
            .sum();
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for p in 0..c {
            for q in p + 1..c {
                let apq = a[p * c + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Golub & Van Loan, Algorithm 8.5.1).
                let theta = (a[q * c + q] - a[p * c + p]) / (2.0 * apq);
                // signum(0) is 1: theta = 0 rotates by 45 degrees.
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let cs = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * cs;
                for k in 0..c {
                    let (akp, akq) = (a[k * c + p], a[k * c + q]);
                    a[k * c + p] = cs * akp - sn * akq;
                    a[k * c + q] = sn * akp + cs * akq;
                }
                for k in 0..c {
                    let (apk, aqk) = (a[p * c + k], a[q * c + k]);
                    a[p * c + k] = cs * apk - sn * aqk;
                    a[q * c + k] = sn * apk + cs * aqk;
                }
                for k in 0..c {
                    let (vkp, vkq) = (v[k * c + p], v[k * c + q]);
                    v[k * c + p] = cs * vkp - sn * vkq;
                    v[k * c + q] = sn * vkp + cs * vkq;
                }
            }
        }
    }
    ((0..c).map(|i| a[i * c + i]).collect(), v)
}
