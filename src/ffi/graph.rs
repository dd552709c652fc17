//! Static graphs through the C ABI: the graph builder, the per-thread trace scope, dumps and graph autodiff.
//!
//! Thread safety: a `DsGraph` is immutable, so any number of threads may read it at once
//! (dump it, count its ops, differentiate it, compile executors from it). A
//! `DsGraphBuilder` is driven by one thread at a time. The trace scope belongs to the
//! calling thread and records only the ops that thread calls.

use super::guard::{cstr, guard, out, slice, slice_mut, write_text};
use super::handles::{Handle, free, get, register};
use super::library::DsDtype;
use super::ops::attr_pairs;
use super::status::DsStatus;
use super::tensor::{DsTensor, tensor_ref};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::infer::infer_types;
use crate::graph::{Dim, Graph, GraphBuilder, Tracer, ValueId, ValueType, append_gradients};
use crate::ops::{Attr, Attrs, dispatch, find_op};
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

/// The id of a value in a graph under construction, as `ds_graph_builder_*` return them.
pub type DsValueId = u64;

/// A graph under construction. Create with `ds_graph_builder_new`, free with
/// `ds_graph_builder_free`.
pub struct DsGraphBuilder {
    // A mutex although the contract is one thread at a time: misuse then gives wrong
    // graphs, never memory errors.
    pub(crate) builder: Mutex<GraphBuilder>,
}

impl Handle for DsGraphBuilder {
    const KIND: &'static str = "DsGraphBuilder";
}

/// A finished, immutable graph. Free with `ds_graph_free`; executors made from it do not
/// need it afterwards.
pub struct DsGraph {
    graph: Graph,
}

impl Handle for DsGraph {
    const KIND: &'static str = "DsGraph";
}

/// The graph behind a handle.
///
/// # Safety
/// As [`get`].
pub unsafe fn graph_ref<'a>(p: *const DsGraph, arg: &'static str) -> Result<&'a Graph> {
    unsafe { get(p, arg) }.map(|h| &h.graph)
}

/// Registers `graph` as a new handle.
pub fn new_graph_handle(graph: Graph) -> *mut DsGraph {
    register(DsGraph { graph })
}

/// Clears `*out_graph`, runs `make` and stores the new handle there.
unsafe fn create_graph(out_graph: *mut *mut DsGraph, make: impl FnOnce() -> Result<Graph>) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_graph, "out_graph")? };
        *o = std::ptr::null_mut();
        *o = new_graph_handle(make()?);
        Ok(())
    })
}

/// Runs `f` on the builder behind a handle and writes its value id to `*out_value`.
unsafe fn with_builder(
    builder: *mut DsGraphBuilder,
    out_value: *mut DsValueId,
    f: impl FnOnce(&mut GraphBuilder) -> Result<ValueId>,
) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_value, "out_value")? };
        let b = unsafe { get(builder, "builder")? };
        let v = f(&mut b.builder.lock().unwrap_or_else(|p| p.into_inner()))?;
        *o = v.0 as DsValueId;
        Ok(())
    })
}

fn value_id(v: DsValueId, arg: &'static str) -> Result<ValueId> {
    usize::try_from(v).map(ValueId).map_err(|_| Error::invalid(arg, format!("value id {v} is out of range")))
}

