//! Row gradients: coalescing duplicate indices, and splitting a table into disjoint pieces for
//! parallel touched-row updates.

use super::slots::Real;
use crate::backend::cpu::elementwise::{host_slice, new_host};
use crate::backend::cpu::prefetch::prefetch;
use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, for_each_part_pinned, install, num_threads};
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;
use crate::tensor::layout::Layout;
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Mutex;

/// Sums the rows of duplicate indices (ALGORITHMS.md §5 asks for it before an optimizer step).
/// `indices` is i64 (or i32) `[n]`, `rows` is f32 or f64 `[n, ...]`; the result is i64
/// `[u]` in ascending order with each index once, and `[u, ...]` rows where each is the sum of
/// that index's rows in their order of appearance. Negative indices are an error.
pub fn coalesce_rows(indices: &Tensor, rows: &Tensor) -> Result<(Tensor, Tensor)> {
    coalesce_checked(&index_slice(indices, "indices")?, rows)
}

/// [`coalesce_rows`] on indices already read out of their tensor.
fn coalesce_checked(idx: &[i64], rows: &Tensor) -> Result<(Tensor, Tensor)> {
    let row_len = check_rows_shape(idx, rows, "rows")?;
    if let Some(k) = idx.iter().position(|&i| i < 0) {
        return Err(Error::range("indices", format!("row index {} at position {k} is negative", idx[k])));
    }
    match rows.dtype() {
        DType::F32 => coalesced_tensors::<f32>(idx, rows, row_len),
        DType::F64 => coalesced_tensors::<f64>(idx, rows, row_len),
        other => {
            Err(Error::InvalidDtype { arg: "rows", msg: format!("row gradients must be f32 or f64, given {other}") })
        }
    }
}

/// For each of `grads`, its indices and rows coalesced ([`coalesce_rows`]) when it is a row
/// gradient whose indices are not strictly ascending; `None` for the others. Tables are
/// coalesced side by side on the pool; each result is the same whatever the thread count.
pub(crate) fn coalesce_each(grads: &[Gradient]) -> Result<Vec<Option<(Tensor, Tensor)>>> {
    let one = |g: &Gradient| -> Result<Option<(Tensor, Tensor)>> {
        let Gradient::Rows { indices, rows } = g else { return Ok(None) };
        let idx = index_slice(indices, "indices")?;
        if is_strictly_ascending(&idx) { Ok(None) } else { coalesce_checked(&idx, rows).map(Some) }
    };
    let tables = grads.iter().filter(|g| matches!(g, Gradient::Rows { .. })).count();
    let each: Vec<Result<_>> =
        if tables > 1 { install(|| grads.par_iter().map(one).collect()) } else { grads.iter().map(one).collect() };
    each.into_iter().collect()
}

fn coalesced_tensors<T: Real>(idx: &[i64], rows: &Tensor, row_len: usize) -> Result<(Tensor, Tensor)> {
    let source = RowSource::<T>::of(rows, row_len)?;
    let groups = Groups::of(idx);
    let mut shape = rows.shape().to_vec();
    shape[0] = groups.len();
    let summed = new_host::<T>(&shape, |out| groups.sum_rows(&source, out))?;
    let unique = new_host::<i64>(&[groups.len()], |out| {
        out.iter_mut().zip(groups.indices(idx)).for_each(|(o, i)| *o = i);
    })?;
    Ok((unique, summed))
}

/// The rows of a row gradient where they lie: row `k` is `data[off + k * stride..]`, `row_len`
/// elements. A strided view whose rows are each contiguous (a graph's per-table slice of a
/// batch's gradient) is read in place; any other layout is copied once.
struct RowSource<'a, T: Clone> {
    data: Cow<'a, [T]>,
    off: usize,
    stride: usize,
    row_len: usize,
}

impl<'a, T: Element> RowSource<'a, T> {
    fn of(rows: &'a Tensor, row_len: usize) -> Result<Self> {
        if rows.device() == Device::Cpu && rows.dtype() == T::DTYPE && rows_are_contiguous(rows) {
            let l = rows.layout();
            return Ok(RowSource {
                data: Cow::Borrowed(host_slice::<T>(rows)?),
                off: l.offset(),
                stride: l.strides()[0],
                row_len,
            });
        }
        Ok(RowSource { data: host_data::<T>(rows)?, off: 0, stride: row_len, row_len })
    }

    fn row(&self, k: usize) -> &[T] {
        let start = self.off + k * self.stride;
        &self.data[start..start + self.row_len]
    }
}

