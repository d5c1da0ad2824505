//! A network resident on a device: its parameters, gradients, optimizer state and one pass's
//! buffers live there, and every layer runs through the [`Backend`] primitives. The forward and
//! backward follow [`crate::Network::step`] step for step (same layers, losses and penalties),
//! so the Cpu backend reproduces the CPU network within rounding; only the noise differs (Philox
//! draws on the device, xoshiro on the CPU).

#![forbid(unsafe_code)]

use super::dense::column_sums;
use super::minibatch::Minibatch;
use super::ops::{Backend, LossArgs, Op, Slot};
use super::optimizer::{DeviceOptimizer, Update, optimizer_update};
use super::shards::{Shard, Shards};
use crate::activation::Activation;
use crate::error::{Error, Result, invalid, shape};
use crate::layer::{Connection, Stochastic};
use crate::network::Network;
use crate::regularizer::Sparsity;
use crate::task::Task;
use crate::tensor::Matrix;

/// Rows a pass's buffers hold when a network is put on a device (inference runs in blocks of
/// this many rows; training resizes them to its minibatch).
const BLOCK: usize = 1024;

/// The noise of one training step on the device: Philox key and counters, and where the
/// minibatch rows' ids are (code noise is fixed per training row).
#[derive(Clone, Copy, Debug)]
pub struct DeviceNoise {
    pub seed: u64,
    /// The step's counter: corruption draws `ctr << 8`, layer i's samples `ctr << 8 | i + 1`.
    pub ctr: u64,
}

/// The buffers of one pass for up to `rows` rows.
struct Pass<B: Backend> {
    rows: usize,
    /// What the first layer may read.
    inputs: Inputs<B>,
    /// Supervised: the targets.
    tgt: B::Buf,
    z: Vec<B::Buf>,
    y: Vec<B::Buf>,
    /// Samples of stochastic layers, and whether this pass drew them.
    s: Vec<B::Buf>,
    sampled: Vec<bool>,
    d0: B::Buf,
    d1: B::Buf,
    /// Element losses and penalty terms, then the contractive penalty's f'^2.
    el: B::Buf,
    /// Per-column scratch: KL means, the contractive penalty's S and sum f'^2, their product.
    col: [B::Buf; 3],
    /// A memory layer's recurrent state (carried from step to step, zeroed at each epoch's and
    /// each inference's start) and the states a training forward saves for the backward.
    mem: Vec<B::Buf>,
    hist: Vec<B::Buf>,
    ones: B::Buf,
    /// The row ids of the minibatch (code noise) when the caller does not pass them.
    ids: B::Ids,
}

/// The buffers that can feed the first layer.
struct Inputs<B: Backend> {
    /// The minibatch as the data holds it (inputs, then targets for a supervised network).
    x: B::Buf,
    /// Supervised: the inputs taken apart from the targets.
    xin: B::Buf,
    /// The corrupted inputs.
    xc: B::Buf,
}

impl<B: Backend> Inputs<B> {
    /// What layer `i` reads: `input` for the first layer of the pass (`first`), else what the
    /// layer below passed on (its samples when it drew them; its outputs `y[i - 1]` otherwise).
    fn of<'a>(
        &'a self,
        i: usize,
        first: usize,
        input: Input,
        y: &'a [B::Buf],
        s: &'a [B::Buf],
        sampled: &[bool],
    ) -> &'a B::Buf {
        if i == first {
            match input {
                Input::X => &self.x,
                Input::Xin => &self.xin,
                Input::Xc => &self.xc,
            }
        } else if sampled[i - 1] {
            &s[i - 1]
        } else {
            &y[i - 1]
        }
    }
}

/// Which buffer feeds the first layer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    X,
    Xin,
    Xc,
}

pub struct DeviceNetwork<B: Backend> {
    backend: B,
    net: Network,
    params: B::Buf,
    grads: B::Buf,
    pass: Pass<B>,
    opt: Option<DeviceOptimizer<B>>,
    /// The device's parameters are newer than `net`'s.
    host_stale: bool,
    n_encoder: usize,
    /// Per-feature (min, max) of the training rows, for salt-and-pepper corruption.
    feature_range: Option<(B::Buf, B::Buf)>,
    /// Which hidden layers carry the sparsity penalty.
    sparse: Vec<bool>,
    /// A training step's data-parallel shards, where the backend makes them.
    shards: Option<Shards<B, Pass<B>>>,
}

