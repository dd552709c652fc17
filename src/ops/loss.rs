//! Losses: mse, l1, cross_entropy, nll, binary_cross_entropy_with_logits.

use super::binary::unbroadcast;
use super::dispatch::{attrs_of, call1};
use super::reduce::{Real, compute_dtype, elems, fill_indexed, fill_rows, packed};
use super::util::{broadcast_shapes, emit0, one, require_float};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, Emitter, GradCtx, GradVal, InferCtx, Meta, OpDef, OpKind,
    Val,
};
use crate::backend::cpu::elementwise::new_host;
use crate::backend::cpu::reduce::sum_slice;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use rayon::prelude::*;

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

/// Runs `$body` with `$F` the compute type of `$dtype` (f64, else f32).
macro_rules! with_real {
    ($dtype:expr, $F:ident => $body:expr) => {
        match compute_dtype($dtype) {
            DType::F64 => {
                type $F = f64;
                $body
            }
            _ => {
                type $F = f32;
                $body
            }
        }
    };
}

/// How per-element (or per-sample) losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reduction {
    None,
    Mean,
    Sum,
}

const REDUCTION: AttrSpec = AttrSpec::with_default(
    "reduction",
    AttrKind::Str,
    AttrDefault::Str("mean"),
    "\"mean\", \"sum\" or \"none\" (per-element losses)",
);

fn reduction(op: &str, attrs: &Attrs) -> Result<Reduction> {
    match attrs.str("reduction") {
        "none" => Ok(Reduction::None),
        "mean" => Ok(Reduction::Mean),
        "sum" => Ok(Reduction::Sum),
        r => Err(Error::invalid(
            "reduction",
            format!("{op}: reduction must be \"mean\", \"sum\" or \"none\", given {r:?}"),
        )),
    }
}

/// The loss's output shape: `shape` for "none", else a scalar.
fn loss_shape(r: Reduction, shape: &[usize]) -> Vec<usize> {
    if r == Reduction::None { shape.to_vec() } else { Vec::new() }
}

/// Sums a slice in parallel when large.
fn total<F: Real>(v: &[F]) -> F {
    if v.len() < PARALLEL_THRESHOLD { sum_slice(v) } else { install(|| v.par_chunks(1 << 14).map(sum_slice).sum()) }
}

/// Combines per-element losses: as is ("none"), summed, or divided by `count` ("mean").
fn finish<F: Real>(losses: Vec<F>, shape: &[usize], r: Reduction, count: usize, dt: DType) -> Result<Tensor> {
    let t = match r {
        Reduction::None => Tensor::from_slice(&losses, shape)?,
        Reduction::Sum => Tensor::from_slice(&[total(&losses)], &[])?,
        Reduction::Mean => Tensor::from_slice(&[total(&losses) / F::from(count).expect("fits")], &[])?,
    };
    t.raw_cast(dt)
}

/// The per-element weight of an output gradient `g`: itself ("none"), or its one value,
/// divided by `count` for "mean".
fn grad_weights<F: Real>(g: &Tensor, r: Reduction, count: usize) -> Result<(Tensor, F)> {
    let g = packed(g, F::DTYPE)?;
    let scale = match r {
        Reduction::None => F::ONE,
        Reduction::Sum => elems::<F>(&g)?[0],
        Reduction::Mean => elems::<F>(&g)?[0] / F::from(count).expect("fits"),
    };
    Ok((g, scale))
}

// ---------------------------------------------------------------------------------------------
// mse / l1

const PAIR: &[ArgSpec] = &[ArgSpec::req("input"), ArgSpec::req("target")];
const REDUCTION_ONLY: &[AttrSpec] = &[REDUCTION];

fn infer_pair(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let (x, y) = (&ctx.inputs[0], &ctx.inputs[1]);
    require_float(ctx.op, "input", x.dtype)?;
    if y.dtype != x.dtype {
        return Err(Error::InvalidDtype {
            arg: "target",
            msg: format!("{}: target must be {}, given {}", ctx.op, x.dtype, y.dtype),
        });
    }
    if y.shape != x.shape {
        return Err(Error::shape(
            "target",
            format!("{}: target shape {:?} differs from input's {:?}", ctx.op, y.shape, x.shape),
        ));
    }
    let r = reduction(ctx.op, ctx.attrs)?;
    one(loss_shape(r, &x.shape), x.dtype)
}

