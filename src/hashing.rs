//! Semantic hashing (Salakhutdinov & Hinton): binary codes from the code layer, packed into
//! 64-bit words, and exact Hamming-distance top-k search over a table of such codes.
//!
//! Packing: bit j of a code is 1 when code unit j is strictly above the threshold (0.5 for a
//! sigmoid code layer, as in the paper; 0 suits tanh or linear codes). Bit j lives in word j / 64
//! at position j % 64 (least significant bit first); the unused high bits of the last word are 0,
//! so codes compare equal exactly when their bits do.

#![forbid(unsafe_code)]

use rayon::prelude::*;

pub mod index;
pub use index::{HashIndex, Hits};

use crate::error::{Result, invalid, shape};
use crate::network::Network;
use crate::tensor::{Matrix, checked_len};

/// The threshold of a sigmoid code layer: its units' midpoint.
pub const SIGMOID_THRESHOLD: f32 = 0.5;

/// Marks the unused slots of a top-k result when the table has fewer than k codes.
pub const NO_INDEX: u64 = u64::MAX;
pub const NO_DISTANCE: u32 = u32::MAX;

/// 64-bit words per code of `bits` bits.
pub fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Rows of packed binary codes: `rows * words` u64, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryCodes {
    rows: usize,
    bits: usize,
    words: Vec<u64>,
}

impl BinaryCodes {
    /// Packs each row of `codes` (one column per bit) against `threshold`.
    pub fn pack(codes: &Matrix, threshold: f32) -> Result<BinaryCodes> {
        if !threshold.is_finite() {
            return Err(invalid!("threshold {threshold} is not finite"));
        }
        let (rows, bits) = (codes.rows(), codes.cols());
        let w = words_for(bits);
        let mut words = crate::error::try_zeros(checked_len(rows, w)?)?;
        if bits > 0 {
            for (row, out) in codes.as_slice().chunks_exact(bits).zip(words.chunks_exact_mut(w)) {
                pack_row(row, threshold, out);
            }
        }
        Ok(BinaryCodes { rows, bits, words })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn bits(&self) -> usize {
        self.bits
    }
    /// Words per code.
    pub fn words_per_code(&self) -> usize {
        words_for(self.bits)
    }
    /// The packed words, rows x words_per_code.
    pub fn into_words(self) -> Vec<u64> {
        self.words
    }
    pub fn as_slice(&self) -> &[u64] {
        &self.words
    }
    pub fn row(&self, i: usize) -> &[u64] {
        let w = self.words_per_code();
        &self.words[i * w..(i + 1) * w]
    }
    /// The `k` codes of this table nearest to each of `queries` (see [`top_k`]).
    pub fn top_k(&self, queries: &BinaryCodes, k: usize, threads: usize) -> Result<TopK> {
        if queries.bits != self.bits {
            return Err(shape!("queries have {} bits, the table {}", queries.bits, self.bits));
        }
        top_k(&self.words, &queries.words, self.words_per_code(), k, threads)
    }
}

/// Packs one code into `out` (words_for(code.len()) words).
pub fn pack_row(code: &[f32], threshold: f32, out: &mut [u64]) {
    out.fill(0);
    for (j, &c) in code.iter().enumerate() {
        out[j / 64] |= ((c > threshold) as u64) << (j % 64);
    }
}

/// Binary codes of the rows of x through the network's code layer.
pub fn binary_codes(net: &Network, x: &Matrix, threshold: f32) -> Result<BinaryCodes> {
    BinaryCodes::pack(&net.encode(x)?, threshold)
}

/// Number of differing bits.
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(a, b)| (a ^ b).count_ones()).sum()
}

/// Result of a top-k search: for query q, slots q*k .. q*k+k hold table indices and Hamming
/// distances sorted by (distance, index) ascending; `found` = min(k, table rows) are filled, the
/// rest hold NO_INDEX / NO_DISTANCE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopK {
    pub k: usize,
    pub found: usize,
    pub index: Vec<u64>,
    pub distance: Vec<u32>,
}

