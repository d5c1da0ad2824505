//! Recirculation (src/train/recirculation.rs, Hinton & McClelland 1988): the update against a
//! hand computation of the paper's equations, the networks and settings it refuses, training
//! on the 8x8 digits against plain gradient descent, the alignment of its updates with the
//! negative gradient of the reconstruction error, and the C call against the Rust one.

mod common;

use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};

use latent::data::CsvOptions;
use latent::ffi::*;
use latent::rng::Rng;
use latent::train::recirculation::{self, RecirculationConfig};
use latent::{
    Activation, Dataset, Error, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig,
    Trainer,
};

fn digits() -> Option<Matrix> {
    let dir = common::data_dir("digits")?;
    let d = Dataset::from_csv(dir.join("digits.csv.gz"), &CsvOptions { label_column: Some(64), ..Default::default() })
        .unwrap();
    let v = d.x().as_slice().iter().map(|v| v / 16.0).collect();
    Some(Matrix::from_vec(d.rows(), 64, v).unwrap())
}

/// A one-hidden-layer autoencoder input -> `hidden` -> input, sigmoid units, MSE loss.
fn shallow(input: usize, hidden: usize, output: Activation, seed: u64) -> Network {
    let mut spec = NetworkSpec::new(input, &[], Activation::Sigmoid, hidden);
    spec.output_activation = output;
    spec.loss = Loss::Mse;
    spec.seed = seed;
    Network::new(spec).unwrap()
}

fn cos(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let na: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    d / (na * nb)
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

/// The paper's equations written out in f64, unit by unit, against [`recirculation::update`].
#[test]
fn update_matches_the_papers_equations_computed_by_hand() {
    let mut rng = Rng::new(5, 1);
    for output in [Activation::Sigmoid, Activation::Identity] {
        let (n, m, rows, lambda) = (5, 3, 4, 0.75f64);
        let net = shallow(n, m, output, 8);
        let x = common::random_matrix(rows, n, 0.0, 1.0, &mut rng);
        let got = recirculation::update(&net, &x, lambda as f32).unwrap();
        let (e, d) = (&net.layers()[0], &net.layers()[1]);
        let p: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
        let w = |i: usize, j: usize| p[e.w + i * m + j]; // input i -> hidden j
        let v = |j: usize, i: usize| p[d.w + j * n + i]; // hidden j -> output i
        let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
        let g = |z: f64| if output == Activation::Sigmoid { sig(z) } else { z };
        let mut want = vec![0f64; net.param_count()];
        for r in 0..rows {
            let x0: Vec<f64> = x.row(r).iter().map(|&a| a as f64).collect();
            let h1: Vec<f64> = (0..m).map(|j| sig((0..n).map(|i| x0[i] * w(i, j)).sum::<f64>() + p[e.b + j])).collect();
            let x2: Vec<f64> = (0..n)
                .map(|i| lambda * x0[i] + (1.0 - lambda) * g((0..m).map(|j| h1[j] * v(j, i)).sum::<f64>() + p[d.b + i]))
                .collect();
            let h3: Vec<f64> = (0..m)
                .map(|j| {
                    lambda * h1[j] + (1.0 - lambda) * sig((0..n).map(|i| x2[i] * w(i, j)).sum::<f64>() + p[e.b + j])
                })
                .collect();
            for j in 0..m {
                for i in 0..n {
                    // Visible unit i: presynaptic hidden state at time 1, times x_i(0) - x_i(2).
                    want[d.w + j * n + i] += h1[j] * (x0[i] - x2[i]) / rows as f64;
                    // Hidden unit j: presynaptic visible state at time 2, times h_j(1) - h_j(3).
                    want[e.w + i * m + j] += x2[i] * (h1[j] - h3[j]) / rows as f64;
                }
                want[e.b + j] += (h1[j] - h3[j]) / rows as f64;
            }
            for i in 0..n {
                want[d.b + i] += (x0[i] - x2[i]) / rows as f64;
            }
        }
        let worst = got.iter().zip(&want).map(|(&a, &b)| (a as f64 - b).abs()).fold(0f64, f64::max);
        let scale = want.iter().map(|a| a.abs()).fold(0f64, f64::max);
        eprintln!("{}: largest difference {worst:.2e} (largest update {scale:.2e})", output.name());
        // Measured: 1.9e-8 and 2.8e-8 on updates up to 0.11 and 0.28 (f32 against f64).
        assert!(worst <= 1e-6, "{worst:.2e}");
    }
}

#[test]
fn refuses_what_it_cannot_train_and_bad_settings() {
    let x = Matrix::from_vec(2, 6, vec![0.5; 12]).unwrap();
    let cfg = RecirculationConfig { epochs: 1, ..Default::default() };
    let refused = |mut net: Network, needle: &str| match recirculation::fit(&mut net, &x, &cfg) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    };
    refused(Network::new(NetworkSpec::new(6, &[5], Activation::Sigmoid, 3)).unwrap(), "one-hidden-layer");
    let mut tied = NetworkSpec::new(6, &[], Activation::Sigmoid, 3);
    tied.tied_weights = true;
    refused(Network::new(tied).unwrap(), "ties");
    let classifier = NetworkSpec::classifier(6, &[latent::LayerSpec::new(4, Activation::Relu)], 3).unwrap();
    refused(Network::new(classifier).unwrap(), "autoencoder");
    let mut net = shallow(6, 3, Activation::Sigmoid, 1);
    let before = net.params().to_vec();
    for bad in [
        RecirculationConfig { regression: 1.0, ..cfg },
        RecirculationConfig { regression: -0.1, ..cfg },
        RecirculationConfig { learning_rate: 0.0, ..cfg },
        RecirculationConfig { epochs: 0, ..cfg },
        RecirculationConfig { batch_size: 0, ..cfg },
    ] {
        assert!(matches!(recirculation::fit(&mut net, &x, &bad), Err(Error::InvalidArgument(_))), "{bad:?}");
    }
    let narrow = Matrix::from_vec(2, 5, vec![0.5; 10]).unwrap();
    assert!(matches!(recirculation::fit(&mut net, &narrow, &cfg), Err(Error::ShapeMismatch(_))));
    // A step too large for the data diverges, and the network is left as it was.
    let huge = Matrix::from_vec(2, 6, vec![1e30; 12]).unwrap();
    let big = RecirculationConfig { learning_rate: 1e30, ..cfg };
    assert!(matches!(recirculation::fit(&mut net, &huge, &big), Err(Error::Diverged(_))));
    assert_eq!(net.params(), before.as_slice());
}

