//! Transfer learning (issue 17): a supervised network built from a trained autoencoder's or
//! VAE's encoder, frozen layers, and layer-wise pretraining of supervised networks. Exact
//! checks (the transferred parameters equal the source's bit for bit; frozen layers stay
//! bit-identical through a fit) and outcomes on MNIST with few labels.

mod common;

use latent::data::{Dataset, Scaling};
use latent::layer::Connection;
use latent::task::Task;
use latent::train::{PretrainConfig, StageKind, pretrain};
use latent::{
    Activation, Error, LayerSpec, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer,
    Vae, VaeSpec,
};

fn adam(epochs: usize, lr: f32, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 64,
        learning_rate: lr,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        seed,
        threads: 2,
        ..Default::default()
    }
}

fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = latent::rng::Rng::new(seed, 0);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform()).collect()).unwrap()
}

fn labelled(x: &Matrix, classes: usize) -> Dataset {
    let mut d = Dataset::from_matrix(x.clone()).unwrap();
    let labels = (0..x.rows()).map(|r| (r % classes) as i32).collect();
    d.set_labels(labels).unwrap();
    d
}

/// The parameters (weights, biases) of layer `i`.
fn layer_params(net: &Network, i: usize) -> (Vec<f32>, Vec<f32>) {
    let l = &net.layers()[i];
    (net.params()[l.w..l.w + l.w_len()].to_vec(), net.params()[l.b..l.b + l.n_out].to_vec())
}

fn trained_autoencoder(spec: NetworkSpec, x: &Matrix) -> Network {
    let mut ae = Network::new(spec).unwrap();
    Trainer::new(adam(2, 3e-3, 1)).unwrap().fit(&mut ae, x, None, None).unwrap();
    ae
}

