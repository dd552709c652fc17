//! The DCN-v2 cross network: `x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l`, full-rank or low-rank (`W_l = U_l·V_l`).

use super::init::{Init, float_input, zeros};
use super::{LayerCtx, LayerDef, apply_layer};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

const ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("layers", AttrKind::Int, AttrDefault::Int(3), "number of cross layers L, >= 1"),
    AttrSpec::with_default(
        "rank",
        AttrKind::Int,
        AttrDefault::Int(0),
        "0: full-rank W_l [d, d]; r >= 1: W_l = u_l [d, r] · v_l [r, d]",
    ),
];

fn build(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    let x0 = ins[0];
    let dtype = float_input(ctx.dtype(x0)?, "x0")?;
    if ctx.dims(x0)?.len() != 2 {
        return Err(Error::shape("inputs", format!("`x0` must be [batch, d], given {}", ctx.builder.value_type(x0)?)));
    }
    let d = ctx.fixed_dim("cross_net", "x0", x0, -1)?;
    let layers = attrs.int("layers");
    if layers < 1 {
        return Err(Error::range("attrs", format!("`layers` must be at least 1, given {layers}")));
    }
    let rank = attrs.int("rank");
    if rank < 0 || rank as usize > d {
        return Err(Error::range("attrs", format!("`rank` must be in [0, d = {d}], given {rank}")));
    }
    let mut x = x0;
    for l in 0..layers {
        x = ctx.sub(&l.to_string(), |c| {
            let b = c.param("bias", &zeros(&[d], dtype)?, true)?;
            let xw = if rank == 0 {
                let w = Init::KaimingUniform.tensor(&[d, d], d, dtype, c.rng)?;
                let w = c.param("weight", &w, true)?;
                c.op1("linear", &[x, w, b], &[])?
            } else {
                let r = rank as usize;
                let v = Init::KaimingUniform.tensor(&[r, d], d, dtype, c.rng)?;
                let v = c.param("v", &v, true)?;
                let u = Init::KaimingUniform.tensor(&[d, r], r, dtype, c.rng)?;
                let u = c.param("u", &u, true)?;
                let xv = c.op1("linear", &[x, v], &[])?;
                c.op1("linear", &[xv, u, b], &[])?
            };
            let gated = c.op1("mul", &[x0, xw], &[])?;
            c.op1("add", &[gated, x], &[])
        })?;
    }
    Ok(vec![x])
}

/// `cross_net`: x0 `[batch, d]` → `[batch, d]` through L layers `<prefix>/<l>`, each
/// `x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l` (ALGORITHMS.md §5).
pub static CROSS_NET: LayerDef = LayerDef {
    name: "cross_net",
    inputs: &["x0"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: ATTRS,
    build,
    doc: "DCN-v2 cross network on x0 [batch, d]: x_{l+1} = x0 * (W_l x_l + b_l) + x_l for l < layers. Full rank: \
          <prefix>/<l>/weight [d, d] ~ U(±1/√d); low rank r: W_l = <prefix>/<l>/u [d, r] ~ U(±1/√r) times \
          <prefix>/<l>/v [r, d] ~ U(±1/√d); <prefix>/<l>/bias [d] = 0",
};

/// Adds a cross network of `layers` layers (`rank` 0 = full rank) on `x0`.
pub fn cross_net(ctx: &mut LayerCtx, x0: ValueId, layers: usize, rank: usize) -> Result<ValueId> {
    let attrs = [("layers", Attr::Int(layers as i64)), ("rank", Attr::Int(rank as i64))];
    Ok(apply_layer(ctx, &CROSS_NET, &[x0], &attrs)?[0])
}
