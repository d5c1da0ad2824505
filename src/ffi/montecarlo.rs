//! C API of the gradient-free Monte-Carlo optimizer (KernelML's update rule and an elitist
//! search; see `crate::montecarlo` and docs/montecarlo.md).

use std::ffi::c_void;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use super::*;
use crate::error::{Error, invalid, shape};
use crate::montecarlo::hooks::{PriorSamplerFn, SamplerFn, SearchView, TransformFn};
use crate::montecarlo::network::{BatchRequest, BatchSamplerFn, Link, LinkFn, NetworkObjective, fit_network};
use crate::montecarlo::{
    Constraint, IntervalSettings, Intervals, MonteCarlo, Prior, Proposal, Settings, StopReason, Strategy, Temperature,
};

/// The search strategy of latent_montecarlo_params.strategy (`latent_montecarlo_strategy`).
pub type latent_montecarlo_strategy = i32;
/// KernelML's update rule (the default): draws around the best with the records' variances, a
/// linear-regression surrogate of the loss ranking the parameters, coordinate probes whose
/// steps adapt, a z-score stop.
pub const LATENT_MONTECARLO_STRATEGY_KERNELML: latent_montecarlo_strategy = 0;
/// Elitist adaptive random search: proposals around the best, spreads from each iteration's elite.
pub const LATENT_MONTECARLO_STRATEGY_ELITIST: latent_montecarlo_strategy = 1;

/// Why the last run stopped (`latent_montecarlo_stop`, from latent_montecarlo_stop_reason).
pub type latent_montecarlo_stop = i32;
/// No run yet.
pub const LATENT_MONTECARLO_STOP_NONE: latent_montecarlo_stop = 0;
/// A stopping rule fired and no coordinate move at any checked scale improved the best.
pub const LATENT_MONTECARLO_STOP_CONVERGED: latent_montecarlo_stop = 1;
/// max_iterations iterations of the run.
pub const LATENT_MONTECARLO_STOP_MAX_ITERATIONS: latent_montecarlo_stop = 2;
/// max_evaluations spent.
pub const LATENT_MONTECARLO_STOP_BUDGET: latent_montecarlo_stop = 3;
/// A callback cancelled it (LATENT_STATUS_CANCELLED).
pub const LATENT_MONTECARLO_STOP_CANCELLED: latent_montecarlo_stop = 4;
/// An error stopped it (the run returned its status).
pub const LATENT_MONTECARLO_STOP_FAILED: latent_montecarlo_stop = 5;

/// What a history sampler sees (latent_sampler_fn): the search's state at the start of an
/// iteration. Arrays are row-major, n_params values per row, valid during the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_montecarlo_view {
    pub n_params: usize,
    /// The best point so far (n_params values) and its loss.
    pub best: *const f64,
    pub best_loss: f64,
    /// The current per-parameter spreads (n_params values).
    pub spreads: *const f64,
    /// Iterations so far over all runs, and this run's index (0 = the first).
    pub iteration: u64,
    pub run: u64,
    /// The best point after each kept iteration (kept_iterations rows, oldest first: iterations
    /// first_kept_iteration..iteration-1) and the best loss after each.
    pub best_by_iter: *const f64,
    pub loss_by_iter: *const f64,
    pub kept_iterations: usize,
    pub first_kept_iteration: u64,
    /// The records the surrogate is fitted on (n_records rows: recent iterations' best
    /// candidates and accepted moves, oldest first) and their losses.
    pub records: *const f64,
    pub record_losses: *const f64,
    pub n_records: usize,
}

/// A prior sampler: writes `count` candidates of `n_params` values (row-major) to `out` for the
/// first run's start, drawing from `seed` (from the optimizer's seeded stream). Returns 0 to go
/// on, non-zero to cancel the run (LATENT_STATUS_CANCELLED). A candidate with a NaN or infinite
/// value is infeasible: the loss never sees it.
pub type latent_prior_sampler_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, out: *mut f64, count: usize, n_params: usize, seed: u64) -> i32>;

/// A sampler that sees the history: writes `count` candidates (row-major, view->n_params
/// values each) for one iteration to `out`, from `seed`. Returns 0 to go on, non-zero to
/// cancel. Non-finite values make a candidate infeasible; fixed parameters are reset.
pub type latent_sampler_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        view: *const latent_montecarlo_view,
        out: *mut f64,
        count: usize,
        seed: u64,
    ) -> i32,
>;

/// A parameter transform (KernelML's parameter_transform): maps `count` candidates of
/// `n_params` values (row-major) in place, after the per-parameter constraints and before the
/// loss sees them (integers, a simplex, an ordering...). Returns 0 to go on, non-zero to cancel.
/// Non-finite values make a candidate infeasible.
pub type latent_transform_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, params: *mut f64, count: usize, n_params: usize) -> i32>;

