//! A variational autoencoder on a backend: [`crate::Vae`]'s one training step (on the CPU it is
//! [`Vae::step`]), encoder and validation score, through the [`Backend`] primitives: on a GPU the
//! VAE kernels of `cuda/vae.cu` (reparameterisation, closed-form KL, backward through z,
//! reconstruction NLL of every [`DistKind`] through a part table), on the CPU the models' own
//! code. Both draw the reparameterisation noise from Philox keyed by the step and each draw's
//! place in the minibatch, so a step's draws do not depend on the device or the shards.

#![forbid(unsafe_code)]

use super::minibatch::Minibatch;
use super::network::DeviceNoise;
use super::ops::{Backend, Op, Slot, VAE_PART_FIELDS, VaeReconArgs};
use super::optimizer::Update;
use super::resident::Resident;
use super::shards::{Shard, Shards};
use crate::distribution::{DistKind, Reconstruction};
use crate::error::{Result, invalid, shape};
use crate::tensor::Matrix;
use crate::vae::{Posterior, Vae};

/// Examples a pass's buffers hold when a VAE is put on a device (inference and validation run
/// in blocks of this many rows; training resizes them to its minibatch).
const BLOCK: usize = 1024;
/// Noise key of a step without noise ([`DeviceVae::forward_backward`], the epoch's check pass):
/// the draws of `StepDraws::whole(FIXED_SEED, 0, rows)`, a counter no training step uses.
pub const FIXED_SEED: u64 = 0x00F1_8ED0;
/// Philox key of the validation score's draws (the CPU's `valid_score` uses seed 0x5EED).
const VALID_SEED: u64 = 0x5EED;

/// The part table of `lat_vae_recon` (cuda/vae.cu): [`VAE_PART_FIELDS`] values per part, in part
/// order: {DistKind code, activation code, first data column, first pre-output column, size,
/// extra index (GaussianGlobal, else 0), first global column (GaussianGlobal, else 0), 0}. All are
/// non-negative, so they are stored as u32 in an id buffer and read by the kernel as ints.
pub fn part_table(rec: &Reconstruction) -> Vec<u32> {
    let mut t = Vec::with_capacity(rec.parts.len() * VAE_PART_FIELDS);
    let (mut c, mut p, mut e, mut g) = (0u32, 0u32, 0u32, 0u32);
    for part in &rec.parts {
        let size = part.size as u32;
        let global = part.kind == DistKind::GaussianGlobal;
        t.extend_from_slice(&[
            part.kind.code() as u32,
            part.activation.code() as u32,
            c,
            p,
            size,
            if global { e } else { 0 },
            if global { g } else { 0 },
            0,
        ]);
        c += size;
        p += if part.kind == DistKind::Gaussian { 2 * size } else { size };
        if global {
            e += 1;
            g += size;
        }
    }
    t
}

/// Whether the head holds the log-variances, and the constant one otherwise (the kernels'
/// `learned`, `const_lv`).
fn learned_of(p: &Posterior) -> (bool, f32) {
    match *p {
        Posterior::Learned => (true, 0.0),
        Posterior::Constant { log_variance } => (false, log_variance),
    }
}

/// Columns of the global-variance parts together (G of cuda/vae.cu).
fn global_columns(rec: &Reconstruction) -> usize {
    rec.parts.iter().filter(|p| p.kind == DistKind::GaussianGlobal).map(|p| p.size).sum()
}

/// The buffers of one pass for up to `rows` examples with `samples` draws each.
pub(crate) struct Pass<B: Backend> {
    rows: usize,
    /// The minibatch, rows x input_dim.
    pub(crate) x: B::Buf,
    /// Per layer: encoder layers and head over the rows, decoder layers over rows x samples.
    pub(crate) z: Vec<B::Buf>,
    pub(crate) y: Vec<B::Buf>,
    /// Standard normal draws and latent samples, stacked draw-major (rows * samples x J).
    pub(crate) eps: B::Buf,
    pub(crate) zs: B::Buf,
    d0: B::Buf,
    d1: B::Buf,
    /// dL/d(head pre-activation), rows x head width.
    dhead: B::Buf,
    /// KL terms, rows x J.
    kl_el: B::Buf,
    /// Reconstruction NLL terms, rows * samples x input_dim.
    rec_el: B::Buf,
    /// The global log-variances' element gradients, rows * samples x G.
    glob_el: B::Buf,
    /// rows * samples ones (bias gradients as column sums).
    ones: B::Buf,
}

