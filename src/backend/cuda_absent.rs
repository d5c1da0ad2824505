//! The CUDA backend's stand-in in a build without the `cuda` feature: the same names, a `Cuda`
//! that can never be made ([`Cuda::new`] says why), so every caller compiles unchanged and
//! nothing outside `backend/` needs a `cfg`.

#![forbid(unsafe_code)]

use std::convert::Infallible;

use super::ops::{Backend, Gemm, In, Op, Out, SLOTS};
use super::{DeviceInfo, no_cuda_build};
use crate::error::Result;

/// A GPU this build cannot drive: no value of it exists.
pub struct Cuda {
    never: Infallible,
}

/// Err(Unsupported): the build has no CUDA backend.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    Err(no_cuda_build())
}

impl Cuda {
    /// Err(Unsupported): the build has no CUDA backend.
    pub fn new(_ordinal: usize) -> Result<Cuda> {
        Err(no_cuda_build())
    }
    pub fn ordinal(&self) -> usize {
        match self.never {}
    }
    pub fn set_tf32(&mut self, _on: bool) -> Result<()> {
        match self.never {}
    }
    pub fn tf32(&self) -> bool {
        match self.never {}
    }
}

impl Backend for Cuda {
    type Buf = Infallible;
    type Ids = Infallible;

    fn alloc(&self, _n: usize) -> Result<Infallible> {
        match self.never {}
    }
    fn alloc_ids(&self, _n: usize) -> Result<Infallible> {
        match self.never {}
    }
    fn upload(&self, _src: &[f32], _dst: Out<'_, Infallible>) -> Result<()> {
        match self.never {}
    }
    fn upload_ids(&self, _src: &[u32], _dst: &mut Infallible) -> Result<()> {
        match self.never {}
    }
    fn download(&self, _src: In<'_, Infallible>, _dst: &mut [f32]) -> Result<()> {
        match self.never {}
    }
    fn copy(&self, _src: In<'_, Infallible>, _dst: Out<'_, Infallible>, _n: usize) -> Result<()> {
        match self.never {}
    }
    fn upload_async(
        &self,
        _slot: usize,
        _n: usize,
        _fill: &mut dyn FnMut(&mut [f32]),
        _dst: Out<'_, Infallible>,
    ) -> Result<()> {
        match self.never {}
    }
    fn await_upload(&self, _slot: usize) -> Result<()> {
        match self.never {}
    }
    fn free_memory(&self) -> Option<u64> {
        match self.never {}
    }
    fn gemm(&self, _g: Gemm, _a: &Infallible, _b: &Infallible, _c: &mut Infallible) -> Result<()> {
        match self.never {}
    }
    fn run(&self, _op: Op<'_, Self>) -> Result<()> {
        match self.never {}
    }
    fn reset_slots(&self) -> Result<()> {
        match self.never {}
    }
    fn read_slots(&self) -> Result<[f64; SLOTS]> {
        match self.never {}
    }
    fn synchronize(&self) -> Result<()> {
        match self.never {}
    }
}
