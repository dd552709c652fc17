//! Layout arithmetic: shape, element strides and offset, and every zero-copy view derived from them.

use super::dims::Dims;
use crate::error::{Error, Result};

/// Where a tensor's elements sit in its storage: element `[i0, i1, ..]` lives at
/// `offset + Σ i_k · strides[k]` (in elements, not bytes). Views change the layout only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Dims,
    strides: Dims,
    offset: usize,
}

/// Resolves a possibly negative axis (`-1` = last) against `ndim`, naming `arg` on error.
pub fn normalize_axis(axis: i64, ndim: usize, arg: &'static str) -> Result<usize> {
    let n = ndim as i64;
    let a = if axis < 0 { axis + n } else { axis };
    if a < 0 || a >= n.max(0) {
        return Err(Error::range(arg, format!("axis {axis} for a tensor of rank {ndim} (valid: {}..{})", -n, n)));
    }
    Ok(a as usize)
}

/// The element count of `shape`, or an overflow error naming `arg`.
pub fn checked_numel(shape: &[usize], arg: &'static str) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .filter(|&n| n <= i64::MAX as usize)
            .ok_or_else(|| Error::overflow(arg, format!("element count of shape {shape:?} exceeds i64::MAX")))
    })
}

/// Row-major (C order) strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Dims {
    let mut strides = Dims::filled(0, shape.len());
    let mut acc = 1usize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc.saturating_mul(d.max(1));
    }
    strides
}

