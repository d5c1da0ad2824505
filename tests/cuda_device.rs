//! On a GPU: the CUDA backend against the Cpu backend (which tests/backend.rs holds to the CPU
//! network) on random inputs, fresh every run: whole training steps of every layer, loss and
//! penalty, device training with every optimizer and every kind of noise (the Philox draws are
//! the same bits on both), inference, save on the GPU and load on the CPU, and the C API. Without
//! a GPU each test prints why and passes; LATENT_REQUIRE_GPU=1 (set by scripts/gpu-check.sh on
//! the GPU machine) makes that a failure.
#![cfg(feature = "cuda")]

mod common;

use common::{run_seed, with_targets};
use latent::backend::cuda::Cuda;
use latent::backend::{Backend, Cpu, DeviceNetwork};
use latent::layer::{Connection, Stochastic};
use latent::regularizer::{SparseLayers, Sparsity};
use latent::rng::Rng;
use latent::task::Task;
use latent::{
    Activation, Corruption, LayerSpec, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig,
    Trainer,
};

fn gpu() -> Option<Cuda> {
    match Cuda::new(0) {
        Ok(c) => Some(c),
        Err(e) => {
            if std::env::var("LATENT_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("a GPU is required (LATENT_REQUIRE_GPU=1): {e}");
            }
            println!("no GPU, test not run: {e}");
            None
        }
    }
}

/// Inputs in [0.02, 0.98): inside every loss's domain, never zeros.
fn random(rows: usize, cols: usize, rng: &mut Rng) -> Matrix {
    common::random_matrix(rows, cols, 0.02, 0.98, rng)
}

/// Worst |a - b| / max(|b|, floor * max|b|) over two vectors.
fn worst(a: &[f32], b: &[f32], floor: f32) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(floor * scale).max(1e-30)).fold(0f32, f32::max)
}

fn step<B: Backend>(be: B, net: &Network, x: &Matrix) -> ((f64, f64), Vec<f32>) {
    let mut d = DeviceNetwork::new(be, net.clone()).unwrap();
    let l = d.forward_backward(x).unwrap();
    (l, d.gradients().unwrap())
}

fn specs(seed: u64) -> Vec<(String, NetworkSpec)> {
    let mut v = Vec::new();
    for (k, act) in Activation::ALL.into_iter().enumerate() {
        let s = NetworkSpec {
            output_activation: Activation::Identity,
            loss: Loss::Mse,
            seed: seed ^ k as u64,
            ..NetworkSpec::new(97, &[64, 48], act, 16)
        };
        v.push((format!("mse {}", act.name()), s));
        v.push((
            format!("bce {}", act.name()),
            NetworkSpec { seed: seed + k as u64, ..NetworkSpec::new(97, &[40], act, 12) },
        ));
    }
    let base = NetworkSpec { seed, ..NetworkSpec::new(80, &[60, 40], Activation::Sigmoid, 20) };
    v.push(("tied".into(), NetworkSpec { tied_weights: true, ..base.clone() }));
    let mut kl = base.clone();
    kl.regularization.sparsity = Sparsity::Kl { rho: 0.05, beta: 0.5 };
    kl.regularization.sparse_layers = SparseLayers::Alternate { start: 0 };
    v.push(("kl alternate".into(), kl));
    let mut l1 = base.clone();
    l1.regularization.sparsity = Sparsity::L1 { lambda: 1e-3 };
    v.push(("l1".into(), l1));
    let mut c = base.clone();
    c.regularization.contractive = 0.1;
    v.push(("contractive".into(), c));
    let hidden = [LayerSpec::new(64, Activation::Relu), LayerSpec::new(32, Activation::Gelu)];
    v.push(("classifier".into(), NetworkSpec { seed, ..NetworkSpec::classifier(97, &hidden, 10).unwrap() }));
    v.push(("regressor".into(), NetworkSpec { seed, ..NetworkSpec::regressor(97, &hidden, 3).unwrap() }));
    for code in [1, 3, 5, 8, 10, 12, 16, 20] {
        let f = latent::layer::functional::Family::from_code(code).unwrap();
        v.push((
            format!("functional {}", f.name()),
            NetworkSpec {
                encoder: vec![LayerSpec::new(24, Activation::Tanh).connected(Connection::Functional(f))],
                output_connection: Connection::Functional(f),
                output_activation: Activation::Identity,
                loss: Loss::Mse,
                seed: seed ^ code as u64,
                ..NetworkSpec::new(50, &[], Activation::Sigmoid, 10)
            },
        ));
    }
    v
}

