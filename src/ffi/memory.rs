//! Activation checkpointing and memory statistics of trainers through the C ABI.
//!
//! Thread safety: as the trainer functions (one thread at a time per trainer or options
//! object; concurrent calls wait).

use super::guard::{cstr, guard, slice};
use super::status::DsStatus;
use super::train::{DsTrainer, DsTrainerOptions, trainer, with_options};
use crate::error::{Error, Result};
use crate::graph::passes::Checkpointing;
use crate::train::memory::MemoryStats;
use std::ffi::c_char;

/// `ds_trainer_options_set_checkpointing` mode: keep every activation (the default).
pub const DS_CHECKPOINT_NONE: i32 = 0;
/// Mode: ⌈√L⌉ segments of the L layers.
pub const DS_CHECKPOINT_SQRT: i32 = 1;
/// Mode: close a segment when the bytes saved for the backward pass reach `budget_bytes`
/// (a symbolic dimension such as the batch counts as `symbol_size`).
pub const DS_CHECKPOINT_BUDGET: i32 = 2;
/// Mode: segment boundaries named in `boundaries` (graph output names or `%N` value ids).
pub const DS_CHECKPOINT_BOUNDARIES: i32 = 3;

/// Bytes by category, filled by `ds_trainer_memory_stats`. The caller sets `struct_size` to
/// `sizeof(DsMemoryStats)`; the library fills only the fields that fit in it, so programs
/// built against an older header keep working when fields are added at the end. Between
/// steps activations, gradients and workspace are 0 (a step frees them); their peaks are
/// the highest of any step since the trainer was created or its peak reset.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DsMemoryStats {
    /// Set by the caller: `sizeof(DsMemoryStats)`.
    pub struct_size: u32,
    /// Trainable parameters.
    pub parameters: u64,
    /// Highest `parameters`.
    pub parameters_peak: u64,
    /// Optimizer slots.
    pub optimizer_state: u64,
    /// Highest `optimizer_state`.
    pub optimizer_state_peak: u64,
    /// Intermediate values of a running step (activations kept for backward and backward
    /// intermediates), measured by the training executor.
    pub activations: u64,
    /// Most activation bytes held at once during a step.
    pub activations_peak: u64,
    /// Gradients of a running step.
    pub gradients: u64,
    /// Most gradient bytes of a step.
    pub gradients_peak: u64,
    /// Other CPU-allocator bytes of a running step (kernel scratch, optimizer temporaries).
    pub workspace: u64,
    /// Most workspace bytes of a step (an upper estimate: the allocator is process-wide).
    pub workspace_peak: u64,
    /// The process's CPU allocator, bytes in use now (as `ds_cpu_allocator_stats`).
    pub allocator_in_use: u64,
    /// The process's CPU allocator, peak bytes in use (reset by `ds_cpu_allocator_reset_peak`).
    pub allocator_peak: u64,
}

/// The checkpointing mode from C's integers.
fn checkpointing_of(mode: i32, budget_bytes: u64, symbol_size: u64, names: Vec<String>) -> Result<Checkpointing> {
    Ok(match mode {
        DS_CHECKPOINT_NONE => Checkpointing::None,
        DS_CHECKPOINT_SQRT => Checkpointing::Sqrt,
        DS_CHECKPOINT_BUDGET if budget_bytes > 0 && symbol_size > 0 => {
            Checkpointing::Budget { bytes: budget_bytes, symbol_size }
        }
        DS_CHECKPOINT_BUDGET => {
            return Err(Error::invalid(
                "budget_bytes",
                format!(
                    "DS_CHECKPOINT_BUDGET needs budget_bytes > 0 and symbol_size > 0, given {budget_bytes} and {symbol_size}"
                ),
            ));
        }
        DS_CHECKPOINT_BOUNDARIES if !names.is_empty() => Checkpointing::Boundaries(names),
        DS_CHECKPOINT_BOUNDARIES => {
            return Err(Error::invalid("boundaries", "DS_CHECKPOINT_BOUNDARIES needs at least one boundary name"));
        }
        other => {
            return Err(Error::invalid(
                "mode",
                format!("unknown checkpointing mode {other} (DS_CHECKPOINT_NONE, _SQRT, _BUDGET or _BOUNDARIES)"),
            ));
        }
    })
}

