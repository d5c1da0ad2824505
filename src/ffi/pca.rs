//! C API of principal component analysis (docs/pca.md): a one-shot fit into caller buffers and
//! the projection of rows onto components. No handle: the fit is three arrays the caller keeps.

use super::*;
use crate::error::invalid;
use crate::pca::{MAX_COLS, Pca, project};

/// Fits a PCA with `k` components (1 to cols) to `rows` rows of `cols` floats (row-major, at
/// least 2 rows, 1 to 2048 columns, finite): the mean of each column into `mean` (cols doubles,
/// `mean_capacity` available), the components into `components` (k x cols doubles, row-major,
/// `components_capacity` available: component i is row i, unit length, orthogonal, in order of
/// decreasing variance, each signed so that its entry of largest magnitude, the first on a tie, is positive), the
/// variance along each (the covariance's eigenvalues, denominator rows - 1, as numpy and
/// scikit-learn) into `variance` (k doubles, `variance_capacity` available), and the total
/// variance (the covariance's trace; variance[i] / total is the share component i explains)
/// into *total_variance (may be NULL). The covariance is diagonalised in double precision by
/// cyclic Jacobi rotations. k outside 1..=cols, fewer than 2 rows or more than 2048 columns
/// give LATENT_STATUS_INVALID_ARGUMENT, a NaN or infinity LATENT_STATUS_NON_FINITE naming its
/// row and column, a buffer below its size LATENT_STATUS_BUFFER_TOO_SMALL; nothing is written
/// on failure.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_pca_fit(
    x: *const f32,
    rows: usize,
    cols: usize,
    k: usize,
    components: *mut f64,
    components_capacity: usize,
    mean: *mut f64,
    mean_capacity: usize,
    variance: *mut f64,
    variance_capacity: usize,
    total_variance: *mut f64,
) -> latent_status {
    guard(|| {
        if cols == 0 || cols > MAX_COLS {
            return Err(invalid!("cols is {cols}: PCA takes 1 to {MAX_COLS} columns"));
        }
        if k == 0 || k > cols {
            return Err(invalid!("k is {k}: it must be 1 to cols ({cols})"));
        }
        if rows < 2 {
            return Err(invalid!("rows is {rows}: PCA needs at least 2 rows for a covariance"));
        }
        // SAFETY: NULL is refused; otherwise each buffer holds its stated capacity (the C contract).
        let c_out = unsafe { out_slice(components, components_capacity, k * cols, "components")? };
        // SAFETY: as above.
        let m_out = unsafe { out_slice(mean, mean_capacity, cols, "mean")? };
        // SAFETY: as above.
        let v_out = unsafe { out_slice(variance, variance_capacity, k, "variance")? };
        // SAFETY: NULL is refused; otherwise the pointer holds rows x cols readable floats (the C contract).
        let m = unsafe { input_matrix(x, rows, cols, "x")? };
        let p = Pca::fit(&m, k)?;
        c_out.copy_from_slice(&p.components);
        m_out.copy_from_slice(&p.mean);
        v_out.copy_from_slice(&p.variance);
        if !total_variance.is_null() {
            // SAFETY: checked non-NULL; a writable double (the C contract).
            unsafe { put(total_variance, p.total_variance) };
        }
        Ok(())
    })
}

/// Projects `rows` rows of `cols` floats (row-major, finite) onto `k` components of a PCA
/// (latent_pca_fit's `mean`, cols doubles, and `components`, k x cols doubles): out[r][i] =
/// (x[r] - mean) . components[i], into `out` (rows x k floats, `capacity` available). Zero rows
/// write nothing. k = 0 or cols = 0 give LATENT_STATUS_INVALID_ARGUMENT, a NaN or infinity in
/// x, mean or components LATENT_STATUS_NON_FINITE, a small `out`
/// LATENT_STATUS_BUFFER_TOO_SMALL; nothing is written on failure.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn latent_pca_transform(
    x: *const f32,
    rows: usize,
    cols: usize,
    mean: *const f64,
    components: *const f64,
    k: usize,
    out: *mut f32,
    capacity: usize,
) -> latent_status {
    guard(|| {
        if cols == 0 || k == 0 {
            return Err(invalid!("cols is {cols} and k is {k}: both must be at least 1"));
        }
        let need = crate::tensor::checked_len(rows, k)?;
        let wk = crate::tensor::checked_len(k, cols)?;
        // SAFETY: NULL is refused; otherwise the pointer holds cols readable doubles (the C contract).
        let mean = unsafe { slice(mean, cols, "mean")? };
        // SAFETY: NULL is refused; otherwise the pointer holds k x cols readable doubles (the C contract).
        let comps = unsafe { slice(components, wk, "components")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` floats (the C contract).
        let o = unsafe { out_slice(out, capacity, need, "out")? };
        // SAFETY: NULL is refused; otherwise the pointer holds rows x cols readable floats (the C contract).
        let m = unsafe { input_matrix(x, rows, cols, "x")? };
        let y = project(m.as_slice(), rows, mean, comps, k)?;
        check_output(y.as_slice(), k, "the projection")?;
        o.copy_from_slice(y.as_slice());
        Ok(())
    })
}
