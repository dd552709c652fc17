//! `embedding_fields`: one row per field from that field's own table, the sparse features of a CTR model in one op.

use super::dispatch::{attrs_of, call1};
use super::index::{elems, emit_flat_i64, par_rows, prefetch_lookup, require_index};
use super::movement::{SLICE, emit_reshape};
use super::util::one;
use super::{ArgSpec, Attr, Attrs, Emitter, ForwardCtx, GradCtx, GradVal, InferCtx, Meta, OpDef, OpKind, Val};
use crate::backend::cpu::elementwise::new_host;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::with_dtype;

/// Row `indices[..., f]` of table `f` for every field `f`. It gives what `F` `embedding`
/// lookups of the index columns joined along a new second-last dimension give, bit for bit;
/// the graph's lookup pass turns that pattern (2F + 1 nodes) into one of these.
pub static EMBEDDING_FIELDS: OpDef = OpDef {
    name: "embedding_fields",
    kind: OpKind::Movement,
    doc: "indices [..., F] (i32/i64) into F tables [V_f, D] of one dtype: row indices[..., f] of table f -> [..., F, D]; \
          each table gets a row gradient",
    inputs: &[ArgSpec::req("indices"), ArgSpec::many("tables")],
    outputs: &["out"],
    attrs: &[],
    infer: infer_fields,
    forward: fields_forward,
    backward: Some(fields_backward),
    pure: true,
    pointwise: None,
};

/// This family's ops.
pub static OPS: &[&OpDef] = &[&EMBEDDING_FIELDS];

fn infer_fields(ctx: &InferCtx) -> Result<Vec<Meta>> {
    let (idx, tables) = (&ctx.inputs[0], &ctx.inputs[1..]);
    require_index(ctx.op, "indices", idx.dtype)?;
    if idx.shape.last() != Some(&tables.len()) {
        return Err(Error::shape(
            "indices",
            format!(
                "{}: the last dimension of indices {:?} must be the {} fields (tables)",
                ctx.op,
                idx.shape,
                tables.len()
            ),
        ));
    }
    let first = &tables[0];
    if first.shape.len() != 2 {
        return Err(Error::shape(
            "tables",
            format!("{}: table 0 must be [rows, dim], given {:?}", ctx.op, first.shape),
        ));
    }
    for (f, t) in tables.iter().enumerate().skip(1) {
        if t.dtype != first.dtype {
            return Err(Error::InvalidDtype {
                arg: "tables",
                msg: format!(
                    "{}: table {f} is {}, table 0 is {}; the tables must share one dtype",
                    ctx.op, t.dtype, first.dtype
                ),
            });
        }
        if t.shape.len() != 2 || t.shape[1] != first.shape[1] {
            return Err(Error::shape(
                "tables",
                format!("{}: table {f} is {:?}, expected [rows, {}] like table 0", ctx.op, t.shape, first.shape[1]),
            ));
        }
    }
    let mut shape = idx.shape.clone();
    shape.push(first.shape[1]);
    one(shape, first.dtype)
}

/// The table row of every lookup, in order (lookup `k` is field `k % fields`), each checked
/// against its own table's rows.
fn field_rows(idx: &Tensor, tables: &[Tensor]) -> Result<Vec<usize>> {
    let fields = tables.len();
    let check = |k: usize, i: i64| {
        let (f, rows) = (k % fields, tables[k % fields].shape()[0]);
        if i >= 0 && (i as u64) < rows as u64 {
            Ok(i as usize)
        } else {
            Err(Error::range("indices", format!("index {i} of field {f} is outside its table's rows 0..{rows}")))
        }
    };
    let n = idx.numel();
    match idx.dtype() {
        DType::I64 => elems::<i64>(idx)?[..n].iter().enumerate().map(|(k, &i)| check(k, i)).collect(),
        DType::I32 => elems::<i32>(idx)?[..n].iter().enumerate().map(|(k, &i)| check(k, i as i64)).collect(),
        d => Err(Error::InvalidDtype { arg: "indices", msg: format!("needs i32 or i64 indices, given {d}") }),
    }
}

fn fields_forward(ctx: &ForwardCtx) -> Result<Vec<Tensor>> {
    let idx = ctx.inputs[0].raw_contiguous()?;
    let tables = ctx.inputs[1..].iter().map(Tensor::raw_contiguous).collect::<Result<Vec<_>>>()?;
    let (fields, width) = (tables.len(), tables[0].shape()[1]);
    let rows = field_rows(&idx, &tables)?;
    Ok(vec![with_dtype!(tables[0].dtype(), T => {
        let data = tables.iter().map(elems::<T>).collect::<Result<Vec<_>>>()?;
        new_host::<T>(&ctx.outputs[0].shape, |out| {
            par_rows(out, width, |first, chunk| {
                for (k, (row, &r)) in chunk.chunks_exact_mut(width).zip(&rows[first..]).enumerate() {
                    prefetch_lookup(&rows, first + k, |at, j| &data[at % fields][j * width..(j + 1) * width]);
                    row.copy_from_slice(&data[(first + k) % fields][r * width..(r + 1) * width]);
                }
            })
        })?
    })])
}

/// Table `f`'s gradient: the rows `g[..., f, :]` at the indices `indices[..., f]`.
fn fields_backward(e: &mut dyn Emitter, c: &GradCtx) -> Result<Vec<Option<GradVal>>> {
    let (idx, g) = (c.inputs[0], c.grads[0].expect("one output"));
    let shape = e.meta(idx).shape;
    let field_dim = shape.len() - 1;
    let lookups: usize = shape[..field_dim].iter().product();
    let width = e.meta(c.inputs[1]).shape[1];
    let column = |e: &mut dyn Emitter, v: Val, f: usize| -> Result<Val> {
        let at =
            [("dim", Attr::Int(field_dim as i64)), ("start", Attr::Int(f as i64)), ("end", Attr::Int(f as i64 + 1))];
        e.op(&SLICE, &[v], attrs_of(&SLICE, &at)?)
    };
    let mut grads = vec![None];
    for f in 0..c.inputs.len() - 1 {
        if !c.needs(f + 1) {
            grads.push(None);
            continue;
        }
        let col = column(e, idx, f)?;
        let indices = emit_flat_i64(e, col)?;
        let rows = column(e, g, f)?;
        let rows = emit_reshape(e, rows, &[lookups, width])?;
        grads.push(Some(GradVal::Rows { indices, rows }));
    }
    Ok(grads)
}

impl Tensor {
    /// Row `self[..., f]` of `tables[f]` for every field `f`: `self` holds `[..., F]` i32/i64
    /// indices, the `F` tables are `[V_f, D]` of one dtype, and the result is `[..., F, D]`.
    /// Each table gets a row gradient.
    pub fn embedding_fields(&self, tables: &[&Tensor]) -> Result<Tensor> {
        let mut inputs = Vec::with_capacity(1 + tables.len());
        inputs.push(self);
        inputs.extend_from_slice(tables);
        call1(&EMBEDDING_FIELDS, &inputs, &Attrs::none())
    }
}
