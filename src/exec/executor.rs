//! `Executor`: an optimised, planned graph that many threads may run at once; each run owns its value table.

use super::branches::{pairs_unequal_products, product_work};
use super::cancel::CancelToken;
use super::epilogue::run_epilogue;
use super::plan::Plan;
use super::profile::Profile;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::dim::Bindings;
use crate::graph::infer::at_node;
use crate::graph::{Dim, Graph, Node, NodeId, NodeKind, Product, ValueId};
use crate::ops::fused::{FusedProgram, pointwise_in_place, prepare, run_fused, run_prepared};
use crate::ops::linalg::{WeightPanels, linear_with_panels, reads_packed_faster};
use crate::ops::util::broadcast_shapes;
use crate::ops::{OpDef, dispatch, fields, index};
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// How to compile a graph.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// 0: run the graph as given; 1: constant folding, CSE, DCE and algebraic
    /// simplification; 2: also fusion (pointwise chains, and epilogues: a chain into the
    /// product before it), memory planning and packed copies of each fixed weight read only
    /// by linear nodes (the default): one stored transposed, which saves a transpose on every
    /// large call, and, where products split by columns over the pool's threads, one cut
    /// into a panel per piece, which they read without packing. The copies cost those
    /// weights' size up to twice more.
    pub opt_level: u8,
    /// Where the graph runs.
    pub device: Device,
    /// Most nodes run at once (inter-op parallelism): 0 = as many as the engine's thread
    /// pool has threads where a level pairs matrix products of unequal size, else one node
    /// at a time (see `branches.rs`); 1 = one node at a time. Ops parallelise inside either way.
    /// A request whose products come to few multiply-adds (batch 1) runs one node at a time.
    pub inter_op_threads: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions { opt_level: 2, device: Device::Cpu, inter_op_threads: 0 }
    }
}

/// Per-run options.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Checked before each level of nodes; a cancelled run returns `Error::Cancelled`.
    pub cancel: Option<CancelToken>,
    /// Count the bytes of live intermediate values (costs a little per node).
    pub track_memory: bool,
    /// Time every node and return the times by kind of node in [`RunStats::profile`].
    pub profile: bool,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Op nodes executed.
    pub nodes_run: usize,
    /// Most bytes held at once by values computed in this run (with `track_memory`).
    pub peak_bytes: usize,
    /// Most bytes held at once by computed values that are not graph outputs: forward
    /// activations kept for the backward pass and backward intermediates, without the
    /// results (gradients, loss) that live to the end of the run (with `track_memory`).
    pub peak_intermediate_bytes: usize,
    /// Bytes of the computed graph outputs held at the end of the run (with `track_memory`).
    pub output_bytes: usize,
    /// Where the run's time went, by kind of node (with `profile`; nodes run in place over
    /// a dying input are not timed).
    pub profile: Option<Profile>,
}

/// A compiled graph. `run` may be called from many threads at once: the plan is immutable
/// and every run builds its own value table, so runs share no mutable state and take no lock.
#[derive(Debug, Clone)]
pub struct Executor {
    plan: Arc<Plan>,
    options: ExecOptions,
    /// Whether the plan's levels run their nodes side by side when the options leave it to
    /// the executor: some level holds more than one node and, by default, pairs matrix
    /// products of unequal size.
    side_by_side: bool,
}

impl Executor {
    /// Optimises `graph` at `options.opt_level` and plans it. The executor keeps what it
    /// needs (the graph is copied), so the caller may drop or change its graph afterwards.
    pub fn new(graph: &Graph, options: ExecOptions) -> Result<Executor> {
        if options.opt_level > 2 {
            return Err(Error::invalid("opt_level", format!("must be 0, 1 or 2, given {}", options.opt_level)));
        }
        if options.device != Device::Cpu {
            return Err(Error::Unsupported(format!(
                "graph execution on {} is not available in this build; use the CPU",
                options.device
            )));
        }
        let optimised = crate::graph::passes::optimize(graph, options.opt_level)?;
        let plan = Plan::new(optimised, options.opt_level >= 2)?;
        let has_wide_level = plan.levels.iter().any(|level| level.len() > 1);
        let side_by_side = has_wide_level && (options.inter_op_threads != 0 || pairs_unequal_products(&plan));
        Ok(Executor { plan: Arc::new(plan), options, side_by_side })
    }

