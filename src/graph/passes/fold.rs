//! Constant folding: pure op nodes whose inputs are all constants are evaluated once and become constants (never random or side-effecting ops, never parameters).

use super::rewrite::Rewriter;
use crate::error::Result;
use crate::graph::infer::at_node;
use crate::graph::ir::{Graph, NodeId, NodeKind};
use crate::ops::dispatch;
use crate::tensor::Tensor;

/// Replaces every constant-only pure subgraph by its value.
pub fn fold_constants(graph: &Graph) -> Result<Graph> {
    let mut rw = Rewriter::new(graph);
    let mut folded = 0;
    for (i, node) in graph.nodes().iter().enumerate() {
        let id = NodeId(i);
        let NodeKind::Op { op, attrs } = &node.kind else {
            rw.copy(id)?;
            continue;
        };
        let ins = rw.inputs(id)?;
        let consts: Option<Vec<Tensor>> = ins
            .iter()
            .map(|v| match &rw.new.node(rw.new.value(*v).node).kind {
                NodeKind::Const { tensor } => Some(tensor.clone()),
                _ => None,
            })
            .collect();
        match consts {
            Some(ts) if op.pure && !ts.is_empty() => {
                let refs: Vec<&Tensor> = ts.iter().collect();
                let outs = dispatch::apply(op, &refs, attrs).map_err(|e| at_node(&graph.describe(id), e))?;
                for (o, t) in node.outputs.iter().zip(outs) {
                    let ty = graph.value(*o).ty.clone();
                    let n = rw.new.push(NodeKind::Const { tensor: t }, vec![], vec![ty])?;
                    let v = rw.new.node(n).outputs[0];
                    rw.alias(*o, v);
                }
                folded += 1;
            }
            _ => {
                rw.copy(id)?;
            }
        }
    }
    rw.finish(format!("fold: evaluated {folded} constant-only op nodes"))
}
