/* R glue for liblatent: .Call entry points over the C API (include/latent.h).
 *
 * Handles live in external pointers whose finalizers free them; every failed call raises an R
 * error carrying latent_last_error_message(). Matrices come in as R holds them (column-major
 * double): inference passes them to the library's _buffer calls as LATENT_DTYPE_F64,
 * LATENT_LAYOUT_COL_MAJOR, which write their results straight into R's column-major double
 * result (no copy here); training reads them through latent_dataset_from_buffer, likewise
 * without a transpose. No C resource is held across an Rf_error (which longjmps):
 * each one is freed first, and R memory comes from R_alloc or protected vectors. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <R.h>
#include <R_ext/Rdynload.h>
#include <Rinternals.h>

#include "latent.h"

/* Raises an R error with the library's message for a failed status (after the caller has
 * freed what it holds). The message is copied first: Rf_error does not return. */
static void fail(latent_status st, const char *what) {
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", latent_last_error_message());
    Rf_error("latent: %s failed (%s): %s", what, latent_status_string(st), msg);
}

#define CHECK(call, what)                                                                       \
    do {                                                                                        \
        latent_status st_ = (call);                                                             \
        if (st_ != LATENT_STATUS_OK) fail(st_, what);                                           \
    } while (0)

/* ---- handles --------------------------------------------------------------------------- */

static void network_finalizer(SEXP p) {
    latent_network *net = (latent_network *)R_ExternalPtrAddr(p);
    latent_network_free(net);
    R_ClearExternalPtr(p);
}

static void dataset_finalizer(SEXP p) {
    latent_dataset *ds = (latent_dataset *)R_ExternalPtrAddr(p);
    latent_dataset_free(ds);
    R_ClearExternalPtr(p);
}

static SEXP wrap(void *handle, const char *tag, R_CFinalizer_t fin) {
    SEXP t = PROTECT(Rf_install(tag));
    SEXP p = PROTECT(R_MakeExternalPtr(handle, t, R_NilValue));
    R_RegisterCFinalizerEx(p, fin, TRUE);
    UNPROTECT(2);
    return p;
}

static void *unwrap(SEXP p, const char *tag) {
    if (TYPEOF(p) != EXTPTRSXP || R_ExternalPtrTag(p) != Rf_install(tag))
        Rf_error("latent: expected a %s handle", tag);
    void *h = R_ExternalPtrAddr(p);
    if (h == NULL) Rf_error("latent: the %s handle has been freed (or came from another session)", tag);
    return h;
}

static latent_network *net_of(SEXP p) { return (latent_network *)unwrap(p, "latent_network"); }
static latent_dataset *ds_of(SEXP p) { return (latent_dataset *)unwrap(p, "latent_dataset"); }

/* ---- argument helpers ------------------------------------------------------------------- */

static const char *str_arg(SEXP s, const char *name) {
    if (TYPEOF(s) != STRSXP || XLENGTH(s) != 1 || STRING_ELT(s, 0) == NA_STRING)
        Rf_error("latent: `%s` must be one string", name);
    return CHAR(STRING_ELT(s, 0));
}

static double num_arg(SEXP s, const char *name) {
    if (!Rf_isNumeric(s) || XLENGTH(s) != 1) Rf_error("latent: `%s` must be one number", name);
    double v = Rf_asReal(s);
    if (ISNAN(v)) Rf_error("latent: `%s` is NA", name);
    return v;
}

static uint32_t u32_arg(SEXP s, const char *name) {
    double v = num_arg(s, name);
    if (v < 0 || v > 4294967295.0 || v != (double)(uint32_t)v)
        Rf_error("latent: `%s` must be a whole number in [0, 2^32)", name);
    return (uint32_t)v;
}

typedef struct {
    const char *name;
    int32_t value;
} named;

static int32_t lookup(const char *s, const named *table, const char *what) {
    for (const named *t = table; t->name; t++)
        if (strcmp(s, t->name) == 0) return t->value;
    char opts[512] = "";
    for (const named *t = table; t->name; t++) {
        strncat(opts, t->name, sizeof opts - strlen(opts) - 1);
        if (t[1].name) strncat(opts, ", ", sizeof opts - strlen(opts) - 1);
    }
    Rf_error("latent: unknown %s \"%s\" (one of %s)", what, s, opts);
    return -1; /* not reached */
}

