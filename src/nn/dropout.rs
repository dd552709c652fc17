//! The dropout layer: inverted dropout whose mask seed is drawn from the builder's generator.
//!
//! Limitation: the `dropout` op takes its seed as an attribute, so a graph's mask is fixed
//! when the graph is built and every run of that graph drops the same elements (for a given
//! batch shape). That is reproducible but weaker regularisation than a fresh mask per step;
//! a per-run seed needs a seed input on the op, which the op registry does not have yet.

use super::init::float_input;
use super::{LayerCtx, LayerDef, apply_layer};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

const ATTRS: &[AttrSpec] = &[
    AttrSpec::with_default("p", AttrKind::Float, AttrDefault::Float(0.5), "probability of zeroing, in [0, 1)"),
    AttrSpec::with_default("training", AttrKind::Bool, AttrDefault::Bool(true), "the identity when false"),
];

fn build(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    float_input(ctx.dtype(ins[0])?, "x")?;
    let p = attrs.float("p");
    if !(0.0..1.0).contains(&p) {
        return Err(Error::range("attrs", format!("`p` must be in [0, 1), given {p}")));
    }
    // Masks are seeded by the op's i64 attribute; the top bit is dropped so it stays positive.
    let seed = (ctx.rng.next_u64() >> 1) as i64;
    let da = [("p", Attr::Float(p)), ("training", Attr::Bool(attrs.bool("training"))), ("seed", Attr::Int(seed))];
    Ok(vec![ctx.op1("dropout", &[ins[0]], &da)?])
}

/// `dropout`: zeroes elements with probability p and scales the rest by 1/(1−p) in training
/// mode; the identity otherwise. No parameters.
pub static DROPOUT: LayerDef = LayerDef {
    name: "dropout",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: ATTRS,
    build,
    doc: "inverted dropout (training) or the identity; the mask seed is drawn from the builder's generator, so the \
          mask is fixed per graph (a documented limitation); no parameters",
};

/// Adds dropout with probability `p`.
pub fn dropout(ctx: &mut LayerCtx, x: ValueId, p: f64, training: bool) -> Result<ValueId> {
    Ok(apply_layer(ctx, &DROPOUT, &[x], &[("p", Attr::Float(p)), ("training", Attr::Bool(training))])?[0])
}
