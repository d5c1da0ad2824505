//! Issue 15, "never hang, never abort, never print": the C API's answers to hostile sizes,
//! allocation failures, supervised networks in autoencoder calls, empty and odd inputs.
//!
//! Calls that used to abort (an allocation failure) or read past a caller's array run in a
//! child process (this test binary re-executed for one test, with ROBUSTNESS_CHILD set),
//! under a 1 GiB address-space limit where memory matters: the parent asserts that the child
//! exited normally, so an abort or a segfault fails the test instead of killing the run.

use std::ffi::CStr;
use std::process::Command;
use std::ptr::{null, null_mut};

use latent::ffi::*;

const GIB: u64 = 1 << 30;

/// Runs `body` in a child process (this test alone, re-executed) whose address space is limited
/// to `limit` bytes (0: no limit), and asserts the child exited with success: an abort, a
/// signal or a failed assertion in `body` fails the test.
fn in_child(name: &str, limit: u64, body: impl FnOnce()) {
    if std::env::var("ROBUSTNESS_CHILD").as_deref() == Ok(name) {
        if limit > 0 {
            let r = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &r) }, 0, "setrlimit");
        }
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env("ROBUSTNESS_CHILD", name)
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child for {name} did not pass: {:?} (a signal means an abort or a crash)\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn message() -> String {
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

/// Asserts a status, showing the library's message when it differs.
#[track_caller]
fn expect(status: latent_status, want: latent_status) {
    assert_eq!(status, want, "status {status} instead of {want}: {}", message());
}

/// An input-hidden-code network of `task` (supervised: `outputs` identity outputs) and seed `seed`.
fn make_network(input: u32, hidden: u32, code: u32, task: latent_task, outputs: u32, seed: u64) -> *mut latent_network {
    let units = [hidden];
    let mut p = latent_network_params_default();
    p.input_dim = input;
    p.n_encoder = 1;
    p.encoder_units = units.as_ptr();
    p.code_units = code;
    p.task = task;
    p.outputs = outputs;
    if task != LATENT_TASK_RECONSTRUCT {
        p.output_activation = LATENT_ACTIVATION_IDENTITY;
    }
    p.seed = seed;
    let mut net = null_mut();
    expect(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_OK);
    net
}

fn network(input: u32, code: u32, task: latent_task, outputs: u32) -> *mut latent_network {
    make_network(input, 6, code, task, outputs, 3)
}

/// An input-hidden-code autoencoder (mirrored decoder) of seed `seed`.
fn sized_autoencoder(input: u32, hidden: u32, code: u32, seed: u64) -> *mut latent_network {
    make_network(input, hidden, code, LATENT_TASK_RECONSTRUCT, 0, seed)
}

fn autoencoder(input: u32, code: u32) -> *mut latent_network {
    network(input, code, LATENT_TASK_RECONSTRUCT, 0)
}

fn dataset(x: &[f32], rows: usize, cols: usize) -> *mut latent_dataset {
    let mut d = null_mut();
    expect(
        unsafe {
            latent_dataset_from_buffer(x.as_ptr().cast(), LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, rows, cols, &mut d)
        },
        LATENT_STATUS_OK,
    );
    d
}

/// Splits `d` with fraction 0: (all rows, an empty dataset).
fn empty_part(d: *const latent_dataset) -> (*mut latent_dataset, *mut latent_dataset) {
    let (mut a, mut b) = (null_mut(), null_mut());
    expect(unsafe { latent_dataset_split(d, 0.0, 1, &mut a, &mut b) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_dataset_rows(b) }, 0);
    (a, b)
}

fn vae(input: u32, latent: u32, distribution: latent_distribution) -> *mut latent_vae {
    let units = [8u32];
    let mut p = latent_vae_params_default();
    p.input_dim = input;
    p.latent_dim = latent;
    p.n_encoder = 1;
    p.encoder_units = units.as_ptr();
    p.n_decoder = 1;
    p.decoder_units = units.as_ptr();
    p.distribution = distribution;
    p.seed = 5;
    let mut v = null_mut();
    expect(unsafe { latent_vae_new(&p, &mut v) }, LATENT_STATUS_OK);
    v
}

fn data(rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols).map(|i| ((i * 37) % 101) as f32 / 100.0).collect()
}

// ---------------------------------------------------------------------------------------------
// Item 2: aborts and reads past the caller's arrays.

#[test]
fn vae_scores_with_uint32_max_samples_are_invalid_argument_not_an_abort() {
    in_child("vae_scores_with_uint32_max_samples_are_invalid_argument_not_an_abort", GIB, || {
        let v = vae(4, 2, LATENT_DISTRIBUTION_BERNOULLI);
        expect(unsafe { latent_vae_set_threads(v, 1) }, LATENT_STATUS_OK);
        let x = data(3, 4);
        let d = dataset(&x, 3, 4);
        let mut out = [0f64; 3];
        let mut z = [0f32; 6];
        let mut bound = 0f64;
        let mut e = latent_elbo { neg_elbo: 0.0, reconstruction: 0.0, kl: 0.0 };
        let s = u32::MAX;
        unsafe {
            expect(latent_vae_log_likelihood(v, x.as_ptr(), 3, 4, s, 1, out.as_mut_ptr(), 3), 2);
            assert!(message().contains("65536"), "{}", message());
            expect(latent_vae_log_likelihood_dataset(v, d, s, 1, out.as_mut_ptr(), 3), 2);
            expect(latent_vae_iwae_bound(v, d, s, 1, &mut bound), 2);
            expect(latent_vae_elbo(v, d, s, 1, &mut e), 2);
            expect(latent_vae_reconstruction_log_probability(v, x.as_ptr(), 3, 4, s, 1, out.as_mut_ptr(), 3), 2);
            expect(latent_vae_reconstruction_log_probability_dataset(v, d, s, 1, out.as_mut_ptr(), 3), 2);
            expect(latent_vae_sample_z(v, x.as_ptr(), 3, 4, s, 1, z.as_mut_ptr(), 6), 2);
            // The range check comes before the capacity check (and before any allocation).
            expect(latent_vae_log_likelihood(v, x.as_ptr(), 3, 4, 0, 1, out.as_mut_ptr(), 0), 2);
            // In range, all is well.
            expect(latent_vae_log_likelihood(v, x.as_ptr(), 3, 4, 16, 1, out.as_mut_ptr(), 3), 0);
            latent_dataset_free(d);
            latent_vae_free(v);
        }
    });
}

