//! Variational autoencoder (Kingma & Welling 2013), with Deeplearning4j's `VariationalAutoencoder`
//! options and a few beyond them.
//!
//! Encoder x -> dense hidden layers -> one head of width 2J: the pre-outputs of the posterior mean
//! and log-variance of q(z|x) = N(mu, diag(sigma^2)), both passed through `pzx_activation` (DL4J
//! applies it to both; its two heads are the two column blocks of ours). With a constant posterior
//! variance (Fyffe 2019) the head has width J: the mean only. Decoder z -> dense hidden layers ->
//! a linear layer writing the pre-output of the [`Reconstruction`] distribution p(x|z).
//!
//! Training minimises the negative ELBO per example, E_q[-log p(x|z)] + beta KL(q(z|x) || N(0, I)),
//! the expectation by L reparameterised samples z = mu + sigma * eps (the encoder runs once; the
//! decoder runs once over the L x rows stacked samples), the KL in closed form:
//! KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).
//! Gradients through z (Kingma & Welling eq. 10): dz/dmu = 1, dz/dlogvar = eps * sigma / 2.
//!
//! With a constant posterior variance s^2 the objective may instead be Fyffe's BILBO (Batch
//! Information Lower Bound, arXiv:1912.10309; the form of google-research's
//! `robust_loss/vae.py`, flag `bilbo`): the ELBO averaged over the batch under the prior
//! N(0, diag(v)) fitted to the batch, v_j = m_j + s^2 with m_j = mean_batch mu_j^2, whose KL term
//! has the closed form 1/2 sum_j ln(1 + m_j / s^2) (see [`Objective::Bilbo`]).

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::ops::Range;

use crate::activation::Activation;
use crate::backend::vae::{host_decode, host_encode};
use crate::distribution::Reconstruction;
use crate::error::{Result, invalid, shape, try_zeros};
use crate::init::Init;
use crate::layer::{Dense, Stochastic};
use crate::network::{LayerSpec, MAX_LAYERS, MAX_PARAMS, MAX_UNITS};
use crate::rng::{Rng, StepDraws, stream};
use crate::tensor::Matrix;

/// Rows per block of the per-row reconstruction pass: fixed, so sums do not depend on threads.
const RECON_BLOCK: usize = 16;
/// Most draws per row a sampling call takes (each row's draws are decoded in one pass).
pub const MAX_SAMPLES: usize = 1 << 16;
/// Checks a sampling call's draws per row against 1..=[`MAX_SAMPLES`]: done before anything is
/// allocated by the count.
pub fn check_samples(samples: usize) -> Result<()> {
    if samples == 0 || samples > MAX_SAMPLES {
        return Err(invalid!("samples {samples} must be in 1 to {MAX_SAMPLES}"));
    }
    Ok(())
}

/// Stacked decoder rows per inference block.
const INFER_STACK: usize = 8192;

/// The posterior's variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Posterior {
    /// Learned per example and latent unit (the encoder's second head): the standard VAE.
    Learned,
    /// A constant log-variance shared by every example and unit, not learned: the encoder
    /// outputs only the mean (Fyffe 2019, "There and back again", the constant-variance optimum
    /// behind BILBO).
    Constant { log_variance: f32 },
}

/// What training maximises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Objective {
    /// The ELBO under the prior N(0, I) (Kingma & Welling).
    #[default]
    Elbo,
    /// Fyffe's BILBO, for a constant posterior variance s^2: the batch's mean ELBO under the
    /// prior N(0, diag(v)) fitted to the batch, v_j = m_j + s^2, m_j = mean_batch mu_j^2 (the
    /// Gaussian closest to the batch's aggregate posterior). Its mean KL is, exactly,
    /// 1/2 sum_j ln(1 + m_j / s^2) (KL(N(mu, s^2) || N(0, v)) = 1/2 [(s^2 + mu^2)/v - 1 +
    /// ln(v / s^2)], averaged over the batch with v = m + s^2), with gradient
    /// mu_rj / (rows v_j) in mu_rj. The objective of a batch is not a sum over its rows, so
    /// minibatches are not sharded across threads. After a fit the trainer stores the prior
    /// fitted to the training rows ([`Vae::fit_prior`]), which the ELBO, the log-likelihood and
    /// prior sampling then use: a fixed generative model N(0, diag(v)) -> p(x|z).
    Bilbo,
}

