//! C API of the variational autoencoder handle.

use std::ffi::c_char;
use std::sync::RwLockWriteGuard;

use super::dataset::latent_dataset;
use super::*;
use crate::activation::Activation;
use crate::distribution::{DistKind, Part, Reconstruction};
use crate::error::{Result, invalid, shape};
use crate::init::Init;
use crate::tensor::{Matrix, checked_len};
use crate::vae::{Posterior, Vae, VaeSpec};

/// A variational autoencoder. Inference calls (encode, sampling, generation, probabilities,
/// ELBO, save) may run on one VAE from many threads at once; calls that change it (set_params,
/// set_threads) wait for them and run alone. While latent_trainer_fit_vae trains it the VAE is
/// busy: its progress callback may read and save it, every other call returns
/// LATENT_STATUS_BUSY at once.
pub struct latent_vae {
    inner: super::handle::Locked<Vae>,
    /// Input and latent widths (fixed at creation), readable while the VAE trains.
    shape: (usize, usize),
    /// The GPU copy (latent_vae_to_device).
    pub(crate) device: crate::placement::Placement<Vae>,
}

impl latent_vae {
    pub(crate) fn new(v: Vae) -> latent_vae {
        let shape = (v.input_dim(), v.latent_dim());
        latent_vae { inner: super::handle::Locked::new(v, "VAE"), shape, device: Default::default() }
    }
    /// The model for an inference call (BUSY while it is being fitted, except from the fit's
    /// own progress callback, which sees the current parameters).
    pub(crate) fn read(&self) -> Result<super::handle::Read<'_, Vae>> {
        self.inner.read()
    }
    /// The host VAE for a change: the GPU copy (if any) is refreshed before its next use.
    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, Vae>> {
        let g = self.inner.write()?;
        self.device.mark_stale();
        Ok(g)
    }
    /// The model for a fit: busy for every other call until the guard drops.
    pub(crate) fn fit(&self) -> Result<super::handle::Fitting<'_, Vae>> {
        let g = self.inner.fit()?;
        self.device.mark_stale();
        Ok(g)
    }
    /// Runs a progress callback of this handle's fit with `model` readable through the handle.
    pub(crate) fn lend<R>(&self, model: &Vae, f: impl FnOnce() -> R) -> R {
        self.inner.lend(model, f)
    }
}

/// The defaults: no hidden layers, ReLU hidden activation, identity pzx activation, a Bernoulli
/// reconstruction, one sample per example, beta 1 without warm-up, a learned posterior
/// variance, AUTO init, seed 0. input_dim and latent_dim are 0 and must be set.
#[unsafe(no_mangle)]
pub extern "C" fn latent_vae_params_default() -> latent_vae_params {
    latent_vae_params {
        input_dim: 0,
        n_encoder: 0,
        encoder_units: std::ptr::null(),
        encoder_activations: std::ptr::null(),
        latent_dim: 0,
        n_decoder: 0,
        decoder_units: std::ptr::null(),
        decoder_activations: std::ptr::null(),
        hidden_activation: LATENT_ACTIVATION_RELU,
        pzx_activation: LATENT_ACTIVATION_IDENTITY,
        distribution: LATENT_DISTRIBUTION_BERNOULLI,
        distribution_activation: LATENT_ACTIVATION_IDENTITY,
        n_parts: 0,
        parts: std::ptr::null(),
        num_samples: 1,
        beta: 1.0,
        kl_warmup_steps: 0,
        constant_posterior_variance: 0,
        posterior_log_variance: 0.0,
        init: LATENT_INIT_AUTO,
        seed: 0,
    }
}

/// A part from C: a Bernoulli part is always sigmoid, whatever its activation field says.
fn part(size: u32, distribution: i32, activation: i32, what: &str) -> Result<Part> {
    let kind = DistKind::from_code(distribution).map_err(|e| e.context(format_args!("{what}")))?;
    let activation = if kind == DistKind::Bernoulli {
        Activation::Sigmoid
    } else {
        Activation::from_code(activation).map_err(|e| e.context(format_args!("{what} activation")))?
    };
    Ok(Part { size: size as usize, kind, activation })
}

