//! Bounded resources: thread pools that do not pile up, thread counts within the documented
//! maximum, and files (FIFOs, devices, decompression bombs, stale temporary files, symbolic
//! links, names outside the data directories, non-canonical model files) that give a status
//! instead of hanging, exhausting memory or aborting.
//!
//! Tests that need a process of their own (a thread count, a memory limit, an environment
//! variable) run this test binary again, with RESOURCES_CHILD naming the part to run.

mod common;

use std::ffi::{CStr, CString};
use std::path::Path;
use std::process::Command;
use std::ptr::{null, null_mut};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use latent::ffi::*;

const CHILD: &str = "RESOURCES_CHILD";

fn child_mode() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// Runs test `name` of this binary in a new process with `RESOURCES_CHILD=mode` (and `env`),
/// and returns its output once it exited successfully.
fn in_child(name: &str, mode: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]).env(CHILD, mode);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (code, out, err) = common::run(&mut cmd);
    assert_eq!(code, 0, "child {mode} failed (exit {code}):\n{out}\n{err}");
    out
}

/// Limits this process's address space (for children only).
fn limit_memory(bytes: u64) {
    let r = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
    // SAFETY: setrlimit reads the struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &r) }, 0);
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

fn cpath(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

fn threads_now() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

fn new_network(input: u32, code: u32) -> *mut latent_network {
    let mut p = latent_network_params_default();
    p.input_dim = input;
    p.code_units = code;
    let mut net = null_mut();
    assert_eq!(unsafe { latent_network_new(&p, &mut net) }, LATENT_STATUS_OK);
    net
}

fn new_vae() -> *mut latent_vae {
    let mut p = latent_vae_params_default();
    p.input_dim = 6;
    p.latent_dim = 2;
    let mut vae = null_mut();
    assert_eq!(unsafe { latent_vae_new(&p, &mut vae) }, LATENT_STATUS_OK);
    vae
}

// ---------------------------------------------------------------------------------------------
// Threads

#[test]
fn thread_pools_stay_bounded_after_many_thread_counts() {
    const NAME: &str = "thread_pools_stay_bounded_after_many_thread_counts";
    if child_mode().as_deref() != Some("pools") {
        let out = in_child(NAME, "pools", &[]);
        assert!(out.contains("threads after freeing"), "{out}");
        return;
    }
    // Large enough (>= 32k values) for encode to run on the network's pool.
    let (rows, cols) = (300usize, 128usize);
    let x = vec![0.5f32; rows * cols];
    let mut codes = vec![0f32; rows * 4];
    let before = threads_now();
    for t in 1..=64u32 {
        let net = new_network(cols as u32, 4);
        assert_eq!(unsafe { latent_network_set_threads(net, t) }, LATENT_STATUS_OK);
        let st = unsafe { latent_network_encode(net, x.as_ptr(), rows, cols, codes.as_mut_ptr(), codes.len()) };
        assert_eq!(st, LATENT_STATUS_OK);
        unsafe { latent_network_free(net) };
    }
    // The cache keeps at most cache_budget() workers (here the last pool, of 64); an evicted
    // pool's workers exit shortly after it is dropped.
    let bound = before + latent::pool::cache_budget();
    let start = Instant::now();
    let mut now = threads_now();
    while now > bound && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        now = threads_now();
    }
    println!("{before} threads before, {now} threads after freeing (bound {bound})");
    assert!(now <= bound, "{now} threads after 64 thread counts, more than {bound}");
    assert!(latent::pool::cached_pools().len() <= latent::pool::MAX_CACHED_POOLS);
}

#[test]
fn more_than_the_maximum_thread_count_is_invalid_everywhere() {
    assert_eq!(latent::pool::MAX_THREADS, 1024);
    let net = new_network(6, 2);
    let vae = new_vae();
    for t in [1025u32, 4096, u32::MAX] {
        assert_eq!(unsafe { latent_network_set_threads(net, t) }, LATENT_STATUS_INVALID_ARGUMENT, "{t}");
        assert!(last_error().contains("1024"), "{}", last_error());
        assert_eq!(unsafe { latent_vae_set_threads(vae, t) }, LATENT_STATUS_INVALID_ARGUMENT, "{t}");
        let mut tp = latent_train_params_default();
        tp.threads = t;
        let mut trainer = null_mut();
        assert_eq!(unsafe { latent_trainer_new(&tp, &mut trainer) }, LATENT_STATUS_INVALID_ARGUMENT, "{t}");
        assert!(trainer.is_null());
        let mut mp = latent_montecarlo_params_default();
        mp.threads = t;
        let mut mc = null_mut();
        assert_eq!(unsafe { latent_montecarlo_new(&mp, 3, &mut mc) }, LATENT_STATUS_INVALID_ARGUMENT, "{t}");
        assert!(mc.is_null());
    }
    // The maximum itself is accepted (setting it starts no thread).
    assert_eq!(unsafe { latent_network_set_threads(net, 1024) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_vae_set_threads(vae, 1024) }, LATENT_STATUS_OK);
    unsafe {
        latent_network_free(net);
        latent_vae_free(vae);
    }
}

#[test]
fn latent_num_threads_beyond_the_maximum_is_invalid() {
    const NAME: &str = "latent_num_threads_beyond_the_maximum_is_invalid";
    if child_mode().as_deref() != Some("env") {
        let out = in_child(NAME, "env", &[("LATENT_NUM_THREADS", "4096")]);
        assert!(out.contains("env checked"), "{out}");
        return;
    }
    let net = new_network(128, 4);
    let (rows, cols) = (300usize, 128usize);
    let x = vec![0.5f32; rows * cols];
    let mut codes = vec![0f32; rows * 4];
    // 0 threads means LATENT_NUM_THREADS: refused where it is set and where it is used.
    assert_eq!(unsafe { latent_network_set_threads(net, 0) }, LATENT_STATUS_INVALID_ARGUMENT);
    assert!(last_error().contains("LATENT_NUM_THREADS"), "{}", last_error());
    let st = unsafe { latent_network_encode(net, x.as_ptr(), rows, cols, codes.as_mut_ptr(), codes.len()) };
    assert_eq!(st, LATENT_STATUS_INVALID_ARGUMENT);
    let tp = latent_train_params_default();
    let mut trainer = null_mut();
    assert_eq!(unsafe { latent_trainer_new(&tp, &mut trainer) }, LATENT_STATUS_INVALID_ARGUMENT);
    let mp = latent_montecarlo_params_default();
    let mut mc = null_mut();
    assert_eq!(unsafe { latent_montecarlo_new(&mp, 3, &mut mc) }, LATENT_STATUS_INVALID_ARGUMENT);
    // An explicit count still works.
    assert_eq!(unsafe { latent_network_set_threads(net, 2) }, LATENT_STATUS_OK);
    let st = unsafe { latent_network_encode(net, x.as_ptr(), rows, cols, codes.as_mut_ptr(), codes.len()) };
    assert_eq!(st, LATENT_STATUS_OK);
    unsafe { latent_network_free(net) };
    println!("env checked");
}

// ---------------------------------------------------------------------------------------------
// Files: every loader

type Loader = fn(&CStr) -> latent_status;

fn load_idx(p: &CStr) -> latent_status {
    let mut d = null_mut();
    let st = unsafe { latent_dataset_from_idx(p.as_ptr(), null(), &mut d) };
    unsafe { latent_dataset_free(d) };
    st
}

fn load_npy(p: &CStr) -> latent_status {
    let mut d = null_mut();
    let st = unsafe { latent_dataset_from_npy(p.as_ptr(), null(), &mut d) };
    unsafe { latent_dataset_free(d) };
    st
}

fn load_csv(p: &CStr) -> latent_status {
    let mut d = null_mut();
    let st = unsafe { latent_dataset_from_csv(p.as_ptr(), null(), &mut d) };
    unsafe { latent_dataset_free(d) };
    st
}

fn load_network(p: &CStr) -> latent_status {
    let mut n = null_mut();
    let st = unsafe { latent_network_load(p.as_ptr(), &mut n) };
    unsafe { latent_network_free(n) };
    st
}

fn load_vae(p: &CStr) -> latent_status {
    let mut v = null_mut();
    let st = unsafe { latent_vae_load(p.as_ptr(), &mut v) };
    unsafe { latent_vae_free(v) };
    st
}

const LOADERS: [(&str, Loader); 5] =
    [("idx", load_idx), ("npy", load_npy), ("csv", load_csv), ("network", load_network), ("vae", load_vae)];

/// Each loader on `path`, in a thread of its own: its status, or None when it did not return
/// within `wait`.
fn load_all(path: &Path, wait: Duration) -> Vec<(&'static str, Option<latent_status>, String)> {
    LOADERS
        .iter()
        .map(|&(name, load)| {
            let (tx, rx) = mpsc::channel();
            let p = cpath(path);
            std::thread::spawn(move || {
                let st = load(&p);
                let _ = tx.send((st, last_error()));
            });
            match rx.recv_timeout(wait) {
                Ok((st, msg)) => (name, Some(st), msg),
                Err(_) => (name, None, String::new()),
            }
        })
        .collect()
}

#[test]
fn a_fifo_is_refused_at_once_by_every_loader() {
    let dir = common::scratch("resources-fifo");
    let fifo = dir.join("pipe");
    let c = cpath(&fifo);
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (name, st, msg) in load_all(&fifo, Duration::from_secs(1)) {
        assert_eq!(st, Some(LATENT_STATUS_IO), "{name} on a FIFO: {msg}");
        assert!(msg.contains("not a regular file (a FIFO)"), "{name}: {msg}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn devices_and_oversized_files_give_a_status() {
    const NAME: &str = "devices_and_oversized_files_give_a_status";
    if child_mode().as_deref() != Some("devices") {
        let out = in_child(NAME, "devices", &[]);
        assert!(out.contains("devices checked"), "{out}");
        return;
    }
    // Before any fix, /dev/zero was read until memory ran out: bound it in this child.
    limit_memory(1 << 30);
    for (name, st, msg) in load_all(Path::new("/dev/zero"), Duration::from_secs(10)) {
        assert_eq!(st, Some(LATENT_STATUS_IO), "{name} on /dev/zero: {msg}");
        assert!(msg.contains("not a regular file (a device)"), "{name}: {msg}");
    }
    for (name, st, msg) in load_all(Path::new("/tmp"), Duration::from_secs(10)) {
        assert_eq!(st, Some(LATENT_STATUS_IO), "{name} on a directory: {msg}");
    }
    // A sparse file beyond the 2 GiB limit on data files is refused before it is read.
    let dir = common::scratch("resources-devices");
    let big = dir.join("big.idx");
    std::fs::File::create(&big).unwrap().set_len(3 << 30).unwrap();
    for (name, load) in &LOADERS[..3] {
        assert_eq!(load(&cpath(&big)), LATENT_STATUS_BAD_FORMAT, "{name}: {}", last_error());
        assert!(last_error().contains("larger than any data file"), "{}", last_error());
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("devices checked");
}

// ---------------------------------------------------------------------------------------------
// A gzip bomb read as CSV under a memory limit

/// A gzip member of `data` (deflate level 6).
fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut g = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3];
    g.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, 6));
    g.extend_from_slice(&latent::data::crc32::crc32(data).to_le_bytes());
    g.extend_from_slice(&(data.len() as u32).to_le_bytes());
    g
}

