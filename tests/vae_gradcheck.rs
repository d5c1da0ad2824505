//! Finite-difference checks of `Vae::step`: with the reparameterisation noise fixed (the same
//! seed for every evaluation), the objective mean_rows[mean_l -log p(x|z_l) + beta KL] is a
//! smooth function of the parameters, and the gradient `step` writes must be its gradient, for
//! every reconstruction distribution (Bernoulli, Gaussian with identity and tanh, exponential,
//! global-variance Gaussian, MSE loss, a composite of all of them), several samples per point,
//! a tanh pzx activation, the constant posterior variance, beta != 1 and no hidden layers.
//! Also: the closed-form KL agrees with a Monte-Carlo estimate of E_q[log q - log p].
//!
//! The differences are central, over the actual f32 step, Richardson-extrapolated from h and 2h
//! (as tests/gradcheck.rs explains); tolerance |a - n| <= 1e-2 max(|a|, |n|) + 3e-5, and every
//! layer's weight block must carry a numerical entry above 5x the floor.

use latent::distribution::{DistKind, Part, Reconstruction};
use latent::rng::Rng;
use latent::vae::{Posterior, Vae, VaeSpec};
use latent::{Activation, Init, Matrix};

const REL_TOL: f64 = 1e-2;
const ABS_TOL: f64 = 3e-5;
const H: f32 = 1e-2;
const ROWS: usize = 4;
const SEED: u64 = 99;

fn objective(vae: &Vae, x: &[f32], grads: &mut [f32]) -> f64 {
    let mut ws = vae.workspace(ROWS, vae.spec().num_samples).unwrap();
    let mut rng = Rng::new(SEED, 1234);
    let s = vae.step(x, ROWS, &mut ws, grads, 1, &mut rng, vae.spec().beta);
    (s.recon_sum + vae.spec().beta as f64 * s.kl_sum) / ROWS as f64
}

fn data(spec: &VaeSpec, rng: &mut Rng) -> Vec<f32> {
    // Targets each part can score: [0, 1] for Bernoulli, positive for exponential.
    let mut x = vec![0f32; ROWS * spec.input_dim];
    for r in 0..ROWS {
        let mut c = 0;
        for p in &spec.reconstruction.parts {
            for j in 0..p.size {
                x[r * spec.input_dim + c + j] = match p.kind {
                    DistKind::Exponential => 0.1 + 2.0 * rng.uniform(),
                    _ => rng.uniform(),
                };
            }
            c += p.size;
        }
    }
    x
}

fn check(name: &str, spec: VaeSpec) {
    let mut rng = Rng::new(7, 77);
    let vae = Vae::new(spec.clone()).unwrap();
    // Small random parameters keep every term O(1) and away from saturation.
    let mut p: Vec<f32> = vae.params().to_vec();
    for v in p.iter_mut() {
        *v = 0.4 * (2.0 * rng.uniform() - 1.0);
    }
    let vae = Vae::from_params(spec.clone(), &p).unwrap();
    let x = data(&spec, &mut rng);
    let mut g = vec![0f32; vae.param_count()];
    objective(&vae, &x, &mut g);
    let mut scratch = vec![0f32; vae.param_count()];
    let mut worst = 0f64;
    let mut block_max = vec![0f64; vae.layers().len()];
    for i in 0..p.len() {
        let fd = |h: f32, scratch: &mut [f32]| {
            let mut q = p.clone();
            q[i] = p[i] + h;
            let up = q[i];
            let fu = objective(&Vae::from_params(spec.clone(), &q).unwrap(), &x, scratch);
            q[i] = p[i] - h;
            let down = q[i];
            let fdn = objective(&Vae::from_params(spec.clone(), &q).unwrap(), &x, scratch);
            (fu - fdn) / (up as f64 - down as f64)
        };
        let d1 = fd(H, &mut scratch);
        let d2 = fd(2.0 * H, &mut scratch);
        let num = (4.0 * d1 - d2) / 3.0;
        let a = g[i] as f64;
        let err = (a - num).abs();
        let tol = REL_TOL * a.abs().max(num.abs()) + ABS_TOL;
        assert!(err <= tol, "{name}: parameter {i}: analytic {a:e}, numerical {num:e} (err {err:e}, tol {tol:e})");
        worst = worst.max(err / tol);
        for (k, l) in vae.layers().iter().enumerate() {
            if (l.w..l.b + l.n_out).contains(&i) {
                block_max[k] = block_max[k].max(num.abs());
            }
        }
    }
    for (k, m) in block_max.iter().enumerate() {
        assert!(*m >= 5.0 * ABS_TOL, "{name}: layer {k} has no gradient entry above the floor ({m:e})");
    }
    println!("{name}: {} parameters, worst error {:.0}% of tolerance", p.len(), 100.0 * worst);
}

fn base(input: usize, dist: Reconstruction) -> VaeSpec {
    let mut s = VaeSpec::new(input, &[5], 3, &[4], Activation::Tanh);
    s.reconstruction = dist;
    s.init = Init::Glorot;
    s
}

