//! Checkpoint and resume (src/train/checkpoint.rs): a fit interrupted at an epoch end and
//! resumed from its checkpoint file, into objects made afresh from that file, ends with the
//! parameters, history (losses, validation losses, learning rates; not the wall-clock fields)
//! and model file of the uninterrupted fit, bit for bit, on 1 and on 2 threads (2 threads cut
//! each minibatch of 256 rows into two data-parallel shards). Every epoch end of the straight
//! fit is checkpointed (saving does not disturb the fit) and each checkpoint is resumed, so the
//! first epoch, the middle, the epoch early stopping stops at and the last are all covered.
//! Also: corrupted and truncated files are BAD_FORMAT, a failed save leaves nothing behind,
//! other rows are refused, periodic checkpoints, and a checkpoint asked for after a minibatch
//! is refused.

mod common;

use std::path::{Path, PathBuf};

use latent::error::Error;
use latent::layer::Stochastic;
use latent::optim::{LrSchedule, OptimizerKind, Schedule};
use latent::rng::Rng;
use latent::train::{Checkpoint, Event, Progress, Snapshot, Trainable};
use latent::{Activation, Corruption, LayerSpec, Matrix, Network, NetworkSpec, TrainConfig, Trainer, Vae, VaeSpec};

const ROWS: usize = 1024;
const COLS: usize = 32;

/// Rows in [0, 1] with structure (a few latent factors), so that training makes progress.
fn data(seed: u64, rows: usize) -> Matrix {
    let mut rng = Rng::new(seed, 3);
    let basis: Vec<f32> = (0..4 * COLS).map(|_| rng.uniform()).collect();
    let mut v = Vec::with_capacity(rows * COLS);
    for _ in 0..rows {
        let w: Vec<f32> = (0..4).map(|_| rng.uniform()).collect();
        for c in 0..COLS {
            let s: f32 = (0..4).map(|k| w[k] * basis[k * COLS + c]).sum::<f32>() / 4.0;
            v.push((s + 0.1 * rng.uniform()).clamp(0.0, 1.0));
        }
    }
    Matrix::from_vec(rows, COLS, v).unwrap()
}

