//! C API of devices: which GPUs there are, and moving a network onto one. A network on a GPU
//! keeps its host copy in step (after every call that trains it), so saving, reading
//! parameters and every CPU-only call see the trained parameters; encode, decode, reconstruct,
//! predict and fit run on the GPU.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::*;
use crate::error::{Error, Result, invalid};
use crate::network::Network;
use crate::tensor::Matrix;

/// Where a network runs.
pub type latent_device = i32;
/// The CPU backend (GEMM + threads): the default.
pub const LATENT_DEVICE_CPU: latent_device = 0;
/// An NVIDIA GPU through the CUDA backend (the `cuda` build feature, a driver and a GPU).
pub const LATENT_DEVICE_CUDA: latent_device = 1;

/// What latent_device_info reports of a GPU.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct latent_device_info {
    pub ordinal: i32,
    /// The device's name, NUL-terminated (truncated to 255 bytes).
    pub name: [c_char; 256],
    pub total_memory: u64,
    pub free_memory: u64,
    pub compute_major: i32,
    pub compute_minor: i32,
}

/// A network's device copy (only with the CUDA backend).
#[cfg(feature = "cuda")]
pub(crate) type Placed = crate::backend::DeviceNetwork<crate::backend::cuda::Cuda>;
#[cfg(not(feature = "cuda"))]
pub(crate) type Placed = std::convert::Infallible;
/// A VAE's device copy.
#[cfg(feature = "cuda")]
pub(crate) type PlacedVae = crate::backend::DeviceVae<crate::backend::cuda::Cuda>;
#[cfg(not(feature = "cuda"))]
pub(crate) type PlacedVae = std::convert::Infallible;

/// A handle's GPU copy and its ordinal, and whether a writer changed the host copy since it was
/// made. Locked after the handle's own lock, never before it; GPU calls on one handle run one
/// at a time.
pub(crate) struct DeviceSlot<P> {
    slot: Mutex<Option<(P, usize)>>,
    stale: AtomicBool,
}

impl<P> Default for DeviceSlot<P> {
    fn default() -> Self {
        DeviceSlot { slot: Mutex::new(None), stale: AtomicBool::new(false) }
    }
}

impl<P> DeviceSlot<P> {
    fn lock(&self) -> MutexGuard<'_, Option<(P, usize)>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn mark_stale(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }
    /// `f` on the GPU copy, refreshed by `refresh` when a writer changed the host copy; None
    /// when the handle is on the CPU.
    pub(crate) fn with<R>(
        &self,
        refresh: impl FnOnce(&mut P, usize) -> Result<()>,
        f: impl FnOnce(&mut P) -> Result<R>,
    ) -> Option<Result<R>> {
        self.with_host(&mut (), |d, _, ordinal| refresh(d, ordinal), |d, _| f(d))
    }
    /// with() where `f` also changes the host copy (a fit writes its result back), which
    /// `refresh` reads first.
    pub(crate) fn with_host<H: ?Sized, R>(
        &self,
        host: &mut H,
        refresh: impl FnOnce(&mut P, &H, usize) -> Result<()>,
        f: impl FnOnce(&mut P, &mut H) -> Result<R>,
    ) -> Option<Result<R>> {
        let mut slot = self.lock();
        let (d, ordinal) = slot.as_mut()?;
        if self.stale.swap(false, Ordering::SeqCst)
            && let Err(e) = refresh(d, host, *ordinal)
        {
            self.mark_stale();
            return Some(Err(e));
        }
        Some(f(d, host))
    }
    pub(crate) fn set(&self, d: Option<(P, usize)>) {
        *self.lock() = d;
        self.stale.store(false, Ordering::SeqCst);
    }
    /// (LATENT_DEVICE_*, ordinal).
    pub(crate) fn placement(&self) -> (i32, i32) {
        match &*self.lock() {
            Some((_, o)) => (LATENT_DEVICE_CUDA, *o as i32),
            None => (LATENT_DEVICE_CPU, 0),
        }
    }
}

