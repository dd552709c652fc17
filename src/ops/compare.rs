//! Comparisons (eq, ne, lt, le, gt, ge → bool), logical and/or/not, and `where`.

use super::OpDef;

/// This family's ops.
pub static OPS: &[&OpDef] = &[];
