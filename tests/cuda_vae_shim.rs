//! The VAE's CUDA kernels (src/backend/cuda/vae.cu) run on the CPU through the host shim
//! (tests/cuda_shim/shim.h, driver tests/cuda_shim/vae_driver.cpp compiled here with the system
//! C++ compiler and loaded with dlopen), compared with the CPU VAE on random inputs:
//! - reconstruction NLL and gradients of every `DistKind` and a composite against
//!   `Reconstruction::nll_row`;
//! - the closed-form KL and its gradient against vae.rs's formulas (`Vae::kl_sum`, the KL lines of
//!   `Vae::step`) in f64, and against a whole `Vae::step` (the head's bias gradient as a function
//!   of beta);
//! - the backward through z = mu + sigma eps against vae.rs's loop in `Vae::step` in f64;
//! - the reparameterisation: z from the kernel's eps, eps standard normal and reproducible.
//!
//! Tolerance: relative 1e-4, where an element's error is |gpu - cpu| / max(|cpu|, 1e-3 max|cpu|)
//! (the floor keeps f32 cancellation in entries near zero from counting as relative error).

use std::ffi::{CString, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use latent::activation::Activation;
use latent::distribution::{DistKind, Part, Reconstruction};
use latent::rng::Rng;
use latent::vae::{Posterior, Vae, VaeSpec};

const TOL: f64 = 1e-4;
/// Small odd grids, so the grid-stride loops wrap.
const GRID: i32 = 3;
const BLOCK: i32 = 64;

type ReparamFn =
    unsafe extern "C" fn(i32, i32, *const f32, *mut f32, *mut f32, i32, i32, i32, i32, f32, u64, u64, i32, i32);
type KlFn = unsafe extern "C" fn(i32, i32, *const f32, *mut f32, *mut f32, i32, i32, i32, f32, f32);
type BackFn = unsafe extern "C" fn(
    i32,
    i32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *mut f32,
    i32,
    i32,
    i32,
    i32,
    f32,
    i32,
);
type ReconFn = unsafe extern "C" fn(
    i32,
    i32,
    *const f32,
    *const f32,
    *const f32,
    *const i32,
    i32,
    *mut f32,
    *mut f32,
    *mut f32,
    i32,
    i32,
    i32,
    i32,
    f32,
);
type FieldsFn = unsafe extern "C" fn() -> i32;

struct Driver {
    reparam: ReparamFn,
    kl: KlFn,
    backward: BackFn,
    recon: ReconFn,
    part_fields: usize,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles the driver into a fresh temporary directory and loads it (once per test process).
fn driver() -> &'static Driver {
    static D: OnceLock<Driver> = OnceLock::new();
    D.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("latent-cuda-vae-shim-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lib = dir.join("libvae_driver.so");
        let src = root().join("tests/cuda_shim/vae_driver.cpp");
        let out = Command::new("c++")
            .args(["-O2", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror"])
            .arg(&src)
            .arg("-o")
            .arg(&lib)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run the C++ compiler `c++` ({e}): this test compiles the CUDA kernels as C++ through \
                     tests/cuda_shim/shim.h; install g++ or clang++"
                )
            });
        assert!(
            out.status.success(),
            "c++ failed to compile {}:\n{}{}",
            src.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let d = unsafe { load(&lib) };
        // Loaded: the file may go (Linux keeps the mapping).
        let _ = std::fs::remove_dir_all(&dir);
        d
    })
}

unsafe fn load(lib: &Path) -> Driver {
    let path = CString::new(lib.to_str().unwrap()).unwrap();
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        let e = unsafe { std::ffi::CStr::from_ptr(libc::dlerror()) };
        panic!("dlopen {}: {}", lib.display(), e.to_string_lossy());
    }
    let sym = |name: &str| -> *mut c_void {
        let c = CString::new(name).unwrap();
        let p = unsafe { libc::dlsym(h, c.as_ptr()) };
        assert!(!p.is_null(), "{name} is missing from the driver");
        p
    };
    unsafe {
        let fields: FieldsFn = std::mem::transmute(sym("drv_vae_part_fields"));
        Driver {
            reparam: std::mem::transmute::<*mut c_void, ReparamFn>(sym("drv_vae_reparam")),
            kl: std::mem::transmute::<*mut c_void, KlFn>(sym("drv_vae_kl")),
            backward: std::mem::transmute::<*mut c_void, BackFn>(sym("drv_vae_reparam_backward")),
            recon: std::mem::transmute::<*mut c_void, ReconFn>(sym("drv_vae_recon")),
            part_fields: fields() as usize,
        }
    }
}

