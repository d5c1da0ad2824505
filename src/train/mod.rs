//! Training procedures.

pub mod checkpoint;
pub mod pretrain;
mod pretrain_supervised;
pub mod rbm;
pub mod recirculation;
pub mod trainer;
pub use checkpoint::{Checkpoint, ModelKind};
pub use pretrain::{PretrainConfig, PretrainMethod, PretrainReport, pretrain, pretrain_watching};
pub use rbm::{Rbm, RbmConfig, Unit};
pub use recirculation::{RecirculationConfig, RecirculationReport};
pub use trainer::{
    EpochRecord, Event, Progress, Snapshot, SnapshotWatch, Stage, StageKind, TrainConfig, Trainable, Trainer, Watch,
};
pub mod collective;
