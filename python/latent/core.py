"""The handle classes: Network, Dataset, Trainer, Vae, Psd, MonteCarlo."""

import contextlib
import ctypes
import math
import os
import signal
import threading
from collections import namedtuple
from ctypes import POINTER, byref, c_char_p, c_double, c_float, c_int32, c_size_t, c_uint32, c_uint64, c_void_p

import numpy as np

from . import _ffi
from ._ffi import (
    Activation,
    Connection,
    Constraint,
    Corruption,
    Device,
    Distribution,
    Dtype,
    Event,
    Init,
    Layout,
    Loss,
    LrSchedule,
    MatmulPrecision,
    MonteCarloStop,
    MonteCarloStrategy,
    OnnxPart,
    Optimizer,
    Prior,
    RbmUnit,
    Proposal,
    Scaling,
    Sparsity,
    Stage,
    Status,
    Stochastic,
    Task,
    VaeObjective,
    WaitPolicy,
    lib,
)
from .errors import Busy, ShapeMismatch, check

Progress = namedtuple("Progress", [f for f, _ in _ffi.latent_progress._fields_])
Progress.__doc__ = "What a Trainer.fit progress callback receives (latent_progress)."
EpochRecord = namedtuple("EpochRecord", [f for f, _ in _ffi.latent_epoch_record._fields_])
Evaluation = namedtuple("Evaluation", ["loss", "accuracy", "mse", "rows", "confusion"])
Metrics = namedtuple("Metrics", [f for f, _ in _ffi.latent_metrics._fields_])
Elbo = namedtuple("Elbo", ["neg_elbo", "reconstruction", "kl"])

# ---------------------------------------------------------------------------------------------
# Array helpers
# ---------------------------------------------------------------------------------------------


def _ptr(arr, ctype):
    return arr.ctypes.data_as(POINTER(ctype))


def _rows(x, what="x"):
    """A 2-D C-contiguous aligned float32 array (x itself when it already is one: no copy), and
    whether x was a single 1-D row."""
    a = np.asarray(x)
    single = a.ndim == 1
    if single:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array (rows x cols) or one row, got shape {np.shape(x)}")
    return np.require(a, np.float32, ["C_CONTIGUOUS", "ALIGNED"]), single


def _matrix_for_buffer(x, what="data"):
    """(array, dtype, layout) for the calls that read f32/f64 in either order, copying only when
    the array is neither C- nor Fortran-contiguous, or of another type."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a.reshape(-1, 1) if what == "targets" else a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32 if a.dtype.itemsize <= 4 and a.dtype.kind in "iub" else np.float64)
    if not a.flags.aligned:
        a = a.copy()
    if a.flags.c_contiguous:
        layout = Layout.ROW_MAJOR
    elif a.flags.f_contiguous:
        layout = Layout.COL_MAJOR
    else:
        a = np.ascontiguousarray(a)
        layout = Layout.ROW_MAJOR
    dtype = Dtype.F32 if a.dtype == np.float32 else Dtype.F64
    return a, dtype, layout


def _out(single, arr):
    return arr[0] if single else arr


_INT_RANGES = {
    ctypes.c_uint8: (0, 2**8 - 1),
    c_uint32: (0, 2**32 - 1),
    c_int32: (-(2**31), 2**31 - 1),
    c_uint64: (0, 2**64 - 1),
    ctypes.c_int64: (-(2**63), 2**63 - 1),
    c_size_t: (0, 2 ** (8 * ctypes.sizeof(c_size_t)) - 1),
}


def _int(value, what, lo=0, hi=2**32 - 1):
    """An int from an int, a NumPy integer, a bool or an integral float, in [lo, hi]; anything
    else is a TypeError and a value out of range a ValueError, naming `what` (ctypes would wrap
    2**32 + 10 to 10, and int() would take 2.7 as 2)."""
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    elif isinstance(value, (int, np.integer)):
        value = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        raise TypeError(f"{what}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{what}: {value} is out of range ({lo} to {hi})")
    return value


def _set_field(p, name, value, owner):
    """Sets field `name` of the ctypes struct `p`, an integer field only to an integer in its
    type's range (see _int)."""
    ftype = dict(type(p)._fields_)[name]
    if ftype in _INT_RANGES:
        lo, hi = _INT_RANGES[ftype]
        value = _int(value, f"{owner}: {name}", lo, hi)
    setattr(p, name, value)


def _u32_array(values, what):
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what}: expected a list of integers, got the string {values!r}")
    vals = [_int(v, what, -(2**63), 2**32 - 1) for v in values]
    if any(v < 0 for v in vals):
        raise ValueError(f"{what}: widths must be positive, got {vals}")
    return (c_uint32 * len(vals))(*vals)


def _enum_array(values, enum, what):
    return (c_int32 * len(values))(*[int(enum.coerce(v, what)) for v in values])


def _describe(fn, h):
    needed = c_size_t(0)
    st = fn(h, None, 0, byref(needed))
    if st not in (Status.OK, Status.BUFFER_TOO_SMALL):
        check(st)
    buf = ctypes.create_string_buffer(max(needed.value, 1))
    check(fn(h, buf, len(buf), None))
    return buf.value.decode("utf-8", "replace")


def _path(p):
    return os.fsencode(os.fspath(p))


def cuda_available():
    """True when the library has the CUDA backend and the machine a GPU."""
    return bool(lib.latent_cuda_available())


def devices():
    """The GPUs as dicts (ordinal, name, total_memory, free_memory, compute_capability); an
    empty list without a driver or GPU."""
    n = c_int32(0)
    if lib.latent_device_count(byref(n)) != 0:
        return []
    out = []
    for i in range(n.value):
        info = _ffi.latent_device_info()
        check(lib.latent_device_get_info(i, byref(info)))
        out.append({
            "ordinal": info.ordinal,
            "name": info.name.decode("utf-8", "replace"),
            "total_memory": info.total_memory,
            "free_memory": info.free_memory,
            "compute_capability": (info.compute_major, info.compute_minor),
        })
    return out


def _placement(fn, handle):
    d, o = c_int32(0), c_int32(0)
    check(fn(handle, byref(d), byref(o)))
    return (Device(d.value).name.lower(), o.value)


def find_data(name):
    """Absolute path of a data set file or directory ("mnist", "digits/digits.csv.gz") through
    the library's resolver ($LATENT_DATA_DIR, ../shared/data, /usr/share/datasets); raises
    latent.LatentIOError (listing where it looked) when not found."""
    needed = c_size_t(0)
    st = lib.latent_data_find(name.encode(), None, 0, byref(needed))
    if st not in (Status.OK, Status.BUFFER_TOO_SMALL):
        check(st)
    buf = ctypes.create_string_buffer(needed.value)
    check(lib.latent_data_find(name.encode(), buf, len(buf), None))
    return os.fsdecode(buf.value)


def version():
    return lib.latent_version().decode()


def set_wait_policy(policy):
    """Sets how the library's idle pool workers wait during a training step, for the whole
    process: "spin", "spin-then-park" or "park" (OpenMP's "active" and "passive" too), or a
    WaitPolicy. Overrides $LATENT_WAIT_POLICY; results are the same bit for bit under each."""
    if isinstance(policy, str):
        policy = {"active": "spin", "passive": "park"}.get(policy.strip().lower(), policy)
    check(lib.latent_set_wait_policy(WaitPolicy.coerce(policy, "wait policy")))


def wait_policy():
    """The wait policy in force (a WaitPolicy): the last set_wait_policy, else
    $LATENT_WAIT_POLICY's, else the default."""
    o = c_int32()
    check(lib.latent_get_wait_policy(byref(o)))
    return WaitPolicy(o.value)


_PRECISION_NAMES = {"float32": "f32", "highest": "f32", "bfloat16": "bf16", "medium": "bf16"}


def set_matmul_precision(precision):
    """Sets how every CPU matrix product of the process multiplies: "f32" (the default) or
    "bf16" (each product of two elements in bfloat16, sums in f32: about twice the f32 rate where
    the CPU has AVX-512 BF16; also "float32", "highest", "bfloat16", "medium", as PyTorch and JAX
    name them), or a MatmulPrecision. Overrides $LATENT_MATMUL_PRECISION. "bf16" on a CPU
    without AVX-512 BF16 raises latent.Unsupported (see bf16_available())."""
    if isinstance(precision, str):
        precision = _PRECISION_NAMES.get(precision.strip().lower(), precision)
    check(lib.latent_set_matmul_precision(MatmulPrecision.coerce(precision, "matmul precision")))


def matmul_precision():
    """The precision in force (a MatmulPrecision): the last set_matmul_precision, else
    $LATENT_MATMUL_PRECISION's where the CPU has it, else F32."""
    o = c_int32()
    check(lib.latent_get_matmul_precision(byref(o)))
    return MatmulPrecision(o.value)


def bf16_available():
    """Whether this CPU multiplies in bfloat16 (AVX-512 BF16: AMD Zen 4 and later, Intel Cooper
    Lake, Sapphire Rapids and later)."""
    return bool(lib.latent_matmul_bf16_available())


InferenceCache = namedtuple("InferenceCache", ["limit", "held"])


def set_inference_cache_limit(nbytes):
    """Sets the most bytes all networks and VAEs of the process keep, together, between
    inference calls (each keeps a call's workspace for the next call of the same shape); 0 keeps
    none. Overrides $LATENT_INFERENCE_CACHE_MB (default 256 MB). What the models keep beyond a
    lowered limit is freed before this returns. Results are the same bits whatever the limit."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)):
        raise TypeError(f"the inference cache limit must be a whole number of bytes, not {nbytes!r}")
    if nbytes < 0:
        raise ValueError(f"the inference cache limit must be at least 0 bytes, not {nbytes}")
    check(lib.latent_set_inference_cache_limit(min(int(nbytes), ctypes.c_size_t(-1).value)))


def inference_cache():
    """InferenceCache(limit, held): the limit in force and the bytes all models keep now."""
    limit, held = c_size_t(), c_size_t()
    check(lib.latent_get_inference_cache(byref(limit), byref(held)))
    return InferenceCache(limit.value, held.value)


# ---------------------------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------------------------


class _Handle:
    """An owned library handle, freed by close(), `with` or the garbage collector."""

    _free_name = None

    def __init__(self, handle):
        if not handle:
            raise ValueError("null handle")
        self._h = c_void_p(handle) if isinstance(handle, int) else handle

    @property
    def _handle(self):
        h = getattr(self, "_h", None)
        if h is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return h

    def close(self):
        """Frees the handle now (idempotent). Handles that need this one keep it alive. Closing
        one that a running fit uses (from its progress callback, or from another thread) raises
        latent.Busy and changes nothing."""
        with _USE_LOCK:
            if getattr(self, "_busy", 0):
                raise Busy(f"{type(self).__name__} is in use by a running fit: close it after the fit returns")
            h = getattr(self, "_h", None)
            self._h = None
        if h is not None:
            getattr(lib, self._free_name)(h)

    def __reduce__(self):
        # The default copy would share the C handle between two objects (a double free later).
        raise TypeError(
            f"{type(self).__name__} owns a library handle and cannot be copied or pickled"
            + ("; save() it and load it instead" if hasattr(self, "save") else "")
        )

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @classmethod
    def _wrap(cls, handle):
        obj = cls.__new__(cls)
        _Handle.__init__(obj, handle)
        return obj


#: Guards _Handle._busy against a close() racing a fit's start on another thread.
_USE_LOCK = threading.Lock()


@contextlib.contextmanager
def _in_use(*objs):
    """Marks `objs` (handles, or None) as used by a running call: close() on them raises Busy
    until it returns. A fit's progress callback, or another thread, that freed the model, the
    data or the trainer under the fit crashed the interpreter."""
    objs = [o for o in objs if isinstance(o, _Handle)]
    with _USE_LOCK:
        for o in objs:
            o._handle  # raises ValueError if already closed
        for o in objs:
            o._busy = getattr(o, "_busy", 0) + 1
    try:
        yield
    finally:
        with _USE_LOCK:
            for o in objs:
                o._busy -= 1


@contextlib.contextmanager
def _interruptible():
    """Ctrl-C during a fit on the main thread: while the call runs, SIGINT only sets a flag,
    which the progress trampoline reads at its next call (an epoch end, or every progress_every
    minibatches) and stops the fit; the call then raises KeyboardInterrupt. (Raised inside the
    trampoline, the interrupt could land before its try: ctypes printed and dropped it, and the
    fit either ran on or reported Cancelled.) Left alone off the main thread, or when the
    program installed a SIGINT handler of its own. Yields the flag (a dict), or None."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield None
        return
    flag = {"hit": False}

    def on_sigint(_signum, _frame):
        flag["hit"] = True

    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, old)


