//! Fully connected layer y = f(x W + b), W stored n_in x n_out row-major; or, tied, y = f(x V^T + b)
//! where V is another layer's weight matrix (n_out x n_in) shared with it. The same description
//! carries a functional-transfer layer (its theta block where W would be; see
//! [`super::functional`]); a memory layer's passes need the workspace's state and are run by the
//! network.

use crate::activation::Activation;
use crate::gemm::{Epilogue, Operand, gemm, gemm_then};

#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub n_in: usize,
    pub n_out: usize,
    pub activation: Activation,
    /// Offset of the weight matrix in the parameter buffer (another layer's when tied).
    pub w: usize,
    /// Offset of the bias (always the layer's own).
    pub b: usize,
    /// The weights are read transposed: they belong to a mirrored encoder layer.
    pub tied: bool,
    /// backward overwrites (false) or adds to (true) the weight gradient: tied weights get
    /// contributions from two layers, the decoder's (run first) overwrites, the encoder's adds.
    pub accumulate_dw: bool,
    /// Sampled units (hidden layers only).
    pub stochastic: super::Stochastic,
    /// Weights (dense), trainable functions, or the memory function.
    pub connection: super::Connection,
    /// Seed of a functional layer's fixed connection signs.
    pub sign_seed: u64,
}

impl Dense {
    /// Number of parameters this layer owns (a tied layer owns only its bias).
    pub fn own_params(&self) -> usize {
        if self.tied { self.n_out } else { self.connection.params(self.n_in, self.n_out).unwrap_or(usize::MAX) }
    }

    /// Length of the block at `w`: the weight matrix, or a functional or memory layer's
    /// per-connection parameters.
    pub fn w_len(&self) -> usize {
        self.connection.params(self.n_in, self.n_out).map_or(0, |p| p - self.n_out)
    }

    /// The functional-transfer view of this layer (None unless it is one).
    pub fn functional(&self) -> Option<super::Functional> {
        match self.connection {
            super::Connection::Functional(f) => Some(super::Functional {
                n_in: self.n_in,
                n_out: self.n_out,
                family: f,
                p: self.w,
                b: self.b,
                sign_seed: self.sign_seed,
            }),
            _ => None,
        }
    }

    /// The memory view of this layer (None unless it is one).
    pub fn memory(&self) -> Option<super::Memory> {
        (self.connection == super::Connection::Memory).then_some(super::Memory {
            n_in: self.n_in,
            n_out: self.n_out,
            p: self.w,
            b: self.b,
        })
    }

    /// Given z with its bias (a functional or memory layer's pass), writes y = f(z).
    pub fn activate(&self, _params: &[f32], z: &mut [f32], y: &mut [f32]) {
        let act = self.activation;
        for (y, z) in y.iter_mut().zip(z.iter()) {
            *y = act.apply(*z);
        }
    }

    fn weights<'a>(&self, params: &'a [f32]) -> Operand<'a> {
        let w = &params[self.w..self.w + self.n_in * self.n_out];
        if self.tied { Operand::t(w, self.n_in) } else { Operand::n(w, self.n_out) }
    }

    /// z = x W + b (the pre-activation), y = f(z).
    /// x: rows x n_in; z, y: rows x n_out.
    pub fn forward(&self, params: &[f32], x: &[f32], rows: usize, z: &mut [f32], y: &mut [f32], threads: usize) {
        if let Some(f) = self.functional() {
            f.forward(params, x, rows, z, threads);
            self.activate(params, &mut z[..rows * self.n_out], &mut y[..rows * self.n_out]);
            return;
        }
        let (n_in, n_out) = (self.n_in, self.n_out);
        let bias = &params[self.b..self.b + n_out];
        let fused = Epilogue::BiasAct { bias, act: self.activation, y };
        gemm_then(rows, n_out, n_in, 1.0, Operand::n(x, n_in), self.weights(params), 0.0, z, n_out, threads, fused);
    }

    /// Given dy = dL/dy (overwritten by dL/dz), writes or adds dW and db into `grads` and, when
    /// `dx` is given, writes dL/dx = dz W^T.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        z: &[f32],
        y: &[f32],
        dy: &mut [f32],
        dx: Option<&mut [f32]>,
        rows: usize,
        threads: usize,
    ) {
        let act = self.activation;
        crate::parallel::rows3(dy, z, y, self.n_out, threads, |d, z, y| act.backward_in_place(z, y, d));
        self.backward_from_dz(params, grads, x, dy, dx, None, rows, threads);
    }

    /// backward() once dL/dz is known (the loss computes it directly for the output layer).
    /// `below`, the activation and (z, y) of the layer that produced x, turns the dx written
    /// into that layer's dL/dz, fused into the dx product.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_from_dz(
        &self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        dz: &[f32],
        dx: Option<&mut [f32]>,
        below: Option<(Activation, &[f32], &[f32])>,
        rows: usize,
        threads: usize,
    ) {
        if let Some(f) = self.functional() {
            let mut dx = dx;
            f.backward(params, grads, x, dz, dx.as_deref_mut(), rows, threads);
            below_grad(dx, below, self.n_in, rows, threads);
            return;
        }
        let (n_in, n_out) = (self.n_in, self.n_out);
        let beta = if self.accumulate_dw { 1.0 } else { 0.0 };
        {
            let dw = &mut grads[self.w..self.w + n_in * n_out];
            if self.tied {
                // the shared matrix V is n_out x n_in here: dV += dz^T x
                gemm(n_out, n_in, rows, 1.0, Operand::t(dz, n_out), Operand::n(x, n_in), beta, dw, n_in, threads);
            } else {
                gemm(n_in, n_out, rows, 1.0, Operand::t(x, n_in), Operand::n(dz, n_out), beta, dw, n_out, threads);
            }
        }
        column_sums(dz, n_out, &mut grads[self.b..self.b + n_out]);
        if let Some(dx) = dx {
            let w = &params[self.w..self.w + n_in * n_out];
            let wt = if self.tied { Operand::n(w, n_in) } else { Operand::t(w, n_out) };
            let ep = match below {
                Some((act, z, y)) => Epilogue::ActGrad { act, z, y },
                None => Epilogue::None,
            };
            gemm_then(rows, n_in, n_out, 1.0, Operand::n(dz, n_out), wt, 0.0, dx, n_in, threads, ep);
        }
    }
}

/// Turns the dL/dx a layer wrote into the layer below's dL/dz with that layer's activation
/// derivative: what the dense backward fuses into its dx product, for the layers that do not.
pub fn below_grad(
    dx: Option<&mut [f32]>,
    below: Option<(Activation, &[f32], &[f32])>,
    n_in: usize,
    rows: usize,
    threads: usize,
) {
    if let (Some(dx), Some((act, z, y))) = (dx, below) {
        let n = rows * n_in;
        crate::parallel::rows3(&mut dx[..n], &z[..n], &y[..n], n_in, threads, |d, z, y| act.backward_in_place(z, y, d));
    }
}

/// out[j] = sum_i m[i, j] over the rows of a row-major matrix with `cols` columns.
pub fn column_sums(m: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in m.chunks_exact(cols) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}
