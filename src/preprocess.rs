//! The input pipeline a model carries: the scaling fitted on its training data (as a
//! scikit-learn pipeline's scaler or Keras' `Normalization` layer travel with the model), and
//! whether serving calls take raw rows and apply it themselves.
//!
//! A fit on a scaled [`crate::data::Dataset`] stores the dataset's fitted [`Scaler`] in the model; the
//! model file keeps it. In raw-input mode the serving calls (encode, reconstruct, predict,
//! scores, ...) scale the rows they are given with it, and the calls that return rows in the
//! input's space (reconstruct, decode, a VAE's generated samples) map them back to raw units.
//! Rows of a dataset that was itself scaled are never scaled twice. Errors and scores stay in
//! the model's (scaled) space, where the model was trained and thresholds were fitted.

#![forbid(unsafe_code)]

use std::borrow::Cow;

use crate::data::scale::Scaler;
use crate::error::{Result, invalid, shape};
use crate::tensor::Matrix;

/// A model's input scaling and serving mode. The default is no scaling, scaled-input mode:
/// the library's behaviour before models carried their scaling.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputScaling {
    scaler: Scaler,
    raw: bool,
}

impl InputScaling {
    /// The stored scaling (`Scaler::None` if the model has none).
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    /// Whether serving calls take raw rows.
    pub fn raw(&self) -> bool {
        self.raw
    }

    /// Sets the stored scaling of a model whose inputs have `input_dim` columns: a per-column
    /// scaling must have been fitted on that many columns, with finite statistics.
    pub fn set_scaler(&mut self, scaler: Scaler, input_dim: usize) -> Result<()> {
        check(&scaler, input_dim)?;
        self.scaler = scaler;
        Ok(())
    }

    /// Raw-input mode on or off.
    pub fn set_raw(&mut self, raw: bool) {
        self.raw = raw;
    }

    /// Rows as the model takes them: in raw-input mode, rows not scaled yet go through the
    /// stored scaling (a copy); otherwise the rows themselves.
    pub fn to_model<'a>(&self, x: &'a Matrix, already_scaled: bool) -> Result<Cow<'a, Matrix>> {
        if !self.raw || already_scaled || self.scaler == Scaler::None {
            return Ok(Cow::Borrowed(x));
        }
        let mut m = x.clone();
        self.scaler.apply(&mut m)?;
        Ok(Cow::Owned(m))
    }

    /// Rows the model produced in its input's space, in raw units in raw-input mode.
    pub fn to_raw(&self, mut m: Matrix) -> Result<Matrix> {
        if self.raw {
            self.scaler.invert(&mut m)?;
        }
        Ok(m)
    }
}

/// A scaling a model of `input_dim` columns can hold.
fn check(s: &Scaler, input_dim: usize) -> Result<()> {
    if let Some(c) = s.cols()
        && c != input_dim
    {
        return Err(shape!("the {} scaling has {c} columns, the model takes {input_dim}", s.method().name()));
    }
    let (a, b) = s.stats();
    for (j, (&a, &b)) in a.iter().zip(b).enumerate() {
        if !a.is_finite() || !b.is_finite() {
            return Err(invalid!(
                "the {} scaling's column {j} has a non-finite statistic ({a}, {b})",
                s.method().name()
            ));
        }
        let bad = match s {
            Scaler::MinMax { .. } => b < a,
            _ => b < 0.0,
        };
        if bad {
            return Err(invalid!(
                "the {} scaling's column {j} has statistics ({a}, {b}): {}",
                s.method().name(),
                if matches!(s, Scaler::MinMax { .. }) { "max below min" } else { "a negative std" }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scale::Scaling;

    #[test]
    fn raw_rows_are_scaled_once_and_outputs_mapped_back() {
        let x = Matrix::from_vec(2, 2, vec![0.0, 10.0, 4.0, 30.0]).unwrap();
        let mut p = InputScaling::default();
        p.set_scaler(Scaler::fit(Scaling::MinMax, &x).unwrap(), 2).unwrap();
        assert_eq!(p.to_model(&x, false).unwrap().as_slice(), x.as_slice(), "scaled-input mode");
        p.set_raw(true);
        assert_eq!(p.to_model(&x, false).unwrap().as_slice(), &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(p.to_model(&x, true).unwrap().as_slice(), x.as_slice(), "a scaled dataset");
        let back = p.to_raw(Matrix::from_vec(1, 2, vec![0.5, 0.5]).unwrap()).unwrap();
        assert_eq!(back.as_slice(), &[2.0, 20.0]);
    }

    #[test]
    fn a_scaling_of_the_wrong_width_or_with_bad_statistics_is_refused() {
        let mut p = InputScaling::default();
        let s = Scaler::ZScore { mean: vec![0.0; 3], std: vec![1.0; 3] };
        assert!(matches!(p.set_scaler(s, 4), Err(crate::Error::ShapeMismatch(_))));
        let s = Scaler::ZScore { mean: vec![0.0], std: vec![-1.0] };
        assert!(matches!(p.set_scaler(s, 1), Err(crate::Error::InvalidArgument(_))));
        let s = Scaler::MinMax { min: vec![1.0], max: vec![0.0] };
        assert!(matches!(p.set_scaler(s, 1), Err(crate::Error::InvalidArgument(_))));
        let s = Scaler::MinMax { min: vec![f64::NAN], max: vec![0.0] };
        assert!(matches!(p.set_scaler(s, 1), Err(crate::Error::InvalidArgument(_))));
        assert_eq!(p, InputScaling::default(), "refusals change nothing");
        p.set_scaler(Scaler::Divide255, 7).unwrap();
    }
}