def _progress_call(call, progress, *objs):
    """Runs `call(cb)` (a fit taking a latent_progress_fn) with `progress(Progress)` as its
    callback, `objs` marked in use and Ctrl-C handled (_interruptible). Returns True when the
    fit ran to its end, False when the callback stopped it; an exception of the callback (or
    a KeyboardInterrupt) is re-raised here. Nothing may propagate into C."""
    state = {"error": None, "stopped": False}
    with _in_use(*objs), _interruptible() as flag:
        cb = _ffi.progress_fn()  # NULL
        if progress is not None or flag is not None:

            def trampoline(_user, p):
                try:
                    if flag is not None and flag["hit"]:
                        state["error"] = KeyboardInterrupt()
                        return 1
                    if progress is None:
                        return 0
                    c = ctypes.cast(p, POINTER(_ffi.latent_progress)).contents
                    rec = Progress(*(getattr(c, f) for f in Progress._fields))
                    rec = rec._replace(event=Event.coerce(rec.event), stage=Stage.coerce(rec.stage))
                    if progress(rec):
                        state["stopped"] = True
                        return 1
                    return 0
                except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt too
                    state["error"] = e
                    return 1

            cb = _ffi.progress_fn(trampoline)
        status = call(cb)
        if state["error"] is None and flag is not None and flag["hit"]:
            # Ctrl-C after the last callback: the fit is done, the interrupt still counts.
            state["error"] = KeyboardInterrupt()
    if state["error"] is not None:
        raise state["error"]
    if status == Status.CANCELLED and state["stopped"]:
        return False
    check(status)
    return True


def _new_handle(fn, *args):
    out = c_void_p()
    check(fn(*args, byref(out)))
    return out


# ---------------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------------


class Dataset(_Handle):
    """Rows of float samples with optional int labels or real targets (latent_dataset).

    `Dataset(x, labels=None, targets=None)` copies a NumPy matrix into the library: float32 or
    float64, C- or Fortran-order are passed as they are (the library reads either); other types
    or strided views are converted first."""

    _free_name = "latent_dataset_free"

    def __init__(self, x, labels=None, targets=None):
        a, dtype, layout = _matrix_for_buffer(x)
        rows, cols = a.shape
        h = _new_handle(lib.latent_dataset_from_buffer, a.ctypes.data_as(c_void_p), dtype, layout, rows, cols)
        super().__init__(h)
        if labels is not None:
            self.labels = labels
        if targets is not None:
            self.set_targets(targets)

    @classmethod
    def from_csv(cls, path, delimiter=",", has_header=False, label_column=None):
        """A numeric CSV/TSV file, gzip or not; `label_column` (0-based) holds integral labels."""
        p = lib.latent_csv_params_default()
        p.delimiter = delimiter.encode() if isinstance(delimiter, str) else bytes([delimiter])
        p.has_header = int(bool(has_header))
        p.label_column = -1 if label_column is None else int(label_column)
        return cls._wrap(_new_handle(lib.latent_dataset_from_csv, _path(path), byref(p)))

    @classmethod
    def from_idx(cls, images, labels=None):
        """MNIST-style IDX images (gzip or not), unscaled 0..255, and optional labels."""
        lp = None if labels is None else _path(labels)
        return cls._wrap(_new_handle(lib.latent_dataset_from_idx, _path(images), lp))

    @property
    def rows(self):
        return lib.latent_dataset_rows(self._handle)

    @property
    def cols(self):
        return lib.latent_dataset_cols(self._handle)

    @property
    def shape(self):
        return (self.rows, self.cols)

    def __len__(self):
        return self.rows

    @property
    def has_labels(self):
        return bool(lib.latent_dataset_has_labels(self._handle))

    @property
    def labels(self):
        """The int32 labels (a copy), or None."""
        if not self.has_labels:
            return None
        out = np.empty(self.rows, np.int32)
        check(lib.latent_dataset_labels(self._handle, _ptr(out, c_int32), out.size))
        return out

    @labels.setter
    def labels(self, labels):
        lab = np.asarray(labels)
        if lab.dtype.kind == "f":
            if not np.all(lab == np.round(lab)):
                raise ValueError("labels must be integral")
        if lab.dtype.kind not in "iufb":
            raise TypeError(f"labels: expected integers, got an array of {lab.dtype}")
        if lab.size and (lab.min() < -(2**31) or lab.max() > 2**31 - 1):
            raise ValueError("labels: a label is outside the int32 range")
        lab = np.require(lab.reshape(-1), np.int32, ["C_CONTIGUOUS", "ALIGNED"])
        check(lib.latent_dataset_set_labels(self._handle, _ptr(lab, c_int32), lab.size))

    def set_targets(self, targets):
        """Real-valued targets (rows x k) for a regression network."""
        a, dtype, layout = _matrix_for_buffer(targets, "targets")
        check(lib.latent_dataset_set_targets(self._handle, a.ctypes.data_as(c_void_p), dtype, layout, *a.shape))

    @property
    def target_cols(self):
        return lib.latent_dataset_target_cols(self._handle)

    @property
    def scaling(self):
        return Scaling(lib.latent_dataset_scaling(self._handle))

    def scale(self, method):
        """Fits and applies a scaling ('min_max', 'z_score', 'divide_255'); returns self."""
        check(lib.latent_dataset_scale(self._handle, Scaling.coerce(method, "scaling")))
        return self

    def apply_scaling(self, fitted):
        """Applies the scaling fitted on `fitted` (e.g. the training set); returns self."""
        check(lib.latent_dataset_apply_scaling(self._handle, fitted._handle))
        return self

    def split(self, fraction, seed=0):
        """(first, second): `second` gets round(fraction * rows) rows, seeded."""
        a, b = c_void_p(), c_void_p()
        check(lib.latent_dataset_split(self._handle, float(fraction), int(seed), byref(a), byref(b)))
        return Dataset._wrap(a), Dataset._wrap(b)

    def __array__(self, dtype=None, copy=None):
        # A Dataset wherever an array is taken (encode, decode, ...): its rows, copied out.
        a = self.to_numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def to_numpy(self, first=0, count=None):
        """Rows first..first+count as a float32 (count x cols) array (a copy)."""
        if count is None:
            count = self.rows - first
        out = np.empty((count, self.cols), np.float32)
        check(lib.latent_dataset_copy_rows(self._handle, first, count, _ptr(out, c_float), out.size))
        return out

    def __repr__(self):
        if getattr(self, "_h", None) is None:
            return "<latent.Dataset (closed)>"
        return f"<latent.Dataset {self.rows}x{self.cols} labels={self.has_labels} scaling={self.scaling.name.lower()}>"


def _dataset(d, what="dataset"):
    """A Dataset from a Dataset or an array-like (a temporary copy)."""
    if isinstance(d, Dataset):
        return d
    if d is None:
        return None
    return Dataset(d)


# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------


def _get_params(prefix, handle):
    """A model's parameters as a float32 vector (a copy), through PREFIX_param_count/get_params."""
    n = c_size_t()
    check(getattr(lib, prefix + "_param_count")(handle, byref(n)))
    out = np.empty(n.value, np.float32)
    check(getattr(lib, prefix + "_get_params")(handle, _ptr(out, c_float), out.size))
    return out


def _set_params(prefix, handle, values):
    """Replaces a model's parameters through PREFIX_set_params."""
    v = np.require(np.asarray(values).reshape(-1), np.float32, ["C_CONTIGUOUS", "ALIGNED"])
    check(getattr(lib, prefix + "_set_params")(handle, _ptr(v, c_float), v.size))


def _model_from_bytes(cls, data):
    """Unpickles a Network or Vae from its model file's bytes."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.latent")
        with open(path, "wb") as f:
            f.write(data)
        return cls.load(path)


class _ScaledModel:
    """The input scaling a network or VAE carries (docs/data.md): a fit on a scaled Dataset
    stores it; in raw-input mode encode, reconstruct and the scores take raw rows and give raw
    units back. Saved with the model."""

    _prefix = ""

    def _fn(self, name):
        return getattr(lib, f"{self._prefix}_{name}")

    @property
    def scaling(self):
        """(Scaling, a, b): the method and its per-column statistics (min and max, or mean and
        std; empty arrays for NONE and DIVIDE_255)."""
        method, cols = c_int32(), c_size_t()
        status = self._fn("get_scaling")(self._handle, byref(method), None, None, 0, byref(cols))
        if status != Status.BUFFER_TOO_SMALL:
            check(status)
        a = np.empty(cols.value, np.float64)
        b = np.empty(cols.value, np.float64)
        check(self._fn("get_scaling")(self._handle, byref(method), _ptr(a, c_double), _ptr(b, c_double), a.size,
                                      byref(cols)))
        return Scaling(method.value), a, b

    def set_scaling(self, method, a=None, b=None):
        """Stores a scaling: Scaling.MIN_MAX with a = min, b = max per column, Z_SCORE with a =
        mean, b = std; NONE removes it, DIVIDE_255 takes no statistics."""
        a = np.ascontiguousarray(np.asarray([] if a is None else a, np.float64))
        b = np.ascontiguousarray(np.asarray([] if b is None else b, np.float64))
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"a and b must be 1-D arrays of one length, not {a.shape} and {b.shape}")
        pa = _ptr(a, c_double) if a.size else None
        pb = _ptr(b, c_double) if b.size else None
        check(self._fn("set_scaling")(self._handle, Scaling.coerce(method, "scaling"), pa, pb, a.size))

    def set_scaling_from(self, dataset):
        """Stores the scaling fitted on a scaled Dataset."""
        check(self._fn("set_scaling_from")(self._handle, dataset._handle))

    @property
    def raw_input(self):
        """True: the calls that take rows take raw rows and apply the stored scaling."""
        v = c_int32()
        check(self._fn("raw_input")(self._handle, byref(v)))
        return bool(v.value)

    @raw_input.setter
    def raw_input(self, on):
        check(self._fn("set_raw_input")(self._handle, int(bool(on))))

    def scale_dataset(self, dataset):
        """Scales an unscaled Dataset with the stored scaling."""
        check(self._fn("scale_dataset")(self._handle, dataset._handle))

    def __reduce__(self):
        """Pickles as the model file's bytes (parameters, spec, scaling and raw-input mode)."""
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.latent")
            self.save(path)
            with open(path, "rb") as f:
                return (_model_from_bytes, (type(self), f.read()))


