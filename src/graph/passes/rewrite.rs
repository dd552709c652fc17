//! `Rewriter`: rebuilds a graph node by node, so passes replace or drop nodes without breaking topological order.

use crate::error::{Error, Result};
use crate::graph::ir::{Graph, NodeId, NodeKind, ValueId};

/// Copies nodes of `old` into a new graph, remapping value ids.
pub(crate) struct Rewriter<'a> {
    pub old: &'a Graph,
    pub new: Graph,
    map: Vec<Option<ValueId>>,
}

impl<'a> Rewriter<'a> {
    pub fn new(old: &'a Graph) -> Self {
        Rewriter { old, new: Graph::default(), map: vec![None; old.num_values()] }
    }

    /// The new value standing for old value `v`.
    pub fn get(&self, v: ValueId) -> Result<ValueId> {
        self.map[v.0].ok_or_else(|| Error::Internal(format!("rewrite: {v} has no replacement yet")))
    }

    /// The new values for a node's inputs.
    pub fn inputs(&self, n: NodeId) -> Result<Vec<ValueId>> {
        self.old.node(n).inputs.iter().map(|v| self.get(*v)).collect()
    }

    /// Makes old value `old` stand for new value `new`.
    pub fn alias(&mut self, old: ValueId, new: ValueId) {
        self.map[old.0] = Some(new);
    }

    /// Copies node `n` unchanged (inputs remapped); returns its new id.
    pub fn copy(&mut self, n: NodeId) -> Result<NodeId> {
        let node = self.old.node(n);
        let inputs = self.inputs(n)?;
        self.push_like(n, node.kind.clone(), inputs)
    }

    /// Adds a node with the output types of old node `like`.
    pub fn push_like(&mut self, like: NodeId, kind: NodeKind, inputs: Vec<ValueId>) -> Result<NodeId> {
        let old = self.old.node(like);
        let types = old.outputs.iter().map(|v| self.old.value(*v).ty.clone()).collect();
        let id = self.new.push(kind, inputs, types)?;
        for (o, v) in old.outputs.iter().zip(self.new.node(id).outputs.clone()) {
            self.map[o.0] = Some(v);
        }
        Ok(id)
    }

    /// The finished graph with the old outputs and statistics plus `stat`.
    pub fn finish(mut self, stat: String) -> Result<Graph> {
        for (name, v) in &self.old.outputs {
            let nv = self.get(*v)?;
            self.new.push_output(name, nv)?;
        }
        self.new.stats = self.old.stats.clone();
        self.new.stats.push(stat);
        Ok(self.new)
    }
}
