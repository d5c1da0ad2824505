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

/// `pip install ./python` gives a working `import latent` with no LATENT_LIBRARY: the wheel
/// bundles the checkout's liblatent (issue 18, item 5). Offline: the build backend needs nothing.
#[test]
fn pip_install_gives_a_working_import_without_latent_library() {
    if !have("python3")
        || !Command::new("python3").args(["-c", "import numpy, pip"]).output().is_ok_and(|o| o.status.success())
    {
        skip("python3 with numpy and pip", "install python3-numpy and python3-pip");
        return;
    }
    let dir = scratch("pip_install");
    let site = dir.join("site");
    let (code, out, err) = run(Command::new("python3")
        .current_dir(root())
        .args(["-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target"])
        .arg(&site)
        .arg("./python")
        .env("LATENT_PIP_NO_BUILD", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"));
    assert_eq!(code, 0, "pip install ./python failed:\n{out}\n{err}");
    let script = "import numpy as np, latent\n\
                  net = latent.Network(input_dim=4, code=2)\n\
                  print(latent.library_path)\n\
                  print(net.encode(np.zeros((3, 4), np.float32)).shape)\n";
    let (code, out, err) = run(Command::new("python3")
        .current_dir(&dir)
        .args(["-c", script])
        .env_remove("LATENT_LIBRARY")
        .env("PYTHONPATH", &site)
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    assert_eq!(code, 0, "import latent from the installed package failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(site.join("latent").to_str().unwrap()), "loaded {} instead", lines[0]);
    assert_eq!(lines[1], "(3, 2)");
}
