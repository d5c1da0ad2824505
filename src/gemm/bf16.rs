//! The bfloat16 product kernel: C = alpha * op(A) op(B) + beta * C, single-threaded, with every
//! product of two elements taken in bfloat16 and every sum in f32 (AVX-512 BF16's `vdpbf16ps`:
//! two multiply-adds per f32 lane per instruction). On Zen 4 it issues one a cycle, as many as
//! f32 FMAs, so the same instruction rate does twice the work: 234 against 117 GFLOP/s on one
//! core here (benches/README.md, "Lower-precision products").
//!
//! Goto's blocking, as BLIS and the f32 kernels do it: a depth block of B (KC values of k) is
//! packed into 16-column panels, then MC rows of A at a time into 16-row panels, and a 16 x 16
//! tile of C is summed in 16 registers from one A panel and one B panel (8 KB each, in L1).
//! Packing rounds each f32 to bfloat16 (to nearest, ties to even, as `vcvtne2ps2bf16`) and lays
//! k's pairs side by side: the u32 at (pair q, line l) holds x[l][2q] in its low half and
//! x[l][2q + 1] in its high half, the pair `vdpbf16ps` multiplies with the other operand's.
//!
//! Every element of C is one chain of `vdpbf16ps` over k's pairs in order, restarted at each
//! depth block and added to C there: it does not depend on the tile, the block of C a thread
//! computes or the thread count, so results are bit-identical across thread counts.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;
use std::cell::RefCell;

/// Lines (rows of A, columns of B) in a panel: one vector of f32 lanes.
const W: usize = 16;
/// k values in a depth block (128 pairs): a 16-line panel of it is 8 KB.
const KC: usize = 256;
/// Rows of A packed at a time (64 KB packed, in L2 while B's panels stream through L1).
const MC: usize = 128;
/// Columns of B packed at a time (512 KB packed at most).
const NC: usize = 1024;

/// Whether this CPU runs the kernel: AVX-512 F, BW and BF16 (Zen 4, Cooper Lake, Sapphire
/// Rapids and later).
pub fn available() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512bf16")
    })
}

thread_local! {
    /// This thread's packed panels of A and B, kept between calls: a fresh allocation of this
    /// size comes from mmap and faults every page in again (see `spare.rs`).
    static PACKED: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// C = alpha * op(A) op(B) + beta * C for m x k op(A) at `a` (element (i, p) at
/// `a[i * ars + p * acs]`), k x n op(B) at `b` (element (p, j) at `b[p * brs + j * bcs]`), and C
/// row-major with row stride `ldc`. beta = 0 never reads C; k = 0 leaves C as it is. False,
/// with C untouched, when this thread's packing space could not be allocated.
///
/// # Safety
/// [`available`] must be true; each of A and B must have a unit stride on one side (rows or
/// columns), and every element the strides reach for these shapes must lie in memory that is
/// readable (A, B) or writable by this thread alone (C's m x n block).
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    ars: isize,
    acs: isize,
    b: *const f32,
    brs: isize,
    bcs: isize,
    beta: f32,
    c: *mut f32,
    ldc: isize,
) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    PACKED.with(|cell| {
        let mut packed = cell.borrow_mut();
        let (ap, bp) = &mut *packed;
        let pairs_max = KC.div_ceil(2);
        let a_need = MC.div_ceil(W) * W * pairs_max;
        let b_need = n.min(NC).div_ceil(W) * W * pairs_max;
        // Fallible: under a tight `ulimit -v` the caller computes the product in f32 instead
        // of the process aborting on a failed allocation.
        for (v, need) in [(&mut *ap, a_need), (&mut *bp, b_need)] {
            if v.len() < need {
                if v.try_reserve_exact(need - v.len()).is_err() {
                    return false;
                }
                v.resize(need, 0);
            }
        }
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                let pairs = kc.div_ceil(2);
                // The first depth block applies beta; the later ones add to what it left.
                let beta_here = if pc == 0 { beta } else { 1.0 };
                // SAFETY: (caller) the block's elements lie in B; `bp` holds its panels.
                unsafe { pack(bp, b.offset(pc as isize * brs + jc as isize * bcs), bcs, brs, nc, kc) };
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    // SAFETY: as for B.
                    unsafe { pack(ap, a.offset(ic as isize * ars + pc as isize * acs), ars, acs, mc, kc) };
                    for jr in (0..nc).step_by(W) {
                        let bpanel = bp[(jr / W) * pairs * W..].as_ptr();
                        for ir in (0..mc).step_by(W) {
                            let apanel = ap[(ir / W) * pairs * W..].as_ptr();
                            let rows = W.min(mc - ir);
                            let cols = W.min(nc - jr);
                            // SAFETY: (caller) the tile lies in this thread's block of C; the
                            // panels hold `pairs` pairs of 16 lines each.
                            unsafe {
                                let ct = c.offset((ic + ir) as isize * ldc + (jc + jr) as isize);
                                tile(pairs, apanel, bpanel, ct, ldc, rows, cols, alpha, beta_here);
                            }
                        }
                    }
                }
            }
        }
        true
    })
}

