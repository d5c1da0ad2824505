// Elementwise and per-row kernels of the dense layers, losses, penalties and noise. Each one
// mirrors a function of the CPU backend (named beside it); tests/cuda_shim runs these same
// sources on the CPU and compares them with it.

#define LAT_LOSS_MSE 0
#define LAT_LOSS_BCE 1
#define LAT_LOSS_MAE 2
#define LAT_LOSS_L1 3
#define LAT_LOSS_L2 4
#define LAT_LOSS_MSLE 5
#define LAT_LOSS_POISSON 6
#define LAT_LOSS_COSINE 7
#define LAT_LOSS_KLD 8
#define LAT_LOSS_MCXENT 9
#define LAT_COSINE_EPS 1e-5

#define LAT_CORRUPT_MASKING 1
#define LAT_CORRUPT_GAUSSIAN 2
#define LAT_CORRUPT_SALT_PEPPER 3

#define LAT_STOCHASTIC_BERNOULLI 1
#define LAT_STOCHASTIC_GAUSSIAN 2

// z += b (broadcast over rows); y = f(z). Activation::forward_rows.
extern "C" __global__ void lat_bias_act(float* __restrict__ z, const float* __restrict__ b,
                                        float* __restrict__ y, int rows, int cols, int act) {
    LAT_FOR(i, (long long)rows * cols) {
        float v = z[i] + b[i % cols];
        z[i] = v;
        y[i] = lat_act(act, v);
    }
}

// y = f(z) for a z that already holds its bias (functional layers).
extern "C" __global__ void lat_act_only(const float* __restrict__ z, float* __restrict__ y, int n, int act) {
    LAT_FOR(i, n) { y[i] = lat_act(act, z[i]); }
}

// d *= f'(z, y). Activation::backward_in_place.
extern "C" __global__ void lat_act_backward(float* __restrict__ d, const float* __restrict__ z,
                                            const float* __restrict__ y, int n, int act) {
    LAT_FOR(i, n) { d[i] *= lat_act_grad(act, z[i], y[i]); }
}

// ln y of a positive output y = f(z), from z where y may underflow (loss::ln_output).
__device__ __forceinline__ float lat_ln_output(int act, float z, float y) {
    if (act == LAT_ACT_SIGMOID) return -lat_softplus(-z);
    if (act == LAT_ACT_SOFTPLUS && z < -15.0f) return z - 0.5f * expf(z);
    return logf(y);
}

// Element losses into el and dL/dz (inv times the element's derivative: inv = 1/count for a
// loss averaged over the columns, 1/rows for one summed over them) into dz.
// Loss::forward_backward and Loss::element_grad: MSE and L2 (y - t)^2 through the output
// activation; BCE from the logits, softplus(z) - t z with gradient sigmoid(z) - t; MAE and L1
// |y - t|; MSLE (ln(1+y) - ln(1+t))^2; Poisson y - t ln y with its derivative free of 1/y.
extern "C" __global__ void lat_loss(const float* __restrict__ z, const float* __restrict__ y,
                                    const float* __restrict__ t, float* __restrict__ dz, float* __restrict__ el,
                                    int n, int loss, int act, float inv) {
    LAT_FOR(i, n) {
        float zi = z[i], yi = y[i], ti = t[i];
        float e, g;
        switch (loss) {
        case LAT_LOSS_BCE:
            e = lat_softplus(zi) - ti * zi;
            g = (yi - ti) * inv;
            break;
        case LAT_LOSS_MAE:
        case LAT_LOSS_L1: {
            float d = yi - ti;
            e = fabsf(d);
            g = inv * ((d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f)) * lat_act_grad(act, zi, yi));
            break;
        }
        case LAT_LOSS_MSLE: {
            float r = log1pf(yi) - log1pf(ti);
            e = r * r;
            g = inv * (2.0f * r / (1.0f + yi) * lat_act_grad(act, zi, yi));
            break;
        }
        case LAT_LOSS_POISSON: {
            e = yi - ti * lat_ln_output(act, zi, yi);
            if (act == LAT_ACT_SIGMOID) {
                g = (yi - ti) * (1.0f - yi);
            } else if (act == LAT_ACT_SOFTPLUS) {
                float s = lat_sigmoid(zi);
                float ratio = zi < -15.0f ? 1.0f - 0.5f * expf(zi) : s / yi;
                g = s - ti * ratio;
            } else {
                g = (1.0f - ti / yi) * lat_act_grad(act, zi, yi);
            }
            g *= inv;
            break;
        }
        default: {
            float d = yi - ti;
            e = d * d;
            g = 2.0f * inv * d * lat_act_grad(act, zi, yi);
        }
        }
        el[i] = e;
        dz[i] = g;
    }
}

