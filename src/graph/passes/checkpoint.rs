//! Activation checkpointing as a graph rewrite: the backward pass reads recomputed copies of each segment's forward values, so the originals die at the segment's end.
//!
//! Input: a training graph, i.e. a forward graph extended by [`append_gradients`] (nodes
//! before `forward_nodes` are the forward pass; node `forward_nodes` is the gradient seed
//! that `append_gradients` adds first). The forward nodes that lead to the loss form the
//! *chain*; a **cut** after chain position p is valid when exactly one computed value
//! produced at or before p is read by a chain node after p (the *boundary*; parameters,
//! constants and inputs do not count: they stay alive anyway).
//!
//! Segments are the chain pieces between boundaries. For every segment but the last (the
//! last one's backward starts right after its forward, so recomputing it would save
//! nothing), the pass copies the forward nodes whose values the backward reads (and the
//! segment nodes those need) and points every backward read at the copies. The originals
//! then have only forward readers, and the executor's plan frees them at the segment's end.
//!
//! **Scheduling.** The executor runs a node as soon as its inputs exist (levels), so a copy
//! that reads only the segment's input boundary and parameters would run during the
//! forward pass and hold its values all the same. Every computed or fed input of the copied
//! nodes (the boundary before the segment; the graph's inputs for the first segment) is
//! therefore read through `after(input, trigger)` (an ordering edge, see
//! `crate::ops::control::AFTER`), where the trigger is the earliest-level gradient value
//! among the inputs of the backward nodes that read the segment: the gradient arriving at
//! the segment's output boundary. Segments are rewritten from the last to the first, with
//! levels recomputed after each, because recomputing a later segment moves the gradients of
//! the earlier ones. The `after` edges also keep common-subexpression elimination from
//! merging the copies back into the originals. Parameters and constants are read directly
//! (they exist all along; an alias of a weight would also count as a computed value in the
//! executor's memory tracking); a copied node reading only those would be merged back by
//! CSE, which is harmless: it holds weight-derived values, not activations.
//!
//! **Random ops.** `dropout` draws its mask from its `seed` attribute and the element
//! index, so a copy with the same attributes drops exactly the same elements; any other
//! impure op inside a recomputed segment is an error naming it.
//!
//! Choosing segments ([`Checkpointing`]): explicit boundaries; ⌈√L⌉ segments of L layers
//! (a layer is a chain node reading a trainable parameter); or Chen et al.'s greedy rule,
//! which closes a segment at the first valid cut after the bytes saved for backward reach a
//! budget.

use crate::error::{Error, Result};
use crate::graph::autodiff::{ParamGrad, append_gradients};
use crate::graph::dim::Dim;
use crate::graph::ir::{Graph, NodeId, NodeKind, ValueId};
use crate::ops::control::AFTER;
use crate::ops::{Attrs, OpDef};
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// How a training graph is cut into recomputed segments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Checkpointing {
    /// No recomputation: every activation is kept for the backward pass.
    #[default]
    None,
    /// ⌈√L⌉ segments of the L layers (chain nodes reading a trainable parameter), each
    /// boundary at the last valid cut before the first layer of the next segment.
    Sqrt,
    /// Chen's greedy rule: close a segment at the first valid cut after the bytes the
    /// backward reads from it reach `bytes`. A symbolic dimension (the batch) counts as
    /// `symbol_size`.
    Budget {
        /// Bytes saved for backward per segment.
        bytes: u64,
        /// Size assumed for every symbolic dimension.
        symbol_size: u64,
    },
    /// Segment boundaries: graph output names or value ids written `%N`. Each must be a
    /// valid cut of the forward chain (no other value computed before it is read after it).
    Boundaries(Vec<String>),
}

/// What [`checkpoint`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointReport {
    /// Layers found in the chain (chain nodes reading a trainable parameter).
    pub layers: usize,
    /// The boundary values chosen, in chain order (ids of the input training graph).
    pub boundaries: Vec<ValueId>,
    /// Segments (boundaries + 1; 1 when nothing is checkpointed).
    pub segments: usize,
    /// Forward nodes copied for recomputation.
    pub recomputed_nodes: usize,
}

/// Each trainable parameter's name and where its gradient appears (as [`append_gradients`] returns them).
pub type ParamGrads = Vec<(String, ParamGrad)>;

