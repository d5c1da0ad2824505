//! Stochastic units: binary (Bernoulli, straight-through) and Gaussian-noise hidden layers.
//! The training step's gradient must be the straight-through one: the exact gradient of the
//! surrogate network in which each stochastic layer passes on mean(z) + c, with c = the drawn
//! sample minus the mean held fixed. That surrogate is evaluated here in f64 from the documented
//! conventions and differentiated by central differences.

mod common;

use latent::data::{Dataset, Scaling};
use latent::error::status;
use latent::layer::Stochastic;
use latent::network::StepNoise;
use latent::rng::{Rng, StepDraws};
use latent::{Activation, LayerSpec, Loss, Matrix, Network, NetworkSpec, TrainConfig, Trainer};

const ROWS: usize = 8;

fn act64(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Identity => z,
        other => panic!("not used here: {other:?}"),
    }
}

fn spec() -> NetworkSpec {
    NetworkSpec {
        encoder: vec![LayerSpec::new(5, Activation::Sigmoid).with(Stochastic::Bernoulli)],
        code: LayerSpec::new(3, Activation::Tanh).with(Stochastic::Gaussian { sigma: 0.3 }),
        loss: Loss::BinaryCrossEntropy,
        seed: 5,
        ..NetworkSpec::new(6, &[], Activation::Sigmoid, 3)
    }
}

fn inputs(n: usize) -> Vec<f32> {
    let mut rng = Rng::new(1, 50);
    (0..n).map(|_| 0.05 + 0.9 * rng.uniform()).collect()
}

/// Mean BCE of the surrogate: layer i passes on act(z_i) + c_i (c_i empty: deterministic).
fn surrogate(net: &Network, p: &[f64], x: &[f32], c: &[Vec<f32>]) -> f64 {
    let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut z_out = Vec::new();
    for (li, l) in net.layers().iter().enumerate() {
        let w = |i: usize, j: usize| if l.tied { p[l.w + j * l.n_in + i] } else { p[l.w + i * l.n_out + j] };
        let mut next = vec![0f64; ROWS * l.n_out];
        let mut z = vec![0f64; ROWS * l.n_out];
        for r in 0..ROWS {
            for j in 0..l.n_out {
                let s = p[l.b + j] + (0..l.n_in).map(|i| h[r * l.n_in + i] * w(i, j)).sum::<f64>();
                z[r * l.n_out + j] = s;
                let shift = c[li].get(r * l.n_out + j).map_or(0.0, |&v| v as f64);
                next[r * l.n_out + j] = act64(l.activation, s) + shift;
            }
        }
        h = next;
        z_out = z;
    }
    let t = x;
    z_out.iter().zip(t).map(|(&z, &t)| z.max(0.0) + (-z.abs()).exp().ln_1p() - t as f64 * z).sum::<f64>()
        / (ROWS * 6) as f64
}

#[test]
fn training_step_gradient_is_straight_through() {
    let net = Network::new(spec()).unwrap();
    let x = inputs(ROWS * 6);
    let mut ws = net.workspace(ROWS).unwrap();
    let mut grads = vec![f32::NAN; net.param_count()];
    let ids: Vec<usize> = (0..ROWS).collect();
    let noise = StepNoise { draws: StepDraws::whole(9, 1, ROWS), row_ids: &ids, feature_range: None };
    net.step(&x, ROWS, &mut ws, &mut grads, 1, Some(noise));
    // The draws: binary for layer 0, noisy for layer 1; c = sample - mean.
    let s0 = ws.passed_on(0)[..ROWS * 5].to_vec();
    assert!(s0.iter().all(|&v| v == 0.0 || v == 1.0) && s0.contains(&1.0) && s0.contains(&0.0));
    let c: Vec<Vec<f32>> = (0..net.layers().len())
        .map(|i| {
            let n = ROWS * net.layers()[i].n_out;
            if net.layers()[i].stochastic.is_none() {
                Vec::new()
            } else {
                ws.passed_on(i)[..n].iter().zip(&ws.output(i)[..n]).map(|(s, m)| s - m).collect()
            }
        })
        .collect();
    assert_eq!(c.iter().filter(|v| !v.is_empty()).count(), 3, "encoder, code and the mirrored decoder layer sample");
    let p0: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
    let mut p = p0.clone();
    let mut worst = 0f64;
    for i in 0..p.len() {
        let h = 1e-5;
        p[i] = p0[i] + h;
        let a = surrogate(&net, &p, &x, &c);
        p[i] = p0[i] - h;
        let b = surrogate(&net, &p, &x, &c);
        p[i] = p0[i];
        let num = (a - b) / (2.0 * h);
        let ana = grads[i] as f64;
        let err = (ana - num).abs() / (1e-3 * ana.abs().max(num.abs()) + 2e-6);
        worst = worst.max(err);
        assert!(err <= 1.0, "param {i}: analytic {ana:.6e}, straight-through numerical {num:.6e}");
    }
    println!("straight-through gradient: worst {:.0}% of the tolerance", 100.0 * worst);
    // Without noise (validation, gradient checks) the layers pass on their means: the same step
    // as a deterministic network, bit for bit.
    let plain_spec = NetworkSpec {
        encoder: vec![LayerSpec::new(5, Activation::Sigmoid)],
        code: LayerSpec::new(3, Activation::Tanh),
        ..spec()
    };
    let plain = Network::from_params(plain_spec, net.params()).unwrap();
    let (mut g1, mut g2) = (vec![0f32; net.param_count()], vec![0f32; net.param_count()]);
    let l1 = net.forward_backward(&x, ROWS, &mut ws, &mut g1, 1);
    let mut ws2 = plain.workspace(ROWS).unwrap();
    let l2 = plain.forward_backward(&x, ROWS, &mut ws2, &mut g2, 1);
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert_eq!(g1, g2);
}

