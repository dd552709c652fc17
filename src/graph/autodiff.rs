//! Graph autodiff: appends the backward graph, built from the same gradient rules the eager tape runs, so a training step is one graph.

use super::builder::apply_op;
use super::dim::{ValueType, fixed_dims};
use super::infer::{SymbolTable, at_node};
use super::ir::{Graph, NodeKind, ValueId};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::{Attr, Attrs, Emitter, GradCtx, GradVal, Meta, OpDef, Val, find_op};
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;

/// Gradient rules emitting graph nodes: `Val(i)` is `ValueId(i)`.
struct GraphEmitter<'g> {
    graph: &'g mut Graph,
    symbols: RefCell<SymbolTable>,
    /// The forward node whose rule is running, for error messages.
    at: String,
}

impl GraphEmitter<'_> {
    /// Rules may put shapes in attributes (reshape back to the input's shape). A symbolic
    /// dimension there would freeze its stand-in size; one such dimension becomes -1
    /// ("infer this one"), more cannot be expressed.
    fn unstand(&self, op: &OpDef, attrs: Attrs) -> Result<Attrs> {
        let mut changed = false;
        let mut pairs: Vec<(&str, Attr)> = Vec::new();
        for (name, value) in attrs.pairs() {
            let value = match value {
                Attr::Ints(v) if v.iter().any(|&n| self.symbols.borrow().is_stand_in(n)) => {
                    if v.iter().filter(|&&n| self.symbols.borrow().is_stand_in(n)).count() > 1 {
                        return Err(Error::Unsupported(format!(
                            "{}: the gradient of `{}` needs attribute `{name}` with more than one symbolic dimension",
                            self.at, op.name
                        )));
                    }
                    changed = true;
                    Attr::Ints(v.iter().map(|&n| if self.symbols.borrow().is_stand_in(n) { -1 } else { n }).collect())
                }
                v => v.clone(),
            };
            pairs.push((name, value));
        }
        if changed { Attrs::resolve(op.name, op.attrs, &pairs) } else { Ok(attrs) }
    }
}

impl Emitter for GraphEmitter<'_> {
    fn emit(&mut self, op: &'static OpDef, inputs: &[Val], attrs: Attrs) -> Result<Vec<Val>> {
        let attrs = self.unstand(op, attrs)?;
        let ins: Vec<ValueId> = inputs.iter().map(|v| ValueId(v.0)).collect();
        let outs =
            apply_op(self.graph, op, &ins, attrs).map_err(|e| at_node(&format!("gradient of {}", self.at), e))?;
        Ok(outs.into_iter().map(|v| Val(v.0)).collect())
    }

    fn meta(&self, v: Val) -> Meta {
        let ty = &self.graph.value(ValueId(v.0)).ty;
        // Beyond eight symbols inference already failed when the forward graph was built.
        self.symbols.borrow_mut().meta_of(ty).unwrap_or_else(|_| Meta::new(vec![0; ty.dims.len()], ty.dtype))
    }

    fn scalar(&mut self, value: f64, dtype: DType) -> Result<Val> {
        let t = Tensor::full(&[], value, dtype, Device::Cpu)?;
        let node = self.graph.push(NodeKind::Const { tensor: t }, vec![], vec![ValueType::new(dtype, vec![])])?;
        Ok(Val(self.graph.node(node).outputs[0].0))
    }
}

/// A gradient being summed for one value.
enum Acc {
    Dense(ValueId),
    /// Row gradients of a table, one (indices, rows) pair per lookup.
    Rows(Vec<(ValueId, ValueId)>),
}

/// How a parameter's gradient appears among the graph's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamGrad {
    /// Output `grad/<name>` has the parameter's shape.
    Dense(String),
    /// Outputs `grad/<name>/indices` (i64 `[n]`) and `grad/<name>/rows` (`[n, ...]`): the rows
    /// of an embedding table that lookups touched; other rows have zero gradient.
    Rows {
        /// Output holding the row indices.
        indices: String,
        /// Output holding the row gradients.
        rows: String,
    },
}

