//! Reductions over axes: sum, and `sum_to` (the adjoint of broadcasting).

use super::util::{emit0, one, require_numeric, resolve_axes};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, ForwardCtx, GradVal, InferCtx, Meta, OpDef, OpKind,
};
use crate::backend::cpu::reduce::{reduce_runs, sum_slice};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The `axes` (empty = all) and `keepdim` attributes of every axis reduction.
pub const AXES_KEEPDIM: &[AttrSpec] = &[
    AttrSpec::with_default("axes", AttrKind::Ints, AttrDefault::Ints(&[]), "axes to reduce; empty reduces all"),
    AttrSpec::with_default("keepdim", AttrKind::Bool, AttrDefault::Bool(false), "keep reduced axes as size 1"),
];

/// The output shape of a reduction over `axes`.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(d, &n)| if axes.contains(&d) { keepdim.then_some(1) } else { Some(n) })
        .collect()
}

/// Inference for axis reductions that keep the dtype.
pub fn infer_reduce(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let x = &ctx.inputs[0];
    require_numeric(ctx.op, "x", x.dtype)?;
    let axes = resolve_axes(ctx.op, ctx.attrs.ints("axes"), x.shape.len())?;
    one(reduced_shape(&x.shape, &axes, ctx.attrs.bool("keepdim")), x.dtype)
}

/// Sums `x` over `axes` (the kept dimensions in order), for any numeric dtype.
pub fn sum_axes(x: &Tensor, axes: &[usize]) -> Result<Tensor> {
    match x.dtype() {
        DType::F32 => reduce_runs::<f32, f32>(x, axes, sum_slice),
        DType::F64 => reduce_runs::<f64, f64>(x, axes, sum_slice),
        DType::F16 | DType::BF16 => {
            reduce_runs::<f32, f32>(&x.raw_cast(DType::F32)?, axes, sum_slice)?.raw_cast(x.dtype())
        }
        DType::I32 => reduce_runs::<i32, i32>(x, axes, |s| s.iter().fold(0i32, |a, &b| a.wrapping_add(b))),
        DType::I64 => reduce_runs::<i64, i64>(x, axes, |s| s.iter().fold(0i64, |a, &b| a.wrapping_add(b))),
        DType::U8 => reduce_runs::<u8, u8>(x, axes, |s| s.iter().fold(0u8, |a, &b| a.wrapping_add(b))),
        DType::Bool => Err(Error::InvalidDtype { arg: "x", msg: "sum needs a numeric tensor, given bool".into() }),
    }
}

fn reshape_to(t: Tensor, meta: &Meta) -> Result<Tensor> {
    let dims: Vec<i64> = meta.shape.iter().map(|&d| d as i64).collect();
    crate::autograd::no_grad(|| t.raw_reshape(&dims))
}

/// Sum over axes.
pub static SUM: OpDef = OpDef {
    name: "sum",
    kind: OpKind::Reduce,
    doc: "sum over `axes` (all when empty), optionally keeping them as size 1",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXES_KEEPDIM,
    infer: infer_reduce,
    forward: |ctx: &ForwardCtx| {
        let x = &ctx.inputs[0];
        let axes = resolve_axes(ctx.op, ctx.attrs.ints("axes"), x.ndim())?;
        Ok(vec![reshape_to(sum_axes(x, &axes)?, &ctx.outputs[0])?])
    },
    backward: Some(|e, c| {
        let (x, mut g) = (c.inputs[0], c.grads[0].expect("one output"));
        let ndim = e.meta(x).shape.len();
        if !c.attrs.bool("keepdim") {
            for a in resolve_axes("sum", c.attrs.ints("axes"), ndim)? {
                g = e.op(
                    &super::movement::UNSQUEEZE,
                    &[g],
                    Attrs::resolve("unsqueeze", super::movement::UNSQUEEZE.attrs, &[("dim", Attr::Int(a as i64))])?,
                )?;
            }
        }
        Ok(vec![Some(GradVal::Dense(emit0(e, &super::movement::EXPAND_AS, &[g, x])?))])
    }),
    pure: true,
};

/// Sums `x` down to the shape of `like` (which `x` must broadcast from).
pub static SUM_TO: OpDef = OpDef {
    name: "sum_to",
    kind: OpKind::Reduce,
    doc: "sums x over the dimensions in which `like` was broadcast to x's shape",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("like")],
    outputs: &["out"],
    attrs: &[],
    infer: |ctx| {
        let (x, like) = (&ctx.inputs[0], &ctx.inputs[1]);
        require_numeric(ctx.op, "x", x.dtype)?;
        let b = super::util::broadcast_shapes(ctx.op, &x.shape, &like.shape)?;
        if b != x.shape {
            return Err(Error::shape("like", format!("sum_to: {:?} does not broadcast to {:?}", like.shape, x.shape)));
        }
        one(like.shape.clone(), x.dtype)
    },
    forward: |ctx| {
        let (x, like) = (&ctx.inputs[0], &ctx.outputs[0]);
        let lead = x.ndim() - like.shape.len();
        let axes: Vec<usize> =
            (0..x.ndim()).filter(|&d| d < lead || (like.shape[d - lead] == 1 && x.shape()[d] != 1)).collect();
        Ok(vec![reshape_to(sum_axes(x, &axes)?, like)?])
    },
    backward: Some(|e, c| {
        let g = emit0(e, &super::movement::EXPAND_AS, &[c.grads[0].expect("one output"), c.inputs[0]])?;
        Ok(vec![Some(GradVal::Dense(g)), None])
    }),
    pure: true,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&SUM, &SUM_TO];
