//! Hot elementwise loops compiled twice: for the baseline x86-64 (SSE2, 4 lanes), which the
//! library is built for since it ships as one binary for any machine, and for AVX2 (8 lanes),
//! chosen at run time as the GEMM kernels choose theirs. The results are the same bit for bit:
//! Rust never contracts a * b + c into a fused multiply-add, and every loop's order of additions
//! is fixed by its code (lane sums have explicit lanes), so only the vector width changes.
//!
//! [`multiversion!`] writes the dispatching function; the `unsafe` of calling a
//! `#[target_feature]` function lives here only.

use std::sync::OnceLock;

pub(crate) fn has_avx2() -> bool {
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `multiversion!(pub fn name(a: A, b: B) -> R => body_fn);` defines `name`, which calls
/// `body_fn(a, b)` (an `#[inline(always)]` function) compiled for AVX2 when the CPU has it, and
/// for the baseline otherwise.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if $crate::simd::has_avx2() {
                    // SAFETY: the CPU has AVX2 (checked at run time).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    #[inline(always)]
    fn body(x: &[f32], out: &mut [f32]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = crate::activation::sigmoid_fast(v) * 1.5 + v * v;
        }
    }
    super::multiversion!(fn wide(x: &[f32], out: &mut [f32]) => body);

    #[test]
    fn both_versions_give_the_same_bits() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 20.0).collect();
        let (mut a, mut b) = (vec![0f32; 1000], vec![0f32; 1000]);
        body(&x, &mut a);
        wide(&x, &mut b);
        assert!(a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()));
    }
}
