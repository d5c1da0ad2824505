//! A gradient-free Monte-Carlo optimizer after KernelML (Rohan Kotwani, 2018): draw candidate
//! parameter vectors, evaluate any loss on them in parallel, keep the best, and learn from the
//! history of draws where to search next. Two strategies share the start, the records and the
//! stopping rules (docs/montecarlo.md has the formulas and measured numbers):
//!
//! - [`Strategy::KernelML`], KernelML's update rule (v2.556's `kernel_optimizer`, our own code):
//!   each iteration draws `samples` candidates around the best with each parameter's
//!   proposal (default N(best_i, var_i)), the variances taken over the recent records
//!   (KernelML's default sampler); a linear-regression surrogate of
//!   the loss fitted on those records ranks the parameters ([`surrogate`]); the
//!   `update_fraction` ranked highest are moved by coordinate probes (the surrogate's downhill
//!   side first, then the other; a probe's step doubles after a success and halves after a
//!   failure: the update magnitude adapts per parameter), for up to `updates` rounds; and a
//!   z-score test on the last `z_window` recorded bests decides convergence.
//! - [`Strategy::Elitist`], an elitist adaptive random search: each iteration draws `samples`
//!   candidates x_i = proposal(best_i, s_i); an improvement moves the best there and sets
//!   s_i <- max(memory · s_i + (1 - memory) · d_i, |step_i|), d_i the RMS deviation of the
//!   iteration's `elite` best candidates from the new best; an iteration without improvement
//!   multiplies the spreads by `shrink`. With `update_fraction` < 1 the candidates perturb the
//!   parameters the surrogate ranks highest, the others keep the best's values.
//!
//! Every parameter has a [`ParamSpec`]: a [`Prior`] for the first candidates, a [`Proposal`]
//! shape (Elitist) and a [`Constraint`] applied to every candidate before every evaluation;
//! [`Hooks`] add a prior sampler, a sampler that sees the history and a transform.
//!
//! **Start.** The first run draws `init_samples` candidates from the priors (KernelML: 1000).
//! A later run (KernelML's "runs": e.g. a new minibatch) or a run after
//! [`MonteCarlo::set_start`] re-evaluates the current point on the (possibly new) loss and
//! draws `init_samples` candidates from KernelML's intermediate sampler,
//! U(w_i ± restart_fraction · max(|w_i|, prior scale_i)) (KernelML: ±10 % of w_i). The best
//! finite candidate becomes the center; the spread s_i of parameter i is the RMS deviation of
//! the `elite` best candidates from it.
//!
//! **Stop.** A run stops at `max_iterations`, when `max_evaluations` (over all runs) is spent,
//! or when its rule fires and the best passes a check. The rules: every free spread (and, for
//! KernelML, probe step) is at most `tolerance · max(1, |best_i|)`; `patience` iterations
//! without improvement; (KernelML) every free parameter's z = |best_i - mean_i| / sd_i over the
//! last `z_window` recorded bests is below `z_score`. The check: no single-coordinate move of
//! ±10^-k · max(1, |best_i|), k = 1, 2, ... down to the tolerance, lowers the loss by more than
//! 1e-10 relative. A move that does is taken, the spreads and steps grow back to its size and
//! the run goes on: a stalled search is never reported converged.
//!
//! Candidates are drawn serially from one seeded stream before they are evaluated, and ties go
//! to the first candidate, so the result is bit-identical for any thread count.
//!
//! [`MonteCarlo::intervals`] gives "weak" confidence intervals from a quadratic fit around the
//! optimum, [`MonteCarlo::run_intervals`] KernelML's own, from the spread of the best
//! parameters over runs on fresh minibatches (see [`interval`]).

#![forbid(unsafe_code)]

pub mod constraint;
pub mod hooks;
pub mod interval;
pub mod network;
pub mod sampler;
pub mod surrogate;

use std::collections::VecDeque;

use rayon::prelude::*;

pub use constraint::Constraint;
pub use hooks::{Hooks, PriorSamplerFn, SamplerFn, SearchView, TransformFn};
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

/// How each iteration searches (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// KernelML's update rule: sampling from the records' variances, a linear-regression
    /// surrogate ranking the parameters, coordinate probes with adaptive steps, a z-score stop.
    #[default]
    KernelML,
    /// Elitist adaptive random search: proposals around the best with spreads adapted from
    /// each iteration's elite.
    Elitist,
}

