//! Activation functions (relu, leaky_relu, gelu, silu, softplus, sigmoid, tanh), their gradient kernels, and erf.

use super::Val;
use super::binary::MUL;
use super::dispatch::{attrs_of, call1};
use super::pointwise::{BinaryBody, Pointwise, UnaryBody, float_map1, float_map2};
use super::unary::{infer_float, infer_grad_x, infer_numeric};
use super::util::emit0;
use super::{ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, GradCtx, GradVal, InferCtx, Meta, OpDef, OpKind};
use crate::backend::cpu::elementwise::map_unary;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::{binary_body, unary_body};

// erf/erfc: our own piecewise polynomial fits (Chebyshev fits made with mpmath's `chebyfit`
// at 40 digits, converted to monomial form; largest fit error in brackets):
//   A: erf(x)/x as a polynomial in t = x² for |x| < 1           [f64 7e-18, f32 1e-9]
//   B: erfcx(x) = e^{x²}·erfc(x) as a polynomial in x − 2, 1 ≤ x < 3 [f64 2e-18, f32 2e-9]
//   D: √π·x·erfcx(x) as a polynomial in v = 1/x², x ≥ 3          [f64 9e-18, f32 3e-9]
// erfc(x) = e^{−x²}·(fit) then has no cancellation; e^{−x²} is formed from an exactly squared
// head of x so that the rounding of x² (×x² in relative terms) does not enter. Measured against
// mpmath: erf within 2.4e-16 relative, erfc within 1.0e-15 relative over [0, 27] (f64).
// Coefficients are listed highest power first (Horner order).
const ERF_A64: [f64; 12] = [
    -7.795898827002142e-10,
    1.3720064546777686e-08,
    -1.6208483801871705e-07,
    1.6447424703317362e-06,
    -1.492473690741966e-05,
    0.00012055294904839707,
    -0.0008548325975389692,
    0.0052239776071164225,
    -0.02686617064323777,
    0.11283791670945006,
    -0.37612638903183543,
    std::f64::consts::FRAC_2_SQRT_PI,
];
const ERF_B64: [f64; 21] = [
    5.783119916201868e-12,
    -2.546926012237769e-11,
    7.995467612512789e-11,
    -3.359126377412497e-10,
    1.4527765170546272e-09,
    -5.893398521091131e-09,
    2.333611087819345e-08,
    -9.072562511997276e-08,
    3.448569413805109e-07,
    -1.2795286873189962e-06,
    4.628174864564031e-06,
    -1.6293717067101197e-05,
    5.572831533966739e-05,
    -0.00018477836756841212,
    0.000592469995322701,
    -0.0018316642756976823,
    0.0054407385374726875,
    -0.015460637764292899,
    0.04180275260352654,
    -0.10679646185348957,
    0.25539567631050575,
];
const ERF_D64: [f64; 18] = [
    -3877817288.136965,
    4238667767.980423,
    -2174313235.8110948,
    700130891.8812423,
    -160364651.08516285,
    28266016.36028651,
    -4094191.9104073653,
    521519.1035807143,
    -62998.61777208155,
    7794.140037971545,
    -1053.0101119630435,
    162.3772307940748,
    -29.530731324044037,
    6.562495956101495,
    -1.874999980600589,
    0.7499999999504463,
    -0.4999999999999494,
    1.0,
];
const ERF_A32: [f32; 7] = [
    7.875875e-05,
    -0.00080168643,
    0.0051890872,
    -0.026854211,
    0.11283594,
    -0.37612626,
    std::f32::consts::FRAC_2_SQRT_PI,
];
const ERF_B32: [f32; 11] = [
    5.6995855e-06,
    -2.0292764e-05,
    5.461563e-05,
    -0.0001806179,
    0.0005929653,
    -0.0018335178,
    0.005440649,
    -0.015460304,
    0.041802756,
    -0.10679648,
    0.25539568,
];
const ERF_D32: [f32; 7] = [26.69552, -16.590706, 5.783946, -1.8482531, 0.7495376, -0.4999969, 1.0];