static const named ACTIVATIONS[] = {
    {"identity", LATENT_ACTIVATION_IDENTITY}, {"linear", LATENT_ACTIVATION_IDENTITY},
    {"sigmoid", LATENT_ACTIVATION_SIGMOID},   {"tanh", LATENT_ACTIVATION_TANH},
    {"relu", LATENT_ACTIVATION_RELU},         {"leaky_relu", LATENT_ACTIVATION_LEAKY_RELU},
    {"elu", LATENT_ACTIVATION_ELU},           {"softplus", LATENT_ACTIVATION_SOFTPLUS},
    {"gelu", LATENT_ACTIVATION_GELU},         {NULL, 0}};
static const named LOSSES[] = {{"mse", LATENT_LOSS_MSE},
                               {"binary_cross_entropy", LATENT_LOSS_BINARY_CROSS_ENTROPY},
                               {"bce", LATENT_LOSS_BINARY_CROSS_ENTROPY},
                               {NULL, 0}};
static const named TASKS[] = {{"reconstruct", LATENT_TASK_RECONSTRUCT},
                              {"classify", LATENT_TASK_CLASSIFY},
                              {"regress", LATENT_TASK_REGRESS},
                              {NULL, 0}};
static const named OPTIMIZERS[] = {{"sgd", LATENT_OPTIMIZER_SGD},
                                   {"adam", LATENT_OPTIMIZER_ADAM},
                                   {"adamw", LATENT_OPTIMIZER_ADAMW},
                                   {"rmsprop", LATENT_OPTIMIZER_RMSPROP},
                                   {"adagrad", LATENT_OPTIMIZER_ADAGRAD},
                                   {"adadelta", LATENT_OPTIMIZER_ADADELTA},
                                   {"adamax", LATENT_OPTIMIZER_ADAMAX},
                                   {"lion", LATENT_OPTIMIZER_LION},
                                   {NULL, 0}};

/* A numeric matrix (double; integer and logical are refused in C, converted in R) as a new
 * dataset: column-major f64, no transpose. The caller owns the result. */
static latent_dataset *dataset_of_matrix(SEXP x) {
    if (TYPEOF(x) != REALSXP || !Rf_isMatrix(x)) Rf_error("latent: `x` must be a double matrix");
    size_t rows = (size_t)Rf_nrows(x), cols = (size_t)Rf_ncols(x);
    latent_dataset *ds = NULL;
    CHECK(latent_dataset_from_buffer(REAL(x), LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR, rows, cols, &ds),
          "latent_dataset_from_buffer");
    return ds;
}

/* ---- entry points ----------------------------------------------------------------------- */

SEXP latent_r_version(void) { return Rf_mkString(latent_version()); }

SEXP latent_r_network_new(SEXP input_dim, SEXP encoder, SEXP code, SEXP activation, SEXP code_activation,
                          SEXP output_activation, SEXP loss, SEXP seed, SEXP task, SEXP outputs) {
    latent_network_params p = latent_network_params_default();
    p.input_dim = u32_arg(input_dim, "input_dim");
    p.code_units = u32_arg(code, "code");
    if (!Rf_isNumeric(encoder) && !Rf_isNull(encoder)) Rf_error("latent: `encoder` must be a numeric vector");
    R_xlen_t n = Rf_isNull(encoder) ? 0 : XLENGTH(encoder);
    uint32_t *units = (uint32_t *)R_alloc(n > 0 ? (size_t)n : 1, sizeof(uint32_t));
    for (R_xlen_t i = 0; i < n; i++) {
        double v = Rf_isReal(encoder) ? REAL(encoder)[i] : (double)INTEGER(encoder)[i];
        if (!(v >= 1 && v <= 4294967295.0) || v != (double)(uint32_t)v)
            Rf_error("latent: `encoder` widths must be positive whole numbers");
        units[i] = (uint32_t)v;
    }
    p.n_encoder = (uint32_t)n;
    p.encoder_units = units;
    p.hidden_activation = lookup(str_arg(activation, "activation"), ACTIVATIONS, "activation");
    p.code_activation = lookup(str_arg(code_activation, "code_activation"), ACTIVATIONS, "activation");
    p.output_activation = lookup(str_arg(output_activation, "output_activation"), ACTIVATIONS, "activation");
    p.loss = lookup(str_arg(loss, "loss"), LOSSES, "loss");
    double s = num_arg(seed, "seed");
    if (s < 0 || s > 9007199254740992.0 || s != (double)(uint64_t)s) Rf_error("latent: `seed` must be a whole number >= 0");
    p.seed = (uint64_t)s;
    p.task = lookup(str_arg(task, "task"), TASKS, "task");
    p.outputs = u32_arg(outputs, "outputs");
    latent_network *net = NULL;
    CHECK(latent_network_new(&p, &net), "latent_network_new");
    return wrap(net, "latent_network", network_finalizer);
}

