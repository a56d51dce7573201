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

/// Waiting energy of one MoE layer summed over the steps a run started in one grid interval
/// (`moesim run --event-level`'s `layers.csv`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalSkew {
    /// Grid interval (0-based index into the run's grid series).
    pub interval: u32,
    /// Steps started in the interval.
    pub steps: u64,
    /// Layer (0-based).
    pub layer: u32,
    /// Energy all GPUs spent waiting in the layer's MoE collectives over those steps [J].
    pub wait_j: f64,
    /// The same under balanced routing of those steps at their knobs [J].
    pub balanced_wait_j: f64,
}

impl IntervalSkew {
    /// Energy lost to routing skew: `wait_j - balanced_wait_j` [J].
    pub fn skew_j(&self) -> f64 {
        self.wait_j - self.balanced_wait_j
    }
}

/// Per grid interval and MoE layer sums of waiting energy, filled step by step without
/// allocating once an interval's rows exist.
#[derive(Clone, Debug, Default)]
pub struct SkewLog {
    /// Rows in interval order, then layer order.
    rows: Vec<IntervalSkew>,
    /// MoE layers (their transformer layer numbers).
    layers: Vec<u32>,
}

impl SkewLog {
    /// A log of the MoE layers `layers` (transformer layer numbers, ascending).
    pub fn new(layers: Vec<u32>) -> Self {
        SkewLog {
            rows: Vec::new(),
            layers,
        }
    }

    /// Add one step started in `interval`: per transformer layer its waiting energy `wait` and
    /// the balanced one `balanced` [J].
    pub fn add(&mut self, interval: u32, wait: &[f64], balanced: &[f64]) {
        let n = self.layers.len();
        if n == 0 {
            return;
        }
        let fresh = self.rows.len() < n || self.rows[self.rows.len() - n].interval != interval;
        if fresh {
            for &layer in &self.layers {
                self.rows.push(IntervalSkew {
                    interval,
                    steps: 0,
                    layer,
                    wait_j: 0.0,
                    balanced_wait_j: 0.0,
                });
            }
        }
        let k = self.rows.len() - n;
        for r in &mut self.rows[k..] {
            let l = r.layer as usize;
            r.steps += 1;
            r.wait_j += wait.get(l).copied().unwrap_or(0.0);
            r.balanced_wait_j += balanced.get(l).copied().unwrap_or(0.0);
        }
    }

    /// The rows so far (interval, then layer).
    pub fn rows(&self) -> &[IntervalSkew] {
        &self.rows
    }

    /// Take the rows, leaving the log empty.
    pub fn take(&mut self) -> Vec<IntervalSkew> {
        std::mem::take(&mut self.rows)
    }
}