/// A 64-16-64 sigmoid autoencoder on 1500 digits, 20 epochs of minibatches of 16 from the same
/// initial parameters: recirculation (λ = 0.75, ε = 2, the best of 0.1 to 8 by a factor-2 grid)
/// against plain gradient descent on the MSE (SGD without momentum, lr 64, the best of 0.5 to
/// 256 by factors of 2 to 4). Along the run, the cosine between the recirculation update and
/// the negative gradient of the squared reconstruction error of 200 rows.
#[test]
fn on_digits_it_nears_gradient_descent_and_follows_the_negative_gradient() {
    let Some(x) = digits() else { return };
    let train = x.slice_rows(0, 1500);
    let probe = x.slice_rows(0, 200);
    let (epochs, batch) = (20, 16);
    let net0 = shallow(64, 16, Activation::Sigmoid, 3);
    let initial = net0.mean_squared_error(&train).unwrap();

    let mut net = net0.clone();
    let cfg =
        RecirculationConfig { epochs: 1, batch_size: batch, learning_rate: 2.0, regression: 0.75, seed: 0, threads: 1 };
    let mut ws = net.workspace(probe.rows()).unwrap();
    let mut grads = vec![0f32; net.param_count()];
    let (enc, dec) = (net.layers()[0].clone(), net.layers()[1].clone());
    let (enc, dec) = (enc.w..enc.b + enc.n_out, dec.w..dec.b + dec.n_out);
    let mut cosines = Vec::new(); // (all, decoder, encoder)
    for epoch in 0..=epochs {
        let up = recirculation::update(&net, &probe, 0.75).unwrap();
        net.forward_backward(probe.as_slice(), probe.rows(), &mut ws, &mut grads, 1);
        let neg: Vec<f32> = grads.iter().map(|g| -g).collect();
        cosines.push((
            cos(&up, &neg),
            cos(&up[dec.clone()], &neg[dec.clone()]),
            cos(&up[enc.clone()], &neg[enc.clone()]),
        ));
        if epoch < epochs {
            recirculation::fit(&mut net, &train, &RecirculationConfig { seed: epoch as u64, ..cfg }).unwrap();
        }
    }
    let recirc = net.mean_squared_error(&train).unwrap();
    // How symmetric the weights are: the cosine between W (64 x 16) and Vᵀ (V is 16 x 64).
    let symmetry = |net: &Network| {
        let (e, d) = (&net.layers()[0], &net.layers()[1]);
        let p = net.params();
        let w = &p[e.w..e.w + 64 * 16];
        let vt: Vec<f32> = (0..64 * 16).map(|k| p[d.w + (k % 16) * 64 + k / 16]).collect();
        cos(w, &vt)
    };
    let (sym0, sym) = (symmetry(&net0), symmetry(&net));

    let mut gd = net0.clone();
    let sgd = OptimizerConfig { kind: OptimizerKind::Sgd, momentum: 0.0, ..Default::default() };
    let tc = TrainConfig {
        epochs,
        batch_size: batch,
        learning_rate: 64.0,
        optimizer: sgd,
        threads: 1,
        ..Default::default()
    };
    Trainer::new(tc).unwrap().fit(&mut gd, &train, None, None).unwrap();
    let descent = gd.mean_squared_error(&train).unwrap();

    let mean = |k: usize| cosines.iter().map(|c| [c.0, c.1, c.2][k]).sum::<f64>() / cosines.len() as f64;
    let (all, d, e) = (mean(0), mean(1), mean(2));
    let later_enc = cosines[1..].iter().map(|c| c.2).fold(f64::INFINITY, f64::min);
    let worst_all = cosines.iter().map(|c| c.0).fold(f64::INFINITY, f64::min);
    eprintln!(
        "digits 64-16-64, {epochs} epochs: MSE {initial:.4} -> recirculation {recirc:.4} ({:.1}x lower), gradient descent {descent:.4} (ratio {:.2}); \
         cosine with -gradient: mean {all:.3} (decoder {d:.3}, encoder {e:.3}), least {worst_all:.3}, encoder after epoch 1 at least {later_enc:.3}; at start {:.3}/{:.3}/{:.3}; cos(W, Vᵀ) {sym0:.3} -> {sym:.3}",
        initial / recirc,
        recirc / descent,
        cosines[0].0,
        cosines[0].1,
        cosines[0].2
    );
    // Measured: MSE 0.2692 -> 0.0175 (15.3x), gradient descent 0.0130 (ratio 1.35); cosine
    // mean 0.535 (decoder 0.957, encoder 0.356), least 0.427; the encoder's part starts at
    // -0.177 (independent random W and V) and is positive from the first epoch on (>= 0.117)
    // while cos(W, Vᵀ) grows from -0.008 to 0.518: the weights turn symmetric, as the paper argues.
    assert!(initial / recirc > 8.0, "recirculation lowered the MSE only from {initial:.4} to {recirc:.4}");
    assert!(recirc < 1.6 * descent, "recirculation {recirc:.4} vs gradient descent {descent:.4}");
    assert!(all > 0.3 && worst_all > 0.2, "cosine with the negative gradient: mean {all:.3}, least {worst_all:.3}");
    assert!(d > 0.85, "decoder cosine {d:.3}");
    assert!(e > 0.15 && later_enc > 0.05, "encoder cosine: mean {e:.3}, least after epoch 1 {later_enc:.3}");
    assert!(sym > sym0 + 0.2, "cos(W, Vᵀ) {sym0:.3} -> {sym:.3}");
}

