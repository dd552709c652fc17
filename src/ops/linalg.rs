//! Matrix products: matmul with batch broadcasting, bmm, linear.

use super::binary::unbroadcast;
use super::dispatch::call1;
use super::movement::{TRANSPOSE, emit_reshape};
use super::util::{broadcast_shapes, emit0, one, require_float, require_numeric, same_dtype};
use super::{ArgSpec, Attr, Attrs, Emitter, ForwardCtx, GradVal, InferCtx, Meta, OpDef, OpKind, Val};
use crate::backend::cpu::elementwise::{host_slice, new_host};
use crate::backend::cpu::gemm::{
    GemmFloat, GemmInt, MatView, RhsView, Start, Then, gemm_into, gemv, int_matmul_into, reads_panels,
};
use crate::backend::cpu::lowp::{LowpFloat, LowpOut, lowp_gemm_into};
use crate::backend::cpu::panels::{ColumnSplit, pack_panels};
use crate::backend::cpu::transpose::transpose_into;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install, num_threads};
use crate::tensor::Tensor;
use crate::tensor::dims::Dims;
use crate::tensor::layout::Layout;
use half::{bf16, f16};
use rayon::prelude::*;
use std::borrow::Cow;

/// Below this many multiply-adds per matrix, a batched product runs one serial GEMM per
/// batch entry in parallel: splitting a small GEMM over threads costs more than it gains.
const SMALL_GEMM: usize = 96 * 96 * 96;

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

/// The output shape of a NumPy matmul. 1-D operands are promoted (`a` to a row, `b` to a
/// column) and the added dimension is dropped from the output.
fn matmul_shape(op: &str, a: &[usize], b: &[usize]) -> Result<Dims> {
    for (arg, s) in [("a", a), ("b", b)] {
        if s.is_empty() {
            return Err(Error::shape(arg, format!("{op}: `{arg}` must have at least 1 dimension, given a 0-d tensor")));
        }
    }
    let pa: Vec<usize> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let pb: Vec<usize> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (na, nb) = (pa.len(), pb.len());
    let (rows, ka, kb, cols) = (pa[na - 2], pa[na - 1], pb[nb - 2], pb[nb - 1]);
    if ka != kb {
        return Err(Error::shape(
            "b",
            format!("{op}: inner dimensions differ: a {a:?} has {ka} columns, b {b:?} has {kb} rows"),
        ));
    }
    let batch = broadcast_shapes(op, &pa[..na - 2], &pb[..nb - 2])?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(rows);
    }
    if b.len() > 1 {
        out.push(cols);
    }
    Ok(out)
}

fn infer_matmul(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let dtype = same_dtype(ctx, &["a", "b"])?;
    require_numeric(ctx.op, "a", dtype)?;
    one(matmul_shape(ctx.op, &ctx.inputs[0].shape, &ctx.inputs[1].shape)?, dtype)
}

/// A single-matrix product kernel: `(rows, cols, inner)`, dst, lhs, lhs view, rhs, rhs view, threads.
type Kernel<'k, T> =
    dyn Fn((usize, usize, usize), &mut [T], &[T], MatView, &[T], MatView, usize) -> Result<()> + Sync + 'k;

