//! Comparisons (eq, ne, lt, le, gt, ge → bool), logical and/or/not, and `where`.

use super::binary::unbroadcast;
use super::dispatch::call1;
use super::util::{broadcast_shapes, one, same_dtype};
use super::{ArgSpec, Attrs, ForwardCtx, GradVal, InferCtx, Meta, OpDef, OpKind};
use crate::backend::cpu::elementwise::{host_slice, map_binary, map_unary, new_host};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use crate::tensor::dims::Dims;
use crate::tensor::layout::coalesce_joint;
use half::{bf16, f16};
use rayon::prelude::*;

const AB: &[ArgSpec] = &[ArgSpec::req("a"), ArgSpec::req("b")];

/// Elements per parallel work item of the `where` kernel.
const CHUNK: usize = 1 << 14;

/// Inference for comparisons: one dtype (any), broadcast shape, bool out.
fn infer_compare(ctx: &InferCtx) -> Result<Vec<Meta>> {
    same_dtype(ctx, &["a", "b"])?;
    one(broadcast_shapes(ctx.op, &ctx.inputs[0].shape, &ctx.inputs[1].shape)?, DType::Bool)
}

/// Runs a comparison on every dtype natively (f16/bf16 compare exactly as themselves).
macro_rules! compare_kernel {
    ($ctx:expr, $x:ident, $y:ident => $body:expr) => {{
        let ctx: &ForwardCtx = $ctx;
        let (a, b, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape[..]);
        Ok(vec![match a.dtype() {
            DType::F32 => map_binary::<f32, f32, bool>(a, b, s, |$x, $y| $body)?,
            DType::F64 => map_binary::<f64, f64, bool>(a, b, s, |$x, $y| $body)?,
            DType::F16 => map_binary::<f16, f16, bool>(a, b, s, |$x, $y| $body)?,
            DType::BF16 => map_binary::<bf16, bf16, bool>(a, b, s, |$x, $y| $body)?,
            DType::I32 => map_binary::<i32, i32, bool>(a, b, s, |$x, $y| $body)?,
            DType::I64 => map_binary::<i64, i64, bool>(a, b, s, |$x, $y| $body)?,
            DType::U8 => map_binary::<u8, u8, bool>(a, b, s, |$x, $y| $body)?,
            DType::Bool => map_binary::<bool, bool, bool>(a, b, s, |$x, $y| $body)?,
        }])
    }};
}

