//! The graph IR: nodes (inputs, parameters, constants, ops) over typed values, kept in topological order.

use super::dim::ValueType;
use crate::error::{Error, Result};
use crate::ops::fused::FusedProgram;
use crate::ops::{Attrs, OpDef};
use crate::tensor::Tensor;
use std::sync::Arc;

/// A value: one output of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// A node's position in the graph (also its place in topological order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

impl std::fmt::Display for ValueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// What a node is.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A value fed at run time, by name.
    Input {
        /// Feed name.
        name: String,
    },
    /// A named weight: trainable (autodiff differentiates it) or frozen. A feed of the same
    /// name replaces it for one run (how a trainer passes updated weights).
    Param {
        /// Parameter name, unique in the graph.
        name: String,
        /// Its value.
        tensor: Tensor,
        /// Whether graph autodiff differentiates it.
        trainable: bool,
    },
    /// A fixed tensor.
    Const {
        /// Its value.
        tensor: Tensor,
    },
    /// A chain of pointwise ops run in one pass over memory (made by the fusion pass), or
    /// the epilogue of a matrix product (made by the epilogue pass).
    Fused {
        /// The chain; without a product its inputs are the node's inputs, its outputs the
        /// node's outputs.
        program: Arc<FusedProgram>,
        /// When set, the node computes this product first and the program reads it as its
        /// input 0, block by block as the product's threads finish them; the node's inputs
        /// are the product's, then the program's inputs 1.. in order.
        product: Option<Product>,
    },
    /// An application of a registered op.
    Op {
        /// The op's one definition.
        op: &'static OpDef,
        /// Resolved attributes.
        attrs: Attrs,
    },
}

impl NodeKind {
    /// The op, for op nodes.
    pub fn op(&self) -> Option<&'static OpDef> {
        match self {
            NodeKind::Op { op, .. } => Some(op),
            _ => None,
        }
    }
}

/// The matrix product at the head of an epilogue node: `linear`, or `matmul` of two 2-D
/// operands, on f32/f64.
#[derive(Debug, Clone)]
pub struct Product {
    /// The product op's one definition.
    pub op: &'static OpDef,
    /// Its resolved attributes.
    pub attrs: Attrs,
    /// How many of the node's inputs are the product's (the first ones).
    pub arity: usize,
}

/// One node: what it is, which values it reads and which it defines.
#[derive(Debug, Clone)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// Values read, in the op's input order.
    pub inputs: Vec<ValueId>,
    /// Values defined, in the op's output order.
    pub outputs: Vec<ValueId>,
}

/// A value's producer and type.
#[derive(Debug, Clone)]
pub struct Value {
    /// The node that defines it.
    pub node: NodeId,
    /// Which of that node's outputs it is.
    pub slot: usize,
    /// Its dtype and dimensions.
    pub ty: ValueType,
}

/// A static graph. Nodes only read values of earlier nodes, so node order is a topological
/// order; every construction path (builder, tracer, passes, loader) keeps that invariant.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) values: Vec<Value>,
    pub(crate) outputs: Vec<(String, ValueId)>,
    /// One line per pass run on this graph, for the dump.
    pub(crate) stats: Vec<String>,
}