/// The body of the to_device calls: the host copy locked for writing (by `write`), then the
/// GPU copy made by `place` from it, or dropped.
fn move_to<P, G: std::ops::Deref>(
    slot: &DeviceSlot<P>,
    device: latent_device,
    ordinal: i32,
    write: impl FnOnce() -> Result<G>,
    place: impl FnOnce(&G::Target, usize) -> Result<P>,
) -> Result<()> {
    match device {
        LATENT_DEVICE_CPU => {
            let _host = write()?;
            slot.set(None);
            Ok(())
        }
        LATENT_DEVICE_CUDA => {
            let ordinal = usize::try_from(ordinal).map_err(|_| invalid!("ordinal {ordinal} is negative"))?;
            let host = write()?;
            let placed = place(&host, ordinal)?;
            slot.set(Some((placed, ordinal)));
            Ok(())
        }
        d => Err(invalid!("device {d} is not LATENT_DEVICE_CPU (0) or LATENT_DEVICE_CUDA (1)")),
    }
}

/// Writes a handle's placement through the (optional) out-pointers.
unsafe fn report<P>(slot: &DeviceSlot<P>, device: *mut latent_device, ordinal: *mut i32) -> Result<()> {
    let (d, o) = slot.placement();
    if !device.is_null() {
        unsafe { put(device, d) };
    }
    if !ordinal.is_null() {
        unsafe { put(ordinal, o) };
    }
    Ok(())
}

impl latent_network {
    /// `f` on the GPU copy, refreshed from `host` (the caller holds its lock) when stale.
    pub(crate) fn on_device<R>(&self, host: &Network, f: impl FnOnce(&mut Placed) -> Result<R>) -> Option<Result<R>> {
        self.device.with(|d, ordinal| refresh(d, host, ordinal), f)
    }
}

/// 1 when this build has the CUDA backend and the machine a driver with at least one GPU;
/// 0 otherwise. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn latent_cuda_available() -> i32 {
    std::panic::catch_unwind(|| crate::backend::list_devices().is_ok_and(|d| !d.is_empty()) as i32).unwrap_or(0)
}

/// Number of CUDA GPUs into *count. LATENT_STATUS_UNSUPPORTED without the CUDA backend or a
/// driver (then *count is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_device_count(count: *mut i32) -> latent_status {
    guard(|| {
        out(count, "count")?;
        unsafe { put(count, 0) };
        let d = crate::backend::list_devices()?;
        unsafe { put(count, d.len() as i32) };
        Ok(())
    })
}

/// Name, memory and compute capability of GPU `ordinal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_device_get_info(ordinal: i32, info: *mut latent_device_info) -> latent_status {
    guard(|| {
        out(info, "info")?;
        let d = crate::backend::list_devices()?;
        let g = usize::try_from(ordinal)
            .ok()
            .and_then(|o| d.get(o))
            .ok_or_else(|| invalid!("no CUDA device {ordinal}: this machine has {}", d.len()))?;
        let mut name = [0 as c_char; 256];
        for (n, b) in name.iter_mut().zip(g.name.bytes().take(255)) {
            *n = b as c_char;
        }
        let v = latent_device_info {
            ordinal,
            name,
            total_memory: g.total_memory,
            free_memory: g.free_memory,
            compute_major: g.compute_capability.0,
            compute_minor: g.compute_capability.1,
        };
        unsafe { put(info, v) };
        Ok(())
    })
}

/// Moves `net` to a device: LATENT_DEVICE_CUDA with a GPU `ordinal` copies its parameters
/// there (later fits, encode, decode, reconstruct and predict run there); LATENT_DEVICE_CPU
/// brings it back (ordinal ignored). Without a GPU, the CUDA backend or for a network the GPU
/// backend cannot run (memory layers) the call returns LATENT_STATUS_UNSUPPORTED and the
/// network stays where it was.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_to_device(
    net: *mut latent_network,
    device: latent_device,
    ordinal: i32,
) -> latent_status {
    guard(|| {
        let h = unsafe { arg(net, "net")? };
        move_to(&h.device, device, ordinal, || h.write(), place)
    })
}

/// Where `net` runs: *device is a LATENT_DEVICE_* and *ordinal the GPU (0 on the CPU); either
/// may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_device(
    net: *const latent_network,
    device: *mut latent_device,
    ordinal: *mut i32,
) -> latent_status {
    guard(|| unsafe { report(&arg(net, "net")?.device, device, ordinal) })
}

/// TF32 tensor cores for a GPU network's products (1) or exact f32 (0, the default). TF32
/// keeps about 10 mantissa bits in the multiplies: faster on H100/H200, results within about
/// 1e-3 relative of f32. LATENT_STATUS_UNSUPPORTED for a network on the CPU.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_tf32(net: *mut latent_network, on: i32) -> latent_status {
    guard(|| {
        let h = unsafe { arg(net, "net")? };
        let on = flag(on, "on")?;
        let host = h.read()?;
        match h.on_device(&host, |d| set_tf32(d, on)) {
            Some(r) => r,
            None => Err(Error::Unsupported("the network is on the CPU: move it to a GPU first".into())),
        }
    })
}

