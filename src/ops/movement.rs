//! Views and layout ops as differentiable ops: reshape, view, permute, transpose, slice, expand, squeeze, unsqueeze, contiguous.

use super::util::{broadcast_shapes, one};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, Emitter, ForwardCtx, GradVal, InferCtx, Meta, OpDef, OpKind,
    Val,
};
use crate::backend::cpu::elementwise::{host_slice, new_host};
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::tensor::layout::Layout;
use crate::with_dtype;

const X: &[ArgSpec] = &[ArgSpec::req("x")];

fn as_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

fn g0(c: &super::GradCtx) -> Val {
    c.grads[0].expect("one output")
}

/// Infers a view's output by applying `f` to a contiguous layout of the input's shape.
fn infer_view(ctx: &InferCtx, f: impl FnOnce(&Layout) -> Result<Layout>) -> Result<Vec<Meta>> {
    let x = &ctx.inputs[0];
    one(f(&Layout::contiguous(&x.shape))?.shape(), x.dtype)
}

fn reshape_attrs(shape: &[usize]) -> Result<Attrs> {
    Attrs::resolve("reshape", RESHAPE.attrs, &[("shape", Attr::Ints(as_i64(shape)))])
}

/// Emits `reshape(v, shape)`.
pub fn emit_reshape(e: &mut dyn Emitter, v: Val, shape: &[usize]) -> Result<Val> {
    e.op(&RESHAPE, &[v], reshape_attrs(shape)?)
}

const SHAPE_ATTR: &[AttrSpec] = &[AttrSpec::required("shape", AttrKind::Ints, "the new shape; one entry may be -1")];

/// Same elements, new shape; a view when the strides allow, else a copy.
pub static RESHAPE: OpDef = OpDef {
    name: "reshape",
    kind: OpKind::Movement,
    doc: "same elements with a new shape (one entry may be -1); zero-copy when the strides allow",
    inputs: X,
    outputs: &["out"],
    attrs: SHAPE_ATTR,
    infer: |ctx| {
        infer_view(ctx, |l| Ok(l.reshape(ctx.attrs.ints("shape"))?.expect("contiguous layouts always reshape")))
    },
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_reshape(ctx.attrs.ints("shape"))?]),
    backward: Some(|e, c| {
        let shape = e.meta(c.inputs[0]).shape;
        Ok(vec![dense(emit_reshape(e, g0(c), &shape)?)])
    }),
    pure: true,
    pointwise: None,
};

/// Like reshape, but an error instead of a copy.
pub static VIEW: OpDef = OpDef {
    name: "view",
    kind: OpKind::Movement,
    doc: "same elements with a new shape, never copying (an error when the strides do not allow it)",
    inputs: X,
    outputs: &["out"],
    attrs: SHAPE_ATTR,
    infer: RESHAPE.infer,
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_view(ctx.attrs.ints("shape"))?]),
    backward: RESHAPE.backward,
    pure: true,
    pointwise: None,
};

/// Reorders dimensions.
pub static PERMUTE: OpDef = OpDef {
    name: "permute",
    kind: OpKind::Movement,
    doc: "dimension k of the result is dimension dims[k] of x (zero-copy)",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::required("dims", AttrKind::Ints, "a permutation of 0..ndim")],
    infer: |ctx| infer_view(ctx, |l| l.permute(ctx.attrs.ints("dims"))),
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_permute(ctx.attrs.ints("dims"))?]),
    backward: Some(|e, c| {
        let ndim = e.meta(c.inputs[0]).shape.len();
        let dims = c.attrs.ints("dims");
        let mut inverse = vec![0i64; ndim];
        for (k, &d) in dims.iter().enumerate() {
            inverse[crate::tensor::layout::normalize_axis(d, ndim, "dims")?] = k as i64;
        }
        let attrs = Attrs::resolve("permute", PERMUTE.attrs, &[("dims", Attr::Ints(inverse))])?;
        Ok(vec![dense(e.op(&PERMUTE, &[g0(c)], attrs)?)])
    }),
    pure: true,
    pointwise: None,
};