/// The 16 x 16 sums of one A panel and one B panel over `pairs` pairs, one register each. In
/// assembly for the embedded broadcast (`{1to16}`): from intrinsics the compiler broadcast each
/// A pair into a register first, an extra instruction per `vdpbf16ps`, and the products ran at
/// 144-163 GFLOP/s on one Zen 4 core against 195-219 with this loop.
#[target_feature(enable = "avx512f,avx512bf16")]
fn sums(pairs: usize, ap: *const u32, bp: *const u32) -> [__m512; W] {
    let mut s = [_mm512_setzero_ps(); W];
    if pairs == 0 {
        return s;
    }
    // The B vector's register, named rather than `out(zmm_reg) _`: built with AVX-512 on
    // (`-C target-cpu=native` on Zen 4), rustc 1.95 printed a discarded zmm output as a
    // general register ("R21BH") and the assembly did not compile.
    let _bv: __m512;
    // SAFETY: (caller of `tile`) each panel holds `pairs` rows of 16 u32; the loop reads
    // exactly those, 64 bytes of each a pair.
    unsafe {
        std::arch::asm!(
            "2:",
            "vmovups {bv}, [{b}]",
            "vdpbf16ps {s0}, {bv}, dword ptr [{a}]{{1to16}}",
            "vdpbf16ps {s1}, {bv}, dword ptr [{a} + 4]{{1to16}}",
            "vdpbf16ps {s2}, {bv}, dword ptr [{a} + 8]{{1to16}}",
            "vdpbf16ps {s3}, {bv}, dword ptr [{a} + 12]{{1to16}}",
            "vdpbf16ps {s4}, {bv}, dword ptr [{a} + 16]{{1to16}}",
            "vdpbf16ps {s5}, {bv}, dword ptr [{a} + 20]{{1to16}}",
            "vdpbf16ps {s6}, {bv}, dword ptr [{a} + 24]{{1to16}}",
            "vdpbf16ps {s7}, {bv}, dword ptr [{a} + 28]{{1to16}}",
            "vdpbf16ps {s8}, {bv}, dword ptr [{a} + 32]{{1to16}}",
            "vdpbf16ps {s9}, {bv}, dword ptr [{a} + 36]{{1to16}}",
            "vdpbf16ps {s10}, {bv}, dword ptr [{a} + 40]{{1to16}}",
            "vdpbf16ps {s11}, {bv}, dword ptr [{a} + 44]{{1to16}}",
            "vdpbf16ps {s12}, {bv}, dword ptr [{a} + 48]{{1to16}}",
            "vdpbf16ps {s13}, {bv}, dword ptr [{a} + 52]{{1to16}}",
            "vdpbf16ps {s14}, {bv}, dword ptr [{a} + 56]{{1to16}}",
            "vdpbf16ps {s15}, {bv}, dword ptr [{a} + 60]{{1to16}}",
            "add {a}, 64",
            "add {b}, 64",
            "dec {n}",
            "jnz 2b",
            a = inout(reg) ap => _,
            b = inout(reg) bp => _,
            n = inout(reg) pairs => _,
            bv = out(zmm_reg) _bv,
            s0 = inout(zmm_reg) s[0],
            s1 = inout(zmm_reg) s[1],
            s2 = inout(zmm_reg) s[2],
            s3 = inout(zmm_reg) s[3],
            s4 = inout(zmm_reg) s[4],
            s5 = inout(zmm_reg) s[5],
            s6 = inout(zmm_reg) s[6],
            s7 = inout(zmm_reg) s[7],
            s8 = inout(zmm_reg) s[8],
            s9 = inout(zmm_reg) s[9],
            s10 = inout(zmm_reg) s[10],
            s11 = inout(zmm_reg) s[11],
            s12 = inout(zmm_reg) s[12],
            s13 = inout(zmm_reg) s[13],
            s14 = inout(zmm_reg) s[14],
            s15 = inout(zmm_reg) s[15],
            options(nostack, readonly),
        );
    }
    s
}