impl Pass<crate::backend::Cpu> {
    /// How many values its buffers hold together.
    pub(crate) fn values(&self) -> usize {
        let all = |v: &[crate::backend::cpu::Lined]| v.iter().map(|b| b.len()).sum::<usize>();
        let one = [&self.x, &self.eps, &self.zs, &self.d0, &self.d1, &self.dhead, &self.kl_el, &self.rec_el];
        one.iter().map(|b| b.len()).sum::<usize>() + self.glob_el.len() + self.ones.len() + all(&self.z) + all(&self.y)
    }
}

/// What one step reads: the backend it runs on, the VAE, its parameters and part table there.
struct VaeCtx<'a, B: Backend> {
    be: &'a B,
    vae: &'a Vae,
    params: &'a B::Buf,
    parts: &'a B::Ids,
    n_parts: usize,
    glob_cols: usize,
}

impl<B: Backend> Clone for VaeCtx<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: Backend> Copy for VaeCtx<'_, B> {}

impl<B: Backend> VaeCtx<'_, B> {
    /// Encoder and head over the `rows` rows of the minibatch buffer.
    fn encode_pass(&self, p: &mut Pass<B>, rows: usize) -> Result<()> {
        let be = self.be;
        for i in 0..=self.vae.head_index() {
            let l = &self.vae.layers()[i];
            let (below, rest) = p.y.split_at_mut(i);
            let inp = if i == 0 { &p.x } else { &below[i - 1] };
            be.layer_forward(l, self.params, inp, &mut p.z[i], &mut rest[0], rows)?;
        }
        Ok(())
    }

    /// Encoder, `samples` draws per row (Philox key `seed`, counter `ctr`), decoder over the
    /// stacked rows.
    /// `first`, `batch`: these rows start at row `first` of a minibatch of `batch` rows, whose
    /// draws they draw (a shard's).
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        p: &mut Pass<B>,
        rows: usize,
        samples: usize,
        seed: u64,
        ctr: u64,
        first: usize,
        batch: usize,
    ) -> Result<()> {
        self.encode_pass(p, rows)?;
        let (learned, const_lv) = learned_of(&self.vae.spec().posterior);
        let be = self.be;
        let head = self.vae.head_index();
        be.run(Op::VaeReparam {
            head: (&p.y[head], 0),
            eps: (&mut p.eps, 0),
            zs: (&mut p.zs, 0),
            rows,
            samples,
            latent: self.vae.latent_dim(),
            learned,
            const_lv,
            seed,
            ctr,
            first,
            batch,
        })?;
        self.decode_pass(p, rows * samples)
    }

    /// The decoder over the first `n` stacked latent rows of the pass's samples.
    fn decode_pass(&self, p: &mut Pass<B>, n: usize) -> Result<()> {
        let head = self.vae.head_index();
        for i in head + 1..self.vae.layers().len() {
            let l = &self.vae.layers()[i];
            let (below, rest) = p.y.split_at_mut(i);
            let inp = if i == head + 1 { &p.zs } else { &below[i - 1] };
            self.be.layer_forward(l, self.params, inp, &mut p.z[i], &mut rest[0], n)?;
        }
        Ok(())
    }

    /// Reconstruction terms of the stacked rows (dL/dpre scaled by `scale` into d0, their NLL
    /// sum times `sum.1` into slot `sum.0`, the global log-variances' gradients into `dextra`),
    /// and the KL terms with their gradient (weight `beta`) into dhead.
    #[allow(clippy::too_many_arguments)]
    fn terms(
        &self,
        p: &mut Pass<B>,
        rows: usize,
        samples: usize,
        scale: f32,
        beta: f32,
        sum: (Slot, f64),
        dextra: Option<&mut B::Buf>,
    ) -> Result<()> {
        let (learned, const_lv) = learned_of(&self.vae.spec().posterior);
        let be = self.be;
        let vae = &self.vae;
        let out = vae.layers().len() - 1;
        let n = rows * samples;
        be.vae_recon(VaeReconArgs {
            rec: &vae.spec().reconstruction,
            x: (&p.x, 0),
            pre: (&p.y[out], 0),
            extra: (self.params, vae.extra_offset()),
            parts: (self.parts, 0),
            n_parts: self.n_parts,
            glob_cols: self.glob_cols,
            rec_el: (&mut p.rec_el, 0),
            dpre: (&mut p.d0, 0),
            glob_el: (&mut p.glob_el, 0),
            n,
            rows,
            d_cols: vae.input_dim(),
            p_cols: vae.layers()[out].n_out,
            scale,
            sum,
            dextra: dextra.map(|g| (g, vae.extra_offset())),
        })?;
        if vae.spec().objective == crate::vae::Objective::Bilbo {
            let head = (&p.y[vae.head_index()], 0);
            return be.vae_batch_prior_kl(
                head,
                (&mut p.kl_el, 0),
                (&mut p.dhead, 0),
                rows,
                vae.latent_dim(),
                const_lv,
                beta,
            );
        }
        be.run(Op::VaeKl {
            head: (&p.y[vae.head_index()], 0),
            kl_el: (&mut p.kl_el, 0),
            dhead: (&mut p.dhead, 0),
            rows,
            latent: vae.latent_dim(),
            learned,
            const_lv,
            beta,
        })
    }

    /// One training step's forward and backward over the `rows` examples in the minibatch
    /// buffer (as [`Vae::step`], with the step's KL weight [`Vae::kl_weight`]): the gradient of
    /// the mean over rows of [E_q -log p(x|z) + beta KL] into the gradient buffer. With
    /// `loss_slot` = [`Slot::Loss`], the reconstruction sum (each row's mean over its L draws)
    /// is added there and the KL sum to [`Slot::Penalty`]; with another slot, both go to it (the
    /// negative ELBO summed over rows). Without `noise`, a fixed Philox draw.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        p: &mut Pass<B>,
        grads: &mut B::Buf,
        rows: usize,
        (seed, ctr): (u64, u64),
        loss_slot: Slot,
        (first, batch): (usize, usize),
        beta: f32,
    ) -> Result<()> {
        let spec = self.vae.spec();
        let samples = spec.num_samples;
        let jd = spec.latent_dim;
        let n = rows * samples;
        self.forward(p, rows, samples, seed, ctr, first, batch)?;
        let recon_sum = (loss_slot, 1.0 / samples as f64);
        self.terms(p, rows, samples, 1.0 / n as f32, beta, recon_sum, Some(&mut *grads))?;
        let be = self.be;
        let vae = self.vae;
        let kl_slot = if loss_slot == Slot::Loss { Slot::Penalty } else { loss_slot };
        be.run(Op::Sum { x: (&p.kl_el, 0), n: rows * jd, slot: kl_slot, scale: 1.0 })?;

        // Decoder backward from dL/dpre in d0; at the first decoder layer, dL/dz of the draws.
        let layers = vae.layers();
        let head = vae.head_index();
        let dec = head + 1..layers.len();
        for i in dec.clone().rev() {
            let l = &layers[i];
            let input = if i == dec.start { &p.zs } else { &p.y[i - 1] };
            let below = (i > dec.start).then(|| (layers[i - 1].activation, &p.z[i - 1], &p.y[i - 1]));
            let dx = Some(&mut p.d1);
            be.layer_backward(l, self.params, grads, input, &p.d0, &p.ones, dx, below, n)?;
            std::mem::swap(&mut p.d0, &mut p.d1);
        }
        // Through the reparameterisation to the head (dhead holds the KL gradient).
        let (learned, const_lv) = learned_of(&spec.posterior);
        let hl = &layers[head];
        be.run(Op::VaeReparamBackward {
            head_z: (&p.z[head], 0),
            head_y: (&p.y[head], 0),
            dzs: (&p.d0, 0),
            eps: (&p.eps, 0),
            dhead: (&mut p.dhead, 0),
            rows,
            samples,
            latent: jd,
            learned,
            const_lv,
            act: hl.activation,
        })?;
        be.copy((&p.dhead, 0), (&mut p.d0, 0), rows * hl.n_out)?;
        // Head and encoder backward.
        for i in (0..=head).rev() {
            let l = &layers[i];
            let input = if i == 0 { &p.x } else { &p.y[i - 1] };
            let below = (i > 0).then(|| (layers[i - 1].activation, &p.z[i - 1], &p.y[i - 1]));
            let dx = (i > 0).then_some(&mut p.d1);
            be.layer_backward(l, self.params, grads, input, &p.d0, &p.ones, dx, below, rows)?;
            if i == 0 {
                break;
            }
            std::mem::swap(&mut p.d0, &mut p.d1);
        }
        Ok(())
    }
}

