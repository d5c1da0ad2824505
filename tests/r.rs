//! The R binding (R/latent): its C glue compiles with R's headers into a shared object
//! (`R CMD SHLIB`), and R/latent/tests/test_latent.R trains on the 8x8 digits, checks the loss,
//! row names and error handling, and saves a model that a C program loads with identical codes.
//! Skipped (a failure under LATENT_REQUIRE_DATA=1) without Rscript or the digits data.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Compiles R/latent/src/latent_r.c into `dir`/latent.so with `R CMD SHLIB`, finding latent.h
/// and liblatent through LATENT_INCLUDE and LATENT_LIB as src/Makevars reads them.
fn shlib(dir: &Path) -> std::path::PathBuf {
    let src = root().join("R/latent/src");
    for f in ["latent_r.c", "Makevars"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let so = dir.join("latent.so");
    let (code, out, err) = run(Command::new("R")
        .current_dir(dir)
        .args(["CMD", "SHLIB", "-o", "latent.so", "latent_r.c"])
        .env("LATENT_INCLUDE", root().join("include"))
        .env("LATENT_LIB", lib_dir())
        // R's own flags, plus warnings as errors for the glue (but the (DL_FUNC) casts of R's
        // routine registration, which GCC flags under -Wextra).
        .env("PKG_CFLAGS", "-Wall -Wextra -Werror -Wno-cast-function-type"));
    assert_eq!(code, 0, "R CMD SHLIB failed:\n{out}\n{err}");
    assert!(so.exists());
    so
}

#[test]
fn r_binding_trains_saves_and_fails_cleanly() {
    if !have("Rscript") || !have("R") {
        skip("Rscript", "install R (Debian: apt-get install r-base-core)");
        return;
    }
    let Some(digits) = data_dir("digits") else { return };
    let dir = scratch("r_binding");
    let so = shlib(&dir);
    let (code, out, err) = run(Command::new("Rscript")
        .arg("--vanilla")
        .arg(root().join("R/latent/tests/test_latent.R"))
        .env("LATENT_R_SO", &so)
        .env("LATENT_R_SRC", root().join("R/latent/R"))
        .env("LATENT_DIGITS", digits.join("digits.csv.gz"))
        .env("LATENT_R_OUT", &dir));
    println!("{out}\n{err}");
    assert_eq!(code, 0, "the R test failed:\n{out}\n{err}");
    assert!(out.contains("ALL R TESTS PASSED"), "{out}");

    // The model saved in R, loaded in C: the same codes, digit for digit.
    let exe = dir.join("r_model");
    compile_c(&[root().join("tests/c/r_model.c")], &exe, &[]);
    let (code, c_codes, err) =
        run(Command::new(&exe).arg(dir.join("digits.latent")).arg(dir.join("inputs.txt")).arg("10"));
    assert_eq!(code, 0, "r_model failed: {err}");
    let r_codes = std::fs::read_to_string(dir.join("codes_r.txt")).unwrap();
    assert_eq!(c_codes.trim_end(), r_codes.trim_end(), "codes from C differ from R's");
    assert_eq!(c_codes.lines().count(), 10);
}
