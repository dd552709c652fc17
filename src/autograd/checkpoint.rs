//! Eager activation checkpointing (non-reentrant): a function's tape nodes keep no saved tensors; the first backward that needs one re-runs the function to get them.
//!
//! This is PyTorch's `use_reentrant=False` design (saved-tensor hooks). Inside
//! [`checkpoint`] the ops record their tape nodes as usual, so gradients flow through the
//! ordinary tape (also to parameters the function captures, and with no input requiring
//! grad), but each node's saved inputs and outputs are dropped: the intermediate tensors
//! die with the forward call and only the function's inputs are kept. When `backward`
//! reaches such a node, the checkpoint re-runs the function once, with grad recording on
//! and the random generator restored to its state at the forward call, collects the saved
//! tensors of the recomputed nodes in recording order, and hands each original node the
//! one with its index (then drops it, so memory falls as the backward proceeds).
//!
//! Random numbers: eager ops take their randomness explicitly (`Tensor::dropout` a seed,
//! `Tensor::rand_normal` a [`Generator`]); there is no hidden global generator. So the
//! checkpointed function receives the generator it draws from, and the checkpoint
//! captures that generator's state. With `preserve_rng_state` (the default) the
//! recomputation replays the forward's draws exactly; without it, it continues from the
//! state the forward left behind, as PyTorch's does from the ambient generator, and masks
//! differ (the negative control).

use super::node::Saved;
use crate::error::{Error, Result};
use crate::ops::OpDef;
use crate::rng::Generator;
use crate::tensor::Tensor;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A checkpointed function: inputs and the generator it draws random numbers from.
type SegmentFn = dyn Fn(&[Tensor], &mut Generator) -> Result<Vec<Tensor>> + Send + Sync;

/// One stage of [`checkpoint_sequential`].
pub type SequentialFn = Arc<dyn Fn(&Tensor, &mut Generator) -> Result<Tensor> + Send + Sync>;

/// Options of [`checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// Replay the generator state of the forward call on recomputation (default true), so
    /// random ops (dropout) draw the same numbers. False only for testing that it matters.
    pub preserve_rng_state: bool,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions { preserve_rng_state: true }
    }
}

/// One checkpointed call: what recomputation needs, and the recomputed saved tensors.
pub(crate) struct Frame {
    f: Arc<SegmentFn>,
    /// The inputs, detached (history cut) with their requires-grad flags, so recomputation
    /// records the same nodes.
    inputs: Vec<Tensor>,
    /// Generator state the recomputation starts from.
    rng_state: AtomicU64,
    /// The autocast dtype in force at forward (`None`: off); recomputation runs under it,
    /// so it casts as the forward did, whatever scope the backward runs in.
    autocast: Option<crate::dtype::DType>,
    /// Ops of the nodes recorded in the forward call, in order (checked on recomputation).
    recorded: Mutex<Vec<&'static str>>,
    /// Saved tensors from the recomputation, by recording index; `None` before it ran.
    cache: Mutex<Option<Vec<Option<Saved>>>>,
}

