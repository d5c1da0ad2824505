//! Networks and VAEs keep the workspaces of their inference calls for the next call of the same
//! shape (`src/spare.rs`): a call must give the bits a fresh workspace gives (a clone of the
//! model starts with none, so its first call of each shape is the reference), whatever ran
//! before it on the kept one: other rows, other shapes, a memory layer's sequence, stochastic
//! inference switched on and off, and calls from several threads at once.

mod common;

use latent::layer::{Connection, Stochastic};
use latent::rng::Rng;
use latent::{Activation, LayerSpec, Matrix, Network, NetworkSpec, Vae, VaeSpec};

fn rows(n: usize, cols: usize, seed: u64) -> Matrix {
    common::random_matrix(n, cols, 0.0, 1.0, &mut Rng::new(seed, 0))
}

/// `f` on a clone of `model` (no kept workspace: the reference) and then on `model` itself
/// after `before` ran on it, bit for bit.
fn same_bits<M: Clone, T: PartialEq + std::fmt::Debug>(
    model: &M,
    before: impl Fn(&M),
    f: impl Fn(&M) -> T,
    what: &str,
) {
    let fresh = f(&model.clone());
    before(model);
    assert_eq!(f(model), fresh, "{what}: a kept workspace changed the result");
}

#[test]
fn network_calls_on_kept_workspaces_give_a_fresh_workspaces_bits() {
    let spec = NetworkSpec { seed: 5, ..NetworkSpec::new(784, &[256], Activation::Relu, 64) };
    for threads in [1, 2] {
        let mut net = Network::new(spec.clone()).unwrap();
        net.set_threads(threads);
        let (a, b, big) = (rows(3, 784, 1), rows(3, 784, 2), rows(256, 784, 3));
        let others = |n: &Network| {
            n.encode(&b).unwrap();
            n.reconstruct(&big).unwrap();
            n.decode(&rows(3, 64, 4)).unwrap();
            n.reconstruction_errors(&a).unwrap();
        };
        same_bits(&net, others, |n| n.encode(&a).unwrap().as_slice().to_vec(), "encode");
        same_bits(&net, others, |n| n.reconstruct(&big).unwrap().as_slice().to_vec(), "reconstruct 256 rows");
        same_bits(&net, others, |n| n.reconstruction_errors(&a).unwrap(), "reconstruction errors");
        same_bits(&net, others, |n| n.decode(&rows(3, 64, 5)).unwrap().as_slice().to_vec(), "decode");
    }

    // A memory layer's state starts anew on every call, kept workspace or not.
    let memory = LayerSpec::new(8, Activation::Tanh).connected(Connection::Memory);
    let mut ms = NetworkSpec { seed: 6, ..NetworkSpec::new(30, &[8], Activation::Tanh, 4) };
    ms.encoder[0] = memory;
    let mem = Network::new(ms).unwrap();
    let x = rows(5, 30, 7);
    same_bits(
        &mem,
        |n| drop(n.encode(&rows(5, 30, 8)).unwrap()),
        |n| n.encode(&x).unwrap().as_slice().to_vec(),
        "memory",
    );

    // Stochastic inference on, then off, on the same kept workspace.
    let mut st = NetworkSpec { seed: 7, ..NetworkSpec::new(30, &[16], Activation::Sigmoid, 6) };
    st.encoder[0] = LayerSpec::new(16, Activation::Sigmoid).with(Stochastic::Bernoulli);
    let mut net = Network::new(st).unwrap();
    let means = net.encode(&x).unwrap();
    net.set_stochastic_inference(Some(11));
    let drawn = net.encode(&x).unwrap();
    assert_ne!(drawn.as_slice(), means.as_slice(), "stochastic inference passed the means on");
    assert_eq!(net.clone().encode(&x).unwrap().as_slice(), drawn.as_slice(), "draws on a kept workspace");
    net.set_stochastic_inference(None);
    assert_eq!(net.encode(&x).unwrap().as_slice(), means.as_slice(), "means after draws on a kept workspace");
}

#[test]
fn calls_from_many_threads_at_once_each_get_their_own_workspace() {
    let mut net = Network::new(NetworkSpec { seed: 8, ..NetworkSpec::new(784, &[256], Activation::Relu, 64) }).unwrap();
    net.set_threads(2);
    let inputs: Vec<Matrix> = (0..4).map(|i| rows(1 + 2 * i, 784, 20 + i as u64)).collect();
    let want: Vec<Vec<f32>> = inputs.iter().map(|x| net.clone().encode(x).unwrap().as_slice().to_vec()).collect();
    std::thread::scope(|s| {
        for (x, w) in inputs.iter().zip(&want) {
            let net = &net;
            s.spawn(move || {
                for _ in 0..300 {
                    assert_eq!(&net.encode(x).unwrap().as_slice().to_vec(), w, "a call shared a workspace?");
                }
            });
        }
    });
}

#[test]
fn vae_calls_on_kept_workspaces_give_a_fresh_workspaces_bits() {
    let spec = VaeSpec { seed: 9, ..VaeSpec::new(784, &[512], 32, &[512], Activation::Relu) };
    for threads in [1, 2] {
        let mut vae = Vae::new(spec.clone()).unwrap();
        vae.set_threads(threads);
        let (a, b) = (rows(4, 784, 30), rows(9, 784, 31));
        let others = |v: &Vae| {
            v.encode(&b).unwrap();
            v.sample_posterior(&a, 3, 1).unwrap();
            v.generate_at_mean(&rows(4, 32, 32)).unwrap();
            v.reconstruction_probability(&b, 2, 5).unwrap();
        };
        same_bits(&vae, others, |v| v.encode(&a).unwrap().0.as_slice().to_vec(), "vae encode");
        same_bits(&vae, others, |v| v.sample_posterior(&a, 3, 2).unwrap().as_slice().to_vec(), "sample posterior");
        same_bits(&vae, others, |v| v.generate_at_mean(&rows(4, 32, 33)).unwrap().as_slice().to_vec(), "generate");
        same_bits(&vae, others, |v| v.reconstruction_probability(&a, 3, 7).unwrap(), "reconstruction probability");
    }
}