#[test]
fn gpu_training_steps_match_the_host_backend() {
    let Some(_) = gpu() else { return };
    let seed = run_seed();
    let mut rng = Rng::new(seed, 1);
    for (name, spec) in specs(seed) {
        let net = Network::new(spec).unwrap();
        let x = random(131, net.input_dim(), &mut rng);
        let x = match net.task() {
            Task::Reconstruct => x,
            t => with_targets(&x, t, &mut rng),
        };
        let ((hl, hp), hg) = step(Cpu::default(), &net, &x);
        let ((gl, gp), gg) = step(Cuda::new(0).unwrap(), &net, &x);
        let w = worst(&gg, &hg, 0.01);
        println!(
            "{name:24} loss {gl:.6} (host {hl:.6}) penalty {gp:.3e} (host {hp:.3e})  worst gradient error {w:.1e}"
        );
        assert!((gl - hl).abs() <= 1e-4 * hl.abs().max(1e-3), "{name}: loss {gl} vs {hl}");
        assert!((gp - hp).abs() <= 1e-4 * hp.abs().max(1e-6), "{name}: penalty {gp} vs {hp}");
        assert!(w <= 1e-4, "{name}: gradients differ by {w:.2e} (relative)");
    }
}

#[test]
fn gpu_tf32_steps_stay_within_a_looser_tolerance() {
    let Some(_) = gpu() else { return };
    let seed = run_seed();
    let mut rng = Rng::new(seed, 2);
    let net = Network::new(NetworkSpec { seed, ..NetworkSpec::new(784, &[256], Activation::Relu, 64) }).unwrap();
    let x = random(256, 784, &mut rng);
    let (_, hg) = step(Cpu::default(), &net, &x);
    let mut c = Cuda::new(0).unwrap();
    c.set_tf32(true).unwrap();
    let (_, gg) = step(c, &net, &x);
    let w = worst(&gg, &hg, 0.05);
    println!("TF32 worst gradient error {w:.1e} (stated tolerance 1e-2 relative, floor 5% of the largest)");
    assert!(w <= 1e-2, "TF32 gradients differ by {w}");
}

fn fit<B: Backend>(be: B, spec: &NetworkSpec, x: &Matrix, cfg: TrainConfig) -> (Vec<f32>, Vec<latent::EpochRecord>) {
    let mut d = DeviceNetwork::new(be, Network::new(spec.clone()).unwrap()).unwrap();
    let mut t = Trainer::new(cfg).unwrap();
    t.fit_device(&mut d, x, None, None).unwrap();
    (d.into_network().unwrap().params().to_vec(), t.history().to_vec())
}

#[test]
fn gpu_training_follows_the_host_backend_with_noise_and_every_optimizer() {
    let Some(_) = gpu() else { return };
    let seed = run_seed();
    let mut rng = Rng::new(seed, 3);
    let x = random(2000, 64, &mut rng);
    let mut noisy = NetworkSpec { seed, ..NetworkSpec::new(64, &[48], Activation::Sigmoid, 16) };
    noisy.regularization.corruption = Corruption::SaltPepper { fraction: 0.2 };
    noisy.regularization.code_noise = 0.3;
    noisy.encoder[0].stochastic = Stochastic::Bernoulli;
    let plain = NetworkSpec { seed, ..NetworkSpec::new(64, &[48], Activation::Tanh, 16) };
    // Without noise the two follow each other within rounding. With noise the draws are the same
    // Philox bits, but a Bernoulli sample whose probability sits within rounding of its uniform
    // can flip, so those runs are held to the loss only.
    for (name, spec, kind, clip, exact) in [
        ("sgd nesterov, noise", &noisy, OptimizerKind::Sgd, 0.0, false),
        ("adam, clipped", &plain, OptimizerKind::Adam, 0.5, true),
        ("adamw, noise", &noisy, OptimizerKind::AdamW, 0.0, false),
        ("sgd nesterov", &plain, OptimizerKind::Sgd, 0.0, true),
    ] {
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 64,
            learning_rate: if kind == OptimizerKind::Sgd { 0.05 } else { 1e-3 },
            optimizer: OptimizerConfig {
                kind,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-4,
                ..Default::default()
            },
            grad_clip_norm: clip,
            validation_fraction: 0.1,
            seed,
            ..TrainConfig::default()
        };
        let (hp, hh) = fit(Cpu::default(), spec, &x, cfg);
        let (gp, gh) = fit(Cuda::new(0).unwrap(), spec, &x, cfg);
        let w = hp.iter().zip(&gp).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let (hl, gl) = (hh.last().unwrap().train_loss, gh.last().unwrap().train_loss);
        println!("{name:22} worst parameter difference {w:.2e}; last epoch loss GPU {gl:.6} host {hl:.6}");
        if exact {
            assert!(w < 2e-3, "{name}: the GPU fit drifted from the host's by {w}");
            assert!((gl - hl).abs() < 1e-3 * hl.abs(), "{name}: epoch loss {gl} vs {hl}");
        } else {
            assert!((gl - hl).abs() < 1e-2 * hl.abs(), "{name}: epoch loss {gl} vs {hl}");
        }
    }
}