/// A minibatch sampler for latent_montecarlo_fit_network: writes `batch_size` row indices below
/// `n_rows` (repeats allowed) to `rows` for iteration `iteration` (0 at the run's start) of run
/// `run`, from `seed`. Returns 0 to go on, non-zero to cancel the fit. An index out of range is
/// LATENT_STATUS_INVALID_ARGUMENT.
pub type latent_batch_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        run: u64,
        iteration: u64,
        n_rows: usize,
        rows: *mut usize,
        batch_size: usize,
        seed: u64,
    ) -> i32,
>;

/// A Monte-Carlo optimizer: per-parameter priors, proposals and constraints, hooks, the best
/// point so far, the records of the search and counters. A later latent_montecarlo_minimize()
/// continues from the best (KernelML's runs). One call at a time: a call on an optimizer while
/// it runs (from its own callbacks included) is LATENT_STATUS_BUSY (a getter returning a value
/// returns its "none" value then): callbacks get what they need as arguments.
pub struct latent_montecarlo {
    n_params: usize,
    state: Mutex<McState>,
}

struct McState {
    inner: MonteCarlo,
    interval_samples: usize,
    full_hessian_max: usize,
}

impl latent_montecarlo {
    fn get(&self) -> Result<MutexGuard<'_, McState>> {
        match self.state.try_lock() {
            Ok(g) => Ok(g),
            Err(TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(TryLockError::WouldBlock) => Err(Error::Busy(
                "the optimizer is running: it takes no other call until the run returns (its callbacks get what they need as arguments)".into(),
            )),
        }
    }

    /// The state for a getter without a status: None for NULL or while it runs.
    fn peek<R>(p: *const latent_montecarlo, f: impl FnOnce(&MonteCarlo) -> R) -> Option<R> {
        // SAFETY: NULL or a live object of this library (the C contract).
        let m = unsafe { p.as_ref() }?;
        m.get().ok().map(|g| f(&g.inner))
    }
}

/// The defaults (KernelML's where it has one): the KernelML strategy, 1000 initial samples, 100
/// per iteration, elite 20, 1000 iterations per run, 1e6 evaluations, tolerance 1e-8, patience
/// 50, memory 0.5, shrink 0.5, restart fraction 0.1, update fraction 1, 10 probe rounds,
/// update magnitude 1, z-score 1 over 10 records, an automatic history window, 10000 kept
/// iterations, all cores, seed 0, automatic interval samples, full Hessian up to 40 free
/// parameters.
#[unsafe(no_mangle)]
pub extern "C" fn latent_montecarlo_params_default() -> latent_montecarlo_params {
    let s = Settings::default();
    let i = IntervalSettings::new(0.95, Temperature::Given(1.0));
    latent_montecarlo_params {
        init_samples: s.init_samples as u64,
        samples: s.samples as u64,
        elite: s.elite as u64,
        max_iterations: s.max_iterations as u64,
        max_evaluations: s.max_evaluations,
        seed: s.seed,
        interval_samples: i.samples as u64,
        tolerance: s.tolerance,
        memory: s.memory,
        shrink: s.shrink,
        restart_fraction: s.restart_fraction,
        patience: s.patience as u32,
        threads: s.threads as u32,
        full_hessian_max: i.full_hessian_max as u32,
        update_fraction: s.update_fraction,
        strategy: strategy_code(s.strategy),
        updates: s.updates as u32,
        update_magnitude: s.update_magnitude,
        z_score: s.z_score,
        z_window: s.z_window as u32,
        history_window: s.history_window as u32,
        history_limit: s.history_limit as u64,
    }
}

fn strategy_code(s: Strategy) -> latent_montecarlo_strategy {
    match s {
        Strategy::KernelML => LATENT_MONTECARLO_STRATEGY_KERNELML,
        Strategy::Elitist => LATENT_MONTECARLO_STRATEGY_ELITIST,
    }
}

fn count(v: u64, name: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| invalid!("{name} = {v} does not fit in size_t"))
}

fn settings_from_params(p: &latent_montecarlo_params) -> Result<Settings> {
    let strategy = match p.strategy {
        LATENT_MONTECARLO_STRATEGY_KERNELML => Strategy::KernelML,
        LATENT_MONTECARLO_STRATEGY_ELITIST => Strategy::Elitist,
        k => return Err(invalid!("unknown strategy {k}")),
    };
    let s = Settings {
        init_samples: count(p.init_samples, "init_samples")?,
        samples: count(p.samples, "samples")?,
        elite: count(p.elite, "elite")?,
        max_iterations: count(p.max_iterations, "max_iterations")?,
        max_evaluations: p.max_evaluations,
        tolerance: p.tolerance,
        patience: p.patience as usize,
        memory: p.memory,
        shrink: p.shrink,
        restart_fraction: p.restart_fraction,
        update_fraction: p.update_fraction,
        updates: p.updates as usize,
        update_magnitude: p.update_magnitude,
        z_window: p.z_window as usize,
        z_score: p.z_score,
        history_window: p.history_window as usize,
        history_limit: count(p.history_limit, "history_limit")?,
        threads: p.threads as usize,
        seed: p.seed,
        strategy,
    };
    s.validate()?;
    Ok(s)
}

