//! NumPy `.npy` files (what `np.save` writes), plain or gzip-compressed.
//!
//! A file is the magic `\x93NUMPY`, a major and a minor version byte, the header length
//! (format 1.0: u16 little-endian; 2.0 and 3.0: u32 little-endian), then the header: an ASCII
//! (3.0: UTF-8) Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, padded with spaces and ended
//! by a newline so that the data starts at a multiple of 64 bytes (NumPy >= 1.? pads to 64,
//! older versions to 16; any padding is accepted here). The values follow, `shape` elements of
//! `descr`, in C (row-major) or Fortran (column-major) order, and nothing after them.
//!
//! Accepted: element types `f4`, `f8` and the integers `i1 i2 i4 i8 u1 u2 u4 u8`, little (`<`)
//! or big (`>`) endian (`|` for one-byte types); shapes `(n,)` (n rows of one column) and
//! `(n, m)`. Everything else (structured or object arrays, other ranks, a size that does not
//! match the data) is [`Error::BadFormat`] with what was found; sizes are checked against the
//! file's length before anything is allocated from them.

use std::path::Path;

use super::{bad, gzip};
use crate::error::{Error, Result, try_zeros};
use crate::tensor::Matrix;

pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Longest header accepted (NumPy itself refuses headers over 10,000 bytes by default).
pub const MAX_HEADER: usize = 1 << 20;

/// The element type of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Float,
    Int,
    Uint,
}

/// A parsed `descr`: kind, size in bytes, byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dtype {
    pub kind: Kind,
    pub size: usize,
    pub big_endian: bool,
}

impl Dtype {
    /// Parses `<f4`, `>f8`, `|u1`, `<i8`, ...
    pub fn parse(descr: &str) -> Result<Dtype> {
        let unknown = || {
            bad(format!(
                "descr '{descr}' is not supported (expected <f4, <f8, >f4, >f8, |u1, |i1 or \
                 <i2/<i4/<i8/<u2/<u4/<u8, either byte order)"
            ))
        };
        let b = descr.as_bytes();
        if b.len() < 3 {
            return Err(unknown());
        }
        let kind = match b[1] {
            b'f' => Kind::Float,
            b'i' => Kind::Int,
            b'u' => Kind::Uint,
            _ => return Err(unknown()),
        };
        let size: usize = descr[2..].parse().map_err(|_| unknown())?;
        let ok_size = match kind {
            Kind::Float => matches!(size, 4 | 8),
            _ => matches!(size, 1 | 2 | 4 | 8),
        };
        if !ok_size {
            return Err(unknown());
        }
        let big_endian = match (b[0], size) {
            (b'<', _) => false,
            (b'>', _) => true,
            (b'|', 1) => false,
            _ => return Err(unknown()),
        };
        Ok(Dtype { kind, size, big_endian })
    }

    /// The bits of the element at byte offset `i*size` of `data`, in the low bytes of a u64
    /// (an Int sign-extended from its size: the bits of its i64).
    fn bits(&self, data: &[u8], i: usize) -> u64 {
        let s = &data[i * self.size..(i + 1) * self.size];
        let mut buf = [0u8; 8];
        if self.big_endian {
            for (k, &v) in s.iter().rev().enumerate() {
                buf[k] = v;
            }
        } else {
            buf[..self.size].copy_from_slice(s);
        }
        let shift = 64 - 8 * self.size as u32;
        match self.kind {
            Kind::Int => ((u64::from_le_bytes(buf) << shift) as i64 >> shift) as u64,
            _ => u64::from_le_bytes(buf),
        }
    }

    /// The element at byte offset `i*size` of `data`, as f64 (integers beyond 2^53 round).
    fn get(&self, data: &[u8], i: usize) -> f64 {
        let b = self.bits(data, i);
        match (self.kind, self.size) {
            (Kind::Float, 4) => f32::from_bits(b as u32) as f64,
            (Kind::Float, _) => f64::from_bits(b),
            (Kind::Uint, _) => b as f64,
            (Kind::Int, _) => b as i64 as f64,
        }
    }

    /// The element as an exact i64 (integer kinds; u64 above i64::MAX saturates).
    fn get_int(&self, data: &[u8], i: usize) -> Option<i64> {
        let b = self.bits(data, i);
        match self.kind {
            Kind::Uint => i64::try_from(b).ok(),
            Kind::Int => Some(b as i64),
            Kind::Float => None,
        }
    }
}

/// A checked `.npy` header: what the dict says, and where the data starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    pub version: (u8, u8),
    pub dtype: Dtype,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    pub data_offset: usize,
}

impl NpyHeader {
    /// Rows and columns: `(n,)` is n x 1, `(n, m)` is n x m.
    pub fn rows_cols(&self) -> (usize, usize) {
        match self.shape[..] {
            [n] => (n, 1),
            [n, m] => (n, m),
            _ => (0, 0),
        }
    }
}

