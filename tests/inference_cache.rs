//! The process-wide limit on the workspaces models keep between inference calls
//! (`latent::spare`, `latent_set_inference_cache_limit`): what is held is counted exactly, a
//! model freed gives its share back, a limit of 0 keeps nothing, a model makes room from its own
//! kept workspaces only (lowering the limit frees every model's surplus at once), and results
//! do not depend on the limit. One test in this binary: the
//! limit and the count are the process's.

use latent::ffi::*;
use latent::{Activation, Matrix, Network, NetworkSpec};

mod common;

fn rows(n: usize) -> Matrix {
    common::random_matrix(n, 100, 0.0, 1.0, &mut latent::rng::Rng::new(3, 0))
}

fn network(seed: u64) -> Network {
    let mut n = Network::new(NetworkSpec { seed, ..NetworkSpec::new(100, &[50], Activation::Relu, 10) }).unwrap();
    n.set_threads(1);
    n
}

#[test]
fn the_process_keeps_what_its_limit_allows_and_counts_it() {
    // The environment sets the default (read once, in a child process of this test).
    if std::env::var("LATENT_TEST_CACHE_CHILD").is_ok() {
        println!("limit={}", latent::spare::cache_limit());
        return;
    }
    for (env, want) in [("3", 3usize << 20), (" 0 ", 0), ("lots", 256 << 20), ("-1", 256 << 20)] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "the_process_keeps_what_its_limit_allows_and_counts_it", "--nocapture"])
            .env("LATENT_TEST_CACHE_CHILD", "1")
            .env("LATENT_INFERENCE_CACHE_MB", env)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("limit={want}")), "LATENT_INFERENCE_CACHE_MB={env:?}: {text}");
    }

    assert_eq!(latent::spare::cache_held(), 0);
    let (a, b) = (network(1), network(2));
    let x = rows(8);
    let want = a.encode(&x).unwrap();
    let one = latent::spare::cache_held();
    // 8 rows: the input (8 x 100), z and y of the two encoder layers (8 x (50 + 10) each).
    assert_eq!(one, 4 * (8 * 100 + 2 * 8 * (50 + 10)), "bytes held after one call");
    assert_eq!(a.encode(&x).unwrap().as_slice(), want.as_slice());
    assert_eq!(latent::spare::cache_held(), one, "the second call took and gave back the same one");
    b.encode(&x).unwrap();
    assert_eq!(latent::spare::cache_held(), 2 * one);
    drop(b);
    assert_eq!(latent::spare::cache_held(), one, "a model freed gives its share back");

    // Room for one workspace only: another model keeps none (it may not push out a's), while a
    // model makes room from its own.
    latent::spare::set_cache_limit(one);
    let c = network(3);
    c.encode(&x).unwrap();
    assert_eq!(latent::spare::cache_held(), one, "c's workspace did not fit beside a's");
    a.encode(&rows(4)).unwrap();
    let four = 4 * (4 * 100 + 2 * 4 * (50 + 10));
    assert_eq!(latent::spare::cache_held(), four, "a pushed out its own 8-row one");

    // Lowering the limit frees what the models keep beyond it before it returns (not at each
    // model's next call), and only as much as it must.
    latent::spare::set_cache_limit(usize::MAX);
    let (d, e) = (network(4), network(5));
    d.encode(&x).unwrap();
    e.encode(&x).unwrap();
    assert_eq!(latent::spare::cache_held(), four + 2 * one);
    latent::spare::set_cache_limit(four + one);
    assert_eq!(latent::spare::cache_held(), one, "down to the limit at once: a's and d's freed, e's kept");
    latent::spare::set_cache_limit(0);
    assert_eq!(latent::spare::cache_held(), 0, "a limit of 0 frees every kept workspace at once");
    assert_eq!(a.encode(&x).unwrap().as_slice(), want.as_slice(), "the same bits after the trim");
    drop((d, e));
    assert_eq!(latent::spare::cache_held(), 0, "models trimmed then freed give back nothing twice");

    // Calls on four threads while a fifth lowers and raises the limit: no deadlock (a trim takes
    // the models' locks that their calls hold), and the count ends exact.
    latent::spare::set_cache_limit(usize::MAX);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let n = network(10 + t);
                    let (x8, x4) = (rows(8), rows(4));
                    let (want8, want4) = (n.encode(&x8).unwrap(), n.encode(&x4).unwrap());
                    let mut calls = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) || calls < 50 {
                        let (x, want) = if calls % 3 == 0 { (&x4, &want4) } else { (&x8, &want8) };
                        assert_eq!(n.encode(x).unwrap().as_slice(), want.as_slice());
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        for i in 0..400 {
            latent::spare::set_cache_limit(if i % 2 == 0 { one } else { usize::MAX });
            std::thread::yield_now();
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for w in workers {
            assert!(w.join().unwrap() >= 50);
        }
    });
    // The four networks are freed, and a keeps nothing under the limit of 0 it was called with.
    assert_eq!(latent::spare::cache_held(), 0, "the workers' networks gave back all they kept");

    // Through the C API: the limit and the count, and 0 keeps nothing.
    let (mut limit, mut held) = (0usize, 0usize);
    a.encode(&x).unwrap();
    assert_eq!(latent::spare::cache_held(), one);
    assert_eq!(latent_set_inference_cache_limit(0), LATENT_STATUS_OK);
    assert_eq!(latent::spare::cache_held(), 0, "freed by the C call itself");
    a.encode(&x).unwrap();
    c.encode(&x).unwrap();
    // SAFETY: both pointers are to live locals.
    assert_eq!(unsafe { latent_get_inference_cache(&mut limit, &mut held) }, LATENT_STATUS_OK);
    assert_eq!((limit, held), (0, 0), "a limit of 0 keeps nothing");
    assert_eq!(a.encode(&x).unwrap().as_slice(), want.as_slice(), "the same bits with nothing kept");
    // SAFETY: NULL is refused before anything is written.
    assert_eq!(unsafe { latent_get_inference_cache(std::ptr::null_mut(), &mut held) }, LATENT_STATUS_NULL_ARGUMENT);
    // SAFETY: as above.
    assert_eq!(unsafe { latent_get_inference_cache(&mut limit, std::ptr::null_mut()) }, LATENT_STATUS_NULL_ARGUMENT);
    assert_eq!(latent_set_inference_cache_limit(usize::MAX), LATENT_STATUS_OK);
    // SAFETY: both pointers are to live locals.
    assert_eq!(unsafe { latent_get_inference_cache(&mut limit, &mut held) }, LATENT_STATUS_OK);
    assert_eq!(limit, usize::MAX - 1, "the largest limit (usize::MAX marks none set)");
    a.encode(&x).unwrap();
    assert_eq!(latent::spare::cache_held(), one);
}
