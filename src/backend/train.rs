//! The training loop of a [`DeviceNetwork`]: the CPU loop's schedule (same shuffling, learning
//! rate and momentum schedules, validation, early stopping, divergence check, progress
//! callbacks), with the whole step on the device. The training rows are copied to the device
//! once and each minibatch is gathered there by the epoch's permutation, so a step moves no
//! data across the bus; the losses are summed on the device and read only when a report needs
//! them.

use std::time::Instant;

use super::network::{DeviceNetwork, DeviceNoise};
use super::ops::{Backend, Op, Slot};
use crate::error::{Error, Result, invalid};
use crate::rng::{Rng, stream};
use crate::tensor::Matrix;
use crate::train::trainer::{Callback, checked_split};
use crate::train::{EpochRecord, Event, Progress, Trainable, Trainer};

impl Trainer {
    /// [`Trainer::fit`] on the device that holds `net`. The noise of denoising, code noise and
    /// stochastic layers is drawn there (Philox), so it differs from a CPU fit's draws; without
    /// noise the two follow the same path within rounding. A divergence is detected at the end
    /// of the epoch (reading the loss after every step would stall the device), and the
    /// parameters go back to the start of that epoch as on the CPU.
    pub fn fit_device<B: Backend>(
        &mut self,
        net: &mut DeviceNetwork<B>,
        data: &Matrix,
        valid: Option<&Matrix>,
        mut progress: Callback,
    ) -> Result<()> {
        let c = *self.config();
        if self.collective.is_some() {
            return Err(Error::Unsupported("MPI data-parallel training runs on the CPU backend only".into()));
        }
        let host = net.network_unsynced().clone();
        let (train, valid, split) = checked_split(&c, &host, data, valid)?;
        let (train, valid) = match &split {
            Some(sp) => (&sp.0, Some(&sp.1)),
            None => (train, valid),
        };
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
        let stochastic = host.is_stochastic();
        if host.needs_feature_range() {
            let (lo, hi) = crate::corruption::feature_range(train.as_slice(), host.input_dim());
            net.set_feature_range(&lo, &hi)?;
        }
        // The rows live on the device for the whole fit.
        let mut dev_rows = net.backend().alloc(rows * cols)?;
        net.backend().upload(train.as_slice(), (&mut dev_rows, 0))?;
        let mut perm = net.backend().alloc_ids(rows)?;
        let n = net.param_count();
        let mut epoch_start = net.backend().alloc(n)?;
        let mut best_params: Option<(f64, B::Buf)> = None;
        let mut since_best = 0;
        let mut order: Vec<u32> = (0..rows as u32).collect();
        let mut rng = Rng::new(c.seed, stream::SHUFFLE);
        let noise_seed = c.seed ^ 0x6E6F_6973_6500_0000;
        let mut ctr = 0u64;
        let mut lr = c.learning_rate;
        for epoch in 0..c.epochs {
            let start = Instant::now();
            let momentum = c.schedule.momentum_at(epoch, c.optimizer.momentum);
            net.backend().copy((net.params_buf(), 0), (&mut epoch_start, 0), n)?;
            if c.shuffle {
                rng.shuffle(&mut order);
            }
            net.backend().upload_ids(&order, &mut perm)?;
            net.backend().reset_slots()?;
            let mut seen = 0usize;
            for b in 0..batches {
                let first = b * batch;
                let r = batch.min(rows - first);
                lr = c.schedule.lr_at(c.learning_rate, epoch * batches + b, batches, c.epochs);
                net.gather(&dev_rows, (&perm, first), r, cols)?;
                ctr += 1;
                let noise = stochastic.then_some(DeviceNoise { seed: noise_seed, ctr });
                net.step(r, noise, Some((&perm, first)), Slot::Loss)?;
                net.update(&c.optimizer, lr, momentum, c.grad_clip_norm)?;
                seen += r;
                if c.progress_every > 0
                    && (b + 1) % c.progress_every == 0
                    && let Some(cb) = progress.as_mut()
                {
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
                    if !cb(&p) {
                        return Err(Error::Cancelled);
                    }
                }
            }
            // As on the CPU: one more pass over the last minibatch sees the epoch's last step.
            let first = (batches - 1) * batch;
            let r = batch.min(rows - first);
            net.step(r, None, Some((&perm, first)), Slot::Scratch)?;
            let s = net.backend().read_slots()?;
            let train_secs = start.elapsed().as_secs_f64();
            let (loss, penalty) = (s[Slot::Loss as usize] / seen as f64, s[Slot::Penalty as usize] / seen as f64);
            if !(loss + penalty).is_finite() || !s[Slot::Scratch as usize].is_finite() {
                net.restore_params(&epoch_start)?;
                net.reset_optimizer();
                return Err(Error::Diverged(format!(
                    "loss became {} in epoch {epoch} on the device; parameters restored to the start of the epoch (lower the learning rate or clip gradients)",
                    loss + penalty
                )));
            }
            let valid_loss = match valid {
                Some(v) if v.rows() > 0 => net.loss(v)?,
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
            let mut stop = false;
            if c.early_stopping_patience > 0 && valid_loss.is_finite() {
                if best_params.as_ref().is_none_or(|(b, _)| valid_loss < *b) {
                    let mut buf = match best_params.take() {
                        Some((_, buf)) => buf,
                        None => net.backend().alloc(n)?,
                    };
                    net.backend().copy((net.params_buf(), 0), (&mut buf, 0), n)?;
                    best_params = Some((valid_loss, buf));
                    since_best = 0;
                } else {
                    since_best += 1;
                    stop = since_best >= c.early_stopping_patience;
                }
            }
            if let Some(cb) = progress.as_mut() {
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
                if !cb(&p) {
                    return Err(Error::Cancelled);
                }
            }
            if stop {
                break;
            }
        }
        if let Some((_, p)) = best_params {
            net.restore_params(&p)?;
        }
        net.sync()
    }
}

impl<B: Backend> DeviceNetwork<B> {
    /// Gathers minibatch rows `ids[first..first + rows]` of device-resident data into the pass.
    pub(crate) fn gather(&mut self, src: &B::Buf, ids: (&B::Ids, usize), rows: usize, cols: usize) -> Result<()> {
        let (be, x, _) = self.batch_mut();
        be.run(Op::GatherRows { src: (src, 0), ids, dst: (x, 0), rows, cols })
    }
}