class Network(_ScaledModel, _Handle):
    """An autoencoder, classifier or regressor (latent_network).

    Keyword arguments mirror latent_network_params: ``input_dim`` and ``code`` (code_units) are
    required; ``encoder`` is the list of encoder hidden widths; ``decoder`` None mirrors the
    encoder (mirror_decoder = 1), a list gives explicit decoder widths (mirror_decoder = 0).
    Enumerations take names ('relu', 'binary_cross_entropy', 'f03') or the IntEnums.
    ``task`` is 'reconstruct' (default), 'classify' (then ``outputs`` classes; the output
    activation defaults to identity) or 'regress'. Other fields of latent_network_params
    (seed, init, sparsity, sparsity_target, corruption, corruption_level, tied_weights, ...)
    are accepted under their C names; ``contractive_exact=True`` chooses the whole encoder's
    contractive penalty (see the ``contractive_exact`` property)."""

    _prefix = "latent_network"

    _free_name = "latent_network_free"

    _ENUM_FIELDS = {
        "hidden_activation": Activation,
        "code_activation": Activation,
        "output_activation": Activation,
        "loss": Loss,
        "init": Init,
        "sparsity": Sparsity,
        "corruption": Corruption,
        "code_stochastic": Stochastic,
        "task": Task,
        "code_connection": Connection,
        "output_connection": Connection,
    }
    _ARRAY_FIELDS = {"encoder_units", "encoder_activations", "n_encoder", "decoder_units", "decoder_activations",
                     "n_decoder", "mirror_decoder", "sparse_layers", "n_sparse_layers", "encoder_stochastic",
                     "decoder_stochastic", "encoder_connections", "decoder_connections", "code_units"}

    def __init__(
        self,
        input_dim,
        code,
        encoder=(),
        decoder=None,
        *,
        activation=None,
        encoder_activations=None,
        decoder_activations=None,
        encoder_connections=None,
        decoder_connections=None,
        encoder_stochastic=None,
        decoder_stochastic=None,
        sparse_layers=None,
        task="reconstruct",
        outputs=0,
        contractive_exact=False,
        **fields,
    ):
        p = lib.latent_network_params_default()
        keep = []  # arrays that must live until latent_network_new returns
        p.input_dim = _int(input_dim, "input_dim")
        p.code_units = _int(code, "code")
        task = Task.coerce(task, "task")
        p.task = task
        p.outputs = _int(outputs, "outputs")
        # A supervised head's output must be identity (docs/supervised.md); the regressor kept
        # the sigmoid default and failed on real targets (an outside test).
        if task in (Task.CLASSIFY, Task.REGRESS) and "output_activation" not in fields:
            fields["output_activation"] = Activation.IDENTITY
        if activation is not None:
            fields["hidden_activation"] = activation
        if decoder is None and task != Task.RECONSTRUCT:
            decoder = []  # a supervised network's decoder is never mirrored

        def arr(field, value, n, enum=None):
            if value is None:
                return
            if len(value) != n:
                raise ValueError(f"{field}: expected {n} values (one per layer), got {len(value)}")
            a = _enum_array(value, enum, field) if enum else _u32_array(value, field)
            keep.append(a)
            setattr(p, field, ctypes.cast(a, type(getattr(p, field))))

        if isinstance(encoder, (str, bytes)):
            raise TypeError(f"encoder: expected a list of widths, got the string {encoder!r}")
        encoder = list(encoder)
        p.n_encoder = len(encoder)
        arr("encoder_units", encoder, len(encoder))
        arr("encoder_activations", encoder_activations, len(encoder), Activation)
        arr("encoder_connections", encoder_connections, len(encoder), Connection)
        arr("encoder_stochastic", encoder_stochastic, len(encoder), Stochastic)
        if decoder is None:
            p.mirror_decoder = 1
            for name, v in (("decoder_activations", decoder_activations), ("decoder_connections",
                            decoder_connections), ("decoder_stochastic", decoder_stochastic)):
                if v is not None:
                    raise ValueError(f"{name} needs an explicit decoder=[...] (a mirrored decoder mirrors the encoder)")
        else:
            decoder = list(decoder)
            p.mirror_decoder = 0
            p.n_decoder = len(decoder)
            arr("decoder_units", decoder, len(decoder))
            arr("decoder_activations", decoder_activations, len(decoder), Activation)
            arr("decoder_connections", decoder_connections, len(decoder), Connection)
            arr("decoder_stochastic", decoder_stochastic, len(decoder), Stochastic)
        if sparse_layers is not None:
            a = _u32_array(sparse_layers, "sparse_layers")
            keep.append(a)
            p.sparse_layers = ctypes.cast(a, POINTER(c_uint32))
            p.n_sparse_layers = len(sparse_layers)

        names = {f for f, _ in _ffi.latent_network_params._fields_}
        for k, v in fields.items():
            if k not in names or k in self._ARRAY_FIELDS or k in ("input_dim", "task", "outputs"):
                raise TypeError(f"Network() got an unexpected keyword argument {k!r}")
            if k in self._ENUM_FIELDS:
                v = self._ENUM_FIELDS[k].coerce(v, k)
            _set_field(p, k, v, "Network()")
        super().__init__(_new_handle(lib.latent_network_new, byref(p)))
        if contractive_exact:
            self.contractive_exact = True

    @classmethod
    def load(cls, path):
        """A network saved by save() (or by latent_network_save from any language)."""
        return cls._wrap(_new_handle(lib.latent_network_load, _path(path)))

    def save(self, path):
        """Saves atomically (the file is either the complete new model or untouched)."""
        check(lib.latent_network_save(self._handle, _path(path)))

    def export_onnx(self, path, part="encoder"):
        """Writes one part of the network as an ONNX model (opset 17) for ONNX Runtime and other
        runtimes: "encoder" (input "x" -> "code"), "decoder" ("code" -> "output"),
        "reconstruction" ("x" -> "reconstruction") or "predict" ("x" -> "prediction", a
        classifier's probabilities). Inputs and outputs are float32 [batch, width]. A memory
        layer, or stochastic inference switched on, raises latent.Unsupported."""
        check(lib.latent_network_export_onnx(self._handle, _path(path), OnnxPart.coerce(part, "part")))

    def clone(self):
        return Network._wrap(_new_handle(lib.latent_network_clone, self._handle))

    @classmethod
    def from_encoder(cls, source, outputs, hidden=(), *, task="classify", activations=None, seed=0):
        """A classifier (``task='classify'``, ``outputs`` classes) or regression network
        (``'regress'``, ``outputs`` targets) whose first layers are the encoder of ``source``, a
        trained Network (its encoder hidden layers and code layer) or Vae (its encoder hidden
        layers and the mean of q(z|x)), parameters copied exactly; then the new ``hidden``
        layers (widths; ``activations`` names, default ReLU) and the output layer, initialised
        from ``seed``. The transferred layers are ``range(net.transferred_layers)``: freeze them
        with ``net.freeze(net.transferred_layers)``."""
        task = Task.coerce(task, "task")
        hidden = list(hidden)
        units = _u32_array(hidden, "hidden")
        acts = None
        if activations is not None:
            if len(activations) != len(hidden):
                raise ValueError(f"activations: expected {len(hidden)} values (one per hidden layer)")
            acts = _enum_array(activations, Activation, "activations")
        if isinstance(source, Vae):
            fn = lib.latent_network_new_supervised_from_vae
        elif isinstance(source, Network):
            fn = lib.latent_network_new_supervised_from_encoder
        else:
            raise TypeError(f"source must be a latent.Network or latent.Vae, not {type(source).__name__}")
        au = ctypes.cast(units, POINTER(c_uint32)) if hidden else None
        aa = ctypes.cast(acts, POINTER(c_int32)) if acts is not None else None
        net = cls._wrap(_new_handle(fn, source._handle, len(hidden), au, aa, int(task), int(outputs), int(seed)))
        # Every layer but the new hidden ones and the output layer came from the source.
        net.transferred_layers = net.layer_count - len(hidden) - 1
        return net

    @property
    def layer_count(self):
        """Layers with parameters: hidden layers (encoder, code, decoder) and the output layer."""
        n = c_size_t()
        check(lib.latent_network_layer_count(self._handle, byref(n)))
        return n.value

    def freeze(self, n_layers, first_layer=0, epochs=0):
        """Freezes layers ``first_layer .. first_layer + n_layers - 1`` for the next ``epochs``
        training epochs (0: until unfreeze()): CPU fits leave them bit-identical."""
        check(lib.latent_network_freeze(self._handle, int(first_layer), int(n_layers), int(epochs)))
        return self

    def unfreeze(self):
        check(lib.latent_network_freeze(self._handle, 0, 0, 0))
        return self

    @property
    def frozen(self):
        """(first_layer, n_layers, epochs left, 0 = until thawed), or None."""
        f, n, e = c_uint32(), c_uint32(), c_uint32()
        check(lib.latent_network_frozen(self._handle, byref(f), byref(n), byref(e)))
        return None if n.value == 0 else (f.value, n.value, e.value)

    @property
    def input_dim(self):
        return lib.latent_network_input_dim(self._handle)

    @property
    def code_dim(self):
        return lib.latent_network_code_dim(self._handle)

    @property
    def output_dim(self):
        return lib.latent_network_output_dim(self._handle)

    @property
    def task(self):
        return Task(lib.latent_network_task(self._handle))

    def describe(self):
        return _describe(lib.latent_network_describe, self._handle)

    def __repr__(self):
        if getattr(self, "_h", None) is None:
            return "<latent.Network (closed)>"
        return f"<latent.Network {self.task.name.lower()} {self.input_dim} -> {self.code_dim} -> {self.output_dim}>"

    def set_threads(self, threads):
        check(lib.latent_network_set_threads(self._handle, int(threads)))

    def to_device(self, device="cuda", ordinal=0):
        """Moves the network to GPU `ordinal` ('cuda') or back ('cpu'); fits and encode, decode,
        reconstruct and predict then run there. Raises Unsupported without a GPU."""
        check(lib.latent_network_to_device(self._handle, int(Device.coerce(device)), int(ordinal)))
        return self

    @property
    def device(self):
        """('cpu', 0) or ('cuda', ordinal)."""
        return _placement(lib.latent_network_device, self._handle)

    def set_tf32(self, on=True):
        """TF32 tensor cores for a GPU network's products."""
        check(lib.latent_network_set_tf32(self._handle, int(bool(on))))

    def center_functional(self, data):
        """Centres the biases of the functional-transfer layers on the first 1,000 rows of
        ``data`` (a Dataset or an array), as the first fit of a new network does itself; call it
        to centre on other rows, or again after setting parameters. A network without functional
        layers is left alone."""
        d = _dataset(data)
        check(lib.latent_network_center_functional(self._handle, d._handle))

    def set_stochastic_inference(self, on, seed=0):
        check(lib.latent_network_set_stochastic_inference(self._handle, int(bool(on)), int(seed)))

    @property
    def params(self):
        """All trainable parameters as a float32 vector (a copy); assign to replace them."""
        return _get_params("latent_network", self._handle)

    @params.setter
    def params(self, values):
        _set_params("latent_network", self._handle, values)

    def layer_offsets(self, layer):
        """(w, w_len, b): where layer `layer` keeps its weights and biases in `params`."""
        w, wl, b = c_size_t(), c_size_t(), c_size_t()
        check(lib.latent_network_layer_offsets(self._handle, layer, byref(w), byref(wl), byref(b)))
        return w.value, wl.value, b.value

    # -- inference --------------------------------------------------------------------------

    def _map(self, fn, fn_dataset, x, width, dtype=np.float32, ctype=c_float):
        if isinstance(x, Dataset) and fn_dataset is not None:
            out = np.empty((x.rows, width), dtype) if width else np.empty(x.rows, dtype)
            check(fn_dataset(self._handle, x._handle, _ptr(out, ctype), out.size))
            return out
        a, single = _rows(x)
        out = np.empty((a.shape[0], width), dtype) if width else np.empty(a.shape[0], dtype)
        check(fn(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], _ptr(out, ctype), out.size))
        return _out(single, out)

    def encode(self, x):
        """Codes (rows x code_dim) of rows of x (an array or a Dataset)."""
        return self._map(lib.latent_network_encode, lib.latent_network_encode_dataset, x, self.code_dim)

    def scatter_codes(self, data, path, title=None):
        """Encodes every row of data (a Dataset or an array) and writes the 2-D codes as an SVG
        scatter plot coloured by the dataset's labels (latent_network_scatter_svg_write). The
        code must have 2 units (InvalidArgument otherwise)."""
        d = _dataset(data)
        check(lib.latent_network_scatter_svg_write(self._handle, d._handle, _path(path), _title(title)))

    def decode(self, codes):
        """Reconstructions (rows x input_dim) from codes (rows x code_dim)."""
        return self._map(lib.latent_network_decode, None, codes, self.input_dim)

    def reconstruct(self, x):
        return self._map(lib.latent_network_reconstruct, lib.latent_network_reconstruct_dataset, x, self.input_dim)

    def fit_recirculation(self, train, epochs=10, batch_size=16, learning_rate=1.0, regression=0.75, seed=0):
        """Trains this one-hidden-layer autoencoder by recirculation (Hinton & McClelland 1988)
        instead of back-propagation (latent_network_fit_recirculation): two passes around the
        loop visible -> hidden -> visible, each weight changed by its presynaptic activity times
        its unit's change between the passes. `train` is a Dataset or an array. Returns the
        mean squared error per element of the reconstructions of `train` after the last
        epoch. Deeper, tied or supervised networks raise InvalidArgument."""
        ds = _dataset(train)
        mse = c_double()
        check(lib.latent_network_fit_recirculation(self._handle, ds._handle, int(epochs), int(batch_size),
                                                   float(learning_rate), float(regression), int(seed), byref(mse)))
        return mse.value

    def predict(self, x):
        """Class probabilities (classifier), predictions (regressor) or reconstructions."""
        return self._map(lib.latent_network_predict, lib.latent_network_predict_dataset, x, self.output_dim)

    def classify(self, x):
        """The most probable class of each row (int32)."""
        return self._map(lib.latent_network_classify, lib.latent_network_classify_dataset, x, 0, np.int32, c_int32)

    def reconstruction_error(self, x):
        """Per-row reconstruction error (float64): an anomaly score."""
        return self._map(lib.latent_network_reconstruction_error,
                         lib.latent_network_reconstruction_error_dataset, x, 0, np.float64, c_double)

    def jacobian_norms(self, x):
        return self._map(lib.latent_network_jacobian_norms, None, x, 0, np.float64, c_double)

    def infer_in_place(self, x, what="encode"):
        """Inference that reads x in its own dtype (float32 or float64) and memory order (C or
        Fortran, as R and Julia hold matrices) without a converted copy on the Python side
        (latent_network_*_buffer): what = "encode", "reconstruct", "predict" (a matrix in x's
        dtype and order), "reconstruction_error" (float64 per row) or "loss" (a float, an
        autoencoder's). Bit-identical to encode() etc. on the same values (docs/r.md)."""
        a, dtype, layout = _matrix_for_buffer(x, "x")
        rows, cols = a.shape
        xp = a.ctypes.data_as(c_void_p)
        if what == "loss":
            v = c_double()
            check(lib.latent_network_loss_buffer(self._handle, xp, dtype, layout, rows, cols, byref(v)))
            return v.value
        if what == "reconstruction_error":
            out = np.empty(rows, np.float64)
            check(lib.latent_network_reconstruction_error_buffer(self._handle, xp, dtype, layout, rows, cols,
                                                                 _ptr(out, c_double), rows))
            return out
        calls = {"encode": (lib.latent_network_encode_buffer, self.code_dim),
                 "reconstruct": (lib.latent_network_reconstruct_buffer, self.input_dim),
                 "predict": (lib.latent_network_predict_buffer, self.output_dim)}
        if what not in calls:
            raise ValueError(f"what: one of encode, reconstruct, predict, reconstruction_error, loss; not {what!r}")
        fn, width = calls[what]
        out = np.empty((rows, width), a.dtype, order="F" if layout == Layout.COL_MAJOR else "C")
        check(fn(self._handle, xp, dtype, layout, rows, cols, out.ctypes.data_as(c_void_p), out.size))
        return out

    def score(self, x, sigma=0.0):
        """The score d/dx log p(x) as a denoising autoencoder estimates it (Alain & Bengio 2013):
        (reconstruct(x) - x) / sigma**2, rows x input_dim. sigma=0 takes the network's own
        Gaussian corruption level (latent.InvalidArgument when it has none)."""
        a, single = _rows(x)
        out = np.empty((a.shape[0], self.input_dim), np.float32)
        check(lib.latent_network_score(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], float(sigma),
                                       _ptr(out, c_float), out.size))
        return _out(single, out)

    def jacobian(self, x):
        """The encoder's Jacobian d(code)/d(input) at each row: rows x code_dim x input_dim (or
        code_dim x input_dim for one 1-D row). Functional and memory encoder layers raise
        latent.Unsupported."""
        a, single = _rows(x)
        out = np.empty((a.shape[0], self.code_dim, self.input_dim), np.float32)
        check(lib.latent_network_jacobian(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1],
                                          _ptr(out, c_float), out.size))
        return _out(single, out)

    def tangents(self, x, k):
        """(directions, singular_values) at one input row: the k right singular vectors of the
        encoder's Jacobian with the largest singular values (k x input_dim, unit rows, the input
        directions the code is most sensitive to: the tangent plane for a contractive
        autoencoder) and all min(code_dim, input_dim) singular values, largest first."""
        a = np.require(np.asarray(x).reshape(-1), np.float32, ["C_CONTIGUOUS", "ALIGNED"])
        k = int(k)
        dirs = np.empty((max(k, 0), self.input_dim), np.float32)
        values = np.empty(min(self.code_dim, self.input_dim), np.float32)
        check(lib.latent_network_tangents(self._handle, _ptr(a, c_float), a.size, k, _ptr(dirs, c_float), dirs.size,
                                          _ptr(values, c_float), values.size))
        return dirs, values

    @property
    def contractive_exact(self):
        """False: the contractive penalty sums each encoder layer's own ||J_l||^2 (the default);
        True: it is ||d code / d x||^2 of the whole encoder (CPU only). Saved with the model."""
        v = c_int32()
        check(lib.latent_network_contractive_exact(self._handle, byref(v)))
        return bool(v.value)

    @contractive_exact.setter
    def contractive_exact(self, on):
        check(lib.latent_network_set_contractive_exact(self._handle, int(bool(on))))

    def fit(self, train, valid=None, progress=None, trainer=None, **trainer_params):
        """Trains on `train` (a Dataset or an array; a supervised network's Dataset carries its
        labels or targets) with `trainer` or a new Trainer(**trainer_params), validating on
        `valid`; returns the trainer (its history, and whether training ran to its end)."""
        trainer = trainer if trainer is not None else Trainer(**trainer_params)
        trainer.fit(self, train, valid, progress)
        return trainer

    def fit_stream(self, stream, valid=None, progress=None, trainer=None, block_rows=None, window_blocks=None,
                   **trainer_params):
        """Trains on rows read from .npy files while the fit runs (data larger than memory):
        `stream` is an NpyStream, or a path (a .npy file or a directory of .npy shards) or a
        list of paths that NpyStream opens with `block_rows` and `window_blocks`. As fit()
        otherwise; returns the trainer."""
        if not isinstance(stream, NpyStream):
            stream = NpyStream(stream, block_rows=block_rows, window_blocks=window_blocks)
        elif block_rows is not None or window_blocks is not None:
            stream.set_shuffle(block_rows or 1024, window_blocks or 32)
        trainer = trainer if trainer is not None else Trainer(**trainer_params)
        trainer.fit_stream(self, stream, valid, progress)
        return trainer

    def binary_codes(self, x, threshold=0.5):
        """Packed binary codes (rows x code_words uint64)."""
        a, single = _rows(x)
        out = np.empty((a.shape[0], lib.latent_network_code_words(self._handle)), np.uint64)
        check(lib.latent_network_binary_codes(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1],
                                              float(threshold), _ptr(out, c_uint64), out.size))
        return _out(single, out)

    # -- scores over a dataset --------------------------------------------------------------

    def loss(self, dataset):
        v = c_double()
        ds = _dataset(dataset)  # held until the call returns (a temporary would be freed first)
        check(lib.latent_network_loss(self._handle, ds._handle, byref(v)))
        return v.value

    def mse(self, dataset):
        v = c_double()
        ds = _dataset(dataset)  # held until the call returns (a temporary would be freed first)
        check(lib.latent_network_mse(self._handle, ds._handle, byref(v)))
        return v.value

    def metrics(self, dataset):
        m = _ffi.latent_metrics()
        ds = _dataset(dataset)  # held until the call returns (a temporary would be freed first)
        check(lib.latent_network_metrics(self._handle, ds._handle, byref(m)))
        return Metrics(*(getattr(m, f) for f in Metrics._fields))

    def evaluate(self, dataset):
        """Evaluation(loss, accuracy, mse, rows, confusion) of a supervised network on a dataset
        with labels or targets; confusion is classes x classes (row = true label) or None."""
        ds = _dataset(dataset)
        e = _ffi.latent_evaluation()
        conf = None
        if self.task == Task.CLASSIFY:
            k = self.output_dim
            conf = np.zeros((k, k), np.uint64)
            check(lib.latent_network_evaluate(self._handle, ds._handle, byref(e), _ptr(conf, c_uint64), conf.size))
        else:
            check(lib.latent_network_evaluate(self._handle, ds._handle, byref(e), None, 0))
        return Evaluation(e.loss, e.accuracy, e.mse, e.rows, conf)


