//! Per-thread hooks on top-level op calls: the observer through which the graph tracer records eager code, and the input caster through which autocast casts (both layers above).

use super::{Attrs, OpDef};
use crate::error::Result;
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

/// Rewrites the inputs of top-level op calls before they run: the hook through which autocast
/// (a layer above) casts eager inputs. Kernels' inner calls never see it.
pub trait InputCaster {
    /// The inputs `op` should run on instead of `inputs` (`None`: run on them unchanged).
    /// Casts it makes go through [`super::dispatch::call`], so the tape records them.
    fn cast_inputs(&self, op: &'static OpDef, inputs: &[&Tensor], attrs: &Attrs) -> Result<Option<Vec<Tensor>>>;
}

thread_local! {
    static CASTER: RefCell<Option<Rc<dyn InputCaster>>> = const { RefCell::new(None) };
}

/// Installs `caster` on this thread (or removes it with `None`); returns the previous one.
pub fn set_caster(caster: Option<Rc<dyn InputCaster>>) -> Option<Rc<dyn InputCaster>> {
    // `try_with`: scopes may end while the thread's locals are being destroyed.
    CASTER.try_with(|c| c.replace(caster)).ok().flatten()
}

/// Takes the caster out while a kernel runs, so ops called inside kernels stay as written.
pub(crate) fn take_caster() -> Option<Rc<dyn InputCaster>> {
    CASTER.with(|c| c.borrow_mut().take())
}

/// Puts back what [`take_caster`] took.
pub(crate) fn restore_caster(caster: Option<Rc<dyn InputCaster>>) {
    if caster.is_some() {
        CASTER.with(|c| *c.borrow_mut() = caster);
    }
}

/// The installed caster, if any.
pub(crate) fn caster() -> Option<Rc<dyn InputCaster>> {
    CASTER.with(|c| c.borrow().clone())
}
