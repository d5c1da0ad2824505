//! Optimizers against hand-computed references, gradient clipping, thread-count independence,
//! and the trainer's determinism, cancellation, early stopping and divergence handling.
//!
//! The references are written here in f64 from the textbook (PyTorch) formulas, independently of
//! src/optim:
//! - SGD: g' = g + wd p (weights only); v = mu v + g'; p -= lr v, or with Nesterov
//!   p -= lr (g' + mu v). mu = 0 is plain SGD (v = g').
//! - Adam: g' = g + wd p; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
//!   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
//! - AdamW: p *= 1 - lr wd (weights only), then the Adam step on g (no L2 term).
//! - RMSprop (rho = b2): v = rho v + (1 - rho) g'^2; p -= lr g' / (sqrt(v) + eps).
//! - AdaGrad: v += g'^2; p -= lr g' / (sqrt(v) + eps).
//! - AdaDelta (rho = b2): v = rho v + (1 - rho) g'^2; d = sqrt(u + eps) / sqrt(v + eps) g';
//!   u = rho u + (1 - rho) d^2; p -= lr d.
//! - AdaMax: m = b1 m + (1 - b1) g'; u = max(b2 u, |g'| + eps); p -= lr / (1 - b1^t) m / u.
//! - Lion: c = b1 m + (1 - b1) g; p *= 1 - lr wd; p -= lr sign(c); m = b2 m + (1 - b2) g.
//!
//! The engine computes in f32: after a few steps of O(1) parameters it agrees with the f64
//! reference to a few f32 ulps (worst measured 2.6e-7 relative), so the tolerance is
//! |a - r| <= 1e-6 * max(1, |r|) (~8 ulps of 1.0), while each of these deliberate breakages of
//! src/optim was checked to fail: Adam without the second-moment bias correction, eps inside the
//! square root or before the bias correction, AdamW decaying after the step, Nesterov with the
//! old velocity, momentum with dampening, misaligned state chunks, weight decay on biases.

use std::ops::Range;
use std::sync::Mutex;

use latent::gemm::{Kernel, set_kernel};
use latent::optim::{Optimizer, OptimizerConfig, OptimizerKind, clip_grad_norm};
use latent::rng::Rng;
use latent::train::Event;
use latent::{Activation, Error, Init, LayerSpec, Loss, Matrix, Network, NetworkSpec, TrainConfig, Trainer};

/// latent's fixed chunk for parallel elementwise passes (src/parallel.rs CHUNK): the optimizer
/// runs in parallel only on segments of at least 2 * CHUNK.
const CHUNK: usize = 32 * 1024;

/// Tests that compare results of separate runs bit for bit hold this, because
/// `trainer_is_deterministic` switches the process-wide GEMM kernel, and the two kernels round
/// differently.
static BITWISE: Mutex<()> = Mutex::new(());

fn bitwise_lock() -> std::sync::MutexGuard<'static, ()> {
    BITWISE.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// f64 references

fn decayed_mask(n: usize, weights: &[Range<usize>]) -> Vec<bool> {
    let mut m = vec![false; n];
    for r in weights {
        m[r.clone()].iter_mut().for_each(|v| *v = true);
    }
    m
}

