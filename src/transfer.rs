//! Transfer learning: a trained autoencoder's (or VAE's) encoder as the first layers of a
//! classifier or regression network, and layers the optimizer leaves alone (frozen).
//!
//! This is DL4J's layer-wise use of its pretrained `AutoEncoder` and `VariationalAutoencoder`
//! layers: pretrain one unsupervised, then it is the first layers of a supervised network, whose
//! later layers start from random weights (a VAE acts through the mean of q(z|x), as DL4J's
//! `activate()` does). [`Network::supervised_from_encoder`] and
//! [`Network::supervised_from_vae`] build that network with the encoder's parameters copied in
//! exactly; [`Network::freeze`] keeps chosen layers fixed for some epochs or for all training.

use std::ops::Range;

use crate::error::{Result, invalid};
use crate::network::{LayerSpec, Network, NetworkSpec};
use crate::task::Task;
use crate::vae::{Posterior, Vae};

/// Layers a [`Network`] keeps fixed in training: a learning-rate multiplier of 0 on their
/// weights and biases (no update, no weight decay, their optimizer state untouched).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freeze {
    /// Layer indices as [`Network::layers`] numbers them (0 = the first hidden layer).
    pub layers: Range<usize>,
    /// Training epochs still to run frozen: each epoch a trainer completes counts one, over
    /// every fit, and the layers thaw when none is left; None: frozen until
    /// [`Network::unfreeze`].
    pub epochs: Option<usize>,
}

impl Network {
    /// A classifier or regression network whose first layers are `source`'s encoder (its
    /// encoder hidden layers and code layer: widths, activations, sampling, connection kinds,
    /// and parameters copied exactly), followed by the new `hidden` layers and the output layer
    /// of `task` (softmax logits for [`Task::Classify`], identity outputs with MSE for
    /// [`Task::Regress`], as [`NetworkSpec::classifier`] and [`NetworkSpec::regressor`] build
    /// them). The new layers are initialised from `seed` (with `source`'s init scheme); the
    /// network keeps `source`'s seed in its spec, which fixes the signs of functional-transfer
    /// connections. The transferred layers are 0..source.n_encoder_layers(); freeze them with
    /// [`Network::freeze`]. `source` may be any network (an autoencoder, or a supervised network
    /// whose hidden layers move to a new task).
    pub fn supervised_from_encoder(source: &Network, hidden: &[LayerSpec], task: Task, seed: u64) -> Result<Network> {
        let s = source.spec();
        let mut layers: Vec<LayerSpec> = s.encoder.clone();
        layers.push(s.code);
        let n = layers.len();
        layers.extend_from_slice(hidden);
        let mut spec = supervised_spec(s.input_dim, &layers, task)?;
        spec.init = s.init;
        spec.seed = s.seed;
        let mut net = with_new_layers(spec, n, seed)?;
        net.copy_layers_from(source, (0..n).map(|i| (i, i)));
        net.set_threads(source.threads());
        Ok(net)
    }

    /// A classifier or regression network whose first layers are `vae`'s encoder up to the mean
    /// of q(z|x): its encoder hidden layers, then a layer of latent_dim units with the VAE's
    /// `pzx_activation` holding the mean head's weights and biases (the log-variance head is
    /// left behind), followed by `hidden` and the output layer of `task`, the new layers
    /// initialised from `seed`. The transferred layers are 0..=vae.head_index(), and the code
    /// layer (what [`Network::encode`] returns with no `hidden`) equals [`Vae::encode`]'s mean.
    pub fn supervised_from_vae(vae: &Vae, hidden: &[LayerSpec], task: Task, seed: u64) -> Result<Network> {
        let s = vae.spec();
        let mut layers: Vec<LayerSpec> = s.encoder.clone();
        layers.push(LayerSpec::new(s.latent_dim, s.pzx_activation));
        let n = layers.len();
        layers.extend_from_slice(hidden);
        let mut spec = supervised_spec(s.input_dim, &layers, task)?;
        spec.init = s.init;
        spec.seed = seed;
        let mut net = with_new_layers(spec, n, seed)?;
        let src = vae.params();
        let head = vae.head_index();
        for i in 0..n {
            let (ls, ld) = (&vae.layers()[i], net.layers()[i].clone());
            let p = net.params_mut();
            if i < head {
                p[ld.w..ld.w + ld.n_in * ld.n_out].copy_from_slice(&src[ls.w..ls.w + ls.n_in * ls.n_out]);
            } else {
                // The head's output columns are [mean | log-variance] (the mean alone under a
                // constant posterior): the mean's are the first latent_dim of each row of W.
                let (jd, hw) = (ld.n_out, ls.n_out);
                debug_assert!(hw == 2 * jd || matches!(s.posterior, Posterior::Constant { .. }) && hw == jd);
                for r in 0..ld.n_in {
                    p[ld.w + r * jd..ld.w + (r + 1) * jd].copy_from_slice(&src[ls.w + r * hw..ls.w + r * hw + jd]);
                }
            }
            p[ld.b..ld.b + ld.n_out].copy_from_slice(&src[ls.b..ls.b + ld.n_out]);
        }
        net.set_threads(vae.threads());
        Ok(net)
    }

