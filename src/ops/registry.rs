//! Name lookup over every op family's `OPS` list.

use super::OpDef;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The op lists of every family, in registry order.
const FAMILIES: &[&[&OpDef]] = &[
    super::unary::OPS,
    super::activation::OPS,
    super::binary::OPS,
    super::compare::OPS,
    super::reduce::OPS,
    super::nn::OPS,
    super::loss::OPS,
    super::linalg::OPS,
    super::conv::OPS,
    super::movement::OPS,
    super::structure::OPS,
    super::index::OPS,
    super::fields::OPS,
    super::control::OPS,
];

static BY_NAME: LazyLock<HashMap<&'static str, &'static OpDef>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for op in FAMILIES.iter().flat_map(|f| f.iter()) {
        let previous = map.insert(op.name, *op);
        assert!(previous.is_none(), "op `{}` is defined twice", op.name);
    }
    map
});

/// Every op, sorted by name.
pub fn all_ops() -> Vec<&'static OpDef> {
    let mut ops: Vec<&'static OpDef> = BY_NAME.values().copied().collect();
    ops.sort_by_key(|o| o.name);
    ops
}

/// The op called `name`, or an error listing near names.
pub fn find_op(name: &str) -> Result<&'static OpDef> {
    BY_NAME.get(name).copied().ok_or_else(|| {
        let mut near: Vec<&str> = BY_NAME.keys().filter(|k| k.contains(name) || name.contains(*k)).copied().collect();
        near.sort();
        Error::NotFound(format!(
            "no op named `{name}`{}",
            if near.is_empty() { String::new() } else { format!(" (similar: {near:?})") }
        ))
    })
}
