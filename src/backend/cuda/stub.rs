//! Stand-ins for the CUDA backend when the library is built without the `cuda` feature.

use crate::backend::Backend;
use crate::device::Device;
use crate::error::{Error, Result};
use std::sync::Arc;

/// GPU memory; uninhabited without the `cuda` feature.
pub enum CudaBuffer {}

impl CudaBuffer {
    /// Never called: no value exists.
    pub fn device(&self) -> Device {
        match *self {}
    }

    /// Never called: no value exists.
    pub fn len(&self) -> usize {
        match *self {}
    }

    /// Never called: no value exists.
    pub fn is_empty(&self) -> bool {
        match *self {}
    }
}

/// Always 0 without the `cuda` feature.
pub fn device_count() -> usize {
    0
}

/// Why there are no CUDA devices.
pub fn unavailable_reason() -> String {
    " (libdeepseek was built without the `cuda` feature)".into()
}

/// Always an error without the `cuda` feature.
pub fn backend(ordinal: usize) -> Result<Arc<dyn Backend>> {
    Err(Error::DeviceUnavailable(format!("cuda:{ordinal}: libdeepseek was built without the `cuda` feature")))
}
