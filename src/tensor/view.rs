//! Raw zero-copy views on `Tensor` (no autograd; the differentiable ones are ops): reshape/view, permute, transpose, slice, expand, squeeze, unsqueeze.

use super::Tensor;
use super::layout::Layout;
use crate::error::{Error, Result};

impl Tensor {
    /// A tensor over the same storage through `layout` (the caller derived it from this
    /// tensor's layout, so it stays inside the storage). No autograd history.
    pub fn view_as_layout(&self, layout: Layout) -> Tensor {
        self.with_layout(layout)
    }

    /// The same elements with a new shape (one dimension may be -1); a view when the strides
    /// allow, otherwise a contiguous copy.
    pub fn raw_reshape(&self, shape: &[i64]) -> Result<Tensor> {
        // Reshaping to the shape it has (common inside kernels) is the tensor itself.
        if shape.len() == self.ndim() && shape.iter().zip(self.shape()).all(|(&s, &d)| s >= 0 && s as usize == d) {
            return Ok(self.clone());
        }
        match self.layout().reshape(shape)? {
            Some(l) => Ok(self.with_layout(l)),
            None => self.raw_contiguous()?.raw_reshape(shape),
        }
    }

    /// Like [`Tensor::reshape`] but never copies: an error when the strides do not allow a view.
    pub fn raw_view(&self, shape: &[i64]) -> Result<Tensor> {
        let l = self.layout().reshape(shape)?.ok_or_else(|| {
            Error::shape(
                "shape",
                format!(
                    "cannot view shape {:?} (strides {:?}) as {shape:?} without a copy; use reshape",
                    self.shape(),
                    self.strides()
                ),
            )
        })?;
        Ok(self.with_layout(l))
    }

    /// Reorders dimensions: dimension `k` of the result is dimension `perm[k]` of `self`.
    pub fn raw_permute(&self, perm: &[i64]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().permute(perm)?))
    }

    /// Swaps two dimensions.
    pub fn raw_transpose(&self, dim0: i64, dim1: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().transpose(dim0, dim1)?))
    }

    /// Elements `start, start+step, ..` below `end` along `dim` (negative values count from the end).
    pub fn raw_slice(&self, dim: i64, start: i64, end: i64, step: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().slice(dim, start, end, step)?))
    }

    /// Broadcasts to `shape` without copying (-1 keeps a dimension).
    pub fn raw_expand(&self, shape: &[i64]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().expand(shape)?))
    }

    /// Removes size-1 dimension `dim`.
    pub fn raw_squeeze(&self, dim: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().squeeze(dim)?))
    }

    /// Removes every size-1 dimension.
    pub fn raw_squeeze_all(&self) -> Tensor {
        self.with_layout(self.layout().squeeze_all())
    }

    /// Inserts a size-1 dimension at `dim`.
    pub fn raw_unsqueeze(&self, dim: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().unsqueeze(dim)?))
    }
}
