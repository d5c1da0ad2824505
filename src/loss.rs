//! Reconstruction losses, fused with the output activation's derivative: DL4J's
//! `LossFunctions` that make sense for reconstruction.
//!
//! Each loss has a per-row score R (DL4J's `computeScoreArray`); the reported loss is the mean
//! of R over rows. MSE, binary cross-entropy, MAE and MSLE average their elements over the
//! row's columns (so the reported loss is the mean over every element, PyTorch's
//! `reduction="mean"`); L1, L2, Poisson, KL divergence and multi-class cross-entropy sum them
//! (DL4J's `LossL1`, `LossL2`, ..., whose score is a sum over the outputs); cosine proximity is
//! a function of the whole row.
//!
//! Binary cross-entropy is only offered with a sigmoid output, and is then computed from the
//! logits z: BCE(sigmoid(z), t) = softplus(z) - t z, whose gradient in z is sigmoid(z) - t (no
//! log of 0). KL divergence and multi-class cross-entropy take the softmax of the output layer's
//! values, so they need an identity output (logits, as a classifier's): log softmax is computed
//! as a - logsumexp(a), so no log of 0 either; the network's prediction is then the softmax.
//!
//! Sums over a batch: `forward_backward` returns sum_rows R * cols (for the mean losses, the
//! sum of the element losses), so that dividing by rows * cols gives the mean of R, and writes
//! dL/dz of L = that sum / count.

// The SIMD dispatch of `simd::multiversion!` is the one exception (allowed where it expands).
#![deny(unsafe_code)]

use crate::activation::{Activation, sigmoid, softplus, softplus_fast};
use crate::error::{Result, invalid};

/// Floor of the norms in cosine proximity (DL4J's `Nd4j.EPS_THRESHOLD`): a zero row scores 0.
pub const COSINE_EPS: f32 = 1e-5;
/// Floor of a logarithm's argument when a loss scores a bare prediction
/// ([`Loss::row_of_output`]): Keras' epsilon.
pub const OUTPUT_EPS: f64 = 1e-7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Mean squared error, mean over the columns (DL4J `MSE`).
    Mse,
    /// Binary cross-entropy from a sigmoid output's logits, mean over the columns (DL4J `XENT`).
    BinaryCrossEntropy,
    /// Mean absolute error |y - t|, mean over the columns (DL4J `MEAN_ABSOLUTE_ERROR`).
    Mae,
    /// Absolute error summed over the columns (DL4J `L1`).
    L1,
    /// Squared error summed over the columns (DL4J `L2`: MSE times the width).
    L2,
    /// Mean squared logarithmic error (ln(1 + y) - ln(1 + t))^2, mean over the columns (DL4J
    /// `MEAN_SQUARED_LOGARITHMIC_ERROR`): outputs and targets above -1.
    Msle,
    /// Poisson negative log-likelihood without the ln t! term, y - t ln y, summed over the
    /// columns (DL4J `POISSON`): positive outputs, targets >= 0.
    Poisson,
    /// Negative cosine similarity of the row and its reconstruction (DL4J `COSINE_PROXIMITY`):
    /// -y.t / (max(|y|, eps) max(|t|, eps)), in [-1, 1].
    CosineProximity,
    /// Kullback-Leibler divergence sum_j t_j ln(t_j / p_j) of the softmax p of the outputs from
    /// the targets, taken as a distribution over the columns (DL4J `KL_DIVERGENCE`); t ln t = 0
    /// at t = 0. Targets >= 0 (rows summing to 1 for a divergence).
    KlDivergence,
    /// Multi-class cross-entropy -sum_j t_j ln p_j, p the softmax of the outputs (DL4J `MCXENT`
    /// with a softmax output). Targets >= 0.
    Mcxent,
}

impl Loss {
    pub const ALL: [Loss; 10] = [
        Loss::Mse,
        Loss::BinaryCrossEntropy,
        Loss::Mae,
        Loss::L1,
        Loss::L2,
        Loss::Msle,
        Loss::Poisson,
        Loss::CosineProximity,
        Loss::KlDivergence,
        Loss::Mcxent,
    ];

