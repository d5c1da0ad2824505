//! What a network is, before it has parameters: its layers, task, loss, regularisation and
//! initialisation ([`NetworkSpec`]), and the checks that make a spec buildable.

#![forbid(unsafe_code)]

use crate::activation::Activation;
use crate::error::{Result, invalid};
use crate::init::Init;
use crate::layer::{Connection, Stochastic};
use crate::limits::{MAX_LAYERS, MAX_UNITS};
use crate::loss::Loss;
use crate::regularizer::Regularization;
use crate::task::Task;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSpec {
    pub units: usize,
    pub activation: Activation,
    /// Sampled units (binary stochastic or Gaussian noise); default deterministic.
    pub stochastic: Stochastic,
    /// How the layer's inputs reach it: weights (default), trainable functions, memory.
    pub connection: Connection,
}

impl LayerSpec {
    pub fn new(units: usize, activation: Activation) -> LayerSpec {
        LayerSpec { units, activation, stochastic: Stochastic::None, connection: Connection::Dense }
    }
    /// The same layer with sampled units.
    pub fn with(self, stochastic: Stochastic) -> LayerSpec {
        LayerSpec { stochastic, ..self }
    }
    /// The same layer with another kind of connection.
    pub fn connected(self, connection: Connection) -> LayerSpec {
        LayerSpec { connection, ..self }
    }
}

/// What an autoencoder is made of. `decoder = None` mirrors the encoder's hidden layers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    pub input_dim: usize,
    pub encoder: Vec<LayerSpec>,
    pub code: LayerSpec,
    pub decoder: Option<Vec<LayerSpec>>,
    pub output_activation: Activation,
    /// Connection of the output layer (default dense).
    pub output_connection: Connection,
    pub loss: Loss,
    pub tied_weights: bool,
    pub init: Init,
    pub seed: u64,
    /// Sparsity, contractive penalty, denoising corruption, code noise (default: none).
    pub regularization: Regularization,
    /// What the output is trained to match: the input (default), a class, or targets.
    pub task: Task,
}

impl NetworkSpec {
    /// An undercomplete autoencoder input -> hidden... -> code -> mirrored hidden... -> input,
    /// sigmoid output with binary cross-entropy.
    pub fn new(input_dim: usize, hidden: &[usize], hidden_activation: Activation, code: usize) -> NetworkSpec {
        NetworkSpec {
            input_dim,
            encoder: hidden.iter().map(|&u| LayerSpec::new(u, hidden_activation)).collect(),
            code: LayerSpec::new(code, hidden_activation),
            decoder: None,
            output_activation: Activation::Sigmoid,
            output_connection: Connection::Dense,
            loss: Loss::BinaryCrossEntropy,
            tied_weights: false,
            init: Init::Auto,
            seed: 0,
            regularization: Regularization::default(),
            task: Task::Reconstruct,
        }
    }

    /// A classifier input -> hidden... -> `classes` logits, trained with softmax cross-entropy.
    /// The last hidden layer plays the code layer's part (what `encode` returns); at least one
    /// is needed (an identity-activated one gives a linear softmax model).
    pub fn classifier(input_dim: usize, hidden: &[LayerSpec], classes: usize) -> Result<NetworkSpec> {
        Self::supervised(input_dim, hidden, Task::Classify { classes }, Activation::Identity, Loss::Mse)
    }

    /// A regression network input -> hidden... -> `outputs` identity outputs, trained with MSE.
    pub fn regressor(input_dim: usize, hidden: &[LayerSpec], outputs: usize) -> Result<NetworkSpec> {
        Self::supervised(input_dim, hidden, Task::Regress { outputs }, Activation::Identity, Loss::Mse)
    }

    fn supervised(
        input_dim: usize,
        hidden: &[LayerSpec],
        task: Task,
        output_activation: Activation,
        loss: Loss,
    ) -> Result<NetworkSpec> {
        let (code, encoder) = hidden
            .split_last()
            .ok_or_else(|| invalid!("a supervised network needs at least one hidden layer (its last is the code)"))?;
        Ok(NetworkSpec {
            encoder: encoder.to_vec(),
            code: *code,
            decoder: Some(Vec::new()),
            output_activation,
            loss,
            task,
            ..NetworkSpec::new(input_dim, &[], Activation::Identity, 1)
        })
    }

