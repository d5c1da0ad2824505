//! The one RBM engine (`RbmOn<B>`, CD-k and persistent CD): `Rbm::fit` is `RbmOn<Cpu>`, so a fit
//! through either gives the same parameters bit for bit, on 1 or 2 threads; what it learns (the
//! reconstruction error and free energy after 8 epochs, Bernoulli and Gaussian hidden units);
//! seeded runs are bit-identical; bad input gets exact errors.

use latent::backend::Cpu;
use latent::rng::Rng;
use latent::train::rbm::RbmOn;
use latent::train::{Rbm, RbmConfig, Stage, Unit};
use latent::{Matrix, OptimizerConfig, OptimizerKind, TrainConfig};

/// Noisy copies of 6 binary prototypes of 36 pixels.
fn data(seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 1);
    let protos: Vec<Vec<f32>> =
        (0..6).map(|_| (0..36).map(|_| (rng.uniform() < 0.4) as i32 as f32).collect()).collect();
    let mut v = Vec::new();
    for i in 0..1200 {
        for &p in &protos[i % 6] {
            v.push(if rng.uniform() < 0.05 { 1.0 - p } else { p });
        }
    }
    Matrix::from_vec(1200, 36, v).unwrap()
}

fn config(seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: 8,
        batch_size: 40,
        learning_rate: 0.1,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.5,
            weight_decay: 2e-4,
            ..Default::default()
        },
        seed,
        ..TrainConfig::default()
    }
}

#[test]
fn one_rbm_engine_learns_on_any_thread_count() {
    let x = data(3);
    for (name, hidden, rbm_cfg) in [
        ("CD-1 bernoulli", Unit::Bernoulli, RbmConfig { k: 1, ..Default::default() }),
        ("CD-3 bernoulli", Unit::Bernoulli, RbmConfig { k: 3, ..Default::default() }),
        ("PCD bernoulli", Unit::Bernoulli, RbmConfig { k: 1, persistent: true, ..Default::default() }),
        ("CD-1 gaussian hidden", Unit::Gaussian, RbmConfig { k: 1, gaussian_lr_scale: 0.1, ..Default::default() }),
    ] {
        let c = TrainConfig { threads: 2, ..config(11) };
        let mut cpu = Rbm::new(36, 16, Unit::Bernoulli, hidden, 5).unwrap();
        let untrained = cpu.free_energy(&x).unwrap().iter().sum::<f64>() / 1200.0;
        let ch = cpu.fit(&x, &c, rbm_cfg, Stage::default(), None).unwrap();
        let mut one = RbmOn::new(Cpu::new(1).unwrap(), Rbm::new(36, 16, Unit::Bernoulli, hidden, 5).unwrap()).unwrap();
        let dh = one.fit(&x, &c, rbm_cfg, Stage::default(), None).unwrap();
        let (first, last) = (dh[0].reconstruction_error, dh.last().unwrap().reconstruction_error);
        let fe = dh.last().unwrap().free_energy;
        println!(
            "{name:22} reconstruction error: epoch 1 {first:.4}, epoch 8 {last:.4}; free energy {fe:.2} (untrained {untrained:.2})"
        );
        assert_eq!(dh.len(), 8);
        assert_eq!(one.into_rbm().unwrap().params(), cpu.params(), "{name}: Rbm::fit on 2 threads vs RbmOn<Cpu> on 1");
        let numbers = |h: &[latent::train::rbm::RbmEpoch]| -> Vec<(f64, f64)> {
            h.iter().map(|e| (e.reconstruction_error, e.free_energy)).collect()
        };
        assert_eq!(numbers(&ch), numbers(&dh), "{name}: the epoch records differ");
        // (PCD's error is measured from its persistent chains, not the data: it need not fall.)
        if !rbm_cfg.persistent {
            assert!(last < 0.6 * first, "{name}: the RBM did not learn ({first} -> {last})");
        }
        assert!(fe < untrained - 10.0, "{name}: the free energy of the data did not fall ({untrained} -> {fe})");
    }
}

#[test]
fn device_rbm_fits_are_seeded_and_checked() {
    let x = data(4);
    let c = config(12);
    let run = || {
        let mut d = RbmOn::new(Cpu::default(), Rbm::new(36, 10, Unit::Bernoulli, Unit::Bernoulli, 1).unwrap()).unwrap();
        d.fit(&x, &c, RbmConfig { k: 2, ..Default::default() }, Stage::default(), None).unwrap();
        d.into_rbm().unwrap().params().to_vec()
    };
    assert_eq!(run(), run());
    let mut d = RbmOn::new(Cpu::default(), Rbm::new(36, 10, Unit::Bernoulli, Unit::Bernoulli, 1).unwrap()).unwrap();
    let bad = Matrix::zeros(10, 35).unwrap();
    assert!(matches!(
        d.fit(&bad, &c, RbmConfig::default(), Stage::default(), None),
        Err(latent::Error::ShapeMismatch(_))
    ));
    assert!(matches!(
        d.fit(&x, &c, RbmConfig { k: 0, ..Default::default() }, Stage::default(), None),
        Err(latent::Error::InvalidArgument(_))
    ));
    // A callback that stops after the first epoch.
    let mut calls = 0;
    let mut cb = |_: &latent::Progress| {
        calls += 1;
        false
    };
    assert!(matches!(
        d.fit(&x, &c, RbmConfig::default(), Stage::default(), Some(&mut cb)),
        Err(latent::Error::Cancelled)
    ));
    assert_eq!(calls, 1);
}
