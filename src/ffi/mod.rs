//! The C ABI: a thin skin over the Rust API. Every exported function runs inside [`guard`],
//! which turns errors and panics into a `latent_status` and keeps the message for
//! `latent_last_error_message()`. Nothing else in the crate depends on this module.
//!
//! Conventions (README "API conventions"): names `latent_<object>_<verb>`; constants
//! `LATENT_<GROUP>_<NAME>`; fallible calls return `latent_status`; results go through trailing
//! out-parameters (handles set to NULL on failure); `_free(NULL)` is a no-op.

#![allow(clippy::missing_safety_doc, non_camel_case_types)]

pub mod buffer_rows;
pub mod checkpoint;
pub mod consts;
pub mod dataset;
pub mod device;
pub(crate) mod handle;
pub mod hash_index;
pub mod hashing;
pub mod inference_cache;
pub mod manifold;
pub mod matmul_precision;
pub mod metrics;
pub mod montecarlo;
pub mod network;
pub mod onnx;
pub mod pca;
pub mod picture;
pub mod pretrain;
pub mod psd;
pub mod rbm;
pub mod recirculation;
pub mod scaling;
pub mod stream;
pub mod trainer;
pub mod transfer;
pub mod types;
pub mod vae;
pub mod vae_error;
pub mod vae_objective;
pub mod wait_policy;

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Error, Result, invalid, shape};
use crate::tensor::{Matrix, checked_len};

pub use buffer_rows::*;
pub use consts::*;
pub use dataset::*;
pub use device::*;
pub use hash_index::*;
pub use hashing::*;
pub use inference_cache::*;
pub use manifold::*;
pub use matmul_precision::*;
pub use metrics::*;
pub use montecarlo::*;
pub use network::*;
pub use onnx::*;
pub use picture::*;
pub use pretrain::*;
pub use psd::*;
pub use rbm::*;
pub use recirculation::*;
pub use scaling::*;
pub use stream::*;
pub use trainer::*;
pub use transfer::*;
pub use types::*;
pub use vae::*;
pub use vae_error::*;
pub use vae_objective::*;
pub use wait_policy::*;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// How deep this thread is in calls into the library (callbacks may call back in).
    static IN_CALL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Installs (once) a panic hook that keeps the library silent: a panic inside a call into the
/// library, or on one of its pool threads, prints nothing (the guard turns it into
/// LATENT_STATUS_INTERNAL with the message); any other panic of the host goes to the hook
/// that was there before.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ours = IN_CALL.with(|d| d.get() > 0)
                || std::thread::current().name().is_some_and(|n| n.starts_with("latent-"));
            if !ours {
                previous(info);
            }
        }));
    });
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs `f` as a call into the library: a panic in it prints nothing (see [`quiet_panics`]).
fn in_call<R>(f: impl FnOnce() -> R) -> R {
    quiet_panics();
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            IN_CALL.with(|d| d.set(d.get() - 1));
        }
    }
    IN_CALL.with(|d| d.set(d.get() + 1));
    let _depth = Depth;
    f()
}

/// Runs `f`, mapping `Err` and panics to a status; clears the last error on success.
pub(crate) fn guard<F: FnOnce() -> Result<()>>(f: F) -> latent_status {
    match in_call(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(())) => {
            set_last_error("");
            LATENT_STATUS_OK
        }
        Ok(Err(e)) => {
            set_last_error(&e.to_string());
            e.status()
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!(
                "internal error (a bug in latent {}; please report it with this message): {what}",
                env!("CARGO_PKG_VERSION")
            ));
            LATENT_STATUS_INTERNAL
        }
    }
}

/// A shared reference from a handle or input pointer, or NullArgument naming it.
pub(crate) unsafe fn arg<'a, T>(p: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { p.as_ref() }.ok_or_else(|| Error::NullArgument(format!("{name} is NULL")))
}

/// An exclusive reference from a handle pointer, or NullArgument naming it.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { p.as_mut() }.ok_or_else(|| Error::NullArgument(format!("{name} is NULL")))
}

/// Checks an out-pointer is non-NULL.
pub(crate) fn out<T>(p: *mut T, name: &str) -> Result<()> {
    if p.is_null() { Err(Error::NullArgument(format!("{name} is NULL"))) } else { Ok(()) }
}

