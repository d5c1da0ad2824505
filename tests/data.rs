//! Data in, on real files (MNIST, Fashion-MNIST, digits, UCI HIGGS, found through the one
//! resolver) and through the C API: shapes, known values computed independently (Python's gzip
//! module), corrupt files, exact status codes, scaling and splits.
//!
//! Missing data prints `SKIPPED: ...` and returns; with LATENT_REQUIRE_DATA=1 it fails instead.

use std::ffi::{CStr, CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use latent::Matrix;
use latent::data::crc32::crc32;
use latent::data::gzip;
use latent::data::resolve::{self, find_or_skip, mnist_files};
use latent::data::{CsvOptions, Dataset, Scaler, Scaling};
use latent::error::Error;
use latent::ffi::dataset::*;
use latent::ffi::*;

// ---------------------------------------------------------------------------------------------
// helpers

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("latent-test-data-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A one-member gzip file (FNAME set) written independently of the library's reader.
fn gzip_bytes(data: &[u8], level: u8) -> Vec<u8> {
    let mut g = vec![0x1F, 0x8B, 8, 0x08, 0, 0, 0, 0, 0, 3];
    g.extend_from_slice(b"file.idx\0");
    g.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, level));
    g.extend_from_slice(&crc32(data).to_le_bytes());
    g.extend_from_slice(&(data.len() as u32).to_le_bytes());
    g
}

fn idx_images_header(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = 0x0803u32.to_be_bytes().to_vec();
    for d in [n, rows, cols] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b
}