    /// The `LATENT_LOSS_*` code.
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(c: i32) -> Result<Loss> {
        usize::try_from(c)
            .ok()
            .and_then(|i| Loss::ALL.get(i).copied())
            .ok_or_else(|| invalid!("loss code {c} is out of range (0 to {})", Loss::ALL.len() - 1))
    }

    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::BinaryCrossEntropy => "binary_cross_entropy",
            Loss::Mae => "mae",
            Loss::L1 => "l1",
            Loss::L2 => "l2",
            Loss::Msle => "msle",
            Loss::Poisson => "poisson",
            Loss::CosineProximity => "cosine_proximity",
            Loss::KlDivergence => "kl_divergence",
            Loss::Mcxent => "mcxent",
        }
    }

    /// Whether the row score sums the columns' terms (else it averages them, or, for cosine
    /// proximity, is one value of the row).
    pub fn sums_columns(self) -> bool {
        matches!(self, Loss::L1 | Loss::L2 | Loss::Poisson | Loss::KlDivergence | Loss::Mcxent)
    }

    /// Whether the loss reads the softmax of the outputs (then the output layer gives logits,
    /// and the network's prediction is their softmax).
    pub fn softmax_output(self) -> bool {
        matches!(self, Loss::KlDivergence | Loss::Mcxent)
    }

    /// Whether each element's term depends on that element only (else on the whole row: the
    /// device backend computes those one row per thread).
    pub fn is_elementwise(self) -> bool {
        !matches!(self, Loss::CosineProximity | Loss::KlDivergence | Loss::Mcxent)
    }

    /// The output activations this loss accepts, for messages.
    fn outputs_accepted(self) -> Option<&'static [Activation]> {
        match self {
            Loss::BinaryCrossEntropy => Some(&[Activation::Sigmoid]),
            Loss::Msle => Some(&[Activation::Sigmoid, Activation::Softplus, Activation::Relu]),
            Loss::Poisson => Some(&[Activation::Sigmoid, Activation::Softplus]),
            Loss::KlDivergence | Loss::Mcxent => Some(&[Activation::Identity]),
            _ => None,
        }
    }

    /// Whether this loss can follow an output activation.
    pub fn check_output(self, act: Activation) -> Result<()> {
        let Some(ok) = self.outputs_accepted() else { return Ok(()) };
        if ok.contains(&act) {
            return Ok(());
        }
        let why = match self {
            Loss::BinaryCrossEntropy => "binary cross-entropy needs a sigmoid output (it is computed from the logits)",
            Loss::Msle => {
                "msle takes ln(1 + y), so it needs an output above -1 that never reaches it: sigmoid, softplus or relu"
            }
            Loss::Poisson => "poisson takes ln y of a rate, so it needs a positive output: sigmoid or softplus",
            _ => {
                "kl_divergence and mcxent take the softmax of the outputs, so the output layer gives logits: identity activation"
            }
        };
        Err(invalid!("{why}, not {}", act.name()))
    }

    /// Whether a target value lies where the loss is defined: MSLE above -1; Poisson, KL
    /// divergence and multi-class cross-entropy at or above 0; anything finite otherwise.
    pub fn accepts_target(self, v: f32) -> bool {
        match self {
            Loss::Msle => v > -1.0,
            Loss::Poisson | Loss::KlDivergence | Loss::Mcxent => v >= 0.0,
            _ => true,
        }
    }

    /// The error for a target outside the loss's domain, at row r, column c.
    pub fn target_error(self, what: &str, r: usize, c: usize, v: f32) -> crate::error::Error {
        let range = if self == Loss::Msle { "above -1" } else { ">= 0" };
        invalid!("{what}: row {r}, column {c} is {v}, outside the {} loss's domain (targets {range})", self.name())
    }

    /// Checks targets (rows of `cols` values) lie in the loss's domain ([`Loss::accepts_target`]):
    /// INVALID_ARGUMENT naming the first row and column outside.
    pub fn check_targets(self, t: &[f32], cols: usize, what: &str) -> Result<()> {
        match t.iter().position(|&v| !self.accepts_target(v)) {
            None => Ok(()),
            Some(i) => Err(self.target_error(what, i / cols.max(1), i % cols.max(1), t[i])),
        }
    }

    /// Per-row scores R of a block of rows (the anomaly score).
    pub fn row_means(self, act: Activation, z: &[f32], y: &[f32], t: &[f32], cols: usize, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate() {
            let s = r * cols;
            let (z, y, t) = (&z[s..s + cols], &y[s..s + cols], &t[s..s + cols]);
            *o = match self {
                Loss::Mse | Loss::BinaryCrossEntropy => {
                    (0..cols).map(|i| self.element(z[i], y[i], t[i])).sum::<f64>() / cols as f64
                }
                _ => self.row(act, z, y, t, None),
            };
        }
    }

    /// Loss of one element of MSE or binary cross-entropy: output y (with logit z when
    /// sigmoid), target t.
    #[inline]
    pub fn element(self, z: f32, y: f32, t: f32) -> f64 {
        match self {
            Loss::BinaryCrossEntropy => softplus_fast(z) as f64 - (t as f64) * (z as f64),
            _ => {
                let d = (y - t) as f64;
                d * d
            }
        }
    }

    /// (e, de/dz) of one element of an elementwise loss
    /// (the row score is the sum or the mean of e; binary cross-entropy from the logit z), through the output activation: pre-output z
    /// (with its bias), output y, target t. What the
    /// device kernel `lat_loss` computes, in f32.
    #[inline]
    pub fn element_grad(self, act: Activation, z: f32, y: f32, t: f32) -> (f32, f32) {
        match self {
            Loss::Mae | Loss::L1 => {
                let d = y - t;
                let s = if d > 0.0 {
                    1.0
                } else if d < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                (d.abs(), s * act.derivative(z, y))
            }
            Loss::Msle => {
                // d/dy (ln(1+y) - ln(1+t))^2 = 2 (ln(1+y) - ln(1+t)) / (1 + y)
                let r = y.ln_1p() - t.ln_1p();
                (r * r, 2.0 * r / (1.0 + y) * act.derivative(z, y))
            }
            Loss::Poisson => poisson(act, z, y, t),
            Loss::Mse | Loss::L2 => {
                let d = y - t;
                (d * d, 2.0 * d * act.derivative(z, y))
            }
            Loss::BinaryCrossEntropy => (softplus(z) - t * z, y - t),
            // Row losses have no element terms ([`Loss::row`] computes them).
            Loss::CosineProximity | Loss::KlDivergence | Loss::Mcxent => (0.0, 0.0),
        }
    }

    /// Score R of one row and, with `dz = Some((dz, scale))`, scale * dR/dz of every column (z
    /// and y as [`Loss::element_grad`] takes them; for the softmax losses y holds the logits).
    /// For every loss but MSE and binary cross-entropy (whose rows take the vectorised path).
    pub fn row(self, act: Activation, z: &[f32], y: &[f32], t: &[f32], dz: Option<(&mut [f32], f32)>) -> f64 {
        let n = y.len();
        match self {
            Loss::CosineProximity => cosine_row(act, z, y, t, dz),
            Loss::KlDivergence | Loss::Mcxent => softmax_row(self == Loss::KlDivergence, y, t, dz),
            _ => {
                let mut sum = 0f64;
                match dz {
                    Some((d, scale)) => {
                        // A mean loss's row is sum / n: its gradient carries the 1 / n.
                        let s = if self.sums_columns() { scale } else { scale / n as f32 };
                        for i in 0..n {
                            let (e, g) = self.element_grad(act, z[i], y[i], t[i]);
                            sum += e as f64;
                            d[i] = s * g;
                        }
                    }
                    None => {
                        for i in 0..n {
                            sum += self.element_grad(act, z[i], y[i], t[i]).0 as f64;
                        }
                    }
                }
                if self.sums_columns() { sum } else { sum / n as f64 }
            }
        }
    }

    /// Score R of a row whose prediction is `y` itself, with no activation or logits behind it
    /// (a VAE's reconstruction, the mean of p(x|z)): in f64, each logarithm's argument floored
    /// at [`OUTPUT_EPS`] (binary cross-entropy's 1 - y too, and MSLE's 1 + y), as Keras clips
    /// probabilities. The softmax losses take y as the probabilities (DL4J's `MCXENT` and
    /// `KL_DIVERGENCE` with an identity activation): -sum t ln y and sum t ln(t / y).
    pub fn row_of_output(self, y: &[f32], t: &[f32]) -> f64 {
        let n = y.len() as f64;
        let ln = |v: f64| v.max(OUTPUT_EPS).ln();
        let terms = |f: &dyn Fn(f64, f64) -> f64| y.iter().zip(t).map(|(&y, &t)| f(y as f64, t as f64)).sum::<f64>();
        match self {
            Loss::Mse => terms(&|y, t| (y - t) * (y - t)) / n,
            Loss::L2 => terms(&|y, t| (y - t) * (y - t)),
            Loss::Mae => terms(&|y, t| (y - t).abs()) / n,
            Loss::L1 => terms(&|y, t| (y - t).abs()),
            Loss::BinaryCrossEntropy => terms(&|y, t| -(t * ln(y) + (1.0 - t) * ln(1.0 - y))) / n,
            Loss::Msle => terms(&|y, t| (ln(1.0 + y) - t.ln_1p()).powi(2)) / n,
            Loss::Poisson => terms(&|y, t| y - t * ln(y)),
            Loss::CosineProximity => {
                let yf: Vec<f32> = y.to_vec();
                cosine_row(Activation::Identity, &yf, &yf, t, None)
            }
            Loss::KlDivergence => terms(&|y, t| if t > 0.0 { t * (t.ln() - ln(y)) } else { 0.0 }),
            Loss::Mcxent => terms(&|y, t| if t > 0.0 { -t * ln(y) } else { 0.0 }),
        }
    }

    /// sum_rows R * cols of a block of whole rows (for MSE and binary cross-entropy, the sum of
    /// the element losses), and dL/dz written into `dz` for L = that sum / `count`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_backward(
        self,
        act: Activation,
        z: &[f32],
        y: &[f32],
        t: &[f32],
        dz: &mut [f32],
        cols: usize,
        count: usize,
    ) -> f64 {
        match self {
            Loss::Mse | Loss::BinaryCrossEntropy => forward_backward_wide(self, act, z, y, t, dz, 1.0 / count as f32),
            _ => {
                // dL/dz = cols / count * dR/dz
                let scale = cols as f32 / count as f32;
                let rows = y.len() / cols.max(1);
                let mut sum = 0f64;
                for r in 0..rows {
                    let s = r * cols..(r + 1) * cols;
                    sum += self.row(act, &z[s.clone()], &y[s.clone()], &t[s.clone()], Some((&mut dz[s], scale)));
                }
                sum * cols as f64
            }
        }
    }

    #[inline(always)]
    fn forward_backward_impl(self, act: Activation, z: &[f32], y: &[f32], t: &[f32], dz: &mut [f32], inv: f32) -> f64 {
        match (self, act) {
            (Loss::Mse, Activation::Sigmoid) => lane_sums(z, y, t, dz, |_, y, t| {
                let d = y - t;
                (d * d, 2.0 * inv * d * y * (1.0 - y))
            }),
            (Loss::Mse, Activation::Identity) => lane_sums(z, y, t, dz, |_, y, t| {
                let d = y - t;
                (d * d, 2.0 * inv * d)
            }),
            (Loss::Mse, _) => lane_sums(z, y, t, dz, |z, y, t| {
                let d = y - t;
                (d * d, 2.0 * inv * d * act.derivative(z, y))
            }),
            (Loss::BinaryCrossEntropy, _) => {
                lane_sums(z, y, t, dz, |z, y, t| (softplus_fast(z) - t * z, (y - t) * inv))
            }
            // Only MSE and binary cross-entropy come here.
            _ => 0.0,
        }
    }
}

