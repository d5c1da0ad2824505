//! A fit refuses targets its output layer cannot produce (issue 18, item 3): a sigmoid output
//! on real-valued data trained silently to test MSE 0.195 against 0.0018 with an identity
//! output. Now the fit says so, from Rust and from C, and names the fix.

mod common;

use latent::rng::Rng;
use latent::task::Task;
use latent::{Activation, Error, NetworkSpec, TrainConfig, Trainer};

fn config() -> TrainConfig {
    TrainConfig { epochs: 1, batch_size: 8, threads: 1, validation_fraction: 0.0, ..Default::default() }
}

#[test]
fn a_bounded_output_refuses_data_outside_its_range_and_names_the_fix() {
    let mut rng = Rng::new(3, 0);
    let real = common::random_matrix(32, 6, -2.0, 2.0, &mut rng);
    let unit = common::random_matrix(32, 6, 0.0, 1.0, &mut rng);
    for (act, ok_on_real) in [
        (Activation::Sigmoid, false),
        (Activation::Tanh, false),
        (Activation::Relu, false),
        (Activation::Identity, true),
        (Activation::LeakyRelu, true),
    ] {
        let mut spec = NetworkSpec::new(6, &[5], Activation::Tanh, 3);
        spec.output_activation = act;
        spec.loss = latent::Loss::Mse;
        let mut net = latent::Network::new(spec).unwrap();
        let r = Trainer::new(config()).unwrap().fit(&mut net, &real, None, None);
        if ok_on_real {
            r.unwrap();
        } else {
            let Err(Error::InvalidArgument(m)) = r else { panic!("{act:?}: {r:?}") };
            assert!(m.contains("identity output") && m.contains(act.name()), "{m}");
        }
        // Data inside [0, 1] suit every output here.
        Trainer::new(config()).unwrap().fit(&mut net, &unit, None, None).unwrap();
        // Validation rows are held to the same rule.
        if !ok_on_real {
            let r = Trainer::new(config()).unwrap().fit(&mut net, &unit, Some(&real), None);
            assert!(matches!(r, Err(Error::InvalidArgument(ref m)) if m.contains("validation")), "{act:?}: {r:?}");
        }
    }
}

#[test]
fn a_regressor_checks_its_targets_not_its_inputs() {
    let mut rng = Rng::new(4, 0);
    let x = common::random_matrix(40, 5, -3.0, 3.0, &mut rng);
    let hidden = [latent::LayerSpec::new(8, Activation::Tanh)];
    let mut spec = NetworkSpec::regressor(5, &hidden, 1).unwrap();
    spec.output_activation = Activation::Sigmoid;
    spec.loss = latent::Loss::Mse;
    let mut net = latent::Network::new(spec).unwrap();
    // Inputs in [-3, 3], targets in [0, 1]: fine for a sigmoid output.
    let t = common::random_matrix(40, 1, 0.0, 1.0, &mut rng);
    let rows = join(&x, &t);
    Trainer::new(config()).unwrap().fit(&mut net, &rows, None, None).unwrap();
    let t = common::random_matrix(40, 1, 1.5, 2.0, &mut rng);
    let r = Trainer::new(config()).unwrap().fit(&mut net, &join(&x, &t), None, None);
    assert!(matches!(r, Err(Error::InvalidArgument(ref m)) if m.contains("targets span")), "{r:?}");
    assert_eq!(net.task(), Task::Regress { outputs: 1 });
}

#[test]
fn from_c_the_default_sigmoid_output_refuses_standardised_data() {
    use latent::ffi::*;
    let x: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 10.0).collect();
    let mut ds = std::ptr::null_mut();
    let mut net = std::ptr::null_mut();
    let mut tr = std::ptr::null_mut();
    unsafe {
        assert_eq!(
            latent_dataset_from_buffer(x.as_ptr().cast(), LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 16, 4, &mut ds),
            LATENT_STATUS_OK
        );
        let mut p = latent_network_params_default();
        p.input_dim = 4;
        p.code_units = 2;
        assert_eq!(latent_network_new(&p, &mut net), LATENT_STATUS_OK);
        let mut tp = latent_train_params_default();
        tp.epochs = 1;
        tp.validation_fraction = 0.0;
        assert_eq!(latent_trainer_new(&tp, &mut tr), LATENT_STATUS_OK);
        let st = latent_trainer_fit(tr, net, ds, std::ptr::null(), None, std::ptr::null_mut());
        assert_eq!(st, LATENT_STATUS_INVALID_ARGUMENT);
        let msg = std::ffi::CStr::from_ptr(latent_last_error_message()).to_string_lossy().into_owned();
        assert!(msg.contains("LATENT_ACTIVATION_IDENTITY"), "{msg}");
        latent_trainer_free(tr);
        latent_network_free(net);
        latent_dataset_free(ds);
    }
}

fn join(x: &latent::Matrix, t: &latent::Matrix) -> latent::Matrix {
    let mut v = Vec::new();
    for r in 0..x.rows() {
        v.extend_from_slice(x.row(r));
        v.extend_from_slice(t.row(r));
    }
    latent::Matrix::from_vec(x.rows(), x.cols() + t.cols(), v).unwrap()
}
