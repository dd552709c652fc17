//! Embedding tables: `embedding` (one row per id, optional hashing) and `embedding_bag` (sum/mean/max of bags of rows).

use super::{LayerCtx, LayerDef, apply_layer, float_dtype, positive};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};
use crate::tensor::Tensor;

const EMBEDDING_ATTRS: &[AttrSpec] = &[
    AttrSpec::required("num", AttrKind::Int, "number of rows (the vocabulary), >= 1"),
    AttrSpec::required("dim", AttrKind::Int, "row width, >= 1"),
    AttrSpec::with_default(
        "hashing",
        AttrKind::Bool,
        AttrDefault::Bool(false),
        "take ids modulo num (Euclidean: negative ids too); otherwise an id outside [0, num) is an error",
    ),
    AttrSpec::with_default("std", AttrKind::Float, AttrDefault::Float(0.01), "rows are drawn from N(0, std)"),
    AttrSpec::with_default("dtype", AttrKind::Str, AttrDefault::Str("f32"), "table dtype: f32, f64, f16 or bf16"),
];

const BAG_ATTRS: &[AttrSpec] = &[
    AttrSpec::required("num", AttrKind::Int, "number of rows (the vocabulary), >= 1"),
    AttrSpec::required("dim", AttrKind::Int, "row width, >= 1"),
    AttrSpec::with_default("mode", AttrKind::Str, AttrDefault::Str("mean"), "\"sum\", \"mean\" or \"max\""),
    AttrSpec::with_default("std", AttrKind::Float, AttrDefault::Float(0.01), "rows are drawn from N(0, std)"),
    AttrSpec::with_default("dtype", AttrKind::Str, AttrDefault::Str("f32"), "table dtype: f32, f64, f16 or bf16"),
];

/// Adds the table `<prefix>/weight` `[num, dim]` drawn from N(0, std).
fn table(ctx: &mut LayerCtx, attrs: &Attrs) -> Result<(ValueId, usize)> {
    let (num, dim) = (positive(attrs, "num")?, positive(attrs, "dim")?);
    let std = attrs.float("std");
    if !(std.is_finite() && std >= 0.0) {
        return Err(Error::range("attrs", format!("`std` must be finite and >= 0, given {std}")));
    }
    let dtype = float_dtype("dtype", attrs.str("dtype"))?;
    let w = Tensor::rand_normal(&[num, dim], 0.0, std, dtype, Device::Cpu, ctx.rng)?;
    Ok((ctx.param("weight", &w, true)?, num))
}

/// Checks that `v` holds integer ids.
fn ids_input(ctx: &LayerCtx, v: ValueId, arg: &str) -> Result<()> {
    let dt = ctx.dtype(v)?;
    if !matches!(dt, crate::DType::I32 | crate::DType::I64) {
        return Err(Error::InvalidDtype {
            arg: "inputs",
            msg: format!("`{arg}` must hold i32 or i64 ids, given {dt}"),
        });
    }
    Ok(())
}

/// `ids mod num` with the result in [0, num) for any sign (truncating division twice).
fn hashed(ctx: &mut LayerCtx, ids: ValueId, num: usize) -> Result<ValueId> {
    let dt = ctx.dtype(ids)?;
    let n = ctx.builder.constant(&Tensor::full(&[], num as f64, dt, Device::Cpu)?)?;
    let rem = |c: &mut LayerCtx, v: ValueId| -> Result<ValueId> {
        let q = c.op1("div", &[v, n], &[])?;
        let qn = c.op1("mul", &[q, n], &[])?;
        c.op1("sub", &[v, qn], &[])
    };
    // r in (−num, num); r + num in (0, 2·num); its remainder is the Euclidean one.
    let r = rem(ctx, ids)?;
    let shifted = ctx.op1("add", &[r, n], &[])?;
    rem(ctx, shifted)
}

