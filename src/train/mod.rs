//! Training: the trainer, optimizers and schedules, checkpoints and metrics.

pub mod checkpoint;
pub mod memory;
pub mod metrics;
pub mod optim;
pub mod trainer;