/// Writes through an out-pointer already checked by [`out`].
pub(crate) unsafe fn put<T>(p: *mut T, v: T) {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { p.write(v) }
}

/// A slice from pointer + length (NULL is accepted only for length 0).
pub(crate) unsafe fn slice<'a, T>(p: *const T, n: usize, name: &str) -> Result<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::NullArgument(format!("{name} is NULL")));
    }
    if n.checked_mul(std::mem::size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
        return Err(Error::InvalidArgument(format!("{name}: {n} elements overflow")));
    }
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// A mutable output slice from pointer + capacity, checked against what is needed.
pub(crate) unsafe fn out_slice<'a, T>(p: *mut T, capacity: usize, need: usize, name: &str) -> Result<&'a mut [T]> {
    if need == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::NullArgument(format!("{name} is NULL")));
    }
    if capacity < need {
        return Err(Error::BufferTooSmall(format!("{name} holds {capacity} elements, {need} are needed")));
    }
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, need) })
}

/// A path argument as UTF-8.
pub(crate) unsafe fn path<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::NullArgument(format!("{name} is NULL")));
    }
    // SAFETY: checked non-NULL; a NUL-terminated string (the C contract).
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| Error::InvalidArgument(format!("{name} is not valid UTF-8")))
}

/// Checks a handle out-pointer and sets it to NULL, so a failing call leaves NULL there.
pub(crate) unsafe fn clear<T>(p: *mut *mut T, name: &str) -> Result<()> {
    out(p, name)?;
    // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
    unsafe { put(p, std::ptr::null_mut()) };
    Ok(())
}

/// The body of a call that makes a new handle: `out` is checked and set to NULL first (so a
/// failure leaves NULL there), then *out = a handle of what `make` returns.
pub(crate) unsafe fn make_handle<H>(out: *mut *mut H, make: impl FnOnce() -> Result<H>) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(out, "out")? };
        let h = make()?;
        // SAFETY: the out-pointer was checked non-NULL (by `clear`) and is writable.
        unsafe { new_handle(out, h) };
        Ok(())
    })
}

/// make_handle() of a handle made from the object at `p` (named `name`), checked after `out`.
pub(crate) unsafe fn new_from<P, H>(
    p: *const P,
    name: &str,
    out: *mut *mut H,
    f: impl FnOnce(&P) -> Result<H>,
) -> latent_status {
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    unsafe { make_handle(out, || f(arg(p, name)?)) }
}

/// The body of latent_*_get_params: the `params` of the model that `read` gives of the handle
/// `h` (named `name`) are copied into `out` (`capacity` values).
pub(crate) unsafe fn get_params<'a, H: 'a, M, G: std::ops::Deref<Target = M>>(
    h: *const H,
    name: &str,
    out: *mut f32,
    capacity: usize,
    read: impl FnOnce(&'a H) -> Result<G>,
    params: fn(&M) -> &[f32],
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let m = read(unsafe { arg(h, name)? })?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(out, capacity, params(&m).len(), "out")? };
        dst.copy_from_slice(params(&m));
        Ok(())
    })
}

/// The body of latent_*_set_params: the handle `h` (named `name`) and then the `n` values at
/// `params` are checked, and `set` gives the values to the handle's model.
pub(crate) unsafe fn set_params<H>(
    h: *mut H,
    name: &str,
    params: *const f32,
    n: usize,
    set: impl FnOnce(&H, &[f32]) -> Result<()>,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(h, name)? };
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        set(h, unsafe { slice(params, n, "params")? })
    })
}

/// The body of a call that writes one value of a handle into an out-pointer: `out` (named
/// `out_name`) is checked first, then the handle `h` (named `name`), then *out = f(handle).
pub(crate) unsafe fn get_value<H, T>(
    h: *const H,
    name: &str,
    out: *mut T,
    out_name: &str,
    f: impl FnOnce(&H) -> Result<T>,
) -> latent_status {
    guard(|| {
        self::out(out, out_name)?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let v = f(unsafe { arg(h, name)? })?;
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(out, v) };
        Ok(())
    })
}

