//! C API of the restricted Boltzmann machine as a model of its own.

use std::ffi::{c_char, c_void};

use super::dataset::latent_dataset;
use super::trainer::{config_from_params, progress_to_c};
use super::*;
use super::{OutValue, Rows};
use crate::error::{Result, invalid};
use crate::rbm_model::{RbmModel, unit_code, unit_from_code};
use crate::tensor::Matrix;
use crate::train::RbmConfig;

/// Kind of an RBM layer's units (`latent_rbm_unit`).
pub type latent_rbm_unit = i32;
/// Binary units: p(unit = 1) = sigmoid(input). For data in [0, 1] (binarised or intensities).
pub const LATENT_RBM_UNIT_BERNOULLI: latent_rbm_unit = 0;
/// Linear units with unit-variance Gaussian noise: mean = input. Standardise real-valued data
/// to unit variance first; a Gaussian hidden layer learns at 1/100 of the learning rate.
pub const LATENT_RBM_UNIT_GAUSSIAN: latent_rbm_unit = 1;

/// A restricted Boltzmann machine (DL4J's RBM layer): trained by contrastive divergence,
/// scored by free energy, used for its hidden probabilities, sampled by Gibbs sampling.
/// Inference calls may run on one RBM from many threads at once; calls that change it
/// (set_params, set_threads) wait for them. While latent_rbm_fit trains it, every other call on
/// it returns LATENT_STATUS_BUSY at once, its progress callback's included.
pub struct latent_rbm {
    inner: super::handle::Locked<RbmModel>,
    /// (n_visible, n_hidden), fixed at creation, readable while the RBM trains.
    shape: (usize, usize),
}

impl latent_rbm {
    fn new(m: RbmModel) -> latent_rbm {
        let shape = (m.n_visible(), m.n_hidden());
        latent_rbm { inner: super::handle::Locked::new(m, "RBM"), shape }
    }
}

/// Creates an RBM of `n_visible` x `n_hidden` units of the given kinds (LATENT_RBM_UNIT_*),
/// weights 0.1 N(0, 1) drawn from `seed` and zero biases (Hinton's rbm.m). Zero or more than
/// 2^24 units on a side, or an unknown unit kind, is LATENT_STATUS_INVALID_ARGUMENT. On failure
/// *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_new(
    n_visible: usize,
    n_hidden: usize,
    visible: latent_rbm_unit,
    hidden: latent_rbm_unit,
    seed: u64,
    out: *mut *mut latent_rbm,
) -> latent_status {
    let make = || {
        let v = unit_from_code(visible).map_err(|e| e.context(format_args!("visible")))?;
        let h = unit_from_code(hidden).map_err(|e| e.context(format_args!("hidden")))?;
        Ok(latent_rbm::new(RbmModel::new(n_visible, n_hidden, v, h, seed)?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Frees an RBM; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_free(rbm: *mut latent_rbm) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(rbm) }
}

/// Visible units (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_n_visible(rbm: *const latent_rbm) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { rbm.as_ref() }.map_or(0, |r| r.shape.0)
}

/// Hidden units (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_n_hidden(rbm: *const latent_rbm) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { rbm.as_ref() }.map_or(0, |r| r.shape.1)
}

/// The unit kinds of the visible and the hidden layer (LATENT_RBM_UNIT_*).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_units(
    rbm: *const latent_rbm,
    visible: *mut latent_rbm_unit,
    hidden: *mut latent_rbm_unit,
) -> latent_status {
    guard(|| {
        super::out(visible, "visible")?;
        super::out(hidden, "hidden")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let m = unsafe { arg(rbm, "rbm")? }.inner.read()?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe {
            put(visible, unit_code(m.visible()));
            put(hidden, unit_code(m.hidden()));
        }
        Ok(())
    })
}

/// Number of parameters: n_visible * n_hidden + n_hidden + n_visible.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_param_count(rbm: *const latent_rbm, out: *mut usize) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_value(rbm, "rbm", out, "out", |r| Ok(r.inner.read()?.param_count())) }
}

/// Copies the parameters (latent_rbm_param_count of them) into `out`: the weights W
/// (n_visible x n_hidden, row-major: W[i * n_hidden + j] joins visible i and hidden j), then
/// the hidden biases, then the visible biases.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_get_params(
    rbm: *const latent_rbm,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_params(rbm, "rbm", out, capacity, |m| m.inner.read(), RbmModel::params) }
}

/// Replaces the parameters (the order of latent_rbm_get_params); `n` must equal
/// latent_rbm_param_count (else LATENT_STATUS_SHAPE_MISMATCH) and every value be finite (else
/// LATENT_STATUS_NON_FINITE).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_set_params(rbm: *mut latent_rbm, params: *const f32, n: usize) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { super::set_params(rbm, "rbm", params, n, |h, p| h.inner.write()?.set_params(p)) }
}

