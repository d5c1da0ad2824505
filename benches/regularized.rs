//! The regularised family: what each penalty costs per training step, and the deep MNIST
//! autoencoder of Hinton & Salakhutdinov (2006) trained with layer-wise pretraining (RBMs and
//! shallow autoencoders) against random initialisation.
//!
//!   cargo bench --bench regularized                      # both tables (the second is long)
//!   ONLY=overhead cargo bench --bench regularized        # penalty overhead only (~1 min)
//!   ONLY=rbm cargo bench --bench regularized             # CD-1 updates/s against the dense step
//!   ONLY=hinton HS_ROWS=20000 HS_PRETRAIN_EPOCHS=3 HS_FINETUNE_EPOCHS=5 cargo bench --bench regularized
//!
//! Environment:
//!   THREADS            worker threads (default 0 = all cores)
//!   OVERHEAD_REPS      repetitions of each timing (default 11; the median is printed)
//!   HS_ROWS            training rows of MNIST (default 60000; the test set is always all 10000)
//!   HS_PRETRAIN_EPOCHS epochs per layer of pretraining, RBM and shallow-autoencoder (default 10)
//!   HS_FINETUNE_EPOCHS end-to-end fine-tuning epochs (default 50)
//!   HS_LR              Adam learning rate of fine-tuning and of the random-init run (default 1e-3)
//!   HS_PRETRAIN_LR     Adam learning rate of pretraining (default 3e-3)
//!   HS_BATCH           minibatch size (default 100, the paper's)
//!   HS_SEED            seed of the network and of the shuffles (default 11)
//!
//! Penalty overhead: one training step = `Network::step` (forward and backward with the
//! penalty, corruption or code noise as a `Trainer` applies them) + an Adam update, batch 128,
//! on a fixed set of MNIST minibatches (uniform noise when MNIST is absent). The variants are
//! timed interleaved, round by round, so that load from other processes falls on all of them
//! alike; ms/step is the median over rounds and the ratio is the median of the per-round ratios
//! to the plain step of the same round.

use std::time::Instant;

use latent::corruption::Corruption;
use latent::data::resolve::{find_or_skip, mnist_files};
use latent::data::{Dataset, Scaling};
use latent::network::StepNoise;
use latent::optim::Optimizer;
use latent::regularizer::{Regularization, SparseLayers, Sparsity};
use latent::rng::{Rng, StepDraws};
use latent::train::{Event, PretrainConfig, PretrainMethod, Progress, Rbm, RbmConfig, StageKind, Unit, pretrain};
use latent::{Activation, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer};

const BATCH: usize = 128;
const COLS: usize = 784;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// MNIST (train, test) scaled to [0, 1], the first `train_rows` training rows; None (with a
/// visible SKIPPED line) when the data are absent.
fn mnist(train_rows: usize) -> Option<(Matrix, Matrix)> {
    let dir = find_or_skip("mnist")?;
    let (train_images, _, test_images, _) = mnist_files(&dir).expect("MNIST files");
    let load = |path: &std::path::Path, rows: usize| {
        let mut d = Dataset::from_idx(path, None).expect("read MNIST");
        d.scale(Scaling::Divide255).expect("scale");
        let rows = rows.min(d.rows());
        d.rows_range(0, rows).expect("rows").into_matrix()
    };
    Some((load(&train_images, train_rows), load(&test_images, usize::MAX)))
}

// ---------------------------------------------------------------------------------------------
// Table 1: penalty overhead

struct Shape {
    name: &'static str,
    spec: NetworkSpec,
}

fn shapes() -> Vec<Shape> {
    // W2's shape with sigmoid hidden units (KL sparsity needs activations in (0, 1)).
    let mut w2 = NetworkSpec::new(COLS, &[256], Activation::Sigmoid, 64);
    w2.output_activation = Activation::Sigmoid;
    w2.loss = Loss::Mse;
    w2.seed = 7;
    // The deep net, all sigmoid (the code layer too, so that KL sparsity on it is valid).
    let mut deep = NetworkSpec::new(COLS, &[1000, 500, 250], Activation::Sigmoid, 30);
    deep.loss = Loss::BinaryCrossEntropy;
    deep.seed = 7;
    vec![
        Shape { name: "784-256-64 (W2 shape, sigmoid, MSE)", spec: w2 },
        Shape { name: "784-1000-500-250-30 (sigmoid, BCE)", spec: deep },
    ]
}

