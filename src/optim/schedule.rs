//! Learning-rate and momentum schedules: pure functions of the position in a training run.
//!
//! A run is one `Trainer::fit` call: its step counter `t` counts minibatch steps from 0, and its
//! epochs from 0, so a second `fit` starts the schedule over (warm-up included).

use crate::error::{Result, invalid};

/// How the learning rate decays over a run, from the configured learning rate `lr`.
/// `e` is the 0-based epoch, `t` the 0-based minibatch step of the run, `T` = epochs * minibatches
/// per epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    /// `lr` throughout.
    Constant,
    /// `lr * gamma^floor(e / every_epochs)`: multiplied by `gamma` every `every_epochs` epochs
    /// (PyTorch's StepLR).
    Step { every_epochs: usize, gamma: f32 },
    /// `lr * gamma^e`: multiplied by `gamma` at every epoch boundary (PyTorch's ExponentialLR).
    Exponential { gamma: f32 },
    /// `min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2`, evaluated per step (smoother than per
    /// epoch): `lr` at the first step, halfway at t = T / 2, reaching `min_lr` at t = T, the step
    /// after the run (Loshchilov & Hutter's SGDR without restarts).
    Cosine { min_lr: f32 },
}

/// The schedules of a run. The default changes nothing: constant learning rate, no warm-up, the
/// configured momentum from the first epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub lr: LrSchedule,
    /// Linear warm-up: steps t < warmup_steps multiply the scheduled rate by (t + 1) /
    /// warmup_steps, so the first step uses 1 / warmup_steps of it and step warmup_steps - 1
    /// all of it; the decay schedule runs on the same clock meanwhile. 0 = off.
    pub warmup_steps: usize,
    /// SGD momentum of the epochs before `momentum_switch_epoch`; from that epoch on the
    /// configured momentum applies. Hinton & Salakhutdinov (2006) use 0.5 for 5 epochs, then 0.9.
    pub momentum_initial: f32,
    /// First epoch (0-based) with the configured momentum; 0 = no momentum schedule. SGD only:
    /// Adam's beta1 enters its bias correction, which assumes it is constant.
    pub momentum_switch_epoch: usize,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule { lr: LrSchedule::Constant, warmup_steps: 0, momentum_initial: 0.5, momentum_switch_epoch: 0 }
    }
}

impl Schedule {
    /// Checks the schedule's own ranges; the trainer checks what depends on the rest of its
    /// configuration (min_lr against the learning rate, the momentum schedule against SGD).
    pub fn validate(&self) -> Result<()> {
        let gamma_ok = |g: f32| g.is_finite() && g > 0.0 && g <= 1.0;
        match self.lr {
            LrSchedule::Constant => {}
            LrSchedule::Step { every_epochs, gamma } => {
                if every_epochs == 0 {
                    return Err(invalid!("step schedule: every_epochs must be at least 1"));
                }
                if !gamma_ok(gamma) {
                    return Err(invalid!("step schedule: gamma {gamma} must be in (0, 1]"));
                }
            }
            LrSchedule::Exponential { gamma } => {
                if !gamma_ok(gamma) {
                    return Err(invalid!("exponential schedule: gamma {gamma} must be in (0, 1]"));
                }
            }
            LrSchedule::Cosine { min_lr } => {
                if !(min_lr.is_finite() && min_lr >= 0.0) {
                    return Err(invalid!("cosine schedule: min_lr {min_lr} must be finite and >= 0"));
                }
            }
        }
        if !(self.momentum_initial.is_finite() && (0.0..=1.0).contains(&self.momentum_initial)) {
            return Err(invalid!("momentum_initial {} must be in [0, 1]", self.momentum_initial));
        }
        Ok(())
    }

    /// Learning rate of step `t` (0-based, counted over the run) from the configured rate `lr`,
    /// in a run of `epochs` epochs of `steps_per_epoch` minibatches. Computed in f64 and rounded
    /// once to f32, so the constant schedule after warm-up returns `lr` exactly.
    pub fn lr_at(&self, lr: f32, t: usize, steps_per_epoch: usize, epochs: usize) -> f32 {
        let epoch = t / steps_per_epoch.max(1);
        let base = lr as f64;
        let scheduled = match self.lr {
            LrSchedule::Constant => base,
            LrSchedule::Step { every_epochs, gamma } => {
                base * (gamma as f64).powi((epoch / every_epochs.max(1)).min(i32::MAX as usize) as i32)
            }
            LrSchedule::Exponential { gamma } => base * (gamma as f64).powi(epoch.min(i32::MAX as usize) as i32),
            LrSchedule::Cosine { min_lr } => {
                let total = (steps_per_epoch * epochs).max(1) as f64;
                let progress = (t as f64 / total).min(1.0);
                let min = min_lr as f64;
                min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        };
        let warm = if t < self.warmup_steps { (t + 1) as f64 / self.warmup_steps as f64 } else { 1.0 };
        (scheduled * warm) as f32
    }

    /// SGD momentum of `epoch` (0-based) when `momentum` is the configured one.
    pub fn momentum_at(&self, epoch: usize, momentum: f32) -> f32 {
        if epoch < self.momentum_switch_epoch { self.momentum_initial } else { momentum }
    }
}
