//! Reductions over axes: sum, mean, max/min, prod, var/std, logsumexp, argmax/argmin, and `sum_to` (the adjoint of broadcasting).

use super::dispatch::{attrs_of, call1};
use super::util::{emit0, one, require_float, require_numeric, resolve_axes};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, Emitter, ForwardCtx, GradCtx, GradVal, InferCtx, Meta,
    OpDef, OpKind, Val,
};
use crate::backend::cpu::elementwise::{host_slice, new_host, par_chunks};
use crate::backend::cpu::reduce::{reduce_runs, sum_leading, sum_slice};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use num_traits::Float;
use rayon::prelude::*;

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
    // Leading axes of a packed tensor with rows wide enough to vectorise: add rows.
    let leading = !axes.is_empty() && axes.iter().enumerate().all(|(i, &a)| a == i);
    let width: usize = x.shape()[axes.len().min(x.ndim())..].iter().product();
    if leading && width >= 16 && x.layout().is_contiguous() {
        match x.dtype() {
            DType::F32 => return sum_leading::<f32>(x, axes.len()),
            DType::F64 => return sum_leading::<f64>(x, axes.len()),
            DType::BF16 => return sum_leading::<half::bf16>(x, axes.len()),
            DType::F16 => return sum_leading::<half::f16>(x, axes.len()),
            _ => {}
        }
    }
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
    pointwise: None,
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
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// Kernel helpers shared by the reduction, nn and loss families.

/// The float types kernels compute in (f16/bf16 are computed in f32).
pub trait Real: Float + Element + Send + Sync + std::iter::Sum {
    /// 0 (unambiguous: both `Float` and `Element` have a `zero()`).
    const ZERO: Self;
    /// 1.
    const ONE: Self;
}
impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
}
impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
}

/// The dtype a float kernel computes in: f64 stays, f32/f16/bf16 run in f32.
pub fn compute_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 { DType::F64 } else { DType::F32 }
}

/// `t` converted to `dtype` and packed row-major (no copy when it already is both).
pub fn packed(t: &Tensor, dtype: DType) -> Result<Tensor> {
    t.raw_cast(dtype)?.raw_contiguous()
}

/// The elements of a contiguous host tensor, row-major.
pub fn elems<T: Element>(t: &Tensor) -> Result<&[T]> {
    if !t.is_contiguous() {
        return Err(Error::Internal("elems: tensor is not contiguous".into()));
    }
    let s = host_slice::<T>(t)?;
    let o = t.layout().offset();
    Ok(&s[o..o + t.numel()])
}

/// Elements per parallel work item (as in the elementwise kernels).
const WORK_CHUNK: usize = 1 << 14;

/// Runs `f(row_index, row)` over consecutive rows of `row` elements of `out`, in parallel
/// when large; each work item covers whole rows.
pub fn fill_rows<U: Send>(out: &mut [U], row: usize, f: impl Fn(usize, &mut [U]) + Sync + Send) {
    if row == 0 || out.is_empty() {
        return;
    }
    let body = |first: usize, o: &mut [U]| {
        for (r, orow) in o.chunks_mut(row).enumerate() {
            f(first + r, orow);
        }
    };
    if out.len() < PARALLEL_THRESHOLD {
        body(0, out);
    } else {
        let per = (WORK_CHUNK / row).max(1);
        install(|| out.par_chunks_mut(per * row).enumerate().for_each(|(c, o)| body(c * per, o)));
    }
}

/// Sets `out[i] = f(i)` for every index, in parallel chunks when large.
pub fn fill_indexed<U: Send>(out: &mut [U], f: impl Fn(usize) -> U + Sync + Send) {
    par_chunks(out, |start, o| o.iter_mut().enumerate().for_each(|(k, y)| *y = f(start + k)));
}

