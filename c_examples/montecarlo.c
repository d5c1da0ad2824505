/* Gradient-free Monte-Carlo optimization (KernelML-style) of a nonlinear model, with weak
 * confidence intervals: fits y = A exp(-k t) + c to 60 noisy points, with the decay rate k
 * constrained positive, by calling a plain C loss function (the sum of squared residuals) from
 * the library's threads. Prints the best parameters, the loss, and 95% intervals.
 *
 *   montecarlo [THREADS]
 *
 * THREADS defaults to 0 (all cores); the result is the same for any value. */
#include <math.h>

#include "common.h"

enum { N = 60, P = 3 };

typedef struct {
    double t[N], y[N];
} data_t;

/* The loss: called concurrently from several threads, so it only reads `user`. */
static double sse(void *user, const double *w, size_t n) {
    const data_t *d = (const data_t *)user;
    double s = 0.0;
    size_t i;
    (void)n;
    for (i = 0; i < N; i++) {
        double r = d->y[i] - (w[0] * exp(-w[1] * d->t[i]) + w[2]);
        s += r * r;
    }
    return s;
}

/* A small deterministic generator for the example's noise: N(0, 1) by Box-Muller. */
static unsigned long long state = 88172645463325252ULL;
static double uniform(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return ((double)(state >> 11) + 0.5) / 9007199254740992.0;
}
static double normal(void) { return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform()); }

int main(int argc, char **argv) {
    static const char *names[P] = {"A", "k", "c"};
    const double truth[P] = {2.0, 0.7, 0.5}, sigma = 0.05;
    data_t d;
    double best[P], lower[P], upper[P];
    size_t i;
    latent_montecarlo *mc = NULL;
    latent_montecarlo_params p = latent_montecarlo_params_default();

    for (i = 0; i < N; i++) {
        d.t[i] = 8.0 * (double)i / (N - 1);
        d.y[i] = truth[0] * exp(-truth[1] * d.t[i]) + truth[2] + sigma * normal();
    }
    p.threads = argc > 1 ? (uint32_t)atoi(argv[1]) : 0;
    p.seed = 42;
    CHECK(latent_montecarlo_new(&p, P, &mc));
    /* Priors: A and c around 0..5, k around 0..3 and kept positive (KernelML's clip to 1e-6). */
    CHECK(latent_montecarlo_set_prior(mc, 0, P, LATENT_PRIOR_UNIFORM, 0.0, 5.0));
    CHECK(latent_montecarlo_set_prior(mc, 1, 1, LATENT_PRIOR_UNIFORM, 0.0, 3.0));
    CHECK(latent_montecarlo_set_constraint(mc, 1, 1, LATENT_CONSTRAINT_POSITIVE, 0.0, 0.0));

    CHECK(latent_montecarlo_minimize(mc, sse, &d));
    CHECK(latent_montecarlo_best(mc, best, P));
    printf("best loss (SSE) %.6g after %llu evaluations, %llu iterations, converged %d\n",
           latent_montecarlo_best_loss(mc), (unsigned long long)latent_montecarlo_evaluations(mc),
           (unsigned long long)latent_montecarlo_iterations(mc), latent_montecarlo_converged(mc));

    /* 95% intervals, the temperature from the number of observations of an SSE loss. */
    CHECK(latent_montecarlo_intervals(mc, sse, &d, 0.95, 0.0, N, lower, upper, P));
    for (i = 0; i < P; i++)
        printf("%s = %.4f  95%% interval [%.4f, %.4f]  (true %.2f)\n", names[i], best[i], lower[i], upper[i],
               truth[i]);
    latent_montecarlo_free(mc);
    return 0;
}