// The row losses, one row per thread, in double like the host (Loss::row): the score R of the
// row into el[r], inv times dR/dz into dz (inv = 1/rows). Cosine proximity
// R = -y.t / (max(|y|, eps) max(|t|, eps)) through the output activation; KL divergence and
// multi-class cross-entropy of p = softmax(y) (y holds the logits), dR/dy_j = S p_j - t_j.
extern "C" __global__ void lat_loss_rows(const float* __restrict__ z, const float* __restrict__ y,
                                         const float* __restrict__ t, float* __restrict__ dz,
                                         float* __restrict__ el, int rows, int cols, int loss, int act,
                                         float inv) {
    LAT_FOR(r, rows) {
        const float* zr = z + r * cols;
        const float* yr = y + r * cols;
        const float* tr = t + r * cols;
        float* d = dz + r * cols;
        if (loss == LAT_LOSS_COSINE) {
            double yy = 0.0, tt = 0.0, yt = 0.0;
            for (int j = 0; j < cols; j++) {
                double a = yr[j], b = tr[j];
                yy += a * a;
                tt += b * b;
                yt += a * b;
            }
            double ny = sqrt(yy);
            double a = fmax(ny, LAT_COSINE_EPS), b = fmax(sqrt(tt), LAT_COSINE_EPS);
            bool floored = ny <= LAT_COSINE_EPS;
            for (int j = 0; j < cols; j++) {
                double g = (double)tr[j] / (a * b) - (floored ? 0.0 : yt * (double)yr[j] / (a * a * a * b));
                d[j] = (float)(-(double)inv * g) * lat_act_grad(act, zr[j], yr[j]);
            }
            el[r] = (float)(-yt / (a * b));
        } else {
            double m = yr[0];
            for (int j = 1; j < cols; j++) m = fmax(m, (double)yr[j]);
            double s = 0.0;
            for (int j = 0; j < cols; j++) s += exp((double)yr[j] - m);
            double lse = m + log(s);
            double score = 0.0, total = 0.0;
            for (int j = 0; j < cols; j++) {
                double tj = tr[j];
                total += tj;
                if (tj > 0.0) score += tj * (lse - (double)yr[j]) + (loss == LAT_LOSS_KLD ? tj * log(tj) : 0.0);
            }
            for (int j = 0; j < cols; j++) {
                d[j] = (float)((double)inv * (total * exp((double)yr[j] - lse) - (double)tr[j]));
            }
            el[r] = (float)score;
        }
    }
}

// Softmax cross-entropy of one row of logits per thread, labels given as class indices in
// floats; dz = (softmax - onehot) * inv. task::softmax_cross_entropy.
extern "C" __global__ void lat_softmax_ce(const float* __restrict__ logits, const float* __restrict__ labels,
                                          float* __restrict__ dz, float* __restrict__ el, int rows, int classes,
                                          float inv) {
    LAT_FOR(r, rows) {
        const float* l = logits + r * classes;
        float* d = dz + r * classes;
        float m = l[0];
        for (int k = 1; k < classes; k++) m = fmaxf(m, l[k]);
        float s = 0.0f;
        for (int k = 0; k < classes; k++) s += expf(l[k] - m);
        float lse = m + logf(s);
        int c = (int)labels[r];
        for (int k = 0; k < classes; k++) {
            float p = expf(l[k] - lse);
            d[k] = (p - (k == c ? 1.0f : 0.0f)) * inv;
        }
        el[r] = lse - l[c];
    }
}