/// Sets activation checkpointing of the training graph: `mode` is one of `DS_CHECKPOINT_*`;
/// `budget_bytes` and `symbol_size` are read for `DS_CHECKPOINT_BUDGET`, `boundaries`
/// (`n_boundaries` NUL-terminated names) for `DS_CHECKPOINT_BOUNDARIES` (NULL with 0
/// otherwise). Boundaries are checked when the trainer is created: one that is not a valid
/// cut of the model makes `ds_trainer_new` fail with a message naming it.
///
/// Thread safety: one thread at a time per options object.
///
/// # Safety
/// `options` a live handle; `boundaries` NULL or valid for `n_boundaries` NUL-terminated strings.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_options_set_checkpointing(
    options: *mut DsTrainerOptions,
    mode: i32,
    budget_bytes: u64,
    symbol_size: u64,
    boundaries: *const *const c_char,
    n_boundaries: usize,
) -> DsStatus {
    unsafe {
        with_options(options, |o| {
            let names = slice(boundaries, n_boundaries, "boundaries")?
                .iter()
                .map(|&p| cstr(p, "boundaries").map(str::to_string))
                .collect::<Result<Vec<_>>>()?;
            o.checkpointing = checkpointing_of(mode, budget_bytes, symbol_size, names)?;
            Ok(())
        })
    }
}

/// Fills `out_stats` (its `struct_size` set by the caller) with the trainer's current and
/// peak bytes by category.
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `trainer` a live handle; `out_stats` valid for reads and writes of `struct_size` bytes.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_memory_stats(trainer: *const DsTrainer, out_stats: *mut DsMemoryStats) -> DsStatus {
    guard(|| {
        let trainer = unsafe { self::trainer(trainer)? };
        if out_stats.is_null() {
            return Err(Error::NullPointer { arg: "out_stats" });
        }
        // Only the size field is read before it is checked: older callers have smaller structs.
        let size = unsafe { (*out_stats).struct_size } as usize;
        if size < size_of::<u32>() + size_of::<u64>() {
            return Err(Error::invalid(
                "out_stats",
                format!("struct_size is {size}, set it to sizeof(DsMemoryStats) ({})", size_of::<DsMemoryStats>()),
            ));
        }
        let s: MemoryStats = trainer.memory_stats();
        let full = DsMemoryStats {
            struct_size: size.min(size_of::<DsMemoryStats>()) as u32,
            parameters: s.parameters,
            parameters_peak: s.parameters_peak,
            optimizer_state: s.optimizer_state,
            optimizer_state_peak: s.optimizer_state_peak,
            activations: s.activations,
            activations_peak: s.activations_peak,
            gradients: s.gradients,
            gradients_peak: s.gradients_peak,
            workspace: s.workspace,
            workspace_peak: s.workspace_peak,
            allocator_in_use: s.allocator_in_use,
            allocator_peak: s.allocator_peak,
        };
        // Copy only what fits in the caller's struct: an older header's struct is a prefix
        // of this one, so its size ends at one of our field boundaries.
        let n = size.min(size_of::<DsMemoryStats>());
        // SAFETY: the caller's struct is valid for `struct_size` bytes and `full` for its own size.
        unsafe {
            std::ptr::copy_nonoverlapping((&full as *const DsMemoryStats).cast::<u8>(), out_stats.cast::<u8>(), n)
        };
        Ok(())
    })
}

/// Sets every category's peak to its current bytes (the process allocator's own peak is not
/// touched: `ds_cpu_allocator_reset_peak` does that).
///
/// Thread safety: one thread at a time per trainer (concurrent calls wait).
///
/// # Safety
/// `trainer` a live handle.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_trainer_reset_peak_memory(trainer: *const DsTrainer) -> DsStatus {
    guard(|| {
        unsafe { self::trainer(trainer)? }.reset_peak_memory();
        Ok(())
    })
}
