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
        // A worker waiting on its share of one request may take up the work of another
        // (a request run on the pool, or another's parallel op), so work nests under load.
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

/// Whether some caller of [`install`] from outside the pool is yielding (not yet asleep) right now.
static SPINNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How long [`install`]'s caller gives its core away before it sleeps.
const SPIN_WAIT: std::time::Duration = std::time::Duration::from_micros(100);

/// Runs `f` inside the engine's pool, so rayon parallelism in it (ours and gemm's) uses the
/// engine's threads, and returns what it returns; a panic in `f` resumes on the calling
/// thread. Cheap when already on a pool thread (it runs `f` there).
///
/// From outside the pool, the calling thread waits by yielding its core for up to
/// [`SPIN_WAIT`] before it sleeps (one caller at a time; the others sleep at once). On a
/// virtual machine a futex wake-up costs several µs, and rayon's own `install` sleeps at
/// once: every parallel eager op paid a wake-up to return (7–11% of an eager MLP training
/// step), and a batch-1 request, run whole on the pool, tens of µs long, paid it too.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let p = pool();
    if p.current_num_threads() == 1 || p.current_thread_index().is_some() {
        return f();
    }
    install_from_outside(&p, f)
}

/// [`install`] from a thread outside the pool `p`. Kept out of line: the ops that call
/// [`install`] mostly run on pool threads already, where only the check above runs.
#[inline(never)]
fn install_from_outside<R: Send>(p: &ThreadPool, f: impl FnOnce() -> R + Send) -> R {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
    use std::sync::atomic::{AtomicBool, Ordering};
    /// A pointer into the waiting caller's frame, handed to the job.
    struct Borrowed<T>(*const T);
    // SAFETY: the pointee is shared with one job while the caller waits for it (see below).
    unsafe impl<T> Send for Borrowed<T> {}
    let done = AtomicBool::new(false);
    let result: std::cell::UnsafeCell<Option<std::thread::Result<R>>> = std::cell::UnsafeCell::new(None);
    let (slot, flag) = (Borrowed(result.get().cast_const()), Borrowed(&done as *const AtomicBool));
    let caller = std::thread::current();
    let job = move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        let (slot, flag) = (slot, flag);
        // SAFETY: the caller reads `result` only after it sees `done`, and it does not return
        // before that, so both pointees are alive and this is the only access until then.
        unsafe {
            *slot.0.cast_mut() = Some(r);
            (*flag.0).store(true, Ordering::Release);
        }
        // Owned by the job: the caller's frame may already be gone.
        caller.unpark();
    };
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(job);
    // SAFETY: the job borrows this frame (through `f` and the pointers) and this function
    // returns only after the job has set `done`, its last use of anything borrowed; the
    // caller's handle on `p` keeps the pool, and so the queued job, alive until then.
    let job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Box<dyn FnOnce() + Send + 'static>>(job) };
    p.spawn(job);
    // One caller yields at a time: many concurrent requests must not take the cores from
    // the workers serving them.
    let mut spinning = SPINNING.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok();
    let start = std::time::Instant::now();
    while !done.load(Ordering::Acquire) {
        if spinning && start.elapsed() < SPIN_WAIT {
            std::thread::yield_now();
            continue;
        }
        if spinning {
            SPINNING.store(false, Ordering::Release);
            spinning = false;
        }
        std::thread::park();
    }
    if spinning {
        SPINNING.store(false, Ordering::Release);
    }
    match result.into_inner().expect("the job stores its result before `done`") {
        Ok(r) => r,
        Err(panic) => resume_unwind(panic),
    }
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

    #[test]
    fn work_installed_from_outside_the_pool_returns_its_value_or_its_panic() {
        let data: Vec<u64> = (0..1000).collect();
        // Borrows from this frame; long enough that the caller stops yielding and sleeps.
        let sum = install(|| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            data.iter().sum::<u64>()
        });
        assert_eq!(sum, 499_500);
        assert_eq!(install(|| data.len()), 1000);
        let panicked = std::panic::catch_unwind(|| install(|| panic!("inside the pool")));
        let msg = panicked.expect_err("the panic comes back").downcast::<&str>().map(|m| *m);
        assert_eq!(msg.ok(), Some("inside the pool"));
        assert_eq!(install(|| 7), 7, "the pool still works");
    }

    #[test]
    fn concurrent_callers_each_get_their_own_result() {
        std::thread::scope(|s| {
            for t in 0..8u64 {
                s.spawn(move || {
                    for i in 0..200u64 {
                        assert_eq!(install(|| t * 1000 + i), t * 1000 + i);
                    }
                });
            }
        });
    }
}
