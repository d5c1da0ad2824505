//! IDX files (LeCun's format for MNIST and Fashion-MNIST), plain or gzip-compressed.
//!
//! A file is a big-endian header (magic `00 00 <type> <ndims>`, then one u32 per dimension)
//! followed by the values. Only unsigned bytes (type 0x08) are read: images (3 dimensions,
//! magic 0x00000803; 2 are accepted too, as rows x features) and labels (1 dimension, magic
//! 0x00000801). Sizes read from the header are checked against the actual length of the data
//! (after decompression, itself bounded by the compressed size) before anything is allocated
//! from them.

use std::path::Path;

use super::{bad, gzip};
use crate::error::{Result, try_zeros};
use crate::tensor::Matrix;

pub const MAGIC_IMAGES: u32 = 0x0000_0803;
pub const MAGIC_LABELS: u32 = 0x0000_0801;
const TYPE_U8: u8 = 0x08;

/// The header of an IDX file of bytes: dimensions, and where the values start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxHeader {
    pub dims: Vec<usize>,
    pub data_offset: usize,
}

/// Parses and checks the header of a u8 IDX file with `want_dims` dimensions (any of them):
/// the magic, and that the values fill the rest of `bytes` exactly.
pub fn parse_header(bytes: &[u8], want_dims: &[usize]) -> Result<IdxHeader> {
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes is too short for an IDX header", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!("magic {magic:#010x} is not IDX (it must start with two zero bytes)")));
    }
    if bytes[2] != TYPE_U8 {
        return Err(bad(format!("IDX element type {:#04x} is not supported (only unsigned bytes, 0x08)", bytes[2])));
    }
    let nd = bytes[3] as usize;
    if !want_dims.contains(&nd) {
        return Err(bad(format!("magic {magic:#010x}: {nd} dimensions, expected {want_dims:?}")));
    }
    let data_offset = 4 + 4 * nd;
    let head = bytes
        .get(4..data_offset)
        .ok_or_else(|| bad(format!("{} bytes is too short for a {nd}-dimensional IDX header", bytes.len())))?;
    let dims: Vec<usize> =
        head.chunks_exact(4).map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize).collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let actual = bytes.len() - data_offset;
    if count != actual {
        return Err(bad(format!(
            "header says {} values (dimensions {dims:?}) but the file holds {actual}: truncated or not this file",
            count
        )));
    }
    Ok(IdxHeader { dims, data_offset })
}

/// Images from the bytes of an IDX file: one f32 row (values 0..255, unscaled) per image.
pub fn parse_images(bytes: &[u8]) -> Result<Matrix> {
    let h = parse_header(bytes, &[3, 2])?;
    let n = h.dims[0];
    let width: usize = h.dims[1..].iter().product();
    if n == 0 || width == 0 {
        return Err(bad(format!("empty image file (dimensions {:?})", h.dims)));
    }
    let px = &bytes[h.data_offset..];
    let mut v = try_zeros::<f32>(px.len())?;
    for (d, &s) in v.iter_mut().zip(px) {
        *d = s as f32;
    }
    Matrix::from_vec(n, width, v)
}

/// Labels from the bytes of an IDX file (one dimension).
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<i32>> {
    let h = parse_header(bytes, &[1])?;
    Ok(bytes[h.data_offset..].iter().map(|&b| b as i32).collect())
}

/// Reads an images file (plain or gzip).
pub fn read_images(path: &Path) -> Result<Matrix> {
    parse_images(&gzip::read_file(path)?).map_err(|e| super::in_file(path, e))
}

/// Reads a labels file (plain or gzip).
pub fn read_labels(path: &Path) -> Result<Vec<i32>> {
    parse_labels(&gzip::read_file(path)?).map_err(|e| super::in_file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::bad_format as bad_msg;

    fn images(n: u32, r: u32, c: u32, payload: usize) -> Vec<u8> {
        let mut b = MAGIC_IMAGES.to_be_bytes().to_vec();
        for d in [n, r, c] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend((0..payload).map(|i| i as u8));
        b
    }

    #[test]
    fn reads_images_and_labels() {
        let x = parse_images(&images(2, 2, 3, 12)).unwrap();
        assert_eq!((x.rows(), x.cols()), (2, 6));
        assert_eq!(x.row(1), &[6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        let mut l = MAGIC_LABELS.to_be_bytes().to_vec();
        l.extend_from_slice(&3u32.to_be_bytes());
        l.extend_from_slice(&[9, 0, 255]);
        assert_eq!(parse_labels(&l).unwrap(), vec![9, 0, 255]);
    }

    #[test]
    fn length_must_match_the_header_exactly() {
        assert!(bad_msg(parse_images(&images(2, 2, 3, 11))).contains("holds 11"));
        assert!(bad_msg(parse_images(&images(2, 2, 3, 13))).contains("holds 13"));
        // A billion 28x28 images claimed by a 1 KB file: rejected before any allocation (an
        // attempt to allocate 3 TB would come back as OutOfMemory, not BadFormat).
        assert!(bad_msg(parse_images(&images(1_000_000_000, 28, 28, 1000))).contains("784000000000"));
        // Dimensions whose product overflows.
        assert!(bad_msg(parse_images(&images(u32::MAX, u32::MAX, u32::MAX, 10))).contains("overflow"));
        assert!(bad_msg(parse_images(&images(0, 28, 28, 0))).contains("empty"));
    }

    #[test]
    fn wrong_magic_type_or_rank_is_rejected() {
        let mut b = images(1, 2, 2, 4);
        b[0] = 1;
        assert!(bad_msg(parse_images(&b)).contains("not IDX"));
        let mut b = images(1, 2, 2, 4);
        b[2] = 0x0D; // f32 elements
        assert!(bad_msg(parse_images(&b)).contains("not supported"));
        // An images file where labels are expected.
        assert!(bad_msg(parse_labels(&images(1, 2, 2, 4))).contains("3 dimensions"));
        assert!(bad_msg(parse_images(&[0, 0, 8])).contains("too short"));
        assert!(bad_msg(parse_images(&[0, 0, 8, 3, 0, 0, 0, 1])).contains("too short"));
    }
}
