//! `Tensor` methods for every op: the Rust face of the registry (each call goes through dispatch and the tape).

use super::dispatch::{attrs_of, call1};
use super::{Attr, Attrs, binary, movement, reduce, unary};
use crate::error::Result;
use crate::tensor::Tensor;

fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

impl Tensor {
    /// `self + other` (broadcasting).
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        call1(&binary::ADD, &[self, other], &Attrs::none())
    }

    /// `self - other` (broadcasting).
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        call1(&binary::SUB, &[self, other], &Attrs::none())
    }

    /// `self * other` (broadcasting).
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        call1(&binary::MUL, &[self, other], &Attrs::none())
    }

    /// `self / other` (broadcasting).
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        call1(&binary::DIV, &[self, other], &Attrs::none())
    }

    /// `-self`.
    pub fn neg(&self) -> Result<Tensor> {
        call1(&unary::NEG, &[self], &Attrs::none())
    }

    /// `e^self`.
    pub fn exp(&self) -> Result<Tensor> {
        call1(&unary::EXP, &[self], &Attrs::none())
    }

    /// Sum over `axes` (all when empty).
    pub fn sum(&self, axes: &[i64], keepdim: bool) -> Result<Tensor> {
        call1(
            &reduce::SUM,
            &[self],
            &attrs_of(&reduce::SUM, &[("axes", ints(axes)), ("keepdim", Attr::Bool(keepdim))])?,
        )
    }

    /// Sum of every element, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    /// Same elements with a new shape (one entry may be -1); zero-copy when possible.
    pub fn reshape(&self, shape: &[i64]) -> Result<Tensor> {
        call1(&movement::RESHAPE, &[self], &attrs_of(&movement::RESHAPE, &[("shape", ints(shape))])?)
    }

    /// Like [`Tensor::reshape`] but never copies.
    pub fn view(&self, shape: &[i64]) -> Result<Tensor> {
        call1(&movement::VIEW, &[self], &attrs_of(&movement::VIEW, &[("shape", ints(shape))])?)
    }

    /// Reorders dimensions (zero-copy).
    pub fn permute(&self, dims: &[i64]) -> Result<Tensor> {
        call1(&movement::PERMUTE, &[self], &attrs_of(&movement::PERMUTE, &[("dims", ints(dims))])?)
    }

    /// Swaps two dimensions (zero-copy).
    pub fn transpose(&self, dim0: i64, dim1: i64) -> Result<Tensor> {
        let attrs = attrs_of(&movement::TRANSPOSE, &[("dim0", Attr::Int(dim0)), ("dim1", Attr::Int(dim1))])?;
        call1(&movement::TRANSPOSE, &[self], &attrs)
    }

    /// Indices `start, start+step, ..` below `end` along `dim` (zero-copy).
    pub fn slice(&self, dim: i64, start: i64, end: i64, step: i64) -> Result<Tensor> {
        let attrs = attrs_of(
            &movement::SLICE,
            &[("dim", Attr::Int(dim)), ("start", Attr::Int(start)), ("end", Attr::Int(end)), ("step", Attr::Int(step))],
        )?;
        call1(&movement::SLICE, &[self], &attrs)
    }

    /// Broadcasts to `shape` (zero-copy).
    pub fn expand(&self, shape: &[i64]) -> Result<Tensor> {
        call1(&movement::EXPAND, &[self], &attrs_of(&movement::EXPAND, &[("shape", ints(shape))])?)
    }

    /// Removes size-1 dimension `dim`.
    pub fn squeeze(&self, dim: i64) -> Result<Tensor> {
        call1(&movement::SQUEEZE, &[self], &attrs_of(&movement::SQUEEZE, &[("dim", Attr::Int(dim))])?)
    }

    /// Removes every size-1 dimension.
    pub fn squeeze_all(&self) -> Result<Tensor> {
        call1(&movement::SQUEEZE, &[self], &attrs_of(&movement::SQUEEZE, &[])?)
    }

    /// Inserts a size-1 dimension at `dim`.
    pub fn unsqueeze(&self, dim: i64) -> Result<Tensor> {
        call1(&movement::UNSQUEEZE, &[self], &attrs_of(&movement::UNSQUEEZE, &[("dim", Attr::Int(dim))])?)
    }

    /// The elements converted to `dtype` (differentiable between float dtypes).
    pub fn cast(&self, dtype: crate::DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        call1(&unary::CAST, &[self], &attrs_of(&unary::CAST, &[("dtype", Attr::Int(dtype.code() as i64))])?)
    }

    /// Row-major packed (self when already contiguous).
    pub fn contiguous(&self) -> Result<Tensor> {
        call1(&movement::CONTIGUOUS, &[self], &Attrs::none())
    }
}
