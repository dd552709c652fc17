//! The readable text dump of a graph: one line per node, then the outputs and each pass's statistics.

use super::ir::{Graph, NodeKind};
use std::fmt;

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "graph: {} inputs, {} params, {} ops, {} outputs",
            self.inputs().len(),
            self.params().len(),
            self.op_count(),
            self.outputs.len()
        )?;
        for node in &self.nodes {
            let outs: Vec<String> = node.outputs.iter().map(|v| format!("{v}: {}", self.value(*v).ty)).collect();
            let ins: Vec<String> = node.inputs.iter().map(|v| v.to_string()).collect();
            let rhs = match &node.kind {
                NodeKind::Input { name } => format!("input {name:?}"),
                NodeKind::Param { name, trainable, .. } => {
                    format!("param {name:?}{}", if *trainable { "" } else { " (frozen)" })
                }
                NodeKind::Const { tensor } if tensor.numel() == 1 => {
                    format!("const {}", tensor.item().map_or_else(|_| "?".to_string(), |v| format!("{v}")))
                }
                NodeKind::Const { .. } => "const".to_string(),
                NodeKind::Fused { program, product: None } => format!("fused({}) {{ {program} }}", ins.join(", ")),
                // The program's in0 is the product, written where it is read.
                NodeKind::Fused { program, product: Some(p) } => {
                    let (args, rest) = ins.split_at(p.arity.min(ins.len()));
                    let a = p.attrs.to_string();
                    let head = if a.is_empty() { args.join(", ") } else { format!("{}; {a}", args.join(", ")) };
                    let all: Vec<String> =
                        std::iter::once(format!("{}({head})", p.op.name)).chain(rest.iter().cloned()).collect();
                    format!("fused({}) {{ {program} }}", all.join(", "))
                }
                NodeKind::Op { op, attrs } => {
                    let a = attrs.to_string();
                    if a.is_empty() {
                        format!("{}({})", op.name, ins.join(", "))
                    } else {
                        format!("{}({}; {a})", op.name, ins.join(", "))
                    }
                }
            };
            writeln!(f, "  {} = {rhs}", outs.join(", "))?;
        }
        for (name, v) in &self.outputs {
            writeln!(f, "  output {name:?} = {v}")?;
        }
        for line in &self.stats {
            writeln!(f, "  pass {line}")?;
        }
        Ok(())
    }
}
