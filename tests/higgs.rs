//! The pieces KernelML's HIGGS notebook needs beyond the hidden link (issue 16): a link on the
//! output side of a Monte-Carlo-fitted network (out = a2 (y + b2)) beside the hidden one, and a
//! PCA (src/pca.rs). The pipeline itself is tests/kernelml_higgs.rs.

use std::sync::Arc;

use latent::data::Dataset;
use latent::montecarlo::network::{Link, NetworkObjective, fit_network, network_loss, network_loss_links};
use latent::montecarlo::{MonteCarlo, Settings};
use latent::pca::{Pca, symmetric_eigen};
use latent::{Activation, Error, Loss, Matrix, Network, NetworkSpec};

/// KernelML's field_eq on the code: h' = (-0.5 a1 + b1) h.
fn field_eq(layer: usize) -> Link {
    Link {
        layer,
        params: 2,
        f: Arc::new(|t: &[f64], h: &mut [f32], _, _| {
            let k = (-0.5 * t[0] + t[1]) as f32;
            h.iter_mut().for_each(|v| *v *= k);
        }),
    }
}

/// The notebook's output side: out = a2 (y + b2).
fn output_side(layer: usize) -> Link {
    Link {
        layer,
        params: 2,
        f: Arc::new(|t: &[f64], y: &mut [f32], _, _| {
            let (a2, b2) = (t[0] as f32, t[1] as f32);
            y.iter_mut().for_each(|v| *v = a2 * (*v + b2));
        }),
    }
}

fn linear_ae(input: usize, code: usize) -> Network {
    let spec = NetworkSpec {
        output_activation: Activation::Identity,
        loss: Loss::Mse,
        ..NetworkSpec::new(input, &[], Activation::Identity, code)
    };
    Network::new(spec).unwrap()
}

const X: [f32; 6] = [1.0, 2.0, 3.0, 0.0, 1.0, -1.0];

#[test]
fn output_link_gives_the_hand_computed_loss() {
    let mut net = linear_ae(3, 2);
    let data = Dataset::from_buffer_f32(&X, 2, 3, false).unwrap();
    // Every weight and bias 0: the network outputs 0, the output link a2 (0 + b2) = 2 (0 + 0.5)
    // = 1 everywhere; squared errors (1-1, 2-1, 3-1, 0-1, 1-1, -1-1)^2 = 0, 1, 4, 1, 0, 4: the
    // mean is 10 / 6.
    net.set_params(&vec![0.0; net.param_count()]).unwrap();
    let mut theta = vec![0.0; net.param_count()];
    theta.extend([2.0, 0.5]);
    let out = output_side(1);
    let l = network_loss(&net, &data, Some(&out), &theta).unwrap();
    assert!((l - 10.0 / 6.0).abs() < 1e-12, "{l}");
    // Without the link the output is 0: the mean of 1, 4, 9, 0, 1, 1 is 16 / 6.
    let l0 = network_loss(&net, &data, None, &theta[..net.param_count()]).unwrap();
    assert!((l0 - 16.0 / 6.0).abs() < 1e-12, "{l0}");
}

#[test]
fn both_links_match_a_forward_computed_by_hand() {
    let net = linear_ae(3, 2);
    let x = Matrix::from_vec(2, 3, X.to_vec()).unwrap();
    let data = Dataset::from_buffer_f32(&X, 2, 3, false).unwrap();
    let (a1, b1, a2, b2) = (0.4, 0.9, 1.5, -0.25);
    // h' = (-0.5 a1 + b1) encode(x); out = a2 (decode(h') + b2); loss = mean (out - x)^2.
    let k = (-0.5 * a1 + b1) as f32;
    let mut h = net.encode(&x).unwrap();
    h.as_mut_slice().iter_mut().for_each(|v| *v *= k);
    let y = net.decode(&h).unwrap();
    let want =
        y.as_slice().iter().zip(&X).map(|(&y, &t)| ((a2 * (y as f64 + b2)) - t as f64).powi(2)).sum::<f64>() / 6.0;
    let mut theta: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
    theta.extend([a1, b1, a2, b2]);
    let (hid, out) = (field_eq(0), output_side(1));
    let got = network_loss_links(&net, &data, &[&hid, &out], &theta).unwrap();
    assert!((got - want).abs() <= 1e-6 * want.max(1.0), "{got} vs {want}");
    // The output link changes the loss: a2 = 1, b2 = 0 is the hidden link alone.
    let n = theta.len();
    theta[n - 2..].copy_from_slice(&[1.0, 0.0]);
    let plain = network_loss(&net, &data, Some(&hid), &theta[..n - 2]).unwrap();
    let identity_out = network_loss_links(&net, &data, &[&hid, &out], &theta).unwrap();
    assert_eq!(plain, identity_out);
    assert!((plain - got).abs() > 1e-3, "{plain} {got}");
}

