//! The exact contractive penalty of a deep encoder (Rifai et al., ICML 2011): lambda * mean over
//! rows of ||dh/dx||_F^2 for the whole encoder x -> h, where the default
//! ([`crate::regularizer::contractive`]) sums each encoder layer's own ||J_l||_F^2 (a stacked
//! CAE's penalty). Chosen by [`Regularization::contractive_exact`]; for a one-layer encoder the
//! two are the same function.
//!
//! # Derivation
//!
//! Encoder layers l = 1..L (row vectors): u_0 = x, z_l = u_{l-1} W_l + b_l, u_l = f_l(z_l),
//! W_l stored n_{l-1} x n_l; d_l = f_l'(z_l), s_l = f_l''(z_l). The Jacobian of the code h = u_L
//! is J = D_L W_L^T D_{L-1} ... D_1 W_1^T (n_L x n_0), D_l = diag(d_l). Row k of J comes from a
//! backward pass of the unit vector e_k (one "tangent" per row and code unit):
//!
//! ```text
//! g_L = d_L * e_k,   a_{l-1} = g_l W_l^T,   g_{l-1} = a_{l-1} * d_{l-1}   (l = L..1),   J[k, :] = a_0
//! ```
//!
//! and P = lambda/B sum_rows sum_k ||a_0||^2. Differentiating that pass (reverse mode over the
//! tangent computation, a "double backward"), with a_bar = dP/da and g_bar = dP/dg:
//!
//! ```text
//! a_bar_0 = 2 lambda/B a_0
//! for l = 1..L:
//!     dP/dW_l  += a_bar_{l-1}^T g_l            (a_{l-1}[i] = sum_j W_l[i, j] g_l[j])
//!     g_bar_l   = a_bar_{l-1} W_l
//!     l < L:  a_bar_l = g_bar_l * d_l,   dP/dz_l += g_bar_l * a_l * s_l     (g_l = a_l * d_l)
//!     l = L:  dP/dz_L[k] += g_bar_L[k] s_L[k]                              (g_L = d_L * e_k)
//! ```
//!
//! summed over the tangents. dP/dz_l is the partial through D_l only (every z held fixed but
//! z_l): added to the network's dL/dz_l before that layer's backward products, it reaches W_l,
//! b_l and every layer below like any dL/dz (the forward graph z_l = f(z_{l-1}) W_l + b_l does the
//! rest of the chain rule). For L = 1 this gives back the per-layer formulas: dP/dW_ij =
//! 2 lambda/B sum_b d_j^2 W_ij and dP/dz_j = 2 lambda/B d_j s_j sum_i W_ij^2.
//!
//! # Cost
//!
//! Per row, code_dim tangents go down the encoder and their adjoints back up: three products of
//! (rows * code_dim) x n_{l-1} x n_l per encoder layer, against one of rows x n_{l-1} x n_l for
//! the layer's forward. So about 3 * code_dim times the encoder's forward work (the per-layer
//! penalty is O(params + rows * units)); docs/manifold.md gives measured times.

use crate::gemm::{Operand, gemm};
use crate::network::{NetworkSpec, Workspace};
use crate::regularizer::Regularization;

/// Largest tangent buffer (tangents x width floats) of one block of rows.
const BLOCK_ELEMS: usize = 1 << 21;

/// Checks the exact mode against the encoder: its layers must be deterministic (a sampled
/// layer's next layer sees samples, whose Jacobian is not the chain of f').
pub(crate) fn validate(spec: &NetworkSpec) -> crate::Result<()> {
    let r: &Regularization = &spec.regularization;
    if !(r.contractive_exact && r.contractive > 0.0) {
        return Ok(());
    }
    let enc = spec.encoder.iter().chain(std::iter::once(&spec.code));
    if let Some((i, l)) = enc.enumerate().find(|(_, l)| !l.stochastic.is_none()) {
        return Err(crate::error::invalid!(
            "the exact contractive penalty needs deterministic encoder layers; encoder layer {i} has {} units",
            l.stochastic.name()
        ));
    }
    Ok(())
}

