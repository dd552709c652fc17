//! Broadcasting binary arithmetic (add, sub, mul, div, pow, maximum, minimum) and scalar forms
//! (add_scalar, mul_scalar, pow_scalar).

use super::dispatch::call1;
use super::pointwise::{BinaryBody, UnaryBody, float_map1, float_map2};
use super::util::{broadcast_shapes, emit0, one, require_float, require_numeric, same_dtype};
use super::{
    ArgSpec, Attr, AttrKind, AttrSpec, Attrs, Emitter, ForwardCtx, GradCtx, GradVal, InferCtx, Meta, OpDef, OpKind, Val,
};
use crate::backend::cpu::elementwise::{map_binary, map_unary};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::{binary_body, unary_body};

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

/// Broadcast `a op b`: floats through `$Body` (the op's one float formula, shared with its
/// pointwise body), integers through `$int` (wrapping arithmetic) over `$x`, `$y`.
macro_rules! numeric_kernel {
    ($ctx:expr, $Body:ident, $x:ident, $y:ident => int $int:expr) => {{
        let (a, b, s) = ab($ctx);
        match a.dtype() {
            DType::I32 => map_binary::<i32, i32, i32>(a, b, s, |$x, $y| $int),
            DType::I64 => map_binary::<i64, i64, i64>(a, b, s, |$x, $y| $int),
            DType::U8 => map_binary::<u8, u8, u8>(a, b, s, |$x, $y| $int),
            _ => float_map2::<$Body>($ctx.op, a, b, s, $ctx.attrs),
        }
    }};
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

binary_body!(AddBody(attrs, T) {} x, y => x + y);

/// `a + b`.
pub static ADD: OpDef = OpDef {
    name: "add",
    kind: OpKind::Broadcast,
    doc: "a + b with NumPy broadcasting",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| Ok(vec![numeric_kernel!(ctx, AddBody, x, y => int x.wrapping_add(y))?]),
    backward: Some(|e, c| {
        let g = c.grads[0].expect("add has one output");
        Ok(vec![dense(unbroadcast(e, g, c.inputs[0])?), dense(unbroadcast(e, g, c.inputs[1])?)])
    }),
    pure: true,
    pointwise: Some(&AddBody::POINTWISE),
};

binary_body!(SubBody(attrs, T) {} x, y => x - y);

/// `a - b`.
pub static SUB: OpDef = OpDef {
    name: "sub",
    kind: OpKind::Broadcast,
    doc: "a - b with NumPy broadcasting",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| Ok(vec![numeric_kernel!(ctx, SubBody, x, y => int x.wrapping_sub(y))?]),
    backward: Some(|e, c| {
        let g = c.grads[0].expect("sub has one output");
        let ng = emit0(e, &super::unary::NEG, &[g])?;
        Ok(vec![dense(unbroadcast(e, g, c.inputs[0])?), dense(unbroadcast(e, ng, c.inputs[1])?)])
    }),
    pure: true,
    pointwise: Some(&SubBody::POINTWISE),
};

binary_body!(MulBody(attrs, T) {} x, y => x * y);

/// `a * b`.
pub static MUL: OpDef = OpDef {
    name: "mul",
    kind: OpKind::Broadcast,
    doc: "a * b with NumPy broadcasting",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| Ok(vec![numeric_kernel!(ctx, MulBody, x, y => int x.wrapping_mul(y))?]),
    backward: Some(|e, c| {
        let (g, a, b) = (c.grads[0].expect("mul has one output"), c.inputs[0], c.inputs[1]);
        let ga = emit0(e, &MUL, &[g, b])?;
        let gb = emit0(e, &MUL, &[g, a])?;
        Ok(vec![dense(unbroadcast(e, ga, a)?), dense(unbroadcast(e, gb, b)?)])
    }),
    pure: true,
    pointwise: Some(&MulBody::POINTWISE),
};

binary_body!(DivBody(attrs, T) {} x, y => x / y);

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
        let b = &ctx.inputs[1];
        if !b.dtype().is_float() && b.raw_cast(crate::DType::Bool)?.to_vec::<bool>()?.contains(&false) {
            return Err(Error::invalid("b", "div: integer division by zero"));
        }
        Ok(vec![numeric_kernel!(ctx, DivBody, x, y => int x.wrapping_div(y))?])
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
    pointwise: Some(&DivBody::POINTWISE),
};

