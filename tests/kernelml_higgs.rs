//! KernelML's HIGGS pipeline (its autoencoder notebook, ../shared/reference/kernelml.md §3) on
//! the ATLAS Higgs challenge sample it used (../shared/data/higgs/atlas-higgs-challenge):
//!
//! 1. A 30-10-30 autoencoder, the notebook's model exactly: h = X W1 (no bias: the code
//!    layer's biases are fixed at 0), the hidden link field_eq h' = (-0.5 a1 + b1) h, the
//!    output-side link out = a2 (h' W2^T + b2) (the decoder's biases fixed at 0, b2 one
//!    scalar), loss mean (out - X)^2, a1 b1 a2 b2 clipped positive at 1e-6; fitted by the
//!    Monte-Carlo optimizer alone in 20 runs on fresh 500-row minibatches.
//! 2. The field_eq codes of runs 10, 12, 14, 16 and 18 (50 columns), reduced by a PCA to 3
//!    components fitted on the training rows, beside the 30 raw features: 33 inputs.
//! 3. A classifier Dense(200, sigmoid) -> 2-way softmax on them and on the raw features alone,
//!    compared by validation accuracy (at 0.5) and AUROC.
//! 4. The same pipeline with the autoencoder (a plain linear 30-10-30 with biases, no links:
//!    the links are one scale and one shift, which it can absorb) fitted by Adam, its codes
//!    taken after 10, 12, 14, 16 and 18 of 20 equal training chunks.
//!
//! Where ours differs from the notebook, and why:
//! - Data: the 9,998-row sample (4,999 events per class), not the 250,000-row Kaggle set,
//!   split 50/50 by a seeded split (the notebook: 50% of each class).
//! - Scaling: the features are standardised on the training rows, the -999 "undefined"
//!   sentinels set to the mean (0); the notebook kept raw values and sentinels. The PCA
//!   columns are standardised too (a sigmoid layer fed unscaled columns saturates).
//! - Search: 3600 candidates at each run's start as the notebook, then its 5 iterations of
//!   2400 candidates spent as iterations of 100 (the same evaluations, more updates), the
//!   elitist strategy, starting around the default initialisation (the notebook drew U(-1,1)).
//!   The CI test runs fewer iterations; the full protocol is the ignored test below.
//! - Classifier: a 2-way softmax (the same model as one sigmoid output), Adam instead of
//!   adagrad, minibatches of 128 for 60 epochs (the notebook: batch 5000 for 100 epochs on
//!   125,000 rows, 2,500 steps; batch 5000 on our 5,000 rows would be 100 steps).
//!
//! Measured numbers are in docs/montecarlo.md ("The HIGGS pipeline") and in the comments of the
//! assertions below.

mod common;

use std::sync::Arc;

use latent::data::Dataset;
use latent::metrics::auroc;
use latent::montecarlo::network::{Link, NetworkObjective, fit_network, network_loss_links};
use latent::montecarlo::{Constraint, MonteCarlo, ParamSpec, Prior, Settings, Strategy};
use latent::pca::Pca;
use latent::{Activation, LayerSpec, Loss, Matrix, Network, NetworkSpec, TrainConfig, Trainer};

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

fn labelled(x: &[f32], rows: usize, cols: usize, labels: &[i32]) -> Dataset {
    let mut d = Dataset::from_buffer_f32(x, rows, cols, false).unwrap();
    d.set_labels(labels.to_vec()).unwrap();
    d
}

/// The whole sample, unscaled, with its labels.
fn higgs() -> Option<Dataset> {
    let dir = common::data_dir("higgs")?.join("atlas-higgs-challenge");
    let (mut x, mut y) = read(&dir.join("train_sml_bg.csv"), 0);
    let (xs, ys) = read(&dir.join("train_sml_sig.csv"), 1);
    x.extend(xs);
    y.extend(ys);
    Some(labelled(&x, y.len(), 30, &y))
}

/// Standardised features of a seeded 50/50 split: mean 0, sd 1 over the training rows'
/// defined values; the -999 "undefined" sentinels become 0, the mean.
fn split(all: &Dataset, seed: u64, scaled: bool) -> (Dataset, Dataset) {
    let (train, valid) = all.split(0.5, seed).unwrap();
    if !scaled {
        return (train, valid);
    }
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
        labelled(&v, d.rows(), 30, d.labels().unwrap())
    };
    (norm(&train), norm(&valid))
}

