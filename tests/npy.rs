//! NumPy `.npy` input: files written here byte by byte, as NumPy writes them, for every dtype,
//! order and format version; the same data through `latent_dataset_from_buffer`; every
//! malformed header's status and message; a mutation loop that must never panic; and, when
//! python3 has numpy, files that np.save itself wrote.
//!
//! What NumPy writes (numpy/lib/format.py; checked against numpy 2.4 below):
//!
//! ```text
//! 93 4e 55 4d 50 59      magic "\x93NUMPY"
//! 01 00                  version 1.0 (2.0 when the header exceeds 65535 bytes, 3.0 when
//!                        it needs UTF-8)
//! 76 00                  header length, u16 LE (2.0 and 3.0: u32 LE), here 118
//! {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }     then spaces, then '\n',
//!                        so that magic + version + length + header is a multiple of 64
//! values                 shape's product of descr, C order (or Fortran when fortran_order)
//! ```
//!
//! A 1-D shape is written `(3,)`; descr is `<f4`/`<f8` (little-endian), `>f8` (big-endian),
//! `|u1` (no byte order for single bytes), `<i4`, `<i8`.

mod common;

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use latent::Dataset;
use latent::data::npy;
use latent::error::Error;
use latent::ffi::*;

/// The bytes of a .npy file as NumPy writes it: `version` 1, 2 or 3, header padded with
/// spaces and a newline to a multiple of 64 bytes.
fn npy_bytes(version: u8, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape_s}, }}",
        if fortran { "True" } else { "False" }
    );
    let len_bytes = if version == 1 { 2 } else { 4 };
    let mut header = dict.into_bytes();
    while (6 + 2 + len_bytes + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut b = b"\x93NUMPY".to_vec();
    b.extend([version, 0]);
    if version == 1 {
        b.extend((header.len() as u16).to_le_bytes());
    } else {
        b.extend((header.len() as u32).to_le_bytes());
    }
    b.extend(header);
    b.extend(data);
    b
}

/// One element type: its descr, and its encoding of a value.
struct Ty {
    descr: &'static str,
    enc: fn(f64) -> Vec<u8>,
}

const TYPES: &[Ty] = &[
    Ty { descr: "<f4", enc: |v| (v as f32).to_le_bytes().to_vec() },
    Ty { descr: ">f4", enc: |v| (v as f32).to_be_bytes().to_vec() },
    Ty { descr: "<f8", enc: |v| v.to_le_bytes().to_vec() },
    Ty { descr: ">f8", enc: |v| v.to_be_bytes().to_vec() },
    Ty { descr: "|u1", enc: |v| vec![v as u8] },
    Ty { descr: "|i1", enc: |v| vec![v as i8 as u8] },
    Ty { descr: "<i2", enc: |v| (v as i16).to_le_bytes().to_vec() },
    Ty { descr: ">i2", enc: |v| (v as i16).to_be_bytes().to_vec() },
    Ty { descr: "<i4", enc: |v| (v as i32).to_le_bytes().to_vec() },
    Ty { descr: ">i4", enc: |v| (v as i32).to_be_bytes().to_vec() },
    Ty { descr: "<i8", enc: |v| (v as i64).to_le_bytes().to_vec() },
    Ty { descr: ">i8", enc: |v| (v as i64).to_be_bytes().to_vec() },
    Ty { descr: "<u2", enc: |v| (v as u16).to_le_bytes().to_vec() },
    Ty { descr: "<u4", enc: |v| (v as u32).to_le_bytes().to_vec() },
    Ty { descr: "<u8", enc: |v| (v as u64).to_le_bytes().to_vec() },
];

/// A rows x cols matrix of small values every type holds exactly (negative only for signed).
fn values(rows: usize, cols: usize, signed: bool) -> Vec<f64> {
    (0..rows * cols).map(|i| if signed && i % 3 == 1 { -(i as f64) } else { i as f64 * 2.0 + 1.0 }).collect()
}

fn encode(t: &Ty, v: &[f64], rows: usize, cols: usize, fortran: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if fortran {
        for c in 0..cols {
            for r in 0..rows {
                out.extend((t.enc)(v[r * cols + c]));
            }
        }
    } else {
        for x in v {
            out.extend((t.enc)(*x));
        }
    }
    out
}

