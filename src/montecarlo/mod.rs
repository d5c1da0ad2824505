//! A gradient-free Monte-Carlo optimizer in the manner of KernelML (Rohan Kotwani, 2018): draw
//! candidate parameter vectors, evaluate any loss on them in parallel, keep the best, and
//! adapt per-parameter sampling spreads from the elite of each iteration.
//!
//! # The algorithm
//!
//! Every parameter has a [`ParamSpec`]: a [`Prior`] for the first candidates, a [`Proposal`]
//! shape for the draws around the current best, and a [`Constraint`] that is applied to every
//! candidate before every loss evaluation (so the loss never sees a violating vector).
//!
//! 1. **Start.** The first run draws `init_samples` candidates from the priors (KernelML:
//!    1000). A later run (KernelML's "runs": e.g. a new minibatch) or a run after
//!    [`MonteCarlo::set_start`] re-evaluates the current point on the (possibly new) loss and
//!    draws `init_samples` candidates from KernelML's intermediate sampler,
//!    U(w_i ± restart_fraction · max(|w_i|, prior scale_i)) (KernelML: ±10 % of w_i). The best
//!    finite candidate becomes the center; the spread s_i of parameter i is the root mean square
//!    deviation of the `elite` best candidates from the center (the sampling scale of the start
//!    where that is 0).
//! 2. **Iterate.** Each iteration draws `samples` candidates x_i = proposal(best_i, s_i)
//!    independently per parameter, constrains and evaluates them. Non-finite losses are dropped.
//!    - *Improvement* (a candidate beats the best): the best moves there;
//!      s_i <- max(memory · s_i + (1 - memory) · d_i, |step_i|), where d_i is the RMS deviation
//!      of the iteration's `elite` best candidates from the new best (KernelML uses the variance
//!      of its elite history instead; deviations from the best shrink as it nears a minimum) and
//!      step_i the move of the best, so that spreads grow while the best keeps moving far.
//!    - *Stagnation* (no candidate beats the best): s_i <- shrink · s_i.
//! 3. **Stop** when every free spread is at most `tolerance · max(1, |best_i|)` (converged),
//!    after `patience` iterations in a row without improvement (converged), after
//!    `max_iterations` iterations of this run, or when `max_evaluations` (over all runs) is
//!    spent (not converged).
//!
//! Candidates are drawn serially from one seeded stream before they are evaluated, and ties go
//! to the first candidate, so the result is bit-identical for any thread count.
//!
//! [`MonteCarlo::intervals`] gives "weak" confidence intervals from samples around the optimum
//! (see [`interval`]).

#![forbid(unsafe_code)]

pub mod constraint;
pub mod interval;
pub mod network;
pub mod sampler;

use rayon::prelude::*;

pub use constraint::Constraint;
pub use interval::{IntervalSettings, Intervals, Temperature};
pub use sampler::{Prior, Proposal, QuantileFn, normal_quantile};

use crate::error::{Error, Result, invalid, shape};
use crate::rng::{Rng, stream};

/// A loss over a parameter vector. It is called from `threads` threads at once.
pub type LossFn<'a> = &'a (dyn Fn(&[f64]) -> f64 + Sync);

/// How one parameter is sampled and constrained.
#[derive(Clone, Debug, Default)]
pub struct ParamSpec {
    pub prior: Prior,
    pub proposal: Proposal,
    pub constraint: Constraint,
}

impl ParamSpec {
    pub fn validate(&self, what: &str) -> Result<()> {
        self.prior.validate(what)?;
        self.constraint.validate(what)
    }
}