fn variants() -> Vec<(&'static str, Regularization)> {
    let r = Regularization::default;
    vec![
        ("plain", r()),
        (
            "(a) KL sparsity, code layer (rho 0.05, beta 0.1)",
            Regularization { sparsity: Sparsity::Kl { rho: 0.05, beta: 0.1 }, ..r() },
        ),
        ("(b) L1 sparsity, code layer (1e-3)", Regularization { sparsity: Sparsity::L1 { lambda: 1e-3 }, ..r() }),
        ("(c) contractive, every encoder layer (1e-3)", Regularization { contractive: 1e-3, ..r() }),
        ("(d) masking corruption (0.25)", Regularization { corruption: Corruption::Masking { level: 0.25 }, ..r() }),
        ("(e) code noise (sigma 1)", Regularization { code_noise: 1.0, ..r() }),
        (
            "(f) KL sparsity, alternate layers from 0",
            Regularization {
                sparsity: Sparsity::Kl { rho: 0.05, beta: 0.1 },
                sparse_layers: SparseLayers::Alternate { start: 0 },
                ..r()
            },
        ),
    ]
}

/// One variant's training state: the network, its workspace, gradient and Adam state. The
/// update goes to a copy of the parameters (the network's own buffer is the library's): the
/// arithmetic is the trainer's, the network just does not move, which a timing does not need.
struct Runner {
    net: Network,
    ws: latent::network::Workspace,
    grads: Vec<f32>,
    params: Vec<f32>,
    opt: Optimizer,
    /// The step counter of the noise draws.
    ctr: u64,
    stochastic: bool,
}

impl Runner {
    fn new(spec: &NetworkSpec, reg: Regularization) -> Runner {
        let spec = NetworkSpec { regularization: reg.clone(), ..spec.clone() };
        let net = Network::new(spec).expect("network");
        let adam = OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() };
        Runner {
            ws: net.workspace(BATCH).expect("workspace"),
            grads: vec![0.0; net.param_count()],
            params: net.params().to_vec(),
            opt: Optimizer::new(adam, net.param_count(), &net.weight_ranges()).expect("adam"),
            ctr: 0,
            stochastic: !reg.corruption.is_none() || reg.code_noise > 0.0,
            net,
        }
    }

    /// `steps` training steps over the minibatches of x in turn; seconds per step.
    fn run(&mut self, x: &Matrix, steps: usize, threads: usize, pool: &latent::pool::Pool) -> f64 {
        let batches = x.rows() / BATCH;
        let ids: Vec<usize> = (0..x.rows()).collect();
        let t = Instant::now();
        for s in 0..steps {
            let b = s % batches;
            let xb = &x.as_slice()[b * BATCH * COLS..(b + 1) * BATCH * COLS];
            self.ctr += 1;
            let noise = self.stochastic.then(|| StepNoise {
                draws: StepDraws::whole(1, self.ctr, BATCH),
                row_ids: &ids[b * BATCH..(b + 1) * BATCH],
                feature_range: None,
            });
            pool.install(|| {
                let l = self.net.step(xb, BATCH, &mut self.ws, &mut self.grads, threads, noise);
                std::hint::black_box(l);
                self.opt.step(&mut self.params, &self.grads, 1e-3, threads);
            });
        }
        t.elapsed().as_secs_f64() / steps as f64
    }
}

