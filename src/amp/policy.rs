//! The autocast precision policy: one table over the registry's op names saying which dtype each op runs in under autocast.
//!
//! Follows PyTorch's `autocast_mode.cpp` lists (ALGORITHMS.md §2), restricted to the ops we
//! have. Every registered op has a deliberate row, so a new op cannot silently miss the
//! policy (a test walks the registry); an op missing from the table is treated as
//! [`Policy::Keep`], the documented default.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::ops::OpDef;

/// What autocast does with an op's floating inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Matrix products: f32 (and other reduced-precision) inputs are cast to the autocast
    /// dtype, where the tensor cores / bf16 dot products give the speed; f64 is left alone.
    Lower,
    /// Ops whose range or accumulation needs f32 (transcendentals, reductions, softmax,
    /// normalisation, losses): f16/bf16 inputs are cast to f32; f64 is left alone.
    F32,
    /// Ops that mix inputs (binary arithmetic, where, concat, scatter): floating inputs are
    /// cast to the widest floating dtype among them, so mixed f32/bf16 operands work.
    Promote,
    /// Everything else runs in the dtype its inputs have (the default).
    Keep,
}

impl Policy {
    /// Lower-case name for dumps and messages.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Lower => "lower_precision",
            Policy::F32 => "fp32",
            Policy::Promote => "promote",
            Policy::Keep => "keep",
        }
    }
}

use Policy::{F32, Keep, Lower, Promote};

/// The table: every registered op, with its policy. Sorted by family as the registry is.
pub const TABLE: &[(&str, Policy)] = &[
    // unary
    ("neg", Keep),
    ("exp", F32),
    ("cast", Keep),
    // An ordering edge for activation checkpointing: returns its input unchanged.
    ("after", Keep),
    ("abs", Keep),
    ("log", F32),
    ("log1p", F32),
    ("sqrt", Keep),
    ("rsqrt", F32),
    ("reciprocal", F32),
    ("sin", Keep),
    ("cos", Keep),
    ("floor", Keep),
    ("ceil", Keep),
    ("round", Keep),
    ("sign", Keep),
    ("clamp", Keep),
    ("clamp_backward", Keep),
    // activation
    ("tanh", Keep),
    ("sigmoid", Keep),
    ("relu", Keep),
    ("relu_backward", Keep),
    ("leaky_relu", Keep),
    ("leaky_relu_backward", Keep),
    ("gelu", Keep),
    ("gelu_backward", Keep),
    ("silu", Keep),
    ("silu_backward", Keep),
    ("softplus", F32),
    ("softplus_backward", Keep),
    // binary
    ("add", Promote),
    ("sub", Promote),
    ("mul", Promote),
    ("div", Promote),
    ("pow", F32),
    ("maximum", Promote),
    ("minimum", Promote),
    ("add_scalar", Keep),
    ("mul_scalar", Keep),
    ("pow_scalar", F32),
    // compare
    ("eq", Promote),
    ("ne", Promote),
    ("lt", Promote),
    ("le", Promote),
    ("gt", Promote),
    ("ge", Promote),
    ("logical_and", Keep),
    ("logical_or", Keep),
    ("logical_not", Keep),
    ("where", Promote),
    // reduce
    ("sum", F32),
    ("sum_to", Keep),
    ("mean", F32),
    ("max", Keep),
    ("min", Keep),
    ("minmax_backward", Keep),
    ("prod", F32),
    ("prod_backward", Keep),
    ("argmax", Keep),
    ("argmin", Keep),
    ("var", F32),
    ("std", F32),
    ("logsumexp", F32),
    // nn
    ("softmax", F32),
    ("log_softmax", F32),
    ("layer_norm", F32),
    ("layer_norm_backward", Keep),
    ("batch_norm", F32),
    ("batch_norm_backward", Keep),
    ("dropout", Keep),
    // loss
    ("mse_loss", F32),
    ("l1_loss", F32),
    ("l1_loss_backward", Keep),
    ("cross_entropy", F32),
    ("cross_entropy_backward", Keep),
    ("nll_loss", F32),
    ("nll_loss_backward", Keep),
    ("binary_cross_entropy_with_logits", F32),
    ("binary_cross_entropy_with_logits_backward", Keep),
    // linalg
    ("matmul", Lower),
    ("bmm", Lower),
    ("linear", Lower),
    // conv
    ("conv2d", Lower),
    ("conv2d_backward_input", Keep),
    ("conv2d_backward_weight", Keep),
    ("max_pool2d", Keep),
    ("max_pool2d_backward", Keep),
    ("avg_pool2d", Keep),
    ("avg_pool2d_backward", Keep),
    // movement
    ("reshape", Keep),
    ("view", Keep),
    ("permute", Keep),
    ("transpose", Keep),
    ("slice", Keep),
    ("slice_backward", Keep),
    ("expand", Keep),
    ("expand_as", Keep),
    ("squeeze", Keep),
    ("unsqueeze", Keep),
    ("contiguous", Keep),
    // structure
    ("concat", Promote),
    ("stack", Promote),
    ("split", Keep),
    ("pad", Keep),
    ("pad_backward", Keep),
    // index
    ("embedding", Keep),
    ("embedding_backward", Keep),
    ("embedding_bag", Keep),
    ("embedding_bag_backward", Keep),
    ("embedding_bag_weights_backward", Keep),
    ("embedding_fields", Keep),
    ("index_select", Keep),
    ("index_add", Promote),
    ("gather", Keep),
    ("scatter_add", Promote),
    ("one_hot", Keep),
];

