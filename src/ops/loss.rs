//! Losses: mse, l1, cross_entropy, nll, binary_cross_entropy_with_logits.

use super::OpDef;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
