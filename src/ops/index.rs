//! Indexing ops (gather rows, scatter-add) and the row-gradient helpers autograd needs.

use super::dispatch::{attrs_of, call1};
use super::movement::{EXPAND_AS, emit_reshape};
use super::util::{emit0, one, require_float, require_numeric};
use super::{
    ArgSpec, Attr, AttrDefault, AttrKind, AttrSpec, Attrs, Emitter, GradVal, InferCtx, Meta, OpDef, OpKind, Val,
};
use crate::backend::cpu::elementwise::{host_slice, new_host};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use crate::tensor::dims::Dims;
use crate::tensor::layout::normalize_axis;
use crate::with_dtype;
use half::{bf16, f16};
use rayon::prelude::*;

/// `base` with `rows[k]` added to row `indices[k]` (i64) for every k; repeated indices add.
/// Used to densify row gradients.
pub fn index_add_rows(base: &Tensor, indices: &Tensor, rows: &Tensor) -> Result<Tensor> {
    if indices.dtype() != DType::I64 || indices.ndim() != 1 {
        return Err(Error::invalid(
            "indices",
            format!("index_add_rows needs 1-D i64 indices, given {:?} {}", indices.shape(), indices.dtype()),
        ));
    }
    let n_rows = base.shape().first().copied().unwrap_or(0);
    let width: usize = base.shape().iter().skip(1).product();
    if rows.shape().first() != Some(&indices.numel())
        || rows.numel() != indices.numel() * width
        || rows.dtype() != base.dtype()
    {
        return Err(Error::shape(
            "rows",
            format!(
                "rows {:?} {} do not fit {} indices into {:?} {}",
                rows.shape(),
                rows.dtype(),
                indices.numel(),
                base.shape(),
                base.dtype()
            ),
        ));
    }
    let idx = indices.raw_contiguous()?.to_vec::<i64>()?;
    if let Some(&bad) = idx.iter().find(|&&i| i < 0 || i as usize >= n_rows) {
        return Err(Error::range("indices", format!("row index {bad} for a table of {n_rows} rows")));
    }
    let (base, rows) = (base.raw_contiguous()?, rows.raw_contiguous()?);
    with_dtype!(base.dtype(), T => {
        let (b, r) = (host_slice::<T>(&base)?, host_slice::<T>(&rows)?);
        let (bo, ro) = (base.layout().offset(), rows.layout().offset());
        new_host::<T>(base.shape(), |out| {
            out.copy_from_slice(&b[bo..bo + out.len()]);
            for (k, &i) in idx.iter().enumerate() {
                let dst = &mut out[i as usize * width..(i as usize + 1) * width];
                for (d, &s) in dst.iter_mut().zip(&r[ro + k * width..ro + (k + 1) * width]) {
                    *d = crate::dtype::convert::<f64, T>(d.to_f64() + s.to_f64());
                }
            }
        })
    })
}

/// `a` and `b` joined along dimension 0 (same trailing shape and dtype).
pub fn concat_rows(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape().get(1..) != b.shape().get(1..) || a.dtype() != b.dtype() {
        return Err(Error::shape(
            "b",
            format!("cannot join {:?} {} and {:?} {} along dimension 0", a.shape(), a.dtype(), b.shape(), b.dtype()),
        ));
    }
    let mut shape = a.shape().to_vec();
    shape[0] += b.shape()[0];
    let (a, b) = (a.raw_contiguous()?, b.raw_contiguous()?);
    with_dtype!(a.dtype(), T => {
        let (sa, sb) = (host_slice::<T>(&a)?, host_slice::<T>(&b)?);
        let (na, oa, ob) = (a.numel(), a.layout().offset(), b.layout().offset());
        new_host::<T>(&shape, |out| {
            out[..na].copy_from_slice(&sa[oa..oa + na]);
            let nb = out.len() - na;
            out[na..].copy_from_slice(&sb[ob..ob + nb]);
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Kernel helpers shared by the index and structure ops.

/// Elements per parallel work item in the row kernels.
const CHUNK: usize = 1 << 14;

/// Calls `f(first_row, rows)` on `out` cut into whole rows of `width` elements, in parallel
/// inside the engine's pool when `out` is large.
pub(crate) fn par_rows<T: Send>(out: &mut [T], width: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if out.is_empty() || width == 0 {
        return;
    }
    if out.len() < PARALLEL_THRESHOLD {
        f(0, out);
        return;
    }
    let rows = (CHUNK / width).max(1);
    install(|| out.par_chunks_mut(rows * width).enumerate().for_each(|(i, c)| f(i * rows, c)));
}

/// `dst.copy_from_slice(src)`, in parallel chunks when large.
pub(crate) fn par_copy<T: Copy + Send + Sync>(dst: &mut [T], src: &[T]) {
    par_rows(dst, 1, |start, c| {
        let n = c.len();
        c.copy_from_slice(&src[start..start + n]);
    });
}

/// Writes the elements of `x` (any layout) row-major into `out`.
pub(crate) fn copy_into<T: Element>(x: &Tensor, out: &mut [T]) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let src = host_slice::<T>(x)?;
    let l = x.layout();
    if l.is_contiguous() {
        par_copy(out, &src[l.offset()..l.offset() + out.len()]);
    } else if l.strides().iter().all(|&s| s == 0) {
        // A broadcast scalar (the zeros gradient rules build with expand_as).
        out.fill(src[l.offset()]);
    } else {
        for (y, off) in out.iter_mut().zip(l.offsets()) {
            *y = src[off];
        }
    }
    Ok(())
}

/// The storage elements of a contiguous tensor, from its first element on.
pub(crate) fn elems<T: Element>(t: &Tensor) -> Result<&[T]> {
    Ok(&host_slice::<T>(t)?[t.layout().offset()..])
}

/// Errors unless `dtype` is an index dtype (i32 or i64).
pub(crate) fn require_index(op: &str, arg: &'static str, dtype: DType) -> Result<()> {
    if matches!(dtype, DType::I32 | DType::I64) {
        Ok(())
    } else {
        Err(Error::InvalidDtype { arg, msg: format!("{op} needs i32 or i64 indices, given {dtype}") })
    }
}

/// The elements of an i32/i64 tensor, row-major, each checked to lie in `0..bound`.
pub(crate) fn read_indices(t: &Tensor, arg: &'static str, bound: usize) -> Result<Vec<usize>> {
    let t = t.raw_contiguous()?;
    let n = t.numel();
    let check = |i: i64| {
        if i >= 0 && (i as u64) < bound as u64 {
            Ok(i as usize)
        } else {
            Err(Error::range(arg, format!("index {i} is outside 0..{bound}")))
        }
    };
    match t.dtype() {
        DType::I64 => elems::<i64>(&t)?[..n].iter().map(|&i| check(i)).collect(),
        DType::I32 => elems::<i32>(&t)?[..n].iter().map(|&i| check(i as i64)).collect(),
        d => Err(Error::InvalidDtype { arg, msg: format!("needs i32 or i64 indices, given {d}") }),
    }
}

/// Dimensions before, at and after `dim`, as element counts: the `[outer, n, inner]` view.
pub(crate) fn split3(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (shape[..dim].iter().product(), shape[dim], shape[dim + 1..].iter().product())
}

/// Element types the scatter kernels add in place (f16/bf16 are first widened to f32).
pub(crate) trait Accum: Element {
    /// `*self += v` (integers wrap).
    fn acc(&mut self, v: Self);
}

impl Accum for f32 {
    fn acc(&mut self, v: Self) {
        *self += v;
    }
}

impl Accum for f64 {
    fn acc(&mut self, v: Self) {
        *self += v;
    }
}

macro_rules! wrapping_accum {
    ($($t:ty),*) => {$(
        impl Accum for $t {
            fn acc(&mut self, v: Self) {
                *self = self.wrapping_add(v);
            }
        }
    )*};
}
wrapping_accum!(i32, i64, u8);

/// Runs `$body` with `$T` bound to an [`Accum`] type for `$dtype` (f32, f64, i32, i64, u8);
/// other dtypes are an internal error (callers widen f16/bf16 and reject bool first).
macro_rules! with_accum {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::I32 => {
                type $T = i32;
                $body
            }
            DType::I64 => {
                type $T = i64;
                $body
            }
            DType::U8 => {
                type $T = u8;
                $body
            }
            d => Err(Error::Internal(format!("no accumulating kernel for {d}"))),
        }
    };
}
pub(crate) use with_accum;

/// Float element types with the type they are computed in (f16/bf16 in f32).
pub(crate) trait Lane: Element {
    /// The compute type.
    type A: num_traits::Float + Send + Sync;
    /// Widens to the compute type.
    fn load(self) -> Self::A;
    /// Rounds back from the compute type.
    fn store(a: Self::A) -> Self;
}

impl Lane for f32 {
    type A = f32;
    fn load(self) -> f32 {
        self
    }
    fn store(a: f32) -> Self {
        a
    }
}

impl Lane for f64 {
    type A = f64;
    fn load(self) -> f64 {
        self
    }
    fn store(a: f64) -> Self {
        a
    }
}

impl Lane for f16 {
    type A = f32;
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(a: f32) -> Self {
        f16::from_f32(a)
    }
}

impl Lane for bf16 {
    type A = f32;
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(a: f32) -> Self {
        bf16::from_f32(a)
    }
}

/// Runs `$body` with `$T` bound to the [`Lane`] type of a float `$dtype`.
macro_rules! with_lane {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::F16 => {
                type $T = f16;
                $body
            }
            DType::BF16 => {
                type $T = bf16;
                $body
            }
            d => Err(Error::InvalidDtype { arg: "weight", msg: format!("needs a float table, given {d}") }),
        }
    };
}

