//! Training checkpoints: the whole state of a fit at an epoch end (the model, the optimizer's
//! moments, the schedule's position, the epoch, the shuffling and noise counters, early
//! stopping, the history, the configuration) in one versioned, checksummed file written
//! atomically, and the resumed fit that continues from it. An interrupted fit resumed from its
//! checkpoint gives the parameters, the history's losses and learning rates and the model file
//! of the uninterrupted fit bit for bit, on the same rows, configuration and thread count.
//!
//! Checkpoints are taken at epoch ends: periodically ([`Trainer::set_checkpoints`]), from a
//! progress callback ([`Snapshot::save`], [`Trainer::fit_snapshots`]), or between fits
//! ([`Trainer::checkpoint`]). A checkpoint between fits resumes as the next fit of the same
//! trainer would start (with its history and optimizer state). CPU fits only (a device fit
//! refuses checkpoints), networks and VAEs.
//!
//! The shuffling stream is not stored: it is replayed (the order of an epoch is the previous
//! order shuffled again, one Xoshiro256++ stream from the seed), so the checkpoint holds the
//! number of completed epochs. The noise of corruption, stochastic units and VAE sampling is
//! counter-based (Philox keyed by the seed, one counter per minibatch step), so the counter is
//! stored. A VAE's training clock (KL warm-up) is in its model file.
//!
//! # Format, version 1
//!
//! Little-endian throughout. `M` is the embedded model file's length, `S` the training-state
//! section's:
//!
//! | offset  | size | type  | field                                                         |
//! |---------|------|-------|---------------------------------------------------------------|
//! | 0       | 8    | bytes | magic `LATENTCK` (`4c 41 54 45 4e 54 43 4b`)                  |
//! | 8       | 4    | u32   | checkpoint format version (1)                                 |
//! | 12      | 4    | u32   | flags: 0 (reserved)                                           |
//! | 16      | 4    | u32   | model kind: 0 network, 1 VAE                                  |
//! | 20      | 8    | u64   | `M`                                                           |
//! | 28      | `M`  | bytes | the model file, exactly as [`crate::model_file::to_bytes`] (or `vae_to_bytes`) writes it: its own magic, version and CRC |
//! | 28 + M  | 8    | u64   | `S`                                                           |
//! | 36 + M  | `S`  |       | the training state (below)                                    |
//! | 36 + M + S | 4 | u32   | CRC-32/IEEE (as the model file's) of bytes `0 .. 36 + M + S`  |
//!
//! The training state, fields in order (`N` the model's parameter count):
//!
//! | size   | type  | field                                                                 |
//! |--------|-------|-----------------------------------------------------------------------|
//! | 8, 8   | u64   | epochs, batch size                                                    |
//! | 4      | f32   | learning rate                                                         |
//! | 4      | i32   | optimizer (`LATENT_OPTIMIZER_*`)                                      |
//! | 4      | f32   | momentum                                                              |
//! | 4      | u32   | Nesterov (0 or 1)                                                     |
//! | 4 x 4  | f32   | beta1, beta2, epsilon, weight decay                                   |
//! | 4      | i32   | learning-rate schedule (`LATENT_LR_SCHEDULE_*`)                       |
//! | 8      | u64   | step schedule: epochs between decays (0 for other schedules)          |
//! | 4, 4   | f32   | gamma (step, exponential), min_lr (cosine); 0 when unused             |
//! | 8      | u64   | warm-up steps                                                         |
//! | 4      | f32   | momentum_initial                                                      |
//! | 8      | u64   | momentum_switch_epoch                                                 |
//! | 4      | f32   | gradient clip norm                                                    |
//! | 8, 8   | u64   | seed, threads                                                         |
//! | 8      | f64   | validation fraction                                                   |
//! | 8      | u64   | early-stopping patience                                               |
//! | 4, 4   | u32   | shuffle, drop_last (0 or 1)                                           |
//! | 8      | u64   | progress_every                                                        |
//! | 4      | u32   | `L`, the periodic checkpoint path's length in bytes (0: none)         |
//! | `L`    | UTF-8 | the periodic checkpoint path                                          |
//! | 8      | u64   | checkpoint every this many epochs (0 when `L` is 0)                   |
//! | 4      | u32   | frozen layers (a network's, not in its model file): 0 or 1; then, if 1: u64 first layer, u64 end layer (excluded), u64 epochs still frozen (`u64::MAX`: until unfrozen) |
//! | 8      | u64   | `H`, history records; then `H` records of six f64: train loss, train penalty, validation loss (NaN without), seconds, samples per second, learning rate |
//! | 4      | u32   | optimizer state present (0 or 1); then, if 1: u64 steps, f32 SGD momentum of the next steps, u64 `N`, `N` f32 first moments (SGD: velocity), `N` f32 second moments, u64 `K`, `K` u64 steps per weight-decay segment |
//! | 4      | u32   | an unfinished fit (0 or 1); then, if 1: u64 epochs completed in it, u64 noise counter (minibatch steps taken), u64 epochs since the best validation loss, u32 stopped early (0 or 1), u64 training rows, u64 columns, u32 CRC-32 of the training rows (f32 little-endian, row-major, after the validation split), u64 validation rows, u32 their CRC-32 (0 rows: CRC 0), u32 a best validation loss kept (0 or 1); then, if 1: f64 that loss, u64 `N`, `N` f32 its parameters |
//!
//! A reader checks, in order: the magic, the minimum length, the version, the flags, the CRC
//! over the whole file before trusting any size in it; then every count against the bytes that
//! are left before allocating by it; the embedded model file as [`crate::model_file`] checks
//! one; the configuration as [`TrainConfig::validate`] does; the optimizer state and the best
//! parameters against the model's parameter count; and that the section ends exactly. Every
//! problem is [`Error::BadFormat`]: "not a latent checkpoint (bad magic)", "truncated: ...",
//! "written by a newer latent: ...", "checksum mismatch: ...", "bad training state: ...",
//! "bad model: ...", "trailing bytes: ...", "wrong kind: ...". Files are written as model files
//! are ([`crate::atomic_file`]): a failed save leaves whatever was at the path untouched and
//! no temporary file behind.