pub(crate) unsafe fn vae_spec_from_params(p: &latent_vae_params) -> Result<VaeSpec> {
    if p.input_dim == 0 {
        return Err(invalid!("input_dim is 0: set it to the number of columns of your data"));
    }
    if p.latent_dim == 0 {
        return Err(invalid!("latent_dim is 0: set the width of the latent code"));
    }
    let hidden =
        Activation::from_code(p.hidden_activation).map_err(|e| e.context(format_args!("hidden_activation")))?;
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    let encoder = unsafe {
        layers(p.n_encoder, p.encoder_units, p.encoder_activations, std::ptr::null(), 0.0, hidden, "encoder")?
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    let decoder = unsafe {
        layers(p.n_decoder, p.decoder_units, p.decoder_activations, std::ptr::null(), 0.0, hidden, "decoder")?
    };
    let parts = if p.n_parts == 0 {
        vec![part(p.input_dim, p.distribution, p.distribution_activation, "distribution")?]
    } else {
        if p.n_parts > p.input_dim {
            return Err(invalid!(
                "n_parts = {} is more than input_dim ({}): every part has a column",
                p.n_parts,
                p.input_dim
            ));
        }
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let given = unsafe { slice(p.parts, p.n_parts as usize, "parts")? };
        given
            .iter()
            .enumerate()
            .map(|(i, q)| part(q.size, q.distribution, q.activation, &format!("parts[{i}]")))
            .collect::<Result<_>>()?
    };
    let posterior = if flag(p.constant_posterior_variance, "constant_posterior_variance")? {
        Posterior::Constant { log_variance: f32_of(p.posterior_log_variance, "posterior_log_variance")? }
    } else {
        Posterior::Learned
    };
    let spec = VaeSpec {
        input_dim: p.input_dim as usize,
        encoder,
        latent_dim: p.latent_dim as usize,
        decoder,
        pzx_activation: Activation::from_code(p.pzx_activation)
            .map_err(|e| e.context(format_args!("pzx_activation")))?,
        reconstruction: Reconstruction { parts },
        num_samples: p.num_samples as usize,
        beta: f32_of(p.beta, "beta")?,
        kl_warmup_steps: p.kl_warmup_steps,
        posterior,
        objective: crate::vae::Objective::Elbo,
        init: Init::from_code(p.init)?,
        seed: p.seed,
    };
    spec.validate()?;
    Ok(spec)
}

/// Builds and initialises a variational autoencoder. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_new(params: *const latent_vae_params, out: *mut *mut latent_vae) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(params, "params", out, |p| Ok(latent_vae::new(Vae::new(vae_spec_from_params(p)?)?))) }
}

/// A deep copy (architecture, parameters, steps trained). On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_clone(vae: *const latent_vae, out: *mut *mut latent_vae) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(vae, "vae", out, |v| Ok(latent_vae::new(v.read()?.clone()))) }
}

/// Frees a VAE; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_free(vae: *mut latent_vae) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(vae) }
}

/// Width of the data (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_input_dim(vae: *const latent_vae) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { vae.as_ref() }.map_or(0, |v| v.shape.0)
}

/// Width of the latent code (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_latent_dim(vae: *const latent_vae) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { vae.as_ref() }.map_or(0, |v| v.shape.1)
}

/// Number of trainable parameters (weights, biases, global log-variances).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_param_count(vae: *const latent_vae, out: *mut usize) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_value(vae, "vae", out, "out", |v| Ok(v.read()?.param_count())) }
}

/// Copies the parameters (latent_vae_param_count of them) into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_get_params(
    vae: *const latent_vae,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_params(vae, "vae", out, capacity, |v| v.read(), Vae::params) }
}

/// Replaces the parameters; `n` must equal latent_vae_param_count and all values be finite.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_set_params(vae: *mut latent_vae, params: *const f32, n: usize) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { super::set_params(vae, "vae", params, n, |h, p| h.write()?.set_params(p)) }
}