# ---------------------------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------------------------


class Trainer(_Handle):
    """Trains networks and VAEs with one configuration (latent_trainer). Keyword arguments are
    the fields of latent_train_params (epochs, batch_size, optimizer='adam'|'sgd'|'adamw'|
    'rmsprop'|'adagrad'|'adadelta'|'adamax'|'lion', learning_rate, momentum, beta1, beta2,
    epsilon, weight_decay, validation_fraction, seed, threads,
    early_stopping_patience, shuffle, progress_every, lr_schedule, ..., checkpoint_path and
    checkpoint_every for periodic checkpoints: see checkpoint() and resume())."""

    _free_name = "latent_trainer_free"
    _ENUMS = {"optimizer": Optimizer, "lr_schedule": LrSchedule}

    def __init__(self, **params):
        p = lib.latent_train_params_default()
        names = {f for f, _ in _ffi.latent_train_params._fields_}
        for k, v in params.items():
            if k not in names:
                raise TypeError(f"Trainer() got an unexpected keyword argument {k!r}")
            if k in self._ENUMS:
                v = self._ENUMS[k].coerce(v, k)
            elif k == "checkpoint_path":
                v = None if v is None else _path(v)
                setattr(p, k, v)
                continue
            _set_field(p, k, v, "Trainer()")
        self.params = {f: getattr(p, f) for f in names}
        super().__init__(_new_handle(lib.latent_trainer_new, byref(p)))

    def fit(self, model, train, valid=None, progress=None):
        """Trains `model` (a Network or a Vae) on `train` (a Dataset or an array), validating on
        `valid`. `progress(p)` gets a latent.Progress at each epoch end (and every
        progress_every minibatches); returning True stops training early (fit then returns
        False), and an exception raised inside it stops training and propagates from fit.
        Returns True when training ran to its end."""
        train_ds = _dataset(train)
        valid_ds = _dataset(valid)
        if isinstance(model, Vae):
            fn = lib.latent_trainer_fit_vae
        elif isinstance(model, Network):
            fn = lib.latent_trainer_fit
        else:
            raise TypeError(f"Trainer.fit: expected a Network or a Vae, got {type(model).__name__}")
        return self._run(fn, model, train_ds, valid_ds, progress)

    def fit_stream(self, model, stream, valid=None, progress=None):
        """Trains the Network `model` on the rows of `stream` (an NpyStream, or a path that
        NpyStream opens) read a window at a time, so that memory holds the model and one window,
        not the data (latent_trainer_fit_stream); validating on `valid` (in memory).
        `progress` and the return value as for fit()."""
        if not isinstance(model, Network):
            raise TypeError(f"Trainer.fit_stream: expected a Network, got {type(model).__name__}")
        stream = stream if isinstance(stream, NpyStream) else NpyStream(stream)
        return self._run(lib.latent_trainer_fit_stream, model, stream, _dataset(valid), progress)

    def _run(self, fn, model, train, valid_ds, progress):
        def call(cb):
            return fn(self._handle, model._handle, train._handle, None if valid_ds is None else valid_ds._handle, cb, None)

        return _progress_call(call, progress, self, model, train, valid_ds)

    def history(self):
        """The per-epoch history of every fit so far: a list of EpochRecord."""
        n = c_size_t()
        check(lib.latent_trainer_history(self._handle, None, 0, byref(n)))
        recs = (_ffi.latent_epoch_record * n.value)()
        check(lib.latent_trainer_history(self._handle, recs, n.value, byref(n)))
        return [EpochRecord(*(getattr(r, f) for f in EpochRecord._fields)) for r in recs[: n.value]]

    def reset(self):
        """Forgets the history and the optimizer state."""
        check(lib.latent_trainer_reset(self._handle))

    def checkpoint(self, path):
        """Saves the whole training state of the running fit to `path` (atomically): call it
        from the fit's progress callback at an epoch end (p.event == Event.EPOCH_END). The
        model, optimizer moments, epoch, schedule position, shuffling and noise counters, early
        stopping and history go in one checksummed file; Trainer.resume(path) continues the fit
        from it, bit-identically to the uninterrupted fit (same rows and threads). After a
        minibatch event or outside a fit it raises InvalidArgument."""
        check(lib.latent_trainer_checkpoint(self._handle, _path(path)))

    def set_checkpoints(self, path, every=1):
        """Writes a checkpoint to `path` every `every` completed epochs of each later fit
        (path None: none), as the checkpoint_path and checkpoint_every parameters do."""
        if path is None:
            check(lib.latent_trainer_set_checkpoints(self._handle, None, 0))
        else:
            check(lib.latent_trainer_set_checkpoints(self._handle, _path(path), every))

    @classmethod
    def resume(cls, path):
        """(trainer, model) from a checkpoint file: the model (a Network or a Vae) as it was,
        and a trainer with the checkpoint's configuration, history and optimizer state whose
        next fit(model, same rows) finishes the interrupted fit. A damaged file raises
        BadFormat."""
        t, m = c_void_p(), c_void_p()
        status = lib.latent_trainer_resume_network(_path(path), byref(t), byref(m))
        kind = Network
        if status == Status.BAD_FORMAT and b"wrong kind" in lib.latent_last_error_message():
            status = lib.latent_trainer_resume_vae(_path(path), byref(t), byref(m))
            kind = Vae
        check(status)
        trainer = cls._wrap(t)
        trainer.params = {}
        return trainer, kind._wrap(m)


