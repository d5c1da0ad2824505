//! The exact contractive penalty of a deep encoder (src/contractive.rs, issue 17):
//! lambda * mean_rows ||d code / d x||_F^2 and its gradient against central differences of an
//! independent f64 objective, for every parameter; its equality with the per-layer penalty on
//! one-layer encoders; its value against the existing Jacobian norms; the model file's round
//! trip (format version 6); the refusals (stochastic encoder, GPU backend, C API statuses).
//!
//! The reference computes the Jacobian by *forward* mode (one tangent per input direction,
//! t_l = (t_{l-1} W_l) * f_l'(z_l)), where the engine uses reverse mode and its adjoint, so the
//! two share no code. Central differences of that f64 function (step 1e-4) are accurate to
//! ~1e-9; the tolerance is the engine's f32 arithmetic: 1e-3 relative plus 2e-6 absolute (as
//! tests/penalties.rs).
//!
//! The input layer takes one of two paths (src/contractive.rs): through its Gram matrix when it
//! narrows (6-5-4-3, tied 6-5-3, the one-layer 9-6 and 8-7-6-4 here) and through J's rows
//! otherwise (6-7-5-4-3, 6-7-5-3): both are checked.
//!
//! Checked to fail on (each tried by editing the source, 6 of 6 caught): the f'' term of the
//! hidden layers dropped (dP/dz_l += g_bar a s), the code layer's f'' term dropped, a_bar not
//! multiplied by d_l on its way up, the dW term's factor 2 halved in the Gram path and in the
//! direct path, and the per-layer penalty still added in exact mode (src/network.rs).

use latent::backend::{Cpu, DeviceNetwork};
use latent::layer::Stochastic;
use latent::model_file::{from_bytes, to_bytes};
use latent::network::Workspace;
use latent::regularizer::Regularization;
use latent::rng::Rng;
use latent::{Activation, LayerSpec, Loss, Matrix, Network, NetworkSpec};

const REL_TOL: f64 = 1e-3;
const ABS_TOL: f64 = 2e-6;
const ROWS: usize = 5;

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

/// (mean element loss, penalty) in f64: the penalty is lambda/rows sum_rows ||J||_F^2 (exact
/// mode) or lambda/rows sum_rows sum_layers ||J_l||_F^2 (per layer).
fn objective(net: &Network, p: &[f64], x: &[f32], rows: usize) -> (f64, f64) {
    let spec = net.spec();
    let reg = &spec.regularization;
    let n_enc = net.n_encoder_layers();
    let layers = net.layers();
    let d0 = spec.input_dim;
    let mut recon = 0.0;
    let mut penalty = 0.0;
    for r in 0..rows {
        let mut h: Vec<f64> = x[r * d0..(r + 1) * d0].iter().map(|&v| v as f64).collect();
        // Forward-mode tangents: tang[i] = d h / d x_i, one per input component.
        let mut tang: Vec<Vec<f64>> = (0..d0).map(|i| (0..d0).map(|j| (i == j) as i32 as f64).collect()).collect();
        let mut last_z = Vec::new();
        for (li, l) in layers.iter().enumerate() {
            let w = |i: usize, j: usize| if l.tied { p[l.w + j * l.n_in + i] } else { p[l.w + i * l.n_out + j] };
            let z: Vec<f64> =
                (0..l.n_out).map(|j| p[l.b + j] + (0..l.n_in).map(|i| h[i] * w(i, j)).sum::<f64>()).collect();
            if li < n_enc {
                let d: Vec<f64> = z.iter().map(|&z| deriv64(l.activation, z)).collect();
                if reg.contractive_exact {
                    tang = tang
                        .iter()
                        .map(|t| {
                            (0..l.n_out).map(|j| d[j] * (0..l.n_in).map(|i| t[i] * w(i, j)).sum::<f64>()).collect()
                        })
                        .collect();
                    if li + 1 == n_enc {
                        penalty += tang.iter().flatten().map(|v| v * v).sum::<f64>();
                    }
                } else {
                    for (j, dj) in d.iter().enumerate() {
                        penalty += dj * dj * (0..l.n_in).map(|i| w(i, j).powi(2)).sum::<f64>();
                    }
                }
            }
            h = z.iter().map(|&z| act64(l.activation, z)).collect();
            last_z = z;
        }
        let t = &x[r * d0..(r + 1) * d0];
        recon += match spec.loss {
            Loss::Mse => h.iter().zip(t).map(|(y, &t)| (y - t as f64).powi(2)).sum::<f64>(),
            Loss::BinaryCrossEntropy => {
                last_z.iter().zip(t).map(|(&z, &t)| z.max(0.0) + (-z.abs()).exp().ln_1p() - t as f64 * z).sum()
            }
            other => panic!("this reference covers MSE and cross-entropy, not {other:?}"),
        };
    }
    (recon / (rows * d0) as f64, reg.contractive as f64 * penalty / rows as f64)
}

