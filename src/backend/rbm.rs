//! A restricted Boltzmann machine trained by CD-k or persistent CD on a device: the CPU
//! [`Rbm::fit`] step for step (positive statistics from hidden probabilities, sampled hidden
//! states driving the chain, visible means in the negative phase, weight cost on W only),
//! through the backend's GEMM, fused bias + activation, Philox sampling and optimizer kernels.
//! The Gibbs draws are the device's (Philox), so a fit follows the CPU's in distribution, not
//! draw for draw.

#![forbid(unsafe_code)]

use std::time::Instant;

use super::network::{DeviceOptimizer, optimizer_update};
use super::ops::{Backend, Gemm, Op, Slot};
use crate::activation::Activation;
use crate::error::{Error, Result, invalid, shape};
use crate::rng::{Rng, stream};
use crate::tensor::Matrix;
use crate::train::rbm::{EpochEnd, Rbm, RbmConfig, RbmEpoch, Unit, progress_at};
use crate::train::trainer::{Event, Progress, Stage, TrainConfig};

pub struct DeviceRbm<B: Backend> {
    backend: B,
    rbm: Rbm,
    params: B::Buf,
    grads: B::Buf,
    opt: Option<DeviceOptimizer<B>>,
    host_stale: bool,
}

fn act(u: Unit) -> i32 {
    match u {
        Unit::Bernoulli => Activation::Sigmoid.code(),
        Unit::Gaussian => Activation::Identity.code(),
    }
}