/// Dimensions from C: `dims[i] >= 0` is a fixed size; `-1` is symbolic, named by
/// `sym_names[i]`.
unsafe fn dims_from_c(dims: *const i64, ndim: usize, sym_names: *const *const c_char) -> Result<Vec<Dim>> {
    let dims = unsafe { slice(dims, ndim, "dims")? };
    let names = if sym_names.is_null() { None } else { Some(unsafe { slice(sym_names, ndim, "sym_names")? }) };
    dims.iter()
        .enumerate()
        .map(|(i, &d)| match d {
            -1 => {
                let p = names.map(|n| n[i]).ok_or_else(|| {
                    Error::invalid("sym_names", format!("dims[{i}] is -1 (symbolic) but sym_names is NULL"))
                })?;
                if p.is_null() {
                    return Err(Error::invalid(
                        "sym_names",
                        format!("dims[{i}] is -1 (symbolic) but sym_names[{i}] is NULL"),
                    ));
                }
                Ok(Dim::sym(unsafe { cstr(p, "sym_names")? }))
            }
            d if d >= 0 => usize::try_from(d)
                .map(Dim::Fixed)
                .map_err(|_| Error::overflow("dims", format!("dims[{i}] = {d} does not fit in memory"))),
            d => {
                Err(Error::invalid("dims", format!("dims[{i}] = {d}; sizes are >= 0, or -1 for a symbolic dimension")))
            }
        })
        .collect()
}

/// Creates an empty graph builder.
///
/// Thread safety: may be called from any thread; the new builder is used by one thread at
/// a time (it may move between threads).
///
/// # Safety
/// `out_builder` must be valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_builder_new(out_builder: *mut *mut DsGraphBuilder) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_builder, "out_builder")? };
        *o = register(DsGraphBuilder { builder: Mutex::new(GraphBuilder::new()) });
        Ok(())
    })
}

/// Frees a builder; NULL is a no-op. Graphs it finished stay valid.
///
/// Thread safety: no other thread may be using `builder`.
///
/// # Safety
/// `builder` must be NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_graph_builder_free(builder: *mut DsGraphBuilder) -> DsStatus {
    guard(|| unsafe { free(builder, "builder") })
}

/// Adds an input fed at run time, named `name` (unique among inputs and parameters), of
/// `dtype` with `ndim` dimensions. `dims[i] >= 0` is a fixed size; `dims[i] == -1` is a
/// symbolic dimension named `sym_names[i]` (e.g. "batch"): it takes its size from the feed
/// at each run, and every dimension with that name must have the same size in one run.
/// `sym_names` has `ndim` entries (entries at fixed dimensions are ignored) and may be
/// NULL when no dimension is symbolic. `dims` may be NULL when `ndim` is 0 (a scalar).
/// The new value's id goes to `*out_value`.
///
/// Thread safety: one thread at a time per builder.
///
/// # Safety
/// `name` NUL-terminated; `dims` valid for `ndim` reads; `sym_names` NULL or valid for
/// `ndim` reads of NULL or NUL-terminated strings; `out_value` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_builder_input(
    builder: *mut DsGraphBuilder,
    name: *const c_char,
    dtype: DsDtype,
    dims: *const i64,
    ndim: usize,
    sym_names: *const *const c_char,
    out_value: *mut DsValueId,
) -> DsStatus {
    unsafe {
        with_builder(builder, out_value, |b| {
            let name = cstr(name, "name")?;
            let dtype = DType::from_code(dtype, "dtype")?;
            b.input(name, dtype, &dims_from_c(dims, ndim, sym_names)?)
        })
    }
}

/// Adds a parameter named `name` (unique among inputs and parameters) holding the value
/// of `tensor` (shared, without its autograd history). `trainable` parameters are the ones
/// `ds_graph_append_gradients` differentiates; a feed of the same name replaces the value
/// for one run. The new value's id goes to `*out_value`.
///
/// Thread safety: one thread at a time per builder; `tensor` may be shared.
///
/// # Safety
/// `name` NUL-terminated; `out_value` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_builder_param(
    builder: *mut DsGraphBuilder,
    name: *const c_char,
    tensor: *const DsTensor,
    trainable: bool,
    out_value: *mut DsValueId,
) -> DsStatus {
    unsafe {
        with_builder(builder, out_value, |b| {
            let name = cstr(name, "name")?;
            b.param(name, tensor_ref(tensor, "tensor")?, trainable)
        })
    }
}

