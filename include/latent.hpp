/* latent: autoencoders as a C library; this is its header-only C++17 layer. SPDX-License-Identifier: MIT
 *
 * Written by hand over latent.h (no link-time dependency beyond liblatent itself):
 *   - errors become exceptions: every failing call throws latent::error, which carries the
 *     latent_status and the library's message (latent_last_error_message());
 *   - every handle has a move-only owner (Network, Dataset, Trainer, Vae, MonteCarlo) with get(),
 *     release() and reset(); a moved-from owner is empty (get() == nullptr, operator bool false);
 *   - arrays go in and out as latent::span<T> (a pointer and a size: std::span is C++20), or come
 *     back as std::vector;
 *   - callbacks are std::function; an exception thrown by one never crosses the C library: it is
 *     caught in the trampoline, the work is cancelled (training) or the candidate skipped
 *     (Monte-Carlo), and it is rethrown after the C call returns.
 * See docs/building.md, "C++". */
#ifndef LATENT_HPP
#define LATENT_HPP

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "latent.h"

namespace latent {

/* ----------------------------------------------------------------------------------------- */
/* Errors                                                                                     */

/** The one exception type: the status of the failed call and the library's message (what()). */
class error : public std::runtime_error {
public:
    error(latent_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    /** The latent_status code (LATENT_STATUS_SHAPE_MISMATCH, ...). */
    latent_status status() const noexcept { return status_; }
    /** The status's static name ("LATENT_STATUS_SHAPE_MISMATCH", ...). */
    const char *status_name() const noexcept { return latent_status_string(status_); }

private:
    latent_status status_;
};

/** Throws latent::error with the calling thread's last message unless `status` is OK. */
inline void check(latent_status status) {
    if (status != LATENT_STATUS_OK) {
        const char *message = latent_last_error_message();
        throw error(status, message != nullptr ? message : "");
    }
}

inline const char *version() noexcept { return latent_version(); }
inline const char *status_string(latent_status status) noexcept { return latent_status_string(status); }

/* ----------------------------------------------------------------------------------------- */
/* span: a pointer and a count (std::span is C++20)                                           */

template <class T>
class span {
    template <class C>
    using data_t = decltype(std::declval<C &>().data());
    template <class C>
    using if_container = std::enable_if_t<
        !std::is_same_v<std::remove_cv_t<std::remove_reference_t<C>>, span> &&
        std::is_convertible_v<data_t<C>, T *> &&
        std::is_convertible_v<decltype(std::declval<C &>().size()), std::size_t>>;

public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    constexpr span() noexcept = default;
    constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N>
    constexpr span(T (&array)[N]) noexcept : data_(array), size_(N) {}
    /** Any contiguous container with data() and size(): std::vector, std::array, a span of U. */
    template <class C, class = if_container<C>>
    constexpr span(C &&c) noexcept : data_(c.data()), size_(static_cast<std::size_t>(c.size())) {}

    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

namespace detail {

/** Columns of a row-major matrix of `size` values in `rows` rows (the library checks them). */
inline std::size_t cols_of(std::size_t size, std::size_t rows) {
    if (rows == 0) return 0; /* the library reports the zero size */
    if (size % rows != 0)
        throw error(LATENT_STATUS_SHAPE_MISMATCH, std::to_string(size) + " values do not make " +
                                                      std::to_string(rows) + " equal rows");
    return size / rows;
}

inline const char *c_str_or_null(const std::string &s) { return s.empty() ? nullptr : s.c_str(); }

/** A snprintf-style describe call into a std::string. */
template <class F>
std::string describe(F &&call) {
    std::size_t needed = 0;
    char probe[1];
    latent_status s = call(probe, sizeof probe, &needed);
    if (s != LATENT_STATUS_OK && s != LATENT_STATUS_BUFFER_TOO_SMALL) check(s);
    std::string text(needed, '\0');
    check(call(text.data(), text.size(), &needed));
    if (!text.empty()) text.resize(text.size() - 1); /* the NUL */
    return text;
}

/** Owns one C handle: move-only, freed by Free, empty after a move or release(). */
template <class H, void (*Free)(H *)>
class handle {
public:
    handle() noexcept = default;
    explicit handle(H *owned) noexcept : h_(owned) {}
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    handle(handle &&other) noexcept : h_(other.release()) {}
    handle &operator=(handle &&other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    ~handle() { Free(h_); }

    /** The C handle (still owned), for calls the C++ layer does not wrap; nullptr when empty. */
    H *get() const noexcept { return h_; }
    /** Gives up ownership: the caller frees the returned handle with latent_*_free. */
    H *release() noexcept {
        H *h = h_;
        h_ = nullptr;
        return h;
    }
    /** Frees the owned handle (if any) and owns `owned` instead. */
    void reset(H *owned = nullptr) noexcept {
        H *old = h_;
        h_ = owned;
        Free(old);
    }
    explicit operator bool() const noexcept { return h_ != nullptr; }

private:
    H *h_ = nullptr;
};

/** The state a progress trampoline shares with the call that installed it. */
struct progress_state {
    const std::function<bool(const latent_progress &)> *callback;
    std::exception_ptr thrown;
};

inline int32_t progress_trampoline(void *user, const latent_progress *progress) noexcept {
    auto *state = static_cast<progress_state *>(user);
    try {
        return (*state->callback)(*progress) ? 1 : 0; /* true = stop, as non-zero in C */
    } catch (...) {
        state->thrown = std::current_exception();
        return 1; /* cancel: the network keeps its last completed step */
    }
}

/** Runs a C call that takes a progress callback; returns false when the callback cancelled it,
 * rethrows what the callback threw, throws latent::error for any other failure. */
template <class F>
bool with_progress(const std::function<bool(const latent_progress &)> &callback, F &&call) {
    if (!callback) {
        latent_status s = call(static_cast<latent_progress_fn>(nullptr), static_cast<void *>(nullptr));
        if (s == LATENT_STATUS_CANCELLED) return false;
        check(s);
        return true;
    }
    progress_state state{&callback, nullptr};
    latent_status s = call(&progress_trampoline, static_cast<void *>(&state));
    if (state.thrown) std::rethrow_exception(state.thrown);
    if (s == LATENT_STATUS_CANCELLED) return false;
    check(s);
    return true;
}

/** The state an objective trampoline shares with minimize/intervals (called from many threads). */
struct objective_state {
    const std::function<double(span<const double>)> *loss;
    std::atomic<bool> failed{false};
    std::mutex lock;
    std::exception_ptr thrown;
};

inline double objective_trampoline(void *user, const double *params, std::size_t n) noexcept {
    auto *state = static_cast<objective_state *>(user);
    if (state->failed.load(std::memory_order_relaxed)) return std::numeric_limits<double>::quiet_NaN();
    try {
        return (*state->loss)(span<const double>(params, n));
    } catch (...) {
        std::lock_guard<std::mutex> guard(state->lock);
        if (!state->thrown) state->thrown = std::current_exception();
        state->failed.store(true, std::memory_order_relaxed);
        /* non-finite losses are skipped: the run winds down by its patience */
        return std::numeric_limits<double>::quiet_NaN();
    }
}

template <class F>
void with_objective(const std::function<double(span<const double>)> &loss, F &&call) {
    if (!loss) throw error(LATENT_STATUS_NULL_ARGUMENT, "the loss function is empty");
    objective_state state;
    state.loss = &loss;
    latent_status s = call(&objective_trampoline, static_cast<void *>(&state));
    if (state.thrown) std::rethrow_exception(state.thrown);
    check(s);
}

}  // namespace detail

/** The data resolver (latent_data_find): the absolute path of a data set, or latent::error. */
inline std::string data_find(const std::string &name) {
    std::size_t needed = 0;
    latent_status s = latent_data_find(name.c_str(), nullptr, 0, &needed);
    if (s != LATENT_STATUS_OK && s != LATENT_STATUS_BUFFER_TOO_SMALL) check(s);
    std::string path(needed, '\0');
    check(latent_data_find(name.c_str(), path.data(), path.size(), &needed));
    if (!path.empty()) path.resize(path.size() - 1);
    return path;
}

/** Training progress: return true to stop (cancel), false to go on: the C convention (non-zero
 * cancels) and Python's (True stops), so one callback means the same in every binding. */
using progress_callback = std::function<bool(const latent_progress &)>;
/** A Monte-Carlo loss of the parameters; may be called from several threads at once. */
using objective = std::function<double(span<const double>)>;

/* ----------------------------------------------------------------------------------------- */
/* Dataset                                                                                    */

class Dataset : public detail::handle<latent_dataset, latent_dataset_free> {
public:
    using handle::handle;
    /** An empty owner (get() == nullptr). */
    Dataset() noexcept = default;

