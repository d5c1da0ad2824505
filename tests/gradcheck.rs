//! Finite-difference checks of `Network::forward_backward`: the gradient it writes must be the
//! gradient of the mean element loss, for every activation, both losses, tied and untied weights,
//! mirrored and explicit decoders, shallow and deep networks; weight decay must be the gradient of
//! 0.5 * wd * (sum of squared weights, biases excluded); and the forward values must agree with an
//! independent f64 evaluation and with encode / decode / reconstruct.
//!
//! How the check stays sharp on an f32 engine:
//! - the loss is the engine's mean element loss summed in f64 (`Network::loss`; it must agree
//!   with forward_backward's returned sum / element count to 1e-6, which since that sum adds
//!   elements in f32 runs is ~10x noisier in a difference quotient);
//! - central differences over the *actual* f32 step (p + h and p - h are rounded to f32 and the
//!   quotient divides by their true difference), Richardson-extrapolated from steps h and 2h,
//!   D = (4 D(h) - D(2h)) / 3, which cancels the h^2 truncation term: with h = 1e-2 what remains
//!   is mostly the f32 rounding noise of the forward pass divided by 2h, a few 1e-6 (plain central
//!   differences were ~10x worse: ~2e-5 at h = 1e-3 from noise, at h = 1e-2 from truncation).
//!   Over every case here at most ~15% of the tolerance below is used (printed per case);
//! - ReLU and leaky ReLU have a kink at 0: the test point is chosen with every ReLU-family
//!   pre-activation at least `KINK_MARGIN` away from 0 on every row, so no step crosses a kink;
//!   as a safety net a coordinate is skipped, and counted, when a step still flips the sign of a
//!   ReLU-family unit on some row (read from the workspace's layer outputs). None should be;
//! - tolerance per parameter |a - n| <= REL_TOL * max(|a|, |n|) + ABS_TOL, and every weight and
//!   bias block must have a numerical gradient entry >= 5 * ABS_TOL, so a missing, mis-scaled
//!   or transposed block gradient cannot hide under the floor.
//!
//! Each of these deliberate breakages of src/ was checked to fail this file: bias gradient
//! missing or from one row only; the derivative of tanh, sigmoid, ReLU (at 0), leaky ReLU (slope
//! 0), ELU, softplus or GELU wrong; dx computed with the weights' transpose flipped; a tied
//! matrix's gradient written in the untied layout, or counting only one of its two uses; MSE's
//! factor 2 or its output-activation derivative dropped; BCE's gradient of the sum, not the mean;
//! weight decay applied to biases or doubled.
//!
//! `cargo test --release --test gradcheck -- --nocapture` prints the measured errors per case.

use latent::network::Workspace;
use latent::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use latent::rng::Rng;
use latent::{Activation, Init, LayerSpec, Loss, Matrix, Network, NetworkSpec};

/// Relative part of the tolerance. Real defects (a wrong derivative, factor, transpose or a
/// missing term) give O(1) relative errors; noise gives < 1e-2 only on entries within ~100x the
/// absolute floor, which the floor covers.
const REL_TOL: f64 = 1e-2;
/// Absolute floor, for entries near 0 (dead units, cancellations): ~7x the worst measured
/// finite-difference noise (3e-6). Typical gradient entries are 1e-3..1e-1.
const ABS_TOL: f64 = 2e-5;
/// Finite-difference step before rounding p +- h to f32 (also 2h for the extrapolation).
const H: f32 = 1e-2;
/// Minimum |pre-activation| of ReLU-family units at the test point: > 2h times any plausible
/// |dz/dparam| (inputs and weights are O(1)), so a step of 2h cannot reach the kink.
const KINK_MARGIN: f64 = 0.1;
const ROWS: usize = 5;

fn layer(units: usize, activation: Activation) -> LayerSpec {
    LayerSpec::new(units, activation)
}

#[allow(clippy::too_many_arguments)]
fn spec(
    input_dim: usize,
    encoder: &[LayerSpec],
    code: LayerSpec,
    decoder: Option<&[LayerSpec]>,
    output_activation: Activation,
    loss: Loss,
    tied_weights: bool,
) -> NetworkSpec {
    NetworkSpec {
        input_dim,
        encoder: encoder.to_vec(),
        code,
        decoder: decoder.map(|d| d.to_vec()),
        output_activation,
        loss,
        tied_weights,
        init: Init::Auto,
        seed: 7,
        regularization: Default::default(),
        task: Default::default(),
        output_connection: Default::default(),
    }
}