/// Runs `grads.len()` steps of the reference optimizer from p0; returns the parameters.
fn reference(cfg: &OptimizerConfig, p0: &[f32], grads: &[Vec<f32>], lr: f64, weights: &[Range<usize>]) -> Vec<f64> {
    let n = p0.len();
    let decayed = decayed_mask(n, weights);
    let mut p: Vec<f64> = p0.iter().map(|&v| v as f64).collect();
    let (mu, b1, b2, eps, wd) =
        (cfg.momentum as f64, cfg.beta1 as f64, cfg.beta2 as f64, cfg.epsilon as f64, cfg.weight_decay as f64);
    let mut m = vec![0f64; n];
    let mut v = vec![0f64; n];
    for (step, g) in grads.iter().enumerate() {
        let t = (step + 1) as i32;
        for i in 0..n {
            let wd_i = if decayed[i] { wd } else { 0.0 };
            let g = g[i] as f64;
            match cfg.kind {
                OptimizerKind::Sgd => {
                    let g = g + wd_i * p[i];
                    m[i] = mu * m[i] + g;
                    p[i] -= lr * if cfg.nesterov { g + mu * m[i] } else { m[i] };
                }
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    let g = if cfg.kind == OptimizerKind::Adam { g + wd_i * p[i] } else { g };
                    if cfg.kind == OptimizerKind::AdamW {
                        p[i] *= 1.0 - lr * wd_i;
                    }
                    m[i] = b1 * m[i] + (1.0 - b1) * g;
                    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                    let m_hat = m[i] / (1.0 - b1.powi(t));
                    let v_hat = v[i] / (1.0 - b2.powi(t));
                    p[i] -= lr * m_hat / (v_hat.sqrt() + eps);
                }
                OptimizerKind::RmsProp => {
                    let g = g + wd_i * p[i];
                    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                    p[i] -= lr * g / (v[i].sqrt() + eps);
                }
                OptimizerKind::AdaGrad => {
                    let g = g + wd_i * p[i];
                    v[i] += g * g;
                    p[i] -= lr * g / (v[i].sqrt() + eps);
                }
                OptimizerKind::AdaDelta => {
                    let g = g + wd_i * p[i];
                    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                    let d = (m[i] + eps).sqrt() / (v[i] + eps).sqrt() * g;
                    m[i] = b2 * m[i] + (1.0 - b2) * d * d;
                    p[i] -= lr * d;
                }
                OptimizerKind::AdaMax => {
                    let g = g + wd_i * p[i];
                    m[i] = b1 * m[i] + (1.0 - b1) * g;
                    v[i] = (b2 * v[i]).max(g.abs() + eps);
                    p[i] -= lr / (1.0 - b1.powi(t)) * m[i] / v[i];
                }
                OptimizerKind::Lion => {
                    let c = b1 * m[i] + (1.0 - b1) * g;
                    p[i] *= 1.0 - lr * wd_i;
                    p[i] -= lr
                        * if c > 0.0 {
                            1.0
                        } else if c < 0.0 {
                            -1.0
                        } else {
                            0.0
                        };
                    m[i] = b2 * m[i] + (1.0 - b2) * g;
                }
            }
        }
    }
    p
}

/// `steps` gradient vectors of length n: O(1) values of both signs, different every step, with a
/// few exact zeros.
fn gradients(n: usize, steps: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed, 7);
    (0..steps).map(|_| (0..n).map(|i| if i % 11 == 5 { 0.0 } else { 2.0 * rng.uniform() - 1.0 }).collect()).collect()
}

fn start_params(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed, 8);
    (0..n).map(|_| 1.5 * (2.0 * rng.uniform() - 1.0)).collect()
}

/// Runs the engine's optimizer over the given gradients with `threads` (inside a pool of that
/// size when > 1).
fn run_engine(
    cfg: OptimizerConfig,
    p0: &[f32],
    grads: &[Vec<f32>],
    lr: f32,
    weights: &[Range<usize>],
    threads: usize,
) -> Vec<f32> {
    let mut opt = Optimizer::new(cfg, p0.len(), weights).expect("valid optimizer");
    let mut p = p0.to_vec();
    for g in grads {
        if threads > 1 {
            latent::pool::pool(threads).expect("pool").install(|| opt.step(&mut p, g, lr, threads));
        } else {
            opt.step(&mut p, g, lr, 1);
        }
    }
    assert_eq!(opt.steps(), grads.len() as u64);
    p
}

fn assert_matches_reference(label: &str, engine: &[f32], reference: &[f64], indices: impl Iterator<Item = usize>) {
    for i in indices {
        let (a, r) = (engine[i] as f64, reference[i]);
        assert!((a - r).abs() <= 1e-6 * r.abs().max(1.0), "{label}: param {i}: engine {a:.9}, reference {r:.9}");
    }
}

fn sgd(momentum: f32, nesterov: bool, weight_decay: f32) -> OptimizerConfig {
    OptimizerConfig { kind: OptimizerKind::Sgd, momentum, nesterov, weight_decay, ..Default::default() }
}

fn adam(kind: OptimizerKind, beta1: f32, beta2: f32, epsilon: f32, weight_decay: f32) -> OptimizerConfig {
    OptimizerConfig { kind, beta1, beta2, epsilon, weight_decay, ..Default::default() }
}

/// 12 parameters: weights 0..4 and 6..10 (given out of order), biases 4, 5, 10, 11.
fn small_ranges() -> Vec<Range<usize>> {
    vec![6..10, 0..4]
}

// ---------------------------------------------------------------------------------------------
// Optimizer steps

