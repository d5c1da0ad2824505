//! Recirculation: Hinton & McClelland 1988, "Learning representations by recirculation" (NIPS
//! 1987, pp. 358-366); Goodfellow, Bengio & Courville, Deep Learning, 14 (introduction).
//!
//! A one-hidden-layer autoencoder trained without back-propagation: the visible vector goes
//! twice around the loop visible -> hidden -> visible, and every weight changes by its
//! presynaptic activity times the difference of its postsynaptic unit's activity between the
//! two passes. With the encoder f(x W + b_h), the decoder g(h V + b_v) and the regression λ
//! (the paper's 0.75), for a row x (the visible state at time 0):
//!
//! ```text
//!     h  = f(x W + b_h)                      hidden, time 1
//!     x' = λ x + (1 - λ) g(h V + b_v)        visible, time 2 (the reconstruction, regressed)
//!     h' = λ h + (1 - λ) f(x' W + b_h)       hidden, time 3
//!     ΔV = ε hᵀ (x - x'),   Δb_v = ε (x - x')     (visible units: time 0 minus time 2,
//!                                                   presynaptic hidden state of time 1)
//!     ΔW = ε x'ᵀ (h - h'),  Δb_h = ε (h - h')     (hidden units: time 1 minus time 3,
//!                                                   presynaptic visible state of time 2)
//! ```
//!
//! averaged over a minibatch. The biases are the thresholds of the paper, learned as weights
//! from a unit that is always on. Since x - x' = (1 - λ)(x - g(h V + b_v)), the decoder's rule
//! is the delta rule of the reconstruction error (without g'); the encoder's rule follows the
//! gradient when the weights are close to symmetric (W ≈ Vᵀ), which the procedure tends to
//! produce. It minimises the squared reconstruction error whatever loss the network is
//! configured with; the network's regularisation settings are not used.

#![forbid(unsafe_code)]

use std::ops::Range;

use crate::error::{Error, Result, invalid, shape, try_zeros};
use crate::gemm::{Operand, gemm};
use crate::layer::Connection;
use crate::network::Network;
use crate::rng::{Rng, stream};
use crate::task::Task;
use crate::tensor::{Matrix, checked_len};

/// How [`fit`] trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecirculationConfig {
    pub epochs: usize,
    /// Rows whose updates are averaged into one step (1: the paper's online learning).
    pub batch_size: usize,
    /// ε.
    pub learning_rate: f32,
    /// λ in [0, 1): how much of the time-0 visible state (and time-1 hidden state) the second
    /// pass keeps. 0.75 in the paper.
    pub regression: f32,
    /// Seed of the per-epoch shuffling.
    pub seed: u64,
    /// Worker threads (0 = the default: LATENT_NUM_THREADS, else all cores).
    pub threads: usize,
}

impl Default for RecirculationConfig {
    /// 10 epochs of minibatches of 16 rows, ε = 1, λ = 0.75, seed 0, all cores.
    fn default() -> Self {
        RecirculationConfig { epochs: 10, batch_size: 16, learning_rate: 1.0, regression: 0.75, seed: 0, threads: 0 }
    }
}

impl RecirculationConfig {
    pub fn validate(&self) -> Result<()> {
        crate::train::trainer::check_schedule(self.epochs, self.batch_size, self.learning_rate)?;
        if !(self.regression.is_finite() && (0.0..1.0).contains(&self.regression)) {
            return Err(invalid!(
                "regression {} must be in [0, 1): the share of the first pass's state kept in the second (0.75 in the paper)",
                self.regression
            ));
        }
        crate::pool::check_threads(self.threads)?;
        Ok(())
    }
}

/// What a recirculation fit did: the reconstruction's mean squared error per element over the
/// training rows, before the first epoch and after each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecirculationReport {
    pub initial_mse: f64,
    pub epoch_mse: Vec<f64>,
}

impl RecirculationReport {
    /// The MSE after the last epoch.
    pub fn final_mse(&self) -> f64 {
        self.epoch_mse.last().copied().unwrap_or(self.initial_mse)
    }
}

