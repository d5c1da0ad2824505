//! Plain structs of the C API, passed by value or by pointer. Fixed-width fields, no `bool`;
//! any layout change bumps LATENT_ABI_VERSION (tests/header.rs checks sizeof/offsetof from C).

use std::ffi::c_void;

use super::consts::*;
use super::montecarlo::{latent_batch_fn, latent_montecarlo_strategy};

/// Architecture of a new autoencoder. Get the defaults from latent_network_params_default(),
/// then set at least `input_dim` and `code_units`.
///
/// Layers: input -> encoder hidden layers -> code layer -> decoder hidden layers -> output
/// (input_dim wide). The arrays are read during latent_network_new() only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_network_params {
    /// Width of the input (and of the reconstruction). Required.
    pub input_dim: u32,
    /// Number of encoder hidden layers (0 for a shallow autoencoder), at most 256: a larger
    /// count is LATENT_STATUS_INVALID_ARGUMENT before any array is read.
    pub n_encoder: u32,
    /// Widths of the encoder hidden layers, n_encoder of them.
    pub encoder_units: *const u32,
    /// Their activations (n_encoder values), or NULL for `hidden_activation` everywhere.
    pub encoder_activations: *const latent_activation,
    /// Activation of hidden layers whose activation array is NULL. Default RELU.
    pub hidden_activation: latent_activation,
    /// Width of the code (bottleneck) layer. Required.
    pub code_units: u32,
    /// Activation of the code layer. Default IDENTITY (a linear code).
    pub code_activation: latent_activation,
    /// 1 (default): the decoder hidden layers mirror the encoder's (reversed widths and
    /// activations) and the decoder fields below are ignored; 0: use them.
    pub mirror_decoder: i32,
    /// Number of decoder hidden layers when not mirrored, at most 256 (checked before any array
    /// is read).
    pub n_decoder: u32,
    pub decoder_units: *const u32,
    /// NULL for `hidden_activation` everywhere.
    pub decoder_activations: *const latent_activation,
    /// Activation of the reconstruction. Default SIGMOID, for data in [0, 1] (pixels). A fit
    /// refuses data (a regressor: targets) outside this activation's range with
    /// LATENT_STATUS_INVALID_ARGUMENT, rather than training silently to a useless fit: use
    /// IDENTITY for real-valued data, or scale the data (latent_dataset_scale).
    pub output_activation: latent_activation,
    /// Default MSE. BINARY_CROSS_ENTROPY needs a SIGMOID output and is computed from the logits;
    /// MSLE a SIGMOID, SOFTPLUS or RELU output; POISSON a SIGMOID or SOFTPLUS output;
    /// KL_DIVERGENCE and MCXENT an IDENTITY output (logits: the loss takes their softmax, and
    /// latent_network_predict returns it). Another pairing gives INVALID_ARGUMENT.
    pub loss: latent_loss,
    /// 1: each decoder layer uses the transpose of its mirrored encoder layer's weights (the
    /// decoder must mirror the encoder); decoder layers keep their own biases. Default 0.
    pub tied_weights: i32,
    /// Weight initialisation. Default AUTO.
    pub init: latent_init,
    /// Seed of the initialisation. Default 0.
    pub seed: u64,
    /// Sparsity penalty on hidden layers. Default NONE.
    pub sparsity: latent_sparsity,
    /// KL target activation rho, in (0, 1). Default 0.05.
    pub sparsity_target: f64,
    /// The penalty's weight (beta for KL, lambda for L1). Default 0.1.
    pub sparsity_weight: f64,
    /// Hidden layers that carry the sparsity penalty, numbered from 0 in forward order (encoder
    /// hidden layers, the code layer, decoder hidden layers). NULL or n_sparse_layers = 0: the
    /// code layer.
    pub sparse_layers: *const u32,
    /// Entries of sparse_layers, at most 256 (checked before the array is read).
    pub n_sparse_layers: u32,
    /// 1: alternate-layer sparsity, the penalty on hidden layers alternate_start,
    /// alternate_start + 2, ... (overrides sparse_layers). Default 0.
    pub alternate_sparsity: i32,
    pub alternate_start: u32,
    /// lambda of the contractive penalty lambda * ||J||_F^2 on every encoder layer's own
    /// Jacobian (mean over rows), or on the whole encoder's after
    /// latent_network_set_contractive_exact(net, 1). 0 = off (default).
    pub contractive_weight: f64,
    /// Denoising corruption of the training input. Default NONE.
    pub corruption: latent_corruption,
    /// Probability (masking, salt-and-pepper) or standard deviation (Gaussian). Default 0.
    pub corruption_level: f64,
    /// Standard deviation of Gaussian noise added to the code layer's pre-activation during
    /// training, fixed per training row (semantic hashing: with a sigmoid code layer it drives
    /// the codes toward 0 and 1). 0 = off (default).
    pub code_noise: f64,
    /// Stochastic units of the encoder hidden layers (n_encoder values), or NULL for none:
    /// LATENT_STOCHASTIC_BERNOULLI (binary samples of a sigmoid layer, straight-through gradient)
    /// or LATENT_STOCHASTIC_GAUSSIAN (output + N(0, stochastic_sigma^2)). Sampled in training;
    /// in inference only after latent_network_set_stochastic_inference().
    pub encoder_stochastic: *const latent_stochastic,
    /// Stochastic units of the code layer. Default NONE.
    pub code_stochastic: latent_stochastic,
    /// Of the decoder hidden layers when not mirrored (a mirrored decoder mirrors the encoder's).
    pub decoder_stochastic: *const latent_stochastic,
    /// Standard deviation of GAUSSIAN stochastic layers. Default 0.
    pub stochastic_sigma: f64,
    /// LATENT_TASK_RECONSTRUCT (default): an autoencoder. CLASSIFY or REGRESS: a supervised
    /// network input -> encoder hidden layers -> code layer -> decoder hidden layers (only with
    /// mirror_decoder = 0; a supervised decoder is never mirrored) -> `outputs` units, trained
    /// on the dataset's labels or targets. A classifier's output_activation must be IDENTITY
    /// (the logits; softmax is part of the loss); a regressor uses output_activation and loss.
    pub task: latent_task,
    /// Classes (CLASSIFY, at least 2) or targets per row (REGRESS). Ignored for RECONSTRUCT.
    pub outputs: u32,
    /// Connections of the encoder hidden layers (n_encoder values), or NULL for dense:
    /// LATENT_CONNECTION_F01..F20 make a layer functional, MEMORY a memory layer.
    pub encoder_connections: *const latent_connection,
    /// Connection of the code layer. Default DENSE.
    pub code_connection: latent_connection,
    /// Of the decoder hidden layers when not mirrored (a mirrored decoder mirrors the
    /// encoder's), or NULL for dense.
    pub decoder_connections: *const latent_connection,
    /// Of the output layer. Default DENSE.
    pub output_connection: latent_connection,
}

