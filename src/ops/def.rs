//! `OpDef`: the one definition of an op — signature, attributes, inference, kernels and gradient rule.

use super::attr::{AttrSpec, Attrs};
use crate::dtype::DType;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::tensor::dims::Dims;

/// How an op touches memory; passes (fusion, autocast) ask the group, not the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// One output element from the same-index element of each same-shape input.
    Elementwise,
    /// Elementwise after NumPy broadcasting of the inputs.
    Broadcast,
    /// Combines elements along axes (sum, max, softmax's inner reductions).
    Reduce,
    /// Rearranges or selects elements without arithmetic (views, concat, gather).
    Movement,
    /// Matrix products (matmul, linear, conv): take elementwise epilogues when fused.
    MatmulLike,
    /// Anything else; fusion never crosses it.
    Opaque,
}

impl OpKind {
    /// Lower-case name for dumps and introspection.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Elementwise => "elementwise",
            OpKind::Broadcast => "broadcast",
            OpKind::Reduce => "reduce",
            OpKind::Movement => "movement",
            OpKind::MatmulLike => "matmul_like",
            OpKind::Opaque => "opaque",
        }
    }
}

/// An input or output slot of an op.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    /// Name used in messages and introspection.
    pub name: &'static str,
    /// The slot may be absent (only trailing inputs).
    pub optional: bool,
    /// The slot takes any number of tensors (only the last input; `concat`).
    pub variadic: bool,
}

impl ArgSpec {
    /// A required slot.
    pub const fn req(name: &'static str) -> Self {
        ArgSpec { name, optional: false, variadic: false }
    }
    /// An optional trailing slot.
    pub const fn opt(name: &'static str) -> Self {
        ArgSpec { name, optional: true, variadic: false }
    }
    /// A variadic trailing slot (one or more tensors).
    pub const fn many(name: &'static str) -> Self {
        ArgSpec { name, optional: false, variadic: true }
    }
}

/// What inference knows about a value: its shape and dtype.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Meta {
    /// Dimensions.
    pub shape: Dims,
    /// Element type.
    pub dtype: DType,
}

impl Meta {
    /// A meta from parts.
    pub fn new(shape: impl Into<Dims>, dtype: DType) -> Meta {
        Meta { shape: shape.into(), dtype }
    }

    /// The meta of a tensor.
    pub fn of(t: &Tensor) -> Meta {
        Meta { shape: t.shape().into(), dtype: t.dtype() }
    }

    /// Element count.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Everything shape and dtype inference sees.
pub struct InferCtx<'a> {
    /// The op's name, for error messages.
    pub op: &'static str,
    /// The inputs' metas.
    pub inputs: &'a [Meta],
    /// Resolved attributes.
    pub attrs: &'a Attrs,
}

/// Everything a forward kernel sees.
pub struct ForwardCtx<'a> {
    /// The op's name, for error messages.
    pub op: &'static str,
    /// Input tensors (any layout; kernels make them contiguous when they need to).
    pub inputs: &'a [Tensor],
    /// Resolved attributes.
    pub attrs: &'a Attrs,
    /// The inferred outputs.
    pub outputs: &'a [Meta],
}

/// A value inside a gradient computation: an index into the emitter's table, so that one
/// rule serves eager autograd (values are tensors) and graph autodiff (values are nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Val(pub usize);

/// A gradient: dense, or the rows of a table that a lookup touched (embedding ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradVal {
    /// A gradient with the input's shape.
    Dense(Val),
    /// Row gradients: `indices` (i64, `[n]`) and `rows` (`[n, ...]`) of an input whose
    /// other rows have zero gradient. Repeated indices add.
    Rows {
        /// Which rows.
        indices: Val,
        /// Their gradients.
        rows: Val,
    },
}

/// Builds the ops of a gradient computation. Eager autograd runs them at once; graph
/// autodiff adds them as nodes.
pub trait Emitter {
    /// Applies `op` to `inputs` and returns its outputs.
    fn emit(&mut self, op: &'static OpDef, inputs: &[Val], attrs: Attrs) -> Result<Vec<Val>>;
    /// Shape and dtype of a value.
    fn meta(&self, v: Val) -> Meta;
    /// A 0-d constant.
    fn scalar(&mut self, value: f64, dtype: DType) -> Result<Val>;
}

impl dyn Emitter + '_ {
    /// Applies a single-output op.
    pub fn op(&mut self, op: &'static OpDef, inputs: &[Val], attrs: Attrs) -> Result<Val> {
        Ok(self.emit(op, inputs, attrs)?[0])
    }
}

/// Everything a gradient rule sees.
pub struct GradCtx<'a> {
    /// Forward inputs.
    pub inputs: &'a [Val],
    /// Forward outputs.
    pub outputs: &'a [Val],
    /// Gradients of the outputs (`None`: that output did not reach the loss).
    pub grads: &'a [Option<Val>],
    /// The forward call's attributes.
    pub attrs: &'a Attrs,
    /// Which inputs want a gradient; rules may skip the work for the others (their result
    /// is dropped either way). Empty means all.
    pub needs_grad: &'a [bool],
}

impl GradCtx<'_> {
    /// Whether input `i` wants a gradient (rules skip costly ones that nobody reads).
    pub fn needs(&self, i: usize) -> bool {
        self.needs_grad.get(i).copied().unwrap_or(true)
    }
}

/// Shape and dtype inference.
pub type InferFn = fn(&InferCtx) -> Result<Vec<Meta>>;
/// The forward computation (dispatches to the device's kernel).
pub type ForwardFn = fn(&ForwardCtx) -> Result<Vec<Tensor>>;
/// The gradient rule: gradients of the inputs (`None` for inputs without one), built with ops.
pub type BackwardFn = fn(&mut dyn Emitter, &GradCtx) -> Result<Vec<Option<GradVal>>>;

/// The one definition of an op.
pub struct OpDef {
    /// Unique name (`"add"`), the key of the registry and the C API.
    pub name: &'static str,
    /// Memory-access group.
    pub kind: OpKind,
    /// One line for introspection.
    pub doc: &'static str,
    /// Input slots.
    pub inputs: &'static [ArgSpec],
    /// Output names (a variadic op like `split` lists one and returns several).
    pub outputs: &'static [&'static str],
    /// Accepted attributes.
    pub attrs: &'static [AttrSpec],
    /// Shape and dtype inference.
    pub infer: InferFn,
    /// The forward computation.
    pub forward: ForwardFn,
    /// The gradient rule; `None` for ops without gradients (comparisons, argmax, ...).
    pub backward: Option<BackwardFn>,
    /// False for ops that draw random numbers or have effects; constant folding skips them.
    pub pure: bool,
    /// The chunk body of an elementwise float op (f32/f64), which lets the fusion pass run a
    /// chain of such ops in one pass over memory; `None` for every other op.
    pub pointwise: Option<&'static super::pointwise::Pointwise>,
}

impl std::fmt::Debug for OpDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpDef({})", self.name)
    }
}
