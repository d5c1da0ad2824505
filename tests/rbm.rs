//! Restricted Boltzmann machines: the free energy against brute-force enumeration, CD-1 on MNIST,
//! and RBM pretraining of the deep autoencoder against random initialisation.

mod common;

use latent::data::{Dataset, Scaling};
use latent::train::{PretrainConfig, PretrainMethod, Rbm, RbmConfig, Stage, Unit, pretrain};
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

/// rbm.m's settings: SGD lr 0.1, momentum 0.5 then 0.9 from epoch 5, weight cost 2e-4, batch 100.
fn hinton(epochs: usize) -> TrainConfig {
    let mut c = TrainConfig {
        epochs,
        batch_size: 100,
        learning_rate: 0.1,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 2e-4,
            ..Default::default()
        },
        seed: 4,
        threads: 2,
        ..Default::default()
    };
    c.schedule.momentum_initial = 0.5;
    c.schedule.momentum_switch_epoch = 5;
    c
}

/// F(v) = -log sum_h exp(-E(v, h)) summed over all 2^n_h hidden states, for Bernoulli hidden
/// units with Bernoulli and with (unit-variance) Gaussian visible units.
#[test]
fn free_energy_matches_enumeration() {
    for visible in [Unit::Bernoulli, Unit::Gaussian] {
        let (nv, nh) = (5, 4);
        let mut rbm = Rbm::new(nv, nh, visible, Unit::Bernoulli, 3).unwrap();
        // Give the biases values by one short training run on random rows.
        let x = Matrix::from_vec(8, nv, (0..8 * nv).map(|i| ((i * 7) % 5) as f32 / 4.0).collect()).unwrap();
        let c = TrainConfig { epochs: 3, batch_size: 4, learning_rate: 0.5, ..hinton(3) };
        rbm.fit(&x, &c, RbmConfig::default(), Stage::default(), None).unwrap();
        assert!(rbm.hidden_bias().iter().any(|&b| b != 0.0) && rbm.visible_bias().iter().any(|&b| b != 0.0));
        let fe = rbm.free_energy(&x).unwrap();
        let (w, bh, bv) = (rbm.weights(), rbm.hidden_bias(), rbm.visible_bias());
        for (r, &got) in fe.iter().enumerate() {
            let v = x.row(r);
            let vis: f64 = (0..nv)
                .map(|i| match visible {
                    Unit::Bernoulli => -(v[i] as f64) * bv[i] as f64,
                    Unit::Gaussian => 0.5 * ((v[i] - bv[i]) as f64).powi(2),
                })
                .sum();
            let mut sum = 0f64;
            for hbits in 0..1u32 << nh {
                let mut e = vis;
                for j in 0..nh {
                    if hbits >> j & 1 == 1 {
                        e -= bh[j] as f64 + (0..nv).map(|i| v[i] as f64 * w[i * nh + j] as f64).sum::<f64>();
                    }
                }
                sum += (-e).exp();
            }
            let want = -sum.ln();
            assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "{visible:?} row {r}: {got} vs {want}");
        }
    }
}

