//! The one training loop (`Trainer::epochs_on`) of a model written over the backend (a
//! [`DeviceModel`]: [`DeviceNetwork`], [`DeviceVae`]): shuffling, learning-rate and momentum
//! schedules, validation, early stopping, divergence checks, progress reports, checkpoints and
//! resuming, streamed rows and MPI ranks. Every fit of a network or a VAE runs it: on the CPU,
//! on the [`Cpu`] backend, reading minibatches from the caller's rows (or a stream's window) in
//! place; on a GPU the rows are copied to the device once (or streamed) and each minibatch
//! gathered there, and the losses are read only when a report needs them.

#![forbid(unsafe_code)]

use std::time::Instant;

use super::Cpu;
use super::minibatch::Minibatch;
use super::network::{DeviceNetwork, DeviceNoise};
use super::ops::{Backend, Slot};
use super::optimizer::Update;
use super::vae::DeviceVae;
use crate::error::{Error, Result, invalid};
use crate::rng::{Rng, stream};
use crate::tensor::Matrix;
use crate::train::checkpoint::LiveState;
use crate::train::trainer::{Callback, Feed, NoState, Snapshot, SnapshotWatch, checked_split};
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
        let mut g = progress.map(|f| move |p: &Progress, _: &mut M| f(p));
        self.fit_device_watching(net, data, valid, g.as_mut().map(|g| g as _))
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
        self.epochs_on(net, Feed::Memory(train), valid, &mut watch)
    }

    /// The one training loop: `net`'s epochs over the rows of `feed` (in memory, checked and
    /// split; or streamed from a [`RowSource`]), with the schedules, validation, early
    /// stopping, divergence check and progress reports of every fit. `watch` sees each report
    /// (and, at an epoch end, the run's state, for a checkpoint); false cancels. A fit the
    /// trainer resumes ([`Trainer::resume`]) starts where its checkpoint was taken: the shuffles
    /// replayed, the noise counter, early stopping and the epoch as they were.
    ///
    /// On a backend whose buffers are host memory (the CPU) each minibatch is read from the
    /// caller's rows in place (a streamed one from a window the source fills) and its loss
    /// checked after its step (a divergence names the minibatch, and no update follows a
    /// non-finite loss); a device keeps the rows (or streams them) and checks the losses at the
    /// epoch's end, where reading them costs no stall. Across processes
    /// ([`Trainer::set_collective`], host backends) each process steps on its slice of every
    /// minibatch, and the gradients and losses are summed across them before each update.
    pub(crate) fn epochs_on<M: DeviceModel>(
        &mut self,
        net: &mut M,
        mut feed: Feed<'_>,
        valid: Option<&Matrix>,
        watch: &mut dyn FnMut(Moment<'_, M>) -> Result<bool>,
    ) -> Result<()> {
        let c = *self.config();
        let host = net.host_unsynced();
        let stochastic = host.is_stochastic();
        let input_dim = host.input_dim();
        let feature_range = host.needs_feature_range();
        let on_host = net.backend().host_memory();
        let collective = self.collective.clone();
        if collective.is_some() && !on_host {
            return Err(Error::Unsupported("MPI data-parallel training runs on the CPU backend only".into()));
        }
        let (rows, cols, row0) = match &feed {
            Feed::Memory(train) => (train.rows(), train.cols(), 0),
            Feed::Stream { src, .. } => (src.rows(), src.cols(), src.first_row()),
        };
        let (batch, batches) = match &feed {
            Feed::Stream { plan: Some(p), .. } => (p.batch[p.rank], p.batches(c.drop_last)),
            _ => {
                let batch = c.batch_size.min(rows.max(1));
                (batch, if c.drop_last { rows / batch } else { rows.div_ceil(batch) })
            }
        };
        if batches == 0 {
            return Err(invalid!("{rows} training rows make no minibatch of {}", c.batch_size));
        }
        if row0 + rows >= u32::MAX as usize || rows * cols >= i32::MAX as usize {
            return Err(invalid!("{rows} x {cols} training rows exceed what the device kernels index (2^31 elements)"));
        }
        if let Feed::Stream { .. } = &feed
            && !on_host
        {
            return Err(Error::Unsupported("a streamed fit runs on the CPU backend".into()));
        }
        // Rows a step takes: in memory every process holds the global minibatch.
        net.reserve(batch)?;
        if let Feed::Memory(train) = &feed
            && feature_range
        {
            let (lo, hi) = crate::corruption::feature_range(train.as_slice(), input_dim);
            net.set_feature_range(&lo, &hi)?;
        }
        // A backend whose buffers are host memory (the CPU) reads the caller's rows in place. On
        // a device the rows live there for the whole fit when they fit in 40% of its free memory
        // (or as the trainer was told); otherwise each minibatch is streamed through two pinned
        // staging buffers, its copy overlapping the previous step.
        let bytes = (rows * cols * 4) as u64;
        let resident = self
            .device_streaming
            .map(|s| !s)
            .unwrap_or_else(|| net.backend().free_memory().is_none_or(|free| bytes <= free / 5 * 2));
        let mut source: Source<M::Backend> = match &feed {
            Feed::Stream { .. } => Source::Window(Matrix::zeros(batch, cols)?, (0..batch as u32).collect()),
            Feed::Memory(_) if on_host => Source::Host,
            Feed::Memory(train) if resident => {
                let mut dev_rows = net.backend().alloc(rows * cols)?;
                net.backend().upload(train.as_slice(), (&mut dev_rows, 0))?;
                Source::Resident(dev_rows)
            }
            Feed::Memory(_) => {
                let be = net.backend();
                let mut iota = be.alloc_ids(batch)?;
                be.upload_ids(&(0..batch as u32).collect::<Vec<_>>(), &mut iota)?;
                Source::Streamed([be.alloc(batch * cols)?, be.alloc(batch * cols)?], iota)
            }
        };
        let fill = |train: &Matrix, order: &[u32], out: &mut [f32]| {
            for (k, &i) in order.iter().enumerate() {
                out[k * cols..(k + 1) * cols].copy_from_slice(train.row(i as usize));
            }
        };
        let mut perm = net.backend().alloc_ids(rows)?;
        let n = net.param_count();
        let mut epoch_start = net.backend().alloc(n)?;
        // Allocated fallibly: a stream of 2^31 rows needs 8 GB for this order alone (an outside
        // test's sparse .npy aborted the process here).
        let mut order: Vec<u32> = crate::error::try_range(0, rows)?;
        // A stream's order holds global row indices (its source's).
        let mut stream_order: Vec<usize> = crate::error::try_range(row0, rows)?;
        let mut rng = Rng::new(c.seed, stream::SHUFFLE);
        let noise_seed = crate::rng::noise_key(c.seed);
        let mut run = self.resume.take().unwrap_or_default();
        if c.shuffle {
            for _ in 0..run.epochs_done {
                rng.shuffle(&mut order);
            }
        }
        // The gradient on the host, summed across processes before each update.
        let mut host_grads = match &collective {
            Some(_) => crate::error::try_zeros(n)?,
            None => Vec::new(),
        };
        // Rows in the stream's window (the last minibatch filled).
        let mut filled = 0usize;
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
            match &mut feed {
                Feed::Memory(_) => {
                    if c.shuffle {
                        rng.shuffle(&mut order);
                    }
                    net.backend().upload_ids(&order, &mut perm)?;
                }
                Feed::Stream { src, .. } => {
                    src.start_epoch(c.shuffle.then_some(&mut rng), &mut stream_order);
                    // The rows' global indices, which key their code noise, once an epoch.
                    order.iter_mut().zip(&stream_order).for_each(|(o, &i)| *o = i as u32);
                    net.backend().upload_ids(&order, &mut perm)?;
                }
            }
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
            // On the host: the epoch's loss and penalty sums so far (each step's is the change);
            // across processes, the sums of every process (`shared`).
            let mut summed = 0f64;
            let mut shared = (0f64, 0f64);
            if let (Feed::Memory(train), Source::Streamed(stage, _)) = (&feed, &mut source) {
                let r = batch.min(rows);
                let mut first = |out: &mut [f32]| fill(train, &order[..r], out);
                net.backend().upload_async(0, r * cols, &mut first, (&mut stage[0], 0))?;
            }
            for b in 0..batches {
                let first = b * batch;
                lr = c.schedule.lr_at(c.learning_rate, epoch * batches + b, batches, c.epochs);
                // This process's rows of the minibatch (`take`, from place `at` of its `r` rows
                // over every process, which key the draws) and where they are.
                let (mb, take, at, r, ids) = match (&mut feed, &mut source) {
                    (Feed::Stream { src, plan }, Source::Window(xb, iota)) => {
                        let take = batch.min(rows.saturating_sub(first));
                        let (at, r) = match plan {
                            Some(p) => (p.offset_at(b), p.rows_at(b)),
                            None => (0, take),
                        };
                        if take > 0 {
                            let host = net.host_unsynced();
                            let out = &mut xb.as_mut_slice()[..take * cols];
                            src.fill(&stream_order, first, out, &mut |m, what| host.check_rows(m, what))?;
                            filled = take;
                        }
                        let mb = Minibatch::Host { src: &*xb, order: &iota[..take] };
                        (mb, take, at, r, (&perm, first))
                    }
                    (Feed::Memory(train), source) => {
                        let r = batch.min(rows - first);
                        if let Source::Streamed(stage, _) = source {
                            net.backend().await_upload(b % 2)?;
                            // The next minibatch's copy runs while this step computes.
                            if b + 1 < batches {
                                let (f, n) = ((b + 1) * batch, batch.min(rows - (b + 1) * batch));
                                let dst = &mut stage[(b + 1) % 2];
                                let mut next = |out: &mut [f32]| fill(train, &order[f..f + n], out);
                                net.backend().upload_async((b + 1) % 2, n * cols, &mut next, (dst, 0))?;
                            }
                        }
                        let (a, e) = match &collective {
                            Some(col) => crate::train::collective::slice_of(r, col.rank(), col.size()),
                            None => (0, r),
                        };
                        let mb = source.minibatch(b, first + a, e - a, &perm, &order, train);
                        (mb, e - a, a, r, (&perm, first + a))
                    }
                    (Feed::Stream { .. }, _) => unreachable!("a stream reads through its window"),
                };
                run.noise_ctr += 1;
                let noise = stochastic.then_some(DeviceNoise { seed: noise_seed, ctr: run.noise_ctr });
                let u = Update { config: &c.optimizer, lr, momentum, clip: c.grad_clip_norm, frozen: &frozen };
                let step_loss = match &collective {
                    None => {
                        // The minibatch's step and update with the backend entered once; on the
                        // host the step's loss is checked before its update.
                        let before = summed;
                        M::Backend::enter_mut(net, M::backend, |net| -> Result<f64> {
                            net.step(take, mb, noise, Some(ids), Slot::Loss, (at, r))?;
                            let loss = if on_host { sums(net)? - before } else { 0.0 };
                            if loss.is_finite() {
                                net.update(u)?;
                            }
                            Ok(loss)
                        })?
                    }
                    Some(col) => {
                        // The collectives run on the calling thread (MPI's funneled threading),
                        // the products on the backend's pool. Each process's gradient is the
                        // mean over its rows: weighted by its share of the minibatch, summed.
                        let (l0, p0) = slot_pair(net)?;
                        if take > 0 {
                            M::Backend::enter_mut(net, M::backend, |net| {
                                net.step(take, mb, noise, Some(ids), Slot::Loss, (at, r))
                            })?;
                            net.backend().download((net.grads_buf(), 0), &mut host_grads)?;
                        } else {
                            host_grads.fill(0.0);
                        }
                        let w = take as f64 / r as f64;
                        host_grads.iter_mut().for_each(|g| *g *= w as f32);
                        col.all_reduce_sum_f32(&mut host_grads);
                        let (l1, p1) = slot_pair(net)?;
                        let mut lp = [l1 - l0, p1 - p0];
                        col.all_reduce_sum_f64(&mut lp);
                        shared = (shared.0 + lp[0], shared.1 + lp[1]);
                        let loss = lp[0] + lp[1];
                        if loss.is_finite() {
                            net.set_grads(&host_grads)?;
                            M::Backend::enter_mut(net, M::backend, |net| net.update(u))?;
                        }
                        loss
                    }
                };
                summed += step_loss;
                if !step_loss.is_finite() {
                    let loss = step_loss / r as f64;
                    return diverged(net, format!("loss became {loss} at epoch {epoch}, minibatch {b}"));
                }
                seen += r;
                if c.progress_every > 0 && (b + 1) % c.progress_every == 0 {
                    let (loss, penalty) = epoch_sums(net, collective.is_some(), shared)?;
                    let secs = start.elapsed().as_secs_f64();
                    let p = Progress {
                        loss: loss / seen as f64,
                        penalty: penalty / seen as f64,
                        ..Progress::at(Event::Batch, epoch, c.epochs, b + 1, batches, self.stage, seen, secs)
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
            let (loss, penalty) = epoch_sums(net, collective.is_some(), shared)?;
            let (loss, penalty) = (loss / seen as f64, penalty / seen as f64);
            let first = (batches - 1) * batch;
            let before = net.backend().read_slots()?[Slot::Scratch as usize];
            let check = match (&feed, &source) {
                (Feed::Memory(train), source) => {
                    // In memory every process checks the whole minibatch (they agree).
                    let r = batch.min(rows - first);
                    let mb = source.minibatch(batches - 1, first, r, &perm, &order, train);
                    let ids = (&perm, first);
                    M::Backend::enter_mut(net, M::backend, |net| {
                        net.step(r, mb, None, Some(ids), Slot::Scratch, (0, r))
                    })?;
                    (net.backend().read_slots()?[Slot::Scratch as usize] - before) / r as f64
                }
                (Feed::Stream { plan, .. }, Source::Window(xb, iota)) => {
                    let mut lp = [0.0];
                    if filled > 0 {
                        let mb = Minibatch::Host { src: xb, order: &iota[..filled] };
                        let ids = (&perm, first);
                        M::Backend::enter_mut(net, M::backend, |net| {
                            net.step(filled, mb, None, Some(ids), Slot::Scratch, (0, filled))
                        })?;
                        lp[0] = (net.backend().read_slots()?[Slot::Scratch as usize] - before) / filled as f64;
                    }
                    // Every process decides alike (a non-finite term makes the sum non-finite).
                    if let (Some(_), Some(col)) = (plan, &collective) {
                        col.all_reduce_sum_f64(&mut lp);
                    }
                    lp[0]
                }
                (Feed::Stream { .. }, _) => unreachable!("a stream reads through its window"),
            };
            let train_secs = start.elapsed().as_secs_f64();
            if !(loss + penalty).is_finite() {
                return diverged(net, format!("loss became {} in epoch {epoch}", loss + penalty));
            }
            if !check.is_finite() {
                return diverged(net, format!("loss became {check} after the last minibatch of epoch {epoch}"));
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
                loss,
                penalty,
                valid_loss,
                samples_per_second: rec.samples_per_second,
                ..Progress::at(Event::EpochEnd, epoch, c.epochs, batches, batches, self.stage, 0, rec.seconds)
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
    /// [`Trainer::fit_snapshots`] on the CPU: the model code written over the backend
    /// ([`DeviceNetwork`] or [`DeviceVae`] on the [`Cpu`] backend, the code a GPU runs) in the
    /// one loop, with the trainer's optimizer state carried in and out, checkpoints written at
    /// epoch ends and the callback seeing the model (its parameters copied back before each
    /// report). `train` and `valid` are checked and split.
    pub(crate) fn fit_on_cpu<M: DeviceModel<Backend = Cpu>>(
        &mut self,
        host: &mut M::Host,
        feed: Feed<'_>,
        valid: Option<&Matrix>,
        progress: &mut SnapshotWatch<M::Host>,
    ) -> Result<()> {
        let threads = crate::pool::resolve_threads(self.config().threads);
        let mut dev = M::onto(Cpu::new(threads)?, host.clone())?;
        dev.set_optimizer_state(self.optimizer.take())?;
        let prints = std::cell::OnceCell::new();
        let train = match &feed {
            Feed::Memory(train) => Some(*train),
            Feed::Stream { .. } => None,
        };
        let mut watch = |at: Moment<'_, M>| -> Result<bool> {
            let due = match (at.run, &at.trainer.checkpoints) {
                (Some(run), Some((_, every))) => run.epochs_done % every == 0,
                _ => false,
            };
            if progress.is_none() && !due {
                return Ok(true);
            }
            at.net.sync()?;
            let model = at.net.host_unsynced();
            let snap = match (at.run, train) {
                (None, _) => Snapshot::model_only(model, NoState::MidEpoch),
                (Some(_), None) => Snapshot::model_only(model, NoState::Streamed),
                (Some(run), Some(train)) => {
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
        let result = self.epochs_on(&mut dev, feed, valid, &mut watch);
        self.optimizer = dev.take_optimizer_state();
        *host = dev.into_host()?;
        result
    }
}

/// The sum of a step's losses and penalties so far (the host checks each step's).
fn sums<M: DeviceModel>(net: &M) -> Result<f64> {
    let (l, p) = slot_pair(net)?;
    Ok(l + p)
}

/// The backend's loss and penalty sums.
fn slot_pair<M: DeviceModel>(net: &M) -> Result<(f64, f64)> {
    let s = net.backend().read_slots()?;
    Ok((s[Slot::Loss as usize], s[Slot::Penalty as usize]))
}

/// The epoch's loss and penalty sums so far: the backend's, or across processes the sums of
/// every process's (`shared`).
fn epoch_sums<M: DeviceModel>(net: &M, across: bool, shared: (f64, f64)) -> Result<(f64, f64)> {
    if across { Ok(shared) } else { slot_pair(net) }
}

/// What the loop's `watch` sees at a progress report: the report, the model, the trainer, and
/// at an epoch end the run's state (what a checkpoint keeps of it).
pub(crate) struct Moment<'a, M> {
    pub progress: &'a Progress,
    pub net: &'a mut M,
    pub trainer: &'a Trainer,
    pub run: Option<&'a crate::train::checkpoint::RunState>,
}

/// Where a fit's training rows are on the device: all of them, or two staging buffers that
/// minibatches stream through (and the identity ids that move one into the pass).
enum Source<B: Backend> {
    Resident(B::Buf),
    Streamed([B::Buf; 2], B::Ids),
    /// The caller's rows, read in place ([`Backend::host_memory`]).
    Host,
    /// A streamed fit's window on the host: the minibatch a `RowSource` filled and the identity
    /// order that reads it (the rows' global indices, which key code noise, are the epoch's
    /// `perm`).
    Window(Matrix, Vec<u32>),
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
            Source::Window(xb, iota) => Minibatch::Host { src: xb, order: &iota[..rows] },
        }
    }
}

/// A model on a backend that the one loop trains ([`Trainer::fit_device`], and every CPU fit):
/// [`DeviceNetwork`] and [`DeviceVae`]. Sealed: its methods are the loop's internals.
pub trait DeviceModel: sealed::Model {}

impl<B: Backend> DeviceModel for DeviceNetwork<B> {}
impl<B: Backend> DeviceModel for DeviceVae<B> {}

pub(crate) mod sealed {
    use super::*;
    use crate::backend::optimizer::DeviceOptimizer;
    use crate::backend::resident::Resident;
    use crate::optim::Optimizer;

    /// What the device training loop needs of a model: most of it is its [`Resident`]
    /// parameters'.
    pub trait Model: Send {
        type Backend: Backend;
        /// The host model (for the data checks; its parameters may be behind the device's).
        type Host: Trainable + Clone;
        /// The host model put on `backend`.
        fn onto(backend: Self::Backend, host: Self::Host) -> Result<Self>
        where
            Self: Sized;
        /// The host model back (synced).
        fn into_host(self) -> Result<Self::Host>;
        fn resident(&self) -> &Resident<Self::Backend, Self::Host>;
        fn resident_mut(&mut self) -> &mut Resident<Self::Backend, Self::Host>;
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
            at: (usize, usize),
        ) -> Result<()>;
        /// The validation score.
        fn loss(&mut self, data: &Matrix) -> Result<f64>;
        /// One optimizer update (its frozen ranges stay as they are).
        fn update(&mut self, u: Update<'_>) -> Result<()> {
            self.resident_mut().update(u)
        }
        /// Called after each completed epoch (a freeze for some epochs counts down).
        fn end_epoch(&mut self) {}
        /// Called before each epoch's first step (a network's memory layers start their
        /// sequence).
        fn start_epoch(&mut self) -> Result<()> {
            Ok(())
        }
        /// The count kept across steps (a VAE's KL warm-up clock), restored on divergence.
        fn clock(&self) -> u64 {
            0
        }
        fn set_clock(&mut self, _clock: u64) {}

        fn host_unsynced(&self) -> &Self::Host {
            &self.resident().host
        }
        fn backend(&self) -> &Self::Backend {
            &self.resident().backend
        }
        fn param_count(&self) -> usize {
            self.resident().host.param_count()
        }
        /// The optimizer state (a trainer's, carried from fit to fit).
        fn optimizer_state(&self) -> Option<&Optimizer<<Self::Backend as Backend>::Buf>> {
            self.resident().opt.as_ref().map(|o| o.state())
        }
        fn set_optimizer_state(&mut self, opt: Option<Optimizer<<Self::Backend as Backend>::Buf>>) -> Result<()> {
            let r = self.resident_mut();
            r.opt = opt.map(|o| DeviceOptimizer::from_state(&r.backend, o)).transpose()?;
            Ok(())
        }
        fn take_optimizer_state(&mut self) -> Option<Optimizer<<Self::Backend as Backend>::Buf>> {
            self.resident_mut().opt.take().map(|o| o.into_state())
        }
        fn reset_optimizer(&mut self) {
            self.resident_mut().opt = None;
        }
        /// The gradient buffer (its step's gradient until the update).
        fn grads_buf(&self) -> &<Self::Backend as Backend>::Buf {
            &self.resident().grads
        }
        fn set_grads(&mut self, g: &[f32]) -> Result<()> {
            let r = self.resident_mut();
            r.backend.upload(g, (&mut r.grads, 0))
        }
        fn params_buf(&self) -> &<Self::Backend as Backend>::Buf {
            &self.resident().params
        }
        /// Replaces the parameters on both sides.
        fn set_params(&mut self, p: &[f32]) -> Result<()> {
            self.resident_mut().set_params(p)
        }
        fn restore_params(&mut self, src: &<Self::Backend as Backend>::Buf) -> Result<()> {
            self.resident_mut().restore(src)
        }
        fn sync(&mut self) -> Result<()> {
            self.resident_mut().sync()
        }
    }
}
