//! Elementwise unary ops.

use super::util::{emit0, one, require_numeric};
use super::{ArgSpec, Attr, AttrKind, AttrSpec, Attrs, GradVal, InferCtx, Meta, OpDef, OpKind};
use crate::backend::cpu::elementwise::map_unary;
use crate::dtype::DType;
use crate::error::Result;
use crate::float_unary;

const X: &[ArgSpec] = &[ArgSpec::req("x")];

/// Inference for shape-preserving float ops.
pub fn infer_float(ctx: &InferCtx) -> Result<Vec<Meta>> {
    super::util::require_float(ctx.op, "x", ctx.inputs[0].dtype)?;
    one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype)
}

/// Inference for shape-preserving numeric ops.
pub fn infer_numeric(ctx: &InferCtx) -> Result<Vec<Meta>> {
    require_numeric(ctx.op, "x", ctx.inputs[0].dtype)?;
    one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype)
}

/// `-x`.
pub static NEG: OpDef = OpDef {
    name: "neg",
    kind: OpKind::Elementwise,
    doc: "-x",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_numeric,
    forward: |ctx| {
        let x = &ctx.inputs[0];
        Ok(vec![match x.dtype() {
            DType::I32 => map_unary::<i32, i32>(x, |v| v.wrapping_neg())?,
            DType::I64 => map_unary::<i64, i64>(x, |v| v.wrapping_neg())?,
            DType::U8 => map_unary::<u8, u8>(x, |v| v.wrapping_neg())?,
            _ => float_unary!(ctx.op, x, T, v => -v)?,
        }])
    },
    backward: Some(|e, c| Ok(vec![Some(GradVal::Dense(emit0(e, &NEG, &[c.grads[0].expect("one output")])?))])),
    pure: true,
};

/// `exp(x)`.
pub static EXP: OpDef = OpDef {
    name: "exp",
    kind: OpKind::Elementwise,
    doc: "e^x",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_float,
    forward: |ctx| Ok(vec![float_unary!(ctx.op, &ctx.inputs[0], T, v => v.exp())?]),
    backward: Some(|e, c| {
        let g = emit0(e, &super::binary::MUL, &[c.grads[0].expect("one output"), c.outputs[0]])?;
        Ok(vec![Some(GradVal::Dense(g))])
    }),
    pure: true,
};

/// Converts to another dtype (the cast rules of [`crate::dtype::Element`]).
pub static CAST: OpDef = OpDef {
    name: "cast",
    kind: OpKind::Elementwise,
    doc: "converts to `dtype` (a DS_DTYPE_* code): floats round to nearest-even, float to int truncates and saturates",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::required("dtype", AttrKind::Int, "target dtype code (DS_DTYPE_*)")],
    infer: |ctx| {
        // Validate the full i64: narrowing first would let 2^32 + 1 pass as f32.
        let code = i32::try_from(ctx.attrs.int("dtype")).unwrap_or(0);
        one(ctx.inputs[0].shape.clone(), DType::from_code(code, "dtype")?)
    },
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_cast(ctx.outputs[0].dtype)?]),
    backward: Some(|e, c| {
        let from = e.meta(c.inputs[0]).dtype;
        if !from.is_float() {
            return Ok(vec![None]);
        }
        let attrs = Attrs::resolve("cast", CAST.attrs, &[("dtype", Attr::Int(from.code() as i64))])?;
        Ok(vec![Some(GradVal::Dense(e.op(&CAST, &[c.grads[0].expect("one output")], attrs)?))])
    }),
    pure: true,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&NEG, &EXP, &CAST];