    /** Copies a rows x cols matrix (row- or column-major) of floats or doubles. */
    static Dataset from_buffer(span<const float> data, std::size_t rows,
                               latent_layout layout = LATENT_LAYOUT_ROW_MAJOR) {
        latent_dataset *ds = nullptr;
        check(latent_dataset_from_buffer(data.data(), LATENT_DTYPE_F32, layout, rows,
                                         detail::cols_of(data.size(), rows), &ds));
        return Dataset(ds);
    }
    static Dataset from_buffer(span<const double> data, std::size_t rows,
                               latent_layout layout = LATENT_LAYOUT_ROW_MAJOR) {
        latent_dataset *ds = nullptr;
        check(latent_dataset_from_buffer(data.data(), LATENT_DTYPE_F64, layout, rows,
                                         detail::cols_of(data.size(), rows), &ds));
        return Dataset(ds);
    }
    /** IDX images (.gz or not), with labels unless `labels_path` is empty. */
    static Dataset from_idx(const std::string &images_path, const std::string &labels_path = "") {
        latent_dataset *ds = nullptr;
        check(latent_dataset_from_idx(images_path.c_str(), detail::c_str_or_null(labels_path), &ds));
        return Dataset(ds);
    }
    static Dataset from_csv(const std::string &path, const latent_csv_params &params = latent_csv_params_default()) {
        latent_dataset *ds = nullptr;
        check(latent_dataset_from_csv(path.c_str(), &params, &ds));
        return Dataset(ds);
    }