#[test]
fn sgd_momentum_and_nesterov_match_the_pytorch_formulas() {
    let n = 12;
    let p0 = start_params(n, 1);
    let grads = gradients(n, 5, 2);
    for wd in [0.0, 0.05] {
        for (mu, nesterov) in [(0.0, false), (0.9, false), (0.9, true), (0.5, true)] {
            let cfg = sgd(mu, nesterov, wd);
            let label = format!("SGD mu {mu} nesterov {nesterov} wd {wd}");
            let engine = run_engine(cfg, &p0, &grads, 0.1, &small_ranges(), 1);
            let want = reference(&cfg, &p0, &grads, 0.1, &small_ranges());
            assert_matches_reference(&label, &engine, &want, 0..n);
        }
    }
    // Spot values, by hand: one plain step p - lr g, then momentum's second step.
    let cfg = sgd(0.9, false, 0.0);
    let e = run_engine(cfg, &[1.0], &[vec![0.5], vec![0.25]], 0.1, &[], 1);
    // v1 = 0.5, p1 = 0.95; v2 = 0.9 * 0.5 + 0.25 = 0.7, p2 = 0.95 - 0.07 = 0.88
    assert!((e[0] - 0.88).abs() < 1e-7, "{}", e[0]);
    let cfg = sgd(0.9, true, 0.0);
    let e = run_engine(cfg, &[1.0], &[vec![0.5], vec![0.25]], 0.1, &[], 1);
    // v1 = 0.5, p1 = 1 - 0.1 (0.5 + 0.45) = 0.905; v2 = 0.7, p2 = 0.905 - 0.1 (0.25 + 0.63) = 0.817
    assert!((e[0] - 0.817).abs() < 1e-7, "{}", e[0]);
}

#[test]
fn adam_and_adamw_match_the_pytorch_formulas() {
    let n = 12;
    let p0 = start_params(n, 3);
    let grads = gradients(n, 6, 4);
    // Small gradients (1e-3 scale) with a large epsilon probe where epsilon sits: outside the
    // square root, after the bias correction.
    let small: Vec<Vec<f32>> = grads.iter().map(|g| g.iter().map(|v| v * 1e-3).collect()).collect();
    for kind in [OptimizerKind::Adam, OptimizerKind::AdamW] {
        for wd in [0.0, 0.05] {
            for (b1, b2, eps, g) in [(0.9, 0.999, 1e-8, &grads), (0.8, 0.99, 1e-8, &grads), (0.9, 0.999, 1e-3, &small)]
            {
                let cfg = adam(kind, b1, b2, eps, wd);
                let label = format!("{} betas ({b1}, {b2}) eps {eps} wd {wd}", kind.name());
                let engine = run_engine(cfg, &p0, g, 0.01, &small_ranges(), 1);
                let want = reference(&cfg, &p0, g, 0.01, &small_ranges());
                assert_matches_reference(&label, &engine, &want, 0..n);
            }
        }
    }
    // Spot value, by hand: Adam's first step moves every coordinate with g != 0 by lr * sign(g)
    // (m_hat = g, v_hat = g^2), up to eps.
    let e = run_engine(
        adam(OptimizerKind::Adam, 0.9, 0.999, 1e-8, 0.0),
        &[1.0, 1.0, 1.0],
        &[vec![0.3, -2.0, 0.0]],
        0.01,
        &[],
        1,
    );
    assert!((e[0] - 0.99).abs() < 1e-7 && (e[1] - 1.01).abs() < 1e-7 && e[2] == 1.0, "{e:?}");
}

