//! SGD with heavy-ball or Nesterov momentum and L2 weight decay (PyTorch `torch.optim.SGD`, no dampening).

use super::rows::{for_each_piece, plan_pieces, prefetch_ahead, split_pieces};
use super::slots::{Real, SlotSpec, SlotStore};
use super::{GradData, chunk_len, densify, grad_data, row_len};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;

const NAME: &str = "sgd";

/// `d = g + wd·w`; with momentum `v = μv + d` and `d = v` (Nesterov: `d = d + μv`); `w -= lr·d`.
/// Slot `momentum` exists only when `μ ≠ 0`.
pub(crate) struct Sgd {
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    store: SlotStore,
}

impl Sgd {
    /// An SGD optimizer; the values were validated by the config.
    pub(crate) fn new(momentum: f64, nesterov: bool, weight_decay: f64) -> Sgd {
        let specs =
            if momentum != 0.0 { vec![SlotSpec { name: "momentum", per_row: false, init: 0.0 }] } else { vec![] };
        Sgd { momentum, nesterov, weight_decay, store: SlotStore::new(NAME, specs, false) }
    }

    fn update_t<T: Real>(&mut self, name: &str, param: &mut Tensor, grad: &Gradient, lr: f64) -> Result<()> {
        let g = grad_data::<T>(NAME, name, param, grad)?;
        let lr = T::from_f64(lr);
        let (mu, wd, nesterov) = (T::from_f64(self.momentum), T::from_f64(self.weight_decay), self.nesterov);
        if self.momentum == 0.0 && self.weight_decay == 0.0 {
            // Plain SGD moves only the touched rows: the dense update adds exactly 0 elsewhere.
            if let GradData::Rows(r) = &g {
                let (len, table_rows) = (row_len(param), param.shape()[0]);
                let w = param.host_data_mut::<T>()?;
                let pieces = plan_pieces(&r.indices, table_rows, len);
                let parts = split_pieces(w, len, &pieces);
                for_each_piece(pieces.iter().zip(parts).collect(), |(p, w)| {
                    for k in p.pos.clone() {
                        prefetch_ahead(p, &r.indices, k, &[(&*w, len)]);
                        let at = (r.indices[k] as usize - p.first) * len;
                        for (w, &g) in w[at..at + len].iter_mut().zip(&r.rows[k * len..(k + 1) * len]) {
                            *w = *w - lr * g;
                        }
                    }
                });
                return Ok(());
            }
        }
        let g = densify(g, param);
        let st = self.store.entry(name, param)?;
        let w = param.host_data_mut::<T>()?;
        let c = chunk_len(w.len());
        let mut slots = st.slices::<T>()?;
        match slots.pop() {
            None => for_each_piece(w.chunks_mut(c).zip(g.chunks(c)).collect(), |(w, g)| {
                for (w, &g) in w.iter_mut().zip(g) {
                    *w = *w - lr * (g + wd * *w);
                }
            }),
            Some(v) => {
                for_each_piece(w.chunks_mut(c).zip(v.chunks_mut(c)).zip(g.chunks(c)).collect(), |((w, v), g)| {
                    for ((w, v), &g) in w.iter_mut().zip(v).zip(g) {
                        let d = g + wd * *w;
                        *v = mu * *v + d;
                        let step = if nesterov { d + mu * *v } else { *v };
                        *w = *w - lr * step;
                    }
                })
            }
        }
        Ok(())
    }
}

super::impl_optimizer!(Sgd, |_s| NAME);
