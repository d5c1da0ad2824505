//! AdaDelta (Zeiler 2012, Algorithm 1), PyTorch's form, which scales the step by a learning rate
//! (1 in the paper): v = rho v + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(v + eps) g;
//! u = rho u + (1 - rho) d^2; w -= lr d, with rho = beta2 and u, the squared steps' average, in
//! the first-moment buffer. L2 decay adds wd w to g.

#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn update(p: &mut [f32], g: &[f32], u: &mut [f32], v: &mut [f32], lr: f32, rho: f32, eps: f32, wd: f32) {
    for (((p, g), u), v) in p.iter_mut().zip(g).zip(u.iter_mut()).zip(v.iter_mut()) {
        let g = g + wd * *p;
        *v = rho * *v + (1.0 - rho) * g * g;
        let d = (*u + eps).sqrt() / (*v + eps).sqrt() * g;
        *u = rho * *u + (1.0 - rho) * d * d;
        *p -= lr * d;
    }
}