#[test]
fn samples_have_the_right_distribution() {
    let net = Network::new(spec()).unwrap();
    let rows = 4000;
    let x = Matrix::from_vec(rows, 6, (0..rows * 6).map(|i| ((i * 13 % 17) as f32) / 16.0).collect()).unwrap();
    let mut ws = net.workspace(rows).unwrap();
    let mut g = vec![0f32; net.param_count()];
    let ids: Vec<usize> = (0..rows).collect();
    let noise = StepNoise { draws: StepDraws::whole(2, 1, rows), row_ids: &ids, feature_range: None };
    net.step(x.as_slice(), rows, &mut ws, &mut g, 1, Some(noise));
    let n0 = rows * 5;
    let (m_s, m_p) = (
        ws.passed_on(0)[..n0].iter().map(|&v| v as f64).sum::<f64>() / n0 as f64,
        ws.output(0)[..n0].iter().map(|&v| v as f64).sum::<f64>() / n0 as f64,
    );
    assert!((m_s - m_p).abs() < 0.01, "Bernoulli samples' mean {m_s} vs probabilities' {m_p}");
    let n1 = rows * 3;
    let d: Vec<f64> = ws.passed_on(1)[..n1].iter().zip(&ws.output(1)[..n1]).map(|(s, m)| (s - m) as f64).collect();
    let mean = d.iter().sum::<f64>() / n1 as f64;
    let sd = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n1 as f64).sqrt();
    assert!(mean.abs() < 0.01 && (sd - 0.3).abs() < 0.01, "Gaussian noise mean {mean}, sd {sd}");
}

#[test]
fn inference_passes_means_unless_switched_to_sampling() {
    let mut net = Network::new(NetworkSpec {
        code: LayerSpec::new(16, Activation::Sigmoid).with(Stochastic::Bernoulli),
        ..NetworkSpec::new(10, &[12], Activation::Sigmoid, 16)
    })
    .unwrap();
    let x = Matrix::from_vec(300, 10, inputs(3000)).unwrap();
    let means = net.encode(&x).unwrap();
    assert!(means.as_slice().iter().any(|&v| v > 0.0 && v < 1.0));
    net.set_stochastic_inference(Some(7));
    let a = net.encode(&x).unwrap();
    assert!(a.as_slice().iter().all(|&v| v == 0.0 || v == 1.0));
    assert_eq!(a.as_slice(), net.encode(&x).unwrap().as_slice(), "the same seed repeats the draws");
    let mean_a = a.as_slice().iter().map(|&v| v as f64).sum::<f64>() / a.as_slice().len() as f64;
    let mean_p = means.as_slice().iter().map(|&v| v as f64).sum::<f64>() / means.as_slice().len() as f64;
    assert!((mean_a - mean_p).abs() < 0.03, "{mean_a} vs {mean_p}");
    net.set_stochastic_inference(Some(8));
    assert_ne!(a.as_slice(), net.encode(&x).unwrap().as_slice());
    // Reconstructions go through the samples too; back to means when switched off.
    net.set_stochastic_inference(None);
    assert_eq!(means.as_slice(), net.encode(&x).unwrap().as_slice());
}

#[test]
fn bad_stochastic_settings_are_invalid() {
    let bad = |l: LayerSpec| Network::new(NetworkSpec { code: l, ..NetworkSpec::new(6, &[4], Activation::Relu, 3) });
    let e = bad(LayerSpec::new(3, Activation::Relu).with(Stochastic::Bernoulli)).unwrap_err();
    assert_eq!(e.status(), status::INVALID_ARGUMENT);
    assert!(e.to_string().contains("sigmoid"), "{e}");
    let e = bad(LayerSpec::new(3, Activation::Relu).with(Stochastic::Gaussian { sigma: -1.0 })).unwrap_err();
    assert_eq!(e.status(), status::INVALID_ARGUMENT);
    bad(LayerSpec::new(3, Activation::Relu).with(Stochastic::Gaussian { sigma: 0.5 })).unwrap();
}

