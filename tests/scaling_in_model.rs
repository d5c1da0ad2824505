//! The input pipeline travels with the model (issue 18, item 2): a fit on a scaled dataset
//! stores the dataset's scaling in the network or VAE, the model file keeps it (format
//! version 7), and in raw-input mode the serving calls take raw rows and give raw units back,
//! bit-identical to scaling the rows by hand.

mod common;

use std::ffi::CString;

use latent::data::scale::{Scaler, Scaling};
use latent::ffi::*;
use latent::model_file;
use latent::rng::Rng;
use latent::tensor::Matrix;
use latent::vae::VaeSpec;
use latent::{Activation, Dataset, Loss, Network, NetworkSpec, TrainConfig, Trainer, Vae};

/// Rows whose columns live on very different scales (column j around 100 j with spread j + 1),
/// with a 2-D structure underneath, as real sensor features do.
fn raw_rows(rows: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 5);
    let mut v = Vec::with_capacity(rows * 6);
    for _ in 0..rows {
        let (a, b) = (rng.normal(), rng.normal());
        for j in 0..6 {
            let s = (j + 1) as f32;
            v.push(100.0 * j as f32 + s * (a * (j as f32 * 0.7).cos() + b * (j as f32 * 0.7).sin()));
        }
    }
    Matrix::from_vec(rows, 6, v).unwrap()
}

fn spec() -> NetworkSpec {
    let mut s = NetworkSpec::new(6, &[8], Activation::Tanh, 2);
    s.output_activation = Activation::Identity;
    s.loss = Loss::Mse;
    s.seed = 3;
    s
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 40,
        batch_size: 32,
        learning_rate: 1e-2,
        threads: 1,
        validation_fraction: 0.0,
        ..Default::default()
    }
}

