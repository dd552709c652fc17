//! The native driver: B packed once, then blocks of rows × column panels in parallel, one microkernel per tile.

use super::kernel_x86::{tile_bf16, tile_f32};
use super::pack::{MR, NR, pack_a, pack_b};
use super::{LowpFloat, LowpOut};
use crate::backend::cpu::gemm::MatView;
use crate::dtype::DType;
use crate::runtime::{Dst, install};
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// Rows of A per task: its packed block (MC · k · 2 bytes) stays in L2 while every column
/// panel of B streams past it.
const MC: usize = 8 * MR;
/// Below this many multiply-adds the product runs on the calling thread.
const SERIAL_WORK: usize = 64 * 64 * 64;

/// Packed operand panels: bf16 pairs as 32-bit words, or f16 widened to f32.
enum Panels {
    Pairs(Vec<u32>),
    Floats(Vec<f32>),
}

/// Packs `words` 32-bit words' worth of panels: `fill` writes the 16-bit layout (pairs for
/// bf16, one f16 per word otherwise), which f16 then widens to f32 in one vectorised pass.
fn packed(pairs: bool, words: usize, fill: impl FnOnce(&mut [u16])) -> Panels {
    if pairs {
        let mut v = vec![0u32; words];
        // SAFETY: a u32 buffer viewed as twice as many u16 (alignment 4 ≥ 2, same bytes);
        // on little-endian x86 the even-k element lands in the low half, as in B's words.
        let halves = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u16, words * 2) };
        fill(halves);
        Panels::Pairs(v)
    } else {
        let mut h = vec![0u16; words];
        fill(&mut h);
        let mut f = vec![0f32; words];
        let h: &[f16] = half::slice::HalfBitsSliceExt::reinterpret_cast(&h[..]);
        h.convert_to_f32_slice(&mut f);
        Panels::Floats(f)
    }
}

/// Splits `m` rows (blocks of `mc`) × `np` column panels into tasks: returns (row blocks,
/// column chunks, panels per chunk). Columns are split too when there are too few row blocks
/// to keep every thread busy.
pub(super) fn split_tasks(m: usize, mc: usize, np: usize, parallel: bool, threads: usize) -> (usize, usize, usize) {
    let mb = m.div_ceil(mc);
    let nchunks = if parallel && mb < 4 * threads { np.min((4 * threads).div_ceil(mb)) } else { 1 };
    let per_chunk = np.div_ceil(nchunks);
    (mb, np.div_ceil(per_chunk), per_chunk)
}

/// Writes one row of a finished tile: `src` plus `bias[j0..]` when given (summed in `scratch`),
/// rounded once into the destination at element `at`.
///
/// # Safety
/// `at .. at + src.len()` lies inside the destination, and only the calling task writes it.
pub(super) unsafe fn write_tile_row<O: LowpOut>(
    src: &[f32],
    bias: Option<&[f32]>,
    j0: usize,
    dst: Dst<O>,
    at: usize,
    scratch: &mut [f32; NR],
) {
    let cols = src.len();
    let src = match bias {
        Some(bias) => {
            for ((o, &s), &c) in scratch.iter_mut().zip(src).zip(&bias[j0..j0 + cols]) {
                *o = s + c;
            }
            &scratch[..cols]
        }
        None => src,
    };
    // SAFETY: by the caller's contract.
    let d = unsafe { std::slice::from_raw_parts_mut(dst.get().add(at), cols) };
    O::write_row(src, d);
}

/// See [`super::lowp_gemm_into`]; inputs already checked. Requires `T::native_available()`.
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
) {
    let pairs = T::DTYPE == DType::BF16;
    let ks = if pairs { 2 } else { 1 };
    let kpad = k.div_ceil(ks) * ks;
    let kw = kpad / ks;
    let np = n.div_ceil(NR);
    let (abits, bbits) = (T::bits(a), T::bits(b));
    let parallel = threads > 1 && m * n * k >= SERIAL_WORK;
    let bp = packed(pairs, np * kw * NR, |h| {
        let pack = |(j, chunk): (usize, &mut [u16])| pack_b(bbits, bv, (j * NR, NR.min(n - j * NR)), k, ks, chunk);
        if parallel {
            install(|| h.par_chunks_exact_mut(kpad * NR).enumerate().for_each(pack));
        } else {
            h.chunks_exact_mut(kpad * NR).enumerate().for_each(pack);
        }
    });
    let (mb, nchunks, per_chunk) = split_tasks(m, MC, np, parallel, threads);
    let out = Dst(dst.as_mut_ptr());
    let task = |t: usize| {
        let (bi, ci) = (t / nchunks, t % nchunks);
        let (i0, rows) = (bi * MC, MC.min(m - bi * MC));
        let micro = rows.div_ceil(MR);
        let ap = packed(pairs, micro * MR * kw, |h| pack_a(abits, av, (i0, rows), k, kpad, ks, h));
        let mut tile = [0f32; MR * NR];
        let mut row = [0f32; NR];
        for j in ci * per_chunk..((ci + 1) * per_chunk).min(np) {
            let (j0, cols) = (j * NR, NR.min(n - j * NR));
            for u in 0..micro {
                // SAFETY: native_available() checked the CPU features; the packed panels
                // hold kw·MR words per A micro-panel and kw·NR per B panel.
                unsafe {
                    match (&ap, &bp) {
                        (Panels::Pairs(x), Panels::Pairs(y)) => {
                            tile_bf16(kw, x.as_ptr().add(u * kw * MR), y.as_ptr().add(j * kw * NR), &mut tile)
                        }
                        (Panels::Floats(x), Panels::Floats(y)) => {
                            tile_f32(kw, x.as_ptr().add(u * kw * MR), y.as_ptr().add(j * kw * NR), &mut tile)
                        }
                        _ => unreachable!("A and B are packed alike"),
                    }
                }
                for r in 0..MR.min(rows - u * MR) {
                    let i = i0 + u * MR + r;
                    // SAFETY: (i, j0..j0+cols) lies inside the checked dst view, and only
                    // this task writes this row segment.
                    unsafe { write_tile_row(&tile[r * NR..r * NR + cols], bias, j0, out, i * dst_rs + j0, &mut row) };
                }
            }
        }
    };
    let tasks = mb * nchunks;
    if parallel {
        install(|| (0..tasks).into_par_iter().for_each(task));
    } else {
        (0..tasks).for_each(task);
    }
}
