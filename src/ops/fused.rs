//! The fused elementwise kernel: a chain of pointwise ops over one shape in one pass over memory.
//!
//! A [`FusedProgram`] names its steps' operands as program inputs or earlier steps. The kernel
//! walks the output in chunks of a few thousand elements; for each chunk it runs every step's
//! [`Pointwise`] body over chunk-sized registers, so intermediates live in L1/L2 and only the
//! inputs are read from and the outputs written to memory. Each step runs the op's own
//! formula on the same type, so the outputs equal op-by-op eager execution bitwise.

use crate::backend::CpuBuffer;
use crate::backend::Storage;
use crate::backend::cpu::elementwise::host_slice;
use crate::backend::cpu::gemm::{Block, Then};
use crate::backend::cpu::prefetch::prefetch;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::ops::pointwise::Pointwise;
use crate::ops::util::{broadcast_shapes, prefix};
use crate::ops::{Attr, Attrs, InferCtx, Meta, OpDef};
use crate::runtime::{PARALLEL_THRESHOLD, install};
use crate::tensor::Tensor;
use crate::tensor::layout::Layout;
use rayon::prelude::*;
use std::fmt;
use std::sync::Arc;

/// Elements per chunk (each register's length). A chain keeps two or three registers live,
/// 8-16 KiB each for f32: L1-resident, and long enough that the per-chunk call of each
/// step's body costs nothing next to its vectorised loop.
const CHUNK: usize = 2048;

/// Chunks per parallel work item (32K elements): amortises rayon's scheduling and the
/// per-item register setup, while 16M elements still make 512 items to balance.
const CHUNKS_PER_ITEM: usize = 16;

/// Where a fused step reads an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reg {
    /// Program input `i` (broadcast to the program's shape).
    Input(usize),
    /// The result of step `j` (an earlier step).
    Step(usize),
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reg::Input(i) => write!(f, "in{i}"),
            Reg::Step(j) => write!(f, "s{j}"),
        }
    }
}

/// One op of a fused chain.
#[derive(Debug, Clone)]
pub struct FusedStep {
    /// The op; it must have a [`Pointwise`] body.
    pub op: &'static OpDef,
    /// The op's attributes (resolved for `op`, or given pairs resolved again on the run).
    pub attrs: Attrs,
    /// The operands, one per input of the op.
    pub args: Vec<Reg>,
}

/// A chain of pointwise ops over one output shape.
#[derive(Debug, Clone)]
pub struct FusedProgram {
    /// How many tensors the program reads.
    pub n_inputs: usize,
    /// The ops in execution order; a step reads only inputs and earlier steps.
    pub steps: Vec<FusedStep>,
    /// The registers returned, one tensor each.
    pub outputs: Vec<Reg>,
}

impl fmt::Display for FusedProgram {
    /// `mul(in0, in1) -> add(s0, in2) -> leaky_relu[negative_slope=0.1](s1) => s2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (s, step) in self.steps.iter().enumerate() {
            if s > 0 {
                f.write_str(" -> ")?;
            }
            f.write_str(step.op.name)?;
            if step.attrs.pairs().next().is_some() {
                write!(f, "[{}]", step.attrs)?;
            }
            let args: Vec<String> = step.args.iter().map(Reg::to_string).collect();
            write!(f, "({})", args.join(", "))?;
        }
        let outs: Vec<String> = self.outputs.iter().map(Reg::to_string).collect();
        write!(f, " => {}", outs.join(", "))
    }
}

/// The float types the kernel runs, with their [`Pointwise`] entry.
pub(crate) trait FusedFloat: Element + Default {
    fn body(pw: &Pointwise) -> fn(&mut [Self], &[&[Self]], &Attrs);
    fn body_in_place(pw: &Pointwise) -> fn(&mut [Self], &[Self], bool, &Attrs);
}

impl FusedFloat for f32 {
    fn body(pw: &Pointwise) -> fn(&mut [f32], &[&[f32]], &Attrs) {
        pw.f32
    }
    fn body_in_place(pw: &Pointwise) -> fn(&mut [f32], &[f32], bool, &Attrs) {
        pw.f32_in_place
    }
}

impl FusedFloat for f64 {
    fn body(pw: &Pointwise) -> fn(&mut [f64], &[&[f64]], &Attrs) {
        pw.f64
    }
    fn body_in_place(pw: &Pointwise) -> fn(&mut [f64], &[f64], bool, &Attrs) {
        pw.f64_in_place
    }
}

