//! Predictive sparse decomposition (PSD): Kavukcuoglu, Ranzato & LeCun 2008, "Fast inference in
//! sparse coding algorithms with applications to object recognition" (arXiv:1010.3467);
//! Goodfellow, Bengio & Courville, Deep Learning, 14.8.
//!
//! A linear decoder D whose atoms have unit norm, an L1-sparse code h, and a parametric encoder
//! f(x) = g ⊙ tanh(W_e x + b_e) (the paper's form: a gain per code unit) trained to predict the
//! optimal code. The energy of a row x with code h is
//!
//! ```text
//!     E(x, h) = ||x - D h||² + λ |h|₁ + α ||h - f(x)||²
//! ```
//!
//! Training alternates, as the paper does: (a) with the parameters fixed, h* = argmin_h E(x, h)
//! by ISTA started at h = f(x), with the step 1/L of the smooth part's Lipschitz constant
//! L = 2 (λ_max(DᵀD) + α), a budget of iterations and a tolerance; (b) with h* fixed, one
//! minibatch step of the library's optimizer on the mean of ||x - D h*||² + α ||h* - f(x)||² over
//! D, W_e, b_e and g, after which each atom of D is scaled back to unit norm.
//!
//! Row-major layout, rows = samples. The parameters are, in this order: D (code_dim x
//! input_dim; row k is atom k, the paper's column k of B, so a reconstruction is the row h D),
//! W_e (input_dim x code_dim; the encoder's pre-activation is the row x W_e + b_e), b_e
//! (code_dim), g (code_dim).

use std::ops::Range;
use std::time::Instant;

use crate::error::{Error, Result, invalid, shape, try_zeros};
use crate::gemm::{Operand, gemm};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::rng::{Rng, stream};
use crate::tensor::{Matrix, checked_len};

/// The most ISTA iterations one call may ask for (bounds the work of a bad argument).
pub const MAX_ITERATIONS: usize = 1_000_000;

/// What a PSD model is: its widths and the weights of the energy's terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PsdSpec {
    pub input_dim: usize,
    /// Code units (atoms of D): more than input_dim gives an overcomplete dictionary.
    pub code_dim: usize,
    /// Weight λ of the L1 penalty |h|₁.
    pub lambda: f32,
    /// Weight α of the prediction term ||h - f(x)||².
    pub alpha: f32,
    /// Seed of the initial parameters.
    pub seed: u64,
}

impl PsdSpec {
    /// λ = 0.5, α = 1 (the paper's α), seed 0.
    pub fn new(input_dim: usize, code_dim: usize) -> PsdSpec {
        PsdSpec { input_dim, code_dim, lambda: 0.5, alpha: 1.0, seed: 0 }
    }

    pub fn validate(&self) -> Result<()> {
        let max = crate::network::MAX_UNITS;
        for (what, u) in [("input_dim", self.input_dim), ("code_dim", self.code_dim)] {
            if u == 0 || u > max {
                return Err(invalid!("{what} {u} must be in 1 to {max}"));
            }
        }
        let (n, m) = (self.input_dim, self.code_dim);
        let count = checked_len(n, m)
            .ok()
            .and_then(|nm| nm.checked_mul(2))
            .and_then(|p| p.checked_add(2 * m))
            .filter(|&p| p <= crate::network::MAX_PARAMS);
        if count.is_none() {
            return Err(invalid!("a {n} x {m} PSD model has more than {} parameters", crate::network::MAX_PARAMS));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(invalid!("lambda {} must be finite and >= 0", self.lambda));
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(invalid!("alpha {} must be finite and >= 0", self.alpha));
        }
        Ok(())
    }

    /// 2 input_dim code_dim + 2 code_dim (the spec must be valid).
    pub fn param_count(&self) -> usize {
        2 * self.input_dim * self.code_dim + 2 * self.code_dim
    }
}

