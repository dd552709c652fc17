//! CUDA devices through cudarc: a panic-proof probe, one context and stream per device, buffers and copies.

use super::kernels;
use crate::backend::{Backend, Storage};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::layout::Layout;
use cudarc::driver::{CudaContext, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

struct Probe {
    count: usize,
    reason: String,
}

/// cudarc's loader panics when libcuda is absent, so: check the library first, then call
/// the driver inside `catch_unwind`. The answer is cached for the process.
fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| {
        // SAFETY: only tries to dlopen the driver library.
        let present = catch_unwind(|| unsafe { cudarc::driver::sys::is_culib_present() }).unwrap_or(false);
        if !present {
            return Probe { count: 0, reason: " (no CUDA driver: libcuda.so could not be loaded)".into() };
        }
        match catch_unwind(CudaContext::device_count) {
            Ok(Ok(n)) => Probe { count: n.max(0) as usize, reason: " (the CUDA driver reports no GPU)".into() },
            Ok(Err(e)) => Probe { count: 0, reason: format!(" (CUDA driver error: {e:?})") },
            Err(_) => Probe { count: 0, reason: " (the CUDA driver could not be initialised)".into() },
        }
    })
}

/// Number of CUDA devices; 0 when there is no driver or no GPU. Never panics.
pub fn device_count() -> usize {
    probe().count
}

/// Why there are no devices, for error messages.
pub fn unavailable_reason() -> String {
    probe().reason.clone()
}

/// GPU memory on one device.
pub struct CudaBuffer {
    data: CudaSlice<u8>,
    len: usize,
    ordinal: usize,
}

impl CudaBuffer {
    /// The device holding the bytes.
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One CUDA device: its context, stream, and lazily compiled kernels.
pub struct CudaBackend {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    copy_cast: OnceLock<std::result::Result<Arc<CudaModule>, Error>>,
}

fn driver_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::Internal(format!("CUDA {what}: {e:?}"))
}

/// The backend for device `ordinal`, created on first use.
pub fn backend(ordinal: usize) -> Result<Arc<dyn Backend>> {
    static BACKENDS: LazyLock<Mutex<HashMap<usize, Arc<CudaBackend>>>> = LazyLock::new(Default::default);
    Device::Cuda(ordinal).check_available()?;
    let mut map = BACKENDS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = map.get(&ordinal) {
        return Ok(b.clone());
    }
    let ctx = catch_unwind(|| CudaContext::new(ordinal))
        .map_err(|_| Error::DeviceUnavailable(format!("cuda:{ordinal}: context creation panicked")))?
        .map_err(|e| Error::DeviceUnavailable(format!("cuda:{ordinal}: {e:?}")))?;
    let stream = ctx.default_stream();
    let b = Arc::new(CudaBackend { ordinal, ctx, stream, copy_cast: OnceLock::new() });
    map.insert(ordinal, b.clone());
    Ok(b)
}

impl CudaBackend {
    fn buffer<'a>(&self, s: &'a Storage) -> Result<&'a CudaBuffer> {
        match s {
            Storage::Cuda(b) if b.ordinal == self.ordinal => Ok(b),
            other => Err(Error::Internal(format!("cuda:{} backend given storage on {}", self.ordinal, other.device()))),
        }
    }

    fn module(&self) -> Result<Arc<CudaModule>> {
        self.copy_cast
            .get_or_init(|| {
                let (major, minor) = self.ctx.compute_capability().map_err(driver_err("compute capability"))?;
                let ptx = kernels::compile(&kernels::COPY_CAST, kernels::arch_name(major, minor))?;
                self.ctx.load_module(ptx).map_err(driver_err("module load"))
            })
            .clone()
    }

    fn wrap(&self, data: CudaSlice<u8>, len: usize) -> Storage {
        Storage::Cuda(CudaBuffer { data, len, ordinal: self.ordinal })
    }
}

impl Backend for CudaBackend {
    fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    fn zeros(&self, nbytes: usize) -> Result<Storage> {
        // cuMemAlloc rejects 0 bytes; empty tensors get a 1-byte allocation.
        let data = self.stream.alloc_zeros::<u8>(nbytes.max(1)).map_err(driver_err("alloc"))?;
        Ok(self.wrap(data, nbytes))
    }

    fn upload(&self, bytes: &[u8]) -> Result<Storage> {
        if bytes.is_empty() {
            return self.zeros(0);
        }
        let data = self.stream.clone_htod(bytes).map_err(driver_err("host-to-device copy"))?;
        Ok(self.wrap(data, bytes.len()))
    }

    fn copy_cast(&self, src: &Storage, layout: &Layout, src_dtype: DType, dst_dtype: DType) -> Result<Storage> {
        let src = self.buffer(src)?;
        let n = layout.numel();
        let out = self.zeros(n * dst_dtype.size())?;
        if n == 0 {
            return Ok(out);
        }
        let Storage::Cuda(mut dst) = out else { unreachable!("zeros returns CUDA storage") };
        let c = layout.coalesced();
        let info: Vec<u64> = c.shape().iter().chain(c.strides()).map(|&x| x as u64).collect();
        let info = self.stream.clone_htod(&info).map_err(driver_err("copy of layout"))?;
        let name = format!("copy_cast_{}_{}", src_dtype.name(), dst_dtype.name());
        let f = self.module()?.load_function(&name).map_err(driver_err("kernel lookup"))?;
        let (n64, ndim, offset) = (n as u64, c.ndim() as u32, c.offset() as u64);
        let blocks = n.div_ceil(256).min(1 << 20) as u32;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        launch.arg(&src.data).arg(&mut dst.data).arg(&n64).arg(&ndim).arg(&info).arg(&offset);
        // SAFETY: the kernel reads `n` elements through the layout (inside `src` by the
        // tensor's invariant) and writes `n` elements of `dst_dtype` into `dst`.
        unsafe { launch.launch(cfg) }.map_err(driver_err("kernel launch"))?;
        Ok(Storage::Cuda(dst))
    }

    fn download(&self, src: &Storage, layout: &Layout, dtype: DType, dst: &mut [u8]) -> Result<()> {
        let nbytes = layout.numel() * dtype.size();
        if nbytes == 0 {
            return Ok(());
        }
        let packed;
        let (buf, start) = if layout.is_contiguous() {
            (self.buffer(src)?, layout.offset() * dtype.size())
        } else {
            packed = self.copy_cast(src, layout, dtype, dtype)?;
            (self.buffer(&packed)?, 0)
        };
        let view = buf.data.slice(start..start + nbytes);
        catch_unwind(AssertUnwindSafe(|| self.stream.memcpy_dtoh(&view, &mut dst[..nbytes])))
            .map_err(|_| Error::Internal("device-to-host copy panicked".into()))?
            .map_err(driver_err("device-to-host copy"))?;
        self.stream.synchronize().map_err(driver_err("synchronize"))
    }
}
