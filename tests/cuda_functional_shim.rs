//! The CUDA kernels of the functional-transfer layers (src/backend/cuda/functional.cu) run on the
//! CPU through the host shim (tests/cuda_shim/shim.h, driver tests/cuda_shim/functional_driver.cpp,
//! compiled here with the system C++ compiler and loaded with dlopen) and compared with the CPU
//! layer (`latent::layer::Functional`), so their indexing, layout, signs and formulas are checked
//! on machines without a GPU.
//!
//! For every family, two parameter draws (the layer's own `init` with a random bias, and a wide
//! U(−25, 25) draw that drives F05/F10/F11's ±30 clips, F08's upper clip, F06/F07's clip at 0 and
//! F06's mask), four shapes (one where rows·n_out exceeds every grid's threads, a 1×1×1 and an
//! empty batch) and three grids (3×64, 5×7 and 1×1, so the grid-stride loops wrap), the shim's
//! z, dθ, db and dx are compared with the CPU forward/backward element by element:
//!
//!   |shim − cpu| <= TOL · m,  m = Σ |terms of the element's sum| (in f64, terms from
//!   `Family::f` / `Family::df`; for z the bias's magnitude is one of the terms), where for
//!   F10..F13 and F16 each term also counts its size with its bounded factor (σ, σ(1 − σ), sin,
//!   cos, tanh, 1 − tanh²) at 1 (`bounded_sizes`).
//!
//! The scale m is what float rounding of the sum is proportional to: the two sides sum in different
//! orders (the CPU's dx is a lane tree) and use different transcendentals (the CPU's polynomial
//! exp_fast, sin_cos_fast, hyperbolic, tanh_fast against libm's expf, sinf, sinhf, tanhf), so each
//! term may differ by a few ulps of itself and the sums by ~n·ulp(m). The bounded factors are the
//! exception: sin_cos_fast and tanh_fast are accurate to ~1e-7 absolute, and 1 − σ and 1 − tanh²
//! cancel near saturation (one side's tanh is 1, the other's 1 − ulp: a term of 0 against ~1e-7·a),
//! so their terms are measured against the factor's bound. TOL = 1e-5 is ~30× the
//! worst error seen and still catches a wrong formula, sign or index (those err by O(m)).
//! A `|shim − cpu| <= 1e-4 max(1, |cpu|)` rule would pass almost anything here: the init draws'
//! values are 1e-2..1e-4. Outputs are also checked for being written in full and only in bounds
//! (NaN fill and guard words) and for being bit-identical across the grids.
//!
//! A second test compares the kernels' sign hash with `connection_sign` bit for bit.
//!
//! `cargo test --release --test cuda_functional_shim -- --nocapture` prints the worst error per
//! family. Needs a C++17 compiler as `c++` (or `$CXX`).

use std::ffi::{CString, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use latent::layer::functional::{Family, Functional, connection_sign};
use latent::rng::Rng;

const TOL: f64 = 1e-5;
const GRIDS: [(i32, i32); 3] = [(3, 64), (5, 7), (1, 1)];
/// (rows, n_in, n_out)
const SHAPES: [(usize, usize, usize); 4] = [(7, 13, 11), (9, 17, 23), (1, 1, 1), (0, 3, 4)];
const GUARD: usize = 8;
const GUARD_VALUE: f32 = 1234.5;

type ForwardFn = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, i32, i32, i32, i32, u64, i32, i32);
type ParamsFn =
    unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, *mut f32, i32, i32, i32, i32, u64, i32, i32);
type InputFn = unsafe extern "C" fn(*const f32, *const f32, *const f32, *mut f32, i32, i32, i32, i32, u64, i32, i32);
type SignFn = unsafe extern "C" fn(u64, i64, i64) -> f32;

struct Shim {
    forward: ForwardFn,
    params: ParamsFn,
    input: InputFn,
    sign: SignFn,
}

