//! What the exact contractive penalty costs (src/contractive.rs, docs/manifold.md): ms per
//! training step (`Network::step` + Adam, batch 128) of a plain autoencoder, the per-layer
//! contractive penalty and the exact one (the whole encoder's Jacobian), on MNIST-sized
//! encoders. The variants are timed interleaved, round by round, so that load from other
//! processes falls on all of them alike; the table gives the median over rounds.
//!
//!   cargo bench --bench contractive_exact
//!
//! Environment: THREADS (default 0 = all cores), REPS (rounds, default 7), STEPS (steps per
//! variant and round, default 10).

use std::time::Instant;

use latent::optim::Optimizer;
use latent::regularizer::Regularization;
use latent::rng::Rng;
use latent::{Activation, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind};

const BATCH: usize = 128;
const COLS: usize = 784;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Runner {
    net: Network,
    ws: latent::network::Workspace,
    grads: Vec<f32>,
    params: Vec<f32>,
    opt: Optimizer,
}

impl Runner {
    fn new(spec: &NetworkSpec, reg: Regularization) -> Runner {
        let net = Network::new(NetworkSpec { regularization: reg, ..spec.clone() }).expect("network");
        let adam = OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() };
        Runner {
            ws: net.workspace(BATCH).expect("workspace"),
            grads: vec![0.0; net.param_count()],
            params: net.params().to_vec(),
            opt: Optimizer::new(adam, net.param_count(), &net.weight_ranges()).expect("adam"),
            net,
        }
    }

    /// Seconds per step over `steps` steps cycling the minibatches of x.
    fn run(&mut self, x: &Matrix, steps: usize, threads: usize, pool: &latent::pool::Pool) -> f64 {
        let batches = x.rows() / BATCH;
        let t = Instant::now();
        for s in 0..steps {
            let b = s % batches;
            let xb = &x.as_slice()[b * BATCH * COLS..(b + 1) * BATCH * COLS];
            pool.install(|| {
                let l = self.net.step(xb, BATCH, &mut self.ws, &mut self.grads, threads, None);
                std::hint::black_box(l);
                self.opt.step(&mut self.params, &self.grads, 1e-3, threads);
            });
        }
        t.elapsed().as_secs_f64() / steps as f64
    }
}

fn main() {
    let threads: usize = env("THREADS", 0);
    let reps: usize = env("REPS", 7);
    let steps: usize = env("STEPS", 10);
    let pool = latent::pool::pool(threads).expect("pool");
    let resolved = latent::pool::resolve_threads(threads);
    // The step's cost does not depend on the pixel values: uniform noise in [0, 1).
    let mut rng = Rng::new(3, 0);
    let x = Matrix::from_vec(8 * BATCH, COLS, (0..8 * BATCH * COLS).map(|_| rng.uniform()).collect()).unwrap();
    let shapes = [
        ("784-256-32 (sigmoid, MSE)", NetworkSpec::new(COLS, &[256], Activation::Sigmoid, 32)),
        ("784-1000-500-250-30 (sigmoid, BCE)", NetworkSpec::new(COLS, &[1000, 500, 250], Activation::Sigmoid, 30)),
    ];
    println!(
        "\n## Contractive penalty: ms per training step (forward + backward + Adam), batch {BATCH}, {resolved} threads, median of {reps} interleaved rounds of {steps} steps\n"
    );
    for (name, mut spec) in shapes {
        if name.contains("MSE") {
            spec.loss = Loss::Mse;
        }
        spec.seed = 7;
        let variants = [
            ("plain", Regularization::default()),
            ("per-layer contractive (1e-3)", Regularization { contractive: 1e-3, ..Default::default() }),
            (
                "exact contractive (1e-3)",
                Regularization { contractive: 1e-3, contractive_exact: true, ..Default::default() },
            ),
        ];
        let mut runners: Vec<(&str, Runner)> = variants.into_iter().map(|(n, r)| (n, Runner::new(&spec, r))).collect();
        for (_, r) in runners.iter_mut() {
            r.run(&x, 2, resolved, &pool); // warm-up
        }
        let mut times = vec![Vec::new(); runners.len()];
        for _ in 0..reps {
            for (k, (_, r)) in runners.iter_mut().enumerate() {
                times[k].push(r.run(&x, steps, resolved, &pool));
            }
        }
        println!("{name}\n");
        println!("| variant | ms/step | ratio to plain |");
        println!("|---|---|---|");
        let plain = median(times[0].clone());
        for (k, (variant, _)) in runners.iter().enumerate() {
            let t = median(times[k].clone());
            println!("| {variant} | {:.2} | {:.2}x |", 1e3 * t, t / plain);
        }
        println!();
    }
}
