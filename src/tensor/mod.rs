//! `Tensor`: shared storage seen through a layout, with a dtype; cheap to clone, views never copy.

pub mod create;
pub mod dims;
mod display;
pub mod grad;
pub mod layout;
mod transfer;
mod view;

use crate::backend::Storage;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use grad::GradSlot;
use layout::Layout;
use std::sync::Arc;

/// An n-dimensional array. Cloning shares everything; views (reshape, permute, slice,
/// expand, ...) share the storage and differ only in layout.
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

struct TensorInner {
    storage: Arc<Storage>,
    layout: Layout,
    dtype: DType,
    grad: GradSlot,
}

impl Tensor {
    /// A tensor over `storage` through `layout`, after checking the layout stays inside it.
    pub fn from_storage(storage: Arc<Storage>, layout: Layout, dtype: DType) -> Result<Tensor> {
        let need = layout
            .storage_span()
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::overflow("layout", "byte span overflows"))?;
        if need > storage.len() {
            return Err(Error::Internal(format!("layout needs {need} bytes, storage has {}", storage.len())));
        }
        Ok(Tensor::from_parts(storage, layout, dtype, GradSlot::default()))
    }

    fn from_parts(storage: Arc<Storage>, layout: Layout, dtype: DType, grad: GradSlot) -> Tensor {
        Tensor(Arc::new(TensorInner { storage, layout, dtype, grad }))
    }

    /// A tensor over the same storage with another layout, without autograd history. Views
    /// that must be differentiable go through the view ops of `crate::ops`.
    fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), layout, self.0.dtype, GradSlot::default())
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// Where the data lives.
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }

    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }

    /// Element strides.
    pub fn strides(&self) -> &[usize] {
        self.0.layout.strides()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.0.layout.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// True when the elements are row-major and gap-free in storage.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// The shared storage.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.0.storage
    }

    /// An identity for this tensor handle, stable while it lives: clones share it, views and
    /// op results get their own (the graph tracer maps tensors to values with it).
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// True when this handle is the only one to its data: no clone, no view, and the bytes
    /// belong to the engine's allocator (not a caller's borrowed buffer). Such a tensor may be
    /// overwritten in place by its owner.
    pub fn is_exclusive(&self) -> bool {
        Arc::strong_count(&self.0) == 1
            && Arc::strong_count(&self.0.storage) == 1
            && self.0.storage.as_cpu().is_some_and(|b| b.is_pool_owned())
    }

    /// True when both tensors view the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// Address of the first element for host tensors (the caller's pointer for borrowed
    /// buffers); `None` on other devices.
    pub fn host_ptr(&self) -> Option<*const u8> {
        let b = self.0.storage.as_cpu()?;
        Some(b.as_ptr().wrapping_add(self.0.layout.offset() * self.0.dtype.size()))
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
