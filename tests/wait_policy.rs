//! The pools' wait policy (src/wait_policy.rs): training is bit-identical under every policy,
//! more threads than cores finish under every policy, the C calls answer with the documented
//! statuses, and the environment variables set the default.
//!
//!   cargo test --release --test wait_policy -- --test-threads=1

use std::sync::Mutex;
use std::time::Duration;

use latent::ffi::*;
use latent::pool::{WaitPolicy, set_wait_policy, wait_policy};
use latent::rng::Rng;
use latent::wait_policy::{DEFAULT_POLICY, MAX_SPIN};
use latent::{
    Activation, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer, Vae, VaeSpec,
};

/// The policy is process-wide: tests that set it take turns.
static POLICY_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    POLICY_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const POLICIES: [WaitPolicy; 5] = [
    WaitPolicy::Spin,
    WaitPolicy::SpinThenPark(Duration::from_micros(100)),
    // Parks after the first idle check: the most hand-offs through the pool's sleep.
    WaitPolicy::SpinThenPark(Duration::ZERO),
    WaitPolicy::SpinThenPark(Duration::from_micros(5)),
    WaitPolicy::Park,
];

fn data(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 9);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform()).collect()).unwrap()
}

fn config(batch: usize, threads: usize) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: batch,
        learning_rate: 1e-3,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        seed: 5,
        threads,
        ..Default::default()
    }
}

/// Parameters after training an autoencoder (rows x 64, code 16) under `policy`.
fn train_ae(policy: WaitPolicy, batch: usize, threads: usize) -> Vec<f32> {
    set_wait_policy(policy).unwrap();
    let x = data(2048, 64, 11);
    let mut spec = NetworkSpec::new(64, &[48], Activation::Elu, 16);
    spec.seed = 3;
    let mut net = Network::new(spec).unwrap();
    Trainer::new(config(batch, threads)).unwrap().fit(&mut net, &x, None, None).unwrap();
    net.params().to_vec()
}

/// Parameters after training a VAE (its sampling noise keyed by the step) under `policy`.
fn train_vae(policy: WaitPolicy, threads: usize) -> Vec<f32> {
    set_wait_policy(policy).unwrap();
    let x = data(2048, 64, 12);
    let mut spec = VaeSpec::new(64, &[48], 8, &[48], Activation::Relu);
    spec.seed = 4;
    let mut vae = Vae::new(spec).unwrap();
    Trainer::new(config(256, threads)).unwrap().fit(&mut vae, &x, None, None).unwrap();
    vae.params().to_vec()
}

/// Same seed and thread count: the same parameters, bit for bit, whatever the policy. 2 threads
/// (products split between the threads at batch 128; one data-parallel shard per thread at batch
/// 1024), and 8 threads on this 2-core machine, where every worker but two waits on a core that
/// another one holds: under Spin each spinner yields its core every 64 idle rounds, under the
/// others it parks, and either way the fit completes (a hang here fails by the test's timeout).
#[test]
fn every_policy_trains_bit_identically() {
    let _g = lock();
    let before = wait_policy();
    for threads in [2, 8] {
        for batch in [128, 1024] {
            let reference = train_ae(POLICIES[0], batch, threads);
            assert!(reference.iter().all(|v| v.is_finite()));
            for p in &POLICIES[1..] {
                let got = train_ae(*p, batch, threads);
                let differing = reference.iter().zip(&got).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(
                    differing, 0,
                    "autoencoder, batch {batch}, {threads} threads, {p:?}: {differing} parameters differ from Spin"
                );
            }
        }
        let reference = train_vae(POLICIES[0], threads);
        for p in &POLICIES[1..] {
            let got = train_vae(*p, threads);
            assert!(
                reference.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                "VAE, {threads} threads, {p:?}: parameters differ from Spin"
            );
        }
    }
    set_wait_policy(before).unwrap();
}

