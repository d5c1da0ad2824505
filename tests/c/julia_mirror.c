/* The Julia bindings (julia/Latent.jl/src/Latent.jl) from C: every function declared exactly as
 * Latent.jl's ccall declares it (Ptr{Cvoid} -> void *, Csize_t -> size_t, Cint -> int32_t,
 * Cstring -> const char *, the structs as Latent.jl lays them out), called in the order of
 * julia/Latent.jl/examples/quickstart.jl with column-major double data. It does not include
 * latent.h: these declarations are what the library is called through. tests/julia_mirror.rs
 * checks that the block below matches Latent.jl's ccalls and struct fields, and that those
 * structs have latent.h's layout. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BEGIN JULIA STRUCTS */
struct jl_network_params {
    uint32_t input_dim;
    uint32_t n_encoder;
    uint32_t *encoder_units;
    int32_t *encoder_activations;
    int32_t hidden_activation;
    uint32_t code_units;
    int32_t code_activation;
    int32_t mirror_decoder;
    uint32_t n_decoder;
    uint32_t *decoder_units;
    int32_t *decoder_activations;
    int32_t output_activation;
    int32_t loss;
    int32_t tied_weights;
    int32_t init;
    uint64_t seed;
    int32_t sparsity;
    double sparsity_target;
    double sparsity_weight;
    uint32_t *sparse_layers;
    uint32_t n_sparse_layers;
    int32_t alternate_sparsity;
    uint32_t alternate_start;
    double contractive_weight;
    int32_t corruption;
    double corruption_level;
    double code_noise;
    int32_t *encoder_stochastic;
    int32_t code_stochastic;
    int32_t *decoder_stochastic;
    double stochastic_sigma;
    int32_t task;
    uint32_t outputs;
    int32_t *encoder_connections;
    int32_t code_connection;
    int32_t *decoder_connections;
    int32_t output_connection;
};

struct jl_train_params {
    uint32_t epochs;
    uint32_t batch_size;
    int32_t optimizer;
    int32_t nesterov;
    double learning_rate;
    double momentum;
    double beta1;
    double beta2;
    double epsilon;
    double weight_decay;
    double grad_clip_norm;
    double validation_fraction;
    uint64_t seed;
    uint32_t threads;
    uint32_t early_stopping_patience;
    int32_t shuffle;
    int32_t drop_last;
    uint32_t progress_every;
    int32_t lr_schedule;
    uint32_t lr_step_epochs;
    uint32_t warmup_steps;
    double lr_gamma;
    double lr_min;
    double momentum_initial;
    uint32_t momentum_switch_epoch;
    const char *checkpoint_path;
    uint32_t checkpoint_every;
};

struct jl_epoch_record {
    double train_loss;
    double train_penalty;
    double valid_loss;
    double seconds;
    double samples_per_second;
    double learning_rate;
};
struct jl_progress {
    int32_t event;
    uint32_t epoch;
    uint32_t epochs;
    uint64_t batch;
    uint64_t batches;
    double loss;
    double penalty;
    int32_t stage;
    uint32_t stage_layer;
    double free_energy;
    double valid_loss;
    double samples_per_second;
    double seconds;
};
/* END JULIA STRUCTS */