#[test]
fn rmsprop_adagrad_adadelta_adamax_and_lion_match_the_pytorch_formulas() {
    let n = 12;
    let p0 = start_params(n, 13);
    let grads = gradients(n, 7, 14);
    let small: Vec<Vec<f32>> = grads.iter().map(|g| g.iter().map(|v| v * 1e-3).collect()).collect();
    let kinds = [
        OptimizerKind::RmsProp,
        OptimizerKind::AdaGrad,
        OptimizerKind::AdaDelta,
        OptimizerKind::AdaMax,
        OptimizerKind::Lion,
    ];
    for kind in kinds {
        for wd in [0.0, 0.05] {
            // The PyTorch defaults (Lion's paper's), other betas, and a large epsilon on small
            // gradients, which tells where epsilon sits.
            for (b1, b2, eps, g) in [
                (0.9, 0.99, 1e-8, &grads),
                (0.8, 0.9, 1e-6, &grads),
                (0.9, 0.95, 1e-3, &small),
                (0.9, 0.999, 1e-10, &grads),
            ] {
                let cfg = adam(kind, b1, b2, eps, wd);
                let label = format!("{} betas ({b1}, {b2}) eps {eps} wd {wd}", kind.name());
                let lr = if kind == OptimizerKind::AdaDelta { 1.0 } else { 0.01 };
                let engine = run_engine(cfg, &p0, g, lr, &small_ranges(), 1);
                let want = reference(&cfg, &p0, g, lr as f64, &small_ranges());
                assert_matches_reference(&label, &engine, &want, 0..n);
                assert!(engine != p0, "{label}: nothing moved");
            }
        }
    }
    // Spot values, by hand, from p = 1 with gradients 0.5 then 0.25 (lr 0.1, no decay, eps
    // 1e-12: below the tolerance).
    let two = |kind, b1: f32, b2: f32, eps: f32, lr: f32| {
        run_engine(adam(kind, b1, b2, eps, 0.0), &[1.0], &[vec![0.5], vec![0.25]], lr, &[], 1)[0]
    };
    // RMSprop, rho 0.9: v1 = 0.025, p1 = 1 - 0.1 * 0.5 / sqrt(0.025) = 0.683772;
    // v2 = 0.0225 + 0.00625 = 0.02875, p2 = p1 - 0.1 * 0.25 / sqrt(0.02875) = 0.536330.
    let e = two(OptimizerKind::RmsProp, 0.9, 0.9, 1e-12, 0.1) as f64;
    assert!((e - 0.536_330).abs() < 2e-6, "rmsprop {e}");
    // AdaGrad: v1 = 0.25, p1 = 0.9; v2 = 0.3125, p2 = 0.9 - 0.025 / 0.559017 = 0.855279.
    let e = two(OptimizerKind::AdaGrad, 0.9, 0.9, 1e-12, 0.1) as f64;
    assert!((e - 0.855_279).abs() < 2e-6, "adagrad {e}");
    // AdaMax, b1 0.9, b2 0.999: m1 = 0.05, u1 = 0.5, p1 = 1 - 0.1 / 0.1 * 0.1 = 0.9;
    // m2 = 0.07, u2 = max(0.4995, 0.25) = 0.4995, p2 = 0.9 - 0.1 / 0.19 * 0.07 / 0.4995 = 0.826242.
    let e = two(OptimizerKind::AdaMax, 0.9, 0.999, 1e-12, 0.1) as f64;
    assert!((e - 0.826_242).abs() < 2e-6, "adamax {e}");
    // Lion, b1 0.9, b2 0.99: c1 = 0.05 > 0, p1 = 0.9, m1 = 0.005; c2 = 0.0045 + 0.025 > 0, p2 = 0.8.
    let e = two(OptimizerKind::Lion, 0.9, 0.99, 1e-12, 0.1) as f64;
    assert!((e - 0.8).abs() < 1e-6, "lion {e}");
    // AdaDelta, rho 0.9, eps 1e-6, lr 1: v1 = 0.025, d1 = sqrt(1e-6) / sqrt(0.025001) * 0.5
    // = 0.00316221, p1 = 0.99683779.
    let e = run_engine(adam(OptimizerKind::AdaDelta, 0.9, 0.9, 1e-6, 0.0), &[1.0], &[vec![0.5]], 1.0, &[], 1)[0] as f64;
    assert!((e - 0.996_837_79).abs() < 2e-7, "adadelta {e}");
}

#[test]
fn weight_decay_applies_only_to_the_weight_ranges() {
    // Zero gradients isolate the decay: weights shrink, biases stay bit for bit.
    let n = 12;
    let p0 = start_params(n, 5);
    let zero = vec![vec![0f32; n]; 3];
    let weights = small_ranges();
    let decayed = decayed_mask(n, &weights);
    let (lr, wd) = (0.1f32, 0.5f32);
    for cfg in [
        sgd(0.0, false, wd),
        sgd(0.9, true, wd),
        adam(OptimizerKind::Adam, 0.9, 0.999, 1e-8, wd),
        adam(OptimizerKind::AdamW, 0.9, 0.999, 1e-8, wd),
        adam(OptimizerKind::RmsProp, 0.9, 0.99, 1e-8, wd),
        adam(OptimizerKind::AdaGrad, 0.9, 0.999, 1e-10, wd),
        adam(OptimizerKind::AdaDelta, 0.9, 0.9, 1e-6, wd),
        adam(OptimizerKind::AdaMax, 0.9, 0.999, 1e-8, wd),
        adam(OptimizerKind::Lion, 0.9, 0.99, 1e-8, wd),
    ] {
        let p = run_engine(cfg, &p0, &zero, lr, &weights, 1);
        for i in 0..n {
            if decayed[i] {
                // AdaDelta's first steps are sqrt(eps)-sized by design: it only has to shrink.
                let by = if cfg.kind == OptimizerKind::AdaDelta { 1.0 } else { 0.99 };
                assert!(p[i].abs() < p0[i].abs() * by, "{:?}: weight {i} not decayed: {} -> {}", cfg.kind, p0[i], p[i]);
            } else {
                assert_eq!(p[i], p0[i], "{:?}: bias {i} decayed", cfg.kind);
            }
        }
        // Plain SGD, AdamW and Lion (no gradient, so sign(c) = 0) shrink by exactly (1 - lr wd)
        // per step here.
        if matches!(cfg.kind, OptimizerKind::AdamW | OptimizerKind::Lion)
            || (cfg.kind == OptimizerKind::Sgd && cfg.momentum == 0.0)
        {
            for i in (0..n).filter(|&i| decayed[i]) {
                let want = p0[i] as f64 * (1.0 - (lr * wd) as f64).powi(3);
                assert!((p[i] as f64 - want).abs() <= 1e-6, "{:?}: weight {i}: {} vs {want}", cfg.kind, p[i]);
            }
        }
    }
    // No weight ranges: nothing decays.
    let p = run_engine(sgd(0.0, false, wd), &p0, &zero, lr, &[], 1);
    assert_eq!(p, p0);
}

