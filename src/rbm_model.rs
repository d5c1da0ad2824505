//! The restricted Boltzmann machine as a model of its own (DL4J's RBM layer; Goodfellow et al.,
//! Deep Learning 20.2): built, trained by contrastive divergence, scored by free energy, used
//! as a feature extractor (hidden probabilities) and sampled by block Gibbs sampling. The
//! training itself is [`crate::train::Rbm::fit`], the same CD-k as the RBM stage of layer-wise
//! pretraining.
//!
//! Conditionals (Bernoulli units: p = sigmoid; Gaussian units: unit variance, mean = input):
//! p(h_j = 1 | v) = sigmoid(b_h,j + sum_i v_i W_ij), p(v_i = 1 | h) = sigmoid(b_v,i + sum_j W_ij h_j).

use crate::error::{Result, invalid, shape, try_zeros};
use crate::rng::{Rng, stream};
use crate::tensor::{Matrix, checked_len};
use crate::train::rbm::{RbmEpoch, sample};
use crate::train::{Progress, Rbm, RbmConfig, Stage, TrainConfig, Unit};

/// The most Gibbs steps one [`RbmModel::sample`] call runs.
pub const MAX_GIBBS_STEPS: usize = 1_000_000;

/// Rows per block of the inference calls (bounds their scratch memory).
const BLOCK: usize = 256;

/// An RBM with what a standalone model keeps beside its parameters: its creation seed, the
/// inference thread count, the epochs trained so far and the CD settings of the last fit.
#[derive(Clone, Debug)]
pub struct RbmModel {
    rbm: Rbm,
    seed: u64,
    threads: usize,
    history: Vec<RbmEpoch>,
    epochs_trained: u64,
    last_k: u32,
    last_persistent: bool,
}

/// How an RBM model was trained, as saved in its model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RbmTraining {
    /// Epochs over all fits.
    pub epochs: u64,
    /// CD-k of the last fit (0: never trained).
    pub k: u32,
    /// Whether the last fit was persistent CD.
    pub persistent: bool,
}

impl RbmModel {
    /// Weights 0.1 N(0, 1) drawn from `seed`, zero biases (as rbm.m).
    pub fn new(n_visible: usize, n_hidden: usize, visible: Unit, hidden: Unit, seed: u64) -> Result<RbmModel> {
        if n_visible > crate::network::MAX_UNITS || n_hidden > crate::network::MAX_UNITS {
            return Err(invalid!(
                "an RBM of {n_visible} x {n_hidden} units: each side holds at most {} units",
                crate::network::MAX_UNITS
            ));
        }
        let nw = checked_len(n_visible, n_hidden)?;
        if nw > crate::network::MAX_PARAMS {
            return Err(invalid!(
                "an RBM of {n_visible} x {n_hidden} units has more than {} weights",
                crate::network::MAX_PARAMS
            ));
        }
        let rbm = Rbm::new(n_visible, n_hidden, visible, hidden, seed)?;
        Ok(RbmModel::from_rbm(rbm, seed, RbmTraining::default()))
    }

    /// A model around a trained RBM (model files, Rust programs).
    pub fn from_rbm(rbm: Rbm, seed: u64, training: RbmTraining) -> RbmModel {
        RbmModel {
            rbm,
            seed,
            threads: 0,
            history: Vec::new(),
            epochs_trained: training.epochs,
            last_k: training.k,
            last_persistent: training.persistent,
        }
    }

