//! Per-node run times of an executor run, summed over nodes of the same op and types into a table.

use crate::graph::{Graph, NodeId, NodeKind};
use std::collections::HashMap;
use std::fmt;

/// Time spent in one kind of node during a run: every node with the same op (or fused
/// program size) and the same input and output types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpTime {
    /// The op and its types, e.g. `linear(bf16[batch,429], bf16[429,429]) -> bf16[batch,429]`.
    pub signature: String,
    /// Nodes of this kind that ran.
    pub calls: usize,
    /// Their summed wall time in nanoseconds (nodes of one level overlap when run in parallel).
    pub nanos: u64,
}

/// The kinds of node of a run, slowest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// One row per kind of node, by descending total time.
    pub ops: Vec<OpTime>,
}

impl Profile {
    /// Groups the timed nodes of a run of `graph` by kind of node.
    pub(crate) fn new(graph: &Graph, node_nanos: &[(NodeId, u64)]) -> Profile {
        let mut rows: HashMap<String, (usize, u64)> = HashMap::new();
        for &(n, nanos) in node_nanos {
            let row = rows.entry(signature(graph, n)).or_default();
            row.0 += 1;
            row.1 += nanos;
        }
        let mut ops: Vec<OpTime> =
            rows.into_iter().map(|(signature, (calls, nanos))| OpTime { signature, calls, nanos }).collect();
        ops.sort_by(|a, b| b.nanos.cmp(&a.nanos).then_with(|| a.signature.cmp(&b.signature)));
        Profile { ops }
    }

    /// Total timed nanoseconds.
    pub fn total_nanos(&self) -> u64 {
        self.ops.iter().map(|o| o.nanos).sum()
    }
}

fn signature(graph: &Graph, n: NodeId) -> String {
    let node = graph.node(n);
    let name = match &node.kind {
        NodeKind::Op { op, .. } => op.name.to_string(),
        NodeKind::Fused { program, product: None } => format!("fused[{} ops]", program.steps.len()),
        NodeKind::Fused { program, product: Some(p) } => format!("{}+fused[{} ops]", p.op.name, program.steps.len()),
        _ => graph.describe(n),
    };
    let types =
        |vs: &[crate::graph::ValueId]| vs.iter().map(|v| graph.value(*v).ty.to_string()).collect::<Vec<_>>().join(", ");
    format!("{name}({}) -> {}", types(&node.inputs), types(&node.outputs))
}

impl fmt::Display for Profile {
    /// A table: milliseconds, share of the total, calls, signature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total_nanos().max(1) as f64;
        writeln!(f, "{:>9} {:>6} {:>5}  op", "ms", "%", "calls")?;
        for o in &self.ops {
            writeln!(
                f,
                "{:>9.3} {:>5.1}% {:>5}  {}",
                o.nanos as f64 / 1e6,
                100.0 * o.nanos as f64 / total,
                o.calls,
                o.signature
            )?;
        }
        Ok(())
    }
}