/// Optimizer settings. The defaults follow KernelML where it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Candidates drawn at the start of each run (KernelML `init_random_sample_num`: 1000).
    pub init_samples: usize,
    /// Candidates per iteration (KernelML `random_sample_num`: 100). Default 100.
    pub samples: usize,
    /// Candidates whose deviations set the spreads (KernelML `analyze_n_parameters`: 20).
    pub elite: usize,
    /// Iterations per run. Default 1000.
    pub max_iterations: usize,
    /// Budget of loss evaluations over all runs; 0 = unlimited. Default 1,000,000. Interval
    /// calls are counted in [`MonteCarlo::evaluations`] too but are not stopped by it.
    pub max_evaluations: u64,
    /// Converged when every free spread is at most tolerance * max(1, |best_i|). Default 1e-8.
    pub tolerance: f64,
    /// Converged after this many iterations in a row without improvement. Default 50.
    pub patience: usize,
    /// Weight of the old spread in the blend with the elite's deviation, in [0, 1). Default 0.5.
    pub memory: f64,
    /// Factor on the spreads after an iteration without improvement, in (0, 1). Default 0.5.
    pub shrink: f64,
    /// Half-width of the restart sampler relative to max(|w_i|, prior scale_i). Default 0.1.
    pub restart_fraction: f64,
    /// Fraction of the free parameters each candidate perturbs, in (0, 1] (KernelML's
    /// `percent_of_params_updated`); the others keep the best's values. Below 1 the search is
    /// sparser and, with hundreds of parameters, finds improvements far more often. Default 1.
    pub update_fraction: f64,
    /// Worker threads; 0 = all cores. 1 keeps every loss call on the calling thread.
    pub threads: usize,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            init_samples: 1000,
            samples: 100,
            elite: 20,
            max_iterations: 1000,
            max_evaluations: 1_000_000,
            tolerance: 1e-8,
            patience: 50,
            memory: 0.5,
            shrink: 0.5,
            restart_fraction: 0.1,
            update_fraction: 1.0,
            threads: 0,
            seed: 0,
        }
    }
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.init_samples == 0 {
            return Err(invalid!("init_samples is 0: at least one initial candidate is needed"));
        }
        if self.samples == 0 {
            return Err(invalid!("samples is 0: at least one candidate per iteration is needed"));
        }
        if self.elite == 0 || self.elite > self.samples {
            return Err(invalid!("elite = {} must be in 1 to samples ({})", self.elite, self.samples));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(invalid!("tolerance = {} must be finite and >= 0", self.tolerance));
        }
        if !(self.memory >= 0.0 && self.memory < 1.0) {
            return Err(invalid!("memory = {} must be in [0, 1)", self.memory));
        }
        if !(self.shrink > 0.0 && self.shrink < 1.0) {
            return Err(invalid!("shrink = {} must be in (0, 1)", self.shrink));
        }
        if !(self.restart_fraction.is_finite() && self.restart_fraction > 0.0) {
            return Err(invalid!("restart_fraction = {} must be finite and > 0", self.restart_fraction));
        }
        if !(self.update_fraction > 0.0 && self.update_fraction <= 1.0) {
            return Err(invalid!("update_fraction = {} must be in (0, 1]", self.update_fraction));
        }
        crate::pool::pool(self.threads)?;
        Ok(())
    }
}

/// The optimizer's state: settings, per-parameter specs, the best point, spreads and counters.
/// [`MonteCarlo::run`] continues from the current best when called again.
#[derive(Clone, Debug)]
pub struct MonteCarlo {
    settings: Settings,
    specs: Vec<ParamSpec>,
    rng: Rng,
    best: Option<Vec<f64>>,
    best_loss: f64,
    spreads: Vec<f64>,
    history: Vec<f64>,
    evaluations: u64,
    iterations: usize,
    converged: bool,
}

/// One-shot: a new optimizer run once on `loss`; returns it for `best()`, `intervals()`...
pub fn minimize(settings: Settings, specs: Vec<ParamSpec>, loss: LossFn) -> Result<MonteCarlo> {
    let mut mc = MonteCarlo::with_specs(settings, specs)?;
    mc.run(loss)?;
    Ok(mc)
}

/// An empty buffer for `m` candidates of `p` parameters, reserved fallibly: the counts come from
/// the caller's settings (OUT_OF_MEMORY, never an abort).
fn candidates(m: usize, p: usize) -> Result<Vec<f64>> {
    let n = crate::tensor::checked_len(m, p)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        crate::error::Error::OutOfMemory(format!("{m} candidates of {p} parameters: no memory for them"))
    })?;
    Ok(v)
}

impl MonteCarlo {
    /// `n_params` parameters with the default spec (prior U(-1, 1), normal proposal, no constraint).
    /// The specs are allocated fallibly: a count too large for memory is OUT_OF_MEMORY.
    pub fn new(settings: Settings, n_params: usize) -> Result<MonteCarlo> {
        settings.validate()?;
        if n_params == 0 {
            return Err(invalid!("the number of parameters is 0"));
        }
        let mut specs = Vec::new();
        specs.try_reserve_exact(n_params).map_err(|_| {
            crate::error::Error::OutOfMemory(format!(
                "{n_params} parameters: no memory for their specs ({} bytes each)",
                std::mem::size_of::<ParamSpec>()
            ))
        })?;
        specs.resize(n_params, ParamSpec::default());
        MonteCarlo::with_specs(settings, specs)
    }