#![forbid(unsafe_code)]

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use super::trainer::{EpochRecord, NoState, Snapshot, TrainConfig, Trainable, Trainer};
use crate::data::crc32::{Crc32, crc32};
use crate::error::{Error, Result, invalid};
use crate::network::Network;
use crate::optim::{LrSchedule, Optimizer, OptimizerConfig, OptimizerKind, Schedule};
use crate::tensor::Matrix;
use crate::transfer::Freeze;
use crate::vae::Vae;

/// The first eight bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"LATENTCK";
/// The checkpoint format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Files larger than this are refused before reading (a checkpoint holds the parameters about
/// four times: the model, two moments, the best parameters).
pub const MAX_FILE_BYTES: u64 = 4 * crate::model_file::MAX_FILE_BYTES;
/// Header, model length, state length, CRC.
const MIN_FILE_BYTES: usize = 28 + 8 + 4;

/// What a checkpoint holds a model of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Network,
    Vae,
}

impl ModelKind {
    pub fn code(self) -> u32 {
        match self {
            ModelKind::Network => 0,
            ModelKind::Vae => 1,
        }
    }
    fn from_code(c: u32) -> Result<ModelKind> {
        match c {
            0 => Ok(ModelKind::Network),
            1 => Ok(ModelKind::Vae),
            _ => Err(bad(format!("bad model: model kind {c} is not 0 (network) or 1 (VAE)"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Network => "network",
            ModelKind::Vae => "VAE",
        }
    }
}

/// What a checkpoint keeps of a model: its model file and what that file leaves out.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelState {
    pub kind: ModelKind,
    /// The model file's bytes.
    pub bytes: Vec<u8>,
    /// A network's frozen layers.
    pub freeze: Option<Freeze>,
}

impl ModelState {
    pub(crate) fn of_network(n: &Network) -> ModelState {
        ModelState { kind: ModelKind::Network, bytes: crate::model_file::to_bytes(n), freeze: n.frozen().cloned() }
    }
    pub(crate) fn of_vae(v: &Vae) -> ModelState {
        ModelState { kind: ModelKind::Vae, bytes: crate::model_file::vae_to_bytes(v), freeze: None }
    }
}

/// The rows a fit trains on, told apart by their shapes and CRC-32s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DataPrint {
    train_rows: u64,
    cols: u64,
    train_crc: u32,
    valid_rows: u64,
    valid_crc: u32,
}

fn matrix_crc(m: &Matrix) -> u32 {
    let mut c = Crc32::new();
    let mut buf = [0u8; 16 * 1024];
    for chunk in m.as_slice().chunks(buf.len() / 4) {
        for (b, v) in buf.chunks_exact_mut(4).zip(chunk) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        c.update(&buf[..chunk.len() * 4]);
    }
    c.value()
}

impl DataPrint {
    fn of(train: &Matrix, valid: Option<&Matrix>) -> DataPrint {
        DataPrint {
            train_rows: train.rows() as u64,
            cols: train.cols() as u64,
            train_crc: matrix_crc(train),
            valid_rows: valid.map_or(0, |v| v.rows() as u64),
            valid_crc: valid.map_or(0, matrix_crc),
        }
    }
}

/// Where a fit stands at an epoch end, beyond the model, the optimizer and the history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunState {
    pub(crate) epochs_done: usize,
    /// Minibatch steps taken in the fit: the noise counter of the last one.
    pub(crate) noise_ctr: u64,
    /// The best validation loss so far and its parameters (early stopping).
    pub(crate) best: Option<(f64, Vec<f32>)>,
    pub(crate) since_best: usize,
    pub(crate) stopped: bool,
    /// The rows of the fit (set in a loaded checkpoint).
    pub(crate) data: Option<DataPrint>,
}