fn pair_loss<F: Real>(x: &Tensor, y: &Tensor, r: Reduction, f: impl Fn(F) -> F + Sync + Send) -> Result<Tensor> {
    let (xp, yp) = (packed(x, F::DTYPE)?, packed(y, F::DTYPE)?);
    let (xs, ys) = (elems::<F>(&xp)?, elems::<F>(&yp)?);
    let mut losses = vec![F::ZERO; xs.len()];
    fill_indexed(&mut losses, |i| f(xs[i] - ys[i]));
    finish(losses, x.shape(), r, xs.len(), x.dtype())
}

/// Mean squared error.
pub static MSE_LOSS: OpDef = OpDef {
    name: "mse_loss",
    kind: OpKind::Reduce,
    doc: "(input - target)^2, reduced by `reduction`",
    inputs: PAIR,
    outputs: &["loss"],
    attrs: REDUCTION_ONLY,
    infer: infer_pair,
    forward: |ctx| {
        let r = reduction(ctx.op, ctx.attrs)?;
        let (x, y) = (&ctx.inputs[0], &ctx.inputs[1]);
        Ok(vec![with_real!(x.dtype(), F => pair_loss::<F>(x, y, r, |d| d * d)?)])
    },
    backward: Some(|e, c| {
        // d/dinput = 2 (input − target) · g (/ n for "mean"); the target gets the negation.
        let (x, y, g) = (c.inputs[0], c.inputs[1], c.grads[0].expect("one output"));
        let m = e.meta(x);
        let coef = if reduction("mse_loss", c.attrs)? == Reduction::Mean { 2.0 / m.numel() as f64 } else { 2.0 };
        let d = emit0(e, &super::binary::SUB, &[x, y])?;
        let k = e.scalar(coef, m.dtype)?;
        let d = emit0(e, &super::binary::MUL, &[d, k])?;
        let gx = emit0(e, &super::binary::MUL, &[d, g])?;
        let gy = emit0(e, &super::unary::NEG, &[gx])?;
        Ok(vec![dense(gx), dense(gy)])
    }),
    pure: true,
    pointwise: None,
};

/// Mean absolute error.
pub static L1_LOSS: OpDef = OpDef {
    name: "l1_loss",
    kind: OpKind::Reduce,
    doc: "|input - target|, reduced by `reduction`",
    inputs: PAIR,
    outputs: &["loss"],
    attrs: REDUCTION_ONLY,
    infer: infer_pair,
    forward: |ctx| {
        let r = reduction(ctx.op, ctx.attrs)?;
        let (x, y) = (&ctx.inputs[0], &ctx.inputs[1]);
        Ok(vec![with_real!(x.dtype(), F => pair_loss::<F>(x, y, r, |d| d.abs())?)])
    },
    backward: Some(|e, c| {
        let (x, y, g) = (c.inputs[0], c.inputs[1], c.grads[0].expect("one output"));
        let gx = e.op(&L1_LOSS_BACKWARD, &[x, y, g], c.attrs.clone())?;
        let gy = emit0(e, &super::unary::NEG, &[gx])?;
        Ok(vec![dense(gx), dense(gy)])
    }),
    pure: true,
    pointwise: None,
};

fn l1_grad<F: Real>(x: &Tensor, y: &Tensor, g: &Tensor, r: Reduction) -> Result<Tensor> {
    let (xp, yp) = (packed(x, F::DTYPE)?, packed(y, F::DTYPE)?);
    let (xs, ys) = (elems::<F>(&xp)?, elems::<F>(&yp)?);
    let (g, scale) = grad_weights::<F>(g, r, xs.len())?;
    let gs = elems::<F>(&g)?;
    new_host::<F>(x.shape(), |o| {
        fill_indexed(o, |i| {
            let d = xs[i] - ys[i];
            // sign(0) = 0, as PyTorch; NaN stays NaN.
            let s = if d > F::ZERO {
                F::ONE
            } else if d < F::ZERO {
                -F::ONE
            } else if d.is_nan() {
                d
            } else {
                F::ZERO
            };
            let w = if r == Reduction::None { gs[i] } else { scale };
            s * w
        })
    })?
    .raw_cast(x.dtype())
}

