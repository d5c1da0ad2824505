//! The one error type of the Rust API and its mapping to the C status codes.

#![forbid(unsafe_code)]

use thiserror::Error;

/// Status codes of the C API (`latent_status`). The numbering is frozen: new codes go at the end.
pub mod status {
    pub const OK: i32 = 0;
    pub const NULL_ARGUMENT: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 2;
    pub const SHAPE_MISMATCH: i32 = 3;
    pub const NON_FINITE: i32 = 4;
    pub const IO: i32 = 5;
    pub const BAD_FORMAT: i32 = 6;
    pub const UNSUPPORTED: i32 = 7;
    pub const OUT_OF_MEMORY: i32 = 8;
    pub const CANCELLED: i32 = 9;
    pub const INTERNAL: i32 = 10;
    pub const BUFFER_TOO_SMALL: i32 = 11;
    pub const DIVERGED: i32 = 12;
    pub const BUSY: i32 = 13;
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    #[error("null argument: {0}")]
    NullArgument(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    #[error("non-finite value: {0}")]
    NonFinite(String),
    #[error("I/O error: {0}")]
    Io(String),
    #[error("bad file format: {0}")]
    BadFormat(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error("cancelled by the progress callback")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("buffer too small: {0}")]
    BufferTooSmall(String),
    #[error("training diverged: {0}")]
    Diverged(String),
    #[error("busy: {0}")]
    Busy(String),
}

impl Error {
    pub fn status(&self) -> i32 {
        match self {
            Error::NullArgument(_) => status::NULL_ARGUMENT,
            Error::InvalidArgument(_) => status::INVALID_ARGUMENT,
            Error::ShapeMismatch(_) => status::SHAPE_MISMATCH,
            Error::NonFinite(_) => status::NON_FINITE,
            Error::Io(_) => status::IO,
            Error::BadFormat(_) => status::BAD_FORMAT,
            Error::Unsupported(_) => status::UNSUPPORTED,
            Error::OutOfMemory(_) => status::OUT_OF_MEMORY,
            Error::Cancelled => status::CANCELLED,
            Error::Internal(_) => status::INTERNAL,
            Error::BufferTooSmall(_) => status::BUFFER_TOO_SMALL,
            Error::Diverged(_) => status::DIVERGED,
            Error::Busy(_) => status::BUSY,
        }
    }

    /// The message without the kind's prefix ("invalid argument: " ...).
    pub fn message(&self) -> String {
        match self {
            Error::NullArgument(m)
            | Error::InvalidArgument(m)
            | Error::ShapeMismatch(m)
            | Error::NonFinite(m)
            | Error::Io(m)
            | Error::BadFormat(m)
            | Error::Unsupported(m)
            | Error::OutOfMemory(m)
            | Error::Internal(m)
            | Error::BufferTooSmall(m)
            | Error::Diverged(m)
            | Error::Busy(m) => m.clone(),
            Error::Cancelled => self.to_string(),
        }
    }

    /// The same kind of error with `ctx: ` before its message, so that a wrapped error reads
    /// "invalid argument: encoder layer 0: activation code 42 ..." with one prefix.
    pub(crate) fn context(self, ctx: impl std::fmt::Display) -> Error {
        let m = |s: String| format!("{ctx}: {s}");
        match self {
            Error::NullArgument(s) => Error::NullArgument(m(s)),
            Error::InvalidArgument(s) => Error::InvalidArgument(m(s)),
            Error::ShapeMismatch(s) => Error::ShapeMismatch(m(s)),
            Error::NonFinite(s) => Error::NonFinite(m(s)),
            Error::Io(s) => Error::Io(m(s)),
            Error::BadFormat(s) => Error::BadFormat(m(s)),
            Error::Unsupported(s) => Error::Unsupported(m(s)),
            Error::OutOfMemory(s) => Error::OutOfMemory(m(s)),
            Error::Cancelled => Error::Cancelled,
            Error::Internal(s) => Error::Internal(m(s)),
            Error::BufferTooSmall(s) => Error::BufferTooSmall(m(s)),
            Error::Diverged(s) => Error::Diverged(m(s)),
            Error::Busy(s) => Error::Busy(m(s)),
        }
    }

    pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> Error {
        Error::Io(format!("{}: {e}", path.display()))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// `Error::InvalidArgument` with a formatted message.
macro_rules! invalid {
    ($($t:tt)*) => { $crate::error::Error::InvalidArgument(format!($($t)*)) };
}
pub(crate) use invalid;

/// `Error::ShapeMismatch` with a formatted message.
macro_rules! shape {
    ($($t:tt)*) => { $crate::error::Error::ShapeMismatch(format!($($t)*)) };
}
pub(crate) use shape;

/// Allocates a zeroed vector, reporting failure as an error instead of aborting the host.
pub fn try_zeros<T: Clone + Default>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::OutOfMemory(format!("{n} elements of {} bytes", std::mem::size_of::<T>())))?;
    v.resize(n, T::default());
    Ok(v)
}

/// `from..from + n` collected, reporting a failed allocation as an error (row orders over a
/// stream of billions of rows).
pub fn try_range<T: TryFrom<usize>>(from: usize, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::OutOfMemory(format!("an order of {n} rows ({} bytes each)", std::mem::size_of::<T>())))?;
    for i in from..from + n {
        v.push(T::try_from(i).map_err(|_| invalid!("row {i} does not fit the row index type"))?);
    }
    Ok(v)
}
