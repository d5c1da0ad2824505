//! C API of the input scaling a model carries ([`crate::preprocess`]): export, import, the
//! raw-input serving mode, and scaling a dataset with the model's statistics. The network and
//! VAE calls share one body each.

use std::ops::{Deref, DerefMut};

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::vae::latent_vae;
use super::*;
use crate::data::scale::{Scaler, Scaling};
use crate::error::{Error, Result};
use crate::network::Network;
use crate::preprocess::InputScaling;
use crate::vae::Vae;

/// A model that carries an input scaling.
trait Scaled {
    fn input(&self) -> &InputScaling;
    fn set_scaler(&mut self, s: Scaler) -> Result<()>;
    fn set_raw(&mut self, raw: bool);
}

impl Scaled for Network {
    fn input(&self) -> &InputScaling {
        self.input_scaling()
    }
    fn set_scaler(&mut self, s: Scaler) -> Result<()> {
        self.set_input_scaler(s)
    }
    fn set_raw(&mut self, raw: bool) {
        self.set_raw_input(raw)
    }
}

impl Scaled for Vae {
    fn input(&self) -> &InputScaling {
        self.input_scaling()
    }
    fn set_scaler(&mut self, s: Scaler) -> Result<()> {
        self.set_input_scaler(s)
    }
    fn set_raw(&mut self, raw: bool) {
        self.set_raw_input(raw)
    }
}

/// The handle of such a model.
trait Handle {
    type Model: Scaled;
    fn read_model(&self) -> Result<impl Deref<Target = Self::Model>>;
    fn write_model(&self) -> Result<impl DerefMut<Target = Self::Model>>;
}

impl Handle for latent_network {
    type Model = Network;
    fn read_model(&self) -> Result<impl Deref<Target = Network>> {
        self.read()
    }
    fn write_model(&self) -> Result<impl DerefMut<Target = Network>> {
        self.write()
    }
}

impl Handle for latent_vae {
    type Model = Vae;
    fn read_model(&self) -> Result<impl Deref<Target = Vae>> {
        self.read()
    }
    fn write_model(&self) -> Result<impl DerefMut<Target = Vae>> {
        self.write()
    }
}

/// A scaler from the C arguments: per-column statistics `a` and `b` (min and max, or mean and
/// std) for MIN_MAX and Z_SCORE, none (cols 0) for NONE and DIVIDE_255.
unsafe fn scaler_from(method: latent_scaling, a: *const f64, b: *const f64, cols: usize) -> Result<Scaler> {
    let m = Scaling::from_code(method)?;
    if matches!(m, Scaling::None | Scaling::Divide255) {
        if cols != 0 {
            return Err(invalid!("the {} scaling has no per-column statistics: cols must be 0, not {cols}", m.name()));
        }
        return Ok(Scaler::from_stats(m, Vec::new(), Vec::new()));
    }
    if cols == 0 {
        return Err(invalid!("the {} scaling needs its per-column statistics: cols is 0", m.name()));
    }
    // SAFETY: NULL is refused; otherwise `a` holds `cols` readable values (the C contract).
    let a = unsafe { slice(a, cols, "a")? }.to_vec();
    // SAFETY: NULL is refused; otherwise `b` holds `cols` readable values (the C contract).
    let b = unsafe { slice(b, cols, "b")? }.to_vec();
    Ok(Scaler::from_stats(m, a, b))
}

unsafe fn set_scaling<H: Handle>(
    h: *const H,
    method: latent_scaling,
    a: *const f64,
    b: *const f64,
    cols: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(h, "model")? };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let s = unsafe { scaler_from(method, a, b, cols)? };
        h.write_model()?.set_scaler(s)
    })
}

unsafe fn get_scaling<H: Handle>(
    h: *const H,
    method: *mut latent_scaling,
    a: *mut f64,
    b: *mut f64,
    capacity: usize,
    cols: *mut usize,
) -> latent_status {
    guard(|| {
        out(method, "method")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let m = unsafe { arg(h, "model")? }.read_model()?;
        let s = m.input().scaler();
        let n = s.cols().unwrap_or(0);
        if !cols.is_null() {
            // SAFETY: checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(cols, n) };
        }
        let (sa, sb) = s.stats();
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(method, s.method().code()) };
        if capacity < n {
            return Err(Error::BufferTooSmall(format!("a and b hold {capacity} values, the scaling has {n} columns")));
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let da = unsafe { out_slice(a, capacity, n, "a")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let db = unsafe { out_slice(b, capacity, n, "b")? };
        da.copy_from_slice(sa);
        db.copy_from_slice(sb);
        Ok(())
    })
}

unsafe fn set_scaling_from<H: Handle>(h: *const H, fitted: *const latent_dataset) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(h, "model")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let s = unsafe { arg(fitted, "fitted")? }.get().scaler().clone();
        if s == Scaler::None {
            return Err(invalid!("fitted has not been scaled: call latent_dataset_scale on it first"));
        }
        h.write_model()?.set_scaler(s)
    })
}

unsafe fn set_raw<H: Handle>(h: *const H, raw: i32) -> latent_status {
    guard(|| {
        let raw = flag(raw, "raw")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        unsafe { arg(h, "model")? }.write_model()?.set_raw(raw);
        Ok(())
    })
}

unsafe fn get_raw<H: Handle>(h: *const H, raw: *mut i32) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_value(h, "model", raw, "raw", |h| Ok(i32::from(h.read_model()?.input().raw()))) }
}