/// `e^{−x²}` with `x = h + l`, `h` short enough that `h²` is exact: `e^{−h²}·e^{−l(x+h)}`.
fn exp_neg_sq64(x: f64) -> f64 {
    let h = f64::from_bits(x.to_bits() & 0xFFFF_FFFF_E000_0000);
    (-h * h).exp() * (-(x - h) * (x + h)).exp()
}

fn exp_neg_sq32(x: f32) -> f32 {
    let h = f32::from_bits(x.to_bits() & 0xFFFF_F000);
    (-h * h).exp() * (-(x - h) * (x + h)).exp()
}

/// Defines erf and erfc for one float type from its coefficient tables.
macro_rules! erf_fns {
    ($t:ident, $erf:ident, $erfc:ident, $pos:ident, $A:ident, $B:ident, $D:ident, $exp_neg_sq:ident, $cut:expr) => {
        fn $pos(x: $t) -> $t {
            let poly = |c: &[$t], v: $t| c.iter().fold(0.0, |acc: $t, &k| acc * v + k);
            if x < 1.0 {
                1.0 - x * poly(&$A, x * x)
            } else if x < 3.0 {
                $exp_neg_sq(x) * poly(&$B, x - 2.0)
            } else if x < $cut {
                // 1/(x√π) · D(1/x²)
                $exp_neg_sq(x) * (0.5 * std::$t::consts::FRAC_2_SQRT_PI / x) * poly(&$D, 1.0 / (x * x))
            } else if x.is_nan() {
                x
            } else {
                0.0 // below the smallest subnormal
            }
        }

        /// The error function `erf(x) = 2/√π ∫₀ˣ e^{−t²} dt`.
        pub fn $erf(x: $t) -> $t {
            let a = x.abs();
            let poly = |c: &[$t], v: $t| c.iter().fold(0.0, |acc: $t, &k| acc * v + k);
            let r = if a < 1.0 { a * poly(&$A, a * a) } else { 1.0 - $pos(a) };
            r.copysign(x)
        }

        /// The complementary error function `1 − erf(x)`, accurate in relative terms for large x.
        pub fn $erfc(x: $t) -> $t {
            if x < 0.0 { 2.0 - $pos(-x) } else { $pos(x) }
        }
    };
}

erf_fns!(f64, erf_f64, erfc_f64, erfc_pos64, ERF_A64, ERF_B64, ERF_D64, exp_neg_sq64, 27.3);
erf_fns!(f32, erf_f32, erfc_f32, erfc_pos32, ERF_A32, ERF_B32, ERF_D32, exp_neg_sq32, 10.1);

/// The scalar activation math, for the compute types f32 and f64 (f16/bf16 compute in f32).
trait Act: Copy {
    fn sigmoid(self) -> Self;
    fn gelu_erf(self) -> Self;
    fn gelu_erf_grad(self) -> Self;
    fn gelu_tanh(self) -> Self;
    fn gelu_tanh_grad(self) -> Self;
    fn silu(self) -> Self;
    fn silu_grad(self) -> Self;
    fn softplus(self, beta: Self, threshold: Self) -> Self;
    fn softplus_grad(self, beta: Self, threshold: Self) -> Self;
}

