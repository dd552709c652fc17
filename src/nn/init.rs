//! Parameter initialisers shared by the layers, all drawing from the caller's `Generator` in row-major order.

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::rng::Generator;
use crate::tensor::Tensor;

/// How a weight with fan-in `fan_in` is initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// U(−1/√fan_in, 1/√fan_in): PyTorch's default for `nn.Linear` and `nn.Conv2d`
    /// (`kaiming_uniform_` with a = √5).
    KaimingUniform,
    /// N(0, √(2/fan_in)): He et al. 2015, for ReLU networks.
    HeNormal,
}

impl Init {
    /// The initialiser named by an attribute value (`"kaiming_uniform"` or `"he_normal"`).
    pub fn parse(name: &str) -> Result<Init> {
        match name {
            "kaiming_uniform" => Ok(Init::KaimingUniform),
            "he_normal" => Ok(Init::HeNormal),
            other => Err(Error::invalid(
                "attrs",
                format!("`init` must be \"kaiming_uniform\" or \"he_normal\", given {other:?}"),
            )),
        }
    }

    /// A tensor of `shape` for a weight whose outputs each read `fan_in` inputs.
    pub fn tensor(self, shape: &[usize], fan_in: usize, dtype: DType, rng: &mut Generator) -> Result<Tensor> {
        let f = fan_in.max(1) as f64;
        match self {
            Init::KaimingUniform => {
                let bound = 1.0 / f.sqrt();
                Tensor::rand_uniform(shape, -bound, bound, dtype, Device::Cpu, rng)
            }
            Init::HeNormal => Tensor::rand_normal(shape, 0.0, (2.0 / f).sqrt(), dtype, Device::Cpu, rng),
        }
    }
}

/// Zeros (biases, shifts, running means).
pub fn zeros(shape: &[usize], dtype: DType) -> Result<Tensor> {
    Tensor::zeros(shape, dtype, Device::Cpu)
}

/// Ones (scales, running variances).
pub fn ones(shape: &[usize], dtype: DType) -> Result<Tensor> {
    Tensor::ones(shape, dtype, Device::Cpu)
}

/// The float dtype of a layer input, or an error naming the layer's input.
pub fn float_input(dtype: DType, arg: &str) -> Result<DType> {
    if dtype.is_float() {
        Ok(dtype)
    } else {
        Err(Error::InvalidDtype { arg: "inputs", msg: format!("`{arg}` must be a float tensor, given {dtype}") })
    }
}
