//! Runs an epilogue node: a matrix product whose finished blocks go through a fused program on the thread that computed them.

use crate::backend::cpu::gemm::GemmFloat;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::Product;
use crate::ops::fused::{FusedFloat, FusedProgram, PreparedFused, with_epilogue};
use crate::ops::linalg::{LINEAR, MATMUL, WeightPanels, linear_f, matmul_2d};
use crate::ops::{InferCtx, Meta};
use crate::tensor::Tensor;

/// The product of `inputs[..product.arity]` with `program` run over it (reading
/// `inputs[product.arity..]` too): the bits of the product op followed by the program's ops.
/// The product's own inference checks its inputs first, as an op call would. `panels`, when
/// given, hold a linear product's weight (see [`linear_f`]).
pub(super) fn run_epilogue(
    product: &Product,
    program: &FusedProgram,
    prepared: &PreparedFused,
    inputs: &[Tensor],
    panels: Option<&WeightPanels>,
) -> Result<Tensor> {
    if inputs.len() < product.arity {
        return Err(Error::Internal(format!("epilogue: {} inputs for a product of {}", inputs.len(), product.arity)));
    }
    let (args, rest) = inputs.split_at(product.arity);
    let metas: Vec<Meta> = args.iter().map(|t| Meta::new(t.shape(), t.dtype())).collect();
    let out = (product.op.infer)(&InferCtx { op: product.op.name, inputs: &metas, attrs: &product.attrs })?;
    let [Meta { shape, dtype }] = out.as_slice() else {
        return Err(Error::Internal(format!("epilogue: `{}` has {} outputs", product.op.name, out.len())));
    };
    match dtype {
        DType::F32 => run::<f32>(product, program, prepared, args, rest, shape, panels),
        DType::F64 => run::<f64>(product, program, prepared, args, rest, shape, panels),
        d => Err(Error::Unsupported(format!("epilogue: {d} products take no epilogue (f32 and f64 only)"))),
    }
}

fn run<T: GemmFloat + FusedFloat>(
    product: &Product,
    program: &FusedProgram,
    prepared: &PreparedFused,
    args: &[Tensor],
    rest: &[Tensor],
    shape: &[usize],
    panels: Option<&WeightPanels>,
) -> Result<Tensor> {
    with_epilogue::<T>(program, prepared, rest, shape, |then| {
        if std::ptr::eq(product.op, &LINEAR) {
            linear_f::<T>(&args[0], &args[1], args.get(2), shape, Some(then), panels)
        } else if std::ptr::eq(product.op, &MATMUL) && args.iter().all(|a| a.ndim() == 2) {
            matmul_2d::<T>(&args[0], &args[1], then)
        } else {
            Err(Error::Internal(format!("epilogue: `{}` of {:?} takes no epilogue", product.op.name, shape)))
        }
    })
}
