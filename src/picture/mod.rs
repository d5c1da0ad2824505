//! Pictures of data and of training: grayscale image grids written as binary PGM ([`pgm`]) or
//! PNG ([`png`]), and an SVG line plot of a training history ([`svg`]).
//!
//! - [`grid`]: rows of image-shaped values (each row `height * width` values, row-major) laid
//!   out `cols` to a line, values mapped linearly from a range (given, or the data's own
//!   min..max) to 0..255, tiles separated by `padding` pixels of mid-gray.
//! - [`pairs`]: originals above their reconstructions, band by band.
//! - [`upscale`]: every pixel as a `scale` x `scale` block (nearest neighbour), so a grid of
//!   28-pixel digits can be looked at.
//! - [`scatter`]: an SVG scatter plot of 2-D codes coloured by label; [`latent_grid`]: a VAE's
//!   decoded manifold (Kingma & Welling 2014, Fig. 4) at the normal quantiles of a k x k grid.
//! - [`write_image`] / [`write_svg`]: written atomically (a temporary file beside the target,
//!   synced, renamed over it), so a failed write leaves any old file untouched.

#![forbid(unsafe_code)]

pub mod latent_grid;
pub mod pgm;
pub mod png;
pub mod scatter;
pub mod svg;

use std::path::Path;

use crate::error::{Error, Result, invalid, try_zeros};

/// The gray of the padding between tiles.
pub const PADDING_GRAY: u8 = 128;

/// An 8-bit grayscale picture, row-major, one byte per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// File format of a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Pgm,
    Png,
}

impl ImageFormat {
    /// From the extension of `path` (.pgm or .png, any case).
    pub fn from_path(path: &Path) -> Result<ImageFormat> {
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("pgm") => Ok(ImageFormat::Pgm),
            Some("png") => Ok(ImageFormat::Png),
            _ => Err(invalid!("cannot tell the image format of {} from its extension (.png or .pgm)", path.display())),
        }
    }

    /// The file's bytes for `img`.
    pub fn encode(self, img: &Gray) -> Result<Vec<u8>> {
        match self {
            ImageFormat::Pgm => pgm::encode(img),
            ImageFormat::Png => png::encode(img),
        }
    }
}

/// Layout of a grid: tile size, tiles per line, value range, padding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridSpec {
    pub height: usize,
    pub width: usize,
    /// Tiles per line of the grid.
    pub cols: usize,
    /// Values mapped to black and white; None: the data's min and max.
    pub range: Option<(f32, f32)>,
    /// Pixels of mid-gray around and between tiles.
    pub padding: usize,
}

impl GridSpec {
    fn validate(&self) -> Result<()> {
        if self.height == 0 || self.width == 0 || self.cols == 0 {
            return Err(invalid!(
                "height ({}), width ({}) and grid columns ({}) must all be at least 1",
                self.height,
                self.width,
                self.cols
            ));
        }
        if let Some((lo, hi)) = self.range
            && (!lo.is_finite() || !hi.is_finite() || lo >= hi)
        {
            return Err(invalid!("value range [{lo}, {hi}] must be finite with lo < hi"));
        }
        if self.padding > 1024 {
            return Err(invalid!("padding {} is more than 1024 pixels", self.padding));
        }
        Ok(())
    }
}

/// The range values map from: `spec.range`, or the min and max of all the data's blocks (a
/// constant image maps to black).
fn value_range(blocks: &[&[f32]], spec: &GridSpec) -> (f32, f32) {
    if let Some(r) = spec.range {
        return r;
    }
    blocks.iter().flat_map(|b| b.iter()).fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)))
}

fn check_rows(values: &[f32], n: usize, spec: &GridSpec, what: &str) -> Result<usize> {
    let px = spec
        .height
        .checked_mul(spec.width)
        .ok_or_else(|| invalid!("{} x {} images overflow", spec.height, spec.width))?;
    if n == 0 {
        return Err(invalid!("{what}: no images to draw"));
    }
    let need = n.checked_mul(px).ok_or_else(|| invalid!("{n} images of {px} values overflow"))?;
    if values.len() != need {
        return Err(crate::error::shape!("{what}: {} values for {n} images of {px}", values.len()));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("{what}: row {}, column {} is {:?}", i / px, i % px, values[i])));
    }
    Ok(px)
}

/// The size of a canvas of `tiles_x` x `tiles_y` tiles with padding, checked against the
/// limits before any pixel is read or allocated.
fn canvas_size(spec: &GridSpec, tiles_x: usize, tiles_y: usize, extra_h: usize) -> Result<(usize, usize)> {
    let side = |tiles: usize, size: usize| {
        tiles.checked_mul(size).and_then(|t| t.checked_add(tiles.checked_add(1)?.checked_mul(spec.padding)?))
    };
    let w = side(tiles_x, spec.width);
    let h = side(tiles_y, spec.height).and_then(|h| h.checked_add(extra_h));
    let (Some(w), Some(h)) = (w, h) else { return Err(invalid!("the grid's size overflows")) };
    if w > 1 << 16 || h > 1 << 16 || w * h > 1 << 28 {
        return Err(invalid!("a {w} x {h} picture is too large (at most 65536 pixels a side, 2^28 in all)"));
    }
    Ok((w, h))
}

/// A canvas of the size [`canvas_size`] checked, filled with the padding gray.
fn canvas((w, h): (usize, usize)) -> Result<Gray> {
    let mut pixels = try_zeros::<u8>(w * h)?;
    pixels.fill(PADDING_GRAY);
    Ok(Gray { width: w, height: h, pixels })
}

