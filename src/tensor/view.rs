//! Zero-copy views on `Tensor`: reshape/view, permute, transpose, slice, expand, squeeze, unsqueeze.

use super::Tensor;
use crate::error::{Error, Result};

impl Tensor {
    /// The same elements with a new shape (one dimension may be -1); a view when the strides
    /// allow, otherwise a contiguous copy.
    pub fn reshape(&self, shape: &[i64]) -> Result<Tensor> {
        match self.layout().reshape(shape)? {
            Some(l) => Ok(self.with_layout(l)),
            None => self.contiguous()?.reshape(shape),
        }
    }

    /// Like [`Tensor::reshape`] but never copies: an error when the strides do not allow a view.
    pub fn view(&self, shape: &[i64]) -> Result<Tensor> {
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
    pub fn permute(&self, perm: &[i64]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().permute(perm)?))
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, dim0: i64, dim1: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().transpose(dim0, dim1)?))
    }

    /// Elements `start, start+step, ..` below `end` along `dim` (negative values count from the end).
    pub fn slice(&self, dim: i64, start: i64, end: i64, step: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().slice(dim, start, end, step)?))
    }

    /// Broadcasts to `shape` without copying (-1 keeps a dimension).
    pub fn expand(&self, shape: &[i64]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().expand(shape)?))
    }

    /// Removes size-1 dimension `dim`.
    pub fn squeeze(&self, dim: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().squeeze(dim)?))
    }

    /// Removes every size-1 dimension.
    pub fn squeeze_all(&self) -> Tensor {
        self.with_layout(self.layout().squeeze_all())
    }

    /// Inserts a size-1 dimension at `dim`.
    pub fn unsqueeze(&self, dim: i64) -> Result<Tensor> {
        Ok(self.with_layout(self.layout().unsqueeze(dim)?))
    }
}
