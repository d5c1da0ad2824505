//! C API of the dataset handle, and the data resolver for C programs.

use std::ffi::{c_char, c_void};
use std::path::Path;

use super::*;
use crate::data::{CsvOptions, Dataset, Scaler, Scaling, resolve};
use crate::error::{Error, Result, invalid};
use crate::tensor::{Matrix, checked_len};

/// Samples (rows of float), optional int32 labels, and the scaling they went through. Calls
/// that only read a dataset (sizes, copies, training or encoding with it) may run on one
/// dataset from many threads at once; calls that change it (set_labels, scale, apply_scaling)
/// must not overlap any other call on it; from the progress callback of a fit that reads the
/// dataset they return LATENT_STATUS_BUSY.
pub struct latent_dataset {
    inner: Dataset,
    /// Fits reading this dataset now (their callbacks must not change it).
    in_fit: std::sync::atomic::AtomicUsize,
}

/// Marks a dataset as read by a fit until dropped.
pub(crate) struct InFit<'a>(&'a latent_dataset);

impl Drop for InFit<'_> {
    fn drop(&mut self) {
        self.0.in_fit.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl latent_dataset {
    pub(crate) fn new(d: Dataset) -> latent_dataset {
        latent_dataset { inner: d, in_fit: Default::default() }
    }
    pub(crate) fn get(&self) -> &Dataset {
        &self.inner
    }
    /// The dataset for a fit: changes to it are BUSY until the guard drops.
    pub(crate) fn for_fit(&self) -> InFit<'_> {
        self.in_fit.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        InFit(self)
    }
}

/// The dataset behind `p` for a change, or BUSY while a fit reads it (checked through a shared
/// reference first: a fit's callback must not get `&mut` to what the fit is reading).
unsafe fn dataset_mut<'a>(p: *mut latent_dataset, name: &str) -> Result<&'a mut latent_dataset> {
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    let shared = unsafe { arg(p as *const latent_dataset, name)? };
    if shared.in_fit.load(std::sync::atomic::Ordering::Acquire) > 0 {
        return Err(Error::Busy(format!("{name} is being trained on: it cannot change until the fit returns")));
    }
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    unsafe { arg_mut(p, name) }
}

/// Options of latent_dataset_from_csv(). Get the defaults from latent_csv_params_default()
/// and edit.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_csv_params {
    /// Field separator: ',' (default), '\t', ';', ... or ' ' for runs of spaces and tabs.
    pub delimiter: c_char,
    /// 1: the first non-blank line is a header and is skipped. Default 0.
    pub has_header: i32,
    /// 0-based column holding integral class labels, taken out of the features; -1 (default):
    /// no labels.
    pub label_column: i32,
}

/// The defaults: comma-separated, no header, no label column.
#[unsafe(no_mangle)]
pub extern "C" fn latent_csv_params_default() -> latent_csv_params {
    latent_csv_params { delimiter: b',' as c_char, has_header: 0, label_column: -1 }
}

fn csv_options(p: &latent_csv_params) -> Result<CsvOptions> {
    let has_header = match p.has_header {
        0 => false,
        1 => true,
        v => return Err(invalid!("has_header must be 0 or 1, not {v}")),
    };
    let label_column = match p.label_column {
        -1 => None,
        c if c >= 0 => Some(c as usize),
        c => {
            return Err(invalid!("label_column must be -1 (none) or a 0-based column, not {c}"));
        }
    };
    let o = CsvOptions { delimiter: p.delimiter as u8, has_header, label_column };
    o.validate()?;
    Ok(o)
}

/// Copies a rows x cols matrix of `dtype` (LATENT_DTYPE_F32 or _F64) stored in `layout`
/// (LATENT_LAYOUT_ROW_MAJOR or _COL_MAJOR, as R, Julia and Fortran hold them) into a new
/// dataset; `data` is not used after the call. NaN or Inf fails with LATENT_STATUS_NON_FINITE,
/// the message naming the (0-based) row and column; so do f64 values beyond the float range.
/// On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_from_buffer(
    data: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    out: *mut *mut latent_dataset,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    let make =
        || Ok(latent_dataset::new(Dataset::from_matrix(unsafe { buffer_matrix(data, dtype, layout, rows, cols)? })?));
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Attaches real-valued targets to a dataset (replacing any): `rows` (= the dataset's rows) x
/// `cols` values of `dtype` in `layout`, as latent_dataset_from_buffer reads them. A regression
/// network (LATENT_TASK_REGRESS with `outputs` = cols) trains to predict them. They are not
/// scaled with the inputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_set_targets(
    dataset: *mut latent_dataset,
    data: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let d = unsafe { dataset_mut(dataset, "dataset")? };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let m = unsafe { buffer_matrix(data, dtype, layout, rows, cols)? };
        d.inner.set_targets(m)
    })
}

