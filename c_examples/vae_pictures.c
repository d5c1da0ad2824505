/* The pictures of a VAE with a 2-D latent space (Kingma & Welling 2014, Fig. 4), as the Keras
 * and matplotlib tutorials draw them: trains a 784-256-[2]-256-784 Bernoulli VAE on MNIST, then
 * writes
 *   - vae_scatter.svg: the posterior means of 2000 test digits, one dot each, coloured by digit;
 *   - vae_manifold.png: the decoded 15 x 15 manifold, latent points at the normal quantiles
 *     Phi^-1((i + 0.5) / 15), each pixel drawn 2 x 2;
 *   - vae_reconstructions.png: 2 bands of 16 test digits over their reconstructions, 3 x 3.
 *
 *   vae_pictures [DATA_DIR] [EPOCHS] [MAX_ROWS] [OUT_DIR]
 *
 * Defaults: 3 epochs on 20000 training rows (0 = all 60000; about 5 s on 2 cores), pictures in
 * the current directory. DATA_DIR holds the MNIST IDX files (images and labels); by default the
 * library's data resolver finds them. */
#include "common.h"

enum { SIDE = 28, PIXELS = SIDE * SIDE, K = 15, SHOW = 32 };

static latent_dataset *load(const char *dir, const char *images, const char *labels) {
    char img[4096], lab[4096];
    latent_dataset *ds = NULL;
    snprintf(img, sizeof img, "%s/%s", dir, images);
    snprintf(lab, sizeof lab, "%s/%s", dir, labels);
    CHECK(latent_dataset_from_idx(img, lab, &ds));
    CHECK(latent_dataset_scale(ds, LATENT_SCALING_DIVIDE_255));
    return ds;
}

/* The first n rows of ds (ds itself when n is 0 or covers it), with their labels. */
static latent_dataset *first_rows(latent_dataset *ds, size_t n) {
    size_t rows = latent_dataset_rows(ds);
    if (n == 0 || n >= rows) return ds;
    float *x = malloc(n * PIXELS * sizeof *x);
    int32_t *y = malloc(rows * sizeof *y);
    if (x == NULL || y == NULL) exit(1);
    latent_dataset *out = NULL;
    CHECK(latent_dataset_copy_rows(ds, 0, n, x, n * PIXELS));
    CHECK(latent_dataset_labels(ds, y, rows));
    CHECK(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, n, PIXELS, &out));
    CHECK(latent_dataset_set_labels(out, y, n));
    free(x);
    free(y);
    latent_dataset_free(ds);
    return out;
}

int main(int argc, char **argv) {
    char found[4096], path[4096];
    const char *dir = argc > 1 ? argv[1] : NULL;
    unsigned epochs = argc > 2 ? (unsigned)atoi(argv[2]) : 3;
    size_t max_rows = argc > 3 ? (size_t)atol(argv[3]) : 20000;
    const char *out_dir = argc > 4 ? argv[4] : ".";
    if (dir == NULL) {
        if (latent_data_find("mnist", found, sizeof found, NULL) != LATENT_STATUS_OK) {
            example_data_missing("vae_pictures", "mnist");
            return 2;
        }
        dir = found;
    }
    latent_dataset *train = first_rows(load(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                                       example_size(max_rows, 100));
    latent_dataset *test = first_rows(load(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
                                      example_size(2000, 50));

    uint32_t hidden[] = {256};
    latent_vae_params vp = latent_vae_params_default();
    vp.input_dim = PIXELS;
    vp.n_encoder = 1;
    vp.encoder_units = hidden;
    vp.latent_dim = 2; /* a plane a person can look at */
    vp.n_decoder = 1;
    vp.decoder_units = hidden;
    vp.hidden_activation = LATENT_ACTIVATION_RELU;
    vp.distribution = LATENT_DISTRIBUTION_BERNOULLI;
    vp.seed = 1;
    latent_vae *vae = NULL;
    CHECK(latent_vae_new(&vp, &vae));
    latent_train_params tp = latent_train_params_default(); /* Adam 1e-3 */
    tp.epochs = (uint32_t)example_size(epochs, 1);
    tp.seed = 2;
    latent_trainer *trainer = NULL;
    CHECK(latent_trainer_new(&tp, &trainer));
    printf("training a 2-D VAE on %zu MNIST images for %u epochs\n", latent_dataset_rows(train), tp.epochs);
    CHECK(latent_trainer_fit_vae(trainer, vae, train, NULL, NULL, NULL));
    latent_elbo e;
    CHECK(latent_vae_elbo(vae, test, 1, 3, &e));
    printf("test -ELBO %.2f nats/image (%zu images)\n", e.neg_elbo, latent_dataset_rows(test));

    /* The latent plane: one dot per test digit at its posterior mean, a colour per label. */
    snprintf(path, sizeof path, "%s/vae_scatter.svg", out_dir);
    CHECK(latent_vae_scatter_svg_write(vae, test, path, "MNIST test digits in the VAE's latent plane"));
    printf("wrote %s (%zu points)\n", path, latent_dataset_rows(test));

    /* The manifold: what the decoder draws across the plane. */
    latent_grid_params gp = latent_grid_params_default();
    gp.scale = 2;
    snprintf(path, sizeof path, "%s/vae_manifold.png", out_dir);
    CHECK(latent_vae_manifold_grid_write(vae, path, K, SIDE, SIDE, &gp));
    printf("wrote %s (%d x %d digits)\n", path, K, K);

    /* Test digits over their reconstructions, 16 a band, each pixel 3 x 3. */
    size_t n = latent_dataset_rows(test) < SHOW ? latent_dataset_rows(test) : SHOW;
    static float x[SHOW * PIXELS], r[SHOW * PIXELS];
    CHECK(latent_dataset_copy_rows(test, 0, n, x, n * PIXELS));
    CHECK(latent_vae_reconstruct(vae, x, n, PIXELS, r, n * PIXELS));
    gp.scale = 3;
    gp.cols = 16;
    snprintf(path, sizeof path, "%s/vae_reconstructions.png", out_dir);
    CHECK(latent_image_pairs_write_ex(path, x, r, n, SIDE, SIDE, &gp));
    printf("wrote %s\n", path);

    latent_trainer_free(trainer);
    latent_vae_free(vae);
    latent_dataset_free(test);
    latent_dataset_free(train);
    return 0;
}
