//! im2col / col2im for 2-D convolution: unfold input windows into a matrix so a convolution is one GEMM.

use num_traits::Float;

/// The geometry of a 2-D window operation over one image of `c` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geom {
    /// Channels (of one group).
    pub c: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Strides (height, width).
    pub stride: (usize, usize),
    /// Zero padding (height, width).
    pub pad: (usize, usize),
    /// Dilation (height, width).
    pub dil: (usize, usize),
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Geom {
    /// Rows of the column matrix: `c * kh * kw`.
    pub fn col_rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the column matrix: `oh * ow`.
    pub fn col_cols(&self) -> usize {
        self.oh * self.ow
    }
}

/// The output positions `lo..hi` whose input coordinate `o * stride + k_off - pad` lies in
/// `0..in_len`; the others read padding. Computing the range once per row keeps bounds
/// tests out of the inner loops.
pub fn valid_range(out_len: usize, in_len: usize, k_off: usize, pad: usize, stride: usize) -> (usize, usize) {
    let start = k_off as isize - pad as isize;
    let s = stride as isize;
    let lo = if start >= 0 { 0 } else { ((-start + s - 1) / s) as usize };
    let last = in_len as isize - 1 - start;
    let hi = if last < 0 { 0 } else { out_len.min((last / s) as usize + 1) };
    (lo.min(hi), hi)
}

/// Input coordinate of output position `o` for kernel offset `k_off` (valid only inside [`valid_range`]).
#[inline(always)]
fn src(o: usize, stride: usize, k_off: usize, pad: usize) -> usize {
    o * stride + k_off - pad
}

/// Unfolds `x` (`c × h × w`, contiguous) into `col` (`c·kh·kw × oh·ow`, row-major):
/// `col[(ci·kh + i)·kw + j, y·ow + z] = x[ci, y·sh + i·dh − ph, z·sw + j·dw − pw]`, zero outside.
pub fn im2col<T: Float>(x: &[T], g: &Geom, col: &mut [T]) {
    let (sh, sw) = g.stride;
    let (ph, pw) = g.pad;
    let (dh, dw) = g.dil;
    let mut rows = col.chunks_exact_mut(g.col_cols());
    for ci in 0..g.c {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (ylo, yhi) = valid_range(g.oh, g.h, i * dh, ph, sh);
            for j in 0..g.kw {
                let row = rows.next().expect("col has c*kh*kw rows");
                let (zlo, zhi) = valid_range(g.ow, g.w, j * dw, pw, sw);
                row[..ylo * g.ow].fill(T::zero());
                row[yhi * g.ow..].fill(T::zero());
                for y in ylo..yhi {
                    let out = &mut row[y * g.ow..(y + 1) * g.ow];
                    out[..zlo].fill(T::zero());
                    out[zhi..].fill(T::zero());
                    let line = &plane[src(y, sh, i * dh, ph) * g.w..];
                    if zlo < zhi {
                        let x0 = src(zlo, sw, j * dw, pw);
                        if sw == 1 {
                            out[zlo..zhi].copy_from_slice(&line[x0..x0 + (zhi - zlo)]);
                        } else {
                            for (k, o) in out[zlo..zhi].iter_mut().enumerate() {
                                *o = line[x0 + k * sw];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry back into the input position it was
/// read from (`dx` is `c × h × w`, contiguous; the caller zeroes it first).
pub fn col2im<T: Float>(col: &[T], g: &Geom, dx: &mut [T]) {
    let (sh, sw) = g.stride;
    let (ph, pw) = g.pad;
    let (dh, dw) = g.dil;
    let mut rows = col.chunks_exact(g.col_cols());
    for ci in 0..g.c {
        let plane = &mut dx[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (ylo, yhi) = valid_range(g.oh, g.h, i * dh, ph, sh);
            for j in 0..g.kw {
                let row = rows.next().expect("col has c*kh*kw rows");
                let (zlo, zhi) = valid_range(g.ow, g.w, j * dw, pw, sw);
                if zlo >= zhi {
                    continue;
                }
                let x0 = src(zlo, sw, j * dw, pw);
                for y in ylo..yhi {
                    let src_row = &row[y * g.ow + zlo..y * g.ow + zhi];
                    let line = &mut plane[src(y, sh, i * dh, ph) * g.w..];
                    if sw == 1 {
                        for (d, &v) in line[x0..x0 + src_row.len()].iter_mut().zip(src_row) {
                            *d = *d + v;
                        }
                    } else {
                        for (k, &v) in src_row.iter().enumerate() {
                            line[x0 + k * sw] = line[x0 + k * sw] + v;
                        }
                    }
                }
            }
        }
    }
}