/// Threads used by inference calls on this VAE (0, the default: LATENT_NUM_THREADS when set,
/// else all cores). More than 1024 (given, or from LATENT_NUM_THREADS) is
/// LATENT_STATUS_INVALID_ARGUMENT; pools are shared and bounded as for
/// latent_network_set_threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_set_threads(vae: *mut latent_vae, threads: u32) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(vae, "vae")? };
        crate::pool::check_threads(threads as usize)?;
        h.write()?.set_threads(threads as usize);
        Ok(())
    })
}

/// Writes a NUL-terminated summary of the architecture into `buf` (snprintf-style: *needed, if
/// not NULL, receives the size including the NUL; a too-small buffer gets a truncated,
/// NUL-terminated copy and LATENT_STATUS_BUFFER_TOO_SMALL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_describe(
    vae: *const latent_vae,
    buf: *mut c_char,
    capacity: usize,
    needed: *mut usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let s = unsafe { arg(vae, "vae")? }.read()?.describe();
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { write_string(&s, buf, capacity, needed) }
    })
}

/// Saves the VAE (architecture, parameters, steps trained) to `path` as a version-3 model file,
/// atomically: `path` is either the complete new model or untouched, as
/// latent_network_save writes (temporary files, symbolic links and non-regular targets too).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_save(vae: *const latent_vae, path: *const c_char) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        crate::model_file::save_vae(&v, std::path::Path::new(p))
    })
}

/// Loads a VAE saved by latent_vae_save. A truncated, corrupted or foreign file, or a plain
/// autoencoder's file (load that with latent_network_load), gives LATENT_STATUS_BAD_FORMAT; a
/// missing one LATENT_STATUS_IO. Only a regular file is read, as by latent_network_load. On
/// failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_load(path: *const c_char, out: *mut *mut latent_vae) -> latent_status {
    let load = || {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        Ok(latent_vae::new(crate::model_file::load_vae(std::path::Path::new(p))?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, load) }
}

/// Runs `f` on the rows and copies its result into `out`. The rows' columns must be
/// `in_width` and `out` must hold rows x `per_row` values, both checked before anything is
/// copied or computed; a non-finite result is NON_FINITE.
unsafe fn rows_call<T: OutValue + std::fmt::Debug>(
    vae: *const latent_vae,
    rows: Rows,
    out: *mut T,
    capacity: usize,
    io: impl FnOnce(&Vae) -> Result<(usize, usize)>,
    f: impl FnOnce(&Vae, &Matrix) -> Result<Vec<T>>,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { rows_call_in(vae, rows, true, out, capacity, io, f) }
}

/// rows_call() of rows that are input rows (`input`: through the stored scaling in raw-input
/// mode, see crate::preprocess) or latent rows (used as they are).
unsafe fn rows_call_in<T: OutValue + std::fmt::Debug>(
    vae: *const latent_vae,
    rows: Rows,
    input: bool,
    out: *mut T,
    capacity: usize,
    io: impl FnOnce(&Vae) -> Result<(usize, usize)>,
    f: impl FnOnce(&Vae, &Matrix) -> Result<Vec<T>>,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        let (in_width, per_row) = io(&v)?;
        let scaling = input.then(|| v.input_scaling());
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { rows_into(rows, in_width, "VAE", scaling, out, capacity, per_row, |m| f(&v, m)) }
    })
}

/// rows_call() of a per-row score with `samples` draws (checked first): `f` gets the draws.
unsafe fn scores_call(
    vae: *const latent_vae,
    rows: Rows,
    samples: u32,
    out: *mut f64,
    capacity: usize,
    f: impl FnOnce(&Vae, &Matrix, usize) -> Result<Vec<f64>>,
) -> latent_status {
    let io = |v: &Vae| crate::vae::check_samples(samples as usize).map(|()| (v.input_dim(), 1));
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { rows_call(vae, rows, out, capacity, io, |v, m| f(v, m, samples as usize)) }
}

