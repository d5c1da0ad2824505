//! `Matrix`: row-major f32 storage plus its shape. Rows are samples.

#![forbid(unsafe_code)]

use crate::error::{Error, Result, shape, try_zeros};

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// A zero matrix; fails (instead of aborting) when the allocation is impossible.
    pub fn zeros(rows: usize, cols: usize) -> Result<Matrix> {
        let n = checked_len(rows, cols)?;
        Ok(Matrix { rows, cols, data: try_zeros(n)? })
    }

    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Matrix> {
        let n = checked_len(rows, cols)?;
        if data.len() != n {
            return Err(shape!("{} values for a {rows} x {cols} matrix", data.len()));
        }
        Ok(Matrix { rows, cols, data })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }
    /// Rows `first..first + count` as a new matrix.
    pub fn slice_rows(&self, first: usize, count: usize) -> Matrix {
        let c = self.cols;
        Matrix { rows: count, cols: c, data: self.data[first * c..(first + count) * c].to_vec() }
    }
    /// The rows named by `index`, in that order.
    pub fn gather_rows(&self, index: &[usize]) -> Matrix {
        let c = self.cols;
        let mut data = Vec::with_capacity(index.len() * c);
        for &i in index {
            data.extend_from_slice(self.row(i));
        }
        Matrix { rows: index.len(), cols: c, data }
    }

    /// The first non-finite entry as (row, col), if any.
    pub fn first_non_finite(&self) -> Option<(usize, usize)> {
        let i = first_non_finite(&self.data)?;
        Some((i / self.cols.max(1), i % self.cols.max(1)))
    }

    pub fn check_finite(&self, what: &str) -> Result<()> {
        match self.first_non_finite() {
            None => Ok(()),
            Some((r, c)) => {
                Err(Error::NonFinite(format!("{what}: row {r}, column {c} is {}", self.data[r * self.cols + c])))
            }
        }
    }

    /// Checks `what` (these rows) has the `width` columns `model` ("the VAE") expects, all finite.
    pub(crate) fn check_width(&self, width: usize, what: &str, model: &str) -> Result<()> {
        if self.cols != width {
            return Err(shape!("{what} has {} columns, {model} expects {width}", self.cols));
        }
        self.check_finite(what)
    }
}

/// Checks a caller's parameters for a model of `n` (`what`: "the VAE"): the count, then that
/// every value is finite.
pub(crate) fn check_params(p: &[f32], n: usize, what: &str) -> Result<()> {
    if p.len() != n {
        return Err(shape!("{} parameters given, {what} has {n}", p.len()));
    }
    match first_non_finite(p) {
        Some(i) => Err(Error::NonFinite(format!("parameter {i} is {}", p[i]))),
        None => Ok(()),
    }
}

/// The index of the first NaN or infinity in `v`. Each block of values is tested whole, without
/// a branch per value, so that the test vectorizes: 256 rows of 784 took about 90 µs with
/// `position` (a branch per value), before every inference call's products.
pub fn first_non_finite(v: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    // Exponent all ones: infinity or NaN.
    let bad = |x: &f32| (x.to_bits() & 0x7f80_0000 == 0x7f80_0000) as u32;
    v.chunks(BLOCK).enumerate().find_map(|(k, c)| {
        if c.iter().map(bad).sum::<u32>() == 0 {
            None
        } else {
            c.iter().position(|x| bad(x) == 1).map(|i| k * BLOCK + i)
        }
    })
}

/// rows * cols, failing on overflow.
pub fn checked_len(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols)
        .filter(|&n| n <= isize::MAX as usize / 8)
        .ok_or_else(|| Error::InvalidArgument(format!("{rows} x {cols} overflows")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_non_finite_finds_the_first_nan_or_infinity_wherever_it_lies() {
        let n = 1000;
        assert_eq!(super::first_non_finite(&vec![1.0; n]), None);
        assert_eq!(super::first_non_finite(&[]), None);
        // The largest finite value and subnormals are finite.
        assert_eq!(super::first_non_finite(&[f32::MAX, f32::MIN, 1e-45, -0.0]), None);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
            for at in [0, 1, 255, 256, 257, 511, 999] {
                let mut v = vec![0.5f32; n];
                v[at] = bad;
                v[n - 1] = f32::NAN; // a later one is not the first
                let want = if at == n - 1 { n - 1 } else { at };
                assert_eq!(super::first_non_finite(&v), Some(want), "{bad} at {at}");
            }
        }
    }
}
