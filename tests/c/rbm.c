/* The RBM's C API (latent_rbm_*) on the 8x8 digits: train by CD-1, the free energy of held-out
 * digits against noise with the same pixel marginals, reconstructions before and after,
 * Gibbs samples bit-identical for one seed, parameters, save and load; and the documented
 * status of each bad input. argv: scratch directory, path of digits.csv.gz. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

/* Measured (2026-11): the gap goes from 0.006 to 8.51 nats, the reconstruction error per pixel
 * from 0.1852 to 0.0141 (x 0.076); the bounds leave about half of that as margin. */
#define GAP_MIN 4.0
#define REC_RATIO 0.25

enum { NV = 64, NH = 32, ROWS = 1797, TRAIN = 1500, TEST = ROWS - TRAIN, EPOCHS = 30 };

static float x[ROWS * NV], noise[TEST * NV], buf[TEST * NV], buf2[TEST * NV], hid[TEST * NH];
static double fe[TEST], fe2[TEST];

typedef struct {
    int epoch_ends, cancel_at, busy;
    latent_rbm *rbm;
    double last_free_energy;
} log_t;

static int32_t on_progress(void *user, const latent_progress *p) {
    log_t *lg = (log_t *)user;
    if (p->event != LATENT_EVENT_EPOCH_END) return 0;
    lg->epoch_ends++;
    lg->last_free_energy = p->free_energy;
    /* Any call on the RBM being trained is BUSY, reads too. */
    if (latent_rbm_set_threads(lg->rbm, 1) == LATENT_STATUS_BUSY &&
        latent_rbm_free_energy(lg->rbm, x, 1, NV, fe, 1) == LATENT_STATUS_BUSY)
        lg->busy++;
    return lg->cancel_at > 0 && lg->epoch_ends >= lg->cancel_at;
}

static double mean(const double *v, int n) {
    double s = 0;
    int i;
    for (i = 0; i < n; i++) s += v[i];
    return s / n;
}

/* Free energy of column-shuffled noise minus that of the held-out digits (mean nats). */
static double gap(latent_rbm *rbm) {
    EXPECT(latent_rbm_free_energy(rbm, x + TRAIN * NV, TEST, NV, fe, TEST), LATENT_STATUS_OK);
    EXPECT(latent_rbm_free_energy(rbm, noise, TEST, NV, fe2, TEST), LATENT_STATUS_OK);
    return mean(fe2, TEST) - mean(fe, TEST);
}

static double recon_error(latent_rbm *rbm) {
    double s = 0;
    int i;
    EXPECT(latent_rbm_reconstruct(rbm, x + TRAIN * NV, TEST, NV, buf, TEST * NV), LATENT_STATUS_OK);
    for (i = 0; i < TEST * NV; i++) s += (buf[i] - x[TRAIN * NV + i]) * (buf[i] - x[TRAIN * NV + i]);
    return s / (TEST * NV);
}

