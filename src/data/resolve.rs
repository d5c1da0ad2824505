//! The one place that knows where real datasets live, for tests, benchmarks, examples and C
//! programs (`latent_data_find`). A name ("mnist", "fashion-mnist", "digits/digits.csv.gz")
//! is looked up, in order, under:
//!
//! 1. `$LATENT_DATA_DIR` (one directory, or several separated as in `PATH`),
//! 2. `../shared/data` next to this crate's source (the project's data checkout),
//! 3. `../shared/data` relative to the current directory,
//! 4. `/usr/share/datasets` (Debian's `dataset-fashion-mnist` installs `fashion-mnist/` there).
//!
//! Absent data is a visible skip in tests, never a silent pass: see [`find_or_skip`], which
//! panics instead when `LATENT_REQUIRE_DATA=1` (CI sets it).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Directory (or `PATH`-style list of directories) searched first.
pub const DATA_DIR_ENV: &str = "LATENT_DATA_DIR";
/// When set to `1`, [`find_or_skip`] panics on missing data instead of skipping.
pub const REQUIRE_DATA_ENV: &str = "LATENT_REQUIRE_DATA";
/// The system-wide location of Debian's dataset packages.
pub const SYSTEM_DATA_DIR: &str = "/usr/share/datasets";

/// The directories searched, in order (they need not exist).
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os(DATA_DIR_ENV)
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join("data"));
    dirs.push(Path::new("..").join("shared").join("data"));
    dirs.push(PathBuf::from(SYSTEM_DATA_DIR));
    dirs
}

/// Checks that `name` stays inside the directory it is looked up in: a relative path without
/// `..` components. Anything else is [`Error::InvalidArgument`].
pub fn check_name(name: &str) -> Result<()> {
    use std::path::Component;
    let p = Path::new(name);
    if p.has_root() || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(Error::InvalidArgument(format!(
            "dataset name \"{name}\" must be a relative path inside the data directories (no leading /, no ..)"
        )));
    }
    Ok(())
}

/// The first `dir/name` that exists among `dirs`, made absolute (so it stays valid when the
/// caller changes directory). A name that [`check_name`] refuses is never found.
pub fn find_in(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    if name.is_empty() || check_name(name).is_err() {
        return None;
    }
    let p = dirs.iter().map(|d| d.join(name)).find(|p| p.exists())?;
    Some(p.canonicalize().unwrap_or(p))
}

/// The path of the dataset file or directory `name`, if any search directory holds it.
pub fn find(name: &str) -> Option<PathBuf> {
    find_in(name, &search_dirs())
}

/// Why `name` was not found: where it was looked for and how to provide it.
pub fn not_found_message(name: &str) -> String {
    let dirs: Vec<String> = search_dirs().iter().map(|d| d.display().to_string()).collect();
    format!(
        "dataset \"{name}\" not found; looked in: {}. Set {DATA_DIR_ENV} to a directory holding \
         \"{name}\" (see shared/data/README.md), or on Debian/Ubuntu `apt-get install \
         dataset-fashion-mnist` for {SYSTEM_DATA_DIR}/fashion-mnist",
        dirs.join(", ")
    )
}

/// Like [`find`], as an error naming the search path when absent ([`Error::Io`]); a name that
/// [`check_name`] refuses is [`Error::InvalidArgument`].
pub fn require(name: &str) -> Result<PathBuf> {
    check_name(name)?;
    find(name).ok_or_else(|| Error::Io(not_found_message(name)))
}

/// Whether `LATENT_REQUIRE_DATA=1`: missing data must fail rather than skip.
pub fn data_required() -> bool {
    std::env::var(REQUIRE_DATA_ENV).is_ok_and(|v| v.trim() == "1")
}

/// For tests, benchmarks and examples only (the library itself never calls it): finds `name`,
/// or else panics when data are required ([`data_required`]) or writes
/// `SKIPPED: <name> not found (...)` to stderr and returns None. The message goes straight to
/// the process's stderr, past the test harness's capture, so a skip is always visible.
pub fn find_or_skip(name: &str) -> Option<PathBuf> {
    skip_or_panic(name, find(name), data_required(), &mut std::io::stderr())
}

fn skip_or_panic(name: &str, found: Option<PathBuf>, required: bool, log: &mut dyn Write) -> Option<PathBuf> {
    if found.is_some() {
        return found;
    }
    if required {
        panic!("{REQUIRE_DATA_ENV}=1 but {}", not_found_message(name));
    }
    let _ = writeln!(
        log,
        "SKIPPED: {name} not found (set {DATA_DIR_ENV}, see shared/data/README.md; {REQUIRE_DATA_ENV}=1 makes this fail)"
    );
    None
}