#[test]
fn a_csv_gzip_bomb_under_a_memory_limit_is_out_of_memory_not_an_abort() {
    const NAME: &str = "a_csv_gzip_bomb_under_a_memory_limit_is_out_of_memory_not_an_abort";
    let dir = common::root().join("target").join("test-scratch").join("resources-bomb");
    let bomb = dir.join("bomb.csv.gz");
    if child_mode().as_deref() != Some("bomb") {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // 32 MiB of lines of 16 small numbers, as 10 concatenated members: 320 MiB of text
        // that would parse into 160 million floats (640 MB, 1 GiB of vector capacity), from
        // about half a megabyte of file.
        let line = b"0,1,0,1,0,1,0,1,0,1,0,1,0,1,0,1\n";
        let chunk: Vec<u8> = line.iter().copied().cycle().take(32 << 20).collect();
        let member = gzip_member(&chunk);
        let gz: Vec<u8> = std::iter::repeat_n(member.as_slice(), 10).flatten().copied().collect();
        assert!(10 * chunk.len() <= latent::data::gzip::output_limit(gz.len()), "the bomb is within the ratio limit");
        std::fs::write(&bomb, &gz).unwrap();
        let out = in_child(NAME, "bomb", &[]);
        assert!(out.contains("bomb status 8"), "{out}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    limit_memory(1 << 30);
    let st = load_csv(&cpath(&bomb));
    let msg = last_error();
    println!("bomb status {st}: {msg}");
    assert_eq!(st, LATENT_STATUS_OUT_OF_MEMORY, "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Saving: stale temporary files, symbolic links, messages

fn save(net: *const latent_network, p: &Path) -> latent_status {
    unsafe { latent_network_save(net, cpath(p).as_ptr()) }
}

#[test]
fn a_save_removes_temporary_files_of_dead_processes() {
    let dir = common::scratch("resources-stale");
    let net = new_network(6, 2);
    let target = dir.join("model.latent");
    assert_eq!(save(net, &target), LATENT_STATUS_OK);
    // What a save killed before its rename leaves, from a process that no longer exists (pids
    // never reach 999999999 on Linux), one from a live process (init, pid 1), and another
    // target's.
    let dead = dir.join(".model.latent.latent-tmp-999999999-0");
    let live = dir.join(".model.latent.latent-tmp-1-0");
    let other = dir.join(".other.latent.latent-tmp-999999999-0");
    for p in [&dead, &live, &other] {
        std::fs::write(p, b"half a model").unwrap();
    }
    assert_eq!(save(net, &target), LATENT_STATUS_OK);
    assert!(!dead.exists(), "the dead process's temporary file is still there");
    assert!(live.exists() && other.exists());
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, [".model.latent.latent-tmp-1-0", ".other.latent.latent-tmp-999999999-0", "model.latent"]);
    // A failed save names the target, never a temporary file.
    let missing = dir.join("no-such-dir").join("m.latent");
    assert_eq!(save(net, &missing), LATENT_STATUS_IO);
    let msg = last_error();
    assert!(msg.contains("m.latent") && !msg.contains("latent-tmp"), "{msg}");
    unsafe { latent_network_free(net) };
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn saving_over_a_symbolic_link_replaces_the_file_it_points_to() {
    let dir = common::scratch("resources-symlink");
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::create_dir_all(dir.join("links")).unwrap();
    let a = new_network(6, 2);
    let b = new_network(6, 3);
    let real = dir.join("models").join("current.latent");
    assert_eq!(save(a, &real), LATENT_STATUS_OK);
    // A relative link in another directory, and a link to that link.
    let link = dir.join("links").join("model.latent");
    std::os::unix::fs::symlink("../models/current.latent", &link).unwrap();
    let link2 = dir.join("latest.latent");
    std::os::unix::fs::symlink(&link, &link2).unwrap();
    assert_eq!(save(b, &link2), LATENT_STATUS_OK);
    for l in [&link, &link2] {
        assert!(std::fs::symlink_metadata(l).unwrap().file_type().is_symlink(), "{} is no longer a link", l.display());
    }
    let bytes = std::fs::read(&real).unwrap();
    let expected = latent::model_file::to_bytes(&latent::model_file::load(&link2).unwrap());
    assert_eq!(bytes, expected);
    let mut loaded = null_mut();
    assert_eq!(unsafe { latent_network_load(cpath(&real).as_ptr(), &mut loaded) }, LATENT_STATUS_OK);
    let (mut n1, mut n2) = (0usize, 0usize);
    assert_eq!(unsafe { latent_network_param_count(loaded, &mut n1) }, LATENT_STATUS_OK);
    assert_eq!(unsafe { latent_network_param_count(b, &mut n2) }, LATENT_STATUS_OK);
    assert_eq!(n1, n2);
    // No temporary file is left in either directory.
    for d in [dir.join("models"), dir.join("links")] {
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "{}", d.display());
    }
    // A dangling link is followed too: the file is created where it points.
    let dangling = dir.join("next.latent");
    std::os::unix::fs::symlink("models/next.latent", &dangling).unwrap();
    assert_eq!(save(a, &dangling), LATENT_STATUS_OK);
    assert!(dir.join("models").join("next.latent").is_file());
    // A target that is not a regular file is refused, and left as it was.
    assert_eq!(save(a, &dir.join("models")), LATENT_STATUS_IO);
    let fifo = dir.join("pipe.latent");
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(cpath(&fifo).as_ptr(), 0o600) }, 0);
    assert_eq!(save(a, &fifo), LATENT_STATUS_IO);
    assert!(last_error().contains("not a regular file"), "{}", last_error());
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    unsafe {
        latent_network_free(a);
        latent_network_free(b);
        latent_network_free(loaded);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Names outside the data directories

#[test]
fn data_find_stays_inside_the_data_directories() {
    let mut needed = 0usize;
    let mut buf = [0 as std::ffi::c_char; 4096];
    for name in ["../../etc/passwd", "/etc/passwd", "digits/../../../etc/passwd", "..", "a/../../b"] {
        let c = CString::new(name).unwrap();
        let st = unsafe { latent_data_find(c.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut needed) };
        assert_eq!(st, LATENT_STATUS_INVALID_ARGUMENT, "{name}: {}", last_error());
        assert_eq!(needed, 0);
    }
    // Ordinary names are still looked up (found or not).
    let c = CString::new("digits/digits.csv.gz").unwrap();
    let st = unsafe { latent_data_find(c.as_ptr(), buf.as_mut_ptr(), buf.len(), &mut needed) };
    assert!(st == LATENT_STATUS_OK || st == LATENT_STATUS_IO, "{st}");
}

// ---------------------------------------------------------------------------------------------
// One byte string, one model

#[test]
fn a_model_file_with_negative_zero_where_zero_is_written_is_bad_format() {
    use latent::{Regularization, Sparsity};
    let mut spec = latent::NetworkSpec::new(6, &[], latent::Activation::Sigmoid, 2);
    spec.regularization = Regularization { sparsity: Sparsity::L1 { lambda: 0.01 }, ..Regularization::default() };
    let net = latent::Network::new(spec).unwrap();
    let good = latent::model_file::to_bytes(&net);
    // Version 2, no hidden layers: the architecture section starts at 20, its version-1 fields
    // take 48 bytes, then the sparsity code and the KL target rho, 0 for L1.
    assert_eq!(u32::from_le_bytes(good[8..12].try_into().unwrap()), 2);
    let rho = 20 + 48 + 4;
    assert_eq!(good[rho..rho + 4], 0f32.to_le_bytes());
    let mut bad = good.clone();
    bad[rho..rho + 4].copy_from_slice(&(-0f32).to_le_bytes());
    let n = bad.len();
    let crc = latent::data::crc32::crc32(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());

    let dir = common::scratch("resources-negzero");
    let (gp, bp) = (dir.join("good.latent"), dir.join("bad.latent"));
    std::fs::write(&gp, &good).unwrap();
    std::fs::write(&bp, &bad).unwrap();
    assert_eq!(load_network(&cpath(&gp)), LATENT_STATUS_OK);
    assert_eq!(load_network(&cpath(&bp)), LATENT_STATUS_BAD_FORMAT);
    assert!(last_error().contains("bad architecture") && last_error().contains("-0"), "{}", last_error());

    // A VAE's constant posterior log-variance: B = 24 + 12 (no hidden layers, one part), the
    // log-variance at B + 20 of the section.
    let at = 20 + 36 + 20;
    let vae_bytes = |lv: f32| {
        let mut vs = latent::VaeSpec::new(6, &[], 2, &[], latent::Activation::Relu);
        vs.posterior = latent::Posterior::Constant { log_variance: lv };
        latent::model_file::vae_to_bytes(&latent::Vae::new(vs).unwrap())
    };
    assert_eq!(vae_bytes(-2.0)[at..at + 4], (-2f32).to_le_bytes());
    // Written as +0 whatever the sign the setting had, so that it loads back.
    let good = vae_bytes(-0.0);
    assert_eq!(good, vae_bytes(0.0));
    assert!(latent::model_file::vae_from_bytes(&good).is_ok());
    let mut bad = good.clone();
    bad[at..at + 4].copy_from_slice(&(-0f32).to_le_bytes());
    let n = bad.len();
    let crc = latent::data::crc32::crc32(&bad[..n - 4]);
    bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&bp, &bad).unwrap();
    assert_eq!(load_vae(&cpath(&bp)), LATENT_STATUS_BAD_FORMAT);
    assert!(last_error().contains("-0"), "{}", last_error());
    let _ = std::fs::remove_dir_all(&dir);
}
