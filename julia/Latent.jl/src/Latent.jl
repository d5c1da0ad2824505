"""
    Latent

Julia bindings of liblatent (the C API of `include/latent.h`) through `ccall`. Matrices are
samples x features, `Matrix{Float64}` or `Matrix{Float32}`, passed column-major as Julia holds
them (no transpose). Handles are mutable structs freed by finalizers; a failed call throws a
[`LatentError`](@ref) with the library's message.

The library is found through `ENV["LATENT_LIB"]` (the path of liblatent.so, or the folder
holding it) when the module is loaded, else `liblatent` on the loader's search path.

UNTESTED: Julia is not run by the project's tests. Every `ccall` below is mirrored with the same
C types in `tests/c/julia_mirror.c`, which the Rust test `tests/julia_mirror.rs` compiles and
runs, checking the signatures and the struct layouts against this file.
"""
module Latent

export LatentError, Network, Dataset, latent_network, latent_dataset, latent_fit, encode,
       reconstruct, predict, reconstruction_error, save_model, load_model, latent_loss,
       set_matmul_precision, matmul_precision, bf16_available, set_wait_policy, wait_policy,
       set_inference_cache_limit, inference_cache

function _libpath()
    p = get(ENV, "LATENT_LIB", "")
    isempty(p) && return "liblatent"
    return isdir(p) ? joinpath(p, "liblatent.so") : p
end
const LIB = _libpath()

# ---- the C structs (the layouts of include/latent.h; checked by tests/julia_mirror.rs) -------

struct NetworkParams
    input_dim::UInt32
    n_encoder::UInt32
    encoder_units::Ptr{UInt32}
    encoder_activations::Ptr{Int32}
    hidden_activation::Int32
    code_units::UInt32
    code_activation::Int32
    mirror_decoder::Int32
    n_decoder::UInt32
    decoder_units::Ptr{UInt32}
    decoder_activations::Ptr{Int32}
    output_activation::Int32
    loss::Int32
    tied_weights::Int32
    init::Int32
    seed::UInt64
    sparsity::Int32
    sparsity_target::Float64
    sparsity_weight::Float64
    sparse_layers::Ptr{UInt32}
    n_sparse_layers::UInt32
    alternate_sparsity::Int32
    alternate_start::UInt32
    contractive_weight::Float64
    corruption::Int32
    corruption_level::Float64
    code_noise::Float64
    encoder_stochastic::Ptr{Int32}
    code_stochastic::Int32
    decoder_stochastic::Ptr{Int32}
    stochastic_sigma::Float64
    task::Int32
    outputs::UInt32
    encoder_connections::Ptr{Int32}
    code_connection::Int32
    decoder_connections::Ptr{Int32}
    output_connection::Int32
end

struct TrainParams
    epochs::UInt32
    batch_size::UInt32
    optimizer::Int32
    nesterov::Int32
    learning_rate::Float64
    momentum::Float64
    beta1::Float64
    beta2::Float64
    epsilon::Float64
    weight_decay::Float64
    grad_clip_norm::Float64
    validation_fraction::Float64
    seed::UInt64
    threads::UInt32
    early_stopping_patience::UInt32
    shuffle::Int32
    drop_last::Int32
    progress_every::UInt32
    lr_schedule::Int32
    lr_step_epochs::UInt32
    warmup_steps::UInt32
    lr_gamma::Float64
    lr_min::Float64
    momentum_initial::Float64
    momentum_switch_epoch::UInt32
    checkpoint_path::Cstring
    checkpoint_every::UInt32
end

struct EpochRecord
    train_loss::Float64
    train_penalty::Float64
    valid_loss::Float64
    seconds::Float64
    samples_per_second::Float64
    learning_rate::Float64
end

struct Progress
    event::Int32
    epoch::UInt32
    epochs::UInt32
    batch::UInt64
    batches::UInt64
    loss::Float64
    penalty::Float64
    stage::Int32
    stage_layer::UInt32
    free_energy::Float64
    valid_loss::Float64
    samples_per_second::Float64
    seconds::Float64