/// A value of the header dict.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// A tiny parser for the one Python literal NumPy writes: a dict of string keys to strings,
/// True/False and tuples of integers.
struct Lit<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lit<'a> {
    fn err(&self, what: &str) -> Error {
        bad(format!("header dict: {what} at byte {} of the header", self.pos))
    }
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        if self.eat(c) { Ok(()) } else { Err(self.err(&format!("expected '{}'", c as char))) }
    }
    fn string(&mut self) -> Result<String> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.err("expected a quoted string")),
        };
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != q {
            if self.s[self.pos] == b'\\' {
                return Err(self.err("escapes in strings are not supported"));
            }
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return Err(self.err("unterminated string"));
        }
        let v = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| self.err("string is not UTF-8"))?;
        self.pos += 1;
        Ok(v.to_string())
    }
    fn word(&mut self) -> &'a [u8] {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len() && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_') {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }
    fn value(&mut self) -> Result<Value> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => {
                self.pos += 1;
                let mut v = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    let w = self.word();
                    let digits = w.strip_suffix(b"L").unwrap_or(w); // Python 2 longs: (3L, 4L)
                    let n = std::str::from_utf8(digits)
                        .ok()
                        .filter(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
                        .and_then(|d| d.parse::<u64>().ok())
                        .ok_or_else(|| self.err("expected a non-negative integer in the shape"))?;
                    v.push(n);
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        break;
                    }
                }
                Ok(Value::Tuple(v))
            }
            _ => match self.word() {
                b"True" => Ok(Value::Bool(true)),
                b"False" => Ok(Value::Bool(false)),
                _ => Err(self.err("expected a string, True, False or a tuple")),
            },
        }
    }
    fn dict(&mut self) -> Result<Vec<(String, Value)>> {
        self.expect(b'{')?;
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                break;
            }
            let k = self.string()?;
            self.expect(b':')?;
            let v = self.value()?;
            if out.iter().any(|(o, _)| *o == k) {
                return Err(self.err(&format!("key '{k}' repeated")));
            }
            out.push((k, v));
            if !self.eat(b',') {
                self.expect(b'}')?;
                break;
            }
        }
        if self.peek().is_some() {
            return Err(self.err("unexpected text after the dict"));
        }
        Ok(out)
    }
}

/// Parses and checks the header of a `.npy` file, and that the data fills the rest of `bytes`
/// exactly.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader> {
    parse_header_of_len(bytes, bytes.len() as u64)
}

/// [`parse_header`] of a file of `file_len` bytes from its first bytes `bytes` (at least the
/// whole header): what a reader that streams the data checks before reading it.
pub fn parse_header_of_len(bytes: &[u8], file_len: u64) -> Result<NpyHeader> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        let n = bytes.len().min(6);
        return Err(bad(format!(
            "not a .npy file: it must start with \\x93NUMPY and a version (found {:02x?}{})",
            &bytes[..n],
            if bytes.len() < 8 { ", file too short" } else { "" }
        )));
    }
    let version = (bytes[6], bytes[7]);
    let (len_bytes, utf8) = match version {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        (a, b) => return Err(bad(format!(".npy format version {a}.{b} is not supported (1.0, 2.0 or 3.0)"))),
    };
    let start = 8 + len_bytes;
    let len_field = bytes.get(8..start).ok_or_else(|| {
        bad(format!("{} bytes is too short for a version {}.0 header length", bytes.len(), version.0))
    })?;
    let hlen = if len_bytes == 2 {
        u16::from_le_bytes([len_field[0], len_field[1]]) as usize
    } else {
        u32::from_le_bytes([len_field[0], len_field[1], len_field[2], len_field[3]]) as usize
    };
    if hlen > MAX_HEADER {
        return Err(bad(format!("header length {hlen} is larger than any .npy header (at most {MAX_HEADER})")));
    }
    let data_offset = start + hlen;
    let head = bytes.get(start..data_offset).ok_or_else(|| {
        bad(format!(
            "header length {hlen} goes beyond the end of the file ({} bytes after the length field)",
            bytes.len() - start
        ))
    })?;
    if !utf8 && !head.is_ascii() {
        return Err(bad(format!("a version {}.0 header must be ASCII", version.0)));
    }
    if head.last() != Some(&b'\n') {
        return Err(bad("the header does not end with a newline".into()));
    }
    let dict = Lit { s: head, pos: 0 }.dict()?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in dict {
        match (k.as_str(), v) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            ("descr", _) => {
                return Err(bad("header: descr is not a string (structured arrays are not supported)".into()));
            }
            ("fortran_order", _) => return Err(bad("header: fortran_order is not True or False".into())),
            ("shape", _) => return Err(bad("header: shape is not a tuple of integers".into())),
            (other, _) => return Err(bad(format!("header: unexpected key '{other}'"))),
        }
    }
    let (Some(descr), Some(fortran_order), Some(shape)) = (descr, fortran, shape) else {
        return Err(bad("header: it must have the keys 'descr', 'fortran_order' and 'shape'".into()));
    };
    let dtype = Dtype::parse(&descr)?;
    if shape.is_empty() || shape.len() > 2 {
        return Err(bad(format!(
            "shape {shape:?} has {} dimensions: only 1 (n rows) or 2 (rows x columns) are read \
             (reshape images to (n, height*width) before saving)",
            shape.len()
        )));
    }
    let shape: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("shape {shape:?} overflows"))))
        .collect::<Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(dtype.size))
        .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    let actual = usize::try_from(file_len - data_offset as u64).unwrap_or(usize::MAX);
    if actual < count {
        return Err(bad(format!(
            "shape {shape:?} of '{descr}' needs {count} bytes of data but the file holds {actual}: truncated"
        )));
    }
    if actual > count {
        return Err(bad(format!(
            "{} trailing bytes after the {count} bytes of data that shape {shape:?} of '{descr}' needs",
            actual - count
        )));
    }
    if count == 0 {
        return Err(bad(format!("empty array (shape {shape:?})")));
    }
    Ok(NpyHeader { version, dtype, fortran_order, shape, data_offset })
}

