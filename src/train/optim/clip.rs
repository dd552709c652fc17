//! Gradient clipping by global L2 norm (PyTorch `clip_grad_norm_`), over dense and row gradients.

use super::rows::{coalesce_each, host_data};
use super::slots::Real;
use crate::backend::cpu::elementwise::par_chunks;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;
use rayon::prelude::*;

/// Scales all gradients in place so that their global L2 norm is at most `max_norm`; returns the
/// norm before clipping. Row gradients count each table row once: duplicate indices are
/// coalesced first (and stay coalesced in `grads`). As in PyTorch the factor is
/// `max_norm / (norm + 1e-6)`, applied only when below 1. Sums of squares are in f64 and in a
/// fixed order, so the result is reproducible. Errors, leaving `grads` untouched: `max_norm`
/// not finite and > 0, a gradient that is not f32/f64, a non-finite norm (`Error::NonFinite`, naming the first
/// gradient that is not finite).
pub fn clip_grad_norm(grads: &mut [Gradient], max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::range("max_norm", format!("clip_grad_norm: must be finite and > 0, given {max_norm}")));
    }
    let coalesced = coalesce_each(grads)?;
    let mut total = 0.0f64;
    for (k, (g, merged)) in grads.iter().zip(&coalesced).enumerate() {
        let values = match (merged, g) {
            (Some((_, rows)), _) | (None, Gradient::Rows { rows, .. }) => rows,
            (None, Gradient::Dense(t)) => t,
        };
        let sq = sum_squares(values, k)?;
        if !sq.is_finite() {
            return Err(Error::NonFinite(format!(
                "clip_grad_norm: gradient {k} has a non-finite norm ({}); nothing clipped",
                sq.sqrt()
            )));
        }
        total += sq;
    }
    let norm = total.sqrt();
    if !norm.is_finite() {
        return Err(Error::NonFinite(format!("clip_grad_norm: the global norm overflows ({norm}); nothing clipped")));
    }
    for (g, merged) in grads.iter_mut().zip(coalesced) {
        if let Some((indices, rows)) = merged {
            *g = Gradient::Rows { indices, rows };
        }
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            let t = match g {
                Gradient::Dense(t) | Gradient::Rows { rows: t, .. } => t,
            };
            match t.dtype() {
                DType::F32 => scale::<f32>(t, coef)?,
                _ => scale::<f64>(t, coef)?,
            }
        }
    }
    Ok(norm)
}

/// Σ x² in f64, chunk by chunk in a fixed order.
fn sum_squares(t: &Tensor, k: usize) -> Result<f64> {
    match t.dtype() {
        DType::F32 => sum_squares_t::<f32>(t),
        DType::F64 => sum_squares_t::<f64>(t),
        other => Err(Error::InvalidDtype {
            arg: "grads",
            msg: format!("clip_grad_norm: gradient {k} is {other}, expected f32 or f64"),
        }),
    }
}

fn sum_squares_t<T: Real>(t: &Tensor) -> Result<f64> {
    let data = host_data::<T>(t)?;
    let part = |c: &[T]| c.iter().map(|&x| x.to_f64() * x.to_f64()).sum::<f64>();
    if data.len() < PARALLEL_THRESHOLD {
        return Ok(part(&data));
    }
    // Partial sums are collected in chunk order, then added in that order: reproducible.
    let parts: Vec<f64> = install(|| data.par_chunks(1 << 14).map(part).collect());
    Ok(parts.iter().sum())
}

fn scale<T: Real>(t: &mut Tensor, coef: f64) -> Result<()> {
    let c = T::from_f64(coef);
    par_chunks(t.host_data_mut::<T>()?, |_, chunk| chunk.iter_mut().for_each(|x| *x = *x * c));
    Ok(())
}
