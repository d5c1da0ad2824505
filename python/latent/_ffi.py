"""ctypes mirror of include/latent.h: library discovery, structs, constants, prototypes.

Everything here follows the header field by field; python/tests/test_header.py checks the
struct layouts (sizeof/offsetof) and the constants against include/latent.h.
"""

import ctypes
import ctypes.util
import enum
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_size_t,

    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

#: The LATENT_ABI_VERSION these bindings mirror; checked against latent_abi_version() at import.
ABI_VERSION = 5

# ---------------------------------------------------------------------------------------------
# Library discovery
# ---------------------------------------------------------------------------------------------

if sys.platform == "darwin":
    _LIBNAME = "liblatent.dylib"
elif os.name == "nt":
    _LIBNAME = "latent.dll"
else:
    _LIBNAME = "liblatent.so"


def _candidates():
    """(description, path-or-name) in search order."""
    env = os.environ.get("LATENT_LIBRARY")
    if env:
        yield "$LATENT_LIBRARY", env
    here = Path(__file__).resolve().parent
    yield "the package directory", str(here / _LIBNAME)
    # python/latent/_ffi.py -> the checkout's root is two levels above the package.
    yield "the checkout's target/release", str(here.parent.parent / "target" / "release" / _LIBNAME)
    yield "the system loader", None


def _load():
    tried = []
    for where, path in _candidates():
        if path is None:
            name = ctypes.util.find_library("latent") or _LIBNAME
            try:
                return ctypes.CDLL(name), name
            except OSError as e:
                tried.append(f"  {where} ({name}): {e}")
            continue
        if where == "$LATENT_LIBRARY":
            # An explicit choice: failing to load it is an error, not a reason to look elsewhere.
            try:
                return ctypes.CDLL(path), path
            except OSError as e:
                raise ImportError(f"latent: LATENT_LIBRARY={path} could not be loaded: {e}") from e
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path), path
            except OSError as e:
                tried.append(f"  {where} ({path}): {e}")
        else:
            tried.append(f"  {where}: no {path}")
    raise ImportError(
        "latent: cannot find the shared library " + _LIBNAME + ". Looked in:\n" + "\n".join(tried) +
        "\nBuild it with `cargo build --release` in the latent checkout, or set LATENT_LIBRARY to "
        "the path of " + _LIBNAME + "."
    )


lib, library_path = _load()

# ---------------------------------------------------------------------------------------------
# Constants (the #defines of latent.h), as IntEnums
# ---------------------------------------------------------------------------------------------


class _Enum(enum.IntEnum):
    @classmethod
    def coerce(cls, value, what=None):
        """An enum member from a member, an int, or a case-insensitive name ('relu', 'leaky-relu')."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "_").replace(" ", "_")
            try:
                return cls[key]
            except KeyError:
                names = ", ".join(m.name.lower() for m in cls)
                raise ValueError(f"{what or cls.__name__}: unknown value {value!r} (one of {names})") from None
        if isinstance(value, bool):
            raise TypeError(f"{what or cls.__name__}: expected a name or an int, got {value!r}")
        try:
            return cls(int(value))
        except ValueError:
            # Let the library validate out-of-range integers (it names the field).
            return int(value)


class Status(_Enum):
    OK = 0
    NULL_ARGUMENT = 1
    INVALID_ARGUMENT = 2
    SHAPE_MISMATCH = 3
    NON_FINITE = 4
    IO = 5
    BAD_FORMAT = 6
    UNSUPPORTED = 7
    OUT_OF_MEMORY = 8
    CANCELLED = 9
    INTERNAL = 10
    BUFFER_TOO_SMALL = 11
    DIVERGED = 12
    BUSY = 13


class Activation(_Enum):
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    ELU = 5
    SOFTPLUS = 6
    GELU = 7


class OnnxPart(_Enum):
    """What an exported ONNX file computes (latent_network_export_onnx, latent_vae_export_onnx)."""

    ENCODER = 0
    DECODER = 1
    RECONSTRUCTION = 2
    PREDICT = 3


class Loss(_Enum):
    MSE = 0
    BINARY_CROSS_ENTROPY = 1
    MAE = 2
    L1 = 3
    L2 = 4
    MSLE = 5
    POISSON = 6
    COSINE_PROXIMITY = 7
    KL_DIVERGENCE = 8
    MCXENT = 9


class VaeObjective(_Enum):
    ELBO = 0
    BILBO = 1


class WaitPolicy(_Enum):
    """How the library's idle pool workers wait during a training step (latent_wait_policy)."""
    SPIN = 0
    SPIN_THEN_PARK = 1
    PARK = 2


class MatmulPrecision(_Enum):
    """How the CPU's matrix products multiply (latent_matmul_precision)."""
    F32 = 0
    BF16 = 1


class Task(_Enum):
    RECONSTRUCT = 0
    CLASSIFY = 1
    REGRESS = 2


Connection = _Enum(
    "Connection",
    [("DENSE", 0)] + [(f"F{i:02d}", i) for i in range(1, 21)] + [("MEMORY", 21)],
)