/// `x` made contiguous, with f16/bf16 widened to f32 for the accumulating kernels.
pub(crate) fn widened(x: &Tensor) -> Result<Tensor> {
    match x.dtype() {
        DType::F16 | DType::BF16 => x.raw_cast(DType::F32),
        _ => x.raw_contiguous(),
    }
}

/// Storage offset of row `r`'s first element, where rows run along the last dimension of an
/// index tensor whose leading dimensions are `lead`, through `strides`, leaving out dimension `skip`.
pub(crate) fn row_base(mut r: usize, lead: &[usize], strides: &[usize], skip: usize) -> usize {
    let mut off = 0;
    for d in (0..lead.len()).rev() {
        let c = r % lead[d];
        r /= lead[d];
        if d != skip {
            off += c * strides[d];
        }
    }
    off
}

fn dense(v: Val) -> Option<GradVal> {
    Some(GradVal::Dense(v))
}

fn g0(c: &super::GradCtx) -> Val {
    c.grads[0].expect("one output")
}

fn dim_attr(dim: usize) -> (&'static str, Attr) {
    ("dim", Attr::Int(dim as i64))
}

/// Zeros with the shape and dtype of `like` (a broadcast 0-d constant, no allocation).
pub(crate) fn emit_zeros_like(e: &mut dyn Emitter, like: Val) -> Result<Val> {
    let zero = e.scalar(0.0, e.meta(like).dtype)?;
    emit0(e, &EXPAND_AS, &[zero, like])
}

/// `idx` as flat i64 (the index form of row gradients).
pub(crate) fn emit_flat_i64(e: &mut dyn Emitter, idx: Val) -> Result<Val> {
    let m = e.meta(idx);
    let v = if m.dtype == DType::I64 {
        idx
    } else {
        let attrs = attrs_of(&super::unary::CAST, &[("dtype", Attr::Int(DType::I64.code() as i64))])?;
        e.op(&super::unary::CAST, &[idx], attrs)?
    };
    emit_reshape(e, v, &[m.numel()])
}

// ---------------------------------------------------------------------------------------------
// embedding

const PADDING_ATTR: &[AttrSpec] = &[AttrSpec::with_default(
    "padding_idx",
    AttrKind::Int,
    AttrDefault::Optional,
    "rows looked up at this index get no gradient (negative counts from the end)",
)];

/// The padding row resolved against a table of `rows` rows.
fn padding_row(attrs: &Attrs, rows: usize) -> Result<Option<usize>> {
    match attrs.opt_int("padding_idx") {
        None => Ok(None),
        Some(p) => {
            let q = if p < 0 { p + rows as i64 } else { p };
            if q < 0 || q >= rows as i64 {
                return Err(Error::range("padding_idx", format!("{p} for a table of {rows} rows")));
            }
            Ok(Some(q as usize))
        }
    }
}

/// `out[k] = table[rows[k]]` for rows of `width` elements.
fn gather_rows<T: Element>(table: &[T], rows: &[usize], width: usize, out: &mut [T]) {
    par_rows(out, width, |r0, chunk| {
        for (k, (row, &i)) in chunk.chunks_exact_mut(width).zip(&rows[r0..]).enumerate() {
            prefetch_lookup(rows, r0 + k, |_, j| &table[j * width..(j + 1) * width]);
            row.copy_from_slice(&table[i * width..(i + 1) * width]);
        }
    });
}

