//! Neural-net ops: softmax, log_softmax, layer_norm, batch_norm, dropout.

use super::dispatch::{attrs_of, call, call1};
use super::reduce::{Real, compute_dtype, elems, fill_indexed, fill_rows, map_lanes, packed};
use super::util::{emit0, one, require_float};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Emitter, ForwardCtx, GradCtx, GradVal, InferCtx, Meta, OpDef,
    OpKind, Val,
};
use crate::backend::cpu::elementwise::new_host;
use crate::backend::cpu::reduce::sum_slice;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use crate::tensor::layout::normalize_axis;
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

// ---------------------------------------------------------------------------------------------
// softmax / log_softmax

const AXIS_ATTR: &[AttrSpec] =
    &[AttrSpec::with_default("axis", AttrKind::Int, AttrDefault::Int(-1), "the axis to normalise over")];

/// The softmax axis of a tensor of rank `ndim` (a 0-d tensor is treated as one element).
fn softmax_axis(ndim: usize, axis: i64) -> Result<usize> {
    normalize_axis(axis, ndim.max(1), "axis")
}

fn infer_softmax(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let x = &ctx.inputs[0];
    require_float(ctx.op, "x", x.dtype)?;
    softmax_axis(x.shape.len(), ctx.attrs.int("axis"))?;
    one(x.shape.clone(), x.dtype)
}

fn softmax_kernel<F: Real, const LOG: bool>(x: &Tensor, axis: usize) -> Result<Tensor> {
    map_lanes::<F, 1>([x], &[axis], |_, [s], o| {
        let m = s.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
        if LOG {
            let sum = s.iter().fold(F::ZERO, |a, &v| a + (v - m).exp());
            let lse = m + sum.ln();
            o.iter_mut().zip(s).for_each(|(y, &v)| *y = v - lse);
        } else {
            let mut sum = F::ZERO;
            for (y, &v) in o.iter_mut().zip(s) {
                *y = (v - m).exp();
                sum = sum + *y;
            }
            let inv = F::ONE / sum;
            o.iter_mut().for_each(|y| *y = *y * inv);
        }
    })
}

fn softmax_forward<const LOG: bool>(ctx: &ForwardCtx) -> Result<Vec<Tensor>> {
    let x = &ctx.inputs[0];
    let dt = x.dtype();
    // A 0-d tensor is one lane of one element.
    let xv = if x.ndim() == 0 { x.raw_reshape(&[1])? } else { x.clone() };
    let axis = softmax_axis(x.ndim(), ctx.attrs.int("axis"))?;
    let out = with_real!(dt, F => softmax_kernel::<F, LOG>(&xv.raw_cast(F::DTYPE)?, axis)?.raw_cast(dt)?);
    Ok(vec![if x.ndim() == 0 { out.raw_reshape(&[])? } else { out }])
}

/// `sum(v, axis, keepdim)` inside a gradient rule.
fn emit_sum_keep(e: &mut dyn Emitter, v: Val, axis: usize) -> Result<Val> {
    let attrs =
        attrs_of(&super::reduce::SUM, &[("axes", Attr::Ints(vec![axis as i64])), ("keepdim", Attr::Bool(true))])?;
    e.op(&super::reduce::SUM, &[v], attrs)
}

/// Softmax along an axis.
pub static SOFTMAX: OpDef = OpDef {
    name: "softmax",
    kind: OpKind::Reduce,
    doc: "exp(x - max) / sum(exp(x - max)) along `axis`; float only",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXIS_ATTR,
    infer: infer_softmax,
    forward: softmax_forward::<false>,
    backward: Some(|e, c| {
        // dx = y ⊙ (g − Σ g⊙y)
        let (g, y) = (c.grads[0].expect("one output"), c.outputs[0]);
        let axis = softmax_axis(e.meta(y).shape.len(), c.attrs.int("axis"))?;
        let gy = emit0(e, &super::binary::MUL, &[g, y])?;
        let s = if e.meta(y).shape.is_empty() { gy } else { emit_sum_keep(e, gy, axis)? };
        let d = emit0(e, &super::binary::SUB, &[g, s])?;
        Ok(vec![dense(emit0(e, &super::binary::MUL, &[y, d])?)])
    }),
    pure: true,
    pointwise: None,
};