    std::size_t rows() const noexcept { return latent_dataset_rows(get()); }
    std::size_t cols() const noexcept { return latent_dataset_cols(get()); }
    bool has_labels() const noexcept { return latent_dataset_has_labels(get()) != 0; }
    latent_scaling scaling() const noexcept { return latent_dataset_scaling(get()); }
    std::size_t target_cols() const noexcept { return latent_dataset_target_cols(get()); }

    std::vector<int32_t> labels() const {
        std::vector<int32_t> out(rows());
        check(latent_dataset_labels(get(), out.data(), out.size()));
        return out;
    }
    void set_labels(span<const int32_t> labels) { check(latent_dataset_set_labels(get(), labels.data(), labels.size())); }
    void set_targets(span<const float> targets, std::size_t rows, latent_layout layout = LATENT_LAYOUT_ROW_MAJOR) {
        check(latent_dataset_set_targets(get(), targets.data(), LATENT_DTYPE_F32, layout, rows,
                                         detail::cols_of(targets.size(), rows)));
    }
    /** `count` rows from `first`, row-major. */
    std::vector<float> copy_rows(std::size_t first, std::size_t count) const {
        std::vector<float> out(count * cols());
        check(latent_dataset_copy_rows(get(), first, count, out.data(), out.size()));
        return out;
    }
    void copy_rows(std::size_t first, std::size_t count, span<float> out) const {
        check(latent_dataset_copy_rows(get(), first, count, out.data(), out.size()));
    }
    /** Fits and applies a scaling (LATENT_SCALING_DIVIDE_255, _MIN_MAX, _Z_SCORE). */
    void scale(latent_scaling method) { check(latent_dataset_scale(get(), method)); }
    /** Applies the scaling fitted on `fitted` (a training set) to this dataset. */
    void apply_scaling(const Dataset &fitted) { check(latent_dataset_apply_scaling(get(), fitted.get())); }
    /** A seeded split: `second` gets round(fraction * rows) rows, `first` the rest. */
    std::pair<Dataset, Dataset> split(double fraction, uint64_t seed) const {
        latent_dataset *a = nullptr, *b = nullptr;
        check(latent_dataset_split(get(), fraction, seed, &a, &b));
        return {Dataset(a), Dataset(b)};
    }
};

/* ----------------------------------------------------------------------------------------- */
/* Network                                                                                    */

class Network : public detail::handle<latent_network, latent_network_free> {
public:
    using handle::handle;
    /** An empty owner (get() == nullptr). */
    Network() noexcept = default;