/// `a · b` for operands of at least 2 dimensions whose batch dimensions broadcast; the
/// result is `[batch.., rows, cols]`, contiguous. Operands are read through their strides.
fn batched<T: Element>(a: &Tensor, b: &Tensor, kernel: &Kernel<T>) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    let (na, nb) = (sa.len(), sb.len());
    let (rows, inner, cols) = (sa[na - 2], sa[na - 1], sb[nb - 1]);
    let batch = broadcast_shapes("matmul", &sa[..na - 2], &sb[..nb - 2])?;
    let nbat = batch.len();
    let full = |last: [usize; 2]| batch.iter().copied().chain(last).map(|d| d as i64).collect::<Vec<_>>();
    let la = a.layout().expand(&full([rows, inner]))?;
    let lb = b.layout().expand(&full([inner, cols]))?;
    let av = MatView::new(la.offset(), la.strides()[nbat], la.strides()[nbat + 1]);
    let bv = MatView::new(lb.offset(), lb.strides()[nbat], lb.strides()[nbat + 1]);
    let count: usize = batch.iter().product();
    let (xa, xb) = (host_slice::<T>(a)?, host_slice::<T>(b)?);
    let threads = num_threads();
    let mut out_shape = batch.clone();
    out_shape.extend([rows, cols]);
    let mut result = Ok(());
    let out = new_host::<T>(&out_shape, |out| {
        result = (|| {
            if out.is_empty() {
                return Ok(());
            }
            // `b` shared by every batch entry and `a`'s batch and row dimensions one strided
            // run (the linear-layer case): a single tall GEMM instead of many short ones.
            let b_shared = lb.strides()[..nbat].iter().zip(&batch).all(|(&s, &d)| s == 0 || d == 1);
            if count > 1 && b_shared {
                let rows_l =
                    Layout::from_parts(out_shape[..=nbat].to_vec(), la.strides()[..=nbat].to_vec(), 0).coalesced();
                if rows_l.ndim() == 1 && rows_l.strides()[0] != 0 {
                    let av = MatView { rs: rows_l.strides()[0], ..av };
                    return kernel((count * rows, cols, inner), out, xa, av, xb, bv, threads);
                }
            }
            let offsets = |l: &Layout| -> Vec<usize> {
                Layout::from_parts(batch.clone(), l.strides()[..nbat].to_vec(), l.offset()).offsets().collect()
            };
            let (oa, ob) = (offsets(&la), offsets(&lb));
            let per = rows * cols;
            let work = rows * cols * inner;
            if count > 1 && threads > 1 && work < SMALL_GEMM && count * work >= PARALLEL_THRESHOLD {
                install(|| {
                    out.par_chunks_mut(per).zip(oa.par_iter().zip(ob.par_iter())).try_for_each(|(o, (&x, &y))| {
                        kernel((rows, cols, inner), o, xa, MatView { off: x, ..av }, xb, MatView { off: y, ..bv }, 1)
                    })
                })
            } else {
                for ((o, &x), &y) in out.chunks_mut(per).zip(&oa).zip(&ob) {
                    kernel(
                        (rows, cols, inner),
                        o,
                        xa,
                        MatView { off: x, ..av },
                        xb,
                        MatView { off: y, ..bv },
                        threads,
                    )?;
                }
                Ok(())
            }
        })();
    })?;
    result?;
    Ok(out)
}

fn float_kernel<T: GemmFloat>(
    dims: (usize, usize, usize),
    dst: &mut [T],
    a: &[T],
    av: MatView,
    b: &[T],
    bv: MatView,
    threads: usize,
) -> Result<()> {
    gemm_into(dims, dst, dims.1, Start::Zero, a, av, b, bv, threads, None)
}

/// bf16/f16 products: f32 accumulation, one rounding per output element.
fn lowp_kernel<T: LowpFloat + LowpOut>(
    dims: (usize, usize, usize),
    dst: &mut [T],
    a: &[T],
    av: MatView,
    b: &[T],
    bv: MatView,
    threads: usize,
) -> Result<()> {
    lowp_gemm_into(dims, dst, dims.1, a, av, b, bv, None, threads)
}

fn int_kernel<T: GemmInt>(
    dims: (usize, usize, usize),
    dst: &mut [T],
    a: &[T],
    av: MatView,
    b: &[T],
    bv: MatView,
    _threads: usize,
) -> Result<()> {
    int_matmul_into(dims, dst, a, av, b, bv)
}