fn overhead(threads: usize, mnist_train: Option<&Matrix>) {
    let reps: usize = env("OVERHEAD_REPS", 11);
    let pool = latent::pool::pool(threads).expect("pool");
    let resolved = latent::pool::resolve_threads(threads);
    // 16 minibatches of MNIST (or of uniform noise), cycled.
    let x = match mnist_train {
        Some(m) if m.rows() >= 16 * BATCH => m.slice_rows(0, 16 * BATCH),
        _ => {
            let mut rng = Rng::new(3, 0);
            Matrix::from_vec(16 * BATCH, COLS, (0..16 * BATCH * COLS).map(|_| rng.uniform()).collect()).unwrap()
        }
    };
    println!(
        "\n## Penalty overhead: ms per training step (forward + backward + Adam), batch {BATCH}, {resolved} threads, median of {reps} interleaved rounds\n"
    );
    let mut verdicts = Vec::new();
    for shape in shapes() {
        let mut runners: Vec<(&str, Runner)> =
            variants().into_iter().map(|(name, reg)| (name, Runner::new(&shape.spec, reg))).collect();
        // Steps per round: about 0.25 s of work for the plain step.
        let warm = runners[0].1.run(&x, 5, resolved, &pool);
        let steps = ((0.25 / warm) as usize).clamp(5, 400);
        for (_, r) in runners.iter_mut() {
            r.run(&x, steps.min(10), resolved, &pool);
        }
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); runners.len()];
        for _ in 0..reps {
            for (k, (_, r)) in runners.iter_mut().enumerate() {
                times[k].push(r.run(&x, steps, resolved, &pool));
            }
        }
        println!("{} ({} steps per round)\n", shape.name, steps);
        println!("| variant | ms/step | ratio to plain (min-max over rounds) |");
        println!("|---|---|---|");
        for (k, (name, _)) in runners.iter().enumerate() {
            let ratios: Vec<f64> = times[k].iter().zip(&times[0]).map(|(t, p)| t / p).collect();
            let lo = ratios.iter().cloned().fold(f64::MAX, f64::min);
            let hi = ratios.iter().cloned().fold(0.0, f64::max);
            let ratio = median(ratios);
            println!("| {name} | {:.3} | {ratio:.2}x ({lo:.2}-{hi:.2}) |", 1e3 * median(times[k].clone()));
            if name.starts_with("(c)") {
                verdicts.push((shape.name, ratio));
            }
        }
    }
    for (shape, ratio) in verdicts {
        let holds = if ratio < 1.5 {
            "holds"
        } else if ratio < 2.0 {
            "holds, narrowly"
        } else {
            "FAILS"
        };
        println!("Issue bar (contractive step well under 2x plain) on {shape}: {ratio:.2}x, {holds}");
    }
}

// ---------------------------------------------------------------------------------------------
// Table 2: Hinton & Salakhutdinov (2006)

fn hs_spec(seed: u64) -> NetworkSpec {
    let mut s = NetworkSpec::new(COLS, &[1000, 500, 250], Activation::Sigmoid, 30);
    s.code.activation = Activation::Identity;
    s.output_activation = Activation::Sigmoid;
    s.loss = Loss::BinaryCrossEntropy;
    s.seed = seed;
    s
}

