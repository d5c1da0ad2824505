//! Evaluation of a network over a dataset in one streaming pass, and anomaly thresholds.
//!
//! Every metric is a mean over the dataset, summed in f64:
//! - `mse`: squared error per element, `mean[(x̂ - x)²]`.
//! - `bce`: binary cross-entropy per element, `-mean[x log x̂ + (1-x) log(1-x̂)]`. With a sigmoid
//!   output it is computed from the logits z as `softplus(z) - x z` (exact, no log of 0);
//!   otherwise from x̂ clamped to `[EPS, 1-EPS]`.
//! - `reverse_ce`: cross-entropy with its arguments swapped,
//!   `-mean[x̂ log x + (1-x̂) log(1-x)]`, with x clamped to `[EPS, 1-EPS]` and x̂ to `[0, 1]`.
//!   This is our reading of the "reverse cross-entropy" of the alternate-layer-sparsity slides
//!   (the paper was not found): the clamp is ours, and it makes a 0 or 1 pixel cost
//!   `x̂ · ln(1/EPS) ≈ 9.2 x̂` instead of infinity.
//! - `squared_error_per_row`: squared error summed over a row's columns, mean over rows (Hinton &
//!   Salakhutdinov's "squared error per image"); equals `mse * cols`.
//! - `mean_code_activation`: the code layer's output, mean over rows and units; per unit too.

#![forbid(unsafe_code)]

use crate::activation::Activation;
use crate::error::{Error, Result, invalid};
use crate::network::Network;
use crate::tensor::Matrix;

/// The clamp of the logarithms' arguments in `bce` (non-sigmoid outputs) and `reverse_ce`.
pub const EPS: f64 = 1e-4;

/// Metrics of a network over the rows of a matrix (see the module docs for each definition).
#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub rows: usize,
    pub mse: f64,
    pub bce: f64,
    pub reverse_ce: f64,
    pub squared_error_per_row: f64,
    pub mean_code_activation: f64,
    /// Mean over rows of each code unit's output (code_dim values).
    pub code_activation_per_unit: Vec<f64>,
}

impl Metrics {
    /// Runs `net` over the rows of `x` once and computes every metric. An empty `x` is an error,
    /// and so is a supervised network: its output is not a reconstruction of the input (use
    /// `Network::evaluate`, or [`code_activation_means`] for the code layer alone).
    pub fn compute(net: &Network, x: &Matrix) -> Result<Metrics> {
        if net.task().is_supervised() {
            // The metrics compare the output with the input: a supervised network's output is
            // narrower (it panicked on the slices below).
            return Err(invalid!(
                "metrics compare the output with the input; this is a {} network (use evaluate or predict)",
                net.task().name()
            ));
        }
        if x.rows() == 0 {
            return Err(invalid!("no rows: metrics are means over the rows and need at least one"));
        }
        if net.task().is_supervised() {
            return Err(invalid!(
                "the metrics compare the output with the input; this is a {} network, whose output is not a \
                 reconstruction: use evaluate (the code activation means work on any network)",
                net.task().name()
            ));
        }
        let cols = x.cols();
        let out_layer = net.layers().len() - 1;
        let code_layer = net.n_encoder_layers() - 1;
        let code_dim = net.code_dim();
        let sigmoid_out = net.spec().output_activation == Activation::Sigmoid;
        let (mut se, mut bce, mut rce) = (0f64, 0f64, 0f64);
        let mut per_unit = vec![0f64; code_dim];
        net.forward_blocks(x, |first, r, ws| {
            let t = &x.as_slice()[first * cols..(first + r) * cols];
            let z = &ws.preactivation(out_layer)[..r * cols];
            let y = &ws.output(out_layer)[..r * cols];
            for ((&z, &y), &t) in z.iter().zip(y).zip(t) {
                let (z, y, t) = (z as f64, y as f64, t as f64);
                se += (y - t) * (y - t);
                bce += if sigmoid_out { softplus(z) - t * z } else { cross_entropy(t, y) };
                rce += cross_entropy(y.clamp(0.0, 1.0), t);
            }
            for row in ws.output(code_layer)[..r * code_dim].chunks_exact(code_dim) {
                for (s, &c) in per_unit.iter_mut().zip(row) {
                    *s += c as f64;
                }
            }
        })?;
        let rows = x.rows() as f64;
        let elements = rows * cols as f64;
        per_unit.iter_mut().for_each(|s| *s /= rows);
        Ok(Metrics {
            rows: x.rows(),
            mse: se / elements,
            bce: bce / elements,
            reverse_ce: rce / elements,
            squared_error_per_row: se / rows,
            mean_code_activation: per_unit.iter().sum::<f64>() / code_dim as f64,
            code_activation_per_unit: per_unit,
        })
    }
}