/// Checks that `net` is what recirculation trains: an autoencoder of one hidden layer (the
/// code layer: encoder and decoder one dense layer each), untied, deterministic.
pub fn check_network(net: &Network) -> Result<()> {
    let spec = net.spec();
    if spec.task != Task::Reconstruct {
        return Err(invalid!("recirculation trains an autoencoder; this network is a {} network", spec.task.name()));
    }
    if net.layers().len() != 2 || net.n_encoder_layers() != 1 {
        return Err(invalid!(
            "recirculation trains a one-hidden-layer autoencoder (input -> code -> output: 2 layers); this network has {} layers ({} in the encoder): build it with no encoder or decoder hidden layers",
            net.layers().len(),
            net.n_encoder_layers()
        ));
    }
    if spec.tied_weights {
        return Err(invalid!(
            "recirculation keeps separate encoder and decoder weights (the paper's two sets of connections); this network ties them"
        ));
    }
    for (i, l) in net.layers().iter().enumerate() {
        if l.connection != Connection::Dense {
            return Err(invalid!("recirculation needs dense layers; layer {i} is {}", l.connection.name()));
        }
        if !l.stochastic.is_none() {
            return Err(invalid!("recirculation needs deterministic units; layer {i} samples its units"));
        }
    }
    Ok(())
}

/// Buffers of one recirculation step over up to `rows` rows.
struct Buffers {
    z: Vec<f32>,
    h: Vec<f32>,
    xr: Vec<f32>,
    h3: Vec<f32>,
    zv: Vec<f32>,
}

impl Buffers {
    fn new(rows: usize, n: usize, m: usize) -> Result<Buffers> {
        let rn = checked_len(rows, n)?;
        let rm = checked_len(rows, m)?;
        Ok(Buffers { z: try_zeros(rm)?, h: try_zeros(rm)?, xr: try_zeros(rn)?, h3: try_zeros(rm)?, zv: try_zeros(rn)? })
    }
}

/// The recirculation update per unit learning rate of `r` rows `x` (the mean over the rows of
/// ΔV, Δb_v, ΔW, Δb_h, in the network's parameter layout) into `out`.
fn direction_into(net: &Network, x: &[f32], r: usize, lambda: f32, b: &mut Buffers, out: &mut [f32], threads: usize) {
    let (enc, dec) = (&net.layers()[0], &net.layers()[1]);
    let (n, m) = (enc.n_in, enc.n_out);
    let p = net.params();
    let (x, h, xr, h3) = (&x[..r * n], &mut b.h[..r * m], &mut b.xr[..r * n], &mut b.h3[..r * m]);
    let (z, zv) = (&mut b.z[..r * m], &mut b.zv[..r * n]);
    // Time 1: h = f(x W + b_h).
    enc.forward(p, x, r, z, h, threads);
    // Time 2: x' = λ x + (1 - λ) g(h V + b_v); xr becomes x', zv the visible units' change x - x'.
    dec.forward(p, h, r, zv, xr, threads);
    for ((xr, zv), &x) in xr.iter_mut().zip(zv.iter_mut()).zip(x) {
        *xr = lambda * x + (1.0 - lambda) * *xr;
        *zv = x - *xr;
    }
    // Time 3: h' = λ h + (1 - λ) f(x' W + b_h); h3 becomes the hidden units' change h - h'.
    enc.forward(p, xr, r, z, h3, threads);
    for (h3, &h) in h3.iter_mut().zip(h.iter()) {
        *h3 = h - (lambda * h + (1.0 - lambda) * *h3);
    }
    let s = 1.0 / r as f32;
    // ΔV = hᵀ (x - x') / r (V is m x n at dec.w), ΔW = x'ᵀ (h - h') / r (W is n x m at enc.w).
    gemm(m, n, r, s, Operand::t(h, m), Operand::n(zv, n), 0.0, &mut out[dec.w..dec.w + m * n], n, threads);
    gemm(n, m, r, s, Operand::t(xr, n), Operand::n(h3, m), 0.0, &mut out[enc.w..enc.w + n * m], m, threads);
    column_means(zv, n, s, &mut out[dec.b..dec.b + n]);
    column_means(h3, m, s, &mut out[enc.b..enc.b + m]);
}