# ---------------------------------------------------------------------------------------------
# Vae
# ---------------------------------------------------------------------------------------------


class Vae(_ScaledModel, _Handle):
    """A variational autoencoder (latent_vae). Keyword arguments mirror latent_vae_params:
    input_dim and latent_dim required; encoder / decoder hidden widths (not mirrored);
    activation (hidden_activation), pzx_activation, distribution ('bernoulli', 'gaussian',
    ...), distribution_activation, parts=[(size, distribution, activation), ...],
    num_samples, beta, kl_warmup_steps, constant_posterior_variance, seed, ...; objective='elbo' or
    'bilbo' (latent_vae_set_objective)."""

    _prefix = "latent_vae"

    _free_name = "latent_vae_free"
    _ENUMS = {"hidden_activation": Activation, "pzx_activation": Activation, "distribution": Distribution,
              "distribution_activation": Activation, "init": Init}

    def __init__(self, input_dim, latent_dim, encoder=(), decoder=(), *, activation=None,
                 encoder_activations=None, decoder_activations=None, parts=None, **fields):
        p = lib.latent_vae_params_default()
        keep = []
        p.input_dim, p.latent_dim = _int(input_dim, "input_dim"), _int(latent_dim, "latent_dim")
        if activation is not None:
            fields["hidden_activation"] = activation
        for side, units, acts in (("encoder", encoder, encoder_activations), ("decoder", decoder, decoder_activations)):
            units = list(units)
            setattr(p, f"n_{side}", len(units))
            if units:
                a = _u32_array(units, f"{side}_units")
                keep.append(a)
                setattr(p, f"{side}_units", ctypes.cast(a, POINTER(c_uint32)))
            if acts is not None:
                if len(acts) != len(units):
                    raise ValueError(f"{side}_activations: expected {len(units)} values")
                a = _enum_array(acts, Activation, f"{side}_activations")
                keep.append(a)
                setattr(p, f"{side}_activations", ctypes.cast(a, POINTER(c_int32)))
        if parts:
            arr = (_ffi.latent_vae_part * len(parts))()
            for i, (size, dist, act) in enumerate(parts):
                arr[i].size = int(size)
                arr[i].distribution = Distribution.coerce(dist, "distribution")
                arr[i].activation = Activation.coerce(act, "activation")
            keep.append(arr)
            p.parts = ctypes.cast(arr, POINTER(_ffi.latent_vae_part))
            p.n_parts = len(parts)
        objective = fields.pop("objective", None)
        names = {f for f, _ in _ffi.latent_vae_params._fields_} - {
            "input_dim", "latent_dim", "n_encoder", "encoder_units", "encoder_activations", "n_decoder",
            "decoder_units", "decoder_activations", "n_parts", "parts"}
        for k, v in fields.items():
            if k not in names:
                raise TypeError(f"Vae() got an unexpected keyword argument {k!r}")
            if k in self._ENUMS:
                v = self._ENUMS[k].coerce(v, k)
            _set_field(p, k, v, "Vae()")
        super().__init__(_new_handle(lib.latent_vae_new, byref(p)))
        if objective is not None:
            self.objective = objective

    @classmethod
    def load(cls, path):
        return cls._wrap(_new_handle(lib.latent_vae_load, _path(path)))

    def save(self, path):
        check(lib.latent_vae_save(self._handle, _path(path)))

    def export_onnx(self, path, part="encoder"):
        """Writes one part of the VAE as an ONNX model (opset 17): "encoder" (input "x" ->
        outputs "mean" and "log_variance" of q(z|x)), "decoder" ("z" -> "mean" of p(x|z)) or
        "reconstruction" ("x" -> "reconstruction", the mean of p(x|z) at the posterior mean)."""
        check(lib.latent_vae_export_onnx(self._handle, _path(path), OnnxPart.coerce(part, "part")))

    @property
    def input_dim(self):
        return lib.latent_vae_input_dim(self._handle)

    @property
    def latent_dim(self):
        return lib.latent_vae_latent_dim(self._handle)

    def describe(self):
        return _describe(lib.latent_vae_describe, self._handle)

    @property
    def params(self):
        return _get_params("latent_vae", self._handle)

    @params.setter
    def params(self, values):
        _set_params("latent_vae", self._handle, values)

    def fit(self, train, valid=None, progress=None, trainer=None, **trainer_params):
        """Trains with `trainer` (or a new Trainer(**trainer_params)); returns the trainer."""
        trainer = trainer if trainer is not None else Trainer(**trainer_params)
        trainer.fit(self, train, valid, progress)
        return trainer

    def to_device(self, device="cuda", ordinal=0):
        """Moves the VAE to GPU `ordinal` ('cuda') or back ('cpu'); fits and encode then run
        there. Raises Unsupported without a GPU."""
        check(lib.latent_vae_to_device(self._handle, int(Device.coerce(device)), int(ordinal)))
        return self

    @property
    def device(self):
        """('cpu', 0) or ('cuda', ordinal)."""
        return _placement(lib.latent_vae_device, self._handle)

    def encode(self, x, logvar=False):
        """Posterior means (rows x latent_dim), and log-variances too with logvar=True."""
        a, single = _rows(x)
        mean = np.empty((a.shape[0], self.latent_dim), np.float32)
        lv = np.empty_like(mean) if logvar else None
        check(lib.latent_vae_encode(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], _ptr(mean, c_float),
                                    None if lv is None else _ptr(lv, c_float), mean.size))
        return (_out(single, mean), _out(single, lv)) if logvar else _out(single, mean)

    def scatter_codes(self, data, path, title=None):
        """The posterior means of every row of data (a Dataset or an array) as an SVG scatter
        plot coloured by the dataset's labels (latent_vae_scatter_svg_write): latent_dim 2 only."""
        d = _dataset(data)
        check(lib.latent_vae_scatter_svg_write(self._handle, d._handle, _path(path), _title(title)))

    def manifold_grid(self, path, k=15, height=28, width=28, scale=3, padding=1, lo=0.0, hi=1.0, format="auto"):
        """Writes the decoded manifold of a 2-D latent space (Kingma & Welling 2014, Fig. 4): the
        mean of p(x|z) at the k x k points of normal_grid_points(k), as a k x k grid of height x
        width tiles, each pixel a scale x scale block (latent_vae_manifold_grid_write)."""
        p = _grid_params(k, scale, padding, lo, hi, format)
        check(lib.latent_vae_manifold_grid_write(self._handle, _path(path), int(k), int(height), int(width), byref(p)))

    def sample_prior(self, n, seed=0):
        """n draws z ~ N(0, I) (n x latent_dim)."""
        z = np.empty((int(n), self.latent_dim), np.float32)
        check(lib.latent_vae_sample_prior(self._handle, int(n), int(seed), _ptr(z, c_float), z.size))
        return z

    def generate(self, z):
        """The mean of p(x|z) for each latent row."""
        a, single = _rows(z, "z")
        out = np.empty((a.shape[0], self.input_dim), np.float32)
        check(lib.latent_vae_generate_mean(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1],
                                           _ptr(out, c_float), out.size))
        return _out(single, out)

    def generate_random(self, z, seed=0):
        """A draw from p(x|z) for each latent row (DL4J's generateRandomGivenZ), seeded."""
        a, single = _rows(z, "z")
        out = np.empty((a.shape[0], self.input_dim), np.float32)
        check(lib.latent_vae_generate_random(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], int(seed),
                                             _ptr(out, c_float), out.size))
        return _out(single, out)

    def iwae_bound(self, data, samples=50, seed=0):
        """The importance-weighted bound on the mean log p(x) of the rows (Burda et al. 2016), with
        `samples` draws per row: tighter than the ELBO as samples grows."""
        ds = _dataset(data)
        v = c_double()
        check(lib.latent_vae_iwae_bound(self._handle, ds._handle, int(samples), int(seed), byref(v)))
        return v.value

    def interpolate(self, a, b, steps=8):
        """(z, x): `steps` points on the line between the posterior means of rows a and b, ends
        included (steps x latent_dim), and their decoded means (steps x input_dim)."""
        ra, _ = _rows(a, "a")
        rb, _ = _rows(b, "b")
        if ra.shape[0] != 1 or rb.shape[0] != 1:
            raise ValueError("a and b must be one row each")
        steps = int(steps)
        cap = max(steps, 0) * max(self.latent_dim, self.input_dim)
        z = np.empty(cap, np.float32)
        x = np.empty(cap, np.float32)
        check(lib.latent_vae_interpolate(self._handle, _ptr(ra, c_float), _ptr(rb, c_float), ra.shape[1], steps,
                                         _ptr(z, c_float), _ptr(x, c_float), cap))
        return (z[:steps * self.latent_dim].reshape(steps, self.latent_dim),
                x[:steps * self.input_dim].reshape(steps, self.input_dim))

    def reconstruct(self, x):
        a, single = _rows(x)
        out = np.empty((a.shape[0], self.input_dim), np.float32)
        check(lib.latent_vae_reconstruct(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1],
                                         _ptr(out, c_float), out.size))
        return _out(single, out)

    def log_likelihood(self, x, samples=16, seed=0):
        """Importance-sampled log p(x) per row (the IWAE bound with `samples` draws)."""
        a, single = _rows(x)
        out = np.empty(a.shape[0], np.float64)
        check(lib.latent_vae_log_likelihood(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], int(samples),
                                            int(seed), _ptr(out, c_double), out.size))
        return _out(single, out)

    @property
    def objective(self):
        """What training maximises: VaeObjective.ELBO or .BILBO (Fyffe 2019; needs a constant
        posterior variance)."""
        o = c_int32()
        check(lib.latent_vae_get_objective(self._handle, byref(o)))
        return VaeObjective(o.value)

    @objective.setter
    def objective(self, value):
        check(lib.latent_vae_set_objective(self._handle, int(VaeObjective.coerce(value, "objective"))))

    def reconstruction_log_probability(self, x, samples=16, seed=0):
        """DL4J's reconstructionLogProbability per row: the mean of log p(x|z) over `samples`
        draws z ~ q(z|x) (not log p(x): see log_likelihood)."""
        a, single = _rows(x)
        out = np.empty(a.shape[0], np.float64)
        check(lib.latent_vae_reconstruction_log_probability(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1],
                                                            int(samples), int(seed), _ptr(out, c_double), out.size))
        return _out(single, out)

    def reconstruction_error(self, x, loss="mse"):
        """DL4J's reconstructionError per row (float64): the error under `loss` (a Loss or its
        name: 'mse', 'mae', 'binary_cross_entropy', ...) of the reconstruction at the posterior
        mean. An anomaly score; x is rows or a Dataset."""
        code = int(Loss.coerce(loss, "loss"))
        if isinstance(x, Dataset):
            out = np.empty(x.rows, np.float64)
            check(lib.latent_vae_reconstruction_error_dataset(self._handle, x._handle, code, _ptr(out, c_double),
                                                              out.size))
            return out
        a, single = _rows(x)
        out = np.empty(a.shape[0], np.float64)
        check(lib.latent_vae_reconstruction_error(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], code,
                                                  _ptr(out, c_double), out.size))
        return _out(single, out)

    def elbo(self, dataset, samples=1, seed=0):
        """Elbo(neg_elbo, reconstruction, kl), means per example over a dataset."""
        e = _ffi.latent_elbo()
        ds = _dataset(dataset)  # held until the call returns (a temporary would be freed first)
        check(lib.latent_vae_elbo(self._handle, ds._handle, int(samples), int(seed), byref(e)))
        return Elbo(e.neg_elbo, e.reconstruction, e.kl)


