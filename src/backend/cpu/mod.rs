//! The CPU backend: buffers are [`Lined`] (f32 values from a 64-byte line boundary), products
//! are the crate's GEMM on the thread pool (with its fused bias + activation epilogue in
//! [`Backend::dense`]), and every other primitive
//! is the formula the CPU models use: activations, losses, corruption and sampling draws, the
//! SGD and Adam passes, functional connections. So each formula lives once in Rust; the CUDA
//! kernels, compiled for the CPU through the test shim, are compared with these primitives.

#![forbid(unsafe_code)]

mod lined;
mod ops;

pub use lined::Lined;

use std::sync::{Arc, Mutex};

use super::ops::{Backend, Below, Contraction, Gemm, In, LossArgs, Op, Out, SLOTS, VaeReconArgs};
use crate::activation::Activation;
use crate::error::Result;
use crate::gemm::{Epilogue, Operand, gemm, gemm_then};
use crate::layer::Dense;
use crate::loss::Loss;

/// The CPU as a backend, on a pool of `threads` workers (or, for a shard of a step, inline on
/// the thread that calls it). Its results do not depend on the thread count (the GEMM splits
/// columns, the draws are keyed by element).
pub struct Cpu {
    threads: usize,
    /// None: one thread, the caller's.
    pool: Option<Arc<crate::pool::Pool>>,
    slots: Mutex<[f64; SLOTS]>,
}

impl Cpu {
    /// A CPU backend on `threads` workers (0: the library's default).
    pub fn new(threads: usize) -> Result<Cpu> {
        let threads = crate::pool::resolve_threads(threads);
        Ok(Cpu { threads, pool: Some(crate::pool::pool(threads)?), slots: Mutex::new([0.0; SLOTS]) })
    }

    /// One thread, the caller's: a data-parallel shard's backend.
    pub fn inline() -> Cpu {
        Cpu::on_caller(1)
    }

    /// `threads` workers of the pool the caller runs on (inference inside a pool it entered).
    pub fn on_caller(threads: usize) -> Cpu {
        Cpu { threads: threads.max(1), pool: None, slots: Mutex::new([0.0; SLOTS]) }
    }

    /// The f64 accumulators (a poisoned lock still holds plain numbers).
    fn slots(&self) -> std::sync::MutexGuard<'_, [f64; SLOTS]> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on this backend's pool (a model's whole step, so that nested parallel work stays
    /// on these workers).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }
}

impl Default for Cpu {
    /// One worker: the tests' oracle.
    fn default() -> Cpu {
        Cpu::new(1).expect("a one-thread pool")
    }
}

fn operand(v: &[f32], t: bool, ld: usize) -> Operand<'_> {
    if t { Operand::t(v, ld) } else { Operand::n(v, ld) }
}

impl Backend for Cpu {
    type Buf = Lined;
    type Ids = Vec<u32>;

