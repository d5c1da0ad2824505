//! gzip (RFC 1952) members, read from memory: header parsed here, deflate stream inflated by
//! `miniz_oxide`, trailer checked (CRC-32 and ISIZE). Concatenated members are joined, as
//! `gunzip` does. Files are recognised by their magic bytes (1f 8b), never by their name.
//!
//! The output is bounded before anything is allocated: at most [`MAX_RATIO`] times the
//! compressed size (deflate cannot do better than about 1032:1) and at most
//! [`MAX_DECOMPRESSED`] bytes. Allocation failures are reported, not fatal.

use std::path::Path;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{self as inflate, DecompressorOxide, inflate_flags};

use super::{bad, crc32::Crc32};
use crate::error::{Error, Result};

/// Absolute cap on the decompressed size of one file: 2 GiB.
pub const MAX_DECOMPRESSED: usize = 1 << 31;
/// Deflate's best possible compression ratio is about 1032:1; anything beyond is malformed.
pub const MAX_RATIO: usize = 1032;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xE0;

/// Whether `bytes` starts with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
}

/// The largest output accepted for `compressed_len` input bytes.
pub fn output_limit(compressed_len: usize) -> usize {
    compressed_len.saturating_mul(MAX_RATIO).saturating_add(1 << 16).min(MAX_DECOMPRESSED)
}

/// Reads a regular file whole (at most [`super::MAX_DATA_FILE_BYTES`]; see
/// [`super::read_regular`]); if it is gzip, returns its decompressed content (at most
/// [`MAX_DECOMPRESSED`] bytes). Format errors name the file.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let raw = super::read_regular(path, super::MAX_DATA_FILE_BYTES, "data file")?;
    if is_gzip(&raw) { decompress(&raw, output_limit(raw.len())).map_err(|e| super::in_file(path, e)) } else { Ok(raw) }
}