impl<B: Backend> Pass<B> {
    fn new(be: &B, vae: &Vae, rows: usize) -> Result<Pass<B>> {
        Self::sized(be, vae, rows, vae.spec().num_samples, true)
    }

    /// The buffers of a training step (`train`), or of forward passes only, for `rows`
    /// examples with `samples` draws each.
    fn sized(be: &B, vae: &Vae, rows: usize, samples: usize, train: bool) -> Result<Pass<B>> {
        let rows = rows.max(1);
        let spec = vae.spec();
        // What only a training step uses (a pass for inference leaves it empty).
        let t = |n: usize| if train { n } else { 0 };
        let stacked = crate::tensor::checked_len(rows, samples)?;
        let head = vae.head_index();
        let (d, j) = (spec.input_dim, spec.latent_dim);
        let mut widest = d.max(j);
        let (mut z, mut y) = (Vec::new(), Vec::new());
        for (i, l) in vae.layers().iter().enumerate() {
            let r = if i > head { stacked } else { rows };
            let n = crate::tensor::checked_len(r, l.n_out)?;
            z.push(be.alloc(n)?);
            y.push(be.alloc(n)?);
            widest = widest.max(l.n_out).max(l.n_in);
        }
        let big = crate::tensor::checked_len(stacked, widest)?;
        if big >= i32::MAX as usize {
            return Err(invalid!(
                "a pass of {rows} rows x {samples} samples x {widest} columns exceeds what one device kernel indexes"
            ));
        }
        let hw = vae.layers()[head].n_out;
        let mut ones = be.alloc(t(stacked))?;
        be.run(Op::Fill { x: (&mut ones, 0), n: t(stacked), v: 1.0 })?;
        Ok(Pass {
            rows,
            x: be.alloc(rows * d)?,
            z,
            y,
            eps: be.alloc(stacked * j)?,
            zs: be.alloc(stacked * j)?,
            d0: be.alloc(t(big))?,
            d1: be.alloc(t(big))?,
            dhead: be.alloc(t(rows * hw))?,
            kl_el: be.alloc(t(rows * j))?,
            rec_el: be.alloc(t(stacked * d))?,
            glob_el: be.alloc(t((stacked * global_columns(&spec.reconstruction)).max(1)))?,
            ones,
        })
    }
}

