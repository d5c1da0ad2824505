//! First-order optimizers over the flat parameter buffer, each one fused pass per step.

// The SIMD dispatch of `simd::multiversion!` is the one exception (allowed where it expands).
#![deny(unsafe_code)]

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod lion;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;

pub use schedule::{LrSchedule, Schedule};

use std::ops::Range;

use crate::error::{Result, invalid};
use crate::parallel::{self, for_each_chunk_mut};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
    RmsProp,
    AdaGrad,
    AdaDelta,
    AdaMax,
    Lion,
}

impl OptimizerKind {
    pub fn from_code(c: i32) -> Result<OptimizerKind> {
        match c {
            0 => Ok(OptimizerKind::Sgd),
            1 => Ok(OptimizerKind::Adam),
            2 => Ok(OptimizerKind::AdamW),
            3 => Ok(OptimizerKind::RmsProp),
            4 => Ok(OptimizerKind::AdaGrad),
            5 => Ok(OptimizerKind::AdaDelta),
            6 => Ok(OptimizerKind::AdaMax),
            7 => Ok(OptimizerKind::Lion),
            _ => Err(invalid!("optimizer code {c} is out of range (0 to 7)")),
        }
    }
    pub fn code(self) -> i32 {
        self as i32
    }
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::RmsProp => "rmsprop",
            OptimizerKind::AdaGrad => "adagrad",
            OptimizerKind::AdaDelta => "adadelta",
            OptimizerKind::AdaMax => "adamax",
            OptimizerKind::Lion => "lion",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f32,
    pub nesterov: bool,
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// L2 penalty 0.5 * wd * ||W||^2 on weights (not biases); decoupled for AdamW.
    pub weight_decay: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            momentum: 0.9,
            nesterov: false,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl OptimizerConfig {
    pub fn validate(&self) -> Result<()> {
        let ok = |v: f32, lo: f32, hi: f32| v.is_finite() && v >= lo && v <= hi;
        if !ok(self.momentum, 0.0, 1.0) {
            return Err(invalid!("momentum {} must be in [0, 1]", self.momentum));
        }
        if !ok(self.beta1, 0.0, 0.999_999) || !ok(self.beta2, 0.0, 0.999_999_9) {
            return Err(invalid!("Adam betas ({}, {}) must be in [0, 1)", self.beta1, self.beta2));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(invalid!("epsilon {} must be positive", self.epsilon));
        }
        if !ok(self.weight_decay, 0.0, f32::MAX) {
            return Err(invalid!("weight decay {} must be finite and >= 0", self.weight_decay));
        }
        Ok(())
    }
}

crate::simd::multiversion!(fn sgd_wide(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, mu: f32, nesterov: bool, wd: f32) => sgd::update);
crate::simd::multiversion!(fn rmsprop_wide(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, rho: f32, eps: f32, wd: f32) => rmsprop::update);
crate::simd::multiversion!(fn adagrad_wide(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, eps: f32, wd: f32) => adagrad::update);
crate::simd::multiversion!(fn adadelta_wide(p: &mut [f32], g: &[f32], u: &mut [f32], v: &mut [f32], lr: f32, rho: f32, eps: f32, wd: f32) => adadelta::update);
crate::simd::multiversion!(fn adamax_wide(p: &mut [f32], g: &[f32], m: &mut [f32], u: &mut [f32], lr: f32, b1: f32, b2: f32, eps: f32, bc1: f64, wd: f32) => adamax::update);
crate::simd::multiversion!(fn lion_wide(p: &mut [f32], g: &[f32], m: &mut [f32], lr: f32, b1: f32, b2: f32, wd: f32) => lion::update);
crate::simd::multiversion!(fn adam_wide(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], lr: f32, b1: f32, b2: f32, eps: f32, bc1: f64, bc2: f64, wd: f32, decoupled: bool) => adam::update);

