//! C API of predictive sparse decomposition (the PSD model handle, src/psd.rs).

use super::Rows;
use super::dataset::latent_dataset;
use super::*;
use crate::error::Result;
use crate::psd::{Psd, PsdConfig, PsdSpec, SparseCoding};
use crate::tensor::Matrix;

/// A predictive sparse decomposition model (Kavukcuoglu, Ranzato & LeCun 2008): a dictionary D
/// of unit-norm atoms, L1-sparse codes h, and an encoder f(x) = g * tanh(W_e x + b_e) trained
/// to predict them. Inference calls may run on one model from many threads at once; calls
/// that change it (fit, set_params) wait for them and run alone, and while latent_psd_fit runs
/// every other call on the model returns LATENT_STATUS_BUSY at once.
pub struct latent_psd {
    inner: super::handle::Locked<Psd>,
    /// Input and code widths (fixed at creation), readable while the model trains.
    shape: (usize, usize),
}

impl latent_psd {
    fn read(&self) -> Result<super::handle::Read<'_, Psd>> {
        self.inner.read()
    }
}

/// Creates a PSD model of `input_dim` inputs and `code_dim` code units (atoms; more than
/// input_dim is an overcomplete dictionary) with energy
/// E(x, h) = ||x - D h||^2 + lambda |h|_1 + alpha ||h - f(x)||^2, where lambda and alpha are
/// finite and not negative (the paper's alpha is 1). The atoms start N(0, I) scaled to unit
/// norm, W_e uniform in [-1/sqrt(input_dim), 1/sqrt(input_dim)], b_e = 0, g = 1, drawn from
/// `seed`. Widths of 0 or above 2^24, or more than 2^31 parameters, are
/// LATENT_STATUS_INVALID_ARGUMENT. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_new(
    input_dim: usize,
    code_dim: usize,
    lambda: f64,
    alpha: f64,
    seed: u64,
    out: *mut *mut latent_psd,
) -> latent_status {
    let make = || {
        let spec =
            PsdSpec { input_dim, code_dim, lambda: f32_of(lambda, "lambda")?, alpha: f32_of(alpha, "alpha")?, seed };
        let p = Psd::new(spec)?;
        let shape = (p.input_dim(), p.code_dim());
        Ok(latent_psd { inner: super::handle::Locked::new(p, "PSD model"), shape })
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Frees a PSD model; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_free(psd: *mut latent_psd) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(psd) }
}

/// Width of the input (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_input_dim(psd: *const latent_psd) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { psd.as_ref() }.map_or(0, |p| p.shape.0)
}

/// Number of code units (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_code_dim(psd: *const latent_psd) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { psd.as_ref() }.map_or(0, |p| p.shape.1)
}

/// Number of parameters: 2 input_dim code_dim + 2 code_dim.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_param_count(psd: *const latent_psd, out: *mut usize) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_value(psd, "psd", out, "out", |p| Ok(p.read()?.param_count())) }
}

/// Copies the parameters (latent_psd_param_count of them) into `out`, in this order: D
/// (code_dim x input_dim, row-major: row k is atom k, so a reconstruction is the row h D), W_e
/// (input_dim x code_dim: the encoder's pre-activation is the row x W_e + b_e), b_e (code_dim),
/// g (code_dim).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_get_params(
    psd: *const latent_psd,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_params(psd, "psd", out, capacity, |p| p.read(), Psd::params) }
}

/// Replaces the parameters (the layout of latent_psd_get_params); `n` must equal
/// latent_psd_param_count and every value be finite. The atoms are taken as given (a fit
/// scales them back to unit norm after each step).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_set_params(psd: *mut latent_psd, params: *const f32, n: usize) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { super::set_params(psd, "psd", params, n, |h, p| h.inner.write()?.set_params(p)) }
}

/// Trains the model on the rows of `train` by PSD's alternating algorithm: for each minibatch
/// of `batch_size` rows (shuffled each epoch from `seed`), the codes h* minimising E(x, h) by
/// ISTA started at f(x) (at most 100 iterations, stopping once no entry changes by more than
/// 1e-4), then one Adam step (`learning_rate`; 1e-3 is a good start) on D, W_e, b_e and g
/// with h* fixed, and the atoms scaled back to unit norm. Each fit starts a fresh Adam state.
/// *objective (may be NULL) receives the last epoch's mean energy E(x, h*) per row (NaN when
/// the call fails). epochs and
/// batch_size must be in 1 to 1000000 and 1 to 2^20, learning_rate positive and finite
/// (LATENT_STATUS_INVALID_ARGUMENT); `train` must have input_dim columns
/// (LATENT_STATUS_SHAPE_MISMATCH) and at least one row. A step that makes a parameter
/// non-finite stops the fit with LATENT_STATUS_DIVERGED; any failure leaves the model as it
/// was. Runs on LATENT_NUM_THREADS threads (default all cores).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_fit(
    psd: *mut latent_psd,
    train: *const latent_dataset,
    epochs: u32,
    batch_size: u32,
    learning_rate: f64,
    seed: u64,
    objective: *mut f64,
) -> latent_status {
    guard(|| {
        if !objective.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(objective, f64::NAN) };
        }
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(psd, "psd")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(train, "train")? };
        let config = PsdConfig {
            epochs: epochs as usize,
            batch_size: batch_size as usize,
            learning_rate: f32_of(learning_rate, "learning_rate")?,
            seed,
            ..PsdConfig::default()
        };
        config.validate()?;
        let _in_fit = d.for_fit();
        let mut p = h.inner.fit()?;
        let history = p.fit(d.get().x(), &config)?;
        if !objective.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(objective, history.last().map_or(f64::NAN, |e| e.energy)) };
        }
        Ok(())
    })
}