/// A new optimizer over `n_params` parameters, each with prior U(-1, 1), a normal proposal and
/// no constraint. `params->interval_samples` above 2^24 (16777216) gives
/// LATENT_STATUS_INVALID_ARGUMENT; an `n_params` too large for memory,
/// LATENT_STATUS_OUT_OF_MEMORY. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_new(
    params: *const latent_montecarlo_params,
    n_params: usize,
    out: *mut *mut latent_montecarlo,
) -> latent_status {
    let make = |p: &latent_montecarlo_params| {
        let settings = settings_from_params(p)?;
        let max = crate::montecarlo::interval::MAX_INTERVAL_SAMPLES;
        let interval_samples = count(p.interval_samples, "interval_samples")?;
        if interval_samples > max {
            return Err(invalid!("interval_samples = {interval_samples} is more than {max} (0: automatic)"));
        }
        let inner = MonteCarlo::new(settings, n_params)?;
        let state = McState { inner, interval_samples, full_hessian_max: p.full_hessian_max as usize };
        Ok(latent_montecarlo { n_params, state: Mutex::new(state) })
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(params, "params", out, make) }
}

/// Frees an optimizer; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_free(mc: *mut latent_montecarlo) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(mc) }
}

/// Number of parameters (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_n_params(mc: *const latent_montecarlo) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { mc.as_ref() }.map_or(0, |m| m.n_params)
}

/// The handle's state, locked for this call (BUSY while a run holds it).
unsafe fn state<'a>(mc: *const latent_montecarlo) -> Result<MutexGuard<'a, McState>> {
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    unsafe { arg(mc, "mc")? }.get()
}

/// Applies `f` to the specs of parameters first..first+count, all or nothing.
fn edit_specs(
    mc: &mut McState,
    first: usize,
    count: usize,
    f: impl Fn(&mut crate::montecarlo::ParamSpec),
) -> Result<()> {
    let n = mc.inner.n_params();
    if count == 0 || first.checked_add(count).is_none_or(|end| end > n) {
        return Err(invalid!(
            "{count} parameters from parameter {first} are not a non-empty range within the {n} parameters"
        ));
    }
    let mut specs = mc.inner.specs().to_vec();
    for s in &mut specs[first..first + count] {
        f(s);
    }
    mc.inner.set_specs(specs)
}

/// Sets the prior of parameters first..first+count-1: LATENT_PRIOR_UNIFORM U(a, b) or
/// LATENT_PRIOR_NORMAL N(a, b^2).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_set_prior(
    mc: *mut latent_montecarlo,
    first: usize,
    count: usize,
    kind: latent_prior,
    a: f64,
    b: f64,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let prior = match kind {
            LATENT_PRIOR_UNIFORM => Prior::Uniform { low: a, high: b },
            LATENT_PRIOR_NORMAL => Prior::Normal { mean: a, sd: b },
            k => return Err(invalid!("unknown prior {k}")),
        };
        prior.validate("prior")?;
        edit_specs(&mut mc, first, count, |s| s.prior = prior)
    })
}

/// A C callback with its user pointer, called only on the thread running the search.
struct CFn<F> {
    f: F,
    user: *mut c_void,
}
// SAFETY: the hooks (quantile, prior sampler, sampler, transform, minibatch sampler) are only
// called on the thread that called into the library, one call at a time; the caller owns
// `user` and keeps it alive while the optimizer may use it (the documented C contract).
unsafe impl<F> Send for CFn<F> {}
// SAFETY: as above: the pointers are passed on unchanged, under the same C contract.
unsafe impl<F> Sync for CFn<F> {}

impl<F: Copy> CFn<F> {
    /// The function and the user pointer (a method, so that closures capture the whole CFn).
    fn parts(&self) -> (F, *mut c_void) {
        (self.f, self.user)
    }
}

/// A callback's return: 0 goes on, anything else cancels.
fn go_on(code: i32) -> Result<()> {
    if code == 0 { Ok(()) } else { Err(Error::Cancelled) }
}

/// Sets the proposal of parameters first..first+count-1. LATENT_PROPOSAL_CUSTOM needs
/// `quantile` (kept with `user`, which must stay valid while the optimizer uses it); the others
/// ignore both.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_set_proposal(
    mc: *mut latent_montecarlo,
    first: usize,
    count: usize,
    kind: latent_proposal,
    quantile: latent_quantile_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let proposal = match kind {
            LATENT_PROPOSAL_NORMAL => Proposal::Normal,
            LATENT_PROPOSAL_UNIFORM => Proposal::Uniform,
            LATENT_PROPOSAL_CUSTOM => {
                let f = quantile.ok_or_else(|| Error::NullArgument("quantile is NULL".into()))?;
                let q = CFn { f, user };
                Proposal::Custom(Arc::new(move |i, c, s, u| {
                    let (f, user) = q.parts();
                    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
                    unsafe { f(user, i, c, s, u) }
                }))
            }
            k => return Err(invalid!("unknown proposal {k}")),
        };
        edit_specs(&mut mc, first, count, |s| s.proposal = proposal.clone())
    })
}

