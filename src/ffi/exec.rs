//! Executors through the C ABI: compile options, compiling a graph, thread-safe runs, cancellation tokens and run statistics.
//!
//! Thread safety: a `DsExecutor` may be run from any number of threads at once (each run
//! owns its intermediate values; runs take no lock). A `DsCancelToken` may be cancelled
//! from any thread while runs use it. A `DsExecOptions` is filled by one thread at a time.

use super::graph::{DsGraph, graph_ref};
use super::guard::{cstr, guard, out, slice, slice_mut};
use super::handles::{Handle, free, get, register};
use super::library::DsDeviceKind;
use super::status::DsStatus;
use super::tensor::{DsTensor, new_handle, tensor_ref};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::exec::{CancelToken, ExecOptions, Executor, RunOptions};
use crate::tensor::Tensor;
use std::ffi::c_char;
use std::sync::Mutex;

/// Options for compiling a graph (an opaque builder, so that options can be added without
/// breaking the ABI). Create with `ds_exec_options_new` (defaults: opt level 2, the CPU,
/// inter-op threads 0), free with `ds_exec_options_free`.
pub struct DsExecOptions {
    options: Mutex<ExecOptions>,
}

impl Handle for DsExecOptions {
    const KIND: &'static str = "DsExecOptions";
}

/// A compiled graph, runnable from many threads at once. Free with `ds_executor_free`.
pub struct DsExecutor {
    executor: Executor,
}

impl Handle for DsExecutor {
    const KIND: &'static str = "DsExecutor";
}

/// A cancellation flag shared by the runs given it. Free with `ds_cancel_token_free`.
pub struct DsCancelToken {
    token: CancelToken,
}

impl Handle for DsCancelToken {
    const KIND: &'static str = "DsCancelToken";
}

/// What one run measured, filled by `ds_executor_run_with`. The caller sets `struct_size` to
/// `sizeof(DsRunStats)`; the library fills only the fields that fit in it, so programs
/// built against an older header keep working when fields are added at the end.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DsRunStats {
    /// Set by the caller: `sizeof(DsRunStats)`.
    pub struct_size: u32,
    /// Op nodes executed.
    pub nodes_run: i64,
    /// Most bytes held at once by the values the run computed.
    pub peak_bytes: i64,
}

/// Runs `f` on the options behind a handle.
unsafe fn with_options(options: *mut DsExecOptions, f: impl FnOnce(&mut ExecOptions) -> Result<()>) -> DsStatus {
    guard(|| {
        let o = unsafe { get(options, "options")? };
        f(&mut o.options.lock().unwrap_or_else(|p| p.into_inner()))
    })
}

/// A copy of the options behind a handle; NULL gives the defaults.
///
/// # Safety
/// As [`get`].
pub(crate) unsafe fn exec_options_of(options: *const DsExecOptions) -> Result<ExecOptions> {
    if options.is_null() {
        return Ok(ExecOptions::default());
    }
    Ok(unsafe { get(options, "options")? }.options.lock().unwrap_or_else(|p| p.into_inner()).clone())
}

/// Creates compile options with the defaults: opt level 2, the CPU, inter-op threads 0.
///
/// Thread safety: may be called from any thread; the options are then filled by one
/// thread at a time and may be read by many `ds_executor_new` calls at once.
///
/// # Safety
/// `out_options` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_exec_options_new(out_options: *mut *mut DsExecOptions) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_options, "out_options")? };
        *o = register(DsExecOptions { options: Mutex::new(ExecOptions::default()) });
        Ok(())
    })
}

/// Frees compile options; NULL is a no-op. Executors made with them are unaffected.
///
/// Thread safety: no other thread may be using `options`.
///
/// # Safety
/// `options` must be NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_exec_options_free(options: *mut DsExecOptions) -> DsStatus {
    guard(|| unsafe { free(options, "options") })
}

/// Sets the optimisation level: 0 runs the graph as given; 1 adds constant folding,
/// common-subexpression and dead-code elimination and algebraic simplification; 2 (the
/// default) also fuses (pointwise chains into one pass, and into the matrix product before
/// them when they alone read it), frees each intermediate after its last use, and keeps
/// packed copies of each fixed weight read only by linear nodes (up to twice that weight's
/// size more: one transposed, and one in panels for products split over the pool's
/// threads; no copy or packing of the weight on each large call). Any other value is an
/// error.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` must be a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_exec_options_set_opt_level(options: *mut DsExecOptions, opt_level: i32) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.opt_level = match opt_level {
                0..=2 => opt_level as u8,
                n => return Err(Error::invalid("opt_level", format!("must be 0, 1 or 2, given {n}"))),
            };
            Ok(())
        })
    }
}