#[test]
fn transferred_layers_equal_the_source_encoder_exactly() {
    let x = random(64, 12, 1);
    // A functional-transfer layer in the encoder: its fixed connection signs depend on the
    // network's seed, which the new network keeps.
    let mut spec = NetworkSpec::new(12, &[9], Activation::Tanh, 5);
    spec.encoder[0].connection = Connection::from_code(latent::ffi::LATENT_CONNECTION_F03).unwrap();
    spec.seed = 77;
    let ae = trained_autoencoder(spec, &x);
    let hidden = [LayerSpec::new(7, Activation::Relu)];
    let net = Network::supervised_from_encoder(&ae, &hidden, Task::Classify { classes: 3 }, 5).unwrap();
    assert_eq!(net.layers().len(), 4, "9, 5 transferred; 7 new; 3 logits");
    for i in 0..ae.n_encoder_layers() {
        assert_eq!(layer_params(&net, i), layer_params(&ae, i), "layer {i}");
        assert_eq!(net.layers()[i].connection, ae.layers()[i].connection);
        assert_eq!(net.layers()[i].activation, ae.layers()[i].activation);
    }
    // The same function: the source's codes are the new network's second layer's outputs.
    let mut ws = net.workspace(x.rows()).unwrap();
    net.forward_layers(0..2, x.as_slice(), x.rows(), &mut ws, 1);
    assert_eq!(&ws.output(1)[..x.rows() * 5], ae.encode(&x).unwrap().as_slice());
    // The new layers come from `seed`: another seed gives other ones, the same one the same.
    let again = Network::supervised_from_encoder(&ae, &hidden, Task::Classify { classes: 3 }, 5).unwrap();
    let other = Network::supervised_from_encoder(&ae, &hidden, Task::Classify { classes: 3 }, 6).unwrap();
    assert_eq!(again.params(), net.params());
    assert_ne!(layer_params(&other, 2), layer_params(&net, 2));
    assert_eq!(layer_params(&other, 1), layer_params(&net, 1));
    // With no new hidden layer the code feeds the output layer; a regression head works too.
    let reg = Network::supervised_from_encoder(&ae, &[], Task::Regress { outputs: 2 }, 1).unwrap();
    assert_eq!(reg.layers().len(), 3);
    assert_eq!(reg.encode(&x).unwrap().as_slice(), ae.encode(&x).unwrap().as_slice());
    // An autoencoder is not a supervised task.
    let e = Network::supervised_from_encoder(&ae, &hidden, Task::Reconstruct, 1).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn a_vae_transfers_its_encoder_up_to_the_posterior_mean() {
    let x = random(48, 10, 2);
    let mut vae = Vae::new(VaeSpec::new(10, &[8, 6], 3, &[6], Activation::Tanh)).unwrap();
    Trainer::new(adam(2, 3e-3, 1)).unwrap().fit(&mut vae, &x, None, None).unwrap();
    let net = Network::supervised_from_vae(&vae, &[], Task::Classify { classes: 4 }, 9).unwrap();
    let head = vae.head_index();
    assert_eq!(net.n_encoder_layers(), head + 1);
    for i in 0..head {
        let l = &vae.layers()[i];
        let src = (vae.params()[l.w..l.w + l.n_in * l.n_out].to_vec(), vae.params()[l.b..l.b + l.n_out].to_vec());
        assert_eq!(layer_params(&net, i), src, "encoder layer {i}");
    }
    // The mean head: the first latent_dim columns of each row of the [mean | log-variance] head.
    let (h, m) = (&vae.layers()[head], &net.layers()[head]);
    assert_eq!((h.n_out, m.n_out), (6, 3));
    for r in 0..h.n_in {
        assert_eq!(&net.params()[m.w + 3 * r..m.w + 3 * r + 3], &vae.params()[h.w + 6 * r..h.w + 6 * r + 3]);
    }
    assert_eq!(&net.params()[m.b..m.b + 3], &vae.params()[h.b..h.b + 3]);
    // The code is the posterior mean (products of another width may round differently).
    let (mean, _) = vae.encode(&x).unwrap();
    let code = net.encode(&x).unwrap();
    let worst = code.as_slice().iter().zip(mean.as_slice()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-5, "codes differ from the posterior means by {worst}");
}

#[test]
fn frozen_layers_are_bit_identical_after_a_fit_and_thaw_after_their_epochs() {
    let x = random(96, 12, 3);
    let ae = trained_autoencoder(NetworkSpec::new(12, &[10], Activation::Sigmoid, 6), &x);
    let data = labelled(&x, 3);
    for kind in [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW] {
        let hidden = [LayerSpec::new(5, Activation::Relu)];
        let mut net = Network::supervised_from_encoder(&ae, &hidden, Task::Classify { classes: 3 }, 2).unwrap();
        let before = net.clone();
        net.freeze(0..2, None).unwrap();
        let cfg = TrainConfig {
            optimizer: OptimizerConfig { kind, weight_decay: 1e-2, ..Default::default() },
            ..adam(3, 1e-2, 4)
        };
        Trainer::new(cfg).unwrap().fit_dataset(&mut net, &data, None, None).unwrap();
        for i in 0..2 {
            assert_eq!(layer_params(&net, i), layer_params(&before, i), "{kind:?}: frozen layer {i} moved");
        }
        for i in 2..4 {
            assert_ne!(layer_params(&net, i), layer_params(&before, i), "{kind:?}: layer {i} did not train");
        }
        assert!(net.frozen().is_some(), "a freeze without a count lasts");
    }
    // Frozen for 2 epochs: a 2-epoch fit leaves them, the freeze is then over, the next fit
    // trains them.
    let mut net = Network::supervised_from_encoder(&ae, &[], Task::Classify { classes: 3 }, 2).unwrap();
    let before = net.clone();
    net.freeze(0..2, Some(2)).unwrap();
    let mut t = Trainer::new(adam(2, 1e-2, 4)).unwrap();
    t.fit_dataset(&mut net, &data, None, None).unwrap();
    assert_eq!(layer_params(&net, 0), layer_params(&before, 0));
    assert!(net.frozen().is_none(), "the freeze outlived its epochs: {:?}", net.frozen());
    t.fit_dataset(&mut net, &data, None, None).unwrap();
    assert_ne!(layer_params(&net, 0), layer_params(&before, 0));
    // Frozen for 1 epoch of a 3-epoch fit: unchanged at the end of epoch 1, moved by epoch 2.
    let mut net = before.clone();
    net.freeze(0..1, Some(1)).unwrap();
    let rows = net.training_rows_of(&data).unwrap();
    let mut seen = Vec::new();
    let mut cb = |p: &latent::Progress, m: &Network| {
        seen.push((p.epoch, layer_params(m, 0) == layer_params(&before, 0), m.frozen().is_some()));
        true
    };
    Trainer::new(adam(3, 1e-2, 4)).unwrap().fit_watching(&mut net, &rows, None, Some(&mut cb)).unwrap();
    assert_eq!(seen, [(0, true, false), (1, false, false), (2, false, false)]);
    // Bad ranges.
    let mut net = before.clone();
    for (r, e) in [(0..0, None), (2..5, None), (0..1, Some(0))] {
        assert!(matches!(net.freeze(r.clone(), e), Err(Error::InvalidArgument(_))), "{r:?} {e:?}");
    }
}
