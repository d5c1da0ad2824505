//! The one training loop ([`Trainer::epochs_on`]) of a model written over the backend (a
//! [`DeviceModel`]: [`DeviceNetwork`], [`DeviceVae`]): shuffling, learning-rate and momentum
//! schedules, validation, early stopping, divergence checks, progress reports, checkpoints and
//! resuming. A network's CPU fit runs it on the [`Cpu`] backend, reading minibatches from the
//! caller's rows in place; on a GPU the rows are copied to the device once (or streamed) and
//! each minibatch gathered there, and the losses are read only when a report needs them.

#![forbid(unsafe_code)]

use std::time::Instant;

use super::Cpu;
use super::minibatch::Minibatch;
use super::network::{DeviceNetwork, DeviceNoise};
use super::ops::{Backend, Slot};
use super::optimizer::Update;
use super::vae::DeviceVae;
use crate::error::{Error, Result, invalid};
use crate::network::Network;
use crate::rng::{Rng, stream};
use crate::tensor::Matrix;
use crate::train::checkpoint::LiveState;
use crate::train::trainer::{Callback, NoState, Snapshot, SnapshotWatch, checked_split};
use crate::train::{EpochRecord, Event, Progress, Trainable, Trainer};

/// A progress callback of a device fit that also gets the device model, mutably (downloading
/// its parameters, `sync`, needs that).
pub type DeviceWatch<'a, M> = Option<&'a mut dyn FnMut(&Progress, &mut M) -> bool>;

impl Trainer {
    /// [`Trainer::fit`] on the device that holds `net`. The noise of denoising, code noise and
    /// stochastic layers is drawn there (Philox), so it differs from a CPU fit's draws; without
    /// noise the two follow the same path within rounding. A divergence is detected at the end
    /// of the epoch (reading the loss after every step would stall the device), and the
    /// parameters go back to the start of that epoch as on the CPU.
    ///
    /// `net` is a [`DeviceNetwork`] or a [`DeviceVae`] (any [`DeviceModel`]). A VAE's loss is
    /// its reconstruction NLL per example and its penalty the KL (as on the CPU), its validation
    /// score the one-draw negative ELBO ([`DeviceVae::loss`]), and its step count (the KL
    /// warm-up's clock) advances with each update and goes back with the parameters when an
    /// epoch diverges.
    pub fn fit_device<M: DeviceModel>(
        &mut self,
        net: &mut M,
        data: &Matrix,
        valid: Option<&Matrix>,
        progress: Callback,
    ) -> Result<()> {
        match progress {
            Some(f) => self.fit_device_watching(net, data, valid, Some(&mut |p: &Progress, _: &mut M| f(p))),
            None => self.fit_device_watching(net, data, valid, None),
        }
    }

    /// [`Trainer::fit_device`] with a callback that also gets the device model (to download
    /// its parameters: `sync` needs it mutably).
    pub fn fit_device_watching<M: DeviceModel>(
        &mut self,
        net: &mut M,
        data: &Matrix,
        valid: Option<&Matrix>,
        mut progress: DeviceWatch<M>,
    ) -> Result<()> {
        let c = *self.config();
        if self.collective.is_some() {
            return Err(Error::Unsupported("MPI data-parallel training runs on the CPU backend only".into()));
        }
        if self.resume.is_some() || self.checkpoints.is_some() {
            return Err(Error::Unsupported(
                "checkpoints and resuming are for CPU fits only: move the model to the CPU (its parameters come along)"
                    .into(),
            ));
        }
        let (train, valid, split) = checked_split(&c, net.host_unsynced(), data, valid)?;
        let (train, valid) = match &split {
            Some(sp) => (&sp.0, Some(&sp.1)),
            None => (train, valid),
        };
        let mut watch = |at: Moment<'_, M>| Ok(progress.as_mut().is_none_or(|cb| cb(at.progress, at.net)));
        self.epochs_on(net, train, valid, &mut watch)
    }