#[test]
fn montecarlo_with_a_huge_parameter_count_is_out_of_memory_not_an_abort() {
    in_child("montecarlo_with_a_huge_parameter_count_is_out_of_memory_not_an_abort", GIB, || {
        let mut p = latent_montecarlo_params_default();
        p.threads = 1;
        for n in [1usize << 40, usize::MAX / 2, usize::MAX] {
            let mut mc = null_mut();
            expect(unsafe { latent_montecarlo_new(&p, n, &mut mc) }, LATENT_STATUS_OUT_OF_MEMORY);
            assert!(mc.is_null());
        }
        let mut mc = null_mut();
        expect(unsafe { latent_montecarlo_new(&p, 3, &mut mc) }, LATENT_STATUS_OK);
        unsafe { latent_montecarlo_free(mc) };
    });
}

unsafe extern "C" fn sphere(_: *mut std::ffi::c_void, x: *const f64, n: usize) -> f64 {
    unsafe { std::slice::from_raw_parts(x, n) }.iter().map(|v| v * v).sum()
}

#[test]
fn montecarlo_sample_counts_too_large_for_memory_are_out_of_memory_not_an_abort() {
    in_child("montecarlo_sample_counts_too_large_for_memory_are_out_of_memory_not_an_abort", GIB, || {
        let mut p = latent_montecarlo_params_default();
        p.threads = 1;
        p.max_evaluations = u64::MAX;
        p.init_samples = 1 << 40;
        let mut mc = null_mut();
        expect(unsafe { latent_montecarlo_new(&p, 3, &mut mc) }, LATENT_STATUS_OK);
        expect(unsafe { latent_montecarlo_minimize(mc, Some(sphere), null_mut()) }, LATENT_STATUS_OUT_OF_MEMORY);
        unsafe { latent_montecarlo_free(mc) };
        // Per iteration too, after a start of a sane size.
        p.init_samples = 10;
        p.samples = 1 << 40;
        p.elite = 5;
        expect(unsafe { latent_montecarlo_new(&p, 3, &mut mc) }, LATENT_STATUS_OK);
        expect(unsafe { latent_montecarlo_minimize(mc, Some(sphere), null_mut()) }, LATENT_STATUS_OUT_OF_MEMORY);
        unsafe { latent_montecarlo_free(mc) };
    });
}

#[test]
fn montecarlo_refuses_interval_samples_beyond_the_limit_at_creation() {
    let mut p = latent_montecarlo_params_default();
    for s in [u64::MAX, (1 << 24) + 1] {
        p.interval_samples = s;
        let mut mc = null_mut();
        expect(unsafe { latent_montecarlo_new(&p, 3, &mut mc) }, LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("interval_samples"), "{}", message());
        assert!(mc.is_null());
    }
    p.interval_samples = 1 << 24;
    let mut mc = null_mut();
    expect(unsafe { latent_montecarlo_new(&p, 3, &mut mc) }, LATENT_STATUS_OK);
    unsafe { latent_montecarlo_free(mc) };
}

#[test]
fn the_copy_of_a_callers_rows_is_out_of_memory_not_an_abort() {
    in_child("the_copy_of_a_callers_rows_is_out_of_memory_not_an_abort", GIB, || {
        // 600 MB of rows (calloc'd: not touched) under a 1 GiB limit: their copy cannot fit.
        let (rows, cols) = (1000usize, 150_000usize);
        let x = vec![0f32; rows * cols];
        let net = autoencoder(cols as u32, 1);
        // One thread: a pool of many under the memory limit is not what this test is about.
        expect(unsafe { latent_network_set_threads(net, 1) }, LATENT_STATUS_OK);
        let mut codes = vec![0f32; rows];
        expect(
            unsafe { latent_network_encode(net, x.as_ptr(), rows, cols, codes.as_mut_ptr(), codes.len()) },
            LATENT_STATUS_OUT_OF_MEMORY,
        );
        let mut scores = vec![0f64; rows];
        expect(
            unsafe { latent_network_reconstruction_error(net, x.as_ptr(), rows, cols, scores.as_mut_ptr(), rows) },
            LATENT_STATUS_OUT_OF_MEMORY,
        );
        // The network is fine afterwards.
        expect(unsafe { latent_network_encode(net, x.as_ptr(), 2, cols, codes.as_mut_ptr(), 2) }, LATENT_STATUS_OK);
        unsafe { latent_network_free(net) };
    });
}

#[test]
fn output_capacity_is_checked_before_reading_or_computing() {
    // `rows` far beyond the caller's 10 floats: a read of the rows would crash, so the child
    // proves the capacity check comes first.
    in_child("output_capacity_is_checked_before_reading_or_computing", GIB, || {
        let x = data(2, 5);
        let net = autoencoder(5, 3);
        let rows = 1usize << 28;
        let mut out = [0f32; 15];
        let mut scores = [0f64; 3];
        let mut labels = [0i32; 3];
        let mut words = [0u64; 3];
        unsafe {
            expect(latent_network_encode(net, x.as_ptr(), rows, 5, out.as_mut_ptr(), 15), 11);
            expect(latent_network_reconstruct(net, x.as_ptr(), rows, 5, out.as_mut_ptr(), 15), 11);
            expect(latent_network_predict(net, x.as_ptr(), rows, 5, out.as_mut_ptr(), 15), 11);
            expect(latent_network_decode(net, x.as_ptr(), rows, 3, out.as_mut_ptr(), 15), 11);
            expect(latent_network_reconstruction_error(net, x.as_ptr(), rows, 5, scores.as_mut_ptr(), 3), 11);
            expect(latent_network_jacobian_norms(net, x.as_ptr(), rows, 5, scores.as_mut_ptr(), 3), 11);
            expect(latent_network_classify(net, x.as_ptr(), rows, 5, labels.as_mut_ptr(), 3), 11);
            expect(latent_network_binary_codes(net, x.as_ptr(), rows, 5, 0.0, words.as_mut_ptr(), 3), 11);
            let sc = [0.5f64; 4];
            let mut flags = [0u8; 4];
            expect(latent_anomaly_flag(sc.as_ptr(), rows, 0.1, flags.as_mut_ptr(), 4, null_mut()), 11);
            // A wrong width is reported before the capacity.
            expect(latent_network_encode(net, x.as_ptr(), rows, 4, out.as_mut_ptr(), 15), 3);
            latent_network_free(net);
        }
        let v = vae(5, 2, LATENT_DISTRIBUTION_BERNOULLI);
        let mut lp = [0f64; 3];
        let mut mean = [0f32; 6];
        unsafe {
            expect(latent_vae_encode(v, x.as_ptr(), rows, 5, mean.as_mut_ptr(), null_mut(), 6), 11);
            expect(latent_vae_reconstruct(v, x.as_ptr(), rows, 5, out.as_mut_ptr(), 15), 11);
            expect(latent_vae_log_likelihood(v, x.as_ptr(), rows, 5, 4, 1, lp.as_mut_ptr(), 3), 11);
            expect(latent_vae_reconstruction_log_probability(v, x.as_ptr(), rows, 5, 4, 1, lp.as_mut_ptr(), 3), 11);
            expect(latent_vae_generate_mean(v, x.as_ptr(), rows, 2, out.as_mut_ptr(), 15), 11);
            expect(latent_vae_sample_z(v, x.as_ptr(), rows, 5, 2, 1, mean.as_mut_ptr(), 6), 11);
            latent_vae_free(v);
        }
    });
}