/// Whether every row (index along the first dimension) of `t` is one row-major run.
fn rows_are_contiguous(t: &Tensor) -> bool {
    Layout::from_parts(&t.shape()[1..], &t.strides()[1..], 0).is_contiguous()
}

/// Positions of an index list grouped by index: `order` lists them by ascending index, ties
/// in order of appearance (so sums are deterministic); group `g` starts at `starts[g]`.
struct Groups {
    order: Vec<usize>,
    starts: Vec<usize>,
}

impl Groups {
    fn of(idx: &[i64]) -> Self {
        let order = positions_by_index(idx);
        let starts = (0..order.len()).filter(|&p| p == 0 || idx[order[p]] != idx[order[p - 1]]).collect();
        Groups { order, starts }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// Each group's index, ascending.
    fn indices<'s>(&'s self, idx: &'s [i64]) -> impl Iterator<Item = i64> + 's {
        self.starts.iter().map(move |&p| idx[self.order[p]])
    }

    /// Writes each group's summed rows into `out` (`row_len` elements per group), adding in
    /// order of appearance. Large outputs are cut into runs of whole groups for the pool.
    fn sum_rows<T: Real>(&self, source: &RowSource<'_, T>, out: &mut [T]) {
        let row_len = source.row_len;
        if row_len == 0 {
            return;
        }
        let sum_groups = |first: usize, dst: &mut [T]| {
            let groups = first..first + dst.len() / row_len;
            let run_end = self.starts.get(groups.end).copied().unwrap_or(self.order.len());
            for (g, dst) in groups.zip(dst.chunks_mut(row_len)) {
                let members = self.starts[g]..self.starts.get(g + 1).copied().unwrap_or(self.order.len());
                for p in members.clone() {
                    // Rows are read in index order, so each is a cache miss in a large batch
                    // gradient: ask for the one ROWS_AHEAD positions on while adding this one.
                    if p + ROWS_AHEAD < run_end {
                        prefetch(source.row(self.order[p + ROWS_AHEAD]));
                    }
                    let row = source.row(self.order[p]);
                    if p == members.start {
                        dst.copy_from_slice(row);
                    } else {
                        dst.iter_mut().zip(row).for_each(|(d, &s)| *d = *d + s);
                    }
                }
            }
        };
        if out.len() >= PARALLEL_THRESHOLD {
            let per_run = (PARALLEL_THRESHOLD / 4 / row_len).max(1);
            install(|| {
                out.par_chunks_mut(per_run * row_len).enumerate().for_each(|(i, dst)| sum_groups(i * per_run, dst))
            });
        } else {
            sum_groups(0, out);
        }
    }
}

/// Below this many indices a comparison sort is as quick as the radix passes.
const RADIX_MIN: usize = 64;

/// Positions `0..idx.len()` ordered by their (non-negative) index, ties in order of appearance.
/// A least-significant-digit radix sort of (index, position) packed into one `u64`, in as few
/// passes of at most 11 bits as the largest index needs (two for a 100,000-row table): a
/// DCN-v2 step groups 26 lists of 4,096 indices, where the stable comparison sort took
/// 100–170 µs a list. Indices or lists too long to pack take the comparison sort.
fn positions_by_index(idx: &[i64]) -> Vec<usize> {
    let n = idx.len();
    debug_assert!(idx.iter().all(|&i| i >= 0), "indices are checked non-negative first");
    let largest = idx.iter().copied().max().unwrap_or(0) as u64;
    if n < RADIX_MIN || largest > u32::MAX as u64 || n > u32::MAX as usize {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&k| idx[k]);
        return order;
    }
    let mut keys: Vec<u64> = idx.iter().zip(0u64..).map(|(&i, k)| ((i as u64) << 32) | k).collect();
    let mut spare = vec![0u64; n];
    let bits = u64::BITS - largest.leading_zeros();
    let passes = bits.div_ceil(11);
    for pass in 0..passes {
        // Equal digit widths: 17 bits take two passes of 9 rather than 11 and 6.
        let width = bits.div_ceil(passes);
        let (shift, mask) = (32 + pass * width, (1u64 << width) - 1);
        let digit = |key: u64| ((key >> shift) & mask) as usize;
        let mut at = vec![0usize; 1 << width];
        for &key in &keys {
            at[digit(key)] += 1;
        }
        let mut first = 0;
        for slot in at.iter_mut() {
            (*slot, first) = (first, first + *slot);
        }
        for &key in &keys {
            let d = digit(key);
            spare[at[d]] = key;
            at[d] += 1;
        }
        std::mem::swap(&mut keys, &mut spare);
    }
    keys.iter().map(|&key| (key & u32::MAX as u64) as usize).collect()
}

