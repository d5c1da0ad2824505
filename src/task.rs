//! What a network is trained to output: its own input (an autoencoder), a class (softmax
//! cross-entropy over logits), or real-valued targets (regression with an elementwise loss).
//!
//! A supervised network trains on rows that carry their targets after the inputs: the class
//! index as one column, or the regression targets. [`Task::training_matrix`] builds those rows
//! from a [`Dataset`]'s labels or targets, so the trainer's shuffling, sharding and validation
//! split treat inputs and targets together.

#![forbid(unsafe_code)]

use crate::data::Dataset;
use crate::error::{Error, Result, invalid, shape, try_zeros};
use crate::tensor::Matrix;

/// Most classes of a classifier (bounds the confusion matrix a caller can make us allocate).
pub const MAX_CLASSES: usize = 1 << 16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Task {
    /// An autoencoder: the output reconstructs the input.
    #[default]
    Reconstruct,
    /// A classifier over `classes` labels 0..classes: the output layer gives logits (identity
    /// activation) and the loss is softmax cross-entropy, mean over rows.
    Classify { classes: usize },
    /// Regression onto `outputs` targets with the network's loss ([`crate::Loss`]: MSE, binary
    /// cross-entropy with a sigmoid output, ...), the mean of its row score.
    Regress { outputs: usize },
}

impl Task {
    pub fn code(self) -> i32 {
        match self {
            Task::Reconstruct => 0,
            Task::Classify { .. } => 1,
            Task::Regress { .. } => 2,
        }
    }

