//! Semantic hashing's address lookup against the brute-force Hamming scan: time per query of
//! `HashIndex::query_radius` (radius 0 to 3) and `HashIndex::query_top_k` (k = 10, 100) over the
//! codes of the 60,000 MNIST training images, and of the same queries answered by scanning all
//! 60,000 codes (`hashing::top_k`, what latent_hamming_top_k runs, and a scan-filter-sort for the
//! radius), one thread each. The codes are the sign bits of a fixed Gaussian projection of the
//! centred pixels (16 and 32 bits); the queries are 1,000 test images.
//!
//!   cargo bench --bench hashing
//!
//! Environment: QUERIES (default 1000), ROUNDS (default 7; the median round is printed).

use std::hint::black_box;
use std::time::Instant;

use latent::Matrix;
use latent::data::resolve::find_or_skip;
use latent::data::{Dataset, Scaling};
use latent::gemm::{Operand, gemm};
use latent::hashing::{BinaryCodes, HashIndex, hamming, top_k};
use latent::rng::{Rng, stream};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Sign bits of a seeded Gaussian projection of the pixels centred on the training mean.
fn codes(x: &Matrix, mean: &[f32], bits: usize) -> BinaryCodes {
    let cols = x.cols();
    let centred: Vec<f32> =
        x.as_slice().chunks_exact(cols).flat_map(|r| r.iter().zip(mean).map(|(v, m)| v - m)).collect();
    let mut rng = Rng::new(2024, stream::INIT);
    let p: Vec<f32> = (0..cols * bits).map(|_| rng.normal()).collect();
    let mut out = vec![0f32; x.rows() * bits];
    gemm(x.rows(), bits, cols, 1.0, Operand::n(&centred, cols), Operand::n(&p, bits), 0.0, &mut out, bits, 1);
    BinaryCodes::pack(&Matrix::from_vec(x.rows(), bits, out).unwrap(), 0.0).unwrap()
}

/// Microseconds per query of the index's answer `f` and of the brute-force answer `g`, timed in
/// alternating rounds (so that load from other processes falls on both alike), each the median
/// of `rounds`; and the mean number of items returned (checked equal).
fn time(
    queries: &[u64],
    rounds: usize,
    mut f: impl FnMut(u64) -> usize,
    mut g: impl FnMut(u64) -> usize,
) -> (f64, f64, f64) {
    let run = |h: &mut dyn FnMut(u64) -> usize| {
        let mut found = 0;
        let t = Instant::now();
        for &q in queries {
            found += black_box(h(black_box(q)));
        }
        (t.elapsed().as_secs_f64() * 1e6 / queries.len() as f64, found)
    };
    let (mut tf, mut tg, mut hits) = (Vec::new(), Vec::new(), 0);
    for _ in 0..rounds {
        let (a, fa) = run(&mut f);
        let (b, fb) = run(&mut g);
        assert_eq!(fa, fb, "the index and the scan found different numbers of items");
        tf.push(a);
        tg.push(b);
        hits = fa;
    }
    (median(tf), median(tg), hits as f64 / queries.len() as f64)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores visible")
}

fn main() {
    let Some(dir) = find_or_skip("mnist") else { return };
    let load = |name: &str| {
        let mut d = Dataset::from_idx(dir.join(name), None).unwrap();
        d.scale(Scaling::Divide255).unwrap();
        d.x().clone()
    };
    let (train, test) = (load("train-images-idx3-ubyte.gz"), load("t10k-images-idx3-ubyte.gz"));
    let cols = train.cols();
    let mut mean = vec![0f64; cols];
    for r in 0..train.rows() {
        mean.iter_mut().zip(train.row(r)).for_each(|(m, &v)| *m += v as f64);
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / train.rows() as f64) as f32).collect();
    let nq: usize = env("QUERIES", 1000);
    let rounds: usize = env("ROUNDS", 7);

    println!(
        "Semantic hashing: address lookup vs brute-force scan, 60,000 MNIST training codes, {nq} test-image queries"
    );
    println!("machine: {}; one thread per query loop; median of {rounds} rounds", machine());
    println!("command: cargo bench --bench hashing");
    println!();
    println!("| bits | query | mean hits | ball lookup µs/query | brute force µs/query | speed-up |");
    println!("|---|---|---|---|---|---|");
    for bits in [16usize, 32] {
        let table_codes = codes(&train, &mean, bits);
        let query_codes = codes(&test, &mean, bits);
        let table = table_codes.as_slice();
        let queries: Vec<u64> = (0..nq).map(|i| query_codes.row(i % query_codes.rows())[0]).collect();
        let t = Instant::now();
        let idx = HashIndex::from_codes(&table_codes).unwrap();
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        for r in 0..=3usize {
            let (fast, slow, hits) = time(
                &queries,
                rounds,
                |q| idx.query_radius(q, r).unwrap().len(),
                |q| {
                    let mut v: Vec<(u32, u64)> = table
                        .iter()
                        .enumerate()
                        .map(|(i, &c)| (hamming(&[c], &[q]), i as u64))
                        .filter(|&(d, _)| d as usize <= r)
                        .collect();
                    v.sort_unstable();
                    v.len()
                },
            );
            println!("| {bits} | radius {r} | {hits:.1} | {fast:.2} | {slow:.1} | {:.0}x |", slow / fast);
        }
        for k in [10usize, 100] {
            let (fast, slow, hits) = time(
                &queries,
                rounds,
                |q| idx.query_top_k(q, k).unwrap().len(),
                |q| top_k(table, &[q], 1, k, 1).unwrap().found,
            );
            println!("| {bits} | top-{k} | {hits:.0} | {fast:.2} | {slow:.1} | {:.1}x |", slow / fast);
        }
        println!("| {bits} | (index: {} occupied addresses, built in {build_ms:.1} ms) | | | | |", idx.buckets());
    }
}
