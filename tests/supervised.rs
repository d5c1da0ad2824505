//! Supervised networks: softmax cross-entropy classifiers and regression heads on the network
//! handle. Gradients against finite differences, MNIST accuracy, regression on a known
//! function, and the errors a caller gets for labels that do not fit.

mod common;

use latent::data::Dataset;
use latent::network::Workspace;
use latent::task::Task;
use latent::{Activation, Error, LayerSpec, Matrix, Network, NetworkSpec, TrainConfig, Trainer};

/// Central differences with Richardson extrapolation over the actual f32 steps (as in
/// tests/gradcheck.rs), of `loss(params)`.
fn numeric_grad(net: &mut Network, loss: impl Fn(&Network) -> f64) -> Vec<f64> {
    let p0 = net.params().to_vec();
    let mut g = vec![0f64; p0.len()];
    let diff = |net: &mut Network, i: usize, h: f32| {
        let mut p = p0.clone();
        p[i] = p0[i] + h;
        let up = p[i];
        net.set_params(&p).unwrap();
        let lu = loss(net);
        p[i] = p0[i] - h;
        let down = p[i];
        net.set_params(&p).unwrap();
        let ld = loss(net);
        (lu - ld) / (up - down) as f64
    };
    for (i, gi) in g.iter_mut().enumerate() {
        let d1 = diff(net, i, 1e-2);
        let d2 = diff(net, i, 2e-2);
        *gi = (4.0 * d1 - d2) / 3.0;
    }
    net.set_params(&p0).unwrap();
    g
}

fn analytic_grad(net: &Network, rows_with_targets: &Matrix) -> Vec<f32> {
    let mut ws: Workspace = net.workspace(rows_with_targets.rows()).unwrap();
    let mut grads = vec![0f32; net.param_count()];
    net.forward_backward(rows_with_targets.as_slice(), rows_with_targets.rows(), &mut ws, &mut grads, 1);
    grads
}

fn random_dataset(rows: usize, cols: usize, seed: u64) -> Dataset {
    let mut rng = latent::rng::Rng::new(seed, 0);
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
    Dataset::from_buffer_f32(&v, rows, cols, false).unwrap()
}

fn worst_error(a: &[f32], n: &[f64]) -> f64 {
    a.iter()
        .zip(n)
        .map(|(&a, &n)| (a as f64 - n).abs() / (1e-2 * (a as f64).abs().max(n.abs()) + 2e-5))
        .fold(0.0, f64::max)
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let mut data = random_dataset(6, 5, 1);
    data.set_labels(vec![0, 2, 1, 3, 3, 0]).unwrap();
    for hidden in [Activation::Tanh, Activation::Sigmoid, Activation::Identity] {
        let spec = NetworkSpec::classifier(5, &[LayerSpec::new(7, hidden), LayerSpec::new(4, hidden)], 4).unwrap();
        let mut net = Network::new(NetworkSpec { seed: 3, ..spec }).unwrap();
        let rows = net.task().training_matrix(&data, "data").unwrap();
        let a = analytic_grad(&net, &rows);
        let n = numeric_grad(&mut net, |net| net.evaluate(&data).unwrap().loss);
        let worst = worst_error(&a, &n);
        println!("classifier {}: worst error {worst:.3} of tolerance", hidden.name());
        assert!(worst < 1.0, "{}: worst {worst}", hidden.name());
        assert!(n.iter().any(|v| v.abs() > 1e-3));
    }
}

#[test]
fn regression_gradient_matches_finite_differences() {
    let mut data = random_dataset(6, 4, 2);
    let t = random_dataset(6, 3, 3).into_matrix();
    data.set_targets(t).unwrap();
    let spec = NetworkSpec::regressor(4, &[LayerSpec::new(6, Activation::Tanh)], 3).unwrap();
    let mut net = Network::new(spec).unwrap();
    let rows = net.task().training_matrix(&data, "data").unwrap();
    let a = analytic_grad(&net, &rows);
    let n = numeric_grad(&mut net, |net| net.evaluate(&data).unwrap().loss);
    let worst = worst_error(&a, &n);
    println!("regressor: worst error {worst:.3} of tolerance");
    assert!(worst < 1.0, "worst {worst}");
}