/// [`append_gradients`] followed by [`checkpoint`]: the training graph of `graph` with the
/// activations of `how`'s segments recomputed in the backward pass.
pub fn append_gradients_checkpointed(
    graph: &Graph,
    loss: &str,
    wrt: Option<&[&str]>,
    how: &Checkpointing,
) -> Result<(Graph, ParamGrads, CheckpointReport)> {
    let (train, grads) = append_gradients(graph, loss, wrt)?;
    let (train, report) = checkpoint(&train, graph.nodes().len(), loss, how)?;
    Ok((train, grads, report))
}

/// Rewrites the training graph `train` (a forward graph of `forward_nodes` nodes extended by
/// [`append_gradients`], whose scalar output is `loss`) so that the backward pass reads
/// recomputed copies of the segments' forward values. See the module documentation.
pub fn checkpoint(
    train: &Graph,
    forward_nodes: usize,
    loss: &str,
    how: &Checkpointing,
) -> Result<(Graph, CheckpointReport)> {
    let loss_v = train.output(loss)?;
    let seed_ok = train.nodes.get(forward_nodes).is_some_and(|n| matches!(n.kind, NodeKind::Const { .. }));
    if !seed_ok || train.value(loss_v).node.0 >= forward_nodes {
        return Err(Error::invalid(
            "forward_nodes",
            format!(
                "{forward_nodes} is not the forward graph's node count: the node there must be the gradient seed \
                 that append_gradients adds first, after the loss"
            ),
        ));
    }
    let chain = Chain::new(train, forward_nodes, loss_v);
    let mut report = CheckpointReport { layers: chain.layers.len(), segments: 1, ..Default::default() };
    let cuts: Vec<usize> = match how {
        Checkpointing::None => return Ok((train.clone(), report)),
        Checkpointing::Sqrt => chain.sqrt_cuts(),
        Checkpointing::Budget { bytes, symbol_size } => chain.budget_cuts(train, *bytes, *symbol_size)?,
        Checkpointing::Boundaries(names) => chain.named_cuts(train, names)?,
    };
    report.boundaries = cuts.iter().map(|&p| chain.cut_value(train, p).expect("cuts are valid")).collect();
    report.segments = cuts.len() + 1;
    let mut rw = Recompute { g: train.clone(), forward_nodes, seed: NodeId(forward_nodes), gates: 0 };
    let mut skipped = 0;
    // Later segments first: their recomputation shifts the gradients of earlier ones.
    for j in (0..cuts.len()).rev() {
        let start = if j == 0 { 0 } else { cuts[j - 1] + 1 };
        let boundary = report.boundaries[j];
        match rw.segment(&chain, start..=cuts[j], boundary)? {
            Some(n) => report.recomputed_nodes += n,
            None => skipped += 1,
        }
    }
    let mut g = reorder(&rw.g)?;
    let names: Vec<String> = report.boundaries.iter().map(|v| train.describe(train.value(*v).node)).collect();
    g.stats.push(format!(
        "checkpoint: {} segments of {} layers, boundaries after [{}], recomputed {} nodes behind {} ordering edges{}",
        report.segments,
        report.layers,
        names.join(", "),
        report.recomputed_nodes,
        rw.gates,
        if skipped > 0 { format!(", {skipped} segments had nothing to recompute") } else { String::new() }
    ));
    Ok((g, report))
}

/// The forward nodes on the way to the loss, in topological order, and who reads what.
struct Chain {
    /// Node indices in order; a node's place here is its *position*.
    nodes: Vec<usize>,
    /// Position of each node (`None` off the chain).
    pos: Vec<Option<usize>>,
    /// Per value: the last position of a chain node reading it.
    last_read: Vec<Option<usize>>,
    /// Per value: read by a backward node.
    backward_read: Vec<bool>,
    /// Per position: the node's outputs.
    out_values: Vec<Vec<ValueId>>,
    /// Positions of layers (chain nodes reading a trainable parameter).
    layers: Vec<usize>,
    /// Per position p: a value produced before p and read after p, with that reader's
    /// position (what makes a cut after p invalid), if any.
    crossing: Vec<Option<(ValueId, usize)>>,
}

