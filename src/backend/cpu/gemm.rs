//! CPU matrix products on strided operands: the `gemm` crate for f32/f64, a plain loop for integers.

use super::panels::{ColumnSplit, SUB_BLOCK};
use super::transpose::transpose_rows_into;
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::runtime::{Dst, for_each_part_pinned, install, num_threads};
use num_traits::{WrappingAdd, WrappingMul};

/// A matrix inside a host slice: element `(r, c)` is at `off + r * rs + c * cs`. Any
/// strides work (transposed and permuted views need no copy; broadcast rows have stride 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatView {
    /// Offset of element (0, 0).
    pub off: usize,
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements.
    pub cs: usize,
}

impl MatView {
    /// A view with the given parts.
    pub fn new(off: usize, rs: usize, cs: usize) -> Self {
        MatView { off, rs, cs }
    }

    /// The same matrix read transposed (rows and columns swapped, no copy).
    pub fn t(self) -> Self {
        MatView { off: self.off, rs: self.cs, cs: self.rs }
    }

    /// Errors unless every element of a `rows` × `cols` matrix lies inside `len` elements.
    /// This is what makes the raw-pointer calls into `gemm` sound.
    pub(crate) fn check(&self, rows: usize, cols: usize, len: usize, arg: &'static str) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let last = (rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| (cols - 1).checked_mul(self.cs).and_then(|c| r.checked_add(c)))
            .and_then(|x| x.checked_add(self.off));
        match last {
            Some(l) if l < len => Ok(()),
            _ => Err(Error::Internal(format!("gemm: {arg} view {self:?} of {rows}x{cols} exceeds {len} elements"))),
        }
    }
}

/// Where [`gemm_into`] finds its right operand `b` (`k × n`) in the slice it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RhsView {
    /// Read through a view's strides.
    Strided(MatView),
    /// Stored by [`super::panels::pack_panels`] for the column split over `threads`
    /// threads: each piece the split computes is one contiguous row-major panel. Only for
    /// products that split by columns over that many threads ([`reads_panels`]).
    Panels {
        /// The thread count the panels were cut for.
        threads: usize,
    },
    /// The transpose of the contiguous row-major `[n, k]` matrix at `off` (a linear layer's
    /// weight W, multiplied as Wᵀ). Where the product could read panels ([`reads_panels`]
    /// with panels cut for its own thread count), the thread that computes a piece first
    /// packs that piece's panel from rows of W into a scratch of its own, one depth block at
    /// a time, so the panel is in its cache when it multiplies; otherwise gemm reads Wᵀ
    /// through strides. Either way the same bits as a packed Wᵀ.
    WeightRows {
        /// Where W starts in the slice.
        off: usize,
    },
}

impl From<MatView> for RhsView {
    fn from(v: MatView) -> Self {
        RhsView::Strided(v)
    }
}

/// Whether an `m × k` by `k × n` product on `threads` threads can read a right operand
/// stored as panels cut for `panel_threads` threads: it splits by columns, the same way, and
/// has the rows from which a linear layer reads its weight packed (see
/// [`crate::ops::linalg::reads_packed_faster`]), so that panels only ever stand in for a
/// packed weight, with its bits.
pub fn reads_panels((m, n, k): (usize, usize, usize), threads: usize, panel_threads: usize) -> bool {
    m >= PANEL_MIN_ROWS && threads > 1 && threads == panel_threads && splits_columns(m, n, k, threads)
}

/// See [`reads_panels`].
const PANEL_MIN_ROWS: usize = 32;

/// Rows per `gemm` call on a panel: gemm-common 0.19 reads a column-major left operand (its
/// view of our panel, after it transposes the product) in place when a call has at most
/// 8 × NR columns (its view of our rows; NR = 6 for f32 and f64 on AVX-512), and packs it
/// otherwise. On the MLP's first layer at batch 256 (one thread, 8 panels of 64 columns)
/// 48-row calls were 7–10% faster than row-major pieces packed by gemm.
const PANEL_CALL_ROWS: usize = 48;

/// Where the pieces of a split product read their right operand (see [`RhsView`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rhs {
    /// Through the view's strides.
    Strided,
    /// From the caller's panels.
    Panels,
    /// From a panel the thread packs before each piece, from rows of a weight.
    PackedHere,
}

/// Elements of the largest panel a thread packs for one piece: a piece's columns by one
/// depth block.
const PANEL_SCRATCH: usize = SUB_BLOCK * DEPTH_BLOCK;

/// Runs `f` on `len` elements of this thread's scratch (kept between calls: a piece's panel
/// is packed on every call, and a fresh buffer of that size would page-fault).
fn with_scratch<T: GemmFloat>(len: usize, f: impl FnOnce(&mut [T])) {
    use std::any::TypeId;
    use std::cell::RefCell;
    thread_local! {
        static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    }
    let floats = TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>();
    assert!(floats, "gemm scratch: f32 or f64 only");
    let words = (len * std::mem::size_of::<T>()).div_ceil(8);
    // SAFETY: T is f32 or f64 (checked): 8-byte words are aligned for it, hold whole elements,
    // and any bits are a valid value.
    let view = |w: &mut [u64]| unsafe { std::slice::from_raw_parts_mut(w.as_mut_ptr() as *mut T, len) };
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < words {
                v.resize(words, 0);
            }
            f(view(&mut v[..words]))
        }
        // Only if `f` itself multiplied (it does not): a scratch of its own.
        Err(_) => f(view(&mut vec![0u64; words])),
    })
}

/// Float element types that `gemm` multiplies natively.
pub trait GemmFloat: Element + num_traits::Float {}
impl GemmFloat for f32 {}
impl GemmFloat for f64 {}