/// While lookup `k` of `rows` is copied, asks for the table row of lookup `k + `[`ROWS_AHEAD`]
/// (`row(lookup, j)` is row `j` of that lookup's table), where there are at least
/// [`PREFETCH_MIN_ROWS`] lookups. A gather from tables larger than the caches waits on memory
/// for each row, and row copies one after another keep few of those loads in flight.
/// In-process A/B on two threads (12 alternating rounds, median time ratio, two runs):
/// `embedding_fields` over 26 tables of 100,000 × 16 f32 at batch 256 0.55 and 0.61, at batch
/// 4096 0.57 and 0.74; `embedding` of 4096 × 26 ids from one such table 0.92 and 0.86;
/// DCN-v2 inference at batch 256 0.95 and 0.93; `embedding_bag` of 20 rows a bag from
/// 1,000,000 × 32 f32, sum 0.85 at batch 256 and 0.66 at 4096, max 0.57 and 0.40. 8 rows
/// ahead gained about as much, 4 less (1.00 and 0.89 on `embedding_fields`).
pub(crate) fn prefetch_lookup<'a, T: 'a>(rows: &[usize], k: usize, row: impl FnOnce(usize, usize) -> &'a [T]) {
    let later = k + ROWS_AHEAD;
    if rows.len() >= PREFETCH_MIN_ROWS
        && let Some(&j) = rows.get(later)
    {
        crate::backend::cpu::prefetch::prefetch(row(later, j));
    }
}

/// How many lookups ahead [`prefetch_lookup`] asks for a row.
const ROWS_AHEAD: usize = 16;

/// Fewest lookups for which [`prefetch_lookup`] prefetches: the loads of a batch-1 request's
/// few rows are all in flight at once anyway, and asking for them again cost up to 8%.
const PREFETCH_MIN_ROWS: usize = 64;

/// Rows of a table picked by integer indices of any shape.
pub static EMBEDDING: OpDef = OpDef {
    name: "embedding",
    kind: OpKind::Movement,
    doc: "rows of weight [V, D] picked by indices (i32/i64, any shape) -> [..., D]; the weight gets a row gradient",
    inputs: &[ArgSpec::req("weight"), ArgSpec::req("indices")],
    outputs: &["out"],
    attrs: PADDING_ATTR,
    infer: |ctx| {
        let (w, idx) = (&ctx.inputs[0], &ctx.inputs[1]);
        if w.shape.len() != 2 {
            return Err(Error::shape("weight", format!("needs a 2-D table [rows, dim], given {:?}", w.shape)));
        }
        require_index(ctx.op, "indices", idx.dtype)?;
        padding_row(ctx.attrs, w.shape[0])?;
        let mut shape = idx.shape.clone();
        shape.push(w.shape[1]);
        one(shape, w.dtype)
    },
    forward: |ctx| {
        let (w, idx) = (ctx.inputs[0].raw_contiguous()?, &ctx.inputs[1]);
        let (v, d) = (w.shape()[0], w.shape()[1]);
        let rows = read_indices(idx, "indices", v)?;
        Ok(vec![with_dtype!(w.dtype(), T => {
            let table = elems::<T>(&w)?;
            new_host::<T>(&ctx.outputs[0].shape, |out| gather_rows(table, &rows, d, out))?
        })])
    },
    backward: Some(|e, c| {
        let (w, idx, g) = (c.inputs[0], c.inputs[1], g0(c));
        let wm = e.meta(w);
        let n = e.meta(idx).numel();
        let indices = emit_flat_i64(e, idx)?;
        let rows = match padding_row(c.attrs, wm.shape[0])? {
            Some(p) => {
                let attrs = attrs_of(&EMBEDDING_BACKWARD, &[("padding_idx", Attr::Int(p as i64))])?;
                e.op(&EMBEDDING_BACKWARD, &[g, idx], attrs)?
            }
            None => emit_reshape(e, g, &[n, wm.shape[1]])?,
        };
        Ok(vec![Some(GradVal::Rows { indices, rows }), None])
    }),
    pure: true,
    pointwise: None,
};

/// The rows of an embedding gradient with the padding rows zeroed.
pub static EMBEDDING_BACKWARD: OpDef = OpDef {
    name: "embedding_backward",
    kind: OpKind::Movement,
    doc: "g [..., D] flattened to [n, D], with zeros where indices equal padding_idx (embedding's row gradient)",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("indices")],
    outputs: &["rows"],
    attrs: &[AttrSpec::required("padding_idx", AttrKind::Int, "the index whose rows get zero gradient")],
    infer: |ctx| {
        let (g, idx) = (&ctx.inputs[0], &ctx.inputs[1]);
        require_index(ctx.op, "indices", idx.dtype)?;
        if g.shape.len() != idx.shape.len() + 1 || g.shape[..idx.shape.len()] != idx.shape[..] {
            return Err(Error::shape(
                "g",
                format!("{:?} is not indices {:?} plus a row dimension", g.shape, idx.shape),
            ));
        }
        one(vec![idx.numel(), *g.shape.last().expect("rank >= 1")], g.dtype)
    },
    forward: |ctx| {
        let (g, idx) = (ctx.inputs[0].raw_contiguous()?, &ctx.inputs[1]);
        let d = *g.shape().last().expect("rank >= 1");
        let pad = ctx.attrs.int("padding_idx");
        let rows = read_indices(idx, "indices", usize::MAX)?;
        Ok(vec![with_dtype!(g.dtype(), T => {
            let src = elems::<T>(&g)?;
            new_host::<T>(&ctx.outputs[0].shape, |out| {
                par_rows(out, d, |r0, chunk| {
                    for (k, row) in chunk.chunks_exact_mut(d).enumerate() {
                        let r = r0 + k;
                        if rows[r] as i64 == pad {
                            row.fill(T::zero());
                        } else {
                            row.copy_from_slice(&src[r * d..(r + 1) * d]);
                        }
                    }
                })
            })?
        })])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// embedding_bag

#[derive(Clone, Copy, PartialEq, Eq)]
enum BagMode {
    Sum,
    Mean,
    Max,
}

fn bag_mode(attrs: &Attrs) -> Result<BagMode> {
    match attrs.str("mode") {
        "sum" => Ok(BagMode::Sum),
        "mean" => Ok(BagMode::Mean),
        "max" => Ok(BagMode::Max),
        m => Err(Error::invalid("mode", format!("must be \"sum\", \"mean\" or \"max\", given {m:?}"))),
    }
}

const BAG_ATTRS: &[AttrSpec] = &[AttrSpec::with_default(
    "mode",
    AttrKind::Str,
    AttrDefault::Str("mean"),
    "how a bag's rows combine: \"sum\", \"mean\" or \"max\" (per dimension)",
)];

/// The B+1 bag bounds from `offsets` (bag b is `indices[bounds[b]..bounds[b+1]]`), validated:
/// the first offset is 0, offsets never decrease, the last is at most `len`.
fn bag_bounds(offsets: &Tensor, len: usize) -> Result<Vec<usize>> {
    let mut b = read_indices(offsets, "offsets", usize::MAX)?;
    if let Some(&first) = b.first()
        && first != 0
    {
        return Err(Error::invalid("offsets", format!("the first offset must be 0, given {first}")));
    }
    if let Some(w) = b.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::invalid(
            "offsets",
            format!("offsets must not decrease, given {} then {} at position {}", b[w], b[w + 1], w + 1),
        ));
    }
    if let Some(&last) = b.last()
        && last > len
    {
        return Err(Error::range("offsets", format!("offset {last} is past the end of {len} indices")));
    }
    b.push(len);
    Ok(b)
}

