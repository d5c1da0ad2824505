//! The RBM as a model of its own (src/rbm_model.rs, the latent_rbm C handle): free energy of
//! held-out binarised MNIST digits against noise with the same pixel marginals, reconstructions
//! before and after CD-1, Gibbs samples bit-identical for a seed, the version-5 model file, and
//! tests/c/rbm.c (the C API on the 8x8 digits, its statuses, save and load).

mod common;

use std::process::Command;

use common::*;
use latent::data::{Dataset, Scaling};
use latent::model_file::{self, load_rbm, rbm_from_bytes, rbm_to_bytes, save_rbm};
use latent::rbm_model::{RbmModel, RbmTraining};
use latent::rng::Rng;
use latent::train::{RbmConfig, Unit};
use latent::{Matrix, OptimizerConfig, OptimizerKind, TrainConfig};

/// Binarised MNIST (pixel > 0.5): the first `train` training images and the first `test` test
/// images.
fn mnist(train: usize, test: usize) -> Option<(Matrix, Matrix)> {
    let dir = data_dir("mnist")?;
    let load = |name: &str, rows: usize| {
        let mut d = Dataset::from_idx(dir.join(name), None).unwrap();
        d.scale(Scaling::Divide255).unwrap();
        let idx: Vec<usize> = (0..rows).collect();
        let x = d.x().gather_rows(&idx);
        let v = x.as_slice().iter().map(|&p| if p > 0.5 { 1.0 } else { 0.0 }).collect();
        Matrix::from_vec(rows, x.cols(), v).unwrap()
    };
    Some((load("train-images-idx3-ubyte.gz", train), load("t10k-images-idx3-ubyte.gz", test)))
}

/// Noise with the data's pixel marginals: each column shuffled across the rows independently.
/// A model of independent pixels (visible biases only) gives it the same mean free energy as
/// the data, so a gap measures what the RBM learned about how pixels go together.
fn column_shuffled(x: &Matrix, seed: u64) -> Matrix {
    let (r, c) = (x.rows(), x.cols());
    let mut rng = Rng::new(seed, 77);
    let mut v = x.as_slice().to_vec();
    for j in 0..c {
        let mut col: Vec<f32> = (0..r).map(|i| v[i * c + j]).collect();
        rng.shuffle(&mut col);
        for i in 0..r {
            v[i * c + j] = col[i];
        }
    }
    Matrix::from_vec(r, c, v).unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn mse(a: &Matrix, b: &Matrix) -> f64 {
    a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>()
        / a.as_slice().len() as f64
}

/// rbm.m's settings: SGD lr 0.1, momentum 0.5 (0.9 from epoch 5), weight cost 2e-4, batch 100.
fn hinton(epochs: usize) -> TrainConfig {
    let mut c = TrainConfig {
        epochs,
        batch_size: 100,
        learning_rate: 0.1,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 2e-4,
            ..Default::default()
        },
        seed: 4,
        threads: 2,
        ..Default::default()
    };
    c.schedule.momentum_initial = 0.5;
    c.schedule.momentum_switch_epoch = 5;
    c
}

