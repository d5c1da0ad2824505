//! The two engines side by side, for the one-engine work (issue 14): W1-W3 trained by the CPU
//! engine (`Trainer::fit`: sliced models, data-parallel shards) and by the model code written
//! over the backend (`Trainer::fit_device` of `DeviceNetwork<Cpu>` / `DeviceVae<Cpu>`, the code
//! a GPU runs) on the same rows, same thread count, alternating. Until the second is as fast
//! as the first, the CPU keeps its own step.
//!
//!   cargo bench --bench engines
//!   ROWS=20000 ROUNDS=3 THREADS=2 ONLY=W3 cargo bench --bench engines

use std::time::Instant;

use latent::backend::{Cpu, DeviceNetwork, DeviceVae};
use latent::data::{Dataset, Scaling, resolve};
use latent::{
    Activation, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer, Vae, VaeSpec,
};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

enum Model {
    Ae(NetworkSpec),
    Vae(VaeSpec),
}

/// Samples per second of one epoch on each engine (`ENGINE=cpu` or `ENGINE=backend` runs one
/// of them, for a profiler; the other reads 0).
fn both(model: &Model, c: TrainConfig, x: &Matrix) -> (f64, f64) {
    let rate = |t: Instant| x.rows() as f64 / t.elapsed().as_secs_f64();
    let mut t = Trainer::new(c).unwrap();
    let engine: String = env("ENGINE", String::new());
    let (run_cpu, run_dev) = (engine != "backend", engine != "cpu");
    match model {
        Model::Ae(spec) => {
            let mut net = Network::new(spec.clone()).unwrap();
            let s = Instant::now();
            if run_cpu {
                t.fit(&mut net, x, None, None).unwrap();
            }
            let cpu = rate(s);
            if !run_dev {
                return (cpu, 0.0);
            }
            let mut dev =
                DeviceNetwork::new(Cpu::new(c.threads).unwrap(), Network::new(spec.clone()).unwrap()).unwrap();
            let s = Instant::now();
            Trainer::new(c).unwrap().fit_device(&mut dev, x, None, None).unwrap();
            (cpu, rate(s))
        }
        Model::Vae(spec) => {
            let mut vae = Vae::new(spec.clone()).unwrap();
            let s = Instant::now();
            if run_cpu {
                t.fit(&mut vae, x, None, None).unwrap();
            }
            let cpu = rate(s);
            if !run_dev {
                return (cpu, 0.0);
            }
            let mut dev = DeviceVae::new(Cpu::new(c.threads).unwrap(), Vae::new(spec.clone()).unwrap()).unwrap();
            let s = Instant::now();
            Trainer::new(c).unwrap().fit_device(&mut dev, x, None, None).unwrap();
            (cpu, rate(s))
        }
    }
}

fn main() {
    let Some(dir) = resolve::find("mnist") else {
        println!("{}", resolve::not_found_message("mnist"));
        return;
    };
    let (tri, trl, _, _) = resolve::mnist_files(&dir).unwrap();
    let mut d = Dataset::from_idx(&tri, Some(&trl)).unwrap();
    d.scale(Scaling::Divide255).unwrap();
    let rows: usize = env("ROWS", 20000);
    let x = d.x().slice_rows(0, rows.min(d.rows()));
    let threads: usize = env("THREADS", 2);
    let rounds: usize = env("ROUNDS", 2);
    let only: String = env("ONLY", String::new());
    // The workloads of benches/workloads.rs.
    let base = TrainConfig { threads, shuffle: false, drop_last: true, epochs: 1, ..Default::default() };
    let mut w1 = NetworkSpec::new(784, &[1000, 500, 250], Activation::Sigmoid, 30);
    w1.code.activation = Activation::Identity;
    w1.loss = Loss::BinaryCrossEntropy;
    w1.init = latent::Init::FanInUniform;
    let mut w2 = NetworkSpec::new(784, &[256], Activation::Relu, 64);
    w2.output_activation = Activation::Sigmoid;
    w2.loss = Loss::Mse;
    w2.init = latent::Init::FanInUniform;
    let mut w3 = VaeSpec::new(784, &[512], 32, &[512], Activation::Relu);
    w3.init = latent::Init::FanInUniform;
    let sgd = OptimizerConfig { kind: OptimizerKind::Sgd, momentum: 0.9, ..Default::default() };
    let adam = OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() };
    let work = [
        ("W1", Model::Ae(w1), TrainConfig { batch_size: 128, learning_rate: 0.01, optimizer: sgd, ..base }),
        ("W2", Model::Ae(w2), TrainConfig { batch_size: 256, learning_rate: 1e-3, optimizer: adam, ..base }),
        ("W3", Model::Vae(w3), TrainConfig { batch_size: 128, learning_rate: 1e-3, optimizer: adam, ..base }),
    ];
    println!("{} MNIST rows, 1 epoch per run, {threads} threads, {rounds} rounds", x.rows());
    println!("| workload | round | CPU engine samples/s | backend model code on Cpu samples/s | ratio |");
    println!("|---|---|---|---|---|");
    for r in 0..rounds {
        for (id, model, c) in work.iter().filter(|w| only.is_empty() || only.split(',').any(|o| o == w.0)) {
            let (cpu, dev) = both(model, *c, &x);
            println!("| {id} | {} | {cpu:.0} | {dev:.0} | {:.2} |", r + 1, dev / cpu);
        }
    }
}
