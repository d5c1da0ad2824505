//! Reconstruction distributions p(x|z) of a variational autoencoder: DL4J's
//! `ReconstructionDistribution` family, plus a Gaussian with one learned variance.
//!
//! A [`Reconstruction`] is a list of parts, each over consecutive data columns (DL4J's
//! `CompositeReconstructionDistribution`; a single distribution is a list of one). The decoder's
//! last layer is linear and writes the *pre-output*: the parameters of every part side by side,
//! in part order. Each part gives the negative log-likelihood of a row, its gradient in the
//! pre-output, its mean and a random draw. Likelihoods of continuous parts are densities, so a
//! "log-probability" may be positive (DL4J issue #4468).

// The SIMD dispatch of `simd::multiversion!` is the one exception (allowed where it expands).
#![deny(unsafe_code)]

use crate::activation::{Activation, exp_fast, sigmoid, two_atanh_small};
use crate::error::{Result, invalid};
use crate::rng::Rng;

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistKind {
    /// Bernoulli, p = sigmoid(pre); the NLL comes from the logits, softplus(pre) - x pre, so it
    /// is finite for every pre and target (DL4J divides by p(1-p) and zeroes infinities).
    Bernoulli,
    /// Gaussian with a mean and a log-variance per column, both from the decoder: two parameters
    /// per column in block layout [means | log-variances] within the part, the part's activation
    /// applied to both halves (DL4J's layout and semantics).
    Gaussian,
    /// Gaussian with its mean from the decoder and one learned log-variance shared by the
    /// part's columns (a parameter of the network, not an output).
    GaussianGlobal,
    /// Exponential with log-rate gamma = act(pre), rate lambda = exp(gamma): NLL = lambda x - gamma.
    Exponential,
    /// A loss in place of a likelihood (DL4J's `LossFunctionWrapper` with `LossMSE`): the mean
    /// over the part's columns of (act(pre) - x)^2. Has no probability.
    Mse,
}