class Sparsity(_Enum):
    NONE = 0
    KL = 1
    L1 = 2


class Corruption(_Enum):
    NONE = 0
    MASKING = 1
    GAUSSIAN = 2
    SALT_AND_PEPPER = 3


class Stage(_Enum):
    TRAIN = 0
    PRETRAIN = 1
    INTERMEDIATE_FINETUNE = 2
    FINETUNE = 3


class PretrainMethod(_Enum):
    AUTOENCODER = 0
    RBM = 1


class Stochastic(_Enum):
    NONE = 0
    BERNOULLI = 1
    GAUSSIAN = 2


class Distribution(_Enum):
    BERNOULLI = 0
    GAUSSIAN = 1
    EXPONENTIAL = 2
    MSE = 3
    GAUSSIAN_GLOBAL = 4


class Init(_Enum):
    AUTO = 0
    GLOROT_UNIFORM = 1
    HE_NORMAL = 2
    SMALL_UNIFORM = 3
    FAN_IN_UNIFORM = 4


class Optimizer(_Enum):
    SGD = 0
    ADAM = 1
    ADAMW = 2
    RMSPROP = 3
    ADAGRAD = 4
    ADADELTA = 5
    ADAMAX = 6
    LION = 7


class LrSchedule(_Enum):
    CONSTANT = 0
    STEP = 1
    EXPONENTIAL = 2
    COSINE = 3


class Dtype(_Enum):
    F32 = 0
    F64 = 1


class Layout(_Enum):
    ROW_MAJOR = 0
    COL_MAJOR = 1


class Scaling(_Enum):
    NONE = 0
    DIVIDE_255 = 1
    MIN_MAX = 2
    Z_SCORE = 3


class Event(_Enum):
    BATCH = 0
    EPOCH_END = 1


class Device(_Enum):
    CPU = 0
    CUDA = 1


class Prior(_Enum):
    UNIFORM = 0
    NORMAL = 1


class Proposal(_Enum):
    NORMAL = 0
    UNIFORM = 1
    CUSTOM = 2


class Constraint(_Enum):
    NONE = 0
    POSITIVE = 1
    INTERVAL = 2
    FIXED = 3


class RbmUnit(_Enum):
    BERNOULLI = 0
    GAUSSIAN = 1


class MonteCarloStrategy(_Enum):
    KERNELML = 0
    ELITIST = 1


class MonteCarloStop(_Enum):
    NONE = 0
    CONVERGED = 1
    MAX_ITERATIONS = 2
    BUDGET = 3
    CANCELLED = 4
    FAILED = 5


#: header prefix -> enum, for the header self-check.
ENUMS = {
    "LATENT_STATUS_": Status,
    "LATENT_ACTIVATION_": Activation,
    "LATENT_LOSS_": Loss,
    "LATENT_TASK_": Task,
    "LATENT_VAE_OBJECTIVE_": VaeObjective,
    "LATENT_CONNECTION_": Connection,
    "LATENT_SPARSITY_": Sparsity,
    "LATENT_CORRUPTION_": Corruption,
    "LATENT_STAGE_": Stage,
    "LATENT_PRETRAIN_": PretrainMethod,
    "LATENT_STOCHASTIC_": Stochastic,
    "LATENT_DISTRIBUTION_": Distribution,
    "LATENT_INIT_": Init,
    "LATENT_OPTIMIZER_": Optimizer,
    "LATENT_LR_SCHEDULE_": LrSchedule,
    "LATENT_DTYPE_": Dtype,
    "LATENT_LAYOUT_": Layout,
    "LATENT_SCALING_": Scaling,
    "LATENT_EVENT_": Event,
    "LATENT_DEVICE_": Device,
    "LATENT_PRIOR_": Prior,
    "LATENT_PROPOSAL_": Proposal,
    "LATENT_CONSTRAINT_": Constraint,
    "LATENT_MONTECARLO_STRATEGY_": MonteCarloStrategy,
    "LATENT_MONTECARLO_STOP_": MonteCarloStop,
    "LATENT_ONNX_PART_": OnnxPart,
    "LATENT_RBM_UNIT_": RbmUnit,
    "LATENT_WAIT_POLICY_": WaitPolicy,
}

# ---------------------------------------------------------------------------------------------
# Structs (field for field as in latent.h; typedef int32_t enums are c_int32)
# ---------------------------------------------------------------------------------------------

_p_u32 = POINTER(c_uint32)
_p_i32 = POINTER(c_int32)

progress_fn = CFUNCTYPE(c_int32, c_void_p, c_void_p)  # (user, const latent_progress *)
objective_fn = CFUNCTYPE(c_double, c_void_p, POINTER(c_double), c_size_t)
quantile_fn = CFUNCTYPE(c_double, c_void_p, c_size_t, c_double, c_double, c_double)
link_fn = CFUNCTYPE(None, c_void_p, POINTER(c_double), c_size_t, POINTER(c_float), c_size_t, c_size_t)
# (user, out, count, n_params, seed)
prior_sampler_fn = CFUNCTYPE(c_int32, c_void_p, POINTER(c_double), c_size_t, c_size_t, c_uint64)
# (user, const latent_montecarlo_view *, out, count, seed)
sampler_fn = CFUNCTYPE(c_int32, c_void_p, c_void_p, POINTER(c_double), c_size_t, c_uint64)
# (user, params, count, n_params)
transform_fn = CFUNCTYPE(c_int32, c_void_p, POINTER(c_double), c_size_t, c_size_t)
# (user, run, iteration, n_rows, rows, batch_size, seed)
batch_fn = CFUNCTYPE(c_int32, c_void_p, c_uint64, c_uint64, c_size_t, POINTER(c_size_t), c_size_t, c_uint64)