/// Maps runs ("lanes") along `axes` (sorted, distinct) of same-shape inputs to an output of
/// that shape: `f(lane, [each input's lane], out_lane)`. Lanes are numbered in row-major
/// order of the kept dimensions, which is also the element order of a reduction over
/// `axes`, so per-lane values of a reduced tensor are indexed by the lane number.
pub fn map_lanes<T: Element, const K: usize>(
    xs: [&Tensor; K],
    axes: &[usize],
    f: impl Fn(usize, [&[T]; K], &mut [T]) + Sync + Send,
) -> Result<Tensor> {
    let shape = xs[0].shape().to_vec();
    let nd = shape.len();
    let perm: Vec<usize> = (0..nd).filter(|d| !axes.contains(d)).chain(axes.iter().copied()).collect();
    let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
    let perm_i64: Vec<i64> = perm.iter().map(|&d| d as i64).collect();
    let moved = xs
        .iter()
        .map(|x| if identity { x.raw_contiguous() } else { x.raw_permute(&perm_i64)?.raw_contiguous() })
        .collect::<Result<Vec<Tensor>>>()?;
    let srcs = moved.iter().map(elems::<T>).collect::<Result<Vec<&[T]>>>()?;
    let run: usize = axes.iter().map(|&d| shape[d]).product();
    let moved_shape: Vec<usize> = perm.iter().map(|&d| shape[d]).collect();
    let out = new_host::<T>(&moved_shape, |out| {
        fill_rows(out, run, |i, o| f(i, std::array::from_fn(|k| &srcs[k][i * run..(i + 1) * run]), o))
    })?;
    if identity {
        return Ok(out);
    }
    let mut inverse = vec![0i64; nd];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i as i64;
    }
    out.raw_permute(&inverse)?.raw_contiguous()
}

/// Runs a float reduction: `$body` over each run `$s: &[$F]` gives a `$F`; f16/bf16 go through f32.
macro_rules! reduce_float {
    ($x:expr, $axes:expr, $F:ident, $s:ident => $body:expr) => {{
        let x: &Tensor = $x;
        match x.dtype() {
            DType::F64 => {
                #[allow(dead_code)]
                type $F = f64;
                reduce_runs::<f64, f64>(x, $axes, |$s: &[f64]| $body)
            }
            d => {
                #[allow(dead_code)]
                type $F = f32;
                reduce_runs::<f32, f32>(&x.raw_cast(DType::F32)?, $axes, |$s: &[f32]| $body)?.raw_cast(d)
            }
        }
    }};
}

/// `g`, the gradient of a reduction of `x` over `axes`, broadcast back to `x`'s shape.
pub fn expand_grad(e: &mut dyn Emitter, g: Val, x: Val, axes: &[usize], keepdim: bool) -> Result<Val> {
    let shape = e.meta(x).shape;
    let g = if keepdim { g } else { super::movement::emit_reshape(e, g, &reduced_shape(&shape, axes, true))? };
    emit0(e, &super::movement::EXPAND_AS, &[g, x])
}

/// The resolved `axes` of a reduction's forward call and the element count each output covers.
fn grad_axes(e: &dyn Emitter, c: &GradCtx, op: &str) -> Result<(Vec<usize>, usize)> {
    let shape = e.meta(c.inputs[0]).shape;
    let axes = resolve_axes(op, c.attrs.ints("axes"), shape.len())?;
    let n = axes.iter().map(|&a| shape[a]).product();
    Ok((axes, n))
}

fn forward_axes(ctx: &ForwardCtx) -> Result<Vec<usize>> {
    resolve_axes(ctx.op, ctx.attrs.ints("axes"), ctx.inputs[0].ndim())
}

fn infer_reduce_float(ctx: &InferCtx) -> Result<Vec<Meta>> {
    require_float(ctx.op, "x", ctx.inputs[0].dtype)?;
    infer_reduce(ctx)
}

