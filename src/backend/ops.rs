//! The primitives a device backend provides: buffers, copies, one row-major GEMM, and the
//! kernel launches of [`Op`] (each one a kernel of `cuda/*.cu`, mirrored on the host).

#![forbid(unsafe_code)]

use crate::activation::Activation;
use crate::corruption::Corruption;
use crate::distribution::Reconstruction;
use crate::error::Result;
use crate::layer::functional::Family;
use crate::layer::{Dense, Stochastic};
use crate::loss::Loss;

/// Number of f64 accumulators a backend keeps on its device (see [`Slot`]).
pub const SLOTS: usize = 4;

/// The device-side f64 accumulators: sums are added there so a training step never waits for
/// the host; they are read once per report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Summed element losses of the steps since the last reset.
    Loss = 0,
    /// Summed penalties (in the units of the mean loss, times rows).
    Penalty = 1,
    /// Squared gradient norm of the current step (clipping).
    GradSq = 2,
    /// Scratch (validation sums).
    Scratch = 3,
}

/// A row-major GEMM: C[c_off..] = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n, with
/// leading dimensions as stored (row-major strides).
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub ta: bool,
    pub tb: bool,
    pub alpha: f32,
    pub beta: f32,
    pub a_off: usize,
    pub lda: usize,
    pub b_off: usize,
    pub ldb: usize,
    pub c_off: usize,
    pub ldc: usize,
}

impl Gemm {
    /// Elements of A, B and C the product touches from their offsets (row-major storage: A is
    /// m x k, or k x m when transposed; likewise B): what every backend checks before running it.
    pub fn extents(&self) -> (usize, usize, usize) {
        let span =
            |rows: usize, ld: usize, cols: usize| if rows == 0 || cols == 0 { 0 } else { (rows - 1) * ld + cols };
        let a = if self.ta { span(self.k, self.lda, self.m) } else { span(self.m, self.lda, self.k) };
        let b = if self.tb { span(self.n, self.ldb, self.k) } else { span(self.k, self.ldb, self.n) };
        (a, b, span(self.m, self.ldc, self.n))
    }

    /// Err(Internal) when a view would run past its buffer (a bug in the caller, never input).
    pub fn check(&self, a: usize, b: usize, c: usize) -> crate::error::Result<()> {
        let (ea, eb, ec) = self.extents();
        if self.a_off + ea > a || self.b_off + eb > b || self.c_off + ec > c {
            return Err(crate::error::Error::Internal(format!(
                "GEMM {self:?} runs past its buffers ({a}, {b}, {c} elements)"
            )));
        }
        Ok(())
    }
}

/// A read-only view: a buffer and an offset into it.
pub type In<'a, B> = (&'a B, usize);
/// A written view.
pub type Out<'a, B> = (&'a mut B, usize);
/// The layer below a backward product: its activation, pre-activation and output, so that
/// dL/dx leaves the product as that layer's dL/dz.
pub type Below<'a, B> = (Activation, &'a <B as Backend>::Buf, &'a <B as Backend>::Buf);
/// Per-feature (min, max) views (salt-and-pepper corruption).
pub type FeatureRange<'a, B> = (In<'a, <B as Backend>::Buf>, In<'a, <B as Backend>::Buf>);