impl Chain {
    fn new(g: &Graph, forward_nodes: usize, loss: ValueId) -> Chain {
        let mut on = vec![false; forward_nodes];
        let mut stack = vec![g.value(loss).node.0];
        while let Some(n) = stack.pop() {
            if n >= forward_nodes || std::mem::replace(&mut on[n], true) {
                continue;
            }
            stack.extend(g.nodes[n].inputs.iter().map(|v| g.value(*v).node.0));
        }
        let is_op = |n: usize| matches!(g.nodes[n].kind, NodeKind::Op { .. } | NodeKind::Fused { .. });
        let nodes: Vec<usize> = (0..forward_nodes).filter(|&n| on[n] && is_op(n)).collect();
        let mut pos = vec![None; g.nodes.len()];
        for (p, &n) in nodes.iter().enumerate() {
            pos[n] = Some(p);
        }
        let mut last_read = vec![None; g.num_values()];
        let mut layers = Vec::new();
        for (p, &n) in nodes.iter().enumerate() {
            for v in &g.nodes[n].inputs {
                last_read[v.0] = Some(p);
            }
            let reads_param = g.nodes[n]
                .inputs
                .iter()
                .any(|v| matches!(g.node(g.value(*v).node).kind, NodeKind::Param { trainable: true, .. }));
            if reads_param {
                layers.push(p);
            }
        }
        let mut backward_read = vec![false; g.num_values()];
        for node in &g.nodes[forward_nodes..] {
            for v in &node.inputs {
                backward_read[v.0] = true;
            }
        }
        // Running maximum of last readers over the values produced so far.
        let mut crossing = Vec::with_capacity(nodes.len());
        let mut worst: Option<(ValueId, usize)> = None;
        for (p, &n) in nodes.iter().enumerate() {
            crossing.push(worst.filter(|(_, r)| *r > p));
            for v in &g.nodes[n].outputs {
                if let Some(r) = last_read[v.0]
                    && worst.is_none_or(|(_, w)| r > w)
                {
                    worst = Some((*v, r));
                }
            }
        }
        let out_values = nodes.iter().map(|&n| g.nodes[n].outputs.clone()).collect();
        Chain { nodes, pos, last_read, backward_read, out_values, layers, crossing }
    }

    /// The boundary value of a cut after position `p`, or why there is none.
    fn cut(&self, g: &Graph, p: usize) -> std::result::Result<ValueId, String> {
        if let Some((u, r)) = self.crossing[p] {
            return Err(format!(
                "{u} (from {}) is computed before it and read after it by {}",
                g.describe(g.value(u).node),
                g.describe(NodeId(self.nodes[r]))
            ));
        }
        let later: Vec<ValueId> =
            self.out_values[p].iter().copied().filter(|v| self.last_read[v.0].is_some_and(|r| r > p)).collect();
        match later.as_slice() {
            [v] => Ok(*v),
            [] => Err("nothing after it reads it: it ends the chain".into()),
            many => Err(format!("{} outputs of its node are read after it", many.len())),
        }
    }

    fn cut_value(&self, g: &Graph, p: usize) -> Option<ValueId> {
        self.cut(g, p).ok()
    }

    /// Chen's greedy rule over the bytes each position's values hold for the backward pass.
    fn budget_cuts(&self, g: &Graph, bytes: u64, symbol_size: u64) -> Result<Vec<usize>> {
        if bytes == 0 || symbol_size == 0 {
            return Err(Error::invalid(
                "checkpointing",
                format!("a checkpoint budget needs bytes > 0 and symbol_size > 0, given {bytes} and {symbol_size}"),
            ));
        }
        let mut cuts = Vec::new();
        let mut acc = 0u64;
        // The last position ends the chain; a cut there would leave an empty last segment.
        for p in 0..self.nodes.len().saturating_sub(1) {
            for v in &self.out_values[p] {
                if self.backward_read[v.0] {
                    let ty = &g.value(*v).ty;
                    let n: u64 =
                        ty.dims.iter().map(|d| if let Dim::Fixed(n) = d { *n as u64 } else { symbol_size }).product();
                    acc = acc.saturating_add(n.saturating_mul(ty.dtype.size() as u64));
                }
            }
            if acc >= bytes && self.cut_ok(p) {
                cuts.push(p);
                acc = 0;
            }
        }
        Ok(cuts)
    }

