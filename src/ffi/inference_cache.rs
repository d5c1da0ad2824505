//! C API of the memory models keep between inference calls: the engine's, [`crate::spare`].

use super::*;

/// Sets the most bytes that all networks and VAEs of the process keep, together, for their next
/// inference calls (each keeps the workspace of a call for the next call of the same shape: at
/// most four and 16 MB per model; see docs/threads_and_numerics.md). 0 keeps none: every call
/// allocates its workspace and frees it. It overrides the environment
/// (`LATENT_INFERENCE_CACHE_MB`, a whole number of MB; default 256 MB). What the models keep
/// beyond a lowered limit is freed before this returns (0 frees it all). Results are the same
/// bits whatever the limit. Always LATENT_STATUS_OK.
#[unsafe(no_mangle)]
pub extern "C" fn latent_set_inference_cache_limit(bytes: usize) -> latent_status {
    guard(|| {
        crate::spare::set_cache_limit(bytes);
        Ok(())
    })
}

/// Writes the limit in force to *limit (the last latent_set_inference_cache_limit, else
/// `LATENT_INFERENCE_CACHE_MB`, else 256 MB) and the bytes all models keep now to *held. NULL
/// for either is LATENT_STATUS_NULL_ARGUMENT, nothing written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_get_inference_cache(limit: *mut usize, held: *mut usize) -> latent_status {
    guard(|| {
        out(limit, "limit")?;
        out(held, "held")?;
        // SAFETY: both out-pointers were checked non-NULL; each points to a writable value (the
        // C contract).
        unsafe {
            put(limit, crate::spare::cache_limit());
            put(held, crate::spare::cache_held());
        }
        Ok(())
    })
}
