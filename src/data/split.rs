//! Seeded splits of a dataset's rows (validation hold-outs, train/test splits): shared by the
//! datasets and the trainer, so it lives below both.

use crate::error::{Result, invalid};
use crate::rng::{Rng, stream};
use crate::tensor::Matrix;
/// Deterministic split: a seeded permutation puts round(fraction * rows) rows in the second part.
/// Both parts keep the original row order.
pub fn split_rows(data: &Matrix, fraction: f64, seed: u64) -> Result<(Matrix, Matrix)> {
    let (train, valid) = split_index(data.rows(), fraction, seed)?;
    Ok((data.gather_rows(&train), data.gather_rows(&valid)))
}

/// Row indices of the two parts of a seeded split.
pub fn split_index(rows: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(invalid!("split fraction {fraction} must be in [0, 1]"));
    }
    let mut order: Vec<usize> = (0..rows).collect();
    Rng::new(seed, stream::SPLIT).shuffle(&mut order);
    let n_second = ((rows as f64) * fraction).round() as usize;
    let mut second = order[..n_second].to_vec();
    let mut first = order[n_second..].to_vec();
    first.sort_unstable();
    second.sort_unstable();
    Ok((first, second))
}