/// Columns of the dataset's targets (0: none).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_target_cols(dataset: *const latent_dataset) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { dataset.as_ref() }.and_then(|d| d.get().targets().map(|t| t.cols())).unwrap_or(0)
}

/// A caller's matrix of `dtype` in `layout`, copied and checked.
unsafe fn buffer_matrix(
    data: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
) -> Result<Matrix> {
    {
        if rows == 0 || cols == 0 {
            return Err(invalid!("rows ({rows}) and cols ({cols}) must both be at least 1"));
        }
        let n = checked_len(rows, cols)?;
        let col_major = match layout {
            LATENT_LAYOUT_ROW_MAJOR => false,
            LATENT_LAYOUT_COL_MAJOR => true,
            l => {
                return Err(invalid!("layout {l} is neither LATENT_LAYOUT_ROW_MAJOR (0) nor _COL_MAJOR (1)"));
            }
        };
        let align = match dtype {
            LATENT_DTYPE_F32 => std::mem::align_of::<f32>(),
            LATENT_DTYPE_F64 => std::mem::align_of::<f64>(),
            t => {
                return Err(invalid!("dtype {t} is neither LATENT_DTYPE_F32 (0) nor LATENT_DTYPE_F64 (1)"));
            }
        };
        if data.is_null() {
            return Err(Error::NullArgument("data is NULL".into()));
        }
        if !(data as usize).is_multiple_of(align) {
            return Err(invalid!("data is not aligned for its dtype ({align} bytes)"));
        }
        let d = if dtype == LATENT_DTYPE_F32 {
            // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
            Dataset::from_buffer_f32(unsafe { slice(data as *const f32, n, "data")? }, rows, cols, col_major)?
        } else {
            // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
            Dataset::from_buffer_f64(unsafe { slice(data as *const f64, n, "data")? }, rows, cols, col_major)?
        };
        Ok(d.into_matrix())
    }
}

