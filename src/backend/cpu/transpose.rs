//! Out-of-place matrix transpose in cache-sized tiles, with an AVX 8 × 8 block kernel for 4-byte elements.

use crate::runtime::install;

/// Side of the square tiles the transpose walks. Destination rows are often a power-of-two
/// bytes apart and share L1 sets; 16 of them fit where 32 evicted each other (1.4× faster on
/// a 512 × 784 weight).
const TILE: usize = 16;

/// Writes the transpose of the `rows` × `cols` row-major matrix `src` to `dst` (`cols` ×
/// `rows`, row-major), in 16 × 16 tiles so both sides stay in cache, parallel over tile rows.
/// gemm multiplies a packed `[k, n]` right operand about 1.5× faster than a transposed view,
/// so linear layers whose product does not split by columns pay this copy once per call.
/// Four-byte elements (f32 and the 32-bit integers) move in 8 × 8 register blocks where the
/// CPU has AVX: the scalar loop read one strided element per store and took a tenth of an
/// eager MLP training step.
///
/// # Panics
/// If `src` or `dst` holds fewer than `rows · cols` elements.
pub fn transpose_into<T: Copy + Send + Sync>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    if rows == 0 || cols == 0 {
        return;
    }
    let (src, dst) = (&src[..rows * cols], &mut dst[..rows * cols]);
    let chunk = TILE * rows;
    if rows * cols < crate::runtime::PARALLEL_THRESHOLD {
        dst.chunks_mut(chunk).enumerate().for_each(|(i, c)| tile_row(src, cols, (rows, cols), i * TILE, c));
    } else {
        use rayon::prelude::*;
        install(|| {
            dst.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| tile_row(src, cols, (rows, cols), i * TILE, c))
        });
    }
}

/// Writes the transpose of the `rows` × `cols` matrix whose row `r` starts at `src[r · ld]`
/// to `dst` (`cols` × `rows`, row-major) on the calling thread: for a thread packing a piece
/// of a product's operand into its own cache (see [`super::gemm::RhsView::WeightRows`]).
///
/// # Panics
/// If `src` holds fewer than `(rows − 1) · ld + cols` elements, `ld < cols`, or `dst` holds
/// fewer than `rows · cols`.
pub fn transpose_rows_into<T: Copy>(src: &[T], ld: usize, (rows, cols): (usize, usize), dst: &mut [T]) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        ld >= cols && src.len() >= (rows - 1) * ld + cols,
        "transpose: {} elements for {rows} rows of {cols} every {ld}",
        src.len()
    );
    let dst = &mut dst[..rows * cols];
    dst.chunks_mut(TILE * rows).enumerate().for_each(|(i, c)| tile_row(src, ld, (rows, cols), i * TILE, c));
}

/// One tile row of a transpose: `out` holds destination rows `c0..` (source columns), which
/// it fills from every source row (row `r` at `src[r · ld]`), tile by tile.
fn tile_row<T: Copy>(src: &[T], ld: usize, (rows, cols): (usize, usize), c0: usize, out: &mut [T]) {
    let blocks = BlockKernel::for_type::<T>();
    let c1 = (c0 + TILE).min(cols);
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        // The part of the tile that whole 8 × 8 blocks cover, when the kernel applies.
        let (c8, r8) = match blocks {
            BlockKernel::None => (c0, r0),
            _ => (c0 + (c1 - c0) / 8 * 8, r0 + (r1 - r0) / 8 * 8),
        };
        for c in (c0..c8).step_by(8) {
            for r in (r0..r8).step_by(8) {
                // SAFETY: rows r..r+8 and columns c..c+8 lie inside src (r + 8 ≤ rows,
                // c + 8 ≤ cols ≤ ld, and the caller checked src holds every row); out holds
                // dst rows c0..c1, each `rows` long, so rows c-c0..c-c0+8 from column r on are
                // inside it.
                unsafe {
                    blocks.run(src.as_ptr().add(r * ld + c), ld, out.as_mut_ptr().add((c - c0) * rows + r), rows)
                };
            }
        }
        // What the blocks left: the last columns for every row, the last rows for the rest.
        let scalar = |cs: std::ops::Range<usize>, rs: std::ops::Range<usize>, out: &mut [T]| {
            for c in cs {
                let drow = &mut out[(c - c0) * rows..(c - c0 + 1) * rows];
                for r in rs.clone() {
                    drow[r] = src[r * ld + c];
                }
            }
        };
        scalar(c8..c1, r0..r1, out);
        scalar(c0..c8, r8..r1, out);
    }
}

/// The block kernel an element type gets on this CPU.
#[derive(Clone, Copy)]
enum BlockKernel {
    /// Scalar copies only.
    None,
    /// 8 × 8 blocks of 4-byte elements in AVX registers.
    #[cfg(target_arch = "x86_64")]
    Avx4Byte,
}