/// Draws one tile at pixel (x0, y0).
fn blit(img: &mut Gray, tile: &[f32], spec: &GridSpec, x0: usize, y0: usize, (lo, hi): (f32, f32)) {
    let scale = if hi > lo { 255.0 / (hi as f64 - lo as f64) } else { 0.0 };
    for r in 0..spec.height {
        let dst = &mut img.pixels[(y0 + r) * img.width + x0..][..spec.width];
        for (d, &v) in dst.iter_mut().zip(&tile[r * spec.width..(r + 1) * spec.width]) {
            *d = ((v as f64 - lo as f64) * scale).clamp(0.0, 255.0).round() as u8;
        }
    }
}

/// `n` images (`values` holds n rows of height*width values) laid out `spec.cols` to a line.
pub fn grid(values: &[f32], n: usize, spec: &GridSpec) -> Result<Gray> {
    spec.validate()?;
    if n == 0 {
        return Err(invalid!("rows: no images to draw"));
    }
    let cols = spec.cols.min(n);
    let lines = n.div_ceil(cols);
    let size = canvas_size(spec, cols, lines, 0)?;
    let px = check_rows(values, n, spec, "rows")?;
    let mut img = canvas(size)?;
    let range = value_range(&[values], spec);
    let p = spec.padding;
    for (i, tile) in values.chunks_exact(px).enumerate() {
        let x0 = p + (i % cols) * (spec.width + p);
        let y0 = p + (i / cols) * (spec.height + p);
        blit(&mut img, tile, spec, x0, y0, range);
    }
    Ok(img)
}

/// Originals above their reconstructions: bands of `spec.cols` originals with the same
/// images' reconstructions on the line below, bands separated by a wider gap (2 * padding + 2
/// pixels). One value range (given or auto over both) maps both.
pub fn pairs(originals: &[f32], reconstructions: &[f32], n: usize, spec: &GridSpec) -> Result<Gray> {
    spec.validate()?;
    if n == 0 {
        return Err(invalid!("originals: no images to draw"));
    }
    let cols = spec.cols.min(n);
    let bands = n.div_ceil(cols);
    let gap = spec.padding + 2;
    let size = canvas_size(spec, cols, bands.saturating_mul(2), (bands - 1).saturating_mul(gap))?;
    let px = check_rows(originals, n, spec, "originals")?;
    check_rows(reconstructions, n, spec, "reconstructions")?;
    let mut img = canvas(size)?;
    let range = value_range(&[originals, reconstructions], spec);
    let p = spec.padding;
    for i in 0..n {
        let x0 = p + (i % cols) * (spec.width + p);
        let band = i / cols;
        let y0 = p + band * (2 * (spec.height + p) + gap);
        blit(&mut img, &originals[i * px..(i + 1) * px], spec, x0, y0, range);
        blit(&mut img, &reconstructions[i * px..(i + 1) * px], spec, x0, y0 + spec.height + p, range);
    }
    // The gap between bands in a darker gray, so pairs read as pairs.
    for b in 1..bands {
        let y = b * (2 * (spec.height + p) + gap) - gap;
        for row in y..y + gap {
            img.pixels[row * img.width..(row + 1) * img.width].fill(PADDING_GRAY / 2);
        }
    }
    Ok(img)
}

/// The largest upscale factor.
pub const MAX_SCALE: usize = 64;

/// `img` with every pixel repeated as a `scale` x `scale` block (nearest neighbour: edges stay
/// crisp, no value is invented), so the picture is width*scale by height*scale. Scale 1 is a
/// copy; 0 or more than [`MAX_SCALE`], or a result over the size limit (65536 pixels a side,
/// 2^28 in all), is InvalidArgument before anything is allocated.
pub fn upscale(img: &Gray, scale: usize) -> Result<Gray> {
    if scale == 0 || scale > MAX_SCALE {
        return Err(invalid!("scale {scale} must be from 1 to {MAX_SCALE}"));
    }
    let (w, h) = (img.width.saturating_mul(scale), img.height.saturating_mul(scale));
    if w > 1 << 16 || h > 1 << 16 || w * h > 1 << 28 {
        return Err(invalid!("a {w} x {h} picture is too large (at most 65536 pixels a side, 2^28 in all)"));
    }
    let mut pixels = try_zeros::<u8>(w * h)?;
    for (y, src) in img.pixels.chunks_exact(img.width.max(1)).take(img.height).enumerate() {
        let first = &mut pixels[y * scale * w..(y * scale + 1) * w];
        for (x, &v) in src.iter().enumerate() {
            first[x * scale..(x + 1) * scale].fill(v);
        }
        for k in 1..scale {
            pixels.copy_within(y * scale * w..(y * scale + 1) * w, (y * scale + k) * w);
        }
    }
    Ok(Gray { width: w, height: h, pixels })
}

/// Writes `img` to `path` in `format` (None: from the extension), atomically.
pub fn write_image(path: &Path, img: &Gray, format: Option<ImageFormat>) -> Result<()> {
    let f = match format {
        Some(f) => f,
        None => ImageFormat::from_path(path)?,
    };
    write_atomic(path, &f.encode(img)?)
}

/// Writes an SVG document atomically.
pub fn write_svg(path: &Path, svg: &str) -> Result<()> {
    write_atomic(path, svg.as_bytes())
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`; on
/// any failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic_file::write_bytes(path, "writing", bytes)
}