/// Reads images from an IDX file (MNIST layout; gzip-compressed or not, detected by content)
/// as rows of pixel values 0..255 (unscaled: call latent_dataset_scale with
/// LATENT_SCALING_DIVIDE_255), and labels from `labels_path` (may be NULL). Truncated,
/// corrupt (CRC-32) or inconsistent files fail with LATENT_STATUS_BAD_FORMAT; image and label
/// counts that differ with LATENT_STATUS_SHAPE_MISMATCH.
/// Only a regular file is read (a symbolic link to one is followed): a FIFO, a device or a
/// directory fails at once with LATENT_STATUS_IO "not a regular file" (it is opened without
/// blocking). A file larger than 2 GiB, or whose content decompresses to more, is
/// LATENT_STATUS_BAD_FORMAT, refused before it is read.
/// Memory that cannot be had is LATENT_STATUS_OUT_OF_MEMORY. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_from_idx(
    images_path: *const c_char,
    labels_path: *const c_char,
    out: *mut *mut latent_dataset,
) -> latent_status {
    let make = || {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let images = unsafe { path(images_path, "images_path")? };
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let labels = if labels_path.is_null() { None } else { Some(unsafe { path(labels_path, "labels_path")? }) };
        Ok(latent_dataset::new(Dataset::from_idx(images, labels.map(Path::new))?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Reads a NumPy .npy file (what np.save writes; format 1.0, 2.0 or 3.0; gzip-compressed or
/// not) of shape (n,) (n rows of 1 column) or (n, m), dtype float32 or float64 (or an integer
/// type), either byte order, C or Fortran order, and labels (may be NULL) from a .npy file of
/// integers of shape (n,). A malformed file (bad magic, truncated, an unknown dtype, another
/// rank, a size that does not match the data) fails with LATENT_STATUS_BAD_FORMAT, NaN or Inf
/// with LATENT_STATUS_NON_FINITE naming the (0-based) row and column, row and label counts
/// that differ with LATENT_STATUS_SHAPE_MISMATCH. Files are read as by latent_dataset_from_idx
/// (regular files only, at most 2 GiB of content). On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_from_npy(
    path: *const c_char,
    labels_path: *const c_char,
    out: *mut *mut latent_dataset,
) -> latent_status {
    let make = || {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        let labels =
            // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
            if labels_path.is_null() { None } else { Some(unsafe { super::path(labels_path, "labels_path")? }) };
        Ok(latent_dataset::new(Dataset::from_npy(p, labels.map(Path::new))?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Reads a numeric CSV/TSV file (gzip-compressed or not, detected by content) with `params`
/// (NULL for the defaults). A field that is not a finite number, or a row with another number
/// of fields, fails with LATENT_STATUS_BAD_FORMAT naming the line and column (both from 1).
/// The file is read as by latent_dataset_from_idx (regular files only, at most 2 GiB of
/// content); values that do not fit in memory give LATENT_STATUS_OUT_OF_MEMORY. On failure *out
/// is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_from_csv(
    path: *const c_char,
    params: *const latent_csv_params,
    out: *mut *mut latent_dataset,
) -> latent_status {
    let make = || {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        // SAFETY: NULL or a live object of this library (the C contract).
        let opts = match unsafe { params.as_ref() } {
            Some(params) => csv_options(params)?,
            None => CsvOptions::default(),
        };
        Ok(latent_dataset::new(Dataset::from_csv(p, &opts)?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, make) }
}

/// Frees a dataset; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_free(dataset: *mut latent_dataset) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(dataset) }
}

/// Number of rows (samples); 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_rows(dataset: *const latent_dataset) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { dataset.as_ref() }.map_or(0, |d| d.get().rows())
}

/// Number of columns (features per sample); 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_cols(dataset: *const latent_dataset) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { dataset.as_ref() }.map_or(0, |d| d.get().cols())
}

/// 1 if the dataset has labels, 0 if not or NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_has_labels(dataset: *const latent_dataset) -> i32 {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { dataset.as_ref() }.is_some_and(|d| d.get().labels().is_some()) as i32
}

/// The scaling applied to the dataset (LATENT_SCALING_NONE if none, or for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_scaling(dataset: *const latent_dataset) -> latent_scaling {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { dataset.as_ref() }.map_or(LATENT_SCALING_NONE, |d| d.get().scaler().method().code())
}

/// Copies the labels (latent_dataset_rows of them) into `out`. A dataset without labels fails
/// with LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_labels(
    dataset: *const latent_dataset,
    out: *mut i32,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(dataset, "dataset")? }.get();
        let l = d.labels().ok_or_else(|| invalid!("the dataset has no labels"))?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(out, capacity, l.len(), "out")? };
        dst.copy_from_slice(l);
        Ok(())
    })
}

/// Attaches one label per row (`n` must equal latent_dataset_rows), replacing any; the array
/// is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_set_labels(
    dataset: *mut latent_dataset,
    labels: *const i32,
    n: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let d = unsafe { dataset_mut(dataset, "dataset")? };
        // The count is checked before the array is read or copied.
        if n != d.inner.rows() {
            return Err(crate::error::shape!("{n} labels for {} rows", d.inner.rows()));
        }
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let l = unsafe { slice(labels, n, "labels")? };
        let mut v = crate::error::try_zeros::<i32>(n)?;
        v.copy_from_slice(l);
        d.inner.set_labels(v)
    })
}

/// Copies rows first .. first+count, row-major float (count * latent_dataset_cols values),
/// into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_copy_rows(
    dataset: *const latent_dataset,
    first: usize,
    count: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let x = unsafe { arg(dataset, "dataset")? }.get().x();
        let end = first
            .checked_add(count)
            .filter(|&e| e <= x.rows())
            .ok_or_else(|| invalid!("{count} rows from row {first} are outside the dataset's {} rows", x.rows()))?;
        let c = x.cols();
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(out, capacity, count * c, "out")? };
        dst.copy_from_slice(&x.as_slice()[first * c..end * c]);
        Ok(())
    })
}

/// Fits `method` (LATENT_SCALING_*) on this dataset and applies it; the fitted statistics
/// stay with the dataset for latent_dataset_apply_scaling(). A dataset is scaled once (a
/// second scaling fails with LATENT_STATUS_INVALID_ARGUMENT); LATENT_SCALING_NONE changes
/// nothing. Constant columns become 0 under MIN_MAX and Z_SCORE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_scale(dataset: *mut latent_dataset, method: latent_scaling) -> latent_status {
    guard(|| {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let d = unsafe { dataset_mut(dataset, "dataset")? };
        d.inner.scale(Scaling::from_code(method)?)
    })
}

