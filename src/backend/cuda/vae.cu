// Variational autoencoder kernels: the elementwise and per-latent-unit work of Vae::step
// (src/vae.rs) and the reconstruction likelihoods of src/distribution.rs. Compiled after
// common.cuh and elementwise.cu; tests/cuda_vae_shim.rs runs them on the CPU through
// tests/cuda_shim/shim.h and compares them with the CPU code.
//
// Notation: rows = examples in the minibatch, L = samples of z per example (VaeSpec::num_samples),
// n = rows * L stacked decoder rows, J = latent width, hw = head width (2J for Posterior::Learned,
// J for Posterior::Constant), D = data columns, P = decoder pre-output width
// (Reconstruction::param_width), E = global log-variances (Reconstruction::extra_params).
//
// Buffers (all row-major float):
//   head_z, head_y  rows x hw  the q(z|x) head's pre-activation and output (pzx activation applied);
//                              Learned: row r = [mu_0..mu_{J-1} | logvar_0..logvar_{J-1}];
//                              Constant: row r = [mu_0..mu_{J-1}], the log-variance a float argument
//   eps, zs, dzs    n x J      stacked draw-major as vae.rs: draw l of example r is stacked row
//                              l * rows + r (element k = (l * rows + r) * J + j)
//   kl_el           rows x J   KL element terms (sum them for VaeStepLoss::kl_sum)
//   dhead           rows x hw  dL/d(head pre-activation), in head_y's layout
//   x               rows x D   the minibatch; stacked row i reconstructs example i % rows
//   pre, dpre       n x P      decoder pre-output (output layer linear) and dL/dpre
//   rec_el          n x D      NLL element terms (sum / L = VaeStepLoss::recon_sum)
//   glob_el         n x G      G = total columns of the GaussianGlobal parts, part-major: the
//                              terms of global part e are the contiguous range
//                              [gcol_e * n, (gcol_e + size_e) * n), element (i, j) of the part at
//                              gcol_e * n + i * size_e + j; the sum of that range is dL/dextra[e]
//                              (the gradient of params[Vae::extra + e])
//   parts           int table, LAT_VAE_PART_FIELDS ints per part of the Reconstruction, in part
//                   order: {DistKind::code, Activation::code, first data column, first
//                   pre-output column, size (data columns), extra index e (GaussianGlobal, else
//                   0), gcol (GaussianGlobal: data columns of the global parts before it, else 0),
//                   0}. A single distribution is a table of one part.
//
// One training step (Vae::step), in order:
//   1. encoder GEMMs + lat_bias_act up to the head            -> head_z, head_y
//   2. lat_vae_reparam(head_y -> eps, zs; seed, ctr = step)    eps ~ N(0,1) by Philox, z = mu + sigma eps
//   3. decoder GEMMs + lat_bias_act over the n rows of zs      -> pre
//   4. lat_vae_recon(x, pre, extra, parts; scale = 1/n)        -> rec_el, dpre, glob_el
//      recon_sum = sum(rec_el) / L; dL/dextra[e] = sum of glob_el's range of part e
//   5. lat_vae_kl(head_y; beta = the step's KL weight)         -> kl_el, dhead (overwritten with
//      the KL gradient); kl_sum = sum(kl_el). Any time after 1 and before 7.
//   6. decoder backward GEMMs from dpre                        -> dzs (dL/dz, n x J)
//   7. lat_vae_reparam_backward(head_z, head_y, dzs, eps)      dhead += sum over the L draws of
//      the reparameterisation gradient, then dhead *= pzx activation' (the KL gradient is kept in
//      its own kernel, 5, which must run first: it initialises dhead)
//   8. head and encoder backward GEMMs from dhead.

#define LAT_VAE_BERNOULLI 0
#define LAT_VAE_GAUSSIAN 1
#define LAT_VAE_EXPONENTIAL 2
#define LAT_VAE_MSE 3
#define LAT_VAE_GAUSSIAN_GLOBAL 4

#define LAT_VAE_PART_FIELDS 8
#define LAT_VAE_HALF_LN_2PI 0.9189385332046727f