/// A [`Vae`] on a device: parameters, gradients, optimizer state and one pass's buffers live
/// there. The host copy's step count is the KL warm-up's clock: each [`DeviceVae`] update
/// advances it (the one loop's update), so [`Vae::kl_weight`] follows.
pub struct DeviceVae<B: Backend> {
    res: Resident<B, Vae>,
    pass: Pass<B>,
    parts: B::Ids,
    n_parts: usize,
    glob_cols: usize,
    /// Stacked draws of the last step (rows * samples), for [`DeviceVae::last_draws`].
    last_stacked: usize,
    /// A training step's data-parallel shards, where the backend makes them.
    shards: Option<Shards<B, Pass<B>>>,
}

/// Why `vae` cannot run on backend `be` (None: it can): BILBO's batch-fitted prior runs where
/// the backend runs it ([`Backend::runs_batch_prior`]: the CPU), so a BILBO VAE is not trained
/// or scored with the wrong objective elsewhere.
pub fn unsupported_reason<B: Backend>(be: &B, vae: &Vae) -> Option<String> {
    let o = vae.spec().objective;
    (o != crate::vae::Objective::Elbo && !be.runs_batch_prior()).then(|| {
        format!(
            "the {} objective (Fyffe 2019: a batch-fitted prior) runs on the CPU only; the GPU backend trains the ELBO",
            o.name()
        )
    })
}

