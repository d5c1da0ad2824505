//! Minibatch training: per-epoch shuffling, validation, early stopping, progress callbacks.

#![forbid(unsafe_code)]

use crate::corruption::Corruption;
use crate::error::{Error, Result, invalid, shape};
use std::ops::Range;

use crate::data::stream::RowSource;
use crate::network::Network;
use crate::optim::{LrSchedule, Optimizer, OptimizerConfig, OptimizerKind, Schedule};
use crate::tensor::Matrix;
use crate::vae::Vae;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub optimizer: OptimizerConfig,
    /// Learning-rate decay, warm-up and momentum schedule of each fit() (default: none).
    pub schedule: Schedule,
    /// Clip the gradient's global L2 norm to this (0 = off).
    pub grad_clip_norm: f32,
    pub seed: u64,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Fraction of the training rows held out for validation when no validation set is given.
    pub validation_fraction: f64,
    /// Stop after this many epochs without a better validation loss, keeping the best
    /// parameters (0 = off).
    pub early_stopping_patience: usize,
    pub shuffle: bool,
    /// Drop the last partial minibatch of each epoch.
    pub drop_last: bool,
    /// Call the progress callback every this many minibatches (0 = only at epoch ends).
    pub progress_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            learning_rate: 1e-3,
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::default(),
            grad_clip_norm: 0.0,
            seed: 0,
            threads: 0,
            validation_fraction: 0.0,
            early_stopping_patience: 0,
            shuffle: true,
            drop_last: false,
            progress_every: 0,
        }
    }
}