/* BEGIN JULIA SIGNATURES */
const char *latent_last_error_message(void);
const char *latent_status_string(int32_t st);
const char *latent_version(void);
struct jl_network_params latent_network_params_default(void);
int32_t latent_network_new(struct jl_network_params *p, void **out);
void latent_network_free(void *h);
size_t latent_network_input_dim(void *h);
size_t latent_network_code_dim(void *h);
size_t latent_network_output_dim(void *h);
int32_t latent_network_task(void *h);
int32_t latent_dataset_from_buffer(void *x, int32_t dtype, int32_t layout, size_t rows, size_t cols, void **out);
int32_t latent_dataset_set_labels(void *h, int32_t *labels, size_t n);
int32_t latent_dataset_set_targets(void *h, void *y, int32_t dtype, int32_t layout, size_t rows, size_t cols);
void latent_dataset_free(void *h);
size_t latent_dataset_rows(void *h);
struct jl_train_params latent_train_params_default(void);
int32_t latent_trainer_new(struct jl_train_params *p, void **out);
void latent_trainer_free(void *h);
int32_t latent_trainer_fit(void *t, void *net, void *train, void *valid, void *progress, void *user);
int32_t latent_trainer_history(void *t, struct jl_epoch_record *out, size_t capacity, size_t *n);
int32_t latent_network_encode_dataset(void *h, void *ds, float *out, size_t capacity);
int32_t latent_network_reconstruct_dataset(void *h, void *ds, float *out, size_t capacity);
int32_t latent_network_predict_dataset(void *h, void *ds, float *out, size_t capacity);
int32_t latent_network_reconstruction_error_dataset(void *h, void *ds, double *out, size_t capacity);
int32_t latent_network_loss(void *h, void *ds, double *out);
int32_t latent_network_save(void *h, const char *path);
int32_t latent_network_load(const char *path, void **out);
int32_t latent_set_matmul_precision(int32_t p);
int32_t latent_get_matmul_precision(int32_t *out);
int32_t latent_matmul_bf16_available(void);
int32_t latent_set_wait_policy(int32_t p);
int32_t latent_get_wait_policy(int32_t *out);
int32_t latent_set_inference_cache_limit(size_t bytes);
int32_t latent_get_inference_cache(size_t *limit, size_t *held);
/* END JULIA SIGNATURES */

/* Latent.jl's _progress_trampoline with `p -> p.epoch + 1 >= at`. */
struct jl_stop {
    uint32_t at;
    int calls;
};
static int32_t jl_progress_trampoline(void *user, const struct jl_progress *p) {
    struct jl_stop *s = user;
    s->calls++;
    return p->epoch + 1 >= s->at ? 1 : 0;
}

/* Latent.jl's _check: a non-zero status is a LatentError(status, name, message). */
static void check(int32_t st, const char *what) {
    if (st != 0) {
        fprintf(stderr, "LatentError(%s) in %s: %s\n", latent_status_string(st), what, latent_last_error_message());
        exit(1);
    }
}

/* A column-major rows x cols Float64 matrix, as Julia holds it. */
typedef struct {
    size_t rows, cols;
    double *v; /* v[i + j * rows] */
} jl_matrix;

static jl_matrix jl_alloc(size_t rows, size_t cols) {
    jl_matrix m = {rows, cols, calloc(rows * cols, sizeof(double))};
    if (!m.v) exit(1);
    return m;
}

/* x[r0:r1, c0:c1] (0-based, half-open), a column-major copy as Julia's indexing makes. */
static jl_matrix jl_slice(jl_matrix x, size_t r0, size_t r1, size_t c0, size_t c1) {
    jl_matrix s = jl_alloc(r1 - r0, c1 - c0);
    for (size_t j = c0; j < c1; j++)
        for (size_t i = r0; i < r1; i++) s.v[(i - r0) + (j - c0) * s.rows] = x.v[i + j * x.rows];
    return s;
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()); }

/* Latent.jl's _dataset: from_buffer with the matrix's dtype and LAYOUT_COL_MAJOR (1). */
static void *jl_dataset(void *data, int32_t dtype, size_t rows, size_t cols) {
    void *ds = NULL;
    check(latent_dataset_from_buffer(data, dtype, 1, rows, cols, &ds), "latent_dataset_from_buffer");
    return ds;
}

/* Latent.jl's _rows: a width x rows Float32 buffer (row-major rows x width from the library),
 * returned permuted into a rows x width column-major matrix. */
typedef int32_t (*rows_fn)(void *, void *, float *, size_t);
static jl_matrix jl_rows(rows_fn f, void *net, jl_matrix x, size_t width) {
    void *ds = jl_dataset(x.v, 1, x.rows, x.cols);
    size_t rows = latent_dataset_rows(ds);
    float *buf = malloc(width * rows * sizeof *buf);
    if (!buf) exit(1);
    check(f(net, ds, buf, width * rows), "rows");
    jl_matrix out = jl_alloc(rows, width);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < width; j++) out.v[i + j * rows] = (double)buf[j + i * width];
    free(buf);
    latent_dataset_free(ds); /* the finalizer */
    return out;
}

