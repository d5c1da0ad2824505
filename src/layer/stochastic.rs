//! Stochastic units: a hidden layer whose output is sampled in training (and, when the network's
//! switch is on, in inference) instead of passed on as its mean.
//!
//! Binary stochastic units pass h ~ Bernoulli(sigmoid(z)) on; the backward pass uses the
//! straight-through estimator (Bengio, Leonard & Courville 2013, "sigmoid-adjusted"): the sample
//! is treated as its probability, dh/dz := sigmoid'(z). Gaussian noise units pass on
//! f(z) + N(0, sigma^2), whose derivative in z is f'(z) exactly.

use crate::activation::Activation;
use crate::error::{Result, invalid};
use crate::rng::Philox;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Stochastic {
    /// The layer passes on its activation (deterministic).
    #[default]
    None,
    /// Bernoulli samples of a sigmoid layer's output, straight-through gradient.
    Bernoulli,
    /// Additive Gaussian noise of this standard deviation on the layer's output.
    Gaussian { sigma: f32 },
}

impl Stochastic {
    pub fn code(self) -> i32 {
        match self {
            Stochastic::None => 0,
            Stochastic::Bernoulli => 1,
            Stochastic::Gaussian { .. } => 2,
        }
    }

    /// From a `LATENT_STOCHASTIC_*` code and the sigma of Gaussian noise (ignored otherwise).
    pub fn from_code(code: i32, sigma: f32) -> Result<Stochastic> {
        match code {
            0 => Ok(Stochastic::None),
            1 => Ok(Stochastic::Bernoulli),
            2 => Ok(Stochastic::Gaussian { sigma }),
            _ => Err(invalid!("stochastic unit code {code} is out of range (0 to 2)")),
        }
    }

    pub fn sigma(self) -> f32 {
        match self {
            Stochastic::Gaussian { sigma } => sigma,
            _ => 0.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stochastic::None => "deterministic",
            Stochastic::Bernoulli => "bernoulli",
            Stochastic::Gaussian { .. } => "gaussian noise",
        }
    }

    pub fn is_none(self) -> bool {
        self == Stochastic::None
    }

    /// Checks the units against the layer's activation.
    pub fn validate(self, act: Activation, what: &str) -> Result<()> {
        match self {
            Stochastic::None => Ok(()),
            Stochastic::Bernoulli if act != Activation::Sigmoid => Err(invalid!(
                "{what}: binary stochastic units sample sigmoid probabilities, the layer is {}",
                act.name()
            )),
            Stochastic::Bernoulli => Ok(()),
            Stochastic::Gaussian { sigma } if !(sigma.is_finite() && sigma >= 0.0) => {
                Err(invalid!("{what}: Gaussian noise sigma {sigma} must be finite and >= 0"))
            }
            Stochastic::Gaussian { .. } => Ok(()),
        }
    }

    /// Writes a sample of the units given their means `y`: element k draws element first + k
    /// of `draws` (the device kernel's keying).
    pub fn sample(self, y: &[f32], out: &mut [f32], draws: Philox, first: u64) {
        match self {
            Stochastic::None => out.copy_from_slice(y),
            Stochastic::Bernoulli => draws.for_uniforms(first, y.len(), |at, u| {
                for ((o, &p), &u) in out[at..].iter_mut().zip(&y[at..]).zip(u) {
                    *o = if u < p { 1.0 } else { 0.0 };
                }
            }),
            Stochastic::Gaussian { sigma } => draws.for_normals(first, y.len(), |at, e| {
                for ((o, &m), &e) in out[at..].iter_mut().zip(&y[at..]).zip(e) {
                    *o = m + sigma * e;
                }
            }),
        }
    }
}