/// Errors when a reduction without an identity (max, argmax, ...) would reduce no elements.
fn require_nonempty(op: &str, shape: &[usize], axes: &[usize]) -> Result<()> {
    if axes.iter().any(|&a| shape[a] == 0) {
        return Err(Error::invalid("x", format!("{op}: cannot reduce an empty dimension of shape {shape:?}")));
    }
    Ok(())
}

fn infer_reduce_nonempty(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let out = infer_reduce(ctx)?;
    let x = &ctx.inputs[0];
    require_nonempty(ctx.op, &x.shape, &resolve_axes(ctx.op, ctx.attrs.ints("axes"), x.shape.len())?)?;
    Ok(out)
}

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

fn axes_attr(axes: &[usize]) -> Attr {
    Attr::Ints(axes.iter().map(|&a| a as i64).collect())
}

// ---------------------------------------------------------------------------------------------
// mean

/// Arithmetic mean over axes.
pub static MEAN: OpDef = OpDef {
    name: "mean",
    kind: OpKind::Reduce,
    doc: "mean over `axes` (all when empty), optionally keeping them as size 1; float only",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXES_KEEPDIM,
    infer: infer_reduce_float,
    forward: |ctx| {
        let axes = forward_axes(ctx)?;
        let out = reduce_float!(&ctx.inputs[0], &axes, F, s => sum_slice(s) / (s.len() as F))?;
        Ok(vec![reshape_to(out, &ctx.outputs[0])?])
    },
    backward: Some(|e, c| {
        let (axes, n) = grad_axes(e, c, "mean")?;
        let g = expand_grad(e, c.grads[0].expect("one output"), c.inputs[0], &axes, c.attrs.bool("keepdim"))?;
        let k = e.scalar(1.0 / n as f64, e.meta(g).dtype)?;
        Ok(vec![dense(emit0(e, &super::binary::MUL, &[g, k])?)])
    }),
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// max / min

fn float_extremum<F: Float, const MAX: bool>(s: &[F]) -> F {
    // NaN propagates, as in PyTorch: once the running value is NaN no comparison replaces it.
    s.iter().skip(1).fold(s[0], |m, &v| if v.is_nan() || (if MAX { v > m } else { v < m }) { v } else { m })
}

fn int_extremum<T: Ord + Copy, const MAX: bool>(s: &[T]) -> T {
    let it = s.iter().copied();
    if MAX { it.max() } else { it.min() }.expect("non-empty run")
}

fn extremum_forward<const MAX: bool>(ctx: &ForwardCtx) -> Result<Vec<Tensor>> {
    let x = &ctx.inputs[0];
    let axes = forward_axes(ctx)?;
    let out = match x.dtype() {
        DType::I32 => reduce_runs::<i32, i32>(x, &axes, int_extremum::<i32, MAX>)?,
        DType::I64 => reduce_runs::<i64, i64>(x, &axes, int_extremum::<i64, MAX>)?,
        DType::U8 => reduce_runs::<u8, u8>(x, &axes, int_extremum::<u8, MAX>)?,
        _ => reduce_float!(x, &axes, F, s => float_extremum::<F, MAX>(s))?,
    };
    Ok(vec![reshape_to(out, &ctx.outputs[0])?])
}

fn extremum_backward(e: &mut dyn Emitter, c: &GradCtx) -> Result<Vec<Option<GradVal>>> {
    let attrs = attrs_of(
        &MINMAX_BACKWARD,
        &[("axes", Attr::Ints(c.attrs.ints("axes").to_vec())), ("keepdim", Attr::Bool(c.attrs.bool("keepdim")))],
    )?;
    let g = e.op(&MINMAX_BACKWARD, &[c.inputs[0], c.outputs[0], c.grads[0].expect("one output")], attrs)?;
    Ok(vec![dense(g)])
}

/// Maximum over axes.
pub static MAX: OpDef = OpDef {
    name: "max",
    kind: OpKind::Reduce,
    doc: "maximum over `axes` (all when empty); NaN propagates; the gradient is shared equally by tied maxima",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXES_KEEPDIM,
    infer: infer_reduce_nonempty,
    forward: extremum_forward::<true>,
    backward: Some(extremum_backward),
    pure: true,
    pointwise: None,
};

/// Minimum over axes.
pub static MIN: OpDef = OpDef {
    name: "min",
    kind: OpKind::Reduce,
    doc: "minimum over `axes` (all when empty); NaN propagates; the gradient is shared equally by tied minima",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXES_KEEPDIM,
    infer: infer_reduce_nonempty,
    forward: extremum_forward::<false>,
    backward: Some(extremum_backward),
    pure: true,
    pointwise: None,
};

fn minmax_grad<F: Real>(x: &Tensor, out: &Tensor, g: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let (out, g) = (packed(out, F::DTYPE)?, packed(g, F::DTYPE)?);
    let (os, gs) = (elems::<F>(&out)?, elems::<F>(&g)?);
    map_lanes::<F, 1>([x], axes, |i, [s], o| {
        let m = os[i];
        let hit = |v: F| v == m || (v.is_nan() && m.is_nan());
        let count = s.iter().filter(|&&v| hit(v)).count();
        let share = gs[i] / F::from(count.max(1)).expect("count fits a float");
        for (y, &v) in o.iter_mut().zip(s) {
            *y = if hit(v) { share } else { F::ZERO };
        }
    })
}

/// Gradient of max/min: `g` split equally among the elements equal to the extremum.
pub static MINMAX_BACKWARD: OpDef = OpDef {
    name: "minmax_backward",
    kind: OpKind::Reduce,
    doc: "gradient of max/min over `axes`: g / (number of ties) at every element equal to `out`, 0 elsewhere",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("out"), ArgSpec::req("g")],
    outputs: &["grad_x"],
    attrs: AXES_KEEPDIM,
    infer: |ctx| {
        let red = infer_reduce_float(ctx)?;
        for (i, name) in [(1, "out"), (2, "g")] {
            if ctx.inputs[i].shape != red[0].shape || ctx.inputs[i].dtype != red[0].dtype {
                return Err(Error::shape(name, format!("{} must be {:?} {}", name, red[0].shape, red[0].dtype)));
            }
        }
        one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype)
    },
    forward: |ctx| {
        let axes = forward_axes(ctx)?;
        let [x, out, g] = [&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]];
        let dt = x.dtype();
        Ok(vec![match compute_dtype(dt) {
            DType::F64 => minmax_grad::<f64>(x, out, g, &axes)?,
            _ => minmax_grad::<f32>(&x.raw_cast(DType::F32)?, out, g, &axes)?.raw_cast(dt)?,
        }])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// prod