impl RunState {
    /// Refuses rows other than those of the checkpointed fit.
    pub(crate) fn check_data(&self, train: &Matrix, valid: Option<&Matrix>) -> Result<()> {
        let Some(want) = self.data else { return Ok(()) };
        let got = DataPrint::of(train, valid);
        if got != want {
            return Err(invalid!(
                "the rows differ from those of the checkpointed fit ({} training rows of {} columns with CRC-32 {:08x}, {} validation rows with CRC-32 {:08x}; given {}, {}, {:08x}, {}, {:08x}): resume with the same training and validation data",
                want.train_rows,
                want.cols,
                want.train_crc,
                want.valid_rows,
                want.valid_crc,
                got.train_rows,
                got.cols,
                got.train_crc,
                got.valid_rows,
                got.valid_crc
            ));
        }
        Ok(())
    }
}

/// The training state a fit lends its progress callback at an epoch end.
pub(crate) struct LiveState<'a> {
    pub(crate) trainer: &'a Trainer,
    pub(crate) optimizer: &'a Optimizer,
    pub(crate) run: &'a RunState,
    pub(crate) train: &'a Matrix,
    pub(crate) valid: Option<&'a Matrix>,
    pub(crate) prints: &'a OnceCell<DataPrint>,
}

impl<M: Trainable> Snapshot<'_, M> {
    /// The checkpoint of this moment of the fit, as [`Snapshot::save`] writes it.
    /// InvalidArgument after a minibatch (checkpoints are taken at epoch ends), Unsupported on
    /// a device fit or for a model that cannot be checkpointed.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let st = self.state.as_ref().map_err(|why| match why {
            NoState::MidEpoch => invalid!("a checkpoint is taken at an epoch end, not after a minibatch"),
            NoState::Device => Error::Unsupported(
                "checkpoints are taken of CPU fits only: move the model to the CPU (its parameters come along)".into(),
            ),
            NoState::Streamed => Error::Unsupported(
                "a streamed fit cannot be checkpointed (a checkpoint fingerprints the training rows in memory)".into(),
            ),
        })?;
        let model = self.model.checkpoint_model().ok_or_else(unsupported)?;
        let print = *st.prints.get_or_init(|| DataPrint::of(st.train, st.valid));
        Ok(encode(&model, st.trainer, Some(st.optimizer), Some((st.run, print))))
    }

    /// Saves the checkpoint of this moment of the fit to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::atomic_file::write_bytes(path, "saving the checkpoint", &bytes)
    }
}

fn unsupported() -> Error {
    Error::Unsupported("this kind of model cannot be checkpointed (networks and VAEs can)".into())
}

