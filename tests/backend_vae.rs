//! The VAE (src/backend/vae.rs), written once over the backend primitives, on the Cpu backend
//! (the CUDA kernels' oracle):
//! - one training step cut into data-parallel shards (`DeviceVae::forward_backward` on a
//!   2-thread Cpu) gives the losses and gradient of the whole step (`Vae::step`, one pass) on the
//!   same draws (the fixed draws of a step without noise); every reconstruction distribution
//!   (Bernoulli, Gaussian with a learned per-feature log-variance, global-variance Gaussian,
//!   exponential, MSE, a composite of all with two global parts), L = 1 and L = 3, the constant
//!   posterior, beta != 1 under KL warm-up, a GELU / tanh pzx activation, no hidden layers;
//! - encoding and the validation score (with a near-deterministic posterior, where the draws do
//!   not matter) equal the CPU's;
//! - device training lowers the negative ELBO, is seeded (two fits bit-identical) and keeps the
//!   KL warm-up's step count.
//!
//! Tolerance: relative 1e-4 per element, where an element's error is |dev - cpu| /
//! max(|cpu|, 1e-3 max|cpu|) (the floor keeps f32 cancellation in entries near zero, e.g. a
//! product summed in another order, from counting as relative error).

use latent::backend::{Cpu, DeviceVae};
use latent::distribution::{DistKind, Part, Reconstruction};
use latent::rng::Rng;
use latent::vae::{Posterior, Vae, VaeSpec};
use latent::{Activation, Matrix, OptimizerConfig, OptimizerKind, TrainConfig, Trainer};

const TOL: f64 = 1e-4;

/// A seed per run (fresh inputs every run), printed so a failure can be replayed with
/// LATENT_TEST_SEED.
fn run_seed() -> u64 {
    let seed = std::env::var("LATENT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    println!("random inputs: LATENT_TEST_SEED={seed}");
    seed
}

/// Rows each part can score: [0, 1] for Bernoulli, positive for the exponential, anything for
/// the others.
fn data(spec: &VaeSpec, rows: usize, rng: &mut Rng) -> Matrix {
    let d = spec.input_dim;
    let mut x = vec![0f32; rows * d];
    for r in 0..rows {
        let mut c = 0;
        for p in &spec.reconstruction.parts {
            for _ in 0..p.size {
                x[r * d + c] = match p.kind {
                    DistKind::Bernoulli => rng.uniform(),
                    DistKind::Exponential => 0.1 + 2.0 * rng.uniform(),
                    _ => rng.normal(),
                };
                c += 1;
            }
        }
    }
    Matrix::from_vec(rows, d, x).unwrap()
}

fn spec(
    input: usize,
    rec: Reconstruction,
    encoder: &[usize],
    decoder: &[usize],
    act: Activation,
    samples: usize,
    seed: u64,
) -> VaeSpec {
    VaeSpec { reconstruction: rec, num_samples: samples, seed, ..VaeSpec::new(input, encoder, 5, decoder, act) }
}

fn composite() -> Reconstruction {
    Reconstruction {
        parts: vec![
            Part { size: 4, kind: DistKind::Bernoulli, activation: Activation::Sigmoid },
            Part { size: 3, kind: DistKind::GaussianGlobal, activation: Activation::Identity },
            Part { size: 3, kind: DistKind::Gaussian, activation: Activation::Tanh },
            Part { size: 2, kind: DistKind::Exponential, activation: Activation::Identity },
            Part { size: 2, kind: DistKind::GaussianGlobal, activation: Activation::Tanh },
            Part { size: 3, kind: DistKind::Mse, activation: Activation::Sigmoid },
        ],
    }
}

/// Worst relative error (module doc) of `dev` against `cpu`, with its index.
fn worst(dev: &[f32], cpu: &[f32]) -> (f64, usize) {
    assert_eq!(dev.len(), cpu.len());
    let scale = cpu.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let floor = (1e-3 * scale).max(1e-30);
    let mut w = (0f64, 0);
    for (i, (a, b)) in dev.iter().zip(cpu).enumerate() {
        let e = if a.is_finite() { (*a as f64 - *b as f64).abs() / (b.abs() as f64).max(floor) } else { f64::INFINITY };
        if e > w.0 {
            w = (e, i);
        }
    }
    w
}

/// The device step against `Vae::step` on the device's draws: losses and every gradient entry.
fn check_step(name: &str, vae: Vae, rows: usize, seed: u64) -> f64 {
    let mut rng = Rng::new(seed, 31);
    let x = data(vae.spec(), rows, &mut rng);
    let mut dev = DeviceVae::new(Cpu::new(2).unwrap(), vae.clone()).unwrap();
    let (dev_rec, dev_kl) = dev.forward_backward(&x).unwrap();
    let eps = dev.last_draws().unwrap();
    assert_eq!(eps.len(), rows * vae.spec().num_samples * vae.latent_dim(), "{name}: draws");
    let dev_g = dev.gradients().unwrap();
    let mut cpu_g = vec![f32::NAN; vae.param_count()];
    let draws = latent::rng::StepDraws::whole(latent::backend::vae::FIXED_SEED, 0, rows);
    let s = vae.step(x.as_slice(), rows, &mut cpu_g, 1, draws, vae.kl_weight());
    let (cpu_rec, cpu_kl) = (s.recon_sum / rows as f64, s.kl_sum / rows as f64);
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-6);
    assert!(rel(dev_rec, cpu_rec) <= TOL, "{name}: reconstruction device {dev_rec} cpu {cpu_rec}");
    assert!(rel(dev_kl, cpu_kl) <= TOL, "{name}: KL device {dev_kl} cpu {cpu_kl}");
    let (w, i) = worst(&dev_g, &cpu_g);
    println!(
        "{name:44} rec {dev_rec:>10.5} kl {dev_kl:>8.5}  loss err {:.1e}/{:.1e}  worst gradient error {w:.1e} (entry {i})",
        rel(dev_rec, cpu_rec),
        rel(dev_kl, cpu_kl)
    );
    assert!(w <= TOL, "{name}: gradient {i}: device {} cpu {} (relative {w:.2e})", dev_g[i], cpu_g[i]);
    w
}

