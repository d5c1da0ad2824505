//! RBM training speed: CD-k on MNIST as Hinton & Salakhutdinov pretrain their first layer
//! (784 Bernoulli visible, 1000 Bernoulli hidden, batch 100, SGD 0.1 with momentum 0.9,
//! weight cost 2e-4), and their linear top layer (250 -> 30 Gaussian hidden).
//!
//!   cargo bench --bench rbm
//!   EPOCHS=3 K=1 TRAIN=60000 THREADS=2 cargo bench --bench rbm
//!
//! Prints samples/s per epoch (median of the epochs) and the last epoch's reconstruction error,
//! so a change to the RBM's engine can be compared before and after in one sitting.

use latent::data::{Dataset, Scaling, resolve};
use latent::optim::{OptimizerConfig, OptimizerKind};
use latent::train::rbm::{Rbm, RbmConfig, Unit};
use latent::train::trainer::{Stage, TrainConfig};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let Some(dir) = resolve::find("mnist") else {
        println!("{}", resolve::not_found_message("mnist"));
        return;
    };
    let (tri, trl, _, _) = resolve::mnist_files(&dir).unwrap();
    let mut train = Dataset::from_idx(&tri, Some(&trl)).unwrap();
    train.scale(Scaling::Divide255).unwrap();
    let n_train: usize = env("TRAIN", train.rows()).min(train.rows());
    let x = train.x().slice_rows(0, n_train);
    let epochs: usize = env("EPOCHS", 3);
    let k: usize = env("K", 1);
    let threads: usize = env("THREADS", 0);
    println!("RBM CD-{k}, {n_train} MNIST digits, batch 100, SGD momentum 0.9, {epochs} epochs, threads {threads}");
    println!("| RBM | samples/s (median epoch) | per-epoch samples/s | last reconstruction error |");
    println!("|---|---|---|---|");
    // The top layer's input: 250 columns of the digits (the middle 250 pixels, a stand-in for the third layer's codes).
    let top = latent::tensor::Matrix::from_vec(
        x.rows(),
        250,
        (0..x.rows()).flat_map(|i| x.row(i)[267..517].to_vec()).collect(),
    )
    .unwrap();
    for (name, data, nv, nh, hidden, lr) in [
        ("784-1000 Bernoulli", &x, 784, 1000, Unit::Bernoulli, 0.1f32),
        ("250-30 Gaussian hidden", &top, 250, 30, Unit::Gaussian, 0.1f32),
    ] {
        let mut rbm = Rbm::new(nv, nh, Unit::Bernoulli, hidden, 1).unwrap();
        let c = TrainConfig {
            epochs,
            batch_size: 100,
            learning_rate: lr,
            threads,
            seed: 7,
            optimizer: OptimizerConfig {
                kind: OptimizerKind::Sgd,
                momentum: 0.9,
                weight_decay: 2e-4,
                ..OptimizerConfig::default()
            },
            ..TrainConfig::default()
        };
        let cfg = RbmConfig { k, ..RbmConfig::default() };
        let hist = rbm.fit(data, &c, cfg, Stage::default(), None).unwrap();
        let per: Vec<f64> = hist.iter().map(|e| data.rows() as f64 / e.seconds).collect();
        let shown: Vec<String> = per.iter().map(|v| format!("{v:.0}")).collect();
        println!(
            "| {name} | {:.0} | {} | {:.5} |",
            median(per.clone()),
            shown.join(", "),
            hist.last().unwrap().reconstruction_error
        );
    }
}