impl<B: Backend> DeviceVae<B> {
    /// Copies `vae` onto the backend's device (UNSUPPORTED for what
    /// [`unsupported_reason`] names).
    pub fn new(backend: B, vae: Vae) -> Result<DeviceVae<B>> {
        Self::with_rows(backend, vae, BLOCK)
    }

    /// [`DeviceVae::new`] with a pass of `rows` examples.
    fn with_rows(backend: B, vae: Vae, rows: usize) -> Result<DeviceVae<B>> {
        if let Some(why) = unsupported_reason(&backend, &vae) {
            return Err(crate::error::Error::Unsupported(why));
        }
        let pass = Pass::new(&backend, &vae, rows)?;
        let rec = &vae.spec().reconstruction;
        let table = part_table(rec);
        let mut parts = backend.alloc_ids(table.len())?;
        backend.upload_ids(&table, &mut parts)?;
        let (n_parts, glob_cols) = (rec.parts.len(), global_columns(rec));
        let res = Resident::new(backend, vae)?;
        Ok(DeviceVae { res, pass, parts, n_parts, glob_cols, last_stacked: 0, shards: None })
    }

    pub fn backend(&self) -> &B {
        &self.res.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.res.backend
    }

    /// The VAE with the device's current parameters (copied back when they changed).
    pub fn vae(&mut self) -> Result<&Vae> {
        self.sync()?;
        Ok(&self.res.host)
    }

    /// The host VAE, its parameters possibly behind the device (see [`DeviceVae::vae`]); its
    /// step count is current.
    pub fn vae_unsynced(&self) -> &Vae {
        &self.res.host
    }

    /// Copies the device's parameters to the host VAE when they changed.
    pub fn sync(&mut self) -> Result<()> {
        self.res.sync()
    }