#[test]
fn every_distribution_matches_the_cpu_step_on_the_same_draws() {
    let seed = run_seed();
    let mut all = 0f64;
    for samples in [1, 3] {
        let cases: Vec<(&str, Reconstruction, usize)> = vec![
            ("bernoulli", Reconstruction::bernoulli(12), 12),
            ("gaussian (learned log-variance)", Reconstruction::single(DistKind::Gaussian, Activation::Identity, 9), 9),
            ("gaussian (tanh)", Reconstruction::single(DistKind::Gaussian, Activation::Tanh, 9), 9),
            (
                "gaussian (global log-variance)",
                Reconstruction::single(DistKind::GaussianGlobal, Activation::Identity, 10),
                10,
            ),
            ("exponential", Reconstruction::single(DistKind::Exponential, Activation::Identity, 8), 8),
            ("mse", Reconstruction::single(DistKind::Mse, Activation::Sigmoid, 7), 7),
            ("composite", composite(), 17),
        ];
        for (k, (name, rec, d)) in cases.into_iter().enumerate() {
            let s = spec(d, rec, &[11], &[10], Activation::Tanh, samples, seed ^ k as u64);
            let mut vae = Vae::new(s).unwrap();
            // Global log-variances away from 0, so their gradient is not a special case.
            let extra = vae.extra_offset();
            let mut p = vae.params().to_vec();
            p[extra..].iter_mut().enumerate().for_each(|(e, v)| *v = -0.4 + 0.3 * e as f32);
            vae.set_params(&p).unwrap();
            let w = check_step(&format!("{name}, L = {samples}"), vae, 13, seed + k as u64);
            all = all.max(w);
        }
    }
    println!("worst gradient error over the distributions: {all:.1e}");
}

