//! Eager autocast: a thread-local scope in which top-level op calls cast their inputs per the policy table.
//!
//! [`autocast`] returns a guard; while it lives, every op called through
//! [`crate::ops::dispatch::call`] on this thread runs with its floating inputs cast as
//! [`super::policy`] says. The casts are ordinary `cast` op calls, so the tape records them
//! and the cast's gradient rule casts gradients back: f32 leaves get f32 gradients. Casts of
//! f32 leaves that require grad (the weights) are cached per (tensor, dtype) until the
//! outermost scope exits, so a weight used by several ops is cast once per region.
//! Nested scopes (including [`autocast_disabled`]) restore the outer state when dropped.

use super::policy::{self, Policy, check_autocast_dtype, input_targets};
use crate::autograd;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::hook::{self, InputCaster};
use crate::ops::{Attrs, InferCtx, Meta, OpDef};
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;

/// What autocast did in the current outermost region (counters reset when one begins).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AutocastStats {
    /// Cast op calls made (cache hits excluded).
    pub casts: u64,
    /// Weight casts served from the cache.
    pub cache_hits: u64,
    /// Op calls that ran in f32 because the op has no kernel for the autocast dtype.
    pub f32_fallbacks: u64,
}

#[derive(Default)]
struct State {
    /// The autocast dtype in effect (`None`: off).
    dtype: Option<DType>,
    /// Open scopes, enabled or not; the cache lives while this is above zero.
    depth: usize,
    /// Casts of f32 leaves requiring grad: (tensor id, dtype) -> (the source, kept alive so
    /// its id stays unique, and its cast).
    cache: HashMap<(usize, DType), (Tensor, Tensor)>,
    stats: AutocastStats,
    /// The caster that was installed before the outermost scope (restored at its end).
    outer_caster: Option<Rc<dyn InputCaster>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// The default autocast dtype of a device: bf16 on CPU, f16 on CUDA (PyTorch's table).
pub fn default_dtype(device: Device) -> DType {
    match device {
        Device::Cpu => DType::BF16,
        Device::Cuda(_) => DType::F16,
    }
}

/// The autocast dtype in effect on this thread (`None`: autocast is off).
pub fn current_dtype() -> Option<DType> {
    STATE.with(|s| s.borrow().dtype)
}

/// Number of open autocast scopes on this thread (enabled or disabled ones).
pub fn depth() -> usize {
    STATE.with(|s| s.borrow().depth)
}

/// The counters of the current (or, after it ended, the last) outermost region on this thread.
pub fn autocast_stats() -> AutocastStats {
    STATE.with(|s| s.borrow().stats)
}

/// Ends one autocast scope when dropped, restoring the state before it. Not `Send`: scopes
/// belong to the thread that opened them.
#[must_use = "autocast lasts while the guard lives"]
pub struct AutocastGuard {
    previous: Option<DType>,
    _thread_bound: PhantomData<*const ()>,
}

/// Turns autocast on with `dtype` (f16, bf16 or f32) on this thread until the guard drops.
/// A dtype that is not one of those is an error naming it.
pub fn autocast(dtype: DType) -> Result<AutocastGuard> {
    check_autocast_dtype(dtype)?;
    Ok(enter(Some(dtype)))
}

/// Turns autocast off on this thread until the guard drops (ops inside run as written).
pub fn autocast_disabled() -> AutocastGuard {
    enter(None)
}

fn enter(dtype: Option<DType>) -> AutocastGuard {
    let outermost = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.depth += 1;
        if s.depth == 1 {
            s.stats = AutocastStats::default();
        }
        s.depth == 1
    });
    if outermost {
        let previous = hook::set_caster(Some(Rc::new(Caster)));
        STATE.with(|s| s.borrow_mut().outer_caster = previous);
    }
    let previous = STATE.with(|s| std::mem::replace(&mut s.borrow_mut().dtype, dtype));
    AutocastGuard { previous, _thread_bound: PhantomData }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // `try_with`: a guard kept in a thread-local (the C ABI's scope stack) may drop while
        // the thread's locals are being destroyed; then there is nothing left to restore.
        let Ok((ended, outer, cache)) = STATE.try_with(|s| {
            let mut s = s.borrow_mut();
            s.dtype = self.previous;
            s.depth = s.depth.saturating_sub(1);
            if s.depth == 0 {
                // Taken out here and dropped below, outside the borrow: dropping tensors
                // never calls back, but keeping the borrow short costs nothing.
                (true, s.outer_caster.take(), std::mem::take(&mut s.cache))
            } else {
                (false, None, HashMap::new())
            }
        }) else {
            return;
        };
        if ended {
            hook::set_caster(outer);
        }
        drop(cache);
    }
}

/// The dispatcher's hook: applies the policy to one call.
struct Caster;

impl InputCaster for Caster {
    fn cast_inputs(&self, op: &'static OpDef, inputs: &[&Tensor], attrs: &Attrs) -> Result<Option<Vec<Tensor>>> {
        let Some(low) = current_dtype() else { return Ok(None) };
        let dtypes: Vec<DType> = inputs.iter().map(|t| t.dtype()).collect();
        let pol = policy::policy_of(op);
        let mut targets = input_targets(pol, low, &dtypes);
        if targets.iter().all(Option::is_none) {
            return Ok(None);
        }
        if pol == Policy::Lower && !accepts(op, inputs, attrs, &targets) {
            // No kernel for the autocast dtype: run this op in f32 rather than fail or round wrongly.
            targets = input_targets(pol, DType::F32, &dtypes);
            STATE.with(|s| s.borrow_mut().stats.f32_fallbacks += 1);
        }
        let mut out = Vec::with_capacity(inputs.len());
        for (t, target) in inputs.iter().zip(targets) {
            out.push(match target {
                Some(d) => cast_cached(t, d)?,
                None => (*t).clone(),
            });
        }
        Ok(Some(out))
    }
}

/// Whether `op`'s inference accepts the inputs at their target dtypes (inference is where an
/// op states which dtypes it has kernels for).
pub(crate) fn accepts(op: &'static OpDef, inputs: &[&Tensor], attrs: &Attrs, targets: &[Option<DType>]) -> bool {
    let metas: Vec<Meta> =
        inputs.iter().zip(targets).map(|(t, d)| Meta::new(t.shape().to_vec(), d.unwrap_or(t.dtype()))).collect();
    (op.infer)(&InferCtx { op: op.name, inputs: &metas, attrs }).is_ok()
}

/// `t` cast to `dtype`, through the region's cache when `t` is an f32 leaf requiring grad.
fn cast_cached(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let cacheable = t.dtype() == DType::F32 && t.is_leaf() && t.requires_grad() && autograd::is_grad_enabled();
    if !cacheable {
        STATE.with(|s| s.borrow_mut().stats.casts += 1);
        return t.cast(dtype);
    }
    let key = (t.id(), dtype);
    if let Some(hit) = STATE.with(|s| s.borrow().cache.get(&key).map(|(_, c)| c.clone())) {
        STATE.with(|s| s.borrow_mut().stats.cache_hits += 1);
        return Ok(hit);
    }
    let cast = t.cast(dtype)?;
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.stats.casts += 1;
        s.cache.insert(key, (t.clone(), cast.clone()));
    });
    Ok(cast)
}
