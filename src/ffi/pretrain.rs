//! C API of greedy layer-wise pretraining and fine-tuning.

use std::ffi::c_void;

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::trainer::{config_from_params, progress_to_c};
use super::*;
use crate::corruption::Corruption;
use crate::regularizer::{Regularization, SparseLayers, Sparsity};
use crate::train::{PretrainConfig, PretrainMethod, Progress, RbmConfig, Trainable, pretrain_watching};

/// How one encoder layer's shallow autoencoder is regularised during pretraining: a plain,
/// sparse (on its hidden layer), contractive or denoising autoencoder, or a mix.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_layer_regularization {
    /// Default NONE; KL needs a sigmoid layer.
    pub sparsity: latent_sparsity,
    /// Default 0.05.
    pub sparsity_target: f64,
    /// Default 0.1.
    pub sparsity_weight: f64,
    /// Default 0.
    pub contractive_weight: f64,
    /// Default NONE.
    pub corruption: latent_corruption,
    /// Default 0.
    pub corruption_level: f64,
}

/// Greedy layer-wise pretraining, then end-to-end fine-tuning. Get the defaults from
/// latent_pretrain_params_default() and edit.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_pretrain_params {
    /// What each layer is pretrained as: LATENT_PRETRAIN_AUTOENCODER (default) or
    /// LATENT_PRETRAIN_RBM.
    pub method: latent_pretrain_method,
    /// RBM: Gibbs steps per update (CD-k). Default 1.
    pub rbm_k: u32,
    /// RBM: 1 for persistent contrastive divergence. Default 0. An RBM with linear (Gaussian)
    /// hidden units learns at 1/100 of the learning rate, as Hinton & Salakhutdinov's top RBM.
    pub rbm_persistent: i32,
    /// Training of each layer (`epochs` is per layer; for RBMs `weight_decay` is the weight cost
    /// and `momentum_initial` / `momentum_switch_epoch` give rbm.m's momentum schedule). Default:
    /// the trainer defaults.
    pub pretrain: latent_train_params,
    /// 1: after each layer from the second on, fine-tune the partial deep autoencoder built so far
    /// with `intermediate` before pretraining the next layer (not after the last layer: the
    /// final fine-tuning trains the whole network). Default 0.
    pub intermediate_finetune: i32,
    pub intermediate: latent_train_params,
    /// 1 (default): fine-tune the whole autoencoder with `finetune` at the end; 0: pretraining
    /// only.
    pub finetune_enabled: i32,
    pub finetune: latent_train_params,
    /// Per-layer regularisation of the shallow autoencoders: n_layers entries, one per encoder
    /// layer including the code layer; NULL (n_layers 0) for plain autoencoders everywhere.
    pub layers: *const latent_layer_regularization,
    /// Entries of `layers`, at most 256 (checked before the array is read).
    pub n_layers: u32,
}

/// A plain (unregularised) layer.
#[unsafe(no_mangle)]
pub extern "C" fn latent_layer_regularization_default() -> latent_layer_regularization {
    latent_layer_regularization {
        sparsity: LATENT_SPARSITY_NONE,
        sparsity_target: 0.05,
        sparsity_weight: 0.1,
        contractive_weight: 0.0,
        corruption: LATENT_CORRUPTION_NONE,
        corruption_level: 0.0,
    }
}

/// Trainer defaults for all three stages, intermediate fine-tuning off, fine-tuning on, plain
/// layers.
#[unsafe(no_mangle)]
pub extern "C" fn latent_pretrain_params_default() -> latent_pretrain_params {
    let t = super::trainer::latent_train_params_default();
    latent_pretrain_params {
        method: LATENT_PRETRAIN_AUTOENCODER,
        rbm_k: 1,
        rbm_persistent: 0,
        pretrain: t,
        intermediate_finetune: 0,
        intermediate: t,
        finetune_enabled: 1,
        finetune: t,
        layers: std::ptr::null(),
        n_layers: 0,
    }
}

fn layer_from_c(l: &latent_layer_regularization, i: usize) -> crate::Result<Regularization> {
    let at = |e: crate::Error| e.context(format_args!("layers[{i}]"));
    Ok(Regularization {
        sparsity: Sparsity::from_code(
            l.sparsity,
            f32_of(l.sparsity_target, "sparsity_target").map_err(at)?,
            f32_of(l.sparsity_weight, "sparsity_weight").map_err(at)?,
        )
        .map_err(at)?,
        sparse_layers: SparseLayers::Code,
        contractive: f32_of(l.contractive_weight, "contractive_weight").map_err(at)?,
        // One layer at a time: the exact and per-layer penalties are the same.
        contractive_exact: false,
        corruption: Corruption::from_code(l.corruption, f32_of(l.corruption_level, "corruption_level").map_err(at)?)
            .map_err(at)?,
        code_noise: 0.0,
    })
}