#[test]
fn gpu_inference_save_and_load() {
    let Some(c) = gpu() else { return };
    let seed = run_seed();
    let mut rng = Rng::new(seed, 4);
    let net = Network::new(NetworkSpec { seed, ..NetworkSpec::new(784, &[256], Activation::Relu, 64) }).unwrap();
    let x = random(3000, 784, &mut rng);
    let mut d = DeviceNetwork::new(c, net.clone()).unwrap();
    let cfg = TrainConfig { epochs: 1, batch_size: 256, seed, ..TrainConfig::default() };
    Trainer::new(cfg).unwrap().fit_device(&mut d, &x, None, None).unwrap();
    let codes = d.encode(&x).unwrap();
    let trained = d.network().unwrap().clone();
    let path = std::env::temp_dir().join(format!("latent-gpu-{}.lat", std::process::id()));
    latent::model_file::save(&trained, &path).unwrap();
    let cpu = latent::model_file::load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let w = worst(codes.as_slice(), cpu.encode(&x).unwrap().as_slice(), 0.01);
    println!("codes on the GPU vs the saved model on the CPU: worst {w:.1e}");
    assert!(w < 1e-4, "saved on the GPU, loaded on the CPU: codes differ by {w}");
    // single-row latency (informative; the benchmark measures it properly)
    let one = x.slice_rows(0, 1);
    for _ in 0..100 {
        d.encode(&one).unwrap();
    }
    let t = std::time::Instant::now();
    for _ in 0..1000 {
        d.encode(&one).unwrap();
    }
    println!("single-row encode: {:.1} us", t.elapsed().as_secs_f64() * 1e3);
}