/// rows x cols inputs (also the targets) in [0.05, 0.95]: valid BCE targets, never exactly 0/1.
fn inputs(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed, 200);
    (0..rows * cols).map(|_| 0.05 + 0.9 * rng.uniform()).collect()
}

/// A test point: inputs, and a network with weights drawn from U(-a, a), a = 2 / sqrt(fan_in),
/// and biases (tied decoders' too) from U(-0.5, 0.5) (ReLU family: U(-0.2, 0.8)): a generic
/// point with pre-activations of O(1), so sigmoid and tanh work off their flat tails and
/// gradients reach the first layer.
fn draw_point(spec: NetworkSpec, seed: u64, rows: usize) -> (Network, Vec<f32>) {
    let x = inputs(rows, spec.input_dim, seed);
    let mut net = Network::new(spec).expect("valid spec");
    let mut rng = Rng::new(seed, 100);
    let mut draw = move |a: f32| a * (2.0 * rng.uniform() - 1.0);
    let mut p = vec![f32::NAN; net.param_count()];
    for l in net.layers() {
        if !l.tied {
            let a = 2.0 / (l.n_in as f32).sqrt();
            p[l.w..l.w + l.n_in * l.n_out].iter_mut().for_each(|v| *v = draw(a));
        }
        // ReLU units lean active (U(-0.2, 0.8)): in these narrow networks, centred biases leave
        // so many units dead that little gradient reaches the first layers.
        let shift = if is_kinked(l.activation) { 0.3 } else { 0.0 };
        p[l.b..l.b + l.n_out].iter_mut().for_each(|v| *v = shift + draw(0.5));
    }
    net.set_params(&p).expect("every parameter drawn");
    (net, x)
}

/// draw_point(), then, layer by layer, every ReLU-family unit (and ELU unit: its second
/// derivative jumps at 0, which spoils the extrapolation) gets the bias nearest to its drawn one
/// that keeps its pre-activation at least KINK_MARGIN away from 0 on every row.
fn setup(spec: NetworkSpec, seed: u64, rows: usize) -> (Network, Vec<f32>) {
    let (mut net, x) = draw_point(spec, seed, rows);
    for i in 0..net.layers().len() {
        let l = net.layers()[i].clone();
        if !is_kinked(l.activation) && l.activation != Activation::Elu {
            continue;
        }
        let mut p = net.params().to_vec();
        let z = &reference_preactivations(&net, &x, rows)[i];
        for unit in 0..l.n_out {
            let b0 = p[l.b + unit] as f64;
            // s: the pre-activations without the bias; b is feasible when |s + b| >= margin.
            let s: Vec<f64> = (0..rows).map(|r| z[r * l.n_out + unit] - b0).collect();
            let feasible = |b: f64| s.iter().all(|s| (s + b).abs() >= KINK_MARGIN);
            let margin = KINK_MARGIN * 1.01;
            let best = std::iter::once(b0)
                .chain(s.iter().flat_map(|s| [-s - margin, -s + margin]))
                .filter(|&b| feasible(b))
                .min_by(|a, b| (a - b0).abs().total_cmp(&(b - b0).abs()))
                .expect("b far from every -s is feasible");
            p[l.b + unit] = best as f32;
        }
        net.set_params(&p).unwrap();
        let z = &reference_preactivations(&net, &x, rows)[i];
        assert!(z.iter().all(|z| z.abs() >= KINK_MARGIN * 0.999), "layer {i} kept off its kink");
    }
    if matches!(net.spec().loss, Loss::Mae | Loss::L1) {
        keep_output_off_targets(&mut net, &x, rows);
    }
    (net, x)
}

/// MAE and L1 are kinked where an output equals its target, at pre-activation c = act^-1(t)
/// (identity: t; sigmoid: logit(t)): each output unit gets the bias nearest to its drawn one
/// that keeps every row's pre-activation at least KINK_MARGIN from its c.
fn keep_output_off_targets(net: &mut Network, x: &[f32], rows: usize) {
    let i = net.layers().len() - 1;
    let l = net.layers()[i].clone();
    let inverse = |t: f64| match l.activation {
        Activation::Identity => t,
        Activation::Sigmoid => (t / (1.0 - t)).ln(),
        a => panic!("no kink placement for a {} output", a.name()),
    };
    let mut p = net.params().to_vec();
    let z = &reference_preactivations(net, x, rows)[i];
    for unit in 0..l.n_out {
        let b0 = p[l.b + unit] as f64;
        let s: Vec<f64> =
            (0..rows).map(|r| z[r * l.n_out + unit] - b0 - inverse(x[r * l.n_out + unit] as f64)).collect();
        let feasible = |b: f64| s.iter().all(|s| (s + b).abs() >= KINK_MARGIN);
        let margin = KINK_MARGIN * 1.01;
        let best = std::iter::once(b0)
            .chain(s.iter().flat_map(|s| [-s - margin, -s + margin]))
            .filter(|&b| feasible(b))
            .min_by(|a, b| (a - b0).abs().total_cmp(&(b - b0).abs()))
            .expect("b far from every -s is feasible");
        p[l.b + unit] = best as f32;
    }
    net.set_params(&p).unwrap();
}