/// Product over axes.
pub static PROD: OpDef = OpDef {
    name: "prod",
    kind: OpKind::Reduce,
    doc: "product over `axes` (all when empty); integers wrap; the gradient is exact with zeros present",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXES_KEEPDIM,
    infer: infer_reduce,
    forward: |ctx| {
        let x = &ctx.inputs[0];
        let axes = forward_axes(ctx)?;
        let out = match x.dtype() {
            DType::I32 => reduce_runs::<i32, i32>(x, &axes, |s| s.iter().fold(1i32, |a, &b| a.wrapping_mul(b)))?,
            DType::I64 => reduce_runs::<i64, i64>(x, &axes, |s| s.iter().fold(1i64, |a, &b| a.wrapping_mul(b)))?,
            DType::U8 => reduce_runs::<u8, u8>(x, &axes, |s| s.iter().fold(1u8, |a, &b| a.wrapping_mul(b)))?,
            _ => reduce_float!(x, &axes, F, s => s.iter().fold(1.0 as F, |a, &b| a * b))?,
        };
        Ok(vec![reshape_to(out, &ctx.outputs[0])?])
    },
    backward: Some(|e, c| {
        let attrs = attrs_of(
            &PROD_BACKWARD,
            &[("axes", Attr::Ints(c.attrs.ints("axes").to_vec())), ("keepdim", Attr::Bool(c.attrs.bool("keepdim")))],
        )?;
        Ok(vec![dense(e.op(&PROD_BACKWARD, &[c.inputs[0], c.grads[0].expect("one output")], attrs)?)])
    }),
    pure: true,
    pointwise: None,
};