/// Why a network cannot run on a device backend (None: it can).
/// Layers are asked of the backend itself ([`Backend::runs`]): a GPU runs no memory layer, the
/// CPU runs every layer.
pub fn unsupported_reason<B: Backend>(be: &B, net: &Network) -> Option<String> {
    let r = &net.spec().regularization;
    if r.contractive_exact && r.contractive > 0.0 && !be.runs_exact_contraction() {
        return Some(super::ops::no_exact_contraction().to_string());
    }
    net.layers().iter().enumerate().find(|(_, l)| !be.runs(l)).map(|(i, l)| {
        let what = if l.memory().is_some() { "a memory layer: its state runs row after row" } else { "a layer" };
        format!("layer {i} is {what}, which this backend does not run (the CPU runs it): keep the network on the CPU")
    })
}

impl<B: Backend> DeviceNetwork<B> {
    /// Copies `net` onto the backend's device.
    pub fn new(backend: B, net: Network) -> Result<DeviceNetwork<B>> {
        Self::with_rows(backend, net, BLOCK)
    }

    /// [`DeviceNetwork::new`] with a pass of `rows` rows.
    fn with_rows(backend: B, net: Network, rows: usize) -> Result<DeviceNetwork<B>> {
        if let Some(why) = unsupported_reason(&backend, &net) {
            return Err(Error::Unsupported(why));
        }
        let n = net.param_count();
        if n >= i32::MAX as usize {
            return Err(invalid!("{n} parameters exceed what one device kernel indexes (2^31)"));
        }
        let mut params = backend.alloc(n)?;
        backend.upload(net.params(), (&mut params, 0))?;
        let grads = backend.alloc(n)?;
        let pass = Pass::new(&backend, &net, rows)?;
        let n_encoder = net.n_encoder_layers();
        let sparse = net.spec().regularization.sparse_mask(n_encoder - 1, net.layers().len() - 1);
        Ok(DeviceNetwork {
            backend,
            net,
            params,
            grads,
            pass,
            opt: None,
            host_stale: false,
            n_encoder,
            feature_range: None,
            sparse,
            shards: None,
        })
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, to change its settings (TF32 on a GPU).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The network with the device's current parameters (copied back when they changed).
    pub fn network(&mut self) -> Result<&Network> {
        self.sync()?;
        Ok(&self.net)
    }

    /// The host network, possibly behind the device (see [`DeviceNetwork::network`]).
    pub fn network_unsynced(&self) -> &Network {
        &self.net
    }

    /// Copies the device's parameters to the host network when they changed.
    pub fn sync(&mut self) -> Result<()> {
        if self.host_stale {
            let mut p = vec![0f32; self.net.param_count()];
            self.backend.download((&self.params, 0), &mut p)?;
            self.net.set_params(&p)?;
            self.host_stale = false;
        }
        Ok(())
    }

    /// Replaces the parameters on both sides.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        self.net.set_params(p)?;
        self.backend.upload(p, (&mut self.params, 0))?;
        self.host_stale = false;
        Ok(())
    }

    /// Takes the network back (synced).
    pub fn into_network(mut self) -> Result<Network> {
        self.sync()?;
        Ok(self.net)
    }

    pub fn param_count(&self) -> usize {
        self.net.param_count()
    }

    /// Width of a training row (inputs, then targets for a supervised network).
    pub fn data_width(&self) -> usize {
        self.net.input_dim() + self.net.task().target_width()
    }

    /// The gradient of the last step (a copy on the host).
    pub fn gradients(&self) -> Result<Vec<f32>> {
        let mut g = vec![0f32; self.net.param_count()];
        self.backend.download((&self.grads, 0), &mut g)?;
        Ok(g)
    }

    /// One forward and backward over the rows of `x` (laid out as training rows) without noise
    /// or an update: (mean loss, penalty) as a fit reports them,
    /// the gradient left in [`DeviceNetwork::gradients`].
    pub fn forward_backward(&mut self, x: &Matrix) -> Result<(f64, f64)> {
        let w = self.data_width();
        if x.cols() != w {
            return Err(shape!("rows have {} columns, the network expects {w}", x.cols()));
        }
        x.check_finite("rows")?;
        let rows = x.rows();
        if rows == 0 {
            return Err(invalid!("no rows"));
        }
        self.reserve(rows)?;
        self.load_rows(x.as_slice())?;
        self.backend.reset_slots()?;
        self.step(rows, Minibatch::Loaded, None, None, Slot::Loss, 0)?;
        let s = self.backend.read_slots()?;
        Ok((s[Slot::Loss as usize] / rows as f64, s[Slot::Penalty as usize] / rows as f64))
    }

    /// Sets the per-feature range salt-and-pepper corruption draws its values from.
    pub(crate) fn set_feature_range(&mut self, lo: &[f32], hi: &[f32]) -> Result<()> {
        let mut l = self.backend.alloc(lo.len())?;
        let mut h = self.backend.alloc(hi.len())?;
        self.backend.upload(lo, (&mut l, 0))?;
        self.backend.upload(hi, (&mut h, 0))?;
        self.feature_range = Some((l, h));
        Ok(())
    }

