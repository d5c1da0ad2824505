//! Where a model runs. [`Backend`] is one buffer type and a small set of coarse, typed
//! primitives (layer forward and backward, losses, penalties, noise, optimizer updates, sums);
//! the models written over it ([`DeviceNetwork`], [`DeviceVae`], the RBM) and the one training
//! loop ([`train`]) run on either backend.
//!
//! Two backends implement them: [`cpu::Cpu`], the CPU models' own code over `Vec<f32>` (GEMM
//! and rayon; the oracle the CUDA kernels are compared with, and what a network's CPU fit runs),
//! and the CUDA backend (`cuda` feature: cudarc, kernels in `src/backend/cuda/*.cu` compiled by
//! NVRTC once per process, cuBLAS for the products).

pub mod cpu;
mod dense;
pub mod minibatch;
pub mod network;
pub mod ops;
pub(crate) mod optimizer;
pub mod philox;
pub(crate) mod resident;
mod shards;
pub mod train;
pub mod vae;

/// The CUDA backend; in a build without the `cuda` feature, a stand-in with the same names
/// whose `Cuda` cannot be made, so that no caller needs a `cfg`.
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "cuda_absent.rs"]
pub mod cuda;

pub use cpu::Cpu;
pub use network::DeviceNetwork;
pub use ops::Backend;
pub use train::DeviceModel;
pub use vae::DeviceVae;

use crate::error::{Error, Result};

/// The CUDA sources, in the order NVRTC compiles them (one module: the header first).
pub const KERNEL_FILES: [(&str, &str); 6] = [
    ("common.cuh", include_str!("cuda/common.cuh")),
    ("elementwise.cu", include_str!("cuda/elementwise.cu")),
    ("optimizer.cu", include_str!("cuda/optimizer.cu")),
    ("reduce.cu", include_str!("cuda/reduce.cu")),
    ("vae.cu", include_str!("cuda/vae.cu")),
    ("functional.cu", include_str!("cuda/functional.cu")),
];

/// The whole kernel source NVRTC compiles: every file of [`KERNEL_FILES`] in order.
pub fn kernel_source() -> String {
    let mut s = String::new();
    for (name, text) in KERNEL_FILES {
        s.push_str(&format!("// ---- {name}\n"));
        s.push_str(text);
        s.push('\n');
    }
    s
}

/// Names of every kernel (`extern "C" __global__ void NAME(`) in [`kernel_source`].
pub fn kernel_names() -> Vec<String> {
    let src = kernel_source();
    let mut names = Vec::new();
    let key = "__global__ void ";
    let mut at = 0;
    while let Some(p) = src[at..].find(key) {
        let start = at + p + key.len();
        let end = start + src[start..].find('(').unwrap_or(0);
        names.push(src[start..end].trim().to_string());
        at = end;
    }
    names
}

/// A place where a network can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// An NVIDIA GPU by its CUDA ordinal.
    Cuda(usize),
}

/// What `list_devices` reports of a GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub total_memory: u64,
    pub free_memory: u64,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
}

/// Whether this build carries the CUDA backend at all.
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// The GPUs this process can use. Err(Unsupported) when the build has no CUDA backend or the
/// machine no driver; an empty list when the driver sees no GPU.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    cuda::list_devices()
}

#[cfg_attr(feature = "cuda", allow(dead_code))]
pub(crate) fn no_cuda_build() -> Error {
    Error::Unsupported("this build of latent has no CUDA backend (build with the `cuda` feature)".into())
}
