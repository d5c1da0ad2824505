//! The one CPU matrix-product entry point. Every product in the library goes through [`gemm`].
//!
//! Two kernels sit behind it, picked at run time from measurements (benches/workloads.rs prints
//! the one in use): `matrixmultiply` on Intel CPUs with AVX-512 (its 16 x 16 AVX-512 kernel ran
//! at the machine's peak there, stop 31), and the `gemm` crate elsewhere: on AVX2-only CPUs, on
//! AMD Zen 4 (W1 8% faster than matrixmultiply, W2 and W3 level, epochs alternated in one
//! process, stop 35), and for the one-row products of single-sample inference (5x faster).
//! Threads split the output into disjoint row or column blocks, each computed by a
//! single-threaded kernel: no reduction across threads, and no threaded GEMM ever runs inside a
//! rayon task. With `matrixmultiply` a result therefore does not depend on the thread count; the
//! `gemm` crate picks its inner kernels by block shape, so with it the last bits can change with
//! the thread count (tests/optim.rs `trainer_is_deterministic`).

use std::sync::atomic::{AtomicU8, Ordering};

use crate::activation::Activation;
use crate::error::{Error, Result};

#[cfg(target_arch = "x86_64")]
mod bf16;

/// Which kernel computes the blocked (many-row) products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Pick by CPU: matrixmultiply on Intel CPUs with AVX-512, else the gemm crate.
    Auto,
    MatrixMultiply,
    Gemm,
}

static KERNEL: AtomicU8 = AtomicU8::new(0);

/// Overrides the kernel choice for the whole process (benchmarks compare both).
pub fn set_kernel(k: Kernel) {
    KERNEL.store(
        match k {
            Kernel::Auto => 0,
            Kernel::MatrixMultiply => 1,
            Kernel::Gemm => 2,
        },
        Ordering::Relaxed,
    );
}

/// The kernel in use for blocked products after resolving `Auto`: `set_kernel`, else
/// `$LATENT_GEMM` (`mm` or `gemm`, read once), else by CPU.
pub fn kernel() -> Kernel {
    match KERNEL.load(Ordering::Relaxed) {
        1 => Kernel::MatrixMultiply,
        2 => Kernel::Gemm,
        _ => {
            static DEFAULT: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
            *DEFAULT.get_or_init(|| match std::env::var("LATENT_GEMM").as_deref() {
                Ok("mm") => Kernel::MatrixMultiply,
                Ok("gemm") => Kernel::Gemm,
                _ if has_avx512() && !is_amd() => Kernel::MatrixMultiply,
                _ => Kernel::Gemm,
            })
        }
    }
}

/// How the blocked products multiply (process-wide, as PyTorch's
/// `torch.set_float32_matmul_precision` and JAX's `jax_default_matmul_precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// f32 products, f32 sums: the default.
    F32,
    /// Each product of two elements in bfloat16 (8-bit mantissas, rounded to nearest even), the
    /// sums in f32, the results f32 (`vdpbf16ps`): twice the f32 rate on CPUs with AVX-512 BF16.
    /// Products of 4 rows or columns or fewer (one-row encodes among them) stay f32.
    Bf16,
}

/// The environment variable that sets the default [`Precision`]: `f32` (or `float32`,
/// `highest`) or `bf16` (or `bfloat16`, `medium`); case and blanks around ignored.
pub const PRECISION_ENV: &str = "LATENT_MATMUL_PRECISION";

static PRECISION: AtomicU8 = AtomicU8::new(0);

/// Whether this CPU multiplies in bfloat16 (AVX-512 F, BW and BF16: AMD Zen 4 and later, Intel
/// Cooper Lake, Sapphire Rapids and later).
pub fn bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        bf16::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Parses a precision name as `LATENT_MATMUL_PRECISION` takes it; None for anything else.
pub fn parse_precision(name: &str) -> Option<Precision> {
    match name.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" | "highest" => Some(Precision::F32),
        "bf16" | "bfloat16" | "medium" => Some(Precision::Bf16),
        _ => None,
    }
}

