//! Finite-difference checks of the penalties' gradients (KL and L1 sparsity, alternate-layer
//! sparsity, the contractive penalty for every activation, with tied weights too) and of the
//! denoising step (loss against the clean input).
//!
//! The reference is an independent f64 evaluation of the objective, written here from the
//! documented formulas (regularizer.rs): the mean element loss, plus beta * sum_j KL(rho ||
//! rho_hat_j), plus lambda * mean_rows sum_j |h_j|, plus lambda_c * mean_rows sum_layers sum_j
//! f'(z_j)^2 sum_i W_ij^2. Central differences of that f64 function (step 1e-4) are accurate to ~1e-9, so the check is
//! limited only by the engine's f32 arithmetic: tolerance 1e-3 relative plus 2e-6 absolute.
//!
//! Checked to fail on: the KL gradient's (1-rho) term dropped; the KL gradient not divided by the
//! rows; the L1 sign flipped; the contractive direct W term missing or its factor 2 dropped;
//! the second-derivative term missing (sigmoid, tanh); the penalty applied after the
//! activation derivative instead of before; alternate layers off by one.

use latent::corruption::Corruption;
use latent::network::{StepNoise, Workspace};
use latent::regularizer::{Regularization, SparseLayers, Sparsity};
use latent::rng::{Philox, Rng, StepDraws};
use latent::{Activation, Loss, Network, NetworkSpec};

const REL_TOL: f64 = 1e-3;
const ABS_TOL: f64 = 2e-6;
const ROWS: usize = 6;

fn act64(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Identity => z,
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Relu => z.max(0.0),
        Activation::LeakyRelu => {
            if z > 0.0 {
                z
            } else {
                0.01 * z
            }
        }
        Activation::Elu => {
            if z > 0.0 {
                z
            } else {
                z.exp_m1()
            }
        }
        Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
        Activation::Gelu => 0.5 * z * (1.0 + erf64(z / std::f64::consts::SQRT_2)),
    }
}

/// f'(z) in f64, by the closed forms.
fn deriv64(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Identity => 1.0,
        Activation::Sigmoid => {
            let s = act64(a, z);
            s * (1.0 - s)
        }
        Activation::Tanh => 1.0 - z.tanh().powi(2),
        Activation::Relu => (z > 0.0) as i32 as f64,
        Activation::LeakyRelu => {
            if z > 0.0 {
                1.0
            } else {
                0.01
            }
        }
        Activation::Elu => {
            if z > 0.0 {
                1.0
            } else {
                z.exp()
            }
        }
        Activation::Softplus => 1.0 / (1.0 + (-z).exp()),
        Activation::Gelu => {
            let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            0.5 * (1.0 + erf64(z / std::f64::consts::SQRT_2)) + z * pdf
        }
    }
}

fn erf64(x: f64) -> f64 {
    if x.abs() > 4.0 {
        return x.signum();
    }
    let (mut term, mut sum, x2) = (x, x, x * x);
    for n in 1..200 {
        term *= -x2 / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

/// (mean reconstruction loss of `input` against `target`, penalty) in f64.
fn objective(net: &Network, p: &[f64], input: &[f32], target: &[f32], rows: usize) -> (f64, f64) {
    let spec = net.spec();
    let reg = &spec.regularization;
    let n_enc = net.n_encoder_layers();
    let layers = net.layers();
    let sparse = reg.sparse_mask(n_enc - 1, layers.len() - 1);
    let mut h: Vec<f64> = input[..rows * spec.input_dim].iter().map(|&v| v as f64).collect();
    let mut penalty = 0.0;
    let mut last_z = Vec::new();
    for (li, l) in layers.iter().enumerate() {
        let w = |i: usize, j: usize| if l.tied { p[l.w + j * l.n_in + i] } else { p[l.w + i * l.n_out + j] };
        let mut z = vec![0f64; rows * l.n_out];
        for r in 0..rows {
            for j in 0..l.n_out {
                let mut s = p[l.b + j];
                for i in 0..l.n_in {
                    s += h[r * l.n_in + i] * w(i, j);
                }
                z[r * l.n_out + j] = s;
            }
        }
        let y: Vec<f64> = z.iter().map(|&v| act64(l.activation, v)).collect();
        if li < n_enc && reg.contractive > 0.0 {
            let mut c = 0.0;
            for j in 0..l.n_out {
                let sj: f64 = (0..l.n_in).map(|i| w(i, j).powi(2)).sum();
                for r in 0..rows {
                    c += deriv64(l.activation, z[r * l.n_out + j]).powi(2) * sj;
                }
            }
            penalty += reg.contractive as f64 * c / rows as f64;
        }
        if li + 1 < layers.len() && sparse[li] {
            match reg.sparsity {
                Sparsity::Kl { rho, beta } => {
                    let rho = rho as f64;
                    for j in 0..l.n_out {
                        let m = (0..rows).map(|r| y[r * l.n_out + j]).sum::<f64>() / rows as f64;
                        penalty += beta as f64 * (rho * (rho / m).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - m)).ln());
                    }
                }
                Sparsity::L1 { lambda } => {
                    penalty += lambda as f64 * y.iter().map(|v| v.abs()).sum::<f64>() / rows as f64
                }
                Sparsity::None => {}
            }
        }
        last_z = z;
        h = y;
    }
    let count = rows * spec.input_dim;
    let recon: f64 = match spec.loss {
        Loss::Mse => h.iter().zip(target).map(|(y, &t)| (y - t as f64).powi(2)).sum(),
        Loss::BinaryCrossEntropy => {
            last_z.iter().zip(target).map(|(&z, &t)| z.max(0.0) + (-z.abs()).exp().ln_1p() - t as f64 * z).sum()
        }
        // The penalties are checked with MSE and BCE (the other losses in tests/gradcheck.rs).
        l => unimplemented!("reference loss {}", l.name()),
    };
    (recon / count as f64, penalty)
}

