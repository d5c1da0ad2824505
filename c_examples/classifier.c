/* The autoencoder -> codes -> classifier pipeline, and a functional-transfer classifier, on
 * MNIST from C:
 *   1. an autoencoder 784-[32] learns codes of 10,000 training digits without labels;
 *   2. a classifier on those codes (32 -> 64 tanh -> 10 softmax) is trained on the labels;
 *   3. a classifier whose hidden layer is functional (784 -> [100, f = a x^2 + c x] -> 10)
 *      is trained on the pixels;
 * both are scored on 2,000 test digits with accuracy and a confusion matrix.
 *
 *   ./build/classifier            (finds MNIST through the data resolver)
 *
 * MNIST has no Debian package: put its four IDX files in $LATENT_DATA_DIR/mnist/ (the project's
 * copy is ../shared/data/mnist; docs/data.md says where to get them). */
#include <stdint.h>
#include <string.h>

#include "common.h"

enum { TRAIN = 10000, TEST = 2000, CODE = 32, K = 10 };

static latent_dataset *mnist(const char *dir, const char *prefix, size_t rows) {
    char img[4200], lab[4200];
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    latent_dataset *all = NULL, *keep = NULL, *rest = NULL;
    CHECK(latent_dataset_from_idx(img, lab, &all));
    CHECK(latent_dataset_scale(all, LATENT_SCALING_DIVIDE_255));
    /* A seeded split whose second part has `rows` rows. */
    CHECK(latent_dataset_split(all, (double)rows / (double)latent_dataset_rows(all), 1, &rest, &keep));
    latent_dataset_free(all);
    latent_dataset_free(rest);
    return keep;
}

/* A dataset of a network's codes of `d`, with d's labels. */
static latent_dataset *codes_of(latent_network *ae, latent_dataset *d) {
    size_t n = latent_dataset_rows(d);
    float *c = malloc(n * CODE * sizeof *c);
    int32_t *l = malloc(n * sizeof *l);
    CHECK(latent_network_encode_dataset(ae, d, c, n * CODE));
    CHECK(latent_dataset_labels(d, l, n));
    latent_dataset *out = NULL;
    CHECK(latent_dataset_from_buffer(c, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, n, CODE, &out));
    CHECK(latent_dataset_set_labels(out, l, n));
    free(c);
    free(l);
    return out;
}

static void report(const char *what, latent_network *net, latent_dataset *test) {
    latent_evaluation ev;
    uint64_t confusion[K * K];
    CHECK(latent_network_evaluate(net, test, &ev, confusion, K * K));
    printf("%s: test accuracy %.4f, cross-entropy %.4f\n", what, ev.accuracy, ev.loss);
    printf("  confusion (row = digit, column = predicted):\n");
    for (int t = 0; t < K; t++) {
        printf("  %d:", t);
        for (int p = 0; p < K; p++) printf(" %4llu", (unsigned long long)confusion[t * K + p]);
        printf("\n");
    }
}

int main(void) {
    char dir[4096];
    if (latent_data_find("mnist", dir, sizeof dir, NULL) != LATENT_STATUS_OK) {
        example_data_missing("classifier", "mnist");
        return 2;
    }
    latent_dataset *train = mnist(dir, "train", example_size(TRAIN, 50));
    latent_dataset *test = mnist(dir, "t10k", example_size(TEST, 30));
    latent_train_params tp = latent_train_params_default();
    tp.epochs = (uint32_t)example_size(10, 1);
    tp.batch_size = 100;
    tp.seed = 1;
    latent_trainer *tr = NULL;
    CHECK(latent_trainer_new(&tp, &tr));

    /* 1. The autoencoder, no labels involved. */
    uint32_t hidden[] = {256};
    latent_network_params ap = latent_network_params_default();
    ap.input_dim = 784;
    ap.n_encoder = 1;
    ap.encoder_units = hidden;
    ap.code_units = CODE;
    ap.loss = LATENT_LOSS_BINARY_CROSS_ENTROPY;
    latent_network *ae = NULL;
    CHECK(latent_network_new(&ap, &ae));
    CHECK(latent_trainer_fit(tr, ae, train, NULL, NULL, NULL));

    /* 2. A classifier on the codes. */
    latent_dataset *ctrain = codes_of(ae, train), *ctest = codes_of(ae, test);
    latent_network_params cp = latent_network_params_default();
    cp.input_dim = CODE;
    cp.code_units = 64;
    cp.code_activation = LATENT_ACTIVATION_TANH;
    cp.task = LATENT_TASK_CLASSIFY;
    cp.outputs = K;
    cp.output_activation = LATENT_ACTIVATION_IDENTITY;
    latent_network *on_codes = NULL;
    CHECK(latent_network_new(&cp, &on_codes));
    CHECK(latent_trainer_reset(tr));
    CHECK(latent_trainer_fit(tr, on_codes, ctrain, NULL, NULL, NULL));
    report("classifier on 32 autoencoder codes", on_codes, ctest);

    /* 3. A functional-transfer classifier on the pixels. */
    latent_network_params fp = latent_network_params_default();
    fp.input_dim = 784;
    fp.code_units = 100;
    fp.code_activation = LATENT_ACTIVATION_TANH;
    fp.code_connection = LATENT_CONNECTION_F03;
    fp.task = LATENT_TASK_CLASSIFY;
    fp.outputs = K;
    fp.output_activation = LATENT_ACTIVATION_IDENTITY;
    latent_network *functional = NULL;
    CHECK(latent_network_new(&fp, &functional));
    tp.epochs = (uint32_t)example_size(3, 1);
    latent_trainer *tr3 = NULL;
    CHECK(latent_trainer_new(&tp, &tr3));
    CHECK(latent_trainer_fit(tr3, functional, train, NULL, NULL, NULL));
    report("functional classifier (F03: a x^2 + c x per connection)", functional, test);

    latent_network_free(functional);
    latent_network_free(on_codes);
    latent_network_free(ae);
    latent_trainer_free(tr3);
    latent_trainer_free(tr);
    latent_dataset_free(ctrain);
    latent_dataset_free(ctest);
    latent_dataset_free(train);
    latent_dataset_free(test);
    return 0;
}
