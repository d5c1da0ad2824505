//! The regularised family on real data (MNIST through the data resolver): sparse, denoising and
//! contractive autoencoders against plain ones of the same size and budget, and greedy
//! layer-wise pretraining against none. Budgets are small (subsets, few epochs) so that CI's two
//! cores run the file in about a minute; the margins asserted were measured (printed with
//! --nocapture) and hold with room.

mod common;

use latent::corruption::Corruption;
use latent::data::{Dataset, Scaling};
use latent::regularizer::{Regularization, SparseLayers, Sparsity};
use latent::rng::Philox;
use latent::train::{PretrainConfig, StageKind, pretrain};
use latent::{Activation, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer};

fn mnist(train_rows: usize, test_rows: usize) -> Option<(Matrix, Matrix)> {
    let dir = common::data_dir("mnist")?;
    let load = |name: &str, rows: usize| {
        let mut d = Dataset::from_idx(dir.join(name), None).unwrap();
        d.scale(Scaling::Divide255).unwrap();
        let idx: Vec<usize> = (0..rows.min(d.rows())).collect();
        d.x().gather_rows(&idx)
    };
    Some((load("train-images-idx3-ubyte.gz", train_rows), load("t10k-images-idx3-ubyte.gz", test_rows)))
}

fn adam(epochs: usize, lr: f32) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 64,
        learning_rate: lr,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        seed: 1,
        threads: 2,
        ..Default::default()
    }
}

