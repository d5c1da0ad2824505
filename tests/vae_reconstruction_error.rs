//! `Vae::reconstruction_error` (DL4J's `VariationalAutoencoder.reconstructionError`): per row,
//! a loss between the row and the reconstruction at the posterior mean. It must equal the loss
//! computed by hand from `reconstruct`'s output, for every loss and every reconstruction
//! distribution; the C calls (rows and dataset forms) must give the same numbers and refuse a
//! bad loss code and out-of-domain rows; and as an anomaly score on MNIST (a VAE trained
//! without one digit class, that class against the other test digits) its AUROC is measured
//! and asserted beside the reconstruction log-probability's.

mod common;

use latent::data::{Dataset, Scaling};
use latent::distribution::{DistKind, Reconstruction};
use latent::rng::Rng;
use latent::{Activation, Loss, Matrix, OptimizerConfig, OptimizerKind, TrainConfig, Trainer, Vae, VaeSpec};

/// The loss of one row written out by hand (f64), with y the reconstruction as given.
fn by_hand(loss: Loss, y: &[f32], t: &[f32]) -> f64 {
    let n = y.len() as f64;
    let pairs = || y.iter().zip(t).map(|(&y, &t)| (y as f64, t as f64));
    let clamp = |v: f64| v.max(1e-7);
    match loss {
        Loss::Mse => pairs().map(|(y, t)| (y - t).powi(2)).sum::<f64>() / n,
        Loss::L2 => pairs().map(|(y, t)| (y - t).powi(2)).sum::<f64>(),
        Loss::Mae => pairs().map(|(y, t)| (y - t).abs()).sum::<f64>() / n,
        Loss::L1 => pairs().map(|(y, t)| (y - t).abs()).sum::<f64>(),
        Loss::BinaryCrossEntropy => {
            pairs().map(|(y, t)| -t * clamp(y).ln() - (1.0 - t) * clamp(1.0 - y).ln()).sum::<f64>() / n
        }
        Loss::Msle => pairs().map(|(y, t)| (clamp(1.0 + y).ln() - (1.0 + t).ln()).powi(2)).sum::<f64>() / n,
        Loss::Poisson => pairs().map(|(y, t)| y - t * clamp(y).ln()).sum(),
        Loss::CosineProximity => {
            let dot: f64 = pairs().map(|(y, t)| y * t).sum();
            let ny = pairs().map(|(y, _)| y * y).sum::<f64>().sqrt().max(1e-5);
            let nt = pairs().map(|(_, t)| t * t).sum::<f64>().sqrt().max(1e-5);
            -dot / (ny * nt)
        }
        Loss::KlDivergence => pairs().filter(|p| p.1 > 0.0).map(|(y, t)| t * (t / clamp(y)).ln()).sum(),
        Loss::Mcxent => pairs().filter(|p| p.1 > 0.0).map(|(y, t)| -t * clamp(y).ln()).sum(),
    }
}

fn small_vae(rec: Reconstruction, seed: u64) -> Vae {
    let mut s = VaeSpec::new(6, &[5], 3, &[5], Activation::Tanh);
    s.reconstruction = rec;
    s.seed = seed;
    Vae::new(s).unwrap()
}

