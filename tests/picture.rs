//! Pictures: PNG decoded here (chunk CRC-32s, stored deflate blocks, Adler-32) and compared
//! pixel by pixel with the expected grid; PGM header and pixels; the SVG history plot's
//! structure; the C calls' statuses, and atomic writes.

mod common;

use std::ffi::{CStr, CString};
use std::path::Path;

use common::*;
use latent::data::crc32::crc32;
use latent::ffi::*;
use latent::picture::{self, Gray, GridSpec, ImageFormat, PADDING_GRAY};
use latent::{Activation, EpochRecord, Network, NetworkSpec, TrainConfig, Trainer};

fn adler32(d: &[u8]) -> u32 {
    let (mut a, mut b) = (1u64, 0u64);
    for &x in d {
        a = (a + x as u64) % 65521;
        b = (b + a) % 65521;
    }
    ((b << 16) | a) as u32
}

/// Decodes an 8-bit grayscale, non-interlaced PNG whose zlib stream uses stored blocks, checking
/// every CRC and the Adler-32; returns (width, height, pixels).
fn decode_png(b: &[u8]) -> (usize, usize, Vec<u8>) {
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "signature");
    let mut pos = 8;
    let mut ihdr = None;
    let mut idat = Vec::new();
    let mut kinds = Vec::new();
    loop {
        let len = u32::from_be_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &b[pos + 4..pos + 8];
        let data = &b[pos + 8..pos + 8 + len];
        let crc = u32::from_be_bytes(b[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32(&b[pos + 4..pos + 8 + len]), "CRC of {}", String::from_utf8_lossy(kind));
        kinds.push(String::from_utf8_lossy(kind).into_owned());
        match kind {
            b"IHDR" => ihdr = Some(data.to_vec()),
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => {
                assert_eq!(len, 0);
                assert_eq!(pos + 12, b.len(), "bytes after IEND");
                break;
            }
            k => panic!("unexpected chunk {k:?}"),
        }
        pos += 12 + len;
    }
    assert_eq!(kinds.first().map(String::as_str), Some("IHDR"));
    let h = ihdr.unwrap();
    let w = u32::from_be_bytes(h[0..4].try_into().unwrap()) as usize;
    let ht = u32::from_be_bytes(h[4..8].try_into().unwrap()) as usize;
    assert_eq!(&h[8..13], &[8, 0, 0, 0, 0], "8-bit gray, deflate, adaptive filtering, no interlace");
    // zlib: CMF/FLG, stored blocks, Adler-32.
    assert_eq!((idat[0] as u16 * 256 + idat[1] as u16) % 31, 0, "zlib header check");
    assert_eq!(idat[0] & 0x0f, 8, "deflate");
    let mut raw = Vec::new();
    let mut p = 2;
    loop {
        let hdr = idat[p];
        assert_eq!(hdr & 0b110, 0, "stored block");
        let len = u16::from_le_bytes([idat[p + 1], idat[p + 2]]);
        let nlen = u16::from_le_bytes([idat[p + 3], idat[p + 4]]);
        assert_eq!(len, !nlen);
        raw.extend_from_slice(&idat[p + 5..p + 5 + len as usize]);
        p += 5 + len as usize;
        if hdr & 1 == 1 {
            break;
        }
    }
    assert_eq!(idat.len(), p + 4);
    assert_eq!(u32::from_be_bytes(idat[p..p + 4].try_into().unwrap()), adler32(&raw), "Adler-32");
    // A general inflater agrees.
    assert_eq!(miniz_oxide::inflate::decompress_to_vec_zlib(&idat).unwrap(), raw);
    assert_eq!(raw.len(), (w + 1) * ht);
    let mut px = Vec::with_capacity(w * ht);
    for line in raw.chunks_exact(w + 1) {
        assert_eq!(line[0], 0, "filter type none");
        px.extend_from_slice(&line[1..]);
    }
    (w, ht, px)
}