#[test]
fn posterior_options_and_kl_weight_match_the_cpu_step() {
    let seed = run_seed();
    let base =
        |samples| spec(14, Reconstruction::bernoulli(14), &[12, 9], &[8, 11], Activation::Sigmoid, samples, seed);
    let constant = VaeSpec { posterior: Posterior::Constant { log_variance: -1.3 }, ..base(2) };
    check_step("constant posterior, L = 2", Vae::new(constant).unwrap(), 9, seed);
    let constant3 = VaeSpec { posterior: Posterior::Constant { log_variance: 0.4 }, ..base(3) };
    check_step("constant posterior, L = 3", Vae::new(constant3).unwrap(), 7, seed + 1);
    // beta != 1 under warm-up: after 4 steps the KL weight is 0.3 * 5 / 10.
    let warm = VaeSpec { beta: 0.3, kl_warmup_steps: 10, ..base(3) };
    let mut vae = Vae::new(warm).unwrap();
    vae.set_steps(4);
    assert!((vae.kl_weight() - 0.15).abs() < 1e-6);
    check_step("beta 0.3, warm-up step 5 of 10, L = 3", vae, 11, seed + 2);
    let beta = VaeSpec { beta: 4.0, ..base(1) };
    check_step("beta 4", Vae::new(beta).unwrap(), 11, seed + 3);
    for (act, hidden) in [(Activation::Gelu, Activation::Elu), (Activation::Tanh, Activation::Relu)] {
        let s = VaeSpec {
            pzx_activation: act,
            ..spec(
                10,
                Reconstruction::single(DistKind::Gaussian, Activation::Identity, 10),
                &[9],
                &[7],
                hidden,
                2,
                seed,
            )
        };
        check_step(&format!("pzx {}, hidden {}, L = 2", act.name(), hidden.name()), Vae::new(s).unwrap(), 8, seed + 4);
    }
    let bare = spec(7, Reconstruction::bernoulli(7), &[], &[], Activation::Tanh, 3, seed);
    check_step("no hidden layers, L = 3", Vae::new(bare).unwrap(), 6, seed + 5);
}

#[test]
fn encoding_and_validation_score_match_the_cpu() {
    let seed = run_seed();
    let mut rng = Rng::new(seed, 8);
    let s = spec(20, composite_for(20), &[16], &[12], Activation::Relu, 2, seed);
    let vae = Vae::new(s.clone()).unwrap();
    let x = data(&s, 2100, &mut rng); // more than two 1024-row blocks
    let mut dev = DeviceVae::new(Cpu::default(), vae.clone()).unwrap();
    let (cm, cl) = vae.encode(&x).unwrap();
    let (dm, dl) = dev.encode(&x).unwrap();
    let (wm, _) = worst(dm.as_slice(), cm.as_slice());
    let (wl, _) = worst(dl.as_slice(), cl.as_slice());
    println!("encode: worst error of the means {wm:.1e}, of the log-variances {wl:.1e}");
    assert!(wm <= TOL && wl <= TOL, "encode: {wm} {wl}");
    // With a posterior of variance e^-30 the draw moves z by ~3e-7: the device's one-draw
    // negative ELBO is the CPU's whatever the draws.
    let sharp = VaeSpec { posterior: Posterior::Constant { log_variance: -30.0 }, ..s };
    let vae = Vae::new(sharp).unwrap();
    let mut dev = DeviceVae::new(Cpu::default(), vae.clone()).unwrap();
    let cpu = vae.elbo(&x, 1, 0x5EED).unwrap().neg_elbo;
    let d = dev.loss(&x).unwrap();
    let e = (cpu - d).abs() / cpu.abs();
    println!("validation score (sharp posterior): cpu {cpu:.6} device {d:.6} relative {e:.1e}");
    assert!(e <= TOL, "validation score cpu {cpu} device {d}");
    let (cm, cl) = vae.encode(&x).unwrap();
    let (dm, dl) = dev.encode(&x).unwrap();
    assert!(worst(dm.as_slice(), cm.as_slice()).0 <= TOL);
    assert_eq!(dl.as_slice(), cl.as_slice(), "constant log-variances");
    assert!(matches!(dev.encode(&Matrix::zeros(3, 19).unwrap()), Err(latent::Error::ShapeMismatch(_))));
}

