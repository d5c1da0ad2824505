//! Binary PGM (Netpbm "P5"): the header `P5\n<width> <height>\n255\n`, then one byte per
//! pixel, row after row.

use super::Gray;
use crate::error::{Result, shape};

/// The bytes of a P5 file for `img`.
pub fn encode(img: &Gray) -> Result<Vec<u8>> {
    if img.pixels.len() != img.width * img.height {
        return Err(shape!("{} pixels for a {} x {} picture", img.pixels.len(), img.width, img.height));
    }
    let mut out = format!("P5\n{} {}\n255\n", img.width, img.height).into_bytes();
    out.extend_from_slice(&img.pixels);
    Ok(out)
}
