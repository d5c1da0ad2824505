//! Denoising corruption processes q(x~ | x) (Vincent et al., JMLR 2010, section 4). The network
//! sees the corrupted rows, the loss is taken against the clean ones (unlike DL4J's AutoEncoder
//! layer, which scores the reconstruction of the corrupted input).

#![forbid(unsafe_code)]

use crate::error::{Result, invalid};
use crate::rng::Philox;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Corruption {
    None,
    /// Each component is set to 0 with probability `level` (DL4J's `corruptionLevel`).
    Masking {
        level: f32,
    },
    /// x + N(0, sigma^2) on every component.
    Gaussian {
        sigma: f32,
    },
    /// Each component, with probability `fraction`, is set to its feature's minimum or maximum
    /// over the training data (each with probability 1/2).
    SaltPepper {
        fraction: f32,
    },
}

impl Corruption {
    pub fn code(self) -> i32 {
        match self {
            Corruption::None => 0,
            Corruption::Masking { .. } => 1,
            Corruption::Gaussian { .. } => 2,
            Corruption::SaltPepper { .. } => 3,
        }
    }

    /// The process with this `LATENT_CORRUPTION_*` code and level (probability, or sigma).
    pub fn from_code(code: i32, level: f32) -> Result<Corruption> {
        let c = match code {
            0 => Corruption::None,
            1 => Corruption::Masking { level },
            2 => Corruption::Gaussian { sigma: level },
            3 => Corruption::SaltPepper { fraction: level },
            _ => return Err(invalid!("corruption code {code} is out of range (0 to 3)")),
        };
        c.validate()?;
        Ok(c)
    }

    /// The probability or sigma (0 for None).
    pub fn level(self) -> f32 {
        match self {
            Corruption::None => 0.0,
            Corruption::Masking { level } => level,
            Corruption::Gaussian { sigma } => sigma,
            Corruption::SaltPepper { fraction } => fraction,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Corruption::None => "none",
            Corruption::Masking { .. } => "masking",
            Corruption::Gaussian { .. } => "gaussian",
            Corruption::SaltPepper { .. } => "salt_and_pepper",
        }
    }

    pub fn is_none(self) -> bool {
        self == Corruption::None
    }

    pub fn validate(self) -> Result<()> {
        match self {
            Corruption::None => Ok(()),
            Corruption::Masking { level: p } | Corruption::SaltPepper { fraction: p } => {
                if p.is_finite() && (0.0..=1.0).contains(&p) {
                    Ok(())
                } else {
                    Err(invalid!("{} corruption level {p} must be a probability in [0, 1]", self.name()))
                }
            }
            Corruption::Gaussian { sigma } => {
                if sigma.is_finite() && sigma >= 0.0 {
                    Ok(())
                } else {
                    Err(invalid!("gaussian corruption sigma {sigma} must be finite and >= 0"))
                }
            }
        }
    }

    /// Writes the corrupted rows of x (row-major, `cols` wide) into `out`. `range` holds each
    /// feature's (min, max) for salt-and-pepper; without it the values are 0 and 1. Element j of
    /// row r draws element (first + r) * cols + j of `draws` (the device kernel's keying), so a
    /// row's corruption depends on its place in the minibatch, not on which shard holds it.
    pub fn apply(
        self,
        x: &[f32],
        cols: usize,
        range: Option<(&[f32], &[f32])>,
        draws: Philox,
        first: usize,
        out: &mut [f32],
    ) {
        let out = &mut out[..x.len()];
        let base = (first as u64).wrapping_mul(cols as u64);
        match self {
            Corruption::None => out.copy_from_slice(x),
            Corruption::Masking { level } => draws.for_uniforms(base, x.len(), |at, u| {
                for ((o, &v), &u) in out[at..].iter_mut().zip(&x[at..]).zip(u) {
                    *o = if u < level { 0.0 } else { v };
                }
            }),
            Corruption::Gaussian { sigma } => draws.for_normals(base, x.len(), |at, e| {
                for ((o, &v), &e) in out[at..].iter_mut().zip(&x[at..]).zip(e) {
                    *o = v + sigma * e;
                }
            }),
            Corruption::SaltPepper { fraction } => draws.for_uniforms(base, x.len(), |at, u| {
                for (k, ((o, &v), &u)) in out[at..].iter_mut().zip(&x[at..]).zip(u).enumerate() {
                    *o = if u >= fraction {
                        v
                    } else {
                        // the same draw picks salt or pepper: u < fraction / 2 is pepper
                        let pepper = u < 0.5 * fraction;
                        match range {
                            Some((lo, hi)) => {
                                let j = (at + k) % cols;
                                if pepper { lo[j] } else { hi[j] }
                            }
                            None => {
                                if pepper {
                                    0.0
                                } else {
                                    1.0
                                }
                            }
                        }
                    };
                }
            }),
        }
    }
}

/// Per-feature (min, max) over the rows of x, for salt-and-pepper.
pub fn feature_range(x: &[f32], cols: usize) -> (Vec<f32>, Vec<f32>) {
    let mut lo = vec![f32::INFINITY; cols];
    let mut hi = vec![f32::NEG_INFINITY; cols];
    for row in x.chunks_exact(cols) {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = l.min(v);
            *h = h.max(v);
        }
    }
    if x.is_empty() {
        lo.fill(0.0);
        hi.fill(1.0);
    }
    (lo, hi)
}