SEXP latent_r_network_info(SEXP net) {
    latent_network *n = net_of(net);
    SEXP out = PROTECT(Rf_allocVector(REALSXP, 4));
    REAL(out)[0] = (double)latent_network_input_dim(n);
    REAL(out)[1] = (double)latent_network_code_dim(n);
    REAL(out)[2] = (double)latent_network_output_dim(n);
    REAL(out)[3] = (double)latent_network_task(n);
    UNPROTECT(1);
    return out;
}

SEXP latent_r_network_describe(SEXP net) {
    latent_network *n = net_of(net);
    size_t needed = 0;
    latent_status st = latent_network_describe(n, NULL, 0, &needed);
    if (st != LATENT_STATUS_OK && st != LATENT_STATUS_BUFFER_TOO_SMALL) fail(st, "latent_network_describe");
    char *buf = R_alloc(needed ? needed : 1, 1);
    CHECK(latent_network_describe(n, buf, needed, NULL), "latent_network_describe");
    return Rf_mkString(buf);
}

SEXP latent_r_dataset_new(SEXP x, SEXP labels, SEXP targets) {
    latent_dataset *ds = dataset_of_matrix(x);
    latent_status st = LATENT_STATUS_OK;
    const char *what = "";
    if (!Rf_isNull(labels)) {
        if (TYPEOF(labels) != INTSXP) {
            latent_dataset_free(ds);
            Rf_error("latent: `labels` must be an integer vector");
        }
        st = latent_dataset_set_labels(ds, INTEGER(labels), (size_t)XLENGTH(labels));
        what = "latent_dataset_set_labels";
    }
    if (st == LATENT_STATUS_OK && !Rf_isNull(targets)) {
        if (TYPEOF(targets) != REALSXP || !Rf_isMatrix(targets)) {
            latent_dataset_free(ds);
            Rf_error("latent: `targets` must be a double matrix");
        }
        st = latent_dataset_set_targets(ds, REAL(targets), LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR,
                                        (size_t)Rf_nrows(targets), (size_t)Rf_ncols(targets));
        what = "latent_dataset_set_targets";
    }
    if (st != LATENT_STATUS_OK) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", latent_last_error_message());
        latent_dataset_free(ds);
        Rf_error("latent: %s failed (%s): %s", what, latent_status_string(st), msg);
    }
    return wrap(ds, "latent_dataset", dataset_finalizer);
}

SEXP latent_r_dataset_dim(SEXP ds) {
    latent_dataset *d = ds_of(ds);
    SEXP out = PROTECT(Rf_allocVector(REALSXP, 2));
    REAL(out)[0] = (double)latent_dataset_rows(d);
    REAL(out)[1] = (double)latent_dataset_cols(d);
    UNPROTECT(1);
    return out;
}

/* R_CheckUserInterrupt longjmps when the user pressed Ctrl-C: run it under R_ToplevelExec so
 * that no jump crosses the library's frames, and cancel training instead. */
static void check_interrupt(void *unused) {
    (void)unused;
    R_CheckUserInterrupt();
}

/* A fit's R progress function (R_NilValue: none) and what it said. */
struct r_progress {
    SEXP fn;
    const struct latent_progress *p;
    int stop;
};

/* Calls the R function with the progress record; the R wrapper has made it total (errors become
 * TRUE and are re-raised after the fit), so the only jump is an interrupt, which
 * R_ToplevelExec stops here. */
