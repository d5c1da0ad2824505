/* The Monte-Carlo optimizer's C API: every documented status for bad input (and never a
 * crash), and a small optimization with a custom proposal and intervals through C. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

/* (x0 - 1)^2 + 10 (x1 + 2)^2 + (x2 - 3)^2; x2 is fixed at 3 in the test. */
static double quad(void *user, const double *w, size_t n) {
    (void)user;
    (void)n;
    return (w[0] - 1.0) * (w[0] - 1.0) + 10.0 * (w[1] + 2.0) * (w[1] + 2.0) + (w[2] - 3.0) * (w[2] - 3.0);
}

/* A logistic proposal with the given spread, as a quantile function. */
static double logistic(void *user, size_t index, double center, double scale, double u) {
    int *calls = (int *)user;
    (void)index;
    (*calls)++;
    return center + scale * 0.5513288954217921 * log(u / (1.0 - u));
}

static double always_nan(void *user, const double *w, size_t n) {
    (void)user;
    (void)w;
    (void)n;
    return NAN;
}

int main(void) {
    latent_montecarlo_params p = latent_montecarlo_params_default();
    latent_montecarlo *mc = (latent_montecarlo *)&p; /* a non-NULL poison value: must become NULL */
    double best[3], lo[3], hi[3], start[3] = {0.0, 0.0, 3.0}, hist[1];
    int quantile_calls = 0;

    /* Defaults */
    EXPECT_TRUE(p.init_samples == 1000 && p.samples == 100 && p.elite == 20 && p.threads == 0);
    EXPECT_TRUE(p.tolerance == 1e-8 && p.patience == 50 && p.restart_fraction == 0.1 && p.full_hessian_max == 40);

    /* Construction */
    EXPECT(latent_montecarlo_new(NULL, 3, &mc), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_new(&p, 3, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_new(&p, 0, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(mc == NULL);
    MSG_HAS("parameters is 0");
    p.elite = 1000;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("elite");
    p.elite = 20;
    p.shrink = 1.0;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("shrink");
    p.shrink = 0.5;
    p.threads = 2;
    p.seed = 9;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_OK);
    EXPECT_TRUE(latent_montecarlo_n_params(mc) == 3);

    /* NULL handles */
    EXPECT(latent_montecarlo_minimize(NULL, quad, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_minimize(mc, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    MSG_HAS("loss");
    EXPECT(latent_montecarlo_set_prior(NULL, 0, 1, LATENT_PRIOR_UNIFORM, 0.0, 1.0), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_best(NULL, best, 3), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT_TRUE(latent_montecarlo_n_params(NULL) == 0 && latent_montecarlo_evaluations(NULL) == 0);
    EXPECT_TRUE(isnan(latent_montecarlo_best_loss(NULL)) && latent_montecarlo_converged(NULL) == 0);
    latent_montecarlo_free(NULL);

    /* Setters: bad values, ranges and kinds */
    EXPECT(latent_montecarlo_set_prior(mc, 0, 1, LATENT_PRIOR_UNIFORM, 1.0, 1.0), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("low < high");
    EXPECT(latent_montecarlo_set_prior(mc, 0, 1, LATENT_PRIOR_NORMAL, 0.0, -1.0), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("sd > 0");
    EXPECT(latent_montecarlo_set_prior(mc, 0, 1, LATENT_PRIOR_NORMAL, NAN, 1.0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_prior(mc, 0, 1, 7, 0.0, 1.0), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("unknown prior");
    EXPECT(latent_montecarlo_set_prior(mc, 2, 2, LATENT_PRIOR_UNIFORM, 0.0, 1.0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_prior(mc, 0, 0, LATENT_PRIOR_UNIFORM, 0.0, 1.0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_prior(mc, SIZE_MAX, 2, LATENT_PRIOR_UNIFORM, 0.0, 1.0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_constraint(mc, 0, 1, LATENT_CONSTRAINT_INTERVAL, 2.0, 1.0), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("low < high");
    EXPECT(latent_montecarlo_set_constraint(mc, 0, 1, LATENT_CONSTRAINT_POSITIVE, -1.0, 0.0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_constraint(mc, 0, 1, LATENT_CONSTRAINT_FIXED, INFINITY, 0.0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_constraint(mc, 0, 1, 9, 0.0, 0.0), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_proposal(mc, 0, 1, LATENT_PROPOSAL_CUSTOM, NULL, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_set_proposal(mc, 0, 1, 5, NULL, NULL), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_set_start(mc, start, 2), LATENT_STATUS_SHAPE_MISMATCH);
    EXPECT(latent_montecarlo_set_start(mc, NULL, 3), LATENT_STATUS_NULL_ARGUMENT);

    /* Before a run */
    EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 0.9, 1.0, 0, lo, hi, 3), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("no optimum yet");

    /* All candidates NaN */
    EXPECT(latent_montecarlo_minimize(mc, always_nan, NULL), LATENT_STATUS_NON_FINITE);

    /* A run with a custom proposal and a fixed parameter */
    EXPECT(latent_montecarlo_set_prior(mc, 0, 3, LATENT_PRIOR_UNIFORM, -5.0, 5.0), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_set_proposal(mc, 0, 2, LATENT_PROPOSAL_CUSTOM, logistic, &quantile_calls), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_set_constraint(mc, 2, 1, LATENT_CONSTRAINT_FIXED, 3.0, 0.0), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_OK);
    EXPECT_TRUE(quantile_calls > 0);
    EXPECT(latent_montecarlo_best(mc, best, 2), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
    EXPECT_TRUE(fabs(best[0] - 1.0) < 1e-4 && fabs(best[1] + 2.0) < 1e-4 && best[2] == 3.0);
    EXPECT_TRUE(latent_montecarlo_best_loss(mc) < 1e-8 && latent_montecarlo_converged(mc) == 1);
    EXPECT_TRUE(latent_montecarlo_iterations(mc) > 1);
    EXPECT(latent_montecarlo_history(mc, hist, 1), LATENT_STATUS_BUFFER_TOO_SMALL);

    /* Intervals: bad level, temperature and buffers */
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 1.5, 1.0, 0, lo, hi, 3), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("level");
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, NAN, 1.0, 0, lo, hi, 3), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 0.9, 0.0, 0, lo, hi, 3), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 0.9, 1.0, 10, lo, hi, 3), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 0.9, -1.0, 0, lo, hi, 3), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 0.9, 1.0, 0, lo, NULL, 3), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 0.9, 1.0, 0, lo, hi, 2), LATENT_STATUS_BUFFER_TOO_SMALL);
    EXPECT(latent_montecarlo_intervals(mc, NULL, NULL, 0.9, 1.0, 0, lo, hi, 3), LATENT_STATUS_NULL_ARGUMENT);
    /* T = 2: the likelihood exp(-L / 2) is N(1, 1) in x0 and N(-2, 0.1) in x1. */
    EXPECT(latent_montecarlo_intervals(mc, quad, NULL, 0.95, 2.0, 0, lo, hi, 3), LATENT_STATUS_OK);
    EXPECT_TRUE(fabs((hi[0] - lo[0]) / 2.0 - 1.959964) < 0.01);
    EXPECT_TRUE(fabs((hi[1] - lo[1]) / 2.0 - 1.959964 * sqrt(0.1)) < 0.01);
    EXPECT_TRUE(lo[2] == 3.0 && hi[2] == 3.0);

    /* A later run continues from the best; set_start moves it */
    EXPECT(latent_montecarlo_set_start(mc, start, 3), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
    EXPECT_TRUE(fabs(best[0] - 1.0) < 1e-4 && best[2] == 3.0);

    latent_montecarlo_free(mc);
    printf("%d failures\n", failures);
    return failures != 0;
}
