//! GradScaler: dynamic loss scaling exactly as ALGORITHMS.md §2 (PyTorch's `torch/amp/grad_scaler.py` and `amp_update_scale`).
//!
//! The loss is multiplied by the scale S before backward, so small f16 gradients do not
//! flush to zero. [`GradScaler::unscale`] multiplies the f32 master gradients by
//! `inv = (1/S computed in f64) as f32` and reports whether any is non-finite; the caller
//! skips the optimizer step then. [`GradScaler::update`] halves S after an overflow and
//! doubles it after `growth_interval` clean steps in a row (only when the doubled value is
//! finite). With bf16 (whose range is f32's) the scaler is disabled and does nothing.
//! After `max_consecutive_skips` skipped steps in a row `update` fails with
//! [`Error::NonFinite`], so a model whose gradients are NaN at any scale does not stall silently.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tensor::grad::Gradient;

/// The scaler's settings (PyTorch's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct GradScalerOptions {
    /// Initial scale (2^16).
    pub init_scale: f32,
    /// Factor applied after `growth_interval` clean steps (2.0).
    pub growth_factor: f32,
    /// Factor applied after a step with a non-finite gradient (0.5).
    pub backoff_factor: f32,
    /// Clean steps in a row before the scale grows (2000).
    pub growth_interval: u32,
    /// Skipped steps in a row after which `update` reports an error (50).
    pub max_consecutive_skips: u32,
}

impl Default for GradScalerOptions {
    fn default() -> Self {
        GradScalerOptions {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            max_consecutive_skips: 50,
        }
    }
}

impl GradScalerOptions {
    /// Checks every setting; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return Err(Error::invalid("init_scale", format!("must be finite and > 0, given {}", self.init_scale)));
        }
        if !(self.growth_factor.is_finite() && self.growth_factor > 1.0) {
            return Err(Error::invalid(
                "growth_factor",
                format!("must be finite and > 1, given {}", self.growth_factor),
            ));
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            return Err(Error::invalid("backoff_factor", format!("must be in (0, 1), given {}", self.backoff_factor)));
        }
        if self.growth_interval == 0 {
            return Err(Error::invalid("growth_interval", "must be at least 1, given 0"));
        }
        if self.max_consecutive_skips == 0 {
            return Err(Error::invalid("max_consecutive_skips", "must be at least 1, given 0"));
        }
        Ok(())
    }
}

/// Dynamic loss scaling state. Driven by one thread at a time (`&mut self`).
#[derive(Debug, Clone)]
pub struct GradScaler {
    options: GradScalerOptions,
    enabled: bool,
    scale: f32,
    growth_tracker: u32,
    consecutive_skips: u32,
    skipped_total: u64,
}

impl GradScaler {
    /// An enabled scaler with `options` (validated).
    pub fn new(options: GradScalerOptions) -> Result<GradScaler> {
        options.validate()?;
        Ok(GradScaler {
            scale: options.init_scale,
            options,
            enabled: true,
            growth_tracker: 0,
            consecutive_skips: 0,
            skipped_total: 0,
        })
    }

    /// A scaler for training whose low-precision dtype is `dtype`: disabled (a no-op) for
    /// bf16, which has f32's exponent range; enabled otherwise.
    pub fn for_dtype(options: GradScalerOptions, dtype: DType) -> Result<GradScaler> {
        let mut s = GradScaler::new(options)?;
        s.enabled = dtype != DType::BF16;
        Ok(s)
    }

    /// Whether the scaler acts (false: scale 1, nothing is unscaled or skipped).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The current scale S (1 when disabled).
    pub fn scale(&self) -> f32 {
        if self.enabled { self.scale } else { 1.0 }
    }

    /// Clean steps since the last change of the scale.
    pub fn growth_tracker(&self) -> u32 {
        self.growth_tracker
    }

    /// Steps skipped in a row up to now.
    pub fn consecutive_skips(&self) -> u32 {
        self.consecutive_skips
    }

    /// Steps skipped since this scaler was made (not saved in checkpoints).
    pub fn skipped_steps(&self) -> u64 {
        self.skipped_total
    }