fn inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed, 99);
    (0..n).map(|_| rng.uniform()).collect()
}

/// Perturbs the initial parameters so that biases are non-zero and sparsity targets are not met.
fn network(spec: NetworkSpec) -> Network {
    let mut net = Network::new(spec).expect("spec");
    let mut rng = Rng::new(7, 98);
    let p: Vec<f32> = net.params().iter().map(|&v| v + 0.3 * (rng.uniform() - 0.5)).collect();
    net.set_params(&p).unwrap();
    net
}

/// The engine's gradient and penalty (with `noise` if given) against central differences of
/// the f64 objective of `input` (what the network saw) against `target` (the clean rows).
fn check_with(label: &str, net: &Network, input: &[f32], target: &[f32], noise: Option<StepNoise>) {
    let rows = ROWS;
    let mut ws: Workspace = net.workspace(rows).unwrap();
    let mut grads = vec![f32::NAN; net.param_count()];
    let step = net.step(target, rows, &mut ws, &mut grads, 1, noise);
    let p0: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
    let (recon, penalty) = objective(net, &p0, input, target, rows);
    let count = (rows * net.input_dim()) as f64;
    assert!(
        (step.recon_sum / count - recon).abs() <= 1e-5 * recon,
        "{label}: loss {} vs {recon}",
        step.recon_sum / count
    );
    assert!(
        (step.penalty - penalty).abs() <= 1e-5 * penalty.abs() + 1e-9,
        "{label}: penalty {} vs {penalty}",
        step.penalty
    );
    let mut p = p0.clone();
    let mut bad = Vec::new();
    let mut biggest = 0f64;
    for i in 0..p.len() {
        let h = 1e-4;
        p[i] = p0[i] + h;
        let (a, b) = objective(net, &p, input, target, rows);
        p[i] = p0[i] - h;
        let (c, d) = objective(net, &p, input, target, rows);
        p[i] = p0[i];
        let num = ((a + b) - (c + d)) / (2.0 * h);
        let ana = grads[i] as f64;
        biggest = biggest.max(num.abs());
        if (ana - num).abs() > REL_TOL * ana.abs().max(num.abs()) + ABS_TOL {
            bad.push(format!("param {i}: analytic {ana:.6e}, numerical {num:.6e}"));
        }
    }
    println!("{label}: penalty {penalty:.5e}, {} params, largest gradient {biggest:.2e}", p.len());
    assert!(bad.is_empty(), "{label}: {} entries disagree:\n  {}", bad.len(), bad[..bad.len().min(10)].join("\n  "));
    let r = &net.spec().regularization;
    if r.sparsity != Sparsity::None || r.contractive > 0.0 {
        assert!(penalty > 1e-3 * recon, "{label}: the penalty {penalty} is too small to be tested");
    }
}