    /// The one training loop: `net`'s epochs over the rows of `train` (checked and split),
    /// with the schedules, validation, early stopping, divergence check and progress
    /// reports of every fit. `watch` sees each report (and, at an epoch end, the run's state,
    /// for a checkpoint); false cancels. A fit the trainer resumes ([`Trainer::resume`]) starts
    /// where its checkpoint was taken: the shuffles replayed, the noise counter, early stopping
    /// and the epoch as they were.
    ///
    /// On a backend whose buffers are host memory (the CPU) each minibatch is read from `train`
    /// in place and its loss checked after its step (a divergence names the minibatch, and no
    /// update follows a non-finite loss); a device keeps the rows (or streams them) and checks
    /// the losses at the epoch's end, where reading them costs no stall.
    pub(crate) fn epochs_on<M: DeviceModel>(
        &mut self,
        net: &mut M,
        train: &Matrix,
        valid: Option<&Matrix>,
        watch: &mut dyn FnMut(Moment<'_, M>) -> Result<bool>,
    ) -> Result<()> {
        let c = *self.config();
        let host = net.host_unsynced();
        let stochastic = host.is_stochastic();
        let feature_range = host.needs_feature_range();
        let input_dim = host.input_dim();
        let rows = train.rows();
        let cols = train.cols();
        let batch = c.batch_size.min(rows.max(1));
        let batches = if c.drop_last { rows / batch } else { rows.div_ceil(batch) };
        if batches == 0 {
            return Err(invalid!("{rows} training rows make no minibatch of {}", c.batch_size));
        }
        if rows >= u32::MAX as usize || rows * cols >= i32::MAX as usize {
            return Err(invalid!("{rows} x {cols} training rows exceed what the device kernels index (2^31 elements)"));
        }
        net.reserve(batch)?;
        if feature_range {
            let (lo, hi) = crate::corruption::feature_range(train.as_slice(), input_dim);
            net.set_feature_range(&lo, &hi)?;
        }
        let on_host = net.backend().host_memory();
        // A backend whose buffers are host memory (the CPU) reads the caller's rows in place. On
        // a device the rows live there for the whole fit when they fit in 40% of its free memory
        // (or as the trainer was told); otherwise each minibatch is streamed through two pinned
        // staging buffers, its copy overlapping the previous step.
        let bytes = (rows * cols * 4) as u64;
        let resident = self
            .device_streaming
            .map(|s| !s)
            .unwrap_or_else(|| net.backend().free_memory().is_none_or(|free| bytes <= free / 5 * 2));
        let mut source: Source<M::Backend> = if on_host {
            Source::Host
        } else if resident {
            let mut dev_rows = net.backend().alloc(rows * cols)?;
            net.backend().upload(train.as_slice(), (&mut dev_rows, 0))?;
            Source::Resident(dev_rows)
        } else {
            let be = net.backend();
            let mut iota = be.alloc_ids(batch)?;
            be.upload_ids(&(0..batch as u32).collect::<Vec<_>>(), &mut iota)?;
            Source::Streamed([be.alloc(batch * cols)?, be.alloc(batch * cols)?], iota)
        };
        let fill = |order: &[u32], out: &mut [f32]| {
            for (k, &i) in order.iter().enumerate() {
                out[k * cols..(k + 1) * cols].copy_from_slice(train.row(i as usize));
            }
        };
        let mut perm = net.backend().alloc_ids(rows)?;
        let n = net.param_count();
        let mut epoch_start = net.backend().alloc(n)?;
        let mut order: Vec<u32> = (0..rows as u32).collect();
        let mut rng = Rng::new(c.seed, stream::SHUFFLE);
        let noise_seed = crate::rng::noise_key(c.seed);
        let mut run = self.resume.take().unwrap_or_default();
        if c.shuffle {
            for _ in 0..run.epochs_done {
                rng.shuffle(&mut order);
            }
        }
        let mut lr = c.learning_rate;
        let last = if run.stopped { run.epochs_done } else { c.epochs };
        for epoch in run.epochs_done..last {
            let start = Instant::now();
            let momentum = c.schedule.momentum_at(epoch, c.optimizer.momentum);
            // Frozen layers keep their parameters (and optimizer state) this epoch.
            let frozen = net.host_unsynced().frozen_ranges();
            net.start_epoch()?;
            net.backend().copy((net.params_buf(), 0), (&mut epoch_start, 0), n)?;
            let clock_start = net.clock();
            if c.shuffle {
                rng.shuffle(&mut order);
            }
            net.backend().upload_ids(&order, &mut perm)?;
            net.backend().reset_slots()?;
            let diverged = |net: &mut M, why: String| -> Result<()> {
                net.restore_params(&epoch_start)?;
                net.reset_optimizer();
                net.set_clock(clock_start);
                Err(Error::Diverged(format!(
                    "{why}; parameters restored to the start of the epoch (lower the learning rate or clip gradients)"
                )))
            };
            let mut seen = 0usize;
            // On the host: the epoch's loss and penalty sums so far (each step's is the change).
            let mut summed = 0f64;
            if let Source::Streamed(stage, _) = &mut source {
                let r = batch.min(rows);
                net.backend().upload_async(0, r * cols, &mut |out| fill(&order[..r], out), (&mut stage[0], 0))?;
            }
            for b in 0..batches {
                let first = b * batch;
                let r = batch.min(rows - first);
                lr = c.schedule.lr_at(c.learning_rate, epoch * batches + b, batches, c.epochs);
                if let Source::Streamed(stage, _) = &mut source {
                    net.backend().await_upload(b % 2)?;
                    // The next minibatch's copy runs while this step computes.
                    if b + 1 < batches {
                        let (f, n) = ((b + 1) * batch, batch.min(rows - (b + 1) * batch));
                        let dst = &mut stage[(b + 1) % 2];
                        let mut next = |out: &mut [f32]| fill(&order[f..f + n], out);
                        net.backend().upload_async((b + 1) % 2, n * cols, &mut next, (dst, 0))?;
                    }
                }
                let mb = source.minibatch(b, first, r, &perm, &order, train);
                run.noise_ctr += 1;
                let noise = stochastic.then_some(DeviceNoise { seed: noise_seed, ctr: run.noise_ctr });
                let u = Update { config: &c.optimizer, lr, momentum, clip: c.grad_clip_norm, frozen: &frozen };
                // The minibatch's step and update with the backend entered once; on the host the
                // step's loss is checked before its update.
                let perm = &perm;
                let before = summed;
                let step_loss = M::Backend::enter_mut(net, M::backend, |net| -> Result<f64> {
                    net.step(r, mb, noise, Some((perm, first)), Slot::Loss)?;
                    let loss = if on_host { sums(net)? - before } else { 0.0 };
                    if loss.is_finite() {
                        net.update(u)?;
                    }
                    Ok(loss)
                })?;
                summed += step_loss;
                if !step_loss.is_finite() {
                    let loss = step_loss / r as f64;
                    return diverged(net, format!("loss became {loss} at epoch {epoch}, minibatch {b}"));
                }
                seen += r;
                if c.progress_every > 0 && (b + 1) % c.progress_every == 0 {
                    let s = net.backend().read_slots()?;
                    let secs = start.elapsed().as_secs_f64();
                    let p = Progress {
                        event: Event::Batch,
                        epoch,
                        epochs: c.epochs,
                        batch: b + 1,
                        batches,
                        loss: s[Slot::Loss as usize] / seen as f64,
                        penalty: s[Slot::Penalty as usize] / seen as f64,
                        stage: self.stage,
                        free_energy: f64::NAN,
                        valid_loss: f64::NAN,
                        samples_per_second: seen as f64 / secs.max(1e-9),
                        seconds: secs,
                    };
                    if !watch(Moment { progress: &p, net: &mut *net, trainer: self, run: None })? {
                        return Err(Error::Cancelled);
                    }
                }
            }
            // Each minibatch's loss is taken before its step, so the epoch's last step is unseen:
            // one more pass over the last minibatch checks it, so that a blow-up there is caught
            // in this epoch, not kept as the result or as the next epoch's start. The epoch's
            // sums are read first: this pass adds nothing to them (a network's penalties go to
            // the penalty slot whatever the loss slot).
            let first = (batches - 1) * batch;
            let r = batch.min(rows - first);
            let s = net.backend().read_slots()?;
            let mb = source.minibatch(batches - 1, first, r, &perm, &order, train);
            let perm = &perm;
            M::Backend::enter_mut(net, M::backend, |net| net.step(r, mb, None, Some((perm, first)), Slot::Scratch))?;
            let check = net.backend().read_slots()?[Slot::Scratch as usize];
            let train_secs = start.elapsed().as_secs_f64();
            let (loss, penalty) = (s[Slot::Loss as usize] / seen as f64, s[Slot::Penalty as usize] / seen as f64);
            if !(loss + penalty).is_finite() {
                return diverged(net, format!("loss became {} in epoch {epoch}", loss + penalty));
            }
            if !check.is_finite() {
                let loss = check / r as f64;
                return diverged(net, format!("loss became {loss} after the last minibatch of epoch {epoch}"));
            }
            let valid_loss = match valid {
                Some(v) if v.rows() > 0 => M::Backend::enter_mut(net, M::backend, |net| net.loss(v))?,
                _ => f64::NAN,
            };
            let rec = EpochRecord {
                train_loss: loss,
                train_penalty: penalty,
                valid_loss,
                seconds: start.elapsed().as_secs_f64(),
                samples_per_second: seen as f64 / train_secs.max(1e-9),
                learning_rate: lr as f64,
            };
            self.history.push(rec);
            net.end_epoch();
            let mut stop = false;
            if c.early_stopping_patience > 0 && valid_loss.is_finite() {
                if run.best.as_ref().is_none_or(|(b, _)| valid_loss < *b) {
                    let mut p = run.best.take().map(|(_, p)| p).unwrap_or_default();
                    p.resize(n, 0.0);
                    net.backend().download((net.params_buf(), 0), &mut p)?;
                    run.best = Some((valid_loss, p));
                    run.since_best = 0;
                } else {
                    run.since_best += 1;
                    stop = run.since_best >= c.early_stopping_patience;
                }
            }
            run.epochs_done = epoch + 1;
            run.stopped = stop;
            let p = Progress {
                event: Event::EpochEnd,
                epoch,
                epochs: c.epochs,
                batch: batches,
                batches,
                loss,
                penalty,
                stage: self.stage,
                free_energy: f64::NAN,
                valid_loss,
                samples_per_second: rec.samples_per_second,
                seconds: rec.seconds,
            };
            if !watch(Moment { progress: &p, net: &mut *net, trainer: self, run: Some(&run) })? {
                return Err(Error::Cancelled);
            }
            if stop {
                break;
            }
        }
        if let Some((_, p)) = run.best {
            net.set_params(&p)?;
        }
        net.sync()
    }
}

impl Trainer {
    /// [`Trainer::fit_snapshots`] of a network on the CPU: the model code written over the
    /// backend ([`DeviceNetwork`] on the [`Cpu`] backend, the code a GPU runs) in the one loop,
    /// with the trainer's optimizer state carried in and out, checkpoints written at epoch ends
    /// and the callback seeing the network (its parameters copied back before each report).
    /// `train` and `valid` are checked and split.
    pub(crate) fn fit_network_on_cpu(
        &mut self,
        net: &mut Network,
        train: &Matrix,
        valid: Option<&Matrix>,
        progress: &mut SnapshotWatch<Network>,
    ) -> Result<()> {
        let threads = crate::pool::resolve_threads(self.config().threads);
        let mut dev = DeviceNetwork::new(Cpu::new(threads)?, net.clone())?;
        dev.set_optimizer_state(self.optimizer.take())?;
        let prints = std::cell::OnceCell::new();
        let mut watch = |at: Moment<'_, DeviceNetwork<Cpu>>| -> Result<bool> {
            let due = match (at.run, &at.trainer.checkpoints) {
                (Some(run), Some((_, every))) => run.epochs_done % every == 0,
                _ => false,
            };
            if progress.is_none() && !due {
                return Ok(true);
            }
            at.net.sync()?;
            let model = at.net.network_unsynced();
            let snap = match at.run {
                None => Snapshot::model_only(model, NoState::MidEpoch),
                Some(run) => {
                    let optimizer = at
                        .net
                        .optimizer_state()
                        .ok_or_else(|| Error::Internal("an epoch ended without an optimizer step".into()))?;
                    let live = LiveState { trainer: at.trainer, optimizer, run, train, valid, prints: &prints };
                    Snapshot { model, state: Ok(live) }
                }
            };
            if due && let Some((path, _)) = &at.trainer.checkpoints {
                snap.save(path)?;
            }
            Ok(progress.as_mut().is_none_or(|cb| cb(at.progress, &snap)))
        };
        let result = self.epochs_on(&mut dev, train, valid, &mut watch);
        self.optimizer = dev.take_optimizer_state();
        *net = dev.into_network()?;
        result
    }
}

