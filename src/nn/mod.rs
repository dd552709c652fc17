//! Layers built from ops: each is defined once (`LayerDef`), adds named parameters and op nodes to a `GraphBuilder`, and is reached from Rust and C by name with typed attributes.
//!
//! A model is a graph: a layer never holds state of its own. It creates parameters named
//! `<prefix>/<name>` (`dense/weight`, `dense/bias`), initialised from the caller's
//! [`Generator`] as each layer documents, and returns the values it computes. The ready-made
//! models in [`models`] are built from the same definitions.

pub mod conv;
pub mod cross;
pub mod dropout;
pub mod embedding;
pub mod fm;
pub mod init;
pub mod linear;
pub mod mlp;
pub mod mode;
pub mod models;
pub mod norm;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::{Dim, GraphBuilder, ValueId};
use crate::ops::{Attr, AttrSpec, Attrs};
use crate::rng::Generator;
use crate::tensor::Tensor;

pub use conv::conv2d;
pub use cross::cross_net;
pub use dropout::dropout;
pub use embedding::{embedding, embedding_bag};
pub use fm::fm;
pub use linear::linear;
pub use mlp::mlp;
pub use mode::set_training;
pub use models::{
    CrossStructure, CtrModelConfig, MlpClassifierConfig, dcn_v2, deepfm, logistic_regression, mlp_classifier,
    model_attrs, model_by_name, model_names,
};
pub use norm::{batch_norm, layer_norm};

/// Builds a layer's nodes: gets the context, the input values (arity already checked) and
/// the resolved attributes; returns the layer's outputs.
pub type LayerBuildFn = fn(&mut LayerCtx, &[ValueId], &Attrs) -> Result<Vec<ValueId>>;

/// The one definition of a layer.
pub struct LayerDef {
    /// Unique name (`"linear"`), the key of the registry and the C API.
    pub name: &'static str,
    /// Input names, in order; the last `optional_inputs` of them may be left out.
    pub inputs: &'static [&'static str],
    /// How many trailing inputs are optional.
    pub optional_inputs: usize,
    /// Output names, in order (every layer returns exactly these).
    pub outputs: &'static [&'static str],
    /// Accepted attributes, with defaults.
    pub attrs: &'static [AttrSpec],
    /// Adds the layer's parameters and nodes.
    build: LayerBuildFn,
    /// What the layer computes, its parameters and their initialisation.
    pub doc: &'static str,
}

impl std::fmt::Debug for LayerDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayerDef({})", self.name)
    }
}

/// What a layer builds into: the graph builder, the parameter prefix and the generator that
/// initialises parameters (and seeds dropout masks).
pub struct LayerCtx<'a> {
    /// The graph under construction.
    pub builder: &'a mut GraphBuilder,
    /// Parameter names are `<prefix>/<name>`.
    pub prefix: String,
    /// Draws initial values, in parameter creation order.
    pub rng: &'a mut Generator,
}

