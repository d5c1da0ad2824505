//! C API of pictures: image grids as PGM or PNG, and the training history as an SVG plot.

use std::ffi::c_char;
use std::path::Path;

use super::trainer::latent_trainer;
use super::*;
use crate::error::invalid;
use crate::picture::{self, GridSpec, ImageFormat};

/// File format of a picture (`latent_image_format`).
pub type latent_image_format = i32;
/// Chosen by the path's extension: .png or .pgm (any case).
pub const LATENT_IMAGE_AUTO: latent_image_format = 0;
/// Binary PGM (P5), 8-bit gray.
pub const LATENT_IMAGE_PGM: latent_image_format = 1;
/// PNG, 8-bit gray.
pub const LATENT_IMAGE_PNG: latent_image_format = 2;

/// Pixels of mid-gray (128) around and between the tiles of a grid.
pub const LATENT_IMAGE_PADDING: u32 = 1;

fn image_format(format: latent_image_format, path: &Path) -> crate::Result<ImageFormat> {
    match format {
        LATENT_IMAGE_AUTO => ImageFormat::from_path(path),
        LATENT_IMAGE_PGM => Ok(ImageFormat::Pgm),
        LATENT_IMAGE_PNG => Ok(ImageFormat::Png),
        f => Err(invalid!("format {f} is not LATENT_IMAGE_AUTO (0), _PGM (1) or _PNG (2)")),
    }
}

fn grid_spec(height: usize, width: usize, grid_cols: usize, lo: f32, hi: f32) -> crate::Result<GridSpec> {
    let range = if lo == hi && lo.is_finite() { None } else { Some((lo, hi)) };
    Ok(GridSpec { height, width, cols: grid_cols, range, padding: LATENT_IMAGE_PADDING as usize })
}

fn values<'a>(p: *const f32, n: usize, height: usize, width: usize, name: &str) -> crate::Result<&'a [f32]> {
    let len = n
        .checked_mul(height)
        .and_then(|v| v.checked_mul(width))
        .ok_or_else(|| invalid!("{n} images of {height} x {width} overflow"))?;
    if len == 0 {
        return Err(invalid!("n_rows ({n}), height ({height}) and width ({width}) must all be at least 1"));
    }
    // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
    unsafe { slice(p, len, name) }
}

/// Writes `n_rows` images (`rows`: n_rows x height*width floats, each image row-major) as a
/// grayscale grid of `grid_cols` images per line, with LATENT_IMAGE_PADDING pixels of mid-gray
/// around and between them: a picture of grid_cols*width + (grid_cols+1)*padding by
/// lines*height + (lines+1)*padding pixels (fewer columns when n_rows < grid_cols). Values map
/// linearly from [lo, hi] to black..white, clamped; lo == hi: the data's own min..max.
/// `format` is LATENT_IMAGE_PGM, LATENT_IMAGE_PNG or LATENT_IMAGE_AUTO (by the extension). The
/// file is written atomically (a temporary file renamed over `path`). Zero sizes, lo > hi or an
/// unknown format: LATENT_STATUS_INVALID_ARGUMENT; NaN/Inf in rows: LATENT_STATUS_NON_FINITE;
/// a write that fails: LATENT_STATUS_IO (any old file at `path` is untouched). The picture's
/// size is checked (at most 65536 pixels a side, 2^28 in all: LATENT_STATUS_INVALID_ARGUMENT)
/// before any value of `rows` is read.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_image_grid_write(
    path: *const c_char,
    rows: *const f32,
    n_rows: usize,
    height: usize,
    width: usize,
    grid_cols: usize,
    lo: f32,
    hi: f32,
    format: latent_image_format,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        let f = image_format(format, p)?;
        let spec = grid_spec(height, width, grid_cols, lo, hi)?;
        let v = values(rows, n_rows, height, width, "rows")?;
        let img = picture::grid(v, n_rows, &spec)?;
        picture::write_image(p, &img, Some(f))
    })
}

/// As latent_image_grid_write, for `n` images (`originals`) and their reconstructions (same
/// shape): bands of `grid_cols` originals, each with the same images' reconstructions on the
/// line below, bands separated by a darker gap. One value range maps both (lo == hi: the min
/// and max over both).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_image_pairs_write(
    path: *const c_char,
    originals: *const f32,
    reconstructions: *const f32,
    n: usize,
    height: usize,
    width: usize,
    grid_cols: usize,
    lo: f32,
    hi: f32,
    format: latent_image_format,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        let f = image_format(format, p)?;
        let spec = grid_spec(height, width, grid_cols, lo, hi)?;
        let a = values(originals, n, height, width, "originals")?;
        let b = values(reconstructions, n, height, width, "reconstructions")?;
        let img = picture::pairs(a, b, n, &spec)?;
        picture::write_image(p, &img, Some(f))
    })
}

/// Writes the trainer's history (every epoch fitted so far) as an SVG line plot: train loss
/// and, where measured, validation loss per epoch (one polyline point per epoch), ticks and
/// labels on both axes, a legend; `log_scale` 1 draws the loss axis in log scale (the losses
/// must then be positive), 0 linear. Written atomically. An empty history, log_scale not 0 or
/// 1, or a non-positive loss on a log scale: LATENT_STATUS_INVALID_ARGUMENT; a failed write:
/// LATENT_STATUS_IO.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_history_svg_write(
    trainer: *const latent_trainer,
    path: *const c_char,
    log_scale: i32,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let t = unsafe { arg(trainer, "trainer")? };
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        let log = flag(log_scale, "log_scale")?;
        let svg = picture::svg::history_svg(t.get()?.history(), log, "training history")?;
        picture::write_svg(p, &svg)
    })
}