/// Sets the constraint of parameters first..first+count-1: LATENT_CONSTRAINT_NONE,
/// LATENT_CONSTRAINT_POSITIVE (floor a > 0, or 0 for 1e-6), LATENT_CONSTRAINT_INTERVAL [a, b],
/// LATENT_CONSTRAINT_FIXED (the value a). Unused values are ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_set_constraint(
    mc: *mut latent_montecarlo,
    first: usize,
    count: usize,
    kind: latent_constraint,
    a: f64,
    b: f64,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let c = match kind {
            LATENT_CONSTRAINT_NONE => Constraint::None,
            LATENT_CONSTRAINT_POSITIVE if a == 0.0 => Constraint::positive(),
            LATENT_CONSTRAINT_POSITIVE => Constraint::Positive { floor: a },
            LATENT_CONSTRAINT_INTERVAL => Constraint::Interval { low: a, high: b },
            LATENT_CONSTRAINT_FIXED => Constraint::Fixed(a),
            k => return Err(invalid!("unknown constraint {k}")),
        };
        c.validate("constraint")?;
        edit_specs(&mut mc, first, count, |s| s.constraint = c)
    })
}

/// Sets the prior sampler (KernelML's prior_sampler): the first run's `init_samples`
/// candidates come from `sampler` (called once, on the thread of latent_montecarlo_minimize,
/// with `user`) instead of the per-parameter priors. NULL `sampler` goes back to the priors.
/// `user` must stay valid while the optimizer may use it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_set_prior_sampler(
    mc: *mut latent_montecarlo,
    sampler: latent_prior_sampler_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let mut hooks = mc.inner.hooks().clone();
        hooks.prior_sampler = sampler.map(|f| {
            let c = CFn { f, user };
            let h: PriorSamplerFn = Arc::new(move |out: &mut [f64], p: usize, seed: u64| {
                let (f, user) = c.parts();
                // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
                go_on(unsafe { f(user, out.as_mut_ptr(), out.len() / p, p, seed) })
            });
            h
        });
        mc.inner.set_hooks(hooks);
        Ok(())
    })
}

/// Sets the sampler that sees the history (KernelML's random sampler): each iteration's
/// `samples` candidates come from `sampler` (on the thread of latent_montecarlo_minimize, with
/// the search's state in a latent_montecarlo_view) instead of the strategy's own draws. NULL
/// `sampler` goes back to them. `user` must stay valid while the optimizer may use it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_set_sampler(
    mc: *mut latent_montecarlo,
    sampler: latent_sampler_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let mut hooks = mc.inner.hooks().clone();
        hooks.sampler = sampler.map(|f| {
            let c = CFn { f, user };
            let h: SamplerFn = Arc::new(move |v: &SearchView<'_>, out: &mut [f64], seed: u64| {
                let view = latent_montecarlo_view {
                    n_params: v.n_params,
                    best: v.best.as_ptr(),
                    best_loss: v.best_loss,
                    spreads: v.spreads.as_ptr(),
                    iteration: v.iteration as u64,
                    run: v.run as u64,
                    best_by_iter: v.best_by_iter.as_ptr(),
                    loss_by_iter: v.loss_by_iter.as_ptr(),
                    kept_iterations: v.loss_by_iter.len(),
                    first_kept_iteration: v.first_kept_iteration as u64,
                    records: v.records.as_ptr(),
                    record_losses: v.record_losses.as_ptr(),
                    n_records: v.record_losses.len(),
                };
                let (f, user) = c.parts();
                // SAFETY: the caller's pointers are passed on unchanged, under the same C contract;
                // the view's arrays live for the call.
                go_on(unsafe { f(user, &view, out.as_mut_ptr(), out.len() / v.n_params, seed) })
            });
            h
        });
        mc.inner.set_hooks(hooks);
        Ok(())
    })
}

/// Sets the parameter transform (KernelML's parameter_transform): every block of candidates
/// goes through `transform` (on the thread of latent_montecarlo_minimize, after the
/// constraints) before the loss sees it, the start and the interval samples included. NULL
/// removes it. `user` must stay valid while the optimizer may use it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_set_transform(
    mc: *mut latent_montecarlo,
    transform: latent_transform_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let mut hooks = mc.inner.hooks().clone();
        hooks.transform = transform.map(|f| {
            let c = CFn { f, user };
            let h: TransformFn = Arc::new(move |block: &mut [f64], p: usize| {
                let (f, user) = c.parts();
                // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
                go_on(unsafe { f(user, block.as_mut_ptr(), block.len() / p, p) })
            });
            h
        });
        mc.inner.set_hooks(hooks);
        Ok(())
    })
}

