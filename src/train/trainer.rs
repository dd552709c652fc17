//! The trainer: one graph step (forward + backward) plus the optimizer update, with checkpoints that resume by themselves.
//!
//! Built from a model graph, the name of its scalar loss output and [`TrainerOptions`], the
//! trainer appends the backward graph once (graph autodiff), compiles a training executor
//! and a forward-only one, and owns the trainable parameters. Each [`Trainer::step`] feeds
//! the data plus the current parameters, fetches the loss and every gradient, refuses the
//! step when the loss or a gradient is not finite (nothing changes), clips, and lets the
//! optimizers update the parameters in place. Embedding tables (row gradients) go to the
//! sparse optimizer, which touches only the rows in the batch.
//!
//! A trainer is driven by one thread at a time (`&mut self`); the inference graph it exports
//! is for the many-threaded serving side.

use super::amp::{self as amp_wiring, LOSS_SCALE_INPUT};
use super::checkpoint::{Checkpoint, CheckpointDir};
use super::memory::{MemoryStats, MemoryTracker};
use super::optim::{LrSchedule, Optimizer, OptimizerConfig, clip_grad_norm, coalesce_each};
use crate::amp::{GradScaler, GradScalerOptions};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::exec::{ExecOptions, Executor, Profile, RunOptions};
use crate::graph::passes::{Checkpointing, append_gradients_checkpointed};
use crate::graph::{Graph, GraphBuilder, NodeKind, ParamGrad, ValueId};
use crate::rng::Generator;
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Optimizer for parameters with dense gradients.
    pub optimizer: OptimizerConfig,
    /// Optimizer for embedding tables (row gradients); `None` uses `optimizer`.
    pub sparse_optimizer: Option<OptimizerConfig>,
    /// Base learning rate, shaped by `schedule`.
    pub lr: f64,
    /// Base learning rate of the sparse optimizer (`None`: `lr`), shaped by the same schedule:
    /// row-wise Adagrad on tables typically wants a rate ten times Adam's on dense layers.
    pub sparse_lr: Option<f64>,
    /// Learning-rate schedule over optimizer steps.
    pub schedule: LrSchedule,
    /// Clip gradients to this global L2 norm (`None`: no clipping).
    pub clip_norm: Option<f64>,
    /// Directory for checkpoints (`None`: no checkpoints). A trainer pointed at a directory
    /// that holds checkpoints resumes from the newest valid one.
    pub checkpoint_dir: Option<PathBuf>,
    /// Write a checkpoint every this many steps (0: only on request).
    pub checkpoint_every: u64,
    /// Checkpoints kept in the directory (older ones are removed).
    pub keep_checkpoints: usize,
    /// How the executors compile the graphs.
    pub exec: ExecOptions,
    /// Seed of the trainer's random generator (saved and restored with checkpoints).
    pub seed: u64,
    /// Mixed precision: the autocast dtype (f16, bf16 or f32) of the graph autocast pass run
    /// on the training graph before the backward graph is built; parameters stay f32 masters.
    pub autocast: Option<DType>,
    /// Dynamic loss scaling (ALGORITHMS.md §2); a no-op with bf16 autocast. A step with a
    /// non-finite gradient is then skipped (nothing changes but the scale) instead of refused.
    pub loss_scaling: Option<GradScalerOptions>,
    /// Activation checkpointing of the training graph: which forward segments the backward
    /// pass recomputes instead of keeping (needs `exec.opt_level` 2, which frees dead values).
    pub checkpointing: Checkpointing,
    /// Time every node of each step's graph run; read the times with [`Trainer::last_profile`].
    pub profile: bool,
}

