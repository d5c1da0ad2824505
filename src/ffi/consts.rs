//! Constants of the C API. Enumerations arrive from C as plain `int32_t` and are validated.

/// Status code of every fallible call.
pub type latent_status = i32;

pub const LATENT_VERSION_MAJOR: u32 = 0;
pub const LATENT_VERSION_MINOR: u32 = 1;
pub const LATENT_VERSION_PATCH: u32 = 0;
pub const LATENT_VERSION_NUMBER: u32 = LATENT_VERSION_MAJOR * 10000 + LATENT_VERSION_MINOR * 100 + LATENT_VERSION_PATCH;
/// Bumped by any change to a struct's layout or a function's signature.
pub const LATENT_ABI_VERSION: u32 = 5;

pub const LATENT_STATUS_OK: latent_status = 0;
/// A required pointer or handle was NULL.
pub const LATENT_STATUS_NULL_ARGUMENT: latent_status = 1;
/// An argument is out of range (an unknown enum value, a zero size, a bad option).
pub const LATENT_STATUS_INVALID_ARGUMENT: latent_status = 2;
/// Dimensions do not agree (columns vs the network's input width, buffer sizes).
pub const LATENT_STATUS_SHAPE_MISMATCH: latent_status = 3;
/// Input data holds NaN or Inf (the message names the row and column).
pub const LATENT_STATUS_NON_FINITE: latent_status = 4;
/// A file could not be opened, read or written.
pub const LATENT_STATUS_IO: latent_status = 5;
/// A file is not in the expected format, is truncated, or fails its checksum.
pub const LATENT_STATUS_BAD_FORMAT: latent_status = 6;
/// The operation is not available in this build or on this machine (e.g. no GPU).
pub const LATENT_STATUS_UNSUPPORTED: latent_status = 7;
pub const LATENT_STATUS_OUT_OF_MEMORY: latent_status = 8;
/// The progress callback asked to stop.
pub const LATENT_STATUS_CANCELLED: latent_status = 9;
/// A bug in the library (a caught panic); the message says where.
pub const LATENT_STATUS_INTERNAL: latent_status = 10;
/// An output buffer's capacity is smaller than the result.
pub const LATENT_STATUS_BUFFER_TOO_SMALL: latent_status = 11;
/// Training produced a non-finite loss; the parameters were restored to the start of the epoch.
pub const LATENT_STATUS_DIVERGED: latent_status = 12;
/// The handle is being trained and the call would change it (made from the fit's own progress
/// callback, or from another thread during the fit); nothing was done.
pub const LATENT_STATUS_BUSY: latent_status = 13;

/// Activation function (`latent_activation`).
pub type latent_activation = i32;
pub const LATENT_ACTIVATION_IDENTITY: latent_activation = 0;
pub const LATENT_ACTIVATION_SIGMOID: latent_activation = 1;
pub const LATENT_ACTIVATION_TANH: latent_activation = 2;
pub const LATENT_ACTIVATION_RELU: latent_activation = 3;
pub const LATENT_ACTIVATION_LEAKY_RELU: latent_activation = 4;
pub const LATENT_ACTIVATION_ELU: latent_activation = 5;
pub const LATENT_ACTIVATION_SOFTPLUS: latent_activation = 6;
pub const LATENT_ACTIVATION_GELU: latent_activation = 7;