#[test]
fn optimizer_steps_are_identical_for_one_and_two_threads() {
    // Longer than 2 * CHUNK per segment, so the chunked parallel path runs, with segment edges
    // that are not chunk-aligned.
    let n = 3 * CHUNK + 1234;
    let weights = vec![0..70_000, 70_100..n - 500];
    let p0 = start_params(n, 6);
    let grads = gradients(n, 3, 7);
    for cfg in [
        sgd(0.9, false, 0.01),
        sgd(0.9, true, 0.01),
        adam(OptimizerKind::Adam, 0.9, 0.999, 1e-8, 0.01),
        adam(OptimizerKind::AdamW, 0.9, 0.999, 1e-8, 0.01),
        adam(OptimizerKind::RmsProp, 0.9, 0.99, 1e-8, 0.01),
        adam(OptimizerKind::AdaGrad, 0.9, 0.999, 1e-10, 0.01),
        adam(OptimizerKind::AdaDelta, 0.9, 0.9, 1e-6, 0.01),
        adam(OptimizerKind::AdaMax, 0.9, 0.999, 1e-8, 0.01),
        adam(OptimizerKind::Lion, 0.9, 0.99, 1e-8, 0.01),
    ] {
        let lr = if cfg.kind == OptimizerKind::Sgd { 0.05 } else { 0.01 };
        let one = run_engine(cfg, &p0, &grads, lr, &weights, 1);
        let two = run_engine(cfg, &p0, &grads, lr, &weights, 2);
        assert!(one == two, "{:?}: threads 1 and 2 differ", cfg.kind);
        // And both are right: the chunk and segment edges, and a sample in between.
        let want = reference(&cfg, &p0, &grads, lr as f64, &weights);
        let edges = [0, CHUNK - 1, CHUNK, 2 * CHUNK, 69_999, 70_000, 70_099, 70_100, n - 501, n - 500, n - 1];
        assert_matches_reference(cfg.kind.name(), &two, &want, edges.into_iter().chain((0..n).step_by(97)));
    }
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>().sqrt()
}

#[test]
fn clip_grad_norm_scales_to_max_norm_and_leaves_small_gradients_alone() {
    for n in [2usize, 1000, 2 * CHUNK + 77] {
        let g0: Vec<f32> = gradients(n, 1, n as u64).remove(0);
        let before = norm(&g0);
        // Above the limit: scaled to exactly max_norm (to f32 rounding), direction kept.
        let max = (before / 3.0) as f32;
        let mut g = g0.clone();
        let reported = clip_grad_norm(&mut g, max);
        assert!((reported - before).abs() <= 1e-12 * before, "n {n}: reported norm {reported} vs {before}");
        assert!((norm(&g) - max as f64).abs() <= 1e-6 * max as f64, "n {n}: clipped norm {} vs {max}", norm(&g));
        let s = max as f64 / before;
        for (a, b) in g.iter().zip(&g0) {
            assert!((*a as f64 - s * *b as f64).abs() <= 1e-6 * b.abs() as f64 + 1e-30);
        }
        // At or below the limit, or with clipping off (0): untouched, bit for bit.
        for max in [(before * 2.0) as f32, 0.0] {
            let mut g = g0.clone();
            let reported = clip_grad_norm(&mut g, max);
            assert_eq!(g, g0, "n {n}: max {max} changed a small gradient");
            assert!((reported - before).abs() <= 1e-12 * before);
        }
    }
    // By hand: (3, 4) has norm 5; clipped to 1 it is (0.6, 0.8).
    let mut g = vec![3.0f32, 4.0];
    assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
    assert!((g[0] - 0.6).abs() < 1e-7 && (g[1] - 0.8).abs() < 1e-7, "{g:?}");
    let mut g = vec![3.0f32, 4.0];
    clip_grad_norm(&mut g, 5.0);
    assert_eq!(g, [3.0, 4.0], "a norm equal to the limit is not clipped");
}

