//! Every C example and C test program compiles with -std=c99 -Wall -Wextra -pedantic -Werror
//! and runs; quickstart also runs under valgrind with no errors and no definite leaks.

mod common;

use std::process::Command;

use common::*;

#[test]
fn own_data_flags_the_planted_outliers() {
    let dir = scratch("own_data");
    let exe = dir.join("own_data");
    compile_c(&[root().join("c_examples/own_data.c")], &exe, &[]);
    let (code, out, err) = run(&mut Command::new(&exe));
    assert_eq!(code, 0, "own_data failed:\n{out}\n{err}");
    assert!(out.contains("of the 10 planted outliers"), "{out}");
}

#[test]
fn own_data_links_statically() {
    let lib = lib_dir();
    let dir = scratch("own_data_static");
    let exe = dir.join("own_data_static");
    let o = Command::new("cc")
        .args(CFLAGS)
        .arg(format!("-I{}", root().join("include").display()))
        .arg(root().join("c_examples/own_data.c"))
        .arg("-o")
        .arg(&exe)
        .arg(lib.join("liblatent.a"))
        .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"])
        .output()
        .unwrap();
    assert!(o.status.success(), "static link failed: {}", String::from_utf8_lossy(&o.stderr));
    let (code, out, err) = run(&mut Command::new(&exe));
    assert_eq!(code, 0, "{out}\n{err}");
}

fn quickstart(dir_name: &str) -> Option<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    let data = data_dir("fashion-mnist")?;
    let dir = scratch(dir_name);
    let exe = dir.join("quickstart");
    compile_c(&[root().join("c_examples/quickstart.c")], &exe, &[]);
    Some((exe, data, dir))
}

#[test]
fn quickstart_trains_saves_and_reloads_identically() {
    let Some((exe, data, dir)) = quickstart("quickstart") else { return };
    let model = dir.join("q.latent");
    let (code, out, err) = run(Command::new(&exe).arg(&data).arg("2").arg("6000").arg(&model));
    assert_eq!(code, 0, "quickstart failed:\n{out}\n{err}");
    assert!(out.contains("epoch  2/2"), "{out}");
    assert!(out.contains("reloaded model gives identical codes"), "{out}");
    assert!(model.exists());
    // The test squared error per image after 2 short epochs: well below the 784 * 0.1 of an
    // untrained network (measured ~25-30).
    let sq: f64 = out
        .lines()
        .find_map(|l| l.split("squared error per image ").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .expect("squared error line");
    assert!(sq < 45.0, "squared error per image {sq}\n{out}");
}

#[test]
fn quickstart_is_clean_under_valgrind() {
    if !have("valgrind") {
        skip("valgrind", "apt-get install valgrind");
        return;
    }
    let Some((exe, data, dir)) = quickstart("quickstart_valgrind") else { return };
    let (code, out, err) = run(Command::new("valgrind")
        .args(["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "--quiet"])
        .arg(&exe)
        .arg(&data)
        .arg("1")
        .arg("300")
        .arg(dir.join("v.latent")));
    assert_eq!(code, 0, "valgrind reported errors or leaks (exit {code}):\n{out}\n{err}");
    assert!(out.contains("identical"), "{out}");
}