/// Sets the point the next latent_montecarlo_minimize() starts around (n must equal the number
/// of parameters; the values are constrained).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_set_start(
    mc: *mut latent_montecarlo,
    start: *const f64,
    n: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let p = mc.inner.n_params();
        if n != p {
            return Err(shape!("the start has {n} values for {p} parameters"));
        }
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let x = unsafe { slice(start, n, "start")? };
        mc.inner.set_start(x)
    })
}

struct CObjective {
    f: unsafe extern "C" fn(*mut c_void, *const f64, usize) -> f64,
    user: *mut c_void,
}
// SAFETY: the header documents that the loss is called from `threads` threads at once; a
// caller whose loss is not thread-safe sets threads = 1.
unsafe impl Sync for CObjective {}

impl CObjective {
    fn new(loss: latent_objective_fn, user: *mut c_void) -> Result<CObjective> {
        let f = loss.ok_or_else(|| Error::NullArgument("loss is NULL".into()))?;
        Ok(CObjective { f, user })
    }
    fn call(&self, x: &[f64]) -> f64 {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { (self.f)(self.user, x.as_ptr(), x.len()) }
    }
}

/// Runs the optimizer on `loss` (the first call from the priors, later calls from the current
/// best, re-evaluated on this loss: e.g. a new minibatch). The loss is called from `threads`
/// threads at once unless threads == 1; non-finite returns are skipped. Stopping by the budget
/// is not an error (see latent_montecarlo_converged() and latent_montecarlo_stop_reason());
/// LATENT_STATUS_NON_FINITE when every starting candidate gave a non-finite loss;
/// LATENT_STATUS_CANCELLED when a hook cancelled (the best and the history are those of the
/// last completed iteration).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_minimize(
    mc: *mut latent_montecarlo,
    loss: latent_objective_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let obj = CObjective::new(loss, user)?;
        mc.inner.run(&|x: &[f64]| obj.call(x))?;
        Ok(())
    })
}

/// Copies the best parameters (latent_montecarlo_n_params of them) into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_best(
    mc: *const latent_montecarlo,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { state(mc)? };
        let best =
            mc.inner.best().ok_or_else(|| invalid!("no best point yet: call latent_montecarlo_minimize first"))?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let o = unsafe { out_slice(out, capacity, best.len(), "out")? };
        o.copy_from_slice(best);
        Ok(())
    })
}

/// The best loss of the last run (NaN for NULL, before a run, or while it runs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_best_loss(mc: *const latent_montecarlo) -> f64 {
    latent_montecarlo::peek(mc, |m| m.best_loss()).unwrap_or(f64::NAN)
}

/// Loss evaluations so far, runs and intervals (0 for NULL or while it runs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_evaluations(mc: *const latent_montecarlo) -> u64 {
    latent_montecarlo::peek(mc, |m| m.evaluations()).unwrap_or(0)
}

/// Iterations so far over all runs (0 for NULL or while it runs): the length of the history.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_iterations(mc: *const latent_montecarlo) -> u64 {
    latent_montecarlo::peek(mc, |m| m.iterations() as u64).unwrap_or(0)
}

/// Runs completed (latent_montecarlo_minimize calls, or fit_network runs) so far (0 for NULL
/// or while it runs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_runs(mc: *const latent_montecarlo) -> u64 {
    latent_montecarlo::peek(mc, |m| m.runs() as u64).unwrap_or(0)
}

/// 1 when the last run stopped converged: a stopping rule fired (spreads collapsed, `patience`
/// iterations without improvement, or the z-score test) and no single-coordinate move of
/// +-10^-k max(1, |x_i|), k = 1, 2, ... down to `tolerance`, lowered the loss. 0 when it
/// stopped by a budget or max_iterations (or for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_converged(mc: *const latent_montecarlo) -> i32 {
    latent_montecarlo::peek(mc, |m| m.converged() as i32).unwrap_or(0)
}

/// Why the last run stopped: LATENT_MONTECARLO_STOP_* (NONE for NULL, before a run, or while
/// it runs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_stop_reason(mc: *const latent_montecarlo) -> latent_montecarlo_stop {
    latent_montecarlo::peek(mc, |m| match m.stop_reason() {
        StopReason::None => LATENT_MONTECARLO_STOP_NONE,
        StopReason::Converged => LATENT_MONTECARLO_STOP_CONVERGED,
        StopReason::MaxIterations => LATENT_MONTECARLO_STOP_MAX_ITERATIONS,
        StopReason::Budget => LATENT_MONTECARLO_STOP_BUDGET,
        StopReason::Cancelled => LATENT_MONTECARLO_STOP_CANCELLED,
        StopReason::Failed => LATENT_MONTECARLO_STOP_FAILED,
    })
    .unwrap_or(LATENT_MONTECARLO_STOP_NONE)
}