/// Training configuration. Get the defaults from latent_train_params_default() and edit.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_train_params {
    /// Passes over the data. Default 10.
    pub epochs: u32,
    /// Rows per minibatch. Default 128.
    pub batch_size: u32,
    /// Default ADAM.
    pub optimizer: latent_optimizer,
    /// SGD: 1 for Nesterov momentum. Default 0.
    pub nesterov: i32,
    /// Default 1e-3.
    pub learning_rate: f64,
    /// SGD momentum. Default 0.9 (0 gives plain SGD).
    pub momentum: f64,
    /// Adam/AdamW moment decay rates and epsilon. Defaults 0.9, 0.999, 1e-8. The other adaptive
    /// optimizers use the same fields: beta2 is RMSprop's and AdaDelta's decay (rho), AdaMax
    /// and Lion take both betas, AdaGrad neither; epsilon is RMSprop's, AdaGrad's, AdaDelta's
    /// and AdaMax's (docs/concepts.md has each one's formula and PyTorch defaults).
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// L2 penalty on weights (not biases): adds 0.5 * weight_decay * ||W||^2 to the loss for
    /// SGD, Adam, RMSprop, AdaGrad, AdaDelta and AdaMax; decoupled (W *= 1 - lr * weight_decay)
    /// for AdamW and Lion. Default 0.
    pub weight_decay: f64,
    /// Clip the gradient's global L2 norm to this; 0 = off (default).
    pub grad_clip_norm: f64,
    /// Fraction of the training rows held out (seeded) for validation when no validation
    /// dataset is given. Default 0.
    pub validation_fraction: f64,
    /// Seed of shuffling and the validation split. Default 0.
    pub seed: u64,
    /// Worker threads; 0 (default) = LATENT_NUM_THREADS when set, else all cores. At most
    /// 1024 (LATENT_STATUS_INVALID_ARGUMENT beyond, given or from LATENT_NUM_THREADS).
    pub threads: u32,
    /// Stop after this many epochs without a better validation loss and keep the best
    /// parameters; 0 = off (default).
    pub early_stopping_patience: u32,
    /// 1 (default): reshuffle the rows every epoch.
    pub shuffle: i32,
    /// 1: drop the last partial minibatch of an epoch. Default 0.
    pub drop_last: i32,
    /// Call the progress callback every this many minibatches too; 0 (default) = only at the
    /// end of each epoch.
    pub progress_every: u32,
    /// Learning-rate decay over each fit (one run; e the 0-based epoch, t the 0-based minibatch
    /// step, T = epochs * minibatches per epoch). Default CONSTANT. STEP: learning_rate *
    /// lr_gamma^floor(e / lr_step_epochs); EXPONENTIAL: learning_rate * lr_gamma^e; COSINE:
    /// lr_min + (learning_rate - lr_min) * (1 + cos(pi * t / T)) / 2.
    pub lr_schedule: latent_lr_schedule,
    /// STEP: epochs between decays, >= 1. Default 10.
    pub lr_step_epochs: u32,
    /// Linear warm-up: step t < warmup_steps uses (t + 1) / warmup_steps of the scheduled rate.
    /// Default 0 (off).
    pub warmup_steps: u32,
    /// STEP and EXPONENTIAL: decay factor in (0, 1]. Default 0.1.
    pub lr_gamma: f64,
    /// COSINE: final learning rate, in [0, learning_rate]. Default 0.
    pub lr_min: f64,
    /// SGD momentum of the epochs before momentum_switch_epoch, in [0, 1]. Default 0.5.
    pub momentum_initial: f64,
    /// First epoch (0-based) with `momentum`; 0 (default) = no momentum schedule. SGD only
    /// (LATENT_STATUS_INVALID_ARGUMENT otherwise). 5 with momentum_initial 0.5 and momentum 0.9
    /// is Hinton & Salakhutdinov's recipe.
    pub momentum_switch_epoch: u32,
    /// latent_trainer_new only: a file that each fit writes a checkpoint to every
    /// `checkpoint_every` completed epochs (atomically, replacing the previous one; the whole
    /// training state: see latent_trainer_resume_network). NULL (default) = none. The string is
    /// copied. Other calls that take these parameters (pretraining, RBMs) refuse it
    /// (LATENT_STATUS_INVALID_ARGUMENT).
    pub checkpoint_path: *const std::ffi::c_char,
    /// Epochs between periodic checkpoints, >= 1 when checkpoint_path is set; 0 (default)
    /// otherwise.
    pub checkpoint_every: u32,
}

