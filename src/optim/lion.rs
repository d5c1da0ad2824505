//! Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2): the
//! sign of an interpolated momentum, with decoupled weight decay as AdamW's:
//! c = b1 m + (1 - b1) g; w = (1 - lr wd) w - lr sign(c); m = b2 m + (1 - b2) g.
//! sign(0) = 0 and sign(NaN) = NaN, as torch.sign. Every step moves a weight by lr exactly, so Lion wants a learning
//! rate 3-10x smaller than Adam's (the paper's advice).

#[inline(always)]
pub fn update(p: &mut [f32], g: &[f32], m: &mut [f32], lr: f32, b1: f32, b2: f32, wd: f32) {
    let shrink = 1.0 - lr * wd;
    for ((p, g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
        let c = b1 * *m + (1.0 - b1) * g;
        // NaN stays NaN, so a diverged step is seen.
        let s = if c > 0.0 {
            1.0
        } else if c < 0.0 {
            -1.0
        } else {
            c * 0.0
        };
        *p = shrink * *p - lr * s;
        *m = b2 * *m + (1.0 - b2) * g;
    }
}
