//! Trainers through the C ABI: options (optimizers and schedules by name with typed attributes, checkpoints), steps, evaluation, checkpoints and export for serving.
//!
//! Thread safety: a `DsTrainer` is driven by one thread at a time; calls from several
//! threads at once are serialised by a lock inside (they wait, never race). A
//! `DsTrainerOptions` is filled by one thread at a time and may be read by many
//! `ds_trainer_new` calls at once.

use super::exec::{DsExecOptions, exec_options_of};
use super::graph::{DsGraph, graph_ref, new_graph_handle};
use super::guard::{cstr, guard, out, slice, slice_mut, write_text};
use super::handles::{Handle, free, get, register};
use super::library::DsDtype;
use super::ops::{DsAttrs, attr_pairs};
use super::status::DsStatus;
use super::tensor::{DsTensor, new_handle, tensor_ref};
use crate::amp::{GradScalerOptions, check_autocast_dtype};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::Attr;
use crate::tensor::Tensor;
use crate::train::optim::{LrSchedule, OptimizerConfig};
use crate::train::trainer::{Trainer, TrainerOptions};
use std::ffi::c_char;
use std::sync::{Mutex, MutexGuard};

/// How to train (an opaque builder, so options can be added without breaking the ABI).
/// Create with `ds_trainer_options_new` (defaults: Adam, learning rate 1e-3, constant
/// schedule, no clipping, no checkpoints, executor defaults, seed 0), free with
/// `ds_trainer_options_free`.
pub struct DsTrainerOptions {
    options: Mutex<TrainerOptions>,
}

impl Handle for DsTrainerOptions {
    const KIND: &'static str = "DsTrainerOptions";
}

/// A trainer: a graph, its loss, optimizers and checkpoints. Free with `ds_trainer_free`.
pub struct DsTrainer {
    trainer: Mutex<Trainer>,
}

impl Handle for DsTrainer {
    const KIND: &'static str = "DsTrainer";
}

/// Runs `f` on the options behind a handle.
pub(super) unsafe fn with_options(
    options: *mut DsTrainerOptions,
    f: impl FnOnce(&mut TrainerOptions) -> Result<()>,
) -> DsStatus {
    guard(|| {
        let o = unsafe { get(options, "options")? };
        f(&mut o.options.lock().unwrap_or_else(|p| p.into_inner()))
    })
}

/// The trainer behind a handle, locked for this call.
pub(super) unsafe fn trainer<'a>(p: *const DsTrainer) -> Result<MutexGuard<'a, Trainer>> {
    // A panic inside an earlier call left the trainer in a state its own checks still
    // guard (updates are applied only after every check passed), so keep going.
    Ok(unsafe { get(p, "trainer")? }.trainer.lock().unwrap_or_else(|p| p.into_inner()))
}

/// A name and an attribute list from C.
unsafe fn named(name: *const c_char, attrs: *const DsAttrs) -> Result<(String, Vec<(String, Attr)>)> {
    Ok((unsafe { cstr(name, "name")? }.to_string(), unsafe { attr_pairs(attrs, "attrs")? }))
}

fn borrowed(attrs: &[(String, Attr)]) -> Vec<(&str, Attr)> {
    attrs.iter().map(|(n, a)| (n.as_str(), a.clone())).collect()
}

/// Feeds from C arrays.
unsafe fn feeds<'a>(
    names: *const *const c_char,
    tensors: *const *const DsTensor,
    n: usize,
) -> Result<Vec<(&'a str, &'a Tensor)>> {
    let names = unsafe { slice(names, n, "feed_names")? };
    let tensors = unsafe { slice(tensors, n, "feed_tensors")? };
    names
        .iter()
        .zip(tensors)
        .map(|(&n, &t)| Ok((unsafe { cstr(n, "feed_names")? }, unsafe { tensor_ref(t, "feed_tensors")? })))
        .collect()
}

/// Names from a C array.
unsafe fn names<'a>(p: *const *const c_char, n: usize, arg: &'static str) -> Result<Vec<&'a str>> {
    unsafe { slice(p, n, arg)? }.iter().map(|&s| unsafe { cstr(s, arg) }).collect()
}

/// Creates trainer options with the defaults (see `DsTrainerOptions`).
///
/// Thread safety: any thread.
///
/// # Safety
/// `out_options` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_new(out_options: *mut *mut DsTrainerOptions) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_options, "out_options")? };
        *o = register(DsTrainerOptions { options: Mutex::new(TrainerOptions::default()) });
        Ok(())
    })
}

