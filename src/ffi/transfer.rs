//! C API of transfer learning: a supervised network from a trained autoencoder's or VAE's
//! encoder, and frozen layers.

use super::network::latent_network;
use super::vae::latent_vae;
use super::*;
use crate::activation::Activation;
use crate::error::invalid;
use crate::network::Network;
use crate::task::Task;

/// The task of a network built from an encoder: classify (`outputs` classes) or regress.
fn supervised_task(task: latent_task, outputs: u32) -> Result<Task> {
    let t = Task::from_code(task, outputs as usize)?;
    if !t.is_supervised() {
        return Err(invalid!(
            "task {task} (LATENT_TASK_RECONSTRUCT) is not supervised: a network built from an encoder is LATENT_TASK_CLASSIFY or LATENT_TASK_REGRESS"
        ));
    }
    Ok(t)
}

/// A classifier (`task` = LATENT_TASK_CLASSIFY, `outputs` classes) or regression network
/// (LATENT_TASK_REGRESS, `outputs` targets) whose first layers are the encoder of `source` (its
/// encoder hidden layers and code layer, with their widths, activations, sampling and connection
/// kinds, and their parameters copied exactly), followed by `n_hidden` new hidden layers of
/// `hidden_units` units with `hidden_activations` (may be NULL: ReLU) (`n_hidden` may be 0: the
/// output layer then reads the code), and the output layer. The new layers are initialised from `seed`.
/// The transferred layers are the first latent_network_layer_count - n_hidden - 1 (the
/// source's encoder hidden layers and its code layer): freeze them with
/// latent_network_freeze(net, 0, that count, epochs). `source` is unchanged and stays
/// independent of the new network. Train the result with latent_trainer_fit on a labelled
/// dataset. On failure *out is NULL.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_network_new_supervised_from_encoder(
    source: *const latent_network,
    n_hidden: u32,
    hidden_units: *const u32,
    hidden_activations: *const latent_activation,
    task: latent_task,
    outputs: u32,
    seed: u64,
    out: *mut *mut latent_network,
) -> latent_status {
    let make = |src: &latent_network| {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let hidden = unsafe {
            layers(n_hidden, hidden_units, hidden_activations, std::ptr::null(), 0.0, Activation::Relu, "hidden")?
        };
        let task = supervised_task(task, outputs)?;
        Ok(latent_network::new(Network::supervised_from_encoder(&*src.read()?, &hidden, task, seed)?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(source, "source", out, make) }
}

/// latent_network_new_supervised_from_encoder from a VAE (the same arguments after `source`;
/// `hidden_activations` (may be NULL: ReLU)): the first layers are `source`'s
/// encoder hidden layers and a layer of latent_dim units holding the mean head of q(z|x) (the
/// VAE's `pzx_activation`; the log-variance head is left out), so the network's code is the
/// posterior mean latent_vae_encode gives. The transferred layers are the first
/// latent_network_layer_count - n_hidden - 1 (the VAE's encoder hidden layers and the
/// mean layer). On failure *out is NULL.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_network_new_supervised_from_vae(
    source: *const latent_vae,
    n_hidden: u32,
    hidden_units: *const u32,
    hidden_activations: *const latent_activation,
    task: latent_task,
    outputs: u32,
    seed: u64,
    out: *mut *mut latent_network,
) -> latent_status {
    let make = |src: &latent_vae| {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let hidden = unsafe {
            layers(n_hidden, hidden_units, hidden_activations, std::ptr::null(), 0.0, Activation::Relu, "hidden")?
        };
        let task = supervised_task(task, outputs)?;
        Ok(latent_network::new(Network::supervised_from_vae(&*src.read()?, &hidden, task, seed)?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(source, "source", out, make) }
}

/// Layers of `net` that hold parameters into *count: its hidden layers (encoder, code,
/// decoder) and the output layer, numbered from 0 in forward order as
/// latent_network_layer_offsets and latent_network_freeze number them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_layer_count(net: *const latent_network, count: *mut usize) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? };
        out(count, "count")?;
        let layers = n.read()?.layers().len();
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(count, layers) };
        Ok(())
    })
}

/// Freezes layers first_layer .. first_layer + n_layers - 1 of `net` (numbered from 0 at the
/// first hidden layer, as latent_network_layer_offsets numbers them) for the next `epochs`
/// training epochs, counted over every fit (0: until thawed): latent_trainer_fit leaves their weights and biases bit-identical (a learning-rate multiplier of 0: no update,
/// no weight decay, their optimizer state untouched). `n_layers` = 0 thaws every layer
/// (`first_layer` and `epochs` are then ignored). Replaces any earlier freeze. A fit on a GPU
/// (latent_network_to_device) keeps the frozen layers as they are too. The freeze is not saved by latent_network_save; latent_network_clone keeps it. A range past the
/// last layer is LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_freeze(
    net: *mut latent_network,
    first_layer: u32,
    n_layers: u32,
    epochs: u32,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? };
        let mut g = n.write()?;
        if n_layers == 0 {
            g.unfreeze();
            return Ok(());
        }
        let first = first_layer as usize;
        let end = first.checked_add(n_layers as usize).ok_or_else(|| invalid!("first_layer + n_layers overflows"))?;
        g.freeze(first..end, (epochs > 0).then_some(epochs as usize))
    })
}

/// The frozen layers of `net`: *first_layer and *n_layers (0 when none is frozen) and *epochs,
/// the training epochs they stay frozen (0: until thawed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_frozen(
    net: *const latent_network,
    first_layer: *mut u32,
    n_layers: *mut u32,
    epochs: *mut u32,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? };
        out(first_layer, "first_layer")?;
        out(n_layers, "n_layers")?;
        out(epochs, "epochs")?;
        let g = n.read()?;
        let (f, c, e) = match g.frozen() {
            Some(fr) => (fr.layers.start, fr.layers.len(), fr.epochs.unwrap_or(0)),
            None => (0, 0, 0),
        };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe {
            put(first_layer, f as u32);
            put(n_layers, c as u32);
            put(epochs, e.min(u32::MAX as usize) as u32);
        }
        Ok(())
    })
}