    /// Freezes layers `layers` (as [`Network::layers`] numbers them) for the next `epochs`
    /// training epochs (counted over every fit; None: until [`Network::unfreeze`]): the CPU
    /// trainer leaves their weights and biases bit-identical and their optimizer state
    /// untouched (Adam's bias correction then counts their own steps when they thaw), on the CPU
    /// and on a device alike (one optimizer). A tied decoder layer owns only its
    /// bias; freezing the encoder layer it mirrors freezes the shared weights. Not saved in the
    /// model file; a clone keeps it.
    pub fn freeze(&mut self, layers: Range<usize>, epochs: Option<usize>) -> Result<()> {
        let n = self.layers().len();
        if layers.start >= layers.end || layers.end > n {
            return Err(invalid!(
                "layers {} to {} (end excluded) are not a non-empty range within the network's {n} layers",
                layers.start,
                layers.end
            ));
        }
        if epochs == Some(0) {
            return Err(invalid!("freezing for 0 epochs freezes nothing (None freezes until unfreeze)"));
        }
        self.frozen = Some(Freeze { layers, epochs });
        Ok(())
    }

    /// Thaws every layer.
    pub fn unfreeze(&mut self) {
        self.frozen = None;
    }

    /// The frozen layers, if any, and the epochs they stay frozen.
    pub fn frozen(&self) -> Option<&Freeze> {
        self.frozen.as_ref()
    }

    /// Ranges of the parameter buffer that the frozen layers own (empty when none is frozen).
    pub fn frozen_param_ranges(&self) -> Vec<Range<usize>> {
        let Some(f) = &self.frozen else { return Vec::new() };
        let mut v = Vec::new();
        for l in &self.layers()[f.layers.clone()] {
            if !l.tied {
                v.push(l.w..l.w + l.w_len());
            }
            v.push(l.b..l.b + l.n_out);
        }
        v
    }

    /// One training epoch done: the count of a freeze for some epochs goes down.
    pub(crate) fn count_frozen_epoch(&mut self) {
        if let Some(Freeze { epochs: Some(e), .. }) = &mut self.frozen {
            *e -= 1;
            if *e == 0 {
                self.frozen = None;
            }
        }
    }
}

/// The spec of a supervised network input -> layers... -> task's output layer.
fn supervised_spec(input_dim: usize, layers: &[LayerSpec], task: Task) -> Result<NetworkSpec> {
    match task {
        Task::Classify { classes } => NetworkSpec::classifier(input_dim, layers, classes),
        Task::Regress { outputs } => NetworkSpec::regressor(input_dim, layers, outputs),
        Task::Reconstruct => Err(invalid!(
            "a network built from an encoder is a classifier or a regression network, not an autoencoder (task reconstruct)"
        )),
    }
}

/// The network of `spec`, its layers from `first` on initialised as `spec` with seed `seed`
/// would initialise them (the caller copies the layers before `first` in).
fn with_new_layers(spec: NetworkSpec, first: usize, seed: u64) -> Result<Network> {
    if spec.seed == seed {
        return Network::new(spec);
    }
    let fresh = Network::new(NetworkSpec { seed, ..spec.clone() })?;
    let mut net = Network::new(spec)?;
    let n = net.layers().len();
    for i in first..n {
        let l = net.layers()[i].clone();
        let p = net.params_mut();
        p[l.w..l.w + l.w_len()].copy_from_slice(&fresh.params()[l.w..l.w + l.w_len()]);
        p[l.b..l.b + l.n_out].copy_from_slice(&fresh.params()[l.b..l.b + l.n_out]);
    }
    Ok(net)
}
