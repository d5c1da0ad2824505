//! Feature scaling: a [`Scaling`] method is fitted on training data into a [`Scaler`] (the
//! per-column statistics, computed in f64), which is then applied to that data and to any other
//! data with the same columns (validation, test, new samples), so they all see the training
//! statistics.
//!
//! Constant columns (max == min) map to 0 under min-max and z-score, in training and later data
//! alike: there is nothing to divide by. Applying is element-wise in a fixed order, hence
//! deterministic.

use crate::error::{Error, Result, invalid, shape};
use crate::tensor::Matrix;

/// A scaling method (the `LATENT_SCALING_*` codes, in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    /// Leave the values as they are.
    None,
    /// x / 255: bytes (IDX images) to [0, 1].
    Divide255,
    /// (x - min) / (max - min) per column, with the min and max of the fitted data.
    MinMax,
    /// (x - mean) / std per column (population std), with the fitted data's statistics.
    ZScore,
}

impl Scaling {
    pub const ALL: [Scaling; 4] = [Scaling::None, Scaling::Divide255, Scaling::MinMax, Scaling::ZScore];

    /// The `LATENT_SCALING_*` code.
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(c: i32) -> Result<Scaling> {
        usize::try_from(c)
            .ok()
            .and_then(|i| Scaling::ALL.get(i).copied())
            .ok_or_else(|| invalid!("scaling code {c} is out of range (0 to 3)"))
    }

    pub fn name(self) -> &'static str {
        match self {
            Scaling::None => "none",
            Scaling::Divide255 => "divide_255",
            Scaling::MinMax => "min_max",
            Scaling::ZScore => "z_score",
        }
    }
}

/// A fitted scaling: the method and, for the per-column methods, one statistic pair per column.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Scaler {
    #[default]
    None,
    Divide255,
    MinMax {
        min: Vec<f64>,
        max: Vec<f64>,
    },
    ZScore {
        mean: Vec<f64>,
        std: Vec<f64>,
    },
}

/// Per-column statistics of a matrix, in f64, one row at a time (a fixed summation order).
struct ColumnStats {
    min: Vec<f64>,
    max: Vec<f64>,
    mean: Vec<f64>,
}

fn column_stats(x: &Matrix) -> ColumnStats {
    let c = x.cols();
    let mut min = vec![f64::INFINITY; c];
    let mut max = vec![f64::NEG_INFINITY; c];
    let mut sum = vec![0f64; c];
    for r in 0..x.rows() {
        for (j, &v) in x.row(r).iter().enumerate() {
            let v = v as f64;
            min[j] = min[j].min(v);
            max[j] = max[j].max(v);
            sum[j] += v;
        }
    }
    let n = x.rows() as f64;
    let mean = sum.into_iter().map(|s| s / n).collect();
    ColumnStats { min, max, mean }
}

impl Scaler {
    /// Computes the statistics of `method` on `x`. Per-column methods need at least one row.
    pub fn fit(method: Scaling, x: &Matrix) -> Result<Scaler> {
        if matches!(method, Scaling::MinMax | Scaling::ZScore) && x.rows() == 0 {
            return Err(invalid!("cannot fit {} scaling on 0 rows", method.name()));
        }
        x.check_finite("data to fit the scaling on")?;
        Ok(match method {
            Scaling::None => Scaler::None,
            Scaling::Divide255 => Scaler::Divide255,
            Scaling::MinMax => {
                let s = column_stats(x);
                Scaler::MinMax { min: s.min, max: s.max }
            }
            Scaling::ZScore => {
                let s = column_stats(x);
                // Second pass around the mean: no cancellation as with sum of squares.
                let mut ss = vec![0f64; x.cols()];
                for r in 0..x.rows() {
                    for (j, &v) in x.row(r).iter().enumerate() {
                        let d = v as f64 - s.mean[j];
                        ss[j] += d * d;
                    }
                }
                let n = x.rows() as f64;
                let std = ss
                    .iter()
                    .enumerate()
                    // A constant column has std 0 exactly, whatever rounding did to the mean.
                    .map(|(j, &q)| if s.min[j] == s.max[j] { 0.0 } else { (q / n).sqrt() })
                    .collect();
                Scaler::ZScore { mean: s.mean, std }
            }
        })
    }

