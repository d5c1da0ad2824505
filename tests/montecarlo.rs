//! The gradient-free Monte-Carlo optimizer: it reaches known optima within stated budgets, never
//! shows the loss a vector that violates a constraint, is bit-reproducible for any thread count,
//! gives calibrated weak confidence intervals, and reports bad input as errors (Rust and C API).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use latent::montecarlo::*;
use latent::rng::Rng;

fn settings(seed: u64) -> Settings {
    Settings { seed, threads: 2, ..Settings::default() }
}

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2).map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2)).sum()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn shifted_quadratic_10d() {
    let target: Vec<f64> = (0..10).map(|i| 0.3 * i as f64 - 1.2).collect();
    let w: Vec<f64> = (0..10).map(|i| 1.0 + i as f64).collect();
    let loss = |x: &[f64]| x.iter().zip(&target).zip(&w).map(|((a, b), w)| w * (a - b).powi(2)).sum::<f64>();
    let specs = vec![ParamSpec { prior: Prior::Uniform { low: -3.0, high: 3.0 }, ..ParamSpec::default() }; 10];
    let mc = minimize(settings(1), specs, &loss).unwrap();
    let err = max_abs_diff(mc.best().unwrap(), &target);
    println!(
        "quadratic 10-D: max |x - x*| {err:.2e}, loss {:.2e}, {} evaluations, {} iterations, converged {}",
        mc.best_loss(),
        mc.evaluations(),
        mc.iterations(),
        mc.converged()
    );
    assert!(err < 1e-4, "max error {err}");
    assert!(mc.evaluations() <= 100_000, "{} evaluations", mc.evaluations());
    assert!(mc.converged());
    // The history is the best loss per iteration: non-increasing.
    assert!(mc.history().windows(2).all(|w| w[1] <= w[0]));
}

#[test]
fn rosenbrock_2d_and_4d() {
    for (dim, budget) in [(2usize, 100_000u64), (4, 300_000)] {
        let mut s = settings(3);
        s.max_evaluations = budget;
        let specs = vec![ParamSpec { prior: Prior::Uniform { low: -2.0, high: 2.0 }, ..ParamSpec::default() }; dim];
        let mc = minimize(s, specs, &rosenbrock).unwrap();
        let err = max_abs_diff(mc.best().unwrap(), &vec![1.0; dim]);
        println!(
            "rosenbrock {dim}-D: max |x - 1| {err:.2e}, loss {:.2e}, {} evaluations, converged {}",
            mc.best_loss(),
            mc.evaluations(),
            mc.converged()
        );
        assert!(err < 1e-3, "{dim}-D: max error {err}");
    }
}

#[test]
fn constrained_rosenbrock_never_sees_a_violating_vector() {
    // 4-D Rosenbrock with x0 > 0, x1 in [0.5, 2], x3 fixed at 1 (the optimum stays (1, 1, 1, 1)),
    // x2 with a custom (logistic) proposal: a loss that counts every violating vector it sees.
    let violations = AtomicU64::new(0);
    let calls = AtomicU64::new(0);
    let loss = |x: &[f64]| {
        calls.fetch_add(1, Ordering::Relaxed);
        let ok = x[0] > 0.0 && (0.5..=2.0).contains(&x[1]) && x[3] == 1.0;
        if !ok {
            violations.fetch_add(1, Ordering::Relaxed);
        }
        rosenbrock(x)
    };
    let logistic: QuantileFn = Arc::new(|_, c, s, u| c + s * 3f64.sqrt() / std::f64::consts::PI * (u / (1.0 - u)).ln());
    let specs = vec![
        ParamSpec {
            prior: Prior::Normal { mean: 0.0, sd: 1.0 },
            constraint: Constraint::positive(),
            ..ParamSpec::default()
        },
        ParamSpec {
            prior: Prior::Uniform { low: -3.0, high: 3.0 },
            constraint: Constraint::Interval { low: 0.5, high: 2.0 },
            ..ParamSpec::default()
        },
        ParamSpec { proposal: Proposal::Custom(logistic), ..ParamSpec::default() },
        ParamSpec { constraint: Constraint::Fixed(1.0), proposal: Proposal::Uniform, ..ParamSpec::default() },
    ];
    let mut s = settings(7);
    s.max_evaluations = 200_000;
    let mut mc = minimize(s, specs, &loss).unwrap();
    let err = max_abs_diff(mc.best().unwrap(), &[1.0; 4]);
    println!("constrained rosenbrock 4-D: max |x - 1| {err:.2e}, {} evaluations", mc.evaluations());
    assert!(err < 1e-3, "max error {err}");
    assert_eq!(mc.best().unwrap()[3], 1.0);
    // Intervals evaluate near the optimum too, also through the constraints.
    let iv = mc.intervals(&loss, &IntervalSettings::new(0.9, Temperature::Given(1e-4))).unwrap();
    assert_eq!((iv.lower[3], iv.upper[3]), (1.0, 1.0), "a fixed parameter has a zero-width interval");
    assert!(iv.lower[0] > 0.0 && iv.lower[1] >= 0.5 && iv.upper[1] <= 2.0);
    assert_eq!(calls.load(Ordering::Relaxed), mc.evaluations());
    assert_eq!(violations.load(Ordering::Relaxed), 0, "the loss saw violating vectors");
}