fn shallow(hidden: usize, r: Regularization) -> NetworkSpec {
    NetworkSpec { regularization: r, seed: 3, ..NetworkSpec::new(784, &[], Activation::Sigmoid, hidden) }
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

#[test]
fn kl_sparse_autoencoder_reaches_its_target_activation() {
    let Some((train, test)) = mnist(10_000, 2_000) else { return };
    let rho = 0.05;
    let r = Regularization { sparsity: Sparsity::Kl { rho, beta: 0.3 }, ..Default::default() };
    let mut net = Network::new(shallow(196, r)).unwrap();
    Trainer::new(adam(4, 3e-3)).unwrap().fit(&mut net, &train, None, None).unwrap();
    let act = mean(net.encode(&test).unwrap().as_slice());
    let mut plain = Network::new(shallow(196, Regularization::default())).unwrap();
    Trainer::new(adam(4, 3e-3)).unwrap().fit(&mut plain, &train, None, None).unwrap();
    let plain_act = mean(plain.encode(&test).unwrap().as_slice());
    eprintln!("KL sparsity rho {rho}: mean test activation {act:.4} (plain autoencoder {plain_act:.4})");
    assert!((act - rho as f64).abs() <= 0.02, "mean activation {act} is not within 0.02 of {rho}");
    assert!(plain_act > rho as f64 + 0.1, "the plain autoencoder is not sparse by itself ({plain_act})");
}

#[test]
fn alternate_layer_sparsity_makes_only_its_layers_sparse() {
    let Some((train, test)) = mnist(6_000, 1_000) else { return };
    let rho = 0.1;
    let r = Regularization {
        sparsity: Sparsity::Kl { rho, beta: 0.1 },
        sparse_layers: SparseLayers::Alternate { start: 0 },
        ..Default::default()
    };
    let spec = NetworkSpec { regularization: r, seed: 5, ..NetworkSpec::new(784, &[256], Activation::Sigmoid, 64) };
    let mut net = Network::new(spec).unwrap();
    Trainer::new(adam(4, 3e-3)).unwrap().fit(&mut net, &train, None, None).unwrap();
    // Hidden layers 0 (256) and 2 (the mirrored 256) are penalised, the code layer (1) is not.
    let mut ws = net.workspace(test.rows()).unwrap();
    let mut g = vec![0f32; net.param_count()];
    net.forward_backward(test.as_slice(), test.rows(), &mut ws, &mut g, 2);
    let acts: Vec<f64> = (0..3).map(|i| mean(&ws.output(i)[..test.rows() * net.layers()[i].n_out])).collect();
    eprintln!("alternate sparsity rho {rho}: mean activations of hidden layers {acts:.4?}");
    assert!((acts[0] - rho as f64).abs() <= 0.03 && (acts[2] - rho as f64).abs() <= 0.03, "{acts:?}");
    assert!(acts[1] > rho as f64 + 0.1, "the unpenalised code layer is sparse too: {acts:?}");
}

/// Masks 30% of each test row (a fixed seed) and returns the mean squared error per image of the
/// reconstruction of the corrupted rows against the clean ones.
fn denoising_error(net: &Network, clean: &Matrix) -> f64 {
    let mut corrupted = vec![0f32; clean.as_slice().len()];
    Corruption::Masking { level: 0.3 }.apply(clean.as_slice(), 784, None, Philox::new(42, 7), 0, &mut corrupted);
    let out = net.reconstruct(&Matrix::from_vec(clean.rows(), 784, corrupted).unwrap()).unwrap();
    out.as_slice().iter().zip(clean.as_slice()).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>()
        / clean.rows() as f64
}

#[test]
fn denoising_autoencoder_restores_masked_digits_better_than_a_plain_one() {
    let Some((train, test)) = mnist(10_000, 2_000) else { return };
    let spec = |corruption| NetworkSpec {
        loss: Loss::BinaryCrossEntropy,
        regularization: Regularization { corruption, ..Default::default() },
        seed: 9,
        ..NetworkSpec::new(784, &[256], Activation::Relu, 64)
    };
    let mut dae = Network::new(spec(Corruption::Masking { level: 0.3 })).unwrap();
    let mut plain = Network::new(spec(Corruption::None)).unwrap();
    for net in [&mut dae, &mut plain] {
        Trainer::new(adam(4, 1e-3)).unwrap().fit(net, &train, None, None).unwrap();
    }
    let (d, p) = (denoising_error(&dae, &test), denoising_error(&plain, &test));
    eprintln!("30% masked test digits, squared error per image vs clean: denoising {d:.2}, plain {p:.2}");
    assert!(d < 0.85 * p, "denoising {d} is not clearly below plain {p}");
}

#[test]
fn contractive_autoencoder_has_a_flatter_encoder() {
    let Some((train, test)) = mnist(10_000, 1_000) else { return };
    let spec = |contractive| shallow(128, Regularization { contractive, ..Default::default() });
    let mut cae = Network::new(spec(1e-3)).unwrap();
    let mut plain = Network::new(spec(0.0)).unwrap();
    let mut penalty = 0f64;
    for net in [&mut cae, &mut plain] {
        let mut t = Trainer::new(adam(4, 3e-3)).unwrap();
        t.fit(net, &train, None, None).unwrap();
        penalty = penalty.max(t.history().last().unwrap().train_penalty);
    }
    let jac = |n: &Network| {
        let v = n.encoder_jacobian_norms(&test).unwrap();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (c, p) = (jac(&cae), jac(&plain));
    let (ce, pe) = (cae.mean_squared_error(&test).unwrap() * 784.0, plain.mean_squared_error(&test).unwrap() * 784.0);
    eprintln!(
        "mean encoder Jacobian norm on test digits: contractive {c:.3} (error/image {ce:.2}), plain {p:.3} ({pe:.2}); final penalty {penalty:.4}"
    );
    assert!(c < 0.7 * p, "contractive {c} is not clearly below plain {p}");
    assert!(penalty > 0.0, "the penalty was not reported");
}

/// 784-1000-500-250-30 with logistic hidden units and a linear code (Hinton & Salakhutdinov
/// 2006), Adam: pretraining (shallow autoencoders, P epochs per layer) + fine-tuning (F epochs)
/// against the same network trained from random weights for P + F epochs: the same compute, since
/// one pretraining epoch over the whole stack (shallow autoencoders of 1.57M, 1.0M, 0.25M and
/// 0.015M weights) costs about one epoch of the deep network (2.8M). Measured on 6000 rows:
/// pretrained 11.8, random init 17.6 squared error per test image (P = 3, F = 6).
#[test]
fn pretraining_beats_random_init_on_the_deep_mnist_autoencoder() {
    let Some((train, test)) = mnist(6_000, 1_000) else { return };
    let spec = || {
        let mut s = NetworkSpec::new(784, &[1000, 500, 250], Activation::Sigmoid, 30);
        s.code.activation = Activation::Identity;
        s.loss = Loss::BinaryCrossEntropy;
        s.seed = 11;
        s
    };
    let opt = |epochs: usize, lr: f32| TrainConfig { batch_size: 100, seed: 2, ..adam(epochs, lr) };
    let (pre_epochs, fine_epochs) = (3, 6);
    let mut stages = Vec::new();
    let t0 = std::time::Instant::now();
    let mut net = Network::new(spec()).unwrap();
    let cfg = PretrainConfig::new(opt(pre_epochs, 3e-3), opt(fine_epochs, 2e-3));
    let mut cb = |p: &latent::Progress| {
        if p.event == latent::train::Event::EpochEnd {
            stages.push((p.stage.kind, p.stage.layer));
        }
        true
    };
    let report = pretrain(&mut net, &cfg, &train, None, Some(&mut cb)).unwrap();
    assert_eq!(report.stages.len(), 5);
    assert_eq!(stages.len(), 4 * pre_epochs + fine_epochs);
    assert_eq!(stages[0], (StageKind::Pretrain, 0));
    assert_eq!(stages[3 * pre_epochs], (StageKind::Pretrain, 3));
    assert_eq!(*stages.last().unwrap(), (StageKind::Finetune, 0));
    let pre = net.mean_squared_error(&test).unwrap() * 784.0;
    let pre_secs = t0.elapsed().as_secs_f64();
    let t0 = std::time::Instant::now();

    let mut random = Network::new(spec()).unwrap();
    Trainer::new(opt(pre_epochs + fine_epochs, 2e-3)).unwrap().fit(&mut random, &train, None, None).unwrap();
    let rnd = random.mean_squared_error(&test).unwrap() * 784.0;
    eprintln!("wall time: pretrained {pre_secs:.1} s, random init {:.1} s", t0.elapsed().as_secs_f64());
    eprintln!(
        "784-1000-500-250-30, Adam, {} epochs in all: squared error per test image pretrained {pre:.2}, random init {rnd:.2}",
        pre_epochs + fine_epochs
    );
    assert!(pre < 0.85 * rnd, "pretrained {pre} is not clearly below random init {rnd}");
}
