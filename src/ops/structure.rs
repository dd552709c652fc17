//! Structure ops: concat, stack, split, pad.

use super::dispatch::{attrs_of, call, call1};
use super::index::{elems, emit_zeros_like, par_copy, par_rows, split3, widened, with_accum};
use super::movement::SQUEEZE;
use super::util::{one, require_numeric};
use super::{ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, GradVal, InferCtx, Meta, OpDef, OpKind, Val};
use crate::backend::cpu::elementwise::new_host;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::dims::Dims;
use crate::tensor::layout::normalize_axis;
use crate::with_dtype;

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

fn slice_attrs(dim: usize, start: usize, end: usize) -> Result<Attrs> {
    attrs_of(
        &super::movement::SLICE,
        &[
            ("dim", Attr::Int(dim as i64)),
            ("start", Attr::Int(start as i64)),
            ("end", Attr::Int(end as i64)),
            ("step", Attr::Int(1)),
        ],
    )
}

/// Checks that every input has input 0's dtype.
fn same_dtype_all(ctx: &InferCtx) -> Result<DType> {
    let d = ctx.inputs[0].dtype;
    if let Some((i, m)) = ctx.inputs.iter().enumerate().find(|(_, m)| m.dtype != d) {
        return Err(Error::InvalidDtype { arg: "xs", msg: format!("input {i} is {}, input 0 is {d}", m.dtype) });
    }
    Ok(d)
}

/// Joins contiguous `parts` row by row: output row o is part 0's row o, then part 1's row o, ...
/// where each part has `outer` rows.
fn join_rows(parts: &[Tensor], outer: usize, shape: &[usize], dtype: DType) -> Result<Tensor> {
    with_dtype!(dtype, T => {
        let srcs: Vec<(&[T], usize)> =
            parts.iter().map(|p| Ok((elems::<T>(p)?, p.numel() / outer.max(1)))).collect::<Result<_>>()?;
        let row: usize = srcs.iter().map(|s| s.1).sum();
        new_host::<T>(shape, |out| {
            if outer == 1 {
                let mut at = 0;
                for (s, w) in &srcs {
                    par_copy(&mut out[at..at + w], &s[..*w]);
                    at += w;
                }
            } else {
                par_rows(out, row, |o0, chunk| {
                    for (k, orow) in chunk.chunks_exact_mut(row).enumerate() {
                        let o = o0 + k;
                        let mut at = 0;
                        for (s, w) in &srcs {
                            orow[at..at + w].copy_from_slice(&s[o * w..(o + 1) * w]);
                            at += w;
                        }
                    }
                })
            }
        })
    })
}

const DIM0: &[AttrSpec] = &[AttrSpec::with_default(
    "dim",
    AttrKind::Int,
    AttrDefault::Int(0),
    "the dimension (negative counts from the end)",
)];

/// Tensors joined along an existing dimension.
pub static CONCAT: OpDef = OpDef {
    name: "concat",
    kind: OpKind::Movement,
    doc: "xs joined along `dim`; all of one dtype, shapes equal except in `dim`",
    inputs: &[ArgSpec::many("xs")],
    outputs: &["out"],
    attrs: DIM0,
    infer: |ctx| {
        let dtype = same_dtype_all(ctx)?;
        let first = &ctx.inputs[0];
        let dim = normalize_axis(ctx.attrs.int("dim"), first.shape.len(), "dim")?;
        let mut shape = first.shape.clone();
        shape[dim] = 0;
        for (i, m) in ctx.inputs.iter().enumerate() {
            let agree = m.shape.len() == first.shape.len()
                && m.shape.iter().zip(&first.shape).enumerate().all(|(d, (a, b))| d == dim || a == b);
            if !agree {
                return Err(Error::shape(
                    "xs",
                    format!(
                        "input {i} has shape {:?}, input 0 {:?}: they must agree except in dimension {dim}",
                        m.shape, first.shape
                    ),
                ));
            }
            shape[dim] += m.shape[dim];
        }
        one(shape, dtype)
    },
    forward: |ctx| {
        let out = &ctx.outputs[0];
        let dim = normalize_axis(ctx.attrs.int("dim"), out.shape.len(), "dim")?;
        let parts: Vec<Tensor> = ctx.inputs.iter().map(Tensor::raw_contiguous).collect::<Result<_>>()?;
        Ok(vec![join_rows(&parts, split3(&out.shape, dim).0, &out.shape, out.dtype)?])
    },
    backward: Some(|e, c| {
        let g = c.grads[0].expect("one output");
        let dim = normalize_axis(c.attrs.int("dim"), e.meta(g).shape.len(), "dim")?;
        let mut start = 0;
        c.inputs
            .iter()
            .map(|&x| {
                let n = e.meta(x).shape[dim];
                let s = e.op(&super::movement::SLICE, &[g], slice_attrs(dim, start, start + n)?)?;
                start += n;
                Ok(dense(s))
            })
            .collect()
    }),
    pure: true,
    pointwise: None,
};

