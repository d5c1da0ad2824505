//! C API of inference on a caller's matrix in its own element type and memory order (f32 or
//! f64, row- or column-major: an R or Julia matrix as it is), read and written in place through
//! [`crate::buffer`]: no dataset, no transposed copy on the caller's side (docs/r.md).

use std::ffi::c_void;

use super::network::latent_network;
use super::*;
use crate::buffer::{Elements, ElementsMut, MatrixMut, MatrixRef, Order};
use crate::error::{Result, invalid, shape};
use crate::network::Network;
use crate::placement::RowsCall;
use crate::tensor::{Matrix, checked_len};

/// The memory order of a LATENT_LAYOUT_* value.
fn order_of(layout: latent_layout) -> Result<Order> {
    match layout {
        LATENT_LAYOUT_ROW_MAJOR => Ok(Order::RowMajor),
        LATENT_LAYOUT_COL_MAJOR => Ok(Order::ColMajor),
        l => Err(invalid!("layout {l} is neither LATENT_LAYOUT_ROW_MAJOR (0) nor _COL_MAJOR (1)")),
    }
}

/// Checks a LATENT_DTYPE_* value; true for f64.
fn is_f64(dtype: latent_dtype) -> Result<bool> {
    match dtype {
        LATENT_DTYPE_F32 => Ok(false),
        LATENT_DTYPE_F64 => Ok(true),
        t => Err(invalid!("dtype {t} is neither LATENT_DTYPE_F32 (0) nor LATENT_DTYPE_F64 (1)")),
    }
}

/// Zero columns are INVALID_ARGUMENT, other widths than the network's SHAPE_MISMATCH.
fn check_width(rows: usize, cols: usize, width: usize) -> Result<()> {
    if cols == 0 {
        return Err(invalid!("x: {rows} x {cols} has no columns"));
    }
    if cols != width {
        return Err(shape!("the rows have {cols} columns, the network expects {width}"));
    }
    Ok(())
}

/// NULL and misaligned pointers to a non-empty buffer are refused.
fn check_ptr(p: *const c_void, f64: bool, need: usize, name: &str) -> Result<()> {
    if need > 0 && p.is_null() {
        return Err(crate::error::Error::NullArgument(format!("{name} is NULL")));
    }
    let align = if f64 { std::mem::align_of::<f64>() } else { std::mem::align_of::<f32>() };
    // An empty buffer is never read (R hands out (void *) 1 for a zero-length vector).
    if need > 0 && !(p as usize).is_multiple_of(align) {
        return Err(invalid!("{name} is not aligned for its dtype ({align} bytes)"));
    }
    Ok(())
}

/// The caller's rows x cols input.
unsafe fn input<'a>(x: *const c_void, f64: bool, order: Order, rows: usize, cols: usize) -> Result<MatrixRef<'a>> {
    let n = checked_len(rows, cols)?;
    check_ptr(x, f64, n, "x")?;
    let data = if f64 {
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        Elements::F64(unsafe { slice(x as *const f64, n, "x")? })
    } else {
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        Elements::F32(unsafe { slice(x as *const f32, n, "x")? })
    };
    MatrixRef::new(data, rows, cols, order)
}

/// The caller's rows x cols output (`capacity` values available), checked before any input is read.
unsafe fn output<'a>(
    out: *mut c_void,
    f64: bool,
    order: Order,
    rows: usize,
    cols: usize,
    capacity: usize,
) -> Result<MatrixMut<'a>> {
    let n = checked_len(rows, cols)?;
    if n > 0 && !out.is_null() && capacity < n {
        return Err(crate::error::Error::BufferTooSmall(format!("out holds {capacity} elements, {n} are needed")));
    }
    check_ptr(out, f64, n, "out")?;
    let data = if f64 {
        // SAFETY: NULL and misalignment are refused; otherwise the buffer holds `capacity` writable values (the C contract).
        ElementsMut::F64(unsafe { out_slice(out as *mut f64, capacity, n, "out")? })
    } else {
        // SAFETY: NULL and misalignment are refused; otherwise the buffer holds `capacity` writable values (the C contract).
        ElementsMut::F32(unsafe { out_slice(out as *mut f32, capacity, n, "out")? })
    };
    MatrixMut::new(data, rows, cols, order)
}

/// `call` on the caller's rows into the caller's output (same dtype and layout), as
/// latent_network_encode etc. do on row-major floats (input scaling, device, checks).
#[allow(clippy::too_many_arguments)]
unsafe fn buffer_rows_call(
    net: *const latent_network,
    x: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    out: *mut c_void,
    capacity: usize,
    call: RowsCall,
) -> latent_status {
    guard(|| {
        let (f64, order) = (is_f64(dtype)?, order_of(layout)?);
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        let n = h.read()?;
        call.check(&n)?;
        let (in_width, per_row) = call.widths(&n);
        check_width(rows, cols, in_width)?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let mut dst = unsafe { output(out, f64, order, rows, per_row, capacity)? };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let m = unsafe { input(x, f64, order, rows, cols)? }.to_matrix()?;
        if rows == 0 {
            return Ok(());
        }
        let scaling = n.input_scaling();
        let v = h.device.rows(&n, call, &*scaling.to_model(&m, false)?)?;
        let v = if call == RowsCall::Reconstruct { scaling.to_raw(v)? } else { v };
        check_output(v.as_slice(), per_row, "the result")?;
        dst.write(&v)
    })
}

