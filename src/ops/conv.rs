//! Convolution and pooling: conv2d, max_pool2d, avg_pool2d and their backward ops.

use super::dispatch::{attrs_of, call1};
use super::util::{one, require_float, same_dtype};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, Emitter, ForwardCtx, GradCtx, GradVal, InferCtx, Meta,
    OpDef, OpKind, Val,
};
use crate::backend::cpu::elementwise::{host_slice, new_host};
use crate::backend::cpu::gemm::{GemmFloat, MatView, Start, gemm_into};
use crate::backend::cpu::im2col::{Geom, col2im, im2col};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install, num_threads};
use crate::tensor::Tensor;
use num_traits::Float;
use rayon::prelude::*;

const CONV_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("stride", AttrKind::Ints, AttrDefault::Ints(&[1, 1]), "[sh, sw], each >= 1"),
    AttrSpec::with_default("padding", AttrKind::Ints, AttrDefault::Ints(&[0, 0]), "zero padding [ph, pw], each >= 0"),
    AttrSpec::with_default("dilation", AttrKind::Ints, AttrDefault::Ints(&[1, 1]), "[dh, dw], each >= 1"),
    AttrSpec::with_default("groups", AttrKind::Int, AttrDefault::Int(1), "channel groups; divides C and O"),
];

const KERNEL_ATTR: AttrSpec = AttrSpec::required("kernel_size", AttrKind::Ints, "window [kh, kw], each >= 1");
const POOL_STRIDE_ATTR: AttrSpec =
    AttrSpec::with_default("stride", AttrKind::Ints, AttrDefault::Ints(&[]), "[sh, sw]; empty means kernel_size");
const POOL_PAD_ATTR: AttrSpec = AttrSpec::with_default(
    "padding",
    AttrKind::Ints,
    AttrDefault::Ints(&[0, 0]),
    "implicit padding [ph, pw], at most half the kernel",
);

const MAX_POOL_ATTRS: &[AttrSpec] = &[
    KERNEL_ATTR,
    POOL_STRIDE_ATTR,
    POOL_PAD_ATTR,
    AttrSpec::with_default("dilation", AttrKind::Ints, AttrDefault::Ints(&[1, 1]), "[dh, dw], each >= 1"),
];

const AVG_POOL_ATTRS: &[AttrSpec] = &[
    KERNEL_ATTR,
    POOL_STRIDE_ATTR,
    POOL_PAD_ATTR,
    AttrSpec::with_default(
        "count_include_pad",
        AttrKind::Bool,
        AttrDefault::Bool(true),
        "divide by the full window size (true) or by the in-bounds element count (false)",
    ),
];

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

/// A two-entry int-list attribute, each entry at least `min`.
fn pair(op: &str, attrs: &Attrs, name: &'static str, min: i64) -> Result<(usize, usize)> {
    let v = attrs.ints(name);
    if v.len() != 2 {
        return Err(Error::invalid(name, format!("{op}: `{name}` must have 2 entries [h, w], given {v:?}")));
    }
    if v.iter().any(|&x| x < min) {
        return Err(Error::range(name, format!("{op}: `{name}` entries must be >= {min}, given {v:?}")));
    }
    Ok((v[0] as usize, v[1] as usize))
}

/// Output length of a window sweep, or `None` when the (dilated) kernel is larger than the padded input.
fn out_len(input: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    let span = dil * (k - 1) + 1;
    let padded = input + 2 * pad;
    (padded >= span).then(|| (padded - span) / stride + 1)
}

fn windows(
    op: &str,
    arg: &'static str,
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    stride: (usize, usize),
    pad: (usize, usize),
    dil: (usize, usize),
) -> Result<(usize, usize)> {
    match (out_len(h, kh, stride.0, pad.0, dil.0), out_len(w, kw, stride.1, pad.1, dil.1)) {
        (Some(oh), Some(ow)) => Ok((oh, ow)),
        _ => Err(Error::shape(
            arg,
            format!(
                "{op}: kernel {kh}x{kw} (dilation {dil:?}) is larger than the padded input {}x{}",
                h + 2 * pad.0,
                w + 2 * pad.1
            ),
        )),
    }
}

/// A validated convolution: per-group geometry and the channel counts.
#[derive(Debug, Clone, Copy)]
struct Conv {
    /// Geometry of one group (`c` = input channels per group).
    geom: Geom,
    groups: usize,
    n: usize,
    cin: usize,
    cout: usize,
}

impl Conv {
    /// 1x1, stride 1, no padding: the input already is the column matrix.
    fn direct(&self) -> bool {
        let g = &self.geom;
        g.kh == 1 && g.kw == 1 && g.stride == (1, 1) && g.pad == (0, 0)
    }

