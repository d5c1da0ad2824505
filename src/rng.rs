//! Seeded random streams: Xoshiro256++ split by a stream id, so init, shuffling and (later)
//! corruption each draw from their own reproducible sequence.

use rand::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Stream ids: one per consumer of randomness.
pub mod stream {
    pub const INIT: u64 = 1;
    pub const SHUFFLE: u64 = 2;
    pub const SPLIT: u64 = 3;
    pub const CORRUPTION: u64 = 4;
    pub const CODE_NOISE: u64 = 5;
    pub const STOCHASTIC: u64 = 6;
    pub const VAE_SAMPLE: u64 = 7;
    pub const VAE_TRAIN: u64 = 8;
    /// The Monte-Carlo optimizer's candidates and interval samples.
    pub const MONTE_CARLO: u64 = 9;
    pub const MONTE_CARLO_BATCH: u64 = 10;
    /// Shards of a data-parallel step use SHARD + their index.
    pub const SHARD: u64 = 1 << 32;
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
