//! W1, W2 and W3 (the VAE) of ../shared/bench on a GPU at batch 256 and 1024: samples/s (median of the timed epochs, each epoch's time including a device
//! synchronize), and the single-row encode latency (median of 1000 calls after 100 warm-up
//! calls). Run on the GPU machine by scripts/gpu-check.sh beside scripts/bench_torch_gpu.py;
//! without a GPU it says so and exits 0.
//!
//! Env: BATCHES (default "256,1024"), EPOCHS (timed epochs, default 3), TF32=1,
//! LATENT_BENCH_OUT (a folder: results.json is written there).

use latent::backend::cuda::Cuda;
use latent::backend::{DeviceNetwork, DeviceVae};
use latent::rng::Rng;
use latent::{
    Activation, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer, Vae, VaeSpec,
};

const ROWS: usize = 60_000;
const COLS: usize = 784;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn main() {
    let cuda = match Cuda::new(0) {
        Ok(c) => c,
        Err(e) => {
            println!("gpu_workloads: no GPU, nothing measured: {e}");
            return;
        }
    };
    drop(cuda);
    let batches: Vec<usize> = std::env::var("BATCHES")
        .unwrap_or_else(|_| "256,1024".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let epochs: usize = std::env::var("EPOCHS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let tf32 = std::env::var("TF32").is_ok_and(|v| v == "1");
    let info = latent::backend::list_devices().unwrap_or_default();
    println!("device: {:?}; TF32 {}", info.first().map(|d| d.name.clone()), if tf32 { "on" } else { "off" });
    let mut rng = Rng::new(12345, 1);
    let x = Matrix::from_vec(ROWS, COLS, (0..ROWS * COLS).map(|_| rng.uniform()).collect()).unwrap();

    let mut w1 = NetworkSpec::new(COLS, &[1000, 500, 250], Activation::Sigmoid, 30);
    w1.code.activation = Activation::Identity;
    w1.loss = Loss::BinaryCrossEntropy;
    w1.init = latent::Init::FanInUniform;
    let mut w2 = NetworkSpec::new(COLS, &[256], Activation::Relu, 64);
    w2.output_activation = Activation::Sigmoid;
    w2.loss = Loss::Mse;
    w2.init = latent::Init::FanInUniform;
    let sgd = OptimizerConfig { kind: OptimizerKind::Sgd, momentum: 0.9, ..Default::default() };
    let adam = OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() };
    let mut w3 = VaeSpec::new(COLS, &[512], 32, &[512], Activation::Relu);
    w3.init = latent::Init::FanInUniform;
    let workloads = [
        ("W1", Some(w1), None, sgd, 0.01f32, 16.998),
        ("W2", Some(w2), None, adam, 1e-3, 2.605),
        ("W3", None, Some(w3), adam, 1e-3, 5.112),
    ];
    let mut rows_out = Vec::new();
    println!("| workload | batch | samples/s | GFLOP/s | encode µs (batch 1) |");
    println!("|---|---|---|---|---|");
    for (id, net, vae, opt, lr, mflop) in workloads {
        for &batch in &batches {
            let mut c = Cuda::new(0).unwrap();
            c.set_tf32(tf32).unwrap();
            let cfg = TrainConfig {
                epochs: epochs + 1,
                batch_size: batch,
                learning_rate: lr,
                optimizer: opt,
                shuffle: false,
                drop_last: true,
                validation_fraction: 0.0,
                ..Default::default()
            };
            let mut t = Trainer::new(cfg).unwrap();
            let one = x.slice_rows(0, 1);
            // The first epoch carries the warm-up (cuBLAS heuristics, first launches).
            let mut lat = Vec::new();
            if let Some(spec) = &net {
                let mut d = DeviceNetwork::new(c, Network::new(spec.clone()).unwrap()).unwrap();
                t.fit_device(&mut d, &x, None, None).unwrap();
                time_encode(&mut lat, || {
                    d.encode(&one).unwrap();
                });
            } else if let Some(spec) = &vae {
                let mut d = DeviceVae::new(c, Vae::new(spec.clone()).unwrap()).unwrap();
                t.fit_device(&mut d, &x, None, None).unwrap();
                time_encode(&mut lat, || {
                    d.encode(&one).unwrap();
                });
            }
            let sps = median(t.history().iter().skip(1).map(|r| r.samples_per_second).collect());
            let us = median(lat);
            println!("| {id} | {batch} | {sps:.0} | {:.0} | {us:.1} |", sps * mflop / 1e3);
            rows_out.push(format!(
                "{{\"workload\":\"{id}\",\"batch\":{batch},\"samples_per_second\":{sps:.1},\"encode_us\":{us:.2},\"tf32\":{tf32}}}"
            ));
        }
    }
    if let Ok(dir) = std::env::var("LATENT_BENCH_OUT") {
        let _ = std::fs::create_dir_all(&dir);
        let _ =
            std::fs::write(std::path::Path::new(&dir).join("latent_gpu.json"), format!("[{}]\n", rows_out.join(",\n")));
    }
}

/// Per-call microseconds of `f`: 100 warm-up calls, then 1000 timed ones.
fn time_encode(out: &mut Vec<f64>, mut f: impl FnMut()) {
    for _ in 0..100 {
        f();
    }
    for _ in 0..1000 {
        let s = std::time::Instant::now();
        f();
        out.push(s.elapsed().as_secs_f64() * 1e6);
    }
}
