//! A network resident on a device: its parameters, gradients, optimizer state and one pass's
//! buffers live there, and every layer runs through the [`Backend`] primitives. The forward and
//! backward follow [`crate::Network::step`] step for step (same layers, losses and penalties),
//! so the Cpu backend reproduces the CPU network within rounding; only the noise differs (Philox
//! draws on the device, xoshiro on the CPU).

#![forbid(unsafe_code)]

use super::cpu::Cpu;
use super::dense::column_sums;
use super::minibatch::Minibatch;
use super::ops::{Backend, LossArgs, Op, Slot};
use super::resident::Resident;
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
    res: Resident<B, Network>,
    pass: Pass<B>,
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
        let pass = Pass::new(&backend, &net, rows)?;
        let n_encoder = net.n_encoder_layers();
        let sparse = net.spec().regularization.sparse_mask(n_encoder - 1, net.layers().len() - 1);
        let res = Resident::new(backend, net)?;
        Ok(DeviceNetwork { res, pass, n_encoder, feature_range: None, sparse, shards: None })
    }

    pub fn backend(&self) -> &B {
        &self.res.backend
    }

    /// The backend, to change its settings (TF32 on a GPU).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.res.backend
    }

    /// The network with the device's current parameters (copied back when they changed).
    pub fn network(&mut self) -> Result<&Network> {
        self.sync()?;
        Ok(&self.res.host)
    }

    /// The host network, possibly behind the device (see [`DeviceNetwork::network`]).
    pub fn network_unsynced(&self) -> &Network {
        &self.res.host
    }

    /// Copies the device's parameters to the host network when they changed.
    pub fn sync(&mut self) -> Result<()> {
        self.res.sync()
    }

    /// Replaces the parameters on both sides.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        self.res.set_params(p)
    }

    /// Takes the network back (synced).
    pub fn into_network(mut self) -> Result<Network> {
        self.sync()?;
        Ok(self.res.host)
    }

    pub fn param_count(&self) -> usize {
        self.res.host.param_count()
    }

    /// Width of a training row (inputs, then targets for a supervised network).
    pub fn data_width(&self) -> usize {
        self.res.host.input_dim() + self.res.host.task().target_width()
    }

    /// The gradient of the last step (a copy on the host).
    pub fn gradients(&self) -> Result<Vec<f32>> {
        self.res.gradients()
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
        self.res.backend.reset_slots()?;
        self.step(rows, Minibatch::Loaded, None, None, Slot::Loss, 0)?;
        let s = self.res.backend.read_slots()?;
        Ok((s[Slot::Loss as usize] / rows as f64, s[Slot::Penalty as usize] / rows as f64))
    }

    /// Sets the per-feature range salt-and-pepper corruption draws its values from.
    pub(crate) fn set_feature_range(&mut self, lo: &[f32], hi: &[f32]) -> Result<()> {
        let mut l = self.res.backend.alloc(lo.len())?;
        let mut h = self.res.backend.alloc(hi.len())?;
        self.res.backend.upload(lo, (&mut l, 0))?;
        self.res.backend.upload(hi, (&mut h, 0))?;
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
            self.pass = Pass::new(&self.res.backend, &self.res.host, rows)?;
        }
        if self.shards.as_ref().is_some_and(|sh| sh.fit(rows, |p| p.rows)) {
            return Ok(());
        }
        let work = if self.res.host.shardable() { rows } else { 0 };
        let net = &self.res.host;
        self.shards = Shards::make(&self.res.backend, rows, work, net.param_count(), |be, r| Pass::new(be, net, r))?;
        Ok(())
    }

    /// Uploads host rows into the minibatch buffer.
    pub(crate) fn load_rows(&mut self, x: &[f32]) -> Result<()> {
        self.res.backend.upload(x, (&mut self.pass.inputs.x, 0))
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
        let DeviceNetwork { res, pass, n_encoder, feature_range, sparse, shards } = self;
        let Resident { backend, host: net, params, grads, .. } = res;
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
        self.res.host.frozen = f;
    }

    /// The last layer's values (samples or outputs) of layers `range` over the rows of `x`.
    fn map_rows(&mut self, range: std::ops::Range<usize>, x: &Matrix, what: &str) -> Result<Matrix> {
        let layers = self.res.host.layers();
        let in_w = layers[range.start].n_in;
        if x.cols() != in_w {
            return Err(shape!("{what} has {} columns, the network expects {in_w}", x.cols()));
        }
        x.check_finite(what)?;
        let last = range.end - 1;
        let width = layers[last].n_out;
        let mut out = Matrix::zeros(x.rows(), width)?;
        let DeviceNetwork { res, pass, n_encoder, sparse, .. } = self;
        let Resident { backend: be, host: net, params, .. } = &*res;
        let ctx = Ctx { be, net, params, n_encoder: *n_encoder, sparse, feature_range: None };
        forward_blocks(ctx, pass, range, x, |first, r, p| {
            be.download((p.passed_on(last), 0), &mut out.as_mut_slice()[first * width..(first + r) * width])
        })?;
        Ok(out)
    }

    /// Codes of the rows of x, computed on the device.
    pub fn encode(&mut self, x: &Matrix) -> Result<Matrix> {
        self.map_rows(0..self.n_encoder, x, "input")
    }

    /// Outputs from codes.
    pub fn decode(&mut self, codes: &Matrix) -> Result<Matrix> {
        let n = self.res.host.layers().len();
        self.map_rows(self.n_encoder..n, codes, "codes")
    }

    /// The output layer's values for the rows of x: reconstructions, or a supervised network's
    /// raw outputs (a classifier's logits), as [`Network::reconstruct`].
    pub fn reconstruct(&mut self, x: &Matrix) -> Result<Matrix> {
        let n = self.res.host.layers().len();
        self.map_rows(0..n, x, "input")
    }

    /// What the network outputs, as [`Network::predict`]: reconstructions, class probabilities
    /// (the softmax of the logits, taken on the host) or regression predictions.
    pub fn predict(&mut self, x: &Matrix) -> Result<Matrix> {
        let mut out = self.reconstruct(x)?;
        if let Task::Classify { classes } = self.res.host.task() {
            crate::task::softmax_rows(out.as_mut_slice(), classes);
        } else if self.res.host.spec().loss.softmax_output() {
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
        self.pass.reset_memory(&self.res.backend, &self.res.host)?;
        let block = self.pass.rows;
        let mut total = 0f64;
        for first in (0..data.rows()).step_by(block) {
            let r = block.min(data.rows() - first);
            self.load_rows(&data.as_slice()[first * w..(first + r) * w])?;
            let before = self.res.backend.read_slots()?[Slot::Scratch as usize];
            // The forward and the loss only: no backward products for a score.
            let DeviceNetwork { res, pass, n_encoder, feature_range, sparse, .. } = self;
            let Resident { backend, host: net, params, grads, .. } = res;
            let ctx = Ctx {
                be: &*backend,
                net,
                params,
                n_encoder: *n_encoder,
                sparse,
                feature_range: feature_range.as_ref(),
            };
            ctx.step(pass, grads, r, None, None, Slot::Scratch, 0, false)?;
            total += self.res.backend.read_slots()?[Slot::Scratch as usize] - before;
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
    /// Runs layers `range` on the first-layer input of the pass, sampling stochastic layers when
    /// `noise` is given; a `train`ing forward also adds the code noise and keeps the memory
    /// layers' states for the backward.
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
                if train && i + 1 == self.n_encoder && code_noise > 0.0 {
                    let ids = ids.unwrap_or((&p.ids, 0));
                    be.run(Op::CodeNoise {
                        z: (&mut p.z[i], 0),
                        y: (&mut p.y[i], 0),
                        bias: (!be.z_has_bias(l)).then_some((self.params, l.b)),
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

/// Layers `range` of the context's network over the rows of `x` in blocks of the pass's rows,
/// handing each block to `sink(first_row, rows, pass)`: the inference loop of every backend.
/// The call's rows are one sequence (memory layers start afresh); a network with stochastic
/// inference on samples its stochastic layers, each element keyed by its row's place in the
/// call ([`Network::set_stochastic_inference`]).
fn forward_blocks<B: Backend, P: AsMut<Pass<B>>>(
    ctx: Ctx<'_, B>,
    pass: &mut P,
    range: std::ops::Range<usize>,
    x: &Matrix,
    mut sink: impl FnMut(usize, usize, &P) -> Result<()>,
) -> Result<()> {
    let (be, net) = (ctx.be, ctx.net);
    pass.as_mut().reset_memory(be, net)?;
    let (w, block) = (net.layers()[range.start].n_in, pass.as_mut().rows);
    let seed = net.stochastic_inference().filter(|_| net.has_stochastic_layers());
    let noise = seed.map(|seed| DeviceNoise { seed, ctr: 0 });
    for first in (0..x.rows()).step_by(block) {
        let (r, p) = (block.min(x.rows() - first), pass.as_mut());
        be.upload(&x.as_slice()[first * w..(first + r) * w], (&mut p.inputs.x, 0))?;
        ctx.forward(p, range.clone(), Input::X, r, noise, None, first, false)?;
        sink(first, r, pass)?;
    }
    Ok(())
}

impl AsMut<Pass<Cpu>> for Workspace {
    fn as_mut(&mut self) -> &mut Pass<Cpu> {
        &mut self.0
    }
}

impl<B: Backend> AsMut<Pass<B>> for Pass<B> {
    fn as_mut(&mut self) -> &mut Pass<B> {
        self
    }
}

impl<B: Backend> Pass<B> {
    /// What layer i passed on in the last forward: its samples if it drew any, else its output.
    fn passed_on(&self, i: usize) -> &B::Buf {
        if self.sampled[i] { &self.s[i] } else { &self.y[i] }
    }

    fn new(be: &B, net: &Network, rows: usize) -> Result<Pass<B>> {
        Self::sized(be, net, rows, None)
    }

    /// The buffers of a training step (`only` None), or of forward passes through layers `only`.
    fn sized(be: &B, net: &Network, rows: usize, only: Option<std::ops::Range<usize>>) -> Result<Pass<B>> {
        let rows = rows.max(1);
        // What only a training step uses (a pass for inference leaves it empty).
        let t = |n: usize| if only.is_none() { n } else { 0 };
        let cols = net.input_dim();
        let tw = net.task().target_width();
        let mut widest = cols;
        let (mut z, mut y, mut s, mut mem, mut hist) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, l) in net.layers().iter().enumerate() {
            let used = only.as_ref().is_none_or(|r| r.contains(&i));
            let n = if used { crate::tensor::checked_len(rows, l.n_out)? } else { 0 };
            z.push(be.alloc(n)?);
            y.push(be.alloc(n)?);
            s.push(be.alloc(if l.stochastic == Stochastic::None { t(1) } else { n })?);
            let m = l.memory();
            mem.push(be.alloc(m.as_ref().map_or(t(1), |m| m.state_len()))?);
            hist.push(be.alloc(t(m.map_or(1, |m| m.history_len(rows))))?);
            widest = widest.max(l.n_out);
        }
        let big = crate::tensor::checked_len(rows, widest)?;
        if big >= i32::MAX as usize {
            return Err(invalid!("a pass of {rows} rows x {widest} columns exceeds what one device kernel indexes"));
        }
        let mut ones = be.alloc(t(rows))?;
        be.run(Op::Fill { x: (&mut ones, 0), n: t(rows), v: 1.0 })?;
        Ok(Pass {
            rows,
            inputs: Inputs {
                // Inference may start at any layer (decoding codes wider than a row).
                x: be.alloc(rows * (cols + tw).max(widest))?,
                xin: be.alloc(t(if tw > 0 { rows * cols } else { 1 }))?,
                xc: be.alloc(t(rows * cols))?,
            },
            tgt: be.alloc(t((rows * tw).max(1)))?,
            sampled: vec![false; z.len()],
            z,
            y,
            s,
            d0: be.alloc(t(big))?,
            d1: be.alloc(t(big))?,
            el: be.alloc(t(big))?,
            col: [be.alloc(t(widest))?, be.alloc(t(widest))?, be.alloc(t(widest))?],
            ones,
            ids: be.alloc_ids(t(rows))?,
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

/// The buffers of one pass of a network over up to `rows` rows on the CPU
/// ([`Network::workspace`]): the `Cpu` backend's own pass, which [`Network::step`] and
/// [`Network::forward_layers`] run on with the network's parameters in place, and the step's
/// gradient buffer (kept from step to step).
pub struct Workspace(Pass<Cpu>, crate::backend::cpu::Lined);

impl crate::spare::Values for Workspace {
    fn values(&self) -> usize {
        let p = &self.0;
        let all = |v: &[crate::backend::cpu::Lined]| v.iter().map(|b| b.len()).sum::<usize>();
        [&p.inputs.x, &p.inputs.xin, &p.inputs.xc, &p.tgt, &p.d0, &p.d1, &p.el, &p.ones]
            .iter()
            .map(|b| b.len())
            .sum::<usize>()
            + all(&p.col)
            + all(&p.z)
            + all(&p.y)
            + all(&p.s)
            + all(&p.mem)
            + all(&p.hist)
            + self.1.len()
    }
}

impl Workspace {
    pub(crate) fn new(net: &Network, rows: usize) -> Result<Workspace> {
        Ok(Workspace(Pass::new(&Cpu::inline(), net, rows)?, Default::default()))
    }

    /// A workspace for forward passes through `layers` only (no training step's buffers).
    pub(crate) fn for_inference(net: &Network, rows: usize, layers: std::ops::Range<usize>) -> Result<Workspace> {
        Ok(Workspace(Pass::sized(&Cpu::inline(), net, rows, Some(layers))?, Default::default()))
    }

    /// Zeroes the state of the memory layers: the next row starts a new sequence.
    pub fn reset_memory(&mut self) {
        self.0.mem.iter_mut().for_each(|m| m.fill(0.0));
    }

    pub fn rows(&self) -> usize {
        self.0.rows
    }
    /// Output of layer i for the last forward pass (the mean of a stochastic layer).
    pub fn output(&self, i: usize) -> &[f32] {
        &self.0.y[i]
    }
    /// What layer i passed on in the last forward pass: its samples if it drew any, else its
    /// output.
    pub fn passed_on(&self, i: usize) -> &[f32] {
        self.0.passed_on(i)
    }
    /// Pre-activation of layer i for the last forward pass (the output's logits, for BCE); a
    /// dense identity or ReLU layer's lacks the bias ([`crate::Activation::z_has_bias`]).
    pub fn preactivation(&self, i: usize) -> &[f32] {
        &self.0.z[i]
    }

    /// Layers `range` of `net` over `rows` rows of `x` (the width of the range's first
    /// input), on the calling thread's pool with `threads` workers: the layer loop of a
    /// training step, without its noise (stochastic layers pass their means on).
    pub(crate) fn forward(
        &mut self,
        net: &Network,
        range: std::ops::Range<usize>,
        x: &[f32],
        rows: usize,
        threads: usize,
    ) -> Result<()> {
        let p = &mut self.0;
        if rows > p.rows {
            return Err(invalid!("{rows} rows in a workspace for {}", p.rows));
        }
        let k = rows * net.layers()[range.start].n_in;
        p.inputs.x[..k].copy_from_slice(&x[..k]);
        let be = Cpu::on_caller(threads);
        Ctx::host(&be, net, &[], None).forward(p, range, Input::X, rows, None, None, 0, false)
    }

    /// Layers `range` of `net` over the rows of `x` in blocks of this workspace's rows, on the
    /// calling thread's pool with `threads` workers, calling `sink(first_row, rows, self)` after
    /// each: the inference loop every backend runs.
    pub(crate) fn blocks(
        &mut self,
        net: &Network,
        range: std::ops::Range<usize>,
        x: &Matrix,
        threads: usize,
        mut sink: impl FnMut(usize, usize, &Workspace),
    ) -> Result<()> {
        let be = Cpu::on_caller(threads);
        forward_blocks(Ctx::host(&be, net, &[], None), self, range, x, |first, r, ws| {
            sink(first, r, ws);
            Ok(())
        })
    }

    /// [`Network::step`]: one training step of `net` over the host rows `x` on a `Cpu` backend
    /// of `threads` workers, the step a fit runs, with the parameters where they are: the
    /// gradient into `grads`, the pass (and the memory layers' states, where the sequence
    /// goes on) left here.
    pub(crate) fn step(
        &mut self,
        net: &Network,
        x: &[f32],
        rows: usize,
        grads: &mut [f32],
        threads: usize,
        noise: Option<crate::network::StepNoise>,
    ) -> Result<crate::network::StepLoss> {
        let be = Cpu::new(threads)?;
        let Workspace(p, g) = self;
        let width = net.input_dim() + net.task().target_width();
        if rows > p.rows {
            return Err(invalid!("{rows} rows in a workspace for {}", p.rows));
        }
        p.inputs.x[..rows * width].copy_from_slice(&x[..rows * width]);
        let range = match noise.and_then(|nz| nz.feature_range) {
            Some((lo, hi)) => {
                Some((crate::backend::cpu::Lined::from_slice(lo)?, crate::backend::cpu::Lined::from_slice(hi)?))
            }
            None => None,
        };
        let (dn, first, ids) = match noise {
            Some(nz) => {
                let ids: Vec<u32> = nz.row_ids.iter().map(|&i| i as u32).collect();
                (Some(DeviceNoise { seed: nz.draws.key, ctr: nz.draws.ctr }), nz.draws.first, ids)
            }
            None => (None, 0, (0..rows as u32).collect()),
        };
        be.upload_ids(&ids, &mut p.ids)?;
        // The gradient buffer stays with the workspace from step to step.
        if g.len() != net.param_count() {
            *g = be.alloc(net.param_count())?;
        }
        let n_encoder = net.n_encoder_layers();
        let sparse = net.spec().regularization.sparse_mask(n_encoder - 1, net.layers().len() - 1);
        Ctx::host(&be, net, &sparse, range.as_ref()).step(p, g, rows, dn, None, Slot::Loss, first, true)?;
        let s = be.read_slots()?;
        grads.copy_from_slice(&g[..grads.len()]);
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

impl<'a> Ctx<'a, Cpu> {
    /// A step's context on the CPU with the network's parameters in place (no copy).
    fn host(
        be: &'a Cpu,
        net: &'a Network,
        sparse: &'a [bool],
        feature_range: Option<&'a (crate::backend::cpu::Lined, crate::backend::cpu::Lined)>,
    ) -> Self {
        Ctx { be, net, params: net.param_vec(), n_encoder: net.n_encoder_layers(), sparse, feature_range }
    }
}

/// What the one loop (`Trainer::epochs_on`) needs of this model.
impl<B: Backend> super::train::sealed::Model for DeviceNetwork<B> {
    type Backend = B;
    type Host = Network;
    fn onto(backend: B, host: Network) -> Result<Self> {
        DeviceNetwork::new(backend, host)
    }
    fn into_host(self) -> Result<Network> {
        DeviceNetwork::into_network(self)
    }
    fn resident(&self) -> &Resident<B, Network> {
        &self.res
    }
    fn resident_mut(&mut self) -> &mut Resident<B, Network> {
        &mut self.res
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
    fn end_epoch(&mut self) {
        self.res.host.count_frozen_epoch();
    }
    fn start_epoch(&mut self) -> Result<()> {
        self.pass.reset_memory(&self.res.backend, &self.res.host)
    }
    fn loss(&mut self, data: &Matrix) -> Result<f64> {
        if self.res.backend.host_memory() {
            // The host network scores its rows in place (Network::loss's numbers): only
            // the parameters are copied.
            self.sync()?;
            return crate::Trainable::valid_score(&self.res.host, data, rayon::current_num_threads());
        }
        DeviceNetwork::loss(self, data)
    }
}
