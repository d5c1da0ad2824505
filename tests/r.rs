//! The R binding as an R package (R/latent): `R CMD build` makes the tarball, `R CMD check
//! --no-manual` checks it (installation against this checkout's library, the Rd pages and their
//! examples, the code/documentation match, the compiled code, and the package's tests, run by
//! check through the installed package) and must end with no ERROR and no WARNING; then the
//! tarball is installed into a scratch library and R/latent/tests/test_latent.R runs with
//! `library(latent)` on the 8x8 digits (loss, row names, bit-identical in-place inference,
//! save/load, bad input), and a C program loads the model it saved with identical codes.
//! Skipped (a failure under LATENT_REQUIRE_DATA=1) without R or the digits data.
//!
//! Measured on the 2-core build machine at load average 11 (other builds running): R CMD build
//! 0.8 s, R CMD check 20 s (15 s on a quieter machine), R CMD INSTALL 3.9 s, the digits test
//! 1.3 s; the whole test 24 s with liblatent.so already built (else cargo builds it first,
//! common::lib_dir, about 2 minutes there).

mod common;

use std::process::Command;

use common::*;

#[test]
fn r_package_builds_checks_installs_and_trains() {
    if !have("Rscript") || !have("R") {
        skip("Rscript", "install R (Debian: apt-get install r-base-core)");
        return;
    }
    let dir = scratch("r_package");
    let tarball = r_package::build_tarball(&dir);

    // R CMD check of the tarball. The digits test inside it skips (no LATENT_DIGITS there): the
    // full run is below, through the installed package.
    let (code, out, err) = run(r_package::latent_env(
        Command::new("R")
            .current_dir(&dir)
            .args(["CMD", "check", "--no-manual"])
            .arg(&tarball)
            .env("_R_CHECK_FORCE_SUGGESTS_", "false")
            .env_remove("LATENT_DIGITS")
            .env_remove("LATENT_REQUIRE_DATA"),
    ));
    println!("{out}\n{err}");
    let status = out.lines().rev().find(|l| l.starts_with("Status:")).unwrap_or_else(|| {
        panic!("R CMD check printed no Status line (exit {code}):\n{out}\n{err}");
    });
    assert_eq!(code, 0, "R CMD check failed: {status}\n{out}\n{err}");
    assert!(!status.contains("ERROR") && !status.contains("WARNING"), "R CMD check: {status}\n{out}\n{err}");
    // NOTEs are allowed (the Status line decides) and printed.
    for note in out.lines().filter(|l| l.ends_with("NOTE")) {
        println!("R CMD check note: {note}");
    }
    for test in ["test_inference.R", "test_latent.R", "test_settings.R"] {
        // (On stderr; R quotes the name with ‘’ in a UTF-8 locale, with '' otherwise.)
        assert!(
            out.lines().chain(err.lines()).any(|l| l.contains("Running") && l.contains(test)),
            "R CMD check did not run {test}:\n{out}"
        );
    }
    let inference = std::fs::read_to_string(dir.join("latent.Rcheck/tests/test_inference.Rout")).unwrap();
    assert!(inference.contains("ALL R INFERENCE TESTS PASSED"), "{inference}");
    let settings = std::fs::read_to_string(dir.join("latent.Rcheck/tests/test_settings.Rout")).unwrap();
    assert!(settings.contains("ALL R SETTINGS TESTS PASSED"), "{settings}");

    // The package installed from the tarball, its glue compiled with -Werror; the tests run
    // with library(latent) from that library.
    let lib = r_package::install_tarball(&tarball, &dir);
    let Some(digits) = data_dir("digits") else { return };
    let (code, out, err) = run(Command::new("Rscript")
        .arg("--vanilla")
        .arg(root().join("R/latent/tests/test_latent.R"))
        .env("R_LIBS", &lib)
        .env("LATENT_DIGITS", digits.join("digits.csv.gz"))
        .env("LATENT_REQUIRE_DATA", "1")
        .env("LATENT_R_OUT", &dir));
    println!("{out}\n{err}");
    assert_eq!(code, 0, "the R test failed:\n{out}\n{err}");
    assert!(out.contains("ALL R TESTS PASSED"), "{out}");
    assert!(out.contains("loss on the digits: bit-identical to the copying path"), "{out}");

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
