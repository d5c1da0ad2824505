//! Network: an encoder (hidden layers + code layer) and a decoder (hidden layers + output layer)
//! of dense layers over one flat parameter buffer.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::ops::Range;

use crate::activation::Activation;
use crate::error::{Error, Result, invalid, shape, try_zeros};
use crate::layer::{Dense, Stochastic};
use crate::loss::Loss;
use crate::regularizer::{self, Sparsity};
use crate::rng::{Rng, StepDraws, stream};
use crate::task::{self, Evaluation, Task};
use crate::tensor::Matrix;

pub use crate::limits::{MAX_LAYERS, MAX_PARAMS, MAX_UNITS};
pub use crate::spec::{LayerSpec, NetworkSpec};

/// What makes a training step stochastic: the step's counter-based draws (keyed by each row's
/// place in the minibatch), and the identity of each row (code noise is fixed per training row).
#[derive(Clone, Copy)]
pub struct StepNoise<'a> {
    /// The step's key and counter, and where these rows sit in the minibatch.
    pub draws: StepDraws,
    /// Index of each of these rows in the training data.
    pub row_ids: &'a [usize],
    /// Per-feature (min, max) of the training data, for salt-and-pepper corruption.
    pub feature_range: Option<(&'a [f32], &'a [f32])>,
}

/// The loss of one training step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepLoss {
    /// Reconstruction loss summed over the minibatch's elements.
    pub recon_sum: f64,
    /// Penalties (sparsity, contractive), in the units of the mean reconstruction loss.
    pub penalty: f64,
}

pub use crate::backend::network::Workspace;

#[derive(Clone, Debug)]
pub struct Network {
    spec: NetworkSpec,
    layers: Vec<Dense>,
    /// Layers 0..n_encoder are the encoder (its last is the code layer).
    n_encoder: usize,
    params: crate::backend::cpu::Lined,
    threads: usize,
    /// Seed of sampling in inference calls; None: stochastic layers pass on their means.
    stochastic_inference: Option<u64>,
    /// Layers the optimizer leaves alone in training (see [`crate::transfer`]); not saved.
    pub(crate) frozen: Option<crate::transfer::Freeze>,
    /// The scaling fitted on the training data and the serving mode ([`crate::preprocess`]).
    input: crate::preprocess::InputScaling,
    /// Set by [`Network::new`] when functional layers got the variance-preserving init: the first
    /// fit centres their biases on its data ([`Network::center_functional`]); cleared by that,
    /// by [`Network::set_params`], and absent from loaded networks.
    pub(crate) center_pending: bool,
    /// Workspaces of inference calls, by (rows, layers), kept for the next call of that shape.
    spare: crate::spare::Spare<(usize, Range<usize>), Workspace>,
}

/// The accessors a [`Network`] and a [`crate::Vae`] write alike, over their fields `spec`
/// (of type `$spec`), `input`, `layers`, `params` and `threads`.
macro_rules! model_accessors {
    ($spec:ty) => {
        pub fn spec(&self) -> &$spec {
            &self.spec
        }

        /// The input pipeline: the scaling stored with the model and the serving mode.
        pub fn input_scaling(&self) -> &crate::preprocess::InputScaling {
            &self.input
        }

        /// Stores a fitted scaling of the inputs (a per-column one must have `input_dim` columns).
        pub fn set_input_scaler(&mut self, s: crate::data::scale::Scaler) -> Result<()> {
            self.input.set_scaler(s, self.spec.input_dim)
        }

        /// Raw-input mode: serving calls scale raw rows with the stored scaling themselves.
        pub fn set_raw_input(&mut self, raw: bool) {
            self.input.set_raw(raw);
        }
        pub fn layers(&self) -> &[Dense] {
            &self.layers
        }
        pub fn input_dim(&self) -> usize {
            self.spec.input_dim
        }
        pub fn param_count(&self) -> usize {
            self.params.len()
        }
        pub fn params(&self) -> &[f32] {
            &self.params
        }
        pub(crate) fn params_mut(&mut self) -> &mut [f32] {
            &mut self.params
        }
        /// Threads used by inference calls (0 = all cores).
        pub fn threads(&self) -> usize {
            self.threads
        }
        pub fn set_threads(&mut self, t: usize) {
            self.threads = t;
        }
    };
}
pub(crate) use model_accessors;