fn is_kinked(a: Activation) -> bool {
    matches!(a, Activation::Relu | Activation::LeakyRelu)
}

/// Mean loss at `params`, and the sign pattern of every ReLU-family unit on every row.
///
/// The value is `Network::loss`, the engine's forward pass with the element losses summed in
/// f64. forward_backward's returned sum (which gives the masks here) adds the element losses in
/// f32 runs of 256 before f64, which is fine for reporting but ~10x noisier in a difference
/// quotient; the two must agree to 1e-6 relative (asserted).
fn mean_loss(net: &mut Network, params: &[f32], x: &Matrix, ws: &mut Workspace) -> (f64, Vec<bool>) {
    net.set_params(params).expect("finite params");
    let rows = x.rows();
    let mut g = vec![0f32; params.len()];
    let sum = net.forward_backward(x.as_slice(), rows, ws, &mut g, 1);
    let mut mask = Vec::new();
    for (i, l) in net.layers().iter().enumerate() {
        if is_kinked(l.activation) {
            mask.extend(ws.output(i)[..rows * l.n_out].iter().map(|&y| y > 0.0));
        }
    }
    // MAE and L1 have their kink where the output meets its target.
    if matches!(net.spec().loss, Loss::Mae | Loss::L1) {
        let n = net.layers().len() - 1;
        mask.extend(ws.output(n)[..x.as_slice().len()].iter().zip(x.as_slice()).map(|(&y, &t)| y > t));
    }
    let mean = net.loss(x).expect("loss");
    let reported = sum / (rows * net.input_dim()) as f64;
    assert!((reported - mean).abs() <= 1e-6 * mean.abs(), "forward_backward's loss {reported} vs loss() {mean}");
    (mean, mask)
}

/// d/dp_i of (mean loss + penalty) at p0 by extrapolated central differences over the actual f32
/// steps; None when a step crosses a ReLU kink.
fn central_difference(
    net: &mut Network,
    p0: &[f32],
    i: usize,
    x: &Matrix,
    ws: &mut Workspace,
    penalty: &dyn Fn(&[f32]) -> f64,
) -> Option<f64> {
    let base_mask = mean_loss(net, p0, x, ws).1;
    let mut p = p0.to_vec();
    let mut diff = |h: f32| -> Option<f64> {
        p[i] = p0[i] + h;
        let hi = p[i] as f64;
        let (f_hi, m_hi) = mean_loss(net, &p, x, ws);
        let f_hi = f_hi + penalty(&p);
        p[i] = p0[i] - h;
        let lo = p[i] as f64;
        let (f_lo, m_lo) = mean_loss(net, &p, x, ws);
        let f_lo = f_lo + penalty(&p);
        if m_hi != base_mask || m_lo != base_mask {
            return None;
        }
        Some((f_hi - f_lo) / (hi - lo))
    };
    let d1 = diff(H)?;
    let d2 = diff(2.0 * H)?;
    Some((4.0 * d1 - d2) / 3.0)
}

fn close(a: f64, n: f64) -> bool {
    (a - n).abs() <= REL_TOL * a.abs().max(n.abs()) + ABS_TOL
}

/// Named parameter blocks of a network: each layer's own weights (untied only) and bias.
fn blocks(net: &Network) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    for (i, l) in net.layers().iter().enumerate() {
        if !l.tied {
            out.push((format!("layer {i} weights"), l.w..l.w + l.n_in * l.n_out));
        }
        out.push((format!("layer {i} bias"), l.b..l.b + l.n_out));
    }
    out
}

