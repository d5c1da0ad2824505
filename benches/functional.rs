//! Functional-transfer layers: forward + backward (with dx) of a 784 -> 256 layer at batch 100 for
//! each of the 20 families, and of a dense layer of the same shape (`Dense`, identity activation,
//! through the GEMM) for reference.
//!
//!   cargo bench --bench functional
//!
//! Environment: ONLY (comma-separated family names, e.g. f01,f12), THREADS (default 0 = all cores), REPS (timed steps per family, default 20; the
//! median step is printed). Columns: ms per step; connection·rows per second (784·256·100 per
//! step, over the step's forward + backward); the step's time over the dense step's.

use std::time::Instant;

use latent::Activation;
use latent::layer::functional::{Family, Functional};
use latent::layer::{Dense, Stochastic};
use latent::rng::{Rng, stream};

const N_IN: usize = 784;
const N_OUT: usize = 256;
const ROWS: usize = 100;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median seconds of `reps` calls of `step` after two warm-up calls.
fn time(reps: usize, mut step: impl FnMut()) -> f64 {
    step();
    step();
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                step();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    let threads = latent::pool::resolve_threads(env("THREADS", 0));
    let reps = env("REPS", 20usize);
    let pool = latent::pool::pool(threads).expect("pool");
    let mut rng = Rng::new(1, stream::INIT);
    // MNIST-like inputs in [0, 1).
    let x: Vec<f32> = (0..ROWS * N_IN).map(|_| rng.uniform()).collect();
    let dz: Vec<f32> = (0..ROWS * N_OUT).map(|_| rng.uniform() - 0.5).collect();
    let mut z = vec![0f32; ROWS * N_OUT];
    let mut y = vec![0f32; ROWS * N_OUT];
    let mut dx = vec![0f32; ROWS * N_IN];

    let dense = Dense {
        n_in: N_IN,
        n_out: N_OUT,
        activation: Activation::Identity,
        w: 0,
        b: N_IN * N_OUT,
        tied: false,
        accumulate_dw: false,
        stochastic: Stochastic::None,
        connection: Default::default(),
        sign_seed: 0,
    };
    let params: Vec<f32> = (0..dense.own_params()).map(|_| 0.1 * (rng.uniform() - 0.5)).collect();
    let mut grads = vec![0f32; params.len()];
    let t_dense = pool.install(|| {
        time(reps, || {
            dense.forward(&params, &x, ROWS, &mut z, &mut y, threads);
            dense.backward_from_dz(&params, &mut grads, &x, &dz, Some(&mut dx), None, ROWS, threads);
        })
    });

    let conn_rows = (N_IN * N_OUT * ROWS) as f64;
    println!(
        "functional {N_IN} -> {N_OUT}, batch {ROWS}, {threads} threads, forward + backward (with dx), median of {reps} (fwd and bwd timed apart, ms/step their sum)"
    );
    println!(
        "{:<8} {:>3} {:>10} {:>8} {:>8} {:>16} {:>9}",
        "layer", "k", "ms/step", "fwd", "bwd", "conn·rows/s", "x dense"
    );
    println!(
        "{:<8} {:>3} {:>10.3} {:>8} {:>8} {:>16.3e} {:>9.2}",
        "dense",
        1,
        1e3 * t_dense,
        "",
        "",
        conn_rows / t_dense,
        1.0
    );
    let only: String = env("ONLY", String::new());
    for fam in Family::ALL {
        if !only.is_empty() && !only.split(',').any(|o| o == fam.name()) {
            continue;
        }
        let layer = Functional::new(N_IN, N_OUT, fam, 0, 7);
        let mut params = vec![0f32; layer.own_params()];
        layer.init(&mut params, &mut rng);
        let mut grads = vec![0f32; params.len()];
        let (tf, tb) = pool.install(|| {
            let tf = time(reps, || layer.forward(&params, &x, ROWS, &mut z, threads));
            let tb = time(reps, || layer.backward(&params, &mut grads, &x, &dz, Some(&mut dx), ROWS, threads));
            (tf, tb)
        });
        let t = tf + tb;
        assert!(z.iter().chain(&grads).chain(&dx).all(|v| v.is_finite()), "{fam:?}: non-finite");
        println!(
            "{:<8} {:>3} {:>10.3} {:>8.3} {:>8.3} {:>16.3e} {:>9.2}",
            fam.name(),
            fam.params_per_connection(),
            1e3 * t,
            1e3 * tf,
            1e3 * tb,
            conn_rows / t,
            t / t_dense
        );
    }
}