/// Inference for float broadcasting ops: one float dtype, broadcast shape.
pub fn infer_float_binary(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let dtype = same_dtype(ctx, &["a", "b"])?;
    require_float(ctx.op, "a", dtype)?;
    one(broadcast_shapes(ctx.op, &ctx.inputs[0].shape, &ctx.inputs[1].shape)?, dtype)
}

fn grad0(c: &GradCtx) -> Val {
    c.grads[0].expect("binary ops have one output")
}

binary_body!(PowBody(attrs, T) {} x, y => x.powf(y));

/// `a ^ b` (float dtypes).
pub static POW: OpDef = OpDef {
    name: "pow",
    kind: OpKind::Broadcast,
    doc: "a ^ b with NumPy broadcasting (float dtypes); the gradient in b is 0 where a <= 0",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_float_binary,
    forward: |ctx| {
        let (a, b, s) = ab(ctx);
        Ok(vec![float_map2::<PowBody>(ctx.op, a, b, s, ctx.attrs)?])
    },
    backward: Some(|e, c| {
        let (g, a, b, out) = (grad0(c), c.inputs[0], c.inputs[1], c.outputs[0]);
        let zero = e.scalar(0.0, e.meta(a).dtype)?;
        // ∂/∂a = b·a^(b−1), defined as 0 where b = 0 (a^(−1) would give 0·∞ at a = 0).
        let bm1 = emit_scalar(e, &ADD_SCALAR, b, -1.0)?;
        let p = emit0(e, &POW, &[a, bm1])?;
        let t = emit0(e, &MUL, &[b, p])?;
        let t = emit0(e, &MUL, &[g, t])?;
        let b_zero = emit0(e, &super::compare::EQ, &[b, zero])?;
        let ga = emit0(e, &super::compare::WHERE, &[b_zero, zero, t])?;
        // ∂/∂b = a^b·ln a where a > 0; 0 elsewhere (ln is undefined there).
        let ln_a = emit0(e, &super::unary::LOG, &[a])?;
        let t = emit0(e, &MUL, &[out, ln_a])?;
        let t = emit0(e, &MUL, &[g, t])?;
        let a_pos = emit0(e, &super::compare::GT, &[a, zero])?;
        let gb = emit0(e, &super::compare::WHERE, &[a_pos, t, zero])?;
        Ok(vec![dense(unbroadcast(e, ga, a)?), dense(unbroadcast(e, gb, b)?)])
    }),
    pure: true,
    pointwise: Some(&PowBody::POINTWISE),
};

/// Gradient of maximum/minimum: `select` (a > b for maximum) sends all of g to a, ties split it evenly.
fn extremum_backward(e: &mut dyn Emitter, c: &GradCtx, select: &'static OpDef) -> Result<Vec<Option<GradVal>>> {
    let (g, a, b) = (grad0(c), c.inputs[0], c.inputs[1]);
    let dtype = e.meta(g).dtype;
    let (zero, half, one) = (e.scalar(0.0, dtype)?, e.scalar(0.5, dtype)?, e.scalar(1.0, dtype)?);
    let tie = emit0(e, &super::compare::EQ, &[a, b])?;
    let tie_w = emit0(e, &super::compare::WHERE, &[tie, half, zero])?;
    let wins = emit0(e, select, &[a, b])?;
    let w = emit0(e, &super::compare::WHERE, &[wins, one, tie_w])?;
    let ga = emit0(e, &MUL, &[g, w])?;
    let gb = emit0(e, &SUB, &[g, ga])?;
    Ok(vec![dense(unbroadcast(e, ga, a)?), dense(unbroadcast(e, gb, b)?)])
}

binary_body!(MaximumBody(attrs, T) {} x, y => if x > y || x.is_nan() { x } else { y });
binary_body!(MinimumBody(attrs, T) {} x, y => if x < y || x.is_nan() { x } else { y });