/// `a · b` for operands of at least 2 dimensions, any dtype but bool: f32/f64 through
/// gemm, f16/bf16 through the low-precision kernels (f32 sums, rounded once), integers
/// with a wrapping loop.
pub fn matmul_nd(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    match a.dtype() {
        DType::F32 => batched::<f32>(a, b, &float_kernel::<f32>),
        DType::F64 => batched::<f64>(a, b, &float_kernel::<f64>),
        DType::F16 => batched::<f16>(a, b, &lowp_kernel::<f16>),
        DType::BF16 => batched::<bf16>(a, b, &lowp_kernel::<bf16>),
        DType::I32 => batched::<i32>(a, b, &int_kernel::<i32>),
        DType::I64 => batched::<i64>(a, b, &int_kernel::<i64>),
        DType::U8 => batched::<u8>(a, b, &int_kernel::<u8>),
        DType::Bool => Err(Error::InvalidDtype { arg: "a", msg: "matmul needs a numeric tensor, given bool".into() }),
    }
}

/// `a · b` for 2-D f32/f64 operands read through their strides (what [`MATMUL`] computes for
/// them), with `then` run on each finished block of the `[m, n]` result (a fused epilogue).
pub(crate) fn matmul_2d<T: GemmFloat>(a: &Tensor, b: &Tensor, then: &Then<T>) -> Result<Tensor> {
    if a.ndim() != 2 || b.ndim() != 2 || a.shape()[1] != b.shape()[0] {
        return Err(Error::shape("b", format!("matmul_2d: cannot multiply {:?} by {:?}", a.shape(), b.shape())));
    }
    let (m, k, n) = (a.shape()[0], a.shape()[1], b.shape()[1]);
    let av = MatView::new(a.layout().offset(), a.strides()[0], a.strides()[1]);
    let bv = MatView::new(b.layout().offset(), b.strides()[0], b.strides()[1]);
    let (xa, xb) = (host_slice::<T>(a)?, host_slice::<T>(b)?);
    let mut result = Ok(());
    let out = new_host::<T>(&[m, n], |out| {
        result = gemm_into((m, n, k), out, n, Start::Zero, xa, av, xb, bv, num_threads(), Some(then));
    })?;
    result.map(|()| out)
}

fn matmul_forward(ctx: &ForwardCtx) -> Result<Vec<Tensor>> {
    let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
    let a2 = if a.ndim() == 1 { a.raw_unsqueeze(0)? } else { a.clone() };
    let b2 = if b.ndim() == 1 { b.raw_unsqueeze(1)? } else { b.clone() };
    let out = matmul_nd(&a2, &b2)?;
    let shape: Vec<i64> = ctx.outputs[0].shape.iter().map(|&d| d as i64).collect();
    Ok(vec![out.raw_reshape(&shape)?])
}

/// Emits the transpose of the last two dimensions.
fn emit_t(e: &mut dyn Emitter, v: Val) -> Result<Val> {
    let attrs = Attrs::resolve("transpose", TRANSPOSE.attrs, &[("dim0", Attr::Int(-2)), ("dim1", Attr::Int(-1))])?;
    e.op(&TRANSPOSE, &[v], attrs)
}

/// The gradient of `matmul`: dA = g·Bᵀ, dB = Aᵀ·g on the promoted operands, summed over
/// broadcast batch dimensions and reshaped back for 1-D operands.
fn matmul_backward(e: &mut dyn Emitter, c: &super::GradCtx) -> Result<Vec<Option<GradVal>>> {
    let (a, b, g) = (c.inputs[0], c.inputs[1], c.grads[0].expect("matmul has one output"));
    let (sa, sb) = (e.meta(a).shape, e.meta(b).shape);
    let a2 = if sa.len() == 1 { emit_reshape(e, a, &[1, sa[0]])? } else { a };
    let b2 = if sb.len() == 1 { emit_reshape(e, b, &[sb[0], 1])? } else { b };
    let (pa, pb) = (e.meta(a2).shape, e.meta(b2).shape);
    let mut gshape = broadcast_shapes("matmul", &pa[..pa.len() - 2], &pb[..pb.len() - 2])?;
    gshape.extend([pa[pa.len() - 2], pb[pb.len() - 1]]);
    let g2 = if e.meta(g).shape != gshape { emit_reshape(e, g, &gshape)? } else { g };
    // Each product is skipped when its input wants no gradient (data, frozen weights).
    let ga = if c.needs(0) {
        let bt = emit_t(e, b2)?;
        let ga = emit0(e, &MATMUL, &[g2, bt])?;
        let ga = unbroadcast(e, ga, a2)?;
        Some(if sa.len() == 1 { emit_reshape(e, ga, &sa)? } else { ga })
    } else {
        None
    };
    let gb = if c.needs(1) {
        let at = emit_t(e, a2)?;
        let gb = emit0(e, &MATMUL, &[at, g2])?;
        let gb = unbroadcast(e, gb, b2)?;
        Some(if sb.len() == 1 { emit_reshape(e, gb, &sb)? } else { gb })
    } else {
        None
    };
    Ok(vec![ga.and_then(dense), gb.and_then(dense)])
}

