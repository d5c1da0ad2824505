//! Greedy layer-wise pretraining (Hinton & Salakhutdinov 2006; Bengio et al. 2007): each encoder
//! layer is trained as a shallow autoencoder on the codes of the layers below, its decoder half
//! becoming the mirrored decoder layer of the deep autoencoder, which is then fine-tuned end to
//! end. With intermediate fine-tuning, the partial deep autoencoder built so far is fine-tuned
//! after each new layer, before the next one is pretrained.

#![forbid(unsafe_code)]

use crate::activation::Activation;
use crate::error::{Result, invalid};
use crate::loss::Loss;
use crate::network::{LayerSpec, Network, NetworkSpec};
use crate::regularizer::{Regularization, SparseLayers};
use crate::tensor::Matrix;
use crate::train::rbm::{Rbm, RbmConfig, Unit};
use crate::train::trainer::{EpochRecord, Progress, Stage, StageKind, TrainConfig, Trainer};

/// What each layer is pretrained as.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum PretrainMethod {
    /// A shallow autoencoder (with the layer's regularisation).
    #[default]
    Autoencoder,
    /// An RBM trained by CD-k / persistent CD (Hinton & Salakhutdinov 2006): Bernoulli units for
    /// sigmoid layers, unit-variance Gaussian units for linear ones (their linear code layer).
    Rbm(RbmConfig),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PretrainConfig {
    pub method: PretrainMethod,
    /// Training of each shallow autoencoder (`epochs` is per layer).
    pub pretrain: TrainConfig,
    /// Regularisation of each layer's shallow autoencoder (sparsity on its hidden layer,
    /// contractive penalty, corruption of its input), one per encoder layer including the code
    /// layer; empty: plain autoencoders.
    pub layers: Vec<Regularization>,
    /// Fine-tune the partial deep autoencoder after each layer from the second to the
    /// next-to-last (after the last, the final fine-tuning trains the whole network).
    pub intermediate: Option<TrainConfig>,
    /// End-to-end fine-tuning of the whole autoencoder (None: pretraining only).
    pub finetune: Option<TrainConfig>,
}

impl PretrainConfig {
    pub fn new(pretrain: TrainConfig, finetune: TrainConfig) -> PretrainConfig {
        PretrainConfig {
            method: PretrainMethod::Autoencoder,
            pretrain,
            layers: Vec::new(),
            intermediate: None,
            finetune: Some(finetune),
        }
    }
}

/// Per-epoch records of each stage, in order.
#[derive(Clone, Debug, Default)]
pub struct PretrainReport {
    pub stages: Vec<(Stage, Vec<crate::train::EpochRecord>)>,
}

type Callback<'a> = Option<&'a mut dyn FnMut(&Progress) -> bool>;
/// A progress callback that also sees the deep network as it stands (the layers pretrained so
/// far; during fine-tuning, the network being trained).
type NetWatch<'a> = crate::train::Watch<'a, Network>;

/// Pretrains `net` layer by layer on `data`, then fine-tunes it (validating on `valid`, if
/// given, during fine-tuning). The decoder must mirror the encoder's widths.
///
/// A classifier or regression network pretrains its hidden layers as the encoder of a deep
/// autoencoder (the mirrored decoder is built for pretraining and dropped), then fine-tunes on
/// the labels or targets: `data` (and `valid`) then hold the rows as a fit takes them, the
/// inputs followed by the class index or the targets ([`crate::task::Task::training_matrix`]).
/// The first layer's shallow autoencoder reconstructs the inputs through a sigmoid output with
/// binary cross-entropy when they all lie in [0, 1], else through a linear output with MSE.
pub fn pretrain(
    net: &mut Network,
    cfg: &PretrainConfig,
    data: &Matrix,
    valid: Option<&Matrix>,
    progress: Callback,
) -> Result<PretrainReport> {
    let mut g = progress.map(|f| move |p: &Progress, _: &Network| f(p));
    pretrain_watching(net, cfg, data, valid, g.as_mut().map(|g| g as _))
}