crate::simd::multiversion!(fn forward_backward_wide(loss: Loss, act: Activation, z: &[f32], y: &[f32], t: &[f32], dz: &mut [f32], inv: f32) -> f64 => Loss::forward_backward_impl);

/// ln y of a positive output y = act(z), from z where y may underflow: ln sigmoid(z) =
/// -softplus(-z); ln softplus(z) = z - e^z / 2 + O(e^2z) below z = -15.
#[inline]
fn ln_output(act: Activation, z: f32, y: f32) -> f32 {
    match act {
        Activation::Sigmoid => -softplus(-z),
        Activation::Softplus if z < -15.0 => z - 0.5 * z.exp(),
        _ => y.ln(),
    }
}

/// Poisson y - t ln y and its z-derivative (1 - t/y) f'(z), without dividing by a y that may
/// be 0: sigmoid: (y - t)(1 - y); softplus: sigmoid(z) - t sigmoid(z)/softplus(z), the ratio
/// 1 - e^z/2 below z = -15.
#[inline]
fn poisson(act: Activation, z: f32, y: f32, t: f32) -> (f32, f32) {
    let e = y - t * ln_output(act, z, y);
    let g = match act {
        Activation::Sigmoid => (y - t) * (1.0 - y),
        Activation::Softplus => {
            let s = sigmoid(z);
            let ratio = if z < -15.0 { 1.0 - 0.5 * z.exp() } else { s / y };
            s - t * ratio
        }
        _ => (1.0 - t / y) * act.derivative(z, y),
    };
    (e, g)
}