/// Applies the scaling fitted on `fitted` (typically the training set, after
/// latent_dataset_scale) to `dst` (test or new data), without refitting. `fitted` must have
/// been scaled and have as many columns as `dst` (LATENT_STATUS_INVALID_ARGUMENT,
/// LATENT_STATUS_SHAPE_MISMATCH otherwise).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_apply_scaling(
    dst: *mut latent_dataset,
    fitted: *const latent_dataset,
) -> latent_status {
    guard(|| {
        if !dst.is_null() && std::ptr::eq(dst, fitted) {
            return Err(invalid!("dst and fitted are the same dataset"));
        }
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let s: Scaler = unsafe { arg(fitted, "fitted")? }.get().scaler().clone();
        if s == Scaler::None {
            return Err(invalid!("fitted has not been scaled: call latent_dataset_scale on it first"));
        }
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let d = unsafe { dataset_mut(dst, "dst")? };
        d.inner.apply_scaling(&s)
    })
}

/// Applies a fitted scaling to a dataset (a model's stored one: crate::ffi::scaling).
pub(crate) unsafe fn apply_scaler(dst: *mut latent_dataset, s: &Scaler) -> Result<()> {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    let d = unsafe { dataset_mut(dst, "dataset")? };
    d.inner.apply_scaling(s)
}

/// Splits the rows in two new datasets with a seeded shuffle: `second` gets
/// round(fraction * rows) rows, `first` the rest; both keep the original order, the labels and
/// the scaling. The same seed gives the same split. On failure both are NULL. A fraction of 0
/// or 1 (or one that rounds to no row) leaves one part with zero rows: inference on it returns
/// LATENT_STATUS_OK with nothing written, while an evaluation (loss, mse, metrics, evaluate,
/// ELBO, IWAE bound) or a fit with it as validation data gives LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_dataset_split(
    dataset: *const latent_dataset,
    fraction: f64,
    seed: u64,
    first: *mut *mut latent_dataset,
    second: *mut *mut latent_dataset,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(first, "first")? };
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(second, "second")? };
        if std::ptr::eq(first, second) {
            return Err(invalid!("first and second point to the same place"));
        }
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let (a, b) = unsafe { arg(dataset, "dataset")? }.get().split(fraction, seed)?;
        // SAFETY: the out-pointer was checked non-NULL (by `clear`) and is writable.
        unsafe { new_handle(first, latent_dataset::new(a)) };
        // SAFETY: the out-pointer was checked non-NULL (by `clear`) and is writable.
        unsafe { new_handle(second, latent_dataset::new(b)) };
        Ok(())
    })
}

/// Finds the dataset file or directory `name` ("mnist", "fashion-mnist",
/// "digits/digits.csv.gz", ...) under $LATENT_DATA_DIR, then ../shared/data (next to the
/// library's sources, then from the current directory), then /usr/share/datasets (Debian's
/// dataset-fashion-mnist package), and writes its absolute path, NUL-terminated, to `buf`.
/// `needed` (may be NULL) receives the buffer size the path needs, terminator included (0 when
/// not found); a smaller `capacity` fails with LATENT_STATUS_BUFFER_TOO_SMALL (`buf` may be NULL
/// with `capacity` 0 to ask for the size). Not found: LATENT_STATUS_IO, the message listing
/// where it looked and how to provide the data. `name` must be a relative path inside those
/// directories: an absolute one, or one with a `..` component, is
/// LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_data_find(
    name: *const c_char,
    buf: *mut c_char,
    capacity: usize,
    needed: *mut usize,
) -> latent_status {
    guard(|| {
        if !needed.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(needed, 0) };
        }
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let name = unsafe { path(name, "name")? };
        let found = resolve::require(name)?;
        let mut bytes = crate::data::resolve::path_bytes(&found)?;
        bytes.push(0);
        if !needed.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(needed, bytes.len()) };
        }
        if capacity < bytes.len() {
            return Err(Error::BufferTooSmall(format!(
                "buf holds {capacity} bytes, the path {} needs {}",
                found.display(),
                bytes.len()
            )));
        }
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(buf as *mut u8, capacity, bytes.len(), "buf")? };
        dst.copy_from_slice(&bytes);
        Ok(())
    })
}
