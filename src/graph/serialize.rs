//! Graph files: a standard safetensors file whose tensors are the weights and whose metadata holds the structure.
//!
//! Layout (safetensors): an 8-byte little-endian header length, a JSON header padded with
//! spaces, then the tensor bytes. The header has one entry per tensor (`"param:<name>"` for
//! parameters, `"const:<node index>"` for constants) and `"__metadata__"` with string values:
//! - `"format"`: `"deepseek.graph"`; `"format_version"`: `"1"`;
//! - `"graph"`: the structure as JSON: `{"nodes": [...], "outputs": [{"name", "value"}], "stats": [...]}`,
//!   each node `{"kind": "input"|"param"|"const"|"op", "inputs": [value ids], "outputs": [types], ...}`
//!   with `name`, `trainable`, `tensor` (the weight's entry), `op` and `attrs`
//!   (`[{"name", "kind": "int"|"float"|"ints"|"str"|"bool", "value"}]`, floats as their f64
//!   bits in hex so they round-trip exactly); a type is `{"dtype": "f32", "dims": [8, "batch"]}`.
//!   A node's outputs are the next value ids in order, so ids are implied, not stored.
//! - `"checksum"`: `"fnv1a64:<16 hex digits>"`, FNV-1a over the graph JSON text followed by
//!   each tensor's bytes in ascending entry-name order. A flipped bit in the structure or the
//!   weights would otherwise load as a silently different model.
//!
//! Loading checks everything (lengths, offsets, dtypes, the checksum, op names, attributes,
//! value ids, re-inferred types) and reports a bad file as [`Error::Corrupt`], never a panic.

use super::builder::GraphBuilder;
use super::dim::{Dim, ValueType};
use super::ir::{Graph, NodeKind, ValueId};
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::{Attr, Attrs, find_op};
use crate::tensor::Tensor;
use crate::tensor::create::byte_size;
use serde_json::{Map, Value as Json, json};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `"format"` metadata value of a graph file.
pub const FORMAT: &str = "deepseek.graph";

/// The format version this library writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// Largest header accepted: the safetensors reference reader's own limit. Checked before
/// anything is allocated, so a corrupt length cannot ask for a huge buffer.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// FNV-1a, 64-bit: tiny, dependency-free, and enough to catch accidental corruption.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn text(self) -> String {
        format!("fnv1a64:{:016x}", self.0)
    }
}

/// The checksum of a graph text and its tensors' bytes, in ascending name order.
fn checksum<'a>(graph_text: &str, tensors: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Fnv::new();
    h.update(graph_text.as_bytes());
    for (_, bytes) in sorted {
        h.update(bytes);
    }
    h.text()
}

/// The safetensors name of a dtype.
fn safetensors_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I32 => "I32",
        DType::I64 => "I64",
        DType::U8 => "U8",
        DType::Bool => "BOOL",
    }
}

fn type_json(ty: &ValueType) -> Json {
    let dims: Vec<Json> = ty
        .dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => json!(n),
            Dim::Sym(s) => json!(s),
        })
        .collect();
    json!({ "dtype": ty.dtype.name(), "dims": dims })
}

fn attr_json(name: &str, attr: &Attr) -> Json {
    let (kind, value) = match attr {
        Attr::Int(v) => ("int", json!(v)),
        // The bits, so that every float (NaN payloads and infinities included) comes back exactly.
        Attr::Float(v) => ("float", json!(format!("{:#018x}", v.to_bits()))),
        Attr::Ints(v) => ("ints", json!(v)),
        Attr::Str(v) => ("str", json!(v)),
        Attr::Bool(v) => ("bool", json!(v)),
    };
    json!({ "name": name, "kind": kind, "value": value })
}