/// Codes of a caller's matrix `x` of `rows` x `cols` (= input_dim) values of `dtype`
/// (LATENT_DTYPE_F32 or _F64) in `layout` (LATENT_LAYOUT_ROW_MAJOR or _COL_MAJOR, as R, Julia
/// and Fortran hold them), written into `codes` in the same dtype and layout (rows x code_dim,
/// `capacity` values available). `x` is read where it is (the library makes its one row-major
/// float copy itself, as latent_network_encode does); no dataset is needed. Results equal
/// latent_network_encode's on the same values as floats. Checks as latent_network_encode; a bad
/// dtype or layout, or a pointer not aligned for its dtype, is LATENT_STATUS_INVALID_ARGUMENT;
/// NaN, infinity or an f64 beyond the float range LATENT_STATUS_NON_FINITE naming the (0-based)
/// row and column.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_network_encode_buffer(
    net: *const latent_network,
    x: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    codes: *mut c_void,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { buffer_rows_call(net, x, dtype, layout, rows, cols, codes, capacity, RowsCall::Encode) }
}

/// Reconstructions (decode(encode(x))) of a caller's matrix in its dtype and layout into `out`
/// in the same dtype and layout (rows x input_dim), as latent_network_encode_buffer reads and
/// writes them. A classifier or regressor gives LATENT_STATUS_INVALID_ARGUMENT (its
/// outputs: latent_network_predict_buffer).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_network_reconstruct_buffer(
    net: *const latent_network,
    x: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    out: *mut c_void,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { buffer_rows_call(net, x, dtype, layout, rows, cols, out, capacity, RowsCall::Reconstruct) }
}

/// latent_network_predict (class probabilities, predictions or reconstructions) of a caller's
/// matrix in its dtype and layout into `out` in the same dtype and layout (rows x output_dim),
/// as latent_network_encode_buffer reads and writes them.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_network_predict_buffer(
    net: *const latent_network,
    x: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    out: *mut c_void,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { buffer_rows_call(net, x, dtype, layout, rows, cols, out, capacity, RowsCall::Predict) }
}

/// The network's per-row scores of a caller's rows (read as by
/// latent_network_encode_buffer), after the same checks.
unsafe fn buffer_scores(
    net: *const latent_network,
    x: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    before_read: impl FnOnce() -> Result<()>,
) -> Result<Vec<f64>> {
    let (f64, order) = (is_f64(dtype)?, order_of(layout)?);
    // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
    let n = unsafe { arg(net, "net")? }.read()?;
    check_width(rows, cols, n.input_dim())?;
    before_read()?;
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    let m: Matrix = unsafe { input(x, f64, order, rows, cols)? }.to_matrix()?;
    let net: &Network = &n;
    let e = net.reconstruction_errors(&*net.input_scaling().to_model(&m, false)?)?;
    check_output(&e, 1, "the result")?;
    Ok(e)
}

/// Per-row reconstruction errors (anomaly scores, as latent_network_reconstruction_error) of a
/// caller's matrix in its dtype and layout (read as by latent_network_encode_buffer) into
/// `scores` (`rows` doubles, `capacity` available).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_network_reconstruction_error_buffer(
    net: *const latent_network,
    x: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    scores: *mut f64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        let mut dst: &mut [f64] = &mut [];
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let e = unsafe {
            buffer_scores(net, x, dtype, layout, rows, cols, || {
                dst = out_slice(scores, capacity, rows, "scores")?;
                Ok(())
            })?
        };
        dst.copy_from_slice(&e);
        Ok(())
    })
}

/// The network's loss (the mean over rows of the row score, as latent_network_loss) on a
/// caller's matrix in its dtype and layout (read as by latent_network_encode_buffer), into
/// `*loss`: an autoencoder's reconstruction loss without a dataset (a classifier or regressor
/// needs its labels or targets: LATENT_STATUS_INVALID_ARGUMENT, use latent_network_loss). Zero
/// rows give LATENT_STATUS_INVALID_ARGUMENT ("no rows"); an overflow LATENT_STATUS_NON_FINITE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_loss_buffer(
    net: *const latent_network,
    x: *const c_void,
    dtype: latent_dtype,
    layout: latent_layout,
    rows: usize,
    cols: usize,
    loss: *mut f64,
) -> latent_status {
    guard(|| {
        super::out(loss, "loss")?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let e = unsafe { buffer_scores(net, x, dtype, layout, rows, cols, || no_rows(rows))? };
        // The same sum and division as Network::loss (bit-identical to latent_network_loss).
        let v = e.iter().sum::<f64>() / e.len() as f64;
        if !v.is_finite() {
            return Err(crate::error::Error::NonFinite(format!(
                "the result is {v}: the rows are finite, the computation overflowed (huge inputs or parameters)"
            )));
        }
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(loss, v) };
        Ok(())
    })
}