    /// One spec per parameter.
    pub fn with_specs(settings: Settings, specs: Vec<ParamSpec>) -> Result<MonteCarlo> {
        settings.validate()?;
        if specs.is_empty() {
            return Err(invalid!("the number of parameters is 0"));
        }
        for (i, s) in specs.iter().enumerate() {
            s.validate(&format!("parameter {i}"))?;
        }
        let n = specs.len();
        Ok(MonteCarlo {
            rng: Rng::new(settings.seed, stream::MONTE_CARLO),
            settings,
            specs,
            best: None,
            best_loss: f64::NAN,
            spreads: crate::error::try_zeros(n)?,
            history: Vec::new(),
            evaluations: 0,
            iterations: 0,
            converged: false,
        })
    }

    pub fn n_params(&self) -> usize {
        self.specs.len()
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// Replaces the spec of parameter `index`.
    pub fn set_spec(&mut self, index: usize, spec: ParamSpec) -> Result<()> {
        let n = self.n_params();
        if index >= n {
            return Err(invalid!("parameter index {index} is out of range (there are {n})"));
        }
        spec.validate(&format!("parameter {index}"))?;
        self.specs[index] = spec;
        Ok(())
    }

    /// Replaces every spec (bulk; the count must match).
    pub fn set_specs(&mut self, specs: Vec<ParamSpec>) -> Result<()> {
        if specs.len() != self.n_params() {
            return Err(shape!("{} specs for {} parameters", specs.len(), self.n_params()));
        }
        for (i, s) in specs.iter().enumerate() {
            s.validate(&format!("parameter {i}"))?;
        }
        self.specs = specs;
        Ok(())
    }

    /// Sets the point the next run starts around (constrained); its loss is unknown until then.
    pub fn set_start(&mut self, start: &[f64]) -> Result<()> {
        if start.len() != self.n_params() {
            return Err(shape!("the start has {} values for {} parameters", start.len(), self.n_params()));
        }
        if let Some(i) = start.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!("start value {i} is {}", start[i])));
        }
        let mut x = start.to_vec();
        self.constrain(&mut x);
        self.best = Some(x);
        self.best_loss = f64::NAN;
        self.converged = false;
        Ok(())
    }

    /// The best point found (or the start set), if any.
    pub fn best(&self) -> Option<&[f64]> {
        self.best.as_deref()
    }
    /// Its loss on the loss of the last run (NaN before a run).
    pub fn best_loss(&self) -> f64 {
        self.best_loss
    }
    /// The current per-parameter spreads (0 for fixed parameters).
    pub fn spreads(&self) -> &[f64] {
        &self.spreads
    }
    /// The best loss after each iteration, over all runs.
    pub fn history(&self) -> &[f64] {
        &self.history
    }
    /// Loss evaluations so far (non-finite ones included), over all runs and interval calls.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }
    /// Iterations so far, over all runs.
    pub fn iterations(&self) -> usize {
        self.iterations
    }
    /// Whether the last run stopped by its convergence rules (not by a budget).
    pub fn converged(&self) -> bool {
        self.converged
    }

    fn constrain(&self, x: &mut [f64]) {
        for (v, s) in x.iter_mut().zip(&self.specs) {
            *v = s.constraint.apply(*v);
        }
    }

    fn remaining(&self) -> u64 {
        match self.settings.max_evaluations {
            0 => u64::MAX,
            m => m.saturating_sub(self.evaluations),
        }
    }

    /// Evaluates the row-major candidates (n_params each) in parallel; counts them.
    pub(crate) fn evaluate(&mut self, cands: &[f64], loss: LossFn) -> Result<Vec<f64>> {
        let p = self.n_params();
        let count = cands.len() / p;
        let pool = crate::pool::pool(self.settings.threads)?;
        let losses: Vec<f64> = if pool.current_num_threads() == 1 || count < 2 {
            cands.chunks(p).map(loss).collect()
        } else {
            pool.install(|| cands.par_chunks(p).with_min_len(1).map(loss).collect())
        };
        self.evaluations += count as u64;
        Ok(losses)
    }

    /// The index of the smallest finite loss (the first on ties).
    fn argmin(losses: &[f64]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (k, &l) in losses.iter().enumerate() {
            if l.is_finite() && best.is_none_or(|b| l < losses[b]) {
                best = Some(k);
            }
        }
        best
    }

    /// RMS deviation per parameter of the `elite` best finite candidates from `center`.
    fn elite_deviation(&self, cands: &[f64], losses: &[f64], center: &[f64]) -> Vec<f64> {
        let p = self.n_params();
        let mut idx: Vec<usize> = (0..losses.len()).filter(|&k| losses[k].is_finite()).collect();
        idx.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]).then(a.cmp(&b)));
        idx.truncate(self.settings.elite);
        let mut d = vec![0.0; p];
        for &k in &idx {
            for i in 0..p {
                let e = cands[k * p + i] - center[i];
                d[i] += e * e;
            }
        }
        let m = idx.len().max(1) as f64;
        d.iter().map(|v| (v / m).sqrt()).collect()
    }

    /// Runs the optimizer on `loss`, from the priors the first time and from the current best
    /// (re-evaluated on this loss) afterwards. Returns whether it converged.
    pub fn run(&mut self, loss: LossFn) -> Result<bool> {
        let p = self.n_params();
        self.converged = false;
        if self.remaining() == 0 {
            return Err(invalid!("the evaluation budget of {} is spent", self.settings.max_evaluations));
        }
        // Start: the center (if any) and the initial candidates with their sampling scales.
        let start = self.best.clone();
        let m =
            (self.settings.init_samples as u64).min(self.remaining().saturating_sub(start.is_some() as u64)) as usize;
        let mut scales = vec![0.0; p];
        let mut cands = candidates(m + 1, p)?;
        if let Some(w) = &start {
            cands.extend_from_slice(w);
        }
        for (i, s) in self.specs.iter().enumerate() {
            scales[i] = match &start {
                None => s.prior.scale(),
                Some(w) => self.settings.restart_fraction * w[i].abs().max(s.prior.scale()) / 3f64.sqrt(),
            };
        }
        for _ in 0..m {
            let at = cands.len();
            for (i, s) in self.specs.iter().enumerate() {
                let v = match &start {
                    None => s.prior.draw(&mut self.rng),
                    Some(w) => w[i] + scales[i] * 3f64.sqrt() * (2.0 * self.rng.uniform_f64() - 1.0),
                };
                cands.push(v);
            }
            let row = &mut cands[at..];
            for (v, s) in row.iter_mut().zip(&self.specs) {
                *v = s.constraint.apply(*v);
            }
        }
        let losses = self.evaluate(&cands, loss)?;
        let Some(k) = Self::argmin(&losses) else {
            return Err(Error::NonFinite(format!("all {} starting candidates gave a non-finite loss", losses.len())));
        };
        let mut best = cands[k * p..(k + 1) * p].to_vec();
        let mut best_loss = losses[k];
        let dev = self.elite_deviation(&cands, &losses, &best);
        for i in 0..p {
            self.spreads[i] = if self.specs[i].constraint.is_fixed() {
                0.0
            } else if dev[i] > 0.0 {
                dev[i]
            } else {
                scales[i]
            };
        }
        self.best = Some(best.clone());
        self.best_loss = best_loss;

        // Iterate.
        let mut stale = 0usize;
        for _ in 0..self.settings.max_iterations {
            if self.is_collapsed(&best) || stale >= self.settings.patience.max(1) {
                self.converged = true;
                break;
            }
            let m = (self.settings.samples as u64).min(self.remaining()) as usize;
            if m == 0 {
                break;
            }
            let mut cands = candidates(m, p)?;
            let sparse = self.settings.update_fraction < 1.0;
            for _ in 0..m {
                for (i, s) in self.specs.iter().enumerate() {
                    let v = if s.constraint.is_fixed()
                        || (sparse && self.rng.uniform_f64() >= self.settings.update_fraction)
                    {
                        best[i]
                    } else {
                        s.proposal.draw(&mut self.rng, i, best[i], self.spreads[i])
                    };
                    cands.push(s.constraint.apply(v));
                }
            }
            let losses = self.evaluate(&cands, loss)?;
            let k = Self::argmin(&losses).filter(|&k| losses[k] < best_loss);
            if let Some(k) = k {
                let new = cands[k * p..(k + 1) * p].to_vec();
                let dev = self.elite_deviation(&cands, &losses, &new);
                let a = self.settings.memory;
                for i in 0..p {
                    if !self.specs[i].constraint.is_fixed() {
                        let blend = a * self.spreads[i] + (1.0 - a) * dev[i];
                        self.spreads[i] = blend.max((new[i] - best[i]).abs());
                    }
                }
                best = new;
                best_loss = losses[k];
                stale = 0;
            } else {
                for s in &mut self.spreads {
                    *s *= self.settings.shrink;
                }
                stale += 1;
            }
            self.iterations += 1;
            self.history.push(best_loss);
            self.best = Some(best.clone());
            self.best_loss = best_loss;
        }
        if !self.converged && (self.is_collapsed(&best) || stale >= self.settings.patience.max(1)) {
            self.converged = true;
        }
        Ok(self.converged)
    }

    fn is_collapsed(&self, best: &[f64]) -> bool {
        let t = self.settings.tolerance;
        self.spreads.iter().zip(best).all(|(&s, &b)| s <= t * b.abs().max(1.0))
    }
}
