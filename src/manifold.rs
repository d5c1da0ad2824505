//! What an autoencoder knows about the data's density and manifold (Goodfellow, Bengio &
//! Courville, *Deep Learning*, sections 14.5-14.6): the score estimated by a denoising
//! autoencoder, the encoder's Jacobian, and the tangent plane its singular vectors span.
//!
//! - **Score** (Alain & Bengio 2013, "What regularized auto-encoders learn from the
//!   data-generating distribution"): a denoising autoencoder trained with Gaussian corruption of
//!   small standard deviation sigma and squared error has r(x) - x ~ sigma^2 d/dx log p(x), so
//!   (r(x) - x) / sigma^2 estimates the score. (The optimal r is E[x | x + noise], so by
//!   Tweedie's formula it is exactly the score of p smoothed by N(0, sigma^2 I).)
//! - **Jacobian**: J = dh/dx of the code h = encode(x), code_dim x input_dim, exact (the chain
//!   rule through every encoder layer and its activation), row k from one backward pass of e_k.
//! - **Tangents** (section 14.6; Rifai et al. 2011, "The manifold tangent classifier"): the
//!   right singular vectors of J with the largest singular values are the input directions the
//!   code is most sensitive to; for a contractive autoencoder they span the tangent plane of the
//!   data manifold at x, the other singular values being small.

use crate::corruption::Corruption;
use crate::error::{Error, Result, invalid, shape};
use crate::gemm::{Operand, gemm};
use crate::layer::Stochastic;
use crate::network::Network;
use crate::tensor::{Matrix, checked_len};

/// Largest tangent buffer (rows * code_dim x width floats) of one block of a batched Jacobian.
const BLOCK_ELEMS: usize = 1 << 22;

/// The leading tangent directions of the encoder at one input, and every singular value.
#[derive(Clone, Debug, PartialEq)]
pub struct Tangents {
    /// k x input_dim, row-major: the right singular vectors of J with the k largest singular
    /// values (unit length, orthogonal to each other; each one's sign is arbitrary).
    pub directions: Matrix,
    /// The min(code_dim, input_dim) singular values of J, largest first.
    pub singular_values: Vec<f32>,
}

impl Network {
    /// (r(x) - x) / sigma^2 for the rows of x (rows x input_dim): the score d/dx log p(x) as a
    /// denoising autoencoder trained with Gaussian corruption of standard deviation sigma
    /// estimates it (Alain & Bengio 2013). `sigma` = 0 takes the network's own Gaussian
    /// corruption level; a network without one then gets [`Error::InvalidArgument`].
    pub fn score_estimate(&self, x: &Matrix, sigma: f32) -> Result<Matrix> {
        let sigma = self.score_sigma(sigma)?;
        if self.task().is_supervised() {
            return Err(invalid!(
                "the score compares the reconstruction with the input; this is a {} network",
                self.task().name()
            ));
        }
        let mut r = self.reconstruct(x)?;
        let inv = 1.0 / (sigma as f64 * sigma as f64);
        for (o, &v) in r.as_mut_slice().iter_mut().zip(x.as_slice()) {
            *o = ((*o as f64 - v as f64) * inv) as f32;
        }
        Ok(r)
    }

    /// The sigma a score call uses: the caller's, or the network's Gaussian corruption level
    /// when the caller passes 0.
    pub fn score_sigma(&self, sigma: f32) -> Result<f32> {
        if !(sigma.is_finite() && sigma >= 0.0) {
            return Err(invalid!("sigma {sigma} must be finite and >= 0 (0: the network's own Gaussian corruption)"));
        }
        if sigma > 0.0 {
            return Ok(sigma);
        }
        match self.spec().regularization.corruption {
            Corruption::Gaussian { sigma } if sigma > 0.0 => Ok(sigma),
            c => Err(invalid!(
                "sigma = 0 asks for the network's own Gaussian corruption level, and this network has none ({} corruption{}): pass the sigma of the Gaussian noise it was trained with",
                c.name(),
                if c.is_none() { String::new() } else { format!(" {}", c.level()) }
            )),
        }
    }