#[test]
fn bernoulli_gradient() {
    check("bernoulli", base(6, Reconstruction::bernoulli(6)));
}

#[test]
fn bernoulli_three_samples_beta_tanh_pzx() {
    let mut s = base(6, Reconstruction::bernoulli(6));
    s.num_samples = 3;
    s.beta = 0.3;
    s.pzx_activation = Activation::Tanh;
    check("bernoulli L=3 beta 0.3 tanh pzx", s);
}

#[test]
fn gaussian_gradients() {
    check("gaussian identity", base(5, Reconstruction::single(DistKind::Gaussian, Activation::Identity, 5)));
    check("gaussian tanh", base(5, Reconstruction::single(DistKind::Gaussian, Activation::Tanh, 5)));
    check(
        "gaussian global variance",
        base(5, Reconstruction::single(DistKind::GaussianGlobal, Activation::Identity, 5)),
    );
}

#[test]
fn exponential_and_mse_gradients() {
    check("exponential", base(5, Reconstruction::single(DistKind::Exponential, Activation::Identity, 5)));
    check("mse sigmoid", base(5, Reconstruction::single(DistKind::Mse, Activation::Sigmoid, 5)));
    check("mse identity", base(5, Reconstruction::single(DistKind::Mse, Activation::Identity, 5)));
}

#[test]
fn composite_gradient() {
    let parts = vec![
        Part { size: 2, kind: DistKind::Bernoulli, activation: Activation::Sigmoid },
        Part { size: 2, kind: DistKind::Gaussian, activation: Activation::Tanh },
        Part { size: 2, kind: DistKind::Exponential, activation: Activation::Identity },
        Part { size: 1, kind: DistKind::GaussianGlobal, activation: Activation::Identity },
        Part { size: 2, kind: DistKind::Mse, activation: Activation::Identity },
    ];
    let mut s = base(9, Reconstruction { parts });
    s.num_samples = 2;
    check("composite", s);
}

#[test]
fn constant_posterior_variance_gradient() {
    let mut s = base(6, Reconstruction::bernoulli(6));
    s.posterior = Posterior::Constant { log_variance: -1.0 };
    check("constant posterior variance", s);
}

#[test]
fn no_hidden_layers_relu_free_gradient() {
    let mut s = VaeSpec::new(6, &[], 2, &[], Activation::Tanh);
    s.init = Init::Glorot;
    check("no hidden layers", s);
    let mut s = VaeSpec::new(6, &[4, 3], 2, &[3, 4], Activation::Sigmoid);
    s.init = Init::Glorot;
    check("two hidden layers each side, sigmoid", s);
}

/// The closed-form KL of q(z|x) against N(0, I) equals E_q[log q(z|x) - log p(z)], estimated
/// here from 200,000 draws of each row's posterior (standard error about 0.5%).
#[test]
fn closed_form_kl_matches_monte_carlo() {
    let mut s = base(6, Reconstruction::bernoulli(6));
    s.init = Init::Glorot;
    let vae = Vae::new(s).unwrap();
    let mut rng = Rng::new(3, 3);
    let p: Vec<f32> = vae.params().iter().map(|_| 0.8 * (2.0 * rng.uniform() - 1.0)).collect();
    let vae = Vae::from_params(vae.spec().clone(), &p).unwrap();
    let x = Matrix::from_vec(ROWS, 6, (0..ROWS * 6).map(|_| rng.uniform()).collect()).unwrap();
    let (mu, lv) = vae.encode(&x).unwrap();
    let elbo = vae.elbo(&x, 1, 5).unwrap();
    let mut kl_closed = 0f64;
    let mut kl_mc = 0f64;
    let n = 200_000;
    for r in 0..ROWS {
        let (m, l) = (mu.row(r), lv.row(r));
        kl_closed +=
            m.iter().zip(l).map(|(&m, &l)| 0.5 * ((m * m) as f64 + (l as f64).exp() - 1.0 - l as f64)).sum::<f64>();
        let mut acc = 0f64;
        for _ in 0..n {
            let mut lq = 0f64;
            let mut lp = 0f64;
            for (&m, &l) in m.iter().zip(l) {
                let e = rng.normal() as f64;
                let z = m as f64 + (0.5 * l as f64).exp() * e;
                lq += -0.5 * e * e - 0.5 * l as f64;
                lp += -0.5 * z * z;
            }
            acc += lq - lp;
        }
        kl_mc += acc / n as f64;
    }
    kl_closed /= ROWS as f64;
    kl_mc /= ROWS as f64;
    println!("KL closed form {kl_closed:.5}, Monte Carlo {kl_mc:.5}, elbo().kl {:.5}", elbo.kl);
    assert!((kl_closed - elbo.kl).abs() < 1e-5 * kl_closed.max(1.0), "elbo().kl {} vs {kl_closed}", elbo.kl);
    assert!(kl_closed > 0.05, "the test posterior is too close to the prior: {kl_closed}");
    assert!((kl_closed - kl_mc).abs() < 0.02 * kl_closed, "closed {kl_closed} vs MC {kl_mc}");
}
