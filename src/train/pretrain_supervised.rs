//! Greedy layer-wise pretraining of a supervised network (Bengio et al. 2007, "Greedy
//! layer-wise training of deep networks"; DL4J's pretrain-then-fine-tune of stacked
//! AutoEncoder layers): its hidden layers are pretrained as the encoder of a deep autoencoder
//! (each layer a shallow autoencoder, or an RBM, on the codes of the layers below, with
//! intermediate fine-tuning if asked), then the whole network is fine-tuned on the labels or
//! targets.

#![forbid(unsafe_code)]

use crate::activation::Activation;
use crate::error::{Result, shape};
use crate::loss::Loss;
use crate::network::{Network, NetworkSpec};
use crate::regularizer::Regularization;
use crate::task::{self, Task};
use crate::tensor::Matrix;
use crate::train::pretrain::{PretrainConfig, PretrainReport, pretrain_watching};
use crate::train::trainer::{Progress, Stage, StageKind, Trainable, Trainer, Watch};

/// [`pretrain_watching`] of a classifier or regression network. `data` holds the training rows
/// as a fit takes them (the inputs, then the class index or the targets); pretraining reads
/// only the inputs. The deep autoencoder unrolled from the hidden layers reconstructs the
/// inputs through a sigmoid output with binary cross-entropy when every input lies in [0, 1],
/// else through a linear output with MSE. Fine-tuning (`cfg.finetune`) trains the whole network
/// on the labels or targets, validating on `valid` (rows laid out as `data`'s). The callback
/// sees the supervised network with the layers pretrained so far.
pub(crate) fn pretrain_supervised(
    net: &mut Network,
    cfg: &PretrainConfig,
    data: &Matrix,
    valid: Option<&Matrix>,
    mut progress: Watch<Network>,
) -> Result<PretrainReport> {
    let spec = net.spec().clone();
    let (cols, tw) = (net.input_dim(), spec.task.target_width());
    debug_assert!(tw > 0);
    let what = match spec.task {
        Task::Classify { .. } => "inputs, then the class index",
        _ => "inputs, then the targets",
    };
    if data.cols() != cols + tw {
        return Err(shape!(
            "training rows have {} columns, the {} network expects {} ({what})",
            data.cols(),
            spec.task.name(),
            cols + tw
        ));
    }
    if let Some(v) = valid {
        if v.cols() != cols + tw {
            return Err(shape!(
                "validation rows have {} columns, the network expects {} ({what})",
                v.cols(),
                cols + tw
            ));
        }
        v.check_finite("validation data")?;
        net.check_rows(v, "validation data")?;
    }
    data.check_finite("training data")?;
    net.check_rows(data, "training data")?;
    let (inputs, _) = task::split_matrix(data, cols, tw)?;
    let unit = inputs.as_slice().iter().all(|v| (0.0..=1.0).contains(v));
    let (output_activation, loss) =
        if unit { (Activation::Sigmoid, Loss::BinaryCrossEntropy) } else { (Activation::Identity, Loss::Mse) };
    let deep_spec = NetworkSpec {
        input_dim: cols,
        encoder: spec.encoder.clone(),
        code: spec.code,
        decoder: None,
        output_activation,
        output_connection: Default::default(),
        loss,
        tied_weights: false,
        init: spec.init,
        seed: spec.seed,
        regularization: Regularization::default(),
        task: Task::Reconstruct,
    };
    let mut deep = Network::new(deep_spec)?;
    deep.set_threads(net.threads());
    let n_enc = net.n_encoder_layers();
    let stack_cfg = PretrainConfig { finetune: None, ..cfg.clone() };
    let mut report = {
        let target = &mut *net;
        let watching = progress.is_some();
        let mut seen = |p: &Progress, d: &Network| {
            target.copy_layers_from(d, (0..n_enc).map(|i| (i, i)));
            progress.as_mut().is_none_or(|f| f(p, target))
        };
        let cb: Watch<Network> = if watching { Some(&mut seen) } else { None };
        pretrain_watching(&mut deep, &stack_cfg, &inputs, None, cb)?
    };
    net.copy_layers_from(&deep, (0..n_enc).map(|i| (i, i)));
    if let Some(fc) = cfg.finetune {
        let stage = Stage { kind: StageKind::Finetune, layer: 0 };
        let mut t = Trainer::new(fc)?;
        t.set_stage(stage);
        t.fit_watching(net, data, valid, progress)?;
        report.stages.push((stage, t.history().to_vec()));
    }
    Ok(report)
}