    /// Resizes the pass buffers to hold `rows` rows.
    /// Resizes the pass buffers to hold `rows` rows, and makes the shards of a step of that many
    /// rows where the backend runs shards (`parallel::shard_count`: one per thread, at least
    /// `parallel::MIN_SHARD_ROWS` rows each) and
    /// the network's objective is a mean over rows.
    pub(crate) fn reserve(&mut self, rows: usize) -> Result<()> {
        if self.pass.rows < rows {
            self.pass = Pass::new(&self.backend, &self.net, rows)?;
        }
        if self.shards.as_ref().is_some_and(|sh| sh.fit(rows, |p| p.rows)) {
            return Ok(());
        }
        let work = if self.net.shardable() { rows } else { 0 };
        let net = &self.net;
        self.shards = Shards::make(&self.backend, rows, work, net.param_count(), |be, r| Pass::new(be, net, r))?;
        Ok(())
    }

    /// Uploads host rows into the minibatch buffer.
    pub(crate) fn load_rows(&mut self, x: &[f32]) -> Result<()> {
        self.backend.upload(x, (&mut self.pass.inputs.x, 0))
    }

    /// One training step's forward and backward over the `rows` rows in the minibatch buffer:
    /// gradients of mean loss + penalties into the gradient buffer, the step's mean loss times
    /// rows added to `loss_slot` and its penalty times rows to the penalty slot (what the
    /// trainer's epoch means are made of). On a backend that makes shards (the CPU) and a
    /// network whose objective is a mean over rows, the rows are cut into one shard per thread,
    /// each run on its own one-thread backend, and the shard gradients combined by their rows.
    pub(crate) fn step(
        &mut self,
        rows: usize,
        mb: Minibatch<'_, B>,
        noise: Option<DeviceNoise>,
        ids: Option<(&B::Ids, usize)>,
        loss_slot: Slot,
        at: usize,
    ) -> Result<()> {
        let DeviceNetwork { backend, net, params, grads, pass, n_encoder, feature_range, sparse, shards, .. } = self;
        let ctx =
            Ctx { be: &*backend, net, params, n_encoder: *n_encoder, sparse, feature_range: feature_range.as_ref() };
        let width = net.input_dim() + net.task().target_width();
        let Some(sh) = shards.as_mut().filter(|sh| sh.worth(rows)) else {
            mb.load(backend, (0, rows), width, None, &mut pass.inputs.x)?;
            return ctx.step(pass, grads, rows, noise, ids, loss_slot, at, true);
        };
        let (x, ids) = (&pass.inputs.x, ids.unwrap_or((&pass.ids, 0)));
        let load = |part: &mut Shard<B, Pass<B>>, a: usize, b: usize| {
            mb.load(backend, (a, b), width, Some(x), &mut part.pass.inputs.x)
        };
        let step = |part: &mut Shard<B, Pass<B>>, a: usize, b: usize| {
            let ctx = Ctx { be: &part.be, ..ctx };
            ctx.step(&mut part.pass, &mut part.grads, b - a, noise, Some((ids.0, ids.1 + a)), loss_slot, at + a, true)
        };
        sh.step(backend, rows, grads, net.param_count(), load, step)
    }

    /// Sets the host copy's freeze (the layers a fit leaves as they are).
    pub(crate) fn set_freeze(&mut self, f: Option<crate::transfer::Freeze>) {
        self.net.frozen = f;
    }

    /// Runs layers `range` over the rows of `x` in blocks, handing each block's output (the
    /// last layer's samples or outputs) to `sink(first_row, rows, values)`.
    fn map_rows(&mut self, range: std::ops::Range<usize>, x: &Matrix, what: &str) -> Result<Matrix> {
        let layers = self.net.layers();
        let in_w = layers[range.start].n_in;
        if x.cols() != in_w {
            return Err(shape!("{what} has {} columns, the network expects {in_w}", x.cols()));
        }
        x.check_finite(what)?;
        let last = range.end - 1;
        let width = layers[last].n_out;
        let mut out = Matrix::zeros(x.rows(), width)?;
        let block = self.pass.rows;
        // Each call's rows are a sequence of their own, as on the CPU.
        self.pass.reset_memory(&self.backend, &self.net)?;
        let mut first = 0;
        while first < x.rows() {
            let r = block.min(x.rows() - first);
            self.backend.upload(&x.as_slice()[first * in_w..(first + r) * in_w], (&mut self.pass.inputs.x, 0))?;
            let ctx = Ctx {
                be: &self.backend,
                net: &self.net,
                params: &self.params,
                n_encoder: self.n_encoder,
                sparse: &self.sparse,
                feature_range: None,
            };
            ctx.forward(&mut self.pass, range.clone(), Input::X, r, None, None, 0, false)?;
            self.backend
                .download((&self.pass.y[last], 0), &mut out.as_mut_slice()[first * width..(first + r) * width])?;
            first += r;
        }
        Ok(out)
    }

