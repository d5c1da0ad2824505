//! The library's own thread pools, created on first use and shared by every call that asks for
//! the same thread count. The host's global rayon pool is never touched.
//!
//! Pools are kept in a small most-recently-used cache: at most [`MAX_CACHED_POOLS`] of them,
//! holding at most [`cache_budget`] worker threads together, except that the newest pool is
//! always kept whatever its size. A pool evicted from the cache is only dropped once no call is using it
//! (callers hold an `Arc` for the length of their parallel work), and its threads then exit; a
//! later call with that thread count builds a new one. So a process that gives many networks
//! many different thread counts keeps a bounded number of threads.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// How the pools' idle workers wait during a training step (process-wide; see
/// [`crate::wait_policy`]).
pub use crate::wait_policy::{WaitPolicy, set_wait_policy, wait_policy};

/// The most worker threads one setting may ask for (`threads` of a network, a VAE, training or
/// Monte Carlo, and `LATENT_NUM_THREADS`); more is [`Error::InvalidArgument`].
pub const MAX_THREADS: usize = 1024;
/// The most pools kept alive for reuse while no call uses them.
pub const MAX_CACHED_POOLS: usize = 4;

/// The environment variable that says what 0 threads means.
pub const NUM_THREADS_ENV: &str = "LATENT_NUM_THREADS";

/// One of the library's thread pools.
pub struct Pool {
    workers: rayon::ThreadPool,
    /// Marks its workers ([`crate::parallel::set_pool_id`]), so that a wake-up can be for them
    /// only.
    id: u64,
    /// Where a caller this pool helps hands a part to a worker that waits for one
    /// ([`crate::parallel::helped_by`]).
    mailbox: Arc<crate::parallel::Mailbox>,
}

/// The next pool's id (ids start at 1; 0 marks a thread of no library pool).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A rayon pool of `threads` workers named `latent-i`, each marked as this pool's
/// ([`crate::parallel::set_pool_id`]) and with flush-to-zero set.
fn build(threads: usize) -> std::result::Result<Pool, rayon::ThreadPoolBuildError> {
    // Before the first threads exist: only pools can be left without workers by a fork.
    watch_forks();
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("latent-{i}"))
        .start_handler(move |_| {
            flush_subnormals();
            crate::parallel::set_pool_id(id);
        })
        .build()?;
    Ok(Pool { workers: p, id, mailbox: Arc::new(crate::parallel::Mailbox::default()) })
}

impl Pool {
    /// Runs `op` on this pool and returns its result (on the calling thread when it is one of
    /// this pool's workers), as rayon's `install` does, with two differences that keep the
    /// workers out of rayon's idle loop, which calls `sched_yield` 32 times before it sleeps
    /// (beside a busy process each yield hands it a whole slice):
    /// - the worker that ran `op` stays on for the spin budget, looking for the next step,
    ///   then rests as a step's spinners do (`parallel::linger`);
    /// - the spinners resting between steps are woken once `op` is handed over: asleep inside
    ///   a job, they are invisible to the pool's own wake-up for new work.
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        use std::sync::{Arc, Condvar, Mutex};
        if self.workers.current_thread_index().is_some() {
            return op();
        }
        struct Call<R> {
            out: Mutex<Option<std::thread::Result<R>>>,
            ready: Condvar,
        }
        let call: Arc<Call<R>> = Arc::new(Call { out: Mutex::new(None), ready: Condvar::new() });
        let op: Box<dyn FnOnce() -> R + Send + '_> = Box::new(op);
        // SAFETY: only the lifetime is erased. The job consumes `op` (and drops what it borrows)
        // before it publishes the result, and this function returns only after reading it, so
        // nothing `op` borrows is used after it returns. The result itself travels in `call`.
        let op: Box<dyn FnOnce() -> R + Send + 'static> = unsafe { std::mem::transmute(op) };
        let sent = call.clone();
        let job = move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(op));
            *sent.out.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
            sent.ready.notify_one();
            drop(sent);
            crate::parallel::linger();
        };
        let job: Box<dyn FnOnce() + Send + '_> = Box::new(job);
        // SAFETY: as above; `R` reaches the job only inside `call`, read back here.
        let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
        self.workers.spawn(job);
        crate::parallel::wake_resting();
        let mut out = call.out.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = out.take() {
                return r.unwrap_or_else(|p| std::panic::resume_unwind(p));
            }
            out = call.ready.wait(out).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The number of workers.
    pub fn current_num_threads(&self) -> usize {
        self.workers.current_num_threads()
    }

    /// Queues `job` on this pool (a helper of a region whose owner is outside it:
    /// [`crate::parallel::helped_by`]).
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.workers.spawn(job)
    }

    /// A pool of `threads` workers of its own, outside the cache (for tests).
    #[cfg(test)]
    pub(crate) fn unshared(threads: usize) -> Pool {
        build(threads).expect("a test pool")
    }

    /// This pool's id (its workers' [`crate::parallel::set_pool_id`]).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn mailbox(&self) -> &Arc<crate::parallel::Mailbox> {
        &self.mailbox
    }
}

