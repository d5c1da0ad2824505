//! Semantic hashing's lookup (Salakhutdinov & Hinton 2009, section 5; Goodfellow et al., Deep
//! Learning 14.9): a code of at most 64 bits is a memory address. The index maps each address
//! to the items stored there, and a query fetches every address within a small Hamming radius
//! of its code, in time that depends on the number of addresses in the ball, not on the number
//! of stored items.
//!
//! Results are ordered exactly as the brute-force [`super::top_k`] orders them: by Hamming
//! distance, then by item id (the item's row in the table the index was built from), so the
//! two agree item for item.
//!
//! The ball of radius r over b bits holds sum_{i<=r} C(b, i) addresses. When that is more than
//! the number of distinct codes stored (the occupied addresses), a query scans the occupied
//! addresses instead of enumerating the ball: no query costs more than a pass over the buckets,
//! so none can hang, whatever r and b are.

use crate::error::{Result, invalid};

/// The widest code an index takes: one 64-bit word, the address.
pub const MAX_BITS: usize = 64;

/// Items grouped by their code: an open-addressing table from code to bucket, and the buckets'
/// item ids in one array (compressed rows).
#[derive(Clone, Debug)]
pub struct HashIndex {
    bits: usize,
    items: usize,
    /// Distinct codes, ascending; bucket i holds ids[starts[i]..starts[i + 1]], ascending.
    codes: Vec<u64>,
    starts: Vec<usize>,
    ids: Vec<u64>,
    lookup: Lookup,
}

/// Address -> bucket.
#[derive(Clone, Debug)]
enum Lookup {
    /// Codes short enough that every address has an entry (bucket + 1, 0 = empty): the code is
    /// the memory address itself, and the neighbours of an address (low bits flipped) lie close
    /// to it in memory.
    Direct(Vec<u32>),
    /// Open addressing over a power-of-two table, each slot holding its code beside its bucket
    /// so that a probe reads one cache line.
    Hashed { slots: Vec<Slot>, shift: u32 },
}

/// A direct table is used when it has at most this many entries per stored item (and 2^16 at
/// least are always allowed): 2^bits u32 entries stay within a small multiple of the items'
/// own memory.
const DIRECT_ENTRIES_PER_ITEM: usize = 16;

/// What one address lookup costs in units of one occupied address scanned (a popcount over a
/// contiguous array). Measured on the development machine (AMD EPYC, 2 cores shared with other
/// builds, so noisy): a lookup in the hash table of 57,497 addresses (32-bit MNIST codes) took
/// 16-66 ns against 2-3.5 ns per scanned address (ratio 5 to 29); a lookup in the direct table
/// of 16-bit codes 5.5-5.8 ns against 2.9-4.5 ns (ratio 1 to 2). A query enumerates the ball
/// only while (addresses to visit) x cost stays within the number of occupied addresses, and
/// scans those otherwise: with every cost at least 1, a ball with more addresses than there are
/// occupied ones is always scanned, so no query enumerates an exponential number of addresses,
/// whatever the radius and the width.
const HASHED_PROBE_COST: u64 = 16;
const DIRECT_PROBE_COST: u64 = 2;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    code: u64,
    /// Bucket + 1; 0 = empty.
    bucket: u32,
}

/// What one query found: item ids and their Hamming distances, sorted by (distance, id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hits {
    pub ids: Vec<u64>,
    pub distances: Vec<u32>,
}

impl Hits {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// The first `k` of `pairs` (distance, id) in sorted order.
    fn from_pairs(mut pairs: Vec<(u32, u64)>, k: usize) -> Hits {
        pairs.sort_unstable();
        pairs.truncate(k);
        let (distances, ids) = pairs.into_iter().unzip();
        Hits { ids, distances }
    }
}