/// Sets the precision of every blocked product of the process from the next product on,
/// overriding `LATENT_MATMUL_PRECISION`. `Bf16` on a CPU without AVX-512 BF16 is
/// [`Error::Unsupported`] and changes nothing.
pub fn set_precision(p: Precision) -> Result<()> {
    if p == Precision::Bf16 && !bf16_available() {
        return Err(Error::Unsupported(
            "bfloat16 products need a CPU with AVX-512 BF16 (AMD Zen 4 or later, Intel Cooper Lake, Sapphire Rapids or later)"
                .into(),
        ));
    }
    PRECISION.store(if p == Precision::Bf16 { 2 } else { 1 }, Ordering::Relaxed);
    Ok(())
}

/// The precision in force: the last [`set_precision`], else `LATENT_MATMUL_PRECISION` (read
/// once; `bf16` where the CPU lacks AVX-512 BF16, or a name that does not parse, leaves f32),
/// else f32.
pub fn precision() -> Precision {
    match PRECISION.load(Ordering::Relaxed) {
        1 => Precision::F32,
        2 => Precision::Bf16,
        _ => {
            static DEFAULT: std::sync::OnceLock<Precision> = std::sync::OnceLock::new();
            *DEFAULT.get_or_init(|| match std::env::var(PRECISION_ENV).ok().as_deref().and_then(parse_precision) {
                Some(Precision::Bf16) if bf16_available() => Precision::Bf16,
                _ => Precision::F32,
            })
        }
    }
}

/// Which kernel computes one product's blocks (decided once per product, so every block of a
/// split rounds alike).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blocked {
    MatrixMultiply,
    GemmCrate,
    Bf16,
}

/// An AMD CPU (CPUID vendor "AuthenticAMD"): on Zen 4 the gemm crate ran W1 8% faster than
/// matrixmultiply's AVX-512 kernel and W2, W3 level (benches/README.md, stop 35).
fn is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let r = std::arch::x86_64::__cpuid(0);
        let word = |s: &[u8; 4]| u32::from_le_bytes(*s);
        r.ebx == word(b"Auth") && r.edx == word(b"enti") && r.ecx == word(b"cAMD")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Row-major operand: `data[r * ld + c]` is element (r, c) of the stored matrix; `trans`
/// means the product uses its transpose.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub trans: bool,
}

impl<'a> Operand<'a> {
    pub fn n(data: &'a [f32], ld: usize) -> Self {
        Operand { data, ld, trans: false }
    }
    pub fn t(data: &'a [f32], ld: usize) -> Self {
        Operand { data, ld, trans: true }
    }
    /// (row stride, column stride) of op(X).
    fn strides(&self) -> (isize, isize) {
        if self.trans { (1, self.ld as isize) } else { (self.ld as isize, 1) }
    }
    /// Panics unless op(X) of shape rows x cols lies inside `data`.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let (sr, sc) = if self.trans { (cols, rows) } else { (rows, cols) };
        assert!(self.ld >= sc, "gemm: {what} leading dimension {} < {sc}", self.ld);
        let need = (sr - 1) * self.ld + sc;
        assert!(self.data.len() >= need, "gemm: {what} has {} values, needs {need}", self.data.len());
    }
}

#[derive(Clone, Copy)]
struct SendPtr<T>(T);
// SAFETY: a SendPtr carries a product's operand pointers to the pool threads of that product
// only; the slices they come from are borrowed for the whole product, A, B and the epilogue's
// inputs are only read, and each thread writes its own disjoint block of C (and of y).
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as for Send: shared only within one product, reads of borrowed inputs, disjoint writes.
unsafe impl<T> Sync for SendPtr<T> {}

