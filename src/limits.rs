//! The bounds on what a caller, or a model file, can make the library build and allocate.

#![forbid(unsafe_code)]

/// Largest width of any layer, and most layers: generous, but they bound what a caller (or a
/// model file) can make the library allocate.
pub const MAX_UNITS: usize = 1 << 24;
pub const MAX_LAYERS: usize = 256;
pub const MAX_PARAMS: usize = 1 << 31;
