//! Row gradients: coalescing duplicate indices, and splitting a table into disjoint pieces for
//! parallel touched-row updates.

use super::slots::Real;
use crate::backend::cpu::elementwise::host_slice;
use crate::backend::cpu::prefetch::prefetch;
use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install, num_threads};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;

/// Sums the rows of duplicate indices (ALGORITHMS.md §5 asks for it before an optimizer step).
/// `indices` is i64 (or i32) `[n]`, `rows` is f32 or f64 `[n, ...]`; the result is i64
/// `[u]` in ascending order with each index once, and `[u, ...]` rows where each is the sum of
/// that index's rows in their order of appearance. Negative indices are an error.
pub fn coalesce_rows(indices: &Tensor, rows: &Tensor) -> Result<(Tensor, Tensor)> {
    let idx = index_slice(indices, "indices")?;
    let row_len = check_rows_shape(&idx, rows, "rows")?;
    if let Some(k) = idx.iter().position(|&i| i < 0) {
        return Err(Error::range("indices", format!("row index {} at position {k} is negative", idx[k])));
    }
    let mut shape = rows.shape().to_vec();
    match rows.dtype() {
        DType::F32 => coalesced_tensors::<f32>(&idx, rows, row_len, &mut shape),
        DType::F64 => coalesced_tensors::<f64>(&idx, rows, row_len, &mut shape),
        other => {
            Err(Error::InvalidDtype { arg: "rows", msg: format!("row gradients must be f32 or f64, given {other}") })
        }
    }
}

fn coalesced_tensors<T: Real>(
    idx: &[i64],
    rows: &Tensor,
    row_len: usize,
    shape: &mut [usize],
) -> Result<(Tensor, Tensor)> {
    let data = host_data::<T>(rows)?;
    let (ui, ur) = coalesce(idx, &data, row_len);
    shape[0] = ui.len();
    Ok((Tensor::from_slice(&ui, &[ui.len()])?, Tensor::from_slice(&ur, shape)?))
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

/// Unique ascending indices and the summed rows (in order of appearance) for each.
pub(crate) fn coalesce<T: Real>(idx: &[i64], rows: &[T], row_len: usize) -> (Vec<i64>, Vec<T>) {
    // A stable sort keeps equal indices in their order of appearance, so sums are deterministic.
    let mut order: Vec<usize> = (0..idx.len()).collect();
    order.sort_by_key(|&k| idx[k]);
    let mut starts = Vec::new();
    for (p, &k) in order.iter().enumerate() {
        if p == 0 || idx[k] != idx[order[p - 1]] {
            starts.push(p);
        }
    }
    let unique: Vec<i64> = starts.iter().map(|&p| idx[order[p]]).collect();
    let mut out = vec![T::from_f64(0.0); unique.len() * row_len];
    let sum_group = |g: usize, dst: &mut [T]| {
        let end = starts.get(g + 1).copied().unwrap_or(order.len());
        let first = order[starts[g]];
        dst.copy_from_slice(&rows[first * row_len..(first + 1) * row_len]);
        for &k in &order[starts[g] + 1..end] {
            for (d, &s) in dst.iter_mut().zip(&rows[k * row_len..(k + 1) * row_len]) {
                *d = *d + s;
            }
        }
    };
    if row_len > 0 && out.len() >= PARALLEL_THRESHOLD {
        install(|| out.par_chunks_mut(row_len).enumerate().for_each(|(g, dst)| sum_group(g, dst)));
    } else if row_len > 0 {
        out.chunks_mut(row_len).enumerate().for_each(|(g, dst)| sum_group(g, dst));
    }
    (unique, out)
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
    let data = host_data::<T>(rows)?;
    if is_strictly_ascending(&idx) {
        return Ok(RowGrad { indices: idx, rows: data });
    }
    let row_len = param.shape()[1..].iter().product();
    let (ui, ur) = coalesce(&idx, &data, row_len);
    Ok(RowGrad { indices: Cow::Owned(ui), rows: Cow::Owned(ur) })
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
/// slots). Touched rows lie far apart in a large table, so each is a cache miss; the update
/// of one row is too short for the core to overlap the next row's miss on its own. On the
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

/// Runs `f` on every item, on the engine's pool when there is more than one.
pub(crate) fn for_each_piece<I: Send>(items: Vec<I>, f: impl Fn(I) + Sync + Send) {
    if items.len() <= 1 {
        items.into_iter().for_each(f);
    } else {
        install(|| items.into_par_iter().for_each(f));
    }
}