fn mnist(split: &str, n: usize) -> Option<Dataset> {
    let dir = common::data_dir("mnist")?;
    let prefix = if split == "train" { "train" } else { "t10k" };
    let mut d = Dataset::from_idx(
        dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
        Some(&dir.join(format!("{prefix}-labels-idx1-ubyte.gz"))),
    )
    .unwrap();
    d.scale(latent::data::Scaling::Divide255).unwrap();
    Some(if n < d.rows() { d.rows_range(0, n).unwrap() } else { d })
}

/// A 784-256-10 ReLU classifier, 3 epochs of Adam on all 60,000 digits: at least 97% of the
/// 10,000 test digits (measured 97.29%).
#[test]
fn mnist_classifier_reaches_97_percent() {
    let (Some(train), Some(test)) = (mnist("train", 60_000), mnist("test", 10_000)) else {
        return common::skip("mnist_classifier", "MNIST not found");
    };
    let spec = NetworkSpec::classifier(784, &[LayerSpec::new(256, Activation::Relu)], 10).unwrap();
    let mut net = Network::new(spec).unwrap();
    let cfg = TrainConfig { epochs: 3, batch_size: 100, learning_rate: 1e-3, ..Default::default() };
    let mut t = Trainer::new(cfg).unwrap();
    t.fit_dataset(&mut net, &train, None, None).unwrap();
    let e = net.evaluate(&test).unwrap();
    println!("MNIST test accuracy {:.4}, loss {:.4}", e.accuracy, e.loss);
    assert!(e.accuracy >= 0.97, "accuracy {}", e.accuracy);
    // The confusion matrix counts every row once and its diagonal is the accuracy.
    assert_eq!(e.confusion.iter().sum::<u64>(), 10_000);
    let diag: u64 = (0..10).map(|k| e.confusion[k * 10 + k]).sum();
    assert_eq!(diag as f64 / 10_000.0, e.accuracy);
    // classify agrees with the most probable class of predict.
    let x = test.rows_range(0, 200).unwrap();
    let c = net.classify(x.x()).unwrap();
    let p = net.predict(x.x()).unwrap();
    for (r, &k) in c.iter().enumerate() {
        let row = p.row(r);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(row.iter().all(|&v| v <= row[k]));
    }
}

/// Regression onto two smooth functions of 3 inputs: the test MSE ends far below the targets'
/// variance (predicting the mean).
#[test]
fn regression_learns_a_smooth_function() {
    let make = |rows: usize, seed: u64| {
        let mut d = random_dataset(rows, 3, seed);
        let t: Vec<f32> =
            d.x().as_slice().chunks_exact(3).flat_map(|r| [(r[0] * r[1]).sin(), 0.5 * r[2] * r[2] - r[0]]).collect();
        d.set_targets(Matrix::from_vec(rows, 2, t).unwrap()).unwrap();
        d
    };
    let (train, test) = (make(4000, 10), make(1000, 11));
    let var: f64 = {
        let t = test.targets().unwrap().as_slice();
        let m: Vec<f64> =
            (0..2).map(|c| t.iter().skip(c).step_by(2).map(|&v| v as f64).sum::<f64>() / 1000.0).collect();
        t.iter().enumerate().map(|(i, &v)| (v as f64 - m[i % 2]).powi(2)).sum::<f64>() / t.len() as f64
    };
    let spec =
        NetworkSpec::regressor(3, &[LayerSpec::new(64, Activation::Tanh), LayerSpec::new(64, Activation::Tanh)], 2)
            .unwrap();
    let mut net = Network::new(spec).unwrap();
    let cfg = TrainConfig { epochs: 60, batch_size: 64, learning_rate: 3e-3, ..Default::default() };
    Trainer::new(cfg).unwrap().fit_dataset(&mut net, &train, None, None).unwrap();
    let e = net.evaluate(&test).unwrap();
    println!("regression test MSE {:.5} (target variance {var:.4})", e.mse);
    assert!(e.mse < 0.02 * var, "mse {} var {var}", e.mse);
    assert!((e.loss - e.mse).abs() < 1e-6 * e.mse);
    assert!(e.accuracy.is_nan() && e.confusion.is_empty());
}