fn check(label: &str, net: &Network) {
    let x = inputs(ROWS * net.input_dim(), 5);
    check_with(label, net, &x, &x, None);
}

fn reg(sparsity: Sparsity, sparse_layers: SparseLayers, contractive: f32) -> Regularization {
    Regularization { sparsity, sparse_layers, contractive, ..Regularization::default() }
}

#[test]
fn kl_sparsity_on_the_code_layer() {
    let spec = NetworkSpec {
        regularization: reg(Sparsity::Kl { rho: 0.05, beta: 0.5 }, SparseLayers::Code, 0.0),
        loss: Loss::Mse,
        ..NetworkSpec::new(7, &[], Activation::Sigmoid, 5)
    };
    check("kl code", &network(spec));
}

#[test]
fn alternate_kl_sparsity_on_a_deep_sigmoid_autoencoder() {
    for start in [0, 1] {
        let spec = NetworkSpec {
            regularization: reg(Sparsity::Kl { rho: 0.1, beta: 0.3 }, SparseLayers::Alternate { start }, 0.0),
            ..NetworkSpec::new(6, &[5, 4], Activation::Sigmoid, 3)
        };
        let net = network(spec);
        let mask = net.spec().regularization.sparse_mask(2, 5);
        assert_eq!(mask, if start == 0 { [true, false, true, false, true] } else { [false, true, false, true, false] });
        check(&format!("alternate kl from {start}"), &net);
    }
}

#[test]
fn l1_activity_on_listed_layers() {
    let spec = NetworkSpec {
        regularization: reg(Sparsity::L1 { lambda: 0.02 }, SparseLayers::Layers(vec![0, 2]), 0.0),
        loss: Loss::Mse,
        output_activation: Activation::Identity,
        ..NetworkSpec::new(6, &[5], Activation::Tanh, 3)
    };
    check("l1 layers 0, 2", &network(spec));
}

#[test]
fn contractive_penalty_for_every_smooth_activation() {
    use Activation::*;
    for act in [Sigmoid, Tanh, Softplus, Elu, Gelu, Identity] {
        let spec = NetworkSpec {
            regularization: reg(Sparsity::None, SparseLayers::Code, 0.05),
            ..NetworkSpec::new(6, &[5], act, 3)
        };
        check(&format!("contractive {}", act.name()), &network(spec));
    }
}

#[test]
fn contractive_penalty_for_relu_layers_away_from_the_kink() {
    for act in [Activation::Relu, Activation::LeakyRelu] {
        let spec = NetworkSpec {
            regularization: reg(Sparsity::None, SparseLayers::Code, 0.05),
            loss: Loss::Mse,
            output_activation: Activation::Identity,
            ..NetworkSpec::new(6, &[5], act, 3)
        };
        // A step of 1e-4 crossing a kink would show as a mismatch (none at this seed).
        check(&format!("contractive {}", act.name()), &network(spec));
    }
}

#[test]
fn all_penalties_together_with_tied_weights() {
    let spec = NetworkSpec {
        tied_weights: true,
        regularization: reg(Sparsity::Kl { rho: 0.2, beta: 0.2 }, SparseLayers::Layers(vec![0, 1, 2]), 0.03),
        ..NetworkSpec::new(7, &[5], Activation::Sigmoid, 4)
    };
    check("tied kl + contractive", &network(spec));
}

#[test]
fn denoising_step_takes_the_loss_against_the_clean_input() {
    for corruption in [
        Corruption::Masking { level: 0.3 },
        Corruption::Gaussian { sigma: 0.2 },
        Corruption::SaltPepper { fraction: 0.3 },
    ] {
        let spec = NetworkSpec {
            regularization: Regularization { corruption, ..Regularization::default() },
            ..NetworkSpec::new(8, &[6], Activation::Tanh, 3)
        };
        let net = network(spec);
        let x = inputs(ROWS * 8, 11);
        let lo = vec![-0.5f32; 8];
        let hi = vec![2.0f32; 8];
        // The corrupted input the step will see: the same stream, drawn the same way.
        let mut corrupted = vec![0f32; x.len()];
        let draws = StepDraws::whole(3, 1, ROWS);
        corruption.apply(&x, 8, Some((&lo, &hi)), draws.stream(0), 0, &mut corrupted);
        let changed = x.iter().zip(&corrupted).filter(|(a, b)| a != b).count();
        assert!(changed > x.len() / 10, "{}: only {changed} components changed", corruption.name());
        if let Corruption::SaltPepper { .. } = corruption {
            assert!(corrupted.iter().zip(&x).all(|(c, v)| c == v || *c == -0.5 || *c == 2.0));
        }
        let ids: Vec<usize> = (0..ROWS).collect();
        let noise = StepNoise { draws, row_ids: &ids, feature_range: Some((&lo, &hi)) };
        check_with(&format!("denoising {}", corruption.name()), &net, &corrupted, &x, Some(noise));
    }
}