    /// Replaces the parameters on both sides.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        self.res.set_params(p)
    }

    /// Training steps taken (the KL warm-up's clock), as [`Vae::steps`].
    pub fn steps(&self) -> u64 {
        self.res.host.steps()
    }

    pub fn set_steps(&mut self, s: u64) {
        self.res.host.set_steps(s);
    }

    /// Takes the VAE back (synced, with its step count).
    pub fn into_vae(mut self) -> Result<Vae> {
        self.sync()?;
        Ok(self.res.host)
    }

    pub fn param_count(&self) -> usize {
        self.res.host.param_count()
    }

    /// The gradient of the last step (a copy on the host).
    pub fn gradients(&self) -> Result<Vec<f32>> {
        self.res.gradients()
    }

    /// The standard normal draws of the last step, rows * L * latent_dim values stacked
    /// draw-major (draw l of example r at stacked row l * rows + r).
    pub fn last_draws(&self) -> Result<Vec<f32>> {
        let mut e = vec![0f32; self.last_stacked * self.res.host.latent_dim()];
        self.res.backend.download((&self.pass.eps, 0), &mut e)?;
        Ok(e)
    }

    /// One forward and backward over the rows of `x` without an update, with the draws of a
    /// fixed Philox stream and the current KL weight ([`Vae::kl_weight`]): (reconstruction NLL,
    /// KL) means per example as a fit reports them, the
    /// gradient of the mean negative ELBO (beta-weighted) left in [`DeviceVae::gradients`] and
    /// the draws in [`DeviceVae::last_draws`].
    pub fn forward_backward(&mut self, x: &Matrix) -> Result<(f64, f64)> {
        self.check(x)?;
        let rows = x.rows();
        if rows == 0 {
            return Err(invalid!("no rows"));
        }
        self.reserve(rows)?;
        self.load_rows(x.as_slice())?;
        self.res.backend.reset_slots()?;
        self.step(rows, Minibatch::Loaded, None, Slot::Loss, (0, rows))?;
        let s = self.res.backend.read_slots()?;
        Ok((s[Slot::Loss as usize] / rows as f64, s[Slot::Penalty as usize] / rows as f64))
    }

    fn check(&self, x: &Matrix) -> Result<()> {
        let d = self.res.host.input_dim();
        if x.cols() != d {
            return Err(shape!("input has {} columns, the VAE expects {d}", x.cols()));
        }
        x.check_finite("input")
    }

    /// Resizes the pass buffers to hold `rows` examples.
    /// Resizes the pass buffers to hold `rows` examples, and makes the shards of a step of that
    /// many rows where the backend runs shards (as [`crate::backend::DeviceNetwork`] does; a VAE's
    /// work is its rows times its samples).
    pub(crate) fn reserve(&mut self, rows: usize) -> Result<()> {
        if self.pass.rows < rows {
            self.pass = Pass::new(&self.res.backend, &self.res.host, rows)?;
        }
        if self.shards.as_ref().is_some_and(|sh| sh.fit(rows, |p| p.rows)) {
            return Ok(());
        }
        let work = if self.res.host.shardable() { self.res.host.work_rows(rows) } else { 0 };
        let vae = &self.res.host;
        self.shards = Shards::make(&self.res.backend, rows, work, vae.param_count(), |be, r| Pass::new(be, vae, r))?;
        Ok(())
    }

    /// Uploads host rows into the minibatch buffer.
    fn load_rows(&mut self, x: &[f32]) -> Result<()> {
        self.res.backend.upload(x, (&mut self.pass.x, 0))
    }

    fn learned(&self) -> (bool, f32) {
        learned_of(&self.res.host.spec().posterior)
    }

    /// Encoder and head over the `rows` rows of the minibatch buffer.
    fn encode_pass(&mut self, rows: usize) -> Result<()> {
        let DeviceVae { res: Resident { backend, host: vae, params, .. }, parts, n_parts, glob_cols, pass, .. } = self;
        let ctx = VaeCtx { be: &*backend, vae, params, parts, n_parts: *n_parts, glob_cols: *glob_cols };
        ctx.encode_pass(pass, rows)
    }

    /// One training step's forward and backward over the `rows` examples in the minibatch
    /// buffer (as [`Vae::step`], with the step's KL weight [`Vae::kl_weight`]): the gradient of
    /// the mean over rows of [E_q -log p(x|z) + beta KL] into the gradient buffer. With
    /// `loss_slot` = [`Slot::Loss`], the reconstruction sum (each row's mean over its L draws)
    /// is added there and the KL sum to [`Slot::Penalty`]; with another slot, both go to it (the
    /// negative ELBO summed over rows). Without `noise`, a fixed Philox draw. On a backend that
    /// makes shards (the CPU), the rows run in one shard per thread as the network's do.
    pub(crate) fn step(
        &mut self,
        rows: usize,
        mb: Minibatch<'_, B>,
        noise: Option<DeviceNoise>,
        loss_slot: Slot,
        (at, batch): (usize, usize),
    ) -> Result<()> {
        self.last_stacked = rows * self.res.host.spec().num_samples;
        let DeviceVae {
            res: Resident { backend, host: vae, params, grads, .. },
            parts,
            n_parts,
            glob_cols,
            pass,
            shards,
            ..
        } = self;
        let ctx = VaeCtx { be: &*backend, vae, params, parts, n_parts: *n_parts, glob_cols: *glob_cols };
        let d = vae.input_dim();
        let draws = match noise {
            Some(nz) => (nz.seed, nz.ctr << 8 | 1),
            None => (FIXED_SEED, 1),
        };
        let beta = vae.kl_weight();
        let Some(sh) = shards.as_mut().filter(|sh| sh.worth(vae.work_rows(rows))) else {
            mb.load(backend, (0, rows), d, None, &mut pass.x)?;
            return ctx.step(pass, grads, rows, draws, loss_slot, (at, batch), beta);
        };
        let x = &pass.x;
        let load =
            |part: &mut Shard<B, Pass<B>>, a: usize, b: usize| mb.load(backend, (a, b), d, Some(x), &mut part.pass.x);
        let step = |part: &mut Shard<B, Pass<B>>, a: usize, b: usize| {
            let ctx = VaeCtx { be: &part.be, ..ctx };
            ctx.step(&mut part.pass, &mut part.grads, b - a, draws, loss_slot, (at + a, batch), beta)
        };
        sh.step(backend, rows, grads, vae.param_count(), load, step)
    }

    /// Posterior means and log-variances of the rows of x (rows x latent_dim each), computed on
    /// the device: [`Vae::encode`].
    pub fn encode(&mut self, x: &Matrix) -> Result<(Matrix, Matrix)> {
        self.check(x)?;
        let (d, jd) = (self.res.host.input_dim(), self.res.host.latent_dim());
        let (learned, const_lv) = self.learned();
        let hw = if learned { 2 * jd } else { jd };
        let head = self.res.host.head_index();
        let mut mean = Matrix::zeros(x.rows(), jd)?;
        let mut logvar = Matrix::zeros(x.rows(), jd)?;
        let block = self.pass.rows;
        let mut buf = vec![0f32; block * hw];
        for first in (0..x.rows()).step_by(block) {
            let r = block.min(x.rows() - first);
            self.load_rows(&x.as_slice()[first * d..(first + r) * d])?;
            self.encode_pass(r)?;
            self.res.backend.download((&self.pass.y[head], 0), &mut buf[..r * hw])?;
            for i in 0..r {
                let row = &buf[i * hw..(i + 1) * hw];
                let k = (first + i) * jd;
                mean.as_mut_slice()[k..k + jd].copy_from_slice(&row[..jd]);
                let lv = &mut logvar.as_mut_slice()[k..k + jd];
                if learned {
                    lv.copy_from_slice(&row[jd..]);
                } else {
                    lv.fill(const_lv);
                }
            }
        }
        Ok((mean, logvar))
    }

    /// The validation score: the mean negative ELBO per example of the rows of `x`, the
    /// expectation by one draw per row as [`Vae::elbo`]`(x, 1, ..)` (the CPU trainer's
    /// validation), the draw from the device's Philox stream under a fixed key (one counter per
    /// block of rows), not the CPU's generator: the same estimator, other draws.
    pub fn loss(&mut self, x: &Matrix) -> Result<f64> {
        self.check(x)?;
        if self.res.host.spec().objective == crate::vae::Objective::Bilbo {
            // Minus BILBO over all of x (its prior fitted to x), as the host VAE scores it.
            self.sync()?;
            return self.res.host.valid_score(x, crate::pool::resolve_threads(0));
        }
        let d = self.res.host.input_dim();
        let block = self.pass.rows;
        let mut total = 0f64;
        for first in (0..x.rows()).step_by(block) {
            let r = block.min(x.rows() - first);
            self.load_rows(&x.as_slice()[first * d..(first + r) * d])?;
            let DeviceVae { res: Resident { backend, host: vae, params, .. }, parts, n_parts, glob_cols, pass, .. } =
                self;
            let ctx = VaeCtx { be: &*backend, vae, params, parts, n_parts: *n_parts, glob_cols: *glob_cols };
            ctx.forward(pass, r, 1, VALID_SEED, first as u64, 0, r)?;
            let before = backend.read_slots()?[Slot::Scratch as usize];
            ctx.terms(pass, r, 1, 1.0, 0.0, (Slot::Scratch, 1.0), None)?;
            let p = &self.pass;
            self.res.backend.run(Op::Sum {
                x: (&p.kl_el, 0),
                n: r * self.res.host.latent_dim(),
                slot: Slot::Scratch,
                scale: 1.0,
            })?;
            total += self.res.backend.read_slots()?[Slot::Scratch as usize] - before;
        }
        Ok(if x.rows() == 0 { 0.0 } else { total / x.rows() as f64 })
    }
}

