//! C API of the score, Jacobian and tangent-plane calls (docs/manifold.md), and of the exact
//! contractive penalty's switch.

use super::network::{latent_network, rows_call};
use super::*;
use super::{Rows, check_output, input_matrix};
use crate::error::{invalid, shape};
use crate::tensor::checked_len;

/// The score d/dx log p(x) as a denoising autoencoder estimates it (Alain & Bengio 2013):
/// (reconstruct(x) - x) / sigma^2 for `rows` input rows (row-major, `cols` = input_dim) into
/// `out` (rows x input_dim, `capacity` floats available). The estimate holds for a network
/// trained with Gaussian corruption of small standard deviation `sigma` and squared error;
/// `sigma` = 0 takes the network's own Gaussian corruption level, and a network without one
/// then gives LATENT_STATUS_INVALID_ARGUMENT (as do a negative or non-finite sigma, and a
/// classifier or regressor). Checks and zero rows as latent_network_encode.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_score(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    sigma: f64,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Caller(x, rows, cols),
            out,
            capacity,
            |n| (n.input_dim(), n.input_dim()),
            |n, m| {
                let s = n.score_sigma(f32_of(sigma, "sigma")?)?;
                Ok(n.score_estimate(m, s)?.into_vec())
            },
        )
    }
}

/// The encoder's Jacobian d(code)/d(input) at each of `rows` input rows (row-major, `cols` =
/// input_dim), exact (the chain rule through every encoder layer and its activation), into
/// `out`: rows x code_dim x input_dim floats (`capacity` available), row r's matrix at
/// r * code_dim * input_dim, row-major (entry (k, i) = d code_k / d x_i). Stochastic layers
/// contribute their means (as encode does). A functional or memory encoder layer, or
/// stochastic layers sampled in inference (latent_network_set_stochastic_inference), give
/// LATENT_STATUS_UNSUPPORTED naming the layer. Checks and zero rows as latent_network_encode.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_jacobian(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Caller(x, rows, cols),
            out,
            capacity,
            |n| (n.input_dim(), n.code_dim().saturating_mul(n.input_dim())),
            |n, m| n.encoder_jacobians(m),
        )
    }
}

/// The tangent plane of the encoder at one input row `x` (`cols` = input_dim values): the `k`
/// right singular vectors of its Jacobian with the largest singular values, the input
/// directions the code is most sensitive to (unit length, orthogonal, signs arbitrary), into
/// `directions` (k x input_dim, row-major; `capacity` floats available), and all
/// min(code_dim, input_dim) singular values, largest first, into `singular_values`
/// (`values_capacity` floats available). k must be in 1 to min(code_dim, input_dim)
/// (LATENT_STATUS_INVALID_ARGUMENT otherwise). For a contractive autoencoder trained on data
/// near a manifold the leading directions span its tangent plane at x and the other singular
/// values are small. Unsupported layers as latent_network_jacobian. Nothing is written on
/// failure.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_network_tangents(
    net: *const latent_network,
    x: *const f32,
    cols: usize,
    k: usize,
    directions: *mut f32,
    capacity: usize,
    singular_values: *mut f32,
    values_capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        let (input, code) = (n.input_dim(), n.code_dim());
        if cols == 0 {
            return Err(invalid!("x: 1 x 0 has no columns"));
        }
        if cols != input {
            return Err(shape!("the row has {cols} columns, the network expects {input}"));
        }
        let most = input.min(code);
        if k == 0 || k > most {
            return Err(invalid!("k = {k} tangent directions: it must be in 1 to min(code_dim, input_dim) = {most}"));
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dirs = unsafe { out_slice(directions, capacity, checked_len(k, input)?, "directions")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let values = unsafe { out_slice(singular_values, values_capacity, most, "singular_values")? };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let m = unsafe { input_matrix(x, 1, cols, "x")? };
        m.check_finite("x")?;
        let t = n.tangents(m.as_slice(), k)?;
        check_output(t.directions.as_slice(), input, "the directions")?;
        check_output(&t.singular_values, most, "the singular values")?;
        dirs.copy_from_slice(t.directions.as_slice());
        values.copy_from_slice(&t.singular_values);
        Ok(())
    })
}

/// Chooses the contractive penalty of training (contractive_weight of latent_network_params):
/// `exact` = 0 (the default) sums each encoder layer's own ||J_l||_F^2 (stacked contractive
/// autoencoders); 1 penalises ||d code / d x||_F^2 of the whole encoder (Rifai et al. 2011's
/// penalty for a deep encoder; about 3 x code_dim times the encoder's forward work per step,
/// docs/manifold.md). They coincide for a one-layer encoder. The mode is saved with the model
/// (format version 5). An encoder with stochastic layers and a non-zero contractive weight
/// refuses exact = 1 (LATENT_STATUS_INVALID_ARGUMENT). The GPU backend does not run the exact
/// penalty: latent_network_to_device of an exact network, and a GPU network's next fit or
/// inference after this call sets 1, give LATENT_STATUS_UNSUPPORTED (move it to the CPU, or
/// set 0). Other values than 0 and 1 are LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_contractive_exact(net: *mut latent_network, exact: i32) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        let exact = flag(exact, "exact")?;
        let mut g = h.write()?;
        let changed = g.with_contractive_exact(exact)?;
        *g = changed;
        Ok(())
    })
}

/// Whether the network trains with the exact contractive penalty (1) or the per-layer one (0)
/// into *exact.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_contractive_exact(
    net: *const latent_network,
    exact: *mut i32,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        get_value(net, "net", exact, "exact", |n| Ok(i32::from(n.read()?.spec().regularization.contractive_exact)))
    }
}