    /// The optimised graph this executor runs.
    pub fn graph(&self) -> &Graph {
        &self.plan.graph
    }

    /// The options it was compiled with.
    pub fn options(&self) -> &ExecOptions {
        &self.options
    }

    /// Runs with `feeds` (input name → tensor; a parameter's name replaces that parameter
    /// for this run) and returns the outputs named in `fetches`, in order.
    /// Thread-safe: may be called concurrently from any number of threads.
    pub fn run(&self, feeds: &[(&str, &Tensor)], fetches: &[&str]) -> Result<Vec<Tensor>> {
        Ok(self.run_with(feeds, fetches, &RunOptions::default())?.0)
    }

    /// [`Executor::run`] with options; also returns what the run measured.
    pub fn run_with(
        &self,
        feeds: &[(&str, &Tensor)],
        fetches: &[&str],
        options: &RunOptions,
    ) -> Result<(Vec<Tensor>, RunStats)> {
        let request = CpuRequest::enter(self.options.device);
        let graph = &self.plan.graph;
        let fetch_ids = fetches.iter().map(|f| graph.output(f)).collect::<Result<Vec<_>>>()?;
        let mut values = self.plan.preset.clone();
        let bindings = self.bind_feeds(feeds, &mut values)?;
        // A small request runs one node at a time on the caller's thread: handing its levels
        // to the pool costs more than its nodes take.
        let width = if self.side_by_side && self.is_small_request(&bindings) { 1 } else { self.inter_op_width() };
        if request.as_ref().is_some_and(|r| r.alone) && width > 1 {
            // A plan with levels to run side by side: the whole request on a pool thread,
            // so each level and each parallel op in it is a join between workers that are
            // already awake, where from the caller's thread every one would hand work to
            // the pool and wait for it. Only for a request running alone: beside others, a
            // worker waiting on its share would take up another whole request, and with
            // four callers p99 latency went from 0.32–0.35 ms to 0.78–0.90 ms. A chain of
            // nodes (the MLP), or a plan run one node at a time, runs on the caller's thread
            // instead, which then takes a share of each split op itself
            // (`for_each_part_pinned`): batch-1 MLP inference took 0.76–0.82 of the time it
            // took run whole on the pool (BENCHMARKS.md).
            return crate::runtime::install(|| self.run_levels(values, &fetch_ids, fetches, options, width));
        }
        self.run_levels(values, &fetch_ids, fetches, options, width)
    }

    /// Whether the matrix products of a request, its symbols sized by `bindings` (unbound
    /// ones as huge), come to fewer than [`SMALL_REQUEST_WORK`] multiply-adds.
    fn is_small_request(&self, bindings: &Bindings) -> bool {
        let size = |d: &Dim| match d {
            Dim::Fixed(n) => *n,
            Dim::Sym(s) => bindings.get(s).unwrap_or(usize::MAX),
        };
        product_work(&self.plan, &size).is_some_and(|work| work < SMALL_REQUEST_WORK)
    }

    /// How many nodes of one level may run at once.
    fn inter_op_width(&self) -> usize {
        match self.options.inter_op_threads {
            _ if !self.side_by_side => 1,
            0 => crate::runtime::num_threads(),
            n => n,
        }
    }

