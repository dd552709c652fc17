//! Handle bookkeeping: every live handle is registered, so NULL, freed and foreign pointers are refused without being read.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, RwLock};

/// A Rust type handed to C as an opaque handle.
pub trait Handle: Send + Sync + 'static {
    /// The C type name, used in messages (`"DsTensor"`).
    const KIND: &'static str;
}

const SHARDS: usize = 16;

/// Addresses of live handles, with their kind. Sharded so that concurrent calls on
/// different handles rarely touch the same lock.
static REGISTRY: LazyLock<[RwLock<HashMap<usize, &'static str>>; SHARDS]> = LazyLock::new(Default::default);
static LIVE: AtomicU64 = AtomicU64::new(0);

fn shard(addr: usize) -> &'static RwLock<HashMap<usize, &'static str>> {
    &REGISTRY[(addr >> 4) % SHARDS]
}

/// Boxes `value`, registers it and returns the handle.
pub fn register<T: Handle>(value: T) -> *mut T {
    let p = Box::into_raw(Box::new(value));
    shard(p as usize).write().unwrap_or_else(|e| e.into_inner()).insert(p as usize, T::KIND);
    LIVE.fetch_add(1, Ordering::Relaxed);
    p
}

fn check<T: Handle>(p: *const T, arg: &'static str) -> Result<()> {
    if p.is_null() {
        return Err(Error::InvalidHandle { arg, msg: format!("{} handle is NULL", T::KIND) });
    }
    match shard(p as usize).read().unwrap_or_else(|e| e.into_inner()).get(&(p as usize)) {
        Some(&kind) if kind == T::KIND => Ok(()),
        Some(&kind) => Err(Error::InvalidHandle { arg, msg: format!("is a {kind}, expected a {}", T::KIND) }),
        None => Err(Error::InvalidHandle {
            arg,
            msg: format!("{:p} is not a live {} (already freed, or not created by libdeepseek)", p, T::KIND),
        }),
    }
}

/// The object behind a live handle of kind `T`.
///
/// # Safety
/// The handle must not be freed while the returned reference is used (the documented
/// contract: freeing needs exclusive use of the handle).
pub unsafe fn get<'a, T: Handle>(p: *const T, arg: &'static str) -> Result<&'a T> {
    check(p, arg)?;
    // SAFETY: registered, hence a live Box<T> allocation.
    Ok(unsafe { &*p })
}

/// Frees a handle; NULL is a no-op. A freed or foreign pointer is an error and is not touched.
///
/// # Safety
/// No other thread may be using the handle (the documented contract of every `_free`).
pub unsafe fn free<T: Handle>(p: *mut T, arg: &'static str) -> Result<()> {
    if p.is_null() {
        return Ok(());
    }
    check(p, arg)?;
    let removed = shard(p as usize).write().unwrap_or_else(|e| e.into_inner()).remove(&(p as usize));
    if removed.is_none() {
        // Another thread freed it between the check and here: it was not ours to free.
        return Err(Error::InvalidHandle { arg, msg: format!("{:p} was freed concurrently", p) });
    }
    LIVE.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: registered by `register` from a Box<T>, removed exactly once above.
    drop(unsafe { Box::from_raw(p) });
    Ok(())
}

/// Number of live handles of every kind.
pub fn live_count() -> u64 {
    LIVE.load(Ordering::Relaxed)
}