/// The epochs, batch size and learning rate every trainer's configuration checks.
pub(crate) fn check_schedule(epochs: usize, batch_size: usize, learning_rate: f32) -> Result<()> {
    if epochs == 0 || epochs > 1_000_000 {
        return Err(invalid!("epochs {epochs} must be in 1 to 1000000"));
    }
    if batch_size == 0 || batch_size > 1 << 20 {
        return Err(invalid!("batch size {batch_size} must be in 1 to 1048576"));
    }
    if !(learning_rate.is_finite() && learning_rate > 0.0) {
        return Err(invalid!("learning rate {learning_rate} must be positive and finite"));
    }
    Ok(())
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        check_schedule(self.epochs, self.batch_size, self.learning_rate)?;
        if !(self.grad_clip_norm.is_finite() && self.grad_clip_norm >= 0.0) {
            return Err(invalid!("gradient clip norm {} must be >= 0", self.grad_clip_norm));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(invalid!("validation fraction {} must be in [0, 1)", self.validation_fraction));
        }
        crate::pool::check_threads(self.threads)?;
        self.optimizer.validate()?;
        self.schedule.validate()?;
        if let LrSchedule::Cosine { min_lr } = self.schedule.lr
            && min_lr > self.learning_rate
        {
            return Err(invalid!("cosine schedule: min_lr {min_lr} exceeds the learning rate {}", self.learning_rate));
        }
        if self.schedule.momentum_switch_epoch > 0 && self.optimizer.kind != OptimizerKind::Sgd {
            return Err(invalid!(
                "a momentum schedule (momentum_switch_epoch {}) needs the SGD optimizer, not {}",
                self.schedule.momentum_switch_epoch,
                self.optimizer.kind.name()
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Batch,
    EpochEnd,
}

/// What the progress callback sees.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub event: Event,
    /// 0-based epoch.
    pub epoch: usize,
    pub epochs: usize,
    /// Minibatches done in this epoch, and their number.
    pub batch: usize,
    pub batches: usize,
    /// Mean training (reconstruction) loss over this epoch's minibatches so far.
    pub loss: f64,
    /// Mean penalty (sparsity, contractive) over the same minibatches; the objective is
    /// loss + penalty.
    pub penalty: f64,
    /// Which part of a procedure this fit is (pretraining names its stages).
    pub stage: Stage,
    /// Mean free energy of the training rows, at the epoch ends of RBM pretraining (NaN
    /// otherwise).
    pub free_energy: f64,
    /// Validation loss at epoch end (NaN otherwise or without validation).
    pub valid_loss: f64,
    pub samples_per_second: f64,
    pub seconds: f64,
}

impl Progress {
    /// A report at minibatch `batch` of `batches` in `epoch`, `seen` rows in `secs` seconds;
    /// no loss yet (NaN), no penalty, validation loss or free energy.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn at(
        event: Event,
        epoch: usize,
        epochs: usize,
        batch: usize,
        batches: usize,
        stage: Stage,
        seen: usize,
        secs: f64,
    ) -> Progress {
        Progress {
            event,
            epoch,
            epochs,
            batch,
            batches,
            loss: f64::NAN,
            penalty: 0.0,
            stage,
            free_energy: f64::NAN,
            valid_loss: f64::NAN,
            samples_per_second: seen as f64 / secs.max(1e-9),
            seconds: secs,
        }
    }
}

/// The part of a training procedure a fit belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StageKind {
    /// A plain fit.
    #[default]
    Train,
    /// Greedy layer-wise pretraining of one layer (a shallow autoencoder or an RBM).
    Pretrain,
    /// Fine-tuning of the partial deep autoencoder after a layer was added.
    IntermediateFinetune,
    /// End-to-end fine-tuning of the whole autoencoder.
    Finetune,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stage {
    pub kind: StageKind,
    /// The encoder layer (0-based) a pretraining stage trains, or the number of encoder layers
    /// in the partial autoencoder of an intermediate fine-tuning; 0 otherwise.
    pub layer: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    /// Mean reconstruction loss of the epoch's minibatches (before each step).
    pub train_loss: f64,
    /// Mean penalty of the same minibatches.
    pub train_penalty: f64,
    /// NaN without validation data.
    pub valid_loss: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
    /// Learning rate of the epoch's last step (it changes within an epoch under warm-up or the
    /// cosine schedule).
    pub learning_rate: f64,
}

/// What a [`Trainer`] fits: an autoencoder ([`Network`]) or a variational one ([`Vae`]).
pub trait Trainable: sealed::CpuFit + Send + Sync {
    fn input_dim(&self) -> usize;
    /// Columns of a training row: the inputs, then a supervised network's targets.
    fn data_width(&self) -> usize {
        self.input_dim()
    }
    /// Checks what the columns after the inputs hold (a classifier's labels).
    fn check_rows(&self, _data: &Matrix, _what: &str) -> Result<()> {
        Ok(())
    }
    /// What a fit on `data` stores in the model besides its parameters: a scaled dataset's
    /// scaling ([`crate::preprocess`]). Called before the fit's first step.
    fn adopt_scaling(&mut self, _data: &crate::data::Dataset) -> Result<()> {
        Ok(())
    }
    /// The training rows of a dataset (for a supervised network, inputs then targets).
    fn training_rows<'a>(&self, data: &'a crate::data::Dataset, _what: &str) -> Result<std::borrow::Cow<'a, Matrix>> {
        Ok(std::borrow::Cow::Borrowed(data.x()))
    }
    fn param_count(&self) -> usize;
    fn params(&self) -> &[f32];
    fn params_mut(&mut self) -> &mut [f32];
    /// Replaces the parameters (checked: the count, finite values).
    fn set_params(&mut self, p: &[f32]) -> Result<()>;
    /// Ranges of the parameters that weight decay applies to.
    fn weight_ranges(&self) -> Vec<Range<usize>>;
    /// Whether steps draw random numbers (corruption, noise, sampling).
    fn is_stochastic(&self) -> bool;
    /// Whether the noise needs the training data's per-feature range (salt-and-pepper).
    fn needs_feature_range(&self) -> bool;
    /// Validation score on the current pool with `threads` workers.
    fn valid_score(&self, v: &Matrix, threads: usize) -> Result<f64>;
    /// Whether the objective is a mean of per-row terms, so that a minibatch may be cut into
    /// shards whose gradients are combined by their rows (not when a penalty depends on
    /// minibatch statistics, as KL sparsity's mean activations do).
    fn shardable(&self) -> bool;
    /// Parameter ranges the next epoch leaves alone (a network's frozen layers).
    fn frozen_ranges(&self) -> Vec<Range<usize>> {
        Vec::new()
    }
    /// A count the model keeps across steps (a VAE's KL warm-up clock); restored with the
    /// parameters when an epoch diverges.
    fn clock(&self) -> u64 {
        0
    }
    fn set_clock(&mut self, _clock: u64) {}
    /// Called after a fit's epochs ran (completed or cancelled) with its training rows (a
    /// BILBO VAE fits its prior to them).
    fn end_fit(&mut self, _train: &Matrix) -> Result<()> {
        Ok(())
    }
    /// Called before a fit's first step with its training rows (a new network with functional
    /// layers centres their biases on them): whether it changed the parameters.
    fn begin_fit(&mut self, _train: &Matrix, _threads: usize) -> Result<bool> {
        Ok(false)
    }
    /// What a checkpoint keeps of the model ([`super::checkpoint`]); None: this kind of model
    /// cannot be checkpointed.
    fn checkpoint_model(&self) -> Option<super::checkpoint::ModelState> {
        None
    }
    /// Why a fit of this model needs all its training rows at once ([`Trainable::begin_fit`] or
    /// [`Trainable::end_fit`] read them), so that it cannot stream them
    /// ([`Trainer::fit_source`]); None: it can.
    fn needs_all_rows(&self) -> Option<&'static str> {
        None
    }
}