#[test]
fn masking_zeroes_the_expected_fraction() {
    let x = vec![1.0f32; 100_000];
    let mut out = vec![0f32; x.len()];
    Corruption::Masking { level: 0.3 }.apply(&x, 100, None, Philox::new(1, 1), 0, &mut out);
    let zeros = out.iter().filter(|&&v| v == 0.0).count() as f64 / x.len() as f64;
    assert!((zeros - 0.3).abs() < 0.01, "{zeros}");
    let mut g = vec![0f32; x.len()];
    Corruption::Gaussian { sigma: 0.5 }.apply(&x, 100, None, Philox::new(1, 1), 0, &mut g);
    let var = g.iter().map(|v| ((v - 1.0) as f64).powi(2)).sum::<f64>() / x.len() as f64;
    assert!((var - 0.25).abs() < 0.01, "{var}");
}

#[test]
fn code_noise_is_fixed_per_row_and_only_in_training_steps() {
    let spec = NetworkSpec {
        regularization: Regularization { code_noise: 4.0, ..Regularization::default() },
        ..NetworkSpec::new(8, &[6], Activation::Sigmoid, 4)
    };
    let net = network(spec);
    let x = inputs(ROWS * 8, 2);
    let mut ws = net.workspace(ROWS).unwrap();
    let mut g = vec![0f32; net.param_count()];
    let mut run = |ids: &[usize], seed: u64| {
        let noise = StepNoise { draws: StepDraws::whole(seed, 1, ROWS), row_ids: ids, feature_range: None };
        let loss = net.step(&x, ROWS, &mut ws, &mut g, 1, Some(noise)).recon_sum;
        (loss, ws.output(1)[..ROWS * 4].to_vec())
    };
    let ids: Vec<usize> = (10..10 + ROWS).collect();
    let (a, code_a) = run(&ids, 1);
    let (b, code_b) = run(&ids, 1);
    assert_eq!(a.to_bits(), b.to_bits());
    assert_eq!(code_a, code_b);
    let (c, _) = run(&ids, 2);
    assert_ne!(a, c, "another seed gives other noise");
    // Row 10's noise is its own: at another position in the batch it is the same.
    let mut swapped = ids.clone();
    swapped.swap(0, 1);
    let (_, code_s) = run(&swapped, 1);
    assert_ne!(code_s[..4], code_a[..4]);
    // sigma 4 saturates a sigmoid code: most codes are near 0 or 1.
    let binary = code_a.iter().filter(|&&c| !(0.1..=0.9).contains(&c)).count();
    assert!(binary * 2 > code_a.len(), "{binary} of {} codes saturated", code_a.len());
    // Inference and plain steps see no noise.
    let plain = net.forward_backward(&x, ROWS, &mut ws, &mut g, 1);
    assert_ne!(plain, a);
    let mean = net.loss(&latent::Matrix::from_vec(ROWS, 8, x.clone()).unwrap()).unwrap();
    assert!((plain / (ROWS * 8) as f64 - mean).abs() < 1e-6);
}

