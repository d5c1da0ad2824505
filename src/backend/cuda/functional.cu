// Functional-transfer layers (Cai et al. 2017): z_rj = sum_i (f(x_ri; theta_ij, s_ij) - f(0; ...)) + b_j
// (the centred form; f(0) is 0 for the families without a constant part), the CUDA mirror of
// src/layer/functional.rs. theta is laid out [k][n_in][n_out] (k = 1, 2 or 3
// parameters per connection: w; or a, c; or a, c, d), s_ij is the fixed sign of
// functional::connection_sign, recomputed here from (sign seed, i, j) by the same SplitMix64 hash.
//
// The families' formulas, evaluation orders and clips are those of the CPU kernels K01..K20; the
// CPU's fast polynomial transcendentals (exp_fast, sin_cos_fast, hyperbolic, tanh_fast) are the
// standard float functions here, with the CPU's implicit clips made explicit (the sine's
// argument at +-65536, sinh/cosh saturating at |z| = 88 like exp_fast). Results agree with the
// CPU to float rounding, not bit for bit (tests/cuda_functional_shim.rs).
//
// Every kernel is a 1-D grid-stride loop in which each thread owns its outputs and sums them in
// a fixed order: no shared memory, atomics or warp operations, so any grid gives the same bits
// and the host shim (tests/cuda_shim/shim.h) runs them. The family is matched once per launch;
// each arm runs a loop instantiated for that family (lat_fn_k and lat_fn_uses_sign fold away).

