//! CPU elementwise kernels: unary maps and broadcasting binary maps over any layouts, vectorisable, parallel over chunks.

use crate::backend::{CpuBuffer, Storage};
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, for_each_chunk_mut};
use crate::tensor::Tensor;
use crate::tensor::layout::{Layout, coalesce_joint};
use std::sync::Arc;

/// Elements per parallel work item: large enough to amortise scheduling, small enough to balance.
const CHUNK: usize = 1 << 14;

/// The host elements of a tensor's storage (all of it; index through the layout).
pub fn host_slice<T: Element>(t: &Tensor) -> Result<&[T]> {
    if T::DTYPE != t.dtype() {
        return Err(Error::Internal(format!("kernel for {} given a {} tensor", T::DTYPE, t.dtype())));
    }
    let buf = t
        .storage()
        .as_cpu()
        .ok_or_else(|| Error::Unsupported(format!("CPU kernel given a tensor on {}", t.device())))?;
    // SAFETY: the storage holds elements of the tensor's dtype, which is T.
    Ok(unsafe { buf.typed::<T>() })
}

/// A fresh contiguous host tensor of `shape` whose elements `fill` writes (given the output slice).
pub fn new_host<U: Element>(shape: &[usize], fill: impl FnOnce(&mut [U])) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let buf = CpuBuffer::uninit(n * U::DTYPE.size())?;
    // SAFETY: a fresh buffer of n elements, exclusively ours until wrapped below. Every
    // kernel writes all n elements before anyone reads them.
    let out = unsafe { &mut buf.typed_mut::<U>()[..n] };
    fill(out);
    Tensor::from_storage(Arc::new(Storage::Cpu(buf)), Layout::contiguous(shape), U::DTYPE)
}

/// Runs `f(offset, chunk)` over `out` in chunks, in parallel when large.
pub fn par_chunks<U: Send>(out: &mut [U], f: impl Fn(usize, &mut [U]) + Sync + Send) {
    if out.len() < PARALLEL_THRESHOLD {
        f(0, out);
    } else {
        for_each_chunk_mut(out, CHUNK, f);
    }
}

/// `out[i] = f(x[i])` for a tensor of any layout.
pub fn map_unary<T: Element, U: Element>(x: &Tensor, f: impl Fn(T) -> U + Sync + Send) -> Result<Tensor> {
    let src = host_slice::<T>(x)?;
    let layout = x.layout();
    new_host::<U>(x.shape(), |out| {
        if layout.is_contiguous() {
            let src = &src[layout.offset()..layout.offset() + out.len()];
            par_chunks(out, |start, o| {
                let n = o.len();
                for (y, &v) in o.iter_mut().zip(&src[start..start + n]) {
                    *y = f(v);
                }
            });
        } else {
            for (y, off) in out.iter_mut().zip(layout.offsets()) {
                *y = f(src[off]);
            }
        }
    })
}

/// `out = f(a, b)` after broadcasting both to `shape` (the caller checked they broadcast).
pub fn map_binary<A: Element, B: Element, U: Element>(
    a: &Tensor,
    b: &Tensor,
    shape: &[usize],
    f: impl Fn(A, B) -> U + Sync + Send,
) -> Result<Tensor> {
    let to_i64 = |s: &[usize]| s.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let la = a.layout().expand(&to_i64(shape))?;
    let lb = b.layout().expand(&to_i64(shape))?;
    let (sa, sb) = (host_slice::<A>(a)?, host_slice::<B>(b)?);
    new_host::<U>(shape, |out| {
        if out.is_empty() {
            return;
        }
        let joint = coalesce_joint(&[&la, &lb]);
        let (ja, jb) = (&joint[0], &joint[1]);
        let row = *ja.shape().last().unwrap();
        let (da, db) = (*ja.strides().last().unwrap(), *jb.strides().last().unwrap());
        // `o[i] = f(a[oa + i * da], b[ob + i * db])` for one stretch of a row.
        let stretch = |o: &mut [U], oa: usize, ob: usize| {
            let n = o.len();
            match (da, db) {
                (1, 1) => o.iter_mut().zip(&sa[oa..oa + n]).zip(&sb[ob..ob + n]).for_each(|((y, &x), &z)| *y = f(x, z)),
                (1, 0) => {
                    let z = sb[ob];
                    o.iter_mut().zip(&sa[oa..oa + n]).for_each(|(y, &x)| *y = f(x, z))
                }
                (0, 1) => {
                    let x = sa[oa];
                    o.iter_mut().zip(&sb[ob..ob + n]).for_each(|(y, &z)| *y = f(x, z))
                }
                _ => o.iter_mut().enumerate().for_each(|(i, y)| *y = f(sa[oa + i * da], sb[ob + i * db])),
            }
        };
        if ja.shape().len() == 1 {
            // One long row (packed or scalar-broadcast operands): split the row itself,
            // or a 16M-element add would run on one thread.
            let (oa, ob) = (ja.row_offset(0), jb.row_offset(0));
            par_chunks(out, |start, o| stretch(o, oa + start * da, ob + start * db));
            return;
        }
        // Rows of the joint layout; each chunk covers whole rows.
        let rows_per_chunk = (CHUNK / row).max(1);
        let run = |first_row: usize, o: &mut [U]| {
            for (r, orow) in o.chunks_mut(row).enumerate() {
                stretch(orow, ja.row_offset(first_row + r), jb.row_offset(first_row + r));
            }
        };
        if out.len() < PARALLEL_THRESHOLD {
            run(0, out);
        } else {
            for_each_chunk_mut(out, rows_per_chunk * row, |start, c| run(start / row, c));
        }
    })
}

/// `out = f(a, b, c)` after broadcasting all three to `shape` (used by `where` and fused chains).
pub fn map_ternary<A: Element, B: Element, C: Element, U: Element>(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    shape: &[usize],
    f: impl Fn(A, B, C) -> U + Sync + Send,
) -> Result<Tensor> {
    let to_i64 = |s: &[usize]| s.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let (la, lb, lc) =
        (a.layout().expand(&to_i64(shape))?, b.layout().expand(&to_i64(shape))?, c.layout().expand(&to_i64(shape))?);
    let (sa, sb, sc) = (host_slice::<A>(a)?, host_slice::<B>(b)?, host_slice::<C>(c)?);
    new_host::<U>(shape, |out| {
        for (((y, oa), ob), oc) in out.iter_mut().zip(la.offsets()).zip(lb.offsets()).zip(lc.offsets()) {
            *y = f(sa[oa], sb[ob], sc[oc]);
        }
    })
}
