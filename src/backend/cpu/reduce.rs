//! CPU reductions: move the reduced axes innermost, then reduce each contiguous run.

use super::elementwise::{host_slice, new_host, par_chunks};
use crate::dtype::Element;
use crate::error::Result;
use crate::tensor::Tensor;

/// Applies `f` to each run of elements that share the kept coordinates, i.e. reduces
/// `axes` (sorted, distinct). The result has the kept dimensions, in order.
pub fn reduce_runs<T: Element, U: Element>(
    x: &Tensor,
    axes: &[usize],
    f: impl Fn(&[T]) -> U + Sync + Send,
) -> Result<Tensor> {
    let kept: Vec<usize> = (0..x.ndim()).filter(|d| !axes.contains(d)).collect();
    let perm: Vec<i64> = kept.iter().chain(axes).map(|&d| d as i64).collect();
    let moved = x.raw_permute(&perm)?.raw_contiguous()?;
    let run: usize = axes.iter().map(|&d| x.shape()[d]).product();
    let out_shape: Vec<usize> = kept.iter().map(|&d| x.shape()[d]).collect();
    let src = host_slice::<T>(&moved)?;
    let base = moved.layout().offset();
    new_host::<U>(&out_shape, |out| {
        par_chunks(out, |start, o| {
            for (i, y) in o.iter_mut().enumerate() {
                let s = base + (start + i) * run;
                *y = f(&src[s..s + run]);
            }
        })
    })
}

/// Sums a contiguous tensor over its leading `lead` dimensions (the bias gradient of a
/// linear layer, batch statistics): adds whole rows, so the inner loop vectorises, instead
/// of transposing first as [`reduce_runs`] would. Rows are summed in blocks of 64 and
/// the block sums added, so rounding error grows with n/64 + 64 rather than n.
pub fn sum_leading<T: Element + num_traits::Float>(x: &Tensor, lead: usize) -> Result<Tensor> {
    let x = x.raw_contiguous()?;
    let rows: usize = x.shape()[..lead].iter().product();
    let width: usize = x.shape()[lead..].iter().product();
    let src = host_slice::<T>(&x)?;
    let base = x.layout().offset();
    new_host::<T>(&x.shape()[lead..], |out| {
        par_chunks(out, |start, o| {
            o.fill(<T as Element>::zero());
            let mut block = vec![<T as Element>::zero(); o.len()];
            for r0 in (0..rows).step_by(64) {
                block.fill(<T as Element>::zero());
                for r in r0..(r0 + 64).min(rows) {
                    let row = &src[base + r * width + start..base + r * width + start + o.len()];
                    for (b, &v) in block.iter_mut().zip(row) {
                        *b = *b + v;
                    }
                }
                for (y, &b) in o.iter_mut().zip(&block) {
                    *y = *y + b;
                }
            }
        })
    })
}

/// Sum of a slice with 16 independent accumulators: vectorises, and rounding error grows
/// with n/16 rather than n.
pub fn sum_slice<T: num_traits::Float>(s: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let chunks = s.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            acc[i] = acc[i] + c[i];
        }
    }
    let mut total = T::zero();
    for r in rest {
        total = total + *r;
    }
    for pair in acc.chunks(2) {
        total = total + (pair[0] + pair[1]);
    }
    total
}
