//! Graph autocast: inserts cast nodes per the autocast policy table, one cast per (value, dtype) shared by every consumer.
//!
//! Run it on a model graph before `append_gradients`: the backward graph then holds the
//! casts' gradient rules, which cast gradients back, so f32 parameters get f32 gradients.
//! Graph outputs keep their declared dtypes (a cast back is added where the policy changed
//! one), so feeds and fetches of the graph stay as they were. An op without a kernel for
//! the autocast dtype (its inference refuses it) runs in f32 instead, and is counted.

use super::rewrite::Rewriter;
use crate::amp::policy::{Policy, check_autocast_dtype, input_targets, policy_of};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::builder::apply_op;
use crate::graph::dim::ValueType;
use crate::graph::infer::infer_types;
use crate::graph::ir::{Graph, NodeId, NodeKind, ValueId};
use crate::ops::{Attr, Attrs, unary::CAST};
use std::collections::HashMap;

/// Casts made so far, by (new value, dtype), and how often each was reused.
struct Casts {
    made: HashMap<(ValueId, DType), ValueId>,
    inserted: usize,
    reused: usize,
}

impl Casts {
    /// `v` as `dtype`: the existing cast node when there is one, else a new one.
    fn get(&mut self, g: &mut Graph, v: ValueId, dtype: DType) -> Result<ValueId> {
        if g.value(v).ty.dtype == dtype {
            return Ok(v);
        }
        if let Some(c) = self.made.get(&(v, dtype)) {
            self.reused += 1;
            return Ok(*c);
        }
        let attrs = Attrs::resolve("cast", CAST.attrs, &[("dtype", Attr::Int(dtype.code() as i64))])?;
        let c = apply_op(g, &CAST, &[v], attrs)?[0];
        self.made.insert((v, dtype), c);
        self.inserted += 1;
        Ok(c)
    }
}

/// A copy of `graph` with autocast casts to `dtype` (f16, bf16 or f32) inserted.
pub fn autocast(graph: &Graph, dtype: DType) -> Result<Graph> {
    check_autocast_dtype(dtype)?;
    let mut rw = Rewriter::new(graph);
    let mut casts = Casts { made: HashMap::new(), inserted: 0, reused: 0 };
    let (mut lowered, mut kept_f32, mut fallbacks) = (0, 0, 0);
    for (i, node) in graph.nodes().iter().enumerate() {
        let id = NodeId(i);
        let ins = rw.inputs(id)?;
        let types: Vec<ValueType> = ins.iter().map(|v| rw.new.value(*v).ty.clone()).collect();
        let (op, attrs) = match &node.kind {
            NodeKind::Op { op, attrs } => (*op, attrs),
            NodeKind::Fused { .. } => {
                let changed = node.inputs.iter().zip(&types).any(|(v, t)| graph.value(*v).ty.dtype != t.dtype);
                if changed {
                    return Err(Error::Unsupported(format!(
                        "autocast: {} would change dtype; run autocast before fusion (on the unoptimised graph)",
                        graph.describe(id)
                    )));
                }
                rw.copy(id)?;
                continue;
            }
            _ => {
                rw.copy(id)?;
                continue;
            }
        };
        let pol = policy_of(op);
        let dtypes: Vec<DType> = types.iter().map(|t| t.dtype).collect();
        let mut targets = input_targets(pol, dtype, &dtypes);
        if pol == Policy::Lower && targets.iter().any(Option::is_some) {
            let cast_types: Vec<ValueType> =
                types.iter().zip(&targets).map(|(t, d)| ValueType::new(d.unwrap_or(t.dtype), t.dims.clone())).collect();
            if infer_types(op, attrs, &cast_types, "autocast probe").is_ok() {
                lowered += 1;
            } else {
                // No kernel for the autocast dtype: f32 for this op, never a wrong result.
                targets = input_targets(pol, DType::F32, &dtypes);
                fallbacks += 1;
            }
        }
        if pol == Policy::F32 && dtypes.iter().any(|d| d.is_float()) {
            kept_f32 += 1;
        }
        let mut new_inputs = Vec::with_capacity(ins.len());
        for (v, target) in ins.iter().zip(&targets) {
            new_inputs.push(match target {
                Some(d) => casts.get(&mut rw.new, *v, *d)?,
                None => *v,
            });
        }
        let outs = apply_op(&mut rw.new, op, &new_inputs, attrs.clone())
            .map_err(|e| Error::Internal(format!("autocast: {} no longer type-checks: {e}", graph.describe(id))))?;
        for (old, new) in node.outputs.iter().zip(outs) {
            rw.alias(*old, new);
        }
    }
    // Outputs keep their declared dtypes.
    for (_, v) in graph.outputs() {
        let want = graph.value(*v).ty.dtype;
        let now = rw.get(*v)?;
        if rw.new.value(now).ty.dtype != want {
            let back = casts.get(&mut rw.new, now, want)?;
            rw.alias(*v, back);
        }
    }
    rw.finish(format!(
        "autocast: {} casts inserted, {} reused, {kept_f32} ops kept f32, {lowered} ops in {dtype}, \
         {fallbacks} ops fell back to f32 (no {dtype} kernel)",
        casts.inserted, casts.reused
    ))
}