/// The cached pools: by thread count, least recently used first, and the fork count they were
/// built in.
struct Cache {
    pools: Vec<(usize, Arc<Pool>)>,
    forks: u64,
}

static POOLS: Mutex<Cache> = Mutex::new(Cache { pools: Vec::new(), forks: 0 });

/// How many times this process is a fork()ed child of one that used the library: a child has
/// only the thread that called fork, so the pools it inherited have no workers, and a job
/// installed on one would wait for ever (Python's multiprocessing forks by default; an outside
/// test hung in a child's first fit). `pool` builds new pools when this has changed.
static FORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn forked_child() {
    // Only an atomic add: the child of a multi-threaded process may do little before exec.
    FORKS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Registers [`forked_child`] with pthread_atfork, once (from [`build`], before the first pool
/// starts its threads).
fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        // SAFETY: registers a handler that only increments an atomic; it never fails in a way
        // that matters (ENOMEM: the pools are then not rebuilt after a fork, as before).
        unsafe {
            libc::pthread_atfork(None, None, Some(forked_child));
        }
    });
}

/// Input values (rows x columns) below which an inference call runs on the calling thread.
pub(crate) const SMALL_INFERENCE: usize = 32 * 1024;

/// Runs an inference call over `values` input values with `threads` workers (0: the default),
/// `f(threads)`: the one placement rule of networks', VAEs' and PSD models' inference. Small inputs run on
/// the calling thread (no hand-off on the latency path), a pool of `threads - 1` workers
/// helping with the products big enough to split ([`crate::parallel::helped_by`]); larger ones
/// on the pool of `threads`.
pub(crate) fn infer<T: Send>(threads: usize, values: usize, f: impl FnOnce(usize) -> Result<T> + Send) -> Result<T> {
    let threads = check_threads(threads)?;
    if threads <= 1 {
        return f(1);
    }
    if values < SMALL_INFERENCE {
        // The caller is one of the threads: a pool of the others. (With one of `threads`
        // workers, the one not lingering slept, and each call's spawn woke it: a system call on
        // the caller's path, and a third thread on two cores.)
        return crate::parallel::helped_by(&pool(threads - 1)?, || f(threads));
    }
    // The call's workers spin between its parallel regions (each product, each layer's
    // epilogue), as a training step's do: asleep, each region waited for a worker's wake-up.
    pool(threads)?.install(|| crate::parallel::with_spinning_workers(threads, || f(threads)))
}

/// The cores this process may use now (the affinity mask and cgroup quota, read each call).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The most worker threads the cache keeps alive in its pools together (unless the newest pool
/// alone is larger): four per core, and at least 64.
pub fn cache_budget() -> usize {
    (4 * cores()).max(64)
}

/// 0 means the default: `$LATENT_NUM_THREADS` when set (as OMP_NUM_THREADS is for OpenMP
/// codes, so a batch job can pin the library without recompiling), else every core the process
/// may use. A value above [`MAX_THREADS`] is returned as it is, and refused by [`pool`] and
/// [`check_threads`].
pub fn resolve_threads(threads: usize) -> usize {
    if threads > 0 {
        return threads;
    }
    match env_threads() {
        Some(n) if n > 0 => n,
        _ => cores(),
    }
}

