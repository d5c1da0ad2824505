//! Penalties on hidden representations: KL and L1 sparsity, the contractive penalty; and the
//! regularisation settings a network carries (with corruption and code noise, which make the
//! training step stochastic).
//!
//! Scale: every penalty is added to the reconstruction loss as reported (a mean over elements),
//! and is itself a mean over the minibatch's rows where it is per-row, as Keras does for activity
//! regularisers. The values and gradients are the backend's primitives (`Op::KlValue`,
//! `Op::KlGrad`, `Op::L1`, the contractive `Op::ColSqSums`/`ContractiveDz`/`ContractiveDw`:
//! `backend/cpu/ops.rs` on the CPU, `backend/cuda/elementwise.cu` on a GPU).

#![forbid(unsafe_code)]

use crate::activation::Activation;
use crate::corruption::Corruption;
use crate::error::{Result, invalid};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sparsity {
    None,
    /// beta * sum_j KL(rho || rho_hat_j), rho_hat_j the minibatch mean of unit j
    /// (Ng, CS294A "Sparse autoencoder"). Only for sigmoid layers (activations in (0, 1)).
    Kl {
        rho: f32,
        beta: f32,
    },
    /// lambda * mean over rows of sum_j |h_j| (an L1 activity penalty).
    L1 {
        lambda: f32,
    },
}

impl Sparsity {
    pub fn code(self) -> i32 {
        match self {
            Sparsity::None => 0,
            Sparsity::Kl { .. } => 1,
            Sparsity::L1 { .. } => 2,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Sparsity::None => "none",
            Sparsity::Kl { .. } => "kl",
            Sparsity::L1 { .. } => "l1",
        }
    }
    /// From a `LATENT_SPARSITY_*` code, the target rho (KL only) and the weight.
    pub fn from_code(code: i32, rho: f32, weight: f32) -> Result<Sparsity> {
        let s = match code {
            0 => Sparsity::None,
            1 => Sparsity::Kl { rho, beta: weight },
            2 => Sparsity::L1 { lambda: weight },
            _ => return Err(invalid!("sparsity code {code} is out of range (0 to 2)")),
        };
        s.validate()?;
        Ok(s)
    }
    /// (rho, weight); rho is 0 for L1.
    pub fn parts(self) -> (f32, f32) {
        match self {
            Sparsity::None => (0.0, 0.0),
            Sparsity::Kl { rho, beta } => (rho, beta),
            Sparsity::L1 { lambda } => (0.0, lambda),
        }
    }
    fn validate(self) -> Result<()> {
        let (rho, w) = self.parts();
        if !(w.is_finite() && w >= 0.0) {
            return Err(invalid!("sparsity weight {w} must be finite and >= 0"));
        }
        if let Sparsity::Kl { .. } = self
            && !(rho > 0.0 && rho < 1.0)
        {
            return Err(invalid!("sparsity target rho {rho} must be in (0, 1)"));
        }
        Ok(())
    }
}

/// Which hidden layers the sparsity penalty applies to. Hidden layers are numbered from 0 in
/// forward order: encoder hidden layers, the code layer, decoder hidden layers (not the output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SparseLayers {
    /// The code layer only (a shallow sparse autoencoder's hidden layer).
    Code,
    /// These hidden layers.
    Layers(Vec<usize>),
    /// Every other hidden layer from `start`: start, start + 2, ... (alternate-layer sparsity).
    Alternate { start: usize },
}

/// Regularisation of a network: penalties (part of the objective, deterministic) and
/// corruption / code noise (stochastic, applied only in training steps).
#[derive(Clone, Debug, PartialEq)]
pub struct Regularization {
    pub sparsity: Sparsity,
    pub sparse_layers: SparseLayers,
    /// lambda of lambda * mean over rows of ||J||_F^2, summed over every encoder layer's own
    /// Jacobian (stacked contractive autoencoders); 0 = off.
    pub contractive: f32,
    /// false (default): the contractive penalty sums each encoder layer's own ||J_l||_F^2 (the
    /// stacked CAE); true: it is ||dh/dx||_F^2 of the whole encoder, J = D_L W_L^T ... D_1 W_1^T
    /// (Rifai et al. 2011's penalty for a deep encoder; see [`crate::contractive`]). The two
    /// coincide for a one-layer encoder.
    pub contractive_exact: bool,
    pub corruption: Corruption,
    /// Standard deviation of Gaussian noise added to the code layer's pre-activation in training
    /// (semantic hashing: it drives a sigmoid code toward binary values). Each training row's
    /// noise is fixed (drawn from the training seed and the row's index), as Salakhutdinov &
    /// Hinton keep it fixed per case. 0 = off.
    pub code_noise: f32,
}

impl Default for Regularization {
    fn default() -> Self {
        Regularization {
            sparsity: Sparsity::None,
            sparse_layers: SparseLayers::Code,
            contractive: 0.0,
            contractive_exact: false,
            corruption: Corruption::None,
            code_noise: 0.0,
        }
    }
}

impl Regularization {
    /// Whether the training step differs from the plain reconstruction step.
    pub fn is_none(&self) -> bool {
        self.sparsity == Sparsity::None
            && self.contractive == 0.0
            && self.corruption.is_none()
            && self.code_noise == 0.0
    }

    /// Which of the `activations.len()` hidden layers carry the sparsity penalty.
    pub fn sparse_mask(&self, code_index: usize, n_hidden: usize) -> Vec<bool> {
        let mut m = vec![false; n_hidden];
        if self.sparsity == Sparsity::None {
            return m;
        }
        match &self.sparse_layers {
            SparseLayers::Code => m[code_index] = true,
            SparseLayers::Layers(v) => v.iter().for_each(|&i| m[i] = true),
            SparseLayers::Alternate { start } => (*start..n_hidden).step_by(2).for_each(|i| m[i] = true),
        }
        m
    }

    /// Checks the settings against the hidden layers' activations (in forward order) and the
    /// encoder's layer count (its last is the code layer).
    pub fn validate(&self, hidden: &[Activation], n_encoder: usize) -> Result<()> {
        self.sparsity.validate()?;
        self.corruption.validate()?;
        if !(self.contractive.is_finite() && self.contractive >= 0.0) {
            return Err(invalid!("contractive weight {} must be finite and >= 0", self.contractive));
        }
        if !(self.code_noise.is_finite() && self.code_noise >= 0.0) {
            return Err(invalid!("code noise sigma {} must be finite and >= 0", self.code_noise));
        }
        let n = hidden.len();
        match &self.sparse_layers {
            SparseLayers::Code => {}
            SparseLayers::Layers(v) => {
                if let Some(&i) = v.iter().find(|&&i| i >= n) {
                    return Err(invalid!(
                        "sparse layer {i} does not exist: the network has {n} hidden layers (0 to {})",
                        n.saturating_sub(1)
                    ));
                }
                if v.is_empty() && self.sparsity != Sparsity::None {
                    return Err(invalid!("sparsity is on but the list of sparse layers is empty"));
                }
            }
            SparseLayers::Alternate { start } => {
                if *start >= n {
                    return Err(invalid!("alternate sparsity starts at hidden layer {start}, the network has {n}"));
                }
            }
        }
        if let Sparsity::Kl { .. } = self.sparsity {
            for (i, on) in self.sparse_mask(n_encoder - 1, n).into_iter().enumerate() {
                if on && hidden[i] != Activation::Sigmoid {
                    return Err(invalid!(
                        "KL sparsity needs activations in (0, 1): hidden layer {i} is {}, use sigmoid (or L1 sparsity)",
                        hidden[i].name()
                    ));
                }
            }
        }
        Ok(())
    }
}
