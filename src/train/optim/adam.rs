//! Adam (L2 weight decay added to the gradient) and AdamW (decoupled decay), as PyTorch computes them.

use super::slots::{Real, SlotSpec, SlotStore};
use super::{chunk_len, densify, grad_data};
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;

/// Adam or AdamW. Per parameter, with `t` its own step count:
/// Adam `g += wd·w`, AdamW `w *= 1 − lr·wd`; then `m = β1·m + (1−β1)·g`,
/// `v = β2·v + (1−β2)·g²`, `w -= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps)`.
/// Row gradients are applied densely (zeros elsewhere: every row's moments decay).
pub(crate) struct Adam {
    name: &'static str,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    store: SlotStore,
}

impl Adam {
    /// Adam (`decoupled` false) or AdamW; the values were validated by the config.
    pub(crate) fn new(beta1: f64, beta2: f64, eps: f64, weight_decay: f64, decoupled: bool) -> Adam {
        let name = if decoupled { "adamw" } else { "adam" };
        let specs = vec![
            SlotSpec { name: "exp_avg", per_row: false, init: 0.0 },
            SlotSpec { name: "exp_avg_sq", per_row: false, init: 0.0 },
        ];
        Adam { name, beta1, beta2, eps, weight_decay, decoupled, store: SlotStore::new(name, specs, true) }
    }

    fn update_t<T: Real>(&mut self, pname: &str, param: &mut Tensor, grad: &Gradient, lr: f64) -> Result<()> {
        let g = densify(grad_data::<T>(self.name, pname, param, grad)?, param);
        let st = self.store.entry(pname, param)?;
        let w = param.host_data_mut::<T>()?;
        let t = st.step + 1;
        let bc1 = 1.0 - self.beta1.powf(t as f64);
        let bc2 = 1.0 - self.beta2.powf(t as f64);
        let (b1, b2) = (T::from_f64(self.beta1), T::from_f64(self.beta2));
        let (ob1, ob2) = (T::from_f64(1.0 - self.beta1), T::from_f64(1.0 - self.beta2));
        let (step_size, bc2_sqrt, eps) = (T::from_f64(lr / bc1), T::from_f64(bc2.sqrt()), T::from_f64(self.eps));
        let (l2, decay) = if self.decoupled {
            (T::from_f64(0.0), T::from_f64(1.0 - lr * self.weight_decay))
        } else {
            (T::from_f64(self.weight_decay), T::from_f64(1.0))
        };
        let c = chunk_len(w.len());
        let mut slots = st.slices::<T>()?;
        let v = slots.pop().expect("exp_avg_sq");
        let m = slots.pop().expect("exp_avg");
        let work: Vec<_> = w.chunks_mut(c).zip(m.chunks_mut(c)).zip(v.chunks_mut(c)).zip(g.chunks(c)).collect();
        super::rows::for_each_piece(work, |(((w, m), v), g)| {
            for (((w, m), v), &g) in w.iter_mut().zip(m).zip(v).zip(g) {
                *w = *w * decay;
                let g = g + l2 * *w;
                *m = b1 * *m + ob1 * g;
                *v = b2 * *v + ob2 * g * g;
                *w = *w - step_size * *m / (v.sqrt() / bc2_sqrt + eps);
            }
        });
        st.step = t;
        Ok(())
    }
}

super::impl_optimizer!(Adam, |s| s.name);