/// Swaps two dimensions.
pub static TRANSPOSE: OpDef = OpDef {
    name: "transpose",
    kind: OpKind::Movement,
    doc: "swaps dimensions dim0 and dim1 (zero-copy)",
    inputs: X,
    outputs: &["out"],
    attrs: &[
        AttrSpec::required("dim0", AttrKind::Int, "first dimension"),
        AttrSpec::required("dim1", AttrKind::Int, "second dimension"),
    ],
    infer: |ctx| infer_view(ctx, |l| l.transpose(ctx.attrs.int("dim0"), ctx.attrs.int("dim1"))),
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_transpose(ctx.attrs.int("dim0"), ctx.attrs.int("dim1"))?]),
    backward: Some(|e, c| Ok(vec![dense(e.op(&TRANSPOSE, &[g0(c)], c.attrs.clone())?)])),
    pure: true,
    pointwise: None,
};

const SLICE_ATTRS: &[AttrSpec] = &[
    AttrSpec::required("dim", AttrKind::Int, "dimension to slice"),
    AttrSpec::with_default("start", AttrKind::Int, AttrDefault::Int(0), "first index (negative counts from the end)"),
    AttrSpec::with_default(
        "end",
        AttrKind::Int,
        AttrDefault::Int(i64::MAX),
        "stop before this index; the default runs to the end",
    ),
    AttrSpec::with_default("step", AttrKind::Int, AttrDefault::Int(1), "stride, >= 1"),
];

fn slice_layout(l: &Layout, attrs: &Attrs) -> Result<Layout> {
    let dim = attrs.int("dim");
    let end = attrs.int("end");
    let end = if end == i64::MAX {
        let d = crate::tensor::layout::normalize_axis(dim, l.ndim(), "dim")?;
        l.shape()[d] as i64
    } else {
        end
    };
    l.slice(dim, attrs.int("start"), end, attrs.int("step"))
}

/// Elements start, start+step, ... below end along one dimension.
pub static SLICE: OpDef = OpDef {
    name: "slice",
    kind: OpKind::Movement,
    doc: "indices start, start+step, ... below end along `dim` (zero-copy)",
    inputs: X,
    outputs: &["out"],
    attrs: SLICE_ATTRS,
    infer: |ctx| infer_view(ctx, |l| slice_layout(l, ctx.attrs)),
    forward: |ctx| {
        let x = &ctx.inputs[0];
        Ok(vec![x.view_as_layout(slice_layout(x.layout(), ctx.attrs)?)])
    },
    backward: Some(|e, c| Ok(vec![dense(e.op(&SLICE_BACKWARD, &[g0(c), c.inputs[0]], c.attrs.clone())?)])),
    pure: true,
    pointwise: None,
};

/// Zeros shaped like `like`, with `g` written into the slice `like[dim, start:end:step]`.
pub static SLICE_BACKWARD: OpDef = OpDef {
    name: "slice_backward",
    kind: OpKind::Movement,
    doc: "the gradient of slice: zeros like `like` with g placed at the sliced positions",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("like")],
    outputs: &["out"],
    attrs: SLICE_ATTRS,
    infer: |ctx| {
        let (g, like) = (&ctx.inputs[0], &ctx.inputs[1]);
        let sliced = slice_layout(&Layout::contiguous(&like.shape), ctx.attrs)?;
        if sliced.shape() != g.shape.as_slice() {
            return Err(Error::shape(
                "g",
                format!("shape {:?} does not match the slice's {:?}", g.shape, sliced.shape()),
            ));
        }
        one(like.shape.clone(), g.dtype)
    },
    forward: |ctx| {
        let g = ctx.inputs[0].raw_contiguous()?;
        let shape = &ctx.outputs[0].shape;
        let target = slice_layout(&Layout::contiguous(shape), ctx.attrs)?;
        Ok(vec![with_dtype!(g.dtype(), T => {
            let src = host_slice::<T>(&g)?;
            let base = g.layout().offset();
            new_host::<T>(shape, |out| {
                out.fill(T::zero());
                for (i, off) in target.offsets().enumerate() {
                    out[off] = src[base + i];
                }
            })?
        })])
    },
    backward: Some(|e, c| Ok(vec![dense(e.op(&SLICE, &[g0(c)], c.attrs.clone())?), None])),
    pure: true,
    pointwise: None,
};

