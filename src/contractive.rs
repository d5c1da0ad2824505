//! The exact contractive penalty of a deep encoder (Rifai et al., ICML 2011): lambda * mean over
//! rows of ||dh/dx||_F^2 for the whole encoder x -> h, where the default (the backend's
//! `Op::ContractiveDz`/`Op::ContractiveDw`) sums each encoder layer's own ||J_l||_F^2 (a stacked
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
//! the layer's forward: about 3 * code_dim times the encoder's forward work (the per-layer
//! penalty is O(params + rows * units)). The input layer, when it narrows (n_0 > n_1), goes
//! through its Gram matrix W_0^T W_0 instead, two products of (rows * code_dim) x n_1 x n_1 plus
//! two of n_0 x n_1 x n_1 per step (3.4x fewer operations for 784-256-32). docs/manifold.md
//! gives measured times.

use crate::gemm::{Operand, gemm};
use crate::network::NetworkSpec;
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
    /// `layers.len()` layers, all dense) left pre-activations `zs[i]` and outputs `ys[i]`.
    pub fn compute(
        layers: &[crate::layer::Dense],
        params: &[f32],
        zs: &[&[f32]],
        ys: &[&[f32]],
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
                let (z, y) = (&zs[i][..rows * l.n_out], &ys[i][..rows * l.n_out]);
                let act = l.activation;
                let d = z.iter().zip(y).map(|(&z, &y)| act.derivative(z, y)).collect();
                let s = z.iter().zip(y).map(|(&z, &y)| act.second_derivative(z, y)).collect();
                (d, s)
            })
            .unzip();
        // The input layer goes through its Gram matrix when that is cheaper (n_0 > n_1, as for
        // images): J's rows a_0 = g_0 W_0^T are never formed, since ||a_0||^2 = g_0 G g_0^T,
        // g_bar_0 = 2 lambda/B g_0 G and dP/dW_0 = 2 lambda/B W_0 (sum_t g_0^T g_0), with
        // G = W_0^T W_0: products of n_1 x n_1 per tangent instead of n_0 x n_1.
        let l0 = &layers[0];
        let w0 = &params[l0.w..l0.w + l0.n_in * l0.n_out];
        let gram = l0.n_in > l0.n_out;
        let k0 = l0.n_out;
        let (mut gm, mut gtg) = (Vec::new(), Vec::new());
        if gram {
            gm = vec![0f32; k0 * k0];
            gtg = vec![0f32; k0 * k0];
            gemm(k0, k0, l0.n_in, 1.0, Operand::t(w0, k0), Operand::n(w0, k0), 0.0, &mut gm, k0, threads);
        }
        let in_width = |i: usize, l: &crate::layer::Dense| if i == 0 && gram { 0 } else { l.n_in };
        let widest = layers.iter().enumerate().map(|(i, l)| in_width(i, l).max(l.n_out)).max().unwrap_or(1);
        let block = (BLOCK_ELEMS / (code * widest).max(1)).clamp(1, rows);
        let t_max = block * code;
        // g[i]: tangents x n_out_i (d code_k / d z_i); a[i]: tangents x n_in_i (d code_k / d u_{i-1}).
        let mut g: Vec<Vec<f32>> = layers.iter().map(|l| vec![0f32; t_max * l.n_out]).collect();
        let mut a: Vec<Vec<f32>> = layers.iter().enumerate().map(|(i, l)| vec![0f32; t_max * in_width(i, l)]).collect();
        let mut gbar = vec![0f32; t_max * layers.iter().map(|l| l.n_out).max().unwrap_or(1)];
        let scale = lambda as f64 / rows as f64;
        let twice = (2.0 * scale) as f32;
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
                if i == 0 && gram {
                    break;
                }
                let l = &layers[i];
                let w = &params[l.w..l.w + l.n_in * l.n_out];
                let (gi, ai) = (&g[i][..t * l.n_out], &mut a[i][..t * l.n_in]);
                gemm(
                    t,
                    l.n_in,
                    l.n_out,
                    1.0,
                    Operand::n(gi, l.n_out),
                    Operand::t(w, l.n_out),
                    0.0,
                    ai,
                    l.n_in,
                    threads,
                );
                if i > 0 {
                    let width = l.n_in;
                    let below = &mut g[i - 1][..t * width];
                    for (tt, (gr, ar)) in below.chunks_exact_mut(width).zip(ai.chunks_exact(width)).enumerate() {
                        let dr = &d[i - 1][(first + tt / code) * width..(first + tt / code + 1) * width];
                        for ((g, &a), &d) in gr.iter_mut().zip(ar).zip(dr) {
                            *g = a * d;
                        }
                    }
                }
            }
            if gram {
                // P from g_0 G, then g_bar_0 = 2 lambda/B g_0 G; sum_t g_0^T g_0 for dP/dW_0.
                let (g0, gb) = (&g[0][..t * k0], &mut gbar[..t * k0]);
                gemm(t, k0, k0, 1.0, Operand::n(g0, k0), Operand::n(&gm, k0), 0.0, gb, k0, threads);
                value += scale * g0.iter().zip(gb.iter()).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>();
                gb.iter_mut().for_each(|v| *v *= twice);
                gemm(k0, k0, t, 1.0, Operand::t(g0, k0), Operand::n(g0, k0), 1.0, &mut gtg, k0, threads);
            } else {
                // P, then a_bar_0 = 2 lambda/B a_0 in place.
                let a0 = &mut a[0][..t * l0.n_in];
                value += scale * a0.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
                a0.iter_mut().for_each(|v| *v *= twice);
            }
            // The adjoint pass, bottom up: a[i] now holds a_bar_i (g_bar_0 is ready with gram).
            for i in 0..n {
                let l = &layers[i];
                let w = &params[l.w..l.w + l.n_in * l.n_out];
                let gb = &mut gbar[..t * l.n_out];
                if !(i == 0 && gram) {
                    let (ai, gi) = (&a[i][..t * l.n_in], &g[i][..t * l.n_out]);
                    // dP/dW_i += a_bar_i^T g_i; g_bar_i = a_bar_i W_i.
                    gemm(
                        l.n_in,
                        l.n_out,
                        t,
                        1.0,
                        Operand::t(ai, l.n_in),
                        Operand::n(gi, l.n_out),
                        1.0,
                        &mut dw[i],
                        l.n_out,
                        threads,
                    );
                    gemm(
                        t,
                        l.n_out,
                        l.n_in,
                        1.0,
                        Operand::n(ai, l.n_in),
                        Operand::n(w, l.n_out),
                        0.0,
                        gb,
                        l.n_out,
                        threads,
                    );
                }
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
        if gram {
            // dP/dW_0 = 2 lambda/B W_0 (sum_t g_0^T g_0).
            gemm(l0.n_in, k0, k0, twice, Operand::n(w0, k0), Operand::n(&gtg, k0), 0.0, &mut dw[0], k0, threads);
        }
        ExactContraction { value, dz, dw }
    }

    /// (value, dP/dz per encoder layer, direct dP/dW per encoder layer).
    pub fn into_parts(self) -> (f64, Vec<Vec<f32>>, Vec<Vec<f32>>) {
        (self.value, self.dz, self.dw)
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
