//! AdaMax (Kingma & Ba 2014, section 7.1: Adam with the infinity norm), PyTorch's form:
//! m = b1 m + (1 - b1) g; u = max(b2 u, |g| + eps); w -= lr / (1 - b1^t) m / u, with u in the
//! second-moment buffer. L2 decay adds wd w to g.

#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    u: &mut [f32],
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    bc1: f64,
    wd: f32,
) {
    let step = lr / bc1 as f32;
    for (((p, g), m), u) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(u.iter_mut()) {
        let g = g + wd * *p;
        *m = b1 * *m + (1.0 - b1) * g;
        *u = (b2 * *u).max(g.abs() + eps);
        *p -= step * *m / *u;
    }
}
