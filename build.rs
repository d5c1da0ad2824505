//! Writes include/latent.h from the C-ABI sources (src/ffi/) with cbindgen; the file is only
//! rewritten when its content changes.

use std::path::{Path, PathBuf};

/// The file cbindgen reads: the C skin's module root, from which it follows the `mod` lines to
/// every file of src/ffi/ (so no internal `pub` item leaks into the header, and no file is read
/// twice, which would declare every function twice).
pub fn ffi_sources(root: &Path) -> Vec<PathBuf> {
    vec![root.join("src/ffi/mod.rs")]
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
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
