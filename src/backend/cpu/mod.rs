//! The CPU backend: host buffers from the caching allocator and the CPU kernels.

pub mod alloc;
pub mod bf16;
pub mod buffer;
pub mod copy;
pub mod elementwise;
pub mod gemm;
pub mod im2col;
pub mod lowp;
pub mod panels;
pub mod prefetch;
pub mod reduce;
pub mod transpose;

use super::{Backend, Storage};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::layout::Layout;
use buffer::CpuBuffer;
use std::sync::{Arc, LazyLock};

/// The CPU backend (stateless; one shared instance).
pub struct CpuBackend;

pub(crate) static CPU_BACKEND: LazyLock<Arc<dyn Backend>> = LazyLock::new(|| Arc::new(CpuBackend));

fn host(s: &Storage) -> Result<&CpuBuffer> {
    s.as_cpu().ok_or_else(|| Error::Internal(format!("CPU backend given storage on {}", s.device())))
}

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }

    fn zeros(&self, nbytes: usize) -> Result<Storage> {
        CpuBuffer::zeroed(nbytes).map(Storage::Cpu)
    }

    fn upload(&self, bytes: &[u8]) -> Result<Storage> {
        CpuBuffer::from_bytes(bytes).map(Storage::Cpu)
    }

    fn copy_cast(&self, src: &Storage, layout: &Layout, src_dtype: DType, dst_dtype: DType) -> Result<Storage> {
        copy::copy_cast(host(src)?, layout, src_dtype, dst_dtype).map(Storage::Cpu)
    }

    fn download(&self, src: &Storage, layout: &Layout, dtype: DType, dst: &mut [u8]) -> Result<()> {
        copy::copy_cast_into(host(src)?, layout, dtype, dst, dtype);
        Ok(())
    }
}
