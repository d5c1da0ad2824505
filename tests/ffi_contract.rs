//! The C ABI's promises: documented statuses for bad input (tests/c/contract.c and, for the
//! variational autoencoder, tests/c/vae_contract.c, and for the Monte-Carlo optimizer,
//! tests/c/montecarlo_contract.c, compiled as C),
//! no panic crossing the boundary, and concurrent inference on one network.

mod common;

use std::process::Command;

use common::*;

#[test]
fn bad_input_gives_the_documented_status() {
    let dir = scratch("contract");
    let exe = dir.join("contract");
    compile_c(&[root().join("tests/c/contract.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(&dir));
    assert_eq!(code, 0, "contract violations:\n{out}\n{err}");
    assert!(out.contains("0 failures"), "{out}");
}

#[test]
fn vae_calls_give_the_documented_status_train_and_reload() {
    let dir = scratch("vae_contract");
    let exe = dir.join("vae_contract");
    compile_c(&[root().join("tests/c/vae_contract.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(&dir));
    assert_eq!(code, 0, "VAE contract violations:\n{out}\n{err}");
    assert!(out.contains("0 failures"), "{out}");
}

#[test]
fn supervised_calls_give_the_documented_status_train_and_reload() {
    let dir = scratch("supervised_contract");
    let exe = dir.join("supervised_contract");
    compile_c(&[root().join("tests/c/supervised_contract.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(&dir));
    println!("{out}");
    assert_eq!(code, 0, "supervised contract violations:\n{out}\n{err}");
    assert!(out.contains("0 failures"), "{out}");
}

/// Calls on the model being trained from its own fit's progress callback (issue 15: these
/// deadlocked): reads and save work and see that moment's parameters, changes are BUSY.
#[test]
fn calls_from_the_fits_own_callback_work_or_are_busy_never_hang() {
    let dir = scratch("reentry");
    let exe = dir.join("reentry");
    compile_c(&[root().join("tests/c/reentry.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(&dir));
    assert_eq!(code, 0, "re-entry violations (exit {code}; 142 = SIGALRM, a deadlock):\n{out}\n{err}");
    assert!(out.contains("0 failures"), "{out}");
}

/// A call on a network from another thread while it trains returns BUSY at once (it neither
/// waits for the fit nor races it); after the fit it works again.
#[test]
fn calls_from_another_thread_during_a_fit_are_busy() {
    use latent::ffi::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (d, rows) = (16usize, 2048usize);
    let x: Vec<f32> = (0..rows * d).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let mut p = latent_network_params_default();
    p.input_dim = d as u32;
    p.code_units = 4;
    let mut net = std::ptr::null_mut();
    let mut data = std::ptr::null_mut();
    let mut tr = std::ptr::null_mut();
    let mut tp = latent_train_params_default();
    tp.epochs = 200;
    tp.batch_size = 16;
    tp.threads = 1;
    unsafe {
        assert_eq!(latent_network_new(&p, &mut net), 0);
        assert_eq!(
            latent_dataset_from_buffer(
                x.as_ptr().cast(),
                LATENT_DTYPE_F32,
                LATENT_LAYOUT_ROW_MAJOR,
                rows,
                d,
                &mut data
            ),
            0
        );
        assert_eq!(latent_trainer_new(&tp, &mut tr), 0);
    }
    struct Ptrs(*mut latent_network, *mut latent_dataset, *mut latent_trainer);
    unsafe impl Send for Ptrs {}
    unsafe impl Sync for Ptrs {}
    let h = Ptrs(net, data, tr);
    let started = AtomicBool::new(false);
    extern "C" fn stop_soon(user: *mut std::ffi::c_void, p: *const latent_progress) -> i32 {
        let started = unsafe { &*(user as *const AtomicBool) };
        started.store(true, Ordering::SeqCst);
        // Cancel after a few epochs: the other thread has seen BUSY by then.
        (unsafe { (*p).epoch } >= 20) as i32
    }
    std::thread::scope(|s| {
        let h = &h;
        let started = &started;
        let fit = s.spawn(move || unsafe {
            latent_trainer_fit(h.2, h.0, h.1, std::ptr::null(), Some(stop_soon), started as *const AtomicBool as *mut _)
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let mut codes = vec![0f32; 4 * 4];
        let t = std::time::Instant::now();
        let st = unsafe { latent_network_encode(h.0, x.as_ptr(), 4, d, codes.as_mut_ptr(), codes.len()) };
        assert!(t.elapsed().as_secs_f64() < 1.0, "encode waited for the fit");
        assert_eq!(st, LATENT_STATUS_BUSY);
        assert_eq!(unsafe { latent_network_set_threads(h.0, 1) }, LATENT_STATUS_BUSY);
        assert_eq!(fit.join().unwrap(), LATENT_STATUS_CANCELLED);
        assert_eq!(unsafe { latent_network_encode(h.0, x.as_ptr(), 4, d, codes.as_mut_ptr(), codes.len()) }, 0);
    });
    unsafe {
        latent_trainer_free(tr);
        latent_dataset_free(data);
        latent_network_free(net);
    }
}

#[test]
fn montecarlo_calls_give_the_documented_status_and_optimize() {
    let dir = scratch("montecarlo_contract");
    let exe = dir.join("montecarlo_contract");
    compile_c(&[root().join("tests/c/montecarlo_contract.c")], &exe, &[]);
    let (code, out, err) = run(&mut Command::new(&exe));
    assert_eq!(code, 0, "Monte-Carlo contract violations:\n{out}\n{err}");
    assert!(out.contains("0 failures"), "{out}");
}

#[test]
fn montecarlo_fits_a_network_with_a_link_from_c() {
    let dir = scratch("montecarlo_network");
    let exe = dir.join("montecarlo_network");
    compile_c(&[root().join("tests/c/montecarlo_network.c")], &exe, &[]);
    let (code, out, err) = run(&mut Command::new(&exe));
    println!("{out}");
    assert_eq!(code, 0, "Monte-Carlo network contract violations:\n{out}\n{err}");
    assert!(out.contains("0 failures"), "{out}");
}

#[test]
fn a_panic_inside_a_call_comes_back_as_a_status() {
    let dir = scratch("panic");
    let exe = dir.join("panic");
    compile_c(&[root().join("tests/c/panic.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).env("RUST_BACKTRACE", "0"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("still alive"), "{out}");
    // The library never prints: a caught panic (on the caller's thread or a pool thread)
    // leaves nothing on stderr.
    assert_eq!(err, "", "the library printed to stderr");
}

#[test]
fn four_threads_encoding_at_once_get_the_serial_result() {
    use latent::ffi::*;
    let enc = [64u32, 32];
    let mut p = latent_network_params_default();
    p.input_dim = 100;
    p.n_encoder = 2;
    p.encoder_units = enc.as_ptr();
    p.code_units = 8;
    p.seed = 11;
    let mut net = std::ptr::null_mut();
    assert_eq!(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_OK);
    let rows = 3000;
    let mut rng = latent::rng::Rng::new(5, 0);
    let x: Vec<f32> = (0..rows * 100).map(|_| rng.uniform()).collect();
    let mut serial = vec![0f32; rows * 8];
    // The serial result: one call at a time, with the same inference thread setting.
    assert_eq!(unsafe { latent_network_set_threads(net, 2) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_encode(net, x.as_ptr(), rows, 100, serial.as_mut_ptr(), serial.len()) }, 0);
    let shared = net as usize;
    let results: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let x = &x;
                s.spawn(move || {
                    let net = shared as *const latent_network;
                    let mut out = vec![0f32; rows * 8];
                    for _ in 0..5 {
                        let st =
                            unsafe { latent_network_encode(net, x.as_ptr(), rows, 100, out.as_mut_ptr(), out.len()) };
                        assert_eq!(st, LATENT_STATUS_OK);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        assert!(r == serial, "a thread's codes differ from the serial result");
    }
    unsafe { latent_network_free(net) };
}
