//! "Weak" confidence intervals (KernelML's README suggested them; no version of it computed
//! one, so both methods here are our own): a Laplace fit around the optimum
//! ([`MonteCarlo::intervals`], below), and the spread of the best parameters over runs on
//! fresh minibatches ([`MonteCarlo::run_intervals`], KernelML's "the samples around a minimum
//! can be used to form weak confidence intervals", made a jackknife estimate).
//!
//! # Laplace method
//!
//! The loss is read as a negative log-likelihood at temperature T: likelihood ∝ exp(-L(θ)/T).
//! T is given by the user, or, for a sum-of-squares or mean-of-squares loss over n
//! observations, T = 2 L* / (n - p) with L* the loss at the optimum and p the number of free
//! (not fixed) parameters. For SSE, exp(-SSE / (2 σ̂²)) is the Gaussian likelihood with
//! σ̂² = SSE / (n - p); for MSE = SSE / n the same formula gives the same intervals, so the
//! choice is scale-invariant.
//!
//! 1. **Scale.** For each free parameter a step h_i is probed along its axis until the
//!    symmetric rise (L(θ* + h e_i) + L(θ* - h e_i)) / 2 - L* is between T/8 and 2T, so h_i is
//!    within a factor 2 of the conditional posterior standard deviation.
//! 2. **Fit.** Candidates θ* + d with d_i ~ N(0, h_i²) are drawn (seeded, then constrained) and
//!    evaluated in parallel; the quadratic surface L ≈ L* + c + gᵀd + ½ dᵀHd is fitted to them
//!    by least squares (in the scaled coordinates d_i / h_i): with the full Hessian when there
//!    are at most `full_hessian_max` free parameters (default 40), with its diagonal otherwise
//!    (then the intervals are conditional ones, narrower than the marginal intervals when
//!    parameters are correlated).
//! 3. **Refine.** The covariance T · H⁻¹ of the first fit sets new sampling spreads
//!    h_i = sqrt(cov_ii), and the fit is repeated.
//! 4. **Intervals.** θ*_i ± z · sqrt(cov_ii) with z = Φ⁻¹((1 + level) / 2), clamped into the
//!    parameter's constraint. Fixed parameters get zero-width intervals.
//!
//! These are Laplace (normal) approximations of the likelihood around θ*: "weak" in that they
//! are only as good as the quadratic approximation and the temperature. For a linear model with
//! Gaussian noise and T from n, they are the OLS intervals with z in place of Student's t.
//! A Hessian that is not positive definite (θ* is not a minimum, or the loss is flat in some
//! direction) or too few finite samples is an error, not a panic.

use super::sampler::{normal_quantile, standard_normal};
use super::{LossFn, MonteCarlo};
use crate::error::{Error, Result, invalid, try_zeros};

/// Where the likelihood's temperature comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Temperature {
    /// T itself (> 0): the likelihood is exp(-L / T). A negative log-likelihood loss has T = 1.
    Given(f64),
    /// The number of observations n of a sum- or mean-of-squares loss: T = 2 L* / (n - p).
    Observations(usize),
}

/// Most candidates per interval fit ([`IntervalSettings::samples`]).
pub const MAX_INTERVAL_SAMPLES: usize = 1 << 24;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalSettings {
    /// Coverage level in (0, 1), e.g. 0.95.
    pub level: f64,
    pub temperature: Temperature,
    /// Candidates per fit; 0 (default) = 4 × the number of fitted coefficients, at least 60.
    pub samples: usize,
    /// Fit the full Hessian up to this many free parameters, its diagonal above. Default 40.
    pub full_hessian_max: usize,
}

impl IntervalSettings {
    pub fn new(level: f64, temperature: Temperature) -> IntervalSettings {
        IntervalSettings { level, temperature, samples: 0, full_hessian_max: 40 }
    }
}

/// Intervals and the quantities behind them.
#[derive(Clone, Debug, PartialEq)]
pub struct Intervals {
    /// The point the intervals are centered at (the optimizer's best).
    pub center: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Standard errors sqrt(cov_ii) (0 for fixed parameters).
    pub sd: Vec<f64>,
    /// Row-major p × p covariance: T · H⁻¹ (zero rows for fixed parameters; only the diagonal
    /// in the diagonal mode), or the runs' scaled sample covariance.
    pub covariance: Vec<f64>,
    /// The loss L* at the center and the temperature used (NaN for the runs' estimate).
    pub loss: f64,
    pub temperature: f64,
    /// Whether the full Hessian was fitted.
    pub full_hessian: bool,
}