impl Default for TrainerOptions {
    fn default() -> Self {
        TrainerOptions {
            optimizer: OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
            sparse_optimizer: None,
            lr: 1e-3,
            sparse_lr: None,
            schedule: LrSchedule::Constant,
            clip_norm: None,
            checkpoint_dir: None,
            checkpoint_every: 0,
            keep_checkpoints: 3,
            exec: ExecOptions::default(),
            seed: 0,
            autocast: None,
            loss_scaling: None,
            checkpointing: Checkpointing::None,
            profile: false,
        }
    }
}

/// One trainable parameter: its current value and where its gradient comes out.
struct Param {
    name: String,
    tensor: Tensor,
    grad: ParamGrad,
}

/// Trains one graph. See the module documentation.
pub struct Trainer {
    model: Graph,
    loss: String,
    train: Executor,
    forward: Executor,
    params: Vec<Param>,
    fetches: Vec<String>,
    dense_opt: Box<dyn Optimizer>,
    sparse_opt: Box<dyn Optimizer>,
    options: TrainerOptions,
    checkpoints: Option<CheckpointDir>,
    step: u64,
    rng: Generator,
    data_cursor: u64,
    last_grad_norm: f64,
    report: Vec<String>,
    scaler: Option<GradScaler>,
    memory: MemoryTracker,
    profile: Option<Profile>,
}