// KL sparsity (Sparsity::Kl, Ng's CS294A notes), given the column means rho_hat of y: per column the
// divergence into el, and beta/rows * (-rho/p + (1-rho)/(1-p)) added to every row of dy. In
// double, as the CPU: the two terms nearly cancel where p is near rho.
extern "C" __global__ void lat_kl_value(const float* __restrict__ mean, float* __restrict__ el, int cols,
                                        float rho) {
    LAT_FOR(j, cols) {
        double p = fmin(fmax((double)mean[j], 1e-6), 1.0 - 1e-6), r = rho;
        el[j] = (float)(r * log(r / p) + (1.0 - r) * log((1.0 - r) / (1.0 - p)));
    }
}

extern "C" __global__ void lat_kl_grad(float* __restrict__ dy, const float* __restrict__ mean, int rows, int cols,
                                       float rho, float beta) {
    LAT_FOR(i, (long long)rows * cols) {
        double p = fmin(fmax((double)mean[i % cols], 1e-6), 1.0 - 1e-6), r = rho;
        dy[i] += (float)((double)beta / rows * (-r / p + (1.0 - r) / (1.0 - p)));
    }
}

// L1 activity (Sparsity::L1): |y| into el, g * sign(y) added to dy (g = lambda/rows).
extern "C" __global__ void lat_l1(float* __restrict__ dy, const float* __restrict__ y, float* __restrict__ el,
                                  int n, float g) {
    LAT_FOR(i, n) {
        float v = y[i];
        el[i] = fabsf(v);
        dy[i] += v > 0.0f ? g : (v < 0.0f ? -g : 0.0f);
    }
}

// Contractive penalty of each encoder layer (Rifai et al. 2011), in three passes around a
// column sum: f'(z)^2 per element into fsq; S_j = sum_i W_ij^2 per column; then the gradients.
extern "C" __global__ void lat_act_grad_sq(const float* __restrict__ z, const float* __restrict__ y,
                                           float* __restrict__ out, int n, int act) {
    LAT_FOR(i, n) {
        float d = lat_act_grad(act, z[i], y[i]);
        out[i] = d * d;
    }
}

extern "C" __global__ void lat_col_sq_sums(const float* __restrict__ w, float* __restrict__ s, int n_in, int n_out) {
    LAT_FOR(j, n_out) {
        float acc = 0.0f;
        for (int i = 0; i < n_in; i++) {
            float v = w[(long long)i * n_out + j];
            acc += v * v;
        }
        s[j] = acc;
    }
}

// dz += scale * 2 S_j f'(z) f''(z)  (scale = lambda/rows).
extern "C" __global__ void lat_contractive_dz(float* __restrict__ dz, const float* __restrict__ z,
                                              const float* __restrict__ y, const float* __restrict__ s, int rows,
                                              int cols, int act, float scale) {
    LAT_FOR(i, (long long)rows * cols) {
        float zi = z[i], yi = y[i];
        dz[i] += 2.0f * scale * s[i % cols] * lat_act_grad(act, zi, yi) * lat_act_grad2(act, zi, yi);
    }
}

// dW_ij += scale * 2 W_ij sum_b f'(z_bj)^2; and the penalty's per-column terms fsq_j S_j into el.
extern "C" __global__ void lat_contractive_dw(float* __restrict__ dw, const float* __restrict__ w,
                                              const float* __restrict__ fsq, int n_in, int n_out, float scale) {
    LAT_FOR(i, (long long)n_in * n_out) { dw[i] += 2.0f * scale * fsq[i % n_out] * w[i]; }
}

// y += x (a penalty's gradient joining a layer's).
extern "C" __global__ void lat_add(const float* __restrict__ x, float* __restrict__ y, int n) {
    LAT_FOR(i, n) { y[i] += x[i]; }
}

extern "C" __global__ void lat_mul(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                                   int n) {
    LAT_FOR(i, n) { out[i] = a[i] * b[i]; }
}