/// 784-256 Bernoulli RBM, CD-1 for 3 epochs on 10,000 binarised training digits; scored on
/// 1,000 held-out test digits. Measured (2026-11, 2 threads): the free-energy gap between noise
/// with the digits' pixel marginals and the digits goes from -0.23 (untrained) to 170.0 nats,
/// with 1000 of 1000 digits below their noise row; the mean-field reconstruction error per
/// pixel from 0.2828 to 0.0230 (x 0.081). Thresholds: gap > 100, >= 990 rows, x 0.2.
#[test]
fn trained_rbm_prefers_digits_to_noise_and_reconstructs_better() {
    let Some((train, test)) = mnist(10_000, 1_000) else { return };
    let noise = column_shuffled(&test, 5);
    let mut m = RbmModel::new(784, 256, Unit::Bernoulli, Unit::Bernoulli, 1).unwrap();
    let gap = |m: &RbmModel| mean(&m.free_energy(&noise).unwrap()) - mean(&m.free_energy(&test).unwrap());
    let (gap0, rec0) = (gap(&m), mse(&m.reconstruct(&test).unwrap(), &test));
    let h = m.fit(&train, &hinton(3), RbmConfig::default(), None).unwrap();
    let (gap1, rec1) = (gap(&m), mse(&m.reconstruct(&test).unwrap(), &test));
    // Held-out rows below their noise counterpart.
    let (ft, fnz) = (m.free_energy(&test).unwrap(), m.free_energy(&noise).unwrap());
    let below = ft.iter().zip(&fnz).filter(|(a, b)| a < b).count();
    eprintln!(
        "784-256 RBM, CD-1, 3 epochs on 10k binarised MNIST: free energy of column-shuffled noise minus held-out \
         digits {gap0:.2} -> {gap1:.1} nats; {below}/1000 digits below their noise row; mean-field reconstruction \
         squared error per pixel {rec0:.4} -> {rec1:.4}; training error per epoch {:?}",
        h.iter().map(|e| (e.reconstruction_error * 1e4).round() / 1e4).collect::<Vec<_>>()
    );
    assert_eq!(m.history().len(), 3);
    assert_eq!(m.training(), RbmTraining { epochs: 3, k: 1, persistent: false });
    assert!(gap0.abs() < 5.0, "an untrained RBM already separates digits from noise: {gap0}");
    assert!(gap1 > 100.0, "the RBM does not prefer held-out digits to noise with their marginals: {gap1}");
    assert!(below >= 990, "{below}/1000");
    assert!(rec1 < 0.2 * rec0, "reconstruction {rec0} -> {rec1}");
}

/// Gibbs chains on a trained MNIST RBM: the same seed gives the same bits, another seed other
/// bits, a row's chain does not depend on the rows after it, and `means` gives probabilities.
#[test]
fn gibbs_samples_are_bit_identical_for_a_seed() {
    let Some((train, test)) = mnist(5_000, 200) else { return };
    let mut m = RbmModel::new(784, 128, Unit::Bernoulli, Unit::Bernoulli, 2).unwrap();
    m.fit(&train, &hinton(2), RbmConfig::default(), None).unwrap();
    m.set_threads(2);
    let a = m.sample(&test, 100, 42, false).unwrap();
    let b = m.sample(&test, 100, 42, false).unwrap();
    let bits = |x: &Matrix| x.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b), "same seed, different samples");
    assert!(a.as_slice().iter().all(|&v| v == 0.0 || v == 1.0));
    let c = m.sample(&test, 100, 43, false).unwrap();
    let differ = a.as_slice().iter().zip(c.as_slice()).filter(|(x, y)| x != y).count();
    eprintln!("784-128 RBM, 100 Gibbs steps from 200 test digits: seeds 42 and 43 differ in {differ} of 156800 pixels");
    assert!(differ > 1000, "seeds 42 and 43 differ in only {differ} pixels");
    // A row's chain depends on its position in the call, not on the rows after it.
    let first = m.sample(&test.slice_rows(0, 3), 100, 42, false).unwrap();
    assert_eq!(bits(&first), bits(&a.slice_rows(0, 3)));
    let pm = m.sample(&test, 100, 42, true).unwrap();
    assert!(
        pm.as_slice().iter().all(|&v| (0.0..=1.0).contains(&v)) && pm.as_slice().iter().any(|&v| v > 0.0 && v < 1.0)
    );
    assert!(m.sample(&test, 0, 1, false).is_err() && m.sample(&test, 1_000_001, 1, false).is_err());
}

