//! Where a training step's rows come from. A model step loads them into its pass, or, cut into
//! shards, straight into each shard's pass, so a minibatch is copied once on any backend.

#![forbid(unsafe_code)]

use super::ops::{Backend, Op};
use crate::error::Result;

/// The rows of one step (each `cols` wide).
pub enum Minibatch<'a, B: Backend> {
    /// Already in the model's minibatch buffer (`forward_backward`, validation blocks).
    Loaded,
    /// Rows `ids[at..]` of rows resident on the device (a GPU fit's training rows, or a
    /// streamed minibatch's staging buffer).
    Gather { src: &'a B::Buf, ids: (&'a B::Ids, usize) },
    /// Rows `order[..]` of host rows: a backend whose buffers are host memory
    /// ([`Backend::host_memory`]) reads them in place, with no copy of the training set.
    Host { src: &'a crate::tensor::Matrix, order: &'a [u32] },
}

impl<B: Backend> Minibatch<'_, B> {
    /// Puts rows a..b of the minibatch (`cols` wide) at the start of `dst`; `loaded` is the
    /// model's minibatch buffer, what [`Minibatch::Loaded`] reads (None: `dst` is that buffer,
    /// and a loaded minibatch is already there).
    pub(crate) fn load(
        &self,
        be: &B,
        (a, b): (usize, usize),
        cols: usize,
        loaded: Option<&B::Buf>,
        dst: &mut B::Buf,
    ) -> Result<()> {
        match *self {
            Minibatch::Loaded => match loaded {
                Some(x) => be.copy((x, a * cols), (dst, 0), (b - a) * cols),
                None => Ok(()),
            },
            Minibatch::Gather { src, ids } => {
                be.run(Op::GatherRows { src: (src, 0), ids: (ids.0, ids.1 + a), dst: (dst, 0), rows: b - a, cols })
            }
            Minibatch::Host { src, order } => {
                let mut fill = |out: &mut [f32]| {
                    for (o, &i) in out.chunks_exact_mut(cols).zip(&order[a..b]) {
                        o.copy_from_slice(src.row(i as usize));
                    }
                };
                be.upload_async(0, (b - a) * cols, &mut fill, (dst, 0))?;
                be.await_upload(0)
            }
        }
    }
}