macro_rules! impl_act {
    ($t:ident, $erfc:ident) => {
        impl Act for $t {
            #[inline(always)]
            fn sigmoid(self) -> $t {
                // Never exponentiates a positive number, so no overflow to inf/inf.
                if self >= 0.0 {
                    1.0 / (1.0 + (-self).exp())
                } else {
                    let e = self.exp();
                    e / (1.0 + e)
                }
            }
            #[inline(always)]
            fn gelu_erf(self) -> $t {
                // x·Φ(x) with Φ(x) = erfc(−x/√2)/2: keeps relative accuracy in the negative tail.
                0.5 * self * $erfc(-self * std::$t::consts::FRAC_1_SQRT_2)
            }
            #[inline(always)]
            fn gelu_erf_grad(self) -> $t {
                // Φ(x) + x·φ(x)
                const INV_SQRT_2PI: $t = 0.5 * std::$t::consts::FRAC_2_SQRT_PI * std::$t::consts::FRAC_1_SQRT_2;
                0.5 * $erfc(-self * std::$t::consts::FRAC_1_SQRT_2) + self * INV_SQRT_2PI * (-0.5 * self * self).exp()
            }
            #[inline(always)]
            fn gelu_tanh(self) -> $t {
                const K: $t = std::$t::consts::FRAC_2_SQRT_PI * std::$t::consts::FRAC_1_SQRT_2; // √(2/π)
                let inner = K * (self + 0.044715 * self * self * self);
                0.5 * self * (1.0 + inner.tanh())
            }
            #[inline(always)]
            fn gelu_tanh_grad(self) -> $t {
                const K: $t = std::$t::consts::FRAC_2_SQRT_PI * std::$t::consts::FRAC_1_SQRT_2;
                let x2 = self * self;
                let t = (K * (self + 0.044715 * x2 * self)).tanh();
                0.5 * (1.0 + t) + 0.5 * self * (1.0 - t * t) * K * (1.0 + 3.0 * 0.044715 * x2)
            }
            #[inline(always)]
            fn silu(self) -> $t {
                self * self.sigmoid()
            }
            #[inline(always)]
            fn silu_grad(self) -> $t {
                let s = self.sigmoid();
                s * (1.0 + self * (1.0 - s))
            }
            #[inline(always)]
            fn softplus(self, beta: $t, threshold: $t) -> $t {
                let bx = self * beta;
                if bx > threshold { self } else { bx.exp().ln_1p() / beta }
            }
            #[inline(always)]
            fn softplus_grad(self, beta: $t, threshold: $t) -> $t {
                let bx = self * beta;
                if bx > threshold { 1.0 } else { bx.sigmoid() }
            }
        }
    };
}

impl_act!(f32, erfc_f32);
impl_act!(f64, erfc_f64);

const X: &[ArgSpec] = &[ArgSpec::req("x")];
const GX: &[ArgSpec] = &[ArgSpec::req("grad"), ArgSpec::req("x")];

fn grad0(c: &GradCtx) -> Val {
    c.grads[0].expect("activations have one output")
}

fn dense(v: Val) -> Result<Vec<Option<GradVal>>> {
    Ok(vec![Some(GradVal::Dense(v))])
}

unary_body!(TanhBody(attrs, T) {} v => v.tanh());

/// `tanh(x)`.
pub static TANH: OpDef = OpDef {
    name: "tanh",
    kind: OpKind::Elementwise,
    doc: "hyperbolic tangent",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_float,
    forward: |ctx| Ok(vec![float_map1::<TanhBody>(ctx.op, &ctx.inputs[0], ctx.attrs)?]),
    backward: Some(|e, c| {
        // (1 − out²)·g
        let out = c.outputs[0];
        let one = e.scalar(1.0, e.meta(out).dtype)?;
        let sq = emit0(e, &MUL, &[out, out])?;
        let d = emit0(e, &super::binary::SUB, &[one, sq])?;
        dense(emit0(e, &MUL, &[grad0(c), d])?)
    }),
    pure: true,
    pointwise: Some(&TanhBody::POINTWISE),
};

unary_body!(SigmoidBody(attrs, T) {} v => v.sigmoid());

/// `1 / (1 + e^{−x})`.
pub static SIGMOID: OpDef = OpDef {
    name: "sigmoid",
    kind: OpKind::Elementwise,
    doc: "logistic sigmoid 1/(1+e^-x), overflow-free",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_float,
    forward: |ctx| Ok(vec![float_map1::<SigmoidBody>(ctx.op, &ctx.inputs[0], ctx.attrs)?]),
    backward: Some(|e, c| {
        // out·(1 − out)·g
        let out = c.outputs[0];
        let one = e.scalar(1.0, e.meta(out).dtype)?;
        let rest = emit0(e, &super::binary::SUB, &[one, out])?;
        let d = emit0(e, &MUL, &[out, rest])?;
        dense(emit0(e, &MUL, &[grad0(c), d])?)
    }),
    pure: true,
    pointwise: Some(&SigmoidBody::POINTWISE),
};

unary_body!(ReluBody(attrs, T) {} v => if v < 0.0 { 0.0 } else { v });

