//! `backward`: walks the tape from a root in reverse creation order, running each op's gradient rule.

use super::node::{Edge, Node};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::{Attrs, Emitter, GradCtx, GradVal, Meta, OpDef, Val, dispatch};
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs gradient rules on tensors: each emitted op executes at once (without recording).
struct EagerEmitter {
    values: Vec<Tensor>,
}

impl EagerEmitter {
    fn push(&mut self, t: Tensor) -> Val {
        self.values.push(t);
        Val(self.values.len() - 1)
    }
}

impl Emitter for EagerEmitter {
    fn emit(&mut self, op: &'static OpDef, inputs: &[Val], attrs: Attrs) -> Result<Vec<Val>> {
        let ins: Vec<&Tensor> = inputs.iter().map(|v| &self.values[v.0]).collect();
        let outs = dispatch::apply(op, &ins, &attrs)?;
        Ok(outs.into_iter().map(|t| self.push(t)).collect())
    }

    fn meta(&self, v: Val) -> Meta {
        Meta::of(&self.values[v.0])
    }

    fn scalar(&mut self, value: f64, dtype: DType) -> Result<Val> {
        let device = self.values.first().map_or(crate::Device::Cpu, Tensor::device);
        Ok(self.push(Tensor::full(&[], value, dtype, device)?))
    }
}

/// Back-propagates from a one-element `root` (seed 1) and frees the graph's saved tensors.
pub fn backward(root: &Tensor) -> Result<()> {
    backward_with(root, None, false)
}

/// Back-propagates `seed` (required unless `root` has one element; same shape as `root`)
/// into the gradients of every leaf that requires grad. With `retain_graph` the saved
/// tensors stay for another backward pass.
pub fn backward_with(root: &Tensor, seed: Option<&Tensor>, retain_graph: bool) -> Result<()> {
    if !root.requires_grad() {
        return Err(Error::invalid(
            "tensor",
            "backward from a tensor that does not require grad (no input required grad, or it was made under no_grad)",
        ));
    }
    let seed = match seed {
        Some(s) if s.shape() != root.shape() => {
            return Err(Error::shape(
                "seed",
                format!("seed shape {:?} differs from the output's {:?}", s.shape(), root.shape()),
            ));
        }
        Some(s) => s.raw_cast(root.dtype())?,
        None if root.numel() == 1 => Tensor::ones(root.shape(), root.dtype(), root.device())?,
        None => {
            return Err(Error::invalid(
                "seed",
                format!("backward from a non-scalar output of shape {:?} needs a seed gradient", root.shape()),
            ));
        }
    };
    let _no_grad = super::set_grad_enabled(false);
    let Some((node, out_idx)) = root.grad_fn().and_then(|(n, i)| n.clone().downcast::<Node>().ok().map(|n| (n, *i)))
    else {
        return accumulate_leaf(root, Gradient::Dense(seed));
    };
    // Every node reachable from the root, newest first (a topological order).
    let mut nodes: Vec<Arc<Node>> = Vec::new();
    let mut seen: HashMap<*const Node, ()> = HashMap::new();
    let mut stack = vec![node.clone()];
    while let Some(n) = stack.pop() {
        if seen.insert(Arc::as_ptr(&n), ()).is_some() {
            continue;
        }
        for e in &n.edges {
            if let Edge::Node(child, _) = e {
                stack.push(child.clone());
            }
        }
        nodes.push(n);
    }
    nodes.sort_by_key(|n| std::cmp::Reverse(n.seq));

    let mut pending: HashMap<*const Node, Vec<Option<Tensor>>> = HashMap::new();
    pending.insert(Arc::as_ptr(&node), one_hot_slot(out_idx, seed));
    for n in &nodes {
        let Some(out_grads) = pending.remove(&Arc::as_ptr(n)) else { continue };
        let saved = n.take_saved(retain_graph)?;
        let rule =
            n.op.backward
                .ok_or_else(|| Error::Internal(format!("{} was recorded without a gradient rule", n.op.name)))?;
        let mut em = EagerEmitter { values: Vec::new() };
        let inputs: Vec<Val> = saved.inputs.iter().map(|t| em.push(t.clone())).collect();
        let outputs: Vec<Val> = saved.outputs.iter().map(|t| em.push(t.clone())).collect();
        let grads: Vec<Option<Val>> =
            (0..outputs.len()).map(|i| out_grads.get(i).cloned().flatten().map(|g| em.push(g))).collect();
        let needs_grad: Vec<bool> = n.edges.iter().map(|e| !matches!(e, Edge::None)).collect();
        let ctx =
            GradCtx { inputs: &inputs, outputs: &outputs, grads: &grads, attrs: &n.attrs, needs_grad: &needs_grad };
        let in_grads = rule(&mut em, &ctx)?;
        if in_grads.len() != n.edges.len() {
            return Err(Error::Internal(format!(
                "{}: gradient rule returned {} grads for {} inputs",
                n.op.name,
                in_grads.len(),
                n.edges.len()
            )));
        }
        for ((edge, g), input) in n.edges.iter().zip(in_grads).zip(&saved.inputs) {
            let Some(g) = g else { continue };
            let g = match g {
                GradVal::Dense(v) => Gradient::Dense(em.values[v.0].clone()),
                GradVal::Rows { indices, rows } => {
                    Gradient::Rows { indices: em.values[indices.0].clone(), rows: em.values[rows.0].clone() }
                }
            };
            check_grad_shape(n.op, input, &g)?;
            match edge {
                Edge::None => {}
                Edge::Leaf(t) => accumulate_leaf(t, g)?,
                Edge::Node(child, i) => {
                    let dense = densify(g, input)?;
                    let slot = pending.entry(Arc::as_ptr(child)).or_insert_with(|| vec![None; child.op_outputs()]);
                    if slot.len() <= *i {
                        slot.resize(*i + 1, None);
                    }
                    slot[*i] = Some(match slot[*i].take() {
                        Some(prev) => add(&prev, &dense)?,
                        None => dense,
                    });
                }
            }
        }
    }
    Ok(())
}

