//! The Monte-Carlo optimizer on a network's own loss: every parameter of a [`Network`] (and of
//! optional user links, non-linear parametric functions applied to a hidden layer's output or
//! to the network's output before the loss) is a coordinate of the optimizer, and the objective is the network's loss on a
//! minibatch of a dataset, a fresh minibatch per run (KernelML's `batch_size` and `runs`).
//!
//! This is KernelML's "autoencoder with non-linear parameters": the link is the layer whose
//! forward the user writes (for example KernelML's `field_eq`, h' = -0.5 a h + b h with a and
//! b kept positive by constraints), and nothing needs its gradient. Its notebook also puts a
//! link on the output side, out = a2 (h' W2^T + b2): a second link on the output layer
//! ([`NetworkObjective::extra_links`]).

use std::sync::{Arc, Mutex, RwLock};

use super::{LossFn, MonteCarlo};
use crate::data::Dataset;
use crate::error::{Result, invalid, shape};
use crate::network::{Network, Workspace};
use crate::rng::{Rng, stream};
use crate::task::{self, Task};
use crate::tensor::Matrix;

/// A user's link: `f(theta, values, rows, cols)` maps a hidden layer's output block (rows x
/// cols, row-major) in place, with its own parameters `theta`. Called from several threads at
/// once unless the optimizer runs on one.
pub type LinkFn = Arc<dyn Fn(&[f64], &mut [f32], usize, usize) + Send + Sync>;

#[derive(Clone)]
pub struct Link {
    /// The layer (0-based, forward order) whose output it maps: a hidden layer (what the next
    /// layer then reads), or the output layer (the last, index `layers - 1`): the network's
    /// output is mapped before the loss, which then reads the mapped values (no logits: an
    /// output link refuses binary cross-entropy and classifiers, whose losses read logits).
    pub layer: usize,
    /// Its parameters: the optimizer's last `params` coordinates.
    pub params: usize,
    pub f: LinkFn,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("layer", &self.layer).field("params", &self.params).finish()
    }
}

/// The most runs of one fit_network call (each is a whole search on a fresh minibatch).
pub const MAX_RUNS: usize = 1 << 20;

/// What a minibatch sampler is asked for: the rows of `run`'s iteration `iteration` (0 at the
/// run's start), out of `rows` rows, with a seed from the fit's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRequest {
    pub run: usize,
    pub iteration: usize,
    pub rows: usize,
    pub seed: u64,
}

/// A minibatch sampler (KernelML's `mini_batch_sampler`): fills `out` (the batch size) with row
/// indices below `rows` (repeats allowed). Called on the fitting thread; an error stops the fit
/// (`Error::Cancelled` to cancel).
pub type BatchSamplerFn = Arc<dyn Fn(&BatchRequest, &mut [usize]) -> Result<()> + Send + Sync>;

/// How a network is fitted by the Monte-Carlo optimizer.
#[derive(Clone, Default)]
pub struct NetworkObjective {
    /// Rows per minibatch, drawn without replacement (KernelML's mini-batch sampler); 0 or more
    /// than the data: every row.
    pub batch_size: usize,
    /// Runs, each on a fresh minibatch, each continuing from the best so far.
    pub runs: usize,
    /// Seed of the minibatch draws.
    pub seed: u64,
    pub link: Option<Link>,
    /// More links, each on a layer of its own (distinct from `link`'s and each other's); their
    /// parameters follow `link`'s, in this order (KernelML's notebook: `link` = field_eq on the
    /// code layer, one extra link a2 (y + b2) on the output layer).
    pub extra_links: Vec<Link>,
    /// Draws the minibatches instead of the seeded sampler without replacement.
    pub batch_sampler: Option<BatchSamplerFn>,
    /// A fresh minibatch every iteration (the best is re-evaluated on it), not only every run.
    pub batch_every_iteration: bool,
    /// The first run starts around the network's current parameters (and the link's prior
    /// means) instead of drawing from the priors (KernelML's way, the default).
    pub start_from_network: bool,
}

impl NetworkObjective {
    /// One run on every row from the priors, no link: the defaults with `runs` = 1.
    pub fn new() -> NetworkObjective {
        NetworkObjective { runs: 1, ..Default::default() }
    }
}