fn inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed, 99);
    (0..n).map(|_| rng.uniform()).collect()
}

/// A network whose initial parameters are perturbed (non-zero biases).
fn network(spec: NetworkSpec) -> Network {
    let mut net = Network::new(spec).expect("spec");
    let mut rng = Rng::new(7, 98);
    let p: Vec<f32> = net.params().iter().map(|&v| v + 0.3 * (rng.uniform() - 0.5)).collect();
    net.set_params(&p).unwrap();
    net
}

/// network(spec) with the contractive weight scaled so that the penalty is about 0.3 x the
/// loss on the test rows (deep sigmoid Jacobians are tiny, ELU ones large).
fn balanced(mut spec: NetworkSpec) -> Network {
    let x = inputs(ROWS * spec.input_dim, 5);
    let (loss, pen, _) = step(&network(spec.clone()), &x);
    spec.regularization.contractive *= (0.3 * loss / pen) as f32;
    network(spec)
}

fn exact(lambda: f32) -> Regularization {
    Regularization { contractive: lambda, contractive_exact: true, ..Regularization::default() }
}

/// The engine's step (penalty, gradient) of `net` on rows x.
fn step(net: &Network, x: &[f32]) -> (f64, f64, Vec<f32>) {
    let mut ws: Workspace = net.workspace(ROWS).unwrap();
    let mut grads = vec![f32::NAN; net.param_count()];
    let s = net.step(x, ROWS, &mut ws, &mut grads, 1, None);
    (s.recon_sum / (ROWS * net.input_dim()) as f64, s.penalty, grads)
}

fn check(label: &str, net: &Network) {
    let x = inputs(ROWS * net.input_dim(), 5);
    let (loss, pen, grads) = step(net, &x);
    let p0: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
    let (recon, penalty) = objective(net, &p0, &x, ROWS);
    assert!((loss - recon).abs() <= 1e-5 * recon, "{label}: loss {loss} vs {recon}");
    assert!((pen - penalty).abs() <= 1e-5 * penalty, "{label}: penalty {pen} vs {penalty}");
    assert!(penalty > 1e-2 * recon, "{label}: the penalty {penalty} is too small to be tested (loss {recon})");
    let mut p = p0.clone();
    let (mut bad, mut biggest, mut worst) = (Vec::new(), 0f64, 0f64);
    for i in 0..p.len() {
        let h = 1e-4;
        p[i] = p0[i] + h;
        let (a, b) = objective(net, &p, &x, ROWS);
        p[i] = p0[i] - h;
        let (c, d) = objective(net, &p, &x, ROWS);
        p[i] = p0[i];
        let num = ((a + b) - (c + d)) / (2.0 * h);
        let ana = grads[i] as f64;
        biggest = biggest.max(num.abs());
        let err = (ana - num).abs();
        worst = worst.max(err / (num.abs() + 1e-3));
        if err > REL_TOL * ana.abs().max(num.abs()) + ABS_TOL {
            bad.push(format!("param {i}: analytic {ana:.6e}, numerical {num:.6e}"));
        }
    }
    println!(
        "{label}: penalty {penalty:.5e} (loss {recon:.4}), {} params, largest gradient {biggest:.2e}, worst error / (|g| + 1e-3) {worst:.1e}",
        p.len()
    );
    assert!(bad.is_empty(), "{label}: {} entries disagree:\n  {}", bad.len(), bad[..bad.len().min(10)].join("\n  "));
}