#[test]
fn layer_counts_are_checked_before_the_arrays_are_read() {
    in_child("layer_counts_are_checked_before_the_arrays_are_read", 0, || {
        let units = [4u32, 3];
        let mut p = latent_network_params_default();
        p.input_dim = 5;
        p.code_units = 2;
        p.n_encoder = u32::MAX;
        p.encoder_units = units.as_ptr();
        let mut net = null_mut();
        expect(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("n_encoder"), "{}", message());
        p.n_encoder = 257;
        expect(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_INVALID_ARGUMENT);
        p.n_encoder = 2;
        p.mirror_decoder = 0;
        p.n_decoder = u32::MAX;
        p.decoder_units = units.as_ptr();
        expect(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("n_decoder"), "{}", message());
        p.n_decoder = 2;
        let sparse = [0u32];
        p.sparse_layers = sparse.as_ptr();
        p.n_sparse_layers = u32::MAX;
        expect(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_INVALID_ARGUMENT);
        p.n_sparse_layers = 1;
        expect(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_OK);
        unsafe { latent_network_free(net) };

        let mut v = latent_vae_params_default();
        v.input_dim = 5;
        v.latent_dim = 2;
        v.n_encoder = u32::MAX;
        v.encoder_units = units.as_ptr();
        let mut h = null_mut();
        expect(unsafe { latent_vae_new(&v, &mut h) }, LATENT_STATUS_INVALID_ARGUMENT);
        v.n_encoder = 2;
        v.n_decoder = u32::MAX;
        v.decoder_units = units.as_ptr();
        expect(unsafe { latent_vae_new(&v, &mut h) }, LATENT_STATUS_INVALID_ARGUMENT);
        v.n_decoder = 2;
        let parts = [latent_vae_part { size: 5, distribution: LATENT_DISTRIBUTION_BERNOULLI, activation: 0 }];
        v.parts = parts.as_ptr();
        v.n_parts = u32::MAX;
        expect(unsafe { latent_vae_new(&v, &mut h) }, LATENT_STATUS_INVALID_ARGUMENT);
        v.n_parts = 1;
        expect(unsafe { latent_vae_new(&v, &mut h) }, LATENT_STATUS_OK);
        unsafe { latent_vae_free(h) };
    });
}