// Input corruption of a denoising autoencoder (Corruption::apply), one Philox draw per element
// of draw `ctr`: masking noise, additive Gaussian noise, or salt-and-pepper to each feature's
// (lo, hi) (0 and 1 without a range).
extern "C" __global__ void lat_corrupt(const float* __restrict__ x, float* __restrict__ out,
                                       const float* __restrict__ lo, const float* __restrict__ hi, int rows, int cols,
                                       int kind, float level, unsigned long long seed, unsigned long long ctr,
                                       unsigned long long first) {
    LAT_FOR(i, (long long)rows * cols) {
        lat_u4 r = lat_philox(seed, ctr, first + (unsigned long long)i);
        float v = x[i];
        if (kind == LAT_CORRUPT_MASKING) {
            v = lat_uniform(r.x) < level ? 0.0f : v;
        } else if (kind == LAT_CORRUPT_GAUSSIAN) {
            v += level * lat_normal(r.x, r.y);
        } else if (kind == LAT_CORRUPT_SALT_PEPPER) {
            float u = lat_uniform(r.x);
            if (u < level) {
                // the same draw picks salt or pepper: u < level / 2 is pepper
                int j = (int)(i % cols);
                bool pepper = u < 0.5f * level;
                v = lo ? (pepper ? lo[j] : hi[j]) : (pepper ? 0.0f : 1.0f);
            }
        }
        out[i] = v;
    }
}

// Samples of a stochastic layer (Stochastic::sample): Bernoulli of its probabilities, or its
// output plus Gaussian noise of `sigma`.
extern "C" __global__ void lat_sample(const float* __restrict__ y, float* __restrict__ s, int n, int kind, float sigma,
                                      unsigned long long seed, unsigned long long ctr, unsigned long long first) {
    LAT_FOR(i, n) {
        lat_u4 r = lat_philox(seed, ctr, first + (unsigned long long)i);
        s[i] = kind == LAT_STOCHASTIC_BERNOULLI ? (lat_uniform(r.x) < y[i] ? 1.0f : 0.0f)
                                                : y[i] + sigma * lat_normal(r.x, r.y);
    }
}

// Fixed per-row Gaussian noise on the code layer (semantic hashing): the noise of training row
// `ids[r]` is the same in every epoch. z holds its bias; y = f(z) is recomputed.
extern "C" __global__ void lat_code_noise(float* __restrict__ z, float* __restrict__ y,
                                          const unsigned int* __restrict__ ids, int rows, int cols, int act,
                                          float sigma, unsigned long long seed) {
    LAT_FOR(i, (long long)rows * cols) {
        long long r = i / cols;
        lat_u4 u = lat_philox(seed, (unsigned long long)ids[r], (unsigned long long)(i % cols));
        float v = z[i] + sigma * lat_normal(u.x, u.y);
        z[i] = v;
        y[i] = lat_act(act, v);
    }
}

// Gathers rows `ids` of a row-major matrix (the shuffled minibatch from a device-resident set).
extern "C" __global__ void lat_gather_rows(const float* __restrict__ src, const unsigned int* __restrict__ ids,
                                           float* __restrict__ dst, int rows, int cols) {
    LAT_FOR(i, (long long)rows * cols) {
        long long r = i / cols;
        dst[i] = src[(long long)ids[r] * cols + i % cols];
    }
}

// Splits supervised rows (inputs, then targets) apart: task::split_rows.
extern "C" __global__ void lat_split_rows(const float* __restrict__ src, float* __restrict__ x, float* __restrict__ t,
                                          int rows, int cols, int tw) {
    LAT_FOR(i, (long long)rows * (cols + tw)) {
        long long r = i / (cols + tw), j = i % (cols + tw);
        if (j < cols) {
            x[r * cols + j] = src[i];
        } else {
            t[r * tw + (j - cols)] = src[i];
        }
    }
}

extern "C" __global__ void lat_fill(float* __restrict__ x, int n, float v) {
    LAT_FOR(i, n) { x[i] = v; }
}
