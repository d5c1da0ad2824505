//! MNIST test accuracy of a functional-transfer classifier per function family and depth (Cai
//! et al. 2017 train networks of up to 10 hidden layers and report "high accuracies for most" of
//! their twenty families; their table, widths and schedule are not public, so this protocol is
//! ours): 784 -> D × [H units of family F, tanh] -> 10 dense logits, softmax cross-entropy, Adam
//! at 1e-3, batch 100, scored on the 10,000 test digits; dense hidden layers of the same width
//! for reference.
//!
//!   cargo bench --bench functional_mnist
//!   DEPTHS=1,3,10 UNITS=64 TRAIN=10000 SEEDS=1,2,3 cargo bench --bench functional_mnist
//!
//! Environment: ONLY (comma-separated family names, e.g. f01,f12, or "dense"), EPOCHS
//! (default 2), LR (Adam's step, default 1e-3), UNITS (H, default 100), DEPTHS (comma-separated D, default 1), TRAIN (training
//! digits, default all 60,000), SEEDS (comma-separated network seeds, default 1), THREADS
//! (default 0 = all cores), INIT (the network's `Init` code, default 0 = auto; 3 =
//! small_uniform gives functional layers the author's U(−0.1, 0.1) ranges), PROBE=1 (also print,
//! per hidden layer at initialisation, the standard deviation of its outputs and the RMS of its
//! parameters' gradient on 1,000 training digits; with CENTER=1 after the biases are centred
//! on those digits as the first fit centres them, `Network::center_functional`).

use std::time::Instant;

use latent::data::{Dataset, Scaling, resolve};
use latent::init::Init;
use latent::layer::{Connection, Family};
use latent::{Activation, LayerSpec, Network, NetworkSpec, TrainConfig, Trainer};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// Per hidden layer: (std of its outputs, RMS of its parameters' gradient) at the current
/// parameters on `data`.
fn probe(net: &Network, data: &Dataset) -> Vec<(f64, f64)> {
    let rows = net.task().training_matrix(data, "data").unwrap();
    let mut ws = net.workspace(rows.rows()).unwrap();
    let mut g = vec![0f32; net.param_count()];
    net.forward_backward(rows.as_slice(), rows.rows(), &mut ws, &mut g, 0);
    let layers = net.layers();
    (0..layers.len() - 1)
        .map(|i| {
            let y = ws.output(i);
            let n = y.len() as f64;
            let m = y.iter().map(|&v| v as f64).sum::<f64>() / n;
            let sd = (y.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n).sqrt();
            let l = &layers[i];
            let gs = &g[l.w..l.b];
            let rms = (gs.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / gs.len() as f64).sqrt();
            (sd, rms)
        })
        .collect()
}

fn main() {
    let Some(dir) = resolve::find("mnist") else {
        println!("{}", resolve::not_found_message("mnist"));
        return;
    };
    let (tri, trl, tei, tel) = resolve::mnist_files(&dir).unwrap();
    let load = |i: &std::path::Path, l: &std::path::Path| {
        let mut d = Dataset::from_idx(i, Some(l)).unwrap();
        d.scale(Scaling::Divide255).unwrap();
        d
    };
    let (train, test) = (load(&tri, &trl), load(&tei, &tel));
    let n_train: usize = env("TRAIN", train.rows()).min(train.rows());
    let train = train.rows_range(0, n_train).unwrap();
    let epochs: usize = env("EPOCHS", 2);
    let learning_rate: f32 = env("LR", 1e-3);
    let units: usize = env("UNITS", 100);
    let threads: usize = env("THREADS", 0);
    let init = Init::from_code(env("INIT", 0)).unwrap();
    let only: String = env("ONLY", String::new());
    let depths = list("DEPTHS", "1");
    let seeds: Vec<u64> = list("SEEDS", "1").into_iter().map(|s| s as u64).collect();
    let probing = env("PROBE", 0) != 0;
    let mut kinds: Vec<(String, Connection)> = vec![("dense".into(), Connection::Dense)];
    kinds.extend(Family::ALL.iter().map(|&f| (f.name().to_string(), Connection::Functional(f))));
    println!(
        "784 -> D x [{units} tanh] -> 10, {epochs} epochs of Adam 1e-3, batch 100, {n_train} training digits, \
         init {}, seeds {seeds:?}",
        init.name()
    );
    println!("{:<6} {:>5} {:>9} {:>24} {:>10}", "layer", "depth", "params", "test acc per seed", "s/epoch");
    for (name, c) in kinds {
        if !only.is_empty() && !only.split(',').any(|o| o.trim() == name) {
            continue;
        }
        for &depth in &depths {
            let hidden = vec![LayerSpec::new(units, Activation::Tanh).connected(c); depth];
            let mut accs = Vec::new();
            let mut secs = 0.0;
            let mut params = 0;
            for &seed in &seeds {
                let spec = NetworkSpec { seed, init, ..NetworkSpec::classifier(784, &hidden, 10).unwrap() };
                let mut net = Network::new(spec).unwrap();
                params = net.param_count();
                if probing {
                    let sub = train.rows_range(0, 1000.min(n_train)).unwrap();
                    let mut c = net.clone();
                    if env("CENTER", 0) != 0 {
                        c.center_functional(sub.x(), 0).unwrap();
                    }
                    let p = probe(&c, &sub);
                    let s: Vec<String> = p.iter().map(|(sd, g)| format!("{sd:.3}/{g:.1e}")).collect();
                    println!("  {name} depth {depth} seed {seed} at init, output sd / grad rms: {}", s.join(" "));
                }
                let cfg = TrainConfig { epochs, batch_size: 100, learning_rate, threads, seed, ..Default::default() };
                let t = Instant::now();
                let fit = Trainer::new(cfg).unwrap().fit_dataset(&mut net, &train, None, None);
                secs += t.elapsed().as_secs_f64() / epochs as f64 / seeds.len() as f64;
                accs.push(match fit {
                    Ok(()) => format!("{:.4}", net.evaluate(&test).unwrap().accuracy),
                    Err(e) => format!("({e})"),
                });
            }
            println!("{name:<6} {depth:>5} {params:>9} {:>24} {secs:>10.1}", accs.join(" "));
        }
    }
}
