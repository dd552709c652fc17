//! The portable path: bf16/f16 operands converted to f32 (B once, A in row blocks), multiplied by the f32 gemm.

use super::super::gemm::{MatView, Start, gemm_into};
use super::{LowpFloat, LowpOut};
use crate::error::Result;

/// Rows of A converted per f32 gemm call: bounds the f32 copies of A and of the output.
const ROWS: usize = 256;

/// Copies the `rows × cols` matrix `src` (any strides) into row-major f32 `dst`.
fn to_f32<T: LowpFloat>(src: &[T], v: MatView, rows: usize, cols: usize, dst: &mut [f32]) {
    for (r, out) in dst.chunks_exact_mut(cols).take(rows).enumerate() {
        let base = v.off + r * v.rs;
        if v.cs == 1 {
            T::row_to_f32(&src[base..base + cols], out);
        } else {
            for (c, o) in out.iter_mut().enumerate() {
                *o = src[base + c * v.cs].to_f64() as f32;
            }
        }
    }
}

/// See [`super::lowp_gemm_into`]; inputs already checked, `m, n, k > 0`.
#[allow(clippy::too_many_arguments)]
pub(super) fn run<T: LowpFloat, O: LowpOut>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [O],
    dst_rs: usize,
    a: &[T],
    av: MatView,
    b: &[T],
    bv: MatView,
    bias: Option<&[f32]>,
    threads: usize,
) -> Result<()> {
    let mut bf = vec![0f32; k * n];
    to_f32(b, bv, k, n, &mut bf);
    let block = ROWS.min(m);
    let (mut af, mut cf) = (vec![0f32; block * k], vec![0f32; block * n]);
    for r0 in (0..m).step_by(ROWS) {
        let rows = ROWS.min(m - r0);
        to_f32(a, MatView { off: av.off + r0 * av.rs, ..av }, rows, k, &mut af);
        let (a32, b32) = (MatView::new(0, k, 1), MatView::new(0, n, 1));
        let start = bias.map_or(Start::Zero, Start::Rows);
        gemm_into((rows, n, k), &mut cf, n, start, &af, a32, &bf, b32, threads, None)?;
        for (i, src) in cf.chunks_exact(n).take(rows).enumerate() {
            let at = (r0 + i) * dst_rs;
            O::write_row(src, &mut dst[at..at + n]);
        }
    }
    Ok(())
}