/// C(n, k), saturating at u64::MAX.
pub fn binomial(n: usize, k: usize) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        // c * (n - i) / (i + 1) stays exact: c is C(n, i) and C(n, i) * (n - i) = C(n, i+1) * (i+1).
        c = c * (n - i) as u128 / (i + 1) as u128;
        if c > u64::MAX as u128 {
            return u64::MAX;
        }
    }
    c as u64
}

/// Addresses in the Hamming ball of radius r over b bits: sum_{i<=r} C(b, i), saturating.
pub fn ball_size(bits: usize, radius: usize) -> u64 {
    (0..=radius.min(bits)).fold(0u64, |s, i| s.saturating_add(binomial(bits, i)))
}

#[inline]
fn mix(code: u64) -> u64 {
    // A multiplicative hash (Fibonacci hashing): the table index is the product's high bits.
    code.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl HashIndex {
    /// Indexes `codes`, one u64 per item (the packed form of [`super::BinaryCodes`] for codes of
    /// at most 64 bits): item i has id i. Bits at and above `bits` must be 0.
    pub fn new(codes: &[u64], bits: usize) -> Result<HashIndex> {
        if bits == 0 || bits > MAX_BITS {
            return Err(invalid!(
                "a hash index addresses codes of 1 to {MAX_BITS} bits, not {bits}: longer codes are no memory \
                 address (search them with the brute-force Hamming top-k, latent_hamming_top_k)"
            ));
        }
        if codes.is_empty() {
            return Err(invalid!("a hash index needs at least one code"));
        }
        if codes.len() > u32::MAX as usize - 1 {
            return Err(invalid!("{} codes are more than a hash index holds ({})", codes.len(), u32::MAX - 1));
        }
        if let Some((i, &c)) = codes.iter().enumerate().find(|&(_, &c)| c & !low_mask(bits) != 0) {
            return Err(invalid!("code {i} ({c:#x}) has bits set at or above bit {bits}: it is not a {bits}-bit code"));
        }
        let n = codes.len();
        let mut order: Vec<(u64, u64)> = Vec::new();
        order.try_reserve_exact(n).map_err(|_| crate::Error::OutOfMemory(format!("an index of {n} codes")))?;
        order.extend(codes.iter().enumerate().map(|(i, &c)| (c, i as u64)));
        order.sort_unstable();
        let mut distinct = Vec::new();
        let mut starts = Vec::new();
        let mut ids = Vec::with_capacity(n);
        for (i, &(c, id)) in order.iter().enumerate() {
            if i == 0 || order[i - 1].0 != c {
                distinct.push(c);
                starts.push(i);
            }
            ids.push(id);
        }
        starts.push(n);
        let oom = || crate::Error::OutOfMemory(format!("an index of {n} codes"));
        let lookup = if bits < 32 && (1usize << bits) <= (DIRECT_ENTRIES_PER_ITEM * n).max(1 << 16) {
            let mut table = crate::error::try_zeros::<u32>(1usize << bits)?;
            for (b, &c) in distinct.iter().enumerate() {
                table[c as usize] = b as u32 + 1;
            }
            Lookup::Direct(table)
        } else {
            // At most half full, so probes stay short.
            let table = (2 * distinct.len()).next_power_of_two().max(2);
            let shift = 64 - table.trailing_zeros();
            let mut slots: Vec<Slot> = Vec::new();
            slots.try_reserve_exact(table).map_err(|_| oom())?;
            slots.resize(table, Slot::default());
            for (b, &c) in distinct.iter().enumerate() {
                let mut s = (mix(c) >> shift) as usize;
                while slots[s].bucket != 0 {
                    s = (s + 1) & (table - 1);
                }
                slots[s] = Slot { code: c, bucket: b as u32 + 1 };
            }
            Lookup::Hashed { slots, shift }
        };
        Ok(HashIndex { bits, items: n, codes: distinct, starts, ids, lookup })
    }

    /// Indexes packed binary codes (item i = row i); codes of more than 64 bits are refused.
    pub fn from_codes(codes: &super::BinaryCodes) -> Result<HashIndex> {
        if codes.bits() > MAX_BITS {
            return HashIndex::new(&[], codes.bits());
        }
        HashIndex::new(codes.as_slice(), codes.bits())
    }

    /// Code width in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }
    /// Items stored.
    pub fn len(&self) -> usize {
        self.items
    }
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }
    /// Distinct codes stored (occupied addresses).
    pub fn buckets(&self) -> usize {
        self.codes.len()
    }

    /// The bucket at address `code`, if occupied.
    #[inline]
    fn bucket(&self, code: u64) -> Option<usize> {
        match &self.lookup {
            Lookup::Direct(t) => t[code as usize].checked_sub(1).map(|b| b as usize),
            Lookup::Hashed { slots, shift } => {
                let mask = slots.len() - 1;
                let mut s = (mix(code) >> shift) as usize;
                loop {
                    let slot = slots[s];
                    if slot.bucket == 0 {
                        return None;
                    }
                    if slot.code == code {
                        return Some(slot.bucket as usize - 1);
                    }
                    s = (s + 1) & mask;
                }
            }
        }
    }

    /// Whether visiting `addresses` addresses one by one costs more than scanning the occupied
    /// ones (see [`HASHED_PROBE_COST`]).
    fn scan_is_cheaper(&self, addresses: u64) -> bool {
        let cost = match self.lookup {
            Lookup::Direct(_) => DIRECT_PROBE_COST,
            Lookup::Hashed { .. } => HASHED_PROBE_COST,
        };
        addresses.saturating_mul(cost) > self.buckets() as u64
    }

    /// The ids stored at address `code` (ascending; empty when none).
    pub fn get(&self, code: u64) -> &[u64] {
        match self.bucket(code) {
            Some(b) => &self.ids[self.starts[b]..self.starts[b + 1]],
            None => &[],
        }
    }

    fn check_query(&self, code: u64) -> Result<()> {
        if code & !low_mask(self.bits) != 0 {
            return Err(invalid!(
                "the query code {code:#x} has bits set at or above bit {}: the index holds {}-bit codes",
                self.bits,
                self.bits
            ));
        }
        Ok(())
    }

    /// Every item within Hamming distance `radius` of `code`, sorted by (distance, id).
    /// `radius` must not exceed the code width.
    pub fn query_radius(&self, code: u64, radius: usize) -> Result<Hits> {
        self.check_query(code)?;
        if radius > self.bits {
            return Err(invalid!(
                "radius {radius} is more than the code width ({} bits): the ball of radius {} already holds every code",
                self.bits,
                self.bits
            ));
        }
        let mut pairs = Vec::new();
        if self.scan_is_cheaper(ball_size(self.bits, radius)) {
            // The ball costs more to visit than the occupied addresses to scan (always so when
            // it has more addresses than there are occupied ones): scan those instead.
            self.scan(code, radius as u32, &mut pairs);
        } else {
            for d in 0..=radius {
                self.shell(code, d, &mut pairs);
            }
        }
        Ok(Hits::from_pairs(pairs, usize::MAX))
    }

    /// The `k` items nearest to `code`, sorted by (distance, id), exactly as the brute-force
    /// [`super::top_k`] returns them (ties at the last distance go to the lower ids). Grows the
    /// radius from 0 until k items are found; fewer than k only when the index holds fewer.
    pub fn query_top_k(&self, code: u64, k: usize) -> Result<Hits> {
        self.check_query(code)?;
        if k == 0 {
            return Err(invalid!("k is 0: ask for at least one neighbour"));
        }
        let k = k.min(self.items);
        let mut pairs = Vec::new();
        let mut visited = 0u64;
        for d in 0..=self.bits {
            let shell = binomial(self.bits, d);
            if self.scan_is_cheaper(visited.saturating_add(shell)) {
                // Enumerating further would cost more than scanning the occupied addresses
                // (always so once it would visit more addresses than are occupied): select from
                // a scan of them instead (the result is the same).
                return Ok(self.scan_top_k(code, k));
            }
            visited += shell;
            self.shell(code, d, &mut pairs);
            if pairs.len() >= k {
                break;
            }
        }
        // The last shell may overshoot k: keep the lowest ids at the last distance.
        Ok(Hits::from_pairs(pairs, k))
    }

    /// Appends (d, id) for the items at exactly distance d: every code that differs from `code`
    /// in d of the low `bits` bits (Gosper's hack walks the d-bit masks in increasing order).
    fn shell(&self, code: u64, d: usize, out: &mut Vec<(u32, u64)>) {
        let b = self.bits;
        if d == 0 {
            out.extend(self.get(code).iter().map(|&id| (0, id)));
            return;
        }
        let limit: u128 = 1u128 << b;
        let mut mask: u128 = (1u128 << d) - 1;
        while mask < limit {
            let ids = self.get(code ^ mask as u64);
            out.extend(ids.iter().map(|&id| (d as u32, id)));
            let c = mask & mask.wrapping_neg();
            let r = mask + c;
            mask = (((r ^ mask) >> 2) / c) | r;
        }
    }

    /// Appends (d, id) for every item within `radius`, scanning the occupied addresses.
    fn scan(&self, code: u64, radius: u32, out: &mut Vec<(u32, u64)>) {
        for (b, &c) in self.codes.iter().enumerate() {
            let d = (c ^ code).count_ones();
            if d <= radius {
                out.extend(self.ids[self.starts[b]..self.starts[b + 1]].iter().map(|&id| (d, id)));
            }
        }
    }

    /// Top-k from a scan of the occupied addresses: items per distance, the cut-off distance
    /// where k is reached, then the items up to it sorted and cut to k.
    fn scan_top_k(&self, code: u64, k: usize) -> Hits {
        let mut count = [0usize; MAX_BITS + 1];
        for (b, &c) in self.codes.iter().enumerate() {
            count[(c ^ code).count_ones() as usize] += self.starts[b + 1] - self.starts[b];
        }
        let mut cut = 0;
        let mut total = 0;
        for (d, &n) in count.iter().enumerate() {
            total += n;
            cut = d as u32;
            if total >= k {
                break;
            }
        }
        let mut pairs = Vec::with_capacity(total);
        self.scan(code, cut, &mut pairs);
        Hits::from_pairs(pairs, k)
    }
}