/// Log-softmax along an axis.
pub static LOG_SOFTMAX: OpDef = OpDef {
    name: "log_softmax",
    kind: OpKind::Reduce,
    doc: "x - max - ln(sum(exp(x - max))) along `axis`; float only",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXIS_ATTR,
    infer: infer_softmax,
    forward: softmax_forward::<true>,
    backward: Some(|e, c| {
        // dx = g − exp(out) ⊙ Σ g
        let (g, y) = (c.grads[0].expect("one output"), c.outputs[0]);
        let axis = softmax_axis(e.meta(y).shape.len(), c.attrs.int("axis"))?;
        let s = if e.meta(y).shape.is_empty() { g } else { emit_sum_keep(e, g, axis)? };
        let p = emit0(e, &super::unary::EXP, &[y])?;
        let ps = emit0(e, &super::binary::MUL, &[p, s])?;
        Ok(vec![dense(emit0(e, &super::binary::SUB, &[g, ps])?)])
    }),
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// layer_norm

const LAYER_NORM_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default(
        "normalized_ndim",
        AttrKind::Int,
        AttrDefault::Int(1),
        "number of trailing dimensions normalised together",
    ),
    AttrSpec::with_default("eps", AttrKind::Float, AttrDefault::Float(1e-5), "added to the variance"),
];

/// Checks x and the optional per-element parameters (inputs 1.. named `names`); returns the
/// normalised row length.
fn check_layer_norm(ctx: &InferCtx, names: &[&'static str]) -> Result<usize> {
    let x = &ctx.inputs[0];
    require_float(ctx.op, "x", x.dtype)?;
    let k = ctx.attrs.int("normalized_ndim");
    if k < 1 || k as usize > x.shape.len() {
        return Err(Error::range(
            "normalized_ndim",
            format!(
                "{}: normalized_ndim {k} for a tensor of rank {} (valid: 1..={})",
                ctx.op,
                x.shape.len(),
                x.shape.len()
            ),
        ));
    }
    let eps = ctx.attrs.float("eps");
    if eps.is_nan() || eps < 0.0 {
        return Err(Error::range("eps", format!("{}: eps must be >= 0, given {eps}", ctx.op)));
    }
    let norm = &x.shape[x.shape.len() - k as usize..];
    for (m, &name) in ctx.inputs.iter().skip(1).zip(names) {
        if m.dtype != x.dtype {
            return Err(Error::InvalidDtype {
                arg: name,
                msg: format!("{}: {name} must be {}, given {}", ctx.op, x.dtype, m.dtype),
            });
        }
        if m.shape != norm {
            return Err(Error::shape(
                name,
                format!("{}: {name} must have shape {norm:?} (x's trailing dims), given {:?}", ctx.op, m.shape),
            ));
        }
    }
    Ok(norm.iter().product())
}

/// Mean and 1/sqrt(biased variance + eps) of a row.
fn row_stats<F: Real>(s: &[F], eps: F) -> (F, F) {
    let n = F::from(s.len()).expect("fits");
    let mean = sum_slice(s) / n;
    let var = s.iter().fold(F::ZERO, |a, &v| a + (v - mean) * (v - mean)) / n;
    (mean, F::ONE / (var + eps).sqrt())
}

fn trailing_axes(ndim: usize, k: usize) -> Vec<usize> {
    (ndim - k..ndim).collect()
}

fn layer_norm_kernel<F: Real>(
    x: &Tensor,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    k: usize,
    eps: f64,
) -> Result<Tensor> {
    let w = w.map(|t| packed(t, F::DTYPE)).transpose()?;
    let b = b.map(|t| packed(t, F::DTYPE)).transpose()?;
    let ws = w.as_ref().map(elems::<F>).transpose()?;
    let bs = b.as_ref().map(elems::<F>).transpose()?;
    let eps = F::from(eps).expect("fits");
    map_lanes::<F, 1>([x], &trailing_axes(x.ndim(), k), |_, [s], o| {
        let (mean, rstd) = row_stats(s, eps);
        for (j, (y, &v)) in o.iter_mut().zip(s).enumerate() {
            let mut t = (v - mean) * rstd;
            if let Some(w) = ws {
                t = t * w[j];
            }
            if let Some(b) = bs {
                t = t + b[j];
            }
            *y = t;
        }
    })
}

/// Layer normalisation over the trailing dimensions.
pub static LAYER_NORM: OpDef = OpDef {
    name: "layer_norm",
    kind: OpKind::Reduce,
    doc: "(x - mean) / sqrt(var + eps) * weight + bias over the trailing `normalized_ndim` dims (biased variance)",
    inputs: &[ArgSpec::req("x"), ArgSpec::opt("weight"), ArgSpec::opt("bias")],
    outputs: &["out"],
    attrs: LAYER_NORM_ATTRS,
    infer: |ctx| {
        check_layer_norm(ctx, &["weight", "bias"])?;
        one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype)
    },
    forward: |ctx| {
        let x = &ctx.inputs[0];
        let dt = x.dtype();
        let (k, eps) = (ctx.attrs.int("normalized_ndim") as usize, ctx.attrs.float("eps"));
        let out = with_real!(dt, F => layer_norm_kernel::<F>(
            &x.raw_cast(F::DTYPE)?, ctx.inputs.get(1), ctx.inputs.get(2), k, eps)?.raw_cast(dt)?);
        Ok(vec![out])
    },
    backward: Some(|e, c| {
        let g = c.grads[0].expect("one output");
        let mut ins = vec![c.inputs[0], g];
        if let Some(&w) = c.inputs.get(1) {
            ins.push(w);
        }
        let attrs = attrs_of(
            &LAYER_NORM_BACKWARD,
            &[
                ("normalized_ndim", Attr::Int(c.attrs.int("normalized_ndim"))),
                ("eps", Attr::Float(c.attrs.float("eps"))),
            ],
        )?;
        let gs = e.emit(&LAYER_NORM_BACKWARD, &ins, attrs)?;
        let mut out = vec![dense(gs[0])];
        if c.inputs.len() > 1 {
            out.push(dense(gs[1]));
        }
        if c.inputs.len() > 2 {
            out.push(dense(gs[2]));
        }
        Ok(out)
    }),
    pure: true,
    pointwise: None,
};