/// One 16 x 16 tile: sums over `pairs` pairs of k, then C = alpha * sum + beta * C for its first
/// `rows` rows and `cols` columns.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile(
    pairs: usize,
    ap: *const u32,
    bp: *const u32,
    c: *mut f32,
    ldc: isize,
    rows: usize,
    cols: usize,
    alpha: f32,
    beta: f32,
) {
    let acc = sums(pairs, ap, bp);
    // SAFETY: (caller) the tile's rows and columns of C are this thread's.
    unsafe {
        let mask = ((1u32 << cols) - 1) as u16;
        let va = _mm512_set1_ps(alpha);
        for (i, s) in acc.iter().enumerate().take(rows) {
            let p = c.offset(i as isize * ldc);
            let mut v = _mm512_mul_ps(*s, va);
            if beta != 0.0 {
                v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, p), _mm512_set1_ps(beta), v);
            }
            _mm512_mask_storeu_ps(p, mask, v);
        }
    }
}

/// Packs `lines` lines of `kc` k values starting at `x` (element (line l, k p) at
/// `x[l * ls + p * ks]`) into panels of 16 lines: `out[(panel * pairs + q) * 16 + l % 16]` is the
/// bfloat16 pair of line l at k = 2q, 2q + 1; lines past the last and the k past an odd kc are 0.
///
/// # Safety
/// The CPU has AVX-512 F, BW and BF16; `ls` or `ks` is 1; the elements lie in readable memory.
unsafe fn pack(out: &mut [u32], x: *const f32, ls: isize, ks: isize, lines: usize, kc: usize) {
    let pairs = kc.div_ceil(2);
    assert!(out.len() >= lines.div_ceil(W) * W * pairs, "bf16 pack: panel space");
    // SAFETY: (caller) as documented; every store below lies in `out` (asserted).
    unsafe {
        if ls == 1 {
            pack_lines_contiguous(out.as_mut_ptr(), x, ks, lines, kc);
        } else {
            debug_assert_eq!(ks, 1, "bf16 pack: one stride must be 1");
            pack_k_contiguous(out.as_mut_ptr(), x, ls, lines, kc);
        }
    }
}

/// Lines side by side in memory (the rows of a row-major B, the columns of A stored transposed):
/// two k rows of 16 lines make one panel row, interleaved.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_lines_contiguous(out: *mut u32, x: *const f32, ks: isize, lines: usize, kc: usize) {
    let pairs = kc.div_ceil(2);
    // Output u16 2i is the even row's bfloat16 of line i, 2i + 1 the odd row's.
    let idx = _mm512_set_epi16(
        31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
        16, 0,
    );
    // SAFETY: (caller) loads are masked to the lines and k values that exist; stores lie in the
    // panels (`pack`'s assert).
    unsafe {
        for l0 in (0..lines).step_by(W) {
            let mask = ((1u32 << W.min(lines - l0)) - 1) as u16;
            let panel = out.add((l0 / W) * pairs * W);
            for q in 0..pairs {
                let even = _mm512_maskz_loadu_ps(mask, x.offset((2 * q) as isize * ks + l0 as isize));
                let odd = if 2 * q + 1 < kc {
                    _mm512_maskz_loadu_ps(mask, x.offset((2 * q + 1) as isize * ks + l0 as isize))
                } else {
                    _mm512_setzero_ps()
                };
                let halves: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(odd, even));
                _mm512_storeu_si512(panel.add(q * W).cast(), _mm512_permutexvar_epi16(idx, halves));
            }
        }
    }
}

/// k side by side in memory (the rows of a row-major A, the columns of B stored transposed):
/// 32 k values of a line convert to its 16 pairs in order; 16 lines of those are transposed.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_k_contiguous(out: *mut u32, x: *const f32, ls: isize, lines: usize, kc: usize) {
    let pairs = kc.div_ceil(2);
    // SAFETY: (caller) loads are masked to the k values that exist, of lines that exist; stores
    // lie in the panels (`pack`'s assert) and cover the pairs that exist.
    unsafe {
        for l0 in (0..lines).step_by(W) {
            let nl = W.min(lines - l0);
            let panel = out.add((l0 / W) * pairs * W);
            for k0 in (0..kc).step_by(2 * W) {
                let left = kc - k0;
                let lo = ((1u32 << left.min(W)) - 1) as u16;
                let hi = ((1u64 << left.saturating_sub(W).min(W)) - 1) as u16;
                let mut r = [_mm512_setzero_si512(); W];
                for (i, v) in r.iter_mut().enumerate().take(nl) {
                    let line = x.offset((l0 + i) as isize * ls + k0 as isize);
                    let first = _mm512_maskz_loadu_ps(lo, line);
                    let second = _mm512_maskz_loadu_ps(hi, line.add(W));
                    *v = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(second, first));
                }
                let t = transpose16(r);
                let q0 = k0 / 2;
                for (q, row) in t.iter().enumerate().take(pairs - q0) {
                    _mm512_storeu_si512(panel.add((q0 + q) * W).cast(), *row);
                }
            }
        }
    }
}