impl Node {
    fn op_outputs(&self) -> usize {
        self.saved.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map_or(1, |s| s.outputs.len())
    }
}

fn one_hot_slot(i: usize, g: Tensor) -> Vec<Option<Tensor>> {
    let mut v = vec![None; i + 1];
    v[i] = Some(g);
    v
}

fn check_grad_shape(op: &OpDef, input: &Tensor, g: &Gradient) -> Result<()> {
    let ok = match g {
        Gradient::Dense(t) => t.shape() == input.shape(),
        Gradient::Rows { rows, .. } => rows.shape().get(1..) == input.shape().get(1..),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Internal(format!(
            "{}: gradient rule produced {g:?} for an input of shape {:?}",
            op.name,
            input.shape()
        )))
    }
}

fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(dispatch::apply(&crate::ops::binary::ADD, &[a, b], &Attrs::none())?.remove(0))
}

/// A dense gradient for `like`'s shape.
pub(crate) fn densify(g: Gradient, like: &Tensor) -> Result<Tensor> {
    match g {
        Gradient::Dense(t) => Ok(t),
        Gradient::Rows { indices, rows } => {
            let zeros = Tensor::zeros(like.shape(), rows.dtype(), rows.device())?;
            crate::ops::index::index_add_rows(&zeros, &indices, &rows)
        }
    }
}

fn accumulate_leaf(leaf: &Tensor, g: Gradient) -> Result<()> {
    let g = match g {
        Gradient::Dense(t) if t.dtype() != leaf.dtype() => Gradient::Dense(t.raw_cast(leaf.dtype())?),
        g => g,
    };
    leaf.update_gradient(|slot| {
        *slot = Some(match (slot.take(), g) {
            (None, g) => g,
            (Some(Gradient::Dense(a)), Gradient::Dense(b)) => Gradient::Dense(add(&a, &b)?),
            (Some(Gradient::Rows { indices: ia, rows: ra }), Gradient::Rows { indices: ib, rows: rb }) => {
                Gradient::Rows {
                    indices: crate::ops::index::concat_rows(&ia, &ib)?,
                    rows: crate::ops::index::concat_rows(&ra, &rb)?,
                }
            }
            (Some(a), b) => Gradient::Dense(add(&densify(a, leaf)?, &densify(b, leaf)?)?),
        });
        Ok(())
    })
}

impl Tensor {
    /// The accumulated gradient as a dense tensor (row gradients are densified here, on request).
    pub fn grad(&self) -> Result<Option<Tensor>> {
        self.gradient().map(|g| densify(g, self)).transpose()
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        self.set_gradient(None);
    }

    /// Back-propagates from this one-element tensor (see [`backward`]).
    pub fn backward(&self) -> Result<()> {
        backward(self)
    }
}