    /// [`Executor::run_with`]'s work on the fed `values`, on whichever thread it is called, at
    /// most `width` nodes of a level at once; `fetch_ids` are the values named `fetches`.
    fn run_levels(
        &self,
        mut values: Vec<Option<Tensor>>,
        fetch_ids: &[ValueId],
        fetches: &[&str],
        options: &RunOptions,
        width: usize,
    ) -> Result<(Vec<Tensor>, RunStats)> {
        let plan = &*self.plan;
        let graph = &plan.graph;
        let needed = needed_nodes(graph, fetch_ids);
        if let Some(missing) =
            graph.inputs().iter().find(|(_, v)| values[v.0].is_none() && needed[graph.value(*v).node.0])
        {
            return Err(Error::invalid(
                "feeds",
                format!("input `{}` is needed for {fetches:?} but was not fed", missing.0),
            ));
        }
        let mut stats = RunStats::default();
        let mut live = LiveBytes::default();
        // The same, for values that are not graph outputs.
        let mut inter = LiveBytes::default();
        let is_output = |v: ValueId| plan.is_output[v.0];
        // Reused across levels: a request should not allocate per level.
        let mut todo: Vec<NodeId> = Vec::new();
        let mut results: Vec<(NodeId, Result<Vec<Tensor>>, u64)> = Vec::new();
        let mut node_nanos: Vec<(NodeId, u64)> = Vec::new();
        let run = |n: NodeId, vals: &[Option<Tensor>]| {
            if options.profile {
                let t = Instant::now();
                let r = run_node(plan, n, vals);
                (n, r, t.elapsed().as_nanos() as u64)
            } else {
                (n, run_node(plan, n, vals), 0)
            }
        };
        for (li, level) in plan.levels.iter().enumerate() {
            if options.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
                return Err(Error::Cancelled(format!("run stopped before level {li} of {}", plan.levels.len())));
            }
            todo.clear();
            todo.extend(level.iter().copied().filter(|n| needed[n.0]));
            // Memory plan: pointwise ops whose input dies here overwrite it in place.
            todo.retain(|&n| match self.try_in_place(n, &mut values) {
                Ok(true) => {
                    stats.nodes_run += 1;
                    // The bytes moved from the input's slot to the output's: recount them
                    // when that crosses the intermediate/output line.
                    let (from, to) = (plan.in_place[n.0].expect("in-place node"), graph.node(n).outputs[0]);
                    if options.track_memory
                        && is_output(from) != is_output(to)
                        && let Some(t) = &values[to.0]
                    {
                        if is_output(from) {
                            inter.add(t);
                        } else {
                            inter.remove(t);
                        }
                    }
                    false
                }
                // Not applicable (or failed): the node runs normally below.
                Ok(false) | Err(_) => true,
            });
            let parallel = todo.len() > 1 && width > 1 && level_work(graph, &todo, &values) >= PARALLEL_LEVEL_WORK;
            if parallel {
                let vals = &values;
                crate::runtime::install(|| results.par_extend(todo.par_iter().with_max_len(1).map(|&n| run(n, vals))));
            } else {
                results.extend(todo.iter().map(|&n| run(n, &values)));
            }
            for (n, r, nanos) in results.drain(..) {
                let outs = r?;
                stats.nodes_run += 1;
                if options.profile {
                    node_nanos.push((n, nanos));
                }
                for (v, t) in graph.node(n).outputs.iter().zip(outs) {
                    if options.track_memory {
                        live.add(&t);
                        if !is_output(*v) {
                            inter.add(&t);
                        }
                    }
                    values[v.0] = Some(t);
                }
            }
            if options.track_memory {
                stats.peak_bytes = stats.peak_bytes.max(live.bytes);
                stats.peak_intermediate_bytes = stats.peak_intermediate_bytes.max(inter.bytes);
            }
            for v in &plan.free_after[li] {
                if let Some(t) = values[v.0].take()
                    && options.track_memory
                {
                    live.remove(&t);
                    if !is_output(*v) {
                        inter.remove(&t);
                    }
                }
            }
        }
        if options.track_memory {
            stats.output_bytes = live.bytes.saturating_sub(inter.bytes);
        }
        if options.profile {
            stats.profile = Some(Profile::new(graph, &node_nanos));
        }
        let outs = fetch_ids
            .iter()
            .zip(fetches)
            .map(|(v, name)| {
                values[v.0].clone().ok_or_else(|| Error::Internal(format!("output `{name}` ({v}) was not computed")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((outs, stats))
    }

    /// Runs node `n` in place over its dying input when the plan allows and the input is
    /// exclusively held; the result takes the input's slot and then the output's.
    fn try_in_place(&self, n: NodeId, values: &mut [Option<Tensor>]) -> Result<bool> {
        let Some(v) = self.plan.in_place[n.0] else { return Ok(false) };
        let node = self.plan.graph.node(n);
        let NodeKind::Op { op, attrs } = &node.kind else { return Ok(false) };
        let Some(t) = values[v.0].take() else { return Ok(false) };
        match pointwise_in_place(op, attrs, &t) {
            Ok(true) => {
                values[node.outputs[0].0] = Some(t);
                Ok(true)
            }
            other => {
                values[v.0] = Some(t);
                other
            }
        }
    }

    /// Checks `feeds` and puts them in `values`; returns the sizes they bind the symbols to.
    fn bind_feeds(&self, feeds: &[(&str, &Tensor)], values: &mut [Option<Tensor>]) -> Result<Bindings> {
        let graph = &self.plan.graph;
        let mut bindings = Bindings::default();
        let mut seen: HashMap<&str, ()> = HashMap::new();
        for (name, t) in feeds {
            if seen.insert(name, ()).is_some() {
                return Err(Error::invalid("feeds", format!("`{name}` is fed twice")));
            }
            let v = *self.plan.feedable.get(*name).ok_or_else(|| {
                let names: Vec<&str> = graph.inputs().iter().map(|(n, _)| *n).collect();
                Error::NotFound(format!("feed `{name}` names no input or parameter of the graph (inputs: {names:?})"))
            })?;
            let ty = &graph.value(v).ty;
            if t.dtype() != ty.dtype {
                return Err(Error::InvalidDtype {
                    arg: "feeds",
                    msg: format!("`{name}` expects {ty}, given {}{:?}", t.dtype(), t.shape()),
                });
            }
            if t.device() != self.options.device {
                return Err(Error::invalid(
                    "feeds",
                    format!("`{name}` is on {}, the executor runs on {}", t.device(), self.options.device),
                ));
            }
            bindings.bind(name, ty, t.shape())?;
            values[v.0] = Some(t.detach());
        }
        Ok(bindings)
    }
}

/// Multiply-adds below which a request of a plan whose levels run side by side runs one
/// node at a time on the caller's thread instead. A batch-1 DCN-v2 request (about 0.9
/// million) took 0.07–0.09 ms one node at a time against 0.155–0.182 ms handed to the pool
/// (BENCHMARKS.md); batch 256 (about 240 million) was faster side by side.
const SMALL_REQUEST_WORK: usize = 1 << 22;

/// Elements a level must touch before its nodes are spread over the pool: handing a node to
/// another thread costs microseconds (more on a busy machine), which a batch-1 request's
/// tiny nodes never earn back.
const PARALLEL_LEVEL_WORK: usize = 1 << 15;

/// A cheap estimate of a level's work, in elements: what its nodes read, weights included.
/// A lookup counts the table rows its indices pick, not the whole tables: a batch-1 request's
/// 26 embedding lookups (or one `embedding_fields`) read 26 rows, which one thread does faster
/// than two can be handed them, while a batch of 256 picks enough rows to spread.
fn level_work(graph: &Graph, todo: &[NodeId], values: &[Option<Tensor>]) -> usize {
    let numel = |v: &ValueId| values[v.0].as_ref().map_or(0, Tensor::numel);
    // Elements in a row of a table.
    let row = |table: &ValueId| values[table.0].as_ref().map_or(0, |t| t.shape().get(1).copied().unwrap_or(1));
    todo.iter()
        .map(|&n| {
            let node = graph.node(n);
            match (&node.kind, node.inputs.as_slice()) {
                (NodeKind::Op { op, .. }, [table, idx, rest @ ..]) if is_lookup(op) => {
                    numel(idx) * (1 + row(table)) + rest.iter().map(numel).sum::<usize>()
                }
                (NodeKind::Op { op, .. }, [idx, tables @ ..]) if std::ptr::eq(*op, &fields::EMBEDDING_FIELDS) => {
                    numel(idx) * (1 + tables.first().map_or(0, row))
                }
                _ => node.inputs.iter().map(numel).sum(),
            }
        })
        .sum()
}

/// Ops whose first input is a table read only at the rows the second input picks.
fn is_lookup(op: &OpDef) -> bool {
    [&index::EMBEDDING, &index::EMBEDDING_BAG].iter().any(|l| std::ptr::eq(*l, op))
}

/// CPU executor requests running now, over all executors.
static CPU_REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// One CPU request, counted in [`CPU_REQUESTS`] while it lives.
struct CpuRequest {
    /// Whether no other CPU request was running when this one started.
    alone: bool,
}

impl CpuRequest {
    /// Counts a request on `device` (`None` off the CPU).
    fn enter(device: Device) -> Option<CpuRequest> {
        (device == Device::Cpu).then(|| CpuRequest { alone: CPU_REQUESTS.fetch_add(1, Ordering::AcqRel) == 0 })
    }
}

impl Drop for CpuRequest {
    fn drop(&mut self) {
        CPU_REQUESTS.fetch_sub(1, Ordering::AcqRel);
    }
}

thread_local! {
    /// The input list `run_node` hands to a kernel, kept between nodes so a request does not
    /// allocate one per node. (A nested run on this thread finds it taken and uses a fresh one.)
    static NODE_INPUTS: Cell<Vec<Tensor>> = const { Cell::new(Vec::new()) };
}

/// Runs one op node on the values computed so far.
fn run_node(plan: &Plan, n: NodeId, values: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let graph = &plan.graph;
    let node = graph.node(n);
    let mut inputs = NODE_INPUTS.take();
    inputs.clear();
    let mut result = Ok(());
    for v in &node.inputs {
        match &values[v.0] {
            Some(t) => inputs.push(t.clone()),
            None => {
                result = Err(at_node(&graph.describe(n), Error::Internal(format!("{v} read before it was computed"))));
                break;
            }
        }
    }
    let panels = if result.is_ok() { use_fixed_weight_layouts(plan, node, &mut inputs) } else { None };
    let outputs = result.and_then(|()| match &node.kind {
        NodeKind::Op { op, attrs } => match panels {
            Some(panels) => linear_with_panels(&inputs, panels).map(|t| vec![t]),
            None => dispatch::apply_owned(op, &inputs, attrs),
        }
        .map_err(|e| at_node(&graph.describe(n), e)),
        NodeKind::Fused { program, product: None } => run_fused_node(plan, n, program, &inputs),
        NodeKind::Fused { program, product: Some(p) } => run_epilogue_node(plan, n, p, program, &inputs, panels),
        _ => Err(Error::Internal(format!("{} is not an op", graph.describe(n)))),
    });
    // Drop the input references now (the memory plan counts on it), keep the list's buffer.
    inputs.clear();
    NODE_INPUTS.set(inputs);
    outputs
}

/// For a linear node whose weight the plan keeps in faster layouts, unless this run fed the
/// weight a replacement: hands the packed copy to a call that would pack the weight itself
/// (the same bits, without the copy), and returns the panels, which the product reads where
/// it splits by columns (see `linear_f`).
fn use_fixed_weight_layouts<'p>(plan: &'p Plan, node: &Node, inputs: &mut [Tensor]) -> Option<&'p WeightPanels> {
    let &w = node.inputs.get(1)?;
    let (packed, panels) = (&plan.packed[w.0], &plan.panels[w.0]);
    let fixed = plan.preset[w.0].as_ref()?;
    // Only linear nodes read a weight kept in these layouts: x and a 2-D weight.
    if (packed.is_none() && panels.is_none()) || !Arc::ptr_eq(inputs[1].storage(), fixed.storage()) {
        return None;
    }
    let (x, weight) = (&inputs[0], &inputs[1]);
    let rows = x.shape()[..x.ndim().saturating_sub(1)].iter().product();
    let (outf, inf) = (weight.shape()[0], weight.shape()[1]);
    if let Some(packed) = packed
        && reads_packed_faster(rows, outf, inf)
    {
        inputs[1] = packed.clone();
    }
    panels.as_ref()
}

/// Runs a fused node over the broadcast shape of its inputs (every op of the chain computes over it).
fn run_fused_node(plan: &Plan, n: NodeId, program: &FusedProgram, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let graph = &plan.graph;
    // The node's description is formatted only on failure: this runs on every request.
    let mut shape = crate::tensor::dims::Dims::new();
    for t in inputs {
        shape = broadcast_shapes("fused chain", &shape, t.shape()).map_err(|e| at_node(&graph.describe(n), e))?;
    }
    let result = match &plan.fused[n.0] {
        Some(prepared) => run_prepared(program, prepared, inputs, &shape),
        // Not valid at planning: run_fused reports why, naming the node.
        None => run_fused(program, inputs, &shape, graph.value(graph.node(n).outputs[0]).ty.dtype),
    };
    result.map_err(|e| at_node(&graph.describe(n), e))
}

/// Runs an epilogue node: its product, then its program over each finished block.
fn run_epilogue_node(
    plan: &Plan,
    n: NodeId,
    product: &Product,
    program: &FusedProgram,
    inputs: &[Tensor],
    panels: Option<&WeightPanels>,
) -> Result<Vec<Tensor>> {
    let graph = &plan.graph;
    let prepared;
    let prepared = match &plan.fused[n.0] {
        Some(p) => p,
        None => {
            // Not valid at planning: preparing again reports why, naming the node.
            prepared = prepare(program, graph.value(graph.node(n).outputs[0]).ty.dtype)
                .map_err(|e| at_node(&graph.describe(n), e))?;
            &prepared
        }
    };
    run_epilogue(product, program, prepared, inputs, panels)
        .map(|t| vec![t])
        .map_err(|e| at_node(&graph.describe(n), e))
}

/// Which nodes the fetched values depend on.
fn needed_nodes(graph: &Graph, fetches: &[ValueId]) -> Vec<bool> {
    let mut needed = vec![false; graph.nodes().len()];
    // Nodes are marked when pushed, so each is pushed once and the stack never regrows.
    let mut stack: Vec<NodeId> = Vec::with_capacity(needed.len());
    let mut visit = |n: NodeId, stack: &mut Vec<NodeId>| {
        if !std::mem::replace(&mut needed[n.0], true) {
            stack.push(n);
        }
    };
    for v in fetches {
        visit(graph.value(*v).node, &mut stack);
    }
    while let Some(n) = stack.pop() {
        for v in &graph.node(n).inputs {
            visit(graph.value(*v).node, &mut stack);
        }
    }
    needed
}

/// Bytes of live computed values, counting each storage once (views share storage).
#[derive(Default)]
struct LiveBytes {
    holders: HashMap<usize, (usize, usize)>,
    bytes: usize,
}

impl LiveBytes {
    fn add(&mut self, t: &Tensor) {
        let key = Arc::as_ptr(t.storage()) as usize;
        let e = self.holders.entry(key).or_insert((0, t.storage().len()));
        if e.0 == 0 {
            self.bytes += e.1;
        }
        e.0 += 1;
    }