/// Elementwise larger of a and b (NaN propagates).
pub static MAXIMUM: OpDef = OpDef {
    name: "maximum",
    kind: OpKind::Broadcast,
    doc: "elementwise max(a, b) with broadcasting; NaN propagates; ties split the gradient evenly",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| Ok(vec![numeric_kernel!(ctx, MaximumBody, x, y => int x.max(y))?]),
    backward: Some(|e, c| extremum_backward(e, c, &super::compare::GT)),
    pure: true,
    pointwise: Some(&MaximumBody::POINTWISE),
};

/// Elementwise smaller of a and b (NaN propagates).
pub static MINIMUM: OpDef = OpDef {
    name: "minimum",
    kind: OpKind::Broadcast,
    doc: "elementwise min(a, b) with broadcasting; NaN propagates; ties split the gradient evenly",
    inputs: AB,
    outputs: &["out"],
    attrs: &[],
    infer: infer_arith,
    forward: |ctx| Ok(vec![numeric_kernel!(ctx, MinimumBody, x, y => int x.min(y))?]),
    backward: Some(|e, c| extremum_backward(e, c, &super::compare::LT)),
    pure: true,
    pointwise: Some(&MinimumBody::POINTWISE),
};

/// Attributes for a scalar op (`add_scalar`, `mul_scalar`, `pow_scalar`): its one float attribute set to `v`.
pub fn scalar_attrs(op: &'static OpDef, v: f64) -> Result<Attrs> {
    Attrs::resolve(op.name, op.attrs, &[(op.attrs[0].name, Attr::Float(v))])
}

/// Emits a scalar op on `x` in a gradient rule.
pub fn emit_scalar(e: &mut dyn Emitter, op: &'static OpDef, x: Val, v: f64) -> Result<Val> {
    e.op(op, &[x], scalar_attrs(op, v)?)
}

/// Inference for add_scalar/mul_scalar: numeric x; on integer dtypes the value must be a whole number
/// within the type's magnitude (it is then applied with wrapping arithmetic).
fn infer_scalar_arith(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let m = &ctx.inputs[0];
    require_numeric(ctx.op, "x", m.dtype)?;
    if m.dtype.is_int() {
        let v = ctx.attrs.float("value");
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(Error::invalid("value", format!("{}: {v} is not a whole number ({} x)", ctx.op, m.dtype)));
        }
        let limit = match m.dtype {
            DType::I32 => 2f64.powi(31),
            DType::I64 => 2f64.powi(63),
            _ => 256.0,
        };
        if v.abs() >= limit {
            return Err(Error::range("value", format!("{}: {v} does not fit {} (|value| < {limit})", ctx.op, m.dtype)));
        }
    }
    one(m.shape.clone(), m.dtype)
}

/// Applies `x op value` keeping x's dtype: `$Body` for floats (the op's one float formula),
/// `$method` (a wrapping integer method) for integers.
macro_rules! scalar_kernel {
    ($ctx:expr, $Body:ident, $x:ident, int $method:ident) => {{
        let x = &$ctx.inputs[0];
        let v = $ctx.attrs.float("value");
        match x.dtype() {
            // Whole and in range (inference checked); `as` wraps negative values for u8.
            DType::I32 => map_unary::<i32, i32>(x, move |$x| $x.$method(v as i64 as i32)),
            DType::I64 => map_unary::<i64, i64>(x, move |$x| $x.$method(v as i64)),
            DType::U8 => map_unary::<u8, u8>(x, move |$x| $x.$method(v as i64 as u8)),
            _ => float_map1::<$Body>($ctx.op, x, $ctx.attrs),
        }
    }};
}

const X: &[ArgSpec] = &[ArgSpec::req("x")];

// The value converts to the compute type once; the op always computed `x + (value as T)`.
unary_body!(AddScalarBody(attrs, T) { let s = attrs.float("value") as T; } x => x + s);
unary_body!(MulScalarBody(attrs, T) { let s = attrs.float("value") as T; } x => x * s);