impl Trainer {
    /// A trainer for `graph` minimising its scalar output `loss`. With a checkpoint directory
    /// that already holds checkpoints, it resumes from the newest valid one (damaged newer
    /// files are skipped and listed in [`Trainer::report`]); a checkpoint whose parameters
    /// differ from the graph's is an error listing the differences.
    pub fn new(graph: &Graph, loss: &str, options: TrainerOptions) -> Result<Trainer> {
        if !(options.lr.is_finite() && options.lr >= 0.0) {
            return Err(Error::invalid(
                "lr",
                format!("the learning rate must be finite and >= 0, given {}", options.lr),
            ));
        }
        if let Some(c) = options.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::invalid("clip_norm", format!("the clipping norm must be finite and > 0, given {c}")));
        }
        let amp = amp_wiring::prepare(graph, loss, &options)?;
        let (with_grads, grads, _) =
            append_gradients_checkpointed(&amp.train, &amp.diff_loss, None, &options.checkpointing)?;
        if grads.is_empty() {
            return Err(Error::invalid("graph", "the graph has no trainable parameters to train"));
        }
        let values: HashMap<&str, &Tensor> = graph.params().into_iter().map(|(n, _, t, _)| (n, t)).collect();
        let params: Vec<Param> =
            grads.into_iter().map(|(name, grad)| Param { tensor: values[name.as_str()].clone(), name, grad }).collect();
        let mut fetches = vec![loss.to_string()];
        for p in &params {
            match &p.grad {
                ParamGrad::Dense(g) => fetches.push(g.clone()),
                ParamGrad::Rows { indices, rows } => fetches.extend([indices.clone(), rows.clone()]),
            }
        }
        let sparse = options.sparse_optimizer.as_ref().unwrap_or(&options.optimizer);
        let mut trainer = Trainer {
            model: graph.clone(),
            loss: loss.to_string(),
            train: Executor::new(&with_grads, options.exec.clone())?,
            forward: Executor::new(&amp.forward, options.exec.clone())?,
            params,
            fetches,
            dense_opt: options.optimizer.build(),
            sparse_opt: sparse.build(),
            checkpoints: None,
            step: 0,
            rng: Generator::new(options.seed),
            data_cursor: 0,
            last_grad_norm: 0.0,
            report: amp.pass_stat.into_iter().collect(),
            scaler: amp.scaler,
            memory: MemoryTracker::default(),
            profile: None,
            options,
        };
        trainer.note_resident_memory();
        if let Some(dir) = &trainer.options.checkpoint_dir {
            let dir = CheckpointDir::new(dir, trainer.options.keep_checkpoints.max(1))?;
            if let Some(found) = dir.load_newest()? {
                trainer.report.extend(found.skipped);
                trainer.restore(found.checkpoint)?;
                trainer.report.push(format!("resumed from {} at step {}", found.path.display(), trainer.step));
            }
            trainer.checkpoints = Some(dir);
        }
        Ok(trainer)
    }

    /// One training step on `feeds` (the graph's inputs, by name); returns the loss. The
    /// step is refused with [`Error::NonFinite`] when the loss or any gradient is NaN or
    /// infinite, and then nothing changes: parameters, optimizer state and step count stay.
    /// The data cursor advances by the leading dimension of the first feed.
    pub fn step(&mut self, feeds: &[(&str, &Tensor)]) -> Result<f64> {
        self.check_feeds(feeds)?;
        let mut grads = {
            let mut all: Vec<(&str, &Tensor)> = feeds.to_vec();
            all.extend(self.params.iter().map(|p| (p.name.as_str(), &p.tensor)));
            let scale = match &self.scaler {
                Some(s) if s.is_enabled() => Some(s.scale_tensor()?),
                _ => None,
            };
            all.extend(scale.as_ref().map(|t| (LOSS_SCALE_INPUT, t)));
            let fetches: Vec<&str> = self.fetches.iter().map(String::as_str).collect();
            self.memory.begin_step();
            let run = RunOptions { track_memory: true, profile: self.options.profile, cancel: None };
            let (outs, stats) = self.train.run_with(&all, &fetches, &run)?;
            self.memory.after_run(&stats);
            self.profile = stats.profile;
            outs
        };
        // `grads` holds the loss first, then each parameter's gradient in `self.params` order.
        let loss = grads.remove(0).item()?;
        let scaling = self.scaler.as_ref().is_some_and(GradScaler::is_enabled);
        if !loss.is_finite() && !scaling {
            return Err(Error::NonFinite(format!(
                "the loss `{}` is {loss} at step {}; the step was refused and nothing changed",
                self.loss, self.step
            )));
        }
        let mut gradients = Vec::with_capacity(self.params.len());
        let mut it = grads.into_iter();
        for p in &self.params {
            let g = match &p.grad {
                ParamGrad::Dense(_) => Gradient::Dense(it.next().expect("one fetch per dense gradient")),
                ParamGrad::Rows { .. } => {
                    Gradient::Rows { indices: it.next().expect("indices fetch"), rows: it.next().expect("rows fetch") }
                }
            };
            gradients.push(g);
        }
        // Duplicate indices summed first, so the loss scaler unscales (and clipping measures)
        // each table row once.
        let coalesced = coalesce_each(&gradients)?;
        for (g, merged) in gradients.iter_mut().zip(coalesced) {
            if let Some((indices, rows)) = merged {
                *g = Gradient::Rows { indices, rows };
            }
        }
        if let Some(s) = self.scaler.as_mut().filter(|s| s.is_enabled()) {
            let found_inf = s.unscale(&mut gradients)? || !loss.is_finite();
            s.update(found_inf)?;
            if found_inf {
                // Skipped: parameters, optimizer state and step count stay; the batch was used.
                self.advance_data(feeds);
                return Ok(loss);
            }
        }
        // Without clipping the norm is still measured: it is how a non-finite gradient is
        // caught before any parameter changes (f64::MAX never scales a finite norm).
        let max_norm = self.options.clip_norm.unwrap_or(f64::MAX);
        let norm = clip_grad_norm(&mut gradients, max_norm).map_err(|e| match e {
            Error::NonFinite(msg) => {
                Error::NonFinite(format!("{msg} (step {}; the step was refused and nothing changed)", self.step))
            }
            other => other,
        })?;
        let lr = self.options.schedule.lr(self.options.lr, self.step);
        let sparse_lr = self.options.schedule.lr(self.options.sparse_lr.unwrap_or(self.options.lr), self.step);
        for (p, g) in self.params.iter_mut().zip(&gradients) {
            match g {
                Gradient::Dense(_) => self.dense_opt.update(&p.name, &mut p.tensor, g, lr)?,
                Gradient::Rows { .. } => self.sparse_opt.update(&p.name, &mut p.tensor, g, sparse_lr)?,
            }
        }
        self.last_grad_norm = norm;
        self.note_resident_memory();
        self.step += 1;
        self.advance_data(feeds);
        if self.options.checkpoint_every > 0 && self.step.is_multiple_of(self.options.checkpoint_every) {
            self.save_checkpoint()?;
        }
        Ok(loss)
    }

    /// Moves the data cursor past the batch and the generator one draw on.
    fn advance_data(&mut self, feeds: &[(&str, &Tensor)]) {
        self.data_cursor += feeds.first().map_or(0, |(_, t)| t.shape().first().copied().unwrap_or(1) as u64);
        // Advanced once per step so that anything drawing from it (shuffling, dropout seeds)
        // resumes from a checkpoint exactly where an uninterrupted run would be.
        self.rng.next_u64();
    }

    /// Where the last step's graph run spent its time, by kind of node (`None` unless
    /// [`TrainerOptions::profile`] is on). The optimizer update is not part of it.
    pub fn last_profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// Mixed-precision status (`None` when neither autocast nor loss scaling is on): the
    /// autocast dtype, the current loss scale and the steps skipped for non-finite gradients.
    pub fn amp_status(&self) -> Option<String> {
        if self.options.autocast.is_none() && self.scaler.is_none() {
            return None;
        }
        let autocast = self.options.autocast.map_or("off".to_string(), |d| d.to_string());
        let scaling = match &self.scaler {
            Some(s) if s.is_enabled() => format!(
                "loss scale {} (growth tracker {}), {} steps skipped",
                s.scale(),
                s.growth_tracker(),
                s.skipped_steps()
            ),
            Some(_) => "loss scaling off (not needed with bf16)".to_string(),
            None => "loss scaling off".to_string(),
        };
        Some(format!("amp: autocast {autocast}, {scaling}"))
    }

    /// The loss scaler, when loss scaling is on.
    pub fn grad_scaler(&self) -> Option<&GradScaler> {
        self.scaler.as_ref()
    }

    /// Runs the forward graph on `feeds` with the current parameters and returns `fetches`.
    pub fn evaluate(&self, feeds: &[(&str, &Tensor)], fetches: &[&str]) -> Result<Vec<Tensor>> {
        self.check_feeds(feeds)?;
        let mut all: Vec<(&str, &Tensor)> = feeds.to_vec();
        all.extend(self.params.iter().map(|p| (p.name.as_str(), &p.tensor)));
        self.forward.run(&all, fetches)
    }

    /// Feeds may not name a parameter: the trainer owns them.
    fn check_feeds(&self, feeds: &[(&str, &Tensor)]) -> Result<()> {
        if let Some((name, _)) = feeds.iter().find(|(n, _)| self.params.iter().any(|p| p.name == *n)) {
            return Err(Error::invalid(
                "feeds",
                format!("`{name}` is a trainable parameter, which the trainer owns; feed only the graph's inputs"),
            ));
        }
        Ok(())
    }

    /// Current and peak bytes by category (see [`MemoryStats`]).
    pub fn memory_stats(&self) -> MemoryStats {
        self.memory.stats()
    }

    /// Sets every category's peak to its current bytes.
    pub fn reset_peak_memory(&mut self) {
        self.memory.reset_peak();
    }

    /// Records the bytes of the parameters and optimizer slots the trainer holds.
    fn note_resident_memory(&mut self) {
        let bytes = |ts: &mut dyn Iterator<Item = &Tensor>| ts.map(|t| t.nbytes() as u64).sum::<u64>();
        let params = bytes(&mut self.params.iter().map(|p| &p.tensor));
        let slots = [self.dense_opt.state(), self.sparse_opt.state()];
        let optimizer = bytes(&mut slots.iter().flatten().map(|(_, t)| t));
        self.memory.resident(params, optimizer);
    }

    /// Optimizer steps taken (restored from a checkpoint on resume).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Samples consumed so far: advanced by each step, saved in checkpoints, so a resumed
    /// caller can position its data stream where the interrupted run stopped.
    pub fn data_cursor(&self) -> u64 {
        self.data_cursor
    }

    /// Sets the data cursor (for callers whose steps do not consume the first feed's rows).
    pub fn set_data_cursor(&mut self, cursor: u64) {
        self.data_cursor = cursor;
    }

    /// The trainer's random generator (state saved in checkpoints).
    pub fn rng(&mut self) -> &mut Generator {
        &mut self.rng
    }

    /// The global gradient norm of the last step, before clipping.
    pub fn last_grad_norm(&self) -> f64 {
        self.last_grad_norm
    }

    /// The learning rate the next step will use.
    pub fn current_lr(&self) -> f64 {
        self.options.schedule.lr(self.options.lr, self.step)
    }

    /// What happened at construction: the checkpoint resumed from and any damaged newer ones
    /// skipped, one line each.
    pub fn report(&self) -> &[String] {
        &self.report
    }

    /// The trainable parameters' current values, by name.
    pub fn params(&self) -> Vec<(&str, &Tensor)> {
        self.params.iter().map(|p| (p.name.as_str(), &p.tensor)).collect()
    }

    /// The current value of parameter `name`.
    pub fn param(&self, name: &str) -> Result<&Tensor> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.tensor)
            .ok_or_else(|| Error::NotFound(format!("`{name}` is not a trainable parameter of this trainer")))
    }

    /// Everything a checkpoint holds, as of now.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut optimizer_state = self.dense_opt.state();
        optimizer_state.extend(self.sparse_opt.state());
        Checkpoint {
            step: self.step,
            rng_state: self.rng.state(),
            data_cursor: self.data_cursor,
            params: self.params.iter().map(|p| (p.name.clone(), p.tensor.clone())).collect(),
            optimizer_state,
            amp_state: self
                .scaler
                .as_ref()
                .map(amp_wiring::scaler_entries)
                .transpose()
                .ok()
                .flatten()
                .unwrap_or_default(),
        }
    }

    /// Writes a checkpoint now; returns its path. Needs a checkpoint directory.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let Some(dir) = &self.checkpoints else {
            return Err(Error::invalid("checkpoint_dir", "this trainer was created without a checkpoint directory"));
        };
        dir.save(&self.checkpoint())
    }

    /// Continues from `ckpt`: parameters, optimizer slots, step, RNG state and data cursor.
    /// Parameters that differ from the graph's (names, dtypes, shapes) are an error listing
    /// every difference, and then nothing changes.
    pub fn restore(&mut self, ckpt: Checkpoint) -> Result<()> {
        let expected: Vec<(String, Tensor)> = self.params.iter().map(|p| (p.name.clone(), p.tensor.clone())).collect();
        let diffs = ckpt.param_differences(&expected);
        if !diffs.is_empty() {
            return Err(Error::invalid(
                "checkpoint",
                format!("the checkpoint is not of this graph: {}", diffs.join("; ")),
            ));
        }
        // Slots belong to the optimizer that owns their parameter.
        let sparse: HashSet<&str> =
            self.params.iter().filter(|p| matches!(p.grad, ParamGrad::Rows { .. })).map(|p| p.name.as_str()).collect();
        let owner = |slot: &str| -> Option<bool> {
            let param = self.params.iter().map(|p| p.name.as_str()).filter(|n| slot.starts_with(&format!("{n}/")));
            param.max_by_key(|n| n.len()).map(|n| sparse.contains(n))
        };
        let (mut dense_state, mut sparse_state) = (Vec::new(), Vec::new());
        for (name, t) in ckpt.optimizer_state {
            match owner(&name) {
                Some(true) => sparse_state.push((name, t)),
                Some(false) => dense_state.push((name, t)),
                None => {
                    return Err(Error::invalid(
                        "checkpoint",
                        format!("optimizer slot `{name}` belongs to no trainable parameter of this graph"),
                    ));
                }
            }
        }
        // Fresh optimizers first, so a failed load leaves the trainer's own state untouched.
        let sparse_config = self.options.sparse_optimizer.as_ref().unwrap_or(&self.options.optimizer);
        let (mut dense_opt, mut sparse_opt) = (self.options.optimizer.build(), sparse_config.build());
        dense_opt.load_state(&dense_state)?;
        sparse_opt.load_state(&sparse_state)?;
        let mut scaler = self.scaler.clone();
        if let Some(s) = &mut scaler {
            amp_wiring::load_scaler(s, &ckpt.amp_state)?;
        }
        let values: HashMap<String, Tensor> = ckpt.params.into_iter().collect();
        for p in &mut self.params {
            p.tensor = values[&p.name].clone();
        }
        (self.dense_opt, self.sparse_opt, self.scaler) = (dense_opt, sparse_opt, scaler);
        self.step = ckpt.step;
        self.rng = Generator::new(ckpt.rng_state);
        self.data_cursor = ckpt.data_cursor;
        self.note_resident_memory();
        Ok(())
    }

    /// An inference-only copy of the model for serving: the current weights frozen into it,
    /// only the nodes that `outputs` need (the loss, labels and gradients drop away), then
    /// optimised (folding, simplification, CSE, DCE).
    pub fn export_inference(&self, outputs: &[&str]) -> Result<Graph> {
        if outputs.is_empty() {
            return Err(Error::invalid("outputs", "name at least one output to export"));
        }
        let g = &self.model;
        let roots = outputs.iter().map(|o| g.output(o)).collect::<Result<Vec<_>>>()?;
        // Which nodes the outputs need, walking back from them (nodes are topologically ordered).
        let producer: HashMap<ValueId, usize> =
            g.nodes().iter().enumerate().flat_map(|(i, n)| n.outputs.iter().map(move |v| (*v, i))).collect();
        let mut needed = vec![false; g.nodes().len()];
        let mut stack: Vec<usize> = roots.iter().map(|v| producer[v]).collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut needed[i], true) {
                stack.extend(g.nodes()[i].inputs.iter().map(|v| producer[v]));
            }
        }
        let current: HashMap<&str, &Tensor> = self.params.iter().map(|p| (p.name.as_str(), &p.tensor)).collect();
        let mut b = GraphBuilder::new();
        let mut map: HashMap<ValueId, ValueId> = HashMap::new();
        for (i, node) in g.nodes().iter().enumerate().filter(|(i, _)| needed[*i]) {
            let inputs: Vec<ValueId> = node.inputs.iter().map(|v| map[v]).collect();
            let outs = match &node.kind {
                NodeKind::Input { name } => {
                    let ty = &g.value(node.outputs[0]).ty;
                    vec![b.input(name, ty.dtype, &ty.dims)?]
                }
                NodeKind::Param { name, tensor, .. } => {
                    vec![b.param(name, current.get(name.as_str()).copied().unwrap_or(tensor), false)?]
                }
                NodeKind::Const { tensor } => vec![b.constant(tensor)?],
                NodeKind::Op { op, attrs } => b.apply(op, &inputs, attrs.clone())?,
                NodeKind::Fused { .. } => {
                    return Err(Error::Unsupported(format!(
                        "{} is fused; export from the unoptimised model graph",
                        g.describe(crate::graph::NodeId(i))
                    )));
                }
            };
            map.extend(node.outputs.iter().copied().zip(outs));
        }
        for (name, v) in outputs.iter().zip(&roots) {
            b.output(name, map[v])?;
        }
        crate::graph::passes::optimize(&b.finish()?, 1)
    }
}