// (mu, log-variance) of example r's latent unit j (Vae::posterior).
__device__ __forceinline__ void lat_vae_posterior(const float* __restrict__ head, long long r, int j, int latent,
                                                  int learned, float const_lv, float* mu, float* lv) {
    if (learned) {
        *mu = head[r * 2 * latent + j];
        *lv = head[r * 2 * latent + latent + j];
    } else {
        *mu = head[r * latent + j];
        *lv = const_lv;
    }
}

// Reparameterisation (Vae::reparameterise): eps_k ~ N(0, 1) from Philox (element k of draw
// `ctr` under `seed`, so the noise does not depend on the grid), z_k = mu + exp(lv / 2) eps_k,
// over the n x J stacked draws.
extern "C" __global__ void lat_vae_reparam(const float* __restrict__ head, float* __restrict__ eps,
                                           float* __restrict__ zs, int rows, int samples, int latent, int learned,
                                           float const_lv, unsigned long long seed, unsigned long long ctr, int first,
                                           int batch) {
    // Draw l of row r is keyed as draw l of row first + r of a minibatch of `batch` rows (a
    // shard of a step draws the whole step's numbers; first = 0, batch = rows otherwise).
    LAT_FOR(k, (long long)rows * samples * latent) {
        long long r = (k / latent) % rows;
        long long l = k / ((long long)rows * latent);
        int j = (int)(k % latent);
        float mu, lv;
        lat_vae_posterior(head, r, j, latent, learned, const_lv, &mu, &lv);
        unsigned long long key = (unsigned long long)((l * batch + first + r) * latent + j);
        lat_u4 u = lat_philox(seed, ctr, key);
        float e = lat_normal(u.x, u.y);
        eps[k] = e;
        zs[k] = mu + expf(0.5f * lv) * e;
    }
}

// Closed-form KL(N(mu, sigma^2) || N(0, 1)) per latent unit (Vae::kl_sum):
// 1/2 (mu^2 + e^lv - 1 - lv) into kl_el (rows x J), in double as the CPU (expm1 keeps the small-lv
// terms exact); and its gradient scaled by beta / rows (Vae::step), written (not added) into
// dhead: d mu = beta/rows mu, d lv = beta/rows (sigma^2 - 1) / 2 (Learned only; a constant
// log-variance has no gradient).
extern "C" __global__ void lat_vae_kl(const float* __restrict__ head, float* __restrict__ kl_el,
                                      float* __restrict__ dhead, int rows, int latent, int learned, float const_lv,
                                      float beta) {
    float kl_scale = beta / (float)rows;
    int hw = learned ? 2 * latent : latent;
    LAT_FOR(i, (long long)rows * latent) {
        long long r = i / latent;
        int j = (int)(i % latent);
        float mu, lv;
        lat_vae_posterior(head, r, j, latent, learned, const_lv, &mu, &lv);
        double m = (double)mu, v = (double)lv;
        kl_el[i] = (float)(0.5 * (m * m + expm1(v) - v));
        float sigma = expf(0.5f * lv);
        dhead[r * hw + j] = kl_scale * mu;
        if (learned) {
            dhead[r * hw + latent + j] = kl_scale * 0.5f * (sigma * sigma - 1.0f);
        }
    }
}

// Backward through z = mu + sigma eps (Kingma & Welling eq. 10, Vae::step): per example and unit,
// d mu += sum_l dz, d lv += sum_l dz eps sigma / 2 over the L draws, added to dhead (which holds
// the KL gradient from lat_vae_kl), then multiplied by the pzx activation's derivative
// (Activation::backward_in_place of the head). head_z may be null unless act is GELU.
extern "C" __global__ void lat_vae_reparam_backward(const float* __restrict__ head_z, const float* __restrict__ head_y,
                                                    const float* __restrict__ dzs, const float* __restrict__ eps,
                                                    float* __restrict__ dhead, int rows, int samples, int latent,
                                                    int learned, float const_lv, int act) {
    int hw = learned ? 2 * latent : latent;
    LAT_FOR(i, (long long)rows * latent) {
        long long r = i / latent;
        int j = (int)(i % latent);
        float mu, lv;
        lat_vae_posterior(head_y, r, j, latent, learned, const_lv, &mu, &lv);
        float sigma = expf(0.5f * lv);
        long long im = r * hw + j, il = r * hw + latent + j;
        float dmu = dhead[im];
        float dlv = learned ? dhead[il] : 0.0f;
        for (int l = 0; l < samples; l++) {
            long long k = ((long long)l * rows + r) * latent + j;
            float d = dzs[k];
            dmu += d;
            dlv += d * eps[k] * 0.5f * sigma;
        }
        dhead[im] = dmu * lat_act_grad(act, head_z ? head_z[im] : 0.0f, mu);
        if (learned) {
            dhead[il] = dlv * lat_act_grad(act, head_z ? head_z[il] : 0.0f, lv);
        }
    }
}

