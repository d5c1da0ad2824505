//! Predictive sparse decomposition (src/psd.rs, Kavukcuoglu, Ranzato & LeCun 2008): the ISTA
//! h-step against its own energy and the L1 optimality conditions, the parameter step's
//! gradient against finite differences, training on the 8x8 digits (the encoder learns to
//! predict the optimised codes, both sparse, good reconstructions), and the C API against the
//! Rust API.

mod common;

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use latent::data::CsvOptions;
use latent::ffi::*;
use latent::psd::{Psd, PsdConfig, PsdSpec, SparseCoding};
use latent::rng::Rng;
use latent::{Dataset, Matrix};

/// The 1797 digits scaled to [0, 1] (pixel / 16), or None after a visible skip.
fn digits() -> Option<Matrix> {
    let dir = common::data_dir("digits")?;
    let d = Dataset::from_csv(dir.join("digits.csv.gz"), &CsvOptions { label_column: Some(64), ..Default::default() })
        .unwrap();
    let v = d.x().as_slice().iter().map(|v| v / 16.0).collect();
    Some(Matrix::from_vec(d.rows(), 64, v).unwrap())
}

fn sum_sq(a: &[f32]) -> f64 {
    a.iter().map(|&v| (v as f64) * (v as f64)).sum()
}

fn dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(latent_last_error_message()) }.to_string_lossy().into_owned()
}

/// A model trained briefly on digit rows (so D is no longer random), and 100 test rows.
fn briefly_trained(x: &Matrix) -> (Psd, Matrix) {
    let mut p = Psd::new(PsdSpec { seed: 5, ..PsdSpec::new(64, 96) }).unwrap();
    let cfg = PsdConfig { epochs: 2, learning_rate: 3e-3, threads: 1, ..Default::default() };
    p.fit(&x.slice_rows(0, 1000), &cfg).unwrap();
    (p, x.slice_rows(1600, 100))
}

/// Each ISTA step with the step 1/L from the Lipschitz estimate lowers every row's energy (the
/// h-problem is separable by rows), and the converged codes satisfy the L1 problem's
/// optimality conditions: g_k + λ sign(h_k) = 0 where h_k ≠ 0, |g_k| ≤ λ where h_k = 0, with g
/// the smooth part's gradient.
#[test]
fn ista_decreases_the_energy_monotonically_and_converges_to_the_l1_optimum() {
    let Some(x) = digits() else { return };
    let (p, test) = briefly_trained(&x);
    let lambda = p.spec().lambda as f64;
    let step = 1.0 / p.lipschitz();
    let mut h = p.encode(&test).unwrap();
    let mut e = p.energy(&test, &h).unwrap();
    let start: f64 = e.iter().sum();
    let mut worst_rise = 0f64;
    for _ in 0..300 {
        p.ista_step(&test, &mut h, step).unwrap();
        let e2 = p.energy(&test, &h).unwrap();
        for (a, b) in e.iter().zip(&e2) {
            // f32 arithmetic: a rise below 1e-5 relative is rounding, not ascent.
            worst_rise = worst_rise.max((b - a) / a.abs().max(1.0));
        }
        e = e2;
    }
    let end: f64 = e.iter().sum();
    eprintln!("ISTA, 300 steps on 100 rows: energy {start:.2} -> {end:.2}, worst relative rise {worst_rise:.2e}");
    // Measured: 636.00 -> 473.33, worst rise 1.3e-7 (f32 rounding; no step rose above it).
    assert!(worst_rise <= 1e-5, "an ISTA step raised a row's energy by {worst_rise:.2e} (relative)");
    assert!(end < 0.85 * start, "{start} -> {end}");

    // Converged codes (the tolerance 0 budget runs every iteration) and the optimality test.
    let coding = SparseCoding { iterations: 3000, tolerance: 0.0 };
    let (hs, its) = p.encode_optimized_counting(&test, &coding).unwrap();
    let g = p.code_gradient(&test, &hs).unwrap();
    let (mut worst_nz, mut worst_zero, mut zeros) = (0f64, 0f64, 0usize);
    for (&hk, &gk) in hs.as_slice().iter().zip(g.as_slice()) {
        let (hk, gk) = (hk as f64, gk as f64);
        if hk == 0.0 {
            zeros += 1;
            worst_zero = worst_zero.max(gk.abs() - lambda);
        } else {
            worst_nz = worst_nz.max((gk + lambda * hk.signum()).abs());
        }
    }
    let frac = zeros as f64 / hs.as_slice().len() as f64;
    eprintln!(
        "after {its} iterations: |g + λ sign h| <= {worst_nz:.2e} on the nonzeros, |g| - λ <= {worst_zero:.2e} on the zeros ({:.1}% zeros)",
        100.0 * frac
    );
    // Measured: 1.6e-6 and 0 (no zero outside the subdifferential), 56.7% zeros. The margin
    // 2e-4: f32 residuals of a gradient of size ~10 are ~1e-5.
    assert!(worst_nz <= 2e-4, "stationarity on the nonzero codes: {worst_nz:.2e}");
    assert!(worst_zero <= 2e-4, "a zero code whose gradient leaves [-λ, λ]: {worst_zero:.2e}");
    assert!(frac > 0.3, "only {frac:.3} of the optimal codes are 0");
    // The optimum is no worse than where 300 plain steps got.
    let e_opt: f64 = p.energy(&test, &hs).unwrap().iter().sum();
    assert!(e_opt <= end * (1.0 + 1e-6), "{e_opt} > {end}");
}

