//! Neural-net ops: softmax, log_softmax, layer_norm, batch_norm, dropout.

use super::OpDef;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