/// Compares `analytic` (one entry per parameter) with central differences of
/// mean loss + penalty(params); panics with the first few mismatches.
fn compare(label: &str, net: &Network, x: &[f32], rows: usize, analytic: &[f32], penalty: &dyn Fn(&[f32]) -> f64) {
    let mut work = net.clone();
    let p0 = net.params().to_vec();
    let mut ws = net.workspace(rows).expect("workspace");
    let xm = Matrix::from_vec(rows, net.input_dim(), x[..rows * net.input_dim()].to_vec()).expect("inputs");
    let n = p0.len();
    // NaN marks a coordinate skipped at a kink.
    let numeric: Vec<f64> =
        (0..n).map(|i| central_difference(&mut work, &p0, i, &xm, &mut ws, penalty).unwrap_or(f64::NAN)).collect();
    let skipped = numeric.iter().filter(|v| v.is_nan()).count();
    let mut bad = Vec::new();
    // Worst fraction of the tolerance used, and worst relative error on entries >= 100 * ABS_TOL
    // (where noise is negligible, so this shows any systematic error).
    let (mut used, mut worst_rel) = (0f64, 0f64);
    for i in 0..n {
        let (a, num) = (analytic[i] as f64, numeric[i]);
        if num.is_nan() {
            continue;
        }
        let err = (a - num).abs();
        used = used.max(err / (REL_TOL * a.abs().max(num.abs()) + ABS_TOL));
        if num.abs() >= 100.0 * ABS_TOL {
            worst_rel = worst_rel.max(err / num.abs());
        }
        if !close(a, num) {
            bad.push(format!("param {i}: analytic {a:.7e}, numerical {num:.7e}"));
        }
    }
    println!(
        "{label}: {n} params, {skipped} skipped at a kink, {:.0}% of the tolerance used, worst relative error {worst_rel:.1e}",
        100.0 * used
    );
    assert!(
        bad.is_empty(),
        "{label}: {} of {n} gradient entries disagree:\n  {}",
        bad.len(),
        bad[..bad.len().min(12)].join("\n  ")
    );
    assert!(skipped * 50 <= n, "{label}: {skipped} of {n} coordinates crossed a ReLU kink: the check lost its power");
    // Every block must carry a gradient well above the absolute floor, so that a block whose
    // gradient were missing (left at 0), or wrong by a factor, could not pass.
    let mut weakest = (f64::INFINITY, String::new());
    for (name, r) in blocks(net) {
        let biggest = numeric[r.clone()].iter().filter(|v| !v.is_nan()).fold(0f64, |m, v| m.max(v.abs()));
        if biggest < weakest.0 {
            weakest = (biggest, name.clone());
        }
    }
    assert!(
        weakest.0 >= 5.0 * ABS_TOL,
        "{label}: {} has numerical gradient at most {:.1e}: a weak test point",
        weakest.1,
        weakest.0
    );
}

/// forward_backward's gradient (into a buffer pre-filled with NaN: every entry must be written)
/// checked against central differences of the mean loss.
fn check(label: &str, net: &Network, x: &[f32], rows: usize) {
    let mut ws = net.workspace(rows).expect("workspace");
    let mut grads = vec![f32::NAN; net.param_count()];
    let sum = net.forward_backward(x, rows, &mut ws, &mut grads, 1);
    assert!(sum.is_finite(), "{label}: loss {sum}");
    if let Some(i) = grads.iter().position(|g| !g.is_finite()) {
        panic!("{label}: gradient entry {i} is {} (not written?)", grads[i]);
    }
    check_forward(label, net, x, rows, sum);
    compare(label, net, x, rows, &grads, &|_| 0.0);
}

// ---------------------------------------------------------------------------------------------
// An independent f64 forward pass, written from the documented conventions (weights n_in x n_out
// row-major, y = f(x W + b); a tied decoder layer uses the transpose of its mirror's weights;
// BCE from the logits, MSE on the output; mean over every element).