/// Frees trainer options; NULL is a no-op. Trainers made with them are unaffected.
///
/// Thread safety: no other thread may be using `options`.
///
/// # Safety
/// `options` must be NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_trainer_options_free(options: *mut DsTrainerOptions) -> DsStatus {
    guard(|| unsafe { free(options, "options") })
}

/// Sets the optimizer for parameters with dense gradients, by name (`sgd`, `adam`, `adamw`,
/// `adagrad`, `rowwise_adagrad`, `lazy_adam`) with typed attributes (NULL = defaults;
/// e.g. `momentum`, `beta1`, `eps`, `weight_decay`). Unknown names or attributes are errors.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle; `name` NUL-terminated; `attrs` NULL or a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_optimizer(
    options: *mut DsTrainerOptions,
    name: *const c_char,
    attrs: *const DsAttrs,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            let (name, attrs) = named(name, attrs)?;
            o.optimizer = OptimizerConfig::from_name(&name, &borrowed(&attrs))?;
            Ok(())
        })
    }
}

/// Sets the optimizer for embedding tables (row gradients) as `ds_trainer_options_set_optimizer`
/// does; `rowwise_adagrad` and `lazy_adam` touch only the rows in each batch. NULL `name`
/// goes back to using the dense optimizer for tables too.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle; `name` NULL or NUL-terminated; `attrs` NULL or a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_sparse_optimizer(
    options: *mut DsTrainerOptions,
    name: *const c_char,
    attrs: *const DsAttrs,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.sparse_optimizer = if name.is_null() {
                None
            } else {
                let (name, attrs) = named(name, attrs)?;
                Some(OptimizerConfig::from_name(&name, &borrowed(&attrs))?)
            };
            Ok(())
        })
    }
}

/// Sets the base learning rate (finite, >= 0).
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_lr(options: *mut DsTrainerOptions, lr: f64) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            if !(lr.is_finite() && lr >= 0.0) {
                return Err(Error::invalid("lr", format!("the learning rate must be finite and >= 0, given {lr}")));
            }
            o.lr = lr;
            Ok(())
        })
    }
}

/// Sets the base learning rate of the sparse optimizer (finite, >= 0); a negative value goes
/// back to using the dense rate. The schedule shapes both.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_sparse_lr(options: *mut DsTrainerOptions, lr: f64) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.sparse_lr = match lr {
                l if l.is_finite() && l >= 0.0 => Some(l),
                l if l < 0.0 => None,
                l => return Err(Error::invalid("lr", format!("the learning rate must be finite, given {l}"))),
            };
            Ok(())
        })
    }
}

/// Sets the learning-rate schedule by name (`constant`, `step`, `cosine`, `warmup_cosine`,
/// ...) with typed attributes (e.g. `every`, `gamma`, `total_steps`, `warmup_steps`).
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle; `name` NUL-terminated; `attrs` NULL or a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_schedule(
    options: *mut DsTrainerOptions,
    name: *const c_char,
    attrs: *const DsAttrs,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            let (name, attrs) = named(name, attrs)?;
            o.schedule = LrSchedule::from_name(&name, &borrowed(&attrs))?;
            Ok(())
        })
    }
}

/// Clips gradients to a global L2 norm of `max_norm` (> 0); 0 turns clipping off.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_clip_norm(options: *mut DsTrainerOptions, max_norm: f64) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.clip_norm = match max_norm {
                0.0 => None,
                m if m.is_finite() && m > 0.0 => Some(m),
                m => return Err(Error::invalid("max_norm", format!("must be finite and > 0 (0 = off), given {m}"))),
            };
            Ok(())
        })
    }
}

/// Sets the checkpoint directory (created when missing; NULL = no checkpoints), a
/// checkpoint every `every` steps (0 = only `ds_trainer_save_checkpoint`) and how many to
/// keep (>= 1). A trainer created on a directory holding checkpoints resumes from the newest
/// valid one by itself.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle; `dir` NULL or NUL-terminated.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_checkpoints(
    options: *mut DsTrainerOptions,
    dir: *const c_char,
    every: i64,
    keep: i64,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            let every = u64::try_from(every)
                .map_err(|_| Error::invalid("every", format!("must be >= 0 (0 = on request only), given {every}")))?;
            let keep = usize::try_from(keep)
                .ok()
                .filter(|&k| k >= 1)
                .ok_or_else(|| Error::invalid("keep", format!("must be >= 1, given {keep}")))?;
            o.checkpoint_dir = if dir.is_null() { None } else { Some(cstr(dir, "dir")?.into()) };
            o.checkpoint_every = every;
            o.keep_checkpoints = keep;
            Ok(())
        })
    }
}

