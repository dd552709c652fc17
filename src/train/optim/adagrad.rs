//! Adagrad with an initial accumulator and L2 weight decay (PyTorch `torch.optim.Adagrad`, no lr decay).

use super::rows::{for_each_piece, plan_pieces, prefetch_ahead, split_pieces};
use super::slots::{Real, SlotSpec, SlotStore};
use super::{GradData, chunk_len, densify, grad_data, row_len};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;

const NAME: &str = "adagrad";

/// `g += wd·w; sum += g²; w -= lr · g / (√sum + eps)`; slot `sum` starts at `initial_accumulator`.
pub(crate) struct Adagrad {
    eps: f64,
    weight_decay: f64,
    store: SlotStore,
}

/// One element's update.
#[inline(always)]
fn step<T: Real>(w: &mut T, s: &mut T, g: T, lr: T, wd: T, eps: T) {
    let g = g + wd * *w;
    *s = *s + g * g;
    *w = *w - lr * g / (s.sqrt() + eps);
}

impl Adagrad {
    /// An Adagrad optimizer; the values were validated by the config.
    pub(crate) fn new(eps: f64, initial_accumulator: f64, weight_decay: f64) -> Adagrad {
        let specs = vec![SlotSpec { name: "sum", per_row: false, init: initial_accumulator }];
        Adagrad { eps, weight_decay, store: SlotStore::new(NAME, specs, false) }
    }

    fn update_t<T: Real>(&mut self, name: &str, param: &mut Tensor, grad: &Gradient, lr: f64) -> Result<()> {
        let g = grad_data::<T>(NAME, name, param, grad)?;
        let (lr, wd, eps) = (T::from_f64(lr), T::from_f64(self.weight_decay), T::from_f64(self.eps));
        if self.weight_decay == 0.0 {
            // Without decay a zero gradient changes neither `sum` nor `w`, so only the touched
            // rows need visiting (the result equals the dense update exactly).
            if let GradData::Rows(r) = &g {
                let (len, table_rows) = (row_len(param), param.shape()[0]);
                let st = self.store.entry(name, param)?;
                let w = param.host_data_mut::<T>()?;
                let s = st.slices::<T>()?.pop().expect("sum");
                let pieces = plan_pieces(&r.indices, table_rows, len);
                let work: Vec<_> =
                    pieces.iter().zip(split_pieces(w, len, &pieces)).zip(split_pieces(s, len, &pieces)).collect();
                for_each_piece(work, |((p, w), s)| {
                    for k in p.pos.clone() {
                        prefetch_ahead(p, &r.indices, k, &[(&*w, len), (&*s, len)]);
                        let at = (r.indices[k] as usize - p.first) * len;
                        let g = &r.rows[k * len..(k + 1) * len];
                        for ((w, s), &g) in w[at..at + len].iter_mut().zip(&mut s[at..at + len]).zip(g) {
                            step(w, s, g, lr, wd, eps);
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
        let s = st.slices::<T>()?.pop().expect("sum");
        for_each_piece(w.chunks_mut(c).zip(s.chunks_mut(c)).zip(g.chunks(c)).collect(), |((w, s), g)| {
            for ((w, s), &g) in w.iter_mut().zip(s).zip(g) {
                step(w, s, g, lr, wd, eps);
            }
        });
        Ok(())
    }
}

super::impl_optimizer!(Adagrad, |_s| NAME);