    fn out_shape(&self) -> Vec<usize> {
        vec![self.n, self.cout, self.geom.oh, self.geom.ow]
    }
}

/// Validates a convolution of `x` `[N, C, H, W]` with `weight` `[O, C/groups, kh, kw]`.
fn conv_params(op: &str, x: &[usize], w: &[usize], attrs: &Attrs) -> Result<Conv> {
    if x.len() != 4 {
        return Err(Error::shape("x", format!("{op}: `x` must be 4-D [N, C, H, W], given shape {x:?}")));
    }
    if w.len() != 4 {
        return Err(Error::shape("weight", format!("{op}: `weight` must be 4-D [O, C/groups, kh, kw], given {w:?}")));
    }
    let groups = attrs.int("groups");
    if groups < 1 {
        return Err(Error::range("groups", format!("{op}: `groups` must be >= 1, given {groups}")));
    }
    let groups = groups as usize;
    let (cin, cout) = (x[1], w[0]);
    if cin % groups != 0 {
        return Err(Error::invalid(
            "groups",
            format!("{op}: groups {groups} does not divide the {cin} input channels"),
        ));
    }
    if cout % groups != 0 {
        return Err(Error::invalid(
            "groups",
            format!("{op}: groups {groups} does not divide the {cout} output channels of weight {w:?}"),
        ));
    }
    if w[1] != cin / groups {
        return Err(Error::shape(
            "weight",
            format!("{op}: weight {w:?} needs C/groups = {} input channels in dimension 1 (x {x:?})", cin / groups),
        ));
    }
    if w[2] == 0 || w[3] == 0 {
        return Err(Error::shape("weight", format!("{op}: kernel size must be >= 1, given weight {w:?}")));
    }
    let stride = pair(op, attrs, "stride", 1)?;
    let pad = pair(op, attrs, "padding", 0)?;
    let dil = pair(op, attrs, "dilation", 1)?;
    let (oh, ow) = windows(op, "weight", (x[2], x[3]), (w[2], w[3]), stride, pad, dil)?;
    let geom = Geom { c: cin / groups, h: x[2], w: x[3], kh: w[2], kw: w[3], stride, pad, dil, oh, ow };
    Ok(Conv { geom, groups, n: x[0], cin, cout })
}

/// Runs `f32f`/`f64f` on float inputs; f16/bf16 inputs are converted to f32, computed,
/// and the result rounded back once.
fn run_float(
    op: &str,
    inputs: &[&Tensor],
    f32f: impl FnOnce(&[Tensor]) -> Result<Tensor>,
    f64f: impl FnOnce(&[Tensor]) -> Result<Tensor>,
) -> Result<Tensor> {
    let d = inputs[0].dtype();
    let owned = |dt: Option<DType>| -> Result<Vec<Tensor>> {
        inputs.iter().map(|t| dt.map_or(Ok((*t).clone()), |dt| t.raw_cast(dt))).collect()
    };
    match d {
        DType::F32 => f32f(&owned(None)?),
        DType::F64 => f64f(&owned(None)?),
        DType::F16 | DType::BF16 => f32f(&owned(Some(DType::F32))?)?.raw_cast(d),
        _ => Err(Error::InvalidDtype { arg: "x", msg: format!("{op} needs a float tensor, given {d}") }),
    }
}

/// A contiguous copy (or the tensor itself) so kernels index plain planes.
fn packed(t: &Tensor) -> Result<Tensor> {
    t.raw_contiguous()
}

/// The elements of a contiguous tensor, from its first one.
fn elems<T: Element>(t: &Tensor) -> Result<&[T]> {
    Ok(&host_slice::<T>(t)?[t.layout().offset()..t.layout().offset() + t.numel()])
}

/// Runs `f(scratch, sample, out_chunk, gemm_threads)` for each sample's `per` outputs:
/// samples in parallel with serial GEMMs when there are at least as many as threads (no
/// thread idles and im2col runs in parallel too), else one sample at a time with a
/// parallel GEMM. `init` makes one scratch buffer per worker, not per sample.
fn per_sample<T: Send, S>(
    out: &mut [T],
    per: usize,
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, usize, &mut [T], usize) -> Result<()> + Sync + Send,
) -> Result<()> {
    if out.is_empty() || per == 0 {
        return Ok(());
    }
    let (n, threads) = (out.len() / per, num_threads());
    if threads > 1 && n >= threads {
        install(|| out.par_chunks_mut(per).enumerate().try_for_each_init(&init, |s, (i, o)| f(s, i, o, 1)))
    } else {
        let mut s = init();
        out.chunks_mut(per).enumerate().try_for_each(|(i, o)| f(&mut s, i, o, threads))
    }
}

