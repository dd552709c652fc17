//! Common-subexpression elimination: pure op nodes with the same op, attributes and inputs, and equal small constants, become one.

use super::rewrite::Rewriter;
use crate::error::Result;
use crate::graph::ir::{Graph, NodeId, NodeKind, ValueId};
use std::collections::HashMap;

/// Constants up to this many bytes are compared by content (autodiff makes many scalars).
const SMALL_CONST_BYTES: usize = 256;

/// What makes two nodes the same computation.
#[derive(PartialEq, Eq, Hash)]
enum Key {
    Op { op: &'static str, attrs: String, inputs: Vec<ValueId> },
    Const { dtype: i32, shape: Vec<usize>, bytes: Vec<u8> },
}

/// Merges duplicate pure computations; the first occurrence survives.
pub fn cse(graph: &Graph) -> Result<Graph> {
    let mut rw = Rewriter::new(graph);
    let mut seen: HashMap<Key, Vec<ValueId>> = HashMap::new();
    let mut merged = 0;
    for (i, node) in graph.nodes().iter().enumerate() {
        let id = NodeId(i);
        let key = match &node.kind {
            // Attributes print bitwise-distinct floats differently (`{:?}`), so the text is a faithful key.
            NodeKind::Op { op, attrs } if op.pure => {
                Some(Key::Op { op: op.name, attrs: attrs.to_string(), inputs: rw.inputs(id)? })
            }
            NodeKind::Const { tensor } if tensor.nbytes() <= SMALL_CONST_BYTES => {
                let mut bytes = vec![0u8; tensor.nbytes()];
                tensor.copy_to_bytes(&mut bytes)?;
                Some(Key::Const { dtype: tensor.dtype().code(), shape: tensor.shape().to_vec(), bytes })
            }
            _ => None,
        };
        match key.as_ref().and_then(|k| seen.get(k)) {
            Some(existing) => {
                for (o, n) in node.outputs.iter().zip(existing.clone()) {
                    rw.alias(*o, n);
                }
                merged += 1;
            }
            None => {
                let new = rw.copy(id)?;
                if let Some(k) = key {
                    seen.insert(k, rw.new.node(new).outputs.clone());
                }
            }
        }
    }
    let before = graph.nodes().len();
    rw.finish(format!("cse: merged {merged} duplicate nodes ({before} -> {} nodes)", before - merged))
}
