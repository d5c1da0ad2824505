//! C API of the VAE's training objective: the ELBO, or Fyffe's BILBO for a constant posterior
//! variance.

use super::vae::latent_vae;
use super::*;
use crate::error::Error;
use crate::vae::Objective;

/// Sets what training maximises (`LATENT_VAE_OBJECTIVE_*`): ELBO (the default), or BILBO
/// (Fyffe 2019, "There and Back Again: Unraveling the Variational Auto-Encoder",
/// arXiv:1912.10309), which needs a constant posterior variance (constant_posterior_variance
/// = 1 in latent_vae_params, else LATENT_STATUS_INVALID_ARGUMENT). BILBO is the batch's mean
/// ELBO under the prior N(0, diag(v)) fitted to the batch, v_j = mean_batch mu_j^2 + s^2, whose
/// KL term is 1/2 sum_j ln(1 + mean_batch mu_j^2 / s^2). After a fit the trainer stores the
/// prior fitted to the training rows; latent_vae_elbo, latent_vae_log_likelihood,
/// latent_vae_iwae_bound and latent_vae_sample_prior then use it (before, the ELBO and the
/// log-likelihood of rows use the prior fitted to those rows). Changing the objective forgets a
/// fitted prior. The GPU backend trains the ELBO only: BILBO on a VAE placed on a GPU is
/// LATENT_STATUS_UNSUPPORTED (move it to the CPU first), and so is moving a BILBO VAE to one.
/// An objective code out of range is LATENT_STATUS_INVALID_ARGUMENT. Saved with the model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_set_objective(
    vae: *mut latent_vae,
    objective: latent_vae_objective,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(vae, "vae")? };
        let o = Objective::from_code(objective)?;
        if o != Objective::Elbo && h.device.device() != crate::backend::Device::Cpu {
            return Err(Error::Unsupported(format!(
                "the {} objective runs on the CPU only and this VAE is on a GPU: move it to the CPU (latent_vae_to_device) first",
                o.name()
            )));
        }
        h.write()?.set_objective(o)
    })
}

/// The VAE's objective (`LATENT_VAE_OBJECTIVE_*`) into *objective.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_get_objective(
    vae: *const latent_vae,
    objective: *mut latent_vae_objective,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_value(vae, "vae", objective, "objective", |v| Ok(v.read()?.spec().objective.code())) }
}