/// Compiles the driver into a fresh temporary directory and loads it (once per test binary).
fn shim() -> &'static Shim {
    static SHIM: OnceLock<Shim> = OnceLock::new();
    SHIM.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let driver = root.join("tests/cuda_shim/functional_driver.cpp");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir: PathBuf = std::env::temp_dir().join(format!("latent-cuda-fn-shim-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lib = dir.join("libfunctional_shim.so");
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
        let out = Command::new(&cxx)
            .args(["-O2", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&lib)
            .arg(&driver)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run the C++ compiler `{cxx}` ({e}): this test needs a C++17 compiler (set CXX)")
            });
        assert!(
            out.status.success(),
            "compiling {} failed:\n{}{}",
            driver.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let path = CString::new(lib.to_str().unwrap()).unwrap();
        // SAFETY: a library we just built; its symbols have the signatures declared above (the
        // wrappers in functional_driver.cpp). The handle stays open for the process.
        unsafe {
            let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            assert!(!handle.is_null(), "dlopen {}: {:?}", lib.display(), std::ffi::CStr::from_ptr(libc::dlerror()));
            let sym = |name: &str| -> *mut c_void {
                let n = CString::new(name).unwrap();
                let p = libc::dlsym(handle, n.as_ptr());
                assert!(!p.is_null(), "symbol {name} missing from the shim");
                p
            };
            let shim = Shim {
                forward: std::mem::transmute::<*mut c_void, ForwardFn>(sym("lat_fn_shim_forward")),
                params: std::mem::transmute::<*mut c_void, ParamsFn>(sym("lat_fn_shim_backward_params")),
                input: std::mem::transmute::<*mut c_void, InputFn>(sym("lat_fn_shim_backward_input")),
                sign: std::mem::transmute::<*mut c_void, SignFn>(sym("lat_fn_shim_sign")),
            };
            // The loaded image no longer needs the file.
            let _ = std::fs::remove_dir_all(&dir);
            shim
        }
    })
}

fn uniform(rng: &mut Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.uniform()
}

/// An output buffer of n elements filled with NaN (an element left unwritten stays NaN) and
/// followed by guard words (a write past the end changes them).
fn out_buf(n: usize) -> Vec<f32> {
    let mut v = vec![f32::NAN; n + GUARD];
    v[n..].fill(GUARD_VALUE);
    v
}

fn check_guard<'a>(v: &'a [f32], n: usize, what: &str) -> &'a [f32] {
    assert!(v[n..].iter().all(|&g| g == GUARD_VALUE), "{what}: the kernel wrote past the end");
    &v[..n]
}

/// The largest |shim − cpu| / scale over the elements, asserting each is within TOL.
fn compare(what: &str, shim: &[f32], cpu: &[f32], scale: &[f64]) -> f64 {
    assert_eq!(shim.len(), cpu.len());
    let mut worst = 0f64;
    for (e, ((&a, &b), &m)) in shim.iter().zip(cpu).zip(scale).enumerate() {
        assert!(a.is_finite() && b.is_finite(), "{what}[{e}]: shim {a}, cpu {b} (unwritten or not finite)");
        let err = (a as f64 - b as f64).abs();
        assert!(err <= TOL * m, "{what}[{e}]: shim {a}, cpu {b}, |diff| {err:e} > {TOL:e} · {m:e}");
        if m > 0.0 {
            worst = worst.max(err / m);
        }
    }
    worst
}

struct Case {
    layer: Functional,
    params: Vec<f32>,
    x: Vec<f32>,
    dz: Vec<f32>,
    rows: usize,
}

impl Case {
    fn new(fam: Family, (rows, n_in, n_out): (usize, usize, usize), wide: bool, rng: &mut Rng) -> Case {
        let layer = Functional::new(n_in, n_out, fam, 0, rng.next_u64());
        let mut params = vec![0f32; layer.own_params()];
        layer.init(&mut params, rng);
        if wide {
            for v in &mut params[..layer.b] {
                *v = uniform(rng, -25.0, 25.0);
            }
        }
        for v in &mut params[layer.b..] {
            *v = uniform(rng, -0.5, 0.5);
        }
        let x = (0..rows * n_in).map(|_| uniform(rng, -1.5, 1.5)).collect();
        let dz = (0..rows * n_out).map(|_| uniform(rng, -1.0, 1.0)).collect();
        Case { layer, params, x, dz, rows }
    }

    /// The parameters and sign of connection (i, j), as the CPU layer reads them.
    fn connection(&self, i: usize, j: usize) -> (Vec<f32>, f32) {
        let l = &self.layer;
        let plane = l.n_in * l.n_out;
        let k = l.family.params_per_connection();
        let t = (0..k).map(|q| self.params[l.p + q * plane + i * l.n_out + j]).collect();
        let s = if l.family.uses_sign() { connection_sign(l.sign_seed, i, j) } else { 1.0 };
        (t, s)
    }

