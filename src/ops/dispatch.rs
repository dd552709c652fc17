//! Eager dispatch: arity and attribute checks, inference, the device kernel, and tape recording.

use super::hook;
use super::util::prefix;
use super::{Attr, Attrs, ForwardCtx, InferCtx, Meta, OpDef, find_op};
use crate::autograd;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::dims::Dims;

pub(crate) fn check_arity(op: &OpDef, n: usize) -> Result<()> {
    let required = op.inputs.iter().filter(|a| !a.optional).count();
    let variadic = op.inputs.last().is_some_and(|a| a.variadic);
    let max = if variadic { usize::MAX } else { op.inputs.len() };
    if n < required || n > max {
        let names: Vec<&str> = op.inputs.iter().map(|a| a.name).collect();
        let expected = if variadic {
            format!("at least {required}")
        } else if required == op.inputs.len() {
            format!("{required}")
        } else {
            format!("{required} to {}", op.inputs.len())
        };
        return Err(Error::invalid(
            "inputs",
            format!("{}: expected {expected} inputs ({names:?}), given {n}", op.name),
        ));
    }
    Ok(())
}

/// Runs `op` on `inputs` without recording: checks, inference, kernel.
pub fn apply(op: &'static OpDef, inputs: &[&Tensor], attrs: &Attrs) -> Result<Vec<Tensor>> {
    let owned: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
    apply_owned(op, &owned, attrs)
}

/// [`apply`] over tensors the caller already holds (the executor's per-node path, which
/// saves building a second list).
pub fn apply_owned(op: &'static OpDef, inputs: &[Tensor], attrs: &Attrs) -> Result<Vec<Tensor>> {
    check_arity(op, inputs.len())?;
    if let Some(first) = inputs.first()
        && let Some((i, t)) = inputs.iter().enumerate().find(|(_, t)| t.device() != first.device())
    {
        return Err(Error::invalid(
            "inputs",
            format!(
                "{}: input {i} is on {}, input 0 on {}; move tensors to one device first",
                op.name,
                t.device(),
                first.device()
            ),
        ));
    }
    let outputs = with_metas(inputs, |metas| (op.infer)(&InferCtx { op: op.name, inputs: metas, attrs }))
        .map_err(|e| prefix(op.name, e))?;
    // Kernels may call other ops; those are implementation details, never taped.
    let _no_grad = autograd::set_grad_enabled(false);
    let result =
        (op.forward)(&ForwardCtx { op: op.name, inputs, attrs, outputs: &outputs }).map_err(|e| prefix(op.name, e))?;
    debug_assert!(
        result.iter().zip(&outputs).all(|(t, m)| t.shape() == m.shape.as_slice() && t.dtype() == m.dtype),
        "{}: kernel disagrees with inference",
        op.name
    );
    Ok(result)
}

/// Calls `f` with the metas of `inputs`, on the stack for the usual few inputs: this runs for
/// every node of every request.
fn with_metas<R>(inputs: &[Tensor], f: impl FnOnce(&[Meta]) -> R) -> R {
    const ON_STACK: usize = 4;
    if inputs.len() <= ON_STACK {
        let metas: [Meta; ON_STACK] =
            std::array::from_fn(|i| inputs.get(i).map_or_else(|| Meta::new(Dims::new(), DType::F32), Meta::of));
        f(&metas[..inputs.len()])
    } else {
        f(&inputs.iter().map(Meta::of).collect::<Vec<_>>())
    }
}

/// Runs `op` and records it on the tape when some input requires grad.
pub fn call(op: &'static OpDef, inputs: &[&Tensor], attrs: &Attrs) -> Result<Vec<Tensor>> {
    // Autocast first: its casts are calls of their own (taped, and seen by a tracer).
    let cast = match hook::caster() {
        Some(c) => c.cast_inputs(op, inputs, attrs)?,
        None => None,
    };
    let cast_refs: Vec<&Tensor>;
    let inputs = match &cast {
        Some(ts) => {
            cast_refs = ts.iter().collect();
            &cast_refs[..]
        }
        None => inputs,
    };
    let observer = hook::take();
    let caster = hook::take_caster();
    let outputs = apply(op, inputs, attrs);
    hook::restore_caster(caster);
    hook::restore(observer.clone());
    let outputs = autograd::record(op, attrs, inputs, outputs?);
    if let Some(o) = observer {
        o.on_call(op, attrs, inputs, &outputs);
    }
    Ok(outputs)
}

/// Runs a single-output op.
pub fn call1(op: &'static OpDef, inputs: &[&Tensor], attrs: &Attrs) -> Result<Tensor> {
    Ok(call(op, inputs, attrs)?.remove(0))
}

/// Runs the op called `name` with attributes given as (name, value) pairs.
pub fn call_named(name: &str, inputs: &[&Tensor], attrs: &[(&str, Attr)]) -> Result<Vec<Tensor>> {
    let op = find_op(name)?;
    let attrs = Attrs::resolve(op.name, op.attrs, attrs)?;
    call(op, inputs, &attrs)
}

/// Resolves attributes for a statically known op; specs are fixed, so failure is a bug.
pub fn attrs_of(op: &'static OpDef, given: &[(&str, Attr)]) -> Result<Attrs> {
    Attrs::resolve(op.name, op.attrs, given)
}
