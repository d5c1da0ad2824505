//! MNIST test accuracy of a functional-transfer classifier per function family (Cai et al.
//! 2017 report "high accuracies for most" of their twenty; their table, widths and schedule
//! are not public, so this protocol is ours): 784 -> [H units of family F, tanh] -> 10 dense
//! logits, softmax cross-entropy, Adam at 1e-3, batch 100, on all 60,000 training digits,
//! scored on the 10,000 test digits; a dense hidden layer of the same width for reference.
//!
//!   cargo bench --bench functional_mnist
//!
//! Environment: ONLY (comma-separated family names, e.g. f01,f12, or "dense"), EPOCHS
//! (default 2), UNITS (H, default 100), THREADS (default 0 = all cores).

use std::time::Instant;

use latent::data::{Dataset, Scaling, resolve};
use latent::layer::{Connection, Family};
use latent::{Activation, LayerSpec, Network, NetworkSpec, TrainConfig, Trainer};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
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
    let epochs: usize = env("EPOCHS", 2);
    let units: usize = env("UNITS", 100);
    let threads: usize = env("THREADS", 0);
    let only: String = env("ONLY", String::new());
    let mut kinds: Vec<(String, Connection)> = vec![("dense".into(), Connection::Dense)];
    kinds.extend(Family::ALL.iter().map(|&f| (f.name().to_string(), Connection::Functional(f))));
    println!("784 -> [{units} tanh] -> 10, {epochs} epochs of Adam 1e-3, batch 100, 60,000 digits");
    println!("{:<6} {:>9} {:>9} {:>10}", "layer", "params", "test acc", "s/epoch");
    for (name, c) in kinds {
        if !only.is_empty() && !only.split(',').any(|o| o.trim() == name) {
            continue;
        }
        let hidden = LayerSpec::new(units, Activation::Tanh).connected(c);
        let mut net = Network::new(NetworkSpec::classifier(784, &[hidden], 10).unwrap()).unwrap();
        let cfg = TrainConfig { epochs, batch_size: 100, learning_rate: 1e-3, threads, ..Default::default() };
        let t = Instant::now();
        let fit = Trainer::new(cfg).unwrap().fit_dataset(&mut net, &train, None, None);
        let secs = t.elapsed().as_secs_f64() / epochs as f64;
        let acc = match fit {
            Ok(()) => format!("{:.4}", net.evaluate(&test).unwrap().accuracy),
            Err(e) => format!("({e})"),
        };
        println!("{name:<6} {:>9} {acc:>9} {secs:>10.1}", net.param_count());
    }
}
