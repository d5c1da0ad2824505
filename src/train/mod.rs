//! Training procedures.

pub mod pretrain;
pub mod trainer;
pub use pretrain::{PretrainConfig, PretrainReport, pretrain};
pub use trainer::{EpochRecord, Event, Progress, Stage, StageKind, TrainConfig, Trainer};
