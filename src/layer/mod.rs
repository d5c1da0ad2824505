//! Layers: plain descriptions (shapes, activation, offsets into the flat parameter buffer) with
//! forward and backward functions side by side.

pub mod dense;
pub mod stochastic;
pub use dense::Dense;
pub use stochastic::Stochastic;