fn bad_format<T: std::fmt::Debug>(r: latent::Result<T>) -> String {
    match r {
        Err(Error::BadFormat(m)) => m,
        other => panic!("expected BadFormat, got {other:?}"),
    }
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn cpath(p: &Path) -> CString {
    c(p.to_str().unwrap())
}

/// A pointer that is not NULL, to see that failures reset handle out-parameters.
fn sentinel() -> *mut latent_dataset {
    std::ptr::dangling_mut::<u8>() as *mut latent_dataset
}

fn label_counts(labels: &[i32]) -> [usize; 10] {
    let mut n = [0; 10];
    for &l in labels {
        n[l as usize] += 1;
    }
    n
}

fn row_sum(x: &Matrix, r: usize) -> f64 {
    x.row(r).iter().map(|&v| v as f64).sum()
}

/// Rows of a C dataset handle, through latent_dataset_copy_rows.
fn c_rows(ds: *const latent_dataset) -> Vec<f32> {
    let n = unsafe { latent_dataset_rows(ds) * latent_dataset_cols(ds) };
    let mut v = vec![0f32; n];
    let rows = unsafe { latent_dataset_rows(ds) };
    assert_eq!(unsafe { latent_dataset_copy_rows(ds, 0, rows, v.as_mut_ptr(), n) }, LATENT_STATUS_OK);
    v
}

fn c_labels(ds: *const latent_dataset) -> Vec<i32> {
    let n = unsafe { latent_dataset_rows(ds) };
    let mut v = vec![0i32; n];
    assert_eq!(unsafe { latent_dataset_labels(ds, v.as_mut_ptr(), n) }, LATENT_STATUS_OK, "{}", last_error());
    v
}

fn c_buffer_f32(v: &[f32], rows: usize, cols: usize) -> *mut latent_dataset {
    let mut ds = null_mut();
    let s = unsafe {
        latent_dataset_from_buffer(
            v.as_ptr() as *const c_void,
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            rows,
            cols,
            &mut ds,
        )
    };
    assert_eq!(s, LATENT_STATUS_OK, "{}", last_error());
    ds
}

// ---------------------------------------------------------------------------------------------
// IDX on real data

#[test]
fn idx_mnist_train_shape_label_counts_and_pixel_sums() {
    let Some(dir) = find_or_skip("mnist") else {
        return;
    };
    let (ti, tl, vi, vl) = mnist_files(&dir).unwrap();
    let train = Dataset::from_idx(&ti, Some(tl.as_path())).unwrap();
    assert_eq!((train.rows(), train.cols()), (60000, 784));
    let labels = train.labels().unwrap();
    // Published counts (shared/data/README.md).
    assert_eq!(label_counts(labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(&labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    // Pixel sums computed once with Python's gzip module: sum(data[16:16+784]).
    let x = train.x();
    assert_eq!(row_sum(x, 0), 27525.0);
    assert_eq!(row_sum(x, 59999), 20920.0);
    let mut row14 = [0f32; 28];
    row14[13..19].copy_from_slice(&[81.0, 240.0, 253.0, 253.0, 119.0, 25.0]);
    assert_eq!(&x.row(0)[14 * 28..15 * 28], &row14);
    assert_eq!(x.as_slice().iter().cloned().fold(0f32, f32::max), 255.0);

    let test = Dataset::from_idx(&vi, Some(vl.as_path())).unwrap();
    assert_eq!((test.rows(), test.cols()), (10000, 784));
    assert_eq!(row_sum(test.x(), 0), 18454.0);
    assert_eq!(label_counts(test.labels().unwrap()), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
}

#[test]
fn idx_uncompressed_copy_loads_identically() {
    let Some(dir) = find_or_skip("mnist") else {
        return;
    };
    let (ti, tl, _, _) = mnist_files(&dir).unwrap();
    let raw = gzip::read_file(&ti).unwrap();
    // Length and zlib.crc32 of the decompressed file, both from Python.
    assert_eq!(raw.len(), 47_040_016);
    assert_eq!(crc32(&raw), 0xE9F4_D8B3);
    let tmp = TempDir::new("plain");
    // The dotted name of the original MNIST distribution, uncompressed.
    let plain = tmp.file("train-images.idx3-ubyte", &raw);
    drop(raw);
    let a = Dataset::from_idx(&ti, Some(tl.as_path())).unwrap();
    let b = Dataset::from_idx(&plain, Some(tl.as_path())).unwrap();
    assert_eq!(a, b);
    drop((a, b));
    // Compression is detected by content, not by name: gzip without .gz, plain with .gz.
    let labels_raw = gzip::read_file(&tl).unwrap();
    let gz_no_ext = tmp.file("labels-plain-name", &std::fs::read(&tl).unwrap());
    let plain_gz_ext = tmp.file("labels.gz", &labels_raw);
    let l1 = latent::data::idx::read_labels(&gz_no_ext).unwrap();
    let l2 = latent::data::idx::read_labels(&plain_gz_ext).unwrap();
    assert_eq!(l1, l2);
    assert_eq!(l1.len(), 60000);
}

#[test]
fn idx_fashion_mnist_test_set() {
    let Some(dir) = find_or_skip("fashion-mnist") else {
        return;
    };
    let (_, _, vi, vl) = mnist_files(&dir).unwrap();
    let mut ds = null_mut();
    let (ci, cl) = (cpath(&vi), cpath(&vl));
    assert_eq!(
        unsafe { latent_dataset_from_idx(ci.as_ptr(), cl.as_ptr(), &mut ds) },
        LATENT_STATUS_OK,
        "{}",
        last_error()
    );
    assert_eq!(
        unsafe { (latent_dataset_rows(ds), latent_dataset_cols(ds), latent_dataset_has_labels(ds),) },
        (10000, 784, 1)
    );
    let labels = c_labels(ds);
    assert_eq!(label_counts(&labels), [1000; 10]);
    assert_eq!(&labels[..10], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    let x = c_rows(ds);
    assert_eq!(x[..784].iter().map(|&v| v as f64).sum::<f64>(), 33456.0);
    assert_eq!(x[9999 * 784..].iter().map(|&v| v as f64).sum::<f64>(), 24390.0);
    // Divide by 255: the same pixels in [0, 1].
    assert_eq!(unsafe { latent_dataset_scale(ds, LATENT_SCALING_DIVIDE_255) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_dataset_scaling(ds) }, LATENT_SCALING_DIVIDE_255);
    let s = c_rows(ds);
    assert!(s.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(s[..784].iter().map(|&v| v as f64 * 255.0).sum::<f64>().round(), 33456.0);
    unsafe { latent_dataset_free(ds) };
}

#[test]
fn idx_corrupt_real_files_are_bad_format() {
    let Some(dir) = find_or_skip("mnist") else {
        return;
    };
    let (ti, tl, vi, vl) = mnist_files(&dir).unwrap();
    let gz = std::fs::read(&vl).unwrap();
    let tmp = TempDir::new("corrupt");
    let mut flipped = gz.clone();
    let mid = gz.len() / 2;
    flipped[mid] ^= 0x10;
    let mut wrong_magic = gzip::read_file(&vl).unwrap();
    wrong_magic[3] = 3; // labels file claiming 3 dimensions
    let cases = [
        ("flipped.gz", flipped),
        ("truncated.gz", gz[..gz.len() - 100].to_vec()),
        ("cut-trailer.gz", gz[..gz.len() - 3].to_vec()),
        ("wrong-magic", wrong_magic),
    ];
    for (name, bytes) in cases {
        let p = tmp.file(name, &bytes);
        let m = bad_format(latent::data::idx::read_labels(&p));
        assert!(m.contains(name), "the message names the file: {m}");
        // Through C: the same status, and the handle stays NULL.
        let (cp, ci) = (cpath(&p), cpath(&vi));
        let mut ds = sentinel();
        assert_eq!(
            unsafe { latent_dataset_from_idx(ci.as_ptr(), cp.as_ptr(), &mut ds) },
            LATENT_STATUS_BAD_FORMAT,
            "{name}"
        );
        assert!(ds.is_null());
    }
    // Counts that disagree: 10,000 test images with 60,000 training labels.
    let (ci, cl) = (cpath(&vi), cpath(&tl));
    let mut ds = sentinel();
    assert_eq!(unsafe { latent_dataset_from_idx(ci.as_ptr(), cl.as_ptr(), &mut ds) }, LATENT_STATUS_SHAPE_MISMATCH);
    assert!(ds.is_null());
    assert!(last_error().contains("10000 images") && last_error().contains("60000 labels"), "{}", last_error());
    // Images where labels are expected.
    assert!(matches!(Dataset::from_idx(&vi, Some(ti.as_path())), Err(Error::BadFormat(_))));
}

// ---------------------------------------------------------------------------------------------
// IDX on synthetic files (no data needed)

#[test]
fn idx_synthetic_corruption_and_huge_headers() {
    let tmp = TempDir::new("synthetic");
    let mut img = idx_images_header(3, 2, 2);
    img.extend(0u8..12);
    let good = Dataset::from_idx(tmp.file("ok.gz", &gzip_bytes(&img, 6)), None).unwrap();
    assert_eq!((good.rows(), good.cols()), (3, 4));
    assert_eq!(good.x().row(2), &[8.0, 9.0, 10.0, 11.0]);
    assert!(good.labels().is_none());

    // A flipped byte in a stored (level 0) deflate block inflates fine: only the CRC sees it.
    let mut g = gzip_bytes(&img, 0);
    let n = g.len();
    g[n - 8 - 3] ^= 0x01;
    let m = bad_format(Dataset::from_idx(tmp.file("flip.gz", &g), None));
    assert!(m.contains("CRC-32"), "{m}");

    // A billion 28x28 images claimed by a small file: BadFormat, not an allocation attempt
    // (which would be 784 GB, reported as OutOfMemory or worse).
    let mut huge = idx_images_header(1_000_000_000, 28, 28);
    huge.extend(std::iter::repeat_n(7u8, 784));
    for (name, bytes) in [("huge", huge.clone()), ("huge.gz", gzip_bytes(&huge, 6))] {
        let m = bad_format(Dataset::from_idx(tmp.file(name, &bytes), None));
        assert!(m.contains("784000000000"), "{m}");
    }
    let mut wrong = img.clone();
    wrong[2] = 0x0B; // i16 elements
    assert!(bad_format(Dataset::from_idx(tmp.file("wrong-type", &wrong), None)).contains("not supported"));
    wrong[0] = 0x1F;
    assert!(bad_format(Dataset::from_idx(tmp.file("wrong-magic", &wrong), None)).contains("not IDX"));
    // Missing file: an I/O error naming it.
    match Dataset::from_idx(tmp.0.join("absent"), None) {
        Err(Error::Io(m)) => assert!(m.contains("absent")),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// CSV / TSV

#[test]
fn csv_digits_shape_values_and_labels() {
    let Some(path) = find_or_skip("digits/digits.csv.gz") else {
        return;
    };
    let opts = CsvOptions { label_column: Some(64), ..CsvOptions::default() };
    let d = Dataset::from_csv(&path, &opts).unwrap();
    assert_eq!((d.rows(), d.cols()), (1797, 64));
    assert_eq!(&d.x().row(0)[..8], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
    assert_eq!(&d.x().row(1796)[60..], &[14.0, 12.0, 1.0, 0.0]);
    assert_eq!(d.labels().unwrap()[1796], 8);
    assert_eq!(d.x().as_slice().iter().map(|&v| v as f64).sum::<f64>(), 561718.0);
    assert_eq!(label_counts(d.labels().unwrap()), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert_eq!(d.labels().unwrap()[0], 0);

    // The same through C, without a label column: 65 columns.
    let cp = cpath(&path);
    let mut ds = null_mut();
    assert_eq!(unsafe { latent_dataset_from_csv(cp.as_ptr(), null(), &mut ds) }, LATENT_STATUS_OK, "{}", last_error());
    assert_eq!(
        unsafe { (latent_dataset_rows(ds), latent_dataset_cols(ds), latent_dataset_has_labels(ds),) },
        (1797, 65, 0)
    );
    let mut l = [0i32; 1797];
    assert_eq!(unsafe { latent_dataset_labels(ds, l.as_mut_ptr(), l.len()) }, LATENT_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("no labels"));
    unsafe { latent_dataset_free(ds) };
}

#[test]
fn csv_higgs_tsv_shape_and_labels() {
    let Some(path) = find_or_skip("higgs/uci-higgs/binary.train") else {
        return;
    };
    let mut p = latent_csv_params_default();
    p.delimiter = b'\t' as c_char;
    p.label_column = 0;
    let cp = cpath(&path);
    let mut ds = null_mut();
    assert_eq!(unsafe { latent_dataset_from_csv(cp.as_ptr(), &p, &mut ds) }, LATENT_STATUS_OK, "{}", last_error());
    assert_eq!(unsafe { (latent_dataset_rows(ds), latent_dataset_cols(ds)) }, (7000, 28));
    let labels = c_labels(ds);
    assert!(labels.iter().all(|&l| l == 0 || l == 1));
    assert_eq!(labels.iter().sum::<i32>(), 3716);
    let x = c_rows(ds);
    assert_eq!(&x[..3], &[0.869, -0.635, 0.226]);
    assert_eq!(x[7000 * 28 - 1], 1.018);
    unsafe { latent_dataset_free(ds) };

    let test = Dataset::from_csv(
        path.with_file_name("binary.test"),
        &CsvOptions { label_column: Some(0), ..CsvOptions::tsv() },
    )
    .unwrap();
    assert_eq!((test.rows(), test.cols()), (500, 28));
}

#[test]
fn csv_errors_name_line_and_column() {
    let tmp = TempDir::new("csv");
    let p = tmp.file("bad.csv", b"a,b,c\n1,2,3\n4,oops,6\n");
    let opts = CsvOptions { has_header: true, ..CsvOptions::default() };
    let m = bad_format(Dataset::from_csv(&p, &opts));
    assert!(m.ends_with("line 3, column 2: cannot parse \"oops\" as a number"), "{m}");
    assert!(m.contains("bad.csv"), "{m}");

    // The same file through C, with and without the header option.
    let cp = cpath(&p);
    let mut params = latent_csv_params_default();
    params.has_header = 1;
    let mut ds = sentinel();
    assert_eq!(unsafe { latent_dataset_from_csv(cp.as_ptr(), &params, &mut ds) }, LATENT_STATUS_BAD_FORMAT);
    assert!(ds.is_null());
    assert!(last_error().contains("line 3, column 2"), "{}", last_error());
    let mut ds = sentinel();
    assert_eq!(unsafe { latent_dataset_from_csv(cp.as_ptr(), null(), &mut ds) }, LATENT_STATUS_BAD_FORMAT);
    assert!(last_error().contains("line 1, column 1: cannot parse \"a\""), "{}", last_error());
    assert!(ds.is_null());

    for (name, text, want) in [
        ("ragged.csv", &b"1,2,3\n4,5\n"[..], "line 2: 2 fields, but line 1 has 3"),
        ("nan.csv", b"1,2\n3,2\n\n5,NaN\n", "line 4, column 2: non-finite"),
        ("label.csv", b"1,2,0.5\n", "line 1, column 3: label \"0.5\" is not an integer"),
    ] {
        let p = tmp.file(name, text);
        let opts = CsvOptions { label_column: (name == "label.csv").then_some(2), ..CsvOptions::default() };
        let m = bad_format(Dataset::from_csv(&p, &opts));
        assert!(m.contains(want), "{name}: {m}");
    }
    // Bad options through C.
    for (delim, header, label) in [(b'1', 0, -1), (b',', 2, -1), (b',', 0, -2)] {
        let p = latent_csv_params { delimiter: delim as c_char, has_header: header, label_column: label };
        let mut ds = sentinel();
        assert_eq!(unsafe { latent_dataset_from_csv(cp.as_ptr(), &p, &mut ds) }, LATENT_STATUS_INVALID_ARGUMENT);
        assert!(ds.is_null());
    }
}

// ---------------------------------------------------------------------------------------------
// Buffers and the C contract

#[test]
fn buffer_f64_col_major_equals_f32_row_major() {
    // 3 x 2: rows (1, 2), (3, 4), (5, 6).
    let rm = [1f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let cm = [1f64, 3.0, 5.0, 2.0, 4.0, 6.0];
    let a = c_buffer_f32(&rm, 3, 2);
    let mut b = null_mut();
    let s = unsafe {
        latent_dataset_from_buffer(
            cm.as_ptr() as *const c_void,
            LATENT_DTYPE_F64,
            LATENT_LAYOUT_COL_MAJOR,
            3,
            2,
            &mut b,
        )
    };
    assert_eq!(s, LATENT_STATUS_OK, "{}", last_error());
    assert_eq!(c_rows(a), rm);
    assert_eq!(c_rows(b), rm);
    // A slice of rows.
    let mut two = [0f32; 4];
    assert_eq!(unsafe { latent_dataset_copy_rows(b, 1, 2, two.as_mut_ptr(), 4) }, LATENT_STATUS_OK);
    assert_eq!(two, [3.0, 4.0, 5.0, 6.0]);
    // The Rust API agrees.
    let r = Dataset::from_buffer_f64(&cm, 3, 2, true).unwrap();
    assert_eq!(r, Dataset::from_buffer_f32(&rm, 3, 2, false).unwrap());
    unsafe {
        latent_dataset_free(a);
        latent_dataset_free(b);
    }
}

#[test]
fn buffer_nan_is_non_finite_naming_row_and_column() {
    let v = [1f64, 2.0, 3.0, f64::NAN, 5.0, 6.0]; // column-major 3 x 2: row 0, column 1
    let mut ds = sentinel();
    let s = unsafe {
        latent_dataset_from_buffer(
            v.as_ptr() as *const c_void,
            LATENT_DTYPE_F64,
            LATENT_LAYOUT_COL_MAJOR,
            3,
            2,
            &mut ds,
        )
    };
    assert_eq!(s, LATENT_STATUS_NON_FINITE);
    assert!(ds.is_null());
    assert!(last_error().contains("row 0, column 1 is NaN"), "{}", last_error());
    let v = [1f32, 2.0, 3.0, f32::INFINITY];
    let mut ds = sentinel();
    let s = unsafe {
        latent_dataset_from_buffer(
            v.as_ptr() as *const c_void,
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            2,
            2,
            &mut ds,
        )
    };
    assert_eq!(s, LATENT_STATUS_NON_FINITE);
    assert!(last_error().contains("row 1, column 1 is inf"), "{}", last_error());
    // Finite in f64, infinite in f32.
    let v = [1e39f64];
    let s = unsafe {
        latent_dataset_from_buffer(
            v.as_ptr() as *const c_void,
            LATENT_DTYPE_F64,
            LATENT_LAYOUT_ROW_MAJOR,
            1,
            1,
            &mut ds,
        )
    };
    assert_eq!(s, LATENT_STATUS_NON_FINITE);
    assert!(last_error().contains("outside the f32 range"), "{}", last_error());
}

#[test]
fn c_api_null_arguments_bad_enums_and_small_buffers() {
    let v = [1f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let p = v.as_ptr() as *const c_void;
    let from = |data: *const c_void, dtype, layout, rows, cols| {
        let mut ds = sentinel();
        let s = unsafe { latent_dataset_from_buffer(data, dtype, layout, rows, cols, &mut ds) };
        assert!(ds.is_null(), "out handle reset on failure (status {s})");
        s
    };
    assert_eq!(from(null(), LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 3, 2), LATENT_STATUS_NULL_ARGUMENT);
    assert_eq!(from(p, 7, LATENT_LAYOUT_ROW_MAJOR, 3, 2), LATENT_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("dtype 7"), "{}", last_error());
    assert_eq!(from(p, LATENT_DTYPE_F32, 2, 3, 2), LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(from(p, LATENT_DTYPE_F32, -1, 3, 2), LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(from(p, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 0, 2), LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(from(p, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 3, 0), LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(from(p, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, usize::MAX, 2), LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(from(p, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 1 << 40, 1 << 40), LATENT_STATUS_INVALID_ARGUMENT);
    // Misaligned f64 data.
    assert_eq!(
        from(unsafe { (p as *const u8).add(1) } as *const c_void, LATENT_DTYPE_F64, 0, 1, 1),
        LATENT_STATUS_INVALID_ARGUMENT
    );
    // NULL out-parameter.
    let s = unsafe { latent_dataset_from_buffer(p, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 3, 2, null_mut()) };
    assert_eq!(s, LATENT_STATUS_NULL_ARGUMENT);
    let name = c("x");
    unsafe {
        let mut ds = sentinel();
        assert_eq!(latent_dataset_from_idx(null(), null(), &mut ds), LATENT_STATUS_NULL_ARGUMENT);
        assert!(ds.is_null());
        assert_eq!(latent_dataset_from_idx(name.as_ptr(), null(), null_mut()), LATENT_STATUS_NULL_ARGUMENT);
        let mut ds = sentinel();
        assert_eq!(latent_dataset_from_csv(null(), null(), &mut ds), LATENT_STATUS_NULL_ARGUMENT);
        assert!(ds.is_null());
        let mut ds = sentinel();
        let absent = c("/nonexistent/images");
        assert_eq!(latent_dataset_from_idx(absent.as_ptr(), null(), &mut ds), LATENT_STATUS_IO);
        assert!(ds.is_null());
    }

    let ds = c_buffer_f32(&v, 3, 2);
    let mut out = [0f32; 6];
    let mut lab = [0i32; 3];
    unsafe {
        // Queries on NULL.
        assert_eq!(
            (latent_dataset_rows(null()), latent_dataset_cols(null()), latent_dataset_has_labels(null())),
            (0, 0, 0)
        );
        latent_dataset_free(null_mut());
        // Output capacity.
        assert_eq!(latent_dataset_copy_rows(ds, 0, 3, out.as_mut_ptr(), 5), LATENT_STATUS_BUFFER_TOO_SMALL);
        assert_eq!(latent_dataset_copy_rows(ds, 0, 3, null_mut(), 6), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_dataset_copy_rows(null(), 0, 3, out.as_mut_ptr(), 6), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_dataset_copy_rows(ds, 2, 2, out.as_mut_ptr(), 6), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_dataset_copy_rows(ds, usize::MAX, 2, out.as_mut_ptr(), 6), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_dataset_copy_rows(ds, 3, 0, null_mut(), 0), LATENT_STATUS_OK);
        // Labels: absent, wrong count, NULL, then set and read back with a small buffer.
        assert_eq!(latent_dataset_labels(ds, lab.as_mut_ptr(), 3), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_dataset_set_labels(ds, [1, 2].as_ptr(), 2), LATENT_STATUS_SHAPE_MISMATCH);
        assert_eq!(latent_dataset_set_labels(ds, null(), 3), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_dataset_set_labels(null_mut(), [1, 2, 3].as_ptr(), 3), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_dataset_has_labels(ds), 0);
        assert_eq!(latent_dataset_set_labels(ds, [7, 8, 9].as_ptr(), 3), LATENT_STATUS_OK);
        assert_eq!(latent_dataset_has_labels(ds), 1);
        assert_eq!(latent_dataset_labels(ds, lab.as_mut_ptr(), 2), LATENT_STATUS_BUFFER_TOO_SMALL);
        assert_eq!(lab, [0, 0, 0], "a failed call writes nothing");
        assert_eq!(latent_dataset_labels(ds, lab.as_mut_ptr(), 3), LATENT_STATUS_OK);
        assert_eq!(lab, [7, 8, 9]);
        // Scaling codes and handles.
        assert_eq!(latent_dataset_scale(ds, 4), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_dataset_scale(ds, -1), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_dataset_scale(null_mut(), LATENT_SCALING_MIN_MAX), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_dataset_apply_scaling(ds, null()), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_dataset_apply_scaling(ds, ds), LATENT_STATUS_INVALID_ARGUMENT);
        // Split out-parameters.
        let (mut a, mut b) = (sentinel(), sentinel());
        assert_eq!(latent_dataset_split(null(), 0.5, 1, &mut a, &mut b), LATENT_STATUS_NULL_ARGUMENT);
        assert!(a.is_null() && b.is_null());
        let (mut a, mut b) = (sentinel(), sentinel());
        assert_eq!(latent_dataset_split(ds, 1.5, 1, &mut a, &mut b), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(a.is_null() && b.is_null());
        let (mut a, mut b) = (sentinel(), sentinel());
        assert_eq!(latent_dataset_split(ds, f64::NAN, 1, &mut a, &mut b), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(a.is_null() && b.is_null());
        let mut a = sentinel();
        assert_eq!(latent_dataset_split(ds, 0.5, 1, &mut a, null_mut()), LATENT_STATUS_NULL_ARGUMENT);
        assert!(a.is_null());
        let mut a = sentinel();
        let pa: *mut *mut latent_dataset = &mut a;
        assert_eq!(latent_dataset_split(ds, 0.5, 1, pa, pa), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(a.is_null());
        latent_dataset_free(ds);
    }
}

// ---------------------------------------------------------------------------------------------
// Scaling

#[test]
fn scaling_min_max_known_matrix_and_constant_column() {
    // Columns: 2..10, constant 5, -1..1.
    let v = [2f32, 5.0, -1.0, 4.0, 5.0, 0.0, 10.0, 5.0, 1.0];
    let ds = c_buffer_f32(&v, 3, 3);
    assert_eq!(unsafe { latent_dataset_scale(ds, LATENT_SCALING_MIN_MAX) }, LATENT_STATUS_OK);
    assert_eq!(c_rows(ds), [0.0, 0.0, 0.0, 0.25, 0.0, 0.5, 1.0, 0.0, 1.0]);
    assert_eq!(unsafe { latent_dataset_scaling(ds) }, LATENT_SCALING_MIN_MAX);
    // Scaling twice is refused, and leaves the data as they were.
    assert_eq!(unsafe { latent_dataset_scale(ds, LATENT_SCALING_Z_SCORE) }, LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(c_rows(ds), [0.0, 0.0, 0.0, 0.25, 0.0, 0.5, 1.0, 0.0, 1.0]);
    unsafe { latent_dataset_free(ds) };
}

#[test]
fn scaling_z_score_gives_zero_mean_unit_std_per_column() {
    let (rows, cols) = (500, 5);
    let v: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let (r, j) = ((i / cols) as f32, i % cols);
            (r * 0.37 + j as f32).sin() * (j as f32 + 1.0) * 10.0 + 1000.0 * j as f32
        })
        .collect();
    let mut d = Dataset::from_buffer_f32(&v, rows, cols, false).unwrap();
    d.scale(Scaling::ZScore).unwrap();
    for j in 0..cols {
        let col: Vec<f64> = (0..rows).map(|r| d.x().row(r)[j] as f64).collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let std = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / rows as f64).sqrt();
        assert!(mean.abs() < 1e-5, "column {j}: mean {mean}");
        assert!((std - 1.0).abs() < 1e-5, "column {j}: std {std}");
    }
    let Scaler::ZScore { mean, std } = d.scaler() else { panic!("{:?}", d.scaler()) };
    assert!((mean[4] - 4000.0).abs() < 5.0 && std[4] > 1.0, "{mean:?} {std:?}");
}

#[test]
fn scaling_apply_uses_train_statistics_not_a_refit() {
    // Train columns: 0..10 and 100..300; test values outside the train range.
    let train = c_buffer_f32(&[0.0, 100.0, 10.0, 300.0, 5.0, 200.0], 3, 2);
    let test = c_buffer_f32(&[20.0, 100.0, -10.0, 500.0], 2, 2);
    let unscaled = c_buffer_f32(&[1.0, 1.0], 1, 2);
    unsafe {
        // Fitted must have been scaled.
        assert_eq!(latent_dataset_apply_scaling(test, unscaled), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(last_error().contains("not been scaled"), "{}", last_error());
        assert_eq!(latent_dataset_scale(train, LATENT_SCALING_MIN_MAX), LATENT_STATUS_OK);
        // Column counts must agree.
        let three = c_buffer_f32(&[1.0, 2.0, 3.0], 1, 3);
        assert_eq!(latent_dataset_apply_scaling(three, train), LATENT_STATUS_SHAPE_MISMATCH);
        assert_eq!(latent_dataset_scaling(three), LATENT_SCALING_NONE);
        latent_dataset_free(three);
        assert_eq!(latent_dataset_apply_scaling(test, train), LATENT_STATUS_OK);
        // (20 - 0) / 10 = 2, (100 - 100) / 200 = 0, (-10 - 0) / 10 = -1, (500 - 100) / 200 = 2.
        // A refit on the test rows would give 1, 0, 0, 1.
        assert_eq!(c_rows(test), [2.0, 0.0, -1.0, 2.0]);
        assert_eq!(latent_dataset_scaling(test), LATENT_SCALING_MIN_MAX);
        for d in [train, test, unscaled] {
            latent_dataset_free(d);
        }
    }
    // Z-score in Rust: the test set gets the train mean and std; a constant train column maps
    // every test value to 0.
    let mut tr = Dataset::from_buffer_f32(&[1.0, 4.0, 3.0, 4.0], 2, 2, false).unwrap();
    tr.scale(Scaling::ZScore).unwrap();
    assert_eq!(tr.x().as_slice(), &[-1.0, 0.0, 1.0, 0.0]);
    let mut te = Dataset::from_buffer_f32(&[5.0, 9.0, 2.0, -3.0], 2, 2, false).unwrap();
    te.apply_scaling(tr.scaler()).unwrap();
    assert_eq!(te.x().as_slice(), &[3.0, 0.0, 0.0, 0.0]);
    assert_eq!(te.scaler(), tr.scaler());
}

// ---------------------------------------------------------------------------------------------
// Splits

#[test]
fn split_is_deterministic_disjoint_and_complete() {
    let rows = 1000;
    let v: Vec<f32> = (0..rows * 3).map(|i| i as f32).collect();
    let ds = c_buffer_f32(&v, rows, 3);
    let ids: Vec<i32> = (0..rows as i32).collect();
    assert_eq!(unsafe { latent_dataset_set_labels(ds, ids.as_ptr(), rows) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_dataset_scale(ds, LATENT_SCALING_DIVIDE_255) }, LATENT_STATUS_OK);
    for (fraction, want) in [(0.0, 0), (0.25, 250), (0.3333, 333), (0.7777, 778), (1.0, 1000)] {
        let (mut a, mut b) = (null_mut(), null_mut());
        assert_eq!(unsafe { latent_dataset_split(ds, fraction, 42, &mut a, &mut b) }, LATENT_STATUS_OK);
        assert_eq!(
            unsafe { (latent_dataset_rows(a), latent_dataset_rows(b)) },
            (rows - want, want),
            "fraction {fraction}"
        );
        let (la, lb) = (c_labels(a), c_labels(b));
        // Disjoint, union = all rows, each part in the original order.
        let mut all: Vec<i32> = la.iter().chain(&lb).copied().collect();
        all.sort();
        assert_eq!(all, ids);
        assert!(la.windows(2).all(|w| w[0] < w[1]) && lb.windows(2).all(|w| w[0] < w[1]));
        // Rows travel with their labels, and with the scaling.
        let xb = c_rows(b);
        for (k, &id) in lb.iter().enumerate() {
            assert_eq!(xb[k * 3], (id * 3) as f32 / 255.0);
        }
        assert_eq!(unsafe { latent_dataset_scaling(b) }, LATENT_SCALING_DIVIDE_255);
        // The same seed gives the same split; another seed another one.
        let (mut a2, mut b2) = (null_mut(), null_mut());
        assert_eq!(unsafe { latent_dataset_split(ds, fraction, 42, &mut a2, &mut b2) }, LATENT_STATUS_OK);
        assert_eq!(c_labels(b2), lb);
        if want > 0 && want < rows {
            let (mut a3, mut b3) = (null_mut(), null_mut());
            assert_eq!(unsafe { latent_dataset_split(ds, fraction, 43, &mut a3, &mut b3) }, LATENT_STATUS_OK);
            assert_ne!(c_labels(b3), lb);
            unsafe {
                latent_dataset_free(a3);
                latent_dataset_free(b3);
            }
        }
        unsafe {
            for d in [a, b, a2, b2] {
                latent_dataset_free(d);
            }
        }
    }
    unsafe { latent_dataset_free(ds) };
}

// ---------------------------------------------------------------------------------------------
// The resolver

#[test]
fn data_find_writes_the_path_or_explains() {
    let Some(dir) = find_or_skip("mnist") else {
        return;
    };
    let name = c("mnist");
    let mut needed = 0usize;
    let mut small = [0 as c_char; 4];
    let s = unsafe { latent_data_find(name.as_ptr(), small.as_mut_ptr(), small.len(), &mut needed) };
    assert_eq!(s, LATENT_STATUS_BUFFER_TOO_SMALL);
    let want = dir.to_str().unwrap();
    assert_eq!(needed, want.len() + 1);
    // A size query with no buffer at all.
    let mut needed2 = 0usize;
    assert_eq!(unsafe { latent_data_find(name.as_ptr(), null_mut(), 0, &mut needed2) }, LATENT_STATUS_BUFFER_TOO_SMALL);
    assert_eq!(needed2, needed);
    let mut buf = vec![0 as c_char; needed];
    assert_eq!(unsafe { latent_data_find(name.as_ptr(), buf.as_mut_ptr(), buf.len(), null_mut()) }, LATENT_STATUS_OK);
    let got = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(got, want);
    assert!(Path::new(got).is_absolute());
    // The path leads to the four MNIST files.
    assert!(mnist_files(Path::new(got)).is_ok());

    let absent = c("no-such-dataset-anywhere");
    let s = unsafe { latent_data_find(absent.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut needed) };
    assert_eq!(s, LATENT_STATUS_IO);
    assert_eq!(needed, 0);
    let m = last_error();
    assert!(m.contains("no-such-dataset-anywhere") && m.contains("LATENT_DATA_DIR"), "{m}");
    assert!(m.contains("apt-get install dataset-fashion-mnist") && m.contains("/usr/share/datasets"), "{m}");
    assert_eq!(
        unsafe { latent_data_find(null(), buf.as_mut_ptr(), buf.len(), null_mut()) },
        LATENT_STATUS_NULL_ARGUMENT
    );
    assert_eq!(resolve::find("no-such-dataset-anywhere"), None);
}