impl<'a> LayerCtx<'a> {
    /// A context over `builder` with parameter prefix `prefix`.
    pub fn new(builder: &'a mut GraphBuilder, prefix: &str, rng: &'a mut Generator) -> LayerCtx<'a> {
        LayerCtx { builder, prefix: prefix.to_string(), rng }
    }

    /// `<prefix>/<name>`.
    pub fn name(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// Adds parameter `<prefix>/<name>` holding `tensor`.
    pub fn param(&mut self, name: &str, tensor: &Tensor, trainable: bool) -> Result<ValueId> {
        let full = self.name(name);
        self.builder.param(&full, tensor, trainable)
    }

    /// Runs `f` with the prefix extended by `/<sub>` (a sub-layer's parameters).
    pub fn sub<R>(&mut self, sub: &str, f: impl FnOnce(&mut LayerCtx) -> Result<R>) -> Result<R> {
        let mut inner = LayerCtx { builder: self.builder, prefix: format!("{}/{sub}", self.prefix), rng: self.rng };
        f(&mut inner)
    }

    /// Adds the single-output op `op`.
    pub fn op1(&mut self, op: &str, inputs: &[ValueId], attrs: &[(&str, Attr)]) -> Result<ValueId> {
        self.builder.op1(op, inputs, attrs)
    }

    /// The dtype of a value.
    pub fn dtype(&self, v: ValueId) -> Result<DType> {
        Ok(self.builder.value_type(v)?.dtype)
    }

    /// The dimensions of a value.
    pub fn dims(&self, v: ValueId) -> Result<Vec<Dim>> {
        Ok(self.builder.value_type(v)?.dims.clone())
    }

    /// The fixed size of dimension `axis` (negative counts from the end) of input `arg`;
    /// a symbolic or missing dimension is an error naming the layer and the input.
    pub fn fixed_dim(&self, layer: &str, arg: &str, v: ValueId, axis: i64) -> Result<usize> {
        let ty = self.builder.value_type(v)?;
        let n = ty.dims.len() as i64;
        let i = if axis < 0 { n + axis } else { axis };
        match ty.dims.get(usize::try_from(i).unwrap_or(usize::MAX)) {
            Some(Dim::Fixed(d)) => Ok(*d),
            Some(Dim::Sym(s)) => Err(Error::shape(
                "inputs",
                format!("{layer}: dimension {axis} of `{arg}` ({ty}) is symbolic (`{s}`); it must have a fixed size"),
            )),
            None => Err(Error::shape("inputs", format!("{layer}: `{arg}` is {ty}, which has no dimension {axis}"))),
        }
    }
}

/// Every layer, sorted by name.
pub static LAYERS: &[&LayerDef] = &[
    &conv::AVG_POOL2D,
    &norm::BATCH_NORM,
    &conv::CONV2D,
    &cross::CROSS_NET,
    &dropout::DROPOUT,
    &embedding::EMBEDDING,
    &embedding::EMBEDDING_BAG,
    &fm::FM,
    &norm::LAYER_NORM,
    &linear::LINEAR,
    &conv::MAX_POOL2D,
    &mlp::MLP,
];

/// The layer called `name`.
pub fn find_layer(name: &str) -> Option<&'static LayerDef> {
    LAYERS.iter().copied().find(|l| l.name == name)
}

/// The names of all layers, sorted.
pub fn layer_names() -> impl Iterator<Item = &'static str> {
    LAYERS.iter().map(|l| l.name)
}

/// The layer called `name`, or an error listing the known ones.
pub fn layer(name: &str) -> Result<&'static LayerDef> {
    find_layer(name).ok_or_else(|| {
        let known: Vec<&str> = layer_names().collect();
        Error::NotFound(format!("no layer named `{name}` (layers: {known:?})"))
    })
}

/// Applies `def` in `ctx` (no transaction: on error the builder may hold part of the layer).
/// Layers call each other through this, so that every use goes through the definition.
pub fn apply_layer(
    ctx: &mut LayerCtx,
    def: &'static LayerDef,
    inputs: &[ValueId],
    attrs: &[(&str, Attr)],
) -> Result<Vec<ValueId>> {
    let max = def.inputs.len();
    let min = max - def.optional_inputs;
    if inputs.len() < min || inputs.len() > max {
        let want = if min == max { format!("{max}") } else { format!("{min} to {max}") };
        return Err(Error::invalid(
            "inputs",
            format!("layer `{}` takes {want} inputs ({}), given {}", def.name, def.inputs.join(", "), inputs.len()),
        ));
    }
    if ctx.prefix.is_empty() {
        return Err(Error::invalid("prefix", format!("layer `{}` needs a non-empty parameter prefix", def.name)));
    }
    let what = format!("layer `{}` at `{}`", def.name, ctx.prefix);
    let attrs = Attrs::resolve(&what, def.attrs, attrs)?;
    let outs = (def.build)(ctx, inputs, &attrs).map_err(|e| crate::ops::util::prefix(&what, e))?;
    debug_assert_eq!(outs.len(), def.outputs.len(), "layer `{}` output count", def.name);
    Ok(outs)
}

