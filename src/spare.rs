//! Workspaces a model keeps between its inference calls, for the next call of the same shape.
//!
//! Why: a new workspace is fresh memory. On a caller's own thread glibc gives the freed buffers
//! of a call back to the system at its end (the top of the main heap is trimmed), so the next
//! call takes a page fault on every 4 KB of them again: W2's encoder on 256 rows took about 500
//! faults per call, and half its time, on one thread (2,715 µs a call; 1,140 with its workspace
//! kept). A kept workspace gives the same bits as a new one: the passes that use one write every
//! buffer before they read it. Each call holds its own for its length, so calls from many
//! threads at once never share one; a clone of the model starts with none.
//!
//! Bounds: per model at most four workspaces and 16 MB; per process [`cache_limit`] bytes
//! over all models (256 MB unless `LATENT_INFERENCE_CACHE_MB` or [`set_cache_limit`] says
//! otherwise), so that a process serving many models keeps a known amount. A model makes room
//! from its own kept workspaces only: one model's calls never free another's. Lowering the limit
//! is the one exception: [`set_cache_limit`] frees what all models keep beyond it before it
//! returns (a caller lowering it wants the memory back now, not at each model's next call).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};

use crate::error::Result;

/// The size of what is kept, in values (floats), for the bound on what a model keeps.
pub(crate) trait Values {
    fn values(&self) -> usize;
}

/// The kept workspaces of one model, each with the shape (`K`) it was made for and its size in
/// bytes; shared with [`REGISTRY`] (weakly) once it keeps one.
pub(crate) struct Spare<K, W>(Arc<List<K, W>>);

/// A model's list and whether [`REGISTRY`] knows it.
struct List<K, W> {
    list: Mutex<Vec<(K, W, usize)>>,
    registered: AtomicBool,
}

/// What [`set_cache_limit`] asks of every model's list.
trait Trim: Send + Sync {
    /// Frees this model's oldest kept workspaces until all models hold at most `limit` bytes
    /// (or this one holds none).
    fn trim(&self, limit: usize);
}

/// Every model's list that has kept a workspace, weakly (a freed model's entry is dropped at the
/// next registration or trim).
static REGISTRY: Mutex<Vec<Weak<dyn Trim>>> = Mutex::new(Vec::new());

/// The environment variable with the default process-wide limit, in MB.
pub const CACHE_ENV: &str = "LATENT_INFERENCE_CACHE_MB";
/// The process-wide limit when neither [`CACHE_ENV`] nor [`set_cache_limit`] gives one.
pub const DEFAULT_CACHE_LIMIT: usize = 256 << 20;
/// The limit set by [`set_cache_limit`] (usize::MAX: none set; then the environment's).
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Bytes kept now, all models together (not counting workspaces in use by a call).
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Sets the most bytes all models of the process keep for their next inference calls together
/// (0: none kept). What they keep beyond a lowered limit is freed before this returns, the oldest
/// of each model first; a call running meanwhile keeps its workspace only if it fits the new
/// limit.
pub fn set_cache_limit(bytes: usize) {
    let limit = bytes.min(usize::MAX - 1);
    LIMIT.store(limit, SeqCst);
    if HELD.load(SeqCst) <= limit {
        return;
    }
    // The lists are taken out of the registry's lock before any is trimmed: `register` takes
    // the registry's lock while holding a list's, so holding both here the other way round
    // could deadlock.
    let lists: Vec<Arc<dyn Trim>> = {
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|w| w.strong_count() > 0);
        reg.iter().filter_map(Weak::upgrade).collect()
    };
    for l in &lists {
        if HELD.load(SeqCst) <= limit {
            break;
        }
        l.trim(limit);
    }
}