static void call_r_progress(void *data) {
    struct r_progress *s = (struct r_progress *)data;
    const struct latent_progress *p = s->p;
    const char *names[] = {"event", "epoch", "epochs", "loss", "penalty", "valid_loss", ""};
    SEXP rec = PROTECT(Rf_mkNamed(VECSXP, names));
    SET_VECTOR_ELT(rec, 0, Rf_mkString(p->event == LATENT_EVENT_EPOCH_END ? "epoch_end" : "batch"));
    SET_VECTOR_ELT(rec, 1, Rf_ScalarInteger((int)p->epoch + 1));
    SET_VECTOR_ELT(rec, 2, Rf_ScalarInteger((int)p->epochs));
    SET_VECTOR_ELT(rec, 3, Rf_ScalarReal(p->loss));
    SET_VECTOR_ELT(rec, 4, Rf_ScalarReal(p->penalty));
    SET_VECTOR_ELT(rec, 5, Rf_ScalarReal(p->valid_loss));
    SEXP call = PROTECT(Rf_lang2(s->fn, rec));
    SEXP r = Rf_eval(call, R_GlobalEnv);
    s->stop = Rf_asLogical(r) == TRUE;
    UNPROTECT(2);
}

/* The progress callback: TRUE from the R function stops training, as non-zero does in C and True
 * in Python; Ctrl-C cancels too. */
static int32_t progress(void *user, const struct latent_progress *pr) {
    struct r_progress *s = (struct r_progress *)user;
    if (!R_ToplevelExec(check_interrupt, NULL)) return 1;
    if (s->fn == R_NilValue) return 0;
    s->p = pr;
    s->stop = 0;
    if (!R_ToplevelExec(call_r_progress, s)) return 1;
    return s->stop ? 1 : 0;
}

/* The trainer whose fit is running (its progress function may checkpoint it), innermost fit. */
static latent_trainer *current_trainer = NULL;

/* Fits `n` with `tr` (then frees `tr`); the history of every epoch as a list of columns with
 * attr "stopped". */
/* The networks and datasets of the fits running now (a progress function may start another):
 * latent_free() of one is an R error, not a free under the fit (an outside test crashed R by
 * freeing the network from its progress function). */
#define MAX_BUSY 64
static const void *busy[MAX_BUSY];
static int n_busy = 0;

static int is_busy(const void *p) {
    for (int i = 0; i < n_busy; i++)
        if (busy[i] == p) return 1;
    return 0;
}

static SEXP run_fit(latent_trainer *tr, latent_network *n, latent_dataset *d, SEXP progress_fn) {
    struct r_progress state = {Rf_isFunction(progress_fn) ? progress_fn : R_NilValue, NULL, 0};
    if (n_busy + 2 > MAX_BUSY) {
        latent_trainer_free(tr);
        Rf_error("latent: more than %d fits nested in progress functions", MAX_BUSY / 2);
    }
    busy[n_busy++] = n;
    busy[n_busy++] = d;
    latent_trainer *outer = current_trainer;
    current_trainer = tr;
    latent_status st = latent_trainer_fit(tr, n, d, NULL, progress, &state);
    current_trainer = outer;
    n_busy -= 2;
    int stopped = st == LATENT_STATUS_CANCELLED && state.stop;
    if (stopped) st = LATENT_STATUS_OK;
    if (st != LATENT_STATUS_OK) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", latent_last_error_message());
        latent_trainer_free(tr);
        if (st == LATENT_STATUS_CANCELLED) Rf_error("latent: training interrupted (the network keeps its last step)");
        Rf_error("latent: latent_trainer_fit failed (%s): %s", latent_status_string(st), msg);
    }
    size_t count = 0;
    latent_trainer_history(tr, NULL, 0, &count);
    latent_epoch_record *h = (latent_epoch_record *)R_alloc(count ? count : 1, sizeof *h);
    st = latent_trainer_history(tr, h, count, &count);
    latent_trainer_free(tr);
    if (st != LATENT_STATUS_OK) fail(st, "latent_trainer_history");
    static const char *names[] = {"epoch", "train_loss", "train_penalty", "valid_loss", "seconds",
                                  "samples_per_second", "learning_rate"};
    SEXP out = PROTECT(Rf_allocVector(VECSXP, 7));
    SEXP nm = PROTECT(Rf_allocVector(STRSXP, 7));
    for (int k = 0; k < 7; k++) {
        SEXP col = Rf_allocVector(REALSXP, (R_xlen_t)count);
        SET_VECTOR_ELT(out, k, col);
        SET_STRING_ELT(nm, k, Rf_mkChar(names[k]));
        double *c = REAL(col);
        for (size_t i = 0; i < count; i++) {
            const latent_epoch_record *r = &h[i];
            double v[7] = {(double)(i + 1), r->train_loss, r->train_penalty, r->valid_loss, r->seconds,
                           r->samples_per_second, r->learning_rate};
            c[i] = v[k];
        }
    }
    Rf_setAttrib(out, R_NamesSymbol, nm);
    Rf_setAttrib(out, Rf_install("stopped"), Rf_ScalarLogical(stopped));
    UNPROTECT(2);
    return out;
}