fn prod_grad<F: Real>(x: &Tensor, g: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let g = packed(g, F::DTYPE)?;
    let gs = elems::<F>(&g)?;
    map_lanes::<F, 1>([x], axes, |i, [s], o| {
        // Product of all other elements = prefix product · suffix product: no division, so zeros are exact.
        let mut acc = F::ONE;
        for (y, &v) in o.iter_mut().zip(s) {
            *y = acc;
            acc = acc * v;
        }
        acc = gs[i];
        for (y, &v) in o.iter_mut().zip(s).rev() {
            *y = *y * acc;
            acc = acc * v;
        }
    })
}

/// Gradient of prod: `g · Π_{k≠j} x_k` for every element j, from prefix and suffix products.
pub static PROD_BACKWARD: OpDef = OpDef {
    name: "prod_backward",
    kind: OpKind::Reduce,
    doc: "gradient of prod over `axes`: g times the product of the other elements of the run (exact with zeros)",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("g")],
    outputs: &["grad_x"],
    attrs: AXES_KEEPDIM,
    infer: |ctx| {
        let red = infer_reduce_float(ctx)?;
        if ctx.inputs[1].shape != red[0].shape || ctx.inputs[1].dtype != red[0].dtype {
            return Err(Error::shape("g", format!("g must be {:?} {}", red[0].shape, red[0].dtype)));
        }
        one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype)
    },
    forward: |ctx| {
        let axes = forward_axes(ctx)?;
        let (x, g) = (&ctx.inputs[0], &ctx.inputs[1]);
        let dt = x.dtype();
        Ok(vec![match compute_dtype(dt) {
            DType::F64 => prod_grad::<f64>(x, g, &axes)?,
            _ => prod_grad::<f32>(&x.raw_cast(DType::F32)?, g, &axes)?.raw_cast(dt)?,
        }])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// argmax / argmin

const ARG_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default(
        "axis",
        AttrKind::Int,
        AttrDefault::Optional,
        "axis to search; absent: the flattened tensor",
    ),
    AttrSpec::with_default("keepdim", AttrKind::Bool, AttrDefault::Bool(false), "keep the searched axis as size 1"),
];

fn arg_axes(op: &str, attrs: &Attrs, ndim: usize) -> Result<Vec<usize>> {
    match attrs.opt_int("axis") {
        None => Ok((0..ndim).collect()),
        Some(a) => resolve_axes(op, &[a], ndim).map_err(|e| match e {
            Error::OutOfRange { msg, .. } => Error::OutOfRange { arg: "axis", msg },
            other => other,
        }),
    }
}

fn infer_arg(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let x = &ctx.inputs[0];
    require_numeric(ctx.op, "x", x.dtype)?;
    let axes = arg_axes(ctx.op, ctx.attrs, x.shape.len())?;
    if x.shape.iter().product::<usize>() == 0 {
        return Err(Error::invalid("x", format!("{}: cannot search an empty tensor of shape {:?}", ctx.op, x.shape)));
    }
    one(reduced_shape(&x.shape, &axes, ctx.attrs.bool("keepdim")), DType::I64)
}

fn float_arg<F: Float, const MAX: bool>(s: &[F]) -> i64 {
    // The first NaN wins (NaN counts as the extremum, as in PyTorch); otherwise the first of ties.
    let mut best = 0;
    if s[0].is_nan() {
        return 0;
    }
    for (i, &v) in s.iter().enumerate().skip(1) {
        if v.is_nan() {
            return i as i64;
        }
        if if MAX { v > s[best] } else { v < s[best] } {
            best = i;
        }
    }
    best as i64
}

