//! Training: the metrics models are judged by (optimizers and the trainer join here).

pub mod metrics;