/// Adds a constant holding the value of `tensor` (shared, without its autograd history).
/// The new value's id goes to `*out_value`.
///
/// Thread safety: one thread at a time per builder; `tensor` may be shared.
///
/// # Safety
/// `out_value` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_builder_constant(
    builder: *mut DsGraphBuilder,
    tensor: *const DsTensor,
    out_value: *mut DsValueId,
) -> DsStatus {
    unsafe { with_builder(builder, out_value, |b| b.constant(tensor_ref(tensor, "tensor")?)) }
}

/// How many outputs `name` would have, when that can be told without error; errors are
/// left to the real `op` call, which names the node.
fn output_count(b: &GraphBuilder, name: &str, inputs: &[ValueId], pairs: &[(&str, Attr)]) -> Option<usize> {
    let op = find_op(name).ok()?;
    let attrs = Attrs::resolve(op.name, op.attrs, pairs).ok()?;
    dispatch::check_arity(op, inputs.len()).ok()?;
    let types = inputs.iter().map(|v| b.value_type(*v).ok().cloned()).collect::<Option<Vec<ValueType>>>()?;
    infer_types(op, &attrs, &types, name).ok().map(|t| t.len())
}

/// Adds a node applying the op called `op_name` (as `ds_op_call` names them) to the values
/// `inputs` (`n_inputs` ids) with the attributes in `attrs` (NULL for none; the list is
/// read, not kept). Output types are inferred now: an unknown op, wrong arity, bad
/// attribute, value id that the builder never returned, or shapes and dtypes that do not
/// fit are errors naming the node (`node 5 (`add`)`) and leave the builder unchanged. The
/// output ids go to `out_values` (room for `capacity`) and their number to
/// `*out_n_values`; when `capacity` is too small nothing is added, `*out_n_values` says
/// how many are needed and `DS_STATUS_BUFFER_TOO_SMALL` is returned.
///
/// Thread safety: one thread at a time per builder; `attrs` may be shared.
///
/// # Safety
/// `op_name` NUL-terminated; `inputs` valid for `n_inputs` reads; `out_values` for
/// `capacity` writes; `out_n_values` for a write.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ds_graph_builder_op(
    builder: *mut DsGraphBuilder,
    op_name: *const c_char,
    inputs: *const DsValueId,
    n_inputs: usize,
    attrs: *const super::ops::DsAttrs,
    out_values: *mut DsValueId,
    capacity: usize,
    out_n_values: *mut usize,
) -> DsStatus {
    guard(|| {
        let n_out = unsafe { out(out_n_values, "out_n_values")? };
        *n_out = 0;
        let b = unsafe { get(builder, "builder")? };
        let name = unsafe { cstr(op_name, "op_name")? };
        let ids = unsafe { slice(inputs, n_inputs, "inputs")? }
            .iter()
            .map(|&v| value_id(v, "inputs"))
            .collect::<Result<Vec<_>>>()?;
        let given = unsafe { attr_pairs(attrs, "attrs")? };
        let pairs: Vec<(&str, Attr)> = given.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let mut b = b.builder.lock().unwrap_or_else(|p| p.into_inner());
        // Counted first, so that a short `out_values` leaves the graph unchanged.
        if let Some(needed) = output_count(&b, name, &ids, &pairs)
            && needed > capacity
        {
            *n_out = needed;
            return Err(Error::BufferTooSmall { arg: "capacity", needed, given: capacity });
        }
        let outs = b.op(name, &ids, &pairs)?;
        let dst = unsafe { slice_mut(out_values, outs.len(), "out_values")? };
        for (d, v) in dst.iter_mut().zip(&outs) {
            *d = v.0 as DsValueId;
        }
        *n_out = outs.len();
        Ok(())
    })
}

/// Names the value `value` as the graph output `name` (names are unique; one value may have
/// several names). Executors fetch outputs by these names.
///
/// Thread safety: one thread at a time per builder.
///
/// # Safety
/// `name` NUL-terminated.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_builder_output(
    builder: *mut DsGraphBuilder,
    name: *const c_char,
    value: DsValueId,
) -> DsStatus {
    guard(|| {
        let b = unsafe { get(builder, "builder")? };
        let name = unsafe { cstr(name, "name")? };
        let value = value_id(value, "value")?;
        b.builder.lock().unwrap_or_else(|p| p.into_inner()).output(name, value)
    })
}