fn env_threads() -> Option<usize> {
    std::env::var(NUM_THREADS_ENV).ok().and_then(|v| v.trim().parse::<usize>().ok())
}

/// A thread-count setting (0 = the default) checked against [`MAX_THREADS`]: an explicit count
/// beyond it, or a default that `LATENT_NUM_THREADS` sets beyond it, is
/// [`Error::InvalidArgument`].
pub fn check_threads(threads: usize) -> Result<usize> {
    let n = resolve_threads(threads);
    if n > MAX_THREADS {
        let from = if threads == 0 { format!(" (from {NUM_THREADS_ENV})") } else { String::new() };
        return Err(Error::InvalidArgument(format!("{n} threads{from} is more than the maximum, {MAX_THREADS}")));
    }
    Ok(n)
}

/// The pool with `threads` workers (0 = the default, see [`resolve_threads`]). More than
/// [`MAX_THREADS`] is [`Error::InvalidArgument`]; threads the system will not start are
/// [`Error::OutOfMemory`].
pub fn pool(threads: usize) -> Result<Arc<Pool>> {
    let n = check_threads(threads)?;
    let mut cache = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let forks = FORKS.load(std::sync::atomic::Ordering::SeqCst);
    if cache.forks != forks {
        // A fork's child: the inherited pools' workers do not exist here. Their memory is left
        // (dropping one would signal threads that are not there, through locks a parent's
        // thread may have held at the fork).
        std::mem::forget(std::mem::take(&mut cache.pools));
        cache.forks = forks;
    }
    if let Some(i) = cache.pools.iter().position(|(k, _)| *k == n) {
        let entry = cache.pools.remove(i);
        let p = entry.1.clone();
        cache.pools.push(entry);
        return Ok(p);
    }
    let p = build(n).map_err(|e| Error::OutOfMemory(format!("cannot start {n} threads: {e}")))?;
    let p = Arc::new(p);
    cache.pools.push((n, p.clone()));
    let evicted = evict(&mut cache.pools, cache_budget());
    drop(cache);
    // Dropping a pool only signals its workers to exit once their work is done.
    drop(evicted);
    Ok(p)
}

/// Removes the least recently used pools beyond the cache's limits (never the newest, last).
fn evict(cache: &mut Vec<(usize, Arc<Pool>)>, budget: usize) -> Vec<(usize, Arc<Pool>)> {
    let mut out = Vec::new();
    while cache.len() > 1 {
        let total: usize = cache.iter().map(|(k, _)| k).sum();
        if cache.len() <= MAX_CACHED_POOLS && total <= budget {
            break;
        }
        out.push(cache.remove(0));
    }
    out
}

/// The thread counts of the cached pools, least recently used first (for tests).
pub fn cached_pools() -> Vec<usize> {
    POOLS.lock().unwrap_or_else(|e| e.into_inner()).pools.iter().map(|(k, _)| *k).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_few_pools_and_a_bounded_number_of_threads() {
        let mut v: Vec<(usize, Arc<Pool>)> = Vec::new();
        let fake = |k: usize| (k, Arc::new(Pool::unshared(1)));
        for k in [1, 2, 3, 4, 5] {
            v.push(fake(k));
            evict(&mut v, 64);
        }
        assert_eq!(v.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        v.push(fake(50));
        evict(&mut v, 64);
        assert_eq!(v.iter().map(|e| e.0).collect::<Vec<_>>(), vec![3, 4, 5, 50]);
        // The newest is kept even beyond the budget.
        v.push(fake(100));
        evict(&mut v, 64);
        assert_eq!(v.iter().map(|e| e.0).collect::<Vec<_>>(), vec![100]);
    }

    #[test]
    fn too_many_threads_are_refused() {
        assert!(matches!(pool(MAX_THREADS + 1), Err(Error::InvalidArgument(_))));
        assert!(matches!(check_threads(4096), Err(Error::InvalidArgument(_))));
        assert_eq!(check_threads(MAX_THREADS).unwrap(), MAX_THREADS);
    }
}