/// The process-wide limit in force: the last [`set_cache_limit`], else `LATENT_INFERENCE_CACHE_MB`
/// (a whole number of MB, read once; anything else is ignored), else 256 MB.
pub fn cache_limit() -> usize {
    let set = LIMIT.load(SeqCst);
    if set != usize::MAX {
        return set;
    }
    static ENV: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ENV.get_or_init(|| {
        std::env::var(CACHE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .and_then(|mb| mb.checked_mul(1 << 20))
            .unwrap_or(DEFAULT_CACHE_LIMIT)
    })
}

/// Bytes all models keep now.
pub fn cache_held() -> usize {
    HELD.load(SeqCst)
}

/// The most bytes one model keeps, all its workspaces together (W2's workspace for a block of
/// 1,024 rows, 14 MB, is kept; W1's, 30 MB, is not); a larger one is freed after its call.
const MAX_BYTES: usize = 16 << 20;
/// The most workspaces one model keeps (calls in flight at once, or calls of a few shapes).
const MAX_KEPT: usize = 4;

impl<K: PartialEq + Send + 'static, W: Values + Send + 'static> Spare<K, W> {
    /// A kept workspace for `key`, else a new one from `make`; it comes back here when the
    /// returned guard drops.
    pub(crate) fn get(&self, key: K, make: impl FnOnce() -> Result<W>) -> Result<Kept<'_, K, W>> {
        let found = {
            let mut kept = self.0.list.lock().unwrap_or_else(|e| e.into_inner());
            kept.iter().position(|(k, _, _)| *k == key).map(|i| kept.swap_remove(i))
        };
        let found = found.map(|(_, w, bytes)| {
            HELD.fetch_sub(bytes, SeqCst);
            w
        });
        let w = match found {
            Some(w) => w,
            None => make()?,
        };
        Ok(Kept { spare: self, item: Some((key, w)) })
    }

    /// Keeps `w`, in place of this model's oldest ones when its list would pass the model's
    /// bounds or the process-wide limit; not at all when the limit has no room even then (this
    /// model's kept ones past a lowered limit are freed here too). What is pushed out (or `w`)
    /// is freed after the lock is let go, so that other calls do not wait on it.
    fn put(&self, key: K, w: W) {
        let bytes = w.values().saturating_mul(std::mem::size_of::<f32>());
        let fits = bytes <= MAX_BYTES;
        let mut freed = Vec::new();
        let mut rejected = None;
        {
            let mut kept = self.0.list.lock().unwrap_or_else(|e| e.into_inner());
            let mut push_out = |kept: &mut Vec<(K, W, usize)>| push_out_oldest(kept, &mut freed);
            let held_here = |kept: &Vec<(K, W, usize)>| kept.iter().map(|e| e.2).sum::<usize>();
            while fits && !kept.is_empty() && (kept.len() >= MAX_KEPT || held_here(&kept) + bytes > MAX_BYTES) {
                push_out(&mut kept);
            }
            loop {
                let (held, limit) = (HELD.load(SeqCst), cache_limit());
                if fits && held.saturating_add(bytes) <= limit {
                    if HELD.compare_exchange(held, held + bytes, SeqCst, SeqCst).is_ok() {
                        kept.push((key, w, bytes));
                        self.register();
                        break;
                    }
                } else if kept.is_empty() || (!fits && held <= limit) {
                    rejected = Some(w);
                    break;
                } else {
                    push_out(&mut kept);
                }
            }
        }
        drop((freed, rejected));
    }

    /// Puts this model's list in [`REGISTRY`] the first time it keeps a workspace (called with
    /// the list locked; the registry's lock is never taken the other way round).
    fn register(&self) {
        if self.0.registered.swap(true, SeqCst) {
            return;
        }
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        // Dropping the freed models' entries when the registry doubles keeps it linear in the
        // live models however many come and go.
        if reg.len() >= 16 && reg.len().is_power_of_two() {
            reg.retain(|w| w.strong_count() > 0);
        }
        let weak: Weak<List<K, W>> = Arc::downgrade(&self.0);
        reg.push(weak);
    }

    /// How many are kept now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.list.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Moves a model's oldest kept workspace to `freed` (dropped by the caller once the list's lock
/// is let go) and takes its bytes off the count.
fn push_out_oldest<K, W>(kept: &mut Vec<(K, W, usize)>, freed: &mut Vec<(K, W, usize)>) {
    let e = kept.remove(0);
    HELD.fetch_sub(e.2, SeqCst);
    freed.push(e);
}

impl<K: Send, W: Send> Trim for List<K, W> {
    fn trim(&self, limit: usize) {
        let mut freed = Vec::new();
        {
            let mut kept = self.list.lock().unwrap_or_else(|e| e.into_inner());
            while !kept.is_empty() && HELD.load(SeqCst) > limit {
                push_out_oldest(&mut kept, &mut freed);
            }
        }
        drop(freed);
    }
}

impl<K, W> Default for Spare<K, W> {
    fn default() -> Self {
        Spare(Arc::new(List { list: Mutex::new(Vec::new()), registered: AtomicBool::new(false) }))
    }
}

/// A model freed gives back what it kept (when the last reference goes: a trim running at that
/// moment holds one).
impl<K, W> Drop for List<K, W> {
    fn drop(&mut self) {
        let kept = self.list.get_mut().unwrap_or_else(|e| e.into_inner());
        HELD.fetch_sub(kept.iter().map(|e| e.2).sum::<usize>(), SeqCst);
    }
}

/// A copy of a model keeps none of the original's.
impl<K, W> Clone for Spare<K, W> {
    fn clone(&self) -> Self {
        Spare::default()
    }
}

impl<K, W> std::fmt::Debug for Spare<K, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spare")
    }
}