    /// The scales m of z, dθ, db and dx (module docs).
    fn scales(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let l = &self.layer;
        let (rows, n_in, n_out, fam) = (self.rows, l.n_in, l.n_out, l.family);
        let k = fam.params_per_connection();
        let plane = n_in * n_out;
        let mut mz: Vec<f64> = (0..rows * n_out).map(|e| self.params[l.b + e % n_out].abs() as f64).collect();
        let mut mt = vec![0f64; k * plane];
        let mut mb = vec![0f64; n_out];
        let mut mx = vec![0f64; rows * n_in];
        for r in 0..rows {
            for i in 0..n_in {
                let xi = self.x[r * n_in + i];
                for j in 0..n_out {
                    let (t, s) = self.connection(i, j);
                    let dv = (self.dz[r * n_out + j] as f64).abs();
                    let (ff, fx, ft) = bounded_sizes(fam, xi, &t);
                    mz[r * n_out + j] += (fam.f(xi, &t, s) as f64).abs() + ff;
                    let (gx, gt) = fam.df(xi, &t, s);
                    for (q, (g, b)) in gt.iter().zip(ft).take(k).enumerate() {
                        mt[q * plane + i * n_out + j] += dv * ((*g as f64).abs() + b);
                    }
                    mx[r * n_in + i] += dv * ((gx as f64).abs() + fx);
                }
            }
            for (j, m) in mb.iter_mut().enumerate() {
                *m += (self.dz[r * n_out + j] as f64).abs();
            }
        }
        (mz, mt, mb, mx)
    }
}

/// The sizes of (f, ∂f/∂x, ∂f/∂θ) with their bounded factors (σ, σ(1 − σ), sin, cos, tanh,
/// 1 − tanh²) taken at their bound 1; 0 for families without one. Those factors carry an absolute,
/// not relative, error: the CPU's sin_cos_fast and tanh_fast are accurate to ~1e-7 absolute, and
/// 1 − σ and 1 − tanh² cancel (near saturation one side's σ or tanh rounds to 1, the other's to
/// 1 − ulp, so one gives 0 and the other ~1e-7).
fn bounded_sizes(fam: Family, x: f32, t: &[f32]) -> (f64, f64, [f64; 3]) {
    let (x, a, c) = (x.abs() as f64, t[0].abs() as f64, t.get(1).map_or(0.0, |c| c.abs() as f64));
    match fam.code() {
        10 => (1.0, a, [x, 1.0, 0.0]),
        11 | 12 | 13 | 16 => (a, c * a, [1.0, x * a, a]),
        _ => (0.0, 0.0, [0.0; 3]),
    }
}