fn hinton(threads: usize, data: Option<(Matrix, Matrix)>) {
    let Some((train, test)) = data else {
        println!("\n## Hinton & Salakhutdinov (2006): skipped, MNIST not found");
        return;
    };
    let pre_epochs: usize = env("HS_PRETRAIN_EPOCHS", 10);
    let fine_epochs: usize = env("HS_FINETUNE_EPOCHS", 50);
    let lr: f32 = env("HS_LR", 1e-3);
    let pre_lr: f32 = env("HS_PRETRAIN_LR", 3e-3);
    let batch: usize = env("HS_BATCH", 100);
    let seed: u64 = env("HS_SEED", 11);
    let resolved = latent::pool::resolve_threads(threads);
    let adam = |epochs: usize, lr: f32| TrainConfig {
        epochs,
        batch_size: batch,
        learning_rate: lr,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        seed,
        threads,
        shuffle: true,
        ..Default::default()
    };
    let per_image = |net: &Network| net.mean_squared_error(&test).expect("test error") * COLS as f64;
    let log = |p: &Progress| {
        if p.event == Event::EpochEnd {
            eprintln!(
                "  {:?} layer {} epoch {}/{}: loss {:.5}, {:.1} s, {:.0} samples/s",
                p.stage.kind,
                p.stage.layer,
                p.epoch + 1,
                p.epochs,
                p.loss,
                p.seconds,
                p.samples_per_second
            );
        }
        true
    };

    eprintln!(
        "H&S: pretraining {pre_epochs} epochs per layer, fine-tuning {fine_epochs} epochs, {} rows",
        train.rows()
    );
    let mut net = Network::new(hs_spec(seed)).expect("network");
    net.set_threads(threads);
    let cfg = PretrainConfig::new(adam(pre_epochs, pre_lr), adam(fine_epochs, lr));
    let t = Instant::now();
    let mut cb = log;
    let report = pretrain(&mut net, &cfg, &train, None, Some(&mut cb)).expect("pretrain");
    let pre_wall = t.elapsed().as_secs_f64();
    let pre_err = per_image(&net);
    let stage_secs = |k: StageKind| -> f64 {
        report.stages.iter().filter(|(s, _)| s.kind == k).flat_map(|(_, h)| h.iter().map(|r| r.seconds)).sum()
    };
    let fine_sps = median(
        report
            .stages
            .iter()
            .filter(|(s, _)| s.kind == StageKind::Finetune)
            .flat_map(|(_, h)| h.iter().map(|r| r.samples_per_second))
            .collect(),
    );
    let pre_only = stage_secs(StageKind::Pretrain);

    // RBM pretraining with rbm.m's settings (SGD 0.1, momentum 0.5 then 0.9 from epoch 5, weight
    // cost 2e-4; the Gaussian top RBM at 1/100 of the rate), then the same fine-tuning.
    eprintln!("H&S: RBM pretraining {pre_epochs} epochs per layer, fine-tuning {fine_epochs} epochs");
    let mut rbm_net = Network::new(hs_spec(seed)).expect("network");
    rbm_net.set_threads(threads);
    let mut rbm_pre = TrainConfig {
        learning_rate: 0.1,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 2e-4,
            ..Default::default()
        },
        ..adam(pre_epochs, 0.1)
    };
    rbm_pre.schedule.momentum_initial = 0.5;
    rbm_pre.schedule.momentum_switch_epoch = 5.min(pre_epochs.saturating_sub(1)).max(1);
    let rbm_cfg = PretrainConfig {
        method: PretrainMethod::Rbm(RbmConfig::default()),
        ..PretrainConfig::new(rbm_pre, adam(fine_epochs, lr))
    };
    let t = Instant::now();
    let mut cb = log;
    let rbm_report = pretrain(&mut rbm_net, &rbm_cfg, &train, None, Some(&mut cb)).expect("RBM pretrain");
    let rbm_wall = t.elapsed().as_secs_f64();
    let rbm_err = per_image(&rbm_net);
    let rbm_pre_secs: f64 = rbm_report
        .stages
        .iter()
        .filter(|(s, _)| s.kind == StageKind::Pretrain)
        .flat_map(|(_, h)| h.iter().map(|r| r.seconds))
        .sum();

    // The same compute: one pretraining epoch over the four layers costs about one epoch of the
    // deep network (shallow autoencoders of 1.57M + 1.0M + 0.25M + 0.015M weights against 2.8M).
    let total_epochs = pre_epochs + fine_epochs;
    eprintln!("H&S: random init, {total_epochs} epochs");
    let mut random = Network::new(hs_spec(seed)).expect("network");
    random.set_threads(threads);
    let t = Instant::now();
    let mut trainer = Trainer::new(adam(total_epochs, lr)).expect("trainer");
    let mut cb = log;
    trainer.fit(&mut random, &train, None, Some(&mut cb)).expect("fit");
    let rnd_wall = t.elapsed().as_secs_f64();
    let rnd_err = per_image(&random);
    let rnd_sps = median(trainer.history().iter().map(|r| r.samples_per_second).collect());

    println!(
        "\n## Hinton & Salakhutdinov (2006) reproduction: 784-1000-500-250-30 MNIST autoencoder, logistic hidden, linear code, BCE from logits, mirrored decoder\n"
    );
    println!(
        "{} training rows, batch {batch}, Adam fine-tuning {fine_epochs} epochs (lr {lr}); pretraining {pre_epochs} epochs per layer (autoencoders: Adam lr {pre_lr}; RBMs: CD-1 with rbm.m's settings); {resolved} threads; test error over all {} test images\n",
        train.rows(),
        test.rows()
    );
    println!("| method | test squared error per image | wall time | throughput |");
    println!("|---|---|---|---|");
    println!("| paper: RBM pretraining (50 epochs/layer) + CG fine-tuning (200 epochs) | 3.00 | - | - |");
    println!("| paper: logistic PCA | 8.01 | - | - |");
    println!("| paper: PCA, 30 components | 13.87 | - | - |");
    println!("| PyTorch Q4: random init, Adam 1e-3, 10 epochs on 60k (../shared/bench/quality) | 20.04 | - | - |");
    println!(
        "| latent: RBM pretraining ({pre_epochs} epochs x 4 layers) + fine-tuning ({fine_epochs} epochs) | {rbm_err:.2} | {rbm_wall:.0} s (pretraining {rbm_pre_secs:.0} s) | - |"
    );
    println!(
        "| latent: shallow-autoencoder pretraining ({pre_epochs} epochs x 4 layers) + fine-tuning ({fine_epochs} epochs) | {pre_err:.2} | {pre_wall:.0} s (pretraining {pre_only:.0} s) | fine-tuning {fine_sps:.0} samples/s |"
    );
    println!(
        "| latent: random init, the same compute ({total_epochs} epochs) | {rnd_err:.2} | {rnd_wall:.0} s | {rnd_sps:.0} samples/s |"
    );
    // The default budget (60000 rows, 10 pretraining epochs per layer, 50 fine-tuning, 90 for
    // random init) at the throughput measured here.
    let rows = train.rows() as f64;
    let pre_per_layer_epoch = pre_only / (4 * pre_epochs).max(1) as f64 / rows;
    let full = 60_000.0 * (2.0 * 40.0 * pre_per_layer_epoch + 2.0 * 50.0 / fine_sps + 60.0 / rnd_sps);
    println!(
        "\nExtrapolation: one 60000-row epoch of the deep net takes about {:.0} s here ({fine_sps:.0} samples/s); a pretraining layer-epoch averages {:.0} s per 60000 rows; the default budget (HS_ROWS=60000, 10 + 50 epochs for both pretrainings, random init 60) would take about {:.0} min.",
        60_000.0 / fine_sps,
        60_000.0 * pre_per_layer_epoch,
        full / 60.0
    );
}

