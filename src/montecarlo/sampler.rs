//! Priors (where the first candidates come from) and proposals (the shape of the draws around
//! the current best), and the standard normal quantile.

use std::fmt;
use std::sync::Arc;

use crate::error::{Result, invalid};
use crate::rng::Rng;

/// The distribution of a parameter's initial candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Prior {
    Normal { mean: f64, sd: f64 },
    Uniform { low: f64, high: f64 },
}

impl Default for Prior {
    /// KernelML's default prior, U(-1, 1).
    fn default() -> Self {
        Prior::Uniform { low: -1.0, high: 1.0 }
    }
}

impl Prior {
    pub fn validate(&self, what: &str) -> Result<()> {
        match *self {
            Prior::Normal { mean, sd } => {
                if !(mean.is_finite() && sd.is_finite() && sd > 0.0) {
                    return Err(invalid!(
                        "{what}: the normal prior needs a finite mean and sd > 0, not N({mean}, {sd})"
                    ));
                }
            }
            Prior::Uniform { low, high } => {
                if !(low.is_finite() && high.is_finite()) || low >= high {
                    return Err(invalid!("{what}: the uniform prior needs finite low < high, not U({low}, {high})"));
                }
            }
        }
        Ok(())
    }

    /// The prior's standard deviation.
    /// The prior's mean: where a parameter without a value starts.
    pub fn mean(&self) -> f64 {
        match *self {
            Prior::Normal { mean, .. } => mean,
            Prior::Uniform { low, high } => 0.5 * (low + high),
        }
    }

    pub fn scale(&self) -> f64 {
        match *self {
            Prior::Normal { sd, .. } => sd,
            Prior::Uniform { low, high } => (high - low) / 12f64.sqrt(),
        }
    }

    pub fn draw(&self, rng: &mut Rng) -> f64 {
        match *self {
            Prior::Normal { mean, sd } => mean + sd * standard_normal(rng),
            Prior::Uniform { low, high } => low + (high - low) * rng.uniform_f64(),
        }
    }
}

/// A user quantile function `(index, center, scale, u) -> value` with u in (0, 1): the draw is
/// `q(index, center, scale, u)` for a seeded uniform u, so custom proposals stay reproducible.
pub type QuantileFn = Arc<dyn Fn(usize, f64, f64, f64) -> f64 + Send + Sync>;

/// The shape of the candidates drawn around the current best, with the parameter's spread s.
#[derive(Clone, Default)]
pub enum Proposal {
    /// N(best, s^2).
    #[default]
    Normal,
    /// U(best - sqrt(3) s, best + sqrt(3) s): the same variance as the normal.
    Uniform,
    /// A user quantile function, called with (index, best, s, u).
    Custom(QuantileFn),
}

impl fmt::Debug for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proposal::Normal => write!(f, "Normal"),
            Proposal::Uniform => write!(f, "Uniform"),
            Proposal::Custom(_) => write!(f, "Custom(..)"),
        }
    }
}

impl Proposal {
    pub fn draw(&self, rng: &mut Rng, index: usize, center: f64, scale: f64) -> f64 {
        match self {
            Proposal::Normal => center + scale * standard_normal(rng),
            Proposal::Uniform => center + scale * 3f64.sqrt() * (2.0 * rng.uniform_f64() - 1.0),
            Proposal::Custom(q) => q(index, center, scale, open_uniform(rng)),
        }
    }
}

/// Uniform in the open interval (0, 1) with 53 random bits.
pub fn open_uniform(rng: &mut Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal draw (Box-Muller, in f64).
pub fn standard_normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.uniform_f64(); // (0, 1]
    let u2 = rng.uniform_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The standard normal quantile Phi^-1(p) for p in (0, 1) (Acklam's rational approximation,
/// relative error below 1.2e-9).
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    const LOW: f64 = 0.02425;
    if p < LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.95) - 1.6448536269514722).abs() < 1e-8);
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-8);
        assert!((normal_quantile(0.005) + 2.5758293035489004).abs() < 1e-8);
        assert_eq!(normal_quantile(0.5), 0.0);
    }
}