/// The elements of `t`, row-major: borrowed when it is a contiguous host tensor.
pub(crate) fn host_data<T: Element>(t: &Tensor) -> Result<Cow<'_, [T]>> {
    if t.device() == Device::Cpu && t.is_contiguous() && t.dtype() == T::DTYPE {
        let off = t.layout().offset();
        return Ok(Cow::Borrowed(&host_slice::<T>(t)?[off..off + t.numel()]));
    }
    Ok(Cow::Owned(t.to_vec::<T>()?))
}

/// Row indices as i64 (i32 widened), checked to be one-dimensional.
pub(crate) fn index_slice<'a>(indices: &'a Tensor, arg: &'static str) -> Result<Cow<'a, [i64]>> {
    if indices.ndim() != 1 {
        return Err(Error::shape(arg, format!("row indices must be one-dimensional, shape is {:?}", indices.shape())));
    }
    match indices.dtype() {
        DType::I64 => host_data::<i64>(indices),
        DType::I32 => Ok(Cow::Owned(host_data::<i32>(indices)?.iter().map(|&i| i as i64).collect())),
        other => Err(Error::InvalidDtype { arg, msg: format!("row indices must be i64 (or i32), given {other}") }),
    }
}

/// Checks `rows` is `[n, ...]` for `n` indices; returns the elements per row.
fn check_rows_shape(idx: &[i64], rows: &Tensor, arg: &'static str) -> Result<usize> {
    if rows.ndim() == 0 || rows.shape()[0] != idx.len() {
        return Err(Error::shape(
            arg,
            format!("{} row indices need rows of shape [{}, ...], given {:?}", idx.len(), idx.len(), rows.shape()),
        ));
    }
    Ok(rows.shape()[1..].iter().product())
}

/// True when every index is larger than the one before (already coalesced).
pub(crate) fn is_strictly_ascending(idx: &[i64]) -> bool {
    idx.windows(2).all(|w| w[0] < w[1])
}

/// A checked row gradient: indices strictly ascending and inside the table, rows `[n, row_len]`.
pub(crate) struct RowGrad<'a, T: Clone> {
    /// Table rows touched, strictly ascending.
    pub indices: Cow<'a, [i64]>,
    /// Their gradients, `row_len` elements each.
    pub rows: Cow<'a, [T]>,
}

/// Checks a row gradient against its table `param` and coalesces it when needed.
pub(crate) fn row_grad<'a, T: Real>(
    optimizer: &str,
    param_name: &str,
    param: &Tensor,
    indices: &'a Tensor,
    rows: &'a Tensor,
) -> Result<RowGrad<'a, T>> {
    let ctx = || format!("{optimizer} update of `{param_name}`");
    if param.ndim() == 0 {
        return Err(Error::shape(
            "grad",
            format!("{}: a row gradient needs a table, the parameter is a scalar", ctx()),
        ));
    }
    let idx =
        index_slice(indices, "grad.indices").map_err(|e| Error::invalid("grad.indices", format!("{}: {e}", ctx())))?;
    if rows.dtype() != param.dtype() {
        return Err(Error::InvalidDtype {
            arg: "grad.rows",
            msg: format!("{}: gradient rows are {} but the parameter is {}", ctx(), rows.dtype(), param.dtype()),
        });
    }
    let mut want = vec![idx.len()];
    want.extend_from_slice(&param.shape()[1..]);
    if rows.shape() != want.as_slice() {
        return Err(Error::shape(
            "grad.rows",
            format!(
                "{}: {} indices into a {:?} table need rows of shape {want:?}, given {:?}",
                ctx(),
                idx.len(),
                param.shape(),
                rows.shape()
            ),
        ));
    }
    let n_rows = param.shape()[0] as i64;
    if let Some(k) = idx.iter().position(|&i| i < 0 || i >= n_rows) {
        return Err(Error::range(
            "grad.indices",
            format!("{}: row index {} at position {k} is outside the table's {n_rows} rows", ctx(), idx[k]),
        ));
    }
    if is_strictly_ascending(&idx) {
        return Ok(RowGrad { indices: idx, rows: host_data::<T>(rows)? });
    }
    let row_len = param.shape()[1..].iter().product();
    let groups = Groups::of(&idx);
    let mut summed = vec![T::from_f64(0.0); groups.len() * row_len];
    groups.sum_rows(&RowSource::<T>::of(rows, row_len)?, &mut summed);
    let unique = groups.indices(&idx).collect();
    Ok(RowGrad { indices: Cow::Owned(unique), rows: Cow::Owned(summed) })
}