/// `x + value`.
pub static ADD_SCALAR: OpDef = OpDef {
    name: "add_scalar",
    kind: OpKind::Elementwise,
    doc: "x + value, keeping x's dtype (integers take whole values and wrap)",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::required("value", AttrKind::Float, "the addend")],
    infer: infer_scalar_arith,
    forward: |ctx| Ok(vec![scalar_kernel!(ctx, AddScalarBody, x, int wrapping_add)?]),
    backward: Some(|_, c| Ok(vec![dense(grad0(c))])),
    pure: true,
    pointwise: Some(&AddScalarBody::POINTWISE),
};

/// `x * value`.
pub static MUL_SCALAR: OpDef = OpDef {
    name: "mul_scalar",
    kind: OpKind::Elementwise,
    doc: "x * value, keeping x's dtype (integers take whole values and wrap)",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::required("value", AttrKind::Float, "the factor")],
    infer: infer_scalar_arith,
    forward: |ctx| Ok(vec![scalar_kernel!(ctx, MulScalarBody, x, int wrapping_mul)?]),
    backward: Some(|e, c| Ok(vec![dense(emit_scalar(e, &MUL_SCALAR, grad0(c), c.attrs.float("value"))?)])),
    pure: true,
    pointwise: Some(&MulScalarBody::POINTWISE),
};

// Common exponents skip powf (slower, and not exact for squares on every libm).
unary_body!(PowScalarBody(attrs, T) { let p = attrs.float("exponent"); } x => {
    if p == 2.0 {
        x * x
    } else if p == 3.0 {
        x * x * x
    } else if p == 0.5 {
        x.sqrt()
    } else if p == -1.0 {
        1.0 / x
    } else {
        x.powf(p as T)
    }
});

/// `x ^ exponent` (float dtypes).
pub static POW_SCALAR: OpDef = OpDef {
    name: "pow_scalar",
    kind: OpKind::Elementwise,
    doc: "x ^ exponent (float dtypes)",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::required("exponent", AttrKind::Float, "the power")],
    infer: super::unary::infer_float,
    forward: |ctx| Ok(vec![float_map1::<PowScalarBody>(ctx.op, &ctx.inputs[0], ctx.attrs)?]),
    backward: Some(|e, c| {
        let p = c.attrs.float("exponent");
        if p == 0.0 {
            // Constant 1: no gradient.
            return Ok(vec![None]);
        }
        let q = emit_scalar(e, &POW_SCALAR, c.inputs[0], p - 1.0)?;
        let d = emit_scalar(e, &MUL_SCALAR, q, p)?;
        Ok(vec![dense(emit0(e, &MUL, &[grad0(c), d])?)])
    }),
    pure: true,
    pointwise: Some(&PowScalarBody::POINTWISE),
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&ADD, &SUB, &MUL, &DIV, &POW, &MAXIMUM, &MINIMUM, &ADD_SCALAR, &MUL_SCALAR, &POW_SCALAR];

impl Tensor {
    /// `self ^ exponent` elementwise (broadcasting, float dtypes).
    pub fn pow(&self, exponent: &Tensor) -> Result<Tensor> {
        call1(&POW, &[self, exponent], &Attrs::none())
    }

    /// Elementwise maximum (broadcasting; NaN propagates).
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        call1(&MAXIMUM, &[self, other], &Attrs::none())
    }

    /// Elementwise minimum (broadcasting; NaN propagates).
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        call1(&MINIMUM, &[self, other], &Attrs::none())
    }

    /// `self + value`, keeping the dtype (integer tensors take whole values).
    pub fn add_scalar(&self, value: f64) -> Result<Tensor> {
        call1(&ADD_SCALAR, &[self], &scalar_attrs(&ADD_SCALAR, value)?)
    }

    /// `self * value`, keeping the dtype (integer tensors take whole values).
    pub fn mul_scalar(&self, value: f64) -> Result<Tensor> {
        call1(&MUL_SCALAR, &[self], &scalar_attrs(&MUL_SCALAR, value)?)
    }

    /// `self ^ exponent` (float dtypes).
    pub fn pow_scalar(&self, exponent: f64) -> Result<Tensor> {
        call1(&POW_SCALAR, &[self], &scalar_attrs(&POW_SCALAR, exponent)?)
    }
}
