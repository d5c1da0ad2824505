//! The library's own thread pools, one per thread count, created on first use. The host's
//! global rayon pool is never touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};

static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();

/// 0 means the default: `$LATENT_NUM_THREADS` when set (as OMP_NUM_THREADS is for OpenMP
/// codes, so a batch job can pin the library without recompiling), else every core the process
/// may use.
pub fn resolve_threads(threads: usize) -> usize {
    if threads > 0 {
        return threads;
    }
    let env = std::env::var("LATENT_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok());
    match env {
        Some(n) if n > 0 => n.min(4096),
        _ => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }
}

/// The pool with `threads` workers (0 = all cores).
pub fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    let n = resolve_threads(threads);
    if n > 4096 {
        return Err(Error::InvalidArgument(format!("{n} threads is more than 4096")));
    }
    let map = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(&n) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("latent-{i}"))
        .start_handler(|_| flush_subnormals())
        .build()
        .map_err(|e| Error::Internal(format!("cannot start {n} threads: {e}")))?;
    let p = Arc::new(p);
    map.insert(n, p.clone());
    Ok(p)
}

/// Sets flush-to-zero and denormals-are-zero on the calling thread (one of the library's own
/// workers: the caller's threads are never touched). Gradients and Adam's second moments of
/// units that stop learning (a collapsed VAE posterior, dead ReLUs) decay into subnormal floats,
/// and x86 cores take a microcode assist on every operation with one: a VAE step ran 2x slower
/// after its first epoch without this. XLA's CPU backend and PyTorch's `set_flush_denormal` do
/// the same; values below 1.2e-38 carry no information for training.
fn flush_subnormals() {
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)]
    // SAFETY: MXCSR holds only floating-point control and status flags of this thread.
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040); // FTZ (bit 15) | DAZ (bit 6)
    }
}