/// Runs `f` on the rows, copying its result (rows x `per_row`) into `out`; the columns (must be
/// `width`) and the capacity are checked before anything is copied or computed.
unsafe fn psd_rows(
    psd: *const latent_psd,
    rows: Rows,
    width: impl FnOnce(&Psd) -> usize,
    out: *mut f32,
    capacity: usize,
    per_row: impl FnOnce(&Psd) -> usize,
    f: impl FnOnce(&Psd, &Matrix) -> Result<Matrix>,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let p = unsafe { arg(psd, "psd")? }.read()?;
        let per = per_row(&p);
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { rows_into(rows, width(&p), "PSD model", None, out, capacity, per, |m| Ok(f(&p, m)?.into_vec())) }
    })
}

/// The sparse-coding budget from C: `iterations` at most 1000000, `tolerance` finite and >= 0.
fn coding(iterations: u32, tolerance: f64) -> Result<SparseCoding> {
    let c = SparseCoding { iterations: iterations as usize, tolerance: f32_of(tolerance, "tolerance")? };
    c.validate()?;
    Ok(c)
}

/// The encoder's fast codes f(x) = g * tanh(x W_e + b_e) of `rows` input rows (row-major, `cols`
/// = input_dim) into `codes` (rows x code_dim, `capacity` floats available). As every PSD
/// inference call: the width, then the capacity (LATENT_STATUS_BUFFER_TOO_SMALL), are checked
/// before the rows are read; zero rows give LATENT_STATUS_OK with nothing written; a result
/// that overflows from finite rows is LATENT_STATUS_NON_FINITE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_encode(
    psd: *const latent_psd,
    x: *const f32,
    rows: usize,
    cols: usize,
    codes: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        psd_rows(
            psd,
            Rows::Caller(x, rows, cols),
            |p| p.input_dim(),
            codes,
            capacity,
            |p| p.code_dim(),
            |p, m| p.encode(m),
        )
    }
}

/// The optimised sparse codes h* = argmin_h E(x, h) of `rows` input rows into `codes` (rows x
/// code_dim): ISTA started at f(x) with the step 1/L (L = 2 (lambda_max(D^T D) + alpha)), at
/// most `iterations` iterations (0 returns f(x); at most 1000000), stopping once no entry
/// changes by more than `tolerance` (absolute; 0 runs the whole budget). Exactly sparse, and
/// slower than latent_psd_encode. Checks as latent_psd_encode; a bad `iterations` or
/// `tolerance` is LATENT_STATUS_INVALID_ARGUMENT, checked first.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_encode_optimized(
    psd: *const latent_psd,
    x: *const f32,
    rows: usize,
    cols: usize,
    iterations: u32,
    tolerance: f64,
    codes: *mut f32,
    capacity: usize,
) -> latent_status {
    let c = match coding(iterations, tolerance) {
        Ok(c) => c,
        Err(e) => return guard(|| Err(e)),
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        psd_rows(
            psd,
            Rows::Caller(x, rows, cols),
            |p| p.input_dim(),
            codes,
            capacity,
            |p| p.code_dim(),
            |p, m| p.encode_optimized(m, &c),
        )
    }
}

/// The reconstructions h D of `rows` code rows (`cols` = code_dim) into `out` (rows x
/// input_dim). Checks as latent_psd_encode.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_decode(
    psd: *const latent_psd,
    codes: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        psd_rows(
            psd,
            Rows::Caller(codes, rows, cols),
            |p| p.code_dim(),
            out,
            capacity,
            |p| p.input_dim(),
            |p, m| p.decode(m),
        )
    }
}

/// The reconstructions of `rows` input rows into `out` (rows x input_dim): D f(x) from the
/// fast codes when `iterations` is 0, else D h* from the codes of latent_psd_encode_optimized
/// with `iterations` and tolerance 1e-4. Checks as latent_psd_encode_optimized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_psd_reconstruct(
    psd: *const latent_psd,
    x: *const f32,
    rows: usize,
    cols: usize,
    iterations: u32,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    let c = match coding(iterations, SparseCoding::default().tolerance as f64) {
        Ok(c) => c,
        Err(e) => return guard(|| Err(e)),
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        psd_rows(
            psd,
            Rows::Caller(x, rows, cols),
            |p| p.input_dim(),
            out,
            capacity,
            |p| p.input_dim(),
            |p, m| {
                if c.iterations == 0 { p.reconstruct(m) } else { p.decode(&p.encode_optimized(m, &c)?) }
            },
        )
    }
}