#[test]
fn cd1_on_mnist_lowers_reconstruction_error_and_free_energy() {
    let Some((train, test)) = mnist(10_000, 500) else { return };
    let mut rbm = Rbm::new(784, 500, Unit::Bernoulli, Unit::Bernoulli, 1).unwrap();
    // Free energy is only defined up to log Z: compare test digits with the same digits' pixels
    // shuffled (same intensities, no digit), which a trained RBM must find much less likely.
    let mut rng = latent::rng::Rng::new(5, 77);
    let mut shuffled = test.as_slice().to_vec();
    shuffled.chunks_exact_mut(784).for_each(|r| rng.shuffle(r));
    let shuffled = Matrix::from_vec(test.rows(), 784, shuffled).unwrap();
    let gap = |rbm: &Rbm| {
        let m = |x: &Matrix| rbm.free_energy(x).unwrap().iter().sum::<f64>() / x.rows() as f64;
        m(&shuffled) - m(&test)
    };
    let gap0 = gap(&rbm);
    let mut first_batches = f64::NAN;
    let mut cb = |p: &latent::Progress| {
        if p.event == latent::train::Event::Batch && p.epoch == 0 && p.batch == 5 {
            first_batches = p.loss;
        }
        true
    };
    let c = TrainConfig { progress_every: 5, ..hinton(3) };
    let h = rbm.fit(&train, &c, RbmConfig::default(), Stage::default(), Some(&mut cb)).unwrap();
    let errs: Vec<f64> = h.iter().map(|e| e.reconstruction_error).collect();
    eprintln!(
        "RBM 784-500 CD-1, 10k MNIST rows: reconstruction error per pixel over the first 5 minibatches {first_batches:.4}, per epoch {errs:.4?}; free energy of shuffled minus real test digits {gap0:.1} -> {:.1}",
        gap(&rbm)
    );
    assert!(errs[2] < errs[0] && errs[2] < 0.3 * first_batches, "{first_batches} -> {errs:?}");
    assert!(gap(&rbm) > gap0 + 100.0, "digits are not much more likely than shuffled pixels: {gap0} -> {}", gap(&rbm));
    assert!(h.iter().all(|e| e.free_energy.is_finite()));
}

/// The Hinton & Salakhutdinov recipe at a small budget: RBM pretraining (CD-1, rbm.m settings,
/// Gaussian top layer) then Adam fine-tuning, against Adam from random weights for as many epochs
/// as pretraining and fine-tuning take together.
#[test]
fn rbm_pretraining_beats_random_init_on_the_deep_mnist_autoencoder() {
    let Some((train, test)) = mnist(6_000, 1_000) else { return };
    let spec = || {
        let mut s = NetworkSpec::new(784, &[1000, 500, 250], Activation::Sigmoid, 30);
        s.code.activation = Activation::Identity;
        s.loss = Loss::BinaryCrossEntropy;
        s.seed = 11;
        s
    };
    let adam = |epochs: usize| TrainConfig {
        epochs,
        batch_size: 100,
        learning_rate: 2e-3,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        seed: 2,
        threads: 2,
        ..Default::default()
    };
    let (pre_epochs, fine_epochs) = (3, 6);
    let mut net = Network::new(spec()).unwrap();
    let cfg = PretrainConfig {
        method: PretrainMethod::Rbm(RbmConfig::default()),
        ..PretrainConfig::new(hinton(pre_epochs), adam(fine_epochs))
    };
    let report = pretrain(&mut net, &cfg, &train, None, None).unwrap();
    for (stage, h) in &report.stages {
        eprintln!("{stage:?}: {:?}", h.iter().map(|r| r.train_loss).collect::<Vec<_>>());
    }
    let pre = net.mean_squared_error(&test).unwrap() * 784.0;
    let mut random = Network::new(spec()).unwrap();
    Trainer::new(adam(pre_epochs + fine_epochs)).unwrap().fit(&mut random, &train, None, None).unwrap();
    let rnd = random.mean_squared_error(&test).unwrap() * 784.0;
    eprintln!("784-1000-500-250-30: squared error per test image RBM-pretrained {pre:.2}, random init {rnd:.2}");
    assert!(pre < 0.85 * rnd, "RBM-pretrained {pre} is not clearly below random init {rnd}");
}