/// Optimizer state for one network: the bookkeeping (segments, frozen pieces, step counts) on
/// the host, the moment buffers `S` where the parameters live (`Lined` on the CPU, a device
/// buffer on a GPU; `backend::optimizer` steps those through the backend's primitives).
#[derive(Clone, Debug)]
pub struct Optimizer<S = crate::backend::cpu::Lined> {
    pub config: OptimizerConfig,
    step: u64,
    /// SGD momentum of the next steps: `config.momentum` unless a schedule set another.
    momentum: f32,
    m: S,
    v: S,
    /// (range, weight decay) segments covering the whole buffer in order.
    segments: Vec<(Range<usize>, f32)>,
    /// Updates each segment has taken: Adam's bias correction counts a segment's own steps, so
    /// a segment that was frozen starts its moments afresh when it thaws (PyTorch keeps a step
    /// count per parameter for the same reason). Equal to `step` for every segment that was
    /// never frozen.
    seg_steps: Vec<u64>,
    /// (range, weight decay, segment) pieces a step updates: the segments less the frozen
    /// ranges ([`Optimizer::set_frozen`]); the segments themselves when nothing is frozen.
    active: Vec<(Range<usize>, f32, usize)>,
    /// The frozen ranges `active` leaves out (sorted, non-empty ones).
    frozen: Vec<Range<usize>>,
}

/// A run of parameters one fused pass updates: its range, weight decay and Adam's bias
/// corrections 1 - b1^t, 1 - b2^t for the segment's own step count t.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub range: Range<usize>,
    pub decay: f32,
    pub bc1: f64,
    pub bc2: f64,
}

impl Optimizer {
    /// `weights`: the ranges that are weights (decayed); the rest are biases.
    pub fn new(config: OptimizerConfig, n: usize, weights: &[Range<usize>]) -> Result<Optimizer> {
        // Both state buffers always exist (SGD uses only m, its velocity; plain SGD is mu = 0),
        // which keeps the update a single zip over equal chunks.
        Optimizer::with_state(
            config,
            n,
            weights,
            crate::backend::cpu::Lined::zeros(n)?,
            crate::backend::cpu::Lined::zeros(n)?,
        )
    }
}

impl<S> Optimizer<S> {
    /// An optimizer whose moment buffers (n values each, zero) are `m` and `v`.
    pub fn with_state(config: OptimizerConfig, n: usize, weights: &[Range<usize>], m: S, v: S) -> Result<Optimizer<S>> {
        config.validate()?;
        let mut w: Vec<Range<usize>> = weights.to_vec();
        w.sort_by_key(|r| r.start);
        let mut segments = Vec::new();
        let mut at = 0;
        for r in w {
            if r.start > at {
                segments.push((at..r.start, 0.0));
            }
            segments.push((r.clone(), config.weight_decay));
            at = r.end;
        }
        if at < n {
            segments.push((at..n, 0.0));
        }
        let active = segments.iter().enumerate().map(|(i, (r, wd))| (r.clone(), *wd, i)).collect();
        let seg_steps = vec![0; segments.len()];
        Ok(Optimizer {
            config,
            step: 0,
            momentum: config.momentum,
            m,
            v,
            segments,
            seg_steps,
            active,
            frozen: Vec::new(),
        })
    }

    /// Freezes `ranges` of the parameters for the following steps (a learning-rate multiplier
    /// of 0): a step leaves them, and their optimizer state, exactly as they are (no weight
    /// decay either). Replaces the previous frozen set; an empty list thaws everything. Setting
    /// the same set again (every step of a device fit) changes nothing.
    pub fn set_frozen(&mut self, ranges: &[Range<usize>]) {
        let mut frozen: Vec<Range<usize>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
        frozen.sort_by_key(|r| r.start);
        if frozen == self.frozen {
            return;
        }
        self.active.clear();
        for (i, (seg, wd)) in self.segments.iter().enumerate() {
            // Walk the segment, skipping the frozen ranges that overlap it.
            let mut at = seg.start;
            for f in frozen.iter().filter(|f| f.start < seg.end && f.end > seg.start) {
                if f.start > at {
                    self.active.push((at..f.start, *wd, i));
                }
                at = at.max(f.end);
            }
            if at < seg.end {
                self.active.push((at..seg.end, *wd, i));
            }
        }
        self.frozen = frozen;
    }

