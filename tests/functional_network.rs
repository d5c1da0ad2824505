//! Functional-transfer and memory layers inside networks: whole-network gradients against
//! finite differences (autoencoders and classifiers, every family in some position), model
//! files round-trip them, a functional classifier learns MNIST, and a memory layer memorises
//! the first 400 digits of pi (Cai et al. 2017's two experiments; the protocol is ours, see
//! README "Functional-transfer layers").

mod common;

use latent::data::Dataset;
use latent::layer::{Connection, Family};
use latent::model_file;
use latent::network::Workspace;
use latent::{Activation, LayerSpec, Matrix, Network, NetworkSpec, TrainConfig, Trainer};

fn random_dataset(rows: usize, cols: usize, seed: u64, scale: f32) -> Dataset {
    let mut rng = latent::rng::Rng::new(seed, 0);
    let v: Vec<f32> = (0..rows * cols).map(|_| scale * rng.normal()).collect();
    Dataset::from_buffer_f32(&v, rows, cols, false).unwrap()
}

/// Richardson-extrapolated central differences over the actual f32 steps.
fn numeric_grad(net: &mut Network, h: f32, loss: impl Fn(&Network) -> f64) -> Vec<f64> {
    let p0 = net.params().to_vec();
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
    let g = (0..p0.len())
        .map(|i| {
            let d1 = diff(net, i, h);
            let d2 = diff(net, i, 2.0 * h);
            (4.0 * d1 - d2) / 3.0
        })
        .collect();
    net.set_params(&p0).unwrap();
    g
}

/// Kinks: F06 and F07 at w = 0 (F07's gradient passes through it by design), F08 and F09 where
/// their relu's argument a x + c (c x + d) is 0. Move the parameters away from them (the
/// offset plane of a relu to |.| >= 0.5, beyond |a x| <= 0.25 plus any step) so that no
/// difference step crosses one.
fn off_the_kink(net: &mut Network, f: Family) {
    let plane = match f {
        Family::F06 | Family::F07 => 0,
        Family::F08 => 1,
        Family::F09 => 2,
        _ => return,
    };
    let shift = if plane == 0 { 0.05 } else { 0.5 };
    let mut p = net.params().to_vec();
    for l in net.layers().iter().filter(|l| l.functional().is_some()) {
        let n = l.n_in * l.n_out;
        if f == Family::F09 {
            // The variance-preserving init draws F09's c from U(−√3, √3): a tenth of it keeps
            // |c x| <= 0.25 for the inputs here.
            p[l.w + n..l.w + 2 * n].iter_mut().for_each(|c| *c *= 0.1);
        }
        let at = l.w + plane * n;
        p[at..at + n]
            .iter_mut()
            .for_each(|w| *w = if plane == 0 { shift + w.abs() } else { w.signum() * (shift + w.abs()) });
    }
    net.set_params(&p).unwrap();
}

fn analytic(net: &Network, rows: &Matrix) -> Vec<f32> {
    let mut ws: Workspace = net.workspace(rows.rows()).unwrap();
    let mut g = vec![0f32; net.param_count()];
    net.forward_backward(rows.as_slice(), rows.rows(), &mut ws, &mut g, 1);
    g
}

/// Worst |a - n| / (2e-2 |.| + 5e-5) over the parameters (the tolerance, 1.0 = at the limit).
fn worst(a: &[f32], n: &[f64]) -> f64 {
    a.iter()
        .zip(n)
        .map(|(&a, &n)| (a as f64 - n).abs() / (2e-2 * (a as f64).abs().max(n.abs()) + 5e-5))
        .fold(0.0, f64::max)
}