/// Index into the data of element (r, c) of a rows x cols array.
fn index(h: &NpyHeader, rows: usize, cols: usize, r: usize, c: usize) -> usize {
    if h.fortran_order { c * rows + r } else { r * cols + c }
}

/// The values of a `.npy` file as a row-major f32 matrix (Fortran order transposed). NaN, Inf
/// and values beyond the f32 range are [`Error::NonFinite`] naming the (0-based) row and column.
pub fn parse_matrix(bytes: &[u8]) -> Result<Matrix> {
    let h = parse_header(bytes)?;
    let (rows, cols) = h.rows_cols();
    let data = &bytes[h.data_offset..];
    let mut v = try_zeros::<f32>(rows * cols)?;
    for r in 0..rows {
        for c in 0..cols {
            let x = h.dtype.get(data, index(&h, rows, cols, r, c));
            let f = x as f32;
            if !f.is_finite() {
                let why = if x.is_finite() { " (outside the f32 range)" } else { "" };
                return Err(Error::NonFinite(format!("row {r}, column {c} is {x:?}{why}")));
            }
            v[r * cols + c] = f;
        }
    }
    Matrix::from_vec(rows, cols, v)
}

/// Labels from a `.npy` file of integers (or of integral floats), shape `(n,)` or `(n, 1)`.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<i32>> {
    let h = parse_header(bytes)?;
    let (rows, cols) = h.rows_cols();
    if cols != 1 {
        return Err(bad(format!("labels must have shape (n,) or (n, 1), not {:?}", h.shape)));
    }
    let data = &bytes[h.data_offset..];
    let mut out = try_zeros::<i32>(rows)?;
    for (i, o) in out.iter_mut().enumerate() {
        let v = match h.dtype.kind {
            Kind::Float => {
                let x = h.dtype.get(data, i);
                if x.fract() != 0.0 || !x.is_finite() || x.abs() > i32::MAX as f64 {
                    return Err(bad(format!("label {i} is {x:?}, not an integer in the int32 range")));
                }
                x as i64
            }
            _ => h.dtype.get_int(data, i).unwrap_or(i64::MAX),
        };
        *o = i32::try_from(v).map_err(|_| bad(format!("label {i} is {v}, outside the int32 range")))?;
    }
    Ok(out)
}

/// Reads a `.npy` file (plain or gzip) as a matrix.
pub fn read_matrix(path: &Path) -> Result<Matrix> {
    parse_matrix(&gzip::read_file(path)?).map_err(|e| in_file(path, e))
}

/// Reads a `.npy` file (plain or gzip) of labels.
pub fn read_labels(path: &Path) -> Result<Vec<i32>> {
    parse_labels(&gzip::read_file(path)?).map_err(|e| in_file(path, e))
}

/// The path in front of format and non-finite messages.
fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::NonFinite(m) => Error::NonFinite(format!("{}: {m}", path.display())),
        other => super::in_file(path, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend([1, 0]);
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn reads_a_small_float_array() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let b = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &data);
        assert_eq!(b.len(), 128 + 24);
        let m = parse_matrix(&b).unwrap();
        assert_eq!((m.rows(), m.cols()), (2, 3));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
        let b = npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", &data);
        let m = parse_matrix(&b).unwrap();
        assert_eq!(m.row(0), &[1.0, 3.0, 5.0]);
    }

    #[test]
    fn integers_sign_extend() {
        let d = Dtype::parse(">i2").unwrap();
        assert_eq!(d.get(&[0xff, 0xfe], 0), -2.0);
        let d = Dtype::parse("<i4").unwrap();
        assert_eq!(d.get_int(&[0xfe, 0xff, 0xff, 0xff], 0), Some(-2));
        assert!(Dtype::parse("|f4").is_err());
        assert!(Dtype::parse("<f2").is_err());
        assert!(Dtype::parse("<c8").is_err());
    }
}