/// KernelML's field_eq link on the code: h' = -0.5 a1 h + b1 h.
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

/// The notebook's output side: out = a2 (y + b2), y = h' W2^T (the decoder's biases fixed at 0).
fn output_side() -> Link {
    Link {
        layer: 1,
        params: 2,
        f: Arc::new(|t: &[f64], y: &mut [f32], _rows, _cols| {
            let (a2, b2) = (t[0] as f32, t[1] as f32);
            y.iter_mut().for_each(|v| *v = a2 * (*v + b2));
        }),
    }
}

fn linear_ae() -> Network {
    let spec = NetworkSpec {
        output_activation: Activation::Identity,
        loss: Loss::Mse,
        ..NetworkSpec::new(30, &[], Activation::Identity, 10)
    };
    Network::new(spec).unwrap()
}

/// 1 - SSE / SST of the reconstruction, SST about each column's mean.
fn r_squared(mse: f64, d: &Dataset) -> f64 {
    let x = d.x().as_slice();
    let mut sst = 0f64;
    for c in 0..30 {
        let m = x.iter().skip(c).step_by(30).map(|&v| v as f64).sum::<f64>() / d.rows() as f64;
        sst += x.iter().skip(c).step_by(30).map(|&v| (v as f64 - m).powi(2)).sum::<f64>();
    }
    1.0 - mse * (d.rows() * 30) as f64 / sst
}

/// The classifier (KernelML's Keras model, see the header) on `train`, scored on `valid`:
/// (accuracy, AUROC).
fn classify(train: &Dataset, valid: &Dataset, seed: u64, epochs: usize) -> (f64, f64) {
    let spec = NetworkSpec::classifier(train.cols(), &[LayerSpec::new(200, Activation::Sigmoid)], 2).unwrap();
    let mut net = Network::new(NetworkSpec { seed, ..spec }).unwrap();
    let cfg = TrainConfig { epochs, batch_size: 128, learning_rate: 1e-3, seed, ..Default::default() };
    Trainer::new(cfg).unwrap().fit_dataset(&mut net, train, None, None).unwrap();
    let p = net.predict(valid.x()).unwrap();
    let scores: Vec<f64> = (0..valid.rows()).map(|r| p.row(r)[1] as f64).collect();
    let pos: Vec<bool> = valid.labels().unwrap().iter().map(|&l| l == 1).collect();
    (net.evaluate(valid).unwrap().accuracy, auroc(&scores, &pos))
}

/// The rows' codes under each snapshot of the autoencoder's parameters (`k` = field_eq's
/// scale per snapshot), side by side: rows x (10 * snapshots).
fn codes(net: &Network, snapshots: &[(Vec<f32>, f32)], x: &Matrix) -> Matrix {
    let mut n = net.clone();
    let w = 10 * snapshots.len();
    let mut out = vec![0f32; x.rows() * w];
    for (s, (params, k)) in snapshots.iter().enumerate() {
        n.set_params(params).unwrap();
        let c = n.encode(x).unwrap();
        for r in 0..x.rows() {
            for (j, &v) in c.row(r).iter().enumerate() {
                out[r * w + s * 10 + j] = v * k;
            }
        }
    }
    Matrix::from_vec(x.rows(), w, out).unwrap()
}

/// [standardised PCA(3) of the codes | raw] for the training and validation rows, the PCA and
/// its standardisation fitted on the training rows only.
fn with_codes(net: &Network, snapshots: &[(Vec<f32>, f32)], train: &Dataset, valid: &Dataset) -> (Dataset, Dataset) {
    let (ct, cv) = (codes(net, snapshots, train.x()), codes(net, snapshots, valid.x()));
    let pca = Pca::fit(&ct, 3).unwrap();
    let (pt, pv) = (pca.transform(&ct).unwrap(), pca.transform(&cv).unwrap());
    let sd: Vec<f64> = pca.variance.iter().map(|v| v.sqrt().max(1e-12)).collect();
    let join = |p: &Matrix, d: &Dataset| {
        let v: Vec<f32> = (0..d.rows())
            .flat_map(|r| {
                let pc = p.row(r).iter().zip(&sd).map(|(&v, &s)| (v as f64 / s) as f32);
                pc.chain(d.x().row(r).iter().copied()).collect::<Vec<_>>()
            })
            .collect();
        labelled(&v, d.rows(), 33, d.labels().unwrap())
    };
    (join(&pt, train), join(&pv, valid))
}