/// [`pretrain`] with a callback that also sees the deep network as it stands.
pub fn pretrain_watching(
    net: &mut Network,
    cfg: &PretrainConfig,
    data: &Matrix,
    valid: Option<&Matrix>,
    mut progress: NetWatch,
) -> Result<PretrainReport> {
    let spec = net.spec().clone();
    if spec.task.is_supervised() {
        // Its hidden layers pretrain as a deep autoencoder's encoder, then it fine-tunes on the
        // labels or targets (`data` then holds them after the inputs).
        return super::pretrain_supervised::pretrain_supervised(net, cfg, data, valid, progress);
    }
    if let Some((i, l)) = net.layers().iter().enumerate().find(|(_, l)| !l.connection.is_dense()) {
        return Err(invalid!("layer-wise pretraining needs dense layers; layer {i} is {}", l.connection.name()));
    }
    let n_enc = net.n_encoder_layers();
    let n = net.layers().len();
    let enc: Vec<LayerSpec> = spec.encoder.iter().copied().chain(std::iter::once(spec.code)).collect();
    let dec = spec.decoder_layers();
    let mirrored =
        dec.len() + 1 == n_enc && dec.iter().zip(enc[..n_enc - 1].iter().rev()).all(|(d, e)| d.units == e.units);
    if !mirrored {
        return Err(invalid!(
            "layer-wise pretraining unrolls each layer's decoder into the deep decoder: the decoder widths must mirror the encoder's"
        ));
    }
    if !cfg.layers.is_empty() && cfg.layers.len() != n_enc {
        return Err(invalid!(
            "{} per-layer regularisations given, the encoder has {n_enc} layers (hidden layers and the code layer)",
            cfg.layers.len()
        ));
    }
    cfg.pretrain.validate()?;
    if let Some(c) = &cfg.intermediate {
        c.validate()?;
    }
    if let Some(c) = &cfg.finetune {
        c.validate()?;
    }
    if data.cols() != net.input_dim() {
        return Err(crate::error::shape!(
            "training data has {} columns, the network expects {}",
            data.cols(),
            net.input_dim()
        ));
    }
    data.check_finite("training data")?;
    let mut report = PretrainReport::default();
    let mut codes: Option<Matrix> = None;
    for k in 0..n_enc {
        // The shallow autoencoder of layer k: input = the codes of layer k - 1 (or the data),
        // its decoder = the deep decoder layer that mirrors layer k.
        let mirror = 2 * n_enc - 1 - k;
        let (in_dim, out_act, loss) = if k == 0 {
            (spec.input_dim, spec.output_activation, spec.loss)
        } else {
            let a = net.layers()[mirror].activation;
            (enc[k - 1].units, a, if a == Activation::Sigmoid { Loss::BinaryCrossEntropy } else { Loss::Mse })
        };
        let input = codes.as_ref().unwrap_or(data);
        let stage = Stage { kind: StageKind::Pretrain, layer: k };
        match cfg.method {
            PretrainMethod::Autoencoder => {
                let shallow_spec = NetworkSpec {
                    input_dim: in_dim,
                    encoder: Vec::new(),
                    code: enc[k],
                    decoder: None,
                    output_activation: out_act,
                    output_connection: Default::default(),
                    loss,
                    tied_weights: spec.tied_weights,
                    init: spec.init,
                    seed: spec.seed.wrapping_add(k as u64 + 1),
                    regularization: cfg.layers.get(k).cloned().unwrap_or_default(),
                    task: crate::task::Task::Reconstruct,
                };
                let mut shallow =
                    Network::new(shallow_spec).map_err(|e| e.context(format_args!("pretraining layer {k}")))?;
                shallow.set_threads(net.threads());
                let hist = fit(&mut shallow, cfg.pretrain, input, None, stage, &mut progress, Some(net))?;
                report.stages.push((stage, hist));
                net.copy_layers_from(&shallow, [(0, k), (1, mirror)]);
            }
            PretrainMethod::Rbm(rc) => {
                let visible = Unit::of(out_act);
                let hidden = Unit::of(enc[k].activation);
                let (Some(visible), Some(hidden)) = (visible, hidden) else {
                    return Err(invalid!(
                        "RBM pretraining of layer {k} needs sigmoid (Bernoulli) or identity (Gaussian) units on both sides, not {} -> {}",
                        out_act.name(),
                        enc[k].activation.name()
                    ));
                };
                let mut rbm = Rbm::new(in_dim, enc[k].units, visible, hidden, spec.seed.wrapping_add(k as u64 + 1))?;
                let view: &Network = net;
                let watching = progress.is_some();
                let mut seen = |p: &Progress| progress.as_mut().is_none_or(|f| f(p, view));
                let cb: Callback = if watching { Some(&mut seen) } else { None };
                let epochs = rbm.fit(input, &cfg.pretrain, rc, stage, cb)?;
                let hist = epochs
                    .iter()
                    .map(|e| EpochRecord {
                        train_loss: e.reconstruction_error,
                        train_penalty: 0.0,
                        valid_loss: f64::NAN,
                        seconds: e.seconds,
                        samples_per_second: input.rows() as f64 / e.seconds.max(1e-9),
                        learning_rate: cfg.pretrain.learning_rate as f64,
                    })
                    .collect();
                report.stages.push((stage, hist));
                unroll_rbm(&rbm, net, k, mirror);
            }
        }

        // Between layers only: after the last one the partial stack is the whole network, which
        // the final fine-tuning trains.
        if k > 0
            && k + 1 < n_enc
            && let Some(ic) = cfg.intermediate
        {
            let mut partial = partial_network(net, &spec, k)?;
            let stage = Stage { kind: StageKind::IntermediateFinetune, layer: k + 1 };
            let hist = fit(&mut partial, ic, data, None, stage, &mut progress, Some(net))?;
            report.stages.push((stage, hist));
            net.copy_layers_from(&partial, partial_map(n_enc, k));
        }
        if k + 1 < n_enc {
            // Codes of layer k through the current (possibly fine-tuned) layers 0..=k.
            let part = partial_network(net, &spec, k)?;
            codes = Some(part.encode(data)?);
        }
    }
    debug_assert_eq!(n, 2 * n_enc);
    if let Some(fc) = cfg.finetune {
        let stage = Stage { kind: StageKind::Finetune, layer: 0 };
        let hist = fit(net, fc, data, valid, stage, &mut progress, None)?;
        report.stages.push((stage, hist));
    }
    Ok(report)
}

