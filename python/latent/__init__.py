"""latent: autoencoders from Python, through ctypes over liblatent.

    import numpy as np, latent
    data = latent.Dataset.from_csv(latent.find_data("digits/digits.csv.gz"), label_column=64)
    data.scale("min_max")
    with latent.Network(input_dim=64, encoder=[32], code=8) as net:
        latent.Trainer(epochs=20).fit(net, data)
        codes = net.encode(data)

The library is found through $LATENT_LIBRARY, a copy inside this package, the checkout's
target/release, then the system loader (see docs/python.md).
"""

from ._ffi import (
    ABI_VERSION,
    Activation,
    Connection,
    Constraint,
    Corruption,
    Device,
    Distribution,
    Event,
    Init,
    Loss,
    LrSchedule,
    MonteCarloStop,
    MonteCarloStrategy,
    OnnxPart,
    Optimizer,
    MatmulPrecision,
    Prior,
    Proposal,
    RbmUnit,
    Scaling,
    Sparsity,
    Stage,
    Status,
    Stochastic,
    Task,
    VaeObjective,
    WaitPolicy,
    library_path,
)
from .core import (
    Dataset,
    Elbo,
    EpochRecord,
    Evaluation,
    HashIndex,
    Intervals,
    Metrics,
    MonteCarlo,
    Network,
    NpyStream,
    Pca,
    Progress,
    Psd,
    Rbm,
    SearchView,
    Trainer,
    Vae,
    bf16_available,
    cuda_available,
    devices,
    find_data,
    image_grid,
    image_pairs,
    inference_cache,
    matmul_precision,
    normal_grid_points,
    scatter_svg,
    set_inference_cache_limit,
    set_matmul_precision,
    set_wait_policy,
    version,
    wait_policy,
)
from .errors import (
    BadFormat,
    BufferTooSmall,
    Busy,
    Cancelled,
    Diverged,
    InternalError,
    InvalidArgument,
    LatentError,
    LatentIOError,
    NonFinite,
    NullArgument,
    OutOfMemory,
    ShapeMismatch,
    Unsupported,
)

__version__ = "0.1.0"