#[test]
fn bad_labels_and_misuse_are_errors() {
    let spec = NetworkSpec::classifier(4, &[LayerSpec::new(3, Activation::Relu)], 3).unwrap();
    let mut net = Network::new(spec).unwrap();
    let mut d = random_dataset(5, 4, 4);
    let mut t = Trainer::new(TrainConfig { epochs: 1, ..Default::default() }).unwrap();
    let msg = |e: Error| e.to_string();
    // No labels.
    let e = t.fit_dataset(&mut net, &d, None, None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)) && msg(e).contains("no labels"));
    // A label outside 0..3.
    d.set_labels(vec![0, 1, 2, 3, 0]).unwrap();
    let e = t.fit_dataset(&mut net, &d, None, None).unwrap_err();
    assert!(msg(e).contains("row 3 has label 3"));
    d.set_labels(vec![0, 1, 2, -1, 0]).unwrap();
    assert!(matches!(t.fit_dataset(&mut net, &d, None, None), Err(Error::InvalidArgument(_))));
    // Rows given directly (Rust's Trainer::fit): the label column must hold classes.
    for bad in [2.5f32, 3.0, -1.0, f32::MAX] {
        let mut m = net
            .task()
            .training_matrix(
                &{
                    let mut d2 = d.clone();
                    d2.set_labels(vec![0, 1, 2, 0, 1]).unwrap();
                    d2
                },
                "d",
            )
            .unwrap();
        let w = m.cols();
        m.as_mut_slice()[2 * w - 1] = bad;
        let e = t.fit(&mut net, &m, None, None).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)) && msg(e).contains("row 1 has label"), "{bad}");
    }
    // Autoencoder-only calls refuse a classifier; classify refuses an autoencoder.
    assert!(matches!(net.reconstruction_errors(d.x()), Err(Error::InvalidArgument(_))));
    let ae = Network::new(NetworkSpec::new(4, &[], Activation::Relu, 2)).unwrap();
    assert!(matches!(ae.classify(d.x()), Err(Error::InvalidArgument(_))));
    assert!(matches!(ae.evaluate(&d), Err(Error::InvalidArgument(_))));
    // Specs that cannot be: one class, a sigmoid classifier output, no hidden layer, tied weights.
    assert!(NetworkSpec::classifier(4, &[LayerSpec::new(3, Activation::Relu)], 1).and_then(Network::new).is_err());
    let s = NetworkSpec::classifier(4, &[LayerSpec::new(3, Activation::Relu)], 3).unwrap();
    assert!(Network::new(NetworkSpec { output_activation: Activation::Sigmoid, ..s.clone() }).is_err());
    assert!(Network::new(NetworkSpec { tied_weights: true, ..s }).is_err());
    assert!(NetworkSpec::classifier(4, &[], 3).is_err());
    // Regression targets of the wrong width.
    let r = Network::new(NetworkSpec::regressor(4, &[LayerSpec::new(3, Activation::Relu)], 2).unwrap()).unwrap();
    d.set_targets(Matrix::zeros(5, 3).unwrap()).unwrap();
    assert!(matches!(r.evaluate(&d), Err(Error::ShapeMismatch(_))));
    assert_eq!(Task::Classify { classes: 3 }.target_width(), 1);
}