SEXP latent_r_fit(SEXP net, SEXP data, SEXP epochs, SEXP batch_size, SEXP learning_rate, SEXP optimizer,
                  SEXP seed, SEXP threads, SEXP validation_fraction, SEXP progress_fn, SEXP checkpoint_path,
                  SEXP checkpoint_every) {
    latent_network *n = net_of(net);
    latent_dataset *d = ds_of(data);
    latent_train_params tp = latent_train_params_default();
    tp.epochs = u32_arg(epochs, "epochs");
    tp.batch_size = u32_arg(batch_size, "batch_size");
    tp.learning_rate = num_arg(learning_rate, "learning_rate");
    tp.optimizer = lookup(str_arg(optimizer, "optimizer"), OPTIMIZERS, "optimizer");
    double s = num_arg(seed, "seed");
    if (s < 0 || s > 9007199254740992.0 || s != (double)(uint64_t)s) Rf_error("latent: `seed` must be a whole number >= 0");
    tp.seed = (uint64_t)s;
    tp.threads = u32_arg(threads, "threads");
    tp.validation_fraction = num_arg(validation_fraction, "validation_fraction");
    if (checkpoint_path != R_NilValue) {
        tp.checkpoint_path = str_arg(checkpoint_path, "checkpoint_path");
        tp.checkpoint_every = u32_arg(checkpoint_every, "checkpoint_every");
    }
    latent_trainer *tr = NULL;
    CHECK(latent_trainer_new(&tp, &tr), "latent_trainer_new");
    return run_fit(tr, n, d, progress_fn);
}

/* latent_checkpoint(path): from a latent_fit progress function at an epoch end. */
SEXP latent_r_checkpoint(SEXP path) {
    const char *p = str_arg(path, "path");
    if (current_trainer == NULL) Rf_error("latent: latent_checkpoint works only inside a latent_fit progress function");
    CHECK(latent_trainer_checkpoint(current_trainer, p), "latent_trainer_checkpoint");
    return R_NilValue;
}

/* latent_resume(path, data): the network of a checkpoint, trained to the end of its fit. */
SEXP latent_r_resume(SEXP path, SEXP data, SEXP progress_fn) {
    latent_dataset *d = ds_of(data);
    latent_trainer *tr = NULL;
    latent_network *n = NULL;
    CHECK(latent_trainer_resume_network(str_arg(path, "path"), &tr, &n), "latent_trainer_resume_network");
    SEXP net = PROTECT(wrap(n, "latent_network", network_finalizer));
    SEXP h = PROTECT(run_fit(tr, n, d, progress_fn));
    const char *names[] = {"net", "history", ""};
    SEXP out = PROTECT(Rf_mkNamed(VECSXP, names));
    SET_VECTOR_ELT(out, 0, net);
    SET_VECTOR_ELT(out, 1, h);
    UNPROTECT(3);
    return out;
}

/* ---- inference on R's matrix where it lies ---------------------------------------------
 * encode, reconstruct, predict, reconstruction_error and loss hand R's column-major double
 * matrix to the library's _buffer calls as it is (LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR):
 * no dataset, no transposed or float copy here; the result is written by the library straight
 * into the R matrix (or vector) returned. */