/// Gradient of l1_loss with respect to the input.
pub static L1_LOSS_BACKWARD: OpDef = OpDef {
    name: "l1_loss_backward",
    kind: OpKind::Elementwise,
    doc: "gradient of l1_loss for the input: sign(input - target) · g (/ n for \"mean\")",
    inputs: &[ArgSpec::req("input"), ArgSpec::req("target"), ArgSpec::req("g")],
    outputs: &["grad_input"],
    attrs: REDUCTION_ONLY,
    infer: |ctx| {
        let loss = infer_pair(ctx)?;
        let g = &ctx.inputs[2];
        if g.shape != loss[0].shape || g.dtype != loss[0].dtype {
            return Err(Error::shape("g", format!("{}: g must be {:?} {}", ctx.op, loss[0].shape, loss[0].dtype)));
        }
        one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype)
    },
    forward: |ctx| {
        let r = reduction(ctx.op, ctx.attrs)?;
        let i = ctx.inputs;
        Ok(vec![with_real!(i[0].dtype(), F => l1_grad::<F>(&i[0], &i[1], &i[2], r)?)])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// cross_entropy / nll_loss

const CE_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default(
        "label_smoothing",
        AttrKind::Float,
        AttrDefault::Float(0.0),
        "mass spread uniformly over the classes, in [0, 1]",
    ),
    AttrSpec::with_default(
        "ignore_index",
        AttrKind::Int,
        AttrDefault::Int(-100),
        "target value whose samples are ignored (and left out of the mean)",
    ),
    REDUCTION,
];

const NLL_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default(
        "ignore_index",
        AttrKind::Int,
        AttrDefault::Int(-100),
        "target value whose samples are ignored (and left out of the mean)",
    ),
    REDUCTION,
];

/// The class layout of scores [N, C, d...] (or [C]): N, C and S = Π d.
#[derive(Clone, Copy)]
struct Classes {
    n: usize,
    c: usize,
    s: usize,
}

impl Classes {
    fn of(shape: &[usize]) -> Classes {
        if shape.len() == 1 {
            Classes { n: 1, c: shape[0], s: 1 }
        } else {
            Classes { n: shape[0], c: shape[1], s: shape[2..].iter().product() }
        }
    }
}

/// Checks scores (float, [N, C, d...] or [C]) against class-index targets ([N, d...] or []);
/// returns the per-sample loss shape (the target's).
fn check_classes(ctx: &InferCtx) -> Result<Vec<usize>> {
    let (x, t) = (&ctx.inputs[0], &ctx.inputs[1]);
    require_float(ctx.op, "input", x.dtype)?;
    if x.shape.is_empty() {
        return Err(Error::shape("input", format!("{}: input must be [N, C, ...] or [C], given a scalar", ctx.op)));
    }
    if !matches!(t.dtype, DType::I64 | DType::I32) {
        return Err(Error::InvalidDtype {
            arg: "target",
            msg: format!("{}: target must hold class indices (i64 or i32), given {}", ctx.op, t.dtype),
        });
    }
    let expect: Vec<usize> = if x.shape.len() == 1 {
        Vec::new()
    } else {
        std::iter::once(x.shape[0]).chain(x.shape[2..].iter().copied()).collect()
    };
    if t.shape != expect {
        return Err(Error::shape(
            "target",
            format!("{}: target must have shape {expect:?} for input {:?}, given {:?}", ctx.op, x.shape, t.shape),
        ));
    }
    reduction(ctx.op, ctx.attrs)?;
    Ok(expect)
}

fn infer_classes(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let shape = check_classes(ctx)?;
    if ctx.op == "cross_entropy" || ctx.op == "cross_entropy_backward" {
        let ls = ctx.attrs.float("label_smoothing");
        if !(0.0..=1.0).contains(&ls) {
            return Err(Error::range(
                "label_smoothing",
                format!("{}: label_smoothing must be in [0, 1], given {ls}", ctx.op),
            ));
        }
    }
    one(loss_shape(reduction(ctx.op, ctx.attrs)?, &shape), ctx.inputs[0].dtype)
}