fn composite_for(d: usize) -> Reconstruction {
    let mut r = composite();
    let used: usize = r.parts.iter().map(|p| p.size).sum();
    r.parts.push(Part { size: d - used, kind: DistKind::Bernoulli, activation: Activation::Sigmoid });
    r
}

/// Binary rows from four prototypes with 10% of the bits flipped.
fn binary_data(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 3);
    let protos: Vec<Vec<f32>> =
        (0..4).map(|_| (0..cols).map(|_| (rng.uniform() < 0.5) as u8 as f32).collect()).collect();
    let mut v = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let p = &protos[(rng.uniform() * 4.0) as usize % 4];
        v.extend(p.iter().map(|&b| if rng.uniform() < 0.1 { 1.0 - b } else { b }));
    }
    Matrix::from_vec(rows, cols, v).unwrap()
}

#[test]
fn device_training_lowers_the_negative_elbo_and_is_seeded() {
    let seed = run_seed();
    let x = binary_data(400, 24, seed);
    let s = VaeSpec {
        num_samples: 2,
        beta: 1.0,
        kl_warmup_steps: 20,
        seed,
        ..VaeSpec::new(24, &[16], 4, &[16], Activation::Tanh)
    };
    let cfg = TrainConfig {
        epochs: 6,
        batch_size: 32,
        learning_rate: 1e-2,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..OptimizerConfig::default() },
        validation_fraction: 0.2,
        threads: 1,
        seed,
        ..TrainConfig::default()
    };
    let run = || {
        let mut dev = DeviceVae::new(Cpu::default(), Vae::new(s.clone()).unwrap()).unwrap();
        let mut t = Trainer::new(cfg).unwrap();
        t.fit_device(&mut dev, &x, None, None).unwrap();
        (dev.into_vae().unwrap(), t.history().to_vec())
    };
    let (a, ha) = run();
    let (b, hb) = run();
    assert_eq!(a.params(), b.params(), "two seeded device fits differ");
    let losses =
        |h: &[latent::EpochRecord]| h.iter().map(|r| (r.train_loss, r.train_penalty, r.valid_loss)).collect::<Vec<_>>();
    assert_eq!(losses(&ha), losses(&hb), "two seeded device fits report differently");
    // 320 training rows in minibatches of 32: 10 steps an epoch.
    assert_eq!(a.steps(), 60, "the KL warm-up's clock counts the device's steps");
    for (e, r) in ha.iter().enumerate() {
        println!(
            "epoch {e}: reconstruction {:.4} KL {:.4} validation -ELBO {:.4}",
            r.train_loss, r.train_penalty, r.valid_loss
        );
    }
    let (first, last) = (ha[0].valid_loss, ha[ha.len() - 1].valid_loss);
    assert!(last < 0.8 * first, "validation negative ELBO {first} -> {last}");
    // The CPU's score of the device-trained VAE agrees it learned: below the untrained VAE's.
    let untrained = Vae::new(s.clone()).unwrap().elbo(&x, 4, 1).unwrap().neg_elbo;
    let trained = a.elbo(&x, 4, 1).unwrap().neg_elbo;
    println!("CPU negative ELBO: untrained {untrained:.4}, device-trained {trained:.4}");
    assert!(trained < 0.8 * untrained);
}