    /** latent_network_params_default(): edit the fields, then construct. */
    static latent_network_params default_params() noexcept { return latent_network_params_default(); }
    explicit Network(const latent_network_params &params) {
        latent_network *n = nullptr;
        check(latent_network_new(&params, &n));
        reset(n);
    }
    static Network load(const std::string &path) {
        latent_network *n = nullptr;
        check(latent_network_load(path.c_str(), &n));
        return Network(n);
    }
    void save(const std::string &path) const { check(latent_network_save(get(), path.c_str())); }
    // Writes one part of the network as an ONNX model (opset LATENT_ONNX_OPSET): see
    // docs/serving.md. Throws latent::error (status LATENT_STATUS_UNSUPPORTED for a memory layer).
    void export_onnx(const std::string &path, latent_onnx_part part = LATENT_ONNX_PART_ENCODER) const {
        check(latent_network_export_onnx(get(), path.c_str(), part));
    }
    Network clone() const {
        latent_network *n = nullptr;
        check(latent_network_clone(get(), &n));
        return Network(n);
    }

    std::size_t input_dim() const noexcept { return latent_network_input_dim(get()); }
    std::size_t code_dim() const noexcept { return latent_network_code_dim(get()); }
    std::size_t output_dim() const noexcept { return latent_network_output_dim(get()); }
    latent_task task() const noexcept { return latent_network_task(get()); }
    std::string describe() const {
        return detail::describe([this](char *buf, std::size_t cap, std::size_t *needed) {
            return latent_network_describe(get(), buf, cap, needed);
        });
    }
    void set_threads(uint32_t threads) { check(latent_network_set_threads(get(), threads)); }

    /* Parameters: every weight and bias as one flat vector. */
    std::size_t param_count() const {
        std::size_t n = 0;
        check(latent_network_param_count(get(), &n));
        return n;
    }
    std::vector<float> params() const {
        std::vector<float> out(param_count());
        check(latent_network_get_params(get(), out.data(), out.size()));
        return out;
    }
    void set_params(span<const float> params) { check(latent_network_set_params(get(), params.data(), params.size())); }

