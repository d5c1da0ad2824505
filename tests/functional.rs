//! Functional-transfer layers (src/layer/functional.rs) and the memory function
//! (src/layer/memory.rs): derivatives against finite differences, the fused layer passes against
//! finite differences of themselves, thread-count independence, and F01 against a matmul.
//!
//! Two kinds of check, and their tolerances:
//! - per connection, every family's f32 kernel (`Family::f`, `Family::df`) against an independent
//!   f64 reference of f written here from the reference table: |f32 − f64| <= 1e-5 (1 + |f|), and
//!   each derivative against central differences of the f64 reference (h = 1e-6 (1 + |v|),
//!   truncation ~1e-11) within 1e-4 (1 + |d|): the f32 kernels' own rounding is ~1e-6;
//! - per layer (5 -> 4, 3 rows), loss L = Σ_rj c_rj z_rj in f64 over the f32 forward: central
//!   differences over the actual f32 step (p ± h rounded to f32), Richardson-extrapolated from h
//!   and 2h (h = 1e-2) as tests/gradcheck.rs does; |a − n| <= 1e-2 max(|a|, |n|) + 1e-4.
//!   Parameters are drawn where no step of 2h reaches a clip or a kink (margin 0.1 on every
//!   clipped or masked argument, for every row): there the author's derivatives (F05's, F06's,
//!   F08's masks, which ignore the upper clips) are not the derivative of f, by design.
//!
//! `cargo test --release --test functional -- --nocapture` prints the worst errors.

mod common;

use latent::layer::functional::{Family, Functional, connection_sign};
use latent::layer::memory::Memory;
use latent::rng::{Rng, stream};

const MARGIN: f64 = 0.1;

