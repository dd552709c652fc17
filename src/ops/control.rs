//! Ordering ops: `after` passes a value through once another has been computed, an edge the level scheduler honours.

use super::util::one;
use super::{ArgSpec, GradVal, OpDef, OpKind};

/// `after(x, dep)`: `x` itself (the same memory), available only once `dep` exists.
///
/// The executor runs a node as soon as its inputs exist (levels), and the graph IR has no
/// control edges, so a data edge to `dep` is how a pass delays work: activation
/// checkpointing reads every input of a recomputed segment through `after(·, gradient)`, so
/// the recomputation waits for the backward pass to reach that segment instead of running
/// in the forward pass (where it would keep its results alive and save nothing).
pub static AFTER: OpDef = OpDef {
    name: "after",
    kind: OpKind::Opaque,
    doc: "returns x unchanged (sharing its memory) once dep has been computed: an ordering edge for the scheduler",
    inputs: &[ArgSpec::req("x"), ArgSpec::req("dep")],
    outputs: &["out"],
    attrs: &[],
    infer: |ctx| one(ctx.inputs[0].shape.clone(), ctx.inputs[0].dtype),
    // A new handle on the same storage: no copy, and memory tracking counts the bytes once.
    forward: |ctx| Ok(vec![ctx.inputs[0].detach()]),
    // The gradient passes to x unchanged; dep only orders, it gets none.
    backward: Some(|_, c| Ok(vec![c.grads[0].map(GradVal::Dense), None])),
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&AFTER];

#[cfg(test)]
mod tests {
    use crate::tensor::Tensor;

    #[test]
    fn after_returns_x_sharing_its_storage() {
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
        let dep = Tensor::from_slice(&[9.0f64], &[1]).unwrap();
        let out = crate::ops::call_named("after", &[&x, &dep], &[]).unwrap().remove(0);
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
        assert!(std::sync::Arc::ptr_eq(out.storage(), x.storage()));
    }
}
