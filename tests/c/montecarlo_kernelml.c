/* Issue 16 from C: KernelML's update rule and its settings, the history getters, the hooks
 * (prior sampler, a sampler that sees the history, transforms for integer, simplex and ordered
 * parameters, a minibatch sampler) with their cancel, NaN and re-entry behaviour, and the
 * weak intervals with standard deviations and covariance. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latent.h"
#include "expect.h"

/* (x0 - 1)^2 + 10 (x1 + 2)^2 + (x2 - 3)^2 */
static double quad(void *user, const double *w, size_t n) {
    (void)user;
    (void)n;
    return (w[0] - 1.0) * (w[0] - 1.0) + 10.0 * (w[1] + 2.0) * (w[1] + 2.0) + (w[2] - 3.0) * (w[2] - 3.0);
}

/* The squared distance to `target` (3 values), counting the vectors a predicate rejects. */
struct target {
    double t[3];
    int (*ok)(const double *w);
    long bad;
};
static double dist(void *user, const double *w, size_t n) {
    struct target *t = (struct target *)user;
    double s = 0;
    size_t i;
    if (t->ok && !t->ok(w)) __atomic_fetch_add(&t->bad, 1, __ATOMIC_RELAXED);
    for (i = 0; i < n; i++) s += (w[i] - t->t[i]) * (w[i] - t->t[i]);
    return s;
}

static int integral(const double *w) { return w[0] == floor(w[0]) && w[1] == floor(w[1]) && w[2] == floor(w[2]); }
static int on_simplex(const double *w) {
    return w[0] >= 0 && w[1] >= 0 && w[2] >= 0 && fabs(w[0] + w[1] + w[2] - 1.0) < 1e-12;
}
static int ordered(const double *w) { return w[0] <= w[1] && w[1] <= w[2]; }

static int32_t t_round(void *u, double *x, size_t count, size_t p) {
    size_t i;
    (void)u;
    for (i = 0; i < count * p; i++) x[i] = floor(x[i] + 0.5);
    return 0;
}
static int32_t t_simplex(void *u, double *x, size_t count, size_t p) {
    size_t r, i;
    (void)u;
    for (r = 0; r < count; r++) {
        double s = 0;
        for (i = 0; i < p; i++) s += (x[r * p + i] = fabs(x[r * p + i]));
        for (i = 0; i < p; i++) x[r * p + i] /= s;
    }
    return 0;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int32_t t_sort(void *u, double *x, size_t count, size_t p) {
    size_t r;
    (void)u;
    for (r = 0; r < count; r++) qsort(x + r * p, p, sizeof(double), cmp);
    return 0;
}

/* A transform that cancels at its 4th call and calls back into the optimizer it serves. */
struct reenter {
    latent_montecarlo *mc;
    int calls;
    latent_status busy;
    double loss;
};
static int32_t t_cancel(void *u, double *x, size_t count, size_t p) {
    struct reenter *r = (struct reenter *)u;
    double best[3];
    (void)x;
    (void)count;
    (void)p;
    r->busy = latent_montecarlo_best(r->mc, best, 3);
    r->loss = latent_montecarlo_best_loss(r->mc);
    return ++r->calls >= 4;
}

/* Prior sampler: every candidate 5 + small jitter. */
static int32_t prior_five(void *u, double *out, size_t count, size_t p, uint64_t seed) {
    size_t i;
    int *calls = (int *)u;
    (*calls)++;
    for (i = 0; i < count * p; i++) out[i] = 5.0 + 1e-3 * (double)((seed + i * 2654435761u) % 1000) / 1000.0;
    return 0;
}
static int32_t prior_nan(void *u, double *out, size_t count, size_t p, uint64_t seed) {
    size_t i;
    (void)u;
    (void)seed;
    for (i = 0; i < count * p; i++) out[i] = NAN;
    return 0;
}

/* A sampler that checks its view and draws uniformly within +-2 spreads of the best. */
struct seen {
    int calls, bad_views;
};
static int32_t around_best(void *u, const latent_montecarlo_view *v, double *out, size_t count, uint64_t seed) {
    struct seen *s = (struct seen *)u;
    uint64_t st = seed | 1;
    size_t r, i;
    s->calls++;
    if (v->n_params != 3 || v->kept_iterations != v->iteration - v->first_kept_iteration ||
        (v->kept_iterations > 0 && v->best_loss > v->loss_by_iter[v->kept_iterations - 1]) || v->n_records == 0 ||
        v->record_losses[v->n_records - 1] != v->record_losses[v->n_records - 1])
        s->bad_views++;
    for (r = 0; r < count; r++)
        for (i = 0; i < 3; i++) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            out[r * 3 + i] = v->best[i] + 2.0 * (v->spreads[i] + 1e-9) * ((double)(st >> 11) / 9007199254740992.0 * 2 - 1);
        }
    return 0;
}

