//! Shared pieces of op definitions: broadcasting, dtype checks, axis lists, gradient-rule helpers.

use super::{Attrs, Emitter, InferCtx, Meta, OpDef, Val};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::dims::Dims;
use crate::tensor::layout::normalize_axis;

/// NumPy broadcasting of two shapes, or an error naming the op.
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Dims> {
    let n = a.len().max(b.len());
    let mut out = Dims::filled(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    "b",
                    format!("{op}: shapes {a:?} and {b:?} do not broadcast (dimension {i}: {da} vs {db})"),
                ));
            }
        };
    }
    Ok(out)
}

/// Errors unless every input has the dtype of input 0.
pub fn same_dtype(ctx: &InferCtx, names: &[&'static str]) -> Result<DType> {
    let d = ctx.inputs[0].dtype;
    for (i, m) in ctx.inputs.iter().enumerate().skip(1) {
        if m.dtype != d {
            let arg = names.get(i).copied().unwrap_or("inputs");
            return Err(Error::DtypeMismatch { arg, expected: d, given: m.dtype }).map_err(|e| prefix(ctx.op, e));
        }
    }
    Ok(d)
}

/// Errors unless `dtype` is a float type.
pub fn require_float(op: &str, arg: &'static str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::InvalidDtype { arg, msg: format!("{op} needs a float tensor (f32, f64, f16, bf16), given {dtype}") })
    }
}

/// Errors when `dtype` is bool (arithmetic ops take numbers).
pub fn require_numeric(op: &str, arg: &'static str, dtype: DType) -> Result<()> {
    if dtype == DType::Bool {
        Err(Error::InvalidDtype { arg, msg: format!("{op} needs a numeric tensor, given bool") })
    } else {
        Ok(())
    }
}

/// Puts the op's name in front of an error message that lacks it, so every error from an
/// op call names the op.
pub fn prefix(op: &str, e: Error) -> Error {
    let tag = |msg: String| if msg.starts_with(&format!("{op}:")) { msg } else { format!("{op}: {msg}") };
    match e {
        Error::DtypeMismatch { arg, expected, given } => {
            Error::InvalidDtype { arg, msg: tag(format!("expected {expected}, given {given}")) }
        }
        Error::InvalidArgument { arg, msg } => Error::InvalidArgument { arg, msg: tag(msg) },
        Error::InvalidDtype { arg, msg } => Error::InvalidDtype { arg, msg: tag(msg) },
        Error::ShapeMismatch { arg, msg } => Error::ShapeMismatch { arg, msg: tag(msg) },
        Error::OutOfRange { arg, msg } => Error::OutOfRange { arg, msg: tag(msg) },
        Error::Overflow { arg, msg } => Error::Overflow { arg, msg: tag(msg) },
        Error::Unsupported(msg) => Error::Unsupported(tag(msg)),
        other => other,
    }
}

/// Resolves an `axes` attribute (empty = all axes) against `ndim`: sorted, distinct.
pub fn resolve_axes(op: &str, axes: &[i64], ndim: usize) -> Result<Vec<usize>> {
    if axes.is_empty() {
        return Ok((0..ndim).collect());
    }
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let d = normalize_axis(a, ndim, "axes").map_err(|e| Error::range("axes", format!("{op}: {e}")))?;
        if out.contains(&d) {
            return Err(Error::invalid("axes", format!("{op}: axis {a} repeats in {axes:?}")));
        }
        out.push(d);
    }
    out.sort_unstable();
    Ok(out)
}

/// The one-output meta list most inference functions return.
pub fn one(shape: impl Into<Dims>, dtype: DType) -> Result<Vec<Meta>> {
    Ok(vec![Meta { shape: shape.into(), dtype }])
}

/// Emits `op` with no attributes (the common case in gradient rules).
pub fn emit0(e: &mut dyn Emitter, op: &'static OpDef, inputs: &[Val]) -> Result<Val> {
    e.op(op, inputs, Attrs::none())
}