#[test]
fn kl_sparsity_needs_sigmoid_layers_and_indices_must_exist() {
    let bad = |r: Regularization, act: Activation| {
        let e = Network::new(NetworkSpec { regularization: r, ..NetworkSpec::new(6, &[5], act, 3) }).unwrap_err();
        assert_eq!(e.status(), latent::error::status::INVALID_ARGUMENT, "{e}");
        e.to_string()
    };
    let kl = Sparsity::Kl { rho: 0.05, beta: 1.0 };
    assert!(bad(reg(kl, SparseLayers::Code, 0.0), Activation::Relu).contains("hidden layer 1 is relu"));
    assert!(
        bad(reg(kl, SparseLayers::Layers(vec![3]), 0.0), Activation::Sigmoid).contains("sparse layer 3 does not exist")
    );
    assert!(
        bad(reg(kl, SparseLayers::Alternate { start: 3 }, 0.0), Activation::Sigmoid)
            .contains("starts at hidden layer 3")
    );
    assert!(
        bad(reg(Sparsity::Kl { rho: 1.0, beta: 1.0 }, SparseLayers::Code, 0.0), Activation::Sigmoid).contains("rho")
    );
    assert!(bad(reg(Sparsity::None, SparseLayers::Code, -1.0), Activation::Sigmoid).contains("contractive"));
    let r = Regularization { corruption: Corruption::Masking { level: 1.5 }, ..Regularization::default() };
    assert!(bad(r, Activation::Sigmoid).contains("[0, 1]"));
    // L1 has no range restriction.
    Network::new(NetworkSpec {
        regularization: reg(Sparsity::L1 { lambda: 1.0 }, SparseLayers::Code, 0.0),
        ..NetworkSpec::new(6, &[5], Activation::Relu, 3)
    })
    .unwrap();
}

#[test]
fn encoder_jacobian_norms_match_finite_differences_and_the_closed_form() {
    // Deep: central differences of encode() in f32 (step 1e-2, smooth activations).
    let net = network(NetworkSpec {
        encoder: vec![latent::LayerSpec::new(7, Activation::Tanh), latent::LayerSpec::new(5, Activation::Softplus)],
        ..NetworkSpec::new(6, &[], Activation::Sigmoid, 3)
    });
    let x = inputs(4 * 6, 21);
    let xm = latent::Matrix::from_vec(4, 6, x.clone()).unwrap();
    let norms = net.encoder_jacobian_norms(&xm).unwrap();
    for r in 0..4 {
        let mut sq = 0f64;
        for i in 0..6 {
            let mut a = x[r * 6..(r + 1) * 6].to_vec();
            let mut b = a.clone();
            a[i] += 1e-2;
            b[i] -= 1e-2;
            let ca = net.encode(&latent::Matrix::from_vec(1, 6, a).unwrap()).unwrap();
            let cb = net.encode(&latent::Matrix::from_vec(1, 6, b).unwrap()).unwrap();
            for j in 0..3 {
                sq += (((ca.as_slice()[j] - cb.as_slice()[j]) / 2e-2) as f64).powi(2);
            }
        }
        let fd = sq.sqrt();
        assert!((norms[r] - fd).abs() < 2e-3 * fd, "row {r}: {} vs {fd}", norms[r]);
    }
    // Shallow sigmoid: ||J||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2, the contractive penalty
    // of one row with lambda = 1.
    let net = network(NetworkSpec {
        regularization: reg(Sparsity::None, SparseLayers::Code, 1.0),
        ..NetworkSpec::new(6, &[], Activation::Sigmoid, 4)
    });
    let norms = net.encoder_jacobian_norms(&xm).unwrap();
    let p0: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
    for r in 0..4 {
        let row = &x[r * 6..(r + 1) * 6];
        let (_, pen) = objective(&net, &p0, row, row, 1);
        assert!((norms[r] * norms[r] - pen).abs() < 1e-5 * pen, "row {r}: {} vs {pen}", norms[r] * norms[r]);
    }
}

#[test]
fn jacobian_norms_through_the_c_api() {
    use latent::ffi::*;
    let net = network(NetworkSpec::new(6, &[5], Activation::Tanh, 3));
    let x = inputs(3 * 6, 4);
    let want = net.encoder_jacobian_norms(&latent::Matrix::from_vec(3, 6, x.clone()).unwrap()).unwrap();
    let handle = Box::into_raw(Box::new(latent::ffi::network::latent_network_from(net)));
    let mut got = [0f64; 3];
    unsafe {
        assert_eq!(latent_network_jacobian_norms(handle, x.as_ptr(), 3, 6, got.as_mut_ptr(), 3), LATENT_STATUS_OK);
        assert_eq!(got.to_vec(), want);
        assert_eq!(
            latent_network_jacobian_norms(handle, x.as_ptr(), 3, 6, got.as_mut_ptr(), 2),
            LATENT_STATUS_BUFFER_TOO_SMALL
        );
        assert_eq!(
            latent_network_jacobian_norms(handle, x.as_ptr(), 2, 9, got.as_mut_ptr(), 3),
            LATENT_STATUS_SHAPE_MISMATCH
        );
        latent_network_free(handle);
    }
}
