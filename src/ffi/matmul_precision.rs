//! C API of the precision of matrix products (PyTorch's `torch.set_float32_matmul_precision`
//! for this library): the engine's, [`crate::gemm::set_precision`].

use super::*;
use crate::gemm::{Precision, bf16_available, set_precision};

/// How the CPU's matrix products multiply (process-wide).
pub type latent_matmul_precision = i32;
/// f32 products and sums: the default.
pub const LATENT_MATMUL_PRECISION_F32: latent_matmul_precision = 0;
/// Each product of two elements in bfloat16 (inputs rounded to 8-bit mantissas, to nearest
/// even), sums and results in f32: twice the f32 rate on CPUs with AVX-512 BF16 (AMD Zen 4 and
/// later, Intel Cooper Lake, Sapphire Rapids and later). Products of 4 rows or columns or fewer
/// (a one-row encode among them) stay f32. Mixed precision as PyTorch's "medium" and JAX's
/// "bfloat16": parameters, optimizer state, activations and losses stay f32.
pub const LATENT_MATMUL_PRECISION_BF16: latent_matmul_precision = 1;

/// Sets the precision of every CPU matrix product of the process (training and inference, all
/// models), from the next product on. It overrides the environment (`LATENT_MATMUL_PRECISION`:
/// `f32`, `bf16`; also `float32`, `highest`, `bfloat16`, `medium`). Results stay deterministic
/// and independent of the thread count in either precision; GPU placements are not affected.
/// LATENT_MATMUL_PRECISION_BF16 on a CPU without AVX-512 BF16 is LATENT_STATUS_UNSUPPORTED; an
/// unknown value LATENT_STATUS_INVALID_ARGUMENT; neither changes the precision.
#[unsafe(no_mangle)]
pub extern "C" fn latent_set_matmul_precision(precision: latent_matmul_precision) -> latent_status {
    guard(|| {
        let p = match precision {
            LATENT_MATMUL_PRECISION_F32 => Precision::F32,
            LATENT_MATMUL_PRECISION_BF16 => Precision::Bf16,
            v => return Err(invalid!("matmul precision {v} is not a latent_matmul_precision (0 f32, 1 bf16)")),
        };
        set_precision(p)
    })
}

/// Writes the precision in force to *precision: the last latent_set_matmul_precision, else the
/// one `LATENT_MATMUL_PRECISION` names where the CPU has it, else f32. NULL is
/// LATENT_STATUS_NULL_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_get_matmul_precision(precision: *mut latent_matmul_precision) -> latent_status {
    guard(|| {
        out(precision, "precision")?;
        let v = match crate::gemm::precision() {
            Precision::F32 => LATENT_MATMUL_PRECISION_F32,
            Precision::Bf16 => LATENT_MATMUL_PRECISION_BF16,
        };
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(precision, v) };
        Ok(())
    })
}

/// 1 where this CPU can multiply in bfloat16 (AVX-512 BF16), else 0: whether
/// latent_set_matmul_precision(LATENT_MATMUL_PRECISION_BF16) would succeed.
#[unsafe(no_mangle)]
pub extern "C" fn latent_matmul_bf16_available() -> i32 {
    i32::from(bf16_available())
}