/// Runs `prog`: every input broadcasts to `shape`; one pass over memory, chunked so the
/// intermediate registers stay in L1/L2, parallel over chunks in the engine's pool. Returns
/// one contiguous tensor per program output, dtype `dtype` (F32 or F64; anything else is an
/// [`Error::Unsupported`]). An invalid program (a step without a pointwise body, wrong
/// arity, a register out of range or read before it is computed, bad attributes) or inputs
/// that do not match it (count, dtype, not broadcastable to `shape`) are errors.
pub fn run_fused(prog: &FusedProgram, inputs: &[Tensor], shape: &[usize], dtype: DType) -> Result<Vec<Tensor>> {
    run_prepared(prog, &prepare(prog, dtype)?, inputs, shape)
}

/// A program checked once for one dtype, with each step's attributes resolved: what
/// [`run_prepared`] needs, so that a fused node serving many requests is validated once.
#[derive(Debug)]
pub struct PreparedFused {
    dtype: DType,
    attrs: Vec<Attrs>,
    /// The program lowered to registers (the same for every run).
    plan: Plan,
    /// The program as a chain of in-place links, when it has that form (see [`chain_of`]).
    chain: Option<Vec<LinkShape>>,
}

/// Validates `prog` for `dtype` (every error [`run_fused`] names about the program itself).
pub fn prepare(prog: &FusedProgram, dtype: DType) -> Result<PreparedFused> {
    if !matches!(dtype, DType::F32 | DType::F64) {
        return Err(Error::Unsupported(format!("run_fused: {dtype} chains are not fused (f32 and f64 only)")));
    }
    let attrs = check_program(prog, dtype)?;
    Ok(PreparedFused { dtype, attrs, plan: make_plan(prog), chain: chain_of(prog) })
}

/// [`run_fused`] with the program already validated by [`prepare`]; only the inputs are
/// checked. `prepared` must come from this program (a step count that differs is an error).
pub fn run_prepared(
    prog: &FusedProgram,
    prepared: &PreparedFused,
    inputs: &[Tensor],
    shape: &[usize],
) -> Result<Vec<Tensor>> {
    if prepared.attrs.len() != prog.steps.len() {
        return Err(Error::invalid(
            "prepared",
            format!("run_fused: prepared for {} steps, the program has {}", prepared.attrs.len(), prog.steps.len()),
        ));
    }
    check_inputs(prog, inputs, shape, prepared.dtype)?;
    match prepared.dtype {
        DType::F32 => run::<f32>(prog, prepared, inputs, shape),
        DType::F64 => run::<f64>(prog, prepared, inputs, shape),
        _ => unreachable!("prepare admits f32 and f64 only"),
    }
}

/// Checks the inputs against the program: count, dtype, and broadcasting to `shape`.
fn check_inputs(prog: &FusedProgram, inputs: &[Tensor], shape: &[usize], dtype: DType) -> Result<()> {
    if inputs.len() != prog.n_inputs {
        return Err(Error::invalid(
            "inputs",
            format!("run_fused: the program reads {} inputs, given {}", prog.n_inputs, inputs.len()),
        ));
    }
    inputs.iter().enumerate().try_for_each(|(i, x)| check_input(i, x, shape, dtype))
}

/// Input `i` of a program run over `shape` in `dtype`: of that dtype, and broadcasting to
/// `shape` gives `shape` itself (an input may not add dimensions).
fn check_input(i: usize, x: &Tensor, shape: &[usize], dtype: DType) -> Result<()> {
    if x.dtype() != dtype {
        return Err(Error::InvalidDtype {
            arg: "inputs",
            msg: format!("run_fused: input {i} is {}, the program runs in {dtype}", x.dtype()),
        });
    }
    let fits = broadcast_shapes("run_fused", x.shape(), shape).is_ok_and(|joint| joint == shape);
    if !fits {
        return Err(Error::shape(
            "inputs",
            format!("run_fused: input {i} of shape {:?} does not broadcast to {shape:?}", x.shape()),
        ));
    }
    Ok(())
}