int main(int argc, char **argv) {
    const char *tmp = argc > 1 ? argv[1] : ".";
    char path[4096], netpath[4096];
    latent_csv_params csv = latent_csv_params_default();
    latent_dataset *all = NULL, *train = NULL, *narrow = NULL;
    latent_rbm *rbm = (latent_rbm *)&csv, *back = NULL; /* a poison value: must become NULL */
    latent_train_params tp = latent_train_params_default();
    latent_rbm_unit vu = -1, hu = -1;
    log_t lg = {0, 0, 0, NULL, 0.0};
    size_t pc = 0, hist = 0;
    double gap0, gap1, rec0, rec1, errs[64];
    float *params;
    unsigned long long s = 12345;
    int i, j, same, differ;

    if (argc < 3) return 2;
    csv.label_column = 64;
    EXPECT(latent_dataset_from_csv(argv[2], &csv, &all), LATENT_STATUS_OK);
    if (!all || latent_dataset_rows(all) != ROWS) return 3;
    EXPECT(latent_dataset_copy_rows(all, 0, ROWS, x, ROWS * NV), LATENT_STATUS_OK);
    for (i = 0; i < ROWS * NV; i++) x[i] /= 16.0f; /* pixel counts 0..16 -> [0, 1] */
    /* Noise: each pixel column of the held-out digits shuffled across the rows. */
    memcpy(noise, x + TRAIN * NV, sizeof noise);
    for (j = 0; j < NV; j++)
        for (i = TEST - 1; i > 0; i--) {
            int k;
            float t;
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            k = (int)((s >> 33) % (unsigned long long)(i + 1));
            t = noise[i * NV + j], noise[i * NV + j] = noise[k * NV + j], noise[k * NV + j] = t;
        }
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, TRAIN, NV, &train),
           LATENT_STATUS_OK);
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, TRAIN, NV - 1, &narrow),
           LATENT_STATUS_OK);

    /* Construction */
    EXPECT(latent_rbm_new(NV, NH, 2, LATENT_RBM_UNIT_BERNOULLI, 7, &rbm), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(rbm == NULL);
    MSG_HAS("visible");
    EXPECT(latent_rbm_new(NV, NH, LATENT_RBM_UNIT_BERNOULLI, -1, 7, &rbm), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("hidden");
    EXPECT(latent_rbm_new(0, NH, LATENT_RBM_UNIT_BERNOULLI, LATENT_RBM_UNIT_BERNOULLI, 7, &rbm),
           LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_rbm_new(NV, (size_t)1 << 40, LATENT_RBM_UNIT_BERNOULLI, LATENT_RBM_UNIT_BERNOULLI, 7, &rbm),
           LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_rbm_new(NV, NH, LATENT_RBM_UNIT_BERNOULLI, LATENT_RBM_UNIT_BERNOULLI, 7, NULL),
           LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_rbm_new(NV, NH, LATENT_RBM_UNIT_BERNOULLI, LATENT_RBM_UNIT_BERNOULLI, 7, &rbm), LATENT_STATUS_OK);
    if (!rbm) return 4;
    EXPECT_TRUE(latent_rbm_n_visible(rbm) == NV && latent_rbm_n_hidden(rbm) == NH && latent_rbm_n_visible(NULL) == 0);
    EXPECT(latent_rbm_units(rbm, &vu, &hu), LATENT_STATUS_OK);
    EXPECT_TRUE(vu == LATENT_RBM_UNIT_BERNOULLI && hu == LATENT_RBM_UNIT_BERNOULLI);
    EXPECT(latent_rbm_units(rbm, NULL, &hu), LATENT_STATUS_NULL_ARGUMENT);

    /* Parameters */
    EXPECT(latent_rbm_param_count(rbm, &pc), LATENT_STATUS_OK);
    EXPECT_TRUE(pc == NV * NH + NH + NV);
    params = (float *)malloc(pc * sizeof *params);
    if (!params) return 5;
    EXPECT(latent_rbm_get_params(rbm, params, pc - 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_rbm_get_params(rbm, params, pc), LATENT_STATUS_OK);
    EXPECT(latent_rbm_set_params(rbm, params, pc - 1), LATENT_STATUS_SHAPE_MISMATCH);
    params[5] = NAN;
    EXPECT(latent_rbm_set_params(rbm, params, pc), LATENT_STATUS_NON_FINITE);
    params[5] = 0.0f;
    EXPECT(latent_rbm_set_threads(rbm, 5000), LATENT_STATUS_INVALID_ARGUMENT);

    /* Before training */
    gap0 = gap(rbm);
    rec0 = recon_error(rbm);

    /* Training: Hinton's rbm.m settings. */
    tp.epochs = EPOCHS;
    tp.batch_size = 50;
    tp.optimizer = LATENT_OPTIMIZER_SGD;
    tp.learning_rate = 0.1;
    tp.momentum = 0.9;
    tp.momentum_initial = 0.5;
    tp.momentum_switch_epoch = 5;
    tp.weight_decay = 2e-4;
    tp.seed = 3;
    tp.threads = 1;
    EXPECT(latent_rbm_fit(rbm, &tp, 0, 0, train, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("cd_k");
    EXPECT(latent_rbm_fit(rbm, &tp, 1001, 0, train, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_rbm_fit(rbm, &tp, 1, 2, train, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_rbm_fit(rbm, &tp, 1, 0, narrow, NULL, NULL), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_rbm_fit(rbm, NULL, 1, 0, train, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_rbm_fit(rbm, &tp, 1, 0, NULL, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    tp.learning_rate = NAN;
    EXPECT(latent_rbm_fit(rbm, &tp, 1, 0, train, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    tp.learning_rate = 0.1;
    /* A cancelled fit: CANCELLED, recorded nowhere; then the real one. */
    lg.rbm = rbm;
    lg.cancel_at = 2;
    EXPECT(latent_rbm_fit(rbm, &tp, 1, 0, train, on_progress, &lg), LATENT_STATUS_CANCELLED);
    EXPECT(latent_rbm_history(rbm, NULL, NULL, 0, &hist), LATENT_STATUS_OK);
    EXPECT_TRUE(hist == 0);
    EXPECT(latent_rbm_set_params(rbm, params, pc), LATENT_STATUS_OK); /* back to the initial weights */
    lg.epoch_ends = 0;
    lg.cancel_at = 0;
    EXPECT(latent_rbm_fit(rbm, &tp, 1, 0, train, on_progress, &lg), LATENT_STATUS_OK);
    EXPECT_TRUE(lg.epoch_ends == EPOCHS && lg.busy == EPOCHS + 2 && isfinite(lg.last_free_energy));
    EXPECT(latent_rbm_history(rbm, errs, NULL, 64, &hist), LATENT_STATUS_OK);
    EXPECT_TRUE(hist == EPOCHS && errs[EPOCHS - 1] < errs[0]);
    EXPECT(latent_rbm_history(rbm, errs, NULL, EPOCHS - 1, &hist), LATENT_STATUS_BUFFER_TOO_SMALL);

    gap1 = gap(rbm);
    rec1 = recon_error(rbm);
    printf("64-32 RBM, CD-1, %d epochs on %d digits: free energy of column-shuffled noise minus held-out digits "
           "%.3f -> %.2f nats; mean-field reconstruction squared error per pixel %.4f -> %.4f; training error "
           "%.4f -> %.4f\n",
           EPOCHS, TRAIN, gap0, gap1, rec0, rec1, errs[0], errs[EPOCHS - 1]);
    EXPECT_TRUE(fabs(gap0) < 1.0);
    EXPECT_TRUE(gap1 > GAP_MIN);
    EXPECT_TRUE(rec1 < REC_RATIO * rec0);

    /* Features */
    EXPECT(latent_rbm_transform(rbm, x + TRAIN * NV, TEST, NV, hid, TEST * NH), LATENT_STATUS_OK);
    for (i = 0, same = 1; i < TEST * NH; i++) same &= hid[i] > 0.0f && hid[i] < 1.0f;
    EXPECT_TRUE(same);
    EXPECT(latent_rbm_transform(rbm, x, 2, NV, hid, 2 * NH - 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_rbm_transform(rbm, x, 2, NV + 1, hid, TEST * NH), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_rbm_transform(rbm, x, 0, NV, NULL, 0), LATENT_STATUS_OK);

    /* Samples: the same seed gives the same bits, another seed others. */
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 100, 42, 0, buf, TEST * NV), LATENT_STATUS_OK);
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 100, 42, 0, buf2, TEST * NV), LATENT_STATUS_OK);
    EXPECT_TRUE(memcmp(buf, buf2, sizeof buf) == 0);
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 100, 43, 0, buf2, TEST * NV), LATENT_STATUS_OK);
    for (i = 0, differ = 0, same = 1; i < TEST * NV; i++) {
        differ += buf[i] != buf2[i];
        same &= buf[i] == 0.0f || buf[i] == 1.0f;
    }
    EXPECT_TRUE(differ > 100 && same);
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 100, 42, 1, buf2, TEST * NV), LATENT_STATUS_OK);
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 0, 42, 0, buf, TEST * NV), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 1000001, 42, 0, buf, TEST * NV), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 1, 42, 2, buf, TEST * NV), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_rbm_sample(rbm, noise, TEST, NV, 1, 42, 0, buf, TEST * NV - 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_rbm_sample(rbm, NULL, TEST, NV, 1, 42, 0, buf, TEST * NV), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_rbm_sample(NULL, noise, TEST, NV, 1, 42, 0, buf, TEST * NV), LATENT_STATUS_NULL_ARGUMENT);
    buf2[3] = NAN;
    EXPECT(latent_rbm_free_energy(rbm, buf2, 1, NV, fe, 1), LATENT_STATUS_NON_FINITE);

    /* Save and load: the same free energies, bit for bit. */
    snprintf(path, sizeof path, "%s/digits.rbm", tmp);
    EXPECT(latent_rbm_save(rbm, path), LATENT_STATUS_OK);
    EXPECT(latent_rbm_load(path, &back), LATENT_STATUS_OK);
    if (back) {
        EXPECT(latent_rbm_free_energy(rbm, x, TEST, NV, fe, TEST), LATENT_STATUS_OK);
        EXPECT(latent_rbm_free_energy(back, x, TEST, NV, fe2, TEST), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(fe, fe2, sizeof fe) == 0);
        latent_rbm_free(back);
        back = NULL;
    }
    {
        latent_network_params np = latent_network_params_default();
        latent_network *net = NULL, *wrong = NULL;
        np.input_dim = NV;
        np.code_units = 4;
        EXPECT(latent_network_new(&np, &net), LATENT_STATUS_OK);
        snprintf(netpath, sizeof netpath, "%s/net.latent", tmp);
        EXPECT(latent_network_save(net, netpath), LATENT_STATUS_OK);
        back = (latent_rbm *)&np;
        EXPECT(latent_rbm_load(netpath, &back), LATENT_STATUS_BAD_FORMAT);
        MSG_HAS("wrong kind");
        EXPECT_TRUE(back == NULL);
        EXPECT(latent_network_load(path, &wrong), LATENT_STATUS_BAD_FORMAT);
        MSG_HAS("latent_rbm_load");
        latent_network_free(net);
    }
    snprintf(path, sizeof path, "%s/absent.rbm", tmp);
    EXPECT(latent_rbm_load(path, &back), LATENT_STATUS_IO);

    free(params);
    latent_rbm_free(rbm);
    latent_rbm_free(NULL);
    latent_dataset_free(narrow);
    latent_dataset_free(train);
    latent_dataset_free(all);
    printf("%d failures\n", failures);
    return failures != 0;
}