/// The `Trainable` methods a model takes from its own inherent ones of the same name.
macro_rules! trainable_from_inherent {
    ($m:ident) => {
        fn input_dim(&self) -> usize {
            $m::input_dim(self)
        }
        fn param_count(&self) -> usize {
            $m::param_count(self)
        }
        fn params(&self) -> &[f32] {
            $m::params(self)
        }
        fn params_mut(&mut self) -> &mut [f32] {
            $m::params_mut(self)
        }
        fn set_params(&mut self, p: &[f32]) -> Result<()> {
            $m::set_params(self, p)
        }
        fn weight_ranges(&self) -> Vec<Range<usize>> {
            $m::weight_ranges(self)
        }
        fn shardable(&self) -> bool {
            $m::shardable(self)
        }
        fn adopt_scaling(&mut self, data: &crate::data::Dataset) -> Result<()> {
            match data.scaler() {
                crate::data::scale::Scaler::None => Ok(()),
                s => self.set_input_scaler(s.clone()),
            }
        }
    };
}

impl Trainable for Network {
    trainable_from_inherent!(Network);
    fn begin_fit(&mut self, train: &Matrix, threads: usize) -> Result<bool> {
        if !self.center_pending {
            return Ok(false);
        }
        self.center_functional_rows(train.as_slice(), train.cols(), train.rows(), threads)?;
        Ok(true)
    }
    fn is_stochastic(&self) -> bool {
        let reg = &self.spec().regularization;
        !reg.corruption.is_none() || reg.code_noise > 0.0 || self.has_stochastic_layers()
    }
    fn needs_feature_range(&self) -> bool {
        matches!(self.spec().regularization.corruption, Corruption::SaltPepper { .. })
    }
    fn data_width(&self) -> usize {
        self.input_dim() + self.task().target_width()
    }
    fn check_rows(&self, data: &Matrix, what: &str) -> Result<()> {
        if let crate::task::Task::Classify { classes } = self.task() {
            check_output_range(self, data, what)?;
            let w = data.cols();
            for (r, row) in data.as_slice().chunks_exact(w).enumerate() {
                let l = row[w - 1];
                if !(l >= 0.0 && l < classes as f32 && l.fract() == 0.0) {
                    return Err(invalid!("{what}: row {r} has label {l}, not a class (0 to {})", classes - 1));
                }
            }
            return Ok(());
        }
        // The loss's targets (the inputs, or the regression targets after them) in its domain.
        let (w, tw) = (data.cols(), self.task().target_width());
        let loss = self.spec().loss;
        // The loss's domain first (it names the row and column), then the output's range.
        if tw == 0 {
            loss.check_targets(data.as_slice(), w, what)?;
        }
        for (r, row) in data.as_slice().chunks_exact(w).enumerate().filter(|_| tw > 0) {
            if let Some(c) = row[w - tw..].iter().position(|&v| !loss.accepts_target(v)) {
                return Err(loss.target_error(&format!("{what} (targets)"), r, c, row[w - tw + c]));
            }
        }
        check_output_range(self, data, what)
    }
    fn training_rows<'a>(&self, data: &'a crate::data::Dataset, what: &str) -> Result<std::borrow::Cow<'a, Matrix>> {
        Ok(match self.task() {
            crate::task::Task::Reconstruct => std::borrow::Cow::Borrowed(data.x()),
            t => std::borrow::Cow::Owned(t.training_matrix(data, what)?),
        })
    }
    fn valid_score(&self, v: &Matrix, threads: usize) -> Result<f64> {
        self.loss_threads(v, threads)
    }
    fn frozen_ranges(&self) -> Vec<Range<usize>> {
        self.frozen_param_ranges()
    }
    fn checkpoint_model(&self) -> Option<super::checkpoint::ModelState> {
        Some(super::checkpoint::ModelState::of_network(self))
    }
    fn needs_all_rows(&self) -> Option<&'static str> {
        self.center_pending.then_some(
            "the first fit of a network with functional layers centres their biases on all its training rows: run it in memory (on a sample), then stream",
        )
    }
}