impl MonteCarlo {
    /// Weak confidence intervals around the current best, on `loss` (see the module docs).
    /// Uses the optimizer's seeded stream and counts its evaluations; the best is not changed.
    pub fn intervals(&mut self, loss: LossFn, s: &IntervalSettings) -> Result<Intervals> {
        if !(s.level > 0.0 && s.level < 1.0) {
            return Err(invalid!("level = {} must be in (0, 1)", s.level));
        }
        if s.samples > MAX_INTERVAL_SAMPLES {
            return Err(invalid!("interval samples = {} is more than {MAX_INTERVAL_SAMPLES}", s.samples));
        }
        let Some(center) = self.best.clone() else {
            return Err(invalid!("no optimum yet: run the optimizer (or set a start) first"));
        };
        let p = self.n_params();
        let free: Vec<usize> = (0..p).filter(|&i| !self.specs[i].constraint.is_fixed()).collect();
        let q = free.len();
        match s.temperature {
            Temperature::Given(t) if !(t.is_finite() && t > 0.0) => {
                return Err(invalid!("temperature = {t} must be finite and > 0"));
            }
            Temperature::Observations(n) if n <= q => {
                return Err(invalid!("{n} observations for {q} free parameters: n must exceed p"));
            }
            _ => {}
        }
        let lstar = self.evaluate(&center, loss)?[0];
        if !lstar.is_finite() {
            return Err(Error::NonFinite(format!("the loss at the optimum is {lstar}")));
        }
        let t = match s.temperature {
            Temperature::Given(t) => t,
            Temperature::Observations(n) => {
                let t = 2.0 * lstar / (n - q) as f64;
                if !(t.is_finite() && t > 0.0) {
                    return Err(invalid!(
                        "the loss at the optimum is {lstar}: T = 2 L* / (n - p) needs a positive loss; give a temperature instead"
                    ));
                }
                t
            }
        };
        let full = q <= s.full_hessian_max;
        let mut sd = try_zeros(p)?;
        let mut covariance = try_zeros(crate::tensor::checked_len(p, p)?)?;
        if q > 0 {
            let h = self.probe_scales(loss, &center, lstar, &free, t)?;
            let cov = self.fit_covariance(loss, &center, lstar, &free, &h, full, s.samples, t)?;
            let h2: Vec<f64> = (0..q).map(|j| cov[j * q + j].sqrt()).collect();
            let cov = self.fit_covariance(loss, &center, lstar, &free, &h2, full, s.samples, t)?;
            for (a, &i) in free.iter().enumerate() {
                sd[i] = cov[a * q + a].sqrt();
                for (b, &k) in free.iter().enumerate() {
                    covariance[i * p + k] = cov[a * q + b];
                }
            }
        }
        let bounded = self.bounded(center, sd, covariance, s.level);
        Ok(Intervals { loss: lstar, temperature: t, full_hessian: full, ..bounded })
    }