/// The body of latent_vae_encode and latent_vae_encode_dataset.
unsafe fn encode_rows(
    vae: *const latent_vae,
    rows: Rows,
    mean: *mut f32,
    logvar: *mut f32,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(vae, "vae")? };
        let v = h.read()?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let r = unsafe { rows.check(v.input_dim(), "VAE")? };
        let need = checked_len(r, v.latent_dim())?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let mean = unsafe { out_slice(mean, capacity, need, "mean")? };
        let logvar =
            // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
            if logvar.is_null() { None } else { Some(unsafe { out_slice(logvar, capacity, need, "logvar")? }) };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe {
            with_model_rows(rows, v.input_scaling(), |m| {
                let (mu, lv) = h.device.encode(&v, m)?;
                check_output(mu.as_slice(), mu.cols(), "the posterior means")?;
                check_output(lv.as_slice(), lv.cols(), "the posterior log-variances")?;
                mean.copy_from_slice(mu.as_slice());
                if let Some(l) = logvar {
                    l.copy_from_slice(lv.as_slice());
                }
                Ok(())
            })
        }
    })
}

/// The posterior q(z|x) of `rows` input rows (row-major, `cols` = input_dim): its means into
/// `mean` and, unless `logvar` is NULL, its log-variances into `logvar` (rows x latent_dim
/// each; `capacity` floats in each buffer). The mean is DL4J's activate() output.
///
/// As every VAE inference call: the width, then the capacity, are checked before the rows are
/// read or anything computed; zero rows give LATENT_STATUS_OK with nothing written; a result
/// that overflows from finite rows (huge inputs or parameters) is LATENT_STATUS_NON_FINITE. A
/// `samples` count outside 1..=65536 is LATENT_STATUS_INVALID_ARGUMENT, checked first.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_encode(
    vae: *const latent_vae,
    x: *const f32,
    rows: usize,
    cols: usize,
    mean: *mut f32,
    logvar: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { encode_rows(vae, Rows::Caller(x, rows, cols), mean, logvar, capacity) }
}

/// `samples` draws z ~ q(z|x) for each of `rows` input rows into `z` (rows * samples rows of
/// latent_dim; row i's draws are rows i * samples ... i * samples + samples - 1). The draws
/// depend only on `seed` and each row's position in the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_sample_z(
    vae: *const latent_vae,
    x: *const f32,
    rows: usize,
    cols: usize,
    samples: u32,
    seed: u64,
    z: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        let io = |v: &Vae| {
            crate::vae::check_samples(samples as usize)?;
            Ok((v.input_dim(), checked_len(samples as usize, v.latent_dim())?))
        };
        rows_call(vae, Rows::Caller(x, rows, cols), z, capacity, io, |v, m| {
            Ok(v.sample_posterior(m, samples as usize, seed)?.into_vec())
        })
    }
}

/// The mean of p(x|z) for each of `rows` latent rows (`cols` = latent_dim) into `out` (rows x
/// input_dim): DL4J's generateAtMeanGivenZ. Bernoulli: the probabilities; Gaussian: the means;
/// exponential: 1 / rate.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_generate_mean(
    vae: *const latent_vae,
    z: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call_in(
            vae,
            Rows::Caller(z, rows, cols),
            false,
            out,
            capacity,
            |v| Ok((v.latent_dim(), v.input_dim())),
            |v, m| Ok(v.input_scaling().to_raw(v.generate_at_mean(m)?)?.into_vec()),
        )
    }
}

/// A draw from p(x|z) for each of `rows` latent rows into `out` (rows x input_dim): DL4J's
/// generateRandomGivenZ. Seeded per row.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_generate_random(
    vae: *const latent_vae,
    z: *const f32,
    rows: usize,
    cols: usize,
    seed: u64,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call_in(
            vae,
            Rows::Caller(z, rows, cols),
            false,
            out,
            capacity,
            |v| Ok((v.latent_dim(), v.input_dim())),
            |v, m| Ok(v.input_scaling().to_raw(v.generate_random(m, seed)?)?.into_vec()),
        )
    }
}

/// `n` draws from the prior N(0, I) (a BILBO VAE's fitted N(0, diag(v)): see
/// latent_vae_set_objective) into `z` (n x latent_dim), seeded: decode them with
/// latent_vae_generate_mean or _generate_random to sample new data.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_sample_prior(
    vae: *const latent_vae,
    n: usize,
    seed: u64,
    z: *mut f32,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        if n == 0 {
            return Err(invalid!("n is 0: ask for at least one draw"));
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(z, capacity, checked_len(n, v.latent_dim())?, "z")? };
        dst.copy_from_slice(v.sample_prior(n, seed)?.as_slice());
        Ok(())
    })
}