/// Validates the program's steps and outputs; returns each step's attributes resolved for its op.
fn check_program(prog: &FusedProgram, dtype: DType) -> Result<Vec<Attrs>> {
    // Pointwise inference does not depend on the shape: one element stands for any.
    let shape = &[1usize][..];
    let in_range = |r: Reg, steps_before: usize| match r {
        Reg::Input(i) => i < prog.n_inputs,
        Reg::Step(j) => j < steps_before,
    };
    let mut resolved = Vec::with_capacity(prog.steps.len());
    for (s, step) in prog.steps.iter().enumerate() {
        let op = step.op;
        let pw = op.pointwise.ok_or_else(|| {
            Error::invalid("program", format!("run_fused: step {s}: `{}` has no pointwise body (not fusable)", op.name))
        })?;
        if step.args.len() != pw.arity {
            return Err(Error::invalid(
                "program",
                format!("run_fused: step {s}: `{}` takes {} operands, given {}", op.name, pw.arity, step.args.len()),
            ));
        }
        if let Some(bad) = step.args.iter().find(|&&r| !in_range(r, s)) {
            return Err(Error::range(
                "program",
                format!(
                    "run_fused: step {s}: `{}` reads {bad}, which is not an input (0..{}) nor an earlier step",
                    op.name, prog.n_inputs
                ),
            ));
        }
        // Resolving again checks the attributes belong to this op and fills defaults; the op's
        // own inference then checks their values and the dtype, as an eager call would.
        // (The tag is formatted only on failure: fused nodes run on every request.)
        let tag = || format!("run_fused: step {s}");
        let pairs: Vec<(&str, Attr)> = step.attrs.pairs().map(|(n, v)| (n, v.clone())).collect();
        let attrs = Attrs::resolve(op.name, op.attrs, &pairs).map_err(|e| prefix(&tag(), e))?;
        let metas = vec![Meta::new(shape, dtype); pw.arity];
        let out =
            (op.infer)(&InferCtx { op: op.name, inputs: &metas, attrs: &attrs }).map_err(|e| prefix(&tag(), e))?;
        if out != [Meta::new(shape, dtype)] {
            return Err(Error::invalid(
                "program",
                format!("{}: `{}` does not map {dtype} elementwise", tag(), op.name),
            ));
        }
        resolved.push(attrs);
    }
    if prog.outputs.is_empty() {
        return Err(Error::invalid("program", "run_fused: the program has no outputs"));
    }
    if let Some(bad) = prog.outputs.iter().find(|&&r| !in_range(r, prog.steps.len())) {
        return Err(Error::range(
            "program",
            format!("run_fused: output {bad} is out of range ({} inputs, {} steps)", prog.n_inputs, prog.steps.len()),
        ));
    }
    Ok(resolved)
}

