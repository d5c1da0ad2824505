//! Learning-rate and momentum schedules: exact rates at chosen steps, the trainer against a
//! hand-written reference loop and against training split into separate fits, the recorded
//! learning rates, and the C API's defaults and validation.
//!
//! The expected rates are written from the documented formulas (PyTorch's StepLR,
//! ExponentialLR, CosineAnnealingLR per step, linear warm-up (t + 1) / W), with powers of two
//! for the factors wherever the result must be exact.

use std::ffi::CStr;

use latent::ffi::*;
use latent::optim::{LrSchedule, Optimizer, OptimizerConfig, OptimizerKind, Schedule};
use latent::rng::Rng;
use latent::{Activation, Error, LayerSpec, Matrix, Network, NetworkSpec, TrainConfig, Trainer};

fn with_lr(lr: LrSchedule) -> Schedule {
    Schedule { lr, ..Default::default() }
}

/// `a` within one f32 ulp of the f64 value `r`.
fn assert_close(label: &str, a: f32, r: f64) {
    let ulp = (r as f32).abs() * f32::EPSILON;
    assert!((a as f64 - r).abs() <= ulp as f64, "{label}: {a:e} vs {r:e}");
}

// ---------------------------------------------------------------------------------------------
// The formulas

#[test]
fn the_default_schedule_changes_nothing() {
    let s = Schedule::default();
    assert_eq!(s.lr, LrSchedule::Constant);
    for t in 0..100 {
        assert_eq!(s.lr_at(0.013, t, 7, 10), 0.013);
    }
    for e in 0..10 {
        assert_eq!(s.momentum_at(e, 0.9), 0.9);
    }
}

#[test]
fn step_schedule_decays_at_its_epoch_boundaries() {
    let s = with_lr(LrSchedule::Step { every_epochs: 3, gamma: 0.5 });
    let lr = 0.08f32;
    // 4 steps per epoch: epochs 0-2 are steps 0..12, epochs 3-5 steps 12..24, epoch 6 from 24.
    for t in 0..12 {
        assert_eq!(s.lr_at(lr, t, 4, 10), lr, "step {t}");
    }
    for t in 12..24 {
        assert_eq!(s.lr_at(lr, t, 4, 10), lr / 2.0, "step {t}");
    }
    assert_eq!(s.lr_at(lr, 24, 4, 10), lr / 4.0);
    assert_eq!(s.lr_at(lr, 39, 4, 10), lr / 8.0);
    let tenth = with_lr(LrSchedule::Step { every_epochs: 1, gamma: 0.1 });
    assert_close("gamma 0.1, epoch 2", tenth.lr_at(1.0, 2, 1, 5), 0.1f32 as f64 * 0.1f32 as f64);
}

#[test]
fn exponential_schedule_decays_every_epoch_and_holds_within_it() {
    let s = with_lr(LrSchedule::Exponential { gamma: 0.5 });
    let lr = 0.1f32;
    for (t, expected) in [(0, lr), (4, lr), (5, lr / 2.0), (9, lr / 2.0), (10, lr / 4.0), (27, lr / 32.0)] {
        assert_eq!(s.lr_at(lr, t, 5, 8), expected, "step {t}");
    }
    let s = with_lr(LrSchedule::Exponential { gamma: 0.9 });
    for e in 0..8 {
        assert_close(
            &format!("gamma 0.9, epoch {e}"),
            s.lr_at(lr, 5 * e, 5, 8),
            lr as f64 * (0.9f32 as f64).powi(e as i32),
        );
    }
}

#[test]
fn cosine_schedule_runs_per_step_from_lr_to_min_lr() {
    let (lr, min) = (0.1f32, 0.02f32);
    let s = with_lr(LrSchedule::Cosine { min_lr: min });
    // 5 steps per epoch, 4 epochs: T = 20.
    let at = |t| s.lr_at(lr, t, 5, 4);
    assert_eq!(at(0), lr, "first step");
    assert_eq!(at(10), ((lr as f64 + min as f64) / 2.0) as f32, "midpoint");
    assert_eq!(at(20), min, "t = T");
    assert_eq!(at(25), min, "beyond the run");
    let quarter = min as f64 + (lr - min) as f64 * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0;
    assert_close("quarter", at(5), quarter);
    // Per step, not per epoch: it falls within an epoch, strictly, and stays above min_lr.
    assert!((0..20).all(|t| at(t + 1) < at(t)), "{:?}", (0..=20).map(at).collect::<Vec<_>>());
    assert!(at(19) > min);
    // min_lr 0 ends at 0.
    assert_eq!(with_lr(LrSchedule::Cosine { min_lr: 0.0 }).lr_at(lr, 20, 5, 4), 0.0);
}