    /// Why the encoder's Jacobian cannot be computed exactly, if it cannot: a functional or
    /// memory layer, or sampled units in inference.
    fn jacobian_unsupported(&self) -> Result<()> {
        let n = self.n_encoder_layers();
        for (i, l) in self.layers()[..n].iter().enumerate() {
            if !l.connection.is_dense() {
                return Err(Error::Unsupported(format!(
                    "the encoder Jacobian goes through dense layers only; encoder layer {i} is {}",
                    l.connection.name()
                )));
            }
            if self.stochastic_inference().is_some() && l.stochastic != Stochastic::None {
                return Err(Error::Unsupported(format!(
                    "encoder layer {i} samples {} units in inference (stochastic inference is on), so encode is random; switch stochastic inference off to get the Jacobian of the means",
                    l.stochastic.name()
                )));
            }
        }
        Ok(())
    }

    /// The encoder's Jacobian dh/dx at one input row (code_dim x input_dim, row-major), exact:
    /// the chain rule through every encoder layer, J = D_L W_L^T ... D_1 W_1^T with D_l the
    /// activation's derivative f_l'(z_l). A stochastic layer contributes its mean, as `encode`
    /// does unless stochastic inference is on. Functional and memory layers, and stochastic
    /// layers sampled in inference (stochastic inference on), give [`Error::Unsupported`].
    pub fn encoder_jacobian(&self, x_row: &[f32]) -> Result<Matrix> {
        let m = Matrix::from_vec(1, x_row.len(), x_row.to_vec())?;
        let j = self.encoder_jacobians(&m)?;
        Matrix::from_vec(self.code_dim(), self.input_dim(), j)
    }

    /// [`Network::encoder_jacobian`] of every row of x: rows x code_dim x input_dim floats, row
    /// r's Jacobian at r * code_dim * input_dim.
    pub fn encoder_jacobians(&self, x: &Matrix) -> Result<Vec<f32>> {
        self.jacobian_unsupported()?;
        if x.cols() != self.input_dim() {
            return Err(shape!("input has {} columns, the network expects {}", x.cols(), self.input_dim()));
        }
        x.check_finite("input")?;
        let (code, input) = (self.code_dim(), self.input_dim());
        let per_row = checked_len(code, input)?;
        let mut out = crate::error::try_zeros(checked_len(x.rows(), per_row)?)?;
        if x.rows() == 0 {
            return Ok(out);
        }
        let work = x.rows().saturating_mul(per_row);
        let threads = if work < 1 << 16 { 1 } else { crate::pool::resolve_threads(self.threads()) };
        if threads > 1 {
            crate::pool::pool(threads)?.install(|| self.jacobians_into(x, threads, &mut out))?;
        } else {
            self.jacobians_into(x, 1, &mut out)?;
        }
        Ok(out)
    }

    fn jacobians_into(&self, x: &Matrix, threads: usize, out: &mut [f32]) -> Result<()> {
        let n = self.n_encoder_layers();
        let layers = &self.layers()[..n];
        let (code, input) = (self.code_dim(), self.input_dim());
        let widest = layers.iter().map(|l| l.n_in.max(l.n_out)).max().unwrap_or(1);
        let block = (BLOCK_ELEMS / (code * widest).max(1)).clamp(1, 256.min(x.rows()));
        let mut ws = crate::network::Workspace::for_inference(self, block, 0..n)?;
        let mut g = crate::error::try_zeros(checked_len(block * code, widest)?)?;
        let mut dx = crate::error::try_zeros(checked_len(block * code, widest)?)?;
        let params = self.params();
        let mut first = 0;
        while first < x.rows() {
            let r = block.min(x.rows() - first);
            self.forward_layers(0..n, &x.as_slice()[first * input..(first + r) * input], r, &mut ws, threads)?;
            let t = r * code;
            // Tangent (b, k) starts as e_k scaled by the code layer's f'(z_bk).
            let top = &layers[n - 1];
            g[..t * code].fill(0.0);
            for b in 0..r {
                for k in 0..code {
                    let e = b * code + k;
                    g[e * code + k] = top.activation.derivative(ws.preactivation(n - 1)[e], ws.output(n - 1)[e]);
                }
            }
            for i in (0..n).rev() {
                let l = &layers[i];
                let w = &params[l.w..l.w + l.n_in * l.n_out];
                let dst: &mut [f32] = if i == 0 {
                    &mut out[first * code * input..(first + r) * code * input]
                } else {
                    &mut dx[..t * l.n_in]
                };
                gemm(
                    t,
                    l.n_in,
                    l.n_out,
                    1.0,
                    Operand::n(&g[..t * l.n_out], l.n_out),
                    Operand::t(w, l.n_out),
                    0.0,
                    dst,
                    l.n_in,
                    threads,
                );
                if i > 0 {
                    let below = &layers[i - 1];
                    let (z, y) = (ws.preactivation(i - 1), ws.output(i - 1));
                    let width = l.n_in;
                    for (k, (gr, dr)) in
                        g[..t * width].chunks_exact_mut(width).zip(dx[..t * width].chunks_exact(width)).enumerate()
                    {
                        let b = k / code;
                        let (zr, yr) = (&z[b * width..(b + 1) * width], &y[b * width..(b + 1) * width]);
                        for (((o, &d), &z), &y) in gr.iter_mut().zip(dr).zip(zr).zip(yr) {
                            *o = d * below.activation.derivative(z, y);
                        }
                    }
                }
            }
            first += r;
        }
        Ok(())
    }

