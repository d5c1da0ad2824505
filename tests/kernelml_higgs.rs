//! KernelML's "autoencoders with non-linear parameters" experiment, reproduced on the ATLAS
//! Higgs challenge sample it used (../shared/data/higgs/atlas-higgs-challenge): a 30-10-30
//! linear autoencoder whose code goes through KernelML's `field_eq` link
//! h' = -0.5 a h + b h (a, b kept positive by constraints) is fitted by the Monte-Carlo
//! optimizer alone (20 runs on fresh 500-row minibatches, as the notebook), then a classifier
//! on [link(codes), raw features] is compared with one on the raw features, by held-out AUROC.

mod common;

use std::sync::Arc;

use latent::data::Dataset;
use latent::metrics::auroc;
use latent::montecarlo::network::{Link, NetworkObjective, fit_network, network_loss};
use latent::montecarlo::{Constraint, MonteCarlo, ParamSpec, Prior, Settings, Strategy};
use latent::{Activation, LayerSpec, Loss, Network, NetworkSpec, TrainConfig, Trainer};

/// The 30 features and the labels (signal 1) of one CSV of the sample.
fn read(path: &std::path::Path, label: i32) -> (Vec<f32>, Vec<i32>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 35, "{line}");
        x.extend(f[1..31].iter().map(|v| v.parse::<f32>().unwrap()));
        y.push(label);
    }
    (x, y)
}

/// Standardised features (mean 0, sd 1 over the training rows' defined values; the -999
/// "undefined" sentinels become 0, the mean) of a seeded 50/50 split per class.
fn higgs() -> Option<(Dataset, Dataset)> {
    let dir = common::data_dir("higgs")?.join("atlas-higgs-challenge");
    let (mut x, mut y) = read(&dir.join("train_sml_bg.csv"), 0);
    let (xs, ys) = read(&dir.join("train_sml_sig.csv"), 1);
    x.extend(xs);
    y.extend(ys);
    let rows = y.len();
    let mut d = Dataset::from_buffer_f32(&x, rows, 30, false).unwrap();
    d.set_labels(y).unwrap();
    let (train, valid) = d.split(0.5, 7).unwrap();
    let stats: Vec<(f64, f64)> = (0..30)
        .map(|c| {
            let v: Vec<f64> = (0..train.rows()).map(|r| train.x().row(r)[c] as f64).filter(|&v| v != -999.0).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / v.len() as f64).sqrt().max(1e-12);
            (m, sd)
        })
        .collect();
    let norm = |d: &Dataset| {
        let v: Vec<f32> = d
            .x()
            .as_slice()
            .chunks_exact(30)
            .flat_map(|r| {
                r.iter().zip(&stats).map(|(&v, &(m, s))| if v == -999.0 { 0.0 } else { ((v as f64 - m) / s) as f32 })
            })
            .collect();
        let mut out = Dataset::from_buffer_f32(&v, d.rows(), 30, false).unwrap();
        out.set_labels(d.labels().unwrap().to_vec()).unwrap();
        out
    };
    Some((norm(&train), norm(&valid)))
}

/// KernelML's field_eq link on the code: h' = -0.5 a h + b h.
fn field_eq() -> Link {
    Link {
        layer: 0,
        params: 2,
        f: Arc::new(|t: &[f64], h: &mut [f32], _rows, _cols| {
            let k = (-0.5 * t[0] + t[1]) as f32;
            h.iter_mut().for_each(|v| *v *= k);
        }),
    }
}

fn r_squared(net: &Network, d: &Dataset, link: &Link, theta: &[f64]) -> f64 {
    let mse = network_loss(net, d, Some(link), theta).unwrap();
    let x = d.x().as_slice();
    let mut sst = 0f64;
    for c in 0..30 {
        let m = x.iter().skip(c).step_by(30).map(|&v| v as f64).sum::<f64>() / d.rows() as f64;
        sst += x.iter().skip(c).step_by(30).map(|&v| (v as f64 - m).powi(2)).sum::<f64>();
    }
    1.0 - mse * (d.rows() * 30) as f64 / sst
}

/// A 200-sigmoid-unit classifier (KernelML's Keras model) on `train`, scored on `valid`.
fn classify(train: &Dataset, valid: &Dataset) -> (f64, f64) {
    let spec = NetworkSpec::classifier(train.cols(), &[LayerSpec::new(200, Activation::Sigmoid)], 2).unwrap();
    let mut net = Network::new(spec).unwrap();
    let cfg = TrainConfig { epochs: 60, batch_size: 128, learning_rate: 1e-3, seed: 1, ..Default::default() };
    Trainer::new(cfg).unwrap().fit_dataset(&mut net, train, None, None).unwrap();
    let p = net.predict(valid.x()).unwrap();
    let scores: Vec<f64> = (0..valid.rows()).map(|r| p.row(r)[1] as f64).collect();
    let pos: Vec<bool> = valid.labels().unwrap().iter().map(|&l| l == 1).collect();
    (auroc(&scores, &pos), net.evaluate(valid).unwrap().accuracy)
}