    /* Inference on `rows` row-major rows in `x` (x.size() / rows columns). The overloads with
     * an `out` span write into the caller's buffer (its size is the capacity, checked). */
    void encode(span<const float> x, std::size_t rows, span<float> codes) const {
        check(latent_network_encode(get(), x.data(), rows, detail::cols_of(x.size(), rows), codes.data(), codes.size()));
    }
    std::vector<float> encode(span<const float> x, std::size_t rows) const {
        std::vector<float> out(rows * code_dim());
        encode(x, rows, out);
        return out;
    }
    void decode(span<const float> codes, std::size_t rows, span<float> out) const {
        check(latent_network_decode(get(), codes.data(), rows, detail::cols_of(codes.size(), rows), out.data(), out.size()));
    }
    std::vector<float> decode(span<const float> codes, std::size_t rows) const {
        std::vector<float> out(rows * input_dim());
        decode(codes, rows, out);
        return out;
    }
    void reconstruct(span<const float> x, std::size_t rows, span<float> out) const {
        check(latent_network_reconstruct(get(), x.data(), rows, detail::cols_of(x.size(), rows), out.data(), out.size()));
    }
    std::vector<float> reconstruct(span<const float> x, std::size_t rows) const {
        std::vector<float> out(rows * input_dim());
        reconstruct(x, rows, out);
        return out;
    }
    /** Per-row mean loss: an anomaly score. */
    std::vector<double> reconstruction_error(span<const float> x, std::size_t rows) const {
        std::vector<double> out(rows);
        check(latent_network_reconstruction_error(get(), x.data(), rows, detail::cols_of(x.size(), rows), out.data(),
                                                  out.size()));
        return out;
    }
    /** Class probabilities, regression predictions or reconstructions (rows x output_dim). */
    void predict(span<const float> x, std::size_t rows, span<float> out) const {
        check(latent_network_predict(get(), x.data(), rows, detail::cols_of(x.size(), rows), out.data(), out.size()));
    }
    std::vector<float> predict(span<const float> x, std::size_t rows) const {
        std::vector<float> out(rows * output_dim());
        predict(x, rows, out);
        return out;
    }
    std::vector<int32_t> classify(span<const float> x, std::size_t rows) const {
        std::vector<int32_t> out(rows);
        check(latent_network_classify(get(), x.data(), rows, detail::cols_of(x.size(), rows), out.data(), out.size()));
        return out;
    }

    /* The same over a dataset. */
    std::vector<float> encode(const Dataset &ds) const {
        std::vector<float> out(ds.rows() * code_dim());
        check(latent_network_encode_dataset(get(), ds.get(), out.data(), out.size()));
        return out;
    }
    std::vector<float> reconstruct(const Dataset &ds) const {
        std::vector<float> out(ds.rows() * input_dim());
        check(latent_network_reconstruct_dataset(get(), ds.get(), out.data(), out.size()));
        return out;
    }
    std::vector<double> reconstruction_error(const Dataset &ds) const {
        std::vector<double> out(ds.rows());
        check(latent_network_reconstruction_error_dataset(get(), ds.get(), out.data(), out.size()));
        return out;
    }
    std::vector<float> predict(const Dataset &ds) const {
        std::vector<float> out(ds.rows() * output_dim());
        check(latent_network_predict_dataset(get(), ds.get(), out.data(), out.size()));
        return out;
    }
    std::vector<int32_t> classify(const Dataset &ds) const {
        std::vector<int32_t> out(ds.rows());
        check(latent_network_classify_dataset(get(), ds.get(), out.data(), out.size()));
        return out;
    }
    /** Mean loss per element over a dataset. */
    double loss(const Dataset &ds) const {
        double v = 0;
        check(latent_network_loss(get(), ds.get(), &v));
        return v;
    }
    /** Mean squared error per element over a dataset. */
    double mse(const Dataset &ds) const {
        double v = 0;
        check(latent_network_mse(get(), ds.get(), &v));
        return v;
    }
    latent_metrics metrics(const Dataset &ds) const {
        latent_metrics m{};
        check(latent_network_metrics(get(), ds.get(), &m));
        return m;
    }
    /** A supervised network's loss, accuracy (classifier) or MSE (regressor) on a dataset. */
    latent_evaluation evaluate(const Dataset &ds) const {
        latent_evaluation e{};
        check(latent_network_evaluate(get(), ds.get(), &e, nullptr, 0));
        return e;
    }
    /** The same, and the classes x classes confusion matrix (row = true label) into `confusion`. */
    latent_evaluation evaluate(const Dataset &ds, std::vector<uint64_t> &confusion) const {
        latent_evaluation e{};
        std::size_t k = output_dim();
        confusion.assign(k * k, 0);
        check(latent_network_evaluate(get(), ds.get(), &e, confusion.data(), confusion.size()));
        return e;
    }
};

/* ----------------------------------------------------------------------------------------- */
/* Variational autoencoder                                                                    */

class Vae : public detail::handle<latent_vae, latent_vae_free> {
public:
    using handle::handle;
    /** An empty owner (get() == nullptr). */
    Vae() noexcept = default;