#[test]
fn fit_with_both_links_reports_its_loss_and_refuses_bad_links() {
    let mut net = linear_ae(3, 2);
    let data = Dataset::from_buffer_f32(&X, 2, 3, false).unwrap();
    let p = net.param_count();
    let settings = Settings { init_samples: 200, samples: 50, max_iterations: 10, seed: 1, ..Default::default() };
    let mut mc = MonteCarlo::new(settings.clone(), p + 4).unwrap();
    let obj =
        NetworkObjective { link: Some(field_eq(0)), extra_links: vec![output_side(1)], ..NetworkObjective::new() };
    let fit = fit_network(&mut mc, &mut net, &data, &obj).unwrap();
    assert_eq!(fit.link_params.len(), 4);
    let best = mc.best().unwrap().to_vec();
    let (hid, out) = (field_eq(0), output_side(1));
    let again = network_loss_links(&net, &data, &[&hid, &out], &best).unwrap();
    assert!((again - mc.best_loss()).abs() <= 1e-12 * again.max(1.0), "{again} vs {}", mc.best_loss());
    // The same layer twice, a layer past the output, the wrong parameter count.
    let twice =
        NetworkObjective { link: Some(field_eq(1)), extra_links: vec![output_side(1)], ..NetworkObjective::new() };
    assert!(matches!(fit_network(&mut mc, &mut net, &data, &twice), Err(Error::InvalidArgument(_))));
    let past = NetworkObjective { link: Some(field_eq(2)), ..NetworkObjective::new() };
    assert!(matches!(fit_network(&mut mc, &mut net, &data, &past), Err(Error::InvalidArgument(_))));
    let one = NetworkObjective { link: Some(field_eq(0)), ..NetworkObjective::new() };
    assert!(matches!(fit_network(&mut mc, &mut net, &data, &one), Err(Error::ShapeMismatch(_))));
    // Binary cross-entropy reads logits: no output link.
    let spec = NetworkSpec { loss: Loss::BinaryCrossEntropy, ..NetworkSpec::new(3, &[], Activation::Sigmoid, 2) };
    let mut bce = Network::new(spec).unwrap();
    let mut mc2 = MonteCarlo::new(settings, bce.param_count() + 2).unwrap();
    let o = NetworkObjective { link: Some(output_side(1)), ..NetworkObjective::new() };
    let e = fit_network(&mut mc2, &mut bce, &data, &o).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(ref m) if m.contains("logits")), "{e}");
}

/// Rows 5 + 3 s1 u1 + s2 u2 (u1 = (1, 1, 0)/sqrt 2, u2 = (1, -1, 0)/sqrt 2, s1 and s2
/// orthogonal +-1 patterns of mean 0): covariance (36 u1 u1^T + 4 u2 u2^T) / 3, eigenvalues
/// 12, 4/3, 0 with eigenvectors u1, u2, e3.
#[test]
fn pca_finds_known_eigenvectors() {
    let r = std::f64::consts::FRAC_1_SQRT_2;
    let (s1, s2) = ([1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]);
    let mean = [5.0, -2.0, 7.0];
    let x: Vec<f32> = (0..4)
        .flat_map(|i| {
            let (a, b) = (3.0 * s1[i], s2[i]);
            [mean[0] + (a + b) * r, mean[1] + (a - b) * r, mean[2]].map(|v| v as f32)
        })
        .collect();
    let m = Matrix::from_vec(4, 3, x).unwrap();
    let p = Pca::fit(&m, 2).unwrap();
    let close = |a: &[f64], b: &[f64], tol: f64| a.iter().zip(b).all(|(x, y)| (x - y).abs() < tol);
    assert!(close(&p.mean, &mean, 1e-6), "{:?}", p.mean);
    // Signs: the largest entry positive, the first on a tie.
    assert!(close(&p.components, &[r, r, 0.0, r, -r, 0.0], 1e-6), "{:?}", p.components);
    assert!(close(&p.variance, &[12.0, 4.0 / 3.0], 1e-5), "{:?}", p.variance);
    assert!((p.total_variance - 40.0 / 3.0).abs() < 1e-5);
    let ratio = p.explained_variance_ratio();
    assert!(close(&ratio, &[0.9, 0.1], 1e-6), "{ratio:?}");
    // The projection gives back the patterns: (3 s1, s2).
    let t = p.transform(&m).unwrap();
    let want: Vec<f64> = (0..4).flat_map(|i| [3.0 * s1[i], s2[i]]).collect();
    let got: Vec<f64> = t.as_slice().iter().map(|&v| v as f64).collect();
    assert!(close(&got, &want, 1e-5), "{got:?}");
    // Refusals.
    assert!(matches!(Pca::fit(&m, 0), Err(Error::InvalidArgument(_))));
    assert!(matches!(Pca::fit(&m, 4), Err(Error::InvalidArgument(_))));
    assert!(matches!(Pca::fit(&Matrix::from_vec(1, 3, vec![1.0; 3]).unwrap(), 1), Err(Error::InvalidArgument(_))));
    let mut bad = m.clone();
    bad.as_mut_slice()[4] = f32::NAN;
    assert!(matches!(Pca::fit(&bad, 1), Err(Error::NonFinite(ref s)) if s.contains("row 1, column 1")));
    assert!(matches!(p.transform(&Matrix::from_vec(1, 2, vec![0.0; 2]).unwrap()), Err(Error::ShapeMismatch(_))));
}

/// Jacobi on a random symmetric 40 x 40 matrix: A v = lambda v and V orthogonal to 1e-10.
#[test]
fn jacobi_diagonalises_a_random_symmetric_matrix() {
    let c = 40;
    let mut rng = latent::rng::Rng::new(9, 0);
    let mut a = vec![0f64; c * c];
    for i in 0..c {
        for j in i..c {
            let v = rng.normal() as f64;
            a[i * c + j] = v;
            a[j * c + i] = v;
        }
    }
    let orig = a.clone();
    let (vals, v) = symmetric_eigen(&mut a, c);
    for k in 0..c {
        for i in 0..c {
            let av: f64 = (0..c).map(|j| orig[i * c + j] * v[j * c + k]).sum();
            assert!((av - vals[k] * v[i * c + k]).abs() < 1e-10, "column {k} row {i}");
        }
        for l in 0..c {
            let d: f64 = (0..c).map(|i| v[i * c + k] * v[i * c + l]).sum();
            assert!((d - if k == l { 1.0 } else { 0.0 }).abs() < 1e-10);
        }
    }
}