impl Graph {
    /// All nodes in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// A value.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0]
    }

    /// Number of values.
    pub fn num_values(&self) -> usize {
        self.values.len()
    }

    /// The named outputs.
    pub fn outputs(&self) -> &[(String, ValueId)] {
        &self.outputs
    }

    /// The value of the output called `name`.
    pub fn output(&self, name: &str) -> Result<ValueId> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<&str> = self.outputs.iter().map(|(n, _)| n.as_str()).collect();
            Error::NotFound(format!("the graph has no output `{name}` (outputs: {names:?})"))
        })
    }

    /// The inputs: (name, value), in creation order.
    pub fn inputs(&self) -> Vec<(&str, ValueId)> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Input { name } => Some((name.as_str(), n.outputs[0])),
                _ => None,
            })
            .collect()
    }

    /// The parameters: (name, value, tensor, trainable), in creation order.
    pub fn params(&self) -> Vec<(&str, ValueId, &Tensor, bool)> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Param { name, tensor, trainable } => Some((name.as_str(), n.outputs[0], tensor, *trainable)),
                _ => None,
            })
            .collect()
    }

    /// Number of op nodes (a fused node counts once).
    pub fn op_count(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Op { .. } | NodeKind::Fused { .. })).count()
    }

    /// Number of fused nodes.
    pub fn fused_count(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Fused { .. })).count()
    }

    /// Number of nodes applying the op called `name`.
    pub fn count_op(&self, name: &str) -> usize {
        self.nodes.iter().filter(|n| n.kind.op().is_some_and(|o| o.name == name)).count()
    }

    /// The statistics lines of the passes run so far.
    pub fn pass_stats(&self) -> &[String] {
        &self.stats
    }

    /// "node 7 (`add`)" or "input `x`": how errors name a node.
    pub fn describe(&self, id: NodeId) -> String {
        match &self.nodes[id.0].kind {
            NodeKind::Input { name } => format!("input `{name}`"),
            NodeKind::Param { name, .. } => format!("parameter `{name}`"),
            NodeKind::Const { .. } => format!("constant node {}", id.0),
            NodeKind::Op { op, .. } => format!("node {} (`{}`)", id.0, op.name),
            NodeKind::Fused { program, product: None } => format!("fused node {} ({} ops)", id.0, program.steps.len()),
            NodeKind::Fused { program, product: Some(p) } => {
                format!("fused node {} ({} with {} ops after it)", id.0, p.op.name, program.steps.len())
            }
        }
    }

    /// How many nodes read each value, plus one per graph output naming it.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.values.len()];
        for n in &self.nodes {
            for v in &n.inputs {
                uses[v.0] += 1;
            }
        }
        for (_, v) in &self.outputs {
            uses[v.0] += 1;
        }
        uses
    }

    /// Appends a node whose outputs have types `types`; its inputs must already exist.
    pub(crate) fn push(&mut self, kind: NodeKind, inputs: Vec<ValueId>, types: Vec<ValueType>) -> Result<NodeId> {
        let id = NodeId(self.nodes.len());
        if let Some(bad) = inputs.iter().find(|v| v.0 >= self.values.len()) {
            return Err(Error::invalid(
                "inputs",
                format!("node {} reads {bad}, which no earlier node defines (dangling or cyclic reference)", id.0),
            ));
        }
        let first = self.values.len();
        for (slot, ty) in types.into_iter().enumerate() {
            self.values.push(Value { node: id, slot, ty });
        }
        let outputs = (first..self.values.len()).map(ValueId).collect();
        self.nodes.push(Node { kind, inputs, outputs });
        Ok(id)
    }

    /// Names `v` as output `name` (names are unique).
    pub(crate) fn push_output(&mut self, name: &str, v: ValueId) -> Result<()> {
        if v.0 >= self.values.len() {
            return Err(Error::invalid("value", format!("output `{name}` names {v}, which the graph does not define")));
        }
        if name.is_empty() {
            return Err(Error::invalid("name", "output names must not be empty"));
        }
        if self.outputs.iter().any(|(n, _)| n == name) {
            return Err(Error::invalid("name", format!("the graph already has an output named `{name}`")));
        }
        self.outputs.push((name.to_string(), v));
        Ok(())
    }

    /// Checks that `name` is free among inputs and parameters.
    pub(crate) fn check_new_name(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(Error::invalid("name", "input and parameter names must not be empty"));
        }
        let taken = self.nodes.iter().any(|n| match &n.kind {
            NodeKind::Input { name: m } | NodeKind::Param { name: m, .. } => m == name,
            _ => false,
        });
        if taken {
            return Err(Error::invalid("name", format!("the graph already has an input or parameter named `{name}`")));
        }
        Ok(())
    }
}