/// Writes a new graph holding everything added so far; it must name at least one output.
/// The builder is not consumed: it stays valid and unchanged, may keep growing (to finish a
/// larger graph later), and must still be freed with `ds_graph_builder_free`.
///
/// Thread safety: one thread at a time per builder.
///
/// # Safety
/// `out_graph` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_builder_finish(
    builder: *mut DsGraphBuilder,
    out_graph: *mut *mut DsGraph,
) -> DsStatus {
    unsafe {
        create_graph(out_graph, || {
            let b = get(builder, "builder")?;
            let b = b.builder.lock().unwrap_or_else(|p| p.into_inner());
            if b.graph().outputs().is_empty() {
                return Err(Error::invalid(
                    "builder",
                    "the graph names no outputs; add one with ds_graph_builder_output",
                ));
            }
            Ok(b.graph().clone())
        })
    }
}

/// Frees a graph; NULL is a no-op. Executors compiled from it keep working.
///
/// Thread safety: no other thread may be using `graph`.
///
/// # Safety
/// `graph` must be NULL or a handle no other thread is using.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ds_graph_free(graph: *mut DsGraph) -> DsStatus {
    guard(|| unsafe { free(graph, "graph") })
}

/// Writes the number of op nodes (inputs, parameters and constants not counted).
///
/// Thread safety: may be called from many threads at once.
///
/// # Safety
/// `out_count` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_num_ops(graph: *const DsGraph, out_count: *mut usize) -> DsStatus {
    guard(|| {
        let o = unsafe { out(out_count, "out_count")? };
        *o = unsafe { graph_ref(graph, "graph")? }.op_count();
        Ok(())
    })
}

/// Writes a readable dump of the graph (one line per node with its value types, then the
/// outputs), NUL-terminated, into `buf` (`capacity` bytes). `*out_needed` (if not NULL)
/// receives the bytes needed including the NUL; when that is more than `capacity` nothing
/// is written and `DS_STATUS_BUFFER_TOO_SMALL` is returned, so a first call with
/// `capacity` 0 (and `buf` NULL) asks for the size.
///
/// Thread safety: may be called from many threads at once.
///
/// # Safety
/// `buf` valid for `capacity` writes; `out_needed` NULL or valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_dump(
    graph: *const DsGraph,
    buf: *mut c_char,
    capacity: usize,
    out_needed: *mut usize,
) -> DsStatus {
    guard(|| {
        let text = unsafe { graph_ref(graph, "graph")? }.to_string();
        unsafe { write_text(&text, buf, capacity, out_needed) }
    })
}

/// Writes a new graph: `graph` extended with the gradient of its one-element output `loss`
/// with respect to the trainable parameters named in `wrt` (`n_wrt` names), or to every
/// trainable parameter when `wrt` is NULL and `n_wrt` 0. Each gradient becomes the output
/// `grad/<param>` (an embedding table gathered from gives `grad/<param>/indices` and
/// `grad/<param>/rows` instead). The gradient rules are those eager autograd runs, so the
/// values equal `ds_tensor_backward` on the same computation. `graph` is unchanged.
///
/// Thread safety: may be called from many threads at once on one graph.
///
/// # Safety
/// `loss` NUL-terminated; `wrt` valid for `n_wrt` reads of NUL-terminated strings;
/// `out_graph` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_append_gradients(
    graph: *const DsGraph,
    loss: *const c_char,
    wrt: *const *const c_char,
    n_wrt: usize,
    out_graph: *mut *mut DsGraph,
) -> DsStatus {
    unsafe {
        create_graph(out_graph, || {
            let g = graph_ref(graph, "graph")?;
            let loss = cstr(loss, "loss")?;
            let names = slice(wrt, n_wrt, "wrt")?.iter().map(|&p| cstr(p, "wrt")).collect::<Result<Vec<_>>>()?;
            let wrt = if wrt.is_null() { None } else { Some(names.as_slice()) };
            Ok(append_gradients(g, loss, wrt)?.0)
        })
    }
}

