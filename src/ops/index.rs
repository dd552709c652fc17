//! Indexing ops (gather rows, scatter-add) and the row-gradient helpers autograd needs.

use super::OpDef;
use crate::backend::cpu::elementwise::{host_slice, new_host};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::with_dtype;

/// `base` with `rows[k]` added to row `indices[k]` (i64) for every k; repeated indices add.
/// Used to densify row gradients.
pub fn index_add_rows(base: &Tensor, indices: &Tensor, rows: &Tensor) -> Result<Tensor> {
    if indices.dtype() != DType::I64 || indices.ndim() != 1 {
        return Err(Error::invalid(
            "indices",
            format!("index_add_rows needs 1-D i64 indices, given {:?} {}", indices.shape(), indices.dtype()),
        ));
    }
    let n_rows = base.shape().first().copied().unwrap_or(0);
    let width: usize = base.shape().iter().skip(1).product();
    if rows.shape().first() != Some(&indices.numel())
        || rows.numel() != indices.numel() * width
        || rows.dtype() != base.dtype()
    {
        return Err(Error::shape(
            "rows",
            format!(
                "rows {:?} {} do not fit {} indices into {:?} {}",
                rows.shape(),
                rows.dtype(),
                indices.numel(),
                base.shape(),
                base.dtype()
            ),
        ));
    }
    let idx = indices.raw_contiguous()?.to_vec::<i64>()?;
    if let Some(&bad) = idx.iter().find(|&&i| i < 0 || i as usize >= n_rows) {
        return Err(Error::range("indices", format!("row index {bad} for a table of {n_rows} rows")));
    }
    let (base, rows) = (base.raw_contiguous()?, rows.raw_contiguous()?);
    with_dtype!(base.dtype(), T => {
        let (b, r) = (host_slice::<T>(&base)?, host_slice::<T>(&rows)?);
        let (bo, ro) = (base.layout().offset(), rows.layout().offset());
        new_host::<T>(base.shape(), |out| {
            out.copy_from_slice(&b[bo..bo + out.len()]);
            for (k, &i) in idx.iter().enumerate() {
                let dst = &mut out[i as usize * width..(i as usize + 1) * width];
                for (d, &s) in dst.iter_mut().zip(&r[ro + k * width..ro + (k + 1) * width]) {
                    *d = crate::dtype::convert::<f64, T>(d.to_f64() + s.to_f64());
                }
            }
        })
    })
}

/// `a` and `b` joined along dimension 0 (same trailing shape and dtype).
pub fn concat_rows(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape().get(1..) != b.shape().get(1..) || a.dtype() != b.dtype() {
        return Err(Error::shape(
            "b",
            format!("cannot join {:?} {} and {:?} {} along dimension 0", a.shape(), a.dtype(), b.shape(), b.dtype()),
        ));
    }
    let mut shape = a.shape().to_vec();
    shape[0] += b.shape()[0];
    let (a, b) = (a.raw_contiguous()?, b.raw_contiguous()?);
    with_dtype!(a.dtype(), T => {
        let (sa, sb) = (host_slice::<T>(&a)?, host_slice::<T>(&b)?);
        let (na, oa, ob) = (a.numel(), a.layout().offset(), b.layout().offset());
        new_host::<T>(&shape, |out| {
            out[..na].copy_from_slice(&sa[oa..oa + na]);
            let nb = out.len() - na;
            out[na..].copy_from_slice(&sb[ob..ob + nb]);
        })
    })
}

use crate::dtype::Element;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