fn conv_fwd<T: GemmFloat>(t: &[Tensor], cv: &Conv) -> Result<Tensor> {
    let (x, w) = (packed(&t[0])?, packed(&t[1])?);
    let b = t.get(2).map(packed).transpose()?;
    let (xs, ws) = (elems::<T>(&x)?, elems::<T>(&w)?);
    let bs = b.as_ref().map(elems::<T>).transpose()?;
    let g = cv.geom;
    let (cg, og, k, p, hw) = (g.c, cv.cout / cv.groups, g.col_rows(), g.col_cols(), g.h * g.w);
    let direct = cv.direct();
    let mut result = Ok(());
    let out = new_host::<T>(&cv.out_shape(), |out| {
        result = per_sample(
            out,
            cv.cout * p,
            || if direct { Vec::new() } else { vec![<T as Element>::zero(); k * p] },
            |col, i, o, th| {
                let xn = &xs[i * cv.cin * hw..(i + 1) * cv.cin * hw];
                for gi in 0..cv.groups {
                    let xg = &xn[gi * cg * hw..(gi + 1) * cg * hw];
                    let rhs: &[T] = if direct {
                        xg
                    } else {
                        im2col(xg, &g, col);
                        col
                    };
                    let dst = &mut o[gi * og * p..(gi + 1) * og * p];
                    if let Some(bs) = bs {
                        for (r, row) in dst.chunks_mut(p).enumerate() {
                            row.fill(bs[gi * og + r]);
                        }
                    }
                    let wv = MatView::new(gi * og * k, k, 1);
                    gemm_into(
                        (og, p, k),
                        dst,
                        p,
                        Start::keep_if(bs.is_some()),
                        ws,
                        wv,
                        rhs,
                        MatView::new(0, p, 1),
                        th,
                        None,
                    )?;
                }
                Ok(())
            },
        );
    })?;
    result?;
    Ok(out)
}

/// dx = col2im(Wᵀ · g) per sample and group.
fn conv_bwd_input<T: GemmFloat>(t: &[Tensor], cv: &Conv) -> Result<Tensor> {
    let (gt, w) = (packed(&t[0])?, packed(&t[1])?);
    let (gs, ws) = (elems::<T>(&gt)?, elems::<T>(&w)?);
    let g = cv.geom;
    let (cg, og, k, p, hw) = (g.c, cv.cout / cv.groups, g.col_rows(), g.col_cols(), g.h * g.w);
    let direct = cv.direct();
    let mut result = Ok(());
    let out = new_host::<T>(&[cv.n, cv.cin, g.h, g.w], |out| {
        result = per_sample(
            out,
            cv.cin * hw,
            || if direct { Vec::new() } else { vec![<T as Element>::zero(); k * p] },
            |col, i, dx, th| {
                for gi in 0..cv.groups {
                    let wt = MatView::new(gi * og * k, k, 1).t();
                    let gv = MatView::new((i * cv.cout + gi * og) * p, p, 1);
                    let dxg = &mut dx[gi * cg * hw..(gi + 1) * cg * hw];
                    if direct {
                        gemm_into((k, p, og), dxg, p, Start::Zero, ws, wt, gs, gv, th, None)?;
                    } else {
                        gemm_into((k, p, og), col, p, Start::Zero, ws, wt, gs, gv, th, None)?;
                        dxg.fill(<T as Element>::zero());
                        col2im(col, &g, dxg);
                    }
                }
                Ok(())
            },
        );
    })?;
    result?;
    Ok(out)
}