/// Which bag each index position belongs to (`usize::MAX` when none: no bags at all).
fn bag_of(bounds: &[usize], len: usize) -> Vec<usize> {
    let mut out = vec![usize::MAX; len];
    for (b, w) in bounds.windows(2).enumerate() {
        out[w[0]..w[1]].fill(b);
    }
    out
}

/// Everything the bag kernels read, contiguous.
struct Bags<'a, T> {
    table: &'a [T],
    width: usize,
    rows: &'a [usize],
    bounds: &'a [usize],
    weights: Option<&'a [T]>,
    mode: BagMode,
}

/// The reduced rows of each bag (zeros for an empty bag).
fn bag_forward<T: Lane>(b: &Bags<T>, out: &mut [T]) {
    let d = b.width;
    par_rows(out, d, |b0, chunk| {
        let zero = <T::A as num_traits::Zero>::zero();
        let mut acc = vec![zero; d];
        for (k, orow) in chunk.chunks_exact_mut(d).enumerate() {
            let (s, e) = (b.bounds[b0 + k], b.bounds[b0 + k + 1]);
            acc.fill(zero);
            let row = |p: usize| &b.table[b.rows[p] * d..(b.rows[p] + 1) * d];
            let ask = |p: usize| prefetch_lookup(b.rows, p, |later, _| row(later));
            match b.mode {
                BagMode::Sum | BagMode::Mean => {
                    for p in s..e {
                        ask(p);
                        match b.weights {
                            Some(ws) => {
                                let c = ws[p].load();
                                acc.iter_mut().zip(row(p)).for_each(|(a, &v)| *a = *a + c * v.load());
                            }
                            None => acc.iter_mut().zip(row(p)).for_each(|(a, &v)| *a = *a + v.load()),
                        }
                    }
                    if b.mode == BagMode::Mean && e > s {
                        let n = <T::A as num_traits::NumCast>::from(e - s).expect("bag size fits a float");
                        acc.iter_mut().for_each(|a| *a = *a / n);
                    }
                }
                BagMode::Max if e > s => {
                    ask(s);
                    acc.iter_mut().zip(row(s)).for_each(|(a, &v)| *a = v.load());
                    for p in s + 1..e {
                        ask(p);
                        acc.iter_mut().zip(row(p)).for_each(|(a, &v)| {
                            let v = v.load();
                            if v > *a {
                                *a = v;
                            }
                        });
                    }
                }
                BagMode::Max => {}
            }
            orow.iter_mut().zip(&acc).for_each(|(o, &a)| *o = T::store(a));
        }
    });
}

/// For max mode: per bag and dimension, the first index position holding the maximum
/// (`usize::MAX` for empty bags).
fn bag_argmax<T: Lane>(b: &Bags<T>) -> Vec<usize> {
    let d = b.width;
    let mut arg = vec![usize::MAX; (b.bounds.len() - 1) * d];
    par_rows(&mut arg, d, |b0, chunk| {
        for (k, arow) in chunk.chunks_exact_mut(d).enumerate() {
            let (s, e) = (b.bounds[b0 + k], b.bounds[b0 + k + 1]);
            for p in s..e {
                let row = &b.table[b.rows[p] * d..(b.rows[p] + 1) * d];
                for (j, (a, &v)) in arow.iter_mut().zip(row).enumerate() {
                    if *a == usize::MAX || v.load() > b.table[b.rows[*a] * d + j].load() {
                        *a = p;
                    }
                }
            }
        }
    });
    arg
}

/// The row gradient `[L, D]`: position p of bag b gets `w_p·g[b]` (sum), `g[b]/|b|` (mean), or
/// `g[b, j]` in each dimension j where it held the maximum (max).
fn bag_backward<T: Lane>(b: &Bags<T>, g: &[T], out: &mut [T]) {
    let d = b.width;
    let owner = bag_of(b.bounds, b.rows.len());
    let arg = if b.mode == BagMode::Max { bag_argmax(b) } else { Vec::new() };
    par_rows(out, d, |p0, chunk| {
        for (k, orow) in chunk.chunks_exact_mut(d).enumerate() {
            let p = p0 + k;
            let bag = owner[p];
            if bag == usize::MAX {
                orow.fill(T::zero());
                continue;
            }
            let grow = &g[bag * d..(bag + 1) * d];
            match b.mode {
                BagMode::Sum => match b.weights {
                    Some(ws) => {
                        let c = ws[p].load();
                        orow.iter_mut().zip(grow).for_each(|(o, &v)| *o = T::store(c * v.load()));
                    }
                    None => orow.copy_from_slice(grow),
                },
                BagMode::Mean => {
                    let size = b.bounds[bag + 1] - b.bounds[bag];
                    let n = <T::A as num_traits::NumCast>::from(size).expect("bag size fits a float");
                    orow.iter_mut().zip(grow).for_each(|(o, &v)| *o = T::store(v.load() / n));
                }
                BagMode::Max => {
                    let a = &arg[bag * d..(bag + 1) * d];
                    for ((o, &v), &at) in orow.iter_mut().zip(grow).zip(a) {
                        *o = if at == p { v } else { T::zero() };
                    }
                }
            }
        }
    });
}

/// The per-sample-weight gradient `[L]`: `g[b]·table[indices[p]]` for position p of bag b.
fn bag_weight_backward<T: Lane>(b: &Bags<T>, g: &[T], out: &mut [T]) {
    let d = b.width;
    let owner = bag_of(b.bounds, b.rows.len());
    par_rows(out, 1, |p0, chunk| {
        for (k, o) in chunk.iter_mut().enumerate() {
            let p = p0 + k;
            let bag = owner[p];
            let mut acc = <T::A as num_traits::Zero>::zero();
            if bag != usize::MAX {
                let row = &b.table[b.rows[p] * d..(b.rows[p] + 1) * d];
                for (&x, &y) in row.iter().zip(&g[bag * d..(bag + 1) * d]) {
                    acc = acc + x.load() * y.load();
                }
            }
            *o = T::store(acc);
        }
    });
}