/// The budget of the iterative sparse coding (ISTA) of one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseCoding {
    /// Most ISTA iterations (0: the start, f(x), is returned).
    pub iterations: usize,
    /// Stop once no code entry of the minibatch changed by more than this in an iteration
    /// (absolute, in code units; 0: run the whole budget unless a fixed point is reached).
    pub tolerance: f32,
}

impl Default for SparseCoding {
    /// 100 iterations, tolerance 1e-4.
    fn default() -> Self {
        SparseCoding { iterations: 100, tolerance: 1e-4 }
    }
}

impl SparseCoding {
    pub fn validate(&self) -> Result<()> {
        if self.iterations > MAX_ITERATIONS {
            return Err(invalid!("iterations {} must be at most {MAX_ITERATIONS}", self.iterations));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(invalid!("tolerance {} must be finite and >= 0", self.tolerance));
        }
        Ok(())
    }
}

/// How [`Psd::fit`] trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PsdConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    /// The parameter step's optimizer (default Adam); weight decay, if any, applies to D and
    /// W_e. Each fit starts with a fresh optimizer state.
    pub optimizer: OptimizerConfig,
    /// The h-step of each minibatch.
    pub coding: SparseCoding,
    /// Seed of the per-epoch shuffling.
    pub seed: u64,
    /// Worker threads (0 = the default: LATENT_NUM_THREADS, else all cores).
    pub threads: usize,
}

impl Default for PsdConfig {
    /// 10 epochs of minibatches of 32 rows, Adam at 1e-3, ISTA with 100 iterations and
    /// tolerance 1e-4, seed 0, all cores.
    fn default() -> Self {
        PsdConfig {
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-3,
            optimizer: OptimizerConfig::default(),
            coding: SparseCoding::default(),
            seed: 0,
            threads: 0,
        }
    }
}

impl PsdConfig {
    pub fn validate(&self) -> Result<()> {
        crate::train::trainer::check_schedule(self.epochs, self.batch_size, self.learning_rate)?;
        self.optimizer.validate()?;
        self.coding.validate()?;
        crate::pool::check_threads(self.threads)?;
        Ok(())
    }
}

/// One epoch of [`Psd::fit`]: means over the epoch's rows at the optimised codes h*, each
/// taken before the minibatch's parameter step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PsdEpoch {
    /// E(x, h*) per row.
    pub energy: f64,
    /// ||x - D h*||² per row.
    pub reconstruction: f64,
    /// ||h* - f(x)||² per row (unweighted).
    pub prediction: f64,
    /// |h*|₁ per row (unweighted).
    pub l1: f64,
    /// Fraction of the entries of h* that are exactly 0.
    pub zero_fraction: f64,
    /// ISTA iterations per minibatch.
    pub iterations: f64,
    pub seconds: f64,
}

/// A PSD model: the decoder's dictionary and the encoder that predicts the sparse codes.
#[derive(Clone, Debug)]
pub struct Psd {
    spec: PsdSpec,
    params: Vec<f32>,
    /// Threads of inference calls (0 = the default).
    threads: usize,
}

/// Runs `f(threads)` on the library's pool of `threads` workers (on this thread when 1).
fn on_pool<R: Send>(threads: usize, f: impl FnOnce(usize) -> Result<R> + Send) -> Result<R> {
    if threads > 1 { crate::pool::pool(threads)?.install(|| f(threads)) } else { f(1) }
}

/// sign(u) max(|u| - t, 0): the proximal operator of t |.|.
#[inline]
fn soft(u: f32, t: f32) -> f32 {
    if u > t {
        u - t
    } else if u < -t {
        u + t
    } else {
        0.0
    }
}