    /// The task of a code with its width (classes or regression outputs; ignored for 0).
    pub fn from_code(code: i32, outputs: usize) -> Result<Task> {
        match code {
            0 => Ok(Task::Reconstruct),
            1 => Ok(Task::Classify { classes: outputs }),
            2 => Ok(Task::Regress { outputs }),
            _ => Err(invalid!("task code {code} is out of range (0 to 2)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Task::Reconstruct => "reconstruct",
            Task::Classify { .. } => "classify",
            Task::Regress { .. } => "regress",
        }
    }

    pub fn is_supervised(self) -> bool {
        self != Task::Reconstruct
    }

    /// Width of the output layer for an input of `input_dim` columns.
    pub fn output_dim(self, input_dim: usize) -> usize {
        match self {
            Task::Reconstruct => input_dim,
            Task::Classify { classes } => classes,
            Task::Regress { outputs } => outputs,
        }
    }

    /// Columns that follow the inputs in a training row: none for an autoencoder (the input is
    /// the target), the class index, or the regression targets.
    pub fn target_width(self) -> usize {
        match self {
            Task::Reconstruct => 0,
            Task::Classify { .. } => 1,
            Task::Regress { outputs } => outputs,
        }
    }

    pub(crate) fn validate(self) -> Result<()> {
        match self {
            Task::Classify { classes } if !(2..=MAX_CLASSES).contains(&classes) => {
                Err(invalid!("a classifier needs 2 to {MAX_CLASSES} classes, not {classes}"))
            }
            Task::Regress { outputs } if outputs == 0 || outputs > crate::limits::MAX_UNITS => {
                Err(invalid!("regression outputs {outputs} must be in 1 to {}", crate::limits::MAX_UNITS))
            }
            _ => Ok(()),
        }
    }

    /// The dataset's targets for this task, checked, as rows of target_width() values: a
    /// classifier's labels (each a class of this task) or the regression targets.
    pub fn targets_of(self, data: &Dataset, what: &str) -> Result<Vec<f32>> {
        match self {
            Task::Reconstruct => Ok(Vec::new()),
            Task::Classify { classes } => {
                let labels = data.labels().ok_or_else(|| {
                    invalid!("{what} has no labels: a classifier trains on labelled rows (set them with latent_dataset_set_labels)")
                })?;
                if let Some((r, &l)) = labels.iter().enumerate().find(|&(_, &l)| l < 0 || l as usize >= classes) {
                    return Err(invalid!(
                        "{what}: row {r} has label {l}, outside the classifier's classes 0 to {}",
                        classes - 1
                    ));
                }
                Ok(labels.iter().map(|&l| l as f32).collect())
            }
            Task::Regress { outputs } => {
                let t = data.targets().ok_or_else(|| {
                    invalid!("{what} has no targets: a regression network trains on rows with targets (latent_dataset_set_targets)")
                })?;
                if t.cols() != outputs {
                    return Err(shape!("{what} has {} target columns, the network predicts {outputs}", t.cols()));
                }
                Ok(t.as_slice().to_vec())
            }
        }
    }

    /// The rows a trainer fits: the dataset's inputs, followed for a supervised task by its
    /// labels (checked to be classes of this task) or regression targets.
    pub fn training_matrix(self, data: &Dataset, what: &str) -> Result<Matrix> {
        let x = data.x();
        if !self.is_supervised() {
            return Ok(x.clone());
        }
        let targets = self.targets_of(data, what)?;
        let (rows, cols, tw) = (x.rows(), x.cols(), self.target_width());
        let width = cols + tw;
        let mut m = try_zeros(crate::tensor::checked_len(rows, width)?)?;
        for ((dst, src), t) in
            m.chunks_exact_mut(width).zip(x.as_slice().chunks_exact(cols)).zip(targets.chunks_exact(tw))
        {
            dst[..cols].copy_from_slice(src);
            dst[cols..].copy_from_slice(t);
        }
        Matrix::from_vec(rows, width, m)
    }
}

/// Takes training rows apart: each row of `m` holds `cols` inputs then `tw` targets; the first
/// `xin.len() / cols` rows go to `xin` (rows x cols) and `tgt` (rows x tw).
pub fn split_rows(m: &[f32], cols: usize, tw: usize, xin: &mut [f32], tgt: &mut [f32]) {
    for ((row, x), t) in m.chunks_exact(cols + tw).zip(xin.chunks_exact_mut(cols)).zip(tgt.chunks_exact_mut(tw)) {
        x.copy_from_slice(&row[..cols]);
        t.copy_from_slice(&row[cols..]);
    }
}

/// [`split_rows`] of a whole matrix of training rows into new buffers.
pub fn split_matrix(m: &Matrix, cols: usize, tw: usize) -> Result<(Matrix, Vec<f32>)> {
    let rows = m.rows();
    let mut xin = try_zeros(crate::tensor::checked_len(rows, cols)?)?;
    let mut tgt = try_zeros(crate::tensor::checked_len(rows, tw)?)?;
    split_rows(m.as_slice(), cols, tw, &mut xin, &mut tgt);
    Ok((Matrix::from_vec(rows, cols, xin)?, tgt))
}

/// Softmax cross-entropy of a block of logit rows against class indices (stored as f32 in
/// `labels`): returns the summed loss and writes dL/dz = (softmax(z) - onehot) * scale.
/// log-sum-exp is taken from the row maximum, so no logit overflows.
pub fn softmax_cross_entropy(z: &[f32], labels: &[f32], classes: usize, scale: f32, dz: &mut [f32]) -> f64 {
    let mut sum = 0f64;
    for ((zr, dr), &l) in z.chunks_exact(classes).zip(dz.chunks_exact_mut(classes)).zip(labels) {
        let m = zr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut s = 0f32;
        for (d, &v) in dr.iter_mut().zip(zr) {
            let e = (v - m).exp();
            *d = e;
            s += e;
        }
        let inv = 1.0 / s;
        for d in dr.iter_mut() {
            *d *= inv * scale;
        }
        let k = l as usize;
        dr[k] -= scale;
        sum += (m + s.ln() - zr[k]) as f64;
    }
    sum
}

/// Row-wise softmax in place.
pub fn softmax_rows(z: &mut [f32], classes: usize) {
    for r in z.chunks_exact_mut(classes) {
        let m = r.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut s = 0f32;
        for v in r.iter_mut() {
            *v = (*v - m).exp();
            s += *v;
        }
        let inv = 1.0 / s;
        r.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Index of the largest value of each row (the first on ties).
pub fn argmax_rows(m: &[f32], cols: usize) -> Vec<usize> {
    m.chunks_exact(cols)
        .map(|r| r.iter().enumerate().fold(0, |best, (i, &v)| if v > r[best] { i } else { best }))
        .collect()
}

/// How a supervised network does on labelled or targeted rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The training loss: mean softmax cross-entropy per row, or the mean element loss.
    pub loss: f64,
    /// Fraction of rows whose most probable class is their label (NaN for regression).
    pub accuracy: f64,
    /// Classes x classes counts, row = true label, column = predicted (empty for regression).
    pub confusion: Vec<u64>,
    /// Mean squared error per element (regression; NaN for a classifier).
    pub mse: f64,
}

pub(crate) fn not_supervised(what: &str) -> Error {
    invalid!("{what} needs a supervised network (task classify or regress); this one is an autoencoder")
}
