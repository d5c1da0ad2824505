//! `Dataset`: the samples (a row-major f32 [`Matrix`], one row per sample), optional integer
//! labels, and the [`Scaler`] its values went through.

use std::path::Path;

use super::csv::{self, CsvOptions};
use super::idx;
use super::npy;
use super::scale::{Scaler, Scaling};
use crate::data::split::split_index;
use crate::error::{Error, Result, invalid, shape, try_zeros};
use crate::tensor::{Matrix, checked_len};

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    x: Matrix,
    labels: Option<Vec<i32>>,
    /// Real-valued targets, one row per sample (regression).
    targets: Option<Matrix>,
    scaler: Scaler,
}

/// An element type accepted from callers' buffers.
trait Element: Copy + std::fmt::Debug {
    fn to_f32(self) -> f32;
    fn is_finite(self) -> bool;
}

impl Element for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Element for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

/// Copies `data` (rows x cols, row- or column-major) into a row-major f32 matrix; a value that
/// is not finite in f32 fails with its row and column.
fn from_buffer<T: Element>(data: &[T], rows: usize, cols: usize, col_major: bool) -> Result<Matrix> {
    if rows == 0 || cols == 0 {
        return Err(invalid!("a {rows} x {cols} buffer holds no data"));
    }
    let n = checked_len(rows, cols)?;
    if data.len() != n {
        return Err(shape!("{} values for a {rows} x {cols} matrix", data.len()));
    }
    let mut out = try_zeros::<f32>(n)?;
    if col_major {
        // Transpose in tiles so that both sides stay in cache.
        const B: usize = 64;
        for r0 in (0..rows).step_by(B) {
            for c0 in (0..cols).step_by(B) {
                for c in c0..(c0 + B).min(cols) {
                    for r in r0..(r0 + B).min(rows) {
                        out[r * cols + c] = data[c * rows + r].to_f32();
                    }
                }
            }
        }
    } else {
        for (o, &v) in out.iter_mut().zip(data) {
            *o = v.to_f32();
        }
    }
    let x = Matrix::from_vec(rows, cols, out)?;
    if let Some((r, c)) = x.first_non_finite() {
        let v = if col_major { data[c * rows + r] } else { data[r * cols + c] };
        let why = if v.is_finite() { " (outside the f32 range)" } else { "" };
        return Err(Error::NonFinite(format!("data: row {r}, column {c} is {v:?}{why}")));
    }
    Ok(x)
}

impl Dataset {
    /// A dataset of the rows of `x`, without labels, unscaled. Fails on NaN or Inf (naming the
    /// row and column).
    pub fn from_matrix(x: Matrix) -> Result<Dataset> {
        x.check_finite("data")?;
        Ok(Dataset { x, labels: None, targets: None, scaler: Scaler::None })
    }

    /// Copies a caller's f32 buffer of `rows` x `cols` values, stored row after row
    /// (`col_major` false) or column after column (true).
    pub fn from_buffer_f32(data: &[f32], rows: usize, cols: usize, col_major: bool) -> Result<Dataset> {
        let x = from_buffer(data, rows, cols, col_major)?;
        Ok(Dataset { x, labels: None, targets: None, scaler: Scaler::None })
    }

    /// As [`Dataset::from_buffer_f32`], converting from f64; values beyond the f32 range are
    /// rejected as non-finite.
    pub fn from_buffer_f64(data: &[f64], rows: usize, cols: usize, col_major: bool) -> Result<Dataset> {
        let x = from_buffer(data, rows, cols, col_major)?;
        Ok(Dataset { x, labels: None, targets: None, scaler: Scaler::None })
    }

    /// Images from an IDX file (plain or gzip) as rows of pixel values 0..255 (unscaled: use
    /// `scale(Scaling::Divide255)`), and labels from a second IDX file if given. The counts
    /// must agree.
    pub fn from_idx(images: impl AsRef<Path>, labels: Option<&Path>) -> Result<Dataset> {
        let images = images.as_ref();
        let x = idx::read_images(images)?;
        let mut d = Dataset { x, labels: None, targets: None, scaler: Scaler::None };
        if let Some(lp) = labels {
            let l = idx::read_labels(lp)?;
            if l.len() != d.rows() {
                return Err(shape!(
                    "{} holds {} images but {} holds {} labels",
                    images.display(),
                    d.rows(),
                    lp.display(),
                    l.len()
                ));
            }
            d.labels = Some(l);
        }
        Ok(d)
    }

    /// Rows from a NumPy `.npy` file (plain or gzip; shape `(n,)` or `(n, m)`, f4/f8 or
    /// integers, C or Fortran order), and labels from a second `.npy` file of integers (shape
    /// `(n,)`) if given. The counts must agree.
    pub fn from_npy(path: impl AsRef<Path>, labels: Option<&Path>) -> Result<Dataset> {
        let path = path.as_ref();
        let x = npy::read_matrix(path)?;
        let mut d = Dataset { x, labels: None, targets: None, scaler: Scaler::None };
        if let Some(lp) = labels {
            d.set_labels_from_npy(lp)?;
        }
        Ok(d)
    }