/// dW = Σ_samples g · im2col(x)ᵀ; samples split over threads, each with its own partial sum.
fn conv_bwd_weight<T: GemmFloat>(t: &[Tensor], cv: &Conv) -> Result<Tensor> {
    let (gt, x) = (packed(&t[0])?, packed(&t[1])?);
    let (gs, xs) = (elems::<T>(&gt)?, elems::<T>(&x)?);
    let g = cv.geom;
    let (cg, og, k, p, hw) = (g.c, cv.cout / cv.groups, g.col_rows(), g.col_cols(), g.h * g.w);
    let direct = cv.direct();
    let zero = <T as Element>::zero();
    let new_col = || if direct { Vec::new() } else { vec![zero; k * p] };
    let add_sample = |col: &mut Vec<T>, dw: &mut [T], i: usize, th: usize| -> Result<()> {
        let xn = &xs[i * cv.cin * hw..(i + 1) * cv.cin * hw];
        for gi in 0..cv.groups {
            let xg = &xn[gi * cg * hw..(gi + 1) * cg * hw];
            let rhs: &[T] = if direct {
                xg
            } else {
                im2col(xg, &g, col);
                col
            };
            let gv = MatView::new((i * cv.cout + gi * og) * p, p, 1);
            let dst = &mut dw[gi * og * k..(gi + 1) * og * k];
            gemm_into((og, k, p), dst, k, Start::Keep, gs, gv, rhs, MatView::new(0, p, 1).t(), th, None)?;
        }
        Ok(())
    };
    let threads = num_threads();
    let chunks = threads.min(cv.n);
    let mut result = Ok(());
    let out = new_host::<T>(&[cv.cout, cg, g.kh, g.kw], |dw| {
        dw.fill(zero);
        result = if chunks <= 1 {
            let mut col = new_col();
            (0..cv.n).try_for_each(|i| add_sample(&mut col, dw, i, threads))
        } else {
            let per = cv.n.div_ceil(chunks);
            let len = dw.len();
            install(|| {
                (0..chunks)
                    .into_par_iter()
                    .map(|c| {
                        let (mut part, mut col) = (vec![zero; len], new_col());
                        for i in c * per..cv.n.min((c + 1) * per) {
                            add_sample(&mut col, &mut part, i, 1)?;
                        }
                        Ok(part)
                    })
                    .collect::<Result<Vec<Vec<T>>>>()
            })
            .map(|parts| {
                for part in parts {
                    dw.iter_mut().zip(&part).for_each(|(d, &v)| *d = *d + v);
                }
            })
        };
    })?;
    result?;
    Ok(out)
}

fn infer_conv2d(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let dtype = same_dtype(ctx, &["x", "weight", "bias"])?;
    require_float(ctx.op, "x", dtype)?;
    let cv = conv_params(ctx.op, &ctx.inputs[0].shape, &ctx.inputs[1].shape, ctx.attrs)?;
    if let Some(b) = ctx.inputs.get(2)
        && b.shape != [cv.cout]
    {
        return Err(Error::shape(
            "bias",
            format!("{}: `bias` must have shape [{}], given {:?}", ctx.op, cv.cout, b.shape),
        ));
    }
    one(cv.out_shape(), dtype)
}

/// Re-resolves a call's attributes for another op that takes the same ones.
fn reattr(op: &'static OpDef, attrs: &Attrs) -> Result<Attrs> {
    let pairs: Vec<(&str, Attr)> = attrs.pairs().map(|(n, v)| (n, v.clone())).collect();
    Attrs::resolve(op.name, op.attrs, &pairs)
}

fn conv_backward(e: &mut dyn Emitter, c: &GradCtx) -> Result<Vec<Option<GradVal>>> {
    let (x, w, g) = (c.inputs[0], c.inputs[1], c.grads[0].expect("conv2d has one output"));
    // Skip the col2im pass for a first layer's input (data wants no gradient).
    let gx = if c.needs(0) {
        dense(e.op(&CONV2D_BACKWARD_INPUT, &[g, w, x], reattr(&CONV2D_BACKWARD_INPUT, c.attrs)?)?)
    } else {
        None
    };
    let gw = e.op(&CONV2D_BACKWARD_WEIGHT, &[g, x, w], reattr(&CONV2D_BACKWARD_WEIGHT, c.attrs)?)?;
    let mut grads = vec![gx, dense(gw)];
    if c.inputs.len() > 2 {
        let sum = &super::reduce::SUM;
        let attrs = attrs_of(sum, &[("axes", Attr::Ints(vec![0, 2, 3])), ("keepdim", Attr::Bool(false))])?;
        grads.push(dense(e.op(sum, &[g], attrs)?));
    }
    Ok(grads)
}

/// 2-D convolution (cross-correlation, as in PyTorch).
pub static CONV2D: OpDef = OpDef {
    name: "conv2d",
    kind: OpKind::MatmulLike,
    doc: "2-D convolution of x [N,C,H,W] with weight [O,C/groups,kh,kw] plus optional bias [O] (im2col + GEMM)",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("weight"), ArgSpec::opt("bias")],
    outputs: &["out"],
    attrs: CONV_ATTRS,
    infer: infer_conv2d,
    forward: |ctx: &ForwardCtx| {
        let cv = conv_params(ctx.op, ctx.inputs[0].shape(), ctx.inputs[1].shape(), ctx.attrs)?;
        let ins: Vec<&Tensor> = ctx.inputs.iter().collect();
        Ok(vec![run_float(ctx.op, &ins, |t| conv_fwd::<f32>(t, &cv), |t| conv_fwd::<f64>(t, &cv))?])
    },
    backward: Some(conv_backward),
    pure: true,
    pointwise: None,
};