/// The sum of a step's losses and penalties so far (the host checks each step's).
fn sums<M: DeviceModel>(net: &M) -> Result<f64> {
    let s = net.backend().read_slots()?;
    Ok(s[Slot::Loss as usize] + s[Slot::Penalty as usize])
}

/// What the loop's `watch` sees at a progress report: the report, the model, the trainer, and
/// at an epoch end the run's state (what a checkpoint keeps of it).
pub(crate) struct Moment<'a, M> {
    pub progress: &'a Progress,
    pub net: &'a mut M,
    pub trainer: &'a Trainer,
    pub run: Option<&'a crate::train::checkpoint::RunState>,
}

/// A model resident on a device that [`Trainer::fit_device`] trains: [`DeviceNetwork`] and
/// [`DeviceVae`]. Sealed: its methods are the loop's internals.
/// Where a fit's training rows are on the device: all of them, or two staging buffers that
/// minibatches stream through (and the identity ids that move one into the pass).
enum Source<B: Backend> {
    Resident(B::Buf),
    Streamed([B::Buf; 2], B::Ids),
    /// The caller's rows, read in place ([`Backend::host_memory`]).
    Host,
}

impl<B: Backend> Source<B> {
    /// Minibatch `b`: rows `first..first + rows` of the epoch's order (`perm` on the device,
    /// `order` on the host) of `train`.
    fn minibatch<'a>(
        &'a self,
        b: usize,
        first: usize,
        rows: usize,
        perm: &'a B::Ids,
        order: &'a [u32],
        train: &'a Matrix,
    ) -> Minibatch<'a, B> {
        match self {
            Source::Resident(dev_rows) => Minibatch::Gather { src: dev_rows, ids: (perm, first) },
            Source::Streamed(stage, iota) => Minibatch::Gather { src: &stage[b % 2], ids: (iota, 0) },
            Source::Host => Minibatch::Host { src: train, order: &order[first..first + rows] },
        }
    }
}

