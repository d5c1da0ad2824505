/* Variational autoencoder on MNIST: trains a 784-256-[16]-256-784 VAE with a Bernoulli decoder,
 * prints the test negative ELBO (reconstruction + KL, in nats per image) and the importance-
 * sampled IWAE bound, writes 16 digits sampled from the prior as a PGM (or PNG) grid, and
 * scores a few MNIST test digits and Fashion-MNIST images with the log-likelihood log p(x):
 * clothes the VAE never saw get far lower scores, which makes it an anomaly detector.
 *
 *   vae [DATA_DIR] [EPOCHS] [MAX_ROWS] [PGM_PATH]
 *
 * Defaults: 3 epochs on 10000 training rows (0 = all 60000), samples.pgm. DATA_DIR holds the
 * MNIST IDX files; by default the library's data resolver finds them, and Fashion-MNIST.
 *
 * MNIST has no Debian package: put its four IDX files in $LATENT_DATA_DIR/mnist/ (the project's
 * copy is ../shared/data/mnist; docs/data.md says where to get them). */
#include "common.h"

enum { SIDE = 28, PIXELS = SIDE * SIDE, GRID = 4, SHOWN = 5, SCORED = 200, IWAE_ROWS = 500 };

static latent_dataset *load(const char *dir, const char *images) {
    char img[4096];
    latent_dataset *ds = NULL;
    snprintf(img, sizeof img, "%s/%s", dir, images);
    CHECK(latent_dataset_from_idx(img, NULL, &ds));
    CHECK(latent_dataset_scale(ds, LATENT_SCALING_DIVIDE_255));
    return ds;
}

/* A seeded subset of at most n rows of ds (ds itself when n is 0 or covers it). */
static latent_dataset *subset(latent_dataset *ds, size_t n) {
    size_t rows = latent_dataset_rows(ds);
    if (n == 0 || n >= rows) return ds;
    latent_dataset *keep = NULL, *rest = NULL;
    CHECK(latent_dataset_split(ds, 1.0 - (double)n / (double)rows, 1, &keep, &rest));
    latent_dataset_free(rest);
    latent_dataset_free(ds);
    return keep;
}

static int32_t progress(void *user, const latent_progress *p) {
    (void)user;
    if (p->event == LATENT_EVENT_EPOCH_END)
        printf("epoch %u/%u  reconstruction %.2f  KL %.2f  -ELBO %.2f nats/image  %.0f images/s\n",
               p->epoch + 1, p->epochs, p->loss, p->penalty, p->loss + p->penalty, p->samples_per_second);
    return 0;
}

/* log p(x) of the first SCORED rows of ds with 50 importance samples; prints the first SHOWN. */
static double anomaly_scores(const latent_vae *vae, const latent_dataset *ds, const char *name) {
    static float x[SCORED * PIXELS];
    double ll[SCORED], sum = 0.0;
    size_t n = example_size(SCORED, 10), samples = example_size(50, 3);
    CHECK(latent_dataset_copy_rows(ds, 0, n, x, n * PIXELS));
    CHECK(latent_vae_log_likelihood(vae, x, n, PIXELS, (uint32_t)samples, 9, ll, n));
    printf("  %-13s", name);
    for (size_t i = 0; i < n; i++) {
        if (i < SHOWN) printf(" %8.1f", ll[i]);
        sum += ll[i];
    }
    printf("   mean of %zu: %.1f\n", n, sum / (double)n);
    return sum / (double)n;
}

