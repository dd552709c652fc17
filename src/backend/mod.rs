//! Backends: the `Backend` trait, `Storage` (one variant per device kind), and device lookup.

pub mod cpu;
pub mod cuda;

use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::layout::Layout;
use std::sync::Arc;

pub use cpu::CpuBackend;
pub use cpu::buffer::{CpuBuffer, ForeignOwner};
pub use cuda::CudaBuffer;

/// The bytes behind one or more tensors, on one device.
pub enum Storage {
    /// Host memory.
    Cpu(CpuBuffer),
    /// GPU memory (uninhabited when built without the `cuda` feature).
    Cuda(CudaBuffer),
}

impl Storage {
    /// The device holding the bytes.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(b) => b.device(),
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(b) => b.len(),
            Storage::Cuda(b) => b.len(),
        }
    }

    /// True when the storage holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The host buffer, if this is host storage.
    pub fn as_cpu(&self) -> Option<&CpuBuffer> {
        match self {
            Storage::Cpu(b) => Some(b),
            Storage::Cuda(_) => None,
        }
    }
}

/// What a device must provide. Ops (next layers up) add their kernels per backend; this
/// is the memory part every tensor needs: allocation, transfers, and strided copy with cast.
pub trait Backend: Send + Sync {
    /// The device this backend drives.
    fn device(&self) -> Device;
    /// `nbytes` zero bytes.
    fn zeros(&self, nbytes: usize) -> Result<Storage>;
    /// A copy of host bytes on this device.
    fn upload(&self, bytes: &[u8]) -> Result<Storage>;
    /// A new contiguous storage holding `src` viewed through `layout`, cast to `dst_dtype`.
    fn copy_cast(&self, src: &Storage, layout: &Layout, src_dtype: DType, dst_dtype: DType) -> Result<Storage>;
    /// Copies `src` viewed through `layout` into `dst` as a packed row-major host array.
    fn download(&self, src: &Storage, layout: &Layout, dtype: DType, dst: &mut [u8]) -> Result<()>;
}

/// The backend for `device`, or an error when the device is not available.
pub fn backend(device: Device) -> Result<Arc<dyn Backend>> {
    match device {
        Device::Cpu => Ok(cpu::CPU_BACKEND.clone()),
        Device::Cuda(i) => cuda::backend(i),
    }
}
