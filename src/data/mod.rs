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
//! - Data larger than memory ([`stream`]): [`stream::NpyStream`] reads `.npy` files (or shards)
//!   a window at a time while [`crate::Trainer::fit_source`] trains on them.
//! - Scaling ([`scale`]): fit on training data with [`Dataset::scale`], then give the same
//!   statistics to test data with [`Dataset::apply_scaling`].
//! - Finding real datasets on this machine: [`resolve`].
//!
//! Files are validated before anything is allocated from sizes they state.

#![forbid(unsafe_code)]

pub mod crc32;
pub mod csv;
pub mod dataset;
pub mod gzip;
pub mod idx;
pub mod npy;
pub mod resolve;
pub mod scale;
pub mod split;
pub mod stream;

pub use csv::CsvOptions;
pub use dataset::Dataset;
pub use scale::{Scaler, Scaling};

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The most bytes a data file (IDX, NPY, CSV) may hold, and the most its content may
/// decompress to: 2 GiB. A larger file is [`Error::BadFormat`], refused before it is read.
pub const MAX_DATA_FILE_BYTES: u64 = gzip::MAX_DECOMPRESSED as u64;

/// Opens `path` for reading if it is a regular file (after following symbolic links). It is
/// opened without blocking, so a FIFO with no writer cannot hang the caller, and checked by its
/// handle: anything else (a FIFO, a device such as `/dev/zero`, a directory, a socket) is
/// [`Error::Io`] "not a regular file", since only a file of known size can be checked before
/// it is read.
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK);
    }
    let file = o.open(path).map_err(|e| Error::io(path, e))?;
    let kind = file.metadata().map_err(|e| Error::io(path, e))?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_char_device() || kind.is_block_device() {
                "a device"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "not a file"
            }
        }
        #[cfg(not(unix))]
        "not a file"
    };
    Err(Error::Io(format!("{}: not a regular file ({what}); only regular files are read", path.display())))
}

/// The whole content of the regular file `path` ([`open_regular`]), at most `limit` bytes: a
/// larger file is [`Error::BadFormat`] "`n` bytes is larger than any `what`", refused before it
/// is read (and the read stops at the limit if the file grows meanwhile); memory that cannot
/// be had is [`Error::OutOfMemory`].
pub(crate) fn read_regular(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    read_regular_checked(path, limit, what, None)
}

/// [`read_regular`] of a file that must start with `magic` (the bytes it has of it): one that
/// does not is [`Error::BadFormat`] "`path`: `message`" after reading those bytes only, not
/// the whole file (a 3 GB file that is no model file cost 3 GB and 13 s before: an outside test).
pub(crate) fn read_regular_checked(
    path: &Path,
    limit: u64,
    what: &str,
    magic: Option<(&[u8], &str)>,
) -> Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let too_big =
        |n: u64| Error::BadFormat(format!("{}: {n} bytes is larger than any {what} (at most {limit})", path.display()));
    if len > limit {
        return Err(too_big(len));
    }
    let want = usize::try_from(len).map_err(|_| too_big(len))?;
    let oom = || Error::OutOfMemory(format!("{}: reading {len} bytes", path.display()));
    let mut bytes = Vec::new();
    if let Some((magic, message)) = magic {
        let mut head = vec![0u8; magic.len().min(want)];
        file.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
        if head[..] != magic[..head.len()] {
            return Err(Error::BadFormat(format!("{}: {message}", path.display())));
        }
        bytes = head;
    }
    bytes.try_reserve_exact(want - bytes.len()).map_err(|_| oom())?;
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::OutOfMemory => oom(),
        _ => Error::io(path, e),
    })?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A format error with this message.
pub(crate) fn bad(msg: String) -> Error {
    Error::BadFormat(msg)
}

/// Tests: the message of a format error (anything else panics).
#[cfg(test)]
pub(crate) fn bad_format<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Err(Error::BadFormat(m)) => m,
        other => panic!("expected BadFormat, got {other:?}"),
    }
}

/// Prefixes a format error with the file it came from (other errors already say enough).
pub(crate) fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::BadFormat(m) => Error::BadFormat(format!("{}: {m}", path.display())),
        other => other,
    }
}
