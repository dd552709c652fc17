//! CPU reductions: move the reduced axes innermost, then reduce each contiguous run.

use super::bf16::{narrow_row, widen};
use super::elementwise::{host_slice, new_host, par_chunks};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use rayon::prelude::*;

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
/// the block sums added in order, so rounding error grows with n/64 + 64 rather than n, and
/// the result does not depend on how many threads summed the blocks. f32 and f64 sum in
/// their own type; bf16 and f16 in f32, rounded once per output element.
pub fn sum_leading<T: Element>(x: &Tensor, lead: usize) -> Result<Tensor> {
    let x = x.raw_contiguous()?;
    let rows: usize = x.shape()[..lead].iter().product();
    let width: usize = x.shape()[lead..].iter().product();
    let base = x.layout().offset();
    let out_shape = &x.shape()[lead..];
    macro_rules! native {
        ($t:ty) => {{
            let src = &host_slice::<$t>(&x)?[base..base + rows * width];
            let sums = block_sums(rows, width, |r, c0, acc: &mut [$t]| {
                for (a, &v) in acc.iter_mut().zip(&src[r * width + c0..(r + 1) * width]) {
                    *a += v;
                }
            });
            new_host::<$t>(out_shape, |out| out.copy_from_slice(&sums))
        }};
    }
    match T::DTYPE {
        DType::F32 => native!(f32),
        DType::F64 => native!(f64),
        DType::BF16 => {
            let src = &host_slice::<bf16>(&x)?[base..base + rows * width];
            let sums = block_sums(rows, width, |r, c0, acc: &mut [f32]| {
                for (a, &v) in acc.iter_mut().zip(&src[r * width + c0..(r + 1) * width]) {
                    *a += widen(v);
                }
            });
            new_host::<bf16>(out_shape, |out| narrow_row(&sums, out))
        }
        DType::F16 => {
            let src = &host_slice::<f16>(&x)?[base..base + rows * width];
            let sums = block_sums(rows, width, |r, c0, acc: &mut [f32]| {
                let mut row = [0f32; 256];
                for (a, h) in acc.chunks_mut(256).zip(src[r * width + c0..(r + 1) * width].chunks(256)) {
                    h.convert_to_f32_slice(&mut row[..h.len()]);
                    for (a, &v) in a.iter_mut().zip(&row) {
                        *a += v;
                    }
                }
            });
            new_host::<f16>(out_shape, |out| out.convert_from_f32_slice(&sums))
        }
        d => Err(Error::InvalidDtype { arg: "x", msg: format!("sum_leading needs a float tensor, given {d}") }),
    }
}

/// Rows summed per block of 64 (`add_row(r, c0, acc)` adds row `r` from column `c0` on into
/// `acc`), then the block sums added in block order. Blocks run in parallel when there are
/// several; a few rows wide enough to share are split by columns instead. Every column gets
/// the same additions in the same order either way.
fn block_sums<A: num_traits::Float + Send + Sync>(
    rows: usize,
    width: usize,
    add_row: impl Fn(usize, usize, &mut [A]) + Sync,
) -> Vec<A> {
    const BLOCK: usize = 64;
    /// Columns per task when a few rows are split by columns.
    const COLUMNS: usize = 1 << 14;
    let blocks = rows.div_ceil(BLOCK);
    // Columns c0.. of every block, summed in order into `total`.
    let columns = |c0: usize, total: &mut [A]| {
        let mut acc = vec![A::zero(); total.len()];
        for b in 0..blocks {
            acc.fill(A::zero());
            for r in b * BLOCK..((b + 1) * BLOCK).min(rows) {
                add_row(r, c0, &mut acc);
            }
            for (t, &v) in total.iter_mut().zip(&acc) {
                *t = *t + v;
            }
        }
    };
    let mut total = vec![A::zero(); width];
    if rows * width < PARALLEL_THRESHOLD {
        columns(0, &mut total);
    } else if blocks < 4 {
        install(|| total.par_chunks_mut(COLUMNS).enumerate().for_each(|(i, t)| columns(i * COLUMNS, t)));
    } else {
        let block = |b: usize| {
            let mut acc = vec![A::zero(); width];
            for r in b * BLOCK..((b + 1) * BLOCK).min(rows) {
                add_row(r, 0, &mut acc);
            }
            acc
        };
        let partial: Vec<Vec<A>> = install(|| (0..blocks).into_par_iter().map(block).collect());
        for p in &partial {
            for (t, &v) in total.iter_mut().zip(p) {
                *t = *t + v;
            }
        }
    }
    total
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