/// Defines a comparison op.
macro_rules! compare_op {
    ($(#[$m:meta])* $NAME:ident, $name:literal, $doc:literal, $x:ident, $y:ident => $body:expr) => {
        $(#[$m])*
        // The one generic body also serves bool tensors (false < true), which clippy would rewrite.
        #[allow(clippy::bool_comparison)]
        pub static $NAME: OpDef = OpDef {
            name: $name,
            kind: OpKind::Broadcast,
            doc: $doc,
            inputs: AB,
            outputs: &["out"],
            attrs: &[],
            infer: infer_compare,
            forward: |ctx| compare_kernel!(ctx, $x, $y => $body),
            backward: None,
            pure: true,
            pointwise: None,
        };
    };
}

compare_op!(
    /// `a == b` (NaN is unequal to everything).
    EQ, "eq", "a == b with broadcasting, as bool", x, y => x == y
);
compare_op!(
    /// `a != b`.
    NE, "ne", "a != b with broadcasting, as bool", x, y => x != y
);
compare_op!(
    /// `a < b`.
    LT, "lt", "a < b with broadcasting, as bool", x, y => x < y
);
compare_op!(
    /// `a <= b`.
    LE, "le", "a <= b with broadcasting, as bool", x, y => x <= y
);
compare_op!(
    /// `a > b`.
    GT, "gt", "a > b with broadcasting, as bool", x, y => x > y
);
compare_op!(
    /// `a >= b`.
    GE, "ge", "a >= b with broadcasting, as bool", x, y => x >= y
);

/// Inference for logical ops: any dtypes (nonzero is true), broadcast shape, bool out.
fn infer_logical(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let shape = match ctx.inputs {
        [a] => a.shape.clone(),
        [a, b] => broadcast_shapes(ctx.op, &a.shape, &b.shape)?,
        _ => return Err(Error::Internal(format!("{}: wrong arity", ctx.op))),
    };
    one(shape, DType::Bool)
}

/// The truth values of `t` (itself when bool; otherwise `t != 0`, NaN counting as true).
fn truth(t: &Tensor) -> Result<Tensor> {
    t.raw_cast(DType::Bool)
}

fn logical_kernel(ctx: &ForwardCtx, f: impl Fn(bool, bool) -> bool + Sync + Send) -> Result<Vec<Tensor>> {
    let (a, b) = (truth(&ctx.inputs[0])?, truth(&ctx.inputs[1])?);
    Ok(vec![map_binary::<bool, bool, bool>(&a, &b, &ctx.outputs[0].shape, f)?])
}

/// Logical and.
pub static LOGICAL_AND: OpDef = OpDef {
    name: "logical_and",
    kind: OpKind::Broadcast,
    doc: "a AND b with broadcasting (numeric inputs: nonzero is true), as bool",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_logical,
    forward: |ctx| logical_kernel(ctx, |x, y| x & y),
    backward: None,
    pure: true,
    pointwise: None,
};

/// Logical or.
pub static LOGICAL_OR: OpDef = OpDef {
    name: "logical_or",
    kind: OpKind::Broadcast,
    doc: "a OR b with broadcasting (numeric inputs: nonzero is true), as bool",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_logical,
    forward: |ctx| logical_kernel(ctx, |x, y| x | y),
    backward: None,
    pure: true,
    pointwise: None,
};

/// Logical not.
pub static LOGICAL_NOT: OpDef = OpDef {
    name: "logical_not",
    kind: OpKind::Elementwise,
    doc: "NOT x (numeric input: nonzero is true), as bool",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: &[],
    infer: infer_logical,
    forward: |ctx| Ok(vec![map_unary::<bool, bool>(&truth(&ctx.inputs[0])?, |v| !v)?]),
    backward: None,
    pure: true,
    pointwise: None,
};

/// Broadcasts two shapes, naming `arg` on failure.
fn broadcast_arg(op: &str, arg: &'static str, a: &[usize], b: &[usize]) -> Result<Dims> {
    broadcast_shapes(op, a, b).map_err(|e| match e {
        Error::ShapeMismatch { msg, .. } => Error::ShapeMismatch { arg, msg },
        other => other,
    })
}

/// `out = cond ? a : b` over the broadcast of the three layouts: joint rows as in the binary
/// kernels (unit-stride rows vectorise), parallel over row chunks when large.
fn select<T: Element>(c: &Tensor, a: &Tensor, b: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let (lc, la, lb) = (c.layout().expand(&dims)?, a.layout().expand(&dims)?, b.layout().expand(&dims)?);
    let (sc, sa, sb) = (host_slice::<bool>(c)?, host_slice::<T>(a)?, host_slice::<T>(b)?);
    new_host::<T>(shape, |out| {
        if out.is_empty() {
            return;
        }
        let joint = coalesce_joint(&[&lc, &la, &lb]);
        let (jc, ja, jb) = (&joint[0], &joint[1], &joint[2]);
        let row = *jc.shape().last().expect("coalesced layouts have a dimension");
        let stride =
            |l: &crate::tensor::layout::Layout| *l.strides().last().expect("coalesced layouts have a dimension");
        let (dc, da, db) = (stride(jc), stride(ja), stride(jb));
        let run = |first_row: usize, o: &mut [T]| {
            for (r, orow) in o.chunks_mut(row).enumerate() {
                let (oc, oa, ob) =
                    (jc.row_offset(first_row + r), ja.row_offset(first_row + r), jb.row_offset(first_row + r));
                if (dc, da, db) == (1, 1, 1) {
                    orow.iter_mut()
                        .zip(&sc[oc..oc + row])
                        .zip(&sa[oa..oa + row])
                        .zip(&sb[ob..ob + row])
                        .for_each(|(((y, &k), &x), &z)| *y = if k { x } else { z });
                } else {
                    for (i, y) in orow.iter_mut().enumerate() {
                        *y = if sc[oc + i * dc] { sa[oa + i * da] } else { sb[ob + i * db] };
                    }
                }
            }
        };
        if out.len() < PARALLEL_THRESHOLD {
            run(0, out);
        } else {
            let rows_per_chunk = (CHUNK / row).max(1);
            install(|| {
                out.par_chunks_mut(rows_per_chunk * row).enumerate().for_each(|(i, o)| run(i * rows_per_chunk, o))
            });
        }
    })
}

/// `cond ? a : b` elementwise.
pub static WHERE: OpDef = OpDef {
    name: "where",
    kind: OpKind::Broadcast,
    doc: "cond ? a : b elementwise, broadcasting all three; cond is bool, a and b share a dtype",
    inputs: &[ArgSpec::req("cond"), ArgSpec::req("a"), ArgSpec::req("b")],
    outputs: &["out"],
    attrs: &[],
    infer: |ctx| {
        let (c, a, b) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]);
        if c.dtype != DType::Bool {
            return Err(Error::InvalidDtype {
                arg: "cond",
                msg: format!("{}: cond must be bool, given {}", ctx.op, c.dtype),
            });
        }
        if a.dtype != b.dtype {
            return Err(Error::InvalidDtype {
                arg: "b",
                msg: format!("{}: a is {}, b is {}", ctx.op, a.dtype, b.dtype),
            });
        }
        let s = broadcast_arg(ctx.op, "a", &c.shape, &a.shape)?;
        one(broadcast_arg(ctx.op, "b", &s, &b.shape)?, a.dtype)
    },
    forward: |ctx| {
        let (c, a, b, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2], &ctx.outputs[0].shape[..]);
        Ok(vec![match a.dtype() {
            DType::F32 => select::<f32>(c, a, b, s)?,
            DType::F64 => select::<f64>(c, a, b, s)?,
            DType::F16 => select::<f16>(c, a, b, s)?,
            DType::BF16 => select::<bf16>(c, a, b, s)?,
            DType::I32 => select::<i32>(c, a, b, s)?,
            DType::I64 => select::<i64>(c, a, b, s)?,
            DType::U8 => select::<u8>(c, a, b, s)?,
            DType::Bool => select::<bool>(c, a, b, s)?,
        }])
    },
    backward: Some(|e, c| {
        let (g, cond, a, b) = (c.grads[0].expect("where has one output"), c.inputs[0], c.inputs[1], c.inputs[2]);
        let zero = e.scalar(0.0, e.meta(g).dtype)?;
        let ga = e.op(&WHERE, &[cond, g, zero], Attrs::none())?;
        let gb = e.op(&WHERE, &[cond, zero, g], Attrs::none())?;
        Ok(vec![None, Some(GradVal::Dense(unbroadcast(e, ga, a)?)), Some(GradVal::Dense(unbroadcast(e, gb, b)?))])
    }),
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&EQ, &NE, &LT, &LE, &GT, &GE, &LOGICAL_AND, &LOGICAL_OR, &LOGICAL_NOT, &WHERE];