    fn remove(&mut self, t: &Tensor) {
        let key = Arc::as_ptr(t.storage()) as usize;
        if let Some(e) = self.holders.get_mut(&key) {
            e.0 -= 1;
            if e.0 == 0 {
                self.bytes -= e.1;
                self.holders.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Dim, GraphBuilder};
    use crate::{DType, Device};

    #[test]
    fn a_lookup_level_counts_the_rows_it_reads_not_its_table() {
        let mut b = GraphBuilder::new();
        let ids = b.input("ids", DType::I64, &[Dim::sym("batch")]).unwrap();
        let table = Tensor::zeros(&[100_000, 16], DType::F32, Device::Cpu).unwrap();
        let table = b.param("table", &table, false).unwrap();
        let rows = b.op1("embedding", &[table, ids], &[]).unwrap();
        let scaled = b.op1("relu", &[table], &[]).unwrap();
        b.output("rows", rows).unwrap();
        b.output("scaled", scaled).unwrap();
        let graph = b.finish().unwrap();
        let work = |batch: usize, node: usize| {
            let mut values: Vec<Option<Tensor>> = vec![None; graph.num_values()];
            values[table.0] = Some(Tensor::zeros(&[100_000, 16], DType::F32, Device::Cpu).unwrap());
            values[ids.0] = Some(Tensor::from_slice(&vec![3i64; batch], &[batch]).unwrap());
            let n = graph.value(if node == 0 { rows } else { scaled }).node;
            level_work(&graph, &[n], &values)
        };
        assert_eq!(work(1, 0), 1 + 16, "one id and the one row it picks");
        assert_eq!(work(256, 0), 256 + 256 * 16, "a batch picks a row per id");
        assert_eq!(work(1, 1), 1_600_000, "other ops count the whole table");
    }

    #[test]
    fn a_batch_1_request_of_a_side_by_side_plan_is_small_and_a_batch_of_256_is_not() {
        use crate::nn::models::{CtrModelConfig, dcn_v2};
        let cfg = CtrModelConfig { vocab_sizes: vec![50; 26], ..CtrModelConfig::default() };
        let ex = Executor::new(&dcn_v2(&cfg).unwrap(), ExecOptions::default()).unwrap();
        assert!(ex.side_by_side);
        let request = |batch: usize| {
            let dense = Tensor::zeros(&[batch, cfg.num_dense], DType::F32, Device::Cpu).unwrap();
            let ids = Tensor::zeros(&[batch, 26], DType::I64, Device::Cpu).unwrap();
            (dense, ids)
        };
        let small = |feeds: &[(&str, &Tensor)]| {
            let mut values = ex.plan.preset.clone();
            ex.is_small_request(&ex.bind_feeds(feeds, &mut values).unwrap())
        };
        let (d1, i1) = request(1);
        assert!(small(&[("dense", &d1), ("ids", &i1)]));
        let (d256, i256) = request(256);
        assert!(!small(&[("dense", &d256), ("ids", &i256)]));
        // Unbound symbols count as huge: not small.
        assert!(!ex.is_small_request(&Bindings::default()));
        // Both sizes run, and give the same rows as one node at a time.
        let seq =
            Executor::new(&dcn_v2(&cfg).unwrap(), ExecOptions { inter_op_threads: 1, ..Default::default() }).unwrap();
        for (d, i) in [(&d1, &i1), (&d256, &i256)] {
            let label = Tensor::zeros(&[d.shape()[0]], DType::F32, Device::Cpu).unwrap();
            let feeds = [("dense", d), ("ids", i), ("label", &label)];
            let fetch = [ex.graph().outputs()[0].0.as_str()];
            let a = ex.run(&feeds, &fetch).unwrap()[0].to_vec::<f32>().unwrap();
            let b = seq.run(&feeds, &fetch).unwrap()[0].to_vec::<f32>().unwrap();
            assert_eq!(a, b);
        }
    }
}
