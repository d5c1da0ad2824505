//! Where a model runs, and the policy that keeps its copies in step.
//!
//! A model always has its host copy (what `save`, `params` and every CPU-only analysis read). On
//! a GPU it also has a device copy that fits and the inference calls the device can run use;
//! a fit there writes its result back to the host copy whatever its outcome (finished,
//! cancelled, diverged), and a change of the host copy (`set_params`, `set_threads`) marks the
//! device copy stale, refreshed before its next use. [`Placement`] holds the device copy beside
//! a host copy its caller keeps (the C handles keep the host under their own lock);
//! [`Placed`] is the model and its placement together, for Rust callers.
//!
//! Without the `cuda` build feature the device types still exist (a `Cuda` that cannot be
//! made), so this module and its callers carry no `cfg`: moving to a GPU returns Unsupported.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::backend::cuda::Cuda;
use crate::backend::{Device, DeviceModel, DeviceNetwork, DeviceVae};
use crate::error::{Error, Result};
use crate::network::Network;
use crate::tensor::Matrix;
use crate::train::{Progress, Snapshot, SnapshotWatch, Trainer, Watch};
use crate::vae::Vae;

/// A model that can have a GPU copy.
pub trait Placeable: Sized {
    /// The model's copy on a GPU.
    type OnDevice: DeviceModel;
    /// A new device copy of the host copy on GPU `ordinal`.
    fn place(&self, ordinal: usize) -> Result<Self::OnDevice>;
    /// Brings a stale device copy up to the host copy (a new copy when its shape changed).
    fn refresh(copy: &mut Self::OnDevice, host: &Self, ordinal: usize) -> Result<()>;
    /// Before a device fit: what the device copy takes from the host copy beyond its
    /// parameters.
    fn lend(_copy: &mut Self::OnDevice, _host: &Self) {}
    /// Brings the host copy up to the device copy during and after a device fit: its
    /// parameters and what else the fit changes.
    fn pull(copy: &mut Self::OnDevice, host: &mut Self) -> Result<()>;
    /// TF32 tensor cores for the copy's products.
    fn set_tf32(copy: &mut Self::OnDevice, on: bool) -> Result<()>;
}

impl Placeable for Network {
    type OnDevice = DeviceNetwork<Cuda>;

    fn place(&self, ordinal: usize) -> Result<Self::OnDevice> {
        DeviceNetwork::new(Cuda::new(ordinal)?, self.clone())
    }

    fn refresh(copy: &mut Self::OnDevice, host: &Self, ordinal: usize) -> Result<()> {
        if copy.param_count() == host.param_count() && copy.network_unsynced().spec() == host.spec() {
            copy.set_params(host.params())
        } else {
            *copy = host.place(ordinal)?;
            Ok(())
        }
    }

    // The freeze belongs to the caller's network: the device copy trains with it and counts
    // its epochs, and the count comes back.
    fn lend(d: &mut Self::OnDevice, host: &Self) {
        d.set_freeze(host.frozen().cloned());
    }

    fn pull(d: &mut Self::OnDevice, host: &mut Self) -> Result<()> {
        d.sync()?;
        host.set_params(d.network_unsynced().params())?;
        host.frozen = d.network_unsynced().frozen().cloned();
        Ok(())
    }

    fn set_tf32(copy: &mut Self::OnDevice, on: bool) -> Result<()> {
        copy.backend_mut().set_tf32(on)
    }
}

impl Placeable for Vae {
    type OnDevice = DeviceVae<Cuda>;

    fn place(&self, ordinal: usize) -> Result<Self::OnDevice> {
        DeviceVae::new(Cuda::new(ordinal)?, self.clone())
    }

    fn refresh(copy: &mut Self::OnDevice, host: &Self, ordinal: usize) -> Result<()> {
        if copy.param_count() == host.param_count() && copy.vae_unsynced().spec() == host.spec() {
            copy.set_params(host.params())?;
            copy.set_steps(host.steps());
            Ok(())
        } else {
            *copy = host.place(ordinal)?;
            Ok(())
        }
    }

    fn pull(d: &mut Self::OnDevice, host: &mut Self) -> Result<()> {
        d.sync()?;
        host.set_params(d.vae_unsynced().params())?;
        host.set_steps(d.vae_unsynced().steps());
        Ok(())
    }

    fn set_tf32(copy: &mut Self::OnDevice, on: bool) -> Result<()> {
        copy.backend_mut().set_tf32(on)
    }
}