/// How an input is read, per chunk.
#[derive(Clone, Copy)]
enum Form<'a, T> {
    /// Contiguous with the full shape: chunks are slices of it (no copy).
    Full(&'a [T]),
    /// One element everywhere: a register filled once per worker.
    Scalar(T),
    /// A contiguous row of the trailing dimensions, repeated (a bias `[N]` against
    /// `[M, N]`): a register filled with the row's repeats once per worker when the chunk
    /// is a whole number of rows, else refilled for each chunk.
    Row(&'a [T]),
}

/// How `x` (broadcastable to `shape`, `n > 0` elements) is best read: returns the tensor to
/// read (itself, or a packed copy) and whether it is full, scalar or a row of `len` elements.
fn classify(x: &Tensor, shape: &[usize], n: usize) -> Result<(Tensor, Kind)> {
    let packed = |t: &Tensor| if t.is_contiguous() { Ok(t.clone()) } else { t.contiguous() };
    let numel = x.numel();
    if numel == 1 {
        return Ok((x.clone(), Kind::Scalar));
    }
    if numel == n {
        return Ok((packed(x)?, Kind::Full));
    }
    let r = shape.len();
    let pad = r - x.shape().len();
    let dim = |i: usize| if i < pad { 1 } else { x.shape()[i - pad] };
    // The shortest suffix of dimensions the input does not broadcast along.
    let mut k = r;
    while k > 0 && dim(k - 1) == shape[k - 1] {
        k -= 1;
    }
    if (0..k).all(|i| dim(i) == 1) {
        return Ok((packed(x)?, Kind::Row(shape[k..].iter().product())));
    }
    // General broadcasting (a column, or a middle axis): materialise it once.
    let full: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Ok((x.expand(&full)?.contiguous()?, Kind::Full))
}

/// How each classified input is read: its data, `n` elements when full.
fn forms_of<T: FusedFloat>(held: &[(Tensor, Kind)], n: usize) -> Result<Vec<Form<'_, T>>> {
    held.iter()
        .map(|(t, kind)| {
            let (data, off) = (host_slice::<T>(t)?, t.layout().offset());
            Ok(match *kind {
                Kind::Full => Form::Full(&data[off..off + n]),
                Kind::Scalar => Form::Scalar(data[off]),
                Kind::Row(len) => Form::Row(&data[off..off + len]),
            })
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    Full,
    Scalar,
    Row(usize),
}

/// Where a planned step finds a value.
#[derive(Clone, Copy, Debug)]
enum Loc {
    /// Input `i` in its form.
    In(usize),
    /// Scratch register `r`.
    Reg(usize),
    /// Output `k`'s chunk (a step that is an output writes there directly).
    Out(usize),
}

/// One step ready to run.
#[derive(Debug)]
struct Planned {
    pointwise: &'static Pointwise,
    /// The step's index in the program (where its resolved attributes are).
    step: usize,
    dst: Loc,
    args: Vec<Loc>,
}

/// The program lowered to registers: dead steps dropped, steps that are outputs writing into
/// the output, the rest into scratch registers reused once their last reader has run.
#[derive(Debug)]
struct Plan {
    steps: Vec<Planned>,
    /// Outputs that repeat a register already written elsewhere (an input, or a step that is
    /// also an earlier output): copied at the end of each chunk.
    copies: Vec<(usize, Loc)>,
    n_regs: usize,
}

fn make_plan(prog: &FusedProgram) -> Plan {
    let n = prog.steps.len();
    // Live steps: reachable backwards from the outputs.
    let mut live = vec![false; n];
    let mut stack: Vec<usize> =
        prog.outputs.iter().filter_map(|r| if let Reg::Step(j) = *r { Some(j) } else { None }).collect();
    while let Some(j) = stack.pop() {
        if !std::mem::replace(&mut live[j], true) {
            stack.extend(prog.steps[j].args.iter().filter_map(|r| if let Reg::Step(i) = *r { Some(i) } else { None }));
        }
    }
    let mut last_read = vec![0usize; n];
    for (s, step) in prog.steps.iter().enumerate().filter(|(s, _)| live[*s]) {
        for r in &step.args {
            if let Reg::Step(j) = *r {
                last_read[j] = s;
            }
        }
    }
    let mut loc: Vec<Option<Loc>> = vec![None; n];
    let mut copies = Vec::new();
    for (k, r) in prog.outputs.iter().enumerate() {
        match *r {
            Reg::Step(j) if loc[j].is_none() => loc[j] = Some(Loc::Out(k)),
            Reg::Step(j) => copies.push((k, loc[j].expect("set just above"))),
            Reg::Input(i) => copies.push((k, Loc::In(i))),
        }
    }
    let (mut free, mut n_regs) = (Vec::new(), 0);
    let mut steps = Vec::new();
    for (s, step) in prog.steps.iter().enumerate().filter(|(s, _)| live[*s]) {
        let args: Vec<Loc> = step
            .args
            .iter()
            .map(|r| match *r {
                Reg::Input(i) => Loc::In(i),
                Reg::Step(j) => loc[j].expect("earlier live steps have a place"),
            })
            .collect();
        // The destination is chosen before this step's operands are released: a body's
        // output may not alias its inputs.
        let dst = *loc[s].get_or_insert_with(|| {
            Loc::Reg(free.pop().unwrap_or_else(|| {
                n_regs += 1;
                n_regs - 1
            }))
        });
        let mut released: Vec<usize> = Vec::new();
        for r in &step.args {
            if let Reg::Step(j) = *r
                && last_read[j] == s
                && let Some(Loc::Reg(g)) = loc[j]
                && !released.contains(&g)
            {
                released.push(g);
            }
        }
        free.extend(released);
        steps.push(Planned { pointwise: step.op.pointwise.expect("checked"), step: s, dst, args });
    }
    Plan { steps, copies, n_regs }
}

/// One worker's registers: the scratch registers, and per input the register a scalar or
/// row input is read from (empty for full inputs).
struct Scratch<T> {
    regs: Vec<Vec<T>>,
    ins: Vec<Vec<T>>,
}

impl<T: FusedFloat> Scratch<T> {
    fn new(n_regs: usize, forms: &[Form<T>], chunk: usize) -> Scratch<T> {
        let ins = forms
            .iter()
            .map(|f| match *f {
                Form::Full(_) => Vec::new(),
                Form::Scalar(v) => vec![v; chunk],
                Form::Row(row) if chunk.is_multiple_of(row.len()) => {
                    // Chunks start at multiples of `chunk`, hence of the row: one fill serves all.
                    let mut buf = vec![T::default(); chunk];
                    buf.chunks_mut(row.len()).for_each(|c| c.copy_from_slice(row));
                    buf
                }
                Form::Row(_) => vec![T::default(); chunk],
            })
            .collect();
        Scratch { regs: vec![vec![T::default(); chunk]; n_regs], ins }
    }
}

/// `buf[j] = row[(start + j) % row.len()]`, segment by segment.
fn fill_row<T: Copy>(buf: &mut [T], row: &[T], start: usize) {
    let mut pos = start % row.len();
    let mut j = 0;
    while j < buf.len() {
        let take = (row.len() - pos).min(buf.len() - j);
        buf[j..j + take].copy_from_slice(&row[pos..pos + take]);
        j += take;
        pos = 0;
    }
}

/// The `m` elements of `loc` for the chunk at global index `g`, local offset `c0`.
#[allow(clippy::too_many_arguments)]
fn view<'a, T>(
    loc: Loc,
    forms: &'a [Form<T>],
    scratch: &'a Scratch<T>,
    outs: &'a [&mut [T]],
    g: usize,
    c0: usize,
    m: usize,
) -> &'a [T] {
    match loc {
        Loc::In(i) => match forms[i] {
            Form::Full(s) => &s[g..g + m],
            Form::Scalar(_) | Form::Row(_) => &scratch.ins[i][..m],
        },
        Loc::Reg(r) => &scratch.regs[r][..m],
        Loc::Out(k) => &outs[k][c0..c0 + m],
    }
}