/// Checks embedding_bag's inputs (weight, indices, offsets, per_sample_weights?) and returns B, D.
fn check_bag_inputs(op: &str, ins: &[Meta], psw: Option<&Meta>, mode: BagMode) -> Result<(usize, usize)> {
    let (w, idx, off) = (&ins[0], &ins[1], &ins[2]);
    if w.shape.len() != 2 {
        return Err(Error::shape("weight", format!("needs a 2-D table [rows, dim], given {:?}", w.shape)));
    }
    require_float(op, "weight", w.dtype)?;
    require_index(op, "indices", idx.dtype)?;
    require_index(op, "offsets", off.dtype)?;
    if idx.shape.len() != 1 {
        return Err(Error::shape("indices", format!("needs 1-D indices, given {:?}", idx.shape)));
    }
    if off.shape.len() != 1 {
        return Err(Error::shape("offsets", format!("needs 1-D offsets, given {:?}", off.shape)));
    }
    if let Some(p) = psw {
        if mode != BagMode::Sum {
            return Err(Error::invalid("per_sample_weights", "per_sample_weights need mode \"sum\""));
        }
        if p.dtype != w.dtype {
            return Err(Error::InvalidDtype {
                arg: "per_sample_weights",
                msg: format!("must match the weight's {}, given {}", w.dtype, p.dtype),
            });
        }
        if p.shape != idx.shape {
            return Err(Error::shape(
                "per_sample_weights",
                format!("needs one weight per index {:?}, given {:?}", idx.shape, p.shape),
            ));
        }
    }
    Ok((off.shape[0], w.shape[1]))
}

/// Runs `f` on the bag view of (weight, indices, offsets, per_sample_weights?).
fn with_bags<R>(
    ins: &[Tensor],
    attrs: &Attrs,
    f: impl FnOnce(&Tensor, &[usize], &[usize], Option<&Tensor>, BagMode) -> Result<R>,
) -> Result<R> {
    let w = ins[0].raw_contiguous()?;
    let rows = read_indices(&ins[1], "indices", w.shape()[0])?;
    let bounds = bag_bounds(&ins[2], rows.len())?;
    let psw = ins.get(3).map(Tensor::raw_contiguous).transpose()?;
    f(&w, &rows, &bounds, psw.as_ref(), bag_mode(attrs)?)
}

/// Sums, means or maxima of bags of table rows.
pub static EMBEDDING_BAG: OpDef = OpDef {
    name: "embedding_bag",
    kind: OpKind::Opaque,
    doc: "per bag (indices[offsets[b]..offsets[b+1]]) the sum, mean or max of the weight rows -> [B, D]; empty bags give zeros",
    inputs: &[
        ArgSpec::req("weight"),
        ArgSpec::req("indices"),
        ArgSpec::req("offsets"),
        ArgSpec::opt("per_sample_weights"),
    ],
    outputs: &["out"],
    attrs: BAG_ATTRS,
    infer: |ctx| {
        let (b, d) = check_bag_inputs(ctx.op, ctx.inputs, ctx.inputs.get(3), bag_mode(ctx.attrs)?)?;
        one(vec![b, d], ctx.inputs[0].dtype)
    },
    forward: |ctx| {
        with_bags(ctx.inputs, ctx.attrs, |w, rows, bounds, psw, mode| {
            Ok(vec![with_lane!(w.dtype(), T => {
                let bags = Bags {
                    table: elems::<T>(w)?,
                    width: w.shape()[1],
                    rows,
                    bounds,
                    weights: psw.map(elems::<T>).transpose()?,
                    mode,
                };
                new_host::<T>(&ctx.outputs[0].shape, |out| bag_forward(&bags, out))
            })?])
        })
    },
    backward: Some(|e, c| {
        let (g, w, idx, off) = (g0(c), c.inputs[0], c.inputs[1], c.inputs[2]);
        let psw = c.inputs.get(3).copied();
        let mut ins = vec![g, w, idx, off];
        ins.extend(psw);
        let rows = e.op(&EMBEDDING_BAG_BACKWARD, &ins, c.attrs.clone())?;
        let indices = emit_flat_i64(e, idx)?;
        let mut grads = vec![Some(GradVal::Rows { indices, rows }), None, None];
        if psw.is_some() {
            grads.push(dense(emit0(e, &EMBEDDING_BAG_WEIGHTS_BACKWARD, &[g, w, idx, off])?));
        }
        Ok(grads)
    }),
    pure: true,
    pointwise: None,
};

/// Checks g `[B, D]` against the bag inputs that follow it.
fn infer_bag_backward(ctx: &InferCtx, mode: BagMode) -> Result<(usize, usize)> {
    let (b, d) = check_bag_inputs(ctx.op, &ctx.inputs[1..], ctx.inputs.get(4), mode)?;
    let g = &ctx.inputs[0];
    if g.shape != [b, d] || g.dtype != ctx.inputs[1].dtype {
        return Err(Error::shape(
            "g",
            format!("needs [{b}, {d}] {}, given {:?} {}", ctx.inputs[1].dtype, g.shape, g.dtype),
        ));
    }
    Ok((ctx.inputs[2].shape[0], d))
}

/// The weight's row gradient of embedding_bag (one row per index position).
pub static EMBEDDING_BAG_BACKWARD: OpDef = OpDef {
    name: "embedding_bag_backward",
    kind: OpKind::Opaque,
    doc: "embedding_bag's weight gradient rows [L, D], one per index: w_p*g[b] (sum), g[b]/|b| (mean), g at the argmax (max)",
    inputs: &[
        ArgSpec::req("g"),
        ArgSpec::req("weight"),
        ArgSpec::req("indices"),
        ArgSpec::req("offsets"),
        ArgSpec::opt("per_sample_weights"),
    ],
    outputs: &["rows"],
    attrs: BAG_ATTRS,
    infer: |ctx| {
        let (l, d) = infer_bag_backward(ctx, bag_mode(ctx.attrs)?)?;
        one(vec![l, d], ctx.inputs[1].dtype)
    },
    forward: |ctx| {
        let g = ctx.inputs[0].raw_contiguous()?;
        with_bags(&ctx.inputs[1..], ctx.attrs, |w, rows, bounds, psw, mode| {
            Ok(vec![with_lane!(w.dtype(), T => {
                let bags = Bags {
                    table: elems::<T>(w)?,
                    width: w.shape()[1],
                    rows,
                    bounds,
                    weights: psw.map(elems::<T>).transpose()?,
                    mode,
                };
                let gs = elems::<T>(&g)?;
                new_host::<T>(&ctx.outputs[0].shape, |out| bag_backward(&bags, gs, out))
            })?])
        })
    },
    backward: None,
    pure: true,
    pointwise: None,
};

