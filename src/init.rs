//! Weight initialisation schemes.

#![forbid(unsafe_code)]

use crate::activation::Activation;
use crate::error::{Result, invalid};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// He for the ReLU family; Glorot for the others, with the range times 4 for sigmoid
    /// layers (Glorot & Bengio 2010: sigmoid's slope at 0 is 1/4 of tanh's). That factor is what
    /// lets a deep sigmoid autoencoder train from a random start (tests/training.rs).
    Auto,
    /// Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
    Glorot,
    /// He/Kaiming normal: N(0, 2 / fan_in).
    He,
    /// U(-0.01, 0.01), as in early autoencoder papers; functional-transfer layers get the
    /// author's U(-0.1, 0.1) ranges (`Family::init_range`) instead of the variance-preserving
    /// ones, and no centring of their biases at the first fit.
    SmallUniform,
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases: PyTorch's nn.Linear default.
    FanInUniform,
}

impl Init {
    pub const ALL: [Init; 5] = [Init::Auto, Init::Glorot, Init::He, Init::SmallUniform, Init::FanInUniform];

    pub fn code(self) -> i32 {
        self as i32
    }
    pub fn from_code(c: i32) -> Result<Init> {
        usize::try_from(c)
            .ok()
            .and_then(|i| Init::ALL.get(i).copied())
            .ok_or_else(|| invalid!("init code {c} is out of range (0 to 4)"))
    }
    pub fn name(self) -> &'static str {
        match self {
            Init::Auto => "auto",
            Init::Glorot => "glorot_uniform",
            Init::He => "he_normal",
            Init::SmallUniform => "small_uniform",
            Init::FanInUniform => "fan_in_uniform",
        }
    }

    /// The scheme used for a layer with this activation, and the factor on its range.
    fn resolve(self, act: Activation) -> (Init, f32) {
        match self {
            Init::Auto => match act {
                Activation::Relu | Activation::LeakyRelu | Activation::Elu | Activation::Gelu => (Init::He, 1.0),
                Activation::Sigmoid => (Init::Glorot, 4.0),
                _ => (Init::Glorot, 1.0),
            },
            other => (other, 1.0),
        }
    }

    /// The variance σ² this scheme gives a dense weight of a layer with this activation and
    /// these fans (Glorot: gain²·2/(fan_in + fan_out); He: 2/fan_in; FanInUniform: 1/(3 fan_in)),
    /// or None for `SmallUniform`. Functional-transfer layers give the slope ∂f/∂x of each
    /// connection this variance ([`crate::layer::Functional::init`]).
    pub fn slope_variance(self, act: Activation, fan_in: usize, fan_out: usize) -> Option<f32> {
        let (scheme, gain) = self.resolve(act);
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        match scheme {
            Init::Glorot => Some(gain * gain * 2.0 / (fi + fo)),
            Init::He => Some(2.0 / fi),
            Init::FanInUniform => Some(1.0 / (3.0 * fi)),
            Init::SmallUniform | Init::Auto => None,
        }
    }

    /// Fills a fan_in x fan_out weight block and its bias.
    pub fn fill(
        self,
        act: Activation,
        fan_in: usize,
        fan_out: usize,
        w: &mut [f32],
        b: Option<&mut [f32]>,
        rng: &mut Rng,
    ) {
        let uniform =
            |a: f32, v: &mut [f32], rng: &mut Rng| v.iter_mut().for_each(|x| *x = a * (2.0 * rng.uniform() - 1.0));
        let (scheme, gain) = self.resolve(act);
        match scheme {
            Init::Glorot => uniform(gain * (6.0 / (fan_in + fan_out) as f32).sqrt(), w, rng),
            Init::He => {
                let s = (2.0 / fan_in as f32).sqrt();
                w.iter_mut().for_each(|x| *x = s * rng.normal());
            }
            Init::SmallUniform => uniform(0.01, w, rng),
            Init::FanInUniform => {
                let a = 1.0 / (fan_in as f32).sqrt();
                uniform(a, w, rng);
                if let Some(b) = b {
                    uniform(a, b, rng);
                    return;
                }
            }
            Init::Auto => unreachable!(),
        }
        if let Some(b) = b {
            b.fill(0.0);
        }
    }
}