fn int_arg<T: PartialOrd + Copy, const MAX: bool>(s: &[T]) -> i64 {
    let mut best = 0;
    for (i, &v) in s.iter().enumerate().skip(1) {
        if if MAX { v > s[best] } else { v < s[best] } {
            best = i;
        }
    }
    best as i64
}

fn arg_forward<const MAX: bool>(ctx: &ForwardCtx) -> Result<Vec<Tensor>> {
    let x = &ctx.inputs[0];
    let axes = arg_axes(ctx.op, ctx.attrs, x.ndim())?;
    let out = match x.dtype() {
        DType::I32 => reduce_runs::<i32, i64>(x, &axes, int_arg::<i32, MAX>)?,
        DType::I64 => reduce_runs::<i64, i64>(x, &axes, int_arg::<i64, MAX>)?,
        DType::U8 => reduce_runs::<u8, i64>(x, &axes, int_arg::<u8, MAX>)?,
        DType::F64 => reduce_runs::<f64, i64>(x, &axes, float_arg::<f64, MAX>)?,
        // f16/bf16 widen to f32 exactly, so the order (and the ties) are unchanged.
        _ => reduce_runs::<f32, i64>(&x.raw_cast(DType::F32)?, &axes, float_arg::<f32, MAX>)?,
    };
    Ok(vec![reshape_to(out, &ctx.outputs[0])?])
}

/// Index of the maximum.
pub static ARGMAX: OpDef = OpDef {
    name: "argmax",
    kind: OpKind::Reduce,
    doc: "i64 index of the maximum along `axis` (of the flattened tensor when absent); first index on ties",
    inputs: &[ArgSpec::req("x")],
    outputs: &["indices"],
    attrs: ARG_ATTRS,
    infer: infer_arg,
    forward: arg_forward::<true>,
    backward: None,
    pure: true,
    pointwise: None,
};

/// Index of the minimum.
pub static ARGMIN: OpDef = OpDef {
    name: "argmin",
    kind: OpKind::Reduce,
    doc: "i64 index of the minimum along `axis` (of the flattened tensor when absent); first index on ties",
    inputs: &[ArgSpec::req("x")],
    outputs: &["indices"],
    attrs: ARG_ATTRS,
    infer: infer_arg,
    forward: arg_forward::<false>,
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// var / std

const VAR_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("axes", AttrKind::Ints, AttrDefault::Ints(&[]), "axes to reduce; empty reduces all"),
    AttrSpec::with_default(
        "correction",
        AttrKind::Int,
        AttrDefault::Int(1),
        "divide by n - correction (1: unbiased, 0: population)",
    ),
    AttrSpec::with_default("keepdim", AttrKind::Bool, AttrDefault::Bool(false), "keep reduced axes as size 1"),
];

fn infer_var(ctx: &InferCtx) -> Result<Vec<Meta>> {
    if ctx.attrs.int("correction") < 0 {
        return Err(Error::range("correction", format!("{}: correction must be >= 0", ctx.op)));
    }
    infer_reduce_float(ctx)
}

/// Two-pass variance of a run with `n - correction` degrees of freedom (clamped at 0, as PyTorch).
fn var_run<F: Float>(s: &[F], correction: i64) -> F {
    let n = F::from(s.len()).expect("length fits a float");
    let mean = sum_slice(s) / n;
    let ss = s.iter().fold(F::zero(), |a, &v| a + (v - mean) * (v - mean));
    ss / F::from((s.len() as i64 - correction).max(0)).expect("fits a float")
}

fn var_forward<const STD: bool>(ctx: &ForwardCtx) -> Result<Vec<Tensor>> {
    let axes = forward_axes(ctx)?;
    let c = ctx.attrs.int("correction");
    let out = reduce_float!(&ctx.inputs[0], &axes, F, s => {
        let v = var_run::<F>(s, c);
        if STD { v.sqrt() } else { v }
    })?;
    Ok(vec![reshape_to(out, &ctx.outputs[0])?])
}