/// Runs the plan over one work item: `outs` are the outputs' slices starting at global index `start`.
///
/// Memory is touched in bursts (a chunk of each full input in the first steps that read
/// it, a chunk of each output in the steps that write it), which the hardware prefetcher
/// does not run far enough ahead of: each burst would wait out DRAM latency with nothing
/// to overlap. So while a chunk computes, each step also prefetches a share of the next
/// chunk's full inputs and outputs, spreading the misses over the compute.
#[allow(clippy::too_many_arguments)]
fn run_item<T: FusedFloat>(
    plan: &Plan,
    attrs: &[Attrs],
    forms: &[Form<T>],
    scratch: &mut Scratch<T>,
    start: usize,
    outs: &mut [&mut [T]],
    chunk: usize,
) {
    let len = outs[0].len();
    let mut c0 = 0;
    while c0 < len {
        let m = chunk.min(len - c0);
        let g = start + c0;
        for (i, f) in forms.iter().enumerate() {
            if let Form::Row(row) = *f
                && !chunk.is_multiple_of(row.len())
            {
                fill_row(&mut scratch.ins[i][..m], row, g);
            }
        }
        let next = c0 + m..(c0 + m + chunk).min(len);
        let shares = plan.steps.len();
        for (j, st) in plan.steps.iter().enumerate() {
            let share = |r: std::ops::Range<usize>| {
                let n = r.len();
                r.start + j * n / shares..r.start + (j + 1) * n / shares
            };
            for f in forms {
                if let Form::Full(x) = *f {
                    prefetch(&x[share(start + next.start..start + next.end)]);
                }
            }
            for o in outs.iter() {
                prefetch(&o[share(next.clone())]);
            }
            let body = T::body(st.pointwise);
            // Move the destination out so the operands can be borrowed beside it (the plan
            // never makes a step read its own destination).
            let mut ops: [&[T]; 2] = [&[], &[]];
            match st.dst {
                Loc::Reg(r) => {
                    let mut d = std::mem::take(&mut scratch.regs[r]);
                    for (o, &a) in ops.iter_mut().zip(&st.args) {
                        *o = view(a, forms, scratch, outs, g, c0, m);
                    }
                    body(&mut d[..m], &ops[..st.args.len()], &attrs[st.step]);
                    scratch.regs[r] = d;
                }
                Loc::Out(k) => {
                    let d = std::mem::take(&mut outs[k]);
                    for (o, &a) in ops.iter_mut().zip(&st.args) {
                        *o = view(a, forms, scratch, outs, g, c0, m);
                    }
                    body(&mut d[c0..c0 + m], &ops[..st.args.len()], &attrs[st.step]);
                    outs[k] = d;
                }
                Loc::In(_) => unreachable!("steps never write inputs"),
            }
        }
        for &(k, loc) in &plan.copies {
            let d = std::mem::take(&mut outs[k]);
            d[c0..c0 + m].copy_from_slice(view(loc, forms, scratch, outs, g, c0, m));
            outs[k] = d;
        }
        c0 += m;
    }
}