/// Reconstruction loss (`latent_loss`).
pub type latent_loss = i32;
/// Mean squared error, mean over the columns (so over all elements).
pub const LATENT_LOSS_MSE: latent_loss = 0;
/// Binary cross-entropy, computed from the logits; needs a sigmoid output.
pub const LATENT_LOSS_BINARY_CROSS_ENTROPY: latent_loss = 1;
/// Mean absolute error |y - t|, mean over the columns (DL4J MEAN_ABSOLUTE_ERROR).
pub const LATENT_LOSS_MAE: latent_loss = 2;
/// Absolute error summed over the columns (DL4J L1): MAE times the width.
pub const LATENT_LOSS_L1: latent_loss = 3;
/// Squared error summed over the columns (DL4J L2): MSE times the width.
pub const LATENT_LOSS_L2: latent_loss = 4;
/// Mean squared logarithmic error (ln(1+y) - ln(1+t))^2, mean over the columns; needs a
/// sigmoid, softplus or relu output and targets above -1.
pub const LATENT_LOSS_MSLE: latent_loss = 5;
/// Poisson y - t ln y summed over the columns; needs a sigmoid or softplus output (a positive
/// rate) and targets >= 0.
pub const LATENT_LOSS_POISSON: latent_loss = 6;
/// Cosine proximity: minus the cosine of the row and its reconstruction, in [-1, 1] (norms
/// floored at 1e-5, so an all-zero row scores 0). Any output activation.
pub const LATENT_LOSS_COSINE_PROXIMITY: latent_loss = 7;
/// Kullback-Leibler divergence sum_j t_j ln(t_j / p_j), p = softmax of the outputs; needs an
/// identity output (logits; predict returns the softmax) and targets >= 0, a row summing to 1.
pub const LATENT_LOSS_KL_DIVERGENCE: latent_loss = 8;
/// Multi-class cross-entropy -sum_j t_j ln p_j, p = softmax of the outputs; needs an identity
/// output (logits; predict returns the softmax) and targets >= 0.
pub const LATENT_LOSS_MCXENT: latent_loss = 9;

/// What a VAE's training maximises (`latent_vae_objective`; latent_vae_set_objective).
pub type latent_vae_objective = i32;
/// The ELBO under the prior N(0, I) (default).
pub const LATENT_VAE_OBJECTIVE_ELBO: latent_vae_objective = 0;
/// Fyffe's BILBO (Batch Information Lower Bound): needs a constant posterior variance.
pub const LATENT_VAE_OBJECTIVE_BILBO: latent_vae_objective = 1;

/// What a network learns to output (`latent_task`).
pub type latent_task = i32;
/// An autoencoder: the output reconstructs the input (default).
pub const LATENT_TASK_RECONSTRUCT: latent_task = 0;
/// A classifier over `outputs` classes: logits out, softmax cross-entropy (mean per row)
/// against the dataset's labels.
pub const LATENT_TASK_CLASSIFY: latent_task = 1;
/// Regression onto the dataset's `outputs` targets per row with the network's loss (the mean
/// of its row score: per element for MSE).
pub const LATENT_TASK_REGRESS: latent_task = 2;

/// How a layer's inputs reach its units (`latent_connection`): weights, or the trainable
/// functions of Cai et al., "Trainable back-propagated functional transfer matrices" (2017):
/// unit j sums f(x_i; theta_ij) - f(0; theta_ij) over its inputs i (the bias holds the unit's
/// offset: docs/functional.md, "The centred form"), adds the bias and applies the activation.
pub type latent_connection = i32;
/// x W + b (default).
pub const LATENT_CONNECTION_DENSE: latent_connection = 0;
/// f = w^2 x
pub const LATENT_CONNECTION_F01: latent_connection = 1;
/// f = w^3 x
pub const LATENT_CONNECTION_F02: latent_connection = 2;
/// f = a x^2 + c x
pub const LATENT_CONNECTION_F03: latent_connection = 3;
/// f = a x^3 + c x^2 + d x
pub const LATENT_CONNECTION_F04: latent_connection = 4;
/// f = a exp(c x), c x clipped to [-30, 30]
pub const LATENT_CONNECTION_F05: latent_connection = 5;
/// f = s max(w, 0) x, s a fixed random sign per connection
pub const LATENT_CONNECTION_F06: latent_connection = 6;
/// F06 with the "adaptive" gradient that passes through w < 0
pub const LATENT_CONNECTION_F07: latent_connection = 7;
/// f = s relu(a x + c), relu clipped at 20
pub const LATENT_CONNECTION_F08: latent_connection = 8;
/// f = a relu(c x + d)
pub const LATENT_CONNECTION_F09: latent_connection = 9;
/// f = s sigmoid(a x + c)
pub const LATENT_CONNECTION_F10: latent_connection = 10;
/// f = a sigmoid(c x + d)
pub const LATENT_CONNECTION_F11: latent_connection = 11;
/// f = a sin(c x + d)
pub const LATENT_CONNECTION_F12: latent_connection = 12;
/// f = a cos(c x + d)
pub const LATENT_CONNECTION_F13: latent_connection = 13;
/// f = a sinh(c x + d)
pub const LATENT_CONNECTION_F14: latent_connection = 14;
/// f = a (cosh(c x + d) - 1)
pub const LATENT_CONNECTION_F15: latent_connection = 15;
/// f = a tanh(c x + d)
pub const LATENT_CONNECTION_F16: latent_connection = 16;
/// f = w^2 x^2
pub const LATENT_CONNECTION_F17: latent_connection = 17;
/// f = s w^2 x^2
pub const LATENT_CONNECTION_F18: latent_connection = 18;
/// f = a^2 (x + c)^2
pub const LATENT_CONNECTION_F19: latent_connection = 19;
/// f = s a^2 (x + c)^2
pub const LATENT_CONNECTION_F20: latent_connection = 20;
/// The memory function m_ij(t) = tanh(a x_i(t) + c m_ij(t-1) + d): rows are consecutive time
/// steps, the state carries over between rows and calls (gradient truncated to one step).
pub const LATENT_CONNECTION_MEMORY: latent_connection = 21;

