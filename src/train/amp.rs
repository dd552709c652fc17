//! The trainer's mixed-precision wiring: the autocast pass on the training graph, the scaled loss it differentiates, and the scaler state in checkpoints.

use super::trainer::TrainerOptions;
use crate::amp::{GradScaler, check_autocast_dtype};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::graph::builder::apply_op;
use crate::graph::dim::ValueType;
use crate::graph::ir::{Graph, NodeKind};
use crate::graph::passes;
use crate::ops::{Attrs, binary::MUL};
use crate::tensor::Tensor;

/// The graph input carrying the loss scale S (a 0-d f32) when loss scaling is on.
pub const LOSS_SCALE_INPUT: &str = "amp/loss_scale";
/// The graph output `loss · S` that the scaled backward pass starts from.
pub const SCALED_LOSS_OUTPUT: &str = "amp/scaled_loss";
/// Checkpoint entry of the loss scale (0-d f32).
pub const SCALE_ENTRY: &str = "scale";
/// Checkpoint entry of the growth tracker (0-d i64).
pub const TRACKER_ENTRY: &str = "growth_tracker";

/// What the trainer builds from its options.
pub(crate) struct AmpSetup {
    /// The model after the autocast pass (the model itself without autocast): what the
    /// forward executor runs.
    pub forward: Graph,
    /// The graph to differentiate and the loss output to start from.
    pub train: Graph,
    /// Output name the backward pass starts from.
    pub diff_loss: String,
    /// The scaler when loss scaling is on (disabled for bf16 autocast).
    pub scaler: Option<GradScaler>,
    /// The autocast pass's statistics line.
    pub pass_stat: Option<String>,
}

/// Applies `options.autocast` and `options.loss_scaling` to `graph`.
pub(crate) fn prepare(graph: &Graph, loss: &str, options: &TrainerOptions) -> Result<AmpSetup> {
    let (forward, pass_stat) = match options.autocast {
        Some(d) => {
            check_autocast_dtype(d)?;
            let g = passes::autocast(graph, d)?;
            let stat = g.pass_stats().last().cloned();
            (g, stat)
        }
        None => (graph.clone(), None),
    };
    let Some(scaler_options) = &options.loss_scaling else {
        return Ok(AmpSetup { train: forward.clone(), forward, diff_loss: loss.to_string(), scaler: None, pass_stat });
    };
    let scaler = GradScaler::for_dtype(scaler_options.clone(), options.autocast.unwrap_or(DType::F32))?;
    if !scaler.is_enabled() {
        return Ok(AmpSetup {
            train: forward.clone(),
            forward,
            diff_loss: loss.to_string(),
            scaler: Some(scaler),
            pass_stat,
        });
    }
    let mut train = forward.clone();
    let loss_v = train.output(loss)?;
    let loss_ty = train.value(loss_v).ty.clone();
    if loss_ty.dtype != DType::F32 || loss_ty.numel() != Some(1) {
        return Err(Error::invalid(
            "loss",
            format!("loss scaling needs an f32 scalar loss; `{loss}` has type {loss_ty}"),
        ));
    }
    train.check_new_name(LOSS_SCALE_INPUT)?;
    let scale_node = train.push(
        NodeKind::Input { name: LOSS_SCALE_INPUT.into() },
        vec![],
        vec![ValueType::fixed(DType::F32, &[])],
    )?;
    let scale_v = train.node(scale_node).outputs[0];
    let scaled = apply_op(&mut train, &MUL, &[loss_v, scale_v], Attrs::none())?[0];
    train.push_output(SCALED_LOSS_OUTPUT, scaled)?;
    Ok(AmpSetup { forward, train, diff_loss: SCALED_LOSS_OUTPUT.to_string(), scaler: Some(scaler), pass_stat })
}

/// The scaler's checkpoint entries.
pub(crate) fn scaler_entries(scaler: &GradScaler) -> Result<Vec<(String, Tensor)>> {
    let (scale, tracker) = scaler.state();
    Ok(vec![
        (SCALE_ENTRY.to_string(), Tensor::from_slice(&[scale], &[])?),
        (TRACKER_ENTRY.to_string(), Tensor::from_slice(&[tracker as i64], &[])?),
    ])
}

/// Restores a scaler from checkpoint entries (absent entries, as in checkpoints from before
/// loss scaling, leave it as it is).
pub(crate) fn load_scaler(scaler: &mut GradScaler, entries: &[(String, Tensor)]) -> Result<()> {
    let find = |name: &str| entries.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let (Some(scale), Some(tracker)) = (find(SCALE_ENTRY), find(TRACKER_ENTRY)) else { return Ok(()) };
    let scale = scale.item()? as f32;
    let tracker = tracker.item()?;
    if !(tracker >= 0.0 && tracker <= u32::MAX as f64) {
        return Err(Error::invalid("amp/growth_tracker", format!("must be a count, given {tracker}")));
    }
    scaler.load_state(scale, tracker as u32)
}
