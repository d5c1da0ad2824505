//! C API of the trainer handle.

use std::ffi::c_void;

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::vae::latent_vae;
use super::*;
use crate::error::invalid;
use crate::optim::{LrSchedule, OptimizerConfig, OptimizerKind, Schedule};
use crate::train::{Event, Progress, Snapshot, SnapshotWatch, StageKind, TrainConfig, Trainer};

/// Trains networks with one configuration; keeps the per-epoch history and the optimizer state
/// (a second fit on the same network continues where the first stopped). One call at a time:
/// a call on a trainer while another runs (a fit's own progress callback included) is BUSY,
/// but latent_trainer_checkpoint from the fit's own progress callback.
pub struct latent_trainer {
    inner: std::sync::Mutex<Trainer>,
}

impl latent_trainer {
    pub(crate) fn new(t: Trainer) -> latent_trainer {
        latent_trainer { inner: std::sync::Mutex::new(t) }
    }
    pub(crate) fn get(&self) -> crate::Result<std::sync::MutexGuard<'_, Trainer>> {
        match self.inner.try_lock() {
            Ok(t) => Ok(t),
            Err(std::sync::TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Err(crate::error::Error::Busy(
                "the trainer is fitting: it takes no other call until the fit returns (from its progress callback, use the model's handle)".into(),
            )),
        }
    }
}

/// The defaults: 10 epochs, batch 128, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), no weight
/// decay or clipping, seed 0, all cores, shuffling on, no validation, no early stopping, a
/// constant learning rate without warm-up, no momentum schedule.
#[unsafe(no_mangle)]
pub extern "C" fn latent_train_params_default() -> latent_train_params {
    let c = TrainConfig::default();
    let o = c.optimizer;
    let s = c.schedule;
    latent_train_params {
        epochs: c.epochs as u32,
        batch_size: c.batch_size as u32,
        optimizer: o.kind.code(),
        nesterov: o.nesterov as i32,
        learning_rate: c.learning_rate as f64,
        momentum: o.momentum as f64,
        beta1: o.beta1 as f64,
        beta2: o.beta2 as f64,
        epsilon: o.epsilon as f64,
        weight_decay: o.weight_decay as f64,
        grad_clip_norm: c.grad_clip_norm as f64,
        validation_fraction: c.validation_fraction,
        seed: c.seed,
        threads: c.threads as u32,
        early_stopping_patience: c.early_stopping_patience as u32,
        shuffle: c.shuffle as i32,
        drop_last: c.drop_last as i32,
        progress_every: c.progress_every as u32,
        lr_schedule: LATENT_LR_SCHEDULE_CONSTANT,
        // Used only once a caller picks STEP, EXPONENTIAL or COSINE: PyTorch's StepLR gamma.
        lr_step_epochs: 10,
        warmup_steps: s.warmup_steps as u32,
        lr_gamma: 0.1,
        lr_min: 0.0,
        momentum_initial: s.momentum_initial as f64,
        momentum_switch_epoch: s.momentum_switch_epoch as u32,
        checkpoint_path: std::ptr::null(),
        checkpoint_every: 0,
    }
}

/// The schedule fields of `p`; lr_gamma and lr_min must be finite even when unused.
fn schedule_from_params(p: &latent_train_params) -> crate::Result<Schedule> {
    let gamma = f32_of(p.lr_gamma, "lr_gamma")?;
    let min_lr = f32_of(p.lr_min, "lr_min")?;
    let lr = match p.lr_schedule {
        LATENT_LR_SCHEDULE_CONSTANT => LrSchedule::Constant,
        LATENT_LR_SCHEDULE_STEP => LrSchedule::Step { every_epochs: p.lr_step_epochs as usize, gamma },
        LATENT_LR_SCHEDULE_EXPONENTIAL => LrSchedule::Exponential { gamma },
        LATENT_LR_SCHEDULE_COSINE => LrSchedule::Cosine { min_lr },
        s => return Err(invalid!("lr_schedule {s} is out of range (0 to 3)")),
    };
    Ok(Schedule {
        lr,
        warmup_steps: p.warmup_steps as usize,
        momentum_initial: f32_of(p.momentum_initial, "momentum_initial")?,
        momentum_switch_epoch: p.momentum_switch_epoch as usize,
    })
}