/// Sparsity penalty on hidden activations (`latent_sparsity`).
pub type latent_sparsity = i32;
pub const LATENT_SPARSITY_NONE: latent_sparsity = 0;
/// beta * sum_j KL(rho || rho_hat_j) over the minibatch mean activations; sigmoid layers only.
pub const LATENT_SPARSITY_KL: latent_sparsity = 1;
/// lambda * mean over rows of sum_j |h_j|.
pub const LATENT_SPARSITY_L1: latent_sparsity = 2;

/// Denoising corruption of the training input (`latent_corruption`); the loss is against the
/// clean input.
pub type latent_corruption = i32;
pub const LATENT_CORRUPTION_NONE: latent_corruption = 0;
/// Zero each component with probability `corruption_level`.
pub const LATENT_CORRUPTION_MASKING: latent_corruption = 1;
/// Add N(0, corruption_level^2) to each component.
pub const LATENT_CORRUPTION_GAUSSIAN: latent_corruption = 2;
/// With probability `corruption_level`, set a component to its feature's training minimum or
/// maximum (half each).
pub const LATENT_CORRUPTION_SALT_AND_PEPPER: latent_corruption = 3;

/// What part of a training procedure a progress report comes from (`latent_stage`).
pub type latent_stage = i32;
/// A plain latent_trainer_fit().
pub const LATENT_STAGE_TRAIN: latent_stage = 0;
/// Greedy layer-wise pretraining of one encoder layer as a shallow autoencoder.
pub const LATENT_STAGE_PRETRAIN: latent_stage = 1;
/// Fine-tuning of the partial deep autoencoder after a layer was pretrained.
pub const LATENT_STAGE_INTERMEDIATE_FINETUNE: latent_stage = 2;
/// End-to-end fine-tuning of the whole autoencoder.
pub const LATENT_STAGE_FINETUNE: latent_stage = 3;

/// What greedy layer-wise pretraining trains each layer as (`latent_pretrain_method`).
pub type latent_pretrain_method = i32;
/// A shallow autoencoder (with the layer's `latent_layer_regularization`).
pub const LATENT_PRETRAIN_AUTOENCODER: latent_pretrain_method = 0;
/// A restricted Boltzmann machine (CD-k or persistent CD): Bernoulli units for sigmoid layers,
/// unit-variance Gaussian units for identity layers.
pub const LATENT_PRETRAIN_RBM: latent_pretrain_method = 1;

/// Stochastic units of a hidden layer (`latent_stochastic`).
pub type latent_stochastic = i32;
pub const LATENT_STOCHASTIC_NONE: latent_stochastic = 0;
/// Bernoulli samples of a sigmoid layer's output; straight-through gradient.
pub const LATENT_STOCHASTIC_BERNOULLI: latent_stochastic = 1;
/// Output plus N(0, stochastic_sigma^2) noise.
pub const LATENT_STOCHASTIC_GAUSSIAN: latent_stochastic = 2;