/// Cosine proximity of one row, R = -y.t / (a b) with a = max(|y|, eps), b = max(|t|, eps), in
/// f64. dR/dy = -(t / (a b) - (y.t) y / (a^3 b)) while |y| > eps (the floor is constant below),
/// then through the activation.
fn cosine_row(act: Activation, z: &[f32], y: &[f32], t: &[f32], dz: Option<(&mut [f32], f32)>) -> f64 {
    let (mut yy, mut tt, mut yt) = (0f64, 0f64, 0f64);
    for (&a, &b) in y.iter().zip(t) {
        let (a, b) = (a as f64, b as f64);
        yy += a * a;
        tt += b * b;
        yt += a * b;
    }
    let eps = COSINE_EPS as f64;
    let ny = yy.sqrt();
    let (a, b) = (ny.max(eps), tt.sqrt().max(eps));
    if let Some((d, scale)) = dz {
        let floored = ny <= eps;
        let s = scale as f64;
        for i in 0..y.len() {
            let g = t[i] as f64 / (a * b) - if floored { 0.0 } else { yt * y[i] as f64 / (a * a * a * b) };
            d[i] = (-s * g) as f32 * act.derivative(z[i], y[i]);
        }
    }
    -yt / (a * b)
}

/// KL divergence (`kl`) or cross-entropy of one row against p = softmax(logits), in f64:
/// ln p_j = a_j - lse(a) with lse taken from the row maximum. Both have dR/da_j = S p_j - t_j,
/// S = sum_j t_j.
fn softmax_row(kl: bool, logits: &[f32], t: &[f32], dz: Option<(&mut [f32], f32)>) -> f64 {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let s: f64 = logits.iter().map(|&a| (a as f64 - m).exp()).sum();
    let lse = m + s.ln();
    let mut r = 0f64;
    let mut total = 0f64;
    for (&a, &tj) in logits.iter().zip(t) {
        let tj = tj as f64;
        total += tj;
        if tj > 0.0 {
            r += tj * (lse - a as f64) + if kl { tj * tj.ln() } else { 0.0 };
        }
    }
    if let Some((d, scale)) = dz {
        let sc = scale as f64;
        for ((o, &a), &tj) in d.iter_mut().zip(logits).zip(t) {
            *o = (sc * (total * (a as f64 - lse).exp() - tj as f64)) as f32;
        }
    }
    r
}