#[test]
fn warm_up_ramps_linearly_on_the_schedule_clock() {
    let lr = 0.1f32;
    let s = Schedule { warmup_steps: 4, ..Default::default() };
    let expected = [lr / 4.0, lr / 2.0, (lr as f64 * 0.75) as f32, lr, lr, lr];
    for (t, &e) in expected.iter().enumerate() {
        assert_eq!(s.lr_at(lr, t, 3, 5), e, "step {t}");
    }
    // The step decay runs meanwhile: 2 steps per epoch, halved every epoch.
    let s = Schedule { warmup_steps: 4, ..with_lr(LrSchedule::Step { every_epochs: 1, gamma: 0.5 }) };
    let expected = [lr / 4.0, lr / 2.0, (lr as f64 * 0.5 * 0.75) as f32, lr / 2.0, lr / 4.0];
    for (t, &e) in expected.iter().enumerate() {
        assert_eq!(s.lr_at(lr, t, 2, 5), e, "step {t}");
    }
}

#[test]
fn momentum_switches_at_its_epoch() {
    let s = Schedule { momentum_initial: 0.5, momentum_switch_epoch: 5, ..Default::default() };
    let m: Vec<f32> = (0..8).map(|e| s.momentum_at(e, 0.9)).collect();
    assert_eq!(m, [0.5, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9, 0.9]);
}

#[test]
fn bad_schedules_are_rejected() {
    let sgd = OptimizerConfig { kind: OptimizerKind::Sgd, ..Default::default() };
    let base = TrainConfig { learning_rate: 0.1, optimizer: sgd, ..Default::default() };
    let bad = [
        with_lr(LrSchedule::Step { every_epochs: 0, gamma: 0.5 }),
        with_lr(LrSchedule::Step { every_epochs: 2, gamma: 0.0 }),
        with_lr(LrSchedule::Step { every_epochs: 2, gamma: 1.5 }),
        with_lr(LrSchedule::Exponential { gamma: f32::NAN }),
        with_lr(LrSchedule::Exponential { gamma: -0.5 }),
        with_lr(LrSchedule::Cosine { min_lr: -1e-3 }),
        with_lr(LrSchedule::Cosine { min_lr: 0.2 }),
        with_lr(LrSchedule::Cosine { min_lr: f32::INFINITY }),
        Schedule { momentum_initial: 1.5, ..Default::default() },
        Schedule { momentum_initial: f32::NAN, ..Default::default() },
    ];
    for s in bad {
        let r = Trainer::new(TrainConfig { schedule: s, ..base });
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{s:?} accepted");
    }
    let switch = Schedule { momentum_switch_epoch: 5, ..Default::default() };
    assert!(Trainer::new(TrainConfig { schedule: switch, ..base }).is_ok());
    for kind in [OptimizerKind::Adam, OptimizerKind::AdamW] {
        let cfg = TrainConfig { schedule: switch, optimizer: OptimizerConfig { kind, ..sgd }, ..base };
        let r = Trainer::new(cfg);
        assert!(matches!(&r, Err(Error::InvalidArgument(m)) if m.contains("SGD")), "{kind:?}: {:?}", r.err());
    }
    let edges = [
        with_lr(LrSchedule::Step { every_epochs: 1, gamma: 1.0 }),
        with_lr(LrSchedule::Cosine { min_lr: 0.1 }),
        Schedule { warmup_steps: 1, momentum_initial: 0.0, momentum_switch_epoch: 1, ..Default::default() },
    ];
    for s in edges {
        assert!(Trainer::new(TrainConfig { schedule: s, ..base }).is_ok(), "{s:?} rejected");
    }
}

// ---------------------------------------------------------------------------------------------
// The trainer