end

# What a fit's progress trampoline shares with latent_fit: the user's function, what it threw,
# and whether it asked to stop.
mutable struct _ProgressState
    f::Any
    err::Any
    stopped::Bool
end

# The C progress callback: `true` from the Julia function stops training (as non-zero in C and
# True in Python); an exception stops it too and is rethrown by latent_fit. Nothing unwinds
# into the library.
function _progress_trampoline(user::Ptr{Cvoid}, p::Ptr{Progress})::Int32
    state = unsafe_pointer_to_objref(user)::_ProgressState
    try
        if state.f(unsafe_load(p)) === true
            state.stopped = true
            return Int32(1)
        end
        return Int32(0)
    catch e
        state.err = e
        return Int32(1)
    end
end

# A copy of an immutable struct with some fields replaced.
function _with(p::T; kw...) where {T}
    vals = map(fieldnames(T)) do f
        haskey(kw, f) ? convert(fieldtype(T, f), kw[f]) : getfield(p, f)
    end
    return T(vals...)
end

# ---- the C functions: one ccall each, on one line (tests/julia_mirror.rs parses them) -------

_last_error_message() = ccall((:latent_last_error_message, LIB), Cstring, ())
_status_string(st) = ccall((:latent_status_string, LIB), Cstring, (Cint,), st)
_version() = ccall((:latent_version, LIB), Cstring, ())
_network_params_default() = ccall((:latent_network_params_default, LIB), NetworkParams, ())
_network_new(p, out) = ccall((:latent_network_new, LIB), Cint, (Ptr{NetworkParams}, Ptr{Ptr{Cvoid}}), p, out)
_network_free(h) = ccall((:latent_network_free, LIB), Cvoid, (Ptr{Cvoid},), h)
_network_input_dim(h) = ccall((:latent_network_input_dim, LIB), Csize_t, (Ptr{Cvoid},), h)
_network_code_dim(h) = ccall((:latent_network_code_dim, LIB), Csize_t, (Ptr{Cvoid},), h)
_network_output_dim(h) = ccall((:latent_network_output_dim, LIB), Csize_t, (Ptr{Cvoid},), h)
_network_task(h) = ccall((:latent_network_task, LIB), Cint, (Ptr{Cvoid},), h)
_dataset_from_buffer(x, dtype, layout, rows, cols, out) = ccall((:latent_dataset_from_buffer, LIB), Cint, (Ptr{Cvoid}, Cint, Cint, Csize_t, Csize_t, Ptr{Ptr{Cvoid}}), x, dtype, layout, rows, cols, out)
_dataset_set_labels(h, labels, n) = ccall((:latent_dataset_set_labels, LIB), Cint, (Ptr{Cvoid}, Ptr{Int32}, Csize_t), h, labels, n)
_dataset_set_targets(h, y, dtype, layout, rows, cols) = ccall((:latent_dataset_set_targets, LIB), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Cint, Cint, Csize_t, Csize_t), h, y, dtype, layout, rows, cols)
_dataset_free(h) = ccall((:latent_dataset_free, LIB), Cvoid, (Ptr{Cvoid},), h)
_dataset_rows(h) = ccall((:latent_dataset_rows, LIB), Csize_t, (Ptr{Cvoid},), h)
_train_params_default() = ccall((:latent_train_params_default, LIB), TrainParams, ())
_trainer_new(p, out) = ccall((:latent_trainer_new, LIB), Cint, (Ptr{TrainParams}, Ptr{Ptr{Cvoid}}), p, out)
_trainer_free(h) = ccall((:latent_trainer_free, LIB), Cvoid, (Ptr{Cvoid},), h)
_trainer_fit(t, net, train, valid, progress, user) = ccall((:latent_trainer_fit, LIB), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}), t, net, train, valid, progress, user)
_trainer_history(t, out, capacity, n) = ccall((:latent_trainer_history, LIB), Cint, (Ptr{Cvoid}, Ptr{EpochRecord}, Csize_t, Ptr{Csize_t}), t, out, capacity, n)
_network_encode_dataset(h, ds, out, capacity) = ccall((:latent_network_encode_dataset, LIB), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float32}, Csize_t), h, ds, out, capacity)
_network_reconstruct_dataset(h, ds, out, capacity) = ccall((:latent_network_reconstruct_dataset, LIB), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float32}, Csize_t), h, ds, out, capacity)
_network_predict_dataset(h, ds, out, capacity) = ccall((:latent_network_predict_dataset, LIB), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float32}, Csize_t), h, ds, out, capacity)
_network_reconstruction_error_dataset(h, ds, out, capacity) = ccall((:latent_network_reconstruction_error_dataset, LIB), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float64}, Csize_t), h, ds, out, capacity)
_network_loss(h, ds, out) = ccall((:latent_network_loss, LIB), Cint, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Float64}), h, ds, out)
_network_save(h, path) = ccall((:latent_network_save, LIB), Cint, (Ptr{Cvoid}, Cstring), h, path)
_network_load(path, out) = ccall((:latent_network_load, LIB), Cint, (Cstring, Ptr{Ptr{Cvoid}}), path, out)
_set_matmul_precision(p) = ccall((:latent_set_matmul_precision, LIB), Cint, (Int32,), p)
_get_matmul_precision(out) = ccall((:latent_get_matmul_precision, LIB), Cint, (Ptr{Int32},), out)
_matmul_bf16_available() = ccall((:latent_matmul_bf16_available, LIB), Int32, ())
_set_wait_policy(p) = ccall((:latent_set_wait_policy, LIB), Cint, (Int32,), p)
_get_wait_policy(out) = ccall((:latent_get_wait_policy, LIB), Cint, (Ptr{Int32},), out)
_set_inference_cache_limit(bytes) = ccall((:latent_set_inference_cache_limit, LIB), Cint, (Csize_t,), bytes)
_get_inference_cache(limit, held) = ccall((:latent_get_inference_cache, LIB), Cint, (Ptr{Csize_t}, Ptr{Csize_t}), limit, held)