/// The reconstruction of `rows` input rows into `out` (rows x input_dim): the mean of p(x|z)
/// at the posterior mean.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_reconstruct(
    vae: *const latent_vae,
    x: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            vae,
            Rows::Caller(x, rows, cols),
            out,
            capacity,
            |v| Ok((v.input_dim(), v.input_dim())),
            |v, m| Ok(v.input_scaling().to_raw(v.reconstruct(m)?)?.into_vec()),
        )
    }
}

/// DL4J's reconstructionLogProbability, per row into `out` (`rows` values): the Monte-Carlo mean
/// over `samples` draws z ~ q(z|x) of log p(x|z). Not log p(x) (it ignores the prior; see
/// latent_vae_log_likelihood). A VAE trained with LATENT_DISTRIBUTION_MSE has no probabilities:
/// LATENT_STATUS_INVALID_ARGUMENT; so are `samples` outside 1..=65536 (checked before anything
/// is allocated) and, for a Bernoulli part, data outside [0, 1] (the message names the row and
/// column).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_reconstruction_log_probability(
    vae: *const latent_vae,
    x: *const f32,
    rows: usize,
    cols: usize,
    samples: u32,
    seed: u64,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        scores_call(vae, Rows::Caller(x, rows, cols), samples, out, capacity, |v, m, k| {
            v.reconstruction_log_probability(m, k, seed)
        })
    }
}

/// DL4J's reconstructionProbability: exp of latent_vae_reconstruction_log_probability (it
/// underflows to 0 for wide data; prefer the log form).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_reconstruction_probability(
    vae: *const latent_vae,
    x: *const f32,
    rows: usize,
    cols: usize,
    samples: u32,
    seed: u64,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        scores_call(vae, Rows::Caller(x, rows, cols), samples, out, capacity, |v, m, k| {
            v.reconstruction_probability(m, k, seed)
        })
    }
}

/// The importance-sampled log-likelihood log p(x) of each row into `out` (`rows` values), with
/// K = `samples` draws from q(z|x): log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), the IWAE bound,
/// which rises to log p(x) as K grows (K = 1 is a one-sample ELBO). An anomaly score: lower is
/// less like the training data. LATENT_STATUS_INVALID_ARGUMENT for an MSE-loss VAE, for
/// `samples` outside 1..=65536 (checked before anything is allocated) and for data outside
/// [0, 1] in a Bernoulli part (the row and column named).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_log_likelihood(
    vae: *const latent_vae,
    x: *const f32,
    rows: usize,
    cols: usize,
    samples: u32,
    seed: u64,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        scores_call(vae, Rows::Caller(x, rows, cols), samples, out, capacity, |v, m, k| v.log_likelihood(m, k, seed))
    }
}

/// latent_vae_log_likelihood of every row of a dataset (one value per row into `out`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_log_likelihood_dataset(
    vae: *const latent_vae,
    dataset: *const latent_dataset,
    samples: u32,
    seed: u64,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { scores_call(vae, Rows::Dataset(dataset), samples, out, capacity, |v, m, k| v.log_likelihood(m, k, seed)) }
}

/// latent_vae_reconstruction_log_probability (DL4J's form) of every row of a dataset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_reconstruction_log_probability_dataset(
    vae: *const latent_vae,
    dataset: *const latent_dataset,
    samples: u32,
    seed: u64,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        scores_call(vae, Rows::Dataset(dataset), samples, out, capacity, |v, m, k| {
            v.reconstruction_log_probability(m, k, seed)
        })
    }
}

/// latent_vae_encode of every row of a dataset: posterior means into `mean` and, unless
/// `logvar` is NULL, log-variances into `logvar` (rows x latent_dim each; `capacity` floats in
/// each buffer).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_encode_dataset(
    vae: *const latent_vae,
    dataset: *const latent_dataset,
    mean: *mut f32,
    logvar: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { encode_rows(vae, Rows::Dataset(dataset), mean, logvar, capacity) }
}