class latent_csv_params(Structure):
    _fields_ = [("delimiter", c_char), ("has_header", c_int32), ("label_column", c_int32)]


class latent_metrics(Structure):
    _fields_ = [
        ("rows", c_uint64),
        ("mse", c_double),
        ("bce", c_double),
        ("reverse_ce", c_double),
        ("squared_error_per_row", c_double),
        ("mean_code_activation", c_double),
    ]


class latent_montecarlo_params(Structure):
    _fields_ = [
        ("init_samples", c_uint64),
        ("samples", c_uint64),
        ("elite", c_uint64),
        ("max_iterations", c_uint64),
        ("max_evaluations", c_uint64),
        ("seed", c_uint64),
        ("interval_samples", c_uint64),
        ("tolerance", c_double),
        ("memory", c_double),
        ("shrink", c_double),
        ("restart_fraction", c_double),
        ("patience", c_uint32),
        ("threads", c_uint32),
        ("full_hessian_max", c_uint32),
        ("update_fraction", c_double),
        ("strategy", c_int32),
        ("updates", c_uint32),
        ("update_magnitude", c_double),
        ("z_score", c_double),
        ("z_window", c_uint32),
        ("history_window", c_uint32),
        ("history_limit", c_uint64),
    ]


class latent_montecarlo_view(Structure):
    _fields_ = [
        ("n_params", c_size_t),
        ("best", POINTER(c_double)),
        ("best_loss", c_double),
        ("spreads", POINTER(c_double)),
        ("iteration", c_uint64),
        ("run", c_uint64),
        ("best_by_iter", POINTER(c_double)),
        ("loss_by_iter", POINTER(c_double)),
        ("kept_iterations", c_size_t),
        ("first_kept_iteration", c_uint64),
        ("records", POINTER(c_double)),
        ("record_losses", POINTER(c_double)),
        ("n_records", c_size_t),
    ]


class latent_montecarlo_network_params(Structure):
    _fields_ = [
        ("batch_size", c_uint64),
        ("runs", c_uint32),
        ("link_layer", c_int32),
        ("link_params", c_uint32),
        ("link", link_fn),
        ("link_user", c_void_p),
        ("seed", c_uint64),
        ("batch_sampler", batch_fn),
        ("batch_user", c_void_p),
        ("batch_every_iteration", c_int32),
        ("start_from_network", c_int32),
        ("link2_layer", c_int32),
        ("link2_params", c_uint32),
        ("link2", link_fn),
        ("link2_user", c_void_p),
    ]


class latent_network_params(Structure):
    _fields_ = [
        ("input_dim", c_uint32),
        ("n_encoder", c_uint32),
        ("encoder_units", _p_u32),
        ("encoder_activations", _p_i32),
        ("hidden_activation", c_int32),
        ("code_units", c_uint32),
        ("code_activation", c_int32),
        ("mirror_decoder", c_int32),
        ("n_decoder", c_uint32),
        ("decoder_units", _p_u32),
        ("decoder_activations", _p_i32),
        ("output_activation", c_int32),
        ("loss", c_int32),
        ("tied_weights", c_int32),
        ("init", c_int32),
        ("seed", c_uint64),
        ("sparsity", c_int32),
        ("sparsity_target", c_double),
        ("sparsity_weight", c_double),
        ("sparse_layers", _p_u32),
        ("n_sparse_layers", c_uint32),
        ("alternate_sparsity", c_int32),
        ("alternate_start", c_uint32),
        ("contractive_weight", c_double),
        ("corruption", c_int32),
        ("corruption_level", c_double),
        ("code_noise", c_double),
        ("encoder_stochastic", _p_i32),
        ("code_stochastic", c_int32),
        ("decoder_stochastic", _p_i32),
        ("stochastic_sigma", c_double),
        ("task", c_int32),
        ("outputs", c_uint32),
        ("encoder_connections", _p_i32),
        ("code_connection", c_int32),
        ("decoder_connections", _p_i32),
        ("output_connection", c_int32),
    ]


class latent_evaluation(Structure):
    _fields_ = [("loss", c_double), ("accuracy", c_double), ("mse", c_double), ("rows", c_uint64)]


class latent_layer_regularization(Structure):
    _fields_ = [
        ("sparsity", c_int32),
        ("sparsity_target", c_double),
        ("sparsity_weight", c_double),
        ("contractive_weight", c_double),
        ("corruption", c_int32),
        ("corruption_level", c_double),
    ]


