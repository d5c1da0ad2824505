//! Training procedures.

pub mod trainer;
pub use trainer::{EpochRecord, Event, Progress, TrainConfig, Trainer};