/// `max(x, 0)`.
pub static RELU: OpDef = OpDef {
    name: "relu",
    kind: OpKind::Elementwise,
    doc: "max(x, 0) (numeric dtypes; NaN propagates); gradient 0 at x <= 0",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_numeric,
    forward: |ctx| {
        let x = &ctx.inputs[0];
        Ok(vec![match x.dtype() {
            DType::I32 => map_unary::<i32, i32>(x, |v| v.max(0))?,
            DType::I64 => map_unary::<i64, i64>(x, |v| v.max(0))?,
            DType::U8 => map_unary::<u8, u8>(x, |v| v)?,
            _ => float_map1::<ReluBody>(ctx.op, x, ctx.attrs)?,
        }])
    },
    // Masked by the output, which is > 0 exactly where x is (NaN and −0 stay masked): a
    // graph then keeps relu's output for the backward pass instead of the product before it,
    // which lets the epilogue pass run relu inside that product.
    backward: Some(|e, c| dense(emit0(e, &RELU_BACKWARD, &[grad0(c), c.outputs[0]])?)),
    pure: true,
    pointwise: Some(&ReluBody::POINTWISE),
};

binary_body!(ReluBackwardBody(attrs, T) {} gv, xv => if xv > 0.0 { gv } else { 0.0 });

/// Gradient of relu.
pub static RELU_BACKWARD: OpDef = OpDef {
    name: "relu_backward",
    kind: OpKind::Elementwise,
    doc: "gradient of relu: grad where x > 0, else 0 (x may be relu's input or its output)",
    inputs: GX,
    outputs: &["out"],
    attrs: &[],
    infer: infer_grad_x,
    forward: |ctx| {
        let (g, x, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape);
        Ok(vec![float_map2::<ReluBackwardBody>(ctx.op, g, x, s, ctx.attrs)?])
    },
    // Linear in grad; the mask is piecewise constant in x.
    backward: Some(|e, c| Ok(vec![Some(GradVal::Dense(emit0(e, &RELU_BACKWARD, &[grad0(c), c.inputs[1]])?)), None])),
    pure: true,
    pointwise: Some(&ReluBackwardBody::POINTWISE),
};

const SLOPE: &[AttrSpec] =
    &[AttrSpec::with_default("negative_slope", AttrKind::Float, AttrDefault::Float(0.01), "factor for x < 0")];

// The slope stays f64 and converts inside the formula, exactly as the op always computed it.
unary_body!(LeakyReluBody(attrs, T) {
    let k = attrs.float("negative_slope");
} v => if v > 0.0 { v } else { v * k as T });

/// `x` for x > 0, else `negative_slope · x`.
pub static LEAKY_RELU: OpDef = OpDef {
    name: "leaky_relu",
    kind: OpKind::Elementwise,
    doc: "x for x > 0, negative_slope * x otherwise",
    inputs: X,
    outputs: &["out"],
    attrs: SLOPE,
    infer: infer_float,
    forward: |ctx| Ok(vec![float_map1::<LeakyReluBody>(ctx.op, &ctx.inputs[0], ctx.attrs)?]),
    backward: Some(|e, c| {
        let attrs =
            attrs_of(&LEAKY_RELU_BACKWARD, &[("negative_slope", Attr::Float(c.attrs.float("negative_slope")))])?;
        dense(e.op(&LEAKY_RELU_BACKWARD, &[grad0(c), c.inputs[0]], attrs)?)
    }),
    pure: true,
    pointwise: Some(&LeakyReluBody::POINTWISE),
};

binary_body!(LeakyReluBackwardBody(attrs, T) {
    let k = attrs.float("negative_slope");
} gv, xv => if xv > 0.0 { gv } else { gv * k as T });