/// Sets how the trainer's executors compile (a copy of `exec_options` is taken; NULL = defaults).
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle; `exec_options` NULL or a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_exec(
    options: *mut DsTrainerOptions,
    exec_options: *const DsExecOptions,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.exec = exec_options_of(exec_options)?;
            Ok(())
        })
    }
}

/// Sets the seed of the trainer's random generator.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_seed(options: *mut DsTrainerOptions, seed: u64) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            o.seed = seed;
            Ok(())
        })
    }
}

/// Sets mixed precision: `autocast_dtype` is the autocast dtype of the training graph
/// (`DS_DTYPE_BF16`, `DS_DTYPE_F16` or `DS_DTYPE_F32`; 0 = off), parameters stay f32 masters;
/// `loss_scaling` turns on dynamic loss scaling with the defaults of ALGORITHMS.md §2
/// (initial scale 2^16, growth 2 every 2000 clean steps, backoff 0.5; a no-op with bf16):
/// a step with a non-finite gradient is skipped, and 50 skips in a row fail the step with
/// `DS_STATUS_NON_FINITE`. `ds_trainer_report` then shows the scale and skipped steps.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_amp(
    options: *mut DsTrainerOptions,
    autocast_dtype: DsDtype,
    loss_scaling: bool,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            let dtype = match autocast_dtype {
                0 => None,
                code => {
                    let d = DType::from_code(code, "autocast_dtype")?;
                    check_autocast_dtype(d)?;
                    Some(d)
                }
            };
            (o.autocast, o.loss_scaling) = (dtype, loss_scaling.then(GradScalerOptions::default));
            Ok(())
        })
    }
}

/// Creates a trainer for `graph` minimising its scalar output `loss_name` with `options`
/// (NULL = defaults). The trainer copies what it needs: the graph and options may be freed
/// right after. With a checkpoint directory holding checkpoints it resumes (see
/// `ds_trainer_report`); a checkpoint of a different graph is an error listing the differences.
///
/// Thread safety: any thread; the new trainer is then driven by one thread at a time.
///
/// # Safety
/// `graph` a live handle; `loss_name` NUL-terminated; `options` NULL or a live handle;
/// `out_trainer` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_new(
    graph: *const DsGraph,
    loss_name: *const c_char,
    options: *const DsTrainerOptions,
    out_trainer: *mut *mut DsTrainer,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_trainer, "out_trainer")? };
        *o = std::ptr::null_mut();
        let g = unsafe { graph_ref(graph, "graph")? };
        let loss = unsafe { cstr(loss_name, "loss_name")? };
        let options = if options.is_null() {
            TrainerOptions::default()
        } else {
            unsafe { get(options, "options")? }.options.lock().unwrap_or_else(|p| p.into_inner()).clone()
        };
        *o = register(DsTrainer { trainer: Mutex::new(Trainer::new(g, loss, options)?) });
        Ok(())
    })
}

/// Frees a trainer; NULL is a no-op. Graphs it exported and tensors it returned stay valid.
///
/// Thread safety: no other thread may be using `trainer`.
///
/// # Safety
/// `trainer` must be NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_trainer_free(trainer: *mut DsTrainer) -> DsStatus {
    guard(|| unsafe { free(trainer, "trainer") })
}

/// One training step on `n_feeds` named inputs; writes the loss to `out_loss`. A NaN or
/// infinite loss or gradient is `DS_STATUS_NON_FINITE` and the step changes nothing. Every
/// `every` steps (see `ds_trainer_options_set_checkpoints`) a checkpoint is written; a
/// failed write is an error after the step was applied.
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `feed_names`, `feed_tensors` valid for `n_feeds` reads; `out_loss` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_step(
    trainer: *const DsTrainer,
    feed_names: *const *const c_char,
    feed_tensors: *const *const DsTensor,
    n_feeds: usize,
    out_loss: *mut f64,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_loss, "out_loss")? };
        *o = f64::NAN;
        let feeds = unsafe { feeds(feed_names, feed_tensors, n_feeds)? };
        *o = unsafe { self::trainer(trainer)? }.step(&feeds)?;
        Ok(())
    })
}

