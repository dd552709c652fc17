//! Optimizer hyper-parameters: the config enum, its validation, and construction by name with typed attributes.

use super::Optimizer;
use super::adagrad::Adagrad;
use super::adam::Adam;
use super::lazy_adam::LazyAdam;
use super::rowwise_adagrad::RowwiseAdagrad;
use super::sgd::Sgd;
use crate::error::{Error, Result};
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

/// Hyper-parameters; [`OptimizerConfig::build`] gives the stateful optimizer. The learning rate
/// is not here: it is passed to every [`Optimizer::update`] (from an `LrSchedule`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// Heavy-ball SGD: `v = μv + g (+wd·w in g); w -= lr·v` (Nesterov: `w -= lr·(g + μv)`).
    Sgd {
        /// Momentum μ in [0, 1); 0 keeps no state.
        momentum: f64,
        /// Nesterov momentum (needs μ > 0).
        nesterov: bool,
        /// L2 penalty added to the gradient, >= 0.
        weight_decay: f64,
    },
    /// Adam with L2 decay added to the gradient; bias-corrected.
    Adam {
        /// First-moment decay in [0, 1).
        beta1: f64,
        /// Second-moment decay in [0, 1).
        beta2: f64,
        /// Denominator term, > 0.
        eps: f64,
        /// L2 penalty added to the gradient, >= 0.
        weight_decay: f64,
    },
    /// AdamW: Adam with decoupled decay `w *= 1 − lr·wd` before the step.
    AdamW {
        /// First-moment decay in [0, 1).
        beta1: f64,
        /// Second-moment decay in [0, 1).
        beta2: f64,
        /// Denominator term, > 0.
        eps: f64,
        /// Decoupled decay, >= 0.
        weight_decay: f64,
    },
    /// Adagrad with an initial accumulator value.
    Adagrad {
        /// Denominator term, > 0.
        eps: f64,
        /// The value every `sum` element starts at, >= 0.
        initial_accumulator: f64,
        /// L2 penalty added to the gradient, >= 0.
        weight_decay: f64,
    },
    /// Row-wise Adagrad for embedding tables (ALGORITHMS.md §5, FBGEMM/TorchRec).
    RowwiseAdagrad {
        /// Denominator term, > 0 (TorchRec's default 1e-10).
        eps: f64,
        /// Decay, >= 0: L2 into the gradient, or decoupled.
        weight_decay: f64,
        /// Decoupled decay `w *= 1 − lr·wd` instead of L2.
        decoupled_decay: bool,
    },
    /// Lazy Adam: only touched rows and their moments change (TF LazyAdam semantics).
    LazyAdam {
        /// First-moment decay in [0, 1).
        beta1: f64,
        /// Second-moment decay in [0, 1).
        beta2: f64,
        /// Denominator term, > 0.
        eps: f64,
    },
}

const fn float(name: &'static str, default: f64, doc: &'static str) -> AttrSpec {
    AttrSpec::with_default(name, AttrKind::Float, AttrDefault::Float(default), doc)
}