#[test]
fn a_fit_on_scaled_data_stores_the_scaling_and_raw_mode_serves_raw_rows() {
    let mut train = Dataset::from_matrix(raw_rows(512, 1)).unwrap();
    train.scale(Scaling::ZScore).unwrap();
    let mut net = Network::new(spec()).unwrap();
    assert_eq!(*net.input_scaling().scaler(), Scaler::None);
    Trainer::new(config()).unwrap().fit_dataset(&mut net, &train, None, None).unwrap();
    assert_eq!(net.input_scaling().scaler(), train.scaler(), "the fit stored the training set's scaling");

    // New raw rows, scaled by hand with the training statistics: what a user had to do before.
    let raw = raw_rows(64, 2);
    let mut scaled = raw.clone();
    train.scaler().apply(&mut scaled).unwrap();
    let want_codes = net.encode(&scaled).unwrap();
    let mut want_recon = net.reconstruct(&scaled).unwrap();
    train.scaler().invert(&mut want_recon).unwrap();
    let err = net.reconstruction_errors(&scaled).unwrap();
    // The model learned the 2-D structure: its error in the scaled space is small. Measured
    // 0.0031 (seed 3); an untrained network gives about 1.
    let mse = err.iter().sum::<f64>() / err.len() as f64;
    println!("scaled-space reconstruction MSE {mse:.4}");
    assert!(mse < 0.05, "scaled-space MSE {mse}");

    // Save, then serve from a fresh handle through the C API, in raw-input mode.
    let dir = common::scratch("scaling_in_model");
    let path = dir.join("net.latent");
    model_file::save(&net, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 7, "a network with a scaling is version 7");
    let cpath = CString::new(path.to_str().unwrap()).unwrap();
    let mut h = std::ptr::null_mut();
    assert_eq!(unsafe { latent_network_load(cpath.as_ptr(), &mut h) }, LATENT_STATUS_OK);
    let mut raw_flag = 7;
    assert_eq!(unsafe { latent_network_raw_input(h, &mut raw_flag) }, LATENT_STATUS_OK);
    assert_eq!(raw_flag, 0, "raw-input mode is off unless asked for");
    let mut codes = vec![0f32; 64 * 2];
    let enc = |h, x: &Matrix, out: &mut Vec<f32>| unsafe {
        latent_network_encode(h, x.as_slice().as_ptr(), x.rows(), 6, out.as_mut_ptr(), out.len())
    };
    assert_eq!(enc(h, &raw, &mut codes), LATENT_STATUS_OK);
    assert_ne!(codes, want_codes.as_slice(), "raw rows in scaled-input mode are not what the model was trained on");
    assert_eq!(unsafe { latent_network_set_raw_input(h, 1) }, LATENT_STATUS_OK);
    assert_eq!(enc(h, &raw, &mut codes), LATENT_STATUS_OK);
    assert_eq!(codes, want_codes.as_slice(), "raw-input mode: the stored scaling, bit for bit");
    let mut recon = vec![0f32; 64 * 6];
    let st = unsafe { latent_network_reconstruct(h, raw.as_slice().as_ptr(), 64, 6, recon.as_mut_ptr(), recon.len()) };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(recon, want_recon.as_slice(), "reconstructions come back in raw units");
    let mut scores = vec![0f64; 64];
    let st = unsafe {
        latent_network_reconstruction_error(h, raw.as_slice().as_ptr(), 64, 6, scores.as_mut_ptr(), scores.len())
    };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(scores, err, "scores stay in the scaled space the model was trained in");
    // Decode returns raw units too.
    let mut dec = vec![0f32; 64 * 6];
    let st = unsafe { latent_network_decode(h, codes.as_ptr(), 64, 2, dec.as_mut_ptr(), dec.len()) };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(dec, want_recon.as_slice());

    // The mode is saved: a serving process that loads the file takes raw rows as they come.
    let served = dir.join("served.latent");
    let cserved = CString::new(served.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { latent_network_save(h, cserved.as_ptr()) }, LATENT_STATUS_OK);
    let back = model_file::load(&served).unwrap();
    assert!(back.input_scaling().raw());
    assert_eq!(back.input_scaling().scaler(), train.scaler());
    assert_eq!(model_file::to_bytes(&back), std::fs::read(&served).unwrap(), "the file is canonical");

    // A dataset of raw rows is scaled with the model's statistics (datasets keep their own).
    let mut d = std::ptr::null_mut();
    let st = unsafe {
        latent_dataset_from_buffer(
            raw.as_slice().as_ptr().cast(),
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            64,
            6,
            &mut d,
        )
    };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_scale_dataset(h, d) }, LATENT_STATUS_OK);
    let st = unsafe { latent_network_encode_dataset(h, d, codes.as_mut_ptr(), codes.len()) };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(codes, want_codes.as_slice());
    assert_eq!(unsafe { latent_network_scale_dataset(h, d) }, LATENT_STATUS_INVALID_ARGUMENT, "scaled once");
    unsafe {
        latent_dataset_free(d);
        latent_network_free(h);
    }
}