/// The calling thread's open trace. Dropping it (thread exit) ends the scope; if the hook's
/// own thread-local is already gone by then, the failure is contained here rather than
/// aborting the thread's teardown.
struct OpenTrace(Option<Tracer>);

impl Drop for OpenTrace {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(t)));
        }
    }
}

thread_local! {
    static TRACE: RefCell<OpenTrace> = const { RefCell::new(OpenTrace(None)) };
}

/// Runs `f` on the calling thread's open trace.
fn with_trace<T>(f: impl FnOnce(&Tracer) -> Result<T>) -> Result<T> {
    TRACE.with(|t| match &t.borrow().0 {
        Some(tracer) => f(tracer),
        None => Err(Error::invalid("trace", "no trace is open on this thread; call ds_graph_trace_begin first")),
    })
}

/// Opens a trace scope on the calling thread: until `ds_graph_trace_end` or
/// `ds_graph_trace_abort`, every `ds_op_call` this thread makes still runs eagerly and is
/// also recorded as a graph node. Declare inputs and parameters before using them
/// (`ds_graph_trace_input`, `ds_graph_trace_param`); other tensors the traced ops read
/// become parameters (tensors that require grad, named `param0`, `param1`, ...) or
/// constants. One scope per thread: opening a second one is an error.
///
/// Thread safety: the scope belongs to the calling thread; ops on other threads are not
/// recorded, and other threads may trace at the same time.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn ds_graph_trace_begin() -> DsStatus {
    guard(|| {
        // Started before TRACE is first touched, so the hook's thread-local is set up first
        // and torn down last at thread exit.
        let tracer = Tracer::start();
        TRACE.with(|t| {
            let mut t = t.borrow_mut();
            if t.0.is_some() {
                // Dropping the new tracer puts the open scope's observer back.
                drop(tracer);
                return Err(Error::invalid(
                    "trace",
                    "a trace is already open on this thread; end it with ds_graph_trace_end or ds_graph_trace_abort",
                ));
            }
            t.0 = Some(tracer);
            Ok(())
        })
    })
}

/// Declares `tensor` as the graph input `name`. `sym_names` (NULL, or one entry per
/// dimension of `tensor`) makes dimensions symbolic: a non-NULL `sym_names[i]` names
/// dimension i (e.g. "batch"), so the graph accepts any size there; a NULL entry keeps the
/// tensor's size fixed. `n_sym_names` must be 0 with NULL `sym_names`, else the tensor's rank.
///
/// Thread safety: acts on the calling thread's trace; `tensor` may be shared.
///
/// # Safety
/// `name` NUL-terminated; `sym_names` valid for `n_sym_names` reads of NULL or
/// NUL-terminated strings.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_trace_input(
    name: *const c_char,
    tensor: *const DsTensor,
    sym_names: *const *const c_char,
    n_sym_names: usize,
) -> DsStatus {
    guard(|| {
        let name = unsafe { cstr(name, "name")? };
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        let names = unsafe { slice(sym_names, n_sym_names, "sym_names")? };
        let dims = if sym_names.is_null() {
            None
        } else {
            if names.len() != t.ndim() {
                return Err(Error::invalid(
                    "n_sym_names",
                    format!("input `{name}`: {} entries for a tensor of rank {}", names.len(), t.ndim()),
                ));
            }
            let dims = names
                .iter()
                .zip(t.shape())
                .map(
                    |(&p, &n)| {
                        if p.is_null() { Ok(Dim::Fixed(n)) } else { unsafe { cstr(p, "sym_names") }.map(Dim::sym) }
                    },
                )
                .collect::<Result<Vec<_>>>()?;
            Some(dims)
        };
        with_trace(|tr| tr.input(name, t, dims.as_deref()))
    })
}

