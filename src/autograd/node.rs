//! Tape nodes: the op, its attributes, edges to the inputs that need gradients, and saved tensors.

use crate::error::{Error, Result};
use crate::ops::{Attrs, OpDef};
use crate::tensor::Tensor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where an input's gradient goes.
pub(crate) enum Edge {
    /// The input does not need a gradient.
    None,
    /// A leaf: accumulate into its stored gradient.
    Leaf(Tensor),
    /// An op output: pass to that node's output slot.
    Node(Arc<Node>, usize),
}

/// Tensors a gradient rule may read: the forward inputs and outputs (without history, so
/// nodes never form cycles). Released after a backward pass unless the graph is retained.
pub(crate) struct Saved {
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) outputs: Vec<Tensor>,
}

/// One recorded op application.
pub struct Node {
    pub(crate) op: &'static OpDef,
    pub(crate) attrs: Attrs,
    pub(crate) edges: Vec<Edge>,
    pub(crate) saved: Mutex<Option<Saved>>,
    /// Set when the node was recorded inside an activation checkpoint: its saved tensors
    /// were not kept and that checkpoint's frame recomputes them (this node is the frame's
    /// n-th recorded one).
    pub(crate) deferred: Option<(Arc<super::checkpoint::Frame>, usize)>,
    /// Creation order: inputs are always older than the node, so descending order is topological.
    pub(crate) seq: u64,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Node {
    /// The op this node applied.
    pub fn op(&self) -> &'static OpDef {
        self.op
    }

    pub(crate) fn take_saved(&self, retain: bool) -> Result<Saved> {
        if let Some((frame, index)) = &self.deferred {
            return frame.unpack(*index, retain, self.op.name);
        }
        let mut slot = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        let saved = if retain {
            slot.as_ref().map(|s| Saved { inputs: s.inputs.clone(), outputs: s.outputs.clone() })
        } else {
            slot.take()
        };
        saved.ok_or_else(|| {
            Error::invalid(
                "tensor",
                format!(
                    "backward through `{}` a second time: its saved tensors were released by the first backward (pass retain_graph to keep them)",
                    self.op.name
                ),
            )
        })
    }
}

fn edge_of(t: &Tensor) -> Edge {
    match t.grad_fn() {
        Some((node, idx)) => match node.clone().downcast::<Node>() {
            Ok(n) => Edge::Node(n, *idx),
            Err(_) => Edge::None,
        },
        None if t.requires_grad() => Edge::Leaf(t.clone()),
        None => Edge::None,
    }
}

/// Attaches a tape node to `outputs` when grad mode is on, the op has a gradient rule and
/// some input requires grad; otherwise returns the outputs unchanged.
pub fn record(op: &'static OpDef, attrs: &Attrs, inputs: &[&Tensor], outputs: Vec<Tensor>) -> Vec<Tensor> {
    if op.backward.is_none() || !super::is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return outputs;
    }
    let saved = Saved {
        inputs: inputs.iter().map(|t| t.detach()).collect(),
        outputs: outputs.iter().map(Tensor::detach).collect(),
    };
    // Inside an activation checkpoint the saved tensors are dropped (or, while it
    // recomputes, handed to it).
    let deferred = super::checkpoint::pack(op, &saved);
    let node = Arc::new(Node {
        op,
        attrs: attrs.clone(),
        edges: inputs.iter().map(|t| edge_of(t)).collect(),
        saved: Mutex::new(if deferred.is_some() { None } else { Some(saved) }),
        deferred,
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
    });
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, t)| if t.dtype().is_float() { t.with_grad_fn((node.clone(), i)) } else { t })
        .collect()
}