/// Matrix product with NumPy rules.
pub static MATMUL: OpDef = OpDef {
    name: "matmul",
    kind: OpKind::MatmulLike,
    doc: "matrix product with NumPy rules: 1-D operands promoted and the added dimension removed, batch dims broadcast",
    inputs: &[ArgSpec::req("a"), ArgSpec::req("b")],
    outputs: &["out"],
    attrs: &[],
    infer: infer_matmul,
    forward: matmul_forward,
    backward: Some(matmul_backward),
    pure: true,
    pointwise: None,
};

/// Batched product of two 3-D tensors with equal batch sizes.
pub static BMM: OpDef = OpDef {
    name: "bmm",
    kind: OpKind::MatmulLike,
    doc: "batched matrix product [b,n,k] x [b,k,m] -> [b,n,m] (no broadcasting)",
    inputs: &[ArgSpec::req("a"), ArgSpec::req("b")],
    outputs: &["out"],
    attrs: &[],
    infer: |ctx| {
        let dtype = same_dtype(ctx, &["a", "b"])?;
        require_numeric(ctx.op, "a", dtype)?;
        let (a, b) = (&ctx.inputs[0].shape, &ctx.inputs[1].shape);
        for (arg, s) in [("a", a), ("b", b)] {
            if s.len() != 3 {
                return Err(Error::shape(arg, format!("bmm: `{arg}` must be 3-D, given shape {s:?}")));
            }
        }
        if a[0] != b[0] {
            return Err(Error::shape("b", format!("bmm: batch sizes differ: a {a:?}, b {b:?}")));
        }
        if a[2] != b[1] {
            return Err(Error::shape(
                "b",
                format!("bmm: inner dimensions differ: a {a:?} has {} columns, b {b:?} has {} rows", a[2], b[1]),
            ));
        }
        one(vec![a[0], a[1], b[2]], dtype)
    },
    forward: |ctx| Ok(vec![matmul_nd(&ctx.inputs[0], &ctx.inputs[1])?]),
    backward: Some(|e, c| {
        let (a, b, g) = (c.inputs[0], c.inputs[1], c.grads[0].expect("bmm has one output"));
        let bt = emit_t(e, b)?;
        let ga = emit0(e, &BMM, &[g, bt])?;
        let at = emit_t(e, a)?;
        let gb = emit0(e, &BMM, &[at, g])?;
        Ok(vec![dense(ga), dense(gb)])
    }),
    pure: true,
    pointwise: None,
};

fn infer_linear(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let dtype = same_dtype(ctx, &["x", "weight", "bias"])?;
    require_float(ctx.op, "x", dtype)?;
    let (x, w) = (&ctx.inputs[0].shape, &ctx.inputs[1].shape);
    if x.is_empty() {
        return Err(Error::shape("x", "linear: `x` must have at least 1 dimension, given a 0-d tensor"));
    }
    if w.len() != 2 {
        return Err(Error::shape("weight", format!("linear: `weight` must be 2-D [out, in], given shape {w:?}")));
    }
    if x[x.len() - 1] != w[1] {
        return Err(Error::shape(
            "weight",
            format!("linear: x {x:?} has {} features but weight {w:?} expects {}", x[x.len() - 1], w[1]),
        ));
    }
    if let Some(bias) = ctx.inputs.get(2)
        && bias.shape != [w[0]]
    {
        return Err(Error::shape("bias", format!("linear: `bias` must have shape [{}], given {:?}", w[0], bias.shape)));
    }
    let mut out = x.clone();
    *out.last_mut().expect("x has a dimension") = w[0];
    one(out, dtype)
}

