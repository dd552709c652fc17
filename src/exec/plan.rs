//! Compiles a graph into a plan: op steps grouped into levels of independent nodes, and the liveness that frees each value after its last use.

use crate::error::Result;
use crate::graph::{Graph, NodeId, NodeKind, ValueId};
use crate::ops::fused::{PreparedFused, prepare};
use crate::ops::linalg::{LINEAR, WeightPanels, pack_linear_weight, panel_linear_weight};
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
    /// Per value: a fixed linear weight stored transposed, handed to the linear calls that
    /// would pack the weight themselves (while the value is not fed a replacement).
    pub packed: Vec<Option<Tensor>>,
    /// Per value: the same fixed linear weights cut into panels, for the products that split
    /// by columns (where the weight is large enough and the pool has several threads).
    pub panels: Vec<Option<WeightPanels>>,
}

impl Plan {
    /// Plans `graph`. With `planned` (optimisation level 2) each computed value is dropped
    /// after its last reader, and fixed weights read only by linear nodes are also kept in
    /// the layout their product reads fastest.
    pub fn new(graph: Graph, planned: bool) -> Result<Plan> {
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
        if planned {
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
        let in_place = if planned { in_place_candidates(&graph) } else { vec![None; graph.nodes().len()] };
        let mut is_output = vec![false; n_values];
        for (_, v) in graph.outputs() {
            is_output[v.0] = true;
        }
        let fused = graph
            .nodes()
            .iter()
            .map(|node| match &node.kind {
                NodeKind::Fused { program, .. } => prepare(program, graph.value(node.outputs[0]).ty.dtype).ok(),
                _ => None,
            })
            .collect();
        let (mut packed, mut panels) = (vec![None; n_values], vec![None; n_values]);
        if planned {
            for v in fixed_linear_weights(&graph, &preset, &is_output) {
                let w = preset[v].as_ref().expect("a fixed weight has a value");
                packed[v] = pack_linear_weight(w)?;
                panels[v] = panel_linear_weight(w)?;
            }
        }
        Ok(Plan { graph, preset, levels, free_after, feedable, in_place, is_output, fused, packed, panels })
    }
}

/// The fixed values (parameters and constants) that only linear nodes read, as their weight:
/// those an executor may also keep in the layouts its products read fastest.
fn fixed_linear_weights(graph: &Graph, preset: &[Option<Tensor>], is_output: &[bool]) -> Vec<usize> {
    // Per value: read as a linear weight, and read any other way.
    let mut as_weight = vec![false; preset.len()];
    let mut otherwise = is_output.to_vec();
    for node in graph.nodes() {
        let linear = match &node.kind {
            NodeKind::Op { op, .. } => std::ptr::eq(*op, &LINEAR),
            NodeKind::Fused { product: Some(p), .. } => std::ptr::eq(p.op, &LINEAR),
            _ => false,
        };
        for (i, v) in node.inputs.iter().enumerate() {
            if linear && i == 1 {
                as_weight[v.0] = true;
            } else {
                otherwise[v.0] = true;
            }
        }
    }
    (0..preset.len()).filter(|&v| preset[v].is_some() && as_weight[v] && !otherwise[v]).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Dim, GraphBuilder};
    use crate::{DType, Device};

    fn weight(shape: &[usize]) -> Tensor {
        Tensor::zeros(shape, DType::F32, Device::Cpu).unwrap()
    }

    #[test]
    fn only_large_weights_read_only_by_linear_nodes_are_kept_packed() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(80)]).unwrap();
        let only_linear = b.param("only_linear", &weight(&[96, 80]), false).unwrap();
        let also_added = b.param("also_added", &weight(&[80, 80]), false).unwrap();
        let small = b.param("small", &weight(&[8, 80]), false).unwrap();
        let h = b.op1("linear", &[x, only_linear], &[]).unwrap();
        let h2 = b.op1("linear", &[x, also_added], &[]).unwrap();
        let sum = b.op1("relu", &[also_added], &[]).unwrap();
        let h3 = b.op1("linear", &[x, small], &[]).unwrap();
        for (name, v) in [("h", h), ("h2", h2), ("sum", sum), ("h3", h3)] {
            b.output(name, v).unwrap();
        }
        let graph = b.finish().unwrap();
        let packed = |plan: &Plan, v: ValueId| plan.packed[v.0].as_ref().map(|t| t.strides().to_vec());
        let plan = Plan::new(graph.clone(), true).unwrap();
        assert_eq!(packed(&plan, only_linear), Some(vec![1, 96]), "stored transposed");
        assert_eq!(packed(&plan, also_added), None, "also read by relu");
        assert_eq!(packed(&plan, small), None, "too small to pack");
        let unplanned = Plan::new(graph, false).unwrap();
        assert!(unplanned.packed.iter().all(Option::is_none), "level 1 keeps weights as they are");
        assert!(unplanned.panels.iter().all(Option::is_none), "level 1 keeps weights as they are");
    }

    #[test]
    fn weights_that_products_split_by_columns_are_also_cut_into_panels() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", DType::F32, &[Dim::sym("batch"), Dim::Fixed(300)]).unwrap();
        let wide = b.param("wide", &weight(&[512, 300]), false).unwrap();
        let narrow = b.param("narrow", &weight(&[96, 300]), false).unwrap();
        for w in [wide, narrow] {
            let h = b.op1("linear", &[x, w], &[]).unwrap();
            b.output(&format!("{w}"), h).unwrap();
        }
        let plan = Plan::new(b.finish().unwrap(), true).unwrap();
        // The split needs several threads and at least 128 columns per thread.
        let threads = crate::runtime::num_threads();
        assert_eq!(plan.panels[wide.0].is_some(), (2..=4).contains(&threads), "{threads} threads");
        assert!(plan.panels[narrow.0].is_none());
        assert!(plan.packed[wide.0].is_some() && plan.packed[narrow.0].is_some(), "kept packed too");
    }
}