#[cfg(feature = "cuda")]
fn place(host: &Network, ordinal: usize) -> Result<Placed> {
    let cuda = crate::backend::cuda::Cuda::new(ordinal)?;
    crate::backend::DeviceNetwork::new(cuda, host.clone())
}

#[cfg(not(feature = "cuda"))]
fn place(_host: &Network, _ordinal: usize) -> Result<Placed> {
    Err(crate::backend::no_cuda_build())
}

#[cfg(feature = "cuda")]
fn set_tf32(d: &mut Placed, on: bool) -> Result<()> {
    d.backend_mut().set_tf32(on)
}

#[cfg(not(feature = "cuda"))]
fn set_tf32(d: &mut Placed, _on: bool) -> Result<()> {
    match *d {}
}

/// An inference call that runs on the device when the network is there.
#[derive(Clone, Copy)]
pub(crate) enum DeviceCall {
    Encode,
    Decode,
    Reconstruct,
    Predict,
}

/// `call` on the device copy of `h` (None when the network is on the CPU, or when its
/// stochastic inference asks for sampling, which runs on the CPU).
pub(crate) fn device_rows(h: &latent_network, host: &Network, call: DeviceCall, m: &Matrix) -> Option<Result<Matrix>> {
    if host.stochastic_inference().is_some() && host.has_stochastic_layers() {
        return None;
    }
    h.on_device(host, |d| run_rows(d, call, m))
}

#[cfg(feature = "cuda")]
fn run_rows(d: &mut Placed, call: DeviceCall, m: &Matrix) -> Result<Matrix> {
    match call {
        DeviceCall::Encode => d.encode(m),
        DeviceCall::Decode => d.decode(m),
        DeviceCall::Reconstruct => d.reconstruct(m),
        DeviceCall::Predict => d.predict(m),
    }
}

#[cfg(not(feature = "cuda"))]
fn run_rows(d: &mut Placed, _call: DeviceCall, _m: &Matrix) -> Result<Matrix> {
    match *d {}
}

/// Refreshes the device copy from the host network after a writer changed it.
#[cfg(feature = "cuda")]
pub(crate) fn refresh(d: &mut Placed, host: &Network, ordinal: usize) -> Result<()> {
    if d.param_count() == host.param_count() && d.network_unsynced().spec() == host.spec() {
        d.set_params(host.params())
    } else {
        *d = place(host, ordinal)?;
        Ok(())
    }
}

#[cfg(not(feature = "cuda"))]
pub(crate) fn refresh(d: &mut Placed, _host: &Network, _ordinal: usize) -> Result<()> {
    match *d {}
}

/// Fits the device copy (latent_trainer_fit of a network on a GPU); the host copy gets the
/// result whatever the outcome (cancelled and diverged fits leave parameters too).
#[cfg(feature = "cuda")]
pub(crate) fn fit_placed(
    t: &mut crate::train::Trainer,
    d: &mut Placed,
    host: &mut Network,
    rows: &Matrix,
    valid: Option<&Matrix>,
    cb: crate::train::Watch<Network>,
) -> Result<()> {
    let r = match cb {
        // The callback sees the host copy, brought up to the device's parameters first.
        Some(f) => {
            let mut seen = |p: &crate::train::Progress, d: &mut Placed| {
                d.sync().is_ok() && host.set_params(d.network_unsynced().params()).is_ok() && f(p, host)
            };
            t.fit_device_watching(d, rows, valid, Some(&mut seen))
        }
        None => t.fit_device_watching(d, rows, valid, None),
    };
    d.sync()?;
    host.set_params(d.network_unsynced().params())?;
    r
}

#[cfg(not(feature = "cuda"))]
pub(crate) fn fit_placed(
    _t: &mut crate::train::Trainer,
    d: &mut Placed,
    _host: &mut Network,
    _rows: &Matrix,
    _valid: Option<&Matrix>,
    _cb: crate::train::Watch<Network>,
) -> Result<()> {
    match *d {}
}

impl super::vae::latent_vae {
    /// `f` on the GPU copy, refreshed from `host` (the caller holds its lock) when stale.
    pub(crate) fn on_device<R>(
        &self,
        host: &crate::vae::Vae,
        f: impl FnOnce(&mut PlacedVae) -> Result<R>,
    ) -> Option<Result<R>> {
        self.device.with(|d, ordinal| refresh_vae(d, host, ordinal), f)
    }
}

