// Host shim: compiles the library's elementwise and per-row CUDA kernels as plain C++ so the
// tests can run their index arithmetic and numerics on a machine without a GPU (DESIGN.md:
// Backends). A launch runs every (block, thread) of the grid in turn on the calling thread, so
// only kernels without shared memory, barriers or warp operations can run here.
#pragma once
#include <math.h>
#include <stddef.h>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict

struct lat_dim3 {
    unsigned int x, y, z;
};
static thread_local lat_dim3 blockIdx, threadIdx, blockDim, gridDim;

// LAT_LAUNCH(kernel, grid, block, args...): the <<<grid, block>>> launch of a 1-D grid.
#define LAT_LAUNCH(kernel, grid, block, ...)                                 \
    do {                                                                     \
        gridDim = lat_dim3{(unsigned)(grid), 1, 1};                          \
        blockDim = lat_dim3{(unsigned)(block), 1, 1};                        \
        for (unsigned b_ = 0; b_ < gridDim.x; b_++) {                        \
            for (unsigned t_ = 0; t_ < blockDim.x; t_++) {                   \
                blockIdx = lat_dim3{b_, 0, 0};                               \
                threadIdx = lat_dim3{t_, 0, 0};                              \
                kernel(__VA_ARGS__);                                         \
            }                                                                \
        }                                                                    \
    } while (0)
