//! AVX-512 microkernels: a 12 × 32 f32 tile accumulated from bf16 pairs (`vdpbf16ps`) or from f32 (FMA).

use super::pack::{MR, NR};
use std::arch::x86_64::*;

/// One tile: `tile[i·NR + j] = Σ_p a[p][i] · b[p][j]` over `kw` packed words, where each word
/// of `a`/`b` holds a bf16 pair (k, k+1). `vdpbf16ps` multiplies exactly, adds in f32 with
/// round-to-nearest-even and, by its definition, treats bf16 subnormal inputs as zero.
///
/// # Safety
/// The CPU has AVX512F and AVX512-BF16; `a` holds `kw · MR` words and `b` `kw · NR` words.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn tile_bf16(kw: usize, a: *const u32, b: *const u32, tile: &mut [f32; MR * NR]) {
    let mut c = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kw {
        // SAFETY: in bounds by the caller's contract; unaligned loads.
        unsafe {
            let bp = b.add(p * NR);
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp as *const _));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(16) as *const _));
            let ap = a.add(p * MR);
            for (i, ci) in c.iter_mut().enumerate() {
                let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(i) as i32));
                ci[0] = _mm512_dpbf16_ps(ci[0], x, b0);
                ci[1] = _mm512_dpbf16_ps(ci[1], x, b1);
            }
        }
    }
    store(&c, tile);
}

/// The f32 version of [`tile_bf16`] (f16 operands converted to f32 when packed): one FMA per
/// k value and column, so the result equals a sequential f32 dot product in k order.
///
/// # Safety
/// The CPU has AVX512F; `a` holds `kw · MR` and `b` `kw · NR` floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tile_f32(kw: usize, a: *const f32, b: *const f32, tile: &mut [f32; MR * NR]) {
    let mut c = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kw {
        // SAFETY: in bounds by the caller's contract; unaligned loads.
        unsafe {
            let bp = b.add(p * NR);
            let b0 = _mm512_loadu_ps(bp);
            let b1 = _mm512_loadu_ps(bp.add(16));
            let ap = a.add(p * MR);
            for (i, ci) in c.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*ap.add(i));
                ci[0] = _mm512_fmadd_ps(x, b0, ci[0]);
                ci[1] = _mm512_fmadd_ps(x, b1, ci[1]);
            }
        }
    }
    store(&c, tile);
}

#[inline(always)]
fn store(c: &[[__m512; 2]; MR], tile: &mut [f32; MR * NR]) {
    for (i, ci) in c.iter().enumerate() {
        // SAFETY: row i of the tile is NR = 32 floats, two 16-lane stores.
        unsafe {
            _mm512_storeu_ps(tile.as_mut_ptr().add(i * NR), ci[0]);
            _mm512_storeu_ps(tile.as_mut_ptr().add(i * NR + 16), ci[1]);
        }
    }
}
