//! Lazy Adam for embedding tables (TF Addons `LazyAdam`, PyTorch `SparseAdam`): only touched rows
//! and their moments change.

use super::rows::{for_each_piece, plan_pieces, prefetch_ahead, split_pieces};
use super::slots::{Real, SlotSpec, SlotStore};
use super::{grad_data, row_len, touched_rows};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;

const NAME: &str = "lazy_adam";

/// With `t` the parameter's own update count and `α = lr·√(1−β2ᵗ)/(1−β1ᵗ)` (f64), per touched
/// element: `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`, `w -= α·m/(√v + eps)` (eps outside the
/// bias correction, as TF and SparseAdam place it). Untouched rows, and their `exp_avg` /
/// `exp_avg_sq`, stay bitwise unchanged. A dense gradient touches every row.
pub(crate) struct LazyAdam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    store: SlotStore,
}

impl LazyAdam {
    /// A lazy Adam optimizer; the values were validated by the config.
    pub(crate) fn new(beta1: f64, beta2: f64, eps: f64) -> LazyAdam {
        let specs = vec![
            SlotSpec { name: "exp_avg", per_row: false, init: 0.0 },
            SlotSpec { name: "exp_avg_sq", per_row: false, init: 0.0 },
        ];
        LazyAdam { beta1, beta2, eps, store: SlotStore::new(NAME, specs, true) }
    }

    fn update_t<T: Real>(&mut self, name: &str, param: &mut Tensor, grad: &Gradient, lr: f64) -> Result<()> {
        let g = grad_data::<T>(NAME, name, param, grad)?;
        let len = row_len(param);
        // A dense gradient touches every row.
        let mut all_rows = Vec::new();
        let (indices, rows, table_rows) = touched_rows(&g, param, &mut all_rows);
        let st = self.store.entry(name, param)?;
        let w = param.host_data_mut::<T>()?;
        let t = st.step + 1;
        let alpha = lr * (1.0 - self.beta2.powf(t as f64)).sqrt() / (1.0 - self.beta1.powf(t as f64));
        let (alpha, eps) = (T::from_f64(alpha), T::from_f64(self.eps));
        let (b1, b2) = (T::from_f64(self.beta1), T::from_f64(self.beta2));
        let (ob1, ob2) = (T::from_f64(1.0 - self.beta1), T::from_f64(1.0 - self.beta2));
        let mut slots = st.slices::<T>()?;
        let v = slots.pop().expect("exp_avg_sq");
        let m = slots.pop().expect("exp_avg");
        let pieces = plan_pieces(indices, table_rows, len);
        let work: Vec<_> = pieces
            .iter()
            .zip(split_pieces(w, len, &pieces))
            .zip(split_pieces(m, len, &pieces))
            .zip(split_pieces(v, len, &pieces))
            .map(|(((p, w), m), v)| (p, w, m, v))
            .collect();
        for_each_piece(work, |(p, w, m, v): (&super::rows::Piece, &mut [T], &mut [T], &mut [T])| {
            for k in p.pos.clone() {
                prefetch_ahead(p, indices, k, &[(&*w, len), (&*m, len), (&*v, len)]);
                let at = (indices[k] as usize - p.first) * len;
                let g = &rows[k * len..(k + 1) * len];
                let cells = w[at..at + len].iter_mut().zip(&mut m[at..at + len]).zip(&mut v[at..at + len]);
                for (((w, m), v), &g) in cells.zip(g) {
                    *m = b1 * *m + ob1 * g;
                    *v = b2 * *v + ob2 * g * g;
                    *w = *w - alpha * *m / (v.sqrt() + eps);
                }
            }
        });
        st.step = t;
        Ok(())
    }
}

super::impl_optimizer!(LazyAdam, |_s| NAME);