/// What a checkpoint scope on this thread does with recorded nodes.
enum Scope {
    /// Forward: drop the saved tensors, note the op.
    Forward(Arc<Frame>),
    /// Recomputation: collect the saved tensors.
    Recompute(Vec<(&'static str, Saved)>),
}

thread_local! {
    /// Innermost checkpoint scope last; a nested checkpoint only sees its own nodes.
    static SCOPES: RefCell<Vec<Scope>> = const { RefCell::new(Vec::new()) };
}

/// Pops the scope it pushed, also when the function fails or panics.
struct ScopeGuard;

impl ScopeGuard {
    fn push(scope: Scope) -> ScopeGuard {
        SCOPES.with(|s| s.borrow_mut().push(scope));
        ScopeGuard
    }

    fn pop(self) -> Option<Scope> {
        let scope = SCOPES.with(|s| s.borrow_mut().pop());
        std::mem::forget(self);
        scope
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        SCOPES.with(|s| s.borrow_mut().pop());
    }
}

/// Called by the tape for every recorded node: inside a checkpoint's forward returns the
/// frame and index that will recompute the node's saved tensors (the caller drops them);
/// during a recomputation takes a copy of them; otherwise `None`.
pub(crate) fn pack(op: &'static OpDef, saved: &Saved) -> Option<(Arc<Frame>, usize)> {
    SCOPES.with(|s| match s.borrow_mut().last_mut() {
        Some(Scope::Forward(frame)) => {
            let mut rec = frame.recorded.lock().unwrap_or_else(|p| p.into_inner());
            rec.push(op.name);
            Some((frame.clone(), rec.len() - 1))
        }
        Some(Scope::Recompute(out)) => {
            out.push((op.name, Saved { inputs: saved.inputs.clone(), outputs: saved.outputs.clone() }));
            None
        }
        None => None,
    })
}

impl Frame {
    /// The saved tensors of the `index`-th node recorded in the forward call (an `op` node),
    /// recomputing the function the first time.
    pub(crate) fn unpack(&self, index: usize, retain: bool, op: &str) -> Result<Saved> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.is_none() {
            *cache = Some(self.recompute()?);
        }
        let slot = &mut cache.as_mut().expect("filled above")[index];
        let saved = if retain {
            slot.as_ref().map(|s| Saved { inputs: s.inputs.clone(), outputs: s.outputs.clone() })
        } else {
            slot.take()
        };
        saved.ok_or_else(|| {
            Error::invalid(
                "tensor",
                format!(
                    "backward through `{op}` inside a checkpoint a second time: its recomputed tensors were released \
                     by the first backward (pass retain_graph to keep them)"
                ),
            )
        })
    }

    fn recompute(&self) -> Result<Vec<Option<Saved>>> {
        let _grad = super::set_grad_enabled(true);
        let mut rng = Generator::new(self.rng_state.load(Ordering::Relaxed));
        let guard = ScopeGuard::push(Scope::Recompute(Vec::new()));
        let outs = with_forward_autocast(self.autocast, || (self.f)(&self.inputs, &mut rng))?;
        let Some(Scope::Recompute(got)) = guard.pop() else {
            return Err(Error::Internal("checkpoint scopes were unbalanced".into()));
        };
        drop(outs?);
        let want = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        let ops: Vec<&str> = got.iter().map(|(op, _)| *op).collect();
        if ops != *want {
            return Err(Error::invalid(
                "checkpoint",
                format!(
                    "the checkpointed function recorded different ops when re-run ({} ops {:?}… instead of {} ops \
                     {:?}…): it must compute the same thing from the same inputs and generator",
                    ops.len(),
                    &ops[..ops.len().min(4)],
                    want.len(),
                    &want[..want.len().min(4)]
                ),
            ));
        }
        Ok(got.into_iter().map(|(_, s)| Some(s)).collect())
    }
}

/// Runs `body` under the autocast state captured at forward (`None`: autocast off).
fn with_forward_autocast<R>(autocast: Option<crate::dtype::DType>, body: impl FnOnce() -> R) -> Result<R> {
    let _scope = match autocast {
        Some(dtype) => crate::amp::autocast(dtype)?,
        None => crate::amp::autocast_disabled(),
    };
    Ok(body())
}

/// Runs `f(inputs, rng)` without keeping its intermediate tensors for the backward pass;
/// the backward recomputes them (see the module documentation). `f` must compute the same
/// ops from the same inputs and generator state. With grad recording off this is just
/// `f(inputs, rng)`.
pub fn checkpoint<F>(f: F, inputs: &[Tensor], rng: &mut Generator, options: CheckpointOptions) -> Result<Vec<Tensor>>
where
    F: Fn(&[Tensor], &mut Generator) -> Result<Vec<Tensor>> + Send + Sync + 'static,
{
    if !super::is_grad_enabled() {
        return f(inputs, rng);
    }
    let detached = inputs
        .iter()
        .map(|t| {
            let d = t.detach();
            d.set_requires_grad(t.requires_grad());
            d
        })
        .collect();
    let frame = Arc::new(Frame {
        f: Arc::new(f),
        inputs: detached,
        rng_state: AtomicU64::new(rng.state()),
        autocast: crate::amp::current_dtype(),
        recorded: Mutex::new(Vec::new()),
        cache: Mutex::new(None),
    });
    let guard = ScopeGuard::push(Scope::Forward(frame.clone()));
    let outs = (frame.f)(inputs, rng);
    drop(guard);
    if !options.preserve_rng_state {
        frame.rng_state.store(rng.state(), Ordering::Relaxed);
    }
    outs
}

/// Runs the chain `fns` on `x` in `segments` pieces of `fns.len() / segments` stages, each
/// but the last under [`checkpoint`] (the last one's backward comes right after its
/// forward, so it keeps its tensors), as PyTorch's `checkpoint_sequential` does.
pub fn checkpoint_sequential(
    fns: &[SequentialFn],
    segments: usize,
    x: &Tensor,
    rng: &mut Generator,
    options: CheckpointOptions,
) -> Result<Tensor> {
    if segments == 0 || segments > fns.len() {
        return Err(Error::invalid(
            "segments",
            format!("must be between 1 and the number of functions ({}), given {segments}", fns.len()),
        ));
    }
    let size = fns.len() / segments;
    let mut x = x.clone();
    let mut start = 0;
    for _ in 0..segments - 1 {
        let chunk: Vec<SequentialFn> = fns[start..start + size].to_vec();
        let run = move |ins: &[Tensor], rng: &mut Generator| -> Result<Vec<Tensor>> {
            let mut h = ins[0].clone();
            for f in &chunk {
                h = f(&h, rng)?;
            }
            Ok(vec![h])
        };
        x = checkpoint(run, &[x], rng, options)?.remove(0);
        start += size;
    }
    for f in &fns[start..] {
        x = f(&x, rng)?;
    }
    Ok(x)
}