// Written as selects like the CPU's clamp (a NaN passes through, as there).
__device__ __forceinline__ float lat_fn_clamp(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

__device__ __forceinline__ float lat_fn_mask(bool cond) { return cond ? 1.0f : 0.0f; }

// Parameters per connection. functional::Family::params_per_connection.
__device__ __forceinline__ int lat_fn_k(int family) {
    switch (family) {
    case 1: case 2: case 6: case 7: case 17: case 18: return 1;
    case 3: case 5: case 8: case 10: case 19: case 20: return 2;
    default: return 3;
    }
}

// Whether f(0; theta) can be non-zero, so that each connection is measured from its value at 0.
// functional::Family::centred.
__device__ __forceinline__ bool lat_fn_centred(int family) {
    return !(family <= 4 || family == 6 || family == 7 || family == 17 || family == 18);
}

// Whether the family has the fixed sign s. functional::Family::uses_sign.
__device__ __forceinline__ bool lat_fn_uses_sign(int family) {
    return family == 6 || family == 7 || family == 8 || family == 10 || family == 18 || family == 20;
}

// s_ij in {-1, +1}: the SplitMix64 finaliser of seed ^ ((i << 32 | j) * golden), bit for bit
// functional::connection_sign (wrapping 64-bit arithmetic; j < 2^32).
__device__ __forceinline__ float lat_fn_sign(unsigned long long seed, long long i, long long j) {
    unsigned long long x =
        seed ^ ((((unsigned long long)i << 32) | (unsigned long long)j) * 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (x >> 63) == 0ull ? 1.0f : -1.0f;
}

// sin_cos_fast clamps its argument to +-65536 (past it an f32 cannot hold the phase).
__device__ __forceinline__ float lat_fn_phase(float z) { return lat_fn_clamp(z, -65536.0f, 65536.0f); }

// hyperbolic() saturates through exp_fast's clip of |z| at 88.
__device__ __forceinline__ float lat_fn_hyp_arg(float z) { return lat_fn_clamp(z, -88.0f, 88.0f); }

// cosh z - 1 = 2 sinh^2(z / 2): no cancellation near 0 (the CPU uses a series there).
__device__ __forceinline__ float lat_fn_coshm1(float z) {
    float h = sinhf(0.5f * z);
    return 2.0f * (h * h);
}

// f(x; a, c, d) of family F with sign s (parameters past k are don't-care). Kernel::f.
template <int F>
__device__ __forceinline__ float lat_fn_f(float x, float a, float c, float d, float s) {
    switch (F) {
    case 1: return a * a * x;
    case 2: return a * a * a * x;
    case 3: return a * x * x + c * x;
    case 4: return a * x * x * x + c * x * x + d * x;
    case 5: return a * expf(lat_fn_clamp(c * x, -30.0f, 30.0f));
    case 6:
    case 7: return s * lat_fn_clamp(a, 0.0f, 1000.0f) * x;
    case 8: return s * lat_fn_clamp(a * x + c, 0.0f, 20.0f);
    case 9: {
        float z = c * x + d;
        return a * (z > 0.0f ? z : 0.0f);
    }
    case 10: return s * lat_sigmoid(lat_fn_clamp(a * x + c, -30.0f, 30.0f));
    case 11: return a * lat_sigmoid(lat_fn_clamp(c * x + d, -30.0f, 30.0f));
    case 12: return a * sinf(lat_fn_phase(c * x + d));
    case 13: return a * cosf(lat_fn_phase(c * x + d));
    case 14: return a * sinhf(lat_fn_hyp_arg(c * x + d));
    case 15: return a * lat_fn_coshm1(lat_fn_hyp_arg(c * x + d));
    case 16: return a * tanhf(c * x + d);
    case 17: return a * a * (x * x);
    case 18: return s * (a * a) * (x * x);
    case 19: {
        float u = x + c;
        return a * a * (u * u);
    }
    case 20: {
        float u = x + c;
        return s * (a * a) * (u * u);
    }
    default: return 0.0f;
    }
}

// df/dx as the result, df/dtheta_0..2 into g0..g2 (slots past k are don't-care). Kernel::df,
// with the author's conventions kept: derivatives at a clip are the unclipped formulas at the
// clipped value (F05, F10, F11), F06's dw is masked by w >= 0 only, F08's mask ignores the upper
// clip, F07's gradient passes straight through.
template <int F>
__device__ __forceinline__ float lat_fn_df(float x, float a, float c, float d, float s, float& g0, float& g1,
                                           float& g2) {
    g0 = 0.0f;
    g1 = 0.0f;
    g2 = 0.0f;
    switch (F) {
    case 1: g0 = 2.0f * a * x; return a * a;
    case 2: g0 = 3.0f * a * a * x; return a * a * a;
    case 3:
        g0 = x * x;
        g1 = x;
        return 2.0f * a * x + c;
    case 4: {
        float x2 = x * x;
        g0 = x2 * x;
        g1 = x2;
        g2 = x;
        return 3.0f * a * x2 + 2.0f * c * x + d;
    }
    case 5: {
        float e = expf(lat_fn_clamp(c * x, -30.0f, 30.0f));
        g0 = e;
        g1 = a * x * e;
        return a * c * e;
    }
    case 6: g0 = s * x * lat_fn_mask(a >= 0.0f); return s * lat_fn_clamp(a, 0.0f, 1000.0f);
    case 7: g0 = s * x; return s * lat_fn_clamp(a, 0.0f, 1000.0f);
    case 8: {
        float m = s * lat_fn_mask(a * x + c > 0.0f);
        g0 = x * m;
        g1 = m;
        return a * m;
    }
    case 9: {
        float z = c * x + d;
        float m = lat_fn_mask(z > 0.0f);
        g0 = z > 0.0f ? z : 0.0f;
        g1 = a * x * m;
        g2 = a * m;
        return a * c * m;
    }
    case 10: {
        float sg = lat_sigmoid(lat_fn_clamp(a * x + c, -30.0f, 30.0f));
        float g = s * sg * (1.0f - sg);
        g0 = x * g;
        g1 = g;
        return a * g;
    }
    case 11: {
        float sg = lat_sigmoid(lat_fn_clamp(c * x + d, -30.0f, 30.0f));
        float g = a * sg * (1.0f - sg);
        g0 = sg;
        g1 = x * g;
        g2 = g;
        return c * g;
    }
    case 12: {
        float z = lat_fn_phase(c * x + d);
        float g = a * cosf(z);
        g0 = sinf(z);
        g1 = x * g;
        g2 = g;
        return c * g;
    }
    case 13: {
        float z = lat_fn_phase(c * x + d);
        float g = -(a * sinf(z));
        g0 = cosf(z);
        g1 = x * g;
        g2 = g;
        return c * g;
    }
    case 14: {
        float z = lat_fn_hyp_arg(c * x + d);
        float g = a * coshf(z);
        g0 = sinhf(z);
        g1 = x * g;
        g2 = g;
        return c * g;
    }
    case 15: {
        float z = lat_fn_hyp_arg(c * x + d);
        float g = a * sinhf(z);
        g0 = lat_fn_coshm1(z);
        g1 = x * g;
        g2 = g;
        return c * g;
    }
    case 16: {
        float th = tanhf(c * x + d);
        float g = a * (1.0f - th * th);
        g0 = th;
        g1 = x * g;
        g2 = g;
        return c * g;
    }
    case 17: g0 = 2.0f * a * (x * x); return 2.0f * (a * a) * x;
    case 18: g0 = 2.0f * s * a * (x * x); return 2.0f * s * (a * a) * x;
    case 19: {
        float u = x + c;
        float g = 2.0f * (a * a) * u;
        g0 = 2.0f * a * (u * u);
        g1 = g;
        return g;
    }
    case 20: {
        float u = x + c;
        float g = 2.0f * s * (a * a) * u;
        g0 = 2.0f * s * a * (u * u);
        g1 = g;
        return g;
    }
    default: return 0.0f;
    }
}

// The parameters and sign of connection o = i * n_out + j (planes past k are not read).
template <int F>
__device__ __forceinline__ void lat_fn_params(const float* __restrict__ theta, long long plane, long long o,
                                              unsigned long long sign_seed, long long i, long long j, float& a,
                                              float& c, float& d, float& s) {
    a = theta[o];
    c = lat_fn_k(F) >= 2 ? theta[plane + o] : 0.0f;
    d = lat_fn_k(F) >= 3 ? theta[2 * plane + o] : 0.0f;
    s = lat_fn_uses_sign(F) ? lat_fn_sign(sign_seed, i, j) : 1.0f;
}

// One thread per output element (r, j): the sum over i in order from 0, then the bias (the CPU's
// order). Consecutive threads take consecutive j, so theta loads coalesce and x broadcasts.
template <int F>
__device__ __forceinline__ void lat_fn_forward(const float* __restrict__ theta, const float* __restrict__ bias,
                                               const float* __restrict__ x, float* __restrict__ z, int rows,
                                               int n_in, int n_out, unsigned long long sign_seed) {
    long long plane = (long long)n_in * n_out;
    LAT_FOR(t, (long long)rows * n_out) {
        long long r = t / n_out, j = t % n_out;
        const float* xr = x + r * n_in;
        float acc = 0.0f, off = 0.0f;
        for (int i = 0; i < n_in; i++) {
            float a, c, d, s;
            lat_fn_params<F>(theta, plane, (long long)i * n_out + j, sign_seed, i, j, a, c, d, s);
            acc += lat_fn_f<F>(xr[i], a, c, d, s);
            if (lat_fn_centred(F)) {
                off += lat_fn_f<F>(0.0f, a, c, d, s);
            }
        }
        z[t] = acc + (bias[j] - off);
    }
}

// One thread per connection (i, j): its k parameter gradients summed over rows in order; the
// threads of i == 0 also write db_j = sum_r dz_rj.
template <int F>
__device__ __forceinline__ void lat_fn_backward_params(const float* __restrict__ theta, const float* __restrict__ x,
                                                       const float* __restrict__ dz, float* __restrict__ dtheta,
                                                       float* __restrict__ dbias, int rows, int n_in, int n_out,
                                                       unsigned long long sign_seed) {
    long long plane = (long long)n_in * n_out;
    LAT_FOR(t, plane) {
        long long i = t / n_out, j = t % n_out;
        float a, c, d, s;
        lat_fn_params<F>(theta, plane, t, sign_seed, i, j, a, c, d, s);
        float acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f, db = 0.0f;
        for (int r = 0; r < rows; r++) {
            float dv = dz[(long long)r * n_out + j];
            float g0, g1, g2;
            lat_fn_df<F>(x[(long long)r * n_in + i], a, c, d, s, g0, g1, g2);
            acc0 += dv * g0;
            acc1 += dv * g1;
            acc2 += dv * g2;
            db += dv;
        }
        if (lat_fn_centred(F)) {
            // The offset's share: -db_j * d f(0; theta_ij) / d theta.
            float g0, g1, g2;
            lat_fn_df<F>(0.0f, a, c, d, s, g0, g1, g2);
            acc0 -= db * g0;
            acc1 -= db * g1;
            acc2 -= db * g2;
        }
        dtheta[t] = acc0;
        if (lat_fn_k(F) >= 2) {
            dtheta[plane + t] = acc1;
        }
        if (lat_fn_k(F) >= 3) {
            dtheta[2 * plane + t] = acc2;
        }
        if (i == 0) {
            dbias[j] = db;
        }
    }
}

// One thread per (r, i): dx_ri = sum_j dz_rj df/dx, j in order. Threads are numbered i-major
// (t = i * rows + r) so the threads of a warp mostly share i and read the same theta (a broadcast
// of k loads) while dz, one load, is strided.
template <int F>
__device__ __forceinline__ void lat_fn_backward_input(const float* __restrict__ theta, const float* __restrict__ x,
                                                      const float* __restrict__ dz, float* __restrict__ dx, int rows,
                                                      int n_in, int n_out, unsigned long long sign_seed) {
    long long plane = (long long)n_in * n_out;
    LAT_FOR(t, (long long)n_in * rows) {
        long long i = t / rows, r = t % rows;
        float xi = x[r * n_in + i];
        const float* dzr = dz + r * n_out;
        float acc = 0.0f;
        for (int j = 0; j < n_out; j++) {
            float a, c, d, s, g0, g1, g2;
            lat_fn_params<F>(theta, plane, i * n_out + j, sign_seed, i, j, a, c, d, s);
            acc += dzr[j] * lat_fn_df<F>(xi, a, c, d, s, g0, g1, g2);
        }
        dx[r * n_in + i] = acc;
    }
}

// The switch over the 20 families: CALL(F) runs the loop instantiated for F. An unknown code
// writes nothing (the host checks it: functional::Family::from_code).
#define LAT_FN_SWITCH(family, CALL)                                                                          \
    switch (family) {                                                                                        \
    case 1: CALL(1); break;                                                                                  \
    case 2: CALL(2); break;                                                                                  \
    case 3: CALL(3); break;                                                                                  \
    case 4: CALL(4); break;                                                                                  \
    case 5: CALL(5); break;                                                                                  \
    case 6: CALL(6); break;                                                                                  \
    case 7: CALL(7); break;                                                                                  \
    case 8: CALL(8); break;                                                                                  \
    case 9: CALL(9); break;                                                                                  \
    case 10: CALL(10); break;                                                                                \
    case 11: CALL(11); break;                                                                                \
    case 12: CALL(12); break;                                                                                \
    case 13: CALL(13); break;                                                                                \
    case 14: CALL(14); break;                                                                                \
    case 15: CALL(15); break;                                                                                \
    case 16: CALL(16); break;                                                                                \
    case 17: CALL(17); break;                                                                                \
    case 18: CALL(18); break;                                                                                \
    case 19: CALL(19); break;                                                                                \
    case 20: CALL(20); break;                                                                                \
    default: break;                                                                                          \
    }

// z (rows x n_out) = sum_i f(x_ri; theta_ij) + b_j. Functional::forward.
extern "C" __global__ void lat_functional_forward(const float* __restrict__ theta, const float* __restrict__ bias,
                                                  const float* __restrict__ x, float* __restrict__ z, int rows,
                                                  int n_in, int n_out, int family, unsigned long long sign_seed) {
#define LAT_FN_CALL(F) lat_fn_forward<F>(theta, bias, x, z, rows, n_in, n_out, sign_seed)
    LAT_FN_SWITCH(family, LAT_FN_CALL)
#undef LAT_FN_CALL
}

// Overwrites dtheta (k x n_in x n_out, sum_r dz_rj df/dtheta) and dbias (n_out, column sums of
// dz). The parameter half of Functional::backward.
extern "C" __global__ void lat_functional_backward_params(const float* __restrict__ theta,
                                                          const float* __restrict__ x, const float* __restrict__ dz,
                                                          float* __restrict__ dtheta, float* __restrict__ dbias,
                                                          int rows, int n_in, int n_out, int family,
                                                          unsigned long long sign_seed) {
#define LAT_FN_CALL(F) lat_fn_backward_params<F>(theta, x, dz, dtheta, dbias, rows, n_in, n_out, sign_seed)
    LAT_FN_SWITCH(family, LAT_FN_CALL)
#undef LAT_FN_CALL
}

// Overwrites dx (rows x n_in) with sum_j dz_rj df/dx(x_ri). The dx half of Functional::backward.
extern "C" __global__ void lat_functional_backward_input(const float* __restrict__ theta,
                                                         const float* __restrict__ x, const float* __restrict__ dz,
                                                         float* __restrict__ dx, int rows, int n_in, int n_out,
                                                         int family, unsigned long long sign_seed) {
#define LAT_FN_CALL(F) lat_fn_backward_input<F>(theta, x, dz, dx, rows, n_in, n_out, sign_seed)
    LAT_FN_SWITCH(family, LAT_FN_CALL)
#undef LAT_FN_CALL
}
