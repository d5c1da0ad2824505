//! Helpers shared by the integration tests: the data resolver's skip rule, and building and
//! running C programs against the library.
#![allow(dead_code)]

pub mod r_package;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// CI sets LATENT_REQUIRE_DATA=1: then a missing data set or tool fails the test instead of
/// skipping it, so CI checks everything while a newcomer's clone still passes.
pub fn skip(what: &str, how: &str) {
    if std::env::var("LATENT_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{what} is required (LATENT_REQUIRE_DATA=1) but missing: {how}");
    }
    eprintln!("SKIPPED: {what} not found: {how}");
}

/// The directory of a data set through the library's resolver, or None after reporting a skip
/// (a panic under LATENT_REQUIRE_DATA=1).
pub fn data_dir(name: &str) -> Option<PathBuf> {
    latent::data::resolve::find_or_skip(name)
}

/// The train and test images of an IDX data set ("mnist", "fashion-mnist") through the data
/// resolver, scaled by 1/255, without labels; None after reporting a skip (see [`data_dir`]).
pub fn idx_images(name: &str) -> Option<(latent::data::Dataset, latent::data::Dataset)> {
    let dir = data_dir(name)?;
    let load = |file: &str| {
        let mut d = latent::data::Dataset::from_idx(dir.join(file), None).unwrap();
        d.scale(latent::data::Scaling::Divide255).unwrap();
        d
    };
    Some((load("train-images-idx3-ubyte.gz"), load("t10k-images-idx3-ubyte.gz")))
}

pub fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// target/release (or debug) holding liblatent.so and liblatent.a, built once per test binary:
/// `cargo test` builds only the rlib.
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(root()).args(["build", "--lib"]);
        if release {
            cmd.arg("--release");
        }
        let target_dir = profile_dir.parent().unwrap();
        cmd.env("CARGO_TARGET_DIR", target_dir);
        let st = cmd.status().expect("run cargo build --lib");
        assert!(st.success(), "cargo build --lib failed");
        profile_dir
    })
}

pub const CFLAGS: &[&str] = &["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-pedantic", "-Werror"];

/// Compiles C sources into `out` against include/latent.h and the shared library.
pub fn compile_c(sources: &[PathBuf], out: &Path, extra: &[&str]) {
    let lib = lib_dir();
    let mut cmd = Command::new("cc");
    cmd.args(CFLAGS)
        .arg(format!("-I{}", root().join("include").display()))
        .arg(format!("-I{}", root().join("c_examples").display()))
        .args(sources)
        .arg("-o")
        .arg(out)
        .args(extra)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-llatent", "-lm", "-lpthread"]);
    let o = cmd.output().expect("run cc");
    assert!(
        o.status.success(),
        "compiling {sources:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A fresh directory under target/ for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let d = root().join("target").join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a program and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let o = cmd.env("RUST_BACKTRACE", "0").output().expect("run program");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A seed per run, so device tests see fresh random inputs every time; printed, and taken from
/// LATENT_TEST_SEED when set, so a failure can be replayed.
pub fn run_seed() -> u64 {
    let seed = std::env::var("LATENT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    println!("random inputs: LATENT_TEST_SEED={seed}");
    seed
}

/// A rows x cols matrix uniform in [lo, hi).
pub fn random_matrix(rows: usize, cols: usize, lo: f32, hi: f32, rng: &mut latent::rng::Rng) -> latent::Matrix {
    let v = (0..rows * cols).map(|_| lo + (hi - lo) * rng.uniform()).collect();
    latent::Matrix::from_vec(rows, cols, v).unwrap()
}

/// Supervised rows: the inputs, then a random class label or random targets.
pub fn with_targets(x: &latent::Matrix, task: latent::task::Task, rng: &mut latent::rng::Rng) -> latent::Matrix {
    let tw = task.target_width();
    let mut v = Vec::new();
    for r in 0..x.rows() {
        v.extend_from_slice(x.row(r));
        match task {
            latent::task::Task::Classify { classes } => {
                v.push((rng.uniform() * classes as f32).floor().min(classes as f32 - 1.0))
            }
            _ => (0..tw).for_each(|_| v.push(rng.normal())),
        }
    }
    latent::Matrix::from_vec(x.rows(), x.cols() + tw, v).unwrap()
}