    pub fn method(&self) -> Scaling {
        match self {
            Scaler::None => Scaling::None,
            Scaler::Divide255 => Scaling::Divide255,
            Scaler::MinMax { .. } => Scaling::MinMax,
            Scaler::ZScore { .. } => Scaling::ZScore,
        }
    }

    /// The per-column statistics (a, b): (min, max) for min-max, (mean, std) for z-score; empty
    /// for the column-free methods. What a model file or a C caller stores.
    pub fn stats(&self) -> (&[f64], &[f64]) {
        match self {
            Scaler::None | Scaler::Divide255 => (&[], &[]),
            Scaler::MinMax { min, max } => (min, max),
            Scaler::ZScore { mean, std } => (mean, std),
        }
    }

    /// The scaler of `method` with the statistics [`Scaler::stats`] gives (ignored for the
    /// column-free methods).
    pub fn from_stats(method: Scaling, a: Vec<f64>, b: Vec<f64>) -> Scaler {
        match method {
            Scaling::None => Scaler::None,
            Scaling::Divide255 => Scaler::Divide255,
            Scaling::MinMax => Scaler::MinMax { min: a, max: b },
            Scaling::ZScore => Scaler::ZScore { mean: a, std: b },
        }
    }

    /// The number of columns the statistics were fitted on (None for column-free methods).
    pub fn cols(&self) -> Option<usize> {
        match self {
            Scaler::None | Scaler::Divide255 => None,
            Scaler::MinMax { min, .. } => Some(min.len()),
            Scaler::ZScore { mean, .. } => Some(mean.len()),
        }
    }

    /// Per-column (offset, divisor) with x' = (x - offset) / divisor; divisor 0 means "map to 0".
    fn affine(&self, cols: usize) -> (Vec<f64>, Vec<f64>) {
        match self {
            Scaler::None => (vec![0.0; cols], vec![1.0; cols]),
            Scaler::Divide255 => (vec![0.0; cols], vec![255.0; cols]),
            Scaler::MinMax { min, max } => (min.clone(), min.iter().zip(max).map(|(a, b)| b - a).collect()),
            Scaler::ZScore { mean, std } => (mean.clone(), std.clone()),
        }
    }

    fn check_cols(&self, x: &Matrix) -> Result<()> {
        match self.cols() {
            Some(c) if c != x.cols() => Err(shape!(
                "the {} scaling was fitted on {c} columns, the data have {}",
                self.method().name(),
                x.cols()
            )),
            _ => Ok(()),
        }
    }

    /// Scales `x` in place. On error (column count, or a result outside the f32 range) `x` is
    /// left unchanged.
    pub fn apply(&self, x: &mut Matrix) -> Result<()> {
        self.check_cols(x)?;
        if matches!(self, Scaler::None) {
            return Ok(());
        }
        let (offset, div) = self.affine(x.cols());
        let f =
            |v: f32, j: usize| -> f32 { if div[j] == 0.0 { 0.0 } else { ((v as f64 - offset[j]) / div[j]) as f32 } };
        // Check first, so a failure changes nothing (costs a read-only pass, no extra memory).
        for r in 0..x.rows() {
            for (j, &v) in x.row(r).iter().enumerate() {
                let y = f(v, j);
                if !y.is_finite() {
                    return Err(Error::NonFinite(format!(
                        "{} scaling maps row {r}, column {j} ({v:?}) to {y}",
                        self.method().name()
                    )));
                }
            }
        }
        for r in 0..x.rows() {
            for (j, v) in x.row_mut(r).iter_mut().enumerate() {
                *v = f(*v, j);
            }
        }
        Ok(())
    }