    /// The positions of explicitly named boundaries, checked to be valid cuts.
    fn named_cuts(&self, g: &Graph, names: &[String]) -> Result<Vec<usize>> {
        let mut cuts = BTreeSet::new();
        for name in names {
            let v = match g.output(name) {
                Ok(v) => v,
                Err(_) => name
                    .strip_prefix('%')
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| n < g.num_values())
                    .map(ValueId)
                    .ok_or_else(|| {
                        Error::invalid(
                            "checkpointing",
                            format!("checkpoint boundary `{name}` names no output of the graph and no value (`%N`)"),
                        )
                    })?,
            };
            let node = g.value(v).node;
            let Some(p) = self.pos[node.0] else {
                return Err(Error::invalid(
                    "checkpointing",
                    format!(
                        "checkpoint boundary `{name}` ({v}, from {}) is not computed by the forward pass on the way to                          the loss",
                        g.describe(node)
                    ),
                ));
            };
            match self.cut(g, p) {
                Ok(b) if b == v => {}
                Ok(_) => {
                    return Err(Error::invalid(
                        "checkpointing",
                        format!(
                            "checkpoint boundary `{name}` ({v}) is not a valid cut: another output of its node is read after it"
                        ),
                    ));
                }
                Err(why) => {
                    return Err(Error::invalid(
                        "checkpointing",
                        format!(
                            "checkpoint boundary `{name}` ({v}, from {}) is not a valid cut: {why}",
                            g.describe(node)
                        ),
                    ));
                }
            }
            cuts.insert(p);
        }
        Ok(cuts.into_iter().collect())
    }

    /// ⌈√L⌉ segments: before the first layer of each later segment, the last valid cut.
    fn sqrt_cuts(&self) -> Vec<usize> {
        let l = self.layers.len();
        let k = (l as f64).sqrt().ceil() as usize;
        let mut cuts: Vec<usize> = Vec::new();
        for i in 1..k {
            let first_layer = self.layers[i * l / k];
            let lo = cuts.last().map_or(0, |c| c + 1);
            if let Some(p) = (lo..first_layer).rev().find(|&p| self.cut_ok(p)) {
                cuts.push(p);
            }
        }
        cuts
    }

    /// `cut` without the message.
    fn cut_ok(&self, p: usize) -> bool {
        self.crossing[p].is_none() && self.later_outputs(p) == 1
    }

    fn later_outputs(&self, p: usize) -> usize {
        self.out_values[p].iter().filter(|v| self.last_read[v.0].is_some_and(|r| r > p)).count()
    }
}

/// The working training graph while segments are rewritten (node order is restored at the end).
struct Recompute {
    g: Graph,
    forward_nodes: usize,
    seed: NodeId,
    gates: usize,
}

impl Recompute {
    /// Rewrites the segment at chain positions `span` ending in `boundary`; returns the
    /// nodes copied, or `None` when the backward reads nothing of it (or no gradient
    /// reaches it to wait for).
    fn segment(
        &mut self,
        chain: &Chain,
        span: std::ops::RangeInclusive<usize>,
        boundary: ValueId,
    ) -> Result<Option<usize>> {
        let in_seg = |n: usize| chain.pos[n].is_some_and(|p| span.contains(&p));
        // Values the backward reads: these get copies.
        let wanted: Vec<ValueId> = span
            .clone()
            .flat_map(|p| chain.out_values[p].iter().copied())
            .filter(|v| *v != boundary && chain.backward_read[v.0])
            .collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        // The segment nodes those values need.
        let mut copy = BTreeSet::new();
        let mut stack: Vec<usize> = wanted.iter().map(|v| self.g.value(*v).node.0).collect();
        while let Some(n) = stack.pop() {
            if in_seg(n) && copy.insert(n) {
                stack.extend(self.g.nodes[n].inputs.iter().map(|v| self.g.value(*v).node.0));
            }
        }
        for &n in &copy {
            if let NodeKind::Op { op, .. } = &self.g.nodes[n].kind
                && !recomputable(op)
            {
                return Err(Error::Unsupported(format!(
                    "activation checkpointing cannot recompute {}: `{}` is not pure, so a second run could differ",
                    self.g.describe(NodeId(n)),
                    op.name
                )));
            }
        }
        // Backward readers of those values, and the gradient they wait for.
        let is_wanted: std::collections::HashSet<ValueId> = wanted.iter().copied().collect();
        let readers: Vec<usize> = (self.forward_nodes..self.g.nodes.len())
            .filter(|&n| self.g.nodes[n].inputs.iter().any(|v| is_wanted.contains(v)))
            .collect();
        let (level, from_seed) = self.levels();
        let trigger = readers
            .iter()
            .flat_map(|&n| self.g.nodes[n].inputs.iter().copied())
            .filter(|v| from_seed[self.g.value(*v).node.0])
            .min_by_key(|v| (level[self.g.value(*v).node.0], *v));
        let Some(trigger) = trigger else { return Ok(None) };
        // Copies, reading the outside world through `after(·, trigger)`.
        let mut map: HashMap<ValueId, ValueId> = HashMap::new();
        for &n in &copy {
            let node = self.g.nodes[n].clone();
            let mut inputs = Vec::with_capacity(node.inputs.len());
            for v in &node.inputs {
                let fixed =
                    matches!(self.g.node(self.g.value(*v).node).kind, NodeKind::Param { .. } | NodeKind::Const { .. });
                let nv = match map.get(v) {
                    Some(nv) => *nv,
                    // Weights and constants are there all along: no need to wait for them.
                    None if fixed => *v,
                    None => {
                        let ty = self.g.value(*v).ty.clone();
                        let gate = self.g.push(
                            NodeKind::Op { op: &AFTER, attrs: Attrs::none() },
                            vec![*v, trigger],
                            vec![ty],
                        )?;
                        self.gates += 1;
                        let gv = self.g.nodes[gate.0].outputs[0];
                        map.insert(*v, gv);
                        gv
                    }
                };
                inputs.push(nv);
            }
            let types = node.outputs.iter().map(|v| self.g.value(*v).ty.clone()).collect();
            let id = self.g.push(node.kind.clone(), inputs, types)?;
            for (o, c) in node.outputs.iter().zip(self.g.nodes[id.0].outputs.clone()) {
                map.insert(*o, c);
            }
        }
        for &r in &readers {
            for v in self.g.nodes[r].inputs.iter_mut() {
                if is_wanted.contains(v) {
                    *v = map[v];
                }
            }
        }
        Ok(Some(copy.len()))
    }

