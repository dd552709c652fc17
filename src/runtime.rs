//! The engine's one thread pool: sized by the caller (default: the cores), never by environment variables.

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

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
static SPINNING: AtomicBool = AtomicBool::new(false);

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
    WAITING_OUTSIDE.fetch_add(1, Ordering::AcqRel);
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
    WAITING_OUTSIDE.fetch_sub(1, Ordering::AcqRel);
    match result.into_inner().expect("the job stores its result before `done`") {
        Ok(r) => r,
        Err(panic) => resume_unwind(panic),
    }
}

/// Runs `work(part)` for every `part` in `0..parts` on the pool, each exactly once. Pool
/// thread `t` owns part `t` (with at most as many parts as threads) or the `t`-th even run of
/// parts, and takes them whenever it is free to. Repeated calls that split the same data the
/// same way then find each part in the cache of the core that read it last time (a batch-1
/// layer's weight halves stay in their cores' L2), where work stealing would hand the parts
/// out by chance. A thread that finishes its own parts takes any part not yet started, so a
/// busy or preempted thread never holds the others up by more than the part it is on.
///
/// Called from outside the pool, the calling thread works on the parts itself (from part 0)
/// beside `threads - 1` helpers it hands to the pool; see [`share_parts_from_outside`].
pub fn for_each_part_pinned(parts: usize, work: impl Fn(usize) + Sync) {
    use rayon::prelude::*;
    let p = pool();
    let threads = p.current_num_threads();
    if parts <= 1 || threads == 1 {
        (0..parts).for_each(work);
        return;
    }
    if p.current_thread_index().is_none()
        && let Some(_turn) = SharingTurn::take()
    {
        return share_parts_from_outside(&p, parts, &work);
    }
    let started: Vec<AtomicBool> = (0..parts).map(|_| AtomicBool::new(false)).collect();
    // On a pool thread this runs `f` there, and the iterator runs on this pool.
    install(|| {
        (0..parts.min(threads)).into_par_iter().for_each(|_| {
            let first = first_part(rayon::current_thread_index().unwrap_or(0), parts, threads);
            claim_parts(&started, first, &work);
        })
    });
}

/// Runs `f(start, chunk)` on every chunk of `out` (`chunk` elements each, the last one
/// shorter; `start` is the chunk's first index), each exactly once, as the parts of
/// [`for_each_part_pinned`]: from outside the pool the calling thread works on chunks beside
/// the pool's threads, where handing the whole loop to the pool made it wait for them (a
/// parallel eager op paid a hand-off and a wait), and the same chunks go to the same
/// threads from call to call.
pub fn for_each_chunk_mut<U: Send>(out: &mut [U], chunk: usize, f: impl Fn(usize, &mut [U]) + Sync) {
    let (len, chunk) = (out.len(), chunk.max(1));
    let base = Dst(out.as_mut_ptr());
    for_each_part_pinned(len.div_ceil(chunk), |i| {
        let start = i * chunk;
        let end = (start + chunk).min(len);
        // SAFETY: the chunks are disjoint ranges of `out`, which is exclusively borrowed for
        // this call, and each part runs exactly once.
        f(start, unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) })
    });
}

/// A destination pointer shared by tasks that write disjoint parts of one output (chunks in
/// [`for_each_chunk_mut`], column blocks of a split product, tiles in the low-precision
/// kernels).
pub(crate) struct Dst<O>(pub(crate) *mut O);
// By hand: derived impls would ask `O: Copy`, and a pointer copies whatever it points to.
impl<O> Clone for Dst<O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<O> Copy for Dst<O> {}
// SAFETY: every user hands each task a disjoint set of elements to write.
unsafe impl<O> Send for Dst<O> {}
unsafe impl<O> Sync for Dst<O> {}

impl<O> Dst<O> {
    /// The pointer (a method, so closures capture the whole Send + Sync wrapper).
    pub(crate) fn get(self) -> *mut O {
        self.0
    }
}

/// The part thread `t` of `threads` tries first: its own (`t`) when there are no more parts
/// than threads, else the first of its even share (`t · parts / threads`), after which it
/// goes on through its share and then takes the parts the others have not started.
fn first_part(t: usize, parts: usize, threads: usize) -> usize {
    if parts <= threads { t % parts } else { t * parts / threads }
}

/// How many threads outside the pool wait in [`install`] for work they handed it.
static WAITING_OUTSIDE: AtomicUsize = AtomicUsize::new(0);

/// Whether a thread outside the pool is working on parts beside the pool right now.
static SHARING: AtomicBool = AtomicBool::new(false);

/// The one outside caller's turn to share its parts with the pool (see [`for_each_part_pinned`]).
struct SharingTurn;

impl SharingTurn {
    /// The turn, unless another outside caller holds it or waits on the pool.
    fn take() -> Option<SharingTurn> {
        if WAITING_OUTSIDE.load(Ordering::Acquire) != 0 {
            return None;
        }
        SHARING.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok().then_some(SharingTurn)
    }
}

