//! C API of the network handle.

use std::ffi::c_char;
use std::sync::RwLockWriteGuard;

use super::dataset::latent_dataset;
use super::*;
use crate::activation::Activation;
use crate::corruption::Corruption;
use crate::error::{Error, Result, invalid};
use crate::init::Init;
use crate::layer::{Connection, Stochastic};
use crate::loss::Loss;
use crate::network::{LayerSpec, Network, NetworkSpec};
use crate::placement::RowsCall;
use crate::regularizer::{Regularization, SparseLayers, Sparsity};
use crate::tensor::Matrix;

/// An autoencoder. Inference calls (encode, decode, reconstruct, scores, save) may run on one
/// network from many threads at once; calls that change it (set_params, threads) wait for them
/// and run alone. While a fit trains it (latent_trainer_fit, latent_network_pretrain,
/// latent_montecarlo_fit_network) the network is busy: its progress callback may read and
/// save it, every other call returns LATENT_STATUS_BUSY at once.
pub struct latent_network {
    inner: super::handle::Locked<Network>,
    /// The shape (fixed at creation), readable while the network trains: input, code and
    /// output widths, task code.
    shape: (usize, usize, usize, i32),
    /// The GPU copy (latent_network_to_device).
    pub(crate) device: crate::placement::Placement<Network>,
}

impl latent_network {
    pub(crate) fn new(n: Network) -> latent_network {
        let shape = (n.input_dim(), n.code_dim(), n.output_dim(), n.task().code());
        latent_network { inner: super::handle::Locked::new(n, "network"), shape, device: Default::default() }
    }
    /// The model for an inference call (BUSY while it is being fitted, except from the fit's
    /// own progress callback, which sees the current parameters).
    pub(crate) fn read(&self) -> Result<super::handle::Read<'_, Network>> {
        self.inner.read()
    }
    /// The code width (fixed at creation).
    pub(crate) fn code_dim(&self) -> usize {
        self.shape.1
    }
    /// The host network for a change: the GPU copy (if any) is refreshed before its next use.
    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, Network>> {
        let g = self.inner.write()?;
        self.device.mark_stale();
        Ok(g)
    }
    /// The model for a fit: busy for every other call until the guard drops.
    pub(crate) fn fit(&self) -> Result<super::handle::Fitting<'_, Network>> {
        let g = self.inner.fit()?;
        self.device.mark_stale();
        Ok(g)
    }
    /// Runs a progress callback of this handle's fit with `model` readable through the handle.
    pub(crate) fn lend<R>(&self, model: &Network, f: impl FnOnce() -> R) -> R {
        self.inner.lend(model, f)
    }
}

/// The default architecture: no hidden layers, ReLU hidden activation, linear code, sigmoid
/// output, MSE, mirrored decoder, untied, AUTO init, seed 0. input_dim and code_units are 0
/// and must be set.
#[unsafe(no_mangle)]
pub extern "C" fn latent_network_params_default() -> latent_network_params {
    latent_network_params {
        input_dim: 0,
        n_encoder: 0,
        encoder_units: std::ptr::null(),
        encoder_activations: std::ptr::null(),
        hidden_activation: LATENT_ACTIVATION_RELU,
        code_units: 0,
        code_activation: LATENT_ACTIVATION_IDENTITY,
        mirror_decoder: 1,
        n_decoder: 0,
        decoder_units: std::ptr::null(),
        decoder_activations: std::ptr::null(),
        output_activation: LATENT_ACTIVATION_SIGMOID,
        loss: LATENT_LOSS_MSE,
        tied_weights: 0,
        init: LATENT_INIT_AUTO,
        seed: 0,
        sparsity: LATENT_SPARSITY_NONE,
        sparsity_target: 0.05,
        sparsity_weight: 0.1,
        sparse_layers: std::ptr::null(),
        n_sparse_layers: 0,
        alternate_sparsity: 0,
        alternate_start: 0,
        contractive_weight: 0.0,
        corruption: LATENT_CORRUPTION_NONE,
        corruption_level: 0.0,
        code_noise: 0.0,
        encoder_stochastic: std::ptr::null(),
        code_stochastic: LATENT_STOCHASTIC_NONE,
        decoder_stochastic: std::ptr::null(),
        stochastic_sigma: 0.0,
        task: LATENT_TASK_RECONSTRUCT,
        outputs: 0,
        encoder_connections: std::ptr::null(),
        code_connection: LATENT_CONNECTION_DENSE,
        decoder_connections: std::ptr::null(),
        output_connection: LATENT_CONNECTION_DENSE,
    }
}