/// The negative ELBO per example of a dataset and its parts (means over the rows), the
/// reconstruction term estimated with `samples` draws per row (1..=65536). A dataset of zero
/// rows gives LATENT_STATUS_INVALID_ARGUMENT ("no rows"), as does data outside [0, 1] in a
/// Bernoulli part; an overflow, LATENT_STATUS_NON_FINITE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_elbo(
    vae: *const latent_vae,
    dataset: *const latent_dataset,
    samples: u32,
    seed: u64,
    out: *mut latent_elbo,
) -> latent_status {
    guard(|| {
        super::out(out, "out")?;
        crate::vae::check_samples(samples as usize)?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let x = unsafe { arg(dataset, "dataset")? }.get().x();
        no_rows(x.rows())?;
        let e = v.elbo(x, samples as usize, seed)?;
        if !(e.neg_elbo.is_finite() && e.reconstruction.is_finite() && e.kl.is_finite()) {
            return Err(crate::error::Error::NonFinite(format!(
                "the ELBO is {} (reconstruction {}, KL {}): the rows are finite, the computation overflowed",
                e.neg_elbo, e.reconstruction, e.kl
            )));
        }
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(out, latent_elbo { neg_elbo: e.neg_elbo, reconstruction: e.reconstruction, kl: e.kl }) };
        Ok(())
    })
}

/// The IWAE bound L_K with K = `samples`: the mean over a dataset's rows of
/// latent_vae_log_likelihood. L_1 is the ELBO; L_K rises towards the mean log p(x) with K. A
/// dataset of zero rows gives LATENT_STATUS_INVALID_ARGUMENT ("no rows"); `samples` outside
/// 1..=65536 too, checked before anything is allocated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_iwae_bound(
    vae: *const latent_vae,
    dataset: *const latent_dataset,
    samples: u32,
    seed: u64,
    bound: *mut f64,
) -> latent_status {
    guard(|| {
        super::out(bound, "bound")?;
        crate::vae::check_samples(samples as usize)?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let x = unsafe { arg(dataset, "dataset")? }.get().x();
        no_rows(x.rows())?;
        let ll = v.log_likelihood(x, samples as usize, seed)?;
        check_output(&ll, 1, "the log-likelihoods")?;
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(bound, ll.iter().sum::<f64>() / ll.len().max(1) as f64) };
        Ok(())
    })
}

/// Latent-space interpolation between two data rows `a` and `b` (`cols` = input_dim each):
/// `steps` (>= 2) points evenly spaced on the line from a's posterior mean to b's, both ends
/// included, into `z` (steps x latent_dim; may be NULL) and their decoded means into `x`
/// (steps x input_dim). Each buffer holds `capacity` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_interpolate(
    vae: *const latent_vae,
    a: *const f32,
    b: *const f32,
    cols: usize,
    steps: u32,
    z: *mut f32,
    x: *mut f32,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        if cols == 0 {
            return Err(invalid!("cols is 0"));
        }
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let a = unsafe { slice(a, cols, "a")? };
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let b = unsafe { slice(b, cols, "b")? };
        if cols != v.input_dim() {
            return Err(shape!("a and b have {cols} columns, the VAE expects {}", v.input_dim()));
        }
        let steps = steps as usize;
        if steps < 2 {
            return Err(invalid!("interpolation needs at least 2 steps, not {steps}"));
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let x = unsafe { out_slice(x, capacity, checked_len(steps, v.input_dim())?, "x")? };
        let z = if z.is_null() {
            None
        } else {
            // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
            Some(unsafe { out_slice(z, capacity, checked_len(steps, v.latent_dim())?, "z")? })
        };
        let (zs, xs) = v.interpolate(a, b, steps)?;
        x.copy_from_slice(xs.as_slice());
        if let Some(z) = z {
            z.copy_from_slice(zs.as_slice());
        }
        Ok(())
    })
}

/// Wraps a Rust VAE in a C handle (for Rust programs that hand VAEs to C code).
pub fn latent_vae_from(v: Vae) -> latent_vae {
    latent_vae::new(v)
}