/// `x · Wᵀ + bias` as one GEMM: W read transposed through its strides, the bias written into
/// each block of the output by the thread that adds its product there. `then`, when given,
/// runs on each finished block of the `[rows, out]` result (a fused epilogue).
/// `panels`, when given, holds the same weight as `w` cut into panels (an executor's fixed
/// weight, see [`panel_linear_weight`]); the product reads them where it can.
pub(crate) fn linear_f<T: GemmFloat>(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
    then: Option<&Then<T>>,
    panels: Option<&WeightPanels>,
) -> Result<Tensor> {
    let (outf, inf) = (w.shape()[0], w.shape()[1]);
    let rows: usize = x.shape()[..x.ndim() - 1].iter().product();
    let x2 = x.raw_reshape(&[rows as i64, inf as i64])?;
    let xv = MatView::new(x2.layout().offset(), x2.strides()[0], x2.strides()[1]);
    let mut wv = RhsView::from(MatView::new(w.layout().offset(), w.strides()[0], w.strides()[1]).t());
    let mut ws = host_slice::<T>(w)?;
    let threads = num_threads();
    let packed_t;
    if let Some(p) = panels
        && p.data.dtype() == T::DTYPE
        && p.data.numel() == outf * inf
        && reads_panels((rows, outf, inf), threads, p.threads)
    {
        ws = host_slice::<T>(&p.data)?;
        wv = RhsView::Panels { threads: p.threads };
    } else if w.is_contiguous() && reads_panels((rows, outf, inf), threads, threads) {
        // Each thread packs the panel of each piece it computes from rows of W, in its own
        // cache: on the MLP's 128-row layers 0.60–0.82× the time of transposing W first (512
        // inputs) and 0.86–0.97× of reading it through strides (784 inputs).
        wv = RhsView::WeightRows { off: w.layout().offset() };
    } else if w.is_contiguous() && packs_weight(rows, outf, inf, std::mem::size_of::<T>()) {
        // gemm reads a packed [in, out] operand faster than Wᵀ through strides; where that
        // repays the copy (see `packs_weight`), transpose a packed W once. (A weight that
        // arrives stored transposed, as an executor hands its fixed weights, is read as it
        // is.) A tensor, not a Vec: the caching allocator recycles it, a fresh Vec would
        // page-fault.
        let src = &ws[w.layout().offset()..w.layout().offset() + outf * inf];
        packed_t = new_host::<T>(&[inf, outf], |t| transpose_into(src, outf, inf, t))?;
        ws = host_slice::<T>(&packed_t)?;
        wv = MatView::new(packed_t.layout().offset(), outf, 1).into();
    }
    let xs = host_slice::<T>(&x2)?;
    let bias = match bias {
        Some(b) => Some((host_slice::<T>(b)?, b.layout().offset(), b.strides()[0])),
        None => None,
    };
    // One row against a packed weight: a matrix-vector product reads W once, unpacked.
    if rows == 1 && w.is_contiguous() && x2.is_contiguous() {
        let wslice = &host_slice::<T>(w)?[w.layout().offset()..w.layout().offset() + outf * inf];
        let xslice = &host_slice::<T>(&x2)?[x2.layout().offset()..x2.layout().offset() + inf];
        // The output is made in its final shape: [rows, outf] elements in order.
        return new_host::<T>(out_shape, |out| {
            for (j, y) in out.iter_mut().enumerate() {
                *y = bias.map_or(<T as crate::dtype::Element>::zero(), |(bs, off, st)| bs[off + j * st]);
            }
            gemv(xslice, wslice, (outf, inf), out, then);
        });
    }
    // The product writes the bias into each row itself (see `Start::Rows`).
    let bias = bias.map(|(bs, off, st)| match st {
        1 => Cow::Borrowed(&bs[off..off + outf]),
        _ => Cow::Owned((0..outf).map(|j| bs[off + j * st]).collect()),
    });
    let mut result = Ok(());
    let out = new_host::<T>(out_shape, |out| {
        let start = bias.as_deref().map_or(Start::Zero, Start::Rows);
        result = gemm_into((rows, outf, inf), out, outf, start, xs, xv, ws, wv, threads, then);
    })?;
    result.map(|()| out)
}