    /// Maps scaled values back to the original units (e.g. a network's reconstructions).
    /// Constant columns come back as their constant.
    pub fn invert(&self, x: &mut Matrix) -> Result<()> {
        self.check_cols(x)?;
        if matches!(self, Scaler::None) {
            return Ok(());
        }
        let (offset, div) = self.affine(x.cols());
        for r in 0..x.rows() {
            for (j, v) in x.row_mut(r).iter_mut().enumerate() {
                *v = (*v as f64 * div[j] + offset[j]) as f32;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(rows: usize, cols: usize, v: &[f32]) -> Matrix {
        Matrix::from_vec(rows, cols, v.to_vec()).unwrap()
    }

    #[test]
    fn codes_round_trip_and_out_of_range_is_invalid() {
        for s in Scaling::ALL {
            assert_eq!(Scaling::from_code(s.code()).unwrap(), s);
        }
        assert_eq!(Scaling::from_code(crate::ffi::LATENT_SCALING_Z_SCORE).unwrap(), Scaling::ZScore);
        assert_eq!(Scaling::from_code(crate::ffi::LATENT_SCALING_DIVIDE_255).unwrap(), Scaling::Divide255);
        assert!(matches!(Scaling::from_code(4), Err(Error::InvalidArgument(_))));
        assert!(matches!(Scaling::from_code(-1), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn min_max_known_values_and_constant_column() {
        // Columns: 0..10 range, constant 7, negative range.
        let mut x = m(3, 3, &[0.0, 7.0, -4.0, 5.0, 7.0, -2.0, 10.0, 7.0, 0.0]);
        let s = Scaler::fit(Scaling::MinMax, &x).unwrap();
        assert_eq!(s, Scaler::MinMax { min: vec![0.0, 7.0, -4.0], max: vec![10.0, 7.0, 0.0] });
        s.apply(&mut x).unwrap();
        assert_eq!(x.as_slice(), &[0.0, 0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn z_score_gives_zero_mean_unit_std() {
        let v: Vec<f32> = (0..400).map(|i| ((i * 37 % 101) as f32) * 0.3 + (i % 4) as f32 * 100.0).collect();
        let mut x = m(100, 4, &v);
        let s = Scaler::fit(Scaling::ZScore, &x).unwrap();
        s.apply(&mut x).unwrap();
        for j in 0..4 {
            let col: Vec<f64> = (0..100).map(|r| x.row(r)[j] as f64).collect();
            let mean = col.iter().sum::<f64>() / 100.0;
            let var = col.iter().map(|c| (c - mean) * (c - mean)).sum::<f64>() / 100.0;
            assert!(mean.abs() < 1e-6, "column {j} mean {mean}");
            assert!((var.sqrt() - 1.0).abs() < 1e-5, "column {j} std {}", var.sqrt());
        }
    }

    #[test]
    fn z_score_constant_column_is_zero_even_when_the_mean_rounds() {
        // 0.1 summed three times and divided by 3 is not 0.1 in f64: the std must still be 0.
        let mut x = m(3, 2, &[0.1, 1.0, 0.1, 2.0, 0.1, 3.0]);
        let s = Scaler::fit(Scaling::ZScore, &x).unwrap();
        let Scaler::ZScore { std, .. } = &s else { panic!() };
        assert_eq!(std[0], 0.0);
        s.apply(&mut x).unwrap();
        assert_eq!([x.row(0)[0], x.row(1)[0], x.row(2)[0]], [0.0; 3]);
    }

    #[test]
    fn divide_255_and_invert() {
        let mut x = m(1, 3, &[0.0, 51.0, 255.0]);
        let s = Scaler::fit(Scaling::Divide255, &x).unwrap();
        s.apply(&mut x).unwrap();
        assert_eq!(x.as_slice(), &[0.0, 0.2, 1.0]);
        s.invert(&mut x).unwrap();
        assert_eq!(x.as_slice(), &[0.0, 51.0, 255.0]);
    }

    #[test]
    fn column_mismatch_and_overflow_leave_data_unchanged() {
        let s = Scaler::fit(Scaling::MinMax, &m(2, 2, &[0.0, 0.0, 1.0, 1e-30])).unwrap();
        let mut wrong = m(1, 3, &[1.0, 2.0, 3.0]);
        assert!(matches!(s.apply(&mut wrong), Err(Error::ShapeMismatch(_))));
        // Column 1 has range 1e-30: 1e10 / 1e-30 overflows f32. Row 0 would be fine, yet stays.
        let mut x = m(2, 2, &[0.5, 0.0, 0.5, 1e10]);
        let before = x.clone();
        assert!(matches!(s.apply(&mut x), Err(Error::NonFinite(_))));
        assert_eq!(x, before);
    }

    #[test]
    fn fitting_needs_rows_and_finite_data() {
        assert!(matches!(Scaler::fit(Scaling::ZScore, &m(0, 3, &[])), Err(Error::InvalidArgument(_))));
        assert!(matches!(Scaler::fit(Scaling::MinMax, &m(1, 2, &[1.0, f32::NAN])), Err(Error::NonFinite(_))));
    }
}