/// The regularisation fields of the params.
unsafe fn regularization_from_params(p: &latent_network_params) -> Result<Regularization> {
    let sparsity = Sparsity::from_code(
        p.sparsity,
        f32_of(p.sparsity_target, "sparsity_target")?,
        f32_of(p.sparsity_weight, "sparsity_weight")?,
    )?;
    let sparse_layers = if flag(p.alternate_sparsity, "alternate_sparsity")? {
        SparseLayers::Alternate { start: p.alternate_start as usize }
    } else if p.sparse_layers.is_null() || p.n_sparse_layers == 0 {
        SparseLayers::Code
    } else {
        layer_count(p.n_sparse_layers, "n_sparse_layers")?;
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let v = unsafe { slice(p.sparse_layers, p.n_sparse_layers as usize, "sparse_layers")? };
        SparseLayers::Layers(v.iter().map(|&i| i as usize).collect())
    };
    Ok(Regularization {
        sparsity,
        sparse_layers,
        contractive: f32_of(p.contractive_weight, "contractive_weight")?,
        // Set after creation by latent_network_set_contractive_exact.
        contractive_exact: false,
        corruption: Corruption::from_code(p.corruption, f32_of(p.corruption_level, "corruption_level")?)?,
        code_noise: f32_of(p.code_noise, "code_noise")?,
    })
}

/// Sets the layers' connections from a caller's array (NULL: all dense).
unsafe fn connect(layers: &mut [LayerSpec], codes: *const i32, what: &str) -> Result<()> {
    if codes.is_null() {
        return Ok(());
    }
    // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
    let codes = unsafe { slice(codes, layers.len(), &format!("{what}_connections"))? };
    for (i, (l, &c)) in layers.iter_mut().zip(codes).enumerate() {
        l.connection = Connection::from_code(c).map_err(|e| e.context(format_args!("{what} layer {i}")))?;
    }
    Ok(())
}

pub(crate) unsafe fn spec_from_params(p: &latent_network_params) -> Result<NetworkSpec> {
    if p.input_dim == 0 {
        return Err(invalid!("input_dim is 0: set it to the number of columns of your data"));
    }
    if p.code_units == 0 {
        return Err(invalid!("code_units is 0: set the width of the code layer"));
    }
    let hidden =
        Activation::from_code(p.hidden_activation).map_err(|e| e.context(format_args!("hidden_activation")))?;
    let sigma = f32_of(p.stochastic_sigma, "stochastic_sigma")?;
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    let mut encoder = unsafe {
        layers(p.n_encoder, p.encoder_units, p.encoder_activations, p.encoder_stochastic, sigma, hidden, "encoder")?
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { connect(&mut encoder, p.encoder_connections, "encoder")? };
    let decoder = if flag(p.mirror_decoder, "mirror_decoder")? {
        None
    } else {
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        let mut d = unsafe {
            layers(p.n_decoder, p.decoder_units, p.decoder_activations, p.decoder_stochastic, sigma, hidden, "decoder")?
        };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { connect(&mut d, p.decoder_connections, "decoder")? };
        Some(d)
    };
    Ok(NetworkSpec {
        input_dim: p.input_dim as usize,
        encoder,
        code: LayerSpec::new(
            p.code_units as usize,
            Activation::from_code(p.code_activation).map_err(|e| e.context(format_args!("code_activation")))?,
        )
        .with(Stochastic::from_code(p.code_stochastic, sigma).map_err(|e| e.context(format_args!("code_stochastic")))?)
        .connected(Connection::from_code(p.code_connection).map_err(|e| e.context(format_args!("code_connection")))?),
        decoder,
        output_activation: Activation::from_code(p.output_activation)
            .map_err(|e| e.context(format_args!("output_activation")))?,
        output_connection: Connection::from_code(p.output_connection)
            .map_err(|e| e.context(format_args!("output_connection")))?,
        loss: Loss::from_code(p.loss)?,
        tied_weights: flag(p.tied_weights, "tied_weights")?,
        init: Init::from_code(p.init)?,
        seed: p.seed,
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        regularization: unsafe { regularization_from_params(p)? },
        task: crate::task::Task::from_code(p.task, p.outputs as usize)?,
    })
}

/// Builds and initialises an autoencoder. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_new(
    params: *const latent_network_params,
    out: *mut *mut latent_network,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(params, "params", out, |p| Ok(latent_network::new(Network::new(spec_from_params(p)?)?))) }
}