#[test]
fn stochastic_networks_round_trip_through_the_model_file() {
    let net = Network::new(spec()).unwrap();
    let back = latent::model_file::from_bytes(&latent::model_file::to_bytes(&net)).unwrap();
    assert_eq!(back.spec(), net.spec());
    assert!(back.describe().contains("binary stochastic") && back.describe().contains("gaussian noise sigma 0.3"));
}

/// A binary stochastic code trained on MNIST: its codes become nearly binary on their own, and
/// the reconstructions from sampled codes stay close to those from the means.
#[test]
fn binary_stochastic_code_learns_on_mnist() {
    let Some(dir) = common::data_dir("mnist") else { return };
    let mut d = Dataset::from_idx(dir.join("train-images-idx3-ubyte.gz"), None).unwrap();
    d.scale(Scaling::Divide255).unwrap();
    let idx: Vec<usize> = (0..8000).collect();
    let train = d.x().gather_rows(&idx);
    let test = d.x().gather_rows(&(8000..9000).collect::<Vec<_>>());
    let spec = NetworkSpec {
        code: LayerSpec::new(64, Activation::Sigmoid).with(Stochastic::Bernoulli),
        loss: Loss::BinaryCrossEntropy,
        seed: 3,
        ..NetworkSpec::new(784, &[256], Activation::Relu, 64)
    };
    let mut net = Network::new(spec).unwrap();
    let mut t = Trainer::new(TrainConfig { epochs: 5, learning_rate: 2e-3, threads: 2, ..Default::default() }).unwrap();
    t.fit(&mut net, &train, None, None).unwrap();
    let h: Vec<f64> = t.history().iter().map(|r| r.train_loss).collect();
    let codes = net.encode(&test).unwrap();
    let binary =
        codes.as_slice().iter().filter(|&&v| !(0.1..=0.9).contains(&v)).count() as f64 / codes.as_slice().len() as f64;
    let mean_err = net.mean_squared_error(&test).unwrap() * 784.0;
    net.set_stochastic_inference(Some(1));
    let sampled_err = net.mean_squared_error(&test).unwrap() * 784.0;
    eprintln!(
        "binary stochastic code: train loss per epoch {h:.4?}; {:.0}% of test code values within 0.1 of 0/1; squared error per image {mean_err:.2} (means), {sampled_err:.2} (sampled codes)",
        100.0 * binary
    );
    assert!(h[4] < 0.8 * h[0], "{h:?}");
    assert!(binary > 0.6, "{binary}");
    assert!(sampled_err < 1.3 * mean_err, "{sampled_err} vs {mean_err}");
}

#[test]
fn stochastic_layers_through_the_c_api() {
    use latent::ffi::*;
    let enc = [8u32];
    let enc_st = [LATENT_STOCHASTIC_GAUSSIAN];
    let mut p = latent_network_params_default();
    p.input_dim = 6;
    p.n_encoder = 1;
    p.encoder_units = enc.as_ptr();
    p.encoder_stochastic = enc_st.as_ptr();
    p.stochastic_sigma = 0.2;
    p.code_units = 4;
    p.code_activation = LATENT_ACTIVATION_SIGMOID;
    p.code_stochastic = LATENT_STOCHASTIC_BERNOULLI;
    let x = inputs(5 * 6);
    let mut codes = [0f32; 20];
    unsafe {
        let mut net = std::ptr::null_mut();
        assert_eq!(latent_network_new(&p, &mut net), LATENT_STATUS_OK);
        assert_eq!(latent_network_encode(net, x.as_ptr(), 5, 6, codes.as_mut_ptr(), 20), LATENT_STATUS_OK);
        assert!(codes.iter().any(|&c| c > 0.0 && c < 1.0), "means by default");
        assert_eq!(latent_network_set_stochastic_inference(net, 1, 42), LATENT_STATUS_OK);
        assert_eq!(latent_network_encode(net, x.as_ptr(), 5, 6, codes.as_mut_ptr(), 20), LATENT_STATUS_OK);
        assert!(codes.iter().all(|&c| c == 0.0 || c == 1.0), "binary samples: {codes:?}");
        assert_eq!(latent_network_set_stochastic_inference(net, 2, 42), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_network_set_stochastic_inference(std::ptr::null_mut(), 1, 0), LATENT_STATUS_NULL_ARGUMENT);
        latent_network_free(net);
        let mut bad = p;
        bad.code_stochastic = 7;
        assert_eq!(latent_network_new(&bad, &mut net), LATENT_STATUS_INVALID_ARGUMENT);
        bad.code_stochastic = LATENT_STOCHASTIC_BERNOULLI;
        bad.code_activation = LATENT_ACTIVATION_TANH;
        assert_eq!(latent_network_new(&bad, &mut net), LATENT_STATUS_INVALID_ARGUMENT);
        let mut bad = p;
        bad.stochastic_sigma = -0.5;
        assert_eq!(latent_network_new(&bad, &mut net), LATENT_STATUS_INVALID_ARGUMENT);
        bad.stochastic_sigma = f64::NAN;
        assert_eq!(latent_network_new(&bad, &mut net), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(net.is_null());
    }
}
