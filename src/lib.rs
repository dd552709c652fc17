//! libdeepseek: a deep-learning engine with eager tensors, static graphs and a stable C ABI.
//!
//! The layers, bottom to top: [`backend`] (devices and their kernels), [`tensor`] (shared
//! storage seen through a layout), and [`ffi`] (the C ABI membrane). See `DESIGN.md`.

#![warn(missing_docs)]

pub mod amp;
pub mod autograd;
pub mod backend;
pub mod data;
pub mod device;
pub mod dtype;
pub mod error;
pub mod exec;
pub mod ffi;
pub mod graph;
pub mod nn;
pub mod ops;
pub mod rng;
pub mod runtime;
pub mod safetensors;
pub mod tensor;
pub mod train;

pub use device::Device;
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use rng::Generator;
pub use tensor::Tensor;

/// The library version (`CARGO_PKG_VERSION`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