fn decode_pgm(b: &[u8]) -> (usize, usize, Vec<u8>) {
    let text = String::from_utf8_lossy(&b[..b.len().min(32)]).into_owned();
    let mut parts = text.splitn(4, '\n');
    assert_eq!(parts.next(), Some("P5"));
    let dims: Vec<usize> = parts.next().unwrap().split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!(parts.next(), Some("255"));
    let header = format!("P5\n{} {}\n255\n", dims[0], dims[1]).len();
    assert_eq!(b.len(), header + dims[0] * dims[1]);
    (dims[0], dims[1], b[header..].to_vec())
}

/// Five 2 x 3 images, image i's pixel k = 10*i + k, in a grid of 3 columns with padding 1,
/// values 0..60 to 0..255: computed here pixel by pixel.
fn expected_grid() -> (Vec<f32>, Gray) {
    let (n, h, w, cols, pad) = (5, 2, 3, 3, 1);
    let v: Vec<f32> = (0..n).flat_map(|i| (0..h * w).map(move |k| (10 * i + k) as f32)).collect();
    let (gw, gh) = (cols * w + (cols + 1) * pad, 2 * h + 3 * pad);
    let mut px = vec![PADDING_GRAY; gw * gh];
    for i in 0..n {
        for r in 0..h {
            for c in 0..w {
                let x = pad + (i % cols) * (w + pad) + c;
                let y = pad + (i / cols) * (h + pad) + r;
                let val = (10 * i + r * w + c) as f64;
                px[y * gw + x] = (val / 60.0 * 255.0).round() as u8;
            }
        }
    }
    (v, Gray { width: gw, height: gh, pixels: px })
}

#[test]
fn grid_pixels_are_where_they_belong() {
    let (v, want) = expected_grid();
    let spec = GridSpec { height: 2, width: 3, cols: 3, range: Some((0.0, 60.0)), padding: 1 };
    assert_eq!(picture::grid(&v, 5, &spec).unwrap(), want);
    // Auto range: min 0, max 45 (the last pixel of image 4).
    let auto = picture::grid(&v, 5, &GridSpec { range: None, ..spec }).unwrap();
    assert_eq!(auto.pixels[want.width + 1], 0);
    let last = (1 + 3 + 1) * want.width + 1 + 3 + 1 + 2; // image 4 (second line, column 1), pixel (1, 2)
    assert_eq!(auto.pixels[last], 255);
    // Values outside a given range clamp.
    let clamped = picture::grid(&v, 5, &GridSpec { range: Some((10.0, 20.0)), ..spec }).unwrap();
    assert_eq!(clamped.pixels[want.width + 1], 0);
    assert_eq!(clamped.pixels[last], 255);
    // Fewer images than columns: the grid narrows.
    let one = picture::grid(&v[..6], 1, &spec).unwrap();
    assert_eq!((one.width, one.height), (5, 4));
}

#[test]
fn png_and_pgm_files_hold_the_grid() {
    let dir = scratch("picture_files");
    let (v, want) = expected_grid();
    let path = |n: &str| CString::new(dir.join(n).to_str().unwrap()).unwrap();
    for (name, format) in [
        ("g.png", LATENT_IMAGE_AUTO),
        ("g.pgm", LATENT_IMAGE_AUTO),
        ("x.img", LATENT_IMAGE_PNG),
        ("y.img", LATENT_IMAGE_PGM),
    ] {
        let st = unsafe { latent_image_grid_write(path(name).as_ptr(), v.as_ptr(), 5, 2, 3, 3, 0.0, 60.0, format) };
        assert_eq!(st, 0, "{name}: {}", last_error());
        let b = std::fs::read(dir.join(name)).unwrap();
        let png = name.ends_with("png") || format == LATENT_IMAGE_PNG;
        let (w, h, px) = if png { decode_png(&b) } else { decode_pgm(&b) };
        assert_eq!((w, h), (want.width, want.height), "{name}");
        assert_eq!(px, want.pixels, "{name}");
    }
    // No temporary file is left behind.
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");
    // A picture larger than one stored block (65535 bytes) and one IDAT chunk (1 MiB).
    let big: Vec<f32> = (0..40 * 784).map(|i| ((i * 7919) % 256) as f32).collect();
    let img =
        picture::grid(&big, 40, &GridSpec { height: 28, width: 28, cols: 40, range: Some((0.0, 255.0)), padding: 0 })
            .unwrap();
    let img = Gray { width: img.width, height: img.height * 32, pixels: img.pixels.repeat(32) };
    let (w, h, px) = decode_png(&ImageFormat::Png.encode(&img).unwrap());
    assert_eq!((w, h), (img.width, img.height));
    assert_eq!(px, img.pixels);
}