/// Sets the device the graph runs on (`DS_DEVICE_*` and an index; the CPU ignores the
/// index). A device that does not exist is an error here; a device this build cannot run
/// graphs on is an error from `ds_executor_new`.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` must be a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_exec_options_set_device(
    options: *mut DsExecOptions,
    device_kind: DsDeviceKind,
    device_index: i32,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.device = Device::from_code(device_kind, device_index)?;
            Ok(())
        })
    }
}

/// Sets how many independent nodes may run at once: 0 (the default) = as many as the
/// engine's thread pool has threads (`ds_set_num_threads`) where the graph runs matrix
/// products of unequal size beside each other (a cross network beside a deep tower), else
/// one node at a time; 1 = one node at a time (for services that already run one request
/// per thread); n = up to n. Ops parallelise inside either way. A request whose matrix
/// products come to few multiply-adds (a batch-1 request) runs one node at a time whatever
/// the setting. Negative values are an error.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` must be a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_exec_options_set_inter_op_threads(
    options: *mut DsExecOptions,
    inter_op_threads: i32,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.inter_op_threads = usize::try_from(inter_op_threads).map_err(|_| {
                Error::invalid(
                    "inter_op_threads",
                    format!("must be >= 0 (0 = the pool size), given {inter_op_threads}"),
                )
            })?;
            Ok(())
        })
    }
}

/// Compiles `graph` with `options` (NULL = the defaults of `ds_exec_options_new`): runs the
/// optimisation passes and plans execution. The executor keeps what it needs, so `graph`
/// and `options` may be freed right after.
///
/// Thread safety: may be called from many threads at once, also on one graph.
///
/// # Safety
/// `out_executor` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_executor_new(
    graph: *const DsGraph,
    options: *const DsExecOptions,
    out_executor: *mut *mut DsExecutor,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_executor, "out_executor")? };
        *o = std::ptr::null_mut();
        let g = unsafe { graph_ref(graph, "graph")? };
        *o = register(DsExecutor { executor: Executor::new(g, unsafe { exec_options_of(options)? })? });
        Ok(())
    })
}

/// Frees an executor; NULL is a no-op. Tensors it returned stay valid.
///
/// Thread safety: no run on this executor may be in progress, and no other thread may be
/// using it.
///
/// # Safety
/// `executor` must be NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_executor_free(executor: *mut DsExecutor) -> DsStatus {
    guard(|| unsafe { free(executor, "executor") })
}

/// The feeds and fetches of a run, read from C arrays.
struct RunArgs<'a> {
    feeds: Vec<(&'a str, &'a Tensor)>,
    fetches: Vec<&'a str>,
}

unsafe fn run_args<'a>(
    feed_names: *const *const c_char,
    feed_tensors: *const *const DsTensor,
    n_feeds: usize,
    fetch_names: *const *const c_char,
    n_fetches: usize,
) -> Result<RunArgs<'a>> {
    let names = unsafe { slice(feed_names, n_feeds, "feed_names")? };
    let tensors = unsafe { slice(feed_tensors, n_feeds, "feed_tensors")? };
    let feeds = names
        .iter()
        .zip(tensors)
        .map(|(&n, &t)| Ok((unsafe { cstr(n, "feed_names")? }, unsafe { tensor_ref(t, "feed_tensors")? })))
        .collect::<Result<Vec<_>>>()?;
    let fetches = unsafe { slice(fetch_names, n_fetches, "fetch_names")? }
        .iter()
        .map(|&n| unsafe { cstr(n, "fetch_names") })
        .collect::<Result<Vec<_>>>()?;
    Ok(RunArgs { feeds, fetches })
}

/// The shared body of the two run functions.
#[allow(clippy::too_many_arguments)]
unsafe fn run(
    executor: *const DsExecutor,
    feed_names: *const *const c_char,
    feed_tensors: *const *const DsTensor,
    n_feeds: usize,
    fetch_names: *const *const c_char,
    n_fetches: usize,
    cancel: *const DsCancelToken,
    out_stats: *mut DsRunStats,
    out_tensors: *mut *mut DsTensor,
) -> DsStatus {
    guard(|| {
        let dst = unsafe { slice_mut(out_tensors, n_fetches, "out_tensors")? };
        dst.fill(std::ptr::null_mut());
        let ex = unsafe { get(executor, "executor")? };
        let args = unsafe { run_args(feed_names, feed_tensors, n_feeds, fetch_names, n_fetches)? };
        let stats = unsafe { out_stats.as_mut() };
        if let Some(s) = &stats
            && (s.struct_size as usize) < size_of::<DsRunStats>()
        {
            return Err(Error::invalid(
                "out_stats",
                format!(
                    "struct_size is {}, this library needs at least {} (set it to sizeof(DsRunStats))",
                    s.struct_size,
                    size_of::<DsRunStats>()
                ),
            ));
        }
        let options = RunOptions {
            // A clone shares the flag, so a cancel from another thread reaches this run.
            cancel: if cancel.is_null() { None } else { Some(unsafe { get(cancel, "cancel")? }.token.clone()) },
            track_memory: stats.is_some(),
            profile: false,
        };
        let (outputs, measured) = ex.executor.run_with(&args.feeds, &args.fetches, &options)?;
        if let Some(s) = stats {
            s.nodes_run = measured.nodes_run as i64;
            s.peak_bytes = measured.peak_bytes as i64;
        }
        for (d, t) in dst.iter_mut().zip(outputs) {
            *d = new_handle(t);
        }
        Ok(())
    })
}