/// What the progress callback receives.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_progress {
    /// LATENT_EVENT_BATCH or LATENT_EVENT_EPOCH_END.
    pub event: latent_event,
    /// 0-based epoch, and the number of epochs configured.
    pub epoch: u32,
    pub epochs: u32,
    /// Minibatches done in this epoch, and how many it has.
    pub batch: u64,
    pub batches: u64,
    /// Mean training (reconstruction) loss of this epoch so far.
    pub loss: f64,
    /// Mean penalty (sparsity, contractive) of this epoch so far; the objective is loss + penalty.
    pub penalty: f64,
    /// LATENT_STAGE_TRAIN for latent_trainer_fit(); the pretraining procedure names its stages.
    pub stage: latent_stage,
    /// PRETRAIN: the 0-based encoder layer being pretrained. INTERMEDIATE_FINETUNE: how many
    /// encoder layers the partial autoencoder has (2 after the second layer). 0 otherwise.
    pub stage_layer: u32,
    /// Mean free energy of the training rows at the epoch ends of RBM pretraining (`loss` is
    /// then the RBM's reconstruction error); NaN otherwise.
    pub free_energy: f64,
    /// Validation loss (at LATENT_EVENT_EPOCH_END with validation data; NaN otherwise).
    pub valid_loss: f64,
    /// Training throughput of this epoch so far.
    pub samples_per_second: f64,
    /// Seconds since the epoch started.
    pub seconds: f64,
}

