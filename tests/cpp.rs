//! The C++17 layer include/latent.hpp: the C++ quickstart (c_examples/cpp/quickstart.cpp) and a
//! behaviour program (tests/cpp/api.cpp) compile with -std=c++17 -Wall -Wextra -Werror -pedantic
//! against the build tree's library and run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

pub const CXXFLAGS: &[&str] = &["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic"];

/// Compiles one C++ source against include/ and the shared library in lib_dir(); None after
/// reporting a skip when there is no C++ compiler.
fn compile_cpp(source: &Path, out: &Path) -> Option<()> {
    if !have("c++") {
        skip("a C++ compiler (c++)", "install g++ or clang++");
        return None;
    }
    let lib = lib_dir();
    let o = Command::new("c++")
        .args(CXXFLAGS)
        .arg(format!("-I{}", root().join("include").display()))
        .arg(source)
        .arg("-o")
        .arg(out)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-llatent", "-lm", "-lpthread"])
        .output()
        .expect("run c++");
    assert!(
        o.status.success(),
        "compiling {} failed:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Some(())
}

#[test]
fn cpp_quickstart_trains_saves_and_reloads_identically() {
    let dir = scratch("cpp_quickstart");
    let exe = dir.join("quickstart_cpp");
    if compile_cpp(&root().join("c_examples/cpp/quickstart.cpp"), &exe).is_none() {
        return;
    }
    let digits: Option<PathBuf> = data_dir("digits").map(|d| d.join("digits.csv.gz"));
    let model = dir.join("q.latent");
    let mut cmd = Command::new(&exe);
    match &digits {
        Some(csv) => cmd.arg(csv),
        None => cmd.arg(""),
    };
    let (code, out, err) = run(cmd.arg("30").arg(&model));
    assert_eq!(code, 0, "quickstart_cpp failed:\n{out}\n{err}");
    assert!(out.contains("epoch  30/30"), "{out}");
    assert!(out.contains("reloaded model gives identical codes"), "{out}");
    if digits.is_some() {
        assert!(out.contains("1438 training rows, 359 test rows, 64 columns"), "{out}");
    }
    let line = out.lines().find(|l| l.starts_with("test squared error per pixel")).expect("error line");
    let nums: Vec<f64> = line.split([' ', ',']).filter_map(|s| s.parse().ok()).collect();
    let (before, after) = (nums[0], nums[1]);
    assert!(after < 0.5 * before, "training did not halve the test error: {line}");
    assert!(model.exists());
}

#[test]
fn cpp_layer_throws_propagates_and_moves() {
    let dir = scratch("cpp_api");
    let exe = dir.join("api");
    if compile_cpp(&root().join("tests/cpp/api.cpp"), &exe).is_none() {
        return;
    }
    let (code, out, err) = run(&mut Command::new(&exe));
    assert_eq!(code, 0, "tests/cpp/api.cpp failed:\n{out}\n{err}");
    assert!(out.contains("all C++ checks passed"), "{out}");
    assert!(out.contains("callback exception propagated after 3 epochs"), "{out}");
    assert!(out.contains("moved-from owners are empty"), "{out}");
}
