//! Data in: a [`Dataset`] holds the samples (one row each, f32), optional integer labels and the
//! scaling they went through.
//!
//! - From memory: [`Dataset::from_matrix`], [`Dataset::from_buffer_f32`],
//!   [`Dataset::from_buffer_f64`] (row- or column-major, copied; NaN/Inf rejected with the row
//!   and column named).
//! - From files: [`Dataset::from_idx`] (MNIST/Fashion-MNIST IDX, [`idx`]) and
//!   [`Dataset::from_csv`] (numeric CSV/TSV, [`csv`]), both plain or gzip-compressed
//!   ([`gzip`], recognised by content, checked by CRC-32 ([`crc32`]) and size).
//! - NumPy `.npy` files ([`npy`], versions 1.0-3.0, f4/f8 and integer dtypes, C or Fortran
//!   order, plain or gzip): [`Dataset::from_npy`].
//! - Scaling ([`scale`]): fit on training data with [`Dataset::scale`], then give the same
//!   statistics to test data with [`Dataset::apply_scaling`].
//! - Finding real datasets on this machine: [`resolve`].
//!
//! Files are validated before anything is allocated from sizes they state.

pub mod crc32;
pub mod csv;
pub mod dataset;
pub mod gzip;
pub mod idx;
pub mod npy;
pub mod resolve;
pub mod scale;

pub use csv::CsvOptions;
pub use dataset::Dataset;
pub use scale::{Scaler, Scaling};

use crate::error::Error;
use std::path::Path;

/// Prefixes a format error with the file it came from (other errors already say enough).
pub(crate) fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::BadFormat(m) => Error::BadFormat(format!("{}: {m}", path.display())),
        other => other,
    }
}