/// Checks that `g` has the shape conv2d(x, weight) would produce.
fn check_grad_shape(op: &str, g: &Meta, cv: &Conv) -> Result<()> {
    if g.shape != cv.out_shape() {
        return Err(Error::shape(
            "g",
            format!("{op}: `g` must have the conv output shape {:?}, given {:?}", cv.out_shape(), g.shape),
        ));
    }
    Ok(())
}

/// The input gradient of conv2d.
pub static CONV2D_BACKWARD_INPUT: OpDef = OpDef {
    name: "conv2d_backward_input",
    kind: OpKind::MatmulLike,
    doc: "gradient of conv2d with respect to x: col2im(weightᵀ · g), shaped like `x`",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("weight"), ArgSpec::req("x")],
    outputs: &["out"],
    attrs: CONV_ATTRS,
    infer: |ctx| {
        let dtype = same_dtype(ctx, &["g", "weight"])?;
        require_float(ctx.op, "g", dtype)?;
        let cv = conv_params(ctx.op, &ctx.inputs[2].shape, &ctx.inputs[1].shape, ctx.attrs)?;
        check_grad_shape(ctx.op, &ctx.inputs[0], &cv)?;
        one(ctx.inputs[2].shape.clone(), dtype)
    },
    forward: |ctx| {
        let cv = conv_params(ctx.op, ctx.inputs[2].shape(), ctx.inputs[1].shape(), ctx.attrs)?;
        let ins = [&ctx.inputs[0], &ctx.inputs[1]];
        Ok(vec![run_float(ctx.op, &ins, |t| conv_bwd_input::<f32>(t, &cv), |t| conv_bwd_input::<f64>(t, &cv))?])
    },
    // Linear in (g, weight): the adjoints are conv2d and the weight gradient.
    backward: Some(|e, c| {
        let (g, w, dz) = (c.inputs[0], c.inputs[1], c.grads[0].expect("one output"));
        let gg = e.op(&CONV2D, &[dz, w], reattr(&CONV2D, c.attrs)?)?;
        let gw = e.op(&CONV2D_BACKWARD_WEIGHT, &[g, dz, w], reattr(&CONV2D_BACKWARD_WEIGHT, c.attrs)?)?;
        Ok(vec![dense(gg), dense(gw), None])
    }),
    pure: true,
    pointwise: None,
};

/// The weight gradient of conv2d.
pub static CONV2D_BACKWARD_WEIGHT: OpDef = OpDef {
    name: "conv2d_backward_weight",
    kind: OpKind::MatmulLike,
    doc: "gradient of conv2d with respect to weight: sum over samples of g · im2col(x)ᵀ, shaped like `weight`",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("x"), ArgSpec::req("weight")],
    outputs: &["out"],
    attrs: CONV_ATTRS,
    infer: |ctx| {
        let dtype = same_dtype(ctx, &["g", "x"])?;
        require_float(ctx.op, "g", dtype)?;
        let cv = conv_params(ctx.op, &ctx.inputs[1].shape, &ctx.inputs[2].shape, ctx.attrs)?;
        check_grad_shape(ctx.op, &ctx.inputs[0], &cv)?;
        one(ctx.inputs[2].shape.clone(), dtype)
    },
    forward: |ctx| {
        let cv = conv_params(ctx.op, ctx.inputs[1].shape(), ctx.inputs[2].shape(), ctx.attrs)?;
        let ins = [&ctx.inputs[0], &ctx.inputs[1]];
        Ok(vec![run_float(ctx.op, &ins, |t| conv_bwd_weight::<f32>(t, &cv), |t| conv_bwd_weight::<f64>(t, &cv))?])
    },
    // Linear in (g, x): the adjoints are conv2d and the input gradient.
    backward: Some(|e, c| {
        let (g, x, dw) = (c.inputs[0], c.inputs[1], c.grads[0].expect("one output"));
        let gg = e.op(&CONV2D, &[x, dw], reattr(&CONV2D, c.attrs)?)?;
        let gx = e.op(&CONV2D_BACKWARD_INPUT, &[g, dw, x], reattr(&CONV2D_BACKWARD_INPUT, c.attrs)?)?;
        Ok(vec![dense(gg), dense(gx), None])
    }),
    pure: true,
    pointwise: None,
};

