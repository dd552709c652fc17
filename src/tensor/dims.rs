//! `Dims`: a shape or stride list kept inline up to six entries, so layouts of ordinary tensors never touch the heap.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};

/// Entries held without a heap allocation; deeper tensors spill to a `Vec`.
const INLINE: usize = 6;

/// A list of `usize` (dimensions or strides) that derefs to `[usize]`. Every tensor carries
/// two of these; keeping them inline removes two allocations per tensor, which dominate the
/// cost of small requests (a batch-1 predict creates a few hundred tensors).
#[derive(Clone)]
pub struct Dims(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [usize; INLINE] },
    Heap(Vec<usize>),
}

impl Dims {
    /// An empty list (a scalar's shape).
    pub const fn new() -> Dims {
        Dims(Repr::Inline { len: 0, buf: [0; INLINE] })
    }

    /// `len` copies of `value`.
    pub fn filled(value: usize, len: usize) -> Dims {
        if len <= INLINE {
            Dims(Repr::Inline { len: len as u8, buf: [value; INLINE] })
        } else {
            Dims(Repr::Heap(vec![value; len]))
        }
    }

    /// The entries as a slice.
    pub fn as_slice(&self) -> &[usize] {
        self
    }

    /// Appends `value`.
    pub fn push(&mut self, value: usize) {
        self.insert(self.len(), value);
    }

    /// Inserts `value` at `index` (at most `len()`), shifting later entries right.
    pub fn insert(&mut self, index: usize, value: usize) {
        match &mut self.0 {
            Repr::Inline { len, buf } if (*len as usize) < INLINE => {
                let n = *len as usize;
                assert!(index <= n, "Dims::insert: index {index} past length {n}");
                buf.copy_within(index..n, index + 1);
                buf[index] = value;
                *len += 1;
            }
            Repr::Inline { len, buf } => {
                let mut v = buf[..*len as usize].to_vec();
                v.insert(index, value);
                self.0 = Repr::Heap(v);
            }
            Repr::Heap(v) => v.insert(index, value),
        }
    }

    /// Removes and returns the entry at `index`, shifting later entries left.
    pub fn remove(&mut self, index: usize) -> usize {
        match &mut self.0 {
            Repr::Inline { len, buf } => {
                let n = *len as usize;
                assert!(index < n, "Dims::remove: index {index} out of length {n}");
                let value = buf[index];
                buf.copy_within(index + 1..n, index);
                *len -= 1;
                value
            }
            Repr::Heap(v) => v.remove(index),
        }
    }
}

impl Default for Dims {
    fn default() -> Dims {
        Dims::new()
    }
}

impl Deref for Dims {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Heap(v) => v,
        }
    }
}

impl DerefMut for Dims {
    fn deref_mut(&mut self) -> &mut [usize] {
        match &mut self.0 {
            Repr::Inline { len, buf } => &mut buf[..*len as usize],
            Repr::Heap(v) => v,
        }
    }
}

impl From<&[usize]> for Dims {
    fn from(values: &[usize]) -> Dims {
        if values.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..values.len()].copy_from_slice(values);
            Dims(Repr::Inline { len: values.len() as u8, buf })
        } else {
            Dims(Repr::Heap(values.to_vec()))
        }
    }
}

impl<const N: usize> From<[usize; N]> for Dims {
    fn from(values: [usize; N]) -> Dims {
        Dims::from(values.as_slice())
    }
}

impl From<&Vec<usize>> for Dims {
    fn from(values: &Vec<usize>) -> Dims {
        Dims::from(values.as_slice())
    }
}

impl From<&Dims> for Dims {
    fn from(values: &Dims) -> Dims {
        values.clone()
    }
}

impl From<Dims> for Vec<usize> {
    fn from(values: Dims) -> Vec<usize> {
        values.to_vec()
    }
}

impl From<Vec<usize>> for Dims {
    fn from(values: Vec<usize>) -> Dims {
        if values.len() <= INLINE { Dims::from(values.as_slice()) } else { Dims(Repr::Heap(values)) }
    }
}

impl Extend<usize> for Dims {
    fn extend<I: IntoIterator<Item = usize>>(&mut self, iter: I) {
        iter.into_iter().for_each(|v| self.push(v));
    }
}

impl FromIterator<usize> for Dims {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Dims {
        let mut out = Dims::new();
        out.extend(iter);
        out
    }
}

impl<'a> IntoIterator for &'a Dims {
    type Item = &'a usize;
    type IntoIter = std::slice::Iter<'a, usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for Dims {
    fn eq(&self, other: &Dims) -> bool {
        **self == **other
    }
}

impl Eq for Dims {}

impl PartialEq<[usize]> for Dims {
    fn eq(&self, other: &[usize]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[usize]> for Dims {
    fn eq(&self, other: &&[usize]) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<usize>> for Dims {
    fn eq(&self, other: &Vec<usize>) -> bool {
        **self == **other
    }
}

impl<const N: usize> PartialEq<[usize; N]> for Dims {
    fn eq(&self, other: &[usize; N]) -> bool {
        **self == *other
    }
}

impl PartialEq<Dims> for [usize] {
    fn eq(&self, other: &Dims) -> bool {
        *self == **other
    }
}

impl PartialEq<Dims> for Vec<usize> {
    fn eq(&self, other: &Dims) -> bool {
        **self == **other
    }
}

impl Hash for Dims {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_behave_like_a_vec() {
        for n in [0usize, 1, 5, 6, 7, 12] {
            let want: Vec<usize> = (0..n).map(|i| i * 3 + 1).collect();
            let mut d: Dims = want.iter().copied().collect();
            assert_eq!(&*d, want.as_slice());
            assert_eq!(Dims::from(want.clone()), d);
            let mut v = want.clone();
            d.insert(n / 2, 99);
            v.insert(n / 2, 99);
            assert_eq!(&*d, v.as_slice());
            assert_eq!(d.remove(0), v.remove(0));
            assert_eq!(&*d, v.as_slice());
            d.push(7);
            v.push(7);
            let last = v.len() - 1;
            d.swap(0, last);
            v.swap(0, last);
            assert_eq!(&*d, v.as_slice());
            assert_eq!(format!("{d:?}"), format!("{v:?}"));
        }
        assert_eq!(&*Dims::filled(2, 3), &[2, 2, 2]);
        assert_eq!(&*Dims::filled(1, 9), &[1; 9]);
    }
}