fn column_means(v: &[f32], cols: usize, s: f32, out: &mut [f32]) {
    let mut acc = vec![0f64; cols];
    for row in v.chunks_exact(cols) {
        acc.iter_mut().zip(row).for_each(|(a, &b)| *a += b as f64);
    }
    out.iter_mut().zip(&acc).for_each(|(o, &a)| *o = (a * s as f64) as f32);
}

/// The recirculation update per unit learning rate of the rows of `x` (the mean over rows), in
/// the layout of [`Network::params`]: what one step of [`fit`] with ε = 1 over these rows as
/// one minibatch adds to the parameters.
pub fn update(net: &Network, x: &Matrix, regression: f32) -> Result<Vec<f32>> {
    check_network(net)?;
    RecirculationConfig { regression, ..RecirculationConfig::default() }.validate()?;
    check_rows(net, x)?;
    let mut out = try_zeros(net.param_count())?;
    if x.rows() == 0 {
        return Ok(out);
    }
    let mut b = Buffers::new(x.rows(), net.input_dim(), net.code_dim())?;
    direction_into(net, x.as_slice(), x.rows(), regression, &mut b, &mut out, 1);
    Ok(out)
}

fn check_rows(net: &Network, x: &Matrix) -> Result<()> {
    if x.cols() != net.input_dim() {
        return Err(shape!("the data has {} columns, the network expects {}", x.cols(), net.input_dim()));
    }
    x.check_finite("the training data")
}

/// Trains the one-hidden-layer autoencoder `net` on the rows of `data` by recirculation (module
/// docs): `epochs` passes over the rows in shuffled minibatches, each adding ε times the mean
/// update of its rows. Refuses other networks ([`check_network`]). A failure (a bad
/// configuration, or [`Error::Diverged`] when a step makes a parameter non-finite) leaves the
/// network as it was.
pub fn fit(net: &mut Network, data: &Matrix, config: &RecirculationConfig) -> Result<RecirculationReport> {
    config.validate()?;
    check_network(net)?;
    check_rows(net, data)?;
    if data.rows() == 0 {
        return Err(invalid!("the training data has no rows"));
    }
    let threads = crate::pool::check_threads(config.threads)?;
    let saved = net.params().to_vec();
    let r = if threads > 1 {
        crate::pool::pool(threads)?.install(|| fit_on(net, data, config, threads))
    } else {
        fit_on(net, data, config, 1)
    };
    if r.is_err() {
        net.set_params(&saved)?;
    }
    r
}

fn fit_on(
    net: &mut Network,
    data: &Matrix,
    config: &RecirculationConfig,
    threads: usize,
) -> Result<RecirculationReport> {
    let (n, m) = (net.input_dim(), net.code_dim());
    let rows = data.rows();
    let bs = config.batch_size.min(rows);
    let mut b = Buffers::new(bs, n, m)?;
    let mut xb = try_zeros(checked_len(bs, n)?)?;
    let mut dir = try_zeros(net.param_count())?;
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = Rng::new(config.seed, stream::SHUFFLE);
    let mut report = RecirculationReport { initial_mse: net.mean_squared_error(data)?, epoch_mse: Vec::new() };
    let ranges: Vec<Range<usize>> =
        net.layers().iter().flat_map(|l| [l.w..l.w + l.n_in * l.n_out, l.b..l.b + l.n_out]).collect();
    for epoch in 0..config.epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(bs) {
            let r = chunk.len();
            for (dst, &i) in xb.chunks_exact_mut(n).zip(chunk) {
                dst.copy_from_slice(data.row(i));
            }
            direction_into(net, &xb, r, config.regression, &mut b, &mut dir, threads);
            let lr = config.learning_rate;
            let p = net.params_mut();
            for range in &ranges {
                p[range.clone()].iter_mut().zip(&dir[range.clone()]).for_each(|(p, &d)| *p += lr * d);
            }
            if let Some(i) = crate::tensor::first_non_finite(p) {
                return Err(Error::Diverged(format!(
                    "parameter {i} became {} in epoch {}: lower the learning rate",
                    p[i],
                    epoch + 1
                )));
            }
        }
        report.epoch_mse.push(net.mean_squared_error(data)?);
    }
    Ok(report)
}