impl Psd {
    /// A model with D's atoms drawn N(0, I) and scaled to unit norm, W_e uniform in
    /// ±1/sqrt(input_dim), b_e = 0 and g = 1 (seeded by `spec.seed`).
    pub fn new(spec: PsdSpec) -> Result<Psd> {
        spec.validate()?;
        let (n, m) = (spec.input_dim, spec.code_dim);
        let mut params = try_zeros(spec.param_count())?;
        let mut rng = Rng::new(spec.seed, stream::INIT);
        params[..m * n].iter_mut().for_each(|v| *v = rng.normal());
        let a = 1.0 / (n as f32).sqrt();
        params[m * n..2 * m * n].iter_mut().for_each(|v| *v = a * (2.0 * rng.uniform() - 1.0));
        params[2 * m * n + m..].fill(1.0);
        let mut p = Psd { spec, params, threads: 0 };
        p.normalize_atoms();
        Ok(p)
    }

    /// A model with the given parameters (as [`Psd::params`] returns them).
    pub fn from_params(spec: PsdSpec, params: &[f32]) -> Result<Psd> {
        spec.validate()?;
        let mut p = Psd { spec, params: try_zeros(spec.param_count())?, threads: 0 };
        p.set_params(params)?;
        Ok(p)
    }

    pub fn spec(&self) -> &PsdSpec {
        &self.spec
    }
    pub fn input_dim(&self) -> usize {
        self.spec.input_dim
    }
    pub fn code_dim(&self) -> usize {
        self.spec.code_dim
    }
    pub fn param_count(&self) -> usize {
        self.params.len()
    }
    /// D, W_e, b_e, g (see the module's layout).
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Replaces the parameters (all finite; D is taken as given, not renormalised).
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        crate::tensor::check_params(p, self.params.len(), "the PSD model")?;
        self.params.copy_from_slice(p);
        Ok(())
    }

    /// Threads of the inference calls (0 = the default).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
    }
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Where D, W_e, b_e and g sit in [`Psd::params`].
    pub fn layout(&self) -> [Range<usize>; 4] {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        [0..m * n, m * n..2 * m * n, 2 * m * n..2 * m * n + m, 2 * m * n + m..2 * m * n + 2 * m]
    }

    fn dict(&self) -> &[f32] {
        &self.params[..self.spec.code_dim * self.spec.input_dim]
    }

    /// Scales each atom (row of D) to unit norm; an all-zero atom stays as it is.
    fn normalize_atoms(&mut self) {
        let n = self.spec.input_dim;
        let m = self.spec.code_dim;
        for atom in self.params[..m * n].chunks_exact_mut(n) {
            let norm = atom.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
            if norm > 0.0 {
                let s = (1.0 / norm) as f32;
                atom.iter_mut().for_each(|v| *v *= s);
            }
        }
    }

    /// Runs an inference call over `x` where the library's placement rule puts it
    /// ([`crate::pool::infer`]).
    fn infer<R: Send>(&self, x: &Matrix, f: impl FnOnce(usize) -> Result<R> + Send) -> Result<R> {
        crate::pool::infer(self.threads, x.rows() * x.cols(), f)
    }

    // -- the passes, over r rows in plain buffers -------------------------------------------

    /// tanh(x W_e + b_e) into `t` and f(x) = g ⊙ t into `f` (r x code_dim each).
    fn encode_into(&self, x: &[f32], r: usize, t: &mut [f32], f: &mut [f32], threads: usize) {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        let [_, we, be, g] = self.layout();
        let (t, f) = (&mut t[..r * m], &mut f[..r * m]);
        gemm(r, m, n, 1.0, Operand::n(&x[..r * n], n), Operand::n(&self.params[we], m), 0.0, t, m, threads);
        let (b, g) = (&self.params[be], &self.params[g]);
        for (tr, fr) in t.chunks_exact_mut(m).zip(f.chunks_exact_mut(m)) {
            for k in 0..m {
                let th = (tr[k] + b[k]).tanh();
                tr[k] = th;
                fr[k] = g[k] * th;
            }
        }
    }

    /// resid = h D - x (r x input_dim).
    fn residual_into(&self, x: &[f32], h: &[f32], r: usize, resid: &mut [f32], threads: usize) {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        let resid = &mut resid[..r * n];
        resid.copy_from_slice(&x[..r * n]);
        gemm(r, n, m, 1.0, Operand::n(&h[..r * m], m), Operand::n(self.dict(), n), -1.0, resid, n, threads);
    }

    /// The gradient of the smooth part s(h) = ||x - D h||² + α ||h - f||² in h:
    /// 2 (h D - x) Dᵀ + 2 α (h - f), with resid = h D - x left in `resid`.
    #[allow(clippy::too_many_arguments)]
    fn code_grad_into(
        &self,
        x: &[f32],
        f: &[f32],
        h: &[f32],
        r: usize,
        resid: &mut [f32],
        grad: &mut [f32],
        threads: usize,
    ) {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        self.residual_into(x, h, r, resid, threads);
        let grad = &mut grad[..r * m];
        let two_alpha = 2.0 * self.spec.alpha;
        for ((g, &hv), &fv) in grad.iter_mut().zip(&h[..r * m]).zip(&f[..r * m]) {
            *g = two_alpha * (hv - fv);
        }
        gemm(r, m, n, 2.0, Operand::n(&resid[..r * n], n), Operand::t(self.dict(), n), 1.0, grad, m, threads);
    }

    /// One ISTA step h <- soft(h - step ∇s(h), step λ); returns the largest change of an entry.
    #[allow(clippy::too_many_arguments)]
    fn ista_step_into(
        &self,
        x: &[f32],
        f: &[f32],
        h: &mut [f32],
        r: usize,
        step: f32,
        resid: &mut [f32],
        grad: &mut [f32],
        threads: usize,
    ) -> f32 {
        let m = self.spec.code_dim;
        self.code_grad_into(x, f, h, r, resid, grad, threads);
        let thr = step * self.spec.lambda;
        let mut change = 0f32;
        for (hv, &g) in h[..r * m].iter_mut().zip(&grad[..r * m]) {
            let new = soft(*hv - step * g, thr);
            change = change.max((new - *hv).abs());
            *hv = new;
        }
        change
    }

    /// ISTA from the h given; returns the iterations run.
    #[allow(clippy::too_many_arguments)]
    fn ista_into(
        &self,
        x: &[f32],
        f: &[f32],
        h: &mut [f32],
        r: usize,
        step: f32,
        coding: &SparseCoding,
        resid: &mut [f32],
        grad: &mut [f32],
        threads: usize,
    ) -> usize {
        for it in 0..coding.iterations {
            if self.ista_step_into(x, f, h, r, step, resid, grad, threads) <= coding.tolerance {
                return it + 1;
            }
        }
        coding.iterations
    }

    /// The largest eigenvalue of the Gram matrix D Dᵀ (= λ_max(DᵀD)) by power iteration from
    /// `v` (kept for a warm start), in f64.
    fn top_eigenvalue(&self, gram: &mut [f32], v: &mut [f64]) -> f64 {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        let d = self.dict();
        gemm(m, m, n, 1.0, Operand::n(d, n), Operand::t(d, n), 0.0, &mut gram[..m * m], m, 1);
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            // A fixed start that no atom set is likely to be orthogonal to.
            v.iter_mut().enumerate().for_each(|(i, a)| *a = 1.0 + ((i * 7919) % 17) as f64 / 17.0);
        }
        let mut w = vec![0f64; m];
        let mut est = 0f64;
        for _ in 0..200 {
            let nv = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if nv == 0.0 {
                return 0.0;
            }
            v.iter_mut().for_each(|a| *a /= nv);
            for (i, wi) in w.iter_mut().enumerate() {
                *wi = gram[i * m..(i + 1) * m].iter().zip(v.iter()).map(|(&g, &a)| g as f64 * a).sum();
            }
            // The Rayleigh quotient of a unit v (G is positive semi-definite).
            let rq: f64 = w.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
            v.copy_from_slice(&w);
            if (rq - est).abs() <= 1e-7 * rq.abs() {
                return rq;
            }
            est = rq;
        }
        est
    }

    /// The Lipschitz constant used for ISTA's step 1/L: L = 2 (1.02 λ̂ + α), with λ̂ the power
    /// iteration's estimate of λ_max(DᵀD) (from below; the 2% margin covers its error, and the
    /// proximal step decreases the energy for any step below 2 / L_true anyway).
    pub fn lipschitz(&self) -> f32 {
        let m = self.spec.code_dim;
        let mut gram = vec![0f32; m * m];
        let mut v = vec![0f64; m];
        self.lipschitz_with(&mut gram, &mut v)
    }

    fn lipschitz_with(&self, gram: &mut [f32], v: &mut [f64]) -> f32 {
        let l = 2.0 * (1.02 * self.top_eigenvalue(gram, v) + self.spec.alpha as f64);
        (l as f32).max(f32::MIN_POSITIVE)
    }

    // -- inference ----------------------------------------------------------------------------

    /// The encoder's prediction f(x) = g ⊙ tanh(x W_e + b_e) of each row (rows x code_dim): the
    /// fast, feed-forward codes.
    pub fn encode(&self, x: &Matrix) -> Result<Matrix> {
        x.check_width(self.spec.input_dim, "input", "the PSD model")?;
        let (r, m) = (x.rows(), self.spec.code_dim);
        let mut t = try_zeros(checked_len(r, m)?)?;
        let mut f = try_zeros(r * m)?;
        self.infer(x, |th| {
            self.encode_into(x.as_slice(), r, &mut t, &mut f, th);
            Ok(())
        })?;
        Matrix::from_vec(r, m, f)
    }

    /// The optimised codes h* = argmin_h E(x, h) (rows x code_dim) by ISTA started at f(x), with
    /// the budget and tolerance of `coding`: iterative sparse coding, slower than [`Psd::encode`]
    /// but exactly sparse.
    pub fn encode_optimized(&self, x: &Matrix, coding: &SparseCoding) -> Result<Matrix> {
        Ok(self.encode_optimized_counting(x, coding)?.0)
    }

    /// [`Psd::encode_optimized`] and the ISTA iterations it ran.
    pub fn encode_optimized_counting(&self, x: &Matrix, coding: &SparseCoding) -> Result<(Matrix, usize)> {
        coding.validate()?;
        x.check_width(self.spec.input_dim, "input", "the PSD model")?;
        let (r, n, m) = (x.rows(), self.spec.input_dim, self.spec.code_dim);
        let mut t = try_zeros(checked_len(r, m)?)?;
        let mut f = try_zeros(r * m)?;
        let mut resid = try_zeros(checked_len(r, n)?)?;
        let mut grad = try_zeros(r * m)?;
        let mut gram = try_zeros(checked_len(m, m)?)?;
        let mut v = try_zeros(m)?;
        let its = self.infer(x, |th| {
            self.encode_into(x.as_slice(), r, &mut t, &mut f, th);
            t.copy_from_slice(&f);
            if r == 0 {
                return Ok(0);
            }
            let step = 1.0 / self.lipschitz_with(&mut gram, &mut v);
            Ok(self.ista_into(x.as_slice(), &f, &mut t, r, step, coding, &mut resid, &mut grad, th))
        })?;
        Ok((Matrix::from_vec(r, m, t)?, its))
    }

    /// The reconstruction h D of codes h (rows x code_dim) into rows x input_dim.
    pub fn decode(&self, h: &Matrix) -> Result<Matrix> {
        h.check_width(self.spec.code_dim, "codes", "the PSD model")?;
        let (r, n, m) = (h.rows(), self.spec.input_dim, self.spec.code_dim);
        let mut out = try_zeros(checked_len(r, n)?)?;
        self.infer(h, |th| {
            gemm(r, n, m, 1.0, Operand::n(h.as_slice(), m), Operand::n(self.dict(), n), 0.0, &mut out, n, th);
            Ok(())
        })?;
        Matrix::from_vec(r, n, out)
    }

    /// D f(x): the reconstruction from the fast encoder's codes.
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        self.decode(&self.encode(x)?)
    }

    /// E(x, h) of each row.
    pub fn energy(&self, x: &Matrix, h: &Matrix) -> Result<Vec<f64>> {
        x.check_width(self.spec.input_dim, "input", "the PSD model")?;
        h.check_width(self.spec.code_dim, "codes", "the PSD model")?;
        if x.rows() != h.rows() {
            return Err(shape!("{} input rows and {} code rows", x.rows(), h.rows()));
        }
        let f = self.encode(x)?;
        let rec = self.decode(h)?;
        let (lambda, alpha) = (self.spec.lambda as f64, self.spec.alpha as f64);
        Ok((0..x.rows())
            .map(|i| {
                let e: f64 = x.row(i).iter().zip(rec.row(i)).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
                let l1: f64 = h.row(i).iter().map(|&v| (v as f64).abs()).sum();
                let p: f64 = h.row(i).iter().zip(f.row(i)).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
                e + lambda * l1 + alpha * p
            })
            .collect())
    }

    /// The gradient in h of the energy's smooth part, 2 (h D - x) Dᵀ + 2 α (h - f(x)), per row:
    /// at the optimum h*, entry k is -λ sign(h*_k) where h*_k ≠ 0 and lies in [-λ, λ] where
    /// h*_k = 0 (the L1 problem's optimality conditions).
    pub fn code_gradient(&self, x: &Matrix, h: &Matrix) -> Result<Matrix> {
        h.check_width(self.spec.code_dim, "codes", "the PSD model")?;
        if x.rows() != h.rows() {
            return Err(shape!("{} input rows and {} code rows", x.rows(), h.rows()));
        }
        let f = self.encode(x)?;
        let (r, n, m) = (x.rows(), self.spec.input_dim, self.spec.code_dim);
        let mut resid = try_zeros(checked_len(r, n)?)?;
        let mut grad = try_zeros(r * m)?;
        self.code_grad_into(x.as_slice(), f.as_slice(), h.as_slice(), r, &mut resid, &mut grad, 1);
        Matrix::from_vec(r, m, grad)
    }

    /// One ISTA step on codes `h` (rows x code_dim) of rows `x` with step `step` (1 / L for
    /// [`Psd::lipschitz`]'s L guarantees a decrease of the energy); returns the largest change.
    pub fn ista_step(&self, x: &Matrix, h: &mut Matrix, step: f32) -> Result<f32> {
        x.check_width(self.spec.input_dim, "input", "the PSD model")?;
        h.check_width(self.spec.code_dim, "codes", "the PSD model")?;
        if x.rows() != h.rows() {
            return Err(shape!("{} input rows and {} code rows", x.rows(), h.rows()));
        }
        if !(step.is_finite() && step > 0.0) {
            return Err(invalid!("step {step} must be positive and finite"));
        }
        let f = self.encode(x)?;
        let (r, n, m) = (x.rows(), self.spec.input_dim, self.spec.code_dim);
        let mut resid = try_zeros(checked_len(r, n)?)?;
        let mut grad = try_zeros(r * m)?;
        Ok(self.ista_step_into(x.as_slice(), f.as_slice(), h.as_mut_slice(), r, step, &mut resid, &mut grad, 1))
    }

    /// The parameter step's objective with the codes h fixed, the mean over rows of
    /// ||x - D h||² + α ||h - f(x)||² (the L1 term does not depend on the parameters), and its
    /// gradient in the parameters (the layout of [`Psd::params`]).
    pub fn parameter_gradient(&self, x: &Matrix, h: &Matrix) -> Result<(f64, Vec<f32>)> {
        x.check_width(self.spec.input_dim, "input", "the PSD model")?;
        h.check_width(self.spec.code_dim, "codes", "the PSD model")?;
        if x.rows() != h.rows() || x.rows() == 0 {
            return Err(shape!("{} input rows and {} code rows (at least one needed)", x.rows(), h.rows()));
        }
        let (r, n, m) = (x.rows(), self.spec.input_dim, self.spec.code_dim);
        let mut t = try_zeros(checked_len(r, m)?)?;
        let mut f = try_zeros(r * m)?;
        let mut resid = try_zeros(checked_len(r, n)?)?;
        let mut dz = try_zeros(r * m)?;
        let mut grads = try_zeros(self.params.len())?;
        self.encode_into(x.as_slice(), r, &mut t, &mut f, 1);
        self.residual_into(x.as_slice(), h.as_slice(), r, &mut resid, 1);
        let loss = self.objective_of(&resid, h.as_slice(), &f, r);
        self.param_grads_into(x.as_slice(), &t, &f, h.as_slice(), &resid, r, &mut dz, &mut grads, 1);
        Ok((loss, grads))
    }

    /// Mean over r rows of ||resid||² + α ||h - f||².
    fn objective_of(&self, resid: &[f32], h: &[f32], f: &[f32], r: usize) -> f64 {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        let e: f64 = resid[..r * n].iter().map(|&v| (v as f64) * (v as f64)).sum();
        let p: f64 = h[..r * m].iter().zip(&f[..r * m]).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
        (e + self.spec.alpha as f64 * p) / r as f64
    }

    /// The gradient of the mean over r rows of ||h D - x||² + α ||h - g ⊙ tanh(x W_e + b_e)||²:
    /// dD = (2/r) hᵀ resid; with df = (2α/r)(f - h): dg = Σ_rows df ⊙ t,
    /// dz = df ⊙ g ⊙ (1 - t²), dW_e = xᵀ dz, db_e = Σ_rows dz (t = tanh(x W_e + b_e)).
    #[allow(clippy::too_many_arguments)]
    fn param_grads_into(
        &self,
        x: &[f32],
        t: &[f32],
        f: &[f32],
        h: &[f32],
        resid: &[f32],
        r: usize,
        dz: &mut [f32],
        grads: &mut [f32],
        threads: usize,
    ) {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        let [dr, wr, br, gr] = self.layout();
        let scale = 2.0 / r as f32;
        gemm(
            m,
            n,
            r,
            scale,
            Operand::t(&h[..r * m], m),
            Operand::n(&resid[..r * n], n),
            0.0,
            &mut grads[dr],
            n,
            threads,
        );
        let g = &self.params[gr.clone()];
        let sa = scale * self.spec.alpha;
        let mut dg = vec![0f64; m];
        let mut db = vec![0f64; m];
        for row in 0..r {
            for k in 0..m {
                let i = row * m + k;
                let df = sa * (f[i] - h[i]);
                dg[k] += (df * t[i]) as f64;
                let d = df * g[k] * (1.0 - t[i] * t[i]);
                dz[i] = d;
                db[k] += d as f64;
            }
        }
        gemm(n, m, r, 1.0, Operand::t(&x[..r * n], n), Operand::n(&dz[..r * m], m), 0.0, &mut grads[wr], m, threads);
        grads[br].iter_mut().zip(&db).for_each(|(o, &v)| *o = v as f32);
        grads[gr].iter_mut().zip(&dg).for_each(|(o, &v)| *o = v as f32);
    }

    // -- training -----------------------------------------------------------------------------

    /// Trains on the rows of `x` by the alternating algorithm (module docs): per minibatch,
    /// ISTA from f(x) to h*, then one optimizer step on the parameters and the atoms scaled
    /// back to unit norm. Returns one record per epoch. A failure (bad configuration, or a step
    /// that made a parameter non-finite: [`Error::Diverged`]) leaves the model as it was.
    pub fn fit(&mut self, x: &Matrix, config: &PsdConfig) -> Result<Vec<PsdEpoch>> {
        config.validate()?;
        x.check_width(self.spec.input_dim, "the training data", "the PSD model")?;
        if x.rows() == 0 {
            return Err(invalid!("the training data has no rows"));
        }
        let threads = crate::pool::check_threads(config.threads)?;
        let saved = self.params.clone();
        let r = on_pool(threads, |th| self.fit_on(x, config, th));
        if r.is_err() {
            self.params = saved;
        }
        r
    }

    fn fit_on(&mut self, x: &Matrix, config: &PsdConfig, threads: usize) -> Result<Vec<PsdEpoch>> {
        let (n, m) = (self.spec.input_dim, self.spec.code_dim);
        let rows = x.rows();
        let bs = config.batch_size.min(rows);
        let [dr, wr, ..] = self.layout();
        let mut opt = Optimizer::new(config.optimizer, self.params.len(), &[dr, wr])?;
        let mut order: Vec<usize> = (0..rows).collect();
        let mut rng = Rng::new(config.seed, stream::SHUFFLE);
        let mut xb = try_zeros(checked_len(bs, n)?)?;
        let mut t = try_zeros(checked_len(bs, m)?)?;
        let mut f = try_zeros(bs * m)?;
        let mut h = try_zeros(bs * m)?;
        let mut resid = try_zeros(bs * n)?;
        let mut grad = try_zeros(bs * m)?;
        let mut dz = try_zeros(bs * m)?;
        let mut grads = try_zeros(self.params.len())?;
        let mut gram = try_zeros(checked_len(m, m)?)?;
        let mut v = try_zeros::<f64>(m)?;
        let (lambda, alpha) = (self.spec.lambda as f64, self.spec.alpha as f64);
        let mut history = Vec::with_capacity(config.epochs);
        for epoch in 0..config.epochs {
            let start = Instant::now();
            rng.shuffle(&mut order);
            let mut rec = PsdEpoch::default();
            let mut batches = 0usize;
            for chunk in order.chunks(bs) {
                let r = chunk.len();
                for (dst, &i) in xb.chunks_exact_mut(n).zip(chunk) {
                    dst.copy_from_slice(x.row(i));
                }
                // (a) the codes, parameters fixed.
                self.encode_into(&xb, r, &mut t, &mut f, threads);
                let step = 1.0 / self.lipschitz_with(&mut gram, &mut v);
                h[..r * m].copy_from_slice(&f[..r * m]);
                let its = self.ista_into(&xb, &f, &mut h, r, step, &config.coding, &mut resid, &mut grad, threads);
                self.residual_into(&xb, &h, r, &mut resid, threads);
                let e: f64 = resid[..r * n].iter().map(|&v| (v as f64) * (v as f64)).sum();
                let p: f64 = h[..r * m].iter().zip(&f[..r * m]).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
                let l1: f64 = h[..r * m].iter().map(|&v| (v as f64).abs()).sum();
                rec.reconstruction += e;
                rec.prediction += p;
                rec.l1 += l1;
                rec.energy += e + lambda * l1 + alpha * p;
                rec.zero_fraction += h[..r * m].iter().filter(|&&v| v == 0.0).count() as f64;
                rec.iterations += its as f64;
                batches += 1;
                // (b) one step on the parameters, codes fixed; atoms back to unit norm.
                self.param_grads_into(&xb, &t, &f, &h, &resid, r, &mut dz, &mut grads, threads);
                opt.step(&mut self.params, &grads, config.learning_rate, threads);
                self.normalize_atoms();
                if let Some(i) = crate::tensor::first_non_finite(&self.params) {
                    return Err(Error::Diverged(format!(
                        "parameter {i} became {} in epoch {}: lower the learning rate",
                        self.params[i],
                        epoch + 1
                    )));
                }
            }
            let rows_f = rows as f64;
            rec.energy /= rows_f;
            rec.reconstruction /= rows_f;
            rec.prediction /= rows_f;
            rec.l1 /= rows_f;
            rec.zero_fraction /= rows_f * m as f64;
            rec.iterations /= batches as f64;
            rec.seconds = start.elapsed().as_secs_f64();
            history.push(rec);
        }
        Ok(history)
    }
}