/// The gradient of the parameter step's objective (mean of ||x - D h||² + α ||h - f(x)||², h
/// fixed) against central differences in every parameter; and the gradient in h used by ISTA
/// against differences of the energy away from h = 0.
#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng::new(11, 1);
    let (n, m, rows) = (7, 5, 6);
    let spec = PsdSpec { lambda: 0.3, alpha: 0.7, seed: 2, ..PsdSpec::new(n, m) };
    let mut p = Psd::new(spec).unwrap();
    // Non-default b_e and g so that their gradients are exercised away from 0 and 1.
    let mut params = p.params().to_vec();
    let [_, _, b, g] = p.layout();
    params[b].iter_mut().for_each(|v| *v = 0.5 * rng.normal());
    params[g].iter_mut().for_each(|v| *v = 1.0 + 0.5 * rng.normal());
    p.set_params(&params).unwrap();
    let x = common::random_matrix(rows, n, -1.0, 1.0, &mut rng);
    let mut hv: Vec<f32> = (0..rows * m).map(|_| rng.normal()).collect();
    hv.iter_mut().step_by(3).for_each(|v| *v = 0.0);
    let h = Matrix::from_vec(rows, m, hv).unwrap();

    let (loss, grads) = p.parameter_gradient(&x, &h).unwrap();
    let eps = 1e-2f32;
    let mut worst = 0f64;
    for i in 0..params.len() {
        let mut q = params.clone();
        q[i] = params[i] + eps;
        p.set_params(&q).unwrap();
        let up = p.parameter_gradient(&x, &h).unwrap().0;
        q[i] = params[i] - eps;
        p.set_params(&q).unwrap();
        let down = p.parameter_gradient(&x, &h).unwrap().0;
        let fd = (up - down) / (2.0 * eps as f64);
        let err = (fd - grads[i] as f64).abs() / (1.0 + fd.abs());
        worst = worst.max(err);
    }
    p.set_params(&params).unwrap();
    eprintln!("parameter gradient: loss {loss:.4}, worst relative error {worst:.2e} over {} parameters", params.len());
    // Measured 1.9e-5 (the O(eps²) truncation of tanh's differences and f32 rounding).
    assert!(worst < 3e-3, "parameter gradient vs central differences: {worst:.2e}");

    // d/dh_k of E = g_k + λ sign(h_k) where h_k is away from 0.
    let gh = p.code_gradient(&x, &h).unwrap();
    let mut worst_h = 0f64;
    for i in 0..rows * m {
        let hk = h.as_slice()[i];
        if hk.abs() < 0.05 {
            continue;
        }
        let e_at = |v: f32| {
            let mut hh = h.clone();
            hh.as_mut_slice()[i] = v;
            p.energy(&x, &hh).unwrap()[i / m]
        };
        let fd = (e_at(hk + eps) - e_at(hk - eps)) / (2.0 * eps as f64);
        let want = gh.as_slice()[i] as f64 + spec.lambda as f64 * (hk as f64).signum();
        worst_h = worst_h.max((fd - want).abs() / (1.0 + fd.abs()));
    }
    eprintln!("code gradient: worst relative error {worst_h:.2e}");
    // Measured 1.1e-5 (E is quadratic in h away from 0: the differences are exact up to f32).
    assert!(worst_h < 1e-3, "code gradient vs central differences: {worst_h:.2e}");
}

