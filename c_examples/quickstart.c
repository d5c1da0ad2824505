/* Trains a deep autoencoder on Fashion-MNIST, reports the test reconstruction error, saves the
 * model, reloads it and checks the reloaded model gives identical codes. Writes two pictures
 * where it runs: quickstart_reconstructions.png (2 bands of 16 test images over their
 * reconstructions, each pixel 3 x 3) and quickstart_loss.svg (train and validation loss per
 * epoch).
 *
 *   quickstart [DATA_DIR] [EPOCHS] [MAX_ROWS] [MODEL_PATH]
 *
 * MAX_ROWS (default 0 = all) limits the training and test rows, for a quick run.
 *
 * DATA_DIR holds the Fashion-MNIST IDX files (.gz or not); by default the library's data resolver
 * looks in $LATENT_DATA_DIR, ../shared/data and /usr/share/datasets (Debian's
 * dataset-fashion-mnist package, which `make data` installs when run as root). */
#include <string.h>

#include "common.h"

static int32_t on_progress(void *user, const latent_progress *p) {
    (void)user;
    if (p->event == LATENT_EVENT_EPOCH_END)
        printf("epoch %2u/%u  train loss %.5f  validation loss %.5f  %8.0f samples/s\n", p->epoch + 1,
               p->epochs, p->loss, p->valid_loss, p->samples_per_second);
    fflush(stdout);
    return 0; /* non-zero would cancel */
}

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
    if (n >= rows) return ds;
    latent_dataset *keep = NULL, *rest = NULL;
    CHECK(latent_dataset_split(ds, 1.0 - (double)n / (double)rows, 1, &keep, &rest));
    latent_dataset_free(rest);
    latent_dataset_free(ds);
    return keep;
}

int main(int argc, char **argv) {
    char found[4096];
    const char *dir = argc > 1 ? argv[1] : NULL;
    unsigned epochs = argc > 2 ? (unsigned)atoi(argv[2]) : 5;
    size_t max_rows = argc > 3 ? (size_t)atol(argv[3]) : 0;
    const char *model_path = argc > 4 ? argv[4] : "quickstart.latent";
    if (dir == NULL) {
        if (latent_data_find("fashion-mnist", found, sizeof found, NULL) != LATENT_STATUS_OK) {
            example_data_missing("quickstart", "fashion-mnist");
            return 2;
        }
        dir = found;
    }
    printf("latent %s, data from %s\n", latent_version(), dir);

    latent_dataset *train = load(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
    latent_dataset *test = load(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
    if (max_rows > 0) { /* a quicker run: keep a seeded subset of max_rows rows of each */
        train = subset(train, max_rows);
        test = subset(test, max_rows);
    }
    printf("%zu training rows, %zu test rows\n", latent_dataset_rows(train), latent_dataset_rows(test));

    /* 784 -> 512 -> 128 -> [32] -> 128 -> 512 -> 784: ReLU hidden layers, a linear code, sigmoid
     * output with binary cross-entropy (computed from the logits). */
    uint32_t encoder[] = {512, 128};
    latent_network_params np = latent_network_params_default();
    np.input_dim = (uint32_t)latent_dataset_cols(train);
    np.n_encoder = 2;
    np.encoder_units = encoder;
    np.hidden_activation = LATENT_ACTIVATION_RELU;
    np.code_units = 32;
    np.code_activation = LATENT_ACTIVATION_IDENTITY;
    np.output_activation = LATENT_ACTIVATION_SIGMOID;
    np.loss = LATENT_LOSS_BINARY_CROSS_ENTROPY;
    np.seed = 42;
    latent_network *net = NULL;
    CHECK(latent_network_new(&np, &net));
    char summary[4096];
    CHECK(latent_network_describe(net, summary, sizeof summary, NULL));
    printf("%s", summary);

    latent_train_params tp = latent_train_params_default();
    tp.epochs = epochs;
    tp.batch_size = 128;
    tp.optimizer = LATENT_OPTIMIZER_ADAM;
    tp.learning_rate = 1e-3;
    tp.validation_fraction = 0.1;
    tp.seed = 7;
    latent_trainer *trainer = NULL;
    CHECK(latent_trainer_new(&tp, &trainer));
    CHECK(latent_trainer_fit(trainer, net, train, NULL, on_progress, NULL));

    double bce = 0.0, mse = 0.0;
    CHECK(latent_network_loss(net, test, &bce));
    CHECK(latent_network_mse(net, test, &mse));
    printf("test reconstruction: binary cross-entropy %.5f, squared error per image %.3f\n", bce,
           mse * (double)latent_dataset_cols(test));

    /* Pictures: 2 bands of 16 test images (28 x 28) over their reconstructions, each pixel
     * drawn 3 x 3 so a person can see them; pixel values 0..1 map to black..white. Then the
     * loss per epoch as an SVG plot. */
    enum { SHOW = 32 };
    size_t d = latent_dataset_cols(test);
    float *pic = malloc(2 * SHOW * d * sizeof *pic);
    if (pic == NULL) return 1;
    size_t show = latent_dataset_rows(test) < SHOW ? latent_dataset_rows(test) : SHOW;
    CHECK(latent_dataset_copy_rows(test, 0, show, pic, show * d));
    CHECK(latent_network_reconstruct(net, pic, show, d, pic + SHOW * d, SHOW * d));
    latent_grid_params gp = latent_grid_params_default(); /* scale 3, padding 1, 0..1 */
    gp.cols = 16;
    CHECK(latent_image_pairs_write_ex("quickstart_reconstructions.png", pic, pic + SHOW * d, show, 28, 28, &gp));
    CHECK(latent_history_svg_write(trainer, "quickstart_loss.svg", 0));
    printf("wrote quickstart_reconstructions.png and quickstart_loss.svg\n");
    free(pic);

    /* Save, reload, and check the reloaded network encodes the test set identically. */
    CHECK(latent_network_save(net, model_path));
    latent_network *loaded = NULL;
    CHECK(latent_network_load(model_path, &loaded));
    size_t n = latent_dataset_rows(test), k = latent_network_code_dim(net);
    float *a = malloc(n * k * sizeof *a), *b = malloc(n * k * sizeof *b);
    if (a == NULL || b == NULL) return 1;
    CHECK(latent_network_encode_dataset(net, test, a, n * k));
    CHECK(latent_network_encode_dataset(loaded, test, b, n * k));
    int same = memcmp(a, b, n * k * sizeof *a) == 0;
    printf("saved to %s; reloaded model gives %s codes\n", model_path, same ? "identical" : "DIFFERENT");

    free(a);
    free(b);
    latent_network_free(loaded);
    latent_trainer_free(trainer);
    latent_network_free(net);
    latent_dataset_free(train);
    latent_dataset_free(test);
    return same ? 0 : 1;
}