fn data(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 9);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform()).collect()).unwrap()
}

fn spec() -> NetworkSpec {
    let mut s = NetworkSpec::new(8, &[6], Activation::Tanh, 3);
    s.code = LayerSpec::new(3, Activation::Sigmoid);
    s.seed = 4;
    s
}

/// SGD, one thread, minibatches in order: 90 rows of batch 20 are 5 minibatches per epoch, the
/// last one partial.
fn sgd_config(epochs: usize, momentum: f32, schedule: Schedule) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 20,
        learning_rate: 0.05,
        optimizer: OptimizerConfig { kind: OptimizerKind::Sgd, momentum, ..Default::default() },
        schedule,
        threads: 1,
        shuffle: false,
        ..Default::default()
    }
}

fn fit(net: &mut Network, x: &Matrix, cfg: TrainConfig) -> Trainer {
    let mut t = Trainer::new(cfg).unwrap();
    t.fit(net, x, None, None).unwrap();
    t
}

fn trained(x: &Matrix, cfg: TrainConfig) -> Vec<f32> {
    let mut net = Network::new(spec()).unwrap();
    fit(&mut net, x, cfg);
    net.params().to_vec()
}

/// The trainer's parameters equal those of a loop written here that sets the rate and the
/// momentum of every step by hand: warm-up over 3 steps, halving every 2 epochs, momentum 0.5
/// in epoch 0 and 0.9 after, with the velocity carried across the switch.
#[test]
fn trainer_applies_the_schedule_at_every_step() {
    let x = data(90, 8, 1);
    let schedule = Schedule {
        lr: LrSchedule::Step { every_epochs: 2, gamma: 0.5 },
        warmup_steps: 3,
        momentum_initial: 0.5,
        momentum_switch_epoch: 1,
    };
    let cfg = sgd_config(4, 0.9, schedule);
    let got = trained(&x, cfg);

    let mut net = Network::new(spec()).unwrap();
    let mut opt = Optimizer::new(cfg.optimizer, net.param_count(), &net.weight_ranges()).unwrap();
    let mut ws = net.workspace(20).unwrap();
    let mut grads = vec![0f32; net.param_count()];
    let mut lrs = Vec::new();
    for epoch in 0..4 {
        opt.set_momentum(if epoch == 0 { 0.5 } else { 0.9 });
        for b in 0..5 {
            let t = epoch * 5 + b;
            let decay = if epoch < 2 { 1.0 } else { 0.5 };
            let warm = if t < 3 { (t + 1) as f64 / 3.0 } else { 1.0 };
            let lr = (0.05f32 as f64 * decay * warm) as f32;
            lrs.push(lr);
            let r = 20.min(90 - 20 * b);
            net.forward_backward(&x.as_slice()[20 * b * 8..][..r * 8], r, &mut ws, &mut grads, 1);
            let mut p = net.params().to_vec();
            opt.step(&mut p, &grads, lr, 1);
            net.set_params(&p).unwrap();
        }
    }
    assert!(got == net.params(), "the trainer's parameters differ from the hand-scheduled loop");
    assert_eq!((0..20).map(|t| cfg.schedule.lr_at(0.05, t, 5, 4)).collect::<Vec<_>>(), lrs);
    // Neither part of the schedule is a no-op.
    assert!(got != trained(&x, sgd_config(4, 0.9, Schedule { lr: LrSchedule::Constant, ..schedule })));
    assert!(got != trained(&x, sgd_config(4, 0.9, Schedule { momentum_switch_epoch: 0, ..schedule })));
}

/// A step schedule is the same as training with the first rate, then continuing with the decayed
/// one. Plain SGD keeps no state between steps, so two trainers (two fits) can be chained
/// exactly; with momentum the second trainer would start from zero velocity.
#[test]
fn step_schedule_equals_two_fits_with_the_decayed_rate() {
    let x = data(90, 8, 2);
    let scheduled = sgd_config(4, 0.0, with_lr(LrSchedule::Step { every_epochs: 2, gamma: 0.5 }));
    let got = trained(&x, scheduled);
    let mut net = Network::new(spec()).unwrap();
    fit(&mut net, &x, sgd_config(2, 0.0, Schedule::default()));
    fit(&mut net, &x, TrainConfig { learning_rate: 0.025, ..sgd_config(2, 0.0, Schedule::default()) });
    assert!(got == net.params(), "4 epochs halving at epoch 2 differ from 2 + 2 epochs at 0.05 then 0.025");
    assert!(got != trained(&x, sgd_config(4, 0.0, Schedule::default())), "the decay changed nothing");
}