/// What [`gemm_into`] starts `dst` from before adding the product.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a, T> {
    /// Zeros: `dst` is overwritten.
    Zero,
    /// What `dst` holds (gradient sums, bias rows written by the caller).
    Keep,
    /// This row (`n` values, a bias) in every row. Each thread writes it into its own block
    /// of columns just before adding its product there, so the rows it reads back are in its
    /// own core's cache rather than the calling thread's: 0–4% faster (median 2–3%) than
    /// filling every row first, on the batch-128/256 layers of the MLP and DCN-v2, with the
    /// same bits.
    Rows(&'a [T]),
}

impl<T> Start<'_, T> {
    /// [`Start::Keep`] when `keep`, else [`Start::Zero`].
    pub fn keep_if(keep: bool) -> Self {
        if keep { Start::Keep } else { Start::Zero }
    }
}

/// Work run on each block of columns of a finished product by the thread that computed it,
/// while the block is still in that core's cache: a fused epilogue (ALGORITHMS.md §7).
pub type Then<'a, T> = dyn Fn(Block<'_, T>) + Sync + 'a;

/// Columns `cols` of every row of a product's destination, handed to a [`Then`] once they
/// hold their final values. Blocks handed out by one product are disjoint.
pub struct Block<'a, T> {
    dst: Dst<T>,
    rs: usize,
    rows: usize,
    cols: (usize, usize),
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

impl<T> Block<'_, T> {
    /// The block's column range `[j0, j1)`.
    pub fn cols(&self) -> (usize, usize) {
        self.cols
    }

    /// How many rows the block spans (all rows of the product).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Row `r`'s part of the block (`j1 - j0` elements).
    pub fn row(&mut self, r: usize) -> &mut [T] {
        assert!(r < self.rows, "row {r} of a block of {} rows", self.rows);
        // SAFETY: whoever made the block owns columns [j0, j1) of these rows exclusively for
        // its lifetime (see `Block::new`), and `&mut self` hands out one row at a time.
        unsafe { std::slice::from_raw_parts_mut(self.dst.0.add(r * self.rs + self.cols.0), self.cols.1 - self.cols.0) }
    }

    /// A block over `rows` rows of stride `rs` starting at `dst`.
    ///
    /// SAFETY: the caller holds columns `[j0, j1)` of those rows exclusively (nothing else
    /// reads or writes them) while the block lives, and they lie in one allocation.
    unsafe fn new(dst: Dst<T>, rs: usize, rows: usize, cols: (usize, usize)) -> Self {
        Block { dst, rs, rows, cols, _borrow: std::marker::PhantomData }
    }
}

