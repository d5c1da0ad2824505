// Optimizer updates: one fused kernel per optimizer over one piece of the parameter buffer (a
// run of parameters of one weight decay and one step count: optim::Piece; without weight
// decay or frozen layers that is the whole buffer). `gscale` points at the gradient's scale on
// the device (the clipping factor, 1 without clipping), so clipping costs no host round trip.

// SGD with momentum, PyTorch's formulation (optim/sgd.rs): v = mu v + g; w -= lr v, or with
// Nesterov w -= lr (g + mu v). L2 decay adds wd w to g.
extern "C" __global__ void lat_sgd(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ v, int n,
                                   float wd, const float* __restrict__ gscale, float lr, float mu, int nesterov) {
    float s = *gscale;
    LAT_FOR(i, n) {
        float gi = s * g[i] + wd * p[i];
        float vi = mu * v[i] + gi;
        v[i] = vi;
        p[i] -= nesterov ? lr * (gi + mu * vi) : lr * vi;
    }
}

// Adam (Kingma & Ba 2014) and AdamW (decoupled = 1; Loshchilov & Hutter 2019), optim/adam.rs:
// step = lr / (1 - b1^t), inv_sqrt_bc2 = 1 / sqrt(1 - b2^t).
extern "C" __global__ void lat_adam(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                    float* __restrict__ v, int n, float wd, const float* __restrict__ gscale,
                                    float lr, float b1, float b2, float eps, float step, float inv_sqrt_bc2,
                                    int decoupled) {
    float s = *gscale;
    LAT_FOR(i, n) {
        float l2 = decoupled ? 0.0f : wd;
        float shrink = decoupled ? 1.0f - lr * wd : 1.0f;
        float pi = p[i];
        float gi = s * g[i] + l2 * pi;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = shrink * pi - step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

// The adaptive ones (optim/rmsprop.rs, adagrad.rs, adadelta.rs, adamax.rs, lion.rs), one signature:
// state in m and v as the CPU keeps it, b2 doubling as rho, step = lr / (1 - b1^t) (AdaMax).
// L2 decay adds wd w to g, except Lion's, which is decoupled as AdamW's.

// RMSprop: v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps).
extern "C" __global__ void lat_rmsprop(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ /* m */,
                                       float* __restrict__ v, int n, float wd, const float* __restrict__ gscale,
                                       float lr, float /* b1 */, float b2, float eps, float /* step */) {
    float s = *gscale;
    LAT_FOR(i, n) {
        float gi = s * g[i] + wd * p[i];
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        v[i] = vi;
        p[i] -= lr * gi / (sqrtf(vi) + eps);
    }
}

// AdaGrad: v += g^2; w -= lr g / (sqrt(v) + eps).
extern "C" __global__ void lat_adagrad(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ /* m */,
                                       float* __restrict__ v, int n, float wd, const float* __restrict__ gscale,
                                       float lr, float /* b1 */, float /* b2 */, float eps, float /* step */) {
    float s = *gscale;
    LAT_FOR(i, n) {
        float gi = s * g[i] + wd * p[i];
        float vi = v[i] + gi * gi;
        v[i] = vi;
        p[i] -= lr * gi / (sqrtf(vi) + eps);
    }
}

// AdaDelta: v = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) g; u = rho u + (1 - rho) d^2;
// w -= lr d, with u in m.
extern "C" __global__ void lat_adadelta(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                        float* __restrict__ v, int n, float wd, const float* __restrict__ gscale,
                                        float lr, float /* b1 */, float b2, float eps, float /* step */) {
    float s = *gscale;
    LAT_FOR(i, n) {
        float gi = s * g[i] + wd * p[i];
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        float ui = m[i];
        float d = sqrtf(ui + eps) / sqrtf(vi + eps) * gi;
        v[i] = vi;
        m[i] = b2 * ui + (1.0f - b2) * d * d;
        p[i] -= lr * d;
    }
}

// AdaMax: m = b1 m + (1 - b1) g; u = max(b2 u, |g| + eps); w -= step m / u, with u in v.
extern "C" __global__ void lat_adamax(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                      float* __restrict__ v, int n, float wd, const float* __restrict__ gscale,
                                      float /* lr */, float b1, float b2, float eps, float step) {
    float s = *gscale;
    LAT_FOR(i, n) {
        float gi = s * g[i] + wd * p[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float ui = fmaxf(b2 * v[i], fabsf(gi) + eps);
        m[i] = mi;
        v[i] = ui;
        p[i] -= step * mi / ui;
    }
}

// Lion: c = b1 m + (1 - b1) g; w = (1 - lr wd) w - lr sign(c); m = b2 m + (1 - b2) g.
// sign(0) = 0 and sign(NaN) = NaN, as the CPU's.
extern "C" __global__ void lat_lion(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                    float* __restrict__ /* v */, int n, float wd, const float* __restrict__ gscale,
                                    float lr, float b1, float b2, float /* eps */, float /* step */) {
    float s = *gscale;
    LAT_FOR(i, n) {
        float gi = s * g[i];
        float mi = m[i];
        float c = b1 * mi + (1.0f - b1) * gi;
        float sg = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : c * 0.0f);
        p[i] = (1.0f - lr * wd) * p[i] - lr * sg;
        m[i] = b2 * mi + (1.0f - b2) * gi;
    }
}

// The clipping factor from the gradient's summed squares: min(1, max_norm / norm).
// The sum is zeroed for the next step's.
extern "C" __global__ void lat_clip_factor(double* __restrict__ sumsq, float* __restrict__ factor, float max_norm) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        double norm = sqrt(*sumsq);
        *sumsq = 0.0;
        *factor = (max_norm > 0.0f && norm > (double)max_norm) ? (float)((double)max_norm / norm) : 1.0f;
    }
}
