//! The per-stage walk of one step in the fast path: each pipeline stage's forward and backward
//! of one micro-batch from its layers' fixed costs and this step's routed ones, and the
//! per-layer times the pipeline and the gradient sync read after it.

use super::{overlap, Knobs, StepModel};

/// What the walk over the stages sums for the whole step.
#[derive(Debug, Clone, Copy)]
pub(super) struct Walk {
    /// Dynamic GPU energy of every stage's forward and backward over the step, all GPUs [J].
    pub gpu_dyn_j: f64,
    /// Busy time of every stage's forward and backward over the step, summed over all GPUs [s].
    pub busy_gpu_s: f64,
    /// Assignments dropped by the capacity limit in one micro-batch of one expert-parallel group.
    pub dropped: f64,
}

impl StepModel {
    /// Walks every stage's layers at knob setting `fi` under this step's routing `shares`
    /// (MoE layers × experts) for `mb` micro-batches: fills `stage_f`/`stage_b` (one
    /// micro-batch's forward/backward per stage [s]), `stage_x` (router, straggler and
    /// communication time per stage and micro-batch, for the critical path [s]), `layer_fb`
    /// (each layer's forward/backward [s]) and `halves` (each layer's halves for the combined
    /// and DualPipe schedules). Allocation-free after the first step.
    pub(super) fn walk_stages(&mut self, shares: &[f64], knobs: Knobs, fi: usize, mb: f64) -> Walk {
        let pp = self.plan.pp as usize;
        let ep = self.plan.ep.max(1) as f64;
        self.stage_f.clear();
        self.stage_b.clear();
        let mut gpu_dyn_j = 0.0;
        let mut busy_gpu_s = 0.0; // summed over all GPUs
        let mut dropped = 0.0;
        // Router, straggler and communication time per stage and micro-batch, to be put on the critical path.
        self.stage_x.clear();
        self.layer_fb.clear();
        self.halves.clear();
        let gpus_per_stage = (self.plan.dp * self.plan.tp) as f64;
        let e = self.experts;
        for s in 0..pp {
            let x = self.cache[fi].extra[s];
            let (mut f_s, mut b_s) = (x.f_s, x.b_s);
            let (mut dyn_gpu, mut busy) = (x.dyn_j, x.busy_s);
            let (mut router_s, mut straggler_s, mut comm_s) = (x.router_s, 0.0, x.comm_s);
            let range = self.stage_layers[s].clone();
            for l in range {
                let l = l as usize;
                let c = self.cache[fi].layers[l];
                let seg = self.cache[fi].seg[l];
                let mut half = (
                    overlap::Half {
                        c: [c.f_s, 0.0, 0.0],
                        ..Default::default()
                    },
                    overlap::Half {
                        c: [c.b_s, 0.0, 0.0],
                        ..Default::default()
                    },
                );
                f_s += c.f_s;
                b_s += c.b_s;
                let b_before = b_s - c.b_s;
                let f_before = f_s - c.f_s;
                dyn_gpu += c.dyn_j;
                busy += c.busy_s;
                router_s += c.router_s;
                comm_s += c.comm_s;
                if let Some(ml) = self.moe_layer_of[l] {
                    let row = &shares[ml * e..(ml + 1) * e];
                    let r = self.moe_block(row, ml, knobs, fi);
                    if self.combined || self.dual.is_some() {
                        // Compute runs around the dispatch and the combine, the routed ones at
                        // the slowest rank.
                        let h = |k: usize| overlap::Half {
                            n: 2,
                            c: [seg[k][0], seg[k][1] + r.mid[k], seg[k][2]],
                            a: [r.a2a[2 * k], r.a2a[2 * k + 1]],
                        };
                        half = (h(0), h(1));
                    } else {
                        half.0.c[0] += r.f_s;
                        half.1.c[0] += r.b_s;
                    }
                    f_s += r.f_s;
                    b_s += r.b_s;
                    dyn_gpu += r.dyn_sum_j / ep;
                    busy += r.busy_sum_s / ep;
                    dropped += r.dropped;
                    straggler_s += r.straggler_s;
                    comm_s += r.comm_s;
                }
                self.layer_fb.push((f_s - f_before, b_s - b_before));
                self.halves.push(half);
            }
            self.stage_x.push([router_s, straggler_s, comm_s]);
            self.stage_f.push(f_s);
            self.stage_b.push(b_s);
            gpu_dyn_j += dyn_gpu * mb * gpus_per_stage;
            busy_gpu_s += busy * mb * gpus_per_stage;
        }
        Walk {
            gpu_dyn_j,
            busy_gpu_s,
            dropped,
        }
    }
}
