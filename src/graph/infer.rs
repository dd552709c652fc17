//! Shape inference over symbolic dimensions: each symbol stands in as a distinct large prime, the
//! op's own inference runs on those sizes, and the primes are read back as symbols.

use super::dim::{Dim, ValueType};
use crate::error::{Error, Result};
use crate::ops::{Attrs, InferCtx, Meta, OpDef};

/// Sizes that stand for symbols during inference. Primes far above real tensor sizes, so a
/// product or quotient of them cannot be mistaken for one of them.
const STAND_INS: [usize; 8] = [1_000_003, 1_000_033, 1_000_037, 1_000_039, 1_000_081, 1_000_099, 1_000_117, 1_000_121];

/// Smallest stand-in; a dimension at or above it that is no stand-in depends on symbols in a
/// way a graph type cannot express.
const STAND_IN_FLOOR: usize = 1_000_000;

/// Maps symbol names to stand-in sizes and back.
#[derive(Default)]
pub struct SymbolTable {
    names: Vec<String>,
}

impl SymbolTable {
    /// The concrete stand-in shape of a value type.
    pub fn shape_of(&mut self, ty: &ValueType) -> Result<Vec<usize>> {
        ty.dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => Ok(*n),
                Dim::Sym(s) => {
                    let i = match self.names.iter().position(|n| n == s) {
                        Some(i) => i,
                        None => {
                            self.names.push(s.clone());
                            self.names.len() - 1
                        }
                    };
                    STAND_INS.get(i).copied().ok_or_else(|| {
                        Error::Unsupported(format!("more than {} distinct symbolic dimensions", STAND_INS.len()))
                    })
                }
            })
            .collect()
    }

    /// The stand-in meta of a value type. Its element count must fit in `usize` with room for
    /// the byte size (ops multiply sizes freely), which bounds how many symbols one value has.
    pub fn meta_of(&mut self, ty: &ValueType) -> Result<Meta> {
        let shape = self.shape_of(ty)?;
        let fits = shape.iter().try_fold(16usize, |acc, &d| acc.checked_mul(d.max(1))).is_some();
        if !fits {
            return Err(Error::Unsupported(format!(
                "value of type {ty} has too many large or symbolic dimensions for shape inference; give some of them fixed sizes"
            )));
        }
        Ok(Meta::new(shape, ty.dtype))
    }

    /// Reads a stand-in shape back as dimensions; `what` names the node for errors.
    pub fn dims_of(&self, shape: &[usize], what: &str) -> Result<Vec<Dim>> {
        shape
            .iter()
            .map(|&n| match STAND_INS.iter().position(|&s| s == n) {
                Some(i) if i < self.names.len() => Ok(Dim::Sym(self.names[i].clone())),
                _ if n >= STAND_IN_FLOOR && !self.names.is_empty() => Err(Error::Unsupported(format!(
                    "{what}: an output dimension is a combination of symbolic dimensions {:?}; give those inputs fixed sizes",
                    self.names
                ))),
                _ => Ok(Dim::Fixed(n)),
            })
            .collect()
    }

    /// The symbol standing for `n`, if `n` is a stand-in.
    pub fn is_stand_in(&self, n: i64) -> bool {
        STAND_INS[..self.names.len()].iter().any(|&s| s as i64 == n)
    }

    /// The value type of a stand-in meta.
    pub fn type_of(&self, m: &Meta, what: &str) -> Result<ValueType> {
        Ok(ValueType::new(m.dtype, self.dims_of(&m.shape, what)?))
    }
}

/// Infers the output types of `op` applied to inputs of types `inputs`; errors name `what`.
pub fn infer_types(op: &'static OpDef, attrs: &Attrs, inputs: &[ValueType], what: &str) -> Result<Vec<ValueType>> {
    let mut table = SymbolTable::default();
    let metas = inputs.iter().map(|t| table.meta_of(t)).collect::<Result<Vec<_>>>()?;
    let outs = (op.infer)(&InferCtx { op: op.name, inputs: &metas, attrs })
        .map_err(|e| unstand(&table, at_node(what, crate::ops::util::prefix(op.name, e))))?;
    outs.iter().map(|m| table.type_of(m, what)).collect()
}

/// Prefixes an error with the node it happened at.
pub fn at_node(what: &str, e: Error) -> Error {
    crate::ops::util::prefix(what, e)
}

/// Rewrites stand-in sizes in an error message back into symbol names.
fn unstand(table: &SymbolTable, e: Error) -> Error {
    let fix = |msg: String| table.names.iter().zip(STAND_INS).fold(msg, |m, (name, n)| m.replace(&n.to_string(), name));
    match e {
        Error::InvalidArgument { arg, msg } => Error::InvalidArgument { arg, msg: fix(msg) },
        Error::ShapeMismatch { arg, msg } => Error::ShapeMismatch { arg, msg: fix(msg) },
        Error::OutOfRange { arg, msg } => Error::OutOfRange { arg, msg: fix(msg) },
        Error::InvalidDtype { arg, msg } => Error::InvalidDtype { arg, msg: fix(msg) },
        Error::Overflow { arg, msg } => Error::Overflow { arg, msg: fix(msg) },
        Error::Unsupported(m) => Error::Unsupported(fix(m)),
        other => other,
    }
}