/// Columns [link(codes) | raw] of a dataset, with its labels.
fn with_codes(net: &Network, link: &Link, theta: &[f64], d: &Dataset) -> Dataset {
    let mut codes = net.encode(d.x()).unwrap();
    (link.f)(theta, codes.as_mut_slice(), d.rows(), 10);
    let v: Vec<f32> =
        (0..d.rows()).flat_map(|r| codes.row(r).iter().chain(d.x().row(r)).copied().collect::<Vec<_>>()).collect();
    let mut out = Dataset::from_buffer_f32(&v, d.rows(), 40, false).unwrap();
    out.set_labels(d.labels().unwrap().to_vec()).unwrap();
    out
}

#[test]
fn kernelml_higgs_experiment() {
    let Some((train, valid)) = higgs() else {
        return common::skip("kernelml_higgs", "the ATLAS Higgs sample was not found");
    };
    let spec = NetworkSpec {
        output_activation: Activation::Identity,
        loss: Loss::Mse,
        ..NetworkSpec::new(30, &[], Activation::Identity, 10)
    };
    let mut net = Network::new(spec).unwrap();
    let link = field_eq();
    let p = net.param_count();
    // KernelML's protocol, but for the start: 20 runs on fresh 500-row minibatches, 3600
    // candidates at the start of each run, the link's two parameters positive; its notebook's
    // 5 iterations of 2400 candidates per run are spent here as 120 iterations of 100 (the
    // same 312,020 evaluations: R^2 0.55 its way, 0.77 this way). The first run starts around
    // the network's default initialisation (start_from_network; KernelML drew U(-1, 1)
    // priors), with the elitist strategy (the search these numbers were measured with).
    let settings = Settings {
        init_samples: 3600,
        samples: 100,
        elite: 20,
        max_iterations: 120,
        seed: 3,
        strategy: Strategy::Elitist,
        ..Default::default()
    };
    let mut mc = MonteCarlo::new(settings, p + 2).unwrap();
    let positive = ParamSpec {
        prior: Prior::Uniform { low: 0.0, high: 1.0 },
        constraint: Constraint::Positive { floor: 1e-6 },
        ..Default::default()
    };
    mc.set_spec(p, positive.clone()).unwrap();
    mc.set_spec(p + 1, positive).unwrap();
    let obj = NetworkObjective {
        batch_size: 500,
        runs: 20,
        seed: 5,
        link: Some(link.clone()),
        start_from_network: true,
        ..NetworkObjective::new()
    };
    let t0 = std::time::Instant::now();
    let fit = fit_network(&mut mc, &mut net, &train, &obj).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let theta = mc.best().unwrap().to_vec();
    let (r2_train, r2_valid) = (r_squared(&net, &train, &link, &theta), r_squared(&net, &valid, &link, &theta));
    println!(
        "Monte-Carlo autoencoder: {} evaluations in {secs:.1} s, minibatch MSE run 1 {:.4} -> run 20 {:.4}; R^2 train {r2_train:.4}, validation {r2_valid:.4}; link a {:.4} b {:.4}",
        mc.evaluations(),
        fit.run_losses[0],
        fit.run_losses[19],
        fit.link_params[0],
        fit.link_params[1]
    );
    assert!(fit.link_params.iter().all(|&v| v > 0.0));
    let (auc_raw, acc_raw) = classify(&train, &valid);
    let (tc, vc) =
        (with_codes(&net, &link, &fit.link_params, &train), with_codes(&net, &link, &fit.link_params, &valid));
    let (auc_codes, acc_codes) = classify(&tc, &vc);
    let only = |d: &Dataset| {
        let v: Vec<f32> = (0..d.rows()).flat_map(|r| d.x().row(r)[..10].to_vec()).collect();
        let mut o = Dataset::from_buffer_f32(&v, d.rows(), 10, false).unwrap();
        o.set_labels(d.labels().unwrap().to_vec()).unwrap();
        o
    };
    let (auc_only, acc_only) = classify(&only(&tc), &only(&vc));
    println!(
        "validation AUROC: raw features {auc_raw:.4} (accuracy {acc_raw:.4}), codes + raw {auc_codes:.4} ({acc_codes:.4}), codes alone {auc_only:.4} ({acc_only:.4})"
    );
    assert!(r2_valid >= 0.72, "R^2 {r2_valid}");
    assert!(auc_raw >= 0.85 && auc_codes >= auc_raw - 0.005, "{auc_raw} {auc_codes}");
    assert!(auc_only >= 0.78, "{auc_only}");
    // The same autoencoder (no link) trained by back-propagation, for scale.
    let mut grad_net = Network::new(net.spec().clone()).unwrap();
    let cfg = TrainConfig { epochs: 200, batch_size: 64, learning_rate: 3e-3, seed: 2, ..Default::default() };
    Trainer::new(cfg).unwrap().fit(&mut grad_net, train.x(), None, None).unwrap();
    let mut theta_g: Vec<f64> = grad_net.params().iter().map(|&v| v as f64).collect();
    theta_g.extend([0.0, 1.0]);
    let r2_adam = r_squared(&grad_net, &valid, &link, &theta_g);
    println!("Adam, same autoencoder: R^2 validation {r2_adam:.4}");
    assert!(r2_valid >= r2_adam - 0.03, "{r2_valid} vs Adam {r2_adam}");
}
