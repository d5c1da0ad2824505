//! latent: autoencoders as a library. Build, train, evaluate, save and serve them from Rust, or
//! from C, C++ and any FFI through the C ABI in [`ffi`] (header `include/latent.h`).
//!
//! The Rust API: a [`NetworkSpec`] describes an autoencoder, [`Network`] holds its parameters
//! and runs it, [`Trainer`] fits it to a [`Dataset`], [`model_file`] saves and loads it;
//! [`placement::Placed`] moves a model to a GPU and trains it there.
//!
//! Code map (bottom up; ARCHITECTURE.md has the whole picture):
//! - basics: [`error`], [`limits`], [`tensor`], [`rng`], [`pool`] (and its [`wait_policy`]), [`gemm`],
//!   [`atomic_file`]
//! - math: [`activation`], [`loss`], [`corruption`], [`init`], [`regularizer`],
//!   [`distribution`], [`optim`]
//! - data: [`data`] (datasets, loaders, scaling, splits); [`buffer`] (a caller's f32/f64, row- or
//!   column-major matrices read and written in place); [`preprocess`] (the scaling a model
//!   carries, raw-input serving)
//! - layers: [`layer`] (dense, functional-transfer, memory, stochastic)
//! - device primitives: [`backend`] (the `Backend` trait, the `Cpu` backend, the CUDA kernels)
//! - models: [`spec`], [`network`], [`vae`], [`task`], [`rbm_model`] (RBMs; their training in
//!   [`train::rbm`]), [`psd`], [`transfer`], [`contractive`]
//! - training: [`train`] (the epoch loop, checkpoints and resuming, pretraining, MPI)
//! - placement: [`placement`] (where a model runs)
//! - analyses and outputs: [`metrics`], [`manifold`], [`hashing`], [`montecarlo`], [`pca`], [`picture`],
//!   [`onnx`], [`model_file`]
//! - the C ABI: [`ffi`]

// Every unsafe block says why it holds (ARCHITECTURE.md, "Safety").
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod activation;
pub mod atomic_file;
pub mod backend;
pub mod buffer;
pub mod contractive;
pub mod corruption;
pub mod data;
pub mod distribution;
pub mod error;
pub mod ffi;
pub mod gemm;
pub mod hashing;
pub mod init;
pub mod layer;
pub mod limits;
pub mod loss;
pub mod manifold;
pub mod metrics;
pub mod model_file;
pub mod montecarlo;
pub mod network;
pub mod onnx;
pub mod optim;
mod parallel;
pub mod pca;
pub mod picture;
pub mod placement;
pub mod pool;
pub mod preprocess;
pub mod psd;
pub mod rbm_model;
pub mod regularizer;
pub mod rng;
mod simd;
pub mod spare;
pub mod spec;
pub mod task;
pub mod tensor;
pub mod train;
pub mod transfer;
pub mod vae;
pub mod wait_policy;

pub use activation::Activation;
pub use corruption::Corruption;
pub use data::Dataset;
pub use distribution::{DistKind, Part, Reconstruction};

pub use error::{Error, Result};
pub use hashing::HashIndex;
pub use init::Init;
pub use loss::Loss;
pub use metrics::{AnomalyThreshold, Metrics};
pub use network::{LayerSpec, Network, NetworkSpec};
pub use optim::{LrSchedule, OptimizerConfig, OptimizerKind, Schedule};
pub use psd::{Psd, PsdConfig, PsdEpoch, PsdSpec, SparseCoding};
pub use rbm_model::RbmModel;
pub use regularizer::{Regularization, SparseLayers, Sparsity};
pub use tensor::Matrix;
pub use train::{EpochRecord, Progress, TrainConfig, Trainable, Trainer};
pub use vae::{Elbo, Posterior, Vae, VaeSpec};