/// Validates a pooling window over `x` `[N, C, H, W]`; `c` of the result counts planes (N·C).
fn pool_geom(op: &str, x: &[usize], attrs: &Attrs, dilated: bool) -> Result<Geom> {
    if x.len() != 4 {
        return Err(Error::shape("x", format!("{op}: `x` must be 4-D [N, C, H, W], given shape {x:?}")));
    }
    let kernel = pair(op, attrs, "kernel_size", 1)?;
    let stride = if attrs.ints("stride").is_empty() { kernel } else { pair(op, attrs, "stride", 1)? };
    let pad = pair(op, attrs, "padding", 0)?;
    if pad.0 > kernel.0 / 2 || pad.1 > kernel.1 / 2 {
        return Err(Error::invalid(
            "padding",
            format!("{op}: padding {pad:?} must be at most half the kernel size {kernel:?}"),
        ));
    }
    let dil = if dilated { pair(op, attrs, "dilation", 1)? } else { (1, 1) };
    let (oh, ow) = windows(op, "kernel_size", (x[2], x[3]), kernel, stride, pad, dil)?;
    Ok(Geom { c: x[0] * x[1], h: x[2], w: x[3], kh: kernel.0, kw: kernel.1, stride, pad, dil, oh, ow })
}

/// Runs `f(plane, out_plane)` for each of the planes of `out` (`per` elements each), in
/// parallel when the output is large.
fn per_plane<T: Send>(out: &mut [T], per: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if out.is_empty() || per == 0 {
        return;
    }
    if out.len() < PARALLEL_THRESHOLD {
        out.chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o));
    } else {
        install(|| out.par_chunks_mut(per).enumerate().for_each(|(i, o)| f(i, o)));
    }
}

/// The in-bounds input positions of output window `(y, z)`, row-major in the window.
fn window(g: &Geom, y: usize, z: usize) -> impl Iterator<Item = usize> + '_ {
    let (top, left) = ((y * g.stride.0) as isize - g.pad.0 as isize, (z * g.stride.1) as isize - g.pad.1 as isize);
    (0..g.kh).flat_map(move |i| {
        let r = top + (i * g.dil.0) as isize;
        (0..g.kw).filter_map(move |j| {
            let col = left + (j * g.dil.1) as isize;
            (r >= 0 && (r as usize) < g.h && col >= 0 && (col as usize) < g.w).then(|| r as usize * g.w + col as usize)
        })
    })
}

/// The maximum of window `(y, z)` and its position (the first on ties; NaN wins).
fn window_max<T: Float>(plane: &[T], g: &Geom, y: usize, z: usize) -> (T, Option<usize>) {
    let mut best = (T::neg_infinity(), None);
    for at in window(g, y, z) {
        let v = plane[at];
        if best.1.is_none() || v > best.0 || (v.is_nan() && !best.0.is_nan()) {
            best = (v, Some(at));
        }
    }
    best
}

fn max_pool_fwd<T: Float + Element>(t: &[Tensor], g: &Geom) -> Result<Tensor> {
    let x = packed(&t[0])?;
    let xs = elems::<T>(&x)?;
    let (hw, p) = (g.h * g.w, g.oh * g.ow);
    new_host::<T>(&[x.shape()[0], x.shape()[1], g.oh, g.ow], |out| {
        per_plane(out, p, |i, o| {
            let plane = &xs[i * hw..(i + 1) * hw];
            for (q, y) in o.iter_mut().enumerate() {
                *y = window_max(plane, g, q / g.ow, q % g.ow).0;
            }
        })
    })
}

fn max_pool_bwd<T: Float + Element>(t: &[Tensor], g: &Geom) -> Result<Tensor> {
    let (gt, x) = (packed(&t[0])?, packed(&t[1])?);
    let (gs, xs) = (elems::<T>(&gt)?, elems::<T>(&x)?);
    let (hw, p) = (g.h * g.w, g.oh * g.ow);
    new_host::<T>(x.shape(), |dx| {
        per_plane(dx, hw, |i, d| {
            d.fill(<T as Element>::zero());
            let plane = &xs[i * hw..(i + 1) * hw];
            for q in 0..p {
                if let (_, Some(at)) = window_max(plane, g, q / g.ow, q % g.ow) {
                    d[at] = d[at] + gs[i * p + q];
                }
            }
        })
    })
}

fn pool_check_g(op: &str, g: &Meta, geom: &Geom, x: &[usize]) -> Result<()> {
    let want = [x[0], x[1], geom.oh, geom.ow];
    if g.shape != want {
        return Err(Error::shape("g", format!("{op}: `g` must have the pooled shape {want:?}, given {:?}", g.shape)));
    }
    Ok(())
}

