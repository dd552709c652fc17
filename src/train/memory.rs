//! Memory statistics of a trainer: current and peak bytes of parameters, optimizer state, activations, gradients and workspace.
//!
//! Sources: parameters and optimizer state are the trainer's own tensors; activations and
//! gradients come from the training executor's tracking of each step
//! ([`crate::exec::RunStats`]: intermediate values versus graph outputs); workspace is what
//! the process's CPU caching allocator held at its highest point during a step beyond the
//! bytes in use when the step began and the step's tracked activations and gradients
//! (kernel scratch such as packed GEMM panels, optimizer temporaries). The allocator is
//! process-wide, so workspace is an upper estimate when other threads allocate meanwhile.

use crate::backend::cpu::alloc::CPU_ALLOCATOR;
use crate::exec::RunStats;

/// Bytes by category, now and at the peak since the trainer was built or its peak reset.
/// Between steps activations, gradients and workspace are 0: a step frees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStats {
    /// Trainable parameters.
    pub parameters: u64,
    /// Highest `parameters`.
    pub parameters_peak: u64,
    /// Optimizer slots (moments, accumulators).
    pub optimizer_state: u64,
    /// Highest `optimizer_state`.
    pub optimizer_state_peak: u64,
    /// Intermediate values of a running step (forward activations kept for the backward
    /// pass and backward intermediates).
    pub activations: u64,
    /// Most activation bytes held at once during a step.
    pub activations_peak: u64,
    /// Gradients of a running step.
    pub gradients: u64,
    /// Most gradient bytes of a step.
    pub gradients_peak: u64,
    /// Other allocator bytes of a running step.
    pub workspace: u64,
    /// Most workspace bytes of a step (upper estimate, see the module documentation).
    pub workspace_peak: u64,
    /// The process's CPU allocator: bytes in use now (all users).
    pub allocator_in_use: u64,
    /// The process's CPU allocator: peak bytes in use (reset by the allocator's own reset).
    pub allocator_peak: u64,
}

/// Accumulates [`MemoryStats`] across steps.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryTracker {
    stats: MemoryStats,
    step_base: u64,
}

impl MemoryTracker {
    /// Records the resident categories.
    pub fn resident(&mut self, parameters: u64, optimizer_state: u64) {
        let s = &mut self.stats;
        (s.parameters, s.optimizer_state) = (parameters, optimizer_state);
        s.parameters_peak = s.parameters_peak.max(parameters);
        s.optimizer_state_peak = s.optimizer_state_peak.max(optimizer_state);
    }

    /// Called when a step starts: opens the allocator's measurement window.
    pub fn begin_step(&mut self) {
        self.step_base = CPU_ALLOCATOR.begin_peak_window();
    }

    /// Called after the step's executor run (before the optimizer update).
    pub fn after_run(&mut self, run: &RunStats) {
        let s = &mut self.stats;
        let (act, grads) = (run.peak_intermediate_bytes as u64, run.output_bytes as u64);
        s.activations_peak = s.activations_peak.max(act);
        s.gradients_peak = s.gradients_peak.max(grads);
        let above = CPU_ALLOCATOR.window_peak().saturating_sub(self.step_base);
        s.workspace_peak = s.workspace_peak.max(above.saturating_sub(act + grads));
    }

    /// The statistics now (outside a step).
    pub fn stats(&self) -> MemoryStats {
        let a = CPU_ALLOCATOR.stats();
        MemoryStats { allocator_in_use: a.bytes_in_use, allocator_peak: a.peak_bytes_in_use, ..self.stats }
    }

    /// Sets every category's peak to its current bytes.
    pub fn reset_peak(&mut self) {
        let s = &mut self.stats;
        s.parameters_peak = s.parameters;
        s.optimizer_state_peak = s.optimizer_state;
        s.activations_peak = s.activations;
        s.gradients_peak = s.gradients;
        s.workspace_peak = s.workspace;
    }
}
