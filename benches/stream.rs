//! Data larger than memory (issue 19): one epoch of a 784-32-784 autoencoder (ReLU code,
//! sigmoid output, MSE, Adam, batch 256) streamed from a `.npy` file
//! ([`latent::data::stream::NpyStream`], `Trainer::fit_source`) against the same rows in memory,
//! printing samples/s and peak resident memory (VmHWM, reset before each fit through
//! /proc/self/clear_refs).
//!
//!   cargo bench --bench stream                 # a 0.25 GiB file (fits in memory too)
//!   STREAM_GB=30 cargo bench --bench stream    # the real run: 30 GiB on a 24 GiB machine
//!   STREAM_DIR=/tmp THREADS=2 IN_MEMORY_GB=0.6 # where the file goes; threads; the in-memory size
//!
//! Rows: 784 float32 columns in [0, 1] (one of 97 smooth patterns with noise, made row by row
//! by a seeded generator, so the file is written without being held). Lines of the table:
//! 1. in memory: IN_MEMORY_GB of rows in a Matrix (`Trainer::fit`, the full shuffle);
//! 2. the same rows streamed from a file (default block shuffle: 1024-row blocks, windows of 32);
//! 3. STREAM_GB streamed (when larger than IN_MEMORY_GB).
//!
//! The files are written under STREAM_DIR (default target/stream-bench) and removed when the
//! bench ends, panics included. Check `df -h` first: STREAM_GB of free disk is needed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use latent::data::stream::{NpyStream, write_npy_f32};
use latent::{Activation, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer};

const COLS: usize = 784;

/// Removes the file when dropped (a panic unwinds through it too).
struct Remove(PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux 4.0 and later).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Row i of the synthetic data: one of 97 smooth patterns plus seeded noise, in [0, 1] (cheap
/// enough to write 30 GiB at disk speed).
fn row(i: usize, out: &mut [f32]) {
    static PATTERNS: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    let pats = PATTERNS.get_or_init(|| {
        let mut v = vec![0f32; 97 * COLS];
        for (k, r) in v.chunks_exact_mut(COLS).enumerate() {
            let phase = k as f32 * 0.065;
            for (j, x) in r.iter_mut().enumerate() {
                let (u, w) = ((j % 28) as f32 / 28.0, (j / 28) as f32 / 28.0);
                *x = 0.5 + 0.35 * ((u * 6.0 + phase).sin() * (w * 5.0 - phase).cos());
            }
        }
        v
    });
    let pat = &pats[(i % 97) * COLS..][..COLS];
    let mut s = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for (v, &p) in out.iter_mut().zip(pat) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let noise = (s >> 40) as f32 / (1u64 << 24) as f32;
        *v = (p + 0.15 * (noise - 0.5)).clamp(0.0, 1.0);
    }
}

fn network() -> Network {
    let mut s = NetworkSpec::new(COLS, &[], Activation::Relu, 32);
    s.output_activation = Activation::Sigmoid;
    s.loss = Loss::Mse;
    s.seed = 1;
    Network::new(s).unwrap()
}

fn config(threads: usize) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size: 256,
        learning_rate: 1e-3,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        threads,
        seed: 3,
        ..Default::default()
    }
}

struct Line {
    what: String,
    gib: f64,
    rows: usize,
    secs: f64,
    loss: f64,
    rss_before_mib: f64,
    peak_mib: f64,
}

fn print(l: &Line) {
    println!(
        "| {:<34} | {:>8.2} | {:>10} | {:>8.1} | {:>10.0} | {:>8.5} | {:>8.0} | {:>8.0} |",
        l.what,
        l.gib,
        l.rows,
        l.secs,
        l.rows as f64 / l.secs,
        l.loss,
        l.rss_before_mib,
        l.peak_mib
    );
}

fn streamed(what: &str, path: &Path, rows: usize, threads: usize) -> Line {
    let mut net = network();
    let mut t = Trainer::new(config(threads)).unwrap();
    let mut s = NpyStream::open(path).unwrap();
    reset_peak();
    let before = status_kib("VmRSS:");
    let start = Instant::now();
    t.fit_source(&mut net, &mut s, None, None).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    Line {
        what: what.into(),
        gib: (rows * COLS * 4) as f64 / (1u64 << 30) as f64,
        rows,
        secs,
        loss: t.history()[0].train_loss,
        rss_before_mib: before as f64 / 1024.0,
        peak_mib: peak as f64 / 1024.0,
    }
}

fn main() {
    let gb = env_f64("STREAM_GB", 0.25);
    let mem_gb = env_f64("IN_MEMORY_GB", 0.25f64.min(gb)).min(gb);
    let threads = env_f64("THREADS", 2.0) as usize;
    let dir = std::env::var("STREAM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/stream-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let rows_of = |g: f64| ((g * (1u64 << 30) as f64) / (COLS * 4) as f64) as usize;
    let (big_rows, mem_rows) = (rows_of(gb), rows_of(mem_gb));
    println!(
        "stream bench: 784-32-784 autoencoder, Adam, batch 256, 1 epoch, {threads} threads; machine: {} cores, MemTotal {:.1} GiB",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        status_meminfo() / (1u64 << 20) as f64
    );
    println!(
        "| {:<34} | {:>8} | {:>10} | {:>8} | {:>10} | {:>8} | {:>8} | {:>8} |",
        "fit", "GiB", "rows", "seconds", "samples/s", "loss", "RSS MiB", "peak MiB"
    );
    println!("|{:-<36}|{:->10}|{:->12}|{:->10}|{:->12}|{:->10}|{:->10}|{:->10}|", "", "", "", "", "", "", "", "");

    // 1. In memory.
    {
        reset_peak();
        let before = status_kib("VmRSS:");
        let mut x = Matrix::zeros(mem_rows, COLS).unwrap();
        for (i, r) in x.as_mut_slice().chunks_exact_mut(COLS).enumerate() {
            row(i, r);
        }
        let mut net = network();
        let mut t = Trainer::new(config(threads)).unwrap();
        let start = Instant::now();
        t.fit(&mut net, &x, None, None).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let peak = status_kib("VmHWM:");
        print(&Line {
            what: "in memory (Matrix, full shuffle)".into(),
            gib: (mem_rows * COLS * 4) as f64 / (1u64 << 30) as f64,
            rows: mem_rows,
            secs,
            loss: t.history()[0].train_loss,
            rss_before_mib: before as f64 / 1024.0,
            peak_mib: peak as f64 / 1024.0,
        });
    }
    // 2. The same rows, streamed.
    {
        let path = dir.join("stream-small.npy");
        let _rm = Remove(path.clone());
        write_npy_f32(&path, mem_rows, COLS, row).unwrap();
        print(&streamed("streamed, same rows (blocks 1024x32)", &path, mem_rows, threads));
    }
    // 3. The large file.
    if big_rows > mem_rows {
        let path = dir.join("stream-large.npy");
        let _rm = Remove(path.clone());
        let start = Instant::now();
        write_npy_f32(&path, big_rows, COLS, row).unwrap();
        eprintln!("wrote {:.1} GiB in {:.0} s", gb, start.elapsed().as_secs_f64());
        print(&streamed("streamed, larger file", &path, big_rows, threads));
    }
}

fn status_meminfo() -> f64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}