/// Runs the executor: feeds `n_feeds` tensors by name (graph inputs; a parameter's name
/// replaces that parameter for this run) and writes new handles to the `n_fetches` outputs
/// named in `fetch_names` into `out_tensors` (room for `n_fetches`; all NULL on failure).
/// Errors name the feed or fetch: an unknown name, an input the fetches need but that is not
/// fed, a feed of the wrong dtype, rank or size, or a symbolic dimension with two sizes.
///
/// Thread safety: may be called from any number of threads at once on one executor; the
/// feed tensors may be shared between runs.
///
/// # Safety
/// `feed_names` and `feed_tensors` valid for `n_feeds` reads; `fetch_names` for `n_fetches`
/// reads; the names NUL-terminated; `out_tensors` valid for `n_fetches` writes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_executor_run(
    executor: *const DsExecutor,
    feed_names: *const *const c_char,
    feed_tensors: *const *const DsTensor,
    n_feeds: usize,
    fetch_names: *const *const c_char,
    n_fetches: usize,
    out_tensors: *mut *mut DsTensor,
) -> DsStatus {
    unsafe {
        run(
            executor,
            feed_names,
            feed_tensors,
            n_feeds,
            fetch_names,
            n_fetches,
            std::ptr::null(),
            std::ptr::null_mut(),
            out_tensors,
        )
    }
}

/// `ds_executor_run` with options: `cancel` (NULL for none) is checked before each level of
/// nodes, and a run that finds it cancelled stops with `DS_STATUS_CANCELLED` (the executor
/// stays usable); `out_stats` (NULL for none; its `struct_size` set by the caller) receives
/// what the run measured — asking for it makes the run count bytes, which costs a little.
///
/// Thread safety: as `ds_executor_run`; one token may serve many runs at once.
///
/// # Safety
/// As `ds_executor_run`; `out_stats` NULL or valid for reads and writes of `struct_size` bytes.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ds_executor_run_with(
    executor: *const DsExecutor,
    feed_names: *const *const c_char,
    feed_tensors: *const *const DsTensor,
    n_feeds: usize,
    fetch_names: *const *const c_char,
    n_fetches: usize,
    cancel: *const DsCancelToken,
    out_stats: *mut DsRunStats,
    out_tensors: *mut *mut DsTensor,
) -> DsStatus {
    unsafe { run(executor, feed_names, feed_tensors, n_feeds, fetch_names, n_fetches, cancel, out_stats, out_tensors) }
}

/// Creates a cancellation token, not cancelled.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `out_token` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_cancel_token_new(out_token: *mut *mut DsCancelToken) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_token, "out_token")? };
        *o = register(DsCancelToken { token: CancelToken::new() });
        Ok(())
    })
}

/// Asks every run using `token` to stop; runs started with it afterwards stop at once,
/// until `ds_cancel_token_reset`.
///
/// Thread safety: may be called from any thread, also while runs use the token.
///
/// # Safety
/// `token` must be a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_cancel_token_cancel(token: *const DsCancelToken) -> DsStatus {
    guard(|| {
        unsafe { get(token, "token")? }.token.cancel();
        Ok(())
    })
}

/// Clears the flag so the token can serve new runs.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `token` must be a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_cancel_token_reset(token: *const DsCancelToken) -> DsStatus {
    guard(|| {
        unsafe { get(token, "token")? }.token.reset();
        Ok(())
    })
}

/// Writes whether `token` is cancelled.
///
/// Thread safety: may be called from any thread.
///
/// # Safety
/// `out_cancelled` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_cancel_token_is_cancelled(
    token: *const DsCancelToken,
    out_cancelled: *mut bool,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_cancelled, "out_cancelled")? };
        *o = unsafe { get(token, "token")? }.token.is_cancelled();
        Ok(())
    })
}

/// Frees a token; NULL is a no-op.
///
/// Thread safety: no run may be using the token, and no other thread may be using it.
///
/// # Safety
/// `token` must be NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_cancel_token_free(token: *mut DsCancelToken) -> DsStatus {
    guard(|| unsafe { free(token, "token") })
}