#[test]
fn equals_the_loss_of_reconstruct_by_hand_for_every_loss_and_distribution() {
    let mut rng = Rng::new(4, 0);
    let x = common::random_matrix(11, 6, 0.0, 1.0, &mut rng);
    let vaes = [
        ("bernoulli", small_vae(Reconstruction::bernoulli(6), 1)),
        ("gaussian", small_vae(Reconstruction::single(DistKind::Gaussian, Activation::Identity, 6), 2)),
        (
            "gaussian, global variance",
            small_vae(Reconstruction::single(DistKind::GaussianGlobal, Activation::Sigmoid, 6), 3),
        ),
        ("exponential", small_vae(Reconstruction::single(DistKind::Exponential, Activation::Identity, 6), 4)),
        ("mse loss", small_vae(Reconstruction::single(DistKind::Mse, Activation::Sigmoid, 6), 5)),
    ];
    for (name, vae) in &vaes {
        let recon = vae.reconstruct(&x).unwrap();
        for loss in Loss::ALL {
            let got = vae.reconstruction_error(&x, loss).unwrap();
            assert_eq!(got.len(), 11);
            for (r, &g) in got.iter().enumerate() {
                let want = by_hand(loss, &recon.as_slice()[r * 6..(r + 1) * 6], &x.as_slice()[r * 6..(r + 1) * 6]);
                assert!(
                    (g - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{name}, {}, row {r}: {g} vs {want}",
                    loss.name()
                );
            }
        }
    }
    // Deterministic (z is the posterior mean, no draw) and zero rows give nothing.
    let vae = &vaes[0].1;
    assert_eq!(vae.reconstruction_error(&x, Loss::Mse).unwrap(), vae.reconstruction_error(&x, Loss::Mse).unwrap());
    assert!(vae.reconstruction_error(&Matrix::zeros(0, 6).unwrap(), Loss::Mae).unwrap().is_empty());
    // Rows outside a loss's domain are refused, the row and column named.
    let mut bad = x.clone();
    bad.as_mut_slice()[2 * 6 + 4] = -0.25;
    let e = vae.reconstruction_error(&bad, Loss::Poisson).unwrap_err().to_string();
    assert!(e.contains("row 2, column 4 is -0.25"), "{e}");
    assert!(vae.reconstruction_error(&bad, Loss::Mse).is_ok());
}

#[test]
fn the_c_calls_give_the_rust_numbers_and_refuse_bad_input() {
    use latent::ffi::*;
    let mut rng = Rng::new(8, 0);
    let x = common::random_matrix(7, 6, 0.0, 1.0, &mut rng);
    let vae = small_vae(Reconstruction::bernoulli(6), 9);
    let want = vae.reconstruction_error(&x, Loss::BinaryCrossEntropy).unwrap();
    let mut p = latent_vae_params_default();
    p.input_dim = 6;
    p.latent_dim = 3;
    let units = [5u32];
    p.n_encoder = 1;
    p.encoder_units = units.as_ptr();
    p.n_decoder = 1;
    p.decoder_units = units.as_ptr();
    p.hidden_activation = LATENT_ACTIVATION_TANH;
    p.seed = 9;
    let mut h = std::ptr::null_mut();
    let mut data = std::ptr::null_mut();
    let mut out = vec![0f64; 7];
    unsafe {
        assert_eq!(latent_vae_new(&p, &mut h), LATENT_STATUS_OK);
        let xp = x.as_slice().as_ptr();
        let s = latent_vae_reconstruction_error(h, xp, 7, 6, LATENT_LOSS_BINARY_CROSS_ENTROPY, out.as_mut_ptr(), 7);
        assert_eq!(s, LATENT_STATUS_OK);
        assert_eq!(out, want, "the C call scores as the Rust one (same parameters from the same seed)");
        assert_eq!(
            latent_dataset_from_buffer(xp.cast(), LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 7, 6, &mut data),
            LATENT_STATUS_OK
        );
        let mut d = vec![0f64; 7];
        let s = latent_vae_reconstruction_error_dataset(h, data, LATENT_LOSS_BINARY_CROSS_ENTROPY, d.as_mut_ptr(), 7);
        assert_eq!(s, LATENT_STATUS_OK);
        assert_eq!(d, want);
        // A loss code out of range, checked before the rows: nothing written.
        let mut o = vec![-1f64; 7];
        assert_eq!(latent_vae_reconstruction_error(h, xp, 7, 6, 10, o.as_mut_ptr(), 7), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_vae_reconstruction_error(h, xp, 7, 6, -1, o.as_mut_ptr(), 7), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(o.iter().all(|&v| v == -1.0));
        // Width, capacity, NULLs.
        assert_eq!(latent_vae_reconstruction_error(h, xp, 7, 5, 0, o.as_mut_ptr(), 7), LATENT_STATUS_SHAPE_MISMATCH);
        assert_eq!(latent_vae_reconstruction_error(h, xp, 7, 6, 0, o.as_mut_ptr(), 6), LATENT_STATUS_BUFFER_TOO_SMALL);
        assert_eq!(
            latent_vae_reconstruction_error(h, std::ptr::null(), 7, 6, 0, o.as_mut_ptr(), 7),
            LATENT_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            latent_vae_reconstruction_error(std::ptr::null(), xp, 7, 6, 0, o.as_mut_ptr(), 7),
            LATENT_STATUS_NULL_ARGUMENT
        );
        latent_dataset_free(data);
        latent_vae_free(h);
    }
}

fn mnist(file: &str, labels: &str) -> Option<Dataset> {
    let dir = common::data_dir("mnist")?;
    let mut d = Dataset::from_idx(dir.join(file), Some(&dir.join(labels))).unwrap();
    d.scale(Scaling::Divide255).unwrap();
    Some(d)
}

/// Rows of `d` (among its first `limit`) whose label is (or is not) `class`.
fn rows_where(d: &Dataset, limit: usize, keep: impl Fn(i32) -> bool) -> Matrix {
    let labels = d.labels().unwrap();
    let cols = d.cols();
    let mut v = Vec::new();
    for (r, &l) in labels.iter().enumerate().take(limit) {
        if keep(l) {
            v.extend_from_slice(&d.x().as_slice()[r * cols..(r + 1) * cols]);
        }
    }
    Matrix::from_vec(v.len() / cols, cols, v).unwrap()
}

/// A Bernoulli VAE 784-256-16-256-784 trained on the MNIST training digits other than one
/// held-out class (from the first 20,000 training rows, 5 epochs of Adam); each of the first
/// 5,000 test digits scored; the AUROC of telling the held-out class from the other digits (a
/// higher error, or a lower log-probability, marks an anomaly). Measured (seed 3, 2 threads):
///
/// | held out | MSE error | BCE error | MAE error | cosine | -recon. log-prob (16) | -log p(x) (16) |
/// |---|---|---|---|---|---|---|
/// | 0 | 0.9109 | 0.9045 | 0.9120 | 0.7809 | 0.9035 | 0.9030 |
/// | 2 | 0.9007 | 0.8830 | 0.8663 | 0.8374 | 0.8843 | 0.8698 |
/// | 7 | 0.6778 | 0.5856 | 0.6158 | 0.7596 | 0.6000 | 0.5657 |
/// | 9 | 0.6001 | 0.5339 | 0.5569 | 0.6266 | 0.5256 | 0.5237 |
///
/// Digits 0 and 7 run here (2 and 9 were measured once with HELD=2,9). Asserted, about 0.03
/// below the measurements: held-out 0 found with AUROC > 0.88 by the MSE error (> 0.87 by
/// BCE and by the reconstruction log-probability); held-out 7 with > 0.64 by the MSE error,
/// which beats the reconstruction log-probability there by more than 0.03 (measured 0.078).
#[test]
fn as_an_anomaly_score_it_finds_a_held_out_digit_on_mnist() {
    let Some(train) = mnist("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz") else { return };
    let Some(test) = mnist("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz") else { return };
    let held: Vec<i32> =
        std::env::var("HELD").ok().map_or(vec![0, 7], |v| v.split(',').map(|c| c.parse().unwrap()).collect());
    for held in held {
        let x = rows_where(&train, 20_000, |l| l != held);
        let mut spec = VaeSpec::new(784, &[256], 16, &[256], Activation::Relu);
        spec.seed = 3;
        let mut vae = Vae::new(spec).unwrap();
        let cfg = TrainConfig {
            epochs: 5,
            batch_size: 100,
            learning_rate: 1e-3,
            optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
            seed: 3,
            threads: 2,
            ..Default::default()
        };
        Trainer::new(cfg).unwrap().fit(&mut vae, &x, None, None).unwrap();
        let labels = test.labels().unwrap();
        let t = test.x().slice_rows(0, 5000);
        let positive: Vec<bool> = labels[..5000].iter().map(|&l| l == held).collect();
        let auroc = |s: &[f64]| latent::metrics::auroc(s, &positive);
        let mut line = format!("held-out digit {held}:");
        let mut by_loss = Vec::new();
        for loss in [Loss::Mse, Loss::BinaryCrossEntropy, Loss::Mae, Loss::CosineProximity] {
            let a = auroc(&vae.reconstruction_error(&t, loss).unwrap());
            line += &format!(" {} {a:.4},", loss.name());
            by_loss.push(a);
        }
        let lp: Vec<f64> = vae.reconstruction_log_probability(&t, 16, 1).unwrap().iter().map(|v| -v).collect();
        let lp = auroc(&lp);
        let ll: Vec<f64> = vae.log_likelihood(&t, 16, 1).unwrap().iter().map(|v| -v).collect();
        let ll = auroc(&ll);
        eprintln!("{line} -reconstruction log-probability {lp:.4}, -log-likelihood {ll:.4}");
        match held {
            0 => {
                assert!(by_loss[0] > 0.88, "held-out 0: MSE error AUROC {:.4}", by_loss[0]);
                assert!(by_loss[1] > 0.87, "held-out 0: BCE error AUROC {:.4}", by_loss[1]);
                assert!(lp > 0.87, "held-out 0: reconstruction log-probability AUROC {lp:.4}");
            }
            7 => {
                assert!(by_loss[0] > 0.64, "held-out 7: MSE error AUROC {:.4}", by_loss[0]);
                assert!(by_loss[0] > lp + 0.03, "held-out 7: MSE error {:.4} vs log-probability {lp:.4}", by_loss[0]);
            }
            _ => {}
        }
    }
}