/// Max pooling over 2-D windows.
pub static MAX_POOL2D: OpDef = OpDef {
    name: "max_pool2d",
    kind: OpKind::Opaque,
    doc: "maximum over kh x kw windows of x [N,C,H,W] (stride, -inf padding, dilation)",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: MAX_POOL_ATTRS,
    infer: |ctx| {
        let x = &ctx.inputs[0];
        require_float(ctx.op, "x", x.dtype)?;
        let g = pool_geom(ctx.op, &x.shape, ctx.attrs, true)?;
        one(vec![x.shape[0], x.shape[1], g.oh, g.ow], x.dtype)
    },
    forward: |ctx| {
        let g = pool_geom(ctx.op, ctx.inputs[0].shape(), ctx.attrs, true)?;
        Ok(vec![run_float(ctx.op, &[&ctx.inputs[0]], |t| max_pool_fwd::<f32>(t, &g), |t| max_pool_fwd::<f64>(t, &g))?])
    },
    backward: Some(|e, c| {
        let g = c.grads[0].expect("one output");
        let attrs = reattr(&MAX_POOL2D_BACKWARD, c.attrs)?;
        Ok(vec![dense(e.op(&MAX_POOL2D_BACKWARD, &[g, c.inputs[0]], attrs)?)])
    }),
    pure: true,
    pointwise: None,
};