/// Threads used by the inference calls on this RBM (0, the default: LATENT_NUM_THREADS when
/// set, else all cores); more than 1024 is LATENT_STATUS_INVALID_ARGUMENT. Training uses the
/// `threads` of its latent_train_params.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_set_threads(rbm: *mut latent_rbm, threads: u32) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(rbm, "rbm")? };
        crate::pool::check_threads(threads as usize)?;
        h.inner.write()?.set_threads(threads as usize);
        Ok(())
    })
}

/// Trains the RBM on the rows of `train` (n_visible columns; Bernoulli visible units model data
/// in [0, 1]) by contrastive divergence with `cd_k` Gibbs steps per update (CD-k, 1 to 1000),
/// or persistent CD (`persistent` = 1, Tieleman 2008): the RBM stage of
/// latent_network_pretrain, configured as it is. From `params`: epochs, batch_size, the optimizer
/// and learning_rate (Hinton's rbm.m: LATENT_OPTIMIZER_SGD, 0.1, momentum 0.9 with
/// momentum_initial 0.5 until momentum_switch_epoch 5), weight_decay as the weight cost (on W
/// only), the learning-rate schedule, seed, threads, shuffle, drop_last and progress_every; the
/// validation and early-stopping fields are not used. `progress` (may be NULL) gets `loss` = the
/// mean squared reconstruction error per pixel so far and, at each epoch end, `free_energy` =
/// the mean free energy of the training rows; returning non-zero cancels
/// (LATENT_STATUS_CANCELLED). The RBM keeps its last update's parameters when cancelled or when
/// the error diverges (LATENT_STATUS_DIVERGED); only completed fits enter latent_rbm_history.
/// Each fit starts its optimizer (momentum) afresh.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_fit(
    rbm: *mut latent_rbm,
    params: *const latent_train_params,
    cd_k: u32,
    persistent: i32,
    train: *const latent_dataset,
    progress: latent_progress_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(rbm, "rbm")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let p = unsafe { arg(params, "params")? };
        let c = config_from_params(p)?;
        let cd = RbmConfig { k: cd_k as usize, persistent: flag(persistent, "persistent")?, ..RbmConfig::default() };
        if cd.k == 0 || cd.k > 1000 {
            return Err(invalid!("CD-k needs cd_k in 1 to 1000, not {cd_k}"));
        }
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let train = unsafe { arg(train, "train")? };
        let _in_fit = train.for_fit();
        let x = train.get().x();
        if x.rows() == 0 {
            return Err(invalid!("the training data has no rows"));
        }
        let mut guard = h.inner.fit()?;
        let mut cb = |pr: &crate::train::Progress| -> bool {
            let Some(f) = progress else { return true };
            // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
            unsafe { f(user, &progress_to_c(pr)) == 0 }
        };
        let cb: Option<&mut dyn FnMut(&crate::train::Progress) -> bool> =
            if progress.is_some() { Some(&mut cb) } else { None };
        guard.fit(x, &c, cd, cb).map(|_| ())
    })
}

/// The per-epoch statistics of every completed fit of this RBM object (not saved in model
/// files): the mean squared reconstruction error per pixel of each epoch's minibatches (one
/// Gibbs step, before each update) into `reconstruction_error` and the mean free energy of the
/// training rows at the epoch's end into `free_energy` (may be NULL), `capacity` entries each;
/// *n (may be NULL) receives the number of epochs. With reconstruction_error = NULL and
/// capacity = 0 it only counts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_history(
    rbm: *const latent_rbm,
    reconstruction_error: *mut f64,
    free_energy: *mut f64,
    capacity: usize,
    n: *mut usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let m = unsafe { arg(rbm, "rbm")? }.inner.read()?;
        let hist = m.history();
        if !n.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(n, hist.len()) };
        }
        if reconstruction_error.is_null() {
            if capacity == 0 {
                return Ok(());
            }
            return Err(crate::Error::NullArgument(
                "reconstruction_error is NULL (pass capacity 0 with it to only count)".into(),
            ));
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let r = unsafe { out_slice(reconstruction_error, capacity, hist.len(), "reconstruction_error")? };
        let mut f = if free_energy.is_null() {
            None
        } else {
            // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
            Some(unsafe { out_slice(free_energy, capacity, hist.len(), "free_energy")? })
        };
        for (i, e) in hist.iter().enumerate() {
            r[i] = e.reconstruction_error;
            if let Some(f) = f.as_deref_mut() {
                f[i] = e.free_energy;
            }
        }
        Ok(())
    })
}