pub trait DeviceModel: sealed::Model {}

impl<B: Backend> DeviceModel for DeviceNetwork<B> {}
impl<B: Backend> DeviceModel for DeviceVae<B> {}

pub(crate) mod sealed {
    use super::*;

    /// What the device training loop needs of a model.
    pub trait Model: Send {
        type Backend: Backend;
        /// The host model (for the data checks; its parameters may be behind the device's).
        type Host: Trainable;
        fn host_unsynced(&self) -> &Self::Host;
        fn backend(&self) -> &Self::Backend;
        fn param_count(&self) -> usize;
        fn reserve(&mut self, rows: usize) -> Result<()>;
        fn set_feature_range(&mut self, lo: &[f32], hi: &[f32]) -> Result<()>;
        /// Forward and backward of minibatch `mb`: loss sums into `loss_slot`.
        fn step(
            &mut self,
            rows: usize,
            mb: Minibatch<'_, Self::Backend>,
            noise: Option<DeviceNoise>,
            ids: Option<(&<Self::Backend as Backend>::Ids, usize)>,
            loss_slot: Slot,
        ) -> Result<()>;
        /// One optimizer update (its frozen ranges stay as they are).
        fn update(&mut self, u: Update<'_>) -> Result<()>;
        /// Called after each completed epoch (a freeze for some epochs counts down).
        fn end_epoch(&mut self) {}
        /// Called before each epoch's first step (a network's memory layers start their
        /// sequence).
        fn start_epoch(&mut self) -> Result<()> {
            Ok(())
        }
        fn params_buf(&self) -> &<Self::Backend as Backend>::Buf;
        /// Replaces the parameters on both sides.
        fn set_params(&mut self, p: &[f32]) -> Result<()>;
        fn restore_params(&mut self, src: &<Self::Backend as Backend>::Buf) -> Result<()>;
        fn reset_optimizer(&mut self);
        /// The validation score.
        fn loss(&mut self, data: &Matrix) -> Result<f64>;
        fn sync(&mut self) -> Result<()>;
        /// The count kept across steps (a VAE's KL warm-up clock), restored on divergence.
        fn clock(&self) -> u64 {
            0
        }
        fn set_clock(&mut self, _clock: u64) {}
    }