    /** The posterior q(z|x) of some rows: means and log-variances, rows x latent_dim each. */
    struct posterior {
        std::vector<float> mean;
        std::vector<float> logvar;
    };

    static latent_vae_params default_params() noexcept { return latent_vae_params_default(); }
    explicit Vae(const latent_vae_params &params) {
        latent_vae *v = nullptr;
        check(latent_vae_new(&params, &v));
        reset(v);
    }
    static Vae load(const std::string &path) {
        latent_vae *v = nullptr;
        check(latent_vae_load(path.c_str(), &v));
        return Vae(v);
    }
    void save(const std::string &path) const { check(latent_vae_save(get(), path.c_str())); }
    // Writes the VAE's encoder (outputs "mean", "log_variance"), decoder or reconstruction as an
    // ONNX model: see docs/serving.md.
    void export_onnx(const std::string &path, latent_onnx_part part = LATENT_ONNX_PART_ENCODER) const {
        check(latent_vae_export_onnx(get(), path.c_str(), part));
    }
    Vae clone() const {
        latent_vae *v = nullptr;
        check(latent_vae_clone(get(), &v));
        return Vae(v);
    }
    std::size_t input_dim() const noexcept { return latent_vae_input_dim(get()); }
    std::size_t latent_dim() const noexcept { return latent_vae_latent_dim(get()); }
    std::string describe() const {
        return detail::describe([this](char *buf, std::size_t cap, std::size_t *needed) {
            return latent_vae_describe(get(), buf, cap, needed);
        });
    }
    void set_threads(uint32_t threads) { check(latent_vae_set_threads(get(), threads)); }

    posterior encode(span<const float> x, std::size_t rows) const {
        posterior p{std::vector<float>(rows * latent_dim()), std::vector<float>(rows * latent_dim())};
        check(latent_vae_encode(get(), x.data(), rows, detail::cols_of(x.size(), rows), p.mean.data(), p.logvar.data(),
                                p.mean.size()));
        return p;
    }
    posterior encode(const Dataset &ds) const {
        posterior p{std::vector<float>(ds.rows() * latent_dim()), std::vector<float>(ds.rows() * latent_dim())};
        check(latent_vae_encode_dataset(get(), ds.get(), p.mean.data(), p.logvar.data(), p.mean.size()));
        return p;
    }
    /** `n` seeded draws from the prior N(0, I): n x latent_dim. */
    std::vector<float> sample_prior(std::size_t n, uint64_t seed) const {
        std::vector<float> z(n * latent_dim());
        check(latent_vae_sample_prior(get(), n, seed, z.data(), z.size()));
        return z;
    }
    /** The mean of p(x|z) for each latent row: rows x input_dim. */
    std::vector<float> generate_mean(span<const float> z, std::size_t rows) const {
        std::vector<float> out(rows * input_dim());
        check(latent_vae_generate_mean(get(), z.data(), rows, detail::cols_of(z.size(), rows), out.data(), out.size()));
        return out;
    }
    /** `n` new samples: prior draws decoded to their means. */
    std::vector<float> sample(std::size_t n, uint64_t seed) const { return generate_mean(sample_prior(n, seed), n); }
    std::vector<float> reconstruct(span<const float> x, std::size_t rows) const {
        std::vector<float> out(rows * input_dim());
        check(latent_vae_reconstruct(get(), x.data(), rows, detail::cols_of(x.size(), rows), out.data(), out.size()));
        return out;
    }
    /** The negative ELBO per example and its parts. */
    latent_elbo elbo(const Dataset &ds, uint32_t samples = 1, uint64_t seed = 0) const {
        latent_elbo e{};
        check(latent_vae_elbo(get(), ds.get(), samples, seed, &e));
        return e;
    }
    /** Importance-sampled log p(x) of each row. */
    std::vector<double> log_likelihood(span<const float> x, std::size_t rows, uint32_t samples, uint64_t seed = 0) const {
        std::vector<double> out(rows);
        check(latent_vae_log_likelihood(get(), x.data(), rows, detail::cols_of(x.size(), rows), samples, seed,
                                        out.data(), out.size()));
        return out;
    }
};

/* ----------------------------------------------------------------------------------------- */
/* Trainer                                                                                    */

class Trainer : public detail::handle<latent_trainer, latent_trainer_free> {
public:
    using handle::handle;
    /** An empty owner (get() == nullptr). */
    Trainer() noexcept = default;

