//! Structure ops: concat, stack, split, pad.

use super::OpDef;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