/// One kernel launch. Sizes are element counts; every buffer argument carries its offset.
pub enum Op<'a, B: Backend> {
    /// z += b per row; y = f(z).
    BiasAct { z: Out<'a, B::Buf>, b: In<'a, B::Buf>, y: Out<'a, B::Buf>, rows: usize, cols: usize, act: Activation },
    /// y = f(z) for a z that holds its bias (functional layers).
    ActOnly { z: In<'a, B::Buf>, y: Out<'a, B::Buf>, n: usize, act: Activation },
    /// z = sum_i f(x_i; theta_ij) + b_j of a functional-transfer layer whose theta block is at
    /// `p` and bias at `b` of `params` (family: the F number).
    FunctionalForward {
        params: &'a B::Buf,
        p: usize,
        b: usize,
        x: In<'a, B::Buf>,
        z: Out<'a, B::Buf>,
        rows: usize,
        n_in: usize,
        n_out: usize,
        family: Family,
        sign_seed: u64,
    },
    /// The functional layer's d theta and db (written at p and b of `grads`) and, when asked,
    /// dL/dx.
    FunctionalBackward {
        params: &'a B::Buf,
        p: usize,
        b: usize,
        grads: &'a mut B::Buf,
        x: In<'a, B::Buf>,
        dz: In<'a, B::Buf>,
        dx: Option<Out<'a, B::Buf>>,
        rows: usize,
        n_in: usize,
        n_out: usize,
        family: Family,
        sign_seed: u64,
    },
    /// d *= f'(z, y).
    ActBackward { d: Out<'a, B::Buf>, z: In<'a, B::Buf>, y: In<'a, B::Buf>, n: usize, act: Activation },
    /// Element losses into `el`, inv times each element's dL/dz into dz (inv = 1/elements for a
    /// loss averaged over the columns, 1/rows for one summed over them).
    Loss {
        z: In<'a, B::Buf>,
        y: In<'a, B::Buf>,
        t: In<'a, B::Buf>,
        dz: Out<'a, B::Buf>,
        el: Out<'a, B::Buf>,
        n: usize,
        loss: Loss,
        act: Activation,
        inv: f32,
    },
    /// A row loss (cosine proximity, KL divergence, multi-class cross-entropy) per row: the
    /// row's score into el[r], inv times its gradient in z into dz.
    LossRows {
        z: In<'a, B::Buf>,
        y: In<'a, B::Buf>,
        t: In<'a, B::Buf>,
        dz: Out<'a, B::Buf>,
        el: Out<'a, B::Buf>,
        rows: usize,
        cols: usize,
        loss: Loss,
        act: Activation,
        inv: f32,
    },
    /// Softmax cross-entropy per row of logits against class labels (as floats).
    SoftmaxCe {
        logits: In<'a, B::Buf>,
        labels: In<'a, B::Buf>,
        dz: Out<'a, B::Buf>,
        el: Out<'a, B::Buf>,
        rows: usize,
        classes: usize,
        inv: f32,
    },
    /// Per-column KL(rho || mean_j) into el.
    KlValue { mean: In<'a, B::Buf>, el: Out<'a, B::Buf>, cols: usize, rho: f32 },
    /// dy += beta/rows (-rho/p + (1-rho)/(1-p)) per column.
    KlGrad { dy: Out<'a, B::Buf>, mean: In<'a, B::Buf>, rows: usize, cols: usize, rho: f32, beta: f32 },
    /// |y| into el; dy += g sign(y).
    L1 { dy: Out<'a, B::Buf>, y: In<'a, B::Buf>, el: Out<'a, B::Buf>, n: usize, g: f32 },
    /// f'(z)^2 into out.
    ActGradSq { z: In<'a, B::Buf>, y: In<'a, B::Buf>, out: Out<'a, B::Buf>, n: usize, act: Activation },
    /// s_j = sum_i w_ij^2 of an n_in x n_out matrix.
    ColSqSums { w: In<'a, B::Buf>, s: Out<'a, B::Buf>, n_in: usize, n_out: usize },
    /// dz += 2 scale s_j f'(z) f''(z).
    ContractiveDz {
        dz: Out<'a, B::Buf>,
        z: In<'a, B::Buf>,
        y: In<'a, B::Buf>,
        s: In<'a, B::Buf>,
        rows: usize,
        cols: usize,
        act: Activation,
        scale: f32,
    },
    /// dw_ij += 2 scale fsq_j w_ij.
    ContractiveDw { dw: Out<'a, B::Buf>, w: In<'a, B::Buf>, fsq: In<'a, B::Buf>, n_in: usize, n_out: usize, scale: f32 },
    /// y += x.
    Add { x: In<'a, B::Buf>, y: Out<'a, B::Buf>, n: usize },
    /// out = a * b elementwise.
    Mul { a: In<'a, B::Buf>, b: In<'a, B::Buf>, out: Out<'a, B::Buf>, n: usize },
    /// Corrupted copy of x. Element i draws element `first + i` of counter `ctr` (`first`: where
    /// these rows start in the whole minibatch, in elements; 0 unless a step runs in shards).
    Corrupt {
        x: In<'a, B::Buf>,
        out: Out<'a, B::Buf>,
        range: Option<FeatureRange<'a, B>>,
        rows: usize,
        cols: usize,
        corruption: Corruption,
        seed: u64,
        ctr: u64,
        first: usize,
    },
    /// Samples of a stochastic layer; element i draws element `first + i` of counter `ctr`.
    Sample { y: In<'a, B::Buf>, s: Out<'a, B::Buf>, n: usize, kind: Stochastic, seed: u64, ctr: u64, first: usize },
    /// Fixed per-row noise on the code layer's z; y recomputed from z + noise. `bias`: the
    /// layer's bias where the backend's forward left it out of z ([`Backend::z_has_bias`]).
    CodeNoise {
        z: Out<'a, B::Buf>,
        y: Out<'a, B::Buf>,
        bias: Option<In<'a, B::Buf>>,
        ids: (&'a B::Ids, usize),
        rows: usize,
        cols: usize,
        act: Activation,
        sigma: f32,
        seed: u64,
    },
    /// dst = rows `ids` of src.
    GatherRows { src: In<'a, B::Buf>, ids: (&'a B::Ids, usize), dst: Out<'a, B::Buf>, rows: usize, cols: usize },
    /// Supervised rows (inputs, then targets) taken apart.
    SplitRows { src: In<'a, B::Buf>, x: Out<'a, B::Buf>, t: Out<'a, B::Buf>, rows: usize, cols: usize, tw: usize },
    /// x = v.
    Fill { x: Out<'a, B::Buf>, n: usize, v: f32 },
    /// Fused SGD (momentum, Nesterov, L2 decay `wd`) over n values of one piece
    /// ([`crate::optim::Piece`]); the gradient times gscale[0] (the clipping factor).
    Sgd {
        p: Out<'a, B::Buf>,
        g: In<'a, B::Buf>,
        v: Out<'a, B::Buf>,
        n: usize,
        wd: f32,
        gscale: &'a B::Buf,
        lr: f32,
        mu: f32,
        nesterov: bool,
    },
    /// Fused Adam, AdamW, RMSprop, AdaGrad, AdaDelta, AdaMax or Lion (`kind`) over n values of
    /// one piece, its state in m and v as [`crate::optim::update`] keeps it.
    Adaptive {
        kind: crate::optim::OptimizerKind,
        p: Out<'a, B::Buf>,
        g: In<'a, B::Buf>,
        m: Out<'a, B::Buf>,
        v: Out<'a, B::Buf>,
        n: usize,
        wd: f32,
        gscale: &'a B::Buf,
        lr: f32,
        b1: f32,
        b2: f32,
        eps: f32,
        /// The bias corrections 1 - b1^t and 1 - b2^t (Adam's, AdaMax's first).
        bc1: f64,
        bc2: f64,
    },
    /// factor[0] = min(1, max_norm / sqrt(acc[GradSq])); the slot is zeroed for the next step.
    ClipFactor { factor: &'a mut B::Buf, max_norm: f32 },
    /// acc[slot] += scale * sum of x.
    Sum { x: In<'a, B::Buf>, n: usize, slot: Slot, scale: f64 },
    /// acc[slot] += sum of x^2.
    SumSq { x: In<'a, B::Buf>, n: usize, slot: Slot },
    /// out[0] = scale * sum of x, summed in f64 (one value written into a buffer, e.g. a
    /// gradient entry; lat_sum_to, one block).
    SumTo { x: In<'a, B::Buf>, n: usize, out: Out<'a, B::Buf>, scale: f64 },
    /// VAE reparameterisation (lat_vae_reparam): eps ~ N(0, 1) by Philox (element k of draw
    /// `ctr`), zs = mu + exp(lv / 2) eps over rows * samples * latent stacked draws (see
    /// cuda/vae.cu for the layouts). `learned`: the head holds [mu | lv] per row, else only mu
    /// and the log-variance is `const_lv`.
    VaeReparam {
        head: In<'a, B::Buf>,
        eps: Out<'a, B::Buf>,
        zs: Out<'a, B::Buf>,
        rows: usize,
        samples: usize,
        latent: usize,
        learned: bool,
        const_lv: f32,
        seed: u64,
        ctr: u64,
        /// These rows are rows first.. of a minibatch of `batch` rows, whose draws they draw
        /// (a shard's; 0 and rows otherwise).
        first: usize,
        batch: usize,
    },
    /// Closed-form KL terms per latent unit into kl_el (rows x latent), and their gradient
    /// scaled by beta / rows written into dhead (lat_vae_kl).
    VaeKl {
        head: In<'a, B::Buf>,
        kl_el: Out<'a, B::Buf>,
        dhead: Out<'a, B::Buf>,
        rows: usize,
        latent: usize,
        learned: bool,
        const_lv: f32,
        beta: f32,
    },
    /// Backward through z = mu + sigma eps added to dhead, then times the head activation's
    /// derivative (lat_vae_reparam_backward).
    VaeReparamBackward {
        head_z: In<'a, B::Buf>,
        head_y: In<'a, B::Buf>,
        dzs: In<'a, B::Buf>,
        eps: In<'a, B::Buf>,
        dhead: Out<'a, B::Buf>,
        rows: usize,
        samples: usize,
        latent: usize,
        learned: bool,
        const_lv: f32,
        act: Activation,
    },
    /// Reconstruction NLL per data element of the n stacked rows (lat_vae_recon): rec_el
    /// (n x d_cols), scale * dNLL/dpre into dpre (n x p_cols), the global log-variances'
    /// element gradients into glob_el. `parts`: the part table, `VAE_PART_FIELDS` values per
    /// part, stored in an id buffer as the bit patterns of the kernel's ints (all are
    /// non-negative; see [`crate::backend::vae::part_table`]).
    VaeRecon {
        x: In<'a, B::Buf>,
        pre: In<'a, B::Buf>,
        extra: In<'a, B::Buf>,
        parts: (&'a B::Ids, usize),
        n_parts: usize,
        /// Global log-variances in `extra` (E) and data columns of the global parts (G), the
        /// extents of `extra` and `glob_el` (n x G).
        n_extra: usize,
        glob_cols: usize,
        rec_el: Out<'a, B::Buf>,
        dpre: Out<'a, B::Buf>,
        glob_el: Out<'a, B::Buf>,
        n: usize,
        rows: usize,
        d_cols: usize,
        p_cols: usize,
        scale: f32,
    },
}

/// What [`Backend::exact_contraction`] gives: the penalty, and per encoder layer dP/dz and
/// the direct dP/dW in the backend's buffers.
pub struct Contraction<S> {
    pub value: f64,
    pub dz: Vec<S>,
    pub dw: Vec<S>,
}

pub(crate) fn no_exact_contraction() -> crate::error::Error {
    crate::error::Error::Unsupported(
        "the exact contractive penalty (the whole encoder's Jacobian, crate::contractive) runs on the CPU only; this backend runs the per-layer penalty, so it refuses rather than train another objective (switch the exact mode off, or train on the CPU)"
            .into(),
    )
}

/// The arguments of [`Backend::loss_sum`]: [`Op::Loss`]'s and the slot its sum goes to.
pub struct LossArgs<'a, B: Backend> {
    pub z: In<'a, B::Buf>,
    pub y: In<'a, B::Buf>,
    pub t: In<'a, B::Buf>,
    pub dz: Out<'a, B::Buf>,
    pub el: Out<'a, B::Buf>,
    pub n: usize,
    /// Columns of a row (the fused pass works on whole rows).
    pub cols: usize,
    pub loss: Loss,
    pub act: Activation,
    pub inv: f32,
    pub slot: Slot,
    pub scale: f64,
}

/// [`Backend::loss_sum`] as two kernels: the element losses and gradients, then their sum.
pub fn loss_sum_by_elements<B: Backend>(be: &B, a: LossArgs<'_, B>) -> Result<()> {
    let (n, z, y, t, el) = (a.n, a.z, a.y, a.t, a.el);
    be.run(Op::Loss { z, y, t, dz: a.dz, el: (&mut *el.0, el.1), n, loss: a.loss, act: a.act, inv: a.inv })?;
    be.run(Op::Sum { x: (&*el.0, el.1), n, slot: a.slot, scale: a.scale })
}

/// The arguments of [`Backend::vae_recon`]: [`Op::VaeRecon`]'s, the reconstruction its part
/// table describes, and where the sums go.
pub struct VaeReconArgs<'a, B: Backend> {
    pub rec: &'a Reconstruction,
    pub x: In<'a, B::Buf>,
    pub pre: In<'a, B::Buf>,
    pub extra: In<'a, B::Buf>,
    pub parts: (&'a B::Ids, usize),
    pub n_parts: usize,
    pub glob_cols: usize,
    pub rec_el: Out<'a, B::Buf>,
    pub dpre: Out<'a, B::Buf>,
    pub glob_el: Out<'a, B::Buf>,
    pub n: usize,
    pub rows: usize,
    pub d_cols: usize,
    pub p_cols: usize,
    pub scale: f32,
    pub sum: (Slot, f64),
    pub dextra: Option<Out<'a, B::Buf>>,
}

/// [`Backend::vae_recon`] as kernels: the element terms, their sum, each global part's range of
/// element gradients summed into its log-variance's gradient.
pub fn vae_recon_by_elements<B: Backend>(be: &B, a: VaeReconArgs<'_, B>) -> Result<()> {
    let n = a.n;
    let (rec_el, glob_el) = (a.rec_el, a.glob_el);
    be.run(Op::VaeRecon {
        x: a.x,
        pre: a.pre,
        extra: a.extra,
        parts: a.parts,
        n_parts: a.n_parts,
        n_extra: a.rec.extra_params(),
        glob_cols: a.glob_cols,
        rec_el: (&mut *rec_el.0, rec_el.1),
        dpre: a.dpre,
        glob_el: (&mut *glob_el.0, glob_el.1),
        n,
        rows: a.rows,
        d_cols: a.d_cols,
        p_cols: a.p_cols,
        scale: a.scale,
    })?;
    be.run(Op::Sum { x: (&*rec_el.0, rec_el.1), n: n * a.d_cols, slot: a.sum.0, scale: a.sum.1 })?;
    if let Some(g) = a.dextra {
        let mut gcol = 0;
        let globals = a.rec.parts.iter().filter(|p| p.kind == crate::distribution::DistKind::GaussianGlobal);
        for (e, part) in globals.enumerate() {
            let x = (&*glob_el.0, glob_el.1 + gcol * n);
            be.run(Op::SumTo { x, n: part.size * n, out: (&mut *g.0, g.1 + e), scale: 1.0 })?;
            gcol += part.size;
        }
    }
    Ok(())
}

/// Values per part in the VAE's part table (LAT_VAE_PART_FIELDS of cuda/vae.cu).
pub const VAE_PART_FIELDS: usize = 8;

/// What a device backend provides. Errors are the library's (Unsupported, OutOfMemory,
/// Internal with the driver's message); nothing here panics on a caller's input.
pub trait Backend: Sized + Send + Sync {
    /// A buffer of f32 on the device.
    type Buf: Send + Sync;
    /// A buffer of u32 on the device (row indices, segment ends).
    type Ids: Send + Sync;

    /// Runs one step of a model with this backend entered: the CPU runs it on its pool, so the
    /// step's primitives start no hand-off each; a device runs it as it is.
    fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        f()
    }

    /// [`Backend::enter`] for a step that mutates the model holding the backend (`backend`
    /// finds it there): the training loop's gather, step and update of one minibatch.
    fn enter_mut<T: Send, R: Send>(this: &mut T, backend: fn(&T) -> &Self, f: impl FnOnce(&mut T) -> R + Send) -> R {
        let _ = backend;
        f(this)
    }

    /// An elementwise loss of the output layer and its gradient: dz = inv * dL/dz per element,
    /// and scale times the summed element losses added to `slot` (`el` is scratch). A backend
    /// may fuse the two (the CPU does).
    fn loss_sum(&self, a: LossArgs<'_, Self>) -> Result<()> {
        loss_sum_by_elements(self, a)
    }

    /// A VAE's reconstruction terms over the n stacked rows: scale * dNLL/dpre into dpre, the
    /// summed NLL times `sum.1` added to slot `sum.0`, and (with `dextra`) the global
    /// log-variances' gradients written at that view of the gradient buffer. `rec_el` and
    /// `glob_el` are scratch. A backend may fuse it (the CPU runs the CPU VAE's row formula).
    fn vae_recon(&self, a: VaeReconArgs<'_, Self>) -> Result<()> {
        vae_recon_by_elements(self, a)
    }

    /// Backends for the data-parallel shards of a step of `work_rows` rows (through the widest
    /// products), each with its own accumulators, run in parallel from inside
    /// [`Backend::enter`]: the CPU gives `parallel::shard_count` one-thread backends, computing
    /// on the threads that call them (a shard's products single-threaded); a device runs the whole minibatch at once (None).
    fn shards(&self, _work_rows: usize) -> Option<Vec<Self>> {
        None
    }

    /// out = sum_k w_k parts_k over n values (shard gradients combined by their rows' share),
    /// summed in the order given. Only for backends that make [`Backend::shards`].
    fn combine(&self, _parts: &[(&Self::Buf, f32)], _out: &mut Self::Buf, _n: usize) -> Result<()> {
        Err(crate::error::Error::Internal("this backend runs no shards".into()))
    }

    /// Adds `from`'s accumulators to this backend's (a shard's sums to the step's).
    fn merge_slots(&self, _from: &Self) -> Result<()> {
        Err(crate::error::Error::Internal("this backend runs no shards".into()))
    }

    fn alloc(&self, n: usize) -> Result<Self::Buf>;
    fn alloc_ids(&self, n: usize) -> Result<Self::Ids>;
    fn upload(&self, src: &[f32], dst: Out<'_, Self::Buf>) -> Result<()>;
    fn upload_ids(&self, src: &[u32], dst: &mut Self::Ids) -> Result<()>;
    fn download(&self, src: In<'_, Self::Buf>, dst: &mut [f32]) -> Result<()>;
    fn copy(&self, src: In<'_, Self::Buf>, dst: Out<'_, Self::Buf>, n: usize) -> Result<()>;
    /// Streams `n` floats, written by `fill` into a pinned staging buffer (`slot` 0 or 1), to
    /// `dst` on the copy engine. The copy waits for the work already queued (which may still read
    /// `dst`) and overlaps the work queued after this call; [`Backend::await_upload`] orders it
    /// before the work that reads `dst`. A slot's staging buffer is reused once its previous
    /// copy is done.
    fn upload_async(
        &self,
        slot: usize,
        n: usize,
        fill: &mut dyn FnMut(&mut [f32]),
        dst: Out<'_, Self::Buf>,
    ) -> Result<()>;
    /// Makes the work queued from now on wait for slot's last upload_async.
    fn await_upload(&self, slot: usize) -> Result<()>;
    /// Whether this backend's buffers are host memory (the CPU): a fit then reads its
    /// minibatches from the caller's rows in place rather than copy them all to the device.
    fn host_memory(&self) -> bool {
        false
    }
    /// Free device memory in bytes (None: as much as the host has).
    fn free_memory(&self) -> Option<u64>;
    fn gemm(&self, g: Gemm, a: &Self::Buf, b: &Self::Buf, c: &mut Self::Buf) -> Result<()>;
    /// A layer's forward over `rows` rows: z = x W + b (or a functional connection's sums),
    /// y = f(z); z keeps its bias unless [`Backend::z_has_bias`] says otherwise. A memory
    /// layer has none (Unsupported).
    #[allow(clippy::too_many_arguments)]
    fn layer_forward(
        &self,
        l: &Dense,
        params: &Self::Buf,
        x: &Self::Buf,
        z: &mut Self::Buf,
        y: &mut Self::Buf,
        rows: usize,
    ) -> Result<()> {
        super::dense::forward(self, l, params, x, z, y, rows)
    }

    /// A layer's backward from dL/dz: writes dW and db into `grads` (adds dW when the layer
    /// accumulates: tied weights), and when `dx` is given dL/dx, times f'(z) of the layer
    /// `below` when that is given. `ones`: at least `rows` ones.
    #[allow(clippy::too_many_arguments)]
    fn layer_backward(
        &self,
        l: &Dense,
        params: &Self::Buf,
        grads: &mut Self::Buf,
        x: &Self::Buf,
        dz: &Self::Buf,
        ones: &Self::Buf,
        dx: Option<&mut Self::Buf>,
        below: Option<Below<'_, Self>>,
        rows: usize,
    ) -> Result<()> {
        super::dense::backward(self, l, params, grads, x, dz, ones, dx, below, rows)
    }

    /// The exact contractive penalty of the encoder `layers` (crate::contractive: lambda times
    /// the mean over rows of ||dh/dx||_F^2 through the whole encoder) from its forward pass
    /// (`z[i]`, `y[i]` per encoder layer): the value, dP/dz per layer (joining its dL/dz) and
    /// the direct dP/dW per layer (added after its backward). UNSUPPORTED unless the backend
    /// runs it ([`Backend::runs_exact_contraction`]: the CPU does).
    #[allow(clippy::too_many_arguments)]
    fn exact_contraction(
        &self,
        _layers: &[Dense],
        _params: &Self::Buf,
        _z: &[&Self::Buf],
        _y: &[&Self::Buf],
        _rows: usize,
        _lambda: f32,
    ) -> Result<Contraction<Self::Buf>> {
        Err(no_exact_contraction())
    }

    /// BILBO's KL (Fyffe 2019) of a constant-variance posterior from the batch's own fitted
    /// prior (`vae::batch_prior_kl`): per row and latent unit the term
    /// 1/2 ln(v_j / s^2) into `kl_el` (rows x J; their sum is the batch's KL), and the KL
    /// gradient beta / rows * mu_rj / v_j into `dhead` (overwritten, as [`Op::VaeKl`] does).
    /// UNSUPPORTED unless the backend runs it ([`Backend::runs_batch_prior`]: the CPU does).
    #[allow(clippy::too_many_arguments)]
    fn vae_batch_prior_kl(
        &self,
        _head: In<'_, Self::Buf>,
        _kl_el: Out<'_, Self::Buf>,
        _dhead: Out<'_, Self::Buf>,
        _rows: usize,
        _latent: usize,
        _const_lv: f32,
        _beta: f32,
    ) -> Result<()> {
        Err(crate::error::Error::Unsupported(
            "BILBO's batch-fitted prior (Fyffe 2019) runs on the CPU only; the GPU backend trains the ELBO".into(),
        ))
    }

    /// Whether [`Backend::vae_batch_prior_kl`] runs here (placing a BILBO VAE asks it first).
    fn runs_batch_prior(&self) -> bool {
        false
    }

    /// Whether [`Backend::exact_contraction`] runs here (placement asks it first).
    fn runs_exact_contraction(&self) -> bool {
        false
    }

    /// Adds v to accumulator `slot` (a value computed on the host side of a backend that has
    /// one: the CPU's exact contractive penalty).
    fn add_slot(&self, _slot: Slot, _v: f64) -> Result<()> {
        Err(crate::error::Error::Internal("this backend adds no host values to its slots".into()))
    }

    /// Whether [`Backend::layer_forward`] leaves layer `l`'s bias in z (the kernels always do;
    /// only a consumer of z's value, such as code noise, needs to know).
    fn z_has_bias(&self, _l: &Dense) -> bool {
        true
    }
    /// Whether this backend runs layer `l` (its forward and backward primitives): every layer
    /// but a memory layer, whose state carries row after row, unless the backend says so (the
    /// CPU does). Placing a network asks this first, so a GPU refuses a memory network at once.
    fn runs(&self, l: &Dense) -> bool {
        l.memory().is_none()
    }

    /// A memory layer's forward over `rows` rows taken as a sequence (`layer::Memory`): `state`
    /// holds m(t-1) of the first row and is left holding m of the last, `history` (for
    /// training) receives every row's m(t-1); y = f(z). UNSUPPORTED unless the backend runs
    /// state that carries row after row (the CPU does; a GPU does not).
    #[allow(clippy::too_many_arguments)]
    fn memory_forward(
        &self,
        _l: &Dense,
        _params: &Self::Buf,
        _x: &Self::Buf,
        _z: &mut Self::Buf,
        _y: &mut Self::Buf,
        _rows: usize,
        _state: &mut Self::Buf,
        _history: Option<&mut Self::Buf>,
    ) -> Result<()> {
        Err(super::dense::memory())
    }

    /// A memory layer's backward from dL/dz and the history its forward saved (one-step
    /// truncated), as [`Backend::layer_backward`].
    #[allow(clippy::too_many_arguments)]
    fn memory_backward(
        &self,
        _l: &Dense,
        _params: &Self::Buf,
        _grads: &mut Self::Buf,
        _x: &Self::Buf,
        _dz: &Self::Buf,
        _history: &Self::Buf,
        _dx: Option<&mut Self::Buf>,
        _below: Option<Below<'_, Self>>,
        _rows: usize,
    ) -> Result<()> {
        Err(super::dense::memory())
    }

    /// Dense forward: z = alpha op(a) op(w) + beta z (the GEMM `g`, rows of z contiguous), then
    /// z += bias per row and y = act(z). A backend may fuse the three (the CPU does, leaving z
    /// without the bias for identity and ReLU, whose derivatives read y).
    #[allow(clippy::too_many_arguments)]
    fn dense(
        &self,
        g: Gemm,
        a: &Self::Buf,
        w: &Self::Buf,
        z: &mut Self::Buf,
        bias: In<'_, Self::Buf>,
        act: Activation,
        y: Out<'_, Self::Buf>,
    ) -> Result<()> {
        debug_assert_eq!(g.ldc, g.n);
        self.gemm(g, a, w, z)?;
        self.run(Op::BiasAct { z: (z, g.c_off), b: bias, y, rows: g.m, cols: g.n, act })
    }
    fn run(&self, op: Op<'_, Self>) -> Result<()>;
    /// Zeroes the accumulators.
    fn reset_slots(&self) -> Result<()>;
    /// Reads the accumulators (waits for the device).
    fn read_slots(&self) -> Result<[f64; SLOTS]>;
    /// Waits until the device has finished all queued work.
    fn synchronize(&self) -> Result<()>;
}