/// Why the last run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StopReason {
    /// No run yet.
    #[default]
    None,
    /// Its rule fired and no coordinate move at any checked scale improved the best.
    Converged,
    /// `max_iterations` iterations of the run.
    MaxIterations,
    /// `max_evaluations` spent.
    Budget,
    /// A hook (or a callback around the run) cancelled it.
    Cancelled,
    /// An error stopped it (the run returned it).
    Failed,
}

/// Optimizer settings. The defaults follow KernelML where it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Candidates drawn at the start of each run (KernelML `init_random_sample_num`: 1000).
    pub init_samples: usize,
    /// Candidates (parameter draws) per iteration (KernelML `random_sample_num`: 100).
    pub samples: usize,
    /// Best candidates per iteration that enter the records and set the spreads (KernelML
    /// `analyze_n_parameters`: 20).
    pub elite: usize,
    /// Iterations per run. Default 1000.
    pub max_iterations: usize,
    /// Budget of loss evaluations over all runs; 0 = unlimited. Default 1,000,000. Interval
    /// calls are counted in [`MonteCarlo::evaluations`] too but are not stopped by it.
    pub max_evaluations: u64,
    /// Spreads (and probe steps) at most tolerance * max(1, |best_i|) stop a run; the check
    /// before a converged stop probes down to this scale. Default 1e-8.
    pub tolerance: f64,
    /// A run stops (after the check) after this many iterations in a row without improvement.
    /// Default 50.
    pub patience: usize,
    /// Elitist: weight of the old spread in the blend with the elite's deviation, in [0, 1).
    /// Default 0.5.
    pub memory: f64,
    /// Elitist: factor on the spreads after an iteration without improvement, in (0, 1).
    /// Default 0.5.
    pub shrink: f64,
    /// Half-width of the restart sampler relative to max(|w_i|, prior scale_i). Default 0.1.
    pub restart_fraction: f64,
    /// Fraction of the free parameters updated per iteration, in (0, 1] (KernelML's
    /// `percent_of_params_updated`): the ceil(fraction · free) that the surrogate ranks
    /// highest. KernelML: the probed ones; Elitist: the perturbed ones. Default 1.
    pub update_fraction: f64,
    /// KernelML: rounds of coordinate probes per iteration (KernelML's `n_parameter_updates`);
    /// a round without improvement ends them. Default 10.
    pub updates: usize,
    /// KernelML: the first probe step of a run, as a multiple of the parameter's spread
    /// (KernelML's `update_magnitude`, there a multiple of the surrogate's coefficient). Default 1.
    pub update_magnitude: f64,
    /// KernelML: recorded bests the z-score test looks at (KernelML: 10). Default 10.
    pub z_window: usize,
    /// KernelML: the z-score test fires when every free parameter's |z| is below this
    /// (KernelML's `convergence_z_score`: 1); 0 switches the test off. Default 1.
    pub z_score: f64,
    /// Records (the best candidates of recent iterations and accepted moves, with their
    /// losses) kept for the surrogate and the samplers; 0 = automatic,
    /// max(5 · elite, min(2 (p + 1), 200)). Default 0.
    pub history_window: usize,
    /// Best parameter vectors per iteration kept ([`MonteCarlo::param_by_iter`]), the latest;
    /// the loss per iteration is always kept. Default 10,000.
    pub history_limit: usize,
    /// Worker threads; 0 = all cores. 1 keeps every loss call on the calling thread.
    pub threads: usize,
    pub seed: u64,
    pub strategy: Strategy,
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
            updates: 10,
            update_magnitude: 1.0,
            z_window: 10,
            z_score: 1.0,
            history_window: 0,
            history_limit: 10_000,
            threads: 0,
            seed: 0,
            strategy: Strategy::default(),
        }
    }
}

/// A check's move must lower the loss by more than this, relative: less is rounding noise.
pub const CHECK_RELATIVE: f64 = 1e-10;

/// Most probe rounds per iteration and records kept for the surrogate.
pub const MAX_UPDATES: usize = 1 << 16;
pub const MAX_HISTORY_WINDOW: usize = 1 << 16;

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
        if self.updates > MAX_UPDATES {
            return Err(invalid!("updates = {} is more than {MAX_UPDATES}", self.updates));
        }
        if !(self.update_magnitude.is_finite() && self.update_magnitude > 0.0) {
            return Err(invalid!("update_magnitude = {} must be finite and > 0", self.update_magnitude));
        }
        if !(self.z_score.is_finite() && self.z_score >= 0.0) {
            return Err(invalid!("z_score = {} must be finite and >= 0 (0: no z-score test)", self.z_score));
        }
        if self.z_score > 0.0 && !(2..=MAX_HISTORY_WINDOW).contains(&self.z_window) {
            return Err(invalid!("z_window = {} must be 2 to {MAX_HISTORY_WINDOW} (or z_score 0)", self.z_window));
        }
        if self.history_window != 0 && !(3..=MAX_HISTORY_WINDOW).contains(&self.history_window) {
            return Err(invalid!(
                "history_window = {} must be 0 (automatic) or 3 to {MAX_HISTORY_WINDOW}",
                self.history_window
            ));
        }
        crate::pool::pool(self.threads)?;
        Ok(())
    }
}