/// The transpose of a 16 x 16 matrix of u32 held one row per register.
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512i; W]) -> [__m512i; W] {
    // Pairs of rows interleaved by 32 bits, then by 64: s[4g + c] holds, in its 128-bit lane L,
    // rows 4g..4g + 3 of column 4L + c.
    let mut t = [_mm512_setzero_si512(); W];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    let mut s = [_mm512_setzero_si512(); W];
    for g in 0..4 {
        let (t0, t1, t2, t3) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        s[4 * g] = _mm512_unpacklo_epi64(t0, t2);
        s[4 * g + 1] = _mm512_unpackhi_epi64(t0, t2);
        s[4 * g + 2] = _mm512_unpacklo_epi64(t1, t3);
        s[4 * g + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    // Column 4L + c gathers lane L of s[c], s[4 + c], s[8 + c], s[12 + c].
    let mut o = [_mm512_setzero_si512(); W];
    for c in 0..4 {
        let u0 = _mm512_shuffle_i32x4::<0x88>(s[c], s[4 + c]);
        let u1 = _mm512_shuffle_i32x4::<0xDD>(s[c], s[4 + c]);
        let u2 = _mm512_shuffle_i32x4::<0x88>(s[8 + c], s[12 + c]);
        let u3 = _mm512_shuffle_i32x4::<0xDD>(s[8 + c], s[12 + c]);
        o[c] = _mm512_shuffle_i32x4::<0x88>(u0, u2);
        o[8 + c] = _mm512_shuffle_i32x4::<0xDD>(u0, u2);
        o[4 + c] = _mm512_shuffle_i32x4::<0x88>(u1, u3);
        o[12 + c] = _mm512_shuffle_i32x4::<0xDD>(u1, u3);
    }
    o
}

/// bfloat16 of x rounded to nearest, ties to even, as `vcvtne2ps2bf16` rounds a finite normal
/// value (the tests' reference).
#[cfg(test)]
pub(crate) fn round_to_bf16(x: f32) -> f32 {
    let u = x.to_bits();
    let r = u.wrapping_add(0x7fff + ((u >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd_stream(mut seed: u32) -> impl FnMut() -> f32 {
        move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        }
    }

    /// The packed layout, element by element, for both packers, odd and even k, partial panels.
    #[test]
    fn packing_rounds_and_lays_out_pairs_by_panel() {
        if !available() {
            return;
        }
        let mut rnd = rnd_stream(3);
        for &(lines, kc) in &[(16usize, 32usize), (5, 7), (37, 64), (33, 1), (16, 33), (70, 256), (1, 2)] {
            let pairs = kc.div_ceil(2);
            let data: Vec<f32> = (0..lines * kc).map(|_| rnd()).collect();
            for k_contiguous in [false, true] {
                // Element (l, p) at data[l * kc + p] or data[p * lines + l].
                let (ls, ks) = if k_contiguous { (kc as isize, 1) } else { (1, lines as isize) };
                let mut out = vec![0xdead_beefu32; lines.div_ceil(W) * W * pairs];
                // SAFETY: available() checked; the strides stay inside `data`.
                unsafe { pack(&mut out, data.as_ptr(), ls, ks, lines, kc) };
                for l in 0..lines.div_ceil(W) * W {
                    for q in 0..pairs {
                        let at = |p: usize| {
                            if l < lines && p < kc {
                                round_to_bf16(data[(l as isize * ls + p as isize * ks) as usize]).to_bits() >> 16
                            } else {
                                0
                            }
                        };
                        let want = at(2 * q) | (at(2 * q + 1) << 16);
                        let got = out[((l / W) * pairs + q) * W + l % W];
                        assert_eq!(got, want, "lines {lines} kc {kc} k_contiguous {k_contiguous} line {l} pair {q}");
                    }
                }
            }
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(round_to_bf16(1.0), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1.
        assert_eq!(round_to_bf16(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(round_to_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(round_to_bf16(-(1.0 + 1.5 / 256.0)), -(1.0 + 2.0 / 256.0));
    }
}
