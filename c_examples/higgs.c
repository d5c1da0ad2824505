/* KernelML's HIGGS pipeline from C (docs/montecarlo.md, "The HIGGS pipeline"): a 30-10-30
 * autoencoder h = X W1, h' = (-0.5 a1 + b1) h, out = a2 (h' W2^T + b2) fitted by the Monte-Carlo
 * optimizer (20 runs on 500-row minibatches, two link callbacks), the codes of runs 10..18
 * reduced by a PCA to 3 columns, then a classifier on [PCA | 30 raw features] against one on the
 * raw features, by validation accuracy and AUROC, on the ATLAS Higgs challenge sample.
 *
 *   higgs [DIR]     DIR holds train_sml_bg.csv and train_sml_sig.csv (default: the data
 *                   resolver's higgs/atlas-higgs-challenge); LATENT_EXAMPLE_SMALL=1: a quick run */
#include <math.h>

#include "common.h"

enum { F = 30, CODE = 10, SNAPS = 5, PCS = 3 };
static const size_t snap_runs[SNAPS] = {10, 12, 14, 16, 18};

/* Appends the 30 features of each event of one CSV (at most `max` rows) with label `label`. */
static size_t read_csv(const char *dir, const char *file, int32_t label, size_t max, float *x, int32_t *y) {
    char path[4200], line[4096];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "higgs: cannot open %s\n", path); exit(2); }
    if (!fgets(line, sizeof line, f)) exit(2); /* the header */
    while (n < max && fgets(line, sizeof line, f)) {
        char *p = strchr(line, ','); /* after EventId */
        int j;
        for (j = 0; j < F && p; j++) { x[n * F + j] = strtof(p + 1, &p); }
        y[n++] = label;
    }
    fclose(f);
    return n;
}

/* h' = (-0.5 a1 + b1) h on the code, and out = a2 (y + b2) on the output. */
static void field_eq(void *u, const double *t, size_t n, float *v, size_t rows, size_t cols) {
    size_t i; float k = (float)(-0.5 * t[0] + t[1]);
    (void)u; (void)n;
    for (i = 0; i < rows * cols; i++) v[i] *= k;
}
static void output_side(void *u, const double *t, size_t n, float *v, size_t rows, size_t cols) {
    size_t i;
    (void)u; (void)n;
    for (i = 0; i < rows * cols; i++) v[i] = (float)(t[0] * (v[i] + t[1]));
}

static latent_dataset *dataset(const float *x, const int32_t *y, size_t rows, size_t cols) {
    latent_dataset *d = NULL;
    CHECK(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, rows, cols, &d));
    CHECK(latent_dataset_set_labels(d, y, rows));
    return d;
}

/* Trains Dense(200, sigmoid) -> 2-way softmax on the first `cols` columns; prints its scores. */
static void classify(const char *what, const float *x, const int32_t *y, size_t n_train, size_t n, size_t cols) {
    latent_network_params cp = latent_network_params_default();
    latent_train_params tp = latent_train_params_default();
    latent_network *net = NULL; latent_trainer *tr = NULL;
    latent_dataset *train = dataset(x, y, n_train, cols);
    size_t i, v = n - n_train, right = 0;
    float *p = malloc(v * 2 * sizeof *p); double *s = malloc(v * sizeof *s), auc;
    if (!p || !s) exit(1);
    cp.input_dim = (uint32_t)cols; cp.code_units = 200; cp.code_activation = LATENT_ACTIVATION_SIGMOID;
    cp.task = LATENT_TASK_CLASSIFY; cp.outputs = 2; cp.output_activation = LATENT_ACTIVATION_IDENTITY; cp.seed = 1;
    tp.epochs = (uint32_t)example_size(60, 1); tp.batch_size = 128; tp.learning_rate = 1e-3; tp.seed = 1;
    CHECK(latent_network_new(&cp, &net));
    CHECK(latent_trainer_new(&tp, &tr));
    CHECK(latent_trainer_fit(tr, net, train, NULL, NULL, NULL));
    CHECK(latent_network_predict(net, x + n_train * cols, v, cols, p, v * 2));
    for (i = 0; i < v; i++) { s[i] = p[2 * i + 1]; right += (p[2 * i + 1] > 0.5) == (y[n_train + i] == 1); }
    CHECK(latent_auroc(s, y + n_train, v, 1, &auc));
    printf("%-12s validation accuracy %.4f, AUROC %.4f\n", what, (double)right / (double)v, auc);
    free(p); free(s); latent_trainer_free(tr); latent_network_free(net); latent_dataset_free(train);
}

