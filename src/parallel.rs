//! The CPU's parallel regions: the fork every one goes through ([`for_each_index`], parts
//! dealt to whichever thread asks, waits that never call `sched_yield`), the step's spinning
//! workers ([`with_spinning_workers`]), and the row-parallel elementwise passes and shard
//! combine built on them. Each part is computed the same way whatever thread runs it, so
//! results do not depend on the thread count or the timing.

/// Minimum elements per task before splitting pays off.
const GRAIN: usize = 16 * 1024;

fn rows_per_task(len: usize, cols: usize, threads: usize) -> Option<usize> {
    if threads <= 1 || len < 2 * GRAIN || cols == 0 {
        return None;
    }
    let rows = len / cols;
    Some(rows.div_ceil(threads).max(1))
}

pub fn rows3<F>(a: &mut [f32], b: &[f32], c: &[f32], cols: usize, threads: usize, f: F)
where
    F: Fn(&mut [f32], &[f32], &[f32]) + Sync,
{
    match rows_per_task(a.len(), cols, threads) {
        None => f(a, b, c),
        Some(r) => {
            let n = r * cols;
            for_each_chunk_mut([a], n, threads, |i, [a]| f(a, chunk(b, i, n), chunk(c, i, n)));
        }
    }
}

/// Applies `f` to aligned fixed-size chunks of several same-length buffers (optimizer updates).
pub const CHUNK: usize = 32 * 1024;

/// Row blocks of (out, a, b, c) mapped to partial f64 sums, added in block order.
pub fn loss_rows<F>(out: &mut [f32], a: &[f32], b: &[f32], c: &[f32], cols: usize, threads: usize, f: F) -> f64
where
    F: Fn(&mut [f32], &[f32], &[f32], &[f32]) -> f64 + Sync,
{
    match rows_per_task(out.len(), cols, threads) {
        None => f(out, a, b, c),
        Some(r) => {
            let n = r * cols;
            let parts =
                map_chunks_mut([out], n, threads, |i, [o]| f(o, chunk(a, i, n), chunk(b, i, n), chunk(c, i, n)));
            parts.iter().sum()
        }
    }
}

/// Fewest rows a data-parallel shard must put through its products: below this, packing every
/// weight matrix once per shard (on two cores, W1 and W3 at 64 rows a shard) costs more than
/// splitting each product between the threads.
pub const MIN_SHARD_ROWS: usize = 128;

/// How many data-parallel shards a step of `work_rows` rows (through the widest products)
/// runs in on `threads` threads: one per thread, each at least [`MIN_SHARD_ROWS`]; below 2, the
/// step runs whole with its products split. The models on the CPU backend (networks, VAEs)
/// decide by this one rule.
pub fn shard_count(threads: usize, work_rows: usize) -> usize {
    threads.min(work_rows / MIN_SHARD_ROWS)
}

/// out = sum_k w_k parts_k: shard gradients combined by their rows' share, in fixed chunks on
/// the current pool, each chunk zeroed then given the shards' shares in order (so the result
/// depends on neither the thread count nor the engine that made the shards).
pub fn combine_shards(out: &mut [f32], parts: &[(&[f32], f32)]) {
    // Pieces of a chunk small enough to stay in L1 while every share is added: `out` goes to
    // memory once (a separate zeroing pass was 0.7-2.7% of W2 on Zen 4), with the same sums.
    const PIECE: usize = 512;
    for_each_chunk_mut([out], CHUNK, rayon::current_num_threads(), |c, [o]| {
        for (q, o) in o.chunks_mut(PIECE).enumerate() {
            let (at, len) = (c * CHUNK + q * PIECE, o.len());
            o.fill(0.0);
            for &(g, w) in parts {
                if w > 0.0 {
                    o.iter_mut().zip(&g[at..at + len]).for_each(|(o, v)| *o += w * v);
                }
            }
        }
    });
}