/// One weight on its way into the file.
struct Weight {
    key: String,
    dtype: DType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Weight {
    fn of(key: String, t: &Tensor) -> Result<Weight> {
        let mut bytes = vec![0u8; t.nbytes()];
        t.copy_to_bytes(&mut bytes)?;
        Ok(Weight { key, dtype: t.dtype(), shape: t.shape().to_vec(), bytes })
    }
}

impl Graph {
    /// The graph as bytes: safetensors file holding weights (params + constants) with the structure in its metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // safetensors is little-endian and tensors are copied out as raw host bytes.
        if cfg!(target_endian = "big") {
            return Err(Error::Unsupported("graph files on big-endian hosts".into()));
        }
        // Ids in node order: a loaded graph numbers its values that way, so stored ids must too.
        let mut renumber = vec![None; self.values.len()];
        let mut next = 0usize;
        for node in &self.nodes {
            for v in &node.outputs {
                renumber[v.0] = Some(next);
                next += 1;
            }
        }
        let id = |v: ValueId| -> Result<Json> {
            renumber
                .get(v.0)
                .copied()
                .flatten()
                .map(|n| json!(n))
                .ok_or_else(|| Error::Internal(format!("graph refers to {v}, which no node defines")))
        };
        let mut weights: Vec<Weight> = Vec::new();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let mut obj = Map::new();
            match &node.kind {
                NodeKind::Input { name } => {
                    obj.insert("kind".into(), json!("input"));
                    obj.insert("name".into(), json!(name));
                }
                NodeKind::Param { name, tensor, trainable } => {
                    let key = format!("param:{name}");
                    obj.insert("kind".into(), json!("param"));
                    obj.insert("name".into(), json!(name));
                    obj.insert("trainable".into(), json!(trainable));
                    obj.insert("tensor".into(), json!(key));
                    weights.push(Weight::of(key, tensor)?);
                }
                NodeKind::Const { tensor } => {
                    let key = format!("const:{i}");
                    obj.insert("kind".into(), json!("const"));
                    obj.insert("tensor".into(), json!(key));
                    weights.push(Weight::of(key, tensor)?);
                }
                NodeKind::Fused { .. } => {
                    return Err(Error::Unsupported(format!(
                        "{} cannot be saved: save the graph before fusion (executors fuse their own copy)",
                        self.describe(super::ir::NodeId(i))
                    )));
                }
                NodeKind::Op { op, attrs } => {
                    obj.insert("kind".into(), json!("op"));
                    obj.insert("op".into(), json!(op.name));
                    obj.insert("attrs".into(), Json::Array(attrs.pairs().map(|(n, a)| attr_json(n, a)).collect()));
                }
            }
            let inputs = node.inputs.iter().map(|v| id(*v)).collect::<Result<Vec<_>>>()?;
            obj.insert("inputs".into(), Json::Array(inputs));
            let types = node.outputs.iter().map(|v| type_json(&self.value(*v).ty)).collect();
            obj.insert("outputs".into(), Json::Array(types));
            nodes.push(Json::Object(obj));
        }
        let outputs =
            self.outputs.iter().map(|(n, v)| Ok(json!({ "name": n, "value": id(*v)? }))).collect::<Result<Vec<_>>>()?;
        let structure = json!({ "nodes": nodes, "outputs": outputs, "stats": self.stats });
        let graph_text = structure.to_string();
        let sum = checksum(&graph_text, weights.iter().map(|w| (w.key.as_str(), w.bytes.as_slice())));
        let mut metadata = Map::new();
        metadata.insert("format".into(), json!(FORMAT));
        metadata.insert("format_version".into(), json!(FORMAT_VERSION.to_string()));
        metadata.insert("graph".into(), json!(graph_text));
        metadata.insert("checksum".into(), json!(sum));
        // Data in entry-name order, the checksum's order; serde_json's map is sorted, so the
        // header is too, and one graph always gives the same bytes.
        weights.sort_by(|a, b| a.key.cmp(&b.key));
        let mut header = Map::new();
        header.insert("__metadata__".into(), Json::Object(metadata));
        let mut offset = 0usize;
        for w in &weights {
            let end = offset + w.bytes.len();
            header.insert(
                w.key.clone(),
                json!({ "dtype": safetensors_dtype(w.dtype), "shape": w.shape, "data_offsets": [offset, end] }),
            );
            offset = end;
        }
        let mut header = Json::Object(header).to_string().into_bytes();
        // Pads with spaces to a multiple of 8, as the reference writer does, so the data starts aligned.
        header.resize(header.len().next_multiple_of(8), b' ');
        if header.len() as u64 > MAX_HEADER_BYTES {
            return Err(Error::Unsupported(format!(
                "the graph's structure needs a header of {} bytes, over the {MAX_HEADER_BYTES} that safetensors readers accept",
                header.len()
            )));
        }
        let mut out = Vec::with_capacity(8 + header.len() + offset);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for w in &weights {
            out.extend_from_slice(&w.bytes);
        }
        Ok(out)
    }

    /// Parses bytes written by `to_bytes` (validates everything; corrupt input is Error::Corrupt, never a panic).
    pub fn from_bytes(bytes: &[u8]) -> Result<Graph> {
        Reader { what: "graph bytes" }.graph(bytes)
    }

    /// Writes `to_bytes` to `path` atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes)
    }

    /// Reads a file written by `save`.
    pub fn load(path: &Path) -> Result<Graph> {
        let bytes = std::fs::read(path).map_err(|e| io_error(path, "read", e))?;
        let what = path.display().to_string();
        Reader { what: &what }.graph(&bytes)
    }
}