/// Tensors of one shape stacked along a new dimension.
pub static STACK: OpDef = OpDef {
    name: "stack",
    kind: OpKind::Movement,
    doc: "xs (one shape and dtype) stacked along a new dimension `dim` (0..=rank; negative counts from the end)",
    inputs: &[ArgSpec::many("xs")],
    outputs: &["out"],
    attrs: DIM0,
    infer: |ctx| {
        let dtype = same_dtype_all(ctx)?;
        let first = &ctx.inputs[0];
        let dim = normalize_axis(ctx.attrs.int("dim"), first.shape.len() + 1, "dim")?;
        if let Some((i, m)) = ctx.inputs.iter().enumerate().find(|(_, m)| m.shape != first.shape) {
            return Err(Error::shape("xs", format!("input {i} has shape {:?}, input 0 {:?}", m.shape, first.shape)));
        }
        let mut shape = first.shape.clone();
        shape.insert(dim, ctx.inputs.len());
        one(shape, dtype)
    },
    forward: |ctx| {
        let out = &ctx.outputs[0];
        let dim = normalize_axis(ctx.attrs.int("dim"), out.shape.len(), "dim")?;
        let parts: Vec<Tensor> = ctx.inputs.iter().map(Tensor::raw_contiguous).collect::<Result<_>>()?;
        Ok(vec![join_rows(&parts, split3(&out.shape, dim).0, &out.shape, out.dtype)?])
    },
    backward: Some(|e, c| {
        let g = c.grads[0].expect("one output");
        let dim = normalize_axis(c.attrs.int("dim"), e.meta(g).shape.len(), "dim")?;
        let squeeze = attrs_of(&SQUEEZE, &[("dim", Attr::Int(dim as i64))])?;
        (0..c.inputs.len())
            .map(|i| {
                let s = e.op(&super::movement::SLICE, &[g], slice_attrs(dim, i, i + 1)?)?;
                Ok(dense(e.op(&SQUEEZE, &[s], squeeze.clone())?))
            })
            .collect()
    }),
    pure: true,
    pointwise: None,
};

/// The piece sizes of a split of a dimension of size `n`.
fn split_sizes(attrs: &Attrs, n: usize) -> Result<Vec<usize>> {
    match (attrs.opt_ints("sizes"), attrs.opt_int("split_size")) {
        (Some(_), Some(_)) | (None, None) => {
            Err(Error::invalid("sizes", "give exactly one of `sizes` (piece sizes) and `split_size` (one size)"))
        }
        (Some(sizes), None) => {
            if let Some(&s) = sizes.iter().find(|&&s| s < 0) {
                return Err(Error::invalid("sizes", format!("piece sizes must be >= 0, given {s} in {sizes:?}")));
            }
            let total: i64 = sizes.iter().sum();
            if total != n as i64 {
                return Err(Error::shape("sizes", format!("{sizes:?} add up to {total}, the dimension has {n}")));
            }
            Ok(sizes.iter().map(|&s| s as usize).collect())
        }
        (None, Some(k)) => {
            if k < 1 {
                return Err(Error::invalid("split_size", format!("must be >= 1, given {k}")));
            }
            let k = k as usize;
            if n == 0 {
                return Ok(vec![0]);
            }
            Ok((0..n).step_by(k).map(|s| k.min(n - s)).collect())
        }
    }
}

