//! Algebraic simplification: x*1, x+0, x-0, x/1, double transposes and inverse permutes, reshape chains, no-op reshapes and exact cast round trips.

use super::rewrite::Rewriter;
use crate::dtype::DType;
use crate::error::Result;
use crate::graph::ir::{Graph, NodeId, NodeKind, ValueId};
use crate::ops::{Attrs, OpDef};

/// What a node reduces to.
enum Rule {
    /// The node's output is this (new) value.
    Forward(ValueId),
    /// The node is this op applied to these (new) values instead.
    Replace(&'static OpDef, Attrs, Vec<ValueId>),
}

/// Applies the rules until none matches (one sweep: rules look at already-rewritten inputs).
pub fn simplify(graph: &Graph) -> Result<Graph> {
    let mut rw = Rewriter::new(graph);
    let mut rewrites = 0;
    for (i, node) in graph.nodes().iter().enumerate() {
        let id = NodeId(i);
        match rule(&rw, id)? {
            Some(Rule::Forward(v)) => {
                rw.alias(node.outputs[0], v);
                rewrites += 1;
            }
            Some(Rule::Replace(op, attrs, inputs)) => {
                rw.push_like(id, NodeKind::Op { op, attrs }, inputs)?;
                rewrites += 1;
            }
            None => {
                rw.copy(id)?;
            }
        }
    }
    rw.finish(format!("simplify: {rewrites} rewrites"))
}

/// The scalar value of a one-element constant.
fn const_scalar(g: &Graph, v: ValueId) -> Option<f64> {
    match &g.node(g.value(v).node).kind {
        NodeKind::Const { tensor } if tensor.numel() == 1 => tensor.item().ok(),
        NodeKind::Const { tensor } => {
            // A tensor of one repeated value counts too (autodiff's `ones`).
            let vals = tensor.raw_cast(DType::F64).ok()?.to_vec::<f64>().ok()?;
            let first = *vals.first()?;
            vals.iter().all(|x| x.to_bits() == first.to_bits()).then_some(first)
        }
        _ => None,
    }
}

/// The (new) op node defining `v`, if an op defines it.
fn producer(g: &Graph, v: ValueId) -> Option<(&'static OpDef, &Attrs, &[ValueId])> {
    let node = g.node(g.value(v).node);
    match &node.kind {
        NodeKind::Op { op, attrs } if node.outputs.len() == 1 => Some((op, attrs, &node.inputs)),
        _ => None,
    }
}

/// Exact dtype widenings: a cast there and back returns the original bits.
fn widens_exactly(from: DType, to: DType) -> bool {
    use DType::*;
    matches!(
        (from, to),
        (F16, F32)
            | (F16, F64)
            | (BF16, F32)
            | (BF16, F64)
            | (F32, F64)
            | (I32, I64)
            | (U8, I32)
            | (U8, I64)
            | (Bool, U8)
            | (Bool, I32)
            | (Bool, I64)
    ) || from == to
}

fn rule(rw: &Rewriter, id: NodeId) -> Result<Option<Rule>> {
    let old = rw.old;
    let node = old.node(id);
    let NodeKind::Op { op, attrs } = &node.kind else { return Ok(None) };
    if node.outputs.len() != 1 {
        return Ok(None);
    }
    let g = &rw.new;
    let ins = rw.inputs(id)?;
    let out_ty = &old.value(node.outputs[0]).ty;
    // `x op c` may forward x only when x already has the output's type (no broadcast or promotion).
    let same_as_out = |v: ValueId| &g.value(v).ty == out_ty;
    let identity = |v: ValueId, c: ValueId, neutral: f64| same_as_out(v) && const_scalar(g, c) == Some(neutral);
    Ok(match op.name {
        "mul" if identity(ins[0], ins[1], 1.0) => Some(Rule::Forward(ins[0])),
        "mul" if identity(ins[1], ins[0], 1.0) => Some(Rule::Forward(ins[1])),
        "add" if identity(ins[0], ins[1], 0.0) => Some(Rule::Forward(ins[0])),
        "add" if identity(ins[1], ins[0], 0.0) => Some(Rule::Forward(ins[1])),
        "sub" if identity(ins[0], ins[1], 0.0) => Some(Rule::Forward(ins[0])),
        "div" if identity(ins[0], ins[1], 1.0) => Some(Rule::Forward(ins[0])),
        "mul_scalar" if attrs.opt_float("value") == Some(1.0) && same_as_out(ins[0]) => Some(Rule::Forward(ins[0])),
        "add_scalar" if attrs.opt_float("value") == Some(0.0) && same_as_out(ins[0]) => Some(Rule::Forward(ins[0])),
        "transpose" => match producer(g, ins[0]) {
            Some((inner, a, src)) if inner.name == "transpose" && same_pair(g, src[0], a, attrs) => {
                Some(Rule::Forward(src[0]))
            }
            _ => None,
        },
        "permute" => match producer(g, ins[0]) {
            Some((inner, a, src)) if inner.name == "permute" => {
                let (p, q) = (a.ints("dims"), attrs.ints("dims"));
                let composed: Vec<i64> = q.iter().map(|&j| p.get(j as usize).copied().unwrap_or(-1)).collect();
                let identity = composed.iter().enumerate().all(|(i, &d)| d == i as i64);
                identity.then_some(Rule::Forward(src[0]))
            }
            _ => None,
        },
        "reshape" | "view" if same_as_out(ins[0]) && out_ty.concrete().is_some() => Some(Rule::Forward(ins[0])),
        "reshape" => match producer(g, ins[0]) {
            Some((inner, _, src)) if inner.name == "reshape" || inner.name == "view" => {
                Some(Rule::Replace(op, attrs.clone(), vec![src[0]]))
            }
            _ => None,
        },
        "cast" if same_as_out(ins[0]) => Some(Rule::Forward(ins[0])),
        "cast" => match producer(g, ins[0]) {
            Some((inner, _, src))
                if inner.name == "cast"
                    && g.value(src[0]).ty == *out_ty
                    && widens_exactly(out_ty.dtype, g.value(ins[0]).ty.dtype) =>
            {
                Some(Rule::Forward(src[0]))
            }
            _ => None,
        },
        _ => None,
    })
}

/// Whether two transposes swap the same pair of dimensions of `x` (negative dims normalised).
fn same_pair(g: &Graph, x: ValueId, a: &Attrs, b: &Attrs) -> bool {
    let nd = g.value(x).ty.dims.len() as i64;
    let norm = |d: i64| if d < 0 { d + nd } else { d };
    let (a0, a1) = (norm(a.int("dim0")), norm(a.int("dim1")));
    let (b0, b1) = (norm(b.int("dim0")), norm(b.int("dim1")));
    (a0, a1) == (b0, b1) || (a0, a1) == (b1, b0)
}