    /// The step on the pool, its other workers spinning between the step's parallel regions
    /// as the process's wait policy says.
    fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.install(|| crate::parallel::with_spinning_workers(self.threads, f))
    }
    fn enter_mut<T: Send, R: Send>(this: &mut T, backend: fn(&T) -> &Cpu, f: impl FnOnce(&mut T) -> R + Send) -> R {
        let (pool, threads) = {
            let be = backend(this);
            (be.pool.clone(), be.threads)
        };
        let f = || crate::parallel::with_spinning_workers(threads, || f(this));
        match pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }
    fn shards(&self, work_rows: usize) -> Option<Vec<Cpu>> {
        let n = crate::parallel::shard_count(self.threads, work_rows);
        (n >= 2).then(|| (0..n).map(|_| Cpu::inline()).collect())
    }
    fn combine(&self, parts: &[(&Lined, f32)], out: &mut Lined, n: usize) -> Result<()> {
        let parts: Vec<(&[f32], f32)> = parts.iter().map(|&(g, w)| (&g[..n], w)).collect();
        self.install(|| crate::parallel::combine_shards(&mut out[..n], &parts));
        Ok(())
    }
    fn merge_slots(&self, from: &Cpu) -> Result<()> {
        let add = *from.slots();
        let mut s = self.slots();
        s.iter_mut().zip(add).for_each(|(s, a)| *s += a);
        Ok(())
    }
    fn alloc(&self, n: usize) -> Result<Lined> {
        Lined::zeros(n)
    }
    fn alloc_ids(&self, n: usize) -> Result<Vec<u32>> {
        crate::error::try_zeros(n)
    }
    fn upload(&self, src: &[f32], dst: Out<'_, Lined>) -> Result<()> {
        dst.0[dst.1..dst.1 + src.len()].copy_from_slice(src);
        Ok(())
    }
    fn upload_ids(&self, src: &[u32], dst: &mut Vec<u32>) -> Result<()> {
        dst[..src.len()].copy_from_slice(src);
        Ok(())
    }
    fn download(&self, src: In<'_, Lined>, dst: &mut [f32]) -> Result<()> {
        dst.copy_from_slice(&src.0[src.1..src.1 + dst.len()]);
        Ok(())
    }
    fn copy(&self, src: In<'_, Lined>, dst: Out<'_, Lined>, n: usize) -> Result<()> {
        dst.0[dst.1..dst.1 + n].copy_from_slice(&src.0[src.1..src.1 + n]);
        Ok(())
    }
    fn upload_async(
        &self,
        _slot: usize,
        n: usize,
        fill: &mut dyn FnMut(&mut [f32]),
        dst: Out<'_, Lined>,
    ) -> Result<()> {
        fill(&mut dst.0[dst.1..dst.1 + n]);
        Ok(())
    }
    fn await_upload(&self, _slot: usize) -> Result<()> {
        Ok(())
    }
    fn host_memory(&self) -> bool {
        true
    }
    fn free_memory(&self) -> Option<u64> {
        None
    }
    fn gemm(&self, g: Gemm, a: &Lined, b: &Lined, c: &mut Lined) -> Result<()> {
        g.check(a.len(), b.len(), c.len())?;
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        let (a, b) = (operand(&a[g.a_off..], g.ta, g.lda), operand(&b[g.b_off..], g.tb, g.ldb));
        let c = &mut c[g.c_off..];
        self.install(|| gemm(g.m, g.n, g.k, g.alpha, a, b, g.beta, c, g.ldc, self.threads));
        Ok(())
    }
    /// The layer's own CPU code ([`Dense::forward`]): the GEMM with its fused bias +
    /// activation epilogue, or the functional connection on the pool.
    fn layer_forward(
        &self,
        l: &Dense,
        params: &Lined,
        x: &Lined,
        z: &mut Lined,
        y: &mut Lined,
        rows: usize,
    ) -> Result<()> {
        if l.memory().is_some() {
            return Err(super::dense::memory());
        }
        let (ni, no) = (rows * l.n_in, rows * l.n_out);
        let (x, z, y) = (&x[..ni], &mut z[..no], &mut y[..no]);
        self.install(|| l.forward(params, x, rows, z, y, self.threads));
        Ok(())
    }
    fn runs(&self, _l: &Dense) -> bool {
        true
    }
    /// A dense layer's fused epilogue stores z + b only where the derivative reads z
    /// ([`Activation::z_has_bias`]); a functional or memory layer's z keeps its bias.
    fn z_has_bias(&self, l: &Dense) -> bool {
        l.activation.z_has_bias() || l.functional().is_some() || l.memory().is_some()
    }
    /// crate::contractive's own computation.
    fn exact_contraction(
        &self,
        layers: &[Dense],
        params: &Lined,
        z: &[&Lined],
        y: &[&Lined],
        rows: usize,
        lambda: f32,
    ) -> Result<Contraction<Lined>> {
        let zs: Vec<&[f32]> = z.iter().map(|v| &v[..]).collect();
        let ys: Vec<&[f32]> = y.iter().map(|v| &v[..]).collect();
        let e = self.install(|| {
            crate::contractive::ExactContraction::compute(layers, params, &zs, &ys, rows, lambda, self.threads)
        });
        let (value, dz, dw) = e.into_parts();
        let lined = |v: Vec<Vec<f32>>| v.iter().map(|v| Lined::from_slice(v)).collect::<Result<Vec<_>>>();
        Ok(Contraction { value, dz: lined(dz)?, dw: lined(dw)? })
    }
    fn runs_exact_contraction(&self) -> bool {
        true
    }
    fn vae_batch_prior_kl(
        &self,
        head: In<'_, Lined>,
        kl_el: Out<'_, Lined>,
        dhead: Out<'_, Lined>,
        rows: usize,
        latent: usize,
        const_lv: f32,
        beta: f32,
    ) -> Result<()> {
        let n = rows * latent;
        let (head, kl_el, dhead) = (&head.0[head.1..][..n], &mut kl_el.0[kl_el.1..][..n], &mut dhead.0[dhead.1..][..n]);
        crate::vae::batch_prior_kl(head, rows, latent, const_lv, beta, kl_el, dhead);
        Ok(())
    }
    fn runs_batch_prior(&self) -> bool {
        true
    }
    fn add_slot(&self, slot: super::ops::Slot, v: f64) -> Result<()> {
        self.slots()[slot as usize] += v;
        Ok(())
    }
    fn memory_forward(
        &self,
        l: &Dense,
        params: &Lined,
        x: &Lined,
        z: &mut Lined,
        y: &mut Lined,
        rows: usize,
        state: &mut Lined,
        history: Option<&mut Lined>,
    ) -> Result<()> {
        let Some(m) = l.memory() else {
            return Err(crate::error::Error::Internal("memory_forward of a layer that is not a memory layer".into()));
        };
        let (ni, no) = (rows * l.n_in, rows * l.n_out);
        let (x, z, y) = (&x[..ni], &mut z[..no], &mut y[..no]);
        let history = history.map(|h| &mut h[..m.history_len(rows)]);
        self.install(|| {
            m.forward(params, x, rows, z, state, history, self.threads);
            l.activate(params, z, y);
        });
        Ok(())
    }
    fn memory_backward(
        &self,
        l: &Dense,
        params: &Lined,
        grads: &mut Lined,
        x: &Lined,
        dz: &Lined,
        history: &Lined,
        dx: Option<&mut Lined>,
        below: Option<Below<'_, Self>>,
        rows: usize,
    ) -> Result<()> {
        let Some(m) = l.memory() else {
            return Err(crate::error::Error::Internal("memory_backward of a layer that is not a memory layer".into()));
        };
        let (ni, no) = (rows * l.n_in, rows * l.n_out);
        let (x, dz) = (&x[..ni], &dz[..no]);
        let mut dx = dx.map(|d| &mut d[..ni]);
        let below = below.map(|(a, z, y)| (a, &z[..ni], &y[..ni]));
        self.install(|| {
            m.backward(params, grads, x, dz, history, dx.as_deref_mut(), rows, self.threads);
            crate::layer::dense::below_grad(dx, below, l.n_in, rows, self.threads);
        });
        Ok(())
    }
    /// The layer's own CPU code ([`Dense::backward_from_dz`]): dW, db and dx products, the
    /// layer below's activation gradient fused into the dx product.
    fn layer_backward(
        &self,
        l: &Dense,
        params: &Lined,
        grads: &mut Lined,
        x: &Lined,
        dz: &Lined,
        _ones: &Lined,
        dx: Option<&mut Lined>,
        below: Option<Below<'_, Self>>,
        rows: usize,
    ) -> Result<()> {
        if l.memory().is_some() {
            return Err(super::dense::memory());
        }
        let (ni, no) = (rows * l.n_in, rows * l.n_out);
        let (x, dz) = (&x[..ni], &dz[..no]);
        let dx = dx.map(|d| &mut d[..ni]);
        let below = below.map(|(a, z, y)| (a, &z[..ni], &y[..ni]));
        self.install(|| l.backward_from_dz(params, grads, x, dz, dx, below, rows, self.threads));
        Ok(())
    }
    fn dense(
        &self,
        g: Gemm,
        a: &Lined,
        w: &Lined,
        z: &mut Lined,
        bias: In<'_, Lined>,
        act: Activation,
        y: Out<'_, Lined>,
    ) -> Result<()> {
        g.check(a.len(), w.len(), z.len())?;
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        let (rows, cols) = (g.m, g.n);
        let (a, w) = (operand(&a[g.a_off..], g.ta, g.lda), operand(&w[g.b_off..], g.tb, g.ldb));
        let bias = &bias.0[bias.1..bias.1 + cols];
        let zc = &mut z[g.c_off..];
        let yv = &mut y.0[y.1..y.1 + (rows - 1) * g.ldc + cols];
        let ep = Epilogue::BiasAct { bias, act, y: yv };
        self.install(|| gemm_then(rows, cols, g.k, g.alpha, a, w, g.beta, zc, g.ldc, self.threads, ep));
        Ok(())
    }
    /// Mean squared error and binary cross-entropy through the CPU's fused, vectorised
    /// pass (`Loss::forward_backward`), its sum straight into the slot; the other losses as
    /// the kernels' element by element.
    fn loss_sum(&self, a: LossArgs<'_, Self>) -> Result<()> {
        let fused = matches!(a.loss, Loss::Mse | Loss::BinaryCrossEntropy) && a.inv == 1.0 / a.n as f32;
        if !fused {
            return super::ops::loss_sum_by_elements(self, a);
        }
        let n = a.n;
        let (z, y, t) = (&a.z.0[a.z.1..a.z.1 + n], &a.y.0[a.y.1..a.y.1 + n], &a.t.0[a.t.1..a.t.1 + n]);
        let dz = &mut a.dz.0[a.dz.1..a.dz.1 + n];
        let (loss, act, cols) = (a.loss, a.act, a.cols);
        let sum = self.install(|| {
            crate::parallel::loss_rows(dz, z, y, t, cols, self.threads, |dz, z, y, t| {
                loss.forward_backward(act, z, y, t, dz, cols, n)
            })
        });
        self.slots()[a.slot as usize] += a.scale * sum;
        Ok(())
    }
    /// The CPU VAE's own row formula (`Reconstruction::nll_row`: the Bernoulli part fused and
    /// vectorised), over blocks of stacked rows on the pool.
    fn vae_recon(&self, a: VaeReconArgs<'_, Self>) -> Result<()> {
        const BLOCK: usize = 64;
        let (n, rows, d, p) = (a.n, a.rows, a.d_cols, a.p_cols);
        let rec = a.rec;
        let ne = rec.extra_params();
        let x = &a.x.0[a.x.1..a.x.1 + rows * d];
        let pre = &a.pre.0[a.pre.1..a.pre.1 + n * p];
        let extra = &a.extra.0[a.extra.1..a.extra.1 + ne];
        let dpre = &mut a.dpre.0[a.dpre.1..a.dpre.1 + n * p];
        let scale = a.scale;
        let block = |b: usize, dp: &mut [f32]| -> (f64, Vec<f64>) {
            let mut de = vec![0f64; ne];
            let mut total = 0f64;
            for (k, dr) in dp.chunks_exact_mut(p).enumerate() {
                let i = b * BLOCK + k;
                let xr = &x[(i % rows) * d..(i % rows + 1) * d];
                total += rec.nll_row(xr, &pre[i * p..(i + 1) * p], extra, Some((dr, &mut de[..], scale)));
            }
            (total, de)
        };
        let parts: Vec<(f64, Vec<f64>)> = self.install(|| {
            if self.threads > 1 && n * p >= 32 * 1024 {
                crate::parallel::map_chunks_mut([dpre], BLOCK * p, self.threads, |b, [dp]| block(b, dp))
            } else {
                dpre.chunks_mut(BLOCK * p).enumerate().map(|(b, dp)| block(b, dp)).collect()
            }
        });
        let mut de = vec![0f64; ne];
        let mut total = 0f64;
        for (t, d) in parts {
            total += t;
            de.iter_mut().zip(d).for_each(|(a, v)| *a += v);
        }
        self.slots()[a.sum.0 as usize] += a.sum.1 * total;
        if let Some(g) = a.dextra {
            for (e, v) in de.iter().enumerate() {
                g.0[g.1 + e] = *v as f32;
            }
        }
        Ok(())
    }
    fn reset_slots(&self) -> Result<()> {
        *self.slots() = [0.0; SLOTS];
        Ok(())
    }
    fn read_slots(&self) -> Result<[f64; SLOTS]> {
        Ok(*self.slots())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
    fn run(&self, op: Op<'_, Self>) -> Result<()> {
        self.install(|| ops::run(self, op))
    }
}