/// A VAE reports the reconstruction part of the negative ELBO per example as the loss and the
/// KL part as the penalty (their sum is DL4J's score); validation is the negative ELBO.
impl Trainable for Vae {
    trainable_from_inherent!(Vae);
    fn is_stochastic(&self) -> bool {
        true
    }
    fn needs_feature_range(&self) -> bool {
        false
    }
    fn valid_score(&self, v: &Matrix, threads: usize) -> Result<f64> {
        Vae::valid_score(self, v, threads)
    }
    fn check_rows(&self, data: &Matrix, what: &str) -> Result<()> {
        self.check_support(data, what)
    }
    fn end_fit(&mut self, train: &Matrix) -> Result<()> {
        if self.spec().objective == crate::vae::Objective::Bilbo { self.fit_prior(train) } else { Ok(()) }
    }
    fn clock(&self) -> u64 {
        self.steps()
    }
    fn set_clock(&mut self, clock: u64) {
        self.set_steps(clock);
    }
    fn checkpoint_model(&self) -> Option<super::checkpoint::ModelState> {
        Some(super::checkpoint::ModelState::of_vae(self))
    }
    fn needs_all_rows(&self) -> Option<&'static str> {
        (self.spec().objective == crate::vae::Objective::Bilbo)
            .then_some("a BILBO VAE fits its prior to all its training rows at the end of the fit")
    }
}

pub struct Trainer {
    config: TrainConfig,
    pub(crate) history: Vec<EpochRecord>,
    pub(crate) optimizer: Option<Optimizer>,
    pub(crate) stage: Stage,
    /// Processes that train together (MPI ranks), if any.
    pub(crate) collective: Option<std::sync::Arc<dyn super::collective::Collective>>,
    /// Device fits: stream minibatches (Some(true)), keep the rows on the device (Some(false)),
    /// or decide by the device's free memory (None).
    pub(crate) device_streaming: Option<bool>,
    /// The fit a checkpoint left unfinished ([`super::checkpoint`]): the next fit continues it.
    pub(crate) resume: Option<super::checkpoint::RunState>,
    /// Periodic checkpoints: (file, every this many epochs).
    pub(crate) checkpoints: Option<(std::path::PathBuf, usize)>,
}

pub(crate) type Callback<'a> = Option<&'a mut dyn FnMut(&Progress) -> bool>;
/// A progress callback that also sees the model being trained, as it stands after the step or
/// epoch it reports (Keras' `self.model` in a callback): for checkpoints and watching codes.
pub type Watch<'a, M> = Option<&'a mut dyn FnMut(&Progress, &M) -> bool>;
/// A progress callback that sees the fit's [`Snapshot`]: the model and, at epoch ends, the
/// whole training state, which it may save as a checkpoint ([`Snapshot::save`]).
pub type SnapshotWatch<'a, M> = Option<&'a mut dyn for<'s> FnMut(&Progress, &Snapshot<'s, M>) -> bool>;

/// What a progress callback sees of a fit: the model as it stands, and at an epoch end of a
/// CPU fit the rest of the training state (optimizer, schedule position, shuffling and noise
/// counters, early stopping, history), which [`Snapshot::save`] writes as a checkpoint.
pub struct Snapshot<'a, M> {
    pub model: &'a M,
    pub(crate) state: std::result::Result<super::checkpoint::LiveState<'a>, NoState>,
}

/// Why a [`Snapshot`] has no training state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoState {
    /// After a minibatch: checkpoints are taken at epoch ends.
    MidEpoch,
    /// A device fit: checkpoints are for CPU fits.
    Device,
    /// A streamed fit ([`Trainer::fit_source`]): its rows are not in memory to fingerprint.
    Streamed,
}