#[test]
fn clip_grad_norm_is_identical_for_one_and_two_threads() {
    let n = 3 * CHUNK + 999;
    let g0 = gradients(n, 1, 9).remove(0);
    let max = (norm(&g0) / 2.0) as f32;
    let run = |threads: usize| {
        let mut g = g0.clone();
        let r = latent::pool::pool(threads).unwrap().install(|| clip_grad_norm(&mut g, max));
        (g, r)
    };
    let (g1, r1) = run(1);
    let (g2, r2) = run(2);
    assert_eq!(r1.to_bits(), r2.to_bits(), "norms differ");
    assert!(g1 == g2, "clipped gradients differ");
}

// ---------------------------------------------------------------------------------------------
// Trainer

fn uniform_matrix(rows: usize, cols: usize, seed: u64, lo: f32, hi: f32) -> Matrix {
    let mut rng = Rng::new(seed, 9);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| lo + (hi - lo) * rng.uniform()).collect()).unwrap()
}

fn net_spec(input: usize, hidden: usize, code: usize, seed: u64) -> NetworkSpec {
    let mut s = NetworkSpec::new(input, &[hidden], Activation::Tanh, code);
    s.code = LayerSpec::new(code, Activation::Sigmoid);
    s.seed = seed;
    s
}

fn adam_config(epochs: usize, batch: usize, lr: f32, seed: u64, threads: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: batch,
        learning_rate: lr,
        optimizer: adam(OptimizerKind::Adam, 0.9, 0.999, 1e-8, 1e-4),
        seed,
        threads,
        ..Default::default()
    }
}

/// Trains a fresh network; returns its parameters.
fn train(spec: &NetworkSpec, data: &Matrix, cfg: TrainConfig) -> Vec<f32> {
    let mut net = Network::new(spec.clone()).unwrap();
    Trainer::new(cfg).unwrap().fit(&mut net, data, None, None).unwrap();
    assert!(net.params().iter().all(|v| v.is_finite()));
    net.params().to_vec()
}

/// Same seed and threads: bit-identical, with either GEMM kernel. Another seed: different.
///
/// Threads 1 vs 2 with minibatches of 256 rows and more: 2 threads train data-parallel (one
/// shard of the minibatch per thread, gradients combined by rows: src/train/trainer.rs), so the
/// sums are ordered differently and the results agree to rounding only. Below that, with the
/// matrixmultiply kernel (the default where AVX-512 is present) also bit-identical: the GEMM
/// splits only output blocks, each computed by one single-threaded call
/// with the same k order and the same kernel (chosen on the whole product: see src/gemm.rs),
/// elementwise passes split rows, the optimizer splits fixed chunks, and the gradient norm adds
/// fixed-chunk partial sums in order. With the gemm crate kernel (the default on AVX2-only CPUs)
/// NOT in general: that crate picks its inner kernels by block shape, so some shapes (here the
/// 52-68-34-7 network) differ in the last bits between thread counts; they stay close.
#[test]
fn trainer_is_deterministic() {
    let _bitwise = bitwise_lock();
    // (input, hidden layers, code, rows, batch). The first is large enough that every parallel
    // path splits at 2 threads: 512 x 64 elementwise passes (>= 2 * 16384 values), GEMMs of
    // 2 * 512 * 64 * 48 flops (> 4e5). The second splits products into a 32-wide block and a
    // 4-wide remainder (36 = 32 + 4 columns, 516 = 512 + 4 rows); the third hits shapes where
    // the gemm crate's result depends on the block shape.
    // The fourth has minibatches of 128 rows: one shard, products split between the threads.
    let cases: [(usize, &[usize], usize, usize, usize); 4] = [
        (64, &[48], 16, 2048, 512),
        (36, &[20, 10], 12, 1100, 516),
        (52, &[68, 34], 7, 1100, 1000),
        (64, &[48], 16, 1024, 128),
    ];
    for (k, &(input, hidden, code, rows, batch)) in cases.iter().enumerate() {
        let data = uniform_matrix(rows, input, 11 + k as u64, 0.0, 1.0);
        let mut spec = NetworkSpec::new(input, hidden, Activation::Elu, code);
        spec.seed = 3;
        let cfg = |seed, threads| TrainConfig {
            validation_fraction: 0.1,
            grad_clip_norm: 1.0,
            ..adam_config(2, batch, 1e-3, seed, threads)
        };
        for kernel in [Kernel::MatrixMultiply, Kernel::Gemm] {
            set_kernel(kernel);
            let label = format!("{input}-{hidden:?}-{code}, batch {batch}, {kernel:?}");
            let two = train(&spec, &data, cfg(5, 2));
            assert!(two == train(&spec, &data, cfg(5, 2)), "{label}: same seed, 2 threads, differed");
            assert!(two != train(&spec, &data, cfg(6, 2)), "{label}: another seed gave the same parameters");
            let one = train(&spec, &data, cfg(5, 1));
            assert!(one == train(&spec, &data, cfg(5, 1)), "{label}: same seed, 1 thread, differed");
            let differing = one.iter().zip(&two).filter(|(x, y)| x != y).count();
            let max_diff = one.iter().zip(&two).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            println!(
                "{label}: threads 1 vs 2 differ in {differing} of {} parameters, by at most {max_diff:e}",
                one.len()
            );
            if kernel == Kernel::MatrixMultiply && batch < 256 {
                assert_eq!(differing, 0, "{label}: threads 1 and 2 differ in {differing} of {} parameters", one.len());
            } else {
                assert!(max_diff <= 1e-4, "{label}: threads 1 and 2 differ by {max_diff}");
            }
        }
    }
    set_kernel(Kernel::Auto);
}

