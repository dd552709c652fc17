//! Training: optimizers with their schedules and clipping (the trainer builds on these).

pub mod optim;