#[test]
fn set_and_get_round_trip_and_long_budgets_are_refused() {
    let _g = lock();
    let before = wait_policy();
    for p in POLICIES {
        set_wait_policy(p).unwrap();
        assert_eq!(wait_policy(), p);
    }
    set_wait_policy(WaitPolicy::SpinThenPark(MAX_SPIN)).unwrap();
    let too_long = set_wait_policy(WaitPolicy::SpinThenPark(MAX_SPIN + Duration::from_micros(1)));
    assert!(matches!(too_long, Err(latent::Error::InvalidArgument(_))), "{too_long:?}");
    assert_eq!(wait_policy(), WaitPolicy::SpinThenPark(MAX_SPIN), "a refused setting changed the policy");
    set_wait_policy(before).unwrap();
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string owned by this thread's error slot.
    unsafe { std::ffi::CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

#[test]
fn c_calls_answer_with_their_statuses() {
    let _g = lock();
    let before = wait_policy();
    for (code, want) in [
        (LATENT_WAIT_POLICY_SPIN, LATENT_WAIT_POLICY_SPIN),
        (LATENT_WAIT_POLICY_PARK, LATENT_WAIT_POLICY_PARK),
        (LATENT_WAIT_POLICY_SPIN_THEN_PARK, LATENT_WAIT_POLICY_SPIN_THEN_PARK),
    ] {
        assert_eq!(latent_set_wait_policy(code), LATENT_STATUS_OK);
        let mut got = -1;
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { latent_get_wait_policy(&mut got) }, LATENT_STATUS_OK);
        assert_eq!(got, want);
    }
    // The C call's spin-then-park takes the environment's budget (unset here: the default).
    assert_eq!(wait_policy(), WaitPolicy::SpinThenPark(latent::wait_policy::env_spin()));
    for bad in [3, -1, i32::MAX, i32::MIN] {
        assert_eq!(latent_set_wait_policy(bad), LATENT_STATUS_INVALID_ARGUMENT, "{bad}");
        let msg = last_error();
        assert!(msg.contains("wait policy") && msg.contains(&bad.to_string()), "{msg}");
        let mut got = -1;
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { latent_get_wait_policy(&mut got) }, LATENT_STATUS_OK);
        assert_eq!(got, LATENT_WAIT_POLICY_SPIN_THEN_PARK, "a refused code changed the policy");
    }
    // SAFETY: NULL is what is being tested.
    assert_eq!(unsafe { latent_get_wait_policy(std::ptr::null_mut()) }, LATENT_STATUS_NULL_ARGUMENT);
    assert!(last_error().contains("policy"));
    set_wait_policy(before).unwrap();
}

/// Run in a child process by `the_environment_sets_the_default`: checks the policy the
/// environment gave against WAIT_TEST_EXPECT (nothing to do when that is unset).
#[test]
fn environment_child() {
    let Ok(expect) = std::env::var("WAIT_TEST_EXPECT") else { return };
    assert_eq!(format!("{:?}", wait_policy()), expect);
    let mut got = -1;
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { latent_get_wait_policy(&mut got) }, LATENT_STATUS_OK);
    let code = match wait_policy() {
        WaitPolicy::Spin => LATENT_WAIT_POLICY_SPIN,
        WaitPolicy::SpinThenPark(_) => LATENT_WAIT_POLICY_SPIN_THEN_PARK,
        WaitPolicy::Park => LATENT_WAIT_POLICY_PARK,
    };
    assert_eq!(got, code);
}

/// LATENT_WAIT_POLICY and LATENT_WAIT_SPIN_US, read at the first use in a fresh process: names,
/// OpenMP's aliases, a budget, and values that do not parse (ignored: the default holds).
#[test]
fn the_environment_sets_the_default() {
    let default = format!("{DEFAULT_POLICY:?}");
    let cases: [(Option<&str>, Option<&str>, String); 8] = [
        (None, None, default.clone()),
        (Some("spin"), None, format!("{:?}", WaitPolicy::Spin)),
        (Some(" ACTIVE "), None, format!("{:?}", WaitPolicy::Spin)),
        (Some("passive"), Some("junk"), format!("{:?}", WaitPolicy::Park)),
        (Some("park"), None, format!("{:?}", WaitPolicy::Park)),
        (Some("spin-then-park"), Some("250"), format!("{:?}", WaitPolicy::SpinThenPark(Duration::from_micros(250)))),
        (Some("turbo"), None, default.clone()),
        (
            Some("spin-then-park"),
            Some("99999999"),
            format!("{:?}", latent::wait_policy::from_env_values(Some("spin-then-park"), None)),
        ),
    ];
    let exe = std::env::current_exe().unwrap();
    for (policy, spin, expect) in cases {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--exact", "environment_child", "--test-threads=1"]).env("WAIT_TEST_EXPECT", &expect);
        cmd.env_remove("LATENT_WAIT_POLICY").env_remove("LATENT_WAIT_SPIN_US");
        if let Some(p) = policy {
            cmd.env("LATENT_WAIT_POLICY", p);
        }
        if let Some(s) = spin {
            cmd.env("LATENT_WAIT_SPIN_US", s);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "LATENT_WAIT_POLICY={policy:?} LATENT_WAIT_SPIN_US={spin:?}: expected {expect}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