static double jl_loss(void *net, jl_matrix x) {
    void *ds = jl_dataset(x.v, 1, x.rows, x.cols);
    double loss = 0;
    check(latent_network_loss(net, ds, &loss), "latent_network_loss");
    latent_dataset_free(ds);
    return loss;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "julia_mirror.latent";
    printf("latent %s\n", latent_version());

    /* x = 1 ./ (1 .+ exp.(-(z * W .+ 0.05 .* noise))), z 500 x 3, W 3 x 20. */
    size_t n = 500, d = 20, k = 3;
    jl_matrix z = jl_alloc(n, k), w = jl_alloc(k, d), x = jl_alloc(n, d);
    for (size_t i = 0; i < n * k; i++) z.v[i] = gauss();
    for (size_t i = 0; i < k * d; i++) w.v[i] = gauss();
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < n; i++) {
            double s = 0.05 * gauss();
            for (size_t l = 0; l < k; l++) s += z.v[i + l * n] * w.v[l + j * k];
            x.v[i + j * n] = 1.0 / (1.0 + exp(-s));
        }

    /* latent_network(20; encoder=[16], code=3, activation=:relu, output_activation=:sigmoid,
     * seed=1): _with(_network_params_default(); ...), then _network_new(Ref(p), out). */
    uint32_t units[] = {16};
    struct jl_network_params p = latent_network_params_default();
    p.input_dim = 20;
    p.n_encoder = 1;
    p.encoder_units = units;
    p.hidden_activation = 3; /* :relu */
    p.code_units = 3;
    p.code_activation = 0;   /* :identity */
    p.output_activation = 1; /* :sigmoid */
    p.loss = 0;              /* :mse */
    p.seed = 1;
    p.task = 0; /* :reconstruct */
    p.outputs = 0;
    void *net = NULL;
    check(latent_network_new(&p, &net), "latent_network_new");
    double untrained = jl_loss(net, x);
    printf("untrained loss %.6f\n", untrained);

    /* latent_fit(net, x; epochs=20, batch_size=32, learning_rate=3e-3, seed=1, threads=2) */
    void *train = jl_dataset(x.v, 1, x.rows, x.cols);
    struct jl_train_params tp = latent_train_params_default();
    tp.epochs = 20;
    tp.batch_size = 32;
    tp.learning_rate = 3e-3;
    tp.optimizer = 1; /* :adam */
    tp.seed = 1;
    tp.threads = 2;
    tp.validation_fraction = 0.0;
    void *tr = NULL;
    check(latent_trainer_new(&tp, &tr), "latent_trainer_new");
    check(latent_trainer_fit(tr, net, train, NULL, NULL, NULL), "latent_trainer_fit");
    size_t epochs = 0;
    check(latent_trainer_history(tr, NULL, 0, &epochs), "latent_trainer_history");
    struct jl_epoch_record *h = malloc(epochs * sizeof *h);
    if (!h) return 1;
    check(latent_trainer_history(tr, h, epochs, &epochs), "latent_trainer_history");
    latent_trainer_free(tr);
    latent_dataset_free(train);
    printf("epoch %zu: train loss %.6f\n", epochs, h[epochs - 1].train_loss);

    /* latent_fit(net, x; epochs=5, progress=p -> p.epoch + 1 >= 2): _progress_trampoline returns
     * 1 when the function returns true; CANCELLED with `stopped` set is a normal return. */
    {
        void *tr2 = NULL, *train2 = jl_dataset(x.v, 1, x.rows, x.cols);
        struct jl_train_params tp2 = tp;
        tp2.epochs = 5;
        check(latent_trainer_new(&tp2, &tr2), "latent_trainer_new");
        struct jl_stop stop = {2, 0};
        /* Julia hands @cfunction's pointer over as a Ptr{Cvoid}: the same bits here. */
        int32_t (*fn)(void *, const struct jl_progress *) = jl_progress_trampoline;
        void *fp;
        memcpy(&fp, &fn, sizeof fp);
        int32_t st = latent_trainer_fit(tr2, net, train2, NULL, fp, &stop);
        size_t n2 = 0;
        check(latent_trainer_history(tr2, NULL, 0, &n2), "latent_trainer_history");
        latent_trainer_free(tr2);
        latent_dataset_free(train2);
        printf("progress stopped the fit: status %d, %zu epochs, %d calls\n", st, n2, stop.calls);
        if (st != 9 || n2 != 2 || stop.calls != 2) {
            fprintf(stderr, "the progress callback did not stop training after 2 epochs\n");
            return 1;
        }
    }
    double trained = jl_loss(net, x);
    printf("trained loss %.6f\n", trained);
    if (epochs != 20 || !(trained < 0.5 * untrained)) {
        fprintf(stderr, "training did not halve the loss\n");
        return 1;
    }

    /* encode / reconstruct / reconstruction_error of x[1:5, :] */
    jl_matrix x5 = jl_slice(x, 0, 5, 0, d);
    size_t code_dim = latent_network_code_dim(net);
    jl_matrix codes = jl_rows(latent_network_encode_dataset, net, x5, code_dim);
    jl_matrix rec = jl_rows(latent_network_reconstruct_dataset, net, x5, latent_network_input_dim(net));
    jl_matrix pred = jl_rows(latent_network_predict_dataset, net, x5, latent_network_output_dim(net));
    void *ds5 = jl_dataset(x5.v, 1, x5.rows, x5.cols);
    double err[5];
    check(latent_network_reconstruction_error_dataset(net, ds5, err, 5), "reconstruction_error");
    latent_dataset_free(ds5);
    printf("codes of the first row [%.6f, %.6f, %.6f], its error %.6f\n", codes.v[0], codes.v[5], codes.v[10], err[0]);
    if (codes.rows != 5 || codes.cols != 3 || rec.cols != d || latent_network_task(net) != 0) return 1;
    /* The error is the row's mean squared error; predict of an autoencoder is reconstruct. */
    for (size_t i = 0; i < 5; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++) {
            double e = rec.v[i + j * 5] - x5.v[i + j * 5];
            s += e * e;
            if (pred.v[i + j * 5] != rec.v[i + j * 5]) return 1;
        }
        if (fabs(s / (double)d - err[i]) > 1e-6) {
            fprintf(stderr, "row %zu: error %g, mean squared error %g\n", i, err[i], s / (double)d);
            return 1;
        }
    }
    /* The column-major input means what Julia means: row 0's code from a row-major copy. */
    float row0[20], code0[3];
    for (size_t j = 0; j < d; j++) row0[j] = (float)x5.v[j * 5];
    void *r0 = jl_dataset(row0, 0, 1, d); /* a 1 x 20 Float32 matrix is the same in either layout */
    check(latent_network_encode_dataset(net, r0, code0, 3), "encode row 0");
    latent_dataset_free(r0);
    for (size_t j = 0; j < 3; j++)
        if ((double)code0[j] != codes.v[j * 5]) {
            fprintf(stderr, "column-major codes differ from the row's own\n");
            return 1;
        }

    /* save_model, load_model, identical codes */
    check(latent_network_save(net, path), "latent_network_save");
    void *back = NULL;
    check(latent_network_load(path, &back), "latent_network_load");
    jl_matrix codes2 = jl_rows(latent_network_encode_dataset, back, x5, code_dim);
    int same = memcmp(codes.v, codes2.v, 15 * sizeof(double)) == 0;
    printf("reloaded model gives identical codes: %s\n", same ? "true" : "false");
    if (!same) return 1;

    /* encode(net, Float32.(x[1:2, :])): DTYPE_F32, column-major */
    float x2[40];
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < 2; i++) x2[i + j * 2] = (float)x.v[i + j * n];
    void *ds2 = jl_dataset(x2, 0, 2, d);
    float c2[6];
    check(latent_network_encode_dataset(net, ds2, c2, 6), "encode Float32");
    latent_dataset_free(ds2);

    /* encode(net, x[:, 1:19]) throws LatentError(LATENT_STATUS_SHAPE_MISMATCH) */
    jl_matrix narrow = jl_slice(x, 0, n, 0, 19);
    void *dsn = jl_dataset(narrow.v, 1, narrow.rows, narrow.cols);
    float *cn = malloc(n * code_dim * sizeof *cn);
    int32_t st = latent_network_encode_dataset(net, dsn, cn, n * code_dim);
    printf("wrong width: LatentError(%s): %s\n", latent_status_string(st), latent_last_error_message());
    if (st == 0 || strcmp(latent_status_string(st), "LATENT_STATUS_SHAPE_MISMATCH") != 0) return 1;
    latent_dataset_free(dsn);

    /* NaN is LATENT_STATUS_NON_FINITE (4) from latent_dataset(x) */
    x5.v[7] = NAN;
    void *bad = NULL;
    st = latent_dataset_from_buffer(x5.v, 1, 1, 5, d, &bad);
    printf("NaN: %s: %s\n", latent_status_string(st), latent_last_error_message());
    if (st != 4 || bad != NULL) return 1;

    /* Labels and targets as latent_dataset(x; labels=..., targets=...) sets them. */
    void *lab = jl_dataset(x.v, 1, n, d);
    int32_t *labels = malloc(n * sizeof *labels);
    double *targets = malloc(n * 2 * sizeof *targets);
    for (size_t i = 0; i < n; i++) {
        labels[i] = (int32_t)(i % 3);
        targets[i] = x.v[i];
        targets[i + n] = x.v[i + n];
    }
    check(latent_dataset_set_labels(lab, labels, n), "latent_dataset_set_labels");
    check(latent_dataset_set_targets(lab, targets, 1, 1, n, 2), "latent_dataset_set_targets");
    latent_dataset_free(lab);

    /* The settings, as Latent.jl's functions call them. set_wait_policy(:park) returns the
     * policy before it; wait_policy() reads :park (2). */
    int32_t before = -1, now = -1;
    check(latent_get_wait_policy(&before), "latent_get_wait_policy");
    check(latent_set_wait_policy(2), "latent_set_wait_policy");
    check(latent_get_wait_policy(&now), "latent_get_wait_policy");
    if (now != 2) return 1;
    check(latent_set_wait_policy(before), "latent_set_wait_policy");
    /* set_matmul_precision(:bf16): OK where bf16_available(), else LATENT_STATUS_UNSUPPORTED;
     * either way set_matmul_precision(:f32) gives the f32 codes back bit for bit. */
    int32_t bf16 = latent_matmul_bf16_available();
    st = latent_set_matmul_precision(1);
    check(latent_get_matmul_precision(&now), "latent_get_matmul_precision");
    printf("bf16_available() = %s, set_matmul_precision(:bf16): %s, matmul_precision() = %d\n",
           bf16 ? "true" : "false", latent_status_string(st), now);
    if (bf16 ? (st != 0 || now != 1) : (strcmp(latent_status_string(st), "LATENT_STATUS_UNSUPPORTED") != 0 || now != 0))
        return 1;
    check(latent_set_matmul_precision(0), "latent_set_matmul_precision");
    jl_matrix x5b = jl_slice(x, 0, 5, 0, d); /* x5 holds a NaN now */
    jl_matrix codes3 = jl_rows(latent_network_encode_dataset, net, x5b, code_dim);
    if (memcmp(codes.v, codes3.v, 15 * sizeof(double)) != 0) {
        fprintf(stderr, "back in f32 the codes differ from f32's\n");
        return 1;
    }
    /* set_inference_cache_limit(0): each model lets its kept workspaces go at its next call;
     * then inference_cache() reads (limit = 0, held = 0). */
    size_t limit = 0, held = 1, limit0 = 0;
    check(latent_get_inference_cache(&limit0, &held), "latent_get_inference_cache");
    check(latent_set_inference_cache_limit(0), "latent_set_inference_cache_limit");
    free(jl_rows(latent_network_encode_dataset, net, x5b, code_dim).v);
    free(jl_rows(latent_network_encode_dataset, back, x5b, code_dim).v);
    check(latent_get_inference_cache(&limit, &held), "latent_get_inference_cache");
    if (limit != 0 || held != 0) {
        fprintf(stderr, "limit 0: inference_cache() = (%zu, %zu)\n", limit, held);
        return 1;
    }
    check(latent_set_inference_cache_limit(limit0), "latent_set_inference_cache_limit");
    printf("settings: wait policy, precision and inference cache set and restored\n");

    latent_network_free(back);
    latent_network_free(net);
    free(codes3.v), free(x5b.v);
    free(h), free(z.v), free(w.v), free(x.v), free(x5.v), free(codes.v), free(rec.v), free(pred.v);
    free(codes2.v), free(narrow.v), free(cn), free(labels), free(targets);
    printf("julia mirror OK\n");
    return 0;
}