/// `dst = start + a · b` where `a` is `m × k`, `b` is `k × n` and `dst` is `m × n`
/// row-major with row stride `dst_rs`. `threads > 1` spreads the work over the engine pool:
/// by blocks of columns on products with few rows, by pieces of rows where the right operand
/// is at most 2 MiB (see [`row_pieces`]), by pieces of columns where it is larger (see
/// [`splits_large_by_columns`]), else by gemm's own split. `then`, when given, runs on every
/// block of finished columns (on the thread that computed it where the split is by columns).
#[allow(clippy::too_many_arguments)]
pub fn gemm_into<T: GemmFloat>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    dst_rs: usize,
    start: Start<T>,
    a: &[T],
    av: MatView,
    b: &[T],
    bv: impl Into<RhsView>,
    threads: usize,
    then: Option<&Then<T>>,
) -> Result<()> {
    let bv = bv.into();
    if let Start::Rows(bias) = start
        && bias.len() != n
    {
        return Err(Error::Internal(format!("gemm: a bias of {} values for {n} columns", bias.len())));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    MatView::new(0, dst_rs, 1).check(m, n, dst.len(), "dst")?;
    if k == 0 {
        // An empty sum: gemm would be asked to read zero-length panels; do it here.
        for row in dst.chunks_mut(dst_rs).take(m) {
            match start {
                Start::Zero => row[..n].fill(<T as Element>::zero()),
                Start::Keep => {}
                Start::Rows(bias) => row[..n].copy_from_slice(bias),
            }
        }
        if let Some(then) = then {
            // SAFETY: `dst` is exclusively borrowed and holds m rows of stride dst_rs (checked).
            then(unsafe { Block::new(Dst(dst.as_mut_ptr()), dst_rs, m, (0, n)) });
        }
        return Ok(());
    }
    av.check(m, k, a.len(), "lhs")?;
    // How the split reads the right operand: through strides, from the caller's panels, or
    // from panels each thread packs for itself.
    let (bv, rhs) = match bv {
        RhsView::Strided(bv) => {
            bv.check(k, n, b.len(), "rhs")?;
            (bv, Rhs::Strided)
        }
        RhsView::Panels { threads: cut_for } => {
            if !reads_panels((m, n, k), threads, cut_for) {
                return Err(Error::Internal(format!(
                    "gemm: panels cut for {cut_for} threads read by a {m}x{n}x{k} product on {threads}"
                )));
            }
            if b.len() < n * k {
                return Err(Error::Internal(format!("gemm: {} elements of panels for {k}x{n}", b.len())));
            }
            (MatView::new(0, n, 1), Rhs::Panels)
        }
        RhsView::WeightRows { off } => {
            let bv = MatView::new(off, 1, k);
            bv.check(k, n, b.len(), "rhs")?;
            (bv, if reads_panels((m, n, k), threads, threads) { Rhs::PackedHere } else { Rhs::Strided })
        }
    };
    // Rows [r0, r1) of columns [j0, j1) of the product, over depths [p0, p1) (added to what
    // the earlier depths left), reading the right operand from `panel` (its `k × (j1 − j0)`
    // panel, or the part of it for these depths) where given. SAFETY (of the calls below):
    // every element the three operands address was bounds-checked above against its slice,
    // so a block of them is in bounds too (a caller's panel is the `k × (j1 − j0)` matrix at
    // `j0 · k`, a panel packed here holds the `(p1 − p0) × (j1 − j0)` block); `dst` is
    // exclusively borrowed, blocks given to different threads are disjoint, and `a`/`b` are
    // only read. T is f32 or f64, which gemm supports (it panics only for other types).
    let product = |dst: Dst<T>, (r0, r1), (j0, j1), (p0, p1): (usize, usize), par, panel: Option<&[T]>| unsafe {
        let (b_ptr, b_rs, b_cs) = match (rhs, panel) {
            (_, Some(panel)) => (panel.as_ptr(), j1 - j0, 1),
            (Rhs::Panels, None) => (b.as_ptr().add(j0 * k + p0 * (j1 - j0)), j1 - j0, 1),
            (_, None) => (b.as_ptr().add(bv.off + j0 * bv.cs + p0 * bv.rs), bv.rs, bv.cs),
        };
        if let Start::Rows(bias) = start
            && p0 == 0
        {
            for r in r0..r1 {
                let row = std::slice::from_raw_parts_mut(dst.get().add(r * dst_rs + j0), j1 - j0);
                row.copy_from_slice(&bias[j0..j1]);
            }
        }
        gemm::gemm(
            r1 - r0,
            j1 - j0,
            p1 - p0,
            dst.get().add(r0 * dst_rs + j0),
            1,
            dst_rs as isize,
            p0 > 0 || !matches!(start, Start::Zero),
            a.as_ptr().add(av.off + r0 * av.rs + p0 * av.cs),
            av.cs as isize,
            av.rs as isize,
            b_ptr,
            b_cs as isize,
            b_rs as isize,
            <T as Element>::one(),
            <T as Element>::one(),
            false,
            false,
            false,
            par,
        )
    };
    let cols =
        |dst: Dst<T>, cols: (usize, usize), par: gemm::Parallelism| product(dst, (0, m), cols, (0, k), par, None);
    let out = Dst(dst.as_mut_ptr());
    let large = rhs == Rhs::Strided && splits_large_by_columns(m, n, k, threads);
    if threads > 1 && (large || splits_columns(m, n, k, threads)) {
        // Serial products on pieces of columns, each thread starting on its own block, the same
        // block each call (a fixed weight's block stays in that core's cache).
        let split = match rhs {
            _ if large => ColumnSplit::with_pieces_of(n, threads, LARGE_PIECE),
            Rhs::Strided if k >= DEEP_PRODUCT => ColumnSplit::with_pieces_of(n, threads, DEEP_PIECE),
            // Panels are cut in pieces of SUB_BLOCK, and PANEL_SCRATCH holds one.
            _ => ColumnSplit::new(n, threads),
        };
        let piece = |(j0, j1): (usize, usize)| {
            match rhs {
                Rhs::PackedHere => with_scratch::<T>(PANEL_SCRATCH, |scratch| {
                    // Depths outside, rows inside: each element still sums its depth blocks
                    // in order, so the bits are a packed Wᵀ's.
                    for (p0, p1) in depth_blocks(k) {
                        let panel = &mut scratch[..(p1 - p0) * (j1 - j0)];
                        transpose_rows_into(&b[bv.off + j0 * k + p0..], k, (j1 - j0, p1 - p0), panel);
                        for r0 in (0..m).step_by(PANEL_CALL_ROWS) {
                            let rows = (r0, (r0 + PANEL_CALL_ROWS).min(m));
                            product(out, rows, (j0, j1), (p0, p1), gemm::Parallelism::None, Some(panel));
                        }
                    }
                }),
                Rhs::Panels | Rhs::Strided => {
                    let step = if rhs == Rhs::Panels { PANEL_CALL_ROWS } else { m };
                    for r0 in (0..m).step_by(step) {
                        let rows = (r0, (r0 + step).min(m));
                        for depths in depth_blocks(k) {
                            product(out, rows, (j0, j1), depths, gemm::Parallelism::None, None);
                        }
                    }
                }
            }
            if let Some(then) = then {
                // Right after the piece, while it is in this core's cache. SAFETY: this
                // thread alone writes columns [j0, j1) of `dst`, now computed.
                then(unsafe { Block::new(out, dst_rs, m, (j0, j1)) });
            }
        };
        // Each piece is a part: a thread works through its own block, then takes the pieces
        // of a slower thread's block that it has not reached. Against whole blocks as parts
        // (in-process A/B, 10 alternating rounds, two runs): DCN-v2 inference at batch 256,
        // whose cross network and MLP run side by side, 0.87 / 0.90× the time; the MLP level.
        for_each_part_pinned(split.pieces_total(), |i| piece(split.piece(i)));
    } else if threads > 1 {
        if let Some(pieces) = row_pieces(m, n, k, threads) {
            // Serial products on pieces of rows, handed out as parts: each packs the right
            // operand itself, and a faster thread takes more pieces.
            let rows = m.div_ceil(pieces);
            for_each_part_pinned(pieces, |i| {
                for depths in depth_blocks(k) {
                    product(out, (i * rows, ((i + 1) * rows).min(m)), (0, n), depths, gemm::Parallelism::None, None);
                }
            });
        } else {
            // Inside the engine pool, so gemm's rayon tasks run on our threads.
            install(|| cols(out, (0, n), gemm::Parallelism::Rayon(threads)));
        }
        if let Some(then) = then {
            // The product was not split by columns: the epilogue runs after it, one block of
            // columns per thread.
            let split = ColumnSplit::new(n, threads);
            // SAFETY: the parts are disjoint column ranges of `dst`, each run once.
            for_each_part_pinned(split.blocks(), |t| unsafe { then(Block::new(out, dst_rs, m, split.block(t))) });
        }
    } else {
        cols(out, (0, n), gemm::Parallelism::None);
        if let Some(then) = then {
            // SAFETY: `dst` is exclusively borrowed and its m rows of n columns are computed.
            then(unsafe { Block::new(out, dst_rs, m, (0, n)) });
        }
    }
    Ok(())
}

/// The depth ranges a split product sums one after the other: `k` in equal blocks of at
/// most [`DEPTH_BLOCK`]. gemm blocks a deeper sum itself, by a size that depends on the call's
/// shape (512 and the rest for small calls, equal halves of 784 for larger ones); blocking
/// it here gives every call one block, so a piece of rows and columns gets the same sum
/// whatever the call's shape or the right operand's layout (and, by our reading of
/// gemm-common 0.19's `kernel_params`, the bits of gemm's own split on CPUs whose L1 sets
/// make its block 512 or less, as on x86 CPUs with 32–48 KiB L1).
fn depth_blocks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let size = k.div_ceil(k.div_ceil(DEPTH_BLOCK));
    (0..k).step_by(size.max(1)).map(move |p0| (p0, (p0 + size).min(k)))
}