/// The gradient of max_pool2d.
pub static MAX_POOL2D_BACKWARD: OpDef = OpDef {
    name: "max_pool2d_backward",
    kind: OpKind::Opaque,
    doc: "gradient of max_pool2d: each window's g added at the window's argmax in x (first on ties)",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("x")],
    outputs: &["out"],
    attrs: MAX_POOL_ATTRS,
    infer: |ctx| {
        let dtype = same_dtype(ctx, &["g", "x"])?;
        require_float(ctx.op, "g", dtype)?;
        let x = &ctx.inputs[1].shape;
        let geom = pool_geom(ctx.op, x, ctx.attrs, true)?;
        pool_check_g(ctx.op, &ctx.inputs[0], &geom, x)?;
        one(x.clone(), dtype)
    },
    forward: |ctx| {
        let g = pool_geom(ctx.op, ctx.inputs[1].shape(), ctx.attrs, true)?;
        let ins = [&ctx.inputs[0], &ctx.inputs[1]];
        Ok(vec![run_float(ctx.op, &ins, |t| max_pool_bwd::<f32>(t, &g), |t| max_pool_bwd::<f64>(t, &g))?])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

/// The divisor of window `(y, z)`.
fn avg_divisor(g: &Geom, y: usize, z: usize, include_pad: bool) -> usize {
    if include_pad { g.kh * g.kw } else { window(g, y, z).count() }
}

fn avg_pool_fwd<T: Float + Element>(t: &[Tensor], g: &Geom, include_pad: bool) -> Result<Tensor> {
    let x = packed(&t[0])?;
    let xs = elems::<T>(&x)?;
    let (hw, p) = (g.h * g.w, g.oh * g.ow);
    new_host::<T>(&[x.shape()[0], x.shape()[1], g.oh, g.ow], |out| {
        per_plane(out, p, |i, o| {
            let plane = &xs[i * hw..(i + 1) * hw];
            for (q, y) in o.iter_mut().enumerate() {
                let (r, c) = (q / g.ow, q % g.ow);
                let s = window(g, r, c).fold(<T as Element>::zero(), |acc, at| acc + plane[at]);
                *y = s / T::from(avg_divisor(g, r, c, include_pad)).expect("small count");
            }
        })
    })
}

fn avg_pool_bwd<T: Float + Element>(t: &[Tensor], g: &Geom, include_pad: bool) -> Result<Tensor> {
    let gt = packed(&t[0])?;
    let gs = elems::<T>(&gt)?;
    let (hw, p) = (g.h * g.w, g.oh * g.ow);
    new_host::<T>(&[gt.shape()[0], gt.shape()[1], g.h, g.w], |dx| {
        per_plane(dx, hw, |i, d| {
            d.fill(<T as Element>::zero());
            for q in 0..p {
                let (r, c) = (q / g.ow, q % g.ow);
                let v = gs[i * p + q] / T::from(avg_divisor(g, r, c, include_pad)).expect("small count");
                for at in window(g, r, c) {
                    d[at] = d[at] + v;
                }
            }
        })
    })
}

/// Average pooling over 2-D windows.
pub static AVG_POOL2D: OpDef = OpDef {
    name: "avg_pool2d",
    kind: OpKind::Opaque,
    doc: "mean over kh x kw windows of x [N,C,H,W] (stride, zero padding counted or not)",
    inputs: &[ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AVG_POOL_ATTRS,
    infer: |ctx| {
        let x = &ctx.inputs[0];
        require_float(ctx.op, "x", x.dtype)?;
        let g = pool_geom(ctx.op, &x.shape, ctx.attrs, false)?;
        one(vec![x.shape[0], x.shape[1], g.oh, g.ow], x.dtype)
    },
    forward: |ctx| {
        let g = pool_geom(ctx.op, ctx.inputs[0].shape(), ctx.attrs, false)?;
        let inc = ctx.attrs.bool("count_include_pad");
        let ins = [&ctx.inputs[0]];
        Ok(vec![run_float(ctx.op, &ins, |t| avg_pool_fwd::<f32>(t, &g, inc), |t| avg_pool_fwd::<f64>(t, &g, inc))?])
    },
    backward: Some(|e, c| {
        let g = c.grads[0].expect("one output");
        let attrs = reattr(&AVG_POOL2D_BACKWARD, c.attrs)?;
        Ok(vec![dense(e.op(&AVG_POOL2D_BACKWARD, &[g, c.inputs[0]], attrs)?)])
    }),
    pure: true,
    pointwise: None,
};

/// The gradient of avg_pool2d.
pub static AVG_POOL2D_BACKWARD: OpDef = OpDef {
    name: "avg_pool2d_backward",
    kind: OpKind::Opaque,
    doc: "gradient of avg_pool2d: each window's g divided by its divisor and spread over the window, shaped like `x`",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("x")],
    outputs: &["out"],
    attrs: AVG_POOL_ATTRS,
    infer: |ctx| {
        let g = &ctx.inputs[0];
        require_float(ctx.op, "g", g.dtype)?;
        let x = &ctx.inputs[1].shape;
        let geom = pool_geom(ctx.op, x, ctx.attrs, false)?;
        pool_check_g(ctx.op, g, &geom, x)?;
        one(x.clone(), g.dtype)
    },
    forward: |ctx| {
        let g = pool_geom(ctx.op, ctx.inputs[1].shape(), ctx.attrs, false)?;
        let inc = ctx.attrs.bool("count_include_pad");
        let ins = [&ctx.inputs[0]];
        Ok(vec![run_float(ctx.op, &ins, |t| avg_pool_bwd::<f32>(t, &g, inc), |t| avg_pool_bwd::<f64>(t, &g, inc))?])
    },
    // avg_pool2d is linear, so the adjoint of its adjoint is itself.
    backward: Some(|e, c| {
        let dz = c.grads[0].expect("one output");
        Ok(vec![dense(e.op(&AVG_POOL2D, &[dz], reattr(&AVG_POOL2D, c.attrs)?)?), None])
    }),
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[
    &CONV2D,
    &CONV2D_BACKWARD_INPUT,
    &CONV2D_BACKWARD_WEIGHT,
    &MAX_POOL2D,
    &MAX_POOL2D_BACKWARD,
    &AVG_POOL2D,
    &AVG_POOL2D_BACKWARD,
];

fn ints(v: [i64; 2]) -> Attr {
    Attr::Ints(v.to_vec())
}

impl Tensor {
    /// 2-D convolution of `self` `[N, C, H, W]` with `weight` `[O, C/groups, kh, kw]` and an
    /// optional `bias` `[O]`; `stride`, `padding` and `dilation` are `[h, w]`.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: [i64; 2],
        padding: [i64; 2],
        dilation: [i64; 2],
        groups: i64,
    ) -> Result<Tensor> {
        let attrs = attrs_of(
            &CONV2D,
            &[
                ("stride", ints(stride)),
                ("padding", ints(padding)),
                ("dilation", ints(dilation)),
                ("groups", Attr::Int(groups)),
            ],
        )?;
        match bias {
            Some(b) => call1(&CONV2D, &[self, weight, b], &attrs),
            None => call1(&CONV2D, &[self, weight], &attrs),
        }
    }

    /// Max pooling of `self` `[N, C, H, W]` over `kernel_size` windows (`-inf` padding;
    /// pass `stride = kernel_size` for non-overlapping windows).
    pub fn max_pool2d(
        &self,
        kernel_size: [i64; 2],
        stride: [i64; 2],
        padding: [i64; 2],
        dilation: [i64; 2],
    ) -> Result<Tensor> {
        let attrs = attrs_of(
            &MAX_POOL2D,
            &[
                ("kernel_size", ints(kernel_size)),
                ("stride", ints(stride)),
                ("padding", ints(padding)),
                ("dilation", ints(dilation)),
            ],
        )?;
        call1(&MAX_POOL2D, &[self], &attrs)
    }

    /// Average pooling of `self` `[N, C, H, W]` over `kernel_size` windows; zero padding
    /// counts toward the divisor when `count_include_pad`.
    pub fn avg_pool2d(
        &self,
        kernel_size: [i64; 2],
        stride: [i64; 2],
        padding: [i64; 2],
        count_include_pad: bool,
    ) -> Result<Tensor> {
        let attrs = attrs_of(
            &AVG_POOL2D,
            &[
                ("kernel_size", ints(kernel_size)),
                ("stride", ints(stride)),
                ("padding", ints(padding)),
                ("count_include_pad", Attr::Bool(count_include_pad)),
            ],
        )?;
        call1(&AVG_POOL2D, &[self], &attrs)
    }
}