/// d var / dx · g = g · 2 (x − mean) / (n − c); std divides `g` by 2·std first.
fn var_backward<const STD: bool>(e: &mut dyn Emitter, c: &GradCtx) -> Result<Vec<Option<GradVal>>> {
    let op = if STD { "std" } else { "var" };
    let (axes, n) = grad_axes(e, c, op)?;
    let x = c.inputs[0];
    let dtype = e.meta(x).dtype;
    let mut g = c.grads[0].expect("one output");
    let dof = (n as i64 - c.attrs.int("correction")).max(0) as f64;
    let coef = if STD {
        g = emit0(e, &super::binary::DIV, &[g, c.outputs[0]])?;
        1.0 / dof
    } else {
        2.0 / dof
    };
    let g = expand_grad(e, g, x, &axes, c.attrs.bool("keepdim"))?;
    let mean_attrs = attrs_of(&MEAN, &[("axes", axes_attr(&axes)), ("keepdim", Attr::Bool(true))])?;
    let mean = e.op(&MEAN, &[x], mean_attrs)?;
    let d = emit0(e, &super::binary::SUB, &[x, mean])?;
    let k = e.scalar(coef, dtype)?;
    let d = emit0(e, &super::binary::MUL, &[d, k])?;
    Ok(vec![dense(emit0(e, &super::binary::MUL, &[d, g])?)])
}

/// Variance over axes.
pub static VAR: OpDef = OpDef {
    name: "var",
    kind: OpKind::Reduce,
    doc: "variance over `axes` (all when empty) with n - `correction` degrees of freedom; float only",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: VAR_ATTRS,
    infer: infer_var,
    forward: var_forward::<false>,
    backward: Some(var_backward::<false>),
    pure: true,
    pointwise: None,
};