impl BlockKernel {
    fn for_type<T>() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::mem::size_of::<T>() == 4 && std::arch::is_x86_feature_detected!("avx") {
            return BlockKernel::Avx4Byte;
        }
        BlockKernel::None
    }

    /// Transposes one 8 × 8 block: source rows at `src + i·src_stride` become destination
    /// rows at `dst + j·dst_stride` (strides in elements).
    ///
    /// # Safety
    /// `self` is not `None`, `T` is the 4-byte type it was chosen for, and the eight rows of
    /// eight elements at each side are in bounds.
    #[inline(always)]
    unsafe fn run<T>(self, src: *const T, src_stride: usize, dst: *mut T, dst_stride: usize) {
        match self {
            BlockKernel::None => unreachable!("no block kernel was chosen"),
            // SAFETY: by the contract; the CPU has AVX (checked in for_type). The bits move
            // through float registers untouched (shuffles only), so any 4-byte type works.
            #[cfg(target_arch = "x86_64")]
            BlockKernel::Avx4Byte => unsafe {
                transpose_8x8_avx(src as *const f32, src_stride, dst as *mut f32, dst_stride)
            },
        }
    }
}

/// The 8 × 8 transpose in AVX registers: pairs of rows interleaved, then pairs of pairs, then
/// the 128-bit halves swapped into place (24 shuffles for 64 elements).
///
/// # Safety
/// The CPU has AVX; eight rows of eight f32 at `src` (stride `ss`) and at `dst` (stride `ds`)
/// are in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_8x8_avx(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    use std::arch::x86_64::*;
    // SAFETY: in bounds by the contract; unaligned loads and stores.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
        // t[2q] = (r[2q][0], r[2q+1][0], r[2q][1], r[2q+1][1] | same for columns 4, 5), t[2q+1] the rest.
        let t: [__m256; 8] = std::array::from_fn(|i| {
            let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 { _mm256_unpacklo_ps(a, b) } else { _mm256_unpackhi_ps(a, b) }
        });
        // s[4h + j] holds column j (and j + 4) of rows 4h..4h+4.
        let s: [__m256; 8] = std::array::from_fn(|i| {
            let (h, j) = (i / 4, i % 4);
            let (a, b) = (t[4 * h + j / 2], t[4 * h + 2 + j / 2]);
            if j % 2 == 0 { _mm256_shuffle_ps::<0x44>(a, b) } else { _mm256_shuffle_ps::<0xEE>(a, b) }
        });
        for j in 0..4 {
            _mm256_storeu_ps(dst.add(j * ds), _mm256_permute2f128_ps::<0x20>(s[j], s[4 + j]));
            _mm256_storeu_ps(dst.add((j + 4) * ds), _mm256_permute2f128_ps::<0x31>(s[j], s[4 + j]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Copy + Send + Sync + PartialEq + std::fmt::Debug>(rows: usize, cols: usize, make: impl Fn(usize) -> T) {
        let src: Vec<T> = (0..rows * cols).map(&make).collect();
        let mut dst = vec![make(usize::MAX / 2); rows * cols];
        transpose_into(&src, rows, cols, &mut dst);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(dst[c * rows + r], src[r * cols + c], "{rows}x{cols} at ({r}, {c})");
            }
        }
    }

    #[test]
    fn every_element_lands_in_its_transposed_place() {
        // Whole blocks, ragged edges in either direction, single rows and columns, and a size
        // past the parallel threshold; 4-byte types take the block kernel, 8-byte ones do not.
        for (rows, cols) in [(8, 8), (37, 53), (64, 40), (1, 19), (19, 1), (7, 9), (512, 784), (33, 32)] {
            check(rows, cols, |i| i as f32 * 0.5);
            check(rows, cols, |i| i as u32);
            check(rows, cols, |i| i as f64 - 3.0);
        }
    }

    #[test]
    fn a_block_of_a_wider_matrix_lands_in_its_transposed_place() {
        // Rows `ld` apart, with whole 8 × 8 blocks, ragged edges and more than one tile.
        for (rows, cols, ld) in [(64, 40, 100), (13, 19, 19), (37, 53, 61), (1, 5, 9)] {
            let src: Vec<f32> = (0..rows * ld).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; rows * cols];
            transpose_rows_into(&src, ld, (rows, cols), &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * rows + r], src[r * ld + c], "{rows}x{cols} every {ld} at ({r}, {c})");
                }
            }
        }
    }

    #[test]
    fn nan_payloads_and_signed_zeros_keep_their_bits() {
        let special = [f32::from_bits(0x7fc0_1234), -0.0, f32::INFINITY, f32::from_bits(0xff80_0001)];
        let src: Vec<u32> = (0..16 * 8).map(|i| special[i % 4].to_bits()).collect();
        let mut dst = vec![0u32; src.len()];
        let as_f32: Vec<f32> = src.iter().map(|&b| f32::from_bits(b)).collect();
        let mut dst_f32 = vec![0f32; src.len()];
        transpose_into(&src, 16, 8, &mut dst);
        transpose_into(&as_f32, 16, 8, &mut dst_f32);
        for (a, b) in dst.iter().zip(&dst_f32) {
            assert_eq!(*a, b.to_bits());
        }
    }
}
