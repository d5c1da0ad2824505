//! The VAE variants beyond DL4J against the standard VAE, on the same data and budget:
//!
//! 1. MNIST (pixels / 255), the Q2 network (784-512-[32]-512-784, ReLU, Bernoulli decoder, Adam
//!    1e-3, batch 128): learned posterior variance (standard) against a constant, not learned
//!    posterior variance (Fyffe 2019) at several values.
//! 2. UCI HIGGS (the 28 features, z-scored with the training rows' statistics), a 28-64-[8]-64-28
//!    tanh VAE: Gaussian decoder with a learned per-feature, per-example log-variance (DL4J's
//!    Gaussian, identity and tanh activations) against one learned global variance.
//!
//! Each row: test negative ELBO per example (one sample) with its reconstruction and KL parts,
//! and the importance-sampled log-likelihood (IWAE bound, K = 100) on the test rows, in nats.
//!
//!   cargo bench --bench vae_variants            # both (about 4 minutes on 2 cores)
//!   ONLY=mnist|higgs EPOCHS=10 THREADS=2 cargo bench --bench vae_variants

use std::time::Instant;

use latent::data::{CsvOptions, Dataset, Scaling};
use latent::distribution::{DistKind, Reconstruction};
use latent::vae::Posterior;
use latent::{Activation, Init, Matrix, OptimizerConfig, OptimizerKind, TrainConfig, Trainer, Vae, VaeSpec};

fn row(name: &str, vae: &Vae, test: &Matrix, secs: f64) {
    let e = vae.elbo(test, 1, 11).unwrap();
    let ll = vae.log_likelihood(test, 100, 11).unwrap();
    let ll = ll.iter().sum::<f64>() / ll.len() as f64;
    println!("| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {secs:.0} s |", e.neg_elbo, e.reconstruction, e.kl, -ll);
}

fn header(title: &str) {
    println!("\n{title}\n");
    println!("| variant | test -ELBO | reconstruction | KL | -log p(x), IWAE K=100 | training |");
    println!("|---|---|---|---|---|---|");
}

fn train(spec: VaeSpec, x: &Matrix, cfg: TrainConfig) -> (Vae, f64) {
    let mut vae = Vae::new(spec).unwrap();
    let t = Instant::now();
    Trainer::new(cfg).unwrap().fit(&mut vae, x, None, None).unwrap();
    (vae, t.elapsed().as_secs_f64())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let only = std::env::var("ONLY").unwrap_or_default();
    let threads: usize = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let cfg = |epochs: usize| TrainConfig {
        epochs,
        batch_size: 128,
        learning_rate: 1e-3,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        threads,
        ..Default::default()
    };
    if only.is_empty() || only == "mnist" {
        let Some(dir) = latent::data::resolve::find("mnist") else {
            eprintln!("mnist not found: skipping");
            return;
        };
        let load = |f: &str| {
            let mut d = Dataset::from_idx(dir.join(f), None).unwrap();
            d.scale(Scaling::Divide255).unwrap();
            d
        };
        let (train_set, test_set) = (load("train-images-idx3-ubyte.gz"), load("t10k-images-idx3-ubyte.gz"));
        let epochs: usize = std::env::var("EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
        header(&format!("MNIST, 784-512-[32]-512-784 Bernoulli VAE, {epochs} epochs, 10,000 test images"));
        let base = {
            let mut s = VaeSpec::new(784, &[512], 32, &[512], Activation::Relu);
            s.init = Init::FanInUniform;
            s
        };
        let (vae, t) = train(base.clone(), train_set.x(), cfg(epochs));
        row("learned posterior variance (standard VAE)", &vae, test_set.x(), t);
        for lv in [-0.5f32, -1.0, -2.0, -4.0] {
            let spec = VaeSpec { posterior: Posterior::Constant { log_variance: lv }, ..base.clone() };
            let (vae, t) = train(spec, train_set.x(), cfg(epochs));
            row(&format!("constant posterior log-variance {lv}"), &vae, test_set.x(), t);
        }
    }
    if only.is_empty() || only == "higgs" {
        let Some(dir) = latent::data::resolve::find("higgs") else {
            eprintln!("higgs not found: skipping");
            return;
        };
        let opts = CsvOptions { delimiter: b'\t', has_header: false, label_column: Some(0) };
        let mut tr = Dataset::from_csv(dir.join("uci-higgs/binary.train"), &opts).unwrap();
        let mut te = Dataset::from_csv(dir.join("uci-higgs/binary.test"), &opts).unwrap();
        tr.scale(Scaling::ZScore).unwrap();
        te.apply_scaling(&tr.scaler().clone()).unwrap();
        let epochs: usize = std::env::var("HIGGS_EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
        header(&format!(
            "UCI HIGGS features (z-scored), 28-64-[8]-64-28 tanh VAE, {epochs} epochs on 7,000 rows, 500 test rows"
        ));
        let d = tr.x().cols();
        for (name, kind, act) in [
            (
                "Gaussian decoder, learned per-feature log-variance, identity (DL4J)",
                DistKind::Gaussian,
                Activation::Identity,
            ),
            (
                "Gaussian decoder, learned per-feature log-variance, tanh (DL4J default)",
                DistKind::Gaussian,
                Activation::Tanh,
            ),
            ("Gaussian decoder, one learned global variance", DistKind::GaussianGlobal, Activation::Identity),
        ] {
            let mut s = VaeSpec::new(d, &[64], 8, &[64], Activation::Tanh);
            s.reconstruction = Reconstruction::single(kind, act, d);
            s.seed = 3;
            let (vae, t) = train(s, tr.x(), TrainConfig { batch_size: 64, ..cfg(epochs) });
            row(name, &vae, te.x(), t);
            if kind == DistKind::GaussianGlobal {
                println!("\n(learned global log-variance: {:.3})", vae.global_log_variances()[0]);
            }
        }
    }
}
