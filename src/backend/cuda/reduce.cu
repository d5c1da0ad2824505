// Reductions into a double accumulator on the device (loss sums, squared norms): each warp sums
// its grid-stride share, then one atomic add per warp. The order of the atomics varies between
// runs, so these sums (reported losses and the clipping norm) are not bit-reproducible on the
// GPU; nothing else in a training step depends on them. GPU only: the host shim has no warps.

__device__ __forceinline__ double lat_warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// acc[0] += sum of x.
extern "C" __global__ void lat_sum(const float* __restrict__ x, int n, double* __restrict__ acc) {
    double s = 0.0;
    LAT_FOR(i, n) { s += (double)x[i]; }
    s = lat_warp_sum(s);
    if ((threadIdx.x & 31) == 0) atomicAdd(acc, s);
}

// acc[0] += sum of x^2.
extern "C" __global__ void lat_sum_sq(const float* __restrict__ x, int n, double* __restrict__ acc) {
    double s = 0.0;
    LAT_FOR(i, n) {
        double v = (double)x[i];
        s += v * v;
    }
    s = lat_warp_sum(s);
    if ((threadIdx.x & 31) == 0) atomicAdd(acc, s);
}

// acc[0] += scale * sum of x (a penalty in the loss's units).
extern "C" __global__ void lat_sum_scaled(const float* __restrict__ x, int n, double scale, double* __restrict__ acc) {
    double s = 0.0;
    LAT_FOR(i, n) { s += (double)x[i]; }
    s = lat_warp_sum(s) * scale;
    if ((threadIdx.x & 31) == 0) atomicAdd(acc, s);
}

// out[0] = scale * sum of x, in double, by one block (launched with one; a fixed order for a
// given block width, so the result repeats): a value written into a buffer, such as the gradient
// of a VAE's global log-variance from its element terms.
extern "C" __global__ void lat_sum_to(const float* __restrict__ x, int n, double scale, float* __restrict__ out) {
    __shared__ double part[32];
    if (blockIdx.x != 0) return;
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += (double)x[i];
    s = lat_warp_sum(s);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int w = 0; w < (int)((blockDim.x + 31) >> 5); w++) t += part[w];
        out[0] = (float)(t * scale);
    }
}
