//! The MLP layer: linear layers of given widths with an activation, optional normalisation and dropout between them.

use super::init::Init;
use super::{LayerCtx, LayerDef, apply_layer};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

const ATTRS: &[AttrSpec] = &[
    AttrSpec::required("widths", AttrKind::Ints, "output width of each linear layer, each >= 1"),
    AttrSpec::with_default(
        "activation",
        AttrKind::Str,
        AttrDefault::Str("relu"),
        "\"relu\", \"gelu\", \"silu\", \"tanh\" or \"none\"",
    ),
    AttrSpec::with_default(
        "activate_last",
        AttrKind::Bool,
        AttrDefault::Bool(false),
        "also apply norm, activation and dropout after the last layer (a hidden tower, not logits)",
    ),
    AttrSpec::with_default(
        "norm",
        AttrKind::Str,
        AttrDefault::Str("none"),
        "\"none\", \"layer_norm\" or \"batch_norm\"",
    ),
    AttrSpec::with_default("dropout", AttrKind::Float, AttrDefault::Float(0.0), "dropout probability, 0 for none"),
    AttrSpec::with_default(
        "training",
        AttrKind::Bool,
        AttrDefault::Bool(true),
        "batch-norm and dropout mode (see nn::set_training)",
    ),
    AttrSpec::with_default("bias", AttrKind::Bool, AttrDefault::Bool(true), "linear layers have biases"),
    AttrSpec::with_default(
        "init",
        AttrKind::Str,
        AttrDefault::Str("kaiming_uniform"),
        "weight init of each linear: \"kaiming_uniform\" or \"he_normal\"",
    ),
];

/// Checks an activation name.
fn activation_op(name: &str) -> Result<Option<&'static str>> {
    match name {
        "relu" => Ok(Some("relu")),
        "gelu" => Ok(Some("gelu")),
        "silu" => Ok(Some("silu")),
        "tanh" => Ok(Some("tanh")),
        "none" => Ok(None),
        other => Err(Error::invalid(
            "attrs",
            format!("`activation` must be \"relu\", \"gelu\", \"silu\", \"tanh\" or \"none\", given {other:?}"),
        )),
    }
}

fn build(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    let widths = attrs.ints("widths");
    if widths.is_empty() {
        return Err(Error::invalid("attrs", "`widths` must list at least one layer width"));
    }
    if let Some((i, w)) = widths.iter().enumerate().find(|(_, w)| **w < 1) {
        return Err(Error::range("attrs", format!("`widths[{i}]` must be at least 1, given {w}")));
    }
    let act = activation_op(attrs.str("activation"))?;
    let norm = attrs.str("norm");
    let norm_layer = match norm {
        "none" => None,
        "layer_norm" => Some(&super::norm::LAYER_NORM),
        "batch_norm" => Some(&super::norm::BATCH_NORM),
        other => {
            return Err(Error::invalid(
                "attrs",
                format!("`norm` must be \"none\", \"layer_norm\" or \"batch_norm\", given {other:?}"),
            ));
        }
    };
    let p = attrs.float("dropout");
    if !(0.0..1.0).contains(&p) {
        return Err(Error::range("attrs", format!("`dropout` must be in [0, 1), given {p}")));
    }
    Init::parse(attrs.str("init"))?;
    let training = attrs.bool("training");
    let mut x = ins[0];
    for (i, &w) in widths.iter().enumerate() {
        let last = i + 1 == widths.len();
        let lin = [
            ("out_features", Attr::Int(w)),
            ("bias", Attr::Bool(attrs.bool("bias"))),
            ("init", Attr::Str(attrs.str("init").to_string())),
        ];
        x = ctx.sub(&i.to_string(), |c| Ok(apply_layer(c, &super::linear::LINEAR, &[x], &lin)?[0]))?;
        if last && !attrs.bool("activate_last") {
            break;
        }
        if let Some(def) = norm_layer {
            let extra: Vec<(&str, Attr)> =
                if def.name == "batch_norm" { vec![("training", Attr::Bool(training))] } else { vec![] };
            x = ctx.sub(&format!("{i}/norm"), |c| Ok(apply_layer(c, def, &[x], &extra)?[0]))?;
        }
        if let Some(op) = act {
            x = ctx.op1(op, &[x], &[])?;
        }
        if p > 0.0 {
            let d = [("p", Attr::Float(p)), ("training", Attr::Bool(training))];
            x = ctx.sub(&format!("{i}/dropout"), |c| Ok(apply_layer(c, &super::dropout::DROPOUT, &[x], &d)?[0]))?;
        }
    }
    Ok(vec![x])
}

/// `mlp`: `x [..., in]` through linear layers `<prefix>/<i>` (i = 0, 1, ...) of the given
/// widths; between layers (and after the last with `activate_last`): optional norm
/// `<prefix>/<i>/norm`, the activation, optional dropout.
pub static MLP: LayerDef = LayerDef {
    name: "mlp",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: ATTRS,
    build,
    doc: "linear layers <prefix>/<i> of `widths` (init as the linear layer: kaiming_uniform or he_normal, biases 0); \
          between them optional layer_norm/batch_norm <prefix>/<i>/norm, the activation and dropout",
};

/// Adds an MLP of `widths` with `activation` between layers (none after the last) under `ctx.prefix`.
pub fn mlp(ctx: &mut LayerCtx, x: ValueId, widths: &[usize], activation: &str) -> Result<ValueId> {
    let attrs = [
        ("widths", Attr::Ints(widths.iter().map(|&w| w as i64).collect())),
        ("activation", Attr::Str(activation.to_string())),
    ];
    Ok(apply_layer(ctx, &MLP, &[x], &attrs)?[0])
}
