//! Reconstruction losses, fused with the output activation's derivative.
//!
//! Reported losses are means over every element (PyTorch's `reduction="mean"`). Binary
//! cross-entropy is only offered with a sigmoid output, and is then computed from the logits z:
//! BCE(sigmoid(z), t) = softplus(z) - t z, whose gradient in z is sigmoid(z) - t (no log of 0).

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
            _ => Err(invalid!("loss code {c} is out of range 0..2")),
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
        let inv = 1.0 / count as f32;
        let mut sum = 0f64;
        // f32 partial sums over short runs keep the loops vectorisable; f64 across runs.
        const RUN: usize = 256;
        for (((z, y), t), dz) in z.chunks(RUN).zip(y.chunks(RUN)).zip(t.chunks(RUN)).zip(dz.chunks_mut(RUN)) {
            let mut part = 0f32;
            match (self, act) {
                (Loss::Mse, Activation::Sigmoid) => {
                    for i in 0..y.len() {
                        let d = y[i] - t[i];
                        part += d * d;
                        dz[i] = 2.0 * inv * d * y[i] * (1.0 - y[i]);
                    }
                }
                (Loss::Mse, Activation::Identity) => {
                    for i in 0..y.len() {
                        let d = y[i] - t[i];
                        part += d * d;
                        dz[i] = 2.0 * inv * d;
                    }
                }
                (Loss::Mse, _) => {
                    for i in 0..y.len() {
                        let d = y[i] - t[i];
                        part += d * d;
                        dz[i] = 2.0 * inv * d * act.derivative(z[i], y[i]);
                    }
                }
                (Loss::BinaryCrossEntropy, _) => {
                    for i in 0..y.len() {
                        part += softplus_fast(z[i]) - t[i] * z[i];
                        dz[i] = (y[i] - t[i]) * inv;
                    }
                }
            }
            sum += part as f64;
        }
        sum
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