impl Network {
    /// Builds and initialises a network from its spec (seeded, so the same spec gives the same
    /// parameters).
    pub fn new(spec: NetworkSpec) -> Result<Network> {
        let mut net = Network::structure(spec)?;
        let mut rng = Rng::new(net.spec.seed, stream::INIT);
        for i in 0..net.layers.len() {
            let l = net.layers[i].clone();
            let (w, b) = net.params.split_at_mut(l.b);
            let bias = &mut b[..l.n_out];
            if let Some(f) = l.functional() {
                match net.spec.init.slope_variance(l.activation, l.n_in, l.n_out) {
                    Some(var) => {
                        f.init_scaled(&mut net.params, var, &mut rng);
                        net.center_pending = true;
                    }
                    None => f.init(&mut net.params, &mut rng),
                }
            } else if let Some(m) = l.memory() {
                m.init(&mut net.params, &mut rng);
            } else if l.tied {
                bias.fill(0.0);
            } else {
                net.spec.init.fill(
                    l.activation,
                    l.n_in,
                    l.n_out,
                    &mut w[l.w..l.w + l.n_in * l.n_out],
                    Some(bias),
                    &mut rng,
                );
            }
        }
        Ok(net)
    }

    /// A network with the given parameters (as from [`Network::params`]).
    pub fn from_params(spec: NetworkSpec, params: &[f32]) -> Result<Network> {
        let mut net = Network::structure(spec)?;
        net.set_params(params)?;
        Ok(net)
    }

    fn structure(spec: NetworkSpec) -> Result<Network> {
        spec.validate()?;
        let dec = spec.decoder_layers();
        let mut dims = vec![LayerSpec::new(spec.input_dim, Activation::Identity)];
        dims.extend(spec.encoder.iter().copied());
        dims.push(spec.code);
        dims.extend(dec.iter().copied());
        dims.push(LayerSpec::new(spec.output_dim(), spec.output_activation).connected(spec.output_connection));
        let n_encoder = spec.encoder.len() + 1;
        let mut layers: Vec<Dense> = Vec::with_capacity(dims.len() - 1);
        let mut offset = 0usize;
        let overflow = || invalid!("the network has more than {MAX_PARAMS} parameters");
        for i in 1..dims.len() {
            let (n_in, n_out, act, stochastic) =
                (dims[i - 1].units, dims[i].units, dims[i].activation, dims[i].stochastic);
            let idx = i - 1;
            let tied_to = (spec.tied_weights && idx >= n_encoder).then(|| 2 * n_encoder - 1 - idx);
            let connection = dims[i].connection;
            let w = match tied_to {
                Some(t) => layers[t].w,
                None => {
                    let w = offset;
                    let len = connection.params(n_in, n_out).ok_or_else(overflow)? - n_out;
                    offset = offset.checked_add(len).ok_or_else(overflow)?;
                    w
                }
            };
            let b = offset;
            offset = offset.checked_add(n_out).filter(|&o| o <= MAX_PARAMS).ok_or_else(overflow)?;
            layers.push(Dense {
                n_in,
                n_out,
                activation: act,
                w,
                b,
                tied: tied_to.is_some(),
                accumulate_dw: false,
                stochastic,
                connection,
                sign_seed: spec.seed ^ (idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            });
        }
        // A tied pair's gradient is written by the decoder layer (backward reaches it first) and
        // added to by the encoder layer.
        if spec.tied_weights {
            for l in layers.iter_mut().take(n_encoder) {
                l.accumulate_dw = true;
            }
        }
        Ok(Network {
            spec,
            layers,
            n_encoder,
            params: crate::backend::cpu::Lined::zeros(offset)?,
            threads: 0,
            stochastic_inference: None,
            frozen: None,
            input: Default::default(),
            center_pending: false,
            spare: Default::default(),
        })
    }

    model_accessors!(NetworkSpec);
    pub fn code_dim(&self) -> usize {
        self.spec.code.units
    }
    pub fn n_encoder_layers(&self) -> usize {
        self.n_encoder
    }
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        crate::tensor::check_params(p, self.params.len(), "the network")?;
        self.params.copy_from_slice(p);
        self.center_pending = false;
        Ok(())
    }