/// The policy of the op called `name` ([`Policy::Keep`] for a name the table lacks).
pub fn policy_of_name(name: &str) -> Policy {
    TABLE.iter().find(|(n, _)| *n == name).map_or(Keep, |(_, p)| *p)
}

/// The policy of `op`.
pub fn policy_of(op: &OpDef) -> Policy {
    policy_of_name(op.name)
}

/// Checks that `dtype` can be an autocast dtype (f16, bf16 or f32); the error names it.
pub fn check_autocast_dtype(dtype: DType) -> Result<()> {
    match dtype {
        DType::F16 | DType::BF16 | DType::F32 => Ok(()),
        other => Err(Error::InvalidDtype {
            arg: "dtype",
            msg: format!("autocast needs a floating dtype of at most 32 bits (f16, bf16 or f32), given {other}"),
        }),
    }
}

/// The wider of two floating dtypes; f16 and bf16 together widen to f32 (neither holds the other).
pub fn widest(a: DType, b: DType) -> DType {
    let rank = |d: DType| match d {
        DType::F64 => 3,
        DType::F32 => 2,
        _ => 1,
    };
    match (a, b) {
        _ if a == b => a,
        _ if rank(a) != rank(b) => {
            if rank(a) > rank(b) {
                a
            } else {
                b
            }
        }
        // Both 16-bit but different: neither represents the other.
        _ => DType::F32,
    }
}

/// The dtype each input should have under `policy` with autocast dtype `low` (`None`: leave
/// the input as it is). Only floating inputs are ever cast; f64 is never narrowed.
pub fn input_targets(policy: Policy, low: DType, inputs: &[DType]) -> Vec<Option<DType>> {
    let castable = |d: DType| d.is_float() && d != DType::F64;
    match policy {
        Policy::Keep => vec![None; inputs.len()],
        Policy::Lower => inputs.iter().map(|&d| (castable(d) && d != low).then_some(low)).collect(),
        Policy::F32 => inputs.iter().map(|&d| (castable(d) && d != DType::F32).then_some(DType::F32)).collect(),
        Policy::Promote => {
            let floats = inputs.iter().copied().filter(|d| d.is_float());
            let Some(wide) = floats.reduce(widest) else { return vec![None; inputs.len()] };
            inputs.iter().map(|&d| (d.is_float() && d != wide).then_some(wide)).collect()
        }
    }
}