impl std::fmt::Debug for NetworkObjective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkObjective")
            .field("batch_size", &self.batch_size)
            .field("runs", &self.runs)
            .field("seed", &self.seed)
            .field("link", &self.link)
            .field("extra_links", &self.extra_links)
            .field("batch_sampler", &self.batch_sampler.is_some())
            .field("batch_every_iteration", &self.batch_every_iteration)
            .field("start_from_network", &self.start_from_network)
            .finish()
    }
}

/// What a fit reports.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkFit {
    /// The best minibatch loss at the end of each run.
    pub run_losses: Vec<f64>,
    /// The link's parameters (empty without a link).
    pub link_params: Vec<f64>,
    /// b / (n - b) for minibatches of b of n rows (the `variance_factor` of
    /// [`MonteCarlo::run_intervals`] for these runs); None when every run saw every row.
    pub variance_factor: Option<f64>,
}

/// The rows an objective scores: inputs, and a supervised network's targets.
struct Batch {
    x: Matrix,
    targets: Vec<f32>,
}

fn batch_of(net: &Network, rows: &Matrix, index: &[usize]) -> Result<Batch> {
    let cols = net.input_dim();
    let tw = net.task().target_width();
    let m = rows.gather_rows(index);
    if tw == 0 {
        return Ok(Batch { x: m, targets: Vec::new() });
    }
    let (x, targets) = task::split_matrix(&m, cols, tw)?;
    Ok(Batch { x, targets })
}

/// What one evaluation needs besides the parameters: a network to hold them and its buffers.
/// Kept between evaluations (one per thread at a time), so the hot loop allocates nothing.
struct Scratch {
    net: Network,
    ws: Workspace,
    /// The batch rows the workspace is sized for.
    rows: usize,
    h: Vec<f32>,
    /// The mapped output, with an output link.
    o: Vec<f32>,
    dz: Vec<f32>,
    per_row: Vec<f64>,
}

/// The network objective on one batch: the network's loss (as in training: mean per element,
/// or mean cross-entropy per row) at the parameters `theta` (the network's, then the links').
struct Objective<'a> {
    base: &'a Network,
    /// The links in layer order, each with the offset of its parameters in `theta`.
    links: Vec<(usize, &'a Link)>,
    /// The minibatch; replaced between iterations (no evaluation runs then).
    b: RwLock<Batch>,
    spare: Mutex<Vec<Scratch>>,
}