    impl<B: Backend> Model for DeviceNetwork<B> {
        type Backend = B;
        type Host = crate::network::Network;
        fn host_unsynced(&self) -> &crate::network::Network {
            self.network_unsynced()
        }
        fn backend(&self) -> &B {
            DeviceNetwork::backend(self)
        }
        fn param_count(&self) -> usize {
            DeviceNetwork::param_count(self)
        }
        fn reserve(&mut self, rows: usize) -> Result<()> {
            DeviceNetwork::reserve(self, rows)
        }
        fn set_feature_range(&mut self, lo: &[f32], hi: &[f32]) -> Result<()> {
            DeviceNetwork::set_feature_range(self, lo, hi)
        }
        fn step(
            &mut self,
            rows: usize,
            mb: Minibatch<'_, B>,
            noise: Option<DeviceNoise>,
            ids: Option<(&B::Ids, usize)>,
            slot: Slot,
        ) -> Result<()> {
            DeviceNetwork::step(self, rows, mb, noise, ids, slot)
        }
        fn update(&mut self, u: Update<'_>) -> Result<()> {
            DeviceNetwork::update(self, u)
        }
        fn end_epoch(&mut self) {
            DeviceNetwork::end_epoch(self)
        }
        fn start_epoch(&mut self) -> Result<()> {
            DeviceNetwork::start_epoch(self)
        }
        fn params_buf(&self) -> &B::Buf {
            DeviceNetwork::params_buf(self)
        }
        fn set_params(&mut self, p: &[f32]) -> Result<()> {
            DeviceNetwork::set_params(self, p)
        }
        fn restore_params(&mut self, src: &B::Buf) -> Result<()> {
            DeviceNetwork::restore_params(self, src)
        }
        fn reset_optimizer(&mut self) {
            DeviceNetwork::reset_optimizer(self)
        }
        fn loss(&mut self, data: &Matrix) -> Result<f64> {
            if self.backend().host_memory() {
                // The host network scores its rows in place (Network::loss's numbers): only
                // the parameters are copied.
                self.sync()?;
                return self.network_unsynced().valid_score(data, rayon::current_num_threads());
            }
            DeviceNetwork::loss(self, data)
        }
        fn sync(&mut self) -> Result<()> {
            DeviceNetwork::sync(self)
        }
    }

