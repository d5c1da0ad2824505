//! Every C example (except mpi_train.c, which needs MPI; gpu.c runs on the CPU where there is no
//! GPU) and every C contract program the tests run is clean under valgrind's memcheck: no errors
//! (an uninitialised value, an invalid read or write) and no definite leaks. quickstart.c's run is
//! in tests/c_abi.rs.
//!
//! Valgrind runs this library's vectorised products some 1000x slower (plain code 30-50x), so the
//! examples run in their small mode
//! (`LATENT_EXAMPLE_SMALL=1`, c_examples/common.h: a few rows, one epoch, the same calls) on a
//! small copy of MNIST and Fashion-MNIST (300 training and 100 test images of each, found through
//! `LATENT_DATA_DIR`), on one thread (valgrind serialises threads). The test harness runs two at a
//! time; the whole set takes about 2 minutes on 2 cores.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// A directory holding mnist/ and fashion-mnist/ with the first 300 training and 100 test images
/// of each (None, after a printed skip, when the data or valgrind is missing).
fn small_data() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        if !have("valgrind") {
            skip("valgrind", "apt-get install valgrind");
            return None;
        }
        let dir = root().join("target").join("test-scratch").join("valgrind_data");
        for name in ["mnist", "fashion-mnist"] {
            let src = data_dir(name)?;
            let dst = dir.join(name);
            std::fs::create_dir_all(&dst).unwrap();
            for (prefix, n) in [("train", 300), ("t10k", 100)] {
                idx_subset(&src, &dst, prefix, n);
            }
        }
        Some(dir)
    })
    .as_deref()
}

/// Writes the first `n` images and labels of `<prefix>-{images-idx3,labels-idx1}-ubyte.gz` as
/// gzip files.
fn idx_subset(src: &Path, dst: &Path, prefix: &str, n: usize) {
    let (images, labels) = (format!("{prefix}-images-idx3-ubyte.gz"), format!("{prefix}-labels-idx1-ubyte.gz"));
    let gz = |payload: &[u8]| {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        out.extend(miniz_oxide::deflate::compress_to_vec(payload, 6));
        out.extend(latent::data::crc32::crc32(payload).to_le_bytes());
        out.extend((payload.len() as u32).to_le_bytes());
        out
    };
    let x = latent::data::idx::read_images(&src.join(&images)).unwrap();
    let mut img = vec![0, 0, 8, 3];
    for d in [n, 28, 28] {
        img.extend((d as u32).to_be_bytes());
    }
    img.extend(x.as_slice()[..n * 784].iter().map(|&v| v as u8));
    std::fs::write(dst.join(&images), gz(&img)).unwrap();
    let y = latent::data::idx::read_labels(&src.join(&labels)).unwrap();
    let mut lab = vec![0, 0, 8, 1];
    lab.extend((n as u32).to_be_bytes());
    lab.extend(y[..n].iter().map(|&v| v as u8));
    std::fs::write(dst.join(&labels), gz(&lab)).unwrap();
}