/// The CPU VAE draws its reparameterisation noise as the device does (Philox keyed by the fit's
/// seed, the step and each draw's place in the minibatch), so a CPU fit and a device fit on the
/// Cpu backend end at the same parameters.
#[test]
fn device_training_follows_cpu_training_draw_for_draw() {
    let seed = run_seed();
    let x = binary_data(200, 24, seed);
    for samples in [1, 3] {
        let s = VaeSpec { num_samples: samples, seed, ..VaeSpec::new(24, &[16], 4, &[16], Activation::Tanh) };
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 32,
            learning_rate: 1e-2,
            optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..OptimizerConfig::default() },
            threads: 1,
            seed,
            ..TrainConfig::default()
        };
        let mut cpu = Vae::new(s.clone()).unwrap();
        let mut dev = DeviceVae::new(Cpu::default(), cpu.clone()).unwrap();
        Trainer::new(cfg).unwrap().fit(&mut cpu, &x, None, None).unwrap();
        Trainer::new(cfg).unwrap().fit_device(&mut dev, &x, None, None).unwrap();
        let d = dev.into_vae().unwrap();
        let (w, i) = worst(d.params(), cpu.params());
        println!("L = {samples}: worst parameter difference {w:.2e} (parameter {i})");
        assert!(w < 1e-3, "L = {samples}: device training drifted from the CPU's by {w} at parameter {i}");
    }
}

/// On a 2-thread Cpu the device VAE's step runs in shards (one per thread, each drawing its
/// rows' draws of the whole minibatch), as the CPU engine's trainer shards the CPU VAE: the two
/// sharded fits end at the same parameters, the sharded device fit follows the unsharded one,
/// and it repeats bit for bit.
#[test]
fn sharded_device_vae_steps_draw_the_whole_minibatchs_noise() {
    let seed = run_seed();
    let x = binary_data(1024, 24, seed);
    for samples in [1, 3] {
        let s = VaeSpec { num_samples: samples, seed, ..VaeSpec::new(24, &[16], 4, &[16], Activation::Tanh) };
        // 256-row minibatches: 2 shards of 128 rows.
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 256,
            learning_rate: 1e-2,
            optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..OptimizerConfig::default() },
            threads: 2,
            seed,
            ..TrainConfig::default()
        };
        let mut cpu = Vae::new(s.clone()).unwrap();
        Trainer::new(cfg).unwrap().fit(&mut cpu, &x, None, None).unwrap();
        let fit = |threads: usize| {
            let mut dev = DeviceVae::new(Cpu::new(threads).unwrap(), Vae::new(s.clone()).unwrap()).unwrap();
            Trainer::new(TrainConfig { threads, ..cfg }).unwrap().fit_device(&mut dev, &x, None, None).unwrap();
            dev.into_vae().unwrap()
        };
        let (sharded, again, whole) = (fit(2), fit(2), fit(1));
        let ((w_cpu, _), (w_whole, _)) =
            (worst(sharded.params(), cpu.params()), worst(sharded.params(), whole.params()));
        println!("L = {samples}: sharded device vs sharded CPU {w_cpu:.2e}, vs unsharded device {w_whole:.2e}");
        assert_eq!(sharded.params(), again.params(), "L = {samples}: a sharded fit did not repeat");
        assert!(w_cpu < 2e-4, "L = {samples}: the sharded device fit drifted from the CPU's by {w_cpu}");
        assert!(w_whole < 2e-4, "L = {samples}: the shards drew other numbers than the whole minibatch ({w_whole})");
        assert!(worst(sharded.params(), Vae::new(s).unwrap().params()).0 > 1e-2, "L = {samples}: nothing trained");
    }
}