/// A tensor cut into pieces along one dimension (zero-copy views).
pub static SPLIT: OpDef = OpDef {
    name: "split",
    kind: OpKind::Movement,
    doc: "x cut along `dim` into pieces of `sizes` (summing to the dimension) or of `split_size` (the last may be smaller); views",
    inputs: &[ArgSpec::req("x")],
    outputs: &["pieces"],
    attrs: &[
        AttrSpec::with_default("dim", AttrKind::Int, AttrDefault::Int(0), "the dimension to cut"),
        AttrSpec::with_default("sizes", AttrKind::Ints, AttrDefault::Optional, "each piece's size"),
        AttrSpec::with_default("split_size", AttrKind::Int, AttrDefault::Optional, "one size for every piece"),
    ],
    infer: |ctx| {
        let x = &ctx.inputs[0];
        let dim = normalize_axis(ctx.attrs.int("dim"), x.shape.len(), "dim")?;
        Ok(split_sizes(ctx.attrs, x.shape[dim])?
            .into_iter()
            .map(|s| {
                let mut shape = x.shape.clone();
                shape[dim] = s;
                Meta::new(shape, x.dtype)
            })
            .collect())
    },
    forward: |ctx| {
        let x = &ctx.inputs[0];
        let dim = normalize_axis(ctx.attrs.int("dim"), x.ndim(), "dim")?;
        let mut start = 0;
        ctx.outputs
            .iter()
            .map(|m| {
                let n = m.shape[dim];
                let piece = x.raw_slice(dim as i64, start as i64, (start + n) as i64, 1)?;
                start += n;
                Ok(piece)
            })
            .collect()
    },
    backward: Some(|e, c| {
        let dim = normalize_axis(c.attrs.int("dim"), e.meta(c.inputs[0]).shape.len(), "dim")?;
        // Pieces that did not reach the loss contribute zeros.
        let parts: Vec<Val> = c
            .outputs
            .iter()
            .zip(c.grads)
            .map(|(&o, g)| match g {
                Some(g) => Ok(*g),
                None => emit_zeros_like(e, o),
            })
            .collect::<Result<_>>()?;
        if parts.len() == 1 {
            return Ok(vec![dense(parts[0])]);
        }
        let g = e.op(&CONCAT, &parts, attrs_of(&CONCAT, &[("dim", Attr::Int(dim as i64))])?)?;
        Ok(vec![dense(g)])
    }),
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// pad

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PadMode {
    Constant,
    Reflect,
    Replicate,
}

/// Per dimension (in order) the (before, after) pad, and the mode.
struct PadPlan {
    pads: Vec<(i64, i64)>,
    mode: PadMode,
}

impl PadPlan {
    /// Resolves and checks the `pads` and `mode` attributes against `shape`.
    fn new(attrs: &Attrs, shape: &[usize]) -> Result<PadPlan> {
        let given = attrs.ints("pads");
        let ndim = shape.len();
        if !given.len().is_multiple_of(2) || given.len() > 2 * ndim {
            return Err(Error::invalid(
                "pads",
                format!("needs pairs (before, after) for at most {ndim} dimensions, last first; given {given:?}"),
            ));
        }
        let mode = match attrs.str("mode") {
            "constant" => PadMode::Constant,
            "reflect" => PadMode::Reflect,
            "replicate" => PadMode::Replicate,
            m => {
                return Err(Error::invalid(
                    "mode",
                    format!("must be \"constant\", \"reflect\" or \"replicate\", given {m:?}"),
                ));
            }
        };
        let mut pads = vec![(0i64, 0i64); ndim];
        for (k, pair) in given.chunks(2).enumerate() {
            pads[ndim - 1 - k] = (pair[0], pair[1]);
        }
        for (d, (&n, &(l, r))) in shape.iter().zip(&pads).enumerate() {
            let n = n as i64;
            if n + l + r < 0 {
                return Err(Error::invalid("pads", format!("({l}, {r}) leave dimension {d} of size {n} negative")));
            }
            if mode != PadMode::Constant && (l < 0 || r < 0) {
                return Err(Error::invalid("pads", format!("{mode:?} padding needs pads >= 0, given ({l}, {r})")));
            }
            if mode == PadMode::Reflect && (l >= n || r >= n) && (l, r) != (0, 0) {
                return Err(Error::invalid(
                    "pads",
                    format!("reflect pads ({l}, {r}) must be smaller than dimension {d} (size {n})"),
                ));
            }
            if mode == PadMode::Replicate && n == 0 && (l, r) != (0, 0) {
                return Err(Error::invalid("pads", format!("cannot replicate-pad the empty dimension {d}")));
            }
        }
        Ok(PadPlan { pads, mode })
    }

    fn out_shape(&self, shape: &[usize]) -> Vec<usize> {
        shape.iter().zip(&self.pads).map(|(&n, &(l, r))| (n as i64 + l + r) as usize).collect()
    }

    /// The source coordinate of output coordinate `o` in a dimension of size `n` padded by `l`
    /// before (`None`: the constant fill).
    #[inline]
    fn source(&self, o: usize, n: usize, l: i64) -> Option<usize> {
        let (i, n) = (o as i64 - l, n as i64);
        match self.mode {
            PadMode::Constant => (0..n).contains(&i).then_some(i as usize),
            PadMode::Reflect => Some(if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            } as usize),
            PadMode::Replicate => Some(i.clamp(0, n - 1) as usize),
        }
    }
}