impl Layout {
    /// A row-major contiguous layout at offset 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout { shape: shape.into(), strides: contiguous_strides(shape), offset: 0 }
    }

    /// A layout from raw parts; the caller vouches that it stays inside its storage.
    pub fn from_parts(shape: impl Into<Dims>, strides: impl Into<Dims>, offset: usize) -> Layout {
        let (shape, strides) = (shape.into(), strides.into());
        debug_assert_eq!(shape.len(), strides.len());
        Layout { shape, strides, offset }
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Element strides, one per dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Offset of the first element, in elements.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the elements are row-major and gap-free from `offset` (size-1 dims ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return self.numel() == 0;
            }
            expected *= d;
        }
        true
    }

    /// One past the largest storage element this layout can touch (0 when empty).
    pub fn storage_span(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset + 1 + self.shape.iter().zip(&self.strides).map(|(&d, &s)| (d - 1) * s).sum::<usize>()
    }

    /// A view with `shape` (one entry may be -1, inferred) if the strides allow one without
    /// copying; `Ok(None)` when a copy is needed; an error when element counts differ.
    pub fn reshape(&self, shape: &[i64]) -> Result<Option<Layout>> {
        let new_shape = infer_shape(shape, self.numel())?;
        if self.is_contiguous() {
            return Ok(Some(Layout { strides: contiguous_strides(&new_shape), shape: new_shape, offset: self.offset }));
        }
        Ok(self.view_strides(&new_shape).map(|strides| Layout { shape: new_shape, strides, offset: self.offset }))
    }

    /// Strides for viewing this layout as `new_shape`, if possible without a copy: each run of
    /// old dimensions that is contiguous within itself can be split or merged freely.
    fn view_strides(&self, new_shape: &[usize]) -> Option<Dims> {
        if self.numel() == 0 {
            return Some(contiguous_strides(new_shape));
        }
        // Size-1 dimensions carry no layout information: `before(i)` skips them below index i.
        let before = |mut i: usize| {
            while i > 0 && self.shape[i - 1] == 1 {
                i -= 1;
            }
            i
        };
        let mut new_strides = Dims::filled(0, new_shape.len());
        let mut ni = new_shape.len();
        let mut oi = before(self.ndim());
        // Walk from the innermost dimension outward, matching chunks of equal element count.
        while oi > 0 {
            let (mut chunk, base_stride) = (self.shape[oi - 1], self.strides[oi - 1]);
            oi = before(oi - 1);
            while oi > 0 && self.strides[oi - 1] == chunk * base_stride {
                chunk *= self.shape[oi - 1];
                oi = before(oi - 1);
            }
            let mut stride = base_stride;
            let mut covered = 1usize;
            while covered < chunk {
                ni -= 1;
                new_strides[ni] = stride;
                stride *= new_shape[ni];
                covered *= new_shape[ni];
            }
            if covered != chunk {
                return None;
            }
        }
        // Remaining new dimensions all have size 1.
        while ni > 0 {
            ni -= 1;
            new_strides[ni] = 1;
        }
        Some(new_strides)
    }

    /// Reorders dimensions: dimension `k` of the result is dimension `perm[k]` of `self`.
    pub fn permute(&self, perm: &[i64]) -> Result<Layout> {
        let n = self.ndim();
        if perm.len() != n {
            return Err(Error::invalid("perm", format!("has {} entries for a tensor of rank {n}", perm.len())));
        }
        let mut seen = vec![false; n];
        let mut axes = Vec::with_capacity(n);
        for &p in perm {
            let a = normalize_axis(p, n, "perm")?;
            if std::mem::replace(&mut seen[a], true) {
                return Err(Error::invalid("perm", format!("{perm:?} is not a permutation: axis {a} repeats")));
            }
            axes.push(a);
        }
        Ok(Layout {
            shape: axes.iter().map(|&a| self.shape[a]).collect(),
            strides: axes.iter().map(|&a| self.strides[a]).collect(),
            offset: self.offset,
        })
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, dim0: i64, dim1: i64) -> Result<Layout> {
        let a = normalize_axis(dim0, self.ndim(), "dim0")?;
        let b = normalize_axis(dim1, self.ndim(), "dim1")?;
        let mut out = self.clone();
        out.shape.swap(a, b);
        out.strides.swap(a, b);
        Ok(out)
    }

    /// Keeps indices `start, start+step, ..` below `end` along `dim` (negative `start`/`end`
    /// count from the end). Requires `0 <= start <= end <= size` after that and `step >= 1`.
    pub fn slice(&self, dim: i64, start: i64, end: i64, step: i64) -> Result<Layout> {
        let d = normalize_axis(dim, self.ndim(), "dim")?;
        let size = self.shape[d] as i64;
        let resolve = |v: i64| if v < 0 { v + size } else { v };
        let (s, e) = (resolve(start), resolve(end));
        if step < 1 {
            return Err(Error::invalid("step", format!("must be >= 1, given {step}")));
        }
        if s < 0 || s > size {
            return Err(Error::range("start", format!("{start} for dimension {d} of size {size}")));
        }
        if e < s || e > size {
            return Err(Error::range("end", format!("{end} for dimension {d} of size {size} with start {start}")));
        }
        let len = ((e - s) + step - 1) / step;
        let mut out = self.clone();
        if len > 0 {
            out.offset += s as usize * self.strides[d];
        }
        out.shape[d] = len as usize;
        out.strides[d] *= step as usize;
        Ok(out)
    }

    /// Broadcasts to `shape` (NumPy rules, aligned at the right; -1 keeps a dimension):
    /// new leading dimensions and size-1 dimensions get stride 0.
    pub fn expand(&self, shape: &[i64]) -> Result<Layout> {
        let n = self.ndim();
        if shape.len() < n {
            return Err(Error::shape(
                "shape",
                format!("cannot expand rank {n} {:?} to rank {} {shape:?}", self.shape, shape.len()),
            ));
        }
        let lead = shape.len() - n;
        let mut out_shape = Dims::new();
        let mut out_strides = Dims::new();
        for (i, &want) in shape.iter().enumerate() {
            let (have, stride) =
                if i < lead { (None, 0) } else { (Some(self.shape[i - lead]), self.strides[i - lead]) };
            let size = match (want, have) {
                (-1, Some(h)) => h,
                (w, _) if w < 0 => {
                    return Err(Error::invalid(
                        "shape",
                        format!("dimension {i} is {w}; -1 is allowed only for existing dimensions"),
                    ));
                }
                (w, Some(h)) if w as usize == h => h,
                (w, Some(1)) => w as usize,
                (w, Some(h)) => {
                    return Err(Error::shape(
                        "shape",
                        format!(
                            "cannot expand dimension {} of size {h} to {w} (only size-1 dimensions expand); {:?} -> {shape:?}",
                            i - lead,
                            self.shape
                        ),
                    ));
                }
                (w, None) => w as usize,
            };
            out_strides.push(if have == Some(size) { stride } else { 0 });
            out_shape.push(size);
        }
        checked_numel(&out_shape, "shape")?;
        Ok(Layout { shape: out_shape, strides: out_strides, offset: self.offset })
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: i64) -> Result<Layout> {
        let d = normalize_axis(dim, self.ndim(), "dim")?;
        if self.shape[d] != 1 {
            return Err(Error::shape(
                "dim",
                format!("cannot squeeze dimension {d} of size {} (must be 1)", self.shape[d]),
            ));
        }
        let mut out = self.clone();
        out.shape.remove(d);
        out.strides.remove(d);
        Ok(out)
    }

    /// Removes every size-1 dimension.
    pub fn squeeze_all(&self) -> Layout {
        let (shape, strides) =
            self.shape.iter().zip(&self.strides).filter(|&(&d, _)| d != 1).map(|(&d, &s)| (d, s)).unzip();
        Layout { shape, strides, offset: self.offset }
    }

    /// Inserts a size-1 dimension at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: i64) -> Result<Layout> {
        let d = normalize_axis(dim, self.ndim() + 1, "dim")?;
        let stride = if d < self.ndim() { self.strides[d] * self.shape[d] } else { 1 };
        let mut out = self.clone();
        out.shape.insert(d, 1);
        out.strides.insert(d, stride);
        Ok(out)
    }

    /// An equivalent layout with size-1 dimensions dropped and mergeable neighbours merged,
    /// so that copy loops run over as few and as long rows as possible.
    pub fn coalesced(&self) -> Layout {
        let mut shape = Dims::new();
        let mut strides = Dims::new();
        for (&d, &s) in self.shape.iter().zip(&self.strides) {
            if d == 1 {
                continue;
            }
            match (shape.last_mut(), strides.last_mut()) {
                (Some(pd), Some(ps)) if *ps == s * d => {
                    *pd *= d;
                    *ps = s;
                }
                _ => {
                    shape.push(d);
                    strides.push(s);
                }
            }
        }
        if shape.is_empty() {
            shape.push(1);
            strides.push(1);
        }
        Layout { shape, strides, offset: self.offset }
    }

    /// Storage offset of the first element of row `row`, where rows run along the last
    /// dimension and are numbered in row-major order.
    pub fn row_offset(&self, mut row: usize) -> usize {
        let mut off = self.offset;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev().skip(1) {
            off += (row % d) * s;
            row /= d;
        }
        off
    }

    /// Every element's storage offset, in row-major logical order.
    pub fn offsets(&self) -> impl Iterator<Item = usize> + '_ {
        let c = self.coalesced();
        let (len, stride) = (*c.shape.last().unwrap(), *c.strides.last().unwrap());
        let rows = if self.numel() == 0 { 0 } else { c.numel() / len };
        (0..rows).flat_map(move |r| {
            let start = c.row_offset(r);
            (0..len).map(move |i| start + i * stride)
        })
    }
}