/// Reconstruction distribution p(x|z) of a variational autoencoder (`latent_distribution`).
pub type latent_distribution = i32;
/// Bernoulli, p = sigmoid(decoder output): binary or [0, 1] data. One decoder output per
/// column; the NLL is computed from the logits.
pub const LATENT_DISTRIBUTION_BERNOULLI: latent_distribution = 0;
/// Gaussian with a mean and a log-variance per column, both from the decoder: two outputs per
/// column, in block layout [means | log-variances] within the part, the activation applied to
/// both. A density: log-probabilities can be positive.
pub const LATENT_DISTRIBUTION_GAUSSIAN: latent_distribution = 1;
/// Exponential with log-rate act(decoder output): non-negative data. One output per column.
pub const LATENT_DISTRIBUTION_EXPONENTIAL: latent_distribution = 2;
/// Not a distribution: the mean squared error of act(decoder output) (DL4J's loss-function
/// wrapper). Trains, but has no (log-)probability or likelihood.
pub const LATENT_DISTRIBUTION_MSE: latent_distribution = 3;
/// Gaussian with its mean from the decoder and one learned log-variance shared by the part's
/// columns (a parameter, not a decoder output). One output per column.
pub const LATENT_DISTRIBUTION_GAUSSIAN_GLOBAL: latent_distribution = 4;

