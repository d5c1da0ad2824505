//! Small inference calls on a network, VAE or PSD model of several threads run on the calling thread with
//! the pool's workers taking parts of the products big enough to split
//! (`parallel::helped_by`): the results are the bits of one thread for one row, and the same on
//! every call of a thread count, whether the workers were asked (calls in a stream) or not
//! (after a pause), and from inside a fit's progress callback (a worker of the same pool).

mod common;

use latent::rng::Rng;
use latent::{Activation, Matrix, Network, NetworkSpec, TrainConfig, Trainer, Vae, VaeSpec};

fn rows(n: usize, seed: u64) -> Matrix {
    common::random_matrix(n, 784, 0.0, 1.0, &mut Rng::new(seed, 0))
}

/// The W2 shape: one row through 784 x 256 is 401k FLOPs, so the product splits on 2 threads.
fn network(threads: usize) -> Network {
    let mut n = Network::new(NetworkSpec { seed: 3, ..NetworkSpec::new(784, &[256], Activation::Relu, 64) }).unwrap();
    n.set_threads(threads);
    n
}

#[test]
fn one_row_gives_one_threads_bits_on_two() {
    let (one, two) = (network(1), network(2));
    let x = rows(1, 1);
    let (code, recon) = (one.encode(&x).unwrap(), one.reconstruct(&x).unwrap());
    // Back to back: after the first call the workers are asked (the stream case).
    for _ in 0..200 {
        assert_eq!(two.encode(&x).unwrap().as_slice(), code.as_slice());
        assert_eq!(two.reconstruct(&x).unwrap().as_slice(), recon.as_slice());
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(two.encode(&x).unwrap().as_slice(), code.as_slice(), "after a pause (workers not asked)");

    let spec = VaeSpec { seed: 4, ..VaeSpec::new(784, &[512], 32, &[512], Activation::Relu) };
    let mut v1 = Vae::new(spec.clone()).unwrap();
    v1.set_threads(1);
    let mut v2 = Vae::new(spec).unwrap();
    v2.set_threads(2);
    let (mean, logvar) = v1.encode(&x).unwrap();
    for _ in 0..50 {
        let (m2, l2) = v2.encode(&x).unwrap();
        assert_eq!((m2.as_slice(), l2.as_slice()), (mean.as_slice(), logvar.as_slice()));
    }

    // A PSD model's encoder (784 x 512: 803k FLOPs for one row) and decoder, the same way.
    let psd = |threads: usize| {
        let mut p =
            latent::psd::Psd::new(latent::psd::PsdSpec { seed: 6, ..latent::psd::PsdSpec::new(784, 512) }).unwrap();
        p.set_threads(threads);
        p
    };
    let (p1, p2) = (psd(1), psd(2));
    let (codes, back) = (p1.encode(&x).unwrap(), p1.decode(&p1.encode(&x).unwrap()).unwrap());
    for _ in 0..50 {
        assert_eq!(p2.encode(&x).unwrap().as_slice(), codes.as_slice());
        assert_eq!(p2.decode(&codes).unwrap().as_slice(), back.as_slice());
    }
}

#[test]
fn small_batches_repeat_exactly_on_two_threads_asked_or_not() {
    let two = network(2);
    let x = rows(8, 2);
    let first = two.encode(&x).unwrap();
    for _ in 0..100 {
        assert_eq!(two.encode(&x).unwrap().as_slice(), first.as_slice());
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(two.encode(&x).unwrap().as_slice(), first.as_slice(), "after a pause (workers not asked)");
    // Within rounding of one thread (the gemm crate picks kernels by block shape).
    let one = network(1).encode(&x).unwrap();
    for (a, b) in first.as_slice().iter().zip(one.as_slice()) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} against {b}");
    }
}

#[test]
fn a_progress_callback_encodes_one_row_on_the_fits_pool() {
    let watcher = network(2);
    let x1 = rows(1, 5);
    let want = network(1).encode(&x1).unwrap();
    let mut net = network(2);
    let data = rows(512, 6);
    let cfg = TrainConfig { epochs: 2, batch_size: 64, threads: 2, learning_rate: 0.01, ..TrainConfig::default() };
    let mut calls = 0;
    let mut cb = |_: &latent::Progress| {
        for _ in 0..20 {
            assert_eq!(watcher.encode(&x1).unwrap().as_slice(), want.as_slice());
        }
        calls += 1;
        true
    };
    Trainer::new(TrainConfig { progress_every: 2, ..cfg }).unwrap().fit(&mut net, &data, None, Some(&mut cb)).unwrap();
    assert!(calls >= 2, "the callback ran {calls} times");
}
