// Host driver of the functional-transfer kernels (src/backend/cuda/functional.cu) for
// tests/cuda_functional_shim.rs: the kernel sources compiled as plain C++ through the shim, and
// one extern "C" entry per kernel that launches it on the given 1-D grid (the test uses small,
// odd grids so the grid-stride loops wrap), plus the connection-sign hash.
#include "shim.h"

#include "../../src/backend/cuda/common.cuh"
#include "../../src/backend/cuda/functional.cu"

extern "C" float lat_fn_shim_sign(unsigned long long seed, long long i, long long j) {
    return lat_fn_sign(seed, i, j);
}

extern "C" void lat_fn_shim_forward(const float* theta, const float* bias, const float* x, float* z, int rows,
                                    int n_in, int n_out, int family, unsigned long long sign_seed, int grid,
                                    int block) {
    LAT_LAUNCH(lat_functional_forward, grid, block, theta, bias, x, z, rows, n_in, n_out, family, sign_seed);
}

extern "C" void lat_fn_shim_backward_params(const float* theta, const float* x, const float* dz, float* dtheta,
                                            float* dbias, int rows, int n_in, int n_out, int family,
                                            unsigned long long sign_seed, int grid, int block) {
    LAT_LAUNCH(lat_functional_backward_params, grid, block, theta, x, dz, dtheta, dbias, rows, n_in, n_out, family,
               sign_seed);
}

extern "C" void lat_fn_shim_backward_input(const float* theta, const float* x, const float* dz, float* dx, int rows,
                                           int n_in, int n_out, int family, unsigned long long sign_seed, int grid,
                                           int block) {
    LAT_LAUNCH(lat_functional_backward_input, grid, block, theta, x, dz, dx, rows, n_in, n_out, family, sign_seed);
}