    /// Data-dependent completion of the functional layers' initialisation (as Krähenbühl et al.
    /// 2016 and Mishkin & Matas 2016 do for dense layers): layer by layer in forward order, sets
    /// each functional layer's biases so that its pre-activations average 0 over `x` (rows of
    /// `input_dim` values). The data-free bias b_j = −Σ_i f(0; θ_ij) centres a unit only for
    /// inputs around 0; families whose slope has one sign (w²x, w²x², a²(x + c)²) fed
    /// non-negative pixels otherwise start saturated. The first fit of a network from
    /// [`Network::new`] does this on its first 1,000 training rows (on the CPU trainer; a device
    /// fit does not); other layers are untouched.
    pub fn center_functional(&mut self, x: &Matrix, threads: usize) -> Result<()> {
        if x.cols() != self.input_dim() {
            return Err(shape!("{} columns given, the network takes {}", x.cols(), self.input_dim()));
        }
        self.center_functional_rows(x.as_slice(), x.cols(), x.rows(), threads)
    }

    /// Adds Σ_i f(0; θ_ij) to the bias of every centred functional layer: parameters of the
    /// plain sum (a model file before version 8) in the centred form, the same function.
    pub(crate) fn fold_functional_offsets(&mut self) {
        for f in self.layers.iter().filter_map(|l| l.functional()) {
            let off = f.offsets(&self.params);
            self.params[f.b..f.b + f.n_out].iter_mut().zip(off).for_each(|(b, o)| *b += o);
        }
    }

    /// [`Network::center_functional`] on the inputs of `rows` rows of width `width` (the first
    /// `input_dim` columns; a supervised network's training rows carry targets after them).
    pub(crate) fn center_functional_rows(
        &mut self,
        data: &[f32],
        width: usize,
        rows: usize,
        threads: usize,
    ) -> Result<()> {
        let d = self.input_dim();
        let rows = rows.min(1000);
        if rows == 0 || !self.layers.iter().any(|l| l.functional().is_some()) {
            return Ok(());
        }
        let mut x = Vec::with_capacity(rows * d);
        for r in data.chunks_exact(width).take(rows) {
            x.extend_from_slice(&r[..d]);
        }
        if let Some(i) = crate::tensor::first_non_finite(&x) {
            return Err(Error::NonFinite(format!("row {}, column {} is {}", i / d, i % d, x[i])));
        }
        let last = self.layers.iter().rposition(|l| l.functional().is_some()).expect("a functional layer");
        let mut ws = Workspace::for_inference(self, rows, 0..self.layers.len())?;
        let pool = crate::pool::pool(threads)?;
        // x holds the input of layer li: each layer runs once, a functional one again after its
        // biases moved.
        for li in 0..=last {
            pool.install(|| self.forward_layers(li..li + 1, &x, rows, &mut ws, threads))?;
            if let Some(f) = self.layers[li].functional() {
                let n = f.n_out;
                let mut mean = vec![0f64; n];
                for zr in ws.preactivation(li).chunks_exact(n).take(rows) {
                    for (m, v) in mean.iter_mut().zip(zr) {
                        *m += *v as f64;
                    }
                }
                let b = self.layers[li].b;
                for (p, m) in self.params[b..b + n].iter_mut().zip(mean) {
                    *p -= (m / rows as f64) as f32;
                }
                pool.install(|| self.forward_layers(li..li + 1, &x, rows, &mut ws, threads))?;
            }
            x = ws.passed_on(li)[..rows * self.layers[li].n_out].to_vec();
        }
        self.center_pending = false;
        Ok(())
    }
    /// Copies the weights (unless either layer is tied) and biases of layer a of `src` into
    /// layer b of this network, for each (a, b) (layers of the same shape).
    pub(crate) fn copy_layers_from(&mut self, src: &Network, pairs: impl IntoIterator<Item = (usize, usize)>) {
        for (a, b) in pairs {
            let (ls, ld) = (&src.layers[a], &self.layers[b]);
            debug_assert_eq!((ls.n_in, ls.n_out, ls.w_len()), (ld.n_in, ld.n_out, ld.w_len()));
            if !ld.tied && !ls.tied {
                self.params[ld.w..ld.w + ld.w_len()].copy_from_slice(&src.params[ls.w..ls.w + ls.w_len()]);
            }
            self.params[ld.b..ld.b + ld.n_out].copy_from_slice(&src.params[ls.b..ls.b + ls.n_out]);
        }
    }