fn erf64(x: f64) -> f64 {
    // Maclaurin series: converges for every x, accurate to ~1e-10 for |x| <= 4; beyond, erf is 1
    // to within 2e-8.
    if x.abs() > 4.0 {
        return x.signum();
    }
    let (mut term, mut sum, x2) = (x, x, x * x);
    for n in 1..200 {
        term *= -x2 / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn act64(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Identity => z,
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Relu => z.max(0.0),
        Activation::LeakyRelu => {
            if z > 0.0 {
                z
            } else {
                0.01 * z
            }
        }
        Activation::Elu => {
            if z > 0.0 {
                z
            } else {
                z.exp() - 1.0
            }
        }
        Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
        Activation::Gelu => 0.5 * z * (1.0 + erf64(z / std::f64::consts::SQRT_2)),
    }
}

/// Pre-activations z (bias included) of every layer on every row, computed in f64 from the
/// network's parameters: `z[layer][row * n_out + unit]`.
fn reference_preactivations(net: &Network, x: &[f32], rows: usize) -> Vec<Vec<f64>> {
    let p = net.params();
    let layers = net.layers();
    let n_enc = net.n_encoder_layers();
    let mut zs: Vec<Vec<f64>> = Vec::with_capacity(layers.len());
    let mut a: Vec<f64> = x[..rows * net.input_dim()].iter().map(|&v| v as f64).collect();
    for (i, l) in layers.iter().enumerate() {
        let mut z = vec![0f64; rows * l.n_out];
        for r in 0..rows {
            for k in 0..l.n_out {
                let mut acc = p[l.b + k] as f64;
                for j in 0..l.n_in {
                    let w = if l.tied {
                        // Decoder layer i reuses the weights of its mirror, encoder layer
                        // 2 * n_enc - 1 - i, stored n_in x n_out there = this layer's n_out x n_in.
                        let m = &layers[2 * n_enc - 1 - i];
                        assert_eq!((m.n_in, m.n_out), (l.n_out, l.n_in));
                        p[m.w + k * m.n_out + j]
                    } else {
                        p[l.w + j * l.n_out + k]
                    };
                    acc += a[r * l.n_in + j] * w as f64;
                }
                z[r * l.n_out + k] = acc;
            }
        }
        a = z.iter().map(|&v| act64(l.activation, v)).collect();
        zs.push(z);
    }
    zs
}

/// Row score R of one row in f64 from the output pre-activations `z` (bias included) and
/// targets `t`, written from the documented formulas (DL4J's per-example scores).
fn reference_row(loss: Loss, out: Activation, z: &[f64], t: &[f64]) -> f64 {
    let n = z.len() as f64;
    let y: Vec<f64> = z.iter().map(|&v| act64(out, v)).collect();
    let sum = |f: &dyn Fn(f64, f64) -> f64| y.iter().zip(t).map(|(&y, &t)| f(y, t)).sum::<f64>();
    match loss {
        Loss::Mse => sum(&|y, t| (y - t) * (y - t)) / n,
        Loss::BinaryCrossEntropy => {
            z.iter().zip(t).map(|(&z, &t)| act64(Activation::Softplus, z) - t * z).sum::<f64>() / n
        }
        Loss::Mae => sum(&|y, t| (y - t).abs()) / n,
        Loss::L1 => sum(&|y, t| (y - t).abs()),
        Loss::L2 => sum(&|y, t| (y - t) * (y - t)),
        Loss::Msle => sum(&|y, t| (y.ln_1p() - t.ln_1p()).powi(2)) / n,
        Loss::Poisson => sum(&|y, t| y - t * y.ln()),
        Loss::CosineProximity => {
            let dot = sum(&|y, t| y * t);
            let ny = y.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-5);
            let nt = t.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-5);
            -dot / (ny * nt)
        }
        Loss::KlDivergence | Loss::Mcxent => {
            // p = softmax of the identity output's logits, summed naively (moderate logits).
            let s: f64 = z.iter().map(|v| v.exp()).sum();
            let kl = loss == Loss::KlDivergence;
            z.iter()
                .zip(t)
                .filter(|(_, t)| **t > 0.0)
                .map(|(&z, &t)| -t * (z.exp() / s).ln() + if kl { t * t.ln() } else { 0.0 })
                .sum()
        }
    }
}

/// Mean loss of `net` on x computed in f64 from its spec and parameters: the mean over rows of
/// the row score (for MSE and BCE, the mean over every element).
fn reference_mean_loss(net: &Network, x: &[f32], rows: usize) -> f64 {
    let s = net.spec();
    let zs = reference_preactivations(net, x, rows);
    let logits = zs.last().expect("layers");
    let d = s.input_dim;
    let mut total = 0f64;
    for r in 0..rows {
        let t: Vec<f64> = x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
        total += reference_row(s.loss, s.output_activation, &logits[r * d..(r + 1) * d], &t);
    }
    total / rows as f64
}

