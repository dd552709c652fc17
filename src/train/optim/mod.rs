//! Optimizers (SGD, Adam, AdamW, Adagrad, row-wise Adagrad, lazy Adam), learning-rate schedules and clipping.
//!
//! Arithmetic: per-element math runs in the parameter's dtype (f32 parameters get f32 math, as
//! PyTorch does; f64 parameters get f64), while per-step scalars (bias corrections, step sizes,
//! row-wise means) are computed in f64 and rounded once. Only f32 and f64 parameters are supported.
//!
//! State is created lazily on a parameter's first update, with the parameter's shape and dtype
//! (row-wise Adagrad: one value per row). Every slot lives in a [`Tensor`] so that
//! [`Optimizer::state`] hands out cheap snapshots: the next update copies a slot before writing it
//! if a snapshot still shares it (copy-on-write), so a checkpoint never sees later updates.

mod adagrad;
mod adam;
mod clip;
mod config;
mod lazy_adam;
mod rows;
mod rowwise_adagrad;
mod schedule;
mod sgd;
mod slots;

pub use clip::clip_grad_norm;
pub use config::OptimizerConfig;
pub(crate) use rows::coalesce_each;
pub use rows::coalesce_rows;
pub use schedule::LrSchedule;

use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;

/// A stateful optimizer: updates parameters in place from their gradients and keeps per-parameter
/// state (slots) keyed by parameter name.
pub trait Optimizer: Send {
    /// The optimizer's registry name (`"adam"`, `"rowwise_adagrad"`, ...).
    fn name(&self) -> &'static str;

    /// Updates `param` in place (through [`Tensor::host_data_mut`]) from its gradient at learning
    /// rate `lr`. Row gradients ([`Gradient::Rows`]) need not be coalesced: duplicates are summed
    /// here when the indices are not strictly ascending. Errors (nothing changes): a gradient
    /// whose dtype or shape does not match the parameter, a row index outside the table, a
    /// negative or non-finite `lr`, a parameter that is not f32/f64, or existing state whose
    /// shape or dtype does not match the parameter.
    fn update(&mut self, param_name: &str, param: &mut Tensor, grad: &Gradient, lr: f64) -> Result<()>;

    /// Every state tensor as `("<param>/<slot>", tensor)`, sorted by name. Slot names: SGD
    /// `momentum`; Adam/AdamW/lazy Adam `exp_avg`, `exp_avg_sq`, `step`; Adagrad `sum`; row-wise
    /// Adagrad `row_sum` (`[rows]`). `step` is an i64 scalar (shape `[]`); the others have the
    /// parameter's dtype. The tensors are snapshots: later updates do not change them.
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Replaces all state with `state()` output (bitwise); parameters not named start fresh.
    /// Unknown slot names, missing slots, wrong dtypes or inconsistent shapes are one error
    /// listing every difference, and leave the current state untouched. Shapes against the
    /// parameter itself are checked at its next update.
    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

/// The [`Optimizer`] impl every optimizer shares: the rate check, dispatch on the parameter's
/// dtype to the type's generic `update_t::<f32 | f64>`, and state through its `store`.
/// `|s| name` says how to get the optimizer's name from `s: &Self`.
macro_rules! impl_optimizer {
    ($ty:ty, |$s:ident| $name:expr) => {
        impl $crate::train::optim::Optimizer for $ty {
            fn name(&self) -> &'static str {
                let $s = self;
                $name
            }

            fn update(
                &mut self,
                param_name: &str,
                param: &mut $crate::tensor::Tensor,
                grad: &$crate::tensor::grad::Gradient,
                lr: f64,
            ) -> $crate::error::Result<()> {
                let name = $crate::train::optim::Optimizer::name(self);
                $crate::train::optim::check_lr(name, param_name, lr)?;
                match param.dtype() {
                    $crate::dtype::DType::F32 => self.update_t::<f32>(param_name, param, grad, lr),
                    $crate::dtype::DType::F64 => self.update_t::<f64>(param_name, param, grad, lr),
                    _ => Err($crate::train::optim::unsupported_dtype(name, param_name, param)),
                }
            }

            fn state(&self) -> Vec<(String, $crate::tensor::Tensor)> {
                self.store.state()
            }

            fn load_state(&mut self, state: &[(String, $crate::tensor::Tensor)]) -> $crate::error::Result<()> {
                self.store.load(state)
            }
        }
    };
}
use impl_optimizer;

