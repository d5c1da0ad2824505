//! C API of training checkpoints (src/train/checkpoint.rs): a checkpoint from a fit's progress
//! callback, periodic checkpoints, and the trainer and model resumed from a checkpoint file.

use std::cell::RefCell;
use std::ffi::c_char;
use std::path::Path;

use super::network::latent_network;
use super::trainer::latent_trainer;
use super::vae::latent_vae;
use super::*;
use crate::error::invalid;
use crate::train::{Checkpoint, Snapshot, Trainable};

/// Saves the snapshot behind the pointer (a `Snapshot<M>` for the M it was lent with).
type SaveFn = fn(*const (), &Path) -> Result<()>;

thread_local! {
    /// (trainer key, snapshot, its save) lent by fits on this thread to their running callbacks.
    static SNAPSHOTS: RefCell<Vec<(usize, *const (), SaveFn)>> = const { RefCell::new(Vec::new()) };
}

fn save_as<M: Trainable>(p: *const (), path: &Path) -> Result<()> {
    // SAFETY: `lend` put this pointer there from a `&Snapshot<M>` (this M: the function is
    // chosen with it) that outlives the callback now running on this thread, and takes it out
    // before that borrow ends.
    let s = unsafe { &*(p as *const Snapshot<'_, M>) };
    s.save(path)
}

/// Runs `f` (the C progress callback of a fit by `trainer`) with the fit's snapshot reachable
/// by latent_trainer_checkpoint on this thread.
pub(crate) fn lend<M: Trainable, R>(trainer: &latent_trainer, s: &Snapshot<'_, M>, f: impl FnOnce() -> R) -> R {
    struct Unlend;
    impl Drop for Unlend {
        fn drop(&mut self) {
            SNAPSHOTS.with(|v| v.borrow_mut().pop());
        }
    }
    let key = trainer as *const latent_trainer as usize;
    SNAPSHOTS.with(|v| v.borrow_mut().push((key, s as *const Snapshot<'_, M> as *const (), save_as::<M>)));
    let _unlend = Unlend;
    f()
}

/// Saves a checkpoint of the fit `trainer` is running, from that fit's progress callback at an
/// epoch end (event LATENT_EVENT_EPOCH_END): the model as it stands, the optimizer's state, the
/// epoch, the schedule's position, the shuffling and noise counters, early stopping, the
/// history and the configuration, in one checksummed file written atomically (a failed save
/// leaves whatever was at `path`). latent_trainer_resume_network (or _vae) continues the fit
/// from it; a resumed fit on the same rows with the same thread count ends bit-identical to the
/// uninterrupted one. After a minibatch event it is LATENT_STATUS_INVALID_ARGUMENT (checkpoints
/// are taken at epoch ends); outside a fit of `trainer` on this thread it is
/// LATENT_STATUS_INVALID_ARGUMENT too (LATENT_STATUS_BUSY while a fit runs on another thread);
/// during a GPU fit LATENT_STATUS_UNSUPPORTED. Calling it, then returning non-zero from the
/// callback, stops a fit so that it can be resumed later.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_checkpoint(
    trainer: *const latent_trainer,
    path: *const c_char,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let t = unsafe { arg(trainer, "trainer")? };
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        let key = t as *const latent_trainer as usize;
        if let Some((ptr, save)) =
            SNAPSHOTS.with(|v| v.borrow().iter().rev().find(|(k, _, _)| *k == key).map(|(_, p, f)| (*p, *f)))
        {
            return save(ptr, Path::new(p));
        }
        let _idle = t.get()?;
        Err(invalid!(
            "no fit of this trainer is running on this thread: call latent_trainer_checkpoint from the fit's progress callback, or set checkpoint_path"
        ))
    })
}

/// Sets the trainer's periodic checkpoints: each later fit writes one to `path` (may be NULL:
/// no checkpoints, with `every` 0) every `every` (>= 1) completed epochs, as checkpoint_path and
/// checkpoint_every of latent_train_params do. A trainer resumed from a checkpoint made by a
/// fit keeps the setting it had.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_set_checkpoints(
    trainer: *mut latent_trainer,
    path: *const c_char,
    every: u32,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut t = unsafe { arg(trainer, "trainer")? }.get()?;
        let p = if path.is_null() {
            if every != 0 {
                return Err(invalid!("every {every} without a path (NULL turns checkpoints off; pass 0)"));
            }
            None
        } else {
            // SAFETY: checked non-NULL; a NUL-terminated string (the C contract).
            Some(std::path::PathBuf::from(unsafe { super::path(path, "path")? }))
        };
        t.set_checkpoints(p, every as usize)
    })
}

/// Reads the checkpoint at `path` and makes the network and a trainer that continues its
/// training: the trainer has the checkpoint's configuration (threads included), history and
/// optimizer state, and its next latent_trainer_fit of this network on the same training (and
/// validation) rows finishes the interrupted fit; other rows are LATENT_STATUS_INVALID_ARGUMENT.
/// A damaged, truncated or foreign file is LATENT_STATUS_BAD_FORMAT, as is a VAE's checkpoint
/// ("wrong kind": use latent_trainer_resume_vae). On failure both out-pointers are NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_resume_network(
    path: *const c_char,
    trainer: *mut *mut latent_trainer,
    net: *mut *mut latent_network,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(trainer, "trainer")? };
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(net, "net")? };
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        let (t, n) = Checkpoint::load(Path::new(p))?.resume_network()?;
        // SAFETY: the out-pointers were checked non-NULL (by `clear`) and are writable.
        unsafe {
            new_handle(trainer, latent_trainer::new(t));
            new_handle(net, latent_network::new(n));
        }
        Ok(())
    })
}

/// latent_trainer_resume_network for a VAE's checkpoint (a network's is
/// LATENT_STATUS_BAD_FORMAT "wrong kind"); latent_trainer_fit_vae continues the fit.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_resume_vae(
    path: *const c_char,
    trainer: *mut *mut latent_trainer,
    vae: *mut *mut latent_vae,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(trainer, "trainer")? };
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(vae, "vae")? };
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        let (t, v) = Checkpoint::load(Path::new(p))?.resume_vae()?;
        // SAFETY: the out-pointers were checked non-NULL (by `clear`) and are writable.
        unsafe {
            new_handle(trainer, latent_trainer::new(t));
            new_handle(vae, latent_vae::new(v));
        }
        Ok(())
    })
}
