//! Normalisation layers: LayerNorm over the last dimension and BatchNorm over the batch, with its running statistics.
//!
//! BatchNorm's running mean and variance are frozen parameters (`<prefix>/running_mean`,
//! `<prefix>/running_var`). An executor holds no state between runs, so a training graph
//! cannot update them itself: in training mode the layer names the updated statistics as
//! graph outputs `update/<prefix>/running_mean` and `update/<prefix>/running_var`, and
//! whoever drives training (the trainer) fetches them and writes them into the parameters
//! (or feeds them under the parameter names) for the next step. A graph never fetching them
//! keeps its initial statistics. Training or inference mode is an attribute of the graph's
//! nodes; [`super::set_training`] rewrites it for export.

use super::init::{float_input, ones, zeros};
use super::{LayerCtx, LayerDef, apply_layer};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

const LN_ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("eps", AttrKind::Float, AttrDefault::Float(1e-5), "added to the variance"),
    AttrSpec::with_default(
        "elementwise_affine",
        AttrKind::Bool,
        AttrDefault::Bool(true),
        "learn <prefix>/weight (ones) and <prefix>/bias (zeros)",
    ),
];

fn eps(attrs: &Attrs) -> Result<f64> {
    let e = attrs.float("eps");
    if !(e.is_finite() && e > 0.0) {
        return Err(Error::range("attrs", format!("`eps` must be finite and > 0, given {e}")));
    }
    Ok(e)
}

fn build_ln(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    let x = ins[0];
    let dtype = float_input(ctx.dtype(x)?, "x")?;
    let d = ctx.fixed_dim("layer_norm", "x", x, -1)?;
    let la = [("normalized_ndim", Attr::Int(1)), ("eps", Attr::Float(eps(attrs)?))];
    let mut args = vec![x];
    if attrs.bool("elementwise_affine") {
        args.push(ctx.param("weight", &ones(&[d], dtype)?, true)?);
        args.push(ctx.param("bias", &zeros(&[d], dtype)?, true)?);
    }
    Ok(vec![ctx.op1("layer_norm", &args, &la)?])
}

/// `layer_norm`: normalises the last dimension of x, then `· weight + bias` (ones, zeros).
pub static LAYER_NORM: LayerDef = LayerDef {
    name: "layer_norm",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: LN_ATTRS,
    build: build_ln,
    doc: "normalises the last dimension d of x: (x − mean)/√(var + eps) · <prefix>/weight [d] (ones) + \
          <prefix>/bias [d] (zeros)",
};

fn build_bn(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    let x = ins[0];
    let dtype = float_input(ctx.dtype(x)?, "x")?;
    if ctx.dims(x)?.len() < 2 {
        return Err(Error::shape("inputs", format!("`x` must be [N, C, ...], given {}", ctx.builder.value_type(x)?)));
    }
    let c = ctx.fixed_dim("batch_norm", "x", x, 1)?;
    let m = attrs.float("momentum");
    if !(0.0..=1.0).contains(&m) {
        return Err(Error::range("attrs", format!("`momentum` must be in [0, 1], given {m}")));
    }
    let training = attrs.bool("training");
    let w = ctx.param("weight", &ones(&[c], dtype)?, true)?;
    let b = ctx.param("bias", &zeros(&[c], dtype)?, true)?;
    let rm = ctx.param("running_mean", &zeros(&[c], dtype)?, false)?;
    let rv = ctx.param("running_var", &ones(&[c], dtype)?, false)?;
    let ba = [("training", Attr::Bool(training)), ("momentum", Attr::Float(m)), ("eps", Attr::Float(eps(attrs)?))];
    let outs = ctx.builder.op("batch_norm", &[x, w, b, rm, rv], &ba)?;
    if training {
        let (nm, nv) = (ctx.name("running_mean"), ctx.name("running_var"));
        ctx.builder.output(&format!("update/{nm}"), outs[1])?;
        ctx.builder.output(&format!("update/{nv}"), outs[2])?;
    }
    Ok(vec![outs[0]])
}

/// `batch_norm`: per-channel normalisation of x `[N, C, ...]`; see the module doc for how
/// the running statistics are updated.
pub static BATCH_NORM: LayerDef = LayerDef {
    name: "batch_norm",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: crate::ops::nn::BATCH_NORM_ATTRS,
    build: build_bn,
    doc: "per-channel normalisation of x [N, C, ...] with <prefix>/weight [C] (ones), <prefix>/bias [C] (zeros) and \
          frozen <prefix>/running_mean (zeros), <prefix>/running_var (ones). Training: batch statistics, and the \
          updated running statistics as graph outputs update/<prefix>/running_mean and update/<prefix>/running_var \
          (the executor keeps no state: the caller writes them back). Inference: the running statistics",
};

/// Adds a layer norm over the last dimension (affine, eps 1e-5).
pub fn layer_norm(ctx: &mut LayerCtx, x: ValueId) -> Result<ValueId> {
    Ok(apply_layer(ctx, &LAYER_NORM, &[x], &[])?[0])
}

/// Adds a batch norm (momentum 0.1, eps 1e-5) in training or inference mode.
pub fn batch_norm(ctx: &mut LayerCtx, x: ValueId, training: bool) -> Result<ValueId> {
    Ok(apply_layer(ctx, &BATCH_NORM, &[x], &[("training", Attr::Bool(training))])?[0])
}
