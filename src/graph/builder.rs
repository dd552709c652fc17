//! `GraphBuilder`: add inputs, parameters, constants and ops one at a time, with shape inference at each step.

use super::dim::{Dim, ValueType, fixed_dims};
use super::infer::{at_node, infer_types};
use super::ir::{Graph, NodeKind, ValueId};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::{Attr, Attrs, OpDef, dispatch, find_op};
use crate::tensor::Tensor;

/// Builds a [`Graph`]. Every value a node reads must already exist, so the graph is acyclic
/// and in topological order by construction; each op's output types are inferred as it is
/// added, and an error names the node.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: Graph,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// Adds an input fed at run time; `dims` may hold symbols (`Dim::sym("batch")`).
    pub fn input(&mut self, name: &str, dtype: DType, dims: &[Dim]) -> Result<ValueId> {
        self.graph.check_new_name(name)?;
        if let Some(bad) = dims.iter().find(|d| matches!(d, Dim::Sym(s) if s.is_empty() || s.parse::<i64>().is_ok())) {
            return Err(Error::invalid("dims", format!("input `{name}`: symbolic dimension `{bad}` needs a name")));
        }
        let ty = ValueType::new(dtype, dims.to_vec());
        let node = self.graph.push(NodeKind::Input { name: name.to_string() }, vec![], vec![ty])?;
        Ok(self.graph.node(node).outputs[0])
    }

    /// Adds a named parameter holding `tensor` (without its autograd history).
    pub fn param(&mut self, name: &str, tensor: &Tensor, trainable: bool) -> Result<ValueId> {
        self.graph.check_new_name(name)?;
        let ty = ValueType::new(tensor.dtype(), fixed_dims(tensor.shape()));
        let kind = NodeKind::Param { name: name.to_string(), tensor: tensor.detach(), trainable };
        let node = self.graph.push(kind, vec![], vec![ty])?;
        Ok(self.graph.node(node).outputs[0])
    }

    /// Adds a constant.
    pub fn constant(&mut self, tensor: &Tensor) -> Result<ValueId> {
        let ty = ValueType::new(tensor.dtype(), fixed_dims(tensor.shape()));
        let node = self.graph.push(NodeKind::Const { tensor: tensor.detach() }, vec![], vec![ty])?;
        Ok(self.graph.node(node).outputs[0])
    }

    /// Adds the op called `name` with attributes as (name, value) pairs; returns its outputs.
    pub fn op(&mut self, name: &str, inputs: &[ValueId], attrs: &[(&str, Attr)]) -> Result<Vec<ValueId>> {
        let op = find_op(name).map_err(|e| at_node(&format!("node {}", self.graph.nodes.len()), e))?;
        let attrs = Attrs::resolve(op.name, op.attrs, attrs)
            .map_err(|e| at_node(&format!("node {}", self.graph.nodes.len()), e))?;
        self.apply(op, inputs, attrs)
    }

    /// Adds a single-output op called `name`.
    pub fn op1(&mut self, name: &str, inputs: &[ValueId], attrs: &[(&str, Attr)]) -> Result<ValueId> {
        Ok(self.op(name, inputs, attrs)?[0])
    }

    /// Adds `op` with resolved attributes; returns its outputs.
    pub fn apply(&mut self, op: &'static OpDef, inputs: &[ValueId], attrs: Attrs) -> Result<Vec<ValueId>> {
        apply_op(&mut self.graph, op, inputs, attrs)
    }

    /// Names `value` as an output.
    pub fn output(&mut self, name: &str, value: ValueId) -> Result<()> {
        self.graph.push_output(name, value)
    }

    /// The type of a value added so far.
    pub fn value_type(&self, value: ValueId) -> Result<&ValueType> {
        if value.0 >= self.graph.values.len() {
            return Err(Error::invalid("value", format!("{value} is not defined in this graph")));
        }
        Ok(&self.graph.value(value).ty)
    }

    /// The graph so far (for inspection while building).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The finished graph; it must name at least one output.
    pub fn finish(self) -> Result<Graph> {
        if self.graph.outputs.is_empty() {
            return Err(Error::invalid("outputs", "the graph names no outputs; add one with `output`"));
        }
        Ok(self.graph)
    }
}

/// Appends `op` to `graph` after checking arity and inferring output types.
pub(crate) fn apply_op(
    graph: &mut Graph,
    op: &'static OpDef,
    inputs: &[ValueId],
    attrs: Attrs,
) -> Result<Vec<ValueId>> {
    let what = format!("node {} (`{}`)", graph.nodes.len(), op.name);
    dispatch::check_arity(op, inputs.len()).map_err(|e| at_node(&what, e))?;
    if let Some(bad) = inputs.iter().find(|v| v.0 >= graph.values.len()) {
        return Err(Error::invalid(
            "inputs",
            format!("{what} reads {bad}, which no earlier node defines (dangling or cyclic reference)"),
        ));
    }
    let types: Vec<ValueType> = inputs.iter().map(|v| graph.value(*v).ty.clone()).collect();
    let outs = infer_types(op, &attrs, &types, &what)?;
    let node = graph.push(NodeKind::Op { op, attrs }, inputs.to_vec(), outs)?;
    Ok(graph.node(node).outputs.clone())
}
