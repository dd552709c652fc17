//! Row-wise Adagrad for embedding tables (ALGORITHMS.md §5; FBGEMM `rowwise_adagrad`, TorchRec): one
//! accumulator per row, touched rows only.

use super::rows::{Piece, for_each_piece, plan_pieces, prefetch_ahead, split_pieces};
use super::slots::{Real, SlotSpec, SlotStore};
use super::{grad_data, row_len, touched_rows};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;

const NAME: &str = "rowwise_adagrad";

/// Per touched row, with `D` elements per row (FBGEMM's CPU kernel, operation for operation):
/// L2 decay `g' = g + wd·w` (else `g' = g`); `G += Σ g'² / D`; `m = lr / (√G + eps)`;
/// `w = c·w − m·g` with `c = 1 − m·wd` (L2), `1 − lr·wd` (decoupled) or 1.
/// The row's mean square, `m` and `c` are computed in f64; `G` is stored and the row update
/// runs in the parameter's dtype. A dense gradient touches every row. Slot: `row_sum` `[rows]`.
pub(crate) struct RowwiseAdagrad {
    hyper: Hyper,
    store: SlotStore,
}

/// The hyper-parameters, copied into the parallel row loop.
#[derive(Debug, Clone, Copy)]
struct Hyper {
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
}

impl Hyper {
    /// Updates one row `w` (its accumulator `acc`) from its gradient `g`.
    #[inline]
    fn row<T: Real>(&self, w: &mut [T], acc: &mut T, g: &[T], lr: f64) {
        let l2 = if self.decoupled { 0.0 } else { self.weight_decay };
        let mut sq = 0.0f64;
        for (&w, &g) in w.iter().zip(g) {
            let g = g.to_f64() + l2 * w.to_f64();
            sq += g * g;
        }
        let d = w.len().max(1) as f64;
        *acc = T::from_f64(acc.to_f64() + sq / d);
        let m = lr / (acc.to_f64().sqrt() + self.eps);
        let c = if self.decoupled { 1.0 - lr * self.weight_decay } else { 1.0 - m * l2 };
        let (m, c) = (T::from_f64(m), T::from_f64(c));
        for (w, &g) in w.iter_mut().zip(g) {
            *w = c * *w - m * g;
        }
    }
}

impl RowwiseAdagrad {
    /// A row-wise Adagrad optimizer; the values were validated by the config.
    pub(crate) fn new(eps: f64, weight_decay: f64, decoupled: bool) -> RowwiseAdagrad {
        let specs = vec![SlotSpec { name: "row_sum", per_row: true, init: 0.0 }];
        RowwiseAdagrad { hyper: Hyper { eps, weight_decay, decoupled }, store: SlotStore::new(NAME, specs, false) }
    }

    fn update_t<T: Real>(&mut self, name: &str, param: &mut Tensor, grad: &Gradient, lr: f64) -> Result<()> {
        let g = grad_data::<T>(NAME, name, param, grad)?;
        let len = row_len(param);
        // A dense gradient touches every row.
        let mut all_rows = Vec::new();
        let (indices, rows, table_rows) = touched_rows(&g, param, &mut all_rows);
        let st = self.store.entry(name, param)?;
        let w = param.host_data_mut::<T>()?;
        let acc = st.slices::<T>()?.pop().expect("row_sum");
        let pieces = plan_pieces(indices, table_rows, len);
        let work: Vec<(&Piece, &mut [T], &mut [T])> = pieces
            .iter()
            .zip(split_pieces(w, len, &pieces))
            .zip(split_pieces(acc, 1, &pieces))
            .map(|((p, w), a)| (p, w, a))
            .collect();
        let hyper = self.hyper;
        for_each_piece(work, |(p, w, acc)| {
            for k in p.pos.clone() {
                prefetch_ahead(p, indices, k, &[(&*w, len), (&*acc, 1)]);
                let r = indices[k] as usize - p.first;
                hyper.row(&mut w[r * len..(r + 1) * len], &mut acc[r], &rows[k * len..(k + 1) * len], lr);
            }
        });
        Ok(())
    }
}

super::impl_optimizer!(RowwiseAdagrad, |_s| NAME);