    pub fn len(&self) -> usize {
        self.segments.last().map_or(0, |s| s.0.end)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Sets the SGD momentum of the following steps (a momentum schedule); the velocity is kept.
    /// `config` is left as configured, so a trainer still recognises this state as its own.
    /// Adam and AdamW ignore it.
    pub fn set_momentum(&mut self, momentum: f32) {
        debug_assert!((0.0..=1.0).contains(&momentum));
        self.momentum = momentum;
    }
    pub fn momentum(&self) -> f32 {
        self.momentum
    }

    /// The moment buffers (first moments or SGD velocity, second moments).
    pub fn moments_mut(&mut self) -> (&mut S, &mut S) {
        (&mut self.m, &mut self.v)
    }

    /// Counts one step and gives the pieces it updates: the segments less the frozen ranges,
    /// with neighbours of the same decay and step count joined (one pass each).
    pub fn begin_step(&mut self) -> Vec<Piece> {
        self.step += 1;
        let c = self.config;
        // A segment split by a frozen range counts one step for all its pieces.
        let mut last = usize::MAX;
        for &(_, _, i) in &self.active {
            if i != last {
                self.seg_steps[i] += 1;
                last = i;
            }
        }
        let mut pieces: Vec<(Piece, u64)> = Vec::with_capacity(self.active.len());
        for (range, decay, seg) in &self.active {
            let t = self.seg_steps[*seg];
            if let Some((p, pt)) = pieces.last_mut()
                && p.range.end == range.start
                && p.decay == *decay
                && *pt == t
            {
                p.range.end = range.end;
                continue;
            }
            let bc1 = 1.0 - (c.beta1 as f64).powi(t as i32);
            let bc2 = 1.0 - (c.beta2 as f64).powi(t as i32);
            pieces.push((Piece { range: range.clone(), decay: *decay, bc1, bc2 }, t));
        }
        pieces.into_iter().map(|(p, _)| p).collect()
    }
}

impl Optimizer {
    /// The state a checkpoint keeps: (steps taken, SGD momentum of the next steps, first
    /// moments or SGD velocity, second moments, steps per weight-decay segment).
    pub fn state(&self) -> (u64, f32, &[f32], &[f32], &[u64]) {
        (self.step, self.momentum, &self.m, &self.v, &self.seg_steps)
    }

    /// Puts back a state that [`Optimizer::state`] gave for an optimizer of the same
    /// configuration, length and weight ranges; a state of another shape is refused
    /// (InvalidArgument) and changes nothing. The frozen set is left as it is.
    pub fn restore(&mut self, step: u64, momentum: f32, m: &[f32], v: &[f32], seg_steps: &[u64]) -> Result<()> {
        if m.len() != self.m.len() || v.len() != self.v.len() || seg_steps.len() != self.seg_steps.len() {
            return Err(invalid!(
                "optimizer state of {} parameters in {} segments does not fit an optimizer of {} in {}",
                m.len(),
                seg_steps.len(),
                self.m.len(),
                self.seg_steps.len()
            ));
        }
        if !(momentum.is_finite() && (0.0..=1.0).contains(&momentum)) {
            return Err(invalid!("optimizer momentum {momentum} must be in [0, 1]"));
        }
        self.step = step;
        self.momentum = momentum;
        self.m.copy_from_slice(m);
        self.v.copy_from_slice(v);
        self.seg_steps.copy_from_slice(seg_steps);
        Ok(())
    }

    /// One update of `params` from `grads` with learning rate `lr`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32, threads: usize) {
        let (c, mu) = (self.config, self.momentum);
        for piece in self.begin_step() {
            let r = piece.range.clone();
            let (p, g) = (&mut params[r.clone()], &grads[r.clone()]);
            update(&c, mu, &piece, lr, p, g, &mut self.m[r.clone()], &mut self.v[r], threads);
        }
    }
}