/// Whether a product over `rows` rows reads a `[outf, inf]` weight faster packed (stored
/// transposed, `[inf, outf]` contiguous) than through the transposed view's strides: gemm
/// multiplies a packed weight 10–17% faster (27–41% when `inf` is a multiple of 512 f32) once
/// the product is big enough to notice. One row never does (it is a matrix-vector product).
/// An executor, which packs each fixed weight once, hands the packed copy to these calls.
pub(crate) fn reads_packed_faster(rows: usize, outf: usize, inf: usize) -> bool {
    rows >= 32 && outf * inf >= 4096
}

/// Rows from which the faster reads of a packed weight repay packing it on every call, for
/// weights whose strided reads do not conflict in cache (measured: a 512 × 784 f32 weight
/// costs 140 µs to transpose and 1.01–1.04× to read packed at 512 rows, 0.81–0.88× at 128).
const PACK_EACH_CALL_ROWS: usize = 512;

/// Whether [`LINEAR`] over `rows` rows packs a contiguous `[outf, inf]` weight of `elem`-byte
/// elements itself before its product, where the product does not pack it piece by piece
/// (it splits by columns, see [`RhsView::WeightRows`]). Reading Wᵀ through strides walks columns `inf`
/// elements apart; when that is a multiple of 2 KiB the columns share L1 sets and evict each
/// other, and packing pays from the first call (1.06–1.10× at 128 rows). Otherwise gemm's
/// own packing of the strided read costs about what our transpose would, so the copy only
/// pays when many rows share it.
pub(crate) fn packs_weight(rows: usize, outf: usize, inf: usize, elem: usize) -> bool {
    reads_packed_faster(rows, outf, inf) && (rows >= PACK_EACH_CALL_ROWS || (inf * elem).is_multiple_of(2048))
}

/// `w` stored transposed, as [`LINEAR`] packs it per call where [`packs_weight`] says so:
/// the same shape and values, with the transpose `[in, out]` contiguous. An executor keeps
/// one for each fixed weight and hands it to every call that reads it faster
/// ([`reads_packed_faster`]), which then skips any copy and gives the same bits. `None` for
/// weights that are not contiguous f32/f64 host matrices, or too small for any call to
/// read them packed.
pub(crate) fn pack_linear_weight(w: &Tensor) -> Result<Option<Tensor>> {
    if w.ndim() != 2 || !w.is_contiguous() || w.device() != crate::device::Device::Cpu {
        return Ok(None);
    }
    if !reads_packed_faster(usize::MAX, w.shape()[0], w.shape()[1]) {
        return Ok(None);
    }
    fn packed<T: GemmFloat>(w: &Tensor) -> Result<Tensor> {
        let (outf, inf) = (w.shape()[0], w.shape()[1]);
        let src = &host_slice::<T>(w)?[w.layout().offset()..][..outf * inf];
        let t = new_host::<T>(&[inf, outf], |t| transpose_into(src, outf, inf, t))?;
        Tensor::from_storage(t.storage().clone(), t.layout().transpose(0, 1)?, t.dtype())
    }
    Ok(match w.dtype() {
        DType::F32 => Some(packed::<f32>(w)?),
        DType::F64 => Some(packed::<f64>(w)?),
        _ => None,
    })
}