impl<'a> Objective<'a> {
    fn new(base: &'a Network, links: &[&'a Link], b: Batch) -> Objective<'a> {
        let mut off = base.param_count();
        let mut with_offsets: Vec<(usize, &Link)> = links
            .iter()
            .map(|&l| {
                let o = off;
                off += l.params;
                (o, l)
            })
            .collect();
        with_offsets.sort_by_key(|&(_, l)| l.layer);
        Objective { base, links: with_offsets, b: RwLock::new(b), spare: Mutex::new(Vec::new()) }
    }

    /// NaN when a parameter is outside the f32 range or the forward is not finite.
    fn eval(&self, theta: &[f64]) -> f64 {
        let b = self.b.read().unwrap_or_else(|e| e.into_inner());
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut s = match spare {
            Some(s) if s.rows == b.x.rows() => s,
            _ => match self.base.workspace(b.x.rows()) {
                Ok(ws) => Scratch {
                    net: self.base.clone(),
                    ws,
                    rows: b.x.rows(),
                    h: Vec::new(),
                    o: Vec::new(),
                    dz: Vec::new(),
                    per_row: Vec::new(),
                },
                Err(_) => return f64::NAN,
            },
        };
        let v = Self::eval_with(&self.links, &b, &mut s, theta);
        self.spare.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        v
    }

    fn eval_with(links: &[(usize, &Link)], b: &Batch, s: &mut Scratch, theta: &[f64]) -> f64 {
        let Scratch { net, ws, h, o, dz, per_row, .. } = s;
        let p = net.param_count();
        for (d, &v) in net.params_mut().iter_mut().zip(&theta[..p]) {
            *d = v as f32;
            if !d.is_finite() {
                return f64::NAN;
            }
        }
        let (rows, n) = (b.x.rows(), net.layers().len());
        // Forward layer by layer segment: each hidden link maps what its layer passed on, and
        // the next segment reads the mapped block.
        let (mut start, mut from_h) = (0, false);
        let mut output_link = None;
        for &(off, l) in links {
            if l.layer + 1 >= n {
                output_link = Some((off, l));
                continue;
            }
            let input: &[f32] = if from_h { h } else { b.x.as_slice() };
            if net.forward_layers(start..l.layer + 1, input, rows, ws, 1).is_err() {
                return f64::NAN;
            }
            let w = net.layers()[l.layer].n_out;
            h.clear();
            h.extend_from_slice(&ws.passed_on(l.layer)[..rows * w]);
            (l.f)(&theta[off..off + l.params], h, rows, w);
            if h.iter().any(|v| !v.is_finite()) {
                return f64::NAN;
            }
            (start, from_h) = (l.layer + 1, true);
        }
        let input: &[f32] = if from_h { h } else { b.x.as_slice() };
        if net.forward_layers(start..n, input, rows, ws, 1).is_err() {
            return f64::NAN;
        }
        let out_w = net.output_dim();
        let (mut z, mut y) = (&ws.preactivation(n - 1)[..rows * out_w], &ws.output(n - 1)[..rows * out_w]);
        let mut act = net.layers()[n - 1].activation;
        if let Some((off, l)) = output_link {
            o.clear();
            o.extend_from_slice(y);
            (l.f)(&theta[off..off + l.params], o, rows, out_w);
            if o.iter().any(|v| !v.is_finite()) {
                return f64::NAN;
            }
            // The loss reads the mapped output itself (check() refused the losses that read
            // logits).
            (z, y, act) = (&o[..], &o[..], crate::Activation::Identity);
        }
        let sum = match net.task() {
            Task::Classify { classes } => {
                dz.resize(rows * out_w, 0.0);
                task::softmax_cross_entropy(y, &b.targets, classes, 1.0, dz) / rows as f64
            }
            t => {
                let target = if t == Task::Reconstruct { b.x.as_slice() } else { &b.targets[..] };
                per_row.resize(rows, 0.0);
                net.spec().loss.row_means(act, z, y, target, out_w, per_row);
                per_row.iter().sum::<f64>() / rows as f64
            }
        };
        if sum.is_finite() { sum } else { f64::NAN }
    }
}

/// The objective's links: `link`, then `extra_links`.
fn links_of(obj: &NetworkObjective) -> Vec<&Link> {
    obj.link.iter().chain(&obj.extra_links).collect()
}

/// Checks links against a network: each on a layer of its own, an output link only under a
/// loss that reads the output itself. Returns the links' parameter count.
fn check_links(net: &Network, links: &[&Link]) -> Result<usize> {
    let n = net.layers().len();
    let mut seen = Vec::new();
    for l in links {
        if l.layer >= n {
            return Err(invalid!(
                "a link maps layer {}: the network has layers 0 to {} (the last is the output layer)",
                l.layer,
                n - 1
            ));
        }
        if seen.contains(&l.layer) {
            return Err(invalid!("two links map layer {}: give each link a layer of its own", l.layer));
        }
        seen.push(l.layer);
        if l.layer + 1 == n {
            if matches!(net.task(), Task::Classify { .. }) {
                return Err(invalid!(
                    "an output link on a classifier: its softmax cross-entropy reads logits, not mapped outputs"
                ));
            }
            if net.spec().loss == crate::Loss::BinaryCrossEntropy {
                return Err(invalid!(
                    "an output link under binary cross-entropy: the loss reads the output's logits, not mapped outputs"
                ));
            }
        }
    }
    Ok(links.iter().map(|l| l.params).sum())
}

fn check(mc: &MonteCarlo, net: &Network, obj: &NetworkObjective) -> Result<usize> {
    let extra = check_links(net, &links_of(obj))?;
    let want = net.param_count() + extra;
    if mc.n_params() != want {
        return Err(shape!(
            "the optimizer has {} parameters, the network has {} and the links {extra} (make it with {want})",
            mc.n_params(),
            net.param_count()
        ));
    }
    if obj.runs == 0 || obj.runs > MAX_RUNS {
        return Err(invalid!("runs is {}: it must be 1 to {MAX_RUNS}", obj.runs));
    }
    Ok(extra)
}