/// A 0/1 option from C as a bool.
pub(crate) fn flag(v: i32, name: &str) -> Result<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::InvalidArgument(format!("{name} must be 0 or 1, not {v}"))),
    }
}

/// Drops a handle made by [`new_handle`]; NULL is a no-op, and nothing unwinds into C.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let _ = in_call(|| catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(p) }))));
    }
}

/// Moves a value into a new handle written to `out`.
pub(crate) unsafe fn new_handle<T>(out: *mut *mut T, v: T) {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { out.write(Box::into_raw(Box::new(v))) }
}

/// The calling thread's message for its last failed call ("" after a success). Valid until the
/// thread's next call into the library.
#[unsafe(no_mangle)]
pub extern "C" fn latent_last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A static name for a status code ("LATENT_STATUS_OK", ...; "unknown status" otherwise).
#[unsafe(no_mangle)]
pub extern "C" fn latent_status_string(status: latent_status) -> *const c_char {
    let s: &'static CStr = match status {
        LATENT_STATUS_OK => c"LATENT_STATUS_OK",
        LATENT_STATUS_NULL_ARGUMENT => c"LATENT_STATUS_NULL_ARGUMENT",
        LATENT_STATUS_INVALID_ARGUMENT => c"LATENT_STATUS_INVALID_ARGUMENT",
        LATENT_STATUS_SHAPE_MISMATCH => c"LATENT_STATUS_SHAPE_MISMATCH",
        LATENT_STATUS_NON_FINITE => c"LATENT_STATUS_NON_FINITE",
        LATENT_STATUS_IO => c"LATENT_STATUS_IO",
        LATENT_STATUS_BAD_FORMAT => c"LATENT_STATUS_BAD_FORMAT",
        LATENT_STATUS_UNSUPPORTED => c"LATENT_STATUS_UNSUPPORTED",
        LATENT_STATUS_OUT_OF_MEMORY => c"LATENT_STATUS_OUT_OF_MEMORY",
        LATENT_STATUS_CANCELLED => c"LATENT_STATUS_CANCELLED",
        LATENT_STATUS_INTERNAL => c"LATENT_STATUS_INTERNAL",
        LATENT_STATUS_BUFFER_TOO_SMALL => c"LATENT_STATUS_BUFFER_TOO_SMALL",
        LATENT_STATUS_DIVERGED => c"LATENT_STATUS_DIVERGED",
        LATENT_STATUS_BUSY => c"LATENT_STATUS_BUSY",
        _ => c"unknown status",
    };
    s.as_ptr()
}

/// The library version as "MAJOR.MINOR.PATCH".
#[unsafe(no_mangle)]
pub extern "C" fn latent_version() -> *const c_char {
    static V: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => c"?",
    };
    V.as_ptr()
}

/// The version as one number: MAJOR * 10000 + MINOR * 100 + PATCH (compare with LATENT_VERSION_NUMBER).
#[unsafe(no_mangle)]
pub extern "C" fn latent_version_number() -> u32 {
    LATENT_VERSION_NUMBER
}

/// The ABI version this library was built with (compare with LATENT_ABI_VERSION from the header).
#[unsafe(no_mangle)]
pub extern "C" fn latent_abi_version() -> u32 {
    LATENT_ABI_VERSION
}

/// Test hook, not in the header: provokes a panic inside the guard (kind 0), on a pool thread
/// (kind 2), or returns an error (kind 1), so tests can check that no panic crosses the C boundary.
#[doc(hidden)]
#[unsafe(no_mangle)]
pub extern "C" fn latent_internal_test_panic(kind: i32) -> latent_status {
    guard(|| {
        if kind == 0 {
            panic!("test panic requested");
        }
        if kind == 2 {
            crate::pool::pool(2)?.install(|| rayon::join(|| panic!("pool panic requested"), || ()));
        }
        Err(Error::Internal("test error requested".into()))
    })
}

/// f64 from C to f32, rejecting NaN and values outside f32's range.
pub(crate) fn f32_of(v: f64, name: &str) -> crate::Result<f32> {
    if !v.is_finite() || v.abs() > f32::MAX as f64 {
        return Err(crate::error::invalid!("{name} = {v} is not a finite f32"));
    }
    Ok(v as f32)
}