/// Standard deviation over axes.
pub static STD: OpDef = OpDef {
    name: "std",
    kind: OpKind::Reduce,
    doc: "standard deviation over `axes` (all when empty) with n - `correction` degrees of freedom; float only",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: VAR_ATTRS,
    infer: infer_var,
    forward: var_forward::<true>,
    backward: Some(var_backward::<true>),
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// logsumexp

/// `ln Σ exp(s)`, shifted by the maximum so that nothing overflows.
pub fn logsumexp_run<F: Float>(s: &[F]) -> F {
    let m = s.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
    if !m.is_finite() {
        // All -inf (an empty sum: -inf), or some +inf (the sum is +inf).
        return if s.iter().any(|v| v.is_nan()) { F::nan() } else { m };
    }
    m + s.iter().fold(F::zero(), |a, &v| a + (v - m).exp()).ln()
}

/// Log of the sum of exponentials over axes, computed stably.
pub static LOGSUMEXP: OpDef = OpDef {
    name: "logsumexp",
    kind: OpKind::Reduce,
    doc: "ln(sum(exp(x))) over `axes` (all when empty), shifted by the maximum for stability; float only",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AXES_KEEPDIM,
    infer: infer_reduce_float,
    forward: |ctx| {
        let axes = forward_axes(ctx)?;
        let out = reduce_float!(&ctx.inputs[0], &axes, F, s => logsumexp_run::<F>(s))?;
        Ok(vec![reshape_to(out, &ctx.outputs[0])?])
    },
    backward: Some(|e, c| {
        // d/dx = exp(x - out): the softmax over the reduced axes.
        let (axes, _) = grad_axes(e, c, "logsumexp")?;
        let keepdim = c.attrs.bool("keepdim");
        let x = c.inputs[0];
        let g = expand_grad(e, c.grads[0].expect("one output"), x, &axes, keepdim)?;
        let out = expand_grad(e, c.outputs[0], x, &axes, keepdim)?;
        let d = emit0(e, &super::binary::SUB, &[x, out])?;
        let p = emit0(e, &super::unary::EXP, &[d])?;
        Ok(vec![dense(emit0(e, &super::binary::MUL, &[g, p])?)])
    }),
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// Tensor methods

fn reduce_call(op: &'static OpDef, x: &Tensor, axes: &[i64], keepdim: bool) -> Result<Tensor> {
    call1(op, &[x], &attrs_of(op, &[("axes", Attr::Ints(axes.to_vec())), ("keepdim", Attr::Bool(keepdim))])?)
}

fn var_call(op: &'static OpDef, x: &Tensor, axes: &[i64], correction: i64, keepdim: bool) -> Result<Tensor> {
    let attrs = attrs_of(
        op,
        &[("axes", Attr::Ints(axes.to_vec())), ("correction", Attr::Int(correction)), ("keepdim", Attr::Bool(keepdim))],
    )?;
    call1(op, &[x], &attrs)
}

fn arg_call(op: &'static OpDef, x: &Tensor, axis: Option<i64>, keepdim: bool) -> Result<Tensor> {
    let mut given = vec![("keepdim", Attr::Bool(keepdim))];
    if let Some(a) = axis {
        given.push(("axis", Attr::Int(a)));
    }
    call1(op, &[x], &attrs_of(op, &given)?)
}

impl Tensor {
    /// Mean over `axes` (all when empty); float tensors only.
    pub fn mean(&self, axes: &[i64], keepdim: bool) -> Result<Tensor> {
        reduce_call(&MEAN, self, axes, keepdim)
    }

    /// Maximum over `axes` (all when empty); ties share the gradient equally.
    pub fn max(&self, axes: &[i64], keepdim: bool) -> Result<Tensor> {
        reduce_call(&MAX, self, axes, keepdim)
    }

    /// Minimum over `axes` (all when empty); ties share the gradient equally.
    pub fn min(&self, axes: &[i64], keepdim: bool) -> Result<Tensor> {
        reduce_call(&MIN, self, axes, keepdim)
    }

    /// Product over `axes` (all when empty).
    pub fn prod(&self, axes: &[i64], keepdim: bool) -> Result<Tensor> {
        reduce_call(&PROD, self, axes, keepdim)
    }

    /// Variance over `axes` (all when empty) with `n - correction` degrees of freedom.
    pub fn var(&self, axes: &[i64], correction: i64, keepdim: bool) -> Result<Tensor> {
        var_call(&VAR, self, axes, correction, keepdim)
    }

    /// Standard deviation over `axes` (all when empty) with `n - correction` degrees of freedom.
    pub fn std(&self, axes: &[i64], correction: i64, keepdim: bool) -> Result<Tensor> {
        var_call(&STD, self, axes, correction, keepdim)
    }

    /// `ln Σ exp(self)` over `axes` (all when empty), computed stably.
    pub fn logsumexp(&self, axes: &[i64], keepdim: bool) -> Result<Tensor> {
        reduce_call(&LOGSUMEXP, self, axes, keepdim)
    }

    /// i64 index of the maximum along `axis` (of the flattened tensor when `None`); first on ties.
    pub fn argmax(&self, axis: Option<i64>, keepdim: bool) -> Result<Tensor> {
        arg_call(&ARGMAX, self, axis, keepdim)
    }

    /// i64 index of the minimum along `axis` (of the flattened tensor when `None`); first on ties.
    pub fn argmin(&self, axis: Option<i64>, keepdim: bool) -> Result<Tensor> {
        arg_call(&ARGMIN, self, axis, keepdim)
    }
}

/// This family's ops.
pub static OPS: &[&OpDef] = &[
    &SUM,
    &SUM_TO,
    &MEAN,
    &MAX,
    &MIN,
    &MINMAX_BACKWARD,
    &PROD,
    &PROD_BACKWARD,
    &ARGMAX,
    &ARGMIN,
    &VAR,
    &STD,
    &LOGSUMEXP,
];