/// The deepest sum gemm does in one block when its cache sizes would allow more (its floor).
const DEPTH_BLOCK: usize = 512;

/// Whether [`gemm_into`] gives each thread its own block of columns and a serial product,
/// instead of letting gemm split the work. gemm's own split scales poorly on products with
/// few rows: on the MLP's training shapes (128 rows, 512–784 columns and depth) the column
/// split is 1.08–1.16× faster on two threads. Up to 512 rows it is too, once the depth is
/// 256 or more (in-process A/B, 10 alternating rounds, median per-round ratio: 512 × 512 ×
/// 512 1.04, 512 × 512 by depth 256 1.15, 512 × 429 by depth 4096 1.1, 400 × 784 by depth 512
/// 1.07, 512 × 1024 by depth 1024 1.1); with less depth it loses (−9% at 512 × 512 by depth
/// 128), and at 1024 rows the two are level. Each column of the result gets the same sum
/// either way.
fn splits_columns(m: usize, n: usize, k: usize, threads: usize) -> bool {
    m <= 512 && k >= 256 && n >= 128 * threads
}

/// Whether [`gemm_into`] splits a product with many rows and a large right operand (more
/// than [`LARGE_ROW_SPLIT_RHS`] elements, read through strides), which gemm would otherwise
/// split itself, by columns in pieces of [`LARGE_PIECE`]. gemm's split shares packed blocks
/// between its threads and waits for all of them at each block, so a thread the host
/// preempts holds the other up; pieces of columns share nothing (each packs its own columns
/// of the right operand, and the left operand is read in place), and a thread that comes
/// free takes the pieces of a slower one. Calling gemm directly on two threads in a busy
/// stretch (8 rounds, median GFLOP/s, gemm's split → pieces of 256 columns): 1024³ 135 → 253,
/// 148 → 277; 2048³ 258 → 266. Through the engine's matmul, whose pool runs gemm's split
/// better (in-process A/B, 10–16 alternating rounds, median per-round speed ratio): 1024³
/// 0.91, 1.05, 1.05; 2048³ 1.05, 1.02, 1.05. Pieces of 128 columns lost at 1024³ (0.93),
/// pieces of 512 were level with 256 (1.04 and 1.01; 2048³ 1.05 and 1.04).
fn splits_large_by_columns(m: usize, n: usize, k: usize, threads: usize) -> bool {
    m > 512 && k >= 256 && n >= 128 * threads && n * k > LARGE_ROW_SPLIT_RHS
}

/// Columns per piece of a large product split by columns (see [`splits_large_by_columns`]).
const LARGE_PIECE: usize = 256;

/// Depth from which a product split by columns reads its right operand through strides in
/// pieces of [`DEEP_PIECE`] columns rather than [`SUB_BLOCK`]: every piece packs the whole
/// `m × k` left operand again, and on a deep product (a weight gradient summed over a batch
/// of thousands) that packing is a large part of a narrow piece's work. In-process A/B on
/// the DCN-v2 training step at batch 4096 (its weight gradients have depth 4096; 16
/// alternating rounds of 3 steps, median per-round time ratio): 0.94, 0.98, 0.95.
const DEEP_PRODUCT: usize = 2048;

/// Columns per piece of a deep product split by columns (see [`DEEP_PRODUCT`]).
const DEEP_PIECE: usize = 128;

