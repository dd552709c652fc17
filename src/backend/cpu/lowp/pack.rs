//! Packing of strided bf16/f16 operands into the panel layouts the low-precision microkernels read.

use super::super::gemm::MatView;

/// Rows of `a` per microkernel tile (and per packed A micro-panel).
pub(super) const MR: usize = 12;
/// Columns of `b` per microkernel tile (two 16-lane f32 registers).
pub(super) const NR: usize = 32;

/// Packs rows `i0..i0 + rows` of the `m × k` matrix `src` (16-bit elements, any strides) into
/// `out`: micro-panels of `MR` rows, each `[k / ks][MR][ks]`, where `ks` is the number of
/// consecutive k values per 32-bit word (2 for bf16 pairs, 1 for f16). Rows past `rows` and k
/// past `k` are zero, so the microkernel always computes a full tile and padding adds nothing.
/// `kpad` (a multiple of `ks`) is the padded depth; `out` holds `ceil(rows / MR) · MR · kpad`.
pub(super) fn pack_a(
    src: &[u16],
    v: MatView,
    (i0, rows): (usize, usize),
    k: usize,
    kpad: usize,
    ks: usize,
    out: &mut [u16],
) {
    let panel = MR * kpad;
    for (pi, dst) in out.chunks_exact_mut(panel).enumerate() {
        for r in 0..MR {
            let i = pi * MR + r;
            if i >= rows {
                for q in 0..kpad {
                    dst[(q / ks * MR + r) * ks + q % ks] = 0;
                }
                continue;
            }
            let base = v.off + (i0 + i) * v.rs;
            // k runs along the source row here: read it in order, scatter into the panel.
            for q in 0..k {
                dst[(q / ks * MR + r) * ks + q % ks] = src[base + q * v.cs];
            }
            for q in k..kpad {
                dst[(q / ks * MR + r) * ks + q % ks] = 0;
            }
        }
    }
}

/// Packs the `k × NR` column panel starting at column `j0` of the `k × n` matrix `src` (`cols`
/// valid columns) as `[kpad / ks][NR][ks]` (`out` is that long), zero past `cols` and `k`.
pub(super) fn pack_b(src: &[u16], v: MatView, (j0, cols): (usize, usize), k: usize, ks: usize, out: &mut [u16]) {
    out.fill(0);
    let at = |q: usize, c: usize| (q / ks * NR + c) * ks + q % ks;
    if v.cs == 1 || v.rs > v.cs {
        // Rows of b are the contiguous (or nearer) direction: walk each row.
        for q in 0..k {
            let base = v.off + q * v.rs + j0 * v.cs;
            for c in 0..cols {
                out[at(q, c)] = src[base + c * v.cs];
            }
        }
    } else {
        // A transposed operand (linear's Wᵀ): columns of b are rows of W, walk those.
        for c in 0..cols {
            let base = v.off + (j0 + c) * v.cs;
            for q in 0..k {
                out[at(q, c)] = src[base + q * v.rs];
            }
        }
    }
}
