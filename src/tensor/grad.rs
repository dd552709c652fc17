//! What `Tensor` carries for autograd: the requires-grad flag, the accumulated gradient, and
//! the node that produced it (opaque here; the autograd layer above owns its type).

use super::Tensor;
use std::any::Any;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// A gradient as stored on a leaf: dense, or sparse rows from embedding lookups.
#[derive(Clone, Debug)]
pub enum Gradient {
    /// Same shape as the tensor.
    Dense(Tensor),
    /// Gradient rows `rows[k]` for table rows `indices[k]` (i64); all other rows are zero;
    /// repeated indices add.
    Rows {
        /// Row indices, i64 `[n]`.
        indices: Tensor,
        /// Row gradients, `[n, ...row shape]`.
        rows: Tensor,
    },
}

/// The node that produced a tensor and which of its outputs the tensor is.
pub type GradFn = (Arc<dyn Any + Send + Sync>, usize);

/// Autograd state of one tensor.
#[derive(Default)]
pub(crate) struct GradSlot {
    pub(crate) requires_grad: AtomicBool,
    pub(crate) grad: Mutex<Option<Gradient>>,
    pub(crate) grad_fn: Option<GradFn>,
}

impl GradSlot {
    pub(crate) fn with_fn(grad_fn: GradFn) -> Self {
        GradSlot { requires_grad: AtomicBool::new(true), grad: Mutex::new(None), grad_fn: Some(grad_fn) }
    }
}

impl Tensor {
    /// True when gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.grad.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf as needing a gradient (`backward` accumulates into [`Tensor::grad`]).
    /// Views and clones made afterwards share the flag only if taken from this tensor.
    pub fn set_requires_grad(&self, on: bool) -> &Self {
        self.0.grad.requires_grad.store(on, Ordering::Relaxed);
        self
    }

    /// True for tensors not produced by a recorded op (user data, parameters).
    pub fn is_leaf(&self) -> bool {
        self.0.grad.grad_fn.is_none()
    }

    /// The node that produced this tensor, if recorded.
    pub fn grad_fn(&self) -> Option<&GradFn> {
        self.0.grad.grad_fn.as_ref()
    }

    /// The accumulated gradient, as stored (dense or rows).
    pub fn gradient(&self) -> Option<Gradient> {
        self.0.grad.grad.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the stored gradient (`None` clears it, as `zero_grad` does).
    pub fn set_gradient(&self, g: Option<Gradient>) {
        *self.0.grad.grad.lock().unwrap_or_else(|p| p.into_inner()) = g;
    }

    /// Runs `f` on the stored gradient under its lock (accumulation).
    pub fn update_gradient<R>(&self, f: impl FnOnce(&mut Option<Gradient>) -> R) -> R {
        f(&mut self.0.grad.grad.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The same data without autograd history: a leaf that does not require grad.
    pub fn detach(&self) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), self.0.layout.clone(), self.0.dtype, GradSlot::default())
    }

    /// The same data with `grad_fn` attached (used by the dispatcher for op outputs).
    pub fn with_grad_fn(&self, grad_fn: GradFn) -> Tensor {
        Tensor::from_parts(self.0.storage.clone(), self.0.layout.clone(), self.0.dtype, GradSlot::with_fn(grad_fn))
    }
}
