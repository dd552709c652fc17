//! Broadcasting binary arithmetic: add, sub, mul, div.

use super::util::{broadcast_shapes, emit0, one, require_numeric, same_dtype};
use super::{ArgSpec, Emitter, ForwardCtx, GradVal, InferCtx, Meta, OpDef, OpKind, Val};
use crate::error::{Error, Result};
use crate::numeric_binary;
use crate::tensor::Tensor;

const AB: &[ArgSpec] = &[ArgSpec::req("a"), ArgSpec::req("b")];

/// Inference for numeric broadcasting ops: one dtype, broadcast shape.
pub fn infer_arith(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let dtype = same_dtype(ctx, &["a", "b"])?;
    require_numeric(ctx.op, "a", dtype)?;
    one(broadcast_shapes(ctx.op, &ctx.inputs[0].shape, &ctx.inputs[1].shape)?, dtype)
}

fn ab<'a>(ctx: &'a ForwardCtx) -> (&'a Tensor, &'a Tensor, &'a [usize]) {
    (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape)
}

/// Reduces a gradient to the shape of the input it belongs to (undoing broadcasting).
pub fn unbroadcast(e: &mut dyn Emitter, g: Val, input: Val) -> Result<Val> {
    if e.meta(g).shape == e.meta(input).shape {
        return Ok(g);
    }
    emit0(e, &super::reduce::SUM_TO, &[g, input])
}

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

/// `a + b`.
pub static ADD: OpDef = OpDef {
    name: "add",
    kind: OpKind::Broadcast,
    doc: "a + b with NumPy broadcasting",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| {
        let (a, b, s) = ab(ctx);
        Ok(vec![numeric_binary!(ctx.op, a, b, s, T, x, y => x + y, int => x.wrapping_add(y))?])
    },
    backward: Some(|e, c| {
        let g = c.grads[0].expect("add has one output");
        Ok(vec![dense(unbroadcast(e, g, c.inputs[0])?), dense(unbroadcast(e, g, c.inputs[1])?)])
    }),
    pure: true,
};

/// `a - b`.
pub static SUB: OpDef = OpDef {
    name: "sub",
    kind: OpKind::Broadcast,
    doc: "a - b with NumPy broadcasting",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| {
        let (a, b, s) = ab(ctx);
        Ok(vec![numeric_binary!(ctx.op, a, b, s, T, x, y => x - y, int => x.wrapping_sub(y))?])
    },
    backward: Some(|e, c| {
        let g = c.grads[0].expect("sub has one output");
        let ng = emit0(e, &super::unary::NEG, &[g])?;
        Ok(vec![dense(unbroadcast(e, g, c.inputs[0])?), dense(unbroadcast(e, ng, c.inputs[1])?)])
    }),
    pure: true,
};

/// `a * b`.
pub static MUL: OpDef = OpDef {
    name: "mul",
    kind: OpKind::Broadcast,
    doc: "a * b with NumPy broadcasting",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| {
        let (a, b, s) = ab(ctx);
        Ok(vec![numeric_binary!(ctx.op, a, b, s, T, x, y => x * y, int => x.wrapping_mul(y))?])
    },
    backward: Some(|e, c| {
        let (g, a, b) = (c.grads[0].expect("mul has one output"), c.inputs[0], c.inputs[1]);
        let ga = emit0(e, &MUL, &[g, b])?;
        let gb = emit0(e, &MUL, &[g, a])?;
        Ok(vec![dense(unbroadcast(e, ga, a)?), dense(unbroadcast(e, gb, b)?)])
    }),
    pure: true,
};

/// `a / b` (integer division truncates; an integer zero divisor is an error).
pub static DIV: OpDef = OpDef {
    name: "div",
    kind: OpKind::Broadcast,
    doc: "a / b with NumPy broadcasting; integer division truncates toward zero",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| {
        let (a, b, s) = ab(ctx);
        if !b.dtype().is_float() && b.raw_cast(crate::DType::Bool)?.to_vec::<bool>()?.contains(&false) {
            return Err(Error::invalid("b", "div: integer division by zero"));
        }
        Ok(vec![numeric_binary!(ctx.op, a, b, s, T, x, y => x / y, int => x.wrapping_div(y))?])
    },
    backward: Some(|e, c| {
        let (g, a, b) = (c.grads[0].expect("div has one output"), c.inputs[0], c.inputs[1]);
        let ga = emit0(e, &DIV, &[g, b])?;
        // d(a/b)/db = -a/b² = -out/b
        let out_over_b = emit0(e, &DIV, &[c.outputs[0], b])?;
        let t = emit0(e, &MUL, &[g, out_over_b])?;
        let gb = emit0(e, &super::unary::NEG, &[t])?;
        Ok(vec![dense(unbroadcast(e, ga, a)?), dense(unbroadcast(e, gb, b)?)])
    }),
    pure: true,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&ADD, &SUB, &MUL, &DIV];
