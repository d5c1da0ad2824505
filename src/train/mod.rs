//! Training procedures.

pub mod trainer;
pub use trainer::{EpochRecord, Event, Progress, Stage, StageKind, TrainConfig, Trainer};