/// Gradient of leaky_relu.
pub static LEAKY_RELU_BACKWARD: OpDef = OpDef {
    name: "leaky_relu_backward",
    kind: OpKind::Elementwise,
    doc: "gradient of leaky_relu: grad where x > 0, negative_slope * grad otherwise",
    inputs: GX,
    outputs: &["out"],
    attrs: SLOPE,
    infer: infer_grad_x,
    forward: |ctx| {
        let (g, x, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape);
        Ok(vec![float_map2::<LeakyReluBackwardBody>(ctx.op, g, x, s, ctx.attrs)?])
    },
    backward: Some(|e, c| {
        let attrs =
            attrs_of(&LEAKY_RELU_BACKWARD, &[("negative_slope", Attr::Float(c.attrs.float("negative_slope")))])?;
        Ok(vec![Some(GradVal::Dense(e.op(&LEAKY_RELU_BACKWARD, &[grad0(c), c.inputs[1]], attrs)?)), None])
    }),
    pure: true,
    pointwise: Some(&LeakyReluBackwardBody::POINTWISE),
};

const APPROXIMATE: &[AttrSpec] = &[AttrSpec::with_default(
    "approximate",
    AttrKind::Str,
    AttrDefault::Str("none"),
    "\"none\" (exact, erf) or \"tanh\"",
)];

/// True for the tanh form; an error for anything but "none" and "tanh".
fn tanh_form(op: &str, attrs: &Attrs) -> Result<bool> {
    match attrs.str("approximate") {
        "none" => Ok(false),
        "tanh" => Ok(true),
        other => Err(Error::invalid(
            "approximate",
            format!("{op}: approximate must be \"none\" or \"tanh\", given {other:?}"),
        )),
    }
}

fn approximate_attrs(op: &'static OpDef, c: &GradCtx) -> Result<Attrs> {
    attrs_of(op, &[("approximate", Attr::Str(c.attrs.str("approximate").to_string()))])
}

unary_body!(GeluErfBody(attrs, T) {} v => v.gelu_erf());
unary_body!(GeluTanhBody(attrs, T) {} v => v.gelu_tanh());
binary_body!(GeluErfBackwardBody(attrs, T) {} gv, xv => gv * xv.gelu_erf_grad());
binary_body!(GeluTanhBackwardBody(attrs, T) {} gv, xv => gv * xv.gelu_tanh_grad());

/// The chunk body of one of two forms, chosen by the `approximate` attribute once per chunk
/// (validated by inference: anything but "tanh" here is "none").
macro_rules! by_form {
    ($arity:expr, $Erf:ident, $Tanh:ident) => {
        Pointwise {
            arity: $arity,
            f32: |out, ins, attrs| {
                let f = if attrs.str("approximate") == "tanh" { $Tanh::POINTWISE.f32 } else { $Erf::POINTWISE.f32 };
                f(out, ins, attrs)
            },
            f64: |out, ins, attrs| {
                let f = if attrs.str("approximate") == "tanh" { $Tanh::POINTWISE.f64 } else { $Erf::POINTWISE.f64 };
                f(out, ins, attrs)
            },
            f32_in_place: |out, other, out_first, attrs| {
                let pw = if attrs.str("approximate") == "tanh" { &$Tanh::POINTWISE } else { &$Erf::POINTWISE };
                (pw.f32_in_place)(out, other, out_first, attrs)
            },
            f64_in_place: |out, other, out_first, attrs| {
                let pw = if attrs.str("approximate") == "tanh" { &$Tanh::POINTWISE } else { &$Erf::POINTWISE };
                (pw.f64_in_place)(out, other, out_first, attrs)
            },
        }
    };
}

static GELU_POINTWISE: Pointwise = by_form!(1, GeluErfBody, GeluTanhBody);
static GELU_BACKWARD_POINTWISE: Pointwise = by_form!(2, GeluErfBackwardBody, GeluTanhBackwardBody);

/// Gaussian error linear unit.
pub static GELU: OpDef = OpDef {
    name: "gelu",
    kind: OpKind::Elementwise,
    doc: "x * Phi(x) (approximate=\"none\", via erf) or 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) (\"tanh\")",
    inputs: X,
    outputs: &["out"],
    attrs: APPROXIMATE,
    infer: |ctx| {
        tanh_form(ctx.op, ctx.attrs)?;
        infer_float(ctx)
    },
    forward: |ctx| {
        let x = &ctx.inputs[0];
        Ok(vec![if tanh_form(ctx.op, ctx.attrs)? {
            float_map1::<GeluTanhBody>(ctx.op, x, ctx.attrs)?
        } else {
            float_map1::<GeluErfBody>(ctx.op, x, ctx.attrs)?
        }])
    },
    backward: Some(|e, c| {
        dense(e.op(&GELU_BACKWARD, &[grad0(c), c.inputs[0]], approximate_attrs(&GELU_BACKWARD, c)?)?)
    }),
    pure: true,
    pointwise: Some(&GELU_POINTWISE),
};