#[test]
fn exact_penalty_gradient_matches_finite_differences_for_deep_encoders() {
    use Activation::*;
    // Two and three encoder layers, each smooth activation (second derivatives matter), a
    // linear code layer, BCE and MSE.
    for act in [Sigmoid, Tanh, Softplus, Elu, Gelu] {
        let spec = NetworkSpec { regularization: exact(1.0), ..NetworkSpec::new(6, &[5, 4], act, 3) };
        check(&format!("exact, 6-5-4-3 {}", act.name()), &balanced(spec));
    }
    let spec = NetworkSpec {
        encoder: vec![LayerSpec::new(7, Tanh), LayerSpec::new(5, Sigmoid), LayerSpec::new(4, Softplus)],
        code: LayerSpec::new(3, Identity),
        output_activation: Identity,
        loss: Loss::Mse,
        regularization: exact(0.1),
        ..NetworkSpec::new(6, &[], Tanh, 3)
    };
    check("exact, 6-7-5-4-3 tanh/sigmoid/softplus/linear code, MSE", &network(spec));
}

#[test]
fn exact_penalty_gradient_with_tied_weights_and_relu_layers() {
    let spec = NetworkSpec {
        tied_weights: true,
        regularization: exact(0.05),
        ..NetworkSpec::new(6, &[5], Activation::Tanh, 3)
    };
    check("exact, tied 6-5-3 tanh", &network(spec));
    for act in [Activation::Relu, Activation::LeakyRelu] {
        let spec = NetworkSpec {
            regularization: exact(0.05),
            code: LayerSpec::new(3, Activation::Identity),
            output_activation: Activation::Identity,
            loss: Loss::Mse,
            ..NetworkSpec::new(6, &[7, 5], act, 3)
        };
        // A step of 1e-4 crossing a kink would show as a mismatch (none at this seed).
        check(&format!("exact, 6-7-5-3 {}", act.name()), &network(spec));
    }
}

#[test]
fn one_layer_encoders_give_the_same_penalty_and_gradient_in_both_modes() {
    use Activation::*;
    for act in [Sigmoid, Tanh, Softplus, Elu, Gelu, Identity, Relu] {
        let per_layer = NetworkSpec {
            regularization: Regularization { contractive: 0.07, ..Regularization::default() },
            ..NetworkSpec::new(9, &[], act, 6)
        };
        let a = network(per_layer.clone());
        let b = network(NetworkSpec { regularization: exact(0.07), ..per_layer });
        assert_eq!(a.params(), b.params());
        let x = inputs(ROWS * 9, 3);
        let (la, pa, ga) = step(&a, &x);
        let (lb, pb, gb) = step(&b, &x);
        assert_eq!(la, lb);
        let rel = (pa - pb).abs() / pa;
        let worst = ga.iter().zip(&gb).map(|(a, b)| (a - b).abs() / (a.abs().max(b.abs()) + 1e-6)).fold(0f32, f32::max);
        println!(
            "{}: per-layer penalty {pa:.6e}, exact {pb:.6e} (rel {rel:.1e}); worst gradient difference {worst:.1e}",
            act.name()
        );
        // Measured: rel <= 1e-7, gradients within 3e-6 relative (f32 summation order).
        assert!(rel < 1e-5, "{}: {pa} vs {pb}", act.name());
        assert!(worst < 1e-4, "{}: gradients differ by {worst}", act.name());
    }
}

#[test]
fn deep_exact_penalty_is_the_squared_jacobian_norm_and_not_the_per_layer_sum() {
    let spec = NetworkSpec { regularization: exact(0.2), ..NetworkSpec::new(8, &[7, 6], Activation::Tanh, 4) };
    let net = network(spec.clone());
    let x = inputs(ROWS * 8, 9);
    let (_, pen, _) = step(&net, &x);
    // The existing exact Jacobian norms (latent_network_jacobian_norms) of the same rows.
    let norms = net.encoder_jacobian_norms(&Matrix::from_vec(ROWS, 8, x.clone()).unwrap()).unwrap();
    let want = 0.2 * norms.iter().map(|n| n * n).sum::<f64>() / ROWS as f64;
    assert!((pen - want).abs() < 1e-5 * want, "exact penalty {pen}, from Jacobian norms {want}");
    let per_layer = network(NetworkSpec {
        regularization: Regularization { contractive: 0.2, ..Regularization::default() },
        ..spec
    });
    let (_, sum, _) = step(&per_layer, &x);
    println!("8-7-6-4 tanh: exact {pen:.5}, per-layer sum {sum:.5}");
    assert!((pen - sum).abs() > 0.1 * pen, "the two penalties should differ on a deep encoder: {pen} vs {sum}");
}