/// Copies the best loss after each iteration (latent_montecarlo_iterations of them) into `out`
/// (KernelML's get_loss_by_iter).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_history(
    mc: *const latent_montecarlo,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { state(mc)? };
        let h = mc.inner.history();
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let o = unsafe { out_slice(out, capacity, h.len(), "out")? };
        o.copy_from_slice(h);
        Ok(())
    })
}

/// Copies the best parameters after iteration `iteration` (0-based over all runs; KernelML's
/// get_param_by_iter) into `out` (latent_montecarlo_n_params values). Only the latest
/// `history_limit` iterations are kept: an earlier or a future iteration is
/// LATENT_STATUS_INVALID_ARGUMENT (latent_montecarlo_first_kept_iteration tells the first kept).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_param_by_iter(
    mc: *const latent_montecarlo,
    iteration: u64,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { state(mc)? };
        let m = &mc.inner;
        let x = usize::try_from(iteration).ok().and_then(|i| m.param_by_iter(i)).ok_or_else(|| {
            invalid!(
                "iteration {iteration} is not kept: iterations {} to {} are (history_limit {})",
                m.first_kept_iteration(),
                m.iterations() as i64 - 1,
                m.settings().history_limit
            )
        })?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let o = unsafe { out_slice(out, capacity, x.len(), "out")? };
        o.copy_from_slice(&x);
        Ok(())
    })
}

/// The first iteration whose best parameters are kept (0 for NULL or while it runs).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_first_kept_iteration(mc: *const latent_montecarlo) -> u64 {
    latent_montecarlo::peek(mc, |m| m.first_kept_iteration() as u64).unwrap_or(0)
}

/// The surrogate's records (KernelML's parameter update history): writes their number to
/// *count, their parameter vectors (row-major, *count x n_params values) to `params` and their
/// losses to `losses`. Call with capacities 0 (the buffers may then be NULL) to get the count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_records(
    mc: *const latent_montecarlo,
    params: *mut f64,
    params_capacity: usize,
    losses: *mut f64,
    losses_capacity: usize,
    count: *mut usize,
) -> latent_status {
    guard(|| {
        out(count, "count")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { state(mc)? };
        let (x, l) = mc.inner.records();
        // SAFETY: checked non-NULL above.
        unsafe { put(count, l.len()) };
        if params_capacity == 0 && losses_capacity == 0 {
            return Ok(());
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let o = unsafe { out_slice(params, params_capacity, x.len(), "params")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let ol = unsafe { out_slice(losses, losses_capacity, l.len(), "losses")? };
        o.copy_from_slice(&x);
        ol.copy_from_slice(&l);
        Ok(())
    })
}

/// Copies the best parameters at the end of run `run` (0-based) into `out` and its loss (on
/// that run's loss or minibatch) to *loss.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_run_best(
    mc: *const latent_montecarlo,
    run: u64,
    out: *mut f64,
    capacity: usize,
    loss: *mut f64,
) -> latent_status {
    guard(|| {
        super::out(loss, "loss")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { state(mc)? };
        let (x, l) = mc.inner.run_bests();
        let p = mc.inner.n_params();
        let r = usize::try_from(run)
            .ok()
            .filter(|&r| r < l.len())
            .ok_or_else(|| invalid!("run {run} is not one of the {} runs so far", l.len()))?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let o = unsafe { out_slice(out, capacity, p, "out")? };
        o.copy_from_slice(&x[r * p..(r + 1) * p]);
        // SAFETY: checked non-NULL above.
        unsafe { put(loss, l[r]) };
        Ok(())
    })
}

/// Where an interval call writes: bounds, standard deviations, covariance.
struct IntervalOut<'a> {
    lower: &'a mut [f64],
    upper: &'a mut [f64],
    sd: Option<&'a mut [f64]>,
    covariance: Option<&'a mut [f64]>,
}

impl IntervalOut<'_> {
    fn write(self, r: &Intervals) {
        self.lower.copy_from_slice(&r.lower);
        self.upper.copy_from_slice(&r.upper);
        if let Some(s) = self.sd {
            s.copy_from_slice(&r.sd);
        }
        if let Some(c) = self.covariance {
            c.copy_from_slice(&r.covariance);
        }
    }
}

fn temperature_of(temperature: f64, observations: usize) -> Result<Temperature> {
    match (temperature, observations) {
        (t, 0) if t > 0.0 => Ok(Temperature::Given(t)),
        (t, n) if t == 0.0 && n > 0 => Ok(Temperature::Observations(n)),
        (t, n) => Err(invalid!(
            "give either temperature > 0 or observations > 0 (the other 0), not temperature {t} and observations {n}"
        )),
    }
}