/// A pass on the CPU for inference over `rows` examples with `samples` draws each.
pub(crate) fn host_pass(vae: &Vae, rows: usize, samples: usize) -> Result<Pass<super::Cpu>> {
    Pass::sized(&super::Cpu::inline(), vae, rows, samples, false)
}

/// The encoder and head of `vae` over the `rows` rows of `x` into `p`, on the calling thread's
/// pool with `threads` workers: the step's layer loop, with the parameters in place.
pub(crate) fn host_encode(vae: &Vae, p: &mut Pass<super::Cpu>, x: &[f32], rows: usize, threads: usize) -> Result<()> {
    p.x[..x.len()].copy_from_slice(x);
    VaeCtx::host(&super::Cpu::on_caller(threads), vae, &Vec::new()).encode_pass(p, rows)
}

/// The decoder of `vae` over the first `n` stacked latent rows of `p.zs`, as [`host_encode`].
pub(crate) fn host_decode(vae: &Vae, p: &mut Pass<super::Cpu>, n: usize, threads: usize) -> Result<()> {
    VaeCtx::host(&super::Cpu::on_caller(threads), vae, &Vec::new()).decode_pass(p, n)
}

impl<'a> VaeCtx<'a, super::Cpu> {
    /// A context on the CPU with the VAE's parameters in place and the part table `parts`
    /// ([`part_table`]; empty for inference, whose reconstruction terms are the host's).
    fn host(be: &'a super::Cpu, vae: &'a Vae, parts: &'a Vec<u32>) -> Self {
        let rec = &vae.spec().reconstruction;
        let (n_parts, glob_cols) = if parts.is_empty() { (0, 0) } else { (rec.parts.len(), global_columns(rec)) };
        VaeCtx { be, vae, params: vae.param_vec(), parts, n_parts, glob_cols }
    }
}