// Reconstruction NLL (Reconstruction::nll_row), one thread per data element (stacked row i,
// data column c) of the n x D grid; the part of column c is found in the part table. Writes the
// element's NLL into rec_el, `scale` times its gradient in the pre-output into dpre (every entry
// of the n x P dpre written exactly once: a Gaussian column writes its mean and its log-variance
// entries), and for a GaussianGlobal part `scale` times the element's gradient in the part's
// log-variance into glob_el (layout above; the caller sums each part's range).
//   Bernoulli      softplus(a) - x a from the logits;            d = sigmoid(a) - x
//   Gaussian       m = f(a_m), lv = f(a_lv): ln(2 pi)/2 + lv/2 + (x - m)^2 e^-lv / 2
//   GaussianGlobal as Gaussian with lv = extra[e]
//   Exponential    gamma = f(a), lambda = e^gamma: lambda x - gamma; d = (lambda x - 1) f'
//   Mse            (f(a) - x)^2 / size (the mean over the part's columns)
extern "C" __global__ void lat_vae_recon(const float* __restrict__ x, const float* __restrict__ pre,
                                         const float* __restrict__ extra, const int* __restrict__ parts,
                                         int n_parts, float* __restrict__ rec_el, float* __restrict__ dpre,
                                         float* __restrict__ glob_el, int n, int rows, int d_cols, int p_cols,
                                         float scale) {
    LAT_FOR(idx, (long long)n * d_cols) {
        long long i = idx / d_cols;
        int c = (int)(idx % d_cols);
        const int* part = parts;
        for (int q = 1; q < n_parts; q++) {
            const int* next = parts + q * LAT_VAE_PART_FIELDS;
            if (c < next[2]) break;
            part = next;
        }
        int kind = part[0], act = part[1], size = part[4];
        int j = c - part[2];
        long long pm = i * p_cols + part[3] + j;
        float t = x[(i % rows) * d_cols + c];
        float a = pre[pm];
        float nll;
        if (kind == LAT_VAE_BERNOULLI) {
            nll = lat_softplus(a) - t * a;
            dpre[pm] = scale * (lat_sigmoid(a) - t);
        } else if (kind == LAT_VAE_GAUSSIAN || kind == LAT_VAE_GAUSSIAN_GLOBAL) {
            float m = lat_act(act, a);
            float r = t - m;
            long long pl = pm + size;  // the log-variance column of a Gaussian part
            float al = kind == LAT_VAE_GAUSSIAN ? pre[pl] : 0.0f;
            float lv = kind == LAT_VAE_GAUSSIAN ? lat_act(act, al) : extra[part[5]];
            float inv = expf(-lv);
            float dlv = 0.5f - 0.5f * r * r * inv;
            nll = LAT_VAE_HALF_LN_2PI + 0.5f * lv + 0.5f * r * r * inv;
            dpre[pm] = scale * (-r * inv) * lat_act_grad(act, a, m);
            if (kind == LAT_VAE_GAUSSIAN) {
                dpre[pl] = scale * dlv * lat_act_grad(act, al, lv);
            } else {
                glob_el[(long long)part[6] * n + i * size + j] = scale * dlv;
            }
        } else if (kind == LAT_VAE_EXPONENTIAL) {
            float gamma = lat_act(act, a);
            float lambda = expf(gamma);
            nll = lambda * t - gamma;
            dpre[pm] = scale * (lambda * t - 1.0f) * lat_act_grad(act, a, gamma);
        } else {
            float y = lat_act(act, a);
            float r = y - t;
            float inv_n = 1.0f / (float)size;
            nll = r * r * inv_n;
            dpre[pm] = scale * (2.0f * r * inv_n) * lat_act_grad(act, a, y);
        }
        rec_el[idx] = nll;
    }
}
