//! C API of pictures: image grids as PGM or PNG (scaled up with latent_grid_params), the
//! training history and 2-D codes as SVG plots, and a VAE's manifold grid.

use std::ffi::c_char;
use std::path::Path;

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::trainer::latent_trainer;
use super::vae::latent_vae;
use super::*;
use crate::error::{invalid, shape};
use crate::picture::{self, GridSpec, ImageFormat};
use crate::placement::RowsCall;

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

/// How latent_image_grid_write_ex, latent_image_pairs_write_ex and
/// latent_vae_manifold_grid_write draw: get the defaults from latent_grid_params_default() and
/// edit the fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_grid_params {
    /// Each pixel (padding included) becomes a scale x scale block of the same value (nearest
    /// neighbour, so edges stay crisp): 1 to 64. Default 3 (a 28-pixel digit is 84 pixels).
    pub scale: u32,
    /// Pixels of mid-gray (128) around and between tiles, before scaling: 0 to 1024. Default 1.
    pub padding: u32,
    /// Tiles per line (fewer when there are fewer images): at least 1. Default 8. The manifold
    /// grid ignores it (k tiles a line).
    pub cols: u32,
    /// Values mapped to black (lo) and white (hi), linearly, clamped; lo == hi: the data's own
    /// min..max. Default 0.
    pub lo: f32,
    /// The value drawn white (see lo). Default 1.
    pub hi: f32,
    /// LATENT_IMAGE_AUTO (by the extension, the default), _PGM or _PNG.
    pub format: latent_image_format,
}

/// The defaults: scale 3, padding 1, 8 tiles a line, values 0..1 to black..white, the format
/// from the path's extension.
#[unsafe(no_mangle)]
pub extern "C" fn latent_grid_params_default() -> latent_grid_params {
    latent_grid_params { scale: 3, padding: 1, cols: 8, lo: 0.0, hi: 1.0, format: LATENT_IMAGE_AUTO }
}

/// The grid layout and the scale of `params`, checked.
fn grid_params(p: &latent_grid_params, height: usize, width: usize) -> crate::Result<(GridSpec, usize)> {
    if p.scale == 0 || p.scale as usize > picture::MAX_SCALE {
        return Err(invalid!("scale {} must be from 1 to {}", p.scale, picture::MAX_SCALE));
    }
    let mut spec = grid_spec(height, width, p.cols as usize, p.lo, p.hi)?;
    spec.padding = p.padding as usize;
    Ok((spec, p.scale as usize))
}

/// latent_image_grid_write with the layout of `params` (see latent_grid_params): `n_rows`
/// images (`rows`: n_rows x height*width floats, each image row-major) in a grid of
/// params->cols images a line, then every pixel drawn as a params->scale x params->scale block,
/// so the picture is scale * (cols*width + (cols+1)*padding) by scale * (lines*height +
/// (lines+1)*padding) pixels. Statuses as latent_image_grid_write; a scale outside 1 to 64,
/// cols 0 or padding over 1024: LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_image_grid_write_ex(
    path: *const c_char,
    rows: *const f32,
    n_rows: usize,
    height: usize,
    width: usize,
    params: *const latent_grid_params,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        // SAFETY: the pointer is NULL (refused) or a readable struct (the C contract).
        let gp = unsafe { arg(params, "params")? };
        let f = image_format(gp.format, p)?;
        let (spec, scale) = grid_params(gp, height, width)?;
        let v = values(rows, n_rows, height, width, "rows")?;
        let img = picture::upscale(&picture::grid(v, n_rows, &spec)?, scale)?;
        picture::write_image(p, &img, Some(f))
    })
}

/// latent_image_pairs_write with the layout of `params`: bands of params->cols originals over
/// their reconstructions, then every pixel drawn as a params->scale x params->scale block.
/// Statuses as latent_image_grid_write_ex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_image_pairs_write_ex(
    path: *const c_char,
    originals: *const f32,
    reconstructions: *const f32,
    n: usize,
    height: usize,
    width: usize,
    params: *const latent_grid_params,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        // SAFETY: the pointer is NULL (refused) or a readable struct (the C contract).
        let gp = unsafe { arg(params, "params")? };
        let f = image_format(gp.format, p)?;
        let (spec, scale) = grid_params(gp, height, width)?;
        let a = values(originals, n, height, width, "originals")?;
        let b = values(reconstructions, n, height, width, "reconstructions")?;
        let img = picture::upscale(&picture::pairs(a, b, n, &spec)?, scale)?;
        picture::write_image(p, &img, Some(f))
    })
}

/// An optional C string: NULL gives `default`.
unsafe fn title(p: *const c_char, default: &str) -> crate::Result<&str> {
    if p.is_null() {
        return Ok(default);
    }
    // SAFETY: checked non-NULL; a NUL-terminated string (the C contract).
    unsafe { super::path(p, "title") }
}

/// Writes a scatter plot of `n` 2-D points (`codes`: n x 2 floats, row-major) as an SVG, one
/// small circle per point, coloured by `labels` (n int32 values; `labels` (may be NULL: one
/// colour, no legend)), with axes, ticks, grid lines and a legend of the label values (20
/// distinct colours, matplotlib's tab10 first; the 21st label reuses the first colour), and
/// `title` (may be NULL: "latent space") on top. 10,000 points make a file of about 400 KB.
/// Written atomically. n 0 or over 1,000,000: LATENT_STATUS_INVALID_ARGUMENT; NaN/Inf in codes:
/// LATENT_STATUS_NON_FINITE; a failed write: LATENT_STATUS_IO.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_scatter_svg_write(
    path: *const c_char,
    codes: *const f32,
    labels: *const i32,
    n: usize,
    title: *const c_char,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        // SAFETY: NULL is the default; otherwise a NUL-terminated string (the C contract).
        let t = unsafe { self::title(title, "latent space")? };
        if n == 0 {
            return Err(invalid!("n is 0: no points to plot"));
        }
        if n > picture::scatter::MAX_POINTS {
            return Err(invalid!("{n} points are more than {} for one plot", picture::scatter::MAX_POINTS));
        }
        // SAFETY: NULL is refused; otherwise the pointer holds 2 * n readable values (the C contract).
        let c = unsafe { slice(codes, 2 * n, "codes")? };
        let l = if labels.is_null() {
            None
        } else {
            // SAFETY: checked non-NULL; the pointer holds n readable values (the C contract).
            Some(unsafe { slice(labels, n, "labels")? })
        };
        picture::write_svg(p, &picture::scatter::scatter_svg(c, l, t)?)
    })
}