/// Row-wise softmax of logits in place (what the softmax losses' network predicts).
pub fn softmax_rows(v: &mut [f32], cols: usize) {
    crate::task::softmax_rows(v, cols)
}

/// Sum of the first results of `f(z, y, t)` over aligned elements, the second written to `dz`:
/// 16 lane sums in f32 (one running sum is a serial dependency the compiler may not reorder, so
/// it would not vectorise), added up in f64 every 256 elements.
#[inline(always)]
fn lane_sums(z: &[f32], y: &[f32], t: &[f32], dz: &mut [f32], f: impl Fn(f32, f32, f32) -> (f32, f32)) -> f64 {
    const LANES: usize = 16;
    const RUN: usize = 256;
    let n = y.len();
    let (z, t, dz) = (&z[..n], &t[..n], &mut dz[..n]);
    let mut sum = 0f64;
    let mut at = 0;
    while at < n {
        let end = (at + RUN).min(n);
        let main = at + (end - at) / LANES * LANES;
        let mut acc = [0f32; LANES];
        for i in (at..main).step_by(LANES) {
            for k in 0..LANES {
                let (l, d) = f(z[i + k], y[i + k], t[i + k]);
                acc[k] += l;
                dz[i + k] = d;
            }
        }
        for i in main..end {
            let (l, d) = f(z[i], y[i], t[i]);
            sum += l as f64;
            dz[i] = d;
        }
        sum += acc.iter().map(|&v| v as f64).sum::<f64>();
        at = end;
    }
    sum
}