# ---- errors -------------------------------------------------------------------------------

"""
    LatentError(status, name, message)

A failed library call: `status` is the `latent_status` code, `name` its name
(`"LATENT_STATUS_SHAPE_MISMATCH"`, ...), `message` the library's `latent_last_error_message()`.
"""
struct LatentError <: Exception
    status::Int32
    name::String
    message::String
end
Base.showerror(io::IO, e::LatentError) = print(io, "LatentError(", e.name, "): ", e.message)

function _check(st::Integer)
    st == 0 && return nothing
    throw(LatentError(Int32(st), unsafe_string(_status_string(st)), unsafe_string(_last_error_message())))
end

# ---- handles ------------------------------------------------------------------------------

"A network handle (autoencoder, classifier or regressor), freed by its finalizer."
mutable struct Network
    ptr::Ptr{Cvoid}
    function Network(ptr::Ptr{Cvoid})
        n = new(ptr)
        finalizer(n) do n
            _network_free(n.ptr)
            n.ptr = C_NULL
        end
        return n
    end
end

"A dataset handle (rows = samples), freed by its finalizer."
mutable struct Dataset
    ptr::Ptr{Cvoid}
    function Dataset(ptr::Ptr{Cvoid})
        d = new(ptr)
        finalizer(d) do d
            _dataset_free(d.ptr)
            d.ptr = C_NULL
        end
        return d
    end
end

Base.unsafe_convert(::Type{Ptr{Cvoid}}, n::Network) = n.ptr
Base.unsafe_convert(::Type{Ptr{Cvoid}}, d::Dataset) = d.ptr

const ACTIVATIONS = Dict(:identity => 0, :linear => 0, :sigmoid => 1, :tanh => 2, :relu => 3,
                         :leaky_relu => 4, :elu => 5, :softplus => 6, :gelu => 7)