/// Defines `Tensor` methods for two-input ops of this family.
macro_rules! binary_methods {
    ($($(#[$m:meta])* $fn_name:ident => $OP:ident;)*) => {
        impl Tensor {
            $(
                $(#[$m])*
                pub fn $fn_name(&self, other: &Tensor) -> Result<Tensor> {
                    call1(&$OP, &[self, other], &Attrs::none())
                }
            )*
        }
    };
}

binary_methods! {
    /// `self == other` elementwise, as bool (broadcasting, one dtype).
    eq => EQ;
    /// `self != other` elementwise, as bool.
    ne => NE;
    /// `self < other` elementwise, as bool.
    lt => LT;
    /// `self <= other` elementwise, as bool.
    le => LE;
    /// `self > other` elementwise, as bool.
    gt => GT;
    /// `self >= other` elementwise, as bool.
    ge => GE;
    /// Logical and (nonzero is true), as bool.
    logical_and => LOGICAL_AND;
    /// Logical or (nonzero is true), as bool.
    logical_or => LOGICAL_OR;
}

impl Tensor {
    /// Logical not (nonzero is true), as bool.
    pub fn logical_not(&self) -> Result<Tensor> {
        call1(&LOGICAL_NOT, &[self], &Attrs::none())
    }

    /// `self ? a : b` elementwise, where `self` is a bool condition (all three broadcast).
    pub fn where_(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        call1(&WHERE, &[self, a, b], &Attrs::none())
    }
}