#[test]
fn the_mode_round_trips_through_the_model_file_as_version_6() {
    let deep = NetworkSpec { regularization: exact(0.25), ..NetworkSpec::new(8, &[6], Activation::Sigmoid, 3) };
    let net = network(deep.clone());
    let bytes = to_bytes(&net);
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 6);
    let back = from_bytes(&bytes).unwrap();
    assert_eq!(back.spec(), net.spec());
    assert!(back.spec().regularization.contractive_exact);
    assert_eq!(back.params(), net.params());
    assert_eq!(to_bytes(&back), bytes, "the file is canonical");
    assert!(back.describe().contains("contractive 0.25 (exact, whole encoder)"), "{}", back.describe());
    // Per layer, the same network is still version 2, and its bytes are those of before.
    let per_layer = net.with_contractive_exact(false).unwrap();
    let b2 = to_bytes(&per_layer);
    assert_eq!(u32::from_le_bytes(b2[8..12].try_into().unwrap()), 2);
    assert!(!from_bytes(&b2).unwrap().spec().regularization.contractive_exact);
    assert_eq!(b2.len() + 12 + 4 * 4 + 4, bytes.len(), "version 6 = version 2 + the task block + the mode");
    // The mode field is the section's last four bytes: 0 and 2 are refused.
    let a = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    for (mode, want) in [(0u32, "is 0, per layer"), (2, "contractive mode 2")] {
        let mut f = bytes.clone();
        f[20 + a - 4..20 + a].copy_from_slice(&mode.to_le_bytes());
        let n = f.len();
        let crc = latent::data::crc32::crc32(&f[..n - 4]);
        f[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let e = from_bytes(&f).unwrap_err().to_string();
        assert!(e.contains("bad architecture") && e.contains(want), "mode {mode}: {e}");
    }
    // A supervised or functional network keeps its version-4 block under version 6.
    let clf = Network::new(NetworkSpec {
        regularization: exact(0.1),
        ..NetworkSpec::classifier(6, &[LayerSpec::new(5, Activation::Tanh), LayerSpec::new(4, Activation::Tanh)], 3)
            .unwrap()
    })
    .unwrap();
    let back = from_bytes(&to_bytes(&clf)).unwrap();
    assert_eq!(back.spec(), clf.spec());
}

#[test]
fn stochastic_encoders_refuse_the_exact_mode() {
    let mut spec = NetworkSpec::new(8, &[6], Activation::Sigmoid, 3);
    spec.encoder[0].stochastic = Stochastic::Bernoulli;
    spec.regularization = exact(0.1);
    match Network::new(spec.clone()) {
        Err(latent::Error::InvalidArgument(m)) => assert!(m.contains("encoder layer 0 has bernoulli units"), "{m}"),
        other => panic!("exact with a stochastic encoder: {:?}", other.map(|_| ())),
    }
    spec.regularization.contractive_exact = false;
    assert!(Network::new(spec).is_ok(), "the per-layer penalty takes the means of a stochastic layer");
}

