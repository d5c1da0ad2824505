//! The CUDA kernels of the dense layers, losses, penalties, noise and optimizers, compiled for
//! the host through tests/cuda_shim/shim.h and run on random inputs (fresh every run), against
//! the Cpu backend, which the device network tests hold to the CPU network. So the kernels'
//! index arithmetic and numerics are checked on a machine without a GPU; what remains for a GPU
//! is the launch glue (tests/cuda_device.rs).

mod common;

use latent::backend::cpu::Lined;
use latent::backend::ops::{Backend, Op, Slot};
use latent::backend::{Cpu, philox};
use latent::optim::OptimizerKind;
use latent::rng::Rng;
use std::ffi::{CString, c_void};

struct Lib(*mut c_void);

impl Lib {
    fn build() -> Lib {
        let root = common::root();
        let dir = std::env::temp_dir().join(format!("latent-shim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // One file per build: the tests run in parallel threads of one process, and a build
        // rewriting the file another test is loading made that dlopen fail.
        static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let so = dir.join(format!("elementwise_shim-{n}.so"));
        let out = std::process::Command::new("c++")
            .args(["-O2", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&so)
            .arg(root.join("tests/cuda_shim/elementwise_driver.cpp"))
            .output()
            .expect("c++ (g++ or clang++) is needed to compile the kernels for the host");
        assert!(out.status.success(), "the kernels do not compile as C++:\n{}", String::from_utf8_lossy(&out.stderr));
        let path = CString::new(so.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: loads the library just built.
        let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
        assert!(!h.is_null(), "dlopen {}", so.display());
        Lib(h)
    }

    /// The entry point `name` as a function pointer of type F.
    fn get<F: Copy>(&self, name: &str) -> F {
        let n = CString::new(name).unwrap();
        // SAFETY: the symbol is one of the driver's extern "C" functions; F is its signature.
        let p = unsafe { libc::dlsym(self.0, n.as_ptr()) };
        assert!(!p.is_null(), "no symbol {name}");
        unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
    }
}

fn seed() -> u64 {
    let s = std::env::var("LATENT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    println!("random inputs: LATENT_TEST_SEED={s}");
    s
}

fn rand(n: usize, lo: f32, hi: f32, rng: &mut Rng) -> Lined {
    let v: Vec<f32> = (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect();
    Lined::from_slice(&v).unwrap()
}

/// `n` zeros in the CPU backend's buffer type (the shims read and write them too).
fn zeros(n: usize) -> Lined {
    Lined::zeros(n).unwrap()
}

/// Worst |a - b| / max(1, |b|); fails above `tol`.
fn compare(what: &str, shim: &[f32], host: &[f32], tol: f32) -> f32 {
    assert_eq!(shim.len(), host.len());
    let mut worst = 0f32;
    for (i, (a, b)) in shim.iter().zip(host).enumerate() {
        let e = (a - b).abs() / b.abs().max(1.0);
        assert!(e <= tol || (a.is_nan() && b.is_nan()), "{what}[{i}]: kernel {a} host {b}");
        worst = worst.max(e);
    }
    worst
}

type F2 = *const f32;
type M = *mut f32;

#[test]
fn elementwise_kernels_match_the_host_backend() {
    if !common::have("c++") {
        panic!("c++ is needed: install g++");
    }
    let lib = Lib::build();
    let mut rng = Rng::new(seed(), 3);
    let be = Cpu::default();
    let (rows, cols) = (37, 29); // n = 1073 > 3 blocks x 64 threads: several grid-stride rounds
    let n = rows * cols;
    let mut report = Vec::new();
    for act in 0..8 {
        // bias + activation
        let z0 = rand(n, -4.0, 4.0, &mut rng);
        let b = rand(cols, -1.0, 1.0, &mut rng);
        let (mut zk, mut yk) = (z0.clone(), zeros(n));
        let f: extern "C" fn(M, F2, M, i32, i32, i32) = lib.get("shim_bias_act");
        f(zk.as_mut_ptr(), b.as_ptr(), yk.as_mut_ptr(), rows as i32, cols as i32, act);
        let (mut zh, mut yh) = (z0.clone(), zeros(n));
        be.run(Op::BiasAct { z: (&mut zh, 0), b: (&b, 0), y: (&mut yh, 0), rows, cols, act: act_of(act) }).unwrap();
        let mut w = compare("bias_act z", &zk, &zh, 1e-6).max(compare("bias_act y", &yk, &yh, 2e-5));
        // activation backward
        let d0 = rand(n, -1.0, 1.0, &mut rng);
        let (mut dk, mut dh) = (d0.clone(), d0.clone());
        let f: extern "C" fn(M, F2, F2, i32, i32) = lib.get("shim_act_backward");
        f(dk.as_mut_ptr(), zh.as_ptr(), yh.as_ptr(), n as i32, act);
        be.run(Op::ActBackward { d: (&mut dh, 0), z: (&zh, 0), y: (&yh, 0), n, act: act_of(act) }).unwrap();
        w = w.max(compare("act_backward", &dk, &dh, 2e-5));
        // MSE through this activation; BCE from logits; the other elementwise losses (MAE, L1,
        // L2, MSLE, Poisson) where the activation suits them, both scalings of inv.
        let t = rand(n, 0.0, 1.0, &mut rng);
        let msle_ok = [1, 3, 6].contains(&act);
        let poisson_ok = [1, 6].contains(&act);
        for loss in (0..=6).filter(|&l| (l != 5 || msle_ok) && (l != 6 || poisson_ok)) {
            let (mut dzk, mut elk, mut dzh, mut elh) = (zeros(n), zeros(n), zeros(n), zeros(n));
            let f: extern "C" fn(F2, F2, F2, M, M, i32, i32, i32, f32) = lib.get("shim_loss");
            let inv = if loss == 3 || loss == 4 || loss == 6 { 1.0 / rows as f32 } else { 1.0 / n as f32 };
            f(zh.as_ptr(), yh.as_ptr(), t.as_ptr(), dzk.as_mut_ptr(), elk.as_mut_ptr(), n as i32, loss, act, inv);
            be.run(Op::Loss {
                z: (&zh, 0),
                y: (&yh, 0),
                t: (&t, 0),
                dz: (&mut dzh, 0),
                el: (&mut elh, 0),
                n,
                loss: loss_of(loss),
                act: act_of(act),
                inv,
            })
            .unwrap();
            w = w.max(compare("loss el", &elk, &elh, 2e-5)).max(compare("loss dz", &dzk, &dzh, 2e-5));
        }
        // contractive pieces
        let (mut gk, mut gh) = (zeros(n), zeros(n));
        let f: extern "C" fn(F2, F2, M, i32, i32) = lib.get("shim_act_grad_sq");
        f(zh.as_ptr(), yh.as_ptr(), gk.as_mut_ptr(), n as i32, act);
        be.run(Op::ActGradSq { z: (&zh, 0), y: (&yh, 0), out: (&mut gh, 0), n, act: act_of(act) }).unwrap();
        w = w.max(compare("act_grad_sq", &gk, &gh, 4e-5));
        let s = rand(cols, 0.1, 3.0, &mut rng);
        let (mut dk, mut dh) = (d0.clone(), d0.clone());
        let f: extern "C" fn(M, F2, F2, F2, i32, i32, i32, f32) = lib.get("shim_contractive_dz");
        f(dk.as_mut_ptr(), zh.as_ptr(), yh.as_ptr(), s.as_ptr(), rows as i32, cols as i32, act, 0.37);
        be.run(Op::ContractiveDz {
            dz: (&mut dh, 0),
            z: (&zh, 0),
            y: (&yh, 0),
            s: (&s, 0),
            rows,
            cols,
            act: act_of(act),
            scale: 0.37,
        })
        .unwrap();
        w = w.max(compare("contractive_dz", &dk, &dh, 5e-5));
        report.push(format!("activation {act}: worst {w:.1e}"));
    }
    // the row losses: cosine proximity through several activations, KL divergence and
    // multi-class cross-entropy over identity logits (targets rows of a distribution, and raw)
    let mut w = 0f32;
    for (loss, act, lo, hi) in [
        (7, 0, -2.0, 2.0),
        (7, 1, -4.0, 4.0),
        (7, 2, -4.0, 4.0),
        (8, 0, -5.0, 5.0),
        (9, 0, -5.0, 5.0),
        (9, 0, -60.0, 60.0),
    ] {
        let z0 = rand(n, lo, hi, &mut rng);
        let b = zeros(cols);
        let (mut z, mut y) = (z0.clone(), zeros(n));
        be.run(Op::BiasAct { z: (&mut z, 0), b: (&b, 0), y: (&mut y, 0), rows, cols, act: act_of(act) }).unwrap();
        let mut t = rand(n, 0.0, 1.0, &mut rng);
        if loss == 8 {
            for row in t.chunks_exact_mut(cols) {
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
        }
        t[3] = 0.0; // a zero target: t ln t = 0
        let (mut dzk, mut elk, mut dzh, mut elh) = (zeros(n), zeros(rows), zeros(n), zeros(rows));
        let f: extern "C" fn(F2, F2, F2, M, M, i32, i32, i32, i32, f32) = lib.get("shim_loss_rows");
        let inv = 1.0 / rows as f32;
        f(
            z.as_ptr(),
            y.as_ptr(),
            t.as_ptr(),
            dzk.as_mut_ptr(),
            elk.as_mut_ptr(),
            rows as i32,
            cols as i32,
            loss,
            act,
            inv,
        );
        be.run(Op::LossRows {
            z: (&z, 0),
            y: (&y, 0),
            t: (&t, 0),
            dz: (&mut dzh, 0),
            el: (&mut elh, 0),
            rows,
            cols,
            loss: loss_of(loss),
            act: act_of(act),
            inv,
        })
        .unwrap();
        w = w.max(compare("loss_rows el", &elk, &elh, 2e-5)).max(compare("loss_rows dz", &dzk, &dzh, 2e-5));
    }
    report.push(format!("row losses (cosine, KL divergence, cross-entropy): worst {w:.1e}"));
    // softmax cross-entropy
    let classes = 7;
    let logits = rand(rows * classes, -5.0, 5.0, &mut rng);
    let labels =
        Lined::from_slice(&(0..rows).map(|_| (rng.uniform() * classes as f32).floor().min(6.0)).collect::<Vec<f32>>())
            .unwrap();
    let (mut dzk, mut elk, mut dzh, mut elh) = (zeros(rows * classes), zeros(rows), zeros(rows * classes), zeros(rows));
    let f: extern "C" fn(F2, F2, M, M, i32, i32, f32) = lib.get("shim_softmax_ce");
    f(logits.as_ptr(), labels.as_ptr(), dzk.as_mut_ptr(), elk.as_mut_ptr(), rows as i32, classes as i32, 0.25);
    be.run(Op::SoftmaxCe {
        logits: (&logits, 0),
        labels: (&labels, 0),
        dz: (&mut dzh, 0),
        el: (&mut elh, 0),
        rows,
        classes,
        inv: 0.25,
    })
    .unwrap();
    let mut w = compare("softmax el", &elk, &elh, 2e-5).max(compare("softmax dz", &dzk, &dzh, 2e-5));
    // sparsity
    let mean = rand(cols, 0.001, 0.999, &mut rng);
    let (mut ek, mut eh) = (zeros(cols), zeros(cols));
    let f: extern "C" fn(F2, M, i32, f32) = lib.get("shim_kl_value");
    f(mean.as_ptr(), ek.as_mut_ptr(), cols as i32, 0.05);
    be.run(Op::KlValue { mean: (&mean, 0), el: (&mut eh, 0), cols, rho: 0.05 }).unwrap();
    w = w.max(compare("kl_value", &ek, &eh, 1e-6));
    let d0 = rand(n, -1.0, 1.0, &mut rng);
    let (mut dk, mut dh) = (d0.clone(), d0.clone());
    let f: extern "C" fn(M, F2, i32, i32, f32, f32) = lib.get("shim_kl_grad");
    f(dk.as_mut_ptr(), mean.as_ptr(), rows as i32, cols as i32, 0.05, 0.7);
    be.run(Op::KlGrad { dy: (&mut dh, 0), mean: (&mean, 0), rows, cols, rho: 0.05, beta: 0.7 }).unwrap();
    w = w.max(compare("kl_grad", &dk, &dh, 1e-6));
    let y = rand(n, -1.0, 1.0, &mut rng);
    let (mut dk, mut dh, mut ek, mut eh) = (d0.clone(), d0.clone(), zeros(n), zeros(n));
    let f: extern "C" fn(M, F2, M, i32, f32) = lib.get("shim_l1");
    f(dk.as_mut_ptr(), y.as_ptr(), ek.as_mut_ptr(), n as i32, 0.03);
    be.run(Op::L1 { dy: (&mut dh, 0), y: (&y, 0), el: (&mut eh, 0), n, g: 0.03 }).unwrap();
    w = w.max(compare("l1 dy", &dk, &dh, 0.0)).max(compare("l1 el", &ek, &eh, 0.0));
    // contractive: column norms and the direct weight term
    let (n_in, n_out) = (23, 31);
    let wm = rand(n_in * n_out, -1.0, 1.0, &mut rng);
    let (mut sk, mut sh) = (zeros(n_out), zeros(n_out));
    let f: extern "C" fn(F2, M, i32, i32) = lib.get("shim_col_sq_sums");
    f(wm.as_ptr(), sk.as_mut_ptr(), n_in as i32, n_out as i32);
    be.run(Op::ColSqSums { w: (&wm, 0), s: (&mut sh, 0), n_in, n_out }).unwrap();
    w = w.max(compare("col_sq_sums", &sk, &sh, 1e-6));
    let fsq = rand(n_out, 0.0, 2.0, &mut rng);
    let dw0 = rand(n_in * n_out, -1.0, 1.0, &mut rng);
    let (mut dk, mut dh) = (dw0.clone(), dw0.clone());
    let f: extern "C" fn(M, F2, F2, i32, i32, f32) = lib.get("shim_contractive_dw");
    f(dk.as_mut_ptr(), wm.as_ptr(), fsq.as_ptr(), n_in as i32, n_out as i32, 0.2);
    be.run(Op::ContractiveDw { dw: (&mut dh, 0), w: (&wm, 0), fsq: (&fsq, 0), n_in, n_out, scale: 0.2 }).unwrap();
    w = w.max(compare("contractive_dw", &dk, &dh, 0.0));
    report.push(format!("softmax, sparsity, contractive: worst {w:.1e}"));
    for r in &report {
        println!("{r}");
    }
}

#[test]
fn noise_and_data_movement_kernels_draw_the_host_backends_numbers() {
    let lib = Lib::build();
    let mut rng = Rng::new(seed(), 4);
    let be = Cpu::default();
    // Philox: the kernel's and the host's words are the same bits.
    let f: extern "C" fn(u64, u64, u64, *mut u32) = lib.get("shim_philox");
    for _ in 0..500 {
        let (s, c, i) = (rng.next_u64(), rng.next_u64(), rng.next_u64());
        let mut k = [0u32; 4];
        f(s, c, i, k.as_mut_ptr());
        assert_eq!(k, philox::philox(s, c, i));
    }
    let (rows, cols) = (41, 27);
    let n = rows * cols;
    let x = rand(n, 0.0, 1.0, &mut rng);
    let lo = rand(cols, -1.0, 0.0, &mut rng);
    let hi = rand(cols, 1.0, 2.0, &mut rng);
    let seed = rng.next_u64();
    for kind in 1..=3 {
        for range in [false, true] {
            let (mut ok, mut oh) = (zeros(n), zeros(n));
            let f: extern "C" fn(F2, M, F2, F2, i32, i32, i32, f32, u64, u64, u64) = lib.get("shim_corrupt");
            let (lp, hp) = if range { (lo.as_ptr(), hi.as_ptr()) } else { (std::ptr::null(), std::ptr::null()) };
            // These rows start at row 3 of a minibatch (a shard's): they draw its elements.
            let first = 3 * cols;
            f(x.as_ptr(), ok.as_mut_ptr(), lp, hp, rows as i32, cols as i32, kind, 0.3, seed, 17, first as u64);
            be.run(Op::Corrupt {
                x: (&x, 0),
                out: (&mut oh, 0),
                range: range.then_some(((&lo, 0), (&hi, 0))),
                rows,
                cols,
                corruption: corruption_of(kind, 0.3),
                seed,
                ctr: 17,
                first,
            })
            .unwrap();
            compare(&format!("corrupt {kind}"), &ok, &oh, 1e-6);
            assert_ne!(ok, x, "corruption {kind} changed nothing");
        }
    }
    for kind in [1, 2] {
        let (mut sk, mut sh) = (zeros(n), zeros(n));
        let f: extern "C" fn(F2, M, i32, i32, f32, u64, u64, u64) = lib.get("shim_sample");
        f(x.as_ptr(), sk.as_mut_ptr(), n as i32, kind, 0.4, seed, 5, 77);
        be.run(Op::Sample { y: (&x, 0), s: (&mut sh, 0), n, kind: stochastic_of(kind, 0.4), seed, ctr: 5, first: 77 })
            .unwrap();
        compare(&format!("sample {kind}"), &sk, &sh, 1e-6);
    }
    let ids: Vec<u32> = (0..rows as u32).map(|r| (r * 7 + 3) % 1000).collect();
    let z0 = rand(n, -2.0, 2.0, &mut rng);
    let (mut zk, mut yk, mut zh, mut yh) = (z0.clone(), zeros(n), z0.clone(), zeros(n));
    let f: extern "C" fn(M, M, *const u32, i32, i32, i32, f32, u64) = lib.get("shim_code_noise");
    f(zk.as_mut_ptr(), yk.as_mut_ptr(), ids.as_ptr(), rows as i32, cols as i32, 1, 0.8, seed);
    be.run(Op::CodeNoise {
        z: (&mut zh, 0),
        y: (&mut yh, 0),
        bias: None,
        ids: (&ids, 0),
        rows,
        cols,
        act: act_of(1),
        sigma: 0.8,
        seed,
    })
    .unwrap();
    compare("code_noise z", &zk, &zh, 1e-6);
    compare("code_noise y", &yk, &yh, 2e-5);
    // add (a penalty's gradient joining a layer's)
    let (mut ak, mut ah) = (z0.clone(), z0.clone());
    let f: extern "C" fn(F2, M, i32) = lib.get("shim_add");
    f(x.as_ptr(), ak.as_mut_ptr(), n as i32);
    be.run(Op::Add { x: (&x, 0), y: (&mut ah, 0), n }).unwrap();
    assert_eq!(ak, ah);
    assert_ne!(ak, z0);
    // gather and split
    let src = rand(1000 * 5, -1.0, 1.0, &mut rng);
    let (mut gk, mut gh) = (zeros(rows * 5), zeros(rows * 5));
    let f: extern "C" fn(F2, *const u32, M, i32, i32) = lib.get("shim_gather_rows");
    f(src.as_ptr(), ids.as_ptr(), gk.as_mut_ptr(), rows as i32, 5);
    be.run(Op::GatherRows { src: (&src, 0), ids: (&ids, 0), dst: (&mut gh, 0), rows, cols: 5 }).unwrap();
    assert_eq!(gk, gh);
    let (mut xk, mut tk, mut xh, mut th) = (zeros(rows * 3), zeros(rows * 2), zeros(rows * 3), zeros(rows * 2));
    let f: extern "C" fn(F2, M, M, i32, i32, i32) = lib.get("shim_split_rows");
    f(gh.as_ptr(), xk.as_mut_ptr(), tk.as_mut_ptr(), rows as i32, 3, 2);
    be.run(Op::SplitRows { src: (&gh, 0), x: (&mut xh, 0), t: (&mut th, 0), rows, cols: 3, tw: 2 }).unwrap();
    assert_eq!((xk, tk), (xh, th));
}

#[test]
fn optimizer_kernels_match_the_cpu_backend() {
    let lib = Lib::build();
    let mut rng = Rng::new(seed(), 5);
    let be = Cpu::default();
    let n = 1234;
    // Pieces of different weight decay, each one launch from its offset (optim::Piece).
    let pieces: [(usize, usize, f32); 4] = [(0, 400, 0.01), (400, 410, 0.0), (410, 1200, 0.02), (1200, 1234, 0.0)];
    let gscale = Lined::from_slice(&[0.7f32]).unwrap();
    let p0 = rand(n, -1.0, 1.0, &mut rng);
    let g = rand(n, -1.0, 1.0, &mut rng);
    let m0 = rand(n, -0.1, 0.1, &mut rng);
    let v0 = rand(n, 0.0, 0.1, &mut rng);
    for nesterov in [false, true] {
        let (mut pk, mut vk, mut ph, mut vh) = (p0.clone(), m0.clone(), p0.clone(), m0.clone());
        let f: extern "C" fn(M, F2, M, i32, f32, F2, f32, f32, i32) = lib.get("shim_sgd");
        for &(a, b, wd) in &pieces {
            let (pa, va) = (pk[a..].as_mut_ptr(), vk[a..].as_mut_ptr());
            f(pa, g[a..].as_ptr(), va, (b - a) as i32, wd, gscale.as_ptr(), 0.05, 0.9, nesterov as i32);
            be.run(Op::Sgd {
                p: (&mut ph, a),
                g: (&g, a),
                v: (&mut vh, a),
                n: b - a,
                wd,
                gscale: &gscale,
                lr: 0.05,
                mu: 0.9,
                nesterov,
            })
            .unwrap();
        }
        compare("sgd p", &pk, &ph, 1e-6);
        compare("sgd v", &vk, &vh, 1e-6);
    }
    for decoupled in [false, true] {
        let (mut pk, mut mk, mut vk) = (p0.clone(), m0.clone(), v0.clone());
        let (mut ph, mut mh, mut vh) = (p0.clone(), m0.clone(), v0.clone());
        let f: extern "C" fn(M, F2, M, M, i32, f32, F2, f32, f32, f32, f32, f32, f32, i32) = lib.get("shim_adam");
        for &(a, b, wd) in &pieces {
            let (pa, ma, va) = (pk[a..].as_mut_ptr(), mk[a..].as_mut_ptr(), vk[a..].as_mut_ptr());
            // step = lr / bc1 = 0.01 and 1 / sqrt(bc2) = 30, as the backend folds bc1 = 0.1, bc2 = 1/900
            let args = (1e-3, 0.9, 0.999, 1e-8, 0.01, 30.0, decoupled as i32);
            f(
                pa,
                g[a..].as_ptr(),
                ma,
                va,
                (b - a) as i32,
                wd,
                gscale.as_ptr(),
                args.0,
                args.1,
                args.2,
                args.3,
                args.4,
                args.5,
                args.6,
            );
            be.run(Op::Adaptive {
                kind: if decoupled { OptimizerKind::AdamW } else { OptimizerKind::Adam },
                p: (&mut ph, a),
                g: (&g, a),
                m: (&mut mh, a),
                v: (&mut vh, a),
                n: b - a,
                wd,
                gscale: &gscale,
                lr: 1e-3,
                b1: 0.9,
                b2: 0.999,
                eps: 1e-8,
                bc1: 0.1,
                bc2: 1.0 / 900.0,
            })
            .unwrap();
        }
        compare("adam p", &pk, &ph, 1e-6);
        compare("adam m", &mk, &mh, 1e-6);
        compare("adam v", &vk, &vh, 1e-6);
    }
    // RMSprop, AdaGrad, AdaDelta, AdaMax, Lion: three steps each (the state matters from the
    // second), the kernel's folded step = lr / bc1 against the backend's bc1 = 0.19.
    type Adaptive = extern "C" fn(i32, M, F2, M, M, i32, f32, F2, f32, f32, f32, f32, f32);
    let f: Adaptive = lib.get("shim_adaptive");
    let kinds = [
        OptimizerKind::RmsProp,
        OptimizerKind::AdaGrad,
        OptimizerKind::AdaDelta,
        OptimizerKind::AdaMax,
        OptimizerKind::Lion,
    ];
    // AdaDelta's first buffer is an average of squares: non-negative.
    let m_abs = Lined::from_slice(&m0.iter().map(|v| v.abs()).collect::<Vec<f32>>()).unwrap();
    for (which, kind) in kinds.into_iter().enumerate() {
        let (mut pk, mut mk, mut vk) = (p0.clone(), m_abs.clone(), v0.clone());
        let (mut ph, mut mh, mut vh) = (p0.clone(), m_abs.clone(), v0.clone());
        let (lr, b1, b2, eps, bc1) = (0.01f32, 0.9f32, 0.95f32, 1e-6f32, 0.19f64);
        for _ in 0..3 {
            for &(a, b, wd) in &pieces {
                let (pa, ma, va) = (pk[a..].as_mut_ptr(), mk[a..].as_mut_ptr(), vk[a..].as_mut_ptr());
                let n = (b - a) as i32;
                f(which as i32, pa, g[a..].as_ptr(), ma, va, n, wd, gscale.as_ptr(), lr, b1, b2, eps, lr / bc1 as f32);
                be.run(Op::Adaptive {
                    kind,
                    p: (&mut ph, a),
                    g: (&g, a),
                    m: (&mut mh, a),
                    v: (&mut vh, a),
                    n: b - a,
                    wd,
                    gscale: &gscale,
                    lr,
                    b1,
                    b2,
                    eps,
                    bc1,
                    bc2: 1.0,
                })
                .unwrap();
            }
        }
        let name = kind.name();
        compare(&format!("{name} p"), &pk, &ph, 1e-6);
        compare(&format!("{name} m"), &mk, &mh, 1e-6);
        compare(&format!("{name} v"), &vk, &vh, 1e-6);
        assert!(pk[..] != p0[..] && pk.iter().all(|v| v.is_finite()), "{name}: nothing moved, or not finite");
    }
    let _ = Slot::Loss;
}

fn act_of(code: i32) -> latent::Activation {
    latent::Activation::from_code(code).unwrap()
}

fn loss_of(code: i32) -> latent::loss::Loss {
    latent::loss::Loss::from_code(code).unwrap()
}

fn corruption_of(kind: i32, level: f32) -> latent::corruption::Corruption {
    use latent::corruption::Corruption;
    match kind {
        1 => Corruption::Masking { level },
        2 => Corruption::Gaussian { sigma: level },
        _ => Corruption::SaltPepper { fraction: level },
    }
}

fn stochastic_of(kind: i32, sigma: f32) -> latent::layer::Stochastic {
    use latent::layer::Stochastic;
    if kind == 1 { Stochastic::Bernoulli } else { Stochastic::Gaussian { sigma } }
}