thread_local! {
    /// The spinning workers of the [`with_spinning_workers`] this thread runs the `f` of.
    static SESSION: std::cell::RefCell<Option<std::sync::Arc<Spinners>>> = const { std::cell::RefCell::new(None) };
    /// Whether this worker is inside [`spin`]: a spinner job it runs then is handed to that loop
    /// (as [`HANDOFF`]) instead of nesting a second loop on its stack.
    static SPINNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// A session's spinner job this worker took while already spinning; its loop serves that
    /// session next.
    static HANDOFF: std::cell::RefCell<Option<std::sync::Arc<Spinners>>> = const { std::cell::RefCell::new(None) };
    /// Whether this worker is inside [`Mailbox::watch`]: a helper job it runs from there (through
    /// `rayon::yield_now`) then does not start a second watch on its stack. Without this, two
    /// callers posting regions kept a worker nesting watch -> yield -> job -> watch until its
    /// stack overflowed (SIGSEGV in an outside test: two threads encoding 512-row blocks).
    static WATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The pool that helps this thread's regions while it runs [`helped_by`]'s `f`, and
    /// whether to ask it (false: the caller runs every part itself).
    static HELPERS: std::cell::RefCell<Option<(std::sync::Arc<crate::pool::Pool>, bool)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` on this thread with `pool` helping in its parallel regions: the caller takes the
/// first run of each region's indices and hands the rest to `pool`'s workers, through its
/// [`Mailbox`] to one that watches it (after a part a worker watches for the wait policy's spin
/// budget, so that the next call finds it there) or else as a job; a run that no worker has
/// started when the caller is done with its own, the caller does too, so `f` never waits on a
/// sleeping worker (nor deadlocks when this thread is one of `pool`'s, all of them busy).
///
/// For latency: one row through a layer of 784 x 256 weights reads 800 KB, and one Zen 4 core's
/// L2 bandwidth bounds that at about 11 µs; split, each core keeps its half of the weights in
/// its own L2 (the caller always takes the first part, a worker the second): 6.6-7.3 µs.
///
/// Workers are asked only when the last helped call ended within the spin budget (calls in a
/// stream); after a longer pause they are asleep, a wake-up costs more than the call (a
/// W2-shaped encode 20 ms apart: 86 µs alone, 165 µs asked), and the caller runs every part
/// itself. The parts are the same either way, so are the results. Both sides run with
/// flush-to-zero and denormals-are-zero (the caller's mode is restored after), so a result
/// never depends on which thread ran which part.
pub fn helped_by<R>(pool: &std::sync::Arc<crate::pool::Pool>, f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    /// When the last helped call ended, in nanoseconds since `EPOCH` (0: none yet).
    static LAST_END: AtomicU64 = AtomicU64::new(0);
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let now = || EPOCH.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64 + 1;
    let last = LAST_END.load(Relaxed);
    let ask = last > 0 && now() - last < linger_budget().as_nanos() as u64;
    let out = lend(pool, ask, f);
    LAST_END.store(now(), Relaxed);
    out
}

/// Where a caller that a pool helps ([`helped_by`]) hands a region to a worker of that pool
/// that is waiting for one: after its part a worker watches this one word for the spin budget
/// instead of rayon's queues (a boxed job in the pool's injector, found by a worker polling
/// them). In processes where the two cores' hand-off ran slow, a one-row W2 encode on two
/// threads took 10.6-12.0 µs that way, 9.5-10.8 through the mailbox, 9.6-10.1 on one thread
/// (six processes each, alternated); where it ran fast, 6.3-6.4 through the mailbox.
#[derive(Default)]
#[repr(align(64))]
pub struct Mailbox {
    /// A region (`Arc::into_raw`) posted by a caller, taken (swapped out) by one worker.
    slot: std::sync::atomic::AtomicPtr<Region>,
    /// How many workers watch `slot` now.
    watching: std::sync::atomic::AtomicUsize,
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let p = *self.slot.get_mut();
        if !p.is_null() {
            // SAFETY: a non-null slot holds a raw Arc from `post` that nobody took.
            drop(unsafe { std::sync::Arc::from_raw(p) });
        }
    }
}

impl Mailbox {
    /// Posts `r` if a worker watches and the slot is free; gives `r` back otherwise.
    fn post(&self, r: std::sync::Arc<Region>) -> Option<std::sync::Arc<Region>> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.watching.load(SeqCst) == 0 {
            return Some(r);
        }
        let p = std::sync::Arc::into_raw(r) as *mut Region;
        match self.slot.compare_exchange(std::ptr::null_mut(), p, SeqCst, SeqCst) {
            Ok(_) => None,
            // SAFETY: p came from Arc::into_raw just above and was not published.
            Err(_) => Some(unsafe { std::sync::Arc::from_raw(p) }),
        }
    }

    /// Takes back `r` if it is still in the slot (no worker took it): the caller, once its
    /// region is done, so that a stale region does not wait there.
    fn withdraw(&self, r: &std::sync::Arc<Region>) {
        use std::sync::atomic::Ordering::SeqCst;
        let p = std::sync::Arc::as_ptr(r) as *mut Region;
        if self.slot.compare_exchange(p, std::ptr::null_mut(), SeqCst, SeqCst).is_ok() {
            // SAFETY: the slot held the raw Arc that `post` made of this region; taking it out
            // of the slot makes it ours to drop.
            drop(unsafe { std::sync::Arc::from_raw(p) });
        }
    }

    /// A worker after its part: watches the slot for `linger`, running each region posted
    /// there (and, now and then, other jobs of its pool), then leaves.
    fn watch(&self, linger: std::time::Duration) {
        use std::sync::atomic::Ordering::SeqCst;
        if WATCHING.with(|w| w.replace(true)) {
            // Run from an outer watch's yield: that one goes on watching when this job returns.
            return;
        }
        struct Unset;
        impl Drop for Unset {
            fn drop(&mut self) {
                WATCHING.with(|w| w.set(false));
            }
        }
        let _unset = Unset;
        self.watching.fetch_add(1, SeqCst);
        let mut since = std::time::Instant::now();
        let mut idle = 0u32;
        loop {
            let p = if self.slot.load(SeqCst).is_null() {
                std::ptr::null_mut()
            } else {
                self.slot.swap(std::ptr::null_mut(), SeqCst)
            };
            if !p.is_null() {
                // SAFETY: a non-null slot holds a raw Arc from `post`; swapping it out made it ours.
                let r = unsafe { std::sync::Arc::from_raw(p) };
                r.help();
                drop(r);
                since = std::time::Instant::now();
                idle = 0;
                continue;
            }
            idle += 1;
            if idle.is_multiple_of(64) {
                if since.elapsed() >= linger {
                    break;
                }
                // Other work of this pool (a training step's spinner, another caller's job).
                if rayon::yield_now() == Some(rayon::Yield::Executed) {
                    since = std::time::Instant::now();
                }
                if must_yield(rayon::current_num_threads()) {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        }
        self.watching.fetch_sub(1, SeqCst);
        // A region posted after the last look, before the count fell: run it (its caller may
        // have done every part already; then `help` finds nothing).
        let p = self.slot.swap(std::ptr::null_mut(), SeqCst);
        if !p.is_null() {
            // SAFETY: as above.
            unsafe { std::sync::Arc::from_raw(p) }.help();
        }
    }
}

/// [`helped_by`] with the choice made: `ask` the pool's workers, or not.
fn lend<R>(pool: &std::sync::Arc<crate::pool::Pool>, ask: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(std::sync::Arc<crate::pool::Pool>, bool)>, Option<u32>);
    impl Drop for Restore {
        fn drop(&mut self) {
            HELPERS.with(|h| *h.borrow_mut() = self.0.take());
            if let Some(csr) = self.1 {
                set_csr(csr);
            }
        }
    }
    let before = HELPERS.with(|h| h.borrow_mut().replace((pool.clone(), ask)));
    let csr = get_csr().inspect(|&c| set_csr(c | 0x8040)); // FTZ (bit 15) | DAZ (bit 6)
    let _restore = Restore(before, csr);
    f()
}

/// How long a worker lingers after a job (`spin`, [`Mailbox::watch`]): the spin budget (1 ms
/// under `spin`), at most 10 ms; zero under `park`.
fn linger_budget() -> std::time::Duration {
    crate::wait_policy::wait_policy()
        .spin_for()
        .unwrap_or(crate::wait_policy::DEFAULT_SPIN)
        .min(std::time::Duration::from_millis(10))
}

/// False inside a [`helped_by`] call that does not ask the pool's workers (the caller runs
/// every part), true otherwise.
pub(crate) fn helpers_asked() -> bool {
    HELPERS.with(|h| !matches!(*h.borrow(), Some((_, false))))
}

/// This thread's MXCSR (None off x86-64).
fn get_csr() -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)]
    // SAFETY: reading MXCSR has no effect.
    unsafe {
        Some(std::arch::x86_64::_mm_getcsr())
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

fn set_csr(_csr: u32) {
    #[cfg(target_arch = "x86_64")]
    #[allow(deprecated)]
    // SAFETY: MXCSR holds only floating-point control and status flags of this thread.
    unsafe {
        std::arch::x86_64::_mm_setcsr(_csr)
    }
}

/// One step's spinning workers: the flag that ends them, and how many have parked (spun out the
/// budget with no work) since the last parallel region, so that the end of the next one sets
/// them spinning again.
struct Spinners {
    done: std::sync::atomic::AtomicBool,
    /// Spinners parked since the last rouse, and spinner jobs the owner ran itself (those
    /// never spun: rouse spawns them again).
    parked: std::sync::atomic::AtomicUsize,
    /// Workers spinning now (for tests).
    spinning: std::sync::atomic::AtomicUsize,
    budget: Option<std::time::Duration>,
    owner: Option<usize>,
    /// More workers than cores: a spinner yields its core now and then.
    oversubscribed: bool,
    /// The threads of parked spinners, for rouse and the session's end to wake.
    sleepers: std::sync::Mutex<Vec<std::thread::Thread>>,
    /// Bumped by each rouse that wakes sleepers: a parked spinner sleeps until it changes.
    rouses: std::sync::atomic::AtomicUsize,
}

impl Spinners {
    /// A session (already `done`, or not) of a step owned by `owner` on a pool of `threads`.
    fn new(done: bool, budget: Option<std::time::Duration>, owner: Option<usize>, threads: usize) -> Spinners {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        Spinners {
            done: AtomicBool::new(done),
            parked: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            budget,
            owner,
            oversubscribed: must_yield(threads),
            sleepers: std::sync::Mutex::new(Vec::new()),
            rouses: AtomicUsize::new(0),
        }
    }

    /// Wakes every parked spinner (at the session's end).
    fn wake_sleepers(&self) {
        let sleepers = std::mem::take(&mut *self.sleepers.lock().unwrap_or_else(|e| e.into_inner()));
        sleepers.into_iter().for_each(|t| t.unpark());
    }
}

/// Runs `f` (on a worker of the current pool) while the pool's other workers busy-wait for the
/// work it spawns, instead of going to sleep between its parallel regions. A training step is a
/// chain of short parallel products with serial work between them; a sleeping worker takes tens
/// of microseconds to wake (an interrupt to an idle virtual CPU; 50-80 µs measured here), which
/// cost a W3 step a fifth of its time on two cores. This is OpenMP's active wait policy, for the
/// length of one step.
///
/// How long they spin is the process's [`crate::wait_policy::WaitPolicy`]: the whole step
/// (`Spin`), until no work has come for the spin budget (`SpinThenPark`), or not at all (`Park`).
/// A worker that parks sleeps until [`rouse`] at the end of the step's next parallel region: it
/// sleeps through one gap, not the rest of the step (OpenMP's `KMP_BLOCKTIME` behaves the same
/// way). When the step ends a spinner lingers for the budget (1 ms by default) and serves the
/// next step if it starts by then, so that between steps it does not go through the pool's idle
/// loop, which calls `sched_yield` (see [`Region`] for why that matters under load).
pub fn with_spinning_workers<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    use crate::wait_policy::WaitPolicy;
    // A step entered again inside a step (a model's shards) finds its spinners already at work.
    if threads <= 1 || rayon::current_thread_index().is_none() || SESSION.with(|s| s.borrow().is_some()) {
        return f();
    }
    let policy = crate::wait_policy::wait_policy();
    if policy == WaitPolicy::Park {
        return f();
    }
    spinning(threads, policy.spin_for(), f)
}

/// [`with_spinning_workers`] with the spin budget given (None: spin for the whole of `f`).
fn spinning<R>(threads: usize, budget: Option<std::time::Duration>, f: impl FnOnce() -> R) -> R {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    let spinners = Arc::new(Spinners::new(false, budget, rayon::current_thread_index(), threads));
    for _ in 1..threads {
        let s = spinners.clone();
        rayon::spawn(move || spin(s));
    }
    wake_resting();
    // Ending: ends the spinning when f returns or unwinds, and wakes the parked spinners so they
    // see it (a spinner that outlives the step finds `done` at its next look).
    struct Ending;
    impl Drop for Ending {
        fn drop(&mut self) {
            if let Some(s) = SESSION.with(|c| c.borrow_mut().take()) {
                s.done.store(true, Ordering::Release);
                s.wake_sleepers();
            }
        }
    }
    SESSION.with(|c| *c.borrow_mut() = Some(spinners));
    let ending = Ending;
    let out = f();
    drop(ending);
    out
}

/// The end of a step handed to the pool from outside ([`crate::pool::Pool::install`]): the
/// worker that ran it stays on as a step's spinner does after the step (lingers for the spin
/// budget, then rests), instead of going back to rayon's idle loop, which yields. Nothing under
/// the `park` policy.
pub(crate) fn linger() {
    let policy = crate::wait_policy::wait_policy();
    if policy == crate::wait_policy::WaitPolicy::Park {
        return;
    }
    // A session that has already ended: `spin` serves it at once and goes on to linger.
    spin(std::sync::Arc::new(Spinners::new(true, policy.spin_for(), None, rayon::current_num_threads())));
}

/// A spinner job: serves its session, then lingers for the budget and serves the next session
/// whose spinner job it picks up by then, and so on; returns to the pool after a linger with
/// none.
fn spin(first: std::sync::Arc<Spinners>) {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    // The owner may pop an unstolen spinner while it waits inside f: it must not spin on its own
    // step. The other worker never took this one, so it counts as parked.
    if rayon::current_thread_index() == first.owner {
        first.parked.fetch_add(1, Ordering::AcqRel);
        return;
    }
    // Taken by a worker already in this loop (lingering, or serving another pool user's
    // session): that loop serves it next. One waiting is enough; another counts as parked.
    if SPINNING.get() {
        HANDOFF.with(|h| {
            let mut h = h.borrow_mut();
            if h.as_ref().is_none_or(|o| o.done.load(Ordering::Acquire)) {
                *h = Some(first);
            } else {
                first.parked.fetch_add(1, Ordering::AcqRel);
            }
        });
        return;
    }
    SPINNING.set(true);
    struct Leaving;
    impl Drop for Leaving {
        fn drop(&mut self) {
            SPINNING.set(false);
            HANDOFF.with(|h| h.borrow_mut().take());
        }
    }
    let _leaving = Leaving;
    let mut s = first;
    loop {
        serve(&s);
        let linger = s.budget.unwrap_or(crate::wait_policy::DEFAULT_SPIN).min(Duration::from_millis(10));
        let mut since = Instant::now();
        let mut rested = Duration::ZERO;
        let mut idle = 0u32;
        let next = loop {
            if let Some(n) = HANDOFF.with(|h| h.borrow_mut().take())
                && !n.done.load(Ordering::Acquire)
            {
                break Some(n);
            }
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                continue;
            }
            idle += 1;
            if idle.is_multiple_of(64) {
                if since.elapsed() >= linger {
                    // No next step within the linger: rest (asleep, in this job) until one
                    // starts, and leave for the pool's idle loop only after REST with none.
                    if rested >= REST || !rest(REST - rested) {
                        break None;
                    }
                    rested += since.elapsed();
                    since = Instant::now();
                    continue;
                }
                if s.oversubscribed {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        };
        match next {
            Some(n) => s = n,
            None => return,
        }
    }
}

/// Runs a session's parallel work as it appears until the session ends, parking (until the
/// next [`rouse`]) whenever no work has come for the budget.
fn serve(s: &Spinners) {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    s.spinning.fetch_add(1, Ordering::AcqRel);
    struct Leaving<'a>(&'a Spinners);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            self.0.spinning.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _leaving = Leaving(s);
    let mut idle = 0u32;
    let mut since = s.budget.map(|_| Instant::now());
    while !s.done.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            idle = 0;
            if since.is_some() {
                since = Some(Instant::now());
            }
            continue;
        }
        idle += 1;
        if idle.is_multiple_of(64) {
            // Spun out the budget with no work: sleep until the next rouse or the end.
            if let (Some(t), Some(b)) = (since, s.budget)
                && t.elapsed() >= b
            {
                park(s);
                since = Some(Instant::now());
                continue;
            }
            // Only when the pool has more workers than the machine has cores: let the working
            // ones run. Otherwise never: on Linux's EEVDF scheduler each sched_yield moves this
            // thread behind whatever else shares its core (a busy loop there takes a whole
            // slice), so a spinner that yields gets a few percent of its core under load (6.8%
            // measured with a yield every 100 µs).
            if s.oversubscribed {
                std::thread::yield_now();
            }
        }
        std::hint::spin_loop();
    }
}

/// Sleeps a spinner until the session's next rouse or its end.
fn park(s: &Spinners) {
    use std::sync::atomic::{Ordering, fence};
    let me = std::thread::current();
    let seen = {
        let mut sleepers = s.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        if s.done.load(Ordering::Acquire) {
            return;
        }
        sleepers.push(me.clone());
        s.parked.fetch_add(1, Ordering::SeqCst);
        s.rouses.load(Ordering::Acquire)
    };
    s.spinning.fetch_sub(1, Ordering::AcqRel);
    // One last look for work, now that this thread is counted: a region that pushed its work
    // before a rouse could see the count would otherwise wait for the next one (the fences on
    // both sides order the two; see `rouse`). Found: stay a spinner, unless a rouse already
    // took this thread off the list (it then counted it as woken).
    fence(Ordering::SeqCst);
    if rayon::yield_now() == Some(rayon::Yield::Executed) {
        let mut sleepers = s.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = sleepers.iter().position(|t| t.id() == me.id()) {
            sleepers.swap_remove(i);
            s.parked.fetch_sub(1, Ordering::SeqCst);
        }
        s.spinning.fetch_add(1, Ordering::AcqRel);
        return;
    }
    while !s.done.load(Ordering::Acquire) && s.rouses.load(Ordering::Acquire) == seen {
        std::thread::park();
    }
    s.spinning.fetch_add(1, Ordering::AcqRel);
}

/// How long a spinner with no next step rests before it returns to the pool's idle loop.
const REST: std::time::Duration = std::time::Duration::from_millis(100);

/// Workers resting between steps: asleep inside their spinner job (or after the step they ran,
/// [`linger`]), so that they stay out of rayon's idle loop, which calls `sched_yield` 32 times
/// before it sleeps. Beside a busy process each of those yields hands it a whole slice: after
/// stop 33 about 920 yields were left in a W1 run under load, nearly all in that loop, and an
/// `LD_PRELOAD` that made them no-ops ran W1 and W3 5-11% faster there. A step handed to the
/// pool, a new session and every parallel region wake them ([`wake_resting`]).
struct Resting {
    /// Threads asleep in [`rest`]: each with its pool's id ([`set_pool_id`]) and the flag that
    /// wakes it.
    sleepers: std::sync::Mutex<Vec<Sleeper>>,
    /// How many are listed (read without the lock by [`wake_resting`]).
    count: std::sync::atomic::AtomicUsize,
}

struct Sleeper {
    thread: std::thread::Thread,
    pool: u64,
    woken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

static RESTING: Resting =
    Resting { sleepers: std::sync::Mutex::new(Vec::new()), count: std::sync::atomic::AtomicUsize::new(0) };

thread_local! {
    /// The id of the library pool this thread is a worker of (0: none).
    static POOL_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Marks this thread as a worker of the pool with `id` (the pool's start handler).
pub(crate) fn set_pool_id(id: u64) {
    POOL_ID.set(id);
}

/// Sleeps this worker for up to `most` or until [`wake_resting`]; true when it was woken or
/// found a job to run as it lay down, false when `most` passed without either.
fn rest(most: std::time::Duration) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst, fence};
    let me = std::thread::current();
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    {
        let mut sleepers = RESTING.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        sleepers.push(Sleeper { thread: me.clone(), pool: POOL_ID.get(), woken: flag.clone() });
        RESTING.count.store(sleepers.len(), SeqCst);
    }
    // Listed before this last look for work; a waker pushes its work before it reads the count
    // (the fences on both sides order the two).
    fence(SeqCst);
    let found = rayon::yield_now() == Some(rayon::Yield::Executed);
    let deadline = std::time::Instant::now() + most;
    let mut woken = found;
    while !woken {
        let now = std::time::Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::park_timeout(deadline - now);
        woken = flag.load(SeqCst);
    }
    let mut sleepers = RESTING.sleepers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = sleepers.iter().position(|t| t.thread.id() == me.id()) {
        sleepers.swap_remove(i);
    }
    RESTING.count.store(sleepers.len(), SeqCst);
    woken
}

/// Wakes the resting spinners: call after pushing the work they are to find (a spinner lying
/// down meanwhile looks for work after it is listed).
pub(crate) fn wake_resting() {
    wake_resting_of(None)
}

/// [`wake_resting`] for the workers of the pool with `id` only (None: every pool's). A call
/// that a small pool helps must not wake another pool's workers to spin beside it: after a
/// fit on two threads, a one-row encode helped by a pool of one woke the fit's two workers on
/// every call, four threads on two cores, and gained nothing.
fn wake_resting_of(id: Option<u64>) {
    use std::sync::atomic::{Ordering::SeqCst, fence};
    fence(SeqCst);
    if RESTING.count.load(SeqCst) == 0 {
        return;
    }
    let mut listed = RESTING.sleepers.lock().unwrap_or_else(|e| e.into_inner());
    listed.retain(|t| {
        let wake = id.is_none_or(|id| t.pool == id);
        if wake {
            t.woken.store(true, SeqCst);
            t.thread.unpark();
        }
        !wake
    });
    RESTING.count.store(listed.len(), SeqCst);
}

/// Whether a waiting thread should still yield its core now and then: when the pool has more
/// workers than the machine has cores (the working ones need the cores), and under valgrind,
/// which runs one thread at a time and switches only at a system call or after a long slice, so
/// a thread spinning without one holds up the others (the outside test's valgrind run went from
/// minutes to over 20 minutes without the yields).
fn must_yield(threads: usize) -> bool {
    // Read once: this runs every 64 idle rounds of a wait, and the standard library reads the
    // affinity mask and the cgroup quota files on each call.
    static ONCE: std::sync::OnceLock<(usize, bool)> = std::sync::OnceLock::new();
    let (cores, valgrind) = *ONCE
        .get_or_init(|| (crate::pool::cores(), std::env::var("LD_PRELOAD").is_ok_and(|v| v.contains("vgpreload"))));
    threads > cores || valgrind
}

/// One parallel region of [`for_each_index`], shared by its owner and the helper jobs it
/// hands to the pool.
///
/// Why not `rayon::scope`: the owner's wait at the end of a scope (and of a `join`) is rayon's,
/// which calls `sched_yield` up to 32 times before it sleeps, and beside another busy process
/// each yield hands that process a whole slice (an `LD_PRELOAD` that made `sched_yield` a
/// no-op: W1 under load 3,041 / 3,129 -> 4,088 / 4,483 samples/s, stop 33). A scope also waits
/// for its jobs to *return*, a moment after their last part is done, and that wait yielded
/// about 60 times in a W1 epoch under load even after stop 33's own wait (stop 34). A region
/// waits only until no helper is inside `work`: helper jobs the pool starts later find no index
/// left and return without touching it. The owner spins for the wait policy's budget, then
/// sleeps until the last helper wakes it.
struct Region {
    /// The indices cut into one contiguous home run per participant, each with its own counter.
    homes: Box<[Home]>,
    /// Helper jobs between their start and their last touch of `work`.
    active: std::sync::atomic::AtomicUsize,
    /// Set by the owner before it sleeps; read by the helper that leaves last.
    asleep: std::sync::atomic::AtomicBool,
    owner: std::thread::Thread,
    /// The owner's `f`, its lifetime erased: a helper calls it only for an index it claimed
    /// below its home's end, and the owner returns only once every index is claimed and no
    /// helper is active (see [`for_each_index`]).
    work: *const (dyn Fn(usize) + Sync),
    /// The first panic of a helper's part, raised again on the owner.
    panic: std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// Owned by a thread that [`helped_by`] lends a pool: the owner's home is the first run,
    /// the helpers' the others (by their index in that pool).
    helped: bool,
}

// SAFETY: `work` points to an `Fn + Sync` that outlives every call made through it (see its
// field); everything else is Send and Sync.
unsafe impl Send for Region {}
// SAFETY: as for Send.
unsafe impl Sync for Region {}

/// A run of a region's indices: the next to hand out, and the end. On its own cache line, so
/// that threads claiming from different homes never share one.
#[repr(align(64))]
struct Home {
    next: std::sync::atomic::AtomicUsize,
    end: usize,
}

impl Region {
    /// Claims and runs indices until none is left, its home run first, then the others' in
    /// turn; returns a part's panic instead of unwinding.
    ///
    /// Why homes: a worker's index within the pool is the same on every step, so it takes the
    /// same chunks of the optimizer's state and the same block of each product step after step,
    /// and they stay in its caches (OpenMP's static schedule, with the stealing of a dynamic
    /// one). Dealt to whichever thread asked next, about half of them changed threads each
    /// step, which costs most where the cores do not share an L3 (two sockets, two CCDs; the
    /// 2-core Zen 4 machines here sometimes run that way: a thread round trip of 350 ns instead
    /// of 60). Measured there, W1 epochs alternated in one process: +2% (median of 10 pairs).
    fn run(&self, owner: bool) -> Option<Box<dyn std::any::Any + Send>> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut panic = None;
        let homes = self.homes.len();
        let index = rayon::current_thread_index().unwrap_or(0);
        let first = match (self.helped, owner) {
            (true, true) => 0,
            (true, false) => 1 + index % (homes - 1),
            (false, _) => index % homes,
        };
        for h in (0..homes).map(|k| (first + k) % homes) {
            let home = &self.homes[h];
            loop {
                let i = home.next.fetch_add(1, SeqCst);
                if i >= home.end {
                    break;
                }
                // SAFETY: i was claimed below its home's end by this thread, so the owner has not
                // returned yet.
                let work = unsafe { &*self.work };
                if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(i))) {
                    panic.get_or_insert(p);
                }
            }
        }
        panic
    }

    /// A helper job's body.
    fn help(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        // Active before the first claim: an owner that saw every index claimed and this count
        // at 0 knows that this job will claim none.
        self.active.fetch_add(1, SeqCst);
        if let Some(p) = self.run(false) {
            self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
        }
        if self.active.fetch_sub(1, SeqCst) == 1 && self.asleep.load(SeqCst) {
            self.owner.unpark();
        }
    }

    /// The owner's wait, once it found no index left: until no helper is active.
    fn wait(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let budget = crate::wait_policy::wait_policy().spin_for();
        let start = std::time::Instant::now();
        let mut idle = 0u32;
        while self.active.load(SeqCst) != 0 {
            idle += 1;
            if idle.is_multiple_of(64) {
                if budget.is_some_and(|b| start.elapsed() >= b) {
                    break;
                }
                if must_yield(rayon::current_num_threads()) {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        }
        loop {
            self.asleep.store(true, SeqCst);
            if self.active.load(SeqCst) == 0 {
                return;
            }
            std::thread::park();
        }
    }
}

/// Runs `f(i)` for every i in 0..n on up to `threads` threads of the current pool, this thread
/// included; returns when all are done. The indices are cut into one contiguous home run per
/// participating thread, picked by its index in the pool (the same chunks on every call); a
/// thread that finishes its own run takes what is left of the others'. So the caller works
/// instead of waiting, a worker that starts late finds less (or nothing) left,
/// and the wait for the parts still running is a [`Region`]'s, never rayon's yielding one. An
/// index's result must not depend on which thread runs it (chunks of an elementwise pass,
/// blocks of a product): then the results are the same on any thread count and timing.
pub fn for_each_index<F: Fn(usize) + Sync>(n: usize, threads: usize, f: F) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let lent = HELPERS.with(|h| h.borrow().clone());
    let helpers = match &lent {
        Some((_, false)) => 0,
        _ => threads.min(n).saturating_sub(1),
    };
    if helpers == 0 {
        (0..n).for_each(f);
        return;
    }
    let work: &(dyn Fn(usize) + Sync) = &f;
    // SAFETY: only the lifetime is erased; this function returns (or unwinds) only after
    // `region.wait()`, once no helper can call `work` again (see `Region`).
    let work: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(work) };
    let homes = helpers + 1;
    let region = Arc::new(Region {
        homes: (0..homes).map(|h| Home { next: AtomicUsize::new(h * n / homes), end: (h + 1) * n / homes }).collect(),
        active: AtomicUsize::new(0),
        asleep: AtomicBool::new(false),
        owner: std::thread::current(),
        work,
        panic: std::sync::Mutex::new(None),
        helped: lent.is_some(),
    });
    for _ in 0..helpers {
        let r = region.clone();
        match &lent {
            // To a worker watching the pool's mailbox, else as a job; either way the worker then
            // watches the mailbox for the spin budget, so the next call finds it there.
            Some((pool, _)) => {
                if let Some(r) = pool.mailbox().post(r) {
                    let mailbox = pool.mailbox().clone();
                    pool.spawn(move || {
                        r.help();
                        drop(r);
                        mailbox.watch(linger_budget());
                    })
                }
            }
            None => rayon::spawn(move || r.help()),
        }
    }
    // A spinner that parked in the gap before this region is in no queue the pool wakes for new
    // work: wake it now that the work is there (before, a spinner that spun out its budget
    // between the wake and the push slept through the region), so it joins this region rather
    // than the next; and the same for the resting ones.
    rouse();
    wake_resting_of(lent.as_ref().map(|(pool, _)| pool.id()));
    let own = region.run(true);
    region.wait();
    if let Some((pool, _)) = &lent {
        pool.mailbox().withdraw(&region);
    }
    rouse();
    let helper = region.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(p) = own.or(helper) {
        std::panic::resume_unwind(p);
    }
}

/// [`for_each_index`] collecting `f(i)` in index order.
pub fn map_index<T: Send, F: Fn(usize) -> T + Sync>(n: usize, threads: usize, f: F) -> Vec<T> {
    let slots: Vec<std::sync::Mutex<Option<T>>> = (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    for_each_index(n, threads, |i| {
        let v = f(i);
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    });
    slots.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every index ran")).collect()
}

/// [`for_each_index`] over chunks of `size` elements of several same-length buffers: `f(i,
/// [chunk i of each])`.
pub fn for_each_chunk_mut<const K: usize, T: Send, F>(bufs: [&mut [T]; K], size: usize, threads: usize, f: F)
where
    F: Fn(usize, [&mut [T]; K]) + Sync,
{
    let n = bufs.iter().map(|b| b.len()).max().unwrap_or(0).div_ceil(size.max(1));
    let d = bufs.map(Disjoint::new);
    // SAFETY: for_each_index runs each index once, and every chunk has the one size.
    for_each_index(n, threads, |i| f(i, std::array::from_fn(|k| unsafe { d[k].chunk(i, size) })));
}

/// [`for_each_index`] over owned jobs (each holding its own disjoint `&mut` pieces): `f(job)`
/// once for each.
pub fn for_each_job<J: Send, F: Fn(J) + Sync>(jobs: Vec<J>, threads: usize, f: F) {
    let jobs: Vec<std::sync::Mutex<Option<J>>> = jobs.into_iter().map(|j| std::sync::Mutex::new(Some(j))).collect();
    for_each_index(jobs.len(), threads, |i| {
        if let Some(j) = jobs[i].lock().unwrap_or_else(|e| e.into_inner()).take() {
            f(j)
        }
    });
}

/// [`for_each_chunk_mut`] collecting `f`'s results in chunk order.
pub fn map_chunks_mut<const K: usize, T: Send, R: Send, F>(
    bufs: [&mut [T]; K],
    size: usize,
    threads: usize,
    f: F,
) -> Vec<R>
where
    F: Fn(usize, [&mut [T]; K]) -> R + Sync,
{
    let n = bufs.iter().map(|b| b.len()).max().unwrap_or(0).div_ceil(size.max(1));
    let d = bufs.map(Disjoint::new);
    // SAFETY: as in for_each_chunk_mut.
    map_index(n, threads, |i| f(i, std::array::from_fn(|k| unsafe { d[k].chunk(i, size) })))
}

/// A mutable slice handed out in disjoint chunks to the indices of [`for_each_index`].
struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a Disjoint only hands out chunks of the slice it borrows mutably; `chunk`'s caller
// keeps those chunks disjoint, so sharing it between threads is sharing &mut of disjoint parts.
unsafe impl<T: Send> Send for Disjoint<'_, T> {}
// SAFETY: as for Send.
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    fn new(s: &'a mut [T]) -> Self {
        Disjoint { ptr: s.as_mut_ptr(), len: s.len(), _borrow: std::marker::PhantomData }
    }

    /// Elements [i size, (i + 1) size) (cut at the end).
    ///
    /// # Safety
    /// No two chunks in use at once may overlap: take each index once, with one size.
    #[allow(clippy::mut_from_ref)]
    unsafe fn chunk(&self, i: usize, size: usize) -> &'a mut [T] {
        let lo = i.saturating_mul(size).min(self.len);
        let hi = lo.saturating_add(size).min(self.len);
        // SAFETY: [lo, hi) lies inside the borrowed slice; disjointness is the caller's.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(lo), hi - lo) }
    }
}

