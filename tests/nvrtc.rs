//! Every CUDA kernel compiles under NVRTC for compute_90 (the H100/H200 target) with no error and
//! no warning, and every kernel the backend launches is in the PTX. NVRTC needs no GPU: CI
//! installs libnvrtc.so.13 from PyPI (nvidia-cuda-nvrtc==13.0.*).
#![cfg(feature = "cuda")]

mod common;

/// Finds libnvrtc.so.13 (LATENT_NVRTC_LIB, the CUDA toolkit, or the PyPI wheel) and loads it
/// with RTLD_GLOBAL, so cudarc's own dlopen by soname finds the loaded library.
fn preload_nvrtc() -> bool {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("LATENT_NVRTC_LIB") {
        candidates.push(p);
    }
    candidates.push("/usr/local/cuda/lib64/libnvrtc.so.13".into());
    if let Ok(out) = std::process::Command::new("python3")
        .args(["-c", "import nvidia, os; print('\\n'.join(os.path.join(p, 'cu13', 'lib', 'libnvrtc.so.13') for p in nvidia.__path__))"])
        .output()
    {
        candidates.extend(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string));
    }
    let load = |p: &std::path::Path| {
        let path = std::ffi::CString::new(p.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: loads a shared library by path; its initialisers are NVIDIA's.
        !unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) }.is_null()
    };
    for c in candidates {
        let lib = std::path::Path::new(&c);
        // NVRTC opens its builtins library by soname too: load it first from the same folder.
        let builtins = lib.with_file_name("libnvrtc-builtins.so.13.0");
        if lib.exists() && (!builtins.exists() || load(&builtins)) && load(lib) {
            println!("NVRTC: {c}");
            return true;
        }
    }
    false
}

#[test]
fn every_kernel_compiles_for_compute_90_without_warnings() {
    if !preload_nvrtc() {
        common::skip("libnvrtc.so.13", "pip install nvidia-cuda-nvrtc==13.0.* (or set LATENT_NVRTC_LIB)");
        return;
    }
    let (ptx, log) = latent::backend::cuda::compile_ptx("compute_90").expect("NVRTC compiles the kernels");
    assert!(log.is_empty(), "NVRTC said:\n{log}");
    let names = latent::backend::kernel_names();
    assert!(names.len() >= 25, "only {} kernels found in the sources", names.len());
    for name in &names {
        assert!(ptx.contains(&format!(".entry {name}(")), "kernel {name} is missing from the PTX");
    }
    assert!(ptx.contains(".target sm_90"), "PTX for another target");
    println!("{} kernels, {} bytes of PTX", names.len(), ptx.len());
    // A kernel with an error is reported, not a panic.
    let bad = latent::backend::cuda::compile_source(
        "extern \"C\" __global__ void k(float* x) { x[0] = undefined; }",
        "compute_90",
    );
    match bad {
        Err(latent::Error::Internal(m)) => assert!(m.contains("undefined"), "{m}"),
        other => panic!("a bad kernel compiled: {:?}", other.map(|p| p.1)),
    }
}

#[test]
fn without_a_driver_devices_are_unsupported_not_a_panic() {
    // This machine may have a GPU (the device tests run there); elsewhere the calls must fail
    // with Unsupported.
    match latent::backend::list_devices() {
        Ok(d) => println!("{} CUDA device(s): {:?}", d.len(), d),
        Err(e) => assert!(matches!(e, latent::Error::Unsupported(_)), "{e}"),
    }
    match latent::backend::cuda::Cuda::new(0) {
        Ok(c) => println!("CUDA device 0 opened (ordinal {})", c.ordinal()),
        Err(e) => {
            assert!(matches!(e, latent::Error::Unsupported(_)), "{e}");
            println!("no GPU here: {e}");
        }
    }
}
