//! Restricted Boltzmann machines trained by contrastive divergence (CD-k, Hinton 2002) or
//! persistent CD (Tieleman 2008), as Hinton & Salakhutdinov (2006) pretrain their deep
//! autoencoder (rbm.m, rbmhidlinear.m).
//!
//! Units: Bernoulli (p = sigmoid(input)) or Gaussian with unit variance (mean = input). The
//! energy of a Bernoulli-Bernoulli RBM is E(v, h) = -v.b_v - h.b_h - v W h; a Gaussian visible
//! unit adds (v_i - b_i)^2 / 2 in place of -v_i b_i, a Gaussian hidden unit h_j^2 / 2.
//!
//! As in rbm.m: positive statistics use hidden probabilities; the hidden states that drive the
//! reconstruction are sampled; the reconstruction uses visible probabilities (means), and so do
//! the negative statistics. Parameters: W (n_v x n_h, row-major), then b_h, then b_v.

#![forbid(unsafe_code)]

use std::time::Instant;

use crate::activation::{Activation, softplus};
use crate::backend::Cpu;
use crate::backend::ops::{Backend, Gemm, Op, Slot};
use crate::backend::optimizer::{DeviceOptimizer, Update, optimizer_update};
use crate::error::{Error, Result, invalid, shape, try_zeros};
use crate::gemm::{Epilogue, Operand, gemm, gemm_then};
use crate::layer::Stochastic;
use crate::rng::{Rng, stream};
use crate::tensor::Matrix;
use crate::train::trainer::{Event, Progress, Stage, TrainConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bernoulli,
    /// Linear with unit-variance Gaussian noise.
    Gaussian,
}