#[test]
fn an_image_grid_checks_its_size_before_reading_the_pixels() {
    in_child("an_image_grid_checks_its_size_before_reading_the_pixels", 0, || {
        let dir = std::env::temp_dir().join(format!("latent_robustness_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = std::ffi::CString::new(dir.join("grid.pgm").to_str().unwrap()).unwrap();
        let px = [0.5f32; 4];
        let n = 1usize << 40;
        unsafe {
            expect(latent_image_grid_write(path.as_ptr(), px.as_ptr(), n, 1, 1, 8, 0.0, 1.0, 0), 2);
            assert!(message().contains("too large"), "{}", message());
            expect(latent_image_pairs_write(path.as_ptr(), px.as_ptr(), px.as_ptr(), n, 1, 1, 8, 0.0, 1.0, 0), 2);
            expect(latent_image_grid_write(path.as_ptr(), px.as_ptr(), 4, 1, 1, 2, 0.0, 1.0, 0), 0);
        }
        std::fs::remove_dir_all(&dir).ok();
    });
}

#[test]
fn labels_are_counted_before_they_are_read() {
    in_child("labels_are_counted_before_they_are_read", 0, || {
        let x = data(4, 3);
        let d = dataset(&x, 4, 3);
        let labels = [0i32, 1, 0, 1];
        expect(unsafe { latent_dataset_set_labels(d, labels.as_ptr(), usize::MAX / 8) }, LATENT_STATUS_SHAPE_MISMATCH);
        expect(unsafe { latent_dataset_set_labels(d, labels.as_ptr(), 4) }, LATENT_STATUS_OK);
        unsafe { latent_dataset_free(d) };
    });
}

// ---------------------------------------------------------------------------------------------
// Item 3: supervised networks in the metrics calls.

#[test]
fn metrics_of_supervised_networks_are_documented_answers_not_internal() {
    let (rows, cols) = (60usize, 4usize);
    let x = data(rows, cols);
    let d = dataset(&x, rows, cols);
    let labels: Vec<i32> = (0..rows as i32).map(|i| i % 3).collect();
    expect(unsafe { latent_dataset_set_labels(d, labels.as_ptr(), rows) }, LATENT_STATUS_OK);
    for (task, outputs) in [(LATENT_TASK_CLASSIFY, 3), (LATENT_TASK_REGRESS, 2)] {
        let net = network(cols as u32, 5, task, outputs);
        let mut m = latent_metrics::default();
        expect(unsafe { latent_network_metrics(net, d, &mut m) }, LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("evaluate"), "{}", message());
        // The code activation means are defined for any network: the mean of its codes.
        let mut means = [0f64; 5];
        expect(unsafe { latent_network_code_activation_means(net, d, means.as_mut_ptr(), 5) }, LATENT_STATUS_OK);
        let mut codes = vec![0f32; rows * 5];
        expect(unsafe { latent_network_encode_dataset(net, d, codes.as_mut_ptr(), codes.len()) }, LATENT_STATUS_OK);
        for (j, &got) in means.iter().enumerate() {
            let want = codes.iter().skip(j).step_by(5).map(|&c| c as f64).sum::<f64>() / rows as f64;
            assert!((got - want).abs() < 1e-6, "unit {j}: {got} vs {want}");
        }
        expect(unsafe { latent_network_code_activation_means(net, d, means.as_mut_ptr(), 4) }, 11);
        unsafe { latent_network_free(net) };
    }
    unsafe { latent_dataset_free(d) };
}

// ---------------------------------------------------------------------------------------------
// Item 8: empty and odd inputs.

#[test]
fn evaluations_of_zero_rows_are_invalid_argument() {
    let x = data(10, 4);
    let d = dataset(&x, 10, 4);
    let (all, empty) = empty_part(d);
    let net = autoencoder(4, 2);
    let mut v = 0f64;
    let mut m = latent_metrics::default();
    let mut means = [0f64; 2];
    unsafe {
        expect(latent_network_loss(net, empty, &mut v), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("no rows"), "{}", message());
        expect(latent_network_mse(net, empty, &mut v), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("no rows"), "{}", message());
        expect(latent_network_metrics(net, empty, &mut m), LATENT_STATUS_INVALID_ARGUMENT);
        expect(latent_network_code_activation_means(net, empty, means.as_mut_ptr(), 2), 2);
        expect(latent_network_loss(net, all, &mut v), LATENT_STATUS_OK);
    }
    let clf = network(4, 2, LATENT_TASK_CLASSIFY, 2);
    let mut e = latent_evaluation { loss: 0.0, accuracy: 0.0, mse: 0.0, rows: 0 };
    expect(unsafe { latent_network_evaluate(clf, empty, &mut e, null_mut(), 0) }, LATENT_STATUS_INVALID_ARGUMENT);
    let vae = vae(4, 2, LATENT_DISTRIBUTION_BERNOULLI);
    let mut elbo = latent_elbo { neg_elbo: 0.0, reconstruction: 0.0, kl: 0.0 };
    unsafe {
        expect(latent_vae_elbo(vae, empty, 1, 1, &mut elbo), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("no rows"), "{}", message());
        expect(latent_vae_iwae_bound(vae, empty, 4, 1, &mut v), LATENT_STATUS_INVALID_ARGUMENT);
        expect(latent_vae_elbo(vae, all, 1, 1, &mut elbo), LATENT_STATUS_OK);
        latent_vae_free(vae);
        latent_network_free(clf);
        latent_network_free(net);
        latent_dataset_free(all);
        latent_dataset_free(empty);
        latent_dataset_free(d);
    }
}

#[test]
fn inference_on_zero_rows_is_ok_with_nothing_written() {
    let x = data(10, 4);
    let d = dataset(&x, 10, 4);
    let (all, empty) = empty_part(d);
    let net = autoencoder(4, 2);
    let clf = network(4, 2, LATENT_TASK_CLASSIFY, 3);
    let mut f = [7f32; 4];
    let mut s = [7f64; 2];
    let mut l = [7i32; 2];
    let mut w = [7u64; 2];
    unsafe {
        // A caller's matrix of zero rows, with or without buffers.
        expect(latent_network_encode(net, x.as_ptr(), 0, 4, f.as_mut_ptr(), 4), 0);
        expect(latent_network_encode(net, null(), 0, 4, null_mut(), 0), 0);
        expect(latent_network_decode(net, null(), 0, 2, null_mut(), 0), 0);
        expect(latent_network_reconstruct(net, null(), 0, 4, null_mut(), 0), 0);
        expect(latent_network_predict(clf, null(), 0, 4, null_mut(), 0), 0);
        expect(latent_network_classify(clf, null(), 0, 4, null_mut(), 0), 0);
        expect(latent_network_reconstruction_error(net, null(), 0, 4, s.as_mut_ptr(), 2), 0);
        expect(latent_network_jacobian_norms(net, null(), 0, 4, null_mut(), 0), 0);
        expect(latent_network_binary_codes(net, null(), 0, 4, 0.0, w.as_mut_ptr(), 2), 0);
        // From an empty dataset.
        expect(latent_network_encode_dataset(net, empty, null_mut(), 0), 0);
        expect(latent_network_reconstruct_dataset(net, empty, f.as_mut_ptr(), 4), 0);
        expect(latent_network_reconstruction_error_dataset(net, empty, null_mut(), 0), 0);
        expect(latent_network_predict_dataset(clf, empty, null_mut(), 0), 0);
        expect(latent_network_classify_dataset(clf, empty, l.as_mut_ptr(), 2), 0);
        expect(latent_network_binary_codes_dataset(net, empty, 0.0, null_mut(), 0), 0);
        assert_eq!(f, [7f32; 4]);
        assert_eq!(s, [7f64; 2]);
        assert_eq!(l, [7i32; 2]);
        assert_eq!(w, [7u64; 2]);
        // Zero columns and the wrong width are still errors.
        expect(latent_network_encode(net, null(), 0, 0, null_mut(), 0), LATENT_STATUS_INVALID_ARGUMENT);
        expect(latent_network_encode(net, null(), 0, 3, null_mut(), 0), LATENT_STATUS_SHAPE_MISMATCH);
        // A classifier's reconstruction errors stay an error, rows or not.
        expect(latent_network_reconstruction_error(clf, null(), 0, 4, null_mut(), 0), 2);
    }
    let v = vae(4, 2, LATENT_DISTRIBUTION_BERNOULLI);
    unsafe {
        expect(latent_vae_encode(v, null(), 0, 4, null_mut(), null_mut(), 0), 0);
        expect(latent_vae_reconstruct(v, null(), 0, 4, null_mut(), 0), 0);
        expect(latent_vae_generate_mean(v, null(), 0, 2, null_mut(), 0), 0);
        expect(latent_vae_log_likelihood(v, null(), 0, 4, 8, 1, null_mut(), 0), 0);
        expect(latent_vae_log_likelihood_dataset(v, empty, 8, 1, null_mut(), 0), 0);
        expect(latent_vae_encode_dataset(v, empty, null_mut(), null_mut(), 0), 0);
        expect(latent_vae_sample_z(v, null(), 0, 4, 3, 1, null_mut(), 0), 0);
        latent_vae_free(v);
        latent_network_free(clf);
        latent_network_free(net);
        latent_dataset_free(all);
        latent_dataset_free(empty);
        latent_dataset_free(d);
    }
}

#[test]
fn a_fit_refuses_an_empty_validation_set() {
    let x = data(20, 4);
    let d = dataset(&x, 20, 4);
    let (all, empty) = empty_part(d);
    let mut p = latent_train_params_default();
    p.epochs = 2;
    p.batch_size = 5;
    p.early_stopping_patience = 1;
    let mut tr = null_mut();
    expect(unsafe { latent_trainer_new(&p, &mut tr) }, LATENT_STATUS_OK);
    let net = autoencoder(4, 2);
    let before = {
        let mut v = vec![0f32; 64];
        let mut n = 0usize;
        expect(unsafe { latent_network_param_count(net, &mut n) }, 0);
        v.resize(n, 0.0);
        expect(unsafe { latent_network_get_params(net, v.as_mut_ptr(), n) }, 0);
        v
    };
    unsafe {
        expect(latent_trainer_fit(tr, net, all, empty, None, null_mut()), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("validation data has no rows"), "{}", message());
        let mut after = vec![0f32; before.len()];
        expect(latent_network_get_params(net, after.as_mut_ptr(), after.len()), 0);
        assert_eq!(before, after, "a refused fit changed the network");
        let v = vae(4, 2, LATENT_DISTRIBUTION_GAUSSIAN);
        expect(latent_trainer_fit_vae(tr, v, all, empty, None, null_mut()), LATENT_STATUS_INVALID_ARGUMENT);
        // With real validation rows the fit runs.
        expect(latent_trainer_fit(tr, net, all, all, None, null_mut()), LATENT_STATUS_OK);
        latent_vae_free(v);
        latent_trainer_free(tr);
        latent_network_free(net);
        latent_dataset_free(all);
        latent_dataset_free(empty);
        latent_dataset_free(d);
    }
}

#[test]
fn pretraining_refuses_an_empty_validation_set_and_checks_its_layer_count() {
    in_child("pretraining_refuses_an_empty_validation_set_and_checks_its_layer_count", 0, || {
        let x = data(20, 4);
        let d = dataset(&x, 20, 4);
        let (all, empty) = empty_part(d);
        let net = autoencoder(4, 2);
        let mut p = latent_pretrain_params_default();
        p.pretrain.epochs = 1;
        p.finetune.epochs = 1;
        unsafe {
            expect(latent_network_pretrain(net, &p, all, empty, None, null_mut()), LATENT_STATUS_INVALID_ARGUMENT);
            assert!(message().contains("validation data has no rows"), "{}", message());
            let layers = [latent_layer_regularization_default(); 2];
            p.layers = layers.as_ptr();
            p.n_layers = u32::MAX;
            expect(latent_network_pretrain(net, &p, all, null(), None, null_mut()), LATENT_STATUS_INVALID_ARGUMENT);
            assert!(message().contains("n_layers"), "{}", message());
            latent_network_free(net);
            latent_dataset_free(all);
            latent_dataset_free(empty);
            latent_dataset_free(d);
        }
    });
}

#[test]
fn a_validation_fraction_that_holds_no_row_is_refused() {
    let x = data(20, 4);
    let d = dataset(&x, 20, 4);
    let mut p = latent_train_params_default();
    p.epochs = 1;
    p.batch_size = 5;
    p.validation_fraction = 0.01;
    let mut tr = null_mut();
    expect(unsafe { latent_trainer_new(&p, &mut tr) }, LATENT_STATUS_OK);
    let net = autoencoder(4, 2);
    unsafe {
        expect(latent_trainer_fit(tr, net, d, null(), None, null_mut()), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(message().contains("holds no row"), "{}", message());
        latent_trainer_free(tr);
        latent_network_free(net);
        latent_dataset_free(d);
    }
}

#[test]
fn finite_inputs_that_overflow_are_non_finite_not_ok_with_nans() {
    let net = autoencoder(4, 2);
    let mut n = 0usize;
    expect(unsafe { latent_network_param_count(net, &mut n) }, 0);
    // Huge weights of both signs: sums of +-1e60 overflow to inf - inf = NaN.
    let huge: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { 1e30 } else { -1e30 }).collect();
    expect(unsafe { latent_network_set_params(net, huge.as_ptr(), n) }, LATENT_STATUS_OK);
    let x = [1e30f32; 8];
    let mut codes = [0f32; 4];
    let mut out = [0f32; 8];
    let mut s = [0f64; 2];
    let mut w = [0u64; 2];
    let d = dataset(&x, 2, 4);
    let mut v = 0f64;
    unsafe {
        expect(latent_network_encode(net, x.as_ptr(), 2, 4, codes.as_mut_ptr(), 4), LATENT_STATUS_NON_FINITE);
        assert!(message().contains("overflow"), "{}", message());
        expect(latent_network_encode_dataset(net, d, codes.as_mut_ptr(), 4), LATENT_STATUS_NON_FINITE);
        expect(latent_network_binary_codes(net, x.as_ptr(), 2, 4, 0.0, w.as_mut_ptr(), 2), LATENT_STATUS_NON_FINITE);
        // Whatever a later layer makes of the overflow (a ReLU drops NaN, a sigmoid saturates
        // inf), a call never returns OK with a non-finite value in the caller's buffer.
        let st = latent_network_reconstruct(net, x.as_ptr(), 2, 4, out.as_mut_ptr(), 8);
        assert!(st == LATENT_STATUS_NON_FINITE || (st == 0 && out.iter().all(|v| v.is_finite())), "{st} {out:?}");
        let st = latent_network_reconstruction_error(net, x.as_ptr(), 2, 4, s.as_mut_ptr(), 2);
        assert!(st == LATENT_STATUS_NON_FINITE || (st == 0 && s.iter().all(|v| v.is_finite())), "{st} {s:?}");
        let st = latent_network_mse(net, d, &mut v);
        assert!(st == LATENT_STATUS_NON_FINITE || (st == 0 && v.is_finite()), "{st} {v}");
        // A decoder fed huge codes overflows too.
        let big = [1e30f32; 4];
        let st = latent_network_decode(net, big.as_ptr(), 2, 2, out.as_mut_ptr(), 8);
        assert!(st == LATENT_STATUS_NON_FINITE || (st == 0 && out.iter().all(|v| v.is_finite())), "{st} {out:?}");
        // A VAE's posterior means overflow the same way.
        let vh = vae(4, 2, LATENT_DISTRIBUTION_GAUSSIAN);
        let mut m = 0usize;
        expect(latent_vae_param_count(vh, &mut m), 0);
        let huge: Vec<f32> = (0..m).map(|i| if i % 2 == 0 { 1e30 } else { -1e30 }).collect();
        expect(latent_vae_set_params(vh, huge.as_ptr(), m), 0);
        let mut mean = [0f32; 4];
        expect(latent_vae_encode(vh, x.as_ptr(), 2, 4, mean.as_mut_ptr(), null_mut(), 4), LATENT_STATUS_NON_FINITE);
        latent_vae_free(vh);
        latent_dataset_free(d);
        latent_network_free(net);
    }
}

#[test]
fn a_bernoulli_vae_refuses_data_outside_0_1() {
    let v = vae(4, 2, LATENT_DISTRIBUTION_BERNOULLI);
    let mut x = data(3, 4);
    x[6] = 2.5; // row 1, column 2
    let d = dataset(&x, 3, 4);
    let mut out = [0f64; 3];
    let mut e = latent_elbo { neg_elbo: 0.0, reconstruction: 0.0, kl: 0.0 };
    let mut b = 0f64;
    unsafe {
        expect(latent_vae_log_likelihood(v, x.as_ptr(), 3, 4, 4, 1, out.as_mut_ptr(), 3), 2);
        assert!(message().contains("row 1, column 2"), "{}", message());
        expect(latent_vae_log_likelihood_dataset(v, d, 4, 1, out.as_mut_ptr(), 3), 2);
        expect(latent_vae_reconstruction_log_probability(v, x.as_ptr(), 3, 4, 4, 1, out.as_mut_ptr(), 3), 2);
        expect(latent_vae_reconstruction_probability(v, x.as_ptr(), 3, 4, 4, 1, out.as_mut_ptr(), 3), 2);
        expect(latent_vae_reconstruction_log_probability_dataset(v, d, 4, 1, out.as_mut_ptr(), 3), 2);
        expect(latent_vae_elbo(v, d, 1, 1, &mut e), 2);
        expect(latent_vae_iwae_bound(v, d, 4, 1, &mut b), 2);
        // At fit, as training and as validation data.
        let p = latent_train_params_default();
        let mut tr = null_mut();
        expect(latent_trainer_new(&p, &mut tr), 0);
        expect(latent_trainer_fit_vae(tr, v, d, null(), None, null_mut()), 2);
        assert!(message().contains("row 1, column 2"), "{}", message());
        let good = data(3, 4);
        let g = dataset(&good, 3, 4);
        expect(latent_trainer_fit_vae(tr, v, g, d, None, null_mut()), 2);
        // A negative value too, and a Gaussian VAE takes any finite data.
        x[6] = -0.5;
        expect(latent_vae_log_likelihood(v, x.as_ptr(), 3, 4, 4, 1, out.as_mut_ptr(), 3), 2);
        let gv = vae(4, 2, LATENT_DISTRIBUTION_GAUSSIAN);
        expect(latent_vae_log_likelihood(gv, x.as_ptr(), 3, 4, 4, 1, out.as_mut_ptr(), 3), 0);
        expect(latent_vae_log_likelihood(v, good.as_ptr(), 3, 4, 4, 1, out.as_mut_ptr(), 3), 0);
        latent_vae_free(gv);
        latent_trainer_free(tr);
        latent_dataset_free(g);
        latent_dataset_free(d);
        latent_vae_free(v);
    }
}

// ---------------------------------------------------------------------------------------------
// Found by outside testing in stop 41: callers on several threads, and fork().

/// Re-runs test `name` alone in a child with `env` set, and asserts it passed: a crash
/// (SIGSEGV of an overflowed stack) fails the test instead of killing the run.
fn in_child_with_env(name: &str, env: &[(&str, &str)], body: impl FnOnce()) {
    if std::env::var("ROBUSTNESS_CHILD").as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--test-threads=1", "--nocapture"]).env("ROBUSTNESS_CHILD", name);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child for {name} did not pass: {:?} (a signal means a crash)\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two threads encoding 512-row blocks (below the one-thread inference cut, so each call runs on
/// its caller with the pool's workers helping) on 2-thread networks, one shared and one each.
/// A worker that ran one caller's helper job from inside its wait for the other's nested a
/// second wait, and so on until its stack overflowed: SIGSEGV within 1-20 s with 2 MiB stacks.
/// The workers here get 128 KiB stacks (RUST_MIN_STACK), so the nesting would overflow in
/// milliseconds; the results are checked against one thread's bits.
#[test]
fn two_threads_encoding_at_once_do_not_overflow_a_workers_stack() {
    in_child_with_env(
        "two_threads_encoding_at_once_do_not_overflow_a_workers_stack",
        &[("RUST_MIN_STACK", "131072"), ("LATENT_WAIT_POLICY", "spin-then-park")],
        || unsafe {
            const ROWS: usize = 512;
            let x = data(ROWS, 32);
            let make = |threads: u32| {
                let net = sized_autoencoder(32, 32, 8, 1);
                expect(latent_network_set_threads(net, threads), 0);
                net as usize
            };
            let one = make(1);
            let mut want = vec![0f32; ROWS * 8];
            expect(latent_network_encode(one as *const _, x.as_ptr(), ROWS, 32, want.as_mut_ptr(), want.len()), 0);
            let (shared, a, b) = (make(2), make(2), make(2));
            let run = |nets: [usize; 2]| {
                let (x, want) = (&x, &want);
                std::thread::scope(|s| {
                    for net in nets {
                        s.spawn(move || {
                            let mut out = vec![0f32; ROWS * 8];
                            let t0 = std::time::Instant::now();
                            while t0.elapsed() < std::time::Duration::from_millis(1500) {
                                let st = latent_network_encode(
                                    net as *const _,
                                    x.as_ptr(),
                                    ROWS,
                                    32,
                                    out.as_mut_ptr(),
                                    out.len(),
                                );
                                assert_eq!(st, 0, "{}", message());
                                assert!(out == *want, "a result differs from one thread's");
                            }
                        });
                    }
                });
            };
            run([shared, shared]);
            run([a, b]);
            for n in [one, shared, a, b] {
                latent_network_free(n as *mut _);
            }
        },
    );
}

/// A fork()ed child of a process that trained and ran inference on 2 threads trains and encodes
/// too (Python's multiprocessing forks by default). The child inherits the parent's cached
/// thread pools without their threads: its first fit waited for ever for a worker (an outside
/// test; the Python one saw scikit-learn's cross_val_score never return). The child's results
/// are the parent's bits.
#[test]
fn a_forked_child_trains_and_encodes() {
    in_child("a_forked_child_trains_and_encodes", 0, || unsafe {
        const ROWS: usize = 2048;
        let x = data(ROWS, 64);
        let d = dataset(&x, ROWS, 64);
        let work = || {
            let net = sized_autoencoder(64, 32, 8, 2);
            let mut tp = latent_train_params_default();
            tp.epochs = 2;
            tp.threads = 2;
            let mut tr = null_mut();
            expect(latent_trainer_new(&tp, &mut tr), 0);
            expect(latent_trainer_fit(tr, net, d, null(), None, null_mut()), 0);
            expect(latent_network_set_threads(net, 2), 0);
            // Both inference paths: the pool (2048 x 64 values) and the caller helped (8 rows).
            let mut big = vec![0f32; ROWS * 8];
            expect(latent_network_encode(net, x.as_ptr(), ROWS, 64, big.as_mut_ptr(), big.len()), 0);
            let mut small = vec![0f32; 8 * 8];
            expect(latent_network_encode(net, x.as_ptr(), 8, 64, small.as_mut_ptr(), small.len()), 0);
            latent_trainer_free(tr);
            latent_network_free(net);
            (big, small)
        };
        let parent = work();
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // The child: only async-signal-safe exits from here on, whatever happens.
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work() == parent)).unwrap_or(false);
            libc::_exit(if ok { 0 } else { 3 });
        }
        let mut status = 0;
        let t0 = std::time::Instant::now();
        loop {
            let r = libc::waitpid(pid, &mut status, libc::WNOHANG);
            if r == pid {
                break;
            }
            if t0.elapsed() > std::time::Duration::from_secs(60) {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
                panic!("the forked child hung in its first fit or encode (killed after 60 s)");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the forked child failed (status {status:#x}; exit 3: a result differed from the parent's)"
        );
        // The parent's own pools still work after the fork.
        assert!(work() == parent);
        latent_dataset_free(d);
    });
}

/// A change of a network (set_params) while four threads keep encoding on it gets in within a
/// bounded wait: readers that arrive while it waits hold back. It polled for a moment with no
/// reader inside, which overlapping readers never left: an outside test saw single calls wait
/// 6.5 s and 51.6 s. Every encode sees either the old or the new parameters, never a mix.
#[test]
fn set_params_gets_in_while_four_threads_keep_encoding() {
    unsafe {
        let net = autoencoder(32, 8) as usize;
        let mut n = 0usize;
        expect(latent_network_param_count(net as *const _, &mut n), 0);
        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
        expect(latent_network_get_params(net as *const _, a.as_mut_ptr(), n), 0);
        b.iter_mut().zip(&a).for_each(|(b, a)| *b = -a);
        let x = data(3, 32);
        let code = |p: &[f32]| {
            expect(latent_network_set_params(net as *mut _, p.as_ptr(), n), 0);
            let mut c = vec![0f32; 3 * 8];
            expect(latent_network_encode(net as *const _, x.as_ptr(), 3, 32, c.as_mut_ptr(), c.len()), 0);
            c
        };
        let (ca, cb) = (code(&b), code(&a));
        assert!(ca != cb);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let mut worst = std::time::Duration::ZERO;
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut c = vec![0f32; 3 * 8];
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let st = latent_network_encode(net as *const _, x.as_ptr(), 3, 32, c.as_mut_ptr(), c.len());
                        assert_eq!(st, 0, "{}", message());
                        assert!(c == ca || c == cb, "an encode saw a mix of two parameter sets");
                        reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            for i in 0..40 {
                let t0 = std::time::Instant::now();
                let p = if i % 2 == 0 { &b } else { &a };
                expect(latent_network_set_params(net as *mut _, p.as_ptr(), n), 0);
                worst = worst.max(t0.elapsed());
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        assert!(worst < std::time::Duration::from_secs(2), "a set_params call waited {worst:?}");
        assert!(reads.load(std::sync::atomic::Ordering::Relaxed) > 40, "the readers were held back");
        latent_network_free(net as *mut _);
    }
}

/// A streamed fit over 2^31 - 1000 rows (a sparse 8 GB `.npy` of one column, no disk used)
/// under a 4 GiB address-space limit: the per-row order it needs (8.6 GB) cannot be had, and
/// the fit says so (OUT_OF_MEMORY with a message). It aborted the process with an allocation
/// failure and a backtrace on stderr (an outside test).
#[test]
fn a_streamed_fit_too_large_for_memory_is_out_of_memory() {
    let dir = std::env::temp_dir().join(format!("latent-huge-stream-{}", std::process::id()));
    let path = dir.join("huge.npy");
    in_child("a_streamed_fit_too_large_for_memory_is_out_of_memory", 4 * GIB, || unsafe {
        const ROWS: u64 = (1 << 31) - 1000;
        std::fs::create_dir_all(&dir).unwrap();
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({ROWS}, 1), }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        let f = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &f, &bytes).unwrap();
        f.set_len(bytes.len() as u64 + 4 * ROWS).unwrap(); // sparse: zeros, no blocks
        let cpath = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let mut stream = null_mut();
        expect(latent_stream_open(cpath.as_ptr(), &mut stream), 0);
        let net = autoencoder(1, 1);
        let mut tp = latent_train_params_default();
        tp.epochs = 1;
        tp.threads = 1;
        let mut tr = null_mut();
        expect(latent_trainer_new(&tp, &mut tr), 0);
        let st = latent_trainer_fit_stream(tr, net, stream, null(), None, null_mut());
        let _ = std::fs::remove_dir_all(&dir);
        expect(st, LATENT_STATUS_OUT_OF_MEMORY);
        assert!(message().contains("out of memory") || message().contains("rows"), "{}", message());
        latent_trainer_free(tr);
        latent_network_free(net);
        latent_stream_free(stream);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 15 GiB file that is no model file (sparse: no disk used), loaded under a 1 GiB
/// address-space limit: refused as BAD_FORMAT "bad magic" from its first bytes, by every
/// loader. Before, each read the whole file first (an outside test: 3 GB and 13 s for a 3 GB
/// file), and here would have failed with OUT_OF_MEMORY instead.
#[test]
fn loaders_refuse_a_large_non_model_file_from_its_first_bytes() {
    let dir = std::env::temp_dir().join(format!("latent-big-non-model-{}", std::process::id()));
    in_child("loaders_refuse_a_large_non_model_file_from_its_first_bytes", GIB, || unsafe {
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.bin");
        let f = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &f, b"NOTAMODEL").unwrap();
        f.set_len(15 * GIB).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        use latent::ffi::checkpoint::{latent_trainer_resume_network, latent_trainer_resume_vae};
        let (mut net, mut vae, mut rbm, mut tr) = (null_mut(), null_mut(), null_mut(), null_mut());
        let (mut net2, mut vae2) = (null_mut(), null_mut());
        let model = "not a latent model file (bad magic)";
        let checkpoint = "not a latent checkpoint (bad magic)";
        let check = |what: &str, st: latent_status, want: &str| {
            let m = message();
            assert_eq!(st, LATENT_STATUS_BAD_FORMAT, "{what}: {m}");
            assert!(m.contains("big.bin") && m.contains(want), "{what}: {m}");
        };
        check("network", latent_network_load(c.as_ptr(), &mut net), model);
        check("VAE", latent_vae_load(c.as_ptr(), &mut vae), model);
        check("RBM", latent_rbm_load(c.as_ptr(), &mut rbm), model);
        check("checkpoint", latent_trainer_resume_network(c.as_ptr(), &mut tr, &mut net2), checkpoint);
        check("VAE checkpoint", latent_trainer_resume_vae(c.as_ptr(), &mut tr, &mut vae2), checkpoint);
        assert!(net.is_null() && vae.is_null() && rbm.is_null() && tr.is_null() && net2.is_null() && vae2.is_null());
        let _ = std::fs::remove_dir_all(&dir);
        expect(latent_network_load(c.as_ptr(), &mut net), LATENT_STATUS_IO);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Decode and reconstruct are an autoencoder's: on a classifier or regressor every form of
/// them (caller's rows, a buffer in the caller's type, a dataset) is INVALID_ARGUMENT naming
/// predict, with the caller's buffer untouched. They wrote the head's logits, passed through
/// the input scaling, into rows x outputs of a buffer the caller had sized rows x input_dim
/// (the R binding returned uninitialised memory). And latent_network_loss of a classifier or
/// regressor is its loss against the dataset's labels or targets (it refused every one, against
/// its documentation), equal to latent_network_evaluate's; without them, INVALID_ARGUMENT.
#[test]
fn supervised_networks_refuse_decode_and_reconstruct_and_give_their_loss() {
    let (rows, cols) = (30usize, 4usize);
    let x = data(rows, cols);
    let labeled = dataset(&x, rows, cols);
    let labels: Vec<i32> = (0..rows as i32).map(|i| i % 3).collect();
    let plain = dataset(&x, rows, cols);
    unsafe {
        expect(latent_dataset_set_labels(labeled, labels.as_ptr(), rows), 0);
        let targets: Vec<f32> = (0..rows * 2).map(|i| (i % 7) as f32 / 7.0).collect();
        let with_targets = dataset(&x, rows, cols);
        expect(
            latent_dataset_set_targets(
                with_targets,
                targets.as_ptr().cast(),
                LATENT_DTYPE_F32,
                LATENT_LAYOUT_ROW_MAJOR,
                rows,
                2,
            ),
            0,
        );
        for (task, outputs, with) in [(LATENT_TASK_CLASSIFY, 3, labeled), (LATENT_TASK_REGRESS, 2, with_targets)] {
            let net = network(cols as u32, 2, task, outputs);
            let mut out = vec![7f32; rows * cols.max(outputs as usize)];
            let n = out.len();
            let refused = |st: latent_status| {
                expect(st, LATENT_STATUS_INVALID_ARGUMENT);
                assert!(message().contains("predict"), "{}", message());
            };
            refused(latent_network_reconstruct(net, x.as_ptr(), rows, cols, out.as_mut_ptr(), n));
            refused(latent_network_reconstruct_dataset(net, plain, out.as_mut_ptr(), n));
            refused(latent_network_reconstruct_buffer(
                net,
                x.as_ptr().cast(),
                LATENT_DTYPE_F32,
                LATENT_LAYOUT_ROW_MAJOR,
                rows,
                cols,
                out.as_mut_ptr().cast(),
                n,
            ));
            refused(latent_network_decode(net, x.as_ptr(), rows, 2, out.as_mut_ptr(), n));
            assert!(out.iter().all(|&v| v == 7.0), "a refused call wrote to the caller's buffer");
            // Predict still gives its outputs.
            expect(latent_network_predict(net, x.as_ptr(), rows, cols, out.as_mut_ptr(), n), 0);
            // The loss against the labels or targets, as evaluate's.
            let (mut loss, mut ev) = (0f64, std::mem::zeroed::<latent_evaluation>());
            expect(latent_network_loss(net, with, &mut loss), 0);
            expect(latent_network_evaluate(net, with, &mut ev, null_mut(), 0), 0);
            assert!(loss.is_finite() && loss > 0.0 && loss == ev.loss, "{loss} vs {}", ev.loss);
            expect(latent_network_loss(net, plain, &mut loss), LATENT_STATUS_INVALID_ARGUMENT);
            latent_network_free(net);
        }
        latent_dataset_free(with_targets);
        latent_dataset_free(labeled);
        latent_dataset_free(plain);
    }
}