/// The per-sample-weight gradient of embedding_bag (mode sum).
pub static EMBEDDING_BAG_WEIGHTS_BACKWARD: OpDef = OpDef {
    name: "embedding_bag_weights_backward",
    kind: OpKind::Opaque,
    doc: "embedding_bag's per_sample_weights gradient [L]: g[b] . weight[indices[p]] for position p of bag b",
    inputs: &[ArgSpec::req("g"), ArgSpec::req("weight"), ArgSpec::req("indices"), ArgSpec::req("offsets")],
    outputs: &["out"],
    attrs: &[],
    infer: |ctx| {
        let (l, _) = infer_bag_backward(ctx, BagMode::Sum)?;
        one(vec![l], ctx.inputs[1].dtype)
    },
    forward: |ctx| {
        let g = ctx.inputs[0].raw_contiguous()?;
        let w = ctx.inputs[1].raw_contiguous()?;
        let rows = read_indices(&ctx.inputs[2], "indices", w.shape()[0])?;
        let bounds = bag_bounds(&ctx.inputs[3], rows.len())?;
        Ok(vec![with_lane!(w.dtype(), T => {
            let bags =
                Bags { table: elems::<T>(&w)?, width: w.shape()[1], rows: &rows, bounds: &bounds, weights: None, mode: BagMode::Sum };
            let gs = elems::<T>(&g)?;
            new_host::<T>(&ctx.outputs[0].shape, |out| bag_weight_backward(&bags, gs, out))
        })?])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// index_select, index_add

const DIM_ATTR: &[AttrSpec] = &[AttrSpec::required("dim", AttrKind::Int, "the indexed dimension")];

/// Resolves the `dim` attribute against `x`'s rank.
fn the_dim(attrs: &Attrs, ndim: usize) -> Result<usize> {
    normalize_axis(attrs.int("dim"), ndim, "dim")
}

/// Checks a 1-D index for x along `dim` and returns `(dim, shape of x with dim resized to the index length)`.
fn infer_index_along(ctx: &InferCtx, x: &Meta, index: &Meta) -> Result<(usize, Dims)> {
    let dim = the_dim(ctx.attrs, x.shape.len())?;
    require_index(ctx.op, "index", index.dtype)?;
    if index.shape.len() != 1 {
        return Err(Error::shape("index", format!("needs a 1-D index, given {:?}", index.shape)));
    }
    let mut shape = x.shape.clone();
    shape[dim] = index.shape[0];
    Ok((dim, shape))
}

/// Slices of x along one dimension picked by a 1-D index.
pub static INDEX_SELECT: OpDef = OpDef {
    name: "index_select",
    kind: OpKind::Movement,
    doc: "x's slices index[0], index[1], ... along `dim` (index 1-D i32/i64)",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("index")],
    outputs: &["out"],
    attrs: DIM_ATTR,
    infer: |ctx| {
        let (_, shape) = infer_index_along(ctx, &ctx.inputs[0], &ctx.inputs[1])?;
        one(shape, ctx.inputs[0].dtype)
    },
    forward: |ctx| {
        let x = ctx.inputs[0].raw_contiguous()?;
        let dim = the_dim(ctx.attrs, x.ndim())?;
        let (_, n, inner) = split3(x.shape(), dim);
        let idx = read_indices(&ctx.inputs[1], "index", n)?;
        let m = idx.len();
        Ok(vec![with_dtype!(x.dtype(), T => {
            let src = elems::<T>(&x)?;
            new_host::<T>(&ctx.outputs[0].shape, |out| {
                par_rows(out, inner, |r0, chunk| {
                    for (k, row) in chunk.chunks_exact_mut(inner).enumerate() {
                        let r = r0 + k;
                        let s = ((r / m) * n + idx[r % m]) * inner;
                        row.copy_from_slice(&src[s..s + inner]);
                    }
                })
            })?
        })])
    },
    backward: Some(|e, c| {
        let (x, index) = (c.inputs[0], c.inputs[1]);
        let dim = the_dim(c.attrs, e.meta(x).shape.len())?;
        let zeros = emit_zeros_like(e, x)?;
        let g = e.op(&INDEX_ADD, &[zeros, index, g0(c)], attrs_of(&INDEX_ADD, &[dim_attr(dim)])?)?;
        Ok(vec![dense(g), None])
    }),
    pure: true,
    pointwise: None,
};

/// `out[o, i, :] += src[o, j, :]` for `i = index[j]` in the `[outer, n, inner]` view.
fn index_add_kernel<T: Accum>(out: &mut [T], src: &[T], idx: &[usize], n: usize, inner: usize) {
    let m = idx.len();
    // Each outer block is one thread's: repeated indices collide only inside a block.
    par_rows(out, n * inner, |o0, chunk| {
        for (k, block) in chunk.chunks_exact_mut(n * inner).enumerate() {
            let o = o0 + k;
            for (j, &i) in idx.iter().enumerate() {
                let s = &src[(o * m + j) * inner..(o * m + j + 1) * inner];
                block[i * inner..(i + 1) * inner].iter_mut().zip(s).for_each(|(a, &v)| a.acc(v));
            }
        }
    });
}

/// x with src's slices added at the positions an index names along one dimension.
pub static INDEX_ADD: OpDef = OpDef {
    name: "index_add",
    kind: OpKind::Opaque,
    doc: "x with src[..., j, ...] added to x[..., index[j], ...] along `dim`; repeated indices add",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("index"), ArgSpec::req("src")],
    outputs: &["out"],
    attrs: DIM_ATTR,
    infer: |ctx| {
        let (x, index, src) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]);
        require_numeric(ctx.op, "x", x.dtype)?;
        let (_, shape) = infer_index_along(ctx, x, index)?;
        if src.dtype != x.dtype {
            return Err(Error::InvalidDtype {
                arg: "src",
                msg: format!("must match x's {}, given {}", x.dtype, src.dtype),
            });
        }
        if src.shape != shape {
            return Err(Error::shape("src", format!("needs shape {shape:?}, given {:?}", src.shape)));
        }
        one(x.shape.clone(), x.dtype)
    },
    forward: |ctx| {
        let (x, src) = (widened(&ctx.inputs[0])?, widened(&ctx.inputs[2])?);
        let dim = the_dim(ctx.attrs, x.ndim())?;
        let (_, n, inner) = split3(x.shape(), dim);
        let idx = read_indices(&ctx.inputs[1], "index", n)?;
        let out = with_accum!(x.dtype(), T => {
            let s = elems::<T>(&src)?;
            let mut copied = Ok(());
            let out = new_host::<T>(x.shape(), |out| {
                copied = copy_into(&x, out);
                index_add_kernel(out, s, &idx, n, inner);
            })?;
            copied.map(|_| out)
        })?;
        Ok(vec![out.raw_cast(ctx.outputs[0].dtype)?])
    },
    backward: Some(|e, c| {
        let (x, index) = (c.inputs[0], c.inputs[1]);
        let dim = the_dim(c.attrs, e.meta(x).shape.len())?;
        let g = g0(c);
        let gs = e.op(&INDEX_SELECT, &[g, index], attrs_of(&INDEX_SELECT, &[dim_attr(dim)])?)?;
        Ok(vec![dense(g), None, dense(gs)])
    }),
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// gather, scatter_add

