//! Layers: plain descriptions (shapes, activation, offsets into the flat parameter buffer) with
//! forward and backward functions side by side.

// deny, not forbid: the SIMD dispatch of `simd::multiversion!` allows itself where it expands.
#![deny(unsafe_code)]

pub mod dense;
pub mod functional;
pub mod memory;
pub mod stochastic;
pub use dense::Dense;
pub use functional::{Family, Functional};
pub use memory::Memory;
pub use stochastic::Stochastic;

pub mod connection;
pub use connection::Connection;
