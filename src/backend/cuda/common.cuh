// Shared by every kernel: activation functions and their derivatives (the codes of
// LATENT_ACTIVATION_*), the counter-based Philox4x32-10 generator, and the grid-stride loop.
// Written in the subset of CUDA C++ that NVRTC compiles without headers and that the host shim
// (tests/cuda_shim/shim.h) compiles as plain C++: no shared memory or warp operations here.

#define LAT_ACT_IDENTITY 0
#define LAT_ACT_SIGMOID 1
#define LAT_ACT_TANH 2
#define LAT_ACT_RELU 3
#define LAT_ACT_LEAKY_RELU 4
#define LAT_ACT_ELU 5
#define LAT_ACT_SOFTPLUS 6
#define LAT_ACT_GELU 7

#define LAT_LEAKY_SLOPE 0.01f
#define LAT_ELU_ALPHA 1.0f
#define LAT_INV_SQRT_2PI 0.3989422804f
#define LAT_SQRT1_2 0.7071067812f

// Every kernel walks its elements with this grid-stride loop, so any grid covers any size.
#define LAT_FOR(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ float lat_sigmoid(float z) {
    // exp of a non-positive argument only: no overflow for large |z|.
    if (z >= 0.0f) {
        return 1.0f / (1.0f + expf(-z));
    }
    float e = expf(z);
    return e / (1.0f + e);
}

__device__ __forceinline__ float lat_softplus(float z) {
    // log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
    return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z)));
}

__device__ __forceinline__ float lat_act(int act, float z) {
    switch (act) {
    case LAT_ACT_SIGMOID: return lat_sigmoid(z);
    case LAT_ACT_TANH: return tanhf(z);
    case LAT_ACT_RELU: return fmaxf(z, 0.0f);
    case LAT_ACT_LEAKY_RELU: return z > 0.0f ? z : LAT_LEAKY_SLOPE * z;
    case LAT_ACT_ELU: return z > 0.0f ? z : LAT_ELU_ALPHA * expm1f(z);
    case LAT_ACT_SOFTPLUS: return lat_softplus(z);
    case LAT_ACT_GELU: return 0.5f * z * (1.0f + erff(z * LAT_SQRT1_2));
    default: return z;
    }
}

// f'(z) from z and y = f(z), whichever is cheaper (as src/activation.rs).
__device__ __forceinline__ float lat_act_grad(int act, float z, float y) {
    switch (act) {
    case LAT_ACT_SIGMOID: return y * (1.0f - y);
    case LAT_ACT_TANH: return 1.0f - y * y;
    case LAT_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case LAT_ACT_LEAKY_RELU: return y > 0.0f ? 1.0f : LAT_LEAKY_SLOPE;
    case LAT_ACT_ELU: return y > 0.0f ? 1.0f : y + LAT_ELU_ALPHA;
    case LAT_ACT_SOFTPLUS: return -expm1f(-y);
    case LAT_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(z * LAT_SQRT1_2));
        return cdf + z * expf(-0.5f * z * z) * LAT_INV_SQRT_2PI;
    }
    default: return 1.0f;
    }
}

// f''(z): the contractive penalty's gradient needs d/dz f'(z)^2 = 2 f' f''.
__device__ __forceinline__ float lat_act_grad2(int act, float z, float y) {
    switch (act) {
    case LAT_ACT_SIGMOID: return y * (1.0f - y) * (1.0f - 2.0f * y);
    case LAT_ACT_TANH: return -2.0f * y * (1.0f - y * y);
    case LAT_ACT_ELU: return y > 0.0f ? 0.0f : y + LAT_ELU_ALPHA;
    case LAT_ACT_SOFTPLUS: {
        float s = -expm1f(-y);
        return s * (1.0f - s);
    }
    case LAT_ACT_GELU: return expf(-0.5f * z * z) * LAT_INV_SQRT_2PI * (2.0f - z * z);
    default: return 0.0f;
    }
}

// Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"): the
// numbers of element i of draw `ctr` under key `seed` are a pure function of (seed, ctr, i), so
// any grid, any thread count and the host mirror give the same stream.
struct lat_u4 {
    unsigned int x, y, z, w;
};

__device__ __forceinline__ unsigned int lat_mulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * (unsigned long long)b) >> 32);
}

__device__ __forceinline__ lat_u4 lat_philox(unsigned long long seed, unsigned long long ctr, unsigned long long i) {
    unsigned int c0 = (unsigned int)i, c1 = (unsigned int)(i >> 32);
    unsigned int c2 = (unsigned int)ctr, c3 = (unsigned int)(ctr >> 32);
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        unsigned int hi0 = lat_mulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        unsigned int hi1 = lat_mulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    lat_u4 out = {c0, c1, c2, c3};
    return out;
}

// Uniform in [0, 1) from the top 24 bits.
__device__ __forceinline__ float lat_uniform(unsigned int bits) {
    return (float)(bits >> 8) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller from two words (u1 in (0, 1], so the log is finite).
__device__ __forceinline__ float lat_normal(unsigned int a, unsigned int b) {
    float u1 = (float)((a >> 8) + 1u) * (1.0f / 16777216.0f);
    float u2 = lat_uniform(b);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853072f * u2);
}
