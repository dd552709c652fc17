//! Convolution and pooling layers over `[N, C, H, W]`.

use super::init::{Init, float_input, zeros};
use super::{LayerCtx, LayerDef, apply_layer, positive};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

const CONV_ATTRS: &[AttrSpec] = &[
    AttrSpec::required("out_channels", AttrKind::Int, "output channels O, >= 1"),
    AttrSpec::required("kernel_size", AttrKind::Ints, "window [kh, kw], each >= 1"),
    AttrSpec::with_default("stride", AttrKind::Ints, AttrDefault::Ints(&[1, 1]), "[sh, sw], each >= 1"),
    AttrSpec::with_default("padding", AttrKind::Ints, AttrDefault::Ints(&[0, 0]), "zero padding [ph, pw]"),
    AttrSpec::with_default("dilation", AttrKind::Ints, AttrDefault::Ints(&[1, 1]), "[dh, dw], each >= 1"),
    AttrSpec::with_default("groups", AttrKind::Int, AttrDefault::Int(1), "channel groups; divides C and O"),
    AttrSpec::with_default("bias", AttrKind::Bool, AttrDefault::Bool(true), "add a bias `<prefix>/bias` [O]"),
];

fn build_conv(ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    let x = ins[0];
    let dtype = float_input(ctx.dtype(x)?, "x")?;
    if ctx.dims(x)?.len() != 4 {
        return Err(Error::shape("inputs", format!("`x` must be [N, C, H, W], given {}", ctx.builder.value_type(x)?)));
    }
    let c = ctx.fixed_dim("conv2d", "x", x, 1)?;
    let o = positive(attrs, "out_channels")?;
    let k = attrs.ints("kernel_size");
    if k.len() != 2 || k.iter().any(|&v| v < 1) {
        return Err(Error::invalid("attrs", format!("`kernel_size` must be [kh, kw], each >= 1, given {k:?}")));
    }
    let g = attrs.int("groups");
    if g < 1 || c % g as usize != 0 || o % g as usize != 0 {
        return Err(Error::invalid(
            "attrs",
            format!("`groups` {g} must be >= 1 and divide the input channels {c} and out_channels {o}"),
        ));
    }
    let (kh, kw) = (k[0] as usize, k[1] as usize);
    let cg = c / g as usize;
    let fan_in = cg * kh * kw;
    let w = Init::KaimingUniform.tensor(&[o, cg, kh, kw], fan_in, dtype, ctx.rng)?;
    let w = ctx.param("weight", &w, true)?;
    let mut args = vec![x, w];
    if attrs.bool("bias") {
        args.push(ctx.param("bias", &zeros(&[o], dtype)?, true)?);
    }
    let ca: Vec<(&str, Attr)> = ["stride", "padding", "dilation"]
        .into_iter()
        .map(|n| (n, Attr::Ints(attrs.ints(n).to_vec())))
        .chain([("groups", Attr::Int(g))])
        .collect();
    Ok(vec![ctx.op1("conv2d", &args, &ca)?])
}

/// `conv2d`: x `[N, C, H, W]` → `[N, O, H', W']` with `<prefix>/weight` `[O, C/groups, kh, kw]`
/// ~ U(±1/√(C/groups·kh·kw)) (PyTorch's default) and `<prefix>/bias` `[O]` = 0.
pub static CONV2D: LayerDef = LayerDef {
    name: "conv2d",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: CONV_ATTRS,
    build: build_conv,
    doc: "2-D convolution of x [N, C, H, W]: <prefix>/weight [O, C/groups, kh, kw] ~ U(±1/√fan_in) with fan_in = \
          C/groups·kh·kw (PyTorch's default), <prefix>/bias [O] = 0",
};

/// Forwards a pooling layer to its op with the same attributes.
fn pool(op: &'static crate::ops::OpDef, ctx: &mut LayerCtx, ins: &[ValueId], attrs: &Attrs) -> Result<Vec<ValueId>> {
    float_input(ctx.dtype(ins[0])?, "x")?;
    let pairs: Vec<(&str, Attr)> = attrs.pairs().map(|(n, v)| (n, v.clone())).collect();
    Ok(vec![ctx.op1(op.name, &[ins[0]], &pairs)?])
}

/// `max_pool2d`: the op of that name as a layer (no parameters).
pub static MAX_POOL2D: LayerDef = LayerDef {
    name: "max_pool2d",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: crate::ops::conv::MAX_POOL2D.attrs,
    build: |c, i, a| pool(&crate::ops::conv::MAX_POOL2D, c, i, a),
    doc: "max pooling of x [N, C, H, W] (the max_pool2d op); no parameters",
};

/// `avg_pool2d`: the op of that name as a layer (no parameters).
pub static AVG_POOL2D: LayerDef = LayerDef {
    name: "avg_pool2d",
    inputs: &["x"],
    optional_inputs: 0,
    outputs: &["out"],
    attrs: crate::ops::conv::AVG_POOL2D.attrs,
    build: |c, i, a| pool(&crate::ops::conv::AVG_POOL2D, c, i, a),
    doc: "average pooling of x [N, C, H, W] (the avg_pool2d op); no parameters",
};

/// Adds a conv2d layer with `out_channels`, a square `kernel`, `stride` and `padding`.
pub fn conv2d(
    ctx: &mut LayerCtx,
    x: ValueId,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<ValueId> {
    let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
    let attrs = [
        ("out_channels", Attr::Int(out_channels as i64)),
        ("kernel_size", Attr::Ints(vec![k, k])),
        ("stride", Attr::Ints(vec![s, s])),
        ("padding", Attr::Ints(vec![p, p])),
    ];
    Ok(apply_layer(ctx, &CONV2D, &[x], &attrs)?[0])
}
