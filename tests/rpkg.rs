//! Inference on a caller's matrix in its own type and order (latent_network_*_buffer, what the R
//! package calls with R's column-major doubles): every dtype x layout gives exactly what the
//! row-major float calls and the dataset calls give (bit for bit: the values are floats, so the
//! f64 copies are exact), and the checks come in the documented order with the documented
//! statuses. The R package itself is tested by tests/r.rs.

use std::ffi::{CStr, c_void};

use latent::ffi::*;

const ROWS: usize = 5000; // 5 of the 1024-row inference blocks; 40,000 values: the threaded path
const COLS: usize = 8;

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for the calling thread.
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

/// An 8 -> 6 -> [3] autoencoder (task 0) or a 4-class classifier.
fn network(task: latent_task) -> *mut latent_network {
    let units = [6u32];
    let mut p = latent_network_params_default();
    p.input_dim = COLS as u32;
    p.n_encoder = 1;
    p.encoder_units = units.as_ptr();
    p.code_units = 3;
    p.seed = 11;
    p.task = task;
    if task == LATENT_TASK_CLASSIFY {
        p.outputs = 4;
        p.output_activation = LATENT_ACTIVATION_IDENTITY;
    }
    let mut net = std::ptr::null_mut();
    // SAFETY: valid params and out-pointer.
    assert_eq!(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_OK, "{}", last_error());
    net
}

/// ROWS x COLS floats in [0, 1), row-major, from a fixed LCG.
fn inputs() -> Vec<f32> {
    let mut s = 0x2545F4914F6CDD1Du64;
    (0..ROWS * COLS)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn col_major<T: Copy>(v: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..rows * cols).map(|k| v[(k % rows) * cols + k / rows]).collect()
}

type RowCall = unsafe extern "C" fn(*const latent_network, *const f32, usize, usize, *mut f32, usize) -> latent_status;
type BufCall = unsafe extern "C" fn(
    *const latent_network,
    *const c_void,
    latent_dtype,
    latent_layout,
    usize,
    usize,
    *mut c_void,
    usize,
) -> latent_status;

/// `buf` in all four dtype x layout forms equals `rows` on row-major floats, bit for bit.
fn same_as_row_major(net: *mut latent_network, rows: RowCall, buf: BufCall, width: usize, what: &str) {
    let x = inputs();
    let mut want = vec![0f32; ROWS * width];
    // SAFETY: buffers of the stated sizes.
    assert_eq!(unsafe { rows(net, x.as_ptr(), ROWS, COLS, want.as_mut_ptr(), want.len()) }, LATENT_STATUS_OK);
    let want_cm = col_major(&want, ROWS, width);
    let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    for (layout, xf, xd, wf) in [
        (LATENT_LAYOUT_ROW_MAJOR, x.clone(), xd.clone(), want.clone()),
        (LATENT_LAYOUT_COL_MAJOR, col_major(&x, ROWS, COLS), col_major(&xd, ROWS, COLS), want_cm.clone()),
    ] {
        let mut of = vec![0f32; ROWS * width];
        // SAFETY: buffers of the stated sizes.
        let st =
            unsafe { buf(net, xf.as_ptr() as _, LATENT_DTYPE_F32, layout, ROWS, COLS, of.as_mut_ptr() as _, of.len()) };
        assert_eq!(st, LATENT_STATUS_OK, "{what}: {}", last_error());
        assert!(of.iter().zip(&wf).all(|(a, b)| a.to_bits() == b.to_bits()), "{what} f32 layout {layout}");
        let mut od = vec![0f64; ROWS * width];
        // SAFETY: buffers of the stated sizes.
        let st =
            unsafe { buf(net, xd.as_ptr() as _, LATENT_DTYPE_F64, layout, ROWS, COLS, od.as_mut_ptr() as _, od.len()) };
        assert_eq!(st, LATENT_STATUS_OK, "{what}: {}", last_error());
        assert!(od.iter().zip(&wf).all(|(a, b)| *a == *b as f64), "{what} f64 layout {layout}");
    }
}

#[test]
fn every_dtype_and_layout_gives_the_row_major_results_bit_for_bit() {
    let net = network(LATENT_TASK_RECONSTRUCT);
    same_as_row_major(net, latent_network_encode, latent_network_encode_buffer, 3, "encode");
    same_as_row_major(net, latent_network_reconstruct, latent_network_reconstruct_buffer, COLS, "reconstruct");
    same_as_row_major(net, latent_network_predict, latent_network_predict_buffer, COLS, "predict");
    let clf = network(LATENT_TASK_CLASSIFY);
    same_as_row_major(clf, latent_network_predict, latent_network_predict_buffer, 4, "classifier predict");
    // SAFETY: handles of this library.
    unsafe {
        latent_network_free(net);
        latent_network_free(clf);
    }
}