/// A deep copy (parameters and architecture). On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_clone(
    net: *const latent_network,
    out: *mut *mut latent_network,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { new_from(net, "net", out, |n| Ok(latent_network::new(n.read()?.clone()))) }
}

/// Frees a network; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_free(net: *mut latent_network) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(net) }
}

/// Width of the input (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_input_dim(net: *const latent_network) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { net.as_ref() }.map_or(0, |n| n.shape.0)
}

/// Width of the code layer (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_code_dim(net: *const latent_network) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { net.as_ref() }.map_or(0, |n| n.shape.1)
}

/// Number of trainable parameters (weights and biases; tied weights counted once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_param_count(net: *const latent_network, out: *mut usize) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_value(net, "net", out, "out", |n| Ok(n.read()?.param_count())) }
}

/// Copies the parameters (latent_network_param_count of them) into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_get_params(
    net: *const latent_network,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { get_params(net, "net", out, capacity, |n| n.read(), Network::params) }
}

/// Replaces the parameters; `n` must equal latent_network_param_count and all values be finite.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_params(
    net: *mut latent_network,
    params: *const f32,
    n: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { super::set_params(net, "net", params, n, |h, p| h.write()?.set_params(p)) }
}

/// Centres the biases of the network's functional-transfer layers on the first (up to) 1,000
/// input rows of `data`, layer by layer, so that each such layer's pre-activations average 0
/// over them (docs/functional.md, "Initialisation and depth"): what the first fit of a new
/// network does itself (on the CPU or a GPU). Call it to centre on other rows than the
/// training set's first, or again after latent_network_set_params. A network without functional
/// layers is left as it is. A width other than input_dim: LATENT_STATUS_SHAPE_MISMATCH.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_center_functional(
    net: *mut latent_network,
    data: *const latent_dataset,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(data, "data")? }.get();
        let mut n = h.write()?;
        let threads = n.threads();
        n.center_functional(d.x(), threads)
    })
}

/// Threads used by inference calls on this network (0, the default: LATENT_NUM_THREADS when
/// set, else all cores). More than 1024 (given, or from LATENT_NUM_THREADS) is
/// LATENT_STATUS_INVALID_ARGUMENT. Networks with the same count share one pool of worker
/// threads; the library keeps at most 4 pools, of at most max(64, 4 x cores) threads in all
/// (unless the most recently used pool alone has more), and ends the others' threads once no
/// call uses them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_threads(net: *mut latent_network, threads: u32) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        crate::pool::check_threads(threads as usize)?;
        h.write()?.set_threads(threads as usize);
        Ok(())
    })
}

/// Whether inference calls (encode, decode, reconstruct, scores) sample the stochastic layers:
/// `on` = 0 (the default) passes their means on; 1 samples them, the draws depending only on
/// `seed` and each row's position in the call (the same call repeats exactly; change the seed
/// to draw again). Training always samples.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_set_stochastic_inference(
    net: *mut latent_network,
    on: i32,
    seed: u64,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        let on = flag(on, "on")?;
        h.write()?.set_stochastic_inference(on.then_some(seed));
        Ok(())
    })
}

/// Writes a NUL-terminated summary of the architecture into `buf` (snprintf-style: *needed, if
/// not NULL, receives the size including the NUL; a too-small buffer gets a truncated,
/// NUL-terminated copy and LATENT_STATUS_BUFFER_TOO_SMALL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_describe(
    net: *const latent_network,
    buf: *mut c_char,
    capacity: usize,
    needed: *mut usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let s = unsafe { arg(net, "net")? }.read()?.describe();
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { write_string(&s, buf, capacity, needed) }
    })
}

/// Runs `f` on the rows and copies its result into the caller's `out`. The rows' columns must
/// be `in_width`, and `out` must hold rows x `per_row` values: both checked before anything is
/// copied or computed.
pub(crate) unsafe fn rows_call<T: OutValue + std::fmt::Debug>(
    net: *const latent_network,
    rows: Rows,
    out: *mut T,
    capacity: usize,
    io: impl FnOnce(&Network) -> (usize, usize),
    f: impl FnOnce(&Network, &Matrix) -> Result<Vec<T>>,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        let (in_width, per_row) = io(&n);
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { rows_into(rows, in_width, "network", Some(n.input_scaling()), out, capacity, per_row, |m| f(&n, m)) }
    })
}