/// Pads row by row: leading coordinates map to a source row (or the fill), then the row's
/// middle is one contiguous copy and its edges are mapped element by element.
fn pad_kernel<T: Element>(x: &[T], shape: &[usize], plan: &PadPlan, fill: T, oshape: &[usize], out: &mut [T]) {
    let last = shape.len() - 1;
    let (n, m, l) = (shape[last], oshape[last], plan.pads[last].0);
    let strides = crate::tensor::layout::contiguous_strides(shape);
    let lo = l.clamp(0, m as i64) as usize;
    let hi = (l + n as i64).clamp(0, m as i64) as usize;
    par_rows(out, m, |r0, chunk| {
        for (k, orow) in chunk.chunks_exact_mut(m).enumerate() {
            let mut r = r0 + k;
            let mut base = Some(0usize);
            for d in (0..last).rev() {
                let c = r % oshape[d];
                r /= oshape[d];
                base = match (base, plan.source(c, shape[d], plan.pads[d].0)) {
                    (Some(b), Some(s)) => Some(b + s * strides[d]),
                    _ => None,
                };
            }
            let Some(base) = base else {
                orow.fill(fill);
                continue;
            };
            if hi > lo {
                let s = base + (lo as i64 - l) as usize;
                orow[lo..hi].copy_from_slice(&x[s..s + (hi - lo)]);
            }
            for o in (0..lo).chain(hi..m) {
                orow[o] = match plan.source(o, n, l) {
                    Some(i) => x[base + i],
                    None => fill,
                };
            }
        }
    });
}

const PAD_ATTRS: &[AttrSpec] = &[
    AttrSpec::required(
        "pads",
        AttrKind::Ints,
        "(before, after) pairs, last dimension first; negative crops (constant)",
    ),
    AttrSpec::with_default(
        "mode",
        AttrKind::Str,
        AttrDefault::Str("constant"),
        "\"constant\", \"reflect\" (mirror, edge not repeated) or \"replicate\" (repeat the edge)",
    ),
    AttrSpec::with_default("value", AttrKind::Float, AttrDefault::Float(0.0), "the fill of constant padding"),
];

/// A tensor padded (or, with negative pads, cropped) at the ends of its dimensions.
pub static PAD: OpDef = OpDef {
    name: "pad",
    kind: OpKind::Movement,
    doc: "x padded by `pads` (PyTorch order: last dimension first, [before, after, ...]) with a constant, reflection or the edge",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: PAD_ATTRS,
    infer: |ctx| {
        let x = &ctx.inputs[0];
        one(PadPlan::new(ctx.attrs, &x.shape)?.out_shape(&x.shape), x.dtype)
    },
    forward: |ctx| {
        let x = ctx.inputs[0].raw_contiguous()?;
        // A 0-d tensor takes no pads: pad it as [1] so that the kernel always has a last dimension.
        let (x, oshape) =
            if x.ndim() == 0 { (x.raw_reshape(&[1])?, Dims::from([1])) } else { (x, ctx.outputs[0].shape.clone()) };
        let plan = PadPlan::new(ctx.attrs, x.shape())?;
        let value = ctx.attrs.float("value");
        let out = with_dtype!(x.dtype(), T => {
            let src = elems::<T>(&x)?;
            new_host::<T>(&oshape, |out| pad_kernel(src, x.shape(), &plan, T::from_f64(value), &oshape, out))?
        });
        Ok(vec![if ctx.outputs[0].shape.is_empty() { out.raw_reshape(&[])? } else { out }])
    },
    backward: Some(|e, c| {
        let g = e.op(&PAD_BACKWARD, &[c.grads[0].expect("one output"), c.inputs[0]], c.attrs.clone())?;
        Ok(vec![dense(g)])
    }),
    pure: true,
    pointwise: None,
};

