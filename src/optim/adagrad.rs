//! AdaGrad (Duchi, Hazan & Singer 2011), PyTorch's form (no learning-rate decay, accumulator
//! starting at 0): v += g^2; w -= lr g / (sqrt(v) + eps). L2 decay adds wd w to g.

#[inline(always)]
pub fn update(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, eps: f32, wd: f32) {
    for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        let g = g + wd * *p;
        *v += g * g;
        *p -= lr * g / ((*v).sqrt() + eps);
    }
}