/// Gradient of gelu (no second-order rule).
pub static GELU_BACKWARD: OpDef = OpDef {
    name: "gelu_backward",
    kind: OpKind::Elementwise,
    doc: "gradient of gelu: grad * gelu'(x)",
    inputs: GX,
    outputs: &["out"],
    attrs: APPROXIMATE,
    infer: |ctx| {
        tanh_form(ctx.op, ctx.attrs)?;
        infer_grad_x(ctx)
    },
    forward: |ctx| {
        let (g, x, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape);
        Ok(vec![if tanh_form(ctx.op, ctx.attrs)? {
            float_map2::<GeluTanhBackwardBody>(ctx.op, g, x, s, ctx.attrs)?
        } else {
            float_map2::<GeluErfBackwardBody>(ctx.op, g, x, s, ctx.attrs)?
        }])
    },
    backward: None,
    pure: true,
    pointwise: Some(&GELU_BACKWARD_POINTWISE),
};

unary_body!(SiluBody(attrs, T) {} v => v.silu());

/// `x · sigmoid(x)`.
pub static SILU: OpDef = OpDef {
    name: "silu",
    kind: OpKind::Elementwise,
    doc: "x * sigmoid(x) (swish)",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: infer_float,
    forward: |ctx| Ok(vec![float_map1::<SiluBody>(ctx.op, &ctx.inputs[0], ctx.attrs)?]),
    backward: Some(|e, c| dense(emit0(e, &SILU_BACKWARD, &[grad0(c), c.inputs[0]])?)),
    pure: true,
    pointwise: Some(&SiluBody::POINTWISE),
};

binary_body!(SiluBackwardBody(attrs, T) {} gv, xv => gv * xv.silu_grad());

/// Gradient of silu (no second-order rule).
pub static SILU_BACKWARD: OpDef = OpDef {
    name: "silu_backward",
    kind: OpKind::Elementwise,
    doc: "gradient of silu: grad * s(1 + x(1 - s)), s = sigmoid(x)",
    inputs: GX,
    outputs: &["out"],
    attrs: &[],
    infer: infer_grad_x,
    forward: |ctx| {
        let (g, x, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape);
        Ok(vec![float_map2::<SiluBackwardBody>(ctx.op, g, x, s, ctx.attrs)?])
    },
    backward: None,
    pure: true,
    pointwise: Some(&SiluBackwardBody::POINTWISE),
};

const SOFTPLUS_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("beta", AttrKind::Float, AttrDefault::Float(1.0), "sharpness (nonzero)"),
    AttrSpec::with_default(
        "threshold",
        AttrKind::Float,
        AttrDefault::Float(20.0),
        "above beta*x > threshold the result is x",
    ),
];

fn softplus_params(op: &str, attrs: &Attrs) -> Result<(f64, f64)> {
    let (beta, threshold) = (attrs.float("beta"), attrs.float("threshold"));
    if beta == 0.0 || !beta.is_finite() {
        return Err(Error::invalid("beta", format!("{op}: beta must be finite and nonzero, given {beta}")));
    }
    if threshold.is_nan() {
        return Err(Error::invalid("threshold", format!("{op}: threshold is NaN")));
    }
    Ok((beta, threshold))
}

fn infer_softplus(ctx: &InferCtx) -> Result<Vec<Meta>> {
    softplus_params(ctx.op, ctx.attrs)?;
    if ctx.inputs.len() == 2 { infer_grad_x(ctx) } else { infer_float(ctx) }
}

fn softplus_attrs(op: &'static OpDef, c: &GradCtx) -> Result<Attrs> {
    attrs_of(
        op,
        &[("beta", Attr::Float(c.attrs.float("beta"))), ("threshold", Attr::Float(c.attrs.float("threshold")))],
    )
}