/// With momentum 0.5 until epoch 1, the first epoch is that of a run with momentum 0.5; the
/// second then differs from staying at 0.5.
#[test]
fn momentum_switch_changes_the_second_epoch_only() {
    let x = data(90, 8, 3);
    let switch = Schedule { momentum_initial: 0.5, momentum_switch_epoch: 1, ..Default::default() };
    let one = trained(&x, sgd_config(1, 0.9, switch));
    assert!(one == trained(&x, sgd_config(1, 0.5, Schedule::default())), "epoch 0 did not use momentum 0.5");
    assert!(one != trained(&x, sgd_config(1, 0.9, Schedule::default())), "epoch 0 used momentum 0.9");
    let two = trained(&x, sgd_config(2, 0.9, switch));
    assert!(two != trained(&x, sgd_config(2, 0.5, Schedule::default())), "epoch 1 did not switch to 0.9");
    assert!(two != trained(&x, sgd_config(2, 0.9, Schedule::default())));
}

#[test]
fn history_records_each_epochs_last_learning_rate() {
    let x = data(90, 8, 4);
    let mut net = Network::new(spec()).unwrap();
    let cosine = sgd_config(3, 0.9, with_lr(LrSchedule::Cosine { min_lr: 0.0 }));
    let t = fit(&mut net, &x, cosine);
    let got: Vec<f64> = t.history().iter().map(|r| r.learning_rate).collect();
    // Last steps t = 4, 9, 14 of T = 15.
    let expected: Vec<f64> = [4.0, 9.0, 14.0]
        .iter()
        .map(|t: &f64| (0.05f32 as f64 * 0.5 * (1.0 + (std::f64::consts::PI * (t / 15.0)).cos())) as f32 as f64)
        .collect();
    assert_eq!(got, expected);
    let t = fit(&mut net, &x, sgd_config(2, 0.9, Schedule::default()));
    assert_eq!(t.history().iter().map(|r| r.learning_rate).collect::<Vec<_>>(), [0.05f32 as f64; 2]);
}

// ---------------------------------------------------------------------------------------------
// The C API

fn new_trainer(p: &latent_train_params) -> (latent_status, String) {
    let mut t = std::ptr::dangling_mut::<latent_trainer>();
    let st = unsafe { latent_trainer_new(p, &mut t) };
    let msg = unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned();
    if st == LATENT_STATUS_OK {
        unsafe { latent_trainer_free(t) };
    } else {
        assert!(t.is_null(), "a failed latent_trainer_new left *out set");
    }
    (st, msg)
}

#[test]
fn c_defaults_keep_the_constant_schedule() {
    let p = latent_train_params_default();
    assert_eq!(p.lr_schedule, LATENT_LR_SCHEDULE_CONSTANT);
    assert_eq!((p.warmup_steps, p.momentum_switch_epoch), (0, 0));
    assert_eq!((p.lr_step_epochs, p.lr_gamma, p.lr_min, p.momentum_initial), (10, 0.1, 0.0, 0.5));
    assert_eq!(new_trainer(&p).0, LATENT_STATUS_OK);
}