fn build_embedding(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    ids_input(ctx, ins[0], "ids")?;
    let (w, num) = table(ctx, attrs)?;
    if attrs.bool("hashing") && ctx.dtype(ins[0])? == crate::DType::I32 && num > i32::MAX as usize / 2 {
        return Err(Error::range("attrs", format!("`num` {num} is too large to hash i32 ids")));
    }
    let ids = if attrs.bool("hashing") { hashed(ctx, ins[0], num)? } else { ins[0] };
    Ok(vec![ctx.op1("embedding", &[w, ids], &[])?])
}

/// `embedding`: ids (i32/i64, any shape) → `[..., dim]`, rows of `<prefix>/weight`
/// `[num, dim]` ~ N(0, std). Graph autodiff gives the table a row gradient.
pub static EMBEDDING: LayerDef = LayerDef {
    name: "embedding",
    inputs: &["ids"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: EMBEDDING_ATTRS,
    build: build_embedding,
    doc: "rows of <prefix>/weight [num, dim] ~ N(0, std) (std 0.01) picked by integer ids of any shape -> [..., dim]; \
          ids outside [0, num) are an error unless `hashing` (ids taken modulo num, Euclidean)",
};

fn build_bag(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    ids_input(ctx, ins[0], "indices")?;
    ids_input(ctx, ins[1], "offsets")?;
    let mode = attrs.str("mode");
    if !matches!(mode, "sum" | "mean" | "max") {
        return Err(Error::invalid("attrs", format!("`mode` must be \"sum\", \"mean\" or \"max\", given {mode:?}")));
    }
    let (w, _) = table(ctx, attrs)?;
    let mut args = vec![w, ins[0], ins[1]];
    args.extend(ins.get(2));
    Ok(vec![ctx.op1("embedding_bag", &args, &[("mode", Attr::Str(mode.to_string()))])?])
}

/// `embedding_bag`: per bag b (`indices[offsets[b]..offsets[b+1]]`) the sum, mean or max of
/// the rows of `<prefix>/weight` `[num, dim]` ~ N(0, std) → `[B, dim]`; optional
/// per-sample weights (mode sum). The table gets a row gradient.
pub static EMBEDDING_BAG: LayerDef = LayerDef {
    name: "embedding_bag",
    inputs: &["indices", "offsets", "per_sample_weights"],
    optional_inputs: 1,
    outputs: &["out"],
    attrs: BAG_ATTRS,
    build: build_bag,
    doc: "per bag the sum/mean/max of rows of <prefix>/weight [num, dim] ~ N(0, std) (std 0.01) -> [B, dim], \
          through the embedding_bag op; optional per_sample_weights (mode sum); empty bags give zeros",
};

/// Adds an embedding table `[num, dim]` (N(0, 0.01), no hashing) looked up by `ids`.
pub fn embedding(ctx: &mut LayerCtx, ids: ValueId, num: usize, dim: usize) -> Result<ValueId> {
    let attrs = [("num", Attr::Int(num as i64)), ("dim", Attr::Int(dim as i64))];
    Ok(apply_layer(ctx, &EMBEDDING, &[ids], &attrs)?[0])
}

/// Adds an embedding bag `[num, dim]` (N(0, 0.01)) with `mode` over `indices` and `offsets`
/// (and per-sample weights, mode sum).
pub fn embedding_bag(
    ctx: &mut LayerCtx,
    indices: ValueId,
    offsets: ValueId,
    per_sample_weights: Option<ValueId>,
    num: usize,
    dim: usize,
    mode: &str,
) -> Result<ValueId> {
    let attrs = [("num", Attr::Int(num as i64)), ("dim", Attr::Int(dim as i64)), ("mode", Attr::Str(mode.into()))];
    let mut ins = vec![indices, offsets];
    ins.extend(per_sample_weights);
    Ok(apply_layer(ctx, &EMBEDDING_BAG, &ins, &attrs)?[0])
}