/// Chunk i of a shared slice, cut at the end (the read-only twin of [`Disjoint::chunk`]).
pub fn chunk<T>(s: &[T], i: usize, size: usize) -> &[T] {
    let lo = i.saturating_mul(size).min(s.len());
    &s[lo..lo.saturating_add(size).min(s.len())]
}

/// At the start of a parallel region inside [`with_spinning_workers`], once its work is pushed,
/// and at its end: wakes the workers that parked since the last rouse (at the end, their
/// wake-up overlaps the serial work before the next region), and spawns again the spinner jobs
/// that the owner ran itself. Nothing to do, and one atomic load, when none parked.
pub fn rouse() {
    use std::sync::atomic::{Ordering, fence};
    // After the region's work is pushed: a spinner counted as parked after this look finds it
    // in its own last look (`park`).
    fence(Ordering::SeqCst);
    SESSION.with(|c| {
        if let Some(s) = c.borrow().as_ref()
            && s.parked.load(Ordering::SeqCst) > 0
            && !s.done.load(Ordering::Relaxed)
        {
            // Under the sleepers' lock, so that a spinner counted as parked is also listed.
            let (parked, woken) = {
                let mut sleepers = s.sleepers.lock().unwrap_or_else(|e| e.into_inner());
                s.rouses.fetch_add(1, Ordering::AcqRel);
                let woken = sleepers.len();
                sleepers.drain(..).for_each(|t| t.unpark());
                (s.parked.swap(0, Ordering::AcqRel), woken)
            };
            for _ in woken.min(parked)..parked {
                let s = s.clone();
                rayon::spawn(move || spin(s));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    fn parked() -> Option<usize> {
        SESSION.with(|c| c.borrow().as_ref().map(|s| s.parked.load(Ordering::Acquire)))
    }

    fn spinners() -> Option<usize> {
        SESSION.with(|c| c.borrow().as_ref().map(|s| s.spinning.load(Ordering::Acquire)))
    }

    /// Waits (up to 10 s) until `f` gives `want`.
    #[track_caller]
    fn wait_for(f: fn() -> Option<usize>, want: usize) {
        let t = Instant::now();
        while f() != Some(want) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(f(), Some(want));
    }

    /// Each value is 0 + w_0 g_0 + w_1 g_1 + ... in shard order, bit for bit, across chunk and
    /// piece boundaries, on any thread count; a share of weight 0 is skipped.
    #[test]
    fn combined_shards_are_the_ordered_sums() {
        let n = 2 * CHUNK + 777;
        let g: Vec<Vec<f32>> =
            (0..3).map(|s| (0..n).map(|i| ((i * 7 + s * 13) % 101) as f32 / 7.0 - 5.0).collect()).collect();
        let parts = [(&g[0][..], 0.3f32), (&g[1][..], 0.0), (&g[2][..], 0.7)];
        let want: Vec<f32> = (0..n)
            .map(|i| {
                let mut v = 0.0f32;
                v += 0.3 * g[0][i];
                v += 0.7 * g[2][i];
                v
            })
            .collect();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut out = vec![f32::NAN; n];
            pool.install(|| combine_shards(&mut out, &parts));
            assert!(out.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads");
        }
    }

    /// A thread starts on its home run (by its index in the pool) and then takes the rest: with
    /// the other worker held busy, worker 1 alone runs 4..8 before 0..4, on every call.
    #[test]
    fn a_region_starts_each_thread_on_its_home_run() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let done_rx = std::sync::Mutex::new(done_rx);
        let orders = std::sync::Mutex::new(Vec::new());
        pool.broadcast(|ctx| {
            if ctx.index() == 0 {
                // Busy until worker 1 is done, so the helper job waits in a queue (a bounded
                // wait: a failure on worker 1 fails the test instead of hanging it).
                let _ = done_rx.lock().unwrap().recv_timeout(std::time::Duration::from_secs(10));
                return;
            }
            for _ in 0..3 {
                let order = std::sync::Mutex::new(Vec::new());
                for_each_index(8, 2, |i| order.lock().unwrap().push((i, rayon::current_thread_index())));
                orders.lock().unwrap().push(order.into_inner().unwrap());
            }
            done_tx.send(()).unwrap();
        });
        let want: Vec<(usize, Option<usize>)> = [4, 5, 6, 7, 0, 1, 2, 3].iter().map(|&i| (i, Some(1))).collect();
        for order in orders.into_inner().unwrap() {
            assert_eq!(order, want);
        }
    }

    /// A caller outside the pool that asks its workers: a worker of *that* pool (not rayon's
    /// global one) runs a part, while the caller waits inside any part it runs itself (bounded: a
    /// worker that never comes fails the test instead of hanging it). Which part each takes is
    /// not fixed: the caller's home is the first, but a worker that finished the second may take
    /// the first before the caller, descheduled after posting the region, gets to it (seen once
    /// in CI on a 2-core machine). The caller's floating-point mode is flush-to-zero inside and
    /// restored after.
    #[test]
    fn a_lent_pool_helps_a_caller_outside_it() {
        let pool = Arc::new(crate::pool::Pool::unshared(3));
        let csr = get_csr();
        let me = std::thread::current().id();
        // The first call hands its part over as a job, the next ones through the mailbox that
        // the worker watches after it.
        for call in 0..3 {
            let runs = std::sync::Mutex::new(Vec::new());
            lend(&pool, true, || {
                #[cfg(target_arch = "x86_64")]
                assert_eq!(get_csr().unwrap() & 0x8040, 0x8040, "flush-to-zero inside");
                for_each_index(2, 2, |i| {
                    let who = std::thread::current().id();
                    runs.lock().unwrap().push((i, who, rayon::current_num_threads()));
                    if who == me {
                        let t = Instant::now();
                        while !runs.lock().unwrap().iter().any(|r| r.1 != me) && t.elapsed() < Duration::from_secs(10) {
                            std::thread::yield_now();
                        }
                    }
                });
            });
            let mut runs = runs.into_inner().unwrap();
            runs.sort_by_key(|r| r.0);
            assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1], "call {call}: each part once");
            let helped: Vec<_> = runs.iter().filter(|r| r.1 != me).collect();
            assert!(!helped.is_empty(), "call {call}: a worker ran a part");
            for r in helped {
                assert_eq!(r.2, 3, "the lent pool's worker, not the global pool's");
            }
        }
        assert_eq!(get_csr(), csr, "the caller's MXCSR restored");
        assert!(helpers_asked(), "outside a lent call");
    }

    /// Not asking: the caller runs every part itself, in order, and a one-row product runs
    /// whole. The results are the same bits as when the pool's worker helps.
    #[test]
    fn a_lent_pool_not_asked_leaves_every_part_to_the_caller() {
        let pool = Arc::new(crate::pool::Pool::unshared(2));
        let me = std::thread::current().id();
        let order = std::sync::Mutex::new(Vec::new());
        lend(&pool, false, || {
            assert!(!helpers_asked());
            for_each_index(4, 2, |i| order.lock().unwrap().push((i, std::thread::current().id() == me)));
        });
        assert_eq!(order.into_inner().unwrap(), [(0, true), (1, true), (2, true), (3, true)]);
        // One row through 784 x 256 weights (401k FLOPs, split in two when asked).
        let (k, n) = (784, 256);
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1e-3).collect();
        let x: Vec<f32> = (0..k).map(|i| (i % 255) as f32 / 255.0).collect();
        let product = |threads: usize| {
            use crate::gemm::{Operand, gemm};
            let mut y = vec![0f32; n];
            gemm(1, n, k, 1.0, Operand::n(&x, k), Operand::n(&w, n), 0.0, &mut y, n, threads);
            y
        };
        let one = product(1);
        assert_eq!(lend(&pool, true, || product(2)), one);
        assert_eq!(lend(&pool, false, || product(2)), one);
    }

    /// A worker that spun out its budget sleeps through one gap only: the end of the next
    /// parallel region sets it spinning again (with nothing spawned for it to wake to), and it
    /// parks again after the next long gap.
    #[test]
    fn a_parked_worker_spins_again_after_the_next_region() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            let owner = rayon::current_thread_index();
            // A budget long enough for the test to see the worker spinning between its parks.
            spinning(2, Some(Duration::from_millis(50)), || {
                // A gap longer than the budget: the other worker parks and stays parked.
                wait_for(parked, 1);
                std::thread::sleep(Duration::from_millis(100));
                assert_eq!((parked(), spinners()), (Some(1), Some(0)));
                rouse();
                assert_eq!(parked(), Some(0));
                wait_for(spinners, 1);
                // The spinner takes a job spawned while the owner is busy.
                let ran_on = AtomicUsize::new(usize::MAX);
                let t = Instant::now();
                rayon::scope(|s| {
                    s.spawn(|_| ran_on.store(rayon::current_thread_index().unwrap(), Ordering::Release));
                    while ran_on.load(Ordering::Acquire) == usize::MAX && t.elapsed() < Duration::from_secs(10) {
                        std::hint::spin_loop();
                    }
                });
                assert_ne!(Some(ran_on.load(Ordering::Acquire)), owner, "the other worker ran the job");
                wait_for(parked, 1);
                assert_eq!(spinners(), Some(0));
            });
            assert_eq!(parked(), None, "the session ends with f");
        });
    }

    /// With no budget (`Spin`) the worker never parks, and the session's end lets it go.
    #[test]
    fn a_spinning_worker_leaves_when_the_session_ends() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let seen = pool.install(|| {
            let mut seen = None;
            spinning(2, None, || {
                wait_for(spinners, 1);
                std::thread::sleep(Duration::from_millis(20));
                assert_eq!((parked(), spinners()), (Some(0), Some(1)));
                seen = SESSION.with(|c| c.borrow().clone());
            });
            seen.expect("a session")
        });
        let t = Instant::now();
        while seen.spinning.load(Ordering::Acquire) != 0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(seen.spinning.load(Ordering::Acquire), 0);
        assert!(seen.done.load(Ordering::Acquire));
    }

    /// Nothing to rouse outside a session, and a session inside a session is the outer one.
    #[test]
    fn rouse_outside_a_session_does_nothing() {
        rouse();
        assert_eq!(parked(), None);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let out = pool.install(|| spinning(2, None, || with_spinning_workers(2, parked)));
        assert_eq!(out, Some(0));
    }

    thread_local! {
        /// Set on the workers of the pool in `waits_never_yield_the_core`.
        static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    static YIELDS: AtomicUsize = AtomicUsize::new(0);
    /// The worker whose yields are not counted (a step's owner back in the pool's idle loop).
    static EXCLUDED: AtomicUsize = AtomicUsize::new(usize::MAX);

    /// Every sched_yield of this test binary (std's `yield_now` calls it) passes here: counted
    /// on the counted pool's workers, then done.
    #[unsafe(no_mangle)]
    pub extern "C" fn sched_yield() -> libc::c_int {
        if COUNTED.try_with(|c| c.get()).unwrap_or(false)
            && rayon::current_thread_index() != Some(EXCLUDED.load(Ordering::Relaxed))
        {
            YIELDS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the raw system call takes no arguments.
        unsafe { libc::syscall(libc::SYS_sched_yield) as libc::c_int }
    }

    /// No wait during a step calls sched_yield on a machine with a core per worker: beside a
    /// busy process, each yield hands it a whole slice. A spinner spinning (`Spin`) or parked
    /// (`SpinThenPark`), and an owner waiting for a part a worker is still running, all wait
    /// 30 ms here without one (before stop 33: a yield every 64 idle rounds, and rayon's 32 on
    /// each wait and park).
    #[test]
    fn waits_never_yield_the_core() {
        if crate::pool::cores() < 2 {
            return;
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).start_handler(|_| COUNTED.set(true)).build().unwrap();
        pool.install(|| {
            for budget in [None, Some(Duration::from_millis(5))] {
                let during = spinning(2, budget, || {
                    // Spinning, or (with the budget) parked after spinning it out.
                    if budget.is_some() {
                        wait_for(parked, 1)
                    } else {
                        wait_for(spinners, 1)
                    }
                    let before = YIELDS.load(Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(30));
                    // The owner waits for a part that the other worker runs for 30 ms.
                    let owner = rayon::current_thread_index();
                    let started = std::sync::atomic::AtomicBool::new(false);
                    for_each_index(2, 2, |_| {
                        if rayon::current_thread_index() == owner {
                            let t = Instant::now();
                            while !started.load(Ordering::Acquire) {
                                assert!(t.elapsed() < Duration::from_secs(10), "no worker took the other part");
                                std::hint::spin_loop();
                            }
                        } else {
                            started.store(true, Ordering::Release);
                            std::thread::sleep(Duration::from_millis(30));
                        }
                    });
                    YIELDS.load(Ordering::Relaxed) - before
                });
                assert_eq!(during, 0, "sched_yield calls during the step (budget {budget:?})");
            }
        });
        // Between steps: the spinner lingers, then rests asleep inside its job (before: back
        // in the pool's idle loop, 32 yields). The step's owner returns to that loop, so its
        // yields are not counted.
        let before = pool.install(|| {
            spinning(2, Some(Duration::from_millis(20)), || {
                EXCLUDED.store(rayon::current_thread_index().unwrap(), Ordering::Relaxed);
                wait_for(spinners, 1);
                YIELDS.load(Ordering::Relaxed)
            })
        });
        // It lingers for 10 ms (the budget, at most 10 ms), then rests.
        std::thread::sleep(REST / 2);
        assert_eq!(YIELDS.load(Ordering::Relaxed) - before, 0, "sched_yield calls between steps");
    }

    /// A spinner resting between steps is woken by the next one, handed in from outside the
    /// pool: two parts that wait for each other meet at once, not after the rest times out.
    #[test]
    fn a_resting_spinner_joins_the_next_step() {
        if crate::pool::cores() < 2 {
            return;
        }
        let pool = crate::pool::Pool::unshared(2);
        let budget = Some(Duration::from_millis(20));
        let mut waits = Vec::new();
        for _ in 0..5 {
            pool.install(|| spinning(2, budget, || ()));
            // Past the linger (10 ms): the spinner is resting now.
            std::thread::sleep(Duration::from_millis(30));
            let waited = pool.install(|| {
                spinning(2, budget, || {
                    let started = AtomicUsize::new(0);
                    let t = Instant::now();
                    for_each_index(2, 2, |_| {
                        started.fetch_add(1, Ordering::AcqRel);
                        while started.load(Ordering::Acquire) < 2 && t.elapsed() < Duration::from_secs(5) {
                            std::hint::spin_loop();
                        }
                    });
                    t.elapsed()
                })
            });
            waits.push(waited);
        }
        // A missed wake costs the whole rest (100 ms) every time; a busy test machine may delay
        // a wake-up now and then, so one quick meeting in five is enough.
        assert!(waits.iter().any(|w| *w < REST / 2), "the parts met after {waits:?}");
    }

    /// Every index runs once, on both threads when one is slow, and a chunked pass writes every
    /// chunk; without a pool it all runs on the caller.
    #[test]
    fn every_index_runs_once() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for threads in [1, 2, 3, 8] {
            let hits: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
            pool.install(|| for_each_index(100, threads, |i| _ = hits[i].fetch_add(1, Ordering::Relaxed)));
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{threads} threads");
            let mut a = vec![0u32; 1000];
            let mut b = vec![0u32; 1000];
            let sums = pool.install(|| {
                map_chunks_mut([&mut a[..], &mut b[..]], 64, threads, |c, [a, b]| {
                    a.iter_mut().for_each(|v| *v = c as u32);
                    b.iter_mut().for_each(|v| *v = 2 * c as u32);
                    a.len()
                })
            });
            assert_eq!(sums.len(), 16);
            assert_eq!(sums.iter().sum::<usize>(), 1000);
            assert!(a.iter().enumerate().all(|(i, &v)| v == (i / 64) as u32));
            assert!(b.iter().enumerate().all(|(i, &v)| v == 2 * (i / 64) as u32));
        }
        let outside = map_index(5, 4, |i| i * i);
        assert_eq!(outside, [0, 1, 4, 9, 16]);
    }

    /// Called from outside any pool (the helpers then run on rayon's global pool), the wait
    /// sleeps and is woken on the thread that waits. In stop 33's first version (inside a
    /// `rayon::scope`, which ran on a global worker) the wake went to the calling thread, and
    /// the worker slept for ever.
    #[test]
    fn a_wait_entered_from_outside_a_pool_is_woken() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let started = std::sync::atomic::AtomicBool::new(false);
            let first = AtomicUsize::new(usize::MAX);
            for_each_index(2, 2, |i| {
                if first.compare_exchange(usize::MAX, i, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    // The first part taken waits until another thread holds the second, which
                    // then outlasts the spin budget, so its taker's wait goes to sleep.
                    while !started.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                } else {
                    started.store(true, Ordering::Release);
                    std::thread::sleep(Duration::from_millis(30));
                }
            });
            let _ = tx.send(());
        });
        assert!(rx.recv_timeout(Duration::from_secs(20)).is_ok(), "for_each_index did not return");
    }

    /// A part that panics reaches the caller, after the other parts finished (no hang).
    #[test]
    fn a_panicking_part_reaches_the_caller() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let done = AtomicUsize::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                for_each_index(8, 2, |i| {
                    if i == 3 {
                        panic!("part 3");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                })
            })
        }));
        assert!(r.is_err());
    }
}
