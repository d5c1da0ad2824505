//! Seeded random streams: Xoshiro256++ split by a stream id, so init, shuffling and the other
//! sequential consumers each draw from their own reproducible sequence; and the counter-based
//! draws of training noise ([`StepDraws`], Philox4x32-10 as on the device), keyed by step and
//! row so that they do not depend on how a minibatch is split between threads.

#![forbid(unsafe_code)]

use rand::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Stream ids: one per consumer of randomness.
pub mod stream {
    pub const INIT: u64 = 1;
    pub const SHUFFLE: u64 = 2;
    pub const SPLIT: u64 = 3;
    pub const CORRUPTION: u64 = 4;
    // 5, 6 and 8 were code noise, stochastic units and VAE training: now counter-based
    // (StepDraws).
    pub const VAE_SAMPLE: u64 = 7;
    /// The Monte-Carlo optimizer's candidates and interval samples.
    pub const MONTE_CARLO: u64 = 9;
    pub const MONTE_CARLO_BATCH: u64 = 10;
    /// Gibbs sampling of a standalone RBM (one stream per row: see `RbmModel::sample`).
    pub const RBM_GIBBS: u64 = 11;
}

#[derive(Clone, Debug)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// The stream `stream` of `seed`: seeds are mixed with SplitMix64 so nearby seeds and stream
    /// ids give unrelated sequences.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
        let mut s = [0u8; 32];
        for chunk in s.chunks_mut(8) {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        Rng(Xoshiro256PlusPlus::from_seed(s))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1) with 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box-Muller (one value per call, simple and reproducible).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform_f64(); // (0, 1]
        let u2 = self.uniform_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform integer in 0..n (n > 0), unbiased by rejection.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// The key of a fit's training noise (corruption, stochastic units, a VAE's draws): the device
/// backends' key too, so a CPU fit and a device fit draw the same numbers.
pub fn noise_key(seed: u64) -> u64 {
    seed ^ 0x6E6F_6973_6500_0000
}

/// Counter-based draws for one step: element `i` of draw `ctr` under `key` is Philox4x32-10 of
/// (key, ctr, i), the generator and keying of the device kernels (`backend::philox`), so a draw
/// depends on its element's index, never on which thread or shard computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Philox {
    pub key: u64,
    pub ctr: u64,
}

/// Elements drawn per block of the bulk fills (on the stack).
const BLOCK: usize = 256;

impl Philox {
    pub fn new(key: u64, ctr: u64) -> Philox {
        Philox { key, ctr }
    }

    /// The first two words of elements first, first + 1, ... into `a` and `b` (same lengths).
    pub fn words(self, first: u64, a: &mut [u32], b: &mut [u32]) {
        crate::simd::philox_words(self.key, self.ctr, first, a, b)
    }

    /// Calls `f(offset, u)` over `n` elements from `first` in blocks, `u[k]` the uniform in
    /// [0, 1) of element first + offset + k (the device's `lat_uniform` of its first word).
    pub fn for_uniforms(self, first: u64, n: usize, mut f: impl FnMut(usize, &[f32])) {
        let (mut a, mut b, mut u) = ([0u32; BLOCK], [0u32; BLOCK], [0f32; BLOCK]);
        let mut at = 0;
        while at < n {
            let m = BLOCK.min(n - at);
            self.words(first + at as u64, &mut a[..m], &mut b[..m]);
            for (u, &w) in u[..m].iter_mut().zip(&a[..m]) {
                *u = crate::backend::philox::uniform(w);
            }
            f(at, &u[..m]);
            at += m;
        }
    }

    /// Calls `f(offset, e)` over `n` elements from `first` in blocks, `e[k]` the standard normal
    /// of element first + offset + k (the device's `lat_normal` of its first two words).
    pub fn for_normals(self, first: u64, n: usize, mut f: impl FnMut(usize, &[f32])) {
        let (mut a, mut b, mut e) = ([0u32; BLOCK], [0u32; BLOCK], [0f32; BLOCK]);
        let mut at = 0;
        while at < n {
            let m = BLOCK.min(n - at);
            self.words(first + at as u64, &mut a[..m], &mut b[..m]);
            for ((e, &a), &b) in e[..m].iter_mut().zip(&a[..m]).zip(&b[..m]) {
                *e = crate::backend::philox::normal(a, b);
            }
            f(at, &e[..m]);
            at += m;
        }
    }

    /// Standard normals of elements first, first + 1, ... into `out`.
    pub fn fill_normal(self, first: u64, out: &mut [f32]) {
        let n = out.len();
        self.for_normals(first, n, |at, e| out[at..at + e.len()].copy_from_slice(e));
    }
}

/// The noise of one training step over some rows of its minibatch: the step's key and counter,
/// and where these rows sit in the minibatch. Every draw is keyed by the row's index in the
/// whole minibatch (`first` + its index here), so a minibatch cut into shards, or across
/// processes, draws what it draws whole: results do not depend on the thread count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepDraws {
    /// The fit's noise key ([`noise_key`]).
    pub key: u64,
    /// The step's counter (1 for a fit's first step): corruption draws counter `ctr << 8`,
    /// stochastic layer i `ctr << 8 | i + 1`, a VAE's reparameterisation `ctr << 8 | 1`.
    pub ctr: u64,
    /// Index in the minibatch of these rows' first row.
    pub first: usize,
    /// Rows in the whole minibatch.
    pub batch: usize,
}

impl StepDraws {
    /// The draws of a whole minibatch of `rows` rows.
    pub fn whole(key: u64, ctr: u64, rows: usize) -> StepDraws {
        StepDraws { key, ctr, first: 0, batch: rows }
    }

    /// The generator of sub-draw `sub` of this step (0: corruption, i + 1: layer i's samples).
    pub fn stream(self, sub: u64) -> Philox {
        Philox::new(self.key, self.ctr << 8 | sub)
    }
}