/// The relative distance ||f(x) - h*|| / ||h*|| between the encoder's codes and the optimised
/// ones over rows.
fn prediction_gap(p: &Psd, x: &Matrix, coding: &SparseCoding) -> (f64, Matrix, Matrix) {
    let h = p.encode_optimized(x, coding).unwrap();
    let f = p.encode(x).unwrap();
    (dist(f.as_slice(), h.as_slice()) / sum_sq(h.as_slice()).sqrt(), f, h)
}

/// PSD on the digits, 2x overcomplete (64 pixels, 128 atoms), λ = 0.5, α = 1: trained on 1500
/// rows for 10 epochs, measured on the other 297. The encoder's fast codes approach the
/// optimised ones, both are sparse, and the optimised codes reconstruct the digits well.
#[test]
fn trained_on_digits_the_encoder_predicts_sparse_codes_that_reconstruct() {
    let Some(x) = digits() else { return };
    let (train, test) = (x.slice_rows(0, 1500), x.slice_rows(1500, 297));
    let mut p = Psd::new(PsdSpec { lambda: 0.5, alpha: 1.0, seed: 0, ..PsdSpec::new(64, 128) }).unwrap();
    let coding = SparseCoding { iterations: 200, tolerance: 1e-5 };
    let (gap0, f0, _) = prediction_gap(&p, &test, &coding);
    let small = |f: &Matrix| f.as_slice().iter().filter(|v| v.abs() < 0.1).count() as f64 / f.as_slice().len() as f64;
    let small0 = small(&f0);
    let cfg = PsdConfig { epochs: 10, batch_size: 32, learning_rate: 3e-3, seed: 1, threads: 2, ..Default::default() };
    let history = p.fit(&train, &cfg).unwrap();
    let (e0, e9) = (history[0].energy, history[9].energy);
    let (gap, f, h) = prediction_gap(&p, &test, &coding);
    let zeros = h.as_slice().iter().filter(|&&v| v == 0.0).count() as f64 / h.as_slice().len() as f64;
    let small1 = small(&f);
    let rows = test.rows() as f64;
    let err = |r: &Matrix| dist(r.as_slice(), test.as_slice()).powi(2) / rows;
    let rec_h = err(&p.decode(&h).unwrap());
    let rec_f = err(&p.reconstruct(&test).unwrap());
    // The bar: the test digits' variance about their mean pixel, per row.
    let mean: Vec<f64> = (0..64).map(|j| (0..test.rows()).map(|i| test.row(i)[j] as f64).sum::<f64>() / rows).collect();
    let var = (0..test.rows())
        .map(|i| test.row(i).iter().zip(&mean).map(|(&a, m)| (a as f64 - m).powi(2)).sum::<f64>())
        .sum::<f64>()
        / rows;
    eprintln!(
        "PSD digits 64->128: training energy {e0:.3} -> {e9:.3}; test: ||f-h*||/||h*|| {gap0:.3} -> {gap:.3}, \
         zeros in h* {zeros:.3}, |f| < 0.1 {small0:.3} -> {small1:.3}, squared error per row from h* {rec_h:.3} \
         (from f {rec_f:.3}; variance {var:.3})"
    );
    // Measured (2 threads): energy 7.51 -> 3.27; gap 1.428 -> 0.418; zeros 0.693; |f| < 0.1:
    // 0.320 -> 0.845; squared error per row from h* 0.814, from f 0.804, variance 4.623.
    assert!(e9 < 0.5 * e0, "training energy {e0:.3} -> {e9:.3}");
    assert!(gap < 0.5, "the encoder's codes are {gap:.3} (relative) from the optimised ones");
    assert!(gap < 0.4 * gap0, "the gap fell only from {gap0:.3} to {gap:.3}");
    assert!(zeros > 0.6, "only {zeros:.3} of the optimised codes are exactly 0");
    assert!(small1 > 0.75 && small1 > 2.0 * small0, "|f(x)| < 0.1 for {small0:.3} -> {small1:.3} of the entries");
    assert!(rec_h < 1.0 && rec_h < 0.25 * var, "squared error per row {rec_h:.3} from h* (variance {var:.3})");
    assert!(rec_f < 0.3 * var, "squared error per row {rec_f:.3} from f(x)");
}

