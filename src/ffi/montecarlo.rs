//! C API of the gradient-free Monte-Carlo optimizer (KernelML-style; see `crate::montecarlo`).

use std::ffi::c_void;
use std::sync::Arc;

use super::*;
use crate::error::{Error, invalid, shape};
use crate::montecarlo::network::{Link, LinkFn, NetworkObjective, fit_network};
use crate::montecarlo::{Constraint, IntervalSettings, MonteCarlo, Prior, Proposal, Settings, Temperature};

/// A Monte-Carlo optimizer: per-parameter priors, proposals and constraints, the best point so
/// far, adapted spreads and counters. A later latent_montecarlo_minimize() continues from the
/// best (KernelML's runs). Used by one thread at a time.
pub struct latent_montecarlo {
    inner: MonteCarlo,
    interval_samples: usize,
    full_hessian_max: usize,
}

/// The defaults (KernelML's where it has one): 1000 initial samples, 100 per iteration, elite
/// 20, 1000 iterations per run, 1e6 evaluations, tolerance 1e-8, patience 50, memory 0.5,
/// shrink 0.5, restart fraction 0.1, all cores, seed 0, automatic interval samples, full
/// Hessian up to 40 free parameters.
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
    }
}

fn count(v: u64, name: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| invalid!("{name} = {v} does not fit in size_t"))
}

fn settings_from_params(p: &latent_montecarlo_params) -> Result<Settings> {
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
        threads: p.threads as usize,
        seed: p.seed,
        ..Settings::default()
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
    guard(|| {
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(out, "out")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let p = unsafe { arg(params, "params")? };
        let settings = settings_from_params(p)?;
        let max = crate::montecarlo::interval::MAX_INTERVAL_SAMPLES;
        let interval_samples = count(p.interval_samples, "interval_samples")?;
        if interval_samples > max {
            return Err(invalid!("interval_samples = {interval_samples} is more than {max} (0: automatic)"));
        }
        let inner = MonteCarlo::new(settings, n_params)?;
        let h = latent_montecarlo { inner, interval_samples, full_hessian_max: p.full_hessian_max as usize };
        // SAFETY: the out-pointer was checked non-NULL (by `clear`) and is writable.
        unsafe { new_handle(out, h) };
        Ok(())
    })
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
    unsafe { mc.as_ref() }.map_or(0, |m| m.inner.n_params())
}

/// Applies `f` to the specs of parameters first..first+count, all or nothing.
fn edit_specs(
    mc: &mut latent_montecarlo,
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
        let mc = unsafe { arg_mut(mc, "mc")? };
        let prior = match kind {
            LATENT_PRIOR_UNIFORM => Prior::Uniform { low: a, high: b },
            LATENT_PRIOR_NORMAL => Prior::Normal { mean: a, sd: b },
            k => return Err(invalid!("unknown prior {k}")),
        };
        prior.validate("prior")?;
        edit_specs(mc, first, count, |s| s.prior = prior)
    })
}

struct CQuantile {
    f: unsafe extern "C" fn(*mut c_void, usize, f64, f64, f64) -> f64,
    user: *mut c_void,
}
// SAFETY: the quantile function is only called on the thread that called
// latent_montecarlo_minimize() (draws are serial); the caller owns `user` and keeps it alive.
unsafe impl Send for CQuantile {}
// SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
unsafe impl Sync for CQuantile {}

impl CQuantile {
    fn call(&self, index: usize, center: f64, scale: f64, u: f64) -> f64 {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { (self.f)(self.user, index, center, scale, u) }
    }
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
        let mc = unsafe { arg_mut(mc, "mc")? };
        let proposal = match kind {
            LATENT_PROPOSAL_NORMAL => Proposal::Normal,
            LATENT_PROPOSAL_UNIFORM => Proposal::Uniform,
            LATENT_PROPOSAL_CUSTOM => {
                let f = quantile.ok_or_else(|| Error::NullArgument("quantile is NULL".into()))?;
                let q = CQuantile { f, user };
                Proposal::Custom(Arc::new(move |i, c, s, u| q.call(i, c, s, u)))
            }
            k => return Err(invalid!("unknown proposal {k}")),
        };
        edit_specs(mc, first, count, |s| s.proposal = proposal.clone())
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
        let mc = unsafe { arg_mut(mc, "mc")? };
        let c = match kind {
            LATENT_CONSTRAINT_NONE => Constraint::None,
            LATENT_CONSTRAINT_POSITIVE if a == 0.0 => Constraint::positive(),
            LATENT_CONSTRAINT_POSITIVE => Constraint::Positive { floor: a },
            LATENT_CONSTRAINT_INTERVAL => Constraint::Interval { low: a, high: b },
            LATENT_CONSTRAINT_FIXED => Constraint::Fixed(a),
            k => return Err(invalid!("unknown constraint {k}")),
        };
        c.validate("constraint")?;
        edit_specs(mc, first, count, |s| s.constraint = c)
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
        let mc = unsafe { arg_mut(mc, "mc")? };
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
/// is not an error (see latent_montecarlo_converged()); LATENT_STATUS_NON_FINITE when every
/// starting candidate gave a non-finite loss.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_minimize(
    mc: *mut latent_montecarlo,
    loss: latent_objective_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { arg_mut(mc, "mc")? };
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
        let mc = unsafe { arg(mc, "mc")? };
        let best =
            mc.inner.best().ok_or_else(|| invalid!("no best point yet: call latent_montecarlo_minimize first"))?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let o = unsafe { out_slice(out, capacity, best.len(), "out")? };
        o.copy_from_slice(best);
        Ok(())
    })
}

