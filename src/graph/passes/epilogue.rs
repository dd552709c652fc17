//! Epilogue fusion: a matrix product absorbs the pointwise chain that alone reads its result, run on each block of the product as its thread finishes it (ALGORITHMS.md §7).

use super::fuse::fusable;
use super::rewrite::Rewriter;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ir::{Graph, NodeId, NodeKind, Product, ValueId};
use crate::ops::fused::{FusedProgram, FusedStep, Reg};
use crate::ops::linalg::{LINEAR, MATMUL};
use std::collections::HashMap;
use std::sync::Arc;

/// Whether node `n` is a product that can take an epilogue: an f32/f64 `linear`, or an
/// f32/f64 `matmul` of two 2-D operands (one GEMM whose result is its output).
fn takes_epilogue(g: &Graph, n: NodeId) -> bool {
    let node = g.node(n);
    let NodeKind::Op { op, .. } = &node.kind else { return false };
    let float = matches!(g.value(node.outputs[0]).ty.dtype, DType::F32 | DType::F64);
    let two_d = |v: &ValueId| g.value(*v).ty.dims.len() == 2;
    float && (std::ptr::eq(*op, &LINEAR) || (std::ptr::eq(*op, &MATMUL) && node.inputs.iter().all(two_d)))
}

/// The product a node's chain can absorb: the producer of one of its inputs that takes an
/// epilogue, whose result only this node reads, that is no graph output, and whose type is
/// the node's output type (the chain computes over the product's shape).
fn absorbable(g: &Graph, n: NodeId, readers: &[Vec<NodeId>], is_output: &[bool]) -> Option<NodeId> {
    let node = g.node(n);
    let chain = match &node.kind {
        NodeKind::Fused { program, product: None } => program.outputs.len() == 1,
        NodeKind::Op { .. } => fusable(g, n).is_some(),
        _ => false,
    };
    if !chain {
        return None;
    }
    let out_ty = &g.value(node.outputs[0]).ty;
    node.inputs.iter().find_map(|v| {
        let p = g.value(*v).node;
        let alone = readers[v.0].iter().all(|r| *r == n) && !is_output[v.0];
        (alone && takes_epilogue(g, p) && &g.value(*v).ty == out_ty).then_some(p)
    })
}

/// The node's chain as a program whose input 0 is `product_value` and whose other inputs are
/// the node's other inputs (each once, in order); returns it with those inputs.
fn program_over(g: &Graph, n: NodeId, product_value: ValueId) -> (FusedProgram, Vec<ValueId>) {
    let node = g.node(n);
    let mut rest: Vec<ValueId> = Vec::new();
    let mut reg_of = |v: ValueId| {
        if v == product_value {
            return Reg::Input(0);
        }
        let i = rest.iter().position(|r| *r == v).unwrap_or_else(|| {
            rest.push(v);
            rest.len() - 1
        });
        Reg::Input(i + 1)
    };
    let program = match &node.kind {
        NodeKind::Fused { program, .. } => {
            let inputs: Vec<Reg> = node.inputs.iter().map(|v| reg_of(*v)).collect();
            let remap = |r: Reg| match r {
                Reg::Input(i) => inputs[i],
                step => step,
            };
            let steps = program
                .steps
                .iter()
                .map(|s| FusedStep {
                    op: s.op,
                    attrs: s.attrs.clone(),
                    args: s.args.iter().map(|r| remap(*r)).collect(),
                })
                .collect();
            let outputs = program.outputs.iter().map(|r| remap(*r)).collect();
            FusedProgram { n_inputs: 0, steps, outputs }
        }
        NodeKind::Op { op, attrs } => {
            let args = node.inputs.iter().map(|v| reg_of(*v)).collect();
            FusedProgram {
                n_inputs: 0,
                steps: vec![FusedStep { op, attrs: attrs.clone(), args }],
                outputs: vec![Reg::Step(0)],
            }
        }
        _ => unreachable!("absorbable admits fused and op nodes only"),
    };
    (FusedProgram { n_inputs: rest.len() + 1, ..program }, rest)
}

/// Replaces each product (see [`takes_epilogue`]) whose result only one pointwise chain reads
/// (a single pointwise op, or a fused node with one output, over the product's shape) by one
/// node that runs the chain on each block of the product right after the thread that
/// computed the block: a linear layer and its activation, or a data-gradient product and the
/// activation's gradient mask, in one pass instead of a product and a pass over memory.
pub fn fuse_epilogues(graph: &Graph) -> Result<Graph> {
    let mut readers: Vec<Vec<NodeId>> = vec![Vec::new(); graph.num_values()];
    for (i, node) in graph.nodes().iter().enumerate() {
        for v in &node.inputs {
            readers[v.0].push(NodeId(i));
        }
    }
    let mut is_output = vec![false; graph.num_values()];
    for (_, v) in graph.outputs() {
        is_output[v.0] = true;
    }
    // Chain node -> the product it absorbs; products absorbed are not copied.
    let mut head: HashMap<NodeId, NodeId> = HashMap::new();
    let mut absorbed = vec![false; graph.nodes().len()];
    for i in 0..graph.nodes().len() {
        if let Some(p) = absorbable(graph, NodeId(i), &readers, &is_output)
            && !absorbed[p.0]
        {
            head.insert(NodeId(i), p);
            absorbed[p.0] = true;
        }
    }
    let mut rw = Rewriter::new(graph);
    let mut ops = 0;
    for (i, &gone) in absorbed.iter().enumerate() {
        let n = NodeId(i);
        if gone {
            continue;
        }
        let Some(&p) = head.get(&n) else {
            rw.copy(n)?;
            continue;
        };
        let pnode = graph.node(p);
        let NodeKind::Op { op, attrs } = &pnode.kind else { unreachable!("takes_epilogue admits op nodes only") };
        let (program, rest) = program_over(graph, n, pnode.outputs[0]);
        ops += program.steps.len();
        let mut inputs = rw.inputs(p)?;
        for v in &rest {
            inputs.push(rw.get(*v)?);
        }
        let product = Product { op, attrs: attrs.clone(), arity: pnode.inputs.len() };
        rw.push_like(n, NodeKind::Fused { program: Arc::new(program), product: Some(product) }, inputs)?;
    }
    rw.finish(format!("epilogues: {ops} pointwise ops into {} products", head.len()))
}