impl<'a, M> Snapshot<'a, M> {
    /// A snapshot without training state (a minibatch event, a device fit).
    pub(crate) fn model_only(model: &'a M, why: NoState) -> Snapshot<'a, M> {
        Snapshot { model, state: Err(why) }
    }
    /// Whether [`Snapshot::save`] can write a checkpoint here.
    pub fn can_checkpoint(&self) -> bool {
        self.state.is_ok()
    }
}

impl Trainer {
    pub fn new(config: TrainConfig) -> Result<Trainer> {
        config.validate()?;
        Ok(Trainer {
            config,
            history: Vec::new(),
            optimizer: None,
            stage: Stage::default(),
            collective: None,
            device_streaming: None,
            resume: None,
            checkpoints: None,
        })
    }

    /// Trains data-parallel with other processes from now on (see [`super::collective`]): every
    /// process calls fit() with the same rows, configuration and model, and takes its slice of
    /// each global minibatch; gradients are summed across them before each step. None: alone.
    pub fn set_collective(&mut self, c: Option<std::sync::Arc<dyn super::collective::Collective>>) {
        self.collective = c;
    }

    /// How a device fit gets its rows: streamed through pinned staging buffers (true), copied
    /// to the device once (false), or chosen by the device's free memory (None, the default:
    /// copied when they take at most 40% of it).
    pub fn set_device_streaming(&mut self, stream: Option<bool>) {
        self.device_streaming = stream;
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Per-epoch records of every fit() so far.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// The stage that progress reports name.
    pub fn set_stage(&mut self, stage: Stage) {
        self.stage = stage;
    }

    /// Forgets the history, the optimizer state and a fit to resume.
    pub fn reset(&mut self) {
        self.history.clear();
        self.optimizer = None;
        self.resume = None;
    }

    /// Trains a network on a dataset: to reconstruct its rows, or (a supervised network) to
    /// predict its labels or targets. [`Trainer::fit`] with the rows [`Task::training_matrix`]
    /// builds.
    ///
    /// [`Task::training_matrix`]: crate::task::Task::training_matrix
    pub fn fit_dataset<M: Trainable>(
        &mut self,
        net: &mut M,
        data: &crate::data::Dataset,
        valid: Option<&crate::data::Dataset>,
        progress: Callback,
    ) -> Result<()> {
        let train = net.training_rows(data, "the training data")?;
        let valid = valid.map(|v| net.training_rows(v, "the validation data")).transpose()?;
        net.adopt_scaling(data)?;
        self.fit(net, &train, valid.as_deref(), progress)
    }

    /// Trains `net` to reconstruct the rows of `data`. Validation uses `valid`, or else a
    /// seeded `validation_fraction` of `data`. The callback returns false to cancel: the network
    /// then keeps the parameters of the last completed step and `Error::Cancelled` comes back.
    /// On divergence (a non-finite loss) the parameters go back to the start of that epoch.
    /// Each call is one run of the schedule: its epochs and steps count from 0 again.
    pub fn fit<M: Trainable>(
        &mut self,
        net: &mut M,
        data: &Matrix,
        valid: Option<&Matrix>,
        progress: Callback,
    ) -> Result<()> {
        let mut g = progress.map(|f| move |p: &Progress, _: &M| f(p));
        self.fit_watching(net, data, valid, g.as_mut().map(|g| g as _))
    }

    /// [`Trainer::fit`] with a callback that also sees the model (to save it or encode with it
    /// while it trains).
    pub fn fit_watching<M: Trainable>(
        &mut self,
        net: &mut M,
        data: &Matrix,
        valid: Option<&Matrix>,
        progress: Watch<M>,
    ) -> Result<()> {
        let mut g = progress.map(|f| move |p: &Progress, s: &Snapshot<M>| f(p, s.model));
        self.fit_snapshots(net, data, valid, g.as_mut().map(|g| g as _))
    }

    /// [`Trainer::fit`] with a callback that sees the fit's [`Snapshot`], which it can save as
    /// a checkpoint at an epoch end. A trainer made from a checkpoint
    /// ([`super::checkpoint::Checkpoint`]) continues the fit it interrupted: the same rows
    /// (checked by their CRC-32) and the same configuration give the parameters and history
    /// of the uninterrupted fit, bit for bit.
    pub fn fit_snapshots<M: Trainable>(
        &mut self,
        net: &mut M,
        data: &Matrix,
        valid: Option<&Matrix>,
        mut progress: SnapshotWatch<M>,
    ) -> Result<()> {
        let c = self.config;
        let (train, valid, split) = checked_split(&c, &*net, data, valid)?;
        let (train, valid) = match &split {
            Some(sp) => (&sp.0, Some(&sp.1)),
            None => (train, valid),
        };
        let rows = train.rows();
        let batch = c.batch_size.min(rows.max(1));
        let batches = if c.drop_last { rows / batch } else { rows.div_ceil(batch) };
        if batches == 0 {
            return Err(invalid!("{rows} training rows make no minibatch of {}", c.batch_size));
        }
        let weights = net.weight_ranges();
        let keep = matches!(&self.optimizer, Some(o) if o.len() == net.param_count() && o.config == c.optimizer);
        if let Some(r) = &self.resume {
            if !keep {
                return Err(invalid!(
                    "the checkpoint's optimizer state is for {} parameters; this model has {}: resume with the model loaded from the same checkpoint",
                    self.optimizer.as_ref().map_or(0, |o| o.len()),
                    net.param_count()
                ));
            }
            r.check_data(train, valid)?;
        }
        if (self.resume.is_some() || self.checkpoints.is_some()) && net.checkpoint_model().is_none() {
            return Err(Error::Unsupported("this kind of model cannot be checkpointed".into()));
        }
        if !keep {
            self.optimizer = Some(Optimizer::new(c.optimizer, net.param_count(), &weights)?);
        }
        let threads = crate::pool::resolve_threads(c.threads);
        net.begin_fit(train, threads)?;
        if let Some(col) = &self.collective {
            agree(col.as_ref(), net, train.rows(), train.cols())?;
        }
        let result = self.fit_on_cpu::<M::OnCpu>(net, Feed::Memory(train), valid, &mut progress);
        let result = match result {
            Ok(()) => net.end_fit(train),
            Err(Error::Cancelled) => net.end_fit(train).and(Err(Error::Cancelled)),
            r => r,
        };
        if matches!(result, Err(Error::Diverged(_))) {
            self.optimizer = None;
        }
        result
    }
}

/// Where an epoch's rows come from: memory (every fit but a streamed one), or a streamed
/// source, with the minibatch plan of its process when it trains across processes.
#[doc(hidden)]
pub enum Feed<'a> {
    Memory(&'a Matrix),
    Stream { src: &'a mut dyn RowSource, plan: Option<RankPlan> },
}

/// The minibatches of a streamed fit across processes: each process reads its own contiguous
/// slice of the rows, and minibatch b is made of every process's local minibatch b, of its
/// share of the batch size (as [`super::collective::slice_of`] cuts both). Every process
/// computes the whole plan from the row count, so none needs to ask the others.
#[doc(hidden)]
pub struct RankPlan {
    pub(crate) rank: usize,
    /// Each process's rows and local batch size.
    rows: Vec<usize>,
    pub(crate) batch: Vec<usize>,
}

impl RankPlan {
    fn new(total: usize, batch: usize, rank: usize, size: usize) -> Result<RankPlan> {
        let part = |n: usize, q: usize| {
            let (a, e) = super::collective::slice_of(n, q, size);
            e - a
        };
        let rows: Vec<usize> = (0..size).map(|q| part(total, q)).collect();
        let batch: Vec<usize> = (0..size).map(|q| part(batch, q)).collect();
        if batch.contains(&0) || rows.contains(&0) {
            return Err(invalid!(
                "a streamed fit across {size} processes needs at least one row and one row of each minibatch per process ({total} rows, batch size {})",
                batch.iter().sum::<usize>()
            ));
        }
        Ok(RankPlan { rank, rows, batch })
    }
    /// Minibatches an epoch makes: until every process used all its rows, or (drop_last)
    /// while every process has a whole local minibatch.
    pub(crate) fn batches(&self, drop_last: bool) -> usize {
        let per = self.rows.iter().zip(&self.batch).map(|(&n, &k)| if drop_last { n / k } else { n.div_ceil(k) });
        if drop_last { per.min().unwrap_or(0) } else { per.max().unwrap_or(0) }
    }
    fn local(&self, q: usize, b: usize) -> usize {
        self.batch[q].min(self.rows[q].saturating_sub(b * self.batch[q]))
    }
    /// Rows of minibatch b over all processes.
    pub(crate) fn rows_at(&self, b: usize) -> usize {
        (0..self.rows.len()).map(|q| self.local(q, b)).sum()
    }
    /// Where this process's rows start in minibatch b (the noise of a row is keyed by it).
    pub(crate) fn offset_at(&self, b: usize) -> usize {
        (0..self.rank).map(|q| self.local(q, b)).sum()
    }
}

impl Trainer {
    /// Trains `net` on the rows of `src`: a [`Matrix`] (then exactly [`Trainer::fit_snapshots`])
    /// or a source that reads them as it goes ([`crate::data::stream::NpyStream`]), holding a
    /// window of rows at a time and shuffling by blocks ([`crate::data::stream::BlockShuffle`]).
    ///
    /// A streamed fit takes validation rows from `valid` only: a `validation_fraction` of the
    /// source, checkpoints and resuming, salt-and-pepper corruption (it needs every column's
    /// range) and models that need all rows at once ([`Trainable::needs_all_rows`]) are
    /// [`Error::Unsupported`]. The rows are checked as they are read; a bad row or a read that
    /// fails (a file truncated meanwhile) ends the fit with the parameters, history and
    /// optimizer state as they were before it. Across processes ([`Trainer::set_collective`])
    /// each process reads only its contiguous slice of the rows ([`RowSource::select_slice`]);
    /// minibatch b is every process's local minibatch b (see `RankPlan`).
    pub fn fit_source<M: Trainable>(
        &mut self,
        net: &mut M,
        src: &mut dyn RowSource,
        valid: Option<&Matrix>,
        mut progress: SnapshotWatch<M>,
    ) -> Result<()> {
        if let Some(m) = src.in_memory() {
            return self.fit_snapshots(net, m, valid, progress);
        }
        let c = self.config;
        let unsupported = |what: &str| Err(Error::Unsupported(format!("a streamed fit cannot {what}")));
        if self.resume.is_some() || self.checkpoints.is_some() {
            return unsupported(
                "be checkpointed or resume a checkpoint (a checkpoint fingerprints the training rows in memory)",
            );
        }
        if valid.is_none() && c.validation_fraction > 0.0 {
            return unsupported(
                "hold out a validation_fraction of its rows: give validation rows (in memory), or set validation_fraction to 0",
            );
        }
        if net.needs_feature_range() {
            return unsupported("use salt-and-pepper corruption (it needs the range of every column over all rows)");
        }
        if let Some(why) = net.needs_all_rows() {
            return Err(Error::Unsupported(format!("a streamed fit cannot train this model: {why}")));
        }
        let width = net.data_width();
        if src.cols() != width {
            return Err(shape!("the streamed rows have {} columns, the network expects {width}", src.cols()));
        }
        if let Some(v) = valid {
            // The validation checks of an in-memory fit (with no rows standing in for the data).
            checked_split(&TrainConfig { validation_fraction: 0.0, ..c }, &*net, &Matrix::zeros(0, width)?, Some(v))?;
        }
        let plan = match &self.collective {
            Some(col) => {
                agree(col.as_ref(), net, src.total_rows(), src.cols())?;
                let plan = RankPlan::new(src.total_rows(), c.batch_size, col.rank(), col.size())?;
                src.select_slice(col.rank(), col.size())?;
                Some(plan)
            }
            None => {
                // All the rows (a stream an earlier fit across processes cut to its slice).
                src.select_slice(0, 1)?;
                None
            }
        };
        let keep = matches!(&self.optimizer, Some(o) if o.len() == net.param_count() && o.config == c.optimizer);
        if !keep {
            self.optimizer = Some(Optimizer::new(c.optimizer, net.param_count(), &net.weight_ranges())?);
        }
        // What a failed read or a bad row restores.
        let before = (net.params().to_vec(), net.clock(), self.history.len(), self.optimizer.clone());
        let feed = Feed::Stream { src, plan };
        let result = self.fit_on_cpu::<M::OnCpu>(net, feed, valid, &mut progress);
        match &result {
            Ok(()) | Err(Error::Cancelled) => {}
            Err(Error::Diverged(_)) => self.optimizer = None,
            Err(_) => {
                net.params_mut().copy_from_slice(&before.0);
                net.set_clock(before.1);
                self.history.truncate(before.2);
                self.optimizer = before.3;
            }
        }
        result
    }
}

/// Across processes: refuses a model whose objective cannot be split, and starts every process
/// from rank 0's parameters (on rows of the same shape).
fn agree<M: Trainable>(col: &dyn super::collective::Collective, net: &mut M, rows: usize, cols: usize) -> Result<()> {
    if !net.shardable() {
        return Err(invalid!(
            "this model's objective depends on whole-minibatch statistics (KL sparsity, BILBO) or row order (memory layers): it cannot be split across processes"
        ));
    }
    super::collective::agree(col, rows, cols, net.params_mut())
}

/// Refuses targets the output layer cannot produce (a sigmoid output on data outside [0, 1]
/// trains silently to a useless fit: test MSE 0.195 against 0.0018 with an identity output on
/// real-valued data), naming the fix.
fn check_output_range(net: &Network, data: &Matrix, what: &str) -> Result<()> {
    use crate::task::Task;
    let tw = match net.task() {
        Task::Classify { .. } => return Ok(()),
        Task::Reconstruct => data.cols(),
        Task::Regress { outputs } => outputs,
    };
    let act = net.layers().last().map_or(crate::Activation::Identity, |l| l.activation);
    let (lo, hi) = act.range();
    if lo == f32::NEG_INFINITY && hi == f32::INFINITY {
        return Ok(());
    }
    let w = data.cols();
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for row in data.as_slice().chunks_exact(w) {
        for &v in &row[w - tw..] {
            min = min.min(v);
            max = max.max(v);
        }
    }
    if min < lo || max > hi {
        let targets = if tw == w { "values" } else { "targets" };
        return Err(invalid!(
            "{what}: its {targets} span [{min}, {max}], but the {} output layer only produces values in [{lo}, {hi}]: use an identity output (LATENT_ACTIVATION_IDENTITY) for real-valued data, or scale the data into the output's range (latent_dataset_scale)",
            act.name()
        ));
    }
    Ok(())
}

/// The checks every fit makes on its rows, and the validation split: (train, valid, the split
/// when one was made: then train and valid are its parts).
#[allow(clippy::type_complexity)]
pub(crate) fn checked_split<'a, M: Trainable>(
    c: &TrainConfig,
    net: &M,
    data: &'a Matrix,
    valid: Option<&'a Matrix>,
) -> Result<(&'a Matrix, Option<&'a Matrix>, Option<(Matrix, Matrix)>)> {
    let width = net.data_width();
    let targets = if width > net.input_dim() { " (inputs, then targets)" } else { "" };
    if data.cols() != width {
        return Err(shape!("training data has {} columns, the network expects {width}{targets}", data.cols()));
    }
    if let Some(v) = valid {
        if v.rows() == 0 {
            return Err(invalid!(
                "validation data has no rows: a validation loss over nothing is undefined and early stopping could not work (pass NULL for no validation)"
            ));
        }
        if v.cols() != width {
            return Err(shape!("validation data has {} columns, the network expects {width}{targets}", v.cols()));
        }
        v.check_finite("validation data")?;
        net.check_rows(v, "validation data")?;
    }
    data.check_finite("training data")?;
    net.check_rows(data, "training data")?;
    if valid.is_none() && c.validation_fraction > 0.0 {
        let sp = split_rows(data, c.validation_fraction, c.seed)?;
        if sp.1.rows() == 0 {
            return Err(invalid!(
                "validation fraction {} of {} rows holds no row: raise it, or set it to 0 for no validation",
                c.validation_fraction,
                data.rows()
            ));
        }
        return Ok((data, None, Some(sp)));
    }
    Ok((data, valid, None))
}

pub use crate::data::split::{split_index, split_rows};

pub(crate) mod sealed {
    use super::*;
    use crate::backend::{Cpu, DeviceNetwork, DeviceVae};

    /// How a model is fitted: by its model code written over the backend (`OnCpu`), on the CPU
    /// backend, in the one loop ([`Trainer::fit_on_cpu`]). Sealed: the models are the crate's.
    pub trait CpuFit: Sized {
        type OnCpu: crate::backend::DeviceModel<Backend = Cpu, Host = Self>;
    }

    impl CpuFit for Network {
        type OnCpu = DeviceNetwork<Cpu>;
    }

    impl CpuFit for Vae {
        type OnCpu = DeviceVae<Cpu>;
    }
}
