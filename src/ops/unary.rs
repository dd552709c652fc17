//! Elementwise unary ops: neg, exp, cast, abs, log, log1p, sqrt, rsqrt, reciprocal, sin, cos, sign, floor, ceil,
//! round, clamp.

use super::binary::{ADD_SCALAR, MUL, MUL_SCALAR, emit_scalar};
use super::dispatch::{attrs_of, call1};
use super::pointwise::{BinaryBody, UnaryBody, float_map1, float_map2};
use super::util::{emit0, one, require_float, require_numeric};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, GradCtx, GradVal, InferCtx, Meta, OpDef, OpKind, Val,
};
use crate::backend::cpu::elementwise::map_unary;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::{binary_body, unary_body};

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

unary_body!(NegBody(attrs, T) {} v => -v);

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
            _ => float_map1::<NegBody>(ctx.op, x, ctx.attrs)?,
        }])
    },
    backward: Some(|e, c| Ok(vec![Some(GradVal::Dense(emit0(e, &NEG, &[c.grads[0].expect("one output")])?))])),
    pure: true,
    pointwise: Some(&NegBody::POINTWISE),
};

unary_body!(ExpBody(attrs, T) {} v => v.exp());

/// `exp(x)`.
pub static EXP: OpDef = OpDef {
    name: "exp",
    kind: OpKind::Elementwise,
    doc: "e^x",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_float,
    forward: |ctx| Ok(vec![float_map1::<ExpBody>(ctx.op, &ctx.inputs[0], ctx.attrs)?]),
    backward: Some(|e, c| {
        let g = emit0(e, &super::binary::MUL, &[c.grads[0].expect("one output"), c.outputs[0]])?;
        Ok(vec![Some(GradVal::Dense(g))])
    }),
    pure: true,
    pointwise: Some(&ExpBody::POINTWISE),
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
    pointwise: None,
};

fn grad0(c: &GradCtx) -> Val {
    c.grads[0].expect("unary ops have one output")
}

fn dense(v: Val) -> Result<Vec<Option<GradVal>>> {
    Ok(vec![Some(GradVal::Dense(v))])
}