fn c(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

/// Rows, columns, values (row-major) and labels of a dataset read through the C API.
type Read = (usize, usize, Vec<f32>, Option<Vec<i32>>);

/// Through the C API: the status, the message, and what was read when OK.
fn from_npy_c(path: &Path, labels: Option<&Path>) -> (i32, String, Option<Read>) {
    let p = c(path);
    let l = labels.map(c);
    let mut ds: *mut latent_dataset = std::ptr::null_mut();
    let st =
        unsafe { latent_dataset_from_npy(p.as_ptr(), l.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()), &mut ds) };
    let msg = last_error();
    if st != LATENT_STATUS_OK {
        assert!(ds.is_null());
        return (st, msg, None);
    }
    unsafe {
        let (r, cc) = (latent_dataset_rows(ds), latent_dataset_cols(ds));
        let mut x = vec![0f32; r * cc];
        assert_eq!(latent_dataset_copy_rows(ds, 0, r, x.as_mut_ptr(), x.len()), 0);
        let lab = if latent_dataset_has_labels(ds) == 1 {
            let mut l = vec![0i32; r];
            assert_eq!(latent_dataset_labels(ds, l.as_mut_ptr(), r), 0);
            Some(l)
        } else {
            None
        };
        latent_dataset_free(ds);
        (st, msg, Some((r, cc, x, lab)))
    }
}

/// The same values through latent_dataset_from_buffer (f64, row-major).
fn from_buffer_c(v: &[f64], rows: usize, cols: usize) -> Vec<f32> {
    let mut ds: *mut latent_dataset = std::ptr::null_mut();
    unsafe {
        let st = latent_dataset_from_buffer(
            v.as_ptr().cast(),
            LATENT_DTYPE_F64,
            LATENT_LAYOUT_ROW_MAJOR,
            rows,
            cols,
            &mut ds,
        );
        assert_eq!(st, 0, "{}", last_error());
        let mut x = vec![0f32; rows * cols];
        assert_eq!(latent_dataset_copy_rows(ds, 0, rows, x.as_mut_ptr(), x.len()), 0);
        latent_dataset_free(ds);
        x
    }
}

#[test]
fn the_builder_writes_what_numpy_writes() {
    let data: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let b = npy_bytes(1, "<f4", false, &[2, 3], &data);
    let dict = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    assert_eq!(&b[..10], b"\x93NUMPY\x01\x00\x76\x00");
    assert_eq!(&b[10..10 + dict.len()], dict);
    assert!(b[10 + dict.len()..127].iter().all(|&c| c == b' '));
    assert_eq!(b[127], b'\n');
    assert_eq!(b.len(), 128 + 24);
    // Version 2.0 and 3.0: a 4-byte length, so 2 fewer spaces.
    let b = npy_bytes(2, "<i4", false, &[3], &[0; 12]);
    assert_eq!(&b[..12], b"\x93NUMPY\x02\x00\x74\x00\x00\x00");
    assert_eq!(b.len(), 128 + 12);
}