fn sigma(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// f(x; θ) in f64, straight from the table.
fn reference(fam: Family, x: f64, t: &[f64], s: f64) -> f64 {
    let a = t[0];
    let c = t.get(1).copied().unwrap_or(0.0);
    let d = t.get(2).copied().unwrap_or(0.0);
    match fam.code() {
        1 => a * a * x,
        2 => a * a * a * x,
        3 => a * x * x + c * x,
        4 => a * x * x * x + c * x * x + d * x,
        5 => a * (c * x).clamp(-30.0, 30.0).exp(),
        6 | 7 => s * a.clamp(0.0, 1000.0) * x,
        8 => s * (a * x + c).clamp(0.0, 20.0),
        9 => a * (c * x + d).max(0.0),
        10 => s * sigma((a * x + c).clamp(-30.0, 30.0)),
        11 => a * sigma((c * x + d).clamp(-30.0, 30.0)),
        12 => a * (c * x + d).sin(),
        13 => a * (c * x + d).cos(),
        14 => a * (c * x + d).sinh(),
        15 => a * ((c * x + d).cosh() - 1.0),
        16 => a * (c * x + d).tanh(),
        17 => a * a * x * x,
        18 => s * a * a * x * x,
        19 => a * a * (x + c) * (x + c),
        20 => s * a * a * (x + c) * (x + c),
        _ => unreachable!(),
    }
}

fn u(rng: &mut Rng, lo: f64, hi: f64) -> f32 {
    (lo + (hi - lo) * rng.uniform_f64()) as f32
}

/// Parameters of one connection drawn for a finite-difference check.
fn draw(fam: Family, rng: &mut Rng) -> [f32; 3] {
    let mut t = [u(rng, -1.0, 1.0), u(rng, -1.0, 1.0), u(rng, -1.0, 1.0)];
    match fam.code() {
        5 => t[1] = u(rng, -4.0, 2.0),
        6 | 7 => t[0] = u(rng, 0.2, 1.5),
        12 | 13 => {
            t[1] = u(rng, -3.0, 3.0);
            t[2] = u(rng, -10.0, 10.0);
        }
        14 | 15 => {
            t[1] = u(rng, -1.5, 1.5);
            t[2] = u(rng, -1.5, 1.5);
        }
        _ => {}
    }
    t
}

/// Whether every clipped or masked argument of f at (x, θ) is at least MARGIN from its clip or
/// kink (so that finite differences see the derivative the table gives).
fn safe(fam: Family, x: f32, t: &[f32; 3]) -> bool {
    let (x, a, c, d) = (x as f64, t[0] as f64, t[1] as f64, t[2] as f64);
    let away = |z: f64, edges: &[f64]| edges.iter().all(|e| (z - e).abs() > MARGIN);
    match fam.code() {
        5 => away(c * x, &[-30.0, 30.0]),
        6 | 7 => away(a, &[0.0, 1000.0]),
        8 => away(a * x + c, &[0.0, 20.0]),
        9 => away(c * x + d, &[0.0]),
        10 => away(a * x + c, &[-30.0, 30.0]),
        11 => away(c * x + d, &[-30.0, 30.0]),
        _ => true,
    }
}

fn central(f: impl Fn(f64) -> f64, v: f64) -> f64 {
    let h = 1e-6 * (1.0 + v.abs());
    (f(v + h) - f(v - h)) / (2.0 * h)
}

#[test]
fn codes_names_and_shapes() {
    for (n, fam) in Family::ALL.iter().enumerate() {
        assert_eq!(fam.code(), n as i32 + 1);
        assert_eq!(Family::from_code(fam.code()).unwrap(), *fam);
        assert_eq!(fam.name(), format!("f{:02}", n + 1));
    }
    assert!(Family::from_code(0).is_err() && Family::from_code(21).is_err() && Family::from_code(-3).is_err());
    let k: Vec<usize> = Family::ALL.iter().map(|f| f.params_per_connection()).collect();
    assert_eq!(k, [1, 1, 2, 3, 2, 1, 1, 2, 3, 2, 3, 3, 3, 3, 3, 3, 1, 1, 2, 2]);
    let signed: Vec<i32> = Family::ALL.iter().filter(|f| f.uses_sign()).map(|f| f.code()).collect();
    assert_eq!(signed, [6, 7, 8, 10, 18, 20]);
}

#[test]
fn every_family_matches_the_f64_reference_and_its_finite_differences() {
    let mut rng = Rng::new(3, stream::INIT);
    for fam in Family::ALL {
        let k = fam.params_per_connection();
        let (mut worst_f, mut worst_d) = (0f64, 0f64);
        let mut points = 0;
        while points < 200 {
            let x = u(&mut rng, -1.5, 1.5);
            let t = draw(fam, &mut rng);
            let s = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
            if !safe(fam, x, &t) {
                continue;
            }
            points += 1;
            let t64: Vec<f64> = t[..k].iter().map(|&v| v as f64).collect();
            let want = reference(fam, x as f64, &t64, s as f64);
            let got = fam.f(x, &t[..k], s) as f64;
            let ef = (got - want).abs() / (1.0 + want.abs());
            assert!(ef < 1e-5, "{fam:?} f at x={x} θ={t:?}: {got} vs {want}");
            worst_f = worst_f.max(ef);

            let (dx, dt) = fam.df(x, &t[..k], s);
            let mut check = |name: String, ana: f32, num: f64| {
                let e = (ana as f64 - num).abs() / (1.0 + num.abs());
                assert!(e < 1e-4, "{fam:?} {name} at x={x} θ={t:?} s={s}: {ana} vs finite difference {num}");
                worst_d = worst_d.max(e);
            };
            check("∂f/∂x".into(), dx, central(|v| reference(fam, v, &t64, s as f64), x as f64));
            for kk in 0..k {
                let num = central(
                    |v| {
                        let mut tt = t64.clone();
                        tt[kk] = v;
                        reference(fam, x as f64, &tt, s as f64)
                    },
                    t64[kk],
                );
                check(format!("∂f/∂θ{kk}"), dt[kk], num);
            }
            assert!(dt[k..].iter().all(|&v| v == 0.0));
        }
        println!("{fam:?}: worst f error {worst_f:.1e}, worst derivative error {worst_d:.1e}");
    }
}

#[test]
fn f12_f13_transmit_the_true_derivative_not_the_authors_negated_one() {
    // The author's F12.py and F13.py pass −∂f/∂x down; the true derivatives are a c cos z and
    // −a c sin z.
    let (x, t) = (0.3f32, [1.5f32, 2.0, 0.1]);
    let z = (2.0f64 * 0.3 + 0.1) as f32;
    let (d12, _) = Family::F12.df(x, &t, 1.0);
    let (d13, _) = Family::F13.df(x, &t, 1.0);
    assert!((d12 - 3.0 * z.cos()).abs() < 1e-5 && d12 > 0.0, "F12 ∂f/∂x = {d12}");
    assert!((d13 + 3.0 * z.sin()).abs() < 1e-5 && d13 < 0.0, "F13 ∂f/∂x = {d13}");
    // And through the layer's backward: one connection, dz = 1.
    for (fam, want) in [(Family::F12, d12), (Family::F13, d13)] {
        let layer = Functional::new(1, 1, fam, 0, 0);
        let params = [1.5f32, 2.0, 0.1, 0.0];
        let mut grads = [0f32; 4];
        let mut dx = [0f32; 1];
        layer.backward(&params, &mut grads, &[x], &[1.0], Some(&mut dx), 1, 1);
        assert!((dx[0] - want).abs() < 1e-6, "{fam:?}: layer dx {} vs {want}", dx[0]);
    }
}

#[test]
fn f06_masks_and_f07_passes_the_gradient_of_a_negative_weight() {
    let (x, s) = (0.7f32, -1.0f32);
    for w in [-0.3f32, -1e-3] {
        assert_eq!(Family::F06.f(x, &[w], s), 0.0);
        assert_eq!(Family::F07.f(x, &[w], s), 0.0);
        assert_eq!(Family::F06.df(x, &[w], s), (0.0, [0.0; 3]));
        assert_eq!(Family::F07.df(x, &[w], s), (0.0, [s * x, 0.0, 0.0]));
    }
}

/// A layer's (params, x) drawn so every connection is `safe` on every row.
fn safe_layer(layer: &Functional, rows: usize, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let (n_in, n_out, fam) = (layer.n_in, layer.n_out, layer.family);
    let k = fam.params_per_connection();
    let plane = n_in * n_out;
    let x: Vec<f32> = (0..rows * n_in).map(|_| u(rng, -1.0, 1.0)).collect();
    let mut params = vec![0f32; layer.own_params()];
    for i in 0..n_in {
        for j in 0..n_out {
            let t = loop {
                let t = draw(fam, rng);
                // margin for a step of 2h in x as well as in θ
                if (0..rows).all(|r| safe(fam, x[r * n_in + i], &t)) {
                    break t;
                }
            };
            for kk in 0..k {
                params[kk * plane + i * n_out + j] = t[kk];
            }
        }
    }
    for b in &mut params[layer.b..] {
        *b = u(rng, -0.5, 0.5);
    }
    (params, x)
}

/// Richardson-extrapolated central difference of `loss` in coordinate v of `buf`, over the
/// actual f32 steps.
fn fd(buf: &mut [f32], v: usize, h: f32, mut loss: impl FnMut(&[f32]) -> f64) -> f64 {
    let p = buf[v];
    let mut d = |h: f32| {
        let (hi, lo) = (p + h, p - h);
        buf[v] = hi;
        let l1 = loss(buf);
        buf[v] = lo;
        let l0 = loss(buf);
        buf[v] = p;
        (l1 - l0) / (hi as f64 - lo as f64)
    };
    let (d1, d2) = (d(h), d(2.0 * h));
    (4.0 * d1 - d2) / 3.0
}

const REL_TOL: f64 = 1e-2;
const ABS_TOL: f64 = 1e-4;
const H: f32 = 1e-2;

/// Compares analytic and numerical gradients; returns the worst |a − n| / (tolerance).
fn compare(what: &str, ana: &[f32], num: &[f64]) -> f64 {
    let mut worst = 0f64;
    for (v, (&a, &n)) in ana.iter().zip(num).enumerate() {
        let a = a as f64;
        let tol = REL_TOL * a.abs().max(n.abs()) + ABS_TOL;
        assert!((a - n).abs() <= tol, "{what}[{v}]: analytic {a} vs numerical {n}");
        worst = worst.max((a - n).abs() / tol);
    }
    worst
}

#[test]
fn fused_backward_matches_finite_differences_of_the_fused_forward() {
    let (n_in, n_out, rows) = (5, 4, 3);
    let mut rng = Rng::new(5, stream::INIT);
    for fam in Family::ALL {
        let layer = Functional::new(n_in, n_out, fam, 0, 0xfeed);
        let k = fam.params_per_connection();
        let (mut params, mut x) = safe_layer(&layer, rows, &mut rng);
        let c: Vec<f32> = (0..rows * n_out).map(|_| u(&mut rng, -1.0, 1.0)).collect();
        let loss = |params: &[f32], x: &[f32]| {
            let mut z = vec![0f32; rows * n_out];
            layer.forward(params, x, rows, &mut z, 1);
            z.iter().zip(&c).map(|(&z, &c)| z as f64 * c as f64).sum::<f64>()
        };
        let mut grads = vec![f32::NAN; layer.own_params()];
        let mut dx = vec![f32::NAN; rows * n_in];
        layer.backward(&params, &mut grads, &x, &c, Some(&mut dx), rows, 1);

        let xs = x.clone();
        let num_p: Vec<f64> = (0..params.len()).map(|v| fd(&mut params, v, H, |p| loss(p, &xs))).collect();
        let ps = params.clone();
        let num_x: Vec<f64> = (0..x.len()).map(|v| fd(&mut x, v, H, |x| loss(&ps, x))).collect();
        let plane = n_in * n_out;
        let mut worst = 0f64;
        for kk in 0..k {
            let r = kk * plane..(kk + 1) * plane;
            worst = worst.max(compare(&format!("{fam:?} dθ{kk}"), &grads[r.clone()], &num_p[r]));
        }
        worst = worst.max(compare(&format!("{fam:?} db"), &grads[layer.b..], &num_p[layer.b..]));
        worst = worst.max(compare(&format!("{fam:?} dx"), &dx, &num_x));
        println!("{fam:?}: worst error {:.1}% of the tolerance", 100.0 * worst);
    }
}

#[test]
fn threads_one_and_two_give_identical_bits() {
    let (n_in, n_out, rows) = (100, 80, 64);
    let pool = latent::pool::pool(2).unwrap();
    let mut rng = Rng::new(9, stream::INIT);
    for fam in Family::ALL {
        let layer = Functional::new(n_in, n_out, fam, 0, 17);
        let mut params = vec![0f32; layer.own_params()];
        layer.init(&mut params, &mut rng);
        for b in &mut params[layer.b..] {
            *b = u(&mut rng, -0.5, 0.5);
        }
        let x: Vec<f32> = (0..rows * n_in).map(|_| u(&mut rng, -1.0, 1.0)).collect();
        let dz: Vec<f32> = (0..rows * n_out).map(|_| u(&mut rng, -1.0, 1.0)).collect();
        let run = |threads: usize| {
            pool.install(|| {
                let mut z = vec![0f32; rows * n_out];
                layer.forward(&params, &x, rows, &mut z, threads);
                let mut g = vec![0f32; layer.own_params()];
                let mut dx = vec![0f32; rows * n_in];
                layer.backward(&params, &mut g, &x, &dz, Some(&mut dx), rows, threads);
                (z, g, dx)
            })
        };
        let (a, b) = (run(1), run(2));
        let same = |p: &[f32], q: &[f32]| p.iter().zip(q).all(|(p, q)| p.to_bits() == q.to_bits());
        assert!(same(&a.0, &b.0), "{fam:?}: forward differs between 1 and 2 threads");
        assert!(same(&a.1, &b.1), "{fam:?}: parameter gradient differs between 1 and 2 threads");
        assert!(same(&a.2, &b.2), "{fam:?}: dx differs between 1 and 2 threads");
        assert!(a.0.iter().chain(&a.1).chain(&a.2).all(|v| v.is_finite()), "{fam:?}: non-finite values");
        // The forward's 4-row tiles and its lone rows compute the same bits.
        let mut lone = vec![0f32; rows * n_out];
        for (xr, zr) in x.chunks_exact(n_in).zip(lone.chunks_exact_mut(n_out)) {
            layer.forward(&params, xr, 1, zr, 1);
        }
        assert!(same(&a.0, &lone), "{fam:?}: a row's forward depends on its neighbours");
    }
}

#[test]
fn f01_is_a_dense_layer_with_squared_weights() {
    let (n_in, n_out, rows) = (37, 23, 9);
    let mut rng = Rng::new(11, stream::INIT);
    let layer = Functional::new(n_in, n_out, Family::F01, 0, 0);
    let params: Vec<f32> = (0..layer.own_params()).map(|_| u(&mut rng, -1.0, 1.0)).collect();
    let x: Vec<f32> = (0..rows * n_in).map(|_| u(&mut rng, -1.0, 1.0)).collect();
    let dz: Vec<f32> = (0..rows * n_out).map(|_| u(&mut rng, -1.0, 1.0)).collect();
    let w = |i: usize, j: usize| params[i * n_out + j] as f64;
    let mut z = vec![0f32; rows * n_out];
    layer.forward(&params, &x, rows, &mut z, 1);
    let mut g = vec![0f32; layer.own_params()];
    let mut dx = vec![0f32; rows * n_in];
    layer.backward(&params, &mut g, &x, &dz, Some(&mut dx), rows, 1);
    let close =
        |a: f32, b: f64, what: &str| assert!((a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}: {a} vs {b}");
    for r in 0..rows {
        for j in 0..n_out {
            let want: f64 =
                (0..n_in).map(|i| x[r * n_in + i] as f64 * w(i, j) * w(i, j)).sum::<f64>() + params[layer.b + j] as f64;
            close(z[r * n_out + j], want, "z = x W² + b");
        }
        for i in 0..n_in {
            let want: f64 = (0..n_out).map(|j| dz[r * n_out + j] as f64 * w(i, j) * w(i, j)).sum();
            close(dx[r * n_in + i], want, "dx = dz (W²)ᵀ");
        }
    }
    for i in 0..n_in {
        for j in 0..n_out {
            let xtdz: f64 = (0..rows).map(|r| x[r * n_in + i] as f64 * dz[r * n_out + j] as f64).sum();
            close(g[i * n_out + j], 2.0 * w(i, j) * xtdz, "dw = 2 w ⊙ xᵀdz");
        }
    }
}

#[test]
fn init_follows_the_table_and_signs_are_reproducible() {
    let (n_in, n_out) = (40, 30);
    for fam in Family::ALL {
        let layer = Functional::new(n_in, n_out, fam, 3, 99);
        let mut params = vec![f32::NAN; 3 + layer.own_params()];
        layer.init(&mut params, &mut Rng::new(1, stream::INIT));
        assert!(params[..3].iter().all(|v| v.is_nan()), "init wrote before its block");
        let plane = n_in * n_out;
        for kk in 0..fam.params_per_connection() {
            let (lo, hi) = fam.init_range(kk);
            let block = &params[3 + kk * plane..3 + (kk + 1) * plane];
            assert!(block.iter().all(|&v| v >= lo && v < hi), "{fam:?} θ{kk} outside [{lo}, {hi})");
            let mean = block.iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
            assert!((mean - (lo + hi) as f64 / 2.0).abs() < 0.05 * (hi - lo) as f64, "{fam:?} θ{kk} mean {mean}");
        }
        // The author's bias 0 in the centred form: b_j = Σ_i f(0; θ_ij), 0 where f(0) = 0.
        let bias = &params[layer.b..];
        assert_eq!(bias, &layer.offsets(&params)[..], "{fam:?}");
        assert_eq!(bias.iter().all(|&v| v == 0.0), !fam.centred(), "{fam:?}");
    }
    assert_eq!(Family::F05.init_range(1), (-4.0, -2.0));
    assert_eq!(Family::F06.init_range(0), (0.0, 0.2));
    assert_eq!(Family::F12.init_range(2), (-10.0, 10.0));
    let layer = Functional::new(n_in, n_out, Family::F20, 0, 99);
    let s = layer.signs();
    assert_eq!(s, layer.signs());
    assert_eq!(s[7 * n_out + 5], connection_sign(99, 7, 5));
    let plus = s.iter().filter(|&&v| v == 1.0).count();
    assert!(s.iter().all(|&v| v == 1.0 || v == -1.0) && (500..700).contains(&plus), "{plus} of 1200 positive");
    let other = Functional { sign_seed: 100, ..layer.clone() }.signs();
    assert!(s.iter().zip(&other).filter(|(a, b)| a != b).count() > 450, "seeds give unrelated signs");
    assert!(Functional::new(n_in, n_out, Family::F01, 0, 99).signs().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The memory function

fn memory_setup(n_in: usize, n_out: usize, rows: usize, seed: u64) -> (Memory, Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed, stream::INIT);
    let m = Memory::new(n_in, n_out, 0);
    let mut params = vec![0f32; m.own_params()];
    m.init(&mut params, &mut rng);
    // Larger than the init so that the recurrence and tanh's curvature matter.
    for v in &mut params {
        *v = u(&mut rng, -1.5, 1.5);
    }
    let x: Vec<f32> = (0..rows * n_in).map(|_| u(&mut rng, -1.0, 1.0)).collect();
    let state: Vec<f32> = (0..n_in * n_out).map(|_| u(&mut rng, -0.9, 0.9)).collect();
    (m, params, x, state)
}

#[test]
fn memory_forward_matches_an_f64_recurrence_and_carries_its_state_across_calls() {
    let (n_in, n_out, rows) = (40, 7, 6); // two input blocks
    let (m, params, x, state0) = memory_setup(n_in, n_out, rows, 21);
    let plane = n_in * n_out;
    let mut z = vec![0f32; rows * n_out];
    let mut state = state0.clone();
    let mut hist = vec![0f32; m.history_len(rows)];
    m.forward(&params, &x, rows, &mut z, &mut state, Some(&mut hist), 1);
    let mut s64: Vec<f64> = state0.iter().map(|&v| v as f64).collect();
    for r in 0..rows {
        for i in 0..n_in {
            for j in 0..n_out {
                let prev = hist[(i * rows + r) * n_out + j];
                assert_eq!(prev as f64 as f32, prev);
                assert!((prev as f64 - s64[i * n_out + j]).abs() < 1e-5, "history row {r} ({i}, {j})");
            }
        }
        for j in 0..n_out {
            let mut zj = params[m.b + j] as f64;
            for i in 0..n_in {
                let p = |k: usize| params[k * plane + i * n_out + j] as f64;
                let v = (p(0) * x[r * n_in + i] as f64 + p(1) * s64[i * n_out + j] + p(2)).tanh();
                s64[i * n_out + j] = v;
                zj += v;
            }
            assert!((z[r * n_out + j] as f64 - zj).abs() < 1e-5 * (1.0 + zj.abs()) * n_in as f64, "z[{r}, {j}]");
        }
    }
    assert!(state.iter().zip(&s64).all(|(&a, &b)| (a as f64 - b).abs() < 1e-5), "final state");
    // Two calls of 3 rows carry the state: the same bits as one call of 6, with or without history.
    let mut state2 = state0.clone();
    let mut z2 = vec![0f32; rows * n_out];
    let h = rows / 2;
    m.forward(&params, &x[..h * n_in], h, &mut z2[..h * n_out], &mut state2, None, 1);
    m.forward(&params, &x[h * n_in..], h, &mut z2[h * n_out..], &mut state2, None, 2);
    assert_eq!(z, z2);
    assert_eq!(state, state2);
}

#[test]
fn memory_backward_is_the_one_step_truncated_gradient() {
    // Row by row with the previous state held fixed (the truncation), finite differences of
    // L_r = Σ_j c_rj z_rj give each row's share; the batch backward must be their sum.
    let (n_in, n_out, rows) = (5, 4, 3);
    let (m, params, x, state0) = memory_setup(n_in, n_out, rows, 23);
    let mut rng = Rng::new(24, stream::INIT);
    let c: Vec<f32> = (0..rows * n_out).map(|_| u(&mut rng, -1.0, 1.0)).collect();
    let mut state = state0.clone();
    let mut z = vec![0f32; rows * n_out];
    let mut hist = vec![0f32; m.history_len(rows)];
    m.forward(&params, &x, rows, &mut z, &mut state, Some(&mut hist), 1);
    let mut grads = vec![f32::NAN; m.own_params()];
    let mut dx = vec![f32::NAN; rows * n_in];
    m.backward(&params, &mut grads, &x, &c, &hist, Some(&mut dx), rows, 1);

    let mut num_p = vec![0f64; params.len()];
    let mut num_x = vec![0f64; rows * n_in];
    for r in 0..rows {
        let prev: Vec<f32> = (0..n_in * n_out).map(|v| hist[((v / n_out) * rows + r) * n_out + v % n_out]).collect();
        let cr = &c[r * n_out..(r + 1) * n_out];
        let loss = |p: &[f32], xr: &[f32]| {
            let mut s = prev.clone();
            let mut zr = vec![0f32; n_out];
            m.forward(p, xr, 1, &mut zr, &mut s, None, 1);
            zr.iter().zip(cr).map(|(&z, &c)| z as f64 * c as f64).sum::<f64>()
        };
        let mut p = params.clone();
        let xr: Vec<f32> = x[r * n_in..(r + 1) * n_in].to_vec();
        for (v, n) in num_p.iter_mut().enumerate() {
            *n += fd(&mut p, v, H, |p| loss(p, &xr));
        }
        let mut xr2 = xr.clone();
        for i in 0..n_in {
            num_x[r * n_in + i] = fd(&mut xr2, i, H, |xr| loss(&params, xr));
        }
    }
    let w = compare("memory dθ, db", &grads, &num_p).max(compare("memory dx", &dx, &num_x));
    println!("memory: worst error {:.1}% of the tolerance", 100.0 * w);
}

#[test]
fn memory_threads_one_and_two_give_identical_bits() {
    let (n_in, n_out, rows) = (100, 80, 16);
    let (m, params, x, state0) = memory_setup(n_in, n_out, rows, 31);
    let pool = latent::pool::pool(2).unwrap();
    let mut rng = Rng::new(32, stream::INIT);
    let dz: Vec<f32> = (0..rows * n_out).map(|_| u(&mut rng, -1.0, 1.0)).collect();
    let run = |threads: usize| {
        pool.install(|| {
            let mut state = state0.clone();
            let mut z = vec![0f32; rows * n_out];
            let mut hist = vec![0f32; m.history_len(rows)];
            m.forward(&params, &x, rows, &mut z, &mut state, Some(&mut hist), threads);
            let mut g = vec![0f32; m.own_params()];
            let mut dx = vec![0f32; rows * n_in];
            m.backward(&params, &mut g, &x, &dz, &hist, Some(&mut dx), rows, threads);
            (z, state, g, dx)
        })
    };
    assert_eq!(run(1), run(2));
}

// ---------------------------------------------------------------------------------------------
// The centred form and the near-identity start

/// Every family's layer computes z_j = Σ_i (f(x_i; θ_ij) − f(0; θ_ij)) + b_j (the f(0) term only
/// for the centred families, where it is not 0), checked in f64 against the per-connection f;
/// and exactly the families with a constant part are centred.
#[test]
fn a_layer_sums_each_connection_less_its_value_at_zero() {
    let (n_in, n_out, rows) = (5, 4, 3);
    let mut rng = Rng::new(11, stream::INIT);
    for fam in Family::ALL {
        let layer = Functional::new(n_in, n_out, fam, 0, 5);
        let mut params = vec![0f32; layer.own_params()];
        let plane = n_in * n_out;
        for v in &mut params {
            *v = u(&mut rng, -0.9, 0.9);
        }
        let x: Vec<f32> = (0..rows * n_in).map(|_| u(&mut rng, -1.0, 1.0)).collect();
        let mut z = vec![0f32; rows * n_out];
        layer.forward(&params, &x, rows, &mut z, 1);
        let signs = layer.signs();
        let k = fam.params_per_connection();
        let mut any_offset = false;
        for r in 0..rows {
            for j in 0..n_out {
                let mut want = params[layer.b + j] as f64;
                for i in 0..n_in {
                    let at = i * n_out + j;
                    let t: Vec<f32> = (0..k).map(|kk| params[kk * plane + at]).collect();
                    let s = if signs.is_empty() { 1.0 } else { signs[at] };
                    let f0 = fam.f(0.0, &t, s) as f64;
                    any_offset |= f0 != 0.0;
                    want += fam.f(x[r * n_in + i], &t, s) as f64 - if fam.centred() { f0 } else { 0.0 };
                }
                let got = z[r * n_out + j] as f64;
                assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "{fam:?} z[{r},{j}] {got} against {want}");
            }
        }
        assert_eq!(any_offset, fam.centred(), "{fam:?}: centred exactly when f(0; θ) can be non-zero");
    }
}

/// A square w²x, w²x² or s w²x² layer starts near the identity (its diagonal w² at the family's
/// gain, the rest at a tenth of the lognormal or uniform draw); a non-square one, and every other
/// family, as before. Every bias starts at 0.
#[test]
fn square_one_signed_and_squaring_layers_start_near_the_identity() {
    for fam in Family::ALL {
        for (n_in, n_out) in [(16, 16), (16, 12)] {
            let layer = Functional::new(n_in, n_out, fam, 0, 5);
            let mut params = vec![f32::NAN; layer.own_params()];
            layer.init_scaled(&mut params, 2.0 / (n_in + n_out) as f32, &mut Rng::new(3, stream::INIT));
            assert!(params[layer.b..].iter().all(|&v| v == 0.0), "{fam:?}");
            let diag: Vec<f32> = (0..n_in.min(n_out)).map(|i| params[i * n_out + i]).collect();
            match (fam.diagonal_gain(), n_in == n_out) {
                (Some(g), true) => {
                    assert!(diag.iter().all(|&w| w == g.sqrt()), "{fam:?} diagonal {diag:?}");
                    let off: f32 =
                        (0..n_in * n_out).filter(|q| q % (n_out + 1) != 0).map(|q| params[q] * params[q]).sum();
                    let mean_off = off / (n_in * n_out - n_in) as f32;
                    assert!(mean_off < 0.05 * g, "{fam:?} off-diagonal mean w² {mean_off}");
                }
                _ => assert!(diag.iter().any(|&w| w != diag[0]), "{fam:?} {n_in}x{n_out} has no set diagonal"),
            }
        }
    }
    assert_eq!(Family::F01.diagonal_gain(), Some(1.25));
    assert_eq!(Family::F17.diagonal_gain(), Some(1.75));
    assert_eq!(Family::F18.diagonal_gain(), Some(1.75));
}

/// A model file written before the centred form (version 4: F05 and F11 encoder and code, an F12
/// decoder and an F20 output layer, saved by the build of 1583e8f) loads as the network it was:
/// its outputs are those that build printed, to float rounding, because the biases take the
/// connections' values at 0. Saved again it is version 8 and loads bit for bit.
#[test]
fn a_model_file_from_before_the_centred_form_keeps_its_function() {
    let path = common::root().join("tests/fixtures/functional_v4.lat");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 4);
    let net = latent::model_file::from_bytes(&bytes).unwrap();
    let x = latent::Matrix::from_vec(2, 6, (0..12).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
    let recon_then = [
        0.27252614,
        0.057119954,
        0.7690982,
        0.034495372,
        0.75304884,
        0.66143006,
        0.31478631,
        0.5251183,
        0.37194976,
        0.8042924,
        0.59230083,
        0.41095638,
    ];
    let code_then = [-0.5206685, -0.07368845, -0.556958, 0.021980321, 0.43580657, 0.2928801, 0.41063738, -0.3193988];
    let close = |got: &[f32], want: &[f32]| got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 2e-6);
    let recon = net.reconstruct(&x).unwrap();
    let code = net.encode(&x).unwrap();
    assert!(close(recon.as_slice(), &recon_then), "{:?}", recon.as_slice());
    assert!(close(code.as_slice(), &code_then), "{:?}", code.as_slice());
    let again = latent::model_file::to_bytes(&net);
    assert_eq!(u32::from_le_bytes(again[8..12].try_into().unwrap()), 8);
    let back = latent::model_file::from_bytes(&again).unwrap();
    assert_eq!(back.params(), net.params());
    assert_eq!(back.reconstruct(&x).unwrap().as_slice(), recon.as_slice());
}