/// Defines a float-only, attribute-free elementwise op from its body (`$Body`, the formula of
/// both its forward kernel and its pointwise chunk body) and gradient rule.
macro_rules! float_op {
    ($(#[$m:meta])* $NAME:ident, $Body:ident, $name:literal, $doc:literal, $v:ident => $body:expr, $bw:expr) => {
        unary_body!($Body(attrs, T) {} $v => $body);

        $(#[$m])*
        pub static $NAME: OpDef = OpDef {
            name: $name,
            kind: OpKind::Elementwise,
            doc: $doc,
            inputs: X,
            outputs: &["out"],
            attrs: &[],
            infer: infer_float,
            forward: |ctx| Ok(vec![float_map1::<$Body>(ctx.op, &ctx.inputs[0], ctx.attrs)?]),
            backward: $bw,
            pure: true,
            pointwise: Some(&$Body::POINTWISE),
        };
    };
}

float_op!(
    /// `ln(x)`.
    LOG, LogBody, "log", "natural logarithm ln(x)", v => v.ln(),
    Some(|e, c| dense(emit0(e, &super::binary::DIV, &[grad0(c), c.inputs[0]])?))
);

float_op!(
    /// `ln(1 + x)`, accurate for small x.
    LOG1P, Log1pBody, "log1p", "ln(1 + x), accurate near 0", v => v.ln_1p(),
    Some(|e, c| {
        let xp1 = emit_scalar(e, &ADD_SCALAR, c.inputs[0], 1.0)?;
        dense(emit0(e, &super::binary::DIV, &[grad0(c), xp1])?)
    })
);

float_op!(
    /// `√x`.
    SQRT, SqrtBody, "sqrt", "square root", v => v.sqrt(),
    Some(|e, c| {
        let two_out = emit_scalar(e, &MUL_SCALAR, c.outputs[0], 2.0)?;
        dense(emit0(e, &super::binary::DIV, &[grad0(c), two_out])?)
    })
);

float_op!(
    /// `1/√x`.
    RSQRT, RsqrtBody, "rsqrt", "1 / sqrt(x)", v => 1.0 / v.sqrt(),
    Some(|e, c| {
        // d/dx x^(-1/2) = -x^(-3/2)/2 = -out³/2
        let out = c.outputs[0];
        let sq = emit0(e, &MUL, &[out, out])?;
        let cube = emit0(e, &MUL, &[sq, out])?;
        let d = emit_scalar(e, &MUL_SCALAR, cube, -0.5)?;
        dense(emit0(e, &MUL, &[grad0(c), d])?)
    })
);

float_op!(
    /// `1/x`.
    RECIPROCAL, ReciprocalBody, "reciprocal", "1 / x", v => 1.0 / v,
    Some(|e, c| {
        let out = c.outputs[0];
        let sq = emit0(e, &MUL, &[out, out])?;
        let d = emit_scalar(e, &MUL_SCALAR, sq, -1.0)?;
        dense(emit0(e, &MUL, &[grad0(c), d])?)
    })
);

float_op!(
    /// `sin(x)`.
    SIN, SinBody, "sin", "sine (radians)", v => v.sin(),
    Some(|e, c| {
        let d = emit0(e, &COS, &[c.inputs[0]])?;
        dense(emit0(e, &MUL, &[grad0(c), d])?)
    })
);

float_op!(
    /// `cos(x)`.
    COS, CosBody, "cos", "cosine (radians)", v => v.cos(),
    Some(|e, c| {
        let s = emit0(e, &SIN, &[c.inputs[0]])?;
        let d = emit_scalar(e, &MUL_SCALAR, s, -1.0)?;
        dense(emit0(e, &MUL, &[grad0(c), d])?)
    })
);

// Rounding ops are piecewise constant: no gradient rule, so their outputs carry none
// (the zero gradient PyTorch reports, without computing zeros).
float_op!(
    /// Largest integer not above x.
    FLOOR, FloorBody, "floor", "largest integer <= x (no gradient)", v => v.floor(), None
);

float_op!(
    /// Smallest integer not below x.
    CEIL, CeilBody, "ceil", "smallest integer >= x (no gradient)", v => v.ceil(), None
);

float_op!(
    /// Nearest integer, ties to even (as IEEE roundeven, NumPy and PyTorch).
    ROUND, RoundBody, "round", "nearest integer, halves to even (no gradient)", v => v.round_ties_even(), None
);

unary_body!(AbsBody(attrs, T) {} v => v.abs());

/// `|x|` (integers wrap: `|i32::MIN|` stays `i32::MIN`).
pub static ABS: OpDef = OpDef {
    name: "abs",
    kind: OpKind::Elementwise,
    doc: "|x|; gradient sign(x) (0 at 0)",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_numeric,
    forward: |ctx| {
        let x = &ctx.inputs[0];
        Ok(vec![match x.dtype() {
            DType::I32 => map_unary::<i32, i32>(x, |v| v.wrapping_abs())?,
            DType::I64 => map_unary::<i64, i64>(x, |v| v.wrapping_abs())?,
            DType::U8 => map_unary::<u8, u8>(x, |v| v)?,
            _ => float_map1::<AbsBody>(ctx.op, x, ctx.attrs)?,
        }])
    },
    backward: Some(|e, c| {
        let s = emit0(e, &SIGN, &[c.inputs[0]])?;
        dense(emit0(e, &MUL, &[grad0(c), s])?)
    }),
    pure: true,
    pointwise: Some(&AbsBody::POINTWISE),
};

unary_body!(SignBody(attrs, T) {} v => if v > 0.0 { 1.0 } else if v < 0.0 { -1.0 } else { v });

/// -1, 0 or 1 by the sign of x (NaN stays NaN, ±0 stays ±0).
pub static SIGN: OpDef = OpDef {
    name: "sign",
    kind: OpKind::Elementwise,
    doc: "-1, 0 or 1 by the sign of x; NaN stays NaN (no gradient)",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_numeric,
    forward: |ctx| {
        let x = &ctx.inputs[0];
        Ok(vec![match x.dtype() {
            DType::I32 => map_unary::<i32, i32>(x, |v| v.signum())?,
            DType::I64 => map_unary::<i64, i64>(x, |v| v.signum())?,
            DType::U8 => map_unary::<u8, u8>(x, |v| (v > 0) as u8)?,
            _ => float_map1::<SignBody>(ctx.op, x, ctx.attrs)?,
        }])
    },
    backward: None,
    pure: true,
    pointwise: Some(&SignBody::POINTWISE),
};

const CLAMP_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("min", AttrKind::Float, AttrDefault::Float(f64::NEG_INFINITY), "lower bound"),
    AttrSpec::with_default("max", AttrKind::Float, AttrDefault::Float(f64::INFINITY), "upper bound"),
];

fn check_bounds(op: &str, attrs: &Attrs) -> Result<(f64, f64)> {
    let (lo, hi) = (attrs.float("min"), attrs.float("max"));
    if lo.is_nan() {
        return Err(Error::invalid("min", format!("{op}: min is NaN")));
    }
    if hi.is_nan() {
        return Err(Error::invalid("max", format!("{op}: max is NaN")));
    }
    Ok((lo, hi))
}

/// `min(max(v, lo), hi)`: NaN passes through, and `lo > hi` gives `hi` everywhere (as PyTorch).
#[inline(always)]
fn clamp_val<T: PartialOrd>(v: T, lo: T, hi: T) -> T {
    let y = if v < lo { lo } else { v };
    if y > hi { hi } else { y }
}

// The float bounds are converted to the compute type once: `min`/`max` of ±inf stay
// infinite, so a one-sided clamp leaves the other side alone.
unary_body!(ClampBody(attrs, T) {
    let (lo, hi) = (attrs.float("min") as T, attrs.float("max") as T);
} v => clamp_val(v, lo, hi));

/// Limits x to `[min, max]`.
pub static CLAMP: OpDef = OpDef {
    name: "clamp",
    kind: OpKind::Elementwise,
    doc: "min(max(x, min), max); gradient passes where min <= x <= max",
    inputs: X,
    outputs: &["out"],
    attrs: CLAMP_ATTRS,
    infer: |ctx| {
        check_bounds(ctx.op, ctx.attrs)?;
        infer_numeric(ctx)
    },
    forward: |ctx| {
        let x = &ctx.inputs[0];
        let (lo, hi) = check_bounds(ctx.op, ctx.attrs)?;
        // Integers: x >= 1.5 exactly when x >= 2, so the bounds round inward; `as` saturates
        // infinite and out-of-range bounds to the type's range.
        macro_rules! int {
            ($t:ty) => {{
                let (l, h) = (lo.ceil() as $t, hi.floor() as $t);
                map_unary::<$t, $t>(x, move |v| clamp_val(v, l, h))?
            }};
        }
        Ok(vec![match x.dtype() {
            DType::I32 => int!(i32),
            DType::I64 => int!(i64),
            DType::U8 => int!(u8),
            _ => float_map1::<ClampBody>(ctx.op, x, ctx.attrs)?,
        }])
    },
    backward: Some(|e, c| {
        let (lo, hi) = (c.attrs.float("min"), c.attrs.float("max"));
        let attrs = attrs_of(&CLAMP_BACKWARD, &[("min", Attr::Float(lo)), ("max", Attr::Float(hi))])?;
        dense(e.op(&CLAMP_BACKWARD, &[grad0(c), c.inputs[0]], attrs)?)
    }),
    pure: true,
    pointwise: Some(&ClampBody::POINTWISE),
};

/// Inference for `(grad, x)` gradient kernels: both float, one dtype, one shape.
pub fn infer_grad_x(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let (g, x) = (&ctx.inputs[0], &ctx.inputs[1]);
    require_float(ctx.op, "grad", g.dtype)?;
    if x.dtype != g.dtype {
        return Err(Error::InvalidDtype {
            arg: "x",
            msg: format!("{}: x is {}, grad is {}", ctx.op, x.dtype, g.dtype),
        });
    }
    if x.shape != g.shape {
        return Err(Error::shape("x", format!("{}: x has shape {:?}, grad {:?}", ctx.op, x.shape, g.shape)));
    }
    one(x.shape.clone(), x.dtype)
}

binary_body!(ClampBackwardBody(attrs, T) {
    let (lo, hi) = (attrs.float("min") as T, attrs.float("max") as T);
} gv, xv => if xv >= lo && xv <= hi { gv } else { 0.0 });

/// Gradient of `clamp`: `grad` where `min <= x <= max`, else 0.
pub static CLAMP_BACKWARD: OpDef = OpDef {
    name: "clamp_backward",
    kind: OpKind::Elementwise,
    doc: "gradient of clamp: grad where min <= x <= max, else 0",
    inputs: &[ArgSpec::req("grad"), ArgSpec::req("x")],
    outputs: &["out"],
    attrs: CLAMP_ATTRS,
    infer: |ctx| {
        check_bounds(ctx.op, ctx.attrs)?;
        infer_grad_x(ctx)
    },
    forward: |ctx| {
        check_bounds(ctx.op, ctx.attrs)?;
        let (g, x, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape);
        Ok(vec![float_map2::<ClampBackwardBody>(ctx.op, g, x, s, ctx.attrs)?])
    },
    // Linear in grad; the mask is piecewise constant in x.
    backward: Some(|e, c| {
        let gg = grad0(c);
        let attrs = attrs_of(
            &CLAMP_BACKWARD,
            &[("min", Attr::Float(c.attrs.float("min"))), ("max", Attr::Float(c.attrs.float("max")))],
        )?;
        Ok(vec![Some(GradVal::Dense(e.op(&CLAMP_BACKWARD, &[gg, c.inputs[1]], attrs)?)), None])
    }),
    pure: true,
    pointwise: Some(&ClampBackwardBody::POINTWISE),
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[
    &NEG,
    &EXP,
    &CAST,
    &ABS,
    &LOG,
    &LOG1P,
    &SQRT,
    &RSQRT,
    &RECIPROCAL,
    &SIN,
    &COS,
    &SIGN,
    &FLOOR,
    &CEIL,
    &ROUND,
    &CLAMP,
    &CLAMP_BACKWARD,
];

/// Defines `Tensor` methods for attribute-free unary ops.
macro_rules! unary_methods {
    ($($(#[$m:meta])* $fn_name:ident => $OP:ident;)*) => {
        impl Tensor {
            $(
                $(#[$m])*
                pub fn $fn_name(&self) -> Result<Tensor> {
                    call1(&$OP, &[self], &Attrs::none())
                }
            )*
        }
    };
}

unary_methods! {
    /// `|self|` (numeric dtypes).
    abs => ABS;
    /// Natural logarithm.
    log => LOG;
    /// `ln(1 + self)`.
    log1p => LOG1P;
    /// Square root.
    sqrt => SQRT;
    /// `1 / sqrt(self)`.
    rsqrt => RSQRT;
    /// `1 / self`.
    reciprocal => RECIPROCAL;
    /// Sine.
    sin => SIN;
    /// Cosine.
    cos => COS;
    /// -1, 0 or 1 by sign (numeric dtypes).
    sign => SIGN;
    /// Rounds down.
    floor => FLOOR;
    /// Rounds up.
    ceil => CEIL;
    /// Rounds to nearest, halves to even.
    round => ROUND;
}

impl Tensor {
    /// Limits elements to `[min, max]` (pass `f64::NEG_INFINITY` / `f64::INFINITY` for one side only).
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        call1(&CLAMP, &[self], &attrs_of(&CLAMP, &[("min", Attr::Float(min)), ("max", Attr::Float(max))])?)
    }
}