#[test]
fn same_seed_is_bit_identical_for_any_thread_count() {
    let run = |seed: u64, threads: usize| {
        let s = Settings { seed, threads, max_evaluations: 20_000, ..Settings::default() };
        let mc = minimize(s, vec![ParamSpec::default(); 3], &rosenbrock).unwrap();
        (mc.best().unwrap().to_vec(), mc.best_loss(), mc.history().to_vec(), mc.evaluations())
    };
    let a = run(5, 1);
    let b = run(5, 2);
    let c = run(5, 0);
    assert!(a.0.iter().zip(&b.0).all(|(x, y)| x.to_bits() == y.to_bits()), "{:?} vs {:?}", a.0, b.0);
    assert!(a == b && a == c);
    let d = run(6, 2);
    assert!(d.0 != a.0, "different seeds gave the same best");
}

#[test]
fn a_later_run_continues_from_the_best_on_a_new_loss() {
    // KernelML's runs: a second run on a shifted loss (a new "minibatch") starts around the
    // first run's best and reaches the new optimum.
    let mut mc = MonteCarlo::new(settings(2), 3).unwrap();
    mc.run(&|x: &[f64]| x.iter().map(|v| (v - 0.5).powi(2)).sum()).unwrap();
    assert!(max_abs_diff(mc.best().unwrap(), &[0.5; 3]) < 1e-5);
    let before = mc.iterations();
    mc.run(&|x: &[f64]| x.iter().map(|v| (v - 0.6).powi(2)).sum()).unwrap();
    assert!(max_abs_diff(mc.best().unwrap(), &[0.6; 3]) < 1e-5);
    assert!(mc.iterations() > before && mc.history().len() == mc.iterations());
    // A start set in bulk is where the next run begins.
    mc.set_start(&[3.0, 3.0, 3.0]).unwrap();
    assert!(mc.best_loss().is_nan());
    mc.run(&|x: &[f64]| x.iter().map(|v| (v - 3.2).powi(2)).sum()).unwrap();
    assert!(max_abs_diff(mc.best().unwrap(), &[3.2; 3]) < 1e-5);
}

#[test]
fn non_finite_losses_are_never_chosen() {
    // NaN on half of the space: the optimum (0.3) is on the finite side.
    let loss = |x: &[f64]| if x[0] < 0.0 { f64::NAN } else { (x[0] - 0.3).powi(2) + x[1] * x[1] };
    let mc = minimize(settings(4), vec![ParamSpec::default(); 2], &loss).unwrap();
    assert!(mc.best_loss().is_finite() && (mc.best().unwrap()[0] - 0.3).abs() < 1e-5);
    let all_nan = |_: &[f64]| f64::NAN;
    let e = minimize(settings(4), vec![ParamSpec::default(); 2], &all_nan).unwrap_err();
    assert!(matches!(e, latent::Error::NonFinite(_)), "{e}");
}