/// Exact Hamming top-k of each query against a table, both packed with `words` words per code.
/// Ties in distance go to the lower table index, so the result is fully determined. k larger
/// than the table is clamped (`found`). Parallel over queries on the library's pool
/// (`threads`, 0 = all cores) when the work is large enough.
pub fn top_k(table: &[u64], queries: &[u64], words: usize, k: usize, threads: usize) -> Result<TopK> {
    if words == 0 || k == 0 {
        return Err(invalid!("words ({words}) and k ({k}) must both be at least 1"));
    }
    let nq = queries.len() / words;
    let mut index = crate::error::try_zeros(checked_len(nq, k)?)?;
    let mut distance = crate::error::try_zeros(nq * k)?;
    let found = top_k_into(table, queries, words, k, threads, &mut index, &mut distance)?;
    Ok(TopK { k, found, index, distance })
}

/// [`top_k`] into caller buffers of `queries.len() / words * k` slots each; returns `found`.
pub fn top_k_into(
    table: &[u64],
    queries: &[u64],
    words: usize,
    k: usize,
    threads: usize,
    index: &mut [u64],
    distance: &mut [u32],
) -> Result<usize> {
    if words == 0 || k == 0 {
        return Err(invalid!("words ({words}) and k ({k}) must both be at least 1"));
    }
    for (what, len) in [("table", table.len()), ("queries", queries.len())] {
        if !len.is_multiple_of(words) {
            return Err(shape!("{what} holds {len} words, not a multiple of {words} words per code"));
        }
    }
    let (n, nq) = (table.len() / words, queries.len() / words);
    if table.is_empty() || queries.is_empty() {
        return Err(invalid!("the table ({n} codes) and the queries ({nq}) must not be empty"));
    }
    let need = checked_len(nq, k)?;
    if index.len() != need || distance.len() != need {
        return Err(shape!("{nq} queries x k {k} need {need} slots, got {} and {}", index.len(), distance.len()));
    }
    let bits = words * 64;
    let one = |(q, (idx, dist)): (&[u64], (&mut [u64], &mut [u32]))| search_one(table, q, words, bits, idx, dist);
    let chunks = queries.chunks_exact(words).zip(index.chunks_exact_mut(k).zip(distance.chunks_exact_mut(k)));
    let threads = crate::pool::resolve_threads(threads);
    // A query costs about n * words popcounts; below ~1M words in all a pool hand-off costs more.
    if threads > 1 && nq > 1 && n.saturating_mul(words).saturating_mul(nq) >= 1 << 20 {
        let work: Vec<_> = chunks.collect();
        crate::pool::pool(threads)?.install(|| work.into_par_iter().for_each(one));
    } else {
        chunks.for_each(one);
    }
    Ok(k.min(n))
}

/// Top-k of one query: distances to every code, a histogram by distance to find the cut-off,
/// then one pass in index order that drops each code into its distance's slots. O(n + bits),
/// exact, and ordered by (distance, index) without a sort.
fn search_one(table: &[u64], q: &[u64], words: usize, bits: usize, index: &mut [u64], distance: &mut [u32]) {
    let k = index.len();
    let d: Vec<u32> = table.chunks_exact(words).map(|c| hamming(c, q)).collect();
    let mut count = vec![0usize; bits + 1];
    for &v in &d {
        count[v as usize] += 1;
    }
    // next[v]: the slot of the next code at distance v; codes at the cut-off distance fill only
    // the slots left.
    let mut next = vec![0usize; bits + 1];
    let mut filled = 0;
    for v in 0..=bits {
        next[v] = filled;
        filled += count[v];
        if filled >= k {
            break;
        }
    }
    let cut = (0..=bits).find(|&v| next[v] + count[v] >= k).unwrap_or(bits);
    let mut end = next.clone();
    for v in 0..=cut {
        end[v] = (next[v] + count[v]).min(k);
    }
    for (i, &v) in d.iter().enumerate() {
        let v = v as usize;
        if v <= cut && next[v] < end[v] {
            index[next[v]] = i as u64;
            distance[next[v]] = v as u32;
            next[v] += 1;
        }
    }
    let found = k.min(d.len());
    index[found..].fill(NO_INDEX);
    distance[found..].fill(NO_DISTANCE);
}