/// rows_call() of an inference that runs on the GPU when the network is there (the engine's
/// [`crate::placement::Placement::rows`] decides).
unsafe fn device_rows_call(
    net: *const latent_network,
    rows: Rows,
    out: *mut f32,
    capacity: usize,
    call: RowsCall,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let h = unsafe { arg(net, "net")? };
        let n = h.read()?;
        call.check(&n)?;
        let (in_width, per_row) = call.widths(&n);
        let scaling = if call == RowsCall::Decode { None } else { Some(n.input_scaling()) };
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe {
            rows_into(rows, in_width, "network", scaling, out, capacity, per_row, |m| {
                let v = h.device.rows(&n, call, m)?;
                // Rows in the input's space go back to raw units in raw-input mode (a caller's rows).
                Ok(match (rows, call) {
                    (Rows::Caller(..), RowsCall::Decode | RowsCall::Reconstruct) => n.input_scaling().to_raw(v)?,
                    _ => v,
                }
                .into_vec())
            })
        }
    })
}

/// Codes of `rows` input rows (row-major, `cols` = input_dim) into `codes` (rows x code_dim,
/// `capacity` floats available).
///
/// As every inference call (encode, decode, reconstruct, predict, classify, scores, binary
/// codes, and their _dataset forms): the width, then the capacity (LATENT_STATUS_BUFFER_TOO_SMALL)
/// are checked before the rows are read or anything is computed; zero rows (from a caller's
/// matrix, where `x` and the output may then be NULL, or from an empty dataset) give
/// LATENT_STATUS_OK with nothing written; zero columns LATENT_STATUS_INVALID_ARGUMENT; memory
/// for the copy of the rows that cannot be had, LATENT_STATUS_OUT_OF_MEMORY; a result that
/// overflows to NaN or infinity from finite rows (huge inputs or parameters),
/// LATENT_STATUS_NON_FINITE, nothing being written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_encode(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    codes: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { device_rows_call(net, Rows::Caller(x, rows, cols), codes, capacity, RowsCall::Encode) }
}

/// Reconstructions from `rows` codes (`cols` = code_dim) into `out` (rows x input_dim). A classifier or regressor gives
/// LATENT_STATUS_INVALID_ARGUMENT (its outputs: latent_network_predict).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_decode(
    net: *const latent_network,
    codes: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { device_rows_call(net, Rows::Caller(codes, rows, cols), out, capacity, RowsCall::Decode) }
}

/// decode(encode(x)) into `out` (rows x input_dim). A classifier or regressor gives
/// LATENT_STATUS_INVALID_ARGUMENT (its outputs: latent_network_predict).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_reconstruct(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { device_rows_call(net, Rows::Caller(x, rows, cols), out, capacity, RowsCall::Reconstruct) }
}

/// Per-row reconstruction error (the row's loss score: the mean over its columns for MSE,
/// binary cross-entropy, MAE and MSLE, the sum for L1, L2, Poisson, KL divergence and
/// multi-class cross-entropy, minus the cosine for cosine proximity): an anomaly score,
/// higher = less like the training data. Rows outside the loss's target domain (see
/// `latent_loss`) give LATENT_STATUS_INVALID_ARGUMENT. `scores` receives `rows` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_reconstruction_error(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    scores: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Caller(x, rows, cols),
            scores,
            capacity,
            |n| (n.input_dim(), 1),
            |n, m| n.reconstruction_errors(m),
        )
    }
}

/// Per-row Frobenius norm of the encoder's Jacobian d(code)/d(input), exactly: how strongly
/// the code reacts to small changes of the row (what a contractive penalty shrinks). `norms`
/// receives `rows` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_jacobian_norms(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    norms: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Caller(x, rows, cols),
            norms,
            capacity,
            |n| (n.input_dim(), 1),
            |n, m| n.encoder_jacobian_norms(m),
        )
    }
}

/// Codes of every row of a dataset into `codes` (rows x code_dim).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_encode_dataset(
    net: *const latent_network,
    dataset: *const latent_dataset,
    codes: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { device_rows_call(net, Rows::Dataset(dataset), codes, capacity, RowsCall::Encode) }
}