#[test]
fn cancelling_from_the_progress_callback() {
    let _bitwise = bitwise_lock();
    let data = uniform_matrix(100, 8, 12, 0.0, 1.0);
    let spec = net_spec(8, 6, 3, 4);
    // 5 minibatches of 20 per epoch, in order (no shuffle), a callback after each.
    let cfg = TrainConfig { shuffle: false, progress_every: 1, ..adam_config(4, 20, 1e-2, 1, 1) };
    for (cancel_epoch, cancel_batch) in [(0usize, 3usize), (1, 2)] {
        let mut net = Network::new(spec.clone()).unwrap();
        let start = net.params().to_vec();
        let mut trainer = Trainer::new(cfg).unwrap();
        let mut calls = 0;
        let mut cb = |p: &latent::Progress| {
            calls += 1;
            !(p.event == Event::Batch && p.epoch == cancel_epoch && p.batch == cancel_batch)
        };
        let r = trainer.fit(&mut net, &data, None, Some(&mut cb));
        assert_eq!(r, Err(Error::Cancelled));
        // Epoch 0: 3 batch calls. Epoch 1: 5 batch calls and the epoch end, then 2.
        assert_eq!(calls, if cancel_epoch == 0 { 3 } else { 8 });
        assert_eq!(trainer.history().len(), cancel_epoch, "the cancelled epoch has no record");
        // The network holds the parameters of the last completed step: those of a run that stops
        // there on its own (same minibatches, since nothing is shuffled).
        let steps = cancel_epoch * 5 + cancel_batch;
        let mut reference = Network::new(spec.clone()).unwrap();
        let prefix = data.slice_rows(0, 20 * cancel_batch);
        let mut t = Trainer::new(TrainConfig { epochs: 1, progress_every: 0, ..cfg }).unwrap();
        if cancel_epoch > 0 {
            t.fit(&mut reference, &data, None, None).unwrap();
        }
        t.fit(&mut reference, &prefix, None, None).unwrap();
        assert_ne!(net.params(), &start[..], "{steps} steps were taken");
        assert_eq!(net.params(), reference.params(), "cancelled after {steps} steps");
        let codes = net.encode(&data).unwrap();
        assert!(codes.as_slice().iter().all(|v| v.is_finite()));
    }
}