/// The LATENT_STOCHASTIC_* kind that samples a unit: Bernoulli, or mean + N(0, 1).
fn sample_kind(u: Unit) -> i32 {
    match u {
        Unit::Bernoulli => 1,
        Unit::Gaussian => 2,
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

impl<B: Backend> DeviceRbm<B> {
    pub fn new(backend: B, rbm: Rbm) -> Result<DeviceRbm<B>> {
        let n = rbm.params().len();
        if n >= i32::MAX as usize {
            return Err(invalid!("{n} parameters exceed what one device kernel indexes"));
        }
        let mut params = backend.alloc(n)?;
        backend.upload(rbm.params(), (&mut params, 0))?;
        let grads = backend.alloc(n)?;
        Ok(DeviceRbm { backend, rbm, params, grads, opt: None, host_stale: false })
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

    /// Hidden means of `v` (rows x n_visible) into `out`.
    fn hidden_mean(&self, v: &B::Buf, rows: usize, z: &mut B::Buf, out: &mut B::Buf) -> Result<()> {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        self.backend.gemm(g(rows, nh, nv, false, false, 1.0, 0.0, nv, nh), v, &self.params, z)?;
        self.backend.run(Op::BiasAct {
            z: (z, 0),
            b: (&self.params, nv * nh),
            y: (out, 0),
            rows,
            cols: nh,
            act: act(self.rbm.hidden),
        })
    }

    /// Visible means of `h` (rows x n_hidden) into `out`.
    fn visible_mean(&self, h: &B::Buf, rows: usize, z: &mut B::Buf, out: &mut B::Buf) -> Result<()> {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        self.backend.gemm(g(rows, nv, nh, false, true, 1.0, 0.0, nh, nh), h, &self.params, z)?;
        self.backend.run(Op::BiasAct {
            z: (z, 0),
            b: (&self.params, nv * nh + nh),
            y: (out, 0),
            rows,
            cols: nv,
            act: act(self.rbm.visible),
        })
    }

    /// [`Rbm::fit`] on the device: the same arguments, checks, schedule, shuffling, progress
    /// reports and epoch records (the free energy is computed on the host copy at each epoch's
    /// end). A non-finite reconstruction error is found at the epoch's end.
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
                self.cd_step(&mut ch, &dev_rows, (&perm, first), r, cfg, seed, ctr)?;
                optimizer_update(
                    &self.backend,
                    &mut self.opt,
                    &mut self.params,
                    &self.grads,
                    nv * nh + nh + nv,
                    || std::iter::once(0..nv * nh).collect(),
                    &c.optimizer,
                    lr,
                    momentum,
                    0.0,
                )?;
                self.host_stale = true;
                seen += r;
                if c.progress_every > 0
                    && (b + 1) % c.progress_every == 0
                    && let Some(cb) = progress.as_mut()
                {
                    let err = self.backend.read_slots()?[Slot::Loss as usize];
                    let secs = start.elapsed().as_secs_f64();
                    let p = progress_at(
                        Event::Batch,
                        epoch,
                        c.epochs,
                        b + 1,
                        batches,
                        err / (seen * nv) as f64,
                        stage,
                        seen,
                        secs,
                    );
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
            let at = EpochEnd { epoch, epochs: c.epochs, batches, stage, seen, secs };
            history.push(at.report(err / (seen * nv) as f64, &fe, start, &mut progress)?);
        }
        Ok(history)
    }

    /// One CD-k (or PCD) gradient of the minibatch `ids` into the gradient buffer, its
    /// one-step reconstruction error added to the loss slot.
    #[allow(clippy::too_many_arguments)]
    fn cd_step(
        &mut self,
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
        self.backend.run(Op::GatherRows { src: (rows_buf, 0), ids, dst: (&mut ch.v0, 0), rows: r, cols: nv })?;
        self.hidden_mean(&ch.v0, r, &mut ch.zh, &mut ch.ph0)?;
        // The chain: from the data's sampled hidden states, or the persistent ones.
        if cfg.persistent && ch.persistent_rows == r {
            self.backend.copy((&ch.persistent, 0), (&mut ch.h, 0), r * nh)?;
        } else {
            self.sample(hidden, &ch.ph0, &mut ch.h, r * nh, seed, ctr << 10)?;
        }
        for step in 0..cfg.k {
            self.visible_mean(&ch.h, r, &mut ch.zv, &mut ch.vk)?;
            if step == 0 {
                self.backend.run(Op::Loss {
                    z: (&ch.zv, 0),
                    y: (&ch.vk, 0),
                    t: (&ch.v0, 0),
                    dz: (&mut ch.scratch, 0),
                    el: (&mut ch.el, 0),
                    n: r * nv,
                    loss: crate::loss::Loss::Mse.code(),
                    act: Activation::Identity.code(),
                    inv: 1.0,
                })?;
                self.backend.run(Op::Sum { x: (&ch.el, 0), n: r * nv, slot: Slot::Loss, scale: 1.0 })?;
            }
            self.hidden_mean(&ch.vk, r, &mut ch.zh, &mut ch.phk)?;
            if step + 1 < cfg.k || cfg.persistent {
                self.sample(hidden, &ch.phk, &mut ch.h, r * nh, seed, (ctr << 10) | (step as u64 + 1))?;
            }
        }
        if cfg.persistent {
            self.backend.copy((&ch.h, 0), (&mut ch.persistent, 0), r * nh)?;
            ch.persistent_rows = r;
        }
        // -(<v h>_data - <v h>_model) / r, and likewise for the biases.
        let s = 1.0 / r as f32;
        let be = &self.backend;
        be.gemm(g(nv, nh, r, true, false, -s, 0.0, nv, nh), &ch.v0, &ch.ph0, &mut self.grads)?;
        be.gemm(g(nv, nh, r, true, false, s, 1.0, nv, nh), &ch.vk, &ch.phk, &mut self.grads)?;
        let col = |n: usize, alpha: f32, beta: f32, off: usize| Gemm {
            c_off: off,
            ..g(1, n, r, false, false, alpha, beta, r, n)
        };
        be.gemm(col(nh, s, 0.0, nv * nh), &ch.ones, &ch.phk, &mut self.grads)?;
        be.gemm(col(nh, -s, 1.0, nv * nh), &ch.ones, &ch.ph0, &mut self.grads)?;
        be.gemm(col(nv, s, 0.0, nv * nh + nh), &ch.ones, &ch.vk, &mut self.grads)?;
        be.gemm(col(nv, -s, 1.0, nv * nh + nh), &ch.ones, &ch.v0, &mut self.grads)?;
        Ok(())
    }

    fn sample(&self, unit: Unit, mean: &B::Buf, out: &mut B::Buf, n: usize, seed: u64, ctr: u64) -> Result<()> {
        self.backend.run(Op::Sample { y: (mean, 0), s: (out, 0), n, kind: sample_kind(unit), sigma: 1.0, seed, ctr })
    }
}