/// An I/O failure as an engine error naming the file: a missing file or folder is `NotFound`.
fn io_error(path: &Path, verb: &str, e: std::io::Error) -> Error {
    let msg = format!("cannot {verb} graph file `{}`: {e}", path.display());
    if e.kind() == std::io::ErrorKind::NotFound { Error::NotFound(msg) } else { Error::invalid("path", msg) }
}

/// Writes `bytes` to a fresh file beside `path` and renames it over `path`, so readers see
/// the old file or the whole new one, never a partial write.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(file_name) = path.file_name() else {
        return Err(Error::invalid("path", format!("`{}` names no file", path.display())));
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Unique per process and call, so concurrent saves to one path never share a temp file.
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // Best effort: the temp file may not exist if creating it was what failed.
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, "write", e));
    }
    // Makes the rename itself durable; some filesystems refuse to sync a directory, which
    // leaves the data written and only the crash-safety of the rename weaker.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Where one tensor's bytes lie in the data region.
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

/// Parses and validates a graph file; every complaint is `Error::Corrupt` naming `what`.
struct Reader<'a> {
    what: &'a str,
}

impl Reader<'_> {
    fn corrupt(&self, msg: impl Into<String>) -> Error {
        Error::Corrupt { what: self.what.to_string(), msg: msg.into() }
    }

    /// Re-labels an error from the builder or a tensor constructor as corruption at `at`.
    fn wrap(&self, at: &str) -> impl Fn(Error) -> Error + '_ {
        let at = at.to_string();
        move |e| self.corrupt(format!("{at}: {e}"))
    }

    fn graph(&self, bytes: &[u8]) -> Result<Graph> {
        if cfg!(target_endian = "big") {
            return Err(Error::Unsupported("graph files on big-endian hosts".into()));
        }
        let (header, data) = self.split(bytes)?;
        let (metadata, table) = self.header(header, data.len())?;
        let graph_text = self.check_metadata(&metadata)?;
        let stored_sum = metadata.get("checksum").ok_or_else(|| self.corrupt("the metadata has no `checksum`"))?;
        let sum = checksum(graph_text, table.iter().map(|(k, e)| (k.as_str(), &data[e.begin..e.end])));
        if *stored_sum != sum {
            return Err(self.corrupt(format!(
                "checksum mismatch: the file says {stored_sum}, its contents hash to {sum} (the file was altered or damaged)"
            )));
        }
        let structure: Json = serde_json::from_str(graph_text)
            .map_err(|e| self.corrupt(format!("the graph JSON does not parse: {e}")))?;
        self.build(&structure, &table, data)
    }

    /// Splits the file into header text and data region.
    fn split<'b>(&self, bytes: &'b [u8]) -> Result<(&'b str, &'b [u8])> {
        if bytes.is_empty() {
            return Err(self.corrupt("the file is empty"));
        }
        let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
            return Err(self.corrupt(format!(
                "the file is {} bytes, shorter than the 8-byte header length that starts a safetensors file",
                bytes.len()
            )));
        };
        let n = u64::from_le_bytes(*len);
        if n > MAX_HEADER_BYTES {
            return Err(self.corrupt(format!("header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit")));
        }
        let n = n as usize;
        if n > rest.len() {
            return Err(self.corrupt(format!(
                "header length {n} exceeds the file ({} bytes after the length field); the file is truncated",
                rest.len()
            )));
        }
        let (header, data) = rest.split_at(n);
        let header =
            std::str::from_utf8(header).map_err(|e| self.corrupt(format!("the header is not UTF-8 text: {e}")))?;
        Ok((header, data))
    }

    /// Parses the header JSON: metadata strings and the tensor table, with every entry's
    /// offsets checked against its dtype and shape and the entries tiling the data region.
    fn header(&self, text: &str, data_len: usize) -> Result<(HashMap<String, String>, HashMap<String, Entry>)> {
        // Writers pad with spaces only; anything else after the object is damage.
        let body = text.trim_end_matches(' ');
        if !body.ends_with('}') {
            return Err(self.corrupt("the header must be a JSON object followed only by space padding"));
        }
        let json: Json =
            serde_json::from_str(body).map_err(|e| self.corrupt(format!("the header JSON does not parse: {e}")))?;
        let Json::Object(obj) = json else { return Err(self.corrupt("the header is not a JSON object")) };
        let mut metadata = HashMap::new();
        let mut table = HashMap::new();
        for (key, value) in &obj {
            if key == "__metadata__" {
                let Json::Object(m) = value else { return Err(self.corrupt("`__metadata__` is not an object")) };
                for (k, v) in m {
                    let Json::String(s) = v else {
                        return Err(self.corrupt(format!("metadata `{k}` is not a string")));
                    };
                    metadata.insert(k.clone(), s.clone());
                }
            } else {
                table.insert(key.clone(), self.entry(key, value, data_len)?);
            }
        }
        let mut spans: Vec<(&str, usize, usize)> = table.iter().map(|(k, e)| (k.as_str(), e.begin, e.end)).collect();
        spans.sort_by_key(|&(k, b, e)| (b, e, k));
        let mut at = 0;
        for (k, b, e) in spans {
            if b != at {
                let what = if b < at { "overlaps the tensor before it" } else { "leaves a gap before it" };
                return Err(
                    self.corrupt(format!("tensor `{k}` starts at byte {b} of the data, which {what} (expected {at})"))
                );
            }
            at = e;
        }
        if at != data_len {
            return Err(self.corrupt(format!(
                "the tensors cover {at} bytes of data but the file holds {data_len} (the file is truncated or has extra bytes)"
            )));
        }
        Ok((metadata, table))
    }

    fn entry(&self, key: &str, value: &Json, data_len: usize) -> Result<Entry> {
        let at = format!("tensor `{key}`");
        let dtype_name = self.str(value, "dtype", &at)?;
        let Some(dtype) = DType::ALL.into_iter().find(|d| safetensors_dtype(*d) == dtype_name) else {
            let known: Vec<&str> = DType::ALL.into_iter().map(safetensors_dtype).collect();
            return Err(self.corrupt(format!("{at}: dtype `{dtype_name}` is none of {known:?}")));
        };
        let shape = self
            .array(value, "shape", &at)?
            .iter()
            .map(|d| self.index(d, &format!("{at}: a shape entry")))
            .collect::<Result<Vec<_>>>()?;
        let offsets = self.array(value, "data_offsets", &at)?;
        let [b, e] = offsets else {
            return Err(self.corrupt(format!("{at}: `data_offsets` must hold two numbers")));
        };
        let (begin, end) =
            (self.index(b, &format!("{at}: begin offset"))?, self.index(e, &format!("{at}: end offset"))?);
        if begin > end || end > data_len {
            return Err(
                self.corrupt(format!("{at}: data offsets [{begin}, {end}] lie outside the {data_len} bytes of data"))
            );
        }
        let need = byte_size(&shape, dtype, "shape").map_err(self.wrap(&at))?;
        if end - begin != need {
            return Err(self.corrupt(format!(
                "{at}: {} bytes of data for shape {shape:?} of {dtype}, which needs {need}",
                end - begin
            )));
        }
        Ok(Entry { dtype, shape, begin, end })
    }

    /// Checks the format and version; returns the graph JSON text.
    fn check_metadata<'m>(&self, metadata: &'m HashMap<String, String>) -> Result<&'m str> {
        match metadata.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(self.corrupt(format!("format `{other}` is not a deepseek graph (expected `{FORMAT}`)")));
            }
            None => {
                return Err(self.corrupt(format!(
                    "the metadata has no `format`; this is not a deepseek graph file (expected `{FORMAT}`)"
                )));
            }
        }
        let version =
            metadata.get("format_version").ok_or_else(|| self.corrupt("the metadata has no `format_version`"))?;
        match version.parse::<u64>() {
            Ok(FORMAT_VERSION) => {}
            Ok(v) if v > FORMAT_VERSION => {
                return Err(self.corrupt(format!(
                    "written by a newer format version {v}; this library reads version {FORMAT_VERSION}"
                )));
            }
            _ => return Err(self.corrupt(format!("format_version `{version}` is not a version this library reads"))),
        }
        metadata.get("graph").map(String::as_str).ok_or_else(|| self.corrupt("the metadata has no `graph`"))
    }

    /// Rebuilds the graph node by node through the builder, so every check it makes (op
    /// arity, attribute kinds, shape inference, unique names) applies to loaded graphs too.
    fn build(&self, s: &Json, table: &HashMap<String, Entry>, data: &[u8]) -> Result<Graph> {
        let mut b = GraphBuilder::new();
        let mut used: HashSet<&str> = HashSet::new();
        for (i, node) in self.array(s, "nodes", "graph")?.iter().enumerate() {
            let at = format!("node {i}");
            let kind = self.str(node, "kind", &at)?;
            let defined = b.graph().num_values();
            let mut inputs = Vec::new();
            for v in self.array(node, "inputs", &at)? {
                let v = self.index(v, &format!("{at}: an input value id"))?;
                if v >= defined {
                    return Err(self.corrupt(format!(
                        "cycle or dangling reference at node {i}: it reads %{v}, but only %0..%{defined} are defined before it"
                    )));
                }
                inputs.push(ValueId(v));
            }
            let types = self
                .array(node, "outputs", &at)?
                .iter()
                .map(|t| self.value_type(t, &at))
                .collect::<Result<Vec<_>>>()?;
            if kind != "op" && (!inputs.is_empty() || types.len() != 1) {
                return Err(self.corrupt(format!(
                    "{at}: {kind} nodes read no values and define one; the file gives {} inputs and {} outputs",
                    inputs.len(),
                    types.len()
                )));
            }
            if kind == "input" {
                // Sizes no tensor can have would overflow the shape arithmetic of later ops.
                let fixed: Vec<usize> = types[0].dims.iter().map(|d| d.fixed().unwrap_or(1)).collect();
                byte_size(&fixed, types[0].dtype, "dims").map_err(self.wrap(&at))?;
            }
            let wrap = self.wrap(&at);
            let outs = match kind {
                "input" => vec![b.input(self.str(node, "name", &at)?, types[0].dtype, &types[0].dims).map_err(&wrap)?],
                "param" => {
                    let name = self.str(node, "name", &at)?;
                    let trainable = self.bool(node, "trainable", &at)?;
                    let t = self.tensor(node, &at, table, data, &mut used)?;
                    vec![b.param(name, &t, trainable).map_err(&wrap)?]
                }
                "const" => {
                    let t = self.tensor(node, &at, table, data, &mut used)?;
                    vec![b.constant(&t).map_err(&wrap)?]
                }
                "op" => {
                    let name = self.str(node, "op", &at)?;
                    let op = find_op(name).map_err(|_| {
                        self.corrupt(format!("{at}: unknown op `{name}` (no op of that name in this library)"))
                    })?;
                    let given = self
                        .array(node, "attrs", &at)?
                        .iter()
                        .map(|a| self.attr(a, &at))
                        .collect::<Result<Vec<_>>>()?;
                    let given: Vec<(&str, Attr)> = given.iter().map(|(n, a)| (*n, a.clone())).collect();
                    let attrs = Attrs::resolve(op.name, op.attrs, &given).map_err(&wrap)?;
                    b.apply(op, &inputs, attrs).map_err(&wrap)?
                }
                other => {
                    return Err(self.corrupt(format!(
                        "{at}: unknown node kind `{other}` (this library reads input, param, const and op)"
                    )));
                }
            };
            let inferred: Vec<&ValueType> = outs.iter().map(|v| &b.graph().value(*v).ty).collect();
            if inferred.len() != types.len() || inferred.iter().zip(&types).any(|(a, b)| *a != b) {
                let stored: Vec<String> = types.iter().map(ValueType::to_string).collect();
                let actual: Vec<String> = inferred.iter().map(|t| t.to_string()).collect();
                return Err(
                    self.corrupt(format!("{at}: the file gives output types {stored:?}, but they are {actual:?}"))
                );
            }
        }
        for (i, out) in self.array(s, "outputs", "graph")?.iter().enumerate() {
            let at = format!("output {i}");
            let name = self.str(out, "name", &at)?;
            let v = self.index(self.field(out, "value", &at)?, &format!("{at}: its value id"))?;
            if v >= b.graph().num_values() {
                return Err(self.corrupt(format!("output `{name}` names %{v}, which no node defines")));
            }
            b.output(name, ValueId(v)).map_err(self.wrap(&at))?;
        }
        let stats = self
            .array(s, "stats", "graph")?
            .iter()
            .map(|l| {
                l.as_str().map(str::to_string).ok_or_else(|| self.corrupt("graph: a `stats` line is not a string"))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(unused) = table.keys().find(|k| !used.contains(k.as_str())) {
            return Err(self.corrupt(format!("tensor `{unused}` is in the file but no node uses it")));
        }
        let mut graph = b.finish().map_err(self.wrap("graph"))?;
        graph.stats = stats;
        Ok(graph)
    }

    /// The tensor a param or const node names, each entry used by one node only.
    fn tensor<'t>(
        &self,
        node: &Json,
        at: &str,
        table: &'t HashMap<String, Entry>,
        data: &[u8],
        used: &mut HashSet<&'t str>,
    ) -> Result<Tensor> {
        let key = self.str(node, "tensor", at)?;
        let Some((key, e)) = table.get_key_value(key) else {
            return Err(self.corrupt(format!("{at}: tensor `{key}` is not in the file")));
        };
        if !used.insert(key.as_str()) {
            return Err(self.corrupt(format!("{at}: tensor `{key}` is used by an earlier node too")));
        }
        Tensor::from_bytes(&data[e.begin..e.end], e.dtype, &e.shape, Device::Cpu)
            .map_err(self.wrap(&format!("{at}: tensor `{key}`")))
    }

    fn value_type(&self, t: &Json, at: &str) -> Result<ValueType> {
        let name = self.str(t, "dtype", at)?;
        let dtype = DType::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| self.corrupt(format!("{at}: `{name}` is not a dtype")))?;
        let dims = self
            .array(t, "dims", at)?
            .iter()
            .map(|d| match d {
                Json::String(s) => Ok(Dim::Sym(s.clone())),
                d => Ok(Dim::Fixed(self.index(d, &format!("{at}: a dimension"))?)),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ValueType::new(dtype, dims))
    }

    fn attr<'j>(&self, a: &'j Json, at: &str) -> Result<(&'j str, Attr)> {
        let name = self.str(a, "name", at)?;
        let at = format!("{at}: attribute `{name}`");
        let kind = self.str(a, "kind", &at)?;
        let v = self.field(a, "value", &at)?;
        let bad = || self.corrupt(format!("{at}: the value {v} is not a valid {kind}"));
        let attr = match kind {
            "int" => Attr::Int(v.as_i64().ok_or_else(bad)?),
            "float" => {
                let hex = v.as_str().and_then(|s| s.strip_prefix("0x")).ok_or_else(bad)?;
                Attr::Float(f64::from_bits(u64::from_str_radix(hex, 16).map_err(|_| bad())?))
            }
            "ints" => Attr::Ints(
                v.as_array().ok_or_else(bad)?.iter().map(|x| x.as_i64().ok_or_else(bad)).collect::<Result<_>>()?,
            ),
            "str" => Attr::Str(v.as_str().ok_or_else(bad)?.to_string()),
            "bool" => Attr::Bool(v.as_bool().ok_or_else(bad)?),
            other => {
                return Err(
                    self.corrupt(format!("{at}: unknown attribute kind `{other}` (int, float, ints, str, bool)"))
                );
            }
        };
        Ok((name, attr))
    }

    fn field<'j>(&self, obj: &'j Json, key: &str, at: &str) -> Result<&'j Json> {
        obj.get(key).ok_or_else(|| self.corrupt(format!("{at}: missing field `{key}`")))
    }

    fn str<'j>(&self, obj: &'j Json, key: &str, at: &str) -> Result<&'j str> {
        self.field(obj, key, at)?.as_str().ok_or_else(|| self.corrupt(format!("{at}: field `{key}` is not a string")))
    }

    fn bool(&self, obj: &Json, key: &str, at: &str) -> Result<bool> {
        self.field(obj, key, at)?.as_bool().ok_or_else(|| self.corrupt(format!("{at}: field `{key}` is not a bool")))
    }

    fn array<'j>(&self, obj: &'j Json, key: &str, at: &str) -> Result<&'j [Json]> {
        match self.field(obj, key, at)? {
            Json::Array(a) => Ok(a),
            _ => Err(self.corrupt(format!("{at}: field `{key}` is not an array"))),
        }
    }

    /// A non-negative integer that fits `usize`.
    fn index(&self, v: &Json, what: &str) -> Result<usize> {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.corrupt(format!("{what} is {v}, not a non-negative integer")))
    }
}