fn check_forward(label: &str, net: &Network, x: &[f32], rows: usize, sum: f64) {
    let engine = sum / (rows * net.input_dim()) as f64;
    let reference = reference_mean_loss(net, x, rows);
    // f32 forward pass vs f64: a few ulps of f32 per layer, relative to the loss.
    assert!(
        (engine - reference).abs() <= 1e-5 * reference.abs() + 1e-7,
        "{label}: forward loss {engine:.9} vs f64 reference {reference:.9}"
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn every_activation_as_hidden_and_code_with_every_output_and_loss() {
    let outputs = [
        (Activation::Identity, Loss::Mse),
        (Activation::Sigmoid, Loss::Mse),
        (Activation::Tanh, Loss::Mse),
        (Activation::Sigmoid, Loss::BinaryCrossEntropy),
    ];
    for (ai, &act) in Activation::ALL.iter().enumerate() {
        for (oi, &(out, loss)) in outputs.iter().enumerate() {
            let s = spec(6, &[layer(5, act)], layer(3, act), None, out, loss, false);
            let (net, x) = setup(s, (ai * 10 + oi) as u64, ROWS);
            check(
                &format!("6-5-3-5-6 {} hidden+code, {} output, {}", act.name(), out.name(), loss.name()),
                &net,
                &x,
                ROWS,
            );
        }
    }
}

#[test]
fn code_activation_differs_from_hidden_activation() {
    // Each activation as the code layer between tanh / softplus hidden layers, and as the hidden
    // layers around an identity code: a derivative applied to the wrong layer would show here.
    for (ai, &act) in Activation::ALL.iter().enumerate() {
        let hidden = if ai % 2 == 0 { Activation::Tanh } else { Activation::Softplus };
        let s = spec(7, &[layer(5, hidden)], layer(3, act), None, Activation::Sigmoid, Loss::BinaryCrossEntropy, false);
        let (net, x) = setup(s, 300 + ai as u64, ROWS);
        check(&format!("7-5-3-5-7 {} hidden, {} code", hidden.name(), act.name()), &net, &x, ROWS);

        let s = spec(7, &[layer(5, act)], layer(3, Activation::Identity), None, Activation::Identity, Loss::Mse, false);
        let (net, x) = setup(s, 400 + ai as u64, ROWS);
        check(&format!("7-5-3-5-7 {} hidden, identity code", act.name()), &net, &x, ROWS);
    }
}

#[test]
fn deep_and_shallow_untied() {
    for (k, &act) in [Activation::Tanh, Activation::Relu, Activation::LeakyRelu, Activation::Gelu].iter().enumerate() {
        let seed = 10 + 2 * k as u64;
        let s = spec(
            7,
            &[layer(6, act), layer(4, act)],
            layer(3, act),
            None,
            Activation::Sigmoid,
            Loss::BinaryCrossEntropy,
            false,
        );
        let (net, x) = setup(s, seed, ROWS);
        check(&format!("deep 7-6-4-3-4-6-7 {}", act.name()), &net, &x, ROWS);
        let s = spec(6, &[], layer(3, act), None, Activation::Identity, Loss::Mse, false);
        let (net, x) = setup(s, seed + 1, ROWS);
        check(&format!("shallow 6-3-6 {}", act.name()), &net, &x, ROWS);
    }
}

#[test]
fn tied_weights_shallow_one_and_two_hidden_layers() {
    // A tied matrix is used twice (encoder: x W, decoder: y W^T); its gradient is the sum of both
    // uses, which central differences on the shared parameters measure directly. (Sigmoid is
    // left out of the deep case: five sigmoid layers leave the first layer a gradient too small to
    // test sharply.)
    let acts = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Gelu,
    ];
    for (k, &act) in acts.iter().enumerate() {
        let seed = 20 + 3 * k as u64;
        let mut cases = vec![
            ("shallow 6-3-6", spec(6, &[], layer(3, act), None, Activation::Sigmoid, Loss::BinaryCrossEntropy, true)),
            ("6-5-3-5-6", spec(6, &[layer(5, act)], layer(3, act), None, Activation::Identity, Loss::Mse, true)),
        ];
        if act != Activation::Sigmoid {
            let deep = spec(
                7,
                &[layer(6, act), layer(4, act)],
                layer(3, act),
                None,
                Activation::Sigmoid,
                Loss::BinaryCrossEntropy,
                true,
            );
            cases.push(("deep 7-6-4-3-4-6-7", deep));
        }
        for (j, (name, s)) in cases.into_iter().enumerate() {
            let (net, x) = setup(s, seed + j as u64, ROWS);
            let n_enc = net.n_encoder_layers();
            assert_eq!(net.layers().iter().filter(|l| l.tied).count(), n_enc, "every decoder layer is tied");
            check(&format!("tied {name} {}", act.name()), &net, &x, ROWS);
        }
    }
}

#[test]
fn explicit_non_mirrored_decoder() {
    let dec = [layer(7, Activation::Softplus), layer(4, Activation::LeakyRelu)];
    for (k, &(out, loss)) in
        [(Activation::Sigmoid, Loss::BinaryCrossEntropy), (Activation::Tanh, Loss::Mse)].iter().enumerate()
    {
        let s = spec(6, &[layer(5, Activation::Elu)], layer(3, Activation::Gelu), Some(&dec), out, loss, false);
        let (net, x) = setup(s, 40 + k as u64, ROWS);
        let widths: Vec<(usize, usize)> = net.layers().iter().map(|l| (l.n_in, l.n_out)).collect();
        assert_eq!(widths, [(6, 5), (5, 3), (3, 7), (7, 4), (4, 6)]);
        check(&format!("6-5-3-7-4-6 explicit decoder, {} output", out.name()), &net, &x, ROWS);
    }
}

#[test]
fn one_row_and_many_rows() {
    // The mean is over rows x columns: a wrong divisor shows when the row count changes.
    let s = spec(
        6,
        &[layer(5, Activation::Tanh)],
        layer(3, Activation::Sigmoid),
        None,
        Activation::Sigmoid,
        Loss::BinaryCrossEntropy,
        false,
    );
    for (k, rows) in [1usize, 17].into_iter().enumerate() {
        let (net, x) = setup(s.clone(), 50 + k as u64, rows);
        check(&format!("6-5-3-5-6 tanh/sigmoid, {rows} rows"), &net, &x, rows);
    }
}

/// One SGD step with weight decay wd moves the parameters by lr times the gradient of
/// mean loss + 0.5 * wd * (sum of squared weights): biases are not decayed, and a tied matrix is
/// decayed once.
#[test]
fn weight_decay_is_the_gradient_of_half_wd_squared_weights() {
    // wd * |w| ~ 0.03 is of the size of the loss gradient: decaying biases, decaying a tied matrix
    // twice, or a wrong factor all move the step far outside the tolerance.
    let (wd, lr) = (0.1f32, 0.5f32);
    let deep = spec(
        7,
        &[layer(6, Activation::Tanh), layer(4, Activation::Tanh)],
        layer(3, Activation::Sigmoid),
        None,
        Activation::Sigmoid,
        Loss::BinaryCrossEntropy,
        false,
    );
    let tied = spec(
        6,
        &[layer(5, Activation::Softplus)],
        layer(3, Activation::Identity),
        None,
        Activation::Identity,
        Loss::Mse,
        true,
    );
    for (k, (name, s)) in [("untied 7-6-4-3-4-6-7", deep), ("tied 6-5-3-5-6", tied)].into_iter().enumerate() {
        let (net, x) = setup(s, 60 + k as u64, ROWS);
        let weights = net.weight_ranges();
        // The ranges are the untied layers' weight blocks: disjoint, and no bias inside.
        let expect: Vec<_> = net.layers().iter().filter(|l| !l.tied).map(|l| l.w..l.w + l.n_in * l.n_out).collect();
        assert_eq!(weights, expect);
        let n_weights: usize = weights.iter().map(|r| r.len()).sum();
        let n_bias: usize = net.layers().iter().map(|l| l.n_out).sum();
        assert_eq!(n_weights + n_bias, net.param_count(), "{name}: weights + biases cover the buffer");

        let mut ws = net.workspace(ROWS).unwrap();
        let mut grads = vec![f32::NAN; net.param_count()];
        net.forward_backward(&x, ROWS, &mut ws, &mut grads, 1);
        let cfg = OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.0,
            nesterov: false,
            weight_decay: wd,
            ..Default::default()
        };
        let mut opt = Optimizer::new(cfg, net.param_count(), &weights).unwrap();
        let p0 = net.params().to_vec();
        let mut p1 = p0.clone();
        opt.step(&mut p1, &grads, lr, 1);
        // The gradient the step followed (f32 rounding of p1 adds ~1e-7 here).
        let followed: Vec<f32> = p0.iter().zip(&p1).map(|(a, b)| (a - b) / lr).collect();
        let penalty = |p: &[f32]| -> f64 {
            let sq: f64 = weights.iter().flat_map(|r| p[r.clone()].iter()).map(|&v| (v as f64) * (v as f64)).sum();
            0.5 * wd as f64 * sq
        };
        compare(&format!("weight decay {wd}, {name}"), &net, &x, ROWS, &followed, &penalty);
        // And directly: biases moved by exactly the loss gradient.
        for l in net.layers() {
            for i in l.b..l.b + l.n_out {
                assert_eq!(p1[i], p0[i] - lr * grads[i], "{name}: bias {i} was decayed");
            }
        }
    }
}

