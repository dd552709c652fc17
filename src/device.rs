//! Where a tensor lives: `Device::Cpu` or `Device::Cuda(ordinal)`, with fixed C codes.

use crate::error::{Error, Result};
use std::fmt;

/// A compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory and the engine's CPU kernels.
    Cpu,
    /// The NVIDIA GPU with this ordinal.
    Cuda(usize),
}

/// C code of [`Device::Cpu`] (`DS_DEVICE_CPU`).
pub const DEVICE_KIND_CPU: i32 = 0;
/// C code of [`Device::Cuda`] (`DS_DEVICE_CUDA`).
pub const DEVICE_KIND_CUDA: i32 = 1;

impl Device {
    /// The device for a C kind code and index; CPU ignores the index. Checks that a CUDA
    /// device with that ordinal exists.
    pub fn from_code(kind: i32, index: i32) -> Result<Device> {
        match kind {
            DEVICE_KIND_CPU => Ok(Device::Cpu),
            DEVICE_KIND_CUDA => {
                if index < 0 {
                    return Err(Error::invalid("device_index", format!("must be >= 0, given {index}")));
                }
                let d = Device::Cuda(index as usize);
                d.check_available()?;
                Ok(d)
            }
            k => Err(Error::invalid(
                "device_kind",
                format!("{k} is not a device kind (0 = DS_DEVICE_CPU, 1 = DS_DEVICE_CUDA)"),
            )),
        }
    }

    /// The C kind code and index.
    pub fn to_code(self) -> (i32, i32) {
        match self {
            Device::Cpu => (DEVICE_KIND_CPU, 0),
            Device::Cuda(i) => (DEVICE_KIND_CUDA, i as i32),
        }
    }

    /// Ok when the device can be used in this process; otherwise an error saying why.
    pub fn check_available(self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(i) => {
                let n = cuda_device_count();
                if i < n {
                    Ok(())
                } else {
                    Err(Error::DeviceUnavailable(format!(
                        "cuda:{i} does not exist: this process sees {n} CUDA device(s){}",
                        if n == 0 { crate::backend::cuda::unavailable_reason() } else { String::new() }
                    )))
                }
            }
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// The number of CUDA devices this process can use: 0 when the library was built without
/// the `cuda` feature, when no driver is installed, or when the driver finds no GPU.
/// Never panics (cudarc's loader does when libcuda is absent; the probe guards it).
pub fn cuda_device_count() -> usize {
    crate::backend::cuda::device_count()
}
