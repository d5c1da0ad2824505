//! The engine's placement (src/placement.rs): a model and where it runs, from the Rust API.
//! Without a GPU (this machine, CI) moving is Unsupported and leaves the model where it was;
//! fitting a placed model is the CPU fit, to the bit.

mod common;

use latent::backend::Device;
use latent::placement::{Placed, RowsCall};
use latent::rng::Rng;
use latent::{Activation, Error, Matrix, Network, NetworkSpec, TrainConfig, Trainer, Vae, VaeSpec};

fn rows(n: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 0);
    common::random_matrix(n, cols, 0.0, 1.0, &mut rng)
}

fn config() -> TrainConfig {
    TrainConfig { epochs: 3, batch_size: 16, learning_rate: 0.05, threads: 1, seed: 5, ..Default::default() }
}

#[test]
fn a_placed_network_trains_on_the_cpu_exactly_as_a_bare_one() {
    let spec = NetworkSpec::new(12, &[8], Activation::Tanh, 4);
    let x = rows(96, 12, 1);
    let mut bare = Network::new(spec.clone()).unwrap();
    let mut placed = Placed::new(bare.clone());
    Trainer::new(config()).unwrap().fit(&mut bare, &x, None, None).unwrap();
    placed.fit(&mut Trainer::new(config()).unwrap(), &x, None, None).unwrap();
    assert_eq!(placed.device(), Device::Cpu);
    assert_eq!(placed.model().params(), bare.params(), "the placed fit is the CPU fit, to the bit");
    for call in [RowsCall::Encode, RowsCall::Reconstruct] {
        let want = call.on_host(&bare, &x).unwrap();
        let got = match call {
            RowsCall::Encode => placed.encode(&x).unwrap(),
            _ => placed.reconstruct(&x).unwrap(),
        };
        assert_eq!(got.as_slice(), want.as_slice(), "{call:?}");
    }
    let codes = placed.encode(&x).unwrap();
    assert_eq!(placed.decode(&codes).unwrap().as_slice(), bare.decode(&codes).unwrap().as_slice());
}

#[test]
fn moving_without_a_gpu_is_unsupported_and_changes_nothing() {
    if latent::backend::list_devices().is_ok_and(|d| !d.is_empty()) {
        return; // a GPU machine: tests/cuda_device.rs covers the move
    }
    let net = Network::new(NetworkSpec::new(6, &[], Activation::Sigmoid, 3)).unwrap();
    let before = net.params().to_vec();
    let mut placed = Placed::new(net);
    let e = placed.to_device(Device::Cuda(0)).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
    assert_eq!(placed.device(), Device::Cpu);
    assert_eq!(placed.model().params(), &before[..]);
    assert!(matches!(placed.set_tf32(true), Err(Error::Unsupported(_))));
    // Back to the CPU always works.
    placed.to_device(Device::Cpu).unwrap();
    let vae = Vae::new(VaeSpec::new(6, &[5], 2, &[5], Activation::Tanh)).unwrap();
    let mut pv = Placed::new(vae);
    assert!(matches!(pv.to_device(Device::Cuda(0)), Err(Error::Unsupported(_))));
    let x = rows(4, 6, 2);
    let (mu, _) = pv.encode(&x).unwrap();
    assert_eq!(mu.as_slice(), pv.model().encode(&x).unwrap().0.as_slice());
}

#[test]
fn a_change_through_model_mut_is_what_later_calls_see() {
    let mut placed = Placed::new(Network::new(NetworkSpec::new(5, &[], Activation::Identity, 2)).unwrap());
    let zeros = vec![0.0f32; placed.model().param_count()];
    placed.model_mut().set_params(&zeros).unwrap();
    let codes = placed.encode(&rows(3, 5, 3)).unwrap();
    assert!(codes.as_slice().iter().all(|&v| v == 0.0));
}
