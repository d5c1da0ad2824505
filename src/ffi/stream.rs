//! C API of streamed training rows: the stream handle over `.npy` files, and the fit that reads
//! it.

use std::ffi::{c_char, c_void};
use std::path::PathBuf;

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::trainer::latent_trainer;
use super::*;
use crate::data::stream::{BlockShuffle, NpyStream};
use crate::error::Error;
use crate::train::{Progress, Snapshot, SnapshotWatch, Trainable};

/// Training rows read from `.npy` files while a fit runs (data larger than memory): one file,
/// or several with the same number of columns (shards, their rows one after the other). Only
/// the file headers are read when it is opened; a fit reads a window of rows at a time. One
/// call at a time: a call on a stream that a fit is reading returns LATENT_STATUS_BUSY.
pub struct latent_stream {
    inner: std::sync::Mutex<NpyStream>,
}

impl latent_stream {
    fn get(&self) -> crate::Result<std::sync::MutexGuard<'_, NpyStream>> {
        match self.inner.try_lock() {
            Ok(s) => Ok(s),
            Err(std::sync::TryLockError::Poisoned(e)) => Ok(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Err(Error::Busy(
                "the stream is being read by a fit: it takes no other call until the fit returns".into(),
            )),
        }
    }
}

/// Opens `path` for streaming: a `.npy` file, or a directory whose `*.npy` files (in name
/// order, not recursing) are the shards. Files must hold float32 or float64 ('<f4', '<f8'),
/// little-endian, in C order, of shape (n,) or (n, m): another dtype, byte order or Fortran
/// order, a malformed header or a size that does not match the file is
/// LATENT_STATUS_BAD_FORMAT; shards with different column counts LATENT_STATUS_SHAPE_MISMATCH;
/// a path that does not exist, is not a regular file, or a directory without `.npy` files
/// LATENT_STATUS_IO. There is no size limit: the rows are not read here. On failure *out is
/// NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_stream_open(path: *const c_char, out: *mut *mut latent_stream) -> latent_status {
    let make = || {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        Ok(latent_stream { inner: std::sync::Mutex::new(NpyStream::open(std::path::Path::new(p))?) })
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Opens the `n` `.npy` files `paths[0..n]` as the shards of one stream, their rows in this
/// order; each is checked as by latent_stream_open. n = 0 is LATENT_STATUS_INVALID_ARGUMENT;
/// a NULL entry LATENT_STATUS_NULL_ARGUMENT. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_stream_open_files(
    paths: *const *const c_char,
    n: usize,
    out: *mut *mut latent_stream,
) -> latent_status {
    let make = || {
        if n == 0 {
            return Err(crate::error::invalid!("n is 0: give at least one .npy file"));
        }
        // SAFETY: NULL is refused; otherwise the pointer holds `n` readable pointers (the C contract).
        let ps = unsafe { slice(paths, n, "paths")? };
        let mut files = Vec::with_capacity(ps.len());
        for (i, &p) in ps.iter().enumerate() {
            // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
            files.push(PathBuf::from(unsafe { super::path(p, &format!("paths[{i}]"))? }));
        }
        Ok(latent_stream { inner: std::sync::Mutex::new(NpyStream::open_files(&files)?) })
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Frees a stream (closing its files); NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_stream_free(stream: *mut latent_stream) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(stream) }
}

/// Rows of all the stream's files together (0 for NULL, or while a fit reads it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_stream_rows(stream: *const latent_stream) -> usize {
    use crate::data::stream::RowSource;
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { stream.as_ref() }.and_then(|s| s.get().ok()).map_or(0, |s| s.total_rows())
}

/// Columns of the stream's rows (0 for NULL, or while a fit reads it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_stream_cols(stream: *const latent_stream) -> usize {
    use crate::data::stream::RowSource;
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { stream.as_ref() }.and_then(|s| s.get().ok()).map_or(0, |s| s.cols())
}

/// Sets how fits shuffle the stream's rows: each epoch permutes blocks of `block_rows`
/// contiguous rows (seeded by the trainer's seed), then shuffles the rows within each window
/// of `window_blocks` consecutive blocks of that order. A fit holds one window in memory
/// (block_rows * window_blocks rows); when one window holds every row, the order is the full
/// shuffle of an in-memory fit with the same seed. Defaults: 1024 rows, 32 blocks. Zero, or a
/// window over 2^40 rows, is LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_stream_set_shuffle(
    stream: *mut latent_stream,
    block_rows: usize,
    window_blocks: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let s = unsafe { arg(stream, "stream")? };
        s.get()?.set_shuffle(BlockShuffle { block_rows, window_blocks })
    })
}

/// Trains `net` on the rows of `stream` as latent_trainer_fit trains it on a dataset (the
/// trainer's configuration, progress, cancelling, divergence alike), reading a window of rows
/// at a time (latent_stream_set_shuffle) so that memory holds the parameters, one window and
/// the minibatches, not the data. The rows are used as they are in the files (no scaling);
/// a supervised network's rows hold the inputs, then the targets. `valid` (may be NULL) gives
/// the validation rows, held in memory; a `validation_fraction` without `valid`, checkpoints
/// (checkpoint_path, latent_trainer_checkpoint), salt-and-pepper corruption, the first fit of
/// a network with functional layers, and a network on a GPU are LATENT_STATUS_UNSUPPORTED.
/// Rows are checked as they are read: NaN or Inf is LATENT_STATUS_NON_FINITE naming the file,
/// a read error or a file truncated since it was opened LATENT_STATUS_IO; both leave the
/// network, the trainer's history and its optimizer state as before the call. With MPI
/// (latent_trainer_set_mpi_comm) each rank reads only its contiguous slice of the rows
/// (rank r of n: rows r*N/n to (r+1)*N/n) and minibatch b is every rank's local minibatch b
/// (r's share of the batch size).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_trainer_fit_stream(
    trainer: *mut latent_trainer,
    net: *mut latent_network,
    stream: *mut latent_stream,
    valid: *const latent_dataset,
    progress: latent_progress_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let th = unsafe { arg(trainer, "trainer")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let sh = unsafe { arg(stream, "stream")? };
        let mut t = th.get()?;
        let mut s = sh.get()?;
        // SAFETY: NULL or a live object of this library (the C contract).
        let valid = unsafe { valid.as_ref() };
        let _in_fit = valid.map(|v| v.for_fit());
        let mut host = n.fit()?;
        let valid_rows = valid.map(|v| host.training_rows(v.get(), "the validation data")).transpose()?;
        let mut c_cb = |p: &Progress, snap: &Snapshot<crate::network::Network>| {
            // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
            n.lend(snap.model, || unsafe { super::trainer::call_progress(progress, user, p) })
        };
        let cb: SnapshotWatch<crate::network::Network> = if progress.is_some() { Some(&mut c_cb) } else { None };
        n.device.fit_source(&mut t, &mut host, &mut *s, valid_rows.as_deref(), cb)
    })
}