/// Worst relative error of `got` against `want` (module doc); infinite on a NaN or a length
/// mismatch, so that unwritten (NaN-filled) outputs fail.
fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let floor = (1e-3 * scale).max(1e-30);
    let mut worst = 0f64;
    for (g, w) in got.iter().zip(want) {
        let e = (g - w).abs() / w.abs().max(floor);
        if e.is_nan() {
            return f64::INFINITY;
        }
        worst = worst.max(e);
    }
    worst
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn check(what: &str, err: f64) {
    println!("  {what:<58} worst rel err {err:.3e}");
    assert!(err <= TOL, "{what}: worst relative error {err:e} > {TOL:e}");
}

fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.uniform()
}

// ---- reconstruction ----------------------------------------------------------------------------

/// The kernel's part table: {kind, activation, data col, pre col, size, extra index, gcol, 0}
/// per part, as Reconstruction's private `layout` walks them. Returns (table, G).
fn part_table(rec: &Reconstruction, fields: usize) -> (Vec<i32>, usize) {
    let (mut c, mut p, mut e, mut g) = (0usize, 0usize, 0usize, 0usize);
    let mut t = Vec::new();
    for part in &rec.parts {
        let global = part.kind == DistKind::GaussianGlobal;
        let mut row = vec![
            part.kind.code(),
            part.activation.code(),
            c as i32,
            p as i32,
            part.size as i32,
            if global { e as i32 } else { 0 },
            if global { g as i32 } else { 0 },
        ];
        row.resize(fields, 0);
        t.extend(row);
        c += part.size;
        p += part.size * if part.kind == DistKind::Gaussian { 2 } else { 1 };
        if global {
            e += 1;
            g += part.size;
        }
    }
    (t, g)
}

/// A target value a part's distribution could have produced.
fn target(rng: &mut Rng, part: &Part) -> f32 {
    match part.kind {
        DistKind::Bernoulli => (rng.uniform() < 0.4) as u8 as f32,
        DistKind::Exponential => -(1.0 - rng.uniform_f64()).ln() as f32,
        DistKind::Mse if part.activation == Activation::Sigmoid => rng.uniform(),
        _ => 1.3 * rng.normal(),
    }
}