    /// The tangent plane of the encoder at one input row: the `k` right singular vectors of
    /// the Jacobian with the largest singular values (directions in input space) and all
    /// min(code_dim, input_dim) singular values. 1 <= k <= min(code_dim, input_dim).
    pub fn tangents(&self, x_row: &[f32], k: usize) -> Result<Tangents> {
        let (code, input) = (self.code_dim(), self.input_dim());
        let most = code.min(input);
        if k == 0 || k > most {
            return Err(invalid!("k = {k} tangent directions: it must be in 1 to min(code_dim, input_dim) = {most}"));
        }
        if x_row.len() != input {
            return Err(shape!("the row has {} values, the network expects {input}", x_row.len()));
        }
        let j = self.encoder_jacobian(x_row)?;
        let jd: Vec<f64> = j.as_slice().iter().map(|&v| v as f64).collect();
        let (values, vectors) = right_singular(&jd, code, input);
        let directions: Vec<f32> = vectors[..k * input].iter().map(|&v| v as f32).collect();
        Ok(Tangents {
            directions: Matrix::from_vec(k, input, directions)?,
            singular_values: values.iter().map(|&v| v as f32).collect(),
        })
    }
}

/// Singular values and right singular vectors of a small dense matrix `a` (m x n, row-major):
/// returns (the min(m, n) singular values, largest first; min(m, n) x n row-major unit vectors
/// v_1, v_2, ... with a v_i = sigma_i u_i). One-sided Jacobi (Hestenes 1958) on the n x m
/// matrix a^T: plane rotations of its columns until they are orthogonal to working precision;
/// the rotated columns are then sigma_i v_i. Directions whose singular value is zero (or
/// negligible) are completed to an orthonormal set by Gram-Schmidt on the unit vectors.
/// O(sweeps * m^2 * n), for matrices of a few hundred rows at most.
pub fn right_singular(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), m * n, "right_singular: {} values for {m} x {n}", a.len());
    // cols[c] is column c of a^T = row c of a.
    let mut cols: Vec<Vec<f64>> = a.chunks_exact(n.max(1)).map(|r| r.to_vec()).collect();
    cols.truncate(m);
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    const EPS: f64 = 1e-15;
    for _sweep in 0..80 {
        let mut rotated = false;
        for p in 0..m {
            for q in p + 1..m {
                let alpha = dot(&cols[p], &cols[p]);
                let beta = dot(&cols[q], &cols[q]);
                let gamma = dot(&cols[p], &cols[q]);
                if gamma == 0.0 || gamma.abs() <= EPS * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                // t = tan(theta), the smaller root of t^2 + 2 zeta t - 1 = 0, zeroes the new
                // columns' dot product.
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let (lo, hi) = cols.split_at_mut(q);
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
    let mut order: Vec<(f64, usize)> = cols.iter().enumerate().map(|(i, c)| (dot(c, c).sqrt(), i)).collect();
    order.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let r = m.min(n);
    let largest = order.first().map_or(0.0, |o| o.0);
    let mut values = Vec::with_capacity(r);
    let mut vectors: Vec<Vec<f64>> = Vec::with_capacity(r);
    for &(sv, i) in order.iter().take(r) {
        values.push(sv);
        if sv > largest * 1e-12 && sv > 0.0 {
            vectors.push(cols[i].iter().map(|v| v / sv).collect());
        }
    }
    // Complete the directions of zero singular values: Gram-Schmidt (twice) on e_1, e_2, ...
    let mut e = 0;
    while vectors.len() < r && e < n {
        let mut v = vec![0f64; n];
        v[e] = 1.0;
        e += 1;
        for _ in 0..2 {
            for u in &vectors {
                let p = dot(&v, u);
                v.iter_mut().zip(u).for_each(|(x, u)| *x -= p * u);
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm > 1e-6 {
            vectors.push(v.iter().map(|x| x / norm).collect());
        }
    }
    (values, vectors.concat())
}
