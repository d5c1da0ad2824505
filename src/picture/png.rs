//! PNG, 8-bit grayscale, written without a compression library: the signature, an IHDR chunk
//! (width, height, bit depth 8, colour type 0, compression 0, filter 0, interlace 0), IDAT
//! chunks holding one zlib stream, and IEND. Each chunk is length (u32 big-endian), type, data
//! and the CRC-32 of type and data. The zlib stream is the header 78 01, the scanlines (each a
//! filter byte 0 then the row's pixels) in stored (uncompressed) deflate blocks of at most
//! 65535 bytes (each: a byte with BFINAL in bit 0 and BTYPE 00, then LEN and NLEN = !LEN, u16
//! little-endian), then the Adler-32 of the scanlines, big-endian. Pictures of digits are small
//! enough that compressing them is not worth a deflate encoder.

use super::Gray;
use crate::data::crc32::Crc32;
use crate::error::{Result, invalid, shape};

pub const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// Largest stored deflate block.
const BLOCK: usize = 65535;
/// Largest IDAT chunk written (any size up to 2^31 - 1 is valid).
const CHUNK: usize = 1 << 20;

/// Adler-32 (RFC 1950) of `data`.
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that cannot overflow b before the modulo.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = Crc32::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.value().to_be_bytes());
}

/// A zlib stream of `raw` in stored deflate blocks.
pub fn zlib_stored(raw: &[u8]) -> Vec<u8> {
    let mut z = Vec::with_capacity(raw.len() + raw.len() / BLOCK * 5 + 11);
    z.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = raw.chunks(BLOCK).peekable();
    if blocks.peek().is_none() {
        z.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(b) = blocks.next() {
        z.push(blocks.peek().is_none() as u8);
        let len = b.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    z.extend_from_slice(&adler32(raw).to_be_bytes());
    z
}

/// The bytes of a PNG file for `img`.
pub fn encode(img: &Gray) -> Result<Vec<u8>> {
    let (w, h) = (img.width, img.height);
    if w == 0 || h == 0 || w > i32::MAX as usize || h > i32::MAX as usize {
        return Err(invalid!("a {w} x {h} picture cannot be a PNG"));
    }
    if img.pixels.len() != w * h {
        return Err(shape!("{} pixels for a {w} x {h} picture", img.pixels.len()));
    }
    let mut raw = Vec::with_capacity((w + 1) * h);
    for row in img.pixels.chunks_exact(w) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let z = zlib_stored(&raw);
    let mut out = Vec::with_capacity(z.len() + 64);
    out.extend_from_slice(&SIGNATURE);
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    for part in z.chunks(CHUNK) {
        chunk(&mut out, b"IDAT", part);
    }
    chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_of_known_strings() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let big = vec![0xffu8; 100_000];
        // Reference by the definition, without the chunked modulo.
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + x as u64) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(adler32(&big), ((b << 16) | a) as u32);
    }

    #[test]
    fn empty_input_is_one_final_stored_block() {
        assert_eq!(zlib_stored(&[]), vec![0x78, 0x01, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 1]);
    }
}