/// Worst relative errors (z, dθ, db, dx) of one case over the grids.
fn run_case(c: &Case) -> [f64; 4] {
    let shim = shim();
    let l = &c.layer;
    let (rows, n_in, n_out) = (c.rows, l.n_in, l.n_out);
    let k = l.family.params_per_connection();
    let plane = n_in * n_out;
    let what = format!("{} {rows}x{n_in}->{n_out}", l.family.name());

    let mut z_cpu = vec![0f32; rows * n_out];
    l.forward(&c.params, &c.x, rows, &mut z_cpu, 1);
    let mut g_cpu = vec![0f32; c.params.len()];
    let mut dx_cpu = vec![0f32; rows * n_in];
    l.backward(&c.params, &mut g_cpu, &c.x, &c.dz, Some(&mut dx_cpu), rows, 1);
    let (mz, mt, mb, mx) = c.scales();

    let theta = c.params[..l.b].as_ptr();
    let bias = c.params[l.b..].as_ptr();
    let (ri, ii, oi, fam) = (rows as i32, n_in as i32, n_out as i32, l.family.code());
    let mut worst = [0f64; 4];
    let mut first: Option<Vec<Vec<f32>>> = None;
    for (grid, block) in GRIDS {
        let (mut z, mut dt, mut db, mut dx) =
            (out_buf(rows * n_out), out_buf(k * plane), out_buf(n_out), out_buf(rows * n_in));
        // SAFETY: every buffer has the length the kernel indexes (plus guards); see the driver.
        unsafe {
            (shim.forward)(theta, bias, c.x.as_ptr(), z.as_mut_ptr(), ri, ii, oi, fam, l.sign_seed, grid, block);
            (shim.params)(
                theta,
                c.x.as_ptr(),
                c.dz.as_ptr(),
                dt.as_mut_ptr(),
                db.as_mut_ptr(),
                ri,
                ii,
                oi,
                fam,
                l.sign_seed,
                grid,
                block,
            );
            (shim.input)(
                theta,
                c.x.as_ptr(),
                c.dz.as_ptr(),
                dx.as_mut_ptr(),
                ri,
                ii,
                oi,
                fam,
                l.sign_seed,
                grid,
                block,
            );
        }
        let w = format!("{what} grid {grid}x{block}");
        let outs = [
            check_guard(&z, rows * n_out, &format!("{w} z")),
            check_guard(&dt, k * plane, &format!("{w} dθ")),
            check_guard(&db, n_out, &format!("{w} db")),
            check_guard(&dx, rows * n_in, &format!("{w} dx")),
        ];
        worst[0] = worst[0].max(compare(&format!("{w} z"), outs[0], &z_cpu, &mz));
        worst[1] = worst[1].max(compare(&format!("{w} dθ"), outs[1], &g_cpu[..l.b], &mt));
        worst[2] = worst[2].max(compare(&format!("{w} db"), outs[2], &g_cpu[l.b..], &mb));
        worst[3] = worst[3].max(compare(&format!("{w} dx"), outs[3], &dx_cpu, &mx));
        let outs: Vec<Vec<f32>> = outs.iter().map(|o| o.to_vec()).collect();
        match &first {
            None => first = Some(outs),
            Some(f) => {
                for (q, (a, b)) in f.iter().zip(&outs).enumerate() {
                    let same = a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{w}: output {q} differs from grid {:?}'s (not deterministic)", GRIDS[0]);
                }
            }
        }
    }
    worst
}

#[test]
fn kernels_match_the_cpu_layer_for_every_family() {
    let mut rng = Rng::new(20_171_030, 7);
    println!("worst |shim - cpu| / scale per family (tolerance {TOL:e}):");
    println!("family  round       z          dθ         db         dx");
    let mut overall = 0f64;
    for code in 1..=20 {
        let fam = Family::from_code(code).unwrap();
        for wide in [false, true] {
            let mut worst = [0f64; 4];
            for shape in SHAPES {
                let case = Case::new(fam, shape, wide, &mut rng);
                let w = run_case(&case);
                for (a, b) in worst.iter_mut().zip(w) {
                    *a = a.max(b);
                }
            }
            overall = worst.iter().fold(overall, |a, &b| a.max(b));
            println!(
                "{}     {}  {:.2e}   {:.2e}   {:.2e}   {:.2e}",
                fam.name(),
                if wide { "wide" } else { "init" },
                worst[0],
                worst[1],
                worst[2],
                worst[3]
            );
        }
    }
    println!("overall worst {overall:.2e}");
}

#[test]
fn sign_hash_matches_connection_sign() {
    let shim = shim();
    let mut rng = Rng::new(99, 3);
    let mut seeds = vec![0u64, 1, u64::MAX, 0x9E37_79B9_7F4A_7C15];
    seeds.extend((0..6).map(|_| rng.next_u64()));
    let mut plus = 0usize;
    let mut total = 0usize;
    for &seed in &seeds {
        let mut pairs: Vec<(usize, usize)> = vec![(0, 0), (0, 1), (1, 0), (783, 799), ((1 << 31) - 1, (1 << 31) - 1)];
        pairs.extend((0..30).map(|_| (rng.below(1024) as usize, rng.below(1024) as usize)));
        pairs.extend((0..10).map(|_| (rng.below(1 << 31) as usize, rng.below(1 << 31) as usize)));
        for (i, j) in pairs {
            let want = connection_sign(seed, i, j);
            // SAFETY: a pure function of its arguments.
            let got = unsafe { (shim.sign)(seed, i as i64, j as i64) };
            assert_eq!(got.to_bits(), want.to_bits(), "sign of ({seed:#x}, {i}, {j}): shim {got}, cpu {want}");
            plus += (want > 0.0) as usize;
            total += 1;
        }
    }
    // Not a constant: both signs occur in fair proportion.
    assert!(plus * 10 > total * 3 && plus * 10 < total * 7, "{plus} of {total} signs are +1");
    println!("{total} signs match ({plus} are +1)");
}