#[test]
fn persistent_cd_and_cd_k_train_too() {
    let Some((train, _)) = mnist(3_000, 0) else { return };
    for rc in [RbmConfig { persistent: true, ..Default::default() }, RbmConfig { k: 3, ..Default::default() }] {
        let mut rbm = Rbm::new(784, 100, Unit::Bernoulli, Unit::Bernoulli, 2).unwrap();
        let h = rbm.fit(&train, &hinton(3), rc, Stage::default(), None).unwrap();
        let errs: Vec<f64> = h.iter().map(|e| e.reconstruction_error).collect();
        eprintln!("{rc:?}: reconstruction error per epoch {errs:.4?}");
        assert!(errs[2] < 0.8 * errs[0], "{rc:?}: {errs:?}");
    }
    // Gaussian hidden units (the top RBM of the deep autoencoder) learn at the scaled rate.
    let mut rbm = Rbm::new(784, 30, Unit::Bernoulli, Unit::Gaussian, 2).unwrap();
    let h = rbm.fit(&train, &hinton(3), RbmConfig::default(), Stage::default(), None).unwrap();
    assert!(h[2].reconstruction_error < h[0].reconstruction_error, "{h:?}");
    let bad = rbm.fit(&train, &hinton(1), RbmConfig { k: 0, ..Default::default() }, Stage::default(), None);
    assert_eq!(bad.unwrap_err().status(), latent::error::status::INVALID_ARGUMENT);
}

/// RBM pretraining through the C API: the stages and the free energy reach the progress callback.
#[test]
fn rbm_pretraining_through_the_c_api() {
    use latent::ffi::*;
    use std::ffi::c_void;
    let (rows, cols) = (64usize, 12usize);
    let x: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 11) as f32) / 10.0).collect();
    let enc = [8u32];
    let mut np = latent_network_params_default();
    np.input_dim = cols as u32;
    np.n_encoder = 1;
    np.encoder_units = enc.as_ptr();
    np.hidden_activation = LATENT_ACTIVATION_SIGMOID;
    np.code_units = 3;
    np.code_activation = LATENT_ACTIVATION_IDENTITY;
    let mut pp = latent_pretrain_params_default();
    pp.method = LATENT_PRETRAIN_RBM;
    pp.pretrain.epochs = 2;
    pp.pretrain.optimizer = LATENT_OPTIMIZER_SGD;
    pp.pretrain.learning_rate = 0.1;
    pp.pretrain.batch_size = 16;
    pp.finetune.epochs = 1;
    type Seen = Vec<(i32, u32, bool)>;
    unsafe extern "C" fn record(user: *mut c_void, p: *const latent_progress) -> i32 {
        let (seen, p) = unsafe { (&mut *(user as *mut Seen), &*p) };
        if p.event == LATENT_EVENT_EPOCH_END {
            seen.push((p.stage, p.stage_layer, p.free_energy.is_finite()));
        }
        0
    }
    let mut seen: Seen = Vec::new();
    unsafe {
        let (mut net, mut ds) = (std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(latent_network_new(&np, &mut net), LATENT_STATUS_OK);
        assert_eq!(
            latent_dataset_from_buffer(
                x.as_ptr().cast(),
                LATENT_DTYPE_F32,
                LATENT_LAYOUT_ROW_MAJOR,
                rows,
                cols,
                &mut ds
            ),
            LATENT_STATUS_OK
        );
        let user = &mut seen as *mut Seen as *mut c_void;
        assert_eq!(latent_network_pretrain(net, &pp, ds, std::ptr::null(), Some(record), user), LATENT_STATUS_OK);
        pp.method = 5;
        assert_eq!(latent_network_pretrain(net, &pp, ds, std::ptr::null(), None, user), LATENT_STATUS_INVALID_ARGUMENT);
        // A tanh layer has no RBM unit type.
        pp.method = LATENT_PRETRAIN_RBM;
        let mut np2 = np;
        np2.hidden_activation = LATENT_ACTIVATION_TANH;
        let mut net2 = std::ptr::null_mut();
        assert_eq!(latent_network_new(&np2, &mut net2), LATENT_STATUS_OK);
        assert_eq!(
            latent_network_pretrain(net2, &pp, ds, std::ptr::null(), None, user),
            LATENT_STATUS_INVALID_ARGUMENT
        );
        latent_network_free(net2);
        latent_network_free(net);
        latent_dataset_free(ds);
    }
    let (p, f) = (LATENT_STAGE_PRETRAIN, LATENT_STAGE_FINETUNE);
    assert_eq!(seen, vec![(p, 0, true), (p, 0, true), (p, 1, true), (p, 1, true), (f, 0, false)]);
}