impl Unit {
    pub(crate) fn activation(self) -> Activation {
        match self {
            Unit::Bernoulli => Activation::Sigmoid,
            Unit::Gaussian => Activation::Identity,
        }
    }
    /// The unit type matching a layer's activation.
    pub fn of(act: Activation) -> Option<Unit> {
        match act {
            Activation::Sigmoid => Some(Unit::Bernoulli),
            Activation::Identity => Some(Unit::Gaussian),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RbmConfig {
    /// Gibbs steps per update (CD-k).
    pub k: usize,
    /// Persistent CD: the negative chains carry over between minibatches.
    pub persistent: bool,
    /// An RBM with a Gaussian (linear) hidden layer learns at this multiple of the learning
    /// rate: Hinton & Salakhutdinov's top RBM (rbmhidlinear.m) uses 0.001 where the others use
    /// 0.1, since linear units' unbounded states make larger steps unstable.
    pub gaussian_lr_scale: f32,
}

impl Default for RbmConfig {
    fn default() -> Self {
        RbmConfig { k: 1, persistent: false, gaussian_lr_scale: 0.01 }
    }
}

#[derive(Clone, Debug)]
pub struct Rbm {
    pub n_visible: usize,
    pub n_hidden: usize,
    pub visible: Unit,
    pub hidden: Unit,
    params: Vec<f32>,
}

/// One epoch's statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RbmEpoch {
    /// Squared error per element between the data and its one-step reconstruction (mean
    /// visible given sampled hidden), over the epoch's minibatches before each update.
    pub reconstruction_error: f64,
    /// Mean free energy of the training rows at the epoch's end.
    pub free_energy: f64,
    pub seconds: f64,
}

impl Rbm {
    /// Weights 0.1 N(0, 1) and zero biases, as rbm.m.
    pub fn new(n_visible: usize, n_hidden: usize, visible: Unit, hidden: Unit, seed: u64) -> Result<Rbm> {
        if n_visible == 0 || n_hidden == 0 {
            return Err(invalid!("an RBM needs visible and hidden units ({n_visible} x {n_hidden})"));
        }
        let nw = crate::tensor::checked_len(n_visible, n_hidden)?;
        let mut params = try_zeros(nw + n_hidden + n_visible)?;
        let mut rng = Rng::new(seed, stream::INIT);
        params[..nw].iter_mut().for_each(|w| *w = 0.1 * rng.normal());
        Ok(Rbm { n_visible, n_hidden, visible, hidden, params })
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// Replaces the parameters (W, then b_h, then b_v).
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        if p.len() != self.params.len() {
            return Err(shape!("{} parameters given, the RBM has {}", p.len(), self.params.len()));
        }
        self.params.copy_from_slice(p);
        Ok(())
    }
    pub fn weights(&self) -> &[f32] {
        &self.params[..self.n_visible * self.n_hidden]
    }
    pub fn hidden_bias(&self) -> &[f32] {
        let nw = self.n_visible * self.n_hidden;
        &self.params[nw..nw + self.n_hidden]
    }
    pub fn visible_bias(&self) -> &[f32] {
        &self.params[self.n_visible * self.n_hidden + self.n_hidden..]
    }

    /// Hidden means (probabilities or linear means) given visible rows: rows x n_hidden.
    pub(crate) fn hidden_mean(&self, v: &[f32], rows: usize, out: &mut [f32], z: &mut [f32], threads: usize) {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let ep = Epilogue::BiasAct { bias: self.hidden_bias(), act: self.hidden.activation(), y: out };
        gemm_then(rows, nh, nv, 1.0, Operand::n(v, nv), Operand::n(self.weights(), nh), 0.0, z, nh, threads, ep);
    }

    /// Visible means given hidden rows: rows x n_visible.
    pub(crate) fn visible_mean(&self, h: &[f32], rows: usize, out: &mut [f32], z: &mut [f32], threads: usize) {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let ep = Epilogue::BiasAct { bias: self.visible_bias(), act: self.visible.activation(), y: out };
        gemm_then(rows, nv, nh, 1.0, Operand::n(h, nh), Operand::t(self.weights(), nh), 0.0, z, nv, threads, ep);
    }

    /// Free energy of each row: F(v) = -log sum_h exp(-E(v, h)), up to the Gaussian constants.
    pub fn free_energy(&self, x: &Matrix) -> Result<Vec<f64>> {
        if x.cols() != self.n_visible {
            return Err(shape!("{} columns, the RBM has {} visible units", x.cols(), self.n_visible));
        }
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let mut out = Vec::with_capacity(x.rows());
        let mut z = try_zeros(nh)?;
        for row in x.as_slice().chunks_exact(nv) {
            gemm(1, nh, nv, 1.0, Operand::n(row, nv), Operand::n(self.weights(), nh), 0.0, &mut z, nh, 1);
            let hidden: f64 = z
                .iter()
                .zip(self.hidden_bias())
                .map(|(&z, &b)| {
                    let x = (z + b) as f64;
                    match self.hidden {
                        Unit::Bernoulli => softplus(x as f32) as f64,
                        Unit::Gaussian => 0.5 * x * x,
                    }
                })
                .sum();
            let visible: f64 = row
                .iter()
                .zip(self.visible_bias())
                .map(|(&v, &b)| match self.visible {
                    Unit::Bernoulli => -(v as f64) * b as f64,
                    Unit::Gaussian => 0.5 * ((v - b) as f64).powi(2),
                })
                .sum();
            out.push(visible - hidden);
        }
        Ok(out)
    }

    /// Trains on the rows of `data` with `c` (epochs, batch size, optimizer and learning rate,
    /// weight decay as the weight cost, momentum schedule, seed, threads, shuffling). The
    /// callback sees `loss` = the reconstruction error so far; returning false cancels. This is
    /// [`RbmOn::fit`] on the [`Cpu`] backend: the one CD-k loop every device runs. A fit that
    /// stops early (cancelled, diverged) leaves the parameters of its last update.
    pub fn fit(
        &mut self,
        data: &Matrix,
        c: &TrainConfig,
        rbm: RbmConfig,
        stage: Stage,
        progress: Option<&mut dyn FnMut(&Progress) -> bool>,
    ) -> Result<Vec<RbmEpoch>> {
        c.validate()?;
        let mut on = RbmOn::new(Cpu::new(c.threads)?, std::mem::replace(self, self.shape_only()))?;
        let history = on.fit(data, c, rbm, stage, progress);
        *self = on.into_rbm()?;
        history
    }

    /// An empty stand-in while the parameters are on a backend.
    fn shape_only(&self) -> Rbm {
        Rbm { params: Vec::new(), ..*self }
    }
}

/// Binary samples of Bernoulli probabilities, or mean + N(0, 1) for Gaussian units (Gibbs
/// sampling from a trained RBM).
pub(crate) fn sample(unit: Unit, mean: &[f32], out: &mut [f32], rng: &mut Rng) {
    match unit {
        Unit::Bernoulli => out.iter_mut().zip(mean).for_each(|(o, &p)| *o = if rng.uniform() < p { 1.0 } else { 0.0 }),
        Unit::Gaussian => out.iter_mut().zip(mean).for_each(|(o, &m)| *o = m + rng.normal()),
    }
}

/// An RBM whose parameters live on backend `B` while it trains: the one CD-k loop of the
/// library ([`Rbm::fit`] is `RbmOn<Cpu>`; a GPU runs `RbmOn<Cuda>`). The Gibbs draws are
/// Philox draws keyed by the fit's seed, step and element, so a fit gives the same numbers on
/// any thread count.
pub struct RbmOn<B: Backend> {
    backend: B,
    rbm: Rbm,
    params: B::Buf,
    grads: B::Buf,
    opt: Option<DeviceOptimizer<B>>,
    host_stale: bool,
}

/// How a unit is sampled: Bernoulli, or mean + N(0, 1).
fn sample_kind(u: Unit) -> Stochastic {
    match u {
        Unit::Bernoulli => Stochastic::Bernoulli,
        Unit::Gaussian => Stochastic::Gaussian { sigma: 1.0 },
    }
}

#[allow(clippy::too_many_arguments)]
fn g(m: usize, n: usize, k: usize, ta: bool, tb: bool, alpha: f32, beta: f32, lda: usize, ldb: usize) -> Gemm {
    Gemm { m, n, k, ta, tb, alpha, beta, a_off: 0, lda, b_off: 0, ldb, c_off: 0, ldc: n }
}

/// The buffers of one minibatch.
struct Chain<B: Backend> {
    v0: B::Buf,
    ph0: B::Buf,
    h: B::Buf,
    vk: B::Buf,
    phk: B::Buf,
    zh: B::Buf,
    zv: B::Buf,
    scratch: B::Buf,
    el: B::Buf,
    ones: B::Buf,
    /// Persistent CD's chains and the rows they hold.
    persistent: B::Buf,
    persistent_rows: usize,
}

impl<B: Backend> RbmOn<B> {
    pub fn new(backend: B, rbm: Rbm) -> Result<RbmOn<B>> {
        let n = rbm.params().len();
        if n >= i32::MAX as usize {
            return Err(invalid!("{n} parameters exceed what one device kernel indexes"));
        }
        let mut params = backend.alloc(n)?;
        backend.upload(rbm.params(), (&mut params, 0))?;
        let grads = backend.alloc(n)?;
        Ok(RbmOn { backend, rbm, params, grads, opt: None, host_stale: false })
    }

    /// The RBM with the device's parameters.
    pub fn rbm(&mut self) -> Result<&Rbm> {
        self.sync()?;
        Ok(&self.rbm)
    }

    pub fn into_rbm(mut self) -> Result<Rbm> {
        self.sync()?;
        Ok(self.rbm)
    }

    fn sync(&mut self) -> Result<()> {
        if self.host_stale {
            let mut p = vec![0f32; self.rbm.params().len()];
            self.backend.download((&self.params, 0), &mut p)?;
            self.rbm.set_params(&p)?;
            self.host_stale = false;
        }
        Ok(())
    }

    /// CD-k (or persistent CD) on this backend, Hinton's rbm.m step for step: positive
    /// statistics from hidden probabilities, sampled hidden states driving the chain, visible
    /// means in the negative phase, weight cost on W only. The free energy is computed on the
    /// host copy at each epoch's end; a non-finite reconstruction error is found there too.
    pub fn fit(
        &mut self,
        data: &Matrix,
        c: &TrainConfig,
        cfg: RbmConfig,
        stage: Stage,
        mut progress: Option<&mut dyn FnMut(&Progress) -> bool>,
    ) -> Result<Vec<RbmEpoch>> {
        c.validate()?;
        if cfg.k == 0 || cfg.k > 1000 {
            return Err(invalid!("CD-k needs k in 1 to 1000, not {}", cfg.k));
        }
        if !(cfg.gaussian_lr_scale.is_finite() && cfg.gaussian_lr_scale > 0.0) {
            return Err(invalid!("gaussian_lr_scale {} must be positive", cfg.gaussian_lr_scale));
        }
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        if data.cols() != nv {
            return Err(shape!("training data has {} columns, the RBM has {nv} visible units", data.cols()));
        }
        data.check_finite("training data")?;
        let lr_scale = if self.rbm.hidden == Unit::Gaussian { cfg.gaussian_lr_scale } else { 1.0 };
        let rows = data.rows();
        let batch = c.batch_size.min(rows.max(1));
        let batches = if c.drop_last { rows / batch } else { rows.div_ceil(batch) };
        if batches == 0 {
            return Err(invalid!("{rows} training rows make no minibatch of {}", c.batch_size));
        }
        if rows >= u32::MAX as usize || rows * nv >= i32::MAX as usize || batch * nv.max(nh) >= i32::MAX as usize {
            return Err(invalid!("{rows} x {nv} rows exceed what the device kernels index (2^31 elements)"));
        }
        let be = &self.backend;
        let mut dev_rows = be.alloc(rows * nv)?;
        be.upload(data.as_slice(), (&mut dev_rows, 0))?;
        let mut perm = be.alloc_ids(rows)?;
        let mut ch = Chain::<B> {
            v0: be.alloc(batch * nv)?,
            ph0: be.alloc(batch * nh)?,
            h: be.alloc(batch * nh)?,
            vk: be.alloc(batch * nv)?,
            phk: be.alloc(batch * nh)?,
            zh: be.alloc(batch * nh)?,
            zv: be.alloc(batch * nv)?,
            scratch: be.alloc(batch * nv)?,
            el: be.alloc(batch * nv)?,
            ones: be.alloc(batch)?,
            persistent: be.alloc(batch * nh)?,
            persistent_rows: 0,
        };
        be.run(Op::Fill { x: (&mut ch.ones, 0), n: batch, v: 1.0 })?;
        let mut order: Vec<u32> = (0..rows as u32).collect();
        let mut rng = Rng::new(c.seed, stream::SHUFFLE);
        let seed = c.seed ^ 0x4742_4D00;
        let mut ctr = 0u64;
        let mut history = Vec::new();
        for epoch in 0..c.epochs {
            let start = Instant::now();
            let momentum = c.schedule.momentum_at(epoch, c.optimizer.momentum);
            if c.shuffle {
                rng.shuffle(&mut order);
            }
            self.backend.upload_ids(&order, &mut perm)?;
            self.backend.reset_slots()?;
            let mut seen = 0usize;
            for b in 0..batches {
                let first = b * batch;
                let r = batch.min(rows - first);
                let lr = lr_scale * c.schedule.lr_at(c.learning_rate, epoch * batches + b, batches, c.epochs);
                ctr += 1;
                let weights = || std::iter::once(0..nv * nh).collect();
                let RbmOn { backend, opt, params, grads, rbm, .. } = &mut *self;
                backend.enter(|| -> Result<()> {
                    Cd { be: &*backend, rbm, params }.cd_step(
                        grads,
                        &mut ch,
                        &dev_rows,
                        (&perm, first),
                        r,
                        cfg,
                        seed,
                        ctr,
                    )?;
                    let n = nv * nh + nh + nv;
                    let u = Update { config: &c.optimizer, lr, momentum, clip: 0.0, frozen: &[] };
                    optimizer_update(backend, opt, params, grads, n, weights, u)
                })?;
                self.host_stale = true;
                seen += r;
                if c.progress_every > 0
                    && (b + 1) % c.progress_every == 0
                    && let Some(cb) = progress.as_mut()
                {
                    let err = self.backend.read_slots()?[Slot::Loss as usize];
                    let secs = start.elapsed().as_secs_f64();
                    let loss = err / (seen * nv) as f64;
                    let p = Progress {
                        loss,
                        ..Progress::at(Event::Batch, epoch, c.epochs, b + 1, batches, stage, seen, secs)
                    };
                    if !cb(&p) {
                        return Err(Error::Cancelled);
                    }
                }
            }
            let err = self.backend.read_slots()?[Slot::Loss as usize];
            if !err.is_finite() {
                return Err(Error::Diverged(format!(
                    "RBM reconstruction error became {err} in epoch {epoch} on the device (lower the learning rate)"
                )));
            }
            let secs = start.elapsed().as_secs_f64();
            self.sync()?;
            let fe = self.rbm.free_energy(data)?;
            let rec = RbmEpoch {
                reconstruction_error: err / (seen * nv) as f64,
                free_energy: fe.iter().sum::<f64>() / fe.len().max(1) as f64,
                seconds: start.elapsed().as_secs_f64(),
            };
            if let Some(cb) = progress.as_mut() {
                let at = Progress::at(Event::EpochEnd, epoch, c.epochs, batches, batches, stage, seen, secs);
                if !cb(&Progress { loss: rec.reconstruction_error, free_energy: rec.free_energy, ..at }) {
                    return Err(Error::Cancelled);
                }
            }
            history.push(rec);
        }
        Ok(history)
    }
}

/// One step's view of the RBM on a backend: the model and its parameters there.
struct Cd<'a, B: Backend> {
    be: &'a B,
    rbm: &'a Rbm,
    params: &'a B::Buf,
}

impl<B: Backend> Cd<'_, B> {
    /// Hidden means of `v` (rows x n_visible) into `out`.
    fn hidden_mean(&self, v: &B::Buf, rows: usize, z: &mut B::Buf, out: &mut B::Buf) -> Result<()> {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        let g = g(rows, nh, nv, false, false, 1.0, 0.0, nv, nh);
        let act = self.rbm.hidden.activation();
        self.be.dense(g, v, self.params, z, (self.params, nv * nh), act, (out, 0))
    }

