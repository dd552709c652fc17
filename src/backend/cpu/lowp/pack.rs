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
    } else if KS == 2 && v.rs == 1 {
        // A transposed operand (linear's Wᵀ) of bf16 pairs: column c of b is row c of W, and
        // its k-pairs are 32-bit words there, so the panel is a transpose of 32-bit words.
        let words = k / 2;
        let (c4, p4) = (cols / 4 * 4, words / 4 * 4);
        for c in (0..c4).step_by(4) {
            for p in (0..p4).step_by(4) {
                // SAFETY: rows j0+c..j0+c+4 of W hold k ≥ 2·(p + 4) elements from their start;
                // out rows p..p+4 of the panel hold NR pairs, c + 4 ≤ NR.
                unsafe {
                    transpose_words_4x4(
                        src.as_ptr().add(v.off + (j0 + c) * v.cs + 2 * p),
                        v.cs,
                        out.as_mut_ptr().add((p * NR + c) * 2),
                        NR * 2,
                    )
                };
            }
        }
        for c in 0..cols {
            let base = v.off + (j0 + c) * v.cs;
            let from = if c < c4 { 2 * p4 } else { 0 };
            for q in from..k {
                out[at(q, c)] = src[base + q];
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

/// Transposes a 4 × 4 block of 32-bit words: source rows at `src + r·src_stride` (in u16
/// units, each four words long) become destination rows at `dst + c·dst_stride`.
///
/// # Safety
/// The four source rows of 8 u16 and four destination rows of 8 u16 are in bounds.
#[inline(always)]
unsafe fn transpose_words_4x4(src: *const u16, src_stride: usize, dst: *mut u16, dst_stride: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86_64; unaligned loads and stores in bounds by the contract.
    unsafe {
        use std::arch::x86_64::*;
        let row = |r: usize| _mm_loadu_si128(src.add(r * src_stride) as *const __m128i);
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        let (t0, t1) = (_mm_unpacklo_epi32(r0, r1), _mm_unpackhi_epi32(r0, r1));
        let (t2, t3) = (_mm_unpacklo_epi32(r2, r3), _mm_unpackhi_epi32(r2, r3));
        let out = [
            _mm_unpacklo_epi64(t0, t2),
            _mm_unpackhi_epi64(t0, t2),
            _mm_unpacklo_epi64(t1, t3),
            _mm_unpackhi_epi64(t1, t3),
        ];
        for (c, v) in out.into_iter().enumerate() {
            _mm_storeu_si128(dst.add(c * dst_stride) as *mut __m128i, v);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: in bounds by the contract.
    unsafe {
        for r in 0..4 {
            for c in 0..4 {
                for h in 0..2 {
                    *dst.add(c * dst_stride + 2 * r + h) = *src.add(r * src_stride + 2 * c + h);
                }
            }
        }
    }
}

/// Transposes an 8 × 8 block of u16: source rows at `src + r·src_stride` (eight elements
/// each) become destination rows at `dst + c·dst_stride`.
///
/// # Safety
/// The eight source rows of 8 u16 and eight destination rows of 8 u16 are in bounds.
#[inline(always)]
pub(super) unsafe fn transpose_u16_8x8(src: *const u16, src_stride: usize, dst: *mut u16, dst_stride: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of x86_64; unaligned loads and stores in bounds by the contract.
    unsafe {
        use std::arch::x86_64::*;
        let row = |r: usize| _mm_loadu_si128(src.add(r * src_stride) as *const __m128i);
        let r = [row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7)];
        // Pairs of rows interleaved by element, then by pairs, then by quads.
        let a = [
            _mm_unpacklo_epi16(r[0], r[1]),
            _mm_unpackhi_epi16(r[0], r[1]),
            _mm_unpacklo_epi16(r[2], r[3]),
            _mm_unpackhi_epi16(r[2], r[3]),
            _mm_unpacklo_epi16(r[4], r[5]),
            _mm_unpackhi_epi16(r[4], r[5]),
            _mm_unpacklo_epi16(r[6], r[7]),
            _mm_unpackhi_epi16(r[6], r[7]),
        ];
        let b = [
            _mm_unpacklo_epi32(a[0], a[2]),
            _mm_unpackhi_epi32(a[0], a[2]),
            _mm_unpacklo_epi32(a[1], a[3]),
            _mm_unpackhi_epi32(a[1], a[3]),
            _mm_unpacklo_epi32(a[4], a[6]),
            _mm_unpackhi_epi32(a[4], a[6]),
            _mm_unpacklo_epi32(a[5], a[7]),
            _mm_unpackhi_epi32(a[5], a[7]),
        ];
        for q in 0..4 {
            _mm_storeu_si128(dst.add(2 * q * dst_stride) as *mut __m128i, _mm_unpacklo_epi64(b[q], b[q + 4]));
            _mm_storeu_si128(dst.add((2 * q + 1) * dst_stride) as *mut __m128i, _mm_unpackhi_epi64(b[q], b[q + 4]));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: in bounds by the contract.
    unsafe {
        for r in 0..8 {
            for c in 0..8 {
                *dst.add(c * dst_stride + r) = *src.add(r * src_stride + c);
            }
        }
    }
}