/// The four files of an MNIST-layout directory (MNIST, Fashion-MNIST):
/// (train images, train labels, test images, test labels). Accepts the usual names, gzip or
/// not: `train-images-idx3-ubyte.gz`, `train-images-idx3-ubyte`, `train-images.idx3-ubyte`
/// (and `t10k-...`, `...-labels-idx1-...`). Whether a file is compressed is decided by its
/// content when it is read, not here.
pub fn mnist_files(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf, PathBuf)> {
    let pick = |set: &str, kind: &str, idx: &str| -> Result<PathBuf> {
        let names = [
            format!("{set}-{kind}-{idx}-ubyte.gz"),
            format!("{set}-{kind}-{idx}-ubyte"),
            format!("{set}-{kind}.{idx}-ubyte.gz"),
            format!("{set}-{kind}.{idx}-ubyte"),
        ];
        names
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| Error::Io(format!("{}: none of {} exists", dir.display(), names.join(", "))))
    };
    Ok((
        pick("train", "images", "idx3")?,
        pick("train", "labels", "idx1")?,
        pick("t10k", "images", "idx3")?,
        pick("t10k", "labels", "idx1")?,
    ))
}

/// The bytes of a path as the OS holds them (what a C caller gets back); off Unix, only a
/// UTF-8 path can be given.
#[cfg(unix)]
pub fn path_bytes(p: &Path) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    Ok(p.as_os_str().as_bytes().to_vec())
}

#[cfg(not(unix))]
pub fn path_bytes(p: &Path) -> Result<Vec<u8>> {
    p.to_str().map(|s| s.as_bytes().to_vec()).ok_or_else(|| Error::Io(format!("{} is not UTF-8", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("latent-resolve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn finds_in_order_and_reports_where_it_looked() {
        let (a, b) = (tmp("a").canonicalize().unwrap(), tmp("b").canonicalize().unwrap());
        std::fs::create_dir_all(b.join("set")).unwrap();
        assert_eq!(find_in("set", &[a.clone(), b.clone()]), Some(b.join("set")));
        std::fs::create_dir_all(a.join("set")).unwrap();
        assert_eq!(find_in("set", &[a.clone(), b.clone()]), Some(a.join("set")));
        assert_eq!(find_in("nothing-here", &[a.clone(), b.clone()]), None);
        assert_eq!(find_in("", std::slice::from_ref(&a)), None);
        // Names cannot leave the data directories.
        std::fs::write(a.join("secret"), b"").unwrap();
        let inner = a.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        assert_eq!(find_in("../secret", std::slice::from_ref(&inner)), None);
        assert_eq!(find_in(a.join("secret").to_str().unwrap(), std::slice::from_ref(&b)), None);
        assert!(matches!(require("../../etc/passwd"), Err(Error::InvalidArgument(_))));
        assert!(matches!(require("/etc/passwd"), Err(Error::InvalidArgument(_))));
        assert!(matches!(require("digits/../../x"), Err(Error::InvalidArgument(_))));
        let m = not_found_message("nothing-here");
        assert!(m.contains(DATA_DIR_ENV) && m.contains(SYSTEM_DATA_DIR) && m.contains("shared"), "{m}");
        for d in [a, b] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn missing_data_skips_or_panics_when_required() {
        assert_eq!(skip_or_panic("x", Some(PathBuf::from("/p")), true, &mut Vec::new()), Some(PathBuf::from("/p")));
        let mut log = Vec::new();
        assert_eq!(skip_or_panic("x", None, false, &mut log), None);
        assert!(String::from_utf8(log).unwrap().starts_with("SKIPPED: x not found"));
        let r = std::panic::catch_unwind(|| skip_or_panic("x", None, true, &mut Vec::new()));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("LATENT_REQUIRE_DATA=1") && msg.contains("\"x\" not found"), "{msg}");
    }

    #[test]
    fn mnist_names_gzip_plain_and_dotted() {
        let d = tmp("mnist");
        assert!(matches!(mnist_files(&d), Err(Error::Io(_))));
        // Debian / upstream names, gzip.
        for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"] {
            std::fs::write(d.join(f), b"").unwrap();
        }
        // Uncompressed, and the dotted spelling of the original MNIST site.
        std::fs::write(d.join("t10k-labels.idx1-ubyte"), b"").unwrap();
        let (a, b, c, e) = mnist_files(&d).unwrap();
        assert_eq!(a, d.join("train-images-idx3-ubyte.gz"));
        assert_eq!(b, d.join("train-labels-idx1-ubyte.gz"));
        assert_eq!(c, d.join("t10k-images-idx3-ubyte.gz"));
        assert_eq!(e, d.join("t10k-labels.idx1-ubyte"));
        // gzip is preferred when both exist.
        std::fs::write(d.join("t10k-labels-idx1-ubyte.gz"), b"").unwrap();
        assert_eq!(mnist_files(&d).unwrap().3, d.join("t10k-labels-idx1-ubyte.gz"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
