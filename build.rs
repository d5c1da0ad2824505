//! Writes include/latent.h from the C-ABI sources (src/ffi/) with cbindgen; the file is only
//! rewritten when its content changes.

use std::path::{Path, PathBuf};

/// The files cbindgen reads: only the C skin, so no internal `pub` item leaks into the header.
pub fn ffi_sources(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("src/ffi");
    let order = ["consts.rs", "types.rs", "mod.rs", "network.rs", "dataset.rs", "trainer.rs", "pretrain.rs"];
    let mut files: Vec<PathBuf> = order.iter().map(|f| dir.join(f)).filter(|p| p.exists()).collect();
    let mut rest: Vec<PathBuf> =
        std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    rest.retain(|p| p.extension().is_some_and(|e| e == "rs") && !files.contains(p));
    rest.sort();
    files.extend(rest);
    files
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
