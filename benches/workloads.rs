//! The reference workloads W1, W2 and W3 (the VAE) of ../shared/bench/README.md, timed as the
//! peers time them, printed beside the peers rerun in the same sitting; plus W3 with L = 5
//! samples per example (its cost against L = 1: the encoder runs once either way).
//!
//!   cargo bench --bench workloads                    # latent + JAX (the cheapest peer), 2 threads
//!   PEERS="jax torch_eager" cargo bench --bench workloads
//!   PEERS=none EPOCHS=2 cargo bench --bench workloads   # latent only
//!   ONLY=W3,W3L5 PEERS=none cargo bench --bench workloads   # a subset of the rows
//!   LATENT_GEMM=mm|gemm                              # force one GEMM kernel (default: by CPU)
//!   LATENT_WAIT_POLICY=spin|spin-then-park|park      # the pool's wait policy (scripts/bench_under_load.sh)
//!
//! samples/s = rows per epoch / epoch seconds (median over EPOCHS epochs, after 20 warm-up
//! steps; contiguous minibatches, last partial batch dropped, no shuffling), GFLOP/s counts
//! backward as 2x forward (the peers' convention), single-row latency = encoder alone on one row
//! through the C API on the bench's threads (the peers use theirs; the one-thread figure goes to
//! stderr), median of 1000 calls after 100 warm-up calls. "products alone" is the
//! samples/s a step would reach if it were only its matrix products, each timed hot through the
//! same GEMM seam and threads (`products_alone`): latent's and the best peer's share of it say
//! how much of a step goes to everything else, in the machine's state of the moment.
//! "L3" is [`round_trip_ns`] before and after the workload's epochs: whether the first two CPUs
//! the process may use share an L3 ("shared", a cache line's round trip about 60 ns) or not
//! ("split", about 340 ns), which the 2-core KVM guests here switch between; "busy" (µs) where
//! another process holds one of the CPUs (`scripts/bench_under_load.sh`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use latent::gemm::{Kernel, Operand, gemm};
use latent::{
    Activation, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainable, Trainer,
    Vae, VaeSpec,
};

const ROWS: usize = 60_000;
const COLS: usize = 784;

enum Model {
    Ae(NetworkSpec),
    Vae(VaeSpec),
}

struct Workload {
    id: &'static str,
    spec: Model,
    train: TrainConfig,
    train_mflop: f64,
    /// (inputs, outputs) of each dense product of a step, in order (the VAE's two heads as
    /// one 512 x 64 product): what `products_alone` times.
    layers: Vec<(usize, usize)>,
}

fn workloads(threads: usize) -> Vec<Workload> {
    let mut w1 = NetworkSpec::new(COLS, &[1000, 500, 250], Activation::Sigmoid, 30);
    w1.code.activation = Activation::Identity;
    w1.loss = Loss::BinaryCrossEntropy;
    w1.init = latent::Init::FanInUniform;
    let mut w2 = NetworkSpec::new(COLS, &[256], Activation::Relu, 64);
    w2.output_activation = Activation::Sigmoid;
    w2.loss = Loss::Mse;
    w2.init = latent::Init::FanInUniform;
    let base = TrainConfig { threads, shuffle: false, drop_last: true, epochs: 1, ..Default::default() };
    let mut w3 = VaeSpec::new(COLS, &[512], 32, &[512], Activation::Relu);
    w3.init = latent::Init::FanInUniform;
    let w3l5 = VaeSpec { num_samples: 5, ..w3.clone() };
    let adam = TrainConfig {
        batch_size: 128,
        learning_rate: 1e-3,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        ..base
    };
    let vae_layers = vec![(COLS, 512), (512, 64), (32, 512), (512, COLS)];
    vec![
        Workload {
            id: "W1",
            spec: Model::Ae(w1),
            train: TrainConfig {
                batch_size: 128,
                learning_rate: 0.01,
                optimizer: OptimizerConfig { kind: OptimizerKind::Sgd, momentum: 0.9, ..Default::default() },
                ..base
            },
            train_mflop: 16.998,
            layers: pairs(&[COLS, 1000, 500, 250, 30, 250, 500, 1000, COLS]),
        },
        Workload {
            id: "W2",
            spec: Model::Ae(w2),
            train: TrainConfig {
                batch_size: 256,
                learning_rate: 1e-3,
                optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
                ..base
            },
            train_mflop: 2.605,
            layers: pairs(&[COLS, 256, 64, 256, COLS]),
        },
        Workload { id: "W3", spec: Model::Vae(w3), train: adam, train_mflop: 5.112, layers: vae_layers.clone() },
        // L = 5: the encoder (0.868 MFLOP forward) once, the decoder (0.836) five times.
        Workload {
            id: "W3L5",
            spec: Model::Vae(w3l5),
            train: adam,
            train_mflop: 3.0 * (0.868 + 5.0 * 0.836),
            layers: Vec::new(),
        },
    ]
}

