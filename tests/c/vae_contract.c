/* The variational autoencoder's C API: every documented status for bad input (and never a
 * crash), training through latent_trainer_fit_vae, and save/load through C. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

enum { D = 8, J = 2, ROWS = 256, EPOCHS = 40 };

typedef struct {
    int epoch_ends, cancel_at;
    double first, last; /* reconstruction + KL of the first and last epoch */
} log_t;

static int32_t on_progress(void *user, const latent_progress *p) {
    log_t *lg = (log_t *)user;
    if (p->event != LATENT_EVENT_EPOCH_END) return 0;
    if (lg->epoch_ends == 0) lg->first = p->loss + p->penalty;
    lg->last = p->loss + p->penalty;
    lg->epoch_ends++;
    return lg->cancel_at > 0 && lg->epoch_ends >= lg->cancel_at;
}

int main(int argc, char **argv) {
    const char *tmp = argc > 1 ? argv[1] : ".";
    char path[4096], netpath[4096];
    uint32_t hidden[] = {6};
    latent_vae_params p = latent_vae_params_default();
    latent_vae *vae = (latent_vae *)&p; /* a non-NULL poison value: must become NULL */

    /* Defaults */
    EXPECT_TRUE(p.hidden_activation == LATENT_ACTIVATION_RELU && p.pzx_activation == LATENT_ACTIVATION_IDENTITY);
    EXPECT_TRUE(p.distribution == LATENT_DISTRIBUTION_BERNOULLI && p.n_parts == 0 && p.parts == NULL);
    EXPECT_TRUE(p.num_samples == 1 && p.beta == 1.0f && p.kl_warmup_steps == 0);
    EXPECT_TRUE(p.constant_posterior_variance == 0 && p.posterior_log_variance == 0.0f);
    EXPECT_TRUE(p.init == LATENT_INIT_AUTO && p.seed == 0);

    /* Construction */
    EXPECT(latent_vae_new(NULL, &vae), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_new(&p, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT); /* input_dim 0 */
    EXPECT_TRUE(vae == NULL);
    MSG_HAS("input_dim");
    p.input_dim = D;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("latent_dim");
    p.latent_dim = J;
    p.n_encoder = 1;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_NULL_ARGUMENT); /* encoder_units NULL */
    p.encoder_units = hidden;
    p.n_decoder = 1;
    p.decoder_units = hidden;
    latent_activation bad_acts[] = {42};
    p.encoder_activations = bad_acts;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("encoder layer 0");
    p.encoder_activations = NULL;
    p.distribution = 5;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("distribution");
    p.distribution = -1;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.distribution = LATENT_DISTRIBUTION_GAUSSIAN;
    p.distribution_activation = 99;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.distribution = LATENT_DISTRIBUTION_BERNOULLI; /* its activation is ignored: always sigmoid */
    p.pzx_activation = 8;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("pzx_activation");
    p.pzx_activation = LATENT_ACTIVATION_IDENTITY;
    p.hidden_activation = -3;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.hidden_activation = LATENT_ACTIVATION_TANH;
    p.num_samples = 0;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("samples");
    p.num_samples = 1;
    p.beta = NAN;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.beta = -1.0f;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("beta");
    p.beta = 1.0f;
    p.constant_posterior_variance = 2;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.constant_posterior_variance = 1;
    p.posterior_log_variance = 31.0f;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.posterior_log_variance = NAN;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.constant_posterior_variance = 0; /* the log-variance is ignored again */
    p.init = 77;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    p.init = LATENT_INIT_AUTO;
    p.n_parts = 2;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_NULL_ARGUMENT); /* parts NULL */
    latent_vae_part parts[2] = {{4, LATENT_DISTRIBUTION_GAUSSIAN, LATENT_ACTIVATION_IDENTITY},
                                {3, LATENT_DISTRIBUTION_BERNOULLI, 123}};
    p.parts = parts;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT); /* 7 columns of 8 */
    MSG_HAS("cover 7 columns");
    parts[1].size = 0;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    parts[1].size = 4;
    parts[0].distribution = 9;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("parts[0]");
    parts[0].distribution = LATENT_DISTRIBUTION_GAUSSIAN_GLOBAL;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_OK); /* a composite VAE */
    EXPECT_TRUE(vae != NULL);
    EXPECT_TRUE(strcmp(latent_last_error_message(), "") == 0);
    size_t composite_params = 0;
    EXPECT(latent_vae_param_count(vae, &composite_params), LATENT_STATUS_OK);
    /* 8-6, head 6-4, 2-6, 6-8 outputs (one per column), one global log-variance. */
    EXPECT_TRUE(composite_params == (8 * 6 + 6) + (6 * 4 + 4) + (2 * 6 + 6) + (6 * 8 + 8) + 1);
    latent_vae_free(vae);
    p.n_parts = 0;
    p.parts = NULL;
    p.seed = 5;
    EXPECT(latent_vae_new(&p, &vae), LATENT_STATUS_OK); /* Bernoulli, 8 -> 6 -> [2] -> 6 -> 8 */
    EXPECT_TRUE(latent_vae_input_dim(vae) == D && latent_vae_latent_dim(vae) == J);
    EXPECT_TRUE(latent_vae_input_dim(NULL) == 0 && latent_vae_latent_dim(NULL) == 0);

    /* Parameters, threads, description */
    size_t count = 0;
    EXPECT(latent_vae_param_count(vae, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_param_count(NULL, &count), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_param_count(vae, &count), LATENT_STATUS_OK);
    EXPECT_TRUE(count == (8 * 6 + 6) + (6 * 4 + 4) + (2 * 6 + 6) + (6 * 8 + 8));
    float params[256], one[1] = {0};
    EXPECT(latent_vae_get_params(vae, params, count - 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_vae_get_params(vae, params, 256), LATENT_STATUS_OK);
    EXPECT(latent_vae_set_params(vae, one, 1), LATENT_STATUS_SHAPE_MISMATCH);
    params[3] = INFINITY;
    EXPECT(latent_vae_set_params(vae, params, count), LATENT_STATUS_NON_FINITE);
    params[3] = 0.0f;
    EXPECT(latent_vae_set_threads(vae, 5000), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_set_threads(vae, 1), LATENT_STATUS_OK);
    char desc[2048], small[8];
    size_t needed = 0;
    EXPECT(latent_vae_describe(vae, small, sizeof small, &needed), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT_TRUE(needed > sizeof small && strlen(small) == sizeof small - 1);
    EXPECT(latent_vae_describe(vae, desc, sizeof desc, NULL), LATENT_STATUS_OK);
    EXPECT_TRUE(strstr(desc, "variational autoencoder") && strstr(desc, "bernoulli"));

    /* Inference on two rows */
    float x[2 * D] = {1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1};
    float mean[2 * J], logvar[2 * J], z[2 * 3 * J], out[2 * D], zs[5 * J], xs[5 * D];
    double lp[2], pr[2], ll[2];
    EXPECT(latent_vae_encode(NULL, x, 2, D, mean, logvar, 4), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_encode(vae, NULL, 2, D, mean, logvar, 4), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_encode(vae, x, 2, D, NULL, logvar, 4), LATENT_STATUS_NULL_ARGUMENT);
    /* Zero rows: OK with nothing written. */
    EXPECT(latent_vae_encode(vae, x, 0, D, mean, logvar, 4), LATENT_STATUS_OK);
    EXPECT(latent_vae_encode(vae, x, 2, 0, mean, logvar, 4), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_encode(vae, x, SIZE_MAX / 2, D, mean, logvar, 4), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_encode(vae, x, 2, D - 1, mean, logvar, 4), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_vae_encode(vae, x, 2, D, mean, logvar, 3), LATENT_STATUS_BUFFER_TOO_SMALL);
    x[11] = NAN;
    EXPECT(latent_vae_encode(vae, x, 2, D, mean, logvar, 4), LATENT_STATUS_NON_FINITE);
    MSG_HAS("row 1, column 3");
    EXPECT(latent_vae_log_likelihood(vae, x, 2, D, 4, 1, ll, 2), LATENT_STATUS_NON_FINITE);
    x[11] = 1.0f;
    EXPECT(latent_vae_encode(vae, x, 2, D, mean, NULL, 4), LATENT_STATUS_OK);
    EXPECT(latent_vae_encode(vae, x, 2, D, mean, logvar, 4), LATENT_STATUS_OK);
    EXPECT_TRUE(isfinite(mean[3]) && isfinite(logvar[3]));

    EXPECT(latent_vae_sample_z(vae, x, 2, D, 0, 1, z, 12), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_sample_z(vae, x, 2, D, 3, 1, z, 11), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_vae_sample_z(vae, x, 2, D, 3, 1, NULL, 12), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_sample_z(vae, x, 2, D, 3, 1, z, 12), LATENT_STATUS_OK);
    {
        /* Row 1's draws are z rows 3..5: scattered around its posterior mean. */
        float z2[12];
        EXPECT(latent_vae_sample_z(vae, x, 2, D, 3, 1, z2, 12), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(z, z2, sizeof z2) == 0); /* the same seed repeats exactly */
        double sd = exp(0.5 * logvar[2]);
        EXPECT_TRUE(fabs(z[3 * J] - mean[J]) < 6 * sd && fabs(z[0] - mean[0]) < 6 * exp(0.5 * logvar[0]));
        EXPECT(latent_vae_sample_z(vae, x, 2, D, 3, 2, z2, 12), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(z, z2, sizeof z2) != 0);
    }

    EXPECT(latent_vae_generate_mean(vae, mean, 2, D, out, 16), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_vae_generate_mean(vae, mean, 2, J, out, 15), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_vae_generate_mean(vae, mean, 2, J, out, 16), LATENT_STATUS_OK);
    EXPECT_TRUE(out[0] > 0 && out[0] < 1 && out[15] > 0 && out[15] < 1); /* probabilities */
    float rec[2 * D];
    EXPECT(latent_vae_reconstruct(vae, x, 2, D, rec, 16), LATENT_STATUS_OK);
    EXPECT_TRUE(memcmp(rec, out, sizeof rec) == 0); /* the mean of p(x|z) at the posterior mean */
    EXPECT(latent_vae_generate_random(vae, mean, 2, J, 3, out, 16), LATENT_STATUS_OK);
    for (int i = 0; i < 16; i++) EXPECT_TRUE(out[i] == 0.0f || out[i] == 1.0f); /* Bernoulli draws */
    mean[1] = INFINITY;
    EXPECT(latent_vae_generate_random(vae, mean, 2, J, 3, out, 16), LATENT_STATUS_NON_FINITE);
    mean[1] = 0.0f;

    EXPECT(latent_vae_sample_prior(vae, 0, 1, zs, 10), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_sample_prior(vae, 5, 1, zs, 9), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_vae_sample_prior(vae, 5, 1, NULL, 10), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_sample_prior(NULL, 5, 1, zs, 10), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_sample_prior(vae, 5, 1, zs, 10), LATENT_STATUS_OK);
    EXPECT_TRUE(isfinite(zs[9]) && zs[0] != zs[1]);

    EXPECT(latent_vae_reconstruction_log_probability(vae, x, 2, D, 0, 1, lp, 2), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_reconstruction_log_probability(vae, x, 2, D, 8, 1, lp, 1), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_vae_reconstruction_log_probability(vae, x, 2, D, 8, 1, lp, 2), LATENT_STATUS_OK);
    EXPECT(latent_vae_reconstruction_probability(vae, x, 2, D, 8, 1, pr, 2), LATENT_STATUS_OK);
    EXPECT_TRUE(lp[0] < 0 && lp[0] > -8 * 20 && fabs(pr[1] - exp(lp[1])) <= 1e-12 * pr[1]);
    EXPECT(latent_vae_log_likelihood(vae, x, 2, 3, 8, 1, ll, 2), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_vae_log_likelihood(vae, x, 2, D, 8, 1, ll, 2), LATENT_STATUS_OK);
    EXPECT_TRUE(isfinite(ll[0]) && isfinite(ll[1]) && ll[0] < 0);

    EXPECT(latent_vae_interpolate(vae, x, x + D, D, 1, zs, xs, 40), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_interpolate(vae, x, x + D, D - 1, 5, zs, xs, 40), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_vae_interpolate(vae, x, NULL, D, 5, zs, xs, 40), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_interpolate(vae, x, x + D, D, 5, zs, xs, 39), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_vae_interpolate(vae, x, x + D, D, 5, NULL, xs, 40), LATENT_STATUS_OK);
    EXPECT(latent_vae_interpolate(vae, x, x + D, D, 5, zs, xs, 40), LATENT_STATUS_OK);
    EXPECT_TRUE(zs[0] == mean[0] && zs[4 * J + 1] == mean[J + 1]); /* the ends are the means */

    /* Datasets: ELBO and IWAE bound */
    float data[ROWS * D];
    uint32_t lcg = 777;
    for (int i = 0; i < ROWS; i++) {
        int proto = i % 4; /* four binary prototypes, 5% of the bits flipped */
        for (int j = 0; j < D; j++) {
            lcg = lcg * 1664525u + 1013904223u;
            int bit = ((j * (proto + 1)) / 3 + proto) % 2;
            if ((lcg >> 8) % 100 < 5) bit = !bit;
            data[i * D + j] = (float)bit;
        }
    }
    latent_dataset *ds = NULL, *narrow = NULL;
    EXPECT(latent_dataset_from_buffer(data, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &ds), LATENT_STATUS_OK);
    EXPECT(latent_dataset_from_buffer(data, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D - 1, &narrow),
           LATENT_STATUS_OK);
    latent_elbo e;
    double bound = 0;
    EXPECT(latent_vae_elbo(vae, ds, 1, 1, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_elbo(vae, NULL, 1, 1, &e), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_elbo(vae, narrow, 1, 1, &e), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_vae_elbo(vae, ds, 0, 1, &e), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_elbo(vae, ds, 4, 1, &e), LATENT_STATUS_OK);
    EXPECT_TRUE(e.kl >= 0 && e.reconstruction > 0 && fabs(e.neg_elbo - (e.reconstruction + e.kl)) < 1e-9);
    EXPECT(latent_vae_iwae_bound(vae, ds, 8, 1, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_iwae_bound(vae, narrow, 8, 1, &bound), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_vae_iwae_bound(vae, ds, 8, 1, &bound), LATENT_STATUS_OK);
    EXPECT_TRUE(isfinite(bound) && bound < 0);

    /* Dataset variants: the same values as the row calls on the same rows. */
    {
        static double per_ds[ROWS], per_rows[ROWS];
        static float m_ds[ROWS * J], m_rows[ROWS * J];
        EXPECT(latent_vae_log_likelihood_dataset(vae, NULL, 8, 1, per_ds, ROWS), LATENT_STATUS_NULL_ARGUMENT);
        EXPECT(latent_vae_log_likelihood_dataset(vae, ds, 8, 1, NULL, ROWS), LATENT_STATUS_NULL_ARGUMENT);
        EXPECT(latent_vae_log_likelihood_dataset(vae, ds, 8, 1, per_ds, ROWS - 1), LATENT_STATUS_BUFFER_TOO_SMALL);
        EXPECT(latent_vae_log_likelihood_dataset(vae, narrow, 8, 1, per_ds, ROWS), LATENT_STATUS_SHAPE_MISMATCH);
        EXPECT(latent_vae_log_likelihood_dataset(vae, ds, 0, 1, per_ds, ROWS), LATENT_STATUS_INVALID_ARGUMENT);
        EXPECT(latent_vae_log_likelihood_dataset(vae, ds, 8, 1, per_ds, ROWS), LATENT_STATUS_OK);
        EXPECT(latent_vae_log_likelihood(vae, data, ROWS, D, 8, 1, per_rows, ROWS), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(per_ds, per_rows, sizeof per_ds) == 0);
        EXPECT(latent_vae_reconstruction_log_probability_dataset(vae, ds, 4, 2, per_ds, ROWS), LATENT_STATUS_OK);
        EXPECT(latent_vae_reconstruction_log_probability(vae, data, ROWS, D, 4, 2, per_rows, ROWS), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(per_ds, per_rows, sizeof per_ds) == 0);
        EXPECT(latent_vae_encode_dataset(vae, ds, m_ds, NULL, ROWS * J - 1), LATENT_STATUS_BUFFER_TOO_SMALL);
        EXPECT(latent_vae_encode_dataset(vae, narrow, m_ds, NULL, ROWS * J), LATENT_STATUS_SHAPE_MISMATCH);
        EXPECT(latent_vae_encode_dataset(vae, ds, m_ds, NULL, ROWS * J), LATENT_STATUS_OK);
        EXPECT(latent_vae_encode(vae, data, ROWS, D, m_rows, NULL, ROWS * J), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(m_ds, m_rows, sizeof m_ds) == 0);
    }

    /* Training */
    latent_train_params tp = latent_train_params_default();
    tp.epochs = EPOCHS;
    tp.batch_size = 32;
    tp.learning_rate = 0.02;
    tp.threads = 1;
    tp.seed = 3;
    latent_trainer *tr = NULL;
    EXPECT(latent_trainer_new(&tp, &tr), LATENT_STATUS_OK);
    EXPECT(latent_trainer_fit_vae(tr, NULL, ds, NULL, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_trainer_fit_vae(NULL, vae, ds, NULL, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_trainer_fit_vae(tr, vae, NULL, NULL, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_trainer_fit_vae(tr, vae, narrow, NULL, NULL, NULL), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_trainer_fit_vae(tr, vae, ds, narrow, NULL, NULL), LATENT_STATUS_SHAPE_MISMATCH);
    log_t cancel = {0, 2, 0, 0};
    EXPECT(latent_trainer_fit_vae(tr, vae, ds, NULL, on_progress, &cancel), LATENT_STATUS_CANCELLED);
    EXPECT_TRUE(cancel.epoch_ends == 2);
    EXPECT(latent_vae_encode(vae, x, 2, D, mean, logvar, 4), LATENT_STATUS_OK); /* still usable */
    EXPECT(latent_trainer_reset(tr), LATENT_STATUS_OK);
    log_t lg = {0, 0, 0, 0};
    EXPECT(latent_trainer_fit_vae(tr, vae, ds, ds, on_progress, &lg), LATENT_STATUS_OK);
    latent_epoch_record hist[EPOCHS];
    size_t n_hist = 0;
    EXPECT(latent_trainer_history(tr, hist, EPOCHS, &n_hist), LATENT_STATUS_OK);
    EXPECT_TRUE(n_hist == EPOCHS && lg.epoch_ends == EPOCHS);
    double first = hist[0].train_loss + hist[0].train_penalty;
    double last = hist[EPOCHS - 1].train_loss + hist[EPOCHS - 1].train_penalty;
    printf("trained: -ELBO per example %.3f -> %.3f (validation %.3f), KL %.3f\n", first, last,
           hist[EPOCHS - 1].valid_loss, hist[EPOCHS - 1].train_penalty);
    EXPECT_TRUE(last < first - 1.0 && last < 0.75 * D * log(2.0)); /* well below 8 coin flips (the data hold ~3 nats) */
    EXPECT_TRUE(hist[EPOCHS - 1].train_penalty > 0 && isfinite(hist[EPOCHS - 1].valid_loss));
    EXPECT_TRUE(fabs(lg.last - last) < 1e-12 && fabs(lg.first - first) < 1e-12);
    latent_elbo after;
    EXPECT(latent_vae_elbo(vae, ds, 4, 1, &after), LATENT_STATUS_OK);
    EXPECT_TRUE(after.neg_elbo < e.neg_elbo - 1.0);

    /* Save and load through C: the same posterior, bit for bit */
    latent_vae *loaded = (latent_vae *)&p, *copy = NULL;
    float mean2[2 * J], logvar2[2 * J];
    snprintf(path, sizeof path, "%s/vae.latent", tmp);
    EXPECT(latent_vae_save(vae, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_save(vae, "/nonexistent-dir/vae.latent"), LATENT_STATUS_IO);
    EXPECT(latent_vae_save(vae, path), LATENT_STATUS_OK);
    EXPECT(latent_vae_load("/nonexistent/vae.latent", &loaded), LATENT_STATUS_IO);
    EXPECT_TRUE(loaded == NULL);
    EXPECT(latent_vae_load(path, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_load(path, &loaded), LATENT_STATUS_OK);
    EXPECT(latent_vae_encode(vae, x, 2, D, mean, logvar, 4), LATENT_STATUS_OK);
    EXPECT(latent_vae_encode(loaded, x, 2, D, mean2, logvar2, 4), LATENT_STATUS_OK);
    EXPECT_TRUE(memcmp(mean, mean2, sizeof mean) == 0 && memcmp(logvar, logvar2, sizeof logvar) == 0);
    char desc2[2048];
    EXPECT(latent_vae_describe(vae, desc, sizeof desc, NULL), LATENT_STATUS_OK);
    EXPECT(latent_vae_describe(loaded, desc2, sizeof desc2, NULL), LATENT_STATUS_OK);
    EXPECT_TRUE(strcmp(desc, desc2) == 0); /* steps trained included */
    EXPECT(latent_vae_clone(vae, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_vae_clone(vae, &copy), LATENT_STATUS_OK);
    EXPECT(latent_vae_encode(copy, x, 2, D, mean2, NULL, 4), LATENT_STATUS_OK);
    EXPECT_TRUE(memcmp(mean, mean2, sizeof mean) == 0);

    /* Each kind of file is refused by the other kind's loader */
    latent_network_params np = latent_network_params_default();
    latent_network *net = NULL, *wrong = (latent_network *)&p;
    np.input_dim = D;
    np.code_units = J;
    EXPECT(latent_network_new(&np, &net), LATENT_STATUS_OK);
    snprintf(netpath, sizeof netpath, "%s/net.latent", tmp);
    EXPECT(latent_network_save(net, netpath), LATENT_STATUS_OK);
    latent_vae_free(loaded); /* the failed load below sets the handle to NULL */
    loaded = NULL;
    EXPECT(latent_vae_load(netpath, &loaded), LATENT_STATUS_BAD_FORMAT);
    MSG_HAS("latent_network_load");
    EXPECT_TRUE(loaded == NULL);
    EXPECT(latent_network_load(path, &wrong), LATENT_STATUS_BAD_FORMAT);
    MSG_HAS("latent_vae_load");
    EXPECT_TRUE(wrong == NULL);

    /* A VAE trained with the MSE loss has no probabilities */
    latent_vae_params mp = p;
    latent_vae *mse = NULL;
    mp.distribution = LATENT_DISTRIBUTION_MSE;
    mp.distribution_activation = LATENT_ACTIVATION_SIGMOID;
    EXPECT(latent_vae_new(&mp, &mse), LATENT_STATUS_OK);
    EXPECT(latent_vae_reconstruction_log_probability(mse, x, 2, D, 4, 1, lp, 2), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("MSE");
    EXPECT(latent_vae_reconstruction_probability(mse, x, 2, D, 4, 1, pr, 2), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_log_likelihood(mse, x, 2, D, 4, 1, ll, 2), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_iwae_bound(mse, ds, 4, 1, &bound), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_vae_elbo(mse, ds, 1, 1, &e), LATENT_STATUS_OK); /* the loss still trains and scores */
    EXPECT(latent_vae_generate_mean(mse, zs, 2, J, out, 16), LATENT_STATUS_OK);

    latent_vae_free(mse);
    latent_network_free(net);
    latent_vae_free(copy);
    latent_vae_free(loaded);
    latent_trainer_free(tr);
    latent_dataset_free(narrow);
    latent_dataset_free(ds);
    latent_vae_free(vae);
    latent_vae_free(NULL);
    printf("%d failures\n", failures);
    return failures != 0;
}
