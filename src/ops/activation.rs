//! Activation functions: relu, leaky_relu, gelu, silu, softplus, sigmoid, tanh.

use super::OpDef;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