    impl<B: Backend> Model for DeviceVae<B> {
        type Backend = B;
        type Host = crate::vae::Vae;
        fn host_unsynced(&self) -> &crate::vae::Vae {
            self.vae_unsynced()
        }
        fn backend(&self) -> &B {
            DeviceVae::backend(self)
        }
        fn param_count(&self) -> usize {
            DeviceVae::param_count(self)
        }
        fn reserve(&mut self, rows: usize) -> Result<()> {
            DeviceVae::reserve(self, rows)
        }
        fn set_feature_range(&mut self, _lo: &[f32], _hi: &[f32]) -> Result<()> {
            Ok(())
        }
        fn step(
            &mut self,
            rows: usize,
            mb: Minibatch<'_, B>,
            noise: Option<DeviceNoise>,
            _ids: Option<(&B::Ids, usize)>,
            slot: Slot,
        ) -> Result<()> {
            DeviceVae::step(self, rows, mb, noise, slot)
        }
        fn update(&mut self, u: Update<'_>) -> Result<()> {
            DeviceVae::update(self, u)
        }
        fn params_buf(&self) -> &B::Buf {
            DeviceVae::params_buf(self)
        }
        fn set_params(&mut self, p: &[f32]) -> Result<()> {
            DeviceVae::set_params(self, p)
        }
        fn restore_params(&mut self, src: &B::Buf) -> Result<()> {
            DeviceVae::restore_params(self, src)
        }
        fn reset_optimizer(&mut self) {
            DeviceVae::reset_optimizer(self)
        }
        fn loss(&mut self, data: &Matrix) -> Result<f64> {
            DeviceVae::loss(self, data)
        }
        fn sync(&mut self) -> Result<()> {
            DeviceVae::sync(self)
        }
        fn clock(&self) -> u64 {
            self.steps()
        }
        fn set_clock(&mut self, clock: u64) {
            self.set_steps(clock);
        }
    }
}
