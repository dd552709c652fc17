//! The factorisation machine's pairwise term in its O(nk) form, with an optional first-order term.

use super::init::float_input;
use super::{LayerCtx, LayerDef, apply_layer};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::ops::{Attr, Attrs};

fn build(ctx: &mut LayerCtx, ins: &[ValueId], _attrs: &Attrs) -> Result<Vec<ValueId>> {
    let v = ins[0];
    float_input(ctx.dtype(v)?, "v")?;
    if ctx.dims(v)?.len() != 3 {
        return Err(Error::shape(
            "inputs",
            format!("`v` must be [batch, fields, k], given {}", ctx.builder.value_type(v)?),
        ));
    }
    let axes = |a: &[i64]| ("axes", Attr::Ints(a.to_vec()));
    // ½ Σ_k [(Σ_f v)² − Σ_f v²]: the sum over pairs f < g of <v_f, v_g>, in O(fields·k).
    let s = ctx.op1("sum", &[v], &[axes(&[1])])?;
    let s2 = ctx.op1("mul", &[s, s], &[])?;
    let vv = ctx.op1("mul", &[v, v], &[])?;
    let q = ctx.op1("sum", &[vv], &[axes(&[1])])?;
    let diff = ctx.op1("sub", &[s2, q], &[])?;
    let pair = ctx.op1("sum", &[diff], &[axes(&[1])])?;
    let mut out = ctx.op1("mul_scalar", &[pair], &[("value", Attr::Float(0.5))])?;
    if let Some(&first) = ins.get(1) {
        if ctx.dtype(first)? != ctx.dtype(v)? || ctx.dims(first)?.len() != 2 {
            return Err(Error::shape(
                "inputs",
                format!(
                    "`first_order` must be [batch, n] of the dtype of `v`, given {}",
                    ctx.builder.value_type(first)?
                ),
            ));
        }
        let lin = ctx.op1("sum", &[first], &[axes(&[1])])?;
        out = ctx.op1("add", &[out, lin], &[])?;
    }
    Ok(vec![out])
}

/// `fm`: v `[batch, fields, k]` (and optional first-order terms `[batch, n]`) → `[batch]`:
/// `½ Σ_k [(Σ_f v_fk)² − Σ_f v_fk²] (+ Σ_i first_i)`. No parameters.
pub static FM: LayerDef = LayerDef {
    name: "fm",
    inputs: &["v", "first_order"],
    optional_inputs: 1,
    outputs: &["out"],
    attrs: &[],
    build,
    doc: "factorisation machine over field embeddings v [batch, fields, k] -> [batch]: ½ Σ_k[(Σ_f v)² − Σ_f v²] \
          (the sum of <v_f, v_g> over pairs f < g, in O(fields·k)), plus Σ first_order [batch, n] when given; \
          no parameters",
};

/// Adds the FM term over `v` (plus `first_order`, summed, when given).
pub fn fm(ctx: &mut LayerCtx, v: ValueId, first_order: Option<ValueId>) -> Result<ValueId> {
    let mut ins = vec![v];
    ins.extend(first_order);
    Ok(apply_layer(ctx, &FM, &ins, &[])?[0])
}
