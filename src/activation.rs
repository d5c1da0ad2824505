//! Activation functions: value and derivative, applied over slices.

use crate::error::{Result, invalid};

/// Leaky ReLU slope for negative inputs (Keras' and PyTorch's default is 0.01).
pub const LEAKY_SLOPE: f32 = 0.01;
/// ELU's alpha.
pub const ELU_ALPHA: f32 = 1.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu,
    Elu,
    Softplus,
    Gelu,
}

impl Activation {
    pub const ALL: [Activation; 8] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Softplus,
        Activation::Gelu,
    ];

    /// The `LATENT_ACTIVATION_*` code.
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(c: i32) -> Result<Activation> {
        Activation::ALL
            .get(usize::try_from(c).map_err(|_| invalid!("activation code {c} is out of range 0..8"))?)
            .copied()
            .ok_or_else(|| invalid!("activation code {c} is out of range 0..8"))
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Softplus => "softplus",
            Activation::Gelu => "gelu",
        }
    }

    /// Whether the derivative needs the pre-activation z (else the output y suffices).
    pub fn needs_preactivation(self) -> bool {
        matches!(self, Activation::Gelu)
    }

    #[inline]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Identity => z,
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => z.tanh(),
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    z
                } else {
                    LEAKY_SLOPE * z
                }
            }
            Activation::Elu => {
                if z > 0.0 {
                    z
                } else {
                    ELU_ALPHA * z.exp_m1()
                }
            }
            Activation::Softplus => softplus(z),
            Activation::Gelu => {
                // exact GELU z * Phi(z), Phi via erf
                0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2))
            }
        }
    }

    /// f'(z), from z and y = f(z) (whichever is cheaper).
    #[inline]
    pub fn derivative(self, z: f32, y: f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu => {
                if y > 0.0 {
                    1.0
                } else {
                    LEAKY_SLOPE
                }
            }
            Activation::Elu => {
                if y > 0.0 {
                    1.0
                } else {
                    y + ELU_ALPHA
                }
            }
            // softplus' = sigmoid(z) = 1 - exp(-y)
            Activation::Softplus => -(-y).exp_m1(),
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * z * z).exp() * 0.398_942_3;
                cdf + z * pdf
            }
        }
    }

    /// y = f(z + bias) row by row; z is overwritten by z + bias when the derivative needs it.
    pub fn forward_rows(self, z: &mut [f32], bias: &[f32], y: &mut [f32]) {
        let n = bias.len();
        for (zr, yr) in z.chunks_exact_mut(n).zip(y.chunks_exact_mut(n)) {
            match self {
                // Specialised loops that the compiler vectorises.
                Activation::Identity => {
                    for ((z, y), b) in zr.iter_mut().zip(yr.iter_mut()).zip(bias) {
                        *y = *z + b;
                    }
                }
                Activation::Relu => {
                    for ((z, y), b) in zr.iter_mut().zip(yr.iter_mut()).zip(bias) {
                        *y = (*z + b).max(0.0);
                    }
                }
                _ => {
                    for ((z, y), b) in zr.iter_mut().zip(yr.iter_mut()).zip(bias) {
                        *z += b;
                        *y = self.apply(*z);
                    }
                }
            }
        }
    }

    /// dz = dy * f'(z) in place on dy.
    pub fn backward_in_place(self, z: &[f32], y: &[f32], dy: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => {
                for (d, y) in dy.iter_mut().zip(y) {
                    if *y <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
            Activation::Sigmoid => {
                for (d, y) in dy.iter_mut().zip(y) {
                    *d *= y * (1.0 - y);
                }
            }
            _ => {
                for ((d, z), y) in dy.iter_mut().zip(z).zip(y) {
                    *d *= self.derivative(*z, *y);
                }
            }
        }
    }
}

#[inline]
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^z) without overflow.
#[inline]
pub fn softplus(z: f32) -> f32 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for f32.
#[inline]
pub fn erf(x: f32) -> f32 {
    let z = (x as f64).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * (-z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
        .exp();
    let v = 1.0 - r;
    (if x >= 0.0 { v } else { -v }) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_central_differences() {
        for a in Activation::ALL {
            for &z in &[-3.1f32, -0.7, -0.05, 0.05, 0.4, 2.3] {
                let h = 1e-3f64;
                let f = |z: f64| a.apply(z as f32) as f64;
                let num = (f(z as f64 + h) - f(z as f64 - h)) / (2.0 * h);
                let ana = a.derivative(z, a.apply(z)) as f64;
                assert!((num - ana).abs() < 2e-3, "{a:?} at {z}: {num} vs {ana}");
            }
        }
    }

    #[test]
    fn codes_round_trip_and_reject_out_of_range() {
        for a in Activation::ALL {
            assert_eq!(Activation::from_code(a.code()).unwrap(), a);
        }
        assert!(Activation::from_code(8).is_err());
        assert!(Activation::from_code(-1).is_err());
    }
}