/// The control: `d` (33 columns) with its first 3 replaced by seeded N(0, 1) noise, so that a
/// gain of codes + raw over raw is not only the classifier's 3 extra inputs.
fn noise(d: &Dataset, seed: u64) -> Dataset {
    let mut rng = latent::rng::Rng::new(seed, 77);
    let mut v = d.x().as_slice().to_vec();
    for r in 0..d.rows() {
        for j in 0..3 {
            v[r * 33 + j] = rng.normal();
        }
    }
    labelled(&v, d.rows(), 33, d.labels().unwrap())
}

/// How much of the notebook's protocol a run spends.
#[derive(Clone, Copy)]
struct Protocol {
    /// Monte-Carlo iterations per run (of 100 candidates, after 3600 at the run's start).
    iterations: usize,
    classifier_epochs: usize,
    /// Adam epochs per chunk (20 chunks).
    adam_epochs: usize,
    /// Standardised features (sentinels at the mean) or, false, the notebook's raw values with
    /// their -999 sentinels.
    scaled: bool,
}

/// One seed's numbers.
#[derive(Debug, Default, Clone, Copy)]
struct Measured {
    r2_train: f64,
    r2_valid: f64,
    acc_raw: f64,
    auc_raw: f64,
    acc_codes: f64,
    auc_codes: f64,
    /// The control: 3 columns of N(0, 1) noise in place of the PCA columns.
    acc_noise: f64,
    auc_noise: f64,
    adam_r2_valid: f64,
    adam_acc_codes: f64,
    adam_auc_codes: f64,
}

const SNAPSHOT_RUNS: [usize; 5] = [10, 12, 14, 16, 18];

fn pipeline(all: &Dataset, seed: u64, proto: Protocol) -> Measured {
    let (train, valid) = split(all, seed, proto.scaled);
    // 1. The notebook's autoencoder by the Monte-Carlo optimizer.
    let mut net = linear_ae();
    let p = net.param_count();
    let settings = Settings {
        init_samples: 3600,
        samples: 100,
        elite: 20,
        max_iterations: proto.iterations,
        seed,
        strategy: Strategy::Elitist,
        ..Default::default()
    };
    let mut mc = MonteCarlo::new(settings, p + 4).unwrap();
    let weights: Vec<usize> = net.weight_ranges().into_iter().flatten().collect();
    for i in (0..p).filter(|i| !weights.contains(i)) {
        let fixed = ParamSpec { constraint: Constraint::Fixed(0.0), ..Default::default() };
        mc.set_spec(i, fixed).unwrap();
    }
    let positive = ParamSpec {
        prior: Prior::Uniform { low: 0.0, high: 1.0 },
        constraint: Constraint::Positive { floor: 1e-6 },
        ..Default::default()
    };
    for i in p..p + 4 {
        mc.set_spec(i, positive.clone()).unwrap();
    }
    let (hid, out) = (field_eq(), output_side());
    let obj = NetworkObjective {
        batch_size: 500,
        runs: 20,
        seed,
        link: Some(hid.clone()),
        extra_links: vec![out.clone()],
        start_from_network: true,
        ..NetworkObjective::new()
    };
    fit_network(&mut mc, &mut net, &train, &obj).unwrap();
    let theta = mc.best().unwrap().to_vec();
    let mse = |d: &Dataset| network_loss_links(&net, d, &[&hid, &out], &theta).unwrap();
    let (r2_train, r2_valid) = (r_squared(mse(&train), &train), r_squared(mse(&valid), &valid));
    let (run_params, _) = mc.run_bests();
    let snapshots: Vec<(Vec<f32>, f32)> = SNAPSHOT_RUNS
        .iter()
        .map(|&run| {
            let t = &run_params[run * (p + 4)..(run + 1) * (p + 4)];
            (t[..p].iter().map(|&v| v as f32).collect(), (-0.5 * t[p] + t[p + 1]) as f32)
        })
        .collect();
    // 2-3. Raw features alone, then with the codes.
    let (acc_raw, auc_raw) = classify(&train, &valid, seed, proto.classifier_epochs);
    let (tc, vc) = with_codes(&net, &snapshots, &train, &valid);
    let (acc_codes, auc_codes) = classify(&tc, &vc, seed, proto.classifier_epochs);
    let (acc_noise, auc_noise) = classify(&noise(&tc, seed), &noise(&vc, seed + 1000), seed, proto.classifier_epochs);
    // 4. The plain autoencoder by Adam, snapshots after chunks 10, 12, ..., 18 of 20.
    let mut adam = Network::new(NetworkSpec { seed, ..net.spec().clone() }).unwrap();
    let cfg =
        TrainConfig { epochs: proto.adam_epochs, batch_size: 64, learning_rate: 3e-3, seed, ..Default::default() };
    let mut adam_snaps = Vec::new();
    for chunk in 1..=20 {
        let c = TrainConfig { seed: seed * 100 + chunk as u64, ..cfg };
        Trainer::new(c).unwrap().fit(&mut adam, train.x(), None, None).unwrap();
        if SNAPSHOT_RUNS.contains(&chunk) {
            adam_snaps.push((adam.params().to_vec(), 1.0));
        }
    }
    let adam_mse = network_loss_links(&adam, &valid, &[], &adam.params().iter().map(|&v| v as f64).collect::<Vec<_>>());
    let adam_r2_valid = r_squared(adam_mse.unwrap(), &valid);
    let (ta, va) = with_codes(&adam, &adam_snaps, &train, &valid);
    let (adam_acc_codes, adam_auc_codes) = classify(&ta, &va, seed, proto.classifier_epochs);
    Measured {
        r2_train,
        r2_valid,
        acc_raw,
        auc_raw,
        acc_codes,
        auc_codes,
        acc_noise,
        auc_noise,
        adam_r2_valid,
        adam_acc_codes,
        adam_auc_codes,
    }
}