/// How many pieces of rows [`gemm_into`] splits a product that does not split by columns
/// into, or `None` where gemm splits it. Each piece packs the right operand again, so a
/// small one (at most [`ROW_SPLIT_RHS`] elements) is split into pieces of at least
/// [`ROW_PIECE_MIN`] rows, a larger one into pieces of at least [`LARGE_ROW_PIECE_MIN`]
/// rows, and a product with a still larger right operand, or too short for two such
/// pieces, is split by columns ([`splits_large_by_columns`]) or left to gemm.
///
/// Small right operands: gemm's own split gained nothing over one thread on products of up
/// to a few million multiply-adds, and lost to row pieces beyond (in-process, median of 5
/// rounds of 201 calls, µs, gemm's split → row pieces): 128 × 10 by depth 512 33 → 20, 512 ×
/// 10 by 512 136 → 87, 4096 × 10 by 512 662 → 432, 256 × 128 by 64 28 → 16, 512 × 512 by
/// 128 280 → 250.
///
/// Larger ones, up to [`LARGE_ROW_SPLIT_RHS`] (the DCN-v2's cross layers and first deep
/// layer at batch 4096: 429 × 429 and 429 × 512): gemm's split shares packed blocks between
/// its threads and waits for all of them at each block, so a thread the host preempts holds
/// the other up. Calling gemm directly on two threads in a busy stretch (8 alternating
/// rounds, median GFLOP/s, gemm's split → row pieces): 4096 × 429 by 429 138 → 212 (8
/// pieces), 4096 × 512 by 429 146 → 213. The DCN-v2 training step at batch 4096, in-process
/// A/B (alternating rounds of 3 steps, median per-round time ratio, five runs): 0.93–1.11,
/// median 0.96. Beyond 2 MiB the repacking costs more than it saves: at 1024 × 1024 by 1024
/// pieces of 256 rows were 0.90–0.97× the speed of gemm's split, of 128 rows 0.82×.
fn row_pieces(m: usize, n: usize, k: usize, threads: usize) -> Option<usize> {
    let most = ROW_PIECES_PER_THREAD * threads;
    if n * k <= ROW_SPLIT_RHS {
        Some((m / ROW_PIECE_MIN).clamp(1, most))
    } else if n * k <= LARGE_ROW_SPLIT_RHS && m >= 2 * LARGE_ROW_PIECE_MIN {
        Some((m / LARGE_ROW_PIECE_MIN).min(most))
    } else {
        None
    }
}

/// The most right-operand elements for which products split into pieces of at least
/// [`ROW_PIECE_MIN`] rows (512 KiB of f32).
const ROW_SPLIT_RHS: usize = 128 * 1024;

/// Fewest rows in a piece of a product with a small right operand; fewer rows run as one
/// piece on the calling thread.
const ROW_PIECE_MIN: usize = 64;

/// The most right-operand elements for which products split into pieces of at least
/// [`LARGE_ROW_PIECE_MIN`] rows (2 MiB of f32).
const LARGE_ROW_SPLIT_RHS: usize = 512 * 1024;

/// Fewest rows in a piece of a product with a larger right operand.
const LARGE_ROW_PIECE_MIN: usize = 256;

/// Pieces per thread of a product split by rows, so a faster thread can take more.
const ROW_PIECES_PER_THREAD: usize = 4;

/// Integer element types for [`int_matmul_into`] (wrapping arithmetic, like NumPy).
pub trait GemmInt: Element + WrappingAdd + WrappingMul {}
impl GemmInt for i32 {}
impl GemmInt for i64 {}
impl GemmInt for u8 {}

/// `dst = a · b` for integers with wrapping arithmetic; `dst` is `m × n` row-major (row
/// stride `n`). i-k-j order so the inner loop streams a row of `b` and of `dst`.
pub fn int_matmul_into<T: GemmInt>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    a: &[T],
    av: MatView,
    b: &[T],
    bv: MatView,
) -> Result<()> {
    if m == 0 || n == 0 {
        return Ok(());
    }
    MatView::new(0, n, 1).check(m, n, dst.len(), "dst")?;
    av.check(m, k, a.len(), "lhs")?;
    bv.check(k, n, b.len(), "rhs")?;
    for (i, row) in dst.chunks_mut(n).take(m).enumerate() {
        row.fill(T::zero());
        for p in 0..k {
            let x = a[av.off + i * av.rs + p * av.cs];
            let brow = bv.off + p * bv.rs;
            if bv.cs == 1 {
                for (y, &z) in row.iter_mut().zip(&b[brow..brow + n]) {
                    *y = y.wrapping_add(&x.wrapping_mul(&z));
                }
            } else {
                for (j, y) in row.iter_mut().enumerate() {
                    *y = y.wrapping_add(&x.wrapping_mul(&b[brow + j * bv.cs]));
                }
            }
        }
    }
    Ok(())
}

/// Lanes of independent partial sums in [`dot`]: one AVX-512 register of f32, so the loop
/// vectorises without reassociating any single sum.
const DOT_LANES: usize = 16;