    /// Width of the output layer.
    pub fn output_dim(&self) -> usize {
        self.task.output_dim(self.input_dim)
    }

    /// The decoder's hidden layers, mirrored from the encoder when not given (an autoencoder)
    /// or none (a supervised network).
    pub fn decoder_layers(&self) -> Vec<LayerSpec> {
        match &self.decoder {
            Some(d) => d.clone(),
            None if self.task.is_supervised() => Vec::new(),
            None => self.encoder.iter().rev().copied().collect(),
        }
    }

    /// Activations of the hidden layers in forward order (encoder hidden, code, decoder hidden).
    pub fn hidden_activations(&self) -> Vec<Activation> {
        let mut v: Vec<Activation> = self.encoder.iter().map(|l| l.activation).collect();
        v.push(self.code.activation);
        v.extend(self.decoder_layers().iter().map(|l| l.activation));
        v
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let dec = self.decoder_layers();
        if self.encoder.len() + dec.len() + 2 > MAX_LAYERS {
            return Err(invalid!("{} layers is more than {MAX_LAYERS}", self.encoder.len() + dec.len() + 2));
        }
        let widths = std::iter::once(("input", self.input_dim))
            .chain(self.encoder.iter().map(|l| ("encoder layer", l.units)))
            .chain(std::iter::once(("code layer", self.code.units)))
            .chain(dec.iter().map(|l| ("decoder layer", l.units)));
        for (what, u) in widths {
            if u == 0 || u > MAX_UNITS {
                return Err(invalid!("{what} width {u} must be in 1 to {MAX_UNITS}"));
            }
        }
        self.task.validate()?;
        match self.task {
            Task::Classify { .. } if self.output_activation != Activation::Identity => {
                return Err(invalid!(
                    "a classifier's output layer gives logits (identity activation; softmax is part of the loss), not {}",
                    self.output_activation.name()
                ));
            }
            Task::Classify { .. } => {}
            _ => self.loss.check_output(self.output_activation)?,
        }
        let layers = self.encoder.iter().chain(std::iter::once(&self.code)).chain(dec.iter());
        let connections: Vec<Connection> =
            layers.map(|l| l.connection).chain(std::iter::once(self.output_connection)).collect();
        let n_enc = self.encoder.len() + 1;
        if let Some(i) = connections.iter().position(|c| !c.is_dense()) {
            if self.tied_weights {
                return Err(invalid!("tied weights need dense layers; layer {i} is {}", connections[i].name()));
            }
            if self.regularization.contractive > 0.0
                && let Some(j) = connections[..n_enc].iter().position(|c| !c.is_dense())
            {
                return Err(invalid!(
                    "the contractive penalty needs dense encoder layers; layer {j} is {}",
                    connections[j].name()
                ));
            }
        }
        if self.tied_weights && self.task.is_supervised() {
            return Err(invalid!(
                "tied weights need an autoencoder (the output mirrors the input); this network is a {} network",
                self.task.name()
            ));
        }
        let hidden = self.encoder.iter().chain(std::iter::once(&self.code)).chain(dec.iter());
        for (i, l) in hidden.enumerate() {
            l.stochastic.validate(l.activation, &format!("hidden layer {i}"))?;
        }
        if self.tied_weights {
            let enc: Vec<usize> = self.encoder.iter().map(|l| l.units).collect();
            let mut rev: Vec<usize> = dec.iter().map(|l| l.units).collect();
            rev.reverse();
            if enc != rev {
                return Err(invalid!(
                    "tied weights need the decoder to mirror the encoder: encoder {enc:?}, decoder (reversed) {rev:?}"
                ));
            }
        }
        self.regularization.validate(&self.hidden_activations(), self.encoder.len() + 1)?;
        crate::contractive::validate(self)
    }
}