static void check_matrix(SEXP x) {
    if (TYPEOF(x) != REALSXP || !Rf_isMatrix(x)) Rf_error("latent: `x` must be a double matrix");
}

typedef latent_status (*buffer_fn)(const latent_network *, const void *, latent_dtype, latent_layout, size_t,
                                   size_t, void *, size_t);

/* `fn` on the rows of matrix `x` into a new rows x width double matrix. */
static SEXP buffer_rows(SEXP net, SEXP x, buffer_fn fn, size_t width, const char *what) {
    latent_network *n = net_of(net);
    check_matrix(x);
    size_t rows = (size_t)Rf_nrows(x), cols = (size_t)Rf_ncols(x);
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)rows, (int)width));
    CHECK(fn(n, REAL(x), LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR, rows, cols, REAL(out), rows * width), what);
    UNPROTECT(1);
    return out;
}

SEXP latent_r_encode(SEXP net, SEXP x) {
    return buffer_rows(net, x, latent_network_encode_buffer, latent_network_code_dim(net_of(net)),
                       "latent_network_encode_buffer");
}

SEXP latent_r_reconstruct(SEXP net, SEXP x) {
    return buffer_rows(net, x, latent_network_reconstruct_buffer, latent_network_input_dim(net_of(net)),
                       "latent_network_reconstruct_buffer");
}

SEXP latent_r_predict(SEXP net, SEXP x) {
    return buffer_rows(net, x, latent_network_predict_buffer, latent_network_output_dim(net_of(net)),
                       "latent_network_predict_buffer");
}

SEXP latent_r_reconstruction_error(SEXP net, SEXP x) {
    latent_network *n = net_of(net);
    check_matrix(x);
    size_t rows = (size_t)Rf_nrows(x), cols = (size_t)Rf_ncols(x);
    SEXP out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)rows));
    CHECK(latent_network_reconstruction_error_buffer(n, REAL(x), LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR, rows,
                                                     cols, REAL(out), rows),
          "latent_network_reconstruction_error_buffer");
    UNPROTECT(1);
    return out;
}

/* latent_loss(net, x) of a plain matrix (an autoencoder's reconstruction loss). */
SEXP latent_r_loss_matrix(SEXP net, SEXP x) {
    latent_network *n = net_of(net);
    check_matrix(x);
    double loss = 0;
    CHECK(latent_network_loss_buffer(n, REAL(x), LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR, (size_t)Rf_nrows(x),
                                     (size_t)Rf_ncols(x), &loss),
          "latent_network_loss_buffer");
    return Rf_ScalarReal(loss);
}

/* ---- the copying path, kept for the tests ------------------------------------------------
 * The same inference through a dataset (one copy into the library) and a float buffer
 * converted here: tests/test_latent.R checks the _buffer path against it bit for bit
 * (latent:::.copying_path). */

typedef latent_status (*dataset_fn)(const latent_network *, const latent_dataset *, float *, size_t);

static SEXP apply_rows(SEXP net, SEXP x, dataset_fn fn, size_t width, const char *what) {
    latent_network *n = net_of(net);
    latent_dataset *ds = dataset_of_matrix(x);
    size_t rows = latent_dataset_rows(ds);
    size_t cap = rows * width;
    float *buf = (float *)R_alloc(cap ? cap : 1, sizeof(float));
    latent_status st = fn(n, ds, buf, cap);
    latent_dataset_free(ds);
    if (st != LATENT_STATUS_OK) fail(st, what);
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)rows, (int)width));
    double *o = REAL(out);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < width; j++) o[i + j * rows] = (double)buf[i * width + j];
    UNPROTECT(1);
    return out;
}

