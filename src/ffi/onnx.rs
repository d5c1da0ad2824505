//! C API of the ONNX export (src/onnx/).

use std::ffi::c_char;

use super::*;
use crate::onnx::OnnxPart;

/// Which function of a model an ONNX file computes (`latent_onnx_part`). The files use ONNX
/// opset 17 (IR version 8); inputs and outputs are float [batch, width] with a symbolic batch
/// dimension "batch".
pub type latent_onnx_part = i32;
/// A network: input "x" -> output "code" (as latent_network_encode). A VAE: "x" -> "mean" and
/// "log_variance" of the posterior q(z|x) (as latent_vae_encode).
pub const LATENT_ONNX_PART_ENCODER: latent_onnx_part = 0;
/// A network: "code" -> "output" (as latent_network_decode: raw outputs). A VAE: "z" -> "mean",
/// the mean of p(x|z) (as latent_vae_generate_at_mean).
pub const LATENT_ONNX_PART_DECODER: latent_onnx_part = 1;
/// "x" -> "reconstruction": a network's decode(encode(x)) (as latent_network_reconstruct); a
/// VAE's mean of p(x|z) at the posterior mean.
pub const LATENT_ONNX_PART_RECONSTRUCTION: latent_onnx_part = 2;
/// A network only: "x" -> "prediction", what latent_network_predict returns (a classifier's
/// class probabilities, a regressor's outputs, an autoencoder's reconstructions).
pub const LATENT_ONNX_PART_PREDICT: latent_onnx_part = 3;
/// The ONNX operator set (default domain) the exported files import.
pub const LATENT_ONNX_OPSET: i32 = 17;

/// Writes `part` (LATENT_ONNX_PART_*) of the network to `path` as an ONNX model that ONNX
/// Runtime and other runtimes serve, computing what latent's inference computes. Dense layers
/// (tied or not, every activation), functional-transfer layers (F01..F20), the code layer,
/// stochastic layers (their means) and supervised heads are exported; a memory layer, or
/// stochastic inference switched on, gives LATENT_STATUS_UNSUPPORTED with the reason. The
/// file is written to a temporary name, synced and renamed, as model files are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_export_onnx(
    net: *const latent_network,
    path: *const c_char,
    part: latent_onnx_part,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        let part = OnnxPart::from_code(part)?;
        n.export_onnx(std::path::Path::new(p), part)
    })
}

/// Writes `part` of the VAE to `path` as an ONNX model: LATENT_ONNX_PART_ENCODER (outputs
/// "mean" and "log_variance"), LATENT_ONNX_PART_DECODER (the mean of p(x|z) for every
/// reconstruction distribution) or LATENT_ONNX_PART_RECONSTRUCTION; LATENT_ONNX_PART_PREDICT is
/// LATENT_STATUS_INVALID_ARGUMENT. Written atomically.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_export_onnx(
    vae: *const latent_vae,
    path: *const c_char,
    part: latent_onnx_part,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = unsafe { arg(vae, "vae")? }.read()?;
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        let part = OnnxPart::from_code(part)?;
        v.export_onnx(std::path::Path::new(p), part)
    })
}