const LOSSES = Dict(:mse => 0, :binary_cross_entropy => 1, :bce => 1)
const TASKS = Dict(:reconstruct => 0, :classify => 1, :regress => 2)
const OPTIMIZERS = Dict(:sgd => 0, :adam => 1, :adamw => 2, :rmsprop => 3, :adagrad => 4, :adadelta => 5,
                        :adamax => 6, :lion => 7)
const DTYPE_F32 = Int32(0)
const DTYPE_F64 = Int32(1)
const LAYOUT_COL_MAJOR = Int32(1)

function _lookup(table, key, what)
    k = Symbol(key)
    haskey(table, k) || throw(ArgumentError("unknown $what $(repr(key)); one of $(join(sort!(collect(keys(table))), ", "))"))
    return Int32(table[k])
end

"""
    latent_network(input_dim; encoder=Int[], code=2, activation=:relu,
                   output_activation=(task == :classify ? :identity : :sigmoid), loss=:mse,
                   seed=0, task=:reconstruct, outputs=0, code_activation=:identity) -> Network

An autoencoder input -> encoder widths -> code -> mirrored decoder -> input, or with
`task = :classify` / `:regress` a supervised network with `outputs` classes or targets.
"""
function latent_network(input_dim::Integer; encoder=Int[], code::Integer=2, activation=:relu,
                        task=:reconstruct,
                        output_activation=(Symbol(task) == :classify ? :identity : :sigmoid),
                        loss=:mse, seed::Integer=0, outputs::Integer=0, code_activation=:identity)
    units = UInt32.(collect(encoder))
    GC.@preserve units begin
        p = _with(_network_params_default();
                  input_dim=input_dim, n_encoder=length(units),
                  encoder_units=isempty(units) ? Ptr{UInt32}(C_NULL) : pointer(units),
                  hidden_activation=_lookup(ACTIVATIONS, activation, "activation"),
                  code_units=code,
                  code_activation=_lookup(ACTIVATIONS, code_activation, "activation"),
                  output_activation=_lookup(ACTIVATIONS, output_activation, "activation"),
                  loss=_lookup(LOSSES, loss, "loss"), seed=seed,
                  task=_lookup(TASKS, task, "task"), outputs=outputs)
        out = Ref{Ptr{Cvoid}}(C_NULL)
        _check(_network_new(Ref(p), out))
    end
    return Network(out[])
end

_dtype(::AbstractMatrix{Float32}) = DTYPE_F32
_dtype(::AbstractMatrix{Float64}) = DTYPE_F64

# A dense column-major Float32 or Float64 matrix (other element types become Float64).
_dense(x::Matrix{Float32}) = x
_dense(x::Matrix{Float64}) = x
_dense(x::AbstractMatrix{Float32}) = Matrix{Float32}(x)
_dense(x::AbstractMatrix) = Matrix{Float64}(x)
_dense(x::AbstractVector) = _dense(reshape(x, 1, :))

function _dataset(x::AbstractVecOrMat)
    m = _dense(x)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    GC.@preserve m _check(_dataset_from_buffer(pointer(m), _dtype(m), LAYOUT_COL_MAJOR, size(m, 1), size(m, 2), out))
    return Dataset(out[])
end

"""
    latent_dataset(x; labels=nothing, targets=nothing) -> Dataset

The rows of `x` (samples x features, `Matrix{Float64}` or `Matrix{Float32}`, read column-major
without a transpose), with optional 0-based integer class `labels` or a `targets` matrix.
"""
function latent_dataset(x::AbstractVecOrMat; labels=nothing, targets=nothing)
    d = _dataset(x)
    if labels !== nothing
        l = Int32.(collect(labels))
        GC.@preserve l _check(_dataset_set_labels(d, pointer(l), length(l)))
    end
    if targets !== nothing
        y = _dense(targets)
        GC.@preserve y _check(_dataset_set_targets(d, pointer(y), _dtype(y), LAYOUT_COL_MAJOR, size(y, 1), size(y, 2)))
    end
    return d
end

_as_dataset(d::Dataset) = d
_as_dataset(x) = latent_dataset(x)