/// Returns `graph` extended with the gradient of its one-element output `loss` with respect
/// to the trainable parameters named in `wrt` (all trainable ones when `None`), each added as
/// outputs (see [`ParamGrad`]). The gradient rules are the ones eager autograd runs.
pub fn append_gradients(graph: &Graph, loss: &str, wrt: Option<&[&str]>) -> Result<(Graph, Vec<(String, ParamGrad)>)> {
    let loss_v = graph.output(loss)?;
    let loss_ty = graph.value(loss_v).ty.clone();
    if !loss_ty.dtype.is_float() || loss_ty.numel() != Some(1) {
        return Err(Error::invalid(
            "loss",
            format!("output `{loss}` must be a one-element float value to differentiate, it is {loss_ty}"),
        ));
    }
    let params: Vec<(String, ValueId)> = match wrt {
        None => graph.params().into_iter().filter(|p| p.3).map(|p| (p.0.to_string(), p.1)).collect(),
        Some(names) => names
            .iter()
            .map(|n| {
                graph.params().into_iter().find(|p| p.0 == *n).map(|p| (p.0.to_string(), p.1)).ok_or_else(|| {
                    Error::NotFound(format!("the graph has no parameter `{n}` to differentiate with respect to"))
                })
            })
            .collect::<Result<_>>()?,
    };
    let mut g = graph.clone();
    // Forward: which values depend on a parameter we differentiate.
    let mut needs = vec![false; g.num_values()];
    for (_, v) in &params {
        needs[v.0] = true;
    }
    for (id, node) in graph.nodes.iter().enumerate() {
        if matches!(node.kind, NodeKind::Fused { .. }) && node.inputs.iter().any(|v| needs[v.0]) {
            return Err(Error::Unsupported(format!(
                "{} has no gradient rule: differentiate the graph before optimising it (executors optimise their own copy)",
                graph.describe(super::ir::NodeId(id))
            )));
        }
        if let NodeKind::Op { op, .. } = &node.kind
            && op.backward.is_some()
            && node.inputs.iter().any(|v| needs[v.0])
        {
            for v in &node.outputs {
                needs[v.0] = graph.value(*v).ty.dtype.is_float();
            }
        }
    }
    let seed = {
        let t = Tensor::ones(&loss_ty.concrete().unwrap_or_default(), loss_ty.dtype, Device::Cpu)?;
        let node = g.push(NodeKind::Const { tensor: t }, vec![], vec![loss_ty.clone()])?;
        g.node(node).outputs[0]
    };
    let mut acc: HashMap<ValueId, Acc> = HashMap::new();
    acc.insert(loss_v, Acc::Dense(seed));
    let mut em = GraphEmitter { graph: &mut g, symbols: RefCell::new(SymbolTable::default()), at: String::new() };
    for (id, node) in graph.nodes.iter().enumerate().rev() {
        let NodeKind::Op { op, attrs } = &node.kind else { continue };
        if !node.outputs.iter().any(|v| acc.contains_key(v)) || !node.inputs.iter().any(|v| needs[v.0]) {
            continue;
        }
        em.at = graph.describe(super::ir::NodeId(id));
        let rule = op.backward.ok_or_else(|| Error::Internal(format!("{} has no gradient rule", em.at)))?;
        let mut grads = Vec::new();
        for v in &node.outputs {
            grads.push(match acc.remove(v) {
                Some(a) => Some(Val(densify(&mut em, a, *v)?.0)),
                None => None,
            });
        }
        let inputs: Vec<Val> = node.inputs.iter().map(|v| Val(v.0)).collect();
        let outputs: Vec<Val> = node.outputs.iter().map(|v| Val(v.0)).collect();
        let needs_grad: Vec<bool> = node.inputs.iter().map(|v| needs[v.0]).collect();
        let ctx = GradCtx { inputs: &inputs, outputs: &outputs, grads: &grads, attrs, needs_grad: &needs_grad };
        let in_grads = rule(&mut em, &ctx).map_err(|e| at_node(&format!("gradient of {}", em.at), e))?;
        for ((v, g), need) in node.inputs.iter().zip(in_grads).zip(&needs_grad) {
            let (Some(g), true) = (g, *need) else { continue };
            let add = match g {
                GradVal::Dense(d) => Acc::Dense(ValueId(d.0)),
                GradVal::Rows { indices, rows } => Acc::Rows(vec![(ValueId(indices.0), ValueId(rows.0))]),
            };
            let merged = match (acc.remove(v), add) {
                (None, a) => a,
                (Some(Acc::Rows(mut a)), Acc::Rows(b)) => {
                    a.extend(b);
                    Acc::Rows(a)
                }
                (Some(a), b) => {
                    let (a, b) = (densify(&mut em, a, *v)?, densify(&mut em, b, *v)?);
                    Acc::Dense(em.graph_op("add", &[a, b], &[])?)
                }
            };
            acc.insert(*v, merged);
        }
    }
    let mut outs = Vec::new();
    for (name, v) in &params {
        let grad = match acc.remove(v) {
            Some(Acc::Rows(parts)) if parts.len() == 1 => {
                acc.insert(*v, Acc::Rows(parts));
                ParamGrad::Rows { indices: format!("grad/{name}/indices"), rows: format!("grad/{name}/rows") }
            }
            Some(Acc::Rows(parts)) => {
                let (i, r): (Vec<ValueId>, Vec<ValueId>) = parts.into_iter().unzip();
                let i = em.graph_op("concat", &i, &[("dim", Attr::Int(0))])?;
                let r = em.graph_op("concat", &r, &[("dim", Attr::Int(0))])?;
                acc.insert(*v, Acc::Rows(vec![(i, r)]));
                ParamGrad::Rows { indices: format!("grad/{name}/indices"), rows: format!("grad/{name}/rows") }
            }
            Some(a) => {
                acc.insert(*v, a);
                ParamGrad::Dense(format!("grad/{name}"))
            }
            None => {
                // No path from the loss: the gradient is zero.
                let ty = em.graph.value(*v).ty.clone();
                let t = Tensor::zeros(&ty.concrete().unwrap_or_default(), ty.dtype, Device::Cpu)?;
                let node = em.graph.push(NodeKind::Const { tensor: t }, vec![], vec![ty])?;
                let z = em.graph.node(node).outputs[0];
                acc.insert(*v, Acc::Dense(z));
                ParamGrad::Dense(format!("grad/{name}"))
            }
        };
        match (&grad, acc.remove(v)) {
            (ParamGrad::Dense(out), Some(Acc::Dense(d))) => em.graph.push_output(out, d)?,
            (ParamGrad::Rows { indices, rows }, Some(Acc::Rows(parts))) => {
                em.graph.push_output(indices, parts[0].0)?;
                em.graph.push_output(rows, parts[0].1)?;
            }
            _ => return Err(Error::Internal(format!("gradient of `{name}` lost its form"))),
        }
        outs.push((name.clone(), grad));
    }
    Ok((g, outs))
}