# ---------------------------------------------------------------------------------------------
# Psd
# ---------------------------------------------------------------------------------------------


class Psd(_Handle):
    """Predictive sparse decomposition (latent_psd; Kavukcuoglu, Ranzato & LeCun 2008): a
    dictionary of unit-norm atoms D, L1-sparse codes h and an encoder f(x) = g * tanh(W_e x + b_e)
    trained to predict them, with energy ||x - D h||^2 + lam |h|_1 + alpha ||h - f(x)||^2.
    `lam` is the C API's lambda (a Python keyword)."""

    _free_name = "latent_psd_free"

    def __init__(self, input_dim, code_dim, lam=0.5, alpha=1.0, seed=0):
        super().__init__(_new_handle(lib.latent_psd_new, int(input_dim), int(code_dim), float(lam), float(alpha),
                                     int(seed)))

    @property
    def input_dim(self):
        return lib.latent_psd_input_dim(self._handle)

    @property
    def code_dim(self):
        return lib.latent_psd_code_dim(self._handle)

    @property
    def params(self):
        """D (code_dim x input_dim), W_e (input_dim x code_dim), b_e, g, flattened (a copy);
        assign to replace them."""
        return _get_params("latent_psd", self._handle)

    @params.setter
    def params(self, values):
        _set_params("latent_psd", self._handle, values)

    @property
    def dictionary(self):
        """D as a code_dim x input_dim array: row k is atom k (unit norm after a fit)."""
        return self.params[: self.code_dim * self.input_dim].reshape(self.code_dim, self.input_dim)

    def fit(self, train, epochs=10, batch_size=32, learning_rate=1e-3, seed=0):
        """Trains on `train` (a Dataset or an array) by PSD's alternating algorithm (ISTA codes,
        then an Adam step on the parameters); returns the last epoch's mean energy per row."""
        ds = _dataset(train)
        obj = c_double()
        check(lib.latent_psd_fit(self._handle, ds._handle, int(epochs), int(batch_size), float(learning_rate),
                                 int(seed), byref(obj)))
        return obj.value

    def _map(self, fn, x, width, *extra):
        a, single = _rows(x)
        out = np.empty((a.shape[0], width), np.float32)
        check(fn(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], *extra, _ptr(out, c_float), out.size))
        return _out(single, out)

    def encode(self, x):
        """The encoder's fast codes f(x) (rows x code_dim)."""
        return self._map(lib.latent_psd_encode, x, self.code_dim)

    def encode_optimized(self, x, iterations=100, tolerance=1e-4):
        """The optimised sparse codes h* = argmin_h E(x, h) by ISTA from f(x)."""
        return self._map(lib.latent_psd_encode_optimized, x, self.code_dim, int(iterations), float(tolerance))

    def decode(self, codes):
        """Reconstructions h D of codes (rows x code_dim)."""
        return self._map(lib.latent_psd_decode, codes, self.input_dim)

    def reconstruct(self, x, iterations=0):
        """D f(x) (iterations=0), or D h* from `iterations` ISTA iterations."""
        return self._map(lib.latent_psd_reconstruct, x, self.input_dim, int(iterations))

    def __repr__(self):
        if getattr(self, "_h", None) is None:
            return "<latent.Psd (closed)>"
        return f"<latent.Psd {self.input_dim} -> {self.code_dim} codes>"


# ---------------------------------------------------------------------------------------------
# MonteCarlo
# ---------------------------------------------------------------------------------------------


Intervals = namedtuple("Intervals", ["lower", "upper", "sd", "covariance"])
Intervals.__doc__ = "Weak confidence intervals: bounds, standard deviations and the covariance matrix."
SearchView = namedtuple(
    "SearchView",
    ["best", "best_loss", "spreads", "iteration", "run", "best_by_iter", "loss_by_iter", "first_kept_iteration",
     "records", "record_losses"],
)
SearchView.__doc__ = "What a MonteCarlo sampler sees (latent_montecarlo_view), as NumPy copies."


def _doubles(ptr, n):
    return np.ctypeslib.as_array(ptr, shape=(n,)).copy() if n else np.empty(0, np.float64)


