/* Denoising autoencoder on MNIST: trains one network on inputs with 30% of the pixels masked
 * (set to 0; the loss is against the clean digit) and, for comparison, a plain one of the same
 * size with the same budget. Then masks 30% of the pixels of the test digits, reconstructs them
 * with both and prints the squared error per image against the clean digits. Saves the
 * denoising model, reloads it and prints its description: the regularisation is in the file.
 *
 *   denoising [DATA_DIR] [EPOCHS] [MAX_ROWS] [MODEL_PATH]
 *
 * MAX_ROWS (default 0 = all) limits the training and test rows, for a quick run. DATA_DIR holds
 * the MNIST IDX files; by default the library's data resolver finds them.
 *
 * MNIST has no Debian package: put its four IDX files in $LATENT_DATA_DIR/mnist/ (the project's
 * copy is ../shared/data/mnist; docs/data.md says where to get them). */
#include <string.h>

#include "common.h"

enum { MASKED_PERCENT = 30 };

static latent_dataset *load(const char *dir, const char *images, const char *labels) {
    char img[4096], lab[4096];
    latent_dataset *ds = NULL;
    snprintf(img, sizeof img, "%s/%s", dir, images);
    snprintf(lab, sizeof lab, "%s/%s", dir, labels);
    CHECK(latent_dataset_from_idx(img, lab, &ds));
    CHECK(latent_dataset_scale(ds, LATENT_SCALING_DIVIDE_255));
    return ds;
}

/* Replaces ds by a seeded subset of at most n of its rows. */
static latent_dataset *subset(latent_dataset *ds, size_t n) {
    size_t rows = latent_dataset_rows(ds);
    if (n == 0 || n >= rows) return ds;
    latent_dataset *keep = NULL, *rest = NULL;
    CHECK(latent_dataset_split(ds, 1.0 - (double)n / (double)rows, 1, &keep, &rest));
    latent_dataset_free(rest);
    latent_dataset_free(ds);
    return keep;
}

/* xorshift64: a small seeded generator, so the corrupted test set is the same on every run. */
static uint64_t xorshift64(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mean over rows of the squared error summed over a row's n columns. */
static double squared_error_per_row(const float *a, const float *b, size_t rows, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < rows * n; i++) sum += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sum / (double)rows;
}

static latent_network *train(const latent_dataset *ds, latent_corruption corruption, unsigned epochs) {
    uint32_t encoder[] = {256};
    latent_network_params np = latent_network_params_default();
    np.input_dim = (uint32_t)latent_dataset_cols(ds);
    np.n_encoder = 1;
    np.encoder_units = encoder;
    np.hidden_activation = LATENT_ACTIVATION_RELU;
    np.code_units = 64;
    np.code_activation = LATENT_ACTIVATION_RELU;
    np.output_activation = LATENT_ACTIVATION_SIGMOID;
    np.loss = LATENT_LOSS_BINARY_CROSS_ENTROPY;
    np.corruption = corruption; /* applied to each training minibatch, fresh every step */
    np.corruption_level = corruption == LATENT_CORRUPTION_NONE ? 0.0 : MASKED_PERCENT / 100.0;
    np.seed = 42;
    latent_network *net = NULL;
    CHECK(latent_network_new(&np, &net));
    latent_train_params tp = latent_train_params_default();
    tp.epochs = epochs;
    tp.seed = 7;
    latent_trainer *trainer = NULL;
    CHECK(latent_trainer_new(&tp, &trainer));
    CHECK(latent_trainer_fit(trainer, net, ds, NULL, NULL, NULL));
    latent_trainer_free(trainer);
    return net;
}

int main(int argc, char **argv) {
    char found[4096], summary[4096];
    const char *dir = argc > 1 ? argv[1] : NULL;
    unsigned epochs = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
    size_t max_rows = argc > 3 ? (size_t)atol(argv[3]) : 0;
    const char *model_path = argc > 4 ? argv[4] : "denoising.latent";
    if (dir == NULL) {
        if (latent_data_find("mnist", found, sizeof found, NULL) != LATENT_STATUS_OK) {
            example_data_missing("denoising", "mnist");
            return 2;
        }
        dir = found;
    }
    latent_dataset *train_set = subset(load(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"), max_rows);
    latent_dataset *test = subset(load(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"), max_rows);
    size_t rows = latent_dataset_rows(test), cols = latent_dataset_cols(test);
    printf("%zu training rows, %zu test rows, %u epochs each\n", latent_dataset_rows(train_set), rows, epochs);

    latent_network *denoising = train(train_set, LATENT_CORRUPTION_MASKING, epochs);
    latent_network *plain = train(train_set, LATENT_CORRUPTION_NONE, epochs);
    CHECK(latent_network_describe(denoising, summary, sizeof summary, NULL));
    printf("%s", summary);

    /* The test digits with MASKED_PERCENT% of their pixels set to 0. */
    float *clean = malloc(rows * cols * sizeof *clean), *noisy = malloc(rows * cols * sizeof *noisy);
    float *out = malloc(rows * cols * sizeof *out);
    if (clean == NULL || noisy == NULL || out == NULL) return 1;
    CHECK(latent_dataset_copy_rows(test, 0, rows, clean, rows * cols));
    uint64_t state = 2024;
    for (size_t i = 0; i < rows * cols; i++)
        noisy[i] = xorshift64(&state) % 100 < MASKED_PERCENT ? 0.0f : clean[i];

    latent_metrics mp, md;
    CHECK(latent_network_metrics(plain, test, &mp));
    CHECK(latent_network_metrics(denoising, test, &md));
    printf("clean test digits, squared error per image: plain %.2f, denoising %.2f\n",
           mp.squared_error_per_row, md.squared_error_per_row);
    printf("%d%% of the pixels masked, squared error per image against the clean digits:\n",
           MASKED_PERCENT);
    printf("  masked input itself %.2f\n", squared_error_per_row(noisy, clean, rows, cols));
    CHECK(latent_network_reconstruct(plain, noisy, rows, cols, out, rows * cols));
    double e_plain = squared_error_per_row(out, clean, rows, cols);
    CHECK(latent_network_reconstruct(denoising, noisy, rows, cols, out, rows * cols));
    double e_denoising = squared_error_per_row(out, clean, rows, cols);
    printf("  plain autoencoder %.2f\n  denoising autoencoder %.2f\n", e_plain, e_denoising);

    /* The corruption settings are part of the saved model. */
    CHECK(latent_network_save(denoising, model_path));
    latent_network *loaded = NULL;
    CHECK(latent_network_load(model_path, &loaded));
    char reloaded[4096];
    CHECK(latent_network_describe(loaded, reloaded, sizeof reloaded, NULL));
    printf("saved to %s and reloaded:\n%s", model_path, reloaded);
    int same = strcmp(summary, reloaded) == 0;
    printf("reloaded description is %s\n", same ? "identical" : "DIFFERENT");

    free(clean);
    free(noisy);
    free(out);
    latent_network_free(loaded);
    latent_network_free(plain);
    latent_network_free(denoising);
    latent_dataset_free(train_set);
    latent_dataset_free(test);
    return same ? 0 : 1;
}
