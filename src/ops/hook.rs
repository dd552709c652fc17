//! A per-thread observer of top-level op calls: the hook through which the graph tracer (a layer above) records eager code.

use super::{Attrs, OpDef};
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::rc::Rc;

/// Sees every op called through [`super::dispatch::call`] on this thread, after it ran.
/// Calls made inside kernels or gradient rules are implementation details and are not seen.
pub trait CallObserver {
    /// `op` was applied to `inputs` with `attrs` and produced `outputs`.
    fn on_call(&self, op: &'static OpDef, attrs: &Attrs, inputs: &[&Tensor], outputs: &[Tensor]);
}

thread_local! {
    static OBSERVER: RefCell<Option<Rc<dyn CallObserver>>> = const { RefCell::new(None) };
}

/// Installs `observer` on this thread (or removes it with `None`); returns the previous one.
pub fn set_observer(observer: Option<Rc<dyn CallObserver>>) -> Option<Rc<dyn CallObserver>> {
    OBSERVER.with(|o| o.replace(observer))
}

/// Takes the observer out for the duration of a call, so nested calls stay unseen.
pub(crate) fn take() -> Option<Rc<dyn CallObserver>> {
    OBSERVER.with(|o| o.borrow_mut().take())
}

/// Puts back what [`take`] took.
pub(crate) fn restore(observer: Option<Rc<dyn CallObserver>>) {
    if observer.is_some() {
        OBSERVER.with(|o| *o.borrow_mut() = observer);
    }
}
