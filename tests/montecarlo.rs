//! The gradient-free Monte-Carlo optimizer: it reaches known optima within stated budgets, never
//! shows the loss a vector that violates a constraint, is bit-reproducible for any thread count,
//! gives calibrated weak confidence intervals, and reports bad input as errors (Rust and C API).

use std::sync::atomic::{AtomicU64, Ordering};

use latent::montecarlo::*;
use latent::rng::Rng;

fn settings(seed: u64) -> Settings {
    Settings { seed, threads: 2, ..Settings::default() }
}

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2)).sum()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn shifted_quadratic_10d() {
    let target: Vec<f64> = (0..10).map(|i| 0.3 * i as f64 - 1.2).collect();
    let w: Vec<f64> = (0..10).map(|i| 1.0 + i as f64).collect();
    let loss = |x: &[f64]| x.iter().zip(&target).zip(&w).map(|((a, b), w)| w * (a - b).powi(2)).sum::<f64>();
    let specs = vec![ParamSpec { prior: Prior::Uniform { low: -3.0, high: 3.0 }, ..ParamSpec::default() }; 10];
    let mc = minimize(settings(1), specs, &loss).unwrap();
    let err = max_abs_diff(mc.best().unwrap(), &target);
    println!(
        "quadratic 10-D: max |x - x*| {err:.2e}, loss {:.2e}, {} evaluations, {} iterations, converged {}",
        mc.best_loss(),
        mc.evaluations(),
        mc.iterations(),
        mc.converged()
    );
    assert!(err < 1e-4, "max error {err}");
    assert!(mc.evaluations() <= 100_000, "{} evaluations", mc.evaluations());
    assert!(mc.converged());
    // The history is the best loss per iteration: non-increasing.
    assert!(mc.history().windows(2).all(|w| w[1] <= w[0]));
}

#[test]
fn rosenbrock_2d_and_4d() {
    for (dim, budget) in [(2usize, 100_000u64), (4, 300_000)] {
        let mut s = settings(3);
        s.max_evaluations = budget;
        let specs = vec![ParamSpec { prior: Prior::Uniform { low: -2.0, high: 2.0 }, ..ParamSpec::default() }; dim];
        let mc = minimize(s, specs, &rosenbrock).unwrap();
        let err = max_abs_diff(mc.best().unwrap(), &vec![1.0; dim]);
        println!(
            "rosenbrock {dim}-D: max |x - 1| {err:.2e}, loss {:.2e}, {} evaluations, converged {}",
            mc.best_loss(),
            mc.evaluations(),
            mc.converged()
        );
        assert!(err < 1e-3, "{dim}-D: max error {err}");
    }
}