#[test]
fn encode_decode_reconstruct_agree_with_the_forward_pass() {
    let s = spec(
        16,
        &[layer(12, Activation::Tanh), layer(8, Activation::Elu)],
        layer(4, Activation::Sigmoid),
        None,
        Activation::Sigmoid,
        Loss::BinaryCrossEntropy,
        false,
    );
    let tied = NetworkSpec { tied_weights: true, ..s.clone() };
    for (k, s) in [s, tied].into_iter().enumerate() {
        // 2500 rows x 16: several 1024-row inference blocks, and enough values for the threaded
        // inference path.
        for rows in [3usize, 2500] {
            let (net, xv) = draw_point(s.clone(), 70 + k as u64, rows);
            let x = Matrix::from_vec(rows, 16, xv.clone()).unwrap();
            let mut ws = net.workspace(rows).unwrap();
            let mut grads = vec![0f32; net.param_count()];
            let sum = net.forward_backward(&xv, rows, &mut ws, &mut grads, 1);
            let codes = net.encode(&x).unwrap();
            let recon = net.reconstruct(&x).unwrap();
            let decoded = net.decode(&codes).unwrap();
            assert_eq!((codes.rows(), codes.cols()), (rows, 4));
            assert_eq!((recon.rows(), recon.cols()), (rows, 16));
            let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            let code_ws = &ws.output(net.n_encoder_layers() - 1)[..rows * 4];
            let out_ws = &ws.output(net.layers().len() - 1)[..rows * 16];
            assert!(max_diff(codes.as_slice(), code_ws) <= 1e-6, "encode vs the forward pass");
            assert!(max_diff(recon.as_slice(), out_ws) <= 1e-6, "reconstruct vs the forward pass");
            assert!(max_diff(recon.as_slice(), decoded.as_slice()) <= 1e-6, "reconstruct vs decode(encode)");
            // The losses reported by inference agree with the training pass and the f64 reference.
            let mean = sum / (rows * 16) as f64;
            let loss = net.loss(&x).unwrap();
            assert!((loss - mean).abs() <= 1e-6 * mean, "loss() {loss} vs forward_backward {mean}");
            let per_row = net.reconstruction_errors(&x).unwrap();
            assert_eq!(per_row.len(), rows);
            let mean_rows = per_row.iter().sum::<f64>() / rows as f64;
            assert!((mean_rows - mean).abs() <= 1e-6 * mean, "reconstruction_errors {mean_rows} vs {mean}");
            let reference = reference_mean_loss(&net, &xv, rows);
            assert!((reference - mean).abs() <= 1e-5 * mean, "f64 reference {reference} vs {mean}");
        }
    }
}

