//! A model's parameters resident on a backend: the buffers every device model keeps (parameters,
//! gradient, optimizer state) beside its host copy, and when that copy is behind.

#![forbid(unsafe_code)]

use super::ops::Backend;
use super::optimizer::{DeviceOptimizer, Update, optimizer_update};
use crate::error::{Result, invalid};
use crate::train::Trainable;

pub struct Resident<B: Backend, H> {
    pub(crate) backend: B,
    /// The host model; its parameters are behind the device's while `stale`.
    pub(crate) host: H,
    pub(crate) params: B::Buf,
    pub(crate) grads: B::Buf,
    pub(crate) opt: Option<DeviceOptimizer<B>>,
    pub(crate) stale: bool,
}

impl<B: Backend, H: Trainable> Resident<B, H> {
    /// Copies `host`'s parameters onto the backend (one kernel indexes at most 2^31 values).
    pub fn new(backend: B, host: H) -> Result<Self> {
        let n = host.param_count();
        if n >= i32::MAX as usize {
            return Err(invalid!("{n} parameters exceed what one device kernel indexes (2^31)"));
        }
        let mut params = backend.alloc(n)?;
        backend.upload(host.params(), (&mut params, 0))?;
        let grads = backend.alloc(n)?;
        Ok(Resident { backend, host, params, grads, opt: None, stale: false })
    }

    /// Copies the device's parameters to the host model when they changed.
    pub fn sync(&mut self) -> Result<()> {
        if self.stale {
            let mut p = vec![0f32; self.host.param_count()];
            self.backend.download((&self.params, 0), &mut p)?;
            self.host.set_params(&p)?;
            self.stale = false;
        }
        Ok(())
    }

    /// Replaces the parameters on both sides.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        self.host.set_params(p)?;
        self.backend.upload(p, (&mut self.params, 0))?;
        self.stale = false;
        Ok(())
    }

    /// The gradient of the last step (a copy on the host).
    pub fn gradients(&self) -> Result<Vec<f32>> {
        let mut g = vec![0f32; self.host.param_count()];
        self.backend.download((&self.grads, 0), &mut g)?;
        Ok(g)
    }

    /// One optimizer update of the device's parameters.
    pub fn update(&mut self, u: Update<'_>) -> Result<()> {
        let host = &self.host;
        let (n, weights) = (host.param_count(), || host.weight_ranges());
        optimizer_update(&self.backend, &mut self.opt, &mut self.params, &self.grads, n, weights, u)?;
        self.stale = true;
        Ok(())
    }

    /// Puts back parameters saved on the device (the best epoch's).
    pub fn restore(&mut self, src: &B::Buf) -> Result<()> {
        self.stale = true;
        self.backend.copy((src, 0), (&mut self.params, 0), self.host.param_count())
    }
}