/// C (m x n, leading dimension ldc) = alpha * op(A) op(B) + beta * C, where op(A) is m x k.
/// `threads` > 1 splits the work over the current rayon pool (call it inside the library's pool).
/// beta = 0 never reads C, so C may hold garbage (even NaN).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    gemm_then(m, n, k, alpha, a, b, beta, c, ldc, threads, Epilogue::None)
}

/// Elementwise work fused into a product: each thread applies it to its block of C right after
/// computing it, while the block is in cache and without another trip through the pool.
pub enum Epilogue<'a> {
    None,
    /// y = act(C + bias) per row (C becomes C + bias where the activation's derivative needs
    /// the pre-activation); y has C's shape and leading dimension.
    BiasAct {
        bias: &'a [f32],
        act: Activation,
        y: &'a mut [f32],
    },
    /// C *= act'(z, y): C is dL/dy of a layer whose pre-activation and output are z and y
    /// (C's shape and leading dimension).
    ActGrad {
        act: Activation,
        z: &'a [f32],
        y: &'a [f32],
    },
}

/// [`gemm`] followed by an [`Epilogue`] on each block of C.
#[allow(clippy::too_many_arguments)]
pub fn gemm_then(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
    epilogue: Epilogue,
) {
    gemm_at(precision(), m, n, k, alpha, a, b, beta, c, ldc, threads, epilogue)
}

/// [`gemm_then`] at a given precision (`Bf16` only where [`bf16_available`]).
#[allow(clippy::too_many_arguments)]
fn gemm_at(
    precision: Precision,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Operand,
    b: Operand,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
    epilogue: Epilogue,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n, "gemm: ldc {ldc} < n {n}");
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: C has {} values, needs {}", c.len(), (m - 1) * ldc + n);
    if k == 0 {
        for r in 0..m {
            for v in &mut c[r * ldc..r * ldc + n] {
                *v = if beta == 0.0 { 0.0 } else { *v * beta };
            }
        }
        apply_epilogue_all(epilogue, c, m, n, ldc);
        return;
    }
    a.check(m, k, "A");
    b.check(k, n, "B");
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    let (ars, acs) = a.strides();
    let (brs, bcs) = b.strides();
    // One row times a row-major B gives the same bits however its columns are cut (`row_times`),
    // so with no helper to share it (`parallel::helped_by` not asking) it runs whole: each part
    // of a split reads every row of B, and from memory two half-row passes cost more than one.
    let one_row_alone = m == 1 && bcs == 1 && has_fma() && !crate::parallel::helpers_asked();
    let parts = if threads <= 1 || flops < 4.0e5 || one_row_alone { 1 } else { threads };
    let ap = SendPtr(a.data.as_ptr());
    let bp = SendPtr(b.data.as_ptr());
    let cp = SendPtr(c.as_mut_ptr());
    // One-row (or one-column) products: the gemm crate's GEMV path is ~5x faster. Decided on the
    // whole product, not per block, so a thin remainder block of a split (e.g. 4 of 36 columns)
    // uses the same kernel, hence the same rounding, as with one thread.
    let blocked = if m <= 4 || n <= 4 {
        Blocked::GemmCrate
    } else if precision == Precision::Bf16 {
        Blocked::Bf16
    } else if kernel() == Kernel::Gemm {
        Blocked::GemmCrate
    } else {
        Blocked::MatrixMultiply
    };
    let need = (m - 1) * ldc + n;
    let ep = match epilogue {
        Epilogue::None => Ep::None,
        Epilogue::BiasAct { bias, act, y } => {
            assert!(bias.len() >= n && y.len() >= need, "gemm epilogue: bias or y too short");
            Ep::BiasAct(SendPtr(bias.as_ptr()), act, SendPtr(y.as_mut_ptr()))
        }
        Epilogue::ActGrad { act, z, y } => {
            assert!(z.len() >= need && y.len() >= need, "gemm epilogue: z or y too short");
            Ep::ActGrad(act, SendPtr(z.as_ptr()), SendPtr(y.as_ptr()))
        }
    };
    // SAFETY: the asserts above keep every index inside the slices; blocks of C (and of the
    // epilogue's y) are disjoint.
    let block = move |i0: usize, i1: usize, j0: usize, j1: usize| unsafe {
        let (ap, bp, cp, ep) = (ap, bp, cp, ep);
        kernel_block(
            blocked,
            i1 - i0,
            j1 - j0,
            k,
            alpha,
            ap.0.offset(i0 as isize * ars),
            ars,
            acs,
            bp.0.offset(j0 as isize * bcs),
            brs,
            bcs,
            beta,
            cp.0.add(i0 * ldc + j0),
            ldc as isize,
        );
        let w = j1 - j0;
        for r in i0..i1 {
            let off = r * ldc + j0;
            let c = std::slice::from_raw_parts_mut(cp.0.add(off), w);
            match ep {
                Ep::None => {}
                Ep::BiasAct(bias, act, y) => {
                    let bias = std::slice::from_raw_parts(bias.0.add(j0), w);
                    act.forward_rows(c, bias, std::slice::from_raw_parts_mut(y.0.add(off), w));
                }
                Ep::ActGrad(act, z, y) => {
                    let (z, y) =
                        (std::slice::from_raw_parts(z.0.add(off), w), std::slice::from_raw_parts(y.0.add(off), w));
                    act.backward_in_place(z, y, c);
                }
            }
        }
    };
    if parts == 1 {
        block(0, m, 0, n);
        return;
    }
    // Split the larger operand: each thread packs only its share of it (and all of the smaller
    // one). Splitting rows of a batch-sized product would make every thread pack all of W.
    let by_rows = m > n;
    let len = if by_rows { m } else { n };
    let align = 16;
    // Parts of whole 16-wide panels, as even as that allows (nearest, not rounded up: 1000
    // columns split 496 + 504, not 512 + 488, which left one thread idle 5% of the product).
    let chunk = (((len as f64 / parts as f64) / align as f64).round() as usize).max(1) * align;
    // Parts are dealt to whichever thread asks next (the caller included), so a part that no
    // worker has started is never waited for, and the wait for one still running does not
    // yield the core (`parallel::for_each_index`).
    crate::parallel::for_each_index(parts, parts, |p| {
        let start = (p * chunk).min(len);
        let end = if p + 1 == parts { len } else { ((p + 1) * chunk).min(len) };
        if start < end {
            if by_rows { block(start, end, 0, n) } else { block(0, m, start, end) }
        }
    });
}

