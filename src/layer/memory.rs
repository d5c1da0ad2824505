//! The memory function of Cai et al. (2017) (the author's `Memory-Blocks/memoryblock.py`): every
//! connection i -> j is a one-unit tanh recurrence with its own state,
//! m_ij(t) = tanh(a_ij x_i(t) + c_ij m_ij(t−1) + d_ij), and z_j(t) = Σ_i m_ij(t) + b_j.
//!
//! The rows of a batch are consecutive time steps. The state (n_in × n_out, zero at the start of
//! a sequence) lives in a caller-owned buffer, so it persists across calls as the author's layer
//! keeps it across samples. Gradients are truncated to one step, as in the reference: nothing flows
//! through m(t−1). With g = 1 − m(t)²: ∂a = δ x g, ∂c = δ m(t−1) g, ∂d = δ g, e_i = Σ_j δ_j a_ij g.
//!
//! The forward saves m(t−1) of every row in a caller-provided history (rows·n_in·n_out floats;
//! skipped for inference) and the backward recomputes m(t) from it: one tanh per connection and
//! row is cheaper than storing both states, and the previous state cannot be recomputed without
//! replaying the sequence from its start.
//!
//! Parameters: planes a, c, d ([3][n_in][n_out]) then the bias (n_out). Both passes split the
//! inputs into fixed blocks of [`BLOCK`] (not tied to the thread count), so results are the same
//! bits for any thread count.

use super::functional::{input_blocks, lane_sum, tanh_fast, transpose_into};
use crate::rng::Rng;

/// Inputs per task. The forward's per-block partial sums of z are added in block order, so the
/// block size (not the thread count) fixes the order of the sum over i.
pub const BLOCK: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    pub n_in: usize,
    pub n_out: usize,
    /// Offset of the a, c, d planes in the parameter buffer.
    pub p: usize,
    /// Offset of the bias.
    pub b: usize,
}

impl Memory {
    /// A layer whose planes start at `p` and bias follows them.
    pub fn new(n_in: usize, n_out: usize, p: usize) -> Memory {
        Memory { n_in, n_out, p, b: p + 3 * n_in * n_out }
    }

    pub fn own_params(&self) -> usize {
        3 * self.n_in * self.n_out + self.n_out
    }

    /// Floats of the recurrent state (n_in × n_out, row-major).
    pub fn state_len(&self) -> usize {
        self.n_in * self.n_out
    }

    /// Floats of the history a training forward saves for `rows` rows. Its layout is
    /// [n_in][rows][n_out] (input-major, so each task's part is contiguous).
    pub fn history_len(&self, rows: usize) -> usize {
        rows * self.n_in * self.n_out
    }

    /// a, c, d ~ U(−0.1, 0.1), bias 0.
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        for v in &mut params[self.p..self.b] {
            *v = -0.1 + 0.2 * rng.uniform();
        }
        params[self.b..self.b + self.n_out].fill(0.0);
    }

    /// Runs `rows` time steps: x rows × n_in, z rows × n_out. `state` holds m(t−1) of the first
    /// row and is left holding m of the last; `history` (history_len(rows), for training)
    /// receives m(t−1) of every row.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        x: &[f32],
        rows: usize,
        z: &mut [f32],
        state: &mut [f32],
        history: Option<&mut [f32]>,
        threads: usize,
    ) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let plane = n_in * n_out;
        if n_out == 0 || rows == 0 {
            return;
        }
        let (x, z) = (&x[..rows * n_in], &mut z[..rows * n_out]);
        let abc = &params[self.p..self.p + 3 * plane];
        let bias = &params[self.b..self.b + n_out];
        let state = &mut state[..plane];
        let blocks = n_in.div_ceil(BLOCK);
        let mut parts = vec![0f32; blocks * rows * n_out];
        let mut jobs = Vec::with_capacity(blocks);
        {
            let mut hist_blocks = history.map(|h| h[..rows * plane].chunks_mut(BLOCK * rows * n_out));
            for ((t, st), part) in state.chunks_mut(BLOCK * n_out).enumerate().zip(parts.chunks_mut(rows * n_out)) {
                let h: &mut [f32] = match hist_blocks.as_mut() {
                    Some(it) => it.next().expect("one block per task"),
                    None => &mut [],
                };
                jobs.push((t * BLOCK, st, h, part));
            }
        }
        let run = |(i0, st, h, part): (usize, &mut [f32], &mut [f32], &mut [f32])| {
            forward_wide(abc, x, n_in, n_out, rows, i0, st, h, part)
        };
        crate::parallel::for_each_job(jobs, threads, run);
        for (r, zr) in z.chunks_exact_mut(n_out).enumerate() {
            zr.fill(0.0);
            for part in parts.chunks_exact(rows * n_out) {
                for (o, v) in zr.iter_mut().zip(&part[r * n_out..(r + 1) * n_out]) {
                    *o += v;
                }
            }
            for (o, b) in zr.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }

    /// Given dz = dL/dz and the history the forward saved, overwrites da, dc, dd, db in `grads`
    /// (one-step truncated, summed over rows) and, when given, writes dx = e.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        dz: &[f32],
        history: &[f32],
        dx: Option<&mut [f32]>,
        rows: usize,
        threads: usize,
    ) {
        let (n_in, n_out) = (self.n_in, self.n_out);
        let plane = n_in * n_out;
        let (x, dz) = (&x[..rows * n_in], &dz[..rows * n_out]);
        super::dense::column_sums(dz, n_out, &mut grads[self.b..self.b + n_out]);
        if n_in == 0 || n_out == 0 || rows == 0 {
            grads[self.p..self.p + 3 * plane].fill(0.0);
            if let Some(dx) = dx {
                dx[..rows * n_in].fill(0.0);
            }
            return;
        }
        let abc = &params[self.p..self.p + 3 * plane];
        let history = &history[..rows * plane];
        let mut dxt = vec![0f32; if dx.is_some() { n_in * rows } else { 0 }];
        let jobs = input_blocks(&mut grads[self.p..self.p + 3 * plane], plane, n_out, BLOCK, &mut dxt, rows);
        let run = |(i0, g, d): (usize, [&mut [f32]; 3], &mut [f32])| {
            backward_wide(abc, x, dz, history, n_in, n_out, rows, i0, g, d)
        };
        crate::parallel::for_each_job(jobs, threads, run);
        if let Some(dx) = dx {
            transpose_into(&dxt, n_in, rows, &mut dx[..rows * n_in]);
        }
    }
}