/// Runs the pipeline over `seeds`, printing each seed and the mean +- sd of every column.
fn table(all: &Dataset, seeds: &[u64], proto: Protocol) -> Vec<Measured> {
    println!(
        "seed | R2 train | R2 valid | acc raw | AUROC raw | acc codes+raw | AUROC codes+raw | acc noise+raw | AUROC noise+raw | Adam R2 valid | Adam acc codes+raw | Adam AUROC codes+raw"
    );
    let rows: Vec<Measured> = seeds
        .iter()
        .map(|&s| {
            let t0 = std::time::Instant::now();
            let m = pipeline(all, s, proto);
            println!(
                "{s} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4}   ({:.0} s)",
                m.r2_train,
                m.r2_valid,
                m.acc_raw,
                m.auc_raw,
                m.acc_codes,
                m.auc_codes,
                m.acc_noise,
                m.auc_noise,
                m.adam_r2_valid,
                m.adam_acc_codes,
                m.adam_auc_codes,
                t0.elapsed().as_secs_f64()
            );
            m
        })
        .collect();
    let stat = |f: &dyn Fn(&Measured) -> f64| {
        let v: Vec<f64> = rows.iter().map(f).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0)).sqrt();
        format!("{m:.4}±{sd:.4}")
    };
    println!(
        "mean±sd | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {}",
        stat(&|m| m.r2_train),
        stat(&|m| m.r2_valid),
        stat(&|m| m.acc_raw),
        stat(&|m| m.auc_raw),
        stat(&|m| m.acc_codes),
        stat(&|m| m.auc_codes),
        stat(&|m| m.acc_noise),
        stat(&|m| m.auc_noise),
        stat(&|m| m.adam_r2_valid),
        stat(&|m| m.adam_acc_codes),
        stat(&|m| m.adam_auc_codes)
    );
    println!(
        "codes+raw - raw: accuracy {}, AUROC {}",
        stat(&|m| m.acc_codes - m.acc_raw),
        stat(&|m| m.auc_codes - m.auc_raw)
    );
    println!(
        "noise+raw - raw: accuracy {}, AUROC {}; Adam codes+raw - raw: accuracy {}, AUROC {}",
        stat(&|m| m.acc_noise - m.acc_raw),
        stat(&|m| m.auc_noise - m.auc_raw),
        stat(&|m| m.adam_acc_codes - m.acc_raw),
        stat(&|m| m.adam_auc_codes - m.auc_raw)
    );
    rows
}