/// Sums `f(row, acc)` contributions of `rows` rows into a vector of `width`, in parallel when large.
fn fold_rows<F: Real>(rows: usize, width: usize, work: usize, f: impl Fn(usize, &mut [F]) + Sync + Send) -> Vec<F> {
    let zero = || vec![F::ZERO; width];
    if work < PARALLEL_THRESHOLD || rows < 2 {
        let mut acc = zero();
        (0..rows).for_each(|r| f(r, &mut acc));
        return acc;
    }
    let per = (rows / (4 * crate::runtime::num_threads())).max(1);
    install(|| {
        (0..rows)
            .into_par_iter()
            .with_min_len(per)
            .fold(zero, |mut acc, r| {
                f(r, &mut acc);
                acc
            })
            .reduce(zero, |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, &y)| *x = *x + y);
                a
            })
    })
}

fn layer_norm_grad<F: Real>(x: &Tensor, g: &Tensor, w: Option<&Tensor>, k: usize, eps: f64) -> Result<[Tensor; 3]> {
    let (x, g) = (packed(x, F::DTYPE)?, packed(g, F::DTYPE)?);
    let w = w.map(|t| packed(t, F::DTYPE)).transpose()?;
    let ws = w.as_ref().map(elems::<F>).transpose()?;
    let eps = F::from(eps).expect("fits");
    let norm_shape = x.shape()[x.ndim() - k..].to_vec();
    let d: usize = norm_shape.iter().product();
    let nf = F::from(d).expect("fits");
    let gx = map_lanes::<F, 2>([&x, &g], &trailing_axes(x.ndim(), k), |_, [xs, gs], o| {
        // gx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)), with ĝ = g ⊙ w.
        let (mean, rstd) = row_stats(xs, eps);
        let (mut a, mut b) = (F::ZERO, F::ZERO);
        for j in 0..xs.len() {
            let gh = ws.map_or(gs[j], |w| gs[j] * w[j]);
            a = a + gh;
            b = b + gh * (xs[j] - mean) * rstd;
        }
        let (a, b) = (a / nf, b / nf);
        for (j, y) in o.iter_mut().enumerate() {
            let gh = ws.map_or(gs[j], |w| gs[j] * w[j]);
            *y = rstd * (gh - a - (xs[j] - mean) * rstd * b);
        }
    })?;
    let (xs, gs) = (elems::<F>(&x)?, elems::<F>(&g)?);
    let rows = xs.len().checked_div(d).unwrap_or(0);
    let sums = fold_rows::<F>(rows, 2 * d, xs.len(), |r, acc| {
        let (xr, gr) = (&xs[r * d..(r + 1) * d], &gs[r * d..(r + 1) * d]);
        let (mean, rstd) = row_stats(xr, eps);
        for j in 0..d {
            acc[j] = acc[j] + gr[j] * (xr[j] - mean) * rstd;
            acc[d + j] = acc[d + j] + gr[j];
        }
    });
    let gw = Tensor::from_slice(&sums[..d], &norm_shape)?;
    let gb = Tensor::from_slice(&sums[d..], &norm_shape)?;
    Ok([gx, gw, gb])
}

