//! Dead-code elimination: drops op and constant nodes that no output depends on (inputs and parameters stay, so feeds keep working).

use super::rewrite::Rewriter;
use crate::error::Result;
use crate::graph::ir::{Graph, NodeId, NodeKind};

/// Removes every op and constant node unreachable from the outputs.
pub fn dce(graph: &Graph) -> Result<Graph> {
    let mut live = vec![false; graph.nodes().len()];
    let mut stack: Vec<NodeId> = graph.outputs().iter().map(|(_, v)| graph.value(*v).node).collect();
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut live[n.0], true) {
            continue;
        }
        stack.extend(graph.node(n).inputs.iter().map(|v| graph.value(*v).node));
    }
    let mut rw = Rewriter::new(graph);
    let mut removed = 0;
    for (i, node) in graph.nodes().iter().enumerate() {
        let keep = live[i] || matches!(node.kind, NodeKind::Input { .. } | NodeKind::Param { .. });
        if keep {
            rw.copy(NodeId(i))?;
        } else {
            removed += 1;
        }
    }
    let before = graph.nodes().len();
    rw.finish(format!("dce: removed {removed} unreachable nodes ({before} -> {} nodes)", before - removed))
}