/// Block Gibbs sampling draws from the RBM's distribution: on a 4-visible-unit RBM (16 visible
/// states), the states of 20,000 chains after 30 steps against the exact p(v) = exp(-F(v)) / Z
/// by enumeration, for Bernoulli and for Gaussian hidden units. Measured total variation
/// distance (2026-11): 0.0050 (Bernoulli hidden) and 0.0059 (Gaussian hidden); the sampling
/// noise of 20,000 draws over 16 states alone is up to about 0.01, hence the bound 0.025.
#[test]
fn gibbs_chains_reach_the_exact_distribution_of_a_small_rbm() {
    for hidden in [Unit::Bernoulli, Unit::Gaussian] {
        let (nv, nh) = (4, 3);
        let mut m = RbmModel::new(nv, nh, Unit::Bernoulli, hidden, 5).unwrap();
        let mut rng = Rng::new(8, 1);
        let scale = if hidden == Unit::Gaussian { 0.8 } else { 2.0 };
        let p: Vec<f32> = (0..m.param_count()).map(|_| scale * (2.0 * rng.uniform() - 1.0)).collect();
        m.set_params(&p).unwrap();
        let states =
            Matrix::from_vec(16, nv, (0..16 * nv).map(|i| ((i / nv) >> (i % nv) & 1) as f32).collect()).unwrap();
        let f = m.free_energy(&states).unwrap();
        let fmin = f.iter().cloned().fold(f64::INFINITY, f64::min);
        let w: Vec<f64> = f.iter().map(|v| (fmin - v).exp()).collect();
        let z: f64 = w.iter().sum();
        let chains = 20_000;
        let start = Matrix::zeros(chains, nv).unwrap();
        let s = m.sample(&start, 30, 99, false).unwrap();
        let mut count = [0usize; 16];
        for r in 0..chains {
            let idx = s.row(r).iter().enumerate().map(|(i, &v)| (v as usize) << i).sum::<usize>();
            count[idx] += 1;
        }
        let tv: f64 = (0..16).map(|i| (count[i] as f64 / chains as f64 - w[i] / z).abs()).sum::<f64>() / 2.0;
        let mf = m.sample(&start, 30, 99, true).unwrap();
        eprintln!("{hidden:?} hidden units: total variation between 20000 Gibbs chains and the exact p(v): {tv:.4}");
        assert!(
            tv < 0.025,
            "{hidden:?}: TV {tv}, counts {count:?}, p {:?}",
            w.iter().map(|x| x / z).collect::<Vec<_>>()
        );
        assert!(mf.as_slice().iter().all(|&v| v > 0.0 && v < 1.0));
    }
}

#[test]
fn model_file_round_trips_and_refuses_other_kinds() {
    let mut m = RbmModel::new(7, 5, Unit::Gaussian, Unit::Bernoulli, 11).unwrap();
    let x = Matrix::from_vec(20, 7, (0..140).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect()).unwrap();
    m.fit(
        &x,
        &TrainConfig { epochs: 2, batch_size: 5, learning_rate: 0.05, ..hinton(2) },
        RbmConfig { k: 3, persistent: true, ..Default::default() },
        None,
    )
    .unwrap();
    let b = rbm_to_bytes(&m);
    // 20 header + 40 section + 8 count + 4 * (35 + 5 + 7) + 4 CRC.
    assert_eq!(b.len(), 72 + 4 * 47);
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!((u32_at(8), u32_at(12), u32_at(16)), (5, model_file::FLAG_RBM, 40));
    assert_eq!((u32_at(20), u32_at(24), u32_at(28), u32_at(32)), (7, 5, 1, 0));
    assert_eq!((u32_at(52), u32_at(56)), (3, 1));
    let back = rbm_from_bytes(&b).unwrap();
    let bits = |p: &[f32]| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(back.params()), bits(m.params()));
    assert_eq!(
        (back.n_visible(), back.n_hidden(), back.visible(), back.hidden()),
        (7, 5, Unit::Gaussian, Unit::Bernoulli)
    );
    assert_eq!((back.seed(), back.training()), (11, RbmTraining { epochs: 2, k: 3, persistent: true }));
    assert_eq!(rbm_to_bytes(&back), b, "not canonical");
    assert_eq!(back.free_energy(&x).unwrap(), m.free_energy(&x).unwrap());
    // On disk.
    let dir = scratch("rbm_model_file");
    let path = dir.join("r.latent");
    save_rbm(&m, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b);
    assert_eq!(bits(load_rbm(&path).unwrap().params()), bits(m.params()));
    // Other kinds, either way.
    let net = latent::Network::new(latent::NetworkSpec::new(6, &[5], latent::Activation::Relu, 2)).unwrap();
    let e = rbm_from_bytes(&model_file::to_bytes(&net)).unwrap_err();
    assert!(e.to_string().contains("wrong kind") && e.to_string().contains("latent_network_load"), "{e}");
    let vae = latent::Vae::new(latent::VaeSpec::new(6, &[5], 2, &[4], latent::Activation::Relu)).unwrap();
    let e = rbm_from_bytes(&model_file::vae_to_bytes(&vae)).unwrap_err();
    assert!(e.to_string().contains("wrong kind") && e.to_string().contains("latent_vae_load"), "{e}");
    for e in [model_file::from_bytes(&b).unwrap_err(), model_file::vae_from_bytes(&b).unwrap_err()] {
        assert!(e.to_string().contains("wrong kind") && e.to_string().contains("latent_rbm_load"), "{e}");
    }
    // Damage: every truncation and byte flip is BAD_FORMAT; fields with a fixed CRC too.
    let status = |b: &[u8]| rbm_from_bytes(b).unwrap_err().status();
    for len in 0..b.len() {
        assert_eq!(status(&b[..len]), LATENT_BAD_FORMAT, "length {len}");
    }
    for pos in 0..b.len() {
        let mut d = b.clone();
        d[pos] ^= 0x10;
        assert_eq!(status(&d), LATENT_BAD_FORMAT, "flip at {pos}");
    }
    let fixed = |pos: usize, v: u32| {
        let mut d = b.clone();
        d[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
        let n = d.len();
        let crc = latent::data::crc32::crc32(&d[..n - 4]);
        d[n - 4..].copy_from_slice(&crc.to_le_bytes());
        rbm_from_bytes(&d).unwrap_err().to_string()
    };
    assert!(fixed(28, 2).contains("bad architecture"), "unit kind 2");
    assert!(fixed(56, 7).contains("bad architecture"), "persistent 7");
    assert!(fixed(20, 0).contains("bad architecture"), "0 visible units");
    assert!(fixed(20, 8).contains("bad parameter block"), "parameter count");
    assert!(fixed(12, 0).contains("wrong kind"), "version 5 without the RBM flag");
    assert!(fixed(12, 3).contains("unsupported flags"), "flags 3");
    assert!(fixed(8, 9).contains("written by a newer latent"), "version 9");
}