    /// Some(seed): inference calls sample stochastic layers (the draws depend on the seed and the
    /// rows' positions in the call, so a call repeats exactly); None (default): they pass on
    /// their means.
    pub fn set_stochastic_inference(&mut self, seed: Option<u64>) {
        self.stochastic_inference = seed;
    }
    pub fn stochastic_inference(&self) -> Option<u64> {
        self.stochastic_inference
    }
    /// Whether a step's rows may run in data-parallel shards whose gradients are combined by
    /// their rows: the objective is a mean over rows (not with the KL sparsity penalty, a
    /// function of the whole minibatch's mean activations, nor with memory layers, whose state
    /// runs row after row).
    pub fn shardable(&self) -> bool {
        !matches!(self.spec.regularization.sparsity, crate::regularizer::Sparsity::Kl { .. }) && !self.has_memory()
    }

    /// Whether any layer is a memory layer (rows are then a sequence: no shuffling or shards).
    pub fn has_memory(&self) -> bool {
        self.layers.iter().any(|l| l.memory().is_some())
    }

    /// Whether any layer samples.
    pub fn has_stochastic_layers(&self) -> bool {
        self.layers.iter().any(|l| !l.stochastic.is_none())
    }

    /// Ranges of the parameter buffer that hold weights (not biases): weight decay applies there.
    pub fn weight_ranges(&self) -> Vec<Range<usize>> {
        self.layers.iter().filter(|l| !l.tied).map(|l| l.w..l.w + l.w_len()).collect()
    }

    /// Buffers of one pass over up to `rows` rows (training steps and forward passes).
    pub fn workspace(&self, rows: usize) -> Result<Workspace> {
        Workspace::new(self, rows)
    }

    /// The parameters as the CPU backend's buffer (read in place by host steps and inference).
    pub(crate) fn param_vec(&self) -> &crate::backend::cpu::Lined {
        &self.params
    }

    /// Runs layers `range` on `x` (rows x layers[range.start].n_in) into the workspace,
    /// passing means on through stochastic layers.
    pub fn forward_layers(
        &self,
        range: Range<usize>,
        x: &[f32],
        rows: usize,
        ws: &mut Workspace,
        threads: usize,
    ) -> Result<()> {
        ws.forward(self, range, x, rows, threads)
    }

    /// Forward and backward over a batch whose target is its input, with the network's
    /// penalties but no corruption or code noise. Writes the gradient of the mean loss plus
    /// penalties into `grads` (every entry is overwritten) and returns the summed element loss.
    pub fn forward_backward(
        &self,
        x: &[f32],
        rows: usize,
        ws: &mut Workspace,
        grads: &mut [f32],
        threads: usize,
    ) -> f64 {
        self.step(x, rows, ws, grads, threads, None).recon_sum
    }

    /// One training step's forward and backward: with `noise`, the input is corrupted and the
    /// code noise injected as the regularisation says; the loss is always against the clean x.
    /// `grads` gets the gradient of mean loss + penalties (every entry overwritten), `ws` the
    /// pass (outputs, samples, memory states). It is the step a fit runs
    /// ([`crate::backend::DeviceNetwork`]'s), on a `Cpu` backend of `threads` workers whose pass
    /// is `ws`, with the parameters read in place; panics only if `ws` holds fewer than `rows`
    /// rows or its gradient buffer cannot be allocated.
    pub fn step(
        &self,
        x: &[f32],
        rows: usize,
        ws: &mut Workspace,
        grads: &mut [f32],
        threads: usize,
        noise: Option<StepNoise>,
    ) -> StepLoss {
        ws.step(self, x, rows, grads, threads, noise).unwrap_or_else(|e| panic!("Network::step: {e}"))
    }

    /// Runs layers `range` over x in blocks of rows, calling `sink(first_row, block_rows, ws)`.
    fn run_blocks(
        &self,
        range: Range<usize>,
        x: &Matrix,
        sink: impl FnMut(usize, usize, &Workspace) + Send,
    ) -> Result<()> {
        crate::pool::infer(self.threads, x.rows() * x.cols(), |threads| self.run_blocks_in(range, x, threads, sink))
    }

    /// run_blocks() on the current pool with `threads` workers.
    fn run_blocks_in(
        &self,
        range: Range<usize>,
        x: &Matrix,
        threads: usize,
        sink: impl FnMut(usize, usize, &Workspace),
    ) -> Result<()> {
        if x.rows() == 0 {
            return Ok(());
        }
        let rows = x.rows().min(1024);
        let mut ws = self.spare.get((rows, range.clone()), || Workspace::for_inference(self, rows, range.clone()))?;
        ws.blocks(self, range, x, threads, sink)
    }

