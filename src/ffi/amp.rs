//! Eager autocast through the C ABI: push and pop autocast scopes on the calling thread.
//!
//! Thread safety: scopes belong to the calling thread; each thread has its own stack.

use super::guard::{guard, out};
use super::library::DsDtype;
use super::status::DsStatus;
use crate::amp::{self, AutocastGuard};
use crate::dtype::DType;
use crate::error::Error;
use std::cell::RefCell;

thread_local! {
    /// The scopes opened through the C ABI on this thread, innermost last.
    static SCOPES: RefCell<Vec<AutocastGuard>> = const { RefCell::new(Vec::new()) };
}

/// Opens an autocast scope on the calling thread: op calls on this thread then cast their
/// inputs per the autocast policy (matrix products in `dtype`, reductions, softmax, norms
/// and losses in f32, mixed inputs promoted). `dtype` is `DS_DTYPE_BF16` (the CPU default),
/// `DS_DTYPE_F16` or `DS_DTYPE_F32`; any other code is an error naming it. Close with
/// `ds_autocast_pop`; nested scopes restore the outer one when popped. Casts of leaf
/// tensors that require grad are cached until the outermost scope is popped.
///
/// Thread safety: affects the calling thread only.
///
/// # Safety
/// None (no pointers).
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_autocast_push(dtype: DsDtype) -> DsStatus {
    guard(|| {
        let d = DType::from_code(dtype, "dtype")?;
        let g = amp::autocast(d)?;
        SCOPES.with(|s| s.borrow_mut().push(g));
        Ok(())
    })
}

/// Opens a scope with autocast off on the calling thread (ops run as written), e.g. for an
/// f32 region inside an autocast one. Close with `ds_autocast_pop`.
///
/// Thread safety: affects the calling thread only.
///
/// # Safety
/// None (no pointers).
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_autocast_push_disabled() -> DsStatus {
    guard(|| {
        let g = amp::autocast_disabled();
        SCOPES.with(|s| s.borrow_mut().push(g));
        Ok(())
    })
}

/// Closes the innermost scope opened by `ds_autocast_push` or `ds_autocast_push_disabled`
/// on the calling thread, restoring the state before it. With no scope open it is an error.
///
/// Thread safety: affects the calling thread only.
///
/// # Safety
/// None (no pointers).
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_autocast_pop() -> DsStatus {
    guard(|| {
        let g = SCOPES.with(|s| s.borrow_mut().pop());
        match g {
            Some(g) => {
                drop(g);
                Ok(())
            }
            None => Err(Error::invalid("autocast", "ds_autocast_pop without an open scope on this thread")),
        }
    })
}

/// Writes the autocast dtype in effect on the calling thread (`DS_DTYPE_*`), or 0 when
/// autocast is off.
///
/// Thread safety: reads the calling thread's state only.
///
/// # Safety
/// `out_dtype` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_autocast_dtype(out_dtype: *mut DsDtype) -> DsStatus {
    guard(|| {
        *unsafe { out(out_dtype, "out_dtype")? } = amp::current_dtype().map_or(0, DType::code);
        Ok(())
    })
}