/// The training configuration of `p` for calls that take no checkpoint settings.
pub(crate) fn config_from_params(p: &latent_train_params) -> crate::Result<TrainConfig> {
    if !p.checkpoint_path.is_null() || p.checkpoint_every != 0 {
        return Err(invalid!(
            "checkpoint_path and checkpoint_every are latent_trainer_new's: this call takes no checkpoints (leave them NULL and 0)"
        ));
    }
    train_config(p)
}

fn train_config(p: &latent_train_params) -> crate::Result<TrainConfig> {
    let c = TrainConfig {
        epochs: p.epochs as usize,
        batch_size: p.batch_size as usize,
        learning_rate: f32_of(p.learning_rate, "learning_rate")?,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::from_code(p.optimizer)?,
            momentum: f32_of(p.momentum, "momentum")?,
            nesterov: flag(p.nesterov, "nesterov")?,
            beta1: f32_of(p.beta1, "beta1")?,
            beta2: f32_of(p.beta2, "beta2")?,
            epsilon: f32_of(p.epsilon, "epsilon")?,
            weight_decay: f32_of(p.weight_decay, "weight_decay")?,
        },
        schedule: schedule_from_params(p)?,
        grad_clip_norm: f32_of(p.grad_clip_norm, "grad_clip_norm")?,
        seed: p.seed,
        threads: p.threads as usize,
        validation_fraction: p.validation_fraction,
        early_stopping_patience: p.early_stopping_patience as usize,
        shuffle: flag(p.shuffle, "shuffle")?,
        drop_last: flag(p.drop_last, "drop_last")?,
        progress_every: p.progress_every as usize,
    };
    c.validate()?;
    Ok(c)
}

/// Creates a trainer; every field of `params` is validated. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_new(
    params: *const latent_train_params,
    out: *mut *mut latent_trainer,
) -> latent_status {
    let make = |p: &latent_train_params| {
        let mut t = Trainer::new(train_config(p)?)?;
        let ck = if p.checkpoint_path.is_null() {
            if p.checkpoint_every != 0 {
                return Err(invalid!("checkpoint_every {} without a checkpoint_path", p.checkpoint_every));
            }
            None
        } else {
            // SAFETY: checked non-NULL; a NUL-terminated string (the C contract).
            Some(std::path::PathBuf::from(unsafe { path(p.checkpoint_path, "checkpoint_path")? }))
        };
        t.set_checkpoints(ck, p.checkpoint_every as usize)?;
        Ok(latent_trainer::new(t))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(params, "params", out, make) }
}

/// Frees a trainer; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_free(trainer: *mut latent_trainer) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(trainer) }
}