/// Inputs i0.. (as many as `state` holds rows of n_out): steps every row, writing this block's
/// Σ_i m_ij(t) into `part` (rows × n_out) and m(t−1) into `hist` (empty: not saved).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_block(
    abc: &[f32],
    x: &[f32],
    n_in: usize,
    n_out: usize,
    rows: usize,
    i0: usize,
    state: &mut [f32],
    hist: &mut [f32],
    part: &mut [f32],
) {
    let plane = n_in * n_out;
    let count = state.len() / n_out;
    part.fill(0.0);
    for r in 0..rows {
        let zr = &mut part[r * n_out..(r + 1) * n_out];
        for li in 0..count {
            let i = i0 + li;
            let xi = x[r * n_in + i];
            let m = &mut state[li * n_out..(li + 1) * n_out];
            if !hist.is_empty() {
                hist[(li * rows + r) * n_out..(li * rows + r + 1) * n_out].copy_from_slice(m);
            }
            let row = i * n_out..(i + 1) * n_out;
            let (a, c, d) = (&abc[row.clone()], &abc[plane..][row.clone()], &abc[2 * plane..][row]);
            for ((((m, z), a), c), d) in m.iter_mut().zip(zr.iter_mut()).zip(a).zip(c).zip(d) {
                *m = tanh_fast(a * xi + c * *m + d);
                *z += *m;
            }
        }
    }
}

crate::simd::multiversion!(fn forward_wide(abc: &[f32], x: &[f32], n_in: usize, n_out: usize, rows: usize, i0: usize, state: &mut [f32], hist: &mut [f32], part: &mut [f32]) => forward_block);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_block(
    abc: &[f32],
    x: &[f32],
    dz: &[f32],
    history: &[f32],
    n_in: usize,
    n_out: usize,
    rows: usize,
    i0: usize,
    g: [&mut [f32]; 3],
    dxt: &mut [f32],
) {
    let plane = n_in * n_out;
    let [ga, gc, gd] = g;
    let count = ga.len() / n_out;
    let mut e = vec![0f32; n_out];
    for li in 0..count {
        let i = i0 + li;
        let row = i * n_out..(i + 1) * n_out;
        let (a, c, d) = (&abc[row.clone()], &abc[plane..][row.clone()], &abc[2 * plane..][row]);
        let out = li * n_out..(li + 1) * n_out;
        let (ga, gc, gd) = (&mut ga[out.clone()], &mut gc[out.clone()], &mut gd[out]);
        ga.fill(0.0);
        gc.fill(0.0);
        gd.fill(0.0);
        for r in 0..rows {
            let xi = x[r * n_in + i];
            let dr = &dz[r * n_out..(r + 1) * n_out];
            let prev = &history[(i * rows + r) * n_out..(i * rows + r + 1) * n_out];
            for ((((((((e, dv), p), a), c), d), ga), gc), gd) in e
                .iter_mut()
                .zip(dr)
                .zip(prev)
                .zip(a)
                .zip(c)
                .zip(d)
                .zip(ga.iter_mut())
                .zip(gc.iter_mut())
                .zip(gd.iter_mut())
            {
                let m = tanh_fast(a * xi + c * p + d);
                let q = dv * (1.0 - m * m);
                *ga += q * xi;
                *gc += q * p;
                *gd += q;
                *e = q * a;
            }
            if !dxt.is_empty() {
                dxt[li * rows + r] = lane_sum(&mut e);
            }
        }
    }
}

crate::simd::multiversion!(fn backward_wide(abc: &[f32], x: &[f32], dz: &[f32], history: &[f32], n_in: usize, n_out: usize, rows: usize, i0: usize, g: [&mut [f32]; 3], dxt: &mut [f32]) => backward_block);