/// Decompresses a whole gzip file (one or more members) into at most `limit` bytes.
pub fn decompress(bytes: &[u8], limit: usize) -> Result<Vec<u8>> {
    if !is_gzip(bytes) {
        return Err(bad("not a gzip file (no 1f 8b magic)".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    let mut member = 1;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if !is_gzip(rest) {
            return Err(bad(format!("{} bytes of trailing garbage after gzip member {}", rest.len(), member - 1)));
        }
        let used = member_into(rest, limit, &mut out).map_err(|e| match e {
            Error::BadFormat(m) => bad(format!("gzip member {member}: {m}")),
            other => other,
        })?;
        pos += used;
        member += 1;
    }
    if out.capacity() - out.len() > out.len() / 4 {
        out.shrink_to_fit();
    }
    Ok(out)
}

/// Grows `out` (zero-filled) to at least `want` bytes without aborting on allocation failure.
fn grow(out: &mut Vec<u8>, want: usize) -> Result<()> {
    if want > out.len() {
        out.try_reserve_exact(want - out.len())
            .map_err(|_| Error::OutOfMemory(format!("{want} bytes for decompressed data")))?;
        out.resize(want, 0);
    }
    Ok(())
}

/// Parses the member header, returning the offset of the deflate stream.
fn header_len(m: &[u8]) -> Result<usize> {
    let truncated = || bad("truncated header".into());
    if m.len() < 10 {
        return Err(truncated());
    }
    if m[2] != 8 {
        return Err(bad(format!("compression method {} is not deflate (8)", m[2])));
    }
    let flags = m[3];
    if flags & FRESERVED != 0 {
        return Err(bad(format!("reserved header flag bits set (FLG = {flags:#04x})")));
    }
    let mut p = 10;
    if flags & FEXTRA != 0 {
        let xlen = m.get(p..p + 2).ok_or_else(truncated)?;
        p += 2 + u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
        if p > m.len() {
            return Err(truncated());
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = m[p..].iter().position(|&b| b == 0).ok_or_else(truncated)?;
            p += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = m.get(p..p + 2).ok_or_else(truncated)?;
        let stored = u16::from_le_bytes([stored[0], stored[1]]);
        let mut h = Crc32::new();
        h.update(&m[..p]);
        let computed = (h.value() & 0xFFFF) as u16;
        if stored != computed {
            return Err(bad(format!("header CRC-16 mismatch (stored {stored:#06x}, computed {computed:#06x})")));
        }
        p += 2;
    }
    Ok(p)
}

/// Inflates one member at the start of `m`, appending to `out` (whose total stays within
/// `limit`). Returns the member's length in bytes.
fn member_into(m: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<usize> {
    let start = header_len(m)?;
    let base = out.len();
    // ISIZE of the last member sits in the file's last 4 bytes: use it as a capacity hint, but
    // never trust it beyond what the compressed size could produce.
    let hint = match m.len() {
        n if n >= 4 => u32::from_le_bytes([m[n - 4], m[n - 3], m[n - 2], m[n - 1]]) as usize,
        _ => 0,
    };
    let budget = limit.saturating_sub(base);
    let first = hint.min(m.len().saturating_mul(64)).clamp(4096.min(budget), budget);
    grow(out, base + first)?;

    let mut d = Box::<DecompressorOxide>::default();
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let mut input = &m[start..];
    let mut consumed = start;
    let mut written = base;
    loop {
        let (status, n_in, n_out) = inflate::decompress(&mut d, input, &mut out[..], written, flags);
        input = &input[n_in.min(input.len())..];
        consumed += n_in;
        written += n_out;
        match status {
            TINFLStatus::Done => break,
            TINFLStatus::HasMoreOutput => {
                if out.len() >= limit {
                    out.truncate(base);
                    return Err(bad(format!("decompressed data exceed the limit of {limit} bytes")));
                }
                let want = out.len().saturating_mul(2).max(out.len() + 4096).min(limit);
                grow(out, want)?;
            }
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
                out.truncate(base);
                return Err(bad("truncated deflate stream".into()));
            }
            other => {
                out.truncate(base);
                return Err(bad(format!("corrupt deflate stream ({other:?})")));
            }
        }
    }
    out.truncate(written);
    let trailer = m.get(consumed..consumed + 8).ok_or_else(|| bad("truncated trailer (CRC-32 and size)".into()))?;
    let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let stored_size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    let data = &out[base..];
    let mut h = Crc32::new();
    h.update(data);
    if h.value() != stored_crc {
        return Err(bad(format!(
            "CRC-32 mismatch (stored {stored_crc:#010x}, computed {:#010x}): the data are corrupt",
            h.value()
        )));
    }
    if data.len() as u32 != stored_size {
        return Err(bad(format!("size mismatch (trailer says {stored_size} mod 2^32, decompressed {})", data.len())));
    }
    Ok(consumed + 8)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::bad_format as err;

    const FTEXT: u8 = 0x01;

    /// A gzip member of `data` with the given header flags (deflate level 0..10).
    pub(crate) fn gzip(data: &[u8], level: u8, flags: u8) -> Vec<u8> {
        let mut g = vec![0x1F, 0x8B, 8, flags, 0, 0, 0, 0, 0, 3];
        if flags & FEXTRA != 0 {
            g.extend_from_slice(&[4, 0, b'a', b'b', 2, 0]);
        }
        if flags & FNAME != 0 {
            g.extend_from_slice(b"name.idx\0");
        }
        if flags & FCOMMENT != 0 {
            g.extend_from_slice(b"a comment\0");
        }
        if flags & FHCRC != 0 {
            let c = (super::super::crc32::crc32(&g) & 0xFFFF) as u16;
            g.extend_from_slice(&c.to_le_bytes());
        }
        g.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, level));
        g.extend_from_slice(&super::super::crc32::crc32(data).to_le_bytes());
        g.extend_from_slice(&(data.len() as u32).to_le_bytes());
        g
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7919) % 251) as u8).collect()
    }

    #[test]
    fn round_trips_with_every_header_field() {
        let data = sample(100_000);
        for flags in [0, FNAME, FEXTRA | FNAME | FCOMMENT | FHCRC, FTEXT | FHCRC] {
            for level in [0, 1, 6, 9] {
                let g = gzip(&data, level, flags);
                assert_eq!(decompress(&g, output_limit(g.len())).unwrap(), data, "flags {flags:#x} level {level}");
            }
        }
        assert_eq!(decompress(&gzip(b"", 6, 0), 1 << 20).unwrap(), b"");
    }

    #[test]
    fn concatenated_members_are_joined() {
        let mut g = gzip(b"hello ", 6, FNAME);
        g.extend(gzip(b"world", 1, 0));
        assert_eq!(decompress(&g, 1 << 20).unwrap(), b"hello world");
    }

    #[test]
    fn flipped_payload_byte_fails_the_crc() {
        // Level 0 stores the bytes verbatim, so the flip survives inflation and only the CRC
        // can catch it.
        let data = sample(5000);
        let mut g = gzip(&data, 0, 0);
        g[10 + 5 + 1234] ^= 0x40;
        assert!(err(decompress(&g, 1 << 20)).contains("CRC-32 mismatch"));
    }

    #[test]
    fn corrupt_size_header_crc_and_method_are_rejected() {
        let data = sample(5000);
        let mut g = gzip(&data, 6, 0);
        let n = g.len();
        g[n - 4] ^= 1;
        assert!(err(decompress(&g, 1 << 20)).contains("size mismatch"));

        let mut g = gzip(&data, 6, FNAME | FHCRC);
        g[12] ^= 1; // inside the file name, covered by the header CRC
        assert!(err(decompress(&g, 1 << 20)).contains("header CRC-16"));

        let mut g = gzip(&data, 6, 0);
        g[2] = 7;
        assert!(err(decompress(&g, 1 << 20)).contains("not deflate"));

        let mut g = gzip(&data, 6, 0);
        g[3] = 0x20;
        assert!(err(decompress(&g, 1 << 20)).contains("reserved"));
    }

    #[test]
    fn truncation_anywhere_is_detected() {
        let data = sample(20_000);
        let g = gzip(&data, 6, FNAME);
        for cut in [3, 9, 15, 30, g.len() / 2, g.len() - 9, g.len() - 5, g.len() - 1] {
            let m = err(decompress(&g[..cut], 1 << 20));
            assert!(m.contains("truncated"), "cut at {cut}: {m}");
        }
    }

    #[test]
    fn trailing_garbage_and_missing_magic_are_rejected() {
        let mut g = gzip(b"abc", 6, 0);
        g.extend_from_slice(b"xyz");
        assert!(err(decompress(&g, 1 << 20)).contains("trailing garbage"));
        assert!(err(decompress(b"plain text", 1 << 20)).contains("not a gzip"));
    }

    #[test]
    fn output_is_bounded_by_the_limit() {
        let data = vec![0u8; 1 << 20];
        let g = gzip(&data, 9, 0);
        assert!(g.len() < 5000);
        assert!(err(decompress(&g, 100_000)).contains("exceed the limit"));
        assert_eq!(decompress(&g, 1 << 20).unwrap().len(), 1 << 20);
        // A lying ISIZE (claims 4 GiB - 1) only changes the capacity hint, and is caught.
        let mut g = gzip(b"small", 6, 0);
        let n = g.len();
        g[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(decompress(&g, output_limit(g.len()))).contains("size mismatch"));
    }
}
