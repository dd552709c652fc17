//! Dimensions that may be symbolic (a batch size known only at run time) and value types built from them.

use crate::dtype::DType;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fmt;

/// One dimension of a graph value: a fixed size or a named symbol bound at run time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A size known when the graph is built.
    Fixed(usize),
    /// A size named by a symbol (`"batch"`); every use of one symbol has one size per run.
    Sym(String),
}

impl Dim {
    /// A symbolic dimension.
    pub fn sym(name: &str) -> Dim {
        Dim::Sym(name.to_string())
    }

    /// The fixed size, if any.
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

/// Fixed dimensions from a concrete shape.
pub fn fixed_dims(shape: &[usize]) -> Vec<Dim> {
    shape.iter().map(|&n| Dim::Fixed(n)).collect()
}

/// The dtype and (possibly symbolic) shape of a graph value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueType {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub dims: Vec<Dim>,
}

impl ValueType {
    /// A type from parts.
    pub fn new(dtype: DType, dims: Vec<Dim>) -> ValueType {
        ValueType { dtype, dims }
    }

    /// The type of a concrete shape.
    pub fn fixed(dtype: DType, shape: &[usize]) -> ValueType {
        ValueType { dtype, dims: fixed_dims(shape) }
    }

    /// The concrete shape when no dimension is symbolic.
    pub fn concrete(&self) -> Option<Vec<usize>> {
        self.dims.iter().map(Dim::fixed).collect()
    }

    /// Element count when every dimension is fixed.
    pub fn numel(&self) -> Option<usize> {
        self.concrete().map(|s| s.iter().product())
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.dims.iter().map(Dim::to_string).collect();
        write!(f, "{}[{}]", self.dtype, dims.join(", "))
    }
}

/// Symbol sizes of one run, bound from the feeds and checked for consistency.
#[derive(Debug, Default, Clone)]
pub struct Bindings(HashMap<String, usize>);

impl Bindings {
    /// The size bound to `symbol`, if a feed bound it.
    pub fn get(&self, symbol: &str) -> Option<usize> {
        self.0.get(symbol).copied()
    }

    /// Checks `shape` against `ty` and binds its symbols; a fixed size that differs, a rank
    /// that differs or a symbol seen with another size is an error naming `what`.
    pub fn bind(&mut self, what: &str, ty: &ValueType, shape: &[usize]) -> Result<()> {
        if shape.len() != ty.dims.len() {
            return Err(Error::shape(
                "feeds",
                format!("`{what}` expects {ty} (rank {}), given {shape:?}", ty.dims.len()),
            ));
        }
        for (i, (d, &n)) in ty.dims.iter().zip(shape).enumerate() {
            match d {
                Dim::Fixed(m) if *m != n => {
                    return Err(Error::shape(
                        "feeds",
                        format!("`{what}` expects {ty}, given {shape:?} (dimension {i} must be {m})"),
                    ));
                }
                Dim::Fixed(_) => {}
                Dim::Sym(s) => match self.0.get(s) {
                    Some(&m) if m != n => {
                        return Err(Error::shape(
                            "feeds",
                            format!(
                                "`{what}` expects {ty}, given {shape:?}: symbol `{s}` is {m} in another feed, {n} here"
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.0.insert(s.clone(), n);
                    }
                },
            }
        }
        Ok(())
    }
}