    /// Visible means of `h` (rows x n_hidden) into `out`.
    fn visible_mean(&self, h: &B::Buf, rows: usize, z: &mut B::Buf, out: &mut B::Buf) -> Result<()> {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        let g = g(rows, nv, nh, false, true, 1.0, 0.0, nh, nh);
        let act = self.rbm.visible.activation();
        self.be.dense(g, h, self.params, z, (self.params, nv * nh + nh), act, (out, 0))
    }

    /// One CD-k (or PCD) gradient of the minibatch `ids` into the gradient buffer, its
    /// one-step reconstruction error added to the loss slot.
    #[allow(clippy::too_many_arguments)]
    fn cd_step(
        &self,
        grads: &mut B::Buf,
        ch: &mut Chain<B>,
        rows_buf: &B::Buf,
        ids: (&B::Ids, usize),
        r: usize,
        cfg: RbmConfig,
        seed: u64,
        ctr: u64,
    ) -> Result<()> {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        let hidden = self.rbm.hidden;
        self.be.run(Op::GatherRows { src: (rows_buf, 0), ids, dst: (&mut ch.v0, 0), rows: r, cols: nv })?;
        self.hidden_mean(&ch.v0, r, &mut ch.zh, &mut ch.ph0)?;
        // The chain: from the data's sampled hidden states, or the persistent ones.
        if cfg.persistent && ch.persistent_rows == r {
            self.be.copy((&ch.persistent, 0), (&mut ch.h, 0), r * nh)?;
        } else {
            self.sample(hidden, &ch.ph0, &mut ch.h, r * nh, seed, ctr << 10)?;
        }
        for step in 0..cfg.k {
            self.visible_mean(&ch.h, r, &mut ch.zv, &mut ch.vk)?;
            if step == 0 {
                self.be.run(Op::Loss {
                    z: (&ch.zv, 0),
                    y: (&ch.vk, 0),
                    t: (&ch.v0, 0),
                    dz: (&mut ch.scratch, 0),
                    el: (&mut ch.el, 0),
                    n: r * nv,
                    loss: crate::loss::Loss::Mse,
                    act: Activation::Identity,
                    inv: 1.0,
                })?;
                self.be.run(Op::Sum { x: (&ch.el, 0), n: r * nv, slot: Slot::Loss, scale: 1.0 })?;
            }
            self.hidden_mean(&ch.vk, r, &mut ch.zh, &mut ch.phk)?;
            if step + 1 < cfg.k || cfg.persistent {
                self.sample(hidden, &ch.phk, &mut ch.h, r * nh, seed, (ctr << 10) | (step as u64 + 1))?;
            }
        }
        if cfg.persistent {
            self.be.copy((&ch.h, 0), (&mut ch.persistent, 0), r * nh)?;
            ch.persistent_rows = r;
        }
        // -(<v h>_data - <v h>_model) / r, and likewise for the biases.
        let s = 1.0 / r as f32;
        let be = &self.be;
        be.gemm(g(nv, nh, r, true, false, -s, 0.0, nv, nh), &ch.v0, &ch.ph0, grads)?;
        be.gemm(g(nv, nh, r, true, false, s, 1.0, nv, nh), &ch.vk, &ch.phk, grads)?;
        let col = |n: usize, alpha: f32, beta: f32, off: usize| Gemm {
            c_off: off,
            ..g(1, n, r, false, false, alpha, beta, r, n)
        };
        be.gemm(col(nh, s, 0.0, nv * nh), &ch.ones, &ch.phk, grads)?;
        be.gemm(col(nh, -s, 1.0, nv * nh), &ch.ones, &ch.ph0, grads)?;
        be.gemm(col(nv, s, 0.0, nv * nh + nh), &ch.ones, &ch.vk, grads)?;
        be.gemm(col(nv, -s, 1.0, nv * nh + nh), &ch.ones, &ch.v0, grads)?;
        Ok(())
    }

    fn sample(&self, unit: Unit, mean: &B::Buf, out: &mut B::Buf, n: usize, seed: u64, ctr: u64) -> Result<()> {
        self.be.run(Op::Sample { y: (mean, 0), s: (out, 0), n, kind: sample_kind(unit), seed, ctr, first: 0 })
    }
}
