//! The engine's one thread pool: sized by the caller (default: the cores), never by environment variables.

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, LazyLock, RwLock};

/// Work below this many elements runs on the calling thread: waking the pool costs more.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

static POOL: LazyLock<RwLock<Option<Arc<ThreadPool>>>> = LazyLock::new(|| RwLock::new(None));

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn build(threads: usize) -> Result<Arc<ThreadPool>> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("deepseek-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::Internal(format!("cannot start a thread pool of {threads}: {e}")))
}

fn pool() -> Arc<ThreadPool> {
    if let Some(p) = POOL.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return p.clone();
    }
    let mut slot = POOL.write().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(|| build(default_threads()).expect("default thread pool")).clone()
}

/// Sets the number of threads for intra- and inter-op parallelism (1 = run everything on
/// the calling thread). Work already running finishes on the old pool.
pub fn set_num_threads(threads: usize) -> Result<()> {
    if threads == 0 || threads > 4096 {
        return Err(Error::invalid("num_threads", format!("must be in 1..=4096, given {threads}")));
    }
    let new = build(threads)?;
    *POOL.write().unwrap_or_else(|p| p.into_inner()) = Some(new);
    Ok(())
}

/// The current pool size.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// Runs `f` inside the engine's pool, so rayon parallelism in it (ours and gemm's) uses
/// the engine's threads. Cheap when already on a pool thread.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let p = pool();
    if p.current_num_threads() == 1 || p.current_thread_index().is_some() {
        return f();
    }
    p.install(f)
}
