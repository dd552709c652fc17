//! The column pieces of a product split by columns, and fixed right operands stored as one contiguous panel per piece.

use super::transpose::transpose_into;

/// Column blocks of a split product start at multiples of this (one AVX-512 register of f32).
const COLUMN_ALIGN: usize = 16;

/// A thread computes its block of columns of a split product this many columns at a time,
/// one serial product each. Against one product over the whole block, on two threads
/// (in-process A/B, 40 alternating rounds, two sittings): 128 × 784 × 512 1.04–1.06×,
/// 128 × 512 × 784 1.02×, 256 × 512 × 512 1.02×, 256 × 512 × 784 and 256 × 429 × 429 level;
/// 128-column pieces gained less. A fused epilogue then runs on 64 columns just computed.
pub(crate) const SUB_BLOCK: usize = 64;

/// How a product of `n` columns split over `threads` threads divides them: thread `t` owns
/// block `t`, and computes it in pieces of at most [`SUB_BLOCK`] columns (or the width given
/// to [`ColumnSplit::with_pieces_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSplit {
    n: usize,
    block: usize,
    piece: usize,
}

impl ColumnSplit {
    /// The split of `n > 0` columns over `threads > 0` threads, in pieces of [`SUB_BLOCK`].
    pub fn new(n: usize, threads: usize) -> Self {
        Self::with_pieces_of(n, threads, SUB_BLOCK)
    }

    /// The split of `n > 0` columns over `threads > 0` threads, in pieces of at most
    /// `piece > 0` columns.
    pub fn with_pieces_of(n: usize, threads: usize, piece: usize) -> Self {
        ColumnSplit { n, block: (n / threads).next_multiple_of(COLUMN_ALIGN).max(COLUMN_ALIGN), piece: piece.max(1) }
    }

    /// How many blocks (at most the thread count: the last blocks may be empty and are dropped).
    pub fn blocks(&self) -> usize {
        self.n.div_ceil(self.block)
    }

    /// Block `t`'s columns `[b0, b1)`.
    pub fn block(&self, t: usize) -> (usize, usize) {
        (t * self.block, ((t + 1) * self.block).min(self.n))
    }

    /// How many pieces all blocks hold together.
    pub fn pieces_total(&self) -> usize {
        let per_block = self.block.div_ceil(self.piece);
        let last = self.blocks() - 1;
        last * per_block + (self.n - last * self.block).div_ceil(self.piece)
    }

    /// Piece `i` of [`ColumnSplit::pieces_total`], counting block by block: its columns.
    pub fn piece(&self, i: usize) -> (usize, usize) {
        let per_block = self.block.div_ceil(self.piece);
        let (b0, b1) = self.block(i / per_block);
        let j0 = b0 + (i % per_block) * self.piece;
        (j0, (j0 + self.piece).min(b1))
    }
}

/// Writes the transpose of the `[n, k]` row-major matrix `w` (a linear layer's weight, whose
/// transpose is the product's `k × n` right operand) to `dst` as panels for `split`: piece
/// `[j0, j1)` becomes the row-major `k × (j1 − j0)` matrix at offset `j0 · k`. gemm reads
/// such a panel without packing it (see [`super::gemm::RhsView::Panels`]), where it packs a
/// piece of a transposed weight on every call.
///
/// # Panics
/// If `w` or `dst` holds fewer than `n · k` elements.
pub fn pack_panels<T: Copy + Send + Sync>(w: &[T], (n, k): (usize, usize), split: ColumnSplit, dst: &mut [T]) {
    assert!(
        w.len() >= n * k && dst.len() >= n * k,
        "pack_panels: {} and {} elements for {n} x {k}",
        w.len(),
        dst.len()
    );
    for (j0, j1) in (0..split.pieces_total()).map(|i| split.piece(i)) {
        transpose_into(&w[j0 * k..j1 * k], j1 - j0, k, &mut dst[j0 * k..j1 * k]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_tile_the_columns_in_aligned_blocks() {
        let shapes =
            [(512, 2, SUB_BLOCK), (429, 2, SUB_BLOCK), (400, 3, SUB_BLOCK), (10, 4, SUB_BLOCK), (130, 1, SUB_BLOCK)];
        for (n, threads, width) in shapes.into_iter().chain([(429, 2, 128), (512, 2, 128), (300, 3, 96)]) {
            let split = ColumnSplit::with_pieces_of(n, threads, width);
            assert!(split.blocks() <= threads, "{n} over {threads}");
            if width == SUB_BLOCK {
                assert_eq!(split, ColumnSplit::new(n, threads));
            }
            // Each block in pieces of `width` columns, the last one shorter.
            let pieces: Vec<_> = (0..split.blocks())
                .flat_map(|t| {
                    let (b0, b1) = split.block(t);
                    (b0..b1).step_by(width).map(move |j0| (j0, (j0 + width).min(b1)))
                })
                .collect();
            let mut next = 0;
            for &(j0, j1) in &pieces {
                assert_eq!(j0, next, "{n} over {threads}: {pieces:?}");
                assert!(j1 > j0 && j1 - j0 <= width);
                next = j1;
            }
            assert_eq!(next, n);
            assert_eq!(split.pieces_total(), pieces.len(), "{n} over {threads}");
            assert_eq!((0..pieces.len()).map(|i| split.piece(i)).collect::<Vec<_>>(), pieces);
            for t in 1..split.blocks() {
                assert_eq!(split.block(t).0 % COLUMN_ALIGN, 0);
            }
        }
    }

    #[test]
    fn each_panel_holds_its_columns_of_the_transpose() {
        let (n, k) = (150, 7);
        let w: Vec<u32> = (0..(n * k) as u32).collect();
        let split = ColumnSplit::new(n, 2);
        let mut dst = vec![0; n * k];
        pack_panels(&w, (n, k), split, &mut dst);
        for (j0, j1) in (0..split.pieces_total()).map(|i| split.piece(i)) {
            for p in 0..k {
                for j in j0..j1 {
                    assert_eq!(dst[j0 * k + p * (j1 - j0) + (j - j0)], w[j * k + p], "column {j}, depth {p}");
                }
            }
        }
    }
}