    static latent_train_params default_params() noexcept { return latent_train_params_default(); }
    explicit Trainer(const latent_train_params &params) {
        latent_trainer *t = nullptr;
        check(latent_trainer_new(&params, &t));
        reset(t);
    }

    /** Trains `net` on `train` (validation rows from `valid`, or held out when it is empty).
     * `progress` returns true to stop, false to go on (as in C and Python). Returns true when training ran to its
     * end, false when the callback cancelled it (the network keeps its last completed step).
     * An exception thrown by `progress` cancels training and is rethrown here; the network
     * stays usable. Other failures throw latent::error. */
    bool fit(Network &net, const Dataset &train, const Dataset &valid, const progress_callback &progress = nullptr) {
        return detail::with_progress(progress, [&](latent_progress_fn fn, void *user) {
            return latent_trainer_fit(get(), net.get(), train.get(), valid.get(), fn, user);
        });
    }
    bool fit(Network &net, const Dataset &train, const progress_callback &progress = nullptr) {
        return detail::with_progress(progress, [&](latent_progress_fn fn, void *user) {
            return latent_trainer_fit(get(), net.get(), train.get(), nullptr, fn, user);
        });
    }
    /** Trains a variational autoencoder (the same rules). */
    bool fit(Vae &vae, const Dataset &train, const progress_callback &progress = nullptr) {
        return detail::with_progress(progress, [&](latent_progress_fn fn, void *user) {
            return latent_trainer_fit_vae(get(), vae.get(), train.get(), nullptr, fn, user);
        });
    }
    /** Per-epoch records of every fit so far. */
    std::vector<latent_epoch_record> history() const {
        std::size_t n = 0;
        check(latent_trainer_history(get(), nullptr, 0, &n));
        std::vector<latent_epoch_record> out(n);
        check(latent_trainer_history(get(), out.data(), out.size(), &n));
        out.resize(n);
        return out;
    }
    void reset_history() { check(latent_trainer_reset(get())); }

    /** Saves the running fit's whole training state (model, optimizer moments, epoch, schedule
     * position, shuffling and noise counters, early stopping, history) to `path`, atomically:
     * call it from the fit's progress callback at an epoch end (latent_trainer_checkpoint).
     * resume_network / resume_vae continue the fit from it, bit-identically to the
     * uninterrupted fit on the same rows and threads. */
    void checkpoint(const std::string &path) const { check(latent_trainer_checkpoint(get(), path.c_str())); }
    /** A checkpoint to `path` every `every` completed epochs of each later fit. */
    void set_checkpoints(const std::string &path, std::uint32_t every) {
        check(latent_trainer_set_checkpoints(get(), path.c_str(), every));
    }
    /** No periodic checkpoints. */
    void clear_checkpoints() { check(latent_trainer_set_checkpoints(get(), nullptr, 0)); }