/// The same rows with a class label (0..3) appended: a classifier's training rows.
fn labelled(x: &Matrix) -> Matrix {
    let mut v = Vec::with_capacity(x.rows() * (COLS + 1));
    for r in 0..x.rows() {
        let row = x.row(r);
        v.extend_from_slice(row);
        let s: f32 = row[..8].iter().sum();
        v.push(((s * 1.5) as usize).min(2) as f32);
    }
    Matrix::from_vec(x.rows(), COLS + 1, v).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("latent-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The history without its wall-clock fields, as bits (NaN validation losses compare equal).
fn history_bits(t: &Trainer) -> Vec<[u64; 4]> {
    t.history()
        .iter()
        .map(|r| [r.train_loss.to_bits(), r.train_penalty.to_bits(), r.valid_loss.to_bits(), r.learning_rate.to_bits()])
        .collect()
}

struct Outcome {
    params: Vec<f32>,
    history: Vec<[u64; 4]>,
    file: Vec<u8>,
}

/// What a kind of model needs here: build it, resume it from a checkpoint, save its file.
trait Model: Trainable + Sized {
    fn resume(ck: &Checkpoint) -> (Trainer, Self);
    fn file(&self) -> Vec<u8>;
}

impl Model for Network {
    fn resume(ck: &Checkpoint) -> (Trainer, Self) {
        ck.resume_network().unwrap()
    }
    fn file(&self) -> Vec<u8> {
        latent::model_file::to_bytes(self)
    }
}

impl Model for Vae {
    fn resume(ck: &Checkpoint) -> (Trainer, Self) {
        ck.resume_vae().unwrap()
    }
    fn file(&self) -> Vec<u8> {
        latent::model_file::vae_to_bytes(self)
    }
}

fn outcome<M: Model>(t: &Trainer, m: &M) -> Outcome {
    Outcome { params: m.params().to_vec(), history: history_bits(t), file: m.file() }
}

/// The straight fit, checkpointing every epoch end to dir/epoch-<e>.ck; then every checkpoint
/// resumed into fresh objects (and one fit cancelled right after its checkpoint, as a job that
/// runs out of time is) must end exactly as the straight fit did. Returns the epochs run.
fn straight_and_resumed<M: Model>(
    name: &str,
    make: impl Fn() -> M,
    c: TrainConfig,
    x: &Matrix,
    valid: Option<&Matrix>,
) -> usize {
    let dir = scratch(name);
    let path = |e: usize| dir.join(format!("epoch-{e}.ck"));
    let mut t = Trainer::new(c).unwrap();
    let mut m = make();
    let mut saved = Vec::new();
    let mut cb = |p: &Progress, s: &Snapshot<M>| {
        if p.event == Event::EpochEnd {
            s.save(&path(p.epoch + 1)).unwrap();
            saved.push(p.epoch + 1);
        }
        true
    };
    t.fit_snapshots(&mut m, x, valid, Some(&mut cb)).unwrap();
    let want = outcome(&t, &m);
    let epochs = t.history().len();
    assert_eq!(saved, (1..=epochs).collect::<Vec<_>>());
    drop((t, m));
    for &e in &saved {
        let ck = Checkpoint::load(&path(e)).unwrap();
        assert_eq!(ck.epochs_done(), Some(e));
        let (mut t, mut m) = M::resume(&ck);
        drop(ck);
        t.fit(&mut m, x, valid, None).unwrap();
        let got = outcome(&t, &m);
        assert!(got.params == want.params, "{name}: parameters differ after resuming at epoch {e}");
        assert_eq!(got.history, want.history, "{name}: history differs after resuming at epoch {e}");
        assert!(got.file == want.file, "{name}: model file differs after resuming at epoch {e}");
    }
    // Interrupted for real: cancelled by the callback just after the checkpoint of epoch k.
    let k = (epochs / 2).max(1);
    let mut t = Trainer::new(c).unwrap();
    let mut m = make();
    let cut = dir.join("cut.ck");
    let mut stop = |p: &Progress, s: &Snapshot<M>| {
        if p.event == Event::EpochEnd && p.epoch + 1 == k {
            s.save(&cut).unwrap();
            return false;
        }
        true
    };
    let r = t.fit_snapshots(&mut m, x, valid, Some(&mut stop));
    assert_eq!(r, Err(Error::Cancelled), "{name}");
    drop((t, m));
    let (mut t, mut m) = M::resume(&Checkpoint::load(&cut).unwrap());
    t.fit(&mut m, x, valid, None).unwrap();
    let got = outcome(&t, &m);
    assert!(got.params == want.params && got.history == want.history && got.file == want.file, "{name}: cancelled");
    std::fs::remove_dir_all(&dir).unwrap();
    epochs
}

fn base(threads: usize) -> TrainConfig {
    TrainConfig { epochs: 8, batch_size: 256, learning_rate: 0.01, seed: 5, threads, ..TrainConfig::default() }
}

/// Adam with warm-up and a cosine schedule, early stopping on a seeded validation split.
#[test]
fn adam_with_a_schedule_and_early_stopping_resumes_bit_identically() {
    let x = data(1, ROWS);
    for threads in [1, 2] {
        let c = TrainConfig {
            epochs: 30,
            learning_rate: 0.1,
            schedule: Schedule { lr: LrSchedule::Cosine { min_lr: 0.001 }, warmup_steps: 5, ..Schedule::default() },
            validation_fraction: 0.25,
            early_stopping_patience: 2,
            ..base(threads)
        };
        let make =
            || Network::new(NetworkSpec { seed: 2, ..NetworkSpec::new(COLS, &[64], Activation::Relu, 16) }).unwrap();
        let epochs = straight_and_resumed(&format!("adam-{threads}"), make, c, &x, None);
        // Measured: early stopping ends the fit after 13 of the 30 epochs on 1 and 2 threads,
        // so the checkpoints include one taken at the stopping epoch.
        println!("adam, {threads} threads: {epochs} epochs");
        assert!(epochs < 30, "early stopping did not stop ({epochs} epochs): the test no longer covers it");
    }
}

/// A denoising autoencoder (masking noise, Gaussian stochastic hidden units) trained with SGD,
/// Nesterov momentum under a momentum schedule, a step schedule, weight decay, clipping, and
/// its first layer frozen for 3 epochs (a count the model file does not keep).
#[test]
fn denoising_network_with_sgd_and_frozen_layers_resumes_bit_identically() {
    let x = data(2, ROWS);
    for threads in [1, 2] {
        let mut c = base(threads);
        c.learning_rate = 0.05;
        c.optimizer.kind = OptimizerKind::Sgd;
        c.optimizer.nesterov = true;
        c.optimizer.weight_decay = 1e-4;
        c.grad_clip_norm = 5.0;
        c.schedule = Schedule {
            lr: LrSchedule::Step { every_epochs: 3, gamma: 0.5 },
            momentum_initial: 0.5,
            momentum_switch_epoch: 2,
            ..Schedule::default()
        };
        let make = || {
            let mut spec = NetworkSpec { seed: 4, ..NetworkSpec::new(COLS, &[24], Activation::Sigmoid, 8) };
            spec.regularization.corruption = Corruption::Masking { level: 0.3 };
            spec.encoder[0] = LayerSpec::new(24, Activation::Sigmoid).with(Stochastic::Gaussian { sigma: 0.1 });
            let mut n = Network::new(spec).unwrap();
            n.freeze(0..1, Some(3)).unwrap();
            n
        };
        assert_eq!(straight_and_resumed(&format!("denoising-{threads}"), make, c, &x, None), 8);
    }
}

/// A classifier (AdamW, exponential decay) with a given validation set and early stopping.
#[test]
fn classifier_resumes_bit_identically() {
    let x = labelled(&data(3, ROWS));
    let v = labelled(&data(4, 256));
    for threads in [1, 2] {
        let mut c = base(threads);
        c.optimizer.kind = OptimizerKind::AdamW;
        c.optimizer.weight_decay = 0.01;
        c.schedule.lr = LrSchedule::Exponential { gamma: 0.9 };
        c.early_stopping_patience = 3;
        let make = || {
            let spec = NetworkSpec::classifier(COLS, &[LayerSpec::new(16, Activation::Relu)], 3).unwrap();
            Network::new(NetworkSpec { seed: 6, ..spec }).unwrap()
        };
        straight_and_resumed(&format!("classifier-{threads}"), make, c, &x, Some(&v));
    }
}

/// A VAE: reparameterisation noise, KL warm-up (its clock is in the model file), Adam.
#[test]
fn vae_resumes_bit_identically() {
    let x = data(5, ROWS);
    for threads in [1, 2] {
        let make = || {
            let spec =
                VaeSpec { kl_warmup_steps: 10, seed: 8, ..VaeSpec::new(COLS, &[24], 4, &[24], Activation::Relu) };
            Vae::new(spec).unwrap()
        };
        assert_eq!(straight_and_resumed(&format!("vae-{threads}"), make, base(threads), &x, None), 8);
    }
}

fn small_fit_checkpoint(dir: &Path) -> (PathBuf, Matrix) {
    let x = data(6, 512);
    let mut net = Network::new(NetworkSpec::new(COLS, &[16], Activation::Relu, 4)).unwrap();
    let mut t = Trainer::new(TrainConfig { epochs: 4, ..base(1) }).unwrap();
    let path = dir.join("fit.ck");
    let mut cb = |p: &Progress, s: &Snapshot<Network>| {
        if p.event == Event::EpochEnd && p.epoch == 1 {
            s.save(&path).unwrap();
        }
        true
    };
    t.fit_snapshots(&mut net, &x, None, Some(&mut cb)).unwrap();
    (path, x)
}

#[test]
fn corrupted_and_truncated_checkpoints_are_bad_format() {
    let dir = scratch("corrupt");
    let (path, _) = small_fit_checkpoint(&dir);
    let good = std::fs::read(&path).unwrap();
    Checkpoint::from_bytes(&good).unwrap();
    let is_bad = |b: &[u8], what: &str| match Checkpoint::from_bytes(b) {
        Err(Error::BadFormat(m)) => m,
        other => panic!("{what}: {:?}", other.map(|_| ())),
    };
    // Every truncation, and a flipped bit anywhere (the CRC covers the whole file).
    for n in [0, 4, 8, 20, 39, good.len() / 2, good.len() - 5, good.len() - 1] {
        is_bad(&good[..n], &format!("truncated to {n}"));
    }
    for at in (0..good.len()).step_by(97).chain([good.len() - 1]) {
        let mut b = good.clone();
        b[at] ^= 0x10;
        is_bad(&b, &format!("bit flipped at {at}"));
    }
    assert!(is_bad(b"LATENT\0\0rest of a model file....................", "model").contains("bad magic"));
    let mut newer = good.clone();
    newer[8] = 2;
    let n = newer.len() - 4;
    let crc = latent::data::crc32::crc32(&newer[..n]);
    newer[n..].copy_from_slice(&crc.to_le_bytes());
    assert!(is_bad(&newer, "newer").contains("newer latent"));
    // A model file is not a checkpoint, nor the reverse.
    let model = Checkpoint::from_bytes(&good).unwrap().model_bytes().to_vec();
    assert!(is_bad(&model, "model file").contains("bad magic"));
    assert!(matches!(latent::model_file::from_bytes(&good), Err(Error::BadFormat(_))));
    // A VAE resumed from a network's checkpoint.
    assert!(
        matches!(Checkpoint::from_bytes(&good).unwrap().resume_vae(), Err(Error::BadFormat(m)) if m.contains("wrong kind"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_save_leaves_nothing_behind() {
    let dir = scratch("failed-save");
    let (path, x) = small_fit_checkpoint(&dir);
    let before = std::fs::read(&path).unwrap();
    let listing = || {
        let mut v: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let files = listing();
    // A directory where the file should go, and a directory that does not exist: the fit fails
    // with an I/O error at its first checkpoint, and nothing is left half-written.
    std::fs::create_dir(dir.join("taken")).unwrap();
    for target in [dir.join("taken"), dir.join("missing/fit.ck")] {
        let mut net = Network::new(NetworkSpec::new(COLS, &[16], Activation::Relu, 4)).unwrap();
        let mut t = Trainer::new(TrainConfig { epochs: 4, ..base(1) }).unwrap();
        t.set_checkpoints(Some(target.clone()), 1).unwrap();
        let r = t.fit(&mut net, &x, None, None);
        assert!(matches!(r, Err(Error::Io(_))), "{target:?}: {r:?}");
        assert!(std::fs::metadata(&target).is_ok_and(|m| m.is_dir()) || !target.exists());
    }
    let mut after = files.clone();
    after.push("taken".into());
    after.sort();
    assert_eq!(listing(), after, "a temporary file was left behind");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resuming_on_other_rows_is_refused() {
    let dir = scratch("other-rows");
    let (path, x) = small_fit_checkpoint(&dir);
    let (mut t, mut net) = Checkpoint::load(&path).unwrap().resume_network().unwrap();
    let mut y = x.clone();
    y.as_mut_slice()[5] += 0.25;
    let r = t.fit(&mut net, &y, None, None);
    assert!(matches!(&r, Err(Error::InvalidArgument(m)) if m.contains("differ")), "{r:?}");
    // Still pending: the right rows then resume.
    assert_eq!(t.resume_epoch(), Some(2));
    t.fit(&mut net, &x, None, None).unwrap();
    assert_eq!(t.history().len(), 4);
    assert_eq!(t.resume_epoch(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_after_a_minibatch_is_refused() {
    let x = data(7, 512);
    let mut net = Network::new(NetworkSpec::new(COLS, &[16], Activation::Relu, 4)).unwrap();
    let mut t = Trainer::new(TrainConfig { epochs: 1, progress_every: 1, ..base(1) }).unwrap();
    let (mut batch, mut end) = (0, 0);
    let mut cb = |p: &Progress, s: &Snapshot<Network>| {
        match p.event {
            Event::Batch => {
                assert!(!s.can_checkpoint());
                assert!(matches!(s.to_bytes(), Err(Error::InvalidArgument(m)) if m.contains("epoch end")));
                batch += 1;
            }
            Event::EpochEnd => {
                assert!(s.to_bytes().is_ok());
                end += 1;
            }
        }
        true
    };
    t.fit_snapshots(&mut net, &x, None, Some(&mut cb)).unwrap();
    assert_eq!((batch, end), (2, 1));
}

/// Periodic checkpoints: a fit stopped after epoch 5 with checkpoints every 2 epochs resumes
/// from epoch 4, goes on checkpointing to the same file, and ends as the straight fit.
#[test]
fn periodic_checkpoints_resume_and_keep_checkpointing() {
    let dir = scratch("periodic");
    let x = data(8, ROWS);
    let path = dir.join("run.ck");
    let make = || Network::new(NetworkSpec { seed: 9, ..NetworkSpec::new(COLS, &[24], Activation::Relu, 8) }).unwrap();
    let mut t = Trainer::new(base(2)).unwrap();
    let mut want = make();
    t.fit(&mut want, &x, None, None).unwrap();
    let want_history = history_bits(&t);

    let mut t = Trainer::new(base(2)).unwrap();
    t.set_checkpoints(Some(path.clone()), 2).unwrap();
    let mut net = make();
    let mut stop = |p: &latent::Progress| p.epoch < 4;
    assert_eq!(t.fit(&mut net, &x, None, Some(&mut stop)), Err(Error::Cancelled));
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.epochs_done(), Some(4));
    let (mut t, mut net) = ck.resume_network().unwrap();
    assert_eq!(t.checkpoints(), Some((path.as_path(), 2)));
    t.fit(&mut net, &x, None, None).unwrap();
    assert!(net.params() == want.params());
    assert_eq!(history_bits(&t), want_history);
    // The resumed fit wrote epochs 6 and 8: the file now holds the finished fit.
    let done = Checkpoint::load(&path).unwrap();
    assert_eq!(done.epochs_done(), Some(8));
    assert!(done.model_bytes() == latent::model_file::to_bytes(&net).as_slice());
    // Between fits: the trainer's own checkpoint resumes as its next fit would start.
    let between = dir.join("between.ck");
    t.checkpoint(&net, &between).unwrap();
    let (mut t2, mut net2) = Checkpoint::load(&between).unwrap().resume_network().unwrap();
    assert_eq!(t2.resume_epoch(), None);
    t.fit(&mut net, &x, None, None).unwrap();
    t2.fit(&mut net2, &x, None, None).unwrap();
    assert!(net.params() == net2.params());
    assert_eq!(history_bits(&t), history_bits(&t2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// tests/c/resume.c across processes, on 1 and 2 threads: a fit stopped by its progress
/// callback after epoch 5 (with periodic checkpoints every 2 epochs and one more taken from the
/// callback at epoch 3) is resumed in new processes from each checkpoint, and every resumed
/// fit writes the model file and history of the straight fit, byte for byte.
#[test]
fn c_program_resumes_in_a_second_process_bit_identically() {
    use std::process::Command;
    let dir = common::scratch("resume_c");
    let exe = dir.join("resume");
    common::compile_c(&[common::root().join("tests/c/resume.c")], &exe, &[]);
    for threads in ["1", "2"] {
        let run = |args: &[&str]| {
            let (code, out, err) = common::run(Command::new(&exe).args(args));
            assert_eq!(code, 0, "resume {args:?} failed:\n{out}\n{err}");
            out
        };
        let d = dir.join(format!("t{threads}"));
        std::fs::create_dir_all(&d).unwrap();
        let ds = d.to_str().unwrap();
        println!("{}", run(&["straight", ds, threads]));
        println!("{}", run(&["part", ds, threads]));
        // The periodic file holds epoch 4 (the fit stopped after 5), the callback's epoch 3.
        assert_eq!(Checkpoint::load(&d.join("periodic.ck")).unwrap().epochs_done(), Some(4));
        assert_eq!(Checkpoint::load(&d.join("cb.ck")).unwrap().epochs_done(), Some(3));
        for ck in ["periodic", "cb"] {
            let ckp = d.join(format!("{ck}.ck"));
            println!("{}", run(&["continue", ds, ckp.to_str().unwrap(), ck]));
            for ext in ["latent", "history"] {
                let want = std::fs::read(d.join(format!("straight.{ext}"))).unwrap();
                let got = std::fs::read(d.join(format!("{ck}.{ext}"))).unwrap();
                assert!(want == got, "{threads} threads: {ck}.{ext} differs from the straight fit's");
            }
        }
        println!("{}", run(&["bad", ds]));
    }
}