/// Checks an index of x's rank for gather/scatter along `dim`: sizes at most x's except at `dim`.
fn infer_gather_index(ctx: &InferCtx, x: &Meta, index: &Meta) -> Result<usize> {
    let dim = the_dim(ctx.attrs, x.shape.len())?;
    require_index(ctx.op, "index", index.dtype)?;
    if index.shape.len() != x.shape.len() {
        return Err(Error::shape("index", format!("needs x's rank {}, given {:?}", x.shape.len(), index.shape)));
    }
    if let Some(d) = (0..x.shape.len()).find(|&d| d != dim && index.shape[d] > x.shape[d]) {
        return Err(Error::shape(
            "index",
            format!("index {:?} is larger than x {:?} in dimension {d}", index.shape, x.shape),
        ));
    }
    Ok(dim)
}

/// `out[p] = x[p with coordinate dim replaced by idx[p]]` over the index's shape.
fn gather_kernel<T: Element>(x: &[T], xs: &[usize], ishape: &[usize], idx: &[usize], dim: usize, out: &mut [T]) {
    let last = ishape.len() - 1;
    let (w, lead, sd) = (ishape[last], &ishape[..last], xs[dim]);
    par_rows(out, w, |r0, chunk| {
        for (k, row) in chunk.chunks_exact_mut(w).enumerate() {
            let r = r0 + k;
            let base = row_base(r, lead, xs, dim);
            let ir = &idx[r * w..(r + 1) * w];
            if dim == last {
                row.iter_mut().zip(ir).for_each(|(y, &i)| *y = x[base + i * sd]);
            } else {
                row.iter_mut().zip(ir).enumerate().for_each(|(j, (y, &i))| *y = x[base + j + i * sd]);
            }
        }
    });
}

/// Elements of x picked along one dimension by an index of x's rank.
pub static GATHER: OpDef = OpDef {
    name: "gather",
    kind: OpKind::Movement,
    doc: "out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (likewise for any dim); output has index's shape",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("index")],
    outputs: &["out"],
    attrs: DIM_ATTR,
    infer: |ctx| {
        infer_gather_index(ctx, &ctx.inputs[0], &ctx.inputs[1])?;
        one(ctx.inputs[1].shape.clone(), ctx.inputs[0].dtype)
    },
    forward: |ctx| {
        let x = ctx.inputs[0].raw_contiguous()?;
        let dim = the_dim(ctx.attrs, x.ndim())?;
        let index = &ctx.inputs[1];
        let idx = read_indices(index, "index", x.shape()[dim])?;
        Ok(vec![with_dtype!(x.dtype(), T => {
            let src = elems::<T>(&x)?;
            new_host::<T>(index.shape(), |out| gather_kernel(src, x.strides(), index.shape(), &idx, dim, out))?
        })])
    },
    backward: Some(|e, c| {
        let (x, index) = (c.inputs[0], c.inputs[1]);
        let dim = the_dim(c.attrs, e.meta(x).shape.len())?;
        let zeros = emit_zeros_like(e, x)?;
        let g = e.op(&SCATTER_ADD, &[zeros, index, g0(c)], attrs_of(&SCATTER_ADD, &[dim_attr(dim)])?)?;
        Ok(vec![dense(g), None])
    }),
    pure: true,
    pointwise: None,
};

/// `out[p with dim replaced by idx[p]] += src[p]` over the index's shape; `out` has strides `xs`.
fn scatter_add_kernel<T: Accum>(
    out: &mut [T],
    xs: &[usize],
    src: &[T],
    ss: &[usize],
    ishape: &[usize],
    idx: &[usize],
    dim: usize,
) {
    let last = ishape.len() - 1;
    let (w, lead, sd) = (ishape[last], &ishape[..last], xs[dim]);
    if w == 0 || idx.is_empty() {
        return;
    }
    let rows = idx.len() / w;
    let run = |block: &mut [T], block_base: usize, range: std::ops::Range<usize>| {
        for r in range {
            let ob = row_base(r, lead, xs, dim) - block_base;
            let sb = row_base(r, lead, ss, usize::MAX);
            for (j, &i) in idx[r * w..(r + 1) * w].iter().enumerate() {
                let o = ob + if dim == last { 0 } else { j } + i * sd;
                block[o].acc(src[sb + j]);
            }
        }
    };
    if dim != 0 && ishape[0] > 1 && out.len() >= PARALLEL_THRESHOLD {
        // Positions with different first coordinates land in different blocks of x's first
        // dimension, so each block is one thread's.
        let (per, xs0) = (rows / ishape[0], xs[0]);
        install(|| {
            out.par_chunks_mut(xs0).take(ishape[0]).enumerate().for_each(|(c0, block)| {
                run(block, c0 * xs0, c0 * per..(c0 + 1) * per);
            })
        });
    } else {
        run(out, 0, 0..rows);
    }
}

/// x with src's elements added at the positions an index names along one dimension.
pub static SCATTER_ADD: OpDef = OpDef {
    name: "scatter_add",
    kind: OpKind::Opaque,
    doc: "x with src[i][j][k] added to x[index[i][j][k]][j][k] for dim 0 (likewise for any dim); repeats add",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("index"), ArgSpec::req("src")],
    outputs: &["out"],
    attrs: DIM_ATTR,
    infer: |ctx| {
        let (x, index, src) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]);
        require_numeric(ctx.op, "x", x.dtype)?;
        infer_gather_index(ctx, x, index)?;
        if src.dtype != x.dtype {
            return Err(Error::InvalidDtype {
                arg: "src",
                msg: format!("must match x's {}, given {}", x.dtype, src.dtype),
            });
        }
        if src.shape.len() != index.shape.len() || src.shape.iter().zip(&index.shape).any(|(s, i)| i > s) {
            return Err(Error::shape(
                "src",
                format!("needs index's rank and at least its sizes {:?}, given {:?}", index.shape, src.shape),
            ));
        }
        one(x.shape.clone(), x.dtype)
    },
    forward: |ctx| {
        let (x, src, index) = (widened(&ctx.inputs[0])?, widened(&ctx.inputs[2])?, &ctx.inputs[1]);
        let dim = the_dim(ctx.attrs, x.ndim())?;
        let idx = read_indices(index, "index", x.shape()[dim])?;
        let out = with_accum!(x.dtype(), T => {
            let s = elems::<T>(&src)?;
            let mut copied = Ok(());
            let out = new_host::<T>(x.shape(), |out| {
                copied = copy_into(&x, out);
                scatter_add_kernel(out, x.strides(), s, src.strides(), index.shape(), &idx, dim);
            })?;
            copied.map(|_| out)
        })?;
        Ok(vec![out.raw_cast(ctx.outputs[0].dtype)?])
    },
    backward: Some(|e, c| {
        let (x, index, src) = (c.inputs[0], c.inputs[1], c.inputs[2]);
        let dim = the_dim(c.attrs, e.meta(x).shape.len())?;
        let g = g0(c);
        let mut gs = e.op(&GATHER, &[g, index], attrs_of(&GATHER, &[dim_attr(dim)])?)?;
        let (ishape, sshape) = (e.meta(index).shape, e.meta(src).shape);
        if ishape != sshape {
            // src positions outside the index's extent were never read: zero gradient.
            let pads: Vec<i64> = ishape.iter().zip(&sshape).rev().flat_map(|(&i, &s)| [0, (s - i) as i64]).collect();
            gs =
                e.op(&super::structure::PAD, &[gs], attrs_of(&super::structure::PAD, &[("pads", Attr::Ints(pads))])?)?;
        }
        Ok(vec![dense(g), None, dense(gs)])
    }),
    pure: true,
    pointwise: None,
};