/* Minibatch sampler: logs its calls; cancels in run 1 when asked; rows out of range when asked. */
struct batches {
    int calls, cancel, out_of_range;
};
static int32_t batch(void *u, uint64_t run, uint64_t it, size_t n, size_t *rows, size_t b, uint64_t seed) {
    struct batches *s = (struct batches *)u;
    size_t i;
    (void)it;
    s->calls++;
    if (s->cancel && run == 1) return 1;
    for (i = 0; i < b; i++) rows[i] = s->out_of_range ? n : (size_t)((seed + i * 7) % n);
    return 0;
}

static latent_montecarlo *make(int strategy, uint64_t seed) {
    latent_montecarlo_params p = latent_montecarlo_params_default();
    latent_montecarlo *mc = NULL;
    p.strategy = strategy;
    p.seed = seed;
    p.threads = 1;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_OK);
    EXPECT(latent_montecarlo_set_prior(mc, 0, 3, LATENT_PRIOR_UNIFORM, -4.0, 4.0), LATENT_STATUS_OK);
    return mc;
}

int main(void) {
    latent_montecarlo_params p = latent_montecarlo_params_default();
    latent_montecarlo *mc = NULL;
    double best[3], x[3], lo[3], hi[3], sd[3], cov[9], loss = 0, *hist, *recs, *rl;
    size_t count = 0, i;
    uint64_t n, it;
    int strategy, calls = 0;

    /* Defaults and bad settings */
    EXPECT_TRUE(p.strategy == LATENT_MONTECARLO_STRATEGY_KERNELML && p.updates == 10 && p.update_magnitude == 1.0);
    EXPECT_TRUE(p.z_score == 1.0 && p.z_window == 10 && p.history_window == 0 && p.history_limit == 10000);
    p.strategy = 7;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("unknown strategy");
    p = latent_montecarlo_params_default();
    p.z_window = 1;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    MSG_HAS("z_window");
    p = latent_montecarlo_params_default();
    p.update_magnitude = 0.0;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    p = latent_montecarlo_params_default();
    p.updates = 70000;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    p.updates = 10;
    p.history_window = 2;
    EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_INVALID_ARGUMENT);
    EXPECT_TRUE(mc == NULL);
    EXPECT(latent_montecarlo_set_transform(NULL, t_round, NULL), LATENT_STATUS_NULL_ARGUMENT);
    EXPECT_TRUE(latent_montecarlo_stop_reason(NULL) == LATENT_MONTECARLO_STOP_NONE && latent_montecarlo_runs(NULL) == 0);

    for (strategy = 0; strategy < 2; strategy++) {
        /* Both strategies converge; the history is readable. */
        mc = make(strategy, 3);
        EXPECT_TRUE(latent_montecarlo_stop_reason(mc) == LATENT_MONTECARLO_STOP_NONE);
        EXPECT(latent_montecarlo_param_by_iter(mc, 0, x, 3), LATENT_STATUS_INVALID_ARGUMENT);
        EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_OK);
        EXPECT_TRUE(latent_montecarlo_stop_reason(mc) == LATENT_MONTECARLO_STOP_CONVERGED);
        EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
        EXPECT_TRUE(fabs(best[0] - 1) < 1e-5 && fabs(best[1] + 2) < 1e-5 && fabs(best[2] - 3) < 1e-5);
        n = latent_montecarlo_iterations(mc);
        hist = malloc(n * sizeof(double));
        EXPECT(latent_montecarlo_history(mc, hist, n), LATENT_STATUS_OK);
        EXPECT_TRUE(latent_montecarlo_first_kept_iteration(mc) == 0);
        for (it = 0; it < n; it++) {
            EXPECT(latent_montecarlo_param_by_iter(mc, it, x, 3), LATENT_STATUS_OK);
            EXPECT_TRUE(quad(NULL, x, 3) == hist[it]);
        }
        EXPECT_TRUE(memcmp(x, best, sizeof x) == 0);
        free(hist);
        EXPECT(latent_montecarlo_param_by_iter(mc, n, x, 3), LATENT_STATUS_INVALID_ARGUMENT);
        MSG_HAS("not kept");
        EXPECT(latent_montecarlo_param_by_iter(mc, 0, x, 2), LATENT_STATUS_BUFFER_TOO_SMALL);
        EXPECT(latent_montecarlo_records(mc, NULL, 0, NULL, 0, &count), LATENT_STATUS_OK);
        EXPECT_TRUE(count > 0);
        recs = malloc(count * 3 * sizeof(double));
        rl = malloc(count * sizeof(double));
        EXPECT(latent_montecarlo_records(mc, recs, count * 3, rl, count - 1, &count), LATENT_STATUS_BUFFER_TOO_SMALL);
        EXPECT(latent_montecarlo_records(mc, recs, count * 3, rl, count, &count), LATENT_STATUS_OK);
        for (i = 0; i < count; i++) EXPECT_TRUE(quad(NULL, recs + 3 * i, 3) == rl[i]);
        free(recs);
        free(rl);
        EXPECT(latent_montecarlo_records(mc, NULL, 0, NULL, 0, NULL), LATENT_STATUS_NULL_ARGUMENT);
        EXPECT_TRUE(latent_montecarlo_runs(mc) == 1);
        EXPECT(latent_montecarlo_run_best(mc, 0, x, 3, &loss), LATENT_STATUS_OK);
        EXPECT_TRUE(memcmp(x, best, sizeof x) == 0 && loss == latent_montecarlo_best_loss(mc));
        EXPECT(latent_montecarlo_run_best(mc, 1, x, 3, &loss), LATENT_STATUS_INVALID_ARGUMENT);

        /* Laplace intervals with sd and covariance: T = 2 makes the likelihood N(1, 1) in x0,
           N(-2, 0.1) in x1 and N(3, 1) in x2, independent. */
        EXPECT(latent_montecarlo_laplace(mc, quad, NULL, 0.95, 2.0, 0, lo, hi, sd, 3, cov, 9), LATENT_STATUS_OK);
        EXPECT_TRUE(fabs(sd[0] - 1.0) < 0.01 && fabs(sd[1] - sqrt(0.1)) < 0.001 && fabs(sd[2] - 1.0) < 0.01);
        EXPECT_TRUE(fabs(cov[1]) < 0.01 && fabs(cov[4] - sd[1] * sd[1]) < 1e-12);
        EXPECT_TRUE(fabs((hi[0] - lo[0]) / 2 - 1.959964 * sd[0]) < 1e-5);
        EXPECT(latent_montecarlo_laplace(mc, quad, NULL, 0.95, 2.0, 0, lo, hi, sd, 3, cov, 8), LATENT_STATUS_BUFFER_TOO_SMALL);
        EXPECT(latent_montecarlo_laplace(mc, quad, NULL, 0.95, 2.0, 0, lo, hi, NULL, 3, cov, 9), LATENT_STATUS_NULL_ARGUMENT);

        /* KernelML's own: the spread of the best over runs on shifted losses (a stand-in for
           minibatches): one run is not enough. */
        EXPECT(latent_montecarlo_run_intervals(mc, 0.95, 1.0, 0, lo, hi, sd, 3, cov, 9), LATENT_STATUS_INVALID_ARGUMENT);
        MSG_HAS("at least 2 runs");
        {
            struct target t = {{1.1, -2.0, 3.0}, NULL, 0};
            EXPECT(latent_montecarlo_minimize(mc, dist, &t), LATENT_STATUS_OK);
            t.t[0] = 0.9;
            EXPECT(latent_montecarlo_minimize(mc, dist, &t), LATENT_STATUS_OK);
        }
        /* Runs 1 and 2 (skipping the first): x0 at 1.1 and 0.9, sd 0.1414 x sqrt(factor 2). */
        EXPECT(latent_montecarlo_run_intervals(mc, 0.95, 2.0, 1, lo, hi, sd, 3, cov, 9), LATENT_STATUS_OK);
        EXPECT_TRUE(fabs(sd[0] - 0.2) < 1e-4 && sd[1] < 1e-4 && fabs(cov[0] - 0.04) < 1e-4);
        EXPECT(latent_montecarlo_run_intervals(mc, 0.95, -1.0, 1, lo, hi, sd, 3, cov, 9), LATENT_STATUS_INVALID_ARGUMENT);
        latent_montecarlo_free(mc);

        /* A prior sampler (called once, at the first run's start); with no iteration after the
           start, the best is its best draw, near 5. */
        mc = NULL;
        p = latent_montecarlo_params_default();
        p.strategy = strategy;
        p.max_iterations = 0;
        EXPECT(latent_montecarlo_new(&p, 3, &mc), LATENT_STATUS_OK);
        calls = 0;
        EXPECT(latent_montecarlo_set_prior_sampler(mc, prior_five, &calls), LATENT_STATUS_OK);
        EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_OK);
        EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
        EXPECT_TRUE(calls == 1 && fabs(best[0] - 5) < 0.01 && fabs(best[1] - 5) < 0.01);
        latent_montecarlo_free(mc);
        mc = make(strategy, 1);
        EXPECT(latent_montecarlo_set_prior_sampler(mc, prior_nan, NULL), LATENT_STATUS_OK);
        EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_NON_FINITE);
        EXPECT_TRUE(latent_montecarlo_evaluations(mc) == 0);
        EXPECT(latent_montecarlo_set_prior_sampler(mc, NULL, NULL), LATENT_STATUS_OK); /* back to the priors */
        EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_OK);
        latent_montecarlo_free(mc);

        /* A sampler that sees the history. */
        {
            struct seen s = {0, 0};
            mc = make(strategy, 2);
            EXPECT(latent_montecarlo_set_sampler(mc, around_best, &s), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
            EXPECT_TRUE(s.calls == (int)latent_montecarlo_iterations(mc) && s.bad_views == 0);
            EXPECT_TRUE(fabs(best[0] - 1) < 1e-4 && fabs(best[1] + 2) < 1e-4);
            latent_montecarlo_free(mc);
        }

        /* Transforms: integers, a simplex, an ordering; the loss never sees a violation. */
        {
            struct target t = {{1.4, -2.6, 2.51}, integral, 0};
            mc = make(strategy, 4);
            EXPECT(latent_montecarlo_set_transform(mc, t_round, NULL), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_minimize(mc, dist, &t), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
            EXPECT_TRUE(best[0] == 1.0 && best[1] == -3.0 && best[2] == 3.0 && t.bad == 0);
            latent_montecarlo_free(mc);
        }
        {
            struct target t = {{0.6, 0.3, 0.1}, on_simplex, 0};
            mc = make(strategy, 4);
            EXPECT(latent_montecarlo_set_transform(mc, t_simplex, NULL), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_minimize(mc, dist, &t), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
            EXPECT_TRUE(on_simplex(best) && fabs(best[0] - 0.6) < 1e-3 && t.bad == 0);
            latent_montecarlo_free(mc);
        }
        {
            struct target t = {{-1.0, 0.5, 2.0}, ordered, 0};
            mc = make(strategy, 4);
            EXPECT(latent_montecarlo_set_transform(mc, t_sort, NULL), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_minimize(mc, dist, &t), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK);
            EXPECT_TRUE(ordered(best) && fabs(best[0] + 1.0) < 1e-4 && fabs(best[2] - 2.0) < 1e-4 && t.bad == 0);
            latent_montecarlo_free(mc);
        }

        /* A transform that calls back into its optimizer (BUSY) and cancels at its 4th call. */
        {
            struct reenter r = {NULL, 0, LATENT_STATUS_OK, 0.0};
            r.mc = mc = make(strategy, 5);
            EXPECT(latent_montecarlo_set_transform(mc, t_cancel, &r), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_CANCELLED);
            EXPECT_TRUE(r.calls == 4 && r.busy == LATENT_STATUS_BUSY && isnan(r.loss));
            EXPECT_TRUE(latent_montecarlo_stop_reason(mc) == LATENT_MONTECARLO_STOP_CANCELLED);
            EXPECT(latent_montecarlo_best(mc, best, 3), LATENT_STATUS_OK); /* the last completed iteration's */
            EXPECT_TRUE(latent_montecarlo_best_loss(mc) == quad(NULL, best, 3));
            EXPECT(latent_montecarlo_set_transform(mc, NULL, NULL), LATENT_STATUS_OK);
            EXPECT(latent_montecarlo_minimize(mc, quad, NULL), LATENT_STATUS_OK);
            latent_montecarlo_free(mc);
        }
    }

    /* fit_network: priors, a minibatch sampler, its cancel and bad rows. */
    {
        enum { ROWS = 40, D = 3 };
        static float xs[ROWS * D];
        latent_dataset *ds = NULL;
        latent_network *net = NULL;
        latent_network_params np = latent_network_params_default();
        latent_montecarlo_network_params fp = latent_montecarlo_network_params_default();
        struct batches b = {0, 0, 0};
        size_t pc = 0;
        float w[64];
        for (i = 0; i < ROWS * D; i++) xs[i] = (float)((i * 37 % 101) / 101.0);
        EXPECT(latent_dataset_from_buffer(xs, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, ROWS, D, &ds), LATENT_STATUS_OK);
        np.input_dim = D;
        np.code_units = 2;
        np.output_activation = LATENT_ACTIVATION_IDENTITY;
        EXPECT(latent_network_new(&np, &net), LATENT_STATUS_OK);
        EXPECT(latent_network_param_count(net, &pc), LATENT_STATUS_OK);
        EXPECT_TRUE(fp.batch_sampler == NULL && fp.batch_every_iteration == 0 && fp.start_from_network == 0);
        /* Priors N(100, 0.001^2), no iteration: every parameter near 100. */
        p = latent_montecarlo_params_default();
        p.max_iterations = 0;
        p.init_samples = 50;
        EXPECT(latent_montecarlo_new(&p, pc, &mc), LATENT_STATUS_OK);
        EXPECT(latent_montecarlo_set_prior(mc, 0, pc, LATENT_PRIOR_NORMAL, 100.0, 0.001), LATENT_STATUS_OK);
        EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_OK);
        EXPECT(latent_network_get_params(net, w, 64), LATENT_STATUS_OK);
        for (i = 0; i < pc; i++) EXPECT_TRUE(fabs(w[i] - 100.0) < 0.005);
        latent_montecarlo_free(mc);
        /* A minibatch per iteration from the sampler. */
        p = latent_montecarlo_params_default();
        p.max_iterations = 4;
        p.samples = 20;
        p.elite = 5;
        EXPECT(latent_montecarlo_new(&p, pc, &mc), LATENT_STATUS_OK);
        fp.batch_size = 10;
        fp.runs = 2;
        fp.batch_sampler = batch;
        fp.batch_user = &b;
        fp.batch_every_iteration = 1;
        EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_OK);
        EXPECT_TRUE(b.calls == (int)latent_montecarlo_iterations(mc) && latent_montecarlo_runs(mc) == 2);
        {
            float before[64], after[64];
            EXPECT(latent_network_get_params(net, before, 64), LATENT_STATUS_OK);
            b.cancel = 1;
            EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_CANCELLED);
            EXPECT(latent_network_get_params(net, after, 64), LATENT_STATUS_OK);
            EXPECT_TRUE(memcmp(before, after, pc * sizeof(float)) == 0);
            b.cancel = 0;
            b.out_of_range = 1;
            EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_INVALID_ARGUMENT);
            MSG_HAS("row 40");
            b.out_of_range = 0;
            fp.start_from_network = 2;
            EXPECT(latent_montecarlo_fit_network(mc, net, ds, &fp), LATENT_STATUS_INVALID_ARGUMENT);
            MSG_HAS("start_from_network");
        }
        latent_montecarlo_free(mc);
        latent_network_free(net);
        latent_dataset_free(ds);
    }

    printf("%d failures\n", failures);
    return failures != 0;
}