int main(int argc, char **argv) {
    char found[4096];
    const char *dir = argc > 1 ? argv[1] : found;
    if (argc <= 1 && latent_data_find("higgs/atlas-higgs-challenge", found, sizeof found, NULL) != LATENT_STATUS_OK) {
        example_data_missing("higgs", "higgs");
        return 2;
    }
    size_t per = example_size(5000, 60), n = 0, n_train, i, j, r, s, c;
    float *raw = malloc(2 * per * F * sizeof *raw); int32_t *lab = malloc(2 * per * sizeof *lab), *y;
    if (!raw || !lab) return 1;
    n += read_csv(dir, "train_sml_bg.csv", 0, per, raw, lab);
    n += read_csv(dir, "train_sml_sig.csv", 1, per, raw + n * F, lab + n);
    /* A seeded shuffle; the first half trains. Standardise on it, -999 sentinels to the mean. */
    unsigned long long st = 7;
    float *x = malloc(n * (PCS + F) * sizeof *x), tmp[F];
    y = malloc(n * sizeof *y);
    if (!x || !y) return 1;
    for (i = n - 1; i > 0; i--) {
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        j = (size_t)(st % (i + 1));
        memcpy(tmp, raw + i * F, sizeof tmp); memcpy(raw + i * F, raw + j * F, sizeof tmp); memcpy(raw + j * F, tmp, sizeof tmp);
        int32_t t = lab[i]; lab[i] = lab[j]; lab[j] = t;
    }
    n_train = n / 2;
    for (c = 0; c < F; c++) {
        double sum = 0, sq = 0, k = 0, m, sd;
        for (r = 0; r < n_train; r++) if (raw[r * F + c] != -999.0f) { sum += raw[r * F + c]; sq += raw[r * F + c] * (double)raw[r * F + c]; k++; }
        m = k > 0 ? sum / k : 0; sd = k > 0 && sq / k - m * m > 1e-12 ? sqrt(sq / k - m * m) : 1;
        for (r = 0; r < n; r++) raw[r * F + c] = raw[r * F + c] == -999.0f ? 0.0f : (float)((raw[r * F + c] - m) / sd);
    }
    latent_dataset *train = dataset(raw, lab, n_train, F);

    /* 1. The autoencoder: biases fixed at 0 (h = X W1; b2 is the output link's), links positive. */
    latent_network_params ap = latent_network_params_default();
    ap.input_dim = F; ap.code_units = CODE; ap.output_activation = LATENT_ACTIVATION_IDENTITY;
    latent_network *ae = NULL;
    CHECK(latent_network_new(&ap, &ae));
    size_t P, w, wl, b;
    CHECK(latent_network_param_count(ae, &P));
    latent_montecarlo_params mp = latent_montecarlo_params_default();
    mp.init_samples = example_size(3600, 20); mp.samples = example_size(100, 10); mp.elite = example_size(20, 5);
    mp.max_iterations = example_size(10, 1); mp.strategy = LATENT_MONTECARLO_STRATEGY_ELITIST; mp.seed = 1;
    latent_montecarlo *mc = NULL;
    CHECK(latent_montecarlo_new(&mp, P + 4, &mc));
    for (i = 0; i < 2; i++) {
        CHECK(latent_network_layer_offsets(ae, i, &w, &wl, &b));
        CHECK(latent_montecarlo_set_constraint(mc, b, i == 0 ? CODE : F, LATENT_CONSTRAINT_FIXED, 0.0, 0.0));
    }
    CHECK(latent_montecarlo_set_prior(mc, P, 4, LATENT_PRIOR_UNIFORM, 0.0, 1.0));
    CHECK(latent_montecarlo_set_constraint(mc, P, 4, LATENT_CONSTRAINT_POSITIVE, 0.0, 0.0));
    latent_montecarlo_network_params np = latent_montecarlo_network_params_default();
    np.batch_size = example_size(500, 20); np.runs = 20; np.seed = 1; np.start_from_network = 1;
    np.link_layer = 0; np.link_params = 2; np.link = field_eq;
    np.link2_layer = 1; np.link2_params = 2; np.link2 = output_side;
    CHECK(latent_montecarlo_fit_network(mc, ae, train, &np));
    printf("Monte-Carlo autoencoder: minibatch MSE %.4f after %llu evaluations\n", latent_montecarlo_best_loss(mc),
           (unsigned long long)latent_montecarlo_evaluations(mc));

    /* 2. The field_eq codes of runs 10, 12, ..., 18 side by side; a PCA to 3 columns on the training rows. */
    double *theta = malloc((P + 4) * sizeof *theta), comp[PCS * SNAPS * CODE], mean[SNAPS * CODE], var[PCS], run_loss;
    float *params = malloc(P * sizeof *params), *codes = malloc(n * SNAPS * CODE * sizeof *codes), *one = malloc(n * CODE * sizeof *one), pcs[PCS];
    if (!theta || !params || !codes || !one) return 1;
    for (s = 0; s < SNAPS; s++) {
        CHECK(latent_montecarlo_run_best(mc, snap_runs[s], theta, P + 4, &run_loss));
        for (i = 0; i < P; i++) params[i] = (float)theta[i];
        CHECK(latent_network_set_params(ae, params, P));
        CHECK(latent_network_encode(ae, raw, n, F, one, n * CODE));
        field_eq(NULL, theta + P, 2, one, n, CODE);
        for (r = 0; r < n; r++) memcpy(codes + r * SNAPS * CODE + s * CODE, one + r * CODE, CODE * sizeof *one);
    }
    CHECK(latent_pca_fit(codes, n_train, SNAPS * CODE, PCS, comp, PCS * SNAPS * CODE, mean, SNAPS * CODE, var, PCS, NULL));
    for (r = 0; r < n; r++) {
        CHECK(latent_pca_transform(codes + r * SNAPS * CODE, 1, SNAPS * CODE, mean, comp, PCS, pcs, PCS));
        for (j = 0; j < PCS; j++) x[r * (PCS + F) + j] = (float)(pcs[j] / sqrt(var[j] > 1e-12 ? var[j] : 1e-12));
        memcpy(x + r * (PCS + F) + PCS, raw + r * F, F * sizeof *raw);
        y[r] = lab[r];
    }

    /* 3. The classifiers: raw features alone, then with the 3 PCA columns. */
    classify("raw", raw, lab, n_train, n, F);
    classify("codes + raw", x, y, n_train, n, PCS + F);

    free(theta); free(params); free(codes); free(one); free(raw); free(lab); free(x); free(y);
    latent_montecarlo_free(mc); latent_network_free(ae); latent_dataset_free(train);
    return 0;
}