/// The low `bits` bits set.
fn low_mask(bits: usize) -> u64 {
    if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomials_and_balls() {
        assert_eq!(binomial(5, 2), 10);
        assert_eq!(binomial(64, 32), 1_832_624_140_942_590_534);
        assert_eq!(binomial(3, 4), 0);
        assert_eq!(ball_size(32, 3), 1 + 32 + 496 + 4960);
        assert_eq!(ball_size(64, 64), u64::MAX); // 2^64 saturates
        assert_eq!(ball_size(4, 9), 16);
    }

    #[test]
    fn shells_enumerate_every_mask_once() {
        // A 6-bit index holding every code: shell d around any code has C(6, d) items.
        let codes: Vec<u64> = (0..64).collect();
        let idx = HashIndex::new(&codes, 6).unwrap();
        for d in 0..=6 {
            let mut v = Vec::new();
            idx.shell(0b101101, d, &mut v);
            assert_eq!(v.len() as u64, binomial(6, d));
            assert!(v.iter().all(|&(dd, id)| dd as usize == d && (id ^ 0b101101).count_ones() as usize == d));
        }
    }

    #[test]
    fn sixty_four_bit_codes() {
        let codes = [u64::MAX, 0, 1 << 63, 3];
        let idx = HashIndex::new(&codes, 64).unwrap();
        let h = idx.query_radius(u64::MAX, 1).unwrap();
        assert_eq!(h.ids, vec![0]);
        let h = idx.query_top_k(0, 4).unwrap();
        assert_eq!(h.ids, vec![1, 2, 3, 0]);
        assert_eq!(h.distances, vec![0, 1, 2, 64]);
    }
}