/// Runs the forward graph with the current parameters and writes new handles for the
/// `n_fetches` outputs named in `fetch_names` to `out_tensors` (all NULL on failure).
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// Arrays valid for their counts; names NUL-terminated; `out_tensors` valid for `n_fetches` writes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_evaluate(
    trainer: *const DsTrainer,
    feed_names: *const *const c_char,
    feed_tensors: *const *const DsTensor,
    n_feeds: usize,
    fetch_names: *const *const c_char,
    n_fetches: usize,
    out_tensors: *mut *mut DsTensor,
) -> DsStatus {
    guard(|| {
        let dst = unsafe { slice_mut(out_tensors, n_fetches, "out_tensors")? };
        dst.fill(std::ptr::null_mut());
        let feeds = unsafe { feeds(feed_names, feed_tensors, n_feeds)? };
        let fetches = unsafe { names(fetch_names, n_fetches, "fetch_names")? };
        let outputs = unsafe { self::trainer(trainer)? }.evaluate(&feeds, &fetches)?;
        for (d, t) in dst.iter_mut().zip(outputs) {
            *d = new_handle(t);
        }
        Ok(())
    })
}

/// Writes a checkpoint now (atomically; older ones beyond `keep` are removed). A trainer
/// without a checkpoint directory, or a directory that cannot be written (read-only, full),
/// is an error naming it, and the previous checkpoints stay intact.
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `trainer` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_save_checkpoint(trainer: *const DsTrainer) -> DsStatus {
    guard(|| unsafe { self::trainer(trainer)? }.save_checkpoint().map(|_| ()))
}

/// Writes the number of optimizer steps taken (restored on resume) to `out_step`.
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `trainer` a live handle; `out_step` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_step_count(trainer: *const DsTrainer, out_step: *mut u64) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_step, "out_step")? };
        *o = unsafe { self::trainer(trainer)? }.step_count();
        Ok(())
    })
}

/// Writes the data cursor (samples consumed: each step adds the first feed's leading
/// dimension; saved in checkpoints) to `out_cursor`, so a resumed caller can position its
/// data stream.
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `trainer` a live handle; `out_cursor` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_data_cursor(trainer: *const DsTrainer, out_cursor: *mut u64) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_cursor, "out_cursor")? };
        *o = unsafe { self::trainer(trainer)? }.data_cursor();
        Ok(())
    })
}

/// Overrides the data cursor (for steps that do not consume the first feed's rows).
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `trainer` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_set_data_cursor(trainer: *const DsTrainer, cursor: u64) -> DsStatus {
    guard(|| {
        unsafe { self::trainer(trainer)? }.set_data_cursor(cursor);
        Ok(())
    })
}

/// What happened at creation, one line each: the checkpoint resumed from and any damaged
/// newer checkpoints skipped (empty text when it started fresh); with mixed precision on,
/// also the autocast pass's statistics at creation and, last, the current state (autocast
/// dtype, loss scale, steps skipped). Two-call protocol: with
/// `capacity` too small (or `buf` NULL and `capacity` 0) the status is
/// `DS_STATUS_BUFFER_TOO_SMALL` and `*out_needed` holds the size including the NUL.
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `buf` valid for `capacity` writes; `out_needed` NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_report(
    trainer: *const DsTrainer,
    buf: *mut c_char,
    capacity: usize,
    out_needed: *mut usize,
) -> DsStatus {
    guard(|| {
        let t = unsafe { self::trainer(trainer)? };
        let mut lines = t.report().to_vec();
        lines.extend(t.amp_status());
        let text = lines.join("\n");
        unsafe { write_text(&text, buf, capacity, out_needed) }
    })
}

/// A new handle to the current value of trainable parameter `name` (a snapshot: later steps
/// do not change it).
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `trainer` a live handle; `name` NUL-terminated; `out_tensor` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_param(
    trainer: *const DsTrainer,
    name: *const c_char,
    out_tensor: *mut *mut DsTensor,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_tensor, "out_tensor")? };
        *o = std::ptr::null_mut();
        let name = unsafe { cstr(name, "name")? };
        // The trainer updates in place only when it holds the sole handle, so this clone
        // stays a snapshot (copy on write).
        *o = new_handle(unsafe { self::trainer(trainer)? }.param(name)?.clone());
        Ok(())
    })
}

/// Exports an inference-only graph for serving: the current weights frozen in, only what
/// the `n_outputs` named outputs need, optimised. Run it with `ds_executor_*`, save it with
/// `ds_graph_save`.
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `output_names` valid for `n_outputs` reads, each NUL-terminated; `out_graph` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_export(
    trainer: *const DsTrainer,
    output_names: *const *const c_char,
    n_outputs: usize,
    out_graph: *mut *mut DsGraph,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_graph, "out_graph")? };
        *o = std::ptr::null_mut();
        let outputs = unsafe { names(output_names, n_outputs, "output_names")? };
        *o = new_graph_handle(unsafe { self::trainer(trainer)? }.export_inference(&outputs)?);
        Ok(())
    })
}