/// The optimizer's state: settings, per-parameter specs, hooks, the best point, spreads,
/// records and counters. [`MonteCarlo::run`] continues from the current best when called again.
#[derive(Clone, Debug)]
pub struct MonteCarlo {
    settings: Settings,
    specs: Vec<ParamSpec>,
    hooks: Hooks,
    rng: Rng,
    best: Option<Vec<f64>>,
    best_loss: f64,
    spreads: Vec<f64>,
    /// KernelML: the current probe step per parameter.
    steps: Vec<f64>,
    /// KernelML: which iteration last selected each parameter for probes.
    last_selected: Vec<u64>,
    /// Best loss after each iteration, over all runs.
    history: Vec<f64>,
    /// Best point after each kept iteration (the latest `history_limit`), and the global
    /// index of the first kept.
    iter_params: VecDeque<f64>,
    iter_first: usize,
    /// The surrogate's records: parameter vectors (row-major) and their losses.
    records: VecDeque<f64>,
    record_losses: VecDeque<f64>,
    /// The best point and loss at the end of each run.
    run_params: Vec<f64>,
    run_losses: Vec<f64>,
    evaluations: u64,
    iterations: usize,
    converged: bool,
    stop: StopReason,
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

/// What the convergence check found.
enum Checked {
    /// No coordinate move improved the best.
    Clean,
    /// This point (and loss) improved it, found at this relative scale.
    Improved(Vec<f64>, f64, f64),
    /// The budget ran out first.
    Budget,
}

/// The state of one run, passed between its steps.
struct RunState {
    best: Vec<f64>,
    best_loss: f64,
    stale: usize,
    improved: bool,
    /// KernelML: the recent bests for the z-score test.
    z_ring: VecDeque<Vec<f64>>,
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
            hooks: Hooks::default(),
            best: None,
            best_loss: f64::NAN,
            spreads: crate::error::try_zeros(n)?,
            steps: crate::error::try_zeros(n)?,
            last_selected: crate::error::try_zeros(n)?,
            history: Vec::new(),
            iter_params: VecDeque::new(),
            iter_first: 0,
            records: VecDeque::new(),
            record_losses: VecDeque::new(),
            run_params: Vec::new(),
            run_losses: Vec::new(),
            evaluations: 0,
            iterations: 0,
            converged: false,
            stop: StopReason::None,
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
    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Replaces the hooks (prior sampler, sampler, transform); `Hooks::default()` removes them.
    pub fn set_hooks(&mut self, hooks: Hooks) {
        self.hooks = hooks;
    }

