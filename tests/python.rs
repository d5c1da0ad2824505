//! The Python package (python/, ctypes over liblatent) passes its own test suite against the
//! library built for these tests: training on the digits, NumPy layouts, errors, callbacks,
//! the header self-check, and a model saved from Python read back by a C program.

mod common;

use std::process::Command;

use common::*;

#[test]
fn python_package_test_suite_passes() {
    if !have("python3") {
        skip("python3", "install Python 3 to test the Python package");
        return;
    }
    let probe = Command::new("python3").args(["-c", "import numpy, pytest"]).output().expect("run python3");
    if !probe.status.success() {
        skip("numpy and pytest for python3", "pip install numpy pytest");
        return;
    }
    let lib = lib_dir().join(if cfg!(target_os = "macos") { "liblatent.dylib" } else { "liblatent.so" });
    assert!(lib.exists(), "{} was not built", lib.display());
    let (code, out, err) = run(Command::new("python3")
        .current_dir(root())
        .args(["-m", "pytest", "python/tests", "-q", "-p", "no:cacheprovider"])
        .env("LATENT_LIBRARY", &lib)
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    assert_eq!(code, 0, "the Python test suite failed:\n{out}\n{err}");
    assert!(out.contains("passed"), "{out}");
    eprintln!("{}", out.lines().last().unwrap_or(""));
}
