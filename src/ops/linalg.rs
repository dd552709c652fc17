//! Matrix products: matmul with batch broadcasting, bmm, linear.

use super::OpDef;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