"""
    latent_fit(net, data; epochs=10, batch_size=128, learning_rate=1e-3, optimizer=:adam,
               seed=0, threads=0, validation_fraction=0.0, progress=nothing)

Trains `net` in place on `data` (a `Dataset` or a matrix) and returns the history of this fit:
a named tuple of vectors (`epoch`, `train_loss`, `train_penalty`, `valid_loss`, `seconds`,
`samples_per_second`, `learning_rate`), which `DataFrame(h)` takes as it is, and `stopped`.
`progress(p::Progress)` is called at each epoch end; returning `true` stops training (as
non-zero in C and `True` in Python; `stopped` is then `true`), and an exception thrown inside
it stops training and is rethrown here. The network keeps its last completed step either way.
"""
function latent_fit(net::Network, data; epochs::Integer=10, batch_size::Integer=128,
                    learning_rate::Real=1e-3, optimizer=:adam, seed::Integer=0,
                    threads::Integer=0, validation_fraction::Real=0.0, progress=nothing)
    d = _as_dataset(data)
    p = _with(_train_params_default(); epochs=epochs, batch_size=batch_size,
              learning_rate=learning_rate, optimizer=_lookup(OPTIMIZERS, optimizer, "optimizer"),
              seed=seed, threads=threads, validation_fraction=validation_fraction)
    tr = Ref{Ptr{Cvoid}}(C_NULL)
    _check(_trainer_new(Ref(p), tr))
    try
        state = _ProgressState(progress, nothing, false)
        cb = progress === nothing ? C_NULL :
             @cfunction(_progress_trampoline, Int32, (Ptr{Cvoid}, Ptr{Progress}))
        user = progress === nothing ? C_NULL : pointer_from_objref(state)
        st = GC.@preserve net d state _trainer_fit(tr[], net.ptr, d.ptr, C_NULL, cb, user)
        state.err === nothing || throw(state.err)
        (st == 9 && state.stopped) || _check(st)  # 9: LATENT_STATUS_CANCELLED
        n = Ref{Csize_t}(0)
        _check(_trainer_history(tr[], Ptr{EpochRecord}(C_NULL), 0, n))
        h = Vector{EpochRecord}(undef, n[])
        _check(_trainer_history(tr[], pointer(h), length(h), n))
        return (epoch=collect(1:length(h)), train_loss=[r.train_loss for r in h],
                train_penalty=[r.train_penalty for r in h], valid_loss=[r.valid_loss for r in h],
                seconds=[r.seconds for r in h], samples_per_second=[r.samples_per_second for r in h],
                learning_rate=[r.learning_rate for r in h], stopped=state.stopped)
    finally
        _trainer_free(tr[])
    end
end

# Runs a *_dataset call over the rows of x: the library writes rows x width row-major Float32,
# i.e. a width x rows column-major matrix, returned transposed (rows x width).
function _rows(f, net::Network, x, width)
    d = _dataset(x)
    rows = Int(_dataset_rows(d))
    buf = Matrix{Float32}(undef, width, rows)
    GC.@preserve net d buf _check(f(net.ptr, d.ptr, pointer(buf), length(buf)))
    return permutedims(buf)
end

"Codes of the rows of `x` (rows x code)."
encode(net::Network, x) = _rows(_network_encode_dataset, net, x, Int(_network_code_dim(net)))
"Reconstructions of the rows of `x` (rows x input_dim)."
reconstruct(net::Network, x) = _rows(_network_reconstruct_dataset, net, x, Int(_network_input_dim(net)))
"Class probabilities (classifier), predictions (regressor) or reconstructions (autoencoder)."
predict(net::Network, x) = _rows(_network_predict_dataset, net, x, Int(_network_output_dim(net)))

"Per-row reconstruction error (anomaly score) of the rows of `x`."
function reconstruction_error(net::Network, x)
    d = _dataset(x)
    out = Vector{Float64}(undef, _dataset_rows(d))
    GC.@preserve net d _check(_network_reconstruction_error_dataset(net.ptr, d.ptr, pointer(out), length(out)))
    return out
end