/// Progress callback: return 0 to go on, non-zero to cancel training (the network keeps the
/// parameters of the last completed step and the call returns LATENT_STATUS_CANCELLED).
/// It runs on the thread that called latent_trainer_fit().
pub type latent_progress_fn = Option<unsafe extern "C" fn(user: *mut c_void, progress: *const latent_progress) -> i32>;

/// One epoch of the training history.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct latent_epoch_record {
    /// Mean reconstruction loss of the epoch's minibatches.
    pub train_loss: f64,
    /// Mean penalty (sparsity, contractive) of the same minibatches.
    pub train_penalty: f64,
    /// NaN without validation data.
    pub valid_loss: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
    /// Learning rate of the epoch's last minibatch step.
    pub learning_rate: f64,
}

/// One part of a composite reconstruction distribution: `size` consecutive data columns with
/// one distribution (DL4J's CompositeReconstructionDistribution).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_vae_part {
    /// Data columns covered (at least 1).
    pub size: u32,
    /// LATENT_DISTRIBUTION_*.
    pub distribution: latent_distribution,
    /// Applied to the part's decoder outputs (ignored for BERNOULLI, which is always sigmoid).
    pub activation: latent_activation,
}

/// Architecture of a new variational autoencoder. Get the defaults from
/// latent_vae_params_default(), then set at least `input_dim` and `latent_dim`.
///
/// Encoder: input -> encoder hidden layers -> the posterior q(z|x) = N(mean, diag(exp(logvar)))
/// of width latent_dim. Decoder: z -> decoder hidden layers -> the parameters of the
/// reconstruction distribution p(x|z). The arrays are read during latent_vae_new() only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_vae_params {
    /// Width of the data. Required.
    pub input_dim: u32,
    /// Number of encoder hidden layers (0: the posterior is computed from x directly), at most
    /// 256: a larger count is LATENT_STATUS_INVALID_ARGUMENT before any array is read.
    pub n_encoder: u32,
    /// Widths of the encoder hidden layers, n_encoder of them.
    pub encoder_units: *const u32,
    /// Their activations (n_encoder values), or NULL for `hidden_activation` everywhere.
    pub encoder_activations: *const latent_activation,
    /// Width of the latent code z. Required.
    pub latent_dim: u32,
    /// Number of decoder hidden layers (not mirrored: give them explicitly), at most 256.
    pub n_decoder: u32,
    pub decoder_units: *const u32,
    /// NULL for `hidden_activation` everywhere.
    pub decoder_activations: *const latent_activation,
    /// Activation of hidden layers whose activation array is NULL. Default RELU.
    pub hidden_activation: latent_activation,
    /// Applied to the posterior mean and log-variance (DL4J's pzxActivationFn). Default IDENTITY.
    pub pzx_activation: latent_activation,
    /// The reconstruction distribution over all columns when n_parts = 0. Default BERNOULLI.
    pub distribution: latent_distribution,
    /// Its activation. Default IDENTITY; ignored for BERNOULLI (always sigmoid).
    pub distribution_activation: latent_activation,
    /// Number of parts of a composite distribution; 0 (default): `distribution` alone. At most
    /// input_dim (each part has a column), checked before `parts` is read.
    pub n_parts: u32,
    /// The parts in column order; their sizes must sum to input_dim.
    pub parts: *const latent_vae_part,
    /// Samples of z per example in training (DL4J's numSamples), 1..=4096. Default 1.
    pub num_samples: u32,
    /// Weight of the KL term (1 = the ELBO; beta-VAE otherwise), >= 0. Default 1.
    pub beta: f64,
    /// The KL weight rises linearly to beta over this many training steps (step k, from 0, uses
    /// beta (k + 1) / kl_warmup_steps, as the learning-rate warm-up does; counted
    /// over every fit, saved with the model). Default 0 (off).
    pub kl_warmup_steps: u64,
    /// 1: a constant posterior variance exp(posterior_log_variance), not learned; the encoder
    /// outputs only the mean. Default 0 (learned).
    pub constant_posterior_variance: i32,
    /// The constant log-variance, within [-30, 30]. Default 0.
    pub posterior_log_variance: f64,
    /// Weight initialisation. Default AUTO.
    pub init: latent_init,
    /// Seed of the initialisation. Default 0.
    pub seed: u64,
}