impl Objective {
    /// The `LATENT_VAE_OBJECTIVE_*` code.
    pub fn code(self) -> i32 {
        self as i32
    }
    pub fn from_code(c: i32) -> Result<Objective> {
        match c {
            0 => Ok(Objective::Elbo),
            1 => Ok(Objective::Bilbo),
            _ => Err(invalid!("VAE objective code {c} is out of range (0 to 1)")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Objective::Elbo => "elbo",
            Objective::Bilbo => "bilbo",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VaeSpec {
    pub input_dim: usize,
    /// Dense hidden layers of the encoder, x -> ... (DL4J's `encoderLayerSizes`).
    pub encoder: Vec<LayerSpec>,
    /// J, the latent width (DL4J's `nOut`).
    pub latent_dim: usize,
    /// Dense hidden layers of the decoder, z -> ... (DL4J's `decoderLayerSizes`).
    pub decoder: Vec<LayerSpec>,
    /// Applied to the mean and log-variance pre-outputs (DL4J's `pzxActivationFn`).
    pub pzx_activation: Activation,
    pub reconstruction: Reconstruction,
    /// L, samples of z per example in training (DL4J's `numSamples`).
    pub num_samples: usize,
    /// Weight of the KL term (beta-VAE; 1 is the ELBO).
    pub beta: f32,
    /// The KL weight rises linearly from 0 to beta over this many training steps (0 = off).
    pub kl_warmup_steps: u64,
    pub posterior: Posterior,
    /// ELBO (default) or BILBO (needs a constant posterior variance).
    pub objective: Objective,
    pub init: Init,
    pub seed: u64,
}

impl VaeSpec {
    /// A Bernoulli VAE input -> encoder... -> [latent] -> decoder... -> input, every hidden layer
    /// with `activation`; the other options at their defaults.
    pub fn new(
        input_dim: usize,
        encoder: &[usize],
        latent_dim: usize,
        decoder: &[usize],
        activation: Activation,
    ) -> VaeSpec {
        VaeSpec {
            input_dim,
            encoder: encoder.iter().map(|&u| LayerSpec::new(u, activation)).collect(),
            latent_dim,
            decoder: decoder.iter().map(|&u| LayerSpec::new(u, activation)).collect(),
            pzx_activation: Activation::Identity,
            reconstruction: Reconstruction::bernoulli(input_dim),
            num_samples: 1,
            beta: 1.0,
            kl_warmup_steps: 0,
            posterior: Posterior::Learned,
            objective: Objective::Elbo,
            init: Init::Auto,
            seed: 0,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.encoder.len() + self.decoder.len() + 2 > MAX_LAYERS {
            return Err(invalid!("{} layers is more than {MAX_LAYERS}", self.encoder.len() + self.decoder.len() + 2));
        }
        let widths = std::iter::once(("input", self.input_dim))
            .chain(self.encoder.iter().map(|l| ("encoder layer", l.units)))
            .chain(std::iter::once(("latent", self.latent_dim)))
            .chain(self.decoder.iter().map(|l| ("decoder layer", l.units)));
        for (what, u) in widths {
            if u == 0 || u > MAX_UNITS {
                return Err(invalid!("{what} width {u} must be in 1 to {MAX_UNITS}"));
            }
        }
        if let Some(l) = self.encoder.iter().chain(&self.decoder).find(|l| !l.connection.is_dense()) {
            return Err(invalid!(
                "a VAE's hidden layers are dense ({} units asked to be {})",
                l.units,
                l.connection.name()
            ));
        }
        if let Some(l) = self.encoder.iter().chain(&self.decoder).find(|l| !l.stochastic.is_none()) {
            return Err(invalid!("a VAE's hidden layers are deterministic ({} units asked to sample)", l.units));
        }
        self.reconstruction.validate(self.input_dim)?;
        if self.num_samples == 0 || self.num_samples > 4096 {
            return Err(invalid!("samples per example {} must be in 1 to 4096", self.num_samples));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(invalid!("KL weight beta {} must be >= 0 and finite", self.beta));
        }
        if let Posterior::Constant { log_variance } = self.posterior
            && !(log_variance.is_finite() && log_variance.abs() <= 30.0)
        {
            return Err(invalid!("constant posterior log-variance {log_variance} must be finite, within [-30, 30]"));
        }
        if self.objective == Objective::Bilbo && self.posterior == Posterior::Learned {
            return Err(invalid!(
                "the BILBO objective needs a constant posterior variance (Fyffe 2019): set one, or train with the ELBO"
            ));
        }
        Ok(())
    }

    fn head_width(&self) -> usize {
        match self.posterior {
            Posterior::Learned => 2 * self.latent_dim,
            Posterior::Constant { .. } => self.latent_dim,
        }
    }
}

/// Per-example parts of the negative ELBO, as means over rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Elbo {
    /// E_q[-log p(x|z)] + KL: the negative ELBO (DL4J's score).
    pub neg_elbo: f64,
    /// E_q[-log p(x|z)], averaged over the samples.
    pub reconstruction: f64,
    /// KL(q(z|x) || N(0, I)), closed form.
    pub kl: f64,
}

/// Sums over the rows of one training step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VaeStepLoss {
    /// Reconstruction NLL summed over rows (each row's the mean over its L samples).
    pub recon_sum: f64,
    /// Closed-form KL summed over rows.
    pub kl_sum: f64,
}

/// Buffers of one forward pass, sized for `rows` examples and `samples` draws each: the `Cpu`
/// backend's pass of a VAE, and each stacked draw's reconstruction NLL.
pub struct VaeWorkspace {
    pass: crate::backend::vae::Pass<crate::backend::Cpu>,
    nll: Vec<f64>,
}

impl crate::spare::Values for VaeWorkspace {
    fn values(&self) -> usize {
        self.pass.values() + 2 * self.nll.len()
    }
}

#[derive(Clone, Debug)]
pub struct Vae {
    spec: VaeSpec,
    /// Encoder hidden layers, the head, decoder hidden layers, the output layer.
    layers: Vec<Dense>,
    /// Index of the head (= number of encoder hidden layers).
    head: usize,
    /// Offset of the extra parameters (global log-variances) at the end of the buffer.
    extra: usize,
    params: crate::backend::cpu::Lined,
    threads: usize,
    /// Training steps taken (the KL warm-up's clock); saved with the model.
    steps: u64,
    /// The posterior as plain values, read by the hot loops instead of `spec.posterior`:
    /// `Posterior::Learned` leaves the enum's f32 payload uninitialised, and the compiler may
    /// compute with it speculatively (it hoisted exp(log_variance / 2) out of the
    /// reparameterisation loop, which valgrind reports as a jump on an uninitialised value).
    learned: bool,
    /// The constant log-variance (0 when learned).
    const_lv: f32,
    /// BILBO: the prior's log-variances ln v_j fitted to the training rows ([`Vae::fit_prior`]);
    /// empty: N(0, I) (ELBO), or not fitted yet (BILBO: scores fit it to the rows they score).
    prior_lv: Vec<f32>,
    /// The scaling fitted on the training data and the serving mode ([`crate::preprocess`]).
    input: crate::preprocess::InputScaling,
    /// Workspaces of inference calls, by (rows, samples), kept for the next call of that shape.
    spare: crate::spare::Spare<(usize, usize), VaeWorkspace>,
}

impl Vae {
    pub fn new(spec: VaeSpec) -> Result<Vae> {
        let mut vae = Vae::structure(spec)?;
        let mut rng = Rng::new(vae.spec.seed, stream::INIT);
        for l in vae.layers.clone() {
            let (w, b) = vae.params.split_at_mut(l.b);
            vae.spec.init.fill(
                l.activation,
                l.n_in,
                l.n_out,
                &mut w[l.w..l.w + l.n_in * l.n_out],
                Some(&mut b[..l.n_out]),
                &mut rng,
            );
        }
        Ok(vae)
    }

    pub fn from_params(spec: VaeSpec, params: &[f32]) -> Result<Vae> {
        let mut vae = Vae::structure(spec)?;
        vae.set_params(params)?;
        Ok(vae)
    }

    fn structure(spec: VaeSpec) -> Result<Vae> {
        spec.validate()?;
        let linear = |u| LayerSpec::new(u, Activation::Identity);
        let mut dims = vec![linear(spec.input_dim)];
        dims.extend(spec.encoder.iter().copied());
        dims.push(LayerSpec::new(spec.head_width(), spec.pzx_activation));
        let head = spec.encoder.len();
        let mut layers = Vec::new();
        let mut offset = 0usize;
        let overflow = || invalid!("the VAE has more than {MAX_PARAMS} parameters");
        let mut add = |n_in: usize, out: LayerSpec, layers: &mut Vec<Dense>| -> Result<()> {
            let w = offset;
            let b = n_in.checked_mul(out.units).and_then(|m| m.checked_add(offset)).ok_or_else(overflow)?;
            offset = b.checked_add(out.units).filter(|&o| o <= MAX_PARAMS).ok_or_else(overflow)?;
            layers.push(Dense {
                n_in,
                n_out: out.units,
                activation: out.activation,
                w,
                b,
                tied: false,
                accumulate_dw: false,
                stochastic: Stochastic::None,
                connection: Default::default(),
                sign_seed: 0,
            });
            Ok(())
        };
        for i in 1..dims.len() {
            add(dims[i - 1].units, dims[i], &mut layers)?;
        }
        let mut prev = spec.latent_dim;
        for l in &spec.decoder {
            add(prev, *l, &mut layers)?;
            prev = l.units;
        }
        add(prev, linear(spec.reconstruction.param_width()), &mut layers)?;
        let extra = offset;
        let total = extra + spec.reconstruction.extra_params();
        let (learned, const_lv) = match spec.posterior {
            Posterior::Learned => (true, 0.0),
            Posterior::Constant { log_variance } => (false, log_variance),
        };
        Ok(Vae {
            spec,
            layers,
            head,
            extra,
            params: crate::backend::cpu::Lined::zeros(total)?,
            threads: 0,
            steps: 0,
            learned,
            const_lv,
            prior_lv: Vec::new(),
            input: Default::default(),
            spare: Default::default(),
        })
    }

    crate::network::model_accessors!(VaeSpec);
    pub fn latent_dim(&self) -> usize {
        self.spec.latent_dim
    }
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        crate::tensor::check_params(p, self.params.len(), "the VAE")?;
        self.params.copy_from_slice(p);
        Ok(())
    }
    /// Training steps taken so far (the clock of the KL warm-up).
    pub fn steps(&self) -> u64 {
        self.steps
    }
    pub fn set_steps(&mut self, s: u64) {
        self.steps = s;
    }
    /// Changes the training objective (validated as the spec is; BILBO needs a constant
    /// posterior variance). Forgets a fitted prior.
    pub fn set_objective(&mut self, objective: Objective) -> Result<()> {
        let mut spec = self.spec.clone();
        spec.objective = objective;
        spec.validate()?;
        self.spec = spec;
        self.prior_lv.clear();
        Ok(())
    }
    /// The prior's log-variances fitted by [`Vae::fit_prior`] (BILBO), one per latent unit;
    /// empty for the N(0, I) prior or a BILBO VAE whose prior is not fitted yet.
    pub fn prior_log_variances(&self) -> &[f32] {
        &self.prior_lv
    }
    /// Sets the fitted prior's log-variances (a model file's): latent_dim finite values within
    /// [-60, 60], for a BILBO VAE only; empty clears them.
    pub fn set_prior_log_variances(&mut self, lv: &[f32]) -> Result<()> {
        if !lv.is_empty() {
            if self.spec.objective != Objective::Bilbo {
                return Err(invalid!("a fitted prior belongs to a BILBO VAE; this one trains with the ELBO"));
            }
            if lv.len() != self.spec.latent_dim {
                return Err(shape!("{} prior log-variances for {} latent units", lv.len(), self.spec.latent_dim));
            }
            if let Some(v) = lv.iter().find(|v| !(v.is_finite() && v.abs() <= 60.0)) {
                return Err(invalid!("prior log-variance {v} must be finite, within [-60, 60]"));
            }
        }
        self.prior_lv = lv.to_vec();
        Ok(())
    }
    /// BILBO: fits the prior to the rows of x, v_j = mean_rows mu_j^2 + s^2 (the batch prior of
    /// BILBO over all of x), and keeps it for the ELBO, log-likelihood and prior sampling. The
    /// trainer calls it on the training rows after a fit. INVALID_ARGUMENT for an ELBO VAE.
    pub fn fit_prior(&mut self, x: &Matrix) -> Result<()> {
        if self.spec.objective != Objective::Bilbo {
            return Err(invalid!("only a BILBO VAE fits its prior; this one has the N(0, I) prior of the ELBO"));
        }
        if x.rows() == 0 {
            return Err(invalid!("no rows to fit the prior to"));
        }
        let v = self.batch_prior(x, None)?;
        let lv: Vec<f32> = v.iter().map(|v| v.ln() as f32).collect();
        self.set_prior_log_variances(&lv)
    }
    /// The prior variances v_j = mean_rows mu_j^2 + s^2 of BILBO over the rows of x.
    fn batch_prior(&self, x: &Matrix, inside: Option<usize>) -> Result<Vec<f64>> {
        let (mean, _) = self.encode_in(x, inside)?;
        Ok(batch_prior(mean.as_slice(), x.rows(), self.latent_dim(), self.const_lv))
    }
    /// The prior variances an evaluation of x uses: N(0, I) (None) for the ELBO; for BILBO the
    /// fitted prior, or, before one is fitted, the prior fitted to x itself (BILBO over x).
    fn eval_prior(&self, x: &Matrix) -> Result<Option<Vec<f64>>> {
        Ok(match self.spec.objective {
            Objective::Elbo => None,
            Objective::Bilbo if !self.prior_lv.is_empty() => {
                Some(self.prior_lv.iter().map(|&l| (l as f64).exp()).collect())
            }
            Objective::Bilbo => Some(self.batch_prior(x, None)?),
        })
    }
    /// Whether a step's rows may run in data-parallel shards (see [`crate::Network::shardable`]):
    /// not under BILBO, whose KL is a function of the whole minibatch's posterior means.
    pub fn shardable(&self) -> bool {
        self.spec.objective != Objective::Bilbo
    }

    /// Rows that `rows` examples put through the widest products: the decoder sees each example
    /// once per sample.
    pub fn work_rows(&self, rows: usize) -> usize {
        rows * self.spec.num_samples
    }

    /// The KL weight of the next training step.
    pub fn kl_weight(&self) -> f32 {
        let s = &self.spec;
        if s.kl_warmup_steps == 0 || self.steps >= s.kl_warmup_steps {
            s.beta
        } else {
            s.beta * (self.steps + 1) as f32 / s.kl_warmup_steps as f32
        }
    }
    /// Weight matrices (weight decay applies there; not to biases or global log-variances).
    pub fn weight_ranges(&self) -> Vec<Range<usize>> {
        self.layers.iter().map(|l| l.w..l.w + l.n_in * l.n_out).collect()
    }
    /// The learned log-variances of the global-variance Gaussian parts.
    pub fn global_log_variances(&self) -> &[f32] {
        &self.params[self.extra..]
    }

    /// Index of the q(z|x) head in [`Vae::layers`] (= number of encoder hidden layers).
    pub fn head_index(&self) -> usize {
        self.head
    }
    /// Offset of the global log-variances in the parameter buffer (the end of the last layer).
    pub fn extra_offset(&self) -> usize {
        self.extra
    }

    /// The parameters as the CPU backend's buffer (read in place by host inference).
    pub(crate) fn param_vec(&self) -> &crate::backend::cpu::Lined {
        &self.params
    }

    /// Buffers for `rows` examples with `samples` draws each.
    pub fn workspace(&self, rows: usize, samples: usize) -> Result<VaeWorkspace> {
        let stacked = crate::tensor::checked_len(rows, samples)?;
        Ok(VaeWorkspace { pass: crate::backend::vae::host_pass(self, rows, samples)?, nll: try_zeros(stacked)? })
    }

    /// [`Vae::workspace`] for an inference call: one kept from an earlier call of the shape
    /// ([`crate::spare`]), back to the VAE when the call drops it.
    fn kept_workspace(
        &self,
        rows: usize,
        samples: usize,
    ) -> Result<crate::spare::Kept<'_, (usize, usize), VaeWorkspace>> {
        self.spare.get((rows, samples), || self.workspace(rows, samples))
    }

    /// (mu, log-variance) of row r's unit j from the head's output.
    #[inline]
    fn posterior(&self, head: &[f32], r: usize, j: usize) -> (f32, f32) {
        let jd = self.spec.latent_dim;
        if self.learned { (head[r * 2 * jd + j], head[r * 2 * jd + jd + j]) } else { (head[r * jd + j], self.const_lv) }
    }

    /// z = mu + sigma eps from the noise already in ws.pass.eps, for `samples` draws of each of `rows`
    /// examples, stacked draw-major (draw l of row r at stacked row l * rows + r).
    fn reparameterise(&self, ws: &mut VaeWorkspace, rows: usize, samples: usize) {
        let jd = self.spec.latent_dim;
        let crate::backend::vae::Pass { y, eps, zs, .. } = &mut ws.pass;
        let head = &y[self.head];
        for l in 0..samples {
            for r in 0..rows {
                for j in 0..jd {
                    let (mu, lv) = self.posterior(head, r, j);
                    let k = (l * rows + r) * jd + j;
                    zs[k] = mu + (0.5 * lv).exp() * eps[k];
                }
            }
        }
    }

    /// Reconstruction NLL of each stacked row against its example (row i % rows of x) into
    /// ws.nll.
    fn recon_nll(&self, x: &[f32], rows: usize, n: usize, ws: &mut VaeWorkspace, threads: usize) {
        let d = self.spec.input_dim;
        let out = self.layers.len() - 1;
        let p = self.layers[out].n_out;
        let pre = &ws.pass.y[out][..n * p];
        let extra = &self.params[self.extra..];
        let rec = &self.spec.reconstruction;
        let block = |b: usize, nll: &mut [f64]| {
            let first = b * RECON_BLOCK;
            for (k, v) in nll.iter_mut().enumerate() {
                let i = first + k;
                let xr = &x[(i % rows) * d..(i % rows + 1) * d];
                *v = rec.nll_row(xr, &pre[i * p..(i + 1) * p], extra, None);
            }
        };
        let nll = &mut ws.nll[..n];
        if threads > 1 && n * p >= 32 * 1024 {
            crate::parallel::for_each_chunk_mut([nll], RECON_BLOCK, threads, |b, [nl]| block(b, nl));
        } else {
            nll.chunks_mut(RECON_BLOCK).enumerate().for_each(|(b, nl)| block(b, nl));
        }
    }

    /// The closed-form KL of the first `rows` rows' posteriors from the prior N(0, diag(v))
    /// (`prior` = v; None: N(0, I)), summed: 1/2 sum_j [(s^2 + mu^2)/v - 1 + ln(v / s^2)].
    fn kl_sum(&self, ws: &VaeWorkspace, rows: usize, prior: Option<&[f64]>) -> f64 {
        let head = &ws.pass.y[self.head];
        let mut kl = 0f64;
        for r in 0..rows {
            for j in 0..self.spec.latent_dim {
                let (mu, lv) = self.posterior(head, r, j);
                let (mu, lv) = (mu as f64, lv as f64);
                kl += match prior {
                    None => 0.5 * (mu * mu + lv.exp() - 1.0 - lv),
                    Some(v) => 0.5 * ((lv.exp() + mu * mu) / v[j] - 1.0 + v[j].ln() - lv),
                };
            }
        }
        kl
    }

    /// One training step over x (rows x input_dim) with the network's L samples drawn from
    /// `draws` and KL weight `beta`. Writes the gradient of the mean over rows of
    /// [E_q -log p(x|z) + beta KL] into `grads` (every entry overwritten). Draw l of latent unit
    /// j of row r is element (l * batch + first + r) * latent_dim + j of the step's stream 1
    /// (keyed over the whole minibatch), so shards of a minibatch draw what it draws whole. It
    /// is the step a fit runs, on the CPU backend ([`crate::backend::DeviceVae`]); panics only
    /// if the step's buffers cannot be allocated.
    pub fn step(
        &self,
        x: &[f32],
        rows: usize,
        grads: &mut [f32],
        threads: usize,
        draws: StepDraws,
        beta: f32,
    ) -> VaeStepLoss {
        crate::backend::vae::host_step(self, x, rows, grads, threads, draws, beta)
            .unwrap_or_else(|e| panic!("Vae::step: {e}"))
    }

    /// Checks the rows lie where the reconstruction distribution has probability: a Bernoulli
    /// part's columns in [0, 1] (its log-probability of anything else is meaningless).
    /// INVALID_ARGUMENT naming the first row and column outside.
    pub fn check_support(&self, x: &Matrix, what: &str) -> Result<()> {
        let d = x.cols();
        let mut first = 0;
        for part in &self.spec.reconstruction.parts {
            let cols = first..(first + part.size).min(d);
            first += part.size;
            if part.kind != crate::distribution::DistKind::Bernoulli || cols.is_empty() {
                continue;
            }
            for (r, row) in x.as_slice().chunks_exact(d.max(1)).enumerate() {
                if let Some(c) = row[cols.clone()].iter().position(|v| !(0.0..=1.0).contains(v)) {
                    let c = cols.start + c;
                    return Err(invalid!(
                        "{what}: row {r}, column {c} is {}, outside [0, 1]: a Bernoulli reconstruction needs values in [0, 1] (scale the data, or use a Gaussian distribution)",
                        row[c]
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs f(threads) for an inference call over `x` where the library's placement rule puts
    /// it ([`crate::pool::infer`]), or with `inside = Some(t)` on the current pool with t
    /// threads (inside training).
    fn run<T: Send>(&self, inside: Option<usize>, x: &Matrix, f: impl FnOnce(usize) -> Result<T> + Send) -> Result<T> {
        match inside {
            Some(t) => f(t),
            None => crate::pool::infer(self.threads, x.rows() * x.cols(), f),
        }
    }

    /// The random stream of row `row` of a sampling call with `seed`: draws depend only on
    /// these, not on blocks or threads, so a call repeats exactly.
    fn row_rng(seed: u64, row: usize) -> Rng {
        Rng::new(seed ^ (row as u64).wrapping_mul(0xD1B5_4A32_D192_ED03), stream::VAE_SAMPLE)
    }

    /// Runs the encoder, `samples` draws per row (eps from each row's own stream) and the decoder
    /// over x in blocks, calling `sink(first, rows, ws)`; checks `samples` and x first (with
    /// `with_recon`, also that x lies in the support of the reconstruction distribution).
    fn sampled_blocks(
        &self,
        x: &Matrix,
        samples: usize,
        seed: u64,
        with_recon: bool,
        inside: Option<usize>,
        mut sink: impl FnMut(usize, usize, &VaeWorkspace) + Send,
    ) -> Result<()> {
        check_samples(samples)?;
        x.check_width(self.input_dim(), "input", "the VAE")?;
        if with_recon {
            self.check_support(x, "input")?;
        }
        let block = (INFER_STACK / samples).clamp(1, 1024).min(x.rows().max(1));
        let mut ws = self.kept_workspace(block, samples)?;
        let d = self.input_dim();
        let jd = self.latent_dim();
        self.run(inside, x, |threads| {
            for first in (0..x.rows()).step_by(block) {
                let r = block.min(x.rows() - first);
                let xs = &x.as_slice()[first * d..(first + r) * d];
                host_encode(self, &mut ws.pass, xs, r, threads)?;
                // Row i's noise from its own stream, draw by draw.
                for i in 0..r {
                    let mut rng = Vae::row_rng(seed, first + i);
                    for l in 0..samples {
                        let k = (l * r + i) * jd;
                        ws.pass.eps[k..k + jd].iter_mut().for_each(|e| *e = rng.normal());
                    }
                }
                self.reparameterise(&mut ws, r, samples);
                host_decode(self, &mut ws.pass, r * samples, threads)?;
                if with_recon {
                    self.recon_nll(xs, r, r * samples, &mut ws, threads);
                }
                sink(first, r, &ws);
            }
            Ok(())
        })
    }

    /// Posterior means and log-variances of the rows of x (rows x latent_dim each). The mean is
    /// what DL4J's `activate` returns.
    pub fn encode(&self, x: &Matrix) -> Result<(Matrix, Matrix)> {
        self.encode_in(x, None)
    }

    /// encode() on the VAE's pool, or with `inside = Some(t)` on the current one.
    fn encode_in(&self, x: &Matrix, inside: Option<usize>) -> Result<(Matrix, Matrix)> {
        x.check_width(self.input_dim(), "input", "the VAE")?;
        let jd = self.latent_dim();
        let mut mean = Matrix::zeros(x.rows(), jd)?;
        let mut logvar = Matrix::zeros(x.rows(), jd)?;
        let block = x.rows().clamp(1, 1024);
        let mut ws = self.kept_workspace(block, 1)?;
        let d = self.input_dim();
        self.run(inside, x, |threads| {
            for first in (0..x.rows()).step_by(block) {
                let r = block.min(x.rows() - first);
                host_encode(self, &mut ws.pass, &x.as_slice()[first * d..(first + r) * d], r, threads)?;
                for i in 0..r {
                    for j in 0..jd {
                        let (mu, lv) = self.posterior(&ws.pass.y[self.head], i, j);
                        mean.as_mut_slice()[(first + i) * jd + j] = mu;
                        logvar.as_mut_slice()[(first + i) * jd + j] = lv;
                    }
                }
            }
            Ok(())
        })?;
        Ok((mean, logvar))
    }

    /// `samples` draws z ~ q(z|x) per row, (rows * samples) x latent_dim, row i's draws at rows
    /// i * samples ...; seeded per row.
    pub fn sample_posterior(&self, x: &Matrix, samples: usize, seed: u64) -> Result<Matrix> {
        check_samples(samples)?;
        let jd = self.latent_dim();
        let mut out = Matrix::zeros(crate::tensor::checked_len(x.rows(), samples)?, jd)?;
        self.sampled_blocks(x, samples, seed, false, None, |first, r, ws| {
            for i in 0..r {
                for l in 0..samples {
                    let src = &ws.pass.zs[(l * r + i) * jd..(l * r + i + 1) * jd];
                    let row = (first + i) * samples + l;
                    out.as_mut_slice()[row * jd..(row + 1) * jd].copy_from_slice(src);
                }
            }
        })?;
        Ok(out)
    }

    /// Decoder pre-outputs for the rows of z, in blocks, calling `sink(first, rows, pre)`.
    fn decode_blocks(&self, z: &Matrix, mut sink: impl FnMut(usize, usize, &[f32]) + Send) -> Result<()> {
        z.check_width(self.latent_dim(), "latent codes", "the VAE")?;
        let block = z.rows().clamp(1, 1024);
        let mut ws = self.kept_workspace(block, 1)?;
        let jd = self.latent_dim();
        let out = self.layers.len() - 1;
        let p = self.layers[out].n_out;
        self.run(None, z, |threads| {
            for first in (0..z.rows()).step_by(block) {
                let r = block.min(z.rows() - first);
                ws.pass.zs[..r * jd].copy_from_slice(&z.as_slice()[first * jd..(first + r) * jd]);
                host_decode(self, &mut ws.pass, r, threads)?;
                sink(first, r, &ws.pass.y[out][..r * p]);
            }
            Ok(())
        })
    }

    /// The mean of p(x|z) for each row of z (DL4J's `generateAtMeanGivenZ`).
    pub fn generate_at_mean(&self, z: &Matrix) -> Result<Matrix> {
        let (d, p) = (self.input_dim(), self.spec.reconstruction.param_width());
        let mut out = Matrix::zeros(z.rows(), d)?;
        let rec = &self.spec.reconstruction;
        self.decode_blocks(z, |first, r, pre| {
            for i in 0..r {
                rec.mean_row(&pre[i * p..(i + 1) * p], &mut out.as_mut_slice()[(first + i) * d..(first + i + 1) * d]);
            }
        })?;
        Ok(out)
    }

    /// A draw from p(x|z) for each row of z (DL4J's `generateRandomGivenZ`), seeded per row.
    pub fn generate_random(&self, z: &Matrix, seed: u64) -> Result<Matrix> {
        let (d, p) = (self.input_dim(), self.spec.reconstruction.param_width());
        let mut out = Matrix::zeros(z.rows(), d)?;
        let rec = &self.spec.reconstruction;
        let extra = &self.params[self.extra..];
        self.decode_blocks(z, |first, r, pre| {
            for i in 0..r {
                let mut rng = Vae::row_rng(seed, first + i);
                let o = &mut out.as_mut_slice()[(first + i) * d..(first + i + 1) * d];
                rec.sample_row(&pre[i * p..(i + 1) * p], extra, &mut rng, o);
            }
        })?;
        Ok(out)
    }

    /// `n` draws z of the prior (n x latent_dim), seeded: N(0, I), or a BILBO VAE's fitted
    /// N(0, diag(v)).
    pub fn sample_prior(&self, n: usize, seed: u64) -> Result<Matrix> {
        let mut z = Matrix::zeros(n, self.latent_dim())?;
        let mut rng = Rng::new(seed, stream::VAE_SAMPLE);
        z.as_mut_slice().iter_mut().for_each(|v| *v = rng.normal());
        if !self.prior_lv.is_empty() {
            let jd = self.latent_dim();
            for row in z.as_mut_slice().chunks_exact_mut(jd) {
                for (v, &lv) in row.iter_mut().zip(&self.prior_lv) {
                    *v *= (0.5 * lv).exp();
                }
            }
        }
        Ok(z)
    }

    /// The mean of p(x|z) at the posterior mean of each row: the VAE's reconstruction.
    pub fn reconstruct(&self, x: &Matrix) -> Result<Matrix> {
        let (mean, _) = self.encode(x)?;
        self.generate_at_mean(&mean)
    }

    /// DL4J's `reconstructionError`, for every reconstruction distribution: per row, the score
    /// under `loss` of the reconstruction at the posterior mean ([`Vae::reconstruct`]: the mean of
    /// p(x|z) at z = the mean of q(z|x), deterministic) against the row itself, as
    /// [`Loss::row_of_output`] scores a bare prediction. DL4J computes it only for a VAE trained
    /// with a loss function (its `LossFunctionWrapper`); here any loss can score any VAE. Rows
    /// outside the loss's target domain are INVALID_ARGUMENT.
    pub fn reconstruction_error(&self, x: &Matrix, loss: crate::loss::Loss) -> Result<Vec<f64>> {
        x.check_width(self.input_dim(), "input", "the VAE")?;
        let d = self.input_dim();
        loss.check_targets(x.as_slice(), d, "input")?;
        let recon = self.reconstruct(x)?;
        let mut out = try_zeros::<f64>(x.rows())?;
        for ((o, y), t) in out.iter_mut().zip(recon.as_slice().chunks_exact(d)).zip(x.as_slice().chunks_exact(d)) {
            *o = loss.row_of_output(y, t);
        }
        Ok(out)
    }

    /// DL4J's `reconstructionLogProbability`: per row, the plain Monte-Carlo mean of
    /// log p(x|z_l) over `samples` draws z_l ~ q(z|x). It is not log p(x): it ignores the prior
    /// and is an average of logs (see [`Vae::log_likelihood`] for the importance-sampled one).
    pub fn reconstruction_log_probability(&self, x: &Matrix, samples: usize, seed: u64) -> Result<Vec<f64>> {
        self.need_probabilities("reconstruction log-probability")?;
        let mut out = try_zeros::<f64>(x.rows())?;
        self.sampled_blocks(x, samples, seed, true, None, |first, r, ws| {
            for i in 0..r {
                let s: f64 = (0..samples).map(|l| ws.nll[l * r + i]).sum();
                out[first + i] = -s / samples as f64;
            }
        })?;
        Ok(out)
    }

    /// DL4J's `reconstructionProbability`: exp of [`Vae::reconstruction_log_probability`], the
    /// geometric mean of p(x|z_l) (DL4J's Javadoc cites An & Cho, who average the
    /// probabilities; this is DL4J's code, kept for compatibility). Underflows to 0 for wide
    /// data: prefer the logarithms.
    pub fn reconstruction_probability(&self, x: &Matrix, samples: usize, seed: u64) -> Result<Vec<f64>> {
        Ok(self.reconstruction_log_probability(x, samples, seed)?.into_iter().map(f64::exp).collect())
    }

    /// Importance-sampled log p(x) per row with K = `samples` draws from q(z|x):
    /// log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), the IWAE bound L_K (Burda et al. 2015),
    /// which rises to log p(x) as K grows; K = 1 is a one-sample ELBO.
    pub fn log_likelihood(&self, x: &Matrix, samples: usize, seed: u64) -> Result<Vec<f64>> {
        self.need_probabilities("log-likelihood")?;
        check_samples(samples)?;
        let jd = self.latent_dim();
        let prior = self.eval_prior(x)?;
        let mut out = try_zeros::<f64>(x.rows())?;
        let mut logw = try_zeros::<f64>(samples)?;
        self.sampled_blocks(x, samples, seed, true, None, |first, r, ws| {
            for i in 0..r {
                for (l, w) in logw.iter_mut().enumerate() {
                    let k = l * r + i;
                    // log p(z) - log q(z|x) = sum_j [-z^2/(2 v_j) - ln(v_j)/2 + eps^2/2 + lv/2],
                    // v = 1 for N(0, I)
                    let mut lr = 0f64;
                    for j in 0..jd {
                        let (z, e) = (ws.pass.zs[k * jd + j] as f64, ws.pass.eps[k * jd + j] as f64);
                        let (_, lv) = self.posterior(&ws.pass.y[self.head], i, j);
                        lr += match &prior {
                            None => 0.5 * (e * e - z * z + lv as f64),
                            Some(v) => 0.5 * (e * e - z * z / v[j] - v[j].ln() + lv as f64),
                        };
                    }
                    *w = -ws.nll[k] + lr;
                }
                let m = logw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = logw.iter().map(|w| (w - m).exp()).sum();
                out[first + i] = m + (s / samples as f64).ln();
            }
        })?;
        Ok(out)
    }

    /// The negative ELBO per example and its parts, means over the rows of x, the expectation by
    /// `samples` draws per row (DL4J's score, as the trainer reports it).
    pub fn elbo(&self, x: &Matrix, samples: usize, seed: u64) -> Result<Elbo> {
        self.elbo_in(x, samples, seed, None)
    }

    fn elbo_in(&self, x: &Matrix, samples: usize, seed: u64, inside: Option<usize>) -> Result<Elbo> {
        check_samples(samples)?;
        let prior = self.eval_prior(x)?;
        self.elbo_with(x, samples, seed, inside, prior.as_deref())
    }

    /// elbo_in() under the prior N(0, diag(`prior`)) (None: N(0, I)).
    fn elbo_with(
        &self,
        x: &Matrix,
        samples: usize,
        seed: u64,
        inside: Option<usize>,
        prior: Option<&[f64]>,
    ) -> Result<Elbo> {
        let mut rec = 0f64;
        let mut kl = 0f64;
        self.sampled_blocks(x, samples, seed, true, inside, |_, r, ws| {
            rec += ws.nll[..r * samples].iter().sum::<f64>() / samples as f64;
            kl += self.kl_sum(ws, r, prior);
        })?;
        let n = x.rows().max(1) as f64;
        let (rec, kl) = (rec / n, kl / n);
        Ok(Elbo { neg_elbo: rec + kl, reconstruction: rec, kl })
    }

    /// Decodes (at the mean) `steps` points on the line between the posterior means of rows a
    /// and b (inclusive): latent-space interpolation. Returns (z, x).
    pub fn interpolate(&self, a: &[f32], b: &[f32], steps: usize) -> Result<(Matrix, Matrix)> {
        if steps < 2 {
            return Err(invalid!("interpolation needs at least 2 steps, not {steps}"));
        }
        let d = self.input_dim();
        if a.len() != d || b.len() != d {
            return Err(shape!("interpolation rows have {} and {} values, the VAE expects {d}", a.len(), b.len()));
        }
        let mut ab = a.to_vec();
        ab.extend_from_slice(b);
        let (mean, _) = self.encode(&Matrix::from_vec(2, d, ab)?)?;
        let jd = self.latent_dim();
        let mut z = Matrix::zeros(steps, jd)?;
        for k in 0..steps {
            let t = k as f32 / (steps - 1) as f32;
            for j in 0..jd {
                z.as_mut_slice()[k * jd + j] = (1.0 - t) * mean.as_slice()[j] + t * mean.as_slice()[jd + j];
            }
        }
        let x = self.generate_at_mean(&z)?;
        Ok((z, x))
    }

    fn need_probabilities(&self, what: &str) -> Result<()> {
        if self.spec.reconstruction.is_probabilistic() {
            Ok(())
        } else {
            Err(invalid!(
                "the {what} needs a reconstruction distribution; this VAE is trained with a loss function (MSE)"
            ))
        }
    }

    /// Mean negative ELBO per example of x with one draw per row from a fixed stream: the
    /// validation score of training. For BILBO, minus BILBO over x (the prior fitted to x), as
    /// the training steps score their minibatches.
    pub(crate) fn valid_score(&self, x: &Matrix, threads: usize) -> Result<f64> {
        let prior = match self.spec.objective {
            Objective::Elbo => None,
            Objective::Bilbo => Some(self.batch_prior(x, Some(threads))?),
        };
        Ok(self.elbo_with(x, 1, 0x5EED, Some(threads), prior.as_deref())?.neg_elbo)
    }

    pub fn describe(&self) -> String {
        let s = &self.spec;
        let mut out = String::new();
        let enc: Vec<String> = s.encoder.iter().map(|l| l.units.to_string()).collect();
        let dec: Vec<String> = s.decoder.iter().map(|l| l.units.to_string()).collect();
        let _ = writeln!(
            out,
            "latent variational autoencoder {} -> {}[{}] -> {}{}",
            s.input_dim,
            enc.iter().map(|e| format!("{e} -> ")).collect::<String>(),
            s.latent_dim,
            dec.iter().map(|e| format!("{e} -> ")).collect::<String>(),
            s.input_dim
        );
        for (i, l) in self.layers.iter().enumerate() {
            let role = if i < self.head {
                "encoder"
            } else if i == self.head {
                "q(z|x)"
            } else if i + 1 < self.layers.len() {
                "decoder"
            } else {
                "p(x|z)"
            };
            let _ = writeln!(
                out,
                "  {i:>2} {role:<8} dense {:>6} -> {:<6} {:<10} {:>10} params",
                l.n_in,
                l.n_out,
                l.activation.name(),
                l.own_params()
            );
        }
        let post = match s.posterior {
            Posterior::Learned => format!("learned posterior variance, pzx activation {}", s.pzx_activation.name()),
            Posterior::Constant { log_variance } => {
                format!("constant posterior log-variance {log_variance}, pzx activation {}", s.pzx_activation.name())
            }
        };
        let _ = writeln!(out, "  reconstruction {}; {post}", s.reconstruction.describe());
        if s.objective == Objective::Bilbo {
            let fitted = if self.prior_lv.is_empty() {
                "not fitted yet".to_string()
            } else {
                let lv: Vec<String> = self.prior_lv.iter().map(|v| format!("{v:.3}")).collect();
                format!("log-variances [{}]", lv.join(", "))
            };
            let _ = writeln!(
                out,
                "  objective BILBO (Fyffe 2019): prior N(0, diag(v)) fitted to the training rows, {fitted}"
            );
        }
        let warm =
            if s.kl_warmup_steps > 0 { format!(", KL warm-up {} steps", s.kl_warmup_steps) } else { String::new() };
        let _ = writeln!(
            out,
            "  samples per example {}, KL weight {}{warm}, init {}, seed {}, {} parameters, {} steps trained",
            s.num_samples,
            s.beta,
            s.init.name(),
            s.seed,
            self.params.len(),
            self.steps
        );
        out
    }
}

/// BILBO's batch prior (Fyffe 2019) of a constant-variance posterior whose means are the
/// `rows` x J `head`: v_j = mean_rows mu_rj^2 + s^2, s^2 = exp(const_lv).
pub(crate) fn batch_prior(head: &[f32], rows: usize, latent: usize, const_lv: f32) -> Vec<f64> {
    let mut m = vec![0f64; latent];
    for row in head[..rows * latent].chunks_exact(latent.max(1)) {
        for (a, &mu) in m.iter_mut().zip(row) {
            *a += mu as f64 * mu as f64;
        }
    }
    let s2 = (const_lv as f64).exp();
    m.iter().map(|a| a / rows.max(1) as f64 + s2).collect()
}

/// BILBO's KL from the batch's own prior v ([`batch_prior`]): rows/2 sum_j ln(v_j / s^2) in all,
/// written as the term 1/2 ln(v_j / s^2) of every row and unit into `kl_el`; its gradient in
/// mu_rj, beta/rows * mu_rj / v_j with v held (v minimises the KL in v: envelope theorem), into
/// `dhead`. The step of [`crate::backend::DeviceVae`] on the CPU backend.
pub(crate) fn batch_prior_kl(
    head: &[f32],
    rows: usize,
    latent: usize,
    const_lv: f32,
    beta: f32,
    kl_el: &mut [f32],
    dhead: &mut [f32],
) {
    let v = batch_prior(head, rows, latent, const_lv);
    let s2 = (const_lv as f64).exp();
    let kl_scale = (beta / rows as f32) as f64;
    for (k, (kl, d)) in kl_el[..rows * latent].iter_mut().zip(&mut dhead[..rows * latent]).enumerate() {
        let j = k % latent;
        *kl = (0.5 * (v[j] / s2).ln()) as f32;
        *d = (kl_scale * head[k] as f64 / v[j]) as f32;
    }
}