/// Adds layer `name` under parameter prefix `prefix` (`<prefix>/weight`, `<prefix>/bias`, ...)
/// to `b`, reading `inputs` and initialising parameters from `rng`; returns its outputs.
///
/// All or nothing: the layer is first built into a scratch graph over inputs of the same
/// types, and a clash with an existing parameter or output name is found there, so that an
/// error leaves `b` (and `rng`) unchanged.
pub fn add_layer(
    b: &mut GraphBuilder,
    name: &str,
    prefix: &str,
    inputs: &[ValueId],
    attrs: &[(&str, Attr)],
    rng: &mut Generator,
) -> Result<Vec<ValueId>> {
    let def = layer(name)?;
    let mut scratch = GraphBuilder::new();
    let mut ids = Vec::with_capacity(inputs.len());
    for (i, v) in inputs.iter().enumerate() {
        let ty = b.value_type(*v).map_err(|e| crate::ops::util::prefix(&format!("layer `{name}` input {i}"), e))?;
        ids.push(scratch.input(&format!("\u{0}in{i}"), ty.dtype, &ty.dims)?);
    }
    let mut trial_rng = *rng;
    apply_layer(&mut LayerCtx::new(&mut scratch, prefix, &mut trial_rng), def, &ids, attrs)?;
    let existing = b.graph();
    for (p, ..) in scratch.graph().params() {
        if existing.params().iter().any(|q| q.0 == p) || existing.inputs().iter().any(|q| q.0 == p) {
            return Err(Error::invalid(
                "prefix",
                format!(
                    "layer `{name}`: the graph already has a parameter or input named `{p}`; choose another prefix"
                ),
            ));
        }
    }
    for (o, _) in scratch.graph().outputs() {
        if existing.outputs().iter().any(|q| &q.0 == o) {
            return Err(Error::invalid(
                "prefix",
                format!("layer `{name}`: the graph already has an output named `{o}`"),
            ));
        }
    }
    apply_layer(&mut LayerCtx::new(b, prefix, rng), def, inputs, attrs)
}

/// The layer's description as JSON: name, doc, inputs (with `optional`), outputs and
/// attributes with kinds, defaults and docs (the same shape as an op schema's attributes).
pub fn layer_schema_json(def: &LayerDef) -> String {
    let n = def.inputs.len();
    let inputs: Vec<serde_json::Value> = def
        .inputs
        .iter()
        .enumerate()
        .map(|(i, name)| serde_json::json!({"name": name, "optional": i >= n - def.optional_inputs}))
        .collect();
    serde_json::json!({
        "name": def.name,
        "doc": def.doc,
        "inputs": inputs,
        "outputs": def.outputs,
        "attrs": attr_specs_json(def.attrs),
    })
    .to_string()
}

/// Attribute specs as JSON objects `{"name","kind","required","default","doc"}`.
pub fn attr_specs_json(specs: &[AttrSpec]) -> Vec<serde_json::Value> {
    use crate::ops::AttrDefault as D;
    specs
        .iter()
        .map(|a| {
            let (required, default) = match a.default {
                D::Required => (true, serde_json::Value::Null),
                D::Optional => (false, serde_json::Value::Null),
                D::Int(v) => (false, v.into()),
                D::Float(v) => (false, serde_json::Number::from_f64(v).map_or(v.to_string().into(), Into::into)),
                D::Ints(v) => (false, v.into()),
                D::Str(v) => (false, v.into()),
                D::Bool(v) => (false, v.into()),
            };
            serde_json::json!({"name": a.name, "kind": a.kind.name(), "required": required, "default": default, "doc": a.doc})
        })
        .collect()
}

/// A float dtype named by a string attribute (`"f32"`, `"f64"`, `"f16"`, `"bf16"`).
pub(crate) fn float_dtype(attr: &str, name: &str) -> Result<DType> {
    [DType::F32, DType::F64, DType::F16, DType::BF16].into_iter().find(|d| d.name() == name).ok_or_else(|| {
        Error::invalid("attrs", format!("`{attr}` must be \"f32\", \"f64\", \"f16\" or \"bf16\", given {name:?}"))
    })
}

/// A positive size from an int attribute.
pub(crate) fn positive(attrs: &Attrs, name: &str) -> Result<usize> {
    let v = attrs.int(name);
    usize::try_from(v)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::range("attrs", format!("`{name}` must be at least 1, given {v}")))
}