/// Every family, once as an encoder layer of an autoencoder (tanh, decoder dense) and once as
/// the output layer of a classifier: the whole network's gradient (through the layer's dx into
/// the layers below, and its parameters) matches finite differences of the loss.
#[test]
fn networks_with_every_family_have_exact_gradients() {
    let data = random_dataset(4, 5, 1, 0.7);
    let mut labelled = data.clone();
    labelled.set_labels(vec![0, 2, 1, 2]).unwrap();
    for f in Family::ALL {
        // Large pre-activations of the clipped families (F05 exp, F08 relu) would sit on a
        // clip; small random weights keep every z inside.
        let c = Connection::Functional(f);
        let ae = NetworkSpec {
            encoder: vec![LayerSpec::new(4, Activation::Tanh).connected(c)],
            code: LayerSpec::new(3, Activation::Tanh),
            output_activation: Activation::Identity,
            loss: latent::Loss::Mse,
            seed: 5,
            ..NetworkSpec::new(5, &[], Activation::Tanh, 3)
        };
        let mut net = Network::new(ae).unwrap();
        off_the_kink(&mut net, f);
        // F05's a multiplies exp(c x) with c in (-4, -2): at |x| ~ 2 a step of a moves f by
        // ~30 and the tanh curvature swamps the difference quotient; small inputs keep it in
        // the quadratic regime.
        let data = if f == Family::F05 { random_dataset(4, 5, 1, 0.25) } else { data.clone() };
        let a = analytic(&net, data.x());
        let n = numeric_grad(&mut net, 1e-2, |n| n.loss(data.x()).unwrap());
        let w1 = worst(&a, &n);
        let spec = NetworkSpec::classifier(5, &[LayerSpec::new(4, Activation::Tanh)], 3).unwrap();
        let mut clf = Network::new(NetworkSpec { output_connection: c, seed: 9, ..spec }).unwrap();
        off_the_kink(&mut clf, f);
        let rows = clf.task().training_matrix(&labelled, "data").unwrap();
        let a2 = analytic(&clf, &rows);
        let n2 = numeric_grad(&mut clf, 1e-2, |n| n.evaluate(&labelled).unwrap().loss);
        let w2 = worst(&a2, &n2);
        println!("{}: autoencoder {w1:.3}, classifier output {w2:.3} of tolerance", f.name());
        assert!(w1 < 1.0 && w2 < 1.0, "{}: {w1} {w2}", f.name());
    }
}

/// A memory layer in a network: one-step-truncated gradients are what the layer defines, so
/// the check runs on a single row from a zero state (where truncation changes nothing).
#[test]
fn a_memory_layer_in_a_network_has_exact_one_step_gradients() {
    let mut data = random_dataset(1, 6, 2, 1.0);
    data.set_labels(vec![3]).unwrap();
    let spec =
        NetworkSpec::classifier(6, &[LayerSpec::new(5, Activation::Tanh).connected(Connection::Memory)], 4).unwrap();
    let mut net = Network::new(spec).unwrap();
    let rows = net.task().training_matrix(&data, "data").unwrap();
    let a = analytic(&net, &rows);
    let n = numeric_grad(&mut net, 1e-2, |n| n.evaluate(&data).unwrap().loss);
    let w = worst(&a, &n);
    println!("memory: worst {w:.3} of tolerance");
    assert!(w < 1.0, "{w}");
}

#[test]
fn functional_networks_round_trip_through_model_files() {
    let x = random_dataset(7, 6, 3, 1.0);
    let spec = NetworkSpec {
        encoder: vec![LayerSpec::new(5, Activation::Tanh).connected(Connection::Functional(Family::F12))],
        code: LayerSpec::new(3, Activation::Sigmoid).connected(Connection::Functional(Family::F20)),
        decoder: Some(vec![LayerSpec::new(4, Activation::Relu).connected(Connection::Memory)]),
        output_connection: Connection::Functional(Family::F05),
        ..NetworkSpec::new(6, &[], Activation::Tanh, 3)
    };
    let net = Network::new(spec).unwrap();
    let bytes = model_file::to_bytes(&net);
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 8, "centred functional layers: version 8");
    let back = model_file::from_bytes(&bytes).unwrap();
    assert_eq!(back.spec(), net.spec());
    assert_eq!(back.reconstruct(x.x()).unwrap(), net.reconstruct(x.x()).unwrap());
    assert!(net.describe().contains("functional f12") && net.describe().contains("memory"));
    // Functional layers refuse what needs weight matrices.
    let s = net.spec().clone();
    assert!(
        Network::new(NetworkSpec {
            regularization: latent::Regularization { contractive: 0.1, ..Default::default() },
            ..s.clone()
        })
        .is_err()
    );
    assert!(net.encoder_jacobian_norms(x.x()).is_err());
}