/// One stage's fit of `net`; the callback sees `deep` (the network being pretrained) when
/// `net` is a stage's own network, else `net`.
fn fit(
    net: &mut Network,
    c: TrainConfig,
    data: &Matrix,
    valid: Option<&Matrix>,
    stage: Stage,
    progress: &mut NetWatch,
    deep: Option<&Network>,
) -> Result<Vec<crate::train::EpochRecord>> {
    let mut t = Trainer::new(c)?;
    t.set_stage(stage);
    let watching = progress.is_some();
    let mut seen = |p: &Progress, m: &Network| progress.as_mut().is_none_or(|f| f(p, deep.unwrap_or(m)));
    let cb: crate::train::Watch<Network> = if watching { Some(&mut seen) } else { None };
    t.fit_watching(net, data, valid, cb)?;
    Ok(t.history().to_vec())
}

/// The deep autoencoder's layers 0..=k with their mirrored decoder layers, as a network of its
/// own, holding the deep network's current parameters for those layers.
fn partial_network(net: &Network, spec: &NetworkSpec, k: usize) -> Result<Network> {
    let n_enc = net.n_encoder_layers();
    let enc: Vec<LayerSpec> = spec.encoder.iter().copied().chain(std::iter::once(spec.code)).collect();
    let dec = spec.decoder_layers();
    let r = &spec.regularization;
    // Penalties that have a meaning on the partial stack carry over; a list of layers does not.
    let regularization = Regularization {
        sparse_layers: match &r.sparse_layers {
            SparseLayers::Layers(_) => SparseLayers::Code,
            s => s.clone(),
        },
        sparsity: match &r.sparse_layers {
            SparseLayers::Layers(_) => crate::regularizer::Sparsity::None,
            _ => r.sparsity,
        },
        code_noise: 0.0,
        ..r.clone()
    };
    let pspec = NetworkSpec {
        input_dim: spec.input_dim,
        encoder: enc[..k].to_vec(),
        code: enc[k],
        decoder: Some(dec[dec.len() - k..].to_vec()),
        output_activation: spec.output_activation,
        output_connection: spec.output_connection,
        loss: spec.loss,
        tied_weights: spec.tied_weights,
        init: spec.init,
        seed: spec.seed,
        regularization,
        task: crate::task::Task::Reconstruct,
    };
    let mut p = Network::new(pspec).map_err(|e| e.context(format_args!("partial autoencoder of {} layers", k + 1)))?;
    let map = partial_map(n_enc, k);
    let pairs: Vec<(usize, usize)> = map.iter().map(|&(a, b)| (b, a)).collect();
    p.copy_layers_from(net, pairs);
    p.set_threads(net.threads());
    Ok(p)
}

/// (partial layer, deep layer) pairs of the partial autoencoder of layers 0..=k.
fn partial_map(n_enc: usize, k: usize) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = (0..=k).map(|i| (i, i)).collect();
    let first_dec = 2 * n_enc - 1 - k;
    v.extend((0..=k).map(|m| (k + 1 + m, first_dec + m)));
    v
}

/// An RBM becomes encoder layer k (W, hidden bias) and its mirror (W^T, visible bias; only the
/// bias when the network's weights are tied, since the mirror then reads W^T already).
fn unroll_rbm(rbm: &Rbm, net: &mut Network, k: usize, mirror: usize) {
    let (nv, nh) = (rbm.n_visible, rbm.n_hidden);
    let (le, ld) = (net.layers()[k].clone(), net.layers()[mirror].clone());
    let p = net.params_mut();
    p[le.w..le.w + nv * nh].copy_from_slice(rbm.weights());
    p[le.b..le.b + nh].copy_from_slice(rbm.hidden_bias());
    if !ld.tied {
        let w = rbm.weights();
        for j in 0..nh {
            for i in 0..nv {
                p[ld.w + j * nv + i] = w[i * nh + j];
            }
        }
    }
    p[ld.b..ld.b + nv].copy_from_slice(rbm.visible_bias());
}
