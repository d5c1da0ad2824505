use std::time::Instant;
fn main() {
    let shapes = [(256usize, 784usize, 256usize), (256, 256, 64), (256, 64, 256), (256, 256, 784), (128,784,1000),(128,1000,500), (1,784,256), (1,256,64)];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for &(m, k, n) in &shapes {
        let a = vec![0.5f32; m * k]; let b = vec![0.25f32; k * n]; let mut c = vec![0f32; m * n];
        let reps = if m == 1 { 20000 } else { 200 };
        let fl = 2.0 * (m * k * n) as f64;
        let t = Instant::now();
        for _ in 0..reps { unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1); } }
        let mm = fl * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
        let mut res = vec![];
        for par in [gemm::Parallelism::None, gemm::Parallelism::Rayon(2)] {
            let t = Instant::now();
            pool.install(|| for _ in 0..reps { unsafe { gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), 1, k as isize, b.as_ptr(), 1, n as isize, 0.0, 1.0, false, false, false, par); } });
            res.push(fl * reps as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        // transposed A (dW = X^T dY): A is k x m stored, use strides
        let t = Instant::now();
        pool.install(|| for _ in 0..reps { unsafe { gemm::gemm(m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), m as isize, 1, b.as_ptr(), 1, n as isize, 0.0, 1.0, false, false, false, gemm::Parallelism::Rayon(2)); } });
        let gt = fl * reps as f64 / t.elapsed().as_secs_f64() / 1e9;
        let us = |g: f64| fl / g / 1e3;
        println!("{m}x{k}x{n}: mm1T {mm:.1}  gemm1T {:.1}  gemmR2 {:.1}  gemmR2 A^T {gt:.1} GF/s  (us: mm {:.2} g1 {:.2} g2 {:.2})", res[0], res[1], us(mm), us(res[0]), us(res[1]));
    }
}
