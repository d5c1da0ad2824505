//! C API of devices: which GPUs there are, and moving a network or VAE onto one. The policy
//! (which calls run there, how the host copy is kept in step) is the engine's:
//! [`crate::placement`].

use std::ffi::c_char;

use super::*;
use crate::backend::Device;
use crate::error::{Result, invalid};
use crate::placement::{Placeable, Placement};

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

/// The body of the to_device calls: the host copy locked for writing (by `write`), then moved.
fn move_to<M: Placeable, G: std::ops::Deref<Target = M>>(
    placement: &Placement<M>,
    device: latent_device,
    ordinal: i32,
    write: impl FnOnce() -> Result<G>,
) -> Result<()> {
    let device = match device {
        LATENT_DEVICE_CPU => Device::Cpu,
        LATENT_DEVICE_CUDA => {
            Device::Cuda(usize::try_from(ordinal).map_err(|_| invalid!("ordinal {ordinal} is negative"))?)
        }
        d => return Err(invalid!("device {d} is not LATENT_DEVICE_CPU (0) or LATENT_DEVICE_CUDA (1)")),
    };
    let host = write()?;
    placement.move_to(&host, device)
}

/// Writes a handle's placement through the (optional) out-pointers.
unsafe fn report<M: Placeable>(placement: &Placement<M>, device: *mut latent_device, ordinal: *mut i32) -> Result<()> {
    let (d, o) = match placement.device() {
        Device::Cpu => (LATENT_DEVICE_CPU, 0),
        Device::Cuda(o) => (LATENT_DEVICE_CUDA, o as i32),
    };
    if !device.is_null() {
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(device, d) };
    }
    if !ordinal.is_null() {
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(ordinal, o) };
    }
    Ok(())
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
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(count, 0) };
        let d = crate::backend::list_devices()?;
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
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
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
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
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        move_to(&h.device, device, ordinal, || h.write())
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
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    guard(|| unsafe { report(&arg(net, "net")?.device, device, ordinal) })
}

/// TF32 tensor cores for a GPU network's products (1) or exact f32 (0, the default). TF32
/// keeps about 10 mantissa bits in the multiplies: faster on H100/H200, results within about
/// 1e-3 relative of f32. LATENT_STATUS_UNSUPPORTED for a network on the CPU.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_tf32(net: *mut latent_network, on: i32) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        let on = flag(on, "on")?;
        let host = h.read()?;
        h.device.set_tf32(&host, on)
    })
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
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(vae, "vae")? };
        move_to(&h.device, device, ordinal, || h.write())
    })
}

/// Where `vae` runs (as latent_network_device).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_device(
    vae: *const super::vae::latent_vae,
    device: *mut latent_device,
    ordinal: *mut i32,
) -> latent_status {
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    guard(|| unsafe { report(&arg(vae, "vae")?.device, device, ordinal) })
}