#[test]
fn every_dtype_order_and_version_reads_as_from_buffer() {
    let dir = scratch("npy_types");
    let mut checked = 0;
    for (ti, t) in TYPES.iter().enumerate() {
        let signed = t.descr.as_bytes()[1] != b'u';
        for &(rows, cols, one_d) in &[(4usize, 3usize, false), (5, 1, true), (1, 7, false)] {
            for fortran in [false, true] {
                for version in [1u8, 2, 3] {
                    let v = values(rows, cols, signed);
                    let shape: Vec<usize> = if one_d { vec![rows] } else { vec![rows, cols] };
                    let bytes = npy_bytes(version, t.descr, fortran, &shape, &encode(t, &v, rows, cols, fortran));
                    let path = dir.join(format!("t{ti}_{rows}x{cols}_{fortran}_{version}.npy"));
                    std::fs::write(&path, &bytes).unwrap();
                    let what = format!("{} {shape:?} fortran {fortran} version {version}", t.descr);
                    // Rust API.
                    let d = Dataset::from_npy(&path, None).unwrap_or_else(|e| panic!("{what}: {e}"));
                    let want = Dataset::from_buffer_f64(&v, rows, cols, false).unwrap();
                    assert_eq!(d, want, "{what}");
                    // C API, against latent_dataset_from_buffer.
                    let (st, msg, got) = from_npy_c(&path, None);
                    assert_eq!(st, 0, "{what}: {msg}");
                    let (r, cc, x, l) = got.unwrap();
                    assert_eq!((r, cc), (rows, cols), "{what}");
                    assert_eq!(x, from_buffer_c(&v, rows, cols), "{what}");
                    assert!(l.is_none());
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, TYPES.len() * 3 * 2 * 3);
}

#[test]
fn labels_come_from_a_second_file() {
    let dir = scratch("npy_labels");
    let v = values(4, 2, false);
    let x = dir.join("x.npy");
    std::fs::write(&x, npy_bytes(1, "<f8", false, &[4, 2], &encode(&TYPES[2], &v, 4, 2, false))).unwrap();
    let labels = [3i64, 0, 9, 1];
    for (descr, enc) in [
        ("<i8", labels.iter().flat_map(|l| l.to_le_bytes()).collect::<Vec<u8>>()),
        ("<i4", labels.iter().flat_map(|&l| (l as i32).to_le_bytes()).collect()),
        (">i4", labels.iter().flat_map(|&l| (l as i32).to_be_bytes()).collect()),
        ("|u1", labels.iter().map(|&l| l as u8).collect()),
        ("<f8", labels.iter().flat_map(|&l| (l as f64).to_le_bytes()).collect()),
    ] {
        let y = dir.join("y.npy");
        std::fs::write(&y, npy_bytes(1, descr, false, &[4], &enc)).unwrap();
        let d = Dataset::from_npy(&x, Some(&y)).unwrap();
        assert_eq!(d.labels(), Some(&[3, 0, 9, 1][..]), "{descr}");
        let (st, msg, got) = from_npy_c(&x, Some(&y));
        assert_eq!(st, 0, "{msg}");
        assert_eq!(got.unwrap().3, Some(vec![3, 0, 9, 1]));
        let mut d = Dataset::from_npy(&x, None).unwrap();
        d.set_labels_from_npy(&y).unwrap();
        assert_eq!(d.labels(), Some(&[3, 0, 9, 1][..]));
    }
    // (n, 1) labels are accepted too.
    let y = dir.join("y2.npy");
    std::fs::write(
        &y,
        npy_bytes(1, "<i8", false, &[4, 1], &labels.iter().flat_map(|l| l.to_le_bytes()).collect::<Vec<_>>()),
    )
    .unwrap();
    assert_eq!(Dataset::from_npy(&x, Some(&y)).unwrap().labels(), Some(&[3, 0, 9, 1][..]));
    // Three labels for four rows.
    let y = dir.join("y3.npy");
    std::fs::write(&y, npy_bytes(1, "|u1", false, &[3], &[1, 2, 3])).unwrap();
    let (st, msg, _) = from_npy_c(&x, Some(&y));
    assert_eq!(st, LATENT_STATUS_SHAPE_MISMATCH, "{msg}");
    assert!(msg.contains("4 rows") && msg.contains("3 labels"), "{msg}");
    // Labels that are not integers, or do not fit int32, or are two columns.
    for (descr, shape, data, want) in [
        ("<f8", vec![4], [0.5f64, 1.0, 2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(), "0.5"),
        ("<i8", vec![4], [1i64, 1 << 40, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect(), "outside the int32"),
        ("|u1", vec![2, 2], vec![1, 2, 3, 4], "shape (n,)"),
    ] {
        std::fs::write(&y, npy_bytes(1, descr, false, &shape, &data)).unwrap();
        let (st, msg, _) = from_npy_c(&x, Some(&y));
        assert_eq!(st, LATENT_STATUS_BAD_FORMAT, "{descr}: {msg}");
        assert!(msg.contains(want) && msg.contains("y3.npy"), "{descr}: {msg}");
    }
}

#[test]
fn non_finite_values_are_named_by_row_and_column() {
    let dir = scratch("npy_nonfinite");
    for (fortran, descr) in [(false, "<f4"), (true, "<f4"), (false, ">f8")] {
        let mut v = values(3, 4, true);
        v[4 + 2] = f64::NAN; // row 1, column 2
        let t = TYPES.iter().find(|t| t.descr == descr).unwrap();
        let p = dir.join("nan.npy");
        std::fs::write(&p, npy_bytes(1, descr, fortran, &[3, 4], &encode(t, &v, 3, 4, fortran))).unwrap();
        let (st, msg, _) = from_npy_c(&p, None);
        assert_eq!(st, LATENT_STATUS_NON_FINITE, "{msg}");
        assert!(msg.contains("row 1, column 2") && msg.contains("NaN") && msg.contains("nan.npy"), "{msg}");
        v[4 + 2] = 1.0;
        v[11] = f64::NEG_INFINITY;
        std::fs::write(&p, npy_bytes(1, descr, fortran, &[3, 4], &encode(t, &v, 3, 4, fortran))).unwrap();
        let (st, msg, _) = from_npy_c(&p, None);
        assert_eq!(st, LATENT_STATUS_NON_FINITE, "{msg}");
        assert!(msg.contains("row 2, column 3") && msg.contains("inf"), "{msg}");
    }
    // f64 beyond the float range.
    let p = dir.join("big.npy");
    std::fs::write(
        &p,
        npy_bytes(1, "<f8", false, &[2], &[1.0f64, 1e300].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()),
    )
    .unwrap();
    let (st, msg, _) = from_npy_c(&p, None);
    assert_eq!(st, LATENT_STATUS_NON_FINITE, "{msg}");
    assert!(msg.contains("row 1, column 0") && msg.contains("outside the f32 range"), "{msg}");
}

/// The raw header bytes (after the 10-byte preamble of version 1.0) with a given dict.
fn with_dict(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut h = dict.as_bytes().to_vec();
    h.push(b'\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h);
    b.extend(data);
    b
}

#[test]
fn malformed_files_are_bad_format_with_a_clear_message() {
    let dir = scratch("npy_malformed");
    let good = npy_bytes(1, "<f4", false, &[2, 2], &[0; 16]);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty file", vec![], "not a .npy file"),
        ("bad magic", [b"\x93NUMPZ".as_slice(), &good[6..]].concat(), "not a .npy file"),
        ("magic only", good[..6].to_vec(), "too short"),
        ("version 4.0", [&good[..6], &[4, 0][..], &good[8..]].concat(), "version 4.0"),
        ("version 1.1", [&good[..6], &[1, 1][..], &good[8..]].concat(), "version 1.1"),
        ("truncated length", good[..9].to_vec(), "too short"),
        ("header beyond the file", good[..40].to_vec(), "beyond the end of the file"),
        ("truncated data", good[..good.len() - 1].to_vec(), "truncated"),
        ("trailing bytes", [&good[..], &[0u8, 0][..]].concat(), "2 trailing bytes"),
        (
            "unknown descr",
            with_dict("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", &[0; 16]),
            "'<c8' is not supported",
        ),
        (
            "half floats",
            with_dict("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", &[0; 4]),
            "'<f2' is not supported",
        ),
        (
            "object arrays",
            with_dict("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", &[0; 16]),
            "'|O' is not supported",
        ),
        (
            "structured",
            with_dict("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", &[0; 8]),
            "expected a string",
        ),
        (
            "3-D shape",
            with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }", &[0; 32]),
            "3 dimensions",
        ),
        ("0-D shape", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &[0; 4]), "0 dimensions"),
        ("empty array", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", &[]), "empty array"),
        (
            "size mismatch",
            with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", &[0; 16]),
            "needs 24 bytes",
        ),
        (
            "huge shape",
            with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", &[0; 16]),
            "needs 8000000000000000000 bytes",
        ),
        (
            "overflowing shape",
            with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 3), }", &[0; 16]),
            "overflows",
        ),
        ("missing key", with_dict("{'descr': '<f4', 'shape': (2,), }", &[0; 8]), "must have the keys"),
        (
            "extra key",
            with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", &[0; 8]),
            "expected a string, True, False",
        ),
        (
            "unknown key",
            with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 'y'}", &[0; 8]),
            "unexpected key 'x'",
        ),
        (
            "repeated key",
            with_dict("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", &[0; 8]),
            "repeated",
        ),
        (
            "bad fortran_order",
            with_dict("{'descr': '<f4', 'fortran_order': 'no', 'shape': (2,), }", &[0; 8]),
            "fortran_order",
        ),
        (
            "negative dimension",
            with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", &[0; 8]),
            "non-negative integer",
        ),
        (
            "unterminated dict",
            with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", &[0; 8]),
            "expected '}'",
        ),
        ("unterminated string", with_dict("{'descr: '<f4'", &[]), "expected ':'"),
        ("not a dict", with_dict("['descr', '<f4']", &[0; 8]), "expected '{'"),
        (
            "text after the dict",
            with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", &[0; 8]),
            "after the dict",
        ),
    ];
    // A header that does not end with a newline.
    let mut no_nl = good.clone();
    let hlen = u16::from_le_bytes([good[8], good[9]]) as usize;
    no_nl[10 + hlen - 1] = b' ';
    cases.push(("no newline", no_nl, "newline"));
    // A non-ASCII byte in a version 1.0 header.
    let mut non_ascii = good.clone();
    non_ascii[80] = 0xe9;
    cases.push(("non-ASCII header", non_ascii, "ASCII"));
    for (name, bytes, want) in &cases {
        let p = dir.join("bad.npy");
        std::fs::write(&p, bytes).unwrap();
        let (st, msg, _) = from_npy_c(&p, None);
        assert_eq!(st, LATENT_STATUS_BAD_FORMAT, "{name}: {msg}");
        assert!(msg.contains(want), "{name}: '{msg}' does not say '{want}'");
        assert!(msg.contains("bad.npy"), "{name}: {msg}");
    }
    // A file that is not there, NULL arguments.
    let (st, msg, _) = from_npy_c(&dir.join("absent.npy"), None);
    assert_eq!(st, LATENT_STATUS_IO, "{msg}");
    let mut ds: *mut latent_dataset = std::ptr::dangling_mut();
    assert_eq!(
        unsafe { latent_dataset_from_npy(std::ptr::null(), std::ptr::null(), &mut ds) },
        LATENT_STATUS_NULL_ARGUMENT
    );
    assert!(ds.is_null());
    let p = c(&dir.join("bad.npy"));
    assert_eq!(
        unsafe { latent_dataset_from_npy(p.as_ptr(), std::ptr::null(), std::ptr::null_mut()) },
        LATENT_STATUS_NULL_ARGUMENT
    );
}

#[test]
fn the_header_length_is_not_trusted_and_gzip_is_read() {
    // A u32 length of 4 GB in a 2.0 header, and a 1 MB + 1 length: refused before reading on.
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend(u32::MAX.to_le_bytes());
    b.extend(b"{}\n");
    assert!(matches!(npy::parse_matrix(&b), Err(Error::BadFormat(m)) if m.contains("larger than any")));
    // Compressed .npy.gz files read as the plain ones.
    let dir = scratch("npy_gzip");
    let v = values(3, 2, true);
    let raw = npy_bytes(1, "<f4", false, &[3, 2], &encode(&TYPES[0], &v, 3, 2, false));
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend(miniz_oxide::deflate::compress_to_vec(&raw, 6));
    gz.extend(latent::data::crc32::crc32(&raw).to_le_bytes());
    gz.extend((raw.len() as u32).to_le_bytes());
    let p = dir.join("x.npy.gz");
    std::fs::write(&p, gz).unwrap();
    assert_eq!(Dataset::from_npy(&p, None).unwrap(), Dataset::from_buffer_f64(&v, 3, 2, false).unwrap());
}

#[test]
fn mutations_never_panic() {
    let v = values(3, 2, true);
    let files = [
        npy_bytes(1, "<f4", false, &[3, 2], &encode(&TYPES[0], &v, 3, 2, false)),
        npy_bytes(2, ">f8", true, &[3, 2], &encode(&TYPES[3], &v, 3, 2, true)),
        npy_bytes(3, "<i8", false, &[6], &encode(&TYPES[10], &v, 6, 1, false)),
    ];
    let mut outcomes = [0usize; 2];
    for good in &files {
        // Truncated at every length: an error each time, the full file reads.
        for n in 0..good.len() {
            assert!(npy::parse_matrix(&good[..n]).is_err(), "truncated at {n} reads");
            assert!(npy::parse_labels(&good[..n]).is_err());
        }
        assert!(npy::parse_matrix(good).is_ok());
        // Every header byte replaced by a few interesting values, and every pair of adjacent
        // header bytes swapped: whatever comes back, no panic.
        let header_end = npy::parse_header(good).unwrap().data_offset;
        for i in 0..header_end {
            for x in [0u8, 0xff, b' ', b'\'', b'(', b')', b',', b'9', b'}', b'\n', good[i] ^ 1, good[i] ^ 0x80] {
                let mut m = good.clone();
                m[i] = x;
                let ok = std::panic::catch_unwind(|| (npy::parse_matrix(&m).is_ok(), npy::parse_labels(&m).is_ok()));
                let (a, _) = ok.unwrap_or_else(|_| panic!("panic with byte {i} = {x:#04x}"));
                outcomes[a as usize] += 1;
            }
            if i + 1 < header_end {
                let mut m = good.clone();
                m.swap(i, i + 1);
                let _ = npy::parse_matrix(&m);
            }
        }
    }
    // Most mutations are rejected; some (a padding space turned into a tab-like byte that is
    // still whitespace, a changed value byte) still read.
    assert!(outcomes[0] > outcomes[1], "{outcomes:?}");
}

/// python3 with numpy writes the files (np.save); skipped silently without numpy.
fn numpy_files(dir: &Path) -> Option<PathBuf> {
    let ok = Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        return None;
    }
    let script = r#"
import sys, numpy as np
d = sys.argv[1]
a = (np.arange(12, dtype=np.float64).reshape(3, 4) - 5.5) / 3
np.save(d + '/f4.npy', a.astype('<f4'))
np.save(d + '/f8.npy', a)
np.save(d + '/f8_fortran.npy', np.asfortranarray(a))
np.save(d + '/f4_big.npy', a.astype('>f4'))
np.save(d + '/u1.npy', (np.arange(12).reshape(3, 4) * 20).astype(np.uint8))
np.save(d + '/vec.npy', np.array([1.5, -2.0, 3.25], dtype=np.float32))
np.save(d + '/labels.npy', np.array([7, 0, 3], dtype=np.int64))
np.save(d + '/labels_i4.npy', np.array([7, 0, 3], dtype=np.int32))
with open(d + '/v2.npy', 'wb') as f:
    np.lib.format.write_array(f, a.astype('<f4'), version=(2, 0))
with open(d + '/v3.npy', 'wb') as f:
    np.lib.format.write_array(f, a.astype('<f4'), version=(3, 0))
"#;
    let o = Command::new("python3").args(["-c", script]).arg(dir).output().ok()?;
    assert!(o.status.success(), "numpy script failed: {}", String::from_utf8_lossy(&o.stderr));
    Some(dir.to_path_buf())
}