#[test]
fn the_scaling_is_exported_imported_and_checked_from_c() {
    let p = latent_network_params { input_dim: 3, code_units: 2, ..latent_network_params_default() };
    let mut h = std::ptr::null_mut();
    assert_eq!(unsafe { latent_network_new(&p, &mut h) }, LATENT_STATUS_OK);
    let (mut method, mut cols) = (-1, 99usize);
    let st =
        unsafe { latent_network_get_scaling(h, &mut method, std::ptr::null_mut(), std::ptr::null_mut(), 0, &mut cols) };
    assert_eq!((st, method, cols), (LATENT_STATUS_OK, LATENT_SCALING_NONE, 0));
    let (mean, std_) = ([1.0f64, -2.0, 30.0], [0.5f64, 2.0, 0.0]);
    let set = |m, a: &[f64], b: &[f64], n| unsafe { latent_network_set_scaling(h, m, a.as_ptr(), b.as_ptr(), n) };
    assert_eq!(set(LATENT_SCALING_Z_SCORE, &mean, &std_, 2), LATENT_STATUS_SHAPE_MISMATCH, "2 columns for 3 inputs");
    assert_eq!(set(LATENT_SCALING_Z_SCORE, &mean, &[0.5, -1.0, 1.0], 3), LATENT_STATUS_INVALID_ARGUMENT, "std < 0");
    assert_eq!(set(LATENT_SCALING_MIN_MAX, &[1.0, 0.0, 0.0], &[0.0, 1.0, 1.0], 3), LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(set(LATENT_SCALING_Z_SCORE, &[f64::NAN, 0.0, 0.0], &std_, 3), LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(set(LATENT_SCALING_DIVIDE_255, &mean, &std_, 3), LATENT_STATUS_INVALID_ARGUMENT, "no statistics");
    assert_eq!(set(4, &mean, &std_, 3), LATENT_STATUS_INVALID_ARGUMENT);
    let st = unsafe { latent_network_set_scaling(h, LATENT_SCALING_Z_SCORE, std::ptr::null(), std_.as_ptr(), 3) };
    assert_eq!(st, LATENT_STATUS_NULL_ARGUMENT);
    let st =
        unsafe { latent_network_get_scaling(h, &mut method, std::ptr::null_mut(), std::ptr::null_mut(), 0, &mut cols) };
    assert_eq!((st, method), (LATENT_STATUS_OK, LATENT_SCALING_NONE), "refusals change nothing");
    assert_eq!(set(LATENT_SCALING_Z_SCORE, &mean, &std_, 3), LATENT_STATUS_OK);
    let st =
        unsafe { latent_network_get_scaling(h, &mut method, std::ptr::null_mut(), std::ptr::null_mut(), 0, &mut cols) };
    assert_eq!((st, method, cols), (LATENT_STATUS_BUFFER_TOO_SMALL, LATENT_SCALING_Z_SCORE, 3), "sizing call");
    let (mut a, mut b) = ([0f64; 3], [0f64; 3]);
    let st = unsafe { latent_network_get_scaling(h, &mut method, a.as_mut_ptr(), b.as_mut_ptr(), 3, &mut cols) };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!((a, b), (mean, std_));
    assert_eq!(unsafe { latent_network_set_raw_input(h, 2) }, LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(unsafe { latent_network_set_raw_input(h, 1) }, LATENT_STATUS_OK);
    // Raw mode: x' = (x - mean) / std, a constant column (std 0) maps to 0.
    let x = [2.0f32, 2.0, 5.0];
    let mut via_raw = [0f32; 2];
    assert_eq!(unsafe { latent_network_encode(h, x.as_ptr(), 1, 3, via_raw.as_mut_ptr(), 2) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_set_raw_input(h, 0) }, LATENT_STATUS_OK);
    let by_hand = [2.0f32, 2.0, 0.0];
    let mut want = [0f32; 2];
    assert_eq!(unsafe { latent_network_encode(h, by_hand.as_ptr(), 1, 3, want.as_mut_ptr(), 2) }, LATENT_STATUS_OK);
    assert_eq!(via_raw, want);
    // From a dataset: an unscaled one is refused, a scaled one of another width is a shape error.
    let mut d = std::ptr::null_mut();
    let v = [0f32; 8];
    let st = unsafe {
        latent_dataset_from_buffer(v.as_ptr().cast(), LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 2, 4, &mut d)
    };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_set_scaling_from(h, d) }, LATENT_STATUS_INVALID_ARGUMENT);
    assert_eq!(unsafe { latent_dataset_scale(d, LATENT_SCALING_MIN_MAX) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_set_scaling_from(h, d) }, LATENT_STATUS_SHAPE_MISMATCH);
    // NONE removes the scaling; the model is then written as before (version 1).
    let st = unsafe { latent_network_set_scaling(h, LATENT_SCALING_NONE, std::ptr::null(), std::ptr::null(), 0) };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_scale_dataset(h, d) }, LATENT_STATUS_INVALID_ARGUMENT, "no stored scaling");
    unsafe {
        latent_dataset_free(d);
        latent_network_free(h);
    }
}