impl Trainer {
    /// Writes a checkpoint every `every` completed epochs of each fit to `path` (atomically,
    /// replacing the previous one); None turns them off. A checkpoint made by a fit carries
    /// this setting, so a trainer resumed from it goes on writing there.
    pub fn set_checkpoints(&mut self, path: Option<PathBuf>, every: usize) -> Result<()> {
        self.checkpoints = match path {
            None => None,
            Some(p) => {
                if every == 0 {
                    return Err(invalid!("checkpoint_every must be at least 1 when a checkpoint path is set"));
                }
                if p.as_os_str().is_empty() {
                    return Err(invalid!("the checkpoint path is empty"));
                }
                if p.to_str().is_none() {
                    return Err(invalid!("the checkpoint path {} is not valid UTF-8", p.display()));
                }
                Some((p, every))
            }
        };
        Ok(())
    }

    /// The periodic checkpoints' file and interval, if set.
    pub fn checkpoints(&self) -> Option<(&Path, usize)> {
        self.checkpoints.as_ref().map(|(p, e)| (p.as_path(), *e))
    }

    /// Epochs completed of the fit this trainer will continue (a trainer resumed from a
    /// checkpoint taken during a fit), else None.
    pub fn resume_epoch(&self) -> Option<usize> {
        self.resume.as_ref().map(|r| r.epochs_done)
    }