/// Runs `f` on the caller's rows and copies its result into `out` (rows x per_row values): the
/// width, then the capacity, checked before the rows are read or anything computed.
unsafe fn rows_call<T: OutValue + std::fmt::Debug>(
    rbm: *const latent_rbm,
    rows: Rows,
    out: *mut T,
    capacity: usize,
    per_row: impl FnOnce(&RbmModel) -> Result<usize>,
    f: impl FnOnce(&RbmModel, &Matrix) -> Result<Vec<T>>,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let m = unsafe { arg(rbm, "rbm")? }.inner.read()?;
        let per_row = per_row(&m)?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { rows_into(rows, m.n_visible(), "RBM", None, out, capacity, per_row, |x| f(&m, x)) }
    })
}

/// The free energy F(v) = -log sum_h exp(-E(v, h)) of each of `rows` visible rows (row-major,
/// `cols` = n_visible) into `out` (`rows` values; `capacity` available). p(v) = exp(-F(v)) / Z,
/// so lower is more probable; Z is unknown, so compare free energies under one RBM only. For
/// Gaussian units F leaves out the constant terms. As every RBM inference call: the width, then
/// the capacity, are checked before the rows are read; zero rows give LATENT_STATUS_OK with
/// nothing written; NaN or Inf in the rows is LATENT_STATUS_NON_FINITE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_free_energy(
    rbm: *const latent_rbm,
    x: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { rows_call(rbm, Rows::Caller(x, rows, cols), out, capacity, |_| Ok(1), |m, x| m.free_energy(x)) }
}

/// The hidden means of `rows` visible rows into `out` (rows x n_hidden): p(h_j = 1 | v) =
/// sigmoid(b_h,j + sum_i v_i W_ij) for Bernoulli hidden units, the linear mean for Gaussian
/// ones. The RBM as a feature extractor (DL4J's activate()).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_transform(
    rbm: *const latent_rbm,
    x: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            rbm,
            Rows::Caller(x, rows, cols),
            out,
            capacity,
            |m| Ok(m.n_hidden()),
            |m, x| Ok(m.transform(x)?.into_vec()),
        )
    }
}

/// The mean-field reconstruction of `rows` visible rows into `out` (rows x n_visible): the
/// visible means given the hidden means, E[v | h = E[h | v]]. Deterministic.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_reconstruct(
    rbm: *const latent_rbm,
    x: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            rbm,
            Rows::Caller(x, rows, cols),
            out,
            capacity,
            |m| Ok(m.n_visible()),
            |m, x| Ok(m.reconstruct(x)?.into_vec()),
        )
    }
}

/// `steps` rounds of block Gibbs sampling started from each of `rows` visible rows: h ~ p(h|v),
/// then v ~ p(v|h), `steps` times (1 to 1000000, else LATENT_STATUS_INVALID_ARGUMENT, checked
/// first); the last visible states go to `out` (rows x n_visible), or, with `means` = 1, the
/// last step's visible means p(v|h) instead of a draw. Row i draws from its own stream of
/// `seed`, so the result depends only on the seed, the row and its position in the call: the
/// same call gives bit-identical samples (for one thread count).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_sample(
    rbm: *const latent_rbm,
    x: *const f32,
    rows: usize,
    cols: usize,
    steps: u32,
    seed: u64,
    means: i32,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        let per_row = |m: &RbmModel| {
            flag(means, "means")?;
            let s = steps as usize;
            if s == 0 || s > crate::rbm_model::MAX_GIBBS_STEPS {
                return Err(invalid!("Gibbs sampling takes 1 to {} steps, not {s}", crate::rbm_model::MAX_GIBBS_STEPS));
            }
            Ok(m.n_visible())
        };
        rows_call(rbm, Rows::Caller(x, rows, cols), out, capacity, per_row, |m, x| {
            Ok(m.sample(x, steps as usize, seed, means == 1)?.into_vec())
        })
    }
}

/// Saves the RBM (units, parameters, epochs trained, the last fit's CD settings) to `path` as a
/// version-5 model file, atomically, as latent_network_save writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_save(rbm: *const latent_rbm, path: *const c_char) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let m = unsafe { arg(rbm, "rbm")? }.inner.read()?;
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        crate::model_file::save_rbm(&m, std::path::Path::new(p))
    })
}

/// Loads an RBM saved by latent_rbm_save. A truncated, corrupted or foreign file, or another
/// kind of model's file (a network's, a VAE's), gives LATENT_STATUS_BAD_FORMAT; a missing one
/// LATENT_STATUS_IO. Only a regular file is read. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_rbm_load(path: *const c_char, out: *mut *mut latent_rbm) -> latent_status {
    let load = || {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        Ok(latent_rbm::new(crate::model_file::load_rbm(std::path::Path::new(p))?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, load) }
}

/// Wraps a Rust RBM model in a C handle (for Rust programs that hand RBMs to C code).
pub fn latent_rbm_from(m: RbmModel) -> latent_rbm {
    latent_rbm::new(m)
}