/// Reconstructions of every row of a dataset into `out` (rows x input_dim). A classifier or regressor gives
/// LATENT_STATUS_INVALID_ARGUMENT (its outputs: latent_network_predict).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_reconstruct_dataset(
    net: *const latent_network,
    dataset: *const latent_dataset,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { device_rows_call(net, Rows::Dataset(dataset), out, capacity, RowsCall::Reconstruct) }
}

/// Per-row reconstruction errors (anomaly scores) of a dataset into `scores` (rows values).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_reconstruction_error_dataset(
    net: *const latent_network,
    dataset: *const latent_dataset,
    scores: *mut f64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Dataset(dataset),
            scores,
            capacity,
            |n| (n.input_dim(), 1),
            |n, m| n.reconstruction_errors(m),
        )
    }
}

/// Writes `f(network, dataset rows)` into `*out`.
unsafe fn dataset_scalar(
    net: *const latent_network,
    dataset: *const latent_dataset,
    out: *mut f64,
    f: impl FnOnce(&Network, &crate::data::Dataset) -> Result<f64>,
) -> latent_status {
    guard(|| {
        super::out(out, "out")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(dataset, "dataset")? }.get();
        no_rows(d.rows())?;
        let v = f(&n, d)?;
        if !v.is_finite() {
            return Err(Error::NonFinite(format!(
                "the result is {v}: the rows are finite, the computation overflowed (huge inputs or parameters)"
            )));
        }
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(out, v) };
        Ok(())
    })
}

/// The network's loss (the mean over rows of the row score, as in training: for MSE and
/// binary cross-entropy the mean over all elements) on a dataset: a classifier's or
/// regressor's against the dataset's labels or targets (as latent_network_evaluate's `loss`;
/// a dataset without them is LATENT_STATUS_INVALID_ARGUMENT). A dataset of zero rows gives
/// LATENT_STATUS_INVALID_ARGUMENT ("no rows"); a loss that overflows from finite rows (huge
/// inputs or parameters), LATENT_STATUS_NON_FINITE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_loss(
    net: *const latent_network,
    dataset: *const latent_dataset,
    loss: *mut f64,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        dataset_scalar(net, dataset, loss, |n, d| {
            // A supervised network's loss needs the labels or targets the dataset carries (this
            // call refused every classifier, against its own documentation: an outside test).
            if n.task().is_supervised() { Ok(n.evaluate(d)?.loss) } else { n.loss(d.x()) }
        })
    }
}

/// Mean squared reconstruction error per element on a dataset, whatever the training loss. A
/// dataset of zero rows gives LATENT_STATUS_INVALID_ARGUMENT ("no rows"); an overflow,
/// LATENT_STATUS_NON_FINITE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_mse(
    net: *const latent_network,
    dataset: *const latent_dataset,
    mse: *mut f64,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { dataset_scalar(net, dataset, mse, |n, d| n.mean_squared_error(d.x())) }
}

/// Saves the network (architecture and parameters) to `path` in the versioned, checksummed
/// model format. The file is written to a temporary name, synced and renamed: `path` is either
/// the complete new model or untouched.
/// The temporary file is `.<name>.latent-tmp-<pid>-<n>` beside the target; one left by a process
/// killed while saving is removed by the next save to the same path. A `path` that is a
/// symbolic link is followed: the file it points to is replaced and the link kept. A `path`
/// that exists and is not a regular file (a directory, a device) fails with LATENT_STATUS_IO.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_save(net: *const latent_network, path: *const c_char) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        crate::model_file::save(&n, std::path::Path::new(p))
    })
}

/// Loads a network saved by latent_network_save (by this or an earlier version). A truncated,
/// corrupted or foreign file gives LATENT_STATUS_BAD_FORMAT, a missing one LATENT_STATUS_IO.
/// Only a regular file is read (a symbolic link to one is followed): a FIFO, a device or a
/// directory fails at once with LATENT_STATUS_IO "not a regular file" (it is opened without
/// blocking). A file larger than 16 GiB is LATENT_STATUS_BAD_FORMAT, refused before it is
/// read.
/// On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_load(path: *const c_char, out: *mut *mut latent_network) -> latent_status {
    let load = || {
        // SAFETY: NULL is refused; otherwise a NUL-terminated string (the C contract).
        let p = unsafe { super::path(path, "path")? };
        Ok(latent_network::new(crate::model_file::load(std::path::Path::new(p))?))
    };
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { make_handle(out, load) }
}