/// A model's device copy, if it has one, beside the host copy its owner keeps. The methods
/// take that host copy; device work on one placement runs one call at a time (the copy is
/// behind a mutex). While a device fit runs, the fit holds the copy: inference from its
/// progress callback then reads the host copy, which the fit brings up to date before each
/// callback (so nothing waits on the fit that is waiting on it).
pub struct Placement<M: Placeable> {
    slot: Mutex<Option<(M::OnDevice, usize)>>,
    /// The GPU ordinal, or [`ON_CPU`]: readable while a fit holds the slot.
    ordinal: AtomicUsize,
    stale: AtomicBool,
    fitting: AtomicBool,
}

const ON_CPU: usize = usize::MAX;

impl<M: Placeable> Default for Placement<M> {
    fn default() -> Self {
        Placement {
            slot: Mutex::new(None),
            ordinal: AtomicUsize::new(ON_CPU),
            stale: AtomicBool::new(false),
            fitting: AtomicBool::new(false),
        }
    }
}

/// Clears a placement's fitting flag when the fit ends, however it ends.
struct FitMark<'a>(&'a AtomicBool);

impl Drop for FitMark<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// An inference over rows that a network runs on its device when it is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsCall {
    Encode,
    Decode,
    Reconstruct,
    Predict,
}

impl RowsCall {
    /// (input width, output width) of the call on `net`.
    pub fn widths(self, net: &Network) -> (usize, usize) {
        match self {
            RowsCall::Encode => (net.input_dim(), net.code_dim()),
            RowsCall::Decode => (net.code_dim(), net.output_dim()),
            RowsCall::Reconstruct | RowsCall::Predict => (net.input_dim(), net.output_dim()),
        }
    }

    /// Whether the call applies to `net`: decode and reconstruct are an autoencoder's (on a
    /// classifier they gave the head's logits mapped through the input scaling, into a buffer
    /// the caller had sized rows x input_dim: an outside test read uninitialised memory).
    pub fn check(self, net: &Network) -> Result<()> {
        if matches!(self, RowsCall::Decode | RowsCall::Reconstruct) && net.task().is_supervised() {
            return Err(crate::error::invalid!(
                "{} is an autoencoder's; this is a {} network (its outputs: predict)",
                if self == RowsCall::Decode { "decode" } else { "reconstruct" },
                net.task().name()
            ));
        }
        Ok(())
    }

    /// The call on the host copy.
    pub fn on_host(self, net: &Network, x: &Matrix) -> Result<Matrix> {
        match self {
            RowsCall::Encode => net.encode(x),
            RowsCall::Decode => net.decode(x),
            RowsCall::Reconstruct => net.reconstruct(x),
            RowsCall::Predict => net.predict(x),
        }
    }

    fn on_device(self, d: &mut DeviceNetwork<Cuda>, x: &Matrix) -> Result<Matrix> {
        match self {
            RowsCall::Encode => d.encode(x),
            RowsCall::Decode => d.decode(x),
            RowsCall::Reconstruct => d.reconstruct(x),
            RowsCall::Predict => d.predict(x),
        }
    }
}

impl<M: Placeable> Placement<M> {
    fn lock(&self) -> MutexGuard<'_, Option<(M::OnDevice, usize)>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the model runs.
    pub fn device(&self) -> Device {
        match self.ordinal.load(Ordering::Acquire) {
            ON_CPU => Device::Cpu,
            o => Device::Cuda(o),
        }
    }

