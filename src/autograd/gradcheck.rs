//! Gradient checking: analytic gradients from `backward` against central finite differences in f64.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::tensor::Tensor;

/// Compares the gradients of `f` at `inputs` (f64 tensors) with central differences of
/// step `eps`. The scalar checked is `Σ f(x) ⊙ r` for a fixed random `r`, so every output
/// element matters. Returns the largest error over all input elements, measured as
/// `|analytic − numeric| / max(|analytic|, |numeric|, 1)`.
pub fn gradcheck(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor], eps: f64) -> Result<f64> {
    if let Some(t) = inputs.iter().find(|t| t.dtype() != DType::F64) {
        return Err(Error::InvalidDtype {
            arg: "inputs",
            msg: format!("gradcheck needs f64 inputs, given {}", t.dtype()),
        });
    }
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach()).collect();
    leaves.iter().for_each(|t| {
        t.set_requires_grad(true);
    });
    let out = f(&leaves)?;
    let r = Tensor::rand_uniform(out.shape(), 0.5, 1.5, DType::F64, out.device(), &mut Generator::new(7))?;
    let project = |o: &Tensor| -> Result<f64> { o.detach().mul(&r)?.sum_all()?.item() };
    out.mul(&r)?.sum_all()?.backward()?;

    let mut worst = 0.0f64;
    for (k, leaf) in leaves.iter().enumerate() {
        let analytic = match leaf.grad()? {
            Some(g) => g.raw_contiguous()?.to_vec::<f64>()?,
            None => vec![0.0; leaf.numel()],
        };
        let base = leaf.raw_contiguous()?.to_vec::<f64>()?;
        for i in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += delta;
                let mut args: Vec<Tensor> = inputs.iter().map(|t| t.detach()).collect();
                args[k] = Tensor::from_slice(&v, leaf.shape())?;
                project(&crate::autograd::no_grad(|| f(&args))?)
            };
            let numeric = (eval(eps)? - eval(-eps)?) / (2.0 * eps);
            let err = (analytic[i] - numeric).abs() / analytic[i].abs().max(numeric.abs()).max(1.0);
            worst = worst.max(err);
        }
    }
    Ok(worst)
}