class latent_train_params(Structure):
    _fields_ = [
        ("epochs", c_uint32),
        ("batch_size", c_uint32),
        ("optimizer", c_int32),
        ("nesterov", c_int32),
        ("learning_rate", c_double),
        ("momentum", c_double),
        ("beta1", c_double),
        ("beta2", c_double),
        ("epsilon", c_double),
        ("weight_decay", c_double),
        ("grad_clip_norm", c_double),
        ("validation_fraction", c_double),
        ("seed", c_uint64),
        ("threads", c_uint32),
        ("early_stopping_patience", c_uint32),
        ("shuffle", c_int32),
        ("drop_last", c_int32),
        ("progress_every", c_uint32),
        ("lr_schedule", c_int32),
        ("lr_step_epochs", c_uint32),
        ("warmup_steps", c_uint32),
        ("lr_gamma", c_double),
        ("lr_min", c_double),
        ("momentum_initial", c_double),
        ("momentum_switch_epoch", c_uint32),
        ("checkpoint_path", c_char_p),
        ("checkpoint_every", c_uint32),
    ]


class latent_pretrain_params(Structure):
    _fields_ = [
        ("method", c_int32),
        ("rbm_k", c_uint32),
        ("rbm_persistent", c_int32),
        ("pretrain", latent_train_params),
        ("intermediate_finetune", c_int32),
        ("intermediate", latent_train_params),
        ("finetune_enabled", c_int32),
        ("finetune", latent_train_params),
        ("layers", POINTER(latent_layer_regularization)),
        ("n_layers", c_uint32),
    ]


class latent_progress(Structure):
    _fields_ = [
        ("event", c_int32),
        ("epoch", c_uint32),
        ("epochs", c_uint32),
        ("batch", c_uint64),
        ("batches", c_uint64),
        ("loss", c_double),
        ("penalty", c_double),
        ("stage", c_int32),
        ("stage_layer", c_uint32),
        ("free_energy", c_double),
        ("valid_loss", c_double),
        ("samples_per_second", c_double),
        ("seconds", c_double),
    ]


class latent_epoch_record(Structure):
    _fields_ = [
        ("train_loss", c_double),
        ("train_penalty", c_double),
        ("valid_loss", c_double),
        ("seconds", c_double),
        ("samples_per_second", c_double),
        ("learning_rate", c_double),
    ]


class latent_vae_part(Structure):
    _fields_ = [("size", c_uint32), ("distribution", c_int32), ("activation", c_int32)]


class latent_vae_params(Structure):
    _fields_ = [
        ("input_dim", c_uint32),
        ("n_encoder", c_uint32),
        ("encoder_units", _p_u32),
        ("encoder_activations", _p_i32),
        ("latent_dim", c_uint32),
        ("n_decoder", c_uint32),
        ("decoder_units", _p_u32),
        ("decoder_activations", _p_i32),
        ("hidden_activation", c_int32),
        ("pzx_activation", c_int32),
        ("distribution", c_int32),
        ("distribution_activation", c_int32),
        ("n_parts", c_uint32),
        ("parts", POINTER(latent_vae_part)),
        ("num_samples", c_uint32),
        ("beta", c_double),
        ("kl_warmup_steps", c_uint64),
        ("constant_posterior_variance", c_int32),
        ("posterior_log_variance", c_double),
        ("init", c_int32),
        ("seed", c_uint64),
    ]


class latent_elbo(Structure):
    _fields_ = [("neg_elbo", c_double), ("reconstruction", c_double), ("kl", c_double)]


class latent_device_info(Structure):
    _fields_ = [
        ("ordinal", c_int32),
        ("name", c_char * 256),
        ("total_memory", c_uint64),
        ("free_memory", c_uint64),
        ("compute_major", c_int32),
        ("compute_minor", c_int32),
    ]


class latent_grid_params(Structure):
    _fields_ = [
        ("scale", c_uint32),
        ("padding", c_uint32),
        ("cols", c_uint32),
        ("lo", c_float),
        ("hi", c_float),
        ("format", c_int32),
    ]


#: Every public struct of latent.h, for the header self-check.
STRUCTS = [
    latent_grid_params,
    latent_device_info,
    latent_csv_params,
    latent_metrics,
    latent_montecarlo_params,
    latent_montecarlo_network_params,
    latent_montecarlo_view,
    latent_network_params,
    latent_evaluation,
    latent_layer_regularization,
    latent_train_params,
    latent_pretrain_params,
    latent_progress,
    latent_epoch_record,
    latent_vae_part,
    latent_vae_params,
    latent_elbo,
]

# ---------------------------------------------------------------------------------------------
# Prototypes
# ---------------------------------------------------------------------------------------------

H = c_void_p  # every opaque handle
PH = POINTER(c_void_p)
S = c_int32  # latent_status
_pf = POINTER(c_float)
_pd = POINTER(c_double)
_pu64 = POINTER(c_uint64)
_pz = POINTER(c_size_t)
_byref = ctypes.byref