/// Training data near 0.95, validation data near 0.7, and a network that starts at output 0.5:
/// as the output climbs from 0.5 towards 0.95 the validation loss falls until the output passes
/// 0.7, then rises. Early stopping must stop `patience` epochs after the best epoch and restore
/// that epoch's parameters.
#[test]
fn early_stopping_restores_the_best_parameters() {
    let _bitwise = bitwise_lock();
    let train_data = uniform_matrix(200, 8, 13, 0.92, 0.98);
    let valid = uniform_matrix(50, 8, 14, 0.67, 0.73);
    let mut spec = net_spec(8, 6, 3, 5);
    spec.init = Init::SmallUniform;
    let patience = 3;
    let epochs = 100;
    let cfg = TrainConfig { early_stopping_patience: patience, ..adam_config(epochs, 20, 3e-3, 2, 1) };
    let mut net = Network::new(spec.clone()).unwrap();
    let mut trainer = Trainer::new(cfg).unwrap();
    trainer.fit(&mut net, &train_data, Some(&valid), None).unwrap();
    let h: Vec<f64> = trainer.history().iter().map(|r| r.valid_loss).collect();
    let best = (0..h.len()).min_by(|&a, &b| h[a].total_cmp(&h[b])).unwrap();
    assert!(best >= 2, "the validation loss fell for a while first: {h:?}");
    assert_eq!(h.len(), best + 1 + patience, "stopped {patience} epochs after the best: {h:?}");
    assert!(h.len() < epochs);
    assert!(h[..best].windows(2).all(|w| w[1] < w[0]), "fell until the best epoch: {h:?}");
    assert!(h[best + 1..].iter().all(|&v| v > h[best]), "never improved after it: {h:?}");
    // The restored parameters are those after epoch `best`: a run of best + 1 epochs gives them.
    let mut again = Network::new(spec).unwrap();
    let plain = TrainConfig { epochs: best + 1, early_stopping_patience: 0, ..cfg };
    Trainer::new(plain).unwrap().fit(&mut again, &train_data, Some(&valid), None).unwrap();
    assert_eq!(net.params(), again.params(), "restored parameters are those of epoch {best}");
    let loss = net.loss(&valid).unwrap();
    assert!((loss - h[best]).abs() <= 1e-9 * h[best], "validation loss {loss} vs recorded {}", h[best]);
}

#[test]
fn divergence_restores_the_start_of_epoch_parameters() {
    // Identity layers and an identity output under MSE: the loss grows polynomially in the
    // weights, so SGD at lr 1e6 overflows within a few minibatches.
    let mut spec = NetworkSpec::new(8, &[6], Activation::Identity, 3);
    spec.output_activation = Activation::Identity;
    spec.loss = Loss::Mse;
    let data = uniform_matrix(100, 8, 15, 0.0, 1.0);
    let mut net = Network::new(spec).unwrap();
    // One sane epoch first, so "start of epoch" is not just the initial parameters.
    Trainer::new(adam_config(1, 10, 1e-2, 3, 1)).unwrap().fit(&mut net, &data, None, None).unwrap();
    let before = net.params().to_vec();
    let cfg = TrainConfig { learning_rate: 1e6, optimizer: sgd(0.0, false, 0.0), ..adam_config(3, 10, 1e6, 3, 1) };
    let mut trainer = Trainer::new(cfg).unwrap();
    let r = trainer.fit(&mut net, &data, None, None);
    assert!(matches!(r, Err(Error::Diverged(_))), "{r:?}");
    assert!(trainer.history().is_empty(), "the diverged epoch has no record");
    assert_eq!(net.params(), &before[..], "parameters are those of the start of the epoch");
    assert!(net.params().iter().all(|v| v.is_finite()));
    assert!(net.reconstruct(&data).unwrap().as_slice().iter().all(|v| v.is_finite()));
}

/// A blow-up in the last minibatch of an epoch (here the only one) is caught in that epoch:
/// neither returned as a success nor kept as the next epoch's starting point.
#[test]
fn divergence_in_the_last_minibatch_is_caught() {
    let mut spec = NetworkSpec::new(8, &[6], Activation::Identity, 3);
    spec.output_activation = Activation::Identity;
    spec.loss = Loss::Mse;
    let data = uniform_matrix(10, 8, 16, 0.0, 1.0);
    // One step at lr 1e12 leaves finite parameters (~1e11) whose loss overflows; at 1e20 even the
    // outputs overflow.
    for (epochs, lr) in [(1, 1e12), (2, 1e12), (1, 1e20), (3, 1e20)] {
        let mut net = Network::new(spec.clone()).unwrap();
        let before = net.params().to_vec();
        let cfg = TrainConfig { optimizer: sgd(0.0, false, 0.0), ..adam_config(epochs, 10, lr, 1, 1) };
        let mut trainer = Trainer::new(cfg).unwrap();
        let r = trainer.fit(&mut net, &data, None, None);
        assert!(matches!(r, Err(Error::Diverged(_))), "epochs {epochs}, lr {lr:e}: {r:?}");
        assert!(trainer.history().is_empty());
        assert_eq!(net.params(), &before[..], "epochs {epochs}, lr {lr:e}: not the start of epoch 0");
    }
}
