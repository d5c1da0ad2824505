//! Activation functions: value and derivative, applied over slices.

// The SIMD dispatch of `simd::multiversion!` is the one exception (allowed where it expands).
#![deny(unsafe_code)]

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
    /// The closed interval of values f can take (or approach): what a reconstruction or
    /// regression target must lie in for this output to reach it.
    pub fn range(self) -> (f32, f32) {
        match self {
            Activation::Identity | Activation::LeakyRelu => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::Sigmoid => (0.0, 1.0),
            Activation::Tanh => (-1.0, 1.0),
            Activation::Relu | Activation::Softplus => (0.0, f32::INFINITY),
            Activation::Elu => (-1.0, f32::INFINITY),
            // GELU's minimum is -0.16997 at x = -0.75179.
            Activation::Gelu => (-0.17, f32::INFINITY),
        }
    }

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
            .get(usize::try_from(c).map_err(|_| invalid!("activation code {c} is out of range (0 to 7)"))?)
            .copied()
            .ok_or_else(|| invalid!("activation code {c} is out of range (0 to 7)"))
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

    #[inline]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Identity => z,
            Activation::Sigmoid => sigmoid_fast(z),
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

    /// f''(z), from z and y = f(z): what the contractive penalty's gradient needs
    /// (d/dz f'(z)^2 = 2 f'(z) f''(z)). Zero almost everywhere for the piecewise-linear ones.
    #[inline]
    pub fn second_derivative(self, z: f32, y: f32) -> f32 {
        match self {
            Activation::Identity | Activation::Relu | Activation::LeakyRelu => 0.0,
            Activation::Sigmoid => y * (1.0 - y) * (1.0 - 2.0 * y),
            Activation::Tanh => -2.0 * y * (1.0 - y * y),
            // z <= 0: f = alpha (e^z - 1), f' = f'' = y + alpha
            Activation::Elu => {
                if y > 0.0 {
                    0.0
                } else {
                    y + ELU_ALPHA
                }
            }
            // softplus'' = s (1 - s) with s = sigmoid(z) = 1 - e^-y
            Activation::Softplus => {
                let s = -(-y).exp_m1();
                s * (1.0 - s)
            }
            // d/dz [Phi(z) + z phi(z)] = phi(z) (2 - z^2)
            Activation::Gelu => (-0.5 * z * z).exp() * 0.398_942_3 * (2.0 - z * z),
        }
    }

    /// Whether forward_rows() leaves z + bias in z. Identity and ReLU do not: their derivatives
    /// read y, and storing z back costs a training step about 1% of its time (benches/README.md).
    pub fn z_has_bias(self) -> bool {
        !matches!(self, Activation::Identity | Activation::Relu)
    }

    /// y = f(z + bias) row by row; z is overwritten by z + bias where the derivative reads z
    /// ([`Activation::z_has_bias`]).
    pub fn forward_rows(self, z: &mut [f32], bias: &[f32], y: &mut [f32]) {
        forward_rows_wide(self, z, bias, y)
    }

    #[inline(always)]
    fn forward_rows_impl(self, z: &mut [f32], bias: &[f32], y: &mut [f32]) {
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
                Activation::Sigmoid => {
                    for ((z, y), b) in zr.iter_mut().zip(yr.iter_mut()).zip(bias) {
                        *z += b;
                        *y = sigmoid_fast(*z);
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
        backward_in_place_wide(self, z, y, dy)
    }

    #[inline(always)]
    fn backward_in_place_impl(self, z: &[f32], y: &[f32], dy: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => {
                // A select, not a conditional store: this form vectorises (the dx epilogue of
                // every ReLU layer's backward runs it).
                for (d, y) in dy.iter_mut().zip(y) {
                    *d = if *y > 0.0 { *d } else { 0.0 };
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

crate::simd::multiversion!(fn forward_rows_wide(act: Activation, z: &mut [f32], bias: &[f32], y: &mut [f32]) => Activation::forward_rows_impl);
crate::simd::multiversion!(fn backward_in_place_wide(act: Activation, z: &[f32], y: &[f32], dy: &mut [f32]) => Activation::backward_in_place_impl);

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
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
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
    fn second_derivatives_match_central_differences() {
        for a in Activation::ALL {
            for &z in &[-3.1f32, -0.7, -0.05, 0.05, 0.4, 2.3] {
                let h = 1e-3f64;
                let d = |z: f64| {
                    let z = z as f32;
                    a.derivative(z, a.apply(z)) as f64
                };
                let num = (d(z as f64 + h) - d(z as f64 - h)) / (2.0 * h);
                let ana = a.second_derivative(z, a.apply(z)) as f64;
                assert!((num - ana).abs() < 3e-3, "{a:?} at {z}: {num} vs {ana}");
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

/// e^x to about 2 ulp for x in [-87, 88] (inputs outside are clamped: the result saturates at
/// ~1e-38 and ~1.6e38 instead of 0 and inf). Branch-free, so loops over it vectorise, unlike
/// libm's expf: Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, and Cephes' degree-6
/// polynomial for e^r.
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000); // n as an integer, from t's mantissa
    e * f32::from_bits(((ni + 127) << 23) as u32)
}

/// ln(1 + u) for u in [0, 1], branch-free: 2 atanh(s) with s = u / (2 + u) <= 1/3, odd series
/// to s^11 (absolute error < 1e-8).
#[inline(always)]
pub fn ln_1p_unit(u: f32) -> f32 {
    two_atanh_small(u / (2.0 + u))
}

/// 2 atanh(s) = ln((1 + s) / (1 - s)) for 0 <= s <= 1/3: the odd series to s^11.
#[inline(always)]
pub fn two_atanh_small(s: f32) -> f32 {
    let s2 = s * s;
    let p = 1.0 / 11.0;
    let p = p * s2 + 1.0 / 9.0;
    let p = p * s2 + 1.0 / 7.0;
    let p = p * s2 + 1.0 / 5.0;
    let p = p * s2 + 1.0 / 3.0;
    let p = p * s2 + 1.0;
    2.0 * s * p
}

/// softplus(z) = max(z, 0) + ln(1 + e^-|z|), branch-free.
#[inline(always)]
pub fn softplus_fast(z: f32) -> f32 {
    let a = if z < 0.0 { -z } else { z };
    let m = if z > 0.0 { z } else { 0.0 };
    m + ln_1p_unit(exp_fast(-a))
}

/// sigmoid(z) = 1 / (1 + e^-z), branch-free.
#[inline(always)]
pub fn sigmoid_fast(z: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-z))
}

#[cfg(test)]
mod fast_math_tests {
    use super::*;

    #[test]
    fn fast_functions_match_libm() {
        let mut worst = (0f64, 0f64, 0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.35e-4; // -87 .. 87
            let e = exp_fast(x) as f64;
            let want = (x as f64).exp();
            worst.0 = worst.0.max(((e - want) / want).abs());
            let z = i as f32 * 2e-4; // -40 .. 40
            worst.1 = worst.1.max((softplus_fast(z) as f64 - ((z as f64).exp().ln_1p())).abs());
            let s = 1.0 / (1.0 + (-(z as f64)).exp());
            worst.2 = worst.2.max((sigmoid_fast(z) as f64 - s).abs());
        }
        assert!(worst.0 < 4e-7, "exp relative error {}", worst.0);
        assert!(worst.1 < 4e-6, "softplus absolute error {}", worst.1);
        assert!(worst.2 < 2e-7, "sigmoid absolute error {}", worst.2);
        assert!(exp_fast(-1000.0) > 0.0 && exp_fast(1000.0).is_finite());
    }
}
