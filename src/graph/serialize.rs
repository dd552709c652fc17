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
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::{Attr, Attrs, find_op};
use crate::safetensors::{Blob, Parsed, checksum, encode, io_error, write_atomic};
use crate::tensor::Tensor;
use crate::tensor::create::byte_size;
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The `"format"` metadata value of a graph file.
pub const FORMAT: &str = "deepseek.graph";

/// The format version this library writes and reads.
pub const FORMAT_VERSION: u64 = 1;

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

impl Graph {
    /// The graph as bytes: safetensors file holding weights (params + constants) with the structure in its metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
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
        let mut weights: Vec<Blob> = Vec::new();
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
                    weights.push(Blob::of(key, tensor)?);
                }
                NodeKind::Const { tensor } => {
                    let key = format!("const:{i}");
                    obj.insert("kind".into(), json!("const"));
                    obj.insert("tensor".into(), json!(key));
                    weights.push(Blob::of(key, tensor)?);
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
        let sum = checksum(&graph_text, weights.iter().map(|w| (w.name.as_str(), w.bytes.as_slice())));
        let metadata = BTreeMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("graph".to_string(), graph_text),
            ("checksum".to_string(), sum),
        ]);
        encode(weights, &metadata)
    }

    /// Parses bytes written by `to_bytes` (validates everything; corrupt input is Error::Corrupt, never a panic).
    pub fn from_bytes(bytes: &[u8]) -> Result<Graph> {
        Reader { what: "graph bytes" }.graph(bytes)
    }

    /// Writes `to_bytes` to `path` atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        write_atomic(path, "graph file", &bytes)
    }

    /// Reads a file written by `save`.
    pub fn load(path: &Path) -> Result<Graph> {
        let bytes = std::fs::read(path).map_err(|e| io_error(path, "graph file", "read", e))?;
        let what = path.display().to_string();
        Reader { what: &what }.graph(&bytes)
    }
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
        let file = Parsed::new(bytes, self.what)?;
        let graph_text = self.check_metadata(&file.metadata)?;
        let stored_sum = file.metadata.get("checksum").ok_or_else(|| self.corrupt("the metadata has no `checksum`"))?;
        let sum = file.checksum(graph_text);
        if *stored_sum != sum {
            return Err(self.corrupt(format!(
                "checksum mismatch: the file says {stored_sum}, its contents hash to {sum} (the file was altered or damaged)"
            )));
        }
        let structure: Json = serde_json::from_str(graph_text)
            .map_err(|e| self.corrupt(format!("the graph JSON does not parse: {e}")))?;
        self.build(&structure, &file)
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
    fn build(&self, s: &Json, file: &Parsed<'_>) -> Result<Graph> {
        let mut b = GraphBuilder::new();
        let mut used: HashSet<String> = HashSet::new();
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
                    let t = self.tensor(node, &at, file, &mut used)?;
                    vec![b.param(name, &t, trainable).map_err(&wrap)?]
                }
                "const" => {
                    let t = self.tensor(node, &at, file, &mut used)?;
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
        if let Some(unused) = file.names().into_iter().find(|k| !used.contains(*k)) {
            return Err(self.corrupt(format!("tensor `{unused}` is in the file but no node uses it")));
        }
        let mut graph = b.finish().map_err(self.wrap("graph"))?;
        graph.stats = stats;
        Ok(graph)
    }

    /// The tensor a param or const node names, each entry used by one node only.
    fn tensor(&self, node: &Json, at: &str, file: &Parsed<'_>, used: &mut HashSet<String>) -> Result<Tensor> {
        let key = self.str(node, "tensor", at)?;
        if file.entry(key).is_none() {
            return Err(self.corrupt(format!("{at}: tensor `{key}` is not in the file")));
        }
        if !used.insert(key.to_string()) {
            return Err(self.corrupt(format!("{at}: tensor `{key}` is used by an earlier node too")));
        }
        file.tensor(key).map_err(self.wrap(at))
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