/// The targets as i64, checked to be a class or `ignore_index`; also the count of kept samples.
fn class_targets(op: &str, t: &Tensor, c: usize, ignore: i64) -> Result<(Vec<i64>, usize)> {
    let v = t.raw_cast(DType::I64)?.to_vec::<i64>()?;
    let mut kept = 0;
    for (i, &k) in v.iter().enumerate() {
        if k == ignore {
            continue;
        }
        if k < 0 || k as usize >= c {
            return Err(Error::range(
                "target",
                format!("{op}: target {k} at sample {i} is not a class in 0..{c} (nor ignore_index {ignore})"),
            ));
        }
        kept += 1;
    }
    Ok((v, kept))
}

/// Per-sample cross-entropy of scores `xs` laid out as [N, C, S]: `f(class j value, ...)`.
/// Samples are numbered n·S + s; class j of sample (n, s) is at (n·C + j)·S + s.
fn ce_losses<F: Real>(xs: &[F], l: Classes, ts: &[i64], ignore: i64, smoothing: f64, log_probs: bool) -> Vec<F> {
    let (c, s) = (l.c, l.s);
    let eps = F::from(smoothing).expect("fits");
    let cf = F::from(c).expect("fits");
    let mut losses = vec![F::ZERO; l.n * s];
    fill_rows(&mut losses, s.max(1), |n, row| {
        for (k, y) in row.iter_mut().enumerate() {
            let t = ts[n * s + k];
            if t == ignore {
                *y = F::ZERO;
                continue;
            }
            let at = |j: usize| xs[(n * c + j) * s + k];
            if log_probs {
                *y = -at(t as usize);
                continue;
            }
            let m = (0..c).fold(F::neg_infinity(), |m, j| m.max(at(j)));
            let lse = m + (0..c).fold(F::ZERO, |a, j| a + (at(j) - m).exp()).ln();
            // (1-ε)(lse − x_t) + ε (lse − mean_j x_j)
            let mut loss = (F::ONE - eps) * (lse - at(t as usize));
            if smoothing > 0.0 {
                let mean = (0..c).fold(F::ZERO, |a, j| a + at(j)) / cf;
                loss = loss + eps * (lse - mean);
            }
            *y = loss;
        }
    });
    losses
}

fn class_loss<F: Real>(op: &str, x: &Tensor, t: &Tensor, attrs: &Attrs, log_probs: bool) -> Result<Tensor> {
    let r = reduction(op, attrs)?;
    let ignore = attrs.int("ignore_index");
    let smoothing = if log_probs { 0.0 } else { attrs.float("label_smoothing") };
    let l = Classes::of(x.shape());
    let (ts, kept) = class_targets(op, t, l.c, ignore)?;
    let xp = packed(x, F::DTYPE)?;
    let losses = ce_losses::<F>(elems::<F>(&xp)?, l, &ts, ignore, smoothing, log_probs);
    finish(losses, t.shape(), r, kept, x.dtype())
}

fn class_grad<F: Real>(op: &str, x: &Tensor, t: &Tensor, g: &Tensor, attrs: &Attrs, log_probs: bool) -> Result<Tensor> {
    let r = reduction(op, attrs)?;
    let ignore = attrs.int("ignore_index");
    let smoothing = if log_probs { 0.0 } else { attrs.float("label_smoothing") };
    let l = Classes::of(x.shape());
    let (c, s) = (l.c, l.s);
    let (ts, kept) = class_targets(op, t, c, ignore)?;
    let xp = packed(x, F::DTYPE)?;
    let xs = elems::<F>(&xp)?;
    let (g, scale) = grad_weights::<F>(g, r, kept)?;
    let gs = elems::<F>(&g)?;
    let eps = F::from(smoothing).expect("fits");
    let off = eps / F::from(c).expect("fits");
    new_host::<F>(x.shape(), |o| {
        // One block [C, S] per batch element n.
        fill_rows(o, c * s, |n, block| {
            for k in 0..s {
                let i = n * s + k;
                let t = ts[i];
                let w = if r == Reduction::None { gs[i] } else { scale };
                let at = |j: usize| xs[(n * c + j) * s + k];
                if t == ignore {
                    (0..c).for_each(|j| block[j * s + k] = F::ZERO);
                } else if log_probs {
                    (0..c).for_each(|j| block[j * s + k] = if j as i64 == t { -w } else { F::ZERO });
                } else {
                    // w · (softmax_j − ε/C − (1−ε)[j = t])
                    let m = (0..c).fold(F::neg_infinity(), |m, j| m.max(at(j)));
                    let sum = (0..c).fold(F::ZERO, |a, j| a + (at(j) - m).exp());
                    let inv = F::ONE / sum;
                    for j in 0..c {
                        let hit = if j as i64 == t { F::ONE - eps } else { F::ZERO };
                        block[j * s + k] = w * ((at(j) - m).exp() * inv - off - hit);
                    }
                }
            }
        })
    })?
    .raw_cast(x.dtype())
}