impl Drop for SharingTurn {
    fn drop(&mut self) {
        SHARING.store(false, Ordering::Release);
    }
}

/// Runs every part of `started` not yet claimed, trying `first` first and then those after it.
fn claim_parts(started: &[AtomicBool], first: usize, work: &(dyn Fn(usize) + Sync)) {
    let parts = started.len();
    for part in (0..parts).map(|d| (first + d) % parts) {
        if !started[part].swap(true, Ordering::AcqRel) {
            work(part);
        }
    }
}

/// What a caller of [`share_parts_from_outside`] and its helpers share.
struct SharedParts {
    /// Which parts someone has taken.
    started: Vec<AtomicBool>,
    /// How many helpers are inside the gate (low bits), and [`GATE_CLOSED`] once the caller
    /// has stopped letting them run parts.
    gate: AtomicUsize,
    /// The first panic of a helper's part, resumed on the caller.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

/// The bit of [`SharedParts::gate`] that keeps late helpers out.
const GATE_CLOSED: usize = 1 << (usize::BITS - 1);

/// [`for_each_part_pinned`] from a thread outside the pool: the caller claims parts itself,
/// beside up to `threads - 1` helper jobs spawned on the pool, and returns once every part
/// is done and no helper is still inside the gate. A helper that reaches the pool after that
/// finds the gate closed and leaves without touching `work`, so the caller never waits for
/// a sleeping or busy worker: such a worker costs the helper's share, not a wake-up round
/// trip. Against handing the whole call to the pool and yielding until it is done, batch-1
/// MLP inference (whose executor then runs on the caller) took 0.76–0.82 of the time and
/// batch 256 0.94–0.96, and the eager MLP step was level (in-process A/B, BENCHMARKS.md).
///
/// One outside caller shares at a time, and none while another waits in [`install`]: with
/// four callers each sharing, p50 latency fell from 160 to 60 µs but p99 rose from
/// 0.7–1.1 ms to 1.2–4 ms (six busy threads on two cores); with the turn, both stay level.
fn share_parts_from_outside(p: &ThreadPool, parts: usize, work: &(dyn Fn(usize) + Sync)) {
    /// `work` for the helpers, its lifetime erased (see the SAFETY note below).
    struct WorkRef(*const (dyn Fn(usize) + Sync + 'static));
    // SAFETY: it points to a `Sync` closure, called only while the caller waits for it.
    unsafe impl Send for WorkRef {}
    let shared = Arc::new(SharedParts {
        started: (0..parts).map(|_| AtomicBool::new(false)).collect(),
        gate: AtomicUsize::new(0),
        panic: Mutex::new(None),
    });
    let threads = p.current_num_threads();
    for helper in 1..threads.min(parts) {
        let shared = shared.clone();
        // SAFETY: a helper dereferences this only between entering the gate and leaving it,
        // and the caller returns (or unwinds) only after closing the gate and seeing every
        // helper that entered leave, so `work` outlives every use.
        let work = WorkRef(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync + 'static)>(work)
        });
        p.spawn(move || {
            let work = work;
            // Counted in first, so a caller closing the gate now waits for this check too.
            if shared.gate.fetch_add(1, Ordering::AcqRel) & GATE_CLOSED == 0 {
                // SAFETY: inside the gate (see above).
                let first = first_part(helper, parts, threads);
                let run = catch_unwind(AssertUnwindSafe(|| claim_parts(&shared.started, first, unsafe { &*work.0 })));
                if let Err(panic) = run {
                    shared.panic.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(panic);
                }
            }
            shared.gate.fetch_sub(1, Ordering::AcqRel);
        });
    }
    /// Closes the gate and waits for the helpers inside, also when the caller's part panics.
    struct CloseGate<'a>(&'a AtomicUsize);
    impl Drop for CloseGate<'_> {
        fn drop(&mut self) {
            self.0.fetch_or(GATE_CLOSED, Ordering::AcqRel);
            // The helpers inside are running a part, so the wait is short; yield after a
            // while in case one of them was preempted on this core.
            let mut spins = 0u32;
            while self.0.load(Ordering::Acquire) & !GATE_CLOSED != 0 {
                if spins < 256 {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
    {
        let _close = CloseGate(&shared.gate);
        claim_parts(&shared.started, 0, work);
    }
    if let Some(panic) = shared.panic.lock().unwrap_or_else(|p| p.into_inner()).take() {
        resume_unwind(panic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_thread_starts_on_its_own_share_of_the_parts() {
        assert_eq!((0..2).map(|t| first_part(t, 2, 2)).collect::<Vec<_>>(), [0, 1]);
        assert_eq!((0..3).map(|t| first_part(t, 2, 3)).collect::<Vec<_>>(), [0, 1, 0]);
        assert_eq!((0..2).map(|t| first_part(t, 8, 2)).collect::<Vec<_>>(), [0, 4]);
        assert_eq!((0..3).map(|t| first_part(t, 8, 3)).collect::<Vec<_>>(), [0, 2, 5]);
    }

    #[test]
    fn every_chunk_runs_once_with_its_start_from_outside_and_inside_the_pool() {
        let check = |out: &[usize], what: &str| {
            assert!(out.iter().enumerate().all(|(i, &x)| x == i + 1), "{what}: {out:?}");
        };
        let fill = |chunk: usize| {
            move |start: usize, c: &mut [usize]| {
                assert!(!c.is_empty() && c.len() <= chunk, "a chunk of {} for chunks of {chunk}", c.len());
                c.iter_mut().enumerate().for_each(|(i, x)| *x += start + i + 1);
            }
        };
        for (len, chunk) in [(0, 4), (1, 4), (10, 3), (64, 16), (100_001, 1 << 14)] {
            let mut out = vec![0usize; len];
            for_each_chunk_mut(&mut out, chunk, fill(chunk));
            check(&out, &format!("{len} in chunks of {chunk}"));
        }
        // On a pool thread, as a graph's nodes run.
        let mut out = vec![0usize; 1000];
        install(|| for_each_chunk_mut(&mut out, 64, fill(64)));
        check(&out, "inside the pool");
    }

    #[test]
    fn pinned_parts_each_run_exactly_once() {
        for parts in [0, 1, 2, 3, 7, 16] {
            let runs: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            for_each_part_pinned(parts, |p| {
                runs[p].fetch_add(1, Ordering::Relaxed);
            });
            assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1), "{parts} parts");
        }
    }

    #[test]
    fn parts_shared_from_outside_each_run_once_on_borrowed_data() {
        let p = pool();
        let data: Vec<u64> = (0..64).collect();
        for parts in [2, 3, 7, 64] {
            let sums: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            share_parts_from_outside(&p, parts, &|part| {
                sums[part].fetch_add(data[part] as usize + 1, Ordering::Relaxed);
            });
            for (part, sum) in sums.iter().enumerate() {
                assert_eq!(sum.load(Ordering::Relaxed), part + 1, "part {part} of {parts}");
            }
        }
    }

    #[test]
    fn a_caller_sharing_parts_finishes_them_while_every_worker_is_busy() {
        // Every worker blocks until released; the caller must do all the parts itself and
        // return rather than wait for a helper to start.
        let p = pool();
        let threads = p.current_num_threads();
        if threads < 2 {
            return;
        }
        let release = Arc::new(AtomicBool::new(false));
        let blocked = Arc::new(AtomicUsize::new(0));
        for _ in 0..threads {
            let (release, blocked) = (release.clone(), blocked.clone());
            p.spawn(move || {
                blocked.fetch_add(1, Ordering::AcqRel);
                while !release.load(Ordering::Acquire) {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            });
        }
        while blocked.load(Ordering::Acquire) < threads {
            std::thread::yield_now();
        }
        let caller = std::thread::current().id();
        let runs: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        share_parts_from_outside(&p, 4, &|part| {
            assert_eq!(std::thread::current().id(), caller, "part {part} ran off the caller");
            runs[part].fetch_add(1, Ordering::Relaxed);
        });
        release.store(true, Ordering::Release);
        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
        // The helpers that reach the pool late find nothing to do, and the pool goes on.
        let mut total = AtomicUsize::new(0);
        for_each_part_pinned(8, |part| {
            total.fetch_add(part, Ordering::Relaxed);
        });
        assert_eq!(*total.get_mut(), 28);
    }

    #[test]
    fn a_panicking_shared_part_resumes_on_the_caller_after_every_part_stops() {
        let p = pool();
        // The caller's own first part, and a part a helper may take while the caller
        // finishes a slow one: either way the panic comes back once no part is running.
        for bad in [0usize, 3] {
            let running = AtomicUsize::new(0);
            let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
                share_parts_from_outside(&p, 4, &|part| {
                    running.fetch_add(1, Ordering::AcqRel);
                    std::thread::sleep(std::time::Duration::from_millis(if part == 1 { 5 } else { 1 }));
                    running.fetch_sub(1, Ordering::AcqRel);
                    assert!(part != bad, "part {part} fails");
                })
            }));
            let msg = caught.expect_err("the panic comes back").downcast::<String>().map(|m| *m);
            assert_eq!(msg.ok().as_deref(), Some(format!("part {bad} fails").as_str()));
            assert_eq!(running.load(Ordering::Acquire), 0, "a part still ran after the caller returned");
        }
        let mut total = AtomicUsize::new(0);
        share_parts_from_outside(&p, 5, &|part| {
            total.fetch_add(part, Ordering::Relaxed);
        });
        assert_eq!(*total.get_mut(), 10, "the pool still works");
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
                        // Split parts too: sharing from outside, or on the pool when another
                        // caller holds the turn or waits in `install`.
                        let parts = 2 + (t + i) as usize % 5;
                        let runs: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
                        for_each_part_pinned(parts, |p| {
                            runs[p].fetch_add((t * 1000 + i) as usize, Ordering::Relaxed);
                        });
                        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == (t * 1000 + i) as usize));
                    }
                });
            }
        });
    }
}
