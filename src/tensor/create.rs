//! Creating tensors: zeros, ones, full, arange, from host data, adopted caller memory, seeded random.

use super::Tensor;
use super::layout::{Layout, checked_numel};
use crate::backend::{CpuBuffer, ForeignOwner, Storage, backend};
use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::with_dtype;
use std::ptr::NonNull;
use std::sync::Arc;

/// Converts C-style `i64` dimensions to a shape, rejecting negative sizes and element or
/// byte counts that overflow for `dtype`.
pub fn shape_from_dims(dims: &[i64], dtype: DType, arg: &'static str) -> Result<Vec<usize>> {
    let mut shape = Vec::with_capacity(dims.len());
    for (i, &d) in dims.iter().enumerate() {
        if d < 0 {
            return Err(Error::invalid(arg, format!("dimension {i} is negative ({d}) in {dims:?}")));
        }
        shape
            .push(usize::try_from(d).map_err(|_| Error::overflow(arg, format!("dimension {i} ({d}) exceeds size_t")))?);
    }
    byte_size(&shape, dtype, arg)?;
    Ok(shape)
}

/// Bytes needed for `shape` of `dtype`, or an overflow error (limit: `isize::MAX`).
pub fn byte_size(shape: &[usize], dtype: DType, arg: &'static str) -> Result<usize> {
    checked_numel(shape, arg)?
        .checked_mul(dtype.size())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| Error::overflow(arg, format!("{shape:?} of {dtype} needs more than isize::MAX bytes")))
}

fn host_tensor(buf: CpuBuffer, shape: &[usize], dtype: DType) -> Result<Tensor> {
    Tensor::from_storage(Arc::new(Storage::Cpu(buf)), Layout::contiguous(shape), dtype)
}

/// Fills a host buffer of `n` elements of `T` through `f`.
fn host_from_fn<T: Element>(shape: &[usize], mut f: impl FnMut(usize) -> T) -> Result<Tensor> {
    let n = checked_numel(shape, "shape")?;
    let buf = CpuBuffer::uninit(byte_size(shape, T::DTYPE, "shape")?)?;
    // SAFETY: fresh buffer sized for `n` elements of T, exclusively ours until returned.
    let data = unsafe { buf.typed_mut::<T>() };
    for (i, x) in data.iter_mut().enumerate().take(n) {
        *x = f(i);
    }
    host_tensor(buf, shape, T::DTYPE)
}

impl Tensor {
    /// Zeros of `dtype` on `device`.
    pub fn zeros(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        device.check_available()?;
        let storage = backend(device)?.zeros(byte_size(shape, dtype, "shape")?)?;
        Tensor::from_storage(Arc::new(storage), Layout::contiguous(shape), dtype)
    }