    /** The trainer and network of a network's checkpoint: the trainer's next fit of the
     * network on the same rows finishes the interrupted fit. */
    static std::pair<Trainer, Network> resume_network(const std::string &path) {
        latent_trainer *t = nullptr;
        latent_network *n = nullptr;
        check(latent_trainer_resume_network(path.c_str(), &t, &n));
        return std::pair<Trainer, Network>(Trainer(t), Network(n));
    }
    /** The trainer and VAE of a VAE's checkpoint. */
    static std::pair<Trainer, Vae> resume_vae(const std::string &path) {
        latent_trainer *t = nullptr;
        latent_vae *v = nullptr;
        check(latent_trainer_resume_vae(path.c_str(), &t, &v));
        return std::pair<Trainer, Vae>(Trainer(t), Vae(v));
    }
};

/* ----------------------------------------------------------------------------------------- */
/* Gradient-free Monte-Carlo optimizer                                                        */

class MonteCarlo : public detail::handle<latent_montecarlo, latent_montecarlo_free> {
public:
    using handle::handle;
    /** An empty owner (get() == nullptr). */
    MonteCarlo() noexcept = default;

    /** Lower and upper bounds of each parameter's interval. */
    struct intervals_t {
        std::vector<double> lower;
        std::vector<double> upper;
    };

    static latent_montecarlo_params default_params() noexcept { return latent_montecarlo_params_default(); }
    MonteCarlo(std::size_t n_params, const latent_montecarlo_params &params) {
        latent_montecarlo *m = nullptr;
        check(latent_montecarlo_new(&params, n_params, &m));
        reset(m);
    }

    std::size_t n_params() const noexcept { return latent_montecarlo_n_params(get()); }
    void set_prior(std::size_t first, std::size_t count, latent_prior kind, double a, double b) {
        check(latent_montecarlo_set_prior(get(), first, count, kind, a, b));
    }
    void set_constraint(std::size_t first, std::size_t count, latent_constraint kind, double a = 0, double b = 0) {
        check(latent_montecarlo_set_constraint(get(), first, count, kind, a, b));
    }
    void set_start(span<const double> start) { check(latent_montecarlo_set_start(get(), start.data(), start.size())); }

    /** Runs the optimizer on `loss` (called from `threads` threads at once: make it safe for
     * that). An exception thrown by `loss` makes the remaining evaluations of the run return NaN
     * (skipped, so the run winds down at once) and is rethrown here. */
    void minimize(const objective &loss) {
        detail::with_objective(loss, [&](latent_objective_fn fn, void *user) {
            return latent_montecarlo_minimize(get(), fn, user);
        });
    }
    std::vector<double> best() const {
        std::vector<double> out(n_params());
        check(latent_montecarlo_best(get(), out.data(), out.size()));
        return out;
    }
    double best_loss() const noexcept { return latent_montecarlo_best_loss(get()); }
    uint64_t evaluations() const noexcept { return latent_montecarlo_evaluations(get()); }
    uint64_t iterations() const noexcept { return latent_montecarlo_iterations(get()); }
    bool converged() const noexcept { return latent_montecarlo_converged(get()) != 0; }
    /** The best loss after each iteration. */
    std::vector<double> history() const {
        std::vector<double> out(iterations());
        check(latent_montecarlo_history(get(), out.data(), out.size()));
        return out;
    }
    /** Weak confidence intervals at `level` around the best point (see latent.h): give
     * `temperature` > 0, or the number of `observations` of a sum- or mean-of-squares loss. */
    intervals_t intervals(const objective &loss, double level, double temperature, std::size_t observations) {
        intervals_t out{std::vector<double>(n_params()), std::vector<double>(n_params())};
        detail::with_objective(loss, [&](latent_objective_fn fn, void *user) {
            return latent_montecarlo_intervals(get(), fn, user, level, temperature, observations, out.lower.data(),
                                               out.upper.data(), out.lower.size());
        });
        return out;
    }
    /** Fits every parameter of `net` (plus an optional C link function) on its own loss. */
    void fit_network(Network &net, const Dataset &data,
                     const latent_montecarlo_network_params &params = latent_montecarlo_network_params_default()) {
        check(latent_montecarlo_fit_network(get(), net.get(), data.get(), &params));
    }
};

}  // namespace latent

#endif /* LATENT_HPP */