static SGD: [AttrSpec; 3] = [
    float("momentum", 0.0, "momentum μ in [0, 1)"),
    AttrSpec::with_default("nesterov", AttrKind::Bool, AttrDefault::Bool(false), "Nesterov momentum (needs μ > 0)"),
    float("weight_decay", 0.0, "L2 penalty added to the gradient"),
];
static ADAM: [AttrSpec; 4] = [
    float("beta1", 0.9, "first-moment decay in [0, 1)"),
    float("beta2", 0.999, "second-moment decay in [0, 1)"),
    float("eps", 1e-8, "denominator term, > 0"),
    float("weight_decay", 0.0, "L2 penalty added to the gradient"),
];
static ADAMW: [AttrSpec; 4] = [
    float("beta1", 0.9, "first-moment decay in [0, 1)"),
    float("beta2", 0.999, "second-moment decay in [0, 1)"),
    float("eps", 1e-8, "denominator term, > 0"),
    float("weight_decay", 0.01, "decoupled decay: w *= 1 - lr*wd"),
];
static ADAGRAD: [AttrSpec; 3] = [
    float("eps", 1e-10, "denominator term, > 0"),
    float("initial_accumulator", 0.0, "starting value of the sum of squares, >= 0"),
    float("weight_decay", 0.0, "L2 penalty added to the gradient"),
];
static ROWWISE_ADAGRAD: [AttrSpec; 3] = [
    float("eps", 1e-10, "denominator term, > 0"),
    float("weight_decay", 0.0, "decay: L2 into the gradient, or decoupled"),
    AttrSpec::with_default("decoupled_decay", AttrKind::Bool, AttrDefault::Bool(false), "w *= 1 - lr*wd instead of L2"),
];
static LAZY_ADAM: [AttrSpec; 3] = [
    float("beta1", 0.9, "first-moment decay in [0, 1)"),
    float("beta2", 0.999, "second-moment decay in [0, 1)"),
    float("eps", 1e-8, "denominator term, > 0"),
];

/// Every optimizer name with its attributes.
const NAMES: [(&str, &[AttrSpec]); 6] = [
    ("sgd", &SGD),
    ("adam", &ADAM),
    ("adamw", &ADAMW),
    ("adagrad", &ADAGRAD),
    ("rowwise_adagrad", &ROWWISE_ADAGRAD),
    ("lazy_adam", &LAZY_ADAM),
];

impl OptimizerConfig {
    /// The stateful optimizer for these hyper-parameters (call [`OptimizerConfig::validate`]
    /// first for a config not made by [`OptimizerConfig::from_name`]).
    pub fn build(&self) -> Box<dyn Optimizer> {
        match *self {
            OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => {
                Box::new(Sgd::new(momentum, nesterov, weight_decay))
            }
            OptimizerConfig::Adam { beta1, beta2, eps, weight_decay } => {
                Box::new(Adam::new(beta1, beta2, eps, weight_decay, false))
            }
            OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => {
                Box::new(Adam::new(beta1, beta2, eps, weight_decay, true))
            }
            OptimizerConfig::Adagrad { eps, initial_accumulator, weight_decay } => {
                Box::new(Adagrad::new(eps, initial_accumulator, weight_decay))
            }
            OptimizerConfig::RowwiseAdagrad { eps, weight_decay, decoupled_decay } => {
                Box::new(RowwiseAdagrad::new(eps, weight_decay, decoupled_decay))
            }
            OptimizerConfig::LazyAdam { beta1, beta2, eps } => Box::new(LazyAdam::new(beta1, beta2, eps)),
        }
    }

    /// The config for `name` (`"sgd"`, `"adam"`, `"adamw"`, `"adagrad"`, `"rowwise_adagrad"`,
    /// `"lazy_adam"`) with typed attributes; omitted ones take the defaults that
    /// [`OptimizerConfig::attr_specs`] lists (PyTorch's, TorchRec's for row-wise Adagrad; AdamW
    /// `weight_decay` 0.01). Int values are accepted for float attributes. Unknown names or
    /// attributes, wrong kinds and out-of-range values are errors naming them.
    pub fn from_name(name: &str, attrs: &[(&str, Attr)]) -> Result<OptimizerConfig> {
        let specs = Self::attr_specs(name)?;
        let widened: Vec<(&str, Attr)> = attrs
            .iter()
            .map(|(n, v)| match (v, specs.iter().find(|s| s.name == *n)) {
                (Attr::Int(i), Some(s)) if matches!(s.kind, AttrKind::Float) => (*n, Attr::Float(*i as f64)),
                _ => (*n, v.clone()),
            })
            .collect();
        let a = Attrs::resolve(&format!("optimizer `{name}`"), specs, &widened)?;
        let config = match name {
            "sgd" => OptimizerConfig::Sgd {
                momentum: a.float("momentum"),
                nesterov: a.bool("nesterov"),
                weight_decay: a.float("weight_decay"),
            },
            "adam" => OptimizerConfig::Adam {
                beta1: a.float("beta1"),
                beta2: a.float("beta2"),
                eps: a.float("eps"),
                weight_decay: a.float("weight_decay"),
            },
            "adamw" => OptimizerConfig::AdamW {
                beta1: a.float("beta1"),
                beta2: a.float("beta2"),
                eps: a.float("eps"),
                weight_decay: a.float("weight_decay"),
            },
            "adagrad" => OptimizerConfig::Adagrad {
                eps: a.float("eps"),
                initial_accumulator: a.float("initial_accumulator"),
                weight_decay: a.float("weight_decay"),
            },
            "rowwise_adagrad" => OptimizerConfig::RowwiseAdagrad {
                eps: a.float("eps"),
                weight_decay: a.float("weight_decay"),
                decoupled_decay: a.bool("decoupled_decay"),
            },
            _ => OptimizerConfig::LazyAdam { beta1: a.float("beta1"), beta2: a.float("beta2"), eps: a.float("eps") },
        };
        config.validate()?;
        Ok(config)
    }

