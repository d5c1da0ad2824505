//! The user's hooks into the search (KernelML's `change_prior_sampler`, `change_random_sampler`
//! and `change_parameter_transform`): where the first candidates come from, where each
//! iteration's candidates come from (seeing the search's history), and a transform applied to
//! every candidate before the loss sees it.
//!
//! Every hook is called on the thread that runs the search, one call at a time, with a seed
//! drawn from the optimizer's stream (so custom draws stay reproducible). A hook that returns
//! an error stops the run with it ([`crate::Error::Cancelled`] to cancel); the optimizer keeps
//! the best point and the history of the last completed iteration. A candidate with a
//! non-finite value after the hooks is infeasible: the loss never sees it.

use std::fmt;
use std::sync::Arc;

use crate::error::Result;

/// What a custom sampler sees: the search's state and history at the start of an iteration.
/// Row-major blocks of `n_params` values each.
#[derive(Clone, Copy, Debug)]
pub struct SearchView<'a> {
    pub n_params: usize,
    /// The best point so far and its loss.
    pub best: &'a [f64],
    pub best_loss: f64,
    /// The current per-parameter spreads.
    pub spreads: &'a [f64],
    /// Iterations so far over all runs, and the index of this run (0 = the first).
    pub iteration: usize,
    pub run: usize,
    /// The best point after each kept iteration (KernelML's `get_param_by_iter`), oldest
    /// first: iterations `first_kept_iteration..iteration`.
    pub best_by_iter: &'a [f64],
    /// The best loss after each of those iterations.
    pub loss_by_iter: &'a [f64],
    pub first_kept_iteration: usize,
    /// The records the surrogate is fitted on (KernelML's parameter update history): the best
    /// candidates of recent iterations and accepted moves, oldest first, and their losses.
    pub records: &'a [f64],
    pub record_losses: &'a [f64],
}

/// A prior sampler: fills `out` (count × n_params, row-major) with the first run's candidates,
/// from `(out, n_params, seed)`.
pub type PriorSamplerFn = Arc<dyn Fn(&mut [f64], usize, u64) -> Result<()> + Send + Sync>;

/// A sampler that sees the history: fills `out` (count × n_params) with an iteration's
/// candidates, from `(view, out, seed)`.
pub type SamplerFn = Arc<dyn Fn(&SearchView<'_>, &mut [f64], u64) -> Result<()> + Send + Sync>;

/// A parameter transform: maps a block of candidates (count × n_params, row-major) in place,
/// from `(block, n_params)`, after the per-parameter constraints: integer, simplex or ordered
/// parameters, anything the loss needs.
pub type TransformFn = Arc<dyn Fn(&mut [f64], usize) -> Result<()> + Send + Sync>;

/// The hooks of one optimizer (none by default).
#[derive(Clone, Default)]
pub struct Hooks {
    pub prior_sampler: Option<PriorSamplerFn>,
    pub sampler: Option<SamplerFn>,
    pub transform: Option<TransformFn>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("prior_sampler", &self.prior_sampler.is_some())
            .field("sampler", &self.sampler.is_some())
            .field("transform", &self.transform.is_some())
            .finish()
    }
}
