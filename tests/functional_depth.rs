//! Deep functional-transfer networks on MNIST, per family (Cai et al. 2017 train networks of up
//! to 10 hidden layers with their 20 families; the paper gives no table, so the protocol and the
//! bars are ours): 784 -> D × [64 units of family F, tanh] -> 10 dense logits, D = 3 and 10,
//! 2 epochs of Adam 1e-3 (batch 100) on the first 5,000 training digits, scored on the first
//! 2,000 test digits. With the author's U(−0.1, 0.1) ranges a 10-layer F16 network stays at
//! chance (its errors shrink ~37x per layer going down); the variance-preserving
//! initialisation (`Family::scaled_range`, docs/functional.md "Initialisation") trains every
//! family at both depths.
//!
//! `FT_SEED=n` runs another network/shuffling seed, `FT_MEASURE=1` prints without asserting
//! (how the table below was measured: seeds 1, 2, 3), `FT_ONLY=f01,f17` runs only those families.

mod common;

use latent::data::{Dataset, Scaling};
use latent::layer::{Connection, Family};
use latent::{Activation, Init, LayerSpec, Network, NetworkSpec, TrainConfig, Trainer};

fn mnist(train: bool, n: usize) -> Option<Dataset> {
    let dir = common::data_dir("mnist")?;
    let p = if train { "train" } else { "t10k" };
    let mut d = Dataset::from_idx(
        dir.join(format!("{p}-images-idx3-ubyte.gz")),
        Some(&dir.join(format!("{p}-labels-idx1-ubyte.gz"))),
    )
    .unwrap();
    d.scale(Scaling::Divide255).unwrap();
    Some(d.rows_range(0, n).unwrap())
}

fn accuracy(c: Connection, depth: usize, init: Init, seed: u64, train: &Dataset, test: &Dataset) -> f64 {
    let hidden = vec![LayerSpec::new(64, Activation::Tanh).connected(c); depth];
    let spec = NetworkSpec { seed, init, ..NetworkSpec::classifier(784, &hidden, 10).unwrap() };
    let mut net = Network::new(spec).unwrap();
    let cfg = TrainConfig { epochs: 2, batch_size: 100, learning_rate: 1e-3, seed, threads: 2, ..Default::default() };
    Trainer::new(cfg).unwrap().fit_dataset(&mut net, train, None, None).unwrap();
    net.evaluate(test).unwrap().accuracy
}