#[test]
fn kernelml_higgs_pipeline() {
    let Some(all) = higgs() else {
        return common::skip("kernelml_higgs", "the ATLAS Higgs sample was not found");
    };
    let proto = Protocol { iterations: 10, classifier_epochs: 60, adam_epochs: 5, scaled: true };
    let rows = table(&all, &[1, 2, 3, 4, 5], proto);
    let mean = |f: &dyn Fn(&Measured) -> f64| rows.iter().map(f).sum::<f64>() / rows.len() as f64;
    // Measured (seeds 1-5, 10 iterations per run, 2 cores: 17 s idle, 60 s beside other builds):
    //   R^2 validation 0.5368 ± 0.0284 (lowest 0.5017); raw AUROC 0.8692 ± 0.0060 (lowest
    //   0.8591), accuracy 0.7869 ± 0.0062;
    //   codes+raw - raw: accuracy +0.0037 ± 0.0046, AUROC +0.0019 ± 0.0024 (4 and 3 of 5
    //   seeds above 0: at this budget the gain is real on average, not on every seed);
    //   codes+raw - noise+raw (3 noise columns in place of the PCA's): AUROC +0.0023 to
    //   +0.0093, accuracy +0.0010 to +0.0104, above 0 on every seed.
    // The full protocol (ignored test below) gives every seed a gain over raw.
    for m in &rows {
        assert!(m.r2_valid >= 0.45, "R^2 {m:?}");
        assert!(m.auc_raw >= 0.85 && m.auc_codes >= 0.85, "{m:?}");
        // The PCA columns carry information: better than as many columns of noise.
        assert!(m.auc_codes > m.auc_noise && m.acc_codes > m.acc_noise, "{m:?}");
    }
    assert!(mean(&|m| m.auc_codes - m.auc_raw) > 0.0, "mean AUROC gain of codes + raw over raw");
    assert!(mean(&|m| m.acc_codes - m.acc_raw) > 0.0, "mean accuracy gain of codes + raw over raw");
}

/// The full protocol (the notebook's evaluation budget per run): `cargo test --release --test
/// kernelml_higgs -- --ignored --nocapture`.
#[test]
#[ignore]
fn kernelml_higgs_pipeline_full() {
    let Some(all) = higgs() else {
        return common::skip("kernelml_higgs", "the ATLAS Higgs sample was not found");
    };
    let proto = Protocol { iterations: 120, classifier_epochs: 60, adam_epochs: 10, scaled: true };
    let rows = table(&all, &[1, 2, 3, 4, 5], proto);
    // Measured (seeds 1-5, 45-90 s per seed on 2 busy cores): R^2 train 0.7341 ± 0.0233,
    // validation 0.7172 ± 0.0480; accuracy raw 0.7869 ± 0.0062, codes+raw 0.7924 ± 0.0050;
    // AUROC raw 0.8692 ± 0.0060, codes+raw 0.8722 ± 0.0053; the gain +0.0054 ± 0.0026
    // (accuracy, lowest +0.0024) and +0.0030 ± 0.0014 (AUROC, lowest +0.0016): above 0 on
    // every seed, mean - 2 sd just above 0 for both.
    for m in &rows {
        assert!(m.r2_valid >= 0.6, "{m:?}");
        assert!(m.acc_codes > m.acc_raw && m.auc_codes > m.auc_raw, "{m:?}");
    }
}

/// The full protocol on the notebook's unscaled features with their -999 sentinels.
#[test]
#[ignore]
fn kernelml_higgs_pipeline_unscaled() {
    let Some(all) = higgs() else {
        return common::skip("kernelml_higgs", "the ATLAS Higgs sample was not found");
    };
    let proto = Protocol { iterations: 120, classifier_epochs: 60, adam_epochs: 10, scaled: false };
    let rows = table(&all, &[1, 2, 3, 4, 5], proto);
    // Measured: R^2 0.9930 ± 0.0016 (validation; the -999 sentinels dominate the variance and a
    // linear code captures them), but the classifier on unscaled inputs (sigmoid units fed
    // values up to 10^3, Adam 60 epochs) reaches only accuracy 0.6833 ± 0.0380, AUROC
    // 0.7635 ± 0.0164, and the codes do not help: AUROC -0.0096 ± 0.0330.
    for m in &rows {
        assert!(m.r2_valid >= 0.98 && m.auc_raw < 0.82, "{m:?}");
    }
}