    /// Codes of the rows of x, computed on the device.
    pub fn encode(&mut self, x: &Matrix) -> Result<Matrix> {
        self.map_rows(0..self.n_encoder, x, "input")
    }

    /// Outputs from codes.
    pub fn decode(&mut self, codes: &Matrix) -> Result<Matrix> {
        let n = self.net.layers().len();
        self.map_rows(self.n_encoder..n, codes, "codes")
    }

    /// The output layer's values for the rows of x: reconstructions, or a supervised network's
    /// raw outputs (a classifier's logits), as [`Network::reconstruct`].
    pub fn reconstruct(&mut self, x: &Matrix) -> Result<Matrix> {
        let n = self.net.layers().len();
        self.map_rows(0..n, x, "input")
    }

    /// What the network outputs, as [`Network::predict`]: reconstructions, class probabilities
    /// (the softmax of the logits, taken on the host) or regression predictions.
    pub fn predict(&mut self, x: &Matrix) -> Result<Matrix> {
        let mut out = self.reconstruct(x)?;
        if let Task::Classify { classes } = self.net.task() {
            crate::task::softmax_rows(out.as_mut_slice(), classes);
        } else if self.net.spec().loss.softmax_output() {
            let w = out.cols();
            crate::task::softmax_rows(out.as_mut_slice(), w);
        }
        Ok(out)
    }

    /// Mean training loss (without noise or penalties) over rows laid out as the training data
    /// is (inputs, then targets for a supervised network): the validation score.
    pub fn loss(&mut self, data: &Matrix) -> Result<f64> {
        let w = self.data_width();
        if data.cols() != w {
            return Err(shape!("rows have {} columns, the network expects {w}", data.cols()));
        }
        data.check_finite("rows")?;
        // The rows are a sequence of their own (the CPU scores them in a fresh workspace).
        self.pass.reset_memory(&self.backend, &self.net)?;
        let mut first = 0;
        let block = self.pass.rows;
        let mut total = 0f64;
        while first < data.rows() {
            let r = block.min(data.rows() - first);
            self.load_rows(&data.as_slice()[first * w..(first + r) * w])?;
            let before = self.backend.read_slots()?[Slot::Scratch as usize];
            // The forward and the loss only: no backward products for a score.
            let DeviceNetwork { backend, net, params, grads, pass, n_encoder, feature_range, sparse, .. } = self;
            let ctx = Ctx {
                be: &*backend,
                net,
                params,
                n_encoder: *n_encoder,
                sparse,
                feature_range: feature_range.as_ref(),
            };
            ctx.step(pass, grads, r, None, None, Slot::Scratch, 0, false)?;
            total += self.backend.read_slots()?[Slot::Scratch as usize] - before;
            first += r;
        }
        Ok(if data.rows() == 0 { 0.0 } else { total / data.rows() as f64 })
    }
}

/// What one step reads: the backend it runs on, the network and its parameters there.
struct Ctx<'a, B: Backend> {
    be: &'a B,
    net: &'a Network,
    params: &'a B::Buf,
    n_encoder: usize,
    sparse: &'a [bool],
    feature_range: Option<&'a (B::Buf, B::Buf)>,
}

impl<B: Backend> Clone for Ctx<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend> Copy for Ctx<'_, B> {}