/// The exact penalty is a backend primitive (`Backend::exact_contraction`): the Cpu backend runs
/// crate::contractive's own computation, so the device network's step on it gives the CPU
/// network's gradient and a device fit follows the CPU fit; a backend without it (a GPU) is
/// asked at placement (`Backend::runs_exact_contraction`) and refuses with a status.
#[test]
fn the_exact_penalty_runs_through_the_backends_primitive() {
    use latent::{TrainConfig, Trainer};
    let spec = NetworkSpec { regularization: exact(0.1), ..NetworkSpec::new(8, &[6, 5], Activation::Tanh, 3) };
    let net = network(spec);
    let mut rng = latent::rng::Rng::new(3, 3);
    let x = latent::Matrix::from_vec(96, 8, (0..96 * 8).map(|_| rng.uniform()).collect()).unwrap();
    let cfg = TrainConfig { epochs: 3, batch_size: 16, learning_rate: 0.05, threads: 1, ..TrainConfig::default() };
    let mut cpu = net.clone();
    let mut dev = DeviceNetwork::new(Cpu::default(), net.clone()).unwrap();
    let (g_dev, g_cpu) = {
        let (l, p) = dev.forward_backward(&x).unwrap();
        let mut ws = net.workspace(96).unwrap();
        let mut g = vec![0f32; net.param_count()];
        let step = net.step(x.as_slice(), 96, &mut ws, &mut g, 1, None);
        assert!(
            (p - step.penalty).abs() <= 1e-5 * p.abs().max(1e-9) * 96.0,
            "penalty: device {p} cpu {}",
            step.penalty
        );
        assert!(l.is_finite());
        (dev.gradients().unwrap(), g)
    };
    let worst = g_dev.iter().zip(&g_cpu).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-6, "the step's gradient differs by {worst}");
    Trainer::new(cfg).unwrap().fit(&mut cpu, &x, None, None).unwrap();
    let mut dev = DeviceNetwork::new(Cpu::default(), net).unwrap();
    Trainer::new(cfg).unwrap().fit_device(&mut dev, &x, None, None).unwrap();
    let d = dev.into_network().unwrap();
    let w = cpu.params().iter().zip(d.params()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("exact penalty: step gradient difference {worst:.2e}, fit parameter difference {w:.2e}");
    assert!(w < 2e-5, "the device fit drifted from the CPU's by {w}");
}

#[test]
fn c_api_sets_and_reads_the_mode() {
    use latent::ffi::*;
    unsafe {
        let mut p = latent_network_params_default();
        let units = [6u32];
        p.input_dim = 8;
        p.n_encoder = 1;
        p.encoder_units = units.as_ptr();
        p.code_units = 3;
        p.contractive_weight = 0.1;
        let mut net = std::ptr::null_mut();
        assert_eq!(latent_network_new(&p, &mut net), LATENT_STATUS_OK);
        let mut on = -1;
        assert_eq!(latent_network_contractive_exact(net, &mut on), LATENT_STATUS_OK);
        assert_eq!(on, 0);
        assert_eq!(latent_network_set_contractive_exact(net, 1), LATENT_STATUS_OK);
        assert_eq!(latent_network_contractive_exact(net, &mut on), LATENT_STATUS_OK);
        assert_eq!(on, 1);
        assert_eq!(latent_network_set_contractive_exact(net, 2), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_network_set_contractive_exact(std::ptr::null_mut(), 1), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_network_contractive_exact(net, std::ptr::null_mut()), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_network_contractive_exact(net, &mut on), LATENT_STATUS_OK);
        assert_eq!(on, 1, "a refused call changes nothing");
        // Saved and loaded, the mode stays.
        let dir = std::env::temp_dir().join(format!("latent_cae_exact_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = std::ffi::CString::new(dir.join("exact.latent").to_str().unwrap()).unwrap();
        assert_eq!(latent_network_save(net, path.as_ptr()), LATENT_STATUS_OK);
        let mut back = std::ptr::null_mut();
        assert_eq!(latent_network_load(path.as_ptr(), &mut back), LATENT_STATUS_OK);
        let mut on2 = -1;
        assert_eq!(latent_network_contractive_exact(back, &mut on2), LATENT_STATUS_OK);
        assert_eq!(on2, 1);
        latent_network_free(back);
        latent_network_free(net);
        let _ = std::fs::remove_dir_all(&dir);
        // A stochastic encoder layer refuses it (the weight is non-zero).
        let st = [LATENT_STOCHASTIC_BERNOULLI];
        p.encoder_stochastic = st.as_ptr();
        p.hidden_activation = LATENT_ACTIVATION_SIGMOID;
        let mut snet = std::ptr::null_mut();
        assert_eq!(latent_network_new(&p, &mut snet), LATENT_STATUS_OK);
        assert_eq!(latent_network_set_contractive_exact(snet, 1), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_network_contractive_exact(snet, &mut on), LATENT_STATUS_OK);
        assert_eq!(on, 0);
        latent_network_free(snet);
    }
}
