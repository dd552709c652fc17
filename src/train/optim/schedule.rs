//! Learning-rate schedules: constant, step decay, cosine annealing, linear warm-up in front of any of them.

use crate::error::{Error, Result};
use crate::ops::{Attr, AttrDefault, AttrKind, AttrSpec, Attrs};

/// A learning rate as a function of the step. `step` counts the updates already applied, so the
/// first update uses `lr(base, 0)`.
#[derive(Debug, Clone, PartialEq)]
pub enum LrSchedule {
    /// `base` at every step.
    Constant,
    /// `base · gamma^⌊step / every⌋` (`every` 0 never decays).
    Step {
        /// Steps between decays, > 0.
        every: u64,
        /// Factor per decay, in (0, 1].
        gamma: f64,
    },
    /// Cosine from `base` at step 0 to `min_lr` at `total_steps`, then `min_lr`:
    /// `min_lr + (base − min_lr)·(1 + cos(π·step/total_steps))/2`.
    Cosine {
        /// Steps of the half cosine, > 0.
        total_steps: u64,
        /// The final learning rate (absolute, not a fraction of `base`), >= 0.
        min_lr: f64,
    },
    /// Linear warm-up from 0: `base·step/steps` for `step < steps`, then `then` counted from the
    /// end of the warm-up (`then.lr(base, step − steps)`).
    Warmup {
        /// Warm-up steps.
        steps: u64,
        /// The schedule after the warm-up.
        then: Box<LrSchedule>,
    },
}

static CONSTANT: [AttrSpec; 1] = [WARMUP];
static STEP: [AttrSpec; 3] = [
    AttrSpec::required("every", AttrKind::Int, "steps between decays, > 0"),
    AttrSpec::with_default("gamma", AttrKind::Float, AttrDefault::Float(0.1), "factor per decay, in (0, 1]"),
    WARMUP,
];
static COSINE: [AttrSpec; 3] = [
    AttrSpec::required("total_steps", AttrKind::Int, "steps from base to min_lr (after any warm-up), > 0"),
    AttrSpec::with_default("min_lr", AttrKind::Float, AttrDefault::Float(0.0), "final learning rate, >= 0"),
    WARMUP,
];
const WARMUP: AttrSpec = AttrSpec::with_default(
    "warmup_steps",
    AttrKind::Int,
    AttrDefault::Int(0),
    "linear warm-up from 0 over this many steps before the schedule (0: none)",
);
const NAMES: [(&str, &[AttrSpec]); 3] = [("constant", &CONSTANT), ("step", &STEP), ("cosine", &COSINE)];

impl LrSchedule {
    /// The learning rate for update number `step` (0-based) given the base rate.
    pub fn lr(&self, base_lr: f64, step: u64) -> f64 {
        match self {
            LrSchedule::Constant => base_lr,
            LrSchedule::Step { every, gamma } => {
                if *every == 0 {
                    return base_lr;
                }
                // powi takes i32; decays beyond that are 0 or 1 anyway for gamma in (0, 1].
                let k = (step / every).min(i32::MAX as u64) as i32;
                base_lr * gamma.powi(k)
            }
            LrSchedule::Cosine { total_steps, min_lr } => {
                if step >= *total_steps {
                    return *min_lr;
                }
                let progress = step as f64 / *total_steps as f64;
                min_lr + (base_lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            LrSchedule::Warmup { steps, then } => {
                if step < *steps {
                    base_lr * step as f64 / *steps as f64
                } else {
                    then.lr(base_lr, step - steps)
                }
            }
        }
    }

    /// A schedule by name with typed attributes: `"constant"`; `"step"` (`every` int required,
    /// `gamma` float 0.1); `"cosine"` (`total_steps` int required, `min_lr` float 0). Each also
    /// takes `warmup_steps` (int, default 0), which puts a [`LrSchedule::Warmup`] in front.
    /// Unknown names or attributes, wrong kinds and out-of-range values are errors naming them.
    pub fn from_name(name: &str, attrs: &[(&str, Attr)]) -> Result<LrSchedule> {
        let specs = NAMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or_else(|| {
            let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            Error::NotFound(format!("learning-rate schedule `{name}` (known: {})", known.join(", ")))
        })?;
        let a = Attrs::resolve(&format!("schedule `{name}`"), specs, attrs)?;
        let count = |arg: &'static str| -> Result<u64> {
            let v = a.int(arg);
            u64::try_from(v)
                .map_err(|_| Error::range(arg, format!("schedule `{name}`: `{arg}` must be >= 0, given {v}")))
        };
        let inner = match name {
            "constant" => LrSchedule::Constant,
            "step" => LrSchedule::Step { every: count("every")?, gamma: a.float("gamma") },
            _ => LrSchedule::Cosine { total_steps: count("total_steps")?, min_lr: a.float("min_lr") },
        };
        let warmup = count("warmup_steps")?;
        let schedule = if warmup > 0 { LrSchedule::Warmup { steps: warmup, then: Box::new(inner) } } else { inner };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Checks every value is in its range (see the variants' fields).
    pub fn validate(&self) -> Result<()> {
        match self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Step { every, gamma } => {
                if *every == 0 {
                    return Err(Error::range("every", "step schedule: `every` must be > 0, given 0"));
                }
                if !(*gamma > 0.0 && *gamma <= 1.0) {
                    return Err(Error::range(
                        "gamma",
                        format!("step schedule: `gamma` must be in (0, 1], given {gamma}"),
                    ));
                }
                Ok(())
            }
            LrSchedule::Cosine { total_steps, min_lr } => {
                if *total_steps == 0 {
                    return Err(Error::range("total_steps", "cosine schedule: `total_steps` must be > 0, given 0"));
                }
                if !(min_lr.is_finite() && *min_lr >= 0.0) {
                    return Err(Error::range(
                        "min_lr",
                        format!("cosine schedule: `min_lr` must be finite and >= 0, given {min_lr}"),
                    ));
                }
                Ok(())
            }
            LrSchedule::Warmup { then, .. } => then.validate(),
        }
    }
}