/// Compiles `source` and runs it under memcheck in a fresh directory with `args` (`{dir}` in an
/// argument becomes that directory); asserts a clean exit and returns its stdout.
fn memcheck(source: &str, args: &[&str]) -> Option<String> {
    let data = small_data()?;
    let name = Path::new(source).file_stem().unwrap().to_str().unwrap();
    let dir = scratch(&format!("valgrind_{name}"));
    let exe = dir.join(name);
    compile_c(&[root().join(source)], &exe, &[]);
    let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", dir.to_str().unwrap())).collect();
    let start = std::time::Instant::now();
    let (code, out, err) = run(Command::new("valgrind")
        .current_dir(&dir)
        .env("LATENT_NUM_THREADS", "1")
        .env("LATENT_EXAMPLE_SMALL", "1")
        .env("LATENT_DATA_DIR", data)
        .args(["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "--quiet"])
        .arg(&exe)
        .args(&args));
    println!("{source} under valgrind: {:.1} s", start.elapsed().as_secs_f64());
    assert_eq!(code, 0, "{source} under valgrind: exit {code} (99: memcheck errors or definite leaks)\n{out}\n{err}");
    Some(out)
}

#[test]
fn classifier_example() {
    memcheck("c_examples/classifier.c", &[]);
}

#[test]
fn denoising_example() {
    let Some(data) = small_data() else { return };
    let mnist = data.join("mnist");
    let out = memcheck("c_examples/denoising.c", &[mnist.to_str().unwrap(), "1", "20", "{dir}/d.latent"]).unwrap();
    assert!(out.contains("reloaded description is identical"), "{out}");
}

#[test]
fn gpu_example() {
    memcheck("c_examples/gpu.c", &[]);
}

#[test]
fn montecarlo_example() {
    memcheck("c_examples/montecarlo.c", &["1"]);
}

#[test]
fn higgs_example() {
    let Some(higgs) = data_dir("higgs") else { return };
    let dir = higgs.join("atlas-higgs-challenge");
    let out = memcheck("c_examples/higgs.c", &[dir.to_str().unwrap()]).unwrap();
    assert!(out.contains("codes + raw"), "{out}");
}

#[test]
fn own_data_example() {
    memcheck("c_examples/own_data.c", &[]);
}

#[test]
fn semantic_hash_example() {
    let Some(data) = small_data() else { return };
    let mnist = data.join("mnist");
    memcheck("c_examples/semantic_hash.c", &[mnist.to_str().unwrap(), "1", "20", "10"]);
}

#[test]
fn vae_example() {
    let Some(data) = small_data() else { return };
    let mnist = data.join("mnist");
    let out = memcheck("c_examples/vae.c", &[mnist.to_str().unwrap(), "1", "20", "{dir}/s.pgm"]).unwrap();
    assert!(out.contains("Fashion-MNIST images score"), "{out}");
}

#[test]
fn vae_pictures_example() {
    let Some(data) = small_data() else { return };
    let mnist = data.join("mnist");
    let out = memcheck("c_examples/vae_pictures.c", &[mnist.to_str().unwrap(), "1", "20", "{dir}"]).unwrap();
    assert!(out.contains("vae_reconstructions.png"), "{out}");
}

#[test]
fn contract_program() {
    memcheck("tests/c/contract.c", &["{dir}"]);
}

#[test]
fn vae_contract_program() {
    memcheck("tests/c/vae_contract.c", &["{dir}"]);
}

#[test]
fn supervised_contract_program() {
    memcheck("tests/c/supervised_contract.c", &["{dir}"]);
}

#[test]
fn montecarlo_contract_program() {
    memcheck("tests/c/montecarlo_contract.c", &[]);
}

#[test]
fn montecarlo_network_program() {
    memcheck("tests/c/montecarlo_network.c", &[]);
}

#[test]
fn reentry_program() {
    memcheck("tests/c/reentry.c", &["{dir}"]);
}

#[test]
fn panic_program() {
    memcheck("tests/c/panic.c", &[]);
}

#[test]
fn layout_program() {
    memcheck("tests/c/layout.c", &[]);
}

#[test]
fn julia_mirror_program() {
    memcheck("tests/c/julia_mirror.c", &["{dir}/q.latent"]);
}

/// r_model.c loads a model the R binding saved; here one saved from Rust, with 5 input rows.
#[test]
fn r_model_program() {
    let Some(_) = small_data() else { return };
    let dir = scratch("valgrind_r_model_inputs");
    let spec = latent::NetworkSpec { seed: 4, ..latent::NetworkSpec::new(12, &[8], latent::Activation::Sigmoid, 3) };
    let model = dir.join("m.latent");
    latent::model_file::save(&latent::Network::new(spec).unwrap(), &model).unwrap();
    let inputs: Vec<String> = (0..5 * 12).map(|i| format!("{}", (i % 7) as f64 / 7.0)).collect();
    let path = dir.join("inputs.txt");
    std::fs::write(&path, inputs.join(" ")).unwrap();
    let out = memcheck("tests/c/r_model.c", &[model.to_str().unwrap(), path.to_str().unwrap(), "5"]).unwrap();
    assert_eq!(out.lines().count(), 5, "{out}");
}