/// (family, depth-3 mean, margin, depth-10 mean, margin): the mean test accuracy over seeds 1, 2,
/// 3 (`FT_MEASURE=1 FT_SEED={1,2,3} cargo test --release --test functional_depth -- --nocapture`),
/// and a margin of twice the largest deviation of a seed from that mean, at least 0.03. Measured:
///
/// family  depth 3: seeds 1 2 3 -> mean ± margin | depth 10: seeds 1 2 3 -> mean ± margin
/// F01  d3 0.7025 0.6895 0.6940 -> 0.695 ± 0.03 | d10 0.7865 0.7715 0.7575 -> 0.772 ± 0.03
/// F02  d3 0.8245 0.8205 0.8140 -> 0.820 ± 0.03 | d10 0.8245 0.8175 0.8240 -> 0.822 ± 0.03
/// F03  d3 0.8770 0.8840 0.8860 -> 0.882 ± 0.03 | d10 0.8555 0.8760 0.8705 -> 0.867 ± 0.03
/// F04  d3 0.8770 0.8820 0.8785 -> 0.879 ± 0.03 | d10 0.8265 0.8800 0.8710 -> 0.859 ± 0.07
/// F05  d3 0.8600 0.8740 0.8600 -> 0.865 ± 0.03 | d10 0.8640 0.8845 0.8545 -> 0.868 ± 0.04
/// F06  d3 0.8665 0.8640 0.8545 -> 0.862 ± 0.03 | d10 0.8435 0.8625 0.8415 -> 0.849 ± 0.03
/// F07  d3 0.8670 0.8640 0.8550 -> 0.862 ± 0.03 | d10 0.8430 0.8625 0.8410 -> 0.849 ± 0.03
/// F08  d3 0.8645 0.8715 0.8535 -> 0.863 ± 0.03 | d10 0.8740 0.8530 0.8530 -> 0.860 ± 0.03
/// F09  d3 0.8455 0.8445 0.8465 -> 0.846 ± 0.03 | d10 0.7890 0.8170 0.8025 -> 0.803 ± 0.03
/// F10  d3 0.8130 0.7990 0.7880 -> 0.800 ± 0.03 | d10 0.8015 0.7780 0.7925 -> 0.791 ± 0.03
/// F11  d3 0.8190 0.8130 0.8030 -> 0.812 ± 0.03 | d10 0.8105 0.7955 0.8070 -> 0.804 ± 0.03
/// F12  d3 0.8555 0.8620 0.8455 -> 0.854 ± 0.03 | d10 0.8675 0.8690 0.8670 -> 0.868 ± 0.03
/// F13  d3 0.8610 0.8545 0.8520 -> 0.856 ± 0.03 | d10 0.8670 0.8685 0.8550 -> 0.864 ± 0.03
/// F14  d3 0.8610 0.8650 0.8510 -> 0.859 ± 0.03 | d10 0.8600 0.8530 0.8350 -> 0.849 ± 0.03
/// F15  d3 0.8435 0.8490 0.8435 -> 0.845 ± 0.03 | d10 0.7130 0.7045 0.7140 -> 0.711 ± 0.03
/// F16  d3 0.8635 0.8630 0.8595 -> 0.862 ± 0.03 | d10 0.8620 0.8600 0.8275 -> 0.850 ± 0.05
/// F17  d3 0.6340 0.5860 0.6100 -> 0.610 ± 0.05 | d10 0.2545 0.3235 0.3045 -> 0.294 ± 0.08
/// F18  d3 0.6970 0.6960 0.6835 -> 0.692 ± 0.03 | d10 0.6220 0.6100 0.6035 -> 0.612 ± 0.03
/// F19  d3 0.8270 0.8195 0.8015 -> 0.816 ± 0.03 | d10 0.7925 0.8235 0.8300 -> 0.815 ± 0.05
/// F20  d3 0.8525 0.8430 0.8465 -> 0.847 ± 0.03 | d10 0.8520 0.8565 0.8555 -> 0.855 ± 0.03
///
/// Measured with the centred form (`Family::centred`) and the near-identity start of square w²x,
/// w²x² and s w²x² layers (`Family::diagonal_gain`). The weakest at depth 10 at this budget are
/// F17 (w²x², which squares away the sign of what it passes on: 0.25-0.32) and F18 (0.60-0.62);
/// before those two changes F05 and F11 depended on the seed (0.13-0.34, 0.32-0.43) and F01,
/// F17, F18 stayed at 0.19-0.35. Every run must also beat CHANCE_FLOOR.
const EXPECTED: [(Family, f64, f64, f64, f64); 20] = [
    (Family::F01, 0.695, 0.03, 0.772, 0.03),
    (Family::F02, 0.820, 0.03, 0.822, 0.03),
    (Family::F03, 0.882, 0.03, 0.867, 0.03),
    (Family::F04, 0.879, 0.03, 0.859, 0.07),
    (Family::F05, 0.865, 0.03, 0.868, 0.04),
    (Family::F06, 0.862, 0.03, 0.849, 0.03),
    (Family::F07, 0.862, 0.03, 0.849, 0.03),
    (Family::F08, 0.863, 0.03, 0.860, 0.03),
    (Family::F09, 0.846, 0.03, 0.803, 0.03),
    (Family::F10, 0.800, 0.03, 0.791, 0.03),
    (Family::F11, 0.812, 0.03, 0.804, 0.03),
    (Family::F12, 0.854, 0.03, 0.868, 0.03),
    (Family::F13, 0.856, 0.03, 0.864, 0.03),
    (Family::F14, 0.859, 0.03, 0.849, 0.03),
    (Family::F15, 0.845, 0.03, 0.711, 0.03),
    (Family::F16, 0.862, 0.03, 0.850, 0.05),
    (Family::F17, 0.610, 0.05, 0.294, 0.08),
    (Family::F18, 0.692, 0.03, 0.612, 0.03),
    (Family::F19, 0.816, 0.03, 0.815, 0.05),
    (Family::F20, 0.847, 0.03, 0.855, 0.03),
];

/// Above the most frequent class of the 2,000 test digits (0.1135 of all 10,000; the lowest
/// seed above is 0.2545).
const CHANCE_FLOOR: f64 = 0.12;