    /// The attributes `name` accepts, with their kinds, defaults and one-line docs.
    pub fn attr_specs(name: &str) -> Result<&'static [AttrSpec]> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(|| {
            let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            Error::NotFound(format!("optimizer `{name}` (known: {})", known.join(", ")))
        })
    }

    /// The registry name (`"adam"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
            OptimizerConfig::AdamW { .. } => "adamw",
            OptimizerConfig::Adagrad { .. } => "adagrad",
            OptimizerConfig::RowwiseAdagrad { .. } => "rowwise_adagrad",
            OptimizerConfig::LazyAdam { .. } => "lazy_adam",
        }
    }

    /// Checks every value is in its range (see the variants' fields); the error names the
    /// optimizer, the attribute and the value.
    pub fn validate(&self) -> Result<()> {
        let n = self.name();
        match *self {
            OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => {
                unit(n, "momentum", momentum)?;
                non_negative(n, "weight_decay", weight_decay)?;
                if nesterov && momentum == 0.0 {
                    return Err(Error::invalid("nesterov", format!("{n}: Nesterov momentum needs momentum > 0")));
                }
                Ok(())
            }
            OptimizerConfig::Adam { beta1, beta2, eps, weight_decay }
            | OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => {
                unit(n, "beta1", beta1)?;
                unit(n, "beta2", beta2)?;
                positive(n, "eps", eps)?;
                non_negative(n, "weight_decay", weight_decay)
            }
            OptimizerConfig::Adagrad { eps, initial_accumulator, weight_decay } => {
                positive(n, "eps", eps)?;
                non_negative(n, "initial_accumulator", initial_accumulator)?;
                non_negative(n, "weight_decay", weight_decay)
            }
            OptimizerConfig::RowwiseAdagrad { eps, weight_decay, .. } => {
                positive(n, "eps", eps)?;
                non_negative(n, "weight_decay", weight_decay)
            }
            OptimizerConfig::LazyAdam { beta1, beta2, eps } => {
                unit(n, "beta1", beta1)?;
                unit(n, "beta2", beta2)?;
                positive(n, "eps", eps)
            }
        }
    }
}

fn unit(optimizer: &str, arg: &'static str, v: f64) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::range(arg, format!("{optimizer}: `{arg}` must be in [0, 1), given {v}")))
    }
}

fn non_negative(optimizer: &str, arg: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::range(arg, format!("{optimizer}: `{arg}` must be finite and >= 0, given {v}")))
    }
}

fn positive(optimizer: &str, arg: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        // eps = 0 would divide 0 by 0 wherever a gradient and its history are zero.
        Err(Error::range(arg, format!("{optimizer}: `{arg}` must be finite and > 0, given {v}")))
    }
}