/// CD-1 updates of a 784x500 Bernoulli RBM against training steps of the dense autoencoder of the
/// same size (784-500-784, sigmoid, BCE), both SGD with momentum, batch 100, on the same rows.
fn rbm_throughput(threads: usize, train: Option<&Matrix>) {
    let rows = 10_000usize;
    let x = match train {
        Some(t) => t.slice_rows(0, rows.min(t.rows())),
        None => {
            let mut rng = Rng::new(3, 9);
            Matrix::from_vec(rows, COLS, (0..rows * COLS).map(|_| rng.uniform()).collect()).expect("noise")
        }
    };
    let reps: usize = env("OVERHEAD_REPS", 11).clamp(1, 50).min(5);
    let c = TrainConfig {
        epochs: 1,
        batch_size: 100,
        learning_rate: 0.1,
        optimizer: OptimizerConfig { kind: OptimizerKind::Sgd, momentum: 0.9, ..Default::default() },
        threads,
        ..Default::default()
    };
    let steps = x.rows().div_ceil(100) as f64;
    let (mut rbm_t, mut ae_t) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let mut rbm = Rbm::new(COLS, 500, Unit::Bernoulli, Unit::Bernoulli, 1).expect("rbm");
        let t = Instant::now();
        rbm.fit(&x, &c, RbmConfig::default(), Default::default(), None).expect("rbm fit");
        // fit() also evaluates the free energy of every row once per epoch: time it apart.
        let total = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = rbm.free_energy(&x).expect("free energy");
        rbm_t.push((total - t.elapsed().as_secs_f64()) / steps);
        let mut net = Network::new(NetworkSpec::new(COLS, &[], Activation::Sigmoid, 500)).expect("net");
        let t = Instant::now();
        Trainer::new(c).expect("trainer").fit(&mut net, &x, None, None).expect("fit");
        ae_t.push(t.elapsed().as_secs_f64() / steps);
    }
    let (r, a) = (median(rbm_t), median(ae_t));
    println!("\n## RBM CD-1 against the dense step of the same size (784x500, batch 100, SGD momentum)\n");
    println!("| step | ms/step | updates/s | ratio to the dense step |");
    println!("|---|---|---|---|");
    println!("| 784-500-784 autoencoder step (forward, backward, update) | {:.3} | {:.0} | 1.00x |", a * 1e3, 1.0 / a);
    println!("| RBM CD-1 update (784x500) | {:.3} | {:.0} | {:.2}x |", r * 1e3, 1.0 / r, r / a);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench -- --list
    }
    let threads: usize = env("THREADS", 0);
    let only = std::env::var("ONLY").unwrap_or_else(|_| "overhead,rbm,hinton".into());
    let rows: usize = env("HS_ROWS", 60_000);
    let data = mnist(rows.max(16 * BATCH));
    println!(
        "latent {} | regularized bench | {} threads | GEMM kernel {:?}",
        env!("CARGO_PKG_VERSION"),
        latent::pool::resolve_threads(threads),
        latent::gemm::kernel()
    );
    if only.contains("overhead") {
        overhead(threads, data.as_ref().map(|(train, _)| train));
    }
    if only.contains("rbm") {
        rbm_throughput(threads, data.as_ref().map(|(train, _)| train));
    }
    if only.contains("hinton") {
        let data = data.map(|(train, test)| {
            let r = rows.min(train.rows());
            (if r < train.rows() { train.slice_rows(0, r) } else { train }, test)
        });
        hinton(threads, data);
    }
}