/// Wraps a Rust network in a C handle (for Rust programs that hand networks to C code).
pub fn latent_network_from(n: Network) -> latent_network {
    latent_network::new(n)
}

/// Width of the network's output: input_dim for an autoencoder, the classes of a classifier,
/// the targets of a regressor (0 for a NULL handle).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_output_dim(net: *const latent_network) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { net.as_ref() }.map_or(0, |n| n.shape.2)
}

/// The network's LATENT_TASK_* (-1 for a NULL handle).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_task(net: *const latent_network) -> latent_task {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { net.as_ref() }.map_or(-1, |n| n.shape.3)
}

/// What the network outputs for `rows` input rows, into `out` (rows x output_dim): class
/// probabilities (softmax) for a classifier, predictions for a regressor, reconstructions for
/// an autoencoder.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_predict(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { device_rows_call(net, Rows::Caller(x, rows, cols), out, capacity, RowsCall::Predict) }
}

/// latent_network_predict over every row of a dataset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_predict_dataset(
    net: *const latent_network,
    dataset: *const latent_dataset,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe { device_rows_call(net, Rows::Dataset(dataset), out, capacity, RowsCall::Predict) }
}

/// The most probable class of each of `rows` input rows into `labels` (a classifier).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_classify(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    labels: *mut i32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Caller(x, rows, cols),
            labels,
            capacity,
            |n| (n.input_dim(), 1),
            |n, m| Ok(n.classify(m)?.into_iter().map(|c| c as i32).collect()),
        )
    }
}

/// latent_network_classify over every row of a dataset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_classify_dataset(
    net: *const latent_network,
    dataset: *const latent_dataset,
    labels: *mut i32,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Dataset(dataset),
            labels,
            capacity,
            |n| (n.input_dim(), 1),
            |n, m| Ok(n.classify(m)?.into_iter().map(|c| c as i32).collect()),
        )
    }
}

/// Scores a supervised network on a dataset with labels (classifier) or targets (regressor):
/// the loss as in training, accuracy (classifier; NaN otherwise), mean squared error
/// (regressor; NaN otherwise). `confusion` (may be NULL with capacity 0) receives the
/// classes x classes counts, row = true label, column = predicted class. A dataset of zero
/// rows gives LATENT_STATUS_INVALID_ARGUMENT ("no rows").
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_evaluate(
    net: *const latent_network,
    dataset: *const latent_dataset,
    out: *mut latent_evaluation,
    confusion: *mut u64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        super::out(out, "out")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(dataset, "dataset")? }.get();
        no_rows(d.rows())?;
        // The confusion matrix's capacity before the evaluation runs.
        let classes = if let crate::task::Task::Classify { classes } = n.task() { classes } else { 0 };
        let dst = if confusion.is_null() && capacity == 0 {
            None
        } else {
            // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
            Some(unsafe { out_slice(confusion, capacity, classes * classes, "confusion")? })
        };
        let e = n.evaluate(d)?;
        if let Some(dst) = dst {
            dst.copy_from_slice(&e.confusion);
        }
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe {
            put(out, latent_evaluation { loss: e.loss, accuracy: e.accuracy, mse: e.mse, rows: n_rows(dataset) })
        };
        Ok(())
    })
}

unsafe fn n_rows(d: *const latent_dataset) -> u64 {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { d.as_ref() }.map_or(0, |d| d.get().rows() as u64)
}

/// Where layer `layer` (0-based in forward order; the output layer is the last) keeps its
/// parameters in latent_network_get_params' vector: `*w` the offset of its weight matrix
/// (n_in x n_out, row-major; a functional layer's theta block [k][n_in][n_out], a memory
/// layer's a, c, d planes; a tied layer's is its mirror's, read transposed), `*w_len` its
/// length (0 for a tied layer, which owns only its bias), `*b` the offset of its n_out biases.
/// Any out-pointer may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_layer_offsets(
    net: *const latent_network,
    layer: usize,
    w: *mut usize,
    w_len: *mut usize,
    b: *mut usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        let layers = n.layers();
        let l = layers
            .get(layer)
            .ok_or_else(|| invalid!("layer {layer} is out of range: the network has {} layers", layers.len()))?;
        let own_w = if l.tied { 0 } else { l.w_len() };
        for (p, v) in [(w, l.w), (w_len, own_w), (b, l.b)] {
            if !p.is_null() {
                // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
                unsafe { put(p, v) };
            }
        }
        Ok(())
    })
}