fn laplace(
    mc: &mut McState,
    obj: &CObjective,
    level: f64,
    temperature: f64,
    observations: usize,
    o: IntervalOut,
) -> Result<()> {
    let mut s = IntervalSettings::new(level, temperature_of(temperature, observations)?);
    s.samples = mc.interval_samples;
    s.full_hessian_max = mc.full_hessian_max;
    let r = mc.inner.intervals(&|x: &[f64]| obj.call(x), &s)?;
    o.write(&r);
    Ok(())
}

/// Weak confidence intervals at `level` in (0, 1) for every parameter, around the best point,
/// from a quadratic fit of `loss` to samples near it (docs/montecarlo.md). The loss is read as
/// the negative log-likelihood at temperature T: give either `temperature` > 0 (observations
/// 0), or, for a sum- or mean-of-squares loss, the number of observations n > free parameters
/// (temperature 0), for T = 2 L* / (n - p). Fixed parameters get zero-width intervals. lower
/// and upper hold at least latent_montecarlo_n_params values. latent_montecarlo_laplace also
/// gives the standard deviations and the covariance.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_intervals(
    mc: *mut latent_montecarlo,
    loss: latent_objective_fn,
    user: *mut c_void,
    level: f64,
    temperature: f64,
    observations: usize,
    lower: *mut f64,
    upper: *mut f64,
    n: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let obj = CObjective::new(loss, user)?;
        let p = mc.inner.n_params();
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let lower = unsafe { out_slice(lower, n, p, "lower")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let upper = unsafe { out_slice(upper, n, p, "upper")? };
        laplace(
            &mut mc,
            &obj,
            level,
            temperature,
            observations,
            IntervalOut { lower, upper, sd: None, covariance: None },
        )
    })
}

/// latent_montecarlo_intervals with the quantities behind the bounds: also writes the
/// standard deviations sqrt(cov_ii) to `sd` (n values) and the covariance T H^-1 (row-major
/// n_params x n_params; only its diagonal when more than full_hessian_max parameters are free;
/// zero rows for fixed parameters) to `covariance`, which holds `covariance_capacity` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_laplace(
    mc: *mut latent_montecarlo,
    loss: latent_objective_fn,
    user: *mut c_void,
    level: f64,
    temperature: f64,
    observations: usize,
    lower: *mut f64,
    upper: *mut f64,
    sd: *mut f64,
    n: usize,
    covariance: *mut f64,
    covariance_capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        let obj = CObjective::new(loss, user)?;
        let o = interval_out(mc.inner.n_params(), lower, upper, sd, n, covariance, covariance_capacity)?;
        laplace(&mut mc, &obj, level, temperature, observations, o)
    })
}

fn interval_out<'a>(
    p: usize,
    lower: *mut f64,
    upper: *mut f64,
    sd: *mut f64,
    n: usize,
    covariance: *mut f64,
    covariance_capacity: usize,
) -> Result<IntervalOut<'a>> {
    let pp = crate::tensor::checked_len(p, p)?;
    // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
    let lower = unsafe { out_slice(lower, n, p, "lower")? };
    // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
    let upper = unsafe { out_slice(upper, n, p, "upper")? };
    // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
    let sd = unsafe { out_slice(sd, n, p, "sd")? };
    // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
    let covariance = unsafe { out_slice(covariance, covariance_capacity, pp, "covariance")? };
    Ok(IntervalOut { lower, upper, sd: Some(sd), covariance: Some(covariance) })
}

/// KernelML's own weak intervals, from the search's samples: the spread of the best parameters
/// at the end of runs `skip_runs`.. (runs on fresh minibatches: latent_montecarlo_fit_network
/// with batch_size < rows, or minimize calls on resampled data). The covariance is
/// `variance_factor` times the runs' sample covariance: b / (n - b) for minibatches of b of n
/// rows drawn without replacement makes it the delete-d jackknife variance of the full-data
/// estimate (1 for half-samples). Writes bounds best_i +- z sd_i, z = Phi^-1((1 + level) / 2)
/// (clamped into the constraints), the sd (n values each) and the covariance (n_params x
/// n_params, row-major; `covariance_capacity` values). Fewer than 2 runs after `skip_runs`:
/// LATENT_STATUS_INVALID_ARGUMENT. Evaluates nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_run_intervals(
    mc: *const latent_montecarlo,
    level: f64,
    variance_factor: f64,
    skip_runs: u64,
    lower: *mut f64,
    upper: *mut f64,
    sd: *mut f64,
    n: usize,
    covariance: *mut f64,
    covariance_capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { state(mc)? };
        let o = interval_out(mc.inner.n_params(), lower, upper, sd, n, covariance, covariance_capacity)?;
        let skip = usize::try_from(skip_runs).unwrap_or(usize::MAX);
        let r = mc.inner.run_intervals(level, variance_factor, skip)?;
        o.write(&r);
        Ok(())
    })
}