/// `Σ a[i]·b[i]` over equal-length slices, in `DOT_LANES` interleaved partial sums.
/// Compiled twice: with AVX2+FMA (used when the CPU has them) and for the baseline target.
fn dot<T: GemmFloat>(a: &[T], b: &[T]) -> T {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { dot_fma(a, b) };
    }
    dot_lanes(a, b, |x, y, acc| acc + x * y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_fma<T: GemmFloat>(a: &[T], b: &[T]) -> T {
    dot_lanes(a, b, |x, y, acc| x.mul_add(y, acc))
}

#[inline(always)]
fn dot_lanes<T: GemmFloat>(a: &[T], b: &[T], fma: impl Fn(T, T, T) -> T) -> T {
    let zero = <T as Element>::zero();
    let mut acc = [zero; DOT_LANES];
    let (ca, cb) = (a.chunks_exact(DOT_LANES), b.chunks_exact(DOT_LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..DOT_LANES {
            acc[l] = fma(x[l], y[l], acc[l]);
        }
    }
    let mut tail = zero;
    for (x, y) in ra.iter().zip(rb) {
        tail = fma(*x, *y, tail);
    }
    acc.iter().fold(zero, |s, &v| s + v) + tail
}

/// `out[j] += x · w[j, :]` for a vector `x` (`k`) against a packed `n × k` weight: one dot
/// product per weight row, reading the weight once without packing it, parallel over rows
/// when large. For batch-1 inference this beats a GEMM, which packs the weight first.
/// `then`, when given, runs once on the finished `out` (one row of `n`).
pub fn gemv<T: GemmFloat>(x: &[T], w: &[T], (n, k): (usize, usize), out: &mut [T], then: Option<&Then<T>>) {
    // Asked once per product, not once per block of rows.
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    let work = |j0: usize, block: &mut [T]| {
        #[cfg(target_arch = "x86_64")]
        if avx512 && let Some((x, w, block)) = as_f32(x, w, block) {
            // SAFETY: the CPU has the features the function is compiled for.
            unsafe { gemv_rows_f32_avx512(x, w, k, j0, block) };
            return;
        }
        for (dj, y) in block.iter_mut().enumerate() {
            let j = j0 + dj;
            *y = *y + dot(x, &w[j * k..(j + 1) * k]);
        }
    };
    let threads = num_threads();
    if n * k >= 1 << 16 && threads > 1 {
        // One block of rows per thread, the same thread each call: a weight read by every
        // request then stays split between the cores' caches instead of moving between them.
        let block = n.div_ceil(threads).next_multiple_of(GEMV_ROWS);
        let parts = n.div_ceil(block);
        let dst = Dst(out.as_mut_ptr());
        for_each_part_pinned(parts, |p| {
            let (j0, j1) = (p * block, ((p + 1) * block).min(n));
            // SAFETY: parts are disjoint row ranges of `out`, each run once.
            work(j0, unsafe { std::slice::from_raw_parts_mut(dst.get().add(j0), j1 - j0) })
        });
    } else {
        work(0, out);
    }
    if let Some(then) = then {
        // On the calling thread, over the whole row: it is a few hundred values, and the
        // next layer reads them on this thread (run on each part's worker, the next layer's
        // reads crossed cores and one-row MLP inference was 3% slower).
        // SAFETY: `out` is exclusively borrowed: one row of n elements.
        then(unsafe { Block::new(Dst(out.as_mut_ptr()), n, 1, (0, n)) });
    }
}

/// The three slices as f32 when `T` is f32.
fn as_f32<'a, T: GemmFloat>(x: &'a [T], w: &'a [T], out: &'a mut [T]) -> Option<(&'a [f32], &'a [f32], &'a mut [f32])> {
    if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>() {
        return None;
    }
    // SAFETY: T is f32 (checked above): each slice is reinterpreted as itself.
    unsafe {
        Some((
            std::slice::from_raw_parts(x.as_ptr().cast(), x.len()),
            std::slice::from_raw_parts(w.as_ptr().cast(), w.len()),
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), out.len()),
        ))
    }
}

/// Weight rows [`gemv_rows_f32_avx512`] takes at once: eight independent sums keep both FMA
/// units busy, where one dot product at a time waits on its own additions.
const GEMV_ROWS: usize = 8;