/// Runs lat_vae_recon over `rows` examples x `samples` stacked draws and compares the per-row
/// NLL, dNLL/dpre and the global log-variances' gradient with nll_row. Returns the worst error.
fn check_recon(name: &str, rec: &Reconstruction, seed: u64) -> f64 {
    let drv = driver();
    let (rows, samples) = (7usize, 3usize);
    let n = rows * samples;
    let (d, p) = (rec.data_width(), rec.param_width());
    rec.validate(d).unwrap();
    let mut rng = Rng::new(seed, 99);
    let mut x = vec![0f32; rows * d];
    for r in 0..rows {
        let mut c = 0;
        for part in &rec.parts {
            for _ in 0..part.size {
                x[r * d + c] = target(&mut rng, part);
                c += 1;
            }
        }
    }
    let pre: Vec<f32> = (0..n * p).map(|_| uniform(&mut rng, -2.0, 2.0)).collect();
    let extra: Vec<f32> = (0..rec.extra_params()).map(|_| uniform(&mut rng, -1.0, 1.0)).collect();
    let scale = 1.0 / n as f32;

    // CPU: as Vae::recon_nll, stacked row i against example i % rows.
    let mut nll_cpu = vec![0f64; n];
    let mut dpre_cpu = vec![0f32; n * p];
    let mut dextra_cpu = vec![0f64; extra.len()];
    for i in 0..n {
        let xr = &x[(i % rows) * d..(i % rows + 1) * d];
        let g = Some((&mut dpre_cpu[i * p..(i + 1) * p], &mut dextra_cpu[..], scale));
        nll_cpu[i] = rec.nll_row(xr, &pre[i * p..(i + 1) * p], &extra, g);
    }

    // Kernel; outputs start as NaN so that an unwritten entry fails.
    let (table, g) = part_table(rec, drv.part_fields);
    let mut rec_el = vec![f32::NAN; n * d];
    let mut dpre = vec![f32::NAN; n * p];
    let mut glob = vec![f32::NAN; n * g];
    unsafe {
        (drv.recon)(
            GRID,
            BLOCK,
            x.as_ptr(),
            pre.as_ptr(),
            extra.as_ptr(),
            table.as_ptr(),
            rec.parts.len() as i32,
            rec_el.as_mut_ptr(),
            dpre.as_mut_ptr(),
            glob.as_mut_ptr(),
            n as i32,
            rows as i32,
            d as i32,
            p as i32,
            scale,
        );
    }
    let nll_gpu: Vec<f64> = (0..n).map(|i| rec_el[i * d..(i + 1) * d].iter().map(|&v| v as f64).sum()).collect();
    let mut dextra_gpu = Vec::new();
    let mut gcol = 0;
    for part in rec.parts.iter().filter(|p| p.kind == DistKind::GaussianGlobal) {
        dextra_gpu.push(glob[gcol * n..(gcol + part.size) * n].iter().map(|&v| v as f64).sum::<f64>());
        gcol += part.size;
    }
    println!("{name}: {} ({} rows x {} samples, D {d}, P {p})", rec.describe(), rows, samples);
    let total = |v: &[f64]| v.iter().sum::<f64>();
    let e1 = rel_err(&nll_gpu, &nll_cpu);
    let e2 = rel_err(&[total(&nll_gpu)], &[total(&nll_cpu)]);
    let e3 = rel_err(&f64s(&dpre), &f64s(&dpre_cpu));
    let e4 = rel_err(&dextra_gpu, &dextra_cpu);
    check("NLL per row vs nll_row", e1);
    check("NLL sum", e2);
    check("dNLL/dpre", e3);
    if !extra.is_empty() {
        check("dNLL/d global log-variance (sum of glob_el ranges)", e4);
    }
    [e1, e2, e3, e4].into_iter().fold(0.0, f64::max)
}

#[test]
fn recon_matches_nll_row_for_every_distribution() {
    use Activation::*;
    use DistKind::*;
    let d = 37;
    let singles = [
        (Bernoulli, Sigmoid),
        (Gaussian, Identity),
        (Gaussian, Tanh),
        (Gaussian, Gelu),
        (GaussianGlobal, Identity),
        (GaussianGlobal, Sigmoid),
        (Exponential, Identity),
        (Exponential, Softplus),
        (Mse, Identity),
        (Mse, Sigmoid),
        (Mse, LeakyRelu),
    ];
    let mut worst = 0f64;
    for (k, (kind, act)) in singles.into_iter().enumerate() {
        let rec = Reconstruction::single(kind, act, d);
        worst = worst.max(check_recon(&format!("single {}", kind.name()), &rec, 10 + k as u64));
    }
    let part = |size, kind, activation| Part { size, kind, activation };
    let composite = Reconstruction {
        parts: vec![
            part(6, Bernoulli, Sigmoid),
            part(5, Gaussian, Tanh),
            part(4, GaussianGlobal, Identity),
            part(3, Exponential, Identity),
            part(3, GaussianGlobal, Sigmoid),
            part(4, Mse, Relu),
            part(2, Gaussian, Elu),
            part(1, Bernoulli, Sigmoid),
        ],
    };
    worst = worst.max(check_recon("composite", &composite, 7));
    println!("reconstruction: worst relative error over all distributions {worst:.3e}");
}

// ---- KL ----------------------------------------------------------------------------------------

/// A random head output (rows x hw) for `posterior`.
fn random_head(rng: &mut Rng, rows: usize, latent: usize, learned: bool) -> Vec<f32> {
    let hw = if learned { 2 * latent } else { latent };
    let mut h = vec![0f32; rows * hw];
    for r in 0..rows {
        for j in 0..latent {
            h[r * hw + j] = 1.2 * rng.normal();
            if learned {
                h[r * hw + latent + j] = uniform(rng, -3.0, 2.0);
            }
        }
    }
    h
}

