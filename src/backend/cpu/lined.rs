//! The CPU backend's buffer: f32 values whose first one starts a 64-byte cache line.
//!
//! Where the allocator puts a `Vec<f32>` is luck (16-byte aligned in practice). A buffer that
//! starts mid-line makes every 64-byte vector load of it straddle two lines: the optimizer's
//! passes, the activations, the products' packing. Measured on W1-W3 with every large
//! allocation aligned (benches/README.md): W3 +4%, W2 +2-3%, W1 +0-4%. So each buffer takes up
//! to 15 values more and starts at the first line boundary inside its allocation; safe code,
//! as the store never grows (and so never moves).

#![forbid(unsafe_code)]

use std::ops::{Deref, DerefMut};

use crate::error::{Result, try_zeros};

/// Values per 64-byte line.
const LINE: usize = 16;

/// `len` zero-initialised f32 values, the first on a 64-byte boundary.
#[derive(Default)]
pub struct Lined {
    store: Vec<f32>,
    off: usize,
    len: usize,
}

impl Lined {
    /// `n` zeros ([`crate::Error::OutOfMemory`] when they cannot be had).
    pub fn zeros(n: usize) -> Result<Lined> {
        if n == 0 {
            return Ok(Lined::default());
        }
        let store = try_zeros(n + LINE - 1)?;
        let off = (LINE - (store.as_ptr() as usize % 64) / 4) % LINE;
        Ok(Lined { store, off, len: n })
    }

    /// A lined copy of `v`.
    pub fn from_slice(v: &[f32]) -> Result<Lined> {
        let mut l = Lined::zeros(v.len())?;
        l.copy_from_slice(v);
        Ok(l)
    }
}

impl Deref for Lined {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.store[self.off..self.off + self.len]
    }
}

impl DerefMut for Lined {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.store[self.off..self.off + self.len]
    }
}

impl Clone for Lined {
    /// A new allocation lines up differently: the copy finds its own boundary.
    fn clone(&self) -> Lined {
        Lined::from_slice(self).unwrap_or_else(|e| panic!("cloning a CPU buffer of {} values: {e}", self.len))
    }
}

impl std::fmt::Debug for Lined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Lined {
    fn eq(&self, other: &Lined) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_line_whatever_the_allocation() {
        let mut keep = Vec::new();
        for n in [1, 5, 16, 17, 1000, 100_000] {
            for _ in 0..8 {
                // Allocations of odd sizes between shift where the next one lands.
                keep.push(vec![0u8; 4 * n % 61 + 1]);
                let mut l = Lined::zeros(n).unwrap();
                assert_eq!(l.as_ptr() as usize % 64, 0, "n = {n}");
                assert_eq!(l.len(), n);
                assert!(l.iter().all(|&v| v == 0.0));
                l[n - 1] = 3.0;
                let c = l.clone();
                assert_eq!(c.as_ptr() as usize % 64, 0);
                assert_eq!(c[n - 1], 3.0);
                assert_eq!(c, l);
            }
        }
        assert!(Lined::zeros(0).unwrap().is_empty());
    }
}