    /// KernelML's own "weak" intervals, from the search's samples: the distribution of the best
    /// parameters over the runs `skip_runs..` (each run on a fresh minibatch, as KernelML's
    /// runs and [`super::network::fit_network`]). The covariance is `variance_factor` times
    /// the sample covariance (n - 1 denominator) of those bests; the intervals are
    /// best_i ± z · sd_i, z = Φ⁻¹((1 + level) / 2), clamped into the constraints.
    ///
    /// For runs on minibatches of b of n rows drawn without replacement, `variance_factor`
    /// = b / (n - b) makes this the delete-d jackknife variance (Shao & Wu 1989, d = n - b) of
    /// the full-data estimate: 1 for half-samples. Runs on the same data give no spread.
    /// Needs at least 2 runs after `skip_runs`; evaluates nothing.
    pub fn run_intervals(&self, level: f64, variance_factor: f64, skip_runs: usize) -> Result<Intervals> {
        if !(level > 0.0 && level < 1.0) {
            return Err(invalid!("level = {level} must be in (0, 1)"));
        }
        if !(variance_factor.is_finite() && variance_factor > 0.0) {
            return Err(invalid!("variance_factor = {variance_factor} must be finite and > 0"));
        }
        let Some(center) = self.best.clone() else {
            return Err(invalid!("no optimum yet: run the optimizer first"));
        };
        let p = self.n_params();
        let runs = self.runs();
        if runs < skip_runs.saturating_add(2) {
            return Err(invalid!("{runs} runs, {skip_runs} skipped: at least 2 runs are needed for their spread"));
        }
        let rows = &self.run_params[skip_runs * p..];
        let n = (runs - skip_runs) as f64;
        let mut mean = vec![0.0; p];
        for r in rows.chunks(p) {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut covariance: Vec<f64> = try_zeros(crate::tensor::checked_len(p, p)?)?;
        for r in rows.chunks(p) {
            for a in 0..p {
                let da = r[a] - mean[a];
                if da == 0.0 {
                    continue;
                }
                for b in 0..p {
                    covariance[a * p + b] += da * (r[b] - mean[b]);
                }
            }
        }
        covariance.iter_mut().for_each(|c| *c *= variance_factor / (n - 1.0));
        let sd: Vec<f64> = (0..p).map(|i| covariance[i * p + i].max(0.0).sqrt()).collect();
        Ok(Intervals { loss: self.best_loss, ..self.bounded(center, sd, covariance, level) })
    }

    /// The intervals center_i ± z · sd_i, z = Φ⁻¹((1 + level) / 2), clamped into the constraints
    /// (loss and temperature NaN, full Hessian: the runs' estimate).
    fn bounded(&self, center: Vec<f64>, sd: Vec<f64>, covariance: Vec<f64>, level: f64) -> Intervals {
        let z = normal_quantile(0.5 * (1.0 + level));
        let lower = (0..center.len()).map(|i| self.specs[i].constraint.apply(center[i] - z * sd[i])).collect();
        let upper = (0..center.len()).map(|i| self.specs[i].constraint.apply(center[i] + z * sd[i])).collect();
        Intervals { center, lower, upper, sd, covariance, loss: f64::NAN, temperature: f64::NAN, full_hessian: true }
    }

    /// Per free parameter, a step whose symmetric loss rise is between T/8 and 2T.
    fn probe_scales(&mut self, loss: LossFn, center: &[f64], lstar: f64, free: &[usize], t: f64) -> Result<Vec<f64>> {
        let p = self.n_params();
        let mut h: Vec<f64> = free.iter().map(|&i| self.spreads[i].max(1e-3 * center[i].abs()).max(1e-6)).collect();
        let mut done = vec![false; free.len()];
        for _ in 0..60 {
            let todo: Vec<usize> = (0..free.len()).filter(|&j| !done[j]).collect();
            if todo.is_empty() {
                break;
            }
            let mut cands = Vec::with_capacity(todo.len() * 2 * p);
            for &j in &todo {
                for sign in [1.0, -1.0] {
                    let mut x = center.to_vec();
                    x[free[j]] += sign * h[j];
                    cands.extend_from_slice(&x);
                }
            }
            self.prepare(&mut cands)?;
            let losses = self.evaluate(&cands, loss)?;
            for (k, &j) in todo.iter().enumerate() {
                let rise = 0.5 * (losses[2 * k] + losses[2 * k + 1]) - lstar;
                if !rise.is_finite() {
                    h[j] *= 0.25;
                } else if rise <= 0.0 {
                    h[j] *= 4.0;
                } else if rise < t / 8.0 || rise > 2.0 * t {
                    h[j] *= (0.5 * t / rise).sqrt().clamp(1e-3, 1e3);
                } else {
                    done[j] = true;
                }
                if !(h[j].is_finite() && h[j] > 0.0) {
                    return Err(invalid!("parameter {}: no step gives a finite rise of the loss", free[j]));
                }
            }
        }
        Ok(h)
    }

    /// Least-squares quadratic fit to samples θ* + d, d_i ~ N(0, h_i²); returns the q × q
    /// covariance T · H⁻¹ over the free parameters (diagonal only when `full` is false).
    #[allow(clippy::too_many_arguments)]
    fn fit_covariance(
        &mut self,
        loss: LossFn,
        center: &[f64],
        lstar: f64,
        free: &[usize],
        h: &[f64],
        full: bool,
        samples: usize,
        t: f64,
    ) -> Result<Vec<f64>> {
        let p = self.n_params();
        let q = free.len();
        let m = if full { 1 + q + q * (q + 1) / 2 } else { 1 + 2 * q };
        // The quadratic terms u_a u_b (a <= b) in coefficient order: every pair with the full
        // Hessian, the squares alone otherwise.
        let terms = || (0..q).flat_map(move |a| (a..if full { q } else { a + 1 }).map(move |b| (a, b)));
        let n = if samples > 0 { samples } else { (4 * m).max(60) };
        let mut cands = Vec::new();
        let len = crate::tensor::checked_len(n, p)?;
        cands.try_reserve_exact(len).map_err(|_| {
            Error::OutOfMemory(format!("{n} interval samples of {p} parameters: no memory for the candidates"))
        })?;
        for _ in 0..n {
            let mut x = center.to_vec();
            for (j, &i) in free.iter().enumerate() {
                x[i] += h[j] * standard_normal(&mut self.rng);
            }
            cands.extend_from_slice(&x);
        }
        self.prepare(&mut cands)?;
        let losses = self.evaluate(&cands, loss)?;
        // Normal equations over the finite samples, features in scaled coordinates u = d / h.
        let mut g = try_zeros(crate::tensor::checked_len(m, m)?)?;
        let mut b = vec![0.0; m];
        let mut f = vec![0.0; m];
        let mut used = 0usize;
        for (k, &l) in losses.iter().enumerate() {
            if !l.is_finite() {
                continue;
            }
            used += 1;
            let x = &cands[k * p..(k + 1) * p];
            let u: Vec<f64> = free.iter().zip(h).map(|(&i, &hj)| (x[i] - center[i]) / hj).collect();
            f[0] = 1.0;
            f[1..=q].copy_from_slice(&u);
            for (fc, (a, bb)) in f[q + 1..].iter_mut().zip(terms()) {
                *fc = if a == bb { 0.5 * u[a] * u[a] } else { u[a] * u[bb] };
            }
            let y = l - lstar;
            for r in 0..m {
                b[r] += f[r] * y;
                let fr = f[r];
                for (gv, &fc) in g[r * m..r * m + r + 1].iter_mut().zip(&f[..=r]) {
                    *gv += fr * fc;
                }
            }
        }
        if used < m + 2 {
            return Err(invalid!(
                "only {used} of {n} samples around the optimum gave a finite loss; {} are needed for the fit",
                m + 2
            ));
        }
        for r in 0..m {
            for c in r + 1..m {
                g[r * m + c] = g[c * m + r];
            }
        }
        let coef = solve_spd(&mut g, m, &b).ok_or_else(|| {
            invalid!("the samples around the optimum do not determine a quadratic fit (singular design)")
        })?;
        // The Hessian in scaled coordinates.
        let mut hu = vec![0.0; q * q];
        for (&c, (a, bb)) in coef[q + 1..].iter().zip(terms()) {
            hu[a * q + bb] = c;
            hu[bb * q + a] = c;
        }
        let inv = cholesky_inverse(&mut hu, q).ok_or_else(|| {
            invalid!("the fitted Hessian is not positive definite: the best point is not a minimum of this loss, or the loss is flat in some direction")
        })?;
        let mut cov = vec![0.0; q * q];
        for a in 0..q {
            for bb in 0..q {
                cov[a * q + bb] = t * inv[a * q + bb] * h[a] * h[bb];
            }
        }
        if cov.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite("the fitted covariance is not finite".into()));
        }
        Ok(cov)
    }
}

/// In-place lower Cholesky factor of the symmetric n × n matrix `a`; None if not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut v = a[i * n + j];
            for k in 0..j {
                v -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = v / d;
        }
    }
    Some(())
}

/// Solves L Lᵀ x = b with the factor in `l`.
fn cholesky_apply(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..n {
        for k in 0..i {
            y[i] -= l[i * n + k] * y[k];
        }
        y[i] /= l[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            y[i] -= l[k * n + i] * y[k];
        }
        y[i] /= l[i * n + i];
    }
    y
}

/// Solves A x = b for a symmetric positive definite n × n `a` (overwritten); None if it is not.
pub(crate) fn solve_spd(a: &mut [f64], n: usize, b: &[f64]) -> Option<Vec<f64>> {
    cholesky(a, n)?;
    Some(cholesky_apply(a, n, b))
}

fn cholesky_inverse(a: &mut [f64], n: usize) -> Option<Vec<f64>> {
    cholesky(a, n)?;
    let mut inv = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for c in 0..n {
        e.iter_mut().for_each(|v| *v = 0.0);
        e[c] = 1.0;
        let col = cholesky_apply(a, n, &e);
        for r in 0..n {
            inv[r * n + c] = col[r];
        }
    }
    Some(inv)
}