/// y = a + b x + N(0, sigma^2) for n points x in [0, 10]; returns (x, y).
fn regression_data(seed: u64, n: usize, a: f64, b: f64, sigma: f64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed, 77);
    let x: Vec<f64> = (0..n).map(|i| 10.0 * i as f64 / (n - 1) as f64).collect();
    let y = x
        .iter()
        .map(|&x| {
            let u1 = 1.0 - rng.uniform_f64();
            let u2 = rng.uniform_f64();
            a + b * x + sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    (x, y)
}

/// OLS standard errors of (a, b).
fn ols_se(x: &[f64], y: &[f64]) -> [f64; 2] {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let b = x.iter().zip(y).map(|(u, v)| (u - mx) * (v - my)).sum::<f64>() / sxx;
    let a = my - b * mx;
    let sse: f64 = x.iter().zip(y).map(|(u, v)| (v - a - b * u).powi(2)).sum();
    let s2 = sse / (n - 2.0);
    [(s2 * (1.0 / n + mx * mx / sxx)).sqrt(), (s2 / sxx).sqrt()]
}

#[test]
fn regression_intervals_are_calibrated() {
    // 300 data sets of n = 100 points, y = 1.5 - 0.7 x + N(0, 0.5^2), SSE loss, level 0.9.
    // The 600 intervals (a and b) should cover the truth 540 times (a little less: z in place of
    // Student's t with 98 degrees of freedom gives 0.898): the binomial sd is 7.3, and we accept
    // 518..=562 (±3 sd). Intervals from a wrong temperature (SSE / (n - p) instead of
    // 2 SSE / (n - p): width / sqrt 2, coverage ~0.76) or a wrong z (the 95% one: coverage
    // ~0.95, 570 expected, and width +19%) fail this bound and the width check against OLS.
    let (a0, b0, sigma, n) = (1.5, -0.7, 0.5, 100usize);
    let level = 0.9;
    let z = normal_quantile(0.95);
    let (mut covered, mut total) = (0usize, 0usize);
    let mut worst_ratio: f64 = 1.0;
    let mut evals = 0u64;
    let seeds = 300u64;
    for seed in 0..seeds {
        let (x, y) = regression_data(seed, n, a0, b0, sigma);
        let loss = |t: &[f64]| x.iter().zip(&y).map(|(u, v)| (v - t[0] - t[1] * u).powi(2)).sum::<f64>();
        let specs = vec![ParamSpec { prior: Prior::Uniform { low: -5.0, high: 5.0 }, ..ParamSpec::default() }; 2];
        let mut mc = minimize(settings(seed), specs, &loss).unwrap();
        let iv = mc.intervals(&loss, &IntervalSettings::new(level, Temperature::Observations(n))).unwrap();
        evals += mc.evaluations();
        let se = ols_se(&x, &y);
        for (i, truth) in [a0, b0].into_iter().enumerate() {
            total += 1;
            covered += (iv.lower[i] <= truth && truth <= iv.upper[i]) as usize;
            let ratio = (iv.upper[i] - iv.lower[i]) / (2.0 * z * se[i]);
            if (ratio - 1.0).abs() > (worst_ratio - 1.0).abs() {
                worst_ratio = ratio;
            }
        }
    }
    let coverage = covered as f64 / total as f64;
    println!(
        "intervals: coverage {covered}/{total} = {coverage:.3} at level {level}; worst half-width / (z * OLS se) {worst_ratio:.4}; {} evaluations per fit and intervals",
        evals / seeds
    );
    assert!((518..=562).contains(&covered), "coverage {covered}/{total}");
    assert!((worst_ratio - 1.0).abs() < 0.15, "half-width / (z * OLS se) = {worst_ratio}");
}

#[test]
fn mse_and_sse_give_the_same_intervals_and_a_saddle_is_an_error() {
    let (x, y) = regression_data(3, 60, 0.2, 1.0, 0.3);
    let sse = |t: &[f64]| x.iter().zip(&y).map(|(u, v)| (v - t[0] - t[1] * u).powi(2)).sum::<f64>();
    let mse = |t: &[f64]| sse(t) / 60.0;
    let mut a = minimize(settings(1), vec![ParamSpec::default(); 2], &sse).unwrap();
    let mut b = minimize(settings(1), vec![ParamSpec::default(); 2], &mse).unwrap();
    let s = IntervalSettings::new(0.95, Temperature::Observations(60));
    let (ia, ib) = (a.intervals(&sse, &s).unwrap(), b.intervals(&mse, &s).unwrap());
    for i in 0..2 {
        assert!((ia.sd[i] / ib.sd[i] - 1.0).abs() < 0.02, "{:?} vs {:?}", ia.sd, ib.sd);
    }
    // The diagonal mode gives conditional intervals: narrower than the marginal ones here (a and
    // b are correlated), and never wider.
    let diag = IntervalSettings { full_hessian_max: 0, ..s };
    let id = a.intervals(&sse, &diag).unwrap();
    assert!(!id.full_hessian && id.sd[0] < ia.sd[0] * 1.02 && id.sd[1] < ia.sd[1] * 1.02);
    // A saddle: not positive definite.
    let mut m = MonteCarlo::new(settings(1), 2).unwrap();
    m.set_start(&[0.0, 0.0]).unwrap();
    let e =
        m.intervals(&|t: &[f64]| t[0] * t[0] - t[1] * t[1] + 1.0, &IntervalSettings::new(0.9, Temperature::Given(1.0)));
    assert!(matches!(&e, Err(latent::Error::InvalidArgument(m)) if m.contains("positive definite")), "{e:?}");
}

#[test]
fn bad_settings_and_specs_are_invalid_arguments() {
    use latent::Error::InvalidArgument;
    let bad = |r: latent::Result<MonteCarlo>, what: &str| match r {
        Err(InvalidArgument(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected InvalidArgument mentioning {what}, got {other:?}"),
    };
    bad(MonteCarlo::new(Settings::default(), 0), "number of parameters is 0");
    bad(MonteCarlo::new(Settings { elite: 200, ..Settings::default() }, 2), "elite");
    bad(MonteCarlo::new(Settings { samples: 0, ..Settings::default() }, 2), "samples");
    bad(MonteCarlo::new(Settings { tolerance: f64::NAN, ..Settings::default() }, 2), "tolerance");
    let spec = |prior, constraint| vec![ParamSpec { prior, constraint, ..ParamSpec::default() }];
    bad(
        MonteCarlo::with_specs(Settings::default(), spec(Prior::Normal { mean: 0.0, sd: 0.0 }, Constraint::None)),
        "sd > 0",
    );
    bad(
        MonteCarlo::with_specs(Settings::default(), spec(Prior::Uniform { low: 1.0, high: 1.0 }, Constraint::None)),
        "low < high",
    );
    bad(
        MonteCarlo::with_specs(
            Settings::default(),
            spec(Prior::Uniform { low: f64::NAN, high: 1.0 }, Constraint::None),
        ),
        "low < high",
    );
    bad(
        MonteCarlo::with_specs(
            Settings::default(),
            spec(Prior::default(), Constraint::Interval { low: 2.0, high: 1.0 }),
        ),
        "low < high",
    );
    bad(
        MonteCarlo::with_specs(Settings::default(), spec(Prior::default(), Constraint::Fixed(f64::INFINITY))),
        "not finite",
    );
    let mut mc = MonteCarlo::new(Settings::default(), 2).unwrap();
    let q = |t: &[f64]| t[0] * t[0] + t[1] * t[1];
    let e = mc.intervals(&q, &IntervalSettings::new(0.9, Temperature::Given(1.0))).unwrap_err();
    assert!(e.to_string().contains("no optimum yet"), "{e}");
    mc.run(&q).unwrap();
    for (level, t) in [
        (1.5, Temperature::Given(1.0)),
        (0.0, Temperature::Given(1.0)),
        (0.9, Temperature::Given(-1.0)),
        (0.9, Temperature::Observations(2)),
    ] {
        let e = mc.intervals(&q, &IntervalSettings::new(level, t)).unwrap_err();
        assert!(matches!(e, InvalidArgument(_)), "{e}");
    }
}