const LATENT_BAD_FORMAT: i32 = latent::ffi::LATENT_STATUS_BAD_FORMAT;

/// tests/c/rbm.c: the C API on the 8x8 digits (train, free energy, reconstruction, samples,
/// parameters, save and load) and its documented statuses.
#[test]
fn c_program_trains_scores_samples_and_reloads_an_rbm() {
    let Some(digits) = data_dir("digits") else { return };
    let dir = scratch("rbm_c");
    let exe = dir.join("rbm");
    compile_c(&[root().join("tests/c/rbm.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(&dir).arg(digits.join("digits.csv.gz")));
    println!("{out}");
    assert_eq!(code, 0, "tests/c/rbm.c failed:\n{out}\n{err}");
    assert!(out.contains("0 failures"), "{out}");
}

/// The one fenced block of `lang` in a doc.
fn doc_block(doc: &str, lang: &str) -> String {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let fence = format!("```{lang}\n");
    let blocks: Vec<&str> = text.split(&fence).skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 1, "{doc} should have one ```{lang} block");
    blocks[0].to_string()
}

/// docs/rbm.md's C block compiles against the header and runs on the digits; its Python block
/// runs.
#[test]
fn rbm_doc_code_blocks_compile_and_run() {
    if data_dir("digits").is_none() {
        return;
    }
    let dir = scratch("rbm_doc");
    let src = dir.join("rbm.c");
    std::fs::write(&src, doc_block("docs/rbm.md", "c")).unwrap();
    let exe = dir.join("rbm");
    compile_c(&[src], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).current_dir(&dir));
    println!("{out}");
    assert_eq!(code, 0, "the C block failed:\n{out}\n{err}");
    assert!(out.contains("reloaded: digit 0 free energy"), "{out}");
    if !have("python3")
        || !Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success())
    {
        skip("python3 with numpy", "install python3-numpy to run the doc's Python block");
        return;
    }
    let script = dir.join("rbm.py");
    std::fs::write(&script, doc_block("docs/rbm.md", "python")).unwrap();
    let lib = lib_dir().join(if cfg!(target_os = "macos") { "liblatent.dylib" } else { "liblatent.so" });
    let (code, out, err) = run(Command::new("python3")
        .current_dir(&dir)
        .arg(&script)
        .env("PYTHONPATH", root().join("python"))
        .env("LATENT_LIBRARY", lib)
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    println!("{out}");
    assert_eq!(code, 0, "the Python block failed:\n{out}\n{err}");
    assert!(out.contains("nats") && out.contains("BERNOULLI"), "{out}");
}