#[test]
fn every_family_trains_at_depth_3_and_10() {
    let (Some(train), Some(test)) = (mnist(true, 5_000), mnist(false, 2_000)) else {
        return common::skip("every_family_trains_at_depth_3_and_10", "MNIST not found");
    };
    let seed: u64 = std::env::var("FT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let measure = std::env::var("FT_MEASURE").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let only = std::env::var("FT_ONLY").unwrap_or_default().to_lowercase();
    for f in
        Family::ALL.into_iter().filter(|f| only.is_empty() || only.split(',').any(|o| o == f.name().to_lowercase()))
    {
        let c = Connection::Functional(f);
        let a3 = accuracy(c, 3, Init::Auto, seed, &train, &test);
        let a10 = accuracy(c, 10, Init::Auto, seed, &train, &test);
        println!("{}: depth 3 {a3:.4}, depth 10 {a10:.4} (seed {seed})", f.name());
        if measure {
            continue;
        }
        let (_, e3, m3, e10, m10) = EXPECTED.iter().find(|e| e.0 == f).copied().expect("an expectation per family");
        for (d, a, e, m) in [(3, a3, e3, m3), (10, a10, e10, m10)] {
            if (a - e).abs() > m || a <= CHANCE_FLOOR {
                failures
                    .push(format!("{} depth {d}: {a:.4}, expected {e:.3} ± {m} and above {CHANCE_FLOOR}", f.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// latent_network_center_functional centres a new network's functional layers as its first fit
/// would (bit for bit the Rust `Network::center_functional`), leaves a dense network alone, and
/// refuses data of another width.
#[test]
fn centring_from_c_matches_the_rust_api() {
    use latent::ffi::*;
    let x: Vec<f32> = (0..300 * 12).map(|i| (i * 37 % 101) as f32 / 101.0).collect();
    let mut d = std::ptr::null_mut();
    let st = unsafe {
        latent_dataset_from_buffer(x.as_ptr().cast(), LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 300, 12, &mut d)
    };
    assert_eq!(st, LATENT_STATUS_OK);
    let params = |h: *mut latent_network| {
        let mut n = 0usize;
        assert_eq!(unsafe { latent_network_param_count(h, &mut n) }, LATENT_STATUS_OK);
        let mut p = vec![0f32; n];
        assert_eq!(unsafe { latent_network_get_params(h, p.as_mut_ptr(), n) }, LATENT_STATUS_OK);
        p
    };
    let enc = [LATENT_CONNECTION_F01, LATENT_CONNECTION_F16];
    let units = [8u32, 6];
    let acts = [LATENT_ACTIVATION_TANH, LATENT_ACTIVATION_TANH];
    let p = latent_network_params {
        input_dim: 12,
        encoder_units: units.as_ptr(),
        encoder_activations: acts.as_ptr(),
        n_encoder: 2,
        code_units: 3,
        encoder_connections: enc.as_ptr(),
        seed: 4,
        ..latent_network_params_default()
    };
    let mut h = std::ptr::null_mut();
    assert_eq!(unsafe { latent_network_new(&p, &mut h) }, LATENT_STATUS_OK);
    let before = params(h);
    assert_eq!(unsafe { latent_network_center_functional(h, d) }, LATENT_STATUS_OK);
    let after = params(h);
    assert_ne!(before, after, "the functional layers' biases moved");
    let mut rust = latent::model_file::from_bytes(&{
        let path = std::env::temp_dir().join(format!("center_{}.latent", std::process::id()));
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { latent_network_set_params(h, before.as_ptr(), before.len()) }, LATENT_STATUS_OK);
        assert_eq!(unsafe { latent_network_save(h, c.as_ptr()) }, LATENT_STATUS_OK);
        let b = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        b
    })
    .unwrap();
    let m = latent::tensor::Matrix::from_vec(300, 12, x.clone()).unwrap();
    rust.center_functional(&m, 1).unwrap();
    assert_eq!(rust.params(), after.as_slice(), "C and Rust centre alike");
    // Only the biases move.
    let moved = before.iter().zip(&after).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    // The mirrored decoder mirrors the connections too: four functional layers of 8, 6, 6, 8.
    assert_eq!(moved, 2 * (8 + 6), "the functional layers' biases, nothing else");

    let dense = latent_network_params { input_dim: 12, code_units: 3, ..latent_network_params_default() };
    let mut g = std::ptr::null_mut();
    assert_eq!(unsafe { latent_network_new(&dense, &mut g) }, LATENT_STATUS_OK);
    let b = params(g);
    assert_eq!(unsafe { latent_network_center_functional(g, d) }, LATENT_STATUS_OK);
    assert_eq!(b, params(g), "a dense network is left alone");

    let narrow = [0.5f32; 10 * 5];
    let mut d5 = std::ptr::null_mut();
    let st = unsafe {
        latent_dataset_from_buffer(narrow.as_ptr().cast(), LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 10, 5, &mut d5)
    };
    assert_eq!(st, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_center_functional(h, d5) }, LATENT_STATUS_SHAPE_MISMATCH);
    assert_eq!(unsafe { latent_network_center_functional(std::ptr::null_mut(), d) }, LATENT_STATUS_NULL_ARGUMENT);
    unsafe {
        latent_dataset_free(d);
        latent_dataset_free(d5);
        latent_network_free(h);
        latent_network_free(g);
    }
}
