//! The CUDA backend: cudarc with dynamic loading, so the library builds and runs with no CUDA installed.
//!
//! With the `cuda` feature off, [`stub`] gives the same names: zero devices and an
//! uninhabited buffer type, so no call site needs a `cfg`.

#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
pub mod kernels;
#[cfg(not(feature = "cuda"))]
mod stub;

#[cfg(feature = "cuda")]
pub use device::{CudaBackend, CudaBuffer, backend, device_count, unavailable_reason};
#[cfg(not(feature = "cuda"))]
pub use stub::{CudaBuffer, backend, device_count, unavailable_reason};
