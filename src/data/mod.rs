//! Seeded synthetic data sets: the "gmix" Gaussian mixture (ALGORITHMS.md §1.4) and a streaming Criteo-shaped CTR generator.

pub mod ctr;
pub mod gmix;

pub use ctr::{CtrBatch, CtrConfig, CtrGenerator};
pub use gmix::{GMIX_SEEDS, Gmix, GmixConfig};
