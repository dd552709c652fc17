//! The tracer: run eager code once under a scope on this thread; the ops it calls become graph nodes.

use super::builder::GraphBuilder;
use super::dim::{Dim, ValueType};
use super::ir::{Graph, ValueId};
use crate::error::{Error, Result};
use crate::ops::hook::{CallObserver, set_observer};
use crate::ops::{Attrs, OpDef};
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Default)]
struct TraceState {
    builder: RefCell<GraphBuilder>,
    /// Tensor identity -> value. `keep` holds every mapped tensor alive, so an identity is
    /// never reused by another tensor during the trace.
    values: RefCell<HashMap<usize, ValueId>>,
    keep: RefCell<Vec<Tensor>>,
    /// The first failure while recording; reported by `finish`.
    error: RefCell<Option<Error>>,
    params: RefCell<usize>,
}

impl TraceState {
    fn remember(&self, t: &Tensor, v: ValueId) {
        self.values.borrow_mut().insert(t.id(), v);
        self.keep.borrow_mut().push(t.clone());
    }

    /// The value of `t`: recorded before, or a new parameter (a leaf that requires grad) or
    /// constant (anything else the traced code created outside the trace's ops).
    fn value_of(&self, t: &Tensor) -> Result<ValueId> {
        if let Some(v) = self.values.borrow().get(&t.id()) {
            return Ok(*v);
        }
        let v = if t.requires_grad() && t.is_leaf() {
            let mut n = self.params.borrow_mut();
            *n += 1;
            self.builder.borrow_mut().param(&format!("param{}", *n - 1), t, true)?
        } else {
            self.builder.borrow_mut().constant(t)?
        };
        self.remember(t, v);
        Ok(v)
    }

    fn record(&self, op: &'static OpDef, attrs: &Attrs, inputs: &[&Tensor], outputs: &[Tensor]) -> Result<()> {
        let ins = inputs.iter().map(|t| self.value_of(t)).collect::<Result<Vec<_>>>()?;
        let outs = self.builder.borrow_mut().apply(op, &ins, attrs.clone())?;
        let builder = self.builder.borrow();
        for (t, v) in outputs.iter().zip(&outs) {
            let ty = builder.value_type(*v)?;
            let agrees = ty.dtype == t.dtype()
                && ty.dims.len() == t.ndim()
                && ty.dims.iter().zip(t.shape()).all(|(d, &n)| d.fixed().is_none_or(|m| m == n));
            if !agrees {
                return Err(Error::Internal(format!(
                    "trace of `{}`: graph type {ty} disagrees with the eager result {:?} {}",
                    op.name,
                    t.shape(),
                    t.dtype()
                )));
            }
        }
        drop(builder);
        for (t, v) in outputs.iter().zip(outs) {
            self.remember(t, v);
        }
        Ok(())
    }
}

impl CallObserver for TraceState {
    fn on_call(&self, op: &'static OpDef, attrs: &Attrs, inputs: &[&Tensor], outputs: &[Tensor]) {
        if self.error.borrow().is_some() {
            return;
        }
        if let Err(e) = self.record(op, attrs, inputs, outputs) {
            *self.error.borrow_mut() = Some(e);
        }
    }
}

/// A tracing scope on the calling thread: while it lives, every op called on this thread
/// through the eager API is recorded (and still runs eagerly). Declare inputs before use,
/// name outputs, then `finish`. Tensors the traced code did not declare become parameters
/// (leaves that require grad, named `param0`, `param1`, ... unless declared with `param`)
/// or constants.
pub struct Tracer {
    state: Rc<TraceState>,
    previous: Option<Option<Rc<dyn CallObserver>>>,
}

impl Tracer {
    /// Starts recording on this thread (a scope already open is suspended until this one ends).
    pub fn start() -> Tracer {
        let state = Rc::new(TraceState::default());
        let previous = set_observer(Some(state.clone()));
        Tracer { state, previous: Some(previous) }
    }

    /// Declares `tensor` as the input `name`; `dims` may make some dimensions symbolic
    /// (they must match the tensor's rank, and fixed ones its sizes).
    pub fn input(&self, name: &str, tensor: &Tensor, dims: Option<&[Dim]>) -> Result<()> {
        let dims = match dims {
            Some(d) => {
                let ty = ValueType::new(tensor.dtype(), d.to_vec());
                super::dim::Bindings::default().bind(name, &ty, tensor.shape())?;
                d.to_vec()
            }
            None => super::dim::fixed_dims(tensor.shape()),
        };
        self.declare(tensor, |b| b.input(name, tensor.dtype(), &dims))
    }

    /// Declares `tensor` as the parameter `name`.
    pub fn param(&self, name: &str, tensor: &Tensor, trainable: bool) -> Result<()> {
        self.declare(tensor, |b| b.param(name, tensor, trainable))
    }

    fn declare(&self, tensor: &Tensor, add: impl FnOnce(&mut GraphBuilder) -> Result<ValueId>) -> Result<()> {
        if self.state.values.borrow().contains_key(&tensor.id()) {
            return Err(Error::invalid(
                "tensor",
                "this tensor is already part of the trace (declare inputs and parameters before using them)",
            ));
        }
        let v = add(&mut self.state.builder.borrow_mut())?;
        self.state.remember(tensor, v);
        Ok(())
    }

    /// Names the traced value of `tensor` as output `name`.
    pub fn output(&self, name: &str, tensor: &Tensor) -> Result<()> {
        let v = self.state.value_of(tensor)?;
        self.state.builder.borrow_mut().output(name, v)
    }

    /// Ends the scope and returns the graph, or the first error met while recording.
    pub fn finish(mut self) -> Result<Graph> {
        self.stop();
        if let Some(e) = self.state.error.borrow_mut().take() {
            return Err(e);
        }
        std::mem::take(&mut *self.state.builder.borrow_mut()).finish()
    }

    fn stop(&mut self) {
        if let Some(previous) = self.previous.take() {
            set_observer(previous);
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Traces `f` (see [`Tracer`]) and returns the graph.
pub fn trace(f: impl FnOnce(&Tracer) -> Result<()>) -> Result<Graph> {
    let tracer = Tracer::start();
    f(&tracer)?;
    tracer.finish()
}
