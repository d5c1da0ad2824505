//! Reconstruction losses, fused with the output activation's derivative.
//!
//! Reported losses are means over every element (PyTorch's `reduction="mean"`). Binary
//! cross-entropy is only offered with a sigmoid output, and is then computed from the logits z:
//! BCE(sigmoid(z), t) = softplus(z) - t z, whose gradient in z is sigmoid(z) - t (no log of 0).

// The SIMD dispatch of `simd::multiversion!` is the one exception (allowed where it expands).
#![deny(unsafe_code)]

use crate::activation::{Activation, softplus_fast};
use crate::error::{Result, invalid};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    Mse,
    BinaryCrossEntropy,
}

impl Loss {
    pub const ALL: [Loss; 2] = [Loss::Mse, Loss::BinaryCrossEntropy];

    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(c: i32) -> Result<Loss> {
        match c {
            0 => Ok(Loss::Mse),
            1 => Ok(Loss::BinaryCrossEntropy),
            _ => Err(invalid!("loss code {c} is out of range (0 to 1)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::BinaryCrossEntropy => "binary_cross_entropy",
        }
    }

    /// Whether this loss can follow an output activation.
    pub fn check_output(self, act: Activation) -> Result<()> {
        match self {
            Loss::BinaryCrossEntropy if act != Activation::Sigmoid => Err(invalid!(
                "binary cross-entropy needs a sigmoid output (it is computed from the logits), not {}",
                act.name()
            )),
            _ => Ok(()),
        }
    }

    /// Loss of one element: output y (with logit z when sigmoid), target t.
    #[inline]
    pub fn element(self, z: f32, y: f32, t: f32) -> f64 {
        match self {
            Loss::Mse => {
                let d = (y - t) as f64;
                d * d
            }
            Loss::BinaryCrossEntropy => softplus_fast(z) as f64 - (t as f64) * (z as f64),
        }
    }

    /// Sum of the element losses of a block, and dL/dz written into `dz` for the mean over
    /// `count` elements.
    pub fn forward_backward(
        self,
        act: Activation,
        z: &[f32],
        y: &[f32],
        t: &[f32],
        dz: &mut [f32],
        count: usize,
    ) -> f64 {
        forward_backward_wide(self, act, z, y, t, dz, 1.0 / count as f32)
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
        }
    }

    /// Per-row mean loss (the anomaly score) of a block of rows.
    pub fn row_means(self, z: &[f32], y: &[f32], t: &[f32], cols: usize, out: &mut [f64]) {
        for (r, o) in out.iter_mut().enumerate() {
            let s = r * cols;
            let mut sum = 0f64;
            for i in s..s + cols {
                sum += self.element(z[i], y[i], t[i]);
            }
            *o = sum / cols as f64;
        }
    }
}

crate::simd::multiversion!(fn forward_backward_wide(loss: Loss, act: Activation, z: &[f32], y: &[f32], t: &[f32], dz: &mut [f32], inv: f32) -> f64 => Loss::forward_backward_impl);

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