    /// Saves a checkpoint between fits: `model`, this trainer's configuration, history and
    /// optimizer state, and the fit it will continue if it was resumed and has not fitted since.
    pub fn checkpoint<M: Trainable>(&self, model: &M, path: &Path) -> Result<()> {
        let state = model.checkpoint_model().ok_or_else(unsupported)?;
        if self.optimizer.as_ref().is_some_and(|o| o.len() != model.param_count()) {
            return Err(invalid!(
                "this trainer's optimizer state is for {} parameters, the model has {}",
                self.optimizer.as_ref().map_or(0, |o| o.len()),
                model.param_count()
            ));
        }
        let run = self.resume.as_ref().and_then(|r| r.data.map(|d| (r, d)));
        let bytes = encode(&state, self, self.optimizer.as_ref(), run);
        crate::atomic_file::write_bytes(path, "saving the checkpoint", &bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

struct Out(Vec<u8>);

/// `Out::u32`, `Reader::u32` and the like: one number of the format, little-endian.
macro_rules! numbers {
    ($($t:ident),*) => {$(
        impl Out {
            fn $t(&mut self, v: $t) {
                self.0.extend_from_slice(&v.to_le_bytes());
            }
        }
        impl Reader<'_> {
            fn $t(&mut self, what: &str) -> Result<$t> {
                Ok($t::from_le_bytes(self.take(size_of::<$t>(), what)?.try_into().expect("its size")))
            }
        }
    )*};
}
numbers!(u32, i32, u64, f32, f64);

impl Out {
    fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }
    fn f32s(&mut self, v: &[f32]) {
        self.0.reserve(v.len() * 4);
        for x in v {
            self.f32(*x);
        }
    }
}

fn schedule_code(s: &LrSchedule) -> (i32, u64, f32, f32) {
    match *s {
        LrSchedule::Constant => (0, 0, 0.0, 0.0),
        LrSchedule::Step { every_epochs, gamma } => (1, every_epochs as u64, gamma, 0.0),
        LrSchedule::Exponential { gamma } => (2, 0, gamma, 0.0),
        LrSchedule::Cosine { min_lr } => (3, 0, 0.0, min_lr),
    }
}

fn encode(model: &ModelState, t: &Trainer, opt: Option<&Optimizer>, run: Option<(&RunState, DataPrint)>) -> Vec<u8> {
    let mut s = Out(Vec::new());
    let c = t.config();
    s.usize(c.epochs);
    s.usize(c.batch_size);
    s.f32(c.learning_rate);
    s.i32(c.optimizer.kind.code());
    s.f32(c.optimizer.momentum);
    s.u32(c.optimizer.nesterov as u32);
    s.f32(c.optimizer.beta1);
    s.f32(c.optimizer.beta2);
    s.f32(c.optimizer.epsilon);
    s.f32(c.optimizer.weight_decay);
    let (code, every, gamma, min_lr) = schedule_code(&c.schedule.lr);
    s.i32(code);
    s.u64(every);
    s.f32(gamma);
    s.f32(min_lr);
    s.usize(c.schedule.warmup_steps);
    s.f32(c.schedule.momentum_initial);
    s.usize(c.schedule.momentum_switch_epoch);
    s.f32(c.grad_clip_norm);
    s.u64(c.seed);
    s.usize(c.threads);
    s.f64(c.validation_fraction);
    s.usize(c.early_stopping_patience);
    s.u32(c.shuffle as u32);
    s.u32(c.drop_last as u32);
    s.usize(c.progress_every);
    match &t.checkpoints {
        Some((p, every)) => {
            let p = p.to_string_lossy();
            s.u32(p.len() as u32);
            s.0.extend_from_slice(p.as_bytes());
            s.usize(*every);
        }
        None => {
            s.u32(0);
            s.u64(0);
        }
    }
    s.u32(model.freeze.is_some() as u32);
    if let Some(f) = &model.freeze {
        s.usize(f.layers.start);
        s.usize(f.layers.end);
        s.u64(f.epochs.map_or(u64::MAX, |e| e as u64));
    }
    s.usize(t.history.len());
    for r in &t.history {
        for v in [r.train_loss, r.train_penalty, r.valid_loss, r.seconds, r.samples_per_second, r.learning_rate] {
            s.f64(v);
        }
    }
    s.u32(opt.is_some() as u32);
    if let Some(o) = opt {
        let (steps, momentum, m, v, seg) = o.state();
        s.u64(steps);
        s.f32(momentum);
        s.usize(m.len());
        s.f32s(m);
        s.f32s(v);
        s.usize(seg.len());
        for k in seg {
            s.u64(*k);
        }
    }
    s.u32(run.is_some() as u32);
    if let Some((r, d)) = run {
        s.usize(r.epochs_done);
        s.u64(r.noise_ctr);
        s.usize(r.since_best);
        s.u32(r.stopped as u32);
        s.u64(d.train_rows);
        s.u64(d.cols);
        s.u32(d.train_crc);
        s.u64(d.valid_rows);
        s.u32(d.valid_crc);
        s.u32(r.best.is_some() as u32);
        if let Some((loss, p)) = &r.best {
            s.f64(*loss);
            s.usize(p.len());
            s.f32s(p);
        }
    }
    let state = s.0;
    let mut out = Out(Vec::with_capacity(MIN_FILE_BYTES + model.bytes.len() + state.len()));
    out.0.extend_from_slice(&MAGIC);
    out.u32(VERSION);
    out.u32(0);
    out.u32(model.kind.code());
    out.usize(model.bytes.len());
    out.0.extend_from_slice(&model.bytes);
    out.usize(state.len());
    out.0.extend_from_slice(&state);
    let crc = crc32(&out.0);
    out.u32(crc);
    out.0
}

// ---------------------------------------------------------------------------------------------
// Reading

fn bad(msg: String) -> Error {
    Error::BadFormat(msg)
}

/// Bounds-checked reads of the training-state section.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.b.len() - self.at < n {
            return Err(bad(format!("truncated: the training state ends inside {what}")));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn usize(&mut self, what: &str) -> Result<usize> {
        let v = self.u64(what)?;
        usize::try_from(v).map_err(|_| bad(format!("bad training state: {what} {v} is out of range")))
    }
    fn flag(&mut self, what: &str) -> Result<bool> {
        match self.u32(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(bad(format!("bad training state: {what} is {v}, not 0 or 1"))),
        }
    }
    /// A count of `elem`-byte items, checked against the bytes left before anything is
    /// allocated by it.
    fn count(&mut self, elem: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.b.len() - self.at) as u64;
        if n.checked_mul(elem as u64).is_none_or(|need| need > left) {
            return Err(bad(format!("truncated: {n} {what} do not fit in the {left} bytes left")));
        }
        Ok(n as usize)
    }
    fn f32s(&mut self, n: usize, what: &str) -> Result<Vec<f32>> {
        let bytes = self.take(n * 4, what)?;
        let mut v = Vec::new();
        v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory(format!("{n} values of {what}")))?;
        v.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))));
        Ok(v)
    }
}

