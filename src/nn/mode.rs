//! Training versus inference mode of a built graph: rewrites the `training` attribute of its batch-norm and dropout nodes.

use crate::error::Result;
use crate::graph::{Graph, NodeKind};
use crate::ops::{Attr, Attrs};

/// Returns a copy of `graph` whose `batch_norm`, `batch_norm_backward` and `dropout` nodes
/// run in training (`true`) or inference (`false`) mode; everything else, parameter values
/// included, is unchanged. Inference batch norm reads the running statistics the graph holds
/// (write the fetched `update/...` outputs into them first) and inference dropout is the
/// identity. Returns how many nodes changed alongside the graph.
pub fn set_training(graph: &Graph, training: bool) -> Result<(Graph, usize)> {
    let mut g = graph.clone();
    let mut changed = 0;
    for node in &mut g.nodes {
        let NodeKind::Op { op, attrs } = &mut node.kind else { continue };
        if !op.attrs.iter().any(|s| s.name == "training")
            || !["batch_norm", "batch_norm_backward", "dropout"].contains(&op.name)
        {
            continue;
        }
        if attrs.bool("training") == training {
            continue;
        }
        let pairs: Vec<(&str, Attr)> =
            attrs.pairs().map(|(n, v)| (n, if n == "training" { Attr::Bool(training) } else { v.clone() })).collect();
        *attrs = Attrs::resolve(op.name, op.attrs, &pairs)?;
        changed += 1;
    }
    Ok((g, changed))
}