/// A run of touched rows handled by one task: positions in the index list, and the table rows
/// `[first, end)` whose storage it owns.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    /// Positions in the (ascending) index list.
    pub pos: Range<usize>,
    /// First table row owned.
    pub first: usize,
    /// One past the last table row owned.
    pub end: usize,
}

/// How many touched rows ahead a row update asks the cache for a row's table line (and
/// slots), and coalescing for a gradient row. Touched rows lie far apart in a large table (and
/// rows read in index order far apart in a batch's gradient), so each is a cache miss; the work
/// on one row is too short for the core to overlap the next row's miss on its own. On the
/// DCN-v2 tables (26 × 100,000 × 16, about 4,000 touched rows each, two threads) one step's
/// row-wise Adagrad took 4–5 ms instead of 12–23, lazy Adam 7–12 instead of 14–25, SGD 2–3
/// instead of 4–7; 16 rows ahead did no better than 8.
const ROWS_AHEAD: usize = 8;

/// Before the update of piece `p`'s `k`-th index: asks the cache for the table row
/// [`ROWS_AHEAD`] touched rows later, if the piece has it, in each of `slots` (the piece's
/// part of the table or of an optimizer slot, and its elements per row).
#[inline(always)]
pub(crate) fn prefetch_ahead<T>(p: &Piece, indices: &[i64], k: usize, slots: &[(&[T], usize)]) {
    let later = k + ROWS_AHEAD;
    if later < p.pos.end {
        let r = indices[later] as usize - p.first;
        for &(data, per_row) in slots {
            prefetch(&data[r * per_row..(r + 1) * per_row]);
        }
    }
}

/// Splits touched rows into pieces owning disjoint table ranges: one piece unless the work
/// (`idx.len() * row_len` elements) is large enough to be worth the pool.
pub(crate) fn plan_pieces(idx: &[i64], table_rows: usize, row_len: usize) -> Vec<Piece> {
    let n = idx.len();
    let work = n.saturating_mul(row_len.max(1));
    let wanted = if work < PARALLEL_THRESHOLD { 1 } else { (num_threads() * 4).min(work / (PARALLEL_THRESHOLD / 4)) };
    let count = wanted.clamp(1, n.max(1));
    let mut pieces = Vec::with_capacity(count);
    for k in 0..count {
        let pos = k * n / count..(k + 1) * n / count;
        let first = if k == 0 { 0 } else { idx[pos.start] as usize };
        let end = if k + 1 == count { table_rows } else { idx[(k + 1) * n / count] as usize };
        pieces.push(Piece { pos, first, end });
    }
    pieces
}

/// Cuts `data` (`per_row` elements per table row) into the pieces' disjoint table ranges.
pub(crate) fn split_pieces<'a, T>(mut data: &'a mut [T], per_row: usize, pieces: &[Piece]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        let (head, tail) = std::mem::take(&mut data).split_at_mut((p.end - p.first) * per_row);
        out.push(head);
        data = tail;
    }
    out
}

/// Runs `f` on every item, on the engine's pool when there is more than one (as the parts of
/// [`for_each_part_pinned`], so a caller outside the pool works on items too).
pub(crate) fn for_each_piece<I: Send>(items: Vec<I>, f: impl Fn(I) + Sync + Send) {
    if items.len() <= 1 {
        items.into_iter().for_each(f);
    } else {
        // Each part takes its own item once; the lock is never contended.
        let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
        for_each_part_pinned(slots.len(), |i| {
            if let Some(item) = slots[i].lock().unwrap_or_else(|p| p.into_inner()).take() {
                f(item)
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_runs_once_on_its_own_item() {
        // Owned items and disjoint borrowed slices, as the optimizers hand them out.
        for n in [0, 1, 2, 5, 33] {
            let runs: Vec<std::sync::atomic::AtomicUsize> = (0..n).map(|_| Default::default()).collect();
            for_each_piece((0..n).map(|i| vec![i; i + 1]).collect(), |v: Vec<usize>| {
                assert_eq!(v.len(), v[0] + 1);
                runs[v[0]].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            assert!(runs.iter().all(|r| r.load(std::sync::atomic::Ordering::Relaxed) == 1), "{n} items");
            let mut data = vec![0usize; n * 3];
            for_each_piece(data.chunks_mut(3).enumerate().collect(), |(i, c): (usize, &mut [usize])| c.fill(i + 1));
            assert!(data.iter().enumerate().all(|(j, &x)| x == j / 3 + 1), "{n} slices: {data:?}");
        }
    }
}
