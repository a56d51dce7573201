//! What follows the pipeline in the fast path: how long each stage's gradient sync runs past
//! the pipeline's end, the parameter all-gathers the first forward leaves exposed
//! ([`super::param_gather`]), and the optimizer that waits for both.

use super::fixed::Fixed;
use super::{param_gather, schedule, StepModel};

/// The step's time after its pipeline, and the optimizer's share of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tail {
    /// How long after the pipeline's end the last stage is done with its gradient sync [s].
    pub exposed_dp: f64,
    /// The parameter all-gathers on the step's time (all of them, or what the first forward
    /// leaves exposed under `overlap_param_gather`) [s].
    pub gather_shown: f64,
    /// The optimizer's time on the step, gathers included [s].
    pub opt_s: f64,
    /// Copies of each stage's optimizer the step runs per GPU (2 under DualPipe, else 1).
    pub opt_copies: f64,
}

impl StepModel {
    /// The tail of this step at knob setting `fi` after a pipeline of makespan `pipe` [s] over
    /// `mb` micro-batches; `dual`: DualPipe's exposed sync and optimizer [s] (None for the
    /// other schedules). Reads what `walk_stages` and the pipeline left (`layer_fb`,
    /// `pipe_ends`, the ZeRO-3 streams).
    pub(super) fn tail(&self, fi: usize, pipe: f64, mb: f64, dual: Option<(f64, f64)>) -> Tail {
        let f = &self.cache[fi];
        let pp = self.plan.pp as usize;
        let v = self.schedule.virtual_stages;
        let hops = &f.hops;
        let z3 = !f.z3.is_empty();
        let combined = self.combined;
        // Each stage syncs its gradients after its own last backward, bucket by bucket under
        // the backward with `overlap_grad_sync` (Megatron-LM `--overlap-grad-reduce`); the
        // optimizer waits for the last stage (`schedule::stage_synced_s`).
        let vu = v.max(1) as usize;
        let has_ends = combined || pp > 1 || z3;
        let m = mb as usize;
        // How long after the pipeline's end the last stage is done with its sync.
        let mut exposed_dp = 0.0f64;
        for s in (0..pp).filter(|_| dual.is_none()) {
            // The stage's backward send (to stage s - 1; from stage 0 to the last, interleaved).
            let bhop = hops[(s + pp - 1) % pp];
            let (stage_end, _) = if has_ends {
                schedule::last_backward_end(&self.pipe_ends, (vu, m), s, 0, bhop)
            } else {
                (pipe, pipe)
            };
            let chunk = |c: usize| {
                let r = if vu == 1 {
                    self.stage_layers[s].clone()
                } else {
                    self.chunk_layers[c * pp + s].clone()
                };
                let bwd_end = if has_ends {
                    schedule::last_backward_end(&self.pipe_ends, (vu, m), s, c, bhop).1
                } else {
                    pipe
                };
                schedule::ChunkDrain {
                    bwd_end,
                    layers: &self.layer_fb[r.start as usize..r.end as usize],
                    sync: f.chunk_sync[s * vu + c],
                }
            };
            let drain = if z3 {
                self.z3_streams[s].free - stage_end
            } else {
                f64::NEG_INFINITY
            };
            let t = schedule::stage_synced_s(
                stage_end,
                vu,
                chunk,
                self.schedule.overlap_grad_sync,
                drain,
            );
            exposed_dp = exposed_dp.max((stage_end - pipe) + t);
        }
        // Under DualPipe every stage is held, synced and updated on two ranks.
        // With `overlap_param_gather` the parameter all-gathers run under the first forward
        // (`param_gather`); only what that forward leaves exposed is on the step.
        let gather_shown = if self.schedule.overlap_param_gather && dual.is_none() {
            self.exposed_param_gather_s(f, mb as usize)
        } else {
            f.param_gather_s
        };
        let (opt_s, opt_copies) = match dual {
            Some((sync, opt)) => {
                exposed_dp = sync;
                (opt, 2.0)
            }
            None if self.schedule.overlap_param_gather => (f.opt_update_s + gather_shown, 1.0),
            None => (f.opt_s, 1.0),
        };
        Tail {
            exposed_dp,
            gather_shown,
            opt_s,
            opt_copies,
        }
    }

    /// The parameter all-gathers the first forward of the step leaves exposed, on the stage
    /// that shows most of them beyond its pipeline warm-up (stage `s` starts its first forward
    /// after stages `0..s` ran theirs, time its own gathers run in) [s].
    fn exposed_param_gather_s(&self, f: &Fixed, m: usize) -> f64 {
        let pp = self.plan.pp.max(1) as usize;
        let vu = self.schedule.virtual_stages.max(1) as usize;
        let warm = pp.min(m.max(1)) - 1;
        let mut slack = 0.0;
        let mut worst = 0.0f64;
        for s in 0..pp {
            let range = |c: usize| {
                let r = if vu == 1 {
                    self.stage_layers[s].clone()
                } else {
                    self.chunk_layers[c * pp + s].clone()
                };
                &self.layer_fb[r.start as usize..r.end as usize]
            };
            let chunks = (0..vu).map(|c| {
                let fb = range(c);
                param_gather::ChunkGather {
                    gather_s: f.chunk_sync[s * vu + c].gather_s,
                    layer_fb: fb,
                    to_next_s: warm as f64 * fb.iter().map(|x| x.0).sum::<f64>(),
                }
            });
            worst = worst.max(param_gather::exposed_gather_s(chunks) - slack);
            slack += range(0).iter().map(|x| x.0).sum::<f64>();
        }
        worst.max(0.0)
    }
}
