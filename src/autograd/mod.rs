//! Eager autograd: grad mode, the tape (nodes recorded by the dispatcher), and `backward`.

mod backward;
pub mod checkpoint;
pub mod gradcheck;
mod node;

pub use backward::{backward, backward_with};
pub use checkpoint::{CheckpointOptions, SequentialFn, checkpoint, checkpoint_sequential};
pub use gradcheck::gradcheck;
pub use node::{Node, record};

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True when ops on this thread record gradients (the default).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous grad mode when dropped.
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Sets grad mode on this thread and returns the previous setting (for callers that manage
/// scopes themselves, like the C ABI).
pub fn replace_grad_enabled(on: bool) -> bool {
    GRAD_ENABLED.with(|g| g.replace(on))
}

/// Sets grad mode on this thread until the guard drops (nested scopes restore in order).
pub fn set_grad_enabled(on: bool) -> GradModeGuard {
    GradModeGuard { previous: replace_grad_enabled(on) }
}

/// Runs `f` with recording off on this thread.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = set_grad_enabled(false);
    f()
}