/// [`gemv`]'s `out[j] += x · w[j0 + j, :]` for f32 with AVX-512, [`GEMV_ROWS`] weight rows at a
/// time. Each output is still [`dot_lanes`]'s sum (16 lane sums in k order, a tail, the lanes
/// folded in order), so the bits are those of [`dot`]; leftover rows go through [`dot`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemv_rows_f32_avx512(x: &[f32], w: &[f32], k: usize, j0: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(x.len() == k && w.len() >= (j0 + out.len()) * k, "gemv: slices shorter than their shape");
    let full = k - k % DOT_LANES;
    let mut groups = out.chunks_exact_mut(GEMV_ROWS);
    let mut j = j0;
    for group in &mut groups {
        let mut acc = [_mm512_setzero_ps(); GEMV_ROWS];
        for c in (0..full).step_by(DOT_LANES) {
            // SAFETY: c + 16 <= k, and rows j..j + GEMV_ROWS lie in `w` (asserted above).
            let xv = unsafe { _mm512_loadu_ps(x.as_ptr().add(c)) };
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = unsafe { _mm512_loadu_ps(w.as_ptr().add((j + r) * k + c)) };
                *a = _mm512_fmadd_ps(xv, wv, *a);
            }
        }
        for (r, (y, a)) in group.iter_mut().zip(&acc).enumerate() {
            let mut lanes = [0f32; DOT_LANES];
            // SAFETY: `lanes` holds 16 f32.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *a) };
            let row = &w[(j + r) * k..(j + r + 1) * k];
            let tail = x[full..].iter().zip(&row[full..]).fold(0f32, |t, (a, b)| a.mul_add(*b, t));
            *y += lanes.iter().fold(0f32, |s, &v| s + v) + tail;
        }
        j += GEMV_ROWS;
    }
    for y in groups.into_remainder() {
        *y += dot(x, &w[j * k..(j + 1) * k]);
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_of_a_product_matches_the_reference() {
        // Shapes that take the column split on two threads (n not a multiple of the block
        // alignment, a transposed left operand, accumulation onto what dst holds), the row
        // split (one with rows in uneven pieces and depth in two blocks, one with a right
        // operand too large for short pieces), a deep product in wide column pieces, large
        // products in pieces of LARGE_PIECE columns (one with depth in two uneven blocks, a
        // transposed left operand and accumulation), and gemm's own (a short product, one too
        // shallow for the large split); each against an f64 reference and against the
        // one-thread product.
        for (m, n, k, at, acc, split) in [
            (128, 300, 256, false, false, "columns"),
            (64, 512, 300, true, true, "columns"),
            (300, 64, 300, false, true, "rows"),
            (700, 100, 600, true, true, "rows"),
            (600, 400, 400, false, false, "rows"),
            (64, 300, 2100, true, false, "columns"),
            (300, 800, 200, false, true, "gemm"),
            (520, 1030, 510, false, false, "large columns"),
            (600, 700, 1000, true, true, "large columns"),
            (600, 2200, 250, false, false, "gemm"),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1009) as f32 - 500.0) / 333.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729 % 997) as f32 - 498.0) / 411.0).collect();
            let av = if at { MatView::new(0, 1, m) } else { MatView::new(0, k, 1) };
            let bv = MatView::new(0, n, 1);
            let start: Vec<f32> = (0..m * n).map(|i| (i % 13) as f32).collect();
            let taken = match (splits_columns(m, n, k, 2), splits_large_by_columns(m, n, k, 2), row_pieces(m, n, k, 2))
            {
                (true, _, _) => "columns",
                (false, true, _) => "large columns",
                (false, false, Some(_)) => "rows",
                (false, false, None) => "gemm",
            };
            assert_eq!(taken, split, "{m}x{n}x{k}");
            let mut two = start.clone();
            gemm_into((m, n, k), &mut two, n, Start::keep_if(acc), &a, av, &b, bv, 2, None).unwrap();
            let mut one = start.clone();
            gemm_into((m, n, k), &mut one, n, Start::keep_if(acc), &a, av, &b, bv, 1, None).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let mut want = if acc { start[i * n + j] as f64 } else { 0.0 };
                    for p in 0..k {
                        want += a[av.off + i * av.rs + p * av.cs] as f64 * b[p * n + j] as f64;
                    }
                    let got = two[i * n + j] as f64;
                    assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{m}x{n}x{k} ({i}, {j}): {got} vs {want}");
                    assert!((got - one[i * n + j] as f64).abs() <= 1e-4 * (1.0 + want.abs()));
                }
            }
        }
    }

    #[test]
    fn panels_give_the_bits_of_the_strided_operand() {
        // The MLP's and DCN-v2's split shapes (rows not a multiple of a call's 48), onto a
        // bias and from zero, and an epilogue that sees every piece.
        for (m, n, k, threads) in [(256, 512, 784, 2), (100, 429, 429, 2), (48, 300, 256, 2), (200, 400, 300, 3)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1009) as f32 - 500.0) / 333.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 104729 % 997) as f32 - 498.0) / 411.0).collect();
            let bias: Vec<f32> = (0..n).map(|j| (j % 11) as f32 - 5.5).collect();
            let mut panels = vec![0.0; n * k];
            super::super::panels::pack_panels(&w, (n, k), ColumnSplit::new(n, threads), &mut panels);
            let (av, wt) = (MatView::new(0, k, 1), MatView::new(0, k, 1).t());
            assert!(reads_panels((m, n, k), threads, threads), "{m}x{n}x{k}");
            for start in [Start::Zero, Start::Rows(&bias)] {
                let mut want = vec![f32::NAN; m * n];
                gemm_into((m, n, k), &mut want, n, start, &a, av, &w, wt, threads, None).unwrap();
                let mut got = vec![f32::NAN; m * n];
                let seen = blocks_seen(|then| {
                    let bv = RhsView::Panels { threads };
                    gemm_into((m, n, k), &mut got, n, start, &a, av, &panels, bv, threads, Some(then)).unwrap()
                });
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(bits(&got) == bits(&want), "{m}x{n}x{k} on {threads} threads");
                assert_eq!(seen.last().map(|b| b.0.1), Some(n));
            }
        }
        // Panels cut for another thread count, or for a product that does not split, are refused.
        let (a, p) = (vec![1.0f32; 600 * 256], vec![1.0f32; 256 * 256]);
        let mut dst = vec![0.0f32; 600 * 256];
        let av = MatView::new(0, 256, 1);
        for (threads, cut_for, m) in [(2, 3, 64), (2, 2, 600), (2, 2, 16), (1, 1, 64)] {
            let e = gemm_into(
                (m, 256, 256),
                &mut dst,
                256,
                Start::Zero,
                &a,
                av,
                &p,
                RhsView::Panels { threads: cut_for },
                threads,
                None,
            );
            assert!(
                e.unwrap_err().to_string().contains("panels cut for"),
                "{threads} threads, panels for {cut_for}, {m} rows"
            );
        }
    }

    #[test]
    fn panels_packed_by_each_thread_give_the_bits_of_the_strided_operand() {
        fn check<T: GemmFloat>(m: usize, n: usize, k: usize, threads: usize) {
            let val =
                |i: usize, p: usize, q: usize| <T as Element>::from_f64(((i * p % q) as f64 - q as f64 / 2.0) / 333.0);
            let a: Vec<T> = (0..m * k).map(|i| val(i, 7919, 1009)).collect();
            // W sits 5 elements into its slice, as a weight viewed at an offset.
            let w: Vec<T> = (0..5 + n * k).map(|i| val(i, 104729, 997)).collect();
            let bias: Vec<T> = (0..n).map(|j| <T as Element>::from_f64((j % 11) as f64 - 5.5)).collect();
            let av = MatView::new(0, k, 1);
            for start in [Start::Zero, Start::Rows(&bias)] {
                let mut want = vec![<T as Element>::from_f64(f64::NAN); m * n];
                let wt = MatView::new(5, k, 1).t();
                gemm_into((m, n, k), &mut want, n, start, &a, av, &w, wt, threads, None).unwrap();
                let mut got = vec![<T as Element>::from_f64(f64::NAN); m * n];
                let bv = RhsView::WeightRows { off: 5 };
                gemm_into((m, n, k), &mut got, n, start, &a, av, &w, bv, threads, None).unwrap();
                let bits = |v: &[T]| v.iter().map(|&x| Element::to_f64(x).to_bits()).collect::<Vec<_>>();
                assert!(bits(&got) == bits(&want), "{m}x{n}x{k} on {threads} threads ({:?})", T::DTYPE);
            }
        }
        // Split shapes whose panels are packed here (depth in one block, in two, a ragged last
        // piece, three threads), then ones that read W through strides instead (too few rows,
        // one thread, too many rows).
        for (m, n, k, threads) in [(128, 512, 512, 2), (100, 429, 784, 2), (48, 400, 1100, 3), (20, 512, 512, 2)] {
            assert_eq!(reads_panels((m, n, k), threads, threads), m != 20, "{m}x{n}x{k}");
            check::<f32>(m, n, k, threads);
        }
        check::<f64>(64, 300, 600, 2);
        check::<f32>(64, 300, 300, 1);
        check::<f32>(600, 300, 300, 2);
        // Too few elements for W at its offset: refused before anything is read.
        let mut dst = vec![0f32; 64 * 256];
        let (a, w) = (vec![1f32; 64 * 256], vec![1f32; 256 * 256]);
        let e = gemm_into(
            (64, 256, 256),
            &mut dst,
            256,
            Start::Zero,
            &a,
            MatView::new(0, 256, 1),
            &w,
            RhsView::WeightRows { off: 1 },
            2,
            None,
        );
        assert!(e.unwrap_err().to_string().contains("rhs view"));
    }

    #[test]
    fn a_product_onto_a_bias_gives_the_bits_of_the_bias_rows_plus_the_product() {
        // Split by columns on two threads, by rows, one thread, and an empty sum.
        for (m, n, k, threads) in [(128, 300, 256, 2), (300, 64, 300, 2), (50, 70, 90, 1), (3, 20, 0, 2)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919 % 1009) as f32 - 500.0) / 333.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104729 % 997) as f32 - 498.0) / 411.0).collect();
            let bias: Vec<f32> = (0..n).map(|j| (j % 11) as f32 - 5.5).collect();
            let (av, bv) = (MatView::new(0, k, 1), MatView::new(0, n, 1));
            let mut want: Vec<f32> = (0..m).flat_map(|_| bias.iter().copied()).collect();
            gemm_into((m, n, k), &mut want, n, Start::Keep, &a, av, &b, bv, threads, None).unwrap();
            let mut got = vec![f32::NAN; m * n];
            gemm_into((m, n, k), &mut got, n, Start::Rows(&bias), &a, av, &b, bv, threads, None).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m}x{n}x{k} on {threads} threads");
        }
        let mut dst = vec![0f32; 4];
        let e = gemm_into(
            (2, 2, 1),
            &mut dst,
            2,
            Start::Rows(&[1.0]),
            &[1.0; 2],
            MatView::new(0, 1, 1),
            &[1.0; 2],
            MatView::new(0, 2, 1),
            1,
            None,
        );
        assert!(e.unwrap_err().to_string().contains("a bias of 1 values for 2 columns"));
    }

    /// The blocks a product hands to its epilogue, each with a copy of its values then.
    fn blocks_seen(run: impl FnOnce(&Then<f32>)) -> Vec<((usize, usize), usize, Vec<f32>)> {
        let seen = std::sync::Mutex::new(Vec::new());
        run(&|mut block: Block<'_, f32>| {
            let vals: Vec<f32> = (0..block.rows()).flat_map(|r| block.row(r).to_vec()).collect();
            seen.lock().unwrap().push((block.cols(), block.rows(), vals));
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort_by_key(|b| b.0);
        seen
    }

    #[test]
    fn every_column_reaches_the_epilogue_once_with_its_final_values() {
        let (k, n) = (256, 400);
        // Serial, split by columns (3 threads: blocks of 144 in pieces of 64), by rows.
        for (m, threads) in [(5, 1), (64, 3), (600, 3)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 64.0).collect();
            let (av, bv) = (MatView::new(0, k, 1), MatView::new(0, n, 1));
            let mut out = vec![0.0f32; m * n];
            let seen = blocks_seen(|then| {
                gemm_into((m, n, k), &mut out, n, Start::Zero, &a, av, &b, bv, threads, Some(then)).unwrap()
            });
            let mut next = 0;
            for ((j0, j1), rows, vals) in &seen {
                assert_eq!((*j0, *rows), (next, m), "{m} rows on {threads} threads: blocks {seen:?}");
                let want: Vec<f32> = (0..m).flat_map(|r| out[r * n + j0..r * n + j1].to_vec()).collect();
                assert_eq!(vals, &want, "{m} rows on {threads} threads: columns {j0}..{j1} were not final");
                next = *j1;
            }
            assert_eq!(next, n, "{m} rows on {threads} threads");
        }
        // A vector product: one block, the whole row.
        let (x, w) = (vec![0.5f32; k], vec![0.25f32; n * k]);
        let mut out = vec![0.0f32; n];
        let seen = blocks_seen(|then| gemv(&x, &w, (n, k), &mut out, Some(then)));
        assert_eq!(seen.iter().map(|b| (b.0, b.1)).collect::<Vec<_>>(), [((0, n), 1)]);
        assert_eq!(seen[0].2, out);
    }

    #[test]
    fn gemv_gives_each_output_the_bits_of_its_dot_product() {
        // 8-row groups with a leftover, 16-lane sums with a tail, serial and parallel sizes.
        for (n, k) in [(13, 37), (64, 16), (429, 429), (300, 300), (5, 3)] {
            let x: Vec<f32> = (0..k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 7919 % 1009) as f32 - 500.0) / 333.0).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 / 3.0).collect();
            let mut out = bias.clone();
            gemv(&x, &w, (n, k), &mut out, None);
            for j in 0..n {
                let want = bias[j] + dot(&x, &w[j * k..(j + 1) * k]);
                assert_eq!(out[j].to_bits(), want.to_bits(), "{n}x{k}, output {j}");
            }
        }
    }
}