/// The adjoint of a 1-D pad of dimension `dim` on a contiguous `[outer, m, inner]` tensor:
/// every padded position adds into the source position it copied.
fn unpad_dim<T: super::index::Accum>(g: &[T], plan: &PadPlan, dim: usize, gshape: &[usize], n: usize, out: &mut [T]) {
    let (_, m, inner) = split3(gshape, dim);
    let l = plan.pads[dim].0;
    par_rows(out, n * inner, |o0, chunk| {
        for (k, block) in chunk.chunks_exact_mut(n * inner).enumerate() {
            block.fill(T::zero());
            let src = &g[(o0 + k) * m * inner..(o0 + k + 1) * m * inner];
            for p in 0..m {
                if let Some(i) = plan.source(p, n, l) {
                    let s = &src[p * inner..(p + 1) * inner];
                    block[i * inner..(i + 1) * inner].iter_mut().zip(s).for_each(|(a, &v)| a.acc(v));
                }
            }
        }
    });
}

/// The gradient of pad: each element of x receives the sum of the gradients of the output
/// positions that copied it.
pub static PAD_BACKWARD: OpDef = OpDef {
    name: "pad_backward",
    kind: OpKind::Opaque,
    doc: "the gradient of pad: g summed back onto the positions of `like` that each padded position copied",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("like")],
    outputs: &["out"],
    attrs: PAD_ATTRS,
    infer: |ctx| {
        let (g, like) = (&ctx.inputs[0], &ctx.inputs[1]);
        require_numeric(ctx.op, "g", g.dtype)?;
        let padded = PadPlan::new(ctx.attrs, &like.shape)?.out_shape(&like.shape);
        if padded != g.shape {
            return Err(Error::shape("g", format!("needs the padded shape {padded:?}, given {:?}", g.shape)));
        }
        one(like.shape.clone(), g.dtype)
    },
    forward: |ctx| {
        let like = &ctx.outputs[0];
        let plan = PadPlan::new(ctx.attrs, &like.shape)?;
        // One pass per padded dimension, each shrinking that dimension to its source size.
        let mut cur = widened(&ctx.inputs[0])?;
        for d in 0..like.shape.len() {
            if plan.pads[d] == (0, 0) {
                continue;
            }
            let mut shape = cur.shape().to_vec();
            shape[d] = like.shape[d];
            cur = with_accum!(cur.dtype(), T => {
                let src = elems::<T>(&cur)?;
                new_host::<T>(&shape, |out| unpad_dim(src, &plan, d, cur.shape(), like.shape[d], out))
            })?;
        }
        Ok(vec![cur.raw_contiguous()?.raw_cast(like.dtype)?])
    },
    backward: Some(|e, c| {
        let attrs = attrs_of(
            &PAD,
            &[("pads", Attr::Ints(c.attrs.ints("pads").to_vec())), ("mode", Attr::Str(c.attrs.str("mode").into()))],
        )?;
        Ok(vec![dense(e.op(&PAD, &[c.grads[0].expect("one output")], attrs)?), None])
    }),
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&CONCAT, &STACK, &SPLIT, &PAD, &PAD_BACKWARD];

impl Tensor {
    /// `xs` joined along `dim` (one dtype; shapes equal except in `dim`).
    pub fn concat(xs: &[&Tensor], dim: i64) -> Result<Tensor> {
        call1(&CONCAT, xs, &attrs_of(&CONCAT, &[("dim", Attr::Int(dim))])?)
    }

    /// `xs` (one shape and dtype) stacked along a new dimension `dim`.
    pub fn stack(xs: &[&Tensor], dim: i64) -> Result<Tensor> {
        call1(&STACK, xs, &attrs_of(&STACK, &[("dim", Attr::Int(dim))])?)
    }

    /// This tensor cut along `dim` into pieces of `sizes` (which must add up to the
    /// dimension); the pieces are views.
    pub fn split(&self, dim: i64, sizes: &[i64]) -> Result<Vec<Tensor>> {
        call(&SPLIT, &[self], &attrs_of(&SPLIT, &[("dim", Attr::Int(dim)), ("sizes", Attr::Ints(sizes.to_vec()))])?)
    }

    /// This tensor padded by `pads` (last dimension first: `[left, right, top, bottom, ..]`)
    /// in `mode` "constant" (fill `value`; negative pads crop), "reflect" or "replicate".
    pub fn pad(&self, pads: &[i64], mode: &str, value: f64) -> Result<Tensor> {
        let attrs = attrs_of(
            &PAD,
            &[("pads", Attr::Ints(pads.to_vec())), ("mode", Attr::Str(mode.into())), ("value", Attr::Float(value))],
        )?;
        call1(&PAD, &[self], &attrs)
    }
}