/// [`Vae::step`]: one training step of `vae` on a `Cpu` backend of `threads` workers, the step
/// a fit runs, over the host rows `x` with the draws of `draws` and KL weight `beta`, the
/// parameters read in place; the gradient into `grads`.
pub(crate) fn host_step(
    vae: &Vae,
    x: &[f32],
    rows: usize,
    grads: &mut [f32],
    threads: usize,
    draws: crate::rng::StepDraws,
    beta: f32,
) -> Result<crate::vae::VaeStepLoss> {
    let be = super::Cpu::new(threads)?;
    let mut pass = Pass::new(&be, vae, rows)?;
    let d = vae.input_dim();
    pass.x[..rows * d].copy_from_slice(&x[..rows * d]);
    let parts = part_table(&vae.spec().reconstruction);
    let mut g = be.alloc(vae.param_count())?;
    let key = (draws.key, draws.ctr << 8 | 1);
    VaeCtx::host(&be, vae, &parts).step(&mut pass, &mut g, rows, key, Slot::Loss, (draws.first, draws.batch), beta)?;
    let s = be.read_slots()?;
    grads.copy_from_slice(&g[..grads.len()]);
    Ok(crate::vae::VaeStepLoss { recon_sum: s[Slot::Loss as usize], kl_sum: s[Slot::Penalty as usize] })
}

/// What the one loop (`Trainer::epochs_on`) needs of this model.
impl<B: Backend> super::train::sealed::Model for DeviceVae<B> {
    type Backend = B;
    type Host = Vae;
    fn onto(backend: B, host: Vae) -> Result<Self> {
        DeviceVae::new(backend, host)
    }
    fn into_host(self) -> Result<Vae> {
        DeviceVae::into_vae(self)
    }
    fn resident(&self) -> &Resident<B, Vae> {
        &self.res
    }
    fn resident_mut(&mut self) -> &mut Resident<B, Vae> {
        &mut self.res
    }
    fn reserve(&mut self, rows: usize) -> Result<()> {
        DeviceVae::reserve(self, rows)
    }
    fn set_feature_range(&mut self, _lo: &[f32], _hi: &[f32]) -> Result<()> {
        Ok(())
    }
    fn step(
        &mut self,
        rows: usize,
        mb: Minibatch<'_, B>,
        noise: Option<DeviceNoise>,
        _ids: Option<(&B::Ids, usize)>,
        slot: Slot,
        at: (usize, usize),
    ) -> Result<()> {
        DeviceVae::step(self, rows, mb, noise, slot, at)
    }
    fn update(&mut self, u: Update<'_>) -> Result<()> {
        self.res.update(u)?;
        self.res.host.set_steps(self.res.host.steps() + 1);
        Ok(())
    }
    fn loss(&mut self, data: &Matrix) -> Result<f64> {
        if self.res.backend.host_memory() {
            // The host VAE's score (Vae::valid_score's draws and numbers).
            self.sync()?;
            return self.res.host.valid_score(data, rayon::current_num_threads());
        }
        DeviceVae::loss(self, data)
    }
    fn clock(&self) -> u64 {
        self.steps()
    }
    fn set_clock(&mut self, clock: u64) {
        self.set_steps(clock);
    }
}