/// The negative ELBO per example and its parts, means over a dataset's rows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct latent_elbo {
    /// reconstruction + kl (DL4J's score; what training minimises with beta = 1).
    pub neg_elbo: f64,
    /// E_q[-log p(x|z)], estimated with the call's samples.
    pub reconstruction: f64,
    /// KL(q(z|x) || N(0, I)), closed form (for a BILBO VAE, from its fitted prior N(0, diag(v))).
    pub kl: f64,
}

/// How a supervised network does on a dataset (latent_network_evaluate).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct latent_evaluation {
    /// The training loss: mean softmax cross-entropy per row (classifier) or mean element loss
    /// (regressor).
    pub loss: f64,
    /// Fraction of rows whose most probable class is their label (classifier; NaN otherwise).
    pub accuracy: f64,
    /// Mean squared error per element (regressor; NaN otherwise).
    pub mse: f64,
    /// Rows scored.
    pub rows: u64,
}

/// Settings of the gradient-free Monte-Carlo optimizer. Get the defaults from
/// latent_montecarlo_params_default() and edit. Counts are uint64_t.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_montecarlo_params {
    /// Candidates drawn at the start of each run (from the priors the first time, around the
    /// current best afterwards). Default 1000 (KernelML's init_random_sample_num).
    pub init_samples: u64,
    /// Candidates per iteration. Default 100 (KernelML's random_sample_num).
    pub samples: u64,
    /// Best candidates per iteration whose deviations set the spreads, 1..=samples. Default 20
    /// (KernelML's analyze_n_parameters).
    pub elite: u64,
    /// Iterations per run. Default 1000.
    pub max_iterations: u64,
    /// Budget of loss evaluations over all runs; 0 = unlimited. Default 1e6. Interval calls
    /// count in latent_montecarlo_evaluations() but are not stopped by it.
    pub max_evaluations: u64,
    /// Seed of every draw. Default 0.
    pub seed: u64,
    /// Candidates per quadratic fit of latent_montecarlo_intervals(); 0 (default) = 4 x the
    /// number of fitted coefficients, at least 60. At most 2^24.
    pub interval_samples: u64,
    /// Converged when every free spread is at most tolerance * max(1, |best_i|). Default 1e-8.
    pub tolerance: f64,
    /// Weight of the old spread when blended with the elite's deviation, in [0, 1). Default 0.5.
    pub memory: f64,
    /// Spread factor after an iteration without improvement, in (0, 1). Default 0.5.
    pub shrink: f64,
    /// Half-width of the sampler around the current best at the start of a later run, relative
    /// to max(|w_i|, prior sd). Default 0.1 (KernelML's U(w +- 10% w)).
    pub restart_fraction: f64,
    /// Converged after this many iterations in a row without improvement. Default 50.
    pub patience: u32,
    /// Threads that call the loss at once; 0 = all cores (default; LATENT_NUM_THREADS when
    /// set); at most 1024 (LATENT_STATUS_INVALID_ARGUMENT beyond). Set 1 when the loss
    /// callback is not thread-safe (R, Julia, Python callbacks): then every call is made on the
    /// calling thread. The result is the same for any value.
    pub threads: u32,
    /// latent_montecarlo_intervals() fits the full Hessian up to this many free parameters and
    /// only its diagonal above. Default 40.
    pub full_hessian_max: u32,
    /// Fraction of the free parameters each candidate perturbs, in (0, 1] (KernelML's
    /// percent_of_params_updated): the ceil(fraction x free) that the search's linear
    /// surrogate ranks highest are updated each iteration (KERNELML: probed; ELITIST:
    /// perturbed), the others keep the best's values. Default 1.
    pub update_fraction: f64,
    /// LATENT_MONTECARLO_STRATEGY_KERNELML (default: KernelML's update rule, a surrogate of the
    /// loss ranking the parameters, coordinate probes, a z-score stop) or _ELITIST (adaptive
    /// random search around the best); docs/montecarlo.md.
    pub strategy: latent_montecarlo_strategy,
    /// KERNELML: rounds of coordinate probes per iteration (KernelML's n_parameter_updates);
    /// a round without improvement ends them. Default 10, at most 65536.
    pub updates: u32,
    /// KERNELML: a run's first probe step, as a multiple of the parameter's spread (KernelML's
    /// update_magnitude); the steps then double on success and halve on failure. Default 1.
    pub update_magnitude: f64,
    /// KERNELML: the z-score test fires when |best_i - mean_i| / sd_i over the last z_window
    /// recorded bests is below z_score for every free parameter (KernelML's
    /// convergence_z_score); 0 switches it off. Default 1.
    pub z_score: f64,
    /// KERNELML: recorded bests the z-score test looks at, 2 to 65536. Default 10.
    pub z_window: u32,
    /// Records (recent iterations' best candidates and accepted moves) kept for the surrogate
    /// and the samplers: 0 (default) = max(5 x elite, min(2 (n_params + 1), 200)), else 3 to
    /// 65536.
    pub history_window: u32,
    /// Best parameter vectors per iteration kept for latent_montecarlo_param_by_iter (the
    /// latest). Default 10000.
    pub history_limit: u64,
}

