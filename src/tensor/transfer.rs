//! Copies out of a layout: `contiguous`, `cast`, `to_device`, and reads into host memory.

use super::Tensor;
use super::layout::Layout;
use crate::backend::backend;
use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use std::sync::Arc;

impl Tensor {
    /// This tensor if already contiguous, else a row-major copy.
    pub fn raw_contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        self.copy_as(self.dtype())
    }

    /// The elements converted to `dtype` (rules on [`Element`]); no copy when the dtype is unchanged.
    pub fn raw_cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        self.copy_as(dtype)
    }

    /// The elements as a mutable host slice, for owners that update a tensor in place (an
    /// optimizer stepping its parameters). Copy on write: when the data is shared (a clone, a
    /// view, a caller's borrowed buffer) or not contiguous, this handle first gets a private
    /// contiguous copy, so no other holder ever sees the change. A leaf stays the same
    /// parameter through that copy: its requires-grad flag and accumulated gradient move with
    /// it (a training loop updates its parameters while the last step's graph, which holds
    /// them, is still alive).
    pub fn host_data_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        if self.dtype() != T::DTYPE {
            return Err(Error::DtypeMismatch { arg: "host_data_mut", expected: T::DTYPE, given: self.dtype() });
        }
        if self.device() != Device::Cpu {
            return Err(Error::Unsupported(format!("in-place host access to a tensor on {}", self.device())));
        }
        if !(self.is_exclusive() && self.is_contiguous()) {
            let copy = self.copy_as(self.dtype())?;
            if self.is_leaf() {
                copy.set_requires_grad(self.requires_grad());
                copy.set_gradient(self.gradient());
            }
            *self = copy;
        }
        let (off, n) = (self.layout().offset(), self.numel());
        let buf = self.storage().as_cpu().expect("checked: host tensor");
        // SAFETY: `self` is now the only handle to this pool-owned, contiguous storage (checked
        // above or freshly copied), and `&mut self` keeps it so for the slice's lifetime.
        Ok(unsafe { &mut buf.typed_mut::<T>()[off..off + n] })
    }

    fn copy_as(&self, dtype: DType) -> Result<Tensor> {
        let storage = backend(self.device())?.copy_cast(self.storage(), self.layout(), self.dtype(), dtype)?;
        Tensor::from_storage(Arc::new(storage), Layout::contiguous(self.shape()), dtype)
    }

    /// A copy on `device` (this tensor itself when already there).
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        device.check_available()?;
        let mut host = vec![0u8; self.nbytes()];
        self.copy_to_bytes(&mut host)?;
        let storage = backend(device)?.upload(&host)?;
        Tensor::from_storage(Arc::new(storage), Layout::contiguous(self.shape()), self.dtype())
    }

    /// Bytes of the elements when packed contiguously.
    pub fn nbytes(&self) -> usize {
        self.numel() * self.dtype().size()
    }

    /// Writes the elements, row-major, into `dst` (at least [`Tensor::nbytes`] long).
    pub fn copy_to_bytes(&self, dst: &mut [u8]) -> Result<()> {
        let need = self.nbytes();
        if dst.len() < need {
            return Err(Error::BufferTooSmall { arg: "dst", needed: need, given: dst.len() });
        }
        backend(self.device())?.download(self.storage(), self.layout(), self.dtype(), &mut dst[..need])
    }

    /// The elements, row-major, as a `Vec<T>`; `T` must match the dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DtypeMismatch { arg: "T", expected: self.dtype(), given: T::DTYPE });
        }
        let mut out = vec![T::zero(); self.numel()];
        // SAFETY: `out` is a fully initialised Vec<T>; viewing it as bytes for the copy is sound
        // and the copy writes only valid `T` bit patterns of the same dtype.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len() * size_of::<T>()) };
        self.copy_to_bytes(bytes)?;
        Ok(out)
    }

    /// The single element of a one-element tensor, as f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::shape("self", format!("item() needs exactly one element, shape is {:?}", self.shape())));
        }
        let t = self.raw_cast(DType::F64)?;
        Ok(t.to_vec::<f64>()?[0])
    }
}