    /// The settings.
    pub fn options(&self) -> &GradScalerOptions {
        &self.options
    }

    /// The factor gradients are multiplied by: `1/S` computed in f64, rounded once to f32.
    pub fn inv_scale(&self) -> f32 {
        (1.0 / self.scale() as f64) as f32
    }

    /// `loss · S` as a 0-d f32 tensor: the seed of a scaled backward pass.
    pub fn scale_tensor(&self) -> Result<Tensor> {
        Tensor::from_slice(&[self.scale()], &[])
    }

    /// Multiplies every gradient by [`GradScaler::inv_scale`] in place and returns whether
    /// any element is NaN or infinite (then the step must be skipped). Gradients must be f32
    /// or f64 master gradients; f16/bf16 gradients are rejected. Disabled: nothing changes
    /// and the result is `false`.
    pub fn unscale(&self, grads: &mut [Gradient]) -> Result<bool> {
        if !self.enabled {
            return Ok(false);
        }
        let inv = self.inv_scale();
        let mut found_inf = false;
        for g in grads.iter_mut() {
            let t = match g {
                Gradient::Dense(t) => t,
                Gradient::Rows { rows, .. } => rows,
            };
            found_inf |= unscale_tensor(t, inv)?;
        }
        Ok(found_inf)
    }

    /// Adjusts the scale after a step: `found_inf` halves it and resets the growth tracker;
    /// otherwise the tracker counts up and at `growth_interval` the doubled scale is adopted
    /// when finite. Fails with [`Error::NonFinite`] once `max_consecutive_skips` steps in a
    /// row were skipped (the state is updated first). Disabled: nothing changes.
    pub fn update(&mut self, found_inf: bool) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if found_inf {
            self.scale *= self.options.backoff_factor;
            self.growth_tracker = 0;
            self.consecutive_skips += 1;
            self.skipped_total += 1;
            if self.consecutive_skips >= self.options.max_consecutive_skips {
                return Err(Error::NonFinite(format!(
                    "loss scaling skipped {} steps in a row because gradients were NaN or infinite (scale now {:e}); \
                     the gradients are not finite at any scale: check the model, the data and the learning rate",
                    self.consecutive_skips, self.scale
                )));
            }
        } else {
            self.consecutive_skips = 0;
            let successful = self.growth_tracker + 1;
            if successful >= self.options.growth_interval {
                let grown = self.scale * self.options.growth_factor;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.growth_tracker = 0;
            } else {
                self.growth_tracker = successful;
            }
        }
        Ok(())
    }

    /// The state a checkpoint keeps: (scale, growth tracker).
    pub fn state(&self) -> (f32, u32) {
        (self.scale, self.growth_tracker)
    }

    /// Restores [`GradScaler::state`]; a scale that is not finite and positive is an error.
    pub fn load_state(&mut self, scale: f32, growth_tracker: u32) -> Result<()> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::invalid("amp/scale", format!("a loss scale must be finite and > 0, given {scale}")));
        }
        self.scale = scale;
        self.growth_tracker = growth_tracker;
        self.consecutive_skips = 0;
        Ok(())
    }
}

/// `t *= inv` in place; true when an element is not finite.
fn unscale_tensor(t: &mut Tensor, inv: f32) -> Result<bool> {
    match t.dtype() {
        DType::F32 => {
            let data = t.host_data_mut::<f32>()?;
            let mut bad = false;
            for x in data.iter_mut() {
                bad |= !x.is_finite();
                *x *= inv;
            }
            Ok(bad)
        }
        DType::F64 => {
            let data = t.host_data_mut::<f64>()?;
            let mut bad = false;
            for x in data.iter_mut() {
                bad |= !x.is_finite();
                *x *= inv as f64;
            }
            Ok(bad)
        }
        other => Err(Error::InvalidDtype {
            arg: "grads",
            msg: format!(
                "loss scaling unscales f32 or f64 master gradients, given a {other} gradient (keep master weights in f32)"
            ),
        }),
    }
}
