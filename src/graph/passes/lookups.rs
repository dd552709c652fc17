//! Lookup fusion: a concat of embedding lookups of every column of one index matrix becomes one `embedding_fields` node.

use super::dce::dce;
use super::rewrite::Rewriter;
use crate::error::Result;
use crate::graph::dim::Dim;
use crate::graph::ir::{Graph, NodeId, NodeKind, ValueId};
use crate::ops::fields::EMBEDDING_FIELDS;
use crate::ops::index::EMBEDDING;
use crate::ops::movement::SLICE;
use crate::ops::structure::CONCAT;
use crate::ops::{Attrs, OpDef};

/// Whether `n` is an op node of `op`; its attributes if so.
fn op_attrs<'g>(g: &'g Graph, n: NodeId, op: &OpDef) -> Option<&'g Attrs> {
    match &g.node(n).kind {
        NodeKind::Op { op: o, attrs } if std::ptr::eq(*o, op) => Some(attrs),
        _ => None,
    }
}

/// The index matrix and the tables when concat node `n` joins, along its second-last
/// dimension and in column order, the `embedding` lookups (without a padding row) of
/// columns `0..F` of one `[..., F]` index matrix, each lookup read by nothing else. The
/// CTR models build their sparse features this way: one table per field.
fn field_lookups(g: &Graph, n: NodeId, uses: &[usize]) -> Option<(ValueId, Vec<ValueId>)> {
    let rank = g.value(g.node(n).outputs[0]).ty.dims.len();
    let dim = op_attrs(g, n, &CONCAT)?.int("dim");
    if rank < 2 || (dim != rank as i64 - 2 && dim != -2) {
        return None;
    }
    let mut ids = None;
    let mut tables = Vec::new();
    for (f, v) in g.node(n).inputs.iter().enumerate() {
        let lookup = g.value(*v).node;
        if uses[v.0] != 1 || op_attrs(g, lookup, &EMBEDDING)?.opt_int("padding_idx").is_some() {
            return None;
        }
        let [table, column] = g.node(lookup).inputs[..] else { return None };
        let slice = g.value(column).node;
        let at = op_attrs(g, slice, &SLICE)?;
        let source = g.node(slice).inputs[0];
        let dims = &g.value(source).ty.dims;
        let last = dims.len() as i64 - 1;
        let column_f = (at.int("dim") == last || at.int("dim") == -1)
            && at.int("start") == f as i64
            && at.int("end") == f as i64 + 1
            && at.int("step") == 1;
        if !column_f || dims.len() + 1 != rank || *ids.get_or_insert(source) != source {
            return None;
        }
        tables.push(table);
    }
    let ids = ids?;
    (g.value(ids).ty.dims.last() == Some(&Dim::Fixed(tables.len()))).then_some((ids, tables))
}

/// Replaces each concat of one index matrix's column lookups by one `embedding_fields` node
/// (the same values, bit for bit): a batch-1 request of the Criteo-shaped DCN-v2 then runs
/// one node where it ran 53. DCE then drops the lookups and slices left unread.
pub fn fuse_lookups(graph: &Graph) -> Result<Graph> {
    let uses = graph.use_counts();
    let mut rw = Rewriter::new(graph);
    let (mut fused, mut lookups) = (0, 0);
    for i in 0..graph.nodes().len() {
        let n = NodeId(i);
        match field_lookups(graph, n, &uses) {
            Some((ids, tables)) => {
                let mut inputs = vec![rw.get(ids)?];
                for t in &tables {
                    inputs.push(rw.get(*t)?);
                }
                rw.push_like(n, NodeKind::Op { op: &EMBEDDING_FIELDS, attrs: Attrs::none() }, inputs)?;
                fused += 1;
                lookups += tables.len();
            }
            None => {
                rw.copy(n)?;
            }
        }
    }
    let g = rw.finish(format!("lookups: {lookups} column lookups into {fused} embedding_fields nodes"))?;
    if fused > 0 { dce(&g) } else { Ok(g) }
}