#[test]
fn gpu_c_api_places_trains_and_brings_back_a_network() {
    use latent::ffi::*;
    let Some(_) = gpu() else { return };
    unsafe {
        let mut n = 0;
        assert_eq!(latent_device_count(&mut n), LATENT_STATUS_OK);
        assert!(n >= 1);
        let mut info = std::mem::zeroed::<latent_device_info>();
        assert_eq!(latent_device_get_info(0, &mut info), LATENT_STATUS_OK);
        let name = std::ffi::CStr::from_ptr(info.name.as_ptr()).to_string_lossy().into_owned();
        println!("device 0: {name}, {} MiB, sm_{}{}", info.total_memory >> 20, info.compute_major, info.compute_minor);
        assert_eq!(latent_device_get_info(n, &mut info), LATENT_STATUS_INVALID_ARGUMENT);
        let mut p = latent_network_params_default();
        p.input_dim = 32;
        p.code_units = 8;
        let mut net = std::ptr::null_mut();
        assert_eq!(latent_network_new(&p, &mut net), LATENT_STATUS_OK);
        assert_eq!(latent_network_to_device(net, LATENT_DEVICE_CUDA, 0), LATENT_STATUS_OK);
        let (mut dev, mut ord) = (0, -1);
        assert_eq!(latent_network_device(net, &mut dev, &mut ord), LATENT_STATUS_OK);
        assert_eq!((dev, ord), (LATENT_DEVICE_CUDA, 0));
        assert_eq!(latent_network_to_device(net, LATENT_DEVICE_CUDA, 99), LATENT_STATUS_UNSUPPORTED);
        // A fit through the C API runs on the GPU and leaves the host copy current.
        let mut rng = Rng::new(run_seed(), 9);
        let x = random(2000, 32, &mut rng);
        let mut data = std::ptr::null_mut();
        assert_eq!(
            latent_dataset_from_buffer(
                x.as_slice().as_ptr().cast(),
                LATENT_DTYPE_F32,
                LATENT_LAYOUT_ROW_MAJOR,
                2000,
                32,
                &mut data
            ),
            LATENT_STATUS_OK
        );
        let mut tp = latent_train_params_default();
        tp.epochs = 3;
        tp.optimizer = LATENT_OPTIMIZER_ADAM;
        tp.learning_rate = 3e-3;
        let mut tr = std::ptr::null_mut();
        assert_eq!(latent_trainer_new(&tp, &mut tr), LATENT_STATUS_OK);
        assert_eq!(latent_trainer_fit(tr, net, data, std::ptr::null(), None, std::ptr::null_mut()), LATENT_STATUS_OK);
        let mut rec = [std::mem::zeroed::<latent_epoch_record>(); 3];
        let mut epochs = 0;
        assert_eq!(latent_trainer_history(tr, rec.as_mut_ptr(), 3, &mut epochs), LATENT_STATUS_OK);
        println!("C API fit on the GPU: loss {:.5} -> {:.5}", rec[0].train_loss, rec[2].train_loss);
        assert!(rec[2].train_loss < rec[0].train_loss);
        let (mut gpu_codes, mut cpu_codes) = (vec![0f32; 2000 * 8], vec![0f32; 2000 * 8]);
        assert_eq!(
            latent_network_encode(net, x.as_slice().as_ptr(), 2000, 32, gpu_codes.as_mut_ptr(), 16000),
            LATENT_STATUS_OK
        );
        assert_eq!(latent_network_to_device(net, LATENT_DEVICE_CPU, 0), LATENT_STATUS_OK);
        assert_eq!(
            latent_network_encode(net, x.as_slice().as_ptr(), 2000, 32, cpu_codes.as_mut_ptr(), 16000),
            LATENT_STATUS_OK
        );
        let w = worst(&gpu_codes, &cpu_codes, 0.01);
        assert!(w < 1e-4, "codes after a GPU fit: GPU vs host copy {w}");
        latent_network_free(net);
        // A VAE on the GPU through the C API.
        let mut vp = latent_vae_params_default();
        vp.input_dim = 32;
        vp.latent_dim = 4;
        let mut vae = std::ptr::null_mut();
        assert_eq!(latent_vae_new(&vp, &mut vae), LATENT_STATUS_OK);
        assert_eq!(latent_vae_to_device(vae, LATENT_DEVICE_CUDA, 0), LATENT_STATUS_OK);
        assert_eq!(
            latent_trainer_fit_vae(tr, vae, data, std::ptr::null(), None, std::ptr::null_mut()),
            LATENT_STATUS_OK
        );
        let mut mean = vec![0f32; 2000 * 4];
        assert_eq!(
            latent_vae_encode(vae, x.as_slice().as_ptr(), 2000, 32, mean.as_mut_ptr(), std::ptr::null_mut(), 8000),
            LATENT_STATUS_OK
        );
        assert!(mean.iter().all(|v| v.is_finite()));
        latent_vae_free(vae);
        latent_trainer_free(tr);
        latent_dataset_free(data);
    }
}

#[test]
fn gpu_rbm_follows_the_host_backend() {
    use latent::train::rbm::RbmOn;
    use latent::train::{Rbm, RbmConfig, Stage, Unit};
    let Some(_) = gpu() else { return };
    let seed = run_seed();
    let mut rng = Rng::new(seed, 5);
    let x = Matrix::from_vec(2000, 64, (0..2000 * 64).map(|_| (rng.uniform() < 0.3) as i32 as f32).collect()).unwrap();
    let c = TrainConfig { epochs: 3, batch_size: 100, learning_rate: 0.05, seed, ..TrainConfig::default() };
    for k in [1, 3] {
        let cfg = RbmConfig { k, ..Default::default() };
        let mut h =
            RbmOn::new(Cpu::default(), Rbm::new(64, 32, Unit::Bernoulli, Unit::Bernoulli, seed).unwrap()).unwrap();
        let hh = h.fit(&x, &c, cfg, Stage::default(), None).unwrap();
        let mut g =
            RbmOn::new(Cuda::new(0).unwrap(), Rbm::new(64, 32, Unit::Bernoulli, Unit::Bernoulli, seed).unwrap())
                .unwrap();
        let gh = g.fit(&x, &c, cfg, Stage::default(), None).unwrap();
        let (he, ge) = (hh[2].reconstruction_error, gh[2].reconstruction_error);
        println!("CD-{k}: reconstruction error GPU {ge:.5} host {he:.5}");
        // The same Philox draws; a Bernoulli draw within rounding of its probability may flip.
        assert!((ge - he).abs() < 0.02 * he, "CD-{k}: GPU {ge} vs host {he}");
    }
}