/// Gradients of layer_norm for x, weight and bias.
pub static LAYER_NORM_BACKWARD: OpDef = OpDef {
    name: "layer_norm_backward",
    kind: OpKind::Reduce,
    doc: "gradients of layer_norm: grad_x, grad_weight = Σ g·x̂, grad_bias = Σ g (statistics recomputed from x)",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("g"), ArgSpec::opt("weight")],
    outputs: &["grad_x", "grad_weight", "grad_bias"],
    attrs: LAYER_NORM_ATTRS,
    infer: |ctx| {
        let (x, g) = (&ctx.inputs[0], &ctx.inputs[1]);
        if g.shape != x.shape || g.dtype != x.dtype {
            return Err(Error::shape("g", format!("{}: g must be {:?} {}", ctx.op, x.shape, x.dtype)));
        }
        let metas: Vec<Meta> = ctx.inputs.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, m)| m.clone()).collect();
        check_layer_norm(&InferCtx { op: ctx.op, inputs: &metas, attrs: ctx.attrs }, &["weight"])?;
        let norm = x.shape[x.shape.len() - ctx.attrs.int("normalized_ndim") as usize..].to_vec();
        Ok(vec![Meta::new(x.shape.clone(), x.dtype), Meta::new(norm.clone(), x.dtype), Meta::new(norm, x.dtype)])
    },
    forward: |ctx| {
        let (x, g) = (&ctx.inputs[0], &ctx.inputs[1]);
        let dt = x.dtype();
        let (k, eps) = (ctx.attrs.int("normalized_ndim") as usize, ctx.attrs.float("eps"));
        let outs = with_real!(dt, F => layer_norm_grad::<F>(x, g, ctx.inputs.get(2), k, eps)?);
        outs.into_iter().map(|t| t.raw_cast(dt)).collect()
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// batch_norm

/// batch_norm's attributes; the BatchNorm layer takes the same ones.
pub(crate) const BATCH_NORM_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default(
        "training",
        AttrKind::Bool,
        AttrDefault::Bool(true),
        "batch statistics (true) or running ones",
    ),
    AttrSpec::with_default(
        "momentum",
        AttrKind::Float,
        AttrDefault::Float(0.1),
        "weight of the batch in the running update",
    ),
    AttrSpec::with_default("eps", AttrKind::Float, AttrDefault::Float(1e-5), "added to the variance"),
];

const BATCH_NORM_BACKWARD_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default(
        "training",
        AttrKind::Bool,
        AttrDefault::Bool(true),
        "batch statistics (true) or running ones",
    ),
    AttrSpec::with_default("eps", AttrKind::Float, AttrDefault::Float(1e-5), "added to the variance"),
];