#[test]
fn files_numpy_writes_read_the_same() {
    let dir = scratch("npy_numpy");
    let Some(d) = numpy_files(&dir) else { return };
    let a: Vec<f64> = (0..12).map(|i| (i as f64 - 5.5) / 3.0).collect();
    let want = Dataset::from_buffer_f64(&a, 3, 4, false).unwrap();
    for f in ["f4.npy", "f8.npy", "f8_fortran.npy", "f4_big.npy", "v2.npy", "v3.npy"] {
        let got = Dataset::from_npy(d.join(f), Some(&d.join("labels.npy"))).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(got.x(), want.x(), "{f}");
        assert_eq!(got.labels(), Some(&[7, 0, 3][..]), "{f}");
    }
    let u = Dataset::from_npy(d.join("u1.npy"), Some(&d.join("labels_i4.npy"))).unwrap();
    assert_eq!(u.x().row(2), &[160.0, 180.0, 200.0, 220.0]);
    let v = Dataset::from_npy(d.join("vec.npy"), None).unwrap();
    assert_eq!((v.rows(), v.cols()), (3, 1));
    assert_eq!(v.x().as_slice(), &[1.5, -2.0, 3.25]);
    // Our builder writes the very bytes np.save wrote.
    let f4: Vec<u8> = a.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect();
    assert_eq!(std::fs::read(d.join("f4.npy")).unwrap(), npy_bytes(1, "<f4", false, &[3, 4], &f4));
    assert_eq!(std::fs::read(d.join("v2.npy")).unwrap(), npy_bytes(2, "<f4", false, &[3, 4], &f4));
    assert_eq!(std::fs::read(d.join("v3.npy")).unwrap(), npy_bytes(3, "<f4", false, &[3, 4], &f4));
}