/// Cross-entropy of logits against class indices, with label smoothing.
pub static CROSS_ENTROPY: OpDef = OpDef {
    name: "cross_entropy",
    kind: OpKind::Reduce,
    doc: "cross-entropy of logits [N, C, d...] (or [C]) against class indices [N, d...], through a fused stable \
          log-softmax; `label_smoothing`, `ignore_index` (left out of the mean's count), `reduction`",
    inputs: &[ArgSpec::req("input"), ArgSpec::req("target")],
    outputs: &["loss"],
    attrs: CE_ATTRS,
    infer: infer_classes,
    forward: |ctx| {
        let (x, t) = (&ctx.inputs[0], &ctx.inputs[1]);
        Ok(vec![with_real!(x.dtype(), F => class_loss::<F>(ctx.op, x, t, ctx.attrs, false)?)])
    },
    backward: Some(|e, c| {
        let i = c.inputs;
        let g = e.op(&CROSS_ENTROPY_BACKWARD, &[i[0], i[1], c.grads[0].expect("one output")], c.attrs.clone())?;
        Ok(vec![dense(g), None])
    }),
    pure: true,
    pointwise: None,
};

/// Gradient of cross_entropy with respect to the logits.
pub static CROSS_ENTROPY_BACKWARD: OpDef = OpDef {
    name: "cross_entropy_backward",
    kind: OpKind::Reduce,
    doc: "gradient of cross_entropy for the logits: g · (softmax − smoothed one-hot target); 0 for ignored samples",
    inputs: &[ArgSpec::req("input"), ArgSpec::req("target"), ArgSpec::req("g")],
    outputs: &["grad_input"],
    attrs: CE_ATTRS,
    infer: infer_class_grad,
    forward: |ctx| {
        let i = ctx.inputs;
        Ok(vec![with_real!(i[0].dtype(), F => class_grad::<F>(ctx.op, &i[0], &i[1], &i[2], ctx.attrs, false)?)])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

fn infer_class_grad(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let loss = infer_classes(ctx)?;
    let g = &ctx.inputs[2];
    if g.shape != loss[0].shape || g.dtype != loss[0].dtype {
        return Err(Error::shape("g", format!("{}: g must be {:?} {}", ctx.op, loss[0].shape, loss[0].dtype)));
    }
    one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype)
}

/// Negative log-likelihood of log-probabilities against class indices.
pub static NLL_LOSS: OpDef = OpDef {
    name: "nll_loss",
    kind: OpKind::Reduce,
    doc: "-input[target] for log-probabilities [N, C, d...] (or [C]) and class indices [N, d...]; `ignore_index` \
          (left out of the mean's count), `reduction`",
    inputs: &[ArgSpec::req("input"), ArgSpec::req("target")],
    outputs: &["loss"],
    attrs: NLL_ATTRS,
    infer: infer_classes,
    forward: |ctx| {
        let (x, t) = (&ctx.inputs[0], &ctx.inputs[1]);
        Ok(vec![with_real!(x.dtype(), F => class_loss::<F>(ctx.op, x, t, ctx.attrs, true)?)])
    },
    backward: Some(|e, c| {
        let i = c.inputs;
        let g = e.op(&NLL_LOSS_BACKWARD, &[i[0], i[1], c.grads[0].expect("one output")], c.attrs.clone())?;
        Ok(vec![dense(g), None])
    }),
    pure: true,
    pointwise: None,
};

/// Gradient of nll_loss with respect to its input.
pub static NLL_LOSS_BACKWARD: OpDef = OpDef {
    name: "nll_loss_backward",
    kind: OpKind::Reduce,
    doc: "gradient of nll_loss for the input: -g at each sample's target class, 0 elsewhere and for ignored samples",
    inputs: &[ArgSpec::req("input"), ArgSpec::req("target"), ArgSpec::req("g")],
    outputs: &["grad_input"],
    attrs: NLL_ATTRS,
    infer: infer_class_grad,
    forward: |ctx| {
        let i = ctx.inputs;
        Ok(vec![with_real!(i[0].dtype(), F => class_grad::<F>(ctx.op, &i[0], &i[1], &i[2], ctx.attrs, true)?)])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// binary_cross_entropy_with_logits

fn infer_bce(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let metas = [&ctx.inputs[0], &ctx.inputs[1]];
    let (x, y) = (metas[0], metas[1]);
    require_float(ctx.op, "input", x.dtype)?;
    if y.dtype != x.dtype {
        return Err(Error::InvalidDtype {
            arg: "target",
            msg: format!("{}: target must be {}, given {}", ctx.op, x.dtype, y.dtype),
        });
    }
    if y.shape != x.shape {
        return Err(Error::shape(
            "target",
            format!("{}: target shape {:?} differs from input's {:?}", ctx.op, y.shape, x.shape),
        ));
    }
    Ok(vec![Meta::new(loss_shape(reduction(ctx.op, ctx.attrs)?, &x.shape), x.dtype)])
}

/// Checks the optional pos_weight (input `at`): the input's dtype, broadcasting to its shape.
fn check_pos_weight(ctx: &InferCtx, at: usize) -> Result<()> {
    let x = &ctx.inputs[0];
    if let Some(p) = ctx.inputs.get(at) {
        if p.dtype != x.dtype {
            return Err(Error::InvalidDtype {
                arg: "pos_weight",
                msg: format!("{}: pos_weight must be {}, given {}", ctx.op, x.dtype, p.dtype),
            });
        }
        let b = broadcast_shapes(ctx.op, &x.shape, &p.shape).ok();
        if b.as_deref() != Some(&x.shape[..]) {
            return Err(Error::shape(
                "pos_weight",
                format!("{}: pos_weight {:?} does not broadcast to the input's {:?}", ctx.op, p.shape, x.shape),
            ));
        }
    }
    Ok(())
}

/// pos_weight materialised at the input's shape, in the compute type.
fn expanded_pos_weight<F: Real>(p: Option<&Tensor>, shape: &[usize]) -> Result<Option<Tensor>> {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    p.map(|p| packed(&p.raw_expand(&dims)?, F::DTYPE)).transpose()
}

/// ln(1 + e^{-|x|}) + max(-x, 0) = softplus(-x), without overflow.
fn softplus_neg<F: Real>(x: F) -> F {
    (-x.abs()).exp().ln_1p() + (-x).max(F::ZERO)
}

fn bce_loss<F: Real>(x: &Tensor, y: &Tensor, p: Option<&Tensor>, r: Reduction) -> Result<Tensor> {
    let (xp, yp) = (packed(x, F::DTYPE)?, packed(y, F::DTYPE)?);
    let pp = expanded_pos_weight::<F>(p, x.shape())?;
    let (xs, ys) = (elems::<F>(&xp)?, elems::<F>(&yp)?);
    let ps = pp.as_ref().map(elems::<F>).transpose()?;
    // Targets are probabilities (0/1 labels or soft ones); a 2 or a -1 is a data bug that
    // would otherwise train silently towards nonsense. NaN passes, to surface as a NaN loss.
    if let Some(k) = ys.iter().position(|&y| y < F::ZERO || y > F::ONE) {
        return Err(Error::range(
            "target",
            format!(
                "binary_cross_entropy_with_logits: targets must lie in [0, 1] (labels 0/1 or probabilities), \
                 element {k} is {}",
                ys[k].to_f64()
            ),
        ));
    }
    let mut losses = vec![F::ZERO; xs.len()];
    fill_indexed(&mut losses, |i| {
        let (xv, yv) = (xs[i], ys[i]);
        // (1 − y) x + (1 + (p − 1) y) · softplus(−x); with p = 1 this is max(x,0) − x y + ln(1 + e^{−|x|}).
        let lw = ps.map_or(F::ONE, |p| F::ONE + (p[i] - F::ONE) * yv);
        (F::ONE - yv) * xv + lw * softplus_neg(xv)
    });
    finish(losses, x.shape(), r, xs.len(), x.dtype())
}

/// Binary cross-entropy on logits, computed stably, with an optional positive-class weight.
pub static BCE_WITH_LOGITS: OpDef = OpDef {
    name: "binary_cross_entropy_with_logits",
    kind: OpKind::Reduce,
    doc: "max(x,0) - x*y + ln(1 + exp(-|x|)) for logits x and targets y of the same shape; optional pos_weight \
          (broadcast to x) weighs the positive term; `reduction`",
    inputs: &[ArgSpec::req("input"), ArgSpec::req("target"), ArgSpec::opt("pos_weight")],
    outputs: &["loss"],
    attrs: REDUCTION_ONLY,
    infer: |ctx| {
        let out = infer_bce(ctx)?;
        check_pos_weight(ctx, 2)?;
        Ok(out)
    },
    forward: |ctx| {
        let r = reduction(ctx.op, ctx.attrs)?;
        let i = ctx.inputs;
        Ok(vec![with_real!(i[0].dtype(), F => bce_loss::<F>(&i[0], &i[1], i.get(2), r)?)])
    },
    backward: Some(bce_backward_rule),
    pure: true,
    pointwise: None,
};

fn bce_backward_rule(e: &mut dyn Emitter, c: &GradCtx) -> Result<Vec<Option<GradVal>>> {
    let i = c.inputs;
    let mut ins = vec![i[0], i[1], c.grads[0].expect("one output")];
    ins.extend(i.get(2));
    let gs = e.emit(&BCE_WITH_LOGITS_BACKWARD, &ins, c.attrs.clone())?;
    let mut out = vec![dense(gs[0]), dense(gs[1])];
    if let Some(&p) = i.get(2) {
        out.push(dense(unbroadcast(e, gs[2], p)?));
    }
    Ok(out)
}

fn bce_grad<F: Real>(x: &Tensor, y: &Tensor, g: &Tensor, p: Option<&Tensor>, r: Reduction) -> Result<Vec<Tensor>> {
    let (xp, yp) = (packed(x, F::DTYPE)?, packed(y, F::DTYPE)?);
    let pp = expanded_pos_weight::<F>(p, x.shape())?;
    let (xs, ys) = (elems::<F>(&xp)?, elems::<F>(&yp)?);
    let ps = pp.as_ref().map(elems::<F>).transpose()?;
    let (g, scale) = grad_weights::<F>(g, r, xs.len())?;
    let gs = elems::<F>(&g)?;
    let w = |i: usize| if r == Reduction::None { gs[i] } else { scale };
    // σ(−x) computed without overflow.
    let sig_neg = |v: F| if v >= F::ZERO { (-v).exp() / (F::ONE + (-v).exp()) } else { F::ONE / (F::ONE + v.exp()) };
    let pv = |i: usize| ps.map_or(F::ONE, |p| p[i]);
    let gx = new_host::<F>(x.shape(), |o| {
        fill_indexed(o, |i| {
            let lw = F::ONE + (pv(i) - F::ONE) * ys[i];
            w(i) * ((F::ONE - ys[i]) - lw * sig_neg(xs[i]))
        })
    })?;
    let gy =
        new_host::<F>(x.shape(), |o| fill_indexed(o, |i| w(i) * ((pv(i) - F::ONE) * softplus_neg(xs[i]) - xs[i])))?;
    let mut out = vec![gx, gy];
    if ps.is_some() {
        out.push(new_host::<F>(x.shape(), |o| fill_indexed(o, |i| w(i) * ys[i] * softplus_neg(xs[i])))?);
    }
    out.into_iter().map(|t| t.raw_cast(x.dtype())).collect()
}

/// Gradients of binary_cross_entropy_with_logits.
pub static BCE_WITH_LOGITS_BACKWARD: OpDef = OpDef {
    name: "binary_cross_entropy_with_logits_backward",
    kind: OpKind::Reduce,
    doc: "gradients of binary_cross_entropy_with_logits for input and target, and (given pos_weight) the unreduced \
          gradient of pos_weight at the input's shape",
    inputs: &[ArgSpec::req("input"), ArgSpec::req("target"), ArgSpec::req("g"), ArgSpec::opt("pos_weight")],
    outputs: &["grad_input", "grad_target", "grad_pos_weight"],
    attrs: REDUCTION_ONLY,
    infer: |ctx| {
        let loss = infer_bce(ctx)?;
        let g = &ctx.inputs[2];
        if g.shape != loss[0].shape || g.dtype != loss[0].dtype {
            return Err(Error::shape("g", format!("{}: g must be {:?} {}", ctx.op, loss[0].shape, loss[0].dtype)));
        }
        check_pos_weight(ctx, 3)?;
        let m = Meta::new(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype);
        Ok(vec![m.clone(); if ctx.inputs.len() > 3 { 3 } else { 2 }])
    },
    forward: |ctx| {
        let r = reduction(ctx.op, ctx.attrs)?;
        let i = ctx.inputs;
        with_real!(i[0].dtype(), F => bce_grad::<F>(&i[0], &i[1], &i[2], i.get(3), r))
    },
    backward: None,
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[
    &MSE_LOSS,
    &L1_LOSS,
    &L1_LOSS_BACKWARD,
    &CROSS_ENTROPY,
    &CROSS_ENTROPY_BACKWARD,
    &NLL_LOSS,
    &NLL_LOSS_BACKWARD,
    &BCE_WITH_LOGITS,
    &BCE_WITH_LOGITS_BACKWARD,
];

fn loss_call(op: &'static OpDef, x: &Tensor, t: &Tensor) -> Result<Tensor> {
    call1(op, &[x, t], &attrs_of(op, &[])?)
}

impl Tensor {
    /// Mean squared error against `target` (same shape), averaged.
    pub fn mse_loss(&self, target: &Tensor) -> Result<Tensor> {
        loss_call(&MSE_LOSS, self, target)
    }

    /// Mean absolute error against `target` (same shape), averaged.
    pub fn l1_loss(&self, target: &Tensor) -> Result<Tensor> {
        loss_call(&L1_LOSS, self, target)
    }

    /// Cross-entropy of these logits `[N, C, ...]` against class indices `[N, ...]`, averaged.
    pub fn cross_entropy(&self, target: &Tensor) -> Result<Tensor> {
        loss_call(&CROSS_ENTROPY, self, target)
    }

    /// Cross-entropy with label smoothing, an ignored class index, and a reduction
    /// (`"mean"`, `"sum"` or `"none"`).
    pub fn cross_entropy_with(
        &self,
        target: &Tensor,
        label_smoothing: f64,
        ignore_index: i64,
        reduction: &str,
    ) -> Result<Tensor> {
        let attrs = attrs_of(
            &CROSS_ENTROPY,
            &[
                ("label_smoothing", Attr::Float(label_smoothing)),
                ("ignore_index", Attr::Int(ignore_index)),
                ("reduction", Attr::Str(reduction.to_string())),
            ],
        )?;
        call1(&CROSS_ENTROPY, &[self, target], &attrs)
    }

    /// Negative log-likelihood of these log-probabilities `[N, C, ...]` against class indices, averaged.
    pub fn nll_loss(&self, target: &Tensor) -> Result<Tensor> {
        loss_call(&NLL_LOSS, self, target)
    }

    /// Binary cross-entropy of these logits against `target` probabilities (same shape), averaged.
    pub fn bce_with_logits(&self, target: &Tensor) -> Result<Tensor> {
        loss_call(&BCE_WITH_LOGITS, self, target)
    }
}