class MonteCarlo(_Handle):
    """The gradient-free Monte-Carlo optimizer (latent_montecarlo) over `n_params` parameters.
    Keyword arguments are the fields of latent_montecarlo_params (`strategy` also as 'kernelml'
    or 'elitist'); `threads` defaults to 1 here because a Python loss runs under the GIL (more
    threads only contend for it). Hooks (set_prior_sampler, set_sampler, set_transform, a
    fit_network batch_sampler) are Python callables; an exception inside one cancels the run
    and is raised by the call that ran it."""

    _free_name = "latent_montecarlo_free"

    def __init__(self, n_params, **params):
        p = lib.latent_montecarlo_params_default()
        p.threads = 1
        names = {f for f, _ in _ffi.latent_montecarlo_params._fields_}
        for k, v in params.items():
            if k not in names:
                raise TypeError(f"MonteCarlo() got an unexpected keyword argument {k!r}")
            if k == "strategy":
                v = MonteCarloStrategy.coerce(v, "strategy")
            _set_field(p, k, v, "MonteCarlo()")
        super().__init__(_new_handle(lib.latent_montecarlo_new, byref(p), _int(n_params, "n_params", 0, 2**64 - 1)))
        # The ctypes callbacks the library keeps (they must outlive their use), and the first
        # exception a hook raised (re-raised by the call that ran the hook).
        self._keep = {}
        self._hook = {"error": None}

    def _run(self, st):
        """Raises a hook's exception (before the status it caused), else checks the status."""
        e, self._hook["error"] = self._hook["error"], None
        if e is not None:
            raise e
        check(st)

    def _guarded(self, f):
        """A hook body: its exception is kept and cancels the run (return 1)."""
        state = self._hook

        def call(*args):
            if state["error"] is not None:
                return 1
            try:
                f(*args)
                return 0
            except BaseException as e:  # noqa: BLE001 - never let it cross into C
                state["error"] = e
                return 1

        return call

    def set_proposal(self, kind, quantile=None, first=0, count=None):
        """'normal', 'uniform' or 'custom' with quantile(index, center, scale, u) -> value for a
        seeded u in (0, 1), for parameters first..first+count-1 (all by default). An exception
        in `quantile` makes its draw NaN (infeasible) and is raised after the run."""
        f, c = self._range(first, count)
        kind = Proposal.coerce(kind, "proposal")
        cb = _ffi.quantile_fn()
        if quantile is not None:
            state = self._hook

            def q(_user, index, center, scale, u):
                try:
                    return float(quantile(index, center, scale, u))
                except BaseException as e:  # noqa: BLE001 - never let it cross into C
                    if state["error"] is None:
                        state["error"] = e
                    return math.nan

            cb = _ffi.quantile_fn(q)
        check(lib.latent_montecarlo_set_proposal(self._handle, f, c, kind, cb, None))
        self._keep[("proposal", f, c)] = cb

    def set_prior_sampler(self, sampler):
        """sampler(count, n_params, seed) -> (count, n_params) array: the first run's candidates
        (KernelML's prior sampler); None goes back to the per-parameter priors."""
        cb = _ffi.prior_sampler_fn()
        if sampler is not None:

            def body(_user, out, count, n, seed):
                a = np.asarray(sampler(int(count), int(n), int(seed)), np.float64).reshape(count, n)
                np.ctypeslib.as_array(out, shape=(count * n,))[:] = a.reshape(-1)

            cb = _ffi.prior_sampler_fn(self._guarded(body))
        check(lib.latent_montecarlo_set_prior_sampler(self._handle, cb, None))
        self._keep["prior_sampler"] = cb

    def set_sampler(self, sampler):
        """sampler(view: SearchView, count, seed) -> (count, n_params) array: each iteration's
        candidates, seeing the search's history; None goes back to the strategy's draws."""
        cb = _ffi.sampler_fn()
        if sampler is not None:

            def body(_user, view, out, count, seed):
                v = ctypes.cast(view, POINTER(_ffi.latent_montecarlo_view)).contents
                n, k, r = v.n_params, v.kept_iterations, v.n_records
                sv = SearchView(
                    best=_doubles(v.best, n),
                    best_loss=v.best_loss,
                    spreads=_doubles(v.spreads, n),
                    iteration=v.iteration,
                    run=v.run,
                    best_by_iter=_doubles(v.best_by_iter, k * n).reshape(k, n),
                    loss_by_iter=_doubles(v.loss_by_iter, k),
                    first_kept_iteration=v.first_kept_iteration,
                    records=_doubles(v.records, r * n).reshape(r, n),
                    record_losses=_doubles(v.record_losses, r),
                )
                a = np.asarray(sampler(sv, int(count), int(seed)), np.float64).reshape(count, n)
                np.ctypeslib.as_array(out, shape=(count * n,))[:] = a.reshape(-1)

            cb = _ffi.sampler_fn(self._guarded(body))
        check(lib.latent_montecarlo_set_sampler(self._handle, cb, None))
        self._keep["sampler"] = cb

    def set_transform(self, transform):
        """transform(block) for a (count, n_params) float64 array of candidates, after the
        constraints and before the loss sees them: change it in place or return the new array
        (KernelML's parameter transform: integers, a simplex, an ordering...). None removes it."""
        cb = _ffi.transform_fn()
        if transform is not None:

            def body(_user, params, count, n):
                block = np.ctypeslib.as_array(params, shape=(count, n))
                r = transform(block)
                if r is not None and r is not block:
                    block[:] = np.asarray(r, np.float64).reshape(count, n)

            cb = _ffi.transform_fn(self._guarded(body))
        check(lib.latent_montecarlo_set_transform(self._handle, cb, None))
        self._keep["transform"] = cb

    @property
    def n_params(self):
        return lib.latent_montecarlo_n_params(self._handle)

    def _range(self, first, count):
        return int(first), (self.n_params - int(first)) if count is None else int(count)

    def set_prior(self, kind, a, b, first=0, count=None):
        """'uniform' U(a, b) or 'normal' N(a, b^2) for parameters first..first+count-1 (all by default)."""
        f, c = self._range(first, count)
        check(lib.latent_montecarlo_set_prior(self._handle, f, c, Prior.coerce(kind, "prior"), a, b))

    def set_constraint(self, kind, a=0.0, b=0.0, first=0, count=None):
        """'none', 'positive' (floor a), 'interval' [a, b] or 'fixed' (the value a)."""
        f, c = self._range(first, count)
        check(lib.latent_montecarlo_set_constraint(self._handle, f, c, Constraint.coerce(kind, "constraint"), a, b))

    def set_start(self, start):
        s = np.require(np.asarray(start, np.float64).reshape(-1), np.float64, ["C_CONTIGUOUS", "ALIGNED"])
        check(lib.latent_montecarlo_set_start(self._handle, _ptr(s, c_double), s.size))

    @staticmethod
    def _objective(loss, state):
        def trampoline(_user, params, n):
            if state["error"] is not None:
                return math.nan
            try:
                x = np.ctypeslib.as_array(params, shape=(n,)).copy()
                return float(loss(x))
            except BaseException as e:  # noqa: BLE001 - never let it cross into C
                state["error"] = e
                return math.nan

        return _ffi.objective_fn(trampoline)

    def minimize(self, loss):
        """Runs the optimizer on loss(params: ndarray) -> float (non-finite marks a candidate
        infeasible); returns the best parameters. An exception inside `loss` stops the search
        (every later candidate is infeasible) and propagates."""
        state = {"error": None}
        cb = self._objective(loss, state)
        with _in_use(self):
            st = lib.latent_montecarlo_minimize(self._handle, cb, None)
        if state["error"] is not None:
            self._hook["error"] = None
            raise state["error"]
        self._run(st)
        return self.best

    def fit_network(self, net, data, batch_size=0, runs=1, seed=0, link=None, link_layer=-1, link_params=0,
                    batch_sampler=None, batch_every_iteration=False, start_from_network=False,
                    link2=None, link2_layer=-1, link2_params=0):
        """Fits every parameter of `net` against its own loss on `data` (labels or targets
        included for a supervised network), `runs` runs on fresh minibatches of `batch_size`
        rows (0: all), as latent_montecarlo_fit_network. The optimizer must have
        net.params.size + link_params parameters. `link(params, values)` is a non-linear
        parametric layer you write: it rewrites `values` (the hidden layer `link_layer`'s output,
        a rows x cols float32 array) in place using `params` (its link_params parameters, the
        optimizer's last). batch_sampler(run, iteration, n_rows, batch_size, seed) -> row
        indices draws the minibatches (a fresh one every iteration with batch_every_iteration).
        The first run draws from the priors, or, with start_from_network, starts around the
        network's parameters. `link_layer` may be the output layer (net.layer_count - 1): the
        link then maps the network's output before the loss. `link2` (on `link2_layer`, with
        link2_params parameters after the first link's) is a second link, e.g. KernelML's
        output side a2 (y + b2) beside field_eq on the code. The network ends with the best
        parameters; returns the links' parameters (the first link's, then the second's)."""
        ds = _dataset(data)
        p = lib.latent_montecarlo_network_params_default()
        p.batch_size, p.runs, p.seed = int(batch_size), int(runs), int(seed)
        p.batch_every_iteration, p.start_from_network = int(bool(batch_every_iteration)), int(bool(start_from_network))
        bcb = _ffi.batch_fn()
        if batch_sampler is not None:

            def body(_user, run, it, n_rows, rows, b, seed_):
                idx = np.asarray(batch_sampler(int(run), int(it), int(n_rows), int(b), int(seed_)), np.int64).reshape(-1)
                if idx.size != b or (idx < 0).any():
                    raise ValueError(f"batch_sampler must return {b} row indices >= 0, got {idx.size}")
                np.ctypeslib.as_array(rows, shape=(b,))[:] = idx

            bcb = _ffi.batch_fn(self._guarded(body))
            p.batch_sampler = bcb
        state = {"error": None}

        def make_trampoline(link):
            def trampoline(_user, params, n, values, rows, cols):
                if state["error"] is not None:
                    # A NaN output marks the candidate infeasible: the search winds down.
                    np.ctypeslib.as_array(values, shape=(rows * cols,))[:] = np.nan
                    return
                try:
                    t = np.ctypeslib.as_array(params, shape=(n,)).copy()
                    v = np.ctypeslib.as_array(values, shape=(rows, cols))
                    link(t, v)
                except BaseException as e:  # noqa: BLE001 - never let it cross into C
                    state["error"] = e
                    np.ctypeslib.as_array(values, shape=(rows * cols,))[:] = np.nan

            return _ffi.link_fn(trampoline)

        cb = _ffi.link_fn()  # NULL
        if link is not None:
            cb = make_trampoline(link)
            p.link_layer, p.link_params, p.link = int(link_layer), int(link_params), cb
        elif link_params or link_layer != -1:
            raise ValueError("link_layer and link_params need a link function")
        cb2 = _ffi.link_fn()  # NULL
        if link2 is not None:
            cb2 = make_trampoline(link2)
            p.link2_layer, p.link2_params, p.link2 = int(link2_layer), int(link2_params), cb2
        elif link2_params or link2_layer != -1:
            raise ValueError("link2_layer and link2_params need a link2 function")
        with _in_use(self, net, ds):
            st = lib.latent_montecarlo_fit_network(self._handle, net._handle, ds._handle, byref(p))
        if state["error"] is not None:
            self._hook["error"] = None
            raise state["error"]
        self._run(st)
        return self.best[net.params.size:]

    @property
    def best(self):
        out = np.empty(self.n_params, np.float64)
        check(lib.latent_montecarlo_best(self._handle, _ptr(out, c_double), out.size))
        return out

    @property
    def best_loss(self):
        return lib.latent_montecarlo_best_loss(self._handle)

    @property
    def evaluations(self):
        return lib.latent_montecarlo_evaluations(self._handle)

    @property
    def iterations(self):
        return lib.latent_montecarlo_iterations(self._handle)

    @property
    def converged(self):
        return bool(lib.latent_montecarlo_converged(self._handle))

    @property
    def runs(self):
        return lib.latent_montecarlo_runs(self._handle)

    @property
    def stop_reason(self):
        """Why the last run stopped: a MonteCarloStop (CONVERGED, MAX_ITERATIONS, BUDGET, ...)."""
        return MonteCarloStop(lib.latent_montecarlo_stop_reason(self._handle))

    def history(self):
        """The best loss after each iteration (KernelML's get_loss_by_iter)."""
        out = np.empty(self.iterations, np.float64)
        check(lib.latent_montecarlo_history(self._handle, _ptr(out, c_double), out.size))
        return out

    def param_by_iter(self, iteration):
        """The best parameters after iteration `iteration` (KernelML's get_param_by_iter); the
        latest history_limit iterations are kept."""
        out = np.empty(self.n_params, np.float64)
        check(lib.latent_montecarlo_param_by_iter(self._handle, int(iteration), _ptr(out, c_double), out.size))
        return out

    @property
    def first_kept_iteration(self):
        return lib.latent_montecarlo_first_kept_iteration(self._handle)

    def records(self):
        """(params (k, n_params), losses (k,)): the surrogate's records (KernelML's parameter
        update history)."""
        k = c_size_t(0)
        check(lib.latent_montecarlo_records(self._handle, None, 0, None, 0, byref(k)))
        x = np.empty((k.value, self.n_params), np.float64)
        loss = np.empty(k.value, np.float64)
        if k.value:
            check(lib.latent_montecarlo_records(self._handle, _ptr(x, c_double), x.size, _ptr(loss, c_double),
                                                loss.size, byref(k)))
        return x, loss

    def run_best(self, run):
        """(params, loss) at the end of run `run`."""
        out = np.empty(self.n_params, np.float64)
        loss = c_double(0.0)
        check(lib.latent_montecarlo_run_best(self._handle, int(run), _ptr(out, c_double), out.size, byref(loss)))
        return out, loss.value

    def _interval_buffers(self):
        n = self.n_params
        return [np.empty(n, np.float64) for _ in range(3)] + [np.empty((n, n), np.float64)]

    def laplace(self, loss, level=0.95, temperature=0.0, observations=0):
        """Intervals(lower, upper, sd, covariance) from a quadratic fit of `loss` around the best
        (the loss read as a likelihood at temperature T; give temperature > 0 or the number of
        observations of a sum- or mean-of-squares loss)."""
        state = {"error": None}
        cb = self._objective(loss, state)
        lo, hi, sd, cov = self._interval_buffers()
        st = lib.latent_montecarlo_laplace(self._handle, cb, None, float(level), float(temperature), int(observations),
                                           _ptr(lo, c_double), _ptr(hi, c_double), _ptr(sd, c_double), lo.size,
                                           _ptr(cov, c_double), cov.size)
        if state["error"] is not None:
            raise state["error"]
        self._run(st)
        return Intervals(lo, hi, sd, cov)

    def run_intervals(self, level=0.95, variance_factor=1.0, skip_runs=0):
        """KernelML's own weak intervals: Intervals(lower, upper, sd, covariance) from the spread
        of the best parameters over runs on fresh minibatches, the covariance scaled by
        variance_factor (b / (n - b) for minibatches of b of n rows: 1 for half-samples)."""
        lo, hi, sd, cov = self._interval_buffers()
        check(lib.latent_montecarlo_run_intervals(self._handle, float(level), float(variance_factor), int(skip_runs),
                                                  _ptr(lo, c_double), _ptr(hi, c_double), _ptr(sd, c_double),
                                                  lo.size, _ptr(cov, c_double), cov.size))
        return Intervals(lo, hi, sd, cov)

    def intervals(self, loss, level=0.95, temperature=0.0, observations=0):
        """(lower, upper) weak confidence intervals around the best point (docs/montecarlo.md,
        "Weak confidence intervals"): give temperature > 0, or the number of
        observations of a sum- or mean-of-squares loss."""
        state = {"error": None}
        cb = self._objective(loss, state)
        n = self.n_params
        lo, hi = np.empty(n, np.float64), np.empty(n, np.float64)
        st = lib.latent_montecarlo_intervals(self._handle, cb, None, float(level), float(temperature),
                                             int(observations), _ptr(lo, c_double), _ptr(hi, c_double), n)
        if state["error"] is not None:
            raise state["error"]
        self._run(st)
        return lo, hi


# ---------------------------------------------------------------------------------------------
# NpyStream (training rows read from .npy files during the fit)
# ---------------------------------------------------------------------------------------------


class NpyStream(_Handle):
    """Training rows read from .npy files while a fit runs (latent_stream): `path` is a .npy
    file, a directory (its *.npy files in name order are the shards), or a list of files.
    Files hold float32 or float64, little-endian, C order, shape (n,) or (n, m). Only the
    headers are read here. Each epoch permutes blocks of `block_rows` contiguous rows and
    shuffles rows within windows of `window_blocks` blocks (defaults 1024 and 32); a fit holds
    one window in memory."""

    _free_name = "latent_stream_free"

    def __init__(self, path, block_rows=None, window_blocks=None):
        if isinstance(path, (list, tuple)):
            ps = [_path(p) for p in path]
            arr = (ctypes.c_char_p * max(len(ps), 1))(*ps)
            h = _new_handle(lib.latent_stream_open_files, arr, len(ps))
        else:
            h = _new_handle(lib.latent_stream_open, _path(path))
        super().__init__(h)
        if block_rows is not None or window_blocks is not None:
            self.set_shuffle(block_rows or 1024, window_blocks or 32)

    def set_shuffle(self, block_rows, window_blocks):
        check(lib.latent_stream_set_shuffle(self._handle, int(block_rows), int(window_blocks)))

    @property
    def rows(self):
        return lib.latent_stream_rows(self._handle)

    @property
    def cols(self):
        return lib.latent_stream_cols(self._handle)

    @property
    def shape(self):
        return (self.rows, self.cols)


# ---------------------------------------------------------------------------------------------
# HashIndex (semantic hashing's address lookup)
# ---------------------------------------------------------------------------------------------


class HashIndex(_Handle):
    """Binary codes of at most 64 bits used as memory addresses (latent_hash_index): semantic
    hashing's lookup (Salakhutdinov & Hinton). ``codes`` holds one uint64 per item, as
    Network.binary_codes returns them for a code layer of at most 64 units (rows x 1); item i
    is codes[i]. Results are (ids, distances) sorted by Hamming distance, ties by lower id."""

    _free_name = "latent_hash_index_free"

    def __init__(self, codes, bits):
        c = np.asarray(codes)
        if c.dtype.kind not in "ui":
            raise TypeError(f"HashIndex: codes must be unsigned integers (uint64), got {c.dtype}")
        if c.ndim == 2 and c.shape[1] != 1:
            raise ValueError(f"HashIndex: one 64-bit word per code (codes of at most 64 bits), got {c.shape[1]} "
                             "words per code")
        c = np.require(c.reshape(-1).astype(np.uint64, copy=False), np.uint64, ["C_CONTIGUOUS", "ALIGNED"])
        super().__init__(_new_handle(lib.latent_hash_index_new, _ptr(c, c_uint64), c.size, int(bits)))

    @classmethod
    def from_network(cls, net, x, threshold=0.5):
        """Indexes the binary codes of the rows of x through net's code layer (<= 64 units)."""
        return cls(net.binary_codes(x, threshold), net.code_dim)

    def __len__(self):
        return lib.latent_hash_index_count(self._handle)

    @property
    def buckets(self):
        """Distinct codes stored (occupied addresses)."""
        return lib.latent_hash_index_buckets(self._handle)

    @property
    def bits(self):
        return lib.latent_hash_index_bits(self._handle)

    def query_radius(self, code, radius):
        """Every item within Hamming distance `radius` of `code`: (ids uint64, distances uint32)."""
        n = c_size_t()
        check(lib.latent_hash_index_query_radius(self._handle, int(code), int(radius), None, None, 0, byref(n)))
        ids = np.empty(n.value, np.uint64)
        dist = np.empty(n.value, np.uint32)
        check(lib.latent_hash_index_query_radius(self._handle, int(code), int(radius), _ptr(ids, c_uint64),
                                                 _ptr(dist, c_uint32), n.value, byref(n)))
        return ids, dist

    def query_top_k(self, code, k):
        """The k items nearest to `code` (fewer only when the index holds fewer): (ids, distances),
        item for item what the brute-force Hamming top-k returns."""
        m = min(int(k), len(self)) if int(k) > 0 else 1
        ids = np.empty(m, np.uint64)
        dist = np.empty(m, np.uint32)
        n = c_size_t()
        check(lib.latent_hash_index_query_top_k(self._handle, int(code), int(k), _ptr(ids, c_uint64),
                                                _ptr(dist, c_uint32), m, byref(n)))
        return ids[: n.value], dist[: n.value]