#[test]
fn a_vae_carries_its_scaling_through_fit_file_and_raw_mode() {
    let mut train = Dataset::from_matrix(raw_rows(256, 4)).unwrap();
    train.scale(Scaling::MinMax).unwrap();
    let mut spec = VaeSpec::new(6, &[8], 2, &[8], Activation::Tanh);
    spec.seed = 5;
    let mut vae = Vae::new(spec).unwrap();
    let c = TrainConfig { epochs: 3, ..config() };
    Trainer::new(c).unwrap().fit_dataset(&mut vae, &train, None, None).unwrap();
    assert_eq!(vae.input_scaling().scaler(), train.scaler());
    vae.set_raw_input(true);
    let bytes = model_file::vae_to_bytes(&vae);
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 7);
    let back = model_file::vae_from_bytes(&bytes).unwrap();
    assert_eq!(back.input_scaling(), vae.input_scaling());
    assert_eq!(back.params(), vae.params());
    assert_eq!(model_file::vae_to_bytes(&back), bytes, "canonical");
    // Without the scaling the VAE is written as version 3, as before.
    let mut plain = vae.clone();
    plain.set_input_scaler(Scaler::None).unwrap();
    let b3 = model_file::vae_to_bytes(&plain);
    assert_eq!(u32::from_le_bytes(b3[8..12].try_into().unwrap()), 3);

    // Through C: raw rows give the means of the rows scaled by hand.
    let raw = raw_rows(16, 6);
    let mut scaled = raw.clone();
    train.scaler().apply(&mut scaled).unwrap();
    let (want, _) = vae.encode(&scaled).unwrap();
    let h = Box::into_raw(Box::new(latent::ffi::vae::latent_vae_from(back)));
    let mut mean = vec![0f32; 16 * 2];
    let st = unsafe {
        latent_vae_encode(h, raw.as_slice().as_ptr(), 16, 6, mean.as_mut_ptr(), std::ptr::null_mut(), mean.len())
    };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(mean, want.as_slice());
    let mut recon = vec![0f32; 16 * 6];
    let st = unsafe { latent_vae_reconstruct(h, raw.as_slice().as_ptr(), 16, 6, recon.as_mut_ptr(), recon.len()) };
    assert_eq!(st, LATENT_STATUS_OK);
    let mut want_recon = vae.reconstruct(&scaled).unwrap();
    train.scaler().invert(&mut want_recon).unwrap();
    assert_eq!(recon, want_recon.as_slice(), "raw units back");
    unsafe { latent_vae_free(h) };
}

#[test]
fn damaged_scaling_blocks_are_refused() {
    let mut net = Network::new(spec()).unwrap();
    net.set_input_scaler(Scaler::ZScore { mean: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], std: vec![1.0; 6] }).unwrap();
    let bytes = model_file::to_bytes(&net);
    let a = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let block = 20 + a - (12 + 16 * 6);
    let fixed = |at: usize, v: &[u8]| {
        let mut f = bytes.clone();
        f[at..at + v.len()].copy_from_slice(v);
        let n = f.len();
        let crc = latent::data::crc32::crc32(&f[..n - 4]);
        f[n - 4..].copy_from_slice(&crc.to_le_bytes());
        model_file::from_bytes(&f).map(|_| ()).unwrap_err().to_string()
    };
    assert!(fixed(block, &0i32.to_le_bytes()).contains("scaling method 0"));
    assert!(fixed(block + 4, &2u32.to_le_bytes()).contains("raw-input flag"));
    assert!(fixed(block + 8, &5u32.to_le_bytes()).contains("5 scaling columns"));
    assert!(fixed(block + 12, &(-0.0f64).to_le_bytes()).contains("-0"));
    assert!(fixed(block + 12 + 48, &(-1.0f64).to_le_bytes()).contains("negative std"));
    assert!(fixed(8, &9u32.to_le_bytes()).contains("written by a newer latent: format version 9"));
    assert!(fixed(8, &8u32.to_le_bytes()).contains("a version-8 file without a centred functional connection"));
}