/// latent_network_fit_recirculation gives the Rust fit's parameters and MSE bit for bit, and
/// refuses with the documented statuses, leaving the network as it was.
#[test]
fn c_call_matches_the_rust_fit_and_refuses_bad_input() {
    let mut rng = Rng::new(7, 3);
    let x = common::random_matrix(50, 10, 0.0, 1.0, &mut rng);
    let net = shallow(10, 4, Activation::Sigmoid, 2);
    let dir = common::scratch("recirculation_c");
    let path = dir.join("net.latent");
    latent::model_file::save(&net, &path).unwrap();
    let deep_path = dir.join("deep.latent");
    latent::model_file::save(&Network::new(NetworkSpec::new(10, &[6], Activation::Sigmoid, 3)).unwrap(), &deep_path)
        .unwrap();
    let mut rust = net.clone();
    let cfg =
        RecirculationConfig { epochs: 4, batch_size: 8, learning_rate: 1.5, regression: 0.75, seed: 9, threads: 0 };
    let report = recirculation::fit(&mut rust, &x, &cfg).unwrap();
    unsafe {
        let (cp, dp) =
            (CString::new(path.to_str().unwrap()).unwrap(), CString::new(deep_path.to_str().unwrap()).unwrap());
        let (mut h, mut deep, mut ds) = (null_mut(), null_mut(), null_mut());
        assert_eq!(latent_network_load(cp.as_ptr(), &mut h), LATENT_STATUS_OK);
        assert_eq!(latent_network_load(dp.as_ptr(), &mut deep), LATENT_STATUS_OK);
        let st = latent_dataset_from_buffer(
            x.as_slice().as_ptr().cast(),
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            50,
            10,
            &mut ds,
        );
        assert_eq!(st, LATENT_STATUS_OK);
        let mut mse = 0.0;
        assert_eq!(
            latent_network_fit_recirculation(h, ds, 4, 8, 1.5, 0.75, 9, &mut mse),
            LATENT_STATUS_OK,
            "{}",
            last_error()
        );
        assert_eq!(mse, report.final_mse());
        let mut p = vec![0f32; rust.param_count()];
        assert_eq!(latent_network_get_params(h, p.as_mut_ptr(), p.len()), LATENT_STATUS_OK);
        assert_eq!(p, rust.params());
        assert!(report.final_mse() < report.initial_mse);

        // Refusals: a two-hidden-layer network, bad settings, NULLs; the network unchanged.
        assert_eq!(
            latent_network_fit_recirculation(deep, ds, 1, 8, 1.0, 0.75, 0, &mut mse),
            LATENT_STATUS_INVALID_ARGUMENT
        );
        assert!(mse.is_nan() && last_error().contains("one-hidden-layer"), "{}", last_error());
        for (lr, reg) in [(1.0, 1.0), (1.0, f64::NAN), (0.0, 0.75), (f64::INFINITY, 0.75)] {
            assert_eq!(
                latent_network_fit_recirculation(h, ds, 1, 8, lr, reg, 0, null_mut()),
                LATENT_STATUS_INVALID_ARGUMENT
            );
        }
        assert_eq!(
            latent_network_fit_recirculation(h, ds, 0, 8, 1.0, 0.75, 0, null_mut()),
            LATENT_STATUS_INVALID_ARGUMENT
        );
        assert_eq!(
            latent_network_fit_recirculation(null_mut(), ds, 1, 8, 1.0, 0.75, 0, null_mut()),
            LATENT_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            latent_network_fit_recirculation(h, null(), 1, 8, 1.0, 0.75, 0, null_mut()),
            LATENT_STATUS_NULL_ARGUMENT
        );
        let mut narrow = null_mut();
        let st = latent_dataset_from_buffer(
            x.as_slice().as_ptr().cast(),
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            10,
            9,
            &mut narrow,
        );
        assert_eq!(st, LATENT_STATUS_OK);
        assert_eq!(
            latent_network_fit_recirculation(h, narrow, 1, 8, 1.0, 0.75, 0, null_mut()),
            LATENT_STATUS_SHAPE_MISMATCH
        );
        let mut q = vec![0f32; p.len()];
        assert_eq!(latent_network_get_params(h, q.as_mut_ptr(), q.len()), LATENT_STATUS_OK);
        assert_eq!(q, p);
        latent_dataset_free(narrow);
        latent_dataset_free(ds);
        latent_network_free(deep);
        latent_network_free(h);
    }
}
