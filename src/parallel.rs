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
}

thread_local! {
    /// This thread runs the `f` of a [`with_spinning_workers`] (its pool's workers spin).
    static SPINNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (on a worker of the current pool) while the pool's other workers busy-wait for the
/// work it spawns, instead of going to sleep between its parallel regions. A training step is a
/// chain of short parallel products with serial work between them; a sleeping worker takes tens
/// of microseconds to wake (an interrupt to an idle virtual CPU), which cost a W3 step a fifth of
/// its time on two cores. This is OpenMP's active wait policy, for the length of one step.
///
/// How long they spin is the process's [`crate::wait_policy::WaitPolicy`]: the whole step
/// (`Spin`), until no work has come for the spin budget (`SpinThenPark`: the worker then returns
/// to the pool, whose sleep the step's next parallel work wakes it from), or not at all (`Park`).
pub fn with_spinning_workers<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    use crate::wait_policy::WaitPolicy;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    if threads <= 1 || rayon::current_thread_index().is_none() || SPINNING.get() {
        return f();
    }
    let budget = match crate::wait_policy::wait_policy() {
        WaitPolicy::Park => return f(),
        WaitPolicy::Spin => None,
        WaitPolicy::SpinThenPark(d) => Some(d),
    };
    let owner = rayon::current_thread_index();
    let done = AtomicBool::new(false);
    let mut out = None;
    rayon::scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| {
                // The owner may pop an unstolen spinner while it waits inside f: it must not spin
                // on its own completion.
                if rayon::current_thread_index() == owner {
                    return;
                }
                let mut idle = 0u32;
                let mut since = budget.map(|_| Instant::now());
                while !done.load(Ordering::Acquire) {
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
                            if let (Some(t), Some(b)) = (since, budget)
                                && t.elapsed() >= b
                            {
                                return;
                            }
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                }
            });
        }
        // SPINNING: a step entered again (a model's shards inside an entered step) finds its
        // spinners already at work. Ending: ends the spinning when f returns or unwinds (a spinner left waiting would hold the
        // scope open for ever).
        struct Ending<'a>(&'a AtomicBool);
        impl Drop for Ending<'_> {
            fn drop(&mut self) {
                SPINNING.set(false);
                self.0.store(true, Ordering::Release);
            }
        }
        SPINNING.set(true);
        let ending = Ending(&done);
        out = Some(f());
        drop(ending);
    });
    out.expect("the scope ran f")
}
