//! Energy lost to routing skew per MoE layer: the joules GPUs spent waiting in the layer's
//! all-to-all and expert-TP collectives (which is where every rank waits for the slowest
//! expert rank and for the transfers to and from it), minus the same under a balanced routing
//! of the same step.

use super::{EventStep, EventStepError, EventStepModel};
use crate::sim::Knobs;

/// One layer's waiting energy and what skew added to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSkew {
    /// Layer (0-based).
    pub layer: u32,
    /// Energy all GPUs spent waiting in the layer's MoE collectives this step [J].
    pub wait_j: f64,
    /// The same under balanced routing [J].
    pub balanced_wait_j: f64,
    /// `wait_j - balanced_wait_j`: energy lost to routing skew [J] (negative if this routing
    /// waited less than the balanced one).
    pub skew_j: f64,
}

/// Per MoE layer skew energy of `step` (simulated by `model` at `knobs`).
pub fn layer_skew(
    model: &mut EventStepModel,
    step: &EventStep,
    knobs: Knobs,
) -> Result<Vec<LayerSkew>, EventStepError> {
    let (_, balanced) = model.balanced(knobs)?;
    let spec = &model.input().model;
    Ok((0..spec.layers)
        .filter(|&l| spec.is_moe_layer(l))
        .map(|l| {
            let wait_j = step.moe_wait_j.get(l as usize).copied().unwrap_or(0.0);
            let balanced_wait_j = balanced.get(l as usize).copied().unwrap_or(0.0);
            LayerSkew {
                layer: l,
                wait_j,
                balanced_wait_j,
                skew_j: wait_j - balanced_wait_j,
            }
        })
        .collect())
}

/// `layers.csv`: one row per MoE layer (`step,layer,wait_j,balanced_wait_j,skew_j`).
pub fn layers_csv(rows: &[(u64, LayerSkew)]) -> String {
    let mut s = String::from("step,layer,wait_j,balanced_wait_j,skew_j\n");
    for (step, r) in rows {
        s.push_str(&format!(
            "{step},{},{:.6},{:.6},{:.6}\n",
            r.layer, r.wait_j, r.balanced_wait_j, r.skew_j
        ));
    }
    s
}
