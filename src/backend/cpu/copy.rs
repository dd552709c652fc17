//! CPU strided copy with cast: the one kernel behind `contiguous`, `cast` and copy-out.

use super::buffer::CpuBuffer;
use crate::dtype::{DType, Element, convert};
use crate::error::Result;
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::layout::Layout;
use crate::with_dtype;
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// Writes the elements of `src` (viewed through `layout`, dtype `src_dtype`) into `dst` as
/// a row-major contiguous array of `dst_dtype`. `dst` must hold `layout.numel()` elements.
pub fn copy_cast_into(src: &CpuBuffer, layout: &Layout, src_dtype: DType, dst: &mut [u8], dst_dtype: DType) {
    let n = layout.numel();
    debug_assert!(dst.len() >= n * dst_dtype.size());
    if n == 0 {
        return;
    }
    if src_dtype == dst_dtype && layout.is_contiguous() {
        let size = src_dtype.size();
        let start = layout.offset() * size;
        dst[..n * size].copy_from_slice(&src.bytes()[start..start + n * size]);
        return;
    }
    with_dtype!(src_dtype, S => {
        with_dtype!(dst_dtype, D => {
            // SAFETY: storage bytes hold valid `S` values (its dtype), and `dst` is an
            // exclusively borrowed byte buffer sized for `n` elements of `D`.
            let s = unsafe { src.typed::<S>() };
            let d = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<D>(), n) };
            gather_cast::<S, D>(s, layout, d)
        })
    })
}

/// A fresh contiguous buffer holding `src` (through `layout`) cast to `dst_dtype`.
pub fn copy_cast(src: &CpuBuffer, layout: &Layout, src_dtype: DType, dst_dtype: DType) -> Result<CpuBuffer> {
    let out = CpuBuffer::uninit(layout.numel() * dst_dtype.size())?;
    // SAFETY: `out` is fresh and not yet shared.
    let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr(), out.len()) };
    copy_cast_into(src, layout, src_dtype, bytes, dst_dtype);
    Ok(out)
}

fn gather_cast<S: Element, D: Element>(src: &[S], layout: &Layout, dst: &mut [D]) {
    let c = layout.coalesced();
    let row_len = *c.shape().last().unwrap();
    let stride = *c.strides().last().unwrap();
    let copy_rows = |first_row: usize, out: &mut [D]| {
        for (r, row) in out.chunks_mut(row_len).enumerate() {
            let start = c.row_offset(first_row + r);
            if stride == 1 {
                convert_row(&src[start..start + row_len], row);
            } else {
                for (i, o) in row.iter_mut().enumerate() {
                    *o = convert(src[start + i * stride]);
                }
            }
        }
    };
    if dst.len() < PARALLEL_THRESHOLD {
        copy_rows(0, dst);
        return;
    }
    // Chunks of whole rows, about 16K elements each, spread over the pool.
    let rows_per_chunk = (16384 / row_len).max(1);
    install(|| {
        dst.par_chunks_mut(rows_per_chunk * row_len)
            .enumerate()
            .for_each(|(i, chunk)| copy_rows(i * rows_per_chunk, chunk));
    });
}

/// Converts a contiguous row, using the vectorised half-precision conversions where they apply.
fn convert_row<S: Element, D: Element>(src: &[S], dst: &mut [D]) {
    // SAFETY (each cast below): the dtype check proves `S`/`D` are exactly the named types.
    unsafe {
        match (S::DTYPE, D::DTYPE) {
            (DType::F32, DType::F16) => return retype_mut::<D, f16>(dst).convert_from_f32_slice(retype(src)),
            (DType::F16, DType::F32) => return retype::<S, f16>(src).convert_to_f32_slice(retype_mut(dst)),
            (DType::F32, DType::BF16) => return super::bf16::narrow_row(retype(src), retype_mut(dst)),
            (DType::BF16, DType::F32) => return super::bf16::widen_row(retype(src), retype_mut(dst)),
            _ => {}
        }
    }
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = convert(x);
    }
}

/// # Safety
/// `A` and `B` must be the same type.
unsafe fn retype<A, B>(s: &[A]) -> &[B] {
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
}

/// # Safety
/// `A` and `B` must be the same type.
unsafe fn retype_mut<A, B>(s: &mut [A]) -> &mut [B] {
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}