/// Trains `net` to reconstruct the rows of `train`, or, a classifier or regression network, to
/// predict their labels or targets (latent_dataset_set_labels, latent_dataset_set_targets). `valid` (may be NULL) gives the validation
/// rows (an empty one is LATENT_STATUS_INVALID_ARGUMENT, as is a `validation_fraction` that
/// holds out no row); without it, `validation_fraction` of `train` is held out. `progress` (may be NULL) is
/// called on this thread at each epoch end (and every `progress_every` minibatches); returning
/// non-zero cancels. Cancelling (LATENT_STATUS_CANCELLED) keeps the last completed step's
/// parameters; divergence (LATENT_STATUS_DIVERGED) restores those of the epoch's start. The
/// network stays usable either way.
///
/// While the fit runs, the network and the trainer are busy. From the progress callback, calls
/// that read `net` (encode, decode, reconstruct, scores, get_params, describe, save, ...) work
/// and see the parameters of that moment: a checkpoint saved there loads as the network at that
/// epoch. Calls that would change `net` (set_params, set_threads, a nested fit, pretrain), any
/// call on `trainer`, and any call on `net` from another thread during the fit return
/// LATENT_STATUS_BUSY at once and change nothing, as do changes to `train` or `valid` (scale,
/// set_labels, set_targets, apply_scaling); latent_trainer_checkpoint is the one call on
/// `trainer` that works there (at an epoch end). Do not free `net`, `trainer` or the datasets
/// from the callback. A trainer from latent_trainer_resume_network continues the fit its
/// checkpoint interrupted (the same rows are required).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_fit(
    trainer: *mut latent_trainer,
    net: *mut latent_network,
    train: *const latent_dataset,
    valid: *const latent_dataset,
    progress: latent_progress_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let th = unsafe { arg(trainer, "trainer")? };
        let mut t = th.get()?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let (_in_fit, train, valid) = unsafe { datasets(train, valid)? };
        let mut host = n.fit()?;
        let mut c_cb = |p: &Progress, s: &Snapshot<crate::network::Network>| {
            // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
            n.lend(s.model, || super::checkpoint::lend(th, s, || unsafe { call_progress(progress, user, p) }))
        };
        let cb: SnapshotWatch<crate::network::Network> = if progress.is_some() { Some(&mut c_cb) } else { None };
        n.device.fit_dataset(&mut t, &mut host, train, valid, cb)
    })
}

/// A fit's marks on its datasets, and the training and (optional) validation datasets.
type FitData<'a> = (
    (super::dataset::InFit<'a>, Option<super::dataset::InFit<'a>>),
    &'a crate::data::Dataset,
    Option<&'a crate::data::Dataset>,
);

/// The training and (optional) validation datasets of a fit, marked as read by it: changes to
/// them (from its progress callback) are BUSY until the guards drop.
unsafe fn datasets<'a>(train: *const latent_dataset, valid: *const latent_dataset) -> Result<FitData<'a>> {
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    let train = unsafe { arg(train, "train")? };
    // SAFETY: NULL or a live object of this library (the C contract).
    let valid = unsafe { valid.as_ref() };
    Ok(((train.for_fit(), valid.map(|v| v.for_fit())), train.get(), valid.map(|v| v.get())))
}

/// Calls the C progress callback (if any); true = go on.
pub(crate) unsafe fn call_progress(progress: latent_progress_fn, user: *mut c_void, p: &Progress) -> bool {
    let Some(f) = progress else { return true };
    let c = progress_to_c(p);
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { f(user, &c) == 0 }
}

/// Trains a variational autoencoder `vae` on the rows of `train`, as latent_trainer_fit trains
/// a network (validation, progress, cancelling, divergence, and what the progress callback may
/// call, alike). Each step draws the VAE's num_samples z per row (from the trainer's seed).
/// Progress and history report `loss` = the reconstruction term E_q[-log p(x|z)] and `penalty`
/// = KL(q(z|x) || N(0, I)), both per example and unweighted, so loss + penalty is the negative
/// ELBO (DL4J's score); the validation loss is the negative ELBO per example of the validation
/// rows, with one draw per row. With the BILBO objective (latent_vae_set_objective) `penalty` is
/// BILBO's KL, 1/2 sum_j ln(1 + mean_batch mu_j^2 / s^2), the validation loss minus BILBO over
/// the validation rows, and the fit ends by fitting the prior to the training rows.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_fit_vae(
    trainer: *mut latent_trainer,
    vae: *mut latent_vae,
    train: *const latent_dataset,
    valid: *const latent_dataset,
    progress: latent_progress_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let th = unsafe { arg(trainer, "trainer")? };
        let mut t = th.get()?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let (_in_fit, train, valid) = unsafe { datasets(train, valid)? };
        let mut host = v.fit()?;
        let mut c_cb = |p: &Progress, s: &Snapshot<crate::vae::Vae>| {
            // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
            v.lend(s.model, || super::checkpoint::lend(th, s, || unsafe { call_progress(progress, user, p) }))
        };
        let cb: SnapshotWatch<crate::vae::Vae> = if progress.is_some() { Some(&mut c_cb) } else { None };
        v.device.fit_dataset(&mut t, &mut host, train, valid, cb)
    })
}