/// Declares `tensor` as the parameter `name` of the traced graph (trainable or frozen).
///
/// Thread safety: acts on the calling thread's trace; `tensor` may be shared.
///
/// # Safety
/// `name` NUL-terminated.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_trace_param(
    name: *const c_char,
    tensor: *const DsTensor,
    trainable: bool,
) -> DsStatus {
    guard(|| {
        let name = unsafe { cstr(name, "name")? };
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        with_trace(|tr| tr.param(name, t, trainable))
    })
}

/// Names the traced value of `tensor` as the graph output `name`.
///
/// Thread safety: acts on the calling thread's trace; `tensor` may be shared.
///
/// # Safety
/// `name` NUL-terminated.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_trace_output(name: *const c_char, tensor: *const DsTensor) -> DsStatus {
    guard(|| {
        let name = unsafe { cstr(name, "name")? };
        let t = unsafe { tensor_ref(tensor, "tensor")? };
        with_trace(|tr| tr.output(name, t))
    })
}

/// Closes the calling thread's trace scope and writes the recorded graph. The first error
/// met while recording an op (a reshape that bakes a symbolic size, say) is returned here;
/// the scope is closed whatever the outcome. Without an open scope this is an error.
///
/// Thread safety: acts on the calling thread's trace.
///
/// # Safety
/// `out_graph` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_trace_end(out_graph: *mut *mut DsGraph) -> DsStatus {
    guard(|| {
        // Taken first, so that the scope closes even when `out_graph` is NULL.
        let tracer = TRACE.with(|t| t.borrow_mut().0.take());
        let o = unsafe { out(out_graph, "out_graph")? };
        *o = std::ptr::null_mut();
        let tracer = tracer.ok_or_else(|| {
            Error::invalid("trace", "no trace is open on this thread; call ds_graph_trace_begin first")
        })?;
        *o = new_graph_handle(tracer.finish()?);
        Ok(())
    })
}

/// Closes the calling thread's trace scope, discarding what it recorded; without an open
/// scope it does nothing (so cleanup code may call it unconditionally).
///
/// Thread safety: acts on the calling thread's trace.
#[unsafe(no_mangle)]
pub extern "C" fn ds_graph_trace_abort() -> DsStatus {
    guard(|| {
        let tracer = TRACE.with(|t| t.borrow_mut().0.take());
        drop(tracer);
        Ok(())
    })
}

/// Saves `graph` to the file at `path` (UTF-8): a safetensors file holding the parameters and
/// constants, with the graph's structure in its metadata. The file is written to a temporary
/// name beside `path` and renamed, so readers never see half a file. Optimised graphs
/// holding fused nodes cannot be saved (save the graph you built or traced).
///
/// Thread safety: may be called from many threads at once on one graph (with different paths).
///
/// # Safety
/// `path` NUL-terminated.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_save(graph: *const DsGraph, path: *const c_char) -> DsStatus {
    guard(|| {
        let path = unsafe { cstr(path, "path")? };
        unsafe { graph_ref(graph, "graph")? }.save(std::path::Path::new(path))
    })
}

/// Loads a graph saved by `ds_graph_save` (in this or any other process). A missing file is
/// `DS_STATUS_NOT_FOUND`; a truncated or corrupt file, or one written by a newer format
/// version, is `DS_STATUS_CORRUPT_DATA`, with the reason in `ds_last_error()`.
///
/// Thread safety: may be called from many threads at once.
///
/// # Safety
/// `path` NUL-terminated; `out_graph` valid for a write.
#[unsafe(no_mangle)]
#[must_use]
pub unsafe extern "C" fn ds_graph_load(path: *const c_char, out_graph: *mut *mut DsGraph) -> DsStatus {
    unsafe {
        create_graph(out_graph, || {
            let path = cstr(path, "path")?;
            Graph::load(std::path::Path::new(path))
        })
    }
}
