//! One step's account in the fast path: its time, the GPU energy of all GPUs (busy, idle and
//! spin while waiting), the phase split and the critical-path shares, from the stage walk
//! ([`super::stages`]), the pipeline's makespan and what follows it ([`super::drain`]).

use super::drain::Tail;
use super::phases::{self, StepPhases};
use super::stages::Walk;
use super::{Knobs, StepCost, StepModel};

/// The parts of one step the account adds up.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parts {
    /// Index of the knob setting in the fixed-cost cache.
    pub fi: usize,
    /// Micro-batches of the step.
    pub mb: f64,
    /// The stage walk's sums.
    pub walk: Walk,
    /// The pipeline's makespan [s].
    pub pipe: f64,
    /// Gradient sync, parameter gather and optimizer after the pipeline.
    pub tail: Tail,
    /// Expert migration of a rebalancing step [s].
    pub migration_s: f64,
}

impl StepModel {
    /// The cost of a step at `knobs` from its `parts`; reads the per-stage times the walk left
    /// (`stage_f`, `stage_b`, `stage_x`) and the ZeRO-3 streams' waits.
    pub(super) fn account(&self, knobs: Knobs, parts: Parts) -> StepCost {
        let Parts {
            fi,
            mb,
            walk,
            pipe,
            tail,
            migration_s,
        } = parts;
        let Walk {
            mut gpu_dyn_j,
            mut busy_gpu_s,
            dropped,
        } = walk;
        let Tail {
            exposed_dp,
            gather_shown,
            opt_s,
            opt_copies,
        } = tail;
        let f = &self.cache[fi];
        let pp = self.plan.pp as usize;
        let ep = self.plan.ep.max(1) as f64;
        let idle = self.acc.idle_w;
        let z3 = !f.z3.is_empty();
        let time_s = pipe + exposed_dp + opt_s + migration_s;
        // Time the compute waited for ZeRO-3 gathers, on the stage that waited most.
        let z3_wait_s = if z3 {
            self.z3_streams.iter().map(|z| z.wait_s).fold(0.0, f64::max)
        } else {
            0.0
        };
        gpu_dyn_j += opt_copies * f.opt_dyn_j;
        busy_gpu_s += opt_copies * f.opt_busy_gpu_s;
        let gpus = self.gpus as f64;
        let waiting_s = (gpus * time_s - busy_gpu_s).max(0.0);
        let replicas = self.plan.dp as f64 / ep;
        let moe_layers = self.moe_layers() as f64;
        // On the pipeline's critical path every stage counts once and the slowest stage m-1 more times.
        let slowest = (0..pp)
            .max_by(|&a, &b| {
                (self.stage_f[a] + self.stage_b[a]).total_cmp(&(self.stage_f[b] + self.stage_b[b]))
            })
            .unwrap_or(0);
        let mut crit = [0.0; 3];
        for (k, c) in crit.iter_mut().enumerate() {
            *c = self.stage_x.iter().map(|x| x[k]).sum::<f64>()
                + (mb - 1.0) * self.stage_x[slowest][k];
        }
        // A waiting GPU (bubble, straggler wait, communication) spins in a collective or a
        // synchronisation with its clock held high: it draws `spin_w`, not idle (see presets.rs).
        let spin = self.acc.spin_w();
        let gpu_energy_j = gpus * idle * time_s + gpu_dyn_j + (spin - idle) * waiting_s;
        let phases = StepPhases::split(&phases::SplitInputs {
            pipe_s: pipe,
            pipe_comm_s: crit[2] + z3_wait_s,
            sync_s: exposed_dp,
            opt_s,
            opt_dyn_j: opt_copies * f.opt_dyn_j,
            opt_busy_gpu_s: opt_copies * f.opt_busy_gpu_s,
            migration_s,
            gpu_energy_j,
            gpus,
            idle_w: idle,
            spin_w: spin,
        });
        StepCost {
            time_s,
            gpu_energy_j,
            waiting_energy_j: spin * waiting_s,
            tokens: mb * self.plan.dp as f64 * self.tokens_per_mb,
            assignments: self.assignments_per_layer(knobs.top_k) * moe_layers * mb * replicas,
            dropped: dropped * mb * replicas,
            router_s: crit[0],
            straggler_s: crit[1],
            comm_s: crit[2] + z3_wait_s + exposed_dp + gather_shown + migration_s,
            phases,
        }
    }
}