/// (mu, lv) of example r's unit j: Vae::posterior (src/vae.rs).
fn posterior(head: &[f32], r: usize, j: usize, latent: usize, learned: bool, const_lv: f32) -> (f64, f64) {
    if learned {
        (head[r * 2 * latent + j] as f64, head[r * 2 * latent + latent + j] as f64)
    } else {
        (head[r * latent + j] as f64, const_lv as f64)
    }
}

#[test]
fn kl_matches_vae_formulas() {
    let drv = driver();
    let (rows, latent, beta) = (37usize, 5usize, 0.7f32);
    let mut rng = Rng::new(3, 1);
    let mut worst = 0f64;
    for (learned, const_lv) in [(true, 0.0f32), (false, -1.3f32)] {
        let hw = if learned { 2 * latent } else { latent };
        let head = random_head(&mut rng, rows, latent, learned);
        let mut el = vec![f32::NAN; rows * latent];
        // one guard entry past the end: a constant posterior's dhead is rows x J
        let mut dhead = vec![f32::NAN; rows * hw + 1];
        let guard = dhead.len() - 1;
        dhead[guard] = 12345.0;
        unsafe {
            (drv.kl)(
                GRID,
                BLOCK,
                head.as_ptr(),
                el.as_mut_ptr(),
                dhead.as_mut_ptr(),
                rows as i32,
                latent as i32,
                learned as i32,
                const_lv,
                beta,
            );
        }
        assert_eq!(dhead[guard], 12345.0, "lat_vae_kl wrote past dhead");
        // src/vae.rs Vae::kl_sum: kl += 0.5 (mu^2 + e^lv - 1 - lv); Vae::step: kl_scale = beta / rows,
        // dmu = kl_scale mu, dlv = kl_scale 0.5 (sigma^2 - 1) with sigma = e^(lv/2).
        let kl_scale = beta as f64 / rows as f64;
        let mut want_el = vec![0f64; rows * latent];
        let mut want_d = vec![0f64; rows * hw];
        for r in 0..rows {
            for j in 0..latent {
                let (mu, lv) = posterior(&head, r, j, latent, learned, const_lv);
                want_el[r * latent + j] = 0.5 * (mu * mu + lv.exp() - 1.0 - lv);
                want_d[r * hw + j] = kl_scale * mu;
                if learned {
                    want_d[r * hw + latent + j] = kl_scale * 0.5 * (lv.exp() - 1.0);
                }
            }
        }
        let label = if learned { "learned" } else { "constant" };
        println!("KL, {label} posterior ({rows} rows, J {latent}, beta {beta})");
        let e = [
            rel_err(&f64s(&el), &want_el),
            rel_err(&[f64s(&el).iter().sum()], &[want_el.iter().sum()]),
            rel_err(&f64s(&dhead[..rows * hw]), &want_d),
        ];
        check("KL per element", e[0]);
        check("KL sum (Vae::kl_sum)", e[1]);
        check("dKL/dhead (beta/rows scaled)", e[2]);
        worst = e.into_iter().fold(worst, f64::max);
    }
    println!("KL: worst relative error {worst:.3e}");
}

