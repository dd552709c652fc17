//! Typed op attributes: the specs an op declares (with defaults) and the resolved values a call carries.

use crate::error::{Error, Result};
use std::fmt;

/// The kind of an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrKind {
    /// A signed 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// A list of integers (axes, shapes, strides).
    Ints,
    /// A string (modes, names).
    Str,
    /// A boolean.
    Bool,
}

impl AttrKind {
    /// Lower-case name for messages and introspection.
    pub fn name(self) -> &'static str {
        match self {
            AttrKind::Int => "int",
            AttrKind::Float => "float",
            AttrKind::Ints => "ints",
            AttrKind::Str => "string",
            AttrKind::Bool => "bool",
        }
    }
}

/// One attribute value.
#[derive(Debug, Clone)]
pub enum Attr {
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Integer list.
    Ints(Vec<i64>),
    /// String.
    Str(String),
    /// Boolean.
    Bool(bool),
}

impl PartialEq for Attr {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Attr::Int(a), Attr::Int(b)) => a == b,
            // Bitwise, so that attribute sets can be compared and hashed (CSE) consistently.
            (Attr::Float(a), Attr::Float(b)) => a.to_bits() == b.to_bits(),
            (Attr::Ints(a), Attr::Ints(b)) => a == b,
            (Attr::Str(a), Attr::Str(b)) => a == b,
            (Attr::Bool(a), Attr::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Attr {
    /// The value's kind.
    pub fn kind(&self) -> AttrKind {
        match self {
            Attr::Int(_) => AttrKind::Int,
            Attr::Float(_) => AttrKind::Float,
            Attr::Ints(_) => AttrKind::Ints,
            Attr::Str(_) => AttrKind::Str,
            Attr::Bool(_) => AttrKind::Bool,
        }
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Int(v) => write!(f, "{v}"),
            Attr::Float(v) => write!(f, "{v:?}"),
            Attr::Ints(v) => write!(f, "{v:?}"),
            Attr::Str(v) => write!(f, "{v:?}"),
            Attr::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// A default written in an op's static definition.
#[derive(Debug, Clone, Copy)]
pub enum AttrDefault {
    /// The attribute must be given.
    Required,
    /// The attribute may be omitted and then has no value (`Attrs::opt_*` gives `None`).
    Optional,
    /// Integer default.
    Int(i64),
    /// Float default.
    Float(f64),
    /// Integer-list default.
    Ints(&'static [i64]),
    /// String default.
    Str(&'static str),
    /// Boolean default.
    Bool(bool),
}

impl AttrDefault {
    fn value(self) -> Option<Attr> {
        match self {
            AttrDefault::Required | AttrDefault::Optional => None,
            AttrDefault::Int(v) => Some(Attr::Int(v)),
            AttrDefault::Float(v) => Some(Attr::Float(v)),
            AttrDefault::Ints(v) => Some(Attr::Ints(v.to_vec())),
            AttrDefault::Str(v) => Some(Attr::Str(v.to_string())),
            AttrDefault::Bool(v) => Some(Attr::Bool(v)),
        }
    }
}

/// An attribute an op accepts.
#[derive(Debug, Clone, Copy)]
pub struct AttrSpec {
    /// Name, as passed by callers.
    pub name: &'static str,
    /// Kind of value.
    pub kind: AttrKind,
    /// Default, or whether it is required.
    pub default: AttrDefault,
    /// One line for introspection.
    pub doc: &'static str,
}

impl AttrSpec {
    /// A required attribute.
    pub const fn required(name: &'static str, kind: AttrKind, doc: &'static str) -> Self {
        AttrSpec { name, kind, default: AttrDefault::Required, doc }
    }

    /// An attribute with a default.
    pub const fn with_default(name: &'static str, kind: AttrKind, default: AttrDefault, doc: &'static str) -> Self {
        AttrSpec { name, kind, default, doc }
    }
}

/// Attribute values resolved against an op's specs: every known attribute in spec order,
/// defaults filled in, kinds checked.
#[derive(Debug, Clone)]
pub struct Attrs {
    specs: &'static [AttrSpec],
    values: Vec<Option<Attr>>,
}

impl Attrs {
    /// Resolves `given` (name, value) pairs for op `op`: unknown names, wrong kinds, repeats
    /// and missing required attributes are errors naming the op and the attribute.
    pub fn resolve(op: &str, specs: &'static [AttrSpec], given: &[(&str, Attr)]) -> Result<Attrs> {
        let mut values: Vec<Option<Attr>> = vec![None; specs.len()];
        let mut seen = vec![false; specs.len()];
        for (name, value) in given {
            let Some(i) = specs.iter().position(|s| s.name == *name) else {
                let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                return Err(Error::invalid("attrs", format!("{op}: unknown attribute `{name}` (accepted: {known:?})")));
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(Error::invalid("attrs", format!("{op}: attribute `{name}` given twice")));
            }
            if value.kind() != specs[i].kind {
                return Err(Error::invalid(
                    "attrs",
                    format!(
                        "{op}: attribute `{name}` must be {}, given {} ({value})",
                        specs[i].kind.name(),
                        value.kind().name()
                    ),
                ));
            }
            values[i] = Some(value.clone());
        }
        for (i, spec) in specs.iter().enumerate() {
            if values[i].is_none() {
                if let AttrDefault::Required = spec.default {
                    return Err(Error::invalid(
                        "attrs",
                        format!("{op}: missing required attribute `{}` ({})", spec.name, spec.kind.name()),
                    ));
                }
                values[i] = spec.default.value();
            }
        }
        Ok(Attrs { specs, values })
    }

    /// Attributes for an op that takes none.
    pub fn none() -> Attrs {
        Attrs { specs: &[], values: Vec::new() }
    }

    fn get(&self, name: &str) -> Option<&Attr> {
        let i =
            self.specs.iter().position(|s| s.name == name).unwrap_or_else(|| panic!("op has no attribute `{name}`"));
        self.values[i].as_ref()
    }

    /// An int attribute that is required or has a default.
    pub fn int(&self, name: &str) -> i64 {
        self.opt_int(name).unwrap_or_else(|| panic!("attribute `{name}` has no value"))
    }

    /// An optional int attribute.
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Attr::Int(v)) => Some(*v),
            _ => None,
        }
    }

    /// A float attribute that is required or has a default.
    pub fn float(&self, name: &str) -> f64 {
        self.opt_float(name).unwrap_or_else(|| panic!("attribute `{name}` has no value"))
    }

    /// An optional float attribute.
    pub fn opt_float(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Some(Attr::Float(v)) => Some(*v),
            _ => None,
        }
    }

    /// An int-list attribute that is required or has a default.
    pub fn ints(&self, name: &str) -> &[i64] {
        self.opt_ints(name).unwrap_or_else(|| panic!("attribute `{name}` has no value"))
    }

    /// An optional int-list attribute.
    pub fn opt_ints(&self, name: &str) -> Option<&[i64]> {
        match self.get(name) {
            Some(Attr::Ints(v)) => Some(v),
            _ => None,
        }
    }

    /// A string attribute that is required or has a default.
    pub fn str(&self, name: &str) -> &str {
        match self.get(name) {
            Some(Attr::Str(v)) => v,
            _ => panic!("attribute `{name}` has no value"),
        }
    }

    /// A bool attribute that is required or has a default.
    pub fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            Some(Attr::Bool(v)) => *v,
            _ => panic!("attribute `{name}` has no value"),
        }
    }

    /// (name, value) pairs of the attributes that have a value, in spec order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &Attr)> + '_ {
        self.specs.iter().zip(&self.values).filter_map(|(s, v)| v.as_ref().map(|v| (s.name, v)))
    }
}

impl PartialEq for Attrs {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.specs, other.specs) && self.values == other.values
    }
}

impl fmt::Display for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.pairs().map(|(n, v)| format!("{n}={v}")).collect();
        f.write_str(&parts.join(", "))
    }
}