/// A fixed linear weight cut into panels for the column split over `threads` threads (see
/// [`pack_panels`]): what an executor keeps beside the transposed copy, for the products of
/// up to 512 rows that split by columns. Those read each panel in place, where they would
/// pack a piece of the transposed weight on every call: 7–10% faster on the MLP's first
/// layer, with the same bits.
#[derive(Debug, Clone)]
pub(crate) struct WeightPanels {
    /// The panels: `out · in` elements, 1-D.
    data: Tensor,
    /// The thread count they were cut for.
    threads: usize,
}

/// `w` cut into panels for the engine pool's current thread count, or `None` where no
/// product against it splits by columns (one thread, too few columns or too little depth),
/// or `w` is not a contiguous f32/f64 host matrix.
pub(crate) fn panel_linear_weight(w: &Tensor) -> Result<Option<WeightPanels>> {
    let threads = num_threads();
    if w.ndim() != 2 || !w.is_contiguous() || w.device() != crate::device::Device::Cpu {
        return Ok(None);
    }
    let (outf, inf) = (w.shape()[0], w.shape()[1]);
    if !reads_panels((256, outf, inf), threads, threads) {
        return Ok(None);
    }
    fn cut<T: GemmFloat>(w: &Tensor, (outf, inf): (usize, usize), threads: usize) -> Result<Tensor> {
        let src = &host_slice::<T>(w)?[w.layout().offset()..][..outf * inf];
        new_host::<T>(&[outf * inf], |dst| pack_panels(src, (outf, inf), ColumnSplit::new(outf, threads), dst))
    }
    let data = match w.dtype() {
        DType::F32 => cut::<f32>(w, (outf, inf), threads)?,
        DType::F64 => cut::<f64>(w, (outf, inf), threads)?,
        _ => return Ok(None),
    };
    Ok(Some(WeightPanels { data, threads }))
}

/// [`LINEAR`] on `inputs` (x, weight, optional bias) with `panels` holding the same weight:
/// the op's own checks, then its kernel reading the panels where it can.
pub(crate) fn linear_with_panels(inputs: &[Tensor], panels: &WeightPanels) -> Result<Tensor> {
    if !(2..=3).contains(&inputs.len()) {
        return Err(Error::Internal(format!("linear: {} inputs", inputs.len())));
    }
    // On the stack: this runs for every request.
    let metas = [&inputs[0], &inputs[1], inputs.get(2).unwrap_or(&inputs[0])].map(Meta::of);
    let out = (LINEAR.infer)(&InferCtx { op: LINEAR.name, inputs: &metas[..inputs.len()], attrs: &Attrs::none() })?;
    linear_kernel(&inputs[0], &inputs[1], inputs.get(2), &out[0].shape, Some(panels))
}

/// [`LINEAR`]'s kernel for `x`'s dtype, with `panels` (f32/f64 only) holding its weight.
fn linear_kernel(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    shape: &[usize],
    panels: Option<&WeightPanels>,
) -> Result<Tensor> {
    match x.dtype() {
        DType::F32 => linear_f::<f32>(x, w, b, shape, None, panels),
        DType::F64 => linear_f::<f64>(x, w, b, shape, None, panels),
        DType::F16 => linear_lowp::<f16>(x, w, b, shape),
        DType::BF16 => linear_lowp::<bf16>(x, w, b, shape),
        d => Err(Error::InvalidDtype { arg: "x", msg: format!("linear needs a float tensor, given {d}") }),
    }
}

