/* The Monte-Carlo optimizer on a network's own loss, from C: an autoencoder with a
 * user link (a positive scale on its code) fitted without gradients, parameter offsets, AUROC,
 * and the documented statuses for bad input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

enum { ROWS = 300, D = 4, K = 2 };

static uint64_t state = 0x243F6A8885A308D3ull;
static double uniform(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

/* The link: the code times a positive scale. */
static void scale_link(void *user, const double *params, size_t n, float *values, size_t rows, size_t cols) {
    int *calls = (int *)user;
    (void)n;
    __atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < rows * cols; i++) values[i] *= (float)params[0];
}

int main(void) {
    static float x[ROWS * D];
    /* Points near a 2-D plane in 4-D. */
    for (int r = 0; r < ROWS; r++) {
        double a = 2 * uniform() - 1, b = 2 * uniform() - 1;
        x[r * D + 0] = (float)(a + 0.01 * uniform());
        x[r * D + 1] = (float)(b);
        x[r * D + 2] = (float)(0.5 * a - b);
        x[r * D + 3] = (float)(a + b);
    }
    latent_dataset *ds = NULL;
    EXPECT(latent_dataset_from_buffer(x, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &ds), LATENT_STATUS_OK);
    latent_network_params np = latent_network_params_default();
    np.input_dim = D;
    np.code_units = K;
    np.output_activation = LATENT_ACTIVATION_IDENTITY;
    latent_network *net = NULL;
    EXPECT(latent_network_new(&np, &net), LATENT_STATUS_OK);
    size_t p = 0, w = 99, wl = 99, b = 99;
    EXPECT(latent_network_param_count(net, &p), LATENT_STATUS_OK);
    EXPECT_TRUE(p == D * K + K + K * D + D);
    EXPECT(latent_network_layer_offsets(net, 1, &w, &wl, &b), LATENT_STATUS_OK);
    EXPECT_TRUE(w == D * K + K && wl == K * D && b == w + K * D);
    EXPECT(latent_network_layer_offsets(net, 0, NULL, &wl, NULL), LATENT_STATUS_OK);
    EXPECT_TRUE(wl == D * K);
    EXPECT(latent_network_layer_offsets(net, 2, &w, &wl, &b), LATENT_STATUS_INVALID_ARGUMENT);
    double before = 0;
    EXPECT(latent_network_loss(net, ds, &before), LATENT_STATUS_OK);

    latent_montecarlo_params mp = latent_montecarlo_params_default();
    mp.samples = 100;
    mp.max_iterations = 150;
    mp.seed = 4;
    latent_montecarlo *mc = NULL;
    latent_montecarlo_network_params fp = latent_montecarlo_network_params_default();
    EXPECT_TRUE(fp.link_layer == -1 && fp.runs == 1 && fp.batch_size == 0);
    /* The wrong size: the network alone, but a link asked for. */
    EXPECT(latent_montecarlo_new(&mp, p, &mc), LATENT_STATUS_OK);
    int calls = 0;
    fp.link_layer = 0;
    fp.link_params = 1;
    fp.link = scale_link;
    fp.link_user = &calls;
    fp.runs = 3;
    fp.batch_size = 100;
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_SHAPE_MISMATCH);
    latent_montecarlo_free(mc);
    EXPECT(latent_montecarlo_new(&mp, p + 1, &mc), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_set_prior(mc, p, 1, LATENT_PRIOR_UNIFORM, 0.0, 2.0), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_set_constraint(mc, p, 1, LATENT_CONSTRAINT_POSITIVE, 1e-6, 0.0), LATENT_STATUS_OK);
    fp.link_layer = 2; /* past the output layer (1, which a link may map since ABI 5) */
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_INVALID_ARGUMENT);
    fp.link_layer = 0;
    fp.link2_layer = 0; /* a second link on the first one's layer */
    fp.link2 = scale_link;
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_INVALID_ARGUMENT);
    fp.link2 = NULL; /* a second link's layer without its callback */
    fp.link2_layer = 1;
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_NULL_ARGUMENT);
    fp.link2_layer = -1;
    fp.link = NULL;
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_NULL_ARGUMENT);
    fp.link = scale_link;
    fp.runs = 0;
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_INVALID_ARGUMENT);
    fp.runs = 3;
    EXPECT(latent_montecarlo_fit_network(NULL, net, ds, &fp), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_OK);
    double best[D * K + K + K * D + D + 1];
    EXPECT(latent_montecarlo_best(mc, best, p + 1), LATENT_STATUS_OK);
    double after = latent_montecarlo_best_loss(mc);
    printf("fit_network: loss %.5f -> %.5f (minibatch), link scale %.4f, %d link calls, %llu evaluations\n", before,
           after, best[p], calls, (unsigned long long)latent_montecarlo_evaluations(mc));
    EXPECT_TRUE(after < 0.1 * before && best[p] > 0.0 && calls > 1000);
    /* The network holds the best parameters. */
    float params[D * K + K + K * D + D];
    EXPECT(latent_network_get_params(net, params, p), LATENT_STATUS_OK);
    for (size_t i = 0; i < p; i++) EXPECT_TRUE(params[i] == (float)best[i]);

    /* AUROC */
    double scores[] = {0.1, 0.4, 0.35, 0.8}, auc = 0;
    int32_t labels[] = {0, 0, 1, 1};
    EXPECT(latent_auroc(scores, labels, 4, 1, &auc), LATENT_STATUS_OK);
    EXPECT_TRUE(fabs(auc - 0.75) < 1e-12);
    EXPECT(latent_auroc(scores, labels, 4, 0, &auc), LATENT_STATUS_OK);
    EXPECT_TRUE(fabs(auc - 0.25) < 1e-12);
    EXPECT(latent_auroc(scores, labels, 2, 1, &auc), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_auroc(scores, labels, 0, 1, &auc), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_auroc(NULL, labels, 4, 1, &auc), LATENT_STATUS_NULL_ARGUMENT);
    scores[2] = NAN;
    EXPECT(latent_auroc(scores, labels, 4, 1, &auc), LATENT_STATUS_NON_FINITE);

    latent_montecarlo_free(mc);
    latent_network_free(net);
    latent_dataset_free(ds);
    printf("%d failures\n", failures);
    return failures != 0;
}