/// A workspace held by one call; back to its model's [`Spare`] on drop.
pub(crate) struct Kept<'a, K: PartialEq + Send + 'static, W: Values + Send + 'static> {
    spare: &'a Spare<K, W>,
    item: Option<(K, W)>,
}

impl<K: PartialEq + Send + 'static, W: Values + Send + 'static> std::ops::Deref for Kept<'_, K, W> {
    type Target = W;
    fn deref(&self) -> &W {
        &self.item.as_ref().expect("held until drop").1
    }
}

impl<K: PartialEq + Send + 'static, W: Values + Send + 'static> std::ops::DerefMut for Kept<'_, K, W> {
    fn deref_mut(&mut self) -> &mut W {
        &mut self.item.as_mut().expect("held until drop").1
    }
}

impl<K: PartialEq + Send + 'static, W: Values + Send + 'static> Drop for Kept<'_, K, W> {
    fn drop(&mut self) {
        if let Some((k, w)) = self.item.take() {
            self.spare.put(k, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Buf(usize);
    impl Values for Buf {
        fn values(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn a_call_of_the_same_shape_gets_the_kept_workspace_and_the_bounds_hold() {
        let s: Spare<usize, Buf> = Spare::default();
        let made = std::cell::Cell::new(0);
        let make = |n| {
            made.set(made.get() + 1);
            Ok(Buf(n))
        };
        drop(s.get(1, || make(10)).unwrap());
        drop(s.get(1, || make(10)).unwrap());
        assert_eq!(made.get(), 1, "the second call of shape 1 reused the first's");
        // Two calls in flight at once each get their own.
        let (a, b) = (s.get(1, || make(10)).unwrap(), s.get(1, || make(10)).unwrap());
        assert_eq!(made.get(), 2);
        drop((a, b));
        assert_eq!(s.len(), 2);
        // At most MAX_KEPT kept; the oldest go first.
        for k in 2..2 + MAX_KEPT {
            drop(s.get(k, || make(10)).unwrap());
        }
        assert_eq!(s.len(), MAX_KEPT);
        drop(s.get(1, || make(10)).unwrap());
        assert_eq!(made.get(), 3 + MAX_KEPT, "shape 1's were the oldest, dropped");
        // A workspace over the bound is not kept; one that fills it alone pushes out the rest.
        drop(s.get(99, || make(MAX_BYTES / 4 + 1)).unwrap());
        assert_eq!(s.len(), MAX_KEPT);
        drop(s.get(98, || make(MAX_BYTES / 4)).unwrap());
        assert_eq!(s.len(), 1);
        assert_eq!(s.clone().len(), 0, "a clone keeps none");
    }
}