int main(int argc, char **argv) {
    char found[4096], fashion_dir[4096];
    const char *dir = argc > 1 ? argv[1] : NULL;
    unsigned epochs = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
    size_t max_rows = argc > 3 ? (size_t)atol(argv[3]) : 10000;
    const char *pgm_path = argc > 4 ? argv[4] : "samples.pgm";
    if (dir == NULL) {
        if (latent_data_find("mnist", found, sizeof found, NULL) != LATENT_STATUS_OK) {
            example_data_missing("vae", "mnist");
            return 2;
        }
        dir = found;
    }
    latent_dataset *train = subset(load(dir, "train-images-idx3-ubyte.gz"), max_rows);
    latent_dataset *test = load(dir, "t10k-images-idx3-ubyte.gz");

    uint32_t hidden[] = {256};
    latent_vae_params vp = latent_vae_params_default();
    vp.input_dim = PIXELS;
    vp.n_encoder = 1;
    vp.encoder_units = hidden;
    vp.latent_dim = 16;
    vp.n_decoder = 1;
    vp.decoder_units = hidden;
    vp.hidden_activation = LATENT_ACTIVATION_RELU;
    vp.distribution = LATENT_DISTRIBUTION_BERNOULLI; /* pixels in [0, 1] */
    vp.seed = 1;
    latent_vae *vae = NULL;
    CHECK(latent_vae_new(&vp, &vae));
    latent_train_params tp = latent_train_params_default(); /* Adam 1e-3, batch 128 */
    tp.epochs = epochs;
    tp.seed = 2;
    latent_trainer *trainer = NULL;
    CHECK(latent_trainer_new(&tp, &trainer));
    printf("training on %zu MNIST images for %u epochs\n", latent_dataset_rows(train), epochs);
    CHECK(latent_trainer_fit_vae(trainer, vae, train, NULL, progress, NULL));

    latent_elbo e;
    CHECK(latent_vae_elbo(vae, test, 1, 3, &e));
    printf("test -ELBO %.2f nats/image = reconstruction %.2f + KL %.2f (%zu images)\n", e.neg_elbo,
           e.reconstruction, e.kl, latent_dataset_rows(test));
    latent_dataset *few = subset(load(dir, "t10k-images-idx3-ubyte.gz"), example_size(IWAE_ROWS, 10));
    double l1, l50;
    CHECK(latent_vae_iwae_bound(vae, few, 1, 4, &l1));
    CHECK(latent_vae_iwae_bound(vae, few, (uint32_t)example_size(50, 3), 4, &l50));
    printf("IWAE bound on %zu test images: L_1 %.2f, L_50 %.2f (log p(x) >= L_50 >= L_1)\n",
           latent_dataset_rows(few), l1, l50);

    /* 16 draws z ~ N(0, I), decoded to pixel probabilities, as a 4 x 4 grid (0 black, 1 white;
     * the format from the extension: .pgm or .png). */
    float z[GRID * GRID * 16], img[GRID * GRID * PIXELS];
    CHECK(latent_vae_sample_prior(vae, GRID * GRID, 5, z, sizeof z / sizeof *z));
    CHECK(latent_vae_generate_mean(vae, z, GRID * GRID, 16, img, sizeof img / sizeof *img));
    CHECK(latent_image_grid_write(pgm_path, img, GRID * GRID, SIDE, SIDE, GRID, 0.0f, 1.0f, LATENT_IMAGE_AUTO));
    printf("wrote %d samples from the prior to %s\n", GRID * GRID, pgm_path);

    /* Anomaly scores: log p(x), higher = more like the training data. */
    printf("log-likelihood log p(x), 50 importance samples (first %d shown):\n", SHOWN);
    double mnist = anomaly_scores(vae, test, "MNIST digits");
    if (latent_data_find("fashion-mnist", fashion_dir, sizeof fashion_dir, NULL) == LATENT_STATUS_OK) {
        latent_dataset *fashion = load(fashion_dir, "t10k-images-idx3-ubyte.gz");
        double clothes = anomaly_scores(vae, fashion, "Fashion-MNIST");
        printf("Fashion-MNIST images score %.1f nats lower on average\n", mnist - clothes);
        latent_dataset_free(fashion);
    } else {
        printf("Fashion-MNIST not found (%s): no comparison\n", latent_last_error_message());
    }

    latent_dataset_free(few);
    latent_trainer_free(trainer);
    latent_vae_free(vae);
    latent_dataset_free(test);
    latent_dataset_free(train);
    return 0;
}
