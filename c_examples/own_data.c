/* Trains an autoencoder on an in-memory array and flags the most anomalous rows.
 *
 * The data: 2,000 points on a noisy 2-D plane embedded in 8 dimensions, plus 10 points off it.
 * An autoencoder with a 2-unit code learns the plane; the off-plane points reconstruct worst. */
#include <math.h>

#include "common.h"

#define ROWS 2010
#define COLS 8
#define OUTLIERS 10

static double uniform(uint64_t *s) { /* xorshift64*, enough for an example */
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

int main(void) {
    static double data[ROWS * COLS]; /* column-major doubles, as R or Julia would hand them over */
    uint64_t seed = 88172645463325252ull;
    for (size_t i = 0; i < ROWS; i++) {
        double u = uniform(&seed) * 2 - 1, v = uniform(&seed) * 2 - 1;
        for (size_t j = 0; j < COLS; j++) {
            double x = 0.6 * u * cos((double)j) + 0.6 * v * sin(2.0 * (double)j) + 0.02 * (uniform(&seed) - 0.5);
            if (i >= ROWS - OUTLIERS) x = uniform(&seed) * 2 - 1; /* off the plane */
            data[j * ROWS + i] = x;
        }
    }
    latent_dataset *ds = NULL;
    CHECK(latent_dataset_from_buffer(data, LATENT_DTYPE_F64, LATENT_LAYOUT_COL_MAJOR, ROWS, COLS, &ds));

    uint32_t hidden[] = {16};
    latent_network_params np = latent_network_params_default();
    np.input_dim = COLS;
    np.n_encoder = 1;
    np.encoder_units = hidden;
    np.hidden_activation = LATENT_ACTIVATION_TANH;
    np.code_units = 2;
    np.output_activation = LATENT_ACTIVATION_IDENTITY;
    np.loss = LATENT_LOSS_MSE;
    np.tied_weights = 1;
    np.seed = 3;
    latent_network *net = NULL;
    CHECK(latent_network_new(&np, &net));

    latent_train_params tp = latent_train_params_default();
    tp.epochs = (uint32_t)example_size(60, 5); /* 5: a quick run (common.h) */
    tp.batch_size = 32;
    tp.learning_rate = 3e-3;
    tp.threads = 1;
    latent_trainer *tr = NULL;
    CHECK(latent_trainer_new(&tp, &tr));
    CHECK(latent_trainer_fit(tr, net, ds, NULL, NULL, NULL));
    latent_epoch_record hist[60];
    size_t epochs = 0;
    CHECK(latent_trainer_history(tr, hist, 60, &epochs));
    printf("trained %zu epochs: loss %.5f -> %.5f\n", epochs, hist[0].train_loss, hist[epochs - 1].train_loss);

    static double score[ROWS];
    CHECK(latent_network_reconstruction_error_dataset(net, ds, score, ROWS));
    /* The OUTLIERS highest scores, by selection. */
    int flagged_outliers = 0;
    printf("most anomalous rows:");
    for (int k = 0; k < OUTLIERS; k++) {
        size_t best = 0;
        for (size_t i = 1; i < ROWS; i++)
            if (score[i] > score[best]) best = i;
        printf(" %zu", best);
        flagged_outliers += best >= ROWS - OUTLIERS;
        score[best] = -1.0;
    }
    printf("\n%d of the %d planted outliers are among them\n", flagged_outliers, OUTLIERS);

    latent_trainer_free(tr);
    latent_network_free(net);
    latent_dataset_free(ds);
    return flagged_outliers >= OUTLIERS - 1 ? 0 : 1;
}