/// Every loss beyond MSE and BCE through a whole 6-5-3-5-6 network, with each output activation
/// it accepts (and, for KL divergence, targets that sum to 1 per row as well as raw ones).
/// Measured: at most 26% of the tolerance used (Poisson, sigmoid output). Deliberate breakages
/// of src/loss.rs checked to fail here: MAE's 1/cols dropped, MAE/L1's sign flipped, MSLE's
/// 1/(1 + y) dropped, Poisson's t term dropped (softplus) or (y - t) written y (sigmoid),
/// cosine's second term dropped, the softmax losses' S p - t written as p - t.
#[test]
fn every_dl4j_loss_through_a_whole_network() {
    let cases = [
        (Loss::Mae, Activation::Identity),
        (Loss::Mae, Activation::Sigmoid),
        (Loss::L1, Activation::Identity),
        (Loss::L2, Activation::Identity),
        (Loss::L2, Activation::Tanh),
        (Loss::Msle, Activation::Sigmoid),
        (Loss::Msle, Activation::Softplus),
        (Loss::Poisson, Activation::Sigmoid),
        (Loss::Poisson, Activation::Softplus),
        (Loss::CosineProximity, Activation::Identity),
        (Loss::CosineProximity, Activation::Sigmoid),
        (Loss::CosineProximity, Activation::Tanh),
        (Loss::KlDivergence, Activation::Identity),
        (Loss::Mcxent, Activation::Identity),
    ];
    for (k, &(loss, out)) in cases.iter().enumerate() {
        for hidden in [Activation::Tanh, Activation::Relu] {
            let s = spec(6, &[layer(5, hidden)], layer(3, hidden), None, out, loss, false);
            let (net, x) = setup(s, 700 + 10 * k as u64 + hidden.code() as u64, ROWS);
            check(
                &format!("6-5-3-5-6 {} hidden, {} output, {}", hidden.name(), out.name(), loss.name()),
                &net,
                &x,
                ROWS,
            );
        }
    }
    // KL divergence between distributions: inputs (= targets) normalised to sum 1 per row.
    let s = spec(
        6,
        &[layer(5, Activation::Tanh)],
        layer(3, Activation::Tanh),
        None,
        Activation::Identity,
        Loss::KlDivergence,
        false,
    );
    let (net, mut x) = setup(s, 790, ROWS);
    for row in x.chunks_exact_mut(6) {
        let total: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= total);
    }
    check("6-5-3-5-6 tanh, kl_divergence, rows summing to 1", &net, &x, ROWS);
}
