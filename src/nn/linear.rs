//! The linear layer: `y = x·Wᵀ + b` over the last dimension.

use super::init::{Init, float_input, zeros};
use super::{LayerCtx, LayerDef, apply_layer, positive};
use crate::error::Result;
use crate::graph::ValueId;
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

const ATTRS: &[AttrSpec] = &[
    AttrSpec::required("out_features", AttrKind::Int, "output width, >= 1"),
    AttrSpec::with_default("bias", AttrKind::Bool, AttrDefault::Bool(true), "add a bias `<prefix>/bias`"),
    AttrSpec::with_default(
        "init",
        AttrKind::Str,
        AttrDefault::Str("kaiming_uniform"),
        "weight init: \"kaiming_uniform\" U(±1/√in) or \"he_normal\" N(0, √(2/in))",
    ),
];

fn build(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    let x = ins[0];
    let dtype = float_input(ctx.dtype(x)?, "x")?;
    let inf = ctx.fixed_dim("linear", "x", x, -1)?;
    let outf = positive(attrs, "out_features")?;
    let init = Init::parse(attrs.str("init"))?;
    let w = init.tensor(&[outf, inf], inf, dtype, ctx.rng)?;
    let mut args = vec![x, ctx.param("weight", &w, true)?];
    if attrs.bool("bias") {
        args.push(ctx.param("bias", &zeros(&[outf], dtype)?, true)?);
    }
    Ok(vec![ctx.op1("linear", &args, &[])?])
}

/// `linear`: x `[..., in]` → `[..., out_features]`. Parameters `<prefix>/weight` `[out, in]`
/// (Kaiming-uniform by default, or He-normal) and `<prefix>/bias` `[out]` (zeros).
pub static LINEAR: LayerDef = LayerDef {
    name: "linear",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: ATTRS,
    build,
    doc: "y = x·Wᵀ + b over the last dimension; weight [out, in] ~ U(±1/√in) (PyTorch's default; init=\"he_normal\" \
          gives N(0, √(2/in))), bias [out] = 0",
};

/// Adds a linear layer (Kaiming-uniform weight) under `ctx.prefix`.
pub fn linear(ctx: &mut LayerCtx, x: ValueId, out_features: usize, bias: bool) -> Result<ValueId> {
    let attrs = [("out_features", Attr::Int(out_features as i64)), ("bias", Attr::Bool(bias))];
    Ok(apply_layer(ctx, &LINEAR, &[x], &attrs)?[0])
}
