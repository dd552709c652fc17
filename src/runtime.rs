//! The engine's one thread pool: sized by the caller (default: the cores), never by environment variables.

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, LazyLock, RwLock};

/// Work below this many elements runs on the calling thread: waking the pool costs more.
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

static POOL: LazyLock<RwLock<Option<Arc<ThreadPool>>>> = LazyLock::new(|| RwLock::new(None));

/// Stack of each pool thread: room for several nested requests (the default is 2 MiB).
const WORKER_STACK_BYTES: usize = 16 << 20;

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn build(threads: usize) -> Result<Arc<ThreadPool>> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("deepseek-{i}"))
        // A worker waiting on its share of one request may take up another whole request
        // (executor runs are pool jobs), so requests can nest on one stack under load.
        .stack_size(WORKER_STACK_BYTES)
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

/// Runs `work(part)` for every `part` in `0..parts` on the pool, each exactly once, giving
/// part `i` to pool thread `i % threads` whenever that thread is free to take it. Repeated
/// calls that split the same data the same way then find each part in the cache of the core
/// that read it last time (a batch-1 layer's weight halves stay in their cores' L2), where
/// work stealing would hand the parts out by chance. A thread that finishes its own part
/// takes any part not yet started, so a busy thread never holds the others up.
pub fn for_each_part_pinned(parts: usize, work: impl Fn(usize) + Sync) {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    if parts <= 1 || num_threads() == 1 {
        (0..parts).for_each(work);
        return;
    }
    let started: Vec<AtomicBool> = (0..parts).map(|_| AtomicBool::new(false)).collect();
    let claim = |part: usize| !started[part].swap(true, Ordering::AcqRel);
    install(|| {
        (0..parts).into_par_iter().for_each(|_| {
            let me = rayon::current_thread_index().unwrap_or(0);
            for part in (0..parts).map(|d| (me + d) % parts) {
                if claim(part) {
                    work(part);
                }
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn pinned_parts_each_run_exactly_once() {
        for parts in [0, 1, 2, 3, 7] {
            let runs: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            for_each_part_pinned(parts, |p| {
                runs[p].fetch_add(1, Ordering::Relaxed);
            });
            assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1), "{parts} parts");
        }
    }
}