#[test]
fn scores_and_loss_equal_the_dataset_calls_bit_for_bit() {
    let net = network(LATENT_TASK_RECONSTRUCT);
    let x = inputs();
    let xd = col_major(&x.iter().map(|&v| v as f64).collect::<Vec<_>>(), ROWS, COLS);
    // SAFETY: buffers of the stated sizes, handles of this library.
    unsafe {
        let mut ds = std::ptr::null_mut();
        let st = latent_dataset_from_buffer(
            xd.as_ptr() as _,
            LATENT_DTYPE_F64,
            LATENT_LAYOUT_COL_MAJOR,
            ROWS,
            COLS,
            &mut ds,
        );
        assert_eq!(st, LATENT_STATUS_OK);
        let (mut want, mut got) = (vec![0f64; ROWS], vec![0f64; ROWS]);
        assert_eq!(latent_network_reconstruction_error_dataset(net, ds, want.as_mut_ptr(), ROWS), LATENT_STATUS_OK);
        let st = latent_network_reconstruction_error_buffer(
            net,
            xd.as_ptr() as _,
            LATENT_DTYPE_F64,
            LATENT_LAYOUT_COL_MAJOR,
            ROWS,
            COLS,
            got.as_mut_ptr(),
            ROWS,
        );
        assert_eq!(st, LATENT_STATUS_OK, "{}", last_error());
        assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "reconstruction errors");
        let (mut lw, mut lg) = (0f64, 0f64);
        assert_eq!(latent_network_loss(net, ds, &mut lw), LATENT_STATUS_OK);
        let st = latent_network_loss_buffer(
            net,
            xd.as_ptr() as _,
            LATENT_DTYPE_F64,
            LATENT_LAYOUT_COL_MAJOR,
            ROWS,
            COLS,
            &mut lg,
        );
        assert_eq!(st, LATENT_STATUS_OK, "{}", last_error());
        assert_eq!(lg.to_bits(), lw.to_bits(), "loss {lg} vs {lw}");
        assert!(lg > 0.0);
        latent_dataset_free(ds);
        latent_network_free(net);
    }
}

#[test]
fn bad_input_gets_the_documented_status_and_changes_nothing() {
    let net = network(LATENT_TASK_RECONSTRUCT);
    let xd: Vec<f64> = inputs()[..4 * COLS].iter().map(|&v| v as f64).collect();
    let mut out = vec![7f64; 4 * 3];
    let enc = |x: *const f64, dtype, layout, rows, cols, out: *mut f64, cap| {
        // SAFETY: the pointers are valid for what each case passes (or deliberately bad).
        unsafe { latent_network_encode_buffer(net, x as _, dtype, layout, rows, cols, out as _, cap) }
    };
    let (f64t, cm) = (LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR);
    let p = xd.as_ptr();
    let o = out.as_mut_ptr();
    assert_eq!(enc(p, 2, cm, 4, COLS, o, 12), LATENT_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("dtype 2"), "{}", last_error());
    assert_eq!(enc(p, f64t, 2, 4, COLS, o, 12), LATENT_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("layout 2"), "{}", last_error());
    assert_eq!(enc(p, f64t, cm, 4, COLS - 1, o, 12), LATENT_STATUS_SHAPE_MISMATCH);
    assert_eq!(enc(p, f64t, cm, 4, 0, o, 12), LATENT_STATUS_INVALID_ARGUMENT);
    // The capacity is checked before the rows are read: a NULL x with a short output is still
    // BUFFER_TOO_SMALL.
    assert_eq!(enc(std::ptr::null(), f64t, cm, 4, COLS, o, 11), LATENT_STATUS_BUFFER_TOO_SMALL);
    assert_eq!(enc(std::ptr::null(), f64t, cm, 4, COLS, o, 12), LATENT_STATUS_NULL_ARGUMENT);
    assert_eq!(enc(p, f64t, cm, 4, COLS, std::ptr::null_mut(), 12), LATENT_STATUS_NULL_ARGUMENT);
    let misaligned = (p as *const u8).wrapping_add(4) as *const f64;
    assert_eq!(enc(misaligned, f64t, cm, 3, COLS, o, 12), LATENT_STATUS_INVALID_ARGUMENT);
    let mut bad = xd.clone();
    bad[2 * 4 + 1] = f64::NAN; // column 2, row 1 of the column-major 4 x 8
    assert_eq!(enc(bad.as_ptr(), f64t, cm, 4, COLS, o, 12), LATENT_STATUS_NON_FINITE);
    assert!(last_error().contains("row 1, column 2"), "{}", last_error());
    bad[2 * 4 + 1] = 1e300;
    assert_eq!(enc(bad.as_ptr(), f64t, cm, 4, COLS, o, 12), LATENT_STATUS_NON_FINITE);
    assert!(out.iter().all(|&v| v == 7.0), "a failed call wrote into the output");
    // Zero rows: OK, nothing read or written, NULL allowed.
    assert_eq!(enc(std::ptr::null(), f64t, cm, 0, COLS, std::ptr::null_mut(), 0), LATENT_STATUS_OK);
    // SAFETY: handles and pointers of this test (NULLs deliberately).
    unsafe {
        let mut l = 0f64;
        assert_eq!(latent_network_loss_buffer(net, p as _, f64t, cm, 0, COLS, &mut l), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(last_error().contains("no rows"));
        assert_eq!(
            latent_network_loss_buffer(net, p as _, f64t, cm, 4, COLS, std::ptr::null_mut()),
            LATENT_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            latent_network_loss_buffer(std::ptr::null(), p as _, f64t, cm, 4, COLS, &mut l),
            LATENT_STATUS_NULL_ARGUMENT
        );
        let mut s = [0f64; 4];
        let st = latent_network_reconstruction_error_buffer(net, p as _, f64t, cm, 4, COLS, s.as_mut_ptr(), 3);
        assert_eq!(st, LATENT_STATUS_BUFFER_TOO_SMALL);
        let clf = network(LATENT_TASK_CLASSIFY);
        assert_eq!(latent_network_loss_buffer(clf, p as _, f64t, cm, 4, COLS, &mut l), LATENT_STATUS_INVALID_ARGUMENT);
        latent_network_free(clf);
        latent_network_free(net);
    }
}
