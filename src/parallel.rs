//! Row-parallel elementwise passes: split matrices into row blocks over the current pool when the
//! work is large enough to pay for it. Each element is computed the same way whatever the split,
//! so results do not depend on the thread count.

use rayon::prelude::*;

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
        Some(r) => a
            .par_chunks_mut(r * cols)
            .zip(b.par_chunks(r * cols))
            .zip(c.par_chunks(r * cols))
            .for_each(|((a, b), c)| f(a, b, c)),
    }
    rouse();
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
            let parts: Vec<f64> = out
                .par_chunks_mut(n)
                .zip(a.par_chunks(n))
                .zip(b.par_chunks(n))
                .zip(c.par_chunks(n))
                .map(|(((o, a), b), c)| f(o, a, b, c))
                .collect();
            rouse();
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
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
        let (at, len) = (c * CHUNK, o.len());
        o.fill(0.0);
        for &(g, w) in parts {
            if w > 0.0 {
                o.iter_mut().zip(&g[at..at + len]).for_each(|(o, v)| *o += w * v);
            }
        }
    });
    rouse();
}

thread_local! {
    /// The spinning workers of the [`with_spinning_workers`] this thread runs the `f` of.
    static SESSION: std::cell::RefCell<Option<std::sync::Arc<Spinners>>> = const { std::cell::RefCell::new(None) };
}

/// One step's spinning workers: the flag that ends them, and how many have parked (spun out the
/// budget with no work) since the last parallel region, so that the end of the next one sets
/// them spinning again.
struct Spinners {
    done: std::sync::atomic::AtomicBool,
    parked: std::sync::atomic::AtomicUsize,
    /// Workers spinning now (for tests).
    spinning: std::sync::atomic::AtomicUsize,
    budget: Option<std::time::Duration>,
    owner: Option<usize>,
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
/// A worker that parks returns to the pool's sleep, and [`rouse`] at the end of the step's next
/// parallel region sets it spinning again: it sleeps through one gap, not the rest of the step
/// (OpenMP's `KMP_BLOCKTIME` behaves the same way).
pub fn with_spinning_workers<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    use crate::wait_policy::WaitPolicy;
    // A step entered again inside a step (a model's shards) finds its spinners already at work.
    if threads <= 1 || rayon::current_thread_index().is_none() || SESSION.with(|s| s.borrow().is_some()) {
        return f();
    }
    let budget = match crate::wait_policy::wait_policy() {
        WaitPolicy::Park => return f(),
        WaitPolicy::Spin => None,
        WaitPolicy::SpinThenPark(d) => Some(d),
    };
    spinning(threads, budget, f)
}

/// [`with_spinning_workers`] with the spin budget given (None: spin for the whole of `f`).
fn spinning<R>(threads: usize, budget: Option<std::time::Duration>, f: impl FnOnce() -> R) -> R {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let spinners = Arc::new(Spinners {
        done: AtomicBool::new(false),
        parked: AtomicUsize::new(0),
        spinning: AtomicUsize::new(0),
        budget,
        owner: rayon::current_thread_index(),
    });
    for _ in 1..threads {
        let s = spinners.clone();
        rayon::spawn(move || spin(&s));
    }
    // Ending: ends the spinning when f returns or unwinds (a spinner that outlives the step
    // finds `done` at its next look and returns).
    struct Ending;
    impl Drop for Ending {
        fn drop(&mut self) {
            if let Some(s) = SESSION.with(|c| c.borrow_mut().take()) {
                s.done.store(true, Ordering::Release);
            }
        }
    }
    SESSION.with(|c| *c.borrow_mut() = Some(spinners));
    let ending = Ending;
    let out = f();
    drop(ending);
    out
}

/// A spinning worker: runs the step's parallel work as it appears, until the step ends or (with
/// a budget) no work has come for the budget.
fn spin(s: &Spinners) {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    // The owner may pop an unstolen spinner while it waits inside f: it must not spin on its own
    // step. The other worker never took this one, so it counts as parked.
    if rayon::current_thread_index() == s.owner {
        s.parked.fetch_add(1, Ordering::AcqRel);
        return;
    }
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
        } else {
            idle += 1;
            // More workers than cores: let the working threads run.
            if idle.is_multiple_of(64) {
                // Spun out the budget with no work: park (return to the pool).
                if let (Some(t), Some(b)) = (since, s.budget)
                    && t.elapsed() >= b
                {
                    s.parked.fetch_add(1, Ordering::AcqRel);
                    return;
                }
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// At the end of a parallel region inside [`with_spinning_workers`]: sets the workers that
/// parked since the last one spinning again (their wake-up overlaps the serial work before the
/// next region). Nothing to do, and one atomic load, when none parked.
pub fn rouse() {
    use std::sync::atomic::Ordering;
    SESSION.with(|c| {
        if let Some(s) = c.borrow().as_ref()
            && s.parked.load(Ordering::Relaxed) > 0
            && !s.done.load(Ordering::Relaxed)
        {
            for _ in 0..s.parked.swap(0, Ordering::AcqRel) {
                let s = s.clone();
                rayon::spawn(move || spin(&s));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
