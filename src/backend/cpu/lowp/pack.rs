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
pub(super) fn pack_b(src: &[u16], v: MatView, panel: (usize, usize), k: usize, ks: usize, out: &mut [u16]) {
    // A constant pair width turns the index arithmetic into shifts.
    match ks {
        2 => pack_b_ks::<2>(src, v, panel, k, out),
        _ => pack_b_ks::<1>(src, v, panel, k, out),
    }
}

fn pack_b_ks<const KS: usize>(src: &[u16], v: MatView, (j0, cols): (usize, usize), k: usize, out: &mut [u16]) {
    let at = |q: usize, c: usize| (q / KS * NR + c) * KS + q % KS;
    if KS == 2 && v.cs == 1 && cols == NR {
        // Row-major b, a full panel: interleave two source rows per packed row (vectorises).
        let pairs = k / 2;
        for (p, d) in out.chunks_exact_mut(2 * NR).take(pairs).enumerate() {
            let r0 = &src[v.off + 2 * p * v.rs + j0..][..NR];
            let r1 = &src[v.off + (2 * p + 1) * v.rs + j0..][..NR];
            for c in 0..NR {
                d[2 * c] = r0[c];
                d[2 * c + 1] = r1[c];
            }
        }
        out[pairs * 2 * NR..].fill(0);
        if k % 2 == 1 {
            let r0 = &src[v.off + (k - 1) * v.rs + j0..][..NR];
            for (c, &x) in r0.iter().enumerate() {
                out[at(k - 1, c)] = x;
            }
        }
        return;
    }
    out.fill(0);
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
