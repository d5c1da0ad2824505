//! Data-parallel shards of one training step on a backend that makes them (the CPU:
//! [`Backend::shards`]): the minibatch is cut into one contiguous run of rows per shard, each
//! shard runs the model's step on its own one-thread backend, pass buffers and gradient, and the
//! gradients are combined by their rows' share.

#![forbid(unsafe_code)]

use super::ops::Backend;
use crate::error::Result;

/// One shard: its backend, its pass buffers `P` and its gradient.
pub(crate) struct Shard<B: Backend, P> {
    pub be: B,
    pub pass: P,
    pub grads: B::Buf,
}

/// The shards of a step of up to `rows` rows.
pub(crate) struct Shards<B: Backend, P> {
    parts: Vec<Shard<B, P>>,
}

impl<B: Backend, P: Send> Shards<B, P> {
    /// The shards `main` makes for a step of `work_rows` rows (None: it runs steps whole), each
    /// with a pass for its share of `rows` rows (`pass(backend, rows)`) and a gradient of `n`.
    pub(crate) fn make(
        main: &B,
        rows: usize,
        work_rows: usize,
        n: usize,
        pass: impl Fn(&B, usize) -> Result<P>,
    ) -> Result<Option<Shards<B, P>>> {
        let Some(backends) = main.shards(work_rows) else { return Ok(None) };
        let per = rows.div_ceil(backends.len());
        let mut parts = Vec::with_capacity(backends.len());
        for be in backends {
            parts.push(Shard { pass: pass(&be, per)?, grads: be.alloc(n)?, be });
        }
        Ok(Some(Shards { parts }))
    }

    /// Whether each shard's pass holds its share of `rows` rows (`rows_of(pass)`).
    pub(crate) fn fit(&self, rows: usize, rows_of: impl Fn(&P) -> usize) -> bool {
        self.parts.iter().all(|p| rows_of(&p.pass) >= rows.div_ceil(self.parts.len()))
    }

    /// Whether a step of `work_rows` rows is worth these shards (each gets its minimum).
    pub(crate) fn worth(&self, work_rows: usize) -> bool {
        crate::parallel::shard_count(self.parts.len(), work_rows) == self.parts.len()
    }

    /// One step over `rows` rows: `load(shard, a, b)` puts rows a..b of the minibatch into the
    /// shard's pass and `step(shard, a, b)` runs the model's step there (both in parallel, under
    /// [`Backend::enter`]); the gradients are combined into `grads` (n values) and the shards'
    /// sums added to `main`'s accumulators.
    pub(crate) fn step(
        &mut self,
        main: &B,
        rows: usize,
        grads: &mut B::Buf,
        n: usize,
        load: impl Fn(&mut Shard<B, P>, usize, usize) -> Result<()> + Sync,
        step: impl Fn(&mut Shard<B, P>, usize, usize) -> Result<()> + Sync,
    ) -> Result<()> {
        let k = self.parts.len();
        let bounds = |s: usize| (s * rows / k, (s + 1) * rows / k);
        let parts = &mut self.parts;
        // Each shard loads its own rows on its own thread: the copy is split, and the rows are
        // in that thread's cache for the first product.
        let done: Vec<Result<()>> = main.enter(|| {
            crate::parallel::map_chunks_mut([&mut parts[..]], 1, k, |s, [part]| {
                let part = &mut part[0];
                let (a, b) = bounds(s);
                load(part, a, b)?;
                part.be.reset_slots()?;
                step(part, a, b)
            })
        });
        done.into_iter().collect::<Result<()>>()?;
        let shares: Vec<(&B::Buf, f32)> = self
            .parts
            .iter()
            .enumerate()
            .map(|(s, p)| (&p.grads, (bounds(s).1 - bounds(s).0) as f32 / rows as f32))
            .collect();
        main.combine(&shares, grads, n)?;
        for part in &self.parts {
            main.merge_slots(&part.be)?;
        }
        Ok(())
    }
}