/// Moves a VAE to a device as latent_network_to_device moves a network: on a GPU, fits
/// (latent_trainer_fit_vae) and encode run there; everything else reads the host copy, which
/// every fit keeps current.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_to_device(
    vae: *mut super::vae::latent_vae,
    device: latent_device,
    ordinal: i32,
) -> latent_status {
    guard(|| {
        let h = unsafe { arg(vae, "vae")? };
        move_to(&h.device, device, ordinal, || h.write(), place_vae)
    })
}

/// Where `vae` runs (as latent_network_device).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_device(
    vae: *const super::vae::latent_vae,
    device: *mut latent_device,
    ordinal: *mut i32,
) -> latent_status {
    guard(|| unsafe { report(&arg(vae, "vae")?.device, device, ordinal) })
}

/// The (mean, log-variance) of the rows on the VAE's GPU copy (None on the CPU).
pub(crate) fn vae_encode(
    h: &super::vae::latent_vae,
    host: &crate::vae::Vae,
    m: &Matrix,
) -> Option<Result<(Matrix, Matrix)>> {
    h.on_device(host, |d| vae_encode_placed(d, m))
}

#[cfg(feature = "cuda")]
fn vae_encode_placed(d: &mut PlacedVae, m: &Matrix) -> Result<(Matrix, Matrix)> {
    d.encode(m)
}

#[cfg(not(feature = "cuda"))]
fn vae_encode_placed(d: &mut PlacedVae, _m: &Matrix) -> Result<(Matrix, Matrix)> {
    match *d {}
}

#[cfg(feature = "cuda")]
fn place_vae(host: &crate::vae::Vae, ordinal: usize) -> Result<PlacedVae> {
    let cuda = crate::backend::cuda::Cuda::new(ordinal)?;
    crate::backend::DeviceVae::new(cuda, host.clone())
}

#[cfg(not(feature = "cuda"))]
fn place_vae(_host: &crate::vae::Vae, _ordinal: usize) -> Result<PlacedVae> {
    Err(crate::backend::no_cuda_build())
}

#[cfg(feature = "cuda")]
pub(crate) fn refresh_vae(d: &mut PlacedVae, host: &crate::vae::Vae, ordinal: usize) -> Result<()> {
    if d.param_count() == host.param_count() && d.vae_unsynced().spec() == host.spec() {
        d.set_params(host.params())?;
        d.set_steps(host.steps());
        Ok(())
    } else {
        *d = place_vae(host, ordinal)?;
        Ok(())
    }
}

#[cfg(not(feature = "cuda"))]
pub(crate) fn refresh_vae(d: &mut PlacedVae, _host: &crate::vae::Vae, _ordinal: usize) -> Result<()> {
    match *d {}
}

/// Fits a VAE's GPU copy; the host copy gets the result (parameters and step count) whatever
/// the outcome.
#[cfg(feature = "cuda")]
pub(crate) fn fit_placed_vae(
    t: &mut crate::train::Trainer,
    d: &mut PlacedVae,
    host: &mut crate::vae::Vae,
    rows: &Matrix,
    valid: Option<&Matrix>,
    cb: crate::train::Watch<crate::vae::Vae>,
) -> Result<()> {
    let r = match cb {
        // The callback sees the host copy, brought up to the device's parameters first.
        Some(f) => {
            let mut seen = |p: &crate::train::Progress, d: &mut PlacedVae| {
                let ok = d.sync().is_ok() && host.set_params(d.vae_unsynced().params()).is_ok();
                host.set_steps(d.vae_unsynced().steps());
                ok && f(p, host)
            };
            t.fit_device_watching(d, rows, valid, Some(&mut seen))
        }
        None => t.fit_device_watching(d, rows, valid, None),
    };
    d.sync()?;
    host.set_params(d.vae_unsynced().params())?;
    host.set_steps(d.vae_unsynced().steps());
    r
}

#[cfg(not(feature = "cuda"))]
pub(crate) fn fit_placed_vae(
    _t: &mut crate::train::Trainer,
    d: &mut PlacedVae,
    _host: &mut crate::vae::Vae,
    _rows: &Matrix,
    _valid: Option<&Matrix>,
    _cb: crate::train::Watch<crate::vae::Vae>,
) -> Result<()> {
    match *d {}
}
