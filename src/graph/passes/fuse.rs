//! Operator fusion: chains of pointwise ops over one shape become one fused node that makes a single pass over memory (ALGORITHMS.md §7).

use super::rewrite::Rewriter;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::dim::ValueType;
use crate::graph::ir::{Graph, NodeId, NodeKind, ValueId};
use crate::ops::fused::{FusedProgram, FusedStep, Reg};
use std::collections::HashMap;
use std::sync::Arc;

/// Most ops in one fused node (TorchInductor's `max_fusion_size`).
pub const MAX_FUSION_SIZE: usize = 64;

/// A node fusion may take: a single-output op with a pointwise body on f32/f64 values.
pub(super) fn fusable(g: &Graph, n: NodeId) -> Option<&ValueType> {
    let node = g.node(n);
    let NodeKind::Op { op, .. } = &node.kind else { return None };
    op.pointwise?;
    if node.outputs.len() != 1 {
        return None;
    }
    let ty = &g.value(node.outputs[0]).ty;
    let float = |t: &ValueType| matches!(t.dtype, DType::F32 | DType::F64);
    (float(ty) && node.inputs.iter().all(|v| g.value(*v).ty.dtype == ty.dtype)).then_some(ty)
}

/// Groups of nodes to fuse, each in topological order.
fn groups(g: &Graph) -> Vec<Vec<NodeId>> {
    let mut group_of: Vec<Option<usize>> = vec![None; g.nodes().len()];
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    // Readers of each value, to check that fusing keeps every outside reader after the fused node.
    let mut readers: Vec<Vec<NodeId>> = vec![Vec::new(); g.num_values()];
    for (i, node) in g.nodes().iter().enumerate() {
        for v in &node.inputs {
            readers[v.0].push(NodeId(i));
        }
    }
    for i in 0..g.nodes().len() {
        let n = NodeId(i);
        let Some(ty) = fusable(g, n) else { continue };
        // Join the group of the first producer that computes over the same shape.
        let candidate = g.node(n).inputs.iter().find_map(|v| {
            let p = g.value(*v).node;
            let gi = group_of[p.0]?;
            (&g.value(*v).ty == ty && groups[gi].len() < MAX_FUSION_SIZE).then_some(gi)
        });
        let legal = candidate.is_some_and(|gi| {
            // The fused node will sit where `n` is: no outside node before `n` may read a
            // value the group computes (it would run before the fused node).
            groups[gi].iter().all(|m| {
                g.node(*m).outputs.iter().all(|v| readers[v.0].iter().all(|r| *r >= n || group_of[r.0] == Some(gi)))
            })
        });
        match candidate {
            Some(gi) if legal => {
                groups[gi].push(n);
                group_of[i] = Some(gi);
            }
            _ => {
                group_of[i] = Some(groups.len());
                groups.push(vec![n]);
            }
        }
    }
    groups.into_iter().filter(|m| m.len() > 1).collect()
}

/// Replaces every chain of two or more pointwise ops over one shape by one fused node. Values
/// of the chain that are read outside it (or are graph outputs) become the node's outputs.
pub fn fuse(graph: &Graph) -> Result<Graph> {
    let groups = groups(graph);
    let mut last_of: HashMap<NodeId, usize> = HashMap::new();
    let mut group: Vec<Option<usize>> = vec![None; graph.nodes().len()];
    for (gi, m) in groups.iter().enumerate() {
        last_of.insert(*m.last().expect("groups are non-empty"), gi);
        for n in m {
            group[n.0] = Some(gi);
        }
    }
    let outside_uses = outside_reads(graph, &group);
    let mut rw = Rewriter::new(graph);
    let mut fused_ops = 0;
    for (i, membership) in group.iter().enumerate() {
        let n = NodeId(i);
        if membership.is_none() {
            rw.copy(n)?;
            continue;
        }
        let Some(&gi) = last_of.get(&n) else { continue };
        let nodes = &groups[gi];
        let mut regs: HashMap<ValueId, Reg> = HashMap::new();
        let mut inputs: Vec<ValueId> = Vec::new();
        let mut steps = Vec::new();
        for (s, m) in nodes.iter().enumerate() {
            let node = graph.node(*m);
            let NodeKind::Op { op, attrs } = &node.kind else {
                return Err(Error::Internal(format!("fusion grouped {}, which is not an op", graph.describe(*m))));
            };
            let args = node
                .inputs
                .iter()
                .map(|v| {
                    *regs.entry(*v).or_insert_with(|| {
                        inputs.push(*v);
                        Reg::Input(inputs.len() - 1)
                    })
                })
                .collect();
            steps.push(FusedStep { op, attrs: attrs.clone(), args });
            regs.insert(node.outputs[0], Reg::Step(s));
        }
        let outs: Vec<ValueId> =
            nodes.iter().map(|m| graph.node(*m).outputs[0]).filter(|v| outside_uses[v.0]).collect();
        let program = FusedProgram { n_inputs: inputs.len(), steps, outputs: outs.iter().map(|v| regs[v]).collect() };
        let new_inputs = inputs.iter().map(|v| rw.get(*v)).collect::<Result<Vec<_>>>()?;
        let types = outs.iter().map(|v| graph.value(*v).ty.clone()).collect();
        let id = rw.new.push(NodeKind::Fused { program: Arc::new(program), product: None }, new_inputs, types)?;
        for (old, new) in outs.iter().zip(rw.new.node(id).outputs.clone()) {
            rw.alias(*old, new);
        }
        fused_ops += nodes.len();
    }
    rw.finish(format!("fuse: {fused_ops} pointwise ops into {} fused nodes", groups.len()))
}

/// Values read by a node outside the group that computes them, or named as graph outputs.
fn outside_reads(g: &Graph, group: &[Option<usize>]) -> Vec<bool> {
    let mut outside = vec![false; g.num_values()];
    for (i, node) in g.nodes().iter().enumerate() {
        for v in &node.inputs {
            if group[g.value(*v).node.0] != group[i] || group[i].is_none() {
                outside[v.0] = true;
            }
        }
    }
    for (_, v) in g.outputs() {
        outside[v.0] = true;
    }
    outside
}