// ---------------------------------------------------------------------------------------------
// Rows in, results out: the helpers every model's calls share.

/// Checks a layer count from C against MAX_LAYERS before the arrays it describes are read: a
/// wrong count must not walk past a caller's short array.
pub(crate) fn layer_count(n: u32, name: &str) -> Result<usize> {
    let max = crate::network::MAX_LAYERS;
    if n as usize > max {
        return Err(invalid!("{name} = {n} is more than {max} layers"));
    }
    Ok(n as usize)
}

/// snprintf-style string output shared by the C API.
pub(crate) unsafe fn write_string(s: &str, buf: *mut c_char, capacity: usize, needed: *mut usize) -> Result<()> {
    let bytes = s.as_bytes();
    if !needed.is_null() {
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(needed, bytes.len() + 1) };
    }
    if capacity > 0 {
        if buf.is_null() {
            return Err(Error::NullArgument("buf is NULL".into()));
        }
        let n = bytes.len().min(capacity - 1);
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, capacity) };
        dst[..n].copy_from_slice(&bytes[..n]);
        dst[n] = 0;
    }
    if capacity < bytes.len() + 1 {
        return Err(Error::BufferTooSmall(format!(
            "the string needs {} bytes, the buffer holds {capacity}",
            bytes.len() + 1
        )));
    }
    Ok(())
}

/// A copy of a caller's row-major f32 matrix, validated. Zero rows give an empty matrix (zero
/// columns are refused); the copy is allocated fallibly (OUT_OF_MEMORY, never an abort).
pub(crate) unsafe fn input_matrix(x: *const f32, rows: usize, cols: usize, name: &str) -> Result<Matrix> {
    if cols == 0 {
        return Err(invalid!("{name}: {rows} x {cols} has no columns"));
    }
    let n = checked_len(rows, cols)?;
    // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
    let s = unsafe { slice(x, n, name)? };
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::OutOfMemory(format!("{name}: no memory for a copy of {rows} x {cols} floats")))?;
    v.extend_from_slice(s);
    Matrix::from_vec(rows, cols, v)
}

/// Where the rows of an inference call come from.
#[derive(Clone, Copy)]
pub(crate) enum Rows {
    /// A caller's row-major matrix: pointer, rows, cols.
    Caller(*const f32, usize, usize),
    Dataset(*const latent_dataset),
}

impl Rows {
    /// (rows, cols) without copying anything.
    pub(crate) unsafe fn dims(self) -> Result<(usize, usize)> {
        match self {
            Rows::Caller(_, r, c) => Ok((r, c)),
            Rows::Dataset(d) => {
                // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
                let d = unsafe { arg(d, "dataset")? }.get();
                Ok((d.rows(), d.cols()))
            }
        }
    }

    /// Checks the columns against `width` and returns the row count: done before the output's
    /// capacity is checked and before anything is copied or computed.
    pub(crate) unsafe fn check(self, width: usize, model: &str) -> Result<usize> {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let (r, c) = unsafe { self.dims()? };
        if let Rows::Caller(..) = self
            && c == 0
        {
            return Err(invalid!("x: {r} x {c} has no columns"));
        }
        if c != width {
            return Err(shape!("the rows have {c} columns, the {model} expects {width}"));
        }
        Ok(r)
    }
}

/// Output values a call can check for overflow before handing them to the caller.
pub(crate) trait OutValue: Copy {
    fn finite(&self) -> bool;
}
impl OutValue for f32 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}
impl OutValue for f64 {
    fn finite(&self) -> bool {
        self.is_finite()
    }
}
impl OutValue for i32 {
    fn finite(&self) -> bool {
        true
    }
}
impl OutValue for u64 {
    fn finite(&self) -> bool {
        true
    }
}

/// NON_FINITE when a result computed from finite inputs overflowed (NaN or infinity), naming
/// the first such value: never OK with NaNs in the caller's buffer.
pub(crate) fn check_output<T: OutValue + std::fmt::Debug>(v: &[T], per_row: usize, what: &str) -> Result<()> {
    match v.iter().position(|x| !x.finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite(format!(
            "{what}: row {}, column {} is {:?}: the inputs are finite, the computation overflowed (huge inputs or parameters)",
            i / per_row.max(1),
            i % per_row.max(1),
            v[i]
        ))),
    }
}