#[test]
fn c_rejects_bad_schedule_fields_with_invalid_argument() {
    let d = latent_train_params_default();
    let sgd = latent_train_params { optimizer: LATENT_OPTIMIZER_SGD, learning_rate: 0.1, ..d };
    let step = latent_train_params { lr_schedule: LATENT_LR_SCHEDULE_STEP, ..sgd };
    let cases = [
        ("lr_schedule 4", latent_train_params { lr_schedule: 4, ..sgd }, "lr_schedule"),
        ("lr_schedule -1", latent_train_params { lr_schedule: -1, ..sgd }, "lr_schedule"),
        ("STEP, lr_gamma 0", latent_train_params { lr_gamma: 0.0, ..step }, "gamma"),
        ("STEP, lr_gamma NaN", latent_train_params { lr_gamma: f64::NAN, ..step }, "lr_gamma"),
        ("STEP, lr_gamma 1.5", latent_train_params { lr_gamma: 1.5, ..step }, "gamma"),
        ("STEP, lr_step_epochs 0", latent_train_params { lr_step_epochs: 0, ..step }, "every_epochs"),
        (
            "EXPONENTIAL, lr_gamma -0.5",
            latent_train_params { lr_schedule: LATENT_LR_SCHEDULE_EXPONENTIAL, lr_gamma: -0.5, ..sgd },
            "gamma",
        ),
        (
            "COSINE, lr_min above learning_rate",
            latent_train_params { lr_schedule: LATENT_LR_SCHEDULE_COSINE, lr_min: 0.5, ..sgd },
            "min_lr",
        ),
        ("CONSTANT, lr_min NaN", latent_train_params { lr_min: f64::NAN, ..sgd }, "lr_min"),
        ("momentum_initial 2", latent_train_params { momentum_initial: 2.0, ..sgd }, "momentum_initial"),
        ("momentum switch with Adam", latent_train_params { momentum_switch_epoch: 5, ..d }, "SGD"),
    ];
    for (label, p, needle) in cases {
        let (st, msg) = new_trainer(&p);
        assert_eq!(st, LATENT_STATUS_INVALID_ARGUMENT, "{label}: {msg}");
        assert!(msg.contains(needle), "{label}: message {msg:?} does not name {needle:?}");
    }
    let good = [
        latent_train_params { lr_gamma: 1.0, lr_step_epochs: 1, ..step },
        latent_train_params { lr_schedule: LATENT_LR_SCHEDULE_COSINE, lr_min: 0.1, warmup_steps: 100, ..sgd },
        latent_train_params { momentum_initial: 0.5, momentum_switch_epoch: 5, ..sgd },
        // gamma 0 is out of range only where a schedule uses it.
        latent_train_params { lr_gamma: 0.0, ..sgd },
    ];
    for p in good {
        assert_eq!(new_trainer(&p), (LATENT_STATUS_OK, String::new()), "{p:?}");
    }
}

/// Through the C API: an exponential schedule's rates come back in the history.
#[test]
fn c_history_reports_the_scheduled_learning_rate() {
    let x = data(90, 8, 5);
    let enc = [6u32];
    let mut np = latent_network_params_default();
    (np.input_dim, np.n_encoder, np.encoder_units, np.code_units) = (8, 1, enc.as_ptr(), 3);
    let mut net = std::ptr::null_mut();
    assert_eq!(unsafe { latent_network_new(&np, &mut net) }, LATENT_STATUS_OK);
    let mut ds = std::ptr::null_mut();
    let st = unsafe {
        latent_dataset_from_buffer(
            x.as_slice().as_ptr().cast(),
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            90,
            8,
            &mut ds,
        )
    };
    assert_eq!(st, LATENT_STATUS_OK);
    let p = latent_train_params {
        epochs: 3,
        batch_size: 20,
        optimizer: LATENT_OPTIMIZER_SGD,
        learning_rate: 0.5,
        lr_schedule: LATENT_LR_SCHEDULE_EXPONENTIAL,
        lr_gamma: 0.5,
        threads: 1,
        ..latent_train_params_default()
    };
    let mut tr = std::ptr::null_mut();
    assert_eq!(unsafe { latent_trainer_new(&p, &mut tr) }, LATENT_STATUS_OK);
    let st = unsafe { latent_trainer_fit(tr, net, ds, std::ptr::null(), None, std::ptr::null_mut()) };
    assert_eq!(st, LATENT_STATUS_OK);
    let mut rec = [latent_epoch_record::default(); 3];
    let mut n = 0;
    assert_eq!(unsafe { latent_trainer_history(tr, rec.as_mut_ptr(), 3, &mut n) }, LATENT_STATUS_OK);
    assert_eq!(n, 3);
    assert_eq!(rec.map(|r| r.learning_rate), [0.5, 0.25, 0.125]);
    unsafe {
        latent_trainer_free(tr);
        latent_dataset_free(ds);
        latent_network_free(net);
    }
}
