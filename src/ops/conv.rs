//! Convolution and pooling: conv2d, max_pool2d, avg_pool2d and their backward ops.

use super::OpDef;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