    /// Each node's level as the executor's plan computes it (sources 0, an op one past its
    /// latest input), and whether it depends on the gradient seed.
    fn levels(&self) -> (Vec<usize>, Vec<bool>) {
        let g = &self.g;
        let mut level = vec![0usize; g.nodes.len()];
        let mut from_seed = vec![false; g.nodes.len()];
        for n in topo_order(g) {
            let node = &g.nodes[n];
            let producers = node.inputs.iter().map(|v| g.value(*v).node.0);
            if matches!(node.kind, NodeKind::Op { .. } | NodeKind::Fused { .. }) {
                level[n] = producers.clone().map(|p| level[p]).max().unwrap_or(0) + 1;
            }
            from_seed[n] = n == self.seed.0 || producers.into_iter().any(|p| from_seed[p]);
        }
        (level, from_seed)
    }
}

/// A topological order of `g`'s nodes (smallest index first among the ready ones), for a
/// graph whose rewritten readers may precede the copies they read.
fn topo_order(g: &Graph) -> Vec<usize> {
    let n = g.nodes.len();
    let mut waiting = vec![0usize; n];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in g.nodes.iter().enumerate() {
        for v in &node.inputs {
            waiting[i] += 1;
            readers[g.value(*v).node.0].push(i);
        }
    }
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(std::cmp::Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(std::cmp::Reverse(r));
            }
        }
    }
    order
}

/// Rebuilds `g` with its nodes in topological order (the IR's invariant).
fn reorder(g: &Graph) -> Result<Graph> {
    let order = topo_order(g);
    if order.len() != g.nodes.len() {
        return Err(Error::Internal("checkpoint rewrite made a cycle".into()));
    }
    let mut out = Graph::default();
    let mut map: Vec<Option<ValueId>> = vec![None; g.num_values()];
    let get =
        |map: &[Option<ValueId>], v: ValueId| map[v.0].ok_or_else(|| Error::Internal(format!("checkpoint: {v} lost")));
    for n in order {
        let node = &g.nodes[n];
        let inputs = node.inputs.iter().map(|v| get(&map, *v)).collect::<Result<Vec<_>>>()?;
        let types = node.outputs.iter().map(|v| g.value(*v).ty.clone()).collect();
        let id = out.push(node.kind.clone(), inputs, types)?;
        for (o, nv) in node.outputs.iter().zip(out.nodes[id.0].outputs.clone()) {
            map[o.0] = Some(nv);
        }
    }
    for (name, v) in &g.outputs {
        out.push_output(name, get(&map, *v)?)?;
    }
    out.stats = g.stats.clone();
    Ok(out)
}

/// Whether `op` may appear in a recomputed segment: pure ops, and dropout, whose mask is a
/// function of its `seed` attribute (so the copy drops the same elements).
fn recomputable(op: &OpDef) -> bool {
    op.pure || op.name == "dropout"
}
