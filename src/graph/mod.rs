//! Static graphs: the IR, the builder, the tracer, graph autodiff, optimisation passes and the memory plan.

pub mod autodiff;
pub mod builder;
pub mod dim;
mod dump;
pub mod infer;
pub mod ir;
pub mod passes;
pub mod serialize;
pub mod trace;

pub use autodiff::{ParamGrad, append_gradients};
pub use builder::GraphBuilder;
pub use dim::{Dim, ValueType};
pub use ir::{Graph, Node, NodeId, NodeKind, Product, Value, ValueId};
pub use trace::{Tracer, trace};
