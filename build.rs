//! Writes include/latent.h from the C-ABI sources (src/ffi/) with cbindgen; the file is only
//! rewritten when its content changes.

use std::path::{Path, PathBuf};

/// The file cbindgen reads: the C skin's module root, from which it follows the `mod` lines to
/// every file of src/ffi/ (so no internal `pub` item leaks into the header, and no file is read
/// twice, which would declare every function twice).
pub fn ffi_sources(root: &Path) -> Vec<PathBuf> {
    vec![root.join("src/ffi/mod.rs")]
}

/// LATENT_ABI_VERSION from src/ffi/consts.rs: the shared library's soname is
/// liblatent.so.<ABI version>, so a program linked against one ABI never loads another.
fn abi_version(root: &Path) -> Option<u32> {
    let src = std::fs::read_to_string(root.join("src/ffi/consts.rs")).ok()?;
    let line = src.lines().find(|l| l.trim_start().starts_with("pub const LATENT_ABI_VERSION: u32 ="))?;
    line.split('=').nth(1)?.trim().trim_end_matches(';').trim().parse().ok()
}

/// On ELF targets: sets the soname of liblatent.so to liblatent.so.<ABI> and links
/// <profile dir>/liblatent.so.<ABI> to liblatent.so, so programs linked against the build tree
/// (the tests, c_examples) find what their DT_NEEDED names. `make install` installs the same name.
fn soname(root: &Path) {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !matches!(os.as_str(), "linux" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "android") {
        return;
    }
    let Some(abi) = abi_version(root) else {
        println!("cargo:warning=no LATENT_ABI_VERSION in src/ffi/consts.rs: liblatent.so gets no soname");
        return;
    };
    let name = format!("liblatent.so.{abi}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{name}");
    // OUT_DIR is <profile dir>/build/latent-<hash>/out.
    let Some(profile) =
        std::env::var_os("OUT_DIR").map(PathBuf::from).and_then(|o| o.ancestors().nth(3).map(Path::to_path_buf))
    else {
        return;
    };
    let link = profile.join(&name);
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("liblatent.so")) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink("liblatent.so", &link) {
        println!("cargo:warning=could not link {} to liblatent.so: {e}", link.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    soname(&root);
    let config = match cbindgen::Config::from_file(root.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            println!("cargo:warning=cbindgen.toml: {e}");
            return;
        }
    };
    let mut b = cbindgen::Builder::new().with_config(config);
    for f in ffi_sources(&root) {
        b = b.with_src(f);
    }
    match b.generate() {
        Ok(bindings) => {
            bindings.write_to_file(root.join("include/latent.h"));
        }
        // A source that does not parse fails in rustc with a better message; keep the old header.
        Err(e) => println!("cargo:warning=cbindgen could not generate include/latent.h: {e}"),
    }
}