unsafe fn scale_dataset<H: Handle>(h: *const H, dataset: *mut latent_dataset) -> latent_status {
    guard(|| {
        if dataset.is_null() {
            return Err(Error::NullArgument("dataset is NULL".into()));
        }
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let s = unsafe { arg(h, "model")? }.read_model()?.input().scaler().clone();
        if s == Scaler::None {
            return Err(invalid!("the model has no stored scaling (fit it on a scaled dataset, or set one)"));
        }
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { super::dataset::apply_scaler(dataset, &s) }
    })
}

/// Stores an input scaling in the network, replacing the one it has (saved with the model; a
/// fit on a scaled dataset stores that dataset's scaling itself). `method` is a
/// LATENT_SCALING_* code; MIN_MAX takes the per-column min in `a` and max in `b`, Z_SCORE the
/// mean in `a` and the population std in `b`, `cols` values each (= input_dim, else
/// LATENT_STATUS_SHAPE_MISMATCH); NONE (removes the scaling) and DIVIDE_255 take cols 0 and
/// NULL arrays. Non-finite statistics, max < min or a negative std: INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_scaling(
    net: *mut latent_network,
    method: latent_scaling,
    a: *const f64,
    b: *const f64,
    cols: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { set_scaling(net as *const latent_network, method, a, b, cols) }
}

/// The network's stored input scaling: its LATENT_SCALING_* code into *method, the number of
/// per-column statistics into *cols (may be NULL; 0 for NONE and DIVIDE_255), and the
/// statistics into `a` and `b` (`capacity` values each; may be NULL with capacity 0 when there
/// are none): min and max for MIN_MAX, mean and std for Z_SCORE. A capacity below *cols is
/// LATENT_STATUS_BUFFER_TOO_SMALL (with *method and *cols set, so a first call with capacity 0
/// sizes the arrays).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_get_scaling(
    net: *const latent_network,
    method: *mut latent_scaling,
    a: *mut f64,
    b: *mut f64,
    capacity: usize,
    cols: *mut usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_scaling(net, method, a, b, capacity, cols) }
}

/// Stores the scaling fitted on `fitted` (a dataset scaled with latent_dataset_scale) in the
/// network: what a later latent_trainer_fit on that dataset does itself. An unscaled `fitted`
/// is LATENT_STATUS_INVALID_ARGUMENT; a width other than input_dim, SHAPE_MISMATCH.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_scaling_from(
    net: *mut latent_network,
    fitted: *const latent_dataset,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { set_scaling_from(net as *const latent_network, fitted) }
}

/// Raw-input mode (`raw` 1) or not (0, the default; other values INVALID_ARGUMENT). In raw-input
/// mode the calls that take row buffers (encode, reconstruct, predict, classify, reconstruction
/// errors, scores, binary codes, Jacobians) scale the rows with the stored scaling first, and
/// those that return rows in the input's space (reconstruct, decode) return them in raw units.
/// Errors and scores stay in the scaled space the model was trained in. _dataset calls use the
/// dataset as it is (it carries its own scaling: latent_network_scale_dataset applies the
/// model's). Saved with the model, so a serving process that loads it takes raw rows.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_raw_input(net: *mut latent_network, raw: i32) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { set_raw(net as *const latent_network, raw) }
}

/// Whether the network is in raw-input mode (1) or not (0), into *raw.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_raw_input(net: *const latent_network, raw: *mut i32) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_raw(net, raw) }
}

/// Scales an unscaled dataset with the network's stored scaling (as latent_dataset_apply_scaling
/// does with a training set's): then the dataset's rows are what the network was trained on. No
/// stored scaling, or a dataset already scaled: INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_scale_dataset(
    net: *const latent_network,
    dataset: *mut latent_dataset,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { scale_dataset(net, dataset) }
}

/// latent_network_set_scaling for a VAE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_set_scaling(
    vae: *mut latent_vae,
    method: latent_scaling,
    a: *const f64,
    b: *const f64,
    cols: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { set_scaling(vae as *const latent_vae, method, a, b, cols) }
}

/// latent_network_get_scaling for a VAE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_get_scaling(
    vae: *const latent_vae,
    method: *mut latent_scaling,
    a: *mut f64,
    b: *mut f64,
    capacity: usize,
    cols: *mut usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_scaling(vae, method, a, b, capacity, cols) }
}

/// latent_network_set_scaling_from for a VAE (latent_trainer_fit_vae on a scaled dataset
/// stores its scaling itself).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_set_scaling_from(
    vae: *mut latent_vae,
    fitted: *const latent_dataset,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { set_scaling_from(vae as *const latent_vae, fitted) }
}

/// Raw-input mode of a VAE, as latent_network_set_raw_input: encode, sample_z, reconstruct and
/// the per-row scores take raw rows; reconstruct, generate_mean and generate_random return raw
/// units. Saved with the model.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_set_raw_input(vae: *mut latent_vae, raw: i32) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { set_raw(vae as *const latent_vae, raw) }
}

/// Whether the VAE is in raw-input mode (1) or not (0), into *raw.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_raw_input(vae: *const latent_vae, raw: *mut i32) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_raw(vae, raw) }
}

/// latent_network_scale_dataset with a VAE's stored scaling.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_scale_dataset(
    vae: *const latent_vae,
    dataset: *mut latent_dataset,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { scale_dataset(vae, dataset) }
}