/// Fits `net` by the Monte-Carlo optimizer: `obj.runs` runs of `mc`, each on a fresh seeded
/// minibatch of `data` (with its labels or targets for a supervised network; a fresh one every
/// iteration with `batch_every_iteration`). The first run draws its candidates from the
/// priors (KernelML's way), or starts around the network's current parameters (and the link's
/// prior means) with `start_from_network`, unless `mc` already has a point. The network ends
/// with the best parameters; the link's come back.
pub fn fit_network(
    mc: &mut MonteCarlo,
    net: &mut Network,
    data: &Dataset,
    obj: &NetworkObjective,
) -> Result<NetworkFit> {
    let extra = check(mc, net, obj)?;
    let rows = net.training_rows_of(data)?;
    let n = rows.rows();
    if n == 0 {
        return Err(invalid!("the dataset has no rows"));
    }
    if mc.best().is_none() && obj.start_from_network {
        let mut start: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
        start.extend(mc.specs()[net.param_count()..].iter().map(|s| s.prior.mean()));
        mc.set_start(&start)?;
    }
    let batch = if obj.batch_size == 0 || obj.batch_size >= n { n } else { obj.batch_size };
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(obj.seed, stream::MONTE_CARLO_BATCH);
    let mut run_losses = Vec::with_capacity(obj.runs);
    let base = net.clone();
    let links = links_of(obj);
    let mut draw = |run: usize, iteration: usize| -> Result<Option<Batch>> {
        let index: Vec<usize> = if let Some(f) = &obj.batch_sampler {
            let mut v = crate::error::try_zeros(batch)?;
            let req = BatchRequest { run, iteration, rows: n, seed: rng.next_u64() };
            f(&req, &mut v)?;
            if let Some((k, &r)) = v.iter().enumerate().find(|&(_, &r)| r >= n) {
                return Err(invalid!("the minibatch sampler gave row {r} (entry {k}) of a dataset of {n} rows"));
            }
            v
        } else if batch == n {
            if iteration > 0 {
                return Ok(None);
            }
            order.clone()
        } else {
            // A partial Fisher-Yates shuffle: the first `batch` of a fresh permutation.
            for i in 0..batch {
                let j = i + rng.below((n - i) as u64) as usize;
                order.swap(i, j);
            }
            let mut v = order[..batch].to_vec();
            v.sort_unstable();
            v
        };
        batch_of(&base, &rows, &index).map(Some)
    };
    for run in 0..obj.runs {
        let first = draw(run, 0)?.expect("a run's first minibatch");
        let objective = Objective::new(&base, &links, first);
        let f = |theta: &[f64]| objective.eval(theta);
        let loss: LossFn = &f;
        let mut next = |it: usize| -> Result<bool> {
            if !obj.batch_every_iteration {
                return Ok(false);
            }
            match draw(run, it)? {
                Some(b) => {
                    *objective.b.write().unwrap_or_else(|e| e.into_inner()) = b;
                    Ok(true)
                }
                None => Ok(false),
            }
        };
        mc.run_with(loss, &mut next)?;
        run_losses.push(mc.best_loss());
    }
    let best = mc.best().expect("a run sets the best").to_vec();
    let p = net.param_count();
    let params: Vec<f32> = best[..p].iter().map(|&v| v as f32).collect();
    net.set_params(&params)?;
    debug_assert_eq!(best.len(), p + extra);
    let variance_factor = (batch < n).then(|| batch as f64 / (n - batch) as f64);
    Ok(NetworkFit { run_losses, link_params: best[p..].to_vec(), variance_factor })
}

/// The network objective on every row of `data` at the parameters `theta` (the network's
/// then the link's): what [`fit_network`] minimises, for scoring a fit or for intervals.
pub fn network_loss(net: &Network, data: &Dataset, link: Option<&Link>, theta: &[f64]) -> Result<f64> {
    network_loss_links(net, data, &link.into_iter().collect::<Vec<_>>(), theta)
}

/// [`network_loss`] with several links (a fit's `link` then its `extra_links`, parameters in
/// that order after the network's).
pub fn network_loss_links(net: &Network, data: &Dataset, links: &[&Link], theta: &[f64]) -> Result<f64> {
    let want = net.param_count() + check_links(net, links)?;
    if theta.len() != want {
        return Err(shape!("{} parameters given, the network and links have {want}", theta.len()));
    }
    let rows = net.training_rows_of(data)?;
    let index: Vec<usize> = (0..rows.rows()).collect();
    let b = batch_of(net, &rows, &index)?;
    Ok(Objective::new(net, links, b).eval(theta))
}
