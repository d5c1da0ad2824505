//! C API of semantic hashing's address lookup: the hash index handle.

use super::*;
use crate::error::invalid;
use crate::hashing::{HashIndex, Hits};

/// Binary codes of at most 64 bits used as memory addresses (semantic hashing's lookup): each
/// address holds the ids of the items whose code it is. Immutable once built: any number of
/// threads may query one index at once.
pub struct latent_hash_index {
    inner: HashIndex,
}

/// Builds an index of `n` codes of `bits` bits (1 to 64), one uint64_t per code: the packed form
/// latent_network_binary_codes writes for a code layer of at most 64 units (bits =
/// latent_network_code_dim). Item i (its id in query results) is codes[i]. Bits at and above
/// `bits` must be 0. `bits` outside 1..=64 (longer codes are no address: search them with
/// latent_hamming_top_k), n = 0, or a code with higher bits set give
/// LATENT_STATUS_INVALID_ARGUMENT. On failure *out is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hash_index_new(
    codes: *const u64,
    n: usize,
    bits: usize,
    out: *mut *mut latent_hash_index,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise the out-pointer is a writable handle slot (the C contract).
        unsafe { clear(out, "out")? };
        if bits == 0 || bits > crate::hashing::index::MAX_BITS || n == 0 {
            // Checked before the codes are read: the message says which.
            return HashIndex::new(&[], bits).map(|_| ());
        }
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let c = unsafe { slice(codes, n, "codes")? };
        let idx = HashIndex::new(c, bits)?;
        // SAFETY: the out-pointer was checked non-NULL (by `clear`) and is writable.
        unsafe { new_handle(out, latent_hash_index { inner: idx }) };
        Ok(())
    })
}

/// Frees an index; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hash_index_free(index: *mut latent_hash_index) {
    // SAFETY: NULL or a handle of this library, freed once (the C contract).
    unsafe { free_handle(index) }
}

/// Items stored (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hash_index_count(index: *const latent_hash_index) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { index.as_ref() }.map_or(0, |i| i.inner.len())
}

/// Distinct codes stored, the occupied addresses (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hash_index_buckets(index: *const latent_hash_index) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { index.as_ref() }.map_or(0, |i| i.inner.buckets())
}

/// Code width in bits (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hash_index_bits(index: *const latent_hash_index) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { index.as_ref() }.map_or(0, |i| i.inner.bits())
}

/// Writes `hits` into the caller's buffers (snprintf-style count).
unsafe fn write_hits(
    hits: &Hits,
    ids: *mut u64,
    distances: *mut u32,
    capacity: usize,
    count: *mut usize,
) -> crate::Result<()> {
    // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
    unsafe { put(count, hits.len()) };
    // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
    let i = unsafe { out_slice(ids, capacity, hits.len(), "ids")? };
    if !distances.is_null() {
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let d = unsafe { out_slice(distances, capacity, hits.len(), "distances")? };
        d.copy_from_slice(&hits.distances);
    }
    i.copy_from_slice(&hits.ids);
    Ok(())
}

/// Every item within Hamming distance `radius` of `code`: their ids into `ids` and distances
/// into `distances` (may be NULL), sorted by distance, ties by lower id (the order of
/// latent_hamming_top_k). *count receives the number found, also when the buffers (`capacity`
/// entries each) are too small: then nothing is written and the status is
/// LATENT_STATUS_BUFFER_TOO_SMALL, so a caller can size its buffers and ask again (ids = NULL
/// with capacity 0 only counts). The addresses of the Hamming ball are enumerated, or, when the
/// ball holds more addresses than the index holds distinct codes, the occupied addresses are
/// scanned: no radius costs more than a pass over the index. A radius above the code width, or
/// a code with bits set at or above it, is LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hash_index_query_radius(
    index: *const latent_hash_index,
    code: u64,
    radius: u32,
    ids: *mut u64,
    distances: *mut u32,
    capacity: usize,
    count: *mut usize,
) -> latent_status {
    guard(|| {
        super::out(count, "count")?;
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(count, 0) };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let idx = &unsafe { arg(index, "index")? }.inner;
        if ids.is_null() && capacity > 0 {
            return Err(crate::Error::NullArgument("ids is NULL (pass capacity 0 with it to only count)".into()));
        }
        let hits = idx.query_radius(code, radius as usize)?;
        if ids.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(count, hits.len()) };
            return Ok(());
        }
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { write_hits(&hits, ids, distances, capacity, count) }
    })
}

/// The `k` items nearest to `code` in Hamming distance: ids into `ids`, distances into
/// `distances` (may be NULL), sorted by distance, ties by lower id: item for item what
/// latent_hamming_top_k returns over the same codes. The radius grows from 0 until k items are
/// found (scanning the occupied addresses once the next shell of the ball holds more addresses
/// than they are). *count receives min(k, latent_hash_index_count), also when the buffers
/// (`capacity` entries each) are too small to hold that many: then the status is
/// LATENT_STATUS_BUFFER_TOO_SMALL and nothing is written. k = 0, or a code with bits set at or
/// above the code width, is LATENT_STATUS_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hash_index_query_top_k(
    index: *const latent_hash_index,
    code: u64,
    k: usize,
    ids: *mut u64,
    distances: *mut u32,
    capacity: usize,
    count: *mut usize,
) -> latent_status {
    guard(|| {
        super::out(count, "count")?;
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(count, 0) };
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let idx = &unsafe { arg(index, "index")? }.inner;
        if k == 0 {
            return Err(invalid!("k is 0: ask for at least one neighbour"));
        }
        super::out(ids, "ids")?;
        // Checked before the search: the result's size is known.
        let found = k.min(idx.len());
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(count, found) };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        unsafe { out_slice(ids, capacity, found, "ids")? };
        if !distances.is_null() {
            // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
            unsafe { out_slice(distances, capacity, found, "distances")? };
        }
        let hits = idx.query_top_k(code, k)?;
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { write_hits(&hits, ids, distances, capacity, count) }
    })
}

/// Wraps a Rust index in a C handle (for Rust programs that hand indexes to C code).
pub fn latent_hash_index_from(index: HashIndex) -> latent_hash_index {
    latent_hash_index { inner: index }
}