"The network's training loss (mean over elements) on `data`."
function latent_loss(net::Network, data)
    d = _as_dataset(data)
    out = Ref{Float64}(0)
    GC.@preserve net d _check(_network_loss(net.ptr, d.ptr, out))
    return out[]
end

"Saves the network to `path` (atomically: the old file or the complete new one)."
save_model(net::Network, path::AbstractString) = (GC.@preserve net _check(_network_save(net.ptr, String(path))); nothing)

"Loads a network saved by `save_model` (or by any binding of the library)."
function load_model(path::AbstractString)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    _check(_network_load(String(path), out))
    return Network(out[])
end

version() = unsafe_string(_version())

# ---- process-wide settings ----------------------------------------------------------------

# The names each setting takes (PyTorch's and JAX's precisions, OpenMP's wait policies too) and
# the one each getter answers with.
const PRECISIONS = Dict(:f32 => 0, :float32 => 0, :highest => 0, :bf16 => 1, :bfloat16 => 1, :medium => 1)
const PRECISION_NAMES = Dict(0 => :f32, 1 => :bf16)
const WAIT_POLICIES = Dict(:spin => 0, :active => 0, Symbol("spin-then-park") => 1, :park => 2, :passive => 2)
const WAIT_POLICY_NAMES = Dict(0 => :spin, 1 => Symbol("spin-then-park"), 2 => :park)

_setting(key) = Symbol(lowercase(strip(String(key))))

"""
    set_matmul_precision(p) -> the precision before

`:f32` (the default) or `:bf16` for every CPU matrix product of the process: `:bf16` rounds the
inputs of each product of more than 4 rows and 4 columns to bfloat16 and sums in f32, about twice
the f32 rate where the CPU has AVX-512 BF16 ([`bf16_available`](@ref)); elsewhere it throws
`LatentError(LATENT_STATUS_UNSUPPORTED)` and changes nothing. Parameters, optimizer state and
losses stay f32. Overrides `ENV["LATENT_MATMUL_PRECISION"]`.
"""
function set_matmul_precision(p)
    old = matmul_precision()
    _check(_set_matmul_precision(_lookup(PRECISIONS, _setting(p), "matmul precision")))
    return old
end

"The precision in force (`:f32` or `:bf16`)."
matmul_precision() = (r = Ref{Int32}(0); _check(_get_matmul_precision(r)); PRECISION_NAMES[r[]])

"Whether this CPU multiplies in bfloat16 (AVX-512 BF16: AMD Zen 4, Intel Sapphire Rapids and later)."
bf16_available() = _matmul_bf16_available() != 0

"""
    set_wait_policy(p) -> the policy before

How idle pool workers wait during a training step: `:spin`, `Symbol("spin-then-park")` (the
default; the string `"spin-then-park"` works too) or `:park` (OpenMP's `:active` and `:passive`
too). `:park` suits cores shared with other busy processes; results are the same bit for bit.
"""
function set_wait_policy(p)
    old = wait_policy()
    _check(_set_wait_policy(_lookup(WAIT_POLICIES, _setting(p), "wait policy")))
    return old
end

"The wait policy in force."
wait_policy() = (r = Ref{Int32}(0); _check(_get_wait_policy(r)); WAIT_POLICY_NAMES[r[]])

"""
    set_inference_cache_limit(bytes) -> the limit before

The most bytes all models keep, together, between inference calls (default 256 MB; 0 keeps
none); what they keep beyond a lowered limit is freed before it returns. Results are the same
bits whatever the limit.
"""
function set_inference_cache_limit(bytes::Integer)
    bytes >= 0 || throw(ArgumentError("the inference cache limit must be at least 0 bytes, not $bytes"))
    old = inference_cache().limit
    _check(_set_inference_cache_limit(Csize_t(bytes)))
    return old
end

"`(limit = , held = )` in bytes: the limit in force and what all models keep now."
function inference_cache()
    limit, held = Ref{Csize_t}(0), Ref{Csize_t}(0)
    _check(_get_inference_cache(limit, held))
    return (limit = Int(limit[]), held = Int(held[]))
end

end # module