fn mnist(train: bool, n: usize) -> Option<Dataset> {
    let dir = common::data_dir("mnist")?;
    let p = if train { "train" } else { "t10k" };
    let mut d = Dataset::from_idx(
        dir.join(format!("{p}-images-idx3-ubyte.gz")),
        Some(&dir.join(format!("{p}-labels-idx1-ubyte.gz"))),
    )
    .unwrap();
    d.scale(latent::data::Scaling::Divide255).unwrap();
    Some(if n < d.rows() { d.rows_range(0, n).unwrap() } else { d })
}

/// Measured with the variance-preserving initialisation: 0.9598 (seed 0, the default), 0.9586
/// (seed 1), 0.9576 (seed 2); the author's U(−0.1, 0.1) ranges gave 0.9604 at seed 0 against a
/// bar of 0.96. The bar sits 0.0076 below the lowest seed, over three times their spread.
const F03_BAR: f64 = 0.95;

/// A 784-[100 F03 tanh]-10 functional classifier (a x^2 + c x per connection), 2 epochs of
/// Adam on all 60,000 training digits, scored on the 10,000 test digits. `FT_SEED=n` runs
/// another network and shuffling seed (the bar's margin comes from seeds 0, 1, 2: see F03_BAR).
#[test]
fn functional_classifier_learns_mnist() {
    let (Some(train), Some(test)) = (mnist(true, 60_000), mnist(false, 10_000)) else {
        return common::skip("functional_classifier_learns_mnist", "MNIST not found");
    };
    let hidden = LayerSpec::new(100, Activation::Tanh).connected(Connection::Functional(Family::F03));
    let seed: u64 = std::env::var("FT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let spec = NetworkSpec { seed, ..NetworkSpec::classifier(784, &[hidden], 10).unwrap() };
    let mut net = Network::new(spec).unwrap();
    let cfg = TrainConfig { epochs: 2, batch_size: 100, learning_rate: 1e-3, seed, ..Default::default() };
    Trainer::new(cfg).unwrap().fit_dataset(&mut net, &train, None, None).unwrap();
    let e = net.evaluate(&test).unwrap();
    println!("F03 classifier (seed {seed}): test accuracy {:.4}", e.accuracy);
    assert!(e.accuracy >= F03_BAR, "{}", e.accuracy);
}

/// The first `n` decimal digits of pi (3, 1, 4, 1, 5, ...) by Rabinowitz and Wagon's spigot.
fn pi_digits(n: usize) -> Vec<u8> {
    let len = 10 * n / 3 + 2;
    let mut a = vec![2u64; len];
    let (mut out, mut nines, mut predigit) = (Vec::with_capacity(n + 2), 0usize, 0u64);
    for _ in 0..n + 1 {
        let mut carry = 0u64;
        for i in (0..len).rev() {
            let x = 10 * a[i] + carry * (i as u64 + 1);
            let d = 2 * i as u64 + 1;
            a[i] = x % d;
            carry = x / d;
        }
        a[0] = carry % 10;
        let q = carry / 10;
        match q {
            9 => nines += 1,
            10 => {
                out.push(predigit as u8 + 1);
                out.extend(std::iter::repeat_n(0u8, nines));
                predigit = 0;
                nines = 0;
            }
            _ => {
                out.push(predigit as u8);
                out.extend(std::iter::repeat_n(9u8, nines));
                predigit = q;
                nines = 0;
            }
        }
    }
    out.push(predigit as u8);
    out.remove(0); // the leading 0 the spigot emits first
    out.truncate(n);
    out
}

/// The memory experiment: a memory layer 10 -> 32 (tanh), a dense tanh layer of 128 and a
/// softmax over the next digit, fed the one-hot of digit t and asked for digit t + 1 of pi's
/// first 401, trained online (batch 1, no shuffling, the state carried across steps and reset
/// each epoch) for 500 epochs of Adam at 1e-3. Replayed from a zero state over the same inputs
/// (teacher forcing) it predicts at least 95% of the 400 next digits (measured 100%; network
/// seeds 0-7: 99.8% to 100%). Shorter runs sit on a knife edge: 300 epochs spread from 88.0% to
/// 100% over those seeds, and the earlier 200 epochs at 3e-3 from 77.7% to 99.3% (seeds 0-5), so a change of
/// the one-row product's rounding alone moved seed 0 by ten points; anything that sees only the
/// current digit is bounded by the 'most frequent successor' table (19.0%), and a memory layer
/// with a linear softmax readout reached 47% (32 units) to 48% (256 units).
#[test]
fn a_memory_layer_memorises_400_digits_of_pi() {
    let digits = pi_digits(401);
    assert_eq!(&digits[..12], &[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]);
    let n = 400;
    let mut x = vec![0f32; n * 10];
    for t in 0..n {
        x[t * 10 + digits[t] as usize] = 1.0;
    }
    let mut data = Dataset::from_buffer_f32(&x, n, 10, false).unwrap();
    data.set_labels(digits[1..=n].iter().map(|&d| d as i32).collect()).unwrap();
    let memory = LayerSpec::new(32, Activation::Tanh).connected(Connection::Memory);
    let readout = LayerSpec::new(128, Activation::Tanh);
    let mut net = Network::new(NetworkSpec::classifier(10, &[memory, readout], 10).unwrap()).unwrap();
    let cfg = TrainConfig {
        epochs: 500,
        batch_size: 1,
        learning_rate: 1e-3,
        shuffle: false,
        threads: 1,
        ..Default::default()
    };
    Trainer::new(cfg).unwrap().fit_dataset(&mut net, &data, None, None).unwrap();
    let e = net.evaluate(&data).unwrap();
    // Memoryless baseline: the most frequent successor of each digit.
    let mut counts = [[0usize; 10]; 10];
    for t in 0..n {
        counts[digits[t] as usize][digits[t + 1] as usize] += 1;
    }
    let table: usize = counts.iter().map(|c| *c.iter().max().unwrap()).sum();
    println!(
        "memory layer: {:.1}% of the next digits from replay; a memoryless table gets {:.1}%",
        100.0 * e.accuracy,
        100.0 * table as f64 / n as f64
    );
    assert!(e.accuracy >= 0.95, "{}", e.accuracy);
    assert!((table as f64) < 0.25 * n as f64);
}

/// tests/c/functional_memory.c: the same memory experiment through the C API (a memory layer
/// set with LATENT_CONNECTION_MEMORY in `encoder_connections`), compiled against the header and
/// run; it asserts at least 95% of the 400 next digits from replay (measured 100%, the Rust
/// run's number: same settings, one thread, bit-identical).
#[test]
fn a_c_program_memorises_400_digits_of_pi() {
    let dir = common::scratch("functional_memory_c");
    let exe = dir.join("functional_memory");
    common::compile_c(&[common::root().join("tests/c/functional_memory.c")], &exe, &[]);
    let (code, out, err) = common::run(&mut std::process::Command::new(&exe));
    println!("{out}");
    assert_eq!(code, 0, "tests/c/functional_memory.c failed:\n{out}\n{err}");
    assert!(out.contains("0 failures") && out.contains("memory layer from C"), "{out}");
}