#[test]
fn pairs_put_reconstructions_under_their_originals() {
    let (h, w, n, cols, pad) = (2usize, 2usize, 5usize, 3usize, 1usize);
    let a: Vec<f32> = (0..n * h * w).map(|_| 1.0).collect();
    let b: Vec<f32> = (0..n * h * w).map(|_| 0.0).collect();
    let img = picture::pairs(&a, &b, n, &GridSpec { height: h, width: w, cols, range: None, padding: pad }).unwrap();
    let gap = pad + 2;
    assert_eq!(img.width, cols * w + (cols + 1) * pad);
    assert_eq!(img.height, 4 * h + 5 * pad + gap);
    let at = |x: usize, y: usize| img.pixels[y * img.width + x];
    for i in 0..n {
        let x = pad + (i % cols) * (w + pad);
        let y = pad + (i / cols) * (2 * (h + pad) + gap);
        assert_eq!(at(x, y), 255, "original {i}");
        assert_eq!(at(x + 1, y + 1), 255, "original {i}");
        assert_eq!(at(x, y + h + pad), 0, "reconstruction {i}");
    }
    // The band gap is darker than the padding.
    assert_eq!(at(0, 2 * (h + pad) + pad), PADDING_GRAY / 2);
    // Through C, as a PNG.
    let dir = scratch("picture_pairs");
    let p = CString::new(dir.join("pairs.png").to_str().unwrap()).unwrap();
    let st = unsafe {
        latent_image_pairs_write(p.as_ptr(), a.as_ptr(), b.as_ptr(), n, h, w, cols, 0.0, 0.0, LATENT_IMAGE_AUTO)
    };
    assert_eq!(st, 0, "{}", last_error());
    let (pw, ph, px) = decode_png(&std::fs::read(dir.join("pairs.png")).unwrap());
    assert_eq!((pw, ph, px), (img.width, img.height, img.pixels));
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

#[test]
fn bad_input_gives_statuses_and_leaves_old_files_alone() {
    let dir = scratch("picture_errors");
    let v = vec![0.5f32; 2 * 4];
    let good = CString::new(dir.join("g.png").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { latent_image_grid_write(good.as_ptr(), v.as_ptr(), 2, 2, 2, 2, 0.0, 1.0, 0) }, 0);
    let before = std::fs::read(dir.join("g.png")).unwrap();
    let call =
        |path: &CString, rows: *const f32, n: usize, h: usize, w: usize, cols: usize, lo: f32, hi: f32, f: i32| {
            let st = unsafe { latent_image_grid_write(path.as_ptr(), rows, n, h, w, cols, lo, hi, f) };
            (st, last_error())
        };
    let mut nan = v.clone();
    nan[5] = f32::NAN;
    let wide = vec![0f32; 70_000];
    let cases: Vec<(&str, (i32, String), i32, &str)> = vec![
        ("NULL rows", call(&good, std::ptr::null(), 2, 2, 2, 2, 0.0, 1.0, 0), LATENT_STATUS_NULL_ARGUMENT, "rows"),
        ("zero rows", call(&good, v.as_ptr(), 0, 2, 2, 2, 0.0, 1.0, 0), LATENT_STATUS_INVALID_ARGUMENT, "at least 1"),
        ("zero height", call(&good, v.as_ptr(), 2, 0, 2, 2, 0.0, 1.0, 0), LATENT_STATUS_INVALID_ARGUMENT, "at least 1"),
        (
            "zero columns",
            call(&good, v.as_ptr(), 2, 2, 2, 0, 0.0, 1.0, 0),
            LATENT_STATUS_INVALID_ARGUMENT,
            "grid columns (0)",
        ),
        ("lo > hi", call(&good, v.as_ptr(), 2, 2, 2, 2, 1.0, 0.0, 0), LATENT_STATUS_INVALID_ARGUMENT, "lo < hi"),
        ("NaN bound", call(&good, v.as_ptr(), 2, 2, 2, 2, f32::NAN, 1.0, 0), LATENT_STATUS_INVALID_ARGUMENT, "finite"),
        (
            "unknown format",
            call(&good, v.as_ptr(), 2, 2, 2, 2, 0.0, 1.0, 7),
            LATENT_STATUS_INVALID_ARGUMENT,
            "format 7",
        ),
        ("NaN pixel", call(&good, nan.as_ptr(), 2, 2, 2, 2, 0.0, 1.0, 0), LATENT_STATUS_NON_FINITE, "row 1, column 1"),
        (
            "overflow",
            call(&good, v.as_ptr(), usize::MAX, 2, 2, 2, 0.0, 1.0, 0),
            LATENT_STATUS_INVALID_ARGUMENT,
            "overflow",
        ),
        (
            "too large",
            call(&good, wide.as_ptr(), 1, 1, 70_000, 2, 0.0, 1.0, 0),
            LATENT_STATUS_INVALID_ARGUMENT,
            "too large",
        ),
    ];
    for (name, (st, msg), want, says) in cases {
        assert_eq!(st, want, "{name}: {msg}");
        assert!(msg.contains(says), "{name}: '{msg}' does not say '{says}'");
    }
    // Nothing above touched the file.
    assert_eq!(std::fs::read(dir.join("g.png")).unwrap(), before);
    let ext = CString::new(dir.join("g.jpg").to_str().unwrap()).unwrap();
    let (st, msg) = call(&ext, v.as_ptr(), 2, 2, 2, 2, 0.0, 1.0, LATENT_IMAGE_AUTO);
    assert_eq!(st, LATENT_STATUS_INVALID_ARGUMENT, "{msg}");
    assert!(msg.contains("extension"), "{msg}");
    let nodir = CString::new(dir.join("absent/g.png").to_str().unwrap()).unwrap();
    assert_eq!(call(&nodir, v.as_ptr(), 2, 2, 2, 2, 0.0, 1.0, 0).0, LATENT_STATUS_IO);
    assert_eq!(
        unsafe { latent_image_grid_write(std::ptr::null(), v.as_ptr(), 2, 2, 2, 2, 0.0, 1.0, 0) },
        LATENT_STATUS_NULL_ARGUMENT
    );
    // Pairs: a NULL second array.
    let st = unsafe { latent_image_pairs_write(good.as_ptr(), v.as_ptr(), std::ptr::null(), 2, 2, 2, 2, 0.0, 1.0, 0) };
    assert_eq!(st, LATENT_STATUS_NULL_ARGUMENT);
    // History: NULL trainer, an empty history, a bad flag.
    let svg = CString::new(dir.join("h.svg").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { latent_history_svg_write(std::ptr::null(), svg.as_ptr(), 0) }, LATENT_STATUS_NULL_ARGUMENT);
    let p = latent_train_params_default();
    let mut tr: *mut latent_trainer = std::ptr::null_mut();
    assert_eq!(unsafe { latent_trainer_new(&p, &mut tr) }, 0);
    assert_eq!(unsafe { latent_history_svg_write(tr, svg.as_ptr(), 0) }, LATENT_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("empty"), "{}", last_error());
    assert_eq!(unsafe { latent_history_svg_write(tr, svg.as_ptr(), 2) }, LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(unsafe { latent_history_svg_write(tr, std::ptr::null(), 0) }, LATENT_STATUS_NULL_ARGUMENT);
    unsafe { latent_trainer_free(tr) };
    assert!(!Path::new(&dir.join("h.svg")).exists());
}

/// The numbers of a polyline's points attribute.
fn polyline_points(svg: &str, class: &str) -> Option<Vec<(f64, f64)>> {
    let tag = svg.lines().find(|l| l.starts_with("<polyline") && l.contains(&format!("class=\"{class}\"")))?;
    let pts = tag.split("points=\"").nth(1)?.split('"').next()?;
    Some(
        pts.split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect(),
    )
}

fn record(train: f64, valid: f64) -> EpochRecord {
    EpochRecord {
        train_loss: train,
        train_penalty: 0.0,
        valid_loss: valid,
        seconds: 1.0,
        samples_per_second: 1.0,
        learning_rate: 1e-3,
    }
}

#[test]
fn history_svg_has_a_point_per_epoch_axes_and_a_legend() {
    let h: Vec<EpochRecord> = (0..12).map(|e| record(1.0 / (e as f64 + 1.0), 1.2 / (e as f64 + 1.0) + 0.01)).collect();
    for log in [false, true] {
        let s = picture::svg::history_svg(&h, log, "t").unwrap();
        assert!(s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{s}");
        assert!(s.trim_end().ends_with("</svg>"));
        // Every tag that opens closes: count <g> pairs and self-closing tags.
        assert_eq!(s.matches("<g").count(), s.matches("</g>").count());
        let train = polyline_points(&s, "train-loss").unwrap();
        let valid = polyline_points(&s, "validation-loss").unwrap();
        assert_eq!((train.len(), valid.len()), (12, 12));
        // x increases by epoch, and lower loss is higher on the page (larger y).
        assert!(train.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1), "{train:?}");
        assert!(valid.iter().zip(&train).all(|(v, t)| v.1 < t.1), "validation loss is higher, so drawn above");
        assert!(s.contains(">train loss</text>") && s.contains(">validation loss</text>"));
        assert!(s.contains(">epoch</text>"));
        assert_eq!(s.contains("loss (log scale)"), log);
        let y_labels =
            s.split("class=\"y-labels\"").nth(1).unwrap().split("</g>").next().unwrap().matches("<text").count();
        assert!((3..=12).contains(&y_labels), "{y_labels} y tick labels");
        assert!(s.contains(">12</text>") || s.contains(">10</text>"), "x tick labels");
        if log {
            // Losses from 1/12 to 1.2: tick labels at 1, 2, 5 times powers of ten.
            assert!(s.contains(">0.1</text>") && s.contains(">1</text>"), "{s}");
        }
    }
    // Without validation: one series in the legend.
    let h: Vec<EpochRecord> = (0..3).map(|e| record(3.0 - e as f64, f64::NAN)).collect();
    let s = picture::svg::history_svg(&h, false, "t").unwrap();
    assert_eq!(polyline_points(&s, "train-loss").unwrap().len(), 3);
    assert!(polyline_points(&s, "validation-loss").is_none() && !s.contains("validation loss"));
    // One epoch; a log scale with a zero loss.
    assert_eq!(
        polyline_points(&picture::svg::history_svg(&h[..1], true, "t").unwrap(), "train-loss").unwrap().len(),
        1
    );
    let h0 = vec![record(0.0, f64::NAN), record(1.0, f64::NAN)];
    assert!(picture::svg::history_svg(&h0, true, "t").is_err());
    assert!(picture::svg::history_svg(&h0, false, "t").is_ok());
}

#[test]
fn a_real_trainer_history_plots() {
    // 200 rows of a 2-D pattern in 8 columns, 6 epochs with 20% validation.
    let x: Vec<f32> = (0..200 * 8).map(|i| (((i / 8) * 37 + (i % 8) * 11) % 17) as f32 / 17.0).collect();
    let m = latent::Matrix::from_vec(200, 8, x).unwrap();
    let (train, valid) = (m.slice_rows(0, 160), m.slice_rows(160, 40));
    let mut net = Network::new(NetworkSpec::new(8, &[6], Activation::Tanh, 3)).unwrap();
    let mut tr = Trainer::new(TrainConfig { epochs: 6, batch_size: 32, ..TrainConfig::default() }).unwrap();
    tr.fit(&mut net, &train, Some(&valid), None).unwrap();
    let s = picture::svg::history_svg(tr.history(), true, "t").unwrap();
    assert_eq!(polyline_points(&s, "train-loss").unwrap().len(), 6);
    assert_eq!(polyline_points(&s, "validation-loss").unwrap().len(), 6);
}