/// The KL gradient against a whole Vae::step: with the same noise, the step's gradient is affine
/// in beta, and the head's bias gradient moves by sum_r dKL/dhead_r (identity pzx activation).
/// So grads(beta_b) - grads(beta_a) of the head bias = the kernel's dhead at beta_b - beta_a,
/// summed over rows, with the head (mu, lv) from Vae::encode.
#[test]
fn kl_gradient_matches_vae_step() {
    let drv = driver();
    let (rows, input, latent) = (16usize, 6usize, 3usize);
    let mut spec = VaeSpec::new(input, &[8], latent, &[8], Activation::Tanh);
    spec.reconstruction = Reconstruction::single(DistKind::Gaussian, Activation::Identity, input);
    spec.num_samples = 2;
    spec.seed = 5;
    let mut rng = Rng::new(8, 2);
    for (learned, post) in [(true, Posterior::Learned), (false, Posterior::Constant { log_variance: -0.8 })] {
        spec.posterior = post;
        let mut vae = Vae::new(spec.clone()).unwrap();
        // spread the head's outputs (bigger head weights) so the KL gradient is not tiny
        let head = &vae.layers()[1];
        let (w0, w1) = (head.w, head.b + head.n_out);
        let mut p = vae.params().to_vec();
        for v in &mut p[w0..w1] {
            *v = 0.8 * rng.normal();
        }
        vae.set_params(&p).unwrap();
        let x: Vec<f32> = (0..rows * input).map(|_| rng.normal()).collect();
        let (beta_a, beta_b) = (0.0f32, 4.0f32);
        let mut ga = vec![0f32; vae.param_count()];
        let mut gb = vec![0f32; vae.param_count()];
        let draws = latent::rng::StepDraws::whole(1, 1, rows);
        vae.step(&x, rows, &mut ga, 1, draws, beta_a);
        vae.step(&x, rows, &mut gb, 1, draws, beta_b);
        let hl = &vae.layers()[1];
        let want: Vec<f64> = (0..hl.n_out).map(|k| gb[hl.b + k] as f64 - ga[hl.b + k] as f64).collect();

        let (mean, logvar) = vae.encode(&latent::Matrix::from_vec(rows, input, x.clone()).unwrap()).unwrap();
        let hw = hl.n_out;
        let mut headv = vec![0f32; rows * hw];
        for r in 0..rows {
            for j in 0..latent {
                headv[r * hw + j] = mean.as_slice()[r * latent + j];
                if learned {
                    headv[r * hw + latent + j] = logvar.as_slice()[r * latent + j];
                }
            }
        }
        let mut el = vec![0f32; rows * latent];
        let mut dhead = vec![0f32; rows * hw];
        unsafe {
            (drv.kl)(
                GRID,
                BLOCK,
                headv.as_ptr(),
                el.as_mut_ptr(),
                dhead.as_mut_ptr(),
                rows as i32,
                latent as i32,
                learned as i32,
                -0.8,
                beta_b - beta_a,
            );
        }
        let got: Vec<f64> = (0..hw).map(|k| (0..rows).map(|r| dhead[r * hw + k] as f64).sum()).collect();
        let label = if learned { "learned" } else { "constant" };
        println!(
            "KL gradient vs Vae::step, {label} posterior: head bias gradient difference, beta {beta_a} -> {beta_b}"
        );
        // f32 gradients of a whole step: their difference carries the step's rounding.
        let e = rel_err(&got, &want);
        println!("  {:<58} worst rel err {e:.3e}", "sum_r dhead vs d(head bias grad)");
        assert!(e <= 1e-3, "KL gradient vs Vae::step: {e:e}");
    }
}

// ---- reparameterisation ------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn run_reparam(
    grid: i32,
    block: i32,
    head: &[f32],
    rows: usize,
    samples: usize,
    latent: usize,
    learned: bool,
    const_lv: f32,
    seed: u64,
    ctr: u64,
) -> (Vec<f32>, Vec<f32>) {
    run_reparam_at(grid, block, head, rows, samples, latent, learned, const_lv, seed, ctr, 0, rows)
}

/// [`run_reparam`] of rows that start at row `first` of a minibatch of `batch` rows (a shard).
#[allow(clippy::too_many_arguments)]
fn run_reparam_at(
    grid: i32,
    block: i32,
    head: &[f32],
    rows: usize,
    samples: usize,
    latent: usize,
    learned: bool,
    const_lv: f32,
    seed: u64,
    ctr: u64,
    first: usize,
    batch: usize,
) -> (Vec<f32>, Vec<f32>) {
    let n = rows * samples * latent;
    let (mut eps, mut z) = (vec![f32::NAN; n], vec![f32::NAN; n]);
    unsafe {
        (driver().reparam)(
            grid,
            block,
            head.as_ptr(),
            eps.as_mut_ptr(),
            z.as_mut_ptr(),
            rows as i32,
            samples as i32,
            latent as i32,
            learned as i32,
            const_lv,
            seed,
            ctr,
            first as i32,
            batch as i32,
        );
    }
    (eps, z)
}