/// Merges dimensions that are mergeable in every one of `layouts` (all of one shape) and
/// drops size-1 dimensions, so joint loops (binary kernels) run over long rows.
pub fn coalesce_joint(layouts: &[&Layout]) -> Vec<Layout> {
    let shape = layouts[0].shape();
    let mut out_shape = Dims::new();
    let mut out_strides: Vec<Dims> = vec![Dims::new(); layouts.len()];
    for (d, &size) in shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let mergeable = !out_shape.is_empty()
            && layouts.iter().zip(&out_strides).all(|(l, s)| *s.last().unwrap() == l.strides()[d] * size);
        if mergeable {
            *out_shape.last_mut().unwrap() *= size;
            for (l, s) in layouts.iter().zip(out_strides.iter_mut()) {
                *s.last_mut().unwrap() = l.strides()[d];
            }
        } else {
            out_shape.push(size);
            for (l, s) in layouts.iter().zip(out_strides.iter_mut()) {
                s.push(l.strides()[d]);
            }
        }
    }
    if out_shape.is_empty() {
        out_shape.push(1);
        out_strides.iter_mut().for_each(|s| s.push(1));
    }
    layouts
        .iter()
        .zip(out_strides)
        .map(|(l, strides)| Layout { shape: out_shape.clone(), strides, offset: l.offset })
        .collect()
}