    /// Ones of `dtype` on `device`.
    pub fn ones(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype, device)
    }

    /// Every element `value`, converted to `dtype` by the cast rules. Built on the host and
    /// moved, so every device sees exactly the same bits.
    pub fn full(shape: &[usize], value: f64, dtype: DType, device: Device) -> Result<Tensor> {
        device.check_available()?;
        let t = with_dtype!(dtype, T => {
            let v = T::from_f64(value);
            host_from_fn::<T>(shape, |_| v)?
        });
        t.to_device(device)
    }

    /// `start, start+step, ..` below `end` (above it for negative `step`), as a 1-D tensor.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType, device: Device) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "step",
                format!("arange needs finite start/end and a non-zero finite step, given ({start}, {end}, {step})"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0);
        if n > i64::MAX as f64 {
            return Err(Error::overflow("end", format!("arange({start}, {end}, {step}) has too many elements")));
        }
        device.check_available()?;
        let t = with_dtype!(dtype, T => host_from_fn::<T>(&[n as usize], |i| T::from_f64(start + i as f64 * step))?);
        t.to_device(device)
    }

    /// A host tensor copied from `data` (row-major), whose length must equal the shape's element count.
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        let n = checked_numel(shape, "shape")?;
        if data.len() != n {
            return Err(Error::shape(
                "data",
                format!("{} elements given for shape {shape:?} ({n} elements)", data.len()),
            ));
        }
        host_from_fn::<T>(shape, |i| data[i])
    }

    /// A tensor on `device` copied from raw row-major bytes of `dtype`.
    pub fn from_bytes(bytes: &[u8], dtype: DType, shape: &[usize], device: Device) -> Result<Tensor> {
        let need = byte_size(shape, dtype, "shape")?;
        if bytes.len() != need {
            return Err(Error::shape(
                "nbytes",
                format!("{} bytes given; shape {shape:?} of {dtype} needs {need}", bytes.len()),
            ));
        }
        if dtype == DType::Bool && bytes.iter().any(|&b| b > 1) {
            return Err(Error::invalid("data", "bool tensors hold bytes 0 or 1 only"));
        }
        device.check_available()?;
        let storage = backend(device)?.upload(bytes)?;
        Tensor::from_storage(Arc::new(storage), Layout::contiguous(shape), dtype)
    }

    /// A host tensor over caller memory, without copying. `owner` releases the memory when
    /// the last tensor using it drops; on any error it is released before this returns.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `nbytes` bytes until `owner` releases it.
    pub unsafe fn from_foreign(
        ptr: *mut u8,
        nbytes: usize,
        dtype: DType,
        shape: &[usize],
        owner: ForeignOwner,
    ) -> Result<Tensor> {
        let need = byte_size(shape, dtype, "shape")?;
        if nbytes != need {
            return Err(Error::shape(
                "nbytes",
                format!("{nbytes} bytes given; shape {shape:?} of {dtype} needs {need}"),
            ));
        }
        let Some(ptr) = NonNull::new(ptr) else { return Err(Error::NullPointer { arg: "data" }) };
        let align = dtype.size();
        if !(ptr.as_ptr() as usize).is_multiple_of(align) {
            return Err(Error::invalid(
                "data",
                format!(
                    "address {:p} is not aligned to {align} bytes, as {dtype} requires (buffers are never silently copied)",
                    ptr.as_ptr()
                ),
            ));
        }
        // SAFETY: validity for `nbytes` is the caller's promise; alignment was checked.
        let buf = unsafe { CpuBuffer::from_foreign(ptr, nbytes, owner) };
        host_tensor(buf, shape, dtype)
    }

    /// Uniform values in [`low`, `high`) drawn from `rng` (see [`crate::rng`]), in row-major order.
    pub fn rand_uniform(
        shape: &[usize],
        low: f64,
        high: f64,
        dtype: DType,
        device: Device,
        rng: &mut Generator,
    ) -> Result<Tensor> {
        if !(low.is_finite() && high.is_finite() && low <= high) {
            return Err(Error::invalid("high", format!("need finite low <= high, given [{low}, {high})")));
        }
        Tensor::random(shape, dtype, device, || low + (high - low) * (1.0 - rng.uniform()))
    }

    /// Normal values with `mean` and standard deviation `std` drawn from `rng`, row-major.
    pub fn rand_normal(
        shape: &[usize],
        mean: f64,
        std: f64,
        dtype: DType,
        device: Device,
        rng: &mut Generator,
    ) -> Result<Tensor> {
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(Error::invalid("std", format!("need finite mean and std >= 0, given mean {mean}, std {std}")));
        }
        Tensor::random(shape, dtype, device, || mean + std * rng.normal())
    }

    fn random(shape: &[usize], dtype: DType, device: Device, mut draw: impl FnMut() -> f64) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(Error::InvalidDtype {
                arg: "dtype",
                msg: format!("random tensors need a float dtype, given {dtype}"),
            });
        }
        device.check_available()?;
        let t = with_dtype!(dtype, T => host_from_fn::<T>(shape, |_| T::from_f64(draw()))?);
        t.to_device(device)
    }
}