/// An optimizer's state as a checkpoint holds it.
#[derive(Clone, Debug, PartialEq)]
struct OptimizerState {
    steps: u64,
    momentum: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    seg_steps: Vec<u64>,
}

/// A checkpoint read from a file: the model, the trainer and the fit to continue.
/// [`Checkpoint::resume_network`] (or [`Checkpoint::resume_vae`]) gives them back as objects.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    model: ModelState,
    config: TrainConfig,
    checkpoints: Option<(PathBuf, usize)>,
    history: Vec<EpochRecord>,
    optimizer: Option<OptimizerState>,
    run: Option<RunState>,
}

impl Checkpoint {
    /// Reads and checks a checkpoint file (see the module docs); format problems are
    /// [`Error::BadFormat`] with the path in front of the message.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = crate::data::read_regular_checked(
            path,
            MAX_FILE_BYTES,
            "checkpoint",
            Some((&MAGIC, "not a latent checkpoint (bad magic)")),
        )?;
        Checkpoint::from_bytes(&bytes).map_err(|e| match e {
            Error::BadFormat(m) => Error::BadFormat(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses a checkpoint (see the module docs for what is checked).
    pub fn from_bytes(b: &[u8]) -> Result<Checkpoint> {
        let n = b.len().min(8);
        if b[..n] != MAGIC[..n] {
            return Err(bad("not a latent checkpoint (bad magic)".into()));
        }
        if b.len() < MIN_FILE_BYTES {
            return Err(bad(format!("truncated: {} bytes, a checkpoint has at least {MIN_FILE_BYTES}", b.len())));
        }
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version > VERSION {
            return Err(bad(format!(
                "written by a newer latent: checkpoint version {version}, this build reads 1 to {VERSION}"
            )));
        }
        if version == 0 {
            return Err(bad("invalid format version: 0".into()));
        }
        let body = &b[..b.len() - 4];
        let stored = u32_at(b.len() - 4);
        let computed = crc32(body);
        if stored != computed {
            return Err(bad(format!("checksum mismatch: stored {stored:08x}, computed {computed:08x}")));
        }
        let flags = u32_at(12);
        if flags != 0 {
            return Err(bad(format!("unsupported flags: {flags:#x}")));
        }
        let kind = ModelKind::from_code(u32_at(16))?;
        let m = u64_at(20);
        let left = (body.len() - 28) as u64;
        if m > left.saturating_sub(8) {
            return Err(bad(format!("truncated: a model file of {m} bytes does not fit in the {left} bytes left")));
        }
        let m = m as usize;
        let model_bytes = &body[28..28 + m];
        let s = u64_at(28 + m);
        let rest = (body.len() - 36 - m) as u64;
        if s != rest {
            return Err(if s > rest {
                bad(format!("truncated: a training state of {s} bytes in the {rest} bytes left"))
            } else {
                bad(format!("trailing bytes: {} after the training state", rest - s))
            });
        }
        let state = &body[36 + m..];
        // The model first: its parameter count bounds the state's arrays.
        let (params, freeze_layers) = match kind {
            ModelKind::Network => {
                let net = crate::model_file::from_bytes(model_bytes).map_err(model_err)?;
                (net.param_count(), net.layers().len())
            }
            ModelKind::Vae => (crate::model_file::vae_from_bytes(model_bytes).map_err(model_err)?.param_count(), 0),
        };
        let mut r = Reader { b: state, at: 0 };
        let config = read_config(&mut r)?;
        let plen = r.u32("the checkpoint path's length")? as usize;
        let path = std::str::from_utf8(r.take(plen, "the checkpoint path")?)
            .map_err(|_| bad("bad training state: the checkpoint path is not UTF-8".into()))?
            .to_owned();
        let every = r.usize("checkpoint_every")?;
        let checkpoints = match (plen, every) {
            (0, 0) => None,
            (p, e) if p > 0 && e > 0 => Some((PathBuf::from(path), e)),
            _ => return Err(bad("bad training state: a checkpoint path without an interval, or the reverse".into())),
        };
        let freeze = if r.flag("the frozen flag")? {
            let start = r.usize("the first frozen layer")?;
            let end = r.usize("the frozen layers' end")?;
            let epochs = r.u64("the frozen epochs")?;
            if kind != ModelKind::Network || start >= end || end > freeze_layers || epochs == 0 {
                return Err(bad(format!("bad training state: frozen layers {start} to {end} for {epochs} epochs")));
            }
            Some(Freeze { layers: start..end, epochs: (epochs != u64::MAX).then_some(epochs as usize) })
        } else {
            None
        };
        let h = r.count(48, "history records")?;
        let mut history = Vec::new();
        history.try_reserve_exact(h).map_err(|_| Error::OutOfMemory(format!("{h} history records")))?;
        for _ in 0..h {
            let mut v = [0f64; 6];
            for x in &mut v {
                *x = r.f64("a history record")?;
            }
            history.push(EpochRecord {
                train_loss: v[0],
                train_penalty: v[1],
                valid_loss: v[2],
                seconds: v[3],
                samples_per_second: v[4],
                learning_rate: v[5],
            });
        }
        let optimizer = if r.flag("the optimizer flag")? {
            let steps = r.u64("the optimizer's steps")?;
            let momentum = r.f32("the optimizer's momentum")?;
            let n = r.count(8, "optimizer moments")?;
            if n != params {
                return Err(bad(format!(
                    "bad training state: optimizer state of {n} parameters, the model has {params}"
                )));
            }
            let m = r.f32s(n, "the first moments")?;
            let v = r.f32s(n, "the second moments")?;
            let k = r.count(8, "optimizer segments")?;
            let mut seg_steps = Vec::with_capacity(k);
            for _ in 0..k {
                seg_steps.push(r.u64("a segment's steps")?);
            }
            Some(OptimizerState { steps, momentum, m, v, seg_steps })
        } else {
            None
        };
        let run = if r.flag("the unfinished-fit flag")? {
            let epochs_done = r.usize("the epochs completed")?;
            let noise_ctr = r.u64("the noise counter")?;
            let since_best = r.usize("the epochs since the best")?;
            let stopped = r.flag("the early-stop flag")?;
            let data = DataPrint {
                train_rows: r.u64("the training rows")?,
                cols: r.u64("the columns")?,
                train_crc: r.u32("the training rows' CRC")?,
                valid_rows: r.u64("the validation rows")?,
                valid_crc: r.u32("the validation rows' CRC")?,
            };
            let best = if r.flag("the best-loss flag")? {
                let loss = r.f64("the best validation loss")?;
                let n = r.count(4, "best parameters")?;
                if n != params || !loss.is_finite() {
                    return Err(bad(format!(
                        "bad training state: best parameters of {n} values (the model has {params}) with loss {loss}"
                    )));
                }
                Some((loss, r.f32s(n, "the best parameters")?))
            } else {
                None
            };
            if epochs_done > config.epochs || optimizer.is_none() {
                return Err(bad(format!(
                    "bad training state: {epochs_done} epochs completed of {}, optimizer state {}",
                    config.epochs,
                    if optimizer.is_some() { "present" } else { "missing" }
                )));
            }
            Some(RunState { epochs_done, noise_ctr, best, since_best, stopped, data: Some(data) })
        } else {
            None
        };
        if r.at != state.len() {
            return Err(bad(format!("trailing bytes: {} after the training state's fields", state.len() - r.at)));
        }
        Ok(Checkpoint {
            model: ModelState { kind, bytes: model_bytes.to_vec(), freeze },
            config,
            checkpoints,
            history,
            optimizer,
            run,
        })
    }

    /// Which kind of model the checkpoint holds.
    pub fn kind(&self) -> ModelKind {
        self.model.kind
    }
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }
    /// Epochs completed of the unfinished fit, if the checkpoint was taken during one.
    pub fn epochs_done(&self) -> Option<usize> {
        self.run.as_ref().map(|r| r.epochs_done)
    }
    /// The model file inside the checkpoint (what saving the model at that epoch writes).
    pub fn model_bytes(&self) -> &[u8] {
        &self.model.bytes
    }

    /// The network and a trainer that continues its training: the next fit on the same rows
    /// finishes the interrupted fit as if it had not stopped. A VAE's checkpoint is
    /// [`Error::BadFormat`] "wrong kind".
    pub fn resume_network(&self) -> Result<(Trainer, Network)> {
        if self.model.kind != ModelKind::Network {
            return Err(bad("wrong kind: this checkpoint holds a VAE (resume it as a VAE)".into()));
        }
        let mut net = crate::model_file::from_bytes(&self.model.bytes).map_err(model_err)?;
        if let Some(f) = &self.model.freeze {
            net.freeze(f.layers.clone(), f.epochs).map_err(|e| bad(format!("bad training state: {e}")))?;
        }
        Ok((self.trainer_for(&net)?, net))
    }

    /// The VAE and a trainer that continues its training (see [`Checkpoint::resume_network`]).
    pub fn resume_vae(&self) -> Result<(Trainer, Vae)> {
        if self.model.kind != ModelKind::Vae {
            return Err(bad("wrong kind: this checkpoint holds a network (resume it as a network)".into()));
        }
        let vae = crate::model_file::vae_from_bytes(&self.model.bytes).map_err(model_err)?;
        Ok((self.trainer_for(&vae)?, vae))
    }

    fn trainer_for<M: Trainable>(&self, m: &M) -> Result<Trainer> {
        let mut t = Trainer::new(self.config)?;
        t.history = self.history.clone();
        t.checkpoints = self.checkpoints.clone();
        if let Some(o) = &self.optimizer {
            let mut opt = Optimizer::new(self.config.optimizer, m.param_count(), &m.weight_ranges())?;
            opt.restore(o.steps, o.momentum, &o.m, &o.v, &o.seg_steps)
                .map_err(|e| bad(format!("bad training state: {e}")))?;
            t.optimizer = Some(opt);
        }
        t.resume = self.run.clone();
        Ok(t)
    }
}

fn model_err(e: Error) -> Error {
    match e {
        Error::BadFormat(m) => bad(format!("bad model: {m}")),
        other => other,
    }
}

fn read_config(r: &mut Reader) -> Result<TrainConfig> {
    let epochs = r.usize("epochs")?;
    let batch_size = r.usize("the batch size")?;
    let learning_rate = r.f32("the learning rate")?;
    let kind = OptimizerKind::from_code(r.i32("the optimizer")?).map_err(state_err)?;
    let momentum = r.f32("momentum")?;
    let nesterov = r.flag("nesterov")?;
    let beta1 = r.f32("beta1")?;
    let beta2 = r.f32("beta2")?;
    let epsilon = r.f32("epsilon")?;
    let weight_decay = r.f32("weight decay")?;
    let code = r.i32("the schedule")?;
    let every_epochs = r.usize("the step schedule's interval")?;
    let gamma = r.f32("gamma")?;
    let min_lr = r.f32("min_lr")?;
    let lr = match code {
        0 => LrSchedule::Constant,
        1 => LrSchedule::Step { every_epochs, gamma },
        2 => LrSchedule::Exponential { gamma },
        3 => LrSchedule::Cosine { min_lr },
        c => return Err(bad(format!("bad training state: schedule code {c}"))),
    };
    let schedule = Schedule {
        lr,
        warmup_steps: r.usize("warm-up steps")?,
        momentum_initial: r.f32("momentum_initial")?,
        momentum_switch_epoch: r.usize("momentum_switch_epoch")?,
    };
    let c = TrainConfig {
        epochs,
        batch_size,
        learning_rate,
        optimizer: OptimizerConfig { kind, momentum, nesterov, beta1, beta2, epsilon, weight_decay },
        schedule,
        grad_clip_norm: r.f32("the clip norm")?,
        seed: r.u64("the seed")?,
        threads: r.usize("threads")?,
        validation_fraction: r.f64("the validation fraction")?,
        early_stopping_patience: r.usize("the patience")?,
        shuffle: r.flag("shuffle")?,
        drop_last: r.flag("drop_last")?,
        progress_every: r.usize("progress_every")?,
    };
    c.validate().map_err(state_err)?;
    Ok(c)
}

fn state_err(e: Error) -> Error {
    bad(format!("bad training state: {e}"))
}