/// Resolves a requested shape with at most one -1 against `numel` elements.
pub fn infer_shape(shape: &[i64], numel: usize) -> Result<Dims> {
    let mut infer_at = None;
    let mut known = 1usize;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if infer_at.is_none() => infer_at = Some(i),
            -1 => return Err(Error::invalid("shape", format!("{shape:?} has more than one -1"))),
            d if d < 0 => return Err(Error::invalid("shape", format!("dimension {i} is negative ({d})"))),
            d => {
                known = known
                    .checked_mul(d as usize)
                    .ok_or_else(|| Error::overflow("shape", format!("element count of {shape:?} overflows")))?
            }
        }
    }
    let mut out: Dims = shape.iter().map(|&d| d.max(0) as usize).collect();
    match infer_at {
        Some(i) if known != 0 && numel.is_multiple_of(known) => out[i] = numel / known,
        Some(_) => {
            return Err(Error::shape("shape", format!("cannot infer -1 in {shape:?} for {numel} elements")));
        }
        None if known != numel => {
            return Err(Error::shape("shape", format!("{shape:?} has {known} elements, the tensor has {numel}")));
        }
        None => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strides(l: &Layout) -> Vec<usize> {
        l.strides().to_vec()
    }

    #[test]
    fn contiguous_strides_are_row_major() {
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
        assert!(Layout::contiguous(&[2, 3]).is_contiguous());
    }

    #[test]
    fn permute_and_transpose_strides() {
        let l = Layout::contiguous(&[2, 3, 4]);
        let p = l.permute(&[2, 0, 1]).unwrap();
        assert_eq!(p.shape(), &[4, 2, 3]);
        assert_eq!(strides(&p), vec![1, 12, 4]);
        assert!(!p.is_contiguous());
        let t = l.transpose(0, -1).unwrap();
        assert_eq!((t.shape(), t.strides()), (&[4, 3, 2][..], &[1, 4, 12][..]));
        assert!(l.permute(&[0, 0, 1]).unwrap_err().to_string().contains("not a permutation"));
        assert!(l.permute(&[0, 1]).is_err());
        assert!(l.permute(&[0, 1, 3]).is_err());
    }

    #[test]
    fn slice_with_step_offsets_and_strides() {
        let l = Layout::contiguous(&[4, 10]);
        let s = l.slice(1, 2, 9, 3).unwrap(); // indices 2, 5, 8
        assert_eq!((s.shape(), s.strides(), s.offset()), (&[4, 3][..], &[10, 3][..], 2));
        assert!(!s.is_contiguous());
        let rows = l.slice(0, 1, 3, 1).unwrap();
        assert_eq!((rows.offset(), rows.is_contiguous()), (10, true));
        let neg = l.slice(1, -3, -1, 1).unwrap();
        assert_eq!((neg.shape(), neg.offset()), (&[4, 2][..], 7));
        let empty = l.slice(1, 5, 5, 1).unwrap();
        assert_eq!(empty.numel(), 0);
        assert!(empty.is_contiguous());
        assert!(l.slice(1, 0, 11, 1).is_err());
        assert!(l.slice(1, 5, 4, 1).is_err());
        assert!(l.slice(1, 0, 5, 0).is_err());
        assert!(l.slice(2, 0, 1, 1).is_err());
        assert_eq!(s.offsets().collect::<Vec<_>>()[..4], [2, 5, 8, 12]);
    }

    #[test]
    fn expand_uses_zero_strides() {
        let l = Layout::contiguous(&[3, 1]);
        let e = l.expand(&[2, 3, 4]).unwrap();
        assert_eq!((e.shape(), e.strides()), (&[2, 3, 4][..], &[0, 1, 0][..]));
        assert!(!e.is_contiguous());
        assert_eq!(e.offsets().take(6).collect::<Vec<_>>(), vec![0, 0, 0, 0, 1, 1]);
        assert_eq!(l.expand(&[-1, 5]).unwrap().shape(), &[3, 5]);
        let err = l.expand(&[4, 4]).unwrap_err().to_string();
        assert!(err.contains("size 3") && err.contains("only size-1"), "{err}");
        assert!(l.expand(&[3]).is_err());
        assert!(l.expand(&[-1, 3, 1]).is_err());
    }

    #[test]
    fn squeeze_unsqueeze() {
        let l = Layout::contiguous(&[2, 1, 3]);
        assert_eq!(l.squeeze(1).unwrap().shape(), &[2, 3]);
        assert!(l.squeeze(0).is_err());
        let u = l.unsqueeze(-1).unwrap();
        assert_eq!((u.shape(), u.strides()), (&[2, 1, 3, 1][..], &[3, 3, 1, 1][..]));
        assert_eq!(l.unsqueeze(0).unwrap().strides(), &[6, 3, 3, 1]);
        assert!(l.unsqueeze(4).is_err());
        assert_eq!(l.squeeze_all().shape(), &[2, 3]);
    }

    #[test]
    fn reshape_views_when_strides_allow() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert_eq!(l.reshape(&[6, -1]).unwrap().unwrap().shape(), &[6, 4]);
        // A transposed layout can split dimensions but not merge across the transpose.
        let t = l.transpose(1, 2).unwrap(); // [2,4,3] strides [12,1,4]
        assert!(t.reshape(&[2, 12]).unwrap().is_none());
        let split = t.reshape(&[2, 2, 2, 3]).unwrap().unwrap();
        assert_eq!(split.strides(), &[12, 2, 1, 4]);
        // Sliced rows are contiguous in pieces: merging the outer dims is fine.
        let s = Layout::contiguous(&[4, 6]).slice(1, 0, 3, 1).unwrap(); // [4,3] strides [6,1]
        assert!(s.reshape(&[12]).unwrap().is_none());
        assert_eq!(s.reshape(&[2, 2, 3]).unwrap().unwrap().strides(), &[12, 6, 1]);
        assert!(l.reshape(&[5, 5]).unwrap_err().to_string().contains("24"));
        assert!(l.reshape(&[-1, -1]).is_err());
        assert!(l.reshape(&[-1, 5]).is_err());
        assert!(l.reshape(&[-2, 12]).is_err());
    }

    #[test]
    fn coalesce_and_span() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert_eq!(l.coalesced().shape(), &[24]);
        let s = l.slice(2, 0, 2, 1).unwrap();
        assert_eq!(s.coalesced().shape(), &[6, 2]);
        assert_eq!(s.storage_span(), 22);
        assert!(checked_numel(&[1 << 40, 1 << 40], "shape").unwrap_err().to_string().contains("overflow"));
    }
}