impl<B: Backend> Ctx<'_, B> {
    /// Runs layers `range` on the first-layer input of the pass, sampling stochastic layers and
    /// adding code noise when `noise` is given (a training step).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        p: &mut Pass<B>,
        range: std::ops::Range<usize>,
        input: Input,
        rows: usize,
        noise: Option<DeviceNoise>,
        ids: Option<(&B::Ids, usize)>,
        first: usize,
        train: bool,
    ) -> Result<()> {
        let be = self.be;
        let code_noise = self.net.spec().regularization.code_noise;
        let layers = self.net.layers();
        for i in range.clone() {
            let l = &layers[i];
            let (below, rest) = p.y.split_at_mut(i);
            let y = &mut rest[0];
            let inp = p.inputs.of(i, range.start, input, below, &p.s, &p.sampled);
            if l.memory().is_some() {
                // A training forward keeps the states for the backward.
                let hist = train.then_some(&mut p.hist[i]);
                be.memory_forward(l, self.params, inp, &mut p.z[i], y, rows, &mut p.mem[i], hist)?;
            } else {
                be.layer_forward(l, self.params, inp, &mut p.z[i], y, rows)?;
            }
            p.sampled[i] = false;
            if let Some(nz) = noise {
                if i + 1 == self.n_encoder && code_noise > 0.0 {
                    let ids = ids.unwrap_or((&p.ids, 0));
                    be.run(Op::CodeNoise {
                        z: (&mut p.z[i], 0),
                        y: (&mut p.y[i], 0),
                        ids,
                        rows,
                        cols: l.n_out,
                        act: l.activation,
                        sigma: code_noise,
                        seed: nz.seed ^ 0xC0DE,
                    })?;
                }
                if !l.stochastic.is_none() {
                    be.run(Op::Sample {
                        y: (&p.y[i], 0),
                        s: (&mut p.s[i], 0),
                        n: rows * l.n_out,
                        kind: l.stochastic,
                        seed: nz.seed,
                        ctr: nz.ctr << 8 | (i as u64 + 1),
                        first: first * l.n_out,
                    })?;
                    p.sampled[i] = true;
                }
            }
        }
        Ok(())
    }

    /// One training step's forward and backward over the `rows` rows in the minibatch buffer:
    /// gradients of mean loss + penalties into the gradient buffer, the step's mean loss times
    /// rows added to `loss_slot` and its penalty times rows to the penalty slot (what the
    /// trainer's epoch means are made of).
    /// `first`: where these rows start in the whole minibatch (a shard's; their draws are the
    /// whole minibatch's). Without `backward`, the forward and the loss only (a score: no
    /// penalties, no gradient).
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        p: &mut Pass<B>,
        grads: &mut B::Buf,
        rows: usize,
        noise: Option<DeviceNoise>,
        ids: Option<(&B::Ids, usize)>,
        loss_slot: Slot,
        first: usize,
        backward: bool,
    ) -> Result<()> {
        let (task, loss, cols, corruption) = {
            let spec = self.net.spec();
            (spec.task, spec.loss, spec.input_dim, spec.regularization.corruption)
        };
        let tw = task.target_width();
        let n = self.net.layers().len();
        let be = self.be;
        let mut input = Input::X;
        if tw > 0 {
            let inp = &mut p.inputs;
            be.run(Op::SplitRows { src: (&inp.x, 0), x: (&mut inp.xin, 0), t: (&mut p.tgt, 0), rows, cols, tw })?;
            input = Input::Xin;
        }
        if let Some(nz) = noise
            && !corruption.is_none()
        {
            let inp = &mut p.inputs;
            let src = if input == Input::Xin { &inp.xin } else { &inp.x };
            be.run(Op::Corrupt {
                x: (src, 0),
                out: (&mut inp.xc, 0),
                range: self.feature_range.map(|(l, h)| ((l, 0), (h, 0))),
                rows,
                cols,
                corruption,
                seed: nz.seed,
                ctr: nz.ctr << 8,
                first: first * cols,
            })?;
            input = Input::Xc;
        }
        self.forward(p, 0..n, input, rows, noise, ids, first, backward)?;
        let layers = self.net.layers();
        let out = &layers[n - 1];
        let out_count = rows * out.n_out;
        match task {
            Task::Classify { classes } => {
                be.run(Op::SoftmaxCe {
                    logits: (&p.y[n - 1], 0),
                    labels: (&p.tgt, 0),
                    dz: (&mut p.d0, 0),
                    el: (&mut p.el, 0),
                    rows,
                    classes,
                    inv: 1.0 / rows as f32,
                })?;
                be.run(Op::Sum { x: (&p.el, 0), n: rows, slot: loss_slot, scale: 1.0 })?;
            }
            _ => {
                // The clean inputs (never the corrupted ones), or the targets.
                let t = if tw > 0 { &p.tgt } else { &p.inputs.x };
                if loss.is_elementwise() {
                    // A loss summed over the columns weighs each element as a whole row's mean does.
                    let w = if loss.sums_columns() { out.n_out } else { 1 };
                    be.loss_sum(LossArgs {
                        z: (&p.z[n - 1], 0),
                        y: (&p.y[n - 1], 0),
                        t: (t, 0),
                        dz: (&mut p.d0, 0),
                        el: (&mut p.el, 0),
                        n: out_count,
                        cols: out.n_out,
                        loss,
                        act: out.activation,
                        inv: w as f32 / out_count as f32,
                        slot: loss_slot,
                        scale: w as f64 / out.n_out as f64,
                    })?;
                } else {
                    be.run(Op::LossRows {
                        z: (&p.z[n - 1], 0),
                        y: (&p.y[n - 1], 0),
                        t: (t, 0),
                        dz: (&mut p.d0, 0),
                        el: (&mut p.el, 0),
                        rows,
                        cols: out.n_out,
                        loss,
                        act: out.activation,
                        inv: 1.0 / rows as f32,
                    })?;
                    be.run(Op::Sum { x: (&p.el, 0), n: rows, slot: loss_slot, scale: 1.0 })?;
                }
            }
        }
        if !backward {
            return Ok(());
        }
        let reg = &self.net.spec().regularization;
        let sparse = self.sparse;
        let first_input = input;
        // The exact contractive penalty of the whole encoder (crate::contractive), computed once.
        let exact = if reg.contractive > 0.0 && reg.contractive_exact {
            let enc = &layers[..self.n_encoder];
            let (zs, ys): (Vec<&B::Buf>, Vec<&B::Buf>) =
                (p.z[..enc.len()].iter().collect(), p.y[..enc.len()].iter().collect());
            let c = be.exact_contraction(enc, self.params, &zs, &ys, rows, reg.contractive)?;
            // the step's penalty times its rows, as the slot keeps it
            be.add_slot(Slot::Penalty, c.value * rows as f64)?;
            Some(c)
        } else {
            None
        };
        for i in (0..n).rev() {
            let l = &layers[i];
            let act = l.activation;
            let dz_n = rows * l.n_out;
            // The contractive penalty of an encoder layer reaches its dz before the products.
            let contract = reg.contractive > 0.0 && !reg.contractive_exact && i < self.n_encoder;
            let exact = exact.as_ref().filter(|_| i < self.n_encoder);
            let scale = reg.contractive / rows as f32;
            if contract {
                let [s, fsq, prod] = &mut p.col;
                be.run(Op::ActGradSq { z: (&p.z[i], 0), y: (&p.y[i], 0), out: (&mut p.el, 0), n: dz_n, act })?;
                be.gemm(column_sums(1.0, rows, l.n_out), &p.ones, &p.el, fsq)?;
                be.run(Op::ColSqSums { w: (self.params, l.w), s: (s, 0), n_in: l.n_in, n_out: l.n_out })?;
                be.run(Op::Mul { a: (fsq, 0), b: (s, 0), out: (prod, 0), n: l.n_out })?;
                be.run(Op::Sum {
                    x: (prod, 0),
                    n: l.n_out,
                    slot: Slot::Penalty,
                    // the step's penalty (lambda/rows * sum) times its rows
                    scale: reg.contractive as f64,
                })?;
                if !matches!(act, Activation::Identity | Activation::Relu | Activation::LeakyRelu) {
                    be.run(Op::ContractiveDz {
                        dz: (&mut p.d0, 0),
                        z: (&p.z[i], 0),
                        y: (&p.y[i], 0),
                        s: (s, 0),
                        rows,
                        cols: l.n_out,
                        act,
                        scale,
                    })?;
                }
            }
            if let Some(c) = exact {
                be.run(Op::Add { x: (&c.dz[i], 0), y: (&mut p.d0, 0), n: dz_n })?;
            }
            let layer_in = p.inputs.of(i, 0, first_input, &p.y, &p.s, &p.sampled);
            let dx = (i > 0).then_some(&mut p.d1);
            // dL/dx leaves the product as the below layer's dL/dz unless a sparsity penalty
            // must join its dL/dy first.
            let below = (i > 0 && !sparse[i - 1]).then(|| (layers[i - 1].activation, &p.z[i - 1], &p.y[i - 1]));
            if l.memory().is_some() {
                be.memory_backward(l, self.params, grads, layer_in, &p.d0, &p.hist[i], dx, below, rows)?;
            } else {
                be.layer_backward(l, self.params, grads, layer_in, &p.d0, &p.ones, dx, below, rows)?;
            }
            if let Some(c) = exact {
                be.run(Op::Add { x: (&c.dw[i], 0), y: (&mut *grads, l.w), n: l.n_in * l.n_out })?;
            }
            if contract && l.connection == Connection::Dense {
                let [_, fsq, _] = &p.col;
                be.run(Op::ContractiveDw {
                    dw: (&mut *grads, l.w),
                    w: (self.params, l.w),
                    fsq: (fsq, 0),
                    n_in: l.n_in,
                    n_out: l.n_out,
                    scale,
                })?;
            }
            if i == 0 {
                break;
            }
            let b = &layers[i - 1];
            let below_n = rows * l.n_in;
            if sparse[i - 1] {
                match reg.sparsity {
                    Sparsity::Kl { rho, beta } => {
                        let [mean, el_cols, _] = &mut p.col;
                        be.gemm(column_sums(1.0 / rows as f32, rows, l.n_in), &p.ones, &p.y[i - 1], mean)?;
                        be.run(Op::KlValue { mean: (mean, 0), el: (el_cols, 0), cols: l.n_in, rho })?;
                        be.run(Op::Sum {
                            x: (el_cols, 0),
                            n: l.n_in,
                            slot: Slot::Penalty,
                            scale: beta as f64 * rows as f64,
                        })?;
                        be.run(Op::KlGrad { dy: (&mut p.d1, 0), mean: (mean, 0), rows, cols: l.n_in, rho, beta })?;
                    }
                    Sparsity::L1 { lambda } => {
                        be.run(Op::L1 {
                            dy: (&mut p.d1, 0),
                            y: (&p.y[i - 1], 0),
                            el: (&mut p.el, 0),
                            n: below_n,
                            g: lambda / rows as f32,
                        })?;
                        be.run(Op::Sum { x: (&p.el, 0), n: below_n, slot: Slot::Penalty, scale: lambda as f64 })?;
                    }
                    Sparsity::None => {}
                }
                be.run(Op::ActBackward {
                    d: (&mut p.d1, 0),
                    z: (&p.z[i - 1], 0),
                    y: (&p.y[i - 1], 0),
                    n: below_n,
                    act: b.activation,
                })?;
            }
            std::mem::swap(&mut p.d0, &mut p.d1);
        }
        Ok(())
    }
}

