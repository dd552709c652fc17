//! Compiles a graph into a plan: op steps grouped into levels of independent nodes, and the liveness that frees each value after its last use.

use crate::graph::{Graph, NodeId, NodeKind, ValueId};
use crate::ops::fused::{PreparedFused, prepare};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// A compiled graph, immutable and shared by every run.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The optimised graph.
    pub graph: Graph,
    /// Values known before a run: parameters and constants (`None` for computed values).
    pub preset: Vec<Option<Tensor>>,
    /// Op nodes grouped into levels: every node of a level reads only values of earlier
    /// levels, so a level's nodes may run concurrently.
    pub levels: Vec<Vec<NodeId>>,
    /// Values whose last reader is in each level (empty lists when memory planning is off).
    pub free_after: Vec<Vec<ValueId>>,
    /// Feedable names (inputs, then parameters) and their values.
    pub feedable: HashMap<String, ValueId>,
    /// Per node: the input a one-input pointwise op may overwrite in place, because this
    /// node is its only reader and it is neither a graph output nor a fed or fixed value.
    pub in_place: Vec<Option<ValueId>>,
    /// Per value: named as a graph output (kept to the end of a run).
    pub is_output: Vec<bool>,
    /// Per node: a fused node's program, validated once (`None` for other nodes, and for a
    /// program that fails validation: running it reports why).
    pub fused: Vec<Option<PreparedFused>>,
}

impl Plan {
    /// Plans `graph`; with `free_dead` each computed value is dropped after its last reader.
    pub fn new(graph: Graph, free_dead: bool) -> Plan {
        let n_values = graph.num_values();
        let mut preset = vec![None; n_values];
        let mut feedable = HashMap::new();
        // Level of the node defining each value (sources are level 0, ops from 1).
        let mut value_level = vec![0usize; n_values];
        let mut levels: Vec<Vec<NodeId>> = Vec::new();
        for (i, node) in graph.nodes().iter().enumerate() {
            match &node.kind {
                NodeKind::Param { tensor, name, .. } => {
                    preset[node.outputs[0].0] = Some(tensor.clone());
                    feedable.insert(name.clone(), node.outputs[0]);
                }
                NodeKind::Const { tensor } => {
                    preset[node.outputs[0].0] = Some(tensor.clone());
                }
                NodeKind::Input { name } => {
                    feedable.insert(name.clone(), node.outputs[0]);
                }
                NodeKind::Op { .. } | NodeKind::Fused { .. } => {
                    let level = node.inputs.iter().map(|v| value_level[v.0]).max().unwrap_or(0) + 1;
                    for v in &node.outputs {
                        value_level[v.0] = level;
                    }
                    if levels.len() < level {
                        levels.resize(level, Vec::new());
                    }
                    levels[level - 1].push(NodeId(i));
                }
            }
        }
        let mut free_after = vec![Vec::new(); levels.len()];
        if free_dead {
            // The last level reading each computed value; outputs and sources stay.
            let mut last: Vec<Option<usize>> = vec![None; n_values];
            for (li, level) in levels.iter().enumerate() {
                for n in level {
                    for v in &graph.node(*n).inputs {
                        last[v.0] = Some(li);
                    }
                }
            }
            let mut keep = vec![false; n_values];
            for (_, v) in graph.outputs() {
                keep[v.0] = true;
            }
            for (v, l) in last.iter().enumerate() {
                if let Some(l) = l
                    && !keep[v]
                    && preset[v].is_none()
                    && !matches!(graph.node(graph.value(ValueId(v)).node).kind, NodeKind::Input { .. })
                {
                    free_after[*l].push(ValueId(v));
                }
            }
            // Values nobody reads (an op's unused second output) go right after their level.
            for (li, level) in levels.iter().enumerate() {
                for n in level {
                    for v in &graph.node(*n).outputs {
                        if last[v.0].is_none() && !keep[v.0] {
                            free_after[li].push(*v);
                        }
                    }
                }
            }
        }
        let in_place = if free_dead { in_place_candidates(&graph) } else { vec![None; graph.nodes().len()] };
        let mut is_output = vec![false; n_values];
        for (_, v) in graph.outputs() {
            is_output[v.0] = true;
        }
        let fused = graph
            .nodes()
            .iter()
            .map(|node| match &node.kind {
                NodeKind::Fused { program } => prepare(program, graph.value(node.outputs[0]).ty.dtype).ok(),
                _ => None,
            })
            .collect();
        Plan { graph, preset, levels, free_after, feedable, in_place, is_output, fused }
    }
}

/// Nodes whose single input dies with them and has their output's type: a one-input
/// pointwise op there can write its result over that input.
fn in_place_candidates(graph: &Graph) -> Vec<Option<ValueId>> {
    let uses = graph.use_counts();
    graph
        .nodes()
        .iter()
        .map(|node| {
            let NodeKind::Op { op, .. } = &node.kind else { return None };
            let (&[v], &[out]) = (node.inputs.as_slice(), node.outputs.as_slice()) else { return None };
            let computed = matches!(graph.node(graph.value(v).node).kind, NodeKind::Op { .. } | NodeKind::Fused { .. });
            let one_input_body = op.pointwise.is_some_and(|p| p.arity == 1);
            (one_input_body && computed && uses[v.0] == 1 && graph.value(v).ty == graph.value(out).ty).then_some(v)
        })
        .collect()
}