/// One fused pass of the optimizer over a piece (p, g, m, v its values), on `threads` threads
/// in fixed chunks: the CPU trainer's and the CPU backend's update, the numbers of the kernels
/// of backend/cuda/optimizer.cu (`lat_sgd`, `lat_adam`, `lat_rmsprop`, ...). Each optimizer's
/// formula is in its own file here; m and v are its state buffers (SGD's velocity, Adam's
/// moments, RMSprop's and AdaGrad's squared-gradient average in v, AdaDelta's squared-step
/// average in m, AdaMax's infinity norm in v, Lion's momentum in m).
#[allow(clippy::too_many_arguments)]
pub fn update(
    c: &OptimizerConfig,
    momentum: f32,
    piece: &Piece,
    lr: f32,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    threads: usize,
) {
    let (wd, bc1, bc2) = (piece.decay, piece.bc1, piece.bc2);
    let parallel = threads > 1 && p.len() >= 2 * crate::parallel::CHUNK;
    match c.kind {
        // SGD keeps one buffer, its velocity m (v may be empty).
        OptimizerKind::Sgd => {
            let one = |p: &mut [f32], g: &[f32], m: &mut [f32]| sgd_wide(p, g, m, lr, momentum, c.nesterov, wd);
            one_moment(p, g, m, parallel, threads, one);
        }
        OptimizerKind::Adam | OptimizerKind::AdamW => {
            let decoupled = c.kind == OptimizerKind::AdamW;
            let one = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
                adam_wide(p, g, m, v, lr, c.beta1, c.beta2, c.epsilon, bc1, bc2, wd, decoupled)
            };
            two_moments(p, g, m, v, parallel, threads, one);
        }
        OptimizerKind::RmsProp => {
            let one = |p: &mut [f32], g: &[f32], v: &mut [f32]| rmsprop_wide(p, g, v, lr, c.beta2, c.epsilon, wd);
            one_moment(p, g, v, parallel, threads, one);
        }
        OptimizerKind::AdaGrad => {
            let one = |p: &mut [f32], g: &[f32], v: &mut [f32]| adagrad_wide(p, g, v, lr, c.epsilon, wd);
            one_moment(p, g, v, parallel, threads, one);
        }
        OptimizerKind::AdaDelta => {
            let one = |p: &mut [f32], g: &[f32], u: &mut [f32], v: &mut [f32]| {
                adadelta_wide(p, g, u, v, lr, c.beta2, c.epsilon, wd)
            };
            two_moments(p, g, m, v, parallel, threads, one);
        }
        OptimizerKind::AdaMax => {
            let one = |p: &mut [f32], g: &[f32], m: &mut [f32], u: &mut [f32]| {
                adamax_wide(p, g, m, u, lr, c.beta1, c.beta2, c.epsilon, bc1, wd)
            };
            two_moments(p, g, m, v, parallel, threads, one);
        }
        OptimizerKind::Lion => {
            let one = |p: &mut [f32], g: &[f32], m: &mut [f32]| lion_wide(p, g, m, lr, c.beta1, c.beta2, wd);
            one_moment(p, g, m, parallel, threads, one);
        }
    }
}

/// One pass over (p, g, s) in fixed chunks: an optimizer of one state buffer.
fn one_moment(
    p: &mut [f32],
    g: &[f32],
    s: &mut [f32],
    parallel: bool,
    threads: usize,
    one: impl Fn(&mut [f32], &[f32], &mut [f32]) + Sync,
) {
    let chunk = crate::parallel::CHUNK;
    if parallel {
        for_each_chunk_mut([p, s], chunk, threads, |i, [p, s]| one(p, parallel::chunk(g, i, chunk), s));
    } else {
        one(p, g, s);
    }
}

/// One pass over (p, g, m, v) in fixed chunks: an optimizer of two state buffers.
fn two_moments(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    parallel: bool,
    threads: usize,
    one: impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync,
) {
    let chunk = crate::parallel::CHUNK;
    if parallel {
        for_each_chunk_mut([p, m, v], chunk, threads, |i, [p, m, v]| one(p, parallel::chunk(g, i, chunk), m, v));
    } else {
        one(p, g, m, v);
    }
}

/// Scales `grads` so its L2 norm is at most `max_norm`; returns the norm before clipping.
/// Partial sums over fixed chunks keep the result independent of the thread count.
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f64 {
    let threads = rayon::current_num_threads();
    let partial: Vec<f64> = parallel::map_index(grads.len().div_ceil(parallel::CHUNK), threads, |i| {
        parallel::chunk(grads, i, parallel::CHUNK).iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>()
    });
    let norm = partial.iter().sum::<f64>().sqrt();
    if max_norm > 0.0 && norm > max_norm as f64 {
        let s = (max_norm as f64 / norm) as f32;
        parallel::for_each_chunk_mut([grads], parallel::CHUNK, threads, |_, [c]| c.iter_mut().for_each(|g| *g *= s));
    }
    norm
}