    /// Replaces the settings (validated) for the next runs; the state is kept.
    pub fn set_settings(&mut self, settings: Settings) -> Result<()> {
        settings.validate()?;
        self.settings = settings;
        Ok(())
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
    /// The best loss after each iteration, over all runs (KernelML's `get_loss_by_iter`).
    pub fn history(&self) -> &[f64] {
        &self.history
    }
    /// The best parameters after iteration `i` (0-based, over all runs; KernelML's
    /// `get_param_by_iter`), if that iteration is still kept (the latest `history_limit`).
    pub fn param_by_iter(&self, i: usize) -> Option<Vec<f64>> {
        let p = self.n_params();
        if i < self.iter_first || i >= self.iterations {
            return None;
        }
        let at = (i - self.iter_first) * p;
        Some(self.iter_params.range(at..at + p).copied().collect())
    }
    /// The first iteration whose best parameters are kept.
    pub fn first_kept_iteration(&self) -> usize {
        self.iter_first
    }
    /// The surrogate's records (KernelML's `get_parameter_update_history`): parameter vectors
    /// (row-major) and their losses, oldest first.
    pub fn records(&self) -> (Vec<f64>, Vec<f64>) {
        (self.records.iter().copied().collect(), self.record_losses.iter().copied().collect())
    }
    /// The best point at the end of each run (row-major) and its loss on that run's loss.
    pub fn run_bests(&self) -> (&[f64], &[f64]) {
        (&self.run_params, &self.run_losses)
    }
    /// Runs completed.
    pub fn runs(&self) -> usize {
        self.run_losses.len()
    }
    /// Loss evaluations so far (non-finite ones included; infeasible candidates, which the
    /// loss never sees, excluded), over all runs and interval calls.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }
    /// Iterations so far, over all runs.
    pub fn iterations(&self) -> usize {
        self.iterations
    }
    /// Whether the last run stopped converged: its rule fired and the check found no better
    /// coordinate move (not a budget, not a stall).
    pub fn converged(&self) -> bool {
        self.converged
    }
    /// Why the last run stopped.
    pub fn stop_reason(&self) -> StopReason {
        self.stop
    }

    fn constrain(&self, x: &mut [f64]) {
        for (v, s) in x.iter_mut().zip(&self.specs) {
            *v = s.constraint.apply(*v);
        }
    }

    /// Constraints, then the user's transform, on a block of candidates.
    pub(crate) fn prepare(&self, block: &mut [f64]) -> Result<()> {
        let p = self.n_params();
        for row in block.chunks_mut(p) {
            self.constrain(row);
        }
        if let Some(t) = &self.hooks.transform
            && !block.is_empty()
        {
            t(block, p)?;
        }
        Ok(())
    }

    fn remaining(&self) -> u64 {
        match self.settings.max_evaluations {
            0 => u64::MAX,
            m => m.saturating_sub(self.evaluations),
        }
    }

    fn free(&self) -> Vec<bool> {
        self.specs.iter().map(|s| !s.constraint.is_fixed()).collect()
    }

    /// Evaluates the row-major candidates (n_params each) in parallel; a candidate with a
    /// non-finite value is infeasible (NaN, not shown to the loss). Counts the loss calls.
    pub(crate) fn evaluate(&mut self, cands: &[f64], loss: LossFn) -> Result<Vec<f64>> {
        let p = self.n_params();
        let count = cands.len() / p;
        let feasible = |x: &[f64]| x.iter().all(|v| v.is_finite());
        let f = |x: &[f64]| if feasible(x) { loss(x) } else { f64::NAN };
        let pool = crate::pool::pool(self.settings.threads)?;
        let losses: Vec<f64> = if pool.current_num_threads() == 1 || count < 2 {
            cands.chunks(p).map(f).collect()
        } else {
            pool.install(|| cands.par_chunks(p).with_min_len(1).map(f).collect())
        };
        self.evaluations += cands.chunks(p).filter(|x| feasible(x)).count() as u64;
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

    /// The indices of the `elite` best finite candidates, best first.
    fn elite_of(&self, losses: &[f64]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..losses.len()).filter(|&k| losses[k].is_finite()).collect();
        idx.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]).then(a.cmp(&b)));
        idx.truncate(self.settings.elite);
        idx
    }

    /// RMS deviation per parameter of the `elite` best finite candidates from `center`.
    fn elite_deviation(&self, cands: &[f64], losses: &[f64], center: &[f64]) -> Vec<f64> {
        let p = self.n_params();
        let idx = self.elite_of(losses);
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

    /// Records kept for the surrogate.
    fn window(&self) -> usize {
        match self.settings.history_window {
            0 => (5 * self.settings.elite).max((2 * (self.n_params() + 1)).min(200)),
            w => w,
        }
    }

    fn push_record(&mut self, x: &[f64], l: f64) {
        if !l.is_finite() {
            return;
        }
        let p = self.n_params();
        self.records.extend(x.iter().copied());
        self.record_losses.push_back(l);
        while self.record_losses.len() > self.window() {
            self.record_losses.pop_front();
            self.records.drain(..p);
        }
    }

    /// The elite of a block of candidates into the records.
    fn push_elite(&mut self, cands: &[f64], losses: &[f64]) {
        let p = self.n_params();
        for k in self.elite_of(losses).into_iter().rev() {
            self.push_record(&cands[k * p..(k + 1) * p], losses[k]);
        }
    }

    /// Per-parameter standard deviation over the records.
    fn record_sd(&self) -> Vec<f64> {
        let p = self.n_params();
        let n = self.record_losses.len();
        let mut mean = vec![0.0; p];
        let mut sq = vec![0.0; p];
        if n == 0 {
            return mean;
        }
        for (k, v) in self.records.iter().enumerate() {
            mean[k % p] += v;
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        for (k, v) in self.records.iter().enumerate() {
            sq[k % p] += (v - mean[k % p]).powi(2);
        }
        sq.iter().map(|s| (s / n as f64).sqrt()).collect()
    }

    fn record_iteration(&mut self, best: &[f64], loss: f64) {
        let p = self.n_params();
        self.iterations += 1;
        self.history.push(loss);
        let limit = self.settings.history_limit;
        if limit == 0 {
            self.iter_params.clear();
            self.iter_first = self.iterations;
            return;
        }
        self.iter_params.extend(best.iter().copied());
        while self.iter_params.len() > limit * p {
            self.iter_params.drain(..p);
            self.iter_first += 1;
        }
    }

    /// Replaces the last iteration's record (when the closing check moved the best).
    fn amend_last_iteration(&mut self, best: &[f64], loss: f64) {
        let p = self.n_params();
        if let Some(h) = self.history.last_mut() {
            *h = loss;
        }
        let n = self.iter_params.len();
        if n >= p && self.iterations > self.iter_first {
            self.iter_params.range_mut(n - p..).zip(best).for_each(|(d, &v)| *d = v);
        }
    }

    /// A seed for a hook, from the optimizer's stream.
    fn hook_seed(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Fills `out` by the user's history sampler.
    fn sample_with_hook(&mut self, f: &SamplerFn, st: &RunState, out: &mut [f64], run: usize) -> Result<()> {
        let seed = self.hook_seed();
        self.iter_params.make_contiguous();
        self.records.make_contiguous();
        self.record_losses.make_contiguous();
        let view = SearchView {
            n_params: self.n_params(),
            best: &st.best,
            best_loss: st.best_loss,
            spreads: &self.spreads,
            iteration: self.iterations,
            run,
            best_by_iter: self.iter_params.as_slices().0,
            loss_by_iter: &self.history[self.iter_first..],
            first_kept_iteration: self.iter_first,
            records: self.records.as_slices().0,
            record_losses: self.record_losses.as_slices().0,
        };
        f(&view, out, seed)
    }

    /// Runs the optimizer on `loss`, from the priors the first time and from the current best
    /// (re-evaluated on this loss) afterwards. Returns whether it converged.
    pub fn run(&mut self, loss: LossFn) -> Result<bool> {
        self.run_with(loss, &mut |_| Ok(false))
    }

    /// As [`MonteCarlo::run`], calling `before_iteration(i)` before each iteration i >= 1 of the
    /// run: it returns true when the loss has changed (a new minibatch), and the best is then
    /// re-evaluated before the iteration's draws; an error from it stops the run.
    pub fn run_with(&mut self, loss: LossFn, before_iteration: &mut dyn FnMut(usize) -> Result<bool>) -> Result<bool> {
        self.converged = false;
        let r = self.run_inner(loss, before_iteration);
        match &r {
            Ok(_) => {}
            Err(Error::Cancelled) => self.stop = StopReason::Cancelled,
            Err(_) => self.stop = StopReason::Failed,
        }
        r
    }

    fn run_inner(&mut self, loss: LossFn, before_iteration: &mut dyn FnMut(usize) -> Result<bool>) -> Result<bool> {
        let p = self.n_params();
        let run = self.runs();
        let first_iteration = self.iterations;
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
        let at = cands.len();
        match (&start, self.hooks.prior_sampler.clone()) {
            (None, Some(f)) => {
                cands.resize(at + m * p, 0.0);
                let seed = self.hook_seed();
                f(&mut cands[at..], p, seed)?;
            }
            _ => {
                for _ in 0..m {
                    for (i, s) in self.specs.iter().enumerate() {
                        let v = match &start {
                            None => s.prior.draw(&mut self.rng),
                            Some(w) => w[i] + scales[i] * 3f64.sqrt() * (2.0 * self.rng.uniform_f64() - 1.0),
                        };
                        cands.push(v);
                    }
                }
            }
        }
        self.prepare(&mut cands)?;
        let losses = self.evaluate(&cands, loss)?;
        let Some(k) = Self::argmin(&losses) else {
            return Err(Error::NonFinite(format!(
                "all {} starting candidates gave a non-finite loss (or a non-finite value)",
                losses.len()
            )));
        };
        let best = cands[k * p..(k + 1) * p].to_vec();
        let dev = self.elite_deviation(&cands, &losses, &best);
        for i in 0..p {
            self.spreads[i] = if self.specs[i].constraint.is_fixed() {
                0.0
            } else if dev[i] > 0.0 {
                dev[i]
            } else {
                scales[i]
            };
            self.steps[i] = self.settings.update_magnitude * self.spreads[i];
        }
        self.records.clear();
        self.record_losses.clear();
        self.push_elite(&cands, &losses);
        let mut st = RunState { best_loss: losses[k], best, stale: 0, improved: false, z_ring: VecDeque::new() };
        self.best = Some(st.best.clone());
        self.best_loss = st.best_loss;
        let free = self.free();

        let mut stop = StopReason::MaxIterations;
        for it in 0..self.settings.max_iterations {
            if self.rule_fires(&st, &free) {
                match self.check(&st, &free, loss)? {
                    Checked::Clean => {
                        stop = StopReason::Converged;
                        break;
                    }
                    Checked::Budget => {
                        stop = StopReason::Budget;
                        break;
                    }
                    Checked::Improved(x, l, g) => self.take_checked(&mut st, x, l, g, &free),
                }
            }
            if self.remaining() == 0 {
                stop = StopReason::Budget;
                break;
            }
            if it > 0 && before_iteration(it)? {
                let l = self.evaluate(&st.best, loss)?[0];
                st.best_loss = if l.is_finite() { l } else { f64::INFINITY };
            }
            st.improved = false;
            match self.settings.strategy {
                Strategy::Elitist => self.elitist_iteration(&mut st, &free, loss, run)?,
                Strategy::KernelML => self.kernelml_iteration(&mut st, &free, loss, run)?,
            }
            if st.improved {
                st.stale = 0;
            } else {
                st.stale += 1;
            }
            self.record_iteration(&st.best, st.best_loss);
            st.z_ring.push_back(st.best.clone());
            if st.z_ring.len() > self.settings.z_window {
                st.z_ring.pop_front();
            }
            self.best = Some(st.best.clone());
            self.best_loss = st.best_loss;
        }
        if stop == StopReason::MaxIterations && self.iterations > first_iteration && self.rule_fires(&st, &free) {
            match self.check(&st, &free, loss)? {
                Checked::Clean => stop = StopReason::Converged,
                Checked::Budget => stop = StopReason::Budget,
                Checked::Improved(x, l, g) => {
                    // The check's move ends the last iteration: its record is amended.
                    self.take_checked(&mut st, x, l, g, &free);
                    self.amend_last_iteration(&st.best, st.best_loss);
                }
            }
        }
        self.best = Some(st.best.clone());
        self.best_loss = st.best_loss;
        self.run_params.extend_from_slice(&st.best);
        self.run_losses.push(st.best_loss);
        self.stop = stop;
        self.converged = stop == StopReason::Converged;
        Ok(self.converged)
    }

    /// Whether a stopping rule fires (the check decides whether the run stops).
    fn rule_fires(&self, st: &RunState, free: &[bool]) -> bool {
        let t = self.settings.tolerance;
        let small = |v: &[f64]| v.iter().zip(&st.best).zip(free).all(|((&s, &b), &f)| !f || s <= t * b.abs().max(1.0));
        let collapsed = match self.settings.strategy {
            Strategy::Elitist => small(&self.spreads),
            Strategy::KernelML => small(&self.spreads) && small(&self.steps),
        };
        if collapsed || st.stale >= self.settings.patience.max(1) {
            return true;
        }
        self.settings.strategy == Strategy::KernelML
            && self.settings.z_score > 0.0
            && st.z_ring.len() >= self.settings.z_window
            && z_settled(&st.z_ring, &st.best, free, self.settings.z_score)
    }

    /// The convergence check: coordinate moves of ±10^-k max(1, |x_i|) for k = 1, 2, ... down to
    /// the tolerance (at most 12 scales), coarse first; the first scale with a point better by
    /// more than 1e-10 relative (not rounding noise) returns the best of them.
    fn check(&mut self, st: &RunState, free: &[bool], loss: LossFn) -> Result<Checked> {
        let p = self.n_params();
        let t = self.settings.tolerance;
        let scales = if t > 0.0 { (-t.log10()).ceil().clamp(1.0, 12.0) as i32 } else { 12 };
        let bar = st.best_loss - CHECK_RELATIVE * st.best_loss.abs();
        for k in 1..=scales {
            let g = 10f64.powi(-k);
            let mut cands = Vec::new();
            for i in (0..p).filter(|&i| free[i]) {
                for sign in [1.0, -1.0] {
                    let mut x = st.best.clone();
                    x[i] += sign * g * st.best[i].abs().max(1.0);
                    cands.extend_from_slice(&x);
                }
            }
            self.prepare(&mut cands)?;
            // Moves the constraints or the transform undo are not probes.
            let moved: Vec<f64> = cands.chunks(p).filter(|x| *x != &st.best[..]).flatten().copied().collect();
            if moved.is_empty() {
                continue;
            }
            if self.remaining() < (moved.len() / p) as u64 {
                return Ok(Checked::Budget);
            }
            let losses = self.evaluate(&moved, loss)?;
            if let Some(j) = Self::argmin(&losses)
                && losses[j] < bar
            {
                return Ok(Checked::Improved(moved[j * p..(j + 1) * p].to_vec(), losses[j], g));
            }
        }
        Ok(Checked::Clean)
    }

    /// Takes the check's better point and lets the search move again at its scale.
    fn take_checked(&mut self, st: &mut RunState, x: Vec<f64>, l: f64, g: f64, free: &[bool]) {
        for i in (0..x.len()).filter(|&i| free[i]) {
            let s = g * x[i].abs().max(1.0);
            self.spreads[i] = self.spreads[i].max(s);
            self.steps[i] = self.steps[i].max(s);
        }
        self.push_record(&x, l);
        st.best = x;
        st.best_loss = l;
        st.stale = 0;
        st.z_ring.clear();
    }

    /// The parameters to update this iteration, the ceil(update_fraction · free) the surrogate
    /// fitted on the records ranks highest, and that fit; when that is every free one and not
    /// `fit`, they without a fit (no coefficients).
    fn select(&mut self, free: &[bool], fit: bool) -> Result<(Vec<usize>, Vec<surrogate::Coefficient>)> {
        let p = self.n_params();
        let q = free.iter().filter(|&&f| f).count();
        let k = ((self.settings.update_fraction * q as f64).ceil() as usize).min(q);
        if k >= q && !fit {
            return Ok(((0..p).filter(|&i| free[i]).collect(), Vec::new()));
        }
        self.records.make_contiguous();
        self.record_losses.make_contiguous();
        let coef = surrogate::fit(self.records.as_slices().0, self.record_losses.as_slices().0, p, free)?;
        let sel = surrogate::top(&coef, free, &self.last_selected, k);
        for &i in &sel {
            self.last_selected[i] = self.iterations as u64 + 1;
        }
        Ok((sel, coef))
    }

    /// An iteration's `samples` candidates around the best (fewer when the budget is short),
    /// evaluated, their elite recorded: the user's sampler's (returns true), else parameter i
    /// drawn from its proposal with spread `scale[i]` where `draw[i]`, the best's value elsewhere.
    fn propose(
        &mut self,
        st: &RunState,
        run: usize,
        draw: &[bool],
        scale: &[f64],
        loss: LossFn,
    ) -> Result<(Vec<f64>, Vec<f64>, bool)> {
        let p = self.n_params();
        let m = (self.settings.samples as u64).min(self.remaining()) as usize;
        let mut cands = candidates(m, p)?;
        let hooked = self.hooks.sampler.clone();
        if let Some(f) = &hooked {
            cands.resize(m * p, 0.0);
            self.sample_with_hook(f, st, &mut cands, run)?;
        } else {
            for _ in 0..m {
                for (i, s) in self.specs.iter().enumerate() {
                    let v = if draw[i] { s.proposal.draw(&mut self.rng, i, st.best[i], scale[i]) } else { st.best[i] };
                    cands.push(v);
                }
            }
        }
        self.prepare(&mut cands)?;
        let losses = self.evaluate(&cands, loss)?;
        self.push_elite(&cands, &losses);
        Ok((cands, losses, hooked.is_some()))
    }

    fn elitist_iteration(&mut self, st: &mut RunState, free: &[bool], loss: LossFn, run: usize) -> Result<()> {
        let p = self.n_params();
        let (sel, _) = self.select(free, false)?;
        let mut chosen = vec![false; p];
        sel.iter().for_each(|&i| chosen[i] = true);
        let spreads = self.spreads.clone();
        let (cands, losses, hooked) = self.propose(st, run, &chosen, &spreads, loss)?;
        let chosen = if hooked { free.to_vec() } else { chosen };
        let k = Self::argmin(&losses).filter(|&k| losses[k] < st.best_loss);
        if let Some(k) = k {
            let new = cands[k * p..(k + 1) * p].to_vec();
            let dev = self.elite_deviation(&cands, &losses, &new);
            let a = self.settings.memory;
            for i in (0..p).filter(|&i| chosen[i]) {
                let blend = a * self.spreads[i] + (1.0 - a) * dev[i];
                self.spreads[i] = blend.max((new[i] - st.best[i]).abs());
            }
            st.best = new;
            st.best_loss = losses[k];
            st.improved = true;
        } else {
            for i in (0..p).filter(|&i| chosen[i]) {
                self.spreads[i] *= self.settings.shrink;
            }
        }
        Ok(())
    }

    fn kernelml_iteration(&mut self, st: &mut RunState, free: &[bool], loss: LossFn, run: usize) -> Result<()> {
        let p = self.n_params();
        // 1. Resample around the best: the proposal with spread sd_i over the records (KernelML's
        //    default sampler: N(best_i, var_i)); the probe step where the records do not vary.
        let sd = self.record_sd();
        let scale: Vec<f64> = (0..p).map(|i| if sd[i] > 0.0 { sd[i] } else { self.steps[i] }).collect();
        let (cands, losses, _) = self.propose(st, run, free, &scale, loss)?;
        if let Some(k) = Self::argmin(&losses).filter(|&k| losses[k] < st.best_loss) {
            st.best = cands[k * p..(k + 1) * p].to_vec();
            st.best_loss = losses[k];
            st.improved = true;
        }
        // 2. The surrogate ranks the parameters and gives each its downhill side.
        let (sel, coef) = self.select(free, true)?;
        let mut dir: Vec<f64> =
            (0..p).map(|i| if coef[i].standardized.is_some_and(|c| c > 0.0) { -1.0 } else { 1.0 }).collect();
        // 3. Coordinate probes: the downhill side, then the other for those that failed; a
        //    success doubles the parameter's step and a failure of both halves it; improving
        //    moves are combined when that is better than the best single one.
        for _ in 0..self.settings.updates {
            if sel.is_empty() || self.remaining() == 0 {
                break;
            }
            let mut moves: Vec<(usize, Vec<f64>, f64)> = Vec::new();
            let mut todo = sel.clone();
            for side in [1.0, -1.0] {
                if todo.is_empty() {
                    break;
                }
                let n = (todo.len() as u64).min(self.remaining()) as usize;
                todo.truncate(n);
                let mut probes = candidates(n, p)?;
                for &i in &todo {
                    let mut x = st.best.clone();
                    x[i] += side * dir[i] * self.steps[i];
                    probes.extend_from_slice(&x);
                }
                self.prepare(&mut probes)?;
                let l = self.evaluate(&probes, loss)?;
                let mut failed = Vec::new();
                for (j, &i) in todo.iter().enumerate() {
                    if l[j] < st.best_loss {
                        dir[i] *= side;
                        moves.push((i, probes[j * p..(j + 1) * p].to_vec(), l[j]));
                    } else {
                        failed.push(i);
                    }
                }
                todo = failed;
            }
            for &i in &todo {
                self.steps[i] = (self.steps[i] * 0.5).max(f64::MIN_POSITIVE);
            }
            if moves.is_empty() {
                break;
            }
            for (i, _, _) in &moves {
                self.steps[*i] *= 2.0;
            }
            let (bj, _) = moves.iter().enumerate().fold(
                (0, f64::INFINITY),
                |(bj, bl), (j, m)| {
                    if m.2 < bl { (j, m.2) } else { (bj, bl) }
                },
            );
            let (mut x, mut l) = (moves[bj].1.clone(), moves[bj].2);
            if moves.len() > 1 && self.remaining() > 0 {
                let mut c = st.best.clone();
                for (_, y, _) in &moves {
                    for t in 0..p {
                        c[t] += y[t] - st.best[t];
                    }
                }
                self.prepare(&mut c)?;
                let lc = self.evaluate(&c, loss)?[0];
                if lc < l {
                    (x, l) = (c, lc);
                }
            }
            self.push_record(&x, l);
            st.best = x;
            st.best_loss = l;
            st.improved = true;
        }
        let sd = self.record_sd();
        for i in (0..p).filter(|&i| free[i]) {
            self.spreads[i] = sd[i];
        }
        Ok(())
    }
}

/// KernelML's z-score test: every free parameter's |best_i - mean_i| / sd_i over the recorded
/// bests is below `z` (a parameter that did not vary counts as 0, as KernelML's NaN -> 0).
fn z_settled(ring: &VecDeque<Vec<f64>>, best: &[f64], free: &[bool], z: f64) -> bool {
    let n = ring.len() as f64;
    (0..best.len()).filter(|&i| free[i]).all(|i| {
        let mean = ring.iter().map(|r| r[i]).sum::<f64>() / n;
        let sd = (ring.iter().map(|r| (r[i] - mean).powi(2)).sum::<f64>() / n).sqrt();
        let d = (best[i] - mean).abs();
        if sd > 0.0 { d / sd < z } else { d == 0.0 }
    })
}