# ---------------------------------------------------------------------------------------------
# Rbm
# ---------------------------------------------------------------------------------------------


def _train_params(params):
    """A latent_train_params from keyword arguments (its field names), as Trainer() takes them."""
    p = lib.latent_train_params_default()
    names = {f for f, _ in _ffi.latent_train_params._fields_}
    enums = {"optimizer": Optimizer, "lr_schedule": LrSchedule}
    for k, v in params.items():
        if k not in names:
            raise TypeError(f"unexpected training parameter {k!r}")
        if k in enums:
            v = enums[k].coerce(v, k)
        _set_field(p, k, v, "training parameters")
    return p


class Rbm(_Handle):
    """A restricted Boltzmann machine as a model of its own (latent_rbm): visible and hidden
    units 'bernoulli' or 'gaussian', trained by CD-k, scored by free energy, used for its hidden
    probabilities (transform) and sampled by block Gibbs sampling."""

    _free_name = "latent_rbm_free"

    def __init__(self, n_visible, n_hidden, visible="bernoulli", hidden="bernoulli", seed=0):
        super().__init__(_new_handle(lib.latent_rbm_new, int(n_visible), int(n_hidden),
                                     int(RbmUnit.coerce(visible, "visible")), int(RbmUnit.coerce(hidden, "hidden")),
                                     int(seed)))

    @classmethod
    def load(cls, path):
        return cls._wrap(_new_handle(lib.latent_rbm_load, _path(path)))

    def save(self, path):
        check(lib.latent_rbm_save(self._handle, _path(path)))

    @property
    def n_visible(self):
        return lib.latent_rbm_n_visible(self._handle)

    @property
    def n_hidden(self):
        return lib.latent_rbm_n_hidden(self._handle)

    @property
    def units(self):
        """(visible, hidden) as RbmUnit."""
        v, h = c_int32(), c_int32()
        check(lib.latent_rbm_units(self._handle, byref(v), byref(h)))
        return RbmUnit(v.value), RbmUnit(h.value)

    @property
    def params(self):
        """W (n_visible x n_hidden, row-major), then the hidden biases, then the visible biases."""
        return _get_params("latent_rbm", self._handle)

    @params.setter
    def params(self, values):
        _set_params("latent_rbm", self._handle, values)

    def set_threads(self, threads):
        check(lib.latent_rbm_set_threads(self._handle, int(threads)))

    def fit(self, train, cd_k=1, persistent=False, progress=None, **train_params):
        """Trains by CD-k (persistent CD with persistent=True) on `train` (a Dataset or an array).
        Keyword arguments are latent_train_params fields (epochs, batch_size, optimizer,
        learning_rate, momentum, momentum_initial, momentum_switch_epoch, weight_decay, seed,
        threads, ...). `progress(p)` gets a latent.Progress; returning True stops early (fit
        then returns False). Returns True when training ran to its end."""
        p = _train_params(train_params)
        ds = _dataset(train)

        def call(cb):
            return lib.latent_rbm_fit(self._handle, byref(p), _int(cd_k, "cd_k"), int(bool(persistent)), ds._handle, cb, None)

        return _progress_call(call, progress, self, ds)

    def history(self):
        """Per-epoch (reconstruction_error, free_energy) of every completed fit."""
        n = c_size_t()
        check(lib.latent_rbm_history(self._handle, None, None, 0, byref(n)))
        r = np.empty(n.value, np.float64)
        f = np.empty(n.value, np.float64)
        if n.value:
            check(lib.latent_rbm_history(self._handle, _ptr(r, c_double), _ptr(f, c_double), n.value, byref(n)))
        return list(zip(r.tolist(), f.tolist()))

    def _rows_call(self, fn, x, width, dtype, ctype, *extra):
        a, single = _rows(x)
        out = np.empty((a.shape[0], width), dtype)
        check(fn(self._handle, _ptr(a, c_float), a.shape[0], a.shape[1], *extra, _ptr(out, ctype), out.size))
        return _out(single, out)

    def free_energy(self, x):
        """F(v) per row: lower is more probable (p(v) = exp(-F(v)) / Z)."""
        out = self._rows_call(lib.latent_rbm_free_energy, x, 1, np.float64, c_double)
        return out.reshape(-1) if out.ndim == 2 else out[0]

    def transform(self, x):
        """Hidden probabilities (means) per row: rows x n_hidden."""
        return self._rows_call(lib.latent_rbm_transform, x, self.n_hidden, np.float32, c_float)

    def reconstruct(self, x):
        """Mean-field reconstruction E[v | h = E[h | v]]: rows x n_visible."""
        return self._rows_call(lib.latent_rbm_reconstruct, x, self.n_visible, np.float32, c_float)

    def sample(self, x, steps=1, seed=0, means=False):
        """`steps` rounds of Gibbs sampling from each row; the last visible states (or, with
        means=True, their probabilities). The same seed gives the same samples."""
        return self._rows_call(lib.latent_rbm_sample, x, self.n_visible, np.float32, c_float, int(steps), int(seed),
                               int(bool(means)))


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------

_IMAGE_FORMATS = {"auto": 0, "pgm": 1, "png": 2}


def _title(title):
    return None if title is None else str(title).encode("utf-8")


def _grid_params(cols, scale, padding, lo, hi, format):
    p = lib.latent_grid_params_default()
    f = _IMAGE_FORMATS.get(str(format).lower()) if isinstance(format, str) else int(format)
    if f is None:
        raise ValueError(f"format must be 'auto', 'pgm' or 'png', not {format!r}")
    for name, v in (("cols", cols), ("scale", scale), ("padding", padding)):
        if int(v) < 0:
            raise ValueError(f"{name} must not be negative, got {v}")
    p.cols, p.scale, p.padding, p.lo, p.hi, p.format = int(cols), int(scale), int(padding), float(lo), float(hi), f
    return p


def _images(images, height, width, what):
    """(C-contiguous float32 n x height*width array, height, width) from (n, h, w) or (n, h*w)."""
    a = np.asarray(images)
    if a.ndim == 3:
        height, width = a.shape[1], a.shape[2]
        a = a.reshape(a.shape[0], -1)
    elif a.ndim != 2 or height is None or width is None:
        raise ValueError(f"{what}: expected (n, height, width), or (n, height*width) with height and width given")
    return np.require(a, np.float32, ["C_CONTIGUOUS", "ALIGNED"]), int(height), int(width)


def image_grid(path, images, height=None, width=None, cols=8, scale=3, padding=1, lo=0.0, hi=1.0, format="auto"):
    """Writes images ((n, h, w), or (n, h*w) with height and width) as a grayscale grid of cols
    a line, values lo..hi to black..white (lo == hi: the data's range), each pixel a scale x
    scale block, as PNG or PGM (format 'auto': by the extension); latent_image_grid_write_ex."""
    a, h, w = _images(images, height, width, "images")
    p = _grid_params(cols, scale, padding, lo, hi, format)
    check(lib.latent_image_grid_write_ex(_path(path), _ptr(a, c_float), a.shape[0], h, w, byref(p)))


def image_pairs(path, originals, reconstructions, height=None, width=None, cols=8, scale=3, padding=1, lo=0.0,
                hi=1.0, format="auto"):
    """Bands of cols originals over their reconstructions (same shape), scaled as image_grid;
    latent_image_pairs_write_ex."""
    a, h, w = _images(originals, height, width, "originals")
    b, _, _ = _images(reconstructions, h, w, "reconstructions")
    if b.shape != a.shape:
        raise ValueError(f"reconstructions: shape {b.shape} differs from the originals' {a.shape}")
    p = _grid_params(cols, scale, padding, lo, hi, format)
    check(lib.latent_image_pairs_write_ex(_path(path), _ptr(a, c_float), _ptr(b, c_float), a.shape[0], h, w, byref(p)))


def scatter_svg(path, codes, labels=None, title=None):
    """Writes n 2-D points (codes: n x 2) as an SVG scatter plot, coloured by labels (n ints)
    with a legend; latent_scatter_svg_write."""
    c = np.require(np.asarray(codes), np.float32, ["C_CONTIGUOUS", "ALIGNED"])
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"codes: expected an n x 2 array, got shape {c.shape}")
    lp = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.size and (lab.dtype.kind not in "iub" or lab.min() < -(2**31) or lab.max() > 2**31 - 1):
            raise ValueError("labels: expected int32 integers")
        lab = np.require(lab, np.int32, ["C_CONTIGUOUS", "ALIGNED"]).reshape(-1)
        if lab.size != c.shape[0]:
            raise ValueError(f"labels: {lab.size} for {c.shape[0]} points")
        lp = _ptr(lab, c_int32)
    check(lib.latent_scatter_svg_write(_path(path), _ptr(c, c_float), lp, c.shape[0], _title(title)))


def normal_grid_points(k):
    """The k*k latent points of a manifold grid (k*k x 2), tile (r, c) at
    (Phi^-1((c + 0.5) / k), Phi^-1((k - 1 - r + 0.5) / k)); latent_normal_grid_points."""
    z = np.empty((int(k) * int(k), 2), np.float32)
    check(lib.latent_normal_grid_points(int(k), _ptr(z, c_float), z.size))
    return z
class Pca:
    """Principal component analysis through latent_pca_fit (docs/pca.md): `Pca(x, k)` fits k
    components to the rows of x (at least 2 rows, 1 to 2048 finite columns). Attributes:
    `mean` (cols,), `components` (k x cols, unit rows, orthogonal, decreasing variance, each
    signed so its largest-magnitude entry is positive), `variance` (k,: eigenvalues of the
    covariance, denominator rows - 1) and `total_variance`; `transform(x)` projects rows."""

    def __init__(self, x, k):
        a, _ = _rows(x)
        rows, cols = a.shape
        k = int(k)
        if k < 1:
            raise ValueError(f"k is {k}: it must be at least 1")
        self.components = np.empty((k, cols), np.float64)
        self.mean = np.empty(cols, np.float64)
        self.variance = np.empty(k, np.float64)
        total = c_double()
        check(
            lib.latent_pca_fit(
                _ptr(a, c_float), rows, cols, k,
                _ptr(self.components, c_double), self.components.size,
                _ptr(self.mean, c_double), self.mean.size,
                _ptr(self.variance, c_double), self.variance.size,
                byref(total),
            )
        )
        self.total_variance = total.value

    @property
    def explained_variance_ratio(self):
        return self.variance / self.total_variance if self.total_variance > 0 else np.zeros_like(self.variance)

    def transform(self, x):
        """Rows of x (or one row) projected onto the components: (x - mean) @ components.T,
        float32."""
        a, single = _rows(x)
        k, cols = self.components.shape
        if a.shape[1] != cols:
            raise ShapeMismatch(f"the rows have {a.shape[1]} columns, the PCA was fitted on {cols}")
        out = np.empty((a.shape[0], k), np.float32)
        check(
            lib.latent_pca_transform(
                _ptr(a, c_float), a.shape[0], a.shape[1],
                _ptr(self.mean, c_double), _ptr(self.components, c_double), k,
                _ptr(out, c_float), out.size,
            )
        )
        return _out(single, out)