impl<B: Backend> Pass<B> {
    fn new(be: &B, net: &Network, rows: usize) -> Result<Pass<B>> {
        let rows = rows.max(1);
        let cols = net.input_dim();
        let tw = net.task().target_width();
        let mut widest = cols;
        let (mut z, mut y, mut s, mut mem, mut hist) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for l in net.layers() {
            let n = crate::tensor::checked_len(rows, l.n_out)?;
            z.push(be.alloc(n)?);
            y.push(be.alloc(n)?);
            s.push(be.alloc(if l.stochastic == Stochastic::None { 1 } else { n })?);
            let m = l.memory();
            mem.push(be.alloc(m.as_ref().map_or(1, |m| m.state_len()))?);
            hist.push(be.alloc(m.map_or(1, |m| m.history_len(rows)))?);
            widest = widest.max(l.n_out);
        }
        let big = crate::tensor::checked_len(rows, widest)?;
        if big >= i32::MAX as usize {
            return Err(invalid!("a pass of {rows} rows x {widest} columns exceeds what one device kernel indexes"));
        }
        let mut ones = be.alloc(rows)?;
        be.run(Op::Fill { x: (&mut ones, 0), n: rows, v: 1.0 })?;
        Ok(Pass {
            rows,
            inputs: Inputs {
                x: be.alloc(rows * (cols + tw))?,
                xin: be.alloc(if tw > 0 { rows * cols } else { 1 })?,
                xc: be.alloc(rows * cols)?,
            },
            tgt: be.alloc((rows * tw).max(1))?,
            sampled: vec![false; z.len()],
            z,
            y,
            s,
            d0: be.alloc(big)?,
            d1: be.alloc(big)?,
            el: be.alloc(big)?,
            col: [be.alloc(widest)?, be.alloc(widest)?, be.alloc(widest)?],
            ones,
            ids: be.alloc_ids(rows)?,
            mem,
            hist,
        })
    }

