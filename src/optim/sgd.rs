//! SGD with optional momentum and Nesterov momentum, PyTorch's formulation:
//! v = mu v + g; w -= lr v (Nesterov: w -= lr (g + mu v)). L2 decay adds wd w to g.

#[inline(always)]
pub fn update(p: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, mu: f32, nesterov: bool, wd: f32) {
    if nesterov {
        for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            let g = g + wd * *p;
            *v = mu * *v + g;
            *p -= lr * (g + mu * *v);
        }
    } else {
        for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
            let g = g + wd * *p;
            *v = mu * *v + g;
            *p -= lr * *v;
        }
    }
}
