//! Automatic mixed precision: the per-op precision policy, eager autocast scopes and the GradScaler (ALGORITHMS.md §2).
//!
//! The graph side (a pass that inserts casts per the same table) is
//! `crate::graph::passes::autocast`; the trainer wires both through `TrainerOptions`.

pub mod autocast;
pub mod policy;
pub mod scaler;

pub use autocast::{
    AutocastGuard, AutocastStats, autocast, autocast_disabled, autocast_stats, current_dtype, default_dtype,
};
pub use policy::{Policy, TABLE, check_autocast_dtype, policy_of, policy_of_name};
pub use scaler::{GradScaler, GradScalerOptions};