fn run<T: FusedFloat>(
    prog: &FusedProgram,
    prepared: &PreparedFused,
    inputs: &[Tensor],
    shape: &[usize],
) -> Result<Vec<Tensor>> {
    let n: usize = shape.iter().product();
    let bufs = (0..prog.outputs.len()).map(|_| CpuBuffer::uninit(n * T::DTYPE.size())).collect::<Result<Vec<_>>>()?;
    let wrap = |bufs: Vec<CpuBuffer>| {
        bufs.into_iter()
            .map(|b| Tensor::from_storage(Arc::new(Storage::Cpu(b)), Layout::contiguous(shape), T::DTYPE))
            .collect::<Result<Vec<_>>>()
    };
    if n == 0 {
        return wrap(bufs);
    }
    // Packed copies made here (autograd off: this is a kernel, not a differentiable call).
    let held: Vec<(Tensor, Kind)> =
        crate::autograd::no_grad(|| inputs.iter().map(|x| classify(x, shape, n)).collect::<Result<_>>())?;
    let forms = forms_of::<T>(&held, n)?;
    // A chunk of whole rows when every row input has one length that fits: their registers
    // are then filled once per worker instead of once per chunk.
    let mut rows = forms.iter().filter_map(|f| if let Form::Row(r) = f { Some(r.len()) } else { None });
    let chunk = match rows.next() {
        Some(len) if len <= CHUNK && rows.all(|l| l == len) => CHUNK / len * len,
        _ => CHUNK,
    }
    // Registers no longer than the tensor: a batch-1 call must not allocate and zero whole
    // chunks (n is a multiple of every row length, so whole rows are kept).
    .min(n.max(1));
    let (plan, attrs) = (&prepared.plan, &prepared.attrs[..]);
    {
        // SAFETY: fresh buffers of n elements each, exclusively ours until wrapped below; the
        // plan writes every element of every output (each is a step's destination or a copy)
        // before anything reads it.
        let mut outs: Vec<&mut [T]> = bufs.iter().map(|b| unsafe { &mut b.typed_mut::<T>()[..n] }).collect();
        if n < PARALLEL_THRESHOLD {
            let mut scratch = Scratch::new(plan.n_regs, &forms, chunk);
            run_item(plan, attrs, &forms, &mut scratch, 0, &mut outs, chunk);
        } else {
            let item = chunk * CHUNKS_PER_ITEM;
            let mut parts: Vec<_> = outs.into_iter().map(|o| o.chunks_mut(item)).collect();
            let work: Vec<(usize, Vec<&mut [T]>)> = (0..n.div_ceil(item))
                .map(|b| (b * item, parts.iter_mut().filter_map(Iterator::next).collect()))
                .collect();
            let forms = &forms;
            install(|| {
                work.into_par_iter().for_each_init(
                    || Scratch::new(plan.n_regs, forms, chunk),
                    |scratch, (start, mut outs)| run_item(plan, attrs, forms, scratch, start, &mut outs, chunk),
                )
            });
        }
    }
    wrap(bufs)
}

/// Where an epilogue row finds operand `loc` (see [`run_row`]); `None` for the output.
fn row_operand<'a, T>(
    loc: Loc,
    product: &'a [T],
    extra: &[Form<'a, T>],
    scratch: &'a Scratch<T>,
    at: usize,
    w: usize,
) -> Option<&'a [T]> {
    match loc {
        Loc::In(0) => Some(product),
        Loc::In(i) => Some(match extra[i - 1] {
            Form::Full(d) => &d[at..at + w],
            Form::Scalar(_) | Form::Row(_) => &scratch.ins[i][..w],
        }),
        Loc::Reg(r) => Some(&scratch.regs[r][..w]),
        Loc::Out(_) => None,
    }
}

