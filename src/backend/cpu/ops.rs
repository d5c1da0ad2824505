//! The CPU's primitives: each [`Op`] over `Lined` views.

#![forbid(unsafe_code)]

use crate::parallel;

use super::{Cpu, Lined};
use crate::activation::softplus;
use crate::backend::ops::{Op, Slot};
use crate::backend::philox::{normal, philox};
use crate::error::Result;
use crate::optim::{OptimizerConfig, OptimizerKind, Piece};
use crate::rng::Philox;

type In<'a> = crate::backend::ops::In<'a, Lined>;
type Out<'a> = crate::backend::ops::Out<'a, Lined>;

fn view<'a>(v: In<'a>, n: usize) -> &'a [f32] {
    &v.0[v.1..v.1 + n]
}

fn view_mut<'a>(v: Out<'a>, n: usize) -> &'a mut [f32] {
    &mut v.0[v.1..v.1 + n]
}

/// One primitive on the CPU. Where a CPU model has the formula as a function (activations,
/// losses, corruption, sampling, the optimizer passes, functional connections), the primitive
/// is that function; the rest are written here once, element by element as the kernels are.
#[allow(clippy::needless_range_loop)]
pub(super) fn run(cpu: &Cpu, op: Op<'_, Cpu>) -> Result<()> {
    match op {
        Op::BiasAct { z, b, y, rows, cols, act: a } => {
            let (z, y, b) = (view_mut(z, rows * cols), view_mut(y, rows * cols), view(b, cols));
            a.forward_rows(z, b, y);
            // The kernel leaves z + b in z whatever the activation; forward_rows only where f'
            // reads z.
            if !a.z_has_bias() {
                for zr in z.chunks_exact_mut(b.len()) {
                    zr.iter_mut().zip(b).for_each(|(z, b)| *z += b);
                }
            }
        }
        Op::ActOnly { z, y, n, act: a } => {
            let (z, y) = (view(z, n), view_mut(y, n));
            for i in 0..n {
                y[i] = a.apply(z[i]);
            }
        }
        Op::FunctionalForward { params, p, b, x, z, rows, n_in, n_out, family, sign_seed } => {
            let f = crate::layer::Functional { n_in, n_out, family, p, b, sign_seed };
            f.forward(params, view(x, rows * n_in), rows, view_mut(z, rows * n_out), cpu.threads);
        }
        Op::FunctionalBackward { params, p, b, grads, x, dz, dx, rows, n_in, n_out, family, sign_seed } => {
            let f = crate::layer::Functional { n_in, n_out, family, p, b, sign_seed };
            let dx = dx.map(|d| view_mut(d, rows * n_in));
            f.backward(params, grads, view(x, rows * n_in), view(dz, rows * n_out), dx, rows, cpu.threads);
        }
        Op::ActBackward { d, z, y, n, act: a } => {
            let (d, z, y) = (view_mut(d, n), view(z, n), view(y, n));
            a.backward_in_place(z, y, d);
        }
        Op::Loss { z, y, t, dz, el, n, loss, act: a, inv } => {
            let (z, y, t) = (view(z, n), view(y, n), view(t, n));
            let (dz, el) = (view_mut(dz, n), view_mut(el, n));
            for i in 0..n {
                match loss {
                    crate::loss::Loss::BinaryCrossEntropy => {
                        el[i] = softplus(z[i]) - t[i] * z[i];
                        dz[i] = (y[i] - t[i]) * inv;
                    }
                    crate::loss::Loss::Mse | crate::loss::Loss::L2 => {
                        let d = y[i] - t[i];
                        el[i] = d * d;
                        dz[i] = 2.0 * inv * d * a.derivative(z[i], y[i]);
                    }
                    _ => {
                        let (e, g) = loss.element_grad(a, z[i], y[i], t[i]);
                        el[i] = e;
                        dz[i] = inv * g;
                    }
                }
            }
        }
        Op::LossRows { z, y, t, dz, el, rows, cols, loss, act: a, inv } => {
            let n = rows * cols;
            let (z, y, t) = (view(z, n), view(y, n), view(t, n));
            let (dz, el) = (view_mut(dz, n), view_mut(el, rows));
            for r in 0..rows {
                let s = r * cols..(r + 1) * cols;
                el[r] = loss.row(a, &z[s.clone()], &y[s.clone()], &t[s.clone()], Some((&mut dz[s], inv))) as f32;
            }
        }
        Op::SoftmaxCe { logits, labels, dz, el, rows, classes, inv } => {
            let (l, lab) = (view(logits, rows * classes), view(labels, rows));
            let (dz, el) = (view_mut(dz, rows * classes), view_mut(el, rows));
            // The CPU network's formula, a row at a time for the row losses.
            for (r, el) in el.iter_mut().enumerate() {
                let (at, to) = (r * classes, (r + 1) * classes);
                let dz = &mut dz[at..to];
                *el = crate::task::softmax_cross_entropy(&l[at..to], &lab[r..r + 1], classes, inv, dz) as f32;
            }
        }
        Op::KlValue { mean, el, cols, rho } => {
            let (mean, el) = (view(mean, cols), view_mut(el, cols));
            let r = rho as f64;
            for j in 0..cols {
                let p = (mean[j] as f64).clamp(1e-6, 1.0 - 1e-6);
                el[j] = (r * (r / p).ln() + (1.0 - r) * ((1.0 - r) / (1.0 - p)).ln()) as f32;
            }
        }
        Op::KlGrad { dy, mean, rows, cols, rho, beta } => {
            let (dy, mean) = (view_mut(dy, rows * cols), view(mean, cols));
            for i in 0..rows * cols {
                let p = (mean[i % cols] as f64).clamp(1e-6, 1.0 - 1e-6);
                let (rho, beta) = (rho as f64, beta as f64);
                dy[i] += (beta / rows as f64 * (-rho / p + (1.0 - rho) / (1.0 - p))) as f32;
            }
        }
        Op::L1 { dy, y, el, n, g } => {
            let (dy, y, el) = (view_mut(dy, n), view(y, n), view_mut(el, n));
            for i in 0..n {
                el[i] = y[i].abs();
                dy[i] += if y[i] > 0.0 {
                    g
                } else if y[i] < 0.0 {
                    -g
                } else {
                    0.0
                };
            }
        }
        Op::ActGradSq { z, y, out, n, act: a } => {
            let (z, y, out) = (view(z, n), view(y, n), view_mut(out, n));
            for i in 0..n {
                let d = a.derivative(z[i], y[i]);
                out[i] = d * d;
            }
        }
        Op::ColSqSums { w, s, n_in, n_out } => {
            let (w, s) = (view(w, n_in * n_out), view_mut(s, n_out));
            for (j, s) in s.iter_mut().enumerate() {
                *s = (0..n_in).map(|i| w[i * n_out + j] * w[i * n_out + j]).sum();
            }
        }
        Op::ContractiveDz { dz, z, y, s, rows, cols, act: a, scale } => {
            let n = rows * cols;
            let (dz, z, y, s) = (view_mut(dz, n), view(z, n), view(y, n), view(s, cols));
            for i in 0..n {
                dz[i] += 2.0 * scale * s[i % cols] * a.derivative(z[i], y[i]) * a.second_derivative(z[i], y[i]);
            }
        }
        Op::ContractiveDw { dw, w, fsq, n_in, n_out, scale } => {
            let n = n_in * n_out;
            let (dw, w, fsq) = (view_mut(dw, n), view(w, n), view(fsq, n_out));
            for i in 0..n {
                dw[i] += 2.0 * scale * fsq[i % n_out] * w[i];
            }
        }
        Op::Add { x, y, n } => {
            view_mut(y, n).iter_mut().zip(view(x, n)).for_each(|(y, x)| *y += x);
        }
        Op::Mul { a, b, out, n } => {
            let (a, b, out) = (view(a, n), view(b, n), view_mut(out, n));
            for i in 0..n {
                out[i] = a[i] * b[i];
            }
        }
        Op::Corrupt { x, out, range, rows, cols, corruption, seed, ctr, first } => {
            let n = rows * cols;
            let (x, out) = (view(x, n), view_mut(out, n));
            let range = range.map(|(lo, hi)| (view(lo, cols), view(hi, cols)));
            // Element i draws element first + i of counter ctr (first: whole rows): whole rows per
            // chunk, the same numbers on any thread count.
            let chunk = rows.div_ceil(cpu.threads).max(1) * cols;
            let at = first / cols;
            let one = |c: usize, out: &mut [f32], x: &[f32]| {
                corruption.apply(x, cols, range, Philox::new(seed, ctr), at + c * chunk / cols, out)
            };
            if cpu.threads <= 1 {
                one(0, out, x);
            } else {
                parallel::for_each_chunk_mut([out], chunk, cpu.threads, |c, [o]| {
                    one(c, o, parallel::chunk(x, c, chunk))
                });
            }
        }
        Op::Sample { y, s, n, kind, seed, ctr, first } => {
            let (y, s) = (view(y, n), view_mut(s, n));
            let chunk = n.div_ceil(cpu.threads).div_ceil(64).max(1) * 64;
            let one = |c: usize, s: &mut [f32], y: &[f32]| {
                kind.sample(y, s, Philox::new(seed, ctr), (first + c * chunk) as u64)
            };
            if cpu.threads <= 1 {
                one(0, s, y);
            } else {
                parallel::for_each_chunk_mut([s], chunk, cpu.threads, |c, [s]| one(c, s, parallel::chunk(y, c, chunk)));
            }
        }
        Op::CodeNoise { z, y, bias, ids, rows, cols, act: a, sigma, seed } => {
            let n = rows * cols;
            let (z, y) = (view_mut(z, n), view_mut(y, n));
            let bias = bias.map(|b| view(b, cols));
            for i in 0..n {
                let u = philox(seed, ids.0[ids.1 + i / cols] as u64, (i % cols) as u64);
                let noise = sigma * normal(u[0], u[1]);
                // z + b + noise in the kernel's order; a z stored without its bias stays so.
                let full = bias.map_or(z[i], |b| z[i] + b[i % cols]) + noise;
                z[i] += noise;
                y[i] = a.apply(full);
            }
        }
        Op::GatherRows { src, ids, dst, rows, cols } => {
            let dst = view_mut(dst, rows * cols);
            for (r, &id) in ids.0[ids.1..ids.1 + rows].iter().enumerate() {
                let s = src.1 + id as usize * cols;
                dst[r * cols..(r + 1) * cols].copy_from_slice(&src.0[s..s + cols]);
            }
        }
        Op::SplitRows { src, x, t, rows, cols, tw } => {
            let src = view(src, rows * (cols + tw));
            let (x, t) = (view_mut(x, rows * cols), view_mut(t, rows * tw));
            crate::task::split_rows(src, cols, tw, x, t);
        }
        Op::Fill { x, n, v } => view_mut(x, n).fill(v),
        Op::Sgd { p, g, v, n, wd, gscale, lr, mu, nesterov } => {
            let g = scaled(view(g, n), gscale[0]);
            let c = OptimizerConfig { kind: OptimizerKind::Sgd, momentum: mu, nesterov, ..Default::default() };
            let piece = Piece { range: 0..n, decay: wd, bc1: 1.0, bc2: 1.0 };
            crate::optim::update(&c, mu, &piece, lr, view_mut(p, n), &g, view_mut(v, n), &mut [], cpu.threads);
        }
        Op::Adaptive { kind, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, bc1, bc2 } => {
            let g = scaled(view(g, n), gscale[0]);
            let c = OptimizerConfig { kind, beta1: b1, beta2: b2, epsilon: eps, ..Default::default() };
            let piece = Piece { range: 0..n, decay: wd, bc1, bc2 };
            crate::optim::update(&c, 0.0, &piece, lr, view_mut(p, n), &g, view_mut(m, n), view_mut(v, n), cpu.threads);
        }
        Op::ClipFactor { factor, max_norm } => {
            let norm = std::mem::take(&mut cpu.slots()[Slot::GradSq as usize]).sqrt();
            factor[0] = if max_norm > 0.0 && norm > max_norm as f64 { (max_norm as f64 / norm) as f32 } else { 1.0 };
        }
        Op::Sum { x, n, slot, scale } => {
            let s: f64 = view(x, n).iter().map(|&v| v as f64).sum();
            cpu.slots()[slot as usize] += scale * s;
        }
        Op::SumSq { x, n, slot } => {
            let s: f64 = view(x, n).iter().map(|&v| (v as f64) * (v as f64)).sum();
            cpu.slots()[slot as usize] += s;
        }
        Op::SumTo { x, n, out, scale } => {
            let s: f64 = view(x, n).iter().map(|&v| v as f64).sum();
            view_mut(out, 1)[0] = (s * scale) as f32;
        }
        Op::VaeReparam { head, eps, zs, rows, samples, latent, learned, const_lv, seed, ctr, first, batch } => {
            let total = rows * samples * latent;
            let hw = if learned { 2 * latent } else { latent };
            let head = view(head, rows * hw);
            let (eps, zs) = (view_mut(eps, total), view_mut(zs, total));
            // Draw l of row r, unit j is element ((l * batch + first + r) * latent + j): one
            // contiguous run per draw, as the CPU VAE fills it (the SIMD generator).
            let draws = Philox::new(seed, ctr);
            for (l, e) in eps.chunks_exact_mut(rows * latent).enumerate() {
                draws.fill_normal(((l * batch + first) * latent) as u64, e);
            }
            for (k, (z, e)) in zs.iter_mut().zip(eps.iter()).enumerate() {
                let (r, j) = ((k / latent) % rows, k % latent);
                let (mu, lv) = posterior(head, r, j, latent, learned, const_lv);
                *z = mu + (0.5 * lv).exp() * e;
            }
        }
        Op::VaeKl { head, kl_el, dhead, rows, latent, learned, const_lv, beta } => {
            let hw = if learned { 2 * latent } else { latent };
            let head = view(head, rows * hw);
            let (kl_el, dhead) = (view_mut(kl_el, rows * latent), view_mut(dhead, rows * hw));
            let kl_scale = beta / rows as f32;
            for i in 0..rows * latent {
                let (r, j) = (i / latent, i % latent);
                let (mu, lv) = posterior(head, r, j, latent, learned, const_lv);
                let (m, v) = (mu as f64, lv as f64);
                kl_el[i] = (0.5 * (m * m + v.exp_m1() - v)) as f32;
                let sigma = (0.5 * lv).exp();
                dhead[r * hw + j] = kl_scale * mu;
                if learned {
                    dhead[r * hw + latent + j] = kl_scale * 0.5 * (sigma * sigma - 1.0);
                }
            }
        }
        Op::VaeReparamBackward {
            head_z,
            head_y,
            dzs,
            eps,
            dhead,
            rows,
            samples,
            latent,
            learned,
            const_lv,
            act: a,
        } => {
            let hw = if learned { 2 * latent } else { latent };
            let total = rows * samples * latent;
            let (head_z, head_y) = (view(head_z, rows * hw), view(head_y, rows * hw));
            let (dzs, eps, dhead) = (view(dzs, total), view(eps, total), view_mut(dhead, rows * hw));
            for i in 0..rows * latent {
                let (r, j) = (i / latent, i % latent);
                let (mu, lv) = posterior(head_y, r, j, latent, learned, const_lv);
                let sigma = (0.5 * lv).exp();
                let (im, il) = (r * hw + j, r * hw + latent + j);
                let mut dmu = dhead[im];
                let mut dlv = if learned { dhead[il] } else { 0.0 };
                for l in 0..samples {
                    let k = (l * rows + r) * latent + j;
                    let d = dzs[k];
                    dmu += d;
                    dlv += d * eps[k] * 0.5 * sigma;
                }
                dhead[im] = dmu * a.derivative(head_z[im], mu);
                if learned {
                    dhead[il] = dlv * a.derivative(head_z[il], lv);
                }
            }
        }
        Op::VaeRecon { .. } => {
            // The CPU runs the VAE's own row formula through Backend::vae_recon (cpu/mod.rs);
            // the part table is the kernels' encoding of it.
            return Err(crate::error::Error::Internal(
                "the CPU backend runs Backend::vae_recon, not Op::VaeRecon".into(),
            ));
        }
    }
    Ok(())
}

/// (mu, log-variance) of example r's latent unit j (lat_vae_posterior).
fn posterior(head: &[f32], r: usize, j: usize, latent: usize, learned: bool, const_lv: f32) -> (f32, f32) {
    if learned {
        (head[r * 2 * latent + j], head[r * 2 * latent + latent + j])
    } else {
        (head[r * latent + j], const_lv)
    }
}

/// The gradient times the clipping factor (borrowed as it is when the factor is 1).
fn scaled(g: &[f32], s: f32) -> std::borrow::Cow<'_, [f32]> {
    if s == 1.0 { std::borrow::Cow::Borrowed(g) } else { g.iter().map(|v| s * v).collect() }
}