    fn map_rows(&self, range: Range<usize>, x: &Matrix, in_width: usize, what: &str) -> Result<Matrix> {
        x.check_width(in_width, what, "the network")?;
        let last = range.end - 1;
        let width = self.layers[last].n_out;
        let mut out = Matrix::zeros(x.rows(), width)?;
        self.run_blocks(range, x, |first, r, ws| {
            out.as_mut_slice()[first * width..(first + r) * width].copy_from_slice(&ws.passed_on(last)[..r * width]);
        })?;
        Ok(out)
    }

    /// Codes of the rows of x (rows x code_dim).
    pub fn encode(&self, x: &Matrix) -> Result<Matrix> {
        self.map_rows(0..self.n_encoder, x, self.input_dim(), "input")
    }

    /// Outputs from codes (rows x output_dim: reconstructions, or a supervised network's raw
    /// outputs).
    pub fn decode(&self, codes: &Matrix) -> Result<Matrix> {
        self.map_rows(self.n_encoder..self.layers.len(), codes, self.code_dim(), "codes")
    }

    /// Reconstructions of the rows of x.
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        self.map_rows(0..self.layers.len(), x, self.input_dim(), "input")
    }

    /// Per-row mean reconstruction loss: the anomaly score.
    pub fn reconstruction_errors(&self, x: &Matrix) -> Result<Vec<f64>> {
        self.check_autoencoder("reconstruction errors")?;
        let mut out = vec![0f64; x.rows()];
        self.row_losses(x, None, |first, s| out[first..first + s.len()].copy_from_slice(s))?;
        Ok(out)
    }

    /// The per-row mean losses of the rows of x, block by block into `sink(first_row, losses)`:
    /// on the network's pool, or with `inside = Some(t)` on the current one with t workers.
    fn row_losses(&self, x: &Matrix, inside: Option<usize>, mut sink: impl FnMut(usize, &[f64]) + Send) -> Result<()> {
        x.check_width(self.input_dim(), "input", "the network")?;
        let n = self.layers.len();
        let cols = x.cols();
        let (loss, act) = (self.spec.loss, self.layers[n - 1].activation);
        loss.check_targets(x.as_slice(), cols, "input")?;
        let mut scores = Vec::new();
        let block = |first: usize, r: usize, ws: &Workspace| {
            scores.resize(r, 0.0);
            let t = &x.as_slice()[first * cols..(first + r) * cols];
            let (z, y) = (&ws.preactivation(n - 1)[..r * cols], &ws.output(n - 1)[..r * cols]);
            loss.row_means(act, z, y, t, cols, &mut scores);
            sink(first, &scores);
        };
        match inside {
            Some(threads) => self.run_blocks_in(0..n, x, threads, block),
            None => self.run_blocks(0..n, x, block),
        }
    }

    /// Mean loss per element over the rows of x (the training objective without penalties).
    pub fn loss(&self, x: &Matrix) -> Result<f64> {
        let e = self.reconstruction_errors(x)?;
        Ok(if e.is_empty() { 0.0 } else { e.iter().sum::<f64>() / e.len() as f64 })
    }

    /// Mean squared reconstruction error per element, whatever the training loss.
    pub fn mean_squared_error(&self, x: &Matrix) -> Result<f64> {
        self.check_autoencoder("the reconstruction error")?;
        x.check_width(self.input_dim(), "input", "the network")?;
        let n = self.layers.len();
        let cols = x.cols();
        let mut sum = 0f64;
        let softmax = self.spec.loss.softmax_output();
        let mut p = Vec::new();
        self.run_blocks(0..n, x, |first, r, ws| {
            let t = &x.as_slice()[first * cols..(first + r) * cols];
            let mut y = &ws.output(n - 1)[..r * cols];
            if softmax {
                // The reconstruction of a softmax loss is the softmax of the logits.
                p.clear();
                p.extend_from_slice(y);
                task::softmax_rows(&mut p, cols);
                y = &p;
            }
            sum += y.iter().zip(t).map(|(y, t)| ((y - t) as f64).powi(2)).sum::<f64>();
        })?;
        Ok(if x.rows() == 0 { 0.0 } else { sum / (x.rows() * cols) as f64 })
    }

    /// loss() on the current pool with `threads` workers (used inside training). A supervised
    /// network's rows carry their targets (see [`Task::training_matrix`]).
    pub(crate) fn loss_threads(&self, x: &Matrix, threads: usize) -> Result<f64> {
        let tw = self.spec.task.target_width();
        if tw > 0 {
            let cols = self.input_dim();
            if x.cols() != cols + tw {
                return Err(shape!(
                    "rows have {} columns, the network expects {cols} inputs and {tw} targets",
                    x.cols()
                ));
            }
            let (inputs, targets) = task::split_matrix(x, cols, tw)?;
            return Ok(self.score(&inputs, &targets, Some(threads))?.loss);
        }
        let mut sum = 0f64;
        self.row_losses(x, Some(threads), |_, s| sum += s.iter().sum::<f64>())?;
        Ok(if x.rows() == 0 { 0.0 } else { sum / x.rows() as f64 })
    }

    fn check_autoencoder(&self, what: &str) -> Result<()> {
        if self.spec.task.is_supervised() {
            return Err(invalid!(
                "{what} compares the output with the input; this is a {} network (use evaluate or predict)",
                self.spec.task.name()
            ));
        }
        Ok(())
    }

    pub fn task(&self) -> Task {
        self.spec.task
    }
    /// Width of the output layer (input_dim for an autoencoder).
    pub fn output_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].n_out
    }

    /// What the network outputs for the rows of x: reconstructions, class probabilities
    /// (softmax of the logits) or regression predictions (rows x output_dim). With a softmax
    /// loss (KL divergence, multi-class cross-entropy) the softmax of the output layer's logits.
    pub fn predict(&self, x: &Matrix) -> Result<Matrix> {
        let mut out = self.map_rows(0..self.layers.len(), x, self.input_dim(), "input")?;
        if let Task::Classify { classes } = self.spec.task {
            task::softmax_rows(out.as_mut_slice(), classes);
        } else if self.spec.loss.softmax_output() {
            let w = out.cols();
            task::softmax_rows(out.as_mut_slice(), w);
        }
        Ok(out)
    }

    /// The most probable class of each row of x (a classifier).
    pub fn classify(&self, x: &Matrix) -> Result<Vec<usize>> {
        let Task::Classify { classes } = self.spec.task else {
            return Err(invalid!("classify needs a classifier; this is a {} network", self.spec.task.name()));
        };
        let logits = self.map_rows(0..self.layers.len(), x, self.input_dim(), "input")?;
        Ok(task::argmax_rows(logits.as_slice(), classes))
    }

    /// The rows a trainer fits from a dataset: its inputs, then a supervised network's labels
    /// or targets.
    pub fn training_rows_of(&self, data: &crate::data::Dataset) -> Result<Matrix> {
        if data.cols() != self.input_dim() {
            return Err(shape!("the dataset has {} columns, the network expects {}", data.cols(), self.input_dim()));
        }
        self.spec.task.training_matrix(data, "the dataset")
    }

    /// Loss, accuracy and confusion matrix (classifier) or loss and MSE (regression) on a
    /// dataset with labels or targets.
    pub fn evaluate(&self, data: &crate::data::Dataset) -> Result<Evaluation> {
        if !self.spec.task.is_supervised() {
            return Err(task::not_supervised("evaluate"));
        }
        data.x().check_width(self.input_dim(), "input", "the network")?;
        let targets = self.spec.task.targets_of(data, "the dataset")?;
        self.score(data.x(), &targets, None)
    }

    /// Supervised scores of inputs against targets (rows x target_width); on the current pool
    /// with `threads` workers, or on the network's own.
    fn score(&self, x: &Matrix, targets: &[f32], threads: Option<usize>) -> Result<Evaluation> {
        let n = self.layers.len();
        let out_w = self.output_dim();
        let task = self.spec.task;
        let (loss, act) = (self.spec.loss, self.layers[n - 1].activation);
        let classes = if let Task::Classify { classes } = task { classes } else { 0 };
        let mut confusion = vec![0u64; classes * classes];
        let (mut loss_sum, mut sq_sum, mut correct) = (0f64, 0f64, 0usize);
        let mut dz = Vec::new();
        let mut sink = |first: usize, r: usize, ws: &Workspace| {
            let (z, y) = (&ws.preactivation(n - 1)[..r * out_w], &ws.output(n - 1)[..r * out_w]);
            dz.resize(r * out_w, 0.0);
            match task {
                Task::Classify { classes } => {
                    let labels = &targets[first..first + r];
                    loss_sum += task::softmax_cross_entropy(y, labels, classes, 1.0, &mut dz);
                    for (p, &l) in task::argmax_rows(y, classes).into_iter().zip(labels) {
                        confusion[l as usize * classes + p] += 1;
                        correct += (p == l as usize) as usize;
                    }
                }
                _ => {
                    let t = &targets[first * out_w..(first + r) * out_w];
                    loss_sum += loss.forward_backward(act, z, y, t, &mut dz, out_w, r * out_w);
                    sq_sum += y.iter().zip(t).map(|(y, t)| ((y - t) as f64).powi(2)).sum::<f64>();
                }
            }
        };
        match threads {
            Some(t) => self.run_blocks_in(0..n, x, t, &mut sink)?,
            None => self.run_blocks(0..n, x, &mut sink)?,
        }
        let rows = x.rows().max(1) as f64;
        Ok(match task {
            Task::Classify { .. } => {
                Evaluation { loss: loss_sum / rows, accuracy: correct as f64 / rows, confusion, mse: f64::NAN }
            }
            _ => Evaluation {
                loss: loss_sum / (rows * out_w as f64),
                accuracy: f64::NAN,
                confusion,
                mse: sq_sum / (rows * out_w as f64),
            },
        })
    }

    /// Per-row Frobenius norm of the encoder's Jacobian d(code)/d(input), exact: one backward
    /// pass per code unit, batched as (rows x code units) tangents through the encoder.
    pub fn encoder_jacobian_norms(&self, x: &Matrix) -> Result<Vec<f64>> {
        use crate::gemm::{Operand, gemm};
        if let Some((i, l)) = self.layers[..self.n_encoder].iter().enumerate().find(|(_, l)| !l.connection.is_dense()) {
            return Err(invalid!("Jacobian norms need dense encoder layers; layer {i} is {}", l.connection.name()));
        }
        x.check_width(self.input_dim(), "input", "the network")?;
        let code = self.code_dim();
        let widest = self.layers[..self.n_encoder].iter().map(|l| l.n_in.max(l.n_out)).max().unwrap_or(1);
        let block = ((1usize << 22) / (code * widest)).clamp(1, 256);
        let cols = x.cols();
        let mut out = vec![0f64; x.rows()];
        let mut ws = Workspace::for_inference(self, block, 0..self.n_encoder)?;
        let mut g = try_zeros(block * code * widest)?;
        let mut dx = try_zeros(block * code * widest)?;
        for first in (0..x.rows()).step_by(block) {
            let r = block.min(x.rows() - first);
            self.forward_layers(0..self.n_encoder, &x.as_slice()[first * cols..(first + r) * cols], r, &mut ws, 1)?;
            let t = r * code;
            // Tangent (b, j) starts as e_j scaled by the code layer's f'(z_bj).
            let c = self.n_encoder - 1;
            let act = self.layers[c].activation;
            g[..t * code].fill(0.0);
            for b in 0..r {
                for j in 0..code {
                    let k = b * code + j;
                    g[(b * code + j) * code + j] = act.derivative(ws.preactivation(c)[k], ws.output(c)[k]);
                }
            }
            for i in (0..self.n_encoder).rev() {
                let l = &self.layers[i];
                let w = &self.params[l.w..l.w + l.n_in * l.n_out];
                gemm(
                    t,
                    l.n_in,
                    l.n_out,
                    1.0,
                    Operand::n(&g[..t * l.n_out], l.n_out),
                    Operand::t(w, l.n_out),
                    0.0,
                    &mut dx[..t * l.n_in],
                    l.n_in,
                    1,
                );
                if i > 0 {
                    let below = &self.layers[i - 1];
                    for (k, row) in dx[..t * l.n_in].chunks_exact(l.n_in).enumerate() {
                        let b = k / code;
                        let (z, y) = (
                            &ws.preactivation(i - 1)[b * l.n_in..(b + 1) * l.n_in],
                            &ws.output(i - 1)[b * l.n_in..(b + 1) * l.n_in],
                        );
                        for (((o, &d), &z), &y) in g[k * l.n_in..(k + 1) * l.n_in].iter_mut().zip(row).zip(z).zip(y) {
                            *o = d * below.activation.derivative(z, y);
                        }
                    }
                } else {
                    for (k, row) in dx[..t * l.n_in].chunks_exact(l.n_in).enumerate() {
                        out[first + k / code] += row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
                    }
                }
            }
        }
        out.iter_mut().for_each(|v| *v = v.sqrt());
        Ok(out)
    }

    /// A human-readable summary.
    pub fn describe(&self) -> String {
        let s = &self.spec;
        let mut out = String::new();
        let mut widths = vec![s.input_dim.to_string()];
        for (i, l) in self.layers.iter().enumerate() {
            widths.push(if i + 1 == self.n_encoder { format!("[{}]", l.n_out) } else { l.n_out.to_string() });
        }
        let _ = writeln!(out, "latent autoencoder {}", widths.join(" -> "));
        for (i, l) in self.layers.iter().enumerate() {
            let role = if i + 1 < self.n_encoder {
                "encoder"
            } else if i + 1 == self.n_encoder {
                "code"
            } else if i + 1 < self.layers.len() {
                "decoder"
            } else {
                "output"
            };
            let tied =
                if l.tied { format!(" (weights tied to layer {})", 2 * self.n_encoder - 1 - i) } else { String::new() };
            let tied = match l.stochastic {
                Stochastic::None => tied,
                Stochastic::Bernoulli => format!("{tied}, binary stochastic"),
                Stochastic::Gaussian { sigma } => format!("{tied}, gaussian noise sigma {sigma}"),
            };
            let _ = writeln!(
                out,
                "  {i:>2} {role:<8} {} {:>6} -> {:<6} {:<10} {:>10} params{tied}",
                l.connection.name(),
                l.n_in,
                l.n_out,
                l.activation.name(),
                l.own_params()
            );
        }
        let from_logits = if s.loss == Loss::BinaryCrossEntropy {
            " (from logits)"
        } else if s.loss.softmax_output() {
            " (softmax of the output logits)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  loss {}{from_logits}, init {}, seed {}, {} parameters",
            s.loss.name(),
            s.init.name(),
            s.seed,
            self.params.len()
        );
        let r = &s.regularization;
        if !r.is_none() {
            let mut parts = Vec::new();
            match r.sparsity {
                Sparsity::None => {}
                sp => {
                    let (rho, w) = sp.parts();
                    let what = match sp {
                        Sparsity::Kl { .. } => format!("KL sparsity rho {rho} beta {w}"),
                        _ => format!("L1 activity {w}"),
                    };
                    let layers: Vec<usize> = r
                        .sparse_mask(self.n_encoder - 1, self.layers.len() - 1)
                        .iter()
                        .enumerate()
                        .filter(|(_, on)| **on)
                        .map(|(i, _)| i)
                        .collect();
                    let alt = if matches!(r.sparse_layers, regularizer::SparseLayers::Alternate { .. }) {
                        "alternate "
                    } else {
                        ""
                    };
                    parts.push(format!("{what} on {alt}hidden layers {layers:?}"));
                }
            }
            if r.contractive > 0.0 {
                let exact = if r.contractive_exact { " (exact, whole encoder)" } else { "" };
                parts.push(format!("contractive {}{exact}", r.contractive));
            }
            if !r.corruption.is_none() {
                parts.push(format!("{} corruption {}", r.corruption.name(), r.corruption.level()));
            }
            if r.code_noise > 0.0 {
                parts.push(format!("code noise sigma {}", r.code_noise));
            }
            let _ = writeln!(out, "  regularization: {}", parts.join("; "));
        }
        out
    }

    /// Runs the whole network over the rows of x in blocks, calling `sink(first_row, rows, ws)`
    /// after each: one streaming pass for metrics that need several layers' outputs at once.
    pub(crate) fn forward_blocks(&self, x: &Matrix, sink: impl FnMut(usize, usize, &Workspace) + Send) -> Result<()> {
        self.forward_blocks_through(0..self.layers.len(), x, sink)
    }

    /// forward_blocks() through layers `range` only (starting at the input layer).
    pub(crate) fn forward_blocks_through(
        &self,
        range: Range<usize>,
        x: &Matrix,
        sink: impl FnMut(usize, usize, &Workspace) + Send,
    ) -> Result<()> {
        x.check_width(self.input_dim(), "input", "the network")?;
        self.run_blocks(range, x, sink)
    }
}
