//! Training: the trainer, optimizers and schedules, mixed-precision wiring, checkpoints and metrics.

pub mod amp;
pub mod checkpoint;
pub mod memory;
pub mod metrics;
pub mod optim;
pub mod trainer;