/// Runs the plan of a one-output program over one row segment of an epilogue block:
/// `product` is input 0, `extra[i]` is input `i + 1` (a full input read at `at`, rows and
/// scalars from their scratch registers), and the output is written into `seg`. No
/// allocation: this runs once per row of every block.
fn run_row<T: FusedFloat>(
    plan: &Plan,
    attrs: &[Attrs],
    extra: &[Form<'_, T>],
    scratch: &mut Scratch<T>,
    product: &[T],
    seg: &mut [T],
    at: usize,
) {
    let w = seg.len();
    for st in &plan.steps {
        let body = T::body(st.pointwise);
        let n = st.args.len();
        let mut ops: [&[T]; 2] = [&[], &[]];
        match st.dst {
            Loc::Reg(r) => {
                // Moved out so the operands can be borrowed beside it (never its own operand).
                let mut d = std::mem::take(&mut scratch.regs[r]);
                for (o, &a) in ops.iter_mut().zip(&st.args) {
                    *o = row_operand(a, product, extra, scratch, at, w).unwrap_or(&*seg);
                }
                body(&mut d[..w], &ops[..n], &attrs[st.step]);
                scratch.regs[r] = d;
            }
            Loc::Out(_) => {
                for (o, &a) in ops.iter_mut().zip(&st.args) {
                    *o =
                        row_operand(a, product, extra, scratch, at, w).expect("a step never reads its own destination");
                }
                body(seg, &ops[..n], &attrs[st.step]);
            }
            Loc::In(_) => unreachable!("steps never write inputs"),
        }
    }
    // The one output repeats an input or a register: copy it (constructions never make
    // this, but a program may say so).
    for &(_, loc) in &plan.copies {
        if let Some(src) = row_operand(loc, product, extra, scratch, at, w) {
            seg.copy_from_slice(src);
        }
    }
}

/// One link of an epilogue chain: step `step`'s body run in place over the running value
/// (the product, then each link's result), reading program input `other` beside it, if any.
#[derive(Debug, Clone, Copy)]
struct LinkShape {
    step: usize,
    other: Option<usize>,
    running_first: bool,
}

/// The program as a chain of in-place links, when it has that form: step 0 reads input 0
/// (the product), each later step reads the step before it, each once; any other operand
/// is another program input; the one output is the last step. Activations, activation
/// gradient masks, residual adds, scale-and-shift and the DCN cross update (`x0 * p + x`)
/// all have it. `None` for any other program.
fn chain_of(prog: &FusedProgram) -> Option<Vec<LinkShape>> {
    if prog.steps.is_empty() || prog.outputs[..] != [Reg::Step(prog.steps.len() - 1)] {
        return None;
    }
    let mut links = Vec::with_capacity(prog.steps.len());
    for (s, step) in prog.steps.iter().enumerate() {
        let running = if s == 0 { Reg::Input(0) } else { Reg::Step(s - 1) };
        let other_of = |r: Reg| match r {
            Reg::Input(i) if i > 0 => Some(i),
            _ => None,
        };
        let (other, running_first) = match step.args[..] {
            [r] if r == running => (None, true),
            [r, o] if r == running => (Some(other_of(o)?), true),
            [o, r] if r == running => (Some(other_of(o)?), false),
            _ => return None,
        };
        links.push(LinkShape { step: s, other, running_first });
    }
    Some(links)
}

/// Runs the chain `links` of `prog` over every row of `block`, each link in place over the
/// row segment; `extra[i - 1]` is program input `i` and `cols` the product's row length.
/// Scalar operands are spread over one block-wide buffer each.
fn run_chain<T: FusedFloat>(
    prog: &FusedProgram,
    prepared: &PreparedFused,
    links: &[LinkShape],
    extra: &[Form<'_, T>],
    block: &mut Block<'_, T>,
    cols: usize,
) {
    let (j0, j1) = block.cols();
    let other = |l: &LinkShape| l.other.map(|i| extra[i - 1]);
    let spread: Vec<Vec<T>> = if links.iter().any(|l| matches!(other(l), Some(Form::Scalar(_)))) {
        links.iter().map(|l| if let Some(Form::Scalar(v)) = other(l) { vec![v; j1 - j0] } else { Vec::new() }).collect()
    } else {
        Vec::new()
    };
    for r in 0..block.rows() {
        let seg = block.row(r);
        for (i, l) in links.iter().enumerate() {
            let operand: &[T] = match other(l) {
                None => &[],
                Some(Form::Full(d)) => &d[r * cols + j0..r * cols + j1],
                Some(Form::Row(row)) => &row[j0..j1],
                Some(Form::Scalar(_)) => &spread[i],
            };
            let body = T::body_in_place(prog.steps[l.step].op.pointwise.expect("checked by prepare"));
            body(seg, operand, l.running_first, &prepared.attrs[l.step]);
        }
    }
}

/// Runs `product` with `prog` as its epilogue: `product` computes a result of `shape` (rows
/// of its last dimension, row-major) and calls the [`Then`] it is given on each finished
/// block of columns; there the program runs over the block row by row, reading the product
/// as its input 0 and `inputs` as its inputs 1.., and writes its one output over the product.
/// Each step runs the op's own formula, so the result has the bits of the product followed by
/// the program (as [`run_fused`] would run it). Inputs are checked as [`run_fused`] checks
/// them (dtype, broadcasting to `shape`); the program must have one output.
pub(crate) fn with_epilogue<T: FusedFloat>(
    prog: &FusedProgram,
    prepared: &PreparedFused,
    inputs: &[Tensor],
    shape: &[usize],
    product: impl FnOnce(&Then<T>) -> Result<Tensor>,
) -> Result<Tensor> {
    if prepared.dtype != T::DTYPE || prepared.attrs.len() != prog.steps.len() {
        return Err(Error::Internal(format!(
            "epilogue: prepared for {} ({} steps)",
            prepared.dtype,
            prepared.attrs.len()
        )));
    }
    if prog.outputs.len() != 1 || prog.n_inputs != inputs.len() + 1 {
        return Err(Error::invalid(
            "program",
            format!("epilogue: a program over a product and {} inputs writes one output, given {prog}", inputs.len()),
        ));
    }
    // Input 0 is the product itself, of `shape` and `T` by construction.
    inputs.iter().enumerate().try_for_each(|(i, x)| check_input(i + 1, x, shape, T::DTYPE))?;
    let n: usize = shape.iter().product();
    let cols = shape.last().copied().unwrap_or(1);
    // Each extra input as the rows of the product see it: a row of `cols` values, one value,
    // or the full `[rows, cols]` (general broadcasts materialised once).
    let held: Vec<(Tensor, Kind)> = crate::autograd::no_grad(|| {
        inputs
            .iter()
            .map(|x| match classify(x, shape, n.max(1))? {
                (_, Kind::Row(len)) if len != cols => {
                    let full: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                    Ok((x.expand(&full)?.contiguous()?, Kind::Full))
                }
                other => Ok(other),
            })
            .collect::<Result<_>>()
    })?;
    let extra = forms_of::<T>(&held, n)?;
    let (plan, attrs) = (&prepared.plan, &prepared.attrs[..]);
    let then = |mut block: Block<'_, T>| {
        if let Some(links) = &prepared.chain {
            // The common case: each body in place over the row, no copy and no registers.
            return run_chain(prog, prepared, links, &extra, &mut block, cols);
        }
        let (j0, j1) = block.cols();
        let width = j1 - j0;
        if width == 0 {
            return;
        }
        // Rows and scalars are the same for every row of the block: their registers are
        // filled once (input 0, the product, and full inputs are read in place per row).
        let template: Vec<Form<'_, T>> = std::iter::once(Form::Full(&[][..]))
            .chain(extra.iter().map(|f| match *f {
                Form::Row(row) => Form::Row(&row[j0..j1]),
                other => other,
            }))
            .collect();
        let mut scratch = Scratch::new(plan.n_regs, &template, width);
        // The product's values, copied out so the program can write its output over them.
        let mut product = vec![T::default(); width];
        for r in 0..block.rows() {
            let seg = block.row(r);
            product.copy_from_slice(seg);
            run_row(plan, attrs, &extra, &mut scratch, &product, seg, r * cols + j0);
        }
    };
    product(&then)
}

/// Applies the one-input pointwise `op` to `t` in place, with the op's in-place body (the
/// same formula, each element read and then overwritten; no copy). Returns false, touching nothing, unless `t` is an exclusively held, contiguous
/// f32/f64 tensor and `op` has a one-input body; the memory planner then runs the op normally.
pub fn pointwise_in_place(op: &OpDef, attrs: &Attrs, t: &Tensor) -> Result<bool> {
    let Some(pw) = op.pointwise else { return Ok(false) };
    if pw.arity != 1 || !t.is_exclusive() || !t.is_contiguous() {
        return Ok(false);
    }
    match t.dtype() {
        DType::F32 => in_place::<f32>(pw, attrs, t),
        DType::F64 => in_place::<f64>(pw, attrs, t),
        _ => Ok(false),
    }
}

fn in_place<T: FusedFloat>(pw: &Pointwise, attrs: &Attrs, t: &Tensor) -> Result<bool> {
    let Some(buf) = t.storage().as_cpu() else { return Ok(false) };
    let (off, n) = (t.layout().offset(), t.numel());
    // SAFETY: `t` is the only handle to this pool-owned storage (checked by the caller via
    // `is_exclusive`), so nothing else reads or writes these elements meanwhile.
    let data = unsafe { &mut buf.typed_mut::<T>()[off..off + n] };
    let body = T::body_in_place(pw);
    if n < PARALLEL_THRESHOLD {
        body(data, &[], true, attrs);
    } else {
        install(|| data.par_chunks_mut(CHUNK * CHUNKS_PER_ITEM).for_each(|part| body(part, &[], true, attrs)));
    }
    Ok(true)
}
