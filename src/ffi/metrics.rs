//! C API of evaluation metrics and anomaly thresholds.

use super::dataset::latent_dataset;
use super::network::latent_network;
use super::*;
use crate::error::Error;
use crate::metrics::{AnomalyThreshold, Metrics};

/// Metrics of a network over a dataset, each a mean over the dataset (docs/metrics.md).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct latent_metrics {
    /// Rows evaluated.
    pub rows: u64,
    /// Squared error per element.
    pub mse: f64,
    /// Binary cross-entropy per element: from the logits with a sigmoid output, else from the
    /// output clamped to [1e-4, 1 - 1e-4].
    pub bce: f64,
    /// Reverse cross-entropy per element, -mean[y log x + (1-y) log(1-x)] for input x and
    /// reconstruction y, with x clamped to [1e-4, 1 - 1e-4] and y to [0, 1].
    pub reverse_ce: f64,
    /// Squared error summed over a row, mean over rows ("squared error per image").
    pub squared_error_per_row: f64,
    /// The code layer's output, mean over rows and units.
    pub mean_code_activation: f64,
}

/// Computes every latent_metrics field in one pass of the network over the dataset. The
/// metrics compare the output with the input, so they need an autoencoder: a classifier or
/// regressor gives LATENT_STATUS_INVALID_ARGUMENT (score those with latent_network_evaluate;
/// latent_network_code_activation_means works on any network). A dataset of zero rows gives
/// LATENT_STATUS_INVALID_ARGUMENT ("no rows").
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_metrics(
    net: *const latent_network,
    dataset: *const latent_dataset,
    metrics: *mut latent_metrics,
) -> latent_status {
    guard(|| {
        out(metrics, "metrics")?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let m = Metrics::compute(&n, unsafe { arg(dataset, "dataset")? }.get().x())?;
        let c = latent_metrics {
            rows: m.rows as u64,
            mse: m.mse,
            bce: m.bce,
            reverse_ce: m.reverse_ce,
            squared_error_per_row: m.squared_error_per_row,
            mean_code_activation: m.mean_code_activation,
        };
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(metrics, c) };
        Ok(())
    })
}

/// Mean output of each code unit over the dataset's rows into `means` (code_dim values): which
/// units are on, for sparsity. Any network: for a classifier or regressor the code layer is
/// its last hidden layer. A dataset of zero rows gives LATENT_STATUS_INVALID_ARGUMENT ("no
/// rows": a mean over nothing).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_network_code_activation_means(
    net: *const latent_network,
    dataset: *const latent_dataset,
    means: *mut f64,
    capacity: usize,
) -> latent_status {
    guard(|| {
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let n = unsafe { arg(net, "net")? }.read()?;
        // SAFETY: the pointer is NULL (refused) or a live handle of this library (the C contract).
        let d = unsafe { arg(dataset, "dataset")? }.get();
        // SAFETY: the caller's pointers are passed on unchanged, under the same C contract.
        unsafe { Rows::Dataset(dataset).check(n.input_dim(), "network")? };
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(means, capacity, n.code_dim(), "means")? };
        let v = crate::metrics::code_activation_means(&n, d.x())?;
        check_output(&v, v.len(), "the code activation means")?;
        dst.copy_from_slice(&v);
        Ok(())
    })
}

/// The `quantile` (in [0, 1]) of `n` finite scores, by linear interpolation between the sorted
/// scores (NumPy's default): with h = (n-1) quantile, s[floor h] + (h - floor h)(s[floor h + 1] -
/// s[floor h]). Fitted on normal data's reconstruction errors, rows scoring above it are
/// anomalies (about 1 - quantile of normal rows). A quantile outside [0, 1] or NaN, or n = 0,
/// gives LATENT_STATUS_INVALID_ARGUMENT; a NaN or infinite score LATENT_STATUS_NON_FINITE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_anomaly_threshold(
    scores: *const f64,
    n: usize,
    quantile: f64,
    threshold: *mut f64,
) -> latent_status {
    guard(|| {
        out(threshold, "threshold")?;
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let s = unsafe { slice(scores, n, "scores")? };
        let t = AnomalyThreshold::fit(s, quantile)?;
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(threshold, t.value) };
        Ok(())
    })
}

/// Flags the `n` scores strictly above `threshold`: flags[i] = 1 or 0 (`capacity` bytes
/// available); *n_flagged (may be NULL) receives how many are 1. Scores must be finite.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_anomaly_flag(
    scores: *const f64,
    n: usize,
    threshold: f64,
    flags: *mut u8,
    capacity: usize,
    n_flagged: *mut usize,
) -> latent_status {
    guard(|| {
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let s = unsafe { slice(scores, n, "scores")? };
        if threshold.is_nan() {
            return Err(Error::InvalidArgument("threshold is NaN".into()));
        }
        // The capacity before the scores are read.
        // SAFETY: NULL is refused; otherwise the buffer holds `capacity` writable values (the C contract).
        let dst = unsafe { out_slice(flags, capacity, n, "flags")? };
        if let Some(i) = s.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!("score {i} is {}", s[i])));
        }
        let mut count = 0;
        for (f, &v) in dst.iter_mut().zip(s) {
            *f = (v > threshold) as u8;
            count += *f as usize;
        }
        if !n_flagged.is_null() {
            // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
            unsafe { put(n_flagged, count) };
        }
        Ok(())
    })
}

/// Area under the ROC curve of `scores` for telling the rows whose `labels` equal `positive`
/// from the others (ties count one half). NaN scores are refused; so are n = 0 and labels of
/// only one kind (LATENT_STATUS_INVALID_ARGUMENT).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_auroc(
    scores: *const f64,
    labels: *const i32,
    n: usize,
    positive: i32,
    out: *mut f64,
) -> latent_status {
    guard(|| {
        super::out(out, "out")?;
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let s = unsafe { slice(scores, n, "scores")? };
        // SAFETY: NULL is refused; otherwise the pointer holds the stated count of readable values (the C contract).
        let l = unsafe { slice(labels, n, "labels")? };
        if let Some(i) = s.iter().position(|v| v.is_nan()) {
            return Err(crate::error::Error::NonFinite(format!("score {i} is NaN")));
        }
        let mut pos = crate::error::try_zeros::<bool>(n)?;
        pos.iter_mut().zip(l).for_each(|(p, &v)| *p = v == positive);
        let a = crate::metrics::auroc(s, &pos);
        if a.is_nan() {
            return Err(crate::error::invalid!(
                "AUROC needs rows of both kinds: {n} rows, {} positive",
                pos.iter().filter(|&&p| p).count()
            ));
        }
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(out, a) };
        Ok(())
    })
}