/// `x · Wᵀ + bias` for bf16/f16: Wᵀ is read through strides by the packing (no transposed
/// copy), and the bias joins the f32 sum before its single rounding.
fn linear_lowp<T: LowpFloat + LowpOut>(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor> {
    let (outf, inf) = (w.shape()[0], w.shape()[1]);
    let rows: usize = x.shape()[..x.ndim() - 1].iter().product();
    let x2 = x.raw_reshape(&[rows as i64, inf as i64])?;
    let xv = MatView::new(x2.layout().offset(), x2.strides()[0], x2.strides()[1]);
    let wv = MatView::new(w.layout().offset(), w.strides()[0], w.strides()[1]).t();
    let bias32 = match bias {
        Some(b) => {
            let (bs, off, st) = (host_slice::<T>(b)?, b.layout().offset(), b.strides()[0]);
            Some((0..outf).map(|j| bs[off + j * st].to_f64() as f32).collect::<Vec<f32>>())
        }
        None => None,
    };
    let (xs, ws) = (host_slice::<T>(&x2)?, host_slice::<T>(w)?);
    let threads = num_threads();
    let mut result = Ok(());
    let out = new_host::<T>(out_shape, |out| {
        result = lowp_gemm_into((rows, outf, inf), out, outf, xs, xv, ws, wv, bias32.as_deref(), threads);
    })?;
    result.map(|()| out)
}

fn linear_forward(ctx: &ForwardCtx) -> Result<Vec<Tensor>> {
    Ok(vec![linear_kernel(&ctx.inputs[0], &ctx.inputs[1], ctx.inputs.get(2), &ctx.outputs[0].shape, None)?])
}

/// `x · Wᵀ + bias`.
pub static LINEAR: OpDef = OpDef {
    name: "linear",
    kind: OpKind::MatmulLike,
    doc: "x [..., in] times weight [out, in] transposed, plus optional bias [out]",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("weight"), ArgSpec::opt("bias")],
    outputs: &["out"],
    attrs: &[],
    infer: infer_linear,
    forward: linear_forward,
    backward: Some(|e, c| {
        let (x, w, g) = (c.inputs[0], c.inputs[1], c.grads[0].expect("linear has one output"));
        // The input of a first layer is data: skip its (full-size) product.
        let gx = if c.needs(0) { Some(emit0(e, &MATMUL, &[g, w])?) } else { None };
        let (sx, sw) = (e.meta(x).shape, e.meta(w).shape);
        let rows: usize = sx[..sx.len() - 1].iter().product();
        let g2 = emit_reshape(e, g, &[rows, sw[0]])?;
        let x2 = emit_reshape(e, x, &[rows, sw[1]])?;
        let g2t = emit_t(e, g2)?;
        let gw = emit0(e, &MATMUL, &[g2t, x2])?;
        let mut grads = vec![gx.and_then(dense), dense(gw)];
        if let Some(&b) = c.inputs.get(2) {
            grads.push(dense(unbroadcast(e, g, b)?));
        }
        Ok(grads)
    }),
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&MATMUL, &BMM, &LINEAR];

impl Tensor {
    /// Matrix product with NumPy rules (1-D operands promoted, batch dimensions broadcast).
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        call1(&MATMUL, &[self, other], &Attrs::none())
    }

    /// Batched matrix product of `[b, n, k]` and `[b, k, m]`.
    pub fn bmm(&self, other: &Tensor) -> Result<Tensor> {
        call1(&BMM, &[self, other], &Attrs::none())
    }

    /// `self · weightᵀ + bias` for `self` `[..., in]` and `weight` `[out, in]`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        match bias {
            Some(b) => call1(&LINEAR, &[self, weight, b], &Attrs::none()),
            None => call1(&LINEAR, &[self, weight], &Attrs::none()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_is_packed_per_call_where_its_strided_reads_conflict_or_many_rows_share_the_copy() {
        // The MLP's 784-input layer reads its weight through strides at 128 rows, the 512-input
        // one packs it (rows 2 KiB apart); from 512 rows both pack; small products never do.
        assert!(!packs_weight(128, 512, 784, 4));
        assert!(packs_weight(128, 512, 512, 4));
        assert!(packs_weight(128, 512, 256, 8));
        assert!(packs_weight(512, 512, 784, 4));
        assert!(!packs_weight(31, 512, 512, 4));
        assert!(!packs_weight(1024, 16, 128, 4));
        // An executor's packed copy serves every large product, conflicting or not.
        assert!(reads_packed_faster(128, 512, 784));
        assert!(!reads_packed_faster(1, 512, 784));
    }
}