/// `f` on the matrix the rows describe (a caller's rows are copied; a dataset's are borrowed).
pub(crate) unsafe fn with_rows<R>(rows: Rows, f: impl FnOnce(&Matrix) -> Result<R>) -> Result<R> {
    match rows {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        Rows::Caller(x, r, c) => f(&unsafe { input_matrix(x, r, c, "x")? }),
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        Rows::Dataset(d) => f(unsafe { arg(d, "dataset")? }.get().x()),
    }
}

/// with_rows() with the rows as the model takes them: in raw-input mode a caller's rows go
/// through the model's stored scaling ([`crate::preprocess`]); a dataset's rows are used as they
/// are (a dataset carries its own scaling).
pub(crate) unsafe fn with_model_rows<R>(
    rows: Rows,
    input: &crate::preprocess::InputScaling,
    f: impl FnOnce(&Matrix) -> Result<R>,
) -> Result<R> {
    match rows {
        Rows::Caller(x, r, c) => {
            // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
            let m = unsafe { input_matrix(x, r, c, "x")? };
            f(&*input.to_model(&m, false)?)
        }
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        Rows::Dataset(_) => unsafe { with_rows(rows, f) },
    }
}

/// The rows' part of an inference call: their columns (must be `width`; `kind` names the model)
/// and `out`'s capacity for rows x `per_row` values are checked before the rows are read
/// (through `scaling` when given, as [`with_model_rows`]; as they are otherwise) and `f` runs on
/// them; its result goes into `out`, a non-finite one being NON_FINITE.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn rows_into<T: OutValue + std::fmt::Debug>(
    rows: Rows,
    width: usize,
    kind: &str,
    scaling: Option<&crate::preprocess::InputScaling>,
    out: *mut T,
    capacity: usize,
    per_row: usize,
    f: impl FnOnce(&Matrix) -> Result<Vec<T>>,
) -> Result<()> {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    let r = unsafe { rows.check(width, kind)? };
    // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
    let dst = unsafe { out_slice(out, capacity, checked_len(r, per_row)?, "out")? };
    let res = match scaling {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        Some(s) => unsafe { with_model_rows(rows, s, f)? },
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        None => unsafe { with_rows(rows, f)? },
    };
    check_output(&res, per_row, "the result")?;
    dst.copy_from_slice(&res);
    Ok(())
}

/// INVALID_ARGUMENT for a mean over zero rows: an evaluation of an empty dataset has no value.
pub(crate) fn no_rows(rows: usize) -> Result<()> {
    if rows == 0 {
        return Err(invalid!("no rows: the dataset is empty, and a mean over zero rows has no value"));
    }
    Ok(())
}

/// Layer specs from a caller's arrays: `n` widths, activations (NULL: `default`) and stochastic
/// units (NULL: none), named `{what}_units` etc. in messages.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn layers(
    n: u32,
    units: *const u32,
    acts: *const i32,
    stochastic: *const i32,
    sigma: f32,
    default: crate::activation::Activation,
    what: &str,
) -> Result<Vec<crate::spec::LayerSpec>> {
    let n = layer_count(n, &format!("n_{what}"))?;
    // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
    let units = unsafe { slice(units, n, &format!("{what}_units"))? };
    // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
    let acts = if acts.is_null() { None } else { Some(unsafe { slice(acts, n, &format!("{what}_activations"))? }) };
    let st =
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        if stochastic.is_null() { None } else { Some(unsafe { slice(stochastic, n, &format!("{what}_stochastic"))? }) };
    (0..n)
        .map(|i| {
            let act = match acts {
                Some(a) => crate::activation::Activation::from_code(a[i])
                    .map_err(|e| e.context(format_args!("{what} layer {i}")))?,
                None => default,
            };
            let unit = match st {
                Some(s) => crate::layer::Stochastic::from_code(s[i], sigma)
                    .map_err(|e| e.context(format_args!("{what} layer {i}")))?,
                None => crate::layer::Stochastic::None,
            };
            Ok(crate::spec::LayerSpec::new(units[i] as usize, act).with(unit))
        })
        .collect()
}
