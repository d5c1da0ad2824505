//! Training noise does not depend on the thread count: with data-parallel shards (a minibatch of
//! 512 rows on two threads is cut into two shards of 256), every draw (corruption, code noise,
//! stochastic units, a VAE's reparameterisation) is keyed by (seed, step, row of the global
//! minibatch), so one and two threads draw the same numbers and agree to rounding, and a thread
//! count repeats bit for bit.

use latent::layer::Stochastic;
use latent::rng::Rng;
use latent::{Activation, Corruption, LayerSpec, Matrix, Network, NetworkSpec, TrainConfig, Trainer, Vae, VaeSpec};

const ROWS: usize = 2048;
const COLS: usize = 64;

fn data() -> Matrix {
    let mut rng = Rng::new(11, 40);
    // Sparse-ish binary-like rows in [0, 1], as images are.
    let v = (0..ROWS * COLS)
        .map(|_| {
            let u = rng.uniform();
            if u < 0.5 { 0.0 } else { u }
        })
        .collect();
    Matrix::from_vec(ROWS, COLS, v).unwrap()
}

fn config(threads: usize) -> TrainConfig {
    TrainConfig { epochs: 2, batch_size: 512, learning_rate: 0.01, seed: 7, threads, ..TrainConfig::default() }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max)
}

/// (parameters, codes) of a network trained 2 epochs at batch 512 on `threads` threads.
fn train_network(spec: &NetworkSpec, x: &Matrix, threads: usize) -> (Vec<f32>, Vec<f32>) {
    let mut net = Network::new(spec.clone()).unwrap();
    Trainer::new(config(threads)).unwrap().fit(&mut net, x, None, None).unwrap();
    let codes = net.encode(x).unwrap();
    (net.params().to_vec(), codes.as_slice().to_vec())
}

fn train_vae(spec: &VaeSpec, x: &Matrix, threads: usize) -> (Vec<f32>, Vec<f32>) {
    let mut vae = Vae::new(spec.clone()).unwrap();
    Trainer::new(config(threads)).unwrap().fit(&mut vae, x, None, None).unwrap();
    let (mean, _) = vae.encode(x).unwrap();
    (vae.params().to_vec(), mean.as_slice().to_vec())
}

fn check(name: &str, run: impl Fn(usize) -> (Vec<f32>, Vec<f32>), ok: &mut Vec<String>) {
    let (p1, c1) = run(1);
    let (p2, c2) = run(2);
    let (p2b, c2b) = run(2);
    let (dp, dc) = (max_diff(&p1, &p2), max_diff(&c1, &c2));
    println!("{name:28} 1 vs 2 threads: parameters differ by {dp:.3e}, codes by {dc:.3e}");
    assert!(p2 == p2b && c2 == c2b, "{name}: two runs on 2 threads differ");
    let (p1b, _) = run(1);
    assert!(p1 == p1b, "{name}: two runs on 1 thread differ");
    if dp > 1e-4 || dc > 1e-4 {
        ok.push(format!("{name}: parameters {dp:.3e}, codes {dc:.3e}"));
    }
}

fn net_spec(f: impl FnOnce(&mut NetworkSpec)) -> NetworkSpec {
    let mut spec = NetworkSpec { seed: 3, ..NetworkSpec::new(COLS, &[48], Activation::Sigmoid, 16) };
    f(&mut spec);
    spec
}

#[test]
fn one_and_two_threads_draw_the_same_noise() {
    let x = data();
    let mut bad = Vec::new();
    let cases: Vec<(&str, NetworkSpec)> = vec![
        ("masking corruption", net_spec(|s| s.regularization.corruption = Corruption::Masking { level: 0.3 })),
        ("gaussian corruption", net_spec(|s| s.regularization.corruption = Corruption::Gaussian { sigma: 0.2 })),
        (
            "salt-and-pepper corruption",
            net_spec(|s| s.regularization.corruption = Corruption::SaltPepper { fraction: 0.2 }),
        ),
        ("code noise", net_spec(|s| s.regularization.code_noise = 0.3)),
        (
            "bernoulli stochastic units",
            net_spec(|s| s.code = LayerSpec::new(16, Activation::Sigmoid).with(Stochastic::Bernoulli)),
        ),
        (
            "gaussian stochastic units",
            net_spec(|s| {
                s.encoder[0] = LayerSpec::new(48, Activation::Sigmoid).with(Stochastic::Gaussian { sigma: 0.2 })
            }),
        ),
    ];
    for (name, spec) in &cases {
        check(name, |t| train_network(spec, &x, t), &mut bad);
    }
    for samples in [1, 2] {
        let spec = VaeSpec { num_samples: samples, seed: 3, ..VaeSpec::new(COLS, &[48], 8, &[48], Activation::Relu) };
        check(&format!("vae sampling, {samples} draws"), |t| train_vae(&spec, &x, t), &mut bad);
    }
    assert!(bad.is_empty(), "1 and 2 threads disagree beyond 1e-4:\n{}", bad.join("\n"));
}