/// Broadcasts to a shape without copying.
pub static EXPAND: OpDef = OpDef {
    name: "expand",
    kind: OpKind::Movement,
    doc: "broadcast to `shape` (NumPy rules; -1 keeps a dimension), zero-copy",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::required("shape", AttrKind::Ints, "target shape")],
    infer: |ctx| infer_view(ctx, |l| l.expand(ctx.attrs.ints("shape"))),
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_expand(ctx.attrs.ints("shape"))?]),
    backward: Some(|e, c| Ok(vec![dense(super::binary::unbroadcast(e, g0(c), c.inputs[0])?)])),
    pure: true,
    pointwise: None,
};

/// Broadcasts `x` to the shape of `like`.
pub static EXPAND_AS: OpDef = OpDef {
    name: "expand_as",
    kind: OpKind::Movement,
    doc: "broadcast x to like's shape, zero-copy",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("like")],
    outputs: &["out"],
    attrs: &[],
    infer: |ctx| {
        let (x, like) = (&ctx.inputs[0], &ctx.inputs[1]);
        if broadcast_shapes(ctx.op, &x.shape, &like.shape)? != like.shape {
            return Err(Error::shape("x", format!("{:?} does not broadcast to {:?}", x.shape, like.shape)));
        }
        one(like.shape.clone(), x.dtype)
    },
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_expand(&as_i64(&ctx.outputs[0].shape))?]),
    backward: Some(|e, c| Ok(vec![dense(super::binary::unbroadcast(e, g0(c), c.inputs[0])?), None])),
    pure: true,
    pointwise: None,
};

/// Removes a size-1 dimension (or all of them).
pub static SQUEEZE: OpDef = OpDef {
    name: "squeeze",
    kind: OpKind::Movement,
    doc: "removes size-1 dimension `dim`, or every size-1 dimension when `dim` is absent",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::with_default("dim", AttrKind::Int, AttrDefault::Optional, "the size-1 dimension to remove")],
    infer: |ctx| {
        infer_view(ctx, |l| match ctx.attrs.opt_int("dim") {
            Some(d) => l.squeeze(d),
            None => Ok(l.squeeze_all()),
        })
    },
    forward: |ctx| {
        let x = &ctx.inputs[0];
        Ok(vec![match ctx.attrs.opt_int("dim") {
            Some(d) => x.raw_squeeze(d)?,
            None => x.raw_squeeze_all(),
        }])
    },
    backward: Some(|e, c| {
        let shape = e.meta(c.inputs[0]).shape;
        Ok(vec![dense(emit_reshape(e, g0(c), &shape)?)])
    }),
    pure: true,
    pointwise: None,
};

/// Inserts a size-1 dimension.
pub static UNSQUEEZE: OpDef = OpDef {
    name: "unsqueeze",
    kind: OpKind::Movement,
    doc: "inserts a size-1 dimension at `dim` (-1 appends), zero-copy",
    inputs: X,
    outputs: &["out"],
    attrs: &[AttrSpec::required("dim", AttrKind::Int, "position of the new dimension")],
    infer: |ctx| infer_view(ctx, |l| l.unsqueeze(ctx.attrs.int("dim"))),
    forward: |ctx| Ok(vec![ctx.inputs[0].raw_unsqueeze(ctx.attrs.int("dim"))?]),
    backward: Some(|e, c| {
        let shape = e.meta(c.inputs[0]).shape;
        Ok(vec![dense(emit_reshape(e, g0(c), &shape)?)])
    }),
    pure: true,
    pointwise: None,
};

/// Packs the elements row-major (no copy when already contiguous).
pub static CONTIGUOUS: OpDef = OpDef {
    name: "contiguous",
    kind: OpKind::Movement,
    doc: "the same values laid out row-major; returns x itself when already contiguous",
    inputs: X,
    outputs: &["out"],
    attrs: &[],
    infer: |ctx| one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype),
    forward: |ctx: &ForwardCtx| Ok(vec![ctx.inputs[0].raw_contiguous()?]),
    backward: Some(|_, c| Ok(vec![dense(g0(c))])),
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[
    &RESHAPE,
    &VIEW,
    &PERMUTE,
    &TRANSPOSE,
    &SLICE,
    &SLICE_BACKWARD,
    &EXPAND,
    &EXPAND_AS,
    &SQUEEZE,
    &UNSQUEEZE,
    &CONTIGUOUS,
];