/// A loss over a parameter vector of n values. Called from `threads` threads at once (unless
/// threads == 1), so it must be thread-safe; a non-finite return marks the candidate as
/// infeasible (it is skipped, never chosen as best).
pub type latent_objective_fn = Option<unsafe extern "C" fn(user: *mut c_void, params: *const f64, n: usize) -> f64>;

/// A custom proposal: the value of parameter `index` for a uniform u in (0, 1), around `center`
/// (the current best) with spread `scale`, i.e. a quantile function. Called on the thread that
/// called latent_montecarlo_minimize(), one call at a time.
pub type latent_quantile_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, index: usize, center: f64, scale: f64, u: f64) -> f64>;

/// A user's link: maps a hidden layer's output block `values` (rows x cols, row-major) in place
/// with its own `n` parameters (a non-linear parametric layer whose forward the user writes).
/// Called from the optimizer's threads at once unless threads == 1.
pub type latent_link_fn = Option<
    unsafe extern "C" fn(user: *mut c_void, params: *const f64, n: usize, values: *mut f32, rows: usize, cols: usize),
>;

/// How latent_montecarlo_fit_network() fits a network. Defaults from
/// latent_montecarlo_network_params_default().
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct latent_montecarlo_network_params {
    /// Rows per run, drawn without replacement, a fresh minibatch each run; 0 (default) = all.
    pub batch_size: u64,
    /// Runs, each continuing from the best so far: 1 to 2^20. Default 1.
    pub runs: u32,
    /// The layer (0-based in forward order: encoder hidden layers, the code layer, decoder
    /// hidden layers, then the output layer) whose output the link maps; -1 (default): no
    /// link. The output layer's index (latent_network_layer_count - 1) maps the network's
    /// output before the loss (not under binary cross-entropy or for a classifier, whose
    /// losses read logits: LATENT_STATUS_INVALID_ARGUMENT).
    pub link_layer: i32,
    /// The link's parameters: the optimizer's last link_params coordinates. Default 0.
    pub link_params: u32,
    pub link: latent_link_fn,
    pub link_user: *mut c_void,
    /// Seed of the minibatch draws. Default 0.
    pub seed: u64,
    /// Draws each minibatch instead of the seeded sampler without replacement (may be NULL);
    /// called on the calling thread with `batch_user`.
    pub batch_sampler: latent_batch_fn,
    pub batch_user: *mut c_void,
    /// 1: a fresh minibatch every iteration (the best is re-evaluated on it), not only every
    /// run. Default 0.
    pub batch_every_iteration: i32,
    /// 1: the first run starts around the network's current parameters (and the link's prior
    /// means); 0 (default): it draws its candidates from the priors, as KernelML.
    pub start_from_network: i32,
    /// A second link (ABI 5), on a layer other than link_layer's, same rules; -1 (default):
    /// none. Its link2_params parameters follow the first link's in the optimizer. KernelML's
    /// HIGGS notebook: link = field_eq on the code layer, link2 = a2 (y + b2) on the output.
    pub link2_layer: i32,
    /// The second link's parameters. Default 0.
    pub link2_params: u32,
    pub link2: latent_link_fn,
    pub link2_user: *mut c_void,
}