#[test]
fn reparam_is_mu_plus_sigma_eps() {
    let (rows, samples, latent) = (9usize, 4usize, 5usize);
    let mut rng = Rng::new(4, 4);
    for (learned, const_lv) in [(true, 0.0f32), (false, 0.9f32)] {
        let head = random_head(&mut rng, rows, latent, learned);
        let (eps, z) = run_reparam(GRID, BLOCK, &head, rows, samples, latent, learned, const_lv, 77, 3);
        // src/vae.rs Vae::reparameterise: draw l of row r at stacked row l * rows + r,
        // z = mu + exp(0.5 lv) eps.
        let mut want = vec![0f64; z.len()];
        for l in 0..samples {
            for r in 0..rows {
                for j in 0..latent {
                    let (mu, lv) = posterior(&head, r, j, latent, learned, const_lv);
                    let k = (l * rows + r) * latent + j;
                    want[k] = mu + (0.5 * lv).exp() * eps[k] as f64;
                }
            }
        }
        let label = if learned { "learned" } else { "constant" };
        check(&format!("reparameterisation z = mu + sigma eps ({label})"), rel_err(&f64s(&z), &want));
        assert!(eps.iter().all(|e| e.is_finite()));
    }
}

#[test]
fn reparam_noise_is_standard_normal_and_reproducible() {
    let (rows, samples, latent) = (1000usize, 20usize, 5usize);
    let head = vec![0f32; rows * 2 * latent]; // mu = 0, lv = 0: z = eps
    let (eps, z) = run_reparam(GRID, BLOCK, &head, rows, samples, latent, true, 0.0, 2024, 11);
    assert_eq!(eps, z);
    let n = eps.len() as f64;
    let mean = eps.iter().map(|&e| e as f64).sum::<f64>() / n;
    let var = eps.iter().map(|&e| (e as f64 - mean).powi(2)).sum::<f64>() / n;
    let m4 = eps.iter().map(|&e| (e as f64 - mean).powi(4)).sum::<f64>() / n;
    println!("eps over {n} draws: mean {mean:.4}, variance {var:.4}, fourth moment {m4:.3} (normal: 0, 1, 3)");
    assert!(mean.abs() < 0.02, "eps mean {mean}");
    assert!((var - 1.0).abs() < 0.03, "eps variance {var}");
    assert!((m4 - 3.0).abs() < 0.15, "eps fourth moment {m4}");

    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    // Same (seed, ctr): the same bits, on any grid.
    let (again, _) = run_reparam(GRID, BLOCK, &head, rows, samples, latent, true, 0.0, 2024, 11);
    assert_eq!(bits(&eps), bits(&again), "same seed and counter must repeat exactly");
    let (other_grid, _) = run_reparam(5, 32, &head, rows, samples, latent, true, 0.0, 2024, 11);
    assert_eq!(bits(&eps), bits(&other_grid), "the noise must not depend on the grid");
    // Another counter (the next step) or seed: different draws.
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).filter(|(x, y)| x.to_bits() == y.to_bits()).count();
    let (next, _) = run_reparam(GRID, BLOCK, &head, rows, samples, latent, true, 0.0, 2024, 12);
    let (seeded, _) = run_reparam(GRID, BLOCK, &head, rows, samples, latent, true, 0.0, 2025, 11);
    let (sn, ss) = (same(&eps, &next), same(&eps, &seeded));
    println!("equal draws: next counter {sn}, next seed {ss} of {n}");
    assert!(sn < 10 && ss < 10, "a different counter or seed must give different draws");
}