/* what: 0 encode, 1 reconstruct, 2 predict, 3 reconstruction errors, 4 loss. */
SEXP latent_r_copying_path(SEXP net, SEXP x, SEXP what) {
    latent_network *n = net_of(net);
    switch ((int)num_arg(what, "what")) {
    case 0:
        return apply_rows(net, x, latent_network_encode_dataset, latent_network_code_dim(n), "encode_dataset");
    case 1:
        return apply_rows(net, x, latent_network_reconstruct_dataset, latent_network_input_dim(n),
                          "reconstruct_dataset");
    case 2:
        return apply_rows(net, x, latent_network_predict_dataset, latent_network_output_dim(n), "predict_dataset");
    case 3:
    case 4: {
        latent_dataset *ds = dataset_of_matrix(x);
        size_t rows = latent_dataset_rows(ds);
        SEXP out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)(num_arg(what, "what") == 3 ? rows : 1)));
        latent_status st = num_arg(what, "what") == 3
                               ? latent_network_reconstruction_error_dataset(n, ds, REAL(out), rows)
                               : latent_network_loss(n, ds, REAL(out));
        latent_dataset_free(ds);
        if (st != LATENT_STATUS_OK) fail(st, "the copying path");
        UNPROTECT(1);
        return out;
    }
    default:
        Rf_error("latent: `what` must be 0 to 4");
    }
    return R_NilValue; /* not reached */
}

SEXP latent_r_loss(SEXP net, SEXP data) {
    double loss = 0;
    CHECK(latent_network_loss(net_of(net), ds_of(data), &loss), "latent_network_loss");
    return Rf_ScalarReal(loss);
}

SEXP latent_r_save(SEXP net, SEXP path) {
    CHECK(latent_network_save(net_of(net), str_arg(path, "path")), "latent_network_save");
    return R_NilValue;
}

/* Writes one part of the network as an ONNX model (part: LATENT_ONNX_PART_* as a number). */
SEXP latent_r_export_onnx(SEXP net, SEXP path, SEXP part) {
    CHECK(latent_network_export_onnx(net_of(net), str_arg(path, "path"), (latent_onnx_part)num_arg(part, "part")),
          "latent_network_export_onnx");
    return R_NilValue;
}

SEXP latent_r_load(SEXP path) {
    latent_network *net = NULL;
    CHECK(latent_network_load(str_arg(path, "path"), &net), "latent_network_load");
    return wrap(net, "latent_network", network_finalizer);
}

/* ---- process-wide settings -------------------------------------------------------------- */

static const named PRECISIONS[] = {{"f32", LATENT_MATMUL_PRECISION_F32},
                                   {"bf16", LATENT_MATMUL_PRECISION_BF16},
                                   {NULL, 0}};
static const named WAIT_POLICIES[] = {{"spin", LATENT_WAIT_POLICY_SPIN},
                                      {"spin-then-park", LATENT_WAIT_POLICY_SPIN_THEN_PARK},
                                      {"park", LATENT_WAIT_POLICY_PARK},
                                      {NULL, 0}};

static SEXP name_of(int32_t value, const named *table) {
    for (const named *t = table; t->name; t++)
        if (t->value == value) return Rf_mkString(t->name);
    Rf_error("latent: the library answered %d, which this package does not know", (int)value);
    return R_NilValue; /* not reached */
}

/* The setting in force, as its name. */
SEXP latent_r_matmul_precision(void) {
    latent_matmul_precision p = 0;
    CHECK(latent_get_matmul_precision(&p), "latent_get_matmul_precision");
    return name_of(p, PRECISIONS);
}

SEXP latent_r_set_matmul_precision(SEXP name) {
    int32_t p = lookup(str_arg(name, "precision"), PRECISIONS, "matmul precision");
    CHECK(latent_set_matmul_precision(p), "latent_set_matmul_precision");
    return R_NilValue;
}

SEXP latent_r_bf16_available(void) { return Rf_ScalarLogical(latent_matmul_bf16_available() != 0); }

SEXP latent_r_wait_policy(void) {
    latent_wait_policy p = 0;
    CHECK(latent_get_wait_policy(&p), "latent_get_wait_policy");
    return name_of(p, WAIT_POLICIES);
}

SEXP latent_r_set_wait_policy(SEXP name) {
    int32_t p = lookup(str_arg(name, "policy"), WAIT_POLICIES, "wait policy");
    CHECK(latent_set_wait_policy(p), "latent_set_wait_policy");
    return R_NilValue;
}

/* c(limit, held) in bytes, as doubles (exact below 2^53). */
SEXP latent_r_inference_cache(void) {
    size_t limit = 0, held = 0;
    CHECK(latent_get_inference_cache(&limit, &held), "latent_get_inference_cache");
    SEXP out = PROTECT(Rf_allocVector(REALSXP, 2));
    REAL(out)[0] = (double)limit;
    REAL(out)[1] = (double)held;
    UNPROTECT(1);
    return out;
}