    /// Attaches labels read from a `.npy` file of integers (shape `(n,)` or `(n, 1)`, n = rows).
    pub fn set_labels_from_npy(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let lp = path.as_ref();
        let l = npy::read_labels(lp)?;
        if l.len() != self.rows() {
            return Err(shape!("the data has {} rows but {} holds {} labels", self.rows(), lp.display(), l.len()));
        }
        self.labels = Some(l);
        Ok(())
    }

    /// A numeric CSV/TSV file (plain or gzip); `opts.label_column` becomes the labels.
    pub fn from_csv(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Dataset> {
        let (x, labels) = csv::read(path.as_ref(), opts)?;
        Ok(Dataset { x, labels, targets: None, scaler: Scaler::None })
    }

    /// Attaches one label per row (replacing any).
    pub fn set_labels(&mut self, labels: Vec<i32>) -> Result<()> {
        if labels.len() != self.rows() {
            return Err(shape!("{} labels for {} rows", labels.len(), self.rows()));
        }
        self.labels = Some(labels);
        Ok(())
    }

    /// Attaches real-valued targets (rows x outputs, replacing any): what a regression network
    /// learns to predict. They are not scaled with the inputs.
    pub fn set_targets(&mut self, targets: Matrix) -> Result<()> {
        if targets.rows() != self.rows() {
            return Err(shape!("{} target rows for {} rows", targets.rows(), self.rows()));
        }
        targets.check_finite("targets")?;
        self.targets = Some(targets);
        Ok(())
    }

    pub fn targets(&self) -> Option<&Matrix> {
        self.targets.as_ref()
    }

    pub fn rows(&self) -> usize {
        self.x.rows()
    }
    pub fn cols(&self) -> usize {
        self.x.cols()
    }
    /// The samples, one per row.
    pub fn x(&self) -> &Matrix {
        &self.x
    }
    pub fn labels(&self) -> Option<&[i32]> {
        self.labels.as_deref()
    }
    /// The scaling applied so far (`Scaler::None` if none).
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }
    pub fn into_matrix(self) -> Matrix {
        self.x
    }

    fn check_unscaled(&self) -> Result<()> {
        if self.scaler != Scaler::None {
            return Err(invalid!(
                "the dataset is already scaled ({}); scaling it again would lose track of its units",
                self.scaler.method().name()
            ));
        }
        Ok(())
    }

    /// Fits `method` on this dataset, applies it, and keeps the fitted [`Scaler`] (see
    /// [`Dataset::scaler`]) for [`Dataset::apply_scaling`] on other data. A dataset is scaled
    /// once; `Scaling::None` is always accepted and changes nothing.
    pub fn scale(&mut self, method: Scaling) -> Result<()> {
        if method == Scaling::None {
            return Ok(());
        }
        self.check_unscaled()?;
        let s = Scaler::fit(method, &self.x)?;
        s.apply(&mut self.x)?;
        self.scaler = s;
        Ok(())
    }

    /// Applies statistics fitted elsewhere (typically the training set's `scaler()`) without
    /// refitting. The column counts must agree.
    pub fn apply_scaling(&mut self, scaler: &Scaler) -> Result<()> {
        if *scaler == Scaler::None {
            return Ok(());
        }
        self.check_unscaled()?;
        scaler.apply(&mut self.x)?;
        self.scaler = scaler.clone();
        Ok(())
    }

    fn gather(&self, index: &[usize]) -> Dataset {
        Dataset {
            x: self.x.gather_rows(index),
            labels: self.labels.as_ref().map(|l| index.iter().map(|&i| l[i]).collect()),
            targets: self.targets.as_ref().map(|t| t.gather_rows(index)),
            scaler: self.scaler.clone(),
        }
    }