/// Copies the per-epoch history (of every fit so far) into `out` (`capacity` records) and the
/// number of epochs into *n (may be NULL). With out = NULL and capacity = 0 it only counts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_history(
    trainer: *const latent_trainer,
    out: *mut latent_epoch_record,
    capacity: usize,
    n: *mut usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let t = unsafe { arg(trainer, "trainer")? }.get()?;
        let h = t.history();
        if !n.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(n, h.len()) };
        }
        if out.is_null() && capacity == 0 {
            return Ok(());
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(out, capacity, h.len(), "out")? };
        for (d, r) in dst.iter_mut().zip(h) {
            *d = latent_epoch_record {
                train_loss: r.train_loss,
                train_penalty: r.train_penalty,
                valid_loss: r.valid_loss,
                seconds: r.seconds,
                samples_per_second: r.samples_per_second,
                learning_rate: r.learning_rate,
            };
        }
        Ok(())
    })
}

/// Forgets the history and the optimizer state (the next fit starts afresh).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_reset(trainer: *mut latent_trainer) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        unsafe { arg(trainer, "trainer")? }.get()?.reset();
        Ok(())
    })
}

pub(crate) fn stage_code(k: StageKind) -> latent_stage {
    match k {
        StageKind::Train => LATENT_STAGE_TRAIN,
        StageKind::Pretrain => LATENT_STAGE_PRETRAIN,
        StageKind::IntermediateFinetune => LATENT_STAGE_INTERMEDIATE_FINETUNE,
        StageKind::Finetune => LATENT_STAGE_FINETUNE,
    }
}

pub(crate) fn progress_to_c(p: &Progress) -> latent_progress {
    latent_progress {
        event: match p.event {
            Event::Batch => LATENT_EVENT_BATCH,
            Event::EpochEnd => LATENT_EVENT_EPOCH_END,
        },
        epoch: p.epoch as u32,
        epochs: p.epochs as u32,
        batch: p.batch as u64,
        batches: p.batches as u64,
        loss: p.loss,
        penalty: p.penalty,
        stage: stage_code(p.stage.kind),
        stage_layer: p.stage.layer as u32,
        free_energy: p.free_energy,
        valid_loss: p.valid_loss,
        samples_per_second: p.samples_per_second,
        seconds: p.seconds,
    }
}

/// Whether this build trains across MPI ranks (built with the cargo feature `mpi`): 1 or 0.
#[unsafe(no_mangle)]
pub extern "C" fn latent_mpi_available() -> i32 {
    crate::train::collective::mpi_compiled() as i32
}

/// Makes later fits data-parallel over the MPI communicator whose Fortran handle is `comm`
/// (C: `MPI_Comm_c2f(MPI_COMM_WORLD)`; Fortran: the communicator itself). Every rank then calls
/// latent_trainer_fit with the same training rows, parameters and network: each computes the
/// gradient of its slice of every global minibatch of batch_size rows, the gradients are summed
/// across the ranks, and every rank takes the same step, starting from rank 0's parameters;
/// all ranks end with identical parameters. MPI must be initialised (MPI_Init) by the caller,
/// the library duplicates the communicator and makes every MPI call from the thread that calls
/// latent_trainer_fit (MPI_THREAD_FUNNELED is enough), and the trainer must be freed before
/// MPI_Finalize. A build without MPI returns LATENT_STATUS_UNSUPPORTED.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_set_mpi_comm(trainer: *mut latent_trainer, comm: i32) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut t = unsafe { arg(trainer, "trainer")? }.get()?;
        t.set_collective(Some(crate::train::collective::mpi_from_fint(comm)?));
        Ok(())
    })
}

/// Makes later fits single-process again (frees the duplicated communicator).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_clear_mpi(trainer: *mut latent_trainer) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        unsafe { arg(trainer, "trainer")? }.get()?.set_collective(None);
        Ok(())
    })
}