/// The C API: the same seed gives the Rust API's model, fit, codes and reconstructions
/// bit for bit; parameters round-trip; bad input gets the documented status.
#[test]
fn c_api_matches_the_rust_api_and_refuses_bad_input() {
    let mut rng = Rng::new(3, 9);
    let (n, m, rows) = (8, 12, 40);
    let x = common::random_matrix(rows, n, 0.0, 1.0, &mut rng);
    unsafe {
        let mut psd = null_mut();
        assert_eq!(latent_psd_new(n, m, 0.2, 1.0, 7, &mut psd), LATENT_STATUS_OK, "{}", last_error());
        assert_eq!((latent_psd_input_dim(psd), latent_psd_code_dim(psd)), (n, m));
        let mut count = 0;
        assert_eq!(latent_psd_param_count(psd, &mut count), LATENT_STATUS_OK);
        assert_eq!(count, 2 * n * m + 2 * m);

        let mut ds = null_mut();
        let st = latent_dataset_from_buffer(
            x.as_slice().as_ptr().cast(),
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            rows,
            n,
            &mut ds,
        );
        assert_eq!(st, LATENT_STATUS_OK);
        let mut objective = 0.0;
        assert_eq!(latent_psd_fit(psd, ds, 3, 8, 1e-2, 4, &mut objective), LATENT_STATUS_OK, "{}", last_error());

        let mut r = Psd::new(PsdSpec { lambda: 0.2, alpha: 1.0, seed: 7, ..PsdSpec::new(n, m) }).unwrap();
        let cfg = PsdConfig { epochs: 3, batch_size: 8, learning_rate: 1e-2, seed: 4, ..Default::default() };
        let hist = r.fit(&x, &cfg).unwrap();
        assert_eq!(objective, hist[2].energy);
        let mut params = vec![0f32; count];
        assert_eq!(latent_psd_get_params(psd, params.as_mut_ptr(), count), LATENT_STATUS_OK);
        assert_eq!(params, r.params());

        let mut codes = vec![0f32; rows * m];
        assert_eq!(latent_psd_encode(psd, x.as_slice().as_ptr(), rows, n, codes.as_mut_ptr(), codes.len()), 0);
        assert_eq!(codes, r.encode(&x).unwrap().as_slice());
        let st =
            latent_psd_encode_optimized(psd, x.as_slice().as_ptr(), rows, n, 50, 1e-5, codes.as_mut_ptr(), codes.len());
        assert_eq!(st, LATENT_STATUS_OK);
        let hs = r.encode_optimized(&x, &SparseCoding { iterations: 50, tolerance: 1e-5 }).unwrap();
        assert_eq!(codes, hs.as_slice());
        let mut rec = vec![0f32; rows * n];
        assert_eq!(latent_psd_decode(psd, codes.as_ptr(), rows, m, rec.as_mut_ptr(), rec.len()), 0);
        assert_eq!(rec, r.decode(&hs).unwrap().as_slice());
        assert_eq!(latent_psd_reconstruct(psd, x.as_slice().as_ptr(), rows, n, 0, rec.as_mut_ptr(), rec.len()), 0);
        assert_eq!(rec, r.reconstruct(&x).unwrap().as_slice());
        assert_eq!(latent_psd_reconstruct(psd, x.as_slice().as_ptr(), rows, n, 30, rec.as_mut_ptr(), rec.len()), 0);
        let h30 = r.encode_optimized(&x, &SparseCoding { iterations: 30, tolerance: 1e-4 }).unwrap();
        assert_eq!(rec, r.decode(&h30).unwrap().as_slice());

        // Parameters round-trip through set_params.
        params[0] += 0.25;
        assert_eq!(latent_psd_set_params(psd, params.as_ptr(), count), LATENT_STATUS_OK);
        let mut back = vec![0f32; count];
        assert_eq!(latent_psd_get_params(psd, back.as_mut_ptr(), count), LATENT_STATUS_OK);
        assert_eq!(back, params);

        // Bad input: exact statuses, and the message says what was wrong.
        let mut other = std::ptr::dangling_mut();
        assert_eq!(latent_psd_new(0, m, 0.2, 1.0, 0, &mut other), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(other.is_null() && last_error().contains("input_dim"), "{}", last_error());
        assert_eq!(latent_psd_new(n, m, -1.0, 1.0, 0, &mut other), LATENT_STATUS_INVALID_ARGUMENT);
        assert!(last_error().contains("lambda"), "{}", last_error());
        assert_eq!(latent_psd_new(n, m, 0.2, f64::NAN, 0, &mut other), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_psd_new(n, m, 0.2, 1.0, 0, null_mut()), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_psd_encode(null(), x.as_slice().as_ptr(), rows, n, codes.as_mut_ptr(), codes.len()), 1);
        let st = latent_psd_encode(psd, x.as_slice().as_ptr(), rows, n - 1, codes.as_mut_ptr(), codes.len());
        assert_eq!(st, LATENT_STATUS_SHAPE_MISMATCH);
        let st = latent_psd_encode(psd, x.as_slice().as_ptr(), rows, n, codes.as_mut_ptr(), codes.len() - 1);
        assert_eq!(st, LATENT_STATUS_BUFFER_TOO_SMALL);
        let st = latent_psd_encode_optimized(psd, x.as_slice().as_ptr(), rows, n, 10, -1.0, codes.as_mut_ptr(), 0);
        assert_eq!(st, LATENT_STATUS_INVALID_ARGUMENT, "the tolerance is checked first");
        assert!(last_error().contains("tolerance"), "{}", last_error());
        let st =
            latent_psd_encode_optimized(psd, x.as_slice().as_ptr(), rows, n, 2_000_000, 0.0, codes.as_mut_ptr(), 0);
        assert_eq!(st, LATENT_STATUS_INVALID_ARGUMENT);
        let mut bad = x.as_slice().to_vec();
        bad[5] = f32::NAN;
        let st = latent_psd_encode(psd, bad.as_ptr(), rows, n, codes.as_mut_ptr(), codes.len());
        assert_eq!(st, LATENT_STATUS_NON_FINITE);
        assert_eq!(latent_psd_set_params(psd, params.as_ptr(), count - 1), LATENT_STATUS_SHAPE_MISMATCH);
        assert_eq!(latent_psd_fit(psd, ds, 0, 8, 1e-2, 0, null_mut()), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_psd_fit(psd, ds, 1, 8, f64::INFINITY, 0, null_mut()), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(latent_psd_fit(psd, null(), 1, 8, 1e-2, 0, null_mut()), LATENT_STATUS_NULL_ARGUMENT);
        let mut narrow = null_mut();
        let st = latent_dataset_from_buffer(
            x.as_slice().as_ptr().cast(),
            LATENT_DTYPE_F32,
            LATENT_LAYOUT_ROW_MAJOR,
            10,
            5,
            &mut narrow,
        );
        assert_eq!(st, LATENT_STATUS_OK);
        let mut obj = 0.0;
        assert_eq!(latent_psd_fit(psd, narrow, 1, 8, 1e-2, 0, &mut obj), LATENT_STATUS_SHAPE_MISMATCH);
        assert!(obj.is_nan() && last_error().contains("5 columns"), "{}", last_error());
        // A failed fit changed nothing.
        assert_eq!(latent_psd_get_params(psd, back.as_mut_ptr(), count), LATENT_STATUS_OK);
        assert_eq!(back, params);
        latent_dataset_free(narrow);
        latent_dataset_free(ds);
        latent_psd_free(psd);
        latent_psd_free(null_mut());
        assert_eq!(latent_psd_input_dim(null()), 0);
    }
}

/// The fenced block of `lang` in docs/psd_recirculation.md (exactly one).
fn doc_block(lang: &str) -> String {
    let doc = std::fs::read_to_string(common::root().join("docs/psd_recirculation.md")).unwrap();
    let fence = format!("```{lang}\n");
    let blocks: Vec<&str> = doc.split(&fence).skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 1, "docs/psd_recirculation.md should have one ```{lang} block");
    blocks[0].to_string()
}

/// The numbers the doc's programs print: the share of zero codes (%) and the recirculation MSE.
fn doc_output_numbers(out: &str) -> (f64, f64) {
    let zeros = out.split("per row; ").nth(1).and_then(|s| s.split('%').next()).map(|s| s.trim().parse().unwrap());
    let mse = out.split("reconstruction MSE ").nth(1).map(|s| s.trim().parse().unwrap());
    (zeros.unwrap_or_else(|| panic!("{out}")), mse.unwrap_or_else(|| panic!("{out}")))
}

/// docs/psd_recirculation.md: the C block compiles against the header and runs, the Python
/// block runs; both train PSD and recirculation on the digits.
#[test]
fn doc_code_blocks_compile_and_run() {
    use std::process::Command;
    if common::data_dir("digits").is_none() {
        return;
    }
    let dir = common::scratch("psd_doc");
    let src = dir.join("psd.c");
    std::fs::write(&src, doc_block("c")).unwrap();
    let exe = dir.join("psd");
    common::compile_c(&[src], &exe, &[]);
    let (code, out, err) = common::run(Command::new(&exe).current_dir(&dir));
    assert_eq!(code, 0, "the C block failed:\n{out}\n{err}");
    eprint!("C: {out}");
    // Measured: 72% zeros, MSE 0.0182 (all 1797 digits, min-max scaled; Python, network seed 3:
    // 72%, 0.0190).
    let (zeros, mse) = doc_output_numbers(&out);
    assert!(zeros > 50.0 && mse < 0.03, "{out}");
    let probe = Command::new("python3").args(["-c", "import numpy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        common::skip("python3 with numpy", "pip install numpy");
        return;
    }
    let script = dir.join("psd.py");
    std::fs::write(&script, doc_block("python")).unwrap();
    let lib = common::lib_dir().join("liblatent.so");
    let (code, out, err) = common::run(
        Command::new("python3")
            .arg(&script)
            .current_dir(&dir)
            .env("PYTHONPATH", common::root().join("python"))
            .env("LATENT_LIBRARY", lib)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
    assert_eq!(code, 0, "the Python block failed:\n{out}\n{err}");
    eprint!("Python: {out}");
    let (zeros, mse) = doc_output_numbers(&out);
    assert!(zeros > 50.0 && mse < 0.03, "{out}");
}