    /// A seeded split: the second part gets round(fraction * rows) rows, the first the others;
    /// both keep the original order, the labels and the scaler. The same seed gives the same
    /// split (it is the trainer's validation split, `split_index`).
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        let (a, b) = split_index(self.rows(), fraction, seed)?;
        Ok((self.gather(&a), self.gather(&b)))
    }

    /// A copy of rows `first..first + count`, with their labels and the scaler.
    pub fn rows_range(&self, first: usize, count: usize) -> Result<Dataset> {
        let end = first
            .checked_add(count)
            .filter(|&e| e <= self.rows())
            .ok_or_else(|| invalid!("{count} rows from row {first} are outside the {} rows", self.rows()))?;
        Ok(Dataset {
            x: self.x.slice_rows(first, count),
            labels: self.labels.as_ref().map(|l| l[first..end].to_vec()),
            targets: self.targets.as_ref().map(|t| t.slice_rows(first, count)),
            scaler: self.scaler.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_major_f64_equals_row_major_f32() {
        // 3 x 2: rows (1, 2), (3, 4), (5, 6).
        let a = Dataset::from_buffer_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 2, false).unwrap();
        let b = Dataset::from_buffer_f64(&[1.0, 3.0, 5.0, 2.0, 4.0, 6.0], 3, 2, true).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.x().row(2), &[5.0, 6.0]);
        // Larger than one transpose tile, not a multiple of it.
        let (r, c) = (130, 70);
        let cm: Vec<f64> = (0..r * c).map(|i| i as f64).collect();
        let d = Dataset::from_buffer_f64(&cm, r, c, true).unwrap();
        for i in [0, 63, 64, 129] {
            for j in [0, 5, 64, 69] {
                assert_eq!(d.x().row(i)[j], (j * r + i) as f32);
            }
        }
    }

    fn non_finite(r: Result<Dataset>) -> String {
        match r {
            Err(Error::NonFinite(m)) => m,
            other => panic!("expected NonFinite, got {other:?}"),
        }
    }

    #[test]
    fn non_finite_values_are_named_by_row_and_column() {
        let m = non_finite(Dataset::from_buffer_f32(&[1.0, 2.0, 3.0, f32::NAN, 5.0, 6.0], 3, 2, false));
        assert_eq!(m, "data: row 1, column 1 is NaN");
        // Column-major: element 4 is row 1, column 1 as well.
        let m = non_finite(Dataset::from_buffer_f64(&[1.0, 2.0, 3.0, 4.0, f64::INFINITY, 6.0], 3, 2, true));
        assert_eq!(m, "data: row 1, column 1 is inf");
        let m = non_finite(Dataset::from_buffer_f64(&[1.0, 1e300], 1, 2, false));
        assert!(m.contains("row 0, column 1 is 1e300 (outside the f32 range)"), "{m}");
        let m = non_finite(Dataset::from_matrix(Matrix::from_vec(1, 2, vec![0.0, f32::NEG_INFINITY]).unwrap()));
        assert!(m.contains("row 0, column 1"), "{m}");
    }

    #[test]
    fn buffer_shapes_are_checked() {
        assert!(matches!(Dataset::from_buffer_f32(&[1.0; 5], 3, 2, false), Err(Error::ShapeMismatch(_))));
        assert!(matches!(Dataset::from_buffer_f32(&[], 0, 2, false), Err(Error::InvalidArgument(_))));
        assert!(matches!(Dataset::from_buffer_f32(&[1.0], usize::MAX, 2, false), Err(Error::InvalidArgument(_))));
        let mut d = Dataset::from_buffer_f32(&[1.0; 6], 3, 2, false).unwrap();
        assert!(matches!(d.set_labels(vec![1, 2]), Err(Error::ShapeMismatch(_))));
        d.set_labels(vec![1, 2, 3]).unwrap();
        assert_eq!(d.labels(), Some(&[1, 2, 3][..]));
    }

    fn numbered(rows: usize) -> Dataset {
        let v: Vec<f32> = (0..rows * 2).map(|i| i as f32).collect();
        let mut d = Dataset::from_buffer_f32(&v, rows, 2, false).unwrap();
        d.set_labels((0..rows as i32).map(|i| i * 10).collect()).unwrap();
        d
    }

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let d = numbered(101);
        let (a, b) = d.split(0.3, 7).unwrap();
        assert_eq!((a.rows(), b.rows()), (71, 30));
        assert_eq!(d.split(0.3, 7).unwrap(), (a.clone(), b.clone()));
        assert_ne!(d.split(0.3, 8).unwrap().1, b);
        let mut ids: Vec<i32> = a.labels().unwrap().iter().chain(b.labels().unwrap()).copied().collect();
        ids.sort();
        assert_eq!(ids, (0..101).map(|i| i * 10).collect::<Vec<_>>());
        // Rows travel with their labels.
        for part in [&a, &b] {
            for r in 0..part.rows() {
                let id = part.labels().unwrap()[r] / 10;
                assert_eq!(part.x().row(r), &[(2 * id) as f32, (2 * id + 1) as f32]);
            }
        }
        assert!(matches!(d.split(1.5, 0), Err(Error::InvalidArgument(_))));
        assert!(matches!(d.split(f64::NAN, 0), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn scaling_is_once_and_follows_splits_and_ranges() {
        let mut d = numbered(10);
        d.scale(Scaling::MinMax).unwrap();
        assert_eq!(d.x().row(9), &[1.0, 1.0]);
        assert!(matches!(d.scale(Scaling::ZScore), Err(Error::InvalidArgument(_))));
        let (a, b) = d.split(0.5, 1).unwrap();
        assert_eq!(a.scaler(), d.scaler());
        assert_eq!(b.scaler(), d.scaler());
        let r = d.rows_range(8, 2).unwrap();
        assert_eq!(r.x().row(1), &[1.0, 1.0]);
        assert_eq!(r.labels(), Some(&[80, 90][..]));
        assert_eq!(r.scaler(), d.scaler());
        assert!(matches!(d.rows_range(9, 2), Err(Error::InvalidArgument(_))));
        assert!(matches!(d.rows_range(usize::MAX, 2), Err(Error::InvalidArgument(_))));
        assert_eq!(d.rows_range(10, 0).unwrap().rows(), 0);
    }
}
