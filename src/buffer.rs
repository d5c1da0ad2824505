//! Matrices in a caller's element type and memory order: f32 or f64, row-major or column-major
//! (what R, Julia and Fortran hold), borrowed for one call. [`MatrixRef::to_matrix`] gives the
//! row-major f32 [`Matrix`] the models compute on (one checked copy, what every inference
//! makes of a caller's rows anyway); [`MatrixMut::write`] puts a row-major result straight into
//! the caller's storage in its own order and type. So an R double matrix is read and written
//! where R keeps it, without a dataset and without a transposed copy on the caller's side
//! (docs/r.md).
#![forbid(unsafe_code)]

use crate::data::Dataset;
use crate::error::{Result, invalid, shape};
use crate::tensor::{Matrix, checked_len};

/// How a matrix's values follow each other in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Row after row (C, NumPy's default): element (r, c) at r * cols + c.
    RowMajor,
    /// Column after column (R, Julia, Fortran): element (r, c) at c * rows + r.
    ColMajor,
}

impl Order {
    /// Where element (r, c) of a rows x cols matrix lies.
    pub fn index(self, r: usize, c: usize, rows: usize, cols: usize) -> usize {
        match self {
            Order::RowMajor => r * cols + c,
            Order::ColMajor => c * rows + r,
        }
    }
}

/// A caller's values, read-only.
#[derive(Clone, Copy, Debug)]
pub enum Elements<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl Elements<'_> {
    fn len(&self) -> usize {
        match self {
            Elements::F32(s) => s.len(),
            Elements::F64(s) => s.len(),
        }
    }
}

/// A rows x cols matrix borrowed in the caller's type and order.
#[derive(Clone, Copy, Debug)]
pub struct MatrixRef<'a> {
    data: Elements<'a>,
    rows: usize,
    cols: usize,
    order: Order,
}

impl<'a> MatrixRef<'a> {
    /// The matrix over `data`, which must hold exactly rows * cols values (SHAPE_MISMATCH
    /// otherwise). Zero columns are INVALID_ARGUMENT; zero rows are an empty matrix.
    pub fn new(data: Elements<'a>, rows: usize, cols: usize, order: Order) -> Result<MatrixRef<'a>> {
        if cols == 0 {
            return Err(invalid!("x: {rows} x {cols} has no columns"));
        }
        let n = checked_len(rows, cols)?;
        if data.len() != n {
            return Err(shape!("{} values for a {rows} x {cols} matrix", data.len()));
        }
        Ok(MatrixRef { data, rows, cols, order })
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn order(&self) -> Order {
        self.order
    }

    /// The values as a row-major f32 matrix: one copy (allocated fallibly, transposed in
    /// cache-sized tiles when column-major). NaN, infinity and f64 values beyond the f32 range
    /// are NON_FINITE, naming the (0-based) row and column.
    pub fn to_matrix(&self) -> Result<Matrix> {
        if self.rows == 0 {
            return Matrix::zeros(0, self.cols);
        }
        let col_major = self.order == Order::ColMajor;
        let d = match self.data {
            Elements::F32(s) => Dataset::from_buffer_f32(s, self.rows, self.cols, col_major)?,
            Elements::F64(s) => Dataset::from_buffer_f64(s, self.rows, self.cols, col_major)?,
        };
        Ok(d.into_matrix())
    }
}

/// A caller's writable values.
#[derive(Debug)]
pub enum ElementsMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
}

impl ElementsMut<'_> {
    fn len(&self) -> usize {
        match self {
            ElementsMut::F32(s) => s.len(),
            ElementsMut::F64(s) => s.len(),
        }
    }
}

/// A caller's output matrix in its own type and order; holds at least rows * cols values.
#[derive(Debug)]
pub struct MatrixMut<'a> {
    data: ElementsMut<'a>,
    rows: usize,
    cols: usize,
    order: Order,
}

impl<'a> MatrixMut<'a> {
    /// The rows x cols output over `data`; a shorter `data` is BUFFER_TOO_SMALL.
    pub fn new(data: ElementsMut<'a>, rows: usize, cols: usize, order: Order) -> Result<MatrixMut<'a>> {
        let n = checked_len(rows, cols)?;
        if data.len() < n {
            return Err(crate::error::Error::BufferTooSmall(format!(
                "the output needs {n} values ({rows} x {cols}), the buffer holds {}",
                data.len()
            )));
        }
        Ok(MatrixMut { data, rows, cols, order })
    }

    /// Writes the row-major `m` (of this output's shape) in the caller's order and type (f32
    /// to f64 is exact).
    pub fn write(&mut self, m: &Matrix) -> Result<()> {
        if m.rows() != self.rows || m.cols() != self.cols {
            return Err(shape!("a {} x {} result for a {} x {} output", m.rows(), m.cols(), self.rows, self.cols));
        }
        let (rows, cols, order) = (self.rows, self.cols, self.order);
        let src = m.as_slice();
        match &mut self.data {
            ElementsMut::F32(d) => scatter(src, d, rows, cols, order, |v| v),
            ElementsMut::F64(d) => scatter(src, d, rows, cols, order, f64::from),
        }
        Ok(())
    }
}

/// Copies row-major `src` into `dst` in `order`, converting each value.
fn scatter<T>(src: &[f32], dst: &mut [T], rows: usize, cols: usize, order: Order, conv: impl Fn(f32) -> T) {
    match order {
        Order::RowMajor => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = conv(s);
            }
        }
        Order::ColMajor => {
            // Tiles keep both sides in cache (as the transpose on the way in).
            const B: usize = 64;
            for r0 in (0..rows).step_by(B) {
                for c0 in (0..cols).step_by(B) {
                    for c in c0..(c0 + B).min(cols) {
                        for r in r0..(r0 + B).min(rows) {
                            dst[c * rows + r] = conv(src[r * cols + c]);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn col_major_f64_round_trips_exactly() {
        // 3 x 2 column-major: columns (1, 2, 3) and (4, 5, 6).
        let x = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = MatrixRef::new(Elements::F64(&x), 3, 2, Order::ColMajor).unwrap().to_matrix().unwrap();
        assert_eq!(m.as_slice(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let mut out = [0f64; 6];
        MatrixMut::new(ElementsMut::F64(&mut out), 3, 2, Order::ColMajor).unwrap().write(&m).unwrap();
        assert_eq!(out, x);
    }

    #[test]
    fn bad_sizes_and_values_are_refused() {
        let x = [1.0f64, f64::NAN, 3.0, 4.0];
        let e = MatrixRef::new(Elements::F64(&x), 2, 2, Order::ColMajor).unwrap().to_matrix().unwrap_err();
        assert!(e.to_string().contains("row 1, column 0"), "{e}");
        assert!(MatrixRef::new(Elements::F64(&x), 3, 2, Order::ColMajor).is_err());
        assert!(MatrixRef::new(Elements::F64(&[]), 0, 0, Order::ColMajor).is_err());
        let mut out = [0f32; 3];
        assert!(MatrixMut::new(ElementsMut::F32(&mut out), 2, 2, Order::RowMajor).is_err());
    }
}