    /// The host copy changed: the device copy is refreshed before its next use.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    /// Moves the model: a new device copy of `host` (Unsupported without a GPU, the CUDA
    /// backend, or for a model the device cannot run; the model then stays where it was), or
    /// back to the CPU (the host copy is always current).
    pub fn move_to(&self, host: &M, device: Device) -> Result<()> {
        let copy = match device {
            Device::Cpu => None,
            Device::Cuda(ordinal) => Some((host.place(ordinal)?, ordinal)),
        };
        let mut slot = self.lock();
        self.ordinal.store(copy.as_ref().map_or(ON_CPU, |c| c.1), Ordering::Release);
        *slot = copy;
        self.stale.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// `f` on the device copy (refreshed from `host` when stale); None on the CPU, and during
    /// a device fit (whose callback reads the host copy).
    pub fn on_device<R>(&self, host: &M, f: impl FnOnce(&mut M::OnDevice) -> Result<R>) -> Option<Result<R>> {
        if self.fitting.load(Ordering::Acquire) {
            return None;
        }
        let mut slot = self.lock();
        let (d, ordinal) = slot.as_mut()?;
        if self.stale.swap(false, Ordering::SeqCst)
            && let Err(e) = M::refresh(d, host, *ordinal)
        {
            self.mark_stale();
            return Some(Err(e));
        }
        Some(f(d))
    }

    /// Trains the model where it lives: [`Trainer::fit_watching`] on the host copy, or the
    /// device fit that writes its result back to it.
    pub fn fit(
        &self,
        t: &mut Trainer,
        host: &mut M,
        rows: &Matrix,
        valid: Option<&Matrix>,
        progress: Watch<M>,
    ) -> Result<()>
    where
        M: crate::train::Trainable,
    {
        let mut g = progress.map(|f| move |p: &Progress, s: &Snapshot<M>| f(p, s.model));
        self.fit_snapshots(t, host, rows, valid, g.as_mut().map(|g| g as _))
    }

    /// [`Placement::fit`] with a callback that sees the fit's [`Snapshot`] (a checkpoint can
    /// be saved from it on the CPU; a device fit's snapshot has the model only).
    pub fn fit_snapshots(
        &self,
        t: &mut Trainer,
        host: &mut M,
        rows: &Matrix,
        valid: Option<&Matrix>,
        progress: SnapshotWatch<M>,
    ) -> Result<()>
    where
        M: crate::train::Trainable,
    {
        let mut slot = self.lock();
        let Some((d, ordinal)) = slot.as_mut() else {
            drop(slot);
            return t.fit_snapshots(host, rows, valid, progress);
        };
        let mut progress = progress;
        let has_progress = progress.is_some();
        let mut on_device = |p: &Progress, m: &M| match progress.as_mut() {
            Some(f) => f(p, &Snapshot::model_only(m, crate::train::trainer::NoState::Device)),
            None => true,
        };
        let progress: Watch<M> = if has_progress { Some(&mut on_device) } else { None };
        if self.fitting.swap(true, Ordering::AcqRel) {
            return Err(Error::Busy("the model is being trained on its device: a second fit is refused".into()));
        }
        let _mark = FitMark(&self.fitting);
        // What a CPU fit does before its first step happens on the host copy here too (a new
        // network's functional layers centre their biases on the training rows); a model it
        // changed goes to the device again.
        if host.begin_fit(rows, crate::pool::resolve_threads(t.config().threads))? {
            self.mark_stale();
        }
        if self.stale.swap(false, Ordering::SeqCst)
            && let Err(e) = M::refresh(d, host, *ordinal)
        {
            self.mark_stale();
            return Err(e);
        }
        // The host copy gets the result whatever the outcome, and the callback sees it brought
        // up to the device's parameters.
        M::lend(d, host);
        let r = match progress {
            Some(f) => {
                let mut seen = |p: &Progress, d: &mut M::OnDevice| M::pull(d, host).is_ok() && f(p, host);
                t.fit_device_watching(d, rows, valid, Some(&mut seen))
            }
            None => t.fit_device_watching(d, rows, valid, None),
        };
        M::pull(d, host)?;
        r
    }

    /// [`Trainer::fit_source`] where the model lives: on the CPU; a streamed fit of a model on
    /// a GPU is Unsupported (move it to the CPU, or stream minibatches to the device from
    /// memory with [`Trainer::set_device_streaming`]).
    pub fn fit_source(
        &self,
        t: &mut Trainer,
        host: &mut M,
        src: &mut dyn crate::data::stream::RowSource,
        valid: Option<&Matrix>,
        progress: SnapshotWatch<M>,
    ) -> Result<()>
    where
        M: crate::train::Trainable,
    {
        if let Device::Cuda(o) = self.device()
            && src.in_memory().is_none()
        {
            return Err(Error::Unsupported(format!(
                "the model is on GPU {o}: a fit that streams its rows from files runs on the CPU (move the model to the CPU first)"
            )));
        }
        match src.in_memory() {
            Some(m) => self.fit_snapshots(t, host, m, valid, progress),
            None => t.fit_source(host, src, valid, progress),
        }
    }

    /// [`Placement::fit_snapshots`] on datasets: the training rows the model takes from them (a
    /// supervised network's inputs and targets), and the training set's scaling stored in the
    /// model before the first step (a scaled dataset's replaces the stored one: the latest
    /// training data define the model's inputs; see [`crate::preprocess`]).
    pub fn fit_dataset(
        &self,
        t: &mut Trainer,
        host: &mut M,
        train: &crate::data::Dataset,
        valid: Option<&crate::data::Dataset>,
        progress: SnapshotWatch<M>,
    ) -> Result<()>
    where
        M: crate::train::Trainable,
    {
        let rows = host.training_rows(train, "the training data")?;
        let valid = valid.map(|v| host.training_rows(v, "the validation data")).transpose()?;
        host.adopt_scaling(train)?;
        self.fit_snapshots(t, host, &rows, valid.as_deref(), progress)
    }

    /// TF32 tensor cores for the device copy's products; Unsupported on the CPU.
    pub fn set_tf32(&self, host: &M, on: bool) -> Result<()> {
        if self.fitting.load(Ordering::Acquire) {
            return Err(Error::Busy("the model is being trained on its device: changing TF32 is refused".into()));
        }
        self.on_device(host, |d| M::set_tf32(d, on))
            .unwrap_or_else(|| Err(Error::Unsupported("the model is on the CPU: move it to a GPU first".into())))
    }
}

impl Placement<Network> {
    /// `call` on the rows, on the device when the network is there (sampling stochastic
    /// inference and zero rows stay on the host).
    pub fn rows(&self, host: &Network, call: RowsCall, x: &Matrix) -> Result<Matrix> {
        let sampling = host.stochastic_inference().is_some() && host.has_stochastic_layers();
        if x.rows() > 0
            && !sampling
            && let Some(r) = self.on_device(host, |d| call.on_device(d, x))
        {
            return r;
        }
        call.on_host(host, x)
    }
}

impl Placement<Vae> {
    /// The posterior (means, log-variances) of the rows, on the device when the VAE is there.
    pub fn encode(&self, host: &Vae, x: &Matrix) -> Result<(Matrix, Matrix)> {
        if x.rows() > 0
            && let Some(r) = self.on_device(host, |d| d.encode(x))
        {
            return r;
        }
        host.encode(x)
    }
}

/// A model with its placement, for Rust callers: moved with [`Placed::to_device`], trained
/// where it lives with [`Placed::fit`]; [`Placed::model`] is always current.
pub struct Placed<M: Placeable> {
    model: M,
    placement: Placement<M>,
}

impl<M: Placeable> Placed<M> {
    /// The model, on the CPU.
    pub fn new(model: M) -> Placed<M> {
        Placed { model, placement: Placement::default() }
    }