/// Mean over the rows of `x` of each code unit's output (code_dim values): which units are on.
/// Any network, autoencoder or supervised (whose code layer is its last hidden layer). An
/// empty `x` is an error.
pub fn code_activation_means(net: &Network, x: &Matrix) -> Result<Vec<f64>> {
    if x.rows() == 0 {
        return Err(invalid!("no rows: the code activation means need at least one row"));
    }
    let code_layer = net.n_encoder_layers() - 1;
    let code_dim = net.code_dim();
    let mut per_unit = crate::error::try_zeros::<f64>(code_dim)?;
    net.forward_blocks_through(0..net.n_encoder_layers(), x, |_, r, ws| {
        for row in ws.output(code_layer)[..r * code_dim].chunks_exact(code_dim) {
            for (s, &c) in per_unit.iter_mut().zip(row) {
                *s += c as f64;
            }
        }
    })?;
    let rows = x.rows() as f64;
    per_unit.iter_mut().for_each(|s| *s /= rows);
    Ok(per_unit)
}

/// log(1 + e^z) in f64 without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// `-[p log q + (1-p) log(1-q)]` with q clamped to [EPS, 1-EPS].
fn cross_entropy(p: f64, q: f64) -> f64 {
    let q = q.clamp(EPS, 1.0 - EPS);
    -(p * q.ln() + (1.0 - p) * (1.0 - q).ln())
}

/// The q-quantile of `values` by linear interpolation between order statistics (Hyndman & Fan
/// type 7, NumPy's and R's default): with the values sorted as s[0] <= ... <= s[n-1] and
/// h = (n-1) q, it is s[⌊h⌋] + (h - ⌊h⌋)(s[⌊h⌋+1] - s[⌊h⌋]). q = 0 gives the minimum, 1 the
/// maximum. Needs at least one value, all finite, and q in [0, 1].
pub fn quantile(values: &[f64], q: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&q) {
        return Err(invalid!("quantile {q} is not in [0, 1]"));
    }
    if values.is_empty() {
        return Err(invalid!("the quantile of no values is undefined"));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("score {i} is {}", values[i])));
    }
    let mut s = crate::error::try_zeros::<f64>(values.len())?;
    s.copy_from_slice(values);
    s.sort_unstable_by(f64::total_cmp);
    let h = (s.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    Ok(s[lo] + (h - lo as f64) * (s[hi] - s[lo]))
}

/// A cut-off on anomaly scores (e.g. per-row reconstruction errors) fitted as the `quantile` of
/// the scores of normal (training) data: a row scoring strictly above `value` is an anomaly, so
/// about a fraction 1 - quantile of normal rows are flagged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnomalyThreshold {
    pub quantile: f64,
    pub value: f64,
}

impl AnomalyThreshold {
    pub fn fit(scores: &[f64], quantile: f64) -> Result<AnomalyThreshold> {
        Ok(AnomalyThreshold { quantile, value: self::quantile(scores, quantile)? })
    }

    pub fn is_anomaly(&self, score: f64) -> bool {
        score > self.value
    }

    /// One flag per score: true above the threshold (NaN is never above it).
    pub fn flag(&self, scores: &[f64]) -> Vec<bool> {
        scores.iter().map(|&s| self.is_anomaly(s)).collect()
    }
}

/// Area under the ROC curve of `scores` for telling `positive` rows (true) from the others:
/// the probability that a random positive row scores above a random negative one, ties
/// counting one half (the Mann-Whitney U statistic over n+ n-). NaN without both kinds.
pub fn auroc(scores: &[f64], positive: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len().min(positive.len())).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0f64, 0usize);
    while i < idx.len() {
        // Rows with equal scores share the mean of their ranks (1-based).
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| positive[idx[k]]).count() as f64 * mean_rank;
        i = j + 1;
    }
    let np = idx.iter().filter(|&&k| positive[k]).count() as f64;
    let nn = idx.len() as f64 - np;
    if np == 0.0 || nn == 0.0 {
        return f64::NAN;
    }
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}
