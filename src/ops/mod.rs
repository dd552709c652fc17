//! The op registry: every op is defined once (`OpDef`) and reached by eager calls, graphs, the C ABI and bindings.
//!
//! Families live in their own modules; each lists its ops in an `OPS` slice that the
//! registry collects. Rust callers use the `Tensor` methods in [`methods`] (or
//! [`dispatch::call`]); other callers go by name through [`registry`].

pub mod activation;
pub mod attr;
pub mod binary;
pub mod compare;
pub mod control;
pub mod conv;
pub mod def;
pub mod dispatch;
pub mod fields;
pub mod fused;
pub mod hook;
pub mod index;
pub mod linalg;
pub mod loss;
pub mod methods;
pub mod movement;
pub mod nn;
pub mod pointwise;
pub mod reduce;
pub mod registry;
pub mod structure;
pub mod unary;
pub mod util;

pub use attr::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};
pub use def::{ArgSpec, BackwardFn, Emitter, ForwardCtx, GradCtx, GradVal, InferCtx, Meta, OpDef, OpKind, Val};
pub use dispatch::{apply, call, call_named};
pub use pointwise::{BinaryBody, Pointwise, UnaryBody};
pub use registry::{all_ops, find_op};