impl DistKind {
    pub fn code(self) -> i32 {
        match self {
            DistKind::Bernoulli => 0,
            DistKind::Gaussian => 1,
            DistKind::Exponential => 2,
            DistKind::Mse => 3,
            DistKind::GaussianGlobal => 4,
        }
    }
    pub fn from_code(c: i32) -> Result<DistKind> {
        Ok(match c {
            0 => DistKind::Bernoulli,
            1 => DistKind::Gaussian,
            2 => DistKind::Exponential,
            3 => DistKind::Mse,
            4 => DistKind::GaussianGlobal,
            _ => return Err(invalid!("reconstruction distribution code {c} is out of range (0 to 4)")),
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            DistKind::Bernoulli => "bernoulli",
            DistKind::Gaussian => "gaussian",
            DistKind::GaussianGlobal => "gaussian (global variance)",
            DistKind::Exponential => "exponential",
            DistKind::Mse => "mse loss",
        }
    }
    /// Decoder outputs per data column.
    fn params_per_column(self) -> usize {
        if self == DistKind::Gaussian { 2 } else { 1 }
    }
}

/// One distribution over `size` consecutive data columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part {
    pub size: usize,
    pub kind: DistKind,
    /// Applied to the pre-output (ignored by Bernoulli, which is always sigmoid).
    pub activation: Activation,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reconstruction {
    pub parts: Vec<Part>,
}

/// sum softplus(a) - x a over a Bernoulli part, with s (sigmoid(a) - x) into d. The hot loop of a
/// Bernoulli VAE step: 16 f32 lane sums (a single running sum is a serial dependency the compiler
/// may not reorder, so it would not vectorise), one exp per element shared by softplus and
/// sigmoid, f64 across lanes.
#[inline(always)]
fn bernoulli_nll(pre: &[f32], x: &[f32], grad: Option<(&mut [f32], f32)>) -> f64 {
    const LANES: usize = 16;
    #[inline(always)]
    fn terms(a: f32, t: f32) -> (f32, f32) {
        let e = exp_fast(-a.abs()); // e^-|a| in (0, 1]
        // One division for both: r = 1/(1+e) and s = e/(2+e), the argument of
        // ln(1+e) = 2 atanh(s) (ln_1p_unit's series).
        let q = 1.0 / ((1.0 + e) * (2.0 + e));
        let r = (2.0 + e) * q;
        let s = e * (1.0 + e) * q;
        let sig = if a >= 0.0 { r } else { e * r };
        (a.max(0.0) + two_atanh_small(s) - t * a, sig - t)
    }
    let n = pre.len();
    let x = &x[..n];
    let main = n / LANES * LANES;
    let mut acc = [0f32; LANES];
    let mut tail = 0f64;
    match grad {
        Some((d, s)) => {
            let d = &mut d[..n];
            for ((a, t), g) in pre[..main]
                .chunks_exact(LANES)
                .zip(x[..main].chunks_exact(LANES))
                .zip(d[..main].chunks_exact_mut(LANES))
            {
                for k in 0..LANES {
                    let (l, gk) = terms(a[k], t[k]);
                    acc[k] += l;
                    g[k] = s * gk;
                }
            }
            for i in main..n {
                let (l, gk) = terms(pre[i], x[i]);
                tail += l as f64;
                d[i] = s * gk;
            }
        }
        None => {
            for (a, t) in pre[..main].chunks_exact(LANES).zip(x[..main].chunks_exact(LANES)) {
                for k in 0..LANES {
                    acc[k] += terms(a[k], t[k]).0;
                }
            }
            for i in main..n {
                tail += terms(pre[i], x[i]).0 as f64;
            }
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

crate::simd::multiversion!(fn bernoulli_nll_wide(pre: &[f32], x: &[f32], grad: Option<(&mut [f32], f32)>) -> f64 => bernoulli_nll);

impl Reconstruction {
    pub fn single(kind: DistKind, activation: Activation, size: usize) -> Reconstruction {
        Reconstruction { parts: vec![Part { size, kind, activation }] }
    }
    pub fn bernoulli(size: usize) -> Reconstruction {
        Reconstruction::single(DistKind::Bernoulli, Activation::Sigmoid, size)
    }

    /// Data columns covered.
    pub fn data_width(&self) -> usize {
        self.parts.iter().map(|p| p.size).sum()
    }
    /// Width of the decoder's pre-output.
    pub fn param_width(&self) -> usize {
        self.parts.iter().map(|p| p.size * p.kind.params_per_column()).sum()
    }
    /// Learned parameters outside the decoder (one log-variance per global-variance part).
    pub fn extra_params(&self) -> usize {
        self.parts.iter().filter(|p| p.kind == DistKind::GaussianGlobal).count()
    }
    /// Whether it is a likelihood (no loss-function part), so that probabilities exist.
    pub fn is_probabilistic(&self) -> bool {
        self.parts.iter().all(|p| p.kind != DistKind::Mse)
    }

    pub fn validate(&self, input_dim: usize) -> Result<()> {
        if self.parts.is_empty() {
            return Err(invalid!("the reconstruction distribution has no parts"));
        }
        if let Some(p) = self.parts.iter().find(|p| p.size == 0) {
            return Err(invalid!("a {} part of the reconstruction distribution has no columns", p.kind.name()));
        }
        let total = self.parts.iter().try_fold(0usize, |a, p| a.checked_add(p.size));
        if total != Some(input_dim) {
            return Err(invalid!(
                "the reconstruction distribution's parts cover {} columns, the data has {input_dim}",
                total.map_or("too many".to_string(), |t| t.to_string())
            ));
        }
        if let Some(p) =
            self.parts.iter().find(|p| p.kind == DistKind::Bernoulli && p.activation != Activation::Sigmoid)
        {
            return Err(invalid!(
                "a Bernoulli part needs the sigmoid activation (it is computed from logits), not {}",
                p.activation.name()
            ));
        }
        Ok(())
    }

    /// Parts with their data-column, parameter-column and extra-parameter offsets.
    fn layout(&self) -> impl Iterator<Item = (&Part, usize, usize, usize)> {
        let (mut c, mut p, mut e) = (0, 0, 0);
        self.parts.iter().map(move |part| {
            let at = (part, c, p, e);
            c += part.size;
            p += part.size * part.kind.params_per_column();
            e += (part.kind == DistKind::GaussianGlobal) as usize;
            at
        })
    }

    /// Negative log-likelihood of one row x given the decoder pre-output `pre` (and the extra
    /// parameters). With `grad = (dpre, dextra, scale)`, also writes `scale` times its gradient
    /// in `pre` into dpre and adds `scale` times its gradient in the extra parameters to dextra.
    pub fn nll_row(
        &self,
        x: &[f32],
        pre: &[f32],
        extra: &[f32],
        mut grad: Option<(&mut [f32], &mut [f64], f32)>,
    ) -> f64 {
        let mut total = 0f64;
        for (part, c, p, e) in self.layout() {
            let n = part.size;
            let x = &x[c..c + n];
            let act = part.activation;
            match part.kind {
                DistKind::Bernoulli => {
                    let g = grad.as_mut().map(|(d, _, s)| (&mut d[p..p + n], *s));
                    total += bernoulli_nll_wide(&pre[p..p + n], x, g);
                }
                DistKind::Gaussian => {
                    for j in 0..n {
                        let (pm, pl) = (pre[p + j], pre[p + n + j]);
                        let (m, lv) = (act.apply(pm), act.apply(pl));
                        let inv = (-lv as f64).exp();
                        let r = x[j] as f64 - m as f64;
                        total += HALF_LN_2PI + 0.5 * lv as f64 + 0.5 * r * r * inv;
                        if let Some((d, _, s)) = grad.as_mut() {
                            d[p + j] = *s * (-r * inv) as f32 * act.derivative(pm, m);
                            d[p + n + j] = *s * (0.5 - 0.5 * r * r * inv) as f32 * act.derivative(pl, lv);
                        }
                    }
                }
                DistKind::GaussianGlobal => {
                    let lv = extra[e] as f64;
                    let inv = (-lv).exp();
                    let mut dlv = 0f64;
                    for j in 0..n {
                        let pm = pre[p + j];
                        let m = act.apply(pm);
                        let r = x[j] as f64 - m as f64;
                        total += HALF_LN_2PI + 0.5 * lv + 0.5 * r * r * inv;
                        dlv += 0.5 - 0.5 * r * r * inv;
                        if let Some((d, _, s)) = grad.as_mut() {
                            d[p + j] = *s * (-r * inv) as f32 * act.derivative(pm, m);
                        }
                    }
                    if let Some((_, de, s)) = grad.as_mut() {
                        de[e] += *s as f64 * dlv;
                    }
                }
                DistKind::Exponential => {
                    for j in 0..n {
                        let a = pre[p + j];
                        let gamma = act.apply(a);
                        let lambda = (gamma as f64).exp();
                        total += lambda * x[j] as f64 - gamma as f64;
                        if let Some((d, _, s)) = grad.as_mut() {
                            d[p + j] = *s * (lambda * x[j] as f64 - 1.0) as f32 * act.derivative(a, gamma);
                        }
                    }
                }
                DistKind::Mse => {
                    let inv_n = 1.0 / n as f64;
                    for j in 0..n {
                        let a = pre[p + j];
                        let y = act.apply(a);
                        let r = y as f64 - x[j] as f64;
                        total += r * r * inv_n;
                        if let Some((d, _, s)) = grad.as_mut() {
                            d[p + j] = *s * (2.0 * r * inv_n) as f32 * act.derivative(a, y);
                        }
                    }
                }
            }
        }
        total
    }

    /// The distribution's mean given the pre-output (DL4J's `generateAtMean`): p for Bernoulli,
    /// the mean for Gaussians, 1/lambda for the exponential, act(pre) for a loss.
    pub fn mean_row(&self, pre: &[f32], out: &mut [f32]) {
        for (part, c, p, _) in self.layout() {
            let out = &mut out[c..c + part.size];
            let pre = &pre[p..p + part.size];
            for (o, &a) in out.iter_mut().zip(pre) {
                let v = part.activation.apply(a);
                *o = match part.kind {
                    DistKind::Exponential => (-v).exp(),
                    _ => v,
                };
            }
        }
    }

    /// A draw from the distribution (DL4J's `generateRandom`); a loss part gives its mean.
    pub fn sample_row(&self, pre: &[f32], extra: &[f32], rng: &mut Rng, out: &mut [f32]) {
        for (part, c, p, e) in self.layout() {
            let n = part.size;
            let act = part.activation;
            for j in 0..n {
                let a = pre[p + j];
                out[c + j] = match part.kind {
                    DistKind::Bernoulli => (rng.uniform() < sigmoid(a)) as u8 as f32,
                    DistKind::Gaussian => act.apply(a) + (0.5 * act.apply(pre[p + n + j])).exp() * rng.normal(),
                    DistKind::GaussianGlobal => act.apply(a) + (0.5 * extra[e]).exp() * rng.normal(),
                    DistKind::Exponential => {
                        let u = 1.0 - rng.uniform_f64(); // (0, 1]
                        (-u.ln() / (act.apply(a) as f64).exp()) as f32
                    }
                    DistKind::Mse => act.apply(a),
                };
            }
        }
    }

    pub fn describe(&self) -> String {
        let one = |p: &Part| match p.kind {
            DistKind::Bernoulli => "bernoulli".to_string(),
            k => format!("{} ({})", k.name(), p.activation.name()),
        };
        if self.parts.len() == 1 {
            one(&self.parts[0])
        } else {
            let v: Vec<String> = self.parts.iter().map(|p| format!("{} x {}", p.size, one(p))).collect();
            format!("composite [{}]", v.join(", "))
        }
    }
}