    /// Starts the memory layers' sequences afresh.
    fn reset_memory(&mut self, be: &B, net: &Network) -> Result<()> {
        for (m, l) in self.mem.iter_mut().zip(net.layers()) {
            if let Some(mm) = l.memory() {
                be.run(Op::Fill { x: (m, 0), n: mm.state_len(), v: 0.0 })?;
            }
        }
        Ok(())
    }
}

impl DeviceNetwork<super::Cpu> {
    /// [`Network::step`]: one training step of `net` on the CPU backend, the step a fit runs
    /// (one formula), over the host rows `x`, with a host workspace: the gradient into `grads`,
    /// the pass's pre-activations, outputs, samples and memory states into `ws` (its memory
    /// states are where the sequence starts).
    pub(crate) fn host_step(
        net: &Network,
        x: &[f32],
        rows: usize,
        ws: &mut crate::network::Workspace,
        grads: &mut [f32],
        threads: usize,
        noise: Option<crate::network::StepNoise>,
    ) -> Result<crate::network::StepLoss> {
        let mut dev = DeviceNetwork::with_rows(super::Cpu::new(threads)?, net.clone(), rows)?;
        if let Some((lo, hi)) = noise.and_then(|nz| nz.feature_range) {
            dev.set_feature_range(lo, hi)?;
        }
        let DeviceNetwork { backend, net, params, grads: g, pass, n_encoder, feature_range, sparse, .. } = &mut dev;
        let width = net.input_dim() + net.task().target_width();
        pass.inputs.x[..rows * width].copy_from_slice(&x[..rows * width]);
        for (m, w) in pass.mem.iter_mut().zip(ws.memory_states()) {
            m[..w.len()].copy_from_slice(w);
        }
        let (dn, first, ids) = match noise {
            Some(nz) => {
                let ids: Vec<u32> = nz.row_ids.iter().map(|&i| i as u32).collect();
                (Some(DeviceNoise { seed: nz.draws.key, ctr: nz.draws.ctr }), nz.draws.first, ids)
            }
            None => (None, 0, (0..rows as u32).collect()),
        };
        backend.upload_ids(&ids, &mut pass.ids)?;
        backend.reset_slots()?;
        let ctx =
            Ctx { be: &*backend, net, params, n_encoder: *n_encoder, sparse, feature_range: feature_range.as_ref() };
        ctx.step(pass, g, rows, dn, None, Slot::Loss, first, true)?;
        let s = backend.read_slots()?;
        grads.copy_from_slice(&g[..grads.len()]);
        for (i, l) in net.layers().iter().enumerate() {
            let k = rows * l.n_out;
            let samples = pass.sampled[i].then(|| &pass.s[i][..k]);
            ws.keep_pass(i, &pass.z[i][..k], &pass.y[i][..k], samples, &pass.mem[i]);
        }
        let per_row = match net.task() {
            Task::Classify { .. } => 1,
            _ => net.output_dim(),
        };
        Ok(crate::network::StepLoss {
            recon_sum: s[Slot::Loss as usize] * per_row as f64,
            penalty: s[Slot::Penalty as usize] / rows as f64,
        })
    }
}