    pub fn rbm(&self) -> &Rbm {
        &self.rbm
    }
    pub fn n_visible(&self) -> usize {
        self.rbm.n_visible
    }
    pub fn n_hidden(&self) -> usize {
        self.rbm.n_hidden
    }
    pub fn visible(&self) -> Unit {
        self.rbm.visible
    }
    pub fn hidden(&self) -> Unit {
        self.rbm.hidden
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn training(&self) -> RbmTraining {
        RbmTraining { epochs: self.epochs_trained, k: self.last_k, persistent: self.last_persistent }
    }
    /// Per-epoch statistics of every fit of this model object (not saved in model files).
    pub fn history(&self) -> &[RbmEpoch] {
        &self.history
    }
    pub fn param_count(&self) -> usize {
        self.rbm.params().len()
    }
    /// W (n_visible x n_hidden, row-major), then the hidden biases, then the visible biases.
    pub fn params(&self) -> &[f32] {
        self.rbm.params()
    }
    /// Replaces the parameters (same order as [`RbmModel::params`]); every value must be finite.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        crate::tensor::check_params(p, self.param_count(), "the RBM")?;
        self.rbm.set_params(p)
    }
    /// Threads of the inference calls (0: LATENT_NUM_THREADS, else all cores).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
    }
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Trains with CD-k (or persistent CD) on the rows of `data`: see [`Rbm::fit`]. The epochs
    /// are appended to [`RbmModel::history`]. A cancelled or diverged fit keeps the parameters
    /// of its last finite update and records nothing.
    pub fn fit(
        &mut self,
        data: &Matrix,
        c: &TrainConfig,
        cd: RbmConfig,
        progress: Option<&mut dyn FnMut(&Progress) -> bool>,
    ) -> Result<Vec<RbmEpoch>> {
        let h = self.rbm.fit(data, c, cd, Stage::default(), progress)?;
        self.history.extend_from_slice(&h);
        self.epochs_trained += h.len() as u64;
        self.last_k = cd.k as u32;
        self.last_persistent = cd.persistent;
        Ok(h)
    }

    fn check_rows(&self, x: &Matrix) -> Result<()> {
        if x.cols() != self.n_visible() {
            return Err(shape!("the rows have {} columns, the RBM has {} visible units", x.cols(), self.n_visible()));
        }
        x.check_finite("the visible rows")
    }

    /// Free energy of each row: F(v) = -log sum_h exp(-E(v, h)) (up to the Gaussian constants).
    /// Lower is more probable: p(v) = exp(-F(v)) / Z.
    pub fn free_energy(&self, x: &Matrix) -> Result<Vec<f64>> {
        self.check_rows(x)?;
        self.rbm.free_energy(x)
    }

    /// Runs `f(first_row, rows, block, threads)` over blocks of `x` in the library's pool.
    fn blocks(&self, x: &Matrix, mut f: impl FnMut(usize, usize, &[f32], usize) + Send) -> Result<()> {
        let threads = crate::pool::resolve_threads(self.threads);
        let pool = crate::pool::pool(threads)?;
        let nv = self.n_visible();
        pool.install(|| {
            let mut first = 0;
            while first < x.rows() {
                let r = BLOCK.min(x.rows() - first);
                f(first, r, &x.as_slice()[first * nv..(first + r) * nv], threads);
                first += r;
            }
        });
        Ok(())
    }

    /// Hidden means given the rows (rows x n_hidden): probabilities p(h = 1 | v) of Bernoulli
    /// hidden units, the means of Gaussian ones. The RBM as a feature extractor.
    pub fn transform(&self, x: &Matrix) -> Result<Matrix> {
        self.check_rows(x)?;
        let nh = self.n_hidden();
        let mut out = Matrix::zeros(x.rows(), nh)?;
        let mut z = try_zeros(BLOCK.min(x.rows()).max(1) * nh)?;
        let o = out.as_mut_slice();
        self.blocks(x, |first, r, v, threads| {
            self.rbm.hidden_mean(v, r, &mut o[first * nh..(first + r) * nh], &mut z[..r * nh], threads);
        })?;
        Ok(out)
    }

    /// Mean-field reconstruction (rows x n_visible): the visible means given the hidden means
    /// of each row, E[v | h = E[h | v]]. Deterministic.
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        self.check_rows(x)?;
        let (nv, nh) = (self.n_visible(), self.n_hidden());
        let mut out = Matrix::zeros(x.rows(), nv)?;
        let b = BLOCK.min(x.rows()).max(1);
        let (mut h, mut zh, mut zv) = (try_zeros(b * nh)?, try_zeros(b * nh)?, try_zeros(b * nv)?);
        let o = out.as_mut_slice();
        self.blocks(x, |first, r, v, threads| {
            self.rbm.hidden_mean(v, r, &mut h[..r * nh], &mut zh[..r * nh], threads);
            self.rbm.visible_mean(&h[..r * nh], r, &mut o[first * nv..(first + r) * nv], &mut zv[..r * nv], threads);
        })?;
        Ok(out)
    }

    /// `steps` rounds of block Gibbs sampling from each row of `x`: h ~ p(h | v), then
    /// v ~ p(v | h), `steps` times; returns the last visible states (rows x n_visible), or with
    /// `means` their means p(v | h) at the last step instead of a draw. Row i draws from its own
    /// stream of `seed` (stream::RBM_GIBBS and i), so the result depends on the seed and the row's
    /// position in the call only: bit-identical for the same seed, rows and thread count.
    pub fn sample(&self, x: &Matrix, steps: usize, seed: u64, means: bool) -> Result<Matrix> {
        if steps == 0 || steps > MAX_GIBBS_STEPS {
            return Err(invalid!("Gibbs sampling takes 1 to {MAX_GIBBS_STEPS} steps, not {steps}"));
        }
        self.check_rows(x)?;
        let (nv, nh) = (self.n_visible(), self.n_hidden());
        let (vu, hu) = (self.visible(), self.hidden());
        let mut out = Matrix::zeros(x.rows(), nv)?;
        let b = BLOCK.min(x.rows()).max(1);
        let (mut ph, mut h, mut zh) = (try_zeros(b * nh)?, try_zeros(b * nh)?, try_zeros(b * nh)?);
        let (mut pv, mut zv) = (try_zeros(b * nv)?, try_zeros(b * nv)?);
        let o = out.as_mut_slice();
        self.blocks(x, |first, r, v0, threads| {
            let mut rngs: Vec<Rng> = (first..first + r).map(|i| row_rng(seed, i)).collect();
            let v = &mut o[first * nv..(first + r) * nv];
            v.copy_from_slice(v0);
            for step in 0..steps {
                self.rbm.hidden_mean(v, r, &mut ph[..r * nh], &mut zh[..r * nh], threads);
                for (i, rng) in rngs.iter_mut().enumerate() {
                    sample(hu, &ph[i * nh..(i + 1) * nh], &mut h[i * nh..(i + 1) * nh], rng);
                }
                self.rbm.visible_mean(&h[..r * nh], r, &mut pv[..r * nv], &mut zv[..r * nv], threads);
                if means && step + 1 == steps {
                    v.copy_from_slice(&pv[..r * nv]);
                } else {
                    for (i, rng) in rngs.iter_mut().enumerate() {
                        sample(vu, &pv[i * nv..(i + 1) * nv], &mut v[i * nv..(i + 1) * nv], rng);
                    }
                }
            }
        })?;
        Ok(out)
    }
}

/// Row i's Gibbs stream of `seed`.
fn row_rng(seed: u64, row: usize) -> Rng {
    Rng::new(seed, stream::RBM_GIBBS ^ ((row as u64 + 1) << 16))
}

/// The C API's code of a unit kind (LATENT_RBM_UNIT_BERNOULLI 0, LATENT_RBM_UNIT_GAUSSIAN 1).
pub fn unit_code(u: Unit) -> i32 {
    match u {
        Unit::Bernoulli => 0,
        Unit::Gaussian => 1,
    }
}

/// The unit kind of a C API code.
pub fn unit_from_code(c: i32) -> Result<Unit> {
    match c {
        0 => Ok(Unit::Bernoulli),
        1 => Ok(Unit::Gaussian),
        _ => Err(invalid!("RBM unit kind {c} is out of range (0 Bernoulli, 1 Gaussian)")),
    }
}