/// Weight initialisation (`latent_init`).
pub type latent_init = i32;
/// He for ReLU-family layers, Glorot for the others (times 4 for sigmoid layers).
pub const LATENT_INIT_AUTO: latent_init = 0;
pub const LATENT_INIT_GLOROT_UNIFORM: latent_init = 1;
pub const LATENT_INIT_HE_NORMAL: latent_init = 2;
/// U(-0.01, 0.01); functional-transfer layers get the author's U(-0.1, 0.1) ranges instead of
/// the variance-preserving ones (docs/functional.md).
pub const LATENT_INIT_SMALL_UNIFORM: latent_init = 3;
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases (PyTorch's nn.Linear default).
pub const LATENT_INIT_FAN_IN_UNIFORM: latent_init = 4;

/// Optimizer (`latent_optimizer`).
pub type latent_optimizer = i32;
/// SGD with optional (Nesterov) momentum.
pub const LATENT_OPTIMIZER_SGD: latent_optimizer = 0;
pub const LATENT_OPTIMIZER_ADAM: latent_optimizer = 1;
/// Adam with decoupled weight decay.
pub const LATENT_OPTIMIZER_ADAMW: latent_optimizer = 2;
/// RMSprop (PyTorch's, not centered, no momentum); `beta2` is the squared gradients' decay
/// (PyTorch's alpha 0.99, Keras's rho 0.9).
pub const LATENT_OPTIMIZER_RMSPROP: latent_optimizer = 3;
/// AdaGrad (PyTorch's; its eps default is 1e-10).
pub const LATENT_OPTIMIZER_ADAGRAD: latent_optimizer = 4;
/// AdaDelta (PyTorch's: `beta2` is rho, 0.9 there; its learning_rate default is 1.0 and eps 1e-6).
pub const LATENT_OPTIMIZER_ADADELTA: latent_optimizer = 5;
/// AdaMax, Adam with the infinity norm (PyTorch's; its learning_rate default is 2e-3).
pub const LATENT_OPTIMIZER_ADAMAX: latent_optimizer = 6;
/// Lion, the sign of an interpolated momentum, decoupled weight decay (Chen et al. 2023;
/// beta1 0.9, beta2 0.99 and a learning rate 3-10x smaller than Adam's in the paper).
pub const LATENT_OPTIMIZER_LION: latent_optimizer = 7;

/// Learning-rate schedule (`latent_lr_schedule`); see `latent_train_params`.
pub type latent_lr_schedule = i32;
/// `learning_rate` throughout.
pub const LATENT_LR_SCHEDULE_CONSTANT: latent_lr_schedule = 0;
/// Multiplied by `lr_gamma` every `lr_step_epochs` epochs.
pub const LATENT_LR_SCHEDULE_STEP: latent_lr_schedule = 1;
/// Multiplied by `lr_gamma` every epoch.
pub const LATENT_LR_SCHEDULE_EXPONENTIAL: latent_lr_schedule = 2;
/// Cosine from `learning_rate` down to `lr_min` over the run, per minibatch.
pub const LATENT_LR_SCHEDULE_COSINE: latent_lr_schedule = 3;

/// Element type of a caller's buffer (`latent_dtype`).
pub type latent_dtype = i32;
pub const LATENT_DTYPE_F32: latent_dtype = 0;
pub const LATENT_DTYPE_F64: latent_dtype = 1;

/// Memory order of a caller's matrix (`latent_layout`).
pub type latent_layout = i32;
/// C order: rows are contiguous.
pub const LATENT_LAYOUT_ROW_MAJOR: latent_layout = 0;
/// Fortran order (R, Julia, NumPy order='F'): columns are contiguous.
pub const LATENT_LAYOUT_COL_MAJOR: latent_layout = 1;

/// Feature scaling (`latent_scaling`).
pub type latent_scaling = i32;
pub const LATENT_SCALING_NONE: latent_scaling = 0;
/// x / 255 (IDX images).
pub const LATENT_SCALING_DIVIDE_255: latent_scaling = 1;
/// (x - min) / (max - min) per column; constant columns map to 0.
pub const LATENT_SCALING_MIN_MAX: latent_scaling = 2;
/// (x - mean) / std per column; constant columns map to 0.
pub const LATENT_SCALING_Z_SCORE: latent_scaling = 3;

/// Why the progress callback is called (`latent_event`).
pub type latent_event = i32;
/// After every `progress_every` minibatches.
pub const LATENT_EVENT_BATCH: latent_event = 0;
/// After each epoch, with the validation loss.
pub const LATENT_EVENT_EPOCH_END: latent_event = 1;

/// Initial distribution of a Monte-Carlo optimizer parameter (`latent_prior`).
pub type latent_prior = i32;
/// U(a, b), a < b (the default, with a = -1, b = 1, as KernelML).
pub const LATENT_PRIOR_UNIFORM: latent_prior = 0;
/// N(a, b^2): mean a, standard deviation b > 0.
pub const LATENT_PRIOR_NORMAL: latent_prior = 1;

/// Shape of the Monte-Carlo optimizer's draws around the current best, with the parameter's
/// adapted spread s (`latent_proposal`).
pub type latent_proposal = i32;
/// N(best, s^2) (the default).
pub const LATENT_PROPOSAL_NORMAL: latent_proposal = 0;
/// U(best - sqrt(3) s, best + sqrt(3) s): the normal's variance.
pub const LATENT_PROPOSAL_UNIFORM: latent_proposal = 1;
/// A user quantile function q(user, index, best, s, u) of a seeded u in (0, 1).
pub const LATENT_PROPOSAL_CUSTOM: latent_proposal = 2;

/// Constraint of a Monte-Carlo optimizer parameter, applied to every candidate before every
/// loss evaluation (`latent_constraint`).
pub type latent_constraint = i32;
/// Any value (the default).
pub const LATENT_CONSTRAINT_NONE: latent_constraint = 0;
/// Values <= 0 become the floor a > 0 (0 for KernelML's 1e-6).
pub const LATENT_CONSTRAINT_POSITIVE: latent_constraint = 1;
/// Clamped into [a, b], a < b.
pub const LATENT_CONSTRAINT_INTERVAL: latent_constraint = 2;
/// Always a: not optimised; its interval has zero width.
pub const LATENT_CONSTRAINT_FIXED: latent_constraint = 3;

#[cfg(test)]
mod tests {
    use crate::error::status;

    #[test]
    fn status_constants_match_the_rust_error_codes() {
        let pairs = [
            (super::LATENT_STATUS_OK, status::OK),
            (super::LATENT_STATUS_NULL_ARGUMENT, status::NULL_ARGUMENT),
            (super::LATENT_STATUS_INVALID_ARGUMENT, status::INVALID_ARGUMENT),
            (super::LATENT_STATUS_SHAPE_MISMATCH, status::SHAPE_MISMATCH),
            (super::LATENT_STATUS_NON_FINITE, status::NON_FINITE),
            (super::LATENT_STATUS_IO, status::IO),
            (super::LATENT_STATUS_BAD_FORMAT, status::BAD_FORMAT),
            (super::LATENT_STATUS_UNSUPPORTED, status::UNSUPPORTED),
            (super::LATENT_STATUS_OUT_OF_MEMORY, status::OUT_OF_MEMORY),
            (super::LATENT_STATUS_CANCELLED, status::CANCELLED),
            (super::LATENT_STATUS_INTERNAL, status::INTERNAL),
            (super::LATENT_STATUS_BUFFER_TOO_SMALL, status::BUFFER_TOO_SMALL),
            (super::LATENT_STATUS_DIVERGED, status::DIVERGED),
            (super::LATENT_STATUS_BUSY, status::BUSY),
        ];
        for (c, r) in pairs {
            assert_eq!(c, r);
        }
    }
}