/// On a machine with a GPU: the CUDA backend's device VAE against the Cpu backend's (the same
/// Philox draws, so the same step within rounding: GPU expf/logf and cuBLAS's summation order),
/// and a short CUDA fit lowers the negative ELBO. Elsewhere it says so and passes.
#[cfg(feature = "cuda")]
#[test]
fn cuda_device_vae_matches_the_host_backend() {
    let cuda = match latent::backend::cuda::Cuda::new(0) {
        Ok(c) => c,
        Err(e) => {
            assert!(matches!(e, latent::Error::Unsupported(_)), "{e}");
            println!("no GPU here, not run: {e}");
            return;
        }
    };
    let seed = run_seed();
    let mut rng = Rng::new(seed, 12);
    let s = VaeSpec { beta: 0.7, ..spec(20, composite_for(20), &[16], &[12], Activation::Tanh, 3, seed) };
    let vae = Vae::new(s.clone()).unwrap();
    let x = data(&s, 200, &mut rng);
    let mut host = DeviceVae::new(Cpu::default(), vae.clone()).unwrap();
    let mut gpu = DeviceVae::new(cuda, vae.clone()).unwrap();
    let (hr, hk) = host.forward_backward(&x).unwrap();
    let (gr, gk) = gpu.forward_backward(&x).unwrap();
    let (we, _) = worst(&gpu.last_draws().unwrap(), &host.last_draws().unwrap());
    let (wg, i) = worst(&gpu.gradients().unwrap(), &host.gradients().unwrap());
    println!(
        "cuda vs host: rec {gr} / {hr}, kl {gk} / {hk}, worst draw error {we:.1e}, worst gradient error {wg:.1e} (entry {i})"
    );
    assert!(we <= TOL && wg <= 1e-3, "draws {we}, gradient {wg}");
    assert!((gr - hr).abs() <= TOL * hr.abs() && (gk - hk).abs() <= TOL * hk.abs());
    let (hm, _) = host.encode(&x).unwrap();
    let (gm, _) = gpu.encode(&x).unwrap();
    assert!(worst(gm.as_slice(), hm.as_slice()).0 <= 1e-3);
    let (hl, gl) = (host.loss(&x).unwrap(), gpu.loss(&x).unwrap());
    assert!((hl - gl).abs() <= 1e-3 * hl.abs(), "validation host {hl} cuda {gl}");
    let x = binary_data(2000, 24, seed);
    let s = VaeSpec { num_samples: 2, seed, ..VaeSpec::new(24, &[32], 4, &[32], Activation::Tanh) };
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 64,
        learning_rate: 1e-2,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..OptimizerConfig::default() },
        validation_fraction: 0.2,
        seed,
        ..TrainConfig::default()
    };
    let cuda = latent::backend::cuda::Cuda::new(0).unwrap();
    let mut dev = DeviceVae::new(cuda, Vae::new(s).unwrap()).unwrap();
    let mut t = Trainer::new(cfg).unwrap();
    t.fit_device(&mut dev, &x, None, None).unwrap();
    let h = t.history();
    println!("cuda fit: validation -ELBO {:.4} -> {:.4}", h[0].valid_loss, h[h.len() - 1].valid_loss);
    assert!(h[h.len() - 1].valid_loss < 0.8 * h[0].valid_loss);
    assert_eq!(dev.steps(), 5 * 25);
}

#[test]
fn a_diverging_device_fit_restores_parameters_and_clock() {
    let seed = run_seed();
    let x = binary_data(128, 12, seed);
    let s = VaeSpec {
        reconstruction: Reconstruction::single(DistKind::Gaussian, Activation::Identity, 12),
        kl_warmup_steps: 1000,
        seed,
        ..VaeSpec::new(12, &[8], 3, &[8], Activation::Identity)
    };
    let vae = Vae::new(s).unwrap();
    let start = vae.params().to_vec();
    let cfg = TrainConfig { epochs: 3, batch_size: 16, learning_rate: 1e6, threads: 1, seed, ..TrainConfig::default() };
    let mut dev = DeviceVae::new(Cpu::default(), vae).unwrap();
    let r = Trainer::new(cfg).unwrap().fit_device(&mut dev, &x, None, None);
    assert!(matches!(r, Err(latent::Error::Diverged(_))), "{r:?}");
    assert_eq!(dev.steps(), 0, "the clock goes back to the epoch's start");
    assert_eq!(dev.vae().unwrap().params(), &start[..], "the parameters go back to the epoch's start");
}