/// What the one loop (`Trainer::epochs_on`) needs of this model.
impl<B: Backend> super::train::sealed::Model for DeviceNetwork<B> {
    type Backend = B;
    type Host = crate::network::Network;
    fn onto(backend: B, host: crate::network::Network) -> Result<Self> {
        DeviceNetwork::new(backend, host)
    }
    fn into_host(self) -> Result<crate::network::Network> {
        DeviceNetwork::into_network(self)
    }
    fn optimizer_state(&self) -> Option<&crate::optim::Optimizer<B::Buf>> {
        self.opt.as_ref().map(|o| o.state())
    }
    fn set_optimizer_state(&mut self, opt: Option<crate::optim::Optimizer<B::Buf>>) -> Result<()> {
        self.opt = opt.map(|o| DeviceOptimizer::from_state(&self.backend, o)).transpose()?;
        Ok(())
    }
    fn take_optimizer_state(&mut self) -> Option<crate::optim::Optimizer<B::Buf>> {
        self.opt.take().map(|o| o.into_state())
    }
    fn host_unsynced(&self) -> &crate::network::Network {
        self.network_unsynced()
    }
    fn backend(&self) -> &B {
        DeviceNetwork::backend(self)
    }
    fn param_count(&self) -> usize {
        DeviceNetwork::param_count(self)
    }
    fn reserve(&mut self, rows: usize) -> Result<()> {
        DeviceNetwork::reserve(self, rows)
    }
    fn set_feature_range(&mut self, lo: &[f32], hi: &[f32]) -> Result<()> {
        DeviceNetwork::set_feature_range(self, lo, hi)
    }
    fn step(
        &mut self,
        rows: usize,
        mb: Minibatch<'_, B>,
        noise: Option<DeviceNoise>,
        ids: Option<(&B::Ids, usize)>,
        slot: Slot,
        at: (usize, usize),
    ) -> Result<()> {
        DeviceNetwork::step(self, rows, mb, noise, ids, slot, at.0)
    }
    fn grads_buf(&self) -> &B::Buf {
        &self.grads
    }
    fn set_grads(&mut self, g: &[f32]) -> Result<()> {
        self.backend.upload(g, (&mut self.grads, 0))
    }
    fn update(&mut self, u: Update<'_>) -> Result<()> {
        let net = &self.net;
        let (n, weights) = (net.param_count(), || net.weight_ranges());
        optimizer_update(&self.backend, &mut self.opt, &mut self.params, &self.grads, n, weights, u)?;
        self.host_stale = true;
        Ok(())
    }
    fn end_epoch(&mut self) {
        self.net.count_frozen_epoch();
    }
    fn start_epoch(&mut self) -> Result<()> {
        self.pass.reset_memory(&self.backend, &self.net)
    }
    fn params_buf(&self) -> &B::Buf {
        &self.params
    }
    fn set_params(&mut self, p: &[f32]) -> Result<()> {
        DeviceNetwork::set_params(self, p)
    }
    fn restore_params(&mut self, src: &B::Buf) -> Result<()> {
        self.host_stale = true;
        let n = self.net.param_count();
        self.backend.copy((src, 0), (&mut self.params, 0), n)
    }
    fn reset_optimizer(&mut self) {
        self.opt = None;
    }
    fn loss(&mut self, data: &Matrix) -> Result<f64> {
        if self.backend().host_memory() {
            // The host network scores its rows in place (Network::loss's numbers): only
            // the parameters are copied.
            self.sync()?;
            return crate::Trainable::valid_score(self.network_unsynced(), data, rayon::current_num_threads());
        }
        DeviceNetwork::loss(self, data)
    }
    fn sync(&mut self) -> Result<()> {
        DeviceNetwork::sync(self)
    }
}
