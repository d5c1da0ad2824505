//! The optimizer on a backend: [`Optimizer`]'s bookkeeping (weight-decay segments, frozen
//! ranges, per-segment step counts) with its moment buffers where the parameters are, each
//! piece of a step one fused primitive (SGD, Adam, or one of the adaptive ones). On the CPU backend those primitives are
//! `optim::update`, the pass the CPU trainer runs: one optimizer, one formula.

#![forbid(unsafe_code)]

use std::ops::Range;

use super::ops::{Backend, Op, Slot};
use crate::error::Result;
use crate::optim::{Optimizer, OptimizerConfig, OptimizerKind};

/// An optimizer whose state lives on backend `B`.
pub(crate) struct DeviceOptimizer<B: Backend> {
    opt: Optimizer<B::Buf>,
    /// The gradient's scale on the backend (the clipping factor; 1 without clipping).
    gscale: B::Buf,
}

impl<B: Backend> DeviceOptimizer<B> {
    pub(crate) fn new(
        be: &B,
        config: OptimizerConfig,
        n: usize,
        weights: &[Range<usize>],
    ) -> Result<DeviceOptimizer<B>> {
        let opt = Optimizer::with_state(config, n, weights, be.alloc(n)?, be.alloc(n)?)?;
        let mut gscale = be.alloc(1)?;
        be.run(Op::Fill { x: (&mut gscale, 0), n: 1, v: 1.0 })?;
        Ok(DeviceOptimizer { opt, gscale })
    }

    /// An optimizer whose state is `opt` (moments already on this backend).
    pub(crate) fn from_state(be: &B, opt: Optimizer<B::Buf>) -> Result<DeviceOptimizer<B>> {
        let mut gscale = be.alloc(1)?;
        be.run(Op::Fill { x: (&mut gscale, 0), n: 1, v: 1.0 })?;
        Ok(DeviceOptimizer { opt, gscale })
    }

    pub(crate) fn state(&self) -> &Optimizer<B::Buf> {
        &self.opt
    }

    pub(crate) fn into_state(self) -> Optimizer<B::Buf> {
        self.opt
    }

    /// One update of `params` from `grads`: a primitive per piece of the step.
    fn step(&mut self, be: &B, params: &mut B::Buf, grads: &B::Buf, lr: f32, momentum: f32) -> Result<()> {
        self.opt.set_momentum(momentum);
        let (c, mu) = (self.opt.config, self.opt.momentum());
        let pieces = self.opt.begin_step();
        let (m, v) = self.opt.moments_mut();
        let gscale = &self.gscale;
        for piece in pieces {
            let (a, n, wd) = (piece.range.start, piece.range.len(), piece.decay);
            match c.kind {
                OptimizerKind::Sgd => be.run(Op::Sgd {
                    p: (params, a),
                    g: (grads, a),
                    v: (m, a),
                    n,
                    wd,
                    gscale,
                    lr,
                    mu,
                    nesterov: c.nesterov,
                })?,
                kind => be.run(Op::Adaptive {
                    kind,
                    p: (params, a),
                    g: (grads, a),
                    m: (&mut *m, a),
                    v: (&mut *v, a),
                    n,
                    wd,
                    gscale,
                    lr,
                    b1: c.beta1,
                    b2: c.beta2,
                    eps: c.epsilon,
                    bc1: piece.bc1,
                    bc2: piece.bc2,
                })?,
            }
        }
        Ok(())
    }
}

/// What one update does: the configuration, the step's learning rate and SGD momentum (from the
/// schedules), the gradient-norm clip (0: off) and the ranges it leaves frozen.
#[derive(Clone, Copy, Debug)]
pub struct Update<'a> {
    pub config: &'a OptimizerConfig,
    pub lr: f32,
    pub momentum: f32,
    pub clip: f32,
    pub frozen: &'a [Range<usize>],
}

/// One optimizer update `u` of the n values of `params` from `grads`; the optimizer state is made
/// (or remade when the configuration changed) on first use.
pub(crate) fn optimizer_update<B: Backend>(
    be: &B,
    opt: &mut Option<DeviceOptimizer<B>>,
    params: &mut B::Buf,
    grads: &B::Buf,
    n: usize,
    weights: impl FnOnce() -> Vec<Range<usize>>,
    u: Update<'_>,
) -> Result<()> {
    let Update { config, lr, momentum, clip, frozen } = u;
    let keep = matches!(opt, Some(o) if o.opt.config == *config && o.opt.len() == n);
    if !keep {
        *opt = Some(DeviceOptimizer::new(be, *config, n, &weights())?);
    }
    let o = opt.as_mut().expect("optimizer");
    o.opt.set_frozen(frozen);
    if clip > 0.0 {
        be.run(Op::SumSq { x: (grads, 0), n, slot: Slot::GradSq })?;
        be.run(Op::ClipFactor { factor: &mut o.gscale, max_norm: clip })?;
    }
    o.step(be, params, grads, lr, momentum)
}
