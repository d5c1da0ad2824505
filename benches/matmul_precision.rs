//! f32 against bfloat16 products (`LATENT_MATMUL_PRECISION`) on the shapes of W1 and W2's
//! training steps: GFLOP/s of `latent::gemm::gemm`, packing included, one and two threads.
//!
//!   cargo bench --bench matmul_precision            # REPS=50 THREADS=1,2
//!
//! Prints one markdown table (benches/README.md, "Lower-precision products").

use std::time::Instant;

use latent::gemm::{Operand, Precision, bf16_available, gemm, set_precision};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !bf16_available() {
        println!("this CPU has no AVX-512 BF16: nothing to compare");
        return;
    }
    let reps: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let threads: Vec<usize> = std::env::var("THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    // (m, n, k, A transposed, B transposed, what): forward X W, backward dY W^T, gradient X^T dY.
    let shapes = [
        (128, 1000, 784, false, false, "W1 forward 784 -> 1000"),
        (128, 784, 1000, false, true, "W1 input gradient 1000 -> 784"),
        (784, 1000, 128, true, false, "W1 weight gradient 784 x 1000"),
        (256, 256, 784, false, false, "W2 forward 784 -> 256"),
        (256, 784, 256, false, true, "W2 input gradient 256 -> 784"),
        (784, 256, 256, true, false, "W2 weight gradient 784 x 256"),
        (256, 64, 256, false, false, "W2 forward 256 -> 64"),
    ];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(*threads.iter().max().unwrap_or(&1)).build().unwrap();
    println!("| product (m x n x k) | threads | f32 GFLOP/s | bf16 GFLOP/s | bf16 / f32 |");
    println!("|---|---|---|---|---|");
    for &(m, n, k, ta, tb, what) in &shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5).collect();
        let ao = if ta { Operand::t(&a, m) } else { Operand::n(&a, k) };
        let bo = if tb { Operand::t(&b, k) } else { Operand::n(&b, n) };
        let mut c = vec![0f32; m * n];
        for &t in &threads {
            let mut rate = [0f64; 2];
            for (i, p) in [Precision::F32, Precision::Bf16].into_iter().enumerate() {
                set_precision(p).unwrap();
                pool.install(|| {
                    for _ in 0..5 {
                        gemm(m, n, k, 1.0, ao, bo, 0.0, &mut c, n, t);
                    }
                    // Best of three timed runs of `reps` products each.
                    for _ in 0..3 {
                        let t0 = Instant::now();
                        for _ in 0..reps {
                            gemm(m, n, k, 1.0, ao, bo, 0.0, &mut c, n, t);
                        }
                        let s = t0.elapsed().as_secs_f64() / reps as f64;
                        rate[i] = rate[i].max(2.0 * (m * n * k) as f64 / s / 1e9);
                    }
                });
            }
            println!("| {what} ({m} x {n} x {k}) | {t} | {:.0} | {:.0} | {:.2} |", rate[0], rate[1], rate[1] / rate[0]);
        }
    }
    set_precision(Precision::F32).unwrap();
}
