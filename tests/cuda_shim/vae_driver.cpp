// Runs the VAE kernels (src/backend/cuda/vae.cu) on the CPU through the host shim, for
// tests/cuda_vae_shim.rs. Each wrapper launches its kernel on the grid it is given (the test uses
// small odd grids so that the grid-stride loops wrap).
#include "shim.h"

#include "../../src/backend/cuda/common.cuh"
#include "../../src/backend/cuda/elementwise.cu"
#include "../../src/backend/cuda/vae.cu"

extern "C" {

void drv_vae_reparam(int grid, int block, const float* head, float* eps, float* zs, int rows, int samples,
                     int latent, int learned, float const_lv, unsigned long long seed, unsigned long long ctr,
                     int first, int batch) {
    LAT_LAUNCH(lat_vae_reparam, grid, block, head, eps, zs, rows, samples, latent, learned, const_lv, seed, ctr,
               first, batch);
}

void drv_vae_kl(int grid, int block, const float* head, float* kl_el, float* dhead, int rows, int latent,
                int learned, float const_lv, float beta) {
    LAT_LAUNCH(lat_vae_kl, grid, block, head, kl_el, dhead, rows, latent, learned, const_lv, beta);
}

void drv_vae_reparam_backward(int grid, int block, const float* head_z, const float* head_y, const float* dzs,
                              const float* eps, float* dhead, int rows, int samples, int latent, int learned,
                              float const_lv, int act) {
    LAT_LAUNCH(lat_vae_reparam_backward, grid, block, head_z, head_y, dzs, eps, dhead, rows, samples, latent,
               learned, const_lv, act);
}

void drv_vae_recon(int grid, int block, const float* x, const float* pre, const float* extra, const int* parts,
                   int n_parts, float* rec_el, float* dpre, float* glob_el, int n, int rows, int d_cols, int p_cols,
                   float scale) {
    LAT_LAUNCH(lat_vae_recon, grid, block, x, pre, extra, parts, n_parts, rec_el, dpre, glob_el, n, rows, d_cols,
               p_cols, scale);
}

int drv_vae_part_fields() { return LAT_VAE_PART_FIELDS; }
}
