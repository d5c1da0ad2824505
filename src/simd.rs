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
        #[allow(clippy::too_many_arguments, unsafe_code)]
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

/// The first two words of Philox4x32-10 (`backend::philox::philox`) for the elements
/// first, first + 1, ... of draw `ctr` under `key`, into `a` and `b` (the same length). The
/// compiler does not vectorise the scalar rounds (its 32 x 32 -> 64-bit products stay scalar), so
/// with AVX2 eight elements go through the rounds side by side as `vpmuludq` products; the words
/// are the same bits either way.
pub(crate) fn philox_words(key: u64, ctr: u64, first: u64, a: &mut [u32], b: &mut [u32]) {
    assert_eq!(a.len(), b.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time); the function writes only a[..n], b[..n]
        // for n = its length rounded down to 8.
        done = unsafe { philox_avx2(key, ctr, first, a, b) };
    }
    for (i, (a, b)) in a[done..].iter_mut().zip(&mut b[done..]).enumerate() {
        let w = crate::backend::philox::philox(key, ctr, first.wrapping_add((done + i) as u64));
        (*a, *b) = (w[0], w[1]);
    }
}

/// philox_words() for the first multiple of 8 elements; returns how many it wrote. Each counter
/// word lives in the low half of a 64-bit lane (`_mm256_mul_epu32` reads only that half, and the
/// xors keep it exact, so the high halves may hold anything).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn philox_avx2(key: u64, ctr: u64, first: u64, a: &mut [u32], b: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len()) / 8 * 8;
    let m0 = _mm256_set1_epi64x(0xD251_1F53);
    let m1 = _mm256_set1_epi64x(0xCD9E_8D57);
    let c2i = _mm256_set1_epi64x(ctr as u32 as i64);
    let c3i = _mm256_set1_epi64x((ctr >> 32) as i64);
    let pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    let mut at = 0;
    while at < n {
        let base = _mm256_set1_epi64x(first.wrapping_add(at as u64) as i64);
        let ia = _mm256_add_epi64(base, _mm256_setr_epi64x(0, 1, 2, 3));
        let ib = _mm256_add_epi64(base, _mm256_setr_epi64x(4, 5, 6, 7));
        let (mut x0, mut x1, mut x2, mut x3) = (ia, _mm256_srli_epi64(ia, 32), c2i, c3i);
        let (mut y0, mut y1, mut y2, mut y3) = (ib, _mm256_srli_epi64(ib, 32), c2i, c3i);
        let (mut k0, mut k1) = (key as u32, (key >> 32) as u32);
        for _ in 0..10 {
            let (kk0, kk1) = (_mm256_set1_epi64x(k0 as i64), _mm256_set1_epi64x(k1 as i64));
            let (p0, p1) = (_mm256_mul_epu32(x0, m0), _mm256_mul_epu32(x2, m1));
            let (q0, q1) = (_mm256_mul_epu32(y0, m0), _mm256_mul_epu32(y2, m1));
            x0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1), kk0);
            x1 = p1;
            x2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3), kk1);
            x3 = p0;
            y0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(q1, 32), y1), kk0);
            y1 = q1;
            y2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(q0, 32), y3), kk1);
            y3 = q0;
            k0 = k0.wrapping_add(0x9E37_79B9);
            k1 = k1.wrapping_add(0xBB67_AE85);
        }
        // The low halves of the lanes, elements at..at + 8 in order.
        let wa = _mm256_permute2x128_si256(
            _mm256_permutevar8x32_epi32(x0, pick),
            _mm256_permutevar8x32_epi32(y0, pick),
            0x20,
        );
        let wb = _mm256_permute2x128_si256(
            _mm256_permutevar8x32_epi32(x1, pick),
            _mm256_permutevar8x32_epi32(y1, pick),
            0x20,
        );
        // SAFETY: at + 8 <= n <= a.len(), b.len(); unaligned stores.
        unsafe {
            _mm256_storeu_si256(a.as_mut_ptr().add(at) as *mut __m256i, wa);
            _mm256_storeu_si256(b.as_mut_ptr().add(at) as *mut __m256i, wb);
        }
        at += 8;
    }
    n
}

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

    #[test]
    fn philox_words_match_the_scalar_generator() {
        // Lengths that are and are not multiples of 8, and a counter whose index crosses 2^32.
        for (n, first) in [(0usize, 0u64), (5, 3), (64, 0), (261, (1 << 32) - 100)] {
            let (mut a, mut b) = (vec![0u32; n], vec![0u32; n]);
            let (key, ctr) = (0x1234_5678_9ABC_DEF0, 77 << 8 | 3);
            super::philox_words(key, ctr, first, &mut a, &mut b);
            for i in 0..n {
                let w = crate::backend::philox::philox(key, ctr, first + i as u64);
                assert_eq!((a[i], b[i]), (w[0], w[1]), "element {i} of {n} from {first}");
            }
        }
    }
}