unary_body!(SoftplusBody(attrs, T) {
    let (beta, th) = (attrs.float("beta") as T, attrs.float("threshold") as T);
} v => v.softplus(beta, th));
binary_body!(SoftplusBackwardBody(attrs, T) {
    let (beta, th) = (attrs.float("beta") as T, attrs.float("threshold") as T);
} gv, xv => gv * xv.softplus_grad(beta, th));

/// `ln(1 + e^{βx})/β`, linear above the threshold (as PyTorch).
pub static SOFTPLUS: OpDef = OpDef {
    name: "softplus",
    kind: OpKind::Elementwise,
    doc: "ln(1 + e^(beta*x))/beta, or x where beta*x > threshold",
    inputs: X,
    outputs: &["out"],
    attrs: SOFTPLUS_ATTRS,
    infer: infer_softplus,
    forward: |ctx| {
        softplus_params(ctx.op, ctx.attrs)?;
        Ok(vec![float_map1::<SoftplusBody>(ctx.op, &ctx.inputs[0], ctx.attrs)?])
    },
    backward: Some(|e, c| {
        dense(e.op(&SOFTPLUS_BACKWARD, &[grad0(c), c.inputs[0]], softplus_attrs(&SOFTPLUS_BACKWARD, c)?)?)
    }),
    pure: true,
    pointwise: Some(&SoftplusBody::POINTWISE),
};

/// Gradient of softplus (no second-order rule).
pub static SOFTPLUS_BACKWARD: OpDef = OpDef {
    name: "softplus_backward",
    kind: OpKind::Elementwise,
    doc: "gradient of softplus: grad * sigmoid(beta*x), or grad where beta*x > threshold",
    inputs: GX,
    outputs: &["out"],
    attrs: SOFTPLUS_ATTRS,
    infer: infer_softplus,
    forward: |ctx| {
        softplus_params(ctx.op, ctx.attrs)?;
        let (g, x, s) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.outputs[0].shape);
        Ok(vec![float_map2::<SoftplusBackwardBody>(ctx.op, g, x, s, ctx.attrs)?])
    },
    backward: None,
    pure: true,
    pointwise: Some(&SoftplusBackwardBody::POINTWISE),
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[
    &TANH,
    &SIGMOID,
    &RELU,
    &RELU_BACKWARD,
    &LEAKY_RELU,
    &LEAKY_RELU_BACKWARD,
    &GELU,
    &GELU_BACKWARD,
    &SILU,
    &SILU_BACKWARD,
    &SOFTPLUS,
    &SOFTPLUS_BACKWARD,
];

impl Tensor {
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        call1(&TANH, &[self], &Attrs::none())
    }

    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Result<Tensor> {
        call1(&SIGMOID, &[self], &Attrs::none())
    }

    /// `max(self, 0)` (numeric dtypes).
    pub fn relu(&self) -> Result<Tensor> {
        call1(&RELU, &[self], &Attrs::none())
    }

    /// `self` where positive, `negative_slope · self` elsewhere.
    pub fn leaky_relu(&self, negative_slope: f64) -> Result<Tensor> {
        call1(&LEAKY_RELU, &[self], &attrs_of(&LEAKY_RELU, &[("negative_slope", Attr::Float(negative_slope))])?)
    }

    /// GELU: exact (erf) form, or the tanh approximation when `approximate` is true.
    pub fn gelu(&self, approximate: bool) -> Result<Tensor> {
        let mode = if approximate { "tanh" } else { "none" };
        call1(&GELU, &[self], &attrs_of(&GELU, &[("approximate", Attr::Str(mode.to_string()))])?)
    }

    /// `self · sigmoid(self)`.
    pub fn silu(&self) -> Result<Tensor> {
        call1(&SILU, &[self], &Attrs::none())
    }

    /// `ln(1 + e^{β·self})/β`, `self` where `β·self > threshold` (PyTorch defaults: 1, 20).
    pub fn softplus(&self, beta: f64, threshold: f64) -> Result<Tensor> {
        let attrs = attrs_of(&SOFTPLUS, &[("beta", Attr::Float(beta)), ("threshold", Attr::Float(threshold))])?;
        call1(&SOFTPLUS, &[self], &attrs)
    }
}