/// The best loss of the last run (NaN for NULL or before a run).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_best_loss(mc: *const latent_montecarlo) -> f64 {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { mc.as_ref() }.map_or(f64::NAN, |m| m.inner.best_loss())
}

/// Loss evaluations so far, runs and intervals (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_evaluations(mc: *const latent_montecarlo) -> u64 {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { mc.as_ref() }.map_or(0, |m| m.inner.evaluations())
}

/// Iterations so far over all runs (0 for NULL): the length of the history.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_iterations(mc: *const latent_montecarlo) -> u64 {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { mc.as_ref() }.map_or(0, |m| m.inner.iterations() as u64)
}

/// 1 when the last run stopped by its convergence rules (spreads collapsed or `patience`
/// iterations without improvement), 0 when it stopped by a budget (or for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_converged(mc: *const latent_montecarlo) -> i32 {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { mc.as_ref() }.map_or(0, |m| m.inner.converged() as i32)
}

/// Copies the best loss after each iteration (latent_montecarlo_iterations of them) into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_history(
    mc: *const latent_montecarlo,
    out: *mut f64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { arg(mc, "mc")? };
        let h = mc.inner.history();
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let o = unsafe { out_slice(out, capacity, h.len(), "out")? };
        o.copy_from_slice(h);
        Ok(())
    })
}

/// Weak confidence intervals at `level` in (0, 1) for every parameter, around the best point,
/// from a quadratic fit of `loss` to samples near it (README, "Gradient-free Monte-Carlo
/// optimizer"). The loss is read as the negative log-likelihood at temperature T: give either
/// `temperature` > 0 (observations 0), or, for a sum- or mean-of-squares loss, the number of
/// observations n > free parameters (temperature 0), for T = 2 L* / (n - p). Fixed parameters
/// get zero-width intervals. lower and upper hold at least latent_montecarlo_n_params values.
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
        let mc = unsafe { arg_mut(mc, "mc")? };
        let obj = CObjective::new(loss, user)?;
        let p = mc.inner.n_params();
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let lo = unsafe { out_slice(lower, n, p, "lower")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let hi = unsafe { out_slice(upper, n, p, "upper")? };
        let t = match (temperature, observations) {
            (t, 0) if t > 0.0 => Temperature::Given(t),
            (t, n) if t == 0.0 && n > 0 => Temperature::Observations(n),
            (t, n) => {
                return Err(invalid!(
                    "give either temperature > 0 or observations > 0 (the other 0), not temperature {t} and observations {n}"
                ));
            }
        };
        let mut s = IntervalSettings::new(level, t);
        s.samples = mc.interval_samples;
        s.full_hessian_max = mc.full_hessian_max;
        let r = mc.inner.intervals(&|x: &[f64]| obj.call(x), &s)?;
        lo.copy_from_slice(&r.lower);
        hi.copy_from_slice(&r.upper);
        Ok(())
    })
}

/// Defaults: every row, one run, no link, seed 0.
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

/// Fits every parameter of `net` (and of an optional link, a non-linear function with its
/// own parameters applied to one hidden layer's output) with the Monte-Carlo optimizer `mc`,
/// against the network's own loss (as in training) on `data` (with its labels or targets for
/// a supervised network): `runs` runs, each on a fresh minibatch. `mc` must have
/// latent_network_param_count(net) + link_params parameters, in the network's parameter order
/// (latent_network_layer_offsets) then the link's; set their priors, proposals and constraints
/// before. The first run starts around the network's current parameters and the link's prior
/// means, unless `mc` already has a point. The network ends with the best parameters; read
/// the link's with latent_montecarlo_best (its last link_params values). The link is not part
/// of the network afterwards: apply it to latent_network_encode's output yourself. The network
/// is busy during the search: calls on it (from the link callback too) return
/// LATENT_STATUS_BUSY.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_montecarlo_fit_network(
    mc: *mut latent_montecarlo,
    net: *mut latent_network,
    data: *const latent_dataset,
    params: *const latent_montecarlo_network_params,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let mc = unsafe { arg_mut(mc, "mc")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let net = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let data = unsafe { arg(data, "data")? };
        let _in_fit = data.for_fit();
        let data = data.get();
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let p = unsafe { arg(params, "params")? };
        let link = match (p.link_layer, p.link) {
            (-1, _) => None,
            (l, _) if l < 0 => return Err(invalid!("link_layer {l} must be -1 (no link) or a hidden layer")),
            (_, None) => return Err(Error::NullArgument("link is NULL but link_layer is set".into())),
            (l, Some(f)) => {
                let c = Arc::new(CLink { f, user: p.link_user });
                // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
                let f: LinkFn = Arc::new(move |t: &[f64], v: &mut [f32], rows: usize, cols: usize| unsafe {
                    (c.f)(c.user, t.as_ptr(), t.len(), v.as_mut_ptr(), rows, cols)
                });
                Some(Link { layer: l as usize, params: p.link_params as usize, f })
            }
        };
        if link.is_none() && p.link_params != 0 {
            return Err(invalid!("link_params is {} without a link (link_layer -1)", p.link_params));
        }
        let obj = NetworkObjective {
            batch_size: usize::try_from(p.batch_size).unwrap_or(usize::MAX),
            runs: p.runs as usize,
            seed: p.seed,
            link,
            ..Default::default()
        };
        let mut n = net.fit()?;
        fit_network(&mut mc.inner, &mut n, data, &obj)?;
        Ok(())
    })
}
