//! The R package R/latent as its users get it: `R CMD build` makes the source tarball (outside
//! the checkout, so nothing is written into R/latent), `R CMD INSTALL` installs it into a
//! scratch library against this checkout's header and library (LATENT_INCLUDE, LATENT_LIB, as
//! R/README.md says); Rscript then runs with R_LIBS naming that library, so `library(latent)`
//! loads the installed package.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{lib_dir, root, run};

/// The environment that finds liblatent when the package is installed (R/latent/configure).
pub fn latent_env(cmd: &mut Command) -> &mut Command {
    cmd.env("LATENT_INCLUDE", root().join("include")).env("LATENT_LIB", lib_dir())
}

/// `R CMD build R/latent` in `dir`: the path of the tarball it wrote.
pub fn build_tarball(dir: &Path) -> PathBuf {
    let (code, out, err) = run(Command::new("R").current_dir(dir).args(["CMD", "build"]).arg(root().join("R/latent")));
    assert_eq!(code, 0, "R CMD build failed:\n{out}\n{err}");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tar.gz"))
        .unwrap_or_else(|| panic!("R CMD build wrote no tarball:\n{out}"))
}

/// Builds the package in `dir` and installs it into `dir`/lib, its C glue compiled with
/// warnings as errors (but the (DL_FUNC) casts of R's routine registration, which GCC flags
/// under -Wextra). Returns the library folder (for R_LIBS).
pub fn install(dir: &Path) -> PathBuf {
    let tarball = build_tarball(dir);
    install_tarball(&tarball, dir)
}

/// Installs an already built tarball into `dir`/lib (as [`install`]).
pub fn install_tarball(tarball: &Path, dir: &Path) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let (code, out, err) = run(latent_env(
        Command::new("R")
            .current_dir(dir)
            .args(["CMD", "INSTALL", "--no-test-load"])
            .arg(format!("--library={}", lib.display()))
            .arg(tarball)
            .env("PKG_CFLAGS", "-Wall -Wextra -Werror -Wno-cast-function-type"),
    ));
    assert_eq!(code, 0, "R CMD INSTALL failed:\n{out}\n{err}");
    assert!(lib.join("latent").join("libs").exists(), "R CMD INSTALL installed no shared object:\n{out}\n{err}");
    lib
}