    /// Moves the model to `device` (see [`Placement::move_to`]).
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        self.placement.move_to(&self.model, device)
    }

    pub fn device(&self) -> Device {
        self.placement.device()
    }

    /// The model's parameters and structure as they are now (what save writes).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, to change it; the device copy follows at its next use.
    pub fn model_mut(&mut self) -> &mut M {
        self.placement.mark_stale();
        &mut self.model
    }

    pub fn into_model(self) -> M {
        self.model
    }

    pub fn placement(&self) -> &Placement<M> {
        &self.placement
    }

    /// Trains the model where it lives (see [`Placement::fit`]).
    pub fn fit(&mut self, t: &mut Trainer, rows: &Matrix, valid: Option<&Matrix>, progress: Watch<M>) -> Result<()>
    where
        M: crate::train::Trainable,
    {
        self.placement.fit(t, &mut self.model, rows, valid, progress)
    }

    /// Trains the model where it lives, with a callback that sees the fit's [`Snapshot`] (see
    /// [`Placement::fit_snapshots`]).
    pub fn fit_snapshots(
        &mut self,
        t: &mut Trainer,
        rows: &Matrix,
        valid: Option<&Matrix>,
        progress: SnapshotWatch<M>,
    ) -> Result<()>
    where
        M: crate::train::Trainable,
    {
        self.placement.fit_snapshots(t, &mut self.model, rows, valid, progress)
    }

    /// TF32 tensor cores on the GPU (Unsupported on the CPU).
    pub fn set_tf32(&self, on: bool) -> Result<()> {
        self.placement.set_tf32(&self.model, on)
    }
}

impl Placed<Network> {
    pub fn encode(&self, x: &Matrix) -> Result<Matrix> {
        self.placement.rows(&self.model, RowsCall::Encode, x)
    }
    pub fn decode(&self, codes: &Matrix) -> Result<Matrix> {
        self.placement.rows(&self.model, RowsCall::Decode, codes)
    }
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        self.placement.rows(&self.model, RowsCall::Reconstruct, x)
    }
    pub fn predict(&self, x: &Matrix) -> Result<Matrix> {
        self.placement.rows(&self.model, RowsCall::Predict, x)
    }
}

impl Placed<Vae> {
    /// The posterior (means, log-variances) of the rows.
    pub fn encode(&self, x: &Matrix) -> Result<(Matrix, Matrix)> {
        self.placement.encode(&self.model, x)
    }
}