/// Checks a learning rate given to `update`: finite and not negative.
fn check_lr(optimizer: &str, param_name: &str, lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(
            "lr",
            format!("{optimizer} update of `{param_name}`: learning rate must be finite and >= 0, given {lr}"),
        ))
    }
}

/// A gradient as host data, checked against its parameter.
enum GradData<'a, T: Clone> {
    /// Same shape as the parameter.
    Dense(std::borrow::Cow<'a, [T]>),
    /// Touched rows, strictly ascending and inside the table.
    Rows(rows::RowGrad<'a, T>),
}

/// Checks `grad` against `param` (dtype, shape, row range) and views it as host data.
fn grad_data<'a, T: slots::Real>(
    optimizer: &str,
    param_name: &str,
    param: &Tensor,
    grad: &'a Gradient,
) -> Result<GradData<'a, T>> {
    use crate::error::Error;
    match grad {
        Gradient::Dense(g) => {
            if g.dtype() != param.dtype() {
                return Err(Error::InvalidDtype {
                    arg: "grad",
                    msg: format!(
                        "{optimizer} update of `{param_name}`: gradient is {} but the parameter is {}",
                        g.dtype(),
                        param.dtype()
                    ),
                });
            }
            if g.shape() != param.shape() {
                return Err(Error::shape(
                    "grad",
                    format!(
                        "{optimizer} update of `{param_name}`: gradient shape {:?} differs from the parameter's {:?}",
                        g.shape(),
                        param.shape()
                    ),
                ));
            }
            Ok(GradData::Dense(rows::host_data::<T>(g)?))
        }
        Gradient::Rows { indices, rows } => {
            Ok(GradData::Rows(rows::row_grad::<T>(optimizer, param_name, param, indices, rows)?))
        }
    }
}

/// Elements per table row: the product of every dimension but the first (1 for scalars).
fn row_len(param: &Tensor) -> usize {
    param.shape().iter().skip(1).product()
}

/// The gradient as (row indices, row values) for optimizers that work row by row: row
/// gradients as they are, a dense gradient as every row of the table (`all_rows` holds the
/// indices then). Returns the indices, the values and the table's row count.
fn touched_rows<'g, T: Clone>(
    g: &'g GradData<'_, T>,
    param: &Tensor,
    all_rows: &'g mut Vec<i64>,
) -> (&'g [i64], &'g [T], usize) {
    let table_rows = param.shape().first().copied().unwrap_or(1);
    match g {
        GradData::Rows(r) => (&r.indices, &r.rows, table_rows),
        GradData::Dense(d) => {
            *all_rows = (0..table_rows as i64).collect();
            (all_rows.as_slice(), d, table_rows)
        }
    }
}

/// The gradient as a dense array the size of the parameter (rows scattered into zeros).
fn densify<'a, T: slots::Real>(g: GradData<'a, T>, param: &Tensor) -> std::borrow::Cow<'a, [T]> {
    match g {
        GradData::Dense(d) => d,
        GradData::Rows(r) => {
            let len = row_len(param);
            let mut out = vec![T::from_f64(0.0); param.numel()];
            for (k, &i) in r.indices.iter().enumerate() {
                let i = i as usize;
                out[i * len..(i + 1) * len].copy_from_slice(&r.rows[k * len..(k + 1) * len]);
            }
            std::borrow::Cow::Owned(out)
        }
    }
}

/// Rejects parameters whose dtype no optimizer computes in.
fn unsupported_dtype(optimizer: &str, param_name: &str, param: &Tensor) -> crate::error::Error {
    crate::error::Error::InvalidDtype {
        arg: "param",
        msg: format!("{optimizer} update of `{param_name}`: parameters must be f32 or f64, given {}", param.dtype()),
    }
}

/// Elements per parallel task for dense updates: everything at once when small.
fn chunk_len(n: usize) -> usize {
    if n < crate::runtime::PARALLEL_THRESHOLD { n.max(1) } else { 1 << 14 }
}