/// Checks x [N, C, ...] and the per-channel inputs (named `names`, from input `first`); returns (N, C, S).
fn check_batch_norm(ctx: &InferCtx, first: usize, names: &[&'static str]) -> Result<(usize, usize, usize)> {
    let x = &ctx.inputs[0];
    require_float(ctx.op, "x", x.dtype)?;
    if x.shape.len() < 2 {
        return Err(Error::shape("x", format!("{}: x must be [N, C, ...], given {:?}", ctx.op, x.shape)));
    }
    let eps = ctx.attrs.float("eps");
    if eps.is_nan() || eps < 0.0 {
        return Err(Error::range("eps", format!("{}: eps must be >= 0, given {eps}", ctx.op)));
    }
    let c = x.shape[1];
    for (m, &name) in ctx.inputs[first..].iter().zip(names) {
        if m.dtype != x.dtype {
            return Err(Error::InvalidDtype {
                arg: name,
                msg: format!("{}: {name} must be {}, given {}", ctx.op, x.dtype, m.dtype),
            });
        }
        if m.shape != [c] {
            return Err(Error::shape(
                name,
                format!("{}: {name} must have shape [{c}] (x's channels), given {:?}", ctx.op, m.shape),
            ));
        }
    }
    Ok((x.shape[0], c, x.shape[2..].iter().product()))
}

/// Per-channel mean and biased variance of a packed [N, C, S] buffer (two passes, parallel over channels).
fn channel_stats<F: Real>(xs: &[F], n: usize, c: usize, s: usize) -> Vec<(F, F)> {
    let m = F::from(n * s).expect("fits");
    let stat = |ch: usize| {
        let lane = |i: usize| &xs[(i * c + ch) * s..(i * c + ch + 1) * s];
        let mean = (0..n).fold(F::ZERO, |a, i| a + sum_slice(lane(i))) / m;
        let var =
            (0..n).fold(F::ZERO, |a, i| a + lane(i).iter().fold(F::ZERO, |b, &v| b + (v - mean) * (v - mean))) / m;
        (mean, var)
    };
    if xs.len() < PARALLEL_THRESHOLD {
        (0..c).map(stat).collect()
    } else {
        install(|| (0..c).into_par_iter().map(stat).collect())
    }
}

fn batch_norm_kernel<F: Real>(ins: &[Tensor], training: bool, momentum: f64, eps: f64) -> Result<[Tensor; 3]> {
    let p = ins.iter().map(|t| packed(t, F::DTYPE)).collect::<Result<Vec<_>>>()?;
    let (x, w, b, rm, rv) = (&p[0], elems::<F>(&p[1])?, elems::<F>(&p[2])?, elems::<F>(&p[3])?, elems::<F>(&p[4])?);
    let shape = x.shape().to_vec();
    let (n, c, s) = (shape[0], shape[1], shape[2..].iter().product::<usize>());
    let xs = elems::<F>(x)?;
    let eps = F::from(eps).expect("fits");
    let (stats, new_rm, new_rv) = if training {
        if n * s <= 1 {
            return Err(Error::invalid(
                "x",
                format!("batch_norm: training needs more than one value per channel, given x {shape:?}"),
            ));
        }
        let stats = channel_stats(xs, n, c, s);
        let mo = F::from(momentum).expect("fits");
        let unbias = F::from(n * s).expect("fits") / F::from(n * s - 1).expect("fits");
        let new_rm: Vec<F> = (0..c).map(|i| (F::ONE - mo) * rm[i] + mo * stats[i].0).collect();
        let new_rv: Vec<F> = (0..c).map(|i| (F::ONE - mo) * rv[i] + mo * stats[i].1 * unbias).collect();
        (stats, Tensor::from_slice(&new_rm, &[c])?, Tensor::from_slice(&new_rv, &[c])?)
    } else {
        let stats = (0..c).map(|i| (rm[i], rv[i])).collect();
        (stats, p[3].clone(), p[4].clone())
    };
    // Per channel: out = x · scale + shift.
    let coef: Vec<(F, F)> = (0..c)
        .map(|i| {
            let scale = w[i] / (stats[i].1 + eps).sqrt();
            (scale, b[i] - stats[i].0 * scale)
        })
        .collect();
    let out = new_host::<F>(&shape, |o| {
        fill_rows(o, s, |r, row| {
            let (scale, shift) = coef[r % c];
            row.iter_mut().zip(&xs[r * s..(r + 1) * s]).for_each(|(y, &v)| *y = v * scale + shift);
        })
    })?;
    Ok([out, new_rm, new_rv])
}

/// Batch normalisation over N and the spatial dims of [N, C, ...].
pub static BATCH_NORM: OpDef = OpDef {
    name: "batch_norm",
    kind: OpKind::Reduce,
    doc: "per-channel normalisation of x [N, C, ...]: batch statistics when training (also returning the updated \
          running mean and unbiased running variance), running statistics otherwise",
    inputs: &[
        ArgSpec::req("x"),
        ArgSpec::req("weight"),
        ArgSpec::req("bias"),
        ArgSpec::req("running_mean"),
        ArgSpec::req("running_var"),
    ],
    outputs: &["out", "new_running_mean", "new_running_var"],
    attrs: BATCH_NORM_ATTRS,
    infer: |ctx| {
        let (_, c, _) = check_batch_norm(ctx, 1, &["weight", "bias", "running_mean", "running_var"])?;
        let x = &ctx.inputs[0];
        Ok(vec![Meta::new(x.shape.clone(), x.dtype), Meta::new([c], x.dtype), Meta::new([c], x.dtype)])
    },
    forward: |ctx| {
        let dt = ctx.inputs[0].dtype();
        let (training, momentum, eps) =
            (ctx.attrs.bool("training"), ctx.attrs.float("momentum"), ctx.attrs.float("eps"));
        let outs = with_real!(dt, F => batch_norm_kernel::<F>(ctx.inputs, training, momentum, eps)?);
        outs.into_iter().map(|t| t.raw_cast(dt)).collect()
    },
    backward: Some(|e, c| {
        // Gradients flow from `out` only: the running statistics are buffers, as in PyTorch.
        let Some(g) = c.grads[0] else { return Ok(vec![None; 5]) };
        let i = c.inputs;
        let attrs = attrs_of(
            &BATCH_NORM_BACKWARD,
            &[("training", Attr::Bool(c.attrs.bool("training"))), ("eps", Attr::Float(c.attrs.float("eps")))],
        )?;
        let gs = e.emit(&BATCH_NORM_BACKWARD, &[i[0], g, i[1], i[3], i[4]], attrs)?;
        Ok(vec![dense(gs[0]), dense(gs[1]), dense(gs[2]), None, None])
    }),
    pure: true,
    pointwise: None,
};

fn batch_norm_grad<F: Real>(ins: &[Tensor], training: bool, eps: f64) -> Result<[Tensor; 3]> {
    let p = ins.iter().map(|t| packed(t, F::DTYPE)).collect::<Result<Vec<_>>>()?;
    let (xs, gs, w, rm, rv) =
        (elems::<F>(&p[0])?, elems::<F>(&p[1])?, elems::<F>(&p[2])?, elems::<F>(&p[3])?, elems::<F>(&p[4])?);
    let shape = p[0].shape().to_vec();
    let (n, c, s) = (shape[0], shape[1], shape[2..].iter().product::<usize>());
    let eps = F::from(eps).expect("fits");
    let stats = if training { channel_stats(xs, n, c, s) } else { (0..c).map(|i| (rm[i], rv[i])).collect() };
    // Per channel: rstd, Σ g, Σ g·x̂.
    let sums = |ch: usize| {
        let (mean, var) = stats[ch];
        let rstd = F::ONE / (var + eps).sqrt();
        let (mut sg, mut sgx) = (F::ZERO, F::ZERO);
        for i in 0..n {
            let o = (i * c + ch) * s;
            for k in o..o + s {
                sg = sg + gs[k];
                sgx = sgx + gs[k] * (xs[k] - mean) * rstd;
            }
        }
        (rstd, sg, sgx)
    };
    let per: Vec<(F, F, F)> = if xs.len() < PARALLEL_THRESHOLD {
        (0..c).map(sums).collect()
    } else {
        install(|| (0..c).into_par_iter().map(sums).collect())
    };
    let m = F::from(n * s).expect("fits");
    let gx = new_host::<F>(&shape, |o| {
        fill_rows(o, s, |r, row| {
            let ch = r % c;
            let ((mean, _), (rstd, sg, sgx)) = (stats[ch], per[ch]);
            let k = w[ch] * rstd;
            let (xr, gr) = (&xs[r * s..(r + 1) * s], &gs[r * s..(r + 1) * s]);
            if training {
                // gx = w·rstd·(g − Σg/M − x̂·Σ(g·x̂)/M)
                let (a, b) = (sg / m, sgx / m);
                for ((y, &xv), &gv) in row.iter_mut().zip(xr).zip(gr) {
                    *y = k * (gv - a - (xv - mean) * rstd * b);
                }
            } else {
                row.iter_mut().zip(gr).for_each(|(y, &gv)| *y = k * gv);
            }
        })
    })?;
    let gw: Vec<F> = per.iter().map(|p| p.2).collect();
    let gb: Vec<F> = per.iter().map(|p| p.1).collect();
    Ok([gx, Tensor::from_slice(&gw, &[c])?, Tensor::from_slice(&gb, &[c])?])
}

/// Gradients of batch_norm for x, weight and bias.
pub static BATCH_NORM_BACKWARD: OpDef = OpDef {
    name: "batch_norm_backward",
    kind: OpKind::Reduce,
    doc: "gradients of batch_norm: grad_x, grad_weight = Σ g·x̂, grad_bias = Σ g (batch statistics recomputed from x \
          when training)",
    inputs: &[
        ArgSpec::req("x"),
        ArgSpec::req("g"),
        ArgSpec::req("weight"),
        ArgSpec::req("running_mean"),
        ArgSpec::req("running_var"),
    ],
    outputs: &["grad_x", "grad_weight", "grad_bias"],
    attrs: BATCH_NORM_BACKWARD_ATTRS,
    infer: |ctx| {
        let (x, g) = (&ctx.inputs[0], &ctx.inputs[1]);
        if g.shape != x.shape || g.dtype != x.dtype {
            return Err(Error::shape("g", format!("{}: g must be {:?} {}", ctx.op, x.shape, x.dtype)));
        }
        let (_, c, _) = check_batch_norm(ctx, 2, &["weight", "running_mean", "running_var"])?;
        Ok(vec![Meta::new(x.shape.clone(), x.dtype), Meta::new([c], x.dtype), Meta::new([c], x.dtype)])
    },
    forward: |ctx| {
        let dt = ctx.inputs[0].dtype();
        let (training, eps) = (ctx.attrs.bool("training"), ctx.attrs.float("eps"));
        let outs = with_real!(dt, F => batch_norm_grad::<F>(ctx.inputs, training, eps)?);
        outs.into_iter().map(|t| t.raw_cast(dt)).collect()
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// dropout

const DROPOUT_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("p", AttrKind::Float, AttrDefault::Float(0.5), "probability of zeroing an element"),
    AttrSpec::with_default("training", AttrKind::Bool, AttrDefault::Bool(true), "identity when false"),
    AttrSpec::required("seed", AttrKind::Int, "seed of the mask (crate::rng::Generator)"),
];

/// Whether element `i` survives: the i-th uniform draw of `Generator::new(seed)` exceeds p.
/// SplitMix64 is a counter over its state, so draw i is computed directly (in parallel).
/// `threshold` = floor(p · 2^53); the draw `((u >> 11) + 1) · 2^-53` exceeds p exactly when
/// `(u >> 11) + 1 > threshold`, which keeps the hot loop in integers.
fn kept(seed: u64, i: usize, threshold: u64) -> bool {
    let state = seed.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (Generator::new(state).next_u64() >> 11) + 1 > threshold
}

fn dropout_kernel<F: Real>(x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
    let x = packed(x, F::DTYPE)?;
    let xs = elems::<F>(&x)?;
    let threshold = (p * (1u64 << 53) as f64).floor() as u64;
    // p = 1 drops everything; 1/(1-p) would be infinite.
    let scale = if p < 1.0 { F::from(1.0 / (1.0 - p)).expect("fits") } else { F::ZERO };
    new_host::<F>(x.shape(), |o| fill_indexed(o, |i| if kept(seed, i, threshold) { xs[i] * scale } else { F::ZERO }))
}

/// Inverted dropout with a seeded, reproducible mask.
pub static DROPOUT: OpDef = OpDef {
    name: "dropout",
    kind: OpKind::Elementwise,
    doc: "zeroes each element with probability `p` and scales the rest by 1/(1-p) (training); the mask is a function \
          of `seed` and the element's row-major index",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: DROPOUT_ATTRS,
    infer: |ctx| {
        let x = &ctx.inputs[0];
        require_float(ctx.op, "x", x.dtype)?;
        let p = ctx.attrs.float("p");
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::range("p", format!("dropout: p must be in [0, 1], given {p}")));
        }
        one(x.shape.clone(), x.dtype)
    },
    forward: |ctx| {
        let x = &ctx.inputs[0];
        let p = ctx.attrs.float("p");
        if !ctx.attrs.bool("training") || p == 0.0 {
            return Ok(vec![x.clone()]);
        }
        let dt = x.dtype();
        let seed = ctx.attrs.int("seed") as u64;
        Ok(vec![with_real!(dt, F => dropout_kernel::<F>(&x.raw_cast(F::DTYPE)?, p, seed)?.raw_cast(dt)?)])
    },
    // The gradient applies the same mask and scale: dropout of g with the same attributes.
    backward: Some(|e, c: &GradCtx| {
        Ok(vec![dense(e.op(&DROPOUT, &[c.grads[0].expect("one output")], c.attrs.clone())?)])
    }),
    pure: false,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] =
    &[&SOFTMAX, &LOG_SOFTMAX, &LAYER_NORM, &LAYER_NORM_BACKWARD, &BATCH_NORM, &BATCH_NORM_BACKWARD, &DROPOUT];

