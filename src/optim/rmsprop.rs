//! RMSprop (Tieleman & Hinton 2012, lecture 6e), PyTorch's form (not centered, no momentum):
//! v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps), with rho = beta2 (the same role as
//! Adam's). L2 decay adds wd w to g.

#[inline(always)]
pub fn update(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, rho: f32, eps: f32, wd: f32) {
    for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = g + wd * *p;
        *v = rho * *v + (1.0 - rho) * g * g;
        *p -= lr * g / ((*v).sqrt() + eps);
    }
}