#[derive(Clone, Copy)]
enum Ep {
    None,
    BiasAct(SendPtr<*const f32>, Activation, SendPtr<*mut f32>),
    ActGrad(Activation, SendPtr<*const f32>, SendPtr<*const f32>),
}

/// The epilogue over all of C, single-threaded (for the k = 0 product).
fn apply_epilogue_all(e: Epilogue, c: &mut [f32], m: usize, n: usize, ldc: usize) {
    match e {
        Epilogue::None => {}
        Epilogue::BiasAct { bias, act, y } => {
            for r in 0..m {
                let row = r * ldc..r * ldc + n;
                act.forward_rows(&mut c[row.clone()], &bias[..n], &mut y[row]);
            }
        }
        Epilogue::ActGrad { act, z, y } => {
            for r in 0..m {
                let row = r * ldc..r * ldc + n;
                act.backward_in_place(&z[row.clone()], &y[row.clone()], &mut c[row]);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn kernel_block(
    blocked: Blocked,
    m: usize,
    n: usize,
    k: usize,
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
) {
    // SAFETY: the caller's views were checked against their slices (`Operand::check`): every
    // element the strides reach lies inside A, B and this thread's block of C.
    unsafe {
        if m == 1 && bcs == 1 && has_fma() {
            // One row times a row-major B (a layer's forward on one row): B's rows are read
            // once, straight, with no packing.
            let gathered: Vec<f32>;
            let a = if acs == 1 {
                std::slice::from_raw_parts(a, k)
            } else {
                gathered = (0..k).map(|p| *a.offset(p as isize * acs)).collect();
                &gathered
            };
            let b = std::slice::from_raw_parts(b, (k - 1) * brs as usize + n);
            let c = std::slice::from_raw_parts_mut(c, n);
            return row_times(a, b, brs as usize, n, alpha, beta, c);
        }
        #[cfg(target_arch = "x86_64")]
        if blocked == Blocked::Bf16 {
            // `precision` said Bf16 only where `bf16::available`; Operand's strides are (ld, 1)
            // or (1, ld).
            if bf16::sgemm(m, k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, ldc) {
                return;
            }
            // No memory for its packing space: the f32 kernel computes this block instead.
        }
        if blocked != Blocked::MatrixMultiply {
            // gemm: dst = alpha_dst * dst + beta_prod * lhs * rhs; read_dst = false ignores dst.
            gemm::gemm(
                m,
                n,
                k,
                c,
                1,
                ldc,
                beta != 0.0,
                a,
                acs,
                ars,
                b,
                bcs,
                brs,
                beta,
                alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        } else {
            matrixmultiply::sgemm(m, k, n, alpha, a, ars, acs, b, brs, bcs, beta, c, ldc, 1);
        }
    }
}

/// c = alpha * a B + beta * c (beta = 0: c not read) for one row `a` (k values) and a row-major
/// B (k rows of `ldb`, the first n columns), as sums over B's rows in order: every column adds
/// its k products in the same order whatever the vector width or the column block.
fn row_times(a: &[f32], b: &[f32], ldb: usize, n: usize, alpha: f32, beta: f32, c: &mut [f32]) {
    let old = (beta != 0.0).then(|| c[..n].to_vec());
    row_times_wide(a, b, ldb, n, c);
    match old {
        Some(old) => c[..n].iter_mut().zip(old).for_each(|(v, o)| *v = alpha * *v + beta * o),
        None if alpha != 1.0 => c[..n].iter_mut().for_each(|v| *v *= alpha),
        None => {}
    }
}

/// `row_times_impl` for the CPU at hand: with AVX-512, 256 columns at a time in 16 registers
/// (B's rows read whole, a straight stream); else with AVX2, 64. A column's sum is one chain of
/// fused multiply-adds over B's rows in order, as the blocked kernels' (so one row gets the bits
/// of the same row in a many-row product while k fits their depth block) and whatever the width.
#[allow(unsafe_code)]
fn row_times_wide(a: &[f32], b: &[f32], ldb: usize, n: usize, c: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,fma")]
        fn avx512(a: &[f32], b: &[f32], ldb: usize, n: usize, c: &mut [f32]) {
            let done = row_times_impl::<256>(a, b, ldb, n, c);
            row_times_impl::<64>(a, &b[done..], ldb, n - done, &mut c[done..]);
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2(a: &[f32], b: &[f32], ldb: usize, n: usize, c: &mut [f32]) {
            row_times_impl::<64>(a, b, ldb, n, c);
        }
        if has_avx512() {
            if ldb.is_multiple_of(16) {
                // SAFETY: the CPU has AVX-512F (checked at run time).
                return unsafe { row_times_lines(a, b, ldb, n, c) };
            }
            // SAFETY: the CPU has AVX-512F and FMA (checked at run time).
            return unsafe { avx512(a, b, ldb, n, c) };
        }
        // SAFETY: the caller checked `has_fma` (which needs AVX2 too).
        unsafe { avx2(a, b, ldb, n, c) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    row_times_impl::<64>(a, b, ldb, n, c);
}

/// `row_times_impl` for a B whose rows all start at the same place in a 64-byte cache line (ldb a
/// multiple of 16 values): each block of columns starts on a line boundary, its first and last
/// vectors masked, so no load straddles two lines. Where B lies depends on the allocator: a W2
/// encoder took 10.1 µs a row with its weights 48 bytes into a line, 7.0 µs aligned. The sums
/// are the same chains of fused multiply-adds as `row_times_impl`'s, so the bits are too.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_times_lines(a: &[f32], b: &[f32], ldb: usize, n: usize, c: &mut [f32]) {
    let lead = (b.as_ptr() as usize % 64) / 4;
    let vectors = (n + lead).div_ceil(16);
    let mut v0 = 0;
    while v0 < vectors {
        let left = vectors - v0;
        // Blocks of up to 16 vectors; a remainder under 8 is shared with the block before it, as
        // fewer than 8 independent chains leave the FMA units waiting on their latency.
        let nv = if left <= 16 {
            left
        } else if left < 24 {
            left / 2
        } else {
            16
        };
        macro_rules! block {
            ($($w:literal)*) => {
                match nv {
                    $($w => row_lines_block::<$w>(a, b, ldb, n, c, lead, v0),)*
                    _ => unreachable!("blocks are 1 to 16 vectors"),
                }
            };
        }
        // SAFETY: (caller) AVX-512F; the block lies in columns 0..n of B's and c's rows.
        unsafe { block!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16) };
        v0 += nv;
    }
}

/// Vectors v0..v0 + NV of [`row_times_lines`] (vector v holds columns 16 v - lead to 16 v - lead
/// + 15; lanes outside 0..n are masked off).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn row_lines_block<const NV: usize>(
    a: &[f32],
    b: &[f32],
    ldb: usize,
    n: usize,
    c: &mut [f32],
    lead: usize,
    v0: usize,
) {
    use std::arch::x86_64::*;
    let masks: [u16; NV] = std::array::from_fn(|i| {
        let v = v0 + i;
        let lo = lead.saturating_sub(16 * v).min(16);
        let hi = (n + lead).saturating_sub(16 * v).min(16);
        (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as u16
    });
    // Pointers to where column -lead would be: only their unmasked lanes, inside B's rows and c,
    // are ever read or written.
    let base = b.as_ptr().wrapping_sub(lead).wrapping_add(16 * v0);
    // SAFETY: (caller) AVX-512F; masked loads and stores touch only lanes of columns 0..n of a
    // row of B (k rows of ldb within `b`) or of c.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); NV];
        for (p, &ap) in a.iter().enumerate() {
            let row = base.wrapping_add(p * ldb);
            let av = _mm512_set1_ps(ap);
            for (v, s) in acc.iter_mut().enumerate() {
                // Only the first and last vectors can be partial: two mask registers, and plain
                // loads (folded into the FMA) between them.
                let x = if v == 0 || v + 1 == NV {
                    _mm512_maskz_loadu_ps(masks[v], row.wrapping_add(16 * v))
                } else {
                    _mm512_loadu_ps(row.wrapping_add(16 * v))
                };
                *s = _mm512_fmadd_ps(av, x, *s);
            }
        }
        let out = c.as_mut_ptr().wrapping_sub(lead).wrapping_add(16 * v0);
        for (v, s) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.wrapping_add(16 * v), masks[v], *s);
        }
    }
}

/// Whether the one-row product runs here: a CPU with AVX2 and FMA (elsewhere the gemm crate's
/// GEMV computes it).
fn has_fma() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// c[..n] = a B, W columns at a time held in registers, then (for the last n % W columns)
/// column blocks narrower than W; returns n. With `W` = 256 only the whole blocks are done and
/// their column count returned.
#[inline(always)]
fn row_times_impl<const W: usize>(a: &[f32], b: &[f32], ldb: usize, n: usize, c: &mut [f32]) -> usize {
    let mut j0 = 0;
    while j0 + W <= n {
        let mut acc = [0f32; W];
        for (p, &ap) in a.iter().enumerate() {
            let row: &[f32; W] = b[p * ldb + j0..p * ldb + j0 + W].try_into().expect("W columns");
            for (s, &v) in acc.iter_mut().zip(row) {
                *s = ap.mul_add(v, *s);
            }
        }
        c[j0..j0 + W].copy_from_slice(&acc);
        j0 += W;
    }
    if W > 64 || j0 == n {
        return j0;
    }
    let w = n - j0;
    let mut acc = [0f32; W];
    for (p, &ap) in a.iter().enumerate() {
        let row = &b[p * ldb + j0..p * ldb + j0 + w];
        for (s, &v) in acc[..w].iter_mut().zip(row) {
            *s = ap.mul_add(v, *s);
        }
    }
    c[j0..n].copy_from_slice(&acc[..w]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: Operand, b: Operand) -> Vec<f32> {
        let at = |i: usize, p: usize| if a.trans { a.data[p * a.ld + i] } else { a.data[i * a.ld + p] };
        let bt = |p: usize, j: usize| if b.trans { b.data[j * b.ld + p] } else { b.data[p * b.ld + j] };
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += at(i, p) as f64 * bt(p, j) as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn matches_naive_for_every_transpose_kernel_and_split() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let mut seed = 1u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(m, n, k) in &[(1, 7, 5), (1, 300, 40), (1, 64, 3), (37, 1, 9), (70, 45, 33), (9, 130, 64), (200, 150, 3)]
        {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
                    let ao = if ta { Operand::t(&a, m) } else { Operand::n(&a, k) };
                    let bo = if tb { Operand::t(&b, k) } else { Operand::n(&b, n) };
                    let want = naive(m, n, k, ao, bo);
                    for kern in [Kernel::MatrixMultiply, Kernel::Gemm] {
                        set_kernel(kern);
                        for threads in [1, 3] {
                            let c0: Vec<f32> = (0..m * n).map(|_| rnd()).collect();
                            let mut c = c0.clone();
                            pool.install(|| gemm(m, n, k, 2.0, ao, bo, 0.5, &mut c, n, threads));
                            for i in 0..m * n {
                                let w = 2.0 * want[i] + 0.5 * c0[i];
                                assert!((c[i] - w).abs() < 1e-4, "{m}x{n}x{k} ta={ta} tb={tb} {kern:?} t={threads}");
                            }
                            let mut c = vec![f32::NAN; m * n];
                            pool.install(|| gemm(m, n, k, 1.0, ao, bo, 0.0, &mut c, n, threads));
                            for i in 0..m * n {
                                assert!((c[i] - want[i]).abs() < 1e-4, "beta=0 must ignore C");
                            }
                        }
                    }
                    set_kernel(Kernel::Auto);
                }
            }
        }
    }

    /// bf16 products against f64 sums of the bfloat16-rounded operands: each product of two
    /// bfloat16 values is exact in f32, so only the f32 sums differ (a few ulp of the sum of
    /// |terms|); bit-identical for 1 and 3 threads; beta = 0 ignores C.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn bf16_products_sum_the_rounded_operands_and_keep_their_bits_across_threads() {
        if !bf16_available() {
            assert!(set_precision(Precision::Bf16).is_err());
            return;
        }
        // gemm_at, not set_precision: the setting is the process's, and other tests run beside.
        #[allow(clippy::too_many_arguments)]
        fn bf16(
            m: usize,
            n: usize,
            k: usize,
            alpha: f32,
            a: Operand,
            b: Operand,
            beta: f32,
            c: &mut [f32],
            ldc: usize,
            t: usize,
        ) {
            gemm_at(Precision::Bf16, m, n, k, alpha, a, b, beta, c, ldc, t, Epilogue::None)
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let mut seed = 5u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let r = bf16::round_to_bf16;
        for &(m, n, k) in &[(70, 45, 33), (9, 130, 64), (200, 150, 3), (17, 33, 600), (6, 1100, 21), (128, 64, 257)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
                    let ao = if ta { Operand::t(&a, m) } else { Operand::n(&a, k) };
                    let bo = if tb { Operand::t(&b, k) } else { Operand::n(&b, n) };
                    let (ar, br): (Vec<f32>, Vec<f32>) =
                        (a.iter().map(|&v| r(v)).collect(), b.iter().map(|&v| r(v)).collect());
                    let want = naive(m, n, k, Operand { data: &ar, ..ao }, Operand { data: &br, ..bo });
                    let size = naive(
                        m,
                        n,
                        k,
                        Operand { data: &ar.iter().map(|v| v.abs()).collect::<Vec<_>>(), ..ao },
                        Operand { data: &br.iter().map(|v| v.abs()).collect::<Vec<_>>(), ..bo },
                    );
                    let c0: Vec<f32> = (0..m * n).map(|_| rnd()).collect();
                    let mut bits = Vec::new();
                    for threads in [1, 3] {
                        let mut c = c0.clone();
                        pool.install(|| bf16(m, n, k, 2.0, ao, bo, 0.5, &mut c, n, threads));
                        for i in 0..m * n {
                            let w = 2.0 * want[i] + 0.5 * c0[i];
                            let tol = 1e-6 * (2.0 * size[i] + 1.0);
                            assert!(
                                (c[i] - w).abs() <= tol,
                                "{m}x{n}x{k} ta={ta} tb={tb} t={threads}: {} vs {w}",
                                c[i]
                            );
                        }
                        bits.push(c.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
                        let mut c = vec![f32::NAN; m * n];
                        pool.install(|| bf16(m, n, k, 1.0, ao, bo, 0.0, &mut c, n, threads));
                        assert!(c.iter().zip(&want).all(|(x, w)| (x - w).abs() <= 1e-5), "beta=0 must ignore C");
                    }
                    assert!(bits[0] == bits[1], "{m}x{n}x{k} ta={ta} tb={tb}: 1 and 3 threads differ");
                    // Rounding the operands is what the precision changes: f32 products differ.
                    let mut c = c0.clone();
                    pool.install(|| gemm_at(Precision::F32, m, n, k, 2.0, ao, bo, 0.5, &mut c, n, 1, Epilogue::None));
                    assert!(
                        c.iter().map(|v| v.to_bits()).ne(bits[0].iter().copied()),
                        "f32 and bf16 gave the same bits"
                    );
                }
            }
        }
    }

    #[test]
    fn precision_names_parse_as_the_environment_takes_them() {
        assert_eq!(parse_precision(" BF16 "), Some(Precision::Bf16));
        assert_eq!(parse_precision("medium"), Some(Precision::Bf16));
        assert_eq!(parse_precision("float32"), Some(Precision::F32));
        assert_eq!(parse_precision("highest"), Some(Precision::F32));
        assert_eq!(parse_precision("fp16"), None);
        assert_eq!(parse_precision(""), None);
    }

    #[test]
    fn one_row_products_give_the_same_bits_wherever_b_starts_in_a_line() {
        if !has_avx512() {
            return;
        }
        let mut seed = 11u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for &(k, n, ldb) in
            &[(784, 256, 256), (256, 64, 64), (30, 1000, 1008), (5, 3, 16), (17, 400, 400), (9, 300, 304)]
        {
            let a: Vec<f32> = (0..k).map(|_| rnd()).collect();
            let store: Vec<f32> = (0..k * ldb + 16).map(|_| rnd()).collect();
            for shift in 0..16 {
                let b = &store[shift..shift + (k - 1) * ldb + n];
                let mut want = vec![0f32; n];
                row_times_impl::<64>(&a, b, ldb, n, &mut want);
                let mut got = vec![f32::NAN; n + 2];
                // SAFETY: AVX-512F checked above.
                unsafe { row_times_lines(&a, b, ldb, n, &mut got[1..=n]) };
                assert!(got[0].is_nan() && got[n + 1].is_nan(), "k {k} n {n} shift {shift}: wrote outside c");
                let same = got[1..=n].iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "k {k} n {n} ldb {ldb} shift {shift}");
            }
        }
    }
}