impl Tensor {
    /// Softmax along `axis` (stable: the maximum is subtracted first).
    pub fn softmax(&self, axis: i64) -> Result<Tensor> {
        call1(&SOFTMAX, &[self], &attrs_of(&SOFTMAX, &[("axis", Attr::Int(axis))])?)
    }

    /// Log-softmax along `axis` (stable).
    pub fn log_softmax(&self, axis: i64) -> Result<Tensor> {
        call1(&LOG_SOFTMAX, &[self], &attrs_of(&LOG_SOFTMAX, &[("axis", Attr::Int(axis))])?)
    }

    /// Layer normalisation over the trailing `normalized_ndim` dimensions, with optional
    /// elementwise `weight` and `bias` of those dimensions' shape.
    pub fn layer_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        normalized_ndim: usize,
        eps: f64,
    ) -> Result<Tensor> {
        let attrs = attrs_of(
            &LAYER_NORM,
            &[("normalized_ndim", Attr::Int(normalized_ndim as i64)), ("eps", Attr::Float(eps))],
        )?;
        // Optional inputs are positional: a bias without a weight gets a weight of ones.
        let ones;
        let weight = match (weight, bias) {
            (None, Some(b)) => {
                ones = Tensor::ones(b.shape(), b.dtype(), b.device())?;
                Some(&ones)
            }
            _ => weight,
        };
        let mut ins = vec![self];
        ins.extend(weight);
        ins.extend(bias);
        call1(&LAYER_NORM, &ins, &attrs)
    }

    /// Batch normalisation of `[N, C, ...]`; returns `(out, new_running_mean, new_running_var)`.
    /// Training uses batch statistics and updates the running ones (unbiased variance);
    /// inference uses the running statistics and returns them unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let attrs = attrs_of(
            &BATCH_NORM,
            &[("training", Attr::Bool(training)), ("momentum", Attr::Float(momentum)), ("eps", Attr::Float(eps))],
        )?;
        let mut o = call(&BATCH_NORM, &[self, weight, bias, running_mean, running_var], &attrs)?.into_iter();
        let mut next = || o.next().ok_or_else(|| Error::Internal("batch_norm returned fewer than 3 outputs".into()));
        Ok((next()?, next()?, next()?))
    }

    /// Inverted dropout: zeroes elements with probability `p` and scales the rest by 1/(1-p);
    /// the identity when not `training`. The same seed gives the same mask.
    pub fn dropout(&self, p: f64, training: bool, seed: u64) -> Result<Tensor> {
        let attrs = attrs_of(
            &DROPOUT,
            &[("p", Attr::Float(p)), ("training", Attr::Bool(training)), ("seed", Attr::Int(seed as i64))],
        )?;
        call1(&DROPOUT, &[self], &attrs)
    }
}