// ---------------------------------------------------------------------------------------------
// one_hot

/// One-hot rows of integer class indices.
pub static ONE_HOT: OpDef = OpDef {
    name: "one_hot",
    kind: OpKind::Opaque,
    doc: "indices (i32/i64, any shape) -> i64 [..., num_classes] with a 1 at each index",
    inputs: &[ArgSpec::req("indices")],
    outputs: &["out"],
    attrs: &[AttrSpec::with_default(
        "num_classes",
        AttrKind::Int,
        AttrDefault::Int(-1),
        "number of classes; -1 = max index + 1, resolved by the eager Tensor::one_hot (ops need a fixed count)",
    )],
    infer: |ctx| {
        let idx = &ctx.inputs[0];
        require_index(ctx.op, "indices", idx.dtype)?;
        let c = ctx.attrs.int("num_classes");
        if c < 0 {
            return Err(Error::invalid(
                "num_classes",
                format!("needs a class count >= 0, given {c} (Tensor::one_hot resolves -1 from the data)"),
            ));
        }
        let mut shape = idx.shape.clone();
        shape.push(c as usize);
        one(shape, DType::I64)
    },
    forward: |ctx| {
        let c = ctx.outputs[0].shape.last().copied().expect("rank >= 1");
        let idx = read_indices(&ctx.inputs[0], "indices", c)?;
        Ok(vec![new_host::<i64>(&ctx.outputs[0].shape, |out| {
            par_rows(out, c, |r0, chunk| {
                for (row, &i) in chunk.chunks_exact_mut(c).zip(&idx[r0..]) {
                    row.fill(0);
                    row[i] = 1;
                }
            })
        })?])
    },
    backward: None,
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[
    &EMBEDDING,
    &EMBEDDING_BACKWARD,
    &EMBEDDING_BAG,
    &EMBEDDING_BAG_BACKWARD,
    &EMBEDDING_BAG_WEIGHTS_BACKWARD,
    &INDEX_SELECT,
    &INDEX_ADD,
    &GATHER,
    &SCATTER_ADD,
    &ONE_HOT,
];

impl Tensor {
    /// Rows of this table `[V, D]` picked by `indices` (i32/i64, any shape) -> `[..., D]`.
    /// The table's gradient is a row gradient (only the looked-up rows).
    pub fn embedding(&self, indices: &Tensor) -> Result<Tensor> {
        call1(&EMBEDDING, &[self, indices], &attrs_of(&EMBEDDING, &[])?)
    }

    /// Like [`Tensor::embedding`], but lookups of row `padding_idx` (negative counts from the
    /// end) pass no gradient to that row.
    pub fn embedding_padded(&self, indices: &Tensor, padding_idx: i64) -> Result<Tensor> {
        call1(&EMBEDDING, &[self, indices], &attrs_of(&EMBEDDING, &[("padding_idx", Attr::Int(padding_idx))])?)
    }

    /// Per bag `indices[offsets[b]..offsets[b+1]]` the `mode` ("sum", "mean", "max") of this
    /// table's rows -> `[B, D]`; `per_sample_weights` (mode "sum" only) scale each row.
    pub fn embedding_bag(
        &self,
        indices: &Tensor,
        offsets: &Tensor,
        per_sample_weights: Option<&Tensor>,
        mode: &str,
    ) -> Result<Tensor> {
        let mut ins = vec![self, indices, offsets];
        ins.extend(per_sample_weights);
        call1(&EMBEDDING_BAG, &ins, &attrs_of(&EMBEDDING_BAG, &[("mode", Attr::Str(mode.to_string()))])?)
    }

    /// Slices `index[0], index[1], ..` of this tensor along `dim` (index 1-D i32/i64).
    pub fn index_select(&self, dim: i64, index: &Tensor) -> Result<Tensor> {
        call1(&INDEX_SELECT, &[self, index], &attrs_of(&INDEX_SELECT, &[("dim", Attr::Int(dim))])?)
    }

    /// This tensor with `src`'s slice j added at slice `index[j]` along `dim`.
    pub fn index_add(&self, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        call1(&INDEX_ADD, &[self, index, src], &attrs_of(&INDEX_ADD, &[("dim", Attr::Int(dim))])?)
    }

    /// Elements picked along `dim` by `index` (same rank); the result has `index`'s shape.
    pub fn gather(&self, dim: i64, index: &Tensor) -> Result<Tensor> {
        call1(&GATHER, &[self, index], &attrs_of(&GATHER, &[("dim", Attr::Int(dim))])?)
    }

    /// This tensor with each `src` element added at the position `index` names along `dim`.
    pub fn scatter_add(&self, dim: i64, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        call1(&SCATTER_ADD, &[self, index, src], &attrs_of(&SCATTER_ADD, &[("dim", Attr::Int(dim))])?)
    }

    /// One-hot i64 rows `[..., num_classes]` of these class indices; `-1` takes the largest
    /// index + 1 (an error for an empty tensor).
    pub fn one_hot(&self, num_classes: i64) -> Result<Tensor> {
        let classes = if num_classes == -1 {
            require_index("one_hot", "indices", self.dtype())?;
            let max = read_indices(self, "indices", usize::MAX)?.into_iter().max();
            match max {
                Some(m) => m as i64 + 1,
                None => {
                    return Err(Error::invalid(
                        "num_classes",
                        "one_hot: cannot infer the class count (-1) from an empty tensor",
                    ));
                }
            }
        } else {
            num_classes
        };
        call1(&ONE_HOT, &[self], &attrs_of(&ONE_HOT, &[("num_classes", Attr::Int(classes))])?)
    }
}