/// Defaults: every row, one run, no link, seed 0, the seeded minibatch sampler, a minibatch per
/// run, the first run from the priors.
#[unsafe(no_mangle)]
pub extern "C" fn latent_montecarlo_network_params_default() -> latent_montecarlo_network_params {
    latent_montecarlo_network_params {
        batch_size: 0,
        runs: 1,
        link_layer: -1,
        link_params: 0,
        link: None,
        link_user: std::ptr::null_mut(),
        seed: 0,
        batch_sampler: None,
        batch_user: std::ptr::null_mut(),
        batch_every_iteration: 0,
        start_from_network: 0,
        link2_layer: -1,
        link2_params: 0,
        link2: None,
        link2_user: std::ptr::null_mut(),
    }
}

/// A C link callback and its user pointer, shareable across the optimizer's threads.
struct CLink {
    f: unsafe extern "C" fn(*mut c_void, *const f64, usize, *mut f32, usize, usize),
    user: *mut c_void,
}
// SAFETY: the header documents that the link is called from `threads` threads at once; a
// caller whose link is not thread-safe sets threads = 1.
unsafe impl Send for CLink {}
// SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
unsafe impl Sync for CLink {}

/// A C link as a [`Link`]: None for layer -1 (then it must have no parameters).
fn c_link(layer: i32, params: u32, f: latent_link_fn, user: *mut c_void, name: &str) -> Result<Option<Link>> {
    match (layer, f) {
        (-1, _) if params != 0 => Err(invalid!("{name}_params is {params} without a {name} ({name}_layer -1)")),
        (-1, _) => Ok(None),
        (l, _) if l < 0 => Err(invalid!("{name}_layer {l} must be -1 (no {name}) or a layer of the network")),
        (_, None) => Err(Error::NullArgument(format!("{name} is NULL but {name}_layer is set"))),
        (l, Some(f)) => {
            let c = Arc::new(CLink { f, user });
            // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
            let f: LinkFn = Arc::new(move |t: &[f64], v: &mut [f32], rows: usize, cols: usize| unsafe {
                (c.f)(c.user, t.as_ptr(), t.len(), v.as_mut_ptr(), rows, cols)
            });
            Ok(Some(Link { layer: l as usize, params: params as usize, f }))
        }
    }
}

/// Fits every parameter of `net` (and of an optional link, a non-linear function with its
/// own parameters applied to a hidden layer's output or to the network's output before the
/// loss, and of an optional second link, link2) with the Monte-Carlo optimizer `mc`,
/// against the network's own loss (as in training) on `data` (with its labels or targets for
/// a supervised network): `runs` runs, each on a fresh minibatch (or one every iteration with
/// batch_every_iteration), drawn by `batch_sampler` when set. `mc` must have
/// latent_network_param_count(net) + link_params + link2_params parameters, in the network's
/// parameter order (latent_network_layer_offsets) then the link's, then link2's; set their priors, proposals and constraints
/// before. The first run draws its candidates from the priors (KernelML's way; set the priors
/// to where the parameters should be searched), or, with start_from_network, starts around the
/// network's current parameters and the link's prior means, unless `mc` already has a point.
/// The network ends with the best parameters; read the links' with latent_montecarlo_best (the
/// values after the network's). The links are not part of the network afterwards: apply them
/// to latent_network_encode's (or reconstruct's) output yourself. The network is busy during the search: calls on
/// it (from the link callback too) return LATENT_STATUS_BUSY. A minibatch sampler that cancels
/// gives LATENT_STATUS_CANCELLED (the network keeps its parameters).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_fit_network(
    mc: *mut latent_montecarlo,
    net: *mut latent_network,
    data: *const latent_dataset,
    params: *const latent_montecarlo_network_params,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mut mc = unsafe { state(mc)? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let net = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let data = unsafe { arg(data, "data")? };
        let _in_fit = data.for_fit();
        let data = data.get();
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let p = unsafe { arg(params, "params")? };
        let link = c_link(p.link_layer, p.link_params, p.link, p.link_user, "link")?;
        let link2 = c_link(p.link2_layer, p.link2_params, p.link2, p.link2_user, "link2")?;
        let batch_sampler = p.batch_sampler.map(|f| {
            let c = CFn { f, user: p.batch_user };
            let h: BatchSamplerFn = Arc::new(move |r: &BatchRequest, rows: &mut [usize]| {
                let (f, user) = c.parts();
                // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
                go_on(unsafe {
                    f(user, r.run as u64, r.iteration as u64, r.rows, rows.as_mut_ptr(), rows.len(), r.seed)
                })
            });
            h
        });
        let obj = NetworkObjective {
            batch_size: usize::try_from(p.batch_size).unwrap_or(usize::MAX),
            runs: p.runs as usize,
            seed: p.seed,
            link,
            extra_links: link2.into_iter().collect(),
            batch_sampler,
            batch_every_iteration: flag(p.batch_every_iteration, "batch_every_iteration")?,
            start_from_network: flag(p.start_from_network, "start_from_network")?,
        };
        let mut n = net.fit()?;
        fit_network(&mut mc.inner, &mut n, data, &obj)?;
        Ok(())
    })
}