fn pairs(dims: &[usize]) -> Vec<(usize, usize)> {
    dims.windows(2).map(|d| (d[0], d[1])).collect()
}

/// Seconds per step of a workload's matrix products alone (each layer's forward product, its
/// weight gradient, and its input gradient except the first layer's), each the best of 20
/// through the library's GEMM seam on `threads` threads: the bound a step could reach if
/// everything else (activations, loss, optimizer, hand-offs) cost nothing.
fn products_alone(batch: usize, layers: &[(usize, usize)], threads: usize) -> f64 {
    let pool = latent::pool::pool(threads).unwrap();
    let mut rng = latent::rng::Rng::new(7, 0);
    let mut fill = |n: usize| (0..n).map(|_| rng.uniform() - 0.5).collect::<Vec<f32>>();
    let mut total = 0.0;
    for (l, &(i, o)) in layers.iter().enumerate() {
        let (x, w, dz) = (fill(batch * i), fill(i * o), fill(batch * o));
        let (mut y, mut dw, mut dx) = (vec![0f32; batch * o], vec![0f32; i * o], vec![0f32; batch * i]);
        let best = |f: &mut (dyn FnMut() + Send)| {
            pool.install(|| {
                (0..25)
                    .map(|r| {
                        let t = Instant::now();
                        f();
                        if r < 5 { f64::MAX } else { t.elapsed().as_secs_f64() }
                    })
                    .fold(f64::MAX, f64::min)
            })
        };
        total += best(&mut || gemm(batch, o, i, 1.0, Operand::n(&x, i), Operand::n(&w, o), 0.0, &mut y, o, threads));
        total += best(&mut || gemm(i, o, batch, 1.0, Operand::t(&x, i), Operand::n(&dz, o), 0.0, &mut dw, o, threads));
        if l > 0 {
            total +=
                best(&mut || gemm(batch, i, o, 1.0, Operand::n(&dz, o), Operand::t(&w, o), 0.0, &mut dx, i, threads));
        }
    }
    total
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// sgemm 1024^3 through the library's GEMM seam on `threads` threads: best of 5 runs of 10.
fn gemm_peak(threads: usize) -> f64 {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let b = a.clone();
    let mut c = vec![0f32; n * n];
    let pool = latent::pool::pool(threads).unwrap();
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        pool.install(|| {
            for _ in 0..10 {
                gemm(n, n, n, 1.0, Operand::n(&a, n), Operand::n(&b, n), 0.0, &mut c, n, threads);
            }
        });
        best = best.max(10.0 * 2.0 * (n * n * n) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// Single-row encode latency through the C API, in microseconds.
fn encode_latency_us(net: &Network, threads: usize) -> f64 {
    use latent::ffi::*;
    let params = net.params().to_vec();
    let spec = net.spec().clone();
    let mut n = Network::from_params(spec, &params).unwrap();
    n.set_threads(threads);
    let handle = Box::into_raw(Box::new(latent::ffi::network::latent_network_from(n)));
    let x: Vec<f32> = (0..COLS).map(|i| (i % 255) as f32 / 255.0).collect();
    let mut code = vec![0f32; 64];
    let mut times = Vec::with_capacity(1000);
    for i in 0..1100 {
        let t = Instant::now();
        let st = unsafe { latent_network_encode(handle, x.as_ptr(), 1, COLS, code.as_mut_ptr(), code.len()) };
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(st, LATENT_STATUS_OK);
        if i >= 100 {
            times.push(dt * 1e6);
        }
    }
    unsafe { latent_network_free(handle) };
    median(times)
}

struct Row {
    id: &'static str,
    samples_per_s: f64,
    spread: (f64, f64),
    gflops: f64,
    latency_us: f64,
    /// samples/s if the step were its products alone (`products_alone`; 0: not timed).
    bound: f64,
}

/// Single-row latency of the VAE's encoder (posterior mean and log-variance), in microseconds.
fn vae_encode_latency_us(vae: &Vae, threads: usize) -> f64 {
    let mut v = vae.clone();
    v.set_threads(threads);
    let x = Matrix::from_vec(1, COLS, (0..COLS).map(|i| (i % 255) as f32 / 255.0).collect()).unwrap();
    let mut times = Vec::with_capacity(1000);
    for i in 0..1100 {
        let t = Instant::now();
        let out = v.encode(&x).unwrap();
        let dt = t.elapsed().as_secs_f64();
        std::hint::black_box(out);
        if i >= 100 {
            times.push(dt * 1e6);
        }
    }
    median(times)
}

/// Per-epoch samples/s after 20 warm-up steps.
fn time_epochs<M: Trainable>(m: &mut M, w: &Workload, x: &Matrix, epochs: usize) -> Vec<f64> {
    let warm = x.slice_rows(0, 20 * w.train.batch_size);
    Trainer::new(w.train).unwrap().fit(m, &warm, None, None).unwrap();
    let mut tr = Trainer::new(TrainConfig { epochs, ..w.train }).unwrap();
    tr.fit(m, x, None, None).unwrap();
    let sps: Vec<f64> = tr.history().iter().map(|r| r.samples_per_second).collect();
    eprintln!("{}: per-epoch samples/s {:?}", w.id, sps.iter().map(|v| v.round()).collect::<Vec<_>>());
    sps
}

fn run_workload(w: &Workload, x: &Matrix, epochs: usize, threads: usize) -> Row {
    let (sps, latency_us) = match &w.spec {
        Model::Ae(spec) => {
            let mut net = Network::new(spec.clone()).unwrap();
            let sps = time_epochs(&mut net, w, x, epochs);
            let (one, many) = (encode_latency_us(&net, 1), encode_latency_us(&net, threads));
            eprintln!("{}: encode one row {one:.1} µs on 1 thread, {many:.1} µs on {threads}", w.id);
            (sps, many)
        }
        Model::Vae(spec) => {
            let mut vae = Vae::new(spec.clone()).unwrap();
            let sps = time_epochs(&mut vae, w, x, epochs);
            let (one, many) = (vae_encode_latency_us(&vae, 1), vae_encode_latency_us(&vae, threads));
            eprintln!("{}: encode one row {one:.1} µs on 1 thread, {many:.1} µs on {threads}", w.id);
            (sps, many)
        }
    };
    let lo = sps.iter().cloned().fold(f64::MAX, f64::min);
    let hi = sps.iter().cloned().fold(0.0, f64::max);
    let med = median(sps);
    let b = w.train.batch_size;
    let bound = if w.layers.is_empty() { 0.0 } else { b as f64 / products_alone(b, &w.layers, threads) };
    Row { id: w.id, samples_per_s: med, spread: (lo, hi), gflops: med * w.train_mflop / 1e3, latency_us, bound }
}

/// Runs the peers' script (../shared/bench/peers/run_all.sh) and returns its table and the
/// (workload, peer, samples/s) rows parsed from it.
/// (workload, peer, samples/s)
type PeerRow = (String, String, f64);

fn run_peers(only: &str) -> Option<(String, Vec<PeerRow>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("../shared/bench/peers/run_all.sh");
    if !script.exists() {
        eprintln!("peers: {} not found; skipping them", script.display());
        return None;
    }
    let out = root.join("target/peers");
    let _ = std::fs::remove_dir_all(&out);
    eprintln!("peers: running {only} (PASSES=1) ...");
    let st = Command::new("bash")
        .arg(&script)
        .env("ONLY", only)
        .env("PASSES", std::env::var("PEER_PASSES").unwrap_or_else(|_| "1".into()))
        .env("PEERS_OUT", &out)
        .status()
        .ok()?;
    if !st.success() {
        eprintln!("peers: run_all.sh failed ({st})");
    }
    let table = std::fs::read_to_string(out.join("table.md")).ok()?;
    let mut rows = Vec::new();
    for line in table.lines() {
        let cells: Vec<&str> = line.split('|').map(|c| c.trim()).collect();
        if cells.len() > 3 && ["W1", "W2", "W3"].contains(&cells[1]) {
            let v: String = cells[3].chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
            if let Ok(v) = v.parse::<f64>() {
                rows.push((cells[1].to_string(), cells[2].replace('*', ""), v));
            }
        }
    }
    Some((table, rows))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench -- --list
    }
    // The L3 label alone, for benches/sitting/sitting.py to read around the peers' runs.
    if std::env::var_os("ROUND_TRIP_ONLY").is_some() {
        println!("round trip {}", l3_label(round_trip_ns()));
        return;
    }
    let threads: usize = std::env::var("THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let epochs: usize = std::env::var("EPOCHS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    match std::env::var("LATENT_GEMM").as_deref() {
        Ok("mm") => latent::gemm::set_kernel(Kernel::MatrixMultiply),
        Ok("gemm") => latent::gemm::set_kernel(Kernel::Gemm),
        _ => {}
    }
    let only = std::env::var("ONLY").unwrap_or_else(|_| "W1,W2,W3,W3L5".into());
    let only: Vec<String> = only.split(',').map(|s| s.trim().to_string()).collect();
    let mut rng = latent::rng::Rng::new(12345, 0);
    let data: Vec<f32> = (0..ROWS * COLS).map(|_| rng.uniform()).collect();
    let x = Matrix::from_vec(ROWS, COLS, data).unwrap();
    let peak = gemm_peak(threads);
    println!(
        "latent {} | {threads} threads | GEMM kernel {:?} | products {:?} | wait policy {:?} | sgemm 1024^3 peak {peak:.1} GFLOP/s",
        env!("CARGO_PKG_VERSION"),
        latent::gemm::kernel(),
        latent::gemm::precision(),
        latent::pool::wait_policy()
    );
    let mut rows = Vec::new();
    for w in workloads(threads).iter().filter(|w| only.iter().any(|o| o == w.id)) {
        let before = round_trip_ns();
        let r = run_workload(w, &x, epochs, threads);
        let cores = format!("{} / {}", l3_label(before), l3_label(round_trip_ns()));
        eprintln!("{}: {:.0} samples/s", r.id, r.samples_per_s);
        rows.push((r, cores));
    }
    let peers = match std::env::var("PEERS").as_deref() {
        Ok("none") => None,
        Ok(p) => run_peers(p),
        Err(_) => run_peers("jax"),
    };
    println!();
    println!(
        "| workload | latent samples/s (min-max) | GFLOP/s | % of GEMM peak | products alone, samples/s | latent, best peer: % of it | encode µs, batch 1 | vs best peer | L3 before / after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (r, cores) in &rows {
        let best = peers.as_ref().and_then(|(_, p)| {
            p.iter().filter(|(w, _, _)| w == r.id).max_by(|a, b| a.2.partial_cmp(&b.2).unwrap()).cloned()
        });
        let of_bound = |v: f64| if r.bound > 0.0 { format!("{:.0}%", 100.0 * v / r.bound) } else { "-".into() };
        let peer_of_bound = best.as_ref().map_or("-".into(), |b| of_bound(b.2));
        let vs = best.map_or("-".into(), |(_, name, v)| format!("{:.2}x {name} ({v:.0})", r.samples_per_s / v));
        println!(
            "| {} | {:.0} ({:.0}-{:.0}) | {:.1} | {:.0}% | {} | {}, {peer_of_bound} | {:.1} | {vs} | {cores} |",
            r.id,
            r.samples_per_s,
            r.spread.0,
            r.spread.1,
            r.gflops,
            100.0 * r.gflops / peak,
            if r.bound > 0.0 { format!("{:.0}", r.bound) } else { "-".into() },
            of_bound(r.samples_per_s),
            r.latency_us
        );
    }
    let find = |id: &str| rows.iter().find(|(r, _)| r.id == id).map(|(r, _)| r.samples_per_s);
    if let (Some(l1), Some(l5)) = (find("W3"), find("W3L5")) {
        println!(
            "\nW3 with L = 5 samples per example: {l5:.0} samples/s, {:.2}x the time of L = 1 (5x if the encoder ran five times: {:.2}x by FLOPs)",
            l1 / l5,
            3.0 * (0.868 + 5.0 * 0.836) / 5.112
        );
    }
    if let Some((table, _)) = peers {
        println!("\nPeers, same machine, same sitting (../shared/bench/peers/run_all.sh):\n{table}");
    }
}

/// The round trip of one cache line between the process's first two CPUs, in ns (two threads
/// pinned there, passing a counter back and forth): about 60 where the two share an L3 (one
/// CCD), about 340 where they do not. The 2-core KVM guests this project is measured on are
/// given either, and switch within seconds; across L3s latent's two-thread steps run at about
/// one thread's speed (stop 39: W3 in bf16 57-64k samples/s at 52-81 ns, 31-35k at 328-366 ns)
/// and JAX's drop too. At most about 0.2 s; None with fewer than two CPUs.
fn round_trip_ns() -> Option<f64> {
    use std::sync::atomic::{
        AtomicU64,
        Ordering::{Acquire, Release},
    };
    #[repr(align(64))]
    struct Line(AtomicU64);
    const DONE: u64 = u64::MAX;
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return None;
    }
    let cpus: Vec<usize> =
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).take(2).collect();
    if cpus.len() < 2 {
        return None;
    }
    let pin = |cpu: usize| {
        // SAFETY: as above; pins the calling thread only.
        unsafe {
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut one);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
        }
    };
    let line = Line(AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpus[1]);
            loop {
                match line.0.load(Acquire) {
                    DONE => return,
                    v if v % 2 == 1 => line.0.store(v + 1, Release),
                    _ => std::hint::spin_loop(),
                }
            }
        });
        pin(cpus[0]);
        // A busy process on either CPU stretches a round trip to its time slice: stop at 50 ms.
        let t0 = Instant::now();
        let mut trips = 0u64;
        'trips: while trips < 100_000 && (!trips.is_multiple_of(256) || t0.elapsed().as_millis() < 50) {
            line.0.store(2 * trips + 1, Release);
            let mut spins = 0u32;
            while line.0.load(Acquire) != 2 * trips + 2 {
                spins += 1;
                if spins.is_multiple_of(1 << 14) && t0.elapsed().as_millis() > 200 {
                    break 'trips;
                }
                std::hint::spin_loop();
            }
            trips += 1;
        }
        let ns = t0.elapsed().as_nanos() as f64 / trips.max(1) as f64;
        line.0.store(DONE, Release);
        // The main thread was pinned for the measurement only.
        // SAFETY: sets this thread's affinity back to the set it had.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        (trips > 0).then_some(ns)
    })
}

fn l3_label(ns: Option<f64>) -> String {
    match ns {
        // Microseconds: the other CPU was busy with another process (time slices), not far.
        Some(ns) => format!(
            "{} ({ns:.0} ns)",
            if ns > 1500.0 {
                "busy"
            } else if ns > 200.0 {
                "split"
            } else {
                "shared"
            }
        ),
        None => "-".into(),
    }
}