/// Encodes every row of `dataset` with `net`, whose code must have 2 units
/// (LATENT_STATUS_INVALID_ARGUMENT otherwise, checked first), and writes the codes as
/// latent_scatter_svg_write does, coloured by the dataset's labels when it has them, `title`
/// (may be NULL: "latent space"). A dataset of other width: LATENT_STATUS_SHAPE_MISMATCH; of
/// no rows: LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_scatter_svg_write(
    net: *const latent_network,
    dataset: *const latent_dataset,
    path: *const c_char,
    title: *const c_char,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(dataset, "dataset")? }.get();
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        // SAFETY: NULL is the default; otherwise a NUL-terminated string (the C contract).
        let t = unsafe { self::title(title, "latent space")? };
        let n = h.read()?;
        if n.code_dim() != 2 {
            return Err(invalid!(
                "the network's code has {} units: a scatter plot needs 2 (build it with a 2-unit code)",
                n.code_dim()
            ));
        }
        if d.x().cols() != n.input_dim() {
            return Err(shape!("the dataset has {} columns, the network expects {}", d.x().cols(), n.input_dim()));
        }
        let codes = h.device.rows(&n, RowsCall::Encode, d.x())?;
        picture::write_svg(p, &picture::scatter::codes_scatter_svg(&codes, d.labels(), t, "the network")?)
    })
}

/// latent_network_scatter_svg_write for a VAE with 2 latent dimensions: the posterior means of
/// the dataset's rows (latent_vae_encode_dataset), coloured by its labels when it has them,
/// `title` (may be NULL: "latent space"). Another latent size: LATENT_STATUS_INVALID_ARGUMENT,
/// checked first.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_scatter_svg_write(
    vae: *const latent_vae,
    dataset: *const latent_dataset,
    path: *const c_char,
    title: *const c_char,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(vae, "vae")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(dataset, "dataset")? }.get();
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        // SAFETY: NULL is the default; otherwise a NUL-terminated string (the C contract).
        let t = unsafe { self::title(title, "latent space")? };
        let v = h.read()?;
        if v.latent_dim() != 2 {
            return Err(invalid!(
                "the VAE has {} latent dimensions: a scatter plot needs 2 (build it with latent_dim 2)",
                v.latent_dim()
            ));
        }
        if d.x().cols() != v.input_dim() {
            return Err(shape!("the dataset has {} columns, the VAE expects {}", d.x().cols(), v.input_dim()));
        }
        let (mean, _) = h.device.encode(&v, d.x())?;
        picture::write_svg(p, &picture::scatter::codes_scatter_svg(&mean, d.labels(), t, "the VAE")?)
    })
}

/// The latent points of a k x k manifold grid into `z` (k*k rows of 2 floats; `capacity`
/// floats available), row-major tile by tile, row 0 at the top: tile (r, c) is
/// (Phi^-1((c + 0.5) / k), Phi^-1((k - 1 - r + 0.5) / k)), Phi^-1 the standard normal quantile
/// (Wichura's AS 241): z1 grows left to right, z2 bottom to top. k outside 1 to 256:
/// LATENT_STATUS_INVALID_ARGUMENT; a short buffer: LATENT_STATUS_BUFFER_TOO_SMALL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_normal_grid_points(k: usize, z: *mut f32, capacity: usize) -> latent_status {
    guard(|| {
        let pts = picture::latent_grid::grid_points(k)?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(z, capacity, pts.as_slice().len(), "z")? };
        dst.copy_from_slice(pts.as_slice());
        Ok(())
    })
}

/// Writes the learned manifold of a VAE with 2 latent dimensions (Kingma & Welling 2014,
/// Fig. 4): the mean of p(x|z) (as latent_vae_generate_mean) at each of the k x k points of
/// latent_normal_grid_points, drawn as a k x k grid of height x width tiles (height * width
/// must be the VAE's input size) with the look of `params` (params->cols is ignored). Another
/// latent size, or k outside 1 to 256: LATENT_STATUS_INVALID_ARGUMENT; height * width not the
/// input size: LATENT_STATUS_SHAPE_MISMATCH; other statuses as latent_image_grid_write_ex.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_vae_manifold_grid_write(
    vae: *const latent_vae,
    path: *const c_char,
    k: usize,
    height: usize,
    width: usize,
    params: *const latent_grid_params,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(vae, "vae")? };
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = Path::new(unsafe { super::path(path, "path")? });
        // SAFETY: the pointer is NULL (refused) or a readable struct (the C contract).
        let gp = unsafe { arg(params, "params")? };
        let f = image_format(gp.format, p)?;
        let (spec, scale) = grid_params(&latent_grid_params { cols: 1, ..*gp }, height, width)?;
        let v = h.read()?;
        let img = picture::latent_grid::vae_manifold_picture(&v, k, &spec, scale)?;
        picture::write_image(p, &img, Some(f))
    })
}
