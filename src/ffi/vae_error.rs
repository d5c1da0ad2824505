//! C API of the VAE's reconstruction error (DL4J's `VariationalAutoencoder.reconstructionError`),
//! beside latent_vae_reconstruction_probability.

use super::Rows;
use super::dataset::latent_dataset;
use super::vae::latent_vae;
use super::*;
use crate::loss::Loss;

/// The per-row errors of `rows` into `out` (latent_vae_reconstruction_log_probability's
/// conventions): the loss code, the width, then the capacity checked before the rows are read.
unsafe fn error_rows(
    vae: *const latent_vae,
    rows: Rows,
    loss: latent_loss,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        let loss = Loss::from_code(loss)?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { rows_into(rows, v.input_dim(), "VAE", None, out, capacity, 1, |m| v.reconstruction_error(m, loss)) }
    })
}

/// DL4J's reconstructionError, per row into `out` (`rows` values): the error under `loss` (a
/// `LATENT_LOSS_*` code) between the row and the VAE's reconstruction at the posterior mean
/// (latent_vae_reconstruct: the mean of p(x|z) at z = the mean of q(z|x), deterministic). The
/// reconstruction is scored as a bare prediction: the logarithms of binary cross-entropy,
/// Poisson, MSLE, KL divergence and multi-class cross-entropy floor their argument at 1e-7, and
/// the softmax losses take the reconstruction itself as the probabilities. DL4J offers it only
/// for a VAE trained with a loss function; any reconstruction distribution works here. An
/// anomaly score: higher is less like the training data.
///
/// As latent_vae_reconstruction_log_probability: the width, then the capacity, are checked
/// before the rows are read; zero rows give LATENT_STATUS_OK with nothing written. A `loss` code
/// out of range is LATENT_STATUS_INVALID_ARGUMENT (checked first), and so are rows outside the
/// loss's target domain (the row and column named).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_reconstruction_error(
    vae: *const latent_vae,
    x: *const f32,
    rows: usize,
    cols: usize,
    loss: latent_loss,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { error_rows(vae, Rows::Caller(x, rows, cols), loss, out, capacity) }
}

/// latent_vae_reconstruction_error of every row of a dataset (one value per row into `out`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_reconstruction_error_dataset(
    vae: *const latent_vae,
    dataset: *const latent_dataset,
    loss: latent_loss,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { error_rows(vae, Rows::Dataset(dataset), loss, out, capacity) }
}