/// The exact penalty of one minibatch and its gradient, split as the training step applies it.
pub struct ExactContraction {
    /// lambda * mean over rows of ||dh/dx||_F^2.
    pub value: f64,
    /// Per encoder layer, dP/dz_l through f_l' (rows x n_l): joins the layer's dL/dz.
    dz: Vec<Vec<f32>>,
    /// Per encoder layer, the direct dP/dW_l (n_{l-1} x n_l): added after the layer's backward.
    dw: Vec<Vec<f32>>,
}

impl ExactContraction {
    /// The penalty of the `rows` rows whose forward pass through the encoder (its first
    /// `layers.len()` layers, all dense) is in `ws`.
    pub fn compute(
        layers: &[crate::layer::Dense],
        params: &[f32],
        ws: &Workspace,
        rows: usize,
        lambda: f32,
        threads: usize,
    ) -> ExactContraction {
        let n = layers.len();
        let mut dz: Vec<Vec<f32>> = layers.iter().map(|l| vec![0f32; rows * l.n_out]).collect();
        let mut dw: Vec<Vec<f32>> = layers.iter().map(|l| vec![0f32; l.n_in * l.n_out]).collect();
        if rows == 0 || lambda == 0.0 || n == 0 {
            return ExactContraction { value: 0.0, dz, dw };
        }
        let code = layers[n - 1].n_out;
        // f'(z) and f''(z) of every encoder layer.
        let (d, s): (Vec<Vec<f32>>, Vec<Vec<f32>>) = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let (z, y) = (&ws.preactivation(i)[..rows * l.n_out], &ws.output(i)[..rows * l.n_out]);
                let act = l.activation;
                let d = z.iter().zip(y).map(|(&z, &y)| act.derivative(z, y)).collect();
                let s = z.iter().zip(y).map(|(&z, &y)| act.second_derivative(z, y)).collect();
                (d, s)
            })
            .unzip();
        let widest = layers.iter().map(|l| l.n_in.max(l.n_out)).max().unwrap_or(1);
        let block = (BLOCK_ELEMS / (code * widest).max(1)).clamp(1, rows);
        let t_max = block * code;
        // g[i]: tangents x n_out_i (d code_k / d z_i); a[i]: tangents x n_in_i (d code_k / d u_{i-1}).
        let mut g: Vec<Vec<f32>> = layers.iter().map(|l| vec![0f32; t_max * l.n_out]).collect();
        let mut a: Vec<Vec<f32>> = layers.iter().map(|l| vec![0f32; t_max * l.n_in]).collect();
        let mut gbar = vec![0f32; t_max * layers.iter().map(|l| l.n_out).max().unwrap_or(1)];
        let scale = lambda as f64 / rows as f64;
        let mut value = 0f64;
        let mut first = 0;
        while first < rows {
            let r = block.min(rows - first);
            let t = r * code;
            // The tangents' backward pass.
            {
                let top = &mut g[n - 1][..t * code];
                top.fill(0.0);
                for b in 0..r {
                    for k in 0..code {
                        top[(b * code + k) * code + k] = d[n - 1][(first + b) * code + k];
                    }
                }
            }
            for i in (0..n).rev() {
                let l = &layers[i];
                let w = &params[l.w..l.w + l.n_in * l.n_out];
                gemm(
                    t,
                    l.n_in,
                    l.n_out,
                    1.0,
                    Operand::n(&g[i][..t * l.n_out], l.n_out),
                    Operand::t(w, l.n_out),
                    0.0,
                    &mut a[i][..t * l.n_in],
                    l.n_in,
                    threads,
                );
                if i > 0 {
                    let width = l.n_in;
                    let below = &mut g[i - 1][..t * width];
                    for (tt, (gr, ar)) in
                        below.chunks_exact_mut(width).zip(a[i][..t * width].chunks_exact(width)).enumerate()
                    {
                        let dr = &d[i - 1][(first + tt / code) * width..(first + tt / code + 1) * width];
                        for ((g, &a), &d) in gr.iter_mut().zip(ar).zip(dr) {
                            *g = a * d;
                        }
                    }
                }
            }
            // P, then a_bar_0 = 2 lambda/B a_0 in place.
            let a0 = &mut a[0][..t * layers[0].n_in];
            value += scale * a0.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
            let twice = (2.0 * scale) as f32;
            a0.iter_mut().for_each(|v| *v *= twice);
            // The adjoint pass, bottom up: a[i] now holds a_bar_i.
            for i in 0..n {
                let l = &layers[i];
                let w = &params[l.w..l.w + l.n_in * l.n_out];
                gemm(
                    l.n_in,
                    l.n_out,
                    t,
                    1.0,
                    Operand::t(&a[i][..t * l.n_in], l.n_in),
                    Operand::n(&g[i][..t * l.n_out], l.n_out),
                    1.0,
                    &mut dw[i],
                    l.n_out,
                    threads,
                );
                let gb = &mut gbar[..t * l.n_out];
                gemm(
                    t,
                    l.n_out,
                    l.n_in,
                    1.0,
                    Operand::n(&a[i][..t * l.n_in], l.n_in),
                    Operand::n(w, l.n_out),
                    0.0,
                    gb,
                    l.n_out,
                    threads,
                );
                let width = l.n_out;
                if i + 1 < n {
                    // g_i = a_{i+1} * d_i: a_{i+1} (read, then overwritten by a_bar_{i+1}).
                    let above = &mut a[i + 1][..t * width];
                    for (tt, (gr, ar)) in gb.chunks_exact(width).zip(above.chunks_exact_mut(width)).enumerate() {
                        let row = first + tt / code;
                        let dr = &d[i][row * width..(row + 1) * width];
                        let sr = &s[i][row * width..(row + 1) * width];
                        let zr = &mut dz[i][row * width..(row + 1) * width];
                        for ((((z, a), &gb), &d), &s) in zr.iter_mut().zip(ar.iter_mut()).zip(gr).zip(dr).zip(sr) {
                            *z += gb * *a * s;
                            *a = gb * d;
                        }
                    }
                } else {
                    // g_L = d_L * e_k.
                    for (tt, gr) in gb.chunks_exact(width).enumerate() {
                        let (row, k) = (first + tt / code, tt % code);
                        dz[i][row * width + k] += gr[k] * s[i][row * width + k];
                    }
                }
            }
            first += r;
        }
        ExactContraction { value, dz, dw }
    }

    /// Adds dP/dz of encoder layer `i` (rows x n_out) to its dL/dz.
    pub fn add_dz(&self, i: usize, dz: &mut [f32]) {
        for (d, &p) in dz.iter_mut().zip(&self.dz[i]) {
            *d += p;
        }
    }

    /// Adds the direct dP/dW of encoder layer `i` to its weight gradient.
    pub fn add_dw(&self, i: usize, dw: &mut [f32]) {
        for (d, &p) in dw.iter_mut().zip(&self.dw[i]) {
            *d += p;
        }
    }
}

impl crate::network::Network {
    /// This network (parameters, threads and stochastic inference included) with the exact
    /// (true) or per-layer (false) contractive penalty; the spec is validated again.
    pub fn with_contractive_exact(&self, exact: bool) -> crate::Result<crate::network::Network> {
        let mut spec = self.spec().clone();
        spec.regularization.contractive_exact = exact;
        let mut net = crate::network::Network::from_params(spec, self.params())?;
        net.set_threads(self.threads());
        net.set_stochastic_inference(self.stochastic_inference());
        Ok(net)
    }
}