SEXP latent_r_set_inference_cache_limit(SEXP bytes) {
    double v = num_arg(bytes, "bytes");
    /* Up to 2^53, where every whole number is a double (num_arg refused NA; Inf is above). */
    if (v < 0 || v > 9007199254740992.0 || v != (double)(uint64_t)v)
        Rf_error("latent: `bytes` must be a whole number of bytes in [0, 2^53]");
    CHECK(latent_set_inference_cache_limit((size_t)v), "latent_set_inference_cache_limit");
    return R_NilValue;
}

/* Frees a handle now (the finalizer then has nothing to do). */
SEXP latent_r_free(SEXP p) {
    if (TYPEOF(p) != EXTPTRSXP) Rf_error("latent: not a handle");
    if (R_ExternalPtrAddr(p) != NULL && is_busy(R_ExternalPtrAddr(p)))
        Rf_error("latent: this object is in use by a running latent_fit: free it after the fit returns");
    SEXP tag = R_ExternalPtrTag(p);
    if (tag == Rf_install("latent_network")) network_finalizer(p);
    else if (tag == Rf_install("latent_dataset")) dataset_finalizer(p);
    else Rf_error("latent: not a latent handle");
    return R_NilValue;
}

static const R_CallMethodDef CALLS[] = {
    {"latent_r_version", (DL_FUNC)&latent_r_version, 0},
    {"latent_r_network_new", (DL_FUNC)&latent_r_network_new, 10},
    {"latent_r_network_info", (DL_FUNC)&latent_r_network_info, 1},
    {"latent_r_network_describe", (DL_FUNC)&latent_r_network_describe, 1},
    {"latent_r_dataset_new", (DL_FUNC)&latent_r_dataset_new, 3},
    {"latent_r_dataset_dim", (DL_FUNC)&latent_r_dataset_dim, 1},
    {"latent_r_fit", (DL_FUNC)&latent_r_fit, 12},
    {"latent_r_checkpoint", (DL_FUNC)&latent_r_checkpoint, 1},
    {"latent_r_resume", (DL_FUNC)&latent_r_resume, 3},
    {"latent_r_encode", (DL_FUNC)&latent_r_encode, 2},
    {"latent_r_reconstruct", (DL_FUNC)&latent_r_reconstruct, 2},
    {"latent_r_predict", (DL_FUNC)&latent_r_predict, 2},
    {"latent_r_reconstruction_error", (DL_FUNC)&latent_r_reconstruction_error, 2},
    {"latent_r_loss", (DL_FUNC)&latent_r_loss, 2},
    {"latent_r_loss_matrix", (DL_FUNC)&latent_r_loss_matrix, 2},
    {"latent_r_copying_path", (DL_FUNC)&latent_r_copying_path, 3},
    {"latent_r_save", (DL_FUNC)&latent_r_save, 2},
    {"latent_r_load", (DL_FUNC)&latent_r_load, 1},
    {"latent_r_export_onnx", (DL_FUNC)&latent_r_export_onnx, 3},
    {"latent_r_free", (DL_FUNC)&latent_r_free, 1},
    {"latent_r_matmul_precision", (DL_FUNC)&latent_r_matmul_precision, 0},
    {"latent_r_set_matmul_precision", (DL_FUNC)&latent_r_set_matmul_precision, 1},
    {"latent_r_bf16_available", (DL_FUNC)&latent_r_bf16_available, 0},
    {"latent_r_wait_policy", (DL_FUNC)&latent_r_wait_policy, 0},
    {"latent_r_set_wait_policy", (DL_FUNC)&latent_r_set_wait_policy, 1},
    {"latent_r_inference_cache", (DL_FUNC)&latent_r_inference_cache, 0},
    {"latent_r_set_inference_cache_limit", (DL_FUNC)&latent_r_set_inference_cache_limit, 1},
    {NULL, NULL, 0}};

void R_init_latent(DllInfo *dll) {
    R_registerRoutines(dll, NULL, CALLS, NULL, NULL);
    R_useDynamicSymbols(dll, FALSE);
}