_PROTOTYPES = {
    "latent_last_error_message": (c_char_p, []),
    "latent_status_string": (c_char_p, [c_int32]),
    "latent_version": (c_char_p, []),
    "latent_version_number": (c_uint32, []),
    "latent_abi_version": (c_uint32, []),
    "latent_data_find": (S, [c_char_p, c_char_p, c_size_t, _pz]),
    # devices
    "latent_cuda_available": (c_int32, []),
    "latent_device_count": (S, [_p_i32]),
    "latent_device_get_info": (S, [c_int32, POINTER(latent_device_info)]),
    "latent_network_to_device": (S, [H, c_int32, c_int32]),
    "latent_network_device": (S, [H, _p_i32, _p_i32]),
    "latent_network_set_tf32": (S, [H, c_int32]),
    "latent_vae_to_device": (S, [H, c_int32, c_int32]),
    "latent_vae_device": (S, [H, _p_i32, _p_i32]),
    # dataset
    "latent_csv_params_default": (latent_csv_params, []),
    "latent_dataset_from_buffer": (S, [c_void_p, c_int32, c_int32, c_size_t, c_size_t, PH]),
    "latent_dataset_set_targets": (S, [H, c_void_p, c_int32, c_int32, c_size_t, c_size_t]),
    "latent_dataset_target_cols": (c_size_t, [H]),
    "latent_dataset_from_idx": (S, [c_char_p, c_char_p, PH]),
    "latent_dataset_from_csv": (S, [c_char_p, POINTER(latent_csv_params), PH]),
    "latent_dataset_free": (None, [H]),
    "latent_dataset_rows": (c_size_t, [H]),
    "latent_dataset_cols": (c_size_t, [H]),
    "latent_dataset_has_labels": (c_int32, [H]),
    "latent_dataset_scaling": (c_int32, [H]),
    "latent_dataset_labels": (S, [H, _p_i32, c_size_t]),
    "latent_dataset_set_labels": (S, [H, _p_i32, c_size_t]),
    "latent_dataset_copy_rows": (S, [H, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_dataset_scale": (S, [H, c_int32]),
    "latent_dataset_apply_scaling": (S, [H, H]),
    "latent_dataset_split": (S, [H, c_double, c_uint64, PH, PH]),
    # network
    "latent_network_params_default": (latent_network_params, []),
    "latent_network_new": (S, [POINTER(latent_network_params), PH]),
    "latent_network_clone": (S, [H, PH]),
    "latent_network_free": (None, [H]),
    "latent_network_input_dim": (c_size_t, [H]),
    "latent_network_code_dim": (c_size_t, [H]),
    "latent_network_output_dim": (c_size_t, [H]),
    "latent_network_task": (c_int32, [H]),
    "latent_network_param_count": (S, [H, _pz]),
    "latent_network_get_params": (S, [H, _pf, c_size_t]),
    "latent_network_set_params": (S, [H, _pf, c_size_t]),
    "latent_network_center_functional": (S, [H, H]),
    "latent_network_set_threads": (S, [H, c_uint32]),
    "latent_network_set_stochastic_inference": (S, [H, c_int32, c_uint64]),
    "latent_network_describe": (S, [H, c_char_p, c_size_t, _pz]),
    "latent_network_encode": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_network_decode": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_network_reconstruct": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_network_predict": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_network_classify": (S, [H, _pf, c_size_t, c_size_t, _p_i32, c_size_t]),
    "latent_network_reconstruction_error": (S, [H, _pf, c_size_t, c_size_t, _pd, c_size_t]),
    "latent_network_jacobian_norms": (S, [H, _pf, c_size_t, c_size_t, _pd, c_size_t]),
    "latent_network_encode_buffer": (S, [H, c_void_p, c_int32, c_int32, c_size_t, c_size_t, c_void_p, c_size_t]),
    "latent_network_reconstruct_buffer": (S, [H, c_void_p, c_int32, c_int32, c_size_t, c_size_t, c_void_p, c_size_t]),
    "latent_network_predict_buffer": (S, [H, c_void_p, c_int32, c_int32, c_size_t, c_size_t, c_void_p, c_size_t]),
    "latent_network_reconstruction_error_buffer": (S, [H, c_void_p, c_int32, c_int32, c_size_t, c_size_t, _pd,
                                                       c_size_t]),
    "latent_network_loss_buffer": (S, [H, c_void_p, c_int32, c_int32, c_size_t, c_size_t, _pd]),
    "latent_network_encode_dataset": (S, [H, H, _pf, c_size_t]),
    "latent_network_reconstruct_dataset": (S, [H, H, _pf, c_size_t]),
    "latent_network_predict_dataset": (S, [H, H, _pf, c_size_t]),
    "latent_network_classify_dataset": (S, [H, H, _p_i32, c_size_t]),
    "latent_network_reconstruction_error_dataset": (S, [H, H, _pd, c_size_t]),
    "latent_network_loss": (S, [H, H, _pd]),
    "latent_network_mse": (S, [H, H, _pd]),
    "latent_network_metrics": (S, [H, H, POINTER(latent_metrics)]),
    "latent_network_evaluate": (S, [H, H, POINTER(latent_evaluation), _pu64, c_size_t]),
    "latent_network_save": (S, [H, c_char_p]),
    "latent_network_load": (S, [c_char_p, PH]),
    "latent_network_export_onnx": (S, [H, c_char_p, c_int32]),
    "latent_network_code_words": (c_size_t, [H]),
    "latent_network_binary_codes": (S, [H, _pf, c_size_t, c_size_t, c_float, _pu64, c_size_t]),
    "latent_network_layer_offsets": (S, [H, c_size_t, _pz, _pz, _pz]),
    # semantic hashing: the address lookup
    "latent_hash_index_new": (S, [_pu64, c_size_t, c_size_t, PH]),
    "latent_hash_index_free": (None, [H]),
    # streamed training rows (.npy files read during the fit)
    "latent_stream_open": (S, [c_char_p, PH]),
    "latent_stream_open_files": (S, [POINTER(c_char_p), c_size_t, PH]),
    "latent_stream_free": (None, [H]),
    "latent_stream_rows": (c_size_t, [H]),
    "latent_stream_cols": (c_size_t, [H]),
    "latent_stream_set_shuffle": (S, [H, c_size_t, c_size_t]),
    "latent_trainer_fit_stream": (S, [H, H, H, H, progress_fn, c_void_p]),
    "latent_hash_index_count": (c_size_t, [H]),
    "latent_hash_index_buckets": (c_size_t, [H]),
    "latent_hash_index_bits": (c_size_t, [H]),
    "latent_hash_index_query_radius": (S, [H, c_uint64, c_uint32, _pu64, POINTER(c_uint32), c_size_t, _pz]),
    "latent_hash_index_query_top_k": (S, [H, c_uint64, c_size_t, _pu64, POINTER(c_uint32), c_size_t, _pz]),
    # rbm
    "latent_rbm_new": (S, [c_size_t, c_size_t, c_int32, c_int32, c_uint64, PH]),
    "latent_rbm_free": (None, [H]),
    "latent_rbm_n_visible": (c_size_t, [H]),
    "latent_rbm_n_hidden": (c_size_t, [H]),
    "latent_rbm_units": (S, [H, _p_i32, _p_i32]),
    "latent_rbm_param_count": (S, [H, _pz]),
    "latent_rbm_get_params": (S, [H, _pf, c_size_t]),
    "latent_rbm_set_params": (S, [H, _pf, c_size_t]),
    "latent_rbm_set_threads": (S, [H, c_uint32]),
    "latent_rbm_fit": (S, [H, POINTER(latent_train_params), c_uint32, c_int32, H, progress_fn, c_void_p]),
    "latent_rbm_history": (S, [H, _pd, _pd, c_size_t, _pz]),
    "latent_rbm_free_energy": (S, [H, _pf, c_size_t, c_size_t, _pd, c_size_t]),
    "latent_rbm_transform": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_rbm_reconstruct": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_rbm_sample": (S, [H, _pf, c_size_t, c_size_t, c_uint32, c_uint64, c_int32, _pf, c_size_t]),
    "latent_rbm_save": (S, [H, c_char_p]),
    "latent_rbm_load": (S, [c_char_p, PH]),
    # transfer
    "latent_network_new_supervised_from_encoder": (
        S,
        [H, c_uint32, _p_u32, _p_i32, c_int32, c_uint32, c_uint64, PH],
    ),
    "latent_network_new_supervised_from_vae": (S, [H, c_uint32, _p_u32, _p_i32, c_int32, c_uint32, c_uint64, PH]),
    "latent_network_freeze": (S, [H, c_uint32, c_uint32, c_uint32]),
    "latent_network_frozen": (S, [H, _p_u32, _p_u32, _p_u32]),
    "latent_network_layer_count": (S, [H, _pz]),
    # score, Jacobian, tangents, exact contractive penalty (docs/manifold.md)
    "latent_network_score": (S, [H, _pf, c_size_t, c_size_t, c_double, _pf, c_size_t]),
    "latent_network_jacobian": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_network_tangents": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t, _pf, c_size_t]),
    # PCA
    "latent_pca_fit": (
        S,
        [_pf, c_size_t, c_size_t, c_size_t, _pd, c_size_t, _pd, c_size_t, _pd, c_size_t, _pd],
    ),
    "latent_pca_transform": (S, [_pf, c_size_t, c_size_t, _pd, _pd, c_size_t, _pf, c_size_t]),
    "latent_network_set_contractive_exact": (S, [H, c_int32]),
    # the input scaling a model carries (docs/data.md)
    "latent_network_set_scaling": (S, [H, c_int32, _pd, _pd, c_size_t]),
    "latent_network_get_scaling": (S, [H, _p_i32, _pd, _pd, c_size_t, _pz]),
    "latent_network_set_scaling_from": (S, [H, H]),
    "latent_network_set_raw_input": (S, [H, c_int32]),
    "latent_network_raw_input": (S, [H, _p_i32]),
    "latent_network_scale_dataset": (S, [H, H]),
    "latent_vae_set_scaling": (S, [H, c_int32, _pd, _pd, c_size_t]),
    "latent_vae_get_scaling": (S, [H, _p_i32, _pd, _pd, c_size_t, _pz]),
    "latent_vae_set_scaling_from": (S, [H, H]),
    "latent_vae_set_raw_input": (S, [H, c_int32]),
    "latent_vae_raw_input": (S, [H, _p_i32]),
    "latent_vae_scale_dataset": (S, [H, H]),
    "latent_network_contractive_exact": (S, [H, _p_i32]),
    # trainer
    "latent_train_params_default": (latent_train_params, []),
    "latent_trainer_new": (S, [POINTER(latent_train_params), PH]),
    "latent_trainer_free": (None, [H]),
    "latent_trainer_fit": (S, [H, H, H, H, progress_fn, c_void_p]),
    "latent_trainer_fit_vae": (S, [H, H, H, H, progress_fn, c_void_p]),
    "latent_trainer_history": (S, [H, POINTER(latent_epoch_record), c_size_t, _pz]),
    "latent_trainer_reset": (S, [H]),
    "latent_trainer_checkpoint": (S, [H, c_char_p]),
    "latent_trainer_set_checkpoints": (S, [H, c_char_p, c_uint32]),
    "latent_trainer_resume_network": (S, [c_char_p, PH, PH]),
    "latent_trainer_resume_vae": (S, [c_char_p, PH, PH]),
    # vae
    "latent_vae_params_default": (latent_vae_params, []),
    "latent_vae_new": (S, [POINTER(latent_vae_params), PH]),
    "latent_vae_free": (None, [H]),
    "latent_vae_input_dim": (c_size_t, [H]),
    "latent_vae_latent_dim": (c_size_t, [H]),
    "latent_vae_param_count": (S, [H, _pz]),
    "latent_vae_get_params": (S, [H, _pf, c_size_t]),
    "latent_vae_set_params": (S, [H, _pf, c_size_t]),
    "latent_vae_describe": (S, [H, c_char_p, c_size_t, _pz]),
    "latent_vae_save": (S, [H, c_char_p]),
    "latent_vae_load": (S, [c_char_p, PH]),
    "latent_vae_export_onnx": (S, [H, c_char_p, c_int32]),
    "latent_vae_encode": (S, [H, _pf, c_size_t, c_size_t, _pf, _pf, c_size_t]),
    "latent_vae_generate_mean": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_vae_generate_random": (S, [H, _pf, c_size_t, c_size_t, c_uint64, _pf, c_size_t]),
    "latent_vae_iwae_bound": (S, [H, H, c_uint32, c_uint64, _pd]),
    "latent_vae_interpolate": (S, [H, _pf, _pf, c_size_t, c_uint32, _pf, _pf, c_size_t]),
    "latent_vae_reconstruct": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_vae_sample_prior": (S, [H, c_size_t, c_uint64, _pf, c_size_t]),
    "latent_vae_log_likelihood": (S, [H, _pf, c_size_t, c_size_t, c_uint32, c_uint64, _pd, c_size_t]),
    "latent_vae_reconstruction_log_probability": (
        S, [H, _pf, c_size_t, c_size_t, c_uint32, c_uint64, _pd, c_size_t]),
    "latent_vae_reconstruction_error": (S, [H, _pf, c_size_t, c_size_t, c_int32, _pd, c_size_t]),
    "latent_vae_reconstruction_error_dataset": (S, [H, H, c_int32, _pd, c_size_t]),
    "latent_vae_set_objective": (S, [H, c_int32]),
    "latent_vae_get_objective": (S, [H, _p_i32]),
    # the pools' wait policy
    "latent_set_wait_policy": (S, [c_int32]),
    "latent_get_wait_policy": (S, [_p_i32]),
    # the precision of matrix products
    "latent_set_matmul_precision": (S, [c_int32]),
    "latent_get_matmul_precision": (S, [_p_i32]),
    "latent_matmul_bf16_available": (c_int32, []),
    # the workspaces models keep between inference calls
    "latent_set_inference_cache_limit": (S, [c_size_t]),
    "latent_get_inference_cache": (S, [_pz, _pz]),
    "latent_vae_elbo": (S, [H, H, c_uint32, c_uint64, POINTER(latent_elbo)]),
    # recirculation
    "latent_network_fit_recirculation": (S, [H, H, c_uint32, c_uint32, c_double, c_double, c_uint64, _pd]),
    # predictive sparse decomposition
    "latent_psd_new": (S, [c_size_t, c_size_t, c_double, c_double, c_uint64, PH]),
    "latent_psd_free": (None, [H]),
    "latent_psd_input_dim": (c_size_t, [H]),
    "latent_psd_code_dim": (c_size_t, [H]),
    "latent_psd_param_count": (S, [H, _pz]),
    "latent_psd_get_params": (S, [H, _pf, c_size_t]),
    "latent_psd_set_params": (S, [H, _pf, c_size_t]),
    "latent_psd_fit": (S, [H, H, c_uint32, c_uint32, c_double, c_uint64, _pd]),
    "latent_psd_encode": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_psd_encode_optimized": (S, [H, _pf, c_size_t, c_size_t, c_uint32, c_double, _pf, c_size_t]),
    "latent_psd_decode": (S, [H, _pf, c_size_t, c_size_t, _pf, c_size_t]),
    "latent_psd_reconstruct": (S, [H, _pf, c_size_t, c_size_t, c_uint32, _pf, c_size_t]),
    # montecarlo
    "latent_montecarlo_params_default": (latent_montecarlo_params, []),
    "latent_montecarlo_new": (S, [POINTER(latent_montecarlo_params), c_size_t, PH]),
    "latent_montecarlo_free": (None, [H]),
    "latent_montecarlo_n_params": (c_size_t, [H]),
    "latent_montecarlo_set_prior": (S, [H, c_size_t, c_size_t, c_int32, c_double, c_double]),
    "latent_montecarlo_set_constraint": (S, [H, c_size_t, c_size_t, c_int32, c_double, c_double]),
    "latent_montecarlo_set_start": (S, [H, _pd, c_size_t]),
    "latent_montecarlo_minimize": (S, [H, objective_fn, c_void_p]),
    "latent_montecarlo_network_params_default": (latent_montecarlo_network_params, []),
    "latent_montecarlo_fit_network": (S, [H, H, H, POINTER(latent_montecarlo_network_params)]),
    "latent_montecarlo_best": (S, [H, _pd, c_size_t]),
    "latent_montecarlo_best_loss": (c_double, [H]),
    "latent_montecarlo_evaluations": (c_uint64, [H]),
    "latent_montecarlo_iterations": (c_uint64, [H]),
    "latent_montecarlo_converged": (c_int32, [H]),
    "latent_montecarlo_history": (S, [H, _pd, c_size_t]),
    "latent_montecarlo_intervals": (
        S,
        [H, objective_fn, c_void_p, c_double, c_double, c_size_t, _pd, _pd, c_size_t],
    ),
    "latent_montecarlo_set_proposal": (S, [H, c_size_t, c_size_t, c_int32, quantile_fn, c_void_p]),
    "latent_montecarlo_set_prior_sampler": (S, [H, prior_sampler_fn, c_void_p]),
    "latent_montecarlo_set_sampler": (S, [H, sampler_fn, c_void_p]),
    "latent_montecarlo_set_transform": (S, [H, transform_fn, c_void_p]),
    "latent_montecarlo_runs": (c_uint64, [H]),
    "latent_montecarlo_stop_reason": (c_int32, [H]),
    "latent_montecarlo_param_by_iter": (S, [H, c_uint64, _pd, c_size_t]),
    "latent_montecarlo_first_kept_iteration": (c_uint64, [H]),
    "latent_montecarlo_records": (S, [H, _pd, c_size_t, _pd, c_size_t, _pz]),
    "latent_montecarlo_run_best": (S, [H, c_uint64, _pd, c_size_t, _pd]),
    "latent_montecarlo_laplace": (
        S,
        [H, objective_fn, c_void_p, c_double, c_double, c_size_t, _pd, _pd, _pd, c_size_t, _pd, c_size_t],
    ),
    "latent_montecarlo_run_intervals": (S, [H, c_double, c_double, c_uint64, _pd, _pd, _pd, c_size_t, _pd, c_size_t]),
    # pictures
    "latent_grid_params_default": (latent_grid_params, []),
    "latent_image_grid_write_ex": (S, [c_char_p, _pf, c_size_t, c_size_t, c_size_t, POINTER(latent_grid_params)]),
    "latent_image_pairs_write_ex": (
        S,
        [c_char_p, _pf, _pf, c_size_t, c_size_t, c_size_t, POINTER(latent_grid_params)],
    ),
    "latent_scatter_svg_write": (S, [c_char_p, _pf, _p_i32, c_size_t, c_char_p]),
    "latent_network_scatter_svg_write": (S, [H, H, c_char_p, c_char_p]),
    "latent_vae_scatter_svg_write": (S, [H, H, c_char_p, c_char_p]),
    "latent_normal_grid_points": (S, [c_size_t, _pf, c_size_t]),
    "latent_vae_manifold_grid_write": (
        S,
        [H, c_char_p, c_size_t, c_size_t, c_size_t, POINTER(latent_grid_params)],
    ),
}

# The version first: a library of another version (or not latent at all) may lack a symbol the
# prototypes name, which would be an AttributeError instead of this ImportError.
try:
    _v = lib.latent_abi_version
except AttributeError:
    raise ImportError(f"latent: {library_path} is not a latent library (no latent_abi_version)") from None
_v.restype, _v.argtypes = c_uint32, []
_found = _v()
if _found != ABI_VERSION:
    raise ImportError(
        f"latent: the library {library_path} has ABI version {_found}, these bindings expect "
        f"{ABI_VERSION}: rebuild the library or update the Python package to match"
    )

for _name, (_res, _args) in _PROTOTYPES.items():
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        raise ImportError(
            f"latent: the library {library_path} (ABI version {_found}) has no {_name}: "
            "rebuild the library or update the Python package to match"
        ) from None
    _f.restype = _res
    _f.argtypes = _args

del _name, _res, _args, _f, _found, _v
