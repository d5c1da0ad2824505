//! C API of semantic hashing: packed binary codes and Hamming top-k search.

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::*;
use crate::error::invalid;
use crate::hashing::{BinaryCodes, top_k_into, words_for};
use crate::tensor::checked_len;

/// 64-bit words per packed binary code of this network: ceil(code_dim / 64) (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_code_words(net: *const latent_network) -> usize {
    // SAFETY: NULL or a live object of this library (the C contract).
    unsafe { net.as_ref() }.map_or(0, |n| words_for(n.code_dim()))
}

fn threshold_f32(t: f32) -> crate::Result<f32> {
    if t.is_finite() { Ok(t) } else { Err(invalid!("threshold {t} is not finite")) }
}

/// The packed binary codes of the rows `m` (what both binary_codes calls return).
fn packed_codes(n: &crate::network::Network, m: &crate::tensor::Matrix, threshold: f32) -> Result<Vec<u64>> {
    let t = threshold_f32(threshold)?;
    let c = n.encode(m)?;
    check_output(c.as_slice(), c.cols(), "the codes")?;
    Ok(BinaryCodes::pack(&c, t)?.into_words())
}

/// Binary codes of `rows` input rows (row-major, `cols` = input_dim) into `codes`
/// (rows x latent_network_code_words words, `capacity` words available). Bit j of a row's code
/// is 1 when code unit j is strictly above `threshold` (0.5 for a sigmoid code layer, 0 for
/// tanh or linear), stored in word j / 64 at bit j % 64 (least significant first); unused high
/// bits are 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_binary_codes(
    net: *const latent_network,
    x: *const f32,
    rows: usize,
    cols: usize,
    threshold: f32,
    codes: *mut u64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Caller(x, rows, cols),
            codes,
            capacity,
            |n| (n.input_dim(), words_for(n.code_dim())),
            |n, m| packed_codes(n, m, threshold),
        )
    }
}

/// latent_network_binary_codes of every row of a dataset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_binary_codes_dataset(
    net: *const latent_network,
    dataset: *const latent_dataset,
    threshold: f32,
    codes: *mut u64,
    capacity: usize,
) -> latent_status {
    // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
    unsafe {
        rows_call(
            net,
            Rows::Dataset(dataset),
            codes,
            capacity,
            |n| (n.input_dim(), words_for(n.code_dim())),
            |n, m| packed_codes(n, m, threshold),
        )
    }
}

/// Exact Hamming-distance search: for each of `n_queries` codes, the `k` nearest of the `n`
/// codes of `table` (all packed with `words` words per code, as latent_network_binary_codes
/// writes them). Query q's results go to index[q*k .. q*k+k) and distance[q*k .. q*k+k)
/// (`capacity` slots each, at least n_queries * k), sorted by distance, ties by lower table
/// index, so the result is fully determined. *found (may be NULL) receives min(k, n): when k > n
/// the slots after the first n hold UINT64_MAX and UINT32_MAX. Zero n, words, n_queries or k
/// gives LATENT_STATUS_INVALID_ARGUMENT. Runs on all cores (LATENT_NUM_THREADS) for large
/// searches.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_hamming_top_k(
    table: *const u64,
    n: usize,
    words: usize,
    queries: *const u64,
    n_queries: usize,
    k: usize,
    index: *mut u64,
    distance: *mut u32,
    capacity: usize,
    found: *mut usize,
) -> latent_status {
    guard(|| {
        if !found.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(found, 0) };
        }
        if n == 0 || words == 0 || n_queries == 0 || k == 0 {
            return Err(invalid!(
                "n ({n}), words ({words}), n_queries ({n_queries}) and k ({k}) must all be at least 1"
            ));
        }
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let t = unsafe { slice(table, checked_len(n, words)?, "table")? };
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let q = unsafe { slice(queries, checked_len(n_queries, words)?, "queries")? };
        let need = checked_len(n_queries, k)?;
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let idx = unsafe { out_slice(index, capacity, need, "index")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dist = unsafe { out_slice(distance, capacity, need, "distance")? };
        let f = top_k_into(t, q, words, k, 0, idx, dist)?;
        if !found.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(found, f) };
        }
        Ok(())
    })
}
