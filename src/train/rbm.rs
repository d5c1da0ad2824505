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
use crate::error::{Error, Result, invalid, shape, try_zeros};
use crate::gemm::{Epilogue, Operand, gemm, gemm_then};
use crate::optim::Optimizer;
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
    fn activation(self) -> Activation {
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
    /// callback sees `loss` = the reconstruction error so far; returning false cancels.
    pub fn fit(
        &mut self,
        data: &Matrix,
        c: &TrainConfig,
        rbm: RbmConfig,
        stage: Stage,
        mut progress: Option<&mut dyn FnMut(&Progress) -> bool>,
    ) -> Result<Vec<RbmEpoch>> {
        c.validate()?;
        if rbm.k == 0 || rbm.k > 1000 {
            return Err(invalid!("CD-k needs k in 1 to 1000, not {}", rbm.k));
        }
        if !(rbm.gaussian_lr_scale.is_finite() && rbm.gaussian_lr_scale > 0.0) {
            return Err(invalid!("gaussian_lr_scale {} must be positive", rbm.gaussian_lr_scale));
        }
        let lr_scale = if self.hidden == Unit::Gaussian { rbm.gaussian_lr_scale } else { 1.0 };
        if data.cols() != self.n_visible {
            return Err(shape!(
                "training data has {} columns, the RBM has {} visible units",
                data.cols(),
                self.n_visible
            ));
        }
        data.check_finite("training data")?;
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let rows = data.rows();
        let batch = c.batch_size.min(rows.max(1));
        let batches = if c.drop_last { rows / batch } else { rows.div_ceil(batch) };
        if batches == 0 {
            return Err(invalid!("{rows} training rows make no minibatch of {}", c.batch_size));
        }
        let threads = crate::pool::resolve_threads(c.threads);
        let pool = crate::pool::pool(threads)?;
        // Weight decay (rbm.m's weight cost) applies to W only, not the biases.
        let weights = [std::ops::Range { start: 0, end: nv * nh }];
        let mut opt = Optimizer::new(c.optimizer, self.params.len(), &weights)?;
        let mut rng = Rng::new(c.seed, stream::SHUFFLE);
        let mut gibbs = Rng::new(c.seed, stream::CORRUPTION);
        let mut order: Vec<usize> = (0..rows).collect();
        let mut xb = try_zeros(batch * nv)?;
        let (mut ph0, mut h, mut vk, mut phk) =
            (try_zeros(batch * nh)?, try_zeros(batch * nh)?, try_zeros(batch * nv)?, try_zeros(batch * nh)?);
        let (mut zv, mut zh) = (try_zeros(batch * nv)?, try_zeros(batch * nh)?);
        let mut grads = try_zeros(self.params.len())?;
        // Persistent chains start from the first minibatch's hidden samples.
        let mut chain: Option<Vec<f32>> = None;
        let mut history = Vec::new();
        for epoch in 0..c.epochs {
            let start = Instant::now();
            opt.set_momentum(c.schedule.momentum_at(epoch, c.optimizer.momentum));
            if c.shuffle {
                rng.shuffle(&mut order);
            }
            let mut err_sum = 0f64;
            let mut seen = 0usize;
            for b in 0..batches {
                let first = b * batch;
                let r = batch.min(rows - first);
                for (k, &i) in order[first..first + r].iter().enumerate() {
                    xb[k * nv..(k + 1) * nv].copy_from_slice(data.row(i));
                }
                let v0 = &xb[..r * nv];
                let lr = lr_scale * c.schedule.lr_at(c.learning_rate, epoch * batches + b, batches, c.epochs);
                let err = pool.install(|| {
                    self.hidden_mean(v0, r, &mut ph0[..r * nh], &mut zh[..r * nh], threads);
                    // The chain: from the data's sampled hidden states, or the persistent ones.
                    let start_h: &mut [f32] = &mut h[..r * nh];
                    match chain.as_ref() {
                        Some(ch) if rbm.persistent && ch.len() == r * nh => start_h.copy_from_slice(ch),
                        _ => sample(self.hidden, &ph0[..r * nh], start_h, &mut gibbs),
                    }
                    let mut err = 0f64;
                    for step in 0..rbm.k {
                        self.visible_mean(&h[..r * nh], r, &mut vk[..r * nv], &mut zv[..r * nv], threads);
                        if step == 0 {
                            err = vk[..r * nv].iter().zip(v0).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
                        }
                        self.hidden_mean(&vk[..r * nv], r, &mut phk[..r * nh], &mut zh[..r * nh], threads);
                        if step + 1 < rbm.k || rbm.persistent {
                            sample(self.hidden, &phk[..r * nh], &mut h[..r * nh], &mut gibbs);
                        }
                    }
                    if rbm.persistent {
                        chain = Some(h[..r * nh].to_vec());
                    }
                    // Gradient of the negative log-likelihood estimate:
                    // -(<v h>_data - <v h>_model) / r, and likewise for the biases.
                    let scale = 1.0 / r as f32;
                    let (gw, rest) = grads.split_at_mut(nv * nh);
                    let (gh, gv) = rest.split_at_mut(nh);
                    gemm(nv, nh, r, -scale, Operand::t(v0, nv), Operand::n(&ph0[..r * nh], nh), 0.0, gw, nh, threads);
                    gemm(
                        nv,
                        nh,
                        r,
                        scale,
                        Operand::t(&vk[..r * nv], nv),
                        Operand::n(&phk[..r * nh], nh),
                        1.0,
                        gw,
                        nh,
                        threads,
                    );
                    column_diff(&phk[..r * nh], &ph0[..r * nh], nh, scale, gh);
                    column_diff(&vk[..r * nv], v0, nv, scale, gv);
                    if err.is_finite() {
                        opt.step(&mut self.params, &grads, lr, threads);
                    }
                    err
                });
                if !err.is_finite() {
                    return Err(Error::Diverged(format!(
                        "RBM reconstruction error became {err} at epoch {epoch}, minibatch {b} (lower the learning rate)"
                    )));
                }
                err_sum += err;
                seen += r;
                if c.progress_every > 0
                    && (b + 1) % c.progress_every == 0
                    && let Some(cb) = progress.as_mut()
                {
                    let secs = start.elapsed().as_secs_f64();
                    let p = progress_at(
                        Event::Batch,
                        epoch,
                        c.epochs,
                        b + 1,
                        batches,
                        err_sum / (seen * nv) as f64,
                        stage,
                        seen,
                        secs,
                    );
                    if !cb(&p) {
                        return Err(Error::Cancelled);
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let fe = pool.install(|| self.free_energy(data))?;
            let at = EpochEnd { epoch, epochs: c.epochs, batches, stage, seen, secs };
            history.push(at.report(err_sum / (seen * nv) as f64, &fe, start, &mut progress)?);
        }
        Ok(history)
    }
}

/// Where a fit stands at an epoch's end.
pub(crate) struct EpochEnd {
    pub epoch: usize,
    pub epochs: usize,
    pub batches: usize,
    pub stage: Stage,
    pub seen: usize,
    /// Seconds of the epoch's updates.
    pub secs: f64,
}

impl EpochEnd {
    /// The epoch's record from its reconstruction error and the rows' free energies, reported
    /// to the callback (which may cancel).
    pub(crate) fn report(
        &self,
        reconstruction_error: f64,
        free_energies: &[f64],
        start: Instant,
        progress: &mut Option<&mut dyn FnMut(&Progress) -> bool>,
    ) -> Result<RbmEpoch> {
        let rec = RbmEpoch {
            reconstruction_error,
            free_energy: free_energies.iter().sum::<f64>() / free_energies.len().max(1) as f64,
            seconds: start.elapsed().as_secs_f64(),
        };
        if let Some(cb) = progress.as_mut() {
            let (e, b) = (self.epoch, self.batches);
            let mut p = progress_at(
                Event::EpochEnd,
                e,
                self.epochs,
                b,
                b,
                rec.reconstruction_error,
                self.stage,
                self.seen,
                self.secs,
            );
            p.free_energy = rec.free_energy;
            if !cb(&p) {
                return Err(Error::Cancelled);
            }
        }
        Ok(rec)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn progress_at(
    event: Event,
    epoch: usize,
    epochs: usize,
    batch: usize,
    batches: usize,
    loss: f64,
    stage: Stage,
    seen: usize,
    secs: f64,
) -> Progress {
    Progress {
        event,
        epoch,
        epochs,
        batch,
        batches,
        loss,
        penalty: 0.0,
        stage,
        valid_loss: f64::NAN,
        free_energy: f64::NAN,
        samples_per_second: seen as f64 / secs.max(1e-9),
        seconds: secs,
    }
}

/// Binary samples of Bernoulli probabilities, or mean + N(0, 1) for Gaussian units.
pub(crate) fn sample(unit: Unit, mean: &[f32], out: &mut [f32], rng: &mut Rng) {
    match unit {
        Unit::Bernoulli => out.iter_mut().zip(mean).for_each(|(o, &p)| *o = if rng.uniform() < p { 1.0 } else { 0.0 }),
        Unit::Gaussian => out.iter_mut().zip(mean).for_each(|(o, &m)| *o = m + rng.normal()),
    }
}

/// out[j] = scale * sum_rows (a[., j] - b[., j]).
fn column_diff(a: &[f32], b: &[f32], cols: usize, scale: f32, out: &mut [f32]) {
    out.fill(0.0);
    for (ra, rb) in a.chunks_exact(cols).zip(b.chunks_exact(cols)) {
        for ((o, x), y) in out.iter_mut().zip(ra).zip(rb) {
            *o += x - y;
        }
    }
    out.iter_mut().for_each(|o| *o *= scale);
}