impl GraphEmitter<'_> {
    fn graph_op(&mut self, name: &str, inputs: &[ValueId], attrs: &[(&str, Attr)]) -> Result<ValueId> {
        let op = find_op(name)?;
        let attrs = Attrs::resolve(op.name, op.attrs, attrs)?;
        Ok(apply_op(self.graph, op, inputs, attrs)?[0])
    }
}

/// A dense gradient for value `like`: row gradients are added into zeros.
fn densify(em: &mut GraphEmitter, a: Acc, like: ValueId) -> Result<ValueId> {
    match a {
        Acc::Dense(v) => Ok(v),
        Acc::Rows(parts) => {
            let ty = em.graph.value(like).ty.clone();
            let Some(shape) = ty.concrete() else {
                return Err(Error::Unsupported(format!(
                    "row gradients of {like} with symbolic shape {ty} cannot be made dense"
                )));
            };
            let t = Tensor::zeros(&shape, ty.dtype, Device::Cpu)?;
            let node = em.graph.push(
                NodeKind::Const { tensor: t },
                vec![],
                vec![ValueType::new(ty.dtype, fixed_dims(&shape))],
            )?;
            let mut base = em.graph.node(node).outputs[0];
            for (i, r) in parts {
                base = em.graph_op("index_add", &[base, i, r], &[("dim", Attr::Int(0))])?;
            }
            Ok(base)
        }
    }
}