/// A shard's rows (rows 5..12 of a 12-row minibatch, 3 draws each) draw exactly the whole
/// minibatch's numbers for them: the kernel keys draw l of row r as draw l of row first + r.
#[test]
fn a_shards_reparam_draws_are_the_whole_minibatchs() {
    let (rows, samples, latent, first) = (12usize, 3usize, 4usize, 5usize);
    let mut rng = Rng::new(9, 9);
    let head: Vec<f32> = (0..rows * 2 * latent).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let (eps, z) = run_reparam(GRID, BLOCK, &head, rows, samples, latent, true, 0.0, 77, 5);
    let shard = rows - first;
    let part = &head[first * 2 * latent..];
    let (se, sz) = run_reparam_at(GRID, BLOCK, part, shard, samples, latent, true, 0.0, 77, 5, first, rows);
    for l in 0..samples {
        for r in 0..shard {
            for j in 0..latent {
                let (a, b) = ((l * shard + r) * latent + j, (l * rows + first + r) * latent + j);
                assert_eq!(se[a].to_bits(), eps[b].to_bits(), "draw {l}, row {r}, unit {j}");
                assert_eq!(sz[a].to_bits(), z[b].to_bits(), "z of draw {l}, row {r}, unit {j}");
            }
        }
    }
}

// ---- backward through z ------------------------------------------------------------------------

#[test]
fn reparam_backward_matches_vae_step() {
    let drv = driver();
    let (rows, samples, latent) = (11usize, 3usize, 4usize);
    let mut rng = Rng::new(6, 6);
    let cases = [
        (true, 0.0f32, Activation::Identity, false),
        (true, 0.0, Activation::Identity, true), // head_z null: identity needs no pre-activation
        (true, 0.0, Activation::Tanh, false),
        (true, 0.0, Activation::Gelu, false),
        (false, -0.4, Activation::Sigmoid, false),
        (false, 0.3, Activation::Identity, false),
    ];
    let mut worst = 0f64;
    for (learned, const_lv, act, null_z) in cases {
        let hw = if learned { 2 * latent } else { latent };
        let head_z = random_head(&mut rng, rows, latent, learned);
        let head_y: Vec<f32> = head_z.iter().map(|&v| act.apply(v)).collect();
        let n = rows * samples * latent;
        let dzs: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        let eps: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
        // dhead on entry: the KL gradient (any values)
        let init: Vec<f32> = (0..rows * hw).map(|_| 0.1 * rng.normal()).collect();
        let mut dhead = init.clone();
        dhead.push(12345.0); // guard
        unsafe {
            (drv.backward)(
                GRID,
                BLOCK,
                if null_z { std::ptr::null() } else { head_z.as_ptr() },
                head_y.as_ptr(),
                dzs.as_ptr(),
                eps.as_ptr(),
                dhead.as_mut_ptr(),
                rows as i32,
                samples as i32,
                latent as i32,
                learned as i32,
                const_lv,
                act.code(),
            );
        }
        assert_eq!(dhead[rows * hw], 12345.0, "lat_vae_reparam_backward wrote past dhead");
        // src/vae.rs Vae::step, "Through the reparameterisation to the head":
        // dmu = kl + sum_l cur[k], dlv = kl + sum_l cur[k] eps[k] sigma / 2, k = (l rows + r) J + j,
        // then the head activation's backward_in_place (d *= f'(z, y)).
        let mut want = vec![0f64; rows * hw];
        for r in 0..rows {
            for j in 0..latent {
                let (_, lv) = posterior(&head_y, r, j, latent, learned, const_lv);
                let sigma = (0.5 * lv).exp();
                let (mut dmu, mut dlv) =
                    (init[r * hw + j] as f64, if learned { init[r * hw + latent + j] as f64 } else { 0.0 });
                for l in 0..samples {
                    let k = (l * rows + r) * latent + j;
                    dmu += dzs[k] as f64;
                    dlv += dzs[k] as f64 * eps[k] as f64 * 0.5 * sigma;
                }
                let fd = |i: usize| act.derivative(head_z[i], head_y[i]) as f64;
                want[r * hw + j] = dmu * fd(r * hw + j);
                if learned {
                    want[r * hw + latent + j] = dlv * fd(r * hw + latent + j);
                }
            }
        }
        let label = format!(
            "d head, {} posterior, pzx {}{}",
            if learned { "learned" } else { "constant" },
            act.name(),
            if null_z { " (head_z null)" } else { "" }
        );
        let e = rel_err(&f64s(&dhead[..rows * hw]), &want);
        check(&label, e);
        worst = worst.max(e);
    }
    println!("backward through z: worst relative error {worst:.3e}");
}
