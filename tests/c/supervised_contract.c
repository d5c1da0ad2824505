/* Supervised networks through the C API: a classifier and a regressor trained on synthetic
 * data, their scores, predictions and a save/load round trip, and every documented status for
 * bad input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

enum { ROWS = 600, D = 4, K = 3 };

/* xorshift: reproducible data without the C library's rand. */
static uint64_t state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}
static double normal(void) {
    double u = uniform() + 1e-12, v = uniform();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

int main(int argc, char **argv) {
    const char *tmp = argc > 1 ? argv[1] : ".";
    char path[4096];
    static float x[ROWS * D];
    static int32_t labels[ROWS];
    static double targets[ROWS * 2];
    /* Three Gaussian blobs in 4-D; regression targets are smooth functions of x. */
    for (int r = 0; r < ROWS; r++) {
        int k = r % K;
        labels[r] = k;
        for (int c = 0; c < D; c++) x[r * D + c] = (float)(normal() * 0.5 + (c == k ? 2.0 : 0.0));
        targets[r * 2] = 2.0 * x[r * D] - x[r * D + 1];
        targets[r * 2 + 1] = tanh(x[r * D + 2]);
    }
    latent_dataset *ds = NULL;
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &ds), LATENT_STATUS_OK);

    uint32_t hidden[] = {16};
    latent_network_params p = latent_network_params_default();
    EXPECT_TRUE(p.task == LATENT_TASK_RECONSTRUCT && p.outputs == 0 && p.encoder_connections == NULL);
    p.input_dim = D;
    p.n_encoder = 1;
    p.encoder_units = hidden;
    p.hidden_activation = LATENT_ACTIVATION_TANH;
    p.code_units = 8;
    p.code_activation = LATENT_ACTIVATION_TANH;
    p.task = LATENT_TASK_CLASSIFY;
    p.outputs = K;
    latent_network *net = (latent_network *)&p;
    /* A classifier's output gives logits: a sigmoid output is refused. */
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("logits");
    EXPECT_TRUE(net == NULL);
    p.output_activation = LATENT_ACTIVATION_IDENTITY;
    p.outputs = 1;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    p.outputs = K;
    p.task = 7;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_INVALID_ARGUMENT);
    p.task = LATENT_TASK_CLASSIFY;
    EXPECT(latent_network_new(&p, &net), LATENT_STATUS_OK);
    EXPECT_TRUE(latent_network_output_dim(net) == K && latent_network_task(net) == LATENT_TASK_CLASSIFY);

    latent_train_params tp = latent_train_params_default();
    tp.epochs = 30;
    tp.batch_size = 32;
    tp.learning_rate = 1e-2;
    tp.threads = 1;
    latent_trainer *tr = NULL;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_OK);
    /* No labels yet. */
    EXPECT(latent_trainer_fit(tr, net, ds, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("no labels");
    labels[5] = K; /* out of range */
    EXPECT(latent_dataset_set_labels(ds, labels, ROWS), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, net, ds, NULL, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("row 5 has label 3");
    labels[5] = 5 % K;
    EXPECT(latent_dataset_set_labels(ds, labels, ROWS), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, net, ds, NULL, NULL, NULL), LATENT_STATUS_OK);

    latent_evaluation ev;
    uint64_t confusion[K * K];
    EXPECT(latent_network_evaluate(net, ds, &ev, confusion, K * K - 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_network_evaluate(net, ds, &ev, confusion, K * K), LATENT_STATUS_OK);
    EXPECT(latent_network_evaluate(net, ds, &ev, NULL, 0), LATENT_STATUS_OK);
    uint64_t total = 0, diag = 0;
    for (int i = 0; i < K * K; i++) total += confusion[i];
    for (int k = 0; k < K; k++) diag += confusion[k * K + k];
    printf("classifier: loss %.4f accuracy %.4f\n", ev.loss, ev.accuracy);
    EXPECT_TRUE(ev.rows == ROWS && total == ROWS && fabs((double)diag / ROWS - ev.accuracy) < 1e-12);
    EXPECT_TRUE(ev.accuracy > 0.95 && ev.loss < 0.2 && isnan(ev.mse));

    float probs[10 * K];
    int32_t cls[10];
    EXPECT(latent_network_predict(net, x, 10, D, probs, 10 * K), LATENT_STATUS_OK);
    EXPECT(latent_network_classify(net, x, 10, D, cls, 9), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_network_classify(net, x, 10, D, cls, 10), LATENT_STATUS_OK);
    for (int r = 0; r < 10; r++) {
        float s = 0;
        for (int k = 0; k < K; k++) {
            s += probs[r * K + k];
            EXPECT_TRUE(probs[r * K + k] <= probs[r * K + cls[r]]);
        }
        EXPECT_TRUE(fabsf(s - 1.0f) < 1e-5f);
    }
    /* Autoencoder-only calls refuse a classifier. */
    double scores[10];
    EXPECT(latent_network_reconstruction_error(net, x, 10, D, scores, 10), LATENT_STATUS_INVALID_ARGUMENT);

    /* Save and load: the same probabilities. */
    snprintf(path, sizeof path, "%s/classifier.latent", tmp);
    EXPECT(latent_network_save(net, path), LATENT_STATUS_OK);
    latent_network *back = NULL;
    EXPECT(latent_network_load(path, &back), LATENT_STATUS_OK);
    float probs2[10 * K];
    EXPECT(latent_network_predict(back, x, 10, D, probs2, 10 * K), LATENT_STATUS_OK);
    EXPECT_TRUE(memcmp(probs, probs2, sizeof probs) == 0);
    EXPECT_TRUE(latent_network_task(back) == LATENT_TASK_CLASSIFY && latent_network_output_dim(back) == K);
    latent_network_free(back);

    /* Regression onto two targets. */
    EXPECT(latent_dataset_set_targets(ds, targets, LATENT_DTYPE_F64, LATENT_LAYOUT_ROW_MAJOR, ROWS - 1, 2),
           LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_dataset_set_targets(ds, targets, 5, LATENT_LAYOUT_ROW_MAJOR, ROWS, 2), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_dataset_set_targets(NULL, targets, LATENT_DTYPE_F64, LATENT_LAYOUT_ROW_MAJOR, ROWS, 2),
           LATENT_STATUS_NULL_ARGUMENT);
    EXPECT_TRUE(latent_dataset_target_cols(ds) == 0);
    EXPECT(latent_dataset_set_targets(ds, targets, LATENT_DTYPE_F64, LATENT_LAYOUT_ROW_MAJOR, ROWS, 2), LATENT_STATUS_OK);
    EXPECT_TRUE(latent_dataset_target_cols(ds) == 2);
    p.task = LATENT_TASK_REGRESS;
    p.outputs = 3;
    latent_network *reg = NULL;
    EXPECT(latent_network_new(&p, &reg), LATENT_STATUS_OK);
    EXPECT(latent_trainer_reset(tr), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, reg, ds, NULL, NULL, NULL), LATENT_STATUS_SHAPE_MISMATCH);
    MSG_HAS("2 target columns");
    latent_network_free(reg);
    p.outputs = 2;
    EXPECT(latent_network_new(&p, &reg), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit(tr, reg, ds, NULL, NULL, NULL), LATENT_STATUS_OK);
    EXPECT(latent_network_evaluate(reg, ds, &ev, NULL, 0), LATENT_STATUS_OK);
    printf("regressor: mse %.5f\n", ev.mse);
    EXPECT_TRUE(ev.mse < 0.05 && isnan(ev.accuracy));
    EXPECT(latent_network_classify(reg, x, 10, D, cls, 10), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_network_evaluate(reg, NULL, &ev, NULL, 0), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_network_evaluate(reg, ds, NULL, NULL, 0), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT_TRUE(latent_network_task(NULL) == -1 && latent_network_output_dim(NULL) == 0);

    latent_network_free(reg);
    latent_network_free(net);
    latent_trainer_free(tr);
    latent_dataset_free(ds);
    printf("%d failures\n", failures);
    return failures != 0;
}
