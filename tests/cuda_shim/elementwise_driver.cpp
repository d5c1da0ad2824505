// The elementwise, per-row and optimizer kernels compiled for the host through shim.h, each
// behind a C entry point that launches it on a small odd grid (3 blocks of 64 threads), so the
// grid-stride loops run several rounds. tests/cuda_kernels_shim.rs compares them with the host
// backend.
#include "shim.h"
#include "../../src/backend/cuda/common.cuh"
#include "../../src/backend/cuda/elementwise.cu"
#include "../../src/backend/cuda/optimizer.cu"

#define G 3
#define B 64

extern "C" {
void shim_bias_act(float* z, const float* b, float* y, int rows, int cols, int act) {
    LAT_LAUNCH(lat_bias_act, G, B, z, b, y, rows, cols, act);
}
void shim_act_backward(float* d, const float* z, const float* y, int n, int act) {
    LAT_LAUNCH(lat_act_backward, G, B, d, z, y, n, act);
}
void shim_loss(const float* z, const float* y, const float* t, float* dz, float* el, int n, int loss, int act,
               float inv) {
    LAT_LAUNCH(lat_loss, G, B, z, y, t, dz, el, n, loss, act, inv);
}
void shim_loss_rows(const float* z, const float* y, const float* t, float* dz, float* el, int rows, int cols, int loss,
                    int act, float inv) {
    LAT_LAUNCH(lat_loss_rows, G, B, z, y, t, dz, el, rows, cols, loss, act, inv);
}
void shim_softmax_ce(const float* l, const float* lab, float* dz, float* el, int rows, int classes, float inv) {
    LAT_LAUNCH(lat_softmax_ce, G, B, l, lab, dz, el, rows, classes, inv);
}
void shim_kl_value(const float* mean, float* el, int cols, float rho) {
    LAT_LAUNCH(lat_kl_value, G, B, mean, el, cols, rho);
}
void shim_kl_grad(float* dy, const float* mean, int rows, int cols, float rho, float beta) {
    LAT_LAUNCH(lat_kl_grad, G, B, dy, mean, rows, cols, rho, beta);
}
void shim_l1(float* dy, const float* y, float* el, int n, float g) { LAT_LAUNCH(lat_l1, G, B, dy, y, el, n, g); }
void shim_act_grad_sq(const float* z, const float* y, float* out, int n, int act) {
    LAT_LAUNCH(lat_act_grad_sq, G, B, z, y, out, n, act);
}
void shim_col_sq_sums(const float* w, float* s, int n_in, int n_out) {
    LAT_LAUNCH(lat_col_sq_sums, G, B, w, s, n_in, n_out);
}
void shim_contractive_dz(float* dz, const float* z, const float* y, const float* s, int rows, int cols, int act,
                         float scale) {
    LAT_LAUNCH(lat_contractive_dz, G, B, dz, z, y, s, rows, cols, act, scale);
}
void shim_contractive_dw(float* dw, const float* w, const float* fsq, int n_in, int n_out, float scale) {
    LAT_LAUNCH(lat_contractive_dw, G, B, dw, w, fsq, n_in, n_out, scale);
}
void shim_mul(const float* a, const float* b, float* out, int n) { LAT_LAUNCH(lat_mul, G, B, a, b, out, n); }
void shim_add(const float* x, float* y, int n) { LAT_LAUNCH(lat_add, G, B, x, y, n); }
void shim_corrupt(const float* x, float* out, const float* lo, const float* hi, int rows, int cols, int kind,
                  float level, unsigned long long seed, unsigned long long ctr, unsigned long long first) {
    LAT_LAUNCH(lat_corrupt, G, B, x, out, lo, hi, rows, cols, kind, level, seed, ctr, first);
}
void shim_sample(const float* y, float* s, int n, int kind, float sigma, unsigned long long seed,
                 unsigned long long ctr, unsigned long long first) {
    LAT_LAUNCH(lat_sample, G, B, y, s, n, kind, sigma, seed, ctr, first);
}
void shim_code_noise(float* z, float* y, const unsigned int* ids, int rows, int cols, int act, float sigma,
                     unsigned long long seed) {
    LAT_LAUNCH(lat_code_noise, G, B, z, y, ids, rows, cols, act, sigma, seed);
}
void shim_gather_rows(const float* src, const unsigned int* ids, float* dst, int rows, int cols) {
    LAT_LAUNCH(lat_gather_rows, G, B, src, ids, dst, rows, cols);
}
void shim_split_rows(const float* src, float* x, float* t, int rows, int cols, int tw) {
    LAT_LAUNCH(lat_split_rows, G, B, src, x, t, rows, cols, tw);
}
void shim_sgd(float* p, const float* g, float* v, int n, float wd, const float* gscale, float lr, float mu,
              int nesterov) {
    LAT_LAUNCH(lat_sgd, G, B, p, g, v, n, wd, gscale, lr, mu, nesterov);
}
void shim_adam(float* p, const float* g, float* m, float* v, int n, float wd, const float* gscale, float lr, float b1,
               float b2, float eps, float step, float inv_sqrt_bc2, int decoupled) {
    LAT_LAUNCH(lat_adam, G, B, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, step, inv_sqrt_bc2, decoupled);
}
// The adaptive optimizers share one signature; `which` picks the kernel (0 RMSprop, 1 AdaGrad,
// 2 AdaDelta, 3 AdaMax, 4 Lion).
void shim_adaptive(int which, float* p, const float* g, float* m, float* v, int n, float wd, const float* gscale,
                   float lr, float b1, float b2, float eps, float step) {
    switch (which) {
        case 0: LAT_LAUNCH(lat_rmsprop, G, B, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, step); break;
        case 1: LAT_LAUNCH(lat_adagrad, G, B, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, step); break;
        case 2: LAT_LAUNCH(lat_adadelta, G, B, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, step); break;
        case 3: LAT_LAUNCH(lat_adamax, G, B, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, step); break;
        default: LAT_LAUNCH(lat_lion, G, B, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, step); break;
    }
}
void shim_philox(unsigned long long seed, unsigned long long ctr, unsigned long long i, unsigned int* out) {
    lat_u4 r = lat_philox(seed, ctr, i);
    out[0] = r.x;
    out[1] = r.y;
    out[2] = r.z;
    out[3] = r.w;
}
}
