//! C API of recirculation training (Hinton & McClelland 1988; src/train/recirculation.rs).

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::*;
use crate::train::recirculation::{self, RecirculationConfig};

/// Trains `net`, an autoencoder with one hidden layer (its code layer: no encoder or decoder
/// hidden layers, untied, dense, deterministic), on the rows of `train` by recirculation
/// (Hinton & McClelland 1988) instead of back-propagation. Each row goes twice around the loop:
/// h = f(x W + b_h), x' = regression x + (1 - regression) g(h V + b_v),
/// h' = regression h + (1 - regression) f(x' W + b_h); then V += learning_rate h^T (x - x'),
/// b_v += learning_rate (x - x'), W += learning_rate x'^T (h - h'),
/// b_h += learning_rate (h - h'), averaged over minibatches of `batch_size` rows shuffled each
/// epoch from `seed`. The paper's regression is 0.75; learning rates near 1 suit data in
/// [0, 1]. It minimises the squared reconstruction error whatever loss the network was built
/// with, and ignores its regularisation. *mse (may be NULL) receives the mean squared error per
/// element of the reconstructions of `train` after the last epoch (NaN when the call fails).
///
/// A deeper network, a tied one, a classifier or regressor, or one with stochastic or
/// non-dense layers is LATENT_STATUS_INVALID_ARGUMENT (the message says why); so are epochs or
/// batch_size outside 1 to 1000000 and 1 to 2^20, a learning_rate not positive and finite, a
/// regression outside [0, 1), and a `train` of zero rows; columns other than input_dim are
/// LATENT_STATUS_SHAPE_MISMATCH. A step that makes a parameter non-finite stops with
/// LATENT_STATUS_DIVERGED. Any failure leaves the network as it was. It runs on the CPU (a
/// network on a GPU gets the result before its next use) on LATENT_NUM_THREADS threads
/// (default all cores); while it runs, other calls on `net` return LATENT_STATUS_BUSY.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_fit_recirculation(
    net: *mut latent_network,
    train: *const latent_dataset,
    epochs: u32,
    batch_size: u32,
    learning_rate: f64,
    regression: f64,
    seed: u64,
    mse: *mut f64,
) -> latent_status {
    guard(|| {
        if !mse.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(mse, f64::NAN) };
        }
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(train, "train")? };
        let config = RecirculationConfig {
            epochs: epochs as usize,
            batch_size: batch_size as usize,
            learning_rate: f32_of(learning_rate, "learning_rate")?,
            regression: f32_of(regression, "regression")?,
            seed,
            threads: 0,
        };
        config.validate()?;
        let _in_fit = d.for_fit();
        let mut host = n.fit()?;
        let report = recirculation::fit(&mut host, d.get().x(), &config)?;
        if !mse.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(mse, report.final_mse()) };
        }
        Ok(())
    })
}