/// Pretrains `net` layer by layer on `train` (each encoder layer as a shallow autoencoder, or an
/// RBM, on the codes of the layers below; its decoder, or the RBM's transpose, becomes the
/// mirrored decoder layer), optionally
/// fine-tuning each partial stack, then fine-tunes the whole network (validating on `valid` if
/// not NULL). The decoder must mirror the encoder's widths. `progress` (may be NULL) is called
/// on this thread with `stage` and `stage_layer` naming the stage; non-zero cancels. As in
/// latent_trainer_fit, the callback may read and save `net` (it sees the deep network as it
/// stands: the layers pretrained so far), and other calls on `net` are LATENT_STATUS_BUSY. A `valid`
/// dataset of zero rows gives LATENT_STATUS_INVALID_ARGUMENT.
///
/// A classifier or regression network (LATENT_TASK_CLASSIFY, LATENT_TASK_REGRESS) is
/// pretrained too: its hidden layers as the encoder of a deep autoencoder built for the purpose
/// (its mirrored decoder is dropped afterwards; the first layer reconstructs the inputs through
/// a sigmoid output with cross-entropy when they all lie in [0, 1], else a linear one with MSE),
/// then `finetune` trains the whole network on the labels or targets of `train` (and `valid`),
/// as latent_trainer_fit would. The callback sees the network with the layers pretrained so far.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_pretrain(
    net: *mut latent_network,
    params: *const latent_pretrain_params,
    train: *const latent_dataset,
    valid: *const latent_dataset,
    progress: latent_progress_fn,
    user: *mut c_void,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let p = unsafe { arg(params, "params")? };
        // SAFETY: `train` is NULL (refused) or a live dataset, `valid` NULL or a live dataset (the C contract).
        let (train, valid) = (unsafe { arg(train, "train")? }, unsafe { valid.as_ref() });
        let _in_fit = (train.for_fit(), valid.map(|v| v.for_fit()));
        let (train, valid) = (train.get(), valid.map(|v| v.get()));
        if valid.is_some_and(|v| v.rows() == 0) {
            return Err(crate::error::invalid!(
                "validation data has no rows: a validation loss over nothing is undefined (pass NULL for no validation)"
            ));
        }
        let layers = if p.layers.is_null() || p.n_layers == 0 {
            Vec::new()
        } else {
            layer_count(p.n_layers, "n_layers")?;
            // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
            let v = unsafe { slice(p.layers, p.n_layers as usize, "layers")? };
            v.iter().enumerate().map(|(i, l)| layer_from_c(l, i)).collect::<crate::Result<_>>()?
        };
        let method = match p.method {
            LATENT_PRETRAIN_AUTOENCODER => PretrainMethod::Autoencoder,
            LATENT_PRETRAIN_RBM => PretrainMethod::Rbm(RbmConfig {
                k: p.rbm_k as usize,
                persistent: flag(p.rbm_persistent, "rbm_persistent")?,
                ..RbmConfig::default()
            }),
            m => return Err(crate::error::invalid!("pretraining method {m} is out of range (0 to 1)")),
        };
        let cfg = PretrainConfig {
            method,
            pretrain: config_from_params(&p.pretrain)?,
            layers,
            intermediate: if flag(p.intermediate_finetune, "intermediate_finetune")? {
                Some(config_from_params(&p.intermediate)?)
            } else {
                None
            },
            finetune: if flag(p.finetune_enabled, "finetune_enabled")? {
                Some(config_from_params(&p.finetune)?)
            } else {
                None
            },
        };
        // The callback sees the deep network as it stands (as latent_trainer_fit's does).
        let mut cb = |pr: &Progress, m: &crate::network::Network| -> bool {
            let Some(f) = progress else { return true };
            // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
            n.lend(m, || unsafe { f(user, &progress_to_c(pr)) == 0 })
        };
        let cb: crate::train::Watch<crate::network::Network> = if progress.is_some() { Some(&mut cb) } else { None };
        let mut guard = n.fit()?;
        // A supervised network's rows carry their labels or targets after the inputs.
        let rows = Trainable::training_rows(&*guard, train, "the training data")?;
        let valid = valid.map(|v| Trainable::training_rows(&*guard, v, "the validation data")).transpose()?;
        Trainable::adopt_scaling(&mut *guard, train)?;
        pretrain_watching(&mut guard, &cfg, &rows, valid.as_deref(), cb).map(|_| ())
    })
}
