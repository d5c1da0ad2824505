//! Adam (Kingma & Ba 2014) and AdamW (Loshchilov & Hutter 2019, decoupled weight decay).
//! m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr (m / bc1) / (sqrt(v / bc2) + eps).

#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr: f32,
    b1: f32,
    b2: f32,
    eps: f32,
    bc1: f64,
    bc2: f64,
    wd: f32,
    decoupled: bool,
) {
    let step = lr / bc1 as f32;
    let inv_sqrt_bc2 = 1.0 / (bc2 as f32).sqrt();
    let (l2, shrink) = if decoupled { (0.0, 1.0 - lr * wd) } else { (wd, 1.0) };
    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g + l2 * *p;
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p = shrink * *p - step * *m / ((*v).sqrt() * inv_sqrt_bc2 + eps);
    }
}
